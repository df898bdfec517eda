#!/bin/bash
# botid-ca on PostgreSQL, one replica and two. On a PostgreSQL server of the
# test's own (pg-common.sh): ca-basic.sh, attest-flow.sh and
# audit-anchor.sh pass against it as they do against SQLite; two replicas
# starting at once on an empty database migrate it once; a join token raced
# at both replicas enrols one host only; 50 enrolments from 10 TPMs, then
# 50 certify requests each sent to both replicas at once, give 50 hosts and 50 certificates with distinct
# serials, every nonce accepted once; a host revoked while a replica serves
# is refused by both at the next request; a host's own revocation body
# raced at both replicas is accepted once, and two for one serial revoke it
# once; a replica killed mid-run leaves
# no half-written enrolment, and clients that retry at the other succeed;
# readiness follows the database, down and back.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
. "$top_srcdir/tests/integration/pg-common.sh"
start_postgres

# The CA tests of the SQLite backend, against this server, meanwhile.
for t in ca-basic attest-flow audit-anchor; do
	bash "$top_srcdir/tests/integration/$t.sh" >"$T/$t.out" 2>&1 &
	eval "job_${t//-/_}=$!"
	register_pid "$!"
done

NTPM=10
tpms=()
for i in $(seq 1 "$NTPM"); do tpms+=("t$i"); done
# trev's host is revoked below, and a revoked host's TPM cannot enrol
# again (ca-revocation.sh): it is used for nothing else.
start_swtpm "${tpms[@]}" trev
for t in "${tpms[@]}" trev; do cat "$(fixture_var "$t" BOTID_EK_CA_CHAIN)"; done \
    >"$T/ek-roots.pem"
. "$top_srcdir/tests/integration/agent-common.sh"
CA="$top_builddir/ca/botid-ca"
PROVISION="$top_builddir/tools/botid-provision"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"

# Two replicas share the CA key, the certificate and the database.
DB=$(pg_database replicas)
ca_conf() {
	mkdir -p "$T/$1"
	cat >"$T/$1/ca.conf" <<CONF
[ca]
trust_domain = test.botid
listen = 127.0.0.1:0
database = $2
ca_cert = $T/ca.pem
ca_key = file:$T/ca.key
ek_root = $T/ek-roots.pem
CONF
}
ca_conf keys "$T/keys/ca.db"
ca_conf ra "$DB"
ca_conf rb "$DB"
"$CA" init -c "$T/keys/ca.conf" >"$T/keys/init.out" ||
    fail "botid-ca init: $(cat "$T/keys/init.out")"
# curl trusts the CA's self-signed TLS certificate by file.
cat "$T/ca.pem" "$T/tls.pem" >"$T/bundle.pem"

# serve NAME: starts replica NAME; sets PID_NAME and URL_NAME.
serve() {
	local pid
	rm -f "$T/$1/port"
	"$CA" serve -c "$T/$1/ca.conf" --port-file "$T/$1/port" \
	    2>>"$T/$1/log" &
	pid=$!
	register_pid "$pid"
	eval "PID_$1=$pid"
}
wait_serving() {
	for _ in $(seq 1 100); do
		[ -s "$T/$1/port" ] && break
		sleep 0.1
	done
	[ -s "$T/$1/port" ] || fail "replica $1 did not start: $(tail -3 "$T/$1/log")"
	eval "URL_$1=https://127.0.0.1:$(cat "$T/$1/port")"
}
serve ra
serve rb
wait_serving ra
wait_serving rb
# One row per schema version, each once: 1, 2, ... with no gap.
[ "$(pg_sql "${DB##*/}" 'SELECT count(*) = count(DISTINCT version) AND
    count(*) = max(version) AND count(*) >= 2 FROM botid_schema')" = t ] ||
    fail "two replicas starting together did not migrate exactly once"

# http URL METHOD PATH [BODY-FILE]: prints the status, the body in $T/body.
http() {
	local data=()
	[ $# -ge 4 ] && data=(-H 'Content-Type: application/json' --data-binary "@$4")
	curl -sS -o "${BODY:-$T/body}" -w '%{http_code}' --cacert "$T/bundle.pem" \
	    -X "$2" "${data[@]}" "$1$3"
}
for u in "$URL_ra" "$URL_rb"; do
	[ "$(http "$u" GET /v1/health/live)" = 200 ] || fail "$u: not live"
	[ "$(http "$u" GET /v1/health/ready)" = 200 ] || fail "$u: not ready"
done

BOTID_TCTI=$(fixture_var t1 BOTID_TCTI)
agent_conf_begin
agent_add_bot load tpm ecdsa-p256 "uid:$(id -u)"
# host_conf TPM NAME: an agent configuration for TPM with state in $T/NAME.
host_conf() {
	sed "s|^state_dir *=.*|state_dir = $T/$2|; s|^tcti *=.*|tcti = $(fixture_var "$1" BOTID_TCTI)|" \
	    "$AGENT_CONF" >"$T/$2.conf"
	echo "$T/$2.conf"
}
# provision CONF URL TOKEN-FILE
provision() {
	"$PROVISION" -c "$1" --ca "$2" --ca-bundle "$T/ca.pem" \
	    --join-token-file "$3"
}
token() {
	"$CA" token create -c "$T/ra/ca.conf" --ttl 10m >"$T/$1"
}
sql() {
	pg_sql "${DB##*/}" "$1"
}

# --- One join token raced at both replicas: one host, one refusal --------
for k in $(seq 1 "$NTPM"); do
	[ $((k % 2)) -eq 1 ] || continue
	token "race$k.tok"
	a=$(host_conf "t$k" "race$k-a")
	b=$(host_conf "t$((k + 1))" "race$k-b")
	provision "$a" "$URL_ra" "$T/race$k.tok" >"$T/race$k-a.out" 2>&1 &
	pa=$!
	provision "$b" "$URL_rb" "$T/race$k.tok" >"$T/race$k-b.out" 2>&1 &
	pb=$!
	ok=0
	wait "$pa" && ok=$((ok + 1))
	wait "$pb" && ok=$((ok + 1))
	[ "$ok" -eq 1 ] || fail "token race $k: $ok enrolments: $(cat "$T/race$k-a.out" "$T/race$k-b.out")"
	grep -q 'already used' "$T/race$k-a.out" "$T/race$k-b.out" ||
	    fail "token race $k: the loser was not told the token is used"
done
[ "$(sql 'SELECT count(*) FROM hosts')" = $((NTPM / 2)) ] ||
    fail "the token races left $(sql 'SELECT count(*) FROM hosts') hosts, not $((NTPM / 2))"
echo "token races: $((NTPM / 2)) tokens raced at both replicas, one host each"

# --- 50 enrolments from 10 TPMs, alternately at each replica -------------
enrol_stream() {
	local t=$1 j conf url
	for j in 1 2 3 4 5; do
		conf=$(host_conf "$t" "$t-e$j")
		url=$URL_ra
		[ $(((${t#t} + j) % 2)) -eq 0 ] && url=$URL_rb
		provision "$conf" "$url" "$T/$t-e$j.tok" >"$T/$t-e$j.out" 2>&1 ||
		    return 1
	done
}
for t in "${tpms[@]}"; do for j in 1 2 3 4 5; do token "$t-e$j.tok"; done; done
hosts0=$(sql 'SELECT count(*) FROM hosts')
start=$(date +%s.%N)
pids=()
for t in "${tpms[@]}"; do enrol_stream "$t" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "an enrolment failed: $(cat "$T"/t*-e*.out | grep -v provisioned | head -3)"; done
secs=$(echo "$(date +%s.%N) - $start" | bc)
[ "$(sql 'SELECT count(*) FROM hosts')" -eq $((hosts0 + 50)) ] ||
    fail "50 enrolments made $(( $(sql 'SELECT count(*) FROM hosts') - hosts0 )) hosts"
echo "enrolments: 50 from $NTPM TPMs at both replicas in $secs s"

# --- 50 certify requests, each sent to both replicas at once -------------
mkdir -p "$T/req"
pids=()
for k in 1 2 3 4 5; do
	mkdir -p "$T/req/$k"
	"$REQUESTS" "$T/t$k-e1" "$(fixture_var "t$k" BOTID_TCTI)" 10 "$T/req/$k" \
	    >"$T/req/$k.out" 2>&1 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "ca-certify-requests: $(cat "$T"/req/*.out)"; done
post_both() {
	local f=$1 n=${1//\//_}
	BODY="$T/res/$n.a" http "$URL_ra" POST /v1/certify "$f" >"$T/res/$n.a.code" &
	BODY="$T/res/$n.b" http "$URL_rb" POST /v1/certify "$f" >"$T/res/$n.b.code"
	wait
}
mkdir -p "$T/res"
pids=()
for f in "$T"/req/*/certify-*.json; do post_both "$f" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
accepted=0
for f in "$T"/res/*.a.code; do
	a=$(cat "$f") b=$(cat "${f%.a.code}.b.code")
	case "$a/$b" in
	200/409) accepted=$((accepted + 1)) ;;
	409/200) accepted=$((accepted + 1)) ;;
	*) fail "one nonce at both replicas gave HTTP $a and $b: $(cat "${f%.code}" "${f%.a.code}.b")" ;;
	esac
done
[ "$accepted" -eq 50 ] || fail "$accepted of 50 raced certify requests were accepted"
grep -h -o '"serial":"[0-9A-Fa-f]*"' "$T"/res/*.a "$T"/res/*.b | sort >"$T/serials"
[ "$(wc -l <"$T/serials")" -eq 50 ] || fail "not 50 serials in the answers"
[ "$(sort -u "$T/serials" | wc -l)" -eq 50 ] || fail "duplicate serials in the answers"
[ "$(sql "SELECT count(*), count(DISTINCT serial) FROM certs WHERE bot = 'load'")" = "50|50" ] ||
    fail "the database does not hold 50 distinct bot serials"
[ "$(sql 'SELECT count(*) FROM nonces WHERE used = 1')" -eq 50 ] ||
    fail "not every nonce was used exactly once"
echo "issuances: 50 nonces raced at both replicas, each accepted once, 50 distinct serials"

# --- Revocation through the database, seen by both replicas at once ------
mkdir -p "$T/rev"
token rev.tok
check provision "$(host_conf trev trev-e1)" "$URL_ra" "$T/rev.tok"
check "$REQUESTS" "$T/trev-e1" "$(fixture_var trev BOTID_TCTI)" 2 "$T/rev"
[ "$(http "$URL_rb" POST /v1/certify "$T/rev/certify-0.json")" = 200 ] ||
    fail "certify before revocation: $(cat "$T/body")"
host=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/trev-e1/attest/host.json")
check "$CA" revoke -c "$T/ra/ca.conf" host "$host"
[ "$(http "$URL_rb" POST /v1/certify "$T/rev/certify-1.json")" = 403 ] ||
    fail "replica B accepted a host revoked through A's configuration"
grep -q revoked "$T/body" || fail "revoked host: unclear reason: $(cat "$T/body")"
printf '{"host_id":"%s"}' "$host" >"$T/rev/nonce.json"
for u in "$URL_ra" "$URL_rb"; do
	[ "$(http "$u" POST /v1/nonce "$T/rev/nonce.json")" = 403 ] ||
	    fail "$u gave a revoked host a nonce"
done
echo "revocation: refused by both replicas at the next request"
# A host revoking its own certificate at both replicas at once: one body
# is accepted once (the other replica finds its nonce used); two bodies for
# one serial both succeed, and exactly one of them revoked it.
mkdir -p "$T/hrev"
tcti7=$(fixture_var t7 BOTID_TCTI)
check "$REQUESTS" "$T/t7-e1" "$tcti7" 1 "$T/hrev"
[ "$(http "$URL_ra" POST /v1/certify "$T/hrev/certify-0.json")" = 200 ] ||
    fail "certify: $(cat "$T/body")"
serial=$(grep -o '"serial":"[0-9A-F]*"' "$T/body" | cut -d'"' -f4)
[ -n "$serial" ] || fail "no serial in $(cat "$T/body")"
for b in 1 2; do
	check "$REQUESTS" "$T/t7-e1" "$tcti7" revoke-body "$serial" superseded \
	    "$serial" host "$T/hrev/revoke-$b.json"
done
BODY="$T/hrev/1.a" http "$URL_ra" POST /v1/revoke "$T/hrev/revoke-1.json" >"$T/hrev/1.a.code" &
pid=$!
BODY="$T/hrev/1.b" http "$URL_rb" POST /v1/revoke "$T/hrev/revoke-1.json" >"$T/hrev/1.b.code"
wait "$pid"
case "$(cat "$T/hrev/1.a.code")/$(cat "$T/hrev/1.b.code")" in
200/409|409/200) ;;
*) fail "one revoke body at both replicas: $(cat "$T"/hrev/1.*)" ;;
esac
[ "$(sql "SELECT revoke_reason FROM certs WHERE serial = '$serial'")" = 4 ] ||
    fail "$serial is not revoked as superseded in the database"
check "$REQUESTS" "$T/t7-e1" "$tcti7" 1 "$T/hrev"
[ "$(http "$URL_ra" POST /v1/certify "$T/hrev/certify-0.json")" = 200 ] ||
    fail "certify: $(cat "$T/body")"
serial=$(grep -o '"serial":"[0-9A-F]*"' "$T/body" | cut -d'"' -f4)
for b in 3 4; do
	check "$REQUESTS" "$T/t7-e1" "$tcti7" revoke-body "$serial" keyCompromise \
	    "$serial" host "$T/hrev/revoke-$b.json"
done
BODY="$T/hrev/2.a" http "$URL_ra" POST /v1/revoke "$T/hrev/revoke-3.json" >"$T/hrev/2.a.code" &
pid=$!
BODY="$T/hrev/2.b" http "$URL_rb" POST /v1/revoke "$T/hrev/revoke-4.json" >"$T/hrev/2.b.code"
wait "$pid"
[ "$(cat "$T/hrev/2.a.code")/$(cat "$T/hrev/2.b.code")" = 200/200 ] ||
    fail "two revoke bodies for one serial: $(cat "$T"/hrev/2.*)"
[ "$(cat "$T/hrev/2.a" "$T/hrev/2.b" | grep -c '"already":false')" = 1 ] ||
    fail "not exactly one of two raced revocations revoked: $(cat "$T"/hrev/2.a "$T"/hrev/2.b)"
echo "host revocations: one nonce accepted once across replicas, one serial revoked once"

# --- A replica killed mid-run: clients retry at the other ----------------
# Each client tries its first replica, then the other one; the token is
# spent only when an enrolment commits.
retry_stream() {
	local t=$1 j conf first second
	for j in 6 7 8; do
		conf=$(host_conf "$t" "$t-e$j")
		first=$URL_ra second=$URL_rb
		[ $(((${t#t} + j) % 2)) -eq 0 ] && first=$URL_rb second=$URL_ra
		provision "$conf" "$first" "$T/$t-e$j.tok" >"$T/$t-e$j.out" 2>&1 ||
		    provision "$conf" "$second" "$T/$t-e$j.tok" >>"$T/$t-e$j.out" 2>&1 ||
		    echo "$t-e$j" >>"$T/lost"
	done
}
for t in "${tpms[@]}"; do for j in 6 7 8; do token "$t-e$j.tok"; done; done
hosts0=$(sql 'SELECT count(*) FROM hosts')
pids=()
for t in "${tpms[@]}"; do retry_stream "$t" & pids+=($!); done
sleep 0.4
kill -KILL "$PID_ra"
wait "$PID_ra" 2>/dev/null || true
for p in "${pids[@]}"; do wait "$p"; done
retried=0
for t in "${tpms[@]}"; do for j in 6 7 8; do
	if [ "$(wc -l <"$T/$t-e$j.out")" -gt 1 ]; then retried=$((retried + 1)); fi
done; done
[ "$retried" -gt 0 ] || fail "no client had to retry: the replica was not killed mid-run"
made=$(( $(sql 'SELECT count(*) FROM hosts') - hosts0 ))
# A client whose enrolment committed just before the kill cannot know it:
# its retry finds the token used. That host is whole in the database.
lost=0
if [ -s "$T/lost" ]; then
	lost=$(wc -l <"$T/lost")
	while read -r c; do
		grep -q 'already used' "$T/$c.out" ||
		    fail "$c did not enrol after a retry: $(cat "$T/$c.out")"
	done <"$T/lost"
fi
[ "$made" -eq 30 ] || fail "30 enrolments with a replica killed made $made hosts"
[ "$(sql 'SELECT count(*) FROM tokens t WHERE t.used_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = t.host_id)')" = 0 ] ||
    fail "a used token has no host: a half-written enrolment"
[ "$(sql 'SELECT count(*) FROM hosts h WHERE NOT EXISTS (SELECT 1 FROM certs c WHERE c.host_id = h.id AND c.bot IS NULL)')" = 0 ] ||
    fail "a host has no host certificate: a half-written enrolment"
[ "$(sql 'SELECT count(*) FROM hosts h WHERE NOT EXISTS (SELECT 1 FROM tokens t WHERE t.host_id = h.id)')" = 0 ] ||
    fail "a host has no used token: a half-written enrolment"
echo "replica killed mid-run: 30 of 30 enrolled, $retried after a retry ($lost answered before the kill only in the database), nothing half-written"

# --- Metrics and readiness of the survivor -------------------------------
BODY="$T/metrics" http "$URL_rb" GET /metrics >"$T/metrics.code"
[ "$(cat "$T/metrics.code")" = 200 ] || fail "GET /metrics: HTTP $(cat "$T/metrics.code")"
for m in 'botid_ca_enrolments_total [1-9]' 'botid_ca_issuances_total{kind="bot"} [1-9]' \
    'botid_ca_rejections_total{endpoint="certify",reason="already_used"} [1-9]' \
    'botid_ca_rejections_total{endpoint="certify",reason="forbidden"} [1-9]' \
    'botid_ca_request_duration_seconds_bucket{le="+Inf"} [1-9]' \
    'botid_ca_request_duration_seconds_count [1-9]' 'botid_ca_database_up 1'; do
	grep -q "^$m" "$T/metrics" || fail "/metrics lacks '$m'"
done
for t in ca-basic attest-flow audit-anchor; do
	eval "job=\$job_${t//-/_}"
	wait "$job" || fail "$t.sh on PostgreSQL: $(tail -3 "$T/$t.out")"
	echo "$t.sh on PostgreSQL: $(grep '^PASS' "$T/$t.out")"
done
# The database down and back (the other tests are done with it).
_stop_postgres "$T/pg"
[ "$(http "$URL_rb" GET /v1/health/ready)" = 503 ] ||
    fail "ready with the database down"
[ "$(http "$URL_rb" GET /v1/health/live)" = 200 ] || fail "not live with the database down"
as_postgres "$PG_BIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/server.log" -w -t 30 \
    -o "-p $PG_PORT -k $T/pg/sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" \
    start >/dev/null 2>&1 || fail "postgres did not start again"
[ "$(http "$URL_rb" GET /v1/health/ready)" = 200 ] ||
    fail "not ready again once the database is back"
echo "health: ready follows the database, down and back; live throughout"

echo "PASS: botid-ca on PostgreSQL: the CA tests, two replicas, races, revocation, a replica killed"
