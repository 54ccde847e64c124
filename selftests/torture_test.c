// SPDX-License-Identifier: GPL-2.0
/*
 * Crash torture.  In each trial a child process attaches a named pool with
 * its own session, runs random operations (store, free, read, peek,
 * read_mut, releases with and without a commit, in-place writes through a
 * window, waits for a guard) and is killed with SIGKILL:
 *
 *  - "reported" trials: the child says through a pipe what it holds, and
 *    blocks (in read(2), or asleep waiting for a guard) until it is killed;
 *  - "random" trials: the child runs operations without a pause and the
 *    parent kills it after a random delay, with no synchronisation, so the
 *    kill lands anywhere: before or during attach, in the middle of a store,
 *    a free, a commit, a wait or a window write.
 *
 * The child logs every operation in shared memory, before (what it is about
 * to do) and after (the result).  The parent replays the log against its own
 * model of the pool: it computes the result each completed operation must
 * have had, and checks the kernel gave exactly that.  The one operation that
 * may have been in flight at the kill is resolved through the API: a store
 * writes its token into the caller's struct (which lives in shared memory)
 * before the message becomes reachable, and the outcome of a free, a
 * read_mut or a write release shows in what the token answers now.
 *
 * After each death the pool must match the model exactly: the free count,
 * the store and free counters, no guard left but the parent's own, a slot
 * poisoned exactly where the dead child held a write guard, and every other
 * message intact, byte for byte, with the sequence number the model expects.
 * A last step frees every message, poisoned ones too, and checks that the
 * pool is whole again.
 *
 * The random generator's seed is printed; set MMK_SEED to repeat a run's
 * choices (the moments of the kills are not reproducible).
 *
 * By default the test runs 2000 trials, or as many as fit in 60 seconds
 * but never fewer than 500 (a debug kernel under emulation starts a process
 * in a tenth of a second).  MMK_TORTURE_TRIALS asks for an exact number of
 * trials, MMK_TORTURE_SECONDS for another time budget.  Neither changes
 * what a trial checks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "kselftest_harness.h"

#define TT_TYPE		0x746f727475726531ULL
#define TT_TRIALS	2000
#define TT_MIN_TRIALS	500
#define TT_SECONDS	60
#define TT_NPOOLS	2
#define TT_MAXCAP	64		/* largest capacity of the pools below */
#define TT_LOG_OPS	4096		/* operations one child may log */
#define TT_STALE	64		/* freed tokens remembered, for probes */
#define TT_MAX_READS	8		/* guards a child holds at most */
#define TT_MAX_WRITES	4
#define TT_MAX_PAYLOAD	4032

/* The pools: cache-line slots, and page-aligned slots with windows. */
static const struct tt_pool_desc {
	const char *suffix;
	uint32_t payload_size;
	uint32_t capacity;
	uint32_t flags;
} tt_pools[TT_NPOOLS] = {
	{ "lines", 200, 48, 0 },
	{ "pages", TT_MAX_PAYLOAD, 16, MMK_POOL_PAGE_ALIGNED },
};

enum tt_op {
	OP_STORE = 1,
	OP_FREE,
	OP_READ,
	OP_PEEK,
	OP_READ_MUT,
	OP_READ_RELEASE,
	OP_WRITE_RELEASE,
	OP_NR,
};

static const char *const tt_op_names[OP_NR] = {
	[OP_STORE] = "store",
	[OP_FREE] = "free",
	[OP_READ] = "read",
	[OP_PEEK] = "peek",
	[OP_READ_MUT] = "read_mut",
	[OP_READ_RELEASE] = "read_release",
	[OP_WRITE_RELEASE] = "write_release",
};

/* How a write guard is released (tt_rec.how of OP_WRITE_RELEASE). */
enum tt_release {
	REL_PLAIN,	/* no commit: the message stays */
	REL_COMMIT,	/* write-back of a new message */
	REL_WINDOW,	/* new message written in place through a window */
	REL_BAD,	/* commit with an invalid header: EINVAL, guard kept */
};

/* Guard flags (tt_rec.how of the guard operations). */
#define HOW_WAIT	0x1U	/* MMK_GUARD_WAIT with a short timeout */
#define HOW_FOREVER	0x2U	/* MMK_GUARD_WAIT with no timeout */

/* One operation of a child: written before the call, completed after it. */
struct tt_rec {
	uint64_t token;		/* the token; a store's new token */
	uint64_t seq;		/* store, commit, window: the new message */
	uint32_t size;		/* its payload size */
	uint32_t op;		/* enum tt_op */
	uint32_t how;
	int32_t ret;		/* 0 or -errno, once done */
	uint32_t done;
	uint32_t __pad;
};

/* Shared between the parent and one child at a time (MAP_SHARED). */
struct tt_log {
	/* Parent to child, set before the fork. */
	uint64_t tokens[TT_MAXCAP];	/* live tokens */
	uint32_t ntokens;
	uint32_t nstale;
	uint64_t stale[TT_STALE];	/* freed tokens */
	uint64_t busy_token;		/* write-guarded by the parent, or invalid */
	uint64_t seq_base;
	uint64_t rng;
	uint32_t pool;			/* index into tt_pools */
	uint32_t reported;		/* a "reported" trial */
	uint32_t map;			/* the child maps the arena */
	/* Child to parent. */
	uint64_t ready_ns;		/* CLOCK_MONOTONIC when attached and mapped */
	uint32_t failed;
	char why[200];
	struct mmk_store st;		/* the store in flight: the kernel writes its token here */
	uint32_t n;			/* records begun */
	struct tt_rec rec[TT_LOG_OPS];
};

/* What a reported child says it holds, through the pipe. */
struct tt_report {
	uint32_t n;
	uint32_t reads;
	uint32_t writes;
};

/* ---- random numbers ------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static double now_sec(void)
{
	return now_ns() / 1e9;
}

static void sleep_us(uint32_t us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- messages ------------------------------------------------------------ */

static unsigned char pattern_byte(uint64_t seq, uint32_t j)
{
	return (unsigned char)(seq * 7 + (seq >> 8) * 3 + j * 13 + (j >> 8));
}

static void fill(unsigned char *buf, uint32_t size, uint64_t seq)
{
	uint32_t j;

	for (j = 0; j < size; j++)
		buf[j] = pattern_byte(seq, j);
}

/*
 * Check a message in a mapping against what it should be: its header's
 * sequence (or any, if seq is ~0), payload size and every payload byte.
 * header_only: the caller holds only a header guard.  NULL if it is right,
 * else what is wrong (in buf).
 */
static const char *msg_check(const void *map, uint64_t off, uint32_t gsize, uint64_t seq,
			     uint32_t size, bool header_only, char *buf, size_t len)
{
	const struct mmk_msg_header *h = mmk_at(map, off);
	const unsigned char *p = mmk_payload(map, off);
	uint64_t hseq = h->sequence;
	uint32_t hsize = h->payload_size;
	uint32_t j;

	if (seq == ~0ULL) {
		seq = hseq;
		size = gsize;
	}
	if (hseq != seq || hsize != size || gsize != size) {
		snprintf(buf, len, "header: sequence %" PRIu64 " size %u (guard %u), expected %" PRIu64
			 " size %u", hseq, hsize, gsize, seq, size);
		return buf;
	}
	if (header_only)
		return NULL;
	for (j = 0; j < size; j++) {
		if (p[j] != pattern_byte(seq, j)) {
			snprintf(buf, len, "payload byte %u of message %" PRIu64 " is %u, expected %u",
				 j, seq, p[j], pattern_byte(seq, j));
			return buf;
		}
	}
	return NULL;
}

/* ---- the child ------------------------------------------------------------ */

struct tt_child {
	struct tt_log *log;
	const struct tt_pool_desc *pd;
	uint64_t rng;
	int fd;
	uint32_t pool_id;
	uint32_t slot_size;
	void *map;
	uint64_t seq;
	uint64_t view[TT_MAXCAP];	/* tokens it believes live */
	int nview;
	uint64_t stale[TT_STALE + TT_LOG_OPS];
	int nstale;
	uint64_t reads[TT_MAX_READS];
	int nreads;
	uint64_t writes[TT_MAX_WRITES];
	uint64_t write_off[TT_MAX_WRITES];
	int nwrites;
	unsigned char buf[TT_MAX_PAYLOAD];
};

static void child_fail(struct tt_child *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void child_fail(struct tt_child *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->log->why, sizeof(c->log->why), fmt, ap);
	va_end(ap);
	__atomic_store_n(&c->log->failed, 1, __ATOMIC_RELEASE);
	_exit(3);
}

static struct tt_rec *rec_begin(struct tt_child *c, uint32_t op, uint32_t how, uint64_t token)
{
	struct tt_log *log = c->log;
	uint32_t n = log->n;
	struct tt_rec *r;

	if (n >= TT_LOG_OPS) {
		/* The log is full: wait for the kill. */
		for (;;)
			pause();
	}
	r = &log->rec[n];
	r->op = op;
	r->how = how;
	r->token = token;
	r->seq = 0;
	r->size = 0;
	r->ret = 0;
	r->done = 0;
	/* The record is complete before it counts, and before the call. */
	__atomic_store_n(&log->n, n + 1, __ATOMIC_RELEASE);
	return r;
}

static void rec_end(struct tt_rec *r, int ret)
{
	r->ret = ret;
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

static void del_at(uint64_t *v, int *n, int i)
{
	v[i] = v[--*n];
}

static int find(const uint64_t *v, int n, uint64_t t)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i] == t)
			return i;
	return -1;
}

/* A token to operate on: mostly a live one, sometimes a freed one. */
static uint64_t child_pick(struct tt_child *c)
{
	if (c->nstale && (!c->nview || !rnd(&c->rng, 12)))
		return c->stale[rnd(&c->rng, c->nstale)];
	if (!c->nview)
		return MMK_TOKEN_INVALID;
	return c->view[rnd(&c->rng, c->nview)];
}

static void child_store(struct tt_child *c)
{
	struct mmk_msg_header h = { .qos = (uint8_t)rnd(&c->rng, 4) };
	struct tt_log *log = c->log;
	struct tt_rec *r;
	uint32_t size = rnd(&c->rng, c->pd->payload_size + 1);
	int ret;

	h.sequence = ++c->seq;
	fill(c->buf, size, h.sequence);
	memset(&log->st, 0, sizeof(log->st));
	log->st.header = (uintptr_t)&h;
	log->st.payload = (uintptr_t)c->buf;
	log->st.payload_size = size;
	log->st.token = MMK_TOKEN_INVALID;
	r = rec_begin(c, OP_STORE, 0, MMK_TOKEN_INVALID);
	r->seq = h.sequence;
	r->size = size;
	ret = mmk_ioctl(c->fd, MMK_IOC_STORE, &log->st);
	if (!ret)
		r->token = log->st.token;
	rec_end(r, ret);
	if (!ret && c->nview < TT_MAXCAP)
		c->view[c->nview++] = r->token;
}

static void child_free(struct tt_child *c)
{
	uint64_t t = child_pick(c);
	struct tt_rec *r;
	int ret, i;

	r = rec_begin(c, OP_FREE, 0, t);
	ret = mmk_free_token(c->fd, t);
	rec_end(r, ret);
	if (!ret) {
		i = find(c->view, c->nview, t);
		if (i >= 0)
			del_at(c->view, &c->nview, i);
		c->stale[c->nstale++] = t;
	}
}

/* Take a read, header or write guard, sometimes waiting for it. */
static void child_guard(struct tt_child *c, uint32_t op)
{
	static const unsigned long cmds[OP_NR] = {
		[OP_READ] = MMK_IOC_READ,
		[OP_PEEK] = MMK_IOC_PEEK_HEADER,
		[OP_READ_MUT] = MMK_IOC_READ_MUT,
	};
	uint64_t t = child_pick(c);
	struct mmk_guard g = { .token = t };
	struct tt_rec *r;
	uint32_t how = 0;
	char why[160];
	const char *bad;
	int ret;

	if (!rnd(&c->rng, 8)) {
		how = HOW_WAIT;
		g.flags = MMK_GUARD_WAIT;
		g.timeout_ns = 10000 + rnd(&c->rng, 100000);
	}
	r = rec_begin(c, op, how, t);
	ret = mmk_ioctl(c->fd, cmds[op], &g);
	rec_end(r, ret);
	if (ret)
		return;
	if (op == OP_READ_MUT) {
		c->write_off[c->nwrites] = g.offset;
		c->writes[c->nwrites++] = t;
	} else {
		c->reads[c->nreads++] = t;
	}
	/* Whatever died before, a message under a guard is whole. */
	if (c->map && op != OP_READ_MUT) {
		bad = msg_check(c->map, g.offset, g.payload_size, ~0ULL, 0, op == OP_PEEK,
				why, sizeof(why));
		if (bad)
			child_fail(c, "%s under a guard: %s", tt_op_names[op], bad);
	}
}

static void child_read_release(struct tt_child *c)
{
	int i = rnd(&c->rng, c->nreads);
	uint64_t t = c->reads[i];
	struct tt_rec *r;
	int ret;

	r = rec_begin(c, OP_READ_RELEASE, 0, t);
	ret = mmk_read_release(c->fd, t);
	rec_end(r, ret);
	if (!ret)
		del_at(c->reads, &c->nreads, i);
}

/* Write a new message in place through a window; the release settles it. */
static void *child_window_write(struct tt_child *c, uint64_t off, uint64_t seq, uint32_t size)
{
	struct mmk_msg_header *h;
	void *w;

	w = mmap(NULL, c->slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd,
		 MMK_WINDOW_OFFSET(off));
	if (w == MAP_FAILED)
		child_fail(c, "window mmap: %s", strerror(errno));
	h = w;
	fill((unsigned char *)w + sizeof(*h), size, seq);
	memset(h, 0, sizeof(*h));
	h->sequence = seq;
	h->payload_size = size;
	h->qos = MMK_QOS_LATENCY_CRITICAL;
	return w;
}

static void child_write_release(struct tt_child *c)
{
	int i = rnd(&c->rng, c->nwrites);
	uint64_t t = c->writes[i];
	struct mmk_msg_header h = { .qos = MMK_QOS_BACKGROUND };
	struct mmk_release rel = { .token = t };
	uint32_t how = rnd(&c->rng, 10);
	uint32_t size = rnd(&c->rng, c->pd->payload_size + 1);
	struct tt_rec *r;
	void *w = NULL;
	int ret;

	if (how < 4)
		how = REL_COMMIT;
	else if (how < 7 && c->pd->flags & MMK_POOL_PAGE_ALIGNED)
		how = REL_WINDOW;
	else if (how == 9)
		how = REL_BAD;
	else
		how = REL_PLAIN;

	h.sequence = ++c->seq;
	if (how == REL_COMMIT || how == REL_BAD) {
		fill(c->buf, size, h.sequence);
		if (how == REL_BAD)
			h.flags = 0x80000000U;
		rel.flags = MMK_RELEASE_COMMIT;
		rel.header = (uintptr_t)&h;
		rel.payload = (uintptr_t)c->buf;
		rel.payload_size = size;
	} else if (how == REL_WINDOW) {
		w = child_window_write(c, c->write_off[i], h.sequence, size);
	}
	r = rec_begin(c, OP_WRITE_RELEASE, how, t);
	r->seq = h.sequence;
	r->size = size;
	ret = mmk_ioctl(c->fd, MMK_IOC_WRITE_RELEASE, &rel);
	rec_end(r, ret);
	if (w)
		munmap(w, c->slot_size);
	if (!ret) {
		c->writes[i] = c->writes[c->nwrites - 1];
		c->write_off[i] = c->write_off[c->nwrites - 1];
		c->nwrites--;
	}
}

/* One random operation, keeping the guards held within bounds. */
static void child_step(struct tt_child *c)
{
	uint32_t x = rnd(&c->rng, 100);

	if (x < 24) {
		child_store(c);
	} else if (x < 44) {
		child_free(c);
	} else if (x < 58) {
		if (c->nreads < TT_MAX_READS)
			child_guard(c, OP_READ);
	} else if (x < 66) {
		if (c->nreads < TT_MAX_READS)
			child_guard(c, OP_PEEK);
	} else if (x < 80) {
		if (c->nwrites < TT_MAX_WRITES)
			child_guard(c, OP_READ_MUT);
	} else if (x < 90) {
		if (c->nreads)
			child_read_release(c);
	} else if (c->nwrites) {
		child_write_release(c);
	}
}

static void child_main(struct tt_log *log, const char *name, int report_fd, int go_fd)
{
	struct tt_child *c;
	struct mmk_pool_info info;
	struct tt_report rep;
	uint32_t i, nops;
	char byte;

	c = calloc(1, sizeof(*c));
	if (!c)
		_exit(4);
	c->log = log;
	c->pd = &tt_pools[log->pool];
	c->rng = log->rng;
	c->seq = log->seq_base;
	c->map = NULL;
	for (i = 0; i < log->ntokens; i++)
		c->view[c->nview++] = log->tokens[i];
	for (i = 0; i < log->nstale; i++)
		c->stale[c->nstale++] = log->stale[i];

	c->fd = mmk_attach(name, TT_TYPE);
	if (c->fd < 0)
		child_fail(c, "attach: %s", strerror(-c->fd));
	if (log->map || c->pd->flags & MMK_POOL_PAGE_ALIGNED) {
		if (mmk_info(c->fd, &info))
			child_fail(c, "pool info: %s", strerror(errno));
		c->pool_id = info.pool_id;
		c->slot_size = info.slot_size;
	}
	if (log->map) {
		c->map = mmap(NULL, info.map_size, PROT_READ, MAP_SHARED, c->fd, 0);
		if (c->map == MAP_FAILED)
			child_fail(c, "mmap: %s", strerror(errno));
	}

	__atomic_store_n(&log->ready_ns, now_ns(), __ATOMIC_RELEASE);
	if (!log->reported) {
		for (;;)
			child_step(c);
	}

	nops = rnd(&c->rng, 40);
	for (i = 0; i < nops; i++)
		child_step(c);
	rep.n = log->n;
	rep.reads = c->nreads;
	rep.writes = c->nwrites;
	if (write(report_fd, &rep, sizeof(rep)) != sizeof(rep))
		child_fail(c, "report: %s", strerror(errno));
	if (log->busy_token != MMK_TOKEN_INVALID && rnd(&c->rng, 2)) {
		/* Sleep in the kernel, waiting for the parent's write guard. */
		struct mmk_guard g = { .token = log->busy_token, .flags = MMK_GUARD_WAIT };
		struct tt_rec *r = rec_begin(c, OP_READ_MUT, HOW_FOREVER, g.token);
		int ret = mmk_ioctl(c->fd, MMK_IOC_READ_MUT, &g);

		rec_end(r, ret);
		child_fail(c, "waiting for a guard with no time limit returned %d", ret);
	}
	while (read(go_fd, &byte, 1) < 0 && errno == EINTR)
		;
	child_fail(c, "not killed");
}

/* ---- the parent's model ----------------------------------------------------- */

struct tt_tok {
	uint64_t token;
	uint64_t seq;
	uint32_t size;
	uint32_t reads;		/* the child's read and header guards */
	bool write;		/* the child's write guard */
	bool pwrite;		/* the parent's write guard */
	bool poisoned;
	bool unsure;		/* the operation in flight may have changed it */
};

struct tt_model {
	const struct tt_pool_desc *pd;
	char name[MMK_NAME_MAX];
	int fd;
	void *map;
	size_t map_len;
	struct tt_tok live[TT_MAXCAP];
	int nlive;
	uint64_t stale[TT_STALE];
	int nstale;		/* remembered, at most TT_STALE */
	int stale_next;		/* ring position */
	uint64_t stores;
	uint64_t frees;
	uint64_t seq;		/* the parent's own messages */
};

struct tt_stats {
	unsigned int trials[2];		/* random, reported */
	unsigned int inflight[OP_NR];	/* random trials killed with this op in flight */
	unsigned int before_ops;	/* random trials killed before their first op */
	unsigned int log_full;
	unsigned long ops;		/* operations completed by children */
	unsigned int poisoned;		/* slots poisoned by a death */
	unsigned int inflight_took;	/* in-flight ops that took effect */
	unsigned int parent_guard;	/* trials with the parent holding a write guard */
};

static struct tt_tok *model_find(struct tt_model *m, uint64_t token)
{
	int i;

	for (i = 0; i < m->nlive; i++)
		if (m->live[i].token == token)
			return &m->live[i];
	return NULL;
}

static void model_add(struct tt_model *m, uint64_t token, uint64_t seq, uint32_t size)
{
	struct tt_tok *t = &m->live[m->nlive++];

	memset(t, 0, sizeof(*t));
	t->token = token;
	t->seq = seq;
	t->size = size;
	m->stores++;
}

static void model_free(struct tt_model *m, struct tt_tok *t)
{
	m->stale[m->stale_next] = t->token;
	m->stale_next = (m->stale_next + 1) % TT_STALE;
	if (m->nstale < TT_STALE)
		m->nstale++;
	*t = m->live[--m->nlive];
	m->frees++;
}

static uint32_t model_reads(const struct tt_model *m)
{
	uint32_t n = 0;
	int i;

	for (i = 0; i < m->nlive; i++)
		n += m->live[i].reads;
	return n;
}

static uint32_t model_writes(const struct tt_model *m)
{
	uint32_t n = 0;
	int i;

	for (i = 0; i < m->nlive; i++)
		n += m->live[i].write;
	return n;
}

static int model_poisoned(const struct tt_model *m)
{
	int i, n = 0;

	for (i = 0; i < m->nlive; i++)
		n += m->live[i].poisoned;
	return n;
}

/*
 * The result an operation must have on the model's pool.  A token the
 * model does not hold was freed: ENODATA, or EBADSLT if its slot has been
 * reused since (*alt).
 */
static int model_expect(const struct tt_model *m, const struct tt_rec *r, int *alt)
{
	const struct tt_tok *t = NULL;
	int i;

	*alt = 1;	/* no second answer */
	if (r->op == OP_STORE)
		return m->nlive < (int)m->pd->capacity ? 0 : -ENOSPC;
	for (i = 0; i < m->nlive; i++)
		if (m->live[i].token == r->token)
			t = &m->live[i];
	if (!t) {
		*alt = -EBADSLT;
		return -ENODATA;
	}
	switch (r->op) {
	case OP_FREE:
		return t->reads || t->write || t->pwrite ? -ETXTBSY : 0;
	case OP_READ:
	case OP_PEEK:
		if (t->poisoned)
			return -EOWNERDEAD;
		return t->write || t->pwrite ? -EBUSY : 0;
	case OP_READ_MUT:
		if (t->poisoned)
			return -EOWNERDEAD;
		return t->reads || t->write || t->pwrite ? -EBUSY : 0;
	case OP_READ_RELEASE:
		return t->reads ? 0 : -ENOENT;
	case OP_WRITE_RELEASE:
		if (!t->write)
			return -ENOENT;
		return r->how == REL_BAD ? -EINVAL : 0;
	}
	return -EINVAL;
}

/* Apply a completed, successful operation to the model. */
static void model_apply(struct tt_model *m, const struct tt_rec *r)
{
	struct tt_tok *t = model_find(m, r->token);

	switch (r->op) {
	case OP_STORE:
		model_add(m, r->token, r->seq, r->size);
		return;
	case OP_FREE:
		model_free(m, t);
		return;
	case OP_READ:
	case OP_PEEK:
		t->reads++;
		return;
	case OP_READ_MUT:
		t->write = true;
		return;
	case OP_READ_RELEASE:
		t->reads--;
		return;
	case OP_WRITE_RELEASE:
		t->write = false;
		if (r->how == REL_COMMIT || r->how == REL_WINDOW) {
			t->seq = r->seq;
			t->size = r->size;
		}
		return;
	}
}

static const char *err_name(int e)
{
	switch (e) {
	case 0: return "0";
	case -ENOSPC: return "ENOSPC";
	case -EBADSLT: return "EBADSLT";
	case -ENODATA: return "ENODATA";
	case -EBUSY: return "EBUSY";
	case -ETXTBSY: return "ETXTBSY";
	case -EOWNERDEAD: return "EOWNERDEAD";
	case -EINVAL: return "EINVAL";
	case -ENOENT: return "ENOENT";
	case -EINTR: return "EINTR";
	case -EDQUOT: return "EDQUOT";
	case -EFAULT: return "EFAULT";
	}
	return strerror(-e);
}

/* ---- the test ------------------------------------------------------------- */

FIXTURE(torture) {
	struct tt_model m[TT_NPOOLS];
	struct tt_log *log;
	uint64_t rng;
	uint64_t seed;
	struct tt_stats st;
	char why[200];
};

FIXTURE_SETUP(torture)
{
	int i;

	self->seed = seed_from_env();
	self->rng = self->seed;
	TH_LOG("seed %" PRIu64 " (set MMK_SEED=%" PRIu64 " to repeat)", self->seed, self->seed);
	self->log = mmap(NULL, sizeof(*self->log), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->log);
	memset(self->log, 0, sizeof(*self->log));
	for (i = 0; i < TT_NPOOLS; i++) {
		struct tt_model *m = &self->m[i];

		m->pd = &tt_pools[i];
		m->fd = -1;
		m->map = MAP_FAILED;
		m->seq = (1ULL << 63) | ((uint64_t)i << 56);
		snprintf(m->name, sizeof(m->name), "torture-%d-%s", getpid(), m->pd->suffix);
		m->fd = mmk_create(m->name, m->pd->payload_size, m->pd->capacity, 0600, TT_TYPE,
				   m->pd->flags);
		ASSERT_LE(0, m->fd) TH_LOG("create %s: %s", m->name, strerror(-m->fd));
		m->map = mmk_map(m->fd, &m->map_len);
		ASSERT_NE(MAP_FAILED, m->map);
	}
}

FIXTURE_TEARDOWN(torture)
{
	int i;

	for (i = 0; i < TT_NPOOLS; i++) {
		if (self->m[i].map != MAP_FAILED)
			munmap(self->m[i].map, self->m[i].map_len);
		if (self->m[i].fd >= 0)
			close(self->m[i].fd);
	}
	if (self->log != MAP_FAILED)
		munmap(self->log, sizeof(*self->log));
}

/* The parent stores one message of its own. */
static int parent_store(struct tt_model *m)
{
	unsigned char buf[TT_MAX_PAYLOAD];
	uint32_t size = m->pd->payload_size / 2;
	uint64_t token;
	int ret;

	m->seq++;
	fill(buf, size, m->seq);
	ret = mmk_store_seq(m->fd, buf, size, m->seq, &token);
	if (!ret)
		model_add(m, token, m->seq, size);
	return ret;
}

/*
 * Compare the pool with the model: counters from POOL_INFO, then every
 * live token through a guard and the mapping, then the freed tokens.
 * sessions: how many sessions the pool should have.  NULL if all agree.
 */
static const char *check_pool(struct tt_model *m, uint32_t sessions, uint32_t reads,
			      uint32_t writes, char *why, size_t len)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	const char *bad;
	char buf[160];
	int i, ret, pwrites = 0, poisoned = model_poisoned(m);

	for (i = 0; i < m->nlive; i++)
		pwrites += m->live[i].pwrite;
	if (mmk_info(m->fd, &info)) {
		snprintf(why, len, "pool info: %s", strerror(errno));
		return why;
	}
	if (info.available != m->pd->capacity - m->nlive || info.sessions != sessions ||
	    info.read_guards != reads || info.write_guards != writes + pwrites ||
	    info.poisoned != (uint32_t)poisoned || info.stores != m->stores ||
	    info.frees != m->frees) {
		snprintf(why, len,
			 "pool info: available %u sessions %u read_guards %u write_guards %u poisoned %u stores %llu frees %llu; expected %u %u %u %u %d %llu %llu",
			 info.available, info.sessions, info.read_guards, info.write_guards,
			 info.poisoned, (unsigned long long)info.stores,
			 (unsigned long long)info.frees, m->pd->capacity - m->nlive, sessions,
			 reads, writes + pwrites, poisoned, (unsigned long long)m->stores,
			 (unsigned long long)m->frees);
		return why;
	}
	if (reads || writes)
		return NULL;	/* a live child: leave its slots alone */

	for (i = 0; i < m->nlive; i++) {
		struct tt_tok *t = &m->live[i];
		int want = t->poisoned ? -EOWNERDEAD : t->pwrite ? -EBUSY : 0;

		ret = mmk_guard(m->fd, i & 1 ? MMK_IOC_PEEK_HEADER : MMK_IOC_READ, t->token, &g);
		if (ret != want) {
			snprintf(why, len, "token %#" PRIx64 " (message %" PRIu64 "%s): %s, expected %s",
				 t->token, t->seq, t->poisoned ? ", poisoned" : "", err_name(ret),
				 err_name(want));
			return why;
		}
		if (ret)
			continue;
		bad = msg_check(m->map, g.offset, g.payload_size, t->seq, t->size, i & 1,
				buf, sizeof(buf));
		if (mmk_read_release(m->fd, t->token)) {
			snprintf(why, len, "read release: %s", strerror(errno));
			return why;
		}
		if (bad) {
			snprintf(why, len, "token %#" PRIx64 ": %s", t->token, bad);
			return why;
		}
	}
	for (i = 0; i < m->nstale; i++) {
		ret = mmk_guard(m->fd, MMK_IOC_PEEK_HEADER, m->stale[i], &g);
		if (ret != -ENODATA && ret != -EBADSLT) {
			if (!ret)
				mmk_read_release(m->fd, m->stale[i]);
			snprintf(why, len, "freed token %#" PRIx64 ": %s", m->stale[i], err_name(ret));
			return why;
		}
	}
	return NULL;
}

/*
 * Replay records from..n-1 of the child's log on the model.  Every
 * completed operation must
 * have had the result the model predicts.  The operation in flight, if
 * any, is left for resolve_inflight().  NULL if the log agrees.
 */
static const char *replay(struct tt_model *m, const struct tt_log *log, uint32_t from,
			  uint32_t n, char *why, size_t len)
{
	const struct tt_rec *r;
	uint32_t i;
	int want, alt;

	for (i = from; i < n; i++) {
		r = &log->rec[i];
		if (!r->done) {
			if (i != n - 1) {
				snprintf(why, len, "record %u of %u not done", i, n);
				return why;
			}
			break;
		}
		if (r->op <= 0 || r->op >= OP_NR) {
			snprintf(why, len, "record %u: bad op %u", i, r->op);
			return why;
		}
		want = model_expect(m, r, &alt);
		if (r->ret != want && r->ret != alt) {
			snprintf(why, len, "op %u (%s%s of %#" PRIx64 "): %s, expected %s%s%s", i,
				 tt_op_names[r->op], r->how & HOW_WAIT ? " waiting" : "", r->token,
				 err_name(r->ret), err_name(want), alt != 1 ? " or " : "",
				 alt != 1 ? err_name(alt) : "");
			return why;
		}
		if (!r->ret)
			model_apply(m, r);
	}
	return NULL;
}

/*
 * The child died with rec (not done) perhaps in flight.  Decide through
 * the API whether it took effect, and check that the answer is one of the
 * two the model allows.
 */
static const char *resolve_inflight(struct tt_model *m, const struct tt_log *log,
				    const struct tt_rec *r, struct tt_stats *st,
				    char *why, size_t len)
{
	struct tt_tok *t;
	struct mmk_guard g;
	int want, alt, ret;

	want = model_expect(m, r, &alt);
	if (want)
		return NULL;	/* it failed, or never ran: nothing changed */

	switch (r->op) {
	case OP_STORE:
		/* The token reaches the caller's struct before the message is reachable. */
		if (log->st.token != MMK_TOKEN_INVALID) {
			model_add(m, log->st.token, r->seq, r->size);
			st->inflight_took++;
		}
		return NULL;
	case OP_FREE:
		ret = mmk_guard(m->fd, MMK_IOC_PEEK_HEADER, r->token, &g);
		t = model_find(m, r->token);
		if (ret == -ENODATA) {
			model_free(m, t);
			st->inflight_took++;
			return NULL;
		}
		if (ret == 0)
			mmk_read_release(m->fd, r->token);
		if (ret == (t->poisoned ? -EOWNERDEAD : 0))
			return NULL;
		snprintf(why, len, "free in flight of %#" PRIx64 ": the token now answers %s",
			 r->token, err_name(ret));
		return why;
	case OP_READ_MUT:
	case OP_WRITE_RELEASE:
		ret = mmk_guard(m->fd, MMK_IOC_PEEK_HEADER, r->token, &g);
		t = model_find(m, r->token);
		if (ret == 0)
			mmk_read_release(m->fd, r->token);
		if (r->op == OP_READ_MUT) {
			/* Poisoned if and only if the guard was taken. */
			if (ret == -EOWNERDEAD) {
				t->write = true;
				st->inflight_took++;
			} else if (ret) {
				break;
			}
			return NULL;
		}
		/* Released (the new message is in), or still held (poisoned). */
		if (ret == 0) {
			t->write = false;
			if (r->how == REL_COMMIT || r->how == REL_WINDOW) {
				t->seq = r->seq;
				t->size = r->size;
			}
			st->inflight_took++;
		} else if (ret != -EOWNERDEAD) {
			break;
		}
		return NULL;
	default:
		/* Read guards and their releases leave nothing behind a death. */
		return NULL;
	}
	snprintf(why, len, "%s in flight of %#" PRIx64 ": the token now answers %s",
		 tt_op_names[r->op], r->token, err_name(ret));
	return why;
}

/* The child is dead: its guards are gone, its write guards poisoned. */
static void model_bury(struct tt_model *m, struct tt_stats *st)
{
	int i;

	for (i = 0; i < m->nlive; i++) {
		struct tt_tok *t = &m->live[i];

		if (t->write) {
			t->poisoned = true;
			st->poisoned++;
		}
		t->write = false;
		t->reads = 0;
	}
}

/*
 * Between trials the parent frees some messages, poisoned ones too, so
 * the pool is neither always full nor always empty, and stores some.
 */
static const char *housekeeping(struct tt_model *m, uint64_t *rng, char *why, size_t len)
{
	bool crowded = m->nlive > (int)m->pd->capacity / 2;
	int i, ret;

	for (i = 0; i < m->nlive; i++) {
		struct tt_tok *t = &m->live[i];

		if (t->pwrite) {
			ret = mmk_write_release(m->fd, t->token);
			if (ret) {
				snprintf(why, len, "parent's write release: %s", err_name(ret));
				return why;
			}
			t->pwrite = false;
		}
	}
	for (i = 0; i < m->nlive; i++) {
		if (rnd(rng, crowded ? 2 : 8))
			continue;
		ret = mmk_free_token(m->fd, m->live[i].token);
		if (ret) {
			snprintf(why, len, "free of %#" PRIx64 "%s: %s", m->live[i].token,
				 m->live[i].poisoned ? " (poisoned)" : "", err_name(ret));
			return why;
		}
		model_free(m, &m->live[i]);
		i--;
	}
	if (m->nlive < (int)m->pd->capacity && !rnd(rng, 4)) {
		ret = parent_store(m);
		if (ret) {
			snprintf(why, len, "parent's store: %s", err_name(ret));
			return why;
		}
	}
	return NULL;
}

static int wait_dead(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* A positive number from the environment, or 0. */
static long long env_number(const char *name)
{
	const char *e = getenv(name);
	long long n = e && *e ? strtoll(e, NULL, 0) : 0;

	return n > 0 && n < 100000000 ? n : 0;
}

TEST_F_TIMEOUT(torture, kill_at_random_moments, 540)
{
	struct tt_log *log = self->log;
	struct tt_stats *st = &self->st;
	long long exact = env_number("MMK_TORTURE_TRIALS");
	long long budget = env_number("MMK_TORTURE_SECONDS") ?: TT_SECONDS;
	int trial, ntrials = exact ?: TT_TRIALS, i, status;
	/* How long a child takes to start (fork to attached), in us: a running mean. */
	uint32_t startup_us = 2000;
	double t0 = now_sec();
	const char *bad;

	for (trial = 0; trial < ntrials; trial++) {
		struct tt_model *m = &self->m[trial % TT_NPOOLS];
		int report[2], go[2];
		struct tt_report rep;
		struct tt_tok *busy = NULL;
		struct mmk_guard g;
		uint64_t forked;
		uint32_t n;
		pid_t pid;

		if (!exact && trial >= TT_MIN_TRIALS && now_sec() - t0 > budget) {
			TH_LOG("stopping after %d trials: the %lld s budget is used", trial, budget);
			ntrials = trial;
			break;
		}

		/* What the child starts from. */
		log->pool = trial % TT_NPOOLS;
		log->reported = !rnd(&self->rng, 3);
		log->map = rnd(&self->rng, 2);
		log->rng = splitmix64(&self->rng);
		log->seq_base = (uint64_t)(trial + 1) << 24;
		log->ntokens = m->nlive;
		for (i = 0; i < m->nlive; i++)
			log->tokens[i] = m->live[i].token;
		log->nstale = m->nstale;
		memcpy(log->stale, m->stale, sizeof(log->stale));
		log->busy_token = MMK_TOKEN_INVALID;
		log->ready_ns = 0;
		log->failed = 0;
		log->why[0] = '\0';
		log->n = 0;
		memset(&log->st, 0, sizeof(log->st));
		log->st.token = MMK_TOKEN_INVALID;

		/* Sometimes the parent holds a write guard the child runs into. */
		if (m->nlive && !rnd(&self->rng, 3)) {
			busy = &m->live[rnd(&self->rng, m->nlive)];
			if (busy->poisoned) {
				busy = NULL;
			} else {
				ASSERT_EQ(0, mmk_guard(m->fd, MMK_IOC_READ_MUT, busy->token, &g));
				busy->pwrite = true;
				log->busy_token = busy->token;
				st->parent_guard++;
			}
		}

		ASSERT_EQ(0, pipe2(report, O_CLOEXEC));
		ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
		fflush(stdout);
		fflush(stderr);
		forked = now_ns();
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			/* Its own session only: none of the parent's. */
			for (i = 0; i < TT_NPOOLS; i++)
				close(self->m[i].fd);
			close(report[0]);
			close(go[1]);
			child_main(log, m->name, report[1], go[0]);
			_exit(5);
		}
		close(report[1]);
		close(go[0]);

		if (log->reported) {
			/* The child is alive and holds exactly what it says. */
			ssize_t got = read(report[0], &rep, sizeof(rep));

			ASSERT_EQ((ssize_t)sizeof(rep), got)
				TH_LOG("trial %d: no report: %s", trial, log->failed ? log->why : "");
			n = __atomic_load_n(&log->n, __ATOMIC_ACQUIRE);
			ASSERT_TRUE(n == rep.n || n == rep.n + 1);
			bad = replay(m, log, 0, rep.n, self->why, sizeof(self->why));
			ASSERT_EQ(NULL, bad) TH_LOG("trial %d (reported, %s): %s", trial,
						    m->pd->suffix, bad);
			ASSERT_EQ(rep.reads, model_reads(m));
			ASSERT_EQ(rep.writes, model_writes(m));
			bad = check_pool(m, 2, rep.reads, rep.writes, self->why, sizeof(self->why));
			ASSERT_EQ(NULL, bad) TH_LOG("trial %d (reported, %s, alive): %s", trial,
						    m->pd->suffix, bad);
			sleep_us(rnd(&self->rng, 200));
		} else {
			uint32_t x = rnd(&self->rng, 100);

			/*
			 * Mostly while it runs operations; sometimes while it
			 * starts or attaches.  The delay follows how long
			 * children take to start on this machine and kernel.
			 */
			sleep_us(x < 15 ? rnd(&self->rng, startup_us) :
				 startup_us + rnd(&self->rng, startup_us + 2000));
		}
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(0, wait_dead(pid, &status));
		if (log->ready_ns > forked)
			startup_us = (7ULL * startup_us + (log->ready_ns - forked) / 1000) / 8;
		close(report[0]);
		close(go[1]);
		ASSERT_EQ(0U, log->failed) TH_LOG("trial %d: child: %s", trial, log->why);
		ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("trial %d: child status %#x", trial, status);

		/* Replay what it did, and what it may have been doing. */
		n = log->n;
		if (log->reported) {
			/* Only a wait forever may follow the report. */
			ASSERT_TRUE(n == rep.n || (n == rep.n + 1 && !log->rec[n - 1].done));
			bad = NULL;
			if (n > rep.n)
				bad = resolve_inflight(m, log, &log->rec[n - 1], st,
						       self->why, sizeof(self->why));
		} else {
			bad = replay(m, log, 0, n, self->why, sizeof(self->why));
			if (!bad && n && !log->rec[n - 1].done) {
				st->inflight[log->rec[n - 1].op]++;
				bad = resolve_inflight(m, log, &log->rec[n - 1], st,
						       self->why, sizeof(self->why));
			}
		}
		ASSERT_EQ(NULL, bad) TH_LOG("trial %d (%s, %s): %s", trial,
					    log->reported ? "reported" : "random", m->pd->suffix, bad);
		st->trials[log->reported]++;
		st->before_ops += !log->reported && !n;
		st->log_full += n >= TT_LOG_OPS;
		for (i = 0; i < (int)n; i++)
			st->ops += log->rec[i].done;

		model_bury(m, st);
		bad = check_pool(m, 1, 0, 0, self->why, sizeof(self->why));
		ASSERT_EQ(NULL, bad) TH_LOG("trial %d (%s, %s, after the kill): %s", trial,
					    log->reported ? "reported" : "random", m->pd->suffix, bad);
		bad = housekeeping(m, &self->rng, self->why, sizeof(self->why));
		ASSERT_EQ(NULL, bad) TH_LOG("trial %d: %s", trial, bad);
	}

	/* Free everything, poisoned slots too: the pools are whole again. */
	for (i = 0; i < TT_NPOOLS; i++) {
		struct tt_model *m = &self->m[i];
		struct mmk_pool_info info;

		while (m->nlive) {
			ASSERT_EQ(0, mmk_free_token(m->fd, m->live[0].token));
			model_free(m, &m->live[0]);
		}
		bad = check_pool(m, 1, 0, 0, self->why, sizeof(self->why));
		ASSERT_EQ(NULL, bad) TH_LOG("%s, at the end: %s", m->pd->suffix, bad);
		ASSERT_EQ(0, mmk_info(m->fd, &info));
		EXPECT_EQ(m->pd->capacity, info.available);
		EXPECT_EQ(0U, info.poisoned);
		EXPECT_EQ(0U, info.read_guards);
		EXPECT_EQ(0U, info.write_guards);
		EXPECT_EQ(info.stores, info.frees);
		TH_LOG("pool %s: %llu stores, %llu frees", m->pd->suffix,
		       (unsigned long long)info.stores, (unsigned long long)info.frees);
	}

	TH_LOG("%d trials (%u random kills, %u reported) in %.1f s, seed %" PRIu64 "; children start in about %u us",
	       ntrials, st->trials[0], st->trials[1], now_sec() - t0, self->seed, startup_us);
	TH_LOG("%lu operations completed by children; %u slots poisoned by deaths; parent held a write guard in %u trials",
	       st->ops, st->poisoned, st->parent_guard);
	TH_LOG("random kills in flight: store %u, free %u, read %u, peek %u, read_mut %u, read_release %u, write_release %u; before any op %u; log full %u; in-flight ops that took effect %u",
	       st->inflight[OP_STORE], st->inflight[OP_FREE], st->inflight[OP_READ],
	       st->inflight[OP_PEEK], st->inflight[OP_READ_MUT], st->inflight[OP_READ_RELEASE],
	       st->inflight[OP_WRITE_RELEASE], st->before_ops, st->log_full, st->inflight_took);
}

/* ---- queues ------------------------------------------------------------------ */

/*
 * Queue torture.  In each trial one to three children, each with its own
 * session and its own descriptors of the pool's three queues (opened by
 * name), produce (store-and-push, fan-out to two queues, a loan committed
 * into a queue, a batch of loans written through the arena window and
 * committed into a queue in one batch), consume (pops of up to four, read or write, waiting or
 * not, with no limit sometimes), forward what they popped to another
 * queue, commit new versions of what they popped for writing, and release,
 * one by one or in a batch that also waits for the next message.  Every
 * message is one sequence number's pattern, and every child checks what
 * it pops.  Then all of them are killed at a random moment: inside a
 * waiting push or pop, in the middle of a commit, holding guards.
 *
 * Nothing the children did is known to the parent, and nothing needs to
 * be: every message a child made was given to a queue (a refused
 * store-and-push stores nothing; a loan dies with its session), so once
 * the children are dead every allocated slot must be in a queue.  The
 * parent checks exactly that: the distinct tokens the queues hold are the
 * pool's allocated slots, no guard is left and nothing is poisoned, each
 * queue's counters add up (pushes = pops + evictions + deadline drops +
 * items), and every queued message is intact.  Between trials the parent
 * pops and releases some messages; at the end it closes the queues and
 * the pool must be whole.
 */
#define TQ_NQ		3
#define TQ_CAP		32
#define TQ_PAYLOAD	256
#define TQ_HELD		8

static const struct {
	const char *name;
	uint32_t policy, cap, soft;
} tq_queues[TQ_NQ] = {
	{ "tq-block", MMK_QUEUE_BLOCK, 6, 0 },
	/* Soft below hard: evictions happen between the caps. */
	{ "tq-oldest", MMK_QUEUE_DROP_OLDEST, 6, 3 },
	{ "tq-reject", MMK_QUEUE_REJECT, 5, 0 },
};

struct tq_shared {
	char pool[MMK_NAME_MAX];
	uint64_t seq_base;
	int failed;
	char why[200];
};

#define TQ_CHECK(c, cond) do {							\
	if (!(cond)) {								\
		tq_fail(c, __LINE__, #cond);					\
	}									\
} while (0)

struct tq_child {
	struct tq_shared *sh;
	int fd, q[TQ_NQ];
	void *map;
	unsigned char *arena;	/* the arena window, writable under write guards */
	size_t len;
	uint64_t rng, seq;
	uint64_t held[TQ_HELD];
	bool write[TQ_HELD];
	int nheld;
	unsigned char buf[TQ_PAYLOAD];
};

static void tq_fail(struct tq_child *c, int line, const char *what)
{
	if (!c->sh->failed) {
		snprintf(c->sh->why, sizeof(c->sh->why), "line %d: %s (errno %d)", line, what, errno);
		c->sh->failed = 1;
	}
	_exit(1);
}

static uint32_t tq_size(uint64_t seq)
{
	return 1 + seq % 200;
}

static void tq_msg(struct tq_child *c, struct mmk_msg_header *h)
{
	memset(h, 0, sizeof(*h));
	h->sequence = ++c->seq;
	h->qos = MMK_QOS_LATENCY_CRITICAL;
	fill(c->buf, tq_size(c->seq), c->seq);
}

/* A popped message is whole: its own sequence's pattern, its size. */
static void tq_check_popped(struct tq_child *c, const struct mmk_popped *e)
{
	char buf[160];

	TQ_CHECK(c, !msg_check(c->map, e->offset, e->payload_size, ~0ULL, 0, false, buf,
			       sizeof(buf)));
	TQ_CHECK(c, e->payload_size == tq_size(mmk_at(c->map, e->offset)->sequence));
}

static void tq_hold(struct tq_child *c, uint64_t token, bool write)
{
	c->held[c->nheld] = token;
	c->write[c->nheld] = write;
	c->nheld++;
}

static void tq_drop(struct tq_child *c, int i)
{
	c->nheld--;
	c->held[i] = c->held[c->nheld];
	c->write[i] = c->write[c->nheld];
}

static void tq_release(struct tq_child *c, int i)
{
	struct mmk_msg_header h;
	struct mmk_release r = { .token = c->held[i] };
	int ret;

	if (c->write[i] && rnd(&c->rng, 2)) {
		tq_msg(c, &h);
		r.flags = MMK_RELEASE_COMMIT;
		r.header = (uintptr_t)&h;
		r.payload = (uintptr_t)c->buf;
		r.payload_size = tq_size(c->seq);
	}
	ret = mmk_ioctl(c->fd, c->write[i] ? MMK_IOC_WRITE_RELEASE : MMK_IOC_READ_RELEASE, &r);
	TQ_CHECK(c, ret == 0);
	tq_drop(c, i);
}

static void tq_produce(struct tq_child *c)
{
	struct mmk_msg_header h;
	struct mmk_push p = { 0 };
	uint32_t a = rnd(&c->rng, TQ_NQ), b = (a + 1 + rnd(&c->rng, TQ_NQ - 1)) % TQ_NQ;
	int ret;

	tq_msg(c, &h);
	p.flags = MMK_PUSH_STORE;
	p.nr_queues = rnd(&c->rng, 3) ? 1 : 2;
	p.queue_fds[0] = c->q[a];
	p.queue_fds[1] = p.nr_queues == 2 ? c->q[b] : 0;
	if (rnd(&c->rng, 3) == 0) {
		p.flags |= MMK_PUSH_WAIT;
		p.timeout_ns = rnd(&c->rng, 4) ? rnd(&c->rng, 3000000) : 0;
	}
	p.header = (uintptr_t)&h;
	p.payload = (uintptr_t)c->buf;
	p.payload_size = tq_size(c->seq);
	ret = mmk_ioctl(c->fd, MMK_IOC_PUSH, &p);
	/* ENOSPC: the pool is full; ENOBUFS: refused, or the wait timed out. */
	TQ_CHECK(c, ret == 0 || ret == -ENOBUFS || ret == -ENOSPC);
}

/* A loan, committed straight into the Drop Oldest queue (it never refuses). */
static void tq_loan_push(struct tq_child *c)
{
	struct mmk_msg_header h;
	struct mmk_loan l = { 0 };
	struct mmk_push p = { .flags = MMK_PUSH_COMMIT, .nr_queues = 1, .queue_fds = { c->q[1] } };
	int ret;

	if (c->nheld >= TQ_HELD)
		return;
	ret = mmk_ioctl(c->fd, MMK_IOC_LOAN, &l);
	TQ_CHECK(c, ret == 0 || ret == -ENOSPC);
	if (ret)
		return;
	tq_msg(c, &h);
	p.token = l.token;
	p.header = (uintptr_t)&h;
	p.payload = (uintptr_t)c->buf;
	p.payload_size = tq_size(c->seq);
	ret = mmk_ioctl(c->fd, MMK_IOC_PUSH, &p);
	TQ_CHECK(c, ret == 0);
}

/*
 * Loans in one batch, written in place through the arena window, committed
 * into the Drop Oldest queue in another: the second batch zaps their
 * windows in one pass.  A death anywhere in it gives the loans back.
 */
static void tq_loan_batch(struct tq_child *c)
{
	struct mmk_batch_entry ops[4];
	struct mmk_batch b = { .ops = (uintptr_t)ops };
	struct mmk_msg_header *h;
	uint32_t n = 1 + rnd(&c->rng, 4), i;

	memset(ops, 0, sizeof(ops));
	for (i = 0; i < n; i++)
		ops[i].op = MMK_BATCH_LOAN;
	b.count = n;
	TQ_CHECK(c, mmk_ioctl(c->fd, MMK_IOC_BATCH, &b) == 0);
	/* The pool may run out: a LOAN then fails with ENOSPC and ends it. */
	TQ_CHECK(c, b.done == n || ops[b.done].result == -ENOSPC);
	for (i = 0; i < b.done; i++) {
		struct mmk_batch_entry push = {
			.op = MMK_BATCH_COMMIT_PUSH, .token = ops[i].token, .queue_fd = c->q[1],
		};

		h = (struct mmk_msg_header *)(c->arena + ops[i].offset);
		tq_msg(c, h);
		h->payload_size = tq_size(c->seq);
		memcpy(h + 1, c->buf, h->payload_size);
		ops[i] = push;
	}
	if (!b.done)
		return;
	b.count = b.done;
	TQ_CHECK(c, mmk_ioctl(c->fd, MMK_IOC_BATCH, &b) == 0);
	TQ_CHECK(c, b.done == b.count);
}

static void tq_consume(struct tq_child *c)
{
	struct mmk_popped e[4];
	uint32_t flags = 0, count = 0, max = 1 + rnd(&c->rng, 4), i;
	uint64_t timeout = 0;
	int ret;

	if (c->nheld + (int)max > TQ_HELD)
		max = TQ_HELD - c->nheld;
	if (!max)
		return;
	if (rnd(&c->rng, 3) == 0)
		flags |= MMK_POP_WRITE;
	if (rnd(&c->rng, 3) == 0) {
		flags |= MMK_POP_WAIT;
		timeout = rnd(&c->rng, 4) ? rnd(&c->rng, 3000000) : 0;
	}
	ret = mmk_pop(c->fd, c->q[rnd(&c->rng, TQ_NQ)], flags, timeout, e, max, &count);
	TQ_CHECK(c, ret == 0 || ret == -EAGAIN || (ret == -EBUSY && flags & MMK_POP_WRITE));
	if (ret)
		return;
	TQ_CHECK(c, count >= 1 && count <= max);
	for (i = 0; i < count; i++) {
		tq_check_popped(c, &e[i]);
		tq_hold(c, e[i].token, flags & MMK_POP_WRITE);
	}
}

/* Push a held message on to another queue (committing it if held for writing). */
static void tq_forward(struct tq_child *c)
{
	struct mmk_msg_header h;
	int i, ret;
	struct mmk_push p = { .nr_queues = 1 };

	if (!c->nheld)
		return;
	i = rnd(&c->rng, c->nheld);
	p.token = c->held[i];
	p.queue_fds[0] = c->q[rnd(&c->rng, TQ_NQ)];
	if (c->write[i]) {
		tq_msg(c, &h);
		p.flags = MMK_PUSH_COMMIT;
		p.header = (uintptr_t)&h;
		p.payload = (uintptr_t)c->buf;
		p.payload_size = tq_size(c->seq);
	}
	ret = mmk_ioctl(c->fd, MMK_IOC_PUSH, &p);
	/* EINPROGRESS: that queue holds it already (a fan-out's other copy). */
	TQ_CHECK(c, ret == 0 || ret == -ENOBUFS || ret == -EINPROGRESS);
	if (!ret && c->write[i])
		tq_drop(c, i);		/* the write guard became the queue's hold */
	else if (!c->write[i] || ret)
		tq_release(c, i);
}

/* One call: release everything held for reading, then pop (maybe waiting). */
static void tq_batch(struct tq_child *c)
{
	struct mmk_batch_entry ops[TQ_HELD + 1];
	struct mmk_batch b = { .ops = (uintptr_t)ops };
	uint32_t n = 0;
	int i, ret;

	memset(ops, 0, sizeof(ops));
	for (i = 0; i < c->nheld; i++) {
		if (c->write[i])
			continue;
		ops[n].op = MMK_BATCH_READ_RELEASE;
		ops[n].token = c->held[i];
		n++;
	}
	/* Held for writing, all of them: no room for one more. */
	if (c->nheld - (int)n >= TQ_HELD)
		return;
	ops[n].op = MMK_BATCH_POP;
	ops[n].queue_fd = c->q[rnd(&c->rng, TQ_NQ)];
	ops[n].flags = MMK_POP_WAIT;
	ops[n].timeout_ns = rnd(&c->rng, 2000000);
	n++;
	b.count = n;
	ret = mmk_ioctl(c->fd, MMK_IOC_BATCH, &b);
	TQ_CHECK(c, ret == 0);
	TQ_CHECK(c, b.done >= n - 1);
	for (i = c->nheld - 1; i >= 0; i--)
		if (!c->write[i])
			tq_drop(c, i);
	TQ_CHECK(c, ops[n - 1].result == 0 || ops[n - 1].result == -EAGAIN);
	if (!ops[n - 1].result) {
		struct mmk_popped e = {
			.token = ops[n - 1].token, .offset = ops[n - 1].offset,
			.payload_size = ops[n - 1].payload_size,
		};

		tq_check_popped(c, &e);
		tq_hold(c, e.token, false);
	}
}

static void tq_child_main(struct tq_shared *sh, int id)
{
	struct tq_child c = { .sh = sh };
	int i;

	c.rng = sh->seq_base ^ (0x9e3779b97f4a7c15ULL * (id + 1));
	c.seq = sh->seq_base + ((uint64_t)id << 20);
	c.fd = mmk_attach(sh->pool, TT_TYPE);
	TQ_CHECK(&c, c.fd >= 0);
	c.map = mmk_map(c.fd, &c.len);
	TQ_CHECK(&c, c.map != MAP_FAILED);
	c.arena = mmap(NULL, c.len, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd,
		       MMK_WINDOW_OFFSET(0));
	TQ_CHECK(&c, c.arena != MAP_FAILED);
	for (i = 0; i < TQ_NQ; i++) {
		c.q[i] = mmk_queue_open_name(c.fd, tq_queues[i].name);
		TQ_CHECK(&c, c.q[i] >= 0);
	}
	for (;;) {
		switch (rnd(&c.rng, 10)) {
		case 0 ... 2:
			tq_produce(&c);
			break;
		case 3:
			if (rnd(&c.rng, 2))
				tq_loan_push(&c);
			else
				tq_loan_batch(&c);
			break;
		case 4 ... 5:
			tq_consume(&c);
			break;
		case 6:
			tq_forward(&c);
			break;
		case 7:
			tq_batch(&c);
			break;
		default:
			if (c.nheld)
				tq_release(&c, rnd(&c.rng, c.nheld));
			break;
		}
	}
}

/* After the deaths: every allocated slot is in a queue, and every queue adds up. */
static const char *tq_account(int fd, const int *q, const void *map, char *why, size_t len)
{
	uint64_t seen[TQ_CAP * TQ_NQ];
	struct mmk_pool_info info;
	unsigned int n = 0, i, k, j;
	char buf[160];

	for (k = 0; k < TQ_NQ; k++) {
		struct mmk_queue_info qi;
		struct mmk_queue_peek pk;

		if (mmk_queue_info(q[k], &qi)) {
			snprintf(why, len, "queue info: %s", strerror(errno));
			return why;
		}
		if (qi.pushes != qi.pops + qi.drops[MMK_DROP_OLDEST] + qi.drops[MMK_DROP_DEADLINE] +
				 qi.items) {
			snprintf(why, len, "%s: %llu pushes, %llu pops, %llu evicted, %llu expired, %u queued",
				 tq_queues[k].name, (unsigned long long)qi.pushes,
				 (unsigned long long)qi.pops,
				 (unsigned long long)qi.drops[MMK_DROP_OLDEST],
				 (unsigned long long)qi.drops[MMK_DROP_DEADLINE], qi.items);
			return why;
		}
		if (qi.items > tq_queues[k].cap) {
			snprintf(why, len, "%s holds %u, over its cap", tq_queues[k].name, qi.items);
			return why;
		}
		for (i = 0; i < qi.items; i++) {
			struct mmk_guard g;

			if (mmk_queue_peek(fd, q[k], i, &pk)) {
				snprintf(why, len, "%s: peek %u of %u: %s", tq_queues[k].name, i, qi.items,
					 strerror(errno));
				return why;
			}
			for (j = 0; j < n && seen[j] != pk.token; j++)
				;
			if (j == n)
				seen[n++] = pk.token;
			if (mmk_guard(fd, MMK_IOC_READ, pk.token, &g)) {
				snprintf(why, len, "%s: queued token %#" PRIx64 ": %s", tq_queues[k].name,
					 (uint64_t)pk.token, strerror(errno));
				return why;
			}
			if (msg_check(map, g.offset, g.payload_size, ~0ULL, 0, false, buf, sizeof(buf)) ||
			    g.payload_size != tq_size(mmk_at(map, g.offset)->sequence)) {
				mmk_read_release(fd, pk.token);
				snprintf(why, len, "%s: queued message %u is not whole", tq_queues[k].name, i);
				return why;
			}
			mmk_read_release(fd, pk.token);
		}
	}
	if (mmk_info(fd, &info)) {
		snprintf(why, len, "pool info: %s", strerror(errno));
		return why;
	}
	if (info.available != TQ_CAP - n || info.read_guards || info.write_guards ||
	    info.poisoned || info.sessions != 1 || info.stores - info.frees != n) {
		snprintf(why, len,
			 "pool: available %u, read guards %u, write guards %u, poisoned %u, sessions %u, "
			 "stores %llu, frees %llu; the queues hold %u messages",
			 info.available, info.read_guards, info.write_guards, info.poisoned,
			 info.sessions, (unsigned long long)info.stores,
			 (unsigned long long)info.frees, n);
		return why;
	}
	return NULL;
}

FIXTURE(queues) {
	int unused;
};

FIXTURE_SETUP(queues)
{
}

FIXTURE_TEARDOWN(queues)
{
}

TEST_F_TIMEOUT(queues, kill_at_random_moments, 540)
{
	long long exact = env_number("MMK_TORTURE_TRIALS");
	long long budget = env_number("MMK_TORTURE_SECONDS") ?: TT_SECONDS / 2;
	int trial, ntrials = exact ?: TT_TRIALS / 4, k, i, fd, q[TQ_NQ];
	uint64_t seed = seed_from_env(), rng = seed;
	unsigned long kills = 0, popped = 0, children = 0;
	struct mmk_pool_info info;
	struct tq_shared *sh;
	double t0 = now_sec();
	const char *bad;
	char why[300];
	size_t len;
	void *map;

	TH_LOG("seed %" PRIu64 " (set MMK_SEED=%" PRIu64 " to repeat)", seed, seed);
	sh = shared_zeroed(sizeof(*sh));
	ASSERT_NE(MAP_FAILED, sh);
	snprintf(sh->pool, sizeof(sh->pool), "torture-q-%d", getpid());
	fd = mmk_create(sh->pool, TQ_PAYLOAD, TQ_CAP, 0600, TT_TYPE, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	for (k = 0; k < TQ_NQ; k++) {
		q[k] = mmk_queue_create(fd, tq_queues[k].name, tq_queues[k].policy, tq_queues[k].cap,
					tq_queues[k].soft);
		ASSERT_LE(0, q[k]);
	}

	for (trial = 0; trial < ntrials; trial++) {
		int nchild = 1 + rnd(&rng, 3);
		pid_t pids[3];

		if (!exact && trial >= TT_MIN_TRIALS / 4 && now_sec() - t0 > budget) {
			TH_LOG("stopping after %d trials: the %lld s budget is used", trial, budget);
			ntrials = trial;
			break;
		}
		sh->seq_base = (uint64_t)(trial + 1) << 32 | rnd(&rng, 1 << 16);
		for (i = 0; i < nchild; i++) {
			pids[i] = start_child();
			ASSERT_LE(0, pids[i]);
			if (pids[i] == 0) {
				close(fd);
				for (k = 0; k < TQ_NQ; k++)
					close(q[k]);
				tq_child_main(sh, i);
				_exit(5);
			}
			children++;
		}
		sleep_us(rnd(&rng, 3) ? 2000 + rnd(&rng, 20000) : rnd(&rng, 2000));
		for (i = 0; i < nchild; i++) {
			int status;

			ASSERT_EQ(0, kill(pids[i], SIGKILL));
			ASSERT_EQ(0, wait_dead(pids[i], &status));
			ASSERT_EQ(0, sh->failed) TH_LOG("trial %d: child %d: %s", trial, i, sh->why);
			ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
				TH_LOG("trial %d: child %d status %#x", trial, i, status);
			kills++;
		}
		bad = tq_account(fd, q, map, why, sizeof(why));
		ASSERT_EQ(NULL, bad) TH_LOG("trial %d (%d children killed): %s", trial, nchild, bad);

		/* Make room: pop and release some. */
		for (k = 0; k < TQ_NQ; k++) {
			struct mmk_popped e[4];
			uint32_t count = 0, j;

			if (rnd(&rng, 2) || mmk_pop(fd, q[k], 0, 0, e, 1 + rnd(&rng, 4), &count))
				continue;
			for (j = 0; j < count; j++) {
				ASSERT_EQ(0, mmk_read_release(fd, e[j].token));
			}
			popped += count;
		}
	}

	/* The queues go; the pool is whole again. */
	for (k = 0; k < TQ_NQ; k++)
		close(q[k]);
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ((uint32_t)TQ_CAP, info.available);
	EXPECT_EQ(info.stores, info.frees);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(0U, info.read_guards + info.write_guards);
	TH_LOG("%d trials, %lu children killed in %.1f s; %llu messages stored, %llu freed; the parent popped %lu",
	       ntrials, kills, now_sec() - t0, (unsigned long long)info.stores,
	       (unsigned long long)info.frees, popped);
	munmap(map, len);
	close(fd);
	munmap(sh, sizeof(*sh));
	(void)children;
}

TEST_HARNESS_MAIN
