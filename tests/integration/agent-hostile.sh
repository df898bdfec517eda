#!/bin/bash
# Malformed frames, oversized and zero lengths, truncated messages, unknown
# ops, random bytes, pipelining, vanishing clients and idle floods against
# a running agent, while a well-behaved client is served throughout.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_softhsm hsm hostile
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

agent_conf_begin
agent_add_bot worker pkcs11 ecdsa-p256 "uid:$(id -u)"
start_agent
check python3 "$top_srcdir/tests/integration/agent-hostile.py" "$AGENT_SOCK" worker
kill -0 "$AGENT_PID" || fail "agent died"
# Still serving a fresh client afterwards.
printf 'after\n' >"$T/msg"
check botid_cli pubkey worker --out "$T/w.pem"
check botid_cli sign worker --in "$T/msg" --out "$T/w.sig"
check openssl dgst -sha256 -verify "$T/w.pem" -signature "$T/w.sig" "$T/msg"
stop_agent
echo "PASS: hostile clients"
