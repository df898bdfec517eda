#!/bin/bash
# The CA's evidence checks against a real TPM and tpm2-tools: object names
# agree with tpm2-tools'; our MakeCredential (RSA and ECC EKs) is opened by
# tpm2_activatecredential, as tpm2_makecredential --tcti none's is; an AK
# of a second TPM cannot open a credential made for it with the first's EK;
# tpm2_certify output verifies, and a tampered attestation or signature, a
# wrong nonce, another key and an imported key are refused with a reason.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm other
PROBE="$top_builddir/tests/integration/attest-probe"
TCTI1=$(fixture_var tpm BOTID_TCTI)
TCTI2=$(fixture_var other BOTID_TCTI)
export TPM2TOOLS_TCTI="$TCTI1"
cd "$T"

flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }

# refused REASON CMD...: the probe must refuse, saying REASON.
refused() {
	local reason=$1 out
	shift
	out=$("$@" 2>&1) && fail "$* was accepted"
	case $out in *"$reason"*) ;; *) fail "$*: '$out' does not say '$reason'";; esac
}

head -c 32 /dev/urandom >secret
# A persistent parent keeps the 3 transient slots free.
check tpm2_createprimary -C o -g sha256 -G ecc -c srk.ctx
check tpm2_evictcontrol -C o -c srk.ctx 0x81000001
flush
for alg in rsa ecc; do
	flush
	check tpm2_createek -c ek.ctx -G "$alg" -u "ek-$alg.pub"
	flush
	check tpm2_create -C 0x81000001 -G ecc:ecdsa-sha256:null -u ak.pub -r ak.priv \
	    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'
	check tpm2_load -C 0x81000001 -u ak.pub -r ak.priv -c ak.ctx -n ak.name
	ours=$("$PROBE" name ak.pub)
	theirs=$(xxd -p -c 256 ak.name)
	[ "$ours" = "$theirs" ] || fail "AK name: ours $ours, tpm2-tools $theirs"

	# Ours, and tpm2-tools' reference, both open on this TPM.
	check "$PROBE" makecred "ek-$alg.pub" ak.pub secret cred.ours
	check tpm2_makecredential --tcti none -u "ek-$alg.pub" -s secret \
	    -n "$theirs" -o cred.ref
	for c in cred.ours cred.ref; do
		flush
		tpm2_startauthsession --policy-session -S session.ctx >/dev/null
		tpm2_policysecret -S session.ctx -c e >/dev/null
		check tpm2_activatecredential -c ak.ctx -C ek.ctx -i "$c" \
		    -o out -P "session:session.ctx"
		cmp -s secret out || fail "$alg: $c did not give back the secret"
	done
	tpm2_flushcontext ak.ctx >/dev/null 2>&1 || true
	tpm2_flushcontext ek.ctx >/dev/null 2>&1 || true
done

# The second TPM's AK with the first's EK: its TPM cannot open it.
flush
TPM2TOOLS_TCTI="$TCTI2" check tpm2_createprimary -C o -G ecc -c srk2.ctx
TPM2TOOLS_TCTI="$TCTI2" check tpm2_evictcontrol -C o -c srk2.ctx 0x81000001
TPM2TOOLS_TCTI="$TCTI2" tpm2_flushcontext -t
TPM2TOOLS_TCTI="$TCTI2" check tpm2_create -C 0x81000001 -G ecc:ecdsa-sha256:null -u ak2.pub \
    -r ak2.priv -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'
TPM2TOOLS_TCTI="$TCTI2" check tpm2_load -C 0x81000001 -u ak2.pub -r ak2.priv -c ak2.ctx
TPM2TOOLS_TCTI="$TCTI2" check tpm2_createek -c ek2.ctx -G rsa -u ek2.pub
check "$PROBE" makecred ek-rsa.pub ak2.pub secret cred.wrong
TPM2TOOLS_TCTI="$TCTI2" tpm2_startauthsession --policy-session -S s2.ctx >/dev/null
TPM2TOOLS_TCTI="$TCTI2" tpm2_policysecret -S s2.ctx -c e >/dev/null
TPM2TOOLS_TCTI="$TCTI2" expect_fail tpm2_activatecredential -c ak2.ctx \
    -C ek2.ctx -i cred.wrong -o out2 -P "session:s2.ctx"

# TPM2_Certify of a TPM-made key by the AK.
flush
check tpm2_load -C 0x81000001 -u ak.pub -r ak.priv -c ak.ctx
check tpm2_create -C 0x81000001 -G ecc -u key.pub -r key.priv \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'
check tpm2_load -C 0x81000001 -u key.pub -r key.priv -c key.ctx
# tpm2-tools 5.4 cannot set tpm2_certify's qualifying data: it always sends
# 00ff55aa (the agent's own certify, with the CA's nonce, is tested in
# attest-flow.sh). -o writes the TPMS_ATTEST, -s the TPMT_SIGNATURE.
nonce=00ff55aa
flush
check tpm2_certify -c key.ctx -C ak.ctx -g sha256 -o attest -s sig
check "$PROBE" certify ak.pub key.pub "$nonce" attest sig
check "$PROBE" profile ak ak.pub
check "$PROBE" profile key key.pub

other=$(head -c 32 /dev/urandom | xxd -p -c 64)
refused "nonce does not match" "$PROBE" certify ak.pub key.pub "$other" attest sig
refused "certified name" "$PROBE" certify ak.pub ak.pub "$nonce" attest sig
# flip_byte FILE OFFSET: inverts one bit there (setting a value could
# leave the byte as it was).
flip_byte() {
	local b
	b=$(xxd -s "$2" -l 1 -p "$1")
	printf "\\x$(printf %02x $((0x$b ^ 1)))" |
	    dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
cp attest attest.bad
flip_byte attest.bad 40
cmp -s attest attest.bad && fail "flip_byte changed nothing"
refused "signature does not verify" "$PROBE" certify ak.pub key.pub "$nonce" attest.bad sig
cp sig sig.bad
flip_byte sig.bad $(($(stat -c %s sig) - 5))
refused "signature does not verify" "$PROBE" certify ak.pub key.pub "$nonce" attest sig.bad

# A key made outside the TPM and imported: no fixedTPM, not TPM-generated.
openssl ecparam -name prime256v1 -genkey -noout -out soft.pem 2>/dev/null
flush
check tpm2_import -C 0x81000001 -G ecc -i soft.pem -u imported.pub -r imported.priv
refused "fixedTPM" "$PROBE" profile key imported.pub
echo "PASS: names, MakeCredential, activation and certify checks agree with the TPM"
