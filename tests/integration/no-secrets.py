#!/usr/bin/env python3
"""Scans files for secrets that must not be there (no-secrets.sh).

usage: no-secrets.py [--secret NAME=HEX]... [--text NAME=STRING]...
           [--exclude PATH]... [--openssl PATH] ROOT...

Every regular file under each ROOT (except the excluded paths and what
lies under them) is searched for: PEM private key blocks of any kind but
"TSS2 PRIVATE KEY" (a blob wrapped by the TPM, useless off it); a whole
file that OpenSSL parses as a DER private key; and each secret, raw, in
hex (either case) and in base64 (standard and URL-safe, at every
alignment). Prints one line per finding and exits 1 if there is any.
"""

import argparse
import base64
import os
import re
import subprocess
import sys

PEM_PRIVATE = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")


def encodings(secret):
    """The forms a secret could take in a file."""
    forms = {"raw": secret, "hex": secret.hex().encode(),
             "HEX": secret.hex().upper().encode()}
    for pad in range(3):
        for name, enc in (("base64", base64.b64encode),
                          ("base64url", base64.urlsafe_b64encode)):
            b = enc(b"\0" * pad + secret).rstrip(b"=")
            # Drop the characters the padding bytes influence, and the last
            # one, which depends on what follows the secret.
            skip = (pad * 8 + 5) // 6
            core = b[skip:-1]
            if len(core) >= 8:
                forms["%s@%d" % (name, pad)] = core
    return forms


def der_private_key(path, openssl):
    p = subprocess.run([openssl, "pkey", "-inform", "DER", "-noout",
                        "-passin", "pass:", "-in", path],
                       capture_output=True)
    return p.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", action="append", default=[])
    ap.add_argument("--text", action="append", default=[])
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--openssl", default="openssl")
    ap.add_argument("roots", nargs="+")
    a = ap.parse_args()
    secrets = {}
    for s in a.secret:
        name, value = s.split("=", 1)
        secrets[name] = bytes.fromhex(value)
    for s in a.text:
        name, value = s.split("=", 1)
        secrets[name] = value.encode()
    patterns = [(name, form, enc) for name, value in secrets.items()
                for form, enc in encodings(value).items()]
    excluded = [os.path.realpath(e) for e in a.exclude]
    findings, scanned = [], 0
    for root in a.roots:
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs
                       if os.path.realpath(os.path.join(dirpath, d))
                       not in excluded]
            for f in files:
                path = os.path.join(dirpath, f)
                if os.path.realpath(path) in excluded or \
                        os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as fh:
                    data = fh.read()
                scanned += 1
                for m in PEM_PRIVATE.finditer(data):
                    if m.group(1) != b"TSS2 ":
                        findings.append("%s: a PEM %sPRIVATE KEY block" %
                                        (path, m.group(1).decode()))
                if 0 < len(data) <= 65536 and data[:1] == b"\x30" and \
                        der_private_key(path, a.openssl):
                    findings.append("%s: a DER private key" % path)
                for name, form, enc in patterns:
                    if enc in data:
                        findings.append("%s: %s (%s)" % (path, name, form))
    for f in findings:
        print(f)
    print("scanned %d files, %d secrets in %d forms: %d findings" %
          (scanned, len(secrets), len(patterns), len(findings)),
          file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
