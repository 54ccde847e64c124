// SPDX-License-Identifier: GPL-2.0
/*
 * libmmk test suite: every rule of the mmk contract (tokens, errors and
 * their order, borrows), through the public API only, against one backend.
 *
 *   suite [kernel|heap|static]     (default: kernel)
 *
 * The same source runs on the build machine against the heap and static
 * backends (built with ASan and UBSan), and in the test guest against the
 * kernel backend.  Tests that need what only the kernel backend has (other
 * processes, sessions that die, the read-only mapping, threads) are
 * reported as skipped on the others.
 *
 * Output is TAP: "1..N", then "ok N name" or "not ok N name", with
 * diagnostics on "#" lines.  Exit status 0 if every test passed, else 1.
 *
 * Some tests build tokens by hand.  They rely on the token layout that
 * docs/LIBMMK.md documents for every backend: slot index in bits 0-19,
 * generation in bits 20-47, pool tag in bits 48-63.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/mmk.h>
#include <mmk/mmk.h>

/* ---- a tiny TAP runner ---------------------------------------------------------- */

enum backend_mask {
	B_KERNEL = 1 << 0,
	B_HEAP = 1 << 1,
	B_STATIC = 1 << 2,
	B_ALL = B_KERNEL | B_HEAP | B_STATIC,
};

#define MAX_MGRS 8

struct ctx {
	enum mmk_backend backend;
	const char *backend_name;
	struct mmk_manager *mgrs[MAX_MGRS];	/* closed after each test */
	int failed;
	char skip[128];
};

/* Say why a test failed, on a TAP diagnostic line. */
static void __attribute__((format(printf, 4, 5)))
fail_at(struct ctx *c, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("# %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	c->failed = 1;
}

#define FAIL(c, ...) fail_at(c, __FILE__, __LINE__, __VA_ARGS__)

/* Stop the test if @cond is false. */
#define CHECK(c, cond) do {						\
	if (!(cond)) {							\
		FAIL(c, "failed: %s", #cond);				\
		return;							\
	}								\
} while (0)

/* Stop the test unless @expr returns @want (both enum mmk_error). */
#define CHECK_ERR(c, want, expr) do {					\
	enum mmk_error want_ = (want), got_ = (expr);			\
	if (want_ != got_) {						\
		FAIL(c, "%s: %s, expected %s", #expr,			\
		     mmk_error_name(got_), mmk_error_name(want_));	\
		return;							\
	}								\
} while (0)

#define CHECK_OK(c, expr) CHECK_ERR(c, MMK_OK, expr)

#define SKIP(c, ...) do {						\
	snprintf((c)->skip, sizeof((c)->skip), __VA_ARGS__);		\
	return;								\
} while (0)

/* ---- managers ----------------------------------------------------------------- */

#define PAYLOAD		256
#define CAPACITY	8
#define TYPE_ID		0x6c69626d6d6b0001ULL

/* Static storages: one per manager a test may have open at once. */
static MMK_STATIC_STORAGE(st0, 64, 4096);
static MMK_STATIC_STORAGE(st1, 64, 4096);
static MMK_STATIC_STORAGE(st2, 64, 4096);
static struct mmk_static_storage *const storages[] = {
	MMK_STATIC(st0), MMK_STATIC(st1), MMK_STATIC(st2),
};

static unsigned int name_seq;

/* A unique pool name for the kernel backend. */
static void pool_name(char *buf, size_t len)
{
	snprintf(buf, len, "libmmk-suite-%d-%u", (int)getpid(), name_seq++);
}

static void track(struct ctx *c, struct mmk_manager *m)
{
	for (int i = 0; i < MAX_MGRS; i++) {
		if (!c->mgrs[i]) {
			c->mgrs[i] = m;
			return;
		}
	}
	abort();
}

/* Forget @m (the test closed it itself). */
static void untrack(struct ctx *c, struct mmk_manager *m)
{
	for (int i = 0; i < MAX_MGRS; i++)
		if (c->mgrs[i] == m)
			c->mgrs[i] = NULL;
}

/* Create a manager of the backend under test; tracked and closed after the test. */
static enum mmk_error make(struct ctx *c, const struct mmk_config *cfg, struct mmk_manager **m)
{
	enum mmk_error err = MMK_E_INVALID;

	*m = NULL;
	switch (c->backend) {
	case MMK_BACKEND_KERNEL:
		err = mmk_kernel_create(cfg, m);
		break;
	case MMK_BACKEND_HEAP:
		err = mmk_heap_create(cfg, m);
		break;
	case MMK_BACKEND_STATIC:
		/* The first storage not in use by an open manager. */
		for (size_t i = 0; i < sizeof(storages) / sizeof(storages[0]); i++) {
			err = mmk_static_create(storages[i], cfg, m);
			if (err == MMK_OK)
				break;
		}
		break;
	}
	if (err == MMK_OK)
		track(c, *m);
	return err;
}

static struct mmk_config config(uint32_t capacity, uint32_t payload)
{
	return (struct mmk_config){
		.payload_size = payload,
		.capacity = capacity,
		.payload_type = TYPE_ID,
		.memory_class = MMK_MEM_HOST,
		.mode = 0600,
	};
}

/* A default manager: CAPACITY slots of PAYLOAD bytes. */
static struct mmk_manager *pool(struct ctx *c)
{
	struct mmk_config cfg = config(CAPACITY, PAYLOAD);
	struct mmk_manager *m;
	enum mmk_error err = make(c, &cfg, &m);

	if (err != MMK_OK) {
		FAIL(c, "creating a %s manager: %s (errno %d)", c->backend_name,
		     mmk_error_name(err), errno);
		return NULL;
	}
	return m;
}

#define POOL(c, m) struct mmk_manager *m = pool(c); CHECK(c, m)

/* Store @len bytes of a pattern derived from @seed. */
static enum mmk_error store_pattern(struct mmk_manager *m, uint64_t seed, size_t len,
				    uint64_t *token)
{
	unsigned char buf[4096];
	struct mmk_header h = { .sequence = seed, .trace_id = seed * 3 };

	for (size_t i = 0; i < len && i < sizeof(buf); i++)
		buf[i] = (unsigned char)(seed * 31 + i);
	return mmk_store(m, &h, buf, len, token);
}

static int pattern_ok(const struct mmk_message *msg, uint64_t seed, size_t len)
{
	if (msg->header.sequence != seed || msg->header.trace_id != seed * 3 ||
	    msg->header.payload_size != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (msg->payload[i] != (unsigned char)(seed * 31 + i))
			return 0;
	return 1;
}

/* Token layout (docs/LIBMMK.md), for tests that forge tokens. */
static uint32_t tok_index(uint64_t t)
{
	return (uint32_t)(t & 0xfffff);
}

static uint32_t tok_gen(uint64_t t)
{
	return (uint32_t)(t >> 20) & 0xfffffff;
}

static uint64_t tok_tag(uint64_t t)
{
	return t >> 48;
}

static uint64_t tok_make(uint64_t tag, uint32_t gen, uint32_t idx)
{
	return tag << 48 | (uint64_t)(gen & 0xfffffff) << 20 | (idx & 0xfffff);
}

/*
 * Generation @n stores after the pool's first one, which a store into a
 * fresh slot reveals: @first is such a store's token (generation first + 1).
 * The heap and static managers start at 0, a kernel pool at random.
 */
static uint32_t gen_after(uint64_t first, uint32_t n)
{
	return (tok_gen(first) - 1 + n) & 0xfffffff;
}

/* Every guard-taking operation, by number, for tests that try them all. */
enum op { OP_READ, OP_PEEK, OP_READ_MUT, OP_NR };
static const char *const op_name[] = { "read", "peek_header", "read_mut" };

/* Take a guard of kind @op and release it at once if taken. */
static enum mmk_error try_op(struct mmk_manager *m, enum op op, uint64_t token)
{
	struct mmk_read_guard r;
	struct mmk_header_guard h;
	struct mmk_write_guard w;
	enum mmk_error err;

	switch (op) {
	case OP_READ:
		err = mmk_read(m, token, &r);
		if (err == MMK_OK)
			(void)mmk_read_release(&r);
		return err;
	case OP_PEEK:
		err = mmk_peek_header(m, token, &h);
		if (err == MMK_OK)
			(void)mmk_header_release(&h);
		return err;
	default:
		err = mmk_read_mut(m, token, &w);
		if (err == MMK_OK)
			(void)mmk_write_release(&w);
		return err;
	}
}

#define CHECK_ALL_OPS(c, m, token, want) do {					\
	for (int op_ = 0; op_ < OP_NR; op_++) {					\
		enum mmk_error got_ = try_op(m, (enum op)op_, token);		\
		if (got_ != (want)) {						\
			FAIL(c, "%s: %s, expected %s", op_name[op_],		\
			     mmk_error_name(got_), mmk_error_name(want));	\
			return;							\
		}								\
	}									\
} while (0)

/* ---- §2: messages ----------------------------------------------------------------- */

static void t_store_read_roundtrip(struct ctx *c)
{
	POOL(c, m);
	struct mmk_header h = {
		.trace_id = 0x1122334455667788ULL, .sequence = 42, .created_tick = 7,
		.deadline_ns = 1000, .flags = MMK_MSG_HAS_DEADLINE | MMK_MSG_FIRST_IN_BATCH,
		.qos = MMK_QOS_LATENCY_CRITICAL,
		.payload_size = 9999, .memory_class = 77, .memory_device = 5,
	};
	char payload[100];
	struct mmk_read_guard g;
	uint64_t t;

	memset(payload, 'x', sizeof(payload));
	CHECK_OK(c, mmk_store(m, &h, payload, sizeof(payload), &t));
	CHECK(c, t != MMK_TOKEN_INVALID);
	CHECK_OK(c, mmk_read(m, t, &g));
	CHECK(c, g.msg && g.owner == m && g.token == t);
	CHECK(c, g.msg->header.trace_id == h.trace_id);
	CHECK(c, g.msg->header.sequence == 42 && g.msg->header.created_tick == 7);
	CHECK(c, g.msg->header.deadline_ns == 1000);
	CHECK(c, g.msg->header.flags == (MMK_MSG_HAS_DEADLINE | MMK_MSG_FIRST_IN_BATCH));
	CHECK(c, g.msg->header.qos == MMK_QOS_LATENCY_CRITICAL);
	/* Set by the store, whatever the caller put there. */
	CHECK(c, g.msg->header.payload_size == sizeof(payload));
	CHECK(c, g.msg->header.memory_class == MMK_MEM_HOST);
	CHECK(c, g.msg->header.memory_device == 0);
	CHECK(c, memcmp(g.msg->payload, payload, sizeof(payload)) == 0);
	CHECK(c, (uintptr_t)g.msg->payload % MMK_PAYLOAD_ALIGN == 0);
	CHECK_OK(c, mmk_read_release(&g));
	CHECK(c, !g.msg && !g.owner);
	CHECK_OK(c, mmk_free(m, t));
}

static void t_store_defaults(struct ctx *c)
{
	POOL(c, m);
	struct mmk_header_guard g;
	uint64_t t;

	/* NULL header: all zero, qos becomes best effort. */
	CHECK_OK(c, mmk_store(m, NULL, "ab", 2, &t));
	CHECK_OK(c, mmk_peek_header(m, t, &g));
	CHECK(c, g.msg->header.qos == MMK_QOS_BEST_EFFORT);
	CHECK(c, g.msg->header.payload_size == 2 && g.msg->header.flags == 0);
	CHECK(c, g.msg->header.sequence == 0 && g.msg->header.deadline_ns == 0);
	CHECK_OK(c, mmk_header_release(&g));
	CHECK_OK(c, mmk_free(m, t));
	/* Empty payload, NULL pointer. */
	CHECK_OK(c, mmk_store(m, NULL, NULL, 0, &t));
	CHECK_OK(c, mmk_peek_header(m, t, &g));
	CHECK(c, g.msg->header.payload_size == 0);
	CHECK_OK(c, mmk_header_release(&g));
	/* A full-size payload. */
	CHECK_OK(c, store_pattern(m, 5, PAYLOAD, &t));
}

static void t_header_validation(struct ctx *c)
{
	static const struct mmk_header bad[] = {
		{ .flags = 0x10 },
		{ .flags = 0x80000000U },
		{ .qos = MMK_QOS_LATENCY_CRITICAL + 1 },
		{ .qos = 255 },
		{ .deadline_ns = 5 },
		{ .reserved0 = 1 },
		{ .reserved1 = { 1, 0 } },
		{ .reserved1 = { 0, 1 } },
	};
	POOL(c, m);
	uint64_t t = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_ERR(c, MMK_E_INVALID, mmk_store(m, &bad[i], "x", 1, &t));
		CHECK(c, t == MMK_TOKEN_INVALID);
	}
	CHECK(c, mmk_available(m) == CAPACITY);
	for (unsigned int q = 0; q <= MMK_QOS_LATENCY_CRITICAL; q++) {
		struct mmk_header h = { .qos = (uint8_t)q, .flags = MMK_MSG_FLAGS_ALL,
					.deadline_ns = 9 };

		CHECK_OK(c, mmk_store(m, &h, "x", 1, &t));
		CHECK_OK(c, mmk_free(m, t));
	}
}

static void t_payload_type_and_class(struct ctx *c)
{
	struct mmk_config cfg = config(4, 64);
	struct mmk_manager *m;
	unsigned int dev = 99;
	uint64_t t;
	struct mmk_read_guard g;

	cfg.memory_class = MMK_MEM_SHARED;
	cfg.payload_type = 0xfeedULL;
	CHECK_OK(c, make(c, &cfg, &m));
	CHECK(c, mmk_memory_class(m, &dev) == MMK_MEM_SHARED && dev == 0);
	CHECK(c, mmk_payload_type(m) == 0xfeedULL);
	CHECK(c, mmk_payload_max(m) == 64);
	CHECK(c, mmk_capacity(m) == 4);
	CHECK(c, mmk_available(m) == 4);
	CHECK_OK(c, mmk_store(m, NULL, "y", 1, &t));
	CHECK_OK(c, mmk_read(m, t, &g));
	CHECK(c, g.msg->header.memory_class == MMK_MEM_SHARED);
	CHECK_OK(c, mmk_read_release(&g));

	/* Device memory: only heap and static managers can claim it. */
	cfg.memory_class = MMK_MEM_DEVICE;
	cfg.memory_device = 3;
	if (c->backend == MMK_BACKEND_KERNEL) {
		CHECK_ERR(c, MMK_E_INVALID, make(c, &cfg, &m));
		return;
	}
	CHECK_OK(c, make(c, &cfg, &m));
	CHECK(c, mmk_memory_class(m, &dev) == MMK_MEM_DEVICE && dev == 3);
	CHECK_OK(c, mmk_store(m, NULL, "y", 1, &t));
	CHECK_OK(c, mmk_read(m, t, &g));
	CHECK(c, g.msg->header.memory_class == MMK_MEM_DEVICE);
	CHECK(c, g.msg->header.memory_device == 3);
	CHECK_OK(c, mmk_read_release(&g));
}

static void t_config_validation(struct ctx *c)
{
	struct mmk_config cfg;
	struct mmk_manager *m = (struct mmk_manager *)1;

	cfg = config(0, 64);
	CHECK_ERR(c, MMK_E_INVALID, make(c, &cfg, &m));
	CHECK(c, m == NULL);
	cfg = config(4, 0);
	CHECK_ERR(c, MMK_E_INVALID, make(c, &cfg, &m));
	cfg = config(MMK_CAPACITY_MAX + 1, 64);
	CHECK_ERR(c, MMK_E_INVALID, make(c, &cfg, &m));
	cfg = config(4, 64);
	cfg.flags = 0x100;
	CHECK_ERR(c, MMK_E_INVALID, make(c, &cfg, &m));
	cfg = config(4, 64);
	cfg.memory_class = 4;
	CHECK_ERR(c, MMK_E_INVALID, make(c, &cfg, &m));
	cfg = config(4, 64);
	cfg.memory_device = 1;		/* without MMK_MEM_DEVICE */
	CHECK_ERR(c, MMK_E_INVALID, make(c, &cfg, &m));
	CHECK_ERR(c, MMK_E_INVALID, mmk_heap_create(NULL, &m));
	CHECK_ERR(c, MMK_E_INVALID, mmk_kernel_create(NULL, &m));
	CHECK_ERR(c, MMK_E_INVALID, mmk_heap_create(&cfg, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_kernel_create(&cfg, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_static_create(NULL, &cfg, &m));
}

/* ---- §3: tokens ----------------------------------------------------------------- */

static void t_token_invalid(struct ctx *c)
{
	POOL(c, m);
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 1, 10, &t));
	CHECK_ALL_OPS(c, m, MMK_TOKEN_INVALID, MMK_E_BAD_TOKEN);
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, MMK_TOKEN_INVALID));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, 0));
	CHECK_ALL_OPS(c, m, 0, MMK_E_BAD_TOKEN);
	CHECK(c, mmk_available(m) == CAPACITY - 1);
}

static void t_token_foreign_pool(struct ctx *c)
{
	struct mmk_manager *a = pool(c), *b = pool(c);
	uint64_t ta, tb;

	CHECK(c, a && b);
	CHECK_OK(c, store_pattern(a, 1, 10, &ta));
	CHECK_OK(c, store_pattern(b, 2, 10, &tb));
	/* Same slot (and, but for a kernel pool's random start, generation). */
	CHECK(c, tok_index(ta) == tok_index(tb));
	CHECK(c, ta != tb);
	CHECK_ALL_OPS(c, a, tb, MMK_E_BAD_TOKEN);
	CHECK_ALL_OPS(c, b, ta, MMK_E_BAD_TOKEN);
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(a, tb));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(b, ta));
	CHECK_OK(c, mmk_free(a, ta));
	CHECK_OK(c, mmk_free(b, tb));
}

static void t_token_index_out_of_range(struct ctx *c)
{
	POOL(c, m);
	uint64_t t, bad;

	CHECK_OK(c, store_pattern(m, 1, 10, &t));
	for (uint32_t idx = CAPACITY; idx < CAPACITY + 3; idx++) {
		bad = tok_make(tok_tag(t), tok_gen(t), idx);
		CHECK_ALL_OPS(c, m, bad, MMK_E_BAD_TOKEN);
		CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, bad));
	}
	bad = tok_make(tok_tag(t), tok_gen(t), 0xfffff);
	CHECK_ALL_OPS(c, m, bad, MMK_E_BAD_TOKEN);
	CHECK_OK(c, mmk_free(m, t));
}

static void t_token_garbage(struct ctx *c)
{
	POOL(c, m);
	uint64_t t, x = 0x9e3779b97f4a7c15ULL;

	CHECK_OK(c, store_pattern(m, 1, 10, &t));
	/* Random tokens with a foreign tag: all refused, nothing changes. */
	for (int i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (tok_tag(x) == tok_tag(t))
			continue;
		CHECK_ERR(c, MMK_E_BAD_TOKEN, try_op(m, (enum op)(i % OP_NR), x));
		CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, x));
	}
	CHECK(c, mmk_available(m) == CAPACITY - 1);
	CHECK_OK(c, mmk_free(m, t));
}

static void t_token_freed_not_allocated(struct ctx *c)
{
	POOL(c, m);
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 1, 10, &t));
	CHECK_OK(c, mmk_free(m, t));
	/* Slot empty, generation unchanged. */
	CHECK_ALL_OPS(c, m, t, MMK_E_NOT_ALLOCATED);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t));
}

static void t_token_stale_reused(struct ctx *c)
{
	POOL(c, m);
	uint64_t a, b;
	struct mmk_read_guard g;

	CHECK_OK(c, store_pattern(m, 1, 10, &a));
	CHECK_OK(c, mmk_free(m, a));
	CHECK_OK(c, store_pattern(m, 2, 20, &b));
	/* The last freed slot is reused first: same slot, next generation. */
	CHECK(c, tok_index(a) == tok_index(b) && tok_gen(b) == tok_gen(a) + 1);
	CHECK_ALL_OPS(c, m, a, MMK_E_BAD_TOKEN);
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, a));
	CHECK_OK(c, mmk_read(m, b, &g));
	CHECK(c, pattern_ok(g.msg, 2, 20));
	CHECK_OK(c, mmk_read_release(&g));
	/* Empty again, and a's generation is not the slot's: still BAD_TOKEN. */
	CHECK_OK(c, mmk_free(m, b));
	CHECK_ALL_OPS(c, m, a, MMK_E_BAD_TOKEN);
	CHECK_ALL_OPS(c, m, b, MMK_E_NOT_ALLOCATED);
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, a));
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, b));
}

static void t_token_future_generation(struct ctx *c)
{
	POOL(c, m);
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 1, 10, &t));
	/* A generation the slot has not reached: allocated and g != G. */
	CHECK_ALL_OPS(c, m, tok_make(tok_tag(t), tok_gen(t) + 1, tok_index(t)), MMK_E_BAD_TOKEN);
	CHECK_OK(c, mmk_free(m, t));
	/* Empty and g != G. */
	CHECK_ALL_OPS(c, m, tok_make(tok_tag(t), tok_gen(t) + 1, tok_index(t)), MMK_E_BAD_TOKEN);
	CHECK_ERR(c, MMK_E_BAD_TOKEN,
		  mmk_free(m, tok_make(tok_tag(t), tok_gen(t) + 1, tok_index(t))));
}

static void t_token_never_used_slot(struct ctx *c)
{
	POOL(c, m);
	uint64_t t, never;

	CHECK_OK(c, store_pattern(m, 1, 10, &t));
	CHECK(c, tok_index(t) == 0);
	/* Slot 3 is empty at the pool's first generation. */
	never = tok_make(tok_tag(t), gen_after(t, 0), 3);
	CHECK_ALL_OPS(c, m, never, MMK_E_NOT_ALLOCATED);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, never));
	CHECK_ALL_OPS(c, m, tok_make(tok_tag(t), gen_after(t, 1), 3), MMK_E_BAD_TOKEN);
}

static void t_generation_counts_stores(struct ctx *c)
{
	struct mmk_config cfg = config(1, 16);
	struct mmk_manager *m;
	uint64_t t, first = MMK_TOKEN_INVALID, prev = MMK_TOKEN_INVALID;

	CHECK_OK(c, make(c, &cfg, &m));
	for (uint32_t i = 1; i <= 300; i++) {
		CHECK_OK(c, store_pattern(m, i, 16, &t));
		if (i == 1)
			first = t;
		CHECK(c, tok_index(t) == 0 && tok_gen(t) == gen_after(first, i));
		CHECK(c, t != prev);
		if (prev != MMK_TOKEN_INVALID)
			CHECK_ALL_OPS(c, m, prev, MMK_E_BAD_TOKEN);
		CHECK_OK(c, mmk_free(m, t));
		prev = t;
	}
}

static void t_slot_order(struct ctx *c)
{
	POOL(c, m);
	uint64_t t[CAPACITY], u;

	/* Slot 0 first, then in order; a freed slot is reused first (a stack). */
	for (uint32_t i = 0; i < CAPACITY; i++) {
		CHECK_OK(c, store_pattern(m, i, 8, &t[i]));
		CHECK(c, tok_index(t[i]) == i);
	}
	CHECK_OK(c, mmk_free(m, t[2]));
	CHECK_OK(c, mmk_free(m, t[5]));
	CHECK_OK(c, store_pattern(m, 9, 8, &u));
	CHECK(c, tok_index(u) == 5);
	CHECK_OK(c, store_pattern(m, 9, 8, &u));
	CHECK(c, tok_index(u) == 2);
}

/* ---- §4: errors and their order -------------------------------------------------- */

static void t_error_names(struct ctx *c)
{
	static const enum mmk_error all[] = {
		MMK_OK, MMK_E_NO_FREE_SLOTS, MMK_E_BAD_TOKEN, MMK_E_NOT_ALLOCATED,
		MMK_E_ALREADY_BORROWED, MMK_E_BORROW_ACTIVE, MMK_E_QUEUE_OWNED,
		MMK_E_POISONED, MMK_E_TOO_LARGE, MMK_E_INVALID, MMK_E_TYPE_MISMATCH,
		MMK_E_LIMIT, MMK_E_SYSTEM, MMK_E_QUEUE_FULL, MMK_E_QUEUE_EMPTY,
	};
	size_t n = sizeof(all) / sizeof(all[0]);

	CHECK(c, MMK_OK == 0);
	for (size_t i = 0; i < n; i++) {
		const char *s = mmk_strerror(all[i]), *name = mmk_error_name(all[i]);

		CHECK(c, s && *s && strcmp(s, "unknown error") != 0);
		CHECK(c, name && strncmp(name, "MMK_", 4) == 0);
		for (size_t j = 0; j < i; j++) {
			CHECK(c, all[i] != all[j]);
			CHECK(c, strcmp(s, mmk_strerror(all[j])) != 0);
			CHECK(c, strcmp(name, mmk_error_name(all[j])) != 0);
		}
	}
	CHECK(c, strcmp(mmk_error_name(MMK_E_QUEUE_OWNED), "MMK_E_QUEUE_OWNED") == 0);
	/* The values are ABI: the queue errors were appended. */
	CHECK(c, MMK_E_SYSTEM == 12 && MMK_E_QUEUE_FULL == 13 && MMK_E_QUEUE_EMPTY == 14);
	CHECK(c, strcmp(mmk_strerror((enum mmk_error)100), "unknown error") == 0);
	CHECK(c, strcmp(mmk_strerror((enum mmk_error)-1), "unknown error") == 0);
	CHECK(c, strcmp(mmk_error_name((enum mmk_error)100), "MMK_E_UNKNOWN") == 0);
	CHECK(c, mmk_version() && mmk_version()[0] == '0' + MMK_VERSION_MAJOR);
}

static void t_null_arguments(struct ctx *c)
{
	POOL(c, m);
	struct mmk_read_guard r = { 0 };
	struct mmk_header_guard h = { 0 };
	struct mmk_write_guard w = { 0 };
	uint64_t t;

	CHECK_ERR(c, MMK_E_INVALID, mmk_store(NULL, NULL, "x", 1, &t));
	CHECK(c, t == MMK_TOKEN_INVALID);
	CHECK_ERR(c, MMK_E_INVALID, mmk_store(m, NULL, "x", 1, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_store(m, NULL, NULL, 1, &t));
	CHECK_OK(c, store_pattern(m, 1, 1, &t));
	CHECK_ERR(c, MMK_E_INVALID, mmk_read(NULL, t, &r));
	CHECK_ERR(c, MMK_E_INVALID, mmk_read(m, t, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_peek_header(NULL, t, &h));
	CHECK_ERR(c, MMK_E_INVALID, mmk_peek_header(m, t, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_read_mut(NULL, t, &w));
	CHECK_ERR(c, MMK_E_INVALID, mmk_read_mut(m, t, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_free(NULL, t));
	CHECK_ERR(c, MMK_E_INVALID, mmk_read_release(NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_header_release(NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(NULL));
	/* Never-taken guards. */
	CHECK_ERR(c, MMK_E_INVALID, mmk_read_release(&r));
	CHECK_ERR(c, MMK_E_INVALID, mmk_header_release(&h));
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	mmk_close(NULL);
	CHECK_OK(c, mmk_free(m, t));
}

static void t_store_order(struct ctx *c)
{
	struct mmk_config cfg = config(2, 32);
	struct mmk_header bad = { .flags = 0x100 }, good = { 0 };
	unsigned char big[64] = { 0 };
	struct mmk_manager *m;
	uint64_t t;

	CHECK_OK(c, make(c, &cfg, &m));
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_store(m, &good, big, 33, &t));
	CHECK(c, t == MMK_TOKEN_INVALID);
#if SIZE_MAX > UINT32_MAX
	/* A size whose low 32 bits would fit: only where size_t has more. */
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_store(m, &good, big, (size_t)UINT32_MAX + 2, &t));
#endif
	/* TOO_LARGE before INVALID header. */
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_store(m, &bad, big, 33, &t));
	CHECK_ERR(c, MMK_E_INVALID, mmk_store(m, &bad, big, 32, &t));
	CHECK_OK(c, mmk_store(m, &good, big, 32, &t));
	CHECK_OK(c, mmk_store(m, &good, big, 0, &t));
	CHECK(c, mmk_available(m) == 0);
	/* Full: still TOO_LARGE and INVALID first. */
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_store(m, &good, big, 33, &t));
	CHECK_ERR(c, MMK_E_INVALID, mmk_store(m, &bad, big, 1, &t));
	CHECK_ERR(c, MMK_E_NO_FREE_SLOTS, mmk_store(m, &good, big, 1, &t));
	CHECK(c, t == MMK_TOKEN_INVALID);
}

static void t_pool_full_and_available(struct ctx *c)
{
	POOL(c, m);
	uint64_t t[CAPACITY], x;

	CHECK(c, mmk_capacity(m) == CAPACITY);
	for (uint32_t i = 0; i < CAPACITY; i++) {
		CHECK(c, mmk_available(m) == CAPACITY - i);
		CHECK_OK(c, store_pattern(m, i, 4, &t[i]));
	}
	CHECK(c, mmk_available(m) == 0);
	CHECK_ERR(c, MMK_E_NO_FREE_SLOTS, store_pattern(m, 99, 4, &x));
	CHECK_ERR(c, MMK_E_NO_FREE_SLOTS, store_pattern(m, 99, 4, &x));
	CHECK_OK(c, mmk_free(m, t[3]));
	CHECK(c, mmk_available(m) == 1);
	CHECK_OK(c, store_pattern(m, 100, 4, &x));
	CHECK(c, mmk_available(m) == 0 && mmk_capacity(m) == CAPACITY);
	for (uint32_t i = 0; i < CAPACITY; i++) {
		if (i != 3)
			CHECK_OK(c, mmk_free(m, t[i]));
	}
	CHECK_OK(c, mmk_free(m, x));
	CHECK(c, mmk_available(m) == CAPACITY);
}

static void t_guard_order(struct ctx *c)
{
	POOL(c, m);
	struct mmk_write_guard w;
	uint64_t a, b, stale;

	CHECK_OK(c, store_pattern(m, 1, 8, &a));
	CHECK_OK(c, mmk_free(m, a));
	CHECK_OK(c, store_pattern(m, 2, 8, &b));	/* same slot as a */
	CHECK_OK(c, mmk_read_mut(m, b, &w));
	/* The slot is borrowed, but a stale token is BAD_TOKEN first. */
	CHECK_ALL_OPS(c, m, a, MMK_E_BAD_TOKEN);
	CHECK_ALL_OPS(c, m, b, MMK_E_ALREADY_BORROWED);
	stale = tok_make(tok_tag(b), tok_gen(b) + 5, tok_index(b));
	CHECK_ALL_OPS(c, m, stale, MMK_E_BAD_TOKEN);
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_free(m, b));
	/* Freed beats everything but BAD_TOKEN. */
	CHECK_ALL_OPS(c, m, b, MMK_E_NOT_ALLOCATED);
}

static void t_free_order(struct ctx *c)
{
	POOL(c, m);
	struct mmk_read_guard r;
	struct mmk_header_guard h;
	struct mmk_write_guard w;
	uint64_t a, b;

	CHECK_OK(c, store_pattern(m, 1, 8, &a));
	CHECK_OK(c, mmk_free(m, a));
	CHECK_OK(c, store_pattern(m, 2, 8, &b));
	CHECK_OK(c, mmk_read(m, b, &r));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, a));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, b));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_peek_header(m, b, &h));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, b));
	CHECK_OK(c, mmk_header_release(&h));
	CHECK_OK(c, mmk_read_mut(m, b, &w));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, b));
	CHECK(c, mmk_available(m) == CAPACITY - 1);
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_free(m, b));
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, b));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, a));
	CHECK(c, mmk_available(m) == CAPACITY);
}

/* ---- §5: borrows ----------------------------------------------------------------- */

static void t_shared_guards(struct ctx *c)
{
	POOL(c, m);
	struct mmk_read_guard r[5];
	struct mmk_header_guard h[5];
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 3, 100, &t));
	for (int i = 0; i < 5; i++) {
		CHECK_OK(c, mmk_read(m, t, &r[i]));
		CHECK_OK(c, mmk_peek_header(m, t, &h[i]));
	}
	for (int i = 0; i < 5; i++) {
		CHECK(c, pattern_ok(r[i].msg, 3, 100));
		CHECK(c, h[i].msg->header.sequence == 3);
		/* In place: every guard sees the same message. */
		CHECK(c, r[i].msg == r[0].msg && h[i].msg == r[0].msg);
	}
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, try_op(m, OP_READ_MUT, t));
	for (int i = 0; i < 5; i++) {
		CHECK_OK(c, mmk_read_release(&r[i]));
		CHECK_ERR(c, MMK_E_ALREADY_BORROWED, try_op(m, OP_READ_MUT, t));
		CHECK_OK(c, mmk_header_release(&h[i]));
	}
	CHECK_OK(c, try_op(m, OP_READ_MUT, t));
	CHECK_OK(c, mmk_free(m, t));
}

static void t_write_exclusive(struct ctx *c)
{
	POOL(c, m);
	struct mmk_read_guard r;
	struct mmk_header_guard h;
	struct mmk_write_guard w, w2;
	uint64_t t, u;

	CHECK_OK(c, store_pattern(m, 3, 10, &t));
	CHECK_OK(c, store_pattern(m, 4, 10, &u));
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_mut(m, t, &w));
	CHECK(c, !w.msg && !w.owner);
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_peek_header(m, t, &h));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_mut(m, t, &w));
	CHECK_OK(c, mmk_header_release(&h));

	CHECK_OK(c, mmk_read_mut(m, t, &w));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read(m, t, &r));
	CHECK(c, !r.msg && !r.owner);
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_peek_header(m, t, &h));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_mut(m, t, &w2));
	/* Other messages are not affected. */
	CHECK_OK(c, mmk_read_mut(m, u, &w2));
	CHECK_OK(c, mmk_write_release(&w2));
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, pattern_ok(r.msg, 3, 10));
	CHECK_OK(c, mmk_read_release(&r));
}

static void t_write_changes_visible(struct ctx *c)
{
	POOL(c, m);
	struct mmk_write_guard w;
	struct mmk_read_guard r;
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 3, 10, &t));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	CHECK(c, w.msg && w.owner == m && w.token == t);
	CHECK(c, pattern_ok(w.msg, 3, 10));
	CHECK(c, (uintptr_t)w.msg->payload % MMK_PAYLOAD_ALIGN == 0);
	/* Grow the payload to the slot size and change header fields. */
	memset(w.msg->payload, 0xab, PAYLOAD);
	w.msg->header.payload_size = PAYLOAD;
	w.msg->header.sequence = 77;
	w.msg->header.qos = 0;
	w.msg->header.memory_class = 9;		/* set by mmk at release */
	w.msg->header.flags = MMK_MSG_LAST_IN_BATCH;
	CHECK_OK(c, mmk_write_release(&w));
	CHECK(c, !w.msg && !w.owner);

	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, r.msg->header.payload_size == PAYLOAD);
	CHECK(c, r.msg->header.sequence == 77);
	CHECK(c, r.msg->header.qos == MMK_QOS_BEST_EFFORT);
	CHECK(c, r.msg->header.memory_class == MMK_MEM_HOST);
	CHECK(c, r.msg->header.flags == MMK_MSG_LAST_IN_BATCH);
	for (int i = 0; i < PAYLOAD; i++)
		CHECK(c, r.msg->payload[i] == 0xab);
	CHECK_OK(c, mmk_read_release(&r));

	/* Shrink it. */
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	CHECK(c, w.msg->header.payload_size == PAYLOAD);
	w.msg->header.payload_size = 1;
	w.msg->payload[0] = 0x5a;
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, r.msg->header.payload_size == 1 && r.msg->payload[0] == 0x5a);
	CHECK_OK(c, mmk_read_release(&r));

	/* Releasing without changing anything keeps the message. */
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, r.msg->header.payload_size == 1 && r.msg->payload[0] == 0x5a);
	CHECK(c, r.msg->header.sequence == 77);
	CHECK_OK(c, mmk_read_release(&r));
}

static void t_write_release_checks(struct ctx *c)
{
	POOL(c, m);
	struct mmk_write_guard w;
	struct mmk_read_guard r;
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 3, 10, &t));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	w.msg->header.payload_size = PAYLOAD + 1;
	w.msg->header.flags = 0x40;		/* also bad: TOO_LARGE comes first */
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_write_release(&w));
	CHECK(c, w.msg && w.owner == m);	/* still held */
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read(m, t, &r));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	w.msg->header.payload_size = 10;
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	CHECK(c, w.owner == m);
	w.msg->header.flags = 0;
	w.msg->header.reserved1[1] = 1;
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	w.msg->header.reserved1[1] = 0;
	w.msg->header.qos = 4;
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	w.msg->header.qos = MMK_QOS_BACKGROUND;
	w.msg->header.deadline_ns = 5;		/* without MMK_MSG_HAS_DEADLINE */
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	w.msg->header.flags = MMK_MSG_HAS_DEADLINE;
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, r.msg->header.qos == MMK_QOS_BACKGROUND && r.msg->header.deadline_ns == 5);
	CHECK(c, pattern_ok(r.msg, 3, 10));
	CHECK_OK(c, mmk_read_release(&r));
}

static void t_double_release(struct ctx *c)
{
	POOL(c, m);
	struct mmk_read_guard r, rcopy;
	struct mmk_header_guard h;
	struct mmk_write_guard w, wcopy;
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 3, 10, &t));
	CHECK_OK(c, mmk_read(m, t, &r));
	rcopy = r;
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_ERR(c, MMK_E_INVALID, mmk_read_release(&r));
	/* A copy of a released guard names no guard of this manager. */
	CHECK_ERR(c, MMK_E_INVALID, mmk_read_release(&rcopy));
	CHECK_OK(c, mmk_peek_header(m, t, &h));
	CHECK_OK(c, mmk_header_release(&h));
	CHECK_ERR(c, MMK_E_INVALID, mmk_header_release(&h));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	wcopy = w;
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&wcopy));
	/* Nothing is held any more. */
	CHECK_OK(c, mmk_free(m, t));
}

static void t_scoped_guards(struct ctx *c)
{
	POOL(c, m);
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 3, 10, &t));
	{
		MMK_SCOPED_READ(r);
		MMK_SCOPED_HEADER(h);

		CHECK_OK(c, mmk_read(m, t, &r));
		CHECK_OK(c, mmk_peek_header(m, t, &h));
		CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	}
	{
		MMK_SCOPED_WRITE(w);

		CHECK_OK(c, mmk_read_mut(m, t, &w));
		w.msg->header.sequence = 1234;
		CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	}
	{
		MMK_SCOPED_READ(r);

		CHECK_OK(c, mmk_read(m, t, &r));
		CHECK(c, r.msg->header.sequence == 1234);
		/* Released early: the end of the scope does nothing more. */
		CHECK_OK(c, mmk_read_release(&r));
	}
	{
		MMK_SCOPED_READ(never_taken);

		CHECK(c, never_taken.owner == NULL);
	}
	CHECK_OK(c, mmk_free(m, t));
	{
		struct mmk_config cfg = config(2, 8);
		MMK_SCOPED_MANAGER(sm);

		if (c->backend == MMK_BACKEND_KERNEL)
			CHECK_OK(c, mmk_kernel_create(&cfg, &sm));
		else
			CHECK_OK(c, mmk_heap_create(&cfg, &sm));
		CHECK_OK(c, mmk_store(sm, NULL, "x", 1, &t));
	}
}

static void t_wait_variants(struct ctx *c)
{
	POOL(c, m);
	struct mmk_read_guard r;
	struct mmk_header_guard h;
	struct mmk_write_guard w, w2;
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 3, 10, &t));
	/* Nothing in the way: like the non-waiting calls. */
	CHECK_OK(c, mmk_read_wait(m, t, 1000000, &r));
	CHECK_OK(c, mmk_peek_header_wait(m, t, 1000000, &h));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_header_release(&h));
	CHECK_OK(c, mmk_read_mut_wait(m, t, 1000000, &w));
	/* Held by this very manager: the wait ends with ALREADY_BORROWED. */
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_wait(m, t, 1000000, &r));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_peek_header_wait(m, t, 1000000, &h));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_mut_wait(m, t, 1000000, &w2));
	CHECK_OK(c, mmk_write_release(&w));
	/* Other errors come back at once, even with no time limit. */
	CHECK_OK(c, mmk_free(m, t));
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_read_wait(m, t, 0, &r));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_read_mut_wait(m, MMK_TOKEN_INVALID, 0, &w));
}

/* Guard limits hold for the kernel only with the module's default values. */
static int kernel_limits_default(void)
{
	static const char *const files[] = {
		"/sys/module/mmk/parameters/max_guards_per_session",
		"/sys/module/mmk/parameters/max_readers_per_slot",
	};

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		unsigned int v = 0;
		int n;

		if (!f)
			return 0;
		n = fscanf(f, "%u", &v);
		fclose(f);
		if (n != 1 || v != (i ? MMK_READERS_MAX : MMK_GUARDS_MAX))
			return 0;
	}
	return 1;
}

static void t_guard_limits(struct ctx *c)
{
	static struct mmk_read_guard g[MMK_GUARDS_MAX];
	static struct mmk_header_guard hg[MMK_GUARDS_MAX];
	struct mmk_config cfg = config(4, 16);
	struct mmk_write_guard w;
	struct mmk_read_guard r;
	struct mmk_manager *m;
	uint64_t t[4];
	int n = 0, nh = 0;

	if (c->backend == MMK_BACKEND_KERNEL && !kernel_limits_default())
		SKIP(c, "module guard limits are not the defaults");
	CHECK_OK(c, make(c, &cfg, &m));
	for (int i = 0; i < 4; i++)
		CHECK_OK(c, store_pattern(m, (uint64_t)i, 16, &t[i]));
	/* MMK_READERS_MAX read and header guards on one message (which is
	 * also MMK_GUARDS_MAX for the manager). */
	while (n + nh < MMK_READERS_MAX) {
		if ((n + nh) % 2)
			CHECK_OK(c, mmk_read(m, t[0], &g[n++]));
		else
			CHECK_OK(c, mmk_peek_header(m, t[0], &hg[nh++]));
	}
	CHECK_ERR(c, MMK_E_LIMIT, mmk_read(m, t[0], &r));
	CHECK_ERR(c, MMK_E_LIMIT, try_op(m, OP_PEEK, t[0]));
	/* The contract's errors come first. */
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_mut(m, t[0], &w));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_read(m, MMK_TOKEN_INVALID, &r));
	CHECK_ERR(c, MMK_E_LIMIT, mmk_read(m, t[1], &r));
	CHECK_ERR(c, MMK_E_LIMIT, mmk_read_mut(m, t[1], &w));
	CHECK_OK(c, mmk_free(m, t[3]));
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_read(m, t[3], &r));

	/* The header guards go: the manager can take guards elsewhere again. */
	while (nh > 0)
		CHECK_OK(c, mmk_header_release(&hg[--nh]));
	while (n < MMK_GUARDS_MAX - 1)
		CHECK_OK(c, mmk_read(m, t[1], &g[n++]));
	CHECK_OK(c, mmk_read_mut(m, t[2], &w));		/* the last one */
	CHECK_ERR(c, MMK_E_LIMIT, mmk_read(m, t[1], &r));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read(m, t[2], &r));
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_read(m, t[1], &g[n++]));
	CHECK_ERR(c, MMK_E_LIMIT, mmk_read(m, t[2], &r));
	while (n > 0)
		CHECK_OK(c, mmk_read_release(&g[--n]));
	CHECK_OK(c, mmk_free(m, t[0]));
	CHECK_OK(c, mmk_free(m, t[1]));
}

static void t_many_writers(struct ctx *c)
{
	POOL(c, m);
	struct mmk_write_guard w[CAPACITY];
	struct mmk_read_guard r;
	uint64_t t[CAPACITY];

	/* One manager holds write guards on every message at once. */
	for (int i = 0; i < CAPACITY; i++)
		CHECK_OK(c, store_pattern(m, (uint64_t)i, 16, &t[i]));
	for (int i = 0; i < CAPACITY; i++) {
		CHECK_OK(c, mmk_read_mut(m, t[i], &w[i]));
		CHECK(c, pattern_ok(w[i].msg, (uint64_t)i, 16));
	}
	for (int i = 0; i < CAPACITY; i++) {
		w[i].msg->header.sequence = 1000 + (uint64_t)i;
		for (int j = 0; j < 16; j++)
			w[i].msg->payload[j] = (unsigned char)(i + 1);
	}
	for (int i = CAPACITY - 1; i >= 0; i--)
		CHECK_OK(c, mmk_write_release(&w[i]));
	for (int i = 0; i < CAPACITY; i++) {
		CHECK_OK(c, mmk_read(m, t[i], &r));
		CHECK(c, r.msg->header.sequence == 1000 + (uint64_t)i);
		CHECK(c, r.msg->payload[0] == i + 1 && r.msg->payload[15] == i + 1);
		CHECK_OK(c, mmk_read_release(&r));
		CHECK_OK(c, mmk_free(m, t[i]));
	}
}

/* ---- typed payloads -------------------------------------------------------------- */

struct frame {
	uint64_t t_ns;
	float xyz[3];
	uint32_t id;
};

MMK_DEFINE_TYPED(frame, struct frame, 0x6672616d65000001ULL);

static void t_typed(struct ctx *c)
{
	struct mmk_config cfg;
	struct mmk_manager *m, *other;
	struct mmk_read_guard r;
	struct mmk_write_guard w;
	const struct frame *fr;
	struct frame f = { .t_ns = 5, .xyz = { 1, 2, 3 }, .id = 9 }, *fw;
	uint64_t t;

	frame_config(&cfg, 4);
	CHECK(c, cfg.payload_size == sizeof(struct frame) && cfg.capacity == 4);
	CHECK(c, cfg.payload_type == frame_type_id());
	CHECK_OK(c, make(c, &cfg, &m));
	CHECK_OK(c, frame_check(m));
	CHECK_OK(c, frame_store(m, NULL, &f, &t));
	CHECK_OK(c, frame_read(m, t, &r, &fr));
	CHECK(c, fr == frame_payload(&r));
	CHECK(c, fr->t_ns == 5 && fr->xyz[2] == 3 && fr->id == 9);
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, frame_read_mut(m, t, &w, &fw));
	fw->id = 10;
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, frame_read(m, t, &r, &fr));
	CHECK(c, fr->id == 10);
	CHECK_OK(c, mmk_read_release(&r));
	/* A message of another size is not a frame. */
	CHECK_OK(c, mmk_store(m, NULL, "abc", 3, &t));
	CHECK_ERR(c, MMK_E_TYPE_MISMATCH, frame_read(m, t, &r, &fr));
	CHECK(c, fr == NULL && r.owner == NULL);
	CHECK_ERR(c, MMK_E_TYPE_MISMATCH, frame_read_mut(m, t, &w, &fw));
	CHECK_OK(c, mmk_free(m, t));	/* no guard left behind */

	/* A pool of another type. */
	cfg = config(4, 64);
	CHECK_OK(c, make(c, &cfg, &other));
	CHECK_ERR(c, MMK_E_TYPE_MISMATCH, frame_check(other));
	CHECK_ERR(c, MMK_E_TYPE_MISMATCH, frame_store(other, NULL, &f, &t));
	CHECK(c, t == MMK_TOKEN_INVALID);
	CHECK(c, mmk_available(other) == 4);
}

/* ---- static storage ------------------------------------------------------------- */

static MMK_STATIC_STORAGE(st_small, 3, 40);

static void t_static_storage(struct ctx *c)
{
	struct mmk_config cfg = config(3, 40);
	struct mmk_manager *m, *m2;
	uint64_t t;

	CHECK(c, MMK_STATIC(st_small)->slot_size == MMK_SLOT_SIZE(40));
	CHECK(c, sizeof(st_small.arena) == 3 * MMK_SLOT_SIZE(40));
	CHECK_OK(c, mmk_static_create(MMK_STATIC(st_small), &cfg, &m));
	CHECK(c, mmk_backend(m) == MMK_BACKEND_STATIC && mmk_fd(m) == -1);
	/* The manager lives in the storage. */
	CHECK(c, (void *)m >= (void *)&st_small && (void *)m < (void *)(&st_small + 1));
	CHECK_ERR(c, MMK_E_INVALID, mmk_static_create(MMK_STATIC(st_small), &cfg, &m2));
	CHECK_OK(c, mmk_store(m, NULL, "hello", 5, &t));
	mmk_close(m);
	/* Free again: NULL config means the storage's own sizes. */
	CHECK_OK(c, mmk_static_create(MMK_STATIC(st_small), NULL, &m));
	CHECK(c, mmk_capacity(m) == 3 && mmk_payload_max(m) == 40 && mmk_available(m) == 3);
	CHECK(c, mmk_memory_class(m, NULL) == MMK_MEM_HOST && mmk_payload_type(m) == 0);
	/* The old manager's token is from another pool. */
	CHECK_ALL_OPS(c, m, t, MMK_E_BAD_TOKEN);
	mmk_close(m);
	cfg = config(4, 40);
	CHECK_ERR(c, MMK_E_INVALID, mmk_static_create(MMK_STATIC(st_small), &cfg, &m));
	cfg = config(3, 41);
	CHECK_ERR(c, MMK_E_INVALID, mmk_static_create(MMK_STATIC(st_small), &cfg, &m));
	cfg = config(3, 40);
	cfg.flags = MMK_POOL_PAGE_ALIGNED;
	CHECK_ERR(c, MMK_E_INVALID, mmk_static_create(MMK_STATIC(st_small), &cfg, &m));
	cfg = config(2, 8);
	CHECK_OK(c, mmk_static_create(MMK_STATIC(st_small), &cfg, &m));
	CHECK(c, mmk_capacity(m) == 2);
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_store(m, NULL, "123456789", 9, &t));
	mmk_close(m);
}

static void t_page_aligned(struct ctx *c)
{
	struct mmk_config cfg = config(3, 100);
	struct mmk_manager *m;
	struct mmk_read_guard r[3];
	uint64_t t[3];
	long page = sysconf(_SC_PAGESIZE);

	cfg.flags = MMK_POOL_PAGE_ALIGNED;
	CHECK_OK(c, make(c, &cfg, &m));
	for (int i = 0; i < 3; i++) {
		CHECK_OK(c, store_pattern(m, (uint64_t)i, 100, &t[i]));
		CHECK_OK(c, mmk_read(m, t[i], &r[i]));
		CHECK(c, (uintptr_t)r[i].msg % (uintptr_t)page == 0);
	}
	for (int i = 0; i < 3; i++)
		CHECK_OK(c, mmk_read_release(&r[i]));
}

/* ---- kernel backend only ------------------------------------------------------------ */

static pid_t start_child(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

static int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

static struct mmk_manager *named_pool(struct ctx *c, char *name, size_t len)
{
	struct mmk_config cfg = config(CAPACITY, PAYLOAD);
	struct mmk_manager *m;
	enum mmk_error err;

	pool_name(name, len);
	cfg.name = name;
	err = make(c, &cfg, &m);
	if (err != MMK_OK) {
		FAIL(c, "creating pool %s: %s (errno %d)", name, mmk_error_name(err), errno);
		return NULL;
	}
	return m;
}

static void t_kernel_attach(struct ctx *c)
{
	char name[MMK_NAME_MAX];
	struct mmk_manager *a, *b, *x;
	struct mmk_read_guard r;
	struct mmk_write_guard w;
	uint64_t t;

	a = named_pool(c, name, sizeof(name));
	CHECK(c, a);
	CHECK_ERR(c, MMK_E_TYPE_MISMATCH, mmk_kernel_attach(name, TYPE_ID + 1, &x));
	CHECK(c, x == NULL);
	CHECK_ERR(c, MMK_E_SYSTEM, mmk_kernel_attach("libmmk-suite-no-such-pool", TYPE_ID, &x));
	CHECK(c, errno == ENOENT);
	CHECK_ERR(c, MMK_E_INVALID, mmk_kernel_attach("", TYPE_ID, &x));
	CHECK_OK(c, mmk_kernel_attach(name, TYPE_ID, &b));
	track(c, b);
	CHECK(c, mmk_capacity(b) == CAPACITY && mmk_payload_max(b) == PAYLOAD);
	CHECK(c, mmk_payload_type(b) == TYPE_ID && mmk_backend(b) == MMK_BACKEND_KERNEL);
	/* Store in one session, read in the other. */
	CHECK_OK(c, store_pattern(a, 8, 200, &t));
	CHECK(c, mmk_available(b) == CAPACITY - 1);
	CHECK_OK(c, mmk_read(b, t, &r));
	CHECK(c, pattern_ok(r.msg, 8, 200));
	/* Borrows hold across sessions. */
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_mut(a, t, &w));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(a, t));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_read_mut(a, t, &w));
	w.msg->header.sequence = 99;
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read(b, t, &r));
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_read(b, t, &r));
	CHECK(c, r.msg->header.sequence == 99);
	CHECK_OK(c, mmk_read_release(&r));
	/* A name in use. */
	{
		struct mmk_config cfg = config(2, 8);

		cfg.name = name;
		CHECK_ERR(c, MMK_E_SYSTEM, mmk_kernel_create(&cfg, &x));
		CHECK(c, errno == EEXIST);
	}
	CHECK_OK(c, mmk_free(b, t));
}

static void t_kernel_close_releases_guards(struct ctx *c)
{
	char name[MMK_NAME_MAX];
	struct mmk_manager *a, *b;
	struct mmk_read_guard r;
	struct mmk_header_guard h;
	struct mmk_write_guard w;
	uint64_t t, u;

	a = named_pool(c, name, sizeof(name));
	CHECK(c, a);
	CHECK_OK(c, mmk_kernel_attach(name, TYPE_ID, &b));
	track(c, b);
	CHECK_OK(c, store_pattern(a, 1, 10, &t));
	CHECK_OK(c, store_pattern(a, 2, 10, &u));
	CHECK_OK(c, mmk_read(b, t, &r));
	CHECK_OK(c, mmk_peek_header(b, t, &h));
	CHECK_OK(c, mmk_read_mut(b, u, &w));
	untrack(c, b);
	mmk_close(b);
	/* Shared guards are simply gone; the write guard poisoned its message. */
	CHECK_OK(c, try_op(a, OP_READ_MUT, t));
	CHECK_ALL_OPS(c, a, u, MMK_E_POISONED);
	CHECK_OK(c, mmk_free(a, t));
	/* A poisoned message can be freed, and its slot reused. */
	CHECK_OK(c, mmk_free(a, u));
	CHECK_ALL_OPS(c, a, u, MMK_E_NOT_ALLOCATED);
	CHECK_OK(c, store_pattern(a, 3, 10, &u));
	CHECK_OK(c, try_op(a, OP_READ, u));
}

static void t_kernel_killed_writer_poisons(struct ctx *c)
{
	char name[MMK_NAME_MAX];
	struct mmk_manager *a;
	struct mmk_read_guard r;
	uint64_t t;
	int p[2];
	pid_t pid;
	char byte;

	a = named_pool(c, name, sizeof(name));
	CHECK(c, a);
	CHECK_OK(c, store_pattern(a, 1, 10, &t));
	CHECK(c, pipe(p) == 0);
	pid = start_child();
	CHECK(c, pid >= 0);
	if (pid == 0) {
		struct mmk_manager *own;
		struct mmk_write_guard w;

		/* Its own session, so that its death ends the session. */
		if (mmk_kernel_attach(name, TYPE_ID, &own) || mmk_read_mut(own, t, &w))
			_exit(1);
		memset(w.msg->payload, 0, 5);	/* half-written */
		if (write(p[1], "w", 1) != 1)
			_exit(1);
		pause();
		_exit(2);
	}
	close(p[1]);
	if (read(p[0], &byte, 1) != 1) {
		close(p[0]);
		FAIL(c, "child exited with %d", wait_child(pid));
		return;
	}
	close(p[0]);
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read(a, t, &r));
	CHECK(c, kill(pid, SIGKILL) == 0);
	CHECK(c, wait_child(pid) == 128 + SIGKILL);
	CHECK_ALL_OPS(c, a, t, MMK_E_POISONED);
	/* POISONED comes after BAD_TOKEN. */
	CHECK_ALL_OPS(c, a, tok_make(tok_tag(t), tok_gen(t) + 1, tok_index(t)), MMK_E_BAD_TOKEN);
	CHECK_OK(c, mmk_free(a, t));
	CHECK_ALL_OPS(c, a, t, MMK_E_NOT_ALLOCATED);
}

static void t_kernel_fork_shares_session(struct ctx *c)
{
	struct mmk_read_guard r;
	uint64_t t;
	int p[2];
	pid_t pid;

	POOL(c, m);
	CHECK_OK(c, store_pattern(m, 4, 50, &t));
	CHECK(c, pipe(p) == 0);
	pid = start_child();
	CHECK(c, pid >= 0);
	if (pid == 0) {
		struct mmk_read_guard g;

		/* The child uses its copy of the parent's manager. */
		if (mmk_read(m, t, &g) || !pattern_ok(g.msg, 4, 50))
			_exit(1);
		/* Hand the guard to the parent and exit without releasing it. */
		if (write(p[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	CHECK(c, wait_child(pid) == 0);
	if (read(p[0], &r, sizeof(r)) != sizeof(r)) {
		close(p[0]);
		FAIL(c, "no guard from the child");
		return;
	}
	close(p[0]);
	/* The session lives on in the parent, and so does the child's guard. */
	CHECK(c, r.owner == m && r.token == t);
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, try_op(m, OP_READ_MUT, t));
	/* It is a guard of the session: the parent can release it. */
	CHECK(c, pattern_ok(r.msg, 4, 50));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_free(m, t));
}

static void t_kernel_from_fd(struct ctx *c)
{
	struct mmk_manager *m, *b, *x;
	struct mmk_read_guard r;
	uint64_t t;
	int fd;

	m = pool(c);
	CHECK(c, m);
	CHECK(c, mmk_fd(m) >= 0);
	CHECK_OK(c, store_pattern(m, 6, 30, &t));
	/* The session is mapped by m: a second mapping is refused. */
	CHECK_ERR(c, MMK_E_SYSTEM, mmk_kernel_from_fd(mmk_fd(m), &x));
	CHECK(c, errno == EBUSY && x == NULL);
	fd = dup(mmk_fd(m));
	CHECK(c, fd >= 0);
	untrack(c, m);
	mmk_close(m);
	/* The session lives on through fd, with its pool and messages. */
	if (mmk_kernel_from_fd(fd, &b) != MMK_OK) {
		close(fd);
		FAIL(c, "mmk_kernel_from_fd failed, errno %d", errno);
		return;
	}
	close(fd);
	track(c, b);
	CHECK(c, mmk_capacity(b) == CAPACITY && mmk_available(b) == CAPACITY - 1);
	CHECK_OK(c, mmk_read(b, t, &r));
	CHECK(c, pattern_ok(r.msg, 6, 30));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_free(b, t));
	CHECK_ERR(c, MMK_E_INVALID, mmk_kernel_from_fd(-1, &x));
	/* Not a /dev/mmk descriptor. */
	{
		int p[2];
		enum mmk_error e;

		CHECK(c, pipe(p) == 0);
		e = mmk_kernel_from_fd(p[0], &x);
		close(p[0]);
		close(p[1]);
		CHECK_ERR(c, MMK_E_INVALID, e);
		CHECK(c, x == NULL);
	}
	/* An unbound session. */
	{
		int u = open("/dev/mmk", O_RDWR | O_CLOEXEC);
		enum mmk_error e;

		CHECK(c, u >= 0);
		e = mmk_kernel_from_fd(u, &x);
		close(u);
		CHECK_ERR(c, MMK_E_INVALID, e);
	}
}

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

static void t_kernel_read_only_mapping(struct ctx *c)
{
	struct mmk_read_guard r;
	struct sigaction sa = { .sa_handler = on_segv }, old;
	volatile int faulted = 0;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uint64_t t;

	POOL(c, m);
	CHECK_OK(c, store_pattern(m, 6, 30, &t));
	CHECK_OK(c, mmk_read(m, t, &r));
	/* The read guard points into a mapping that can never be written. */
	CHECK(c, mprotect((void *)((uintptr_t)r.msg & ~(page - 1)), page,
			  PROT_READ | PROT_WRITE) == -1);
	CHECK(c, errno == EACCES || errno == EPERM);
	sigemptyset(&sa.sa_mask);
	CHECK(c, sigaction(SIGSEGV, &sa, &old) == 0);
	if (sigsetjmp(segv_jmp, 1) == 0)
		((volatile unsigned char *)(uintptr_t)r.msg->payload)[0] = 1;
	else
		faulted = 1;
	sigaction(SIGSEGV, &old, NULL);
	CHECK(c, faulted);
	CHECK(c, pattern_ok(r.msg, 6, 30));
	CHECK_OK(c, mmk_read_release(&r));
}

static void t_kernel_window_writes(struct ctx *c)
{
	struct mmk_config cfg = config(4, 5000);
	struct mmk_manager *m;
	struct mmk_write_guard w;
	struct mmk_read_guard r;
	uint64_t t;

	cfg.flags = MMK_POOL_PAGE_ALIGNED;
	CHECK_OK(c, make(c, &cfg, &m));
	CHECK_OK(c, store_pattern(m, 6, 300, &t));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	/* In place: a writable window, distinct from the read-only mapping. */
	CHECK(c, w.window != NULL);
	CHECK(c, pattern_ok(w.msg, 6, 300));
	memset(w.msg->payload, 0x77, 5000);
	w.msg->header.payload_size = 5000;
	w.msg->header.qos = 7;
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	CHECK(c, w.owner == m);
	w.msg->header.payload_size = 5001;
	w.msg->header.qos = 0;
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_write_release(&w));
	w.msg->header.payload_size = 5000;
	CHECK_OK(c, mmk_write_release(&w));
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, r.msg->header.payload_size == 5000 && r.msg->header.qos == MMK_QOS_BEST_EFFORT);
	CHECK(c, r.msg->payload[0] == 0x77 && r.msg->payload[4999] == 0x77);
	CHECK_OK(c, mmk_read_release(&r));
}

/* Closing a manager unmaps its windows too, so the session really ends. */
static void t_kernel_close_with_window(struct ctx *c)
{
	struct mmk_config cfg = config(2, 100);
	char name[MMK_NAME_MAX];
	struct mmk_manager *a, *b;
	struct mmk_write_guard w;
	uint64_t t;

	pool_name(name, sizeof(name));
	cfg.name = name;
	cfg.flags = MMK_POOL_PAGE_ALIGNED;
	CHECK_OK(c, make(c, &cfg, &a));
	CHECK_OK(c, mmk_kernel_attach(name, TYPE_ID, &b));
	track(c, b);
	CHECK_OK(c, store_pattern(a, 1, 10, &t));
	CHECK_OK(c, mmk_read_mut(b, t, &w));
	CHECK(c, w.window != NULL);
	w.msg->payload[0] ^= 0xff;		/* half-written */
	untrack(c, b);
	mmk_close(b);
	CHECK_ALL_OPS(c, a, t, MMK_E_POISONED);
	CHECK_OK(c, mmk_free(a, t));
}

/* A loan held at close is cancelled, not poisoned: nothing was published. */
static void t_kernel_close_cancels_loan(struct ctx *c)
{
	struct mmk_config cfg = config(2, 100);
	char name[MMK_NAME_MAX];
	struct mmk_manager *a, *b;
	struct mmk_write_guard w;
	uint64_t t;

	pool_name(name, sizeof(name));
	cfg.name = name;
	cfg.flags = MMK_POOL_PAGE_ALIGNED;
	CHECK_OK(c, make(c, &cfg, &a));
	CHECK_OK(c, mmk_kernel_attach(name, TYPE_ID, &b));
	track(c, b);
	CHECK_OK(c, mmk_loan(b, &w));
	CHECK(c, w.window != NULL);
	w.msg->payload[0] = 1;			/* half-written */
	t = w.token;
	CHECK(c, mmk_available(a) == 1);
	CHECK_ALL_OPS(c, a, t, MMK_E_ALREADY_BORROWED);
	untrack(c, b);
	mmk_close(b);
	CHECK(c, mmk_available(a) == 2);
	CHECK_ALL_OPS(c, a, t, MMK_E_BAD_TOKEN);
}

struct waiter {
	struct mmk_manager *m;
	uint64_t token;
	enum mmk_error err;
	uint64_t seq;
};

static void *wait_reader(void *arg)
{
	struct waiter *wt = arg;
	struct mmk_read_guard r;

	wt->err = mmk_read_wait(wt->m, wt->token, 0, &r);
	if (wt->err == MMK_OK) {
		wt->seq = r.msg->header.sequence;
		wt->err = mmk_read_release(&r);
	}
	return NULL;
}

static void t_kernel_wait_for_writer(struct ctx *c)
{
	struct mmk_write_guard w;
	struct mmk_read_guard r;
	struct mmk_header_guard h;
	struct waiter wt;
	pthread_t th;
	uint64_t t;

	POOL(c, m);
	CHECK_OK(c, store_pattern(m, 6, 30, &t));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	w.msg->header.sequence = 4242;
	wt = (struct waiter){ .m = m, .token = t, .err = MMK_E_SYSTEM };
	CHECK(c, pthread_create(&th, NULL, wait_reader, &wt) == 0);
	/* Whenever the reader runs, it can only see the released message. */
	sched_yield();
	CHECK_OK(c, mmk_write_release(&w));
	CHECK(c, pthread_join(th, NULL) == 0);
	CHECK_OK(c, wt.err);
	CHECK(c, wt.seq == 4242);
	/* Held by this session itself: the timeout ends the wait. */
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_wait(m, t, 2000000, &r));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_peek_header_wait(m, t, 2000000, &h));
	CHECK_OK(c, mmk_write_release(&w));
}

#define THREADS		4
#define THREAD_OPS	2000

static void *hammer(void *arg)
{
	struct waiter *wt = arg;
	uint64_t seed = wt->seq;

	wt->err = MMK_OK;
	for (int i = 0; i < THREAD_OPS; i++) {
		struct mmk_read_guard r;
		struct mmk_write_guard w;
		enum mmk_error e;
		uint64_t t, s = seed * 100000 + (uint64_t)i;

		e = store_pattern(wt->m, s, 64, &t);
		if (e == MMK_E_NO_FREE_SLOTS)
			continue;
		if (e || (e = mmk_read(wt->m, t, &r)))
			goto fail;
		if (!pattern_ok(r.msg, s, 64)) {
			e = MMK_E_SYSTEM;
			goto fail;
		}
		if ((e = mmk_read_release(&r)) || (e = mmk_read_mut(wt->m, t, &w)))
			goto fail;
		w.msg->header.payload_size = 32;
		if ((e = mmk_write_release(&w)) || (e = mmk_read(wt->m, t, &r)))
			goto fail;
		if (!pattern_ok(r.msg, s, 32)) {
			e = MMK_E_SYSTEM;
			goto fail;
		}
		if ((e = mmk_read_release(&r)) || (e = mmk_free(wt->m, t)))
			goto fail;
		continue;
fail:
		wt->err = e;
		return NULL;
	}
	return NULL;
}

static void t_kernel_threads(struct ctx *c)
{
	struct waiter wt[THREADS];
	pthread_t th[THREADS];

	POOL(c, m);
	for (int i = 0; i < THREADS; i++) {
		wt[i] = (struct waiter){ .m = m, .seq = (uint64_t)i + 1 };
		CHECK(c, pthread_create(&th[i], NULL, hammer, &wt[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++)
		CHECK(c, pthread_join(th[i], NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK_OK(c, wt[i].err);
	CHECK(c, mmk_available(m) == CAPACITY);
}

static void t_backend_identity(struct ctx *c)
{
	POOL(c, m);

	CHECK(c, mmk_backend(m) == c->backend);
	if (c->backend == MMK_BACKEND_KERNEL)
		CHECK(c, mmk_fd(m) >= 0);
	else
		CHECK(c, mmk_fd(m) == -1);
}

/* ---- loans and batches ------------------------------------------------------------ */

/* A loan is an empty, write-guarded message that a release publishes. */
static void t_loan_publish(struct ctx *c)
{
	POOL(c, m);
	struct mmk_write_guard w;
	struct mmk_header_guard h;
	struct mmk_read_guard r;
	uint64_t t;

	CHECK_OK(c, mmk_loan(m, &w));
	CHECK(c, w.msg && w.owner == m && w.token != MMK_TOKEN_INVALID);
	CHECK(c, (uintptr_t)w.msg->payload % MMK_PAYLOAD_ALIGN == 0);
	CHECK(c, w.msg->header.payload_size == 0 && w.msg->header.sequence == 0);
	CHECK(c, mmk_available(m) == CAPACITY - 1);
	/* Nobody reads, peeks, writes or frees it before it is published. */
	CHECK_ALL_OPS(c, m, w.token, MMK_E_ALREADY_BORROWED);
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, w.token));

	memset(w.msg->payload, 0x3c, 40);
	w.msg->header.payload_size = 40;
	w.msg->header.sequence = 12;
	w.msg->header.memory_class = 9;		/* set by mmk at release */
	t = w.token;
	CHECK_OK(c, mmk_write_release(&w));
	CHECK(c, !w.msg && !w.owner);

	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, r.msg->header.payload_size == 40 && r.msg->header.sequence == 12);
	CHECK(c, r.msg->header.memory_class == MMK_MEM_HOST);
	CHECK(c, r.msg->header.qos == MMK_QOS_BEST_EFFORT);
	CHECK(c, r.msg->payload[0] == 0x3c && r.msg->payload[39] == 0x3c);
	CHECK_OK(c, mmk_peek_header(m, t, &h));
	CHECK_OK(c, mmk_header_release(&h));
	CHECK_OK(c, mmk_read_release(&r));
	/* A published loan is a message like any other, in the first free slot. */
	CHECK(c, tok_index(t) == 0);
	CHECK_OK(c, mmk_free(m, t));
	CHECK(c, mmk_available(m) == CAPACITY);
}

/* A cancelled loan gives its slot back and leaves its token stale. */
static void t_loan_cancel(struct ctx *c)
{
	POOL(c, m);
	struct mmk_write_guard w;
	uint64_t t, t2;

	CHECK_OK(c, mmk_loan(m, &w));
	t = w.token;
	w.msg->header.payload_size = 3;
	CHECK_OK(c, mmk_write_cancel(&w));
	CHECK(c, !w.msg && !w.owner);
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_cancel(&w));
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	CHECK(c, mmk_available(m) == CAPACITY);
	CHECK_ALL_OPS(c, m, t, MMK_E_BAD_TOKEN);
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_free(m, t));

	/* The slot comes back first, two generations on. */
	CHECK_OK(c, store_pattern(m, 1, 5, &t2));
	CHECK(c, tok_index(t2) == tok_index(t) && tok_gen(t2) == tok_gen(t) + 1 + 1);
	CHECK_OK(c, mmk_free(m, t2));
}

/* A bad header keeps the loan; a full pool and the guard limit refuse one. */
static void t_loan_checks(struct ctx *c)
{
	struct mmk_config cfg = config(2, PAYLOAD);
	struct mmk_write_guard w, w2, w3;
	struct mmk_manager *m;

	CHECK_OK(c, make(c, &cfg, &m));
	CHECK_ERR(c, MMK_E_INVALID, mmk_loan(NULL, &w));
	CHECK_ERR(c, MMK_E_INVALID, mmk_loan(m, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_cancel(NULL));

	CHECK_OK(c, mmk_loan(m, &w));
	w.msg->header.flags = 0x80;
	CHECK_ERR(c, MMK_E_INVALID, mmk_write_release(&w));
	CHECK(c, w.owner == m);
	w.msg->header.flags = 0;
	w.msg->header.payload_size = PAYLOAD + 1;
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_write_release(&w));
	CHECK_OK(c, mmk_loan(m, &w2));
	CHECK_ERR(c, MMK_E_NO_FREE_SLOTS, mmk_loan(m, &w3));
	CHECK(c, !w3.msg && !w3.owner && w3.token == MMK_TOKEN_INVALID);
	CHECK_OK(c, mmk_write_cancel(&w2));
	/* A cancel drops a loan whatever its header says. */
	CHECK_OK(c, mmk_write_cancel(&w));
	CHECK(c, mmk_available(m) == 2);
}

/* Cancelling a guard from read_mut leaves an unchanged message as it was. */
static void t_write_cancel_read_mut(struct ctx *c)
{
	POOL(c, m);
	struct mmk_write_guard w;
	struct mmk_read_guard r;
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 4, 20, &t));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	CHECK_OK(c, mmk_write_cancel(&w));
	CHECK(c, !w.msg && !w.owner);
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK(c, pattern_ok(r.msg, 4, 20));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_free(m, t));
}

/* Page-aligned pools: a loan spans pages, and the slot's memory is reused. */
static void t_loan_page_aligned(struct ctx *c)
{
	struct mmk_config cfg = config(2, 3 * 4096);
	struct mmk_write_guard w;
	struct mmk_read_guard r;
	struct mmk_manager *m;
	struct mmk_message *first = NULL;
	uint64_t t;

	cfg.flags = MMK_POOL_PAGE_ALIGNED;
	CHECK_OK(c, make(c, &cfg, &m));
	for (int round = 0; round < 3; round++) {
		CHECK_OK(c, mmk_loan(m, &w));
		if (!round)
			first = w.msg;
		/* The same slot each round, at the same address (kernel: one window). */
		CHECK(c, w.msg == first);
		CHECK(c, w.msg->header.payload_size == 0);
		memset(w.msg->payload, round + 1, 3 * 4096);
		w.msg->header.payload_size = 3 * 4096;
		t = w.token;
		CHECK_OK(c, mmk_write_release(&w));
		CHECK_OK(c, mmk_read(m, t, &r));
		CHECK(c, r.msg->header.payload_size == 3 * 4096);
		CHECK(c, r.msg->payload[0] == round + 1 && r.msg->payload[3 * 4096 - 1] == round + 1);
		CHECK_OK(c, mmk_read_release(&r));
		CHECK_OK(c, mmk_free(m, t));
	}
}

/* Stores, reads, a peek, releases and a free in one call. */
static void t_batch_mixed(struct ctx *c)
{
	POOL(c, m);
	unsigned char p1[10], p2[20];
	struct mmk_header h = { .sequence = 5 };
	struct mmk_batch_op ops[9];
	struct mmk_read_guard r;
	size_t done = 99;

	memset(p1, 1, sizeof(p1));
	memset(p2, 2, sizeof(p2));
	memset(ops, 0, sizeof(ops));
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_STORE, .header = &h, .payload = p1,
					.payload_size = sizeof(p1) };
	ops[1] = (struct mmk_batch_op){ .op = MMK_OP_STORE, .payload = p2,
					.payload_size = sizeof(p2) };
	CHECK_OK(c, mmk_batch(m, ops, 2, &done));
	CHECK(c, done == 2 && ops[0].result == MMK_OK && ops[1].result == MMK_OK);
	CHECK(c, ops[0].token != ops[1].token && !ops[0].msg);

	ops[2] = (struct mmk_batch_op){ .op = MMK_OP_READ, .token = ops[0].token };
	ops[3] = (struct mmk_batch_op){ .op = MMK_OP_PEEK_HEADER, .token = ops[1].token };
	ops[4] = (struct mmk_batch_op){ .op = MMK_OP_READ, .token = ops[0].token };
	CHECK_OK(c, mmk_batch(m, ops + 2, 3, &done));
	CHECK(c, done == 3);
	CHECK(c, ops[2].msg && ops[2].msg == ops[4].msg);
	CHECK(c, ops[2].msg->header.sequence == 5 && ops[2].msg->header.payload_size == 10);
	CHECK(c, ops[2].msg->payload[9] == 1);
	CHECK(c, ops[3].msg->header.payload_size == 20);
	/* The same message as a guard function gives, and guards count. */
	CHECK_OK(c, mmk_read(m, ops[0].token, &r));
	CHECK(c, r.msg == ops[2].msg);
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, ops[0].token));

	ops[5] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE, .token = ops[0].token };
	ops[6] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE, .token = ops[0].token };
	ops[7] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE, .token = ops[1].token };
	ops[8] = (struct mmk_batch_op){ .op = MMK_OP_FREE, .token = ops[0].token };
	CHECK_OK(c, mmk_batch(m, ops + 5, 4, NULL));
	CHECK(c, ops[8].result == MMK_OK && !ops[8].msg);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, ops[0].token));
	CHECK_OK(c, mmk_free(m, ops[1].token));
	CHECK(c, mmk_available(m) == CAPACITY);
}

/* The first failing op stops the batch; the ops after it are untouched. */
static void t_batch_stops_at_first_error(struct ctx *c)
{
	POOL(c, m);
	unsigned char p[4] = { 0 };
	struct mmk_batch_op ops[4];
	size_t done;

	for (int i = 0; i < 4; i++)
		ops[i] = (struct mmk_batch_op){ .op = MMK_OP_STORE, .payload = p,
						.payload_size = sizeof(p), .token = 42,
						.result = MMK_E_SYSTEM };
	ops[1] = (struct mmk_batch_op){ .op = MMK_OP_FREE, .token = MMK_TOKEN_INVALID };
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_batch(m, ops, 4, &done));
	CHECK(c, done == 1 && ops[0].result == MMK_OK && ops[1].result == MMK_E_BAD_TOKEN);
	CHECK(c, ops[2].result == MMK_E_SYSTEM && ops[2].token == 42);
	CHECK(c, ops[3].result == MMK_E_SYSTEM && ops[3].token == 42);
	CHECK(c, mmk_available(m) == CAPACITY - 1);
}

/* Every op fails as its function would. */
static void t_batch_errors(struct ctx *c)
{
	POOL(c, m);
	unsigned char p[PAYLOAD + 1] = { 0 };
	struct mmk_header bad = { .flags = 0x80 };
	struct mmk_batch_op op;
	struct mmk_write_guard w;
	size_t done = 7;
	uint64_t t;

	CHECK_OK(c, mmk_batch(m, NULL, 0, &done));
	CHECK(c, done == 0);
	CHECK_ERR(c, MMK_E_INVALID, mmk_batch(NULL, &op, 1, &done));
	CHECK_ERR(c, MMK_E_INVALID, mmk_batch(m, NULL, 1, &done));

#define ONE(want, ...) do {							\
	op = (struct mmk_batch_op){ __VA_ARGS__ };				\
	CHECK_ERR(c, want, mmk_batch(m, &op, 1, &done));			\
	CHECK(c, op.result == (want) && done == ((want) == MMK_OK));		\
} while (0)
	ONE(MMK_E_INVALID, .op = (enum mmk_batch_opcode)99);
	ONE(MMK_E_TOO_LARGE, .op = MMK_OP_STORE, .payload = p, .payload_size = PAYLOAD + 1);
	CHECK(c, op.token == MMK_TOKEN_INVALID);
	ONE(MMK_E_INVALID, .op = MMK_OP_STORE, .payload_size = 1);
	ONE(MMK_E_INVALID, .op = MMK_OP_STORE, .header = &bad, .payload = p, .payload_size = 1);
	ONE(MMK_E_BAD_TOKEN, .op = MMK_OP_READ, .token = MMK_TOKEN_INVALID);
	CHECK(c, !op.msg);
	CHECK_OK(c, store_pattern(m, 2, 2, &t));
	ONE(MMK_E_INVALID, .op = MMK_OP_READ_RELEASE, .token = t);
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	ONE(MMK_E_ALREADY_BORROWED, .op = MMK_OP_READ, .token = t);
	ONE(MMK_E_ALREADY_BORROWED, .op = MMK_OP_PEEK_HEADER, .token = t);
	ONE(MMK_E_BORROW_ACTIVE, .op = MMK_OP_FREE, .token = t);
	CHECK_OK(c, mmk_write_release(&w));
	ONE(MMK_OK, .op = MMK_OP_FREE, .token = t);
	ONE(MMK_E_NOT_ALLOCATED, .op = MMK_OP_FREE, .token = t);
	ONE(MMK_E_NOT_ALLOCATED, .op = MMK_OP_PEEK_HEADER, .token = t);
	for (int i = 0; i < CAPACITY; i++)
		ONE(MMK_OK, .op = MMK_OP_STORE, .payload = p, .payload_size = 1);
	ONE(MMK_E_NO_FREE_SLOTS, .op = MMK_OP_STORE, .payload = p, .payload_size = 1);
#undef ONE
}

/* Long batches (the kernel splits them) give what single calls give. */
static void t_batch_long(struct ctx *c)
{
	enum { N = 600 };
	static struct mmk_batch_op ops[N];
	unsigned char p[8] = { 0 };
	POOL(c, m);
	uint64_t t;
	size_t done;

	/* Store, free, store, free ...: always slot 0, a generation more each time. */
	for (int i = 0; i < N; i++)
		ops[i] = i % 2 ? (struct mmk_batch_op){ .op = MMK_OP_FREE } :
				 (struct mmk_batch_op){ .op = MMK_OP_STORE, .payload = p,
							.payload_size = sizeof(p) };
	/* Tokens of frees are not known before the stores: run in two steps. */
	CHECK_OK(c, mmk_batch(m, ops, 1, &done));
	for (int i = 1; i < N; i += 2)
		ops[i].token = tok_make(tok_tag(ops[0].token), gen_after(ops[0].token, i / 2 + 1),
					0);
	CHECK_OK(c, mmk_batch(m, ops + 1, N - 1, &done));
	CHECK(c, done == N - 1);
	for (int i = 0; i < N; i += 2)
		CHECK(c, ops[i].token == ops[i + 1].token);
	CHECK_OK(c, store_pattern(m, 1, 1, &t));
	CHECK(c, tok_gen(t) == gen_after(ops[0].token, N / 2 + 1));

	/* A failure past the first chunk: everything before it ran. */
	for (int i = 0; i < N; i++)
		ops[i] = (struct mmk_batch_op){ .op = MMK_OP_PEEK_HEADER, .token = t };
	ops[N - 10].op = MMK_OP_FREE;
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_batch(m, ops, N, &done));
	CHECK(c, done == N - 10 && ops[N - 10].result == MMK_E_BORROW_ACTIVE);
	CHECK(c, ops[N - 11].msg && ops[N - 11].msg->header.payload_size == 1);
	CHECK(c, ops[N - 9].result == MMK_OK && !ops[N - 9].msg);
}

/* ---- §9: queues ------------------------------------------------------------------ */

/* Queue storages for static managers: the first free one is used. */
#define QSTORE_ITEMS	64
static MMK_QUEUE_STORAGE(qst0, QSTORE_ITEMS);
static MMK_QUEUE_STORAGE(qst1, QSTORE_ITEMS);
static MMK_QUEUE_STORAGE(qst2, QSTORE_ITEMS);
static MMK_QUEUE_STORAGE(qst3, QSTORE_ITEMS);
static MMK_QUEUE_STORAGE(qst4, QSTORE_ITEMS);
static MMK_QUEUE_STORAGE(qst5, QSTORE_ITEMS);
static struct mmk_queue_storage *const qstorages[] = {
	MMK_QUEUE_STATIC(qst0), MMK_QUEUE_STATIC(qst1), MMK_QUEUE_STATIC(qst2),
	MMK_QUEUE_STATIC(qst3), MMK_QUEUE_STATIC(qst4), MMK_QUEUE_STATIC(qst5),
};

/*
 * Create a queue on any backend.  Static managers need storage: the first
 * storage that works is used (a storage in use gives MMK_E_INVALID, as
 * does a bad attr on every storage).  Queues are closed with their
 * manager after the test.
 */
static enum mmk_error queue_make(struct mmk_manager *m, struct mmk_queue_attr a,
				 struct mmk_queue **q)
{
	enum mmk_error err = MMK_E_INVALID;

	if (mmk_backend(m) != MMK_BACKEND_STATIC)
		return mmk_queue_create(m, &a, q);
	for (size_t i = 0; i < sizeof(qstorages) / sizeof(qstorages[0]); i++) {
		a.storage = qstorages[i];
		err = mmk_queue_create(m, &a, q);
		if (err != MMK_E_INVALID)
			break;
	}
	return err;
}

static struct mmk_queue *queue(struct ctx *c, struct mmk_manager *m, enum mmk_queue_policy p,
			       uint32_t cap, uint32_t soft)
{
	struct mmk_queue_attr a = { .policy = p, .cap_items = cap, .soft_items = soft };
	struct mmk_queue *q;
	enum mmk_error err = queue_make(m, a, &q);

	if (err != MMK_OK) {
		FAIL(c, "creating a queue: %s (errno %d)", mmk_error_name(err), errno);
		return NULL;
	}
	return q;
}

#define QUEUE(c, m, q, p, cap, soft) \
	struct mmk_queue *q = queue(c, m, p, cap, soft); CHECK(c, q)

static struct mmk_occupancy occ(struct mmk_queue *q)
{
	struct mmk_occupancy o = { .items = 999 };

	if (mmk_queue_occupancy(q, &o) != MMK_OK)
		o.items = 999;
	return o;
}

/* Every bad attr, on every backend. */
static void t_queue_create_checks(struct ctx *c)
{
	static const struct {
		struct mmk_queue_attr a;
		enum mmk_error want;
	} cases[] = {
		{ { .cap_items = 1 }, MMK_OK },
		{ { .cap_items = MMK_QUEUE_ITEMS_MAX / 128, .soft_items = 1,
		    .cap_bytes = 100, .soft_bytes = 100 }, MMK_OK },
		{ { .cap_items = 4, .policy = MMK_POLICY_QOS }, MMK_OK },
		{ { .cap_items = 0 }, MMK_E_INVALID },
		{ { .cap_items = MMK_QUEUE_ITEMS_MAX + 1 }, MMK_E_INVALID },
		{ { .cap_items = 4, .soft_items = 5 }, MMK_E_INVALID },
		{ { .cap_items = 4, .soft_bytes = 1 }, MMK_E_INVALID },
		{ { .cap_items = 4, .cap_bytes = 10, .soft_bytes = 11 }, MMK_E_INVALID },
		{ { .cap_items = 4, .policy = (enum mmk_queue_policy)5 }, MMK_E_INVALID },
		{ { .cap_items = 4, .name = "0123456789012345678901234567890123456789"
						  "012345678901234567890123" }, MMK_E_INVALID },
	};
	POOL(c, m);
	struct mmk_queue *q;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum mmk_error err = queue_make(m, cases[i].a, &q);

		if (err != cases[i].want) {
			FAIL(c, "case %zu: %s, expected %s", i, mmk_error_name(err),
			     mmk_error_name(cases[i].want));
			return;
		}
		CHECK(c, (err == MMK_OK) == (q != NULL));
		mmk_queue_close(q);
	}
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_create(NULL, &cases[0].a, &q));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_create(m, NULL, &q));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_create(m, &cases[0].a, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_open(m, "", &q));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_open(m, NULL, &q));
	CHECK(c, !q);
	mmk_queue_close(NULL);
}

/* FIFO order; popping gives a read guard; its release frees the message. */
static void t_queue_fifo(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 4, 0);
	struct mmk_read_guard g;
	struct mmk_push_outcome o = { 7, 7 };
	uint64_t t[3];

	CHECK(c, (mmk_queue_fd(q) >= 0) == (c->backend == MMK_BACKEND_KERNEL));
	for (int i = 0; i < 3; i++) {
		CHECK_OK(c, store_pattern(m, 10 + i, 20 + i, &t[i]));
		CHECK_OK(c, mmk_queue_try_push(q, t[i], &o));
		CHECK(c, o.dropped == 0 && o.evicted == 0);
	}
	CHECK(c, occ(q).items == 3 && occ(q).bytes == 20 + 21 + 22);
	for (int i = 0; i < 3; i++) {
		CHECK_OK(c, mmk_queue_try_pop(q, &g));
		CHECK(c, g.token == t[i] && g.owner == m && pattern_ok(g.msg, 10 + i, 20 + i));
		CHECK(c, mmk_available(m) == (size_t)(CAPACITY - 3 + i));
		CHECK_OK(c, mmk_read_release(&g));
		CHECK(c, mmk_available(m) == (size_t)(CAPACITY - 2 + i));
		CHECK_ALL_OPS(c, m, t[i], MMK_E_NOT_ALLOCATED);
	}
	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_pop(q, &g));
	CHECK(c, !g.owner && !g.msg && g.token == MMK_TOKEN_INVALID);
	CHECK(c, occ(q).items == 0 && occ(q).bytes == 0);
}

/* Push gives: QUEUE_OWNED while queued, freed by the last holder. */
static void t_queue_owned(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 4, 0);
	struct mmk_read_guard r, p;
	struct mmk_write_guard w;
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 1, 8, &t));
	CHECK_OK(c, mmk_queue_try_push(q, t, NULL));
	CHECK_ERR(c, MMK_E_QUEUE_OWNED, mmk_free(m, t));
	CHECK_ERR(c, MMK_E_QUEUE_OWNED, mmk_queue_try_push(q, t, NULL));
	/* A queue's hold is shared: reads work, writes do not. */
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_read_mut(m, t, &w));
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	CHECK_OK(c, mmk_queue_try_pop(q, &p));
	CHECK(c, p.msg == r.msg);
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	CHECK_OK(c, mmk_read_release(&p));
	CHECK(c, mmk_available(m) == CAPACITY - 1);
	CHECK_OK(c, mmk_read_release(&r));
	CHECK(c, mmk_available(m) == CAPACITY);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t));
}

/* Push checks the message in the SPEC §9 order. */
static void t_queue_push_order(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 1, 0);
	struct mmk_write_guard w, l;
	struct mmk_read_guard r;
	uint64_t freed, t, full;

	CHECK_OK(c, mmk_loan(m, &l));
	CHECK_OK(c, store_pattern(m, 2, 1, &t));
	CHECK_OK(c, store_pattern(m, 3, 1, &full));
	CHECK_OK(c, store_pattern(m, 1, 1, &freed));
	CHECK_OK(c, mmk_free(m, freed));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_push(NULL, t, NULL));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_queue_try_push(q, MMK_TOKEN_INVALID, NULL));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_queue_try_push(q, t ^ 1ULL << 47, NULL));
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_queue_try_push(q, freed, NULL));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_queue_try_push(q, l.token, NULL));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_queue_try_push(q, t, NULL));
	CHECK_OK(c, mmk_write_release(&w));
	/* A read guard, even the pusher's, does not prevent a push. */
	CHECK_OK(c, mmk_read(m, t, &r));
	CHECK_OK(c, mmk_queue_try_push(q, t, NULL));
	CHECK_ERR(c, MMK_E_QUEUE_OWNED, mmk_queue_try_push(q, t, NULL));
	CHECK_ERR(c, MMK_E_QUEUE_FULL, mmk_queue_try_push(q, full, NULL));
	/* Refused: still the caller's. */
	CHECK_OK(c, mmk_free(m, full));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_write_cancel(&l));
}

/*
 * Admission, as a table: a queue, then pushes of messages (payload size,
 * QoS) with what each must give, then the messages left (by push number,
 * oldest first) and the counters.
 */
#define QP_MAX	8
struct qpush {
	uint32_t size;
	uint8_t qos;
	enum mmk_error err;
	uint32_t dropped, evicted;
};

static const struct policy_case {
	const char *name;
	struct mmk_queue_attr a;
	struct qpush p[QP_MAX];
	int left[QP_MAX + 1];		/* push numbers, -1 ends */
	uint64_t rejected, drops[MMK_DROP_REASONS];
} policy_cases[] = {
#define OKP(sz)		{ sz, 0, MMK_OK, 0, 0 }
#define LCP(sz)		{ sz, MMK_QOS_LATENCY_CRITICAL, MMK_OK, 0, 0 }
#define FULLP(sz)	{ sz, 0, MMK_E_QUEUE_FULL, 0, 0 }
#define DROPP(sz)	{ sz, 0, MMK_OK, 1, 0 }
#define EVICTP(sz, n)	{ sz, 0, MMK_OK, 0, n }
	{ "reject at soft", { .policy = MMK_POLICY_REJECT, .cap_items = 3, .soft_items = 2 },
	  { OKP(1), OKP(1), FULLP(1), FULLP(1) }, { 0, 1, -1 }, 2, { 0 } },
	{ "reject at hard", { .policy = MMK_POLICY_REJECT, .cap_items = 2 },
	  { OKP(1), OKP(1), FULLP(1) }, { 0, 1, -1 }, 1, { 0 } },
	{ "drop newest", { .policy = MMK_POLICY_DROP_NEWEST, .cap_items = 3, .soft_items = 2 },
	  { OKP(1), OKP(1), DROPP(1), DROPP(1) }, { 0, 1, -1 }, 0, { 2, 0, 0, 0 } },
	{ "drop oldest between", { .policy = MMK_POLICY_DROP_OLDEST, .cap_items = 4, .soft_items = 2 },
	  { OKP(1), OKP(1), EVICTP(1, 1), EVICTP(1, 1) }, { 2, 3, -1 }, 0, { 0, 2, 0, 0 } },
	{ "drop oldest hard", { .policy = MMK_POLICY_DROP_OLDEST, .cap_items = 2 },
	  { OKP(1), OKP(1), EVICTP(1, 1), EVICTP(1, 1) }, { 2, 3, -1 }, 0, { 0, 2, 0, 0 } },
	{ "block", { .policy = MMK_POLICY_BLOCK, .cap_items = 2, .soft_items = 1 },
	  { OKP(1), FULLP(1), FULLP(1) }, { 0, -1 }, 2, { 0 } },
	{ "qos between", { .policy = MMK_POLICY_QOS, .cap_items = 3, .soft_items = 1 },
	  { OKP(1), DROPP(1), LCP(1), LCP(1), { 1, MMK_QOS_LATENCY_CRITICAL, MMK_E_QUEUE_FULL, 0, 0 } },
	  { 0, 2, 3, -1 }, 1, { 0, 0, 1, 0 } },
	{ "bytes reject", { .policy = MMK_POLICY_REJECT, .cap_items = 8, .cap_bytes = 100,
			    .soft_bytes = 50 },
	  { OKP(40), OKP(40), FULLP(1), FULLP(0) }, { 0, 1, -1 }, 2, { 0 } },
	{ "bytes below soft takes anything", { .policy = MMK_POLICY_REJECT, .cap_items = 8,
					       .cap_bytes = 100 },
	  { OKP(99), OKP(200), FULLP(1) }, { 0, 1, -1 }, 1, { 0 } },
	{ "bytes too large at hard", { .policy = MMK_POLICY_DROP_OLDEST, .cap_items = 8,
				       .cap_bytes = 100 },
	  { OKP(100), FULLP(101), EVICTP(100, 1), EVICTP(10, 1), OKP(10) }, { 3, 4, -1 },
	  1, { 0, 2, 0, 0 } },
	{ "bytes drop oldest until below hard", { .policy = MMK_POLICY_DROP_OLDEST, .cap_items = 8,
						  .cap_bytes = 100, .soft_bytes = 100 },
	  { OKP(30), OKP(30), OKP(30), OKP(30), EVICTP(50, 1), EVICTP(70, 2) }, { 3, 4, 5, -1 }, 0,
	  { 0, 3, 0, 0 } },
	{ "bytes drop newest", { .policy = MMK_POLICY_DROP_NEWEST, .cap_items = 8, .cap_bytes = 64,
				 .soft_bytes = 32 },
	  { OKP(40), DROPP(1), DROPP(64), DROPP(65) }, { 0, -1 }, 0, { 3, 0, 0, 0 } },
	{ "bytes drop newest at hard", { .policy = MMK_POLICY_DROP_NEWEST, .cap_items = 8,
					 .cap_bytes = 64 },
	  { OKP(64), DROPP(64), FULLP(65) }, { 0, -1 }, 1, { 1, 0, 0, 0 } },
	{ "qos at hard", { .policy = MMK_POLICY_QOS, .cap_items = 8, .cap_bytes = 10 },
	  { LCP(10), { 1, MMK_QOS_LATENCY_CRITICAL, MMK_E_QUEUE_FULL, 0, 0 }, FULLP(1) },
	  { 0, -1 }, 2, { 0 } },
#undef OKP
#undef LCP
#undef FULLP
#undef DROPP
#undef EVICTP
};

/* One case of policy_cases on a new queue @q. */
static void policy_case_run(struct ctx *c, struct mmk_manager *m, struct mmk_queue *q,
			    const struct policy_case *pc)
{
	unsigned char pay[PAYLOAD] = { 0 };
	uint64_t t[QP_MAX] = { 0 };
	struct mmk_queue_stats st;
	struct mmk_queue_entry e;
	size_t n;

	for (int i = 0; i < QP_MAX && pc->p[i].size + pc->p[i].qos + pc->p[i].err; i++) {
		const struct qpush *p = &pc->p[i];
		struct mmk_header h = { .qos = p->qos, .sequence = (uint64_t)i };
		struct mmk_push_outcome o;
		enum mmk_error err;

		CHECK_OK(c, mmk_store(m, &h, pay, p->size, &t[i]));
		err = mmk_queue_try_push(q, t[i], &o);
		if (err != p->err || o.dropped != p->dropped || o.evicted != p->evicted) {
			FAIL(c, "%s: push %d: %s dropped %u evicted %u, expected %s %u %u",
			     pc->name, i, mmk_error_name(err), o.dropped, o.evicted,
			     mmk_error_name(p->err), p->dropped, p->evicted);
			if (err)	/* still ours: the leak check stays meaningful */
				(void)mmk_free(m, t[i]);
			return;
		}
		/* Refused: the caller's still.  Dropped: freed already. */
		if (err)
			CHECK_OK(c, mmk_free(m, t[i]));
		else if (o.dropped)
			CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t[i]));
	}
	for (n = 0; pc->left[n] >= 0; n++) {
		CHECK_OK(c, mmk_queue_try_peek_at(q, n, &e));
		if (e.token != t[pc->left[n]]) {
			FAIL(c, "%s: entry %zu is not push %d", pc->name, n, pc->left[n]);
			return;
		}
	}
	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_peek_at(q, n, &e));
	CHECK_OK(c, mmk_queue_stats(q, &st));
	CHECK(c, st.occupancy.items == n && st.pushes >= n && st.rejected == pc->rejected);
	if (memcmp(st.drops, pc->drops, sizeof(st.drops)))
		FAIL(c, "%s: drops %llu %llu %llu %llu", pc->name,
		     (unsigned long long)st.drops[0], (unsigned long long)st.drops[1],
		     (unsigned long long)st.drops[2], (unsigned long long)st.drops[3]);
}

/* Every case runs, so that a failure shows every case that differs. */
static void t_queue_policies(struct ctx *c)
{
	for (size_t k = 0; k < sizeof(policy_cases) / sizeof(policy_cases[0]); k++) {
		struct mmk_manager *m = pool(c);
		struct mmk_queue *q;

		CHECK(c, m);
		CHECK_OK(c, queue_make(m, policy_cases[k].a, &q));
		policy_case_run(c, m, q, &policy_cases[k]);
		/* Closing the queue frees what it held: the pool is empty again. */
		mmk_queue_close(q);
		if (mmk_available(m) != CAPACITY)
			FAIL(c, "%s: %zu slots free after close", policy_cases[k].name,
			     mmk_available(m));
		untrack(c, m);
		mmk_close(m);
	}
}

/* The watermark follows items and bytes. */
static void t_queue_watermarks(struct ctx *c)
{
	static const struct {
		uint32_t size;
		enum mmk_watermark wm;
	} steps[] = {
		{ 10, MMK_WATERMARK_BELOW_SOFT },
		{ 10, MMK_WATERMARK_BETWEEN },		/* 2 items: the item soft cap */
		{ 10, MMK_WATERMARK_BETWEEN },
		{ 10, MMK_WATERMARK_AT_HARD },		/* 4 items */
	};
	struct mmk_queue_attr a = { .policy = MMK_POLICY_QOS, .cap_items = 4, .soft_items = 2,
				    .cap_bytes = 1000, .soft_bytes = 500 };
	struct mmk_header lc = { .qos = MMK_QOS_LATENCY_CRITICAL };
	POOL(c, m);
	struct mmk_queue_stats st;
	struct mmk_read_guard g;
	struct mmk_queue *q, *qb;
	uint64_t t;

	CHECK_OK(c, queue_make(m, a, &q));
	CHECK(c, occ(q).watermark == MMK_WATERMARK_BELOW_SOFT);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECK_OK(c, mmk_queue_store_push(q, &lc, "0123456789", steps[i].size, &t, NULL));
		CHECK(c, occ(q).watermark == steps[i].wm);
	}
	CHECK_OK(c, mmk_queue_try_pop(q, &g));
	CHECK_OK(c, mmk_read_release(&g));
	CHECK(c, occ(q).watermark == MMK_WATERMARK_BETWEEN && occ(q).items == 3);
	CHECK_OK(c, mmk_queue_stats(q, &st));
	CHECK(c, st.high_items == 4 && st.pushes == 4 && st.pops == 1 && st.cap_items == 4);
	CHECK(c, st.soft_items == 2 && st.cap_bytes == 1000 && st.soft_bytes == 500);
	CHECK(c, st.policy == MMK_POLICY_QOS && st.name[0] == 0);

	/* In bytes: soft caps of 0 are the hard caps. */
	a = (struct mmk_queue_attr){ .policy = MMK_POLICY_REJECT, .cap_items = 8, .cap_bytes = 200 };
	CHECK_OK(c, queue_make(m, a, &qb));
	CHECK_OK(c, mmk_queue_stats(qb, &st));
	CHECK(c, st.soft_items == 8 && st.soft_bytes == 200);
	CHECK_OK(c, mmk_queue_store_push(qb, NULL, NULL, 0, &t, NULL));
	CHECK(c, occ(qb).watermark == MMK_WATERMARK_BELOW_SOFT);
	CHECK_OK(c, store_pattern(m, 1, 200, &t));
	CHECK_OK(c, mmk_queue_try_push(qb, t, NULL));
	CHECK(c, occ(qb).watermark == MMK_WATERMARK_AT_HARD && occ(qb).bytes == 200);
}

/* One message in three queues; freed when the last consumer lets go. */
static void t_queue_fanout(struct ctx *c)
{
	static const int orders[][3] = {
		{ 0, 1, 2 }, { 2, 1, 0 }, { 1, 0, 2 },
	};
	POOL(c, m);
	QUEUE(c, m, q0, MMK_POLICY_REJECT, 4, 0);
	QUEUE(c, m, q1, MMK_POLICY_DROP_NEWEST, 1, 0);
	QUEUE(c, m, q2, MMK_POLICY_REJECT, 1, 0);
	struct mmk_queue *qs[3] = { q0, q1, q2 }, *dup[2] = { q0, q0 };
	struct mmk_push_outcome o;
	struct mmk_read_guard g[3];
	uint64_t t, u;

	for (size_t k = 0; k < sizeof(orders) / sizeof(orders[0]); k++) {
		CHECK_OK(c, store_pattern(m, k, 16, &t));
		CHECK_OK(c, mmk_queue_try_push_many(qs, 3, t, &o));
		CHECK(c, o.dropped == 0 && o.evicted == 0);
		CHECK_ERR(c, MMK_E_QUEUE_OWNED, mmk_queue_try_push_many(qs + 1, 1, t, &o));
		for (int i = 0; i < 3; i++) {
			CHECK_OK(c, mmk_queue_try_pop(qs[i], &g[i]));
			CHECK(c, g[i].msg == g[0].msg && pattern_ok(g[i].msg, k, 16));
		}
		for (int i = 0; i < 3; i++) {
			CHECK(c, mmk_available(m) == CAPACITY - 1);
			CHECK_OK(c, mmk_read_release(&g[orders[k][i]]));
		}
		CHECK(c, mmk_available(m) == CAPACITY);
	}

	/* All or nothing: q2 full refuses, q0 and q1 take nothing. */
	CHECK_OK(c, store_pattern(m, 7, 1, &u));
	CHECK_OK(c, mmk_queue_try_push(q2, u, NULL));
	CHECK_OK(c, store_pattern(m, 8, 1, &t));
	CHECK_ERR(c, MMK_E_QUEUE_FULL, mmk_queue_try_push_many(qs, 3, t, &o));
	CHECK(c, occ(q0).items == 0 && occ(q1).items == 0 && o.dropped == 0);
	CHECK_OK(c, mmk_free(m, t));
	/* A drop in one queue is a success: bit 1 is q1. */
	CHECK_OK(c, store_pattern(m, 9, 1, &t));
	CHECK_OK(c, mmk_queue_try_push(q1, t, NULL));
	CHECK_OK(c, store_pattern(m, 10, 1, &t));
	CHECK_OK(c, mmk_queue_try_push_many(qs, 2, t, &o));
	CHECK(c, o.dropped == 2 && occ(q0).items == 1 && occ(q1).items == 1);

	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_push_many(dup, 2, t, &o));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_push_many(qs, 0, t, &o));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_push_many(qs, MMK_PUSH_MAX_QUEUES + 1, t, &o));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_push_many(NULL, 1, t, &o));
}

/* Store-and-push: nothing stored when refused; a dropped message is freed. */
static void t_queue_store_push(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 1, 0);
	QUEUE(c, m, qd, MMK_POLICY_DROP_NEWEST, 1, 0);
	unsigned char big[PAYLOAD + 1] = { 0 };
	struct mmk_header bad = { .reserved0 = 1 };
	struct mmk_push_outcome o;
	struct mmk_read_guard g;
	uint64_t t, t2;
	uint32_t gen1;

	CHECK_OK(c, mmk_queue_store_push(q, NULL, "abc", 3, &t, &o));
	gen1 = tok_gen(t);	/* a slot's first store: pools may start anywhere */
	CHECK_OK(c, mmk_queue_try_pop(q, &g));
	CHECK(c, g.token == t && g.msg->header.payload_size == 3 && !memcmp(g.msg->payload, "abc", 3));
	CHECK(c, g.msg->header.qos == MMK_QOS_BEST_EFFORT);
	CHECK_OK(c, mmk_read_release(&g));
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "abc", 3, &t, &o));
	CHECK_ERR(c, MMK_E_QUEUE_FULL, mmk_queue_store_push(q, NULL, "def", 3, &t2, &o));
	CHECK(c, t2 == MMK_TOKEN_INVALID && mmk_available(m) == CAPACITY - 1);
	/* No generation was used: the next store of that slot is its first. */
	CHECK_OK(c, store_pattern(m, 1, 1, &t2));
	CHECK(c, tok_index(t2) == 1 && tok_gen(t2) == gen1);
	CHECK_OK(c, mmk_free(m, t2));

	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_store_push(q, NULL, NULL, 3, &t2, &o));
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_queue_store_push(q, NULL, big, sizeof(big), &t2, &o));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_store_push(q, &bad, big, 1, &t2, &o));
	CHECK(c, t2 == MMK_TOKEN_INVALID);

	CHECK_OK(c, mmk_queue_store_push(qd, NULL, "x", 1, &t2, &o));
	CHECK_OK(c, mmk_queue_store_push(qd, NULL, "y", 1, &t2, &o));
	CHECK(c, o.dropped == 1 && t2 != MMK_TOKEN_INVALID);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t2));
	CHECK(c, mmk_available(m) == CAPACITY - 2);

	/* Full pool before full queue. */
	for (int i = 0; mmk_available(m); i++)
		CHECK_OK(c, store_pattern(m, 1, 1, &t2));
	CHECK_ERR(c, MMK_E_NO_FREE_SLOTS, mmk_queue_store_push(q, NULL, "z", 1, &t2, &o));
}

/* Commit-and-push: a loan or write guard published into a queue. */
static void t_queue_commit_push(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 1, 0);
	struct mmk_write_guard w, w2;
	struct mmk_push_outcome o;
	struct mmk_read_guard g;
	uint64_t t;

	CHECK_OK(c, mmk_loan(m, &w));
	memcpy(w.msg->payload, "loaned", 6);
	w.msg->header.payload_size = 6;
	w.msg->header.sequence = 77;
	t = w.token;
	CHECK_OK(c, mmk_queue_commit_push(q, &w, &o));
	CHECK(c, !w.owner && !w.msg);
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_commit_push(q, &w, &o));
	CHECK_ERR(c, MMK_E_QUEUE_OWNED, mmk_free(m, t));

	/* Refused: the guard is still held, the message checked in place. */
	CHECK_OK(c, mmk_loan(m, &w2));
	w2.msg->header.payload_size = PAYLOAD + 1;
	CHECK_ERR(c, MMK_E_TOO_LARGE, mmk_queue_commit_push(q, &w2, &o));
	w2.msg->header.payload_size = 2;
	w2.msg->header.flags = 0x100;
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_commit_push(q, &w2, &o));
	w2.msg->header.flags = 0;
	memcpy(w2.msg->payload, "hi", 2);
	CHECK_ERR(c, MMK_E_QUEUE_FULL, mmk_queue_commit_push(q, &w2, &o));
	CHECK(c, w2.owner == m);

	CHECK_OK(c, mmk_queue_try_pop(q, &g));
	CHECK(c, g.token == t && g.msg->header.sequence == 77 && !memcmp(g.msg->payload, "loaned", 6));
	CHECK_OK(c, mmk_read_release(&g));
	CHECK_OK(c, mmk_queue_commit_push(q, &w2, &o));
	CHECK_OK(c, mmk_queue_try_pop(q, &g));
	CHECK(c, g.msg->header.payload_size == 2 && !memcmp(g.msg->payload, "hi", 2));
	CHECK_OK(c, mmk_read_release(&g));
	CHECK(c, mmk_available(m) == CAPACITY);

	/* A guard from mmk_read_mut. */
	CHECK_OK(c, store_pattern(m, 4, 4, &t));
	CHECK_OK(c, mmk_read_mut(m, t, &w));
	w.msg->payload[0] = 0xee;
	CHECK_OK(c, mmk_queue_commit_push(q, &w, &o));
	CHECK_OK(c, mmk_queue_try_pop(q, &g));
	CHECK(c, g.msg->payload[0] == 0xee && g.msg->payload[1] == (unsigned char)(4 * 31 + 1));
	CHECK_OK(c, mmk_read_release(&g));
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t));
}

/* Write pops: only the sole holder. */
static void t_queue_pop_write(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 4, 0);
	QUEUE(c, m, q2, MMK_POLICY_REJECT, 4, 0);
	struct mmk_queue *both[2] = { q, q2 };
	struct mmk_write_guard w;
	struct mmk_read_guard r, g;
	uint64_t t;

	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_pop_write(q, &w));
	CHECK(c, !w.owner && w.token == MMK_TOKEN_INVALID);
	CHECK_OK(c, store_pattern(m, 5, 5, &t));
	CHECK_OK(c, mmk_queue_try_push_many(both, 2, t, NULL));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_queue_try_pop_write(q, &w));
	CHECK(c, occ(q).items == 1);
	CHECK_OK(c, mmk_queue_try_pop(q2, &r));
	CHECK_ERR(c, MMK_E_ALREADY_BORROWED, mmk_queue_try_pop_write(q, &w));
	CHECK_OK(c, mmk_read_release(&r));
	CHECK_OK(c, mmk_queue_try_pop_write(q, &w));
	CHECK(c, w.token == t && w.owner == m && pattern_ok(w.msg, 5, 5));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	/* Changed and forwarded. */
	w.msg->payload[0] = 0x42;
	CHECK_OK(c, mmk_queue_commit_push(q2, &w, NULL));
	CHECK_OK(c, mmk_queue_try_pop(q2, &g));
	CHECK(c, g.msg->payload[0] == 0x42);
	CHECK_OK(c, mmk_read_release(&g));
	CHECK(c, mmk_available(m) == CAPACITY);
	/* Released: freed, changed or not. */
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "a", 1, &t, NULL));
	CHECK_OK(c, mmk_queue_try_pop_write(q, &w));
	CHECK_OK(c, mmk_write_release(&w));
	CHECK(c, mmk_available(m) == CAPACITY);
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "a", 1, &t, NULL));
	CHECK_OK(c, mmk_queue_try_pop_write(q, &w));
	CHECK_OK(c, mmk_write_cancel(&w));
	CHECK(c, mmk_available(m) == CAPACITY);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t));
}

/* Pop of up to N. */
static void t_queue_pop_batch(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 8, 0);
	struct mmk_read_guard g[10];
	uint64_t t[5];
	size_t n = 9;

	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_pop_batch(q, g, 3, &n));
	CHECK(c, n == 0 && !g[0].owner);
	for (int i = 0; i < 5; i++)
		CHECK_OK(c, mmk_queue_store_push(q, NULL, &i, sizeof(i), &t[i], NULL));
	CHECK_OK(c, mmk_queue_try_pop_batch(q, g, 3, &n));
	CHECK(c, n == 3);
	CHECK_OK(c, mmk_queue_try_pop_batch(q, g + 3, 7, &n));
	CHECK(c, n == 2 && !g[5].owner && !g[9].owner);
	for (int i = 0; i < 5; i++) {
		CHECK(c, g[i].token == t[i] && g[i].owner == m && !memcmp(g[i].msg->payload, &i, sizeof(i)));
		CHECK_OK(c, mmk_read_release(&g[i]));
	}
	CHECK(c, mmk_available(m) == CAPACITY);
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_pop_batch(q, g, 0, &n));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_pop_batch(q, NULL, 1, &n));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_pop_batch(q, g, 1, NULL));
}

/* Peek takes nothing; past the end is QUEUE_EMPTY. */
static void t_queue_peek(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 8, 0);
	struct mmk_header h = { .qos = MMK_QOS_LATENCY_CRITICAL, .flags = MMK_MSG_HAS_DEADLINE,
				.deadline_ns = 123456789 };
	struct mmk_queue_entry e;
	uint64_t t0, t1;

	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_peek(q, &e));
	CHECK(c, e.token == MMK_TOKEN_INVALID && !e.msg);
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "abcd", 4, &t0, NULL));
	CHECK_OK(c, mmk_queue_store_push(q, &h, "xy", 2, &t1, NULL));
	CHECK_OK(c, mmk_queue_try_peek(q, &e));
	CHECK(c, e.token == t0 && e.payload_size == 4 && e.qos == MMK_QOS_BEST_EFFORT);
	CHECK(c, e.flags == 0 && e.deadline_ns == 0 && !memcmp(e.msg->payload, "abcd", 4));
	CHECK_OK(c, mmk_queue_try_peek_at(q, 1, &e));
	CHECK(c, e.token == t1 && e.payload_size == 2 && e.qos == MMK_QOS_LATENCY_CRITICAL);
	CHECK(c, e.flags == MMK_MSG_HAS_DEADLINE && e.deadline_ns == 123456789);
	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_peek_at(q, 2, &e));
	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_peek_at(q, SIZE_MAX, &e));
	CHECK_ERR(c, MMK_E_QUEUE_OWNED, mmk_free(m, t0));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_peek(q, NULL));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_peek(NULL, &e));
	CHECK(c, occ(q).items == 2);
}

/* QoS queues drop expired messages at pop. */
static void t_queue_qos_deadline(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_QOS, 8, 0);
	QUEUE(c, m, r, MMK_POLICY_REJECT, 8, 0);
	struct mmk_header past = { .flags = MMK_MSG_HAS_DEADLINE, .deadline_ns = 1 };
	struct mmk_header future = { .flags = MMK_MSG_HAS_DEADLINE, .deadline_ns = UINT64_MAX / 2 };
	struct mmk_queue_stats st;
	struct mmk_read_guard g;
	uint64_t t0, t1, t2, t3;

	CHECK_OK(c, mmk_queue_store_push(q, &past, "a", 1, &t0, NULL));
	CHECK_OK(c, mmk_queue_store_push(q, &past, "b", 1, &t1, NULL));
	CHECK_OK(c, mmk_queue_store_push(q, &future, "c", 1, &t2, NULL));
	CHECK_OK(c, mmk_queue_store_push(q, &past, "d", 1, &t3, NULL));
	/* Peek does not drop. */
	CHECK(c, occ(q).items == 4);
	CHECK_OK(c, mmk_queue_try_pop(q, &g));
	CHECK(c, g.token == t2);
	CHECK_OK(c, mmk_read_release(&g));
	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_try_pop(q, &g));
	CHECK_OK(c, mmk_queue_stats(q, &st));
	CHECK(c, st.drops[MMK_DROP_DEADLINE] == 3 && st.pops == 1 && st.pushes == 4);
	CHECK(c, mmk_available(m) == CAPACITY);
	/* Other policies deliver late messages. */
	CHECK_OK(c, mmk_queue_store_push(r, &past, "e", 1, &t0, NULL));
	CHECK_OK(c, mmk_queue_try_pop(r, &g));
	CHECK_OK(c, mmk_read_release(&g));
}

/* Closing a queue releases its messages; guards keep theirs alive. */
static void t_queue_close_releases(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 8, 0);
	QUEUE(c, m, keep, MMK_POLICY_REJECT, 8, 0);
	struct mmk_queue *both[2] = { q, keep };
	struct mmk_read_guard g;
	uint64_t t0, t1, t2;

	CHECK_OK(c, mmk_queue_store_push(q, NULL, "a", 1, &t0, NULL));
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "b", 1, &t1, NULL));
	CHECK_OK(c, store_pattern(m, 3, 3, &t2));
	CHECK_OK(c, mmk_queue_try_push_many(both, 2, t2, NULL));
	CHECK_OK(c, mmk_read(m, t1, &g));
	CHECK(c, mmk_available(m) == CAPACITY - 3);
	mmk_queue_close(q);
	CHECK(c, mmk_available(m) == CAPACITY - 2);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t0));
	CHECK_ERR(c, MMK_E_QUEUE_OWNED, mmk_free(m, t2));
	CHECK_OK(c, mmk_read_release(&g));
	CHECK(c, mmk_available(m) == CAPACITY - 1);
	mmk_queue_close(keep);
	CHECK(c, mmk_available(m) == CAPACITY);
}

/* Named queues: each open is a handle on the same queue. */
static void t_queue_named(struct ctx *c)
{
	struct mmk_queue_attr a = { .name = "frames", .cap_items = 4 };
	POOL(c, m);
	struct mmk_queue *q, *q2, *dup;
	struct mmk_queue_stats st;
	struct mmk_read_guard g;
	uint64_t t;

	CHECK_OK(c, queue_make(m, a, &q));
	errno = 0;
	CHECK_ERR(c, MMK_E_SYSTEM, queue_make(m, a, &dup));
	CHECK(c, errno == EEXIST && !dup);
	errno = 0;
	CHECK_ERR(c, MMK_E_SYSTEM, mmk_queue_open(m, "nothing", &q2));
	CHECK(c, errno == ENOENT);
	CHECK_OK(c, mmk_queue_open(m, "frames", &q2));
	CHECK(c, q2 != q);
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "n", 1, &t, NULL));
	CHECK(c, occ(q2).items == 1);
	CHECK_OK(c, mmk_queue_stats(q2, &st));
	CHECK(c, !strcmp(st.name, "frames"));
	/* The queue lives while a handle does. */
	mmk_queue_close(q);
	CHECK(c, mmk_available(m) == CAPACITY - 1);
	CHECK_OK(c, mmk_queue_try_pop(q2, &g));
	CHECK(c, g.token == t);
	CHECK_OK(c, mmk_read_release(&g));
	CHECK_OK(c, mmk_queue_store_push(q2, NULL, "n", 1, &t, NULL));
	mmk_queue_close(q2);
	CHECK(c, mmk_available(m) == CAPACITY);
	/* Gone with its last handle: the name is free again. */
	CHECK_OK(c, queue_make(m, a, &q));
}

/* Waits return at once on heap and static, after the timeout on the kernel. */
static void t_queue_waits(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_BLOCK, 2, 1);
	struct mmk_push_outcome o;
	struct mmk_read_guard g;
	uint64_t t0, t1;

	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_queue_pop_wait(q, 1000000, &g));
	CHECK_OK(c, store_pattern(m, 1, 1, &t0));
	CHECK_OK(c, store_pattern(m, 2, 1, &t1));
	CHECK_OK(c, mmk_queue_push_wait(q, t0, 1000000, &o));
	CHECK_ERR(c, MMK_E_QUEUE_FULL, mmk_queue_push_wait(q, t1, 1000000, &o));
	CHECK_ERR(c, MMK_E_QUEUE_FULL, mmk_queue_try_push(q, t1, &o));
	CHECK_OK(c, mmk_queue_pop_wait(q, 1000000, &g));
	CHECK(c, g.token == t0);
	CHECK_OK(c, mmk_queue_push_wait(q, t1, 1000000, &o));
	CHECK_OK(c, mmk_read_release(&g));
}

/* A three-stage chain forwards one message with no copy. */
static void t_queue_chain(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, a, MMK_POLICY_REJECT, 4, 0);
	QUEUE(c, m, b, MMK_POLICY_REJECT, 4, 0);
	QUEUE(c, m, d, MMK_POLICY_REJECT, 4, 0);
	struct mmk_queue *stages[] = { a, b, d };
	const struct mmk_message *where = NULL;
	struct mmk_read_guard g;
	uint64_t t;

	CHECK_OK(c, store_pattern(m, 33, 100, &t));
	CHECK_OK(c, mmk_queue_try_push(a, t, NULL));
	for (int i = 0; i < 3; i++) {
		CHECK_OK(c, mmk_queue_try_pop(stages[i], &g));
		CHECK(c, g.token == t && pattern_ok(g.msg, 33, 100));
		CHECK(c, !where || where == g.msg);
		where = g.msg;
		if (i < 2)
			CHECK_OK(c, mmk_queue_try_push(stages[i + 1], t, NULL));
		CHECK_OK(c, mmk_read_release(&g));
		CHECK(c, mmk_available(m) == CAPACITY - (i < 2));
	}
}

/* Release, push and pop in one batch. */
static void t_queue_batch(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, in, MMK_POLICY_REJECT, 4, 0);
	QUEUE(c, m, out, MMK_POLICY_DROP_NEWEST, 1, 0);
	struct mmk_write_guard w, pw;
	struct mmk_batch_op ops[6];
	size_t done;
	uint64_t t0, t1;

	CHECK_OK(c, mmk_queue_store_push(in, NULL, "one", 3, &t0, NULL));
	CHECK_OK(c, mmk_queue_store_push(in, NULL, "two", 3, &t1, NULL));
	memset(ops, 0, sizeof(ops));
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_POP, .queue = in, .wait = true,
					.timeout_ns = 1000 };
	CHECK_OK(c, mmk_batch(m, ops, 1, &done));
	CHECK(c, ops[0].token == t0 && ops[0].msg && !memcmp(ops[0].msg->payload, "one", 3));
	/* The consumer's hop: forward, release, pop the next. */
	ops[1] = (struct mmk_batch_op){ .op = MMK_OP_PUSH, .queue = out, .token = t0 };
	ops[2] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE, .token = t0 };
	ops[3] = (struct mmk_batch_op){ .op = MMK_OP_POP, .queue = in };
	ops[4] = (struct mmk_batch_op){ .op = MMK_OP_STORE_PUSH, .queue = out, .payload = "x",
					.payload_size = 1 };
	ops[5] = (struct mmk_batch_op){ .op = MMK_OP_POP, .queue = in };
	CHECK_ERR(c, MMK_E_QUEUE_EMPTY, mmk_batch(m, ops + 1, 5, &done));
	CHECK(c, done == 4 && ops[3].token == t1 && ops[4].outcome.dropped == 1);
	CHECK(c, ops[5].result == MMK_E_QUEUE_EMPTY && ops[5].token == MMK_TOKEN_INVALID);
	CHECK(c, ops[4].token != MMK_TOKEN_INVALID && ops[1].outcome.dropped == 0);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, ops[4].token));
	CHECK(c, mmk_available(m) == CAPACITY - 2);

	/* Commit-push and write pop. */
	CHECK_OK(c, mmk_loan(m, &w));
	w.msg->header.payload_size = 1;
	w.msg->payload[0] = 'w';
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE, .token = t1 };
	ops[1] = (struct mmk_batch_op){ .op = MMK_OP_POP, .queue = out };
	ops[2] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE, .token = t0 };
	ops[3] = (struct mmk_batch_op){ .op = MMK_OP_COMMIT_PUSH, .queue = in, .guard = &w };
	ops[4] = (struct mmk_batch_op){ .op = MMK_OP_POP_WRITE, .queue = in, .guard = &pw };
	CHECK_OK(c, mmk_batch(m, ops, 5, &done));
	CHECK(c, done == 5 && ops[1].token == t0 && !w.owner);
	CHECK(c, pw.owner == m && pw.msg->payload[0] == 'w' && pw.msg->header.payload_size == 1);
	CHECK_OK(c, mmk_write_release(&pw));
	CHECK(c, mmk_available(m) == CAPACITY);

	/* A producer's hop: loan, then publish it into a queue, or not. */
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_LOAN, .guard = &w };
	ops[1] = (struct mmk_batch_op){ .op = MMK_OP_LOAN, .guard = &pw };
	CHECK_OK(c, mmk_batch(m, ops, 2, &done));
	CHECK(c, w.owner == m && pw.owner == m && ops[0].token == w.token && w.msg);
	CHECK(c, w.msg->header.payload_size == 0 && mmk_available(m) == CAPACITY - 2);
	memcpy(w.msg->payload, "loan", 4);
	w.msg->header.payload_size = 4;
	pw.msg->header.payload_size = 1;
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_COMMIT_PUSH, .queue = in, .guard = &w };
	ops[1] = (struct mmk_batch_op){ .op = MMK_OP_WRITE_CANCEL, .guard = &pw };
	ops[2] = (struct mmk_batch_op){ .op = MMK_OP_POP_WRITE, .queue = in, .guard = &w };
	ops[3] = (struct mmk_batch_op){ .op = MMK_OP_WRITE_RELEASE, .guard = &w };
	ops[4] = (struct mmk_batch_op){ .op = MMK_OP_WRITE_RELEASE, .guard = &w };
	CHECK_ERR(c, MMK_E_INVALID, mmk_batch(m, ops, 5, &done));
	CHECK(c, done == 4 && !pw.owner && !w.owner && mmk_available(m) == CAPACITY);
	CHECK(c, ops[2].result == MMK_OK && ops[4].result == MMK_E_INVALID);

	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_PUSH, .token = t0 };
	CHECK_ERR(c, MMK_E_INVALID, mmk_batch(m, ops, 1, &done));
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_LOAN };
	CHECK_ERR(c, MMK_E_INVALID, mmk_batch(m, ops, 1, &done));
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_POP_WRITE, .queue = in };
	CHECK_ERR(c, MMK_E_INVALID, mmk_batch(m, ops, 1, &done));
	/* t0's slot was taken again by a loan: the token is stale. */
	ops[0] = (struct mmk_batch_op){ .op = MMK_OP_PUSH, .queue = in, .token = t0 };
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_batch(m, ops, 1, &done));
}

/* Queues of another manager are refused; the limits. */
static void t_queue_foreign_and_limits(struct ctx *c)
{
	struct mmk_config cfg = config(CAPACITY, PAYLOAD);
	struct mmk_manager *m2;
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 4, 0);
	struct mmk_queue *mixed[2], *h[MMK_QUEUE_HANDLES_MAX + 1];
	struct mmk_queue_attr a = { .name = "h", .cap_items = 1 };
	struct mmk_write_guard w;
	uint64_t t, t2;
	int n;

	CHECK_OK(c, make(c, &cfg, &m2));
	QUEUE(c, m2, q2, MMK_POLICY_REJECT, 4, 0);
	CHECK_OK(c, store_pattern(m, 1, 1, &t));
	CHECK_OK(c, store_pattern(m2, 1, 1, &t2));
	mixed[0] = q;
	mixed[1] = q2;
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_try_push_many(mixed, 2, t, NULL));
	CHECK_ERR(c, MMK_E_BAD_TOKEN, mmk_queue_try_push(q, t2, NULL));
	CHECK_OK(c, mmk_read_mut(m2, t2, &w));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_commit_push(q, &w, NULL));
	CHECK_OK(c, mmk_write_release(&w));

	if (c->backend == MMK_BACKEND_STATIC)
		return;		/* one storage per queue: see t_queue_static_storage */
	CHECK_OK(c, mmk_queue_create(m, &a, &h[0]));
	for (n = 1; n < MMK_QUEUE_HANDLES_MAX; n++)
		CHECK_OK(c, mmk_queue_open(m, "h", &h[n]));
	if (c->backend == MMK_BACKEND_HEAP)
		CHECK_ERR(c, MMK_E_LIMIT, mmk_queue_open(m, "h", &h[n]));
	for (n = 2; n < MMK_QUEUES_MAX; n++) {
		struct mmk_queue *x;

		a.name = NULL;
		CHECK_OK(c, mmk_queue_create(m, &a, &x));
	}
	a.name = NULL;
	CHECK_ERR(c, MMK_E_LIMIT, mmk_queue_create(m, &a, &h[0]));
}

/* Static queues use the storage they are given, and nothing else. */
static MMK_QUEUE_STORAGE(qst_small, 2);

static void t_queue_static_storage(struct ctx *c)
{
	struct mmk_queue_attr a = { .cap_items = 2, .storage = MMK_QUEUE_STATIC(qst_small) };
	POOL(c, m);
	struct mmk_queue *q, *q2;
	uint64_t t;

	a.storage = NULL;
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_create(m, &a, &q));
	a.storage = MMK_QUEUE_STATIC(qst_small);
	a.cap_items = 3;
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_create(m, &a, &q));
	a.cap_items = 2;
	CHECK_OK(c, mmk_queue_create(m, &a, &q));
	CHECK_ERR(c, MMK_E_INVALID, mmk_queue_create(m, &a, &q2));
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "s", 1, &t, NULL));
	mmk_queue_close(q);
	CHECK(c, mmk_available(m) == CAPACITY);
	CHECK_OK(c, mmk_queue_create(m, &a, &q));
	CHECK(c, occ(q).items == 0);
	/* Left open: mmk_close frees the storage. */
}

/* The queue descriptor polls: EPOLLIN with a message, EPOLLOUT below soft. */
static void t_kernel_queue_poll(struct ctx *c)
{
	POOL(c, m);
	QUEUE(c, m, q, MMK_POLICY_REJECT, 2, 1);
	struct pollfd p = { .fd = mmk_queue_fd(q), .events = POLLIN | POLLOUT };
	struct mmk_read_guard g;
	uint64_t t;

	CHECK(c, p.fd >= 0);
	CHECK(c, poll(&p, 1, 0) == 1 && p.revents == POLLOUT);
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "p", 1, &t, NULL));
	CHECK(c, poll(&p, 1, 0) == 1 && p.revents == POLLIN);
	CHECK_OK(c, mmk_queue_try_pop(q, &g));
	CHECK(c, poll(&p, 1, 0) == 1 && p.revents == POLLOUT);
	CHECK_OK(c, mmk_read_release(&g));
}

/* Another session of the pool opens the queue by name and pops. */
static void t_kernel_queue_across_sessions(struct ctx *c)
{
	char name[64];
	struct mmk_manager *m = named_pool(c, name, sizeof(name)), *m2;
	struct mmk_queue_attr a = { .name = "shared", .cap_items = 4 };
	struct mmk_queue *q, *q2;
	struct mmk_read_guard g;
	uint64_t t;

	CHECK(c, m);
	CHECK_OK(c, mmk_queue_create(m, &a, &q));
	CHECK_OK(c, mmk_kernel_attach(name, TYPE_ID, &m2));
	track(c, m2);
	CHECK_OK(c, mmk_queue_open(m2, "shared", &q2));
	CHECK_OK(c, mmk_queue_store_push(q, NULL, "cross", 5, &t, NULL));
	CHECK_OK(c, mmk_queue_try_pop(q2, &g));
	CHECK(c, g.token == t && !memcmp(g.msg->payload, "cross", 5));
	CHECK_ERR(c, MMK_E_BORROW_ACTIVE, mmk_free(m, t));
	/* The popping session dies: its guard is dropped, the message freed. */
	untrack(c, m2);
	mmk_close(m2);
	CHECK(c, mmk_available(m) == CAPACITY);
	CHECK_ERR(c, MMK_E_NOT_ALLOCATED, mmk_free(m, t));
}

/* ---- main ------------------------------------------------------------------------ */

static const struct test {
	const char *name;
	void (*fn)(struct ctx *c);
	unsigned int backends;		/* enum backend_mask */
} tests[] = {
#define T(fn) { &#fn[2], fn, B_ALL }
#define T_KERNEL(fn) { &#fn[2], fn, B_KERNEL }
	T(t_backend_identity),
	T(t_store_read_roundtrip),
	T(t_store_defaults),
	T(t_header_validation),
	T(t_payload_type_and_class),
	T(t_config_validation),
	T(t_token_invalid),
	T(t_token_foreign_pool),
	T(t_token_index_out_of_range),
	T(t_token_garbage),
	T(t_token_freed_not_allocated),
	T(t_token_stale_reused),
	T(t_token_future_generation),
	T(t_token_never_used_slot),
	T(t_generation_counts_stores),
	T(t_slot_order),
	T(t_error_names),
	T(t_null_arguments),
	T(t_store_order),
	T(t_pool_full_and_available),
	T(t_guard_order),
	T(t_free_order),
	T(t_shared_guards),
	T(t_write_exclusive),
	T(t_write_changes_visible),
	T(t_write_release_checks),
	T(t_double_release),
	T(t_scoped_guards),
	T(t_wait_variants),
	T(t_guard_limits),
	T(t_many_writers),
	T(t_typed),
	T(t_loan_publish),
	T(t_loan_cancel),
	T(t_loan_checks),
	T(t_write_cancel_read_mut),
	{ "loan_page_aligned", t_loan_page_aligned, B_KERNEL | B_HEAP },
	T(t_batch_mixed),
	T(t_batch_stops_at_first_error),
	T(t_batch_errors),
	T(t_batch_long),
	T(t_queue_create_checks),
	T(t_queue_fifo),
	T(t_queue_owned),
	T(t_queue_push_order),
	T(t_queue_policies),
	T(t_queue_watermarks),
	T(t_queue_fanout),
	T(t_queue_store_push),
	T(t_queue_commit_push),
	T(t_queue_pop_write),
	T(t_queue_pop_batch),
	T(t_queue_peek),
	T(t_queue_qos_deadline),
	T(t_queue_close_releases),
	T(t_queue_named),
	T(t_queue_waits),
	T(t_queue_chain),
	T(t_queue_batch),
	T(t_queue_foreign_and_limits),
	{ "queue_static_storage", t_queue_static_storage, B_STATIC },
	{ "static_storage", t_static_storage, B_STATIC },
	{ "page_aligned", t_page_aligned, B_KERNEL | B_HEAP },
	T_KERNEL(t_kernel_attach),
	T_KERNEL(t_kernel_close_releases_guards),
	T_KERNEL(t_kernel_killed_writer_poisons),
	T_KERNEL(t_kernel_fork_shares_session),
	T_KERNEL(t_kernel_from_fd),
	T_KERNEL(t_kernel_read_only_mapping),
	T_KERNEL(t_kernel_window_writes),
	T_KERNEL(t_kernel_close_with_window),
	T_KERNEL(t_kernel_close_cancels_loan),
	T_KERNEL(t_kernel_wait_for_writer),
	T_KERNEL(t_kernel_threads),
	T_KERNEL(t_kernel_queue_poll),
	T_KERNEL(t_kernel_queue_across_sessions),
#undef T
#undef T_KERNEL
};

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "kernel";
	size_t n = 0, num = 0;
	struct ctx c = { 0 };
	unsigned int mask;
	int failed = 0;

	if (!strcmp(which, "kernel")) {
		c.backend = MMK_BACKEND_KERNEL;
	} else if (!strcmp(which, "heap")) {
		c.backend = MMK_BACKEND_HEAP;
	} else if (!strcmp(which, "static")) {
		c.backend = MMK_BACKEND_STATIC;
	} else {
		fprintf(stderr, "usage: %s [kernel|heap|static]\n", argv[0]);
		return 2;
	}
	c.backend_name = which;
	mask = c.backend == MMK_BACKEND_KERNEL ? B_KERNEL :
	       c.backend == MMK_BACKEND_HEAP ? B_HEAP : B_STATIC;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# libmmk suite, %s backend, libmmk %s\n", which, mmk_version());
	/* Tests that need another backend's features are not part of the plan. */
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (tests[i].backends & mask)
			n++;
		else
			printf("# not applicable to the %s backend: %s\n", which, tests[i].name);
	}
	printf("1..%zu\n", n);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!(tests[i].backends & mask))
			continue;
		num++;
		c.failed = 0;
		c.skip[0] = 0;
		tests[i].fn(&c);
		for (int j = 0; j < MAX_MGRS; j++) {
			mmk_close(c.mgrs[j]);
			c.mgrs[j] = NULL;
		}
		if (c.failed) {
			failed++;
			printf("not ok %zu %s\n", num, tests[i].name);
		} else if (c.skip[0]) {
			printf("ok %zu %s # SKIP %s\n", num, tests[i].name, c.skip);
		} else {
			printf("ok %zu %s\n", num, tests[i].name);
		}
	}
	printf("# %s backend: %zu tests, %d failed\n", which, n, failed);
	return failed ? 1 : 0;
}
