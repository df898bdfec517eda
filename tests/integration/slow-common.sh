# shellcheck shell=bash
# Slow-device helpers, sourced after common.sh: a TPM fixture behind
# swtpm-delay (answers of TPM2_Sign, Certify, Create held) and SoftHSM2
# behind delay-pkcs11.so (C_Sign held). doc/performance.md, "Real-chip
# speed", says how to use them by hand.

DELAY_PKCS11="$top_builddir/swtpm-fixtures/.libs/delay-pkcs11.so"

# start_swtpm_delay NAME TAG [swtpm-delay OPTION...]: a swtpm-delay in
# front of the TPM fixture $T/NAME (start_swtpm NAME first), its log in
# $T/NAME/delay-TAG.log (-v: one line per held answer). Sets BOTID_TCTI to
# the proxy's and BOTID_TCTI_DIRECT to swtpm's own. Stopped when the test
# exits.
start_swtpm_delay() {
	local name=$1 tag=$2 dir="$T/$1" pid
	shift 2
	rm -f "$dir/delay-$tag.env"
	"$BOTID_FIXTURES/swtpm-delay" -v \
	    --upstream "$(fixture_var "$name" BOTID_TCTI)" \
	    --env-file "$dir/delay-$tag.env" "$@" \
	    >/dev/null 2>>"$dir/delay-$tag.log" &
	pid=$!
	register_pid "$pid"
	# The env file is written (renamed into place) once it listens.
	for _ in $(seq 1 600); do
		[ -s "$dir/delay-$tag.env" ] && break
		kill -0 "$pid" 2>/dev/null ||
		    fail "swtpm-delay died: $(tail -3 "$dir/delay-$tag.log")"
		sleep 0.05
	done
	[ -s "$dir/delay-$tag.env" ] ||
	    fail "swtpm-delay did not listen within 30 s"
	BOTID_TCTI_DIRECT=$(fixture_var "$name" BOTID_TCTI)
	# shellcheck source=/dev/null
	BOTID_TCTI=$(. "$dir/delay-$tag.env" && echo "$BOTID_TCTI")
	SWTPM_DELAY_PID=$pid
}

# use_delay_pkcs11 MICROSECONDS: bots added from now on use delay-pkcs11.so
# in front of the SoftHSM2 module of start_softhsm, and every C_Sign that
# signs takes at least MICROSECONDS (exported for the agent and the bench).
use_delay_pkcs11() {
	[ -f "$DELAY_PKCS11" ] || fail "$DELAY_PKCS11 is not built"
	if [ "${BOTID_PKCS11_MODULE:-}" != "$DELAY_PKCS11" ]; then
		export BOTID_DELAY_PKCS11_MODULE="$BOTID_PKCS11_MODULE"
	fi
	export BOTID_DELAY_SIGN_US="$1"
	BOTID_PKCS11_MODULE=$DELAY_PKCS11
}

# held_ms LOG NAME: the hold times (ms, one a line) of command NAME
# (TPM2_Sign...) that swtpm-delay logged in LOG.
held_ms() {
	sed -n "s/^swtpm-delay: $2 held \([0-9.]*\) ms\$/\1/p" "$1"
}
