#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a qemu guest with mmk.ko, the selftests and the demo in a busybox
# initramfs, run them there, and report.  The module is never loaded into
# the kernel of the machine running this script.
#
# usage: scripts/guest-run.sh check|demo|bench
#
#   check  insmod, every selftest program (in 'make -C selftests list' order),
#          the demo with small arguments, the sensor_frames example, the
#          benchmarks' behaviour test (mmk_bench --smoke), rmmod, then a
#          scan of dmesg.
#          The last line printed is "N passed, N failed[, N skipped]".
#   demo   insmod, the demo with its default arguments, 'mmkctl list' and
#          'mmkctl show' of the demo's pool (its queue and sessions) taken
#          while the pool exists, the events 'mmkctl monitor' saw, rmmod.
#   bench  insmod, mmk_bench, its crash report (mmk_bench --crash) and
#          mmk_bench_micro (bench/), rmmod; their
#          results are lines starting "MMK-CSV " and "MMK-TAB " in the log,
#          which bench/report.sh extracts.
#
# Exit status: 0 if nothing failed, 1 otherwise, 2 for a usage or setup error.
#
# Environment (all optional):
#   MMK_KERNEL            guest kernel image (default: /boot/vmlinuz-$MMK_KVER)
#   MMK_KVER              installed kernel to boot (default: the newest one of
#                         MMK_GUEST_SERIES (6.1) and MMK_GUEST_FLAVOUR (cloud-amd64))
#   MMK_KO                module (default: kmod/mmk.ko)
#   MMK_TESTS             space-separated subset of selftest programs to run
#   MMK_TESTS_SKIP        space-separated shell patterns of programs not to
#                         run (selftests, or bench_smoke), e.g. '*_32'
#   MMK_KSELFTEST         check mode: a kselftest install tree made by
#                         scripts/kselftest-install.sh (make check passes
#                         build/ksft/install); the selftests are then those
#                         it installed, run by its run_kselftest.sh, and
#                         counted from its TAP output.  Unset: the programs
#                         of build/selftests, run one by one.
#   MMK_DEMO_ARGS         demo arguments (default: "-n 20000" in check mode, none in demo mode)
#   MMK_BENCH_ARGS        mmk_bench arguments in bench mode (default: none)
#   MMK_CRASH_ROUNDS      kill -9 rounds of the crash report in bench mode
#                         (default 100)
#   MMK_QEMU_ACCEL        tcg (default) or kvm
#   MMK_QEMU_CPU          qemu -cpu model (default: max with tcg, max,-erms,-fsrm
#                         in bench mode, host with kvm)
#   MMK_QEMU_MEM          guest memory (default: 2G)
#   MMK_QEMU_SMP          guest CPUs (default: 2)
#   MMK_GUEST_TIMEOUT     seconds for the whole guest run (default: 1500 check,
#                         900 demo, 1200 bench)
#   MMK_TEST_TIMEOUT      seconds for each program inside the guest (default: 600)
#   MMK_CONSOLE_LOGLEVEL  kernel console loglevel (default: 4, errors only; 8 shows all)
#   MMK_GUEST_APPEND      extra kernel command line arguments
#   MMK_BUSYBOX           static busybox binary (default: /bin/busybox)
#   MMK_HOST_RESULTS      check mode: output of tests already run on this
#                         machine (scripts/host-run.sh), counted in the summary
#   MMK_DEBUG_KERNEL      1: the guest kernel is the debug kernel of
#                         scripts/debug-kernel.sh; check mode then also fails
#                         unless KASAN, lockdep, kmemleak and fault injection
#                         are active, and lockdep is still on at the end
#   MMK_SEED, MMK_FUZZ_CALLS, MMK_TORTURE_TRIALS, MMK_TORTURE_SECONDS,
#   MMK_STRESS_SECONDS    passed on to the selftests in the guest
#
# Outputs: build/guest/<mode>.log (the serial console, \r removed) and
# build/guest/initramfs-<mode>.cpio.gz.

set -euo pipefail

die() {
	echo "guest-run: $*" >&2
	exit 2
}

mode=${1:-}
case $mode in
check | demo | bench) ;;
*)
	echo "usage: $0 check|demo|bench" >&2
	exit 2
	;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
gdir=$top/build/guest

# ---- configuration -----------------------------------------------------------

kernel=${MMK_KERNEL:-}
if [ -z "$kernel" ]; then
	kver=${MMK_KVER:-$(sh "$top/scripts/guest-kernel.sh" "${MMK_GUEST_SERIES:-6.1}" \
		"${MMK_GUEST_FLAVOUR:-cloud-amd64}")}
	[ -n "$kver" ] || die "no ${MMK_GUEST_SERIES:-6.1} guest kernel with headers found; run 'make deps' or set MMK_KERNEL"
	kernel=/boot/vmlinuz-$kver
fi
ko=${MMK_KO:-$top/kmod/mmk.ko}
busybox=${MMK_BUSYBOX:-/bin/busybox}
accel=${MMK_QEMU_ACCEL:-tcg}
if [ "$accel" = kvm ]; then
	cpu=${MMK_QEMU_CPU:-host}
else
	cpu=${MMK_QEMU_CPU:-max}
	# Bench mode: TCG runs 'rep movsb' one byte per loop, and with ERMS or
	# FSRM the kernel copies every user buffer that way, several times
	# slower than the plain loads and stores user code copies with.  On
	# real hardware that instruction is the kernel's fastest copy: hide
	# the two features so the kernel's copies cost what other code does.
	[ "$mode" != bench ] || cpu=${MMK_QEMU_CPU:-max,-erms,-fsrm}
fi
mem=${MMK_QEMU_MEM:-2G}
smp=${MMK_QEMU_SMP:-2}
test_timeout=${MMK_TEST_TIMEOUT:-600}
loglevel=${MMK_CONSOLE_LOGLEVEL:-4}
if [ "$mode" = check ]; then
	guest_timeout=${MMK_GUEST_TIMEOUT:-1500}
	demo_args=${MMK_DEMO_ARGS--n 20000}
elif [ "$mode" = bench ]; then
	guest_timeout=${MMK_GUEST_TIMEOUT:-1200}
	demo_args=
else
	guest_timeout=${MMK_GUEST_TIMEOUT:-900}
	demo_args=${MMK_DEMO_ARGS:-}
fi
demo_bin=$top/build/examples/mmk_demo
bench_dir=$top/build/bench
bench_args=${MMK_BENCH_ARGS:-}

# ---- host checks ---------------------------------------------------------------

for tool in qemu-system-x86_64 cpio gzip timeout readelf ldd; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run 'make deps'"
done
[ -e "$kernel" ] || die "guest kernel $kernel not found; run 'make deps' or set MMK_KERNEL"
[ -r "$kernel" ] || die "cannot read $kernel (run as root, or copy it somewhere readable and set MMK_KERNEL)"
[ -f "$ko" ] || die "module $ko not found; run 'make module'"
[ -x "$busybox" ] || die "$busybox not found; run 'make deps' (package busybox-static)"

# A dynamically linked program cannot run in the initramfs: it has no libc.
is_static() {
	! readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'
}
is_static "$busybox" || die "$busybox is dynamically linked; install busybox-static"

# The kernel release, read from the bzImage header (kernel_version field).
image_release() {
	local off
	off=$(od -An -tu2 -j $((0x20E)) -N2 "$1" 2>/dev/null | tr -d ' ') || return 0
	[ -n "$off" ] && [ "$off" -gt 0 ] || return 0
	dd if="$1" bs=1 skip=$((off + 0x200)) count=256 status=none 2>/dev/null |
		tr '\0' '\n' | head -n 1 | cut -d' ' -f1
}
release=$(image_release "$kernel")
vermagic=$(modinfo -F vermagic "$ko" 2>/dev/null | cut -d' ' -f1 || true)
if [ -n "$release" ] && [ -n "$vermagic" ] && [ "$release" != "$vermagic" ]; then
	die "$ko was built for $vermagic but the guest kernel $kernel is $release; rebuild it (make module KVER=... or KDIR=...)"
fi

# ---- staging -------------------------------------------------------------------

mkdir -p "$gdir"
run=$(mktemp -d "$gdir/run.XXXXXX")
stty_saved=
if [ -t 0 ]; then
	stty_saved=$(stty -g 2>/dev/null || true)
fi
cleanup() {
	if [ -n "$stty_saved" ]; then
		stty "$stty_saved" 2>/dev/null || true
	fi
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stage=$run/root
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,selftests,modules}
cp "$busybox" "$stage/bin/busybox"
cp "$ko" "$stage/mmk.ko"

# Modules mmk.ko depends on (none, normally), from the guest kernel's tree,
# in load order.  Compressed modules are unpacked: busybox insmod wants a
# plain ELF file.
: >"$stage/etc/mmk-modules"
declare -A dep_seen=()
add_module_deps() {
	local deps dep file
	deps=$(modinfo ${release:+-k "$release"} -F depends "$1" 2>/dev/null | tr ',' ' ' || true)
	for dep in $deps; do
		[ -z "${dep_seen[$dep]:-}" ] || continue
		dep_seen[$dep]=1
		file=$(modinfo ${release:+-k "$release"} -F filename "$dep" 2>/dev/null || true)
		if [ -z "$file" ] || [ ! -f "$file" ]; then
			echo "guest-run: warning: module dependency '$dep' not found for $release" >&2
			continue
		fi
		add_module_deps "$file"
		case $file in
		*.xz) xz -dc "$file" >"$stage/modules/$dep.ko" ;;
		*.zst) zstd -qdc "$file" >"$stage/modules/$dep.ko" ;;
		*.gz) gzip -dc "$file" >"$stage/modules/$dep.ko" ;;
		*) cp "$file" "$stage/modules/$dep.ko" ;;
		esac
		echo "$dep.ko" >>"$stage/etc/mmk-modules"
	done
}
add_module_deps "$ko"

# Whether MMK_TESTS_SKIP names program $1.
skipped() {
	local pat
	for pat in ${MMK_TESTS_SKIP:-}; do
		# shellcheck disable=SC2053
		[[ $1 == $pat ]] && return 0
	done
	return 1
}
smoke=1
skipped bench_smoke && smoke=0

# Selftest programs, in the order the selftests Makefile gives.
tests=()
if [ "$mode" = check ] && [ -f "$top/selftests/Makefile" ]; then
	list=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -s --no-print-directory -C "$top/selftests" list TOP="$top") ||
		die "'make -C selftests list' failed"
	for t in $list; do
		case $t in
		*[!A-Za-z0-9_.+-]*) continue ;;
		esac
		if [ -n "${MMK_TESTS:-}" ] && [[ " $MMK_TESTS " != *" $t "* ]]; then
			continue
		fi
		skipped "$t" && continue
		tests+=("$t")
	done
	if [ -n "${MMK_TESTS:-}" ]; then
		for t in $MMK_TESTS; do
			[[ " ${tests[*]} " == *" $t "* ]] ||
				echo "guest-run: warning: MMK_TESTS names '$t', which is not a selftest" >&2
		done
	fi
fi
ksft=${MMK_KSELFTEST:-}
if [ "$mode" = check ] && [ -n "$ksft" ]; then
	[ -x "$ksft/run_kselftest.sh" ] || die "no run_kselftest.sh in $ksft; run scripts/kselftest-install.sh"
	cp -a "$ksft" "$stage/kselftest"
	# The runner passes --foreground to timeout, which busybox's lacks.
	cat >"$stage/usr/bin/timeout.ksft" <<'EOF'
#!/bin/sh
[ "$1" = --foreground ] && shift
exec /bin/busybox timeout "$@"
EOF
	chmod +x "$stage/usr/bin/timeout.ksft"
fi
: >"$stage/etc/mmk-tests"
for t in "${tests[@]}"; do
	echo "$t" >>"$stage/etc/mmk-tests"
	if [ -n "$ksft" ] && [ "$mode" = check ]; then
		[ -x "$ksft/drivers/misc/mmk/$t" ] ||
			echo "guest-run: warning: $t is not in $ksft; it will be reported as failed" >&2
		continue
	fi
	bin=$top/build/selftests/$t
	if [ ! -x "$bin" ]; then
		echo "guest-run: warning: $bin not built; it will be reported as failed" >&2
		continue
	fi
	is_static "$bin" || echo "guest-run: warning: $bin is not static; it will not run" >&2
	cp "$bin" "$stage/selftests/$t"
done
if [ -x "$demo_bin" ]; then
	is_static "$demo_bin" || echo "guest-run: warning: $demo_bin is not static" >&2
	cp "$demo_bin" "$stage/mmk_demo"
elif [ "$mode" = demo ]; then
	die "$demo_bin not found; run 'make examples'"
fi
frames_bin=$top/build/examples/sensor_frames
if [ "$mode" = check ] && [ -x "$frames_bin" ]; then
	is_static "$frames_bin" || echo "guest-run: warning: $frames_bin is not static" >&2
	cp "$frames_bin" "$stage/sensor_frames"
fi
# The benchmarks: both programs in bench mode, the behaviour test in check mode.
case $mode in
bench) bench_progs="mmk_bench mmk_bench_micro" ;;
check) bench_progs="mmk_bench" ;;
*) bench_progs= ;;
esac
# A dynamically linked program gets the libraries it needs and the dynamic
# loader, at the paths ldd gives.
ship_libs() {
	local lib
	for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done
}
for b in $bench_progs; do
	if [ -x "$bench_dir/$b" ]; then
		# mmk_bench is dynamic when it has the iceoryx contender (Debian
		# ships iceoryx as shared libraries only).
		is_static "$bench_dir/$b" || ship_libs "$bench_dir/$b"
		cp "$bench_dir/$b" "$stage/$b"
	elif [ "$mode" = bench ]; then
		die "$bench_dir/$b not found; run 'make benchmarks'"
	else
		echo "guest-run: warning: $bench_dir/$b not built; bench_smoke will fail" >&2
	fi
done
# mmkctl is linked with libmnl, which Debian ships only as a shared
# library: copy it with the libraries and the dynamic loader it needs.
mmkctl_bin=$top/build/tools/mmkctl
if [ -x "$mmkctl_bin" ]; then
	cp "$mmkctl_bin" "$stage/usr/bin/mmkctl"
	ship_libs "$mmkctl_bin"
else
	echo "guest-run: warning: $mmkctl_bin not built; mmkctl will be missing in the guest" >&2
fi

# iceoryx's RouDi, for mmk_bench's iceoryx contender (when mmk_bench has
# it): the daemon, its libraries and the mempools of bench/roudi.toml.
bench_libs=
[ ! -f "$stage/mmk_bench" ] || bench_libs=$(ldd "$stage/mmk_bench" 2>/dev/null || true)
if [[ $bench_libs == *libiceoryx* ]]; then
	roudi=$(command -v iox-roudi || true)
	if [ -n "$roudi" ]; then
		cp "$roudi" "$stage/usr/bin/iox-roudi"
		ship_libs "$roudi"
		mkdir -p "$stage/etc/iceoryx"
		cp "$top/bench/roudi.toml" "$stage/etc/iceoryx/roudi.toml"
	else
		echo "guest-run: warning: iox-roudi not found (package iceoryx); no iceoryx contender" >&2
	fi
fi

cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
# Group mmk may open /dev/mmk (udev/60-mmk.rules); nobody is not in it.
cat >"$stage/etc/group" <<'EOF'
root:x:0:
mmk:x:990:
nogroup:x:65534:
nobody:x:65534:
EOF
# udev's part in the guest: mdev applies udev/60-mmk.rules to every
# /dev/mmk that appears, also when module_test reloads the module.
cat >"$stage/etc/mdev.conf" <<'EOF'
mmk 0:990 660
EOF
cat >"$stage/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
EOF

# Values for /init, single-quoted for the shell.
shq() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}
{
	echo "MMK_MODE=$(shq "$mode")"
	echo "MMK_TEST_TIMEOUT=$(shq "$test_timeout")"
	echo "MMK_DEMO_ARGS=$(shq "$demo_args")"
	echo "MMK_DEBUG_KERNEL=$(shq "${MMK_DEBUG_KERNEL:-0}")"
	echo "MMK_SMOKE=$smoke"
	for v in MMK_SEED MMK_FUZZ_CALLS MMK_TORTURE_TRIALS MMK_TORTURE_SECONDS MMK_STRESS_SECONDS; do
		[ -z "${!v:-}" ] || echo "export $v=$(shq "${!v}")"
	done
	echo "MMK_BENCH_ARGS=$(shq "$bench_args")"
	echo "MMK_CRASH_ROUNDS=$(shq "${MMK_CRASH_ROUNDS:-100}")"
} >"$stage/etc/mmk.conf"

cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
# mmk test guest: generated by scripts/guest-run.sh.

/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root MMK_KO=/mmk.ko
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# What udev would add: run_kselftest.sh writes to /dev/stdout.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
hostname mmk-guest
. /etc/mmk.conf

DMESG_PATTERN='Oops|BUG:|WARNING:|general protection|KASAN|UBSAN|kmemleak|refcount_t|list_add corruption|list_del corruption|unreferenced object|Call Trace'
# Between the 'mmk-fault: inject begin' and 'mmk-fault: inject end' lines
# that fault_test writes, an allocation fails on purpose.  The kernel may
# then report that failure itself (kmemleak when its own bookkeeping cannot
# be allocated, with a stack dump); those reports are expected there, and
# only there.  Everything else in DMESG_PATTERN still counts.
INJECTED_PATTERN='kmemleak: Cannot allocate|Call Trace|allocation failure|vmalloc error'
KMEMLEAK=/sys/kernel/debug/kmemleak
any_fail=0

now() { cut -d' ' -f1 /proc/uptime; }
# A 32-bit ELF program (EI_CLASS 1) runs only with IA32 emulation.
can_exec() {
	[ "$(dd if="$1" bs=1 skip=4 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')" != 1 ] ||
		[ -e /proc/sys/abi/vsyscall32 ]
}
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
result() {	# result ok|not-ok NAME [DETAIL]
	if [ "$1" = ok ]; then
		echo "MMK-TEST ok $2${3:+ # $3}"
	else
		any_fail=1
		echo "MMK-TEST not ok $2${3:+ # $3}"
	fi
}
power_off() {
	sync
	# tinyconfig kernels have no ACPI: poweroff -f would hang there.
	# qemu runs with -no-reboot, so a reboot ends it just as well.
	[ -d /sys/firmware/acpi/tables ] && poweroff -f
	reboot -f
	sleep 5
	echo b >/proc/sysrq-trigger
}
run_demo() {
	if [ ! -x /mmk_demo ]; then
		result ok demo "SKIP /mmk_demo not built"
		return
	fi
	echo "# running /mmk_demo${MMK_DEMO_ARGS:+ $MMK_DEMO_ARGS}"
	t0=$(now)
	# shellcheck disable=SC2086
	(cd /tmp && exec timeout -k 10 "$MMK_TEST_TIMEOUT" /mmk_demo $MMK_DEMO_ARGS) </dev/null
	rc=$?
	echo "# /mmk_demo exit=$rc after $(since "$t0") s"
	if [ "$rc" -eq 0 ]; then
		result ok demo
	else
		result not-ok demo "exit=$rc"
	fi
}
# The typed-payload example: a fan-out and a chain of stages over queues.
run_sensor_frames() {
	if [ ! -x /sensor_frames ]; then
		result ok sensor_frames "SKIP /sensor_frames not built"
		return
	fi
	echo "# running /sensor_frames"
	t0=$(now)
	(cd /tmp && exec timeout -k 10 "$MMK_TEST_TIMEOUT" /sensor_frames) </dev/null
	rc=$?
	echo "# /sensor_frames exit=$rc after $(since "$t0") s"
	if [ "$rc" -eq 0 ]; then
		result ok sensor_frames
	else
		result not-ok sensor_frames "exit=$rc"
	fi
}
# iceoryx's RouDi for mmk_bench, if shipped: started, and ready for clients
# within 60 s, or the iceoryx contender is left out (MMK_BENCH_ICEORYX).
roudi_start() {
	[ -x /usr/bin/iox-roudi ] || return 0
	(cd /tmp && exec iox-roudi -c /etc/iceoryx/roudi.toml -l warning) >/tmp/roudi.log 2>&1 &
	ROUDI_PID=$!
	rt0=$(now)
	while ! grep -q 'RouDi is ready for clients' /tmp/roudi.log 2>/dev/null; do
		if ! kill -0 "$ROUDI_PID" 2>/dev/null ||
		   [ "$(awk -v a="$rt0" -v b="$(now)" 'BEGIN { print (b - a > 60) }')" = 1 ]; then
			echo "# iox-roudi did not start; no iceoryx contender:"
			sed 's/^/#   /' /tmp/roudi.log
			kill "$ROUDI_PID" 2>/dev/null
			ROUDI_PID=
			return 0
		fi
		sleep 0.2
	done
	echo "# iox-roudi ready after $(since "$rt0") s"
	export MMK_BENCH_ICEORYX=1
}
roudi_stop() {
	[ -n "${ROUDI_PID:-}" ] || return 0
	kill "$ROUDI_PID" 2>/dev/null
	wait "$ROUDI_PID" 2>/dev/null
	ROUDI_PID=
	unset MMK_BENCH_ICEORYX
}

# The benchmarks' behaviour test, framed as a program: its TAP lines count.
run_bench_smoke() {
	echo "MMK-PROG-START bench_smoke"
	t0=$(now)
	if [ -x /mmk_bench ]; then
		roudi_start
		(cd /tmp && exec timeout -k 10 "$MMK_TEST_TIMEOUT" /mmk_bench --smoke) </dev/null
		rc=$?
		roudi_stop
	else
		echo "# /mmk_bench is missing (not built?)"
		rc=127
	fi
	[ "$rc" -eq 0 ] || any_fail=1
	echo "MMK-PROG-END bench_smoke exit=$rc secs=$(since "$t0")"
}
# Bench mode: the benchmarks, their results on the console.
run_bench() {
	# mmk_bench_crash: mmk_bench's crash robustness report, mmk and iceoryx.
	for prog in mmk_bench mmk_bench_crash mmk_bench_micro; do
		args=
		bin=$prog
		case $prog in
		mmk_bench) args=$MMK_BENCH_ARGS; roudi_start ;;
		mmk_bench_crash) bin=mmk_bench; args="--crash $MMK_CRASH_ROUNDS"; roudi_start ;;
		esac
		echo "# running /$bin -P${args:+ $args}"
		t0=$(now)
		# shellcheck disable=SC2086
		(cd /tmp && exec timeout -k 10 "$MMK_TEST_TIMEOUT" "/$bin" -P $args) </dev/null
		rc=$?
		roudi_stop
		echo "# /$prog exit=$rc after $(since "$t0") s"
		if [ "$rc" -eq 0 ]; then
			result ok "$prog"
		else
			result not-ok "$prog" "exit=$rc"
		fi
	done
}
# Demo mode: the demo, then what mmkctl saw of its pool.  'mmkctl list' is
# taken while the pool exists and holds messages (polled: the demo says
# nothing when it starts), and right after it 'mmkctl show' of the pool,
# by the name the listing gives (mmk-demo-PID): the demo's queue,
# demo-tokens, should be in it.  'mmkctl monitor' runs throughout.
DEMO_QUEUE=demo-tokens
run_demo_mmkctl() {
	if [ ! -x /usr/bin/mmkctl ]; then
		run_demo
		echo "# mmkctl was not built: no pool listing"
		return
	fi
	rm -f /tmp/mmkctl-list.txt /tmp/mmkctl-show.txt /tmp/mmkctl-show-name.txt
	mmkctl monitor >/tmp/mmkctl-monitor.txt 2>&1 &
	monitor=$!
	sleep 1		# let it join the group before the demo starts
	(
		while :; do
			out=$(mmkctl list 2>&1)
			case $out in
			*" stores "[1-9]*) break ;;
			esac
			sleep 0.05
		done
		name=$(echo "$out" | awk '{ for (i = 1; i < NF; i++)
			if ($i == "name" && $(i + 1) ~ /^mmk-demo-/) { print $(i + 1); exit } }')
		if [ -n "$name" ]; then
			mmkctl show "$name" >/tmp/mmkctl-show.txt 2>&1
			echo "$name" >/tmp/mmkctl-show-name.txt
		fi
		echo "$out" >/tmp/mmkctl-list.txt
	) &
	lister=$!
	run_demo
	kill "$lister" "$monitor" 2>/dev/null
	wait "$lister" "$monitor" 2>/dev/null
	if [ -s /tmp/mmkctl-list.txt ]; then
		echo "# mmkctl list (taken while the demo ran):"
		cat /tmp/mmkctl-list.txt
	else
		echo "# the demo ended before mmkctl list saw its pool"
	fi
	if [ -s /tmp/mmkctl-show-name.txt ]; then
		echo "# mmkctl show $(cat /tmp/mmkctl-show-name.txt) (taken while the demo ran):"
		cat /tmp/mmkctl-show.txt
		# An mmkctl without queue listings shows the pool alone.
		grep -qw "$DEMO_QUEUE" /tmp/mmkctl-show.txt ||
			echo "# note: this mmkctl show lists no queues: the demo's queue $DEMO_QUEUE is not in it"
	else
		echo "# mmkctl show: no pool named mmk-demo-* was listed while the demo ran"
	fi
	echo "# mmkctl monitor (during the demo):"
	cat /tmp/mmkctl-monitor.txt
	echo "# mmkctl list (after the demo):"
	out=$(mmkctl list 2>&1)
	echo "${out:-(no pool: the demo's pool went away with its last file)}"
}

# On the debug kernel, a checker that is off would make a clean run mean
# nothing: KASAN and kmemleak must have started, fault injection must be
# there, and lockdep must still be on after the tests (it turns itself off
# for good after its first report, or when it runs out of table space).
check_debug_kernel() {
	missing=
	dmesg | grep -q 'KernelAddressSanitizer initialized' || missing="$missing KASAN"
	[ -r "$KMEMLEAK" ] || missing="$missing kmemleak"
	[ -d /sys/kernel/debug/failslab ] || missing="$missing failslab"
	[ -d /sys/kernel/debug/fail_page_alloc ] || missing="$missing fail_page_alloc"
	grep -Eq '^ *debug_locks: +1$' /proc/lockdep_stats 2>/dev/null || missing="$missing lockdep"
	if [ -z "$missing" ]; then
		result ok "debug checkers active"
	else
		result not-ok "debug checkers active" "not active:$missing"
	fi
}

echo
echo "MMK-GUEST-START mode=$MMK_MODE kernel=$(uname -r) cpus=$(nproc) uptime=$(now)"

# Fault injection, when a test turns it on, must not print stack traces
# that the dmesg scan would take for bugs.
for f in /sys/kernel/debug/failslab/verbose /sys/kernel/debug/fail_page_alloc/verbose; do
	[ -w "$f" ] && echo 0 >"$f"
done
# Forget leaks reported before the module was loaded.  An object is only
# reported once it has been seen unreferenced by a scan and is old enough,
# so scan twice, a few seconds apart, before clearing.
if [ -w "$KMEMLEAK" ]; then
	echo scan >"$KMEMLEAK"
	sleep 5
	echo scan >"$KMEMLEAK"
	echo clear >"$KMEMLEAK"
fi
echo "mmk-guest: tests start" >/dev/kmsg

# What udev/60-mmk.rules does on a real host: group mmk, mode 0660.  mdev
# (started before insmod) does it for every load; wait for it, and do it
# here if mdev did not (device_test checks the result).
mdev -d 2>/dev/null
udev_settle() {
	i=0
	while [ "$i" -lt 50 ]; do
		[ "$(stat -c %g:%a /dev/mmk 2>/dev/null)" = 990:660 ] && return
		sleep 0.1
		i=$((i + 1))
	done
	echo "# udev: mdev did not set the group of /dev/mmk; setting it here"
	chgrp 990 /dev/mmk && chmod 0660 /dev/mmk
}

for m in $(cat /etc/mmk-modules); do
	insmod "/modules/$m" || echo "# insmod /modules/$m failed"
done
if insmod /mmk.ko; then
	result ok insmod
	udev_settle
else
	result not-ok insmod "exit=$?"
fi

# The selftests as kernel CI runs them: the installed kselftest tree's
# run_kselftest.sh, one collection, TAP; the summary counts each program's
# results from the runner's output ("# "-prefixed, with a "selftests:"
# line before and an ok or not ok line after each program).
run_kselftest() {
	if [ -x /usr/bin/timeout.ksft ]; then
		rm -f /usr/bin/timeout
		mv /usr/bin/timeout.ksft /usr/bin/timeout
	fi
	echo "timeout=$MMK_TEST_TIMEOUT" >/kselftest/drivers/misc/mmk/settings
	sel=
	for name in $(cat /etc/mmk-tests); do
		sel="$sel -t drivers/misc/mmk:$name"
	done
	echo "MMK-KSFT-START"
	# shellcheck disable=SC2086
	(cd /tmp && /kselftest/run_kselftest.sh $sel) </dev/null 2>&1 | tee /tmp/kselftest.log
	echo "MMK-KSFT-END"
	grep -q '^not ok [0-9]* selftests: ' /tmp/kselftest.log && any_fail=1
}

if [ "$MMK_MODE" = check ] && [ -x /kselftest/run_kselftest.sh ]; then
	run_kselftest
fi
if [ "$MMK_MODE" = check ] && [ ! -x /kselftest/run_kselftest.sh ]; then
	for name in $(cat /etc/mmk-tests); do
		echo "MMK-PROG-START $name"
		t0=$(now)
		if [ -x "/selftests/$name" ] && ! can_exec "/selftests/$name"; then
			echo "1..0 # SKIP this kernel cannot run 32-bit programs"
			rc=4
		elif [ -x "/selftests/$name" ]; then
			(cd /tmp && exec timeout -k 10 "$MMK_TEST_TIMEOUT" \
				"/selftests/$name") </dev/null
			rc=$?
		else
			echo "# /selftests/$name is missing (not built?)"
			rc=127
		fi
		[ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || any_fail=1
		echo "MMK-PROG-END $name exit=$rc secs=$(since "$t0")"
	done
fi
if [ "$MMK_MODE" = check ]; then
	run_demo
	run_sensor_frames
	[ "$MMK_SMOKE" = 0 ] || run_bench_smoke
	if rmmod mmk; then
		result ok rmmod
	else
		result not-ok rmmod "exit=$?"
		lsmod
	fi

	if [ -w "$KMEMLEAK" ]; then
		echo "# kmemleak: scanning"
		echo scan >"$KMEMLEAK"
		sleep 6
		echo scan >"$KMEMLEAK"
		cat "$KMEMLEAK" >/tmp/kmemleak.txt
	fi
	dmesg >/tmp/dmesg.txt
	sed -n '/mmk-guest: tests start/,$p' /tmp/dmesg.txt >/tmp/dmesg.new
	# The marker has scrolled out of the ring buffer: all of it is new.
	[ -s /tmp/dmesg.new ] || cp /tmp/dmesg.txt /tmp/dmesg.new
	[ -f /tmp/kmemleak.txt ] && cat /tmp/kmemleak.txt >>/tmp/dmesg.new
	awk -v ok="$INJECTED_PATTERN" '
		/mmk-fault: inject begin/ { inj = 1; next }
		/mmk-fault: inject end/ { inj = 0; next }
		inj && $0 ~ ok { next }
		{ print }' /tmp/dmesg.new >/tmp/dmesg.scan
	if grep -E "$DMESG_PATTERN" /tmp/dmesg.scan >/tmp/dmesg.bad; then
		result not-ok "dmesg clean" "$(wc -l </tmp/dmesg.bad) suspicious lines"
		head -n 100 /tmp/dmesg.bad | sed 's/^/MMK-DMESG-BAD: /'
	else
		result ok "dmesg clean"
	fi
	[ "$MMK_DEBUG_KERNEL" = 1 ] && check_debug_kernel
	if [ "$any_fail" -ne 0 ]; then
		echo "---- guest dmesg since the tests started (last 300 lines) ----"
		tail -n 300 /tmp/dmesg.new
		echo "---- end of guest dmesg ----"
	fi
elif [ "$MMK_MODE" = bench ]; then
	echo "MMK-BENCH-GUEST kernel=$(uname -r) cpus=$(nproc)" \
		"clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	run_bench
	if rmmod mmk; then
		result ok rmmod
	else
		result not-ok rmmod "exit=$?"
	fi
else
	run_demo_mmkctl
	if rmmod mmk; then
		result ok rmmod
	else
		result not-ok rmmod "exit=$?"
	fi
fi

echo "MMK-GUEST-DONE uptime=$(now)"
power_off
EOF
chmod +x "$stage/init"

# ---- initramfs -------------------------------------------------------------------

# One newc cpio entry with no data (directories, device nodes, the trailer),
# so that /dev/console exists without needing mknod on the host.
newc_entry() {	# NAME MODE NLINK RDEVMAJOR RDEVMINOR INO
	local name=$1 namesize=$((${#1} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$6" "$2" 0 0 "$3" 0 0 0 0 "$4" "$5" "$namesize" 0
	printf '%s\0' "$name"
	head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}
cpio_out=$run/initramfs.cpio.gz
{
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
	newc_entry dev $((0040755)) 2 0 0 900001
	newc_entry dev/console $((0020600)) 1 5 1 900002
	newc_entry 'TRAILER!!!' 0 1 0 0 0
} | gzip -1 >"$cpio_out"

# ---- boot --------------------------------------------------------------------------

# panic=-1 with -no-reboot: a panic ends qemu at once.  hung_task_panic: a
# task stuck in D state (which no timeout can kill) ends the run after
# about two minutes, with its stack, instead of at the guest timeout.
# log_buf_len: the debug kernel logs a lot, and the dmesg scan must see all
# of it since the tests started.
append="console=ttyS0 panic=-1 oops=panic hung_task_panic=1 loglevel=$loglevel log_buf_len=4M rdinit=/init"
# Bench mode: with -cpu max the guest idles in MWAIT, which TCG treats as
# HLT but does not end on a write to the monitored line, so a wake-up of an
# idle vCPU waits for its next tick (4 ms) instead of an IPI: idle=halt.
# TCG's TSC is the host's clock: reading it is ~100 ns, the HPET ~1 us.
if [ "$mode" = bench ]; then
	append+=" idle=halt clocksource=tsc tsc=reliable"
fi
append+="${MMK_GUEST_APPEND:+ $MMK_GUEST_APPEND}"
qemu=(qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m "$mem" -smp "$smp"
	-nographic -no-reboot -nic none
	-kernel "$kernel" -initrd "$cpio_out" -append "$append")

echo "guest-run: $mode: kernel $kernel${release:+ ($release)}, accel $accel, cpu $cpu, timeout ${guest_timeout}s"
echo "guest-run: ${#tests[@]} selftest programs${tests[*]:+: ${tests[*]}}"
echo "guest-run: ${qemu[*]}"
if [ -t 0 ]; then
	echo "guest-run: (Ctrl-A x quits qemu)"
fi

raw_log=$run/serial.log
start=$(date +%s.%N)
set +e
# --foreground: qemu stays in the terminal's process group (so it can read
# the terminal without being stopped); only qemu itself needs killing.
# The firmware resets and clears the terminal: drop escape sequences.
timeout --foreground -k 10 "$guest_timeout" "${qemu[@]}" 2>&1 |
	sed -u -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$raw_log"
statuses=("${PIPESTATUS[@]}")
set -e
end=$(date +%s.%N)
qemu_rc=${statuses[0]}
if [ -n "$stty_saved" ]; then
	stty "$stty_saved" 2>/dev/null || true
fi

log=$gdir/$mode.log
tr -d '\r' <"$raw_log" >"$log.$$"
mv -f "$log.$$" "$log"
mv -f "$cpio_out" "$gdir/initramfs-$mode.cpio.gz"

# ---- report --------------------------------------------------------------------------

if [ "$mode" = check ]; then
	synthetic="insmod|demo|sensor_frames|rmmod|dmesg clean"
	[ "${MMK_DEBUG_KERNEL:-0}" = 1 ] && synthetic+="|debug checkers active"
elif [ "$mode" = bench ]; then
	synthetic="insmod|mmk_bench|mmk_bench_crash|mmk_bench_micro|rmmod"
else
	synthetic="insmod|demo|rmmod"
fi
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

# Tests run on this machine before the guest, framed like guest programs.
host_results=()
if [ "$mode" = check ] && [ -n "${MMK_HOST_RESULTS:-}" ]; then
	if [ -f "$MMK_HOST_RESULTS" ]; then
		host_results=("$MMK_HOST_RESULTS")
	else
		printf 'MMK-PROG-START host\nMMK-PROG-END host exit=127 secs=0\n' >"$run/host.log"
		host_results=("$run/host.log")
	fi
fi

set +e
# Programs that must have run: the selftests, and in check mode bench_smoke.
expected="${tests[*]}"
[ "$mode" != check ] || [ "$smoke" = 0 ] || expected="${expected:+$expected }bench_smoke"
awk -v mode="$mode" -v expected="$expected" -v synthetic="$synthetic" \
	-v qemu_rc="$qemu_rc" -v guest_timeout="$guest_timeout" -v wall="$wall" \
	-v kernel="$kernel${release:+ ($release)}" -v accel="$accel" -v logfile="$log" '
function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}
function addfail(what) { fails[++nfail] = what }
function addskip(what) { skips[++nskip] = what }
function signame(rc) {
	if (rc == 124 || rc == 143) return " (timed out)"
	if (rc == 137) return " (killed)"
	if (rc == 127) return " (not found or not runnable)"
	if (rc == 134) return " (aborted)"
	if (rc == 139) return " (segmentation fault)"
	if (rc > 128) return " (signal " rc - 128 ")"
	return ""
}
# A TAP result line: "ok N name", "not ok N name", "ok N # SKIP reason"
# (the kselftest harness names skipped tests only in its "#  RUN" line).
function tap(line, ctx,    isnot, rest, name, directive, p, label) {
	isnot = (line ~ /^not ok/)
	rest = line
	sub(/^(not )?ok[ \t]*[0-9]*[ \t]*/, "", rest)
	name = rest
	directive = ""
	p = index(rest, "#")
	if (p) {
		name = substr(rest, 1, p - 1)
		directive = trim(substr(rest, p + 1))
	}
	name = trim(name)
	if (name == "" && lastrun != "")
		name = lastrun
	label = (ctx != "" ? ctx ": " : "") name
	if (isnot) {
		addfail(label (directive != "" ? " (" directive ")" : ""))
		p_fail++
	} else if (toupper(directive) ~ /^SKIP/) {
		addskip(label (length(directive) > 4 ? " (" trim(substr(directive, 5)) ")" : ""))
		p_skip++
	} else {
		npass++
		p_pass++
	}
	p_res++
}
function prog_begin(name) {
	cur = name
	started[name] = 1
	plan = -1
	p_res = p_pass = p_fail = p_skip = 0
	lastrun = ""
}
function prog_end(name, rc, secs) {
	ended[name] = 1
	if (p_res == 0) {
		if (rc == 0) {
			npass++
			p_pass++
		} else if (rc == 4) {
			addskip(name " (whole program skipped)")
			p_skip++
		} else {
			addfail(name ": exit status " rc signame(rc) ", no test results")
			p_fail++
		}
	} else if (plan >= 0 && p_res < plan) {
		addfail(name ": stopped after " p_res " of " plan " tests, exit status " rc signame(rc))
		p_fail++
	} else if (rc != 0 && rc != 4 && p_fail == 0) {
		addfail(name ": exit status " rc signame(rc) " with no failing test reported")
		p_fail++
	}
	table[++ntable] = sprintf("  %-28s exit=%-3s %7s s  %d passed, %d failed, %d skipped",
		name, rc, secs, p_pass, p_fail, p_skip)
	cur = ""
}
BEGIN {
	npass = nfail = nskip = ndm = ntable = 0
	cur = ""
	nexp = split(expected, exp_prog, " ")
	nsyn = split(synthetic, syn, "|")
}
/Kernel panic - not syncing/ && panic == "" { panic = $0 }
# run_kselftest.sh: "# selftests: COLLECTION: NAME" starts a program, whose
# own lines follow with a "# " prefix, and "ok N selftests: COLLECTION:
# NAME [# SKIP|# TIMEOUT ...|# exit=RC]" ends it.
/^MMK-KSFT-START/ { ksft = 1; next }
/^MMK-KSFT-END/ {
	if (cur != "") {
		addfail(cur ": no result line from run_kselftest.sh")
		cur = ""
	}
	ksft = 0
	next
}
ksft && /^# selftests: [^ ]+: [^ ]+$/ {
	if (cur != "")
		addfail(cur ": no result line from run_kselftest.sh")
	prog_begin($4)
	next
}
ksft && /^(not )?ok [0-9]+ selftests: / {
	name = $0
	sub(/^.*selftests: [^ ]+: /, "", name)
	sub(/[ \t]*#.*$/, "", name)
	rc = 0
	if ($0 ~ /^not ok/) {
		rc = 1
		if ($0 ~ /# exit=[0-9]+/) {
			rc = $0
			sub(/^.*# exit=/, "", rc)
			rc = rc + 0
		} else if ($0 ~ /# TIMEOUT/)
			rc = 124
	} else if ($0 ~ /# SKIP/)
		rc = 4
	if (cur != name)
		prog_begin(name)
	prog_end(name, rc, "-")
	next
}
ksft && /^# / { sub(/^# /, "") }
/^MMK-PROG-START / {
	if (cur != "") {
		addfail(cur ": no end marker")
		cur = ""
	}
	prog_begin($2)
	next
}
/^MMK-PROG-END / {
	rc = $3
	sub(/^exit=/, "", rc)
	secs = $4
	sub(/^secs=/, "", secs)
	if (cur != $2)
		prog_begin($2)
	prog_end($2, rc + 0, secs)
	next
}
/^MMK-TEST (not )?ok / {
	line = substr($0, 10)
	name = line
	sub(/^(not )?ok[ \t]*/, "", name)
	sub(/[ \t]*#.*$/, "", name)
	seen[name] = 1
	save = lastrun
	lastrun = ""
	tap(line, "")
	lastrun = save
	next
}
/^MMK-DMESG-BAD: / { dm[++ndm] = substr($0, 16); next }
/^MMK-GUEST-DONE/ { done = 1; next }
cur == "" { next }
/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; next }
/^#  RUN / { lastrun = $3; next }
/^(not )?ok [0-9]+/ { tap($0, cur); next }
END {
	if (cur != "") {
		addfail(cur ": did not finish (the guest crashed, hung or timed out while it ran)")
		ended[cur] = 1
	}
	for (i = 1; i <= nexp; i++)
		if (!(exp_prog[i] in started))
			addfail(exp_prog[i] ": not run")
	for (i = 1; i <= nsyn; i++)
		if (!(syn[i] in seen))
			addfail(syn[i] ": not run")
	if (!done) {
		if (qemu_rc == 124 || qemu_rc == 137)
			why = "qemu killed after the " guest_timeout " s timeout"
		else if (panic != "")
			why = "kernel panic"
		else
			why = "qemu exit status " qemu_rc
		addfail("guest: did not reach the end of its run (" why ")")
	}

	print ""
	print "==== mmk guest " mode " summary ===="
	print "kernel: " kernel ", accel " accel
	print "serial log: " logfile
	if (ntable) {
		print "programs:"
		for (i = 1; i <= ntable; i++)
			print table[i]
	}
	if (panic != "")
		print "kernel panic: " trim(panic)
	if (nskip) {
		print "skipped:"
		for (i = 1; i <= nskip; i++)
			print "  SKIP " skips[i]
	}
	if (ndm) {
		print "suspicious dmesg lines:"
		for (i = 1; i <= ndm && i <= 30; i++)
			print "  " dm[i]
		if (ndm > 30)
			print "  ... (" ndm - 30 " more in the serial log)"
	}
	if (nfail) {
		print "failed:"
		for (i = 1; i <= nfail; i++)
			print "  FAIL " fails[i]
	}
	print "guest wall time: " wall " s"
	line = npass " passed, " nfail " failed"
	if (nskip)
		line = line ", " nskip " skipped"
	print line
	exit(nfail > 0)
}' "${host_results[@]}" "$log"
rc=$?
set -e
exit "$rc"
