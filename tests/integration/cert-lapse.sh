#!/bin/bash
# What stops when a bot's certificates lapse, and what does not (the
# "compromised bot" row of doc/security.md): with botid-ca down past the
# end of 30-second certificates, the agent refuses to mint a JWT (no
# token, "no token-key certificate", an audited error), serves no
# certificate chain, `botid status` exits 1, `botid verify-cert`,
# `verify-jwt` and `verify-msg` refuse the chain, a token and a
# message signed before, and `botid sign-msg` (which sends the chain)
# refuses; a raw signature is still made, and it verifies against the bare
# public key: a relying party must verify through the certificate, not a
# pinned key.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

PY=${PYTHON3:-python3}
start_ca ca "$BOTID_EK_CA_CHAIN" "bot_lifetime = 30s"
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
echo "scopes = inventory:read" >>"$AGENT_CONF"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" \
    --join-token-file "$T/join.token" >/dev/null
start_agent

# Both certificates (signing key, then token key) come in their own
# requests: wait for a token, which needs both.
ok=
for _ in $(seq 1 300); do
	if botid_cli cert tbot --out "$T/tbot.chain" 2>/dev/null &&
	    botid_cli jwt tbot --aud inventory >"$T/before.jwt" \
	    2>/dev/null; then
		ok=1
		break
	fi
	sleep 0.2
done
[ -n "$ok" ] || fail "no certificate or token for tbot: $(tail -5 "$AGENT_LOG")"
check botid_cli pubkey tbot --out "$T/tbot.pub"
printf 'order 0\n' >"$T/msg0"
check botid_cli sign-msg tbot --in "$T/msg0" --out "$T/msg0.jws"
check "$BOTID" verify-msg --bundle "$BOTID_CA_BUNDLE" --in "$T/msg0" \
    "$T/msg0.jws" >/dev/null
check "$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" "$T/tbot.chain" >/dev/null
check "$BOTID" verify-jwt --bundle "$BOTID_CA_BUNDLE" --aud inventory \
    "$(cat "$T/before.jwt")" >/dev/null

# No renewal from here on.
kill -KILL "$BOTID_CA_PID"
wait "$BOTID_CA_PID" 2>/dev/null || true

# The later of the two notAfter dates: the signing chain's and the token
# key's (the x5c leaf of the token).
"$PY" - "$T/before.jwt" >"$T/token.pem" <<'PY'
import base64, json, sys, textwrap
h = open(sys.argv[1]).read().strip().split(".")[0]
leaf = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["x5c"][0]
print("-----BEGIN CERTIFICATE-----")
print("\n".join(textwrap.wrap(leaf, 64)))
print("-----END CERTIFICATE-----")
PY
end=0
for pem in "$T/tbot.chain" "$T/token.pem"; do
	na=$(date -d "$(openssl x509 -in "$pem" -noout -enddate | cut -d= -f2)" +%s)
	[ "$na" -gt "$end" ] && end=$na
done
[ "$end" -gt "$(date +%s)" ] || fail "the certificates lapsed before the test began"
# The event is the clock passing notAfter; 120 s bounds a hung test only.
for _ in $(seq 1 1200); do
	[ "$(date +%s)" -gt "$end" ] && break
	sleep 0.1
done
[ "$(date +%s)" -gt "$end" ] || fail "the clock did not pass $end"

# --- What stops ---------------------------------------------------------
rc=0
botid_cli jwt tbot --aud inventory >"$T/after.jwt" 2>"$T/after.err" || rc=$?
[ "$rc" -eq 1 ] || fail "jwt after the lapse: exit $rc, want 1: $(cat "$T/after.err")"
grep -q "no token-key certificate" "$T/after.err" ||
    fail "jwt after the lapse said: $(cat "$T/after.err")"
[ ! -s "$T/after.jwt" ] || fail "a token was printed after the lapse"
"$PY" - "$AUDIT_LOG" <<'PY' || fail "audit: the refused token"
import json, sys
jwt = [json.loads(l) for l in open(sys.argv[1])]
jwt = [l for l in jwt if l.get("op") == "jwt" and l.get("bot") == "tbot"]
assert [l["result"] for l in jwt] == ["ok", "error"], jwt
assert jwt[-1]["detail"] == "no certificate", jwt[-1]
PY
expect_fail botid_cli cert tbot
rc=0
botid_cli status >"$T/status.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "status after the lapse: exit $rc: $(cat "$T/status.out")"
# --leeway 0: by default the verifiers forgive 60 s of clock skew.
out=$("$BOTID" verify-cert --bundle "$BOTID_CA_BUNDLE" --leeway 0 \
    "$T/tbot.chain" 2>&1) &&
    fail "verify-cert accepted a lapsed chain"
case $out in *expired*) ;; *) fail "verify-cert said: $out";; esac
out=$("$BOTID" verify-jwt --bundle "$BOTID_CA_BUNDLE" --aud inventory \
    --leeway 0 "$(cat "$T/before.jwt")" 2>&1) &&
    fail "verify-jwt accepted a token whose key's certificate lapsed"
case $out in *expired*) ;; *) fail "verify-jwt said: $out";; esac
out=$("$BOTID" verify-msg --bundle "$BOTID_CA_BUNDLE" --leeway 0 \
    --in "$T/msg0" "$T/msg0.jws" 2>&1) &&
    fail "verify-msg accepted a message of a lapsed key"
case $out in *expired*) ;; *) fail "verify-msg said: $out";; esac
# botid sign-msg puts the chain in the JWS: libbotid asks for it first.
rc=0
botid_cli sign-msg tbot --in "$T/msg0" --out "$T/after.jws" \
    2>"$T/after-msg.err" || rc=$?
[ "$rc" -eq 1 ] && [ ! -e "$T/after.jws" ] ||
    fail "sign-msg after the lapse: exit $rc: $(cat "$T/after-msg.err")"
grep -q "no certificate yet" "$T/after-msg.err" ||
    fail "sign-msg after the lapse said: $(cat "$T/after-msg.err")"

# --- What does not stop: a raw signature against a pinned key -------------
printf 'order 1\n' >"$T/msg"
check botid_cli sign tbot --in "$T/msg" --out "$T/msg.sig"
check openssl dgst -sha256 -verify "$T/tbot.pub" -signature "$T/msg.sig" "$T/msg"
stop_agent
echo "PASS: a lapsed certificate stops tokens and chains, not raw signatures"
