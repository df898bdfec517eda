#!/bin/bash
# Nonces per host are rate-limited (issue 21, point 4): with nonce_rate = 1
# (a minute) and nonce_burst = 4, a burst of 7 POST /v1/nonce for one host
# gets 4 nonces and then 429 with a Retry-After header and the one-line
# reason, before any row is written (4 nonce rows); another host still
# gets a nonce; /metrics counts the 3 refusals; the CA logs the episode
# once, not once per refusal. (A minute refills one nonce: the burst
# takes well under a second.)
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"
PROVISION="$top_builddir/tools/botid-provision"
start_ca ca "$BOTID_EK_CA_CHAIN" "nonce_rate = 1" "nonce_burst = 4" \
    "nonce_max = 100"

# Two hosts (two enrolments of the one TPM, each with keys of its own).
agent_conf_begin
for h in a b; do
	sed "s|^state_dir *=.*|state_dir = $T/state-$h|" "$AGENT_CONF" \
	    >"$T/agent-$h.conf"
	"$CA" token create -c "$BOTID_CA_CONF" --ttl 10m >"$T/token-$h"
	check "$PROVISION" -c "$T/agent-$h.conf" --ca "$BOTID_CA_URL" \
	    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token-$h"
	eval "host_$h=\$(sed -n 's/.*\"host_id\": *\"\\([0-9a-f]*\\)\".*/\\1/p' \"\$T/state-$h/attest/host.json\")"
done
[ -n "$host_a" ] && [ -n "$host_b" ] && [ "$host_a" != "$host_b" ] ||
    fail "two hosts were not enrolled: '$host_a' '$host_b'"

# STATUS RETRY-AFTER ERROR, one line per request: 7 for a, then 1 for b.
"$PYTHON3" - "$BOTID_CA_URL" "$BOTID_CA_BUNDLE" "$host_a" "$host_b" \
    >"$T/burst" <<'PY' || fail "the burst failed: $(cat "$T/burst")"
import http.client, json, ssl, sys, urllib.parse
url, bundle, a, b = sys.argv[1:5]
u = urllib.parse.urlsplit(url)
ctx = ssl.create_default_context(cafile=bundle)
c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
for host in [a] * 7 + [b]:
    c.request("POST", "/v1/nonce", json.dumps({"host_id": host}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = json.loads(r.read())
    print(r.status, r.getheader("Retry-After", "-"),
          data.get("error", "-") if r.status != 200 else
          ("nonce" if "nonce" in data else "no-nonce"))
PY
cat "$T/burst"
[ "$(sed -n '1,4p' "$T/burst" | sort -u)" = "200 - nonce" ] ||
    fail "the first 4 of host a did not get nonces: $(cat "$T/burst")"
for i in 5 6 7; do
	read -r status wait why <<<"$(sed -n "${i}p" "$T/burst")"
	[ "$status" = 429 ] || fail "request $i of host a: $status, not 429"
	case $wait in
	[1-9]|[1-5][0-9]|60) ;;
	*) fail "request $i: Retry-After '$wait', not 1..60 s" ;;
	esac
	[ "$why" = "host $host_a asks for nonces faster than 1 a minute: retry in $wait s" ] ||
	    fail "request $i: unclear reason: $why"
done
[ "$(sed -n 8p "$T/burst")" = "200 - nonce" ] ||
    fail "host b got no nonce: $(sed -n 8p "$T/burst")"
# Nothing was written for the refused requests.
rows=$("$PYTHON3" -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT count(*) FROM nonces WHERE host_id = ?",
                (sys.argv[2],)).fetchone()[0])' "$T/ca/ca.db" "$host_a")
[ "$rows" = 4 ] || fail "$rows nonce rows for host a, not 4"
curl -sS --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/metrics" >"$T/metrics" ||
    fail "GET /metrics"
grep -qx 'botid_ca_nonce_rate_limited_total 3' "$T/metrics" ||
    fail "metrics: $(grep nonce_rate "$T/metrics")"
[ "$(grep -c "nonce from .* refused (429): host $host_a asks for nonces faster" "$BOTID_CA_LOG")" = 1 ] ||
    fail "not one log line for the episode: $(grep -c 'refused (429)' "$BOTID_CA_LOG")"
# A value out of range is refused at start.
sed '/^nonce_rate/d' "$BOTID_CA_CONF" >"$T/bad.conf"
echo "nonce_rate = 0" >>"$T/bad.conf"
out=$("$CA" init -c "$T/bad.conf" 2>&1) && fail "nonce_rate = 0 was taken"
grep -q "nonce_rate must be a number from 1 to" <<<"$out" ||
    fail "nonce_rate = 0: unclear refusal: $out"
echo "ca-nonce-rate: ok"
