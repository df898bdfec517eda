#!/usr/bin/env python3
# Walks malformed and hostile requests through every botid-ca endpoint
# (ca-hostile.sh; issue 21, point 5) and fails on any 5xx: whatever the
# request holds, a refusal it causes is a 4xx with a one-line reason.
#
#   ca-hostile.py URL BUNDLE DIR
#
# DIR holds genuine material from a real TPM, to start mutations from:
# enrol.json (an enrolment body with a valid join token), certify.json and
# revoke.json (bodies of an enrolled host), host_id, tokens (fresh join
# tokens, one a line). Requests that need a nonce get a fresh one from
# /v1/nonce, so that mutated evidence reaches the checks past the nonce.
# Prints one line per endpoint with the statuses seen; the last line is
# "ok N" (requests sent).
import base64
import collections
import http.client
import json
import os
import random
import ssl
import sys
import urllib.parse

url = urllib.parse.urlparse(sys.argv[1])
ctx = ssl.create_default_context(cafile=sys.argv[2])
d = sys.argv[3]
rng = random.Random(21)
conn = None
sent = 0
seen = collections.defaultdict(collections.Counter)
bad = []


def request(method, path, body=None, headers=None):
    global conn, sent
    chunked = isinstance(body, list)
    if chunked:
        body = list(body)
    for attempt in range(3):
        if conn is None:
            conn = http.client.HTTPSConnection(url.hostname, url.port,
                                               context=ctx, timeout=60)
        try:
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            conn.request(method, path, body=iter(body) if chunked else body,
                         headers=h, encode_chunked=chunked)
            r = conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            sent += 1
            return r.status, data
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = None
    raise SystemExit("ca-hostile: no answer to %s %s %r" % (method, path,
                                                          body))


def check(what, method, path, body=None, headers=None, want=None):
    status, data = request(method, path, body, headers)
    seen[path.split("?")[0][:40]][status] += 1
    if status >= 500:
        bad.append("%s %s (%s): %d %s" % (method, path[:60], what, status,
                                          data[:200]))
    elif want is not None and status not in want:
        bad.append("%s %s (%s): %d, not %s: %s" % (method, path[:60], what,
                                                   status, want, data[:200]))
    elif status >= 400:
        # One line, in JSON, saying why (evhttp's own refusals are HTML).
        try:
            err = json.loads(data)["error"]
            if "\n" in err or not err:
                bad.append("%s %s (%s): reason not one line" %
                           (method, path, what))
        except (ValueError, KeyError, TypeError):
            if not data.startswith(b"<HTML>"):
                bad.append("%s %s (%s): %d without a reason: %s" %
                           (method, path, what, status, data[:100]))
    return status, data


def load(name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


host_id = open(os.path.join(d, "host_id")).read().strip()
tokens = open(os.path.join(d, "tokens")).read().split()


def fresh_nonce():
    status, data = request("POST", "/v1/nonce",
                           json.dumps({"host_id": host_id}))
    if status != 200:
        raise SystemExit("ca-hostile: no nonce: %d %s" % (status, data))
    return json.loads(data)["nonce"]


def b64(b):
    return base64.b64encode(b).decode()


def mutations(raw):
    """Truncations, length-prefix edits and byte flips of raw."""
    n = len(raw)
    step = max(1, n // 64)
    for i in range(0, n, step):
        yield "truncated at %d" % i, raw[:i]
    yield "one byte more", raw + b"\0"
    if n >= 2:
        for v in (0, 1, n - 1, n, 0xffff):
            yield "size %d" % v, v.to_bytes(2, "big") + raw[2:]
    for i in range(n):
        yield "byte %d flipped" % i, raw[:i] + bytes([raw[i] ^ 0xff]) + \
            raw[i + 1:]


JUNK = [None, 1, -1, 1.5, True, [], {}, "", "%%", "A", "AAA=",
        "A" * 8000]


def walk_members(path, template, b64_members, nonce_member=False):
    """Every member removed, replaced by junk, and (base64 ones) mutated."""
    def post(what, body, want=None):
        if nonce_member and "nonce" in body and what.split(":")[0] != "nonce":
            body["nonce"] = fresh_nonce()
        check(what, "POST", path, json.dumps(body), want=want)

    for k in template:
        body = dict(template)
        del body[k]
        post("%s: removed" % k, body)
        for j in JUNK:
            body = dict(template)
            body[k] = j
            post("%s: %r" % (k, j if not isinstance(j, str) else j[:8]), body)
        for n in (1, 2, 10, 64, 300, 2000):
            body = dict(template)
            body[k] = b64(rng.randbytes(n))
            post("%s: %d random bytes" % (k, n), body)
    for k in b64_members:
        raw = base64.b64decode(template[k])
        for what, m in mutations(raw):
            body = dict(template)
            body[k] = b64(m)
            post("%s: %s" % (k, what), body)


def too_large(path):
    """A body over 64 KiB is refused (413) from its Content-Length alone,
    before it is sent (the CA closes the connection then)."""
    global sent
    import socket
    raw = socket.create_connection((url.hostname, url.port), timeout=60)
    s = ctx.wrap_socket(raw, server_hostname=url.hostname)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: "
               "application/json\r\nContent-Length: 70000\r\n"
               "Expect: 100-continue\r\n\r\n" % path).encode())
    answer = s.makefile("rb").readline().split()
    s.close()
    sent += 1
    status = int(answer[1]) if len(answer) > 1 else 0
    seen[path][status] += 1
    if status != 413:
        bad.append("POST %s (too large): %d, not 413" % (path, status))


# Every endpoint and method, and paths that are not endpoints.
GETS = ["/v1/bundle", "/v1/crl", "/v1/health/live", "/v1/health/ready",
        "/metrics", "/.well-known/jwks.json",
        "/.well-known/openid-configuration", "/v1/audit/anchor/" + host_id,
        "/v1/audit/anchor/" + "0" * 16, "/v1/audit/anchor/%00"]
POSTS = ["/v1/enrol", "/v1/activate", "/v1/nonce", "/v1/certify",
         "/v1/revoke", "/v1/audit/anchor"]
for p in GETS + POSTS:
    for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        check("method", m, p, "{}" if m != "GET" else None)
    check("query", "GET", p + "?x=1&x=2")
for p in ("/", "/v1", "/v1/", "/v1/crl/", "/v1/../v1/crl", "/%00",
          "/v1/%2e%2e/crl", "/" + "a" * 4000, "/v1/enrol?" + "b" * 3000):
    check("path", "GET", p)
    check("path", "POST", p, "{}")
# Bodies that are not the JSON object an endpoint takes.
BODIES = [b"", b"not json", b"[]", b'"s"', b"1", b"null", b"{}",
          b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
          b'{"host_id":"\\u0000"}', b'{"host_id":"\xff\xfe"}',
          b'{"host_id":1e999}', b'{"host_id":"a","host_id":"a"}',
          b"\x00" * 100, b"{" + b" " * 60000 + b"}"]
for p in POSTS:
    for body in BODIES:
        check("body %r" % body[:16], "POST", p, body)
    too_large(p)
    check("chunked", "POST", p, [b'{"host_id":', b'"0"}'],
          headers={"Transfer-Encoding": "chunked"})

# Each member of each endpoint's genuine body, removed, junk, mutated.
walk_members("/v1/nonce", {"host_id": host_id}, [])
cert = load("certify.json")
walk_members("/v1/certify", cert,
             [k for k in ("nonce", "public", "attest", "spki", "signature")
              if k in cert], nonce_member=True)
rv = load("revoke.json")
walk_members("/v1/revoke", rv, ["nonce", "signature"], nonce_member=True)
act = load("activate.json")
walk_members("/v1/activate", act,
             ["secret", "host_key_attest", "host_key_signature"])
enrol = load("enrol.json")
walk_members("/v1/enrol", enrol, ["ek_cert", "ek_public", "ak_public",
                                  "host_key_public"])

# The EK certificate's own key with edited objectAttributes (issue 21:
# "cannot make a credential for this EK: invalid format" was a 500): not
# restricted, not a decryption key, a signing key. Each with a fresh token.
RESTRICTED, DECRYPT, SIGN = 1 << 16, 1 << 17, 1 << 18
ekp = bytearray(base64.b64decode(enrol["ek_public"]))
attrs = int.from_bytes(ekp[6:10], "big")
for what, a in (("not restricted", attrs & ~RESTRICTED),
                ("not decrypt", attrs & ~DECRYPT),
                ("a signing key", attrs | SIGN),
                ("signing, not decrypt", (attrs | SIGN) & ~DECRYPT)):
    e = bytearray(ekp)
    e[6:10] = a.to_bytes(4, "big")
    body = dict(enrol)
    body["ek_public"] = b64(bytes(e))
    if tokens:
        body["join_token"] = tokens.pop()
    status, data = check("EK " + what, "POST", "/v1/enrol", json.dumps(body),
                         want=(400, 403))
    print("EK %s: %d %s" % (what, status, data.decode()[:120]))

for p in sorted(seen):
    print("%s: %s" % (p, " ".join("%d x%d" % (s, n)
                                  for s, n in sorted(seen[p].items()))))
if bad:
    print("\n".join(bad[:40]))
    raise SystemExit("ca-hostile: %d requests got a 5xx or a wrong status"
                     % len(bad))
print("ok %d" % sent)
