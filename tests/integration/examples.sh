#!/bin/bash
# The example bots (examples/): chatty (C, libbotid) gets a JWT with scope
# inventory:read from its agent and reads from inventory (Python, standard
# library, wire protocol) over HTTP; inventory checks the token with
# `botid verify-jwt`, refuses a write without inventory:write, and signs
# every response, which chatty verifies (botid_verify_msg). Real botid-ca,
# swtpm and SoftHSM2 fixtures.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm examples
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
PY=${PYTHON3:-/usr/bin/python3}
CHATTY="$top_builddir/examples/chatty"

start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)"
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")
me="uid:$(id -u)"
agent_conf_begin
agent_add_bot chatty tpm ecdsa-p256 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
agent_add_bot restocker pkcs11 ecdsa-p256 "$me"
echo "scopes = inventory:read inventory:write" >>"$AGENT_CONF"
agent_add_bot inventory pkcs11 ecdsa-p256 "$me"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h \
    --bots chatty,restocker,inventory >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" \
    --join-token-file "$T/join.token" >/dev/null
start_agent
for bot in chatty restocker inventory; do
	ok=
	for _ in $(seq 1 150); do
		botid_cli cert "$bot" >/dev/null 2>&1 && { ok=1; break; }
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no certificate for $bot: $(tail -5 "$AGENT_LOG")"
done
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' \
    "$T/state/attest/host.json")
inv_id="spiffe://$TD/host/$host_id/bot/inventory"

"$PY" "$top_srcdir/examples/inventory.py" --bot inventory \
    --bundle "$BOTID_CA_BUNDLE" --socket "$AGENT_SOCK" \
    --port-file "$T/inv.port" --botid "$BOTID" 2>"$T/inventory.log" &
register_pid $!
for _ in $(seq 1 100); do [ -s "$T/inv.port" ] && break; sleep 0.1; done
[ -s "$T/inv.port" ] || fail "inventory did not start: $(cat "$T/inventory.log")"
port=$(cat "$T/inv.port")
chatty() {
	"$CHATTY" --socket "$AGENT_SOCK" --bundle "$BOTID_CA_BUNDLE" \
	    --port "$port" --expect-spiffe "$inv_id" "$@"
}

# Read with a read-only token: allowed, and the answer is inventory's.
out=$(chatty --bot chatty read) || fail "chatty read: $out"
case $out in
"200 from $inv_id: "*'"caller": "spiffe://'*'/bot/chatty"'*'"widget": 12'*) ;;
*) fail "chatty read: $out";;
esac

# Write with the same read-only token: inventory refuses it.
rc=0
out=$(chatty --bot chatty write gear 5) || rc=$?
[ "$rc" -eq 3 ] || fail "a write with inventory:read only was not refused ($rc): $out"
case $out in *403*'"needs": "inventory:write"'*) ;; *) fail "write refusal: $out";; esac
grep -q 'refused: .*lacks scope inventory:write' "$T/inventory.log" ||
    fail "inventory does not log why: $(tail -3 "$T/inventory.log")"

# chatty cannot even get a write token: its grant is read only.
rc=0
out=$(chatty --bot chatty --scope inventory:write write gear 5 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "chatty got a write token ($rc): $out"
case $out in *"no token"*"not granted"*) ;; *) fail "chatty write token: $out";; esac

# restocker may write.
out=$(chatty --bot restocker --scope inventory:write write gear 5) ||
    fail "restocker write: $out"
case $out in *'"count": 8'*) ;; *) fail "restocker write: $out";; esac

# No token, and a response signed by someone else, are refused.
out=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/items")
[ "$out" = 403 ] || fail "no token: HTTP $out"
out=$("$CHATTY" --socket "$AGENT_SOCK" --bundle "$BOTID_CA_BUNDLE" \
    --port "$port" --expect-spiffe "spiffe://$TD/host/$host_id/bot/chatty" \
    --bot chatty read 2>&1) && fail "a response from the wrong bot was believed"
case $out in *"signature is bad"*"not spiffe"*) ;; *) fail "wrong signer: $out";; esac
echo "PASS: example bots chatty and inventory"
