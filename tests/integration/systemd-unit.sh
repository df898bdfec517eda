#!/bin/bash
# The systemd units in doc/systemd/ (agent and CA) pass `systemd-analyze
# verify` (with ExecStart pointing at this build), run the agent as botid
# and the CA as botid-ca with no capability, rate the exposure levels
# doc/security.md records, and name the users sysusers.d makes.
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
# /run is read-only under ProtectSystem=strict and /run/botid is root's:
# the sample's ssh_socket must be in the directory RuntimeDirectory= makes
# botid's, and the agent in the socket's group to give ssh_socket that
# group (agent-socket-dir.sh runs the agent so).
ssh_path=$(sed -n 's/^#*ssh_socket = //p' "$top_srcdir/examples/agent.conf")
rtdir=$(sed -n 's/^RuntimeDirectory=//p' botid-agent.service)
[ -n "$ssh_path" ] && [ -n "$rtdir" ] &&
    [ "$(dirname "$ssh_path")" = "/run/$rtdir" ] ||
    fail "ssh_socket '$ssh_path' is not in RuntimeDirectory= '$rtdir'"
grep -q "^ssh_socket = $ssh_path\$" <(sed -n 's/^With `\(ssh_socket = [^`]*\)`.*/\1/p' "$top_srcdir/README.md") ||
    fail "README.md's ssh_socket is not $ssh_path"
sgroup=$(sed -n 's/^SocketGroup=//p' botid-agent.socket)
sed -n 's/^SupplementaryGroups=//p' botid-agent.service | tr ' ' '\n' |
    grep -qx "$sgroup" || fail "the agent is not in the socket's group $sgroup"
# Room for the default max_connections (1024, 3 descriptors each, 64 more).
nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' botid-agent.service)
[ -n "$nofile" ] && [ "$nofile" -ge $((1024 * 3 + 64)) ] ||
    fail "LimitNOFILE '$nofile' leaves no room for 1024 connections"
systemd-analyze security --offline=true ./botid-agent.service >security.out 2>&1 ||
    fail "systemd-analyze security: $(tail -3 security.out)"
score=$(sed -n 's/.*Overall exposure level for botid-agent.service: \([0-9.]*\) .*/\1/p' security.out)
[ -n "$score" ] || fail "no exposure level: $(tail -3 security.out)"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure level $score is above 2.0"
grep -q "exposure level $score " "$top_srcdir/doc/security.md" ||
    fail "doc/security.md does not record exposure level $score"
echo "PASS: systemd unit verified, exposure level $score"

# botid-ca's unit: the same checks, with its own user and level.
sed "s|^ExecStart=/usr/sbin/botid-ca |ExecStart=$(readlink -f "$top_builddir/ca/botid-ca") |" \
    "$top_srcdir/doc/systemd/botid-ca.service" >"$T/botid-ca.service"
grep -q "^ExecStart=$(readlink -f "$top_builddir")" "$T/botid-ca.service" ||
    fail "botid-ca.service's ExecStart is not /usr/sbin/botid-ca"
systemd-analyze verify --man=no ./botid-ca.service >verify-ca.out 2>&1 ||
    fail "systemd-analyze verify botid-ca.service: $(cat verify-ca.out)"
[ ! -s verify-ca.out ] || fail "systemd-analyze verify warns: $(cat verify-ca.out)"
grep -qx 'User=botid-ca' botid-ca.service || fail "botid-ca.service does not run as botid-ca"
grep -qx 'CapabilityBoundingSet=' botid-ca.service || fail "botid-ca.service keeps capabilities"
systemd-analyze security --offline=true ./botid-ca.service >security-ca.out 2>&1 ||
    fail "systemd-analyze security: $(tail -3 security-ca.out)"
score=$(sed -n 's/.*Overall exposure level for botid-ca.service: \([0-9.]*\) .*/\1/p' security-ca.out)
[ -n "$score" ] || fail "no exposure level for botid-ca.service: $(tail -3 security-ca.out)"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "botid-ca.service's exposure level $score is above 2.0"
grep -q "botid-ca.service at exposure level $score " "$top_srcdir/doc/security.md" ||
    fail "doc/security.md does not record botid-ca.service's exposure level $score"
# The users and directories the units name are the ones sysusers.d and
# tmpfiles.d make.
grep -qx 'u botid - "botid agent" /var/lib/botid /usr/sbin/nologin' \
    "$top_srcdir/doc/systemd/botid-agent.sysusers" || fail "no user botid in sysusers"
grep -qx 'm botid tss' "$top_srcdir/doc/systemd/botid-agent.sysusers" ||
    fail "botid is not put in group tss"
grep -q '^g bots ' "$top_srcdir/doc/systemd/botid-agent.sysusers" ||
    fail "no group bots (SocketGroup=) in sysusers"
grep -qx 'SocketGroup=bots' botid-agent.socket || fail "the socket's group is not bots"
grep -q '^u botid-ca ' "$top_srcdir/doc/systemd/botid-ca.sysusers" ||
    fail "no user botid-ca in sysusers"
echo "PASS: botid-ca.service verified, exposure level $score"
