#!/bin/bash
# The tamper-evident audit log (doc/audit.md). Before provisioning the agent
# writes unsigned checkpoints that say so (after 4 entries, or a second
# after the last entry), and --host-cert refuses them; every entry also
# reaches syslog (audit_syslog).
# Then the host is provisioned against a real botid-ca; the agent signs
# (allowed and denied) with a checkpoint every 4 entries, the log is
# rotated (mv + SIGHUP) and the agent restarted; `botid audit verify`
# passes on the logs, an independent openssl check agrees with one
# (version 2) checkpoint, and verification fails, naming the entry, for an
# edited, deleted, swapped or inserted entry, a bad checkpoint signature, a
# chain rewritten (the range in doubt named), the tail dropped after every
# line with and without relabelling the last checkpoint, every checkpoint
# removed, a cut line and another host's certificate. A version 1 log
# still verifies, with a warning.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
python=${PYTHON3:-python3}
printf 'audit me\n' >"$T/msg"

conf() {	# conf AUDIT_LOG SYSLOG INTERVAL: the agent's configuration
	AUDIT_LOG=$1
	agent_conf_begin "audit_checkpoint_entries = 4" \
	    "audit_checkpoint_interval = $3" "audit_syslog = $2"
	agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
	agent_add_bot locked tpm ecdsa-p256 "uid:1"
}

# operations N: N allowed signatures and N denied ones.
operations() {
	local i
	for i in $(seq 1 "$1"); do
		check botid_cli sign tbot --in "$T/msg" --out "$T/sig"
		set +e
		botid_cli sign locked --in "$T/msg" --out "$T/sig" 2>/dev/null
		[ $? -eq 3 ] || fail "signing with 'locked' was not denied"
		set -e
	done
}

# wait_checkpoints FILE N: until FILE holds N signed checkpoints.
wait_checkpoints() {
	for _ in $(seq 1 100); do
		[ "$(grep -c '"op":"checkpoint","result":"signed"' "$1")" -ge "$2" ] &&
		    return 0
		sleep 0.1
	done
	fail "fewer than $2 signed checkpoints in $1: $(tail -3 "$AGENT_LOG")"
}

verify() { "$BOTID" audit verify "$@"; }

# expect_reject WANT FILE... [OPTIONS]: verify fails, saying one line per
# failure and nothing else, the first of them with WANT in it; REJECTED
# holds them all.
expect_reject() {
	local want=$1 out
	shift
	out=$(verify "$@" 2>&1) && fail "verify accepted a bad log ($want): $out"
	if printf '%s\n' "$out" | grep -qv '^botid: audit verify: '; then
		fail "verify said more than failure lines: $out"
	fi
	case $(printf '%s\n' "$out" | head -1) in
	*"$want"*) ;;
	*) fail "verify: want '$want' first, got: $out";;
	esac
	REJECTED=$out
}

# start_agent_syslog: start_agent in a mount namespace whose /dev/log is
# a datagram socket of ours, collecting what the agent sends to syslog in
# $T/syslog (the host has no syslog daemon; nothing outside sees the mount).
start_agent_syslog() {
	local from
	mkdir "$T/dev"
	"$python" - "$T/dev/log" "$T/syslog" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
PY
	register_pid $!
	for _ in $(seq 1 50); do [ -S "$T/dev/log" ] && break; sleep 0.1; done
	"$AGENT" --check-config -c "$AGENT_CONF" >/dev/null ||
	    fail "configuration rejected"
	from=$(($(stat -c %s "$AGENT_LOG" 2>/dev/null || echo 0) + 1))
	DEV="$T/dev" unshare -m --propagation private bash -c '
		for f in null zero random urandom; do
			touch "$DEV/$f" && mount --bind "/dev/$f" "$DEV/$f"
		done
		mount --bind "$DEV" /dev && exec "$0" -c "$1"' \
	    "$AGENT" "$AGENT_CONF" 2>>"$AGENT_LOG" &
	AGENT_PID=$!
	register_pid "$AGENT_PID"
	for _ in $(seq 1 600); do
		if "$BOTID" --socket "$AGENT_SOCK" version >/dev/null 2>&1; then
			agent_keys_made "$from"
			return 0
		fi
		kill -0 "$AGENT_PID" 2>/dev/null ||
		    fail "agent died at start: $(tail -5 "$AGENT_LOG")"
		sleep 0.1
	done
	fail "agent did not answer within 60 s"
}

# --- Not provisioned: checkpoints unsigned, and saying so; syslog copy -----
conf "$T/unprovisioned.log" yes 1
start_agent_syslog
operations 3
# Once a checkpoint is the last line, one entry and a second without
# another: an interval checkpoint (4 entries are far).
for _ in $(seq 1 50); do
	tail -1 "$AUDIT_LOG" | grep -q '"op":"checkpoint"' && break
	sleep 0.1
done
check botid_cli sign tbot --in "$T/msg" --out "$T/sig"
for _ in $(seq 1 50); do
	tail -1 "$AUDIT_LOG" | grep -q '"reason":"interval"' && break
	sleep 0.1
done
tail -1 "$AUDIT_LOG" | grep -q '"reason":"interval"' ||
    fail "no checkpoint a second after the last entry: $(tail -1 "$AUDIT_LOG")"
stop_agent
# Every entry went to syslog too, byte for byte.
sed -n 's/^<[0-9]*>.*audit: //p' "$T/syslog" >"$T/syslog.entries"
cmp -s "$T/syslog.entries" "$AUDIT_LOG" ||
    fail "syslog did not get every entry: $(diff "$AUDIT_LOG" "$T/syslog.entries" | head -3)"
[ "$(grep '"op":"checkpoint"' "$AUDIT_LOG" | grep '"result":"unsigned"' |
    grep -c '"detail":"host not provisioned')" -gt 0 ] ||
    fail "no unsigned checkpoint says why: $(tail -2 "$AUDIT_LOG")"
tail -1 "$AUDIT_LOG" | grep -q '"reason":"shutdown"' ||
    fail "the agent did not seal the log at shutdown"
out=$(verify "$AUDIT_LOG" 2>&1) || fail "chain of the unprovisioned log: $out"
case $out in *"signatures not checked"*) ;; *) fail "verify output: $out";; esac
# The same log as an agent before version 2 checkpoints wrote it: still
# verified, under the old rules, with a warning.
"$python" - "$AUDIT_LOG" "$T/v1.log" <<'PY'
import hashlib, json, sys
out, prev, hashes = [], "0" * 64, {}
for raw in open(sys.argv[1], "rb"):
    e = json.loads(raw)
    e["prev"] = prev
    for k in ("v", "number", "run", "prev_checkpoint", "found"):
        e.pop(k, None)
    if e["op"] == "checkpoint":
        e["sealed_hash"] = hashes[e["sealed_seq"]]
    line = json.dumps(e, separators=(",", ":")).encode() + b"\n"
    out.append(line)
    prev = hashes[e["seq"]] = hashlib.sha256(line).hexdigest()
open(sys.argv[2], "wb").write(b"".join(out))
PY
out=$(verify "$T/v1.log" 2>&1) || fail "a version 1 log: $out"
case $out in *"warning: $(grep -c '"op":"checkpoint"' "$T/v1.log") version 1 checkpoints, verified under the old rules: their reason and time are not signed"*) ;;
*) fail "no warning for version 1 checkpoints: $out";; esac

# --- Provisioned: signed checkpoints, rotation, restart ---------------------
# A fresh chain in a new file: without the state the unprovisioned run left
# (its last checkpoint), the agent would continue that chain in it.
[ -s "$T/state/audit.state" ] || fail "no audit.state after a clean stop"
rm "$T/state/audit.state"
start_ca ca "$BOTID_EK_CA_CHAIN"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
conf "$T/audit.log" no 3600
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
HOST_CERT="$T/state/attest/host-cert.pem"
[ -s "$HOST_CERT" ] || fail "no host certificate after provisioning"
expect_reject "checkpoint is unsigned (host not provisioned, or its TPM unavailable)" \
    "$T/unprovisioned.log" --host-cert "$HOST_CERT"

start_agent
operations 6
wait_checkpoints "$AUDIT_LOG" 2
mv "$AUDIT_LOG" "$T/audit.log.1"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 100); do [ -e "$AUDIT_LOG" ] && break; sleep 0.1; done
[ -e "$AUDIT_LOG" ] || fail "the agent did not reopen its audit log"
tail -1 "$T/audit.log.1" | grep -q '"reason":"rotate"' ||
    fail "the rotated file does not end with a rotation checkpoint"
operations 5
wait_checkpoints "$AUDIT_LOG" 2
stop_agent
start_agent	# a restart continues the chain from the file's last line
operations 1
stop_agent
OLD="$T/audit.log.1" NEW="$AUDIT_LOG"
tail -1 "$NEW" | grep -q '"op":"checkpoint","result":"signed","reason":"shutdown"' ||
    fail "the log does not end with a signed shutdown checkpoint: $(tail -1 "$NEW")"

out=$(verify --host-cert "$HOST_CERT" --require-sealed "$OLD" "$NEW") ||
    fail "verify rejected the untouched logs: $out"
case $out in *"ends with a final checkpoint"*) ;; *) fail "verify: $out";; esac
check verify --host-cert "$HOST_CERT" --require-sealed "$OLD"
out=$(verify --host-cert "$HOST_CERT" "$NEW") || fail "the new file alone: $out"
case $out in *"continues from seq"*) ;; *) fail "verify of the new file: $out";; esac
expect_reject "expected" --host-cert "$HOST_CERT" "$NEW" "$OLD"

# Independent checks: each prev is the SHA-256 of the line before it
# (sha256sum), and openssl verifies the last checkpoint's signature.
"$python" - "$OLD" "$NEW" <<'PY' || fail "prev is not the previous line's SHA-256"
import hashlib, json, sys
prev = None
for path in sys.argv[1:]:
    for raw in open(path, "rb"):
        e = json.loads(raw)
        if prev is not None:
            assert e["prev"] == prev, (path, e["seq"])
        prev = hashlib.sha256(raw).hexdigest()
PY
n=$(grep -c '' "$NEW")
sealed_line=$(sed -n "$((n - 1))p" "$NEW")
[ "$(printf '%s\n' "$sealed_line" | sha256sum | cut -c1-64)" = \
    "$(tail -1 "$NEW" | sed 's/.*"sealed_hash":"\([0-9a-f]*\)".*/\1/')" ] ||
    fail "sealed_hash is not the SHA-256 of the line before the checkpoint"
# Version 2: every member of the checkpoint but seq and prev is signed.
tail -1 "$NEW" | "$python" -c '
import json, sys
e = json.loads(sys.stdin.read())
assert e["v"] == 2 and "found" not in e
sys.stdout.write("botid-audit-checkpoint-v2\n" + "".join(
    "%s %s\n" % (k, e.get(k, "")) for k in ("number", "run", "time", "reason",
    "sealed_seq", "sealed_hash", "prev_checkpoint", "found")))' >"$T/cp.msg"
tail -1 "$NEW" | sed 's/.*"sig":"\([^"]*\)".*/\1/' | base64 -d >"$T/cp.sig"
openssl x509 -in "$HOST_CERT" -noout -pubkey >"$T/host.pub"
check openssl dgst -sha256 -verify "$T/host.pub" -signature "$T/cp.sig" \
    "$T/cp.msg"

# --- Tampering ---------------------------------------------------------------
# Lines 1 to 4 of the rotated file are operations (seq 0 to 3); its first
# checkpoint, on line cp (seq cp - 1), seals one of them or a later one.
sed -n 3p "$OLD" | grep -q '"op":"sign-' || fail "line 3 is not an operation"
cp=$(grep -n '"op":"checkpoint"' "$OLD" | head -1 | cut -d: -f1)
cp_sealed=$(sed -n "${cp}p" "$OLD" | sed 's/.*"sealed_seq":\([0-9]*\).*/\1/')
[ "$cp" -ge 5 ] && [ "$cp_sealed" -ge 3 ] || fail "first checkpoint on line $cp"
B="$T/bad.log"
tamper() {	# tamper SED-SCRIPT: $B is $OLD edited by it
	sed "$1" "$OLD" >"$B"
	cmp -s "$OLD" "$B" && fail "sed '$1' changed nothing"
	return 0
}
tamper '3s/"result":"[a-z]*"/"result":"ok"/; 3s/"uid":[0-9]*/"uid":4242/'
expect_reject "$B:4 (seq 3): does not link to the entry before it, $B:3 (seq 2)" \
    --host-cert "$HOST_CERT" "$B" "$NEW"
tamper 3d
expect_reject "$B:3 (seq 3): seq 3 where 2 was expected" \
    --host-cert "$HOST_CERT" "$B" "$NEW"
tamper '3{h;d};4G'
expect_reject "$B:3 (seq 3): seq 3 where 2 was expected" \
    --host-cert "$HOST_CERT" "$B" "$NEW"
# An inserted entry with a right seq and prev: the real one after it repeats.
"$python" - "$OLD" "$B" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1], "rb").readlines()
fake = json.loads(lines[2])
fake["seq"] = fake["seq"] + 1
fake["prev"] = hashlib.sha256(lines[2]).hexdigest()
fake["bot"] = "tbot"
line = json.dumps(fake, separators=(",", ":")).encode() + b"\n"
open(sys.argv[2], "wb").write(b"".join(lines[:3] + [line] + lines[3:]))
PY
expect_reject "$B:5 (seq 3): seq 3 where 4 was expected: entries moved or inserted" \
    --host-cert "$HOST_CERT" "$B" "$NEW"
# The first checkpoint carrying the second one's signature.
sig2=$(grep '"op":"checkpoint"' "$OLD" | sed -n 2p | sed 's/.*"sig":"\([^"]*\)".*/\1/')
tamper "${cp}s|\"sig\":\"[^\"]*\"|\"sig\":\"$sig2\"|"
expect_reject "$B:$cp (seq $((cp - 1))): checkpoint signature does not verify" \
    --host-cert "$HOST_CERT" "$B" "$NEW"
# A chain rewritten from line 3 on, hashes and all: only the seal shows it.
"$python" - "$OLD" "$B" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1], "rb").readlines()
out = lines[:2]
for raw in lines[2:]:
    e = json.loads(raw)
    e["prev"] = hashlib.sha256(out[-1]).hexdigest()
    if e["seq"] == 2:
        e["uid"] = 4242
    out.append(json.dumps(e, separators=(",", ":")).encode() + b"\n")
open(sys.argv[2], "wb").write(b"".join(out))
PY
expect_reject "$B:$cp (seq $((cp - 1))): checkpoint seals seq $cp_sealed with another hash than that entry's: it was edited, or the chain rewritten; seq 0 ($B:1) to $cp_sealed are in doubt" \
    --host-cert "$HOST_CERT" "$B"

# Cut after the last checkpoint: the shutdown seal and the line before it.
head -n -2 "$NEW" >"$T/cut.log"
expect_reject "unsealed" --host-cert "$HOST_CERT" --require-sealed "$OLD" "$T/cut.log"
out=$(verify --host-cert "$HOST_CERT" "$OLD" "$T/cut.log") ||
    fail "without --require-sealed a cut log still verifies its chain: $out"
case $out in *"unsealed"*) ;; *) fail "verify does not report unsealed entries: $out";; esac
# Cut right after a periodic checkpoint that sealed everything before it
# (one that raced an entry, written while the TPM signed, would not).
periodic=$("$python" - "$NEW" <<'PY'
import json, sys
for n, raw in enumerate(open(sys.argv[1], "rb"), 1):
    e = json.loads(raw)
    if e.get("reason") == "entries" and e["sealed_seq"] == e["seq"] - 1:
        print(n)
PY
)
[ -n "$periodic" ] || fail "no periodic checkpoint sealing all before it"
head -n "$(echo "$periodic" | tail -1)" "$NEW" >"$T/cut.log"
expect_reject "does not end with a shutdown or rotation checkpoint" \
    --host-cert "$HOST_CERT" --require-sealed "$OLD" "$T/cut.log"
# The tail dropped after every line of the new file. --require-sealed
# passes only where what is kept ends with a shutdown or rotation
# checkpoint sealing all before it (the file holds two runs: the first
# run's shutdown is such a place, which only the state file, at the next
# start, or the CA anchor sees). Relabelling the last checkpoint kept
# breaks its signature.
finals=$("$python" - "$NEW" <<'PY'
import json, sys
for n, raw in enumerate(open(sys.argv[1], "rb"), 1):
    e = json.loads(raw)
    if e.get("reason") in ("shutdown", "rotate") and e["sealed_seq"] == e["seq"] - 1:
        print(n)
PY
)
[ "$(echo "$finals" | wc -l)" -eq 2 ] || fail "two runs in the new file: $finals"
n=$(grep -c '' "$NEW")
for k in $(seq 1 "$n"); do
	head -n "$k" "$NEW" >"$T/cut.log"
	if echo "$finals" | grep -qx "$k"; then
		check verify --host-cert "$HOST_CERT" --require-sealed "$OLD" \
		    "$T/cut.log" >/dev/null
		label=rotate
	else
		expect_reject "$T/cut.log:$k" --host-cert "$HOST_CERT" \
		    --require-sealed "$OLD" "$T/cut.log"
		label=shutdown
	fi
	tail -1 "$T/cut.log" | grep -q '"op":"checkpoint"' || continue
	sed -i "\$s/\"reason\":\"[a-z]*\"/\"reason\":\"$label\"/" "$T/cut.log"
	expect_reject "$T/cut.log:$k (seq $(tail -1 "$T/cut.log" |
	    sed 's/^{"seq":\([0-9]*\).*/\1/')): checkpoint signature does not verify" \
	    --host-cert "$HOST_CERT" --require-sealed "$OLD" "$T/cut.log"
done
# Every checkpoint removed, the chain recomputed (no TPM needed): nothing
# seals the entries.
"$python" - "$OLD" "$NEW" "$B" <<'PY'
import hashlib, json, sys
out, seq, prev = [], 0, "0" * 64
for path in sys.argv[1:3]:
    for raw in open(path, "rb"):
        e = json.loads(raw)
        if e["op"] == "checkpoint":
            continue
        e["seq"], e["prev"] = seq, prev
        line = json.dumps(e, separators=(",", ":")).encode() + b"\n"
        out.append(line)
        seq, prev = seq + 1, hashlib.sha256(line).hexdigest()
open(sys.argv[3], "wb").write(b"".join(out))
PY
expect_reject "no checkpoint seals the $(grep -c '' "$B") entries unsealed" \
    --host-cert "$HOST_CERT" --require-sealed "$B"
# Removed without recomputing: the first gap is named.
grep -v '"op":"checkpoint"' "$OLD" >"$B"
expect_reject "$B:$cp (seq $cp): seq $cp where $((cp - 1)) was expected: entries deleted or moved" \
    --host-cert "$HOST_CERT" --require-sealed "$B"
# A cut line.
head -c -10 "$NEW" >"$T/cut.log"
expect_reject "cut short" --host-cert "$HOST_CERT" "$OLD" "$T/cut.log"

# Another host's certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/other.key" -out "$T/other.pem" -subj /CN=other -days 1 \
    2>/dev/null
expect_reject "$OLD:$cp (seq $((cp - 1))): checkpoint signature does not verify with the host certificate's key" \
    --host-cert "$T/other.pem" "$OLD" "$NEW"
expect_reject "needs --host-cert" --require-sealed "$OLD"
echo "PASS: audit chain"
