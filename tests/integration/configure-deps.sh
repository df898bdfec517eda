#!/bin/bash
# A missing library stops ./configure with one line naming the Debian
# package to install. Each library is hidden in turn by giving pkg-config a
# directory that holds every .pc file but its own.
set -euo pipefail
. "$top_srcdir/tests/integration/common.sh"
botid_setup

# configure refuses to build out of a configured source tree, so it runs
# from a bare copy of what it needs before its first error.
mkdir -p "$T/src/lib"
cp "$top_srcdir/configure" "$T/src/"
cp -R "$top_srcdir/build-aux" "$T/src/"
cp "$top_srcdir/lib/buf.c" "$T/src/lib/"

pc_path=$(pkg-config --variable pc_path pkg-config)

# without MODULE: a pkg-config directory with every module except MODULE.
without() {
	local d="$T/pc-$1" dir f
	mkdir -p "$d"
	IFS=: read -r -a dirs <<<"$pc_path"
	for dir in "${dirs[@]}"; do
		for f in "$dir"/*.pc; do
			[ -f "$f" ] || continue
			[ "$(basename "$f" .pc)" = "$1" ] && continue
			ln -sf "$f" "$d/"
		done
	done
	echo "$d"
}

for pair in tss2-esys:libtss2-dev libcrypto:libssl-dev libp11:libp11-dev \
    inih:libinih-dev jansson:libjansson-dev cmocka:libcmocka-dev \
    libpq:libpq-dev; do
	mod=${pair%%:*} pkg=${pair#*:}
	dir=$(without "$mod")
	mkdir "$T/build-$mod"
	rc=0
	(cd "$T/build-$mod" && PKG_CONFIG_LIBDIR="$dir" PKG_CONFIG_PATH= \
	    "$T/src/configure" -q >"$T/$mod.out" 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "configure succeeded without $mod"
	line=$(grep 'configure: error:' "$T/$mod.out" || true)
	[ "$(wc -l <<<"$line")" -eq 1 ] || fail "$mod: expected one error line, got: $line"
	case $line in
	*"$mod"*"apt-get install $pkg"*) echo "$mod: $line" ;;
	*) fail "$mod: the error does not name $pkg: $line" ;;
	esac
done
echo "PASS: each missing library names its Debian package"
