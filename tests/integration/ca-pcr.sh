#!/bin/bash
# Boot-state policy (pcr_policy = exact) end to end on swtpm: the CA's nonce
# answer names PCRs 16 and 23, the agent quotes them with its AK, and the
# CA issues only while they hold an allowed set. After tpm2_pcrextend of
# PCR 23 the renewal is refused with "PCR 23" named, counted in /metrics,
# while the agent keeps serving its certificate, logs the refusal once
# however often it retries, and `botid status` shows why; adding the new values as a second allowed set (an A/B update)
# makes the renewal pass again.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
export TPM2TOOLS_TCTI="$BOTID_TCTI"

# pcr_hex I: PCR I's SHA-256 value as tpm2_pcrread reads it (the agent is
# stopped: swtpm serves one client at a time).
pcr_hex() {
	tpm2_pcrread "sha256:$1" -o "$T/pcr.bin" >/dev/null ||
	    fail "tpm2_pcrread $1 failed"
	od -An -tx1 -v "$T/pcr.bin" | tr -d ' \n'
}
allow_now() {
	echo "pcr_allow = 16:$(pcr_hex 16),23:$(pcr_hex 23)"
}
zero=$(printf '0%.0s' $(seq 1 64))
[ "$(pcr_hex 23)" = "$zero" ] || fail "a fresh swtpm's PCR 23 is not zero"
PCR16=$(pcr_hex 16)
ALLOW1=$(allow_now)

# Bot certificates live 60 s and renew after 10% of that: a renewal comes
# within seconds, and the old certificate stays valid for the whole test.
start_ca ca "$BOTID_EK_CA_CHAIN" "bot_lifetime = 60" "pcr_policy = exact" \
    "pcr_select = 16,23" "$ALLOW1"
PORT=$(cat "$T/ca/port")
agent_conf_begin "renew_at = 10%"
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"

# The nonce answer names the selection.
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
nonce=$(curl -sf --cacert "$BOTID_CA_BUNDLE" -d "{\"host_id\":\"$host_id\"}" \
    "$BOTID_CA_URL/v1/nonce") || fail "no nonce"
case $nonce in *'"pcr_select":[16,23]'*'"pcr_bank":"sha256"'* | \
    *'"pcr_bank":"sha256"'*'"pcr_select":[16,23]'*) ;;
*) fail "the nonce answer does not name the PCR selection: $nonce";; esac

# --- Right values: a certificate --------------------------------------
start_agent
wait_log() {
	for _ in $(seq 1 600); do
		[ "$(grep -c -- "$1" "$2" || true)" -ge "${3:-1}" ] && return 0
		sleep 0.2
	done
	fail "no '$1' in $2 after 120 s: $(tail -3 "$2")"
}
wait_log "bot tbot: new certificate" "$AGENT_LOG"
check botid_cli cert tbot --out "$T/tbot.chain"
check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/tbot.chain"
issued=$(grep -c "ca: issued spiffe://.*/bot/tbot " "$BOTID_CA_LOG")
stop_agent

# --- PCR 23 extended: renewal refused, naming it ------------------------
check tpm2_pcrextend "23:sha256=$(printf 'botid ca-pcr test' | sha256sum | cut -d' ' -f1)"
[ "$(pcr_hex 23)" != "$zero" ] || fail "PCR 23 did not change"
[ "$(pcr_hex 16)" = "$PCR16" ] || fail "PCR 16 changed"
ALLOW2=$(allow_now)
start_agent
wait_log "refused (403): host $host_id: boot state refused: PCR 23 not allowed" \
    "$BOTID_CA_LOG"
wait_log "bot tbot: certificate renewal failed.*PCR 23" "$AGENT_LOG"
# Nothing was issued, the refusal is counted, the old certificate served.
[ "$(grep -c "ca: issued spiffe://.*/bot/tbot " "$BOTID_CA_LOG")" = "$issued" ] ||
    fail "a certificate was issued for a changed boot state"
curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/metrics" |
    grep -Eq '^botid_ca_boot_refusals_total [1-9]' ||
    fail "/metrics does not count the boot-state refusal"
check botid_cli cert tbot --out "$T/tbot.still"
cmp -s "$T/tbot.chain" "$T/tbot.still" ||
    fail "the agent stopped serving its certificate"
# The agent retries, and logs the same refusal once: after the CA's third
# refusal (the worker is serial, so the second reply was handled), one line.
wait_log "refused (403): host $host_id: boot state refused: PCR 23" \
    "$BOTID_CA_LOG" 3
[ "$(grep -c "bot tbot: certificate renewal failed.*PCR 23" "$AGENT_LOG")" = 1 ] ||
    fail "the agent logged the same refusal more than once"
out=$(botid_cli status 2>&1 || true)
case $out in *tbot*failed*"PCR 23 not allowed"*) ;;
*) fail "botid status does not show the cause: $out";; esac

# --- Policy update (the new values as a second set): renewal passes -------
kill -TERM "$BOTID_CA_PID"
wait "$BOTID_CA_PID" || true
sed -i "s|^listen = .*|listen = 127.0.0.1:$PORT|" "$BOTID_CA_CONF"
echo "$ALLOW2" >>"$BOTID_CA_CONF"
rm -f "$T/ca/port"
"$CA" serve -c "$BOTID_CA_CONF" --port-file "$T/ca/port" 2>>"$BOTID_CA_LOG" &
BOTID_CA_PID=$!
register_pid "$BOTID_CA_PID"
wait_log "ca: issued spiffe://.*/bot/tbot " "$BOTID_CA_LOG" $((issued + 1))
wait_log "bot tbot: new certificate" "$AGENT_LOG" 2
check botid_cli cert tbot --out "$T/tbot.new"
check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/tbot.new"
cmp -s "$T/tbot.chain" "$T/tbot.new" && fail "the certificate was not renewed"
stop_agent
echo "PASS: pcr_policy exact: issued, refused after a PCR change, issued after a policy update"
