#!/bin/bash
# Bounded CA state (issue 21, point 4). 10000 POST /v1/nonce for one host
# leave nonce_max rows: the calls beyond the cap get 429 with the reason;
# once its nonces are used or expired the host gets new ones. `botid-ca
# purge --at TIME` deletes, as of TIME, expired nonces, sessions and join
# tokens and certificates expired longer than cert_retention (a revoked
# bot's only once it is lifted), and nothing else; the serve loop purges every purge_interval (its log line). The
# CRL and purge queries have indexes (schema 5), and SQLite uses the one
# on revoked_at for the CRL. database_sync = normal is taken by serve
# alone, which says so, and other values are refused.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"
REQUESTS="$top_builddir/tests/integration/ca-certify-requests"
PROVISION="$top_builddir/tools/botid-provision"
# (nonce_burst above the storm: the rate is ca-nonce-rate.sh's.)
start_ca ca "$BOTID_EK_CA_CHAIN" "nonce_max = 32" "nonce_lifetime = 1h" \
    "nonce_burst = 1000000" \
    "purge_interval = 1" \
    "cert_retention = 1d"
DB="$T/ca/ca.db"
db() {
	"$PYTHON3" -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for row in c.execute(sys.argv[2], sys.argv[3:]):
    print("|".join(str(v) for v in row))' "$DB" "$@"
}

agent_conf_begin
"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
host=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")

# The schedule: the serve loop's purge thread runs and logs.
for _ in $(seq 1 600); do
	grep -q 'ca: purged [0-9]* nonce(s)' "$BOTID_CA_LOG" && break
	sleep 0.1
done
grep -q 'ca: purged [0-9]* nonce(s)' "$BOTID_CA_LOG" ||
    fail "the serve loop never purged: $(tail -3 "$BOTID_CA_LOG")"

# --- 10000 nonce requests for one host ------------------------------------
"$PYTHON3" - "$BOTID_CA_URL" "$BOTID_CA_BUNDLE" "$host" >"$T/storm" <<'PY' ||
import collections, http.client, json, ssl, sys, threading, urllib.parse
url, bundle, host = sys.argv[1:4]
u = urllib.parse.urlsplit(url)
ctx = ssl.create_default_context(cafile=bundle)
body = json.dumps({"host_id": host})
counts = collections.Counter()
reasons = set()
lock = threading.Lock()
def worker(n):
    for _ in range(n):
        c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
        c.request("POST", "/v1/nonce", body,
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        with lock:
            counts[r.status] += 1
            if r.status != 200:
                reasons.add(json.loads(data)["error"])
threads = [threading.Thread(target=worker, args=(1250,)) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(counts[200], counts[429], sum(counts.values()))
for r in sorted(reasons): print(r)
PY
    fail "the nonce storm failed: $(cat "$T/storm")"
read -r ok limited total <"$T/storm"
[ "$total" = 10000 ] || fail "not 10000 answers: $(cat "$T/storm")"
[ "$ok" = 32 ] && [ "$limited" = 9968 ] ||
    fail "not 32 nonces and 9968 refusals: $(cat "$T/storm")"
[ "$(sed -n 2p "$T/storm")" = "host $host holds 32 unused nonces: use or let them expire" ] ||
    fail "429: unclear reason: $(sed -n '2,$p' "$T/storm")"
[ "$(sed -n '$=' "$T/storm")" = 2 ] || fail "other refusals: $(cat "$T/storm")"
[ "$(db 'SELECT count(*) FROM nonces WHERE host_id = ?' "$host")" = 32 ] ||
    fail "$(db 'SELECT count(*) FROM nonces WHERE host_id = ?' "$host") nonce rows, not 32"
echo "nonces: 10000 requests, 32 rows, 9968 answered 429"

# Using one frees one: a certify consumes a nonce (fetched when the cap
# has room again, after a purge of nothing but expired rows).
now=$(date +%s)
check "$CA" purge -c "$BOTID_CA_CONF" --at $((now + 7200)) >"$T/purge1"
grep -qx 'purged 32 nonce(s), [01] session(s), 1 token(s), 0 certificate(s)' "$T/purge1" ||
    fail "purge two hours on: $(cat "$T/purge1")"
[ "$(db 'SELECT count(*) FROM nonces')" = 0 ] || fail "expired nonces remain"
mkdir -p "$T/req"
"$REQUESTS" "$T/state" "$BOTID_TCTI" 1 "$T/req" worker >"$T/req.out" 2>&1 ||
    fail "ca-certify-requests after the purge: $(cat "$T/req.out")"
[ "$(curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
    -H 'Content-Type: application/json' --data-binary "@$T/req/certify-0.json" \
    "$BOTID_CA_URL/v1/certify")" = 200 ] || fail "certify: $(cat "$T/body")"
serial=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$T/body")
check "$CA" revoke -c "$BOTID_CA_CONF" bot "spiffe://test.botid/host/$host/bot/worker"

# --- Purge by retention ---------------------------------------------------
# The bot certificate (an hour) is kept for a day after it expired; the
# host certificate (30 days) and the host stay.
check "$CA" purge -c "$BOTID_CA_CONF" --at $((now + 86400)) >"$T/purge2"
grep -qx 'purged [01] nonce(s), [01] session(s), 0 token(s), 0 certificate(s)' "$T/purge2" ||
    fail "purge within the retention: $(cat "$T/purge2")"
[ "$(db 'SELECT count(*) FROM certs WHERE serial = ?' "$serial")" = 1 ] ||
    fail "a certificate was purged within its retention"
# The bot is revoked: its certificate stays past the retention (its key is
# refused under another name by that row), and so does the revocation.
check "$CA" purge -c "$BOTID_CA_CONF" --at $((now + 2 * 86400 + 3600)) >"$T/purge3"
grep -qx 'purged 0 nonce(s), 0 session(s), 0 token(s), 0 certificate(s)' "$T/purge3" ||
    fail "purge after the retention, bot revoked: $(cat "$T/purge3")"
[ "$(db 'SELECT count(*) FROM certs WHERE serial = ?' "$serial")" = 1 ] ||
    fail "the revoked bot's certificate was purged"
[ "$(db 'SELECT count(*) FROM revoked_bots')" = 1 ] || fail "the bot's revocation was purged"
# Lifted, its expired certificate goes at the next purge.
check "$CA" unrevoke -c "$BOTID_CA_CONF" bot "spiffe://test.botid/host/$host/bot/worker"
check "$CA" purge -c "$BOTID_CA_CONF" --at $((now + 2 * 86400 + 3600)) >"$T/purge4"
grep -qx 'purged 0 nonce(s), 0 session(s), 0 token(s), 1 certificate(s)' "$T/purge4" ||
    fail "purge after the retention: $(cat "$T/purge4")"
[ "$(db 'SELECT count(*) FROM certs WHERE serial = ?' "$serial")" = 0 ] ||
    fail "the expired certificate is still there"
[ "$(db 'SELECT count(*) FROM certs WHERE host_id = ? AND bot IS NULL' "$host")" = 1 ] ||
    fail "the host certificate was purged"
[ "$(db 'SELECT count(*) FROM hosts')" = 1 ] || fail "a host was purged"
expect_fail "$CA" purge -c "$BOTID_CA_CONF" --at yesterday

# --- Indexes --------------------------------------------------------------
for ix in certs_revoked certs_not_after nonces_host nonces_expires \
    sessions_expires tokens_expires hosts_ek certs_key; do
	[ "$(db "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?" "$ix")" = 1 ] ||
	    fail "no index $ix"
done
db 'EXPLAIN QUERY PLAN SELECT serial, revoked_at, revoke_reason FROM certs WHERE revoked_at IS NOT NULL AND not_after >= 0 ORDER BY revoked_at' >"$T/plan"
grep -q 'USING INDEX certs_revoked' "$T/plan" || fail "the CRL query scans: $(cat "$T/plan")"

# --- database_sync = normal: serve's commits are not fsynced, and it says
# so; the operator's commands keep theirs; other values are refused.
start_ca relaxed "$BOTID_EK_CA_CHAIN" "database_sync = normal"
grep -q 'ca: database_sync = normal: commits are not fsynced; a power loss may undo the last ones' \
    "$BOTID_CA_LOG" || fail "database_sync = normal: no warning: $(cat "$BOTID_CA_LOG")"
[ "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
    "$BOTID_CA_URL/v1/health/ready")" = 200 ] || fail "database_sync = normal: not ready"
out=$("$CA" token create -c "$BOTID_CA_CONF" --ttl 1m 2>&1) ||
    fail "token create: $out"
if grep -q 'database_sync' <<<"$out"; then
	fail "a command relaxed its commits: $out"
fi
sed 's/^database_sync = normal$/database_sync = off/' "$BOTID_CA_CONF" >"$T/bad.conf"
out=$("$CA" init -c "$T/bad.conf" 2>&1) && fail "database_sync = off was taken"
grep -q 'database_sync must be full or normal' <<<"$out" ||
    fail "database_sync = off: unclear refusal: $out"
echo "ca-state: ok"
