#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Take the benchmark results out of a guest's console log and report them.
#
# usage: bench/report.sh LOG OUTDIR
#
# Writes OUTDIR/results.csv (the "MMK-CSV " lines, one header), OUTDIR/table.txt
# (the "MMK-TAB " lines: table, ratios and targets, as mmk_bench printed
# them), prints the table, and draws OUTDIR/throughput.png and
# OUTDIR/latency.png with gnuplot (bench/plot.gp), if gnuplot is there.
# Exit status 1 if the log holds no results.

set -euo pipefail

log=${1:?usage: report.sh LOG OUTDIR}
out=${2:?usage: report.sh LOG OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/data"

# Console lines may end in \r and carry kernel messages in between: keep
# only whole lines with our prefixes.
sed -n 's/\r$//; s/^MMK-CSV //p' "$log" | awk 'NR == 1 || !/^kind,/' >"$out/results.csv"
sed -n 's/\r$//; s/^MMK-TAB //p' "$log" >"$out/table.txt"
if [ "$(wc -l <"$out/results.csv")" -le 1 ]; then
	echo "report: no results in $log" >&2
	exit 1
fi
guest=$(sed -n 's/\r$//; s/^MMK-BENCH-GUEST //p' "$log" | head -n 1)

echo
echo "==== mmk benchmarks${guest:+ ($guest)} ===="
cat "$out/table.txt"
echo
echo "results: $out/results.csv"

# One data file per contender and kind: size, value.
rm -f "$out"/data/*.dat
awk -F, -v dir="$out/data" '
NR == 1 { next }
$1 == "throughput" { print $4, $8 >> (dir "/tp-" $2 ".dat") }
$1 == "latency" { print $4, $9 / 1000 >> (dir "/lat-" $2 ".dat") }
$1 == "floor" && $2 == "memory" {
	print $4, $8 >> (dir "/tp-memory-floor.dat")
	# A round trip fills and checks two messages.
	print $4, 2 * $11 / 1000 >> (dir "/lat-memory-floor.dat")
}' "$out/results.csv"

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "report: gnuplot not found (package gnuplot-nox): no plots" >&2
	exit 0
fi
names() {	# the contenders of one kind, in the order of the CSV
	awk -F, -v k="$1" 'NR > 1 && $1 == k && !seen[$2]++ { printf "%s ", $2 }' \
		"$out/results.csv"
}
gnuplot -e "dir='$out'; tp='$(names throughput)'; lat='$(names latency)'; \
	all='$(names throughput)'; title='${guest:-guest}'" "$here/plot.gp"
echo "plots: $out/throughput.png $out/latency.png"
