#!/usr/bin/env python3
# A slow-connection flood against botid-ca (ca-flood.sh): N TCP connections
# spread over source addresses 127.0.0.2, .3, ..., each trickling one byte
# of a TLS record every second so that evhttp's per-read timeout never
# fires. A connection the CA closes is opened again (at most once a second
# per slot). READY appears once every slot has been opened; the flood runs
# until STOP appears, then STATS gets "opened N closed_by_server M".
#
#   ca-flood.py PORT N SOURCES READY STOP STATS
import errno
import os
import resource
import select
import socket
import sys
import time

port, n, nsrc = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ready, stop, stats = sys.argv[4], sys.argv[5], sys.argv[6]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

# The start of a TLS ClientHello record of 512 bytes: OpenSSL waits for
# the whole record before it looks at it.
HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(500)
slots = [None] * n          # socket or None
sent = [0] * n              # bytes of HELLO sent on the slot's socket
last_open = [0.0] * n
opened = closed = 0


def open_slot(i):
    global opened
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind(("127.0.0.%d" % (2 + i % nsrc), 0))
    err = s.connect_ex(("127.0.0.1", port))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return
    slots[i] = s
    sent[i] = 0
    last_open[i] = time.monotonic()
    opened += 1


for i in range(n):
    open_slot(i)
open(ready, "w").close()

poller = select.poll()
while not os.path.exists(stop):
    now = time.monotonic()
    for i, s in enumerate(slots):
        if s is None:
            if now - last_open[i] >= 1.0:
                open_slot(i)
            continue
        try:
            # One byte at a time: the record is never complete.
            if s.send(HELLO[sent[i]:sent[i] + 1]) == 1:
                sent[i] += 1
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            slots[i] = None
            closed += 1
            continue
        try:
            if s.recv(64) == b"":
                s.close()
                slots[i] = None
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            slots[i] = None
            closed += 1
    # One round a second; waiting on the STOP file costs nothing here.
    time.sleep(1.0)

with open(stats, "w") as f:
    f.write("opened %d closed_by_server %d\n" % (opened, closed))
