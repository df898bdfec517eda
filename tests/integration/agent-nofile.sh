#!/bin/bash
# Descriptors (botid-agent(8), max_connections in botid-agent.conf(5)):
#  - started with a soft limit of 128 (as a unit without LimitNOFILE gets
#    1024, below max_connections plus a pidfd per connection), the agent
#    raises it to the hard limit and logs both; a uid in the socket's group
#    then holds 200 connections, every one answered, and a client of
#    another uid is still served;
#  - with a hard limit of 128 it cannot raise it: it caps max_connections
#    to what fits, says so, and with 200 connections of one uid it still
#    serves another uid's client (the full agent evicts for it) and never
#    runs out of descriptors.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
[ "$(id -u)" -eq 0 ] || fail "this test runs a client as another uid: run it as root"
botid_setup
start_softhsm hsm nofile
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
python=${PYTHON3:-python3}
helper="$top_srcdir/tests/integration/agent-admission.py"

chmod 0755 "$T"
mkdir "$T/att"
chown 1 "$T/att"
as_attacker() {
	setpriv --reuid=1 --regid=nogroup --clear-groups "$@"
}
# Root may set any hard limit up to fs.nr_open: the same on every machine.
hard=4096

# start_agent_nofile SOFT HARD: start_agent under these descriptor limits.
start_agent_nofile() {
	local from
	"$AGENT" --check-config -c "$AGENT_CONF" >/dev/null ||
	    fail "configuration rejected"
	from=$(($(stat -c %s "$AGENT_LOG" 2>/dev/null || echo 0) + 1))
	# shellcheck disable=SC2086
	prlimit --nofile="$1:$2" -- ${BOTID_VALGRIND:-} "$AGENT" -c "$AGENT_CONF" \
	    2>>"$AGENT_LOG" &
	AGENT_PID=$!
	register_pid "$AGENT_PID"
	for _ in $(seq 1 600); do
		if grep -q 'ready: ' "$AGENT_LOG" 2>/dev/null &&
		    botid_cli version >/dev/null 2>&1; then
			# A key made in the background: served once it is.
			agent_keys_made "$from"
			return 0
		fi
		kill -0 "$AGENT_PID" 2>/dev/null ||
		    fail "agent died at start: $(tail -5 "$AGENT_LOG")"
		sleep 0.1
	done
	fail "agent did not answer within 60 s"
}
# flood_and_serve TAG: 200 connections of uid 1, then 5 signatures of
# root's on new connections; prints the flood's counts.
flood_and_serve() {
	rm -f "$T/att/ready" "$T/att/stop"
	as_attacker "$python" "$helper" flood "$AGENT_SOCK" 200 "$T/att/ready" \
	    "$T/att/stop" >"$T/flood.$1" 2>&1 &
	flooder=$!
	register_pid "$flooder"
	while [ ! -e "$T/att/ready" ]; do
		kill -0 "$flooder" 2>/dev/null ||
		    fail "flood helper died: $(cat "$T/flood.$1")"
		sleep 0.1
	done
	cat "$T/flood.$1"
	out=$("$python" "$helper" good "$AGENT_SOCK" hsm1 5 "$AGENT_PID") ||
	    fail "$1: another uid's client was not served: $out; $(tail -3 "$AGENT_LOG")"
	echo "$out"
	touch "$T/att/stop"
	wait "$flooder" || fail "flood helper failed: $(cat "$T/flood.$1")"
}

agent_conf_begin "socket_group = nogroup" "socket_mode = 0660" \
    "max_connections = 1024"
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:0"

# ---- soft 128, hard as it is: raised
start_agent_nofile 128 "$hard"
grep -q "descriptor limit: $hard (raised from 128)" "$AGENT_LOG" ||
    fail "the raise is not logged: $(grep 'descriptor' "$AGENT_LOG")"
[ "$(prlimit --pid "$AGENT_PID" --nofile --noheadings --output SOFT)" = "$hard" ] ||
    fail "the agent's soft limit is not $hard"
grep -q 'ready: 1024 connections max' "$AGENT_LOG" ||
    fail "max_connections changed: $(grep 'ready:' "$AGENT_LOG")"
flood_and_serve raised
grep -q '^flood: 200 tried, 200 answered, 0 closed, 0 unanswered$' "$T/flood.raised" ||
    fail "not every connection was served: $(cat "$T/flood.raised")"
! grep -q 'accept: ' "$AGENT_LOG" || fail "accept failed: $(grep 'accept: ' "$AGENT_LOG" | head -1)"
stop_agent

# ---- soft and hard 128: capped to (128 - 64) / 3 = 21
: >"$AGENT_LOG"
start_agent_nofile 128 128
grep -q 'descriptor limit: 128$' "$AGENT_LOG" ||
    fail "the limit is not logged: $(grep 'descriptor' "$AGENT_LOG")"
grep -q 'max_connections 1024 capped to 21: the descriptor limit is 128' \
    "$AGENT_LOG" || fail "the cap is not logged: $(grep -e capped -e 'ready:' "$AGENT_LOG")"
grep -q 'ready: 21 connections max' "$AGENT_LOG" ||
    fail "the cap is not in force: $(grep 'ready:' "$AGENT_LOG")"
flood_and_serve capped
read -r answered closed unanswered < <(sed -n \
    's/^flood: 200 tried, \([0-9]*\) answered, \([0-9]*\) closed, \([0-9]*\) unanswered$/\1 \2 \3/p' \
    "$T/flood.capped")
[ -n "$answered" ] || fail "no flood counts: $(cat "$T/flood.capped")"
[ "$unanswered" -eq 0 ] || fail "$unanswered connections left hanging: $(cat "$T/flood.capped")"
[ "$answered" -ge 1 ] && [ "$answered" -le 21 ] ||
    fail "$answered connections answered, not 1 to 21"
grep -q 'connection refused: limit of 21 reached' "$AGENT_LOG" ||
    fail "the refusals are not logged"
! grep -q 'accept: ' "$AGENT_LOG" || fail "accept failed: $(grep 'accept: ' "$AGENT_LOG" | head -1)"
kill -0 "$AGENT_PID" || fail "agent died"
stop_agent
echo "PASS: descriptor limit raised, or max_connections capped to it"
