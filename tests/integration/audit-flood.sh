#!/bin/bash
# Audit flood (doc/audit.md, "Aggregated lines"): one client sends 20000
# denied PUBKEY requests and 20000 LISTs. Each kind gets at most one line
# per second the flood lasted (measured by the client) plus two, and the
# lines' counts add up to exactly 20000: nothing is lost, nothing counted
# twice. A signature afterwards is never aggregated and its entry comes
# after every line of the flood; `botid audit verify` passes.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_softhsm hsm auditflood
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
python=${PYTHON3:-python3}
N=20000

agent_conf_begin
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:$(id -u)"
agent_add_bot locked pkcs11 ecdsa-p256 "uid:1"
start_agent
out=$("$python" "$top_srcdir/tests/integration/audit-client.py" flood \
    "$AGENT_SOCK" locked "$N") || fail "flood client failed"
echo "flood: $out"
printf 'after the flood\n' >"$T/msg"
check botid_cli sign hsm1 --in "$T/msg" --out "$T/sig"
stop_agent
check "$BOTID" audit verify "$AUDIT_LOG"

# shellcheck disable=SC2086
set -- $out
[ "$1" = pid ] && [ "$3" = start ] && [ "$5" = end ] ||
    fail "unexpected client output: $out"
"$python" - "$AUDIT_LOG" "$2" "$4" "$6" "$N" <<'EOF' || fail "audit lines wrong"
import json, math, sys
log, pid, start, end, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), \
    float(sys.argv[4]), int(sys.argv[5])
entries = [json.loads(l) for l in open(log)]
seconds = math.floor(end) - math.floor(start) + 1
last_flood_seq, ok = -1, True
for op, result, bot in (("pubkey", "denied", "locked"), ("list", "ok", None)):
    lines = [e for e in entries if e.get("pid") == pid and e["op"] == op]
    total = sum(e.get("count", 1) for e in lines)
    print("%s %s: %d lines, counts sum to %d, %d s" %
          (op, result, len(lines), total, seconds))
    if any(e["result"] != result or e["bot"] != bot for e in lines):
        print("FAIL: %s lines with another result or bot" % op)
        ok = False
    if total != n:
        print("FAIL: %s counts add up to %d, want %d" % (op, total, n))
        ok = False
    if len(lines) > seconds + 2:
        print("FAIL: %d %s lines in %d s" % (len(lines), op, seconds))
        ok = False
    last_flood_seq = max([last_flood_seq] + [e["seq"] for e in lines])
signs = [e for e in entries if e["op"] == "sign-data"]
if len(signs) != 1 or "count" in signs[0]:
    print("FAIL: the signature's entry: %r" % signs)
    ok = False
elif signs[0]["seq"] < last_flood_seq:
    print("FAIL: the signature's entry comes before the flood's lines")
    ok = False
sys.exit(0 if ok else 1)
EOF
echo "PASS: audit flood aggregated"
