#!/bin/bash
# Forged boot-state evidence under pcr_policy = exact, each certify body
# made by tests/integration/pcr-quote-probe.c with real swtpm quotes and
# posted with curl: a quote over another nonce, by another TPM's AK, over
# another selection than asked, PCR values that do not hash to the quote's
# digest, and no quote at all. Each is refused with its exact reason, is
# counted in /metrics, and leaves no certificate (no "issued" log line, no
# inventory row). The right quote, made the same way, is accepted: the
# probe's forgeries differ from it in one thing each. Last, a host whose
# PCR 23 changed is refused at enrolment (activation is quoted too).
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
# The probe is a test tool that exits without freeing its TSS and CA
# client: LeakSanitizer would fail it in a sanitizer build (not the CA's
# and agent's leak checks, which stay on).
probe() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    "$top_builddir/tests/integration/pcr-quote-probe" "$@"
}

pcr_hex() {
	tpm2_pcrread -T "$BOTID_TCTI" "sha256:$1" -o "$T/pcr.bin" >/dev/null ||
	    fail "tpm2_pcrread $1 failed"
	od -An -tx1 -v "$T/pcr.bin" | tr -d ' \n'
}
start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)" "pcr_policy = exact" \
    "pcr_select = 16,23" "pcr_allow = 16:$(pcr_hex 16),23:$(pcr_hex 23)"
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"

http() {
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -X "$1" -H 'Content-Type: application/json' --data-binary "@$3" \
	    "$BOTID_CA_URL$2"
}
issued() {
	grep -c "ca: issued spiffe://" "$BOTID_CA_LOG" || true
}
# attack MODE STATUS REASON: the probe's body for MODE (bot "m-MODE") is
# refused with STATUS and REASON, and no certificate comes of it.
attack() {
	local mode=$1 want=$2 reason=$3 before got
	probe "$T/state" "$BOTID_TCTI" "$mode" "m-$mode" "$T/$mode.json" \
	    "$(fixture_var other BOTID_TCTI)" >"$T/probe.out" 2>&1 ||
	    fail "pcr-quote-probe $mode: $(cat "$T/probe.out")"
	before=$(issued)
	got=$(http POST /v1/certify "$T/$mode.json")
	[ "$got" = "$want" ] || fail "$mode: HTTP $got, not $want: $(cat "$T/body")"
	grep -qF "$reason" "$T/body" ||
	    fail "$mode: the refusal does not say '$reason': $(cat "$T/body")"
	grep -qF "$reason" "$BOTID_CA_LOG" ||
	    fail "$mode: the CA log does not say '$reason'"
	[ "$(issued)" = "$before" ] || fail "$mode: a certificate was issued"
	if [ "$("$CA" inventory -c "$BOTID_CA_CONF" |
	    grep -c "/bot/m-$mode\$")" != 0 ]; then
		fail "$mode: a certificate row exists"
	fi
}

attack nonce 403 "PCR quote refused: nonce does not match"
attack other-ak 403 "PCR quote refused: signature does not verify"
attack selection 403 "PCR quote refused: the quote's PCR selection is not the one asked for"
attack values 403 "PCR quote refused: PCR values do not match the quote's digest"
attack none 400 "the boot-state policy needs a PCR quote"
[ "$(curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/metrics" |
    grep -c '^botid_ca_boot_refusals_total 4$')" -gt 0 ] ||
    fail "/metrics does not count the four refused quotes"

# The same probe's right quote is accepted, once.
probe "$T/state" "$BOTID_TCTI" good m-good "$T/good.json" >"$T/probe.out" 2>&1 ||
    fail "pcr-quote-probe good: $(cat "$T/probe.out")"
got=$(http POST /v1/certify "$T/good.json")
[ "$got" = 200 ] || fail "the right quote: HTTP $got: $(cat "$T/body")"
[ "$("$CA" inventory -c "$BOTID_CA_CONF" | grep -c "/bot/m-good\$")" -gt 0 ] ||
    fail "no inventory row for the accepted certificate"
got=$(http POST /v1/certify "$T/good.json")
[ "$got" = 409 ] || fail "a replayed quote: HTTP $got, not 409"

# Enrolment is quoted too: with PCR 23 changed, a new host is refused at
# activation, naming it, and no host row, certificate or token use is left.
tpm2_pcrextend -T "$BOTID_TCTI" \
    "23:sha256=$(printf 'rootkit' | sha256sum | cut -d' ' -f1)" ||
    fail "tpm2_pcrextend failed"
hosts=$("$CA" inventory -c "$BOTID_CA_CONF" | awk 'NR > 1 && $2 == "enrolled"' | sort -u -k1,1 | wc -l)
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token2"
sed "s|^state_dir *=.*|state_dir = $T/state2|" "$AGENT_CONF" >"$T/agent2.conf"
out=$("$PROVISION" -c "$T/agent2.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token2" 2>&1) &&
    fail "a host with a refused boot state was enrolled"
case $out in *"boot state refused: PCR 23 not allowed by the policy"*) ;;
*) fail "enrolment refusal: unclear message: $out";; esac
grep -q "activate from .* refused (403): host (enrolling): boot state refused: PCR 23" \
    "$BOTID_CA_LOG" || fail "the CA log does not show the refused activation"
[ "$("$CA" inventory -c "$BOTID_CA_CONF" | awk 'NR > 1 && $2 == "enrolled"' | sort -u -k1,1 | wc -l)" = "$hosts" ] ||
    fail "a host row was added for the refused enrolment"
[ ! -e "$T/state2/attest/host-cert.pem" ] || fail "a host certificate was written"
echo "PASS: forged PCR quotes refused, the right one accepted, a changed host not enrolled"
