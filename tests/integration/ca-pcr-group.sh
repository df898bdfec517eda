#!/bin/bash
# Boot-state policy per host group on swtpm: two hosts (two TPMs) enrolled
# with join tokens of two groups of ca.conf, "strict" (pcr_policy exact
# over PCRs 16 and 23) and "lab" (pcr_policy none), the top-level policy
# staying none. Each renewal is a /v1/certify body made by
# pcr-quote-probe with the host's enrolled AK (a real quote when the
# host's group asks for one) and posted with curl.
# - a token for a group ca.conf lacks is refused at creation, none made;
# - the group is recorded (inventory, database), each nonce answer names
#   its group's selection (none for lab);
# - after tpm2_pcrextend of PCR 23 on both TPMs the strict host's renewal
#   is refused naming PCR 23, nothing issued, the lab host's passes;
# - `host set-group` to lab makes the strict host's renewal pass; to a
#   first-use group ("tofu") it is refused, its golden values kept from
#   its enrolment (a move approves nothing), until approve-boot; /metrics
#   counts each refusal under the group whose policy made it;
# - with "lab" removed from ca.conf the CA logs at start that its host is
#   refused, and refuses it (403, nothing issued) until it is moved to
#   the default policy; its unused join token enrols nobody.
# With BOTID_PCR_PG=1 (ca-pcr-group-pg.sh) the CA runs on PostgreSQL.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
if [ -n "${BOTID_PCR_PG:-}" ]; then
	. "$top_srcdir/tests/integration/pg-common.sh"
	start_postgres
fi
start_swtpm strict lab
BOTID_TCTI=$(fixture_var strict BOTID_TCTI)
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
TCTI_S=$(fixture_var strict BOTID_TCTI)
TCTI_L=$(fixture_var lab BOTID_TCTI)
# The probe exits without freeing its TSS and CA client (ca-pcr-attack.sh).
probe() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    "$top_builddir/tests/integration/pcr-quote-probe" "$@"
}
pcr_hex() {
	tpm2_pcrread -T "$1" "sha256:$2" -o "$T/pcr.bin" >/dev/null ||
	    fail "tpm2_pcrread $2 failed"
	od -An -tx1 -v "$T/pcr.bin" | tr -d ' \n'
}

start_ca ca "$(fixture_var strict BOTID_EK_CA_CHAIN)" \
    "ek_root = $(fixture_var lab BOTID_EK_CA_CHAIN)" \
    "[group strict]" "pcr_policy = exact" "pcr_select = 16,23" \
    "pcr_allow = 16:$(pcr_hex "$TCTI_S" 16),23:$(pcr_hex "$TCTI_S" 23)" \
    "[group tofu]" "pcr_policy = first-use" "pcr_select = 16,23" \
    "[group lab]" "pcr_policy = none"
PORT=$(cat "$T/ca/port")
if [ -n "${BOTID_PCR_PG:-}" ]; then
	DB_URI=$(pg_database ca)
	db_sql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -A -t "$DB_URI" -c "$1"; }
else
	db_sql() { sqlite3 "$T/ca/ca.db" "$1"; }
fi

# --- A token for a group ca.conf does not have: refused, none made -------
tokens=$(db_sql "SELECT COUNT(*) FROM tokens")
if "$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --group nope \
    >"$T/token.nope" 2>"$T/token.err"; then
	fail "a token was made for an unknown group"
fi
grep -q "token create: host group 'nope' is not in $BOTID_CA_CONF" "$T/token.err" ||
    fail "unclear refusal: $(cat "$T/token.err")"
[ ! -s "$T/token.nope" ] || fail "a token was printed for an unknown group"
[ "$(db_sql "SELECT COUNT(*) FROM tokens")" = "$tokens" ] ||
    fail "a token row was recorded for an unknown group"

# --- Two hosts enrolled with tokens of two groups ---------------------
agent_conf_begin
agent_add_bot tbot tpm ecdsa-p256 "uid:$(id -u)"
enrol() {	# NAME TCTI GROUP: provisions $T/state-NAME, prints the host id
	"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --group "$3" \
	    >"$T/token.$1" || fail "token create --group $3 failed"
	sed -e "s|^state_dir *=.*|state_dir = $T/state-$1|" \
	    -e "s|^tcti *=.*|tcti = $2|" "$AGENT_CONF" >"$T/agent-$1.conf"
	"$PROVISION" -c "$T/agent-$1.conf" --ca "$BOTID_CA_URL" \
	    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token.$1" \
	    >"$T/provision-$1.out" 2>&1 ||
	    fail "provision $1: $(tail -3 "$T/provision-$1.out")"
	sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' \
	    "$T/state-$1/attest/host.json"
}
HS=$(enrol s "$TCTI_S" strict)
HL=$(enrol l "$TCTI_L" lab)
[ -n "$HS" ] && [ -n "$HL" ] || fail "no host ids"
[ "$(db_sql "SELECT host_group FROM hosts WHERE id = '$HS'")" = strict ] ||
    fail "the strict host's group is not recorded"
[ "$(db_sql "SELECT host_group FROM hosts WHERE id = '$HL'")" = lab ] ||
    fail "the lab host's group is not recorded"
group_of() {	# HOST: "GROUP POLICY PCRS" from the inventory
	"$CA" inventory -c "$BOTID_CA_CONF" |
	    awk -v h="$1" '$1 == h && NF == 4 && $3 ~ /^(none|exact|first-use|undefined)$/ {print $2, $3, $4}'
}
[ "$(group_of "$HS")" = "strict exact 16,23" ] ||
    fail "inventory, strict host: '$(group_of "$HS")'"
[ "$(group_of "$HL")" = "lab none -" ] ||
    fail "inventory, lab host: '$(group_of "$HL")'"

# Each nonce answer names its host's group's selection.
nonce() {
	curl -sf --cacert "$BOTID_CA_BUNDLE" -d "{\"host_id\":\"$1\"}" \
	    "$BOTID_CA_URL/v1/nonce" || fail "no nonce for $1"
}
case $(nonce "$HS") in *'"pcr_select":[16,23]'*) ;;
*) fail "the strict host's nonce names no PCR selection";; esac
case $(nonce "$HL") in *pcr_select*) fail "the lab host was asked for PCRs";; esac

http() {
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -X POST -H 'Content-Type: application/json' --data-binary "@$1" \
	    "$BOTID_CA_URL/v1/certify"
}
issued() {
	grep -c "ca: issued spiffe://" "$BOTID_CA_LOG" || true
}
n=0
# renew NAME TCTI STATUS [REASON]: one certify of host NAME for a new bot
# key; STATUS expected, and for a refusal REASON in the answer and the log
# and no certificate issued or recorded.
renew() {
	local before got bot
	n=$((n + 1))
	bot="b$n-$1"
	probe "$T/state-$1" "$2" good "$bot" "$T/req.json" >"$T/probe.out" 2>&1 ||
	    fail "pcr-quote-probe: $(cat "$T/probe.out")"
	before=$(issued)
	got=$(http "$T/req.json")
	[ "$got" = "$3" ] || fail "renewal $bot: HTTP $got, not $3: $(cat "$T/body")"
	if [ "$3" = 200 ]; then
		[ "$(issued)" = $((before + 1)) ] || fail "$bot: no issued line"
		return 0
	fi
	grep -qF "$4" "$T/body" ||
	    fail "$bot: the refusal does not say '$4': $(cat "$T/body")"
	grep -qF "$4" "$BOTID_CA_LOG" || fail "$bot: the CA log does not say '$4'"
	[ "$(issued)" = "$before" ] || fail "$bot: a certificate was issued"
	[ "$(db_sql "SELECT COUNT(*) FROM certs WHERE bot = '$bot'")" = 0 ] ||
	    fail "$bot: a certificate row exists"
}

renew s "$TCTI_S" 200
renew l "$TCTI_L" 200

# --- PCR 23 changes on both: strict refused naming it, lab issued -----
for t in "$TCTI_S" "$TCTI_L"; do
	tpm2_pcrextend -T "$t" \
	    "23:sha256=$(printf 'new kernel' | sha256sum | cut -d' ' -f1)" ||
	    fail "tpm2_pcrextend failed"
done
renew s "$TCTI_S" 403 "host $HS: boot state refused: PCR 23 not allowed by the policy"
renew l "$TCTI_L" 200

# --- Moved to lab: issued; to a first-use group: golden values kept -----
out=$("$CA" host set-group -c "$BOTID_CA_CONF" "$HS" lab) ||
    fail "set-group failed: $out"
[ "$(group_of "$HS")" = "lab none -" ] || fail "after the move: '$(group_of "$HS")'"
case $(nonce "$HS") in *pcr_select*) fail "a host moved to lab was asked for PCRs";; esac
renew s "$TCTI_S" 200
check "$CA" host set-group -c "$BOTID_CA_CONF" "$HS" tofu
renew s "$TCTI_S" 403 "host $HS: boot state refused: PCR 23 changed since approved"
check "$CA" host approve-boot -c "$BOTID_CA_CONF" "$HS"
renew s "$TCTI_S" 200
# /metrics counts each refusal under the group whose policy refused it.
curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/metrics" >"$T/metrics" ||
    fail "no /metrics"
for want in 'default"} 0' 'strict"} 1' 'tofu"} 1' 'lab"} 0'; do
	grep -qxF "botid_ca_boot_refusals_by_group_total{group=\"$want" "$T/metrics" ||
	    fail "/metrics lacks the refusal count $want: $(grep by_group "$T/metrics")"
done
grep -qx 'botid_ca_boot_refusals_total 2' "$T/metrics" ||
    fail "/metrics: the total is not 2"
# Refused moves: to a group ca.conf lacks, of a host the CA does not know.
out=$("$CA" host set-group -c "$BOTID_CA_CONF" "$HS" nope 2>&1) &&
    fail "a host was moved to an unknown group"
case $out in *"set-group: host group 'nope' is not in"*) ;;
*) fail "set-group, unknown group: $out";; esac
[ "$(group_of "$HS")" = "tofu first-use 16,23" ] || fail "the refused move moved it"
out=$("$CA" host set-group -c "$BOTID_CA_CONF" 0123456789abcdef --default 2>&1) &&
    fail "an unknown host was moved"
case $out in *"no enrolled, unrevoked host 0123456789abcdef"*) ;;
*) fail "set-group, unknown host: $out";; esac

# --- Group lab removed from ca.conf: its host is refused, fail closed -----
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --group lab >"$T/token.l2" ||
    fail "token create --group lab failed"
kill -TERM "$BOTID_CA_PID"
wait "$BOTID_CA_PID" || true
sed -i -e "s|^listen = .*|listen = 127.0.0.1:$PORT|" -e '/^\[group lab\]/,$d' \
    "$BOTID_CA_CONF"
rm -f "$T/ca/port"
"$CA" serve -c "$BOTID_CA_CONF" --port-file "$T/ca/port" 2>>"$BOTID_CA_LOG" &
BOTID_CA_PID=$!
register_pid "$BOTID_CA_PID"
for _ in $(seq 1 100); do [ -s "$T/ca/port" ] && break; sleep 0.1; done
[ -s "$T/ca/port" ] || fail "botid-ca did not restart"
grep -q "ca: 1 host(s) in host group lab, which $BOTID_CA_CONF does not define: their certificates are refused" \
    "$BOTID_CA_LOG" || fail "the CA did not log the host of the removed group"
renew l "$TCTI_L" 403 "host $HL: boot state refused: its host group lab is not in ca.conf"
[ "$(group_of "$HL")" = "lab undefined -" ] || fail "inventory: '$(group_of "$HL")'"
expect_fail "$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --group lab
# The group's unused token enrols nobody.
hosts=$(db_sql "SELECT COUNT(*) FROM hosts")
sed "s|^state_dir *=.*|state_dir = $T/state-l2|" "$T/agent-l.conf" >"$T/agent-l2.conf"
out=$("$PROVISION" -c "$T/agent-l2.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token.l2" 2>&1) &&
    fail "a token of a removed group enrolled a host"
case $out in *"join token refused: its host group lab is not in ca.conf"*) ;;
*) fail "enrolment with a removed group's token: $out";; esac
[ "$(db_sql "SELECT COUNT(*) FROM hosts")" = "$hosts" ] ||
    fail "a host row was recorded for a removed group's token"
[ ! -e "$T/state-l2/attest/host-cert.pem" ] || fail "a host certificate was written"
check "$CA" host set-group -c "$BOTID_CA_CONF" "$HL" --default
[ "$(group_of "$HL")" = "default none -" ] || fail "after --default: '$(group_of "$HL")'"
renew l "$TCTI_L" 200
echo "PASS: per-group boot-state policy: strict refused, lab issued, moves, a removed group fails closed"
