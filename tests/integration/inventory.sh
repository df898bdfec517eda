#!/bin/bash
# botid inventory and botid status against real fixtures (swtpm, SoftHSM2,
# botid-ca): every field of `botid inventory --json` is checked against an
# independent source (openssl for the fingerprint, serial and not-after,
# pkcs11-tool and tpm2-tools for the key attributes, the test's own count
# of operations), `botid status` shows the certificates and their renewal,
# and a caller the admin lines do not name is denied and audited.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm inventory
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
PY=/usr/bin/python3

start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)"
chmod 0755 "$T"
agent_conf_begin "socket_group = nogroup" "socket_mode = 0660" "admin = uid:0"
agent_add_bot tbot tpm ecdsa-p256 "uid:0" "uid:nobody gid:nogroup"
echo "scopes = orders:read orders:write" >>"$AGENT_CONF"
agent_add_bot pbot pkcs11 ecdsa-p256 "uid:0"
echo "scopes = stock:read" >>"$AGENT_CONF"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot,pbot \
    >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" \
    --ca "$BOTID_CA_URL" --ca-bundle "$BOTID_CA_BUNDLE" \
    --join-token-file "$T/join.token" >/dev/null
start_agent
for bot in tbot pbot; do
	ok=
	for _ in $(seq 1 150); do
		botid_cli cert "$bot" --out "$T/$bot.chain" >/dev/null 2>&1 &&
		    { ok=1; break; }
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no certificate for $bot: $(tail -5 "$AGENT_LOG")"
done

# Requests the agent answers for a bot: the cert polls above (each one
# answered, with or without a chain: counted from the audit log below),
# pubkeys and signatures, which the test counts itself.
printf 'order 42\n' >"$T/msg"
chmod 0644 "$T/msg"
for bot in tbot pbot; do
	check botid_cli pubkey "$bot" --der --out "$T/$bot.pub.der"
	check openssl pkey -pubin -inform DER -in "$T/$bot.pub.der" \
	    -outform DER -out "$T/$bot.spki.der"
done
for _ in 1 2 3; do check botid_cli sign tbot --in "$T/msg" --out /dev/null; done
for _ in 1 2; do check botid_cli sign pbot --in "$T/msg" --out /dev/null; done
# nobody may use tbot but not pbot: one denial for pbot.
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
check as_nobody "$BOTID" --socket "$AGENT_SOCK" sign tbot --in "$T/msg" \
    --out /dev/null
rc=0
as_nobody "$BOTID" --socket "$AGENT_SOCK" sign pbot --in "$T/msg" \
    --out /dev/null 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "nobody signing with pbot: exit $rc, want 3"

# nobody is no administrator: denied, and the denial is audited.
rc=0
msg=$(as_nobody "$BOTID" --socket "$AGENT_SOCK" inventory 2>&1) || rc=$?
[ "$rc" -eq 3 ] || fail "nobody's inventory: exit $rc, want 3: $msg"
[ "$msg" = "botid: inventory: denied" ] || fail "nobody's inventory said: $msg"
rc=0
as_nobody "$BOTID" --socket "$AGENT_SOCK" status >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "nobody's status: exit $rc, want 3"
nobody_uid=$(id -u nobody)
"$PY" - "$AUDIT_LOG" "$nobody_uid" <<'PY' || fail "inventory denial not audited"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
d = [l for l in lines if l["op"] == "inventory" and l["result"] == "denied"
     and l["uid"] == int(sys.argv[2])]
assert len(d) == 2, d
PY

check botid_cli inventory --json >"$T/inv.json"
check botid_cli inventory >"$T/inv.txt"
cat "$T/inv.txt" "$T/inv.json"
grep -q '^tbot ' "$T/inv.txt" && grep -q '^pbot ' "$T/inv.txt" ||
    fail "the inventory table lacks a bot: $(cat "$T/inv.txt")"

# Independent views of each bot: fingerprint of the SPKI, the leaf's serial
# and not-after, and the counts from the audit log (ok requests per bot).
for bot in tbot pbot; do
	openssl x509 -in "$T/$bot.chain" -noout -serial -enddate \
	    -ext subjectAltName >"$T/$bot.x509" || fail "openssl x509 $bot"
	sha256sum "$T/$bot.spki.der" | cut -d' ' -f1 >"$T/$bot.fp"
done

# The TPM's view (tpm2_readpublic, through tpm2-tools) needs the TPM, which
# the agent holds: it is read after the agent stops, below. The token's
# view comes now, from pkcs11-tool.
pin=$(cat "$BOTID_PIN_FILE")
pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label "$BOTID_TOKEN_LABEL" \
    --login --pin "$pin" -O --type privkey >"$T/p11.out" 2>/dev/null ||
    fail "pkcs11-tool -O failed"

"$PY" - "$T" "$AUDIT_LOG" <<'PY' || fail "inventory --json does not match"
import json, sys, datetime, re
T, audit = sys.argv[1], sys.argv[2]
inv = {b["name"]: b for b in json.load(open(T + "/inv.json"))}
assert set(inv) == {"tbot", "pbot"}, inv.keys()
log = [json.loads(l) for l in open(audit)]

def x509(bot):
    out = open(f"{T}/{bot}.x509").read()
    serial = re.search(r"serial=([0-9A-Fa-f]+)", out).group(1)
    end = re.search(r"notAfter=(.*)", out).group(1).strip()
    na = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z")
    spiffe = re.search(r"URI:(spiffe://\S+)", out).group(1).rstrip(",")
    return serial, na.strftime("%Y-%m-%dT%H:%M:%SZ"), spiffe

want = {
    "tbot": ("tpm", ["uid:0", "uid:%d gid:%d" % (
        __import__("pwd").getpwnam("nobody").pw_uid,
        __import__("grp").getgrnam("nogroup").gr_gid)],
        ["orders:read", "orders:write"]),
    "pbot": ("pkcs11", ["uid:0"], ["stock:read"]),
}
for name, (backend, allow, scopes) in want.items():
    b = inv[name]
    assert b["backend"] == backend and b["key_type"] == "ecdsa-p256", b
    fp = open(f"{T}/{name}.fp").read().strip()
    assert b["fingerprint"] == fp, (name, b["fingerprint"], fp)
    serial, na, spiffe = x509(name)
    assert b["serial"].lstrip("0").upper() == serial.lstrip("0").upper(), \
        (name, b["serial"], serial)
    assert b["not_after"] == na, (name, b["not_after"], na)
    assert b["spiffe_id"] == spiffe and spiffe.endswith("/bot/" + name), \
        (name, b["spiffe_id"], spiffe)
    assert b["attestation"] == backend, (name, b["attestation"])
    assert b["allow"] == allow, (name, b["allow"], allow)
    assert b["scopes"] == scopes, (name, b["scopes"])
    # Counted from the audit log: every ok answer naming the bot, and
    # every denial naming it (pubkey, cert-chain, signatures).
    ok = [l for l in log if l.get("bot") == name and l["result"] == "ok"]
    denied = [l for l in log if l.get("bot") == name and
              l["result"] == "denied"]
    assert b["ops"] == len(ok), (name, b["ops"], len(ok))
    assert b["denials"] == len(denied), (name, b["denials"], len(denied))
    assert b["last_used"] is not None, b
    assert b["last_renewal"] is not None and \
        b["last_renewal_result"] == "ok", b
    assert b["last_error"] is None, b
# The counts the test itself made: 3 signatures by root and 1 by nobody
# with tbot, 2 with pbot, and nobody's one refused pbot signature.
signs = lambda n: len([l for l in log if l.get("bot") == n and
                       l["op"] == "sign-data" and l["result"] == "ok"])
assert signs("tbot") == 4 and signs("pbot") == 2, (signs("tbot"), signs("pbot"))
assert inv["tbot"]["denials"] == 0 and inv["pbot"]["denials"] == 1, inv

# PKCS#11: the token's own listing of the private key object.
p11 = open(T + "/p11.out").read()
blk = [b for b in p11.split("Private Key Object") if
       re.search(r"label:\s*botid:pbot\s*$", b, re.M)]
assert len(blk) == 1, p11
access = re.search(r"Access:\s*(.*)", blk[0]).group(1)
flags = [f.strip() for f in access.split(",")]
a = inv["pbot"]["attributes"]
assert a["CKA_SENSITIVE"] == ("sensitive" in flags), (a, flags)
assert a["CKA_ALWAYS_SENSITIVE"] == ("always sensitive" in flags), (a, flags)
assert a["CKA_NEVER_EXTRACTABLE"] == ("never extractable" in flags), (a, flags)
assert a["CKA_EXTRACTABLE"] == ("extractable" in flags), (a, flags)
assert a["CKA_LOCAL"] == ("local" in flags), (a, flags)
assert a["CKA_SENSITIVE"] and a["CKA_NEVER_EXTRACTABLE"] and \
    not a["CKA_EXTRACTABLE"] and a["CKA_TOKEN"], a
PY

# botid status: both certificates, their last renewal, exit 0.
check botid_cli status >"$T/status.txt"
"$PY" - "$T" <<'PY' || fail "status: $(cat "$T/status.txt")"
import json, sys
T = sys.argv[1]
inv = {b["name"]: b for b in json.load(open(T + "/inv.json"))}
rows = {l.split()[0]: l.split() for l in open(T + "/status.txt")
        if not l.startswith("BOT ")}
for name, b in inv.items():
    r = rows[name]
    assert r[1] == b["fingerprint"], r
    assert r[2] == b["not_after"], r
    assert r[3] == b["last_renewal"] and r[4] == "ok", r
PY

# A bot added while the CA is down gets no certificate: status names the
# failed renewal and its error, and exits 1 for monitoring.
kill "$BOTID_CA_PID"
wait "$BOTID_CA_PID" 2>/dev/null || true
agent_add_bot late pkcs11 ecdsa-p256 "uid:0"
kill -HUP "$AGENT_PID"
ok=
for _ in $(seq 1 600); do
	botid_cli inventory --json >"$T/inv2.json" 2>/dev/null &&
	    "$PY" -c 'import json, sys
b = {b["name"]: b for b in json.load(open(sys.argv[1]))}.get("late")
sys.exit(0 if b and b["last_renewal_result"] == "failed" else 1)' \
	    "$T/inv2.json" && { ok=1; break; }
	sleep 0.2
done
[ -n "$ok" ] || fail "no failed renewal for late: $(cat "$T/inv2.json")"
# The reload kept the counters: they run since the agent started.
"$PY" - "$T/inv.json" "$T/inv2.json" <<'PY' || fail "a reload reset the counters"
import json, sys
a, b = ({x["name"]: x for x in json.load(open(f))} for f in sys.argv[1:])
for n in ("tbot", "pbot"):
    assert b[n]["ops"] >= a[n]["ops"] and b[n]["denials"] == a[n]["denials"] \
        and b[n]["last_used"] == a[n]["last_used"], (a[n], b[n])
assert b["late"]["ops"] == 0 and b["late"]["serial"] is None and \
    b["late"]["last_error"], b["late"]
PY
rc=0
botid_cli status >"$T/status2.txt" 2>"$T/status2.err" || rc=$?
cat "$T/status2.txt" "$T/status2.err"
[ "$rc" -eq 1 ] || fail "status with a bot lacking a certificate: exit $rc"
grep -q "1 of 3 bots without a valid certificate" "$T/status2.err" ||
    fail "status said: $(cat "$T/status2.err")"
line=$(grep '^late ' "$T/status2.txt") || fail "status lacks late"
set -- $line
[ "$3" = - ] && [ "$5" = failed ] && [ $# -ge 6 ] && [ "$6" != - ] ||
    fail "status shows late as: $line"
grep -q '^tbot .* ok ' "$T/status2.txt" ||
    fail "status lost tbot: $(cat "$T/status2.txt")"

# TPM: the attributes the agent read back, against tpm2_readpublic of the
# key blob loaded by tpm2-tools (the agent must let go of the TPM first).
"$PY" - "$T/inv.json" >"$T/tpm-attrs.want" <<'PY'
import json, sys
a = {b["name"]: b for b in json.load(open(sys.argv[1]))}["tbot"]["attributes"]
print("|".join(sorted(k.lower() for k, v in a.items() if v)))
PY
stop_agent
blob="$T/state/tpm/tbot.tss2.pem"
[ -f "$blob" ] || fail "no TPM key blob at $blob: $(ls "$T/state/tpm")"
export TPM2TOOLS_TCTI="$BOTID_TCTI"
check tpm2_load -r "$blob" -c "$T/tbot.ctx"
tpm2_readpublic -c "$T/tbot.ctx" >"$T/readpublic.out" ||
    fail "tpm2_readpublic failed"
check tpm2_flushcontext -t
got=$(awk '/^attributes:/ { a = 1; next } a && $1 == "value:" { print $2; exit }' \
    "$T/readpublic.out" | tr '|' '\n' | sort | paste -sd'|')
[ "$got" = "$(cat "$T/tpm-attrs.want")" ] ||
    fail "tpm2_readpublic shows '$got', inventory '$(cat "$T/tpm-attrs.want")'"
for a in fixedtpm fixedparent sensitivedataorigin; do
	case "|$got|" in
	*"|$a|"*) ;;
	*) fail "the TPM key is not $a: $got";;
	esac
done

echo "ok: inventory and status"
