#!/bin/bash
# botid-agent end to end on both backends: for every key type, `botid pubkey`
# and `botid sign` give signatures that OpenSSL verifies and that fail on a
# changed message; keys are non-exportable; a restart reuses the same keys;
# a signature or DER key is never written to a terminal.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm agent-sign
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

# PyKCS11 (python3-pykcs11) is there for the python3 configure found.
p11_private() {
	"${PYTHON3:-python3}" "$top_srcdir/tests/integration/p11-private.py" "$1" \
	    "$BOTID_PKCS11_MODULE" "$BOTID_TOKEN_LABEL" "$BOTID_PIN_FILE" "$2"
}

# A key someone put on the token as extractable, under a bot's label: the
# agent must refuse to serve it rather than sign with a copyable key.
check p11_private make-extractable botid:p11-leaky

TYPES="ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072"
agent_conf_begin
for t in $TYPES; do
	agent_add_bot "tpm-$t" tpm "$t" "uid:$(id -u)"
	agent_add_bot "p11-$t" pkcs11 "$t" "uid:$(id -u)"
done
agent_add_bot p11-leaky pkcs11 ecdsa-p256 "uid:$(id -u)"
start_agent
grep -q 'p11-leaky.*extractable' "$AGENT_LOG" ||
    fail "no log line says why p11-leaky is refused: $(tail -3 "$AGENT_LOG")"
out=$(botid_cli pubkey p11-leaky 2>&1) && fail "the extractable key was served"
case $out in *denied*) ;; *) fail "p11-leaky: unexpected refusal: $out";; esac

printf 'order 42: ship 3 widgets\n' >"$T/msg"
printf 'order 42: ship 4 widgets\n' >"$T/msg2"
head -c 100000 /dev/urandom >"$T/big"
openssl dgst -sha256 -binary "$T/msg" >"$T/msg.sha256"

for b in tpm p11; do
	for t in $TYPES; do
		bot="$b-$t"
		pub="$T/$bot.pem"
		check botid_cli pubkey "$bot" --out "$pub"
		openssl pkey -pubin -in "$pub" -noout 2>/dev/null ||
		    fail "$bot: pubkey is not a valid PEM public key"

		# Data signed by the agent (SIGN_DATA), SHA-256.
		check botid_cli sign "$bot" --in "$T/msg" --out "$T/$bot.sig"
		check openssl dgst -sha256 -verify "$pub" -signature "$T/$bot.sig" "$T/msg"
		expect_fail openssl dgst -sha256 -verify "$pub" -signature "$T/$bot.sig" "$T/msg2"

		# A digest computed here (SIGN_DIGEST), checked with pkeyutl.
		check botid_cli sign "$bot" --digest --in "$T/msg.sha256" --out "$T/$bot.dsig"
		check openssl pkeyutl -verify -pubin -inkey "$pub" -pkeyopt digest:sha256 \
		    -in "$T/msg.sha256" -sigfile "$T/$bot.dsig"

		# SHA-384 and a file too big to send inline (hashed by the client).
		check botid_cli sign "$bot" --hash sha384 --in "$T/msg" --out "$T/$bot.s384"
		check openssl dgst -sha384 -verify "$pub" -signature "$T/$bot.s384" "$T/msg"
		check botid_cli sign "$bot" --hash sha512 --in "$T/big" --out "$T/$bot.big"
		check openssl dgst -sha512 -verify "$pub" -signature "$T/$bot.big" "$T/big"

		case $t in
		rsa-*)
			check botid_cli sign "$bot" --pss --in "$T/msg" --out "$T/$bot.pss"
			check openssl dgst -sha256 -sigopt rsa_padding_mode:pss \
			    -sigopt rsa_pss_saltlen:-1 -verify "$pub" \
			    -signature "$T/$bot.pss" "$T/msg"
			expect_fail openssl dgst -sha256 -sigopt rsa_padding_mode:pss \
			    -sigopt rsa_pss_saltlen:-1 -verify "$pub" \
			    -signature "$T/$bot.pss" "$T/msg2"
			# ECDSA options make no sense for RSA: refused, clearly.
			expect_fail botid_cli sign "$bot" --format raw --in "$T/msg" --out "$T/x"
			;;
		ecdsa-*)
			check botid_cli sign "$bot" --format raw --in "$T/msg" --out "$T/$bot.raw"
			want=64; [ "$t" = ecdsa-p384 ] && want=96
			[ "$(stat -c %s "$T/$bot.raw")" -eq "$want" ] ||
			    fail "$bot: raw signature is not $want bytes"
			out=$(botid_cli sign "$bot" --pss --in "$T/msg" --out "$T/x" 2>&1) &&
			    fail "$bot: PSS with an EC key was accepted"
			case $out in *"not supported"*) ;; *) fail "$bot: unclear PSS refusal: $out";; esac
			;;
		esac
	done
done

# Binary output never reaches a terminal (botid(1)): with stdout on a
# pseudo-terminal, a DER or raw signature and a DER key are refused with
# one line, status 2, and not a byte reaches the terminal; the agent is
# not asked, so no signature is made for nothing (the audit log gains no
# line); the same commands redirected to a file give what OpenSSL
# verifies.
on_tty() {
	"${PYTHON3:-python3}" - "$@" <<'PY'
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=s,
                     stderr=subprocess.PIPE)
os.close(s)
err = p.stderr.read()
rc = p.wait()
out = b""
while True:
    # Once the child is gone, the master reads what it wrote, then EIO.
    try:
        d = os.read(m, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
sys.stdout.write("%d %d %s" % (rc, len(out), err.decode(errors="replace")))
PY
}
tty_msg="botid: refusing to write binary output to a terminal; use --out FILE"
# Entries of requests (a checkpoint may come any time), as grep counts.
requests() {
	grep -c -E '"op": ?"(sign-data|sign-digest|pubkey)"' "$AUDIT_LOG"
}
audit_lines=$(wc -l <"$AUDIT_LOG")
audit_requests=$(requests)
for cmd in "sign tpm-ecdsa-p256 --in $T/msg" \
    "sign p11-ecdsa-p256 --format raw --in $T/msg --out -" \
    "pubkey tpm-ecdsa-p256 --der"; do
	# shellcheck disable=SC2086 # the words of $cmd are its arguments
	got=$(on_tty "$BOTID" --socket "$AGENT_SOCK" $cmd)
	[ "$got" = "2 0 $tty_msg" ] ||
	    fail "botid $cmd on a terminal: '$got', not '2 0 $tty_msg'"
done
[ "$(requests)" -eq "$audit_requests" ] ||
    fail "botid asked the agent before refusing the terminal:" \
	"$(tail -n +"$((audit_lines + 1))" "$AUDIT_LOG")"
botid_cli sign tpm-ecdsa-p256 --in "$T/msg" >"$T/stdout.sig" ||
    fail "botid sign to a redirected stdout failed"
check openssl dgst -sha256 -verify "$T/tpm-ecdsa-p256.pem" \
    -signature "$T/stdout.sig" "$T/msg"
botid_cli sign p11-ecdsa-p256 --format raw --in "$T/msg" --out - \
    >"$T/stdout.raw" || fail "botid sign --format raw --out - to a file failed"
[ "$(stat -c %s "$T/stdout.raw")" -eq 64 ] || fail "raw signature to stdout: not 64 bytes"
botid_cli pubkey tpm-ecdsa-p256 --der >"$T/stdout.der" || fail "pubkey --der to a file"
openssl pkey -pubin -inform DER -in "$T/stdout.der" -outform PEM |
    cmp -s - "$T/tpm-ecdsa-p256.pem" || fail "pubkey --der to a file: not the bot's key"

# botid list shows all eight bots to this caller.
[ "$(botid_cli list | wc -l)" -eq 8 ] || fail "list: expected 8 bots"
botid_cli list --json | python3 -c 'import json,sys; b=json.load(sys.stdin); assert len(b)==8, b'

# The audit log has one JSON line per operation with the caller's identity.
python3 - "$AUDIT_LOG" <<'PY' || fail "audit log check failed"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
signs = [l for l in lines if l["op"] in ("sign-data", "sign-digest") and l["result"] == "ok"]
assert len(signs) >= 8 * 5, len(signs)
for l in signs:
    assert l["uid"] >= 0 and l["pid"] > 0 and l["digest"] and l["us"] >= 0, l
assert any("sha256" in l for l in signs)
PY
[ "$(stat -c %a "$AUDIT_LOG")" = 600 ] || fail "audit log mode is not 0600"

# PKCS#11 keys: sensitive, always sensitive, never extractable; unreadable.
pin=$(cat "$BOTID_PIN_FILE")
objs=$(pkcs11-tool --module "$BOTID_PKCS11_MODULE" --token-label "$BOTID_TOKEN_LABEL" \
    --login --pin "$pin" -O --type privkey 2>/dev/null)
for t in $TYPES; do
	o=$(awk -v l="botid:p11-$t" '/Private Key Object/ { blk = "" }
	    { blk = blk "\n" $0 } $0 ~ "label: *" l "$" { f = 1 }
	    f && /Access:/ { print blk; exit }' <<<"$objs")
	[ -n "$o" ] || fail "p11-$t: no private key object on the token"
	for attr in "sensitive" "always sensitive" "never extractable"; do
		grep -q "$attr" <<<"$o" || fail "p11-$t: key is not $attr"
	done
	if grep -q ' extractable' <<<"${o//never extractable/}"; then
		fail "p11-$t: key is extractable"
	fi
	# The token refuses to hand out the private value ...
	rc=0
	p11_private read "botid:p11-$t" >/dev/null || rc=$?
	[ "$rc" -eq 2 ] || fail "p11-$t: reading the private value gave status $rc"
done
# ... which the same reader does get from the control key.
check p11_private read botid:p11-leaky

# Restart: the same keys come back, none is created again.
for b in tpm p11; do for t in $TYPES; do cp "$T/$b-$t.pem" "$T/$b-$t.pem.before"; done; done
stop_agent

# While the agent is down, the TPM blobs load in the OpenSSL tpm2 provider
# and give the public key the agent served: the blob is a real TSS2 key.
for t in $TYPES; do
	blob="$T/state/tpm/tpm-$t.tss2.pem"
	grep -q 'BEGIN TSS2 PRIVATE KEY' "$blob" || fail "$blob is not a TSS2 PRIVATE KEY"
	[ "$(stat -c %a "$blob")" = 600 ] || fail "$blob mode is not 0600"
	TPM2OPENSSL_TCTI="$BOTID_TCTI" openssl pkey -provider tpm2 -provider default \
	    -in "$blob" -pubout -out "$T/tpm-$t.provider.pem" 2>"$T/provider.err" ||
	    fail "tpm2 provider cannot load $blob: $(head -2 "$T/provider.err")"
	cmp -s "$T/tpm-$t.provider.pem" "$T/tpm-$t.pem" ||
	    fail "tpm2 provider's public key differs from the agent's for $t"
done
[ "$(stat -c %a "$T/state/tpm")" = 700 ] || fail "state/tpm mode is not 0700"

start_agent
for b in tpm p11; do
	for t in $TYPES; do
		check botid_cli pubkey "$b-$t" --out "$T/$b-$t.pem"
		cmp -s "$T/$b-$t.pem" "$T/$b-$t.pem.before" || fail "$b-$t: key changed on restart"
	done
done
stop_agent
echo "PASS: agent signs with every key type on both backends"
