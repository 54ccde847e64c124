#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run one test program on this machine (not in the guest) and append its
# output to a results file that scripts/guest-run.sh counts together with
# the guest's results (MMK_HOST_RESULTS).
#
# usage: scripts/host-run.sh RESULTS NAME PROGRAM [ARG...]
#
# The program prints TAP ("1..N", "ok N name", "not ok N name"); its output
# is framed by the same MMK-PROG-START / MMK-PROG-END markers as a guest
# program, with the name "host:NAME".  A program that crashes, or exits
# non-zero without a failing test, counts as a failure there.  This script
# itself exits 0 whatever the program did, so that 'make check' always gets
# to its summary line; it exits 2 only for a usage error.
#
# Environment: MMK_HOST_TIMEOUT (seconds per program, default 600).

set -uo pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 RESULTS NAME PROGRAM [ARG...]" >&2
	exit 2
fi
results=$1
name=host:$2
shift 2
timeout=${MMK_HOST_TIMEOUT:-600}

mkdir -p "$(dirname "$results")"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

start=$(date +%s.%N)
echo "MMK-PROG-START $name" | tee -a "$results"
if [ -x "$1" ]; then
	timeout -k 10 "$timeout" "$@" </dev/null >"$out" 2>&1
	rc=$?
else
	echo "# $1 is missing (not built?)" >"$out"
	rc=127
fi
# Output lines that look like the runner's own markers are neutralised.
sed -e 's/^MMK-/# MMK-/' "$out" | tee -a "$results"
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "MMK-PROG-END $name exit=$rc secs=$secs" | tee -a "$results"
exit 0
