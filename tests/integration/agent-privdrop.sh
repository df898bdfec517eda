#!/bin/bash
# botid-agent started as root with `user = botid`: after opening the TPM,
# the token and the socket it runs as botid (uid, gid and groups), with no
# capability left when the caller rules are uid:/gid: only, and only
# CAP_SYS_PTRACE (to read other users' /proc/PID/exe) when an exe: rule
# needs it; it is not dumpable, has no core limit and
# no_new_privs; its state and audit log are botid's; it still signs with
# TPM and SoftHSM2 keys and creates a new key on reload; handing its state
# and audit log over it follows no link, not even one swapped in mid-walk,
# and refuses a hard-linked file rather than give it away;
# it refuses a configuration not root's alone. swtpm and SoftHSM2.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
[ "$(id -u)" -eq 0 ] || fail "this test starts the agent as root"
id botid >/dev/null 2>&1 || fail "no user botid: run scripts/install-deps"
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm privdrop
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
buid=$(id -u botid)
bgid=$(id -g botid)
# The agent's user must reach its files and the token's: the test's own
# directory is private, the token is handed to botid as an operator would.
chmod 0755 "$T"
chown -R botid: "$T/hsm"

# A configuration naming root or an unknown user is refused.
agent_conf_begin "user = root"
! "$AGENT" --check-config -c "$AGENT_CONF" >"$T/check.out" 2>&1 ||
    fail "user = root accepted"
grep -q "user: 'root' is root" "$T/check.out" || fail "user = root: $(cat "$T/check.out")"
agent_conf_begin "user = no-such-user-$$"
! "$AGENT" --check-config -c "$AGENT_CONF" >"$T/check.out" 2>&1 ||
    fail "an unknown user accepted"
grep -q "unknown user" "$T/check.out" || fail "unknown user: $(cat "$T/check.out")"

# status_field PID FIELD: a line of /proc/PID/status, after the colon.
status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }
# sign_ok BOT: a signature from the agent verifies with the bot's key.
sign_ok() {
	printf 'order %s\n' "$1" >"$T/msg.$1"
	botid_cli pubkey "$1" --out "$T/$1.pem" &&
	    botid_cli sign "$1" --in "$T/msg.$1" --out "$T/$1.sig" &&
	    openssl dgst -sha256 -verify "$T/$1.pem" -signature "$T/$1.sig" \
	    "$T/msg.$1" >/dev/null
}
check_dropped() {
	local pid=$1 tid caps
	[ "$(status_field "$pid" Uid)" = "$(printf '%s\t%s\t%s\t%s' "$buid" "$buid" "$buid" "$buid")" ] ||
	    fail "agent uids: $(status_field "$pid" Uid)"
	[ "$(status_field "$pid" Gid)" = "$(printf '%s\t%s\t%s\t%s' "$bgid" "$bgid" "$bgid" "$bgid")" ] ||
	    fail "agent gids: $(status_field "$pid" Gid)"
	for g in $(status_field "$pid" Groups); do
		id -G botid | tr ' ' '\n' | grep -qx "$g" ||
		    fail "agent keeps group $g, which botid is not in"
	done
	[ "$(status_field "$pid" NoNewPrivs)" = 1 ] || fail "no_new_privs not set"
	grep -q '^Max core file size *0 *0 ' "/proc/$pid/limits" ||
	    fail "core dumps allowed: $(grep core "/proc/$pid/limits")"
	# The kernel gives a non-dumpable process's /proc files to root.
	[ "$(stat -c %u "/proc/$pid/environ")" = 0 ] ||
	    fail "the agent is dumpable (its /proc files are uid $(stat -c %u "/proc/$pid/environ"))"
	# Every thread holds what the main one holds (checked by the caller).
	for tid in $(ls "/proc/$pid/task"); do
		caps=$(sed -n 's/^CapPrm:[[:space:]]*//p' "/proc/$pid/task/$tid/status")
		[ "$caps" = "$(status_field "$pid" CapPrm)" ] ||
		    fail "thread $tid holds capabilities $caps"
	done
	[ "$(find "$T/state" ! -user botid | wc -l)" -eq 0 ] ||
	    fail "state not botid's: $(find "$T/state" ! -user botid)"
	[ "$(stat -c %U "$AUDIT_LOG")" = botid ] || fail "audit log not botid's"
}

# ---- uid rules only: nothing is kept.
agent_conf_begin "user = botid" "socket_group = nogroup" "socket_mode = 0660"
agent_add_bot tbot tpm ecdsa-p256 "uid:0"
agent_add_bot pbot pkcs11 ecdsa-p256 "uid:0"
start_agent
grep -q 'running as botid' "$AGENT_LOG" || fail "no drop logged: $(tail -3 "$AGENT_LOG")"
check_dropped "$AGENT_PID"
caps=$(status_field "$AGENT_PID" CapPrm)
[ "$caps" = 0000000000000000 ] || fail "the agent keeps capabilities $caps with uid rules only"
sign_ok tbot || fail "TPM signing after the drop failed: $(tail -3 "$AGENT_LOG")"
sign_ok pbot || fail "SoftHSM2 signing after the drop failed: $(tail -3 "$AGENT_LOG")"
# A reload creates a new TPM key and writes its blob as botid.
agent_add_bot tnew tpm ecdsa-p256 "uid:0"
kill -HUP "$AGENT_PID"
ok=
for _ in $(seq 1 600); do
	botid_cli pubkey tnew >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "reload under botid failed: $(tail -3 "$AGENT_LOG")"
sign_ok tnew || fail "signing with a key made after the drop failed"
check_dropped "$AGENT_PID"
stop_agent

# ---- an exe: rule: the main thread keeps CAP_SYS_PTRACE, nothing else,
# and the rule matches a root process (another uid than the agent's).
me=$(readlink -f "$BOTID")
agent_conf_begin "user = botid" "socket_group = nogroup" "socket_mode = 0660"
agent_add_bot tbot tpm ecdsa-p256 "uid:0 exe:$me"
start_agent
check_dropped "$AGENT_PID"
caps=$(status_field "$AGENT_PID" CapPrm)
[ "$caps" = 0000000000080000 ] || fail "with an exe: rule the agent keeps $caps, want CAP_SYS_PTRACE only"
[ "$(status_field "$AGENT_PID" CapEff)" = 0000000000080000 ] ||
    fail "CAP_SYS_PTRACE not effective"
sign_ok tbot || fail "the exe: rule did not match the botid CLI: $(tail -3 "$AGENT_LOG")"
# Another executable of the same uid is refused.
rc=0
out=$("${PYTHON3:-python3}" "$PYCLIENT" --socket "$AGENT_SOCK" pubkey tbot "$T/py.der" 2>&1) || rc=$?
[ "$rc" -eq 3 ] ||
    fail "an exe: rule matched python: $out"
stop_agent

# ---- the hand-over follows no link, even one swapped in mid-walk. botid
# owns state_dir: it plants a link to a root file, and a directory of its
# own holding a file of group tss (so that the hand-over visits it); the
# preloaded shim swaps that directory for a link to a root directory, and
# the audit log for a link to a root file, right before the agent re-owns
# what is below or at them: the race won every time.
PRELOAD=$top_builddir/tests/integration/.libs/libswap-preload.so
[ -f "$PRELOAD" ] || fail "$PRELOAD is not built (make check builds it)"
[ "$(readlink -f "$T")" = "$T" ] || fail "$T is not a canonical path"
mkdir -m 0700 "$T/secret"
echo "root's secret" >"$T/secret/shadow"
echo "root's log" >"$T/secret/audit"
chmod 0600 "$T/secret/shadow" "$T/secret/audit"
mkdir "$T/state/sub"
echo planted >"$T/state/sub/shadow"
chown -R botid:botid "$T/state/sub"
chgrp tss "$T/state/sub/shadow"
ln -s "$T/secret/shadow" "$T/state/link"
chown -h botid:botid "$T/state/link"
# As after a start without `user =`: the log is root's, to be handed over.
chown root:root "$AUDIT_LOG"
agent_conf_begin "user = botid" "socket_group = nogroup" "socket_mode = 0660"
agent_add_bot tbot tpm ecdsa-p256 "uid:0"
from=$(($(stat -c %s "$AGENT_LOG" 2>/dev/null || echo 0) + 1))
env LD_PRELOAD="$PRELOAD" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    BOTID_SWAP_DIR="$T/state/sub" BOTID_SWAP_DIR_TARGET="$T/secret" \
    BOTID_SWAP_FILE="$AUDIT_LOG" BOTID_SWAP_FILE_TARGET="$T/secret/audit" \
    "$AGENT" -c "$AGENT_CONF" 2>>"$AGENT_LOG" &
AGENT_PID=$!
register_pid "$AGENT_PID"
for _ in $(seq 1 600); do
	botid_cli version >/dev/null 2>&1 && break
	kill -0 "$AGENT_PID" 2>/dev/null || break
	sleep 0.1
done
# tbot's key may be made in the background: signed once it is.
kill -0 "$AGENT_PID" 2>/dev/null && agent_keys_made "$from"
grep -q "swap-preload: $T/state/sub is now a link" "$AGENT_LOG" ||
    fail "the state directory was not swapped mid-walk: $(tail -3 "$AGENT_LOG")"
grep -q "swap-preload: $AUDIT_LOG is now a link" "$AGENT_LOG" ||
    fail "the audit log was not swapped: $(tail -3 "$AGENT_LOG")"
for f in "$T/secret" "$T/secret/shadow" "$T/secret/audit"; do
	[ "$(stat -c %u:%g "$f")" = 0:0 ] ||
	    fail "$f was given to botid through a link: $(stat -c %U:%G "$f")"
done
[ "$(stat -c %u "$T/state/sub.away/shadow")" = "$buid" ] ||
    fail "the planted file itself was not handed over"
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died: $(tail -3 "$AGENT_LOG")"
sign_ok tbot || fail "signing after the hand-over failed: $(tail -3 "$AGENT_LOG")"
stop_agent
rm -rf "$T/state/sub" "$T/state/sub.away" "$T/state/link"
rm -f "$AUDIT_LOG"
mv "$AUDIT_LOG.away" "$AUDIT_LOG"

# ---- a hard link is refused, never re-owned: a second name in state_dir
# for a file of root's, then the audit log as one. Root plants them here;
# botid can link any file it can name where fs.protected_hardlinks = 0.
# Each start is refused with the reason, exits non-zero, serves nothing,
# and the file keeps its owner, mode and content.
echo "root's key" >"$T/secret/hl-key"
echo "root's log" >"$T/secret/hl-log"
chmod 0600 "$T/secret/hl-key" "$T/secret/hl-log"
# start_refused CONF OUT WHAT: starts the agent on CONF (in the
# background: an agent that accepts it keeps running), its output in OUT,
# and fails unless it exits non-zero without ever serving.
start_refused() {
	local pid rc=0
	rm -f "$AGENT_SOCK"
	"$AGENT" -c "$1" >"$2" 2>&1 &
	pid=$!
	register_pid "$pid"
	for _ in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		if botid_cli version >/dev/null 2>&1; then
			kill "$pid"
			fail "$3: the agent started and serves"
		fi
		sleep 0.1
	done
	wait "$pid" || rc=$?
	[ "$rc" -ne 0 ] || fail "$3: the agent exited 0"
}
# hardlink_refused NAME TARGET: the agent refuses the hard link NAME.
hardlink_refused() {
	local before
	before=$(stat -c '%u:%g %a' "$2"; sha256sum <"$2")
	start_refused "$AGENT_CONF" "$T/hl.out" "$1 (to $2)"
	grep -qF "refusing to give $1 to the agent's user: it has 2 hard links" \
	    "$T/hl.out" || fail "$1: not refused as a hard link: $(cat "$T/hl.out")"
	[ "$(stat -c '%u:%g %a' "$2"; sha256sum <"$2")" = "$before" ] ||
	    fail "$1: $2 changed: $(stat -c '%U:%G %a' "$2")"
}
ln "$T/secret/hl-key" "$T/state/hl"
hardlink_refused "$T/state/hl" "$T/secret/hl-key"
rm "$T/state/hl"
mv "$AUDIT_LOG" "$AUDIT_LOG.keep"
ln "$T/secret/hl-log" "$AUDIT_LOG"
hardlink_refused "$AUDIT_LOG" "$T/secret/hl-log"
rm "$AUDIT_LOG"
mv "$AUDIT_LOG.keep" "$AUDIT_LOG"

# ---- a configuration root did not write alone is refused, with a reason.
cp "$AGENT_CONF" "$T/group.conf"
chmod 0664 "$T/group.conf"
cp "$AGENT_CONF" "$T/botid.conf"
chmod 0644 "$T/botid.conf"
chown botid "$T/botid.conf"
for c in group botid; do
	case $c in
	group) why="writable by its group; refusing to trust it as root";;
	botid) why="owned by uid $buid, not root; refusing to trust it as root";;
	esac
	start_refused "$T/$c.conf" "$T/$c.out" "$c.conf"
	[ "$(wc -l <"$T/$c.out")" -eq 1 ] && grep -qF "$why" "$T/$c.out" ||
	    fail "$c.conf: not the one-line refusal: $(cat "$T/$c.out")"
	[ ! -e "$AGENT_SOCK" ] || fail "$c.conf: a socket was made"
	! "$AGENT" --check-config -c "$T/$c.conf" >/dev/null 2>&1 ||
	    fail "$c.conf: --check-config accepted it"
done
echo "PASS: the agent drops root for botid and keeps only what its rules need"
