#!/bin/bash
# The TPM backend against swtpm, through tpm-backend-probe: keys of every
# type sign what openssl verifies; their blobs are TSS2 PRIVATE KEY files
# that the OpenSSL tpm2 provider and tpm2-tools load under the same primary
# and show non-exportable; a new process finds the same key; 200 bots share
# three object slots; a TPM restart between two signatures is survived;
# damaged, foreign or unsafe blobs are refused and left alone.
set -u
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other
TCTI=$(fixture_var tpm BOTID_TCTI)
OTHER_TCTI=$(fixture_var other BOTID_TCTI)
PORT=${TCTI##*port=}
[[ $PORT =~ ^[0-9]+$ ]] || fail "cannot find the port in $TCTI"
export TPM2OPENSSL_TCTI=$TCTI TPM2TOOLS_TCTI=$TCTI

PROBE=$top_builddir/tests/integration/tpm-backend-probe
[ -x "$PROBE" ] || fail "$PROBE is not built (make check builds it)"
STATE=$T/state
BLOBS=$STATE/tpm
LOG=$T/log
mkdir -p "$LOG"
SECONDS=0

# run NAME CMD...: CMD with its output in $LOG/NAME.{out,err}; its status.
run() {
	local name=$1
	shift
	"$@" >"$LOG/$name.out" 2>"$LOG/$name.err"
}

# run_ok NAME CMD...: CMD must succeed.
run_ok() {
	local rc=0
	run "$@" || rc=$?
	[ "$rc" -eq 0 ] ||
	    fail "$1: exit status $rc from: ${*:2}: $(tail -n 3 "$LOG/$1.err")"
}

# run_rc STATUS NAME PATTERN CMD...: CMD must exit with STATUS (the botid
# error code negated) and, unless PATTERN is empty, say PATTERN (grep -E)
# on stderr.
run_rc() {
	local want=$1 name=$2 pattern=$3 rc=0
	shift 3
	run "$name" "$@" || rc=$?
	[ "$rc" -eq "$want" ] ||
	    fail "$name: exit status $rc, not $want, from: $*: $(tail -n 3 "$LOG/$name.err")"
	[ -z "$pattern" ] || grep -Eq -- "$pattern" "$LOG/$name.err" ||
	    fail "$name: stderr lacks /$pattern/: $(tail -n 3 "$LOG/$name.err")"
}

probe() {
	"$PROBE" --tcti "$TCTI" --state "$STATE" "$@"
}

# raw2der RAW DER: an ECDSA r || s signature as a DER ECDSA-Sig-Value.
raw2der() {
	local hex half
	hex=$(od -An -v -tx1 "$1" | tr -d ' \n')
	half=$((${#hex} / 2))
	printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' \
	    "${hex:0:half}" "${hex:half}" >"$2.cnf"
	openssl asn1parse -genconf "$2.cnf" -out "$2" -noout >/dev/null
}

# verify PEM HASH SCHEME DIGEST SIG: openssl's verdict on a signature.
verify() {
	local pem=$1 hash=$2 scheme=$3 digest=$4 sig=$5
	case $scheme in
	ecdsa)
		raw2der "$sig" "$sig.der" || fail "cannot DER-encode $sig"
		openssl pkeyutl -verify -pubin -inkey "$pem" -in "$digest" \
		    -sigfile "$sig.der"
		;;
	pkcs1)
		openssl pkeyutl -verify -pubin -inkey "$pem" -in "$digest" \
		    -sigfile "$sig" -pkeyopt "digest:$hash"
		;;
	pss)
		openssl pkeyutl -verify -pubin -inkey "$pem" -in "$digest" \
		    -sigfile "$sig" -pkeyopt rsa_padding_mode:pss \
		    -pkeyopt rsa_pss_saltlen:digest -pkeyopt "digest:$hash"
		;;
	esac
}

# wait_file FILE PID: waits for FILE while process PID lives.
wait_file() {
	local i
	for i in $(seq 1 1500); do
		[ -e "$1" ] && return 0
		if ! kill -0 "$2" 2>/dev/null; then
			[ -e "$1" ] && return 0
			fail "probe exited before writing $1: $(tail -n 3 "$LOG/restart.err")"
		fi
		sleep 0.02
	done
	fail "timed out waiting for $1"
}

# pem_to_der PEM DER / der_to_pem DER PEM: a blob's body and back.
pem_to_der() {
	sed '/^-----/d' "$1" | openssl base64 -d >"$2"
}
der_to_pem() {
	{
		echo "-----BEGIN TSS2 PRIVATE KEY-----"
		openssl base64 -in "$1"
		echo "-----END TSS2 PRIVATE KEY-----"
	} >"$2"
}

# flip FILE OFFSET: flips the low bit of one byte (negative: from the end).
flip() {
	python3 - "$1" "$2" <<'EOF' || fail "cannot flip a byte of $1"
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[int(sys.argv[2])] ^= 1
open(sys.argv[1], "wb").write(b)
EOF
}

# attributes_of TEXT: the "attributes: value:" line of tpm2-tools output.
attributes_of() {
	awk '/^attributes:/ { a = 1; next } a && $1 == "value:" { print $2; exit }' "$1"
}

printf 'botid tpm backend test data\n' >"$T/data"
printf 'botid tpm backend test data, changed\n' >"$T/data2"
for h in sha256 sha384 sha512; do
	openssl dgst "-$h" -binary "$T/data" >"$T/d.$h"
	openssl dgst "-$h" -binary "$T/data2" >"$T/d2.$h"
done
WANT_ATTRS="fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign"

# ---- 1. every key type: create, public key, sign, verify, tamper
for t in ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072; do
	bot=k-$t
	run_ok "create-$t" probe --type "$t" --bot "$bot" pubkey "$T/$t.der"
	grep -q "created a new $t key" "$LOG/create-$t.err" ||
	    fail "create-$t: no key created: $(cat "$LOG/create-$t.err")"
	[ "$(stat -c %a "$BLOBS/$bot.tss2.pem")" = 600 ] ||
	    fail "$bot.tss2.pem has mode $(stat -c %a "$BLOBS/$bot.tss2.pem")"
	run_ok "pem-$t" openssl pkey -pubin -inform DER -in "$T/$t.der" \
	    -out "$T/$t.pem"
	run_ok "text-$t" openssl pkey -pubin -in "$T/$t.pem" -noout -text
	case $t in
	ecdsa-p256) want="ASN1 OID: prime256v1" len=64 schemes="ecdsa" ;;
	ecdsa-p384) want="ASN1 OID: secp384r1" len=96 schemes="ecdsa" ;;
	rsa-2048) want="Public-Key: \(2048 bit\)" len=256 schemes="pkcs1 pss" ;;
	rsa-3072) want="Public-Key: \(3072 bit\)" len=384 schemes="pkcs1 pss" ;;
	esac
	grep -Eq "$want" "$LOG/text-$t.out" ||
	    fail "$t: public key is not /$want/: $(head -n 2 "$LOG/text-$t.out")"
	for h in sha256 sha384 sha512; do
		for s in $schemes; do
			sig=$T/sig.$t.$h.$s
			run_ok "sign-$t-$h-$s" probe --type "$t" --bot "$bot" \
			    sign --hash "$h" --scheme "$s" --in "$T/d.$h" \
			    --out "$sig"
			[ "$(stat -c %s "$sig")" -eq "$len" ] ||
			    fail "$t $h $s: signature is $(stat -c %s "$sig") bytes, not $len"
			run_ok "verify-$t-$h-$s" verify "$T/$t.pem" "$h" "$s" \
			    "$T/d.$h" "$sig"
			run "tamper-$t-$h-$s" verify "$T/$t.pem" "$h" "$s" \
			    "$T/d2.$h" "$sig" &&
			    fail "$t $h $s: signature verifies a changed digest"
		done
	done
done
[ "$(stat -c %a "$BLOBS")" = 700 ] || fail "$BLOBS has mode $(stat -c %a "$BLOBS")"
echo "ok: 4 key types created, signed with 3 hashes, verified by openssl ($SECONDS s)"

# Parameters the key cannot take, and digests of the wrong size.
run_rc 6 pss-on-ec "" probe --bot k-ecdsa-p256 sign --hash sha256 \
    --scheme pss --in "$T/d.sha256" --out "$T/x"
run_rc 6 pkcs1-on-ec "" probe --bot k-ecdsa-p256 sign --hash sha256 \
    --scheme pkcs1 --in "$T/d.sha256" --out "$T/x"
run_rc 6 ecdsa-on-rsa "" probe --type rsa-2048 --bot k-rsa-2048 sign \
    --hash sha256 --scheme ecdsa --in "$T/d.sha256" --out "$T/x"
run_rc 6 auto-scheme "" probe --bot k-ecdsa-p256 sign --hash sha256 \
    --scheme auto --in "$T/d.sha256" --out "$T/x"
run_rc 5 short-digest "" probe --bot k-ecdsa-p256 sign --hash sha384 \
    --in "$T/d.sha256" --out "$T/x"
run_rc 5 long-digest "" probe --type rsa-2048 --bot k-rsa-2048 sign \
    --hash sha256 --scheme pkcs1 --in "$T/d.sha512" --out "$T/x"
echo "ok: wrong schemes and digest sizes refused"

# ---- 2. other tools read the blobs: the format and the primary are right
for t in ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072; do
	blob=$BLOBS/k-$t.tss2.pem
	# The tpm2 provider recreates its primary for parent 0x40000001 and
	# loads the key there: only the same primary makes this work.
	run_ok "provider-pub-$t" openssl pkey -provider tpm2 -provider default \
	    -in "$blob" -pubout -out "$T/$t.provider.pem"
	cmp -s "$T/$t.pem" "$T/$t.provider.pem" ||
	    fail "$t: the tpm2 provider sees another public key in $blob"
	run_ok "print-$t" tpm2_print -t TSSPRIVKEY_OBJ "$blob"
	a=$(attributes_of "$LOG/print-$t.out")
	[ "$a" = "$WANT_ATTRS" ] || fail "$t: tpm2_print shows attributes '$a'"
	# tpm2_load makes the parent from the blob itself (tpm2-tools leave
	# objects loaded on a TPM without resource manager: flush them), then
	# the TPM's own view of the loaded key.
	run_ok "tools-load-$t" tpm2_load -r "$blob" -c "$T/$t.ctx"
	run_ok "tools-readpublic-$t" tpm2_readpublic -c "$T/$t.ctx"
	run_ok "tools-flush-$t" tpm2_flushcontext -t
	a=$(attributes_of "$LOG/tools-readpublic-$t.out")
	[ "$a" = "$WANT_ATTRS" ] ||
	    fail "$t: tpm2_readpublic shows attributes '$a'"
done
# The provider signs with our key; our public key verifies it.
run_ok provider-sign-ec openssl pkeyutl -provider tpm2 -provider default \
    -sign -inkey "$BLOBS/k-ecdsa-p256.tss2.pem" -in "$T/d.sha256" \
    -out "$T/provider.ec.sig"
run_ok provider-verify-ec openssl pkeyutl -verify -pubin \
    -inkey "$T/ecdsa-p256.pem" -in "$T/d.sha256" -sigfile "$T/provider.ec.sig"
run_ok provider-sign-rsa openssl pkeyutl -provider tpm2 -provider default \
    -sign -inkey "$BLOBS/k-rsa-2048.tss2.pem" -in "$T/d.sha256" \
    -pkeyopt digest:sha256 -out "$T/provider.rsa.sig"
run_ok provider-verify-rsa verify "$T/rsa-2048.pem" sha256 pkcs1 \
    "$T/d.sha256" "$T/provider.rsa.sig"
echo "ok: tpm2 provider and tpm2-tools load the blobs: $WANT_ATTRS ($SECONDS s)"

# ---- 3. a new process finds the same key instead of making another
for t in ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072; do
	cp "$BLOBS/k-$t.tss2.pem" "$T/k-$t.saved"
	run_ok "reopen-$t" probe --type "$t" --bot "k-$t" pubkey "$T/$t.again.der"
	cmp -s "$T/$t.der" "$T/$t.again.der" ||
	    fail "$t: reopening gave another public key"
	grep -q "created" "$LOG/reopen-$t.err" &&
	    fail "$t: reopening created a new key"
	cmp -s "$BLOBS/k-$t.tss2.pem" "$T/k-$t.saved" ||
	    fail "$t: reopening rewrote the blob"
done
echo "ok: keys are found again, not recreated"

# ---- 4. 200 bots on three object slots, signing in random order
mkdir -p "$T/many"
run_ok many probe many 200 "$T/many" 3
cat "$LOG/many.out"
grep -q "^bots=200 signs=600 verified=600 failed=0 " "$LOG/many.out" ||
    fail "many: $(cat "$LOG/many.out") $(tail -n 3 "$LOG/many.err")"
n=$(grep -c "created a new ecdsa-p256 key" "$LOG/many.err")
[ "$n" -eq 200 ] || fail "many: $n keys created, not 200"
for i in 0000 0042 0099 0150 0199; do
	b=$T/many/many-$i
	run_ok "many-pem-$i" openssl pkey -pubin -inform DER -in "$b.der" \
	    -out "$b.pem"
	run_ok "many-verify-$i" verify "$b.pem" sha256 ecdsa "$b.dgst" "$b.sig"
done
# Again in a new process: all 200 found, none created.
run_ok many-again probe --loaded 1 many 200 "$T/many" 1
grep -q "^bots=200 signs=200 verified=200 failed=0 " "$LOG/many-again.out" ||
    fail "many-again: $(cat "$LOG/many-again.out")"
grep -q "created" "$LOG/many-again.err" && fail "many-again created keys"
# Another client holds a slot (a bare TPM has no resource manager): the
# backend meets TPM2_RC_OBJECT_MEMORY, evicts and goes on.
run_ok squat tpm2_createprimary -C o -G ecc -c "$T/squat.ctx"
run_ok many-squat probe many 20 "$T/many" 2
run_ok unsquat tpm2_flushcontext -t
grep -q "^bots=20 signs=40 verified=40 failed=0 " "$LOG/many-squat.out" ||
    fail "many-squat: $(cat "$LOG/many-squat.out")"
run_ok bench-ec probe --bot k-ecdsa-p256 bench 3000
run_ok bench-rsa probe --type rsa-2048 --bot k-rsa-2048 bench 200
echo "ok: 200 bots sign in random order, all verified ($SECONDS s)"
echo "ecdsa-p256 $(cat "$LOG/bench-ec.out")"
echo "rsa-2048 $(cat "$LOG/bench-rsa.out")"

# ---- 5. the TPM restarts between signatures
# A real TPM keeps its TCTI, so swtpm comes back on the same port and state.
start_by_hand() { swtpm_by_hand tpm "$1"; }
stop_by_hand() { swtpm_by_hand_stop; }

S=$T/restart.sig
probe --bot k-ecdsa-p256 --verbose sign --hash sha256 --scheme ecdsa \
    --in "$T/d.sha256" --out "$S" --repeat 5 --wait "$T/go" \
    >"$LOG/restart.out" 2>"$LOG/restart.err" &
probe_pid=$!
wait_file "$S.1" "$probe_pid"
stop_swtpm tpm
start_by_hand not-need-init,startup-clear	# a reboot: objects gone
touch "$T/go.1"
wait_file "$S.2" "$probe_pid"
stop_by_hand
start_by_hand not-need-init			# and nobody sent Startup
touch "$T/go.2"
wait_file "$S.3" "$probe_pid"
stop_by_hand					# no TPM at all
touch "$T/go.3"
wait_file "$S.4.err" "$probe_pid"
start_by_hand not-need-init,startup-clear	# back again
touch "$T/go.4"
rc=0
wait "$probe_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "restart: exit status $rc: $(tail -n 3 "$LOG/restart.err")"
for i in 1 2 3 5; do
	run_ok "restart-verify-$i" verify "$T/ecdsa-p256.pem" sha256 ecdsa \
	    "$T/d.sha256" "$S.$i"
done
grep -q "^-20 " "$S.4.err" || fail "restart: without a TPM: $(cat "$S.4.err")"
n=$(grep -c "reconnecting" "$LOG/restart.err")
[ "$n" -ge 2 ] || fail "restart: $n reconnections, not at least 2"
echo "ok: signatures survive TPM restarts; no TPM gives 'unavailable' ($SECONDS s)"

# ---- 6. blobs that must be refused, and left as they are
good=$BLOBS/k-ecdsa-p256.tss2.pem
pem_to_der "$good" "$T/good.der" || fail "cannot decode $good"
# plant NAME SOURCE: installs SOURCE as the blob of bot NAME, keeping a copy.
plant() {
	cp "$2" "$BLOBS/$1.tss2.pem"
	chmod 600 "$BLOBS/$1.tss2.pem"
	cp "$2" "$T/$1.planted"
}
# untouched NAME: the refused blob is still what was planted.
untouched() {
	cmp -s "$BLOBS/$1.tss2.pem" "$T/$1.planted" ||
	    fail "$1: the refused blob was changed"
}

head -c 200 "$good" >"$T/trunc"
plant trunc "$T/trunc"
run_rc 5 trunc "bot 'trunc': .*refusing the key blob" probe --bot trunc pubkey "$T/x"
untouched trunc

head -c 300 /dev/urandom >"$T/garbage"
plant garbage "$T/garbage"
run_rc 5 garbage "refusing the key blob" probe --bot garbage pubkey "$T/x"
untouched garbage

: >"$T/empty"
plant empty "$T/empty"
run_rc 5 empty "refusing" probe --bot empty pubkey "$T/x"
untouched empty

sed 's/TSS2 PRIVATE KEY/PRIVATE KEY/' "$good" >"$T/label"
plant label "$T/label"
run_rc 5 label "not a TSS2 PRIVATE KEY PEM" probe --bot label pubkey "$T/x"

{ cat "$good"; echo "trailing junk"; } >"$T/trailing"
plant trailing "$T/trailing"
run_rc 5 trailing "data after the PEM block" probe --bot trailing pubkey "$T/x"

head -c $(($(stat -c %s "$T/good.der") - 3)) "$T/good.der" >"$T/short.der"
der_to_pem "$T/short.der" "$T/short"
plant short "$T/short"
run_rc 5 short-der "malformed TPMKey" probe --bot short pubkey "$T/x"

{ cat "$good"; head -c 20000 /dev/zero | tr '\0' '\n'; } >"$T/huge"
plant huge "$T/huge"
run_rc 5 huge "the limit" probe --bot huge pubkey "$T/x"

# The private part is bound to the public one: the TPM refuses.
cp "$T/good.der" "$T/flip.der"
flip "$T/flip.der" -5
der_to_pem "$T/flip.der" "$T/flip"
plant flip "$T/flip"
run_rc 12 flip "bot 'flip': the TPM refuses .*integrity" probe --bot flip pubkey "$T/x"
untouched flip

# A key of another TPM does not load here.
run_ok other-create "$PROBE" --tcti "$OTHER_TCTI" --state "$T/other-state" \
    --bot foreign pubkey "$T/x"
plant foreign "$T/other-state/tpm/foreign.tss2.pem"
run_rc 12 foreign "bot 'foreign': the TPM refuses .*integrity" probe --bot foreign pubkey "$T/x"
untouched foreign

# A key the TPM would load, but that may exist outside it: no fixedTPM.
run_ok exp-primary tpm2_createprimary -C o -g sha256 -G ecc256:aes128cfb \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda' \
    -c "$T/prim.ctx"
run_ok exp-create tpm2_create -C "$T/prim.ctx" -G ecc256 \
    -a 'sign|userwithauth|sensitivedataorigin' -u "$T/exp.pub" -r "$T/exp.priv"
# tpm2-tools 5.4 writes emptyAuth TRUE with -p (inverted); take either.
for p in -p ""; do
	run_ok exp-encode tpm2_encodeobject -C "$T/prim.ctx" -u "$T/exp.pub" \
	    -r "$T/exp.priv" $p -o "$T/exportable"
	openssl asn1parse -in "$T/exportable" | grep -Eq "BOOLEAN +:0$" || break
done
run_ok exp-flush tpm2_flushcontext -t
plant exportable "$T/exportable"
run_rc 14 exportable "bot 'exportable': refusing the key: it lacks fixedTPM" \
    probe --bot exportable pubkey "$T/x"
untouched exportable

# The tpm2 provider's own keys may also decrypt: not ours to use.
run_ok genpkey openssl genpkey -provider tpm2 -algorithm EC \
    -pkeyopt group:P-256 -out "$T/provider-key"
plant provider-key "$T/provider-key"
run_rc 10 provider-key "bot 'provider-key': refusing the key: attributes" \
    probe --bot provider-key pubkey "$T/x"
untouched provider-key

# A key of another type than configured.
plant wrongtype "$good"
run_rc 10 wrong-curve "bot 'wrongtype': .*not on the curve of ecdsa-p384" \
    probe --type ecdsa-p384 --bot wrongtype pubkey "$T/x"
run_rc 10 wrong-kind "bot 'wrongtype': .*not an RSA key" \
    probe --type rsa-2048 --bot wrongtype pubkey "$T/x"
untouched wrongtype

# Files others could have replaced.
plant writable "$good"
chmod 664 "$BLOBS/writable.tss2.pem"
run_rc 10 writable "refusing: not a regular file owned" \
    probe --bot writable pubkey "$T/x"
ln -s "$good" "$BLOBS/symlink.tss2.pem"
run_rc 9 symlink "symlink.tss2.pem" probe --bot symlink pubkey "$T/x"
run_rc 5 bad-name "invalid bot name" probe --bot .hidden pubkey "$T/x"
echo "ok: damaged, foreign, exportable, mistyped and unsafe blobs refused ($SECONDS s)"
