#!/bin/bash
# Revocation sticks (issue 21, point 3). An allowlisted EK whose host was
# revoked cannot enrol again, with or without a join token, and nothing is
# recorded. A bot revoked by the operator (botid-ca revoke bot) is refused
# a new certificate, for a new key and for its old key under another name,
# until the operator lifts it (botid-ca unrevoke bot), also after a purge
# ten years on (its certificate is kept). With two replicas on
# PostgreSQL: a certify that passed its host check before the host was
# revoked at the other replica is refused and leaves no certificate; a
# host revocation that arrives while a certify is recording its
# certificate waits for it and revokes it too, and the CRL lists it. The
# schema's indexes exist on PostgreSQL.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other third
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
BOTID_EK_CA_CHAIN=$(fixture_var tpm BOTID_EK_CA_CHAIN)
TCTI2=$(fixture_var other BOTID_TCTI)
TCTI3=$(fixture_var third BOTID_TCTI)
cat "$BOTID_EK_CA_CHAIN" "$(fixture_var other BOTID_EK_CA_CHAIN)" \
    "$(fixture_var third BOTID_EK_CA_CHAIN)" >"$T/ek-roots.pem"
. "$top_srcdir/tests/integration/agent-common.sh"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"
PROVISION="$top_builddir/tools/botid-provision"

# The TPM's EK certificates, allowlisted: it may enrol without a token.
allow=()
for f in "$T"/tpm/certs/*.crt; do
	allow+=("allow_ek = $(openssl dgst -sha256 -r <"$f" | cut -c1-64)")
done
[ ${#allow[@]} -ge 1 ] || fail "no EK certificate in the fixture"
start_ca ca "$T/ek-roots.pem" "${allow[@]}"

# http URL PATH BODY-FILE: POSTs; prints the status, the body in $T/body.
post() {
	curl -sS -o "${BODY:-$T/body}" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -H 'Content-Type: application/json' --data-binary "@$3" "$1$2"
}
# conf_for NAME [TCTI]: an agent configuration with its own state.
conf_for() {
	sed "s|^state_dir *=.*|state_dir = $T/state-$1|; s|^tcti *=.*|tcti = ${2:-$BOTID_TCTI}|" \
	    "$AGENT_CONF" >"$T/agent-$1.conf"
}
host_of() {
	sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state-$1/attest/host.json"
}
hosts_count() {
	"$CA" inventory -c "$BOTID_CA_CONF" | awk 'NR > 1 {print $1}' | sort -u | wc -l
}
agent_conf_begin

# --- A revoked host's EK cannot enrol again -------------------------------
conf_for a
check "$PROVISION" -c "$T/agent-a.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE"
host_a=$(host_of a)
check "$CA" revoke -c "$BOTID_CA_CONF" host "$host_a"
before=$(hosts_count)
conf_for a2
rc=0
"$PROVISION" -c "$T/agent-a2.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" >"$T/a2.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "re-enrolment of a revoked EK: exit $rc, not 3: $(cat "$T/a2.out")"
grep -q 'the CA refused (HTTP 403): EK sha256:[0-9a-f]\{64\} belongs to a revoked host' \
    "$T/a2.out" || fail "revoked EK: unclear refusal: $(cat "$T/a2.out")"
[ ! -e "$T/state-a2/attest/host.json" ] || fail "a revoked EK was enrolled"
# A join token does not help.
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-a3"
conf_for a3
rc=0
"$PROVISION" -c "$T/agent-a3.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-a3" \
    >"$T/a3.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "re-enrolment with a token: exit $rc, not 3: $(cat "$T/a3.out")"
grep -q 'belongs to a revoked host' "$T/a3.out" ||
    fail "revoked EK with a token: unclear refusal: $(cat "$T/a3.out")"
[ ! -e "$T/state-a3/attest/host.json" ] || fail "a revoked EK was enrolled with a token"
[ "$(hosts_count)" = "$before" ] || fail "a host was recorded for the revoked EK"
grep -q "enrol from .* refused (403): EK sha256:.* belongs to a revoked host" \
    "$BOTID_CA_LOG" || fail "the CA log does not say why"
echo "revoked EK: refused twice, nothing recorded"

# --- A revoked bot stays revoked until lifted -----------------------------
# Another TPM (the first one's EK is revoked for good), any bot name.
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-b"
conf_for b "$TCTI2"
check "$PROVISION" -c "$T/agent-b.conf" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-b"
host_b=$(host_of b)
worker="spiffe://test.botid/host/$host_b/bot/worker"
for k in k1 k2; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$T/$k.key" 2>/dev/null || fail "openssl genpkey"
	openssl pkey -in "$T/$k.key" -pubout -outform DER -out "$T/$k.spki" ||
	    fail "openssl pkey"
done
# certify KEY BOT WANT [REASON]: the host vouches for KEY as BOT.
certify() {
	local got
	"$REQUESTS" "$T/state-b" "$TCTI2" pkcs11-body "$T/$1.spki" "$2" \
	    "$T/cb.json" >"$T/cb.out" 2>&1 ||
	    fail "ca-certify-requests pkcs11-body: $(cat "$T/cb.out")"
	got=$(post "$BOTID_CA_URL" /v1/certify "$T/cb.json")
	[ "$got" = "$3" ] || fail "certify $1 as $2: HTTP $got, not $3: $(cat "$T/body")"
	[ $# -lt 4 ] || grep -qF "\"error\":\"$4\"" "$T/body" ||
	    fail "certify $1 as $2: not '$4': $(cat "$T/body")"
}
certs_of() {
	"$CA" inventory -c "$BOTID_CA_CONF" | grep -c "bot/$1\b" || true
}
certify k1 worker 200
check "$CA" revoke -c "$BOTID_CA_CONF" bot "$worker"
# The agent's renewal (same key), a new key, a new TPM key: all refused.
certify k1 worker 403 "the bot is revoked until an operator lifts it (botid-ca unrevoke bot)"
certify k2 worker 403 "the bot is revoked until an operator lifts it (botid-ca unrevoke bot)"
mkdir -p "$T/tb"
"$REQUESTS" "$T/state-b" "$TCTI2" 1 "$T/tb" worker >"$T/tb.out" 2>&1 ||
    fail "ca-certify-requests: $(cat "$T/tb.out")"
[ "$(post "$BOTID_CA_URL" /v1/certify "$T/tb/certify-0.json")" = 403 ] ||
    fail "a TPM key for the revoked bot: $(cat "$T/body")"
# The revoked bot's key under another name.
certify k1 worker2 403 "the key was certified for a revoked bot"
[ "$(certs_of worker)" = 1 ] || fail "certificates were recorded for the revoked bot"
[ "$(certs_of worker2)" = 0 ] || fail "a certificate was recorded for the revoked key"
# The purge (here as of ten years on) keeps the revoked bot's certificate:
# its key stays refused under any name.
check "$CA" purge -c "$BOTID_CA_CONF" --at $(($(date +%s) + 3650 * 86400)) \
    >"$T/purge.out"
[ "$(certs_of worker)" = 1 ] || fail "the purge deleted the revoked bot's certificate"
certify k1 worker3 403 "the key was certified for a revoked bot"
[ "$(certs_of worker3)" = 0 ] ||
    fail "a certificate was recorded for the revoked key after the purge"
# Other bots and keys are not affected.
certify k2 worker2 200
# Lifted by the operator: certified again; the old certificate stays revoked.
check "$CA" unrevoke -c "$BOTID_CA_CONF" bot "$worker"
expect_fail "$CA" unrevoke -c "$BOTID_CA_CONF" bot "$worker"
certify k1 worker 200
[ "$(certs_of worker)" = 2 ] || fail "not two certificates for worker"
[ "$("$CA" inventory -c "$BOTID_CA_CONF" | grep "bot/worker\b" | grep -c revoked)" = 1 ] ||
    fail "the old certificate is not revoked any more"
echo "revoked bot: refused until lifted"

# A bot name revoked before any certificate was issued for it: the
# revocation is recorded and the command says so with exit 0 (it exited 1
# while recording it, which scripts took for "nothing done"); the host's
# certify for that name is then refused and records nothing.
early="spiffe://test.botid/host/$host_b/bot/early"
set +e
out=$("$CA" revoke -c "$BOTID_CA_CONF" bot "$early" 2>&1)
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "revoke bot without a certificate: exit $rc: $out"
[ "$out" = "$early revoked: no unrevoked certificate for it; none is issued until unrevoke" ] ||
    fail "revoke bot without a certificate said: $out"
certify k2 early 403 "the bot is revoked until an operator lifts it (botid-ca unrevoke bot)"
[ "$(certs_of early)" = 0 ] || fail "a certificate was recorded for the revoked bot name"
echo "bot revoked before its first certificate: recorded, exit 0, certify refused"

# --- Two replicas on PostgreSQL: certify and host revocation interleaved --
. "$top_srcdir/tests/integration/pg-common.sh"
start_postgres
DB=$(pg_database replicas)
sql() { pg_sql "${DB##*/}" "$1"; }
# Both replicas use the CA above's key and certificate.
for r in ra rb; do
	mkdir -p "$T/$r"
	cat >"$T/$r/ca.conf" <<CONF
[ca]
trust_domain = test.botid
listen = 127.0.0.1:0
database = $DB
ca_cert = $BOTID_CA_CERT
ca_key = file:$T/ca/ca.key
ek_root = $T/ek-roots.pem
CONF
	"$CA" serve -c "$T/$r/ca.conf" --port-file "$T/$r/port" 2>>"$T/$r/log" &
	register_pid "$!"
done
for r in ra rb; do
	for _ in $(seq 1 100); do
		[ -s "$T/$r/port" ] && break
		sleep 0.1
	done
	[ -s "$T/$r/port" ] || fail "replica $r did not start: $(tail -3 "$T/$r/log")"
done
URL_ra="https://127.0.0.1:$(cat "$T/ra/port")"
URL_rb="https://127.0.0.1:$(cat "$T/rb/port")"
# A psql session of the test's own holds locks that stop a replica at a
# chosen statement; lock_held waits until a query is waiting for it.
mkfifo "$T/psql.in"
"$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$DB" <"$T/psql.in" \
    >"$T/psql.out" 2>&1 &
register_pid "$!"
exec 4>"$T/psql.in"
# psql_run SQL MARK: runs SQL in the session, waits until it printed MARK.
psql_run() {
	printf '%s\nSELECT %s;\n' "$1" "'$2'" >&4
	for _ in $(seq 1 600); do
		grep -qx "$2" "$T/psql.out" && return 0
		sleep 0.1
	done
	fail "psql: $(cat "$T/psql.out")"
}
# waiting PATTERN: until a replica's query LIKE PATTERN waits for a lock.
waiting() {
	for _ in $(seq 1 600); do
		[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '$1'")" = 1 ] &&
		    return 0
		sleep 0.1
	done
	fail "no query like '$1' waits for a lock"
}
# pg_host NAME TCTI: a host enrolled at ra on that TPM, with a certify
# body for bot "late" over a nonce from ra in $T/NAME-req/certify-0.json.
# (A revoked host's TPM cannot enrol again: one TPM per host here.)
pg_host() {
	"$CA" token create -c "$T/ra/ca.conf" --ttl 10m >"$T/token-$1"
	conf_for "$1" "$2"
	check "$PROVISION" -c "$T/agent-$1.conf" --ca "$URL_ra" \
	    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-$1"
	mkdir -p "$T/$1-req"
	"$REQUESTS" "$T/state-$1" "$2" 1 "$T/$1-req" late >"$T/$1-req/out" 2>&1 ||
	    fail "ca-certify-requests: $(cat "$T/$1-req/out")"
}

# 1. A certify at rb has checked its host, and waits (here: for its nonce)
# while the host revokes itself at ra. It is then refused, with no row.
pg_host c "$TCTI2"
host_c=$(host_of c)
psql_run "BEGIN; SELECT 1 FROM nonces WHERE host_id = '$host_c' FOR UPDATE;" locked1
BODY="$T/c.body" post "$URL_rb" /v1/certify "$T/c-req/certify-0.json" >"$T/c.status" &
cpid=$!
waiting 'UPDATE nonces%'
"$REQUESTS" "$T/state-c" "$TCTI2" revoke host keyCompromise >"$T/rc.out" 2>&1 ||
    fail "host c's revocation at ra: $(cat "$T/rc.out")"
psql_run "ROLLBACK;" released1
wait "$cpid" || true
[ "$(cat "$T/c.status")" = 403 ] ||
    fail "certify raced with its host's revocation: HTTP $(cat "$T/c.status"), not 403: $(cat "$T/c.body")"
grep -qF '"error":"the host was revoked"' "$T/c.body" ||
    fail "raced certify: unclear refusal: $(cat "$T/c.body")"
[ "$(sql "SELECT count(*) FROM certs WHERE host_id = '$host_c' AND bot = 'late'")" = 0 ] ||
    fail "a certificate was recorded for the revoked host"
[ "$(sql "SELECT count(*) FROM certs WHERE host_id = '$host_c' AND revoked_at IS NULL")" = 0 ] ||
    fail "the revoked host keeps an unrevoked certificate"
echo "pg: a certify overtaken by its host's revocation is refused, no row"

# 2. A certify at rb is recording its certificate (here: stopped after it
# locked its host's row) when the host revokes itself at ra: the
# revocation waits, then revokes that certificate too.
pg_host d "$TCTI3"
host_d=$(host_of d)
psql_run "BEGIN; LOCK TABLE revoked_bots IN ACCESS EXCLUSIVE MODE;" locked2
BODY="$T/d.body" post "$URL_rb" /v1/certify "$T/d-req/certify-0.json" >"$T/d.status" &
cpid=$!
waiting 'SELECT 1 FROM revoked_bots%'
"$REQUESTS" "$T/state-d" "$TCTI3" revoke-body host keyCompromise host host \
    "$T/rd.json" >"$T/rd.out" 2>&1 || fail "revoke-body: $(cat "$T/rd.out")"
BODY="$T/rd.body" post "$URL_ra" /v1/revoke "$T/rd.json" >"$T/rd.status" &
rpid=$!
waiting 'UPDATE hosts%'
psql_run "COMMIT;" released2
wait "$cpid" || true
wait "$rpid" || true
[ "$(cat "$T/rd.status")" = 200 ] ||
    fail "host d's revocation at ra: HTTP $(cat "$T/rd.status"): $(cat "$T/rd.body")"
[ "$(cat "$T/d.status")" = 200 ] ||
    fail "certify ahead of the revocation: HTTP $(cat "$T/d.status"): $(cat "$T/d.body")"
serial=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$T/d.body")
[ "$(sql "SELECT count(*) FROM certs WHERE serial = '$serial' AND revoked_at IS NOT NULL")" = 1 ] ||
    fail "the certificate recorded before the revocation is not revoked"
curl -sS --cacert "$BOTID_CA_BUNDLE" "$URL_ra/v1/crl" >"$T/crl.pem" || fail "GET /v1/crl"
[ "$(openssl crl -in "$T/crl.pem" -noout -text |
    grep -ci "Serial Number: *$serial\$")" -gt 0 ] ||
    fail "the CRL does not list $serial"
echo "pg: a revocation behind a certify waits and revokes its certificate"
# The CRL and purge queries have their indexes on PostgreSQL too.
[ "$(sql "SELECT count(*) FROM pg_indexes WHERE indexname IN ('certs_revoked',
    'certs_not_after', 'certs_key', 'hosts_ek', 'nonces_host', 'nonces_expires',
    'sessions_expires', 'tokens_expires')")" = 8 ] ||
    fail "PostgreSQL lacks an index of schema 5"
echo "ca-revocation: ok"
