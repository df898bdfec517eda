#!/bin/bash
# Queues the agent can defend (doc/performance.md, "What the queue
# guarantees"), against swtpm and SoftHSM2. The TPM is made a hung chip by
# stopping swtpm (SIGSTOP): no timing is assumed anywhere.
#  1. A PKCS#11 bot is served while the TPM's queue is full and its chip
#     hangs: separate pools, and the event loop never waits on a device.
#  2. max_queue_wait = 1ms (set by a reload), 64 clients on one TPM bot
#     with the chip hung: every request but the one the device holds is
#     answered BUSY with a retry hint, none of them signed, as are botid
#     sign (exit 6), botid-pkcs11.so (CKR_DEVICE_ERROR) and ssh-keygen -Y
#     sign on ssh_socket (SSH_AGENT_FAILURE); each BUSY is
#     audited as a refusal (no signature entry) and the chain verifies.
#  3. The same with the chip running: every reply is a signature that
#     OpenSSL verifies, or BUSY with a hint (how many of each depends on
#     the machine: a worker that wakes later than 1 ms serves none).
#  4. Keys missing at start are made on the TPM's pool: a bot whose key
#     exists signs while they are held back (a test gate); one whose key is
#     being made gets UNAVAILABLE, and signs once it exists.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm agent-queue
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

QC() { "${PYTHON3:-python3}" "$top_srcdir/tests/integration/queue-client.py" "$@"; }
UID_ME=$(id -u)

SSH_SOCK="$T/ssh.sock"
write_conf() {
	agent_conf_begin "ssh_socket = $SSH_SOCK" "$@"
	agent_add_bot tbot tpm ecdsa-p256 "uid:$UID_ME"
	agent_add_bot pbot pkcs11 ecdsa-p256 "uid:$UID_ME"
}

# The swtpm process is released whatever way the test ends.
register_cleanup kill -CONT "$SWTPM_PID"

# --- 1. PKCS#11 while the TPM hangs (default max_queue_wait: 30 s) ---------
write_conf
start_agent
botid_cli pubkey tbot --out "$T/tbot.pem" >/dev/null || fail "pubkey tbot"
printf 'warm-up\n' >"$T/msg"
check botid_cli sign tbot --in "$T/msg" --out "$T/warm.sig"
kill -STOP "$SWTPM_PID"
out=$(QC hold "$AGENT_SOCK" tbot 16 pbot "$SWTPM_PID") ||
    fail "hold: $out"
[ "$out" = "pkcs11=ok tpm_before=0 tpm_ok=16" ] ||
    fail "a PKCS#11 bot waited behind the TPM: $out"
# The CLI too, with the TPM hung again and its queue full.
kill -STOP "$SWTPM_PID"
QC burst "$AGENT_SOCK" tbot 8 "$T" >"$T/held.out" 2>&1 &
held=$!
check botid_cli sign pbot --in "$T/msg" --out "$T/p11.sig"
kill -CONT "$SWTPM_PID"
wait "$held" || fail "TPM requests after the hold: $(cat "$T/held.out")"
grep -q '^ok=8 busy=0' "$T/held.out" ||
    fail "TPM requests after the hold: $(cat "$T/held.out")"
echo "ok: a PKCS#11 bot is served while the TPM's queue is held"

# --- 2. max_queue_wait = 1ms, the chip hung --------------------------------
# Set by a reload: it applies to the requests that arrive after it.
from=$(($(wc -c <"$AGENT_LOG") + 1))
write_conf "max_queue_wait = 1ms"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 600); do
	[ "$(tail -c +"$from" "$AGENT_LOG" |
	    grep -c 'serving 2 of 2 configured bots')" -gt 0 ] && break
	sleep 0.1
done
[ "$(tail -c +"$from" "$AGENT_LOG" |
    grep -c 'serving 2 of 2 configured bots')" -gt 0 ] ||
    fail "the reload to max_queue_wait = 1ms did not finish"
# A worker may wake later than 1 ms on a busy machine: BUSY (exit 6) is
# then a right answer too, counted for the audit check below.
busy_warm=0
for _ in $(seq 1 100); do
	rc=0
	botid_cli sign tbot --in "$T/msg" --out "$T/warm2.sig" 2>/dev/null ||
	    rc=$?
	[ "$rc" -eq 6 ] || break
	busy_warm=$((busy_warm + 1))
done
[ "$rc" -eq 0 ] || fail "warm-up signature at 1ms: exit $rc"
mkdir "$T/hung"
kill -STOP "$SWTPM_PID"
out=$(QC burst "$AGENT_SOCK" tbot 64 "$T/hung" --stopped "$SWTPM_PID") ||
    fail "burst on a hung TPM: $out"
case $out in
ok=0\ busy=64\ *|ok=1\ busy=63\ *) ;;
*) fail "64 requests on a hung TPM with max_queue_wait 1ms: $out";;
esac
busy_hung=${out#*busy=}
busy_hung=${busy_hung%% *}
ok_hung=${out#ok=}
ok_hung=${ok_hung%% *}
# BUSY is not a signature: nothing was written for those requests.
[ "$(find "$T/hung" -name 'sig.*' | wc -l)" -eq "$ok_hung" ] ||
    fail "signature files for BUSY requests"

# The CLI's answer: exit 6 and the hint. One request is put on the hung
# chip first: the agent has written a command to swtpm that swtpm has not
# read (its receive queue is not empty), so the TPM's only worker is held.
swtpm_port=${BOTID_TCTI##*port=}
swtpm_port=${swtpm_port%%,*}
swtpm_unread() {
	ss -Htn state established "( sport = :$swtpm_port )" |
	    awk '{ n += $1 } END { print n + 0 }'
}
# hold_tpm: swtpm stopped with one request on it (the TPM's worker held).
# A request the worker did not take within 1 ms is answered BUSY (a busy
# machine): another is sent, until one is on the chip.
busy_one=0
ok_one=0
one=
hold_tpm() {
	kill -STOP "$SWTPM_PID"
	for _ in $(seq 1 600); do
		if [ -n "$one" ] && ! kill -0 "$one" 2>/dev/null; then
			wait "$one" || fail "the held request: $(cat "$T/one.out")"
			grep -q '^ok=0 busy=1' "$T/one.out" ||
			    fail "a request on a hung TPM: $(cat "$T/one.out")"
			busy_one=$((busy_one + 1))
			one=
		fi
		if [ -z "$one" ]; then
			rm -rf "$T/one"
			mkdir "$T/one"
			QC burst "$AGENT_SOCK" tbot 1 "$T/one" >"$T/one.out" 2>&1 &
			one=$!
		fi
		[ "$(swtpm_unread)" -gt 0 ] && return 0
		sleep 0.1
	done
	fail "the request never reached the TPM"
}
# release_tpm: swtpm runs again; the held request must be signed.
release_tpm() {
	kill -CONT "$SWTPM_PID"
	wait "$one" || fail "the held request: $(cat "$T/one.out")"
	grep -q '^ok=1 busy=0' "$T/one.out" ||
	    fail "the held request: $(cat "$T/one.out")"
	ok_one=$((ok_one + 1))
	one=
}
hold_tpm
rc=0
botid_cli sign tbot --in "$T/msg" --out "$T/cli-busy.sig" 2>"$T/cli.err" ||
    rc=$?
release_tpm
[ "$rc" -eq 6 ] || fail "botid sign on a full queue: exit $rc, want 6: $(cat "$T/cli.err")"
grep -Eq '^botid: sign: busy: retry after [0-9]+ ms: ' "$T/cli.err" ||
    fail "botid sign on a full queue said: $(cat "$T/cli.err")"
[ ! -e "$T/cli-busy.sig" ] || fail "botid wrote a signature file for BUSY"

# The ssh-agent protocol: SSH_AGENT_FAILURE, no signature file.
SSH_AUTH_SOCK=$SSH_SOCK ssh-add -L >"$T/ssh.list" ||
    fail "ssh-add -L: $(cat "$T/ssh.list")"
grep ' tbot$' "$T/ssh.list" >"$T/tbot-ssh.pub" || fail "ssh-add -L: no tbot"
hold_tpm
rc=0
SSH_AUTH_SOCK=$SSH_SOCK ssh-keygen -q -Y sign -f "$T/tbot-ssh.pub" -n file \
    "$T/msg" 2>"$T/ssh.err" || rc=$?
release_tpm
[ "$rc" -ne 0 ] || fail "ssh-keygen -Y sign signed on a full queue"
[ ! -e "$T/msg.sig" ] || fail "ssh-keygen wrote a signature for BUSY"

# botid-pkcs11.so: C_Sign on a full queue is CKR_DEVICE_ERROR, no signature.
MODULE="$top_builddir/pkcs11/.libs/botid-pkcs11.so"
[ -f "$MODULE" ] || fail "no $MODULE: build first"
openssl dgst -sha256 -binary "$T/msg" >"$T/msg.dgst"
# C_Sign through PyKCS11 (pkcs11-tool retries a failed C_Sign as
# C_SignUpdate and reports only that): prints the CKR_ name it returned.
p11_sign() {
	# In a sanitizer build the module is ASan-instrumented, python is
	# not: it loads the module only with the ASan runtime preloaded.
	env ${BOTID_SANITIZER_PRELOAD:+LD_PRELOAD="$BOTID_SANITIZER_PRELOAD"} \
	    ${BOTID_SANITIZER_PRELOAD:+ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0} \
	    BOTID_SOCKET="$AGENT_SOCK" "${PYTHON3:-python3}" - "$MODULE" \
	    "$T/msg.dgst" "$1" <<'EOF'
import sys
import PyKCS11
lib = PyKCS11.PyKCS11Lib()
lib.load(sys.argv[1])
session = lib.openSession(lib.getSlotList(tokenPresent=True)[0])
keys = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                            (PyKCS11.CKA_LABEL, "tbot")])
if len(keys) != 1:
    sys.exit("no single tbot key object")
try:
    sig = session.sign(keys[0], open(sys.argv[2], "rb").read(),
                       PyKCS11.Mechanism(PyKCS11.CKM_ECDSA))
except PyKCS11.PyKCS11Error as e:
    print(PyKCS11.CKR[e.value])
    sys.exit(1)
# PKCS#11 gives r || s; OpenSSL verifies DER.
def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
raw = bytes(sig)
body = der_int(raw[:len(raw) // 2]) + der_int(raw[len(raw) // 2:])
open(sys.argv[3], "wb").write(b"\x30" + bytes([len(body)]) + body)
print("CKR_OK")
EOF
}
hold_tpm
rc=0
p11_sign "$T/p11-busy.sig" >"$T/p11.err" 2>&1 || rc=$?
release_tpm
[ "$rc" -ne 0 ] || fail "C_Sign signed on a full queue"
[ "$(cat "$T/p11.err")" = CKR_DEVICE_ERROR ] ||
    fail "C_Sign on a full queue: $(cat "$T/p11.err"), want CKR_DEVICE_ERROR"
[ ! -e "$T/p11-busy.sig" ] || fail "a signature file for BUSY"
# With the chip back, the same call signs (so the refusal was BUSY's); a
# worker slower than 1 ms to take it (a busy machine, memcheck) is BUSY
# again, and counted.
busy_p11=0
for _ in $(seq 1 100); do
	rc=0
	p11_sign "$T/p11-ok.sig" >"$T/p11.err" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] && [ "$(cat "$T/p11.err")" = CKR_DEVICE_ERROR ] ||
	    break
	busy_p11=$((busy_p11 + 1))
done
[ "$rc" -eq 0 ] || fail "C_Sign with the chip back: $(cat "$T/p11.err")"
check openssl pkeyutl -verify -pubin -inkey "$T/tbot.pem" -in "$T/msg.dgst" \
    -sigfile "$T/p11-ok.sig"
echo "ok: a hung TPM's queue answers BUSY with a retry hint at 1ms"

# --- 3. max_queue_wait = 1ms, the chip running ------------------------------
mkdir "$T/run"
out=$(QC burst "$AGENT_SOCK" tbot 64 "$T/run") || fail "burst: $out"
ok_run=${out#ok=}
ok_run=${ok_run%% *}
busy_run=${out#*busy=}
busy_run=${busy_run%% *}
[ $((ok_run + busy_run)) -eq 64 ] || fail "burst: $out"
unverified=0
for s in "$T"/run/sig.*; do
	[ -e "$s" ] || continue
	i=${s##*.}
	openssl pkeyutl -verify -pubin -inkey "$T/tbot.pem" \
	    -in "$T/run/dgst.$i" -sigfile "$s" >/dev/null 2>&1 ||
	    unverified=$((unverified + 1))
done
[ "$unverified" -eq 0 ] ||
    fail "$unverified signatures of the burst do not verify"
stop_agent

# --- The audit log: every BUSY a refusal, every signature an entry ---------
counts=$("${PYTHON3:-python3}" - "$AUDIT_LOG" <<'EOF'
import json, sys
busy = ok = ssh_busy = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    n = e.get("count", 1)
    if e.get("op") == "ssh-sign" and e.get("bot") == "tbot" and \
            e.get("detail") == "busy: over max_queue_wait":
        ssh_busy += n
        continue
    if e.get("op") not in ("sign-digest", "sign-data") or e.get("bot") != "tbot":
        continue
    if e.get("result") == "error" and e.get("detail") == "busy: over max_queue_wait":
        if "digest" in e:
            sys.exit("a BUSY entry carries a digest: %s" % line)
        busy += n
    elif e.get("result") == "ok":
        ok += n
print("busy=%d ok=%d ssh_busy=%d" % (busy, ok, ssh_busy))
EOF
) || fail "audit log: $counts"
# Signatures: two warm-ups, 16 + 8 held, the hung burst's, the held
# requests, the module's, the running burst's. BUSY: the warm-up's, the
# bursts', the holds' retries, the CLI's and the module's.
want="busy=$((busy_warm + busy_hung + busy_one + 2 + busy_p11 + busy_run)) ok=$((2 + 24 + ok_hung + ok_one + 1 + ok_run)) ssh_busy=1"
[ "$counts" = "$want" ] || fail "audit log: $counts, want $want"
check "$BOTID" audit verify "$AUDIT_LOG"
echo "ok: BUSY with a retry hint at max_queue_wait ($counts)"

# --- 4. Keys made in the background --------------------------------------
# tbot's key exists; four new TPM bots need one. BOTID_TEST_CREATE_GATE
# holds every creation back while $T/gate is absent: what serves first is
# then decided by the agent, not by how fast swtpm makes keys.
write_conf
for i in 1 2 3 4; do
	agent_add_bot "new$i" tpm ecdsa-p256 "uid:$UID_ME"
done
agent_add_bot other tpm ecdsa-p256 "uid:65534"
from=$(($(wc -c <"$AGENT_LOG") + 1))
export BOTID_TEST_CREATE_GATE="$T/gate"
AGENT_NO_KEY_WAIT=1 start_agent
unset BOTID_TEST_CREATE_GATE
[ "$(tail -c +"$from" "$AGENT_LOG" |
    grep -c 'serving 2 of 7 configured bots; 5 keys being created in the background')" -gt 0 ] ||
    fail "start with five new keys: $(tail -c +"$from" "$AGENT_LOG" | grep serving)"
# The bot whose key exists serves at once; a new one says why it cannot.
check botid_cli sign tbot --in "$T/msg" --out "$T/early.sig"
check openssl dgst -sha256 -verify "$T/tbot.pem" -signature "$T/early.sig" "$T/msg"
rc=0
botid_cli sign new1 --in "$T/msg" --out "$T/new1-early.sig" 2>"$T/new1.err" ||
    rc=$?
[ "$rc" -eq 5 ] || fail "a bot whose key is being made: exit $rc, want 5"
grep -q "key is being created; retry shortly" "$T/new1.err" ||
    fail "a bot whose key is being made said: $(cat "$T/new1.err")"
[ ! -e "$T/new1-early.sig" ] || fail "a signature file for a bot without a key"
# To a caller its rules do not allow, the same denial as for any bot.
rc=0
botid_cli sign other --in "$T/msg" --out "$T/other.sig" 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "another uid's bot being made: exit $rc, want 3 (denied)"
# Nothing was made yet: no blob, no "made" line.
for i in 1 2 3 4; do
	[ ! -e "$T/state/tpm/new$i.tss2.pem" ] || fail "new$i's key made past the gate"
done
[ "$(tail -c +"$from" "$AGENT_LOG" | grep -c 'its new key is made')" = 0 ] ||
    fail "a key was made past the gate"
touch "$T/gate"
agent_keys_made "$from"
[ "$(tail -c +"$from" "$AGENT_LOG" |
    grep -c 'key creations over: serving 7 of 7')" -gt 0 ] ||
    fail "after the gate: $(tail -c +"$from" "$AGENT_LOG" | grep 'creations over')"
for i in 1 2 3 4; do
	check botid_cli pubkey "new$i" --out "$T/new$i.pem"
	check botid_cli sign "new$i" --in "$T/msg" --out "$T/new$i.sig"
	check openssl dgst -sha256 -verify "$T/new$i.pem" -signature "$T/new$i.sig" "$T/msg"
done
stop_agent
grep -q '"op":"sign-data","bot":"new1".*"result":"error".*"detail":"key being created"' \
    "$AUDIT_LOG" || fail "no audit line for the request to a bot being made"
check "$BOTID" audit verify "$AUDIT_LOG"
echo "PASS: BUSY with a retry hint at max_queue_wait; PKCS#11 never waits on the TPM; keys made in the background while existing bots serve"
