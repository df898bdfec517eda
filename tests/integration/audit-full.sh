#!/bin/bash
# Fail closed on audit (doc/audit.md, "When an entry is written"): the
# audit log lives on a 64 KiB tmpfs that fills while one client signs 400
# times. Every reply is either a signature whose entry is in the log or
# AUDIT_UNAVAILABLE (status 12) with no signature: signatures returned and
# "ok" entries match one for one, no refused request has an entry, botid
# says why and writes no output, the PKCS#11 module returns
# CKR_DEVICE_ERROR and no signature, and the agent says so in its log once a
# second at most. Denials meanwhile are answered, and recorded later:
# 100 from 100 processes (more kinds than the 64 slots) add up to exactly
# 100 once space returns. Space freed, the agent signs again with no
# restart, and `botid audit verify` passes on the whole log (a line the full disk cut
# short was taken back, not left in the chain). A deprovisioning on a full
# disk is answered AUDIT_UNAVAILABLE, saying it is not recorded.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
[ "$(id -u)" -eq 0 ] || fail "this test mounts a tmpfs: run it as root"
botid_setup
start_softhsm hsm auditfull
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
python=${PYTHON3:-python3}
client="$top_srcdir/tests/integration/audit-client.py"

mkdir "$T/full"
mount -t tmpfs -o size=64k,mode=0700 botid-audit-full "$T/full"
register_mount "$T/full"
# Most of the space goes to a filler, freed later: the log fills quickly.
head -c 40960 /dev/zero >"$T/full/filler"
AUDIT_LOG="$T/full/audit.log"
agent_conf_begin
agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:$(id -u)"
agent_add_bot locked pkcs11 ecdsa-p256 "uid:1"
start_agent
check botid_cli pubkey hsm1 --out "$T/hsm1.pem"

# entries_ok: the SHA-256 of the data of every sign-data entry "ok", sorted.
entries_ok() {
	"$python" -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("op") == "sign-data" and e.get("result") == "ok":
        print(e["sha256"])' "$AUDIT_LOG" | sort
}

# Round 1: the disk fills up half-way.
mkdir "$T/r1"
t0=$(date +%s)
out=$("$python" "$client" sign "$AGENT_SOCK" hsm1 400 "$T/r1") ||
    fail "signing client failed"
t1=$(date +%s)
echo "round 1: $out"
signed=$(wc -l <"$T/r1/signed")
refused=$(wc -l <"$T/r1/refused")
[ "$signed" -gt 0 ] || fail "nothing was signed before the disk filled"
[ "$refused" -gt 0 ] || fail "the disk never filled: nothing refused"
# Each signature is real (checked by openssl) ...
for f in "$T"/r1/sig.*; do
	i=${f##*.}
	printf 'audit-full request %s' "$i" >"$T/data"
	openssl dgst -sha256 -verify "$T/hsm1.pem" -signature "$f" "$T/data" \
	    >/dev/null || fail "signature $i does not verify"
done
# ... and has its entry; no refused request has one.
entries_ok >"$T/ok1"
sort "$T/r1/signed" >"$T/signed1"
[ "$(wc -l <"$T/ok1")" -eq "$signed" ] ||
    fail "$signed signatures returned, $(wc -l <"$T/ok1") ok entries"
cmp -s "$T/ok1" "$T/signed1" ||
    fail "the signatures returned are not the ones the log records"
sort "$T/r1/refused" >"$T/refused1"
[ -z "$(comm -12 "$T/ok1" "$T/refused1")" ] ||
    fail "a refused request has an ok entry"
[ "$(sort -u "$T/r1/messages")" = "the agent cannot write its audit log; nothing is signed until it can" ] ||
    fail "refusal messages: $(sort -u "$T/r1/messages" | head -3)"
# The condition is logged, at most once a second, with a count.
lines=$(grep -c 'audit: cannot write the entry for sign-data' "$AGENT_LOG" || true)
[ "$lines" -ge 1 ] || fail "the agent did not log the full audit log"
[ "$lines" -le $((t1 - t0 + 2)) ] ||
    fail "$lines log lines about the full audit log in $((t1 - t0)) s"
grep -q 'entries not written since the log last worked' "$AGENT_LOG" ||
    fail "the log line carries no count"
echo "agent log: $lines lines for $refused refusals in $((t1 - t0 + 1)) s or less"

# botid says why, exits 1 and writes nothing.
printf 'cli\n' >"$T/msg"
set +e
msg=$(botid_cli sign hsm1 --in "$T/msg" --out "$T/cli.sig" 2>&1)
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "botid sign while the log is full: exit $rc, want 1"
[ "$msg" = "botid: sign: audit log unavailable: the agent cannot write its audit log; nothing is signed until it can" ] ||
    fail "botid said: $msg"
[ ! -e "$T/cli.sig" ] || fail "botid wrote a signature file"
# The PKCS#11 module: CKR_DEVICE_ERROR, no signature.
module="$top_builddir/pkcs11/.libs/botid-pkcs11.so"
p11() {
	# In a sanitizer build the module needs the ASan runtime preloaded
	# into the uninstrumented tool (as in pkcs11-module.sh).
	if [ -n "${BOTID_SANITIZER_PRELOAD:-}" ]; then
		LD_PRELOAD="$BOTID_SANITIZER_PRELOAD" \
		    ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0" \
		    BOTID_SOCKET=$AGENT_SOCK pkcs11-tool --module "$module" "$@"
	else
		BOTID_SOCKET=$AGENT_SOCK pkcs11-tool --module "$module" "$@"
	fi
}
p11 -O >"$T/objects" 2>&1 ||
    fail "pkcs11-tool -O failed: $(head -3 "$T/objects")"
id=$(awk '/^Private Key Object/ { p = 1; next } /^[^ ]/ { p = 0 }
    p && $1 == "label:" { l = $2 } p && $1 == "ID:" && l == "hsm1" { print $2; exit }' \
    "$T/objects")
[ -n "$id" ] || fail "no key hsm1 in: $(cat "$T/objects")"
set +e
msg=$(p11 --sign -m ECDSA-SHA256 --id "$id" -i "$T/msg" -o "$T/p11.sig" 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "pkcs11-tool signed while the log is full"
case $msg in
*CKR_DEVICE_ERROR*) ;;
*) fail "pkcs11-tool said: $msg" ;;
esac
[ ! -s "$T/p11.sig" ] || fail "pkcs11-tool wrote a signature"
entries_ok | cmp -s - "$T/ok1" || fail "the refused CLI request has an entry"
# Denials are answered as usual meanwhile; their counts wait for space.
# Each run of botid is a new pid, so a kind of its own: more kinds than
# the agent has slots (64), which the agent before dropped (doc/audit.md,
# "Aggregated lines"; it recorded 64 of these 100).
ndenied=100
for _ in $(seq 1 $ndenied); do
	set +e
	botid_cli pubkey locked --out "$T/locked.pem" 2>/dev/null
	rc=$?
	set -e
	[ "$rc" -eq 3 ] || fail "pubkey locked while the log is full: exit $rc, want 3"
	[ ! -e "$T/locked.pem" ] || fail "a denied pubkey wrote a key file"
done

# Space returns: the next request is written and signed, no restart.
rm "$T/full/filler"
mkdir "$T/r2"
out=$("$python" "$client" sign "$AGENT_SOCK" hsm1 20 "$T/r2") ||
    fail "signing client failed after space returned"
echo "round 2: $out"
[ "$(wc -l <"$T/r2/refused")" -eq 0 ] ||
    fail "refusals after space returned: $out"
grep -q 'audit: the log is written again' "$AGENT_LOG" ||
    fail "the agent did not log its recovery"
stop_agent

# The whole log verifies (no cut line, no gap), and still matches.
check "$BOTID" audit verify "$AUDIT_LOG"
entries_ok >"$T/ok-all"
sort "$T/r1/signed" "$T/r2/signed" | cmp -s - "$T/ok-all" ||
    fail "log and signatures returned differ after recovery"
denied=$("$python" -c '
import json, sys
print(sum(e.get("count", 1) for e in map(json.loads, open(sys.argv[1]))
          if e["op"] == "pubkey" and e["result"] == "denied"))' "$AUDIT_LOG")
[ "$denied" -eq "$ndenied" ] ||
    fail "$denied denials recorded after recovery, want $ndenied"
# Those beyond the slots are on overflow lines: op and result kept, no
# caller (uid, gid, pid, exe, unit null), a count.
overflow=$("$python" -c '
import json, sys
print(sum(e["count"] for e in map(json.loads, open(sys.argv[1]))
          if e["op"] == "pubkey" and e["result"] == "denied" and
          e.get("detail") == "other callers, counted while the log was full" and
          all(e[k] is None for k in ("bot", "uid", "gid", "pid", "exe", "unit"))))' \
    "$AUDIT_LOG")
[ "$overflow" -gt 0 ] || fail "no overflow count for $ndenied kinds of denial"
echo "denials: $denied recorded, $overflow of them on overflow lines"

# A key operation whose outcome cannot be recorded: the host (never
# enrolled) deprovisioned with the disk full again. The keys are gone, the
# client hears that this is not in the log, the agent stops, and the log
# still verifies.
start_agent
head -c 1048576 /dev/zero >"$T/full/filler" 2>/dev/null || true
# The log's last page may still hold a line: denials until one does not fit.
before=$(grep -c 'cannot write the entry for pubkey' "$AGENT_LOG" || true)
for _ in $(seq 1 100); do
	set +e
	botid_cli pubkey locked --out /dev/null 2>/dev/null
	rc=$?
	set -e
	[ "$rc" -eq 3 ] || fail "pubkey locked: exit $rc, want 3"
	[ "$(grep -c 'cannot write the entry for pubkey' "$AGENT_LOG")" -eq "$before" ] ||
	    break
done
[ "$(grep -c 'cannot write the entry for pubkey' "$AGENT_LOG")" -gt "$before" ] ||
    fail "the log never filled up again"
set +e
msg=$(botid_cli deprovision --yes 2>&1)
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "deprovision with the log full: exit $rc, want 1"
[ "$msg" = "botid: deprovision: audit log unavailable: the agent cannot write its audit log: what was done is not recorded there" ] ||
    fail "botid deprovision said: $msg"
rc=0
wait "$AGENT_PID" || rc=$?
AGENT_PID=
[ "$rc" -eq 0 ] || fail "the deprovisioned agent exited $rc"
# The denial the full log could not take is lost with the agent's stop:
# its own log says exactly how many.
grep -q 'audit: 1 counted events (1 lines) could not be written before the log closed: lost' \
    "$AGENT_LOG" || fail "the agent did not say which counts it lost"
rm "$T/full/filler"
check "$BOTID" audit verify "$AUDIT_LOG"
! grep -q '"op":"deprovision"' "$AUDIT_LOG" ||
    fail "a deprovision entry was written on a full disk"
echo "PASS: audit fail-closed ($signed signed, $refused refused, $(wc -l <"$T/ok-all") entries ok)"
