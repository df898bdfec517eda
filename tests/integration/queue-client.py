#!/usr/bin/env python3
"""Many SIGN_DIGEST requests at once, for agent-queue.sh: each on its own
connection, all sent before any reply is read. Standard library only.

usage: queue-client.py burst SOCK BOT N OUTDIR [--stopped PID]
       queue-client.py hold SOCK TPM_BOT N PKCS11_BOT PID

burst: N clients each ask BOT to sign a digest. Every reply must be OK (its
  signature and digest are written to OUTDIR/sig.I and OUTDIR/dgst.I, DER)
  or BUSY with a RETRY_AFTER of at least 1 ms; anything else fails. With
  --stopped PID, the bot's TPM (swtpm, process PID) is stopped (SIGSTOP)
  by the caller: at most one request can be on the device, so the first
  N - 1 replies must all be BUSY; then PID gets SIGCONT and the last reply
  is read. Prints "ok=K busy=B min_retry=R".

hold: with the TPM (PID) stopped by the caller, N requests for TPM_BOT are
  sent on one connection, then PKCS11_BOT signs on another: its signature
  must come back while none of the TPM's replies has (the TPM cannot have
  answered), then PID gets SIGCONT and every TPM request must be OK.
  Prints "pkcs11=ok tpm_before=0 tpm_ok=N".
"""

import os
import select
import signal
import socket
import struct
import sys

OP_HELLO, OP_SIGN_DIGEST, OP_REPLY = 0x01, 0x05, 0x80
TAG_VERSION, TAG_BOT, TAG_HASH, TAG_DIGEST = 1, 3, 8, 9
TAG_SIGNATURE, TAG_MESSAGE, TAG_RETRY_AFTER = 13, 14, 33
STATUS_OK, STATUS_BUSY = 0, 7
HASH_SHA256 = 1
TIMEOUT_S = 60


def die(msg):
    print("queue-client: " + msg, file=sys.stderr)
    sys.exit(1)


def field(tag, value):
    return struct.pack(">HI", tag, len(value)) + value


def frame(op, rid, payload):
    body = struct.pack(">BI", op, rid) + payload
    return struct.pack(">I", len(body)) + body


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            die("connection closed by the agent")
        data += chunk
    return bytes(data)


def read_reply(sock):
    """(op, id, status, {tag: value}) of the next reply on sock."""
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    if n < 9 or n > 65536:
        die("bad reply length %d" % n)
    body = recv_exact(sock, n)
    op, rid, status = struct.unpack_from(">BII", body, 0)
    fields, off = {}, 9
    while off < len(body):
        if len(body) - off < 6:
            die("truncated field header")
        tag, flen = struct.unpack_from(">HI", body, off)
        off += 6
        if flen > len(body) - off:
            die("truncated field")
        fields[tag] = body[off:off + flen]
        off += flen
    return op, rid, status, fields


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT_S)
    s.connect(path)
    s.sendall(frame(OP_HELLO, 1, field(TAG_VERSION, struct.pack(">I", 1))))
    op, rid, status, _ = read_reply(s)
    if status != STATUS_OK or op != OP_HELLO | OP_REPLY:
        die("hello refused: status %d" % status)
    return s


def sign_request(bot, rid, digest):
    return frame(OP_SIGN_DIGEST, rid, field(TAG_BOT, bot.encode()) +
                 field(TAG_HASH, struct.pack(">I", HASH_SHA256)) +
                 field(TAG_DIGEST, digest))


def judge(i, status, fields, outdir, digest):
    """'ok' or ('busy', retry); any other answer fails the test."""
    if status == STATUS_OK:
        sig = fields.get(TAG_SIGNATURE)
        if not sig:
            die("request %d: OK without a signature" % i)
        with open(os.path.join(outdir, "sig.%d" % i), "wb") as f:
            f.write(sig)
        with open(os.path.join(outdir, "dgst.%d" % i), "wb") as f:
            f.write(digest)
        return "ok", 0
    if status == STATUS_BUSY:
        raw = fields.get(TAG_RETRY_AFTER)
        if raw is None or len(raw) != 4:
            die("request %d: BUSY without RETRY_AFTER" % i)
        (retry,) = struct.unpack(">I", raw)
        if retry < 1:
            die("request %d: BUSY with RETRY_AFTER 0" % i)
        if TAG_SIGNATURE in fields:
            die("request %d: BUSY with a signature" % i)
        return "busy", retry
    die("request %d: status %d (%s)" % (i, status, fields.get(
        TAG_MESSAGE, b"").decode("utf-8", "replace")))


def burst(path, bot, n, outdir, stopped_pid):
    socks = [connect(path) for _ in range(n)]
    digests = [os.urandom(32) for _ in range(n)]
    for i, s in enumerate(socks):
        s.sendall(sign_request(bot, 2, digests[i]))
    pending = dict((s.fileno(), i) for i, s in enumerate(socks))
    ok = busy = 0
    min_retry = None
    got = 0
    while pending:
        if stopped_pid and got == n - 1:
            # Every other request has its answer, all BUSY: let the one
            # the device may hold finish.
            os.kill(stopped_pid, signal.SIGCONT)
            stopped_pid = None
        ready, _, _ = select.select(list(pending), [], [], TIMEOUT_S)
        if not ready:
            die("no reply within %d s (%d of %d answered)"
                % (TIMEOUT_S, got, n))
        for fd in ready:
            i = pending.pop(fd)
            op, rid, status, fields = read_reply(socks[i])
            if op != OP_SIGN_DIGEST | OP_REPLY or rid != 2:
                die("request %d: reply op 0x%02x id %d" % (i, op, rid))
            kind, retry = judge(i, status, fields, outdir, digests[i])
            got += 1
            if kind == "ok":
                ok += 1
                if stopped_pid:
                    die("a signature came back while the TPM was stopped")
            else:
                busy += 1
                min_retry = retry if min_retry is None else min(min_retry,
                                                                retry)
    if stopped_pid:
        os.kill(stopped_pid, signal.SIGCONT)
    for s in socks:
        s.close()
    print("ok=%d busy=%d min_retry=%s" % (ok, busy, min_retry or 0))


def hold(path, tpm_bot, n, p11_bot, pid):
    tpm = connect(path)
    p11 = connect(path)
    for i in range(n):
        tpm.sendall(sign_request(tpm_bot, 10 + i, os.urandom(32)))
    p11.sendall(sign_request(p11_bot, 2, os.urandom(32)))
    _, rid, status, fields = read_reply(p11)
    if status != STATUS_OK or TAG_SIGNATURE not in fields:
        os.kill(pid, signal.SIGCONT)
        die("the PKCS#11 bot was not served while the TPM was held: "
            "status %d" % status)
    # The TPM is stopped: not one of its replies can be there yet.
    ready, _, _ = select.select([tpm], [], [], 0)
    before = 1 if ready else 0
    os.kill(pid, signal.SIGCONT)
    tpm_ok = 0
    for _ in range(n):
        _, rid, status, fields = read_reply(tpm)
        if status != STATUS_OK:
            die("TPM request %d: status %d" % (rid, status))
        tpm_ok += 1
    print("pkcs11=ok tpm_before=%d tpm_ok=%d" % (before, tpm_ok))


def main(argv):
    if len(argv) >= 6 and argv[1] == "burst":
        pid = None
        if len(argv) == 8 and argv[6] == "--stopped":
            pid = int(argv[7])
        elif len(argv) != 6:
            die("usage: burst SOCK BOT N OUTDIR [--stopped PID]")
        burst(argv[2], argv[3], int(argv[4]), argv[5], pid)
    elif len(argv) == 7 and argv[1] == "hold":
        hold(argv[2], argv[3], int(argv[4]), argv[5], int(argv[6]))
    else:
        die("usage: see the file's docstring")


if __name__ == "__main__":
    main(sys.argv)
