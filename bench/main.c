// SPDX-License-Identifier: GPL-2.0
/*
 * mmk_bench: mmk against pipes, unix sockets, POSIX message queues, a
 * shared-memory ring and iceoryx, side by side in one run, with the floors
 * and the system calls per message each side makes, counted.
 *
 *   mmk_bench [-t SECONDS] [-r ROUNDS] [-s SIZES] [-c CONTENDERS] [-a none|split|same]
 *             [-o FILE] [-P]
 *   mmk_bench --smoke [-c CONTENDERS]
 *   mmk_bench --crash [ROUNDS] [-P]
 *
 * -t  time budget of each measurement in each round (default 0.25)
 * -r  rounds (default 3): every measurement is made once per round, and
 *     the best round of each is reported
 * -s  comma-separated payload sizes in bytes (default 64,1024,65536,1048576)
 * -c  comma-separated contenders (default: all)
 * -a  where the two processes run: anywhere (none, the default), A on CPU 0
 *     and B on CPU 1 (split), or both on CPU 0 (same)
 * -o  write the CSV there (default: stdout, after the table)
 * -P  prefix every CSV line with "MMK-CSV " and every table line with
 *     "MMK-TAB ", for extraction from a console log
 * --smoke  the behaviour test: every contender (or those of -c) with a few
 *     messages, once clean (every checksum must match) and once with one
 *     corrupted message (exactly that one must be caught), and for the
 *     queue contenders one system call per side per hop, counted where the
 *     kernel can count; TAP output, exit status 1 if any check fails.
 *
 * --crash  kill -9 of a consumer holding messages, ROUNDS times (default
 *     100), for mmk and iceoryx side by side: a report (crash.c).
 *
 * Needs /dev/mmk (the module loaded) for the mmk contenders and the
 * syscall floor, and root for 1 MiB POSIX messages.  Exit status: 0, or 1
 * if a measurement failed or any checksum mismatched.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "report.h"

static const struct bench_link_ops *const all_links[] = {
	&link_mmk_copy, &link_mmk_zc, &link_mmk_batch,
	&link_mmk_queue, &link_mmk_queue_batch, &link_mmk_queue_zc,
	&link_pipe, &link_unix, &link_mq, &link_shm,
#ifdef HAVE_ICEORYX
	&link_iceoryx,
#endif
};
#define NLINKS	(sizeof(all_links) / sizeof(all_links[0]))

static const size_t default_sizes[] = { 64, 1024, 65536, 1048576 };
#define MAX_SIZES	16
#define MAX_SIZE	((size_t)8 << 20)

static const struct bench_link_ops *find_link(const char *name)
{
	size_t i;

	for (i = 0; i < NLINKS; i++)
		if (!strcmp(all_links[i]->name, name))
			return all_links[i];
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mmk_bench [-t SECONDS] [-r ROUNDS] [-s SIZES] [-c CONTENDERS] [-a none|split|same]\n"
		"                 [-o FILE] [-P]\n"
		"       mmk_bench --smoke [-c CONTENDERS]\n"
		"       mmk_bench --crash [ROUNDS] [-P]\n"
		"contenders:");
	for (size_t i = 0; i < NLINKS; i++)
		fprintf(stderr, " %s", all_links[i]->name);
	fprintf(stderr, "\n");
	exit(2);
}

/* ---- the behaviour test ------------------------------------------------------ */

static int tap_n, tap_failed;

static void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d ", ok ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		tap_failed++;
}

static int smoke(const struct bench_link_ops *const *links, size_t nlinks)
{
	static const size_t sizes[] = { 64, 65536, 1048576 };
	struct bench_limits tp = { UINT64_MAX, 40, 40, 0 }, lat = { UINT64_MAX, 10, 10, 0 };
	struct bench_limits cnt = { UINT64_MAX, 40, 40, 8 };
	bool counting = bench_sysc_init();
	struct bench_result r;
	uint64_t seq0 = 1000;
	size_t i, j, plan = 0;
	int rc;

	for (i = 0; i < nlinks; i++)
		plan += 3 * ((links[i]->pingpong ? 4 : 2) + (links[i]->one_call ? 1 : 0));
	printf("TAP version 13\n1..%zu\n", plan);
	for (i = 0; i < nlinks; i++) {
		const struct bench_link_ops *ops = links[i];

		if (ops->available && !ops->available()) {
			size_t t, n = 3 * ((ops->pingpong ? 4 : 2) + (ops->one_call ? 1 : 0));

			for (t = 0; t < n; t++)
				printf("ok %d %s # SKIP not available here (no RouDi running?)\n",
				       ++tap_n, ops->name);
			continue;
		}
		for (j = 0; j < 3; j++) {
			size_t sz = sizes[j];

			seq0 += 1000;
			rc = bench_throughput(ops, sz, &tp, seq0, &r);
			tap(!rc && r.mismatches == 0 && r.msgs == tp.max_msgs,
			    "%s %zu B: 40 messages streamed, all checksums match (%llu mismatches)",
			    ops->name, sz, (unsigned long long)r.mismatches);
			bench_corrupt_seq = seq0 + 17;
			rc = bench_throughput(ops, sz, &tp, seq0, &r);
			bench_corrupt_seq = UINT64_MAX;
			tap(!rc && r.mismatches == 1,
			    "%s %zu B: one corrupted message of 40 is caught (%llu mismatches)",
			    ops->name, sz, (unsigned long long)r.mismatches);
			if (!ops->pingpong)
				continue;
			rc = bench_latency(ops, sz, &lat, seq0, &r);
			tap(!rc && r.mismatches == 0 &&
			    r.msgs == lat.max_msgs - BENCH_LAT_WARMUP,
			    "%s %zu B: 10 round trips, all checksums match (%llu mismatches)",
			    ops->name, sz, (unsigned long long)r.mismatches);
			/* An answer: B fills the odd sequence numbers. */
			bench_corrupt_seq = seq0 + 2 * 4 + 1;
			rc = bench_latency(ops, sz, &lat, seq0, &r);
			bench_corrupt_seq = UINT64_MAX;
			tap(!rc && r.mismatches == 1,
			    "%s %zu B: one corrupted answer of 10 is caught (%llu mismatches)",
			    ops->name, sz, (unsigned long long)r.mismatches);
			if (!ops->one_call)
				continue;
			if (!counting) {
				printf("ok %d %s %zu B: one system call per side per hop"
				       " # SKIP system calls cannot be counted here\n",
				       ++tap_n, ops->name, sz);
				continue;
			}
			seq0 += 1000;
			rc = bench_latency(ops, sz, &cnt, seq0, &r);
			tap(!rc && r.mismatches == 0 && r.sys_a == 1.0 && r.sys_b == 1.0,
			    "%s %zu B: one system call per side per hop (A %.3f, B %.3f"
			    " per round trip, %llu counted)", ops->name, sz, r.sys_a, r.sys_b,
			    (unsigned long long)(cnt.max_msgs - cnt.count_from));
		}
	}
	printf("# %d passed, %d failed\n", tap_n - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

/* ---- the benchmark ------------------------------------------------------------------ */

/* The best of the rounds of one measurement. */
struct best {
	bool have;
	double ns;			/* per message, or median round trip */
	uint64_t iters;
	struct bench_result r;
};

static void keep_best(struct best *b, double ns, uint64_t iters, const struct bench_result *r)
{
	if (b->have && b->ns <= ns)
		return;
	b->have = true;
	b->ns = ns;
	b->iters = iters;
	if (r)
		b->r = *r;
}

static int measure_floors(const size_t *sizes, size_t nsizes, uint64_t budget,
			  struct best *mem, struct best *clk, struct best *sys)
{
	uint64_t iters;
	int failed = 0;
	size_t j;
	double v;

	for (j = 0; j < nsizes; j++) {
		v = bench_memory_floor_ns(sizes[j], budget / 2, &iters);
		if (v < 0 || bench_mismatches) {
			fprintf(stderr, "mmk_bench: memory floor %zu B failed\n", sizes[j]);
			bench_mismatches = 0;
			failed = 1;
			continue;
		}
		keep_best(&mem[j], v, iters, NULL);
	}
	v = bench_clock_ns(budget / 4, &iters);
	keep_best(clk, v, iters, NULL);
	v = bench_syscall_floor_ns(budget / 2, &iters);
	if (v < 0)
		fprintf(stderr, "mmk_bench: syscall floor: /dev/mmk: %s\n", strerror(errno));
	else
		keep_best(sys, v, iters, NULL);
	return failed;
}

/*
 * Every measurement @rounds times, interleaved: a round measures the
 * floors, then every cell once.  What else runs on the machine (another
 * guest on the same host CPUs) then disturbs every contender alike, and the
 * best round of each cell is the least disturbed one.  Fills @rep; returns
 * 1 if any measurement failed or saw a mismatch.
 */
static int run_rounds(struct report *rep, const struct bench_link_ops *const *links,
		      size_t nlinks, const size_t *sizes, size_t nsizes,
		      const struct bench_limits *lim, unsigned int rounds)
{
	static struct best tp[NLINKS][MAX_SIZES], lat[NLINKS][MAX_SIZES];
	struct best mem[MAX_SIZES] = { 0 }, clk = { 0 }, sys = { 0 };
	struct bench_result r;
	uint64_t seq0 = 1;
	unsigned int round;
	size_t i, j;
	int failed = 0;

	memset(tp, 0, sizeof(tp));
	memset(lat, 0, sizeof(lat));
	for (round = 0; round < rounds; round++) {
		fprintf(stderr, "mmk_bench: round %u of %u\n", round + 1, rounds);
		failed |= measure_floors(sizes, nsizes, lim->budget_ns, mem, &clk, &sys);
		for (j = 0; j < nsizes; j++) {
			for (i = 0; i < nlinks; i++) {
				seq0 += 1ULL << 40;
				if (bench_throughput(links[i], sizes[j], lim, seq0, &r) ||
				    r.mismatches || !r.msgs) {
					fprintf(stderr, "mmk_bench: %s %zu B throughput FAILED"
						" (%llu mismatches)\n", links[i]->name, sizes[j],
						(unsigned long long)r.mismatches);
					failed = 1;
					continue;
				}
				keep_best(&tp[i][j], (double)r.ns / (double)r.msgs, r.msgs, &r);
			}
			for (i = 0; i < nlinks; i++) {
				if (!links[i]->pingpong)
					continue;
				seq0 += 1ULL << 40;
				if (bench_latency(links[i], sizes[j], lim, seq0, &r) || r.mismatches) {
					fprintf(stderr, "mmk_bench: %s %zu B round trips FAILED"
						" (%llu mismatches)\n", links[i]->name, sizes[j],
						(unsigned long long)r.mismatches);
					failed = 1;
					continue;
				}
				keep_best(&lat[i][j], (double)r.median_ns, r.msgs, &r);
			}
		}
	}

	for (j = 0; j < nsizes; j++)
		if (mem[j].have)
			report_floor(rep, "memory", sizes[j], mem[j].iters, mem[j].ns);
	report_floor(rep, "clock", 0, clk.iters, clk.ns);
	if (sys.have)
		report_floor(rep, "syscall", 0, sys.iters, sys.ns);
	for (i = 0; i < nlinks; i++)
		for (j = 0; j < nsizes; j++)
			if (tp[i][j].have)
				report_throughput(rep, links[i], sizes[j], &tp[i][j].r);
	for (i = 0; i < nlinks; i++)
		for (j = 0; j < nsizes; j++)
			if (lat[i][j].have)
				report_latency(rep, links[i], sizes[j], &lat[i][j].r);
	return failed;
}

/*
 * System calls per message (round trip) of each side, counted in runs of
 * their own, after the timed ones (counting makes every system call
 * slower): after 4 x depth messages of warm-up (every slot and window
 * touched once), 8 x depth messages are counted.  Returns 1 if a run
 * failed.
 */
static int count_syscalls(struct report *rep, const struct bench_link_ops *const *links,
			  size_t nlinks, const size_t *sizes, size_t nsizes)
{
	struct bench_result r;
	uint64_t seq0 = 1ULL << 60;
	int failed = 0;
	size_t i, j;

	if (!bench_sysc_init()) {
		fprintf(stderr, "mmk_bench: system calls cannot be counted here"
			" (no perf tracepoint raw_syscalls:sys_enter)\n");
		return 0;
	}
	fprintf(stderr, "mmk_bench: counting system calls\n");
	for (j = 0; j < nsizes; j++) {
		unsigned int d = bench_depth(sizes[j]);
		struct bench_limits lim = { UINT64_MAX, 12 * (uint64_t)d, 12 * (uint64_t)d,
					    4 * (uint64_t)d };

		for (i = 0; i < nlinks; i++) {
			seq0 += 1ULL << 40;
			if (bench_throughput(links[i], sizes[j], &lim, seq0, &r) || r.mismatches) {
				fprintf(stderr, "mmk_bench: %s %zu B counted stream FAILED\n",
					links[i]->name, sizes[j]);
				failed = 1;
			} else {
				report_syscalls(rep, "throughput", links[i]->name, sizes[j],
						r.sys_a, r.sys_b);
			}
			if (!links[i]->pingpong)
				continue;
			seq0 += 1ULL << 40;
			if (bench_latency(links[i], sizes[j], &lim, seq0, &r) || r.mismatches) {
				fprintf(stderr, "mmk_bench: %s %zu B counted round trips FAILED\n",
					links[i]->name, sizes[j]);
				failed = 1;
			} else {
				report_syscalls(rep, "latency", links[i]->name, sizes[j],
						r.sys_a, r.sys_b);
			}
		}
	}
	return failed;
}

static size_t parse_sizes(char *arg, size_t *sizes)
{
	size_t n = 0;
	char *tok, *end;

	for (tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		unsigned long long v = strtoull(tok, &end, 0);

		if (*end || !v || v % BENCH_WORD || v > MAX_SIZE || n == MAX_SIZES) {
			fprintf(stderr, "mmk_bench: bad size '%s' (a multiple of %d, up to %zu)\n",
				tok, BENCH_WORD, MAX_SIZE);
			exit(2);
		}
		sizes[n++] = (size_t)v;
	}
	return n;
}

static size_t parse_links(char *arg, const struct bench_link_ops **links)
{
	size_t n = 0;
	char *tok;

	for (tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		const struct bench_link_ops *ops = find_link(tok);

		if (!ops || n == NLINKS) {
			fprintf(stderr, "mmk_bench: unknown contender '%s'\n", tok);
			usage();
		}
		links[n++] = ops;
	}
	return n;
}

int main(int argc, char **argv)
{
	const struct bench_link_ops *links[NLINKS];
	size_t sizes[MAX_SIZES], nsizes = 0, nlinks = 0;
	struct bench_limits lim = { 250000000ULL, 0, UINT64_MAX, 0 };
	unsigned int rounds = 3;
	const char *csv_path = NULL;
	static struct report rep;
	bool prefix = false, smoke_only = false;
	unsigned int crash_rounds = 0;
	int opt, failed = 0;
	double v;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "--crash-consumer"))
		return bench_crash_consumer(argc - 2, argv + 2);
	for (int a = 1; a < argc; a++) {
		int drop = 1;

		if (!strcmp(argv[a], "--smoke")) {
			smoke_only = true;
		} else if (!strcmp(argv[a], "--crash")) {
			crash_rounds = 100;
			if (a + 1 < argc && argv[a + 1][0] >= '0' && argv[a + 1][0] <= '9') {
				crash_rounds = (unsigned int)strtoul(argv[a + 1], NULL, 10);
				drop = 2;
			}
		} else {
			continue;
		}
		memmove(&argv[a], &argv[a + drop], (size_t)(argc - a - drop + 1) * sizeof(*argv));
		argc -= drop;
		a--;
	}
	while ((opt = getopt(argc, argv, "t:r:s:c:o:a:Ph")) != -1) {
		switch (opt) {
		case 'r':
			rounds = (unsigned int)strtoul(optarg, NULL, 10);
			if (rounds < 1 || rounds > 100)
				usage();
			break;
		case 'a':
			if (!strcmp(optarg, "split"))
				bench_affinity = AFFINITY_SPLIT;
			else if (!strcmp(optarg, "same"))
				bench_affinity = AFFINITY_SAME;
			else if (strcmp(optarg, "none"))
				usage();
			break;
		case 't':
			v = strtod(optarg, NULL);
			if (!(v > 0 && v < 3600))
				usage();
			lim.budget_ns = (uint64_t)(v * 1e9);
			break;
		case 's':
			nsizes = parse_sizes(optarg, sizes);
			break;
		case 'c':
			nlinks = parse_links(optarg, links);
			break;
		case 'o':
			csv_path = optarg;
			break;
		case 'P':
			prefix = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (smoke_only)
		return nlinks ? smoke(links, nlinks) : smoke(all_links, NLINKS);
	if (crash_rounds)
		return bench_crash("/proc/self/exe", crash_rounds, prefix ? "MMK-TAB " : "");
	if (!nsizes)
		for (nsizes = 0; nsizes < sizeof(default_sizes) / sizeof(default_sizes[0]); nsizes++)
			sizes[nsizes] = default_sizes[nsizes];
	if (!nlinks) {
		for (size_t i = 0; i < NLINKS; i++) {
			if (all_links[i]->available && !all_links[i]->available()) {
				fprintf(stderr, "mmk_bench: %s is not available here, left out\n",
					all_links[i]->name);
				continue;
			}
			links[nlinks++] = all_links[i];
		}
	}

	report_init(&rep);
	fprintf(stderr, "mmk_bench: %zu contenders, %zu sizes, %u rounds of %.2f s a measurement\n",
		nlinks, nsizes, rounds, (double)lim.budget_ns / 1e9);

	failed = run_rounds(&rep, links, nlinks, sizes, nsizes, &lim, rounds);
	failed |= count_syscalls(&rep, links, nlinks, sizes, nsizes);
	report_ratios(&rep);
	printf("%sbest of %u rounds, %.2f s per measurement and round\n",
	       prefix ? "MMK-TAB " : "", rounds, (double)lim.budget_ns / 1e9);
	report_table(&rep, stdout, prefix ? "MMK-TAB " : "");
	report_targets(&rep, stdout, prefix ? "MMK-TAB " : "");
	if (csv_path) {
		FILE *f = fopen(csv_path, "w");

		if (!f) {
			perror(csv_path);
			return 1;
		}
		report_csv(&rep, f, "");
		if (fclose(f))
			failed = 1;
	} else {
		report_csv(&rep, stdout, prefix ? "MMK-CSV " : "");
	}
	return failed;
}
