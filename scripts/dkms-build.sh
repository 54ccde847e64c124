#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build mmk.ko with DKMS, from dkms.conf, for one installed kernel, the way
# the mmk-dkms package has DKMS build it on a real host.
#
# usage: scripts/dkms-build.sh KVER OUTDIR
#
# Everything DKMS keeps goes into a private tree under OUTDIR (--sourcetree
# and --dkmstree): nothing is added to /usr/src or /var/lib/dkms, and
# nothing is installed into /lib/modules.  The only state outside OUTDIR
# is DKMS's own module signing key, /var/lib/dkms/mok.key, which DKMS
# creates on its first build on a machine, as it would for any package.
# Each run starts from an empty OUTDIR tree, adds, builds and removes the
# module, so it can be repeated.  The module is left in OUTDIR/mmk.ko; the
# last line printed is its path.

set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 KVER OUTDIR" >&2; exit 2; }
kver=$1
out=$2
top=$(cd "$(dirname "$0")/.." && pwd)

command -v dkms >/dev/null 2>&1 || { echo "dkms-build: dkms not found; run 'make deps'" >&2; exit 1; }
[ -d "/lib/modules/$kver/build" ] || { echo "dkms-build: no headers for $kver" >&2; exit 1; }

name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"$/\1/p' "$top/dkms.conf")
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
[ -n "$name" ] && [ -n "$version" ] || { echo "dkms-build: cannot read dkms.conf" >&2; exit 1; }

rm -rf "$out/src" "$out/tree" "$out/mmk.ko"
mkdir -p "$out/src/$name-$version" "$out/tree"
# What the mmk-dkms package installs in /usr/src/mmk-VERSION.
cp -a "$top/dkms.conf" "$top/Kbuild" "$top/kmod" "$top/uapi" "$out/src/$name-$version/"
(cd "$out/src/$name-$version/kmod" &&
	rm -f ./*.o ./*.ko ./*.mod ./*.mod.c ./.*.cmd ./modules.order ./Module.symvers)

dkms=(dkms --sourcetree "$out/src" --dkmstree "$out/tree")
"${dkms[@]}" add -m "$name" -v "$version"
if ! "${dkms[@]}" build -m "$name" -v "$version" -k "$kver"; then
	cat "$out/tree/$name/$version/build/make.log" 2>/dev/null | tail -n 30 || true
	exit 1
fi
built=$out/tree/$name/$version/$kver/$(uname -m)/module
ko=$(find "$built" -name "$name.ko*" | head -n 1)
[ -n "$ko" ] || { echo "dkms-build: dkms built no $name.ko in $built" >&2; exit 1; }
case $ko in
*.xz) xz -dc "$ko" >"$out/mmk.ko" ;;
*.zst) zstd -qdc "$ko" >"$out/mmk.ko" ;;
*.gz) gzip -dc "$ko" >"$out/mmk.ko" ;;
*) cp "$ko" "$out/mmk.ko" ;;
esac
cp "$out/tree/$name/$version/$kver/$(uname -m)/log/make.log" "$out/make.log" 2>/dev/null || true
"${dkms[@]}" remove -m "$name" -v "$version" --all >/dev/null
rm -rf "$out/src" "$out/tree"
echo "$out/mmk.ko"
