#!/bin/bash
# botid-provision names the cause of every failure it can meet before the
# CA has a say, with its documented exit status: no TPM (5), no EK
# certificate (5), CA unreachable (4), bad arguments (2); --status tells
# an unprovisioned host (1). A failed run leaves keys it can reuse.
# --join-token is not in the running process's arguments.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
agent_conf_begin
agent_add_bot a tpm ecdsa-p256 "uid:$(id -u)"
cp "$BOTID_EK_CA" "$T/bundle.pem"
printf 'some-token\n' >"$T/token"
: >"$T/empty"

# run EXPECTED_STATUS PATTERN ARGS...: the status and a one-line message.
run() {
	local want=$1 pattern=$2 out st=0
	shift 2
	out=$("$PROVISION" "$@" 2>&1) || st=$?
	[ "$st" -eq "$want" ] || fail "botid-provision $*: status $st, not $want: $out"
	case $out in *$pattern*) ;; *) fail "botid-provision $*: '$out' lacks '$pattern'";; esac
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] ||
	    fail "botid-provision $*: more than one line: $out"
}

run 1 "not provisioned" -c "$AGENT_CONF" --status
run 2 "needed" -c "$AGENT_CONF" --ca https://127.0.0.1:1
run 2 "needed" -c "$AGENT_CONF" --ca-bundle "$T/bundle.pem"
run 2 "not an https" -c "$AGENT_CONF" --ca http://127.0.0.1:1 \
    --ca-bundle "$T/bundle.pem" --join-token-file "$T/token"
run 2 "No such file" -c "$AGENT_CONF" --ca https://127.0.0.1:1 \
    --ca-bundle "$T/missing.pem" --join-token-file "$T/token"
run 2 "empty" -c "$AGENT_CONF" --ca https://127.0.0.1:1 \
    --ca-bundle "$T/bundle.pem" --join-token-file "$T/empty"

# A closed port: the CA cannot be reached. The keys made stay for next time.
run 4 "cannot reach the CA" -c "$AGENT_CONF" --ca https://127.0.0.1:1 \
    --ca-bundle "$T/bundle.pem" --join-token-file "$T/token"
for f in ak.pub ak.priv hostkey.pub hostkey.priv; do
	[ -s "$T/state/attest/$f" ] || fail "$f was not kept after a failed run"
	[ "$(stat -c %a "$T/state/attest/$f")" = 600 ] || fail "$f is not 0600"
done
[ "$(stat -c %a "$T/state/attest")" = 700 ] || fail "attest/ is not 0700"
sums=$(cd "$T/state/attest" && sha256sum -- *)
run 4 "cannot reach the CA" -c "$AGENT_CONF" --ca https://127.0.0.1:1 \
    --ca-bundle "$T/bundle.pem" --join-token-file "$T/token"
[ "$sums" = "$(cd "$T/state/attest" && sha256sum -- *)" ] ||
    fail "a second run made new keys instead of reusing them"

# --join-token is wiped from the arguments at once (botid-provision(8)):
# with the answer to its first TPM command held (swtpm-delay, a gate never
# opened), it is past its options, and its /proc cmdline, which ps(1)
# reads, holds the option but not the token.
. "$top_srcdir/tests/integration/slow-common.sh"
start_swtpm_delay tpm hold --log-commands --hold "0x144=$T/never"
sed "s|^tcti = .*|tcti = $BOTID_TCTI|" "$AGENT_CONF" >"$T/held.conf"
BOTID_TCTI=$BOTID_TCTI_DIRECT
secret="jt$RANDOM$RANDOM"
"$PROVISION" -c "$T/held.conf" --ca https://127.0.0.1:1 \
    --ca-bundle "$T/bundle.pem" --join-token "$secret-x" >"$T/held.out" 2>&1 &
prov=$!
register_pid "$prov"
started() { grep -qx 'swtpm-delay: command TPM2_Startup' "$T/tpm/delay-hold.log"; }
for _ in $(seq 1 600); do
	started && break
	kill -0 "$prov" 2>/dev/null || break
	sleep 0.1
done
started || fail "botid-provision sent no TPM2_Startup: $(cat "$T/held.out")"
args=$(tr '\0' '\n' <"/proc/$prov/cmdline")
grep -qx -- --join-token <<<"$args" || fail "not botid-provision's arguments: $args"
case $args in *"$secret"*) fail "the join token is in /proc/$prov/cmdline";; esac
kill "$prov"
wait "$prov" 2>/dev/null || true

# No EK certificate: remove them from NV (the fixture leaves NV unlocked).
export TPM2TOOLS_TCTI="$BOTID_TCTI"
for idx in 0x01c00002 0x01c0000a 0x01c00016; do
	check tpm2_nvundefine "$idx"
done
run 5 "no EK certificate" -c "$AGENT_CONF" --ca https://127.0.0.1:1 \
    --ca-bundle "$T/bundle.pem" --join-token-file "$T/token"

# No TPM at all.

"$top_srcdir/swtpm-fixtures/swtpm-stop" "$T/tpm" >/dev/null
run 5 "no TPM" -c "$AGENT_CONF" --ca https://127.0.0.1:1 \
    --ca-bundle "$T/bundle.pem" --join-token-file "$T/token"
echo "PASS: provisioning failures are named, with their exit status"
