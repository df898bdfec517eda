#!/bin/bash
# The audit anchor at botid-ca (doc/audit.md, "The anchor"). On a host
# provisioned against a real botid-ca (swtpm; SQLite, or PostgreSQL when
# ca-postgres.sh runs this with BOTID_TEST_PG), the agent sends each signed
# checkpoint to POST /v1/audit/anchor: `botid-ca audit export` gives the
# newest as the log holds it, byte for byte, and inventory and /metrics
# show its number and age. With the CA down, signing goes on, checkpoints
# wait in audit-anchor.queue (also across an agent restart), and once the
# CA is back every one of them reaches it, in order. A log rolled back to
# an earlier run's shutdown checkpoint passes `botid audit verify` alone
# but fails with --ca (and with an exported anchor), naming both
# checkpoints. The CA refuses a checkpoint replayed as new by the same
# host (409) and one posted as another enrolled host's (403), holding
# nothing new; verify refuses an anchor not signed by the host key.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
BOTID_EK_CA_CHAIN=$(fixture_var tpm BOTID_EK_CA_CHAIN)
cat "$BOTID_EK_CA_CHAIN" "$(fixture_var other BOTID_EK_CA_CHAIN)" >"$T/roots.pem"
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
python=${PYTHON3:-python3}
printf 'anchor me\n' >"$T/msg"
AUDIT_LOG="$T/audit.log"
agent_conf_begin "audit_checkpoint_entries = 4" \
    "audit_checkpoint_interval = 3600"
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
QUEUE="$T/state/audit-anchor.queue"

start_ca ca "$T/roots.pem" "audit_anchor_history = 5"
CA_PORT=${BOTID_CA_URL##*:}
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
HOST_CERT="$T/state/attest/host-cert.pem"
HOST=$(sed -n 's/.*"host_id" *: *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
[ ${#HOST} -eq 16 ] || fail "no host id in host.json"

# The other host, enrolled at the same CA (its own TPM and state).
sed -e "s|$T/state|$T/other-state|" \
    -e "s|^tcti = .*|tcti = $(fixture_var other BOTID_TCTI)|" \
    "$AGENT_CONF" >"$T/other.conf"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token2"
check "$PROVISION" -c "$T/other.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token2"
OTHER=$(sed -n 's/.*"host_id" *: *"\([0-9a-f]*\)".*/\1/p' "$T/other-state/attest/host.json")

signs() {
	local i
	for i in $(seq 1 "$1"); do
		check botid_cli sign tbot --in "$T/msg" --out "$T/sig"
	done
}

# last_number: the number of the log's last signed checkpoint.
last_number() {
	grep '"op":"checkpoint","result":"signed"' "$AUDIT_LOG" | tail -1 |
	    sed 's/.*"number":\([0-9]*\).*/\1/'
}

# held: the number the CA holds for HOST (empty: none).
held() {
	"$CA" audit export -c "$BOTID_CA_CONF" "$HOST" 2>/dev/null |
	    sed -n 's/.*"number":\([0-9]*\).*/\1/p'
}

# wait_held N: until the CA holds number N for HOST (the sender retries at
# most every 16 s).
wait_held() {
	for _ in $(seq 1 600); do
		[ "$(held)" = "$1" ] && return 0
		sleep 0.1
	done
	fail "the CA holds '$(held)', not checkpoint $1: $(tail -3 "$AGENT_LOG")"
}

# wait_checkpoints N: until the log holds N signed checkpoints.
wait_checkpoints() {
	for _ in $(seq 1 300); do
		[ "$(grep -c '"op":"checkpoint","result":"signed"' "$AUDIT_LOG")" -ge "$1" ] &&
		    return 0
		sleep 0.1
	done
	fail "fewer than $1 signed checkpoints: $(tail -3 "$AGENT_LOG")"
}

# --- Anchored as made -----------------------------------------------------
start_agent
signs 8
wait_checkpoints 2
wait_held "$(last_number)"
"$CA" audit export -c "$BOTID_CA_CONF" "$HOST" >"$T/anchor.json"
"$python" - "$T/anchor.json" "$AUDIT_LOG" "$HOST" <<'PY' || fail "the export is not the log's checkpoint"
import hashlib, json, sys
a = json.load(open(sys.argv[1]))
lines = [l for l in open(sys.argv[2], "rb") if b'"op":"checkpoint"' in l]
line = [l for l in lines if json.loads(l).get("number") == a["number"]][0]
assert a["host_id"] == sys.argv[3]
assert a["checkpoint"].encode() + b"\n" == line
assert a["hash"] == hashlib.sha256(line).hexdigest()
assert a["seq"] == json.loads(line)["seq"]
PY
n=$(held)
"$CA" inventory -c "$BOTID_CA_CONF" >"$T/inventory"
grep -Eq "^$HOST +$n +[0-9]+ +entries +[0-9T:.-]+Z +[0-9]+ +[0-9]+s$" "$T/inventory" ||
    fail "inventory does not show the host's last anchor: $(tail -3 "$T/inventory")"
curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/metrics" >"$T/metrics"
grep -qx "botid_ca_audit_anchor_number{host=\"$HOST\"} $n" "$T/metrics" ||
    fail "no anchor number in /metrics: $(grep anchor "$T/metrics")"
grep -Eq "^botid_ca_audit_anchor_age_seconds\{host=\"$HOST\"\} [0-9]+$" "$T/metrics" ||
    fail "no anchor age in /metrics"

# --- Replays: the same host, and another enrolled host -------------------
post() {	# post HOST LINE: the CA's status and answer
	"$python" -c 'import json, sys; print(json.dumps({"host_id": sys.argv[1], "checkpoint": sys.argv[2]}))' \
	    "$1" "$2" >"$T/body"
	curl -s --cacert "$BOTID_CA_BUNDLE" -o "$T/answer" -w '%{http_code}' \
	    -H 'Content-Type: application/json' --data-binary @"$T/body" \
	    "$BOTID_CA_URL/v1/audit/anchor"
}
first=$(grep '"op":"checkpoint","result":"signed"' "$AUDIT_LOG" | head -1)
newest=$(grep '"op":"checkpoint","result":"signed"' "$AUDIT_LOG" | tail -1)
[ "$(post "$HOST" "$first")" = 409 ] || fail "an old checkpoint replayed: $(cat "$T/answer")"
grep -q "checkpoint number 0 is not after number $n, the newest held (replay)" "$T/answer" ||
    fail "replay refusal: $(cat "$T/answer")"
[ "$(post "$HOST" "$newest")" = 200 ] || fail "the newest again: $(cat "$T/answer")"
grep -q '"already":true' "$T/answer" || fail "not idempotent: $(cat "$T/answer")"
[ "$(post "$OTHER" "$newest")" = 403 ] || fail "another host's checkpoint: $(cat "$T/answer")"
grep -q "host $OTHER: the checkpoint's signature does not verify with the host key" "$T/answer" ||
    fail "cross-host refusal: $(cat "$T/answer")"
out=$("$CA" audit export -c "$BOTID_CA_CONF" "$OTHER" 2>&1) &&
    fail "the other host holds an anchor: $out"
case $out in *"anchored no audit checkpoint"*) ;; *) fail "export: $out";; esac
[ "$(held)" = "$n" ] || fail "a replay changed what the CA holds"
# A relabelled checkpoint (reason edited) is not signed: refused, nothing held.
[ "$(post "$HOST" "$(printf '%s' "$newest" | sed 's/"reason":"entries"/"reason":"shutdown"/')")" = 403 ] ||
    fail "a relabelled checkpoint: $(cat "$T/answer")"
# Verify refuses an anchor that is not signed by the host key.
out=$("$BOTID" audit verify --host-cert "$T/other-state/attest/host-cert.pem" \
    --anchor "$T/anchor.json" "$AUDIT_LOG" 2>&1) &&
    fail "verify took another host's anchor: $out"
case $out in *"$T/anchor.json: the anchored checkpoint is not signed by the host certificate's key"*) ;;
*) fail "verify with another host's certificate: $out";; esac

# --- The CA down: signing goes on, checkpoints queue, in order ----------
kill -TERM "$BOTID_CA_PID"
wait "$BOTID_CA_PID" 2>/dev/null || true
before=$(last_number)
signs 12
wait_checkpoints $((before + 4))
for _ in $(seq 1 300); do
	[ -s "$QUEUE" ] && [ "$(grep -c '' "$QUEUE")" -ge 3 ] && break
	sleep 0.1
done
[ "$(grep -c '' "$QUEUE")" -ge 3 ] || fail "checkpoints not queued: $(tail -3 "$AGENT_LOG")"
grep -q "audit anchor: not sent, will retry" "$AGENT_LOG" ||
    fail "the agent did not say the CA is down"
# Restarted meanwhile: what is queued survives, the shutdown seal too.
stop_agent
grep -q '"reason":"shutdown"' "$QUEUE" || fail "the shutdown checkpoint is not queued"
start_agent
signs 4
wait_checkpoints $((before + 6))
stop_agent
want=$(last_number)
# Back on its old port: the agent's host.json names it.
sed -i "s/^listen = .*/listen = 127.0.0.1:$CA_PORT/" "$BOTID_CA_CONF"
"$CA" serve -c "$BOTID_CA_CONF" 2>>"$BOTID_CA_LOG" &
BOTID_CA_PID=$!
register_pid "$BOTID_CA_PID"
for _ in $(seq 1 100); do
	curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/health/live" >/dev/null && break
	sleep 0.1
done
start_agent	# sends the queue at start
wait_held "$want"
# The sender empties the file once the CA took its last line.
for _ in $(seq 1 100); do [ -s "$QUEUE" ] || break; sleep 0.1; done
[ ! -s "$QUEUE" ] || fail "the queue is not emptied: $(wc -l <"$QUEUE") lines"
# Every checkpoint reached the CA once, in the order made.
sed -n "s/.*ca: host $HOST anchored audit checkpoint \([0-9]*\) .*/\1/p" \
    "$BOTID_CA_LOG" >"$T/anchored"
seq 0 "$want" | cmp -s - "$T/anchored" ||
    fail "not every checkpoint, in order: $(tr '\n' ' ' <"$T/anchored")"
stop_agent
wait_held "$(last_number)"

# --- Rolled back to an earlier run's shutdown checkpoint -----------------
cp "$AUDIT_LOG" "$T/earlier.log"
early=$(last_number)
early_seq=$(tail -1 "$T/earlier.log" | sed 's/^{"seq":\([0-9]*\).*/\1/')
start_agent
signs 4
stop_agent
wait_held "$(last_number)"
late=$(last_number)
late_seq=$(tail -1 "$AUDIT_LOG" | sed 's/^{"seq":\([0-9]*\).*/\1/')
cp "$AUDIT_LOG" "$T/latest.log"
cp "$T/earlier.log" "$AUDIT_LOG"
check "$BOTID" audit verify --host-cert "$HOST_CERT" --require-sealed "$AUDIT_LOG" >/dev/null
want="the log ends at checkpoint number $early (seq $early_seq), before the newest one $BOTID_CA_URL holds, number $late (seq $late_seq, shutdown, "
out=$("$BOTID" audit verify --host-cert "$HOST_CERT" --require-sealed \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" "$AUDIT_LOG" 2>&1) &&
    fail "verify --ca accepted a rolled-back log: $out"
case $out in "botid: audit verify: $AUDIT_LOG:$(grep -c '' "$AUDIT_LOG"): $want"*"): entries after seq $early_seq were cut or rolled back") ;;
*) fail "verify --ca: $out";; esac
"$CA" audit export -c "$BOTID_CA_CONF" "$HOST" >"$T/anchor.json"
out=$("$BOTID" audit verify --host-cert "$HOST_CERT" --anchor "$T/anchor.json" \
    "$AUDIT_LOG" 2>&1) && fail "verify --anchor accepted a rolled-back log: $out"
case $out in *"before the newest one $T/anchor.json holds, number $late"*) ;;
*) fail "verify --anchor: $out";; esac
# The log as the agent left it passes with the anchor.
out=$("$BOTID" audit verify --host-cert "$HOST_CERT" --require-sealed \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" "$T/latest.log" 2>&1) ||
    fail "verify --ca rejected the untouched log: $out"
case $out in *"; the newest anchored checkpoint, number $late, is in it"*) ;;
*) fail "verify --ca: $out";; esac
# The history is bounded: audit_anchor_history = 5 rows for the host.
q="SELECT COUNT(*) FROM audit_anchors WHERE host_id = '$HOST'"
if [ -n "${BOTID_TEST_PG:-}" ]; then
	rows=$("$PG_BIN/psql" -X -q -A -t "$(pg_database ca)" -c "$q")
else
	rows=$(sqlite3 "$T/ca/ca.db" "$q")
fi
[ "$rows" = 5 ] || fail "the CA keeps $rows anchors for the host, not 5"
echo "PASS: audit anchor"
