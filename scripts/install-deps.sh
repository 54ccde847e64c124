#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages needed to build mmk and test it in a qemu guest.
# Idempotent: packages already installed are not touched, and apt is not run
# at all when nothing is missing.
#
# usage: scripts/install-deps.sh [EXTRA_PACKAGE...]
#   (extra packages, e.g. linux-image-6.12-cloud-amd64 for another guest kernel)

set -euo pipefail

pkgs=(
	build-essential make gcc gcc-multilib
	qemu-system-x86
	busybox-static
	linux-image-cloud-amd64 linux-headers-cloud-amd64
	linux-image-6.12-cloud-amd64 linux-headers-6.12-cloud-amd64
	linux-source-6.1
	sparse flex bison bc libelf-dev
	cpio kmod xz-utils rsync
	libmnl-dev libmnl0 pkg-config
	python3 python3-yaml
	clang libclang-rt-14-dev
	gnuplot-nox valgrind
	iceoryx libiceoryx-binding-c-dev
	"$@"
)
# Installed without their recommends: dkms would otherwise pull in the
# headers of the standard (non-cloud) kernel.
norec=(
	dkms
	debhelper dh-dkms fakeroot lintian debootstrap
)

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps: dpkg-query not found: this is not a Debian system." >&2
	echo "install-deps: install the equivalents of these by hand: ${pkgs[*]}" >&2
	exit 1
fi

# missing LIST...: the packages of LIST that are not installed.
missing() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		case $status in
		ii*) ;;
		*) echo "$p" ;;
		esac
	done
}
mapfile -t missing < <(missing "${pkgs[@]}")
mapfile -t missing_norec < <(missing "${norec[@]}")

if [ "${#missing[@]}" -eq 0 ] && [ "${#missing_norec[@]}" -eq 0 ]; then
	echo "install-deps: all $((${#pkgs[@]} + ${#norec[@]})) packages present"
	exit 0
fi

echo "install-deps: missing packages: ${missing[*]} ${missing_norec[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root, cannot install them. Run as root:" >&2
	echo "  apt-get update && apt-get install -y ${missing[*]} &&" >&2
	echo "  apt-get install -y --no-install-recommends ${missing_norec[*]}" >&2
	echo "or run 'sudo scripts/install-deps.sh'." >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
apt-get update
if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: apt-get install -y ${missing[*]}"
	apt-get install -y "${missing[@]}"
fi
if [ "${#missing_norec[@]}" -gt 0 ]; then
	echo "install-deps: apt-get install -y --no-install-recommends ${missing_norec[*]}"
	apt-get install -y --no-install-recommends "${missing_norec[@]}"
fi
echo "install-deps: done"
