#!/bin/bash
# Every request is judged by the process that sent it, not by the one that
# connected: an exe: rule admits the allowed program and refuses, 200 tries
# each, a non-allowed program that (a) connects, forks and signs from the
# child while the parent execs the allowed program, (b) is exec'd by the
# allowed program on its open connection, (c) receives the connection from
# the allowed program with SCM_RIGHTS, (d) asks and exits while the agent is
# stopped, its pid then taken by the allowed program (ns_last_pid; kernels
# with SO_PASSPIDFD only), (e) runs under the allowed path by a bind mount
# in its own mount namespace, as root and as an unprivileged user
# (unshare -Urm), (f) writes the first half of a request on the allowed
# program's connection, which writes the rest, (g) as an unprivileged user
# in a user and pid namespace of its own (unshare -Urpf), starts the
# allowed program and names its pid in SCM_CREDENTIALS. Zero signatures; every
# refusal is in the audit log naming the executable that really asked. Run
# with the kernel's own mechanism and again with the pidfd_open fallback
# forced (BOTID_PEER_FALLBACK=1). Last, an exe: rule follows its file
# across reloads: missing at start, then installed, then replaced.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_softhsm hsm identity
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

TRIES=${BOTID_IDENTITY_TRIES:-200}
ATTACK="$top_builddir/tests/integration/identity-attack"
# Two copies: the same code, two files. Only the first is allowed.
chmod 0755 "$T"
mkdir -m 0755 "$T/allowed" "$T/other"
cp "$ATTACK" "$T/allowed/bot"
cp "$ATTACK" "$T/other/evil"
chmod 0755 "$T/allowed/bot" "$T/other/evil"
ALLOWED=$T/allowed/bot
OTHER=$T/other/evil

# The precondition of (e) as an unprivileged user: Debian enables
# unprivileged user namespaces by default. Where they are off the attack
# cannot happen, but then this test cannot show the defence: fail, loudly.
setpriv --reuid=nobody --regid=nogroup --clear-groups \
    unshare -Urm true 2>/dev/null ||
    fail "unshare -Urm does not work for nobody here (unprivileged user namespaces off?): cannot run attack (e)"

kernel_has_passpidfd() {	# Linux 6.5 or later
	local v major minor
	v=$(uname -r)
	major=${v%%.*}
	minor=${v#*.}
	minor=${minor%%.*}
	[ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 5 ]; }
}

# count WORD FILE: lines equal to WORD.
count() {
	grep -cx "$1" "$2" || true
}

# attack NAME COMMAND...: runs COMMAND $TRIES times; none may sign.
attack() {
	local name=$1 i
	shift
	: >"$T/$name.out"
	for i in $(seq 1 "$TRIES"); do
		"$@" >>"$T/$name.out" || fail "$name: try $i failed to run"
	done
	[ "$(count signed "$T/$name.out")" -eq 0 ] ||
	    fail "$name: $(count signed "$T/$name.out") of $TRIES tries signed"
	[ "$(count refused "$T/$name.out")" -eq "$TRIES" ] ||
	    fail "$name: $(count refused "$T/$name.out") refusals of $TRIES"
	echo "$name: 0 of $TRIES signed"
}

run_phase() {	# run_phase MODE: MODE is "kernel" or "fallback"
	local mode=$1 pidfd=0 landed tries=0 rc legit out
	AUDIT_LOG="$T/audit-$mode.log"
	agent_conf_begin "socket_group = nogroup" "socket_mode = 0660"
	agent_add_bot guarded pkcs11 ecdsa-p256 "exe:$ALLOWED"
	: >"$AGENT_LOG"
	if [ "$mode" = fallback ]; then
		BOTID_PEER_FALLBACK=1 start_agent
	else
		start_agent
	fi
	# Which mechanism runs is logged at start.
	if grep -q "caller identity: SO_PASSCRED with SO_PASSPIDFD" "$AGENT_LOG"; then
		pidfd=1
	else
		grep -q "caller identity: SO_PASSCRED with pidfd_open" "$AGENT_LOG" ||
		    fail "$mode: no caller identity line in the log"
	fi
	if [ "$mode" = fallback ]; then
		[ "$pidfd" -eq 0 ] || fail "BOTID_PEER_FALLBACK=1 did not force the fallback"
	elif kernel_has_passpidfd; then
		[ "$pidfd" -eq 1 ] || fail "kernel $(uname -r) has SO_PASSPIDFD, the agent did not use it"
	fi

	# The legitimate path: the allowed program signs, as root and as
	# nobody, and the audit log names it.
	[ "$("$ALLOWED" sign "$AGENT_SOCK" guarded)" = signed ] ||
	    fail "$mode: the allowed program was refused"
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$ALLOWED" sign "$AGENT_SOCK" guarded)
	[ "$out" = signed ] || fail "$mode: the allowed program as nobody: $out"
	legit=2
	[ "$("$OTHER" sign "$AGENT_SOCK" guarded)" = refused ] ||
	    fail "$mode: another program signed"

	attack "$mode-fork-exec" "$OTHER" fork-exec "$AGENT_SOCK" guarded "$ALLOWED"
	attack "$mode-exec-away" "$ALLOWED" exec-away "$AGENT_SOCK" guarded "$OTHER"
	attack "$mode-pass" "$ALLOWED" pass "$AGENT_SOCK" guarded "$OTHER"
	attack "$mode-split" "$ALLOWED" split "$AGENT_SOCK" guarded "$OTHER"
	attack "$mode-claim" setpriv --reuid=nobody --regid=nogroup \
	    --clear-groups unshare -Urpf \
	    "$OTHER" claim "$AGENT_SOCK" guarded "$ALLOWED"
	# shellcheck disable=SC2016 # sh -c gets its arguments as $1...
	attack "$mode-mount-root" unshare -m sh -c \
	    'mount --bind "$1" "$2" && exec "$2" sign "$3" guarded' \
	    sh "$OTHER" "$ALLOWED" "$AGENT_SOCK"
	# shellcheck disable=SC2016
	attack "$mode-mount-user" setpriv --reuid=nobody --regid=nogroup \
	    --clear-groups unshare -Urm sh -c \
	    'mount --bind "$1" "$2" && exec "$2" sign "$3" guarded' \
	    sh "$OTHER" "$ALLOWED" "$AGENT_SOCK"

	# (d) pid reuse: only a pidfd from the kernel with each message
	# closes it (see doc/security.md); tries where another process took
	# the pid first are repeated.
	if [ "$pidfd" -eq 1 ]; then
		: >"$T/$mode-pid-reuse.out"
		landed=0
		tries=0
		while [ "$landed" -lt "$TRIES" ]; do
			tries=$((tries + 1))
			[ "$tries" -le $((TRIES * 10)) ] ||
			    fail "pid reuse landed only $landed times in $tries"
			set +e
			"$OTHER" pid-reuse "$AGENT_SOCK" guarded "$ALLOWED" \
			    "$AGENT_PID" >>"$T/$mode-pid-reuse.out"
			rc=$?
			set -e
			# Never leave the agent stopped, whatever happened.
			kill -CONT "$AGENT_PID"
			case $rc in
			0) landed=$((landed + 1)) ;;
			2) ;;
			*) fail "pid-reuse: try $tries failed to run" ;;
			esac
		done
		[ "$(count signed "$T/$mode-pid-reuse.out")" -eq 0 ] ||
		    fail "pid reuse: $(count signed "$T/$mode-pid-reuse.out") of $TRIES signed"
		[ "$(count refused "$T/$mode-pid-reuse.out")" -eq "$TRIES" ] ||
		    fail "pid reuse: $(count refused "$T/$mode-pid-reuse.out") refusals"
		echo "$mode-pid-reuse: 0 of $TRIES signed ($tries tries to land)"
	else
		echo "$mode-pid-reuse: not run (no SO_PASSPIDFD: see doc/security.md)"
	fi
	stop_agent

	# The audit log: only the legitimate signatures succeeded, and every
	# refusal names the executable that really asked.
	"${PYTHON3:-python3}" - "$AUDIT_LOG" "$ALLOWED" "$OTHER" \
	    "$legit" "$TRIES" "$tries" <<'PY' || fail "$mode: audit check"
import json, re, sys
path, allowed, other, legit, tries, reuse = sys.argv[1:]
# reuse: pid-reuse tries, landed or not; each asked once, its sender gone
legit, tries, reuse = int(legit), int(tries), int(reuse)
lines = [json.loads(l) for l in open(path)]
signs = [l for l in lines if l.get("bot") == "guarded" and
         l["op"] in ("sign-data", "sign-digest")]
ok = [l for l in signs if l["result"] == "ok"]
assert len(ok) == legit, ("signatures", len(ok), legit)
assert all(l["exe"] == allowed for l in ok), ok
denied = [l for l in signs if l["result"] == "denied"]
by_other = [l for l in denied if l["exe"] == other]
userns = " (other user namespace)"
spoof = re.compile(re.escape(allowed) +
    r" \(not this file: dev \d+:\d+ ino \d+\)(" + re.escape(userns) + ")?$")
mounted = [l for l in denied if l["exe"] is not None and spoof.match(l["exe"])]
# (g): the pid of an allowed program, claimed from a user namespace
claimed = [l for l in denied if l["exe"] == allowed + userns]
gone = [l for l in denied if l["exe"] is None]
stray = [l for l in denied if l not in by_other + mounted + claimed + gone]
assert not stray, ("refusals naming something else", stray[:3])
# one plain refusal, then fork-exec, exec-away, pass
assert len(by_other) == 1 + 3 * tries, ("denied as other", len(by_other),
    [l for l in mounted + gone if l["uid"] == 0][:3])
assert len(mounted) == 2 * tries, ("denied under a bind mount", len(mounted))
assert {l["uid"] for l in mounted} == {0, 65534}, {l["uid"] for l in mounted}
# the unprivileged ones in their own user namespace are marked so
assert all(l["exe"].endswith(userns) == (l["uid"] == 65534)
           for l in mounted), mounted[:3]
assert len(claimed) == tries, ("denied, pid claimed", len(claimed))
assert all(l["uid"] == 65534 and l["unit"] is None for l in claimed), claimed[:3]
assert all(l["unit"] is None for l in gone), gone[:3]
assert len(gone) == reuse, ("denied, sender gone", len(gone), reuse)
assert not any(l["exe"] == allowed for l in denied), "a refusal names the allowed program"
# (f): the frame is refused before it is decoded, and said why
frames = [l for l in lines if l["op"] == "frame"]
assert len(frames) == tries, ("frames refused", len(frames))
assert all(l["result"] == "denied" and
           l.get("detail") == "one frame from two senders" and
           l["exe"] is None for l in frames), frames[:3]
PY
	echo "$mode: audit log checked"
}

run_phase kernel
run_phase fallback

# An exe: rule names the file its path led to at the last (re)load.
AUDIT_LOG="$T/audit-reload.log"
mkdir -m 0755 "$T/late"
LATE=$T/late/bot
agent_conf_begin
agent_add_bot late pkcs11 ecdsa-p256 "exe:$LATE"
: >"$AGENT_LOG"
start_agent
grep -q "exe:$LATE is not a regular file now and matches nobody" "$AGENT_LOG" ||
    fail "no warning for a missing exe: file"
# await_sign: after SIGHUP, until the reload is in effect.
await_sign() {
	for _ in $(seq 1 600); do
		[ "$("$LATE" sign "$AGENT_SOCK" late)" = signed ] && return 0
		sleep 0.1
	done
	fail "$LATE never signed after the reload"
}
cp "$ATTACK" "$LATE"
chmod 0755 "$LATE"
[ "$("$LATE" sign "$AGENT_SOCK" late)" = refused ] ||
    fail "a file installed after the load matched before a reload"
kill -HUP "$AGENT_PID"
await_sign
# A replaced file (a package upgrade: a new inode at the same path).
cp "$ATTACK" "$LATE.new"
chmod 0755 "$LATE.new"
mv -f "$LATE.new" "$LATE"
[ "$("$LATE" sign "$AGENT_SOCK" late)" = refused ] ||
    fail "a replaced file matched before a reload"
kill -HUP "$AGENT_PID"
await_sign
stop_agent
echo "reload: exe: follows its file"
echo "PASS: identity per request"
