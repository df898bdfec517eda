#!/bin/bash
# The SoftHSM2 fixture: two tokens side by side, each visible only through
# its own configuration; PIN files are 0600, their PIN logs in, a key made
# in one token appears there only, and softhsm-init never prints a PIN.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/common.sh"
botid_setup

# Straight from the command, to see all it prints.
for name in a b; do
	"$BOTID_FIXTURES/softhsm-init" "$T/$name" "fixture-$name" >"$T/$name.out" ||
	    fail "softhsm-init $name failed"
done
[ "$(cut -d= -f1 "$T/a.out" | tr '\n' ' ')" = \
    "SOFTHSM2_CONF BOTID_PKCS11_MODULE BOTID_TOKEN_LABEL BOTID_PIN_FILE " ] ||
    fail "softhsm-init printed: $(cat "$T/a.out")"
cmp -s "$T/a.out" "$T/a/env" || fail "softhsm-init's stdout differs from DIR/env"

# p11 NAME ARGS...: pkcs11-tool on fixture NAME's token, with its config.
p11() {
	local name=$1
	shift
	SOFTHSM2_CONF=$(fixture_var "$name" SOFTHSM2_CONF) pkcs11-tool \
	    --module "$(fixture_var "$name" BOTID_PKCS11_MODULE)" "$@"
}

for name in a b; do
	case $name in
	a) other=b ;;
	b) other=a ;;
	esac
	label=$(fixture_var "$name" BOTID_TOKEN_LABEL)
	[ "$label" = "fixture-$name" ] || fail "$name: label is $label"
	pin_file=$(fixture_var "$name" BOTID_PIN_FILE)
	for f in "$pin_file" "$T/$name/so.pin"; do
		[ "$(stat -c %a "$f")" = 600 ] ||
		    fail "$f has mode $(stat -c %a "$f"), want 600"
		grep -qxE '[0-9a-f]{32}' "$f" || fail "$f is not a 32-digit hex PIN"
		for out in "$T/a.out" "$T/b.out"; do
			! grep -qF "$(cat "$f")" "$out" || fail "softhsm-init printed a PIN"
		done
	done
	! cmp -s "$pin_file" "$T/$name/so.pin" || fail "$name: user PIN = SO PIN"

	p11 "$name" -L >"$T/$name.slots" 2>&1 || fail "$name: pkcs11-tool -L failed"
	grep -q "token label *: fixture-$name\$" "$T/$name.slots" ||
	    fail "$name: token fixture-$name not listed: $(cat "$T/$name.slots")"
	! grep -q "fixture-$other" "$T/$name.slots" ||
	    fail "$name: token fixture-$other visible through $name's config"

	expect_fail p11 "$name" --token-label "$label" --login --pin 0000 -O
done
[ "$(cat "$T/a/user.pin")" != "$(cat "$T/b/user.pin")" ] ||
    fail "both tokens have the same user PIN"

# A key pair made in token a, logged in with its PIN file, is there only.
check p11 a --token-label fixture-a --login --pin "$(cat "$T/a/user.pin")" \
    --keypairgen --key-type EC:prime256v1 --label fixture-key >/dev/null
for name in a b; do
	p11 "$name" --token-label "fixture-$name" --login \
	    --pin "$(cat "$(fixture_var "$name" BOTID_PIN_FILE)")" -O \
	    >"$T/$name.objects" 2>&1 || fail "$name: listing objects failed"
done
grep -q "label: *fixture-key" "$T/a.objects" ||
    fail "the new key is not in token a: $(cat "$T/a.objects")"
! grep -q "fixture-key" "$T/b.objects" || fail "the new key appears in token b"

# The helper sets the variables in the caller; a used directory is refused.
start_softhsm c
[ "$BOTID_TOKEN_LABEL" = botid ] || fail "default label is $BOTID_TOKEN_LABEL"
[ "$SOFTHSM2_CONF" = "$(cd "$T/c" && pwd -P)/softhsm2.conf" ] ||
    fail "SOFTHSM2_CONF=$SOFTHSM2_CONF"
[ -f "$BOTID_PKCS11_MODULE" ] || fail "no module $BOTID_PKCS11_MODULE"
expect_fail "$BOTID_FIXTURES/softhsm-init" "$T/c"
echo "PASS: softhsm fixtures"
