// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics of /dev/mmk as seen from one process: store, read in place,
 * header guards, write-back, free, the token rules, the borrow rules and
 * their check order, waiting, and the guard limits (SPEC sections 2 to 6,
 * docs/DESIGN.md).
 *
 * Every test gets a fresh anonymous pool, mapped read-only.  Tests that
 * change a module parameter save it first; the fixture restores it.
 *
 * The harness's EXPECT/ASSERT macros expand to more than one statement,
 * so every if or loop body holding one is braced.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/time.h>
#include <time.h>

#include "mmk_test.h"
#include "kselftest_harness.h"

#define PAYLOAD_SIZE	200U	/* 64 + 200 rounds up to 320: slack after the payload */
#define CAPACITY	8U
#define PAYLOAD_TYPE	0x6f70735f74657374ULL
#define HEADER_SIZE	64U

/* Token layout documented in docs/DESIGN.md. */
#define TOK_INDEX(t)	((uint32_t)((t) & 0xfffff))
#define TOK_GEN(t)	((uint32_t)(((t) >> 20) & 0xfffffff))
#define TOK_POOL(t)	((uint32_t)((t) >> 48))
#define TOK_MAKE(pool, gen, idx) \
	(((uint64_t)(pool) << 48) | ((uint64_t)((gen) & 0xfffffff) << 20) | \
	 ((uint64_t)(idx) & 0xfffff))

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */
/* ---------------------------------------------------------------------- */

static void fill(void *buf, size_t len, unsigned int seed)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8) + 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Store size pattern bytes (seeded by seq) with a default header. */
static int store_pattern(int fd, uint32_t size, unsigned int seq, uint64_t *token)
{
	unsigned char buf[PAYLOAD_SIZE];

	fill(buf, size, seq);
	return mmk_store_seq(fd, buf, size, seq, token);
}

static int guard_wait(int fd, unsigned long cmd, uint64_t token, uint64_t timeout_ns,
		      struct mmk_guard *g)
{
	memset(g, 0, sizeof(*g));
	g->token = token;
	g->flags = MMK_GUARD_WAIT;
	g->timeout_ns = timeout_ns;
	return mmk_ioctl(fd, cmd, g);
}

static int commit(int fd, uint64_t token, const struct mmk_msg_header *h, const void *payload,
		  uint32_t size)
{
	struct mmk_release r = {
		.token = token,
		.flags = MMK_RELEASE_COMMIT,
		.payload_size = size,
		.header = (uintptr_t)h,
		.payload = (uintptr_t)payload,
	};

	return mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r);
}

static int create_pool(const char *name, uint32_t payload_size, uint32_t capacity,
		       uint8_t memory_class, uint32_t flags)
{
	struct mmk_pool_create c = {
		.flags = flags,
		.payload_size = payload_size,
		.capacity = capacity,
		.mode = 0600,
		.payload_type = PAYLOAD_TYPE,
		.memory_class = memory_class,
	};
	int fd = mmk_open(), ret;

	if (fd < 0)
		return -errno;
	if (name)
		snprintf(c.name, sizeof(c.name), "%s", name);
	ret = mmk_ioctl(fd, MMK_IOC_CREATE, &c);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* ---------------------------------------------------------------------- */
/* Fixture: one anonymous pool, mapped                                     */
/* ---------------------------------------------------------------------- */

FIXTURE(pool) {
	int fd;
	void *map;
	size_t map_len;
	struct mmk_pool_info info;
	struct mmk_params params;
};

FIXTURE_SETUP(pool)
{
	self->fd = -1;
	self->map = MAP_FAILED;
	self->fd = mmk_create(NULL, PAYLOAD_SIZE, CAPACITY, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
	self->map = mmk_map(self->fd, &self->map_len);
	ASSERT_NE(MAP_FAILED, self->map) TH_LOG("mmap: %s", strerror(errno));
	ASSERT_EQ(0, mmk_info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(pool)
{
	/* Put back every module parameter a test changed, newest first. */
	if (mmk_params_restore(&self->params))
		TH_LOG("could not restore the module parameters");
	if (self->map != MAP_FAILED)
		munmap(self->map, self->map_len);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Set a module parameter, saving the old value for teardown.  Returns false
 * (after marking the test skipped) when the caller may not write it.
 */
static bool set_param(struct __test_metadata *_metadata, FIXTURE_DATA(pool) *self,
		      const char *name, unsigned long value)
{
	int ret = mmk_param_set(&self->params, name, value);

	if (ret == -EACCES || ret == -EPERM) {
		SKIP(return false, "cannot set %s (not root?)", name);
	}
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", name, strerror(-ret));
	return true;
}

static struct mmk_pool_info info_now(struct __test_metadata *_metadata, int fd)
{
	struct mmk_pool_info info;

	ASSERT_EQ(0, mmk_info(fd, &info));
	return info;
}

/* The slot bytes of the message at offset, copied out of the mapping. */
static void *slot_copy(FIXTURE_DATA(pool) *self, uint64_t offset)
{
	void *p = malloc(self->info.slot_size);

	if (p)
		memcpy(p, (const char *)self->map + offset, self->info.slot_size);
	return p;
}

/* Expect err from read, peek_header, read_mut and then free on token. */
static void expect_all_ops(struct __test_metadata *_metadata, int fd, uint64_t token, int err)
{
	struct mmk_guard g;

	EXPECT_EQ(err, mmk_guard(fd, MMK_IOC_READ, token, &g)) TH_LOG("read");
	EXPECT_EQ(err, mmk_guard(fd, MMK_IOC_PEEK_HEADER, token, &g)) TH_LOG("peek_header");
	EXPECT_EQ(err, mmk_guard(fd, MMK_IOC_READ_MUT, token, &g)) TH_LOG("read_mut");
	EXPECT_EQ(err, mmk_free_token(fd, token)) TH_LOG("free");
}

/* Expect the message at offset to carry exactly these header fields and payload. */
static void expect_message(struct __test_metadata *_metadata, FIXTURE_DATA(pool) *self,
			   uint64_t offset, const struct mmk_msg_header *want, uint8_t want_qos,
			   const void *payload, uint32_t size)
{
	const struct mmk_msg_header *h = mmk_at(self->map, offset);

	ASSERT_GE(self->map_len, offset + HEADER_SIZE + size);
	EXPECT_EQ(want->trace_id, h->trace_id);
	EXPECT_EQ(want->sequence, h->sequence);
	EXPECT_EQ(want->created_tick, h->created_tick);
	EXPECT_EQ(want->deadline_ns, h->deadline_ns);
	EXPECT_EQ(want->flags, h->flags);
	EXPECT_EQ(want_qos, h->qos);
	EXPECT_EQ(size, h->payload_size);
	EXPECT_EQ(self->info.memory_class, h->memory_class);
	EXPECT_EQ(0, h->memory_device);
	EXPECT_EQ(0U, h->__reserved0);
	EXPECT_EQ(0U, h->__reserved1[0]);
	EXPECT_EQ(0U, h->__reserved1[1]);
	EXPECT_EQ(0, memcmp(payload, mmk_payload(self->map, offset), size));
}

/* ---------------------------------------------------------------------- */
/* Store and read (SPEC 1, 2)                                              */
/* ---------------------------------------------------------------------- */

/* A store returns a real token; each message gets its own. */
TEST_F(pool, store_returns_distinct_tokens)
{
	uint64_t tok[3];
	struct mmk_pool_info info;
	unsigned int i;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 10 + i, i, &tok[i]));
		ASSERT_NE(MMK_TOKEN_INVALID, tok[i]);
	}
	EXPECT_NE(tok[0], tok[1]);
	EXPECT_NE(tok[0], tok[2]);
	EXPECT_NE(tok[1], tok[2]);
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(CAPACITY - 3, info.available);
	EXPECT_EQ(3U, info.stores);
}

/* A read guard gives the slot offset; header and payload are there, byte for byte. */
TEST_F(pool, read_offset_shows_stored_bytes)
{
	unsigned char a[PAYLOAD_SIZE], b[PAYLOAD_SIZE];
	struct mmk_msg_header ha = { .trace_id = 11, .sequence = 1, .qos = MMK_QOS_BEST_EFFORT };
	struct mmk_msg_header hb = { .trace_id = 22, .sequence = 2, .qos = MMK_QOS_BACKGROUND };
	struct mmk_guard ga, gb;
	uint64_t ta, tb;

	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &ha, a, sizeof(a), &ta));
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &hb, b, 77, &tb));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, ta, &ga));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, tb, &gb));
	EXPECT_EQ(sizeof(a), ga.payload_size);
	EXPECT_EQ(77U, gb.payload_size);
	EXPECT_NE(ga.offset, gb.offset);
	/* Offsets are slot starts inside the mapping. */
	EXPECT_EQ(0U, ga.offset % self->info.slot_size);
	EXPECT_EQ(0U, gb.offset % self->info.slot_size);
	ASSERT_GE(self->map_len, ga.offset + self->info.slot_size);
	ASSERT_GE(self->map_len, gb.offset + self->info.slot_size);

	expect_message(_metadata, self, ga.offset, &ha, MMK_QOS_BEST_EFFORT, a, sizeof(a));
	expect_message(_metadata, self, gb.offset, &hb, MMK_QOS_BACKGROUND, b, 77);

	EXPECT_EQ(0, mmk_read_release(self->fd, ta));
	EXPECT_EQ(0, mmk_read_release(self->fd, tb));
}

/* Every caller-set header field comes back exactly as stored. */
TEST_F(pool, header_fields_kept_as_stored)
{
	unsigned char p[33];
	struct mmk_msg_header h = {
		.trace_id = 0x0123456789abcdefULL,
		.sequence = 0xfffffffffffffffeULL,
		.created_tick = 0x8000000000000001ULL,
		.deadline_ns = 123456789012ULL,
		.flags = MMK_MSG_FIRST_IN_BATCH | MMK_MSG_LAST_IN_BATCH |
			 MMK_MSG_DEGRADE_ALLOWED | MMK_MSG_HAS_DEADLINE,
		.qos = MMK_QOS_LATENCY_CRITICAL,
	};
	struct mmk_msg_header h2 = {
		.trace_id = 5,
		.flags = MMK_MSG_LAST_IN_BATCH,
		.qos = MMK_QOS_BACKGROUND,
	};
	struct mmk_guard g;
	uint64_t t, t2;

	fill(p, sizeof(p), 3);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h2, p, 1, &t2));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	expect_message(_metadata, self, g.offset, &h, MMK_QOS_LATENCY_CRITICAL, p, sizeof(p));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t2, &g));
	expect_message(_metadata, self, g.offset, &h2, MMK_QOS_BACKGROUND, p, 1);
}

/* qos 0 means "default" and is stored as best-effort. */
TEST_F(pool, qos_zero_stored_as_best_effort)
{
	struct mmk_msg_header h = { .trace_id = 9, .qos = 0 };
	unsigned char p[4] = { 1, 2, 3, 4 };
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(MMK_QOS_BEST_EFFORT, mmk_at(self->map, g.offset)->qos);
}

/* payload_size, memory_class and memory_device are the kernel's, whatever the caller put. */
TEST_F(pool, kernel_sets_payload_size_and_memory_class)
{
	struct mmk_msg_header h = {
		.trace_id = 1,
		.payload_size = 0xffffffff,
		.memory_class = 0xee,
		.memory_device = 0xbeef,
		.qos = MMK_QOS_BEST_EFFORT,
	};
	unsigned char p[17];
	const struct mmk_msg_header *m;
	struct mmk_guard g;
	uint64_t t;

	fill(p, sizeof(p), 4);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	m = mmk_at(self->map, g.offset);
	EXPECT_EQ(sizeof(p), m->payload_size);
	EXPECT_EQ(MMK_MEM_HOST, m->memory_class);
	EXPECT_EQ(0, m->memory_device);
	EXPECT_EQ(sizeof(p), g.payload_size);
	EXPECT_EQ(0, memcmp(p, mmk_payload(self->map, g.offset), sizeof(p)));
}

/* The header's memory_class is the pool's class (PINNED_HOST, SHARED). */
TEST_F(pool, header_memory_class_follows_pool)
{
	static const uint8_t classes[] = { MMK_MEM_PINNED_HOST, MMK_MEM_SHARED };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(classes); i++) {
		struct mmk_msg_header h = { .memory_class = MMK_MEM_HOST };
		struct mmk_pool_info info;
		struct mmk_guard g;
		size_t len;
		uint64_t t;
		void *map;
		int fd;

		fd = create_pool(NULL, 64, 2, classes[i], 0);
		ASSERT_LE(0, fd) TH_LOG("class %u: %s", classes[i], strerror(-fd));
		info = info_now(_metadata, fd);
		EXPECT_EQ(classes[i], info.memory_class);
		map = mmk_map(fd, &len);
		ASSERT_NE(MAP_FAILED, map);
		ASSERT_EQ(0, mmk_store_hdr(fd, &h, "x", 1, &t));
		ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, t, &g));
		EXPECT_EQ(classes[i], mmk_at(map, g.offset)->memory_class);
		munmap(map, len);
		close(fd);
	}
}

/* An empty payload (NULL pointer, size 0) is a valid message. */
TEST_F(pool, empty_payload_is_stored)
{
	struct mmk_msg_header h = { .trace_id = 77 };
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, NULL, 0, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(0U, g.payload_size);
	EXPECT_EQ(0U, mmk_at(self->map, g.offset)->payload_size);
	EXPECT_EQ(77U, mmk_at(self->map, g.offset)->trace_id);
}

/* A header guard gives the same offset as a read guard, and the payload size. */
TEST_F(pool, peek_header_returns_offset_and_size)
{
	struct mmk_msg_header h = { .trace_id = 0xabc, .sequence = 3, .qos = 3 };
	unsigned char p[50];
	struct mmk_guard gp, gr;
	struct mmk_pool_info info;
	uint64_t t;

	fill(p, sizeof(p), 5);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &gp));
	EXPECT_EQ(sizeof(p), gp.payload_size);
	EXPECT_EQ(0U, gp.offset % self->info.slot_size);
	ASSERT_GE(self->map_len, gp.offset + HEADER_SIZE);
	EXPECT_EQ(0xabcU, mmk_at(self->map, gp.offset)->trace_id);
	EXPECT_EQ(3U, mmk_at(self->map, gp.offset)->sequence);
	EXPECT_EQ(sizeof(p), mmk_at(self->map, gp.offset)->payload_size);
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(1U, info.read_guards);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &gr));
	EXPECT_EQ(gr.offset, gp.offset);
	/* A header guard is released like a read guard. */
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(-ENOENT, mmk_read_release(self->fd, t));
}

/* ---------------------------------------------------------------------- */
/* Pool info (SPEC 6, DESIGN "Slots and tokens")                           */
/* ---------------------------------------------------------------------- */

/* A fresh pool describes itself exactly as created. */
TEST_F(pool, pool_info_describes_pool)
{
	const struct mmk_pool_info *i = &self->info;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	EXPECT_NE(0U, i->pool_id);
	EXPECT_GT(65535U, i->pool_id);
	EXPECT_EQ(0U, i->flags);
	EXPECT_EQ(PAYLOAD_SIZE, i->payload_size);
	EXPECT_EQ(CAPACITY, i->capacity);
	EXPECT_EQ(CAPACITY, i->available);
	EXPECT_EQ(HEADER_SIZE, i->header_size);
	EXPECT_EQ(HEADER_SIZE, sizeof(struct mmk_msg_header));
	/* Header plus payload rounded up to a 64-byte line. */
	EXPECT_EQ(0U, i->slot_size % 64);
	EXPECT_LE(HEADER_SIZE + PAYLOAD_SIZE, i->slot_size);
	EXPECT_GT(HEADER_SIZE + PAYLOAD_SIZE + 64, i->slot_size);
	/* The mapping covers every slot, and not a page more. */
	EXPECT_LE((uint64_t)i->slot_size * CAPACITY, i->map_size);
	EXPECT_GT((uint64_t)i->slot_size * CAPACITY + page, i->map_size);
	EXPECT_EQ(self->map_len, i->map_size);
	EXPECT_EQ(PAYLOAD_TYPE, i->payload_type);
	EXPECT_EQ(MMK_MEM_HOST, i->memory_class);
	EXPECT_EQ(0, i->memory_device);
	EXPECT_EQ(0600U, i->mode);
	EXPECT_EQ(getuid(), i->owner_uid);
	EXPECT_EQ(getgid(), i->owner_gid);
	EXPECT_EQ(1U, i->sessions);
	EXPECT_EQ(0U, i->read_guards);
	EXPECT_EQ(0U, i->write_guards);
	EXPECT_EQ(0U, i->poisoned);
	EXPECT_EQ(0U, i->stores);
	EXPECT_EQ(0U, i->frees);
	EXPECT_EQ(0U, i->no_free_slots);
	EXPECT_EQ('\0', i->name[0]);
}

/* With MMK_POOL_PAGE_ALIGNED every slot is a whole number of pages. */
TEST_F(pool, pool_info_page_aligned_slots)
{
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);
	struct mmk_pool_info info;
	struct mmk_guard g;
	size_t len;
	uint64_t t;
	void *map;
	int fd;

	fd = create_pool(NULL, 100, 3, MMK_MEM_HOST, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd) TH_LOG("create: %s", strerror(-fd));
	info = info_now(_metadata, fd);
	EXPECT_EQ(MMK_POOL_PAGE_ALIGNED, info.flags);
	EXPECT_EQ(page, info.slot_size);
	EXPECT_EQ((uint64_t)page * 3, info.map_size);
	close(fd);

	/* A payload bigger than a page takes two pages per slot. */
	fd = create_pool(NULL, page, 2, MMK_MEM_HOST, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd) TH_LOG("create: %s", strerror(-fd));
	info = info_now(_metadata, fd);
	EXPECT_EQ(2 * page, info.slot_size);
	EXPECT_EQ((uint64_t)page * 4, info.map_size);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mmk_store_hdr(fd, &(struct mmk_msg_header){ .trace_id = 1 }, NULL, 0, &t));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(0U, g.offset % page);
	munmap(map, len);
	close(fd);
}

/* stores, frees and available follow successful stores and frees. */
TEST_F(pool, pool_info_counts_stores_and_frees)
{
	struct mmk_pool_info info;
	uint64_t t[3];
	unsigned int i;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, i, &t[i]));
	}
	ASSERT_EQ(0, mmk_free_token(self->fd, t[1]));
	/* A failed free counts nothing. */
	ASSERT_EQ(-ENODATA, mmk_free_token(self->fd, t[1]));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(3U, info.stores);
	EXPECT_EQ(1U, info.frees);
	EXPECT_EQ(CAPACITY - 2, info.available);
	EXPECT_EQ(0U, info.no_free_slots);
}

/* read_guards counts read and header guards; write_guards counts write guards. */
TEST_F(pool, pool_info_counts_guards)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	uint64_t a, b, c;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &a));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 2, &b));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 3, &c));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, b, &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, c, &g));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(3U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);

	ASSERT_EQ(0, mmk_read_release(self->fd, a));
	ASSERT_EQ(0, mmk_write_release(self->fd, c));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(2U, info.read_guards);
	EXPECT_EQ(0U, info.write_guards);

	ASSERT_EQ(0, mmk_read_release(self->fd, a));
	ASSERT_EQ(0, mmk_read_release(self->fd, b));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(0U, info.read_guards);
}

/*
 * A write guard dropped by closing its session poisons the slot: read,
 * read_mut and peek give EOWNERDEAD (after EBADSLT), free recovers it, and
 * the poisoned count follows.  Two sessions of one process, on a named pool.
 */
TEST_F(pool, poisoned_slot_counted_and_recovered_by_free)
{
	struct mmk_msg_header h = { .trace_id = 1 };
	struct mmk_pool_info info;
	struct mmk_guard g;
	char name[MMK_NAME_MAX];
	uint64_t t, t2;
	int fd1, fd2;

	snprintf(name, sizeof(name), "mmk-ops-poison-%d", getpid());
	fd1 = create_pool(name, 64, 4, MMK_MEM_HOST, 0);
	ASSERT_LE(0, fd1) TH_LOG("create: %s", strerror(-fd1));
	fd2 = mmk_attach(name, PAYLOAD_TYPE);
	ASSERT_LE(0, fd2) TH_LOG("attach: %s", strerror(-fd2));
	ASSERT_EQ(0, mmk_store_hdr(fd1, &h, "abc", 3, &t));
	ASSERT_EQ(0, mmk_guard(fd2, MMK_IOC_READ_MUT, t, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(fd1, MMK_IOC_READ, t, &g));
	ASSERT_EQ(0, close(fd2));

	info = info_now(_metadata, fd1);
	EXPECT_EQ(1U, info.poisoned);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.sessions);

	EXPECT_EQ(-EOWNERDEAD, mmk_guard(fd1, MMK_IOC_READ, t, &g));
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(fd1, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(fd1, MMK_IOC_READ_MUT, t, &g));
	/* A bad token is reported before the poison. */
	EXPECT_EQ(-EBADSLT, mmk_guard(fd1, MMK_IOC_READ, t + (1ULL << 20), &g));
	EXPECT_EQ(-EBADSLT, mmk_free_token(fd1, t + (1ULL << 20)));

	/* Free recovers the slot. */
	ASSERT_EQ(0, mmk_free_token(fd1, t));
	info = info_now(_metadata, fd1);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(4U, info.available);
	EXPECT_EQ(1U, info.frees);
	/* Freed: NOT_ALLOCATED, no longer POISONED. */
	EXPECT_EQ(-ENODATA, mmk_guard(fd1, MMK_IOC_READ, t, &g));

	/* The slot is usable again, whichever slot the next stores take. */
	ASSERT_EQ(0, mmk_store_hdr(fd1, &h, "xyz", 3, &t2));
	EXPECT_EQ(0, mmk_guard(fd1, MMK_IOC_READ, t2, &g));
	close(fd1);
}

/* ---------------------------------------------------------------------- */
/* Tokens (SPEC 3)                                                         */
/* ---------------------------------------------------------------------- */

/*
 * The token carries the pool id, the slot index (offset / slot_size) and
 * the generation, which starts at the pool's random first generation and
 * goes up by one at every store into the slot.
 */
TEST_F(pool, token_layout_matches_design)
{
	struct mmk_guard g;
	uint64_t t, t2;
	unsigned int i;

	ASSERT_EQ(0, store_pattern(self->fd, 4, 1, &t));
	EXPECT_EQ(self->info.pool_id, TOK_POOL(t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(g.offset / self->info.slot_size, TOK_INDEX(t));
	ASSERT_EQ(0, mmk_read_release(self->fd, t));

	/* Free and refill the pool until the slot is used again. */
	ASSERT_EQ(0, mmk_free_token(self->fd, t));
	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 4, 2, &t2));
		if (TOK_INDEX(t2) == TOK_INDEX(t))
			break;
	}
	ASSERT_GT(CAPACITY, i) TH_LOG("slot %u never reused", TOK_INDEX(t));
	EXPECT_EQ((TOK_GEN(t) + 1) & 0xfffffff, TOK_GEN(t2));
	EXPECT_EQ(self->info.pool_id, TOK_POOL(t2));
}

/* A freed message's token gives ENODATA for read, peek, read_mut and free. */
TEST_F(pool, freed_token_gives_enodata)
{
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_free_token(self->fd, t));
	expect_all_ops(_metadata, self->fd, t, -ENODATA);
}

/* Once the slot holds a newer message, the old token is stale: EBADSLT. */
TEST_F(pool, stale_token_after_reuse_gives_ebadslt)
{
	struct mmk_guard g;
	uint64_t old, t[CAPACITY];
	unsigned int i;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &old));
	ASSERT_EQ(0, mmk_free_token(self->fd, old));
	/* Filling the whole pool must reuse the old slot. */
	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, 10 + i, &t[i]));
	}
	expect_all_ops(_metadata, self->fd, old, -EBADSLT);
	/* The new message in that slot is untouched and valid. */
	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t[i], &g));
		EXPECT_EQ(10 + i, mmk_at(self->map, g.offset)->sequence);
	}
}

/*
 * Every slot of a pool starts at the pool's first generation, which the
 * first store into slot 0 reveals (it is one more): a token of a never-used
 * slot at that generation gives ENODATA (empty, g == G).
 */
TEST_F(pool, never_stored_slot_first_generation_gives_enodata)
{
	uint32_t idx, gen0;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0U, TOK_INDEX(t));
	gen0 = TOK_GEN(t) - 1;
	for (idx = 1; idx < CAPACITY; idx++)
		expect_all_ops(_metadata, self->fd, TOK_MAKE(self->info.pool_id, gen0, idx),
			       -ENODATA);
}

/* An empty slot with a token of another generation gives EBADSLT (empty, g != G). */
TEST_F(pool, empty_slot_other_generation_gives_ebadslt)
{
	uint64_t t;

	expect_all_ops(_metadata, self->fd, TOK_MAKE(self->info.pool_id, 1, 0), -EBADSLT);
	expect_all_ops(_metadata, self->fd,
		       TOK_MAKE(self->info.pool_id, 0xfffffff, CAPACITY - 1), -EBADSLT);

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_free_token(self->fd, t));
	expect_all_ops(_metadata, self->fd,
		       TOK_MAKE(TOK_POOL(t), TOK_GEN(t) + 1, TOK_INDEX(t)), -EBADSLT);
	expect_all_ops(_metadata, self->fd,
		       TOK_MAKE(TOK_POOL(t), TOK_GEN(t) - 1, TOK_INDEX(t)), -EBADSLT);
}

/* An allocated slot with a token of another generation gives EBADSLT. */
TEST_F(pool, live_slot_other_generation_gives_ebadslt)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	expect_all_ops(_metadata, self->fd,
		       TOK_MAKE(TOK_POOL(t), TOK_GEN(t) + 1, TOK_INDEX(t)), -EBADSLT);
	expect_all_ops(_metadata, self->fd,
		       TOK_MAKE(TOK_POOL(t), TOK_GEN(t) ^ 0x8000000, TOK_INDEX(t)), -EBADSLT);
	expect_all_ops(_metadata, self->fd,
		       TOK_MAKE(TOK_POOL(t), 0, TOK_INDEX(t)), -EBADSLT);
	/* The message itself was neither borrowed nor freed. */
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(CAPACITY - 1, info.available);
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
}

/* A slot index past the capacity gives EBADSLT. */
TEST_F(pool, out_of_range_index_gives_ebadslt)
{
	uint32_t id = self->info.pool_id;

	expect_all_ops(_metadata, self->fd, TOK_MAKE(id, 0, CAPACITY), -EBADSLT);
	expect_all_ops(_metadata, self->fd, TOK_MAKE(id, 1, CAPACITY), -EBADSLT);
	expect_all_ops(_metadata, self->fd, TOK_MAKE(id, 1, 0xfffff), -EBADSLT);
}

/* A token whose pool tag is not this pool's gives EBADSLT, even for a live message. */
TEST_F(pool, wrong_pool_tag_gives_ebadslt)
{
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	expect_all_ops(_metadata, self->fd, t ^ (1ULL << 48), -EBADSLT);
	expect_all_ops(_metadata, self->fd, t ^ (0x8000ULL << 48), -EBADSLT);
	expect_all_ops(_metadata, self->fd, TOK_MAKE(0, TOK_GEN(t), TOK_INDEX(t)), -EBADSLT);
	expect_all_ops(_metadata, self->fd, TOK_MAKE(0xffff, TOK_GEN(t), TOK_INDEX(t)), -EBADSLT);
	/* Never-used slot, generation 0, wrong tag: BAD_TOKEN, not NOT_ALLOCATED. */
	expect_all_ops(_metadata, self->fd, TOK_MAKE(self->info.pool_id ^ 1, 0, CAPACITY - 1),
		       -EBADSLT);
}

/* A real token of another live pool gives EBADSLT here, for every operation. */
TEST_F(pool, token_from_other_pool_gives_ebadslt)
{
	struct mmk_guard g;
	uint64_t mine, other;
	int fd2;

	fd2 = mmk_create(NULL, PAYLOAD_SIZE, CAPACITY, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, store_pattern(fd2, 8, 1, &other));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &mine));

	expect_all_ops(_metadata, self->fd, other, -EBADSLT);
	EXPECT_EQ(-EBADSLT, mmk_read_release(self->fd, other));
	EXPECT_EQ(-EBADSLT, mmk_write_release(self->fd, other));

	/* It still works in its own pool, and ours in ours. */
	EXPECT_EQ(0, mmk_guard(fd2, MMK_IOC_READ, other, &g));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, mine, &g));
	EXPECT_EQ(-EBADSLT, mmk_guard(fd2, MMK_IOC_READ, mine, &g));
	close(fd2);
}

/* MMK_TOKEN_INVALID gives EBADSLT for every token operation, releases included. */
TEST_F(pool, invalid_token_gives_ebadslt_everywhere)
{
	uint64_t t;
	unsigned int i;

	expect_all_ops(_metadata, self->fd, MMK_TOKEN_INVALID, -EBADSLT);
	EXPECT_EQ(-EBADSLT, mmk_read_release(self->fd, MMK_TOKEN_INVALID));
	EXPECT_EQ(-EBADSLT, mmk_write_release(self->fd, MMK_TOKEN_INVALID));
	/* Same with a full pool of live messages. */
	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, i, &t));
	}
	expect_all_ops(_metadata, self->fd, MMK_TOKEN_INVALID, -EBADSLT);
}

/* ---------------------------------------------------------------------- */
/* Exhaustion (SPEC 4: NO_FREE_SLOTS)                                      */
/* ---------------------------------------------------------------------- */

/* capacity stores succeed, the next gives ENOSPC, and each refusal is counted. */
TEST_F(pool, full_pool_gives_enospc_and_counts)
{
	struct mmk_pool_info info;
	uint64_t t;
	unsigned int i;

	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, i, &t)) TH_LOG("store %u", i);
	}
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(0U, info.available);
	EXPECT_EQ(0U, info.no_free_slots);

	EXPECT_EQ(-ENOSPC, store_pattern(self->fd, 8, 99, &t));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(1U, info.no_free_slots);
	EXPECT_EQ(CAPACITY, info.stores);

	EXPECT_EQ(-ENOSPC, store_pattern(self->fd, 8, 100, &t));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(2U, info.no_free_slots);
	EXPECT_EQ(0U, info.available);
}

/* Freeing one message of a full pool lets one store in, into that slot; the old token is stale. */
TEST_F(pool, freed_slot_is_reused_and_old_token_goes_stale)
{
	uint64_t t[CAPACITY], n, n2;
	struct mmk_guard g;
	unsigned int i;

	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, i, &t[i]));
	}
	ASSERT_EQ(-ENOSPC, store_pattern(self->fd, 8, 50, &n));
	ASSERT_EQ(0, mmk_free_token(self->fd, t[3]));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 51, &n));
	EXPECT_EQ(TOK_INDEX(t[3]), TOK_INDEX(n));
	EXPECT_EQ(TOK_GEN(t[3]) + 1, TOK_GEN(n));
	EXPECT_EQ(-ENOSPC, store_pattern(self->fd, 8, 52, &n2));

	expect_all_ops(_metadata, self->fd, t[3], -EBADSLT);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, n, &g));
	EXPECT_EQ(51U, mmk_at(self->map, g.offset)->sequence);
}

/* Store checks size and header (EMSGSIZE, EINVAL) before space (ENOSPC). */
TEST_F(pool, store_checks_message_before_space)
{
	unsigned char big[PAYLOAD_SIZE + 1];
	struct mmk_msg_header bad = { .flags = 1U << 30 };
	struct mmk_pool_info info;
	uint64_t t;
	unsigned int i;

	memset(big, 0, sizeof(big));
	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, i, &t));
	}
	ASSERT_EQ(-ENOSPC, store_pattern(self->fd, 8, 1, &t));
	info = info_now(_metadata, self->fd);
	ASSERT_EQ(0U, info.available);
	ASSERT_EQ(1U, info.no_free_slots);

	EXPECT_EQ(-EMSGSIZE, mmk_store_seq(self->fd, big, sizeof(big), 1, &t));
	EXPECT_EQ(-EINVAL, mmk_store_hdr(self->fd, &bad, big, 8, &t));
	EXPECT_EQ(-ENOSPC, mmk_store_hdr(self->fd, &(struct mmk_msg_header){ 0 }, big, 8, &t));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(2U, info.no_free_slots);
}

/* ---------------------------------------------------------------------- */
/* Borrows (SPEC 5) and their check order (SPEC 4)                         */
/* ---------------------------------------------------------------------- */

/* Read guards are shared: several at once, each released once. */
TEST_F(pool, read_guards_are_shared)
{
	struct mmk_guard g1, g2, g3;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g1));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g2));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g3));
	EXPECT_EQ(g1.offset, g2.offset);
	EXPECT_EQ(g1.offset, g3.offset);
	EXPECT_EQ(3U, info_now(_metadata, self->fd).read_guards);
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(-ENOENT, mmk_read_release(self->fd, t));
	EXPECT_EQ(0U, info_now(_metadata, self->fd).read_guards);
}

/* Read and header guards coexist on one message. */
TEST_F(pool, read_and_peek_guards_coexist)
{
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(4U, info_now(_metadata, self->fd).read_guards);
}

/* read_mut while a read or header guard is held gives EBUSY. */
TEST_F(pool, read_mut_while_shared_guard_gives_ebusy)
{
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	ASSERT_EQ(0, mmk_read_release(self->fd, t));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	ASSERT_EQ(0, mmk_read_release(self->fd, t));

	/* With nothing held, read_mut succeeds. */
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).write_guards);
}

/* read and peek_header while a write guard is held give EBUSY; so does a second read_mut. */
TEST_F(pool, guard_while_write_guard_gives_ebusy)
{
	struct mmk_guard g;
	struct mmk_pool_info info;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);

	ASSERT_EQ(0, mmk_write_release(self->fd, t));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
}

/* A guard on one message does not affect another message. */
TEST_F(pool, guards_are_per_message)
{
	struct mmk_guard g;
	uint64_t a, b;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &a));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 2, &b));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, a, &g));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, b, &g));
	EXPECT_EQ(0, mmk_read_release(self->fd, b));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, b, &g));
	EXPECT_EQ(0, mmk_write_release(self->fd, b));
	EXPECT_EQ(0, mmk_free_token(self->fd, b));
}

/* free while any guard is held gives ETXTBSY, and frees nothing. */
TEST_F(pool, free_while_guard_held_gives_etxtbsy)
{
	static const unsigned long cmds[] = {
		MMK_IOC_READ, MMK_IOC_PEEK_HEADER, MMK_IOC_READ_MUT,
	};
	struct mmk_guard g;
	uint64_t t;
	unsigned int i;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		ASSERT_EQ(0, mmk_guard(self->fd, cmds[i], t, &g));
		EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t)) TH_LOG("guard kind %u", i);
		EXPECT_EQ(CAPACITY - 1, info_now(_metadata, self->fd).available);
		EXPECT_EQ(0U, info_now(_metadata, self->fd).frees);
		if (cmds[i] == MMK_IOC_READ_MUT) {
			ASSERT_EQ(0, mmk_write_release(self->fd, t));
		} else {
			ASSERT_EQ(0, mmk_read_release(self->fd, t));
		}
	}
	EXPECT_EQ(0, mmk_free_token(self->fd, t));
	EXPECT_EQ(CAPACITY, info_now(_metadata, self->fd).available);
}

/* read/read_mut/peek check order: EBADSLT before EBUSY, even on a held slot. */
TEST_F(pool, guard_checks_token_before_borrow)
{
	struct mmk_guard g;
	uint64_t t, other_gen, tag;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	other_gen = TOK_MAKE(TOK_POOL(t), TOK_GEN(t) + 1, TOK_INDEX(t));
	tag = t ^ (1ULL << 48);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, other_gen, &g));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, other_gen, &g));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ_MUT, other_gen, &g));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, tag, &g));
	ASSERT_EQ(0, mmk_write_release(self->fd, t));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ_MUT, other_gen, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
}

/* free check order: EBADSLT, then ENODATA, then ETXTBSY. */
TEST_F(pool, free_check_order)
{
	struct mmk_guard g;
	uint64_t t, u, t_new;
	unsigned int i;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	/* Held slot, wrong generation or pool: EBADSLT, not ETXTBSY. */
	EXPECT_EQ(-EBADSLT, mmk_free_token(self->fd, t + (1ULL << 20)));
	EXPECT_EQ(-EBADSLT, mmk_free_token(self->fd, t ^ (1ULL << 48)));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t));

	/* Freed slot, wrong generation: EBADSLT, not ENODATA. */
	ASSERT_EQ(0, store_pattern(self->fd, 8, 2, &u));
	ASSERT_EQ(0, mmk_free_token(self->fd, u));
	EXPECT_EQ(-EBADSLT, mmk_free_token(self->fd, u + (1ULL << 20)));
	EXPECT_EQ(-ENODATA, mmk_free_token(self->fd, u));

	/* Stale token of a slot whose new message is held: EBADSLT. */
	for (i = 0; i < CAPACITY; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, 3, &t_new));
		if (TOK_INDEX(t_new) == TOK_INDEX(u))
			break;
	}
	ASSERT_GT(CAPACITY, i);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t_new, &g));
	EXPECT_EQ(-EBADSLT, mmk_free_token(self->fd, u));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, u, &g));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t_new));
}

/* Releasing a guard the session does not hold gives ENOENT. */
TEST_F(pool, release_without_guard_gives_enoent)
{
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	EXPECT_EQ(-ENOENT, mmk_read_release(self->fd, t));
	EXPECT_EQ(-ENOENT, mmk_write_release(self->fd, t));

	/* Released once is released. */
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	ASSERT_EQ(0, mmk_write_release(self->fd, t));
	EXPECT_EQ(-ENOENT, mmk_write_release(self->fd, t));
	EXPECT_EQ(0U, info_now(_metadata, self->fd).write_guards);
}

/* A read guard is not released by WRITE_RELEASE, nor a write guard by READ_RELEASE. */
TEST_F(pool, release_of_other_guard_kind_gives_enoent)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	uint64_t r, w;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &r));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 2, &w));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, r, &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, w, &g));

	EXPECT_EQ(-ENOENT, mmk_write_release(self->fd, r));
	EXPECT_EQ(-ENOENT, mmk_read_release(self->fd, w));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(1U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);

	/* A header guard is not a write guard either. */
	ASSERT_EQ(0, mmk_read_release(self->fd, r));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, r, &g));
	EXPECT_EQ(-ENOENT, mmk_write_release(self->fd, r));

	EXPECT_EQ(0, mmk_read_release(self->fd, r));
	EXPECT_EQ(0, mmk_write_release(self->fd, w));
}

/* Guards belong to the session: another session of the pool cannot release them. */
TEST_F(pool, release_of_other_sessions_guard_gives_enoent)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	char name[MMK_NAME_MAX];
	uint64_t r, w;
	int fd1, fd2;

	snprintf(name, sizeof(name), "mmk-ops-owner-%d", getpid());
	fd1 = create_pool(name, 64, 4, MMK_MEM_HOST, 0);
	ASSERT_LE(0, fd1) TH_LOG("create: %s", strerror(-fd1));
	fd2 = mmk_attach(name, PAYLOAD_TYPE);
	ASSERT_LE(0, fd2) TH_LOG("attach: %s", strerror(-fd2));
	ASSERT_EQ(0, mmk_store_hdr(fd1, &(struct mmk_msg_header){ 0 }, "r", 1, &r));
	ASSERT_EQ(0, mmk_store_hdr(fd1, &(struct mmk_msg_header){ 0 }, "w", 1, &w));
	ASSERT_EQ(0, mmk_guard(fd2, MMK_IOC_READ, r, &g));
	ASSERT_EQ(0, mmk_guard(fd2, MMK_IOC_READ_MUT, w, &g));

	EXPECT_EQ(-ENOENT, mmk_read_release(fd1, r));
	EXPECT_EQ(-ENOENT, mmk_write_release(fd1, w));
	info = info_now(_metadata, fd1);
	EXPECT_EQ(1U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);

	/* The holder releases them normally. */
	EXPECT_EQ(0, mmk_read_release(fd2, r));
	EXPECT_EQ(0, mmk_write_release(fd2, w));
	info = info_now(_metadata, fd1);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	close(fd2);
	close(fd1);
}

/* Releases check the token first: a malformed or foreign token gives EBADSLT. */
TEST_F(pool, release_with_bad_token_gives_ebadslt)
{
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(-EBADSLT, mmk_read_release(self->fd, t ^ (1ULL << 48)));
	EXPECT_EQ(-EBADSLT, mmk_read_release(self->fd,
					     TOK_MAKE(TOK_POOL(t), TOK_GEN(t), CAPACITY)));
	EXPECT_EQ(-EBADSLT, mmk_write_release(self->fd,
					      TOK_MAKE(TOK_POOL(t), TOK_GEN(t), 0xfffff)));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).read_guards);
}

/* ---------------------------------------------------------------------- */
/* Write-back (MMK_IOC_WRITE_RELEASE with MMK_RELEASE_COMMIT)              */
/* ---------------------------------------------------------------------- */

/* Commit replaces header and payload (smaller here); readers then see it; the token stays. */
TEST_F(pool, commit_replaces_message)
{
	unsigned char p[PAYLOAD_SIZE], q[40];
	struct mmk_msg_header h = { .trace_id = 1, .sequence = 1, .qos = 1 };
	struct mmk_msg_header nh = {
		.trace_id = 0xfeedface,
		.sequence = 2,
		.created_tick = 3,
		.deadline_ns = 4,
		.flags = MMK_MSG_HAS_DEADLINE | MMK_MSG_DEGRADE_ALLOWED,
		.qos = MMK_QOS_LATENCY_CRITICAL,
		.payload_size = 0xdead,		/* ignored */
		.memory_class = 0x42,		/* ignored */
	};
	struct mmk_msg_header want = nh;
	struct mmk_guard g, r;
	uint64_t t;

	fill(p, sizeof(p), 1);
	fill(q, sizeof(q), 2);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	EXPECT_EQ(sizeof(p), g.payload_size);
	ASSERT_EQ(0, commit(self->fd, t, &nh, q, sizeof(q)));
	EXPECT_EQ(0U, info_now(_metadata, self->fd).write_guards);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &r));
	EXPECT_EQ(g.offset, r.offset);
	EXPECT_EQ(sizeof(q), r.payload_size);
	expect_message(_metadata, self, r.offset, &want, MMK_QOS_LATENCY_CRITICAL, q, sizeof(q));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).stores);
}

/* Commit can grow the payload up to the pool's payload size; qos 0 becomes best-effort. */
TEST_F(pool, commit_grows_payload_up_to_slot)
{
	unsigned char p[PAYLOAD_SIZE];
	struct mmk_msg_header h = { .trace_id = 1, .qos = 1 };
	struct mmk_msg_header nh = { .trace_id = 2, .qos = 0 };
	struct mmk_guard g;
	uint64_t t;

	fill(p, sizeof(p), 7);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, 3, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	ASSERT_EQ(0, commit(self->fd, t, &nh, p, PAYLOAD_SIZE));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(PAYLOAD_SIZE, g.payload_size);
	expect_message(_metadata, self, g.offset, &nh, MMK_QOS_BEST_EFFORT, p, PAYLOAD_SIZE);
	ASSERT_EQ(0, mmk_read_release(self->fd, t));

	/* And shrink it to nothing. */
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	ASSERT_EQ(0, commit(self->fd, t, &nh, NULL, 0));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(0U, g.payload_size);
	EXPECT_EQ(0U, mmk_at(self->map, g.offset)->payload_size);
}

/* A failed commit keeps the guard and the message: check both. */
static void expect_commit_fails(struct __test_metadata *_metadata, FIXTURE_DATA(pool) *self,
				uint64_t t, uint64_t offset, int err,
				const struct mmk_msg_header *h, const void *payload,
				uint32_t size, const char *what)
{
	unsigned char *before = slot_copy(self, offset);
	struct mmk_guard g;

	ASSERT_NE(NULL, before);
	EXPECT_EQ(err, commit(self->fd, t, h, payload, size)) TH_LOG("%s", what);
	EXPECT_EQ(0, memcmp(before, (const char *)self->map + offset, self->info.slot_size))
		TH_LOG("%s: message changed", what);
	EXPECT_EQ(1U, info_now(_metadata, self->fd).write_guards) TH_LOG("%s", what);
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ, t, &g)) TH_LOG("%s", what);
	free(before);
}

/* Commit of a payload bigger than the pool's payload size: EMSGSIZE, nothing changes. */
TEST_F(pool, commit_too_large_keeps_guard_and_message)
{
	unsigned char p[PAYLOAD_SIZE + 64];
	struct mmk_msg_header h = { .trace_id = 1 };
	struct mmk_guard g;
	uint64_t t;

	fill(p, sizeof(p), 9);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, 20, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	/* One byte over, still inside the 64-byte rounded slot. */
	expect_commit_fails(_metadata, self, t, g.offset, -EMSGSIZE, &h, p, PAYLOAD_SIZE + 1,
			    "payload_size + 1");
	expect_commit_fails(_metadata, self, t, g.offset, -EMSGSIZE, &h, p,
			    self->info.slot_size, "slot_size");
	expect_commit_fails(_metadata, self, t, g.offset, -EMSGSIZE, &h, p, 0xffffffff,
			    "0xffffffff");
	/* The guard is still ours: a plain release works once. */
	EXPECT_EQ(0, mmk_write_release(self->fd, t));
	EXPECT_EQ(-ENOENT, mmk_write_release(self->fd, t));
}

/* Commit of an invalid header: EINVAL, nothing changes. */
TEST_F(pool, commit_bad_header_keeps_guard_and_message)
{
	struct mmk_msg_header h = { .trace_id = 1 }, bad;
	unsigned char p[16];
	struct mmk_guard g;
	uint64_t t;

	fill(p, sizeof(p), 1);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));

	bad = h;
	bad.flags = 1U << 4;
	expect_commit_fails(_metadata, self, t, g.offset, -EINVAL, &bad, p, 8, "unknown flag");
	bad = h;
	bad.__reserved0 = 1;
	expect_commit_fails(_metadata, self, t, g.offset, -EINVAL, &bad, p, 8, "reserved0");
	bad = h;
	bad.__reserved1[1] = 1;
	expect_commit_fails(_metadata, self, t, g.offset, -EINVAL, &bad, p, 8, "reserved1");
	bad = h;
	bad.qos = 4;
	expect_commit_fails(_metadata, self, t, g.offset, -EINVAL, &bad, p, 8, "qos 4");
	bad = h;
	bad.deadline_ns = 5;
	expect_commit_fails(_metadata, self, t, g.offset, -EINVAL, &bad, p, 8,
			    "deadline without flag");
	EXPECT_EQ(0, mmk_write_release(self->fd, t));
}

/* Commit from a bad header or payload pointer: EFAULT, nothing changes. */
TEST_F(pool, commit_bad_pointer_keeps_guard_and_message)
{
	long page = sysconf(_SC_PAGESIZE);
	struct mmk_msg_header h = { .trace_id = 1 };
	unsigned char p[PAYLOAD_SIZE];
	struct mmk_guard g;
	unsigned char *area;
	uint64_t t;

	fill(p, sizeof(p), 3);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));

	expect_commit_fails(_metadata, self, t, g.offset, -EFAULT, &h, (void *)1, 100,
			    "payload (void *)1");
	expect_commit_fails(_metadata, self, t, g.offset, -EFAULT, &h, NULL, 100,
			    "payload NULL");
	expect_commit_fails(_metadata, self, t, g.offset, -EFAULT, NULL, p, 100,
			    "header NULL");
	expect_commit_fails(_metadata, self, t, g.offset, -EFAULT, (void *)1, p, 100,
			    "header (void *)1");

	/* A payload whose second half is unmapped must not be half-written. */
	area = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	ASSERT_EQ(0, munmap(area + page, page));
	memset(area, 0x5a, page);
	expect_commit_fails(_metadata, self, t, g.offset, -EFAULT, &h,
			    area + page - PAYLOAD_SIZE / 2, PAYLOAD_SIZE, "half-mapped payload");
	munmap(area, page);

	EXPECT_EQ(0, mmk_write_release(self->fd, t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	expect_message(_metadata, self, g.offset, &h, MMK_QOS_BEST_EFFORT, p, sizeof(p));
}

/* A write release without COMMIT leaves the message as it was. */
TEST_F(pool, release_without_commit_keeps_message)
{
	struct mmk_msg_header h = { .trace_id = 3, .sequence = 4, .qos = 1 };
	unsigned char p[60], *before;
	struct mmk_guard g;
	uint64_t t;

	fill(p, sizeof(p), 8);
	ASSERT_EQ(0, mmk_store_hdr(self->fd, &h, p, sizeof(p), &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	before = slot_copy(self, g.offset);
	ASSERT_NE(NULL, before);
	ASSERT_EQ(0, mmk_write_release(self->fd, t));
	EXPECT_EQ(0, memcmp(before, (const char *)self->map + g.offset, self->info.slot_size));
	free(before);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(sizeof(p), g.payload_size);
	expect_message(_metadata, self, g.offset, &h, 1, p, sizeof(p));
}

/* ---------------------------------------------------------------------- */
/* Waiting (MMK_GUARD_WAIT)                                                */
/* ---------------------------------------------------------------------- */

#define WAIT_NS		200000000ULL	/* 200 ms */
/* A jiffy-based timeout may end up to one tick early. */
#define TICK_SLACK_NS	10000000ULL

/* Waiting for a guard this same session blocks ends with EBUSY after the timeout. */
TEST_F(pool, wait_times_out_with_ebusy)
{
	static const unsigned long cmds[] = { MMK_IOC_READ, MMK_IOC_PEEK_HEADER,
					      MMK_IOC_READ_MUT };
	struct mmk_pool_info info;
	struct mmk_guard g;
	uint64_t t, start, took;
	unsigned int i;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		start = now_ns();
		EXPECT_EQ(-EBUSY, guard_wait(self->fd, cmds[i], t, WAIT_NS, &g))
			TH_LOG("cmd %u", i);
		took = now_ns() - start;
		EXPECT_LE(WAIT_NS - TICK_SLACK_NS, took) TH_LOG("cmd %u took %llu ns", i,
							       (unsigned long long)took);
	}
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);

	/* A write guard waiting on a read guard times out the same way. */
	ASSERT_EQ(0, mmk_write_release(self->fd, t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	start = now_ns();
	EXPECT_EQ(-EBUSY, guard_wait(self->fd, MMK_IOC_READ_MUT, t, WAIT_NS, &g));
	EXPECT_LE(WAIT_NS - TICK_SLACK_NS, now_ns() - start);
}

struct releaser {
	int fd;
	uint64_t token;
	bool write;
	int ret;
};

static void *release_later(void *arg)
{
	struct releaser *r = arg;

	usleep(50000);
	r->ret = r->write ? mmk_write_release(r->fd, r->token) : mmk_read_release(r->fd, r->token);
	return NULL;
}

/* A waiting read succeeds once another thread releases the write guard. */
TEST_F(pool, wait_succeeds_when_writer_releases)
{
	struct releaser rel = { .fd = self->fd, .write = true, .ret = -1 };
	struct mmk_pool_info info;
	struct mmk_guard g;
	pthread_t th;
	uint64_t t, start, took;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	rel.token = t;
	start = now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, release_later, &rel));
	EXPECT_EQ(0, guard_wait(self->fd, MMK_IOC_READ, t, 10000000000ULL, &g));
	took = now_ns() - start;
	pthread_join(th, NULL);
	EXPECT_EQ(0, rel.ret);
	EXPECT_LE(50000000ULL, took);
	EXPECT_EQ(8U, g.payload_size);
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(1U, info.read_guards);
	EXPECT_EQ(0U, info.write_guards);
}

/* A waiting read_mut with no time limit succeeds once the read guard is released. */
TEST_F(pool, wait_without_limit_succeeds_when_reader_releases)
{
	struct releaser rel = { .fd = self->fd, .write = false, .ret = -1 };
	struct mmk_pool_info info;
	struct mmk_guard g;
	pthread_t th;
	uint64_t t, start;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	rel.token = t;
	start = now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, release_later, &rel));
	EXPECT_EQ(0, guard_wait(self->fd, MMK_IOC_READ_MUT, t, 0, &g));
	EXPECT_LE(50000000ULL, now_ns() - start);
	pthread_join(th, NULL);
	EXPECT_EQ(0, rel.ret);
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);
}

/* WAIT waits only on EBUSY: other errors come back at once. */
TEST_F(pool, wait_does_not_wait_on_other_errors)
{
	struct mmk_guard g;
	uint64_t t, start;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_free_token(self->fd, t));
	start = now_ns();
	EXPECT_EQ(-ENODATA, guard_wait(self->fd, MMK_IOC_READ, t, 0, &g));
	EXPECT_EQ(-EBADSLT, guard_wait(self->fd, MMK_IOC_READ_MUT, MMK_TOKEN_INVALID, 0, &g));
	EXPECT_EQ(-EBADSLT, guard_wait(self->fd, MMK_IOC_PEEK_HEADER, t + (1ULL << 20), 0, &g));
	/* Well under any timeout a waiting call would take. */
	EXPECT_GT(WAIT_NS, now_ns() - start);
}

static volatile sig_atomic_t got_alarm;

static void on_alarm(int sig)
{
	got_alarm = 1;
}

/* A wait with no time limit is interrupted by a signal: EINTR, no guard taken. */
TEST_F(pool, wait_interrupted_by_signal_gives_eintr)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { .it_value = { .tv_usec = 100000 } };
	struct mmk_pool_info info;
	struct mmk_guard g;
	uint64_t t;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	EXPECT_EQ(-EINTR, guard_wait(self->fd, MMK_IOC_READ, t, 0, &g));
	EXPECT_EQ(1, got_alarm);
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);
}

/* ---------------------------------------------------------------------- */
/* Guard limits (DESIGN "Guards", module parameters)                       */
/* ---------------------------------------------------------------------- */

/* A session holds at most max_guards_per_session guards, of any kind: EDQUOT past it. */
TEST_F(pool, session_guard_cap_gives_edquot)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	uint64_t t[6];
	unsigned int i;

	for (i = 0; i < 6; i++) {
		ASSERT_EQ(0, store_pattern(self->fd, 8, i, &t[i]));
	}
	if (!set_param(_metadata, self, "max_guards_per_session", 4))
		return;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t[0], &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t[0], &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t[1], &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t[2], &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_READ, t[3], &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t[4], &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_READ_MUT, t[5], &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_READ, t[0], &g));
	info = info_now(_metadata, self->fd);
	EXPECT_EQ(3U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);

	/* Releasing one makes room for exactly one. */
	ASSERT_EQ(0, mmk_write_release(self->fd, t[2]));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t[5], &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_READ, t[3], &g));
}

/* A slot has at most max_readers_per_slot shared guards: EDQUOT past it. */
TEST_F(pool, slot_reader_cap_gives_edquot)
{
	struct mmk_guard g;
	uint64_t a, b;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &a));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 2, &b));
	if (!set_param(_metadata, self, "max_readers_per_slot", 3))
		return;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, a, &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, a, &g));
	EXPECT_EQ(3U, info_now(_metadata, self->fd).read_guards);

	/* Another slot is not affected. */
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, b, &g));

	ASSERT_EQ(0, mmk_read_release(self->fd, a));
	EXPECT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, a, &g));
}

/* The caps are checked after the contract's errors (EBADSLT, ENODATA, EBUSY). */
TEST_F(pool, guard_caps_checked_after_contract_errors)
{
	struct mmk_guard g;
	uint64_t a, b, c;

	ASSERT_EQ(0, store_pattern(self->fd, 8, 1, &a));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 2, &b));
	ASSERT_EQ(0, store_pattern(self->fd, 8, 3, &c));
	ASSERT_EQ(0, mmk_free_token(self->fd, b));
	if (!set_param(_metadata, self, "max_guards_per_session", 1))
		return;
	if (!set_param(_metadata, self, "max_readers_per_slot", 1))
		return;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, MMK_TOKEN_INVALID, &g));
	EXPECT_EQ(-ENODATA, mmk_guard(self->fd, MMK_IOC_READ, b, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, a, &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_READ, c, &g));

	/* At the session cap with a write guard: EBUSY on that slot, not EDQUOT. */
	ASSERT_EQ(0, mmk_read_release(self->fd, a));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, a, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ, a, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, a, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, a, &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, c, &g));
}

TEST_HARNESS_MAIN
