#!/bin/bash
# An enrolled host cannot pass as botid-ca (issue 21, point 1). The host,
# controlled by an attacker, has its host key vouch for a software key as
# a bot named like the CA ("ca.example", "127.0.0.1"). The certificate the
# CA issues has an empty subject and the SPIFFE ID as its only name: it
# matches no host name (openssl verify -verify_hostname/-verify_ip, curl).
# A certificate of the old shape (CN = the bot name, chained to the CA, as
# issued before the fix) serving TLS at the CA's address is refused by the
# agent's CA client, and no join token reaches it. botid-provision refuses
# an /v1/activate answer whose bundle names a certificate the operator did
# not give it, and then records no enrolment. With tls_key, agents pin the
# CA's TLS key (botid provision --ca-pin): a wrong pin is refused, and a
# certificate chained to the CA with the CA's own name and no SPIFFE ID is
# refused by the pin alone.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"
PROVISION="$top_builddir/tools/botid-provision"
PROXY="$top_srcdir/tests/integration/ca-bundle-proxy.py"
start_ca ca "$BOTID_EK_CA_CHAIN"

# post PATH BODY-FILE: prints the status; the body goes to $T/body.
post() {
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -H 'Content-Type: application/json' --data-binary "@$2" \
	    "$BOTID_CA_URL$1"
}
free_port() {
	"$PYTHON3" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
# wait_file FILE PID: until FILE is not empty, while PID lives.
wait_file() {
	for _ in $(seq 1 600); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# conf_for NAME: an agent configuration with its own state directory.
conf_for() {
	sed "s|^state_dir *=.*|state_dir = $T/state-$1|" "$AGENT_CONF" \
	    >"$T/agent-$1.conf"
}

# The attacker's host, enrolled with a token for any bot name.
agent_conf_begin
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$T/evil.key" 2>/dev/null || fail "openssl genpkey"
openssl pkey -in "$T/evil.key" -pubout -outform DER -out "$T/evil.spki" ||
    fail "openssl pkey"
for name in ca.example 127.0.0.1; do
	"$REQUESTS" "$T/state" "$BOTID_TCTI" pkcs11-body "$T/evil.spki" \
	    "$name" "$T/c-$name.json" >"$T/req.out" 2>&1 ||
	    fail "ca-certify-requests pkcs11-body: $(cat "$T/req.out")"
	[ "$(post /v1/certify "$T/c-$name.json")" = 200 ] ||
	    fail "certify $name: $(cat "$T/body")"
	"$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["chain"], end="")' \
	    "$T/body" >"$T/evil-$name.pem"
	openssl x509 -in "$T/evil-$name.pem" -noout -subject -nameopt RFC2253 \
	    >"$T/subject" || fail "openssl x509"
	[ "$(cat "$T/subject")" = "subject=" ] ||
	    fail "bot $name: the certificate has a subject: $(cat "$T/subject")"
	openssl x509 -in "$T/evil-$name.pem" -noout -ext subjectAltName \
	    >"$T/san" || fail "openssl x509 -ext"
	grep -qx '    URI:spiffe://test.botid/host/'"$host_id"'/bot/'"$name" "$T/san" ||
	    fail "bot $name: not the SPIFFE ID: $(cat "$T/san")"
	grep -q 'critical' "$T/san" || fail "bot $name: the SAN is not critical"
	[ "$(grep -c ':' "$T/san")" -eq 2 ] ||
	    fail "bot $name: more names than the SPIFFE ID: $(cat "$T/san")"
done
# As a TLS server certificate for the CA's names, openssl refuses both.
expect_fail openssl verify -CAfile "$BOTID_CA_BUNDLE" -purpose sslserver \
    -verify_hostname ca.example "$T/evil-ca.example.pem"
expect_fail openssl verify -CAfile "$BOTID_CA_BUNDLE" -purpose sslserver \
    -verify_ip 127.0.0.1 "$T/evil-127.0.0.1.pem"
# The chain itself is good: only the name is refused.
check openssl verify -CAfile "$BOTID_CA_BUNDLE" -purpose sslclient \
    "$T/evil-ca.example.pem"
# The host certificate is for clients only.
expect_fail openssl verify -CAfile "$BOTID_CA_BUNDLE" -purpose sslserver \
    "$T/state/attest/host-cert.pem"

# serve CERT [OPTION...]: s_server with the attacker's key and CERT on a
# free port of 127.0.0.1, echoing what it reads to $T/srv.out (or, with
# -www, answering GET /); sets SRV_PORT.
mkfifo "$T/srv.in"
exec 3<>"$T/srv.in"
serve() {
	SRV_PORT=$(free_port)
	rm -f "$T/srv.out"
	openssl s_server -accept "127.0.0.1:$SRV_PORT" -cert "$1" \
	    -key "$T/evil.key" -naccept 4 "${@:2}" <"$T/srv.in" >"$T/srv.out" 2>&1 &
	SRV_PID=$!
	register_pid "$SRV_PID"
	for _ in $(seq 1 100); do
		grep -q '^ACCEPT' "$T/srv.out" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "s_server did not start: $(cat "$T/srv.out")"
}
# A new certificate named ca.example at ca.example's address: no client
# takes it for the server.
serve "$T/evil-ca.example.pem" -www
expect_fail curl -sS --cacert "$BOTID_CA_BUNDLE" \
    --resolve "ca.example:$SRV_PORT:127.0.0.1" "https://ca.example:$SRV_PORT/"
kill "$SRV_PID" 2>/dev/null || true
wait "$SRV_PID" 2>/dev/null || true

# A certificate of the old shape, CN = the bot name chained to the CA, as
# the CA issued before this fix (made here with the CA's key). curl takes
# it for 127.0.0.1; the agent's CA client does not.
printf 'subjectAltName=URI:spiffe://test.botid/host/%s/bot/127.0.0.1\nextendedKeyUsage=clientAuth,serverAuth\nbasicConstraints=critical,CA:FALSE\n' \
    "$host_id" >"$T/old.ext"
openssl req -new -key "$T/evil.key" -subj /CN=127.0.0.1 -out "$T/old.csr" ||
    fail "openssl req"
openssl x509 -req -in "$T/old.csr" -CA "$BOTID_CA_BUNDLE" \
    -CAkey "$T/ca/ca.key" -set_serial 7 -days 1 -extfile "$T/old.ext" \
    -out "$T/old.pem" 2>/dev/null || fail "openssl x509 -req"
serve "$T/old.pem" -www
check curl -sS -o /dev/null --cacert "$BOTID_CA_BUNDLE" \
    "https://127.0.0.1:$SRV_PORT/"
kill "$SRV_PID" 2>/dev/null || true
wait "$SRV_PID" 2>/dev/null || true
serve "$T/old.pem"
# A victim host provisions against the impostor: refused at the handshake.
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-v"
conf_for v
rc=0
"$PROVISION" -c "$T/agent-v.conf" --ca "https://127.0.0.1:$SRV_PORT" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-v" \
    >"$T/prov-v.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "provision against the impostor: exit $rc, not 4: $(cat "$T/prov-v.out")"
grep -q "the server's certificate names a SPIFFE ID: a host or bot certificate, not the CA's" \
    "$T/prov-v.out" || fail "provision: unclear refusal: $(cat "$T/prov-v.out")"
[ ! -e "$T/state-v/attest/host.json" ] || fail "the victim recorded an enrolment"
if grep -qF "$(cat "$T/token-v")" "$T/srv.out"; then
	fail "the join token reached the impostor"
fi
kill "$SRV_PID" 2>/dev/null || true
wait "$SRV_PID" 2>/dev/null || true

# A man in the middle that the operator's bundle lets through (its own
# certificate is in the bundle given, next to the CA's) swaps the bundle
# of the /v1/activate answer for a certificate of its own choosing.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 1 -subj /CN=proxy -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$T/proxy.key" -out "$T/proxy.pem" 2>/dev/null ||
    fail "proxy certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 1 -subj /CN=rogue-ca -keyout "$T/rogue.key" -out "$T/rogue.pem" \
    2>/dev/null || fail "rogue certificate"
cat "$BOTID_CA_BUNDLE" "$T/proxy.pem" >"$T/given.pem"
# proxy NAME [SWAP]: provisions host NAME through the proxy; sets rc.
proxy() {
	local pid
	rm -f "$T/proxy-port"
	"$PYTHON3" "$PROXY" "$BOTID_CA_URL" "$BOTID_CA_BUNDLE" "$T/proxy.pem" \
	    "$T/proxy.key" "$T/proxy-port" "${@:2}" 2>"$T/proxy.err" &
	pid=$!
	register_pid "$pid"
	wait_file "$T/proxy-port" "$pid" || fail "proxy: $(cat "$T/proxy.err")"
	"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-$1"
	conf_for "$1"
	rc=0
	"$PROVISION" -c "$T/agent-$1.conf" \
	    --ca "https://127.0.0.1:$(cat "$T/proxy-port")" \
	    --ca-bundle "$T/given.pem" --join-token-file "$T/token-$1" \
	    >"$T/prov-$1.out" 2>&1 || rc=$?
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
# Passed on unchanged, the answer is taken: the proxy works.
proxy honest
[ "$rc" -eq 0 ] || fail "provision through the honest proxy: exit $rc: $(cat "$T/prov-honest.out")"
cmp -s "$T/given.pem" "$T/state-honest/attest/ca-bundle.pem" ||
    fail "the saved bundle is not the one given"
# Swapped, it is refused and nothing is recorded.
proxy swap "$T/rogue.pem"
[ "$rc" -eq 3 ] || fail "provision with a swapped bundle: exit $rc, not 3: $(cat "$T/prov-swap.out")"
grep -q "activation: the CA answered with a bundle other than $T/given.pem: not enrolled" \
    "$T/prov-swap.out" || fail "swapped bundle: unclear refusal: $(cat "$T/prov-swap.out")"
[ ! -e "$T/state-swap/attest/host.json" ] || fail "the swapped bundle was enrolled"
[ ! -e "$T/state-swap/attest/ca-bundle.pem" ] || fail "the swapped bundle was saved"
if grep -q 'BEGIN' "$T/state-swap/attest/ca-bundle.pem" 2>/dev/null; then
	fail "a bundle was saved"
fi

# --- A CA whose TLS key agents pin (tls_key, botid-ca tls-pin) ------------
start_ca pinned "$BOTID_EK_CA_CHAIN" "tls_key = $T/pinned/tls.key"
pin=$("$CA" tls-pin -c "$BOTID_CA_CONF") || fail "botid-ca tls-pin"
# The pin is the key the CA serves with, computed by openssl.
# (s_client's own exit status says nothing here: its output is checked.)
{ openssl s_client -connect "${BOTID_CA_URL#https://}" </dev/null 2>/dev/null || true; } \
    >"$T/s_client.out"
openssl x509 -in "$T/s_client.out" -noout -pubkey >"$T/served.pub" ||
    fail "no server certificate: $(cat "$T/s_client.out")"
openssl pkey -pubin -in "$T/served.pub" -outform DER |
    openssl dgst -sha256 -binary | base64 >"$T/served-pin"
[ "sha256//$(cat "$T/served-pin")" = "$pin" ] ||
    fail "tls-pin $pin is not the served key's $(cat "$T/served-pin")"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-p"
conf_for p
expect_fail "$PROVISION" -c "$T/agent-p.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --ca-pin not-a-pin --join-token-file "$T/token-p"
# A wrong pin: refused at the handshake, nothing recorded.
other_pin="sha256//$(openssl pkey -in "$T/evil.key" -pubout -outform DER |
    openssl dgst -sha256 -binary | base64)"
rc=0
"$PROVISION" -c "$T/agent-p.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --ca-pin "$other_pin" \
    --join-token-file "$T/token-p" >"$T/prov-p0.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "a wrong pin: exit $rc, not 4: $(cat "$T/prov-p0.out")"
grep -q "the server's key is not the pinned CA TLS key" "$T/prov-p0.out" ||
    fail "a wrong pin: unclear refusal: $(cat "$T/prov-p0.out")"
[ ! -e "$T/state-p/attest/host.json" ] || fail "enrolled despite a wrong pin"
# The right pin: enrolled, and the pin saved for the agent.
check "$PROVISION" -c "$T/agent-p.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --ca-pin "$pin" --join-token-file "$T/token-p"
[ "$(cat "$T/state-p/attest/ca-tls-pin")" = "$pin" ] || fail "the pin was not saved"
mkdir -p "$T/pr"
check "$REQUESTS" "$T/state-p" "$BOTID_TCTI" 1 "$T/pr" pinned-bot
# A certificate the CA issued with the CA's own name and no SPIFFE ID
# (here made with the CA key), at the address the agent uses: the chain
# and the name pass, the pin does not.
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n' \
    >"$T/named.ext"
openssl req -new -key "$T/evil.key" -subj /CN=127.0.0.1 -out "$T/named.csr" ||
    fail "openssl req"
openssl x509 -req -in "$T/named.csr" -CA "$BOTID_CA_BUNDLE" \
    -CAkey "$T/pinned/ca.key" -set_serial 9 -days 1 -extfile "$T/named.ext" \
    -out "$T/named.pem" 2>/dev/null || fail "openssl x509 -req"
serve "$T/named.pem" -www
check curl -sS -o /dev/null --cacert "$BOTID_CA_BUNDLE" "https://127.0.0.1:$SRV_PORT/"
cp -r "$T/state-p" "$T/state-p2"
sed -i "s|$BOTID_CA_URL|https://127.0.0.1:$SRV_PORT|" "$T/state-p2/attest/host.json"
grep -q "127.0.0.1:$SRV_PORT" "$T/state-p2/attest/host.json" || fail "cannot redirect the host"
mkdir -p "$T/pr2"
rc=0
"$REQUESTS" "$T/state-p2" "$BOTID_TCTI" 1 "$T/pr2" pinned-bot >"$T/pr2.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "the agent's CA client took the impostor"
grep -q "the server's key is not the pinned CA TLS key" "$T/pr2.out" ||
    fail "impostor with the CA's name: unclear refusal: $(cat "$T/pr2.out")"
# The chain and the name pass (curl above); the pin alone refuses it.
rc=0
curl -sS -o /dev/null --cacert "$BOTID_CA_BUNDLE" --pinnedpubkey "$pin" \
    "https://127.0.0.1:$SRV_PORT/" 2>/dev/null || rc=$?
[ "$rc" -eq 90 ] || fail "curl --pinnedpubkey: exit $rc, not 90 (pin mismatch)"
kill "$SRV_PID" 2>/dev/null || true
wait "$SRV_PID" 2>/dev/null || true
echo "ca-identity: ok"
