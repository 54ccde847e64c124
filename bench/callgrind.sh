#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Instructions per operation of the heap and static backends, counted by
# valgrind's callgrind on this machine (no module needed).
#
# usage: bench/callgrind.sh MICRO OUTDIR
#
# MICRO is mmk_bench_micro.  Each op runs N and 2N times; the difference of
# the two totals over N is the count per op, free of start-up and
# construction costs.  Writes OUTDIR/callgrind.csv (backend,op,
# instructions_per_op) and prints it.

set -euo pipefail

micro=${1:?usage: callgrind.sh MICRO OUTDIR}
out=${2:?usage: callgrind.sh MICRO OUTDIR}
n=${MMK_CALLGRIND_N:-20000}

if ! command -v valgrind >/dev/null 2>&1; then
	echo "callgrind: valgrind not found (package valgrind): no instruction counts" >&2
	exit 0
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Total instructions (Ir) of one run, from the "totals:" (or "summary:")
# line callgrind writes at the end of its output file.
total() {	# BACKEND OP COUNT
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" -q \
		"$micro" -b "$1" -o "$2" -n "$3" >/dev/null 2>"$tmp/cg.err" || {
		cat "$tmp/cg.err" >&2
		return 1
	}
	awk '/^(totals|summary):/ { v = $2 } END { if (v == "") exit 1; print v }' "$tmp/cg.out"
}

echo "backend,op,instructions_per_op" >"$out/callgrind.csv"
for backend in heap static; do
	for op in store+free read write peek loan+free; do
		a=$(total "$backend" "$op" "$n")
		b=$(total "$backend" "$op" $((2 * n)))
		awk -v a="$a" -v b="$b" -v n="$n" -v be="$backend" -v op="$op" \
			'BEGIN { printf "%s,%s,%.1f\n", be, op, (b - a) / n }' >>"$out/callgrind.csv"
	done
done
echo
echo "==== instructions per operation (callgrind, this machine, per op of mmk_bench_micro) ===="
column -s, -t "$out/callgrind.csv" 2>/dev/null || cat "$out/callgrind.csv"
echo "counts: $out/callgrind.csv"
