#!/bin/bash
# The PKCS#11 backend against a SoftHSM2 token, through pkcs11-backend-probe:
# keys are made on the token sensitive and never extractable, sign what
# openssl verifies, are found again by a new process, and are refused when
# extractable, imported, ambiguous or of the wrong type; PIN files are read
# with care and the PIN never shows in any output; threads sign at once.
set -u
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_softhsm hsm botid-p11
export SOFTHSM2_CONF

PROBE=$top_builddir/tests/integration/pkcs11-backend-probe
[ -x "$PROBE" ] || fail "$PROBE is not built (make check builds it)"
M=$BOTID_PKCS11_MODULE
L=$BOTID_TOKEN_LABEL
PIN=$(cat "$BOTID_PIN_FILE")
[ -n "$PIN" ] || fail "empty PIN in $BOTID_PIN_FILE"
# Every output of every command lands in $LOG, later searched for PINs.
LOG=$T/log
mkdir -p "$LOG"
n=0

# run NAME CMD...: runs CMD with its output in $LOG/NAME.{out,err}; returns
# its status.
run() {
	local name=$1
	shift
	"$@" >"$LOG/$name.out" 2>"$LOG/$name.err"
}

# run_ok NAME CMD...: CMD must succeed.
run_ok() {
	local rc=0
	run "$@" || rc=$?
	[ "$rc" -eq 0 ] || fail "$1: exit status $rc from: ${*:2}: $(tail -n 3 "$LOG/$1.err")"
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
	"$PROBE" --module "$M" --token "$L" --pin-file "$BOTID_PIN_FILE" "$@"
}

p11tool() {
	pkcs11-tool --module "$M" --token-label "$L" --login --pin "$PIN" "$@"
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
		    -pkeyopt rsa_pss_saltlen:-1 -pkeyopt "digest:$hash"
		;;
	esac
}

# extract LABEL: tries to get the private key labelled LABEL off the token
# through the module itself (pkcs11-tool 0.23 reads no private key and
# wraps only secret keys): reading its secret value, wrapping it under a
# fresh AES key, flipping CKA_EXTRACTABLE / CKA_SENSITIVE, copying it as
# extractable. Exits 1 when any of them yields the key.
extract() {
	MODULE=$M TOKEN=$L PIN_FILE=$BOTID_PIN_FILE LABEL=$1 python3 - <<'EOF'
import ctypes, os, sys
from ctypes import c_ulong, c_void_p, c_char_p, byref, sizeof, Structure

class Attr(Structure):
    _fields_ = [("type", c_ulong), ("pValue", c_void_p),
                ("ulValueLen", c_ulong)]

class Mech(Structure):
    _fields_ = [("mechanism", c_ulong), ("pParameter", c_void_p),
                ("ulParameterLen", c_ulong)]

CKA_CLASS, CKA_TOKEN, CKA_LABEL, CKA_VALUE = 0x0, 0x1, 0x3, 0x11
CKA_KEY_TYPE, CKA_SENSITIVE, CKA_WRAP = 0x100, 0x103, 0x106
CKA_PRIVATE_EXPONENT, CKA_VALUE_LEN, CKA_EXTRACTABLE = 0x123, 0x161, 0x162
CKO_PRIVATE_KEY, CKK_RSA = 3, 0
CKM_AES_KEY_GEN, CKM_AES_KEY_WRAP_PAD = 0x1080, 0x210A
UNAVAILABLE = c_ulong(-1).value

p11 = ctypes.CDLL(os.environ["MODULE"])
def call(name, *args):
    f = getattr(p11, name)
    f.restype = c_ulong
    return f(*args)

def die(msg):
    print("extract: " + msg)
    sys.exit(2)

def attr(t, v, ctype):
    b = ctype(v)
    return Attr(t, ctypes.cast(byref(b), c_void_p), sizeof(b)), b

def tmpl(*pairs):
    arr = (Attr * len(pairs))(*[p[0] for p in pairs])
    arr.keep = [p[1] for p in pairs]
    return arr

if call("C_Initialize", None) != 0:
    die("C_Initialize failed")
n = c_ulong(0)
call("C_GetSlotList", 1, None, byref(n))
slots = (c_ulong * n.value)()
call("C_GetSlotList", 1, slots, byref(n))
slot = None
for s in slots[:n.value]:
    info = ctypes.create_string_buffer(512)
    if call("C_GetTokenInfo", c_ulong(s), info) == 0 and \
            info.raw[:32].rstrip(b" ").decode() == os.environ["TOKEN"]:
        slot = s
if slot is None:
    die("no token")
h = c_ulong(0)
if call("C_OpenSession", c_ulong(slot), c_ulong(6), None, None,
        byref(h)) != 0:
    die("C_OpenSession failed")
with open(os.environ["PIN_FILE"], "rb") as f:
    pin = f.read().rstrip(b"\n")
if call("C_Login", h, c_ulong(1), c_char_p(pin), c_ulong(len(pin))) != 0:
    die("C_Login failed")
label = os.environ["LABEL"].encode()
lbuf = ctypes.create_string_buffer(label, len(label))
t = tmpl(attr(CKA_CLASS, CKO_PRIVATE_KEY, c_ulong),
         (Attr(CKA_LABEL, ctypes.cast(lbuf, c_void_p), len(label)), lbuf))
objs, cnt = (c_ulong * 4)(), c_ulong(0)
call("C_FindObjectsInit", h, t, c_ulong(2))
call("C_FindObjects", h, objs, c_ulong(4), byref(cnt))
call("C_FindObjectsFinal", h)
if cnt.value != 1:
    die("%d private keys labelled %s" % (cnt.value, label.decode()))
key = c_ulong(objs[0])
got = []

kt = c_ulong(UNAVAILABLE)
a = Attr(CKA_KEY_TYPE, ctypes.cast(byref(kt), c_void_p), sizeof(kt))
call("C_GetAttributeValue", h, key, byref(a), c_ulong(1))
secret = CKA_PRIVATE_EXPONENT if kt.value == CKK_RSA else CKA_VALUE
a = Attr(secret, None, 0)
rv = call("C_GetAttributeValue", h, key, byref(a), c_ulong(1))
print("read secret attribute 0x%x: rv=0x%x" % (secret, rv))
if rv == 0 and a.ulValueLen not in (0, UNAVAILABLE):
    got.append("C_GetAttributeValue")

def wrap(k, what):
    m = Mech(CKM_AES_KEY_GEN, None, 0)
    wk = c_ulong(0)
    t = tmpl(attr(CKA_VALUE_LEN, 32, c_ulong),
             attr(CKA_WRAP, 1, ctypes.c_ubyte),
             attr(CKA_TOKEN, 0, ctypes.c_ubyte))
    if call("C_GenerateKey", h, byref(m), t, c_ulong(3), byref(wk)) != 0:
        die("C_GenerateKey (AES) failed")
    m = Mech(CKM_AES_KEY_WRAP_PAD, None, 0)
    out, ln = ctypes.create_string_buffer(8192), c_ulong(8192)
    rv = call("C_WrapKey", h, byref(m), wk, k, out, byref(ln))
    print("%s: rv=0x%x" % (what, rv))
    if rv == 0 and ln.value > 0:
        got.append(what)

wrap(key, "C_WrapKey")
flipped = False
for t_, v, name in ((CKA_EXTRACTABLE, 1, "CKA_EXTRACTABLE=true"),
                    (CKA_SENSITIVE, 0, "CKA_SENSITIVE=false")):
    rv = call("C_SetAttributeValue", h, key,
              tmpl(attr(t_, v, ctypes.c_ubyte)), c_ulong(1))
    print("set %s: rv=0x%x" % (name, rv))
    flipped = flipped or rv == 0
if flipped:
    wrap(key, "C_WrapKey after C_SetAttributeValue")
copy = c_ulong(0)
t = tmpl(attr(CKA_EXTRACTABLE, 1, ctypes.c_ubyte),
         attr(CKA_TOKEN, 0, ctypes.c_ubyte))
rv = call("C_CopyObject", h, key, t, c_ulong(2), byref(copy))
print("copy as extractable: rv=0x%x" % rv)
if rv == 0:
    wrap(copy, "C_WrapKey of an extractable copy")
call("C_Logout", h)
call("C_Finalize", None)
if got:
    print("EXTRACTED via " + ", ".join(got))
    sys.exit(1)
print("not extractable")
EOF
}

printf 'botid pkcs11 backend test data\n' >"$T/data"
printf 'botid pkcs11 backend test data, changed\n' >"$T/data2"
for h in sha256 sha384 sha512; do
	openssl dgst "-$h" -binary "$T/data" >"$T/d.$h"
	openssl dgst "-$h" -binary "$T/data2" >"$T/d2.$h"
done

# ---- 1. every key type: create, public key, sign, verify, tamper
for t in ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072; do
	bot=k-$t
	run_ok "create-$t" probe --type "$t" --bot "$bot" pubkey "$T/$t.der"
	grep -q "generated" "$LOG/create-$t.err" ||
	    fail "create-$t: no key generated: $(cat "$LOG/create-$t.err")"
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
	n=$((n + 1))
done
echo "ok: $n key types created, signed, verified by openssl"

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

# ---- 2. the token's own view: sensitive, never extractable, sign only
run_ok list-objects p11tool -O
for t in ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072; do
	# label|usage|access of the private key object labelled botid:k-$t
	line=$(awk -v want="botid:k-$t" '
		/^Private Key Object/ { priv = 1; label = ""; next }
		/^[A-Z]/ { priv = 0 }
		priv && $1 == "label:" { label = $2 }
		priv && label == want && $1 == "Usage:" {
			sub(/^ *Usage: */, ""); usage = $0 }
		priv && label == want && $1 == "Access:" {
			sub(/^ *Access: */, ""); print usage "|" $0 }
	' "$LOG/list-objects.out")
	[ "$line" = "sign|sensitive, always sensitive, never extractable, local" ] ||
	    fail "pkcs11-tool shows botid:k-$t as '$line'"
	# pkcs11-tool 0.23 reads no private key at all (it says "sorry" and
	# exits 0), so only check it wrote nothing; extract() really tries.
	run "read-$t" p11tool --read-object --type privkey \
	    --label "botid:k-$t" --output-file "$T/read-$t"
	[ ! -s "$T/read-$t" ] || fail "pkcs11-tool read botid:k-$t"
	run_ok "extract-$t" extract "botid:k-$t"
	grep -q "^not extractable" "$LOG/extract-$t.out" ||
	    fail "extract botid:k-$t: $(cat "$LOG/extract-$t.out")"
done
echo "ok: pkcs11-tool shows the keys sensitive, never extractable; extraction fails"

# ---- 3. a new process finds the same key instead of making another
for t in ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072; do
	run_ok "reopen-$t" probe --type "$t" --bot "k-$t" pubkey "$T/$t.again.der"
	cmp -s "$T/$t.der" "$T/$t.again.der" ||
	    fail "$t: reopening gave another public key"
	grep -q "generated" "$LOG/reopen-$t.err" &&
	    fail "$t: reopening generated a new key"
done
n=$(grep -c "^Private Key Object" "$LOG/list-objects.out")
[ "$n" -eq 4 ] || fail "$n private keys on the token, not 4"
echo "ok: keys are found again, not regenerated"

# ---- 4. keys the backend must refuse
run_ok plant-extractable p11tool --keypairgen --key-type EC:prime256v1 \
    --label botid:planted --usage-sign --extractable
run_rc 1 extract-planted "" extract botid:planted
grep -q "^EXTRACTED" "$LOG/extract-planted.out" ||
    fail "extract() cannot even get an extractable key out"
run_rc 14 refuse-extractable "bot 'planted': refusing .*CKA_EXTRACTABLE is true" \
    probe --bot planted pubkey "$T/x.der"

run_ok genpkey openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$T/imported.pem"
run_ok import p11tool --write-object "$T/imported.pem" --type privkey \
    --label botid:imported --id 0102 --sensitive --usage-sign
run_rc 14 refuse-imported \
    "bot 'imported': refusing .*CKA_(NEVER_EXTRACTABLE|ALWAYS_SENSITIVE|EXTRACTABLE)" \
    probe --bot imported pubkey "$T/x.der"

for i in 1 2; do
	run_ok "plant-dup-$i" p11tool --keypairgen --key-type EC:prime256v1 \
	    --label botid:dup --usage-sign
done
run_rc 10 refuse-ambiguous "bot 'dup': several private keys" \
    probe --bot dup pubkey "$T/x.der"

run_rc 10 wrong-curve "bot 'k-ecdsa-p256': .*not on the curve of ecdsa-p384" \
    probe --type ecdsa-p384 --bot k-ecdsa-p256 pubkey "$T/x.der"
run_rc 10 wrong-size "bot 'k-rsa-2048': .*2048-bit modulus.*rsa-3072" \
    probe --type rsa-3072 --bot k-rsa-2048 pubkey "$T/x.der"
run_rc 10 wrong-kind "bot 'k-rsa-2048': .*not an EC key" \
    probe --type ecdsa-p256 --bot k-rsa-2048 pubkey "$T/x.der"
echo "ok: extractable, imported, ambiguous and mistyped keys refused"

# ---- 5. PIN files, tokens and modules that are not right
umask 077
WRONG_PIN=0badc0de0badc0de0badc0de0badc0de
printf '%s' "$WRONG_PIN" >"$T/wrong.pin"
run_rc 7 wrong-pin "login refused .*CKR_PIN_INCORRECT" \
    "$PROBE" --module "$M" --token "$L" --pin-file "$T/wrong.pin" \
    pubkey "$T/x.der"
printf '%s\n' "$PIN" >"$T/newline.pin"
run_ok newline-pin "$PROBE" --module "$M" --token "$L" \
    --pin-file "$T/newline.pin" --bot k-ecdsa-p256 pubkey "$T/x.der"
cp "$T/newline.pin" "$T/open.pin"
chmod 644 "$T/open.pin"
run_rc 10 open-pin "group or others have access .*chmod 600" \
    "$PROBE" --module "$M" --token "$L" --pin-file "$T/open.pin" \
    pubkey "$T/x.der"
: >"$T/empty.pin"
run_rc 10 empty-pin "empty" \
    "$PROBE" --module "$M" --token "$L" --pin-file "$T/empty.pin" \
    pubkey "$T/x.der"
head -c 300 /dev/zero | tr '\0' 7 >"$T/long.pin"
run_rc 4 long-pin "longer than 256 bytes" \
    "$PROBE" --module "$M" --token "$L" --pin-file "$T/long.pin" \
    pubkey "$T/x.der"
run_rc 8 missing-pin "No such file" \
    "$PROBE" --module "$M" --token "$L" --pin-file "$T/nonexistent.pin" \
    pubkey "$T/x.der"
run_rc 8 no-token "no initialised token labelled 'no-such-token'" \
    "$PROBE" --module "$M" --token no-such-token \
    --pin-file "$BOTID_PIN_FILE" pubkey "$T/x.der"
run_rc 8 no-module "No such file" \
    "$PROBE" --module "$T/no-such-module.so" --token "$L" \
    --pin-file "$BOTID_PIN_FILE" pubkey "$T/x.der"
echo "ok: bad PIN files, tokens and modules refused with a reason"

# ---- 6. threads: a shared module, then many signatures at once
# A second token in the same module: two backends in one process share
# the loaded module, and closing one leaves the other logged in.
SECOND_PIN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s' "$SECOND_PIN" >"$T/second.pin"
run_ok init-second softhsm2-util --init-token --free --label second \
    --so-pin "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" \
    --pin "$SECOND_PIN"
run_ok shared-two-tokens probe --bot shared --token2 second \
    --pin-file2 "$T/second.pin" shared
run_ok shared-one-token probe --bot shared --token2 "$L" \
    --pin-file2 "$BOTID_PIN_FILE" shared
echo "ok: two backends in one process, one module"

run_ok bench-4x2000 probe --bot k-ecdsa-p256 bench 2000 4
grep -q "signs=8000 failed=0 " "$LOG/bench-4x2000.out" ||
    fail "bench: $(cat "$LOG/bench-4x2000.out" "$LOG/bench-4x2000.err")"
# Fewer sessions than threads: the others wait their turn.
run_ok bench-1session probe --bot k-ecdsa-p256 --sessions 1 bench 500 4
grep -q "signs=2000 failed=0 " "$LOG/bench-1session.out" ||
    fail "bench: $(cat "$LOG/bench-1session.out" "$LOG/bench-1session.err")"
run_ok bench-rsa probe --type rsa-2048 --bot k-rsa-2048 --scheme pss \
    bench 100 2
grep -q "signs=200 failed=0 " "$LOG/bench-rsa.out" ||
    fail "bench: $(cat "$LOG/bench-rsa.out" "$LOG/bench-rsa.err")"
for th in 1 2 4; do
	run_ok "rate-$th" probe --bot k-ecdsa-p256 bench 5000 "$th"
	cat "$LOG/rate-$th.out"
done
cat "$LOG/bench-rsa.out"

# ---- no PIN anywhere in what any command printed
for p in "$PIN" "$WRONG_PIN" "$SECOND_PIN"; do
	if grep -rlF -- "$p" "$LOG"; then
		fail "a PIN appears in the output above"
	fi
done
echo "ok: no PIN in any output"
