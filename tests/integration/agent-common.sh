# Helpers for integration tests that run botid-agent; sourced after
# common.sh. They write a configuration under $T, start the agent on its own
# socket and stop it, so each test is independent of every other.

AGENT="$top_builddir/agent/botid-agent"
BOTID="$top_builddir/tools/botid"
PYCLIENT="$top_srcdir/tests/integration/pyclient.py"
AGENT_SOCK="$T/agent.sock"
AGENT_CONF="$T/agent.conf"
AGENT_LOG="$T/agent.log"
AUDIT_LOG="$T/audit.log"
AGENT_PID=

# agent_conf_begin [EXTRA AGENT LINES...]: a fresh [agent] section.
agent_conf_begin() {
	{
		echo "[agent]"
		echo "socket = $AGENT_SOCK"
		echo "state_dir = $T/state"
		echo "audit_log = $AUDIT_LOG"
		if [ -n "${BOTID_TCTI:-}" ]; then echo "tcti = $BOTID_TCTI"; fi
		for line in "$@"; do echo "$line"; done
		echo
	} >"$AGENT_CONF"
}

# agent_add_bot NAME BACKEND KEY_TYPE ALLOW-LINE...
# A pkcs11 bot reads the fixture's PIN file, or the systemd credential
# named by BOT_PIN_CREDENTIAL when the caller sets it for this call.
agent_add_bot() {
	local name=$1 backend=$2 type=$3
	shift 3
	{
		echo "[bot $name]"
		echo "backend = $backend"
		echo "key_type = $type"
		if [ "$backend" = pkcs11 ]; then
			echo "module = $BOTID_PKCS11_MODULE"
			echo "token = $BOTID_TOKEN_LABEL"
			if [ -n "${BOT_PIN_CREDENTIAL:-}" ]; then
				echo "pin_credential = $BOT_PIN_CREDENTIAL"
			else
				echo "pin_file = $BOTID_PIN_FILE"
			fi
		fi
		for a in "$@"; do echo "allow = $a"; done
		echo
	} >>"$AGENT_CONF"
}

# start_agent: starts the agent and waits until it answers and, unless
# AGENT_NO_KEY_WAIT=1, until the keys it creates in the background are made
# (agent_keys_made).
start_agent() {
	local from
	"$AGENT" --check-config -c "$AGENT_CONF" >/dev/null ||
	    fail "configuration rejected: $("$AGENT" --check-config -c "$AGENT_CONF" 2>&1)"
	from=1
	if [ -e "$AGENT_LOG" ]; then
		from=$(($(wc -c <"$AGENT_LOG") + 1))
	fi
	# make check-valgrind: BOTID_VALGRIND is the memcheck command line.
	# AGENT_ARGS: more options (-v for debug lines).
	# shellcheck disable=SC2086
	${BOTID_VALGRIND:-} "$AGENT" ${AGENT_ARGS:-} -c "$AGENT_CONF" \
	    2>>"$AGENT_LOG" &
	AGENT_PID=$!
	register_pid "$AGENT_PID"
	for _ in $(seq 1 600); do
		if [ -S "$AGENT_SOCK" ] &&
		    "$BOTID" --socket "$AGENT_SOCK" version >/dev/null 2>&1; then
			[ "${AGENT_NO_KEY_WAIT:-0}" = 1 ] || agent_keys_made "$from"
			return 0
		fi
		kill -0 "$AGENT_PID" 2>/dev/null ||
		    fail "agent died at start: $(tail -5 "$AGENT_LOG")"
		sleep 0.1
	done
	fail "agent did not answer within 60 s"
}

# agent_keys_made FROM: waits until the agent's log from byte FROM on does
# not say keys are being created, or says their creation is over.
agent_keys_made() {
	local log
	for _ in $(seq 1 1200); do
		log=$(tail -c +"$1" "$AGENT_LOG")
		case $log in
		*"being created in the background"*)
			case $log in *"key creations over"*) return 0;; esac;;
		*) return 0;;
		esac
		kill -0 "$AGENT_PID" 2>/dev/null ||
		    fail "agent died creating keys: $(tail -5 "$AGENT_LOG")"
		sleep 0.1
	done
	fail "the agent's keys were not made within 120 s"
}

# stop_agent: SIGTERM, and the agent must exit 0.
stop_agent() {
	[ -n "$AGENT_PID" ] || return 0
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" || fail "agent exited with status $? (log: $(tail -3 "$AGENT_LOG"))"
	# Under memcheck, an error or leak exits 99 (caught above); say so.
	if [ -n "${BOTID_VALGRIND:-}" ]; then
		echo "memcheck: agent clean"
	fi
	AGENT_PID=
}

botid_cli() {
	"$BOTID" --socket "$AGENT_SOCK" "$@"
}

# status_of BOT: the wire status of a SIGN_DATA request for BOT (section 8
# of doc/protocol.md), read from the reply itself.
status_of() {
	python3 - "$AGENT_SOCK" "$1" <<'PY'
import socket, struct, sys
sock, bot = sys.argv[1:]
def frame(op, rid, *fields):
    body = struct.pack(">BI", op, rid) + b"".join(
        struct.pack(">HI", t, len(v)) + v for t, v in fields)
    return struct.pack(">I", len(body)) + body
def reply(s):
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    return struct.unpack(">BII", s.recv(n, socket.MSG_WAITALL)[:9])
s = socket.socket(socket.AF_UNIX); s.connect(sock)
s.sendall(frame(1, 1, (1, struct.pack(">I", 1)))); assert reply(s)[2] == 0
s.sendall(frame(6, 2, (3, bot.encode()), (10, b"status probe")))
print(reply(s)[2])
PY
}

# token_labels: the labels of the private key objects on start_softhsm's
# token ($BOTID_TOKEN_LABEL).
token_labels() {
	pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label \
	    "$BOTID_TOKEN_LABEL" --login --pin "$(cat "$BOTID_PIN_FILE")" \
	    --list-objects --type privkey 2>/dev/null |
	    sed -n 's/^ *label: *//p'
}

# deprovisioned: after `botid deprovision --yes`, the agent has exited
# with status 0 and left no TPM key blob and no botid key on the token.
deprovisioned() {
	local left n
	wait "$AGENT_PID" ||
	    fail "the agent exited with status $? after deprovisioning"
	AGENT_PID=
	left=$(find "$T/state/tpm" -name '*.tss2.pem' | wc -l)
	[ "$left" -eq 0 ] || fail "$left key blobs left: $(ls "$T/state/tpm")"
	n=$(token_labels | grep -c '^botid:' || true)
	[ "$n" -eq 0 ] || fail "$n token objects left: $(token_labels)"
}
