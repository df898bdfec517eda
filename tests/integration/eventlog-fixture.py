#!/usr/bin/env python3
"""Writes a small TCG PC Client event log (crypto-agile format, as the
kernel's binary_bios_measurements) for ca-pcr-eventlog.sh, and prints
"PCR:SHA256HEX" for each measured event, one a line, in log order, for the
test to extend into swtpm's PCRs with tpm2_pcrextend so that the log
replays to the quoted values.

  eventlog-fixture.py OUT [good|tamper|truncate]

good: a Spec ID event (SHA-1 and SHA-256 banks), an EV_NO_ACTION record
(never extended), then three EV_IPL records: two for PCR 23 and one for
PCR 16. tamper: the same, but the SHA-256 digest of the second PCR 23
event is not the one printed (the log no longer replays to the PCRs).
truncate: the good log cut in the middle of its last record.
"""
import hashlib
import struct
import sys

EV_NO_ACTION = 0x3
EV_IPL = 0xD
SHA1, SHA256 = 0x0004, 0x000B


def spec_id():
    body = b"Spec ID Event03\0"
    body += struct.pack("<IBBBB", 0, 0, 2, 0, 2)  # platform class, v2.0
    body += struct.pack("<I", 2)
    body += struct.pack("<HH", SHA1, 20) + struct.pack("<HH", SHA256, 32)
    body += b"\0"  # vendorInfoSize
    return struct.pack("<II", 0, EV_NO_ACTION) + b"\0" * 20 + \
        struct.pack("<I", len(body)) + body


def event2(pcr, etype, data, sha256=None):
    d256 = sha256 if sha256 is not None else hashlib.sha256(data).digest()
    rec = struct.pack("<III", pcr, etype, 2)
    rec += struct.pack("<H", SHA1) + hashlib.sha1(data).digest()
    rec += struct.pack("<H", SHA256) + d256
    return rec + struct.pack("<I", len(data)) + data


def main():
    out, mode = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "good"
    events = [(23, b"botid fixture: bootloader"),
              (16, b"botid fixture: kernel command line"),
              (23, b"botid fixture: kernel")]
    log = spec_id() + event2(0, EV_NO_ACTION, b"StartupLocality\0\0")
    for i, (pcr, data) in enumerate(events):
        forged = None
        if mode == "tamper" and i == 2:
            forged = hashlib.sha256(b"something else").digest()
        log += event2(pcr, EV_IPL, data, forged)
    if mode == "truncate":
        log = log[:-10]
    with open(out, "wb") as f:
        f.write(log)
    for pcr, data in events:
        print("%d:%s" % (pcr, hashlib.sha256(data).hexdigest()))


main()
