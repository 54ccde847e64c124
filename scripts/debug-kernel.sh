#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (once) and locate a debug guest kernel for the mmk tests: Debian's
# linux-source-6.1, 'make tinyconfig' plus scripts/debug-kernel.config
# (KASAN, lockdep, UBSAN, kmemleak, fault injection, ...).  The tree is kept
# built ('make bzImage modules') so that it can serve as KDIR for building
# mmk.ko against it.
#
# usage: scripts/debug-kernel.sh [print-kdir|print-image|build]
#
#   print-kdir   print the kernel tree to build modules against (KDIR)
#   print-image  print the bzImage to boot (MMK_KERNEL for guest-run.sh)
#   build        build it if needed (the default)
#
# Each command builds the kernel first if no usable cached build exists.
# Progress goes to stderr; stdout gets only the path asked for.  Example:
#
#   make module KDIR=$(scripts/debug-kernel.sh print-kdir)
#   MMK_KERNEL=$(scripts/debug-kernel.sh print-image) scripts/guest-run.sh check
#
# The build is cached outside the source tree, in
# $MMK_CACHE_DIR/debug-kernel-<key>/ (MMK_CACHE_DIR defaults to
# /var/cache/mmk).  <key> is a hash of the linux-source-6.1 package version,
# the compiler and linker versions, this script's build recipe version and
# the fragment's content, so changing any of them builds a new kernel (old
# ones are not removed: delete $MMK_CACHE_DIR/debug-kernel-* by hand).  A
# kernel is built in a temporary directory and renamed into place only when
# complete, under a lock, so an interrupted or concurrent build never leaves
# a half-built tree where the next run would use it.
#
# Environment (all optional):
#   MMK_CACHE_DIR      cache directory (default: /var/cache/mmk)
#   MMK_KERNEL_JOBS    parallel make jobs (default: nproc)
#   MMK_KERNEL_VERBOSE 1: copy the kernel build's output to stderr (it always
#                      goes to $MMK_CACHE_DIR/debug-kernel-<key>.log)
#
# Needs: linux-source-6.1, gcc, make, flex, bison, bc, perl, xz-utils and
# libelf-dev (objtool).  Exit status: 0 on success, 1 if the build failed,
# 2 for a usage or setup error.

set -euo pipefail

# Bump when the way the kernel is built changes (not the fragment: its
# content is part of the key already).
RECIPE=1
PKG=linux-source-6.1
TARBALL=/usr/src/$PKG.tar.xz

say() {
	echo "debug-kernel: $*" >&2
}
die() {
	say "error: $*"
	exit 2
}

cmd=${1:-build}
case $cmd in
print-kdir | print-image | build) ;;
-h | --help | help)
	sed -n '/^# usage:/,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 0
	;;
*)
	echo "usage: $0 [print-kdir|print-image|build]" >&2
	exit 2
	;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
fragment=$top/scripts/debug-kernel.config
cache=${MMK_CACHE_DIR:-/var/cache/mmk}
jobs=${MMK_KERNEL_JOBS:-$(nproc)}

[ "$(uname -m)" = x86_64 ] || die "only x86_64 hosts are supported (this is $(uname -m))"
[ -f "$fragment" ] || die "$fragment not found"

# ---- cache key -----------------------------------------------------------------

pkg_version=$(dpkg-query -W -f='${Version}' "$PKG" 2>/dev/null || true)
if [ -z "$pkg_version" ] || [ ! -f "$TARBALL" ]; then
	die "$PKG is not installed (apt-get install $PKG)"
fi
for tool in gcc ld make; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (apt-get install build-essential)"
done
key=$({
	echo "recipe $RECIPE"
	echo "$PKG $pkg_version"
	gcc --version | head -n 1
	ld --version | head -n 1
	cat "$fragment"
} | sha256sum | cut -c1-16)

final=$cache/debug-kernel-$key
image=$final/arch/x86/boot/bzImage
stamp=$final/.mmk-debug-kernel
log=$cache/debug-kernel-$key.log

# A cached build is used only if it is complete: the stamp is written last,
# before the tree is renamed into place.
usable() {
	[ -f "$stamp" ] && [ -f "$image" ] && [ -f "$final/Module.symvers" ] &&
		[ -f "$final/.config" ]
}

print_result() {
	case $cmd in
	print-kdir) echo "$final" ;;
	print-image) echo "$image" ;;
	build)
		say "kernel tree (KDIR): $final"
		say "image: $image"
		;;
	esac
}

if usable; then
	print_result
	exit 0
fi

# ---- build -------------------------------------------------------------------------

missing=()
for tool in flex bison bc perl xz tar flock; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
echo '#include <libelf.h>' | gcc -E -x c - >/dev/null 2>&1 || missing+=("libelf.h")
[ "${#missing[@]}" -eq 0 ] ||
	die "missing build tools: ${missing[*]} (apt-get install flex bison bc perl xz-utils libelf-dev)"

mkdir -p "$cache" 2>/dev/null || true
if [ ! -d "$cache" ] || [ ! -w "$cache" ]; then
	die "cannot write to the cache directory $cache (run as root, or set MMK_CACHE_DIR)"
fi

# One build per key at a time; whoever waited finds the finished build.
exec 9>"$cache/.debug-kernel-$key.lock"
if ! flock -n 9; then
	say "waiting for another build of $final to finish"
	flock 9
fi
if usable; then
	print_result
	exit 0
fi

# Holding the lock: any temporary tree or incomplete final tree for this key
# is left over from an interrupted build.
rm -rf "$cache/.debug-kernel-$key".tmp.* "$final"

tmp=$(mktemp -d "$cache/.debug-kernel-$key.tmp.XXXXXX")
# mktemp made it private; other users build modules against it too.
chmod 0755 "$tmp"
cleanup() {
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

: >"$log"
t_start=$(date +%s)
elapsed() {
	echo "$(($(date +%s) - t_start)) s"
}
# run DESCRIPTION COMMAND...: its output goes to the log (and to stderr with
# MMK_KERNEL_VERBOSE=1); on failure, the end of the log is shown.
run() {
	local what=$1 rc=0
	shift
	say "$what ($(elapsed))"
	echo "+ $*" >>"$log"
	if [ "${MMK_KERNEL_VERBOSE:-0}" = 1 ]; then
		"$@" 2>&1 | tee -a "$log" >&2 || rc=${PIPESTATUS[0]}
	else
		"$@" >>"$log" 2>&1 || rc=$?
	fi
	if [ "$rc" -ne 0 ]; then
		say "error: '$*' failed (exit $rc); last lines of $log:"
		tail -n 40 "$log" >&2
		exit 1
	fi
}

say "building a debug kernel from $PKG $pkg_version into $final"
say "(takes several minutes; with $jobs jobs; log: $log)"

run "extracting $TARBALL" tar -xJf "$TARBALL" -C "$tmp" --strip-components=1
if [ ! -f "$tmp/Makefile" ] || [ ! -f "$tmp/scripts/kconfig/merge_config.sh" ]; then
	die "$TARBALL does not hold a kernel tree"
fi

# The kernel build must not see what a calling make passes down (MAKEFLAGS
# carries command-line variables such as M= or W=), nor the user's kbuild
# environment.
kmake=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u GNUMAKEFLAGS
	-u KBUILD_OUTPUT -u KBUILD_EXTMOD -u KCONFIG_CONFIG -u CROSS_COMPILE
	-u KCFLAGS -u KCPPFLAGS -u KAFLAGS -u LLVM -u CC
	make --no-print-directory -C "$tmp" ARCH=x86_64 LOCALVERSION=)
run "make tinyconfig" "${kmake[@]}" tinyconfig
run "merging $(basename "$fragment")" \
	sh "$tmp/scripts/kconfig/merge_config.sh" -m -O "$tmp" "$tmp/.config" "$fragment"
run "make olddefconfig" "${kmake[@]}" olddefconfig

# Every option the fragment sets must have survived olddefconfig with the
# value asked for: Kconfig silently drops options whose dependencies are off.
bad=()
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		sym=${line%%=*}
		if ! grep -qxF -- "$line" "$tmp/.config"; then
			got=$(grep -m1 "^$sym=" "$tmp/.config" || true)
			bad+=("$line (got: ${got:-not set})")
		fi
		;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }
		sym=${sym%% *}
		if got=$(grep -m1 "^$sym=" "$tmp/.config"); then
			bad+=("$line (got: $got)")
		fi
		;;
	esac
done <"$fragment"
if [ "${#bad[@]}" -ne 0 ]; then
	cp "$tmp/.config" "$cache/debug-kernel-$key.config.rejected"
	say "error: ${#bad[@]} option(s) of $fragment did not end up in .config"
	say "(a dependency is missing from the fragment, or the option does not exist):"
	printf '  %s\n' "${bad[@]}" >&2
	say "the resulting .config is in $cache/debug-kernel-$key.config.rejected"
	exit 1
fi

run "make -j$jobs bzImage modules" "${kmake[@]}" -j"$jobs" bzImage modules

if [ ! -f "$tmp/arch/x86/boot/bzImage" ] || [ ! -f "$tmp/Module.symvers" ]; then
	say "error: the build finished without a bzImage or Module.symvers"
	exit 1
fi
release=$("${kmake[@]}" -s kernelrelease)
{
	echo "release=$release"
	echo "source=$PKG $pkg_version"
	echo "recipe=$RECIPE"
	echo "key=$key"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$tmp/.mmk-debug-kernel"

# rename(2): the tree appears complete or not at all.  -T: never move it
# inside an existing directory.
mv -T "$tmp" "$final"
trap - EXIT
say "built $release in $(elapsed)"
print_result
