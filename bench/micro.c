// SPDX-License-Identifier: GPL-2.0
/*
 * mmk_bench_micro: what one libmmk operation costs, per backend.
 *
 *   mmk_bench_micro [-t SECONDS] [-P]       time every op on every backend
 *   mmk_bench_micro -b BACKEND -o OP -n N   run one op N times, untimed
 *                                           (for valgrind --tool=callgrind)
 *
 * Backends: kernel (needs /dev/mmk), kernel-pa (a page-aligned kernel
 * pool: write guards and loans write through the slot's window), heap,
 * static.  Ops on a 64-byte message:
 *   store+free   mmk_store then mmk_free
 *   read         mmk_read then mmk_read_release (message stored once)
 *   write        mmk_read_mut then mmk_write_release
 *   peek         mmk_peek_header then mmk_header_release
 *   loan+free    mmk_loan, set the payload size, mmk_write_release (publish),
 *                mmk_free: the zero-copy producer's calls, without the fill
 *   loan+pub32   loan+free 32 messages at a time: one mmk_batch of 32
 *                loans, one of 32 write releases (publish), one of 32
 *                frees; ns per message
 * Each op is also counted, untimed: system calls, page faults and TLB
 * flushes per op (perf; "-" where the kernel cannot count them).
 * The timed mode prints the report's CSV (kind "micro", ns_per_op is per
 * op, all its calls); -P prefixes the lines as mmk_bench -P does.  Exit status 1 if an
 * operation fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/perf_event.h>
#include <mmk/mmk.h>

#include "bench.h"
#include "report.h"

#define MICRO_PAYLOAD	64
#define MICRO_SLOTS	40
#define MICRO_BATCH	32

static MMK_STATIC_STORAGE(micro_storage, MICRO_SLOTS, MICRO_PAYLOAD);

static const char *const backends[] = { "kernel", "kernel-pa", "heap", "static" };
static const char *const ops[] = { "store+free", "read", "write", "peek", "loan+free",
				   "loan+pub32" };

static struct mmk_manager *open_backend(const char *name)
{
	struct mmk_config cfg = {
		.payload_size = MICRO_PAYLOAD, .capacity = MICRO_SLOTS, .mode = 0600,
	};
	struct mmk_manager *m = NULL;
	enum mmk_error e = MMK_E_INVALID;

	if (!strcmp(name, "kernel"))
		e = mmk_kernel_create(&cfg, &m);
	else if (!strcmp(name, "kernel-pa")) {
		cfg.flags = MMK_POOL_PAGE_ALIGNED;
		e = mmk_kernel_create(&cfg, &m);
	}
	else if (!strcmp(name, "heap"))
		e = mmk_heap_create(&cfg, &m);
	else if (!strcmp(name, "static"))
		e = mmk_static_create(MMK_STATIC(micro_storage), &cfg, &m);
	if (e) {
		fprintf(stderr, "mmk_bench_micro: %s: %s\n", name, mmk_strerror(e));
		return NULL;
	}
	return m;
}

/* Run @op @n times; returns 0, or the first error. */
static enum mmk_error run_op(struct mmk_manager *m, const char *op, uint64_t n, uint64_t tok)
{
	static const unsigned char payload[MICRO_PAYLOAD];
	enum mmk_error e = MMK_OK;
	uint64_t i, t;

	if (!strcmp(op, "store+free")) {
		for (i = 0; i < n && !e; i++) {
			e = mmk_store(m, NULL, payload, sizeof(payload), &t);
			if (!e)
				e = mmk_free(m, t);
		}
	} else if (!strcmp(op, "read")) {
		struct mmk_read_guard g;

		for (i = 0; i < n && !e; i++) {
			e = mmk_read(m, tok, &g);
			if (!e)
				e = mmk_read_release(&g);
		}
	} else if (!strcmp(op, "write")) {
		struct mmk_write_guard g;

		for (i = 0; i < n && !e; i++) {
			e = mmk_read_mut(m, tok, &g);
			if (!e)
				e = mmk_write_release(&g);
		}
	} else if (!strcmp(op, "peek")) {
		struct mmk_header_guard g;

		for (i = 0; i < n && !e; i++) {
			e = mmk_peek_header(m, tok, &g);
			if (!e)
				e = mmk_header_release(&g);
		}
	} else if (!strcmp(op, "loan+free")) {
		struct mmk_write_guard g;

		for (i = 0; i < n && !e; i++) {
			e = mmk_loan(m, &g);
			if (e)
				break;
			g.msg->header.payload_size = sizeof(payload);
			t = g.token;
			e = mmk_write_release(&g);
			if (!e)
				e = mmk_free(m, t);
		}
	} else if (!strcmp(op, "loan+pub32")) {
		static struct mmk_write_guard g[MICRO_BATCH];
		static struct mmk_batch_op b[MICRO_BATCH];
		uint64_t tk[MICRO_BATCH];
		size_t k;

		for (i = 0; i < n && !e; i += MICRO_BATCH) {
			for (k = 0; k < MICRO_BATCH; k++)
				b[k] = (struct mmk_batch_op){ .op = MMK_OP_LOAN, .guard = &g[k] };
			e = mmk_batch(m, b, MICRO_BATCH, NULL);
			if (e)
				break;
			for (k = 0; k < MICRO_BATCH; k++) {
				g[k].msg->header.payload_size = sizeof(payload);
				tk[k] = g[k].token;
				b[k] = (struct mmk_batch_op){ .op = MMK_OP_WRITE_RELEASE,
							      .guard = &g[k] };
			}
			e = mmk_batch(m, b, MICRO_BATCH, NULL);
			for (k = 0; k < MICRO_BATCH && !e; k++)
				b[k] = (struct mmk_batch_op){ .op = MMK_OP_FREE, .token = tk[k] };
			if (!e)
				e = mmk_batch(m, b, MICRO_BATCH, NULL);
		}
	} else {
		e = MMK_E_INVALID;
	}
	return e;
}

/* Time @op: batches of 1024 until the budget is spent. */
static int time_op(struct mmk_manager *m, const char *op, uint64_t tok, uint64_t budget_ns,
		   uint64_t *count, double *ns)
{
	uint64_t t0, t, n = 0;
	enum mmk_error e;

	if ((e = run_op(m, op, 64, tok)))	/* warm-up */
		goto fail;
	t0 = bench_now_ns();
	do {
		if ((e = run_op(m, op, 1024, tok)))
			goto fail;
		n += 1024;
	} while ((t = bench_now_ns()) - t0 < budget_ns);
	*count = n;
	*ns = (double)(t - t0) / (double)n;
	return 0;
fail:
	fprintf(stderr, "mmk_bench_micro: %s: %s\n", op, mmk_strerror(e));
	return -1;
}

/*
 * What an op costs that a clock does not show: system calls, page faults
 * and TLB flushes per op, counted (perf) over 1024 untimed ops.  Counters
 * the kernel does not have print as "-".
 */
enum { CNT_SYSCALLS, CNT_FAULTS, CNT_FLUSHES, CNT_N };
static int cnt_fd[CNT_N] = { -1, -1, -1 };

static void counters_open(void)
{
	long long id;

	if (bench_sysc_init())
		cnt_fd[CNT_SYSCALLS] = bench_sysc_open();
	cnt_fd[CNT_FAULTS] = bench_counter_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS);
	id = bench_tp_id("tlb/tlb_flush");
	if (id >= 0)
		cnt_fd[CNT_FLUSHES] = bench_counter_open(PERF_TYPE_TRACEPOINT, (uint64_t)id);
}

static void count_op(struct mmk_manager *m, const char *op, uint64_t tok)
{
	static const char *const what[CNT_N] = { "syscalls", "faults", "tlb flushes" };
	uint64_t c0[CNT_N], c1[CNT_N];
	int i;

	for (i = 0; i < CNT_N; i++)
		c0[i] = bench_sysc_read(cnt_fd[i]);
	if (run_op(m, op, 1024, tok)) {
		printf("\n");
		return;
	}
	for (i = 0; i < CNT_N; i++)
		c1[i] = bench_sysc_read(cnt_fd[i]);
	for (i = 0; i < CNT_N; i++) {
		if (cnt_fd[i] < 0)
			printf("  %s -", what[i]);
		else
			printf("  %6.2f %s", (double)(c1[i] - c0[i]) / 1024.0, what[i]);
	}
	printf("\n");
}

static void usage(void)
{
	fprintf(stderr, "usage: mmk_bench_micro [-t SECONDS] [-P]\n"
		"       mmk_bench_micro -b kernel|kernel-pa|heap|static\n"
		"                       -o store+free|read|write|peek|loan+free|loan+pub32 -n N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *backend = NULL, *op = NULL;
	uint64_t budget = 500000000ULL, n = 0, count, tok;
	struct report rep;
	bool prefix = false;
	int opt, failed = 0;
	size_t b, o;
	double ns;

	while ((opt = getopt(argc, argv, "t:Pb:o:n:")) != -1) {
		switch (opt) {
		case 't':
			budget = (uint64_t)(strtod(optarg, NULL) * 1e9);
			break;
		case 'P':
			prefix = true;
			break;
		case 'b':
			backend = optarg;
			break;
		case 'o':
			op = optarg;
			break;
		case 'n':
			n = strtoull(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !!backend != !!op || (backend && !n))
		usage();

	if (backend) {		/* one op, untimed */
		struct mmk_manager *m = open_backend(backend);
		enum mmk_error e;

		if (!m)
			return 1;
		e = mmk_store(m, NULL, "x", 1, &tok);
		if (!e)
			e = run_op(m, op, n, tok);
		if (e)
			fprintf(stderr, "mmk_bench_micro: %s %s: %s\n", backend, op, mmk_strerror(e));
		mmk_close(m);
		return e ? 1 : 0;
	}

	report_init(&rep);
	counters_open();
	for (b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
		struct mmk_manager *m = open_backend(backends[b]);

		if (!m) {
			failed = 1;
			continue;
		}
		if (mmk_store(m, NULL, "x", 1, &tok)) {
			failed = 1;
			mmk_close(m);
			continue;
		}
		for (o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
			if (time_op(m, ops[o], tok, budget, &count, &ns)) {
				failed = 1;
				continue;
			}
			report_micro(&rep, backends[b], ops[o], MICRO_PAYLOAD, count, ns);
			printf("%s%-9s %-11s %10.1f ns per op", prefix ? "MMK-TAB " : "",
			       backends[b], ops[o], ns);
			count_op(m, ops[o], tok);
		}
		mmk_close(m);
	}
	report_csv(&rep, stdout, prefix ? "MMK-CSV " : "");
	return failed;
}
