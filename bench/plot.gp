# SPDX-License-Identifier: GPL-2.0
#
# Throughput and round-trip latency against message size, one line per
# contender, log scales.  Called by bench/report.sh with:
#   dir    the output directory (its data/*.dat files come from report.sh)
#   tp     contenders with throughput data, space-separated
#   lat    contenders with latency data
#   title  what ran (kernel, CPUs)
#   all    every contender, in a fixed order: a contender keeps its colour
#          and point type in both plots

set terminal pngcairo size 1000,650 noenhanced font ",10"
set datafile separator whitespace
set logscale xy
set grid xtics ytics mxtics mytics
set key outside right top
set xlabel "message size (bytes)"
set xtics ("64" 64, "1 KiB" 1024, "64 KiB" 65536, "1 MiB" 1048576)

style(c) = sum [i = 1:words(all)] (word(all, i) eq c ? i : 0)

set output dir . "/throughput.png"
set title "throughput, one stream, checked (" . title . ")"
set ylabel "GB/s"
plot for [c in tp] dir . "/data/tp-" . c . ".dat" using 1:2 with linespoints \
	linecolor style(c) pointtype style(c) title c, \
	dir . "/data/tp-memory-floor.dat" using 1:2 with lines dashtype 2 lw 2 linecolor "black" \
	title "memory floor (fill + check, no IPC)"

set output dir . "/latency.png"
set title "round trip A -> B -> A, median (" . title . ")"
set ylabel "microseconds"
plot for [c in lat] dir . "/data/lat-" . c . ".dat" using 1:2 with linespoints \
	linecolor style(c) pointtype style(c) title c, \
	dir . "/data/lat-memory-floor.dat" using 1:2 with lines dashtype 2 lw 2 linecolor "black" \
	title "2 x memory floor"
