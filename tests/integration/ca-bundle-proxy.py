#!/usr/bin/env python3
"""ca-bundle-proxy.py CA_URL CA_BUNDLE CERT KEY PORT_FILE [SWAP_PEM]

An HTTPS proxy in front of botid-ca for ca-identity.sh: it serves with
CERT/KEY, forwards every request to CA_URL (trusting CA_BUNDLE) and passes
the answer back, except that with SWAP_PEM the "bundle" of a /v1/activate
answer is replaced by that file's content, as a man in the middle would.
It writes its port to PORT_FILE once it listens."""
import http.server
import json
import ssl
import sys
import urllib.error
import urllib.request

ca_url, ca_bundle, cert, key, port_file = sys.argv[1:6]
swap = open(sys.argv[6]).read() if len(sys.argv) > 6 else None
upstream = ssl.create_default_context(cafile=ca_bundle)


class Proxy(http.server.BaseHTTPRequestHandler):
    def forward(self, body):
        req = urllib.request.Request(ca_url + self.path, data=body,
                                     method=self.command,
                                     headers={"Content-Type":
                                              "application/json"})
        try:
            with urllib.request.urlopen(req, context=upstream) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        if swap is not None and self.path == "/v1/activate" and status == 200:
            j = json.loads(data)
            j["bundle"] = swap
            data = json.dumps(j).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.forward(self.rfile.read(n))

    def do_GET(self):
        self.forward(None)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
