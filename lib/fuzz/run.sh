#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the libFuzzer target for a bounded time over the seed corpus and
# report the result as TAP (one test), for scripts/host-run.sh.
#
# usage: lib/fuzz/run.sh FUZZER
#
# Environment (optional):
#   MMK_FUZZ_TIME   seconds to fuzz (default 20)
#   MMK_FUZZ_RUNS   most inputs to run (default 5000000)
#   MMK_FUZZ_SEED   libFuzzer seed (default: libFuzzer picks one; it is printed)
#
# New inputs are kept in a corpus directory next to FUZZER (corpus/), so a
# later run starts from what this one found; the seed corpus in lib/fuzz/corpus
# is only read.  A failing input is saved next to FUZZER as crash-<sha1>;
# replay it with "FUZZER <file>".

set -uo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 FUZZER" >&2
	exit 2
fi
fuzzer=$1
here=$(cd "$(dirname "$0")" && pwd)
out_dir=$(cd "$(dirname "$fuzzer")" && pwd)
time=${MMK_FUZZ_TIME:-20}
runs=${MMK_FUZZ_RUNS:-5000000}
seed_opt=()
[ -n "${MMK_FUZZ_SEED:-}" ] && seed_opt=(-seed="$MMK_FUZZ_SEED")

echo "1..1"
if [ ! -x "$fuzzer" ]; then
	echo "not ok 1 fuzz_ops # $fuzzer not built"
	exit 1
fi
mkdir -p "$out_dir/corpus"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# -timeout: an input that runs this long counts as a hang (a failure).
"$fuzzer" -max_total_time="$time" -runs="$runs" -timeout=60 -print_final_stats=1 \
	-artifact_prefix="$out_dir/" "${seed_opt[@]}" \
	"$out_dir/corpus" "$here/corpus" >"$log" 2>&1
rc=$?

seed=$(sed -n 's/^INFO: Seed: \([0-9]*\).*/\1/p' "$log" | head -n 1)
done_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
corpus=$(sed -n 's/^#[0-9]*[[:space:]]*DONE .* corp: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
summary="${done_runs:-?} inputs in ${secs:-?} s (${eps:-?} exec/s), corpus ${corpus:-?}, seed ${seed:-?}"

if [ "$rc" -eq 0 ] && [ -n "$done_runs" ]; then
	echo "# fuzz_ops: $summary"
	echo "ok 1 fuzz_ops"
	exit 0
fi
# What went wrong: the harness's own message, the sanitizer's report, the input.
echo "# fuzz_ops: exit status $rc after $summary"
grep -E '^(fuzz_ops:|==[0-9]+==ERROR|SUMMARY:|artifact_prefix|Test unit written|.*runtime error)' "$log" |
	head -n 20 | sed 's/^/# /'
echo "# last lines of the libFuzzer log:"
tail -n 40 "$log" | sed 's/^/#   /'
echo "not ok 1 fuzz_ops"
exit 1
