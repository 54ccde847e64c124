// SPDX-License-Identifier: GPL-2.0
/*
 * Stress: several processes, each with several threads, run random
 * operations on two shared named pools for a bounded time: store, free,
 * read, peek, read_mut released with a commit, in place through a window or
 * unchanged, sometimes waiting for the guard (MMK_GUARD_WAIT), sometimes
 * with no time limit; and now and then a thread attaches a short-lived
 * session of its own and closes it while holding a read guard.
 *
 * Every message is one repeated byte, derived from the sequence number in
 * its header.  A reader holding a read guard checks every byte against the
 * header, yields, and checks again: a message must never be seen torn or
 * changing under a guard.  Every operation is counted by its result, and
 * at the end the counts must agree with the pool's own counters, no guard
 * or poison may be left, and freeing what is left makes the pools whole.
 *
 * Tokens live on a board in shared memory, one entry per slot.  A thread
 * that frees a token first takes it off the board, so only the thread that
 * stored a token or took it off the board may free it: a free may find it
 * guarded (ETXTBSY, the token goes back), but never already freed.
 *
 * MMK_STRESS_SECONDS sets the duration (default 10), MMK_SEED the seed of
 * the choices (the interleaving is not reproducible).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
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

#define ST_TYPE		0x7374726573733031ULL
#define ST_NPROC	3
#define ST_NTHREAD	3
#define ST_NPOOLS	2
#define ST_MAXCAP	16
#define ST_MAX_PAYLOAD	4032
#define ST_SECONDS	10
#define ST_MAX_SECONDS	450	/* within the test's timeout */

static const struct st_pool_desc {
	const char *suffix;
	uint32_t payload_size;
	uint32_t capacity;
	uint32_t flags;
} st_pools[ST_NPOOLS] = {
	/* Few slots: every operation contends with the others. */
	{ "hot", 1000, 6, 0 },
	/* Page-aligned: writers also write in place through windows. */
	{ "pages", ST_MAX_PAYLOAD, 12, MMK_POOL_PAGE_ALIGNED },
};

enum st_op {
	OP_STORE,
	OP_FREE,
	OP_READ,
	OP_PEEK,
	OP_COMMIT,	/* read_mut, then a write release with a commit */
	OP_WINDOW,	/* read_mut, then a write release after an in-place write */
	OP_UNCHANGED,	/* read_mut, then a write release without a commit */
	OP_CLOSE,	/* attach a new session, read, close it with the guard held */
	OP_NR,
};

static const char *const st_op_names[OP_NR] = {
	"store", "free", "read", "peek", "commit", "window", "unchanged", "close",
};

enum st_res {
	RES_OK,
	RES_BUSY,	/* EBUSY: without waiting, or when the wait timed out */
	RES_GONE,	/* ENODATA or EBADSLT: the token was freed meanwhile */
	RES_FULL,	/* ENOSPC */
	RES_INUSE,	/* ETXTBSY */
	RES_EMPTY,	/* no token to work on */
	RES_NR,
};

struct st_counts {
	uint64_t n[OP_NR][RES_NR];
	uint64_t waits;		/* guards asked for with MMK_GUARD_WAIT */
	uint64_t waits_forever;	/* ... and no time limit */
	uint64_t checked;	/* messages checked byte by byte under a guard */
	uint64_t bytes;		/* bytes checked */
};

/* Shared by every process (MAP_SHARED anonymous). */
struct st_shared {
	int stop;
	int failed;
	char why[256];
	uint64_t seq;					/* last sequence number used */
	uint64_t board[ST_NPOOLS][ST_MAXCAP];		/* tokens, or MMK_TOKEN_INVALID */
	uint64_t seed;
	struct st_counts counts[ST_NPROC][ST_NTHREAD];
};

/* One process's view of a pool. */
struct st_pool {
	const struct st_pool_desc *pd;
	int fd;
	uint32_t id;
	uint32_t slot_size;
	void *map;
	size_t len;
};

struct st_thread {
	struct st_shared *sh;
	struct st_pool *pools;
	struct st_counts *cnt;
	char (*names)[MMK_NAME_MAX];
	uint64_t rng;
	int proc, thread;
	unsigned char buf[ST_MAX_PAYLOAD];
};

static int seconds_from_env(void)
{
	const char *e = getenv("MMK_STRESS_SECONDS");
	long n = e && *e ? strtol(e, NULL, 0) : ST_SECONDS;

	if (n < 1)
		return ST_SECONDS;
	return n > ST_MAX_SECONDS ? ST_MAX_SECONDS : (int)n;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The byte every payload byte of message seq is; never 0. */
static unsigned char seq_byte(uint64_t seq)
{
	return (unsigned char)(1 + seq % 255);
}

static bool stopping(struct st_shared *sh)
{
	return __atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE);
}

/* Record the first failure, and stop everyone. */
static void st_fail(struct st_thread *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void st_fail(struct st_thread *t, const char *fmt, ...)
{
	struct st_shared *sh = t->sh;
	int zero = 0;
	va_list ap;
	int n;

	if (__atomic_compare_exchange_n(&sh->failed, &zero, 1, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		n = snprintf(sh->why, sizeof(sh->why), "process %d thread %d: ", t->proc,
			     t->thread);
		va_start(ap, fmt);
		vsnprintf(sh->why + n, sizeof(sh->why) - n, fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
}

/* ---- the board of tokens ---------------------------------------------------- */

/* Put a token this thread owns on the board; there is always room. */
static bool board_put(struct st_thread *t, int pool, uint64_t token)
{
	uint64_t *board = t->sh->board[pool];
	uint32_t cap = st_pools[pool].capacity;
	uint32_t i, start = rnd(&t->rng, cap);
	long tries;

	for (tries = 0; tries < 1000000; tries++) {
		uint64_t empty = MMK_TOKEN_INVALID;

		i = (start + tries) % cap;
		if (__atomic_compare_exchange_n(&board[i], &empty, token, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
		if (tries % cap == cap - 1)
			sched_yield();
	}
	st_fail(t, "no room on the board of pool %s: more live tokens than slots?",
		st_pools[pool].suffix);
	return false;
}

/* Take a token off the board: this thread owns it now. */
static uint64_t board_take(struct st_thread *t, int pool)
{
	uint32_t i = rnd(&t->rng, st_pools[pool].capacity);

	return __atomic_exchange_n(&t->sh->board[pool][i], MMK_TOKEN_INVALID, __ATOMIC_ACQ_REL);
}

/* A token someone owns, perhaps freed by the time it is used. */
static uint64_t board_peek(struct st_thread *t, int pool)
{
	uint32_t i = rnd(&t->rng, st_pools[pool].capacity);

	return __atomic_load_n(&t->sh->board[pool][i], __ATOMIC_ACQUIRE);
}

/* ---- operations --------------------------------------------------------------- */

static void count(struct st_thread *t, enum st_op op, enum st_res res)
{
	t->cnt->n[op][res]++;
}

/*
 * Check the message under a guard: the header's payload size is the
 * guard's, its sequence was issued, and every payload byte is the byte of
 * that sequence.  False (after st_fail) if not.
 */
static bool check_msg(struct st_thread *t, const struct st_pool *p, const struct mmk_guard *g,
		      bool header_only, const char *what)
{
	const struct mmk_msg_header *h = mmk_at(p->map, g->offset);
	const unsigned char *b = mmk_payload(p->map, g->offset);
	uint64_t seq = h->sequence;
	uint32_t size = h->payload_size, j;
	unsigned char want = seq_byte(seq);

	if (size != g->payload_size || seq > __atomic_load_n(&t->sh->seq, __ATOMIC_ACQUIRE) ||
	    h->memory_class != MMK_MEM_HOST || !h->qos || h->qos > MMK_QOS_LATENCY_CRITICAL) {
		st_fail(t, "%s of %s at %#" PRIx64 ": header sequence %" PRIu64
			" payload_size %u qos %u class %u, guard payload_size %u", what,
			p->pd->suffix, (uint64_t)g->offset, seq, size, h->qos, h->memory_class,
			g->payload_size);
		return false;
	}
	if (header_only)
		return true;
	for (j = 0; j < size; j++) {
		if (b[j] != want) {
			st_fail(t, "%s of %s at %#" PRIx64 ": torn: payload byte %u of %u is %#x, message %" PRIu64 " has %#x",
				what, p->pd->suffix, (uint64_t)g->offset, j, size, b[j], seq, want);
			return false;
		}
	}
	t->cnt->checked++;
	t->cnt->bytes += size;
	return true;
}

/* Ask for a guard, sometimes waiting for it. */
static int take_guard(struct st_thread *t, const struct st_pool *p, unsigned long cmd,
		      uint64_t token, struct mmk_guard *g)
{
	uint32_t x = rnd(&t->rng, 16);
	int ret;

	memset(g, 0, sizeof(*g));
	g->token = token;
	if (x < 4) {
		g->flags = MMK_GUARD_WAIT;
		/* No limit, sometimes: every guard is released soon. */
		g->timeout_ns = x ? 50000 + rnd(&t->rng, 2000000) : 0;
		t->cnt->waits++;
		t->cnt->waits_forever += !x;
	}
	ret = mmk_ioctl(p->fd, cmd, g);
	if (ret == -EINTR)
		st_fail(t, "guard wait interrupted with no signal sent");
	return ret;
}

/* Results any guard request on a token from the board may have. */
static enum st_res guard_res(struct st_thread *t, enum st_op op, int ret)
{
	switch (ret) {
	case 0:
		return RES_OK;
	case -EBUSY:
		return RES_BUSY;
	case -ENODATA:
	case -EBADSLT:
		return RES_GONE;
	}
	st_fail(t, "%s: guard: %s", st_op_names[op], strerror(-ret));
	return RES_NR;
}

static void do_store(struct st_thread *t, int pool)
{
	const struct st_pool *p = &t->pools[pool];
	uint32_t size = rnd(&t->rng, p->pd->payload_size + 1);
	uint64_t seq = __atomic_add_fetch(&t->sh->seq, 1, __ATOMIC_ACQ_REL);
	struct mmk_msg_header h = {
		.sequence = seq,
		.qos = (uint8_t)rnd(&t->rng, 4),
	};
	struct mmk_store s = {
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)t->buf,
		.payload_size = size,
	};
	int ret;

	memset(t->buf, seq_byte(seq), size);
	ret = mmk_ioctl(p->fd, MMK_IOC_STORE, &s);
	if (ret == -ENOSPC) {
		count(t, OP_STORE, RES_FULL);
	} else if (ret) {
		st_fail(t, "store: %s", strerror(-ret));
	} else {
		count(t, OP_STORE, RES_OK);
		board_put(t, pool, s.token);
	}
}

static void do_free(struct st_thread *t, int pool)
{
	const struct st_pool *p = &t->pools[pool];
	uint64_t token = board_take(t, pool);
	int ret;

	if (token == MMK_TOKEN_INVALID) {
		count(t, OP_FREE, RES_EMPTY);
		return;
	}
	ret = mmk_free_token(p->fd, token);
	if (ret == -ETXTBSY) {
		count(t, OP_FREE, RES_INUSE);
		board_put(t, pool, token);
	} else if (ret) {
		/* Only its owner frees a token: it cannot be gone. */
		st_fail(t, "free of a token this thread owns: %s", strerror(-ret));
	} else {
		count(t, OP_FREE, RES_OK);
	}
}

static void do_read(struct st_thread *t, int pool, bool header_only)
{
	enum st_op op = header_only ? OP_PEEK : OP_READ;
	const struct st_pool *p = &t->pools[pool];
	uint64_t token = board_peek(t, pool), seq;
	struct mmk_guard g;
	enum st_res res;
	int ret;

	if (token == MMK_TOKEN_INVALID) {
		count(t, op, RES_EMPTY);
		return;
	}
	ret = take_guard(t, p, header_only ? MMK_IOC_PEEK_HEADER : MMK_IOC_READ, token, &g);
	res = guard_res(t, op, ret);
	if (res == RES_NR)
		return;
	count(t, op, res);
	if (ret)
		return;
	seq = mmk_at(p->map, g.offset)->sequence;
	/* Check, let the others run, check again: nothing moves under a guard. */
	if (check_msg(t, p, &g, header_only, st_op_names[op])) {
		sched_yield();
		if (check_msg(t, p, &g, header_only, st_op_names[op]) &&
		    mmk_at(p->map, g.offset)->sequence != seq)
			st_fail(t, "%s: message %" PRIu64 " became %" PRIu64 " under a guard",
				st_op_names[op], seq, (uint64_t)mmk_at(p->map, g.offset)->sequence);
	}
	ret = mmk_read_release(p->fd, token);
	if (ret)
		st_fail(t, "%s: release: %s", st_op_names[op], strerror(-ret));
}

/* Write a new message in place through a window; the release settles it. */
static int window_write(struct st_thread *t, const struct st_pool *p, uint64_t offset,
			uint64_t seq, uint32_t size, void **window)
{
	struct mmk_msg_header *h;
	void *w;

	w = mmap(NULL, p->slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd,
		 MMK_WINDOW_OFFSET(offset));
	if (w == MAP_FAILED)
		return -errno;
	h = w;
	memset((unsigned char *)w + sizeof(*h), seq_byte(seq), size);
	memset(h, 0, sizeof(*h));
	h->sequence = seq;
	h->payload_size = size;
	h->qos = (uint8_t)rnd(&t->rng, 4);
	*window = w;
	return 0;
}

static void do_write(struct st_thread *t, int pool)
{
	const struct st_pool *p = &t->pools[pool];
	uint64_t token = board_peek(t, pool);
	uint32_t x = rnd(&t->rng, 8);
	enum st_op op = x < 5 ? OP_COMMIT : x < 7 ? OP_WINDOW : OP_UNCHANGED;
	struct mmk_msg_header h = { .qos = MMK_QOS_LATENCY_CRITICAL };
	struct mmk_release rel = { .token = token };
	struct mmk_guard g;
	enum st_res res;
	void *w = NULL;
	uint32_t size;
	int ret;

	if (op == OP_WINDOW && !(p->pd->flags & MMK_POOL_PAGE_ALIGNED))
		op = OP_COMMIT;
	if (token == MMK_TOKEN_INVALID) {
		count(t, op, RES_EMPTY);
		return;
	}
	ret = take_guard(t, p, MMK_IOC_READ_MUT, token, &g);
	res = guard_res(t, op, ret);
	if (res == RES_NR)
		return;
	count(t, op, res);
	if (ret)
		return;
	/* Exclusive: the message is whole, and stays so until this thread writes. */
	if (!check_msg(t, p, &g, false, "write guard"))
		goto release;

	if (op != OP_UNCHANGED) {
		h.sequence = __atomic_add_fetch(&t->sh->seq, 1, __ATOMIC_ACQ_REL);
		size = rnd(&t->rng, p->pd->payload_size + 1);
	}
	if (op == OP_COMMIT) {
		memset(t->buf, seq_byte(h.sequence), size);
		rel.flags = MMK_RELEASE_COMMIT;
		rel.header = (uintptr_t)&h;
		rel.payload = (uintptr_t)t->buf;
		rel.payload_size = size;
	} else if (op == OP_WINDOW) {
		ret = window_write(t, p, g.offset, h.sequence, size, &w);
		if (ret) {
			st_fail(t, "window mmap: %s", strerror(-ret));
			goto release;
		}
	}
	ret = mmk_ioctl(p->fd, MMK_IOC_WRITE_RELEASE, &rel);
	if (ret)
		st_fail(t, "%s: write release: %s", st_op_names[op], strerror(-ret));
	if (w)
		munmap(w, p->slot_size);
	return;

release:
	rel.flags = 0;
	mmk_ioctl(p->fd, MMK_IOC_WRITE_RELEASE, &rel);
}

/*
 * A short-lived session: attach the pool anew, take a read guard, and
 * close the session while holding it; the close must drop the guard.
 */
static void do_close(struct st_thread *t, int pool, char names[ST_NPOOLS][MMK_NAME_MAX])
{
	struct st_pool p = t->pools[pool];
	uint64_t token = board_peek(t, pool);
	struct mmk_guard g;
	enum st_res res;
	int ret;

	if (token == MMK_TOKEN_INVALID) {
		count(t, OP_CLOSE, RES_EMPTY);
		return;
	}
	p.fd = mmk_attach(names[pool], ST_TYPE);
	if (p.fd < 0) {
		st_fail(t, "attach %s: %s", names[pool], strerror(-p.fd));
		return;
	}
	p.map = mmk_map(p.fd, &p.len);
	if (p.map == MAP_FAILED) {
		st_fail(t, "mmap: %s", strerror(errno));
		close(p.fd);
		return;
	}
	ret = take_guard(t, &p, MMK_IOC_READ, token, &g);
	res = guard_res(t, OP_CLOSE, ret);
	if (res != RES_NR)
		count(t, OP_CLOSE, res);
	if (!ret)
		check_msg(t, &p, &g, false, "read in a new session");
	/* Unmapped first or last: the session goes with its last reference. */
	if (rnd(&t->rng, 2)) {
		munmap(p.map, p.len);
		close(p.fd);
	} else {
		close(p.fd);
		munmap(p.map, p.len);
	}
}

static void *worker(void *arg)
{
	struct st_thread *t = arg;

	while (!stopping(t->sh)) {
		int pool = rnd(&t->rng, ST_NPOOLS);
		uint32_t x = rnd(&t->rng, 100);

		if (x < 18)
			do_store(t, pool);
		else if (x < 32)
			do_free(t, pool);
		else if (x < 62)
			do_read(t, pool, false);
		else if (x < 72)
			do_read(t, pool, true);
		else if (x < 98)
			do_write(t, pool);
		else
			do_close(t, pool, t->names);
	}
	return NULL;
}

/* One process: its own sessions on both pools, shared by its threads. */
static int process_main(struct st_shared *sh, char names[ST_NPOOLS][MMK_NAME_MAX], int proc)
{
	struct st_pool pools[ST_NPOOLS];
	struct st_thread *ts;
	pthread_t tids[ST_NTHREAD];
	struct mmk_pool_info info;
	struct st_thread boot = { .sh = sh, .proc = proc, .thread = -1 };
	int i, ret;

	ts = calloc(ST_NTHREAD, sizeof(*ts));
	if (!ts)
		return 4;
	for (i = 0; i < ST_NPOOLS; i++) {
		pools[i].pd = &st_pools[i];
		pools[i].fd = mmk_attach(names[i], ST_TYPE);
		if (pools[i].fd < 0) {
			st_fail(&boot, "attach %s: %s", names[i], strerror(-pools[i].fd));
			return 1;
		}
		if (mmk_info(pools[i].fd, &info)) {
			st_fail(&boot, "pool info: %s", strerror(errno));
			return 1;
		}
		pools[i].id = info.pool_id;
		pools[i].slot_size = info.slot_size;
		pools[i].map = mmk_map(pools[i].fd, &pools[i].len);
		if (pools[i].map == MAP_FAILED) {
			st_fail(&boot, "mmap: %s", strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < ST_NTHREAD; i++) {
		ts[i].sh = sh;
		ts[i].pools = pools;
		ts[i].cnt = &sh->counts[proc][i];
		ts[i].names = names;
		ts[i].proc = proc;
		ts[i].thread = i;
		ts[i].rng = sh->seed ^ ((uint64_t)(proc * ST_NTHREAD + i + 1) << 40);
		ret = pthread_create(&tids[i], NULL, worker, &ts[i]);
		if (ret) {
			st_fail(&boot, "pthread_create: %s", strerror(ret));
			return 1;
		}
	}
	for (i = 0; i < ST_NTHREAD; i++)
		pthread_join(tids[i], NULL);
	for (i = 0; i < ST_NPOOLS; i++) {
		munmap(pools[i].map, pools[i].len);
		close(pools[i].fd);
	}
	return __atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE) ? 1 : 0;
}

FIXTURE(stress) {
	struct st_shared *sh;
	char names[ST_NPOOLS][MMK_NAME_MAX];
	int fd[ST_NPOOLS];
	void *map[ST_NPOOLS];
	size_t len[ST_NPOOLS];
};

FIXTURE_SETUP(stress)
{
	int i;

	self->sh = shared_zeroed(sizeof(*self->sh));
	ASSERT_NE(MAP_FAILED, self->sh);
	memset(self->sh->board, 0xff, sizeof(self->sh->board));
	self->sh->seed = seed_from_env();
	TH_LOG("seed %" PRIu64 " (set MMK_SEED=%" PRIu64 " to repeat)", self->sh->seed,
	       self->sh->seed);
	for (i = 0; i < ST_NPOOLS; i++) {
		self->fd[i] = -1;
		self->map[i] = MAP_FAILED;
	}
	for (i = 0; i < ST_NPOOLS; i++) {
		snprintf(self->names[i], sizeof(self->names[i]), "stress-%d-%s", getpid(),
			 st_pools[i].suffix);
		self->fd[i] = mmk_create(self->names[i], st_pools[i].payload_size,
					 st_pools[i].capacity, 0600, ST_TYPE, st_pools[i].flags);
		ASSERT_LE(0, self->fd[i]) TH_LOG("create: %s", strerror(-self->fd[i]));
		self->map[i] = mmk_map(self->fd[i], &self->len[i]);
		ASSERT_NE(MAP_FAILED, self->map[i]);
	}
}

FIXTURE_TEARDOWN(stress)
{
	int i;

	for (i = 0; i < ST_NPOOLS; i++) {
		if (self->map[i] != MAP_FAILED)
			munmap(self->map[i], self->len[i]);
		if (self->fd[i] >= 0)
			close(self->fd[i]);
	}
	if (self->sh != MAP_FAILED)
		munmap(self->sh, sizeof(*self->sh));
}

TEST_F_TIMEOUT(stress, processes_and_threads, 540)
{
	struct st_shared *sh = self->sh;
	uint64_t total[OP_NR][RES_NR] = {};
	uint64_t all = 0, stores = 0, frees = 0, waits = 0, forever = 0, checked = 0, bytes = 0;
	int seconds = seconds_from_env(), i, j, op, res;
	pid_t pids[ST_NPROC];
	double t0, elapsed;

	t0 = now_sec();
	for (i = 0; i < ST_NPROC; i++) {
		pids[i] = start_child();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			for (j = 0; j < ST_NPOOLS; j++) {
				munmap(self->map[j], self->len[j]);
				close(self->fd[j]);
			}
			_exit(process_main(sh, self->names, i));
		}
	}
	while (now_sec() - t0 < seconds && !__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE))
		usleep(20000);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < ST_NPROC; i++) {
		EXPECT_EQ(0, wait_child(pids[i])) TH_LOG("process %d", i);
	}
	elapsed = now_sec() - t0;
	ASSERT_EQ(0, sh->failed) TH_LOG("%s", sh->why);

	for (i = 0; i < ST_NPROC; i++) {
		for (j = 0; j < ST_NTHREAD; j++) {
			const struct st_counts *c = &sh->counts[i][j];

			for (op = 0; op < OP_NR; op++) {
				for (res = 0; res < RES_NR; res++) {
					total[op][res] += c->n[op][res];
					all += c->n[op][res];
				}
			}
			waits += c->waits;
			forever += c->waits_forever;
			checked += c->checked;
			bytes += c->bytes;
		}
	}
	TH_LOG("%d processes x %d threads for %.1f s (seed %" PRIu64 "): %" PRIu64 " operations",
	       ST_NPROC, ST_NTHREAD, elapsed, sh->seed, all);
	for (op = 0; op < OP_NR; op++) {
		TH_LOG("  %-9s ok %" PRIu64 ", busy %" PRIu64 ", gone %" PRIu64 ", full %" PRIu64
		       ", in use %" PRIu64 ", no token %" PRIu64, st_op_names[op],
		       total[op][RES_OK], total[op][RES_BUSY], total[op][RES_GONE],
		       total[op][RES_FULL], total[op][RES_INUSE], total[op][RES_EMPTY]);
	}
	TH_LOG("  %" PRIu64 " guards asked with MMK_GUARD_WAIT (%" PRIu64 " with no limit); %" PRIu64
	       " messages (%" PRIu64 " bytes) checked under a guard, none torn",
	       waits, forever, checked, bytes);

	/*
	 * Everyone is gone: no guard, no poison, and the pool's counters are
	 * the sum of what every thread counted.
	 */
	for (i = 0; i < ST_NPOOLS; i++) {
		struct mmk_pool_info info;
		struct mmk_guard g;
		uint32_t live = 0;

		for (j = 0; j < (int)st_pools[i].capacity; j++)
			live += sh->board[i][j] != MMK_TOKEN_INVALID;
		ASSERT_EQ(0, mmk_info(self->fd[i], &info));
		EXPECT_EQ(1U, info.sessions);
		EXPECT_EQ(0U, info.read_guards);
		EXPECT_EQ(0U, info.write_guards);
		EXPECT_EQ(0U, info.poisoned);
		EXPECT_EQ(st_pools[i].capacity - live, info.available);
		EXPECT_EQ(info.stores - info.frees, (uint64_t)live);
		/* Only the workers stored and freed, so far. */
		stores += info.stores;
		frees += info.frees;

		/* What is left is whole; free it. */
		for (j = 0; j < (int)st_pools[i].capacity; j++) {
			uint64_t token = sh->board[i][j];
			const struct mmk_msg_header *h;
			const unsigned char *b;
			uint32_t k;

			if (token == MMK_TOKEN_INVALID)
				continue;
			ASSERT_EQ(0, mmk_guard(self->fd[i], MMK_IOC_READ, token, &g));
			h = mmk_at(self->map[i], g.offset);
			b = mmk_payload(self->map[i], g.offset);
			EXPECT_EQ(g.payload_size, h->payload_size);
			for (k = 0; k < g.payload_size; k++) {
				if (b[k] != seq_byte(h->sequence))
					break;
			}
			EXPECT_EQ(g.payload_size, k) TH_LOG("message %" PRIu64 " torn at byte %u",
							    (uint64_t)h->sequence, k);
			ASSERT_EQ(0, mmk_read_release(self->fd[i], token));
			ASSERT_EQ(0, mmk_free_token(self->fd[i], token));
		}
		ASSERT_EQ(0, mmk_info(self->fd[i], &info));
		EXPECT_EQ(st_pools[i].capacity, info.available);
		EXPECT_EQ(info.stores, info.frees);
		EXPECT_EQ(0U, info.poisoned);
	}
	EXPECT_EQ(total[OP_STORE][RES_OK], stores);
	EXPECT_EQ(total[OP_FREE][RES_OK], frees);
}

/* ---- queues ------------------------------------------------------------------ */

/*
 * Queue stress: producer processes (two threads each) store-and-push
 * numbered messages into queue A, every fourth one fanned out to queue B
 * as well; forwarder threads pop B and push each message on to queue C
 * (the same slot: zero copy) before releasing it; consumer processes (two
 * threads each) pop A and C, one at a time or up to four, waiting or not,
 * and releasing one by one or in a batch that also pops.  Every queue is
 * Block, and producers wait for room, so nothing may be dropped.
 *
 * Every message carries its producer and number in its sequence, and a
 * checksum of its payload in its trace id; the payload is a pattern of the
 * sequence.  A consumer checks all of it under its guard (nothing torn),
 * that each producer's numbers come in increasing order from each queue
 * (FIFO; from A), and counts each delivery in shared memory: at the end every
 * message produced was delivered exactly once from A, and exactly once
 * from C if it was fanned out (nothing lost, nothing twice), and the pool
 * is whole.
 */
#define SQ_PROD		2	/* producer processes */
#define SQ_CONS		2	/* consumer processes */
#define SQ_THREADS	2	/* threads per producer, forwarder and consumer process */
#define SQ_PT		(SQ_PROD * SQ_THREADS)
#define SQ_MAXN		(1 << 18)	/* messages per producer thread at most */
#define SQ_PAYLOAD	512
#define SQ_SLOTS	40

enum { SQ_A, SQ_B, SQ_C, SQ_NQ };

static const char *const sq_names[SQ_NQ] = { "sq-a", "sq-b", "sq-c" };

struct sq_shared {
	int stop;		/* producers stop */
	int drained;		/* everyone else stops */
	int failed;
	char why[256];
	char pool[MMK_NAME_MAX];
	uint64_t seed;
	uint32_t produced[SQ_PT];
	uint64_t popped, batches, forwarded, waits;
	uint8_t got[2][SQ_PT][SQ_MAXN];	/* deliveries from A, and from C */
};

struct sq_proc {
	struct sq_shared *sh;
	int fd, q[SQ_NQ];
	void *map;
	size_t len;
	int proc;
};

struct sq_thread {
	struct sq_proc *p;
	int id;
	uint64_t rng;
	unsigned char buf[SQ_PAYLOAD];
};

static void sq_fail(struct sq_shared *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sq_fail(struct sq_shared *sh, const char *fmt, ...)
{
	va_list ap;

	if (!__atomic_exchange_n(&sh->failed, 1, __ATOMIC_ACQ_REL)) {
		va_start(ap, fmt);
		vsnprintf(sh->why, sizeof(sh->why), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&sh->drained, 1, __ATOMIC_RELEASE);
}

static unsigned char sq_byte(uint64_t seq, uint32_t j)
{
	return (unsigned char)(seq * 131 + (seq >> 40) * 17 + j * 7 + (j >> 8));
}

static uint32_t sq_size(uint64_t seq)
{
	return 1 + (seq * 2654435761U) % SQ_PAYLOAD;
}

static uint64_t sq_sum(const unsigned char *b, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint32_t j;

	for (j = 0; j < n; j++)
		h = (h ^ b[j]) * 0x100000001b3ULL;
	return h;
}

static void *sq_producer(void *arg)
{
	struct sq_thread *t = arg;
	struct sq_shared *sh = t->p->sh;
	int pt = t->p->proc * SQ_THREADS + t->id;
	uint32_t n;

	for (n = 0; n < SQ_MAXN && !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE); ) {
		uint64_t seq = (uint64_t)(pt + 1) << 40 | n;
		uint32_t size = sq_size(seq), j;
		struct mmk_msg_header h = { .sequence = seq, .qos = MMK_QOS_BEST_EFFORT };
		struct mmk_push p = {
			.flags = MMK_PUSH_STORE | MMK_PUSH_WAIT,
			.nr_queues = n % 4 == 3 ? 2 : 1,
			.queue_fds = { t->p->q[SQ_A], n % 4 == 3 ? t->p->q[SQ_B] : 0 },
			.timeout_ns = 20000000,
			.header = (uintptr_t)&h,
			.payload = (uintptr_t)t->buf,
			.payload_size = size,
		};
		int ret;

		for (j = 0; j < size; j++)
			t->buf[j] = sq_byte(seq, j);
		h.trace_id = sq_sum(t->buf, size);
		ret = mmk_ioctl(t->p->fd, MMK_IOC_PUSH, &p);
		if (ret == -ENOBUFS || ret == -ENOSPC) {
			if (ret == -ENOSPC)
				usleep(1000);
			continue;	/* nothing stored: the same number again */
		}
		if (ret) {
			sq_fail(sh, "producer %d: push of %u: %s", pt, n, strerror(-ret));
			break;
		}
		if (p.dropped || p.evicted) {
			sq_fail(sh, "producer %d: a Block queue dropped (%#x) or evicted (%u)", pt,
				p.dropped, p.evicted);
			break;
		}
		n++;
		__atomic_store_n(&sh->produced[pt], n, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Check a popped message and count its delivery from queue k (SQ_A or SQ_C). */
static bool sq_deliver(struct sq_thread *t, int k, const struct mmk_popped *e, uint32_t *last)
{
	struct sq_shared *sh = t->p->sh;
	const struct mmk_msg_header *h = mmk_at(t->p->map, e->offset);
	const unsigned char *b = mmk_payload(t->p->map, e->offset);
	uint64_t seq = h->sequence;
	int pt = (int)(seq >> 40) - 1;
	uint32_t n = seq & 0xffffffffff, j, size = sq_size(seq);
	uint8_t was;

	if (pt < 0 || pt >= SQ_PT || n >= SQ_MAXN) {
		sq_fail(sh, "queue %s: a message with sequence %#llx", sq_names[k],
			(unsigned long long)seq);
		return false;
	}
	if (e->payload_size != size || h->payload_size != size) {
		sq_fail(sh, "queue %s: message %d/%u: size %u (header %u), expected %u", sq_names[k],
			pt, n, e->payload_size, h->payload_size, size);
		return false;
	}
	for (j = 0; j < size; j++)
		if (b[j] != sq_byte(seq, j))
			break;
	if (j < size || sq_sum(b, size) != h->trace_id) {
		sq_fail(sh, "queue %s: message %d/%u torn at byte %u", sq_names[k], pt, n, j);
		return false;
	}
	if (k == SQ_C && n % 4 != 3) {
		sq_fail(sh, "queue C: message %d/%u was never pushed to B", pt, n);
		return false;
	}
	/*
	 * FIFO: from A, a consumer sees each producer's numbers increase.  (Two
	 * forwarder threads may reorder what reaches C.)
	 */
	if (k == SQ_A && last[pt] != UINT32_MAX && n <= last[pt]) {
		sq_fail(sh, "queue %s: message %d/%u after %u", sq_names[k], pt, n, last[pt]);
		return false;
	}
	last[pt] = n;
	was = __atomic_fetch_add(&sh->got[k == SQ_C][pt][n], 1, __ATOMIC_ACQ_REL);
	if (was) {
		sq_fail(sh, "queue %s: message %d/%u delivered twice", sq_names[k], pt, n);
		return false;
	}
	__atomic_fetch_add(&sh->popped, 1, __ATOMIC_RELAXED);
	return true;
}

/* Pop queue k until drained: one at a time or up to four, releasing each or in a batch. */
static void *sq_consumer(void *arg)
{
	struct sq_thread *t = arg;
	struct sq_shared *sh = t->p->sh;
	int k = t->id % 2 ? SQ_C : SQ_A, i;
	uint32_t last[SQ_PT];

	for (i = 0; i < SQ_PT; i++)
		last[i] = UINT32_MAX;
	while (!__atomic_load_n(&sh->drained, __ATOMIC_ACQUIRE)) {
		struct mmk_popped e[4];
		uint32_t count = 0, max = 1 + rnd(&t->rng, 4), c;
		int ret = mmk_pop(t->p->fd, t->p->q[k], MMK_POP_WAIT, 10000000, e, max, &count);

		if (ret == -EAGAIN)
			continue;
		if (ret) {
			sq_fail(sh, "consumer: pop of %s: %s", sq_names[k], strerror(-ret));
			break;
		}
		__atomic_fetch_add(&sh->waits, 1, __ATOMIC_RELAXED);
		for (c = 0; c < count; c++)
			if (!sq_deliver(t, k, &e[c], last))
				return NULL;
		if (rnd(&t->rng, 2)) {
			for (c = 0; c < count; c++) {
				ret = mmk_read_release(t->p->fd, e[c].token);
				if (ret) {
					sq_fail(sh, "consumer: release: %s", strerror(-ret));
					return NULL;
				}
			}
		} else {
			/* Release them and take the next one, in one call. */
			struct mmk_batch_entry ops[5];
			struct mmk_batch b = { .ops = (uintptr_t)ops, .count = count + 1 };

			memset(ops, 0, sizeof(ops));
			for (c = 0; c < count; c++) {
				ops[c].op = MMK_BATCH_READ_RELEASE;
				ops[c].token = e[c].token;
			}
			ops[count].op = MMK_BATCH_POP;
			ops[count].queue_fd = t->p->q[k];
			ret = mmk_ioctl(t->p->fd, MMK_IOC_BATCH, &b);
			if (ret || b.done < count) {
				sq_fail(sh, "consumer: batch: %s, %u done", strerror(-ret), b.done);
				return NULL;
			}
			__atomic_fetch_add(&sh->batches, 1, __ATOMIC_RELAXED);
			if (ops[count].result == 0) {
				struct mmk_popped one = {
					.token = ops[count].token, .offset = ops[count].offset,
					.payload_size = ops[count].payload_size,
				};

				if (!sq_deliver(t, k, &one, last))
					return NULL;
				ret = mmk_read_release(t->p->fd, one.token);
				if (ret) {
					sq_fail(sh, "consumer: release: %s", strerror(-ret));
					return NULL;
				}
			} else if (ops[count].result != -EAGAIN) {
				sq_fail(sh, "consumer: batch pop: %s", strerror(-ops[count].result));
				return NULL;
			}
		}
	}
	return NULL;
}

/* Pop B, push the same message on to C (zero copy), release. */
static void *sq_forwarder(void *arg)
{
	struct sq_thread *t = arg;
	struct sq_shared *sh = t->p->sh;

	while (!__atomic_load_n(&sh->drained, __ATOMIC_ACQUIRE)) {
		struct mmk_popped e;
		struct mmk_push p = { .nr_queues = 1, .queue_fds = { t->p->q[SQ_C] },
				      .flags = MMK_PUSH_WAIT, .timeout_ns = 10000000 };
		int ret = mmk_pop(t->p->fd, t->p->q[SQ_B], MMK_POP_WAIT, 10000000, &e, 1, NULL);

		if (ret == -EAGAIN)
			continue;
		if (ret) {
			sq_fail(sh, "forwarder: pop: %s", strerror(-ret));
			break;
		}
		p.token = e.token;
		do {
			ret = mmk_ioctl(t->p->fd, MMK_IOC_PUSH, &p);
		} while (ret == -ENOBUFS && !__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE));
		if (ret) {
			sq_fail(sh, "forwarder: push: %s", strerror(-ret));
			break;
		}
		ret = mmk_read_release(t->p->fd, e.token);
		if (ret) {
			sq_fail(sh, "forwarder: release: %s", strerror(-ret));
			break;
		}
		__atomic_fetch_add(&sh->forwarded, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* A process: its own session, mapping and queue descriptors; SQ_THREADS threads of one role. */
static int sq_process(struct sq_shared *sh, int proc, void *(*fn)(void *))
{
	struct sq_proc p = { .sh = sh, .proc = proc };
	struct sq_thread *t;
	pthread_t th[SQ_THREADS];
	int i;

	p.fd = mmk_attach(sh->pool, ST_TYPE);
	if (p.fd < 0) {
		sq_fail(sh, "attach: %s", strerror(-p.fd));
		return 1;
	}
	p.map = mmk_map(p.fd, &p.len);
	if (p.map == MAP_FAILED) {
		sq_fail(sh, "map: %s", strerror(errno));
		return 1;
	}
	for (i = 0; i < SQ_NQ; i++) {
		p.q[i] = mmk_queue_open_name(p.fd, sq_names[i]);
		if (p.q[i] < 0) {
			sq_fail(sh, "open %s: %s", sq_names[i], strerror(-p.q[i]));
			return 1;
		}
	}
	t = calloc(SQ_THREADS, sizeof(*t));
	if (!t)
		return 1;
	for (i = 0; i < SQ_THREADS; i++) {
		t[i].p = &p;
		t[i].id = i;
		t[i].rng = sh->seed ^ (0x9e3779b97f4a7c15ULL * (proc * SQ_THREADS + i + 1));
		if (pthread_create(&th[i], NULL, fn, &t[i]))
			return 1;
	}
	for (i = 0; i < SQ_THREADS; i++)
		pthread_join(th[i], NULL);
	return 0;
}

FIXTURE(squeue) {
	struct sq_shared *sh;
	int fd, q[SQ_NQ];
};

FIXTURE_SETUP(squeue)
{
	int i;

	self->sh = shared_zeroed(sizeof(*self->sh));
	ASSERT_NE(MAP_FAILED, self->sh);
	self->sh->seed = seed_from_env();
	snprintf(self->sh->pool, sizeof(self->sh->pool), "stress-q-%d", getpid());
	self->fd = mmk_create(self->sh->pool, SQ_PAYLOAD, SQ_SLOTS, 0600, ST_TYPE, 0);
	ASSERT_LE(0, self->fd);
	for (i = 0; i < SQ_NQ; i++) {
		self->q[i] = mmk_queue_create(self->fd, sq_names[i], MMK_QUEUE_BLOCK, 8, 0);
		ASSERT_LE(0, self->q[i]);
	}
}

FIXTURE_TEARDOWN(squeue)
{
	int i;

	for (i = 0; i < SQ_NQ; i++)
		close(self->q[i]);
	close(self->fd);
	munmap(self->sh, sizeof(*self->sh));
}

TEST_F_TIMEOUT(squeue, producers_forwarders_consumers, 540)
{
	struct sq_shared *sh = self->sh;
	int seconds = seconds_from_env(), i, k, pt, nproc = 0;
	uint64_t produced = 0, fanned = 0, expected;
	struct mmk_pool_info info;
	pid_t pids[SQ_PROD + SQ_CONS + 1];
	double t0 = now_sec(), t1;
	uint32_t n;

	TH_LOG("seed %" PRIu64 " (set MMK_SEED=%" PRIu64 " to repeat)", sh->seed, sh->seed);
	for (i = 0; i < SQ_PROD + SQ_CONS + 1; i++) {
		void *(*fn)(void *) = i < SQ_PROD ? sq_producer : i < SQ_PROD + SQ_CONS ? sq_consumer :
				      sq_forwarder;

		pids[i] = start_child();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			_exit(sq_process(sh, i < SQ_PROD ? i : i - SQ_PROD, fn));
		}
		nproc++;
	}
	while (now_sec() - t0 < seconds && !__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE))
		usleep(20000);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < SQ_PROD; i++) {
		EXPECT_EQ(0, wait_child(pids[i])) TH_LOG("producer %d", i);
	}

	/* Everything produced must come out: wait for the deliveries. */
	for (pt = 0; pt < SQ_PT; pt++) {
		produced += sh->produced[pt];
		fanned += sh->produced[pt] / 4;
	}
	expected = produced + fanned;
	t1 = now_sec();
	while (__atomic_load_n(&sh->popped, __ATOMIC_ACQUIRE) < expected &&
	       !__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE) && now_sec() - t1 < 60)
		usleep(20000);
	__atomic_store_n(&sh->drained, 1, __ATOMIC_RELEASE);
	for (i = SQ_PROD; i < nproc; i++) {
		EXPECT_EQ(0, wait_child(pids[i])) TH_LOG("process %d", i);
	}
	ASSERT_EQ(0, sh->failed) TH_LOG("%s", sh->why);

	/* Each message once from A; once from C if it was fanned out; nothing else. */
	for (pt = 0; pt < SQ_PT; pt++) {
		for (n = 0; n < sh->produced[pt]; n++) {
			ASSERT_EQ(1, sh->got[0][pt][n]) TH_LOG("message %d/%u from A", pt, n);
			ASSERT_EQ(n % 4 == 3, sh->got[1][pt][n]) TH_LOG("message %d/%u from C", pt, n);
		}
		for (; n < SQ_MAXN; n++) {
			ASSERT_EQ(0, sh->got[0][pt][n] + sh->got[1][pt][n])
				TH_LOG("message %d/%u was never produced", pt, n);
		}
	}
	EXPECT_EQ(expected, sh->popped);
	for (k = 0; k < SQ_NQ; k++) {
		struct mmk_queue_info qi;

		ASSERT_EQ(0, mmk_queue_info(self->q[k], &qi));
		EXPECT_EQ(0U, qi.items) TH_LOG("%s", sq_names[k]);
		EXPECT_EQ(qi.pushes, qi.pops) TH_LOG("%s", sq_names[k]);
		EXPECT_EQ(0U, qi.drops[MMK_DROP_NEWEST] + qi.drops[MMK_DROP_OLDEST] +
			      qi.drops[MMK_DROP_QOS] + qi.drops[MMK_DROP_DEADLINE]);
		EXPECT_GE(8U, qi.high_items);
	}
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((uint32_t)SQ_SLOTS, info.available);
	EXPECT_EQ(produced, info.stores);
	EXPECT_EQ(info.stores, info.frees);
	EXPECT_EQ(0U, info.read_guards + info.write_guards + info.poisoned);
	EXPECT_EQ(1U, info.sessions);
	EXPECT_LT(0U, produced);
	EXPECT_LT(0U, fanned);
	TH_LOG("%.1f s: %" PRIu64 " messages produced (%" PRIu64 " fanned out), %" PRIu64
	       " delivered, %" PRIu64 " forwarded, %" PRIu64 " batches; none torn, lost or twice",
	       now_sec() - t0, produced, fanned, (uint64_t)sh->popped, (uint64_t)sh->forwarded,
	       (uint64_t)sh->batches);
}

TEST_HARNESS_MAIN
