#!/bin/bash
# Malformed frames, lengths 0, max+1 and 0xFFFFFFFF, truncated messages,
# unknown ops, random bytes, a frame sent a byte a second, 1000 connections
# at once, pipelined floods and clients vanishing with replies pending,
# against a running agent, while a well-behaved client is served
# throughout with a bounded p99 and the agent's memory stays bounded.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_softhsm hsm hostile
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

# One uid opens the thousand connections here: let it (agent-admission.sh
# shows what max_connections_per_uid does to a uid that tries).
agent_conf_begin "max_connections_per_uid = 1024"
agent_add_bot worker pkcs11 ecdsa-p256 "uid:$(id -u)"
start_agent
check "${PYTHON3:-python3}" "$top_srcdir/tests/integration/agent-hostile.py" \
    "$AGENT_SOCK" worker "$AGENT_PID"
kill -0 "$AGENT_PID" || fail "agent died"
# Still serving a fresh client afterwards.
printf 'after\n' >"$T/msg"
check botid_cli pubkey worker --out "$T/w.pem"
check botid_cli sign worker --in "$T/msg" --out "$T/w.sig"
check openssl dgst -sha256 -verify "$T/w.pem" -signature "$T/w.sig" "$T/msg"
stop_agent
echo "PASS: hostile clients"
