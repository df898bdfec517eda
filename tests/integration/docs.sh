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
for cmd in list pubkey sign jwt sign-msg verify-jwt verify-msg verify-cert; do
	grep -q "$cmd" "$T/botid.help" || fail "botid --help does not mention $cmd"
done
echo "PASS: man pages lint clean and cover every configuration key"
