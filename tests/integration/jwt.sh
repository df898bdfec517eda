#!/bin/bash
# Scoped JWTs and signed messages end to end: a fixture TPM is provisioned
# with a real botid-ca, the agent issues JWTs for a TPM bot and SoftHSM2
# bots (ES256, RS256), and an independent library (PyJWT, python3-jwt)
# and `botid verify-jwt` both accept them and both refuse an expired
# token, another audience, a changed payload, another bot's signature,
# alg none and HS256 keyed with the public key. Scopes beyond the bot's
# grant are denied and audited; signed messages, chains and the CRL are
# checked by verify-msg and verify-cert.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm jwt
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

PY=${PYTHON3:-/usr/bin/python3}
"$PY" -c 'import jwt, cryptography' 2>/dev/null || {
	echo "SKIP: $PY has no PyJWT (python3-jwt)"
	exit 77
}
CHECK=("$PY" "$top_srcdir/tests/integration/jwt-check.py")
# token_leaf TOKEN_FILE: the x5c leaf of a JWT, as PEM.
token_leaf() {
	"$PY" - "$1" <<'PYEOF'
import base64, json, sys, textwrap
h = open(sys.argv[1]).read().strip().split(".")[0]
leaf = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["x5c"][0]
print("-----BEGIN CERTIFICATE-----")
print("\n".join(textwrap.wrap(leaf, 64)))
print("-----END CERTIFICATE-----")
PYEOF
}
PROVISION="$top_builddir/tools/botid-provision"

start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)"
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")

me="uid:$(id -u)"
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "$me"
echo "scopes = inventory:read inventory:write" >>"$AGENT_CONF"
echo "max_token_ttl = 600" >>"$AGENT_CONF"
agent_add_bot pbot pkcs11 ecdsa-p256 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
agent_add_bot rbot pkcs11 rsa-2048 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
agent_add_bot sbot pkcs11 ecdsa-p384 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
agent_add_bot nocert pkcs11 ecdsa-p256 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"

"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot,pbot,rbot,sbot \
    >"$T/join.token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/join.token"
start_agent
for bot in tbot pbot rbot sbot; do
	ok=
	for _ in $(seq 1 150); do
		if botid_cli cert "$bot" --out "$T/$bot.chain" 2>/dev/null; then
			ok=1
			break
		fi
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no certificate for $bot: $(tail -5 "$AGENT_LOG")"
	# The token key's certificate comes in its own request.
	ok=
	for _ in $(seq 1 150); do
		if botid_cli jwt "$bot" --aud probe >"$T/$bot.probe" 2>/dev/null
		then
			ok=1
			break
		fi
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no token key for $bot: $(tail -5 "$AGENT_LOG")"
	# Its leaf, checked to the CA by openssl, gives PyJWT the key.
	token_leaf "$T/$bot.probe" >"$T/$bot.tok.pem"
	openssl verify -CAfile "$BOTID_CA_BUNDLE" -purpose any \
	    "$T/$bot.tok.pem" >/dev/null || fail "$bot: token key's chain"
	openssl x509 -in "$T/$bot.tok.pem" -noout -pubkey >"$T/$bot.pub" ||
	    fail "$bot: openssl cannot read the token key's certificate"
	openssl x509 -in "$T/$bot.chain" -noout -pubkey >"$T/$bot.sign.pub" ||
	    fail "$bot: openssl cannot read the certificate"
done
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' \
    "$T/state/attest/host.json")
spiffe="spiffe://$TD/host/$host_id/bot/tbot"

verify() {
	"$BOTID" verify-jwt --bundle "$BOTID_CA_BUNDLE" "$@"
}

# --- Accepted: PyJWT with the leaf's key, and botid verify-jwt ---------------
botid_cli jwt tbot --aud inventory --scope inventory:read --ttl 120 \
    >"$T/t.jwt" || fail "botid jwt tbot failed"
out=$("${CHECK[@]}" verify "$T/t.jwt" "$T/tbot.pub" inventory) ||
    fail "PyJWT rejected a good token: $out"
case $out in
*"\"iss\": \"spiffe://$TD\""*"\"scope\": \"inventory:read\""*"\"sub\": \"$spiffe\""*) ;;
*) fail "PyJWT claims: $out";;
esac
out=$(verify --aud inventory --require-scope inventory:read --require-tpm \
    --expect-spiffe "$spiffe" "$(cat "$T/t.jwt")") ||
    fail "verify-jwt rejected a good token: $out"
case $out in
*"\"spiffe_id\":\"$spiffe\""*'"attestation":"tpm"'*'"alg":"ES256"'*) ;;
*) fail "verify-jwt output: $out";;
esac
# The header names the token key: kid is its RFC 7638 JWK thumbprint,
# computed here from the key openssl read out of the certificate.
kid=$(cut -d. -f1 "$T/t.jwt" | "$PY" -c 'import base64,json,sys
s=sys.stdin.read().strip(); print(json.loads(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))["kid"])')
want=$("$PY" - "$T/tbot.pub" <<'PYEOF'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
n = load_pem_public_key(open(sys.argv[1], "rb").read()).public_numbers()
b = lambda v, w: base64.urlsafe_b64encode(v.to_bytes(w, "big")).rstrip(b"=").decode()
jwk = {"crv": "P-256", "kty": "EC", "x": b(n.x, 32), "y": b(n.y, 32)}
s = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
print(base64.urlsafe_b64encode(hashlib.sha256(s).digest()).rstrip(b"=").decode())
PYEOF
)
[ "$kid" = "$want" ] || fail "kid $kid is not the token key's thumbprint $want"
# The token key is not the bot's signing key.
cmp -s "$T/tbot.pub" "$T/tbot.sign.pub" && fail "the token key is the signing key"
# From stdin and from a file too.
verify --aud inventory - <"$T/t.jwt" >/dev/null || fail "verify-jwt from stdin"
verify --aud inventory "$T/t.jwt" >/dev/null || fail "verify-jwt from a file"

# RS256 from an RSA SoftHSM2 bot, ES384 and ES256 from SoftHSM2 bots.
botid_cli jwt rbot --aud inventory --scope inventory:read >"$T/r.jwt" ||
    fail "botid jwt rbot failed"
out=$("${CHECK[@]}" verify "$T/r.jwt" "$T/rbot.pub" inventory) ||
    fail "PyJWT rejected an RS256 token: $out"
out=$(verify --aud inventory "$(cat "$T/r.jwt")") || fail "RS256: $out"
case $out in *'"alg":"RS256"'*'"attestation":"pkcs11"'*|*'"attestation":"pkcs11"'*'"alg":"RS256"'*) ;;
*) fail "RS256 verify-jwt output: $out";; esac
# PS256 from the same key on request; PSS with an EC key is refused.
botid_cli jwt rbot --aud inventory --pss >"$T/ps.jwt" || fail "botid jwt --pss"
out=$("${CHECK[@]}" verify "$T/ps.jwt" "$T/rbot.pub" inventory) ||
    fail "PyJWT rejected a PS256 token: $out"
out=$(verify --aud inventory "$(cat "$T/ps.jwt")") || fail "PS256: $out"
case $out in *'"alg":"PS256"'*) ;; *) fail "PS256 verify-jwt output: $out";; esac
expect_fail botid_cli jwt pbot --aud inventory --pss
# ES384 from a P-384 key.
botid_cli jwt sbot --aud inventory --scope inventory:read >"$T/s.jwt" ||
    fail "botid jwt sbot failed"
out=$("${CHECK[@]}" verify "$T/s.jwt" "$T/sbot.pub" inventory) ||
    fail "PyJWT rejected an ES384 token: $out"
out=$(verify --aud inventory "$(cat "$T/s.jwt")") || fail "ES384: $out"
case $out in *'"alg":"ES384"'*) ;; *) fail "ES384 verify-jwt output: $out";; esac
botid_cli jwt pbot --aud inventory --scope inventory:read >"$T/p.jwt" ||
    fail "botid jwt pbot failed"
out=$("${CHECK[@]}" verify "$T/p.jwt" "$T/pbot.pub" inventory) ||
    fail "PyJWT rejected pbot's token: $out"
expect_fail verify --aud inventory --require-tpm "$(cat "$T/p.jwt")"
expect_fail verify --aud inventory --require-scope inventory:write "$(cat "$T/p.jwt")"

# --- Rejected by both ----------------------------------------------------------
# rejected NAME TOKEN_FILE CHAIN AUD [REASON]: PyJWT and verify-jwt refuse it.
rejected() {
	local out rc=0
	out=$("${CHECK[@]}" verify "$2" "$3" "$4") || rc=$?
	[ "$rc" -eq 0 ] && fail "$1: PyJWT accepted it: $out"
	[ "$rc" -eq 1 ] || fail "$1: the PyJWT check itself failed ($rc)"
	out=$(verify --aud "$4" --leeway 0 "$(cat "$2")" 2>&1) &&
	    fail "$1: verify-jwt accepted it: $out"
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] ||
	    fail "$1: the reason is not one line: $out"
	case $out in *"${5:-rejected}"*) ;; *) fail "$1: unclear reason: $out";; esac
}

botid_cli jwt tbot --aud inventory --ttl 1 >"$T/short.jwt"
sleep 2
rejected expired "$T/short.jwt" "$T/tbot.pub" inventory expired
rejected "other audience" "$T/t.jwt" "$T/tbot.pub" billing audience
"${CHECK[@]}" tamper "$T/t.jwt" >"$T/tampered.jwt"
rejected "changed payload" "$T/tampered.jwt" "$T/tbot.pub" inventory signature
"${CHECK[@]}" splice "$T/t.jwt" "$T/p.jwt" >"$T/spliced.jwt"
rejected "another bot's signature" "$T/spliced.jwt" "$T/tbot.pub" inventory signature
"${CHECK[@]}" none "$T/t.jwt" >"$T/none.jwt"
rejected "alg none" "$T/none.jwt" "$T/tbot.pub" inventory "alg none"
"${CHECK[@]}" hs256 "$T/t.jwt" "$T/tbot.pub" >"$T/hs.jwt"
rejected "HS256 with the public key" "$T/hs.jwt" "$T/tbot.pub" inventory HS256
# RS256 claimed over an EC key: algorithm confusion.
"$PY" - "$T/t.jwt" >"$T/confused.jwt" <<'PYEOF'
import base64, json, sys
h, p, s = open(sys.argv[1]).read().strip().split(".")
hdr = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
hdr["alg"] = "RS256"
h = base64.urlsafe_b64encode(json.dumps(hdr).encode()).rstrip(b"=").decode()
print("%s.%s.%s" % (h, p, s))
PYEOF
out=$(verify --aud inventory "$(cat "$T/confused.jwt")" 2>&1) &&
    fail "RS256 over an EC key accepted"
case $out in *"does not match"*) ;; *) fail "confusion: unclear reason: $out";; esac
# Oversize and malformed input: one clear line each.
head -c 20000 /dev/zero | tr '\0' 'A' >"$T/big.jwt"
out=$(verify --aud inventory - <"$T/big.jwt" 2>&1) && fail "oversize accepted"
case $out in *"longer than"*) ;; *) fail "oversize: $out";; esac
out=$(verify --aud inventory "a.b" 2>&1) && fail "two parts accepted"
# A chain from another CA is refused.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/other.key" -out "$T/other.pem" -subj /CN=other -days 1 \
    2>/dev/null
out=$("$BOTID" verify-jwt --bundle "$T/other.pem" --aud inventory \
    "$(cat "$T/t.jwt")" 2>&1) && fail "a token verified against another CA"
case $out in *"does not verify to the bundle"*) ;; *) fail "other CA: $out";; esac

# --- The agent's grant: scopes and lifetime --------------------------------
out=$(botid_cli jwt pbot --aud inventory --scope inventory:write 2>&1) &&
    fail "a scope outside the grant was issued"
case $out in *denied*"inventory:write"*) ;; *) fail "scope refusal: $out";; esac
[ "$(grep '"op":"jwt"' "$AUDIT_LOG" | grep '"bot":"pbot"' | grep '"result":"denied"' |
    grep -c 'inventory:write not granted')" -gt 0 ] ||
    fail "the denied scope is not in the audit log: $(tail -3 "$AUDIT_LOG")"
out=$(botid_cli jwt tbot --aud inventory --ttl 601 2>&1) &&
    fail "a ttl above max_token_ttl was issued"
case $out in *denied*max_token_ttl*) ;; *) fail "ttl refusal: $out";; esac
grep '"op":"jwt"' "$AUDIT_LOG" | grep '"result":"ok"' | grep '"bot":"tbot"' >/dev/null ||
    fail "issued tokens are not audited"
out=$(botid_cli jwt nocert --aud inventory 2>&1) &&
    fail "a token without a certificate"
case $out in *"no token-key certificate"*) ;; *) fail "no certificate: $out";; esac
# Without the default, the lifetime is max_token_ttl.
botid_cli jwt tbot --aud inventory >"$T/default.jwt"
out=$(verify --aud inventory "$(cat "$T/default.jwt")")
exp=$(printf '%s' "$out" | sed 's/.*"exp":\([0-9]*\).*/\1/')
iat=$(printf '%s' "$out" | sed 's/.*"iat":\([0-9]*\).*/\1/')
[ $((exp - iat)) -eq 600 ] || fail "default lifetime $((exp - iat)), not 600"

# --- Issue 19's forgery: the bot builds the claims itself -------------------
# A scope never granted and exp 30 days ahead (max_token_ttl is 600),
# signed with the bot's own key through sign-msg and sign --format raw:
# good signatures, but by the signing key, which is not a token key.
n_jwt=$(grep '"op":"jwt"' "$AUDIT_LOG" | grep -c '"result":"ok"' || true)
now=$(date +%s)
printf '{"iss":"spiffe://%s","sub":"%s","aud":"inventory","scope":"inventory:read inventory:admin","iat":%d,"nbf":%d,"exp":%d}' \
    "$TD" "$spiffe" "$now" "$now" "$((now + 30 * 86400))" >"$T/claims.json"
payload=$(basenc --base64url -w0 <"$T/claims.json" | tr -d '=')
check botid_cli sign-msg tbot --in "$T/claims.json" --out "$T/forged.jws"
IFS=. read -r fh _ fs <"$T/forged.jws"
printf '%s.%s.%s\n' "$fh" "$payload" "$fs" >"$T/forged-msg.jwt"
printf '%s.%s' "$fh" "$payload" >"$T/forged.input"
check botid_cli sign tbot --in "$T/forged.input" --format raw --out "$T/forged.sig"
printf '%s.%s.%s\n' "$fh" "$payload" \
    "$(basenc --base64url -w0 <"$T/forged.sig" | tr -d '=')" >"$T/forged-raw.jwt"
for f in forged-msg forged-raw; do
	# Its signature is good under the signing key: only the key's kind
	# tells it apart.
	out=$("${CHECK[@]}" verify "$T/$f.jwt" "$T/tbot.sign.pub" inventory) ||
	    fail "$f: PyJWT rejects even the signing key's signature: $out"
	out=$(verify --aud inventory --require-scope inventory:admin \
	    --require-tpm "$(cat "$T/$f.jwt")" 2>&1) &&
	    fail "$f: verify-jwt accepted a hand-built token"
	case $out in *"not signed by a token key"*) ;;
	*) fail "$f: verify-jwt: $out";; esac
	rc=0; out=$("${CHECK[@]}" verify "$T/$f.jwt" "$T/tbot.pub" inventory) || rc=$?
	[ "$rc" -eq 1 ] || fail "$f: PyJWT with the token key accepted it: $out"
done
# Nothing was issued: no JWT in the audit log since.
[ "$(grep '"op":"jwt"' "$AUDIT_LOG" | grep -c '"result":"ok"' || true)" -eq "$n_jwt" ] ||
    fail "the forgery shows as an issued token"

# --- Signed messages ---------------------------------------------------------
printf 'restock 12 widgets\n' >"$T/msg"
check botid_cli sign-msg tbot --in "$T/msg" --out "$T/msg.jws"
case $(cat "$T/msg.jws") in *..*) ;; *) fail "not a detached JWS";; esac
out=$("$BOTID" verify-msg --bundle "$BOTID_CA_BUNDLE" --in "$T/msg" \
    --require-tpm --expect-spiffe "$spiffe" "$T/msg.jws") ||
    fail "verify-msg rejected a good message: $out"
printf 'restock 99 widgets\n' >"$T/msg2"
out=$("$BOTID" verify-msg --bundle "$BOTID_CA_BUNDLE" --in "$T/msg2" \
    "$T/msg.jws" 2>&1) && fail "a changed message verified"
case $out in *signature*) ;; *) fail "changed message: $out";; esac
expect_fail "$BOTID" verify-msg --bundle "$BOTID_CA_BUNDLE" --in "$T/msg" \
    --expect-spiffe "spiffe://$TD/host/$host_id/bot/pbot" "$T/msg.jws"
# The detached JWS is standard: PyJWT's JWS API checks it with the payload.
"$PY" - "$T/msg.jws" "$T/msg" "$T/tbot.sign.pub" <<'PYEOF' || fail "PyJWS rejected the message"
import base64, sys, jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
h, _, s = open(sys.argv[1]).read().strip().split(".")
p = base64.urlsafe_b64encode(open(sys.argv[2], "rb").read()).rstrip(b"=").decode()
key = load_pem_public_key(open(sys.argv[3], "rb").read())
jwt.api_jws.PyJWS().decode(".".join([h, p, s]), key, algorithms=["ES256"])
PYEOF

# A token's claims cut out as a "message" of the bot: the token key signs
# only tokens, and verify-msg says so.
IFS=. read -r th tp ts <"$T/t.jwt"
printf '%s..%s\n' "$th" "$ts" >"$T/cut.jws"
"$PY" -c 'import base64,sys; s=sys.argv[1]; sys.stdout.buffer.write(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))' \
    "$tp" >"$T/cut.claims"
out=$("$BOTID" verify-msg --bundle "$BOTID_CA_BUNDLE" --in "$T/cut.claims" \
    "$T/cut.jws" 2>&1) && fail "a token's claims verified as a message"
case $out in *"token key"*) ;; *) fail "cut token: $out";; esac

# --- Chains and the CRL --------------------------------------------------------
out=$("$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --require-tpm \
    "$T/tbot.chain") || fail "verify-cert: $out"
case $out in *"$spiffe"*) ;; *) fail "verify-cert output: $out";; esac
expect_fail "$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --require-tpm \
    "$T/pbot.chain"
check "$CA" revoke -c "$BOTID_CA_CONF" bot "spiffe://$TD/host/$host_id/bot/pbot" \
    >/dev/null
curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/crl" >"$T/crl.pem" ||
    fail "cannot fetch the CRL"
out=$("$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --crl "$T/crl.pem" \
    "$T/pbot.chain" 2>&1) && fail "a revoked certificate verified"
case $out in *revoked*) ;; *) fail "revoked: $out";; esac
out=$(verify --aud inventory --crl "$T/crl.pem" "$(cat "$T/p.jwt")" 2>&1) &&
    fail "a token from a revoked certificate verified"
check "$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --crl "$T/crl.pem" \
    "$T/tbot.chain" >/dev/null

stop_agent
echo "PASS: JWTs, signed messages and verification"
