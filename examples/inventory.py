#!/usr/bin/env python3
"""inventory: the receiving bot of the botid examples (Python 3, standard
library only).

It serves a tiny inventory over HTTP and lets a caller in only with a bot
JWT in "Authorization: Bearer": GET needs scope inventory:read, POST
inventory:write. Tokens are checked by `botid verify-jwt` (chain to the CA
bundle, signature, audience "inventory", expiry, SPIFFE ID, scope), so this
file holds no crypto. It speaks the botid wire protocol (doc/protocol.md)
itself to sign every response with its own bot key: the header
X-Botid-Signature is a JWS with detached payload (RFC 7515 appendix F) over
the body, carrying its certificate chain, which the caller checks with
botid_verify_msg() / `botid verify-msg`.

usage: inventory.py --bot NAME --bundle CA.pem [--socket PATH]
           [--listen 127.0.0.1] [--port-file FILE] [--botid PATH]
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import socket
import struct
import subprocess
import sys
import threading

MAX_FRAME = 65536
MAX_TOKEN = 16384
OP_HELLO, OP_CERT_CHAIN, OP_SIGN_DIGEST = 1, 4, 5
TAG_VERSION, TAG_BOT, TAG_CERT, TAG_HASH, TAG_DIGEST = 1, 3, 7, 8, 9
TAG_SCHEME, TAG_FORMAT, TAG_SIGNATURE, TAG_MESSAGE = 11, 12, 13, 14
HASH_SHA256, SCHEME_ECDSA, FORMAT_RAW = 1, 3, 1


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Agent:
    """One connection to botid-agent; one request at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.next_id = 1
        self.lock = threading.Lock()
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
                raise OSError("agent closed the connection")
            buf += chunk
        return buf

    def call(self, op, fields):
        """Sends one request; returns the reply's fields as (tag, value)."""
        with self.lock:
            rid = self.next_id
            self.next_id += 1
            body = struct.pack(">BI", op, rid) + fields
            self.sock.sendall(struct.pack(">I", len(body)) + body)
            (n,) = struct.unpack(">I", self.recv_exact(4))
            if n < 9 or n > MAX_FRAME:
                raise OSError("agent sent a bad frame length")
            body = self.recv_exact(n)
        rop, rrid, status = struct.unpack_from(">BII", body, 0)
        if rop != op | 0x80 or rrid != rid:
            raise OSError("agent reply does not match the request")
        out, off = [], 9
        while off < len(body):
            if len(body) - off < 6:
                raise OSError("truncated field")
            tag, flen = struct.unpack_from(">HI", body, off)
            off += 6
            if flen > len(body) - off:
                raise OSError("truncated field")
            out.append((tag, body[off:off + flen]))
            off += flen
        if status != 0:
            msg = b"".join(v for t, v in out if t == TAG_MESSAGE)
            raise PermissionError("agent: status %d: %s" %
                                  (status, msg.decode(errors="replace")))
        return out

    def cert_chain(self, bot):
        fields = self.call(OP_CERT_CHAIN, self.field(TAG_BOT, bot.encode()))
        return [v for t, v in fields if t == TAG_CERT]

    def sign_sha256_raw(self, bot, digest):
        fields = self.call(OP_SIGN_DIGEST,
                           self.field(TAG_BOT, bot.encode()) +
                           self.u32(TAG_HASH, HASH_SHA256) +
                           self.field(TAG_DIGEST, digest) +
                           self.u32(TAG_SCHEME, SCHEME_ECDSA) +
                           self.u32(TAG_FORMAT, FORMAT_RAW))
        return b"".join(v for t, v in fields if t == TAG_SIGNATURE)


class Inventory:
    def __init__(self, args):
        self.args = args
        self.items = {"widget": 12, "gear": 3}
        self.lock = threading.Lock()
        self.agent = Agent(args.socket)

    def sign(self, body):
        """Detached-payload ES256 JWS over body, with our chain in x5c."""
        chain = self.agent.cert_chain(self.args.bot)
        if not chain:
            raise PermissionError("inventory bot has no certificate yet")
        header = {"alg": "ES256",
                  "kid": b64url(hashlib.sha256(chain[0]).digest()),
                  "x5c": [base64.b64encode(c).decode() for c in chain]}
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
        signing_input = ("%s.%s" % (h, b64url(body))).encode()
        sig = self.agent.sign_sha256_raw(
            self.args.bot, hashlib.sha256(signing_input).digest())
        return "%s..%s" % (h, b64url(sig))

    def check_token(self, auth, scope):
        """Returns (claims, None) or (None, reason)."""
        if not auth.startswith("Bearer "):
            return None, "no bearer token"
        token = auth[7:].strip()
        if not token or len(token) > MAX_TOKEN:
            return None, "token missing or too long"
        p = subprocess.run([self.args.botid, "verify-jwt",
                            "--bundle", self.args.bundle,
                            "--aud", "inventory",
                            "--require-scope", scope, "-"],
                           input=token.encode(), capture_output=True,
                           timeout=30)
        if p.returncode != 0:
            return None, p.stderr.decode(errors="replace").strip()
        return json.loads(p.stdout), None


def make_handler(inv):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def reply(self, code, obj):
            body = (json.dumps(obj, sort_keys=True) + "\n").encode()
            sig = inv.sign(body)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Botid-Signature", sig)
            self.end_headers()
            self.wfile.write(body)

        def authorize(self, scope):
            v, why = inv.check_token(self.headers.get("Authorization", ""),
                                     scope)
            if v is None:
                self.log_message("refused: %s", why)
                self.reply(403, {"error": "forbidden", "needs": scope,
                                 "reason": why})
            return v

        def do_GET(self):
            v = self.authorize("inventory:read")
            if v is None:
                return
            with inv.lock:
                items = dict(inv.items)
            self.log_message("read by %s", v["spiffe_id"])
            self.reply(200, {"items": items, "caller": v["spiffe_id"]})

        def do_POST(self):
            v = self.authorize("inventory:write")
            if v is None:
                return
            try:
                n = int(self.headers.get("Content-Length", "0"))
                if n < 0 or n > 4096:
                    raise ValueError("body too large")
                req = json.loads(self.rfile.read(n))
                item, count = str(req["item"]), int(req["count"])
            except (ValueError, KeyError, TypeError) as e:
                self.reply(400, {"error": "bad request: %s" % e})
                return
            with inv.lock:
                inv.items[item] = inv.items.get(item, 0) + count
                total = inv.items[item]
            self.log_message("write by %s", v["spiffe_id"])
            self.reply(200, {"item": item, "count": total})

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bot", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--socket", default=os.environ.get(
        "BOTID_SOCKET", "/run/botid/agent.sock"))
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--botid", default="botid")
    args = ap.parse_args()
    inv = Inventory(args)
    srv = http.server.ThreadingHTTPServer((args.listen, args.port),
                                          make_handler(inv))
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(args.port_file + ".tmp", args.port_file)
    print("inventory: listening on http://%s:%d" % srv.server_address,
          file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
