#!/bin/bash
# Key lifecycle: `botid rotate` under a signing load (no request fails,
# signatures before verify with the old key, after with the new one, the
# new certificate is for the new key), the old key destroyed after
# rotate_grace (TPM blob gone, token objects gone) and its certificate on
# the CA's CRL; rotate_every rotates by itself; SIGKILL at every step of a
# rotation leaves every bot able to sign; a bot removed from the
# configuration has its keys destroyed and its certificate revoked, also
# when the reload that removes it comes in the middle of its rotation (no
# update of its state lost); `botid deprovision` revokes the host and
# leaves no key behind.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup
start_swtpm tpm
start_softhsm hsm lifecycle
export SOFTHSM2_CONF
. "$top_srcdir/tests/integration/agent-common.sh"

PROVISION="$top_builddir/tools/botid-provision"
LOAD="$top_srcdir/tests/integration/sign-load.py"
me="uid:$(id -u)"
GRACE=4

# Certificates for an hour: no renewal during the test, so the certificate
# a key serves at its rotation is the one the agent revokes when it retires.
start_ca ca "$BOTID_EK_CA_CHAIN" "bot_lifetime = 3600"
write_conf() {
	# nobody reaches the socket through its group (the admin check).
	agent_conf_begin "rotate_grace = ${GRACE}s" "socket_group = nogroup"
	agent_add_bot tbot tpm ecdsa-p256 "$me"
	agent_add_bot pbot pkcs11 ecdsa-p256 "$me"
	agent_add_bot rbot tpm ecdsa-p256 "$me"
	echo "rotate_every = 12s" >>"$AGENT_CONF"
	for extra in "$@"; do
		agent_add_bot "$extra" pkcs11 ecdsa-p256 "$me"
	done
}
write_conf gone
"$CA" token create -c "$BOTID_CA_CONF" --ttl 1h >"$T/token"
check "$PROVISION" -c "$AGENT_CONF" --ca "$BOTID_CA_URL" \
    --ca-bundle "$BOTID_CA_BUNDLE" --join-token-file "$T/token"
start_agent

wait_cert() {
	for _ in $(seq 1 150); do
		botid_cli cert "$1" --out "$T/$1.chain" 2>/dev/null && return 0
		sleep 0.2
	done
	fail "no certificate for $1 after 30 s: $(tail -5 "$AGENT_LOG")"
}
crl_text() {
	curl -sf --cacert "$BOTID_CA_BUNDLE" "$BOTID_CA_URL/v1/crl" |
	    openssl crl -noout -text
}
serial_of() {
	openssl x509 -in "$1" -noout -serial | sed 's/serial=//'
}
# on_crl SERIAL: the CRL lists it (serials compare as uppercase hex).
on_crl() {
	crl_text | tr -d ' ' | grep -i "SerialNumber:0*${1##0}$" >/dev/null
}
for bot in tbot pbot rbot gone; do wait_cert "$bot"; done
printf 'lifecycle test message\n' >"$T/msg"

# signed COUNTFILE...: the fewest requests any of the clients has logged.
signed() {
	local f n min=
	for f in "$@"; do
		n=0
		[ ! -e "$f" ] || n=$(wc -l <"$f")
		[ -z "$min" ] || [ "$n" -lt "$min" ] && min=$n
	done
	echo "${min:-0}"
}
# wait_signed N COUNTFILE...: waits until every client has logged N
# requests: events, not a while, so that a busy machine only slows it.
wait_signed() {
	local want=$1
	shift
	for _ in $(seq 1 1200); do
		[ "$(signed "$@")" -ge "$want" ] && return 0
		sleep 0.05
	done
	fail "the clients logged $(signed "$@") requests, not $want, in 60 s"
}

# --- Rotation on demand under load --------------------------------------
# rotate_under_load BOT KEYFILE-CHECK: rotates BOT while a client signs.
rotate_under_load() {
	local bot=$1 t_start t_end gen i out loaders=()
	rm -f "$T/stop"
	# The certificate served now: the one revoked after the grace period.
	check botid_cli cert "$bot" --out "$T/$bot.chain"
	OLD_SERIAL=$(serial_of "$T/$bot.chain")
	check botid_cli pubkey "$bot" --out "$T/$bot.old.pem"
	# "Verify with the old certificate": its key is the old key.
	openssl x509 -in "$T/$bot.chain" -noout -pubkey >"$T/$bot.oldcert.pem"
	cmp -s "$T/$bot.oldcert.pem" "$T/$bot.old.pem" ||
	    fail "$bot: the certificate before the rotation is not for its key"
	# Three clients sign concurrently, each on its own connection.
	for i in 1 2 3; do
		out="$T/load-$bot-$i"
		mkdir -p "$out"
		python3 "$LOAD" "$AGENT_SOCK" "$bot" "$T/msg" "$out" "$T/stop" \
		    >"$out/summary" 2>"$out/errors" &
		loaders+=("$!")
	done
	# Every client has signed with the old key before the rotation.
	wait_signed 10 "$T/load-$bot-"{1,2,3}/log
	t_start=$(date +%s.%N)
	botid_cli rotate "$bot" >"$T/$bot.rotate.out" ||
	    fail "botid rotate $bot failed: $(cat "$T/$bot.rotate.out") $(tail -3 "$AGENT_LOG")"
	t_end=$(date +%s.%N)
	# Right after: both keys exist; the old one waits for rotate_grace.
	old_key_present "$bot" || fail "$bot's old key went before its grace period"
	new_key_present "$bot" || fail "no key in the device for $bot's new key"
	# ... and with the new one after it: 10 requests each, plus the one
	# each may have had in flight when the rotation ended.
	for i in 1 2 3; do
		wait_signed $(($(signed "$T/load-$bot-$i/log") + 11)) \
		    "$T/load-$bot-$i/log"
	done
	touch "$T/stop"
	for i in 1 2 3; do
		wait "${loaders[i - 1]}" ||
		    fail "$bot: signing failed during the rotation: $(head -3 "$T/load-$bot-$i/errors")"
	done
	gen=$(sed -n 's/.*key generation \([0-9]*\).*/\1/p' "$T/$bot.rotate.out")
	[ "$gen" = 1 ] || fail "$bot: rotate says generation '$gen': $(cat "$T/$bot.rotate.out")"
	check botid_cli pubkey "$bot" --out "$T/$bot.new.pem"
	cmp -s "$T/$bot.old.pem" "$T/$bot.new.pem" && fail "$bot: the key did not change"
	# The chain served now is for the new key, from the same CA.
	check botid_cli cert "$bot" --out "$T/$bot.chain"
	check openssl verify -CAfile "$BOTID_CA_BUNDLE" "$T/$bot.chain"
	openssl x509 -in "$T/$bot.chain" -noout -pubkey >"$T/$bot.certpub"
	cmp -s "$T/$bot.certpub" "$T/$bot.new.pem" ||
	    fail "$bot: the certificate served is not for the new key"
	# Every signature verifies with the old or the new key, as timed.
	local n t0 t1 st old new before=0 after=0 total=0
	for i in 1 2 3; do
		out="$T/load-$bot-$i"
		while read -r n t0 t1 st; do
			total=$((total + 1))
			old=0 new=0
			openssl dgst -sha256 -verify "$T/$bot.old.pem" \
			    -signature "$out/$n.sig" "$T/msg" >/dev/null 2>&1 && old=1
			openssl dgst -sha256 -verify "$T/$bot.new.pem" \
			    -signature "$out/$n.sig" "$T/msg" >/dev/null 2>&1 && new=1
			[ $((old + new)) -eq 1 ] || fail "$bot: signature $n verifies with neither key"
			if [ "$(echo "$t1 < $t_start" | bc)" = 1 ]; then
				[ $old = 1 ] || fail "$bot: signature $n, made before the rotation, is not the old key's"
				before=$((before + 1))
			fi
			if [ "$(echo "$t0 > $t_end" | bc)" = 1 ]; then
				[ $new = 1 ] || fail "$bot: signature $n, asked after the rotation, is not the new key's"
				after=$((after + 1))
			fi
		done <"$out/log"
	done
	[ "$before" -ge 30 ] && [ "$after" -ge 30 ] ||
	    fail "$bot: too few signatures around the rotation ($before before, $after after)"
	echo "$bot: botid rotate took $(echo "$t_end - $t_start" | bc) s; $total signatures from 3 clients around it, none failed ($before before, $after after)"
}

# The old and new keys of tbot (TPM blobs) and pbot (token objects).
old_key_present() {
	case $1 in
	tbot) [ -f "$T/state/tpm/tbot.tss2.pem" ];;
	pbot) token_labels | grep -x 'botid:pbot' >/dev/null;;
	esac
}
new_key_present() {
	case $1 in
	tbot) [ -f "$T/state/tpm/tbot~1.tss2.pem" ];;
	pbot) token_labels | grep -x 'botid:pbot~1' >/dev/null;;
	esac
}
rotate_under_load tbot
old_tbot_serial=$OLD_SERIAL
rotate_under_load pbot
old_pbot_serial=$OLD_SERIAL

# After rotate_grace: old keys destroyed, old certificates revoked.
for _ in $(seq 1 $((GRACE * 10 + 100))); do
	[ ! -e "$T/state/tpm/tbot.tss2.pem" ] && ! token_labels | grep -x 'botid:pbot' >/dev/null &&
	    on_crl "$old_tbot_serial" && on_crl "$old_pbot_serial" && break
	sleep 0.1
done
[ ! -e "$T/state/tpm/tbot.tss2.pem" ] || fail "tbot's old blob is still there"
token_labels | grep -x 'botid:pbot' >/dev/null && fail "pbot's old key is still on the token"
on_crl "$old_tbot_serial" || fail "tbot's old certificate $old_tbot_serial is not on the CRL"
on_crl "$old_pbot_serial" || fail "pbot's old certificate $old_pbot_serial is not on the CRL"
crl_text | grep -A5 -i "${old_tbot_serial}" | grep -i superseded >/dev/null ||
    fail "the CRL does not say tbot's old certificate was superseded"
for bot in tbot pbot; do
	check botid_cli sign "$bot" --in "$T/msg" --out "$T/$bot.sig"
done

# Only an administrator may rotate (uid 0 here); others are refused. $T
# is opened to nobody for this (mktemp made it 0700), and the socket's
# group is nogroup, so that the refusal is the agent's, not the file
# system's: nobody reaches the socket (list answers) and hears the agent's
# "denied", which is audited; the key, its generation and its blobs stay
# as they were.
chmod 0755 "$T"
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
check as_nobody "$BOTID" --socket "$AGENT_SOCK" list >/dev/null
check botid_cli pubkey tbot --out "$T/tbot.before.pem"
tbot_gen() {
	botid_cli inventory --json | python3 -c '
import json, sys
print([b for b in json.load(sys.stdin) if b["name"] == "tbot"][0]["key_generation"])'
}
gen_before=$(tbot_gen)
tbot_blobs() {
	find "$T/state/tpm" -maxdepth 1 -name 'tbot*.tss2.pem' | sort
}
blobs_before=$(tbot_blobs)
audit_before=$(wc -l <"$AUDIT_LOG")
set +e
msg=$(as_nobody "$BOTID" --socket "$AGENT_SOCK" rotate tbot 2>&1)
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "nobody's rotate: exit $rc ($msg), want 3 (denied)"
[ "$msg" = "botid: rotate: denied" ] || fail "nobody's rotate said: $msg"
# denied_rotates: the audit lines since the attempt of a rotate of tbot:
# "denied by UID" each.
denied_rotates() {
	tail -n +"$((audit_before + 1))" "$AUDIT_LOG" | python3 -c '
import json, sys
for l in map(json.loads, sys.stdin):
    if l.get("op") == "rotate" and l.get("bot") == "tbot":
        print(l["result"], "by", l["uid"])'
}
for _ in $(seq 1 100); do
	[ -n "$(denied_rotates)" ] && break
	sleep 0.1
done
[ "$(denied_rotates)" = "denied by $(id -u nobody)" ] ||
    fail "the audit log has not one line of nobody's denied rotate: $(denied_rotates)"
check botid_cli pubkey tbot --out "$T/tbot.after.pem"
cmp -s "$T/tbot.before.pem" "$T/tbot.after.pem" ||
    fail "nobody's refused rotate changed tbot's key"
[ "$(tbot_gen)" = "$gen_before" ] ||
    fail "nobody's refused rotate moved tbot from generation $gen_before to $(tbot_gen)"
[ "$(tbot_blobs)" = "$blobs_before" ] ||
    fail "nobody's refused rotate made key blobs: $(tbot_blobs)"
chmod 0700 "$T"
echo "rotate: nobody reached the agent and was denied, audited; tbot unchanged (generation $gen_before)"
expect_fail botid_cli rotate no-such-bot

# --- rotate_every: rbot rotates by itself --------------------------------
for _ in $(seq 1 300); do
	gen=$(botid_cli inventory --json | python3 -c '
import json, sys
print([b for b in json.load(sys.stdin) if b["name"] == "rbot"][0]["key_generation"])')
	[ "$gen" -ge 1 ] && break
	sleep 0.1
done
[ "$gen" -ge 1 ] || fail "rbot was not rotated by rotate_every within 30 s"
echo "rbot: rotated by itself to generation $gen"

# --- SIGKILL at every step of a rotation ---------------------------------
# blobs BOT: how many key blobs the bot has.
blobs() {
	find "$T/state/tpm" -maxdepth 1 \( -name "$1.tss2.pem" -o -name "$1~*.tss2.pem" \) | wc -l
}
for step in rotate-pending rotate-created rotate-certified rotate-committed \
    retire-destroyed; do
	for bot in tbot pbot; do
		stop_agent
		# Not start_agent: the hook may fire before the agent answers
		# (rbot's retired keys are due at any time).
		BOTID_TEST_CRASH_AT=$step "$AGENT" -c "$AGENT_CONF" 2>>"$AGENT_LOG" &
		AGENT_PID=$!
		register_pid "$AGENT_PID"
		for _ in $(seq 1 600); do
			"$BOTID" --socket "$AGENT_SOCK" version >/dev/null 2>&1 && break
			kill -0 "$AGENT_PID" 2>/dev/null || break
			sleep 0.1
		done
		# retire-destroyed: the kill comes when an old key is destroyed.
		botid_cli rotate "$bot" >/dev/null 2>&1 || true
		for _ in $(seq 1 $((GRACE * 10 + 100))); do
			kill -0 "$AGENT_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$AGENT_PID" 2>/dev/null &&
		    fail "$step/$bot: the agent was not killed at $step"
		wait "$AGENT_PID" 2>/dev/null || true
		AGENT_PID=
		start_agent
		# rbot rotates by itself, maybe between its signature and
		# the key fetched after it: either key fetched around the
		# signature must verify it.
		botid_cli pubkey rbot --out "$T/rbot.pub0"
		for b in tbot pbot rbot; do
			botid_cli sign "$b" --in "$T/msg" --out "$T/$b.sig" ||
			    fail "after a SIGKILL at $step of $bot's rotation, $b cannot sign: $(tail -3 "$AGENT_LOG")"
			botid_cli pubkey "$b" --out "$T/$b.pub"
			openssl dgst -sha256 -verify "$T/$b.pub" \
			    -signature "$T/$b.sig" "$T/msg" >/dev/null 2>&1 ||
			    { [ "$b" = rbot ] && openssl dgst -sha256 -verify "$T/$b.pub0" \
			    -signature "$T/$b.sig" "$T/msg" >/dev/null 2>&1; } ||
			    fail "$step/$bot: $b's signature does not verify"
		done
		# An interrupted new key is cleaned up at start, old ones once
		# their grace is over: in the end one key each. Waited for, as
		# the retirement runs when the machine lets it.
		for _ in $(seq 1 $((GRACE * 10 + 600))); do
			[ "$(blobs tbot)" -eq 1 ] &&
			    [ "$(token_labels | grep -c '^botid:pbot' || true)" -eq 1 ] &&
			    break
			sleep 0.1
		done
		[ "$(blobs tbot)" -eq 1 ] ||
		    fail "$step/$bot: tbot has $(blobs tbot) key blobs: $(ls "$T/state/tpm")"
		n=$(token_labels | grep -c '^botid:pbot' || true)
		[ "$n" -eq 1 ] || fail "$step/$bot: pbot has $n token keys: $(token_labels)"
	done
	echo "SIGKILL at $step: every bot signs after a restart"
done

# --- A bot removed while it rotates: two writers of one state file -------
# The rotation of `race` stops (test hook) once its new key exists, holding
# the bot's state; a reload then removes the bot. The reload must not
# destroy the keys under the rotation, and the rotation's write must not
# undo the removal: in the end no key of race is left and its state goes.
write_conf gone race
stop_agent
BOTID_TEST_PAUSE_AT=rotate-created:race BOTID_TEST_PAUSE_FILE="$T/race.go" \
    start_agent
wait_cert race
botid_cli rotate race >"$T/race.rotate" 2>&1 &
race_pid=$!
register_pid "$race_pid"
for _ in $(seq 1 600); do
	grep -q 'BOTID_TEST_PAUSE_AT=rotate-created:race: waiting' "$AGENT_LOG" && break
	sleep 0.1
done
grep -q 'BOTID_TEST_PAUSE_AT=rotate-created:race: waiting' "$AGENT_LOG" ||
    fail "the rotation of race did not reach its new key: $(tail -3 "$AGENT_LOG")"
write_conf gone
kill -HUP "$AGENT_PID"
for _ in $(seq 1 600); do
	grep -q 'bot race: gone from the configuration; a rotation' "$AGENT_LOG" && break
	sleep 0.1
done
grep -q 'bot race: gone from the configuration; a rotation' "$AGENT_LOG" ||
    fail "the reload did not wait for the rotation: $(tail -3 "$AGENT_LOG")"
token_labels | grep -qx 'botid:race~1' ||
    fail "the reload destroyed the key the rotation is making"
touch "$T/race.go"
wait "$race_pid" || fail "the rotation of race failed: $(cat "$T/race.rotate")"
for _ in $(seq 1 600); do
	! token_labels | grep '^botid:race' >/dev/null &&
	    [ ! -e "$T/state/keys/race.json" ] && break
	sleep 0.1
done
n=$(token_labels | grep -c '^botid:race' || true)
[ "$n" -eq 0 ] || fail "race, removed while rotating, keeps $n keys: $(token_labels)"
[ ! -e "$T/state/keys/race.json" ] ||
    fail "race's state outlives its removal: $(cat "$T/state/keys/race.json")"
echo "race: removed while rotating; no key and no state left"

# --- A bot removed from the configuration --------------------------------
check botid_cli cert gone --out "$T/gone.chain"
gone_serial=$(serial_of "$T/gone.chain")
write_conf
kill -HUP "$AGENT_PID"
for _ in $(seq 1 100); do
	! token_labels | grep '^botid:gone' >/dev/null && on_crl "$gone_serial" &&
	    [ ! -e "$T/state/keys/gone.json" ] && break
	sleep 0.1
done
token_labels | grep '^botid:gone' >/dev/null && fail "the removed bot's key is still on the token"
on_crl "$gone_serial" || fail "the removed bot's certificate is not on the CRL"
[ ! -e "$T/state/keys/gone.json" ] || fail "the removed bot's state is left behind"
expect_fail botid_cli pubkey gone --out /dev/null

# --- Deprovisioning ------------------------------------------------------
host_id=$(sed -n 's/.*"host_id": *"\([0-9a-f]*\)".*/\1/p' "$T/state/attest/host.json")
set +e
botid_cli deprovision >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "deprovision without --yes: exit $rc, want 2"
check botid_cli cert tbot --out "$T/tbot.last"
last_serial=$(serial_of "$T/tbot.last")
check botid_cli deprovision --yes
deprovisioned
[ ! -e "$T/state/attest" ] || fail "attestation state left: $(ls "$T/state/attest")"
on_crl "$last_serial" || fail "tbot's last certificate is not on the CRL"
"$CA" inventory -c "$BOTID_CA_CONF" | grep "$host_id" | grep -i revoked >/dev/null ||
    fail "the CA does not list host $host_id as revoked: $("$CA" inventory -c "$BOTID_CA_CONF")"
grep -q 'deprovision.*ok' "$AUDIT_LOG" || fail "no audit entry for the deprovisioning"
echo "PASS: rotation, removal and deprovisioning"
