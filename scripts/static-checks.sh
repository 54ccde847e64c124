#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Static checks of the kernel code, as TAP (one test per check):
#
#   checkpatch   checkpatch.pl --strict on kmod/ and uapi/ reports nothing
#   build KVER   the module builds against KVER's headers with W=1 and
#                sparse (C=2) without a single warning, for every kernel
#                in MMK_STATIC_KVERS (default: every installed *-cloud-amd64
#                kernel with headers)
#
# checkpatch.pl comes from Debian's linux-source tarball, like the
# kselftest headers.  The builds run in a private copy of the sources, so
# the tree's own kmod/*.o are left alone.
#
# usage: scripts/static-checks.sh

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cpdir=$top/build/checkpatch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n $1"
}
not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n $1"
}

# ---- checkpatch ----------------------------------------------------------------

extract_checkpatch() {
	local tarball tmp f
	[ -s "$cpdir/checkpatch.pl" ] && return 0
	tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1)
	[ -n "$tarball" ] || return 1
	mkdir -p "$cpdir"
	tmp=$(mktemp -d "$cpdir/.extract.XXXXXX")
	tar -xf "$tarball" -C "$tmp" --wildcards --occurrence=1 \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch' || { rm -rf "$tmp"; return 1; }
	for f in checkpatch.pl spelling.txt const_structs.checkpatch; do
		cp "$(find "$tmp" -name "$f" -type f | head -n 1)" "$cpdir/$f.new"
	done
	for f in checkpatch.pl spelling.txt const_structs.checkpatch; do
		mv -f "$cpdir/$f.new" "$cpdir/$f"
	done
	rm -rf "$tmp"
}

cd "$top" || exit 2
if extract_checkpatch; then
	# Sources only: not kbuild's generated mmk.mod.c.
	files=$(ls kmod/*.c kmod/*.h uapi/linux/*.h | grep -v '\.mod\.c$')
	# shellcheck disable=SC2086
	out=$(perl "$cpdir/checkpatch.pl" --no-tree --strict --terse --show-types \
		-f $files 2>&1 | grep -E 'ERROR|WARNING|CHECK')
	if [ -z "$out" ]; then
		ok "checkpatch --strict kmod uapi"
	else
		echo "$out" | sed 's/^/# /'
		not_ok "checkpatch --strict kmod uapi"
	fi
else
	echo "# no linux-source tarball to take checkpatch.pl from (run 'make deps')"
	not_ok "checkpatch --strict kmod uapi"
fi

# ---- W=1 and sparse against every supported kernel ------------------------------

kvers=${MMK_STATIC_KVERS:-}
if [ -z "$kvers" ]; then
	for d in /lib/modules/*-cloud-amd64; do
		[ -d "$d/build" ] && kvers="$kvers ${d##*/}"
	done
fi
if [ -z "$kvers" ]; then
	echo "# no kernel headers installed (run 'make deps')"
	not_ok "build W=1 C=2"
fi
if ! command -v sparse >/dev/null; then
	echo "# sparse is not installed (run 'make deps')"
fi
for kver in $kvers; do
	src=$work/$kver
	mkdir -p "$src"
	cp -a Kbuild kmod uapi "$src/"
	rm -f "$src"/kmod/*.o "$src"/kmod/*.ko "$src"/kmod/.*.cmd
	log=$src/build.log
	# Compiler and sparse diagnostics only, not make's own (jobserver) notes.
	if make -C "/lib/modules/$kver/build" M="$src" W=1 C=2 modules >"$log" 2>&1 &&
	   ! grep -E 'warning:|error:' "$log" | grep -qv '^make' && command -v sparse >/dev/null; then
		ok "build W=1 C=2 $kver"
	else
		grep -E 'warning:|error:|Error' "$log" | sed "s|$src/||; s/^/# /" | head -n 40
		not_ok "build W=1 C=2 $kver"
	fi
done

echo "1..$n"
exit "$failed"
