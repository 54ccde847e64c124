// SPDX-License-Identifier: GPL-2.0
/* Rows, ratios, table, targets and CSV of a run (report.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

void report_init(struct report *rep)
{
	memset(rep, 0, sizeof(*rep));
}

static struct report_row *add(struct report *rep, const char *kind, const char *name,
			      const char *op, size_t size)
{
	struct report_row *r;

	if (rep->n == REPORT_ROWS_MAX)
		return NULL;
	r = &rep->rows[rep->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->kind, sizeof(r->kind), "%s", kind);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->op, sizeof(r->op), "%s", op);
	r->size = size;
	r->seconds = r->rate = r->gbs = r->median = r->p99 = r->nsop = NAN;
	r->x_peer = r->x_mem = r->x_sys = NAN;
	r->sys_a = r->sys_b = NAN;
	return r;
}

void report_floor(struct report *rep, const char *which, size_t size, uint64_t iters,
		  double ns)
{
	struct report_row *r = add(rep, "floor", which, which, size);

	if (!r)
		return;
	r->count = iters;
	r->nsop = ns;
	r->seconds = ns * (double)iters / 1e9;
	r->rate = 1e9 / ns;
	if (size)
		r->gbs = (double)size / ns;
}

void report_throughput(struct report *rep, const struct bench_link_ops *ops, size_t size,
		       const struct bench_result *res)
{
	struct report_row *r = add(rep, "throughput", ops->name, "stream", size);

	if (!r || !res->msgs || !res->ns)
		return;
	r->peer = ops->peer;
	r->count = res->msgs;
	r->seconds = (double)res->ns / 1e9;
	r->rate = (double)res->msgs / r->seconds;
	r->gbs = r->rate * (double)size / 1e9;
	r->nsop = (double)res->ns / (double)res->msgs;
}

void report_latency(struct report *rep, const struct bench_link_ops *ops, size_t size,
		    const struct bench_result *res)
{
	struct report_row *r = add(rep, "latency", ops->name, "roundtrip", size);

	if (!r)
		return;
	r->peer = ops->peer;
	r->count = res->msgs;
	r->median = (double)res->median_ns;
	r->p99 = (double)res->p99_ns;
	r->nsop = r->median;
}

void report_micro(struct report *rep, const char *backend, const char *op, size_t size,
		  uint64_t count, double ns)
{
	struct report_row *r = add(rep, "micro", backend, op, size);

	if (!r)
		return;
	r->count = count;
	r->nsop = ns;
	r->seconds = ns * (double)count / 1e9;
	r->rate = 1e9 / ns;
}

static const struct report_row *find(const struct report *rep, const char *kind,
				     const char *name, size_t size)
{
	size_t i;

	for (i = 0; i < rep->n; i++) {
		const struct report_row *r = &rep->rows[i];

		if (!strcmp(r->kind, kind) && !strcmp(r->name, name) && r->size == size &&
		    !isnan(r->nsop))
			return r;
	}
	return NULL;
}

void report_syscalls(struct report *rep, const char *kind, const char *name, size_t size,
		     double a, double b)
{
	struct report_row *r = NULL;
	size_t i;

	for (i = 0; i < rep->n && !r; i++)
		if (!strcmp(rep->rows[i].kind, kind) && !strcmp(rep->rows[i].name, name) &&
		    rep->rows[i].size == size)
			r = &rep->rows[i];
	if (!r)
		return;
	r->sys_a = a < 0 ? NAN : a;
	r->sys_b = b < 0 ? NAN : b;
}

/* Best peer of a kind and size: highest rate, or lowest median.  @only: a
 * NULL-terminated list of names to choose from, or NULL for every peer. */
static const struct report_row *best_peer(const struct report *rep, const char *kind,
					  size_t size, const char *const *only)
{
	const struct report_row *best = NULL;
	size_t i, j;

	for (i = 0; i < rep->n; i++) {
		const struct report_row *r = &rep->rows[i];
		bool listed = !only;

		if (!r->peer || strcmp(r->kind, kind) || r->size != size || isnan(r->nsop))
			continue;
		for (j = 0; only && only[j]; j++)
			listed |= !strcmp(only[j], r->name);
		if (listed && (!best || r->nsop < best->nsop))
			best = r;
	}
	return best;
}

void report_ratios(struct report *rep)
{
	const struct report_row *sys = find(rep, "floor", "syscall", 0);
	size_t i;

	for (i = 0; i < rep->n; i++) {
		struct report_row *r = &rep->rows[i];
		const struct report_row *mem = find(rep, "floor", "memory", r->size);
		const struct report_row *best;
		bool tp = !strcmp(r->kind, "throughput"), lat = !strcmp(r->kind, "latency");

		if (!tp && !lat)
			continue;
		best = best_peer(rep, r->kind, r->size, NULL);
		if (best)	/* > 1: better than the best peer, in both kinds */
			r->x_peer = best->nsop / r->nsop;
		if (mem)
			r->x_mem = r->nsop / (tp ? mem->nsop : 2 * mem->nsop);
		if (sys)
			r->x_sys = r->nsop / sys->nsop;
	}
}

static const char *human_size(size_t size, char *buf, size_t len)
{
	if (size >= (1 << 20) && !(size % (1 << 20)))
		snprintf(buf, len, "%zu MiB", size >> 20);
	else if (size >= 1024 && !(size % 1024))
		snprintf(buf, len, "%zu KiB", size >> 10);
	else
		snprintf(buf, len, "%zu B", size);
	return buf;
}

static void cell(FILE *f, const char *fmt, double v)
{
	if (isnan(v))
		fprintf(f, "%*s", atoi(fmt + 1), "-");
	else
		fprintf(f, fmt, v);
}

void report_table(const struct report *rep, FILE *f, const char *p)
{
	char sz[32];
	size_t i;

	fprintf(f, "%sfloors (no IPC): memory = fill + check of one message in one process;"
		" syscall = an ioctl on /dev/mmk that does nothing;"
		" clock = one clock_gettime\n", p);
	for (i = 0; i < rep->n; i++) {
		const struct report_row *r = &rep->rows[i];

		if (strcmp(r->kind, "floor"))
			continue;
		if (!strcmp(r->name, "memory"))
			fprintf(f, "%s  memory  %8s  %12.0f ns  %8.2f GB/s\n", p,
				human_size(r->size, sz, sizeof(sz)), r->nsop, r->gbs);
		else
			fprintf(f, "%s  %-7s           %12.0f ns\n", p, r->name, r->nsop);
	}
	fprintf(f, "%s\n%sthroughput, one stream A -> B (x peer = best peer's time / this;"
		" x mem, x sys = ns per message / floor;\n%s  sc A, sc B = system calls per"
		" message of the sender and of the receiver, counted)\n", p, p, p);
	fprintf(f, "%s  %-15s %8s %12s %9s %12s %7s %7s %8s %6s %6s\n", p, "contender", "size",
		"msgs/s", "GB/s", "ns/msg", "x peer", "x mem", "x sys", "sc A", "sc B");
	for (i = 0; i < rep->n; i++) {
		const struct report_row *r = &rep->rows[i];

		if (strcmp(r->kind, "throughput") || isnan(r->nsop))
			continue;
		fprintf(f, "%s  %-15s %8s %12.0f %9.3f %12.0f ", p, r->name,
			human_size(r->size, sz, sizeof(sz)), r->rate, r->gbs, r->nsop);
		cell(f, "%7.2f", r->x_peer);
		fprintf(f, " ");
		cell(f, "%7.2f", r->x_mem);
		fprintf(f, " ");
		cell(f, "%8.1f", r->x_sys);
		fprintf(f, " ");
		cell(f, "%6.3f", r->sys_a);
		fprintf(f, " ");
		cell(f, "%6.3f", r->sys_b);
		fprintf(f, "\n");
	}
	fprintf(f, "%s\n%sround trip A -> B -> A (x peer = best peer's median / this;"
		" x mem = median / two memory floors;\n%s  sc A, sc B = system calls per round"
		" trip of A and of B, counted: one hop each)\n", p, p, p);
	fprintf(f, "%s  %-15s %8s %12s %12s %7s %7s %8s %6s %6s\n", p, "contender", "size",
		"median us", "p99 us", "x peer", "x mem", "x sys", "sc A", "sc B");
	for (i = 0; i < rep->n; i++) {
		const struct report_row *r = &rep->rows[i];

		if (strcmp(r->kind, "latency"))
			continue;
		fprintf(f, "%s  %-15s %8s %12.1f %12.1f ", p, r->name,
			human_size(r->size, sz, sizeof(sz)), r->median / 1e3, r->p99 / 1e3);
		cell(f, "%7.2f", r->x_peer);
		fprintf(f, " ");
		cell(f, "%7.2f", r->x_mem);
		fprintf(f, " ");
		cell(f, "%8.1f", r->x_sys);
		fprintf(f, " ");
		cell(f, "%6.3f", r->sys_a);
		fprintf(f, " ");
		cell(f, "%6.3f", r->sys_b);
		fprintf(f, "\n");
	}
}

/* "met" or "MISSED by X": @ratio is what was measured, better when higher
 * (@higher) or lower, against @target. */
static void target(FILE *f, const char *p, const char *what, double ratio, double target,
		   bool higher)
{
	bool met = higher ? ratio >= target : ratio <= target;

	fprintf(f, "%s  %s: %.2fx (target %s %.2fx): %s", p, what, ratio, higher ? ">=" : "<=",
		target, met ? "met" : "MISSED");
	if (!met)
		fprintf(f, " by %.0f%%", 100.0 * fabs(ratio - target) / target);
	fprintf(f, "\n");
}

void report_targets(const struct report *rep, FILE *f, const char *p)
{
	static const char *const rtt_peers[] = { "pipe", "unix", "mq", "shm", "iceoryx", NULL };
	static const char *const one_call[] = { "mmk-queue", "mmk-queue-batch", "mmk-queue-zc" };
	const struct report_row *r, *o, *mem;
	char what[128];
	size_t i, j;

	fprintf(f, "%s\n%stargets (docs/PERFORMANCE.md)\n", p, p);
	r = find(rep, "throughput", "mmk-queue-batch", 64);
	for (i = 0; r && i < 3; i++) {
		static const char *const peer[] = { "iceoryx", "shm", "pipe" };
		static const double want[] = { 1.0, 1.0, 3.0 };

		o = find(rep, "throughput", peer[i], 64);
		if (!o)
			continue;
		snprintf(what, sizeof(what), "64 B stream, mmk-queue-batch msgs/s against %s",
			 peer[i]);
		target(f, p, what, o->nsop / r->nsop, want[i], true);
	}
	r = find(rep, "latency", "mmk-queue", 64);
	o = best_peer(rep, "latency", 64, rtt_peers);
	if (r && o) {
		snprintf(what, sizeof(what), "64 B round trip, mmk-queue median against the best"
			 " of pipe, unix, mq, shm, iceoryx (%s)", o->name);
		target(f, p, what, r->nsop / o->nsop, 1.0, false);
	}
	r = find(rep, "throughput", "mmk-queue-zc", 1048576);
	o = find(rep, "throughput", "iceoryx", 1048576);
	mem = find(rep, "floor", "memory", 1048576);
	if (r && o)
		target(f, p, "1 MiB stream, mmk-queue-zc msgs/s against iceoryx", o->nsop / r->nsop,
		       1.0, true);
	if (r && mem)
		target(f, p, "1 MiB stream, mmk-queue-zc time per message / memory floor",
		       r->nsop / mem->nsop, 0.8, false);
	r = find(rep, "latency", "mmk-queue-zc", 1048576);
	if (r && mem)
		target(f, p, "1 MiB round trip, mmk-queue-zc median / two memory floors",
		       r->nsop / (2 * mem->nsop), 1.3, false);
	for (i = 0; i < rep->n; i++) {
		r = &rep->rows[i];
		if (!strcmp(r->kind, "throughput") && !strcmp(r->name, "mmk-queue-batch") &&
		    r->size == 64 && !isnan(r->sys_a)) {
			target(f, p, "64 B stream, mmk-queue-batch system calls per message, sender",
			       r->sys_a, 0.05, false);
			target(f, p, "64 B stream, mmk-queue-batch system calls per message, receiver",
			       r->sys_b, 0.05, false);
		}
		for (j = 0; j < 3; j++) {
			if (strcmp(r->kind, "latency") || strcmp(r->name, one_call[j]) ||
			    isnan(r->sys_a))
				continue;
			fprintf(f, "%s  round trip, %s %zu B: system calls per side per hop %.3f and"
				" %.3f (target exactly 1): %s\n", p, r->name, r->size, r->sys_a,
				r->sys_b, r->sys_a == 1.0 && r->sys_b == 1.0 ? "met" : "MISSED");
		}
	}
}

static void csv_num(FILE *f, const char *fmt, double v)
{
	fputc(',', f);
	if (!isnan(v))
		fprintf(f, fmt, v);
}

void report_csv(const struct report *rep, FILE *f, const char *p)
{
	size_t i;

	fprintf(f, "%s%s\n", p, REPORT_CSV_HEADER);
	for (i = 0; i < rep->n; i++) {
		const struct report_row *r = &rep->rows[i];

		fprintf(f, "%s%s,%s,%s,%zu,%llu", p, r->kind, r->name, r->op, r->size,
			(unsigned long long)r->count);
		csv_num(f, "%.6f", r->seconds);
		csv_num(f, "%.1f", r->rate);
		csv_num(f, "%.4f", r->gbs);
		csv_num(f, "%.0f", r->median);
		csv_num(f, "%.0f", r->p99);
		csv_num(f, "%.1f", r->nsop);
		csv_num(f, "%.4f", r->x_peer);
		csv_num(f, "%.4f", r->x_mem);
		csv_num(f, "%.4f", r->x_sys);
		csv_num(f, "%.4f", r->sys_a);
		csv_num(f, "%.4f", r->sys_b);
		fputc('\n', f);
	}
}
