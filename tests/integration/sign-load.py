#!/usr/bin/env python3
"""Signing load for the key lifecycle tests: signs one message with BOT over
one connection until STOPFILE exists, saving every signature as OUTDIR/N.sig
and a line "N START END STATUS" per request in OUTDIR/log (wall-clock
seconds). Exit status 1 if any request failed, so a test can require that
none did.

usage: sign-load.py SOCKET BOT MESSAGE-FILE OUTDIR STOPFILE
"""

import os
import socket
import struct
import sys
import time

OP_HELLO, OP_SIGN_DATA = 1, 6
TAG_VERSION, TAG_BOT, TAG_DATA, TAG_SIGNATURE, TAG_MESSAGE = 1, 3, 10, 13, 14


def frame(op, rid, fields):
    body = struct.pack(">BI", op, rid) + b"".join(
        struct.pack(">HI", t, len(v)) + v for t, v in fields)
    return struct.pack(">I", len(body)) + body


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("agent closed the connection")
        buf += chunk
    return buf


def reply(s):
    n = struct.unpack(">I", recv_exact(s, 4))[0]
    body = recv_exact(s, n)
    op, rid, status = struct.unpack(">BII", body[:9])
    fields, off = {}, 9
    while off < len(body):
        tag, ln = struct.unpack(">HI", body[off:off + 6])
        fields[tag] = body[off + 6:off + 6 + ln]
        off += 6 + ln
    return rid, status, fields


def main():
    sock, bot, msgfile, outdir, stopfile = sys.argv[1:6]
    msg = open(msgfile, "rb").read()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(frame(OP_HELLO, 0, [(TAG_VERSION, struct.pack(">I", 1))]))
    if reply(s)[1] != 0:
        print("hello refused", file=sys.stderr)
        return 1
    failures, n = 0, 0
    with open(os.path.join(outdir, "log"), "w") as log:
        while not os.path.exists(stopfile):
            n += 1
            t0 = time.time()
            s.sendall(frame(OP_SIGN_DATA, n,
                            [(TAG_BOT, bot.encode()), (TAG_DATA, msg)]))
            rid, status, fields = reply(s)
            t1 = time.time()
            if rid != n or status != 0 or TAG_SIGNATURE not in fields:
                failures += 1
                why = fields.get(TAG_MESSAGE, b"").decode(errors="replace")
                print("request %d failed: status %d %s" % (n, status, why),
                      file=sys.stderr)
            else:
                with open(os.path.join(outdir, "%d.sig" % n), "wb") as f:
                    f.write(fields[TAG_SIGNATURE])
            log.write("%d %.6f %.6f %d\n" % (n, t0, t1, status))
            # Whole lines, as they come: the test waits on their count.
            log.flush()
            time.sleep(0.01)
    print("%d requests, %d failed" % (n, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
