#!/bin/bash
# Attestation end to end: a fixture TPM is provisioned with botid-ca
# (credential activation), the agent obtains certificates for a TPM bot and
# a SoftHSM2 bot, and independent tools check them: openssl verify against
# the CA bundle, the key against `botid pubkey`, the SPIFFE ID and the
# attestation extension. Then: provisioning again changes nothing; bad
# tokens, an untrusted EK CA, a bot the host may not have and a revoked
# host are refused with a reason; 60-second certificates renew on their own.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
BOTID_EK_CA=$(fixture_var tpm BOTID_EK_CA)
start_softhsm hsm attest-flow
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
ATTEST_OID=1.2.840.113556.1.8000.2554.52093.11161.8788.17731.38138.7442963.11539914

# The CA trusts the first TPM's EK root only; bot certificates live 60 s.
start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)" "bot_lifetime = 60"
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")

agent_conf_begin "renew_at = 25%"
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
agent_add_bot pbot pkcs11 ecdsa-p256 "uid:$(id -u)"
agent_add_bot extra tpm ecdsa-p256 "uid:$(id -u)"

provision() {
	"$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
	    --ca-bundle "$BOTID_CA_BUNDLE" "$@"
}

# --- Refusals before enrolment -------------------------------------------
out=$(provision --join-token not-a-token 2>&1) && fail "unknown token accepted"
[ $? -ne 0 ]
case $out in *refused*token*) ;; *) fail "unknown token: unclear message: $out";; esac

"$CA" token create -c "$BOTID_CA_CONF" --ttl 1s >"$T/short.token"
sleep 2
out=$(provision --join-token-file "$T/short.token" 2>&1) &&
    fail "expired token accepted"
case $out in *expired*) ;; *) fail "expired token: unclear message: $out";; esac

# The second TPM's EK certificate chains to a root the CA does not trust.
sed "s|^tcti *=.*|tcti = $(fixture_var other BOTID_TCTI)|" \
    "$AGENT_CONF" >"$T/other.conf"
sed -i "s|^state_dir *=.*|state_dir = $T/other-state|" "$T/other.conf"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/other.token"
out=$("$PROVISION" -c "$T/other.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/other.token" 2>&1) &&
    fail "an EK certificate from an untrusted CA was accepted"
case $out in *EK*) ;; *) fail "untrusted EK: unclear message: $out";; esac
grep -q 'EK' "$BOTID_CA_LOG" || fail "the CA log does not say why the EK was refused"

# --- Enrolment -----------------------------------------------------------
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot,pbot >"$T/token"
check provision --join-token-file "$T/token"
out=$(provision --status 2>&1) || fail "--status after enrolment: $out"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
[ -n "$host_id" ] || fail "no host id in host.json"
check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/state/attest/host-cert.pem"

# Again: nothing changes, and the used token is not needed.
sums=$(cd "$T/state/attest" && sha256sum -- *)
out=$(provision --join-token-file "$T/token" 2>&1) || fail "second run failed: $out"
case $out in *"nothing changed"*) ;; *) fail "second run: $out";; esac
[ "$sums" = "$(cd "$T/state/attest" && sha256sum -- *)" ] ||
    fail "the second run changed the provisioning state"

# Enrolled here, the host is refused by another CA's provisioning (exit 1,
# the one-line reason naming both CAs and what to remove), with its state
# byte for byte as it was and nothing asked of the second CA: no session,
# no host, its join token unused. start_ca sets the CA variables: kept.
ca1=("$BOTID_CA_CONF" "$BOTID_CA_URL" "$BOTID_CA_BUNDLE" "$BOTID_CA_LOG" "$BOTID_CA_PID")
start_ca ca2 "$(fixture_var tpm BOTID_EK_CA_CHAIN)"
ca2_url=$BOTID_CA_URL
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/ca2.token"
set +e
out=$(provision --join-token-file "$T/ca2.token" 2>&1)
rc=$?
set -e
BOTID_CA_CONF=${ca1[0]} BOTID_CA_URL=${ca1[1]} BOTID_CA_BUNDLE=${ca1[2]}
BOTID_CA_LOG=${ca1[3]} BOTID_CA_PID=${ca1[4]}
[ "$rc" -eq 1 ] || fail "enrolment with a second CA: exit $rc, want 1: $out"
[ "$out" = "botid-provision: this host is already enrolled as $host_id with $BOTID_CA_URL, not $ca2_url: remove $T/state/attest to enrol anew" ] ||
    fail "enrolment with a second CA said: $out"
[ "$sums" = "$(cd "$T/state/attest" && sha256sum -- *)" ] ||
    fail "the refused enrolment with a second CA changed the provisioning state"
# ca2_sql QUERY: on ca2's database, SQLite or (ca-postgres.sh) PostgreSQL.
ca2_sql() { ca_sql ca2 "$1"; }
for q in "SELECT count(*) FROM sessions" "SELECT count(*) FROM hosts" \
    "SELECT count(*) FROM tokens WHERE used_at IS NOT NULL"; do
	[ "$(ca2_sql "$q")" = 0 ] ||
	    fail "the second CA recorded something: $q: $(ca2_sql "$q")"
done
[ "$(ca2_sql "SELECT count(*) FROM tokens")" = 1 ] ||
    fail "the second CA's token is not in its database"

# A used token cannot enrol another host (here: the same TPM, state wiped).
sed "s|^state_dir *=.*|state_dir = $T/state2|" "$AGENT_CONF" >"$T/again.conf"
out=$("$PROVISION" -c "$T/again.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token" 2>&1) &&
    fail "a used join token was accepted"
case $out in *"already used"*) ;; *) fail "reused token: unclear message: $out";; esac

# --- Bot certificates ------------------------------------------------------
start_agent
wait_cert() {
	for _ in $(seq 1 150); do
		botid_cli cert "$1" --out "$T/$1.chain" 2>/dev/null && return 0
		sleep 0.2
	done
	fail "no certificate for $1 after 30 s: $(tail -5 "$AGENT_LOG")"
}
for bot in tbot pbot; do
	wait_cert "$bot"
	check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/$bot.chain"
	openssl x509 -in "$T/$bot.chain" -noout -pubkey >"$T/$bot.certpub"
	check botid_cli pubkey "$bot" --out "$T/$bot.pub"
	cmp -s "$T/$bot.certpub" "$T/$bot.pub" ||
	    fail "$bot: the certificate's key is not the bot's key"
	san=$(openssl x509 -in "$T/$bot.chain" -noout -ext subjectAltName)
	case $san in
	*"URI:spiffe://$TD/host/$host_id/bot/$bot"*) ;;
	*) fail "$bot: unexpected SAN: $san";;
	esac
	kind=$(openssl asn1parse -in "$T/$bot.chain" | grep -A1 "$ATTEST_OID" |
	    tail -1 | grep -o 'UTF8STRING *:[a-z0-9]*' | sed 's/.*://') || true
	[ -z "$kind" ] && kind=$(openssl x509 -in "$T/$bot.chain" -noout -text |
	    grep -A1 "$ATTEST_OID" | tail -1 | tr -dc 'a-z0-9')
	want=tpm
	[ "$bot" = pbot ] && want=pkcs11
	case $kind in *"$want") ;; *) fail "$bot: attestation extension says '$kind', not $want";; esac
done

# The token allowed tbot and pbot: "extra" is refused at the CA.
for _ in $(seq 1 50); do
	grep -q 'bot extra: no certificate' "$AGENT_LOG" && break
	sleep 0.2
done
[ "$(grep 'bot extra: no certificate' "$AGENT_LOG" | grep -c 'not allowed')" -gt 0 ] ||
    fail "no log line says bot 'extra' is not allowed: $(grep extra "$AGENT_LOG" | tail -3)"
expect_fail botid_cli cert extra

# --- Renewal: 60 s certificates are replaced at renew_at = 25% ----------
serial1=$(openssl x509 -in "$T/tbot.chain" -noout -serial)
end1=$(openssl x509 -in "$T/tbot.chain" -noout -enddate | sed 's/notAfter=//')
# The agent planned it a quarter of the way through the life left on
# arrival: "new certificate S, valid until A; renewal at R" at time L.
line=$(grep "bot tbot: new certificate" "$AGENT_LOG" | head -1)
logged=$(date -d "$(cut -d' ' -f1 <<<"$line")" +%s)
until=$(sed -n 's/.*valid until \([0-9]*\);.*/\1/p' <<<"$line")
at=$(sed -n 's/.*renewal at \([0-9]*\)$/\1/p' <<<"$line")
want=$((logged + (until - logged) / 4))
[ "$at" -ge $((want - 2)) ] && [ "$at" -le $((want + 2)) ] ||
    fail "renewal planned at $at, want about $want: $line"
renewed=
for _ in $(seq 1 45); do
	sleep 1
	botid_cli cert tbot --out "$T/tbot.new" 2>/dev/null || continue
	s=$(openssl x509 -in "$T/tbot.new" -noout -serial)
	if [ "$s" != "$serial1" ]; then renewed=1; break; fi
done
[ -n "$renewed" ] || fail "tbot's certificate was not renewed within 45 s"
[ "$(date +%s)" -lt "$(date -d "$end1" +%s)" ] ||
    fail "renewed only after the old certificate expired"
check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/tbot.new"

# --- Revocation: a revoked host gets nothing more ------------------------
check "$CA" revoke -c "$BOTID_CA_CONF" host "$host_id"
stop_agent
rm -f "$T/state/certs/"*.pem
start_agent
for _ in $(seq 1 50); do
	grep -q 'bot tbot: no certificate.*revoked' "$AGENT_LOG" && break
	sleep 0.2
done
grep -q 'bot tbot: no certificate.*revoked' "$AGENT_LOG" ||
    fail "no log line says the host is revoked: $(tail -3 "$AGENT_LOG")"
expect_fail botid_cli cert tbot
grep -q 'revoked' "$BOTID_CA_LOG" || fail "the CA log does not mention the revoked host"
echo "PASS: provisioning, bot certificates, renewal and refusals"
