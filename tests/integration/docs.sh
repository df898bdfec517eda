#!/bin/bash
# The documentation matches the code: man pages are clean mdoc, every
# configuration key the parser accepts is documented in
# botid-agent.conf(5), and every command answers --help.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup

for m in "$top_srcdir"/doc/man/*.[0-9]; do
	out=$(mandoc -Tlint -W warning "$m" 2>&1) || fail "$m: $out"
	[ -z "$out" ] || fail "$m: $out"
done

# The key tables in agent/config.c, read from the source.
keys=$(sed -n '/^static const char \*const \(agent\|bot\)_keys/,/^};/p' \
    "$top_srcdir/agent/config.c" | grep -o '"[a-z_]*"' | tr -d '"')
[ "$(wc -w <<<"$keys")" -ge 15 ] || fail "could not read the key tables: $keys"
for k in $keys; do
	grep -q "^\.It Ic $k Ns" "$top_srcdir/doc/man/botid-agent.conf.5" ||
	    fail "configuration key $k is not documented in botid-agent.conf.5"
done

"$top_builddir/agent/botid-agent" --help >"$T/agent.help" 2>&1 ||
    fail "botid-agent --help failed"
grep -q -- '--check-config' "$T/agent.help" || fail "botid-agent --help is incomplete"
"$top_builddir/tools/botid" --help >"$T/botid.help" 2>&1 || fail "botid --help failed"
for cmd in list pubkey sign jwt sign-msg verify-jwt verify-msg verify-cert \
    inventory status; do
	grep -q "$cmd" "$T/botid.help" || fail "botid --help does not mention $cmd"
done
"$top_builddir/ca/botid-ca" --help >"$T/ca.help" 2>&1 || fail "botid-ca --help failed"
for cmd in init serve "token create" revoke inventory; do
	grep -q "$cmd" "$T/ca.help" || fail "botid-ca --help does not mention $cmd"
done
# Every key botid-ca's parser accepts is in botid-ca(8).
ca_keys=$(grep -o 'strcmp(name, "[a-z_0-9]*")' "$top_srcdir/ca/ca-config.c" |
    sed 's/.*"\(.*\)".*/\1/')
[ "$(wc -w <<<"$ca_keys")" -ge 10 ] || fail "could not read botid-ca's keys: $ca_keys"
for k in $ca_keys; do
	grep -q "^\.It Ic $k No" "$top_srcdir/doc/man/botid-ca.8" ||
	    fail "botid-ca key $k is not documented in botid-ca.8"
done
"$top_builddir/tools/botid-provision" --help >"$T/prov.help" 2>&1 ||
    fail "botid-provision --help failed"
grep -q -- '--join-token-file' "$T/prov.help" || fail "botid-provision --help is incomplete"
echo "PASS: man pages lint clean and cover every configuration key"

# The sample configuration `make install` puts in $(docdir)/examples loads,
# once its group and users are ones this machine has.
sed -e 's/^socket_group = .*/socket_group = 0/' -e 's/^allow = .*/allow = uid:0/' \
    "$top_srcdir/examples/agent.conf" >"$T/sample-agent.conf"
"$top_builddir/agent/botid-agent" -t -c "$T/sample-agent.conf" >"$T/sample.out" 2>&1 ||
    fail "examples/agent.conf does not load: $(cat "$T/sample.out")"
grep -q '^\[bot inventory\]' "$T/sample-agent.conf" || fail "the sample declares no bot"
# Every key of the sample CA configuration is one botid-ca(8) documents.
for k in $(sed -n 's/^\([a-z_]*\) = .*/\1/p' "$top_srcdir/examples/ca.conf"); do
	grep -q "^\.It Ic $k No" "$top_srcdir/doc/man/botid-ca.8" ||
	    fail "examples/ca.conf: key $k is not in botid-ca(8)"
done
echo "PASS: the sample configurations load"
