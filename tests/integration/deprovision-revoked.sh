#!/bin/bash
# botid deprovision and the CA (doc/lifecycle.md, botid(1)): with the CA
# unreachable it destroys nothing (exit 5, the one-line reason, every TPM
# blob byte for byte, every token object, the attestation state, the agent
# still signing with the same keys, the failure audited), as with a CA
# that refuses without saying the host is revoked; after an
# operator's `botid-ca revoke host`, the CA refuses the host's own
# revocation (403, "host_revoked": true) and the agent takes that as the
# revocation it asked for: every key is destroyed, audited as already
# revoked, and the agent stops. The agent before refused for ever there
# ("the CA did not revoke the host, nothing was destroyed") and kept the
# keys of a host the operator had retired.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm deprov-revoked
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
me="uid:$(id -u)"

start_ca ca "$BOTID_EK_CA_CHAIN" "bot_lifetime = 3600"
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "$me"
agent_add_bot pbot pkcs11 ecdsa-p256 "$me"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' \
    "$T/state/attest/host.json")
[ -n "$host_id" ] || fail "no host id in host.json"
start_agent
for bot in tbot pbot; do
	for _ in $(seq 1 300); do
		botid_cli cert "$bot" --out "$T/$bot.chain" 2>/dev/null && break
		sleep 0.1
	done
	check botid_cli cert "$bot" --out "$T/$bot.chain"
	check botid_cli pubkey "$bot" --out "$T/$bot.pem"
done
printf 'deprovision test\n' >"$T/msg"

# keys_state: every key blob (bots' and the host's) with its hash, the
# botid objects on the token, and the attestation state's files.
keys_state() {
	(cd "$T/state" && find . -name '*.tss2.pem' | sort | xargs sha256sum)
	token_labels | sort
	(cd "$T/state/attest" && sha256sum -- *)
}
# deprovision_audit: the result and detail of each deprovision line.
deprovision_audit() {
	python3 -c '
import json, sys
for l in map(json.loads, open(sys.argv[1])):
    if l.get("op") == "deprovision":
        print(l["result"], l.get("detail"))' "$AUDIT_LOG"
}

# --- The CA unreachable: nothing is destroyed ----------------------------
CA_PORT=$(cat "$T/ca/port")
kill -TERM "$BOTID_CA_PID"
wait "$BOTID_CA_PID" 2>/dev/null || true
before=$(keys_state)
[ "$(token_labels | grep -c '^botid:')" -ge 1 ] ||
    fail "no botid object on the token to begin with"
set +e
msg=$(botid_cli deprovision --yes 2>&1)
rc=$?
set -e
[ "$rc" -eq 5 ] || fail "deprovision with the CA down: exit $rc ($msg), want 5"
case $msg in
"botid: deprovision: unavailable: "*"the CA did not revoke the host, nothing was destroyed: cannot reach the CA at $BOTID_CA_URL: "*) ;;
*) fail "deprovision with the CA down said: $msg";;
esac
[ "$(printf '%s\n' "$msg" | wc -l)" -eq 1 ] || fail "not one line: $msg"
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent stopped: $(tail -3 "$AGENT_LOG")"
[ "$(keys_state)" = "$before" ] ||
    fail "a deprovision the CA never saw changed keys: $(diff <(echo "$before") <(keys_state))"
for bot in tbot pbot; do
	check botid_cli sign "$bot" --in "$T/msg" --out "$T/$bot.sig"
	check openssl dgst -sha256 -verify "$T/$bot.pem" \
	    -signature "$T/$bot.sig" "$T/msg"
done
case $(deprovision_audit) in
"error the CA did not revoke the host, nothing was destroyed: cannot reach the CA"*) ;;
*) fail "the failed deprovision is not audited as such: $(deprovision_audit)";;
esac
echo "CA down: deprovision refused, every key kept, both bots sign"

# --- Revoked by the operator first: the keys go --------------------------
sed -i "s/^listen = .*/listen = 127.0.0.1:$CA_PORT/" "$BOTID_CA_CONF"
"$CA" serve -c "$BOTID_CA_CONF" 2>>"$BOTID_CA_LOG" &
BOTID_CA_PID=$!
register_pid "$BOTID_CA_PID"
for _ in $(seq 1 100); do
	curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/health/live" \
	    >/dev/null && break
	sleep 0.1
done
# A refusal that does not say the host is revoked destroys nothing: the
# CA's record of the host renamed for a moment, it answers 403 "unknown
# host" (no host_revoked), and the agent keeps every key.
db_sql() { sqlite3 "$T/ca/ca.db" "$1"; }
db_sql "UPDATE hosts SET id = 'x$host_id' WHERE id = '$host_id'"
set +e
msg=$(botid_cli deprovision --yes 2>&1)
rc=$?
set -e
db_sql "UPDATE hosts SET id = '$host_id' WHERE id = 'x$host_id'"
[ "$rc" -ne 0 ] || fail "deprovision of a host the CA does not know succeeded"
case $msg in
"botid: deprovision: "*"the CA did not revoke the host, nothing was destroyed: the CA refused (HTTP 403): unknown host") ;;
*) fail "deprovision of a host the CA does not know said: $msg";;
esac
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent stopped: $(tail -3 "$AGENT_LOG")"
[ "$(keys_state)" = "$before" ] ||
    fail "a refused deprovision changed keys: $(diff <(echo "$before") <(keys_state))"
check botid_cli sign tbot --in "$T/msg" --out "$T/tbot.sig"
echo "unknown host: deprovision refused, every key kept"

check "$CA" revoke -c "$BOTID_CA_CONF" host "$host_id"
# What the agent hears: 403, in words and in a member.
ans=$(curl -s --cacert "$BOTID_CA_BUNDLE" -H 'Content-Type: application/json' \
    -d "{\"host_id\": \"$host_id\"}" -w ' %{http_code}' \
    "$BOTID_CA_URL/v1/nonce")
[ "$ans" = "{\"error\":\"host $host_id is revoked\",\"host_revoked\":true} 403" ] ||
    fail "the CA's nonce answer for a revoked host: $ans"
msg=$(botid_cli deprovision --yes 2>&1) ||
    fail "deprovision of a host the operator revoked: $msg"
[ "$msg" = "deprovisioned: host revoked, every key destroyed, agent stopping" ] ||
    fail "deprovision of a revoked host said: $msg"
deprovisioned
[ ! -e "$T/state/attest" ] || fail "attestation state left: $(ls "$T/state/attest")"
[ -z "$(find "$T/state" -name '*.tss2.pem')" ] ||
    fail "key blobs left: $(find "$T/state" -name '*.tss2.pem')"
[ "$(deprovision_audit | tail -1)" = "ok host already revoked at the CA, every key destroyed" ] ||
    fail "the deprovision is not audited as such: $(deprovision_audit)"
grep -q "deprovisioning: the CA says the host was already revoked: every key is destroyed" \
    "$AGENT_LOG" || fail "the agent's log does not say why: $(tail -3 "$AGENT_LOG")"
check "$BOTID" audit verify "$AUDIT_LOG"
echo "PASS: deprovision keeps every key while the CA is down, destroys them once the CA says the host is revoked"
