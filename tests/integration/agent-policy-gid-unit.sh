#!/bin/bash
# gid: and unit: rules on the real agent, with the groups and the cgroup
# the agent reads from /proc (test-policy checks the decision on a filled-in
# peer, test-peer the parsing of fake /proc files). A process whose primary
# or supplementary group is the rule's is served, one in neither is denied;
# a process in a cgroup whose path holds tbot.service is served by a
# unit:tbot.service rule and the same command outside it is denied. Every
# denial is exact ("denied", exit 3), audited with who asked, and leaves no
# signature file.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

# A group no account has, so that only the groups given below carry it.
GID=4242
chmod 0755 "$T"
mkdir -m 1777 "$T/out"
printf 'hello\n' >"$T/msg"
chmod 0644 "$T/msg"
agent_conf_begin "socket_group = nogroup" "socket_mode = 0660"
agent_add_bot grp tpm ecdsa-p256 "gid:$GID"
agent_add_bot svc tpm ecdsa-p256 "unit:tbot.service"
start_agent
nogroup=$(getent group nogroup | cut -d: -f3)

# as_daemon GROUP-OPTIONS... -- COMMAND...: uid 1 (daemon), not root, so
# that only the groups decide; nogroup reaches the socket.
as_daemon() {
	local opts=()
	while [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	setpriv --reuid=1 "${opts[@]}" "$@"
}

# denied_sign WHO BOT COMMAND-PREFIX...: the signature is refused with
# exactly "botid: sign: denied" and exit 3, and no file is written.
denied_sign() {
	local who=$1 bot=$2 out rc msg
	shift 2
	out="$T/out/$who.sig"
	set +e
	msg=$("$@" "$BOTID" --socket "$AGENT_SOCK" sign "$bot" \
	    --in "$T/msg" --out "$out" 2>&1)
	rc=$?
	set -e
	[ "$rc" -eq 3 ] || fail "$who: sign $bot: exit $rc, want 3 (denied): $msg"
	[ "$msg" = "botid: sign: denied" ] || fail "$who: sign $bot said: $msg"
	[ ! -e "$out" ] || fail "$who: a signature file was written"
}

# verified WHO BOT: the signature in $T/out/WHO.sig verifies with BOT's key.
verified() {
	[ -s "$T/out/$1.sig" ] || fail "$1: no signature"
	check openssl dgst -sha256 -verify "$T/$2.pem" \
	    -signature "$T/out/$1.sig" "$T/msg"
}

# --- gid: the request's gid (primary) or a supplementary group ---------
as_daemon --regid="$GID" --groups="$nogroup" -- \
    "$BOTID" --socket "$AGENT_SOCK" pubkey grp --out "$T/out/grp.pem" ||
    fail "primary gid $GID cannot read grp's key"
cp "$T/out/grp.pem" "$T/grp.pem"
as_daemon --regid="$GID" --groups="$nogroup" -- \
    "$BOTID" --socket "$AGENT_SOCK" sign grp --in "$T/msg" \
    --out "$T/out/primary.sig" || fail "primary gid $GID cannot sign"
verified primary grp
# Only /proc/PID/status says this one holds the group.
as_daemon --regid=nogroup --groups="$nogroup,$GID" -- \
    "$BOTID" --socket "$AGENT_SOCK" sign grp --in "$T/msg" \
    --out "$T/out/supplementary.sig" ||
    fail "supplementary group $GID cannot sign"
verified supplementary grp
denied_sign nogid grp as_daemon --regid=nogroup --groups="$nogroup,4243" --
denied_sign cleared grp as_daemon --regid=nogroup --clear-groups --

# --- unit: the first NAME.service component of the caller's cgroup ------
# agent/peer.c reads the cgroup v2 line "0::PATH" of /proc/PID/cgroup and,
# only where there is none (a pure v1 system), the name=systemd line. Put
# the caller where the line the agent reads comes from.
if grep -q '^0::' /proc/self/cgroup; then
	cgroot=$(findmnt -n -o TARGET -t cgroup2 | head -1)
	other=$(findmnt -n -o TARGET -t cgroup -O name=systemd | head -1)
else
	cgroot=$(findmnt -n -o TARGET -t cgroup -O name=systemd | head -1)
	other=
fi
[ -n "$cgroot" ] || fail "no mounted cgroup hierarchy for /proc/PID/cgroup's systemd line"
# in_cgroup ROOT COMMAND...: runs COMMAND in ROOT's tbot.service cgroup.
cgname=botid-test.$$
make_unit_cgroup() {
	local cg="$1/$cgname"
	mkdir -p "$cg/system.slice/tbot.service" ||
	    fail "cannot create a cgroup under $1 (read-only cgroupfs?): cannot run the unit: check"
	register_cleanup rmdir "$cg/system.slice/tbot.service" \
	    "$cg/system.slice" "$cg"
}
in_cgroup() {
	local procs="$1/$cgname/system.slice/tbot.service/cgroup.procs"
	shift
	(
		echo "$BASHPID" >"$procs"
		exec "$@"
	)
}
make_unit_cgroup "$cgroot"
in_cgroup "$cgroot" grep -q "/$cgname/system.slice/tbot.service\$" \
    /proc/self/cgroup || fail "the cgroup move is not seen in /proc/self/cgroup"
in_cgroup "$cgroot" "$BOTID" --socket "$AGENT_SOCK" pubkey svc \
    --out "$T/svc.pem" || fail "tbot.service cannot read svc's key"
in_cgroup "$cgroot" "$BOTID" --socket "$AGENT_SOCK" sign svc \
    --in "$T/msg" --out "$T/out/unit.sig" || fail "tbot.service cannot sign"
verified unit svc
# The same command in the test's own cgroup.
denied_sign outside svc env
# On a hybrid system the v1 systemd hierarchy does not decide: the v2
# line wins.
if [ -n "$other" ]; then
	make_unit_cgroup "$other"
	denied_sign v1only svc in_cgroup "$other"
fi

# Every denial is audited with who asked; every signature has its entry.
python3 - "$AUDIT_LOG" "$GID" "$cgname" "${other:+v1}" <<'PY' || fail "audit check"
import json, sys
log, gid, cgname, v1 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = [json.loads(l) for l in open(log)]
def of(bot, result):
    return [l for l in lines if l.get("bot") == bot and l["result"] == result]
grp_ok = of("grp", "ok")
assert [(l["uid"], l["gid"]) for l in grp_ok if l["op"] != "pubkey"] == \
    [(1, gid), (1, 65534)], grp_ok
grp_denied = of("grp", "denied")
assert len(grp_denied) == 2, grp_denied
assert all(l["uid"] == 1 and l["gid"] == 65534 for l in grp_denied), grp_denied
svc_ok = [l for l in of("svc", "ok") if l["op"] != "pubkey"]
assert len(svc_ok) == 1 and svc_ok[0]["unit"] == "tbot.service", svc_ok
svc_denied = of("svc", "denied")
assert len(svc_denied) == (2 if v1 else 1), svc_denied
assert all(l["unit"] != "tbot.service" for l in svc_denied), svc_denied
PY
stop_agent
echo "PASS: policy gid and unit"
