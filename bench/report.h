/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Results of one run: collected as rows, compared (ratios to the best
 * peer and to the floors, the project's targets), printed as a table and
 * as CSV.  The CSV columns are REPORT_CSV_HEADER; a column that does not
 * apply to a row is empty.
 */
#ifndef MMK_BENCH_REPORT_H
#define MMK_BENCH_REPORT_H

#include <stdio.h>

#include "bench.h"

#define REPORT_CSV_HEADER \
	"kind,contender,op,size,count,seconds,msgs_per_s,gbytes_per_s,median_ns,p99_ns," \
	"ns_per_op,x_best_peer,x_memory_floor,x_syscall_floor,syscalls_a,syscalls_b"

#define REPORT_ROWS_MAX	256

struct report_row {
	char kind[16];		/* throughput, latency, floor, micro */
	char name[24];		/* contender, floor or backend */
	char op[24];		/* stream, roundtrip, memory, syscall, store+free, ... */
	bool peer;
	size_t size;
	uint64_t count;
	double seconds, rate, gbs, median, p99, nsop;
	double x_peer, x_mem, x_sys;	/* NAN when not computed */
	double sys_a, sys_b;		/* system calls per message, NAN if not counted */
};

struct report {
	struct report_row rows[REPORT_ROWS_MAX];
	size_t n;
};

void report_init(struct report *rep);
void report_floor(struct report *rep, const char *which, size_t size, uint64_t iters,
		  double ns);
void report_throughput(struct report *rep, const struct bench_link_ops *ops, size_t size,
		       const struct bench_result *r);
void report_latency(struct report *rep, const struct bench_link_ops *ops, size_t size,
		    const struct bench_result *r);
void report_micro(struct report *rep, const char *backend, const char *op, size_t size,
		  uint64_t count, double ns);

/* System calls per message (throughput) or round trip (latency) of A and
 * B, counted: into the row of @kind, @name and @size (a negative count:
 * not counted). */
void report_syscalls(struct report *rep, const char *kind, const char *name, size_t size,
		     double a, double b);

/* Fill the ratio columns: to the best peer of the same kind and size, and
 * to the floors (a round trip is compared with two memory floors: it fills
 * and checks two messages). */
void report_ratios(struct report *rep);

void report_table(const struct report *rep, FILE *f, const char *prefix);
/* The project's performance targets, met or missed and by how much. */
void report_targets(const struct report *rep, FILE *f, const char *prefix);
void report_csv(const struct report *rep, FILE *f, const char *prefix);

#endif /* MMK_BENCH_REPORT_H */
