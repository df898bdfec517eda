#!/bin/bash
# Who may use which bot: a uid no rule allows sees nothing and is denied
# everything, exactly as for a bot that does not exist; an allowed uid with
# the wrong executable is denied where an exe: rule applies; every denial
# is in the audit log.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

# Unprivileged callers reach the socket through its group, never "other".
chmod 0755 "$T"
# The interpreter's real binary: /proc/PID/exe names it, not a wrapper.
python=$("${PYTHON3:-python3}" -c 'import os, sys; print(os.path.realpath(sys.executable))')
agent_conf_begin "socket_group = nogroup" "socket_mode = 0660"
agent_add_bot alpha tpm ecdsa-p256 "uid:0"
agent_add_bot beta tpm ecdsa-p256 "uid:0 exe:$python"
agent_add_bot gamma tpm ecdsa-p256 "uid:nobody" "uid:0"
start_agent
[ "$(stat -c '%a %G' "$AGENT_SOCK")" = "660 nogroup" ] ||
    fail "socket mode/group is $(stat -c '%a %G' "$AGENT_SOCK")"
printf 'hello\n' >"$T/msg"
chmod 0644 "$T/msg"

as_user() {	# as_user UID COMMAND...: run with that uid and group nogroup
	local uid=$1
	shift
	setpriv --reuid="$uid" --regid=nogroup --clear-groups "$@"
}

# uid 1 (daemon): no rule names it.
out=$(as_user 1 "$BOTID" --socket "$AGENT_SOCK" list) || fail "list as uid 1 failed"
[ -z "$out" ] || fail "uid 1 sees bots: $out"
for bot in alpha beta gamma no-such-bot; do
	set +e
	msg=$(as_user 1 "$BOTID" --socket "$AGENT_SOCK" pubkey "$bot" 2>&1)
	rc=$?
	set -e
	[ "$rc" -eq 3 ] || fail "uid 1 pubkey $bot: exit $rc, want 3 (denied)"
	[ "$msg" = "botid: pubkey: denied" ] || fail "uid 1 pubkey $bot said: $msg"
	set +e
	as_user 1 "$BOTID" --socket "$AGENT_SOCK" sign "$bot" --in "$T/msg" --out /dev/null 2>/dev/null
	rc=$?
	set -e
	[ "$rc" -eq 3 ] || fail "uid 1 sign $bot: exit $rc, want 3"
done

# nobody sees and uses gamma only.
out=$(as_user nobody "$BOTID" --socket "$AGENT_SOCK" list | cut -f1)
[ "$out" = gamma ] || fail "nobody sees '$out', want gamma"
as_user nobody "$BOTID" --socket "$AGENT_SOCK" sign gamma --in "$T/msg" --out /dev/null ||
    fail "nobody cannot sign with gamma"

# root with the botid CLI: alpha and gamma yes, beta (exe rule) no.
check botid_cli sign alpha --in "$T/msg" --out "$T/a.sig"
set +e
botid_cli sign beta --in "$T/msg" --out "$T/b.sig" 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "beta with the wrong executable: exit $rc, want 3"
[ "$(botid_cli list | cut -f1 | sort | tr '\n' ' ')" = "alpha gamma " ] ||
    fail "root's list through the CLI is wrong"

# root with python (the allowed executable): beta works.
check "$python" "$PYCLIENT" --socket "$AGENT_SOCK" pubkey beta "$T/beta.der"
check "$python" "$PYCLIENT" --socket "$AGENT_SOCK" sign beta --in "$T/msg" --out "$T/b.sig"
openssl pkey -pubin -inform DER -in "$T/beta.der" -out "$T/beta.pem"
check openssl dgst -sha256 -verify "$T/beta.pem" -signature "$T/b.sig" "$T/msg"

# Every denial is audited with who asked.
python3 - "$AUDIT_LOG" "$(readlink -f "$top_builddir/tools/botid")" <<'PY' || fail "audit check"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
denied = [l for l in lines if l["result"] == "denied"]
uid1 = [l for l in denied if l["uid"] == 1]
assert len(uid1) == 8, ("uid 1 denials", len(uid1))
assert {l["bot"] for l in uid1} == {"alpha", "beta", "gamma", "no-such-bot"}
beta = [l for l in denied if l["uid"] == 0 and l["bot"] == "beta"]
assert beta and beta[0]["exe"] == sys.argv[2], beta
ok_beta = [l for l in lines if l.get("bot") == "beta" and l["result"] == "ok"]
assert ok_beta and ok_beta[-1]["op"] in ("sign-data", "sign-digest")
PY
stop_agent
echo "PASS: policy"
