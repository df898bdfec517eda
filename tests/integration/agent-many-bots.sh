#!/bin/bash
# 200 TPM-backed bots on one swtpm (3 object slots): each is asked to sign,
# in random order, and every signature verifies with OpenSSL. Then 900 bots,
# too many names for one LIST reply, which must fail cleanly.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

N=200
agent_conf_begin
for i in $(seq 1 $N); do
	agent_add_bot "bot$i" tpm ecdsa-p256 "uid:$(id -u)"
done
start_agent
[ "$(botid_cli list | wc -l)" -eq $N ] || fail "list does not show $N bots"

printf 'payload\n' >"$T/msg"
for i in $(shuf -i 1-$N); do
	botid_cli pubkey "bot$i" --out "$T/bot$i.pem" || fail "pubkey bot$i"
	botid_cli sign "bot$i" --in "$T/msg" --out "$T/bot$i.sig" || fail "sign bot$i"
done
bad=0
for i in $(seq 1 $N); do
	openssl dgst -sha256 -verify "$T/bot$i.pem" -signature "$T/bot$i.sig" \
	    "$T/msg" >/dev/null 2>&1 || bad=$((bad + 1))
done
[ "$bad" -eq 0 ] || fail "$bad of $N signatures did not verify"
# Distinct keys: no two bots share a public key.
[ "$(sha256sum "$T"/bot*.pem | cut -d' ' -f1 | sort | uniq -d | wc -l)" -eq 0 ] ||
    fail "two bots share a key"

# Past one frame of names, LIST says so instead of dropping the caller:
# 700 more bots with 64-byte names, added by a reload.
M=700
long=$(printf 'x%.0s' $(seq 1 58))
for i in $(seq 1 $M); do
	agent_add_bot "$(printf '%s%06d' "$long" "$i")" tpm ecdsa-p256 "uid:$(id -u)"
done
kill -HUP "$AGENT_PID"
last=$(printf '%s%06d' "$long" $M)
for _ in $(seq 1 600); do
	botid_cli pubkey "$last" --out "$T/last.pem" >/dev/null 2>&1 && break
	sleep 0.1
done
check botid_cli pubkey "$last" --out "$T/last.pem"
rc=0
out=$(botid_cli list 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "list of $((N + M)) bots: exit $rc, want 1"
case $out in *"too many bots"*) ;; *) fail "list of $((N + M)) bots said: $out";; esac
stop_agent
echo "PASS: $N TPM bots signed in random order and verified"
