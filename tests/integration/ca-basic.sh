#!/bin/bash
# botid-ca on its own: the HTTP API refuses malformed, oversize and unknown
# requests with the documented status; bad evidence made by a real TPM is
# refused with its reason (replayed nonce, tampered attestation or
# signature, wrong nonce, key without fixedTPM, evidence for another key);
# the CRL lists revoked certificates and verifies; a host revokes its own
# certificates and itself with its host key (POST /v1/revoke), never another
# host's, never twice with one nonce or with a bad signature; a CA whose key lives on
# a SoftHSM2 token issues certificates that verify; health and /metrics
# answer and count; processes opening a new database at once migrate it
# once. ca-postgres.sh runs it again against PostgreSQL (BOTID_TEST_PG).
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm ca-token
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
PROBE="$top_builddir/tests/integration/ca-evidence-probe"
PROVISION="$top_builddir/tools/botid-provision"
EK_CHAIN=$(fixture_var tpm BOTID_EK_CA_CHAIN)

start_ca ca "$EK_CHAIN"

# http METHOD PATH [BODY-FILE]: prints the status; the body goes to $T/body.
# With Expect: 100-continue the CA can refuse an oversize body before it is
# sent, instead of resetting a connection that is still uploading.
http() {
	local data=()
	[ $# -ge 3 ] && data=(-H 'Expect: 100-continue' --data-binary "@$3")
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -X "$1" -H 'Content-Type: application/json' "${data[@]}" \
	    "$BOTID_CA_URL$2"
}
expect_status() {
	local want=$1 got
	shift
	got=$(http "$@")
	[ "$got" = "$want" ] || fail "$*: HTTP $got, not $want: $(cat "$T/body")"
}

# The bundle is the CA certificate; the server's certificate chains to it.
expect_status 200 GET /v1/bundle
cmp -s "$T/body" "$BOTID_CA_CERT" || fail "GET /v1/bundle is not the CA certificate"
# Health: live, and ready as the database answers.
expect_status 200 GET /v1/health/live
expect_status 200 GET /v1/health/ready
grep -q '"ready"' "$T/body" || fail "ready: unexpected body: $(cat "$T/body")"
expect_status 404 GET /v1/nothing
expect_status 405 GET /v1/enrol

printf 'not json' >"$T/bad1"
printf '{"host_id":"0123456789abcdef","extra":1}' >"$T/bad2"
printf '{"host_id":"0123456789abcdef","host_id":"0123456789abcdef"}' >"$T/bad3"
printf '{"join_token":"x","ek_cert":"%%%%","ek_public":"","ak_public":"","host_key_public":""}' >"$T/bad4"
printf '[1,2]' >"$T/bad5"
for f in bad1 bad2 bad3 bad5; do expect_status 400 POST /v1/nonce "$T/$f"; done
expect_status 400 POST /v1/enrol "$T/bad4"
grep -q 'not base64' "$T/body" || fail "bad base64: unclear reason: $(cat "$T/body")"
head -c 70000 /dev/zero | tr '\0' 'a' >"$T/big"
expect_status 413 POST /v1/nonce "$T/big"
printf '{"host_id":"0123456789abcdef"}' >"$T/nohost"
expect_status 403 POST /v1/nonce "$T/nohost"
grep -q 'unknown host' "$T/body" || fail "unknown host: unclear reason"

# /metrics counts those refusals by endpoint and reason.
expect_status 200 GET /metrics
for m in 'botid_ca_rejections_total{endpoint="nonce",reason="bad_request"} 4' \
    'botid_ca_rejections_total{endpoint="nonce",reason="forbidden"} 1' \
    'botid_ca_rejections_total{endpoint="other",reason="not_found"} 1' \
    'botid_ca_enrolments_total 0' 'botid_ca_database_up 1' \
    '# TYPE botid_ca_request_duration_seconds histogram'; do
	grep -qxF "$m" "$T/body" || fail "/metrics lacks '$m': $(cat "$T/body")"
done

# A host enrolled for any bot, then bad evidence from its TPM.
agent_conf_begin
agent_add_bot probe tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
"$PROBE" "$T/state" "$BOTID_TCTI" >"$T/probe.out" 2>&1 ||
    fail "evidence cases: $(cat "$T/probe.out")"
cat "$T/probe.out"
[ "$(grep -c '^ok ' "$T/probe.out")" -eq 7 ] || fail "not every evidence case ran"
expect_status 200 GET /metrics
grep -qx 'botid_ca_enrolments_total 1' "$T/body" || fail "/metrics: not one enrolment"
grep -qx 'botid_ca_issuances_total{kind="bot"} 1' "$T/body" ||
    fail "/metrics: not one bot certificate"
grep -qx 'botid_ca_rejections_total{endpoint="certify",reason="already_used"} 1' \
    "$T/body" || fail "/metrics: the replayed nonce is not counted"
for reason in "nonce already used" "signature does not verify" \
    "nonce does not match" "not fixedTPM" "certified name"; do
	grep -q "$reason" "$BOTID_CA_LOG" || fail "the CA log does not say '$reason'"
done

# The first TPM's EK with the second TPM's AK: the second TPM cannot open
# the challenge, and a guessed secret is refused, once (the session is gone).
export TPM2TOOLS_TCTI="$BOTID_TCTI"
(cd "$T" && tpm2_createek -c ek.ctx -G rsa -u ek1.pub >/dev/null &&
    tpm2_flushcontext -t >/dev/null) || fail "tpm2_createek failed"
TCTI2=$(fixture_var other BOTID_TCTI)
(cd "$T" && export TPM2TOOLS_TCTI="$TCTI2" &&
    tpm2_createprimary -C o -G ecc -c srk2.ctx >/dev/null &&
    tpm2_create -C srk2.ctx -G ecc:ecdsa-sha256:null -u ak2.pub -r ak2.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null &&
    tpm2_create -C srk2.ctx -G ecc -u hk2.pub -r hk2.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null) || fail "cannot make the second TPM's keys"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-mix"
"$PYTHON3" - "$T" <<'PY' || fail "cannot build the mixed enrolment"
import base64, json, sys
t = sys.argv[1]
b = lambda f: base64.b64encode(open(f"{t}/{f}", "rb").read()).decode()
json.dump({"join_token": open(f"{t}/token-mix").read().strip(),
           "ek_cert": b("tpm/certs/ek-rsa2048.crt"), "ek_public": b("ek1.pub"),
           "ak_public": b("ak2.pub"), "host_key_public": b("hk2.pub")},
          open(f"{t}/mix.json", "w"))
PY
expect_status 200 POST /v1/enrol "$T/mix.json"
session=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$T/body")
printf '{"session":"%s","secret":"%s","host_key_attest":"AAA=","host_key_signature":"AAA="}' \
    "$session" "$(head -c 32 /dev/urandom | base64 -w0)" >"$T/mix-activate.json"
expect_status 403 POST /v1/activate "$T/mix-activate.json"
grep -q 'credential activation failed' "$T/body" ||
    fail "wrong secret: unclear reason: $(cat "$T/body")"
expect_status 409 POST /v1/activate "$T/mix-activate.json"
grep -q 'credential activation failed' "$BOTID_CA_LOG" ||
    fail "the CA log does not say the activation failed"

# An enrolment session past its lifetime is refused with 410 and left
# unused, and no host is enrolled: its expiry is moved back in the CA's
# database rather than waited for.
db_sql() { ca_sql ca "$1"; }
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-exp"
"$PYTHON3" - "$T" <<'PY' || fail "cannot build the enrolment"
import json, sys
t = sys.argv[1]
e = json.load(open(f"{t}/mix.json"))
e["join_token"] = open(f"{t}/token-exp").read().strip()
json.dump(e, open(f"{t}/exp.json", "w"))
PY
expect_status 200 POST /v1/enrol "$T/exp.json"
session=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$T/body")
db_sql "UPDATE sessions SET expires = 1 WHERE id = '$session'"
hosts0=$(db_sql "SELECT count(*) FROM hosts")
printf '{"session":"%s","secret":"%s","host_key_attest":"AAA=","host_key_signature":"AAA="}' \
    "$session" "$(head -c 32 /dev/urandom | base64 -w0)" >"$T/exp-activate.json"
expect_status 410 POST /v1/activate "$T/exp-activate.json"
grep -q '"enrolment session expired"' "$T/body" ||
    fail "expired session: unclear reason: $(cat "$T/body")"
[ "$(db_sql "SELECT used FROM sessions WHERE id = '$session'")" = 0 ] ||
    fail "an expired session was used"
[ "$(db_sql "SELECT count(*) FROM hosts")" = "$hosts0" ] ||
    fail "an expired session enrolled a host"

# Revocation of a bot: its certificates are on a CRL signed by the CA.
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
spiffe="spiffe://test.botid/host/$host_id/bot/probe"
check "$CA" revoke -c "$BOTID_CA_CONF" bot "$spiffe"
# Again: nothing left to revoke, the SPIFFE ID stays revoked; it says so.
out=$("$CA" revoke -c "$BOTID_CA_CONF" bot "$spiffe") ||
    fail "a second revoke bot failed: $out"
[ "$out" = "$spiffe revoked: no unrevoked certificate for it; none is issued until unrevoke" ] ||
    fail "a second revoke bot said: $out"
expect_status 200 GET /v1/crl
cp "$T/body" "$T/crl.pem"
check openssl crl -in "$T/crl.pem" -CAfile "$BOTID_CA_BUNDLE" -noout
serial=$("$CA" inventory -c "$BOTID_CA_CONF" | awk -v s="$spiffe" '$0 ~ s {print $4; exit}')
[ -n "$serial" ] || fail "no serial for $spiffe in the inventory"
openssl crl -in "$T/crl.pem" -noout -text | grep -i "$serial" >/dev/null ||
    fail "the CRL does not list $serial"
"$CA" inventory -c "$BOTID_CA_CONF" | grep "$spiffe" | grep revoked >/dev/null ||
    fail "the inventory does not show the revoked certificate"
# The bot stays revoked until lifted (ca-revocation.sh): lift it for the
# host's own revocations below.
check "$CA" unrevoke -c "$BOTID_CA_CONF" bot "$spiffe"

# Revocation by the host itself (POST /v1/revoke), signed by its host key
# in the TPM: its own certificate by serial, idempotently; never another
# host's; never with a replayed nonce or a signature over another message
# or by another key; and finally the host itself with all its certificates.
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"
# new_cert STATE: a new TPM key certified as bot "probe" for the host in
# STATE; its serial goes to $SERIAL.
new_cert() {
	rm -rf "$T/nc" && mkdir -p "$T/nc"
	"$REQUESTS" "$1" "$BOTID_TCTI" 1 "$T/nc" probe >"$T/nc/out" 2>&1 ||
	    fail "ca-certify-requests: $(cat "$T/nc/out")"
	expect_status 200 POST /v1/certify "$T/nc/certify-0.json"
	SERIAL=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$T/body")
	[ -n "$SERIAL" ] || fail "no serial in the certify answer"
}
# revoke STATE WANT-EXIT TARGET REASON: ca_client_revoke through the test
# client; fails unless it exits WANT-EXIT (0 done, 3 refused, 4 unknown).
revoke() {
	local rc=0
	"$REQUESTS" "$1" "$BOTID_TCTI" revoke "$3" "$4" >"$T/revoke.out" 2>&1 || rc=$?
	[ "$rc" -eq "$2" ] ||
	    fail "revoke $3 as $1: exit $rc, not $2: $(cat "$T/revoke.out")"
}
# revoke_body STATE TARGET REASON SIGNED KEY FILE: a body to post with curl.
revoke_body() {
	"$REQUESTS" "$1" "$BOTID_TCTI" revoke-body "$2" "$3" "$4" "$5" "$6" \
	    >"$T/rb.out" 2>&1 || fail "ca-certify-requests revoke-body: $(cat "$T/rb.out")"
}
# crl_entry SERIAL: the CRL's text for SERIAL (empty if not listed).
crl_entry() {
	expect_status 200 GET /v1/crl
	openssl crl -in "$T/body" -CAfile "$BOTID_CA_BUNDLE" -noout -text \
	    2>/dev/null | grep -i -A4 "Serial Number: *$1\$" || true
}
# A second host, on the same TPM with keys of its own, with a bot.
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-b"
sed "s|^state_dir *=.*|state_dir = $T/state-b|" "$AGENT_CONF" >"$T/agent-b.conf"
check "$PROVISION" -c "$T/agent-b.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-b"
host_b=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state-b/attest/host.json")
[ -n "$host_b" ] && [ "$host_b" != "$host_id" ] || fail "no second host"
new_cert "$T/state-b"
serial_b=$SERIAL
# Malformed revocations are refused before anything is looked at.
for body in '{"host_id":"%s","nonce":"AAA=","reason":"superseded","signature":"AAA="}' \
    '{"host_id":"%s","nonce":"AAA=","serial":"AB","host":true,"reason":"superseded","signature":"AAA="}' \
    '{"host_id":"%s","nonce":"AAA=","host":false,"reason":"superseded","signature":"AAA="}' \
    '{"host_id":"%s","nonce":"AAA=","serial":"XYZ","reason":"superseded","signature":"AAA="}' \
    '{"host_id":"%s","nonce":"AAA=","serial":"AB","reason":"bored","signature":"AAA="}' \
    '{"host_id":"%s","nonce":"AAA=","serial":"AB","reason":"superseded","signature":"AAA=","extra":1}'; do
	printf "$body" "$host_id" >"$T/rv-bad.json"
	expect_status 400 POST /v1/revoke "$T/rv-bad.json"
done
# Its own bot's certificate: revoked, on the CRL as superseded.
new_cert "$T/state"
serial_a1=$SERIAL
[ -z "$(crl_entry "$serial_a1")" ] || fail "$serial_a1 is on the CRL before revocation"
revoke "$T/state" 0 "$serial_a1" superseded
crl_entry "$serial_a1" >"$T/entry"
grep -q 'Superseded' "$T/entry" ||
    fail "the CRL does not list $serial_a1 as superseded: $(cat "$T/entry")"
# Again: success, and the answer says it was already revoked.
revoke "$T/state" 0 "$serial_a1" superseded
revoke_body "$T/state" "$serial_a1" superseded "$serial_a1" host "$T/rv-again.json"
expect_status 200 POST /v1/revoke "$T/rv-again.json"
grep -q '"already":true' "$T/body" || fail "repeat: not 'already': $(cat "$T/body")"
# Another host's certificate: refused, and not revoked.
revoke "$T/state" 3 "$serial_b" superseded
grep -q 'not issued to this host' "$T/revoke.out" ||
    fail "another host's serial: unclear reason: $(cat "$T/revoke.out")"
[ -z "$(crl_entry "$serial_b")" ] || fail "host $host_id revoked host $host_b's certificate"
# A serial the CA never issued.
revoke "$T/state" 4 4AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA superseded
# A replayed body: the nonce is single-use.
new_cert "$T/state"
serial_a2=$SERIAL
revoke_body "$T/state" "$serial_a2" keyCompromise "$serial_a2" host "$T/rv-a2.json"
expect_status 200 POST /v1/revoke "$T/rv-a2.json"
grep -q "\"revoked\":\[\"$serial_a2\"\]" "$T/body" || fail "revoke: unexpected answer: $(cat "$T/body")"
expect_status 409 POST /v1/revoke "$T/rv-a2.json"
crl_entry "$serial_a2" | grep 'Key Compromise' >/dev/null ||
    fail "the CRL does not list $serial_a2 as key compromise"
# Bad signatures: over another serial's message, or by a key the CA never
# saw; the certificate stays valid.
new_cert "$T/state"
serial_a3=$SERIAL
revoke_body "$T/state" "$serial_a3" superseded "$serial_a2" host "$T/rv-a3.json"
expect_status 403 POST /v1/revoke "$T/rv-a3.json"
grep -q 'signature' "$T/body" || fail "bad signature: unclear reason: $(cat "$T/body")"
expect_status 409 POST /v1/revoke "$T/rv-a3.json"
revoke_body "$T/state" "$serial_a3" superseded "$serial_a3" other "$T/rv-a3o.json"
expect_status 403 POST /v1/revoke "$T/rv-a3o.json"
revoke_body "$T/state" host cessationOfOperation host other "$T/rv-ho.json"
expect_status 403 POST /v1/revoke "$T/rv-ho.json"
[ -z "$(crl_entry "$serial_a3")" ] || fail "a bad signature revoked $serial_a3"
# The second host deprovisions: it and every certificate issued to it are
# on the CRL, and it gets no more nonces; the first host is untouched.
host_b_serial=$("$CA" inventory -c "$BOTID_CA_CONF" |
    awk -v h="$host_b" '$1 == h && $8 ~ /\/host\/[0-9a-f]+$/ {print $4; exit}')
[ -n "$host_b_serial" ] || fail "no host certificate for $host_b in the inventory"
revoke "$T/state-b" 0 host cessationOfOperation
for s in "$serial_b" "$host_b_serial"; do
	crl_entry "$s" | grep 'Cessation Of Operation' >/dev/null ||
	    fail "the CRL does not list $s of the deprovisioned host"
done
printf '{"host_id":"%s"}' "$host_b" >"$T/nonce-b.json"
expect_status 403 POST /v1/nonce "$T/nonce-b.json"
grep -q 'revoked' "$T/body" || fail "revoked host nonce: unclear reason: $(cat "$T/body")"
revoke "$T/state-b" 3 host cessationOfOperation
printf '{"host_id":"%s"}' "$host_id" >"$T/nonce-a.json"
expect_status 200 POST /v1/nonce "$T/nonce-a.json"
[ -z "$(crl_entry "$serial_a3")" ] || fail "host $host_b's deprovisioning revoked $serial_a3"
expect_status 200 GET /metrics
for m in 'botid_ca_revocations_total{kind="bot"} 2' \
    'botid_ca_revocations_total{kind="host"} 1' \
    'botid_ca_rejections_total{endpoint="revoke",reason="bad_request"} 6' \
    'botid_ca_rejections_total{endpoint="revoke",reason="already_used"} 2' \
    'botid_ca_rejections_total{endpoint="revoke",reason="forbidden"} 4' \
    'botid_ca_rejections_total{endpoint="revoke",reason="not_found"} 1'; do
	grep -qxF "$m" "$T/body" || fail "/metrics lacks '$m': $(grep revo "$T/body")"
done

# A CA whose key is on a PKCS#11 token.
check pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label ca-token \
    --login --pin "$(cat "$BOTID_PIN_FILE")" --keypairgen \
    --key-type EC:prime256v1 --label ca-key
mkdir -p "$T/ca2"
cat >"$T/ca2/ca.conf" <<CONF
[ca]
trust_domain = token.botid
listen = 127.0.0.1:0
database = $T/ca2/ca.db
ca_cert = $T/ca2/ca.pem
ca_key = pkcs11
pkcs11_module = $BOTID_PKCS11_MODULE
pkcs11_token = ca-token
pkcs11_key_label = ca-key
pkcs11_pin_file = $BOTID_PIN_FILE
ek_root = $EK_CHAIN
CONF
check "$CA" init -c "$T/ca2/ca.conf"
[ ! -e "$T/ca2/ca.key" ] || fail "a key file was made for a token CA"
pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label ca-token \
    --read-object --type pubkey --label ca-key -o "$T/ca2/token.der" >/dev/null 2>&1 ||
    fail "cannot read the token's public key"
openssl pkey -pubin -inform DER -in "$T/ca2/token.der" -outform PEM >"$T/ca2/token.pem"
openssl x509 -in "$T/ca2/ca.pem" -noout -pubkey >"$T/ca2/cert.pub"
cmp -s "$T/ca2/token.pem" "$T/ca2/cert.pub" || fail "the token CA's certificate is not for the token key"
"$CA" serve -c "$T/ca2/ca.conf" --port-file "$T/ca2/port" 2>"$T/ca2/log" &
register_pid $!
for _ in $(seq 1 100); do [ -s "$T/ca2/port" ] && break; sleep 0.1; done
[ -s "$T/ca2/port" ] || fail "the token CA did not start: $(cat "$T/ca2/log")"
"$CA" token create -c "$T/ca2/ca.conf" --ttl 10m >"$T/token2"
sed "s|^state_dir *=.*|state_dir = $T/state2|" "$AGENT_CONF" >"$T/agent2.conf"
check "$PROVISION" -c "$T/agent2.conf" --ca "https://127.0.0.1:$(cat "$T/ca2/port")" \
    --ca-bundle "$T/ca2/ca.pem" --join-token-file "$T/token2"
check openssl verify -CAfile "$T/ca2/ca.pem" "$T/state2/attest/host-cert.pem"
# Enrolment by EK allowlist, without a join token: the listed TPM is
# enrolled, another is refused.
fpr=$(sha256sum "$T/tpm/certs/ek-rsa2048.crt" | cut -d' ' -f1)
start_ca ca3 "$(fixture_var other BOTID_EK_CA_CHAIN)" "allow_ek = sha256:$fpr"
sed "s|^state_dir *=.*|state_dir = $T/state3|" "$AGENT_CONF" >"$T/agent3.conf"
check "$PROVISION" -c "$T/agent3.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE"
sed "s|^state_dir *=.*|state_dir = $T/state4|; s|^tcti *=.*|tcti = $TCTI2|" \
    "$AGENT_CONF" >"$T/agent4.conf"
out=$("$PROVISION" -c "$T/agent4.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" 2>&1) && fail "an unlisted EK enrolled without a token"
case $out in *"not on the allowlist"*) ;; *) fail "unlisted EK: unclear message: $out";; esac
# Six processes opening a new database at once migrate it once, all fine;
# ten times, each on a new database (a race lost 1 time in 40 here once).
mkdir -p "$T/mig"
for round in 1 2 3 4 5 6 7 8 9 10; do
	mdb="$T/mig/ca-$round.db"
	[ -z "${BOTID_TEST_PG:-}" ] || mdb=$(pg_database "mig$round")
	sed "s|^database *=.*|database = $mdb|" "$BOTID_CA_CONF" >"$T/mig/ca.conf"
	pids=()
	for i in 1 2 3 4 5 6; do
		"$CA" inventory -c "$T/mig/ca.conf" >/dev/null 2>"$T/mig/err$i" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || fail "concurrent first opens, round $round: $(cat "$T"/mig/err*)"
	done
done
echo "PASS: the CA API refuses bad requests and bad evidence, revokes, and signs from a token"
