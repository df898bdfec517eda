#!/usr/bin/env python3
"""Independent checks of botid JWTs with PyJWT (Debian's python3-jwt).

usage: jwt-check.py verify TOKEN_FILE PUBKEY_PEM AUD [LEEWAY]
           exit 0 and print the claims if PyJWT accepts the token with the
           public key of the chain's leaf (`openssl x509 -pubkey`: this
           python3-cryptography cannot parse a 2.25 OID with a 128-bit
           arc, so the certificate is read by openssl), 1 if not
       jwt-check.py tamper TOKEN_FILE          payload: scope widened
       jwt-check.py splice TOKEN_FILE OTHER    header.payload + OTHER's sig
       jwt-check.py none TOKEN_FILE            alg none, no signature
       jwt-check.py hs256 TOKEN_FILE PUBKEY_PEM HS256 keyed with the PEM key
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def read(path):
    with open(path) as f:
        return f.read().strip()


def leaf_key(pubkey_pem):
    with open(pubkey_pem, "rb") as f:
        return load_pem_public_key(f.read())


def main():
    cmd = sys.argv[1]
    tok = read(sys.argv[2])
    h, p, s = tok.split(".")
    if cmd == "verify":
        aud = sys.argv[4]
        leeway = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        try:
            claims = jwt.decode(tok, leaf_key(sys.argv[3]),
                                algorithms=["ES256", "ES384", "RS256",
                                            "PS256"],
                                audience=aud, leeway=leeway,
                                options={"require": ["exp", "iat", "nbf",
                                                     "iss", "sub", "aud"]})
        except jwt.PyJWTError as e:
            print("PyJWT rejected: %s: %s" % (type(e).__name__, e))
            return 1
        print(json.dumps(claims, sort_keys=True))
        return 0
    if cmd == "tamper":
        claims = json.loads(b64d(p))
        claims["scope"] = "inventory:read inventory:write admin"
        p = b64e(json.dumps(claims, separators=(",", ":")).encode())
        print("%s.%s.%s" % (h, p, s))
    elif cmd == "splice":
        s2 = read(sys.argv[3]).split(".")[2]
        print("%s.%s.%s" % (h, p, s2))
    elif cmd == "none":
        hdr = json.loads(b64d(h))
        hdr["alg"] = "none"
        h = b64e(json.dumps(hdr, separators=(",", ":")).encode())
        print("%s.%s." % (h, p))
    elif cmd == "hs256":
        hdr = json.loads(b64d(h))
        hdr["alg"] = "HS256"
        h = b64e(json.dumps(hdr, separators=(",", ":")).encode())
        with open(sys.argv[3], "rb") as f:
            secret = f.read()
        mac = hmac.new(secret, ("%s.%s" % (h, p)).encode(),
                       hashlib.sha256).digest()
        print("%s.%s.%s" % (h, p, b64e(mac)))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a broken check must not pass for a rejection
        print("jwt-check: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(2)
