#!/bin/bash
# SIGHUP reloads the configuration without dropping connections: a removed
# bot stops being served, a new one is served (its PIN from a systemd
# credential), kept bots keep their keys, a broken file is refused and the
# running configuration kept; SIGTERM exits cleanly and removes the socket.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_softhsm hsm reload
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

me="uid:$(id -u)"
# systemd's LoadCredential= hands the agent a directory of secrets.
mkdir -m 0700 "$T/creds"
install -m 0400 "$BOTID_PIN_FILE" "$T/creds/botid.hsm-pin"
export CREDENTIALS_DIRECTORY="$T/creds"
agent_conf_begin
agent_add_bot a pkcs11 ecdsa-p256 "$me"
agent_add_bot b pkcs11 ecdsa-p256 "$me"
start_agent
check botid_cli pubkey a --out "$T/a1.pem"
check botid_cli pubkey b --out "$T/b1.pem"

# A client connected before the reload, signing after it.
python3 - "$AGENT_SOCK" "$T/ready" "$T/go" <<'PY' &
import os, socket, struct, sys, time
sock, ready, go = sys.argv[1:]
def frame(op, rid, *fields):
    body = struct.pack(">BI", op, rid) + b"".join(
        struct.pack(">HI", t, len(v)) + v for t, v in fields)
    return struct.pack(">I", len(body)) + body
def reply(s):
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    return struct.unpack(">BII", s.recv(n, socket.MSG_WAITALL)[:9])
s = socket.socket(socket.AF_UNIX); s.connect(sock)
s.sendall(frame(1, 1, (1, struct.pack(">I", 1)))); assert reply(s)[2] == 0
open(ready, "w").close()
while not os.path.exists(go): time.sleep(0.05)
s.sendall(frame(6, 2, (3, b"a"), (10, b"after reload")))
r = reply(s)
sys.exit(0 if r[1] == 2 and r[2] == 0 else 1)
PY
held=$!
for _ in $(seq 1 100); do [ -e "$T/ready" ] && break; sleep 0.05; done
[ -e "$T/ready" ] || fail "held client did not connect"

agent_conf_begin
agent_add_bot a pkcs11 ecdsa-p256 "$me"
# c reads its PIN from a systemd credential, d from one that is missing.
BOT_PIN_CREDENTIAL=botid.hsm-pin agent_add_bot c pkcs11 ecdsa-p256 "$me"
BOT_PIN_CREDENTIAL=no-such-credential agent_add_bot d pkcs11 ecdsa-p256 "$me"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 600); do
	botid_cli pubkey c --out "$T/c.pem" 2>/dev/null && break
	sleep 0.1
done
check botid_cli pubkey c --out "$T/c.pem"
set +e
botid_cli pubkey b --out /dev/null 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "removed bot b still answered (exit $rc)"
check botid_cli pubkey a --out "$T/a2.pem"
expect_fail botid_cli pubkey d --out /dev/null
grep -q 'bot d: not served' "$AGENT_LOG" || fail "no log line says why d is not served"
if grep -q -F "$(cat "$BOTID_PIN_FILE")" "$AGENT_LOG" "$AUDIT_LOG"; then
	fail "the PIN appears in a log"
fi
cmp -s "$T/a1.pem" "$T/a2.pem" || fail "bot a's key changed across reload"
touch "$T/go"
wait "$held" || fail "the connection held across the reload failed"

# A broken configuration is refused; the running one stays.
echo "bogus_key = 1" >>"$AGENT_CONF"
kill -HUP "$AGENT_PID"
sleep 0.5
kill -0 "$AGENT_PID" || fail "agent died on a broken reload"
grep -q "reload refused" "$AGENT_LOG" || fail "no 'reload refused' in the log"
check botid_cli pubkey c --out /dev/null

stop_agent
[ ! -e "$AGENT_SOCK" ] || fail "socket left behind after SIGTERM"
echo "PASS: reload and shutdown"
