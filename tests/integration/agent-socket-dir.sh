#!/bin/bash
# The agent's socket directory, without systemd and under the shipped unit.
#
# Without systemd (agent started as root, /run/botid missing as after each
# boot): the agent makes the directory mode 0755 whatever its umask, so a
# member of socket_group signs through the socket and a non-member is
# refused by the socket's own mode (EACCES, nothing signed); an existing
# directory is used as it is (a 0700 one stays 0700, with a warning), and
# a link in its place is refused. The old agent made it 0700 (umask 0077).
#
# Under botid-agent.service, emulated (no systemd runs here): the unit's
# RuntimeDirectory= is the directory of the sample's ssh_socket; made as
# systemd makes it (owned by User=, RuntimeDirectoryMode=), the agent run
# as User= with the unit's groups binds ssh_socket there, gives it group
# bots, and a member's `ssh-add -L` lists the bot's key. At the old
# documented path (/run/botid/ssh.sock, in the socket unit's root-owned
# directory) the agent, as botid, cannot bind: it exits 1 with one line.
# What the emulation cannot show: systemd's own mount namespace
# (ProtectSystem=strict's read-only /run and the RuntimeDirectory=
# exception), which systemd.exec(5) documents. SoftHSM2 only.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
[ "$(id -u)" -eq 0 ] || fail "this test starts the agent as root and as botid"
id botid >/dev/null 2>&1 || fail "no user botid: run scripts/install-deps"
getent group bots >/dev/null || fail "no group bots: run scripts/install-deps"
start_softhsm hsm sockdir
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
# Other users must reach the sockets below $T; the agent run as botid
# opens the token.
chmod 0755 "$T"
chown -R botid: "$T/hsm"
mkdir -m 0755 "$T/run"
install -d -m 0700 -o nobody -g nogroup "$T/nobody"
printf 'order 1\n' >"$T/msg"
chmod 0644 "$T/msg"

# member CMD...: CMD as nobody in group bots; outsider: in no group.
member() {
	setpriv --reuid=nobody --regid=nogroup --groups=bots "$@"
}
outsider() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
# audit_lines: how many entries the audit log holds.
audit_lines() { wc -l <"$AUDIT_LOG"; }

# ---- without systemd: the agent makes the missing directory, mode 0755.
AGENT_SOCK="$T/run/botid/agent.sock"
agent_conf_begin "socket_group = bots" "socket_mode = 0660"
agent_add_bot pbot pkcs11 ecdsa-p256 "uid:nobody" "uid:0"
[ ! -e "$T/run/botid" ] || fail "$T/run/botid exists before the start"
start_agent
[ "$(stat -c '%a %U %F' "$T/run/botid")" = "755 root directory" ] ||
    fail "socket directory: $(stat -c '%a %U %F' "$T/run/botid") (want 755 root)"
grep -q "made socket directory $T/run/botid, mode 0755" "$AGENT_LOG" ||
    fail "no 'made socket directory' line: $(tail -3 "$AGENT_LOG")"
[ "$(stat -c '%a %G' "$AGENT_SOCK")" = "660 bots" ] ||
    fail "socket: $(stat -c '%a %G' "$AGENT_SOCK")"
botid_cli pubkey pbot --out "$T/pbot.pem"
# A member of socket_group signs; OpenSSL verifies it.
member "$BOTID" --socket "$AGENT_SOCK" sign pbot --in "$T/msg" \
    --out "$T/nobody/member.sig" >"$T/member.out" 2>&1 ||
    fail "a member of socket_group could not sign: $(cat "$T/member.out")"
openssl dgst -sha256 -verify "$T/pbot.pem" -signature "$T/nobody/member.sig" \
    "$T/msg" >/dev/null || fail "the member's signature does not verify"
# A non-member (same uid, allowed by the bot) is kept out by the socket's
# mode: EACCES at connect, nothing signed, nothing reached the agent.
before=$(audit_lines)
rc=0
outsider "$BOTID" --socket "$AGENT_SOCK" sign pbot --in "$T/msg" \
    --out "$T/nobody/outsider.sig" >"$T/outsider.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "a non-member: exit $rc: $(cat "$T/outsider.out")"
grep -qx "botid: cannot reach the agent at $AGENT_SOCK: Permission denied" \
    "$T/outsider.out" || fail "a non-member was told: $(cat "$T/outsider.out")"
[ ! -e "$T/nobody/outsider.sig" ] || fail "a non-member got a signature file"
[ "$(audit_lines)" -eq "$before" ] || fail "a non-member's request reached the agent"
stop_agent
echo "PASS: a missing socket directory is made 0755; members sign, others get EACCES"

# ---- an existing directory is used as it is: never widened.
chmod 0700 "$T/run/botid"
from=$(($(wc -c <"$AGENT_LOG") + 1))
start_agent
[ "$(stat -c '%a %U' "$T/run/botid")" = "700 root" ] ||
    fail "the agent changed an existing directory to $(stat -c '%a %U' "$T/run/botid")"
tail -c +"$from" "$AGENT_LOG" | grep -q "socket directory $T/run/botid: mode 0700 and group 0 keep group $(getent group bots | cut -d: -f3) from the socket" ||
    fail "no warning for a directory that keeps the group out: $(tail -c +"$from" "$AGENT_LOG")"
rc=0
member "$BOTID" --socket "$AGENT_SOCK" sign pbot --in "$T/msg" \
    --out "$T/nobody/closed.sig" >"$T/closed.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] && grep -q 'Permission denied' "$T/closed.out" ||
    fail "through a 0700 directory: exit $rc: $(cat "$T/closed.out")"
[ ! -e "$T/nobody/closed.sig" ] || fail "a signature through a closed directory"
stop_agent

# ---- a link in the directory's place is refused; nothing is made there.
rm -rf "$T/run/botid"
mkdir -m 0700 "$T/elsewhere"
ln -s "$T/elsewhere" "$T/run/botid"
rc=0
timeout 120 "$AGENT" -c "$AGENT_CONF" 2>"$T/link.log" || rc=$?
[ "$rc" -eq 1 ] || fail "the agent with a link for its directory: exit $rc"
grep -q "socket directory $T/run/botid: is a symbolic link" "$T/link.log" ||
    fail "the link was not refused: $(cat "$T/link.log")"
[ -z "$(ls -A "$T/elsewhere")" ] || fail "the agent made $(ls -A "$T/elsewhere")"
[ "$(stat -c %a "$T/elsewhere")" = 700 ] || fail "the link's target was changed"
echo "PASS: an existing socket directory is left as it is, a link refused"

# ---- botid-agent.service, emulated. What the unit and the sample say:
unit="$top_srcdir/doc/systemd/botid-agent.service"
unit_get() { sed -n "s/^$1=//p" "$unit"; }
rtdir=$(unit_get RuntimeDirectory)
rtmode=$(unit_get RuntimeDirectoryMode)
user=$(unit_get User)
group=$(unit_get Group)
groups=$(unit_get SupplementaryGroups | tr ' ' ',')
ssh_path=$(sed -n 's/^#*ssh_socket = //p' "$top_srcdir/examples/agent.conf")
[ -n "$rtdir" ] || fail "botid-agent.service has no RuntimeDirectory="
[ -n "$ssh_path" ] || fail "examples/agent.conf shows no ssh_socket"
[ "$(dirname "$ssh_path")" = "/run/$rtdir" ] ||
    fail "the sample's ssh_socket $ssh_path is not in the unit's /run/$rtdir"
[ "$(sed -n 's/^socket_group = //p' "$top_srcdir/examples/agent.conf")" = bots ] ||
    fail "the sample's socket_group is not bots"
# $R stands for /: /run/botid as botid-agent.socket makes it (root, its
# DirectoryMode=), the runtime directory as systemd makes it.
R="$T/root"
dmode=$(sed -n 's/^DirectoryMode=//p' "$top_srcdir/doc/systemd/botid-agent.socket")
install -d -m "$dmode" -o root -g root "$R/run/botid"
install -d -m "${rtmode:-0755}" -o "$user" -g "$group" "$R/run/$rtdir"
SSH_SOCK="$R$ssh_path"
# The main socket, which systemd would pass, and the state and audit log,
# which StateDirectory= and LogsDirectory= would make, are botid's.
install -d -m 0755 -o "$user" -g "$group" "$T/b" "$T/blog"
install -d -m 0700 -o "$user" -g "$group" "$T/bstate"
AGENT_SOCK="$T/b/agent.sock"
AUDIT_LOG="$T/blog/audit.log"
as_unit_conf() {
	agent_conf_begin "socket_group = bots" "ssh_socket = $1"
	sed -i "s|^state_dir = .*|state_dir = $T/bstate|" "$AGENT_CONF"
	agent_add_bot pbot pkcs11 ecdsa-p256 "uid:nobody" "uid:0"
}
# AS_UNIT CMD...: CMD as the unit runs it. setpriv execs: $! is the agent.
AS_UNIT=(setpriv --reuid="$user" --regid="$group" --groups="$groups")
as_unit_conf "$SSH_SOCK"
"${AS_UNIT[@]}" "$AGENT" -c "$AGENT_CONF" 2>>"$T/unit.log" &
AGENT_PID=$!
register_pid "$AGENT_PID"
for _ in $(seq 1 600); do
	[ -S "$SSH_SOCK" ] && botid_cli version >/dev/null 2>&1 && break
	kill -0 "$AGENT_PID" 2>/dev/null ||
	    fail "the agent as $user died at start: $(tail -3 "$T/unit.log")"
	sleep 0.1
done
[ -S "$SSH_SOCK" ] || fail "no ssh_socket within 60 s: $(tail -3 "$T/unit.log")"
AGENT_LOG="$T/unit.log" agent_keys_made 1
[ "$(stat -c '%a %U %G' "$SSH_SOCK")" = "660 $user bots" ] ||
    fail "ssh_socket: $(stat -c '%a %U %G' "$SSH_SOCK")"
botid_cli pubkey pbot --out "$T/unit.pem"
want=$(ssh-keygen -i -m PKCS8 -f "$T/unit.pem" | cut -d' ' -f1,2)
member env SSH_AUTH_SOCK="$SSH_SOCK" ssh-add -L >"$T/ssh-add.out" 2>&1 ||
    fail "ssh-add -L as a member of bots: $(cat "$T/ssh-add.out")"
[ "$(cut -d' ' -f1,2 "$T/ssh-add.out")" = "$want" ] ||
    fail "ssh-add -L listed: $(cat "$T/ssh-add.out") (want $want)"
grep -q ' pbot$' "$T/ssh-add.out" || fail "the key is not named pbot"
rc=0
outsider env SSH_AUTH_SOCK="$SSH_SOCK" ssh-add -L >"$T/ssh-out.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q 'Permission denied' "$T/ssh-out.out" ||
    fail "a non-member of bots: exit $rc: $(cat "$T/ssh-out.out")"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent as $user exited $?: $(tail -3 "$T/unit.log")"
AGENT_PID=
[ ! -e "$SSH_SOCK" ] || fail "the agent left its ssh_socket behind"
echo "PASS: as the unit runs it, the agent serves ssh_socket at $ssh_path"

# ---- the old documented path: /run/botid is root's, the agent botid's.
as_unit_conf "$R/run/botid/ssh.sock"
rc=0
"${AS_UNIT[@]}" timeout 120 "$AGENT" -c "$AGENT_CONF" 2>"$T/old.log" || rc=$?
[ "$rc" -eq 1 ] || fail "ssh_socket in /run/botid: exit $rc: $(cat "$T/old.log")"
[ "$(grep -c "socket $R/run/botid/ssh.sock: bind: Permission denied" "$T/old.log")" -eq 1 ] ||
    fail "ssh_socket in /run/botid: $(cat "$T/old.log")"
[ ! -e "$R/run/botid/ssh.sock" ] && [ ! -e "$AGENT_SOCK" ] ||
    fail "a socket was left behind"
echo "PASS: ssh_socket where the agent cannot bind stops it at start, in one line"
