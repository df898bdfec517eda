#!/bin/bash
# The slow-device fixtures really slow the device, and botid-bench's modes
# for real-chip speed (issue 24) run. swtpm-delay holds TPM2_Sign and
# TPM2_Create answers and delay-pkcs11.so holds C_Sign: a signature through
# either takes at least the delay (a lower bound, safe on a busy machine),
# and the proxy logged each hold. Then each new bench mode runs once, short:
# per-bot rates with --pick bind, a second group beside a saturated TPM,
# BUSY replies counted apart (the agent's own, past 32 in flight, and over
# max_queue_wait with the RETRY_AFTER hints read and honoured), and the
# time from the agent's start to its first signature. Figures are not
# asserted; doc/performance.md has them.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm bench
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/slow-common.sh"
. "$top_srcdir/tests/integration/agent-common.sh"
BENCH="$top_builddir/tools/botid-bench"
PY=${PYTHON3:-python3}

# json FILE EXPR: evaluates the Python expression EXPR with d the JSON
# object in FILE; fails the test unless it is true.
json() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" ||
	    fail "$1: not true: $2 in $(cat "$1")"
}

# --- The fixtures delay: 200 ms per signature, 100 ms per key creation.
start_swtpm_delay tpm slow --sign-ms 200 --create-ms 100
SLOW_LOG="$T/tpm/delay-slow.log"
use_delay_pkcs11 200000
agent_conf_begin
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:$(id -u)"
agent_add_bot tpm1 tpm ecdsa-p256 "uid:$(id -u)"
start_agent
# tpm1's key was made at start, through the proxy.
created=$(held_ms "$SLOW_LOG" TPM2_Create)
[ -n "$created" ] || fail "no TPM2_Create held: $(cat "$SLOW_LOG")"
for ms in $created; do
	awk -v m="$ms" 'BEGIN { exit !(m >= 100) }' ||
	    fail "TPM2_Create held $ms ms, want >= 100"
done

# A TPM signature through the agent takes >= 200 ms, and the proxy held
# each TPM2_Sign (the bench's check signature and its three).
check "$BENCH" -s "$AGENT_SOCK" -b tpm1 -n 3 --json >"$T/tpm-slow.json"
json "$T/tpm-slow.json" 'd["results"][0]["ops"] == 3 and d["results"][0]["failed"] == 0'
json "$T/tpm-slow.json" 'd["results"][0]["latency_us"]["p50"] >= 200000'
n=$(held_ms "$SLOW_LOG" TPM2_Sign | wc -l)
[ "$n" -ge 4 ] || fail "$n TPM2_Sign held, want 4: $(cat "$SLOW_LOG")"
for ms in $(held_ms "$SLOW_LOG" TPM2_Sign); do
	awk -v m="$ms" 'BEGIN { exit !(m >= 200) }' ||
	    fail "TPM2_Sign held $ms ms, want >= 200"
done

# C_Sign through the shim takes >= 200 ms, in the agent and in-process.
check "$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 3 --json \
    --baseline "pkcs11:$DELAY_PKCS11,$BOTID_TOKEN_LABEL,$BOTID_PIN_FILE,botid:hsm1" \
    >"$T/hsm-slow.json"
json "$T/hsm-slow.json" 'all(r["ops"] == 3 and r["failed"] == 0 for r in d["results"])'
json "$T/hsm-slow.json" 'all(r["latency_us"]["p50"] >= 200000 for r in d["results"])'

# A bad delay is refused when the module loads, in one line, and nothing
# is signed.
rc=0
BOTID_DELAY_SIGN_US=soon "$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 1 \
    --baseline "pkcs11:$DELAY_PKCS11,$BOTID_TOKEN_LABEL,$BOTID_PIN_FILE,botid:hsm1" \
    >"$T/bad.out" 2>"$T/bad.err" || rc=$?
[ "$rc" -eq 1 ] || fail "BOTID_DELAY_SIGN_US=soon: exit $rc, want 1"
grep -q '^delay-pkcs11: BOTID_DELAY_SIGN_US must be 0 to 60000000 microseconds$' \
    "$T/bad.err" || fail "no refusal of BOTID_DELAY_SIGN_US=soon: $(cat "$T/bad.err")"
[ ! -s "$T/bad.out" ] || fail "a report despite the refusal: $(cat "$T/bad.out")"

# A peer that claims a 4 GiB TPM command is dropped before anything is
# buffered; the proxy keeps serving the agent.
port=${BOTID_TCTI##*port=}
"$PY" -c 'import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">HII", 0x8001, 0xffffffff, 0x15d))
s.settimeout(30)
sys.exit(0 if s.recv(1) == b"" else 1)' "$port" ||
    fail "swtpm-delay did not drop a 4 GiB command"
grep -q '^swtpm-delay: dropping a connection: command size 4294967295 out of range$' \
    "$SLOW_LOG" || fail "no line for the dropped connection: $(cat "$SLOW_LOG")"
check "$BENCH" -s "$AGENT_SOCK" -b tpm1 -n 1 --json >/dev/null
stop_agent

# --- Each new bench mode once, with short delays (10 ms TPM, 2 ms token).
start_swtpm_delay tpm fast --sign-ms 10 --create-ms 20
use_delay_pkcs11 2000
agent_conf_begin
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:$(id -u)"
for i in 1 2 3; do agent_add_bot "tpm$i" tpm ecdsa-p256 "uid:$(id -u)"; done
start_agent

# Mode 1: bots bound to request slots, per-bot rates over the window.
check "$BENCH" -s "$AGENT_SOCK" --bots tpm1,tpm2,tpm3 --pick bind -c 3 \
    -n 6 --json >"$T/m1.json"
json "$T/m1.json" 'd["results"][0]["ops"] == 18 and d["results"][0]["failed"] == 0'
json "$T/m1.json" 'd["results"][0]["busy"]["count"] == 0'
json "$T/m1.json" 'd["results"][0]["per_bot"]["bots"] == 3 and 0 < d["results"][0]["per_bot"]["window_s"] <= d["results"][0]["seconds"]'
json "$T/m1.json" '0 <= d["results"][0]["per_bot"]["min_ops_per_sec"] <= d["results"][0]["per_bot"]["max_ops_per_sec"] and d["results"][0]["per_bot"]["max_ops_per_sec"] > 0'
# bind needs a slot for every bot.
rc=0
"$BENCH" -s "$AGENT_SOCK" --bots tpm1,tpm2,tpm3 --pick bind -c 2 -n 1 \
    >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--pick bind with 2 slots for 3 bots: exit $rc, want 2"

# Mode 2: a PKCS#11 group beside the TPM clients, and alone.
check "$BENCH" -s "$AGENT_SOCK" -b tpm1 -c 2 -n 4 --second-bot hsm1 \
    --second-clients 2 --second-requests 3 --json >"$T/m2.json"
json "$T/m2.json" '[r["name"] for r in d["results"]] == ["agent", "second", "second-alone"]'
json "$T/m2.json" 'all(r["failed"] == 0 and 0 < r["latency_us"]["p50"] <= r["latency_us"]["p99"] for r in d["results"])'
json "$T/m2.json" 'd["results"][0]["ops"] == 8 and d["results"][1]["ops"] == 6 and d["results"][2]["ops"] == 6'
json "$T/m2.json" 'd["ratios"]["p99 second/second-alone"] > 0'
"$BENCH" -s "$AGENT_SOCK" -b tpm1 -c 2 -n 4 --second-bot hsm1 \
    --second-clients 2 --second-requests 3 >"$T/m2.txt" ||
    fail "mode 2 as a table failed"
grep -q '^p99 second/second-alone = ' "$T/m2.txt" || fail "no p99 ratio in: $(cat "$T/m2.txt")"

# Mode 3: BUSY replies are counted apart and do not fail the run. Today's
# agent answers BUSY past 32 requests in flight on a connection: 40 deep,
# what a window holds past 32 is refused at once.
check "$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 80 --pipeline 40 --json \
    >"$T/m3.json"
json "$T/m3.json" 'd["results"][0]["failed"] == 0 and d["results"][0]["busy"]["count"] > 0'
json "$T/m3.json" 'd["results"][0]["ops"] + d["results"][0]["busy"]["count"] == 80'
json "$T/m3.json" '0 < d["results"][0]["busy"]["p50_us"] <= d["results"][0]["busy"]["p99_us"] <= d["results"][0]["busy"]["max_us"]'
# A refusal past 32 in flight says nothing of when to retry: no hint.
json "$T/m3.json" 'd["results"][0]["busy"]["hinted"] == 0'
# One grep: with pipefail, grep -q leaving early would fail a pipeline.
grep -q '"op":"sign-digest","bot":"hsm1",.*"result":"error",.*"detail":"busy"' \
    "$AUDIT_LOG" || fail "the agent's BUSY replies are not in the audit log"
# --busy-wait: each BUSY reply pauses its client, so the run lasts at
# least that long for each (a lower bound).
check "$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 60 --pipeline 40 --busy-wait 10 \
    --json >"$T/m3w.json"
json "$T/m3w.json" 'd["results"][0]["failed"] == 0 and d["results"][0]["busy"]["count"] > 0'
json "$T/m3w.json" 'd["results"][0]["seconds"] >= 0.010 * d["results"][0]["busy"]["count"]'
# Overload on one TPM bot, clients pausing after a BUSY: runs (no BUSY
# here: the default max_queue_wait, 30 s, holds 16 requests of 10 ms).
check "$BENCH" -s "$AGENT_SOCK" -b tpm1 -c 8 -n 2 --busy-wait 1 --json \
    >"$T/m3b.json"
json "$T/m3b.json" 'd["results"][0]["ops"] + d["results"][0]["busy"]["count"] == 16 and d["results"][0]["failed"] == 0'
stop_agent

# --busy-wait hint: with max_queue_wait = 20ms, 8 requests written at
# once to one 10 ms TPM bot cannot all be served within it (the device
# serves one at a time), so some are answered BUSY, by the estimate or at
# the deadline; each such reply carries RETRY_AFTER (tag 33), the bench
# read it, and its clients paused as it says and finished the run.
agent_conf_begin "max_queue_wait = 20ms"
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:$(id -u)"
for i in 1 2 3; do agent_add_bot "tpm$i" tpm ecdsa-p256 "uid:$(id -u)"; done
start_agent
check "$BENCH" -s "$AGENT_SOCK" -b tpm1 -c 2 -p 8 -n 16 --busy-wait hint \
    --json >"$T/m3h.json"
json "$T/m3h.json" 'd["results"][0]["failed"] == 0 and d["results"][0]["ops"] + d["results"][0]["busy"]["count"] == 32'
json "$T/m3h.json" 'd["results"][0]["busy"]["count"] > 0 and d["results"][0]["busy"]["hinted"] == d["results"][0]["busy"]["count"]'
json "$T/m3h.json" '0 <= d["results"][0]["busy"]["retry_after_ms"]["min"] <= d["results"][0]["busy"]["retry_after_ms"]["p50"] <= d["results"][0]["busy"]["retry_after_ms"]["max"]'
grep -q '"op":"sign-digest","bot":"tpm1",.*"result":"error",.*"detail":"busy: over max_queue_wait"' \
    "$AUDIT_LOG" || fail "no BUSY over max_queue_wait in the audit log"
# The text report names the hints too.
check "$BENCH" -s "$AGENT_SOCK" -b tpm1 -c 2 -p 8 -n 8 --busy-wait hint:5 \
    >"$T/m3h.txt"
hints=$(grep -c '^agent: [0-9]* of them with RETRY_AFTER: min [0-9]* ms, p50 [0-9]* ms, max [0-9]* ms$' "$T/m3h.txt" || true)
[ "$hints" = 1 ] || fail "no RETRY_AFTER line in: $(cat "$T/m3h.txt")"
# Neither a bad mode nor a bad fallback is taken.
for bad in hint: hint:x hints 10001; do
	rc=0
	"$BENCH" -s "$AGENT_SOCK" -b tpm1 -n 1 --busy-wait "$bad" \
	    >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || fail "--busy-wait $bad: exit $rc, want 2"
done
stop_agent

# Mode 4: start to first signature, with two more TPM bots whose keys do
# not exist yet (each creation held 20 ms).
for i in 4 5; do agent_add_bot "tpm$i" tpm ecdsa-p256 "uid:$(id -u)"; done
check "$BENCH" -s "$AGENT_SOCK" -b tpm1 --first-signature --first-wait 120 \
    --json --agent-cmd "exec '$AGENT' -c '$AGENT_CONF' 2>>'$AGENT_LOG'" \
    >"$T/m4.json"
json "$T/m4.json" 'd["mode"] == "first-signature" and d["runs"] == 1'
json "$T/m4.json" '0 < d["socket_ms"][0] <= d["first_signature_ms"][0] == d["median_first_signature_ms"]'
# tpm1 signs before the creations queued ahead of it are all done (it
# waits for one at most), so the stop right after may leave keys unmade;
# the next start makes them in the background.
start_agent
for i in 4 5; do
	[ -s "$T/state/tpm/tpm$i.tss2.pem" ] || fail "tpm$i's key was not made"
done
stop_agent
# Without --agent-cmd there is nothing to time.
rc=0
"$BENCH" -s "$AGENT_SOCK" -b tpm1 --first-signature >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--first-signature alone: exit $rc, want 2"
# Every option botid-bench --help names is in botid-bench(1), and the
# fixture answers --help.
"$BENCH" --help >"$T/bench.help" || fail "botid-bench --help failed"
for opt in $(grep -o -- '--[a-z][a-z-]*' "$T/bench.help" | sort -u); do
	grep -q -- "Fl -${opt#--}\>" "$top_srcdir/doc/man/botid-bench.1" ||
	    fail "botid-bench $opt is not in botid-bench(1)"
done
"$BOTID_FIXTURES/swtpm-delay" --help >"$T/delay.help" ||
    fail "swtpm-delay --help failed"
grep -q -- '--sign-ms' "$T/delay.help" || fail "swtpm-delay --help is incomplete"
# A stop while keys are made in the background does not wait for the
# creations not begun: with 12 new TPM bots and each TPM2_Create held
# 300 ms, the agent stopped right after its first key exists leaves at
# most the keys made or being made by then (before, it made all 12 first:
# a minute for 200 keys, past systemd's stop timeout).
start_swtpm_delay tpm stop --create-ms 300
agent_conf_begin
for i in $(seq 1 12); do agent_add_bot "stop$i" tpm ecdsa-p256 "uid:$(id -u)"; done
AGENT_NO_KEY_WAIT=1 start_agent
for _ in $(seq 1 1200); do
	made=$(grep -c 'bot stop[0-9]*: its new key is made: served' "$AGENT_LOG" || true)
	[ "$made" -ge 1 ] && break
	sleep 0.1
done
[ "$made" -ge 1 ] || fail "no key was made: $(tail -3 "$AGENT_LOG")"
stop_agent
keys=$(find "$T/state/tpm" -name 'stop*.tss2.pem' | wc -l)
echo "keys made: $made when the stop began, $keys when the agent had exited"
[ "$keys" -le $((made + 2)) ] ||
    fail "the stop waited for the creations: $keys of 12 keys made, $made when it began"
[ "$keys" -lt 12 ] || fail "every key was made before the agent stopped"

echo "PASS: the slow-device fixtures delay, and botid-bench's slow-device modes run"
