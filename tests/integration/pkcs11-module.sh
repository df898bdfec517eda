#!/bin/bash
# botid-pkcs11.so as existing tools use it, with bots on swtpm and SoftHSM2:
# pkcs11-tool lists exactly the caller's bots (none for another uid) and
# signs with every mechanism family, OpenSSL verifies each signature with
# the key from `botid pubkey`; ssh-keygen -D prints the same keys and
# ssh-agent (ssh-add -s) signs through the module, checked by ssh-keygen -Y
# verify; libp11's OpenSSL engine signs and, with the certificates botid-ca
# issued, completes a TLS 1.3 client-authenticated handshake with s_server
# checking the CA bundle and seeing the bot's SPIFFE ID (and refusing a
# foreign CA, a revoked and an expired certificate); curl makes an HTTPS
# request with a bot key through the module; `ssh -I` logs in to an sshd
# with one; p11tool lists the objects; the module's refusals are the
# documented CKR_ codes.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm pkcs11-module
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

MODULE="$top_builddir/pkcs11/.libs/botid-pkcs11.so"
[ -f "$MODULE" ] || fail "no $MODULE: build first"
export BOTID_SOCKET="$AGENT_SOCK"
# Other uids reach the socket through its group, as in agent-policy.sh.
chmod 0755 "$T"
me=$(id -u)
agent_conf_begin "socket_group = nogroup" "socket_mode = 0660"
agent_add_bot tpm-ec tpm ecdsa-p256 "uid:$me"
agent_add_bot tpm-rsa tpm rsa-2048 "uid:$me"
agent_add_bot p11-ec pkcs11 ecdsa-p384 "uid:$me"
agent_add_bot p11-rsa pkcs11 rsa-2048 "uid:$me"
agent_add_bot nobodys tpm ecdsa-p256 "uid:nobody"
BOTS="tpm-ec tpm-rsa p11-ec p11-rsa"

# The host is enrolled with botid-ca, so every bot gets a certificate.
start_ca ca "$BOTID_EK_CA_CHAIN"
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h \
    --bots tpm-ec,tpm-rsa,p11-ec,p11-rsa,nobodys >"$T/join.token"
check "$top_builddir/tools/botid-provision" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/join.token" >/dev/null
start_agent
for b in $BOTS; do
	for _ in $(seq 1 150); do
		botid_cli cert "$b" --out "$T/$b.chain" 2>/dev/null && break
		sleep 0.2
	done
	[ -s "$T/$b.chain" ] || fail "no certificate for $b: $(tail -3 "$AGENT_LOG")"
	openssl x509 -in "$T/$b.chain" -outform DER -out "$T/$b.leaf.der"
done

# In a sanitizer build the module is ASan-instrumented, and the tools below
# are not: they can load it only with the ASan runtime preloaded. The agent,
# started above, keeps its own leak checking; the tools' leaks are theirs.
if [ -n "${BOTID_SANITIZER_PRELOAD:-}" ]; then
	export LD_PRELOAD="$BOTID_SANITIZER_PRELOAD"
	export ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0"
fi

as_user() {	# as_user UID COMMAND...: run with that uid and group nogroup
	local uid=$1
	shift
	setpriv --reuid="$uid" --regid=nogroup --clear-groups "$@"
}
p11() { pkcs11-tool --module "$MODULE" "$@"; }
# Labels of the private key objects pkcs11-tool -O lists, sorted.
privkey_labels() {
	awk '/^Private Key Object/ { p = 1; next } /^[^ ]/ { p = 0 }
	    p && $1 == "label:" { print $2 }' | sort
}

# ---- listing: exactly the caller's bots, for each caller
for b in $BOTS; do check botid_cli pubkey "$b" --out "$T/$b.pem"; done
want=$(botid_cli list | cut -f1 | sort)
[ "$want" = "$(tr ' ' '\n' <<<"$BOTS" | sort)" ] || fail "botid list: $want"
p11 -O >"$T/objects" 2>&1 || fail "pkcs11-tool -O failed: $(head -3 "$T/objects")"
got=$(privkey_labels <"$T/objects")
[ "$got" = "$want" ] || fail "pkcs11-tool -O shows '$got', want '$want'"
[ "$(grep -c '^Public Key Object' "$T/objects")" -eq 4 ] ||
    fail "pkcs11-tool -O: not one public key per bot"
[ "$(grep -c '^Certificate Object' "$T/objects")" -eq 4 ] ||
    fail "pkcs11-tool -O: not one certificate per bot"
acc=$(awk '/^Private Key Object/ { p = 1; next } /^[^ ]/ { p = 0 }
    p && /Access:/' "$T/objects")
[ "$(grep -c 'sensitive, always sensitive, never extractable' <<<"$acc")" -eq 4 ] ||
    fail "private keys are not all sensitive and never extractable: $acc"
! sed 's/never extractable//g' <<<"$acc" | grep -q extractable ||
    fail "a private key is shown extractable: $acc"
out=$(as_user 1 pkcs11-tool --module "$MODULE" -O 2>&1) || fail "pkcs11-tool as uid 1: $out"
! grep -q 'Object' <<<"$out" || fail "uid 1 sees objects: $out"
out=$(as_user nobody pkcs11-tool --module "$MODULE" -O 2>&1 | privkey_labels)
[ "$out" = nobodys ] || fail "nobody sees '$out', want nobodys"
# Registered with p11-kit (the shipped doc/p11-kit/botid.module, pointing
# at this build), the bots appear through p11-kit-proxy.so. p11-kit reads
# per-user module configs for users other than root only, so this runs as
# nobody, who sees nobody's bot.
P11KIT_PROXY=$(pkg-config --variable=proxy_module p11-kit-1)
[ -f "$P11KIT_PROXY" ] || fail "no p11-kit-proxy.so"
mkdir -p "$T/p11home/.config/pkcs11/modules"
sed "s|^module: .*|module: $(readlink -f "$MODULE")|" \
    "$top_srcdir/doc/p11-kit/botid.module" \
    >"$T/p11home/.config/pkcs11/modules/botid.module"
chmod -R a+rX "$T/p11home"
out=$(as_user nobody env HOME="$T/p11home" p11-kit list-modules 2>&1) ||
    fail "p11-kit list-modules: $out"
grep -A3 '^botid: ' <<<"$out" | grep -q 'library-description: botid agent PKCS#11 module' ||
    fail "p11-kit does not list the botid module: $out"
out=$(as_user nobody env HOME="$T/p11home" pkcs11-tool --module "$P11KIT_PROXY" \
    --token-label botid -O 2>&1 | privkey_labels)
[ "$out" = nobodys ] || fail "through p11-kit-proxy nobody sees '$out', want nobodys"
# An unreachable agent leaves the token empty rather than failing.
out=$(BOTID_SOCKET="$T/no-such.sock" pkcs11-tool --module "$MODULE" -O 2>&1) ||
    fail "pkcs11-tool with no agent: $out"
! grep -q 'Object' <<<"$out" || fail "objects without an agent: $out"
p11 -L | grep -q 'token label *: botid' || fail "no token labelled botid"
p11 -M >"$T/mechs" || fail "pkcs11-tool -M failed"
for m in ECDSA ECDSA-SHA256 RSA-PKCS SHA256-RSA-PKCS RSA-PKCS-PSS SHA384-RSA-PKCS-PSS; do
	grep -q "^  $m," "$T/mechs" || fail "mechanism $m not listed"
done

# ---- signing with pkcs11-tool, checked by OpenSSL
# pkcs11-tool picks the key to sign with by CKA_ID, not by label.
key_id() {
	awk -v b="$1" '/^Private Key Object/ { p = 1; next } /^[^ ]/ { p = 0 }
	    p && $1 == "label:" { l = $2 } p && $1 == "ID:" && l == b { print $2; exit }' \
	    "$T/objects"
}
printf 'order 42: ship 3 widgets\n' >"$T/msg"
printf 'order 42: ship 4 widgets\n' >"$T/msg2"
for h in sha256 sha384 sha512; do
	openssl dgst "-$h" -binary "$T/msg" >"$T/msg.$h"
done
# DigestInfo for SHA-256 (RFC 8017 9.2 note 1) followed by the digest.
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
  cat "$T/msg.sha256"; } >"$T/msg.di256"

# Each certificate object holds the leaf the agent got from botid-ca.
for b in $BOTS; do
	check p11 --read-object --type cert --id "$(key_id "$b")" -o "$T/$b.p11cert"
	cmp -s "$T/$b.p11cert" "$T/$b.leaf.der" ||
	    fail "$b: the certificate object is not the bot's certificate"
done

for b in tpm-ec p11-ec; do
	pub="$T/$b.pem"
	h=sha256; [ "$b" = p11-ec ] && h=sha384
	check p11 --sign -m ECDSA --id "$(key_id "$b")" -f openssl -i "$T/msg.$h" -o "$T/$b.sig"
	check openssl pkeyutl -verify -pubin -inkey "$pub" -in "$T/msg.$h" -sigfile "$T/$b.sig"
	expect_fail openssl pkeyutl -verify -pubin -inkey "$pub" -in "$T/msg.sha512" -sigfile "$T/$b.sig"
	for h in sha256 sha384 sha512; do
		H=$(tr a-z A-Z <<<"$h")
		check p11 --sign -m "ECDSA-$H" --id "$(key_id "$b")" -f openssl -i "$T/msg" -o "$T/$b.$h"
		check openssl dgst "-$h" -verify "$pub" -signature "$T/$b.$h" "$T/msg"
		expect_fail openssl dgst "-$h" -verify "$pub" -signature "$T/$b.$h" "$T/msg2"
	done
	# CKM_ECDSA takes a SHA-2 digest only: 20 bytes are out of range.
	head -c 20 "$T/msg.sha256" >"$T/short"
	expect_fail p11 --sign -m ECDSA --id "$(key_id "$b")" -i "$T/short" -o "$T/x"
	# An RSA mechanism on an EC key is refused.
	expect_fail p11 --sign -m SHA256-RSA-PKCS --id "$(key_id "$b")" -i "$T/msg" -o "$T/x"
done

for b in tpm-rsa p11-rsa; do
	pub="$T/$b.pem"
	check p11 --sign -m RSA-PKCS --id "$(key_id "$b")" -i "$T/msg.di256" -o "$T/$b.sig"
	check openssl pkeyutl -verify -pubin -inkey "$pub" -pkeyopt digest:sha256 \
	    -in "$T/msg.sha256" -sigfile "$T/$b.sig"
	# CKM_RSA_PKCS without a DigestInfo (CKR_DATA_INVALID, checked below).
	expect_fail p11 --sign -m RSA-PKCS --id "$(key_id "$b")" -i "$T/msg.sha256" -o "$T/x"
	for h in sha256 sha384 sha512; do
		H=$(tr a-z A-Z <<<"$h")
		check p11 --sign -m "$H-RSA-PKCS" --id "$(key_id "$b")" -i "$T/msg" -o "$T/$b.$h"
		check openssl dgst "-$h" -verify "$pub" -signature "$T/$b.$h" "$T/msg"
		expect_fail openssl dgst "-$h" -verify "$pub" -signature "$T/$b.$h" "$T/msg2"
		check p11 --sign -m "$H-RSA-PKCS-PSS" --id "$(key_id "$b")" \
		    -i "$T/msg" -o "$T/$b.pss.$h"
		check openssl dgst "-$h" -sigopt rsa_padding_mode:pss \
		    -sigopt rsa_pss_saltlen:digest -verify "$pub" \
		    -signature "$T/$b.pss.$h" "$T/msg"
	done
	check p11 --sign -m RSA-PKCS-PSS --id "$(key_id "$b")" --hash-algorithm SHA384 \
	    --mgf MGF1-SHA384 -i "$T/msg.sha384" -o "$T/$b.rawpss"
	check openssl pkeyutl -verify -pubin -inkey "$pub" -pkeyopt digest:sha384 \
	    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest \
	    -in "$T/msg.sha384" -sigfile "$T/$b.rawpss"
	# The agent's salt is the hash length; another is refused up front.
	out=$(p11 --sign -m SHA256-RSA-PKCS-PSS --id "$(key_id "$b")" \
	    --salt-len 20 -i "$T/msg" -o "$T/x" 2>&1) &&
	    fail "$b: PSS with a 20-byte salt was accepted"
	grep -q CKR_MECHANISM_PARAM_INVALID <<<"$out" || fail "$b: salt refused with: $out"
	expect_fail p11 --sign -m ECDSA --id "$(key_id "$b")" -i "$T/msg.sha256" -o "$T/x"
done

# ---- OpenSSH: the same public keys
ssh-keygen -D "$MODULE" >"$T/ssh.pub" 2>"$T/ssh.err" ||
    fail "ssh-keygen -D failed: $(head -3 "$T/ssh.err")"
[ "$(wc -l <"$T/ssh.pub")" -eq 4 ] || fail "ssh-keygen -D printed: $(cat "$T/ssh.pub")"
for b in $BOTS; do
	k=$(ssh-keygen -i -m PKCS8 -f "$T/$b.pem" | cut -d' ' -f1,2)
	grep -qF "$k" "$T/ssh.pub" || fail "ssh-keygen -D lacks $b's key $k"
done

# ---- OpenSSH: ssh-agent loads the module (as ssh -I does, through
# ssh-pkcs11-helper) and signs; ssh-keygen verifies with the bots' keys.
eval "$(ssh-agent -s -a "$T/ssh-agent.sock" \
    -P "$(readlink -f "$top_builddir")/pkcs11/.libs/*")" >/dev/null
register_pid "$SSH_AGENT_PID"
# No PIN: the passphrase prompt gets an empty answer.
SSH_ASKPASS=/bin/true SSH_ASKPASS_REQUIRE=force ssh-add -s "$(readlink -f "$MODULE")" \
    </dev/null >"$T/ssh-add.out" 2>&1 || fail "ssh-add -s failed: $(cat "$T/ssh-add.out")"
[ "$(ssh-add -L | wc -l)" -eq 4 ] || fail "ssh-agent holds: $(ssh-add -L)"
for b in $BOTS; do
	ssh-keygen -i -m PKCS8 -f "$T/$b.pem" >"$T/$b.ssh.pub"
	cp "$T/msg" "$T/$b.sshmsg"
	ssh-keygen -Y sign -f "$T/$b.ssh.pub" -n botid-test "$T/$b.sshmsg" \
	    >"$T/ssh-sign.out" 2>&1 || fail "$b: ssh-keygen -Y sign: $(cat "$T/ssh-sign.out")"
	printf 'bot %s\n' "$(cat "$T/$b.ssh.pub")" >"$T/$b.allowed"
	ssh-keygen -Y verify -f "$T/$b.allowed" -I bot -n botid-test \
	    -s "$T/$b.sshmsg.sig" <"$T/$b.sshmsg" >/dev/null ||
	    fail "$b: the SSH signature does not verify"
	! ssh-keygen -Y verify -f "$T/$b.allowed" -I bot -n botid-test \
	    -s "$T/$b.sshmsg.sig" <"$T/msg2" >/dev/null 2>&1 ||
	    fail "$b: the SSH signature verifies another message"
done
kill "$SSH_AGENT_PID"
unset SSH_AUTH_SOCK SSH_AGENT_PID

# ---- OpenSSH: `ssh -I botid-pkcs11.so` logs in to an sshd (run here as
# root on a loopback port, with its own host key) that authorizes only the
# tpm-ec bot's key; with no agent behind the module the same login fails.
free_port() {
	"${PYTHON3:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
[ "$(id -u)" -eq 0 ] || fail "the ssh -I check runs sshd and needs root"
ssh-keygen -q -t ed25519 -N '' -f "$T/sshd_host" || fail "sshd host key"
cp "$T/tpm-ec.ssh.pub" "$T/authorized_keys"
sshd_port=$(free_port)
cat >"$T/sshd_config" <<EOF
ListenAddress 127.0.0.1:$sshd_port
HostKey $T/sshd_host
PidFile $T/sshd.pid
AuthorizedKeysFile $T/authorized_keys
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
EOF
printf '[127.0.0.1]:%s %s\n' "$sshd_port" "$(cut -d' ' -f1,2 "$T/sshd_host.pub")" \
    >"$T/known_hosts"
mkdir -p /run/sshd
env -u LD_PRELOAD "${SSHD:-/usr/sbin/sshd}" -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
register_pid $!
for _ in $(seq 1 100); do
	grep -q 'Server listening' "$T/sshd.log" && break
	sleep 0.1
done
grep -q 'Server listening' "$T/sshd.log" || fail "sshd did not start: $(cat "$T/sshd.log")"
ssh_bot() {
	SSH_ASKPASS=/bin/true SSH_ASKPASS_REQUIRE=force ssh -F none \
	    -I "$(readlink -f "$MODULE")" -o IdentityFile=none \
	    -o BatchMode=yes -o StrictHostKeyChecking=yes \
	    -o UserKnownHostsFile="$T/known_hosts" -o ConnectTimeout=10 \
	    -p "$sshd_port" root@127.0.0.1 "$@" </dev/null
}
out=$(ssh_bot echo logged-in-with-bot-key 2>"$T/ssh-I.err") ||
    fail "ssh -I botid-pkcs11.so failed: $(tail -3 "$T/ssh-I.err"; tail -3 "$T/sshd.log")"
[ "$out" = logged-in-with-bot-key ] || fail "ssh -I ran: $out"
grep -q 'Accepted publickey for root' "$T/sshd.log" ||
    fail "sshd did not log a public key login: $(tail -3 "$T/sshd.log")"
! BOTID_SOCKET="$T/no-such.sock" ssh_bot true 2>/dev/null ||
    fail "ssh -I logged in with no agent behind the module"

# ---- OpenSSL through libp11's engine
export PKCS11_MODULE_PATH="$MODULE"
for b in $BOTS; do
	opt=(); h=sha256
	case $b in *rsa) opt=(-pkeyopt digest:sha256);; p11-ec) h=sha384;; esac
	openssl pkeyutl -engine pkcs11 -keyform engine -inkey "pkcs11:object=$b" \
	    -sign "${opt[@]}" -in "$T/msg.$h" -out "$T/$b.eng" 2>"$T/eng.err" ||
	    fail "$b: engine signing failed: $(tail -3 "$T/eng.err")"
	check openssl pkeyutl -verify -pubin -inkey "$T/$b.pem" "${opt[@]}" \
	    -in "$T/msg.$h" -sigfile "$T/$b.eng"
done

# ---- GnuTLS: p11tool sees every object
p11tool --provider "$MODULE" --list-all 'pkcs11:token=botid' >"$T/p11tool" 2>&1 ||
    fail "p11tool failed: $(head -3 "$T/p11tool")"
for b in $BOTS; do
	for type in private public cert; do
		grep -q "object=$b;type=$type\$" "$T/p11tool" ||
		    fail "p11tool does not list $b's $type object: $(cat "$T/p11tool")"
	done
done
[ "$(grep -c 'URL: pkcs11:' "$T/p11tool")" -eq 12 ] ||
    fail "p11tool lists other objects: $(grep 'URL:' "$T/p11tool")"

# ---- TLS 1.3 with client authentication
# s_server trusts the botid-ca bundle only; its own certificate is
# self-signed and the client trusts exactly that.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$T/server.key" -out "$T/server.pem" 2>/dev/null ||
    fail "server certificate"
# tls_handshake BOT CERT [S_SERVER OPTION...]: s_server requires a client
# certificate from the CA; s_client takes the key from the module and the
# certificate chain from CERT. Fails like the handshake.
tls_handshake() {
	local b=$1 cert=$2 port srv pid rc=0
	shift 2
	port=$(free_port)
	srv="$T/server.$b.out"
	# A bot's earlier handshake left an ACCEPT in srv: without this the
	# loop below can see it and connect before the new server listens.
	rm -f "$srv"
	openssl s_server -accept "127.0.0.1:$port" -cert "$T/server.pem" \
	    -key "$T/server.key" -Verify 1 -verify_return_error \
	    -CAfile "$BOTID_CA_BUNDLE" -tls1_3 -naccept 1 "$@" \
	    <"$T/server.in" >"$srv" 2>&1 &
	pid=$!
	register_pid "$pid"
	for _ in $(seq 1 100); do
		grep -q '^ACCEPT' "$srv" && break
		sleep 0.1
	done
	echo hello | openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
	    -engine pkcs11 -keyform engine -key "pkcs11:object=$b" \
	    -cert "$cert" -CAfile "$T/server.pem" -verify_return_error \
	    >"$T/client.$b.out" 2>&1 || rc=$?
	wait "$pid" || rc=1
	[ "$rc" -eq 0 ] || return 1
	# The handshake finished only if the server read the client's data.
	grep -q '^hello' "$srv" || return 1
	grep -q 'TLSv1.3' "$T/client.$b.out" || fail "$b: not TLS 1.3"
}
# s_server quits at the end of its input: give it one that stays open.
mkfifo "$T/server.in"
exec 3<>"$T/server.in"
for b in $BOTS; do
	tls_handshake "$b" "$T/$b.chain" ||
	    fail "$b: TLS handshake failed: $(grep -i error "$T/client.$b.out" "$T/server.$b.out" | head -3)"
	# What the server saw: the bot's certificate with its SPIFFE ID.
	sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/p' \
	    "$T/server.$b.out" >"$T/seen.$b.pem"
	[ -s "$T/seen.$b.pem" ] || fail "$b: the server saw no client certificate"
	openssl x509 -in "$T/seen.$b.pem" -noout -ext subjectAltName |
	    grep -q "URI:spiffe://$TD/host/.*/bot/$b" ||
	    fail "$b: the server did not see the bot's SPIFFE ID"
done

# The server checks: a certificate from another CA for the same key fails,
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=rogue-ca -keyout "$T/rogue.key" -out "$T/rogue.pem" 2>/dev/null
openssl req -new -key "$T/rogue.key" -subj /CN=csr -out "$T/rogue.csr"
openssl x509 -req -in "$T/rogue.csr" -force_pubkey "$T/tpm-ec.pem" \
    -subj /CN=tpm-ec -CA "$T/rogue.pem" -CAkey "$T/rogue.key" -days 1 \
    -out "$T/rogue-tpm-ec.crt" 2>/dev/null || fail "rogue certificate"
! tls_handshake tpm-ec "$T/rogue-tpm-ec.crt" ||
    fail "a certificate from another CA was accepted"
# and so does a bot revoked at botid-ca, once its CRL is checked.
spiffe=$(openssl x509 -in "$T/p11-ec.chain" -noout -ext subjectAltName |
    grep -o 'URI:spiffe://[^, ]*' | sed 's/^URI://')
check "$CA" revoke -c "$BOTID_CA_CONF" bot "$spiffe"
# curl hangs with the ASan runtime preloaded; it loads no module.
env -u LD_PRELOAD curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/crl" -o "$T/crl.pem" ||
    fail "cannot fetch the CRL"
check tls_handshake tpm-ec "$T/tpm-ec.chain" -crl_check -CRLform PEM -CRL "$T/crl.pem"
! tls_handshake p11-ec "$T/p11-ec.chain" -crl_check -CRLform PEM -CRL "$T/crl.pem" ||
    fail "a revoked bot's certificate was accepted"
grep -q 'certificate revoked' "$T/server.p11-ec.out" ||
    fail "the revoked bot failed for another reason: $(grep -i error "$T/server.p11-ec.out")"
# An expired certificate fails: the server checks the chain as of one
# minute after the bot certificate's notAfter.
end=$(date -d "$(openssl x509 -in "$T/tpm-ec.chain" -noout -enddate | cut -d= -f2)" +%s)
! tls_handshake tpm-ec "$T/tpm-ec.chain" -attime $((end + 60)) ||
    fail "an expired certificate was accepted"
grep -q 'certificate has expired' "$T/server.tpm-ec.out" ||
    fail "the expired certificate failed for another reason: $(grep -i error "$T/server.tpm-ec.out")"

# ---- curl: an HTTPS request with the bot's key through libp11's engine
# and the module; s_server -www answers with the client certificate it saw.
# curl cannot start with a sanitizer runtime preloaded (it deadlocks in
# setlocale before loading anything), so in a sanitizer build, where the
# module needs that runtime, this check is left to the normal build.
if [ -n "${BOTID_SANITIZER_PRELOAD:-}" ]; then
	echo "note: curl check not run in a sanitizer build (see above)"
else
	curl_port=$(free_port)
	openssl s_server -accept "127.0.0.1:$curl_port" -cert "$T/server.pem" \
	    -key "$T/server.key" -Verify 1 -verify_return_error \
	    -CAfile "$BOTID_CA_BUNDLE" -naccept 1 -www <&3 >"$T/curl-server.out" 2>&1 &
	register_pid $!
	for _ in $(seq 1 100); do
		grep -q '^ACCEPT' "$T/curl-server.out" && break
		sleep 0.1
	done
	curl -sS --max-time 30 --engine pkcs11 --key-type ENG --key "pkcs11:object=tpm-rsa" \
	    --cert "$T/tpm-rsa.chain" --cacert "$T/server.pem" \
	    --resolve "localhost:$curl_port:127.0.0.1" "https://localhost:$curl_port/" \
	    >"$T/curl.out" 2>"$T/curl.err" ||
	    fail "curl with the module failed: $(tail -3 "$T/curl.err")"
	sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/p' \
	    "$T/curl.out" | openssl x509 -noout -ext subjectAltName 2>/dev/null |
	    grep -q "URI:spiffe://$TD/host/.*/bot/tpm-rsa" ||
	    fail "the server did not see tpm-rsa's certificate from curl: $(head -5 "$T/curl.out")"
fi
exec 3>&-

# ---- PKCS#11 calls the tools above do not make, against the running agent
"${PYTHON3:-python3}" - "$MODULE" <<'PY' || fail "PyKCS11 checks"
import sys, PyKCS11
lib = PyKCS11.PyKCS11Lib()
lib.load(sys.argv[1])
slot = lib.getSlotList()[0]
s = lib.openSession(slot)
# Login is accepted (there is no PIN) and a second one is refused per spec.
s.login("ignored")
try:
    s.login("ignored")
    raise SystemExit("second login accepted")
except PyKCS11.PyKCS11Error as e:
    assert e.value == PyKCS11.CKR_USER_ALREADY_LOGGED_IN, e
s.logout()
key = s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                     (PyKCS11.CKA_LABEL, "tpm-ec")])
assert len(key) == 1, key
# Private values are never returned (the exact CKR_ATTRIBUTE_SENSITIVE is
# checked by tests/unit/test-pkcs11-module.c; PyKCS11 maps it to None).
assert s.getAttributeValue(key[0], [PyKCS11.CKA_VALUE]) == [None]
ok = s.getAttributeValue(key[0], [PyKCS11.CKA_SIGN, PyKCS11.CKA_EXTRACTABLE,
                                  PyKCS11.CKA_SENSITIVE])
assert ok == [True, False, True], ok
# Wrong key type for the mechanism.
try:
    s.sign(key[0], b"x" * 32, PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS))
    raise SystemExit("RSA mechanism on an EC key")
except PyKCS11.PyKCS11Error as e:
    assert e.value == PyKCS11.CKR_KEY_TYPE_INCONSISTENT, e
# CKM_RSA_PKCS signs a DigestInfo, never a bare digest.
rsa = s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                     (PyKCS11.CKA_LABEL, "p11-rsa")])[0]
try:
    s.sign(rsa, b"x" * 32, PyKCS11.Mechanism(PyKCS11.CKM_RSA_PKCS))
    raise SystemExit("CKM_RSA_PKCS signed a bare digest")
except PyKCS11.PyKCS11Error as e:
    assert e.value == PyKCS11.CKR_DATA_INVALID, e
# A template matching nothing, and one on CKA_ID matching a bot's objects.
assert s.findObjects([(PyKCS11.CKA_LABEL, "no-such-bot")]) == []
kid = s.getAttributeValue(key[0], [PyKCS11.CKA_ID])[0]
pair = s.findObjects([(PyKCS11.CKA_ID, kid)])
assert len(pair) == 3, pair  # the key pair and the certificate
s.closeSession()
PY

# Agent answers as CKR_ codes, in a session opened before they change: a
# bot removed by a reload is CKR_KEY_FUNCTION_NOT_PERMITTED, a stopped
# agent CKR_DEVICE_ERROR (botid-pkcs11(8)).
awk '/^\[bot tpm-ec\]$/ { skip = 1; next } /^\[/ { skip = 0 } !skip' \
    "$AGENT_CONF" >"$T/reloaded.conf"
"${PYTHON3:-python3}" - "$MODULE" "$AGENT_CONF" "$T/reloaded.conf" "$AGENT_PID" \
    "$BOTID" "$AGENT_SOCK" <<'PY' || fail "agent error mapping checks"
import os, signal, subprocess, sys, time, PyKCS11
module, conf, newconf, pid, botid, sock = sys.argv[1:]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
s = lib.openSession(lib.getSlotList()[0])
def key(label):
    return s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                          (PyKCS11.CKA_LABEL, label)])[0]
def refused(k, want):
    try:
        s.sign(k, b"d" * 32, PyKCS11.Mechanism(PyKCS11.CKM_ECDSA))
    except PyKCS11.PyKCS11Error as e:
        assert e.value == want, (e, want)
        return
    raise SystemExit("signed, but %s was expected" % want)
tpm, hsm = key("tpm-ec"), key("p11-ec")
assert len(s.sign(tpm, b"d" * 32, PyKCS11.Mechanism(PyKCS11.CKM_ECDSA))) == 64
os.replace(newconf, conf)
os.kill(int(pid), signal.SIGHUP)
for _ in range(100):
    if subprocess.run([botid, "--socket", sock, "pubkey", "tpm-ec"],
                      capture_output=True).returncode != 0:
        break
    time.sleep(0.1)
refused(tpm, PyKCS11.CKR_KEY_FUNCTION_NOT_PERMITTED)
assert len(s.sign(hsm, b"d" * 48, PyKCS11.Mechanism(PyKCS11.CKM_ECDSA))) == 96
os.kill(int(pid), signal.SIGTERM)
for _ in range(100):
    if not os.path.exists(sock):
        break
    time.sleep(0.1)
refused(hsm, PyKCS11.CKR_DEVICE_ERROR)
s.closeSession()
PY
AGENT_PID=
echo "PASS: botid-pkcs11 works with pkcs11-tool, OpenSSH, OpenSSL/libp11 and GnuTLS"
