#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Print the version (KVER) of the Debian kernel the guest boots by default:
# the newest /boot/vmlinuz-<KVER> of the given series and flavour that also
# has headers at /lib/modules/<KVER>/build.  Prints nothing if none is found.
#
# usage: scripts/guest-kernel.sh [SERIES [FLAVOUR]]    (default: 6.1 cloud-amd64)
#
# SERIES 6.1 matches 6.1.0-56-cloud-amd64 but not 6.12.x; SERIES 6.12 matches
# 6.12.x+deb12-cloud-amd64.

series=${1:-6.1}
flavour=${2:-cloud-amd64}
boot=${MMK_BOOT_DIR:-/boot}
mods=${MMK_MODULES_DIR:-/lib/modules}

for img in "$boot"/vmlinuz-*; do
	[ -e "$img" ] || continue
	kver=${img##*/vmlinuz-}
	case $kver in
	"$series".*-"$flavour" | "$series"-*-"$flavour" | "$series"+*-"$flavour") ;;
	*) continue ;;
	esac
	[ -d "$mods/$kver/build" ] || continue
	echo "$kver"
done | sort -V | tail -n 1
