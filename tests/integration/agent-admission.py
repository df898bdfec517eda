#!/usr/bin/env python3
"""Fair admission (agent-admission.sh): a hostile uid and a good client.

usage: agent-admission.py attack SOCKET READY STOP
    Holds 1000 idle connections (never a byte), 50 slow ones (a HELLO sent
    a byte every half second) and 200 junk ones (random bytes), and opens
    each again whenever the agent closes it, until the file STOP exists.
    Creates READY once every connection was tried once.
usage: agent-admission.py hold SOCKET N READY STOP
    Holds N connections that said HELLO and then nothing, until STOP
    exists; creates READY when all N are open; prints how many the agent
    closed.
usage: agent-admission.py flood SOCKET N READY STOP
    Opens N connections at once, each sending HELLO, and waits (20 s at
    most) until each is answered or closed by the agent; prints how many
    were answered, closed and left unanswered, creates READY, and holds
    the open ones until the file STOP exists.
usage: agent-admission.py good SOCKET BOT N AGENT_PID
    N signatures, each on a new connection (connect, HELLO, SIGN_DATA,
    close) as botid(1) does; fails unless every one is answered with a
    signature. Prints p50 and p99 and the agent's peak RSS.
"""
import os
import random
import resource
import selectors
import socket
import struct
import sys
import time

OP_HELLO, OP_SIGN_DATA = 1, 6
T_VERSION, T_BOT, T_DATA, T_SIGNATURE = 1, 3, 10, 13

_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(_soft, min(_hard, 8192)),
                                            _hard))


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def field(tag, value):
    return struct.pack(">HI", tag, len(value)) + value


def frame(op, rid, *fields):
    body = struct.pack(">BI", op, rid) + b"".join(fields)
    return struct.pack(">I", len(body)) + body


HELLO = frame(OP_HELLO, 1, field(T_VERSION, struct.pack(">I", 1)))


def try_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(path)
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s


def attack(path, ready, stop):
    sel = selectors.DefaultSelector()
    # kind -> how many to hold; each socket's data: [kind, bytes sent]
    # Junk and slow first: idle ones fill what the agent leaves.
    want = {"junk": 200, "slow": 50, "idle": 1000}
    held = {k: 0 for k in want}
    reopened = 0
    first = True
    last_slow = 0.0
    while not os.path.exists(stop):
        for kind, n in want.items():
            while held[kind] < n:
                s = try_connect(path)
                if s is None:
                    break
                held[kind] += 1
                if kind == "junk":
                    try:
                        s.send(os.urandom(1024))
                    except OSError:
                        pass
                sel.register(s, selectors.EVENT_READ, [kind, 0])
                if not first:
                    reopened += 1
        if first:
            open(ready, "w").close()
            first = False
        now = time.monotonic()
        if now - last_slow >= 0.5:
            last_slow = now
            for key in list(sel.get_map().values()):
                data = key.data
                if data[0] == "slow" and data[1] < len(HELLO):
                    try:
                        key.fileobj.send(HELLO[data[1]:data[1] + 1])
                        data[1] += 1
                    except OSError:
                        pass
        for key, _ev in sel.select(timeout=0.2):
            try:
                got = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                got = b""
            if not got:
                # Closed by the agent: open it again on the next pass.
                sel.unregister(key.fileobj)
                key.fileobj.close()
                held[key.data[0]] -= 1
    print("attacker: holding %r, %d connections opened again" %
          (held, reopened))


def hold(path, n, ready, stop):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(path)
        s.sendall(HELLO)
        (length,) = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
        s.recv(length, socket.MSG_WAITALL)
        s.setblocking(False)
        socks.append(s)
    open(ready, "w").close()
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    while not os.path.exists(stop):
        for key, _ev in sel.select(timeout=0.2):
            try:
                got = key.fileobj.recv(1)
            except OSError:
                got = b""
            if not got:
                sel.unregister(key.fileobj)
                closed += 1
    print("held %d, %d closed by the agent" % (n, closed))


def flood(path, n, ready, stop):
    sel = selectors.DefaultSelector()
    answered = closed = 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(path)
        s.setblocking(False)
        try:
            s.send(HELLO)
        except OSError:
            pass
        sel.register(s, selectors.EVENT_READ, "waiting")
    deadline = time.monotonic() + 20
    waiting = n
    while waiting > 0 and time.monotonic() < deadline:
        for key, _ev in sel.select(timeout=0.2):
            try:
                got = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                got = b""
            if key.data == "waiting":
                waiting -= 1
            if not got:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                if key.data == "waiting":
                    closed += 1
                continue
            if key.data == "waiting":
                answered += 1
                sel.modify(key.fileobj, selectors.EVENT_READ, "held")
    print("flood: %d tried, %d answered, %d closed, %d unanswered" %
          (n, answered, closed, waiting), flush=True)
    open(ready, "w").close()
    while not os.path.exists(stop):
        for key, _ev in sel.select(timeout=0.2):
            try:
                got = key.fileobj.recv(65536)
            except OSError:
                got = b""
            if not got:
                sel.unregister(key.fileobj)
                key.fileobj.close()


def recv_exact(s, n):
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def read_reply(s):
    hdr = recv_exact(s, 4)
    if hdr is None:
        return None
    (n,) = struct.unpack(">I", hdr)
    body = recv_exact(s, n)
    if body is None or n < 9:
        return None
    _op, rid, status = struct.unpack(">BII", body[:9])
    return rid, status, body[9:]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def good(path, bot, n, agent_pid):
    lat, unanswered, peak = [], [], 0
    for i in range(n):
        t0 = time.monotonic()
        why = None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(path)
            s.sendall(HELLO)
            r = read_reply(s)
            if r is None or r[1] != 0:
                why = "hello: %r" % (r[:2] if r else "closed")
            else:
                s.sendall(frame(OP_SIGN_DATA, 2, field(T_BOT, bot.encode()),
                                field(T_DATA, b"good %d" % i)))
                r = read_reply(s)
                if r is None or r[1] != 0 or r[0] != 2:
                    why = "sign: %r" % (r[:2] if r else "closed")
        except OSError as e:
            why = str(e)
        s.close()
        if why is None:
            lat.append(time.monotonic() - t0)
        else:
            unanswered.append(why)
        if i % 10 == 0:
            peak = max(peak, rss_kib(agent_pid))
    peak = max(peak, rss_kib(agent_pid))
    lat.sort()
    if lat:
        print("good client: %d of %d answered, p50 %.2f ms, p99 %.2f ms; "
              "agent RSS peak %d KiB" % (len(lat), n,
                                         lat[len(lat) // 2] * 1000,
                                         lat[max(0, int(len(lat) * 0.99) - 1)]
                                         * 1000, peak))
    if unanswered:
        fail("%d of %d requests unanswered, first: %s" %
             (len(unanswered), n, unanswered[0]))
    # Generous, as agent-hostile.py's: the figure of record is printed.
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
    if p99 > 2.0:
        fail("good client p99 %.3f s" % p99)
    if os.environ.get("BOTID_SANITIZER_PRELOAD"):
        print("note: memory bound not checked in a sanitizer build")
    elif peak > 64 * 1024:
        fail("agent RSS peaked at %d KiB" % peak)


def main():
    a = sys.argv
    if len(a) == 5 and a[1] == "attack":
        attack(a[2], a[3], a[4])
    elif len(a) == 6 and a[1] == "hold":
        hold(a[2], int(a[3]), a[4], a[5])
    elif len(a) == 6 and a[1] == "flood":
        flood(a[2], int(a[3]), a[4], a[5])
    elif len(a) == 6 and a[1] == "good":
        good(a[2], a[3], int(a[4]), int(a[5]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


main()
