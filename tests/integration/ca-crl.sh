#!/bin/bash
# botid-ca's CRL by RFC 5280 5.2, and verifiers that check its freshness
# (issue 21, point 7): GET /v1/crl carries an authorityKeyIdentifier equal
# to the CA certificate's subject key identifier and a cRLNumber; the same
# entries give the same signed CRL (no signature per request); a revocation
# gives a new CRL with a larger number; `botid verify-cert --crl` refuses the
# revoked certificate with a fresh CRL and refuses a CRL whose nextUpdate
# passed (signed by the CA key itself, so only its dates are wrong), while
# accepting the unrevoked certificate with the same CA's fresh CRL.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
export SOFTHSM2_CONF=/nonexistent
. "$top_srcdir/tests/integration/agent-common.sh"
PROVISION="$top_builddir/tools/botid-provision"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"

start_ca ca "$BOTID_EK_CA_CHAIN"
get_crl() {
	curl -sSf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/crl" >"$1" ||
	    fail "cannot fetch the CRL"
}
crl_number() {
	openssl crl -in "$1" -noout -crlnumber | sed 's/^crlNumber=//'
}

# The extensions, and the AKI is the CA certificate's SKI.
get_crl "$T/crl1.pem"
openssl crl -in "$T/crl1.pem" -noout -text >"$T/crl1.txt"
grep -q "X509v3 Authority Key Identifier" "$T/crl1.txt" ||
    fail "the CRL has no authorityKeyIdentifier: $(cat "$T/crl1.txt")"
grep -q "X509v3 CRL Number" "$T/crl1.txt" ||
    fail "the CRL has no cRLNumber: $(cat "$T/crl1.txt")"
ski=$(openssl x509 -in "$BOTID_CA_CERT" -noout -ext subjectKeyIdentifier |
    tail -1 | tr -d ' ')
aki=$(grep -A1 "Authority Key Identifier" "$T/crl1.txt" | tail -1 |
    sed 's/keyid://' | tr -d ' ')
[ -n "$ski" ] && [ "$aki" = "$ski" ] || fail "AKI $aki is not the CA's SKI $ski"
check openssl crl -in "$T/crl1.pem" -CAfile "$BOTID_CA_BUNDLE" -noout

# Unchanged entries: the same CRL, byte for byte.
get_crl "$T/crl2.pem"
cmp -s "$T/crl1.pem" "$T/crl2.pem" || fail "the CRL was signed again unchanged"

# A host with a bot certificate.
agent_conf_begin
agent_add_bot probe tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
mkdir -p "$T/nc"
"$REQUESTS" "$T/state" "$BOTID_TCTI" 1 "$T/nc" probe >"$T/nc/out" 2>&1 ||
    fail "ca-certify-requests: $(cat "$T/nc/out")"
curl -sSf --cacert "$BOTID_CA_BUNDLE" -H 'Content-Type: application/json' \
    --data-binary "@$T/nc/certify-0.json" "$BOTID_CA_URL/v1/certify" \
    >"$T/certify.json" || fail "certify failed"
"$PYTHON3" -c 'import json,sys; d = json.load(open(sys.argv[1])); sys.stdout.write(d["chain"]); print(d["spiffe_id"], file=sys.stderr)' \
    "$T/certify.json" >"$T/chain.pem" 2>"$T/spiffe"
spiffe=$(cat "$T/spiffe")
out=$("$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --crl "$T/crl1.pem" \
    "$T/chain.pem" 2>&1) || fail "a good certificate with a fresh CRL: $out"

# Revoked: a new CRL with a larger number lists it; verify-cert refuses.
check "$CA" revoke -c "$BOTID_CA_CONF" bot "$spiffe" >/dev/null
get_crl "$T/crl3.pem"
n1=$(crl_number "$T/crl1.pem")
n3=$(crl_number "$T/crl3.pem")
"$PYTHON3" -c 'import sys; sys.exit(0 if int(sys.argv[2], 16) > int(sys.argv[1], 16) else 1)' \
    "$n1" "$n3" || fail "cRLNumber did not grow: $n1 then $n3"
out=$("$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --crl "$T/crl3.pem" \
    "$T/chain.pem" 2>&1) && fail "a revoked certificate verified"
case $out in *revoked*) ;; *) fail "revoked: unclear reason: $out";; esac

# A stale CRL from the CA's own key (nextUpdate a day ago), which does not
# list the certificate: refused as stale, not taken as "not revoked".
mkdir -p "$T/stale"
: >"$T/stale/index.txt"
echo 01 >"$T/stale/crlnumber"
cat >"$T/stale/ca.cnf" <<CNF
[ca]
default_ca = stale
[stale]
database = $T/stale/index.txt
crlnumber = $T/stale/crlnumber
default_md = sha256
CNF
check openssl ca -gencrl -config "$T/stale/ca.cnf" \
    -keyfile "$T/ca/ca.key" -cert "$BOTID_CA_CERT" \
    -crl_lastupdate "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)" \
    -crl_nextupdate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" \
    -out "$T/stale.pem" 2>"$T/stale/err"
check openssl crl -in "$T/stale.pem" -CAfile "$BOTID_CA_BUNDLE" -noout
out=$("$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --crl "$T/stale.pem" \
    "$T/chain.pem" 2>&1) && fail "a stale CRL was accepted: $out"
case $out in *stale*) ;; *) fail "stale CRL: unclear reason: $out";; esac
echo "ok"
