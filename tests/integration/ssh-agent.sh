#!/bin/bash
# The ssh-agent protocol on ssh_socket, against real OpenSSH: ssh-add -L
# lists the bots the calling process may use and no other; a caller not
# allowed a bot cannot sign with it; ssh-add, ssh-add -D and SHA-1 ssh-rsa
# signatures are refused; ssh logs in to an sshd and git clones and pushes
# over ssh with a TPM bot's and a PKCS#11 bot's key; every use is audited
# as ssh-sign with the key's and the bound host key's fingerprints.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
[ "$(id -u)" -eq 0 ] || fail "this test runs sshd and setpriv and needs root"
start_swtpm tpm
start_softhsm hsm
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

SSH_SOCK="$T/ssh.sock"
chmod 0755 "$T"
agent_conf_begin "socket_group = nogroup" "socket_mode = 0660" \
    "ssh_socket = $SSH_SOCK"
agent_add_bot tpm-ec tpm ecdsa-p256 "uid:0"
agent_add_bot tpm-rsa tpm rsa-2048 "uid:0"
agent_add_bot p11-ec pkcs11 ecdsa-p384 "uid:0"
agent_add_bot other tpm ecdsa-p256 "uid:nobody"
start_agent
[ -S "$SSH_SOCK" ] || fail "no ssh socket at $SSH_SOCK"
[ "$(stat -c '%a %G' "$SSH_SOCK")" = "660 nogroup" ] ||
    fail "ssh socket mode/group is $(stat -c '%a %G' "$SSH_SOCK")"

as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
# Each bot's key in OpenSSH form, from the main protocol and ssh-keygen.
for b in tpm-ec tpm-rsa p11-ec; do
	botid_cli pubkey "$b" --out "$T/$b.pem" || fail "pubkey $b"
	ssh-keygen -i -m PKCS8 -f "$T/$b.pem" >"$T/$b.pub" ||
	    fail "ssh-keygen -i $b"
done
chmod 0644 "$T"/*.pub

# ---- ssh-add -L: root's three bots, with their names; not "other".
SSH_AUTH_SOCK=$SSH_SOCK ssh-add -L >"$T/list.root" ||
    fail "ssh-add -L failed: $(cat "$T/list.root")"
[ "$(wc -l <"$T/list.root")" -eq 3 ] || fail "ssh-add -L: $(cat "$T/list.root")"
for b in tpm-ec tpm-rsa p11-ec; do
	grep -qxF "$(cut -d' ' -f1,2 "$T/$b.pub") $b" "$T/list.root" ||
	    fail "ssh-add -L lacks $b as $(cat "$T/$b.pub"): $(cat "$T/list.root")"
done
# nobody sees "other" only.
out=$(as_nobody env SSH_AUTH_SOCK="$SSH_SOCK" ssh-add -L) ||
    fail "ssh-add -L as nobody failed: $out"
[ "$(wc -l <<<"$out")" -eq 1 ] && [ "${out##* }" = other ] ||
    fail "nobody sees: $out"

# ---- signatures checked by ssh-keygen -Y verify, for each key type.
printf 'a message\n' >"$T/msg"
chmod 0644 "$T/msg"
for b in tpm-ec tpm-rsa p11-ec; do
	rm -f "$T/msg.sig"
	SSH_AUTH_SOCK=$SSH_SOCK ssh-keygen -q -Y sign -f "$T/$b.pub" -n file \
	    "$T/msg" 2>"$T/sign.err" || fail "ssh-keygen -Y sign $b: $(cat "$T/sign.err")"
	printf 'bot@botid %s\n' "$(cut -d' ' -f1,2 "$T/$b.pub")" >"$T/allowed"
	ssh-keygen -Y verify -f "$T/allowed" -I bot@botid -n file \
	    -s "$T/msg.sig" <"$T/msg" >/dev/null ||
	    fail "the $b signature does not verify"
	mv "$T/msg.sig" "$T/$b.msg.sig"
done

# A raw ssh-agent client: SIGN_REQUEST for the key in PUB with FLAGS
# (optionally cut to LEN bytes); prints the reply's message number and, for
# a signature, its algorithm.
cat >"$T/raw.py" <<'EOF'
import base64, socket, struct, sys
sock, pub, flags = sys.argv[1], sys.argv[2], int(sys.argv[3])
blob = base64.b64decode(open(pub).read().split()[1])
def s(b): return struct.pack(">I", len(b)) + b
body = b"\x0d" + s(blob) + s(b"data") + struct.pack(">I", flags)
if len(sys.argv) > 4:
    body = body[:int(sys.argv[4])]
c = socket.socket(socket.AF_UNIX)
c.connect(sock)
c.sendall(struct.pack(">I", len(body)) + body)
n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
r = c.recv(n, socket.MSG_WAITALL)
if r[0] == 14:
    sig = r[5:]
    print(14, sig[4:4 + struct.unpack(">I", sig[:4])[0]].decode())
else:
    print(r[0])
EOF
chmod 0644 "$T/raw.py"
raw() { "${PYTHON3:-python3}" "$T/raw.py" "$SSH_SOCK" "$@"; }

# ---- nobody cannot sign with tpm-ec: ssh-keygen finds no such key, a
# request naming it fails; no signature file, the denial audited.
fp=$(ssh-keygen -l -f "$T/tpm-ec.pub" | cut -d' ' -f2)
rm -f "$T/msg.sig"
! as_nobody env SSH_AUTH_SOCK="$SSH_SOCK" ssh-keygen -q -Y sign \
    -f "$T/tpm-ec.pub" -n file "$T/msg" 2>"$T/nobody.err" ||
    fail "nobody signed with tpm-ec"
[ ! -e "$T/msg.sig" ] || fail "a signature file was written for nobody"
out=$(as_nobody "${PYTHON3:-python3}" "$T/raw.py" "$SSH_SOCK" "$T/tpm-ec.pub" 0) ||
    fail "raw request as nobody failed"
[ "$out" = 5 ] || fail "nobody's sign request with tpm-ec was answered $out"
[ "$(raw "$T/tpm-ec.pub" 0)" = "14 ecdsa-sha2-nistp256" ] ||
    fail "root's raw sign request with tpm-ec failed"
nobody_uid=$(id -u nobody)
[ "$(grep '"op":"ssh-sign"' "$AUDIT_LOG" | grep '"result":"denied"' |
    grep -F "\"uid\":$nobody_uid," | grep -cF "key $fp")" -gt 0 ] ||
    fail "no ssh-sign denial for nobody in the audit log: $(grep ssh-sign "$AUDIT_LOG" | tail -3)"
[ "$(grep '"op":"ssh-sign"' "$AUDIT_LOG" | grep -F "\"uid\":$nobody_uid," |
    grep -c '"result":"ok"')" = 0 ] || fail "an ssh-sign by nobody is logged ok"

# ---- keys come only from the configuration: ssh-add and ssh-add -D fail.
ssh-keygen -q -t ed25519 -N '' -f "$T/somekey"
! SSH_AUTH_SOCK=$SSH_SOCK ssh-add "$T/somekey" 2>"$T/add.err" ||
    fail "ssh-add of a key succeeded"
! SSH_AUTH_SOCK=$SSH_SOCK ssh-add -D 2>>"$T/add.err" ||
    fail "ssh-add -D succeeded"
SSH_AUTH_SOCK=$SSH_SOCK ssh-add -L >"$T/list.after"
cmp -s "$T/list.root" "$T/list.after" ||
    fail "the identities changed: $(cat "$T/list.after")"
[ "$(grep '"op":"ssh-request"' "$AUDIT_LOG" |
    grep -c 'add-identity not served')" -gt 0 ] ||
    fail "ssh-add is not in the audit log"
[ "$(grep '"op":"ssh-request"' "$AUDIT_LOG" |
    grep -c 'remove-all-identities not served')" -gt 0 ] ||
    fail "ssh-add -D is not in the audit log"

# ---- never SHA-1: an RSA sign request without the SHA-2 flags fails,
# and so does a truncated request; the agent keeps serving.
[ "$(raw "$T/tpm-rsa.pub" 0)" = 5 ] || fail "ssh-rsa (SHA-1) was signed"
[ "$(raw "$T/tpm-rsa.pub" 1)" = 5 ] || fail "flag 1 gave a signature"
[ "$(raw "$T/tpm-rsa.pub" 2 100)" = 5 ] || fail "a truncated request was answered"
[ "$(raw "$T/tpm-rsa.pub" 4)" = "14 rsa-sha2-512" ] || fail "rsa-sha2-512 refused"
[ "$(raw "$T/tpm-rsa.pub" 2)" = "14 rsa-sha2-256" ] || fail "rsa-sha2-256 refused"
[ "$(grep '"op":"ssh-sign"' "$AUDIT_LOG" | grep '"bot":"tpm-rsa"' |
    grep -c 'never ssh-rsa with SHA-1')" -gt 0 ] || fail "the SHA-1 refusal is not audited"
[ "$(grep '"op":"ssh-request"' "$AUDIT_LOG" |
    grep -c 'malformed sign-request')" -gt 0 ] ||
    fail "the truncated request is not audited"

# ---- sshd on 127.0.0.1 whose authorized_keys lists the bots' keys.
free_port() {
	"${PYTHON3:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ssh-keygen -q -t ed25519 -N '' -f "$T/sshd_host" || fail "sshd host key"
cat "$T/tpm-ec.pub" "$T/p11-ec.pub" >"$T/authorized_keys"
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
host_fp=$(ssh-keygen -l -f "$T/sshd_host.pub" | cut -d' ' -f2)
mkdir -p /run/sshd
env -u LD_PRELOAD "${SSHD:-/usr/sbin/sshd}" -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
register_pid $!
for _ in $(seq 1 100); do
	grep -q 'Server listening' "$T/sshd.log" && break
	sleep 0.1
done
grep -q 'Server listening' "$T/sshd.log" || fail "sshd did not start: $(cat "$T/sshd.log")"
SSH_OPTS=(-F none -o BatchMode=yes -o StrictHostKeyChecking=yes
    -o UserKnownHostsFile="$T/known_hosts" -o ConnectTimeout=30
    -o IdentityAgent="$SSH_SOCK" -o IdentitiesOnly=yes -p "$sshd_port")
for b in tpm-ec p11-ec; do
	fp=$(ssh-keygen -l -f "$T/$b.pub" | cut -d' ' -f2)
	out=$(ssh "${SSH_OPTS[@]}" -i "$T/$b.pub" root@127.0.0.1 echo in-as-"$b" \
	    </dev/null 2>"$T/ssh.err") ||
	    fail "ssh with $b failed: $(tail -3 "$T/ssh.err"; tail -3 "$T/sshd.log")"
	[ "$out" = "in-as-$b" ] || fail "ssh with $b ran: $out"
	grep -q "Accepted publickey for root .* $fp" "$T/sshd.log" ||
	    fail "sshd did not accept $b's key: $(tail -3 "$T/sshd.log")"
	[ "$(grep '"op":"ssh-sign"' "$AUDIT_LOG" | grep "\"bot\":\"$b\"" |
	    grep '"result":"ok"' | grep -cF "key $fp host $host_fp")" -gt 0 ] ||
	    fail "the $b login is not audited with the host key: $(grep ssh-sign "$AUDIT_LOG" | tail -2)"
done
# tpm-rsa is not in authorized_keys: the agent offers it, sshd refuses.
! ssh "${SSH_OPTS[@]}" -i "$T/tpm-rsa.pub" root@127.0.0.1 true </dev/null 2>/dev/null ||
    fail "sshd accepted a key it does not list"
# nobody's agent view has no key sshd accepts.
! as_nobody ssh "${SSH_OPTS[@]}" -o IdentitiesOnly=no -o IdentityFile=none \
    root@127.0.0.1 true </dev/null 2>/dev/null ||
    fail "nobody logged in through the agent"

# ---- botid ssh-config: its key line is ssh-keygen's, its block logs in,
# and a caller not allowed the bot gets nothing.
[ "$(botid_cli ssh-config p11-ec --pubkey)" = "$(cut -d' ' -f1,2 "$T/p11-ec.pub") p11-ec" ] ||
    fail "ssh-config --pubkey printed: $(botid_cli ssh-config p11-ec --pubkey)"
botid_cli ssh-config p11-ec --pubkey >"$T/idfile.pub"
{
	botid_cli ssh-config p11-ec --ssh-socket "$SSH_SOCK" \
	    --identity-file "$T/idfile.pub" || fail "ssh-config failed"
	printf '\tHostName 127.0.0.1\n\tPort %s\n\tUser root\n\tBatchMode yes\n' \
	    "$sshd_port"
	printf '\tUserKnownHostsFile %s\n\tStrictHostKeyChecking yes\n' \
	    "$T/known_hosts"
} >"$T/ssh_config"
out=$(env -u SSH_AUTH_SOCK ssh -F "$T/ssh_config" botid-p11-ec echo via-config \
    </dev/null 2>"$T/ssh.err") ||
    fail "ssh with ssh-config's block failed: $(tail -3 "$T/ssh.err")"
[ "$out" = via-config ] || fail "ssh with ssh-config's block ran: $out"
set +e
out=$(as_nobody "$BOTID" --socket "$AGENT_SOCK" ssh-config tpm-ec 2>&1)
rc=$?
set -e
[ "$rc" -eq 3 ] && [ "$out" = "botid: ssh-config: denied" ] ||
    fail "ssh-config for nobody: exit $rc, $out"

# ---- git clone and push over ssh with SSH_AUTH_SOCK, with the TPM bot.
git init -q --bare "$T/repo.git"
export GIT_SSH_COMMAND="ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$T/known_hosts -p $sshd_port"
export GIT_AUTHOR_NAME=bot GIT_AUTHOR_EMAIL=bot@example.org
export GIT_COMMITTER_NAME=bot GIT_COMMITTER_EMAIL=bot@example.org
before=$(grep -c '"op":"ssh-sign".*"result":"ok"' "$AUDIT_LOG" || true)
SSH_AUTH_SOCK=$SSH_SOCK git clone -q "root@127.0.0.1:$T/repo.git" "$T/work" \
    2>"$T/git.err" || fail "git clone failed: $(cat "$T/git.err")"
echo change >"$T/work/file"
git -C "$T/work" add file
git -C "$T/work" commit -q -m "a bot's commit"
SSH_AUTH_SOCK=$SSH_SOCK git -C "$T/work" push -q origin HEAD 2>"$T/git.err" ||
    fail "git push failed: $(cat "$T/git.err")"
[ "$(git -C "$T/repo.git" log --format=%s)" = "a bot's commit" ] ||
    fail "the push did not reach the bare repository"
after=$(grep -c '"op":"ssh-sign".*"result":"ok"' "$AUDIT_LOG")
[ "$after" -ge $((before + 2)) ] ||
    fail "clone and push are not both in the audit log ($before, $after)"

# The audit chain stays whole.
"$BOTID" audit verify "$AUDIT_LOG" >/dev/null 2>&1 ||
    fail "audit verify: $("$BOTID" audit verify "$AUDIT_LOG" 2>&1 | tail -2)"
stop_agent
[ ! -e "$SSH_SOCK" ] || fail "the ssh socket was left behind"
echo "ssh-agent: ok"
