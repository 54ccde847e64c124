#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the Debian packages (debian/) and check them with lintian.
#
# usage: scripts/deb-build.sh [OUTDIR]
#
# The source tree (the files git knows, or every file outside build/ when
# this is not a git checkout) is copied to OUTDIR/src/mmk-VERSION, so that
# no build output of the working tree gets in, and nothing is written
# beside it; 'dpkg-buildpackage -us -uc -b' runs there.  The .deb files,
# the .buildinfo and .changes files and lintian's report (lintian.txt)
# end up in OUTDIR (default build/deb).  Exit status: non-zero if the
# build failed or lintian reported an error.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/deb}
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
src=$out/src/mmk-$version

rm -rf "$out"
mkdir -p "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' |
		rsync -a --from0 --files-from=- ./ "$src/")
else
	rsync -a --exclude=/build/ --exclude='*.o' --exclude='*.ko' "$top/" "$src/"
fi

# make's variables from a parent make would leak into debian/rules.
(cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b)
mv "$out"/src/*.deb "$out"/src/*.buildinfo "$out"/src/*.changes "$out/"
rm -rf "$out/src"

changes=$(ls "$out"/*.changes)
set +e
lintian --no-tag-display-limit --info --display-info "$changes" >"$out/lintian.txt" 2>&1
lrc=$?
set -e
cat "$out/lintian.txt"
echo "deb-build: packages in $out:"
ls -1 "$out"/*.deb
if grep -q '^E: ' "$out/lintian.txt" || [ "$lrc" -ge 2 ]; then
	echo "deb-build: lintian reported errors" >&2
	exit 1
fi
echo "deb-build: lintian: $(grep -c '^E: ' "$out/lintian.txt") errors, $(grep -c '^W: ' "$out/lintian.txt") warnings"
