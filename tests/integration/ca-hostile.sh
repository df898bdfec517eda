#!/bin/bash
# Malformed and hostile requests through every botid-ca endpoint get a 4xx
# with a one-line reason, never a 5xx (issue 21, point 5): ca-hostile.py
# removes, replaces, truncates and flips every member of genuine bodies made
# with a real TPM (swtpm), tries every method, odd paths and non-object
# bodies, and enrols the EK certificate's own key with edited
# objectAttributes (a 500 "cannot make a credential for this EK" before),
# and certifies a TPM key on NIST P-224 (a 500 after the nonce was used).
# Nothing was issued or revoked by it, and the CA still serves. A client
# that asks slowly for a large CRL and does not read it is closed at
# request_timeout from its connection, not a request_timeout after its
# request.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
export SOFTHSM2_CONF=/nonexistent
. "$top_srcdir/tests/integration/agent-common.sh"
PROVISION="$top_builddir/tools/botid-provision"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"

# The walk asks for a fresh nonce per mutated body, most never used:
# nonce_max would answer 429 long before the end.
start_ca ca "$BOTID_EK_CA_CHAIN" "nonce_max = 10000" "request_timeout = 10"
agent_conf_begin
agent_add_bot probe tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
[ -n "$host_id" ] || fail "no host_id"
mkdir -p "$T/w" "$T/nc"
echo "$host_id" >"$T/w/host_id"

# A certified bot key: its serial is the revocation's target.
"$REQUESTS" "$T/state" "$BOTID_TCTI" 2 "$T/nc" probe >"$T/nc/out" 2>&1 ||
    fail "ca-certify-requests: $(cat "$T/nc/out")"
curl -sSf --cacert "$BOTID_CA_BUNDLE" -H 'Content-Type: application/json' \
    --data-binary "@$T/nc/certify-0.json" "$BOTID_CA_URL/v1/certify" \
    >"$T/certify.json" || fail "certify failed"
serial=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$T/certify.json")
cp "$T/nc/certify-1.json" "$T/w/certify.json"
"$REQUESTS" "$T/state" "$BOTID_TCTI" revoke-body "$serial" superseded \
    "$serial" host "$T/w/revoke.json" >"$T/rb.out" 2>&1 ||
    fail "revoke-body: $(cat "$T/rb.out")"

# Enrolment material: the genuine EK certificate and key, an AK and a host
# key of the same TPM, and join tokens.
export TPM2TOOLS_TCTI="$BOTID_TCTI"
(cd "$T" && tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null &&
    tpm2_flushcontext -t >/dev/null &&
    tpm2_createprimary -C o -G ecc -c srk.ctx >/dev/null &&
    tpm2_create -C srk.ctx -G ecc:ecdsa-sha256:null -u ak.pub -r ak.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null &&
    tpm2_create -C srk.ctx -G ecc -u hk.pub -r hk.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >/dev/null &&
    tpm2_flushcontext -t >/dev/null) || fail "cannot make the TPM's keys"
for i in 1 2 3 4 5; do "$CA" token create -c "$BOTID_CA_CONF" --ttl 10m; done \
    >"$T/w/tokens"
"$PYTHON3" - "$T" <<'PY' || fail "cannot build the enrolment"
import base64, json, sys
t = sys.argv[1]
b = lambda f: base64.b64encode(open(f"{t}/{f}", "rb").read()).decode()
json.dump({"join_token": open(f"{t}/token").read().strip(),
           "ek_cert": b("tpm/certs/ek-rsa2048.crt"), "ek_public": b("ek.pub"),
           "ak_public": b("ak.pub"), "host_key_public": b("hk.pub")},
          open(f"{t}/w/enrol.json", "w"))
PY
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token2"
"$PYTHON3" - "$T" <<'PY' || fail "cannot build the enrolment"
import json, sys
t = sys.argv[1]
e = json.load(open(f"{t}/w/enrol.json"))
e["join_token"] = open(f"{t}/token2").read().strip()
json.dump(e, open(f"{t}/enrol2.json", "w"))
PY
curl -sSf --cacert "$BOTID_CA_BUNDLE" -H 'Content-Type: application/json' \
    --data-binary "@$T/enrol2.json" "$BOTID_CA_URL/v1/enrol" >"$T/session.json" ||
    fail "the genuine enrolment was refused"
"$PYTHON3" - "$T" <<'PY' || fail "cannot build the activation"
import base64, json, os, sys
t = sys.argv[1]
s = json.load(open(f"{t}/session.json"))["session"]
json.dump({"session": s, "secret": base64.b64encode(os.urandom(32)).decode(),
           "host_key_attest": base64.b64encode(os.urandom(120)).decode(),
           "host_key_signature": base64.b64encode(os.urandom(72)).decode()},
          open(f"{t}/w/activate.json", "w"))
PY

# A TPM key on NIST P-224, certified by the genuine AK over a fresh nonce:
# refused with a 4xx and its reason (a 500 after the nonce was consumed
# before), and no certificate.
mkdir -p "$T/p224"
CERTIFY_CURVE=p224 "$REQUESTS" "$T/state" "$BOTID_TCTI" 1 "$T/p224" probe \
    >"$T/p224/out" 2>&1 || fail "ca-certify-requests p224: $(cat "$T/p224/out")"
code=$(curl -sS -o "$T/p224/answer" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
    -H 'Content-Type: application/json' --data-binary "@$T/p224/certify-0.json" \
    "$BOTID_CA_URL/v1/certify")
echo "P-224 bot key: $code $(cat "$T/p224/answer")"
case $code in 400|403) ;; *) fail "a P-224 bot key got $code: $(cat "$T/p224/answer")";; esac
# The key policy (ca-policy.c) refuses it before the nonce is consumed.
grep -q '"error":"bot probe: key policy: ECC curve P-224 is not allowed"' \
    "$T/p224/answer" || fail "P-224: unclear reason: $(cat "$T/p224/answer")"
grep -q '"chain"' "$T/p224/answer" && fail "a P-224 key got a certificate"

# A client that asks slowly for an answer it then does not read: a CRL
# made large (5000 revoked rows written into the CA's database) cannot all
# leave the CA towards its tiny MSS and receive buffer. Its connection is
# closed request_timeout after it was opened, not sooner, and not a whole
# request_timeout after the request's last byte (the old CA started the
# deadline again when the answer was queued: a client holding a connection
# for twice request_timeout). It runs beside the walk.
sqlite3 "$T/ca/ca.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL
    SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO certs (serial, host_id,
    spiffe_id, attestation, issued, not_after, revoked_at) SELECT
    printf('FF%030X', i), 'filler', 'spiffe://test.botid/filler', 'tpm', 1,
    $(($(date +%s) + 86400)), 1 FROM n"
"$PYTHON3" "$top_srcdir/tests/integration/ca-slow-reader.py" stalled \
    "$(cat "$T/ca/port")" "$BOTID_CA_BUNDLE" "$BOTID_CA_LOG" 10 \
    "$T/reader" &
register_pid $!
reader=$!

count_rows() {
	"$CA" inventory -c "$BOTID_CA_CONF" | grep -c "$1" || true
}
issued0=$(count_rows spiffe://)
revoked0=$(count_rows revoked)
"$PYTHON3" "$top_srcdir/tests/integration/ca-hostile.py" "$BOTID_CA_URL" \
    "$BOTID_CA_BUNDLE" "$T/w" >"$T/hostile.out" 2>&1 || {
	cat "$T/hostile.out"
	fail "a hostile request got a 5xx"
}
wait "$reader" || fail "the slow reader failed"
read -r from_conn from_req status got length <"$T/reader"
echo "stalled reader: closed $from_conn s after connecting," \
    "$from_req s after its request; HTTP $status, $got of $length bytes"
[ "$status" = 200 ] || fail "the stalled reader got no answer: $status"
if [ "$length" -le 0 ] || [ "$got" -ge "$length" ]; then
	fail "the CRL left the CA whole ($got of $length): nothing was stalled"
fi
# The CA's timer may run from a time its loop read a little earlier.
awk -v s="$from_conn" 'BEGIN { exit !(s >= 9.5) }' ||
    fail "closed $from_conn s after connecting, before request_timeout"
awk -v s="$from_req" 'BEGIN { exit !(s < 10) }' ||
    fail "closed $from_req s after the request: the deadline started again"
cat "$T/hostile.out"
tail -1 "$T/hostile.out" | grep -q '^ok [0-9]' || fail "the walk did not finish"
# refuse() logs a 5xx as "WHAT from PEER failed: ...", a 4xx as "refused".
! grep -q " from [^ ]* failed: " "$BOTID_CA_LOG" ||
    fail "the CA logged a failure of its own: $(grep " from [^ ]* failed: " "$BOTID_CA_LOG" | head -3)"
[ "$(count_rows spiffe://)" = "$issued0" ] || fail "a hostile request got a certificate"
[ "$(count_rows revoked)" = "$revoked0" ] || fail "a hostile request revoked something"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
    "$BOTID_CA_URL/v1/health/ready")
[ "$code" = 200 ] || fail "the CA does not serve after the walk: $code"
echo ok
