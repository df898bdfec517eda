#!/usr/bin/env python3
"""botid client in Python 3 (standard library only), written from
doc/protocol.md alone: proof that the spec is enough, and a second client
for the integration tests.

usage: pyclient.py [--socket PATH] list
       pyclient.py [--socket PATH] pubkey BOT OUT.der
       pyclient.py [--socket PATH] sign BOT --in FILE --out SIG
           [--hash sha256|sha384|sha512] [--digest] [--format der|raw] [--pss]

Exit status: 0 ok, 1 failure, 2 usage, 3 denied, 4 agent unreachable.
"""

import argparse
import hashlib
import os
import socket
import struct
import sys

PROTOCOL_VERSION = 1
DEFAULT_SOCKET = "/run/botid/agent.sock"
MAX_FRAME = 65536
TIMEOUT_S = 60

OP_HELLO, OP_LIST, OP_PUBKEY, OP_SIGN_DIGEST, OP_SIGN_DATA = 1, 2, 3, 5, 6
OP_REPLY = 0x80

TAG_VERSION, TAG_AGENT, TAG_BOT, TAG_KEY_TYPE, TAG_BACKEND = 1, 2, 3, 4, 5
TAG_PUBKEY, TAG_HASH, TAG_DIGEST, TAG_DATA = 6, 8, 9, 10
TAG_SCHEME, TAG_FORMAT, TAG_SIGNATURE, TAG_MESSAGE = 11, 12, 13, 14

STATUS_OK, STATUS_DENIED = 0, 4
STATUS_NAMES = {
    1: "malformed request", 2: "unsupported protocol version",
    3: "unknown operation", 4: "denied", 5: "not supported",
    6: "backend unavailable", 7: "busy", 8: "too large",
    9: "internal error", 10: "no certificate yet",
    11: "backend unavailable",
    12: "audit log unavailable",
}

HASHES = {  # name: (wire value, hashlib name, digest length)
    "sha256": (1, "sha256", 32),
    "sha384": (2, "sha384", 48),
    "sha512": (3, "sha512", 64),
}
SCHEME_AUTO, SCHEME_PSS = 0, 2
FORMATS = {"der": 0, "raw": 1}

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_DENIED, EXIT_NOAGENT = 0, 1, 2, 3, 4


class Failure(Exception):
    """Ends the program with a one-line message and an exit status."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def field(tag, value):
    return struct.pack(">HI", tag, len(value)) + value


def field_u32(tag, value):
    return field(tag, struct.pack(">I", value))


def parse_fields(body):
    """Yields (tag, value) from a reply body after its 9-byte header."""
    off = 9
    while off < len(body):
        # Subtract, never add: a hostile length must not reach past the body.
        if len(body) - off < 6:
            raise Failure(EXIT_FAIL, "protocol error: truncated field header")
        tag, n = struct.unpack_from(">HI", body, off)
        off += 6
        if n > len(body) - off:
            raise Failure(EXIT_FAIL, "protocol error: truncated field")
        yield tag, body[off:off + n]
        off += n


def printable(raw):
    """An agent message made safe for one line on a terminal."""
    text = raw.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text)


class Agent:
    """One connection; one request at a time, so every reply must answer
    the request just sent."""

    def __init__(self, path):
        self.path = path
        self.next_id = 1   # id 0 is the agent's for frame-level errors
        self.sock = None

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT_S)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise Failure(EXIT_NOAGENT, "cannot reach the agent at %s: %s"
                          % (self.path, e.strerror or e))
        self.sock = s
        try:
            fields = self.request(OP_HELLO, field_u32(TAG_VERSION,
                                                      PROTOCOL_VERSION))
        except Failure as e:
            raise Failure(EXIT_NOAGENT, "agent at %s: %s" % (self.path, e))
        versions = [v for t, v in fields if t == TAG_VERSION]
        if len(versions) != 1 or len(versions[0]) != 4 or \
                struct.unpack(">I", versions[0])[0] != PROTOCOL_VERSION:
            raise Failure(EXIT_NOAGENT, "agent at %s: protocol error: bad "
                          "hello reply" % self.path)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def recv_exact(self, n):
        data = bytearray()
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except socket.timeout:
                raise Failure(EXIT_FAIL, "timed out waiting for the agent")
            except OSError as e:
                raise Failure(EXIT_FAIL, "connection error: %s"
                              % (e.strerror or e))
            if not chunk:
                raise Failure(EXIT_FAIL, "connection closed by the agent")
            data += chunk
        return bytes(data)

    def request(self, op, payload=b""):
        """Sends one request; returns the reply's fields if the status is
        OK, raises Failure otherwise."""
        rid = self.next_id
        self.next_id = (self.next_id + 1) & 0xffffffff or 1
        body = struct.pack(">BI", op, rid) + payload
        if len(body) > MAX_FRAME:
            raise Failure(EXIT_FAIL, "request too large for one frame")
        try:
            self.sock.sendall(struct.pack(">I", len(body)) + body)
        except OSError as e:
            raise Failure(EXIT_FAIL, "cannot send: %s" % (e.strerror or e))

        (n,) = struct.unpack(">I", self.recv_exact(4))
        if n == 0 or n > MAX_FRAME:
            raise Failure(EXIT_FAIL, "protocol error: reply length %d" % n)
        reply = self.recv_exact(n)
        if n < 9:
            raise Failure(EXIT_FAIL, "protocol error: short reply")
        rop, rrid, status = struct.unpack_from(">BII", reply, 0)
        fields = list(parse_fields(reply))
        message = b""
        for t, v in fields:
            if t == TAG_MESSAGE:
                message = v
        # op 0x80, id 0: the agent rejected the frame itself and hung up.
        frame_error = rop == OP_REPLY and rrid == 0 and status != STATUS_OK
        if not frame_error and (rop != (op | OP_REPLY) or rrid != rid):
            raise Failure(EXIT_FAIL, "protocol error: reply op 0x%02x id %d "
                          "answers op 0x%02x id %d" % (rop, rrid, op, rid))
        if status == STATUS_OK:
            return fields
        if status == STATUS_DENIED:
            raise Failure(EXIT_DENIED, "denied")
        text = STATUS_NAMES.get(status, "unknown status %d" % status)
        if message:
            text += ": " + printable(message)
        raise Failure(EXIT_FAIL, text)


def one_field(fields, tag, what):
    for t, v in fields:
        if t == tag:
            if not v:
                break
            return v
    raise Failure(EXIT_FAIL, "protocol error: no %s in the reply" % what)


def bot_field(bot):
    raw = bot.encode("ascii", "replace")
    # Checked here too, so a typo reads as a usage error, not "malformed".
    ok = 1 <= len(raw) <= 64 and not bot.startswith(".") and all(
        c.isascii() and (c.isalnum() or c in "._-") for c in bot)
    if not ok:
        raise Failure(EXIT_USAGE, "invalid bot name '%s'" % bot)
    return field(TAG_BOT, raw)


def cmd_list(agent, args):
    fields = agent.request(OP_LIST)
    bots = []
    for t, v in fields:
        if t == TAG_BOT:
            bots.append([v.decode("ascii", "replace"), "", ""])
        elif t == TAG_KEY_TYPE and bots:
            bots[-1][1] = v.decode("ascii", "replace")
        elif t == TAG_BACKEND and bots:
            bots[-1][2] = v.decode("ascii", "replace")
    for name, key_type, backend in bots:
        print("%s\t%s\t%s" % (name, key_type, backend))


def write_file(path, data):
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise Failure(EXIT_FAIL, "%s: %s" % (path, e.strerror or e))


def read_file(path):
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Failure(EXIT_FAIL, "%s: %s" % (path, e.strerror or e))


def cmd_pubkey(agent, args):
    fields = agent.request(OP_PUBKEY, bot_field(args.bot))
    der = one_field(fields, TAG_PUBKEY, "public key")
    if der[0] != 0x30:
        raise Failure(EXIT_FAIL, "the agent sent an invalid public key")
    write_file(args.out, der)


def cmd_sign(agent, args, data):
    hash_value, hash_name, hash_len = HASHES[args.hash]
    scheme = SCHEME_PSS if args.pss else SCHEME_AUTO
    options = (field_u32(TAG_HASH, hash_value) +
               field_u32(TAG_SCHEME, scheme) +
               field_u32(TAG_FORMAT, FORMATS[args.format]))
    bot = bot_field(args.bot)
    op, payload = OP_SIGN_DATA, field(TAG_DATA, data)
    if args.digest:
        op, payload = OP_SIGN_DIGEST, field(TAG_DIGEST, data)
    elif 5 + len(bot) + len(options) + len(payload) > MAX_FRAME:
        # Too big for a frame: hashing here gives the same signature.
        op = OP_SIGN_DIGEST
        payload = field(TAG_DIGEST, hashlib.new(hash_name, data).digest())
    fields = agent.request(op, bot + options + payload)
    write_file(args.out, one_field(fields, TAG_SIGNATURE, "signature"))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="pyclient.py", description="botid client (doc/protocol.md)",
        epilog="Exit status: 0 ok, 1 failure, 2 usage, 3 denied, "
        "4 agent unreachable.")
    p.add_argument("--socket", help="agent socket (default: $BOTID_SOCKET, "
                   "else %s)" % DEFAULT_SOCKET)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="bots this process may use")
    pk = sub.add_parser("pubkey", help="write a bot's public key (DER)")
    pk.add_argument("bot")
    pk.add_argument("out")
    sg = sub.add_parser("sign", help="sign a file, or a digest, with a bot")
    sg.add_argument("bot")
    sg.add_argument("--in", dest="infile", required=True)
    sg.add_argument("--out", required=True)
    sg.add_argument("--hash", choices=sorted(HASHES), default="sha256")
    sg.add_argument("--digest", action="store_true",
                    help="FILE holds the digest itself")
    sg.add_argument("--format", choices=sorted(FORMATS), default="der")
    sg.add_argument("--pss", action="store_true", help="RSA-PSS")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    path = args.socket or os.environ.get("BOTID_SOCKET") or DEFAULT_SOCKET
    agent = Agent(path)
    try:
        data = None
        if args.command == "sign":
            # Check the input before bothering the agent.
            data = read_file(args.infile)
            want = HASHES[args.hash][2]
            if args.digest and len(data) != want:
                raise Failure(EXIT_USAGE, "%s: a %s digest is %d bytes, the "
                              "file has %d" % (args.infile, args.hash, want,
                                               len(data)))
        agent.connect()
        if args.command == "list":
            cmd_list(agent, args)
        elif args.command == "pubkey":
            cmd_pubkey(agent, args)
        else:
            cmd_sign(agent, args, data)
    except Failure as e:
        print("pyclient: %s%s" % (
            "" if e.code == EXIT_NOAGENT else args.command + ": ", e),
            file=sys.stderr)
        return e.code
    finally:
        agent.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
