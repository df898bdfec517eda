#!/bin/bash
# The TPM out of object slots while the agent runs, on swtpm (three
# transient slots, no resource manager):
#  - tpm_loaded_keys = 3 and four TPM bots signing in interleaved order:
#    beside the storage primary only two keys fit, so loads meet
#    TPM2_RC_OBJECT_MEMORY at run time and the agent evicts one of its own
#    keys to make room; every signature verifies;
#  - a bot removed by a reload, the agent holds only its storage primary;
#    another client then leaves two copies of that primary loaded (what a
#    killed second agent on the same state leaves): at the next load of a
#    key the TPM has no slot and no key of the agent's is left to evict;
#    the agent flushes those copies, known as its own by their names,
#    loads the key and signs, without a reconnection;
#  - after a clean stop the TPM holds no transient object: none leaked.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
export TPM2TOOLS_TCTI=$BOTID_TCTI
. "$top_srcdir/tests/integration/agent-common.sh"

me="uid:$(id -u)"
agent_conf_begin "tpm_loaded_keys = 3"
for b in t1 t2 t3 t4; do
	agent_add_bot "$b" tpm ecdsa-p256 "$me"
done

transients() {
	tpm2_getcap handles-transient | sed -n 's/^- \(0x[0-9a-fA-F]*\)$/\1/p'
}
sign_ok() {	# sign_ok BOT TAG: a signature that verifies with BOT's key
	printf 'order %s\n' "$2" >"$T/msg.$2"
	rm -f "$T/sig.$2"
	botid_cli sign "$1" --in "$T/msg.$2" --out "$T/sig.$2" 2>"$T/err.$2" &&
	    openssl dgst -sha256 -verify "$T/$1.pem" -signature "$T/sig.$2" \
	    "$T/msg.$2" >/dev/null
}
no_slot() {
	grep -c ': debug: tpm: bot .*: the TPM has no free object slot; making room' \
	    "$AGENT_LOG" || true
}

[ -z "$(transients)" ] || fail "swtpm starts with transient objects"
# With debug lines (where the evictions show); the keys are made in the
# background and start_agent waits for them.
AGENT_ARGS=-v start_agent
grep -q 'serving 4 of 4 configured bots' "$AGENT_LOG" ||
    fail "not every bot is served: $(tail -3 "$AGENT_LOG")"
for b in t1 t2 t3 t4; do
	check botid_cli pubkey "$b" --out "$T/$b.pem"
done

# ---- more bots than slots, signing interleaved
before=$(no_slot)
for round in 1 2 3; do
	for b in t1 t3 t2 t4; do
		sign_ok "$b" "$b.$round" ||
		    fail "$b, round $round: $(cat "$T/err.$b.$round"); $(tail -3 "$AGENT_LOG")"
	done
done
after=$(no_slot)
[ "$after" -gt "$before" ] ||
    fail "no load met a full TPM while signing ($before before, $after after)"
! grep -q 'no free TPM object slot' "$AGENT_LOG" ||
    fail "a request failed for lack of slots: $(grep 'no free TPM' "$AGENT_LOG" | head -1)"

# ---- our own objects, left by another client, fill the TPM at run time
# The TCTI opens a connection per command, so other clients reach swtpm
# while the agent runs. With t2 removed by a reload the agent holds only
# its storage primary (t1's key was evicted for t2's); another client then
# leaves two copies of that primary loaded (as a second agent on the same
# state, or tpm2-openssl with a bot's blob, killed before its cleanup
# would): every slot is full and no key of the agent's is left to evict
# when it next loads t1's.
stop_agent
agent_conf_begin "tpm_loaded_keys = 1"
agent_add_bot t1 tpm ecdsa-p256 "$me"
cp "$AGENT_CONF" "$T/agent-t1.conf"
agent_add_bot t2 tpm ecdsa-p256 "$me"
"$AGENT" -v -c "$AGENT_CONF" 2>>"$AGENT_LOG" &
AGENT_PID=$!
register_pid "$AGENT_PID"
for _ in $(seq 1 600); do
	botid_cli version >/dev/null 2>&1 && break
	kill -0 "$AGENT_PID" 2>/dev/null || fail "agent died at start: $(tail -5 "$AGENT_LOG")"
	sleep 0.1
done
sign_ok t1 before-fill || fail "t1: $(cat "$T/err.before-fill")"
check botid_cli pubkey t2 --out "$T/t2.pem"
sign_ok t2 before-fill || fail "t2: $(cat "$T/err.before-fill")"
cp "$T/agent-t1.conf" "$AGENT_CONF"
kill -HUP "$AGENT_PID"
# Until the old registry lets t2's key go: the primary alone is left.
for _ in $(seq 1 600); do
	[ "$(transients | wc -l)" -eq 1 ] && break
	sleep 0.1
done
[ "$(transients | wc -l)" -eq 1 ] ||
    fail "the agent holds $(transients | wc -l) objects after t2 went, not its primary alone"
primary=$(transients)
for copy in 1 2; do
	tpm2_createprimary -C o -G ecc256:null:aes128cfb -g sha256 \
	    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda' \
	    -c "$T/copy$copy.ctx" >/dev/null 2>"$T/copy$copy.err" ||
	    fail "tpm2_createprimary: $(cat "$T/copy$copy.err")"
done
[ "$(transients | wc -l)" -eq 3 ] || fail "the TPM is not full: $(transients)"
for h in $(transients); do
	tpm2_readpublic -c "$h" | grep '^name:'
done | sort | uniq -c | grep -q '^ *3 name:' ||
    fail "the copies are not the agent's storage primary"
sign_ok t1 full || fail "t1 with the TPM full of our objects: $(cat "$T/err.full"); $(tail -3 "$AGENT_LOG")"
grep -q "tpm: bot 't1': flushed 2 transient objects an earlier run of the agent left" \
    "$AGENT_LOG" || fail "the key load did not flush the copies: $(tail -5 "$AGENT_LOG")"
! grep -q 'lost the TPM' "$AGENT_LOG" ||
    fail "the agent reconnected: the flush ran at connection, not at the load"
[ "$(transients | wc -l)" -eq 2 ] && transients | grep -qx "$primary" ||
    fail "the TPM holds $(transients), not the agent's primary and t1's key"
sign_ok t1 after-full || fail "t1 after the flush: $(cat "$T/err.after-full")"
stop_agent
left=$(transients)
[ -z "$left" ] || fail "the TPM still holds transient objects after a clean stop: $left"
echo "PASS: out of TPM slots at run time, with our own objects left by another client"
