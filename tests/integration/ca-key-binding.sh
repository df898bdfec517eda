#!/bin/bash
# A key belongs to the host and the bot it was first certified for, and the
# refusals of revoked keys outlive the purge (botid-ca(8), doc/ca-api.md).
# Host c vouches (attestation pkcs11) for the key host b holds, as its own
# bot: refused (403, "the key is certified to another host"), no
# certificate row, the refusal in the CA's log; b vouching for it under a
# second bot name is refused too (the JWK Set lists each key once). After
# `botid-ca revoke host c`, c's key is in /v1/ssh/revoked-keys and the KRL,
# b's is in neither, and b still renews. After `botid-ca purge --at` ten
# years on, c's key (revoked with its host) is still refused to b, and the
# key of a bot revoked with `botid-ca revoke bot` is still refused under
# another name; b renews. ca-key-binding-pg.sh runs it on PostgreSQL.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
# With BOTID_KEY_BINDING_PG=1 (ca-key-binding-pg.sh) the CA runs on
# PostgreSQL.
if [ -n "${BOTID_KEY_BINDING_PG:-}" ]; then
	. "$top_srcdir/tests/integration/pg-common.sh"
	start_postgres
fi
start_swtpm tb tc
TCTI_b=$(fixture_var tb BOTID_TCTI)
TCTI_c=$(fixture_var tc BOTID_TCTI)
cat "$(fixture_var tb BOTID_EK_CA_CHAIN)" "$(fixture_var tc BOTID_EK_CA_CHAIN)" \
    >"$T/ek-roots.pem"
. "$top_srcdir/tests/integration/agent-common.sh"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"
PROVISION="$top_builddir/tools/botid-provision"
start_ca ca "$T/ek-roots.pem" "ssh_ca_key = $T/ca/ssh-ca.pem"
BOTID_TCTI=$TCTI_b agent_conf_begin

# enrol NAME TCTI: a host of its own state; prints its host id.
enrol() {
	"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-$1"
	sed "s|^state_dir *=.*|state_dir = $T/state-$1|; s|^tcti *=.*|tcti = $2|" \
	    "$AGENT_CONF" >"$T/agent-$1.conf"
	check "$PROVISION" -c "$T/agent-$1.conf" --ca "$BOTID_CA_URL" \
	    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-$1" \
	    >"$T/provision-$1.out"
	sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' \
	    "$T/state-$1/attest/host.json"
}
host_b=$(enrol b "$TCTI_b")
host_c=$(enrol c "$TCTI_c")
for k in kb kc kr; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$T/$k.key" 2>/dev/null || fail "openssl genpkey"
	openssl pkey -in "$T/$k.key" -pubout -outform DER -out "$T/$k.spki" ||
	    fail "openssl pkey"
	openssl pkey -in "$T/$k.key" -pubout -out "$T/$k.pem" ||
	    fail "openssl pkey"
	ssh-keygen -i -m PKCS8 -f "$T/$k.pem" >"$T/$k.ssh.pub" ||
	    fail "ssh-keygen -i"
done

# post PATH FILE: prints the status; the body goes to $T/body.
post() {
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -H 'Content-Type: application/json' --data-binary "@$2" \
	    "$BOTID_CA_URL$1"
}
# certify HOST KEY BOT WANT [REASON]: HOST vouches for KEY as its bot BOT;
# a certified chain is left in $T/KEY-BOT.chain.
certify() {
	local tcti=TCTI_$1 got
	"$REQUESTS" "$T/state-$1" "${!tcti}" pkcs11-body "$T/$2.spki" "$3" \
	    "$T/cb.json" >"$T/cb.out" 2>&1 ||
	    fail "ca-certify-requests pkcs11-body: $(cat "$T/cb.out")"
	got=$(post /v1/certify "$T/cb.json")
	[ "$got" = "$4" ] ||
	    fail "$1 certifies $2 as $3: HTTP $got, not $4: $(cat "$T/body")"
	if [ $# -ge 5 ]; then
		grep -qF "\"error\":\"$5\"" "$T/body" ||
		    fail "$1 certifies $2 as $3: not '$5': $(cat "$T/body")"
		grep -q "certify from .* refused ($4): $5\$" "$BOTID_CA_LOG" ||
		    fail "the CA log does not say why $1's $2 as $3 was refused"
	fi
	[ "$got" != 200 ] || "$PYTHON3" -c 'import json, sys
print(json.load(open(sys.argv[1]))["chain"])' "$T/body" >"$T/$2-$3.chain"
}
# rows BOT: the certificates recorded for bot BOT, on any host.
rows() {
	"$CA" inventory -c "$BOTID_CA_CONF" | grep -c "/bot/$1\b" || true
}
# ssh_cert KEY BOT: an SSH certificate for that chain, in $T/KEY-cert.pub.
ssh_cert() {
	"$PYTHON3" -c 'import json, sys
pem = open(sys.argv[1]).read()
print(json.dumps({"certificate":
    pem[:pem.index("-----END CERTIFICATE-----") + 25] + "\n"}))' \
	    "$T/$1-$2.chain" >"$T/ssh.json"
	[ "$(post /v1/ssh/certify "$T/ssh.json")" = 200 ] ||
	    fail "no SSH certificate for $1 as $2: $(cat "$T/body")"
	"$PYTHON3" -c 'import json, sys
print(json.load(open(sys.argv[1]))["certificate"])' "$T/body" \
	    >"$T/$1-cert.pub"
}

# --- Another host's key, and one key under two names, are refused -------
certify b kb worker 200
ssh_cert kb worker
certify c kb thief 403 "the key is certified to another host"
[ "$(rows thief)" = 0 ] || fail "a certificate was recorded for b's key at c"
certify b kb second 403 "the key is certified to another bot of this host"
[ "$(rows second)" = 0 ] || fail "a certificate was recorded for b's key twice"
certify c kc own 200
ssh_cert kc own
echo "another host's key, and a key under a second name: refused, no row"

# --- Revoking host c revokes c's key, not b's -----------------------------
check "$CA" revoke -c "$BOTID_CA_CONF" host "$host_c"
curl -sS -o "$T/revoked-keys" --cacert "$BOTID_CA_BUNDLE" \
    "$BOTID_CA_URL/v1/ssh/revoked-keys" || fail "GET /v1/ssh/revoked-keys"
grep -qF "$(cut -d' ' -f2 "$T/kc.ssh.pub")" "$T/revoked-keys" ||
    fail "the revoked host's key is not in revoked-keys: $(cat "$T/revoked-keys")"
! grep -qF "$(cut -d' ' -f2 "$T/kb.ssh.pub")" "$T/revoked-keys" ||
    fail "host b's key is in revoked-keys with host c's revocation"
curl -sS -o "$T/krl" --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/ssh/krl" ||
    fail "GET /v1/ssh/krl"
! ssh-keygen -Q -f "$T/krl" "$T/kc-cert.pub" >"$T/q.out" 2>&1 ||
    fail "the KRL does not revoke host c's certificate: $(cat "$T/q.out")"
ssh-keygen -Q -f "$T/krl" "$T/kb-cert.pub" "$T/kb.ssh.pub" >"$T/q.out" 2>&1 ||
    fail "the KRL revokes host b's key: $(cat "$T/q.out")"
certify b kb worker 200
echo "revoke host c: c's key revoked, b's not, b renews"

# --- The purge keeps the revoked keys refused -----------------------------
certify b kr gone 200
check "$CA" revoke -c "$BOTID_CA_CONF" bot \
    "spiffe://test.botid/host/$host_b/bot/gone"
check "$CA" purge -c "$BOTID_CA_CONF" --at $(($(date +%s) + 3650 * 86400)) \
    >"$T/purge.out"
grep -q "purged .* [1-9][0-9]* certificate(s)" "$T/purge.out" ||
    fail "the purge deleted no certificate: $(cat "$T/purge.out")"
[ "$(rows gone)" = 1 ] || fail "the purge deleted the revoked bot's certificate"
[ "$(rows own)" = 1 ] || fail "the purge deleted the revoked host's certificate"
certify b kc mine 403 "the key is certified to another host"
certify b kr alias 403 "the key was certified for a revoked bot"
[ "$(rows mine)" = 0 ] && [ "$(rows alias)" = 0 ] ||
    fail "a certificate was recorded for a revoked key after the purge"
certify b kb worker 200
echo "after the purge: the revoked keys stay refused, b renews"
echo "ca-key-binding: ok"
