#!/bin/bash
# botid deprovision while a bot's key is being made (botid(1),
# deprovision): swtpm-delay holds every TPM2_Create answer until a gate
# file exists, so the creation of a new bot's key is in the TPM when the
# deprovisioning comes, with no timing assumed. The agent waits for that
# creation to come back, then destroys every key, that one too: no key
# blob, no token object and no key state is left, and the answer comes
# only then. The agent before destroyed the keys at once, answered, and
# the held creation wrote its blob afterwards.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm deprov-creating
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/slow-common.sh"
GATE="$T/create-gate"
start_swtpm_delay tpm hold --log-commands --hold "0x153=$GATE" \
    --hold "0x191=$GATE"
DELAY_LOG="$T/tpm/delay-hold.log"
. "$top_srcdir/tests/integration/agent-common.sh"
me="uid:$(id -u)"

# The first keys are made with the gate open.
touch "$GATE"
agent_conf_begin
agent_add_bot hsm1 pkcs11 ecdsa-p256 "$me"
agent_add_bot tpm1 tpm ecdsa-p256 "$me"
start_agent
agent_keys_made 1
check botid_cli pubkey tpm1 --out "$T/tpm1.pem"
[ -n "$(token_labels | grep '^botid:hsm1')" ] || fail "no hsm1 key on the token"

# A new TPM bot: its key's creation is held in the TPM.
rm -f "$GATE"
off=$(($(stat -c %s "$DELAY_LOG") + 1))
agent_add_bot tpm2 tpm ecdsa-p256 "$me"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 1200); do
	tail -c +"$off" "$DELAY_LOG" |
	    grep -qE '^swtpm-delay: command TPM2_Create(Loaded)?$' && break
	sleep 0.1
done
tail -c +"$off" "$DELAY_LOG" |
    grep -qE '^swtpm-delay: command TPM2_Create(Loaded)?$' ||
    fail "tpm2's key creation never reached the TPM: $(tail -3 "$AGENT_LOG")"

# Deprovisioning (never enrolled: nothing to revoke, every key to
# destroy) while that creation is held.
botid_cli deprovision --yes >"$T/deprov.out" 2>&1 &
dpid=$!
for _ in $(seq 1 1200); do
	grep -q 'deprovisioning: waiting for the key creations in progress' \
	    "$AGENT_LOG" && break
	# The agent before: answered at once.
	kill -0 "$dpid" 2>/dev/null || break
	sleep 0.1
done
waited=0
grep -q 'deprovisioning: waiting for the key creations in progress' \
    "$AGENT_LOG" && waited=1
# While the creation is held, the keys are still there and no answer.
if [ "$waited" -eq 1 ]; then
	kill -0 "$dpid" 2>/dev/null ||
	    fail "deprovision answered before the creation came back: $(cat "$T/deprov.out")"
	[ -e "$T/state/tpm/tpm1.tss2.pem" ] ||
	    fail "tpm1's blob destroyed before the creation came back"
fi
touch "$GATE"
wait "$dpid" || fail "deprovision failed: $(cat "$T/deprov.out")"
deprovisioned
[ -z "$(ls -A "$T/state/keys" 2>/dev/null)" ] ||
    fail "key state left: $(ls "$T/state/keys")"
[ "$waited" -eq 1 ] || fail "the agent did not wait for the creation in progress"
grep -q 'deprovision.*ok' "$AUDIT_LOG" || fail "no audit entry for the deprovisioning"
echo "PASS: deprovisioning waits for a key being made and destroys it too"
