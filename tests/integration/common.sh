# shellcheck shell=bash
# Helpers sourced by every integration test: a private temporary directory
# $T, swtpm and SoftHSM2 fixtures inside it that are stopped on any exit, and
# assertions that end the test with one "FAIL:" line.
#
#   . "$top_srcdir/tests/integration/common.sh"
#   botid_setup
#   start_swtpm tpm              # sets BOTID_TCTI, BOTID_EK_CA, ... here
#   start_softhsm hsm mylabel    # sets SOFTHSM2_CONF, BOTID_PIN_FILE, ...
#   check openssl ...            # must succeed
#   expect_fail openssl ...      # must fail
#
# BOTID_KEEP_TMP=1 keeps $T (logs, fixture state) for a post-mortem.

# automake exports both; run by hand, the tree holding this file is both.
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
BOTID_FIXTURES="$top_srcdir/swtpm-fixtures"

_botid_swtpm_dirs=()
_botid_pids=()
_botid_mounts=()
_botid_cleanups=()

# fail MSG: ends the test (or the subshell it runs in) with status 1.
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# check CMD...: runs CMD and fails the test if it does not succeed.
check() {
	local rc=0
	"$@" || rc=$?
	[ "$rc" -eq 0 ] || fail "exit status $rc from: $*"
}

# expect_fail CMD...: runs CMD, output discarded, and fails the test if it
# succeeds.
expect_fail() {
	if "$@" >/dev/null 2>&1; then
		fail "succeeded but must fail: $*"
	fi
}

# register_pid PID: a background process to end when the test exits.
register_pid() {
	_botid_pids+=("$1")
}

# register_mount DIR: a file system mounted on DIR, unmounted when the
# test exits (before $T is removed).
register_mount() {
	_botid_mounts+=("$1")
}

# swtpm_by_hand NAME FLAGS: starts the TPM of fixture $T/NAME again, on the
# port of its TCTI and with its state, as a real TPM keeps its device
# (swtpm-start would pick a new port). FLAGS are swtpm's --flags, e.g.
# not-need-init,startup-clear for a reboot. Sets SWTPM_HAND_PID.
swtpm_by_hand() {
	local dir="$T/$1" flags=$2 port i pid=
	port=$(fixture_var "$1" BOTID_TCTI)
	port=${port##*port=}
	rm -f "$dir/swtpm.pid"
	for i in $(seq 1 50); do
		if swtpm socket --tpm2 --tpmstate "dir=$dir/state" \
		    --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
		    --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
		    --flags "$flags" --pid "file=$dir/swtpm.pid" \
		    --log "file=$dir/swtpm-by-hand.log" --daemon \
		    </dev/null >/dev/null 2>>"$dir/swtpm-by-hand.err"; then
			break
		fi
		[ "$i" -lt 50 ] || fail "swtpm cannot listen on port $port again"
		sleep 0.1
	done
	for i in $(seq 1 250); do
		pid=$(cat "$dir/swtpm.pid" 2>/dev/null) && [ -n "$pid" ] && break
		sleep 0.02
	done
	[ -n "$pid" ] || fail "swtpm wrote no pid file"
	register_pid "$pid"
	SWTPM_HAND_PID=$pid
}

# swtpm_by_hand_stop [SIGNAL]: stops the TPM swtpm_by_hand started.
swtpm_by_hand_stop() {
	local i
	kill "-${1:-TERM}" "$SWTPM_HAND_PID" 2>/dev/null
	for i in $(seq 1 250); do
		kill -0 "$SWTPM_HAND_PID" 2>/dev/null || return 0
		sleep 0.02
	done
	fail "swtpm (pid $SWTPM_HAND_PID) does not stop"
}

# register_cleanup CMD...: a command run when the test exits, after the
# registered processes are stopped and before $T is removed.
register_cleanup() {
	local q
	printf -v q '%q ' "$@"
	_botid_cleanups+=("$q")
}

# botid_setup: creates $T and arranges the cleanup of everything started
# through these helpers, whatever way the test ends.
botid_setup() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/botid-test.XXXXXX") ||
	    fail "mktemp -d failed"
	trap _botid_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

_botid_cleanup() {
	local rc=$? pid dir i
	set +e
	trap - EXIT HUP INT TERM
	for pid in "${_botid_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${_botid_pids[@]}"; do
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			[ "$i" -lt 50 ] || kill -KILL "$pid" 2>/dev/null
			sleep 0.1
		done
		wait "$pid" 2>/dev/null
	done
	for dir in "${_botid_swtpm_dirs[@]}"; do
		"$BOTID_FIXTURES/swtpm-stop" "$dir"
	done
	for i in "${_botid_cleanups[@]}"; do
		eval "$i"
	done
	for dir in "${_botid_mounts[@]}"; do
		umount "$dir"
	done
	if [ "${BOTID_KEEP_TMP:-0}" = 1 ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}

# start_swtpm NAME...: a TPM fixture in $T/NAME for each NAME, started in
# parallel. With one NAME the variables swtpm-start prints (BOTID_TCTI,
# BOTID_EK_CA, BOTID_EK_CA_CHAIN, SWTPM_PID) are set here; with several,
# read them with fixture_var. Run again on a stopped NAME, it restarts that
# TPM with the same EKs. Stopped when the test exits.
start_swtpm() {
	local names=("$@") i out pids=() bad=()
	for i in "${!names[@]}"; do
		_botid_swtpm_dirs+=("$T/${names[i]}")
		"$BOTID_FIXTURES/swtpm-start" "$T/${names[i]}" \
		    >"$T/.swtpm-start.out.$i" &
		pids+=($!)
	done
	for i in "${!names[@]}"; do
		wait "${pids[i]}" || bad+=("${names[i]}")
	done
	[ ${#bad[@]} -eq 0 ] || fail "swtpm-start failed for: ${bad[*]}"
	if [ ${#names[@]} -eq 1 ]; then
		out=$(cat "$T/.swtpm-start.out.0")
		eval "$out"
	fi
	rm -f "$T"/.swtpm-start.out.*
}

# stop_swtpm NAME: stops the TPM fixture in $T/NAME, keeping its state.
stop_swtpm() {
	"$BOTID_FIXTURES/swtpm-stop" "$T/$1" || fail "swtpm-stop $1 failed"
}

# start_softhsm NAME [LABEL]: a SoftHSM2 token in $T/NAME; sets
# SOFTHSM2_CONF (not exported), BOTID_PKCS11_MODULE, BOTID_TOKEN_LABEL and
# BOTID_PIN_FILE here.
start_softhsm() {
	local out
	out=$("$BOTID_FIXTURES/softhsm-init" "$T/$1" ${2+"$2"}) ||
	    fail "softhsm-init $1 failed"
	eval "$out"
}

# fixture_var NAME VAR: prints VAR from the fixture in $T/NAME (its env file).
fixture_var() {
	[ -f "$T/$1/env" ] || fail "no fixture $1"
	(
		# shellcheck source=/dev/null
		. "$T/$1/env"
		[ -n "${!2+set}" ] || fail "fixture $1 has no $2"
		printf '%s\n' "${!2}"
	)
}

# start_ca NAME EK_ROOTS [CONFIG_LINE...]: a botid-ca in $T/NAME trusting
# the EK roots in the PEM file EK_ROOTS (an EK CA chain), on a free port of
# 127.0.0.1, with a PEM key made by `botid-ca init`. Its database is the
# SQLite file $T/NAME/ca.db, or, when BOTID_TEST_PG is set (pg-common.sh),
# a PostgreSQL database of that server made for NAME. Sets CA (the program),
# BOTID_CA_CONF, BOTID_CA_URL, BOTID_CA_CERT (the CA certificate),
# BOTID_CA_BUNDLE and BOTID_CA_LOG here. BOTID_CA_BUNDLE is the CA
# certificate and the CA's self-signed TLS certificate (tls.pem, made by
# `botid-ca init`), for clients that do not pin the TLS key (curl, Python):
# botid-provision pins it from the join token whatever bundle it is given.
# Stopped when the test exits.
start_ca() {
	local name=$1 dir="$T/$1" roots=$2 pid
	shift 2
	CA="$top_builddir/ca/botid-ca"
	mkdir -p "$dir"
	BOTID_CA_CONF="$dir/ca.conf"
	BOTID_CA_CERT="$dir/ca.pem"
	BOTID_CA_BUNDLE="$dir/bundle.pem"
	BOTID_CA_LOG="$dir/ca.log"
	{
		echo "[ca]"
		echo "trust_domain = test.botid"
		echo "listen = 127.0.0.1:0"
		if [ -n "${BOTID_TEST_PG:-}" ]; then
			echo "database = $(pg_database "$name")"
		else
			echo "database = $dir/ca.db"
		fi
		echo "ca_cert = $BOTID_CA_CERT"
		echo "ca_key = file:$dir/ca.key"
		echo "ek_root = $roots"
		for line in "$@"; do echo "$line"; done
	} >"$BOTID_CA_CONF"
	"$CA" init -c "$BOTID_CA_CONF" >"$dir/init.out" ||
	    fail "botid-ca init failed: $(cat "$dir/init.out")"
	cat "$BOTID_CA_CERT" "$dir/tls.pem" >"$BOTID_CA_BUNDLE" ||
	    fail "no TLS certificate from botid-ca init"
	"$CA" serve -c "$BOTID_CA_CONF" --port-file "$dir/port" \
	    2>>"$BOTID_CA_LOG" &
	pid=$!
	register_pid "$pid"
	for _ in $(seq 1 100); do
		[ -s "$dir/port" ] && break
		kill -0 "$pid" 2>/dev/null ||
		    fail "botid-ca died at start: $(tail -3 "$BOTID_CA_LOG")"
		sleep 0.1
	done
	[ -s "$dir/port" ] || fail "botid-ca did not start within 10 s"
	BOTID_CA_URL="https://127.0.0.1:$(cat "$dir/port")"
	BOTID_CA_PID=$pid
}

# ca_sql NAME SQL: runs SQL on the database of the CA start_ca made in
# $T/NAME (PostgreSQL when BOTID_TEST_PG is set, else its SQLite file) and
# prints the rows, one a line, columns joined by '|'.
ca_sql() {
	if [ -n "${BOTID_TEST_PG:-}" ]; then
		"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -A -t \
		    "$(pg_database "$1")" -c "$2"
	else
		sqlite3 "$T/$1/ca.db" "$2"
	fi
}

# A test run against PostgreSQL (ca-postgres.sh) finds its helpers here.
if [ -n "${BOTID_TEST_PG:-}" ]; then
	# shellcheck source=pg-common.sh
	. "$top_srcdir/tests/integration/pg-common.sh"
fi
