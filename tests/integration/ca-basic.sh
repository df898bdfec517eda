#!/bin/bash
# botid-ca on its own: the HTTP API refuses malformed, oversize and unknown
# requests with the documented status; bad evidence made by a real TPM is
# refused with its reason (replayed nonce, tampered attestation or
# signature, wrong nonce, key without fixedTPM, evidence for another key);
# the CRL lists revoked certificates and verifies; a CA whose key lives on
# a SoftHSM2 token issues certificates that verify; health and /metrics
# answer and count; processes opening a new database at once migrate it
# once. ca-postgres.sh runs it again against PostgreSQL (BOTID_TEST_PG).
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm ca-token
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
PROBE="$top_builddir/tests/integration/ca-evidence-probe"
PROVISION="$top_builddir/tools/botid-provision"
EK_CHAIN=$(fixture_var tpm BOTID_EK_CA_CHAIN)

start_ca ca "$EK_CHAIN"

# http METHOD PATH [BODY-FILE]: prints the status; the body goes to $T/body.
# With Expect: 100-continue the CA can refuse an oversize body before it is
# sent, instead of resetting a connection that is still uploading.
http() {
	local data=()
	[ $# -ge 3 ] && data=(-H 'Expect: 100-continue' --data-binary "@$3")
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -X "$1" -H 'Content-Type: application/json' "${data[@]}" \
	    "$BOTID_CA_URL$2"
}
expect_status() {
	local want=$1 got
	shift
	got=$(http "$@")
	[ "$got" = "$want" ] || fail "$*: HTTP $got, not $want: $(cat "$T/body")"
}

# The bundle is the CA certificate; the server's certificate chains to it.
expect_status 200 GET /v1/bundle
cmp -s "$T/body" "$BOTID_CA_BUNDLE" || fail "GET /v1/bundle is not the CA certificate"
# Health: live, and ready as the database answers.
expect_status 200 GET /v1/health/live
expect_status 200 GET /v1/health/ready
grep -q '"ready"' "$T/body" || fail "ready: unexpected body: $(cat "$T/body")"
expect_status 404 GET /v1/nothing
expect_status 405 GET /v1/enrol

printf 'not json' >"$T/bad1"
printf '{"host_id":"0123456789abcdef","extra":1}' >"$T/bad2"
printf '{"host_id":"0123456789abcdef","host_id":"0123456789abcdef"}' >"$T/bad3"
printf '{"join_token":"x","ek_cert":"%%%%","ek_public":"","ak_public":"","host_key_public":""}' >"$T/bad4"
printf '[1,2]' >"$T/bad5"
for f in bad1 bad2 bad3 bad5; do expect_status 400 POST /v1/nonce "$T/$f"; done
expect_status 400 POST /v1/enrol "$T/bad4"
grep -q 'not base64' "$T/body" || fail "bad base64: unclear reason: $(cat "$T/body")"
head -c 70000 /dev/zero | tr '\0' 'a' >"$T/big"
expect_status 413 POST /v1/nonce "$T/big"
printf '{"host_id":"0123456789abcdef"}' >"$T/nohost"
expect_status 403 POST /v1/nonce "$T/nohost"
grep -q 'unknown host' "$T/body" || fail "unknown host: unclear reason"

# /metrics counts those refusals by endpoint and reason.
expect_status 200 GET /metrics
for m in 'botid_ca_rejections_total{endpoint="nonce",reason="bad_request"} 4' \
    'botid_ca_rejections_total{endpoint="nonce",reason="forbidden"} 1' \
    'botid_ca_rejections_total{endpoint="other",reason="not_found"} 1' \
    'botid_ca_enrolments_total 0' 'botid_ca_database_up 1' \
    '# TYPE botid_ca_request_duration_seconds histogram'; do
	grep -qxF "$m" "$T/body" || fail "/metrics lacks '$m': $(cat "$T/body")"
done

# A host enrolled for any bot, then bad evidence from its TPM.
agent_conf_begin
agent_add_bot probe tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
"$PROBE" "$T/state" "$BOTID_TCTI" >"$T/probe.out" 2>&1 ||
    fail "evidence cases: $(cat "$T/probe.out")"
cat "$T/probe.out"
[ "$(grep -c '^ok ' "$T/probe.out")" -eq 7 ] || fail "not every evidence case ran"
expect_status 200 GET /metrics
grep -qx 'botid_ca_enrolments_total 1' "$T/body" || fail "/metrics: not one enrolment"
grep -qx 'botid_ca_issuances_total{kind="bot"} 1' "$T/body" ||
    fail "/metrics: not one bot certificate"
grep -qx 'botid_ca_rejections_total{endpoint="certify",reason="already_used"} 1' \
    "$T/body" || fail "/metrics: the replayed nonce is not counted"
for reason in "nonce already used" "signature does not verify" \
    "nonce does not match" "not fixedTPM" "certified name"; do
	grep -q "$reason" "$BOTID_CA_LOG" || fail "the CA log does not say '$reason'"
done

# The first TPM's EK with the second TPM's AK: the second TPM cannot open
# the challenge, and a guessed secret is refused, once (the session is gone).
export TPM2TOOLS_TCTI="$BOTID_TCTI"
(cd "$T" && tpm2_createek -c ek.ctx -G rsa -u ek1.pub >/dev/null &&
    tpm2_flushcontext -t >/dev/null) || fail "tpm2_createek failed"
TCTI2=$(fixture_var other BOTID_TCTI)
(cd "$T" && export TPM2TOOLS_TCTI="$TCTI2" &&
    tpm2_createprimary -C o -G ecc -c srk2.ctx >/dev/null &&
    tpm2_create -C srk2.ctx -G ecc:ecdsa-sha256:null -u ak2.pub -r ak2.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null &&
    tpm2_create -C srk2.ctx -G ecc -u hk2.pub -r hk2.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null) || fail "cannot make the second TPM's keys"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-mix"
"$PYTHON3" - "$T" <<'PY' || fail "cannot build the mixed enrolment"
import base64, json, sys
t = sys.argv[1]
b = lambda f: base64.b64encode(open(f"{t}/{f}", "rb").read()).decode()
json.dump({"join_token": open(f"{t}/token-mix").read().strip(),
           "ek_cert": b("tpm/certs/ek-rsa2048.crt"), "ek_public": b("ek1.pub"),
           "ak_public": b("ak2.pub"), "host_key_public": b("hk2.pub")},
          open(f"{t}/mix.json", "w"))
PY
expect_status 200 POST /v1/enrol "$T/mix.json"
session=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$T/body")
printf '{"session":"%s","secret":"%s","host_key_attest":"AAA=","host_key_signature":"AAA="}' \
    "$session" "$(head -c 32 /dev/urandom | base64 -w0)" >"$T/mix-activate.json"
expect_status 403 POST /v1/activate "$T/mix-activate.json"
grep -q 'credential activation failed' "$T/body" ||
    fail "wrong secret: unclear reason: $(cat "$T/body")"
expect_status 409 POST /v1/activate "$T/mix-activate.json"
grep -q 'credential activation failed' "$BOTID_CA_LOG" ||
    fail "the CA log does not say the activation failed"

# Revocation of a bot: its certificates are on a CRL signed by the CA.
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
spiffe="spiffe://test.botid/host/$host_id/bot/probe"
check "$CA" revoke -c "$BOTID_CA_CONF" bot "$spiffe"
expect_fail "$CA" revoke -c "$BOTID_CA_CONF" bot "$spiffe"
expect_status 200 GET /v1/crl
cp "$T/body" "$T/crl.pem"
check openssl crl -in "$T/crl.pem" -CAfile "$BOTID_CA_BUNDLE" -noout
serial=$("$CA" inventory -c "$BOTID_CA_CONF" | awk -v s="$spiffe" '$0 ~ s {print $4; exit}')
[ -n "$serial" ] || fail "no serial for $spiffe in the inventory"
openssl crl -in "$T/crl.pem" -noout -text | grep -qi "$serial" ||
    fail "the CRL does not list $serial"
"$CA" inventory -c "$BOTID_CA_CONF" | grep "$spiffe" | grep -q revoked ||
    fail "the inventory does not show the revoked certificate"

# A CA whose key is on a PKCS#11 token.
check pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label ca-token \
    --login --pin "$(cat "$BOTID_PIN_FILE")" --keypairgen \
    --key-type EC:prime256v1 --label ca-key
mkdir -p "$T/ca2"
cat >"$T/ca2/ca.conf" <<CONF
[ca]
trust_domain = token.botid
listen = 127.0.0.1:0
database = $T/ca2/ca.db
ca_cert = $T/ca2/ca.pem
ca_key = pkcs11
pkcs11_module = $BOTID_PKCS11_MODULE
pkcs11_token = ca-token
pkcs11_key_label = ca-key
pkcs11_pin_file = $BOTID_PIN_FILE
ek_root = $EK_CHAIN
CONF
check "$CA" init -c "$T/ca2/ca.conf"
[ ! -e "$T/ca2/ca.key" ] || fail "a key file was made for a token CA"
pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label ca-token \
    --read-object --type pubkey --label ca-key -o "$T/ca2/token.der" >/dev/null 2>&1 ||
    fail "cannot read the token's public key"
openssl pkey -pubin -inform DER -in "$T/ca2/token.der" -outform PEM >"$T/ca2/token.pem"
openssl x509 -in "$T/ca2/ca.pem" -noout -pubkey >"$T/ca2/cert.pub"
cmp -s "$T/ca2/token.pem" "$T/ca2/cert.pub" || fail "the token CA's certificate is not for the token key"
"$CA" serve -c "$T/ca2/ca.conf" --port-file "$T/ca2/port" 2>"$T/ca2/log" &
register_pid $!
for _ in $(seq 1 100); do [ -s "$T/ca2/port" ] && break; sleep 0.1; done
[ -s "$T/ca2/port" ] || fail "the token CA did not start: $(cat "$T/ca2/log")"
"$CA" token create -c "$T/ca2/ca.conf" --ttl 10m >"$T/token2"
sed "s|^state_dir *=.*|state_dir = $T/state2|" "$AGENT_CONF" >"$T/agent2.conf"
check "$PROVISION" -c "$T/agent2.conf" --ca "https://127.0.0.1:$(cat "$T/ca2/port")" \
    --ca-bundle "$T/ca2/ca.pem" --join-token-file "$T/token2"
check openssl verify -CAfile "$T/ca2/ca.pem" "$T/state2/attest/host-cert.pem"
# Enrolment by EK allowlist, without a join token: the listed TPM is
# enrolled, another is refused.
fpr=$(sha256sum "$T/tpm/certs/ek-rsa2048.crt" | cut -d' ' -f1)
start_ca ca3 "$(fixture_var other BOTID_EK_CA_CHAIN)" "allow_ek = sha256:$fpr"
sed "s|^state_dir *=.*|state_dir = $T/state3|" "$AGENT_CONF" >"$T/agent3.conf"
check "$PROVISION" -c "$T/agent3.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE"
sed "s|^state_dir *=.*|state_dir = $T/state4|; s|^tcti *=.*|tcti = $TCTI2|" \
    "$AGENT_CONF" >"$T/agent4.conf"
out=$("$PROVISION" -c "$T/agent4.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" 2>&1) && fail "an unlisted EK enrolled without a token"
case $out in *"not on the allowlist"*) ;; *) fail "unlisted EK: unclear message: $out";; esac
# Six processes opening a new database at once migrate it once, all fine.
mkdir -p "$T/mig"
mdb="$T/mig/ca.db"
[ -z "${BOTID_TEST_PG:-}" ] || mdb=$(pg_database mig)
sed "s|^database *=.*|database = $mdb|" "$BOTID_CA_CONF" >"$T/mig/ca.conf"
pids=()
for i in 1 2 3 4 5 6; do
	"$CA" inventory -c "$T/mig/ca.conf" >/dev/null 2>"$T/mig/err$i" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "concurrent first opens: $(cat "$T"/mig/err*)"
done
echo "PASS: the CA API refuses bad requests and bad evidence, revokes, and signs from a token"
