#!/bin/bash
# The example bots (examples/) over mutual TLS: chatty (Python, standard
# library, wire protocol) gets a JWT with scope inventory:read from its
# agent and reads from inventory (C) through `openssl s_client`, whose key
# is chatty's bot key through botid-pkcs11.so; inventory's own TLS key is
# its bot key through the same module (libp11). inventory requires a client certificate
# from the CA and a token for it whose subject is that certificate's SPIFFE
# ID, refuses a write without inventory:write, and signs every response,
# which chatty verifies. Both use botid-ca's JWK Set: chatty checks its
# token's key is listed, inventory verifies every token against the set
# it fetches per request, so a revoked bot's token is refused at once.
# Real botid-ca, swtpm and SoftHSM2 fixtures.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm examples
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
PY=${PYTHON3:-/usr/bin/python3}
INVENTORY="$top_builddir/examples/inventory"
MODULE="$top_builddir/pkcs11/.libs/botid-pkcs11.so"

start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)"
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")
me="uid:$(id -u)"
agent_conf_begin
agent_add_bot chatty tpm ecdsa-p256 "$me"
echo "scopes = inventory:read" >>"$AGENT_CONF"
agent_add_bot restocker pkcs11 ecdsa-p256 "$me"
echo "scopes = inventory:read inventory:write" >>"$AGENT_CONF"
agent_add_bot inventory pkcs11 ecdsa-p256 "$me"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h \
    --bots chatty,restocker,inventory >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" \
    --join-token-file "$T/join.token" >/dev/null
start_agent
for bot in chatty restocker inventory; do
	ok=
	for _ in $(seq 1 150); do
		botid_cli cert "$bot" --out "$T/$bot.chain" >/dev/null 2>&1 &&
		    { ok=1; break; }
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no certificate for $bot: $(tail -5 "$AGENT_LOG")"
done
# The token keys' certificates come in requests of their own.
for bot in chatty restocker; do
	ok=
	for _ in $(seq 1 150); do
		botid_cli jwt "$bot" --aud probe >/dev/null 2>&1 &&
		    { ok=1; break; }
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no token key for $bot: $(tail -5 "$AGENT_LOG")"
done
JWKS="$BOTID_CA_URL/.well-known/jwks.json"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' \
    "$T/state/attest/host.json")
inv_id="spiffe://$TD/host/$host_id/bot/inventory"
chatty_id="spiffe://$TD/host/$host_id/bot/chatty"

# In a sanitizer build the module is ASan-instrumented; the tools that load
# it (openssl, and inventory through libp11) need the runtime preloaded.
if [ -n "${BOTID_SANITIZER_PRELOAD:-}" ]; then
	export LD_PRELOAD="$BOTID_SANITIZER_PRELOAD"
	export ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0"
fi

"$INVENTORY" --bot inventory --bundle "$BOTID_CA_BUNDLE" --module "$MODULE" \
    --jwks "$JWKS" --issuer "spiffe://$TD" \
    --socket "$AGENT_SOCK" --port-file "$T/inv.port" 2>"$T/inventory.log" &
register_pid $!
for _ in $(seq 1 100); do [ -s "$T/inv.port" ] && break; sleep 0.1; done
[ -s "$T/inv.port" ] || fail "inventory did not start: $(cat "$T/inventory.log")"
port=$(cat "$T/inv.port")
chatty() {
	"$PY" "$top_srcdir/examples/chatty.py" --socket "$AGENT_SOCK" \
	    --bundle "$BOTID_CA_BUNDLE" --module "$MODULE" --port "$port" \
	    --botid "$BOTID" --jwks "$JWKS" "$@"
}

# Read with a read-only token: allowed; the server saw chatty's TLS
# certificate, and the answer is signed by inventory.
out=$(chatty --bot chatty --expect-spiffe "$inv_id" read 2>&1) ||
    fail "chatty read: $out"
case $out in
"200 from $inv_id: "*'"caller": "'"$chatty_id"'"'*'"widget": 12'*) ;;
*) fail "chatty read: $out";;
esac
grep -q "read by $chatty_id: 200" "$T/inventory.log" ||
    fail "inventory did not log the read: $(tail -3 "$T/inventory.log")"

# Write with the same read-only token: inventory refuses it.
rc=0
out=$(chatty --bot chatty write gear 5 2>&1) || rc=$?
[ "$rc" -eq 3 ] || fail "a write with inventory:read only was not refused ($rc): $out"
case $out in *'"needs": "inventory:write"'*) ;; *) fail "write refusal: $out";; esac
grep -q "refused $chatty_id: .*lacks scope inventory:write" "$T/inventory.log" ||
    fail "inventory does not log why: $(tail -3 "$T/inventory.log")"

# chatty cannot even get a write token: its grant is read only.
rc=0
out=$(chatty --bot chatty --scope inventory:write write gear 5 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "chatty got a write token ($rc): $out"
case $out in *"no token"*"not granted"*) ;; *) fail "chatty write token: $out";; esac

# restocker may write.
out=$(chatty --bot restocker --scope inventory:write write gear 5 2>&1) ||
    fail "restocker write: $out"
case $out in *'"count": 8'*) ;; *) fail "restocker write: $out";; esac

# A token is bound to its bot's TLS identity: restocker's write token sent
# over chatty's mutual TLS connection is refused.
botid_cli jwt restocker --aud inventory --scope inventory:write >"$T/restocker.jwt"
body='{"item": "gear", "count": 1}'
printf 'POST /items HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %d\r\nAuthorization: Bearer %s\r\n\r\n%s' \
    "${#body}" "$(cat "$T/restocker.jwt")" "$body" |
    PKCS11_MODULE_PATH="$MODULE" BOTID_SOCKET="$AGENT_SOCK" openssl s_client \
    -quiet -connect "127.0.0.1:$port" -CAfile "$BOTID_CA_BUNDLE" \
    -verify_return_error -engine pkcs11 -keyform engine \
    -key "pkcs11:object=chatty;type=private" -cert "$T/chatty.chain" \
    >"$T/bound.out" 2>"$T/bound.err" || true	# no close_notify: see chatty.py
head -1 "$T/bound.out" | grep -q '^HTTP/1.[01] 403 ' &&
    grep -q '"needs": "inventory:write"' "$T/bound.out" ||
    fail "a token over another bot's TLS: $(cat "$T/bound.out")"
grep -q "refused $chatty_id: .*spiffe" "$T/inventory.log" ||
    fail "inventory does not say why: $(tail -3 "$T/inventory.log")"

# No client certificate: the TLS handshake fails before any HTTP (curl
# loads no module here, so it runs without a preloaded sanitizer runtime).
rc=0
out=$(env -u LD_PRELOAD curl -sS --max-time 30 --cacert "$BOTID_CA_BUNDLE" \
    --resolve "inventory:$port:127.0.0.1" "https://inventory:$port/items" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "inventory answered a client without a certificate: $out"

# chatty checks the server: a bundle of another CA fails the handshake,
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=other-ca -keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null
rc=0
out=$("$PY" "$top_srcdir/examples/chatty.py" --socket "$AGENT_SOCK" \
    --bundle "$T/other.pem" --module "$MODULE" --port "$port" \
    --botid "$BOTID" --bot chatty read 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "chatty trusted a server outside its bundle ($rc): $out"
case $out in *"over mTLS"*) ;; *) fail "other CA: $out";; esac
# and a response signed by a bot other than the one expected is refused.
rc=0
out=$(chatty --bot chatty --expect-spiffe "$chatty_id" read 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "a response from the wrong bot was believed ($rc): $out"
case $out in *"signature is bad"*"not spiffe"*) ;; *) fail "wrong signer: $out";; esac
# Revoked at botid-ca: restocker's key leaves the JWK Set, chatty sees it
# before sending, and inventory refuses a token it is sent anyway.
check "$CA" revoke -c "$BOTID_CA_CONF" bot \
    "spiffe://$TD/host/$host_id/bot/restocker" >/dev/null
rc=0
out=$(chatty --bot restocker --scope inventory:write write gear 1 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "chatty sent a revoked bot's token ($rc): $out"
case $out in *"not in the CA's JWK Set"*) ;; *) fail "revoked, chatty: $out";; esac
rc=0
out=$("$PY" "$top_srcdir/examples/chatty.py" --socket "$AGENT_SOCK" \
    --bundle "$BOTID_CA_BUNDLE" --module "$MODULE" --port "$port" \
    --botid "$BOTID" --bot restocker --scope inventory:write \
    write gear 1 2>&1) || rc=$?
[ "$rc" -eq 3 ] || fail "inventory took a revoked bot's token ($rc): $out"
grep -q "refused .*restocker: kid .* is not in the JWK Set" "$T/inventory.log" ||
    fail "inventory does not say why: $(tail -3 "$T/inventory.log")"
echo "PASS: example bots chatty and inventory over mutual TLS"
