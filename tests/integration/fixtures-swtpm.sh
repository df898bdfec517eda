#!/bin/bash
# The swtpm fixture: two TPMs started at the same moment get their own ports
# and their own EK CAs (never /var/lib/swtpm-localca); their RSA-2048 and
# P-256 EK certificates in NV certify the keys tpm2_createek recomputes and
# verify against their own CA only; a stop and restart keeps them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/common.sh"
botid_setup

localca_listing() {
	ls -la --time-style=full-iso /var/lib/swtpm-localca 2>&1 || true
}
localca_before=$(localca_listing)

# running PID: PID is alive (a zombie that init has yet to reap is not).
running() {
	local state
	state=$(ps -o stat= -p "$1") && [[ $state != Z* ]]
}

# read_ek_cert TCTI INDEX OUT: the certificate in NV INDEX, as OUT (PEM)
# and OUT.der.
read_ek_cert() {
	local tcti=$1 index=$2 out=$3 size
	size=$(tpm2_nvreadpublic -T "$tcti" "$index" 2>/dev/null |
	    awk '$1 == "size:" { print $2 }')
	[ -n "$size" ] || fail "$tcti: no NV index $index"
	check tpm2_nvread -T "$tcti" -C o -s "$size" -o "$out.der" "$index"
	check openssl x509 -inform DER -in "$out.der" -out "$out"
}

# ek_public TCTI ALG OUT: the EK public key of the standard template, in PEM.
ek_public() {
	check tpm2_createek -T "$1" -G "$2" -c "$T/ek.ctx" -u "$3" -f pem
	check tpm2_flushcontext -T "$1" -t
}

# same_key PEM-PUBKEY PEM-PUBKEY: both files hold the same public key.
same_key() {
	cmp -s <(openssl pkey -pubin -in "$1" -outform DER) \
	    <(openssl pkey -pubin -in "$2" -outform DER)
}

# check_fixture NAME OTHER: NAME's EK certificates against its own EK CA
# and OTHER's.
check_fixture() {
	local name=$1 other=$2 dir tcti root chain kind index alg cert
	dir=$(cd "$T/$name" && pwd -P)
	tcti=$(fixture_var "$name" BOTID_TCTI)
	root=$(fixture_var "$name" BOTID_EK_CA)
	chain=$(fixture_var "$name" BOTID_EK_CA_CHAIN)
	check tpm2_getcap -T "$tcti" properties-fixed >/dev/null

	# The EK CA is this fixture's own, entirely inside its directory.
	case $root:$chain in
	"$dir"/*:"$dir"/*) ;;
	*) fail "$name: EK CA outside $dir: $root $chain" ;;
	esac
	grep -q "^statedir = $dir/" "$dir/swtpm-localca.conf" ||
	    fail "$name: swtpm_localca's statedir is not in $dir"
	if grep -hv '^#' "$dir/swtpm_setup.conf" "$dir/swtpm-localca.conf" |
	    grep -F / | grep -vF -e "$dir/" -e "_tool = /usr/"; then
		fail "$name: a swtpm_setup/localca path outside $dir"
	fi
	[ "$(grep -c 'BEGIN CERTIFICATE' "$chain")" -eq 2 ] ||
	    fail "$name: $chain is not issuer + root"

	for kind in rsa p256; do
		case $kind in
		rsa) index=0x01c00002 alg=rsa ;;
		p256) index=0x01c0000a alg=ecc ;;
		esac
		cert="$T/$name-$kind.pem"
		read_ek_cert "$tcti" "$index" "$cert"
		check openssl verify -CAfile "$root" -untrusted "$chain" "$cert" \
		    >/dev/null
		expect_fail openssl verify -CAfile "$(fixture_var "$other" BOTID_EK_CA)" \
		    -untrusted "$(fixture_var "$other" BOTID_EK_CA_CHAIN)" "$cert"
		expect_fail openssl verify -CAfile "$root" "$cert"

		openssl x509 -in "$cert" -noout -pubkey >"$cert.pub"
		ek_public "$tcti" "$alg" "$T/$name-$kind.ek.pem"
		same_key "$cert.pub" "$T/$name-$kind.ek.pem" ||
		    fail "$name: EK certificate in $index is not for tpm2_createek -G $alg's key"
	done
	openssl x509 -in "$T/$name-p256.pem" -noout -text >"$T/$name-p256.txt"
	grep -q "NIST CURVE: P-256" "$T/$name-p256.txt" ||
	    fail "$name: the EK certificate in 0x01c0000a is not for a P-256 key"
	grep -q "Key Agreement" "$T/$name-p256.txt" ||
	    fail "$name: the P-256 EK certificate lacks keyUsage keyAgreement"
	grep -q "CA:FALSE" "$T/$name-p256.txt" ||
	    fail "$name: the P-256 EK certificate lacks CA:FALSE"

	# swtpm_setup's P-384 EK certificate is there too, from the same CA.
	read_ek_cert "$tcti" 0x01c00016 "$T/$name-p384.pem"
	check openssl verify -CAfile "$root" -untrusted "$chain" \
	    "$T/$name-p384.pem" >/dev/null
}

# Two fixtures started at the same moment.
start_swtpm a b
[ "$(fixture_var a BOTID_TCTI)" != "$(fixture_var b BOTID_TCTI)" ] ||
    fail "both fixtures use $(fixture_var a BOTID_TCTI)"
expect_fail cmp "$(fixture_var a BOTID_EK_CA)" "$(fixture_var b BOTID_EK_CA)"
check_fixture a b
check_fixture b a

# The command line interface: exactly four assignments on stdout, the same
# as DIR/env, an absolute DIR; and a restart keeps the EKs and certificates.
pid_a=$(fixture_var a SWTPM_PID)
check "$BOTID_FIXTURES/swtpm-stop" "$T/a"
! running "$pid_a" || fail "swtpm $pid_a still runs after swtpm-stop"
expect_fail tpm2_getcap -T "$(fixture_var a BOTID_TCTI)" properties-fixed
out=$("$BOTID_FIXTURES/swtpm-stop" "$T/a" 2>&1) || fail "a second swtpm-stop failed"
[ -z "$out" ] || fail "a second swtpm-stop said: $out"
out=$(cd "$T" && "$BOTID_FIXTURES/swtpm-start" a) || fail "swtpm-start a (restart) failed"
[ "$out" = "$(cat "$T/a/env")" ] || fail "swtpm-start's stdout differs from DIR/env"
[ "$(printf '%s\n' "$out" | cut -d= -f1 | tr '\n' ' ')" = \
    "BOTID_TCTI BOTID_EK_CA BOTID_EK_CA_CHAIN SWTPM_PID " ] ||
    fail "swtpm-start printed: $out"
unset BOTID_TCTI BOTID_EK_CA
eval "$out"
[[ $BOTID_TCTI =~ ^swtpm:host=127\.0\.0\.1,port=[0-9]+$ ]] ||
    fail "BOTID_TCTI=$BOTID_TCTI"
[[ $BOTID_EK_CA == /* ]] || fail "BOTID_EK_CA is not absolute: $BOTID_EK_CA"
running "$SWTPM_PID" || fail "SWTPM_PID $SWTPM_PID is not running"
for kind in rsa p256; do
	case $kind in
	rsa) index=0x01c00002 ;;
	p256) index=0x01c0000a ;;
	esac
	read_ek_cert "$BOTID_TCTI" "$index" "$T/a-$kind.again.pem"
	cmp -s "$T/a-$kind.pem.der" "$T/a-$kind.again.pem.der" ||
	    fail "the EK certificate in $index changed across a restart"
done
check_fixture a b
expect_fail "$BOTID_FIXTURES/swtpm-start" "$T/a"

# Parallel restarts, again and again: ports never collide.
for round in 1 2 3 4 5; do
	stop_swtpm a
	stop_swtpm b
	start_swtpm a b
	for name in a b; do
		tpm2_getcap -T "$(fixture_var "$name" BOTID_TCTI)" properties-fixed \
		    >/dev/null 2>&1 || fail "round $round: fixture $name does not answer"
	done
	[ "$(fixture_var a BOTID_TCTI)" != "$(fixture_var b BOTID_TCTI)" ] ||
	    fail "round $round: both fixtures use $(fixture_var a BOTID_TCTI)"
done

[ "$(localca_listing)" = "$localca_before" ] ||
    fail "/var/lib/swtpm-localca changed"
echo "PASS: swtpm fixtures"
