#!/usr/bin/env python3
"""Clients for the audit tests, on one connection each.

usage: audit-client.py sign SOCKET BOT N OUTDIR
    N SIGN_DATA requests, one at a time, each over distinct data. A reply
    is a signature (written to OUTDIR/sig.I, the SHA-256 of its data to
    OUTDIR/signed) or AUDIT_UNAVAILABLE (the data's SHA-256 to
    OUTDIR/refused, the agent's message to OUTDIR/messages); any other
    reply fails. Prints "signed S refused R".
usage: audit-client.py flood SOCKET BOT N
    N PUBKEY requests for BOT and N LIST requests, pipelined 100 at a time,
    every reply checked (PUBKEY must be denied, LIST must succeed). Prints
    "pid P start T0 end T1" (Unix times, measured here).
"""
import hashlib
import os
import socket
import struct
import sys
import time

OP_HELLO, OP_LIST, OP_PUBKEY, OP_SIGN_DATA = 1, 2, 3, 6
T_VERSION, T_BOT, T_DATA, T_SIGNATURE, T_MESSAGE = 1, 3, 10, 13, 14
S_OK, S_DENIED, S_AUDIT_UNAVAILABLE = 0, 4, 12


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def field(tag, value):
    return struct.pack(">HI", tag, len(value)) + value


def frame(op, rid, *fields):
    body = struct.pack(">BI", op, rid) + b"".join(fields)
    return struct.pack(">I", len(body)) + body


def recv_exact(s, n):
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            fail("the agent closed the connection")
        data += chunk
    return bytes(data)


def read_reply(s):
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    body = recv_exact(s, n)
    if n < 9:
        fail("short reply")
    _op, rid, status = struct.unpack(">BII", body[:9])
    fields, off = {}, 9
    while len(body) - off >= 6:
        tag, flen = struct.unpack_from(">HI", body, off)
        off += 6
        if flen > len(body) - off:
            fail("truncated field")
        fields[tag] = body[off:off + flen]
        off += flen
    return rid, status, fields


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    s.sendall(frame(OP_HELLO, 1, field(T_VERSION, struct.pack(">I", 1))))
    _rid, status, _f = read_reply(s)
    if status != S_OK:
        fail("hello: status %d" % status)
    return s


def sign(path, bot, n, outdir):
    s = connect(path)
    signed = refused = 0
    with open(os.path.join(outdir, "signed"), "w") as fs, \
            open(os.path.join(outdir, "refused"), "w") as fr, \
            open(os.path.join(outdir, "messages"), "w") as fm:
        for i in range(n):
            data = b"audit-full request %d" % i
            rid = 10 + i
            s.sendall(frame(OP_SIGN_DATA, rid, field(T_BOT, bot.encode()),
                            field(T_DATA, data)))
            got, status, fields = read_reply(s)
            if got != rid:
                fail("reply %d to request %d" % (got, rid))
            sha = hashlib.sha256(data).hexdigest()
            if status == S_OK:
                if T_SIGNATURE not in fields:
                    fail("OK without a signature")
                with open(os.path.join(outdir, "sig.%d" % i), "wb") as f:
                    f.write(fields[T_SIGNATURE])
                fs.write(sha + "\n")
                signed += 1
            elif status == S_AUDIT_UNAVAILABLE:
                if T_SIGNATURE in fields:
                    fail("AUDIT_UNAVAILABLE with a signature")
                fr.write(sha + "\n")
                fm.write(fields.get(T_MESSAGE, b"").decode() + "\n")
                refused += 1
            else:
                fail("request %d: status %d (%r)" %
                     (i, status, fields.get(T_MESSAGE)))
    s.close()
    print("signed %d refused %d" % (signed, refused))


def flood(path, bot, n):
    s = connect(path)
    start = time.time()
    for op in (OP_PUBKEY, OP_LIST):
        want = S_DENIED if op == OP_PUBKEY else S_OK
        done = 0
        while done < n:
            batch = min(100, n - done)
            s.sendall(b"".join(
                frame(op, 1000 + j, field(T_BOT, bot.encode()))
                if op == OP_PUBKEY else frame(op, 1000 + j)
                for j in range(batch)))
            for j in range(batch):
                rid, status, _f = read_reply(s)
                if rid != 1000 + j or status != want:
                    fail("flood reply %d: id %d status %d" % (j, rid, status))
            done += batch
    end = time.time()
    s.close()
    print("pid %d start %.6f end %.6f" % (os.getpid(), start, end))


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "sign":
        sign(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 5 and sys.argv[1] == "flood":
        flood(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


main()
