#!/bin/bash
# The two README commands: `./dev.sh demo` sets everything up and runs the
# main job end to end; `./dev.sh test` sets everything up and runs the whole
# test suite. Both work from a fresh clone on Debian 12 as root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

usage() {
	echo "usage: ./dev.sh demo|test|build" >&2
	echo "  demo   install dependencies, build, run the end-to-end demo" >&2
	echo "  test   install dependencies, build with -Werror, run make check" >&2
	echo "  build  install dependencies and build only" >&2
	echo "  package  build the Debian packages from the committed tree," >&2
	echo "         install them, run the main job with them, purge them" >&2
}

build() {
	scripts/install-deps
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		autoreconf -fi >/dev/null
	fi
	if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
		./configure -q --enable-werror
	fi
	make -s -j"$(nproc)"
}

case "${1:-}" in
demo)
	build
	exec scripts/demo
	;;
test)
	build
	make -s -j"$(nproc)" check
	;;
build)
	build
	;;
package)
	scripts/install-deps
	exec scripts/package-check
	;;
-h|--help|help)
	usage
	;;
*)
	usage
	exit 2
	;;
esac
