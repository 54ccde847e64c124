#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the whole guest test suite on several kernels, one guest each, and
# print one summary over all of them (and the host results, counted once).
#
# usage: scripts/check-kernels.sh KERNEL...
#
#   6.1, 6.12   the newest installed Debian cloud kernel of that series
#   debug       the debug kernel of scripts/debug-kernel.sh (KASAN, lockdep,
#               kmemleak, fault injection), built and cached if needed
#
# For each kernel the module is built with W=1 in its own copy of the
# sources (build/kmod-KERNEL), so kernels never share objects.  A kernel
# whose module or image cannot be built counts as one failed test.  The
# last line printed is "N passed, N failed[, N skipped]".
#
# Environment: MMK_HOST_RESULTS (host results, counted with the first
# kernel); everything else is passed on to scripts/guest-run.sh.

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || { echo "usage: $0 KERNEL..." >&2; exit 2; }

pass=0 fail=0 skip=0
lines=()
host_results=${MMK_HOST_RESULTS:-}

count() {	# count LABEL "N passed, N failed[, N skipped]"
	local p f s
	p=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$2")
	f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$2")
	s=$(sed -n 's/.* \([0-9]*\) skipped.*/\1/p' <<<"$2")
	pass=$((pass + ${p:-0})) fail=$((fail + ${f:-0})) skip=$((skip + ${s:-0}))
	lines+=("$(printf '  %-8s %s' "$1" "$2")")
}

for k in "$@"; do
	echo "==== kernel $k ===="
	start=$(date +%s)
	case $k in
	debug)
		kdir=$(bash "$top/scripts/debug-kernel.sh" print-kdir) &&
			image=$(bash "$top/scripts/debug-kernel.sh" print-image) ||
			{ count "$k" "0 passed, 1 failed (debug kernel build)"; continue; }
		;;
	*)
		kver=$(sh "$top/scripts/guest-kernel.sh" "$k" cloud-amd64)
		if [ -z "$kver" ]; then
			count "$k" "0 passed, 1 failed (no $k kernel installed)"
			continue
		fi
		kdir=/lib/modules/$kver/build
		image=/boot/vmlinuz-$kver
		;;
	esac

	src=$top/build/kmod-$k
	rm -rf "$src"
	mkdir -p "$src"
	cp -a "$top/Kbuild" "$top/kmod" "$top/uapi" "$src/"
	rm -f "$src"/kmod/*.o "$src"/kmod/*.ko "$src"/kmod/.*.cmd
	if ! make -C "$kdir" M="$src" W=1 modules >"$src/build.log" 2>&1; then
		tail -n 30 "$src/build.log"
		count "$k" "0 passed, 1 failed (module build)"
		continue
	fi

	out=$top/build/guest/check-$k.out
	mkdir -p "$top/build/guest"
	# A guest that dies before it even loads the module (seen rarely under
	# TCG: a double fault in early boot) never ran a test: boot it again,
	# up to twice.  Anything after insmod counts as it is.
	for try in 1 2 3; do
		MMK_KERNEL=$image MMK_KO=$src/kmod/mmk.ko MMK_HOST_RESULTS=$host_results \
			bash "$top/scripts/guest-run.sh" check 2>&1 | tee "$out"
		grep -q 'MMK-TEST .*insmod' "$out" && break
		[ "$try" -lt 3 ] && echo "==== kernel $k: the guest did not boot to insmod; booting again ===="
	done
	host_results=
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	[ -n "$summary" ] || summary="0 passed, 1 failed (no summary)"
	count "$k" "$summary, $(($(date +%s) - start)) s"
done

echo "==== all kernels ===="
printf '%s\n' "${lines[@]}"
line="$pass passed, $fail failed"
[ "$skip" -gt 0 ] && line="$line, $skip skipped"
echo "$line"
[ "$fail" -eq 0 ]
