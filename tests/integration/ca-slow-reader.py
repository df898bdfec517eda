#!/usr/bin/env python3
# Clients that do not read botid-ca's answers (ca-flood.sh, ca-hostile.sh):
# the CA must close their connections at request_timeout, not keep them
# for ever and not close them sooner.
#
#   ca-slow-reader.py idle PORT BUNDLE OUT
#	Sends GET /v1/health/live whole, then reads nothing; waits for the
#	connection's end by its TCP state (the CA's FIN or RST arrives while
#	nothing is read), then reads what came: the answer must be there.
#	Writes "SECONDS STATUS-LINE": the time from the request's last byte to
#	the close.
#   ca-slow-reader.py stalled PORT BUNDLE CA-LOG TIMEOUT OUT
#	Advertises a tiny MSS and receive buffer, so that a large answer (a
#	CRL the test made large) cannot all leave the CA, sends GET /v1/crl
#	over about half TIMEOUT (a byte every half second), then reads nothing
#	until the CA logs that it closed a connection at its deadline.
#	Writes "FROM-CONNECT FROM-REQUEST STATUS GOT LENGTH": seconds from the
#	connection and from the request's last byte to that log line, the
#	status line, and the body bytes received against Content-Length.
import socket
import ssl
import struct
import sys
import time

TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8
CLOSED_LINE = b"took longer than"
# The bounds only end a test that would otherwise hang.
HANG = 300


def read_all(s):
    data = b""
    s.settimeout(60)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ConnectionError, ssl.SSLError, socket.timeout):
        pass
    return data


def idle(port, bundle, out):
    ctx = ssl.create_default_context(cafile=bundle)
    raw = socket.create_connection(("127.0.0.1", port))
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(b"GET /v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    t0 = time.monotonic()
    while True:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        if struct.unpack("B", info[:1])[0] in (TCP_CLOSE, TCP_CLOSE_WAIT):
            break
        if time.monotonic() - t0 > HANG:
            sys.exit("the CA never closed the connection")
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    line = read_all(s).split(b"\r\n", 1)[0].decode(errors="replace")
    with open(out, "w") as f:
        f.write("%.2f %s\n" % (elapsed, line))


def closed_lines(log):
    with open(log, "rb") as f:
        return f.read().count(CLOSED_LINE)


def stalled(port, bundle, log, timeout, out):
    ctx = ssl.create_default_context(cafile=bundle)
    raw = socket.socket()
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 88)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    before = closed_lines(log)
    t0 = time.monotonic()
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(b"GET /v1/crl HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    pad = b"X-Slow: " + b"s" * max(1, int(timeout) - 8)
    for c in pad:
        s.sendall(bytes([c]))
        time.sleep(0.5)
    s.sendall(b"\r\n\r\n")
    t1 = time.monotonic()
    while closed_lines(log) == before:
        if time.monotonic() - t0 > HANG:
            sys.exit("the CA never closed the connection")
        time.sleep(0.05)
    t2 = time.monotonic()
    data = read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    length = -1
    for h in lines[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    with open(out, "w") as f:
        f.write("%.2f %.2f %s %d %d\n" % (t2 - t0, t2 - t1,
                lines[0].split(" ")[1] if " " in lines[0] else "none",
                len(body), length))


if sys.argv[1] == "idle":
    idle(int(sys.argv[2]), sys.argv[3], sys.argv[4])
else:
    stalled(int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]),
            sys.argv[6])
