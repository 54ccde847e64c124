# SPDX-License-Identifier: GPL-2.0
#
# The selftest programs, in run order: included by Makefile (build/selftests)
# and by Makefile.kselftest (the kselftest target), from this directory.
#
# Every *_test.c here, libmmk's suite (libmmk_test) and its differential
# test (diff_test); module_test, which unloads and reloads the module,
# runs last.
#
# NAME_32 is NAME built with -m32 (static, like the others): a 32-bit
# process on the 64-bit kernel, so that every ioctl goes through the
# compat path.  Built for libmmk's suite and the tests that drive the
# uAPI structs hardest; the rest (netlink, fuzzing, stress, torture,
# faults) would double the guest's time for little new coverage.
# window_test, loan_test and window_wide_test (pools with large ids) map
# windows from both.
MMK_TESTS_C	:= $(sort $(basename $(wildcard *_test.c)))
MMK_TESTS_32	:= libmmk_test access_test batch_test input_test mapping_test ops_test \
		   process_test window_test loan_test window_wide_test
MMK_PROGS	:= libmmk_test diff_test $(filter-out module_test,$(MMK_TESTS_C)) \
		   $(addsuffix _32,$(MMK_TESTS_32)) $(filter module_test,$(MMK_TESTS_C))

# -m32: window offsets (MMK_WINDOW_OFFSET) need a 64-bit off_t, as in
# any 32-bit application that maps windows; the harness compares
# pointers as integers (intmax_t), which gcc warns about where pointers
# are 32 bits wide.
MMK_CFLAGS_32	:= -m32 -D_FILE_OFFSET_BITS=64 -Wno-pointer-to-int-cast
