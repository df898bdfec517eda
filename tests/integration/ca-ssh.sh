#!/bin/bash
# botid-ca's SSH certificates against real OpenSSH: a provisioned host's TPM
# bot and PKCS#11 bot get user certificates (key id their SPIFFE ID, their
# name as the only principal, the X.509 certificate's lifetime) for the
# certificate the CA issued them; an sshd that trusts only the CA key served
# at /v1/ssh/ca.pub (no authorized_keys) lets each log in through the
# agent's ssh_socket; certificates not from this CA, or not a bot's valid
# signing certificate, get nothing; the agent fetches each bot's certificate
# itself and serves it in REQUEST_IDENTITIES, and ssh logs in with it; after
# `botid-ca revoke bot`, the key is
# in /v1/ssh/revoked-keys and sshd with it as RevokedKeys refuses the bot.
# /v1/ssh/krl is a binary KRL that ssh-keygen reads: empty of entries
# before (sshd lets both bots in with it), with the revoked bot's serial and
# key after, a krl_version that grows only when it changes; sshd with it as
# RevokedKeys refuses the revoked bot's certificates and runs nothing; a
# revoked key the CA cannot encode gets no KRL (500), not one without it.
# ca-ssh-pg.sh runs it with the CA on PostgreSQL.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
[ "$(id -u)" -eq 0 ] || fail "this test runs sshd and needs root"
# With BOTID_CA_SSH_PG=1 (ca-ssh-pg.sh) the CA runs on PostgreSQL.
if [ -n "${BOTID_CA_SSH_PG:-}" ]; then
	. "$top_srcdir/tests/integration/pg-common.sh"
	start_postgres
fi
start_swtpm tpm
BOTID_TCTI=$(fixture_var tpm BOTID_TCTI)
start_softhsm hsm sshca
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"
PROVISION="$top_builddir/tools/botid-provision"
SSH_SOCK="$T/ssh.sock"

start_ca ca "$(fixture_var tpm BOTID_EK_CA_CHAIN)" "ssh_ca_key = $T/ca/ssh-ca.pem"
[ "$(stat -c %a "$T/ca/ssh-ca.pem")" = 600 ] ||
    fail "the SSH CA key is mode $(stat -c %a "$T/ca/ssh-ca.pem")"

agent_conf_begin "ssh_socket = $SSH_SOCK"
agent_add_bot tbot tpm ecdsa-p256 "uid:0"
agent_add_bot pbot pkcs11 ecdsa-p256 "uid:0"
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h --bots tbot,pbot >"$T/join.token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/join.token"
start_agent
for bot in tbot pbot; do
	ok=
	for _ in $(seq 1 150); do
		if botid_cli cert "$bot" --out "$T/$bot.chain" 2>/dev/null; then
			ok=1
			break
		fi
		sleep 0.2
	done
	[ -n "$ok" ] || fail "no certificate for $bot: $(tail -5 "$AGENT_LOG")"
	botid_cli ssh-config "$bot" --pubkey >"$T/$bot.pub"
done

# http METHOD PATH [BODY-FILE]: prints the status; the body goes to $T/body.
http() {
	local data=()
	[ $# -ge 3 ] && data=(--data-binary "@$3")
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$BOTID_CA_BUNDLE" \
	    -X "$1" -H 'Content-Type: application/json' "${data[@]}" \
	    "$BOTID_CA_URL$2"
}
expect_status() {
	local want=$1 got
	shift
	got=$(http "$@")
	[ "$got" = "$want" ] || fail "$*: HTTP $got, not $want: $(cat "$T/body")"
}
# certify_body PEM-FILE [EXTRA-JSON]: {"certificate": the first PEM cert}.
certify_body() {
	"${PYTHON3:-python3}" - "$@" <<'EOF'
import json, sys
pem = open(sys.argv[1]).read()
first = pem[:pem.index("-----END CERTIFICATE-----") + 25] + "\n"
body = {"certificate": first}
if len(sys.argv) > 2:
    body.update(json.loads(sys.argv[2]))
print(json.dumps(body))
EOF
}

expect_status 200 GET /v1/ssh/ca.pub
cp "$T/body" "$T/ca.pub"
ssh-keygen -l -f "$T/ca.pub" >/dev/null || fail "ca.pub is not an SSH key: $(cat "$T/ca.pub")"
ca_fp=$(ssh-keygen -l -f "$T/ca.pub" | cut -d' ' -f2)
expect_status 405 POST /v1/ssh/ca.pub "$T/ca.pub"
expect_status 405 GET /v1/ssh/certify
expect_status 200 GET /v1/ssh/revoked-keys
[ ! -s "$T/body" ] || fail "revoked keys before any revocation: $(cat "$T/body")"

# ---- the KRL (OpenSSH PROTOCOL.krl): binary, read by ssh-keygen.
# krl_fetch FILE: GET /v1/ssh/krl into FILE, dumped by ssh-keygen into
# FILE.txt; sets krl_version, and checks the generated date.
krl_fetch() {
	local got t0 t1 gen
	t0=$(date -u +%s)
	got=$(curl -sS -o "$1" -w '%{http_code} %{content_type}' \
	    --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/ssh/krl")
	t1=$(date -u +%s)
	[ "$got" = "200 application/octet-stream" ] ||
	    fail "GET /v1/ssh/krl: $got: $(head -c 300 "$1")"
	[ "$(head -c 7 "$1")" = SSHKRL ] || fail "$1 is not a KRL"
	TZ=UTC ssh-keygen -Q -l -f "$1" >"$1.txt" 2>&1 ||
	    fail "ssh-keygen cannot read the KRL: $(cat "$1.txt")"
	grep -qx '# Comment: botid-ca' "$1.txt" || fail "KRL: $(cat "$1.txt")"
	krl_version=$(sed -n 's/^# KRL version \([0-9]*\)$/\1/p' "$1.txt")
	[ -n "$krl_version" ] || fail "no KRL version: $(cat "$1.txt")"
	gen=$(sed -n 's/^# Generated at \([0-9]\{8\}\)T\([0-9]\{2\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)$/\1 \2:\3:\4/p' "$1.txt")
	gen=$(date -u -d "$gen" +%s) || fail "KRL date: $(cat "$1.txt")"
	[ "$gen" -ge "$t0" ] && [ "$gen" -le "$t1" ] ||
	    fail "KRL generated at $gen, fetched between $t0 and $t1"
}
krl_fetch "$T/krl0"
v0=$krl_version
[ "$(grep -cv '^#\|^$' "$T/krl0.txt")" -eq 0 ] ||
    fail "KRL entries before any revocation: $(cat "$T/krl0.txt")"
krl_fetch "$T/krl0b"
[ "$krl_version" = "$v0" ] || fail "unchanged KRL, version $v0 then $krl_version"
expect_status 405 POST /v1/ssh/krl "$T/ca.pub"

# ---- a certificate for each bot, read back by ssh-keygen -L.
TD=$(sed -n 's/^trust_domain *= *//p' "$BOTID_CA_CONF")
for bot in tbot pbot; do
	certify_body "$T/$bot.chain" >"$T/req.json"
	expect_status 200 POST /v1/ssh/certify "$T/req.json"
	"${PYTHON3:-python3}" -c 'import json, sys; print(json.load(open(sys.argv[1]))["certificate"])' \
	    "$T/body" >"$T/$bot-cert.pub"
	TZ=UTC ssh-keygen -L -f "$T/$bot-cert.pub" >"$T/$bot-cert.txt" ||
	    fail "ssh-keygen -L refused the $bot certificate"
	spiffe=$(openssl x509 -in "$T/$bot.chain" -noout -ext subjectAltName |
	    grep -o 'spiffe://[^ ,]*')
	case $spiffe in "spiffe://$TD/"*) ;; *) fail "$bot SPIFFE ID: $spiffe";; esac
	grep -q "Type: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate" \
	    "$T/$bot-cert.txt" || fail "$bot: not a user certificate: $(cat "$T/$bot-cert.txt")"
	grep -qF "Key ID: \"$spiffe\"" "$T/$bot-cert.txt" ||
	    fail "$bot: key id: $(cat "$T/$bot-cert.txt")"
	grep -qF "Signing CA: ECDSA $ca_fp" "$T/$bot-cert.txt" ||
	    fail "$bot: signing CA: $(cat "$T/$bot-cert.txt")"
	[ "$(sed -n '/Principals:/{n;p}' "$T/$bot-cert.txt" | tr -d ' \t')" = "$bot" ] ||
	    fail "$bot: principals: $(cat "$T/$bot-cert.txt")"
	grep -qF "Public key: ECDSA-CERT $(ssh-keygen -l -f "$T/$bot.pub" | cut -d' ' -f2)" \
	    "$T/$bot-cert.txt" || fail "$bot: the certificate is for another key"
	# Valid until the X.509 certificate's notAfter, to the second.
	na=$(date -u -d "$(openssl x509 -in "$T/$bot.chain" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%S)
	grep -q "Valid: from .* to $na" "$T/$bot-cert.txt" ||
	    fail "$bot: validity $(grep Valid "$T/$bot-cert.txt"), want to $na"
done

# ---- refusals: nothing issued for a certificate that is not a bot's.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/self.key" -subj /CN=self -days 1 -out "$T/self.pem" 2>/dev/null
certify_body "$T/self.pem" >"$T/req.json"
expect_status 403 POST /v1/ssh/certify "$T/req.json"
grep -q 'not issued by this CA' "$T/body" || fail "self-signed: $(cat "$T/body")"
certify_body "$BOTID_CA_CERT" >"$T/req.json"
expect_status 403 POST /v1/ssh/certify "$T/req.json"
grep -q 'not a valid bot certificate' "$T/body" || fail "CA cert: $(cat "$T/body")"
certify_body "$T/tbot.chain" '{"principals": ["root"]}' >"$T/req.json"
expect_status 400 POST /v1/ssh/certify "$T/req.json"
printf 'not json' >"$T/req.json"
expect_status 400 POST /v1/ssh/certify "$T/req.json"

# ---- the agent fetched each bot's SSH certificate with its X.509 one and
# serves it after the key in REQUEST_IDENTITIES, with the bot's name.
for _ in $(seq 1 150); do
	SSH_AUTH_SOCK=$SSH_SOCK ssh-add -L >"$T/agent-ids" 2>&1 || true
	[ "$(grep -c -- '-cert-v01@openssh.com' "$T/agent-ids")" -eq 2 ] && break
	sleep 0.2
done
[ "$(wc -l <"$T/agent-ids")" -eq 4 ] || fail "ssh-add -L: $(cat "$T/agent-ids")"
for bot in tbot pbot; do
	grep -- '-cert-v01@openssh.com .* '"$bot"'$' "$T/agent-ids" >"$T/$bot-agent-cert.pub" ||
	    fail "no SSH certificate for $bot in ssh-add -L: $(cat "$T/agent-ids")"
	TZ=UTC ssh-keygen -L -f "$T/$bot-agent-cert.pub" >"$T/$bot-agent-cert.txt" ||
	    fail "the agent's $bot certificate does not parse"
	grep -qF "Signing CA: ECDSA $ca_fp" "$T/$bot-agent-cert.txt" &&
	    [ "$(sed -n '/Principals:/{n;p}' "$T/$bot-agent-cert.txt" | tr -d ' \t')" = "$bot" ] &&
	    grep -qF "Public key: ECDSA-CERT $(ssh-keygen -l -f "$T/$bot.pub" | cut -d' ' -f2)" \
	    "$T/$bot-agent-cert.txt" || fail "the agent's $bot certificate: $(cat "$T/$bot-agent-cert.txt")"
done

# ---- sshd trusting only the botid SSH CA.
free_port() {
	"${PYTHON3:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ssh-keygen -q -t ed25519 -N '' -f "$T/sshd_host" || fail "sshd host key"
printf 'tbot\npbot\n' >"$T/principals"
# The KRL with no entries: sshd reads it and lets both bots in.
cp "$T/krl0" "$T/revoked"
sshd_port=$(free_port)
cat >"$T/sshd_config" <<EOF
ListenAddress 127.0.0.1:$sshd_port
HostKey $T/sshd_host
PidFile $T/sshd.pid
AuthorizedKeysFile none
TrustedUserCAKeys $T/ca.pub
AuthorizedPrincipalsFile $T/principals
RevokedKeys $T/revoked
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel VERBOSE
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
ssh_bot() {	# ssh_bot BOT [CERT-FILE] COMMAND...
	local bot=$1 cert=$2
	shift 2
	env -u SSH_AUTH_SOCK ssh -F none -o BatchMode=yes \
	    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$T/known_hosts" \
	    -o ConnectTimeout=30 -o IdentityAgent="$SSH_SOCK" \
	    -o IdentitiesOnly=yes -i "$T/$bot.pub" -o CertificateFile="$cert" \
	    -p "$sshd_port" root@127.0.0.1 "$@" </dev/null
}
for bot in tbot pbot; do
	out=$(ssh_bot "$bot" "$T/$bot-cert.pub" echo "in-as-$bot" 2>"$T/ssh.err") ||
	    fail "$bot with its certificate: $(tail -3 "$T/ssh.err"; tail -3 "$T/sshd.log")"
	[ "$out" = "in-as-$bot" ] || fail "$bot ran: $out"
	grep -q "Accepted publickey for root .*ECDSA-CERT.*ID spiffe://$TD/.*CA ECDSA $ca_fp" \
	    "$T/sshd.log" || fail "sshd did not log $bot's certificate: $(tail -3 "$T/sshd.log")"
	# The agent's own certificate, with no CertificateFile: offered by
	# the agent, the request naming the certificate, audited.
	n_before=$(grep -c "\"op\":\"ssh-sign\".*\"bot\":\"$bot\".*\"result\":\"ok\"" "$AUDIT_LOG" || true)
	out=$(env -u SSH_AUTH_SOCK ssh -F none -o BatchMode=yes \
	    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$T/known_hosts" \
	    -o ConnectTimeout=30 -o IdentityAgent="$SSH_SOCK" \
	    -o IdentitiesOnly=yes -i "$T/$bot-agent-cert.pub" \
	    -p "$sshd_port" root@127.0.0.1 echo "agent-cert-$bot" </dev/null 2>"$T/ssh.err") ||
	    fail "$bot with the agent's certificate: $(tail -3 "$T/ssh.err"; tail -3 "$T/sshd.log")"
	[ "$out" = "agent-cert-$bot" ] || fail "$bot ran: $out"
	n_after=$(grep -c "\"op\":\"ssh-sign\".*\"bot\":\"$bot\".*\"result\":\"ok\"" "$AUDIT_LOG")
	[ "$n_after" -gt "$n_before" ] || fail "the $bot certificate login is not audited"
	# The plain key alone is not enough: there is no authorized_keys.
	! ssh_bot "$bot" none true 2>/dev/null || fail "$bot logged in without its certificate"
done

# ---- revoked: the key is served for RevokedKeys and sshd refuses it.
tspiffe=$(openssl x509 -in "$T/tbot.chain" -noout -ext subjectAltName | grep -o 'spiffe://[^ ,]*')
"$CA" revoke -c "$BOTID_CA_CONF" bot "$tspiffe" >/dev/null || fail "botid-ca revoke bot failed"
expect_status 200 GET /v1/ssh/revoked-keys
[ "$(cut -d' ' -f1,2 "$T/body")" = "$(cut -d' ' -f1,2 "$T/tbot.pub")" ] ||
    fail "revoked keys: '$(cat "$T/body")', want tbot's key"
cp "$T/body" "$T/revoked"
! ssh_bot tbot "$T/tbot-cert.pub" true 2>/dev/null ||
    fail "sshd accepted the revoked bot's certificate"
! env -u SSH_AUTH_SOCK ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$T/known_hosts" -o IdentityAgent="$SSH_SOCK" \
    -o IdentitiesOnly=yes -i "$T/tbot-agent-cert.pub" -p "$sshd_port" \
    root@127.0.0.1 true </dev/null 2>/dev/null ||
    fail "sshd accepted the revoked bot's certificate from the agent"
grep -q "revoked" "$T/sshd.log" || fail "sshd did not say revoked: $(tail -3 "$T/sshd.log")"
out=$(ssh_bot pbot "$T/pbot-cert.pub" echo still-in 2>/dev/null) ||
    fail "the other bot was refused after tbot's revocation"
[ "$out" = still-in ] || fail "pbot ran: $out"

# ---- the KRL after the revocation: tbot's SSH serial (the low 64 bits of
# its X.509 serial) under the CA key, and its plain key.
krl_fetch "$T/krl1"
[ "$krl_version" -gt "$v0" ] || fail "KRL version $krl_version after $v0"
serial=$(sed -n 's/^ *Serial: //p' "$T/tbot-cert.txt")
x509=$(openssl x509 -in "$T/tbot.chain" -noout -serial | cut -d= -f2)
[ -n "$serial" ] && [ "$serial" = "$("${PYTHON3:-python3}" -c \
    'import sys; print(int(sys.argv[1], 16) % 2**64)' "$x509")" ] ||
    fail "SSH serial '$serial' is not the low 64 bits of $x509"
tfp=$(ssh-keygen -l -f "$T/tbot.pub" | cut -d' ' -f2)
grep -qx "# CA key ecdsa-sha2-nistp256 $ca_fp" "$T/krl1.txt" &&
    grep -qx "serial: $serial" "$T/krl1.txt" &&
    grep -qx "hash: $tfp # ecdsa-sha2-nistp256" "$T/krl1.txt" &&
    [ "$(grep -cv '^#\|^$' "$T/krl1.txt")" -eq 2 ] ||
    fail "KRL after tbot's revocation: $(cat "$T/krl1.txt")"
# ssh-keygen -Q: tbot's key and both its certificates revoked, not pbot's.
for f in tbot.pub tbot-cert.pub tbot-agent-cert.pub; do
	! ssh-keygen -Q -f "$T/krl1" "$T/$f" >"$T/q.out" 2>&1 &&
	    grep -q ': REVOKED$' "$T/q.out" || fail "$f: $(cat "$T/q.out")"
done
for f in pbot.pub pbot-cert.pub pbot-agent-cert.pub; do
	ssh-keygen -Q -f "$T/krl1" "$T/$f" >"$T/q.out" 2>&1 &&
	    grep -q ': ok$' "$T/q.out" || fail "$f: $(cat "$T/q.out")"
done
# The serial alone revokes: another key's certificate signed with the CA
# key (read from its file here) under tbot's serial is revoked, under
# serial 1 it is not.
ssh-keygen -q -t ed25519 -N '' -f "$T/other" || fail "ssh-keygen -t ed25519"
for z in "$serial" 1; do
	rm -f "$T/other-cert.pub"
	ssh-keygen -q -s "$T/ca/ssh-ca.pem" -I other -n other -z "$z" \
	    "$T/other.pub" || fail "ssh-keygen -s with the CA key"
	if [ "$z" = "$serial" ]; then
		! ssh-keygen -Q -f "$T/krl1" "$T/other-cert.pub" >"$T/q.out" 2>&1 &&
		    grep -q ': REVOKED$' "$T/q.out" ||
		    fail "serial $z: $(cat "$T/q.out")"
	else
		ssh-keygen -Q -f "$T/krl1" "$T/other-cert.pub" >"$T/q.out" 2>&1 &&
		    grep -q ': ok$' "$T/q.out" || fail "serial $z: $(cat "$T/q.out")"
	fi
done
# sshd with the KRL as RevokedKeys (replaced atomically, as an operator
# would): tbot is refused with either certificate and runs nothing.
cp "$T/krl1" "$T/revoked.new"
mv "$T/revoked.new" "$T/revoked"
n_revoked=$(grep -c "revoked" "$T/sshd.log" || true)
! ssh_bot tbot "$T/tbot-cert.pub" touch "$T/tbot-ran" 2>/dev/null ||
    fail "sshd with the KRL accepted the revoked bot's certificate"
! env -u SSH_AUTH_SOCK ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$T/known_hosts" -o IdentityAgent="$SSH_SOCK" \
    -o IdentitiesOnly=yes -i "$T/tbot-agent-cert.pub" -p "$sshd_port" \
    root@127.0.0.1 touch "$T/tbot-ran" </dev/null 2>/dev/null ||
    fail "sshd with the KRL accepted the revoked bot's certificate from the agent"
[ ! -e "$T/tbot-ran" ] || fail "the revoked bot ran a command"
[ "$(grep -c "revoked" "$T/sshd.log")" -ge $((n_revoked + 2)) ] ||
    fail "sshd did not say revoked twice: $(tail -4 "$T/sshd.log")"
out=$(ssh_bot pbot "$T/pbot-cert.pub" echo krl-in 2>/dev/null) ||
    fail "pbot refused with the KRL: $(tail -3 "$T/sshd.log")"
[ "$out" = krl-in ] || fail "pbot ran: $out"
# And no new certificate for the revoked one.
certify_body "$T/tbot.chain" >"$T/req.json"
expect_status 403 POST /v1/ssh/certify "$T/req.json"

# ---- a revoked key the CA cannot encode (its row damaged in the
# database): no KRL at all rather than one that lets that key in again.
db_sql() { ca_sql ca "$1"; }
tline=$(cut -d' ' -f1,2 "$T/tbot.pub")
db_sql "UPDATE ssh_keys SET key_line = 'ecdsa-sha2-nistp256 !!!!' WHERE key_line = '$tline'"
[ "$(db_sql "SELECT count(*) FROM ssh_keys WHERE key_line = '$tline'")" -eq 0 ] ||
    fail "tbot's key row was not damaged"
expect_status 500 GET /v1/ssh/krl
grep -q '"cannot make the KRL"' "$T/body" || fail "damaged row: $(cat "$T/body")"
echo "ca-ssh: ok"
