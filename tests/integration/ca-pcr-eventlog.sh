#!/bin/bash
# Event log replay (pcr_eventlog = yes) on swtpm: the fixture log of
# tests/integration/eventlog-fixture.py (crafted: its events are extended
# into swtpm's PCR 16 and 23 with tpm2_pcrextend here, as firmware would)
# replays to the quoted values, and the agent, pointed at it by event_log,
# gets its certificate. A log whose event digest was changed, and a
# truncated log, are refused with the reason, and nothing is issued.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
FIXTURE="$top_srcdir/tests/integration/eventlog-fixture.py"
export TPM2TOOLS_TCTI="$BOTID_TCTI"

python3 "$FIXTURE" "$T/eventlog.bin" good >"$T/events" ||
    fail "cannot make the event log fixture"
while IFS=: read -r pcr digest; do
	check tpm2_pcrextend "$pcr:sha256=$digest"
done <"$T/events"

start_ca ca "$BOTID_EK_CA_CHAIN" "bot_lifetime = 60" \
    "pcr_policy = first-use" "pcr_select = 16,23" "pcr_eventlog = yes"
agent_conf_begin "renew_at = 10%" "event_log = $T/eventlog.bin"
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"

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

start_agent
wait_log "bot tbot: new certificate" "$AGENT_LOG"
check botid_cli cert tbot --out "$T/tbot.chain"
check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/tbot.chain"
stop_agent

# refuse MODE REASON: the agent's next renewal with the MODE log is
# refused with REASON, and nothing is issued.
refuse() {
	local before
	python3 "$FIXTURE" "$T/eventlog.bin" "$1" >/dev/null ||
	    fail "cannot make the $1 event log"
	before=$(issued)
	: >"$AGENT_LOG"
	start_agent
	wait_log "bot tbot: certificate renewal failed.*$2" "$AGENT_LOG"
	grep -q "refused (403): host [0-9a-f]*: $2" "$BOTID_CA_LOG" ||
	    fail "$1: the CA log does not say '$2'"
	[ "$(issued)" = "$before" ] || fail "$1: a certificate was issued"
	stop_agent
}
refuse tamper "event log refused: it does not replay to the quoted PCR 23"
refuse truncate "event log refused: malformed event record"
echo "PASS: an event log that replays to the quote is accepted; a tampered or cut one is refused"
