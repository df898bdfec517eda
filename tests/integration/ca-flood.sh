#!/bin/bash
# botid-ca under a slow-connection flood (issue 21, point 2): 1000
# connections from 127.0.0.2-5 that trickle one byte a second, against a CA
# limited to 256 descriptors. The per-address cap keeps the flood to 4 x 32
# connections, the request deadline closes each of those after
# request_timeout however often it sends a byte, and the listener never
# spins at the descriptor limit: a good client's health check and a good
# agent's renewal (nonce, then certify of a TPM key) succeed during the
# flood, the CA uses a bounded share of the CPU, and its refusal lines are
# rate-limited (at most one a second of each kind). TLS renegotiation is
# refused.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
export SOFTHSM2_CONF=/nonexistent
. "$top_srcdir/tests/integration/agent-common.sh"
PROVISION="$top_builddir/tools/botid-provision"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"
FLOOD="$top_srcdir/tests/integration/ca-flood.py"

"$PYTHON3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.5", 0))' ||
    fail "cannot bind to 127.0.0.5: the flood needs other loopback addresses"

# A CA with 256 descriptors: today's main accepts until EMFILE and spins.
ulimit -Sn 256
start_ca ca "$BOTID_EK_CA_CHAIN" "request_timeout = 10" \
    "max_connections_per_address = 32"
grep -q "at most 192 connections, 32 per address, 10 s per request" \
    "$BOTID_CA_LOG" || fail "the CA does not log its limits: $(cat "$BOTID_CA_LOG")"

# A good host, enrolled before the flood.
agent_conf_begin
agent_add_bot probe tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"

cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$BOTID_CA_PID/stat"
}
# wait_log PATTERN: until the CA log has a line matching PATTERN (the CA
# answers on its own time; no fixed sleep decides the outcome).
wait_log() {
	for _ in $(seq 1 600); do
		grep -q "$1" "$BOTID_CA_LOG" && return 0
		kill -0 "$BOTID_CA_PID" 2>/dev/null || fail "botid-ca died"
		sleep 0.1
	done
	fail "the CA log never says '$1': $(tail -5 "$BOTID_CA_LOG")"
}

# A client that sends one whole request and then reads nothing: its
# connection is closed request_timeout (10 s) after the answer was
# written, not sooner, and the answer was sent before. It runs beside the
# flood, whose own deadline the test waits for anyway.
"$PYTHON3" "$top_srcdir/tests/integration/ca-slow-reader.py" idle \
    "$(cat "$T/ca/port")" "$BOTID_CA_BUNDLE" "$T/reader" &
register_pid $!
reader=$!

lines0=$(wc -l <"$BOTID_CA_LOG")
t0=$(date +%s)
cpu0=$(cpu_ticks)
"$PYTHON3" "$FLOOD" "$(cat "$T/ca/port")" 1000 4 "$T/ready" "$T/stop" \
    "$T/stats" &
register_pid $!
flood=$!
for _ in $(seq 1 600); do [ -e "$T/ready" ] && break; sleep 0.1; done
[ -e "$T/ready" ] || fail "the flood did not start"

# During the flood: a good client's request, and a good agent's renewal
# (a nonce through the agent's CA client, the TPM's certify, POST
# /v1/certify), each answered.
# Ten health checks, each on a connection of its own: the flood's
# connections over their address's cap are refused and never count
# against max_connections, so none of these is refused (before the fix,
# the flood's refused connections filled the global count for a moment
# every second and a good client met "Empty reply from server").
for i in $(seq 1 10); do
	code=$(curl -sS -o "$T/live" -w '%{http_code}' --max-time 60 \
	    --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/health/live") ||
	    code=none
	[ "$code" = 200 ] || fail "health check $i during the flood: $code;" \
	    "the CA's log ends: $(tail -5 "$BOTID_CA_LOG")"
done
mkdir -p "$T/nc"
"$REQUESTS" "$T/state" "$BOTID_TCTI" 1 "$T/nc" probe >"$T/nc/out" 2>&1 ||
    fail "no nonce during the flood: $(cat "$T/nc/out")"
code=$(curl -sS -o "$T/certify" -w '%{http_code}' --max-time 60 \
    --cacert "$BOTID_CA_BUNDLE" -H 'Content-Type: application/json' \
    --data-binary "@$T/nc/certify-0.json" "$BOTID_CA_URL/v1/certify") ||
    code=none
[ "$code" = 200 ] || fail "renewal during the flood: $code $(cat "$T/certify")"
"$PYTHON3" -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["chain"])' \
    "$T/certify" >"$T/chain.pem"
check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/chain.pem"

# The flood was refused over the per-address cap, and a connection that
# sends a byte a second is closed at its deadline.
wait_log "max_connections_per_address"
if grep "(max_connections)" "$BOTID_CA_LOG"; then
	fail "the flood, at most 4 x 32 connections let in, filled the CA's 192"
fi
wait_log "took longer than 10 s; closing"

wait "$reader" || fail "the slow reader failed"
read -r secs status <"$T/reader"
echo "the reader's connection closed $secs s after its request: $status"
[ "$status" = "HTTP/1.1 200 OK" ] || fail "the reader got no answer: $status"
# The CA's timer may run from a time its loop read a little earlier.
awk -v s="$secs" 'BEGIN { exit !(s >= 9.5) }' ||
    fail "the reader was closed $secs s after its request, before request_timeout"

touch "$T/stop"
wait "$flood" || fail "the flood client failed"
cpu1=$(cpu_ticks)
t1=$(date +%s)
cat "$T/stats"
closed=$(awk '{print $4}' "$T/stats")
[ "$closed" -gt 0 ] || fail "the CA closed no flood connection: $(cat "$T/stats")"

# CPU: the CA spent less than half of the flood's wall time on it (a
# listener spinning at EMFILE takes all of a core).
hz=$(getconf CLK_TCK)
elapsed=$((t1 - t0 + 1))
echo "CA CPU during the flood: $((cpu1 - cpu0)) ticks in $elapsed s at $hz Hz"
[ $(((cpu1 - cpu0) * 2)) -lt $((elapsed * hz)) ] ||
    fail "the CA used $((cpu1 - cpu0)) CPU ticks in $elapsed s"

# Log lines: at most one a second for each of the four kinds of refusal.
lines=$(($(wc -l <"$BOTID_CA_LOG") - lines0))
echo "CA log lines during the flood: $lines in $elapsed s"
[ "$lines" -le $((4 * (elapsed + 1) + 20)) ] ||
    fail "the CA wrote $lines log lines in $elapsed s"
grep -q "more like it" "$BOTID_CA_LOG" ||
    fail "no rate-limited line counts what it left out"

# A client cannot make the CA redo handshakes: renegotiation is refused.
# (s_client reads its commands from stdin and ends at its EOF: stdin stays
# open long enough for the CA's alert, which ends s_client at once.)
port=$(cat "$T/ca/port")
out=$( (printf 'R\n'; sleep 15) | timeout 30 openssl s_client -tls1_2 \
    -connect "127.0.0.1:$port" -CAfile "$BOTID_CA_BUNDLE" 2>&1) || true
case $out in *RENEGOTIATING*"no renegotiation"*) ;;
*) fail "TLS renegotiation was not refused: $(echo "$out" | tail -3)";; esac

# TLS below 1.2 is refused by the CA: s_client offers only TLS 1.1, then
# only TLS 1.0, at security level 0 so that this OpenSSL would allow it,
# and the CA answers with the protocol_version alert (70); no session.
for v in -tls1_1 -tls1; do
	out=$(timeout 30 openssl s_client "$v" -cipher 'DEFAULT:@SECLEVEL=0' \
	    -connect "127.0.0.1:$port" -CAfile "$BOTID_CA_BUNDLE" \
	    </dev/null 2>&1) && fail "s_client $v: a handshake succeeded"
	case $out in *"alert protocol version"*"alert number 70"*) ;;
	*) fail "s_client $v: not the CA's refusal: $(echo "$out" | tail -3)";; esac
	case $out in *"Cipher is (NONE)"*) ;;
	*) fail "s_client $v: a cipher was agreed: $(echo "$out" | grep Cipher)";; esac
done

# Still serving after the flood.
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 60 \
    --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/health/live") || code=none
[ "$code" = 200 ] || fail "health check after the flood: $code"
echo "ok"
