#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages of build/deb into a fresh Debian 12 root and
# build an outside program against them there, as TAP (one test per step):
#
#   root       a Debian 12 (bookworm) minbase root from debootstrap; its
#              tarball is cached in MMK_CACHE (default /var/cache/mmk),
#              keyed by suite, mirror and date, so that later runs of the
#              same day only unpack it
#   install    apt-get install of every package (./*.deb, without
#              recommends) and a C compiler and pkg-config, in the root
#   contents   the installed files: header, libraries, mmk.pc, mmkctl
#              and its man page, the DKMS source and dkms.conf, the udev
#              rule, group mmk
#   link       a program outside the tree, written here, compiled and
#              linked with 'pkg-config --cflags --libs mmk' against the
#              shared library, and once more with --static
#   run        each program runs in the root: it stores and reads a
#              message through libmmk's heap backend, which needs no
#              module
#
# The module is never loaded: DKMS in the root finds no kernel headers and
# builds nothing.  The root is deleted at the end.
#
# usage: scripts/deb-check.sh [DEBDIR]     (default build/deb; run as root)
# Environment: MMK_CACHE, MMK_DEB_MIRROR (default: the first deb.debian.org
# style URI of the machine's apt sources, else http://deb.debian.org/debian)

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
debs=${1:-$top/build/deb}
cache=${MMK_CACHE:-/var/cache/mmk}
suite=bookworm
mirror=${MMK_DEB_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources \
		2>/dev/null | head -n 1)
	mirror=${mirror:-http://deb.debian.org/debian}
fi

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n $1"; }
finish() { echo "1..$n"; exit "$failed"; }

log=$(mktemp)
root=
cleanup() {
	if [ -n "$root" ]; then
		for m in proc dev/pts dev; do
			umount "$root/$m" 2>/dev/null
		done
		rm -rf "$root"
	fi
	rm -f "$log"
}
trap cleanup EXIT
show_log() { tail -n 30 "$log" | sed 's/^/# /'; }

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root (debootstrap, chroot)"
	exit 0
fi
shopt -s nullglob
pkgs=("$debs"/*.deb)
shopt -u nullglob
if [ "${#pkgs[@]}" -eq 0 ]; then
	not_ok "packages: none in $debs (run 'make deb')"
	finish
fi
for t in debootstrap chroot; do
	command -v "$t" >/dev/null 2>&1 || { not_ok "root: $t not found (run 'make deps')"; finish; }
done

# ---- root ------------------------------------------------------------------------
mkdir -p "$cache"
key=$(printf '%s' "$mirror" | md5sum | cut -c1-8)
tarball=$cache/debootstrap-$suite-$key-$(date +%Y%m%d).tar.gz
root=$(mktemp -d "${TMPDIR:-/tmp}/mmk-deb-root.XXXXXX")
if [ ! -s "$tarball" ]; then
	echo "# debootstrap $suite from $mirror into $tarball"
	rm -f "$cache"/debootstrap-$suite-"$key"-*.tar.gz
	if debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$log" 2>&1 &&
		tar -C "$root" -czf "$tarball.tmp" . && mv -f "$tarball.tmp" "$tarball"; then
		:
	else
		show_log
		rm -f "$tarball.tmp"
		not_ok "root: debootstrap $suite"
		finish
	fi
	rm -rf "$root"
	mkdir -p "$root"
fi
if tar -C "$root" -xzf "$tarball" && [ -x "$root/usr/bin/apt-get" ]; then
	ok "root: Debian $(cat "$root/etc/debian_version") from $(basename "$tarball")"
else
	not_ok "root: unpack $tarball"
	rm -f "$tarball"
	finish
fi
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
mkdir -p "$root/tmp/debs"
cp "${pkgs[@]}" "$root/tmp/debs/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive HOME=/root LC_ALL=C "$@"; }

# ---- install ------------------------------------------------------------------
# The packages themselves, not their -dbgsym companions.
names=()
for p in "$root"/tmp/debs/*.deb; do
	case $p in *-dbgsym_*) continue ;; esac
	names+=("/tmp/debs/$(basename "$p")")
done
if in_root apt-get update >"$log" 2>&1 &&
	in_root apt-get install -y --no-install-recommends "${names[@]}" gcc libc6-dev pkg-config \
		>>"$log" 2>&1; then
	ok "install: ${#names[@]} packages with apt-get"
else
	show_log
	not_ok "install: apt-get install of the packages"
	finish
fi

# ---- contents -------------------------------------------------------------------
ma=$(in_root dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
version=$(in_root dpkg-query -W -f='${Version}' mmk-dkms 2>/dev/null | sed 's/-[^-]*$//')
missing=
for f in /usr/include/mmk/mmk.h "/usr/lib/$ma/libmmk.so.0" "/usr/lib/$ma/libmmk.so" \
	"/usr/lib/$ma/libmmk.a" "/usr/lib/$ma/pkgconfig/mmk.pc" /usr/sbin/mmkctl \
	/usr/share/man/man8/mmkctl.8.gz "/usr/src/mmk-$version/dkms.conf" \
	"/usr/src/mmk-$version/kmod/mmk_main.c" /lib/udev/rules.d/60-mmk.rules; do
	[ -e "$root$f" ] || missing="$missing $f"
done
in_root getent group mmk >/dev/null || missing="$missing group:mmk"
in_root dkms status 2>/dev/null | grep -q "^mmk/$version" || missing="$missing dkms:mmk/$version"
if [ -z "$missing" ]; then
	ok "contents: library, header, mmk.pc, mmkctl, DKMS source (mmk/$version), udev rule, group mmk"
else
	not_ok "contents: missing$missing"
fi
in_root mmkctl --help >/dev/null 2>&1
rc=$?
# mmkctl's usage exits 0 or 2; 127 means it cannot even run.
if [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]; then
	ok "contents: mmkctl runs (its libraries are there)"
else
	not_ok "contents: mmkctl does not run (exit $rc)"
fi

# ---- link and run ------------------------------------------------------------------
mkdir -p "$root/tmp/outside"
cat >"$root/tmp/outside/prog.c" <<'PROG'
/* An outside program: libmmk's heap backend, which needs no module. */
#include <stdio.h>
#include <string.h>
#include <mmk/mmk.h>

int main(void)
{
	struct mmk_config cfg = { .payload_size = 16, .capacity = 4 };
	struct mmk_manager *m;
	struct mmk_read_guard r;
	uint64_t tok;

	if (mmk_heap_create(&cfg, &m) || mmk_store(m, NULL, "outside", 8, &tok) ||
	    mmk_read(m, tok, &r))
		return 1;
	printf("%s %s\n", mmk_version(), (const char *)r.msg->payload);
	if (mmk_read_release(&r) || mmk_free(m, tok))
		return 1;
	mmk_close(m);
	return 0;
}
PROG
for how in shared static; do
	flags=$([ "$how" = static ] && echo --static)
	# shellcheck disable=SC2016
	if in_root sh -c "cd /tmp/outside && cc -std=c11 -Wall -Wextra -Werror \
		-o prog-$how prog.c \$(pkg-config $flags --cflags --libs mmk) ${flags:+-static}" \
		>"$log" 2>&1; then
		ok "link: an outside program with pkg-config --cflags --libs mmk ($how)"
	else
		show_log
		not_ok "link: an outside program with pkg-config --cflags --libs mmk ($how)"
		continue
	fi
	out=$(in_root "/tmp/outside/prog-$how" 2>&1)
	if [ "$out" = "$version outside" ]; then
		ok "run: the $how program stores and reads a message ($out)"
	else
		not_ok "run: the $how program printed '$out'"
	fi
done
finish
