#!/usr/bin/env python3
"""chatty: the calling bot of the botid examples (Python 3, standard
library only).

It speaks the botid wire protocol (doc/protocol.md) to its agent for a
60-second JWT naming it, with only the scope it needs (inventory:read by
default), and for its certificate chain. It then calls the inventory bot
over mutual TLS with that token as bearer. Python's ssl module loads
private keys only from files, and a bot's key never leaves the agent's
TPM or token, so the TLS client is `openssl s_client`, which signs with
the key through OpenSSL's pkcs11 engine and the module botid-pkcs11.so;
the request, token included, reaches it on its standard input, never on
a command line. chatty believes an answer only if the server's
certificate chains to the CA bundle and its SPIFFE ID names the inventory
bot (bot certificates carry no host name: a host chooses its bot names),
and the body carries inventory's signature (X-Botid-Signature, a JWS with
detached payload) from the expected SPIFFE ID (`botid verify-msg`).

The token is signed by the bot's token key, which only the agent's token
builder can use; relying parties find that key in botid-ca's JWK Set. With
--jwks URL (botid-ca's /.well-known/jwks.json), chatty checks as they will
that its token's kid is in the set before it sends the token.

usage: chatty.py --bot NAME --bundle CA.pem --port PORT --module MODULE
           [--socket PATH] [--scope S]... [--expect-spiffe ID] [--jwks URL]
           [--botid PATH] [--openssl PATH] read | write ITEM COUNT
exit status: 0 ok, 1 failure, 2 usage, 3 refused by inventory
"""

import argparse
import base64
import http.client
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import ssl
import tempfile
import urllib.request

MAX_FRAME = 65536
OP_HELLO, OP_CERT_CHAIN, OP_JWT = 1, 4, 7
TAG_VERSION, TAG_BOT, TAG_CERT, TAG_MESSAGE = 1, 3, 7, 14
TAG_AUDIENCE, TAG_SCOPE, TAG_TTL, TAG_JWT = 15, 16, 17, 18


class AgentError(Exception):
    pass


class Agent:
    """One connection to botid-agent, one request at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.next_id = 1
        self.call(OP_HELLO, self.u32(TAG_VERSION, 1))

    @staticmethod
    def field(tag, value):
        return struct.pack(">HI", tag, len(value)) + value

    def u32(self, tag, v):
        return self.field(tag, struct.pack(">I", v))

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise AgentError("the agent closed the connection")
            buf += chunk
        return buf

    def call(self, op, fields):
        """Sends one request; returns the reply's fields as (tag, value)."""
        rid = self.next_id
        self.next_id += 1
        body = struct.pack(">BI", op, rid) + fields
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        (n,) = struct.unpack(">I", self.recv_exact(4))
        if n < 9 or n > MAX_FRAME:
            raise AgentError("the agent sent a bad frame length")
        body = self.recv_exact(n)
        rop, rrid, status = struct.unpack_from(">BII", body, 0)
        if rop != op | 0x80 or rrid != rid:
            raise AgentError("the agent's reply does not match the request")
        out, off = [], 9
        while off < len(body):
            if len(body) - off < 6:
                raise AgentError("truncated field in the agent's reply")
            tag, flen = struct.unpack_from(">HI", body, off)
            off += 6
            if flen > len(body) - off:
                raise AgentError("truncated field in the agent's reply")
            out.append((tag, body[off:off + flen]))
            off += flen
        if status != 0:
            msg = b"".join(v for t, v in out if t == TAG_MESSAGE)
            raise AgentError("status %d: %s" %
                             (status, msg.decode(errors="replace")))
        return out

    def jwt(self, bot, aud, scopes, ttl):
        req = self.field(TAG_BOT, bot.encode()) + \
            self.field(TAG_AUDIENCE, aud.encode()) + \
            b"".join(self.field(TAG_SCOPE, s.encode()) for s in scopes) + \
            self.u32(TAG_TTL, ttl)
        tokens = [v for t, v in self.call(OP_JWT, req) if t == TAG_JWT]
        if len(tokens) != 1:
            raise AgentError("the agent sent no token")
        return tokens[0].decode("ascii")

    def cert_chain(self, bot):
        fields = self.call(OP_CERT_CHAIN, self.field(TAG_BOT, bot.encode()))
        return [v for t, v in fields if t == TAG_CERT]


def pem(der):
    b64 = base64.b64encode(der).decode()
    return "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % \
        "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))


class Reply:
    """What http.client reads a response from: bytes already received."""

    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def in_jwks(token, url, bundle):
    """Whether the token's kid is a key of botid-ca's JWK Set at url."""
    h = token.split(".")[0]
    kid = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["kid"]
    ctx = ssl.create_default_context(cafile=bundle)
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
            keys = json.loads(r.read(4 << 20))["keys"]
    except (OSError, ValueError, KeyError) as e:
        print("chatty: cannot fetch the JWK Set: %s" % e, file=sys.stderr)
        return False
    if kid not in [k.get("kid") for k in keys]:
        print("chatty: token key %s is not in the CA's JWK Set" % kid,
              file=sys.stderr)
        return False
    return True


def spiffe_id(openssl, pem):
    """The one SPIFFE ID a PEM certificate names, or None."""
    p = subprocess.run([openssl, "x509", "-noout", "-ext", "subjectAltName"],
                       input=pem, capture_output=True, timeout=30)
    ids = re.findall(r"URI:(spiffe://[^\s,]+)", p.stdout.decode(errors="replace"))
    return ids[0] if p.returncode == 0 and len(ids) == 1 else None


def main():
    ap = argparse.ArgumentParser(
        description="chatty: call the inventory bot over mTLS with a JWT")
    ap.add_argument("--bot", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--module", required=True,
                    help="path of botid-pkcs11.so")
    ap.add_argument("--socket", default=os.environ.get(
        "BOTID_SOCKET", "/run/botid/agent.sock"))
    ap.add_argument("--scope", action="append", default=[])
    ap.add_argument("--expect-spiffe")
    ap.add_argument("--jwks")
    ap.add_argument("--botid", default="botid")
    ap.add_argument("--openssl", default="openssl")
    ap.add_argument("--host", default="inventory",
                    help="the server bot's name, as in its SPIFFE ID")
    ap.add_argument("action", choices=["read", "write"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    if (a.action == "read") != (len(a.args) == 0) or \
            (a.action == "write" and len(a.args) != 2):
        ap.error("read takes nothing, write takes ITEM COUNT")
    # Least privilege: read is all chatty normally needs.
    scopes = a.scope or ["inventory:read"]

    try:
        agent = Agent(a.socket)
        token = agent.jwt(a.bot, "inventory", scopes, 60)
        chain = agent.cert_chain(a.bot)
    except (AgentError, OSError) as e:
        print("chatty: no token: %s" % e, file=sys.stderr)
        return 1
    if not chain:
        print("chatty: %s has no certificate yet" % a.bot, file=sys.stderr)
        return 1
    if a.jwks and not in_jwks(token, a.jwks, a.bundle):
        return 1

    if a.action == "read":
        request = "GET /items HTTP/1.0\r\n"
        body = b""
    else:
        try:
            body = json.dumps({"item": a.args[0],
                               "count": int(a.args[1])}).encode()
        except ValueError:
            ap.error("COUNT must be a number")
        request = "POST /items HTTP/1.0\r\nContent-Type: application/json" \
            "\r\nContent-Length: %d\r\n" % len(body)
    request = (request + "Host: %s\r\nAuthorization: Bearer %s\r\n\r\n" %
               (a.host, token)).encode() + body

    with tempfile.TemporaryDirectory(prefix="chatty.") as tmp:
        paths = {n: os.path.join(tmp, n) for n in ("chain.pem", "body", "sig")}
        with open(paths["chain.pem"], "w") as f:
            f.write("".join(pem(c) for c in chain))
        # The server must chain to the bundle and its SPIFFE ID name the
        # bot: bot certificates carry no host name to verify. s_client
        # checks the chain; its SPIFFE ID is read from a first handshake
        # that sends nothing (with -quiet, s_client shows no certificate).
        # The answer's signer is checked too, below. The request, with the
        # token, goes on standard input.
        cmd = [a.openssl, "s_client",
               "-connect", "127.0.0.1:%d" % a.port, "-servername", a.host,
               "-CAfile", a.bundle, "-verify_return_error",
               "-engine", "pkcs11", "-keyform", "engine",
               "-key", "pkcs11:object=%s;type=private" % a.bot,
               "-cert", paths["chain.pem"]]
        env = dict(os.environ, PKCS11_MODULE_PATH=a.module,
                   BOTID_SOCKET=a.socket)
        p = subprocess.run(cmd, input=b"", env=env, capture_output=True,
                           timeout=60)
        leaf = re.search(rb"-----BEGIN CERTIFICATE-----\n.*?"
                         rb"-----END CERTIFICATE-----\n", p.stdout, re.S)
        if leaf is None:
            why = [ln for ln in p.stderr.decode(errors="replace").split("\n")
                   if "error" in ln.lower()]
            print("chatty: inventory over mTLS: %s" %
                  (why[0] if why else "no server certificate"),
                  file=sys.stderr)
            return 1
        server = spiffe_id(a.openssl, leaf.group(0))
        if server is None or not server.endswith("/bot/" + a.host):
            print("chatty: inventory over mTLS: the server is %s, not bot "
                  "%s" % (server or "no SPIFFE ID", a.host), file=sys.stderr)
            return 1
        p = subprocess.run(cmd[:2] + ["-quiet"] + cmd[2:], input=request,
                           env=env, capture_output=True, timeout=60)
        # libevent's server closes without a TLS close_notify, which
        # s_client reports as an error after printing the whole answer;
        # a short answer fails below, on its Content-Length or signature.
        if not p.stdout:
            why = [ln for ln in p.stderr.decode(errors="replace").split("\n")
                   if "error" in ln.lower()]
            print("chatty: inventory over mTLS: %s" %
                  (why[0] if why else "no answer"), file=sys.stderr)
            return 1
        try:
            resp = http.client.HTTPResponse(Reply(p.stdout))
            resp.begin()
            code, body = resp.status, resp.read()
            if resp.length is None and resp.getheader("Content-Length") \
                    is None:
                raise ValueError("no Content-Length")
        except (http.client.HTTPException, ValueError) as e:
            print("chatty: inventory sent no HTTP response: %s" % e,
                  file=sys.stderr)
            return 1
        sig = resp.getheader("X-Botid-Signature")
        if sig is None:
            print("chatty: the response is not signed", file=sys.stderr)
            return 1
        with open(paths["body"], "wb") as f:
            f.write(body)
        with open(paths["sig"], "w") as f:
            f.write(sig)
        cmd = [a.botid, "verify-msg", "--bundle", a.bundle,
               "--in", paths["body"]]
        if a.expect_spiffe:
            cmd += ["--expect-spiffe", a.expect_spiffe]
        v = subprocess.run(cmd + [paths["sig"]], capture_output=True,
                           timeout=30)
        if v.returncode != 0:
            print("chatty: the response signature is bad: %s" %
                  v.stderr.decode(errors="replace").strip(), file=sys.stderr)
            return 1
        signer = json.loads(v.stdout)["spiffe_id"]
    print("%d from %s: %s" % (code, signer, body.decode(errors="replace")))
    return 0 if code == 200 else 3


if __name__ == "__main__":
    sys.exit(main())
