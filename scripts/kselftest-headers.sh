#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract the kselftest harness headers (kselftest_harness.h, kselftest.h)
# from Debian's linux-source tarball into DEST (default: build/kselftest).
# Nothing is done if both headers are already there.
#
# usage: scripts/kselftest-headers.sh [DEST]
#   LINUX_SOURCE_TARBALL  tarball to read (default: newest /usr/src/linux-source-6.1.tar.*)

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$top/build/kselftest}
headers=(kselftest_harness.h kselftest.h)

have_all=1
for h in "${headers[@]}"; do
	[ -s "$dest/$h" ] || have_all=0
done
if [ "$have_all" = 1 ]; then
	exit 0
fi

tarball=${LINUX_SOURCE_TARBALL:-}
if [ -z "$tarball" ]; then
	for t in /usr/src/linux-source-6.1.tar.xz /usr/src/linux-source-6.1.tar.*; do
		if [ -f "$t" ]; then
			tarball=$t
			break
		fi
	done
fi
if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
	echo "kselftest-headers: no linux-source tarball found in /usr/src" >&2
	echo "kselftest-headers: install it with 'make deps' (package linux-source-6.1)" >&2
	exit 1
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "  EXTRACT ${headers[*]} from $tarball into $dest"
members=()
for h in "${headers[@]}"; do
	members+=("*/tools/testing/selftests/$h")
done
# --occurrence stops reading the archive once every member has been found.
tar -xf "$tarball" -C "$tmp" --wildcards --occurrence=1 "${members[@]}"

for h in "${headers[@]}"; do
	f=$(find "$tmp" -path "*/tools/testing/selftests/$h" -type f | head -n 1)
	if [ -z "$f" ]; then
		echo "kselftest-headers: $h not found in $tarball" >&2
		exit 1
	fi
	cp "$f" "$tmp/$h"
done
# Move into place last, so an interrupted run leaves nothing half-done.
for h in "${headers[@]}"; do
	mv -f "$tmp/$h" "$dest/$h"
done
