# SPDX-License-Identifier: GPL-2.0
#
# mmk: top-level build.
#
#   make            build the module, the selftests and the examples
#   make check      install build dependencies, build, and run every test in a qemu guest
#   make install    install libmmk and mmkctl (PREFIX=/usr/local, DESTDIR)
#   make demo       build and run the demo in a qemu guest
#   make bench      run the benchmarks in a qemu guest; results in build/bench/
#   make help       list every target and variable
#
# The module is never loaded into the build machine's kernel: it is only
# loaded inside the qemu guest started by scripts/guest-run.sh.

# ---- guest kernel selection ----------------------------------------------
#
# By default the guest boots the newest Debian kernel of GUEST_SERIES and
# GUEST_FLAVOUR installed in /boot (with headers in /lib/modules/KVER/build),
# and the module is built against that kernel's headers.  Override with:
#
#   make check KVER=6.1.0-56-cloud-amd64                    one installed kernel
#   make check GUEST_SERIES=6.12                            newest 6.12 cloud kernel
#   make check GUEST_KERNEL_IMAGE=path/bzImage KDIR=path/to/kernel/tree
#                                                           a self-built kernel

GUEST_SERIES	?= 6.1
GUEST_FLAVOUR	?= cloud-amd64
# Evaluated on first use only (and after 'deps' has had a chance to install
# the kernel, since 'check' runs each stage in its own make).
KVER		?= $(eval KVER := $(shell sh $(CURDIR)/scripts/guest-kernel.sh \
			$(GUEST_SERIES) $(GUEST_FLAVOUR)))$(KVER)
KDIR		?= /lib/modules/$(KVER)/build
GUEST_KERNEL_IMAGE ?= /boot/vmlinuz-$(KVER)

# Debian packages for a guest kernel other than the default 6.1 series.
GUEST_PKGS	?= $(if $(filter-out 6.1,$(GUEST_SERIES)),\
		     linux-image-$(GUEST_SERIES)-$(GUEST_FLAVOUR) \
		     linux-headers-$(GUEST_SERIES)-$(GUEST_FLAVOUR))

# ---- paths -------------------------------------------------------------------

BUILD		:= $(CURDIR)/build
KSELFTEST_DIR	?= $(BUILD)/kselftest
MODULE		:= $(CURDIR)/kmod/mmk.ko

SUBMAKE		:= $(MAKE) --no-print-directory

# What scripts/guest-run.sh is told about the guest kernel.  KVER and the
# image are passed only when the user set them: otherwise the script finds
# the default kernel itself when it runs, after 'deps' may have installed it.
user_set	= $(filter command% environment% override,$(origin $(1)))
GUEST_RUN_ENV	= MMK_GUEST_SERIES='$(GUEST_SERIES)' MMK_GUEST_FLAVOUR='$(GUEST_FLAVOUR)' \
		  MMK_KO='$(MODULE)' \
		  $(if $(call user_set,KVER),MMK_KVER='$(KVER)') \
		  $(if $(call user_set,GUEST_KERNEL_IMAGE),MMK_KERNEL='$(GUEST_KERNEL_IMAGE)')

# ---- build -------------------------------------------------------------------

all: module lib selftests examples tools benchmarks

module:
	@if [ ! -d "$(KDIR)" ]; then \
		echo "error: no kernel build tree at KDIR='$(KDIR)'." >&2; \
		echo "       Run 'make deps' (installs linux-headers-$(GUEST_FLAVOUR))," >&2; \
		echo "       or pass KVER=<version> or KDIR=<kernel tree>." >&2; \
		exit 1; \
	fi
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

$(KSELFTEST_DIR)/kselftest_harness.h:
	bash $(CURDIR)/scripts/kselftest-headers.sh $(KSELFTEST_DIR)

kselftest-headers: $(KSELFTEST_DIR)/kselftest_harness.h

# The selftests as a kselftest target of linux-source-6.1's tree, built
# with its lib.mk and installed with its run_kselftest.sh into
# KSELFTEST_INSTALL (scripts/kselftest-install.sh).  make check runs them
# from there.
KSELFTEST_INSTALL := $(BUILD)/ksft/install

kselftest-install:
	@bash $(CURDIR)/scripts/kselftest-install.sh $(KSELFTEST_INSTALL)

lib:
	$(MAKE) -C lib TOP=$(CURDIR)

# The selftests include libmmk's suite, linked with build/lib/libmmk.a.
selftests: $(KSELFTEST_DIR)/kselftest_harness.h lib
	$(MAKE) -C selftests TOP=$(CURDIR) KSELFTEST_DIR=$(KSELFTEST_DIR)

# mmkctl, linked with libmnl (shared only, so mmkctl is not static).
tools:
	$(MAKE) -C tools/mmkctl TOP=$(CURDIR)

# mmk_bench and mmk_bench_micro (bench/), static like the selftests.
benchmarks: lib
	$(MAKE) -C bench TOP=$(CURDIR)

examples: lib
	$(if $(wildcard examples/Makefile),$(MAKE) -C examples TOP=$(CURDIR),@echo "examples: none yet")

# ---- dependencies, tests, demo ---------------------------------------------

deps:
	@bash $(CURDIR)/scripts/install-deps.sh $(GUEST_PKGS)

# Tests that need no module run on this machine first: libmmk's suite on
# the heap and static backends and its differential test (heap against
# static), under ASan and UBSan, and a bounded run of the libFuzzer target
# (lib/fuzz, FUZZ_TIME seconds).  Their results go to HOST_RESULTS, which
# the guest runner counts with its own.
HOST_RESULTS	:= $(BUILD)/host/results.log
HOST_RUN	:= bash $(CURDIR)/scripts/host-run.sh $(HOST_RESULTS)
FUZZ_TIME	?= 20

host-check:
	@rm -f $(HOST_RESULTS)
	@+$(SUBMAKE) -C lib TOP=$(CURDIR) host-tests
	@$(HOST_RUN) libmmk_heap $(BUILD)/lib/tests/suite-san heap
	@$(HOST_RUN) libmmk_static $(BUILD)/lib/tests/suite-san static
	@$(HOST_RUN) diff_heap_static $(BUILD)/lib/tests/diff-san -b static
	@+$(SUBMAKE) -C lib/fuzz TOP=$(CURDIR)
	@MMK_FUZZ_TIME='$(FUZZ_TIME)' $(HOST_RUN) fuzz_ops $(CURDIR)/lib/fuzz/run.sh \
		$(BUILD)/lib/fuzz/fuzz_ops
	@$(HOST_RUN) netlink_spec /usr/bin/python3 $(CURDIR)/scripts/check-netlink-spec.py
	@$(HOST_RUN) static_checks $(CURDIR)/scripts/static-checks.sh

# The build runs in its own make so that variables derived from what is
# installed (KVER, KDIR) are computed after 'deps' has installed it.  The
# guest suite runs once per kernel of CHECK_KERNELS, each with the module
# built for it (scripts/check-kernels.sh); the last line printed is the
# "N passed, N failed" summary over all of them and the host tests.  Add
# 'debug' is the KASAN/lockdep/kmemleak/fault-injection kernel of
# scripts/debug-kernel.sh: built once and cached outside the tree, its
# build starts in the background as soon as the dependencies are in, and
# its guest runs last.
CHECK_KERNELS	?= 6.1 6.12 debug

# The guests run the selftests from the kselftest install (MMK_KSELFTEST),
# so check builds them there instead of in build/selftests.
check:
	@+$(SUBMAKE) deps
	@$(if $(filter debug,$(CHECK_KERNELS)),mkdir -p $(BUILD)/guest && \
		bash $(CURDIR)/scripts/debug-kernel.sh build \
		>$(BUILD)/guest/debug-kernel-prebuild.log 2>&1 &)
	@+$(SUBMAKE) module lib examples tools benchmarks kselftest-install
	@+$(SUBMAKE) host-check
	@MMK_HOST_RESULTS='$(HOST_RESULTS)' MMK_KSELFTEST='$(KSELFTEST_INSTALL)' \
		bash $(CURDIR)/scripts/check-kernels.sh $(CHECK_KERNELS)

demo:
	@+$(SUBMAKE) deps
	@+$(SUBMAKE) module examples tools
	@$(GUEST_RUN_ENV) bash $(CURDIR)/scripts/guest-run.sh demo

# The benchmarks: one guest runs them all (2 vCPUs, TCG unless
# MMK_QEMU_ACCEL=kvm); bench/report.sh takes the results out of its console
# log into build/bench/results.csv, prints the table and draws the plots;
# bench/callgrind.sh counts instructions per operation of the heap and
# static backends on this machine.  MMK_BENCH_ARGS is passed to mmk_bench.
BENCH_OUT	:= $(BUILD)/bench

bench:
	@+$(SUBMAKE) deps
	@+$(SUBMAKE) module benchmarks
	@$(GUEST_RUN_ENV) bash $(CURDIR)/scripts/guest-run.sh bench
	@bash $(CURDIR)/bench/report.sh $(BUILD)/guest/bench.log $(BENCH_OUT)
	@bash $(CURDIR)/bench/callgrind.sh $(BENCH_OUT)/mmk_bench_micro $(BENCH_OUT)

# Run the guest without building anything first.
guest-check guest-demo guest-bench: guest-%:
	@$(GUEST_RUN_ENV) bash $(CURDIR)/scripts/guest-run.sh $*

# ---- install -------------------------------------------------------------------

# libmmk: <mmk/mmk.h>, libmmk.so.0, libmmk.a and mmk.pc under PREFIX (in DESTDIR).
install uninstall:
	$(MAKE) -C lib TOP=$(CURDIR) $@

# mmkctl: PREFIX/sbin/mmkctl and its man page, PREFIX/share/man/man8/mmkctl.8.
install: install-mmkctl
uninstall: uninstall-mmkctl
install-mmkctl uninstall-mmkctl: %-mmkctl:
	$(MAKE) -C tools/mmkctl TOP=$(CURDIR) $*

# The udev rule that gives /dev/mmk group mmk (docs/DEPLOYMENT.md).
UDEVRULESDIR	?= /lib/udev/rules.d
install: install-udev
uninstall: uninstall-udev
install-udev:
	install -d $(DESTDIR)$(UDEVRULESDIR)
	install -m 0644 udev/60-mmk.rules $(DESTDIR)$(UDEVRULESDIR)/60-mmk.rules
uninstall-udev:
	rm -f $(DESTDIR)$(UDEVRULESDIR)/60-mmk.rules

# ---- Debian packages -----------------------------------------------------------

# mmk-dkms, libmmk0, libmmk-dev and mmkctl (debian/), built with
# dpkg-buildpackage -us -uc -b from a clean copy of the tree, checked with
# lintian (no error allowed), into build/deb (scripts/deb-build.sh).
# deb-check installs them in a fresh Debian 12 root and builds an outside
# program there with pkg-config (scripts/deb-check.sh; root needed).
DEB_OUT		:= $(BUILD)/deb
DEB_RESULTS	:= $(BUILD)/host/deb-results.log

deb:
	@bash $(CURDIR)/scripts/deb-build.sh $(DEB_OUT)

deb-check:
	@+$(SUBMAKE) deps
	@rm -f $(DEB_RESULTS)
	@bash $(CURDIR)/scripts/host-run.sh $(DEB_RESULTS) deb_build \
		$(CURDIR)/scripts/deb-build.sh $(DEB_OUT)
	@bash $(CURDIR)/scripts/host-run.sh $(DEB_RESULTS) deb_install \
		$(CURDIR)/scripts/deb-check.sh $(DEB_OUT)

# ---- housekeeping ------------------------------------------------------------

clean:
	@if [ -d "$(KDIR)" ]; then \
		echo "$(MAKE) -C $(KDIR) M=$(CURDIR) clean"; \
		$(MAKE) -C $(KDIR) M=$(CURDIR) clean; \
	fi
	rm -f kmod/*.o kmod/*.ko kmod/*.mod kmod/*.mod.c kmod/.*.cmd kmod/modules.order \
		Module.symvers modules.order .*.cmd
	rm -rf $(BUILD)

help:
	@echo 'Targets:'
	@echo '  all (default)  build module, selftests and examples'
	@echo '  module         build kmod/mmk.ko against KDIR'
	@echo '  lib            build libmmk (build/lib/libmmk.so, libmmk.a)'
	@echo '  selftests      build the kselftest programs into build/selftests/'
	@echo '  examples       build the examples into build/examples/'
	@echo '  benchmarks     build mmk_bench and mmk_bench_micro into build/bench/'
	@echo '  tools          build mmkctl into build/tools/'
	@echo '  kselftest-headers  extract the kselftest headers into build/kselftest/'
	@echo '  kselftest-install  build the selftests as a kselftest target of linux-source-6.1'
	@echo '                 and install them with run_kselftest.sh into build/ksft/install/'
	@echo '  deps           install the Debian packages needed (as root)'
	@echo '  check          deps + build + host tests + all tests in a qemu guest'
	@echo '  host-check     run the tests that need no module (libmmk heap/static, sanitizers,'
	@echo '                 and the libFuzzer target for FUZZ_TIME seconds)'
	@echo '  install        install libmmk, mmkctl and the udev rule (PREFIX=/usr/local, DESTDIR=)'
	@echo '  uninstall      remove what install installed'
	@echo '  demo           deps + build + run the demo in a qemu guest'
	@echo '  bench          deps + build + benchmarks in a qemu guest, then the table, CSV and'
	@echo '                 plots in build/bench/ and callgrind counts on this machine'
	@echo '  guest-check    run the tests in the guest without building'
	@echo '  guest-demo     run the demo in the guest without building'
	@echo '  guest-bench    run the benchmarks in the guest without building or reporting'
	@echo '  deb            build the Debian packages into build/deb/ and run lintian'
	@echo '  deb-check      deb, then install them in a fresh Debian 12 root (debootstrap,'
	@echo '                 cached in /var/cache/mmk) and link a program there with pkg-config'
	@echo '  clean          remove all build outputs'
	@echo
	@echo 'Variables (current value):'
	@echo '  GUEST_SERIES=$(GUEST_SERIES) GUEST_FLAVOUR=$(GUEST_FLAVOUR)'
	@echo '  KVER=$(KVER)'
	@echo '  KDIR=$(KDIR)'
	@echo '  GUEST_KERNEL_IMAGE=$(GUEST_KERNEL_IMAGE)'
	@echo '  KSELFTEST_DIR=$(KSELFTEST_DIR)'
	@echo '  FUZZ_TIME=$(FUZZ_TIME) (seconds of fuzzing in host-check)'
	@echo '  CHECK_KERNELS=$(CHECK_KERNELS) (guest kernels of make check: any of 6.1, 6.12, debug)'
	@echo
	@echo 'Environment for scripts/guest-run.sh:'
	@echo '  MMK_QEMU_ACCEL=tcg|kvm  MMK_QEMU_CPU  MMK_QEMU_MEM  MMK_QEMU_SMP'
	@echo '  MMK_GUEST_TIMEOUT (s, whole guest)  MMK_TEST_TIMEOUT (s, per program)'
	@echo '  MMK_TESTS="a_test b_test" (run a subset)  MMK_CONSOLE_LOGLEVEL  MMK_GUEST_APPEND'
	@echo '  MMK_KSELFTEST=build/ksft/install (run the kselftest install with run_kselftest.sh)'
	@echo '  MMK_BENCH_ARGS (mmk_bench options in make bench, e.g. "-t 1 -r 5")'

.PHONY: all module lib selftests examples tools benchmarks kselftest-headers kselftest-install \
	deps check \
	host-check demo bench guest-check guest-demo guest-bench install uninstall install-mmkctl uninstall-mmkctl \
	install-udev uninstall-udev deb deb-check clean help
