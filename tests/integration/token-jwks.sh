#!/bin/bash
# Token keys and botid-ca's JWK Set, against real swtpm and SoftHSM2 bots:
# a bot with scopes gets a second key, certified with the botid token EKU
# and a grant, and a bot without scopes gets none. Relying parties that
# are not ours, node jose (createRemoteJWKSet + jwtVerify) and Debian's
# PyJWT (PyJWKClient), configured only with the JWK Set URL named by the
# discovery document, the issuer and the audience, accept a real token;
# each refuses the forgery of issue 19 (claims built by hand, a scope
# never granted, exp 30 days ahead) signed through every signing path the
# agent offers (botid sign-msg, botid sign --format raw, botid-pkcs11.so,
# the ssh-agent socket),
# and so does botid verify-jwt. The CA's own cap on the token lifetime
# wins over the agent's. The token key is non-exportable like the signing
# key, rotates with the bot (the old one destroyed after rotate_grace) and
# revoking the bot removes it from the JWK Set at the next request, after
# which both libraries refuse its token, and jose refuses the token the
# agent, which does not learn of the revocation, still mints with it.
# With BOTID_TOKEN_JWKS_PG=1 (token-jwks-pg.sh) the CA runs on PostgreSQL.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup

PY=${PYTHON3:-/usr/bin/python3}
NODE=${NODE:-node}
: "${BOTID_NODE_PATH:=/usr/local/lib/botid-node/node_modules}"
"$PY" -c 'import jwt' 2>/dev/null || {
	echo "SKIP: $PY has no PyJWT (python3-jwt; scripts/install-deps)"
	exit 77
}
NODE_PATH="$BOTID_NODE_PATH" "$NODE" -e 'require("jose")' 2>/dev/null || {
	echo "SKIP: no node jose in $BOTID_NODE_PATH (scripts/install-deps)"
	exit 77
}
if [ -n "${BOTID_TOKEN_JWKS_PG:-}" ]; then
	. "$top_srcdir/tests/integration/pg-common.sh"
	start_postgres
fi

start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm token-jwks
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
MODULE="$top_builddir/pkcs11/.libs/botid-pkcs11.so"
[ -f "$MODULE" ] || fail "no $MODULE: build first"
PROVISION="$top_builddir/tools/botid-provision"

# The CA grants at most 30 s whatever the agent asks (it asks 40); 30 s is
# also how long a rotated token key stays in the JWK Set after its successor.
start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)" "token_max_ttl = 30"
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")
ISS="spiffe://$TD"

me="uid:$(id -u)"
agent_conf_begin "rotate_grace = 2s" "ssh_socket = $T/ssh.sock"
agent_add_bot tbot tpm ecdsa-p256 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
echo "max_token_ttl = 40" >>"$AGENT_CONF"
agent_add_bot pbot pkcs11 ecdsa-p256 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
agent_add_bot plain tpm ecdsa-p256 "$me"
# extra has scopes, but the join token does not name it: no certificate
# of either kind.
agent_add_bot extra pkcs11 ecdsa-p256 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot,pbot,plain \
    >"$T/join.token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/join.token"

# --- A token key's certificate and its JWK: both rows or neither ---------------
# The CA's database refuses every token_keys row until the trigger goes:
# each token key's certify then fails (500) and must leave no certificate
# row, which the JWK Set and SSH queries would take for a signing
# certificate (the old CA committed the certificate first).
db_sql() { ca_sql ca "$1"; }
if [ -n "${BOTID_TOKEN_JWKS_PG:-}" ]; then
	db_sql "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS
	    \$\$BEGIN RAISE EXCEPTION 'refused by the test'; END\$\$;
	    CREATE TRIGGER test_refuse BEFORE INSERT ON token_keys
	    FOR EACH ROW EXECUTE FUNCTION test_refuse()"
	undo_trigger="DROP TRIGGER test_refuse ON token_keys"
else
	db_sql "CREATE TRIGGER test_refuse BEFORE INSERT ON token_keys
	    BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
	undo_trigger="DROP TRIGGER test_refuse"
fi
start_agent

# Wait for each certificate: the bot's, then its token key's.
for bot in tbot pbot plain; do
	ok=
	for _ in $(seq 1 150); do
		botid_cli cert "$bot" --out "$T/$bot.chain" 2>/dev/null &&
		    { ok=1; break; }
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no certificate for $bot: $(tail -5 "$AGENT_LOG")"
done
for bot in tbot pbot; do
	for _ in $(seq 1 300); do
		grep -q "bot $bot+jwt: no certificate" "$AGENT_LOG" && break
		sleep 0.2
	done
	grep -q "bot $bot+jwt: no certificate: .*500" "$AGENT_LOG" ||
	    fail "$bot's token key was not refused with 500: $(grep "$bot" "$AGENT_LOG" | tail -3)"
done
grep -q 'ca: certify from .* failed: internal error' "$BOTID_CA_LOG" ||
    fail "botid-ca did not log the failed certify: $(tail -3 "$BOTID_CA_LOG")"
# Only the three signing certificates are recorded, no token key is served.
[ "$(db_sql "SELECT count(*) FROM certs WHERE bot IS NOT NULL")" -eq 3 ] ||
    fail "a refused token key's certificate was recorded: $(db_sql "SELECT serial, bot FROM certs")"
[ "$(db_sql "SELECT count(*) FROM token_keys")" -eq 0 ] || fail "a JWK was recorded"
curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/.well-known/jwks.json" \
    >"$T/jwks0.json" || fail "no JWKS"
[ "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["keys"]))' \
    "$T/jwks0.json")" -eq 0 ] ||
    fail "the JWK Set serves a key: $(cat "$T/jwks0.json")"
# Once the database takes the rows again, the agent's retry records both.
db_sql "$undo_trigger"
for bot in tbot pbot; do
	ok=
	for _ in $(seq 1 300); do
		botid_cli jwt "$bot" --aud probe >/dev/null 2>&1 &&
		    { ok=1; break; }
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no token key for $bot: $(tail -5 "$AGENT_LOG")"
done
[ "$(db_sql "SELECT count(*) FROM token_keys k JOIN certs c ON
    c.serial = k.serial")" -eq 2 ] ||
    fail "the token keys' rows: $(db_sql "SELECT serial FROM token_keys")"
[ "$(db_sql "SELECT count(*) FROM certs WHERE bot IS NOT NULL")" -eq 5 ] ||
    fail "certificate rows: $(db_sql "SELECT serial, bot FROM certs")"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' \
    "$T/state/attest/host.json")
spiffe="spiffe://$TD/host/$host_id/bot/tbot"

# --- A bot the join token does not name gets no token key either -------------
for _ in $(seq 1 150); do
	[ "$(grep -c 'bot extra is not allowed' "$BOTID_CA_LOG" || true)" -ge 2 ] &&
	    grep -q 'bot extra+jwt: no certificate' "$AGENT_LOG" && break
	sleep 0.2
done
[ "$(grep -c 'bot extra is not allowed' "$BOTID_CA_LOG" || true)" -ge 2 ] ||
    fail "botid-ca did not refuse both of extra's keys: $(tail -3 "$BOTID_CA_LOG")"
grep -q 'bot extra+jwt: no certificate' "$AGENT_LOG" ||
    fail "the agent does not log the token key's refusal: $(grep extra "$AGENT_LOG" | tail -3)"
out=$(botid_cli jwt extra --aud inventory 2>&1) && fail "extra made a token"
case $out in *"no token-key certificate"*) ;; *) fail "extra: $out";; esac

# --- A bot without scopes has no token key -----------------------------------
out=$(botid_cli jwt plain --aud inventory 2>&1) && fail "plain made a token"
case $out in *"no token-key certificate"*) ;; *) fail "plain: $out";; esac
ls "$T/state/tpm/tbot+jwt.tss2.pem" >/dev/null ||
    fail "tbot's token key blob is missing: $(ls "$T/state/tpm")"
[ ! -e "$T/state/tpm/plain+jwt.tss2.pem" ] || fail "plain has a token key"
# On the token, pbot's token key is made like its signing key.
objs=$(pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label \
    "$BOTID_TOKEN_LABEL" --login --pin "$(cat "$BOTID_PIN_FILE")" -O \
    --type privkey 2>/dev/null)
o=$(awk -v l="botid:pbot\\+jwt" '/Private Key Object/ { blk = "" }
    { blk = blk "\n" $0 } $0 ~ "label: *" l "$" { f = 1 }
    f && /Access:/ { print blk; exit }' <<<"$objs")
[ -n "$o" ] || fail "pbot's token key is not on the token: $objs"
for attr in "sensitive" "always sensitive" "never extractable"; do
	grep -q "$attr" <<<"$o" || fail "pbot's token key is not $attr"
done

# --- Discovery names the JWK Set ------------------------------------------------
curl -sf --cacert "$BOTID_CA_BUNDLE" \
    "$BOTID_CA_URL/.well-known/openid-configuration" >"$T/discovery.json" ||
    fail "no discovery document"
JWKS=$("$PY" - "$T/discovery.json" "$ISS" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["issuer"] == sys.argv[2], d
print(d["jwks_uri"])
PYEOF
) || fail "discovery: $(cat "$T/discovery.json")"
[ "$JWKS" = "$BOTID_CA_URL/.well-known/jwks.json" ] || fail "jwks_uri $JWKS"
curl -sf --cacert "$BOTID_CA_BUNDLE" "$JWKS" >"$T/jwks.json" || fail "no JWKS"

# A token-key request must name a well-formed grant: each of these is
# refused with 400 before anything else is looked at.
certify_bad() {	# certify_bad EXTRA-JSON-MEMBERS WHY
	local code
	code=$(curl -s -o "$T/certify.out" -w '%{http_code}' --cacert \
	    "$BOTID_CA_BUNDLE" -H 'Content-Type: application/json' --data \
	    "{\"host_id\":\"$host_id\",\"nonce\":\"AAAA\",\"bot\":\"tbot\",\"attestation\":\"pkcs11\",\"spki\":\"AAAA\",\"signature\":\"AAAA\"$1}" \
	    "$BOTID_CA_URL/v1/certify")
	[ "$code" = 400 ] || fail "certify with$1: HTTP $code $(cat "$T/certify.out")"
	grep -q "$2" "$T/certify.out" || fail "certify with$1: $(cat "$T/certify.out")"
}
certify_bad ',"purpose":"admin","scopes":["inventory:read"],"max_token_ttl":10' "purpose must be"
certify_bad ',"purpose":"token","scopes":["bad scope"],"max_token_ttl":10' "purpose must be"
certify_bad ',"purpose":"token","scopes":["a","a"],"max_token_ttl":10' "distinct"
certify_bad ',"purpose":"token","scopes":[],"max_token_ttl":10' "purpose must be"
certify_bad ',"purpose":"token","scopes":["a\\u0000b"],"max_token_ttl":10' "purpose must be"
certify_bad ',"purpose":"token","scopes":["a"],"max_token_ttl":0' "purpose must be"
certify_bad ',"scopes":["inventory:read"]' "need purpose"

# jose_check / pyjwt_check TOKEN_FILE: 0 accepted, 1 refused (reason out).
jose_check() {
	NODE_PATH="$BOTID_NODE_PATH" NODE_EXTRA_CA_CERTS="$BOTID_CA_BUNDLE" \
	    "$NODE" "$top_srcdir/tests/integration/jwks-check.cjs" "$JWKS" \
	    "$ISS" inventory "$1"
}
pyjwt_check() {
	SSL_CERT_FILE="$BOTID_CA_BUNDLE" "$PY" \
	    "$top_srcdir/tests/integration/jwks-check.py" "$JWKS" "$ISS" \
	    inventory "$1"
}
verify() {
	"$BOTID" verify-jwt --bundle "$BOTID_CA_BUNDLE" --aud inventory \
	    --issuer "$ISS" "$@"
}
# refused NAME TOKEN_FILE JOSE_WHY PYJWT_WHY BOTID_WHY: all three refuse it.
refused() {
	local out rc
	rc=0; out=$(jose_check "$2") || rc=$?
	[ "$rc" -eq 1 ] || fail "$1: jose did not refuse it ($rc): $out"
	case $out in *"$3"*) ;; *) fail "$1: jose: $out";; esac
	rc=0; out=$(pyjwt_check "$2") || rc=$?
	[ "$rc" -eq 1 ] || fail "$1: PyJWT did not refuse it ($rc): $out"
	case $out in *"$4"*) ;; *) fail "$1: PyJWT: $out";; esac
	out=$(verify "$(cat "$2")" 2>&1) && fail "$1: verify-jwt accepted it"
	case $out in *"$5"*) ;; *) fail "$1: verify-jwt: $out";; esac
}

# The JWK Set: both token keys, kid = thumbprint, x5c, use, alg; no
# signing key of any bot.
botid_cli jwt tbot --aud inventory --scope inventory:read --ttl 30 \
    >"$T/t.jwt" || fail "botid jwt tbot"
botid_cli jwt pbot --aud inventory --scope inventory:read >"$T/p.jwt" ||
    fail "botid jwt pbot"
"$PY" - "$T/jwks.json" "$T/t.jwt" "$T/tbot.chain" "$T/pbot.chain" <<'PYEOF' ||
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
import subprocess
keys = json.load(open(sys.argv[1]))["keys"]
h = open(sys.argv[2]).read().split(".")[0]
kid = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["kid"]
assert len(keys) == 2, keys
for k in keys:
    assert k["use"] == "sig" and k["alg"] == "ES256" and k["kty"] == "EC", k
    assert len(k["x5c"]) == 2, k
assert kid in [k["kid"] for k in keys], (kid, keys)
# Neither bot's signing key is in the set.
for chain in sys.argv[3:]:
    pem = subprocess.run(["openssl", "x509", "-in", chain, "-noout",
                          "-pubkey"], check=True, capture_output=True).stdout
    n = load_pem_public_key(pem).public_numbers()
    x = base64.urlsafe_b64encode(n.x.to_bytes(32, "big")).rstrip(b"=").decode()
    assert x not in [k["x"] for k in keys], chain
PYEOF
    fail "JWK Set: $(cat "$T/jwks.json")"
# The set's x5c leaf is a token-key certificate: the token EKU only.
"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"][0]["x5c"][0])' \
    "$T/jwks.json" | base64 -d | openssl x509 -inform DER -noout -text \
    >"$T/tokcert.txt"
grep -q '1.2.840.113556.1.8000.2554.57034.2493.28569.18913.41460.3005755.7539178.1' "$T/tokcert.txt" ||
    fail "no token EKU: $(cat "$T/tokcert.txt")"
grep -q 'TLS Web Client Authentication\|TLS Web Server' "$T/tokcert.txt" &&
    fail "a token-key certificate allows TLS"

# --- Real tokens: accepted by all three ------------------------------------------
for t in t p; do
	out=$(jose_check "$T/$t.jwt") || fail "jose refused $t.jwt: $out"
	case $out in *"\"iss\":\"$ISS\""*'"scope":"inventory:read"'*) ;;
	*) fail "jose claims: $out";; esac
	out=$(pyjwt_check "$T/$t.jwt") || fail "PyJWT refused $t.jwt: $out"
	out=$(verify --require-scope inventory:read "$(cat "$T/$t.jwt")") ||
	    fail "verify-jwt refused $t.jwt: $out"
done
out=$(verify --expect-spiffe "$spiffe" --require-tpm "$(cat "$T/t.jwt")") ||
    fail "verify-jwt tbot: $out"

# --- The CA's grant caps the lifetime: 30 s, though the agent allows 40 ------
jwts_ok() { grep '"op":"jwt"' "$AUDIT_LOG" | grep -c '"result":"ok"' || true; }
n_ok=$(jwts_ok)
out=$(botid_cli jwt tbot --aud inventory --ttl 40 2>&1) &&
    fail "a token beyond the CA's grant was made"
case $out in *denied*"grant"*) ;; *) fail "ttl beyond the grant: $out";; esac
[ "$(grep '"op":"jwt"' "$AUDIT_LOG" | grep '"bot":"tbot"' |
    grep '"result":"denied"' | grep -c "grant")" -gt 0 ] ||
    fail "the refusal is not audited: $(tail -2 "$AUDIT_LOG")"
botid_cli jwt tbot --aud inventory >"$T/default.jwt"
out=$(verify "$(cat "$T/default.jwt")")
exp=$(printf '%s' "$out" | sed 's/.*"exp":\([0-9]*\).*/\1/')
iat=$(printf '%s' "$out" | sed 's/.*"iat":\([0-9]*\).*/\1/')
[ $((exp - iat)) -eq 30 ] || fail "default lifetime $((exp - iat)), not 30"
n_ok=$((n_ok + 1))

# --- The forgery of issue 19, through every signing path ------------------------
now=$(date +%s)
printf '{"iss":"%s","sub":"%s","aud":"inventory","scope":"inventory:read inventory:admin","iat":%d,"nbf":%d,"exp":%d,"jti":"forged"}' \
    "$ISS" "$spiffe" "$now" "$now" "$((now + 30 * 86400))" >"$T/claims.json"
b64u() { basenc --base64url -w0 | tr -d '='; }
payload=$(b64u <"$T/claims.json")
real_header=$(cut -d. -f1 "$T/t.jwt")
# A header naming the signing key: kid its thumbprint, x5c its chain.
sign_header=$("$PY" - "$T/tbot.chain" <<'PYEOF'
import base64, json, subprocess, sys, hashlib
from cryptography.hazmat.primitives.serialization import load_pem_public_key
pem = open(sys.argv[1]).read()
certs = ["".join(c.split("-----")[0].split()) for c in
         pem.split("-----BEGIN CERTIFICATE-----")[1:]]
pub = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout",
                      "-pubkey"], check=True, capture_output=True).stdout
n = load_pem_public_key(pub).public_numbers()
b = lambda v: base64.urlsafe_b64encode(v.to_bytes(32, "big")).rstrip(b"=").decode()
jwk = json.dumps({"crv": "P-256", "kty": "EC", "x": b(n.x), "y": b(n.y)},
                 sort_keys=True, separators=(",", ":")).encode()
kid = base64.urlsafe_b64encode(hashlib.sha256(jwk).digest()).rstrip(b"=").decode()
h = json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid, "x5c": certs},
               separators=(",", ":")).encode()
print(base64.urlsafe_b64encode(h).rstrip(b"=").decode())
PYEOF
)
forge_raw() {	# forge_raw HEADER OUT: botid sign --format raw
	printf '%s.%s' "$1" "$payload" >"$T/input"
	check botid_cli sign tbot --in "$T/input" --format raw --out "$T/raw.sig"
	printf '%s.%s.%s\n' "$1" "$payload" "$(b64u <"$T/raw.sig")" >"$2"
}
# 1. botid sign-msg: its detached JWS over the claims is a whole JWT.
check botid_cli sign-msg tbot --in "$T/claims.json" --out "$T/msg.jws"
IFS=. read -r h _ s <"$T/msg.jws"
printf '%s.%s.%s\n' "$h" "$payload" "$s" >"$T/forged-msg.jwt"
# 2. botid sign --format raw, under the signing key's header.
forge_raw "$sign_header" "$T/forged-raw.jwt"
# 3. The same, under the real token's header (the token key's kid).
forge_raw "$real_header" "$T/forged-raw-kid.jwt"
# 4. botid-pkcs11.so with pkcs11-tool, under the real token's header. In
# a sanitizer build the module needs the ASan runtime preloaded into the
# uninstrumented tool (as in pkcs11-module.sh).
p11tool() {
	if [ -n "${BOTID_SANITIZER_PRELOAD:-}" ]; then
		LD_PRELOAD="$BOTID_SANITIZER_PRELOAD" \
		    ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0" \
		    pkcs11-tool "$@"
	else
		pkcs11-tool "$@"
	fi
}
printf '%s.%s' "$real_header" "$payload" >"$T/input"
openssl dgst -sha256 -binary "$T/input" >"$T/input.sha256"
BOTID_SOCKET="$AGENT_SOCK" p11tool --module "$MODULE" -O >"$T/objects" 2>&1 ||
    fail "pkcs11-tool -O: $(head -3 "$T/objects")"
id=$(awk '/^Private Key Object/ { p = 1; next } /^[^ ]/ { p = 0 }
    p && $1 == "label:" { l = $2 } p && $1 == "ID:" && l == "tbot" { print $2; exit }' \
    "$T/objects")
[ -n "$id" ] || fail "the module lists no tbot key: $(cat "$T/objects")"
# The module offers one private key per bot: the token key is not there.
[ "$(grep -c '^Private Key Object' "$T/objects")" -eq 4 ] ||
    fail "the module lists other keys: $(cat "$T/objects")"
grep -q 'jwt' "$T/objects" && fail "the module shows a token key: $(cat "$T/objects")"
BOTID_SOCKET="$AGENT_SOCK" check p11tool --module "$MODULE" --sign \
    -m ECDSA --id "$id" -i "$T/input.sha256" -o "$T/p11.sig"
printf '%s.%s.%s\n' "$real_header" "$payload" "$(b64u <"$T/p11.sig")" \
    >"$T/forged-p11.jwt"

# 5. The agent's ssh-agent socket: SIGN_REQUEST over header.payload with
# the key it lists for tbot (ecdsa-sha2-nistp256 signs its SHA-256, as
# ES256 does), under the real token's header. The socket lists one key
# per bot, none of them a token key.
"$PY" - "$T/ssh.sock" "$real_header.$payload" "$T/ssh.sig" "$T/ssh.ids" <<'PYEOF' ||
import socket, struct, sys
def s(b): return struct.pack(">I", len(b)) + b
def get(b, o):
    n = struct.unpack(">I", b[o:o + 4])[0]
    return b[o + 4:o + 4 + n], o + 4 + n
def call(c, msg):
    c.sendall(s(msg))
    n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
    return c.recv(n, socket.MSG_WAITALL)
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
r = call(c, bytes([11]))
assert r[0] == 12, "REQUEST_IDENTITIES answered %d" % r[0]
n, o, key, ids = struct.unpack(">I", r[1:5])[0], 5, None, []
for _ in range(n):
    blob, o = get(r, o)
    comment, o = get(r, o)
    kind = get(blob, 0)[0].decode()
    ids.append("%s %s" % (kind, comment.decode()))
    if comment == b"tbot" and not kind.endswith("-cert-v01@openssh.com"):
        key = blob
open(sys.argv[4], "w").write("\n".join(ids) + "\n")
assert key is not None, "no tbot key listed: %r" % ids
r = call(c, bytes([13]) + s(key) + s(sys.argv[2].encode()) + b"\0\0\0\0")
assert r[0] == 14, "SIGN_REQUEST answered %d" % r[0]
sig = get(r, 1)[0]
rs = get(sig, len(get(sig, 0)[0]) + 4)[0]
ri, o = get(rs, 0)
si = get(rs, o)[0]
open(sys.argv[3], "wb").write(int.from_bytes(ri, "big").to_bytes(32, "big") +
                              int.from_bytes(si, "big").to_bytes(32, "big"))
PYEOF
    fail "the ssh-agent socket did not sign for tbot"
grep -qi 'jwt' "$T/ssh.ids" && fail "the ssh-agent socket lists a token key: $(cat "$T/ssh.ids")"
# One plain key per bot at most, each named by a bot of the configuration.
grep -v -e '-cert-v01@openssh.com' "$T/ssh.ids" | awk '{ print $2 }' |
    sort >"$T/ssh.names"
[ -z "$(uniq -d "$T/ssh.names")" ] &&
    [ -z "$(grep -vxE 'tbot|pbot|plain|extra' "$T/ssh.names")" ] ||
    fail "the ssh-agent socket lists other keys: $(cat "$T/ssh.ids")"
printf '%s.%s.%s\n' "$real_header" "$payload" "$(b64u <"$T/ssh.sig")" \
    >"$T/forged-ssh.jwt"

# Each forgery is a good signature by the bot's signing key ...
check openssl x509 -in "$T/tbot.chain" -noout -pubkey -out "$T/tbot.sign.pub"
check openssl dgst -sha256 -verify "$T/tbot.sign.pub" -signature \
    <("$PY" -c 'import sys
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
s = open(sys.argv[1], "rb").read()
sys.stdout.buffer.write(encode_dss_signature(int.from_bytes(s[:32], "big"), int.from_bytes(s[32:], "big")))' "$T/p11.sig") \
    "$T/input" >/dev/null
# ... and no verifier takes it for a token.
refused "sign-msg" "$T/forged-msg.jwt" ERR_JWKS_NO_MATCHING_KEY \
    PyJWKClientError "not signed by a token key"
refused "sign raw" "$T/forged-raw.jwt" ERR_JWKS_NO_MATCHING_KEY \
    PyJWKClientError "not signed by a token key"
refused "sign raw, token kid" "$T/forged-raw-kid.jwt" \
    ERR_JWS_SIGNATURE_VERIFICATION_FAILED InvalidSignatureError signature
refused "pkcs11, token kid" "$T/forged-p11.jwt" \
    ERR_JWS_SIGNATURE_VERIFICATION_FAILED InvalidSignatureError signature
refused "ssh-agent, token kid" "$T/forged-ssh.jwt" \
    ERR_JWS_SIGNATURE_VERIFICATION_FAILED InvalidSignatureError signature
# No token was made along the way: the audit log has no new jwt line.
[ "$(jwts_ok)" -eq "$n_ok" ] || fail "a forgery was audited as a token"

# --- The token key rotates with the bot ------------------------------------------
kid_of() {
	"$PY" -c 'import base64,json,sys
h=open(sys.argv[1]).read().split(".")[0]
print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["kid"])' "$1"
}
old_kid=$(kid_of "$T/t.jwt")
check botid_cli rotate tbot >/dev/null
[ -e "$T/state/tpm/tbot~1+jwt.tss2.pem" ] ||
    fail "no new token key after the rotation: $(ls "$T/state/tpm")"
ok=
for _ in $(seq 1 150); do
	if botid_cli jwt tbot --aud inventory --scope inventory:read \
	    >"$T/t.jwt" 2>/dev/null && [ "$(kid_of "$T/t.jwt")" != "$old_kid" ]
	then
		ok=1
		break
	fi
	sleep 0.2
done
[ -n "$ok" ] || fail "tokens still come from the old token key"
out=$(jose_check "$T/t.jwt") || fail "jose refused the rotated key's token: $out"
for _ in $(seq 1 150); do
	[ -e "$T/state/tpm/tbot+jwt.tss2.pem" ] || break
	sleep 0.2
done
[ ! -e "$T/state/tpm/tbot+jwt.tss2.pem" ] ||
    fail "the old token key outlived rotate_grace"
[ -e "$T/state/tpm/tbot~1+jwt.tss2.pem" ] || fail "the new token key is gone"
# The set serves the new key at once, and the old one only until the
# tokens it signed have expired (token_max_ttl after its successor).
new_kid=$(kid_of "$T/t.jwt")
jwks_kids() {
	curl -sf --cacert "$BOTID_CA_BUNDLE" "$JWKS" | "$PY" -c 'import json,sys
for k in json.load(sys.stdin)["keys"]: print(k["kid"])'
}
jwks_kids >"$T/kids.now"
# -e: a kid is base64url and may begin with "-".
grep -qx -e "$new_kid" "$T/kids.now" || fail "the new token key is not in the set"
for _ in $(seq 1 600); do
	jwks_kids >"$T/kids" || fail "no JWKS"
	grep -qx -e "$old_kid" "$T/kids" || break
	sleep 0.2
done
grep -qx -e "$old_kid" "$T/kids" && fail "the rotated token key is still served"
grep -qx -e "$new_kid" "$T/kids" || fail "the new token key left the set"
[ "$(sort "$T/kids" | uniq -d)" = "" ] || fail "a kid is served twice: $(cat "$T/kids")"

# --- Revocation empties the set at the next request -------------------------------
kid=$(kid_of "$T/t.jwt")
check "$CA" revoke -c "$BOTID_CA_CONF" bot "$spiffe" >/dev/null
curl -sf --cacert "$BOTID_CA_BUNDLE" "$JWKS" >"$T/jwks2.json" || fail "no JWKS"
grep -qF -e "$kid" "$T/jwks2.json" && fail "a revoked token key is still served"
[ "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["keys"]))' \
    "$T/jwks2.json")" -eq 1 ] || fail "pbot's key left the set: $(cat "$T/jwks2.json")"
rc=0; out=$(jose_check "$T/t.jwt") || rc=$?
[ "$rc" -eq 1 ] || fail "jose accepted a revoked bot's token ($rc): $out"
case $out in *ERR_JWKS_NO_MATCHING_KEY*) ;; *) fail "revoked, jose: $out";; esac
rc=0; out=$(pyjwt_check "$T/t.jwt") || rc=$?
[ "$rc" -eq 1 ] || fail "PyJWT accepted a revoked bot's token ($rc): $out"
# The agent does not learn of the revocation (doc/security.md): it still
# mints with the revoked token key until that certificate expires, and
# only the verifiers that read the JWK Set (or the CRL) refuse the token.
botid_cli jwt tbot --aud inventory --scope inventory:read \
    >"$T/t-revoked.jwt" || fail "botid jwt tbot after the revocation"
[ "$(kid_of "$T/t-revoked.jwt")" = "$kid" ] ||
    fail "a revoked bot's token came from another key"
rc=0; out=$(jose_check "$T/t-revoked.jwt") || rc=$?
[ "$rc" -eq 1 ] || fail "jose accepted a token minted after the revocation ($rc): $out"
case $out in *ERR_JWKS_NO_MATCHING_KEY*) ;; *) fail "minted after revocation, jose: $out";; esac
botid_cli jwt pbot --aud inventory --scope inventory:read >"$T/p.jwt" ||
    fail "botid jwt pbot"
out=$(jose_check "$T/p.jwt") || fail "jose refused pbot's token: $out"

# --- Token keys go with their bot's grant and with the bot -------------------------
# pbot loses its scopes, tbot leaves the configuration: at the reload both
# token keys are destroyed (SoftHSM2 object, TPM blob), and pbot's token
# certificate is revoked, so the JWK Set is empty at the next request.
p_kid=$(kid_of "$T/p.jwt")
p11_labels() {
	pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label \
	    "$BOTID_TOKEN_LABEL" --login --pin "$(cat "$BOTID_PIN_FILE")" -O \
	    --type privkey 2>/dev/null | sed -n 's/^ *label: *//p'
}
p11_labels | grep -qx 'botid:pbot+jwt' || fail "pbot's token key is not on the token"
[ -e "$T/state/certs/tbot+jwt.pem" ] || fail "tbot's token chain is not cached"
agent_conf_begin "rotate_grace = 2s"
agent_add_bot pbot pkcs11 ecdsa-p256 "$me"
agent_add_bot plain tpm ecdsa-p256 "$me"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 150); do
	! p11_labels | grep -qx 'botid:pbot+jwt' &&
	    [ ! -e "$T/state/tpm/tbot~1+jwt.tss2.pem" ] && break
	sleep 0.2
done
p11_labels | grep -qx 'botid:pbot+jwt' && fail "pbot kept its token key"
p11_labels | grep -qx 'botid:pbot' || fail "pbot lost its signing key"
[ ! -e "$T/state/tpm/tbot~1+jwt.tss2.pem" ] || fail "removed tbot's token key is still there"
[ ! -e "$T/state/tpm/tbot~1.tss2.pem" ] || fail "removed tbot's key is still there"
[ ! -e "$T/state/certs/tbot+jwt.pem" ] || fail "removed tbot's token chain is cached"
out=$(botid_cli jwt pbot --aud inventory 2>&1) && fail "pbot made a token without scopes"
case $out in *"no token-key certificate"*) ;; *) fail "pbot: $out";; esac
for _ in $(seq 1 150); do
	grep -q 'pbot+jwt: certificate [0-9A-F]* revoked' "$AGENT_LOG" && break
	sleep 0.2
done
grep -q 'pbot+jwt: certificate [0-9A-F]* revoked' "$AGENT_LOG" ||
    fail "pbot's token certificate was not revoked: $(grep pbot "$AGENT_LOG" | tail -3)"
jwks_kids >"$T/kids" || fail "no JWKS"
grep -qx -e "$p_kid" "$T/kids" && fail "pbot's destroyed token key is still served"
rc=0; out=$(jose_check "$T/p.jwt") || rc=$?
[ "$rc" -eq 1 ] || fail "jose accepted a token of a destroyed token key ($rc): $out"
case $out in *ERR_JWKS_NO_MATCHING_KEY*) ;; *) fail "destroyed key, jose: $out";; esac

stop_agent
echo "PASS: token keys, the JWK Set, and the forgery refused by jose, PyJWT and verify-jwt"
