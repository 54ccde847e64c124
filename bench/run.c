// SPDX-License-Identifier: GPL-2.0
/*
 * The two measurements every link goes through, in two processes.
 *
 * Throughput: the parent (A) sends messages on DIR_AB as fast as the link
 * lets it until the time budget is spent, then ends the stream; the forked
 * child (B) receives and checks every message.  B times the stream from
 * the end of its warm-up messages to the last message, so the result is
 * the rate at which messages arrive checked, not the rate at which they
 * are queued.
 *
 * Latency: A sends a message, B checks it and answers with a message of
 * the same size, A checks the answer: one round trip, timed by A.
 *
 * B reports what it saw over a result pipe; both processes count checksum
 * mismatches, and any mismatch fails the measurement.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* What B tells A at the end. */
struct report {
	uint64_t msgs;
	uint64_t t_start;	/* ns: end of warm-up (or ready, if too short) */
	uint64_t t_end;		/* ns: last message checked */
	uint64_t measured;	/* messages between t_start and t_end */
	uint64_t mismatches;
	double sys;		/* system calls per message counted, or -1 */
	int failed;
};

/* Most round-trip samples kept. */
#define LAT_SAMPLES_MAX	(1u << 16)

enum bench_affinity bench_affinity = AFFINITY_NONE;

/* Pin the calling process to @cpu if asked to; a failure (fewer CPUs) is
 * not an error, the run is just not pinned. */
static void pin(int cpu)
{
	cpu_set_t set;

	if (bench_affinity == AFFINITY_NONE)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

struct pair {
	struct bench_link l;
	pid_t pid;
	int ready[2];
	int result[2];
};

/* Create the link and fork B; in B, run @child and exit. */
static int pair_start(struct pair *p, const struct bench_link_ops *ops, size_t size,
		      void (*child)(struct pair *p, const struct bench_limits *lim,
				    uint64_t seq0),
		      const struct bench_limits *lim, uint64_t seq0)
{
	memset(p, 0, sizeof(*p));
	p->l.ops = ops;
	p->l.size = size;
	p->l.depth = bench_depth(size);
	if (ops->open(&p->l)) {
		fprintf(stderr, "bench: %s: open for %zu bytes: %s\n", ops->name, size,
			strerror(errno));
		return -1;
	}
	if (pipe(p->ready) || pipe(p->result)) {
		perror("bench: pipe");
		ops->close(&p->l);
		return -1;
	}
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		perror("bench: fork");
		ops->close(&p->l);
		return -1;
	}
	if (p->pid == 0) {
		pin(bench_affinity == AFFINITY_SPLIT ? 1 : 0);
		close(p->ready[0]);
		close(p->result[0]);
		child(p, lim, seq0);
		_exit(127);	/* not reached */
	}
	pin(0);
	close(p->ready[1]);
	close(p->result[1]);
	return 0;
}

/* In B: say ready; A starts when it reads this. */
static void child_ready(struct pair *p)
{
	char c = 'r';

	if (write(p->ready[1], &c, 1) != 1)
		_exit(1);
	close(p->ready[1]);
}

/* In B: report and exit.  An isolated link's runtime may want to say
 * goodbye (its destructors): exit() rather than _exit(). */
static void child_finish(struct pair *p, struct report *rep)
{
	rep->mismatches = bench_mismatches;
	if (bench_write_full(p->result[1], rep, sizeof(*rep)))
		rep->failed = 1;
	p->l.ops->close(&p->l);
	if (p->l.ops->isolated)
		exit(rep->failed ? 1 : 0);
	_exit(rep->failed ? 1 : 0);
}

/* ---- isolated links ---------------------------------------------------------- */

static bool in_isolation;

typedef int (*measure_fn)(const struct bench_link_ops *ops, size_t size,
			  const struct bench_limits *lim, uint64_t seq0, struct bench_result *r);

/* Run @fn in a process of its own, which becomes A and forks B. */
static int isolate(measure_fn fn, const struct bench_link_ops *ops, size_t size,
		   const struct bench_limits *lim, uint64_t seq0, struct bench_result *r)
{
	struct { int rc; struct bench_result r; } out = { -1, { 0 } };
	int fd[2], status;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->sys_a = r->sys_b = -1;
	if (pipe(fd)) {
		perror("bench: pipe");
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("bench: fork");
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		close(fd[0]);
		in_isolation = true;
		out.rc = fn(ops, size, lim, seq0, &out.r);
		if (bench_write_full(fd[1], &out, sizeof(out)))
			out.rc = -1;
		fflush(NULL);
		exit(out.rc ? 1 : 0);
	}
	close(fd[1]);
	if (bench_read_full(fd[0], &out, sizeof(out)) != 1)
		out.rc = -1;
	close(fd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*r = out.r;
	return out.rc;
}

/* In A: wait for B to be ready. */
static int parent_wait_ready(struct pair *p)
{
	char c;

	if (bench_read_full(p->ready[0], &c, 1) != 1) {
		fprintf(stderr, "bench: %s: the receiver failed to start\n", p->l.ops->name);
		return -1;
	}
	return 0;
}

/* In A: collect B's report and B itself.  @failed: A failed already. */
static int parent_finish(struct pair *p, struct report *rep, int failed)
{
	int status, rc = failed ? -1 : 0;

	if (failed)
		kill(p->pid, SIGKILL);
	else if (bench_read_full(p->result[0], rep, sizeof(*rep)) != 1) {
		fprintf(stderr, "bench: %s: no report from the receiver\n", p->l.ops->name);
		rc = -1;
	}
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!failed && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		fprintf(stderr, "bench: %s: the receiver failed (status 0x%x)\n",
			p->l.ops->name, status);
		rc = -1;
	}
	close(p->ready[0]);
	close(p->result[0]);
	p->l.ops->close(&p->l);
	return rc;
}

/* Time checks are cheap but not free: look at the clock every few messages. */
static uint64_t clock_mask(size_t size)
{
	return size >= 65536 ? 0 : size >= 4096 ? 7 : 63;
}

static bool out_of_budget(const struct bench_limits *lim, uint64_t k, uint64_t t0,
			  uint64_t mask)
{
	if (k >= lim->max_msgs)
		return true;
	if (k < lim->min_msgs || (k & mask))
		return false;
	return bench_now_ns() - t0 >= lim->budget_ns;
}

/* ---- throughput ------------------------------------------------------------ */

static uint64_t tp_warmup(const struct bench_link *l)
{
	return 2 * (uint64_t)l->depth;
}

static void tp_child(struct pair *p, const struct bench_limits *lim, uint64_t seq0)
{
	struct report rep = { .sys = -1 };
	uint64_t warm = tp_warmup(&p->l), t_ready, t_warm = 0, k, c0 = 0, c1 = 0;
	int rc, cfd = -1;

	p->l.ops->keep(&p->l, DIR_COUNT, DIR_AB);
	if (lim->count_from)
		cfd = bench_sysc_open();
	t_ready = bench_now_ns();
	child_ready(p);
	for (k = 0;; k++) {
		if (cfd >= 0 && k == lim->count_from)
			c0 = bench_sysc_read(cfd);
		if (cfd >= 0 && k == lim->max_msgs)
			c1 = bench_sysc_read(cfd);
		rc = p->l.ops->recv(&p->l, DIR_AB, seq0 + k);
		if (rc <= 0)
			break;
		if (k + 1 == warm)
			t_warm = bench_now_ns();
	}
	rep.t_end = bench_now_ns();
	rep.msgs = k;
	if (cfd >= 0 && c1)
		rep.sys = bench_sysc_per(c0, c1, lim->max_msgs - lim->count_from);
	bench_close_fd(&cfd);
	if (rc < 0) {
		fprintf(stderr, "bench: %s: receive: %s\n", p->l.ops->name, strerror(errno));
		rep.failed = 1;
	}
	/* Too short to leave the warm-up out: time all of it. */
	if (k >= 2 * warm) {
		rep.t_start = t_warm;
		rep.measured = k - warm;
	} else {
		rep.t_start = t_ready;
		rep.measured = k;
	}
	child_finish(p, &rep);
}

int bench_throughput(const struct bench_link_ops *ops, size_t size,
		     const struct bench_limits *lim, uint64_t seq0, struct bench_result *r)
{
	uint64_t mask = clock_mask(size), t0, k, c0 = 0, c1;
	struct report rep = { 0 };
	struct pair p;
	int failed = 0, cfd = -1;

	if (ops->isolated && !in_isolation)
		return isolate(bench_throughput, ops, size, lim, seq0, r);
	memset(r, 0, sizeof(*r));
	r->sys_a = r->sys_b = -1;
	if (pair_start(&p, ops, size, tp_child, lim, seq0))
		return -1;
	ops->keep(&p.l, DIR_AB, DIR_COUNT);
	if (lim->count_from)
		cfd = bench_sysc_open();
	if (parent_wait_ready(&p)) {
		bench_close_fd(&cfd);
		return parent_finish(&p, &rep, 1);
	}
	t0 = bench_now_ns();
	for (k = 0; !out_of_budget(lim, k, t0, mask); k++) {
		if (cfd >= 0 && k == lim->count_from)
			c0 = bench_sysc_read(cfd);
		if (ops->send(&p.l, DIR_AB, seq0 + k)) {
			fprintf(stderr, "bench: %s: send %zu bytes: %s\n", ops->name, size,
				strerror(errno));
			failed = 1;
			break;
		}
	}
	if (cfd >= 0) {
		c1 = bench_sysc_read(cfd);
		if (k > lim->count_from)
			r->sys_a = bench_sysc_per(c0, c1, k - lim->count_from);
		bench_close_fd(&cfd);
	}
	if (!failed && ops->end(&p.l, DIR_AB)) {
		fprintf(stderr, "bench: %s: end: %s\n", ops->name, strerror(errno));
		failed = 1;
	}
	if (parent_finish(&p, &rep, failed))
		return -1;
	r->mismatches = rep.mismatches + bench_mismatches;
	r->sys_b = rep.sys;
	bench_mismatches = 0;
	if (rep.msgs != k) {
		fprintf(stderr, "bench: %s: sent %llu messages, %llu arrived\n", ops->name,
			(unsigned long long)k, (unsigned long long)rep.msgs);
		return -1;
	}
	r->msgs = rep.measured;
	r->ns = rep.t_end - rep.t_start;
	return 0;
}

/* ---- latency ---------------------------------------------------------------- */

static void lat_child(struct pair *p, const struct bench_limits *lim, uint64_t seq0)
{
	struct report rep = { .sys = -1 };
	uint64_t k, c0 = 0, c1 = 0;
	int rc, cfd = -1;

	p->l.ops->keep(&p->l, DIR_BA, DIR_AB);
	if (lim->count_from)
		cfd = bench_sysc_open();
	child_ready(p);
	for (k = 0;; k++) {
		if (cfd >= 0 && k == lim->count_from)
			c0 = bench_sysc_read(cfd);
		if (cfd >= 0 && k == lim->max_msgs)
			c1 = bench_sysc_read(cfd);
		rc = p->l.ops->recv(&p->l, DIR_AB, seq0 + 2 * k);
		if (rc <= 0)
			break;
		if (p->l.ops->send(&p->l, DIR_BA, seq0 + 2 * k + 1)) {
			rc = -1;
			break;
		}
	}
	if (cfd >= 0 && c1)
		rep.sys = bench_sysc_per(c0, c1, lim->max_msgs - lim->count_from);
	bench_close_fd(&cfd);
	if (rc < 0) {
		fprintf(stderr, "bench: %s: answer: %s\n", p->l.ops->name, strerror(errno));
		rep.failed = 1;
	} else if (p->l.ops->end(&p->l, DIR_BA)) {
		rep.failed = 1;
	}
	rep.msgs = k;
	child_finish(p, &rep);
}

int bench_latency(const struct bench_link_ops *ops, size_t size,
		  const struct bench_limits *lim, uint64_t seq0, struct bench_result *r)
{
	uint64_t *samples, t0, t, k, n = 0, c0 = 0, c1;
	struct report rep = { 0 };
	struct pair p;
	int failed = 0, rc, cfd = -1;

	if (ops->isolated && !in_isolation)
		return isolate(bench_latency, ops, size, lim, seq0, r);
	memset(r, 0, sizeof(*r));
	r->sys_a = r->sys_b = -1;
	samples = calloc(LAT_SAMPLES_MAX, sizeof(*samples));
	if (!samples)
		return -1;
	if (pair_start(&p, ops, size, lat_child, lim, seq0)) {
		free(samples);
		return -1;
	}
	ops->keep(&p.l, DIR_AB, DIR_BA);
	if (lim->count_from)
		cfd = bench_sysc_open();
	if (parent_wait_ready(&p)) {
		free(samples);
		bench_close_fd(&cfd);
		return parent_finish(&p, &rep, 1);
	}
	t0 = bench_now_ns();
	for (k = 0; n < LAT_SAMPLES_MAX && !out_of_budget(lim, k, t0, 0); k++) {
		if (cfd >= 0 && k == lim->count_from)
			c0 = bench_sysc_read(cfd);
		/* A counted run is not timed: where the clock is no vDSO call
		 * (an unstable TSC), reading it would be counted too. */
		t = lim->count_from ? 0 : bench_now_ns();
		if (ops->send(&p.l, DIR_AB, seq0 + 2 * k)) {
			fprintf(stderr, "bench: %s: send: %s\n", ops->name, strerror(errno));
			failed = 1;
			break;
		}
		rc = ops->recv(&p.l, DIR_BA, seq0 + 2 * k + 1);
		if (rc != 1) {
			fprintf(stderr, "bench: %s: no answer: %s\n", ops->name,
				rc ? strerror(errno) : "end of stream");
			failed = 1;
			break;
		}
		t = lim->count_from ? 0 : bench_now_ns() - t;
		if (k >= BENCH_LAT_WARMUP || lim->max_msgs <= BENCH_LAT_WARMUP)
			samples[n++] = t;
	}
	if (cfd >= 0) {
		c1 = bench_sysc_read(cfd);
		if (k > lim->count_from)
			r->sys_a = bench_sysc_per(c0, c1, k - lim->count_from);
		bench_close_fd(&cfd);
	}
	if (!failed && ops->end(&p.l, DIR_AB)) {
		fprintf(stderr, "bench: %s: end: %s\n", ops->name, strerror(errno));
		failed = 1;
	}
	if (parent_finish(&p, &rep, failed)) {
		free(samples);
		return -1;
	}
	r->mismatches = rep.mismatches + bench_mismatches;
	r->sys_b = rep.sys;
	bench_mismatches = 0;
	if (rep.msgs != k) {
		fprintf(stderr, "bench: %s: %llu requests, %llu answered\n", ops->name,
			(unsigned long long)k, (unsigned long long)rep.msgs);
		free(samples);
		return -1;
	}
	r->msgs = n;
	r->median_ns = bench_quantile(samples, n, 0.5);
	r->p99_ns = bench_quantile(samples, n, 0.99);
	free(samples);
	return 0;
}
