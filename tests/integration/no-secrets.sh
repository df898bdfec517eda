#!/bin/bash
# No secret left behind: the whole flow (a CA, provisioning with a join
# token, TPM and SoftHSM2 bots with certificates, signing, a JWT, a signed
# message, a denied request, the agent and the CA stopped), then every file
# it left is scanned (no-secrets.py) for private keys in PEM or DER, and
# for the SoftHSM2 PINs, the join token and the CA's private scalar in raw,
# hex and base64 forms. Only the stores meant to hold secrets are left
# out: the PIN files and the token file the test wrote, the CA's key file,
# the TPM simulator's own state (the chip) and its EK CA. Last, what the
# scan does not show: SoftHSM2's token files and PIN file, copied, sign as
# a bot (SoftHSM2 gives no protection against a disk copy).
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm nosecrets
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
PY=${PYTHON3:-/usr/bin/python3}

start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)"
me="uid:$(id -u)"
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "$me"
echo "scopes = orders:read" >>"$AGENT_CONF"
agent_add_bot pbot pkcs11 ecdsa-p256 "$me"
agent_add_bot rbot pkcs11 rsa-2048 "$me"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot,pbot,rbot \
    >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" \
    --join-token-file "$T/join.token" >/dev/null
start_agent
for b in tbot pbot rbot; do
	for _ in $(seq 1 150); do
		botid_cli cert "$b" --out "$T/$b.chain" 2>/dev/null && break
		sleep 0.2
	done
	[ -s "$T/$b.chain" ] || fail "no certificate for $b: $(tail -3 "$AGENT_LOG")"
	printf 'order for %s\n' "$b" >"$T/$b.msg"
	check botid_cli sign "$b" --in "$T/$b.msg" --out "$T/$b.sig"
done
check botid_cli jwt tbot --aud orders --scope orders:read >"$T/tbot.jwt"
check botid_cli sign-msg pbot --in "$T/pbot.msg" --out "$T/pbot.jws"
! botid_cli jwt tbot --aud orders --scope orders:write >/dev/null 2>&1 ||
    fail "a scope outside the grant was issued"
stop_agent
kill "$BOTID_CA_PID"
wait "$BOTID_CA_PID" 2>/dev/null || true

# What the test knows: the PINs, the join token (its secret part: the CA's
# TLS pin after the dot is public, and saved by the host), the CA key's
# scalar and the CA's TLS key's.
scalar_of() {
	openssl pkey -in "$1" -noout -text |
	    awk '/^priv:/ { p = 1; next } /^pub:/ { p = 0 } p' | tr -d ' :\n'
}
ca_scalar=$(scalar_of "$T/ca/ca.key")
[ ${#ca_scalar} -ge 64 ] || fail "cannot read the CA key's scalar"
tls_scalar=$(scalar_of "$T/ca/tls.key")
[ ${#tls_scalar} -ge 64 ] || fail "cannot read the CA's TLS key's scalar"
hsm_dir=$(dirname "$BOTID_PIN_FILE")
tpm_state="$T/tpm/state"
[ -d "$tpm_state" ] || fail "no TPM state directory $tpm_state"
check "$PY" "$top_srcdir/tests/integration/no-secrets.py" \
    --text "user PIN=$(cat "$hsm_dir/user.pin")" \
    --text "SO PIN=$(cat "$hsm_dir/so.pin")" \
    --text "join token=$(cut -d. -f1 "$T/join.token")" \
    --secret "CA private scalar=$ca_scalar" \
    --secret "CA TLS private scalar=$tls_scalar" \
    --exclude "$hsm_dir/user.pin" --exclude "$hsm_dir/so.pin" \
    --exclude "$T/join.token" --exclude "$T/ca/ca.key" \
    --exclude "$T/ca/tls.key" \
    --exclude "$tpm_state" --exclude "$T/tpm/ca" \
    "$T"
# The scan covered what matters: the state, the audit log, the logs, the
# CA's database and the token's files.
for f in "$T/state" "$AUDIT_LOG" "$AGENT_LOG" "$BOTID_CA_LOG" "$T/ca/ca.db" \
    "$hsm_dir"; do
	[ -e "$f" ] || fail "expected $f to exist and be scanned"
done
echo "PASS: no private key, PIN or join token left in any file"

# What the scan does not show (doc/security.md): SoftHSM2's token is files
# on the same disk as its PIN file, so a copy of the disk is a usable key.
# The copied token files and PIN, in a SoftHSM2 of the copier's own, sign
# as pbot, and pbot's certified public key verifies it.
mkdir -m 0700 "$T/copy"
cp -a "$hsm_dir/tokens" "$T/copy/tokens"
cp "$hsm_dir/user.pin" "$T/copy/user.pin"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' \
    "$T/copy/tokens" >"$T/copy/softhsm2.conf"
printf 'an order pbot never signed\n' >"$T/copy/msg"
openssl dgst -sha256 -binary "$T/copy/msg" >"$T/copy/digest"
copy_p11() {
	SOFTHSM2_CONF="$T/copy/softhsm2.conf" pkcs11-tool --module \
	    "$BOTID_PKCS11_MODULE" --token-label "$BOTID_TOKEN_LABEL" --login \
	    --pin "$(cat "$T/copy/user.pin")" "$@"
}
# By id: with --label, pkcs11-tool's C_Sign failed on some runs here.
id=$(copy_p11 --list-objects --type privkey 2>/dev/null | awk '
	/^ *label:/ { label = $2 }
	/^ *ID:/ { if (label == "botid:pbot") print $2 }')
[ -n "$id" ] || fail "no botid:pbot private key in the copied token"
copy_p11 --sign --mechanism ECDSA --id "$id" --signature-format openssl \
    --input-file "$T/copy/digest" --output-file "$T/copy/sig" \
    >"$T/copy/p11.out" 2>&1 || fail "the copied SoftHSM2 token did not sign: $(cat "$T/copy/p11.out")"
openssl x509 -in "$T/pbot.chain" -noout -pubkey >"$T/copy/pbot.pub"
check openssl pkeyutl -verify -pubin -inkey "$T/copy/pbot.pub" \
    -in "$T/copy/digest" -sigfile "$T/copy/sig"
echo "SoftHSM2: a copy of its token files and PIN file signs as pbot, as documented"
