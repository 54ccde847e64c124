#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build and install the mmk selftests as a kselftest target of a kernel
# tree, the way kernel CI (KernelCI, LKFT) builds and runs kselftests.
#
# usage: scripts/kselftest-install.sh [INSTALL_PATH]
#
# The kselftest part of Debian's linux-source-6.1 tarball (the selftests
# framework, lib.mk, run_kselftest.sh and what its Makefile includes) is
# extracted once into build/ksft/linux-KEY, KEY naming the tarball, and
# reused.  The mmk selftests are copied in, each time afresh, as
# tools/testing/selftests/drivers/misc/mmk/ (selftests/Makefile.kselftest
# as its Makefile, the settings file, libmmk's sources, the uAPI headers),
# and then
#
#   make -C tools/testing/selftests TARGETS=drivers/misc/mmk install INSTALL_PATH=...
#
# builds them with the tree's lib.mk and installs them into INSTALL_PATH
# (default build/ksft/install): run_kselftest.sh, kselftest/,
# kselftest-list.txt and drivers/misc/mmk/.
#
# Environment: LINUX_SOURCE_TARBALL (default: /usr/src/linux-source-6.1.tar.xz)

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
install=${1:-$top/build/ksft/install}
target=drivers/misc/mmk

tarball=${LINUX_SOURCE_TARBALL:-}
if [ -z "$tarball" ]; then
	for t in /usr/src/linux-source-6.1.tar.xz /usr/src/linux-source-6.1.tar.*; do
		[ -f "$t" ] && { tarball=$t; break; }
	done
fi
[ -n "$tarball" ] && [ -f "$tarball" ] ||
	{ echo "kselftest-install: no linux-source tarball; run 'make deps'" >&2; exit 1; }

key=$(stat -c '%s-%Y' "$tarball")
tree=$top/build/ksft/linux-$key
if [ ! -f "$tree/.extracted" ]; then
	rm -rf "$top"/build/ksft/linux-*
	mkdir -p "$top/build/ksft"
	tmp=$(mktemp -d "$top/build/ksft/.extract.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "  EXTRACT the kselftest framework from $tarball"
	# What 'make -C tools/testing/selftests TARGETS=... install' reads
	# outside the target itself.
	tar -xf "$tarball" -C "$tmp" --strip-components=1 --wildcards \
		'*/tools/testing/selftests/Makefile' \
		'*/tools/testing/selftests/lib.mk' \
		'*/tools/testing/selftests/kselftest_harness.h' \
		'*/tools/testing/selftests/kselftest.h' \
		'*/tools/testing/selftests/run_kselftest.sh' \
		'*/tools/testing/selftests/kselftest/*' \
		'*/scripts/subarch.include'
	touch "$tmp/.extracted"
	mv "$tmp" "$tree"
	trap - EXIT
fi

dir=$tree/tools/testing/selftests/$target
rm -rf "$dir" "$install"
mkdir -p "$dir/libmmk/include/mmk" "$dir/libmmk/src" "$dir/libmmk/tests" "$dir/uapi/linux"
cp "$top"/selftests/*.c "$top"/selftests/*.h "$top/selftests/settings" \
	"$top/selftests/programs.mk" "$dir/"
cp "$top/selftests/Makefile.kselftest" "$dir/Makefile"
cp "$top"/lib/src/*.c "$top"/lib/src/*.h "$dir/libmmk/src/"
cp "$top/lib/include/mmk/mmk.h" "$dir/libmmk/include/mmk/"
cp "$top"/lib/tests/*.c "$top"/lib/tests/*.h "$dir/libmmk/tests/"
cp "$top"/uapi/linux/*.h "$dir/uapi/linux/"

# make's own variables from a parent make would leak into the tree's.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -j"$(nproc)" -C "$tree/tools/testing/selftests" TARGETS="$target" \
	INSTALL_PATH="$install" install
echo "kselftest-install: installed in $install"
