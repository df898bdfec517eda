#!/usr/bin/env python3
# A client that sends botid-ca one whole request and then reads nothing
# (ca-flood.sh): the CA must close the connection at request_timeout after
# the answer was written, not keep it for ever and not close it sooner.
#
#   ca-slow-reader.py PORT BUNDLE OUT
#
# Waits for the connection's end by its TCP state (the CA's FIN or RST
# arrives while nothing is read), then reads what came: the answer must be
# there. Writes "SECONDS STATUS-LINE" to OUT: the time from the request's
# last byte to the close.
import socket
import ssl
import struct
import sys
import time

port, bundle, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8
ctx = ssl.create_default_context(cafile=bundle)
raw = socket.create_connection(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
s.sendall(b"GET /v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
t0 = time.monotonic()
while True:
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    if struct.unpack("B", info[:1])[0] in (TCP_CLOSE, TCP_CLOSE_WAIT):
        break
    # The bound only ends a test that would otherwise hang.
    if time.monotonic() - t0 > 300:
        sys.exit("the CA never closed the connection")
    time.sleep(0.1)
elapsed = time.monotonic() - t0
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except (ConnectionError, ssl.SSLError):
    pass
line = data.split(b"\r\n", 1)[0].decode(errors="replace")
with open(out, "w") as f:
    f.write("%.2f %s\n" % (elapsed, line))
