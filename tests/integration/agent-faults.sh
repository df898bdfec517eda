#!/bin/bash
# Faults botid-agent rides out without a restart, on swtpm, SoftHSM2 and a
# real botid-ca with 30-second certificates:
#  - the CA down: certificates keep being served and used, renewals fail
#    and back off, loudly; the CA back on its port: renewal succeeds;
#  - swtpm killed under a signing load: requests fail with status
#    UNAVAILABLE (11), never DENIED, meanwhile (the SoftHSM2 bot keeps
#    signing), a caller the bot does not allow still gets DENIED, and once
#    the TPM is back the agent reconnects, reloads the keys and signs again;
#  - the TPM down when the agent starts: its bots answer UNAVAILABLE to
#    their callers, DENIED to others, and a reload with the TPM back
#    serves them;
#  - the token's storage gone: a clear error for its bot, none for others;
#  - the disk full while a new key's blob is written: the reload fails for
#    that bot only, no partial file is left, the old blobs are untouched,
#    and with space again a reload makes the key.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm faults
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)" "bot_lifetime = 30s"
ca_port=$(cat "$T/ca/port")
me="uid:$(id -u)"
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "$me"
agent_add_bot pbot pkcs11 ecdsa-p256 "$me"
# A TPM bot this caller may not use: its refusals stay DENIED.
agent_add_bot xbot tpm ecdsa-p256 "uid:65534"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot,pbot,xbot >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" \
    --join-token-file "$T/join.token" >/dev/null
start_agent
serial() {
	botid_cli cert "$1" 2>/dev/null | openssl x509 -noout -serial 2>/dev/null
}
for b in tbot pbot; do
	for _ in $(seq 1 150); do
		[ -n "$(serial "$b")" ] && break
		sleep 0.2
	done
	[ -n "$(serial "$b")" ] || fail "no certificate for $b: $(tail -3 "$AGENT_LOG")"
	check botid_cli pubkey "$b" --out "$T/$b.pem"
done
# wait_lines FILE PATTERN N: waits until FILE has N lines matching PATTERN
# (an event, not a while: 60 s is only the bound for a hung test).
wait_lines() {
	for _ in $(seq 1 600); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
sign_ok() {	# sign_ok BOT TAG: a signature that verifies
	printf 'order %s\n' "$2" >"$T/msg.$2"
	botid_cli sign "$1" --in "$T/msg.$2" --out "$T/sig.$2" 2>"$T/err.$2" &&
	    openssl dgst -sha256 -verify "$T/$1.pem" -signature "$T/sig.$2" \
	    "$T/msg.$2" >/dev/null
}

# ---- the CA down, then back
# A fresh certificate is not renewed at once (notBefore is dated back).
old=$(serial tbot)
sleep 3
[ "$(serial tbot)" = "$old" ] || fail "a fresh certificate was renewed at once"
[ "$(grep -c 'bot tbot: new certificate' "$AGENT_LOG")" -eq 1 ] ||
    fail "renewed without need: $(grep 'new certificate' "$AGENT_LOG")"
kill -KILL "$BOTID_CA_PID"
wait "$BOTID_CA_PID" 2>/dev/null || true
# Renewal is due at half of 30 s: it fails, is retried, and is logged.
for _ in $(seq 1 300); do
	grep -q 'bot tbot: certificate renewal failed' "$AGENT_LOG" && break
	sleep 0.1
done
grep -q 'bot tbot: certificate renewal failed (attempt 1).*still serving the current one' \
    "$AGENT_LOG" || fail "no loud renewal failure: $(tail -3 "$AGENT_LOG")"
[ "$(serial tbot)" = "$old" ] || fail "the certificate changed with the CA down"
sign_ok tbot ca-down || fail "signing failed with the CA down: $(cat "$T/err.ca-down")"
# botid-ca back on the same port: the next retry renews.
sed "s/^listen = .*/listen = 127.0.0.1:$ca_port/" "$BOTID_CA_CONF" >"$T/ca/ca2.conf"
"$CA" serve -c "$T/ca/ca2.conf" 2>>"$BOTID_CA_LOG" &
register_pid $!
new=$old
for _ in $(seq 1 300); do
	new=$(serial tbot)
	[ -n "$new" ] && [ "$new" != "$old" ] && break
	sleep 0.1
done
[ "$new" != "$old" ] || fail "no renewal after the CA came back: $(tail -3 "$AGENT_LOG")"
openssl verify -CAfile "$BOTID_CA_BUNDLE" <(botid_cli cert tbot) >/dev/null ||
    fail "the renewed certificate does not verify"

# ---- swtpm killed under load, then back
agent_pid=$AGENT_PID
(
	i=0
	while [ ! -e "$T/load.stop" ]; do
		i=$((i + 1))
		if sign_ok tbot "load.$i"; then echo ok; else
			echo "fail $(head -1 "$T/err.load.$i")"; fi
	done >"$T/load.out"
) &
load_pid=$!
register_pid "$load_pid"
# The load has signed before the TPM goes, whatever the scheduling.
wait_lines "$T/load.out" '^ok' 3 || fail "the load does not sign"
kill -KILL "$(fixture_var tpm SWTPM_PID)"
wait_lines "$T/load.out" '^fail' 1 || fail "the load never saw the TPM gone"
rc=0
rm -f "$T/down.sig"
botid_cli sign tbot --in "$T/msg.ca-down" --out "$T/down.sig" 2>"$T/down.err" || rc=$?
[ "$rc" -eq 5 ] || fail "exit status $rc, not 5 (unavailable), with no TPM: $(cat "$T/down.err")"
[ ! -s "$T/down.sig" ] || fail "a signature was written with no TPM"
grep -q 'sign: unavailable' "$T/down.err" || fail "unclear error with no TPM: $(cat "$T/down.err")"
st=$(status_of tbot) || fail "no reply to the status probe"
[ "$st" = 11 ] || fail "status $st, not 11 (UNAVAILABLE), for a TPM bot with no TPM"
# A real denial stays a denial while the TPM is down.
st=$(status_of xbot) || fail "no reply to the status probe"
[ "$st" = 4 ] || fail "status $st, not 4 (DENIED), for a bot this caller may not use"
st=$(status_of nosuchbot) || fail "no reply to the status probe"
[ "$st" = 4 ] || fail "status $st, not 4 (DENIED), for no such bot"
rc=0
botid_cli sign xbot --in "$T/msg.ca-down" --out "$T/x.sig" 2>"$T/x.err" || rc=$?
[ "$rc" -eq 3 ] && [ ! -e "$T/x.sig" ] && grep -q 'sign: denied' "$T/x.err" ||
    fail "xbot: exit status $rc, not 3 (denied): $(cat "$T/x.err")"
sign_ok pbot tpm-down || fail "the SoftHSM2 bot failed while the TPM was down: $(cat "$T/err.tpm-down")"
swtpm_by_hand tpm not-need-init,startup-clear
ok=
for _ in $(seq 1 100); do
	sign_ok tbot "tpm-back" && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "no signature after the TPM came back: $(tail -3 "$AGENT_LOG")"
# The load signs again: three more signatures than it had made by now.
oks=$(grep -c '^ok' "$T/load.out")
wait_lines "$T/load.out" '^ok' $((oks + 3)) || fail "the load does not sign again"
touch "$T/load.stop"
wait "$load_pid"
[ "$AGENT_PID" = "$agent_pid" ] && kill -0 "$AGENT_PID" || fail "the agent restarted"
grep -q '^ok' "$T/load.out" || fail "the load never signed"
grep -q '^fail' "$T/load.out" || fail "the load never saw the TPM gone"
tail -1 "$T/load.out" | grep -q '^ok' || fail "the load ends failing: $(tail -1 "$T/load.out")"
! grep '^fail' "$T/load.out" | grep -vq 'sign: unavailable' ||
    fail "unclear errors: $(grep '^fail' "$T/load.out" | sort | uniq -c)"
# ---- the token's storage gone: its bot fails with a clear error, the
# TPM bot is not held up. (Its coming back is agent-backend-retry.sh's;
# this is the last use of pbot here.)
mv "$T/hsm/tokens" "$T/hsm/tokens.away"
rc=0
botid_cli sign pbot --in "$T/msg.ca-down" --out "$T/away.sig" 2>"$T/away.err" || rc=$?
[ "$rc" -ne 0 ] || fail "signed with the token gone"
grep -q 'backend unavailable' "$T/away.err" || fail "unclear error with the token gone: $(cat "$T/away.err")"
sign_ok tbot token-away || fail "the TPM bot failed while the token was gone: $(cat "$T/err.token-away")"
mv "$T/hsm/tokens.away" "$T/hsm/tokens"
stop_agent

# ---- the TPM down when the agent starts: an outage, not a refusal
swtpm_by_hand_stop KILL
start_agent
grep -q 'bot tbot: not served: backend unavailable' "$AGENT_LOG" ||
    fail "tbot was served with no TPM: $(tail -3 "$AGENT_LOG")"
st=$(status_of tbot) || fail "no reply to the status probe"
[ "$st" = 11 ] || fail "status $st, not 11 (UNAVAILABLE), for tbot with no TPM at start"
st=$(status_of xbot) || fail "no reply to the status probe"
[ "$st" = 4 ] || fail "status $st, not 4 (DENIED), for xbot with no TPM at start"
rc=0
rm -f "$T/start-down.sig"
botid_cli sign tbot --in "$T/msg.ca-down" --out "$T/start-down.sig" 2>"$T/start-down.err" || rc=$?
[ "$rc" -eq 5 ] && [ ! -s "$T/start-down.sig" ] ||
    fail "tbot with no TPM at start: exit status $rc, not 5: $(cat "$T/start-down.err")"
swtpm_by_hand tpm not-need-init,startup-clear
kill -HUP "$AGENT_PID"
ok=
for _ in $(seq 1 600); do
	sign_ok tbot "start-back" && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "no signature after the TPM came back and a reload: $(tail -3 "$AGENT_LOG")"
stop_agent

# ---- the disk full while a key blob is written
mkdir "$T/small"
mount -t tmpfs -o size=256k,mode=0700 tmpfs "$T/small" || fail "cannot mount a tmpfs"
register_mount "$T/small"
AGENT_CONF="$T/small.conf"
{
	echo "[agent]"
	echo "socket = $AGENT_SOCK"
	echo "state_dir = $T/small/state"
	echo "audit_log = none"
	echo "tcti = $BOTID_TCTI"
	echo
} >"$AGENT_CONF"
agent_add_bot keep tpm ecdsa-p256 "$me"
start_agent
check botid_cli pubkey keep --out "$T/keep.pem"
before=$(cd "$T/small/state" && find . -type f | sort | xargs sha256sum)
dd if=/dev/zero of="$T/small/fill" bs=4k count=1000 2>/dev/null || true
[ "$(df --output=avail "$T/small" | tail -1)" -le 4 ] || fail "the tmpfs is not full"
agent_add_bot fresh tpm ecdsa-p256 "$me"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 100); do
	grep -q 'No space left on device' "$AGENT_LOG" && break
	sleep 0.1
done
grep -q "bot 'fresh'.*No space left on device" "$AGENT_LOG" ||
    fail "no disk-full error for the new key: $(tail -3 "$AGENT_LOG")"
sign_ok keep disk-full || fail "the existing bot failed with the disk full"
! botid_cli pubkey fresh >/dev/null 2>&1 || fail "a key with no blob is served"
after=$(cd "$T/small/state" && find . -type f | sort | xargs sha256sum)
[ "$after" = "$before" ] || fail "the state changed with the disk full: $after"
rm -f "$T/small/fill"
kill -HUP "$AGENT_PID"
ok=
for _ in $(seq 1 100); do
	botid_cli pubkey fresh --out "$T/fresh.pem" 2>/dev/null && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "no key made once there was space: $(tail -3 "$AGENT_LOG")"
sign_ok fresh space-again || fail "the new bot cannot sign"
stop_agent
echo "PASS: the agent rides out the CA down, the TPM killed and the disk full"
