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
# not give it, and then records no enrolment. By default the CA serves
# with a TLS key of its own, in a self-signed certificate, whose pin the
# join token carries: botid-provision and then the agent's CA client
# refuse a certificate chained to the CA with the CA's own name and no
# SPIFFE ID by the pin alone; a token whose pin is another key's is
# refused with nothing stored; a CA from before its TLS key keeps
# working, and warns. The pinned key is trusted whatever the server's
# name (localhost, which tls.pem does not name).
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
# A key is certified for one bot only: the second name gets a key of its own.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null |
    openssl pkey -pubout -outform DER -out "$T/evil-ip.spki" ||
    fail "openssl genpkey"
for name in ca.example 127.0.0.1; do
	spki=$T/evil.spki
	[ "$name" = ca.example ] || spki=$T/evil-ip.spki
	"$REQUESTS" "$T/state" "$BOTID_TCTI" pkcs11-body "$spki" \
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
openssl x509 -req -in "$T/old.csr" -CA "$BOTID_CA_CERT" \
    -CAkey "$T/ca/ca.key" -set_serial 7 -days 1 -extfile "$T/old.ext" \
    -out "$T/old.pem" 2>/dev/null || fail "openssl x509 -req"
serve "$T/old.pem" -www
check curl -sS -o /dev/null --cacert "$BOTID_CA_BUNDLE" \
    "https://127.0.0.1:$SRV_PORT/"
kill "$SRV_PID" 2>/dev/null || true
wait "$SRV_PID" 2>/dev/null || true
serve "$T/old.pem"
# A victim host provisions against the impostor with a token without the
# CA's pin (as from a CA from before its TLS key; the part after the dot
# cut off): refused at the handshake by the SPIFFE ID, the bundle alone.
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m | cut -d. -f1 >"$T/token-v"
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
# of the /v1/activate answer for a certificate of its own choosing. The
# tokens carry no pin here (a pinned token refuses the proxy at once).
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
	"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m | cut -d. -f1 \
	    >"$T/token-$1"
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
[ ! -e "$T/state-honest/attest/ca-tls-pin" ] ||
    fail "a token without a pin saved one"
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

# --- A CA from before its TLS key keeps working, and says how to move on --
mkdir -p "$T/old-ca"
sed "s|$T/ca/|$T/old-ca/|g; s|^listen *=.*|listen = 127.0.0.1:0|" \
    "$BOTID_CA_CONF" >"$T/old-ca/ca.conf"
grep -q "$T/old-ca/ca.pem" "$T/old-ca/ca.conf" || fail "old-ca: no ca_cert"
"$CA" init -c "$T/old-ca/ca.conf" >/dev/null || fail "old-ca: init"
rm "$T/old-ca/tls.key" "$T/old-ca/tls.pem"
"$CA" serve -c "$T/old-ca/ca.conf" --port-file "$T/old-ca/port" \
    2>"$T/old-ca/log" &
register_pid "$!"
wait_file "$T/old-ca/port" "$!" || fail "old-ca: $(cat "$T/old-ca/log")"
grep -q "no TLS key $T/old-ca/tls.key: the CA key issues the TLS certificate.*run botid-ca init" \
    "$T/old-ca/log" || fail "old-ca: no warning: $(cat "$T/old-ca/log")"
expect_fail "$CA" tls-pin -c "$T/old-ca/ca.conf"
"$CA" token create -c "$T/old-ca/ca.conf" --ttl 10m >"$T/token-o"
grep -qx '[0-9a-f]*' "$T/token-o" || fail "old-ca: the token has a pin: $(cat "$T/token-o")"
conf_for o
check "$PROVISION" -c "$T/agent-o.conf" \
    --ca "https://127.0.0.1:$(cat "$T/old-ca/port")" \
    --ca-bundle "$T/old-ca/ca.pem" --join-token-file "$T/token-o"
[ ! -e "$T/state-o/attest/ca-tls-pin" ] || fail "old-ca: a pin was saved"

# --- By default the CA's TLS key is its own, and agents pin it -------------
# botid-ca init made tls.key (0600) and tls.pem, self-signed: the CA key
# never signed it, and it is the certificate the CA serves.
[ "$(stat -c %a "$T/ca/tls.key")" = 600 ] ||
    fail "tls.key mode $(stat -c %a "$T/ca/tls.key"), not 600"
expect_fail openssl verify -CAfile "$BOTID_CA_CERT" "$T/ca/tls.pem"
check openssl verify -CAfile "$T/ca/tls.pem" -purpose sslserver \
    -verify_ip 127.0.0.1 "$T/ca/tls.pem"
{ openssl s_client -connect "${BOTID_CA_URL#https://}" </dev/null 2>/dev/null || true; } \
    >"$T/s_client.out"
openssl x509 -in "$T/s_client.out" -outform DER -out "$T/served.der" ||
    fail "no server certificate: $(cat "$T/s_client.out")"
openssl x509 -in "$T/ca/tls.pem" -outform DER -out "$T/tls.der" ||
    fail "openssl x509"
cmp -s "$T/served.der" "$T/tls.der" || fail "the CA does not serve tls.pem"
pin=$("$CA" tls-pin -c "$BOTID_CA_CONF") || fail "botid-ca tls-pin"
served_pin="sha256//$(openssl x509 -in "$T/ca/tls.pem" -noout -pubkey |
    openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64)"
[ "$served_pin" = "$pin" ] || fail "tls-pin $pin is not the served key's $served_pin"
# The join token carries the pin after a dot.
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-p"
[ "$(cut -d. -f2- "$T/token-p")" = "$pin" ] ||
    fail "the join token does not carry the pin: $(cat "$T/token-p")"

# A certificate chained to the issuing CA with the CA's own name and no
# SPIFFE ID (made here with the CA key, as a stolen or mis-issued one),
# served at the address the host uses: the bundle and the name pass,
# the token's pin does not. The host's bundle is the CA certificate
# alone (what an operator copies); nothing more was given.
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n' \
    >"$T/named.ext"
openssl req -new -key "$T/evil.key" -subj /CN=127.0.0.1 -out "$T/named.csr" ||
    fail "openssl req"
openssl x509 -req -in "$T/named.csr" -CA "$BOTID_CA_CERT" \
    -CAkey "$T/ca/ca.key" -set_serial 9 -days 1 -extfile "$T/named.ext" \
    -out "$T/named.pem" 2>/dev/null || fail "openssl x509 -req"
serve "$T/named.pem"
conf_for n
rc=0
"$PROVISION" -c "$T/agent-n.conf" --ca "https://127.0.0.1:$SRV_PORT" \
    --ca-bundle "$BOTID_CA_CERT" --join-token-file "$T/token-p" \
    >"$T/prov-n.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "provision against the CA-named impostor: exit $rc, not 4: $(cat "$T/prov-n.out")"
grep -q "the server's key is not the pinned CA TLS key" "$T/prov-n.out" ||
    fail "CA-named impostor: unclear refusal: $(cat "$T/prov-n.out")"
[ ! -e "$T/state-n/attest/host.json" ] || fail "enrolled with the impostor"
[ ! -e "$T/state-n/attest/ca-tls-pin" ] || fail "a pin was saved"
if grep -qF "$(cut -d. -f1 "$T/token-p")" "$T/srv.out"; then
	fail "the join token reached the impostor"
fi
kill "$SRV_PID" 2>/dev/null || true
wait "$SRV_PID" 2>/dev/null || true

# A token whose pin is another key's: refused at the real CA's handshake,
# nothing stored, and the token never sent (it enrols below).
other_pin="sha256//$(openssl pkey -in "$T/evil.key" -pubout -outform DER |
    openssl dgst -sha256 -binary | base64)"
printf '%s.%s\n' "$(cut -d. -f1 "$T/token-p")" "$other_pin" >"$T/token-w"
conf_for p
rc=0
"$PROVISION" -c "$T/agent-p.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_CERT" --join-token-file "$T/token-w" \
    >"$T/prov-w.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "a wrong pin: exit $rc, not 4: $(cat "$T/prov-w.out")"
grep -q "the server's key is not the pinned CA TLS key" "$T/prov-w.out" ||
    fail "a wrong pin: unclear refusal: $(cat "$T/prov-w.out")"
[ ! -e "$T/state-p/attest/host.json" ] || fail "enrolled despite a wrong pin"
[ ! -e "$T/state-p/attest/ca-tls-pin" ] || fail "a wrong pin was saved"
[ ! -e "$T/state-p/attest/ca-bundle.pem" ] || fail "a bundle was saved"
# A malformed pin, and --ca-pin that is not the token's: usage errors.
printf '%s.sha256//nope\n' "$(cut -d. -f1 "$T/token-p")" >"$T/token-m"
rc=0
"$PROVISION" -c "$T/agent-p.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_CERT" --join-token-file "$T/token-m" \
    >"$T/prov-m.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "a malformed pin: exit $rc, not 2"
rc=0
"$PROVISION" -c "$T/agent-p.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_CERT" --ca-pin "$other_pin" \
    --join-token-file "$T/token-p" >"$T/prov-c.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--ca-pin not the token's: exit $rc, not 2"
grep -q -- "--ca-pin is not the pin the join token carries" "$T/prov-c.out" ||
    fail "--ca-pin not the token's: unclear refusal: $(cat "$T/prov-c.out")"
[ ! -e "$T/state-p/attest/host.json" ] || fail "enrolled after a usage error"

# The right pin, from the token alone: enrolled with the CA certificate
# as the only bundle, and the pin saved for the agent.
check "$PROVISION" -c "$T/agent-p.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_CERT" --join-token-file "$T/token-p"
[ "$(cat "$T/state-p/attest/ca-tls-pin")" = "$pin" ] || fail "the pin was not saved"
cmp -s "$BOTID_CA_CERT" "$T/state-p/attest/ca-bundle.pem" ||
    fail "the saved bundle is not the one given"
mkdir -p "$T/pr"
check "$REQUESTS" "$T/state-p" "$BOTID_TCTI" 1 "$T/pr" pinned-bot
# The pinned key is the CA's identity, not its name: at https://localhost
# (tls.pem names 127.0.0.1 only), curl refuses the name, the pinned client
# goes on.
port=${BOTID_CA_URL##*:}
expect_fail curl -sS -o /dev/null --cacert "$BOTID_CA_BUNDLE" \
    "https://localhost:$port/v1/health/live"
cp -r "$T/state-p" "$T/state-l"
sed -i "s|$BOTID_CA_URL|https://localhost:$port|" "$T/state-l/attest/host.json"
grep -q "localhost:$port" "$T/state-l/attest/host.json" || fail "cannot rename the CA"
mkdir -p "$T/pl"
check "$REQUESTS" "$T/state-l" "$BOTID_TCTI" 1 "$T/pl" pinned-bot
# The agent's CA client (renewal) against the CA-named certificate at
# the address it was enrolled with: refused by the pin.
serve "$T/named.pem" -www
cp -r "$T/state-p" "$T/state-p2"
sed -i "s|$BOTID_CA_URL|https://127.0.0.1:$SRV_PORT|" "$T/state-p2/attest/host.json"
grep -q "127.0.0.1:$SRV_PORT" "$T/state-p2/attest/host.json" || fail "cannot redirect the host"
mkdir -p "$T/pr2"
rc=0
"$REQUESTS" "$T/state-p2" "$BOTID_TCTI" 1 "$T/pr2" pinned-bot >"$T/pr2.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "the agent's CA client took the impostor"
grep -q "the server's key is not the pinned CA TLS key" "$T/pr2.out" ||
    fail "impostor with the CA's name: unclear refusal: $(cat "$T/pr2.out")"
[ -z "$(ls "$T/pr2")" ] || fail "a request was made with the impostor: $(ls "$T/pr2")"
# The chain and the name pass for a client without the pin (curl); the
# pin alone refuses it.
check curl -sS -o /dev/null --cacert "$BOTID_CA_CERT" "https://127.0.0.1:$SRV_PORT/"
rc=0
curl -sS -o /dev/null --cacert "$BOTID_CA_CERT" --pinnedpubkey "$pin" \
    "https://127.0.0.1:$SRV_PORT/" 2>/dev/null || rc=$?
[ "$rc" -eq 90 ] || fail "curl --pinnedpubkey: exit $rc, not 90 (pin mismatch)"
kill "$SRV_PID" 2>/dev/null || true
wait "$SRV_PID" 2>/dev/null || true

echo "ca-identity: ok"
