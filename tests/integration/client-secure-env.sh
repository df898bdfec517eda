#!/bin/bash
# libbotid reads BOTID_SOCKET with secure_getenv (issue 21, point 9): in a
# setgid program (AT_SECURE), such as one that loads the PKCS#11 module,
# the caller's environment cannot point the library at a socket of the
# caller's choosing. A socket that records the pid of each client shows
# that a plain copy of the probe connects to it and a setgid copy does not.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
PROBE="$top_builddir/tests/integration/client-env-probe"
[ "$(id -u)" = 0 ] || { echo "needs root to make a setgid copy"; exit 77; }

"$PYTHON3" - "$T/evil.sock" "$T/hits" <<'PY' &
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
while True:
    c, _ = s.accept()
    pid, _, _ = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET,
                                                 socket.SO_PEERCRED, 12))
    with open(sys.argv[2], "a") as f:
        f.write("%d\n" % pid)
    c.close()
PY
register_pid $!
for _ in $(seq 1 100); do [ -S "$T/evil.sock" ] && break; sleep 0.1; done
[ -S "$T/evil.sock" ] || fail "the recording socket did not appear"

# wait_hit PID: until the socket recorded a connection from PID.
wait_hit() {
	for _ in $(seq 1 300); do
		grep -qx "$1" "$T/hits" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no connection from pid $1"
}

out=$(BOTID_SOCKET="$T/evil.sock" "$PROBE")
echo "plain: $out"
case $out in "pid "*" secure 0 "*) ;; *) fail "plain probe: $out";; esac
wait_hit "$(echo "$out" | awk '{print $2}')"

cp "$PROBE" "$T/probe-sg"
chgrp nogroup "$T/probe-sg"
chmod 2755 "$T/probe-sg"
out=$(BOTID_SOCKET="$T/evil.sock" "$T/probe-sg")
echo "setgid: $out"
case $out in "pid "*" secure 1 "*) ;; *) fail "the setgid copy is not secure-execution: $out";; esac
sg_pid=$(echo "$out" | awk '{print $2}')
# One more plain connection: once it is recorded, any from the setgid copy
# (which has exited) would have been recorded before it.
out=$(BOTID_SOCKET="$T/evil.sock" "$PROBE")
wait_hit "$(echo "$out" | awk '{print $2}')"
! grep -qx "$sg_pid" "$T/hits" ||
    fail "a setgid program connected to the socket its caller named"
echo ok
