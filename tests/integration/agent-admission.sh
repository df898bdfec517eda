#!/bin/bash
# Fair admission (botid-agent.conf(5) max_connections_per_uid,
# first_request_timeout): a uid in the socket's group that may use no bot
# holds 1000 idle, 50 slow and 200 junk connections and opens each again
# as soon as the agent drops it. A client of another uid, connecting
# afresh for each of 300 signatures as botid(1) does, gets every one
# answered; its p50/p99 and the agent's peak RSS (under 64 MiB) are
# printed. Refusals are logged at most once a second, with a count.
# Then, with the agent full of one uid's idle connections (that said
# HELLO), a newcomer of that uid is closed at once with no reply, and one
# of another uid evicts the oldest of them and is served.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
[ "$(id -u)" -eq 0 ] || fail "this test runs a client as another uid: run it as root"
botid_setup
start_softhsm hsm admission
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
python=${PYTHON3:-python3}
helper="$top_srcdir/tests/integration/agent-admission.py"

# The attacker reaches the socket through its group, as any member could.
chmod 0755 "$T"
mkdir "$T/att"
chown 1 "$T/att"
as_attacker() {
	setpriv --reuid=1 --regid=nogroup --clear-groups "$@"
}
# wait_file PATH: until a helper creates it (or gives up by dying).
wait_file() {
	local pid=$2
	while [ ! -e "$1" ]; do
		kill -0 "$pid" 2>/dev/null || fail "helper $pid died before $1"
		sleep 0.1
	done
}

agent_conf_begin "socket_group = nogroup" "socket_mode = 0660"
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:0"
start_agent

t0=$(date +%s)
as_attacker "$python" "$helper" attack "$AGENT_SOCK" "$T/att/ready" \
    "$T/att/stop" >"$T/attack.out" 2>&1 &
attacker=$!
register_pid "$attacker"
wait_file "$T/att/ready" "$attacker"
# Served while the attacker holds all it could open ...
out=$("$python" "$helper" good "$AGENT_SOCK" hsm1 200 "$AGENT_PID") || {
	echo "$out"
	fail "the good client was not served"
}
echo "$out"
# ... and once the agent is dropping the attacker's silent
# connections and the attacker is opening them again.
while ! grep -q 'no HELLO within first_request_timeout' "$AGENT_LOG"; do
	kill -0 "$attacker" 2>/dev/null || fail "attacker died"
	[ $(($(date +%s) - t0)) -le 120 ] ||
	    fail "no connection dropped at first_request_timeout in 120 s"
	sleep 0.1
done
out=$("$python" "$helper" good "$AGENT_SOCK" hsm1 300 "$AGENT_PID") || {
	echo "$out"
	fail "the good client was not served"
}
echo "$out"
touch "$T/att/stop"
wait "$attacker" || fail "attacker failed: $(cat "$T/attack.out")"
t1=$(date +%s)
cat "$T/attack.out"
kill -0 "$AGENT_PID" || fail "agent died"
lines=$(grep -c 'max_connections_per_uid 256 reached' "$AGENT_LOG" || true)
[ "$lines" -ge 1 ] || fail "no refusal logged for the attacker's uid"
[ "$lines" -le $((t1 - t0 + 2)) ] ||
    fail "$lines refusal lines in $((t1 - t0)) s: not rate-limited"
grep -q 'max_connections_per_uid 256 reached (.* times since the last such line)' \
    "$AGENT_LOG" || fail "refusal lines carry no count"
echo "agent log: $lines refusal lines in $((t1 - t0 + 1)) s or less"
stop_agent

# Full of one uid's idle connections: a newcomer of that uid is closed at
# once with no reply (its uid's share allows one more: the agent is full);
# one of another uid evicts the oldest.
agent_conf_begin "socket_group = nogroup" "socket_mode = 0660" \
    "max_connections = 64" "max_connections_per_uid = 65"
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:0"
start_agent
rm -f "$T/att/ready" "$T/att/stop"
as_attacker "$python" "$helper" hold "$AGENT_SOCK" 64 "$T/att/ready" \
    "$T/att/stop" >"$T/hold.out" 2>&1 &
holder=$!
register_pid "$holder"
wait_file "$T/att/ready" "$holder"
out=$(as_attacker "$python" - "$AGENT_SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
try:
    s.sendall(bytes.fromhex("0000000f010000000100010000000400000001"))
    got = s.recv(4096)
except (BrokenPipeError, ConnectionResetError):
    got = b""
print("closed, no reply" if got == b"" else "answered %r" % got)
PY
) || fail "the holder's newcomer: $out"
[ "$out" = "closed, no reply" ] || fail "the holder's newcomer, agent full: $out"
grep -q 'connection refused: limit of 64 reached' "$AGENT_LOG" ||
    fail "the refused newcomer was not logged"
out=$("$python" "$helper" good "$AGENT_SOCK" hsm1 5 "$AGENT_PID") ||
    fail "a newcomer was not served by a full agent: $out"
touch "$T/att/stop"
wait "$holder" || fail "holder failed: $(cat "$T/hold.out")"
cat "$T/hold.out"
grep -q '^held 64, [1-5] closed by the agent$' "$T/hold.out" ||
    fail "evictions: $(cat "$T/hold.out")"
grep -q 'connection of uid 1 closed: the agent is full' "$AGENT_LOG" ||
    fail "the eviction was not logged"
stop_agent
echo "PASS: fair admission"
