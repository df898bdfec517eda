#!/bin/bash
# The agent serves before the TPM has loaded any existing key (issue 24,
# target 4; doc/performance.md, "What the queue guarantees"). swtpm-delay
# holds every TPM2_Load answer until a gate file exists, so no timing is
# assumed: an agent that loads its keys in the event loop before it
# serves never answers here.
#  1. With every load held, the agent answers, hands out a TPM bot's
#     public key (the one it had before the restart) and signs with a
#     SoftHSM2 bot; a TPM signature waits for the gate, then verifies.
#  2. A blob that reads well but that the TPM refuses (a bit of its private
#     part flipped) is reported once the TPM has said so, as when the key
#     was loaded at start: the log says why, the bot is refused like an
#     unknown one, signs nothing, and the inventory shows no key and
#     "key unusable: bot not served".
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm tpm-lazy
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/slow-common.sh"
GATE="$T/load-gate"
# Every TPM2_Load (0x157) answer waits for $GATE; every command is logged.
start_swtpm_delay tpm lazy --log-commands --hold "0x157=$GATE"
DELAY_LOG="$T/tpm/delay-lazy.log"
. "$top_srcdir/tests/integration/agent-common.sh"
UID_ME=$(id -u)

write_conf() {
	agent_conf_begin
	agent_add_bot hsm1 pkcs11 ecdsa-p256 "uid:$UID_ME"
	for b in tpm1 tpm2 tpm3 flip; do
		agent_add_bot "$b" tpm ecdsa-p256 "uid:$UID_ME"
	done
}

# commands_since OFFSET NAME: how many NAME commands the proxy logged from
# byte OFFSET of its log on.
commands_since() {
	tail -c +"$1" "$DELAY_LOG" | grep -c "^swtpm-delay: command $2\$" ||
	    true
}

# --- 1. Serving with every load held --------------------------------------
# The first start makes the keys (TPM2_Create is not held).
touch "$GATE"
write_conf
start_agent
for b in tpm1 tpm2 tpm3; do
	botid_cli pubkey "$b" --out "$T/$b.pem" >/dev/null || fail "pubkey $b"
done
stop_agent
# flip's private part loses a bit: its PEM still parses and its public
# area still fits the configuration; only the TPM can tell.
python3 - "$T/state/tpm/flip.tss2.pem" <<'EOF' || fail "cannot flip flip's blob"
import base64, sys
path = sys.argv[1]
lines = open(path).read().split("\n")
body = "".join(l for l in lines if l and not l.startswith("-----"))
der = bytearray(base64.b64decode(body))
der[-5] ^= 1
b64 = base64.b64encode(bytes(der)).decode()
out = [lines[0]] + [b64[i:i + 64] for i in range(0, len(b64), 64)] + \
    ["-----END TSS2 PRIVATE KEY-----", ""]
open(path, "w").write("\n".join(out))
EOF
rm -f "$GATE"
from=$(($(wc -c <"$DELAY_LOG") + 1))
log_from=$(($(wc -c <"$AGENT_LOG") + 1))
# Not start_agent: its first request would wait as long as the agent does.
# shellcheck disable=SC2086
${BOTID_VALGRIND:-} "$AGENT" -c "$AGENT_CONF" 2>>"$AGENT_LOG" &
AGENT_PID=$!
register_pid "$AGENT_PID"
for _ in $(seq 1 600); do
	[ "$(tail -c +"$log_from" "$AGENT_LOG" | grep -c 'ready: ')" -ge 1 ] &&
	    break
	kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died at start"
	sleep 0.1
done
[ "$(tail -c +"$log_from" "$AGENT_LOG" | grep -c 'ready: ')" -ge 1 ] ||
    fail "the agent was not ready within 60 s of its start with every TPM2_Load held"
botid_cli version >/dev/null || fail "the agent does not answer"
[ "$(tail -c +"$from" "$DELAY_LOG" | grep -c 'TPM2_Load held')" -eq 0 ] ||
    fail "a TPM2_Load was answered with the gate shut"
botid_cli pubkey tpm1 --out "$T/tpm1.again.pem" >/dev/null ||
    fail "pubkey tpm1 with every load held"
cmp -s "$T/tpm1.pem" "$T/tpm1.again.pem" ||
    fail "tpm1's public key changed across the restart"
printf 'lazy\n' >"$T/msg"
check botid_cli sign hsm1 --in "$T/msg" --out "$T/hsm1.sig"
botid_cli pubkey hsm1 --out "$T/hsm1.pem" >/dev/null || fail "pubkey hsm1"
check openssl dgst -sha256 -verify "$T/hsm1.pem" -signature "$T/hsm1.sig" \
    "$T/msg"
# tpm1's signature needs a load: it comes once the gate opens.
botid_cli sign tpm1 --in "$T/msg" --out "$T/tpm1.sig" 2>"$T/tpm1.err" &
signer=$!
touch "$GATE"
wait "$signer" || fail "tpm1 did not sign once loads passed: $(cat "$T/tpm1.err")"
check openssl dgst -sha256 -verify "$T/tpm1.pem" -signature "$T/tpm1.sig" \
    "$T/msg"
echo "ok: served with every TPM2_Load held; tpm1 signed once they passed"

# --- 2. A blob the TPM refuses, reported once it has -----------------------
for _ in $(seq 1 600); do
	grep -q 'bot flip: not served' "$AGENT_LOG" && break
	kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died"
	sleep 0.1
done
grep -q "bot 'flip': the TPM refuses .*flip.tss2.pem.*integrity" \
    "$AGENT_LOG" || fail "no log line says the TPM refuses flip's blob: $(tail -3 "$AGENT_LOG")"
grep -q 'error: bot flip: not served: ' "$AGENT_LOG" ||
    fail "no log line says flip is not served: $(tail -3 "$AGENT_LOG")"
# Refused as a bot the agent does not serve: the status of one never
# configured (doc/protocol.md: a caller learns nothing more).
[ "$(status_of flip)" = "$(status_of nosuchbot)" ] ||
    fail "flip answers $(status_of flip), an unknown bot $(status_of nosuchbot)"
rm -f "$T/flip.sig"
expect_fail botid_cli sign flip --in "$T/msg" --out "$T/flip.sig"
[ ! -e "$T/flip.sig" ] || fail "a signature file for flip"
botid_cli inventory --json >"$T/inv.json" || fail "inventory"
python3 - "$T/inv.json" <<'EOF' || fail "inventory: $(cat "$T/inv.json")"
import json, sys
bots = {b["name"]: b for b in json.load(open(sys.argv[1]))}
assert bots["flip"]["fingerprint"] is None, "flip has a key"
assert bots["flip"]["last_error"] == "key unusable: bot not served", \
    bots["flip"]["last_error"]
assert bots["tpm1"]["fingerprint"] is not None, "tpm1 has no key"
EOF
for b in tpm2 tpm3; do
	check botid_cli sign "$b" --in "$T/msg" --out "$T/$b.sig"
	check openssl dgst -sha256 -verify "$T/$b.pem" -signature "$T/$b.sig" \
	    "$T/msg"
done
stop_agent
echo "ok: a blob the TPM refuses is reported once the TPM has said so"
