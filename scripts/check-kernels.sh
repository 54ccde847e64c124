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
# For each Debian kernel the module is built by DKMS from dkms.conf
# (scripts/dkms-build.sh, in a private DKMS tree under build/kmod-KERNEL),
# and the guest loads the module DKMS built.  The debug kernel has no
# installed headers package: there the module is built with W=1 in its own
# copy of the sources (build/kmod-debug).  A kernel whose module or image
# cannot be built counts as one failed test.  The
# last line printed is "N passed, N failed[, N skipped]".
#
# The debug kernel, if it is not cached yet, takes long to build: its build
# starts in the background at once, and the debug guest runs last.  Its
# guest gets MMK_DEBUG_KERNEL=1 and, unless set, a longer MMK_GUEST_TIMEOUT
# (3600 s): everything runs several times slower under KASAN and lockdep.
#
# To keep make check within its time budget, the 32-bit programs (*_32:
# the compat entry points, the same code on every kernel) run on the
# first kernel only, and the benchmarks' behaviour test (bench_smoke,
# which tests the benchmarks, not the module) on the Debian kernels only.
# MMK_TESTS_SKIP, if set, replaces that choice on every kernel.
#
# Environment: MMK_HOST_RESULTS (host results, counted with the first
# kernel); everything else is passed on to scripts/guest-run.sh.

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || { echo "usage: $0 KERNEL..." >&2; exit 2; }

# Debug last, so that its build overlaps the other kernels' runs.
kernels=()
debug_build=
for k in "$@"; do
	[ "$k" = debug ] || kernels+=("$k")
done
for k in "$@"; do
	[ "$k" != debug ] || { kernels+=(debug); break; }
done
if [[ " ${kernels[*]} " == *" debug "* ]]; then
	mkdir -p "$top/build/guest"
	build_log=$top/build/guest/debug-kernel-build.log
	echo "==== building the debug kernel in the background (progress: $build_log) ===="
	bash "$top/scripts/debug-kernel.sh" build >"$build_log" 2>&1 &
	debug_build=$!
fi

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

for k in "${kernels[@]}"; do
	echo "==== kernel $k ===="
	start=$(date +%s)
	guest_env=()
	not_here=${MMK_TESTS_SKIP-}
	if [ -z "${MMK_TESTS_SKIP+set}" ]; then
		[ "$k" = "${kernels[0]}" ] || not_here='*_32'
		[ "$k" != debug ] || not_here="$not_here bench_smoke"
	fi
	case $k in
	debug)
		if ! wait "$debug_build"; then
			tail -n 30 "$build_log"
			count "$k" "0 passed, 1 failed (debug kernel build)"
			continue
		fi
		cat "$build_log"
		guest_env=(MMK_DEBUG_KERNEL=1 MMK_GUEST_TIMEOUT="${MMK_GUEST_TIMEOUT:-3600}")
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
	build_rc=0
	if [ "$k" = debug ]; then
		ko=$src/kmod/mmk.ko
		cp -a "$top/Kbuild" "$top/kmod" "$top/uapi" "$src/"
		rm -f "$src"/kmod/*.o "$src"/kmod/*.ko "$src"/kmod/.*.cmd
		make -C "$kdir" M="$src" W=1 modules >"$src/build.log" 2>&1 || build_rc=$?
	else
		ko=$src/mmk.ko
		echo "==== kernel $k: dkms build (log: $src/build.log) ===="
		bash "$top/scripts/dkms-build.sh" "$kver" "$src" >"$src/build.log" 2>&1 ||
			build_rc=$?
	fi
	if [ "$build_rc" -ne 0 ] || [ ! -f "$ko" ]; then
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
		env "${guest_env[@]}" MMK_KERNEL="$image" MMK_KO="$ko" \
			MMK_HOST_RESULTS="$host_results" MMK_TESTS_SKIP="$not_here" \
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
