#!/bin/bash
# The CA's key policy (issue 21, point 6), default RSA >= 2048 bits and
# ECC on P-256 or P-384, for TPM and PKCS#11 bots alike: an RSA-1024 and a
# P-224 TPM key, each certified by the genuine AK over a fresh nonce, and
# RSA-512, RSA-1024 and P-224 keys vouched for as PKCS#11 bots by the host
# key, are refused with 403 and the reason, counted in /metrics, and leave
# no certificate nor consume their nonce (a good key over a refused one's
# nonce is certified); RSA-2048 and P-256 keys pass. At enrolment: an EK
# certificate whose extended key usage lacks the TCG EK purpose is refused
# (one with it passes); a CA whose policy allows only P-384 refuses a host
# whose attestation key is P-256. Policy keys in ca.conf are validated.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"
PROVISION="$top_builddir/tools/botid-provision"
start_ca ca "$BOTID_EK_CA_CHAIN"

post() {
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -H 'Content-Type: application/json' --data-binary "@$2" \
	    "$BOTID_CA_URL$1"
}
# expect STATUS REASON PATH BODY-FILE
expect() {
	local got
	got=$(post "$3" "$4")
	[ "$got" = "$1" ] || fail "$3 $4: HTTP $got, not $1: $(cat "$T/body")"
	[ -z "$2" ] || grep -qF "\"error\":\"$2\"" "$T/body" ||
	    fail "$3 $4: not '$2': $(cat "$T/body")"
}
certs_of() {
	"$CA" inventory -c "$BOTID_CA_CONF" | grep -c "bot/$1\$" || true
}
metric() {
	curl -sS --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/metrics" |
	    sed -n "s/^botid_ca_key_policy_refusals_total{endpoint=\"$1\"} //p"
}

agent_conf_begin
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
[ "$(metric certify)" = 0 ] || fail "/metrics: refusals before any"

# --- TPM keys, certified by the genuine AK over a fresh nonce -------------
tpm_body() {
	"$REQUESTS" "$T/state" "$BOTID_TCTI" tpm-body "$1" "$2" "$T/$2.json" \
	    >"$T/$2.out" 2>&1 || fail "ca-certify-requests tpm-body $1: $(cat "$T/$2.out")"
}
tpm_body rsa1024 t-rsa1024
expect 403 "bot t-rsa1024: key policy: RSA key of 1024 bits, the policy wants at least 2048" \
    /v1/certify "$T/t-rsa1024.json"
tpm_body p224 t-p224
expect 403 "bot t-p224: key policy: ECC curve P-224 is not allowed" \
    /v1/certify "$T/t-p224.json"
# nonce_used BODY: the `used` column of the nonce row BODY's nonce names.
nonce_used() {
	local hex
	hex=$("$PYTHON3" -c 'import base64, json, sys
print(base64.b64decode(json.load(open(sys.argv[1]))["nonce"]).hex())' "$1") ||
	    fail "no nonce in $1"
	sqlite3 "$T/ca/ca.db" "SELECT used FROM nonces WHERE value = X'$hex'"
}
# The key policy comes before the nonce: a refused key consumes none.
for b in t-rsa1024 t-p224; do
	[ "$(nonce_used "$T/$b.json")" = 0 ] || fail "$b's refusal consumed its nonce"
done
tpm_body rsa2048 t-rsa2048
expect 200 "" /v1/certify "$T/t-rsa2048.json"
tpm_body p256 t-p256
expect 200 "" /v1/certify "$T/t-p256.json"

# --- PKCS#11 bots: keys the host key vouches for --------------------------
p11() {
	openssl genpkey "$@" -out "$T/$KEY.key" 2>/dev/null || fail "openssl genpkey $*"
	openssl pkey -in "$T/$KEY.key" -pubout -outform DER -out "$T/$KEY.spki" ||
	    fail "openssl pkey"
	"$REQUESTS" "$T/state" "$BOTID_TCTI" pkcs11-body "$T/$KEY.spki" "$KEY" \
	    "$T/$KEY.json" >"$T/$KEY.out" 2>&1 ||
	    fail "ca-certify-requests pkcs11-body: $(cat "$T/$KEY.out")"
}
KEY=p-rsa512 p11 -algorithm RSA -pkeyopt rsa_keygen_bits:512
expect 403 "bot p-rsa512: key policy: RSA key of 512 bits, the policy wants at least 2048" \
    /v1/certify "$T/p-rsa512.json"
KEY=p-rsa1024 p11 -algorithm RSA -pkeyopt rsa_keygen_bits:1024
expect 403 "bot p-rsa1024: key policy: RSA key of 1024 bits, the policy wants at least 2048" \
    /v1/certify "$T/p-rsa1024.json"
# The same nonce, refused, then vouching for a good key: certified, and
# only then consumed (a replay of that body is 409).
nonce=$("$PYTHON3" -c 'import json, sys
print(json.load(open(sys.argv[1]))["nonce"])' "$T/p-rsa1024.json") || fail "no nonce"
KEY=p-again CERTIFY_NONCE=$nonce p11 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
expect 200 "" /v1/certify "$T/p-again.json"
[ "$(nonce_used "$T/p-again.json")" = 1 ] || fail "the certify did not consume the nonce"
expect 409 "nonce already used (replay)" /v1/certify "$T/p-again.json"
KEY=p-p224 p11 -algorithm EC -pkeyopt ec_paramgen_curve:P-224
expect 403 "bot p-p224: key policy: ECC curve P-224 is not allowed" \
    /v1/certify "$T/p-p224.json"
KEY=p-ed25519 p11 -algorithm ED25519
expect 403 "bot p-ed25519: key policy: ED25519 keys are not allowed" \
    /v1/certify "$T/p-ed25519.json"
KEY=p-p384 p11 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
expect 200 "" /v1/certify "$T/p-p384.json"

# Counted, logged, and nothing recorded for a refused key.
[ "$(metric certify)" = 6 ] || fail "/metrics: $(metric certify) certify refusals, not 6"
for b in t-rsa1024 t-p224 p-rsa512 p-rsa1024 p-p224 p-ed25519; do
	[ "$(certs_of "$b")" = 0 ] || fail "a certificate was recorded for $b"
	grep -q "certify from .* refused (403): bot $b: key policy: " "$BOTID_CA_LOG" ||
	    fail "the CA log does not say why $b was refused"
done
for b in t-rsa2048 t-p256 p-p384 p-again; do
	[ "$(certs_of "$b")" = 1 ] || fail "no certificate for $b"
done
echo "certify: weak keys refused, counted, nothing recorded"

# --- Enrolment: the EK certificate's TCG purpose --------------------------
# The TPM's RSA EK, certified again by the fixture's EK CA with another
# purpose, and with the TCG one; AK and host key made with tpm2-tools.
export TPM2TOOLS_TCTI="$BOTID_TCTI"
(cd "$T" && tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null &&
    tpm2_flushcontext -t >/dev/null &&
    tpm2_createprimary -C o -G ecc -c srk.ctx >/dev/null &&
    tpm2_create -C srk.ctx -G ecc:ecdsa-sha256:null -u ak.pub -r ak.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null &&
    tpm2_create -C srk.ctx -G ecc -u hk.pub -r hk.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null) || fail "tpm2-tools key creation"
openssl x509 -inform DER -in "$T/tpm/certs/ek-rsa2048.crt" -noout -pubkey \
    >"$T/ek-pub.pem" || fail "EK public key"
for eku in serverAuth 2.23.133.8.1; do
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=%s\n' \
	    "$eku" >"$T/ek.ext"
	openssl x509 -new -subj / -force_pubkey "$T/ek-pub.pem" \
	    -CA "$T/tpm/ca/issuercert.pem" -CAkey "$T/tpm/ca/signkey.pem" \
	    -set_serial "$RANDOM" -days 1 -extfile "$T/ek.ext" -outform DER \
	    -out "$T/ek-$eku.der" 2>/dev/null || fail "EK certificate ($eku)"
	"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-$eku"
	"$PYTHON3" - "$T" "$eku" <<'PY' || fail "cannot build the enrolment"
import base64, json, sys
t, eku = sys.argv[1:3]
b = lambda f: base64.b64encode(open(f"{t}/{f}", "rb").read()).decode()
json.dump({"join_token": open(f"{t}/token-{eku}").read().strip(),
           "ek_cert": b(f"ek-{eku}.der"), "ek_public": b("ek.pub"),
           "ak_public": b("ak.pub"), "host_key_public": b("hk.pub")},
          open(f"{t}/enrol-{eku}.json", "w"))
PY
done
expect 403 "EK certificate: its extended key usage lacks the TCG EK purpose (2.23.133.8.1)" \
    /v1/enrol "$T/enrol-serverAuth.json"
expect 200 "" /v1/enrol "$T/enrol-2.23.133.8.1.json"
[ "$(metric enrol)" = 1 ] || fail "/metrics: $(metric enrol) enrol refusals, not 1"

# --- A CA whose policy allows P-384 only refuses the P-256 AK -------------
start_ca strict "$BOTID_EK_CA_CHAIN" "key_ecc_curves = P-384" "key_rsa_min_bits = 2048"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-strict"
sed "s|^state_dir *=.*|state_dir = $T/state-strict|" "$AGENT_CONF" >"$T/agent-strict.conf"
rc=0
"$PROVISION" -c "$T/agent-strict.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-strict" \
    >"$T/strict.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "enrolment under a P-384 policy: exit $rc, not 3: $(cat "$T/strict.out")"
grep -q "the CA refused (HTTP 403): \(EK\|attestation key\): key policy: ECC curve P-256 is not allowed" \
    "$T/strict.out" || fail "P-384 policy: unclear refusal: $(cat "$T/strict.out")"
[ ! -e "$T/state-strict/attest/host.json" ] || fail "the host was enrolled"
[ "$(metric enrol)" = 1 ] || fail "/metrics (strict CA): $(metric enrol) enrol refusals, not 1"

# --- The policy keys are checked when ca.conf is read ---------------------
for bad in "key_rsa_min_bits = 512" "key_ecc_curves = P-224" \
    "ek_purpose_check = maybe" "nonce_max = 0"; do
	printf '%s\n' "$bad" | cat "$T/strict/ca.conf" - >"$T/bad.conf"
	expect_fail "$CA" inventory -c "$T/bad.conf"
done
echo "ca-keypolicy: ok"
