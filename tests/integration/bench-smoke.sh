#!/bin/bash
# botid-bench works, in a short mode (a smoke test, not a timed one): on a
# SoftHSM2 bot against in-process C_Sign, and on a TPM bot against ESYS
# TPM2_Sign with the agent started by the bench after the TPM baseline. The
# JSON is well formed and its figures are plausible; with BOTID_SPIN_US=0
# a client never polls for its reply. doc/performance.md has the real
# measurements.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm bench
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
BENCH="$top_builddir/tools/botid-bench"

# check_json FILE NAME...: FILE is one JSON object with a result for each
# NAME, each with ops > 0, no failures and p50 <= p99 <= max, and an
# agent/NAME ratio for each NAME but the agent.
check_json() {
	"${PYTHON3:-python3}" - "$@" <<'EOF' || fail "bad JSON in $1: $(cat "$1")"
import json, sys
doc = json.load(open(sys.argv[1]))
names = sys.argv[2:]
got = {r["name"]: r for r in doc["results"]}
assert doc["results"][0]["kind"] == "agent", "agent is not first"
for n in names:
    r = got[n]
    assert r["ops"] > 0 and r["failed"] == 0, (n, r)
    assert r["ops_per_sec"] > 0 and r["seconds"] > 0, (n, r)
    l = r["latency_us"]
    assert 0 < l["p50"] <= l["p99"] <= l["max"], (n, l)
    if r["kind"] != "agent":
        assert doc["ratios"]["agent/" + n] > 0, (n, doc["ratios"])
assert doc["agent_rss_kib"] > 0, doc
EOF
}

agent_conf_begin "ssh_socket = $T/ssh.sock"
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:$(id -u)"
agent_add_bot tpm1 tpm ecdsa-p256 "uid:$(id -u)"
agent_add_bot tpm2 tpm ecdsa-p256 "uid:$(id -u)"
start_agent

# Bad arguments are refused with status 2 before anything runs.
rc=0
"$BENCH" -s "$AGENT_SOCK" -b hsm1 -c 0 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "-c 0: exit $rc, want 2"
rc=0
"$BENCH" -s "$AGENT_SOCK" -b hsm1 --baseline nosuch:x >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--baseline nosuch:x: exit $rc, want 2"
# A bot the caller may not use fails the run, it is not measured as fast.
expect_fail "$BENCH" -s "$AGENT_SOCK" -b nosuch -n 10

# PKCS#11: two clients, pipelined, against one thread of raw C_Sign; the
# table form too.
check "$BENCH" -s "$AGENT_SOCK" -b hsm1 -c 2 -n 200 --pipeline 4 --json \
    --baseline "pkcs11:$BOTID_PKCS11_MODULE,$BOTID_TOKEN_LABEL,$BOTID_PIN_FILE,botid:hsm1" \
    >"$T/p11.json"
check_json "$T/p11.json" agent raw-pkcs11
"$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 50 \
    --baseline "pkcs11:$BOTID_PKCS11_MODULE,$BOTID_TOKEN_LABEL,$BOTID_PIN_FILE,botid:hsm1" \
    >"$T/p11.txt" || fail "table run failed"
grep -q '^agent/raw-pkcs11 = ' "$T/p11.txt" || fail "no ratio in: $(cat "$T/p11.txt")"
# SSH signatures through the agent's ssh_socket (hsm1, its first identity).
check "$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 50 --json \
    --peer "botid-ssh:$T/ssh.sock" >"$T/ssh.json"
check_json "$T/ssh.json" agent botid-ssh
# Counted, not grep -q: with pipefail, grep -q leaving early kills the
# writers of a long audit log with SIGPIPE and fails the pipeline.
ssh_ok=$(grep '"op":"ssh-sign"' "$AUDIT_LOG" | grep '"bot":"hsm1"' |
    grep -c '"result":"ok"' || true)
[ "$ssh_ok" -gt 0 ] ||
    fail "the bench's SSH signatures are not in the audit log"
# The transport alone, and several runs taking turns with the baseline.
check "$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 50 --hello --json >"$T/hello.json"
check_json "$T/hello.json" agent-hello
check "$BENCH" -s "$AGENT_SOCK" -b hsm1 -n 50 --runs 3 --json \
    --baseline "pkcs11:$BOTID_PKCS11_MODULE,$BOTID_TOKEN_LABEL,$BOTID_PIN_FILE,botid:hsm1" \
    >"$T/runs.json"
check_json "$T/runs.json" agent raw-pkcs11
"${PYTHON3:-python3}" -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert all(len(r["runs_ops_per_sec"]) == 3 for r in d["results"])' "$T/runs.json" ||
    fail "--runs 3 did not report 3 runs: $(cat "$T/runs.json")"

# BOTID_SPIN_US=0 makes clients sleep at once (lib/await.c): counted in
# system calls, not time, one poll with a zero timeout per wait (the look
# before sleeping). With a 10 ms window a client polls while replies come
# within it, but only while its polling rounds stay short: under strace
# each traced poll takes long enough for the spin gate to take the round
# for a preemption and stop polling, so here the polling run only has to
# work and look at least once per wait; test-await checks the polling
# loop itself on a simulated clock.
zero_polls() {
	grep -c 'poll(\[{fd=[0-9]*, events=POLLIN}\], 1, 0)' "$1" || true
}
# LeakSanitizer cannot run under ptrace: off for these two runs alone.
for spin in 0 10000; do
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	BOTID_SPIN_US=$spin check strace -f -qq -e trace=poll -o "$T/poll.$spin" \
	    "$BENCH" -s "$AGENT_SOCK" -b tpm1 -n 40 --json >"$T/spin.$spin.json"
	check_json "$T/spin.$spin.json" agent
done
n0=$(zero_polls "$T/poll.0")
n1=$(zero_polls "$T/poll.10000")
# 40 requests; before them the bench's HELLO, PUBKEY and first signature,
# and the client's HELLO. A reply read in two pieces waits twice.
[ "$n0" -ge 44 ] && [ "$n0" -le 48 ] ||
    fail "BOTID_SPIN_US=0: $n0 zero-timeout polls for 44 requests, want one each"
[ "$n1" -ge 44 ] ||
    fail "BOTID_SPIN_US=10000: $n1 zero-timeout polls for 44 requests, want one or more each"

# TPM: swtpm serves one connection at a time, so the agent is stopped, the
# bench measures raw ESYS first, then starts the agent itself; two bots in
# random order; two runs, the agent stopped between them so that the TPM
# baseline takes turns with it; the agent must exit cleanly each time.
stop_agent
check "$BENCH" -s "$AGENT_SOCK" --bots tpm1,tpm2 -c 2 -n 100 --runs 2 --json \
    --baseline "tpm:$BOTID_TCTI,$T/state/tpm/tpm1.tss2.pem" \
    --agent-cmd "exec '$AGENT' -c '$AGENT_CONF' 2>>'$AGENT_LOG'" \
    >"$T/tpm.json"
check_json "$T/tpm.json" agent raw-tpm
[ "$(grep -c 'signal 15: draining' "$AGENT_LOG")" -ge 3 ] ||
    fail "the agent was not restarted between TPM runs: $(tail -3 "$AGENT_LOG")"
echo "PASS: botid-bench measured the agent against raw PKCS#11 and TPM signing"
