#!/usr/bin/env python3
"""A relying party that is not ours: Debian's PyJWT (python3-jwt) with
PyJWKClient, configured only with botid-ca's JWK Set URL, the issuer and the
audience. The CA bundle reaches urllib through SSL_CERT_FILE.

usage: jwks-check.py JWKS_URL ISSUER AUD TOKEN_FILE
  exit 0 and print the claims if PyJWT accepts the token, 1 (and the
  reason) if it refuses it, 2 if the check itself broke.
"""
import json
import sys

import jwt


def main():
    url, issuer, aud, path = sys.argv[1:5]
    with open(path) as f:
        tok = f.read().strip()
    try:
        # A fresh client per run: no key cached from an earlier fetch.
        key = jwt.PyJWKClient(url, cache_keys=False).get_signing_key_from_jwt(
            tok)
        claims = jwt.decode(tok, key.key, algorithms=["ES256", "ES384",
                                                      "RS256"],
                            audience=aud, issuer=issuer,
                            options={"require": ["exp", "iat", "iss", "sub",
                                                 "aud"]})
    except jwt.PyJWTError as e:
        print("PyJWT rejected: %s: %s" % (type(e).__name__, e))
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a broken check must not pass for a rejection
        print("jwks-check: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(2)
