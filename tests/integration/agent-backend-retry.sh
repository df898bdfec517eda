#!/bin/bash
# A backend that was down when the agent started comes back on its own,
# with no SIGHUP: the agent starts while swtpm is not listening, with a TPM
# bot and a SoftHSM2 bot. The SoftHSM2 bot signs at once; the TPM bot's
# caller gets UNAVAILABLE (11) and no signature. Then swtpm starts on its
# port: the agent, retrying with a capped backoff, serves the TPM bot
# (waited for through its log line, then a signature verified with the
# bot's key), logs the wait once and not each try, and the SoftHSM2 bot
# keeps its key and signs throughout. The same with SoftHSM2's token
# directory absent at start: its bot answers UNAVAILABLE, the TPM bot
# signs, and once the directory is back the bot signs with its old key;
# and once more with the directory gone while the agent runs.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm retry
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

me="uid:$(id -u)"
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "$me"
agent_add_bot pbot pkcs11 ecdsa-p256 "$me"

sign_ok() {	# sign_ok BOT TAG: a signature that verifies with BOT's key
	printf 'order %s\n' "$2" >"$T/msg.$2"
	rm -f "$T/sig.$2"
	botid_cli sign "$1" --in "$T/msg.$2" --out "$T/sig.$2" 2>"$T/err.$2" &&
	    openssl dgst -sha256 -verify "$T/$1.pem" -signature "$T/sig.$2" \
	    "$T/msg.$2" >/dev/null
}

# The TPM is down before the agent starts: its port is closed.
stop_swtpm tpm
# With debug lines (the tries show there and only there); tbot's key
# cannot be made with the TPM down, so no wait for the keys.
AGENT_ARGS=-v AGENT_NO_KEY_WAIT=1 start_agent
grep -q 'bot tbot: not served: backend unavailable' "$AGENT_LOG" ||
    fail "tbot was served with no TPM: $(tail -3 "$AGENT_LOG")"
# pbot's key is made in the background: it serves once the key exists.
for _ in $(seq 1 1200); do
	grep -q 'bot pbot: its new key is made: served' "$AGENT_LOG" && break
	kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died: $(tail -3 "$AGENT_LOG")"
	sleep 0.1
done
check botid_cli pubkey pbot --out "$T/pbot.pem"
sign_ok pbot first || fail "the SoftHSM2 bot cannot sign with the TPM down: $(cat "$T/err.first")"
st=$(status_of tbot) || fail "no reply to the status probe"
[ "$st" = 11 ] || fail "status $st, not 11 (UNAVAILABLE), for tbot with no TPM"
rc=0
botid_cli sign tbot --in "$T/msg.first" --out "$T/down.sig" 2>"$T/down.err" || rc=$?
[ "$rc" -eq 5 ] || fail "exit status $rc, not 5 (unavailable): $(cat "$T/down.err")"
[ ! -s "$T/down.sig" ] || fail "a signature was written with no TPM"
grep -q 'sign: unavailable' "$T/down.err" || fail "unclear error: $(cat "$T/down.err")"
# Two tries have failed (the agent logs them at debug level only): the
# next is 4 s away.
for _ in $(seq 1 600); do
	grep -q 'still wait for their TPM or token: next try in 4 s' \
	    "$AGENT_LOG" && break
	sleep 0.1
done
grep -q 'next try in 4 s' "$AGENT_LOG" ||
    fail "the agent does not try again with a backoff: $(tail -3 "$AGENT_LOG")"
st=$(status_of tbot) || fail "no reply to the status probe"
[ "$st" = 11 ] || fail "status $st, not 11, while the TPM is still down"

# swtpm back on the same port: no signal to the agent.
swtpm_by_hand tpm not-need-init,startup-clear
ok=
# Its key never existed (the TPM was down at start): it is made in the
# background once the TPM is back, then the bot is served.
for _ in $(seq 1 1200); do
	grep -q 'bot tbot: its TPM is available again: its key is being made' \
	    "$AGENT_LOG" && grep -q 'bot tbot: its new key is made: served' \
	    "$AGENT_LOG" && { ok=1; break; }
	kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died: $(tail -3 "$AGENT_LOG")"
	sleep 0.1
done
[ -n "$ok" ] || fail "tbot not served 120 s after the TPM came back, without SIGHUP: $(tail -3 "$AGENT_LOG")"
check botid_cli pubkey tbot --out "$T/tbot.pem"
sign_ok tbot back || fail "tbot cannot sign once the TPM is back: $(cat "$T/err.back")"
st=$(status_of tbot) || fail "no reply to the status probe"
[ "$st" = 0 ] || fail "status $st, not 0, once the TPM is back"
# The SoftHSM2 bot was not disturbed: same key, still signing.
sign_ok pbot after || fail "the SoftHSM2 bot fails after the TPM came back: $(cat "$T/err.after")"
! grep -q 'reloading' "$AGENT_LOG" || fail "the agent reloaded: nothing should have asked it to"
# Once per state change, not per try.
[ "$(grep -c 'for a TPM or token that is unavailable' "$AGENT_LOG")" -eq 1 ] ||
    fail "the wait is not logged exactly once: $(grep -c 'for a TPM or token' "$AGENT_LOG")"
[ "$(grep -c ': error: bot tbot: not served' "$AGENT_LOG")" -eq 1 ] ||
    fail "each try logged its failure: $(grep 'not served' "$AGENT_LOG" | tail -2)"
[ "$(grep -c ': debug: tpm: cannot open TCTI' "$AGENT_LOG")" -ge 2 ] ||
    fail "fewer than two tries failed before the TPM was back"
[ "$(grep -c ': error: tpm: cannot open TCTI' "$AGENT_LOG")" -le 1 ] ||
    fail "each try logged the TCTI failure"
grep -q 'every bot.s TPM or token is available' "$AGENT_LOG" ||
    fail "the end of the wait is not logged"
stop_agent

# ---- the SoftHSM2 token's directory absent at start, then back: SoftHSM2
# cannot even initialise, which is an outage like a TPM that is down.
mv "$T/hsm/tokens" "$T/hsm/tokens.away"
: >"$AGENT_LOG"
start_agent
grep -q 'bot pbot: not served: backend unavailable' "$AGENT_LOG" ||
    fail "pbot was not found unavailable: $(tail -3 "$AGENT_LOG")"
st=$(status_of pbot) || fail "no reply to the status probe"
[ "$st" = 11 ] || fail "status $st, not 11 (UNAVAILABLE), for pbot with no token"
rc=0
botid_cli sign pbot --in "$T/msg.first" --out "$T/hsm-down.sig" 2>"$T/hsm-down.err" || rc=$?
[ "$rc" -eq 5 ] && [ ! -s "$T/hsm-down.sig" ] ||
    fail "pbot with no token: exit status $rc, not 5: $(cat "$T/hsm-down.err")"
sign_ok tbot hsm-down || fail "the TPM bot fails while the token is away: $(cat "$T/err.hsm-down")"
mv "$T/hsm/tokens.away" "$T/hsm/tokens"
ok=
for _ in $(seq 1 1200); do
	grep -q 'bot pbot: its token is available again: served' "$AGENT_LOG" &&
	    { ok=1; break; }
	kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died: $(tail -3 "$AGENT_LOG")"
	sleep 0.1
done
[ -n "$ok" ] || fail "pbot not served 120 s after its token came back: $(tail -3 "$AGENT_LOG")"
# The same key as before (pbot.pem is from the first start): found again.
sign_ok pbot hsm-back || fail "pbot cannot sign with its key once the token is back: $(cat "$T/err.hsm-back")"

# ---- the token's directory gone while the agent runs, then back: the
# agent gives the token up and opens it anew (SoftHSM2 keeps a token it
# lost invalid until it is initialised again).
mv "$T/hsm/tokens" "$T/hsm/tokens.away"
rc=0
botid_cli sign pbot --in "$T/msg.first" --out "$T/hsm-gone.sig" 2>"$T/hsm-gone.err" || rc=$?
[ "$rc" -eq 5 ] && [ ! -s "$T/hsm-gone.sig" ] ||
    fail "pbot with its token gone: exit status $rc, not 5: $(cat "$T/hsm-gone.err")"
ok=
for _ in $(seq 1 600); do
	grep -q 'bot pbot: its token is unavailable: the bots on it wait' "$AGENT_LOG" &&
	    { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "the agent did not give the token up: $(tail -3 "$AGENT_LOG")"
st=$(status_of pbot) || fail "no reply to the status probe"
[ "$st" = 11 ] || fail "status $st, not 11, for pbot with its token gone"
sign_ok tbot hsm-gone || fail "the TPM bot fails while the token is gone: $(cat "$T/err.hsm-gone")"
mv "$T/hsm/tokens.away" "$T/hsm/tokens"
ok=
for _ in $(seq 1 1200); do
	[ "$(grep -c 'bot pbot: its token is available again: served' "$AGENT_LOG")" -ge 2 ] &&
	    { ok=1; break; }
	kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died: $(tail -3 "$AGENT_LOG")"
	sleep 0.1
done
[ -n "$ok" ] || fail "pbot not served 120 s after its token came back at run time: $(tail -3 "$AGENT_LOG")"
sign_ok pbot hsm-again || fail "pbot cannot sign with its key after the token came back: $(cat "$T/err.hsm-again")"
! grep -q 'reloading' "$AGENT_LOG" || fail "the agent reloaded"
stop_agent
echo "PASS: a TPM or a SoftHSM2 token down at start or lost at run time is served once it is back, without SIGHUP"
