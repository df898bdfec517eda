#!/bin/bash
# Recovery after kill -9 on a TPM without a resource manager (swtpm over
# TCP, like /dev/tpm0): the killed agent leaves its storage primary and bot
# keys loaded, and the next one must sign with no manual step, also after a
# SIGHUP; it flushes the objects an earlier run of the agent left, known by
# their names, and leaves alone an object some other client loaded.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
export TPM2TOOLS_TCTI=$BOTID_TCTI
. "$top_srcdir/tests/integration/agent-common.sh"

me="uid:$(id -u)"
# One bot key loaded at a time: the primary and one key are left.
agent_conf_begin "tpm_loaded_keys = 1"
agent_add_bot tbot tpm ecdsa-p256 "$me"
agent_add_bot ubot tpm ecdsa-p256 "$me"

# transients: the transient handles the TPM holds now, one a line.
transients() {
	tpm2_getcap handles-transient | sed -n 's/^- \(0x[0-9a-fA-F]*\)$/\1/p' |
	    sort
}

sign_ok() {	# sign_ok BOT TAG: a signature that verifies with BOT's key
	printf 'order %s\n' "$2" >"$T/msg.$2"
	rm -f "$T/sig.$2"
	botid_cli sign "$1" --in "$T/msg.$2" --out "$T/sig.$2" 2>"$T/err.$2" &&
	    openssl dgst -sha256 -verify "$T/$1.pem" -signature "$T/sig.$2" \
	    "$T/msg.$2" >/dev/null
}

# kill9: the agent dies with its objects loaded (no clean shutdown).
kill9() {
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
}

[ -z "$(transients)" ] || fail "swtpm starts with transient objects: $(transients)"
start_agent
check botid_cli pubkey tbot --out "$T/tbot.pem"
check botid_cli pubkey ubot --out "$T/ubot.pem"
sign_ok tbot first || fail "tbot cannot sign: $(cat "$T/err.first")"

# ---- the case of the report: the storage primary and one bot key left
# loaded by a killed agent (3 slots: the next primary fits, the key not).
kill9
# The ubot key was evicted for tbot's: the primary and tbot are left.
[ "$(transients | wc -l)" -eq 2 ] ||
    fail "the killed agent left $(transients | wc -l) objects, not 2: $(transients)"
start_agent
sign_ok tbot after-kill ||
    fail "no signature after kill -9 and restart: $(cat "$T/err.after-kill"); $(tail -3 "$AGENT_LOG")"
sign_ok ubot after-kill-u ||
    fail "ubot: no signature after kill -9: $(cat "$T/err.after-kill-u")"
grep -q 'flushed [0-9]* transient objects an earlier run of the agent left' \
    "$AGENT_LOG" || fail "the flush is not logged: $(tail -3 "$AGENT_LOG")"
! grep -q 'no free TPM object slot' "$AGENT_LOG" ||
    fail "the agent ran out of slots: $(grep 'no free' "$AGENT_LOG" | head -1)"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 600); do
	grep -q '^.*reloading ' "$AGENT_LOG" && break
	sleep 0.1
done
sign_ok tbot after-hup || fail "no signature after SIGHUP: $(cat "$T/err.after-hup")"
sign_ok ubot after-hup-u || fail "ubot: no signature after SIGHUP: $(cat "$T/err.after-hup-u")"

# ---- every slot full: the primary, a bot key and an object of another
# client. The other client's object must stay; ours go.
kill9
[ "$(transients | wc -l)" -eq 2 ] ||
    fail "the killed agent left $(transients | wc -l) objects, not 2: $(transients)"
before=$(transients)
openssl ecparam -name prime256v1 -genkey -noout -out "$T/other.key" 2>/dev/null
openssl ec -in "$T/other.key" -pubout -out "$T/other.pub" 2>/dev/null
tpm2_loadexternal -C n -G ecc -u "$T/other.pub" -c "$T/other.ctx" \
    -n "$T/other.name" >/dev/null 2>"$T/loadexternal.err" ||
    fail "tpm2_loadexternal: $(cat "$T/loadexternal.err")"
other=$(comm -13 <(echo "$before") <(transients))
[ "$(echo "$other" | wc -w)" -eq 1 ] || fail "cannot find the other object: $other"
[ "$(transients | wc -l)" -eq 3 ] || fail "the TPM is not full: $(transients)"
start_agent
sign_ok tbot full || fail "no signature with every slot full: $(cat "$T/err.full"); $(tail -3 "$AGENT_LOG")"
sign_ok ubot full-u || fail "ubot: no signature with every slot full: $(cat "$T/err.full-u")"
transients | grep -qx "$other" ||
    fail "the agent flushed $other, an object it did not load: $(transients)"
tpm2_readpublic -c "$other" -n "$T/other.name2" >/dev/null 2>&1 ||
    fail "$other does not answer TPM2_ReadPublic"
cmp -s "$T/other.name" "$T/other.name2" ||
    fail "$other is no longer the other client's object"
stop_agent
# A clean stop flushes what the agent loaded; the other object stays.
[ "$(transients)" = "$other" ] ||
    fail "after a clean stop the TPM holds $(transients), not $other alone"
echo "ok: kill -9 recovery, SIGHUP, foreign object kept"
