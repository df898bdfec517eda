# shellcheck shell=bash
# A PostgreSQL server of the test's own, sourced after common.sh: Debian's
# binaries (PG_BIN, default /usr/lib/postgresql/15/bin), a cluster made by initdb in $T/pg
# owned by the postgres user, on 127.0.0.1 at a free port with its socket
# in $T/pg, trust authentication (only for the test), stopped at exit. No
# system cluster is used or touched.
#
#   start_postgres          # sets BOTID_TEST_PG (for start_ca) and PG_PORT
#   pg_sql DB 'SQL'         # prints the rows, unaligned, |-separated
#   pg_database NAME        # makes a database for NAME if needed, prints
#                           # its URI (NAME with $T's name, one per run)

: "${PG_BIN:=/usr/lib/postgresql/15/bin}"

# as_postgres CMD...: runs CMD as the postgres user (we may be root).
as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	else
		"$@"
	fi
}

_free_port() {
	"${PYTHON3:-/usr/bin/python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

start_postgres() {
	local dir="$T/pg" i
	[ -x "$PG_BIN/initdb" ] ||
	    fail "no $PG_BIN/initdb: install the Debian package postgresql"
	chmod 711 "$T"
	mkdir -p "$dir/sock"
	[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$dir"
	as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
	    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
	    fail "initdb failed: $(tail -3 "$dir/initdb.log")"
	for i in 1 2 3 4 5; do
		PG_PORT=$(_free_port)
		if as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
		    -w -t 30 -o "-p $PG_PORT -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" \
		    start >"$dir/pg_ctl.log" 2>&1; then
			break
		fi
		[ "$i" -lt 5 ] || fail "postgres did not start: $(tail -3 "$dir/server.log")"
	done
	register_cleanup _stop_postgres "$dir"
	BOTID_TEST_PG="postgresql://postgres@127.0.0.1:$PG_PORT"
	export BOTID_TEST_PG
}

_stop_postgres() {
	as_postgres "$PG_BIN/pg_ctl" -D "$1/data" -m immediate -w stop \
	    >/dev/null 2>&1
}

pg_sql() {
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -A -t \
	    "$BOTID_TEST_PG/$1" -c "$2"
}

pg_database() {
	local name
	# Unique per test run: several tests may share one server.
	name=$(printf '%s_%s' "${T##*/}" "$1" | tr 'A-Z' 'a-z' |
	    tr -c 'a-z0-9_\n' '_')
	if [ "$(pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]; then
		pg_sql postgres "CREATE DATABASE $name" >/dev/null ||
		    fail "cannot create database $name"
	fi
	echo "$BOTID_TEST_PG/$name"
}
