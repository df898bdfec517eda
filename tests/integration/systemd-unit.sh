#!/bin/bash
# The systemd units in doc/systemd/ pass `systemd-analyze verify` (with
# ExecStart pointing at this build), run the agent as botid with no
# capability, and rate the exposure level doc/security.md records.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
sed "s|^ExecStart=/usr/sbin/botid-agent |ExecStart=$(readlink -f "$top_builddir/agent/botid-agent") |" \
    "$top_srcdir/doc/systemd/botid-agent.service" >"$T/botid-agent.service"
grep -q "^ExecStart=$(readlink -f "$top_builddir")" "$T/botid-agent.service" ||
    fail "the unit's ExecStart is not /usr/sbin/botid-agent"
cp "$top_srcdir/doc/systemd/botid-agent.socket" "$T/"
cd "$T"
systemd-analyze verify --man=no ./botid-agent.service ./botid-agent.socket \
    >verify.out 2>&1 || fail "systemd-analyze verify: $(cat verify.out)"
[ ! -s verify.out ] || fail "systemd-analyze verify warns: $(cat verify.out)"
grep -qx 'User=botid' botid-agent.service || fail "the unit does not run as botid"
grep -qx 'CapabilityBoundingSet=' botid-agent.service || fail "the unit keeps capabilities"
grep -qx 'NoNewPrivileges=yes' botid-agent.service || fail "no NoNewPrivileges"
systemd-analyze security --offline=true ./botid-agent.service >security.out 2>&1 ||
    fail "systemd-analyze security: $(tail -3 security.out)"
score=$(sed -n 's/.*Overall exposure level for botid-agent.service: \([0-9.]*\) .*/\1/p' security.out)
[ -n "$score" ] || fail "no exposure level: $(tail -3 security.out)"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure level $score is above 2.0"
grep -q "exposure level $score " "$top_srcdir/doc/security.md" ||
    fail "doc/security.md does not record exposure level $score"
echo "PASS: systemd unit verified, exposure level $score"
