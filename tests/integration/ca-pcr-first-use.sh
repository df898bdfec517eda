#!/bin/bash
# Boot-state policy pcr_policy = first-use on swtpm. A host enrolled
# before the policy was set is "never quoted" until its first certify,
# whose PCR 23 value becomes golden ("good"); a host enrolled under the
# policy has its values recorded at enrolment. After tpm2_pcrextend of
# PCR 23 the renewal is refused with the PCR named and nothing issued, the
# inventory says "changed"; after `botid-ca host approve-boot HOST` the
# renewal passes and it is "good".
# With BOTID_PCR_PG=1 (ca-pcr-first-use-pg.sh) the CA runs on PostgreSQL.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
if [ -n "${BOTID_PCR_PG:-}" ]; then
	. "$top_srcdir/tests/integration/pg-common.sh"
	start_postgres
fi
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
export TPM2TOOLS_TCTI="$BOTID_TCTI"

# Enrolled with no policy; the CA then restarts with first-use.
start_ca ca "$BOTID_EK_CA_CHAIN" "bot_lifetime = 60"
agent_conf_begin "renew_at = 10%"
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
[ -n "$host_id" ] || fail "no host id"
PORT=$(cat "$T/ca/port")
kill -TERM "$BOTID_CA_PID"
wait "$BOTID_CA_PID" || true
sed -i "s|^listen = .*|listen = 127.0.0.1:$PORT|" "$BOTID_CA_CONF"
printf '%s\n' "pcr_policy = first-use" "pcr_select = 23" >>"$BOTID_CA_CONF"
rm -f "$T/ca/port"
"$CA" serve -c "$BOTID_CA_CONF" --port-file "$T/ca/port" 2>>"$BOTID_CA_LOG" &
BOTID_CA_PID=$!
register_pid "$BOTID_CA_PID"
for _ in $(seq 1 100); do [ -s "$T/ca/port" ] && break; sleep 0.1; done
[ -s "$T/ca/port" ] || fail "botid-ca did not restart"

boot_state() {
	"$CA" inventory -c "$BOTID_CA_CONF" |
	    awk -v h="$host_id" '$1 == h && NF == 3 {print $2}'
}
wait_log() {
	for _ in $(seq 1 600); do
		[ "$(grep -c -- "$1" "$2" || true)" -ge "${3:-1}" ] && return 0
		sleep 0.2
	done
	fail "no '$1' in $2 after 120 s: $(tail -3 "$2")"
}
issued() {
	grep -c "ca: issued spiffe://.*/bot/tbot " "$BOTID_CA_LOG" || true
}

[ "$(boot_state)" = never-quoted ] ||
    fail "before any quote the inventory says '$(boot_state)'"
out=$("$CA" host approve-boot -c "$BOTID_CA_CONF" "$host_id" 2>&1) &&
    fail "approve-boot of a never quoted host succeeded"
case $out in *"no quote recorded for host $host_id"*) ;;
*) fail "approve-boot, never quoted: $out";; esac

start_agent
wait_log "bot tbot: new certificate" "$AGENT_LOG"
grep -q "host $host_id: first boot state recorded at its first quote" "$BOTID_CA_LOG" ||
    fail "the CA did not record the first boot state"
[ "$(boot_state)" = good ] || fail "after the first quote: '$(boot_state)'"
stop_agent

check tpm2_pcrextend "23:sha256=$(printf 'new kernel' | sha256sum | cut -d' ' -f1)"
before=$(issued)
start_agent
wait_log "refused (403): host $host_id: boot state refused: PCR 23 changed since approved" \
    "$BOTID_CA_LOG"
wait_log "bot tbot: certificate renewal failed.*PCR 23 changed" "$AGENT_LOG"
[ "$(issued)" = "$before" ] || fail "a certificate was issued for a changed boot"
[ "$(boot_state)" = changed ] || fail "after the change: '$(boot_state)'"
check botid_cli cert tbot --out "$T/still.pem"

out=$("$CA" host approve-boot -c "$BOTID_CA_CONF" "$host_id" 2>&1) ||
    fail "approve-boot failed: $out"
wait_log "ca: issued spiffe://.*/bot/tbot " "$BOTID_CA_LOG" $((before + 1))
wait_log "bot tbot: new certificate" "$AGENT_LOG" 2
[ "$(boot_state)" = good ] || fail "after approve-boot: '$(boot_state)'"
stop_agent

# A host enrolled under the policy is quoted at activation: "good" at once.
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token2"
sed "s|^state_dir *=.*|state_dir = $T/state2|" "$AGENT_CONF" >"$T/agent2.conf"
check "$PROVISION" -c "$T/agent2.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token2"
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state2/attest/host.json")
grep -q "host $host_id: first boot state recorded at enrolment" "$BOTID_CA_LOG" ||
    fail "the enrolment did not record the boot state"
[ "$(boot_state)" = good ] || fail "after an enrolment: '$(boot_state)'"
echo "PASS: pcr_policy first-use: golden at first quote or enrolment, refused after a change, approved"
