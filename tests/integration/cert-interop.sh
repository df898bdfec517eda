#!/bin/bash
# Every kind of certificate botid-ca issues, read by X.509 stacks that are
# not OpenSSL: bot certificates for TPM and SoftHSM2 bots (EC and RSA), the
# host certificate, the CA certificate, the CA's TLS server certificate and
# the CRL. GnuTLS (certtool -i, --verify, --crl-info, --verify-crl), Debian's
# python3-cryptography (38) and Go's crypto/x509 (a program compiled here)
# parse each, check its signature and read the SPIFFE ID and attestation
# claim; `botid verify-cert --require-tpm` reads the claim, also under the
# OID certificates carried before, and refuses two claims. gnutls-cli
# completes a TLS 1.3 mTLS handshake with each bot's key through
# botid-pkcs11.so against `openssl s_server -Verify 1 -verify_return_error`
# trusting only the CA bundle, and the server prints the bot's SPIFFE ID.
# Go's crypto/tls does the same with the key through the module (crypto11),
# and as a server verifies gnutls-cli's client certificate.
# The old OID is shown refused by each of those stacks, so each check here
# can fail. A sanitizer build stops before the handshakes (see there).
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm cert-interop
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

MODULE="$top_builddir/pkcs11/.libs/botid-pkcs11.so"
[ -f "$MODULE" ] || fail "no $MODULE: build first"
# Debian's python3 with its python3-cryptography (38): a newer one from
# pip parses more than Debian 12's does.
DEBPY=/usr/bin/python3
"$DEBPY" -c 'import cryptography, sys
sys.exit(not cryptography.__file__.startswith("/usr/lib/python3/dist-packages/"))' ||
    fail "$DEBPY does not import Debian's python3-cryptography"
command -v go >/dev/null || fail "no go: scripts/install-deps installs golang-go"
command -v certtool >/dev/null || fail "no certtool: scripts/install-deps installs gnutls-bin"
OID=1.2.840.113556.1.8000.2554.52093.11161.8788.17731.38138.7442963.11539914
OLD_OID=2.25.270483204527800964550038576487470208458
export BOTID_SOCKET="$AGENT_SOCK"

me=$(id -u)
agent_conf_begin "rotate_grace = 1s"
agent_add_bot tpm-ec tpm ecdsa-p256 "uid:$me"
agent_add_bot tpm-rsa tpm rsa-2048 "uid:$me"
agent_add_bot p11-ec pkcs11 ecdsa-p384 "uid:$me"
agent_add_bot p11-rsa pkcs11 rsa-2048 "uid:$me"
BOTS="tpm-ec tpm-rsa p11-ec p11-rsa"
kind_of() { case $1 in tpm-*) echo tpm;; *) echo pkcs11;; esac; }

start_ca ca "$BOTID_EK_CA_CHAIN"
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h \
    --bots tpm-ec,tpm-rsa,p11-ec,p11-rsa >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/join.token" >/dev/null
start_agent
for b in $BOTS; do
	for _ in $(seq 1 150); do
		botid_cli cert "$b" --out "$T/$b.chain" 2>/dev/null && break
		sleep 0.2
	done
	[ -s "$T/$b.chain" ] || fail "no certificate for $b: $(tail -3 "$AGENT_LOG")"
	openssl x509 -in "$T/$b.chain" -out "$T/$b.leaf.pem"
done
HOST_CERT="$T/state/attest/host-cert.pem"
[ -s "$HOST_CERT" ] || fail "no host certificate at $HOST_CERT"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
[ -n "$host_id" ] || fail "no host_id in $T/state/attest/host.json"

# The CA's TLS server certificate, as a client receives it.
openssl s_client -connect "${BOTID_CA_URL#https://}" -showcerts \
    -CAfile "$BOTID_CA_BUNDLE" -verify_return_error </dev/null \
    >"$T/ca-tls.out" 2>&1 || fail "s_client to the CA: $(tail -3 "$T/ca-tls.out")"
openssl x509 -in "$T/ca-tls.out" -out "$T/ca-tls.pem" ||
    fail "no server certificate from the CA"

# A CRL with both kinds of entry: a bot revoked by the operator (no
# reason), and the old certificate of a rotated key, which the agent
# revokes as superseded (an entry with a reasonCode extension).
old_serial=$(openssl x509 -in "$T/tpm-ec.leaf.pem" -noout -serial | cut -d= -f2)
botid_cli rotate tpm-ec >"$T/rotate.out" 2>&1 ||
    fail "botid rotate tpm-ec: $(cat "$T/rotate.out")"
for _ in $(seq 1 600); do
	grep -q "certificate revoked: $old_serial" "$AGENT_LOG" && break
	sleep 0.1
done
grep -q "certificate revoked: $old_serial" "$AGENT_LOG" ||
    fail "the rotated key's old certificate was not revoked: $(tail -3 "$AGENT_LOG")"
check botid_cli cert tpm-ec --out "$T/tpm-ec.chain"
openssl x509 -in "$T/tpm-ec.chain" -out "$T/tpm-ec.leaf.pem"
[ "$(openssl x509 -in "$T/tpm-ec.leaf.pem" -noout -serial | cut -d= -f2)" != "$old_serial" ] ||
    fail "tpm-ec still has its old certificate after the rotation"
p11_spiffe=$(openssl x509 -in "$T/p11-rsa.leaf.pem" -noout -ext subjectAltName |
    grep -o 'URI:spiffe://[^, ]*' | sed 's/^URI://')
check "$CA" revoke -c "$BOTID_CA_CONF" bot "$p11_spiffe"
p11_serial=$(openssl x509 -in "$T/p11-rsa.leaf.pem" -noout -serial | cut -d= -f2)
curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/crl" -o "$T/crl.pem" ||
    fail "cannot fetch the CRL"
openssl crl -in "$T/crl.pem" -noout -text >"$T/crl.txt"
grep -q "$p11_serial" "$T/crl.txt" || fail "the CRL does not list $p11_serial"
grep -A4 "$old_serial" "$T/crl.txt" | grep -q 'Superseded' ||
    fail "the CRL does not list $old_serial as superseded"

# What each stack is given: NAME FILE KIND SPIFFE-ID (- when none).
: >"$T/certs.list"
for b in $BOTS; do
	echo "$b $T/$b.leaf.pem $(kind_of "$b") spiffe://$TD/host/$host_id/bot/$b" \
	    >>"$T/certs.list"
done
echo "host $HOST_CERT tpm spiffe://$TD/host/$host_id" >>"$T/certs.list"
echo "ca $BOTID_CA_CERT - -" >>"$T/certs.list"
# The CA's TLS certificate is self-signed by its own key (issue 21), not
# issued by the CA: GnuTLS parses it, and the CA does not verify it.
# (GnuTLS takes no CA:FALSE certificate as a trust anchor, not even this
# one for itself: doc/security.md says so; OpenSSL, curl and Python do.)
certtool -i --infile "$T/ca-tls.pem" >"$T/certtool.ca-tls" 2>&1 ||
    fail "certtool -i refuses the CA's TLS certificate: $(head -3 "$T/certtool.ca-tls")"
expect_fail certtool --verify --load-ca-certificate "$BOTID_CA_CERT" \
    --infile "$T/ca-tls.pem"
# The host certificate's claim and ID are what OpenSSL reads, so the
# other stacks are compared with a reference, not with themselves.
# (read whole first: grep -q at the end of a pipe may stop the writer)
host_san=$(openssl x509 -in "$HOST_CERT" -noout -ext subjectAltName)
grep -q "URI:spiffe://$TD/host/$host_id\$" <<<"$host_san" ||
    fail "host certificate: unexpected SAN: $host_san"

# ---- GnuTLS: certtool parses each certificate and verifies it against
# the CA certificate, and parses and verifies the CRL.
while read -r name file kind id; do
	certtool -i --infile "$file" >"$T/certtool.$name" 2>&1 ||
	    fail "certtool -i refuses the $name certificate: $(head -3 "$T/certtool.$name")"
	if [ "$kind" != - ]; then
		grep -q "Unknown extension $OID (not critical)" "$T/certtool.$name" ||
		    fail "certtool does not show the $name certificate's claim"
		grep -q "URI: $id\$" "$T/certtool.$name" ||
		    fail "certtool does not show the $name certificate's SPIFFE ID"
	fi
	certtool --verify --load-ca-certificate "$BOTID_CA_CERT" \
	    --infile "$file" >"$T/certverify.$name" 2>&1 ||
	    fail "certtool --verify: the $name certificate: $(grep -i -m3 'verif\|error' "$T/certverify.$name")"
	grep -q 'Chain verification output: Verified' "$T/certverify.$name" ||
	    fail "certtool --verify: the $name certificate is not verified"
done <"$T/certs.list"
certtool --crl-info --infile "$T/crl.pem" >"$T/certtool.crl" 2>&1 ||
    fail "certtool --crl-info refuses the CRL: $(head -3 "$T/certtool.crl")"
grep -qi "Serial Number (hex): $p11_serial" "$T/certtool.crl" ||
    fail "certtool does not list the revoked serial"
certtool --verify-crl --load-ca-certificate "$BOTID_CA_CERT" \
    --infile "$T/crl.pem" >"$T/certtool.crlverify" 2>&1 ||
    fail "certtool --verify-crl: $(tail -3 "$T/certtool.crlverify")"
grep -q 'Verified' "$T/certtool.crlverify" || fail "certtool: the CRL is not verified"

# ---- python3-cryptography 38: every extension parsed, the signature
# checked with the CA's key, the claim and the SPIFFE ID read.
"$DEBPY" - "$T/certs.list" "$BOTID_CA_CERT" "$T/crl.pem" "$p11_serial" \
    "$old_serial" "$OID" \
    >"$T/py.out" 2>&1 <<'PY' || fail "python3-cryptography: $(tail -3 "$T/py.out")"
import sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

listing, bundle, crlfile, serial, old_serial, oid = sys.argv[1:7]
ca = x509.load_pem_x509_certificate(open(bundle, "rb").read())
pub = ca.public_key()
assert isinstance(pub, ec.EllipticCurvePublicKey), "the test expects an EC CA key"

def signed_by_ca(sig, tbs, h):
    pub.verify(sig, tbs, ec.ECDSA(h))

def claim(c):
    try:
        ext = c.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
    except x509.ExtensionNotFound:
        return "-"
    assert not ext.critical, "the claim is critical"
    v = ext.value.value
    assert v[0] == 0x0C and v[1] == len(v) - 2, "not a short UTF8String: %r" % v
    return v[2:].decode("ascii")

for line in open(listing):
    name, path, kind, want_id = line.split()
    c = x509.load_pem_x509_certificate(open(path, "rb").read())
    exts = [e.oid.dotted_string for e in c.extensions]	# parses every one
    signed_by_ca(c.signature, c.tbs_certificate_bytes, c.signature_hash_algorithm)
    got = claim(c)
    assert got == kind, "%s: claim %s, want %s" % (name, got, kind)
    if want_id != "-":
        san = c.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
        assert uris == [want_id], "%s: URIs %r" % (name, uris)
    print("ok", name, got, len(exts))

crl = x509.load_pem_x509_crl(open(crlfile, "rb").read())
assert crl.is_signature_valid(pub), "the CRL's signature"
serials = ["%X" % r.serial_number for r in crl]
for r in crl:
    [e.oid for e in r.extensions]
assert serial.lstrip("0") in serials, "%s not in %r" % (serial, serials)
r = crl.get_revoked_certificate_by_serial_number(int(old_serial, 16))
assert r is not None, "%s not on the CRL" % old_serial
reason = r.extensions.get_extension_for_class(x509.CRLReason).value.reason
assert reason == x509.ReasonFlags.superseded, reason
print("ok crl", len(serials))
PY
[ "$(grep -c '^ok ' "$T/py.out")" -eq 7 ] || fail "python3-cryptography: $(cat "$T/py.out")"

# ---- Go's crypto/x509: parse, verify against the CA certificate, read
# the claim (encoding/asn1 UTF8String) and the URI SAN; parse the CRL and
# check its signature.
mkdir -p "$T/go"
cat >"$T/go/main.go" <<'GO'
package main

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

func load(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	p, _ := pem.Decode(b)
	if p == nil {
		fail("%s: no PEM", path)
	}
	return p.Bytes
}

func fail(f string, a ...interface{}) {
	fmt.Printf("FAIL "+f+"\n", a...)
	os.Exit(1)
}

func main() {
	listing, bundle, crlfile, serial, oldSerial, oidtxt := os.Args[1],
		os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	ca, err := x509.ParseCertificate(load(bundle))
	if err != nil {
		fail("CA certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	b, _ := os.ReadFile(listing)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		name, path, kind, id := f[0], f[1], f[2], f[3]
		c, err := x509.ParseCertificate(load(path))
		if err != nil {
			fail("%s: %v", name, err)
		}
		opts := x509.VerifyOptions{Roots: roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := c.Verify(opts); err != nil {
			fail("%s: %v", name, err)
		}
		got := "-"
		for _, e := range c.Extensions {
			if e.Id.String() != oidtxt {
				continue
			}
			var s string
			rest, err := asn1.UnmarshalWithParams(e.Value, &s, "utf8")
			if err != nil || len(rest) != 0 {
				fail("%s: claim %x: %v", name, e.Value, err)
			}
			got = s
		}
		if got != kind {
			fail("%s: claim %s, want %s", name, got, kind)
		}
		if id != "-" && (len(c.URIs) != 1 || c.URIs[0].String() != id) {
			fail("%s: URIs %v, want %s", name, c.URIs, id)
		}
		fmt.Println("ok", name, got)
	}
	crl, err := x509.ParseRevocationList(load(crlfile))
	if err != nil {
		fail("CRL: %v", err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		fail("CRL signature: %v", err)
	}
	found, superseded := false, false
	for _, r := range crl.RevokedCertificates {
		sn := fmt.Sprintf("%X", r.SerialNumber)
		if sn == strings.TrimLeft(serial, "0") {
			found = true
		}
		if sn != strings.TrimLeft(oldSerial, "0") {
			continue
		}
		for _, e := range r.Extensions {
			var code asn1.Enumerated
			if e.Id.String() != "2.5.29.21" {
				continue
			}
			if _, err := asn1.Unmarshal(e.Value, &code); err != nil {
				fail("CRL reason: %v", err)
			}
			superseded = code == 4
		}
	}
	if !found || !superseded {
		fail("CRL: %s listed %v, %s superseded %v", serial, found,
			oldSerial, superseded)
	}
	fmt.Println("ok crl")
}
GO
# Go's build cache and module mode need a writable home: keep them in $T.
export GOCACHE="$T/go/cache" GOPATH="$T/go/path" GO111MODULE=off GOFLAGS=
(cd "$T/go" && go build -o x509check main.go) >"$T/go.build" 2>&1 ||
    fail "go build: $(tail -3 "$T/go.build")"
"$T/go/x509check" "$T/certs.list" "$BOTID_CA_CERT" "$T/crl.pem" "$p11_serial" \
    "$old_serial" "$OID" >"$T/go.out" 2>&1 || fail "Go crypto/x509: $(tail -3 "$T/go.out")"
[ "$(grep -c '^ok ' "$T/go.out")" -eq 7 ] || fail "Go crypto/x509: $(cat "$T/go.out")"

# ---- botid's own readers: verify-cert --require-tpm reads the claim of
# a TPM bot and refuses a PKCS#11 bot's.
for b in $BOTS; do
	rc=0
	"$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --require-tpm \
	    "$T/$b.chain" >"$T/vc.$b" 2>&1 || rc=$?
	case $b in
	tpm-*)	[ "$rc" -eq 0 ] || fail "verify-cert --require-tpm refuses $b: $(cat "$T/vc.$b")";;
	*)	[ "$rc" -ne 0 ] || fail "verify-cert --require-tpm accepts $b"
		grep -q 'not attested as TPM-resident (attestation: pkcs11)' "$T/vc.$b" ||
		    fail "$b: unexpected refusal: $(cat "$T/vc.$b")";;
	esac
done

# ---- Certificates as botid-ca wrote them before, the claim under the
# 2.25 UUID OID: signed here with the CA's key for tpm-ec's key and name.
# Every stack above refuses them (so each check above can fail), and
# botid's readers still accept them during the transition; a certificate
# with the claim under both OIDs is refused.
# old_cert NAME EXTENSION-LINES...: a leaf like tpm-ec's, with those lines.
old_cert() {
	local name=$1
	shift
	{
		echo "basicConstraints = critical,CA:FALSE"
		echo "keyUsage = critical,digitalSignature"
		echo "extendedKeyUsage = clientAuth,serverAuth"
		echo "subjectAltName = URI:spiffe://$TD/host/$host_id/bot/tpm-ec"
		for l in "$@"; do echo "$l"; done
	} >"$T/$name.ext"
	# Any key signs the request: -force_pubkey puts tpm-ec's in.
	openssl req -new -key "$T/ca/ca.key" -subj /CN=tpm-ec \
	    -out "$T/$name.csr" 2>"$T/$name.err" || fail "$name: $(cat "$T/$name.err")"
	openssl x509 -req -in "$T/$name.csr" -force_pubkey "$T/tpm-ec.pub.pem" \
	    -CA "$BOTID_CA_CERT" -CAkey "$T/ca/ca.key" -days 1 \
	    -set_serial "0x$(openssl rand -hex 15)" -extfile "$T/$name.ext" \
	    -out "$T/$name.pem" 2>"$T/$name.err" || fail "$name: $(cat "$T/$name.err")"
	cat "$T/$name.pem" "$BOTID_CA_CERT" >"$T/$name.chain"
}
openssl x509 -in "$T/tpm-ec.leaf.pem" -noout -pubkey >"$T/tpm-ec.pub.pem"
old_cert old "$OLD_OID = ASN1:UTF8String:tpm"
old_cert both "$OLD_OID = ASN1:UTF8String:tpm" "$OID = ASN1:UTF8String:tpm"
old_cert new "$OID = ASN1:UTF8String:tpm"
[ "$(openssl asn1parse -in "$T/old.pem" | grep -c "$OLD_OID")" -gt 0 ] ||
    fail "old: no old OID"
check "$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --require-tpm "$T/old.chain"
check "$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --require-tpm "$T/new.chain"
out=$("$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --require-tpm "$T/both.chain" 2>&1) &&
    fail "verify-cert accepts a certificate with two claims"
case $out in *"malformed attestation extension"*) ;;
*) fail "two claims: unexpected refusal: $out";; esac
# The same certificate with the new OID passes where the old one fails.
check certtool -i --infile "$T/new.pem" >/dev/null
out=$(certtool -i --infile "$T/old.pem" 2>&1) && fail "certtool parses the old OID"
case $out in *"Error in DER parsing"*) ;; *) fail "certtool: $out";; esac
printf 'old %s tpm spiffe://%s/host/%s/bot/tpm-ec\n' "$T/old.pem" "$TD" "$host_id" \
    >"$T/old.list"
printf 'new %s tpm spiffe://%s/host/%s/bot/tpm-ec\n' "$T/new.pem" "$TD" "$host_id" \
    >"$T/new.list"
for l in new old; do
	rc=0
	"$DEBPY" -c 'import sys
from cryptography import x509
c = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
print([e.oid.dotted_string for e in c.extensions])' "$T/$l.pem" >"$T/py.$l" 2>&1 || rc=$?
	if [ $l = new ]; then
		[ "$rc" -eq 0 ] || fail "python3-cryptography: new: $(tail -1 "$T/py.$l")"
	else
		[ "$rc" -ne 0 ] || fail "python3-cryptography 38 parses the old OID"
		grep -q 'Extension::extn_id' "$T/py.$l" || fail "python3-cryptography: $(tail -1 "$T/py.$l")"
	fi
	rc=0
	"$T/go/x509check" "$T/$l.list" "$BOTID_CA_CERT" "$T/crl.pem" "$p11_serial" \
	    "$old_serial" "$OID" >"$T/go.$l" 2>&1 || rc=$?
	if [ $l = new ]; then
		grep -q '^ok new tpm$' "$T/go.$l" || fail "Go: new: $(cat "$T/go.$l")"
	else
		[ "$rc" -ne 0 ] || fail "Go parses the old OID"
		grep -q 'malformed extension OID' "$T/go.$l" || fail "Go: old: $(cat "$T/go.$l")"
	fi
done

# ---- mTLS with GnuTLS: gnutls-cli takes each bot's key through
# botid-pkcs11.so (a PKCS#11 URL) and the chain botid-ca issued; s_server
# requires a client certificate chaining to the botid-ca bundle, and prints
# the one it accepted, whose URI SAN is the bot's SPIFFE ID.
# In a sanitizer build the module is ASan-instrumented, and gnutls-cli
# loads it only with the ASan runtime preloaded, under which gnutls-cli
# never exits after its session (with or without the module; curl does
# the same, see pkcs11-module.sh). The handshakes run in the normal build,
# which CI runs too; the sanitizer build has checked everything above.
if [ -n "${BOTID_SANITIZER_PRELOAD:-}" ]; then
	echo "sanitizer build: the handshakes through botid-pkcs11.so are not run here"
	exit 0
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$T/server.key" -out "$T/server.pem" 2>/dev/null ||
    fail "server certificate"
free_port() {
	"$DEBPY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
# s_server quits at the end of its input: give it one that stays open.
mkfifo "$T/server.in"
exec 3<>"$T/server.in"
# gnutls_handshake BOT CERT: fails like the handshake.
gnutls_handshake() {
	local b=$1 cert=$2 port srv pid rc=0
	port=$(free_port)
	srv="$T/server.$b.out"
	rm -f "$srv"
	openssl s_server -accept "127.0.0.1:$port" -cert "$T/server.pem" \
	    -key "$T/server.key" -Verify 1 -verify_return_error \
	    -CAfile "$BOTID_CA_BUNDLE" -tls1_3 -naccept 1 \
	    <"$T/server.in" >"$srv" 2>&1 &
	pid=$!
	register_pid "$pid"
	for _ in $(seq 1 100); do
		grep -q '^ACCEPT' "$srv" && break
		sleep 0.1
	done
	echo hello | gnutls-cli --provider "$MODULE" \
	    --x509keyfile "pkcs11:token=botid;object=$b;type=private" \
	    --x509certfile "$cert" --x509cafile "$T/server.pem" \
	    --verify-hostname localhost \
	    --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3' -p "$port" 127.0.0.1 \
	    >"$T/gnutls.$b.out" 2>&1 || rc=$?
	# A client that never connected leaves the server waiting.
	[ "$rc" -eq 0 ] || kill "$pid" 2>/dev/null || true
	wait "$pid" || rc=1
	[ "$rc" -eq 0 ] || return 1
	# The handshake finished only if the server read the client's data.
	grep -q '^hello' "$srv" || return 1
	grep -q 'Description: (TLS1.3-X.509)' "$T/gnutls.$b.out" ||
	    fail "$b: not TLS 1.3: $(grep Description "$T/gnutls.$b.out")"
	grep -q 'Successfully sent 2 certificate(s) to server' "$T/gnutls.$b.out" ||
	    fail "$b: gnutls-cli did not send the bot's chain"
	# s_server checked the chain to the bundle: the leaf at depth 0.
	grep -A1 '^depth=0 ' "$srv" | grep -q '^verify return:1$' ||
	    fail "$b: s_server did not verify the bot's certificate"
}
for b in $BOTS; do
	gnutls_handshake "$b" "$T/$b.chain" ||
	    fail "$b: gnutls-cli mTLS failed: $(grep -i -m3 'error\|fail' "$T/gnutls.$b.out" "$T/server.$b.out")"
	sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/p' \
	    "$T/server.$b.out" >"$T/seen.$b.pem"
	[ -s "$T/seen.$b.pem" ] || fail "$b: the server printed no client certificate"
	openssl x509 -in "$T/seen.$b.pem" -noout -ext subjectAltName >"$T/seen.$b.san"
	grep -q "URI:spiffe://$TD/host/$host_id/bot/$b\$" "$T/seen.$b.san" ||
	    fail "$b: the server did not see the bot's SPIFFE ID: $(cat "$T/seen.$b.san")"
	cmp -s <(openssl x509 -in "$T/seen.$b.pem" -outform DER) \
	    <(openssl x509 -in "$T/$b.leaf.pem" -outform DER) ||
	    fail "$b: the server saw another certificate"
done
# With the claim under the old OID, the same key and a chain the server
# would accept: gnutls-cli refuses to load the certificate, so no
# handshake; under the new OID it completes.
! gnutls_handshake tpm-ec "$T/old.chain" || fail "gnutls-cli used the old OID"
grep -q 'Error in DER parsing' "$T/gnutls.tpm-ec.out" ||
    fail "gnutls-cli, old OID: $(head -3 "$T/gnutls.tpm-ec.out")"
! grep -q '^hello' "$T/server.tpm-ec.out" || fail "the server read data"
gnutls_handshake tpm-ec "$T/new.chain" ||
    fail "gnutls-cli with the new OID: $(grep -i -m3 'error' "$T/gnutls.tpm-ec.out")"

# ---- Go's crypto/tls on both ends. As a client: each bot's key through
# botid-pkcs11.so by crypto11 (Debian's golang-github-thalesignite-
# crypto11-dev), against the same s_server. As a server requiring a client
# certificate from the botid-ca bundle: gnutls-cli through the module
# connects, and the server prints the SPIFFE ID it verified.
mkdir -p "$T/go/tlsclient" "$T/go/tlsserver"
cat >"$T/go/tlsclient/main.go" <<'GO'
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/ThalesIgnite/crypto11"
)

func fail(f string, a ...interface{}) {
	fmt.Printf("FAIL "+f+"\n", a...)
	os.Exit(1)
}

func main() {
	module, bot, chain, serverCA, addr := os.Args[1], os.Args[2], os.Args[3],
		os.Args[4], os.Args[5]
	// The token needs no login: the agent decides by peer credentials.
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module,
		TokenLabel: "botid", LoginNotSupported: true})
	if err != nil {
		fail("crypto11: %v", err)
	}
	defer ctx.Close()
	key, err := ctx.FindKeyPair(nil, []byte(bot))
	if err != nil || key == nil {
		fail("no key labelled %s: %v", bot, err)
	}
	var cert tls.Certificate
	rest, _ := os.ReadFile(chain)
	for {
		var p *pem.Block
		if p, rest = pem.Decode(rest); p == nil {
			break
		}
		cert.Certificate = append(cert.Certificate, p.Bytes)
	}
	cert.PrivateKey = key
	roots := x509.NewCertPool()
	b, _ := os.ReadFile(serverCA)
	if !roots.AppendCertsFromPEM(b) {
		fail("no server CA")
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost",
		RootCAs: roots, Certificates: []tls.Certificate{cert},
		MinVersion: tls.VersionTLS13})
	if err != nil {
		fail("handshake: %v", err)
	}
	if _, err := c.Write([]byte("hello\n")); err != nil {
		fail("write: %v", err)
	}
	c.Close()
	fmt.Println("ok", bot)
}
GO
cat >"$T/go/tlsserver/main.go" <<'GO'
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
)

func fail(f string, a ...interface{}) {
	fmt.Printf("FAIL "+f+"\n", a...)
	os.Exit(1)
}

// Accepts one connection on 127.0.0.1:0 (the port goes to a file), requires
// a client certificate chaining to the bundle, prints its SPIFFE ID and
// the first line the client sent.
func main() {
	bundle, certFile, keyFile, portFile := os.Args[1], os.Args[2], os.Args[3],
		os.Args[4]
	cas := x509.NewCertPool()
	b, _ := os.ReadFile(bundle)
	if !cas.AppendCertsFromPEM(b) {
		fail("no CA bundle")
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fail("server key: %v", err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{kp}, ClientCAs: cas,
		ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13})
	if err != nil {
		fail("listen: %v", err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(portFile+".tmp", []byte(port), 0600); err != nil {
		fail("%v", err)
	}
	os.Rename(portFile+".tmp", portFile)
	c, err := l.Accept()
	if err != nil {
		fail("accept: %v", err)
	}
	tc := c.(*tls.Conn)
	if err := tc.Handshake(); err != nil {
		fail("handshake: %v", err)
	}
	st := tc.ConnectionState()
	for _, u := range st.PeerCertificates[0].URIs {
		fmt.Println("peer", u.String())
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil {
		fail("read: %v", err)
	}
	fmt.Print("read ", line)
}
GO
# crypto11 and its dependencies are in Debian's GOPATH tree.
GOPATH="$GOPATH:/usr/share/gocode"
for p in tlsclient tlsserver; do
	(cd "$T/go/$p" && go build -o "../$p.bin" main.go) >"$T/go.$p.build" 2>&1 ||
	    fail "go build $p: $(tail -3 "$T/go.$p.build")"
done
# go_client BOT CERT: like gnutls_handshake, with the Go client.
go_client() {
	local b=$1 cert=$2 port srv pid rc=0
	port=$(free_port)
	srv="$T/server.$b.out"
	rm -f "$srv"
	openssl s_server -accept "127.0.0.1:$port" -cert "$T/server.pem" \
	    -key "$T/server.key" -Verify 1 -verify_return_error \
	    -CAfile "$BOTID_CA_BUNDLE" -tls1_3 -naccept 1 \
	    <"$T/server.in" >"$srv" 2>&1 &
	pid=$!
	register_pid "$pid"
	for _ in $(seq 1 100); do
		grep -q '^ACCEPT' "$srv" && break
		sleep 0.1
	done
	"$T/go/tlsclient.bin" "$MODULE" "$b" "$cert" "$T/server.pem" \
	    "127.0.0.1:$port" >"$T/goclient.$b.out" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || kill "$pid" 2>/dev/null || true
	wait "$pid" || rc=1
	[ "$rc" -eq 0 ] || return 1
	grep -q '^hello' "$srv" || return 1
}
for b in $BOTS; do
	go_client "$b" "$T/$b.chain" ||
	    fail "$b: Go client through the module: $(cat "$T/goclient.$b.out") $(grep -i -m3 'error' "$T/server.$b.out")"
	sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/p' \
	    "$T/server.$b.out" >"$T/seen.$b.pem"
	openssl x509 -in "$T/seen.$b.pem" -noout -ext subjectAltName |
	    grep -q "URI:spiffe://$TD/host/$host_id/bot/$b\$" ||
	    fail "$b: s_server did not see the bot's SPIFFE ID from the Go client"
done
# go_server BOT CERT: gnutls-cli through the module against the Go server.
go_server() {
	local b=$1 cert=$2 pid rc=0
	rm -f "$T/goserver.port"
	"$T/go/tlsserver.bin" "$BOTID_CA_CERT" "$T/server.pem" "$T/server.key" \
	    "$T/goserver.port" >"$T/goserver.$b.out" 2>&1 &
	pid=$!
	register_pid "$pid"
	for _ in $(seq 1 100); do
		[ -s "$T/goserver.port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$T/goserver.port" ] || fail "the Go server did not start: $(cat "$T/goserver.$b.out")"
	echo hello | gnutls-cli --provider "$MODULE" \
	    --x509keyfile "pkcs11:token=botid;object=$b;type=private" \
	    --x509certfile "$cert" --x509cafile "$T/server.pem" \
	    --verify-hostname localhost \
	    --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3' \
	    -p "$(cat "$T/goserver.port")" 127.0.0.1 \
	    >"$T/gnutls-go.$b.out" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || kill "$pid" 2>/dev/null || true
	wait "$pid" || rc=1
	return "$rc"
}
for b in $BOTS; do
	go_server "$b" "$T/$b.chain" ||
	    fail "$b: gnutls-cli to the Go server: $(cat "$T/goserver.$b.out") $(grep -i -m3 'error' "$T/gnutls-go.$b.out")"
	grep -qx "peer spiffe://$TD/host/$host_id/bot/$b" "$T/goserver.$b.out" ||
	    fail "$b: the Go server did not verify the bot's SPIFFE ID: $(cat "$T/goserver.$b.out")"
	grep -qx 'read hello' "$T/goserver.$b.out" || fail "$b: the Go server read nothing"
done
