#!/bin/bash
# A restart does not launder a tampered log (doc/audit.md, "Restarts"). On a
# provisioned host (swtpm, a real botid-ca) the agent keeps its last final
# checkpoint in STATE_DIR/audit.state. Whoever can write the log but not
# use the TPM then: cuts it after a periodic checkpoint, with and without
# relabelling that checkpoint "shutdown"; rolls it back to an earlier
# run's shutdown checkpoint; rewrites sealed entries with the chain
# recomputed and the later checkpoints dropped; or the agent is killed.
# After each, the next start writes a signed "break" checkpoint before any
# entry of its own, saying what it found, and `botid audit verify` reports
# that line (and the tampering itself where the chain shows it) even
# though the log ends with the agent's signed shutdown checkpoint. Without
# the state file (or with a damaged one) a good tail is taken on its
# signature and a relabelled one is a break. A clean restart, and one on an emptied (rotated) file, write
# no break.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
python=${PYTHON3:-python3}
printf 'audit me\n' >"$T/msg"
AUDIT_LOG="$T/audit.log"
agent_conf_begin "audit_checkpoint_entries = 4" \
    "audit_checkpoint_interval = 3600"
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
STATE="$T/state/audit.state"

start_ca ca "$BOTID_EK_CA_CHAIN"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
HOST_CERT="$T/state/attest/host-cert.pem"

# run N [wait]: start the agent, N signatures, with wait until one more
# periodic checkpoint is in (it is signed on a worker: a stop drops one not
# yet written), then a clean stop.
run() {
	local i before
	before=$(cat "$AUDIT_LOG" 2>/dev/null | grep -c '"reason":"entries"' || true)
	start_agent
	for i in $(seq 1 "$1"); do
		check botid_cli sign tbot --in "$T/msg" --out "$T/sig"
	done
	if [ "${2:-}" = wait ]; then
		for _ in $(seq 1 300); do
			[ "$(grep -c '"reason":"entries"' "$AUDIT_LOG")" -gt "$before" ] &&
			    break
			sleep 0.1
		done
		[ "$(grep -c '"reason":"entries"' "$AUDIT_LOG")" -gt "$before" ] ||
		    fail "no periodic checkpoint: $(tail -3 "$AGENT_LOG")"
	fi
	stop_agent
}

# reset_clean: the log and state file as two clean runs left them.
reset_clean() {
	cp "$T/clean.log" "$AUDIT_LOG"
	cp "$T/clean.state" "$STATE"
}

seq_of() { sed 's/^{"seq":\([0-9]*\).*/\1/'; }

verify() { "$BOTID" audit verify --host-cert "$HOST_CERT" --require-sealed "$@"; }

# expect_break WANT: verify fails; one of its lines is the break saying WANT.
expect_break() {
	local out
	out=$(verify "$AUDIT_LOG" 2>&1) && fail "verify accepted a laundered log: $out"
	printf '%s\n' "$out" | grep -F "the agent restarted on a log it could not verify ($1)" |
	    grep -q "^botid: audit verify: $AUDIT_LOG:[0-9]* (seq [0-9]*): " ||
	    fail "verify does not report the break ($1): $out"
	VERIFY_OUT=$out
}

# The break is the first checkpoint after line LINE, before any entry.
break_after() {
	sed -n "$(($1 + 1))p" "$AUDIT_LOG" |
	    grep -q '"op":"checkpoint","result":"signed","reason":"break"' ||
	    fail "line $(($1 + 1)) is not a signed break: $(sed -n "$(($1 + 1))p" "$AUDIT_LOG")"
}

# periodic_line: the last line holding a periodic checkpoint that seals
# everything before it.
periodic_line() {
	"$python" - "$AUDIT_LOG" <<'PY'
import json, sys
n = 0
for k, raw in enumerate(open(sys.argv[1], "rb"), 1):
    e = json.loads(raw)
    if e.get("reason") == "entries" and e["sealed_seq"] == e["seq"] - 1:
        n = k
print(n)
PY
}

# --- Clean runs: no break, the state file names the last line ----------
run 5 wait
run 5 wait
verify "$AUDIT_LOG" >/dev/null || fail "clean restarts: $(verify "$AUDIT_LOG" 2>&1)"
grep -q '"reason":"break"' "$AUDIT_LOG" && fail "a clean restart wrote a break"
[ "$(stat -c %a "$STATE")" = 600 ] || fail "audit.state mode $(stat -c %a "$STATE")"
grep -qx "hash $(tail -1 "$AUDIT_LOG" | sha256sum | cut -c1-64)" "$STATE" ||
    fail "audit.state does not hold the last line's hash: $(cat "$STATE")"
cp "$AUDIT_LOG" "$T/clean.log"
cp "$STATE" "$T/clean.state"
k=$(periodic_line)
[ "$k" -gt 0 ] || fail "no periodic checkpoint sealing all before it"
seq_k=$(sed -n "${k}p" "$AUDIT_LOG" | seq_of)

# --- Cut after a periodic checkpoint, relabelled "shutdown" -------------
reset_clean
head -n "$k" "$T/clean.log" >"$AUDIT_LOG"
sed -i '$s/"reason":"entries"/"reason":"shutdown"/' "$AUDIT_LOG"
run 2
break_after "$k"
expect_break "the log ends with seq $seq_k, not the checkpoint written last (number $(sed -n 's/^number //p' "$T/clean.state"), seq $(sed -n 's/^seq //p' "$T/clean.state")): cut, rolled back or replaced"
printf '%s\n' "$VERIFY_OUT" | grep -qF "$AUDIT_LOG:$k (seq $seq_k): checkpoint signature does not verify" ||
    fail "verify does not name the relabelled checkpoint: $VERIFY_OUT"
tail -1 "$AUDIT_LOG" | grep -q '"result":"signed","reason":"shutdown"' ||
    fail "the log does not end with the agent's shutdown checkpoint"

# --- The same cut, not relabelled ----------------------------------------
reset_clean
head -n "$k" "$T/clean.log" >"$AUDIT_LOG"
run 2
break_after "$k"
expect_break "the log ends with checkpoint seq $seq_k (entries), not a shutdown or rotation one: a crash, or a cut"

# --- Rolled back to an earlier run's shutdown checkpoint ----------------
# One more clean run, then the file as it was before it: its tail is a
# genuine, well signed shutdown checkpoint, which the file alone cannot
# tell from the newest (only the state, or the CA anchor, can).
reset_clean
run 1
grep -q '"reason":"break"' "$AUDIT_LOG" && fail "a break on a clean restart"
newer=$(tail -1 "$AUDIT_LOG" | seq_of)
number=$(sed -n 's/^number //p' "$STATE")
cp "$T/clean.log" "$AUDIT_LOG"
n=$(grep -c '' "$AUDIT_LOG")
verify "$AUDIT_LOG" >/dev/null ||
    fail "the rolled-back file alone should still verify (the blind spot)"
run 1
break_after "$n"
expect_break "the log ends with seq $(sed -n "${n}p" "$T/clean.log" | seq_of), not the checkpoint written last (number $number, seq $newer): cut, rolled back or replaced"

# --- Without the state file, a good tail is checked by its signature ----
reset_clean
rm "$STATE"
run 1
grep -q '"reason":"break"' "$AUDIT_LOG" && fail "a break on a good log without state"
grep -q "no .*audit.state: continuing from the log's last checkpoint (seq [0-9]*), its signature checked" "$AGENT_LOG" ||
    fail "the agent did not say it had no state: $(tail -3 "$AGENT_LOG")"

# --- Without the state file, a relabelled tail fails its signature ------
reset_clean
rm "$STATE"
head -n "$k" "$T/clean.log" >"$AUDIT_LOG"
sed -i '$s/"reason":"entries"/"reason":"shutdown"/' "$AUDIT_LOG"
run 1
break_after "$k"
expect_break "the log's last checkpoint (seq $seq_k) is not signed by the host key, and no state names it"

# --- A damaged state file: said, and the tail checked by its signature --
reset_clean
printf 'botid-audit-state-v1\nnumber 1x\n' >"$STATE"
run 1
grep -q '"reason":"break"' "$AUDIT_LOG" && fail "a break on a good log, damaged state"
grep -q "audit: $STATE unreadable: the log's tail is checked by its signature only" "$AGENT_LOG" ||
    fail "the agent did not say its state is damaged: $(tail -3 "$AGENT_LOG")"

# --- Sealed entries rewritten, chain recomputed, checkpoints dropped ----
reset_clean
"$python" - "$AUDIT_LOG" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1], "rb").readlines()
out = lines[:1]
for raw in lines[1:]:
    e = json.loads(raw)
    if e["op"] == "checkpoint":
        break
    e["prev"] = hashlib.sha256(out[-1]).hexdigest()
    if e["seq"] == 2:
        e["uid"] = 4242
    out.append(json.dumps(e, separators=(",", ":")).encode() + b"\n")
open(sys.argv[1], "wb").write(b"".join(out))
PY
m=$(grep -c '' "$AUDIT_LOG")
last=$(tail -1 "$AUDIT_LOG" | seq_of)
run 4
break_after "$m"
expect_break "the log ends with seq $last, not a checkpoint: a crash, or a cut"

# --- A crash: the agent killed; the next start says so -------------------
reset_clean
start_agent
check botid_cli sign tbot --in "$T/msg" --out "$T/sig"
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=
# What the kernel's resource manager does for a dead process: swtpm has
# none, so the objects the killed agent had loaded are flushed by hand.
TPM2TOOLS_TCTI=$BOTID_TCTI check tpm2_flushcontext -t
m=$(grep -c '' "$AUDIT_LOG")
last=$(tail -1 "$AUDIT_LOG" | seq_of)
run 0
break_after "$m"
expect_break "the log ends with seq $last, not a checkpoint: a crash, or a cut"

# --- An emptied file (rotated while the agent was down): no break --------
reset_clean
mv "$AUDIT_LOG" "$T/rotated.log"
run 2
grep -q '"reason":"break"' "$AUDIT_LOG" && fail "a break on a rotated log"
out=$(verify "$T/rotated.log" "$AUDIT_LOG" 2>&1) ||
    fail "the rotated file and the new one: $out"
head -1 "$AUDIT_LOG" | grep -q "^{\"seq\":$(($(tail -1 "$T/rotated.log" | seq_of) + 1))," ||
    fail "the new file does not continue the chain: $(head -1 "$AUDIT_LOG")"
echo "PASS: audit restart"
