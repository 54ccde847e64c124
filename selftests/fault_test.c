// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures on every path that allocates: open, create, attach,
 * mmap and the page faults of a mapping, store and commit, the netlink
 * events, and queues (create, open by name, store-and-push).  Each test runs one operation again and again, making the first,
 * then the second, then the third... allocation of that operation fail,
 * until a run goes through with nothing left to fail (the kernel's
 * "fail-nth" interface, see Documentation/fault-injection/
 * fault-injection.rst, "Systematic faults using fail-nth").
 *
 * Counting slab allocations only, the points of a run come in the same
 * order every time, so such a sweep fails each slab allocation site of the
 * path exactly once.  Counting page allocations too (vmalloc's pages, page
 * tables, new slab pages), the order can shift a little from run to run;
 * those sweeps run twice, once failing only the nth allocation and once
 * failing it and every allocation after it until the call returns
 * (fail-nth, then probability 100 under make-it-fail).  The second kind
 * also fails the fallbacks and retries that absorb a single failure:
 * kvmalloc()'s vmalloc fallback, copy_from_user()'s retry of a failed
 * page fault.  After each run the test checks that:
 *
 *  - the caller got a clean error (ENOMEM; EFAULT where the failing
 *    allocation was a page fault on the caller's buffer), or success when
 *    the kernel could do without the allocation;
 *  - nothing leaked: the module's pool and byte counts are back to what
 *    they were, and the pool's own counts are unchanged;
 *  - the session, the pool and the device still work.
 *
 * A last test lets kmemleak look for anything the failures leaked.
 *
 * The failures are injected by failslab (slab allocations) and
 * fail_page_alloc (pages, page tables, vmalloc), restricted to this test:
 * fail-nth applies to the one task that wrote it, and with task-filter on,
 * a non-zero probability applies only to tasks with make-it-fail set,
 * which this process sets on itself around the call under test only.  The
 * fixture sets and restores the debugfs knobs.  On a kernel without
 * CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC or
 * CONFIG_FAULT_INJECTION_DEBUG_FS the tests are skipped.
 *
 * Some failures are reported in the kernel log by design: a failed
 * vmalloc() prints "vmalloc error: ..." with a stack trace, and kmemleak
 * "Cannot allocate a scan area" once.  The fixture brackets every test
 * with the kernel log lines "mmk-fault: inject begin" and "mmk-fault:
 * inject end", so that a log scan can tell those expected reports from
 * bugs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "mmk_test.h"
#include "mmk_nl.h"
#include "kselftest_harness.h"

#define DEBUGFS		"/sys/kernel/debug/"
#define FAILSLAB	DEBUGFS "failslab/"
#define FAILPAGE	DEBUGFS "fail_page_alloc/"
#define KMEMLEAK	DEBUGFS "kmemleak"
#define POOLS_FILE	"/sys/class/misc/mmk/pools"
#define BYTES_FILE	"/sys/class/misc/mmk/bytes"

#define FT_TYPE		0x6661756c74737431ULL
#define GIB		(1UL << 30)
#define REGION_GIB	256UL		/* fresh address space, 1 GiB per run */
#define COUNT_ARM	1000000000UL	/* "fail the billionth": counts the points */
#define MAX_SAVED	24

/* ---------------------------------------------------------------------- */
/* Files                                                                   */
/* ---------------------------------------------------------------------- */

static uint64_t read_u64(struct __test_metadata *_metadata, const char *path)
{
	char buf[64];

	ASSERT_EQ(0, read_str(path, buf, sizeof(buf))) TH_LOG("%s", path);
	return strtoull(buf, NULL, 0);
}

/* A line in the kernel log, for whoever scans it afterwards. */
static void kmsg(const char *line)
{
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	ssize_t n;

	if (fd >= 0) {
		n = write(fd, line, strlen(line));	/* best effort */
		(void)n;
		close(fd);
	}
}

/* ---------------------------------------------------------------------- */
/* fail-nth: make the nth fault-injection point of this thread fail        */
/* ---------------------------------------------------------------------- */

static int nth_open(void)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth", (long)syscall(SYS_gettid));
	return open(path, O_RDWR | O_CLOEXEC);
}

static int nth_set(int fd, unsigned long n)
{
	char buf[24];
	int len = snprintf(buf, sizeof(buf), "%lu", n);

	return pwrite(fd, buf, len, 0) == len ? 0 : -errno;
}

/* Points left before the armed failure, 0 once it was injected. */
static unsigned long nth_left(int fd)
{
	char buf[24] = "";

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return ~0UL;
	return strtoul(buf, NULL, 10);
}

/* Disarm; true if the armed failure happened. */
static bool nth_disarm(int fd)
{
	unsigned long left = nth_left(fd);

	if (left)
		nth_set(fd, 0);
	return left == 0;
}

/* ---------------------------------------------------------------------- */
/* Fixture                                                                 */
/* ---------------------------------------------------------------------- */

FIXTURE(fi) {
	const char *skip;	/* why nothing can be injected here, or NULL */
	bool page_alloc;	/* fail_page_alloc is there too */
	int nth;		/* this thread's fail-nth */
	int mif;		/* this process's make-it-fail */
	int nsaved;
	struct {
		char path[96];
		char value[32];
	} saved[MAX_SAVED];
	uint64_t pools, bytes;	/* the module's counters before the test */
	char *region;		/* reserved address space, never touched */
	unsigned long next_gib;
	unsigned int serial;
};

/* Set a debugfs knob, remembering its old value for teardown. */
static int knob(FIXTURE_DATA(fi) *self, const char *path, const char *value)
{
	char old[32];
	int ret, i;

	ret = read_str(path, old, sizeof(old));
	if (ret)
		return ret;
	for (i = 0; i < self->nsaved; i++)
		if (!strcmp(self->saved[i].path, path))
			break;
	if (i == self->nsaved && self->nsaved < MAX_SAVED) {
		snprintf(self->saved[i].path, sizeof(self->saved[i].path), "%s", path);
		snprintf(self->saved[i].value, sizeof(self->saved[i].value), "%s", old);
		self->nsaved++;
	}
	return write_str(path, value);
}

FIXTURE_SETUP(fi)
{
	static const char *const slab_knobs[][2] = {
		{ FAILSLAB "task-filter", "Y" },
		{ FAILSLAB "verbose", "0" },
		/* Otherwise only atomic allocations could be failed. */
		{ FAILSLAB "ignore-gfp-wait", "N" },
	};
	static const char *const page_knobs[][2] = {
		{ FAILPAGE "task-filter", "Y" },
		{ FAILPAGE "verbose", "0" },
		{ FAILPAGE "ignore-gfp-wait", "N" },
		/* vmalloc's pages are highmem-capable; page tables are order 0. */
		{ FAILPAGE "ignore-gfp-highmem", "N" },
		{ FAILPAGE "min-order", "0" },
	};
	char probability[32];
	unsigned int i;
	void *p;

	self->nth = -1;
	self->mif = -1;
	self->pools = read_u64(_metadata, POOLS_FILE);
	self->bytes = read_u64(_metadata, BYTES_FILE);

	if (access(FAILSLAB "probability", W_OK)) {
		self->skip = "no writable " FAILSLAB " (needs root, debugfs, CONFIG_FAILSLAB "
			     "and CONFIG_FAULT_INJECTION_DEBUG_FS)";
		return;
	}
	self->nth = nth_open();
	if (self->nth < 0) {
		self->skip = "no /proc/self/task/TID/fail-nth (CONFIG_FAULT_INJECTION)";
		return;
	}
	self->mif = open("/proc/self/make-it-fail", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->mif);
	/* A random failure rate left by someone else would hit us too. */
	ASSERT_EQ(0, read_str(FAILSLAB "probability", probability, sizeof(probability)));
	ASSERT_STREQ("0", probability);
	for (i = 0; i < ARRAY_SIZE(slab_knobs); i++) {
		ASSERT_EQ(0, knob(self, slab_knobs[i][0], slab_knobs[i][1]))
			TH_LOG("%s", slab_knobs[i][0]);
	}
	self->page_alloc = !access(FAILPAGE "probability", W_OK);
	for (i = 0; self->page_alloc && i < ARRAY_SIZE(page_knobs); i++) {
		ASSERT_EQ(0, knob(self, page_knobs[i][0], page_knobs[i][1]))
			TH_LOG("%s", page_knobs[i][0]);
	}

	/* Bring in what this process has, so that its own faults stay out. */
	mlockall(MCL_CURRENT);
	p = mmap(NULL, (REGION_GIB + 1) * GIB, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	self->region = (char *)(((uintptr_t)p + GIB - 1) & ~(GIB - 1));
	kmsg("mmk-fault: inject begin\n");
}

FIXTURE_TEARDOWN(fi)
{
	if (self->nth >= 0) {
		nth_set(self->nth, 0);
		close(self->nth);
	}
	if (self->mif >= 0) {
		if (pwrite(self->mif, "0", 1, 0) != 1)
			TH_LOG("could not clear make-it-fail");
		close(self->mif);
	}
	while (self->nsaved > 0) {
		self->nsaved--;
		if (write_str(self->saved[self->nsaved].path, self->saved[self->nsaved].value))
			TH_LOG("could not restore %s", self->saved[self->nsaved].path);
	}
	if (!self->skip)
		kmsg("mmk-fault: inject end\n");
}

#define NEED_FAILSLAB() do {						\
	if (self->skip)							\
		SKIP(return, "%s", self->skip);				\
} while (0)

#define NEED_FAIL_PAGE_ALLOC() do {					\
	NEED_FAILSLAB();						\
	if (!self->page_alloc)						\
		SKIP(return, "no " FAILPAGE " (CONFIG_FAIL_PAGE_ALLOC)"); \
} while (0)

/*
 * A fresh gigabyte of address space.  Nothing was ever mapped there, so the
 * first fault in it must allocate page tables.
 */
static char *fresh_gib(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self)
{
	ASSERT_GT(REGION_GIB, self->next_gib) TH_LOG("out of fresh address space");
	return self->region + self->next_gib++ * GIB;
}

static void pool_name(FIXTURE_DATA(fi) *self, char *buf, const char *what)
{
	snprintf(buf, MMK_NAME_MAX, "fault-%d-%s-%u", getpid(), what, self->serial++);
}

/* The module's counters are what they were before the test. */
static void expect_no_leak(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			   const char *what, unsigned long n)
{
	EXPECT_EQ(self->pools, read_u64(_metadata, POOLS_FILE)) TH_LOG("%s, point %lu", what, n);
	EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE)) TH_LOG("%s, point %lu", what, n);
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

/*
 * The session works: map the pool, store a message, read it back through
 * the mapping under a read guard, free it.
 */
static void use_pool(struct __test_metadata *_metadata, int fd, const char *what,
		     unsigned long n)
{
	unsigned char payload[16];
	struct mmk_pool_info info;
	struct mmk_guard g;
	uint64_t tok;
	size_t len;
	void *map;

	ASSERT_EQ(0, mmk_info(fd, &info)) TH_LOG("%s, point %lu", what, n);
	fill_pattern(payload, sizeof(payload), n);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("%s, point %lu: mmap: %s", what, n, strerror(errno));
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), n, &tok))
		TH_LOG("%s, point %lu", what, n);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok, &g));
	EXPECT_EQ(sizeof(payload), g.payload_size);
	EXPECT_EQ(n, mmk_at(map, g.offset)->sequence);
	EXPECT_EQ(0, memcmp(payload, mmk_payload(map, g.offset), sizeof(payload)))
		TH_LOG("%s, point %lu", what, n);
	EXPECT_EQ(0, mmk_read_release(fd, tok));
	EXPECT_EQ(0, mmk_free_token(fd, tok));
	EXPECT_EQ(0, munmap(map, len));
}

/* The device works: a new pool can be created and used, and goes away. */
static void device_works(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 const char *what, unsigned long n)
{
	int fd = mmk_create(NULL, 64, 4, 0600, FT_TYPE, 0);

	ASSERT_LE(0, fd) TH_LOG("%s, point %lu: create: %s", what, n, strerror(-fd));
	use_pool(_metadata, fd, what, n);
	close(fd);
	expect_no_leak(_metadata, self, what, n);
}

/* ---------------------------------------------------------------------- */
/* The sweep: fail point 1, 2, 3, ... of one operation                     */
/* ---------------------------------------------------------------------- */

struct sweep;

struct sweep_ops {
	/* Set up what one run needs.  Nothing is failed here. */
	void (*prepare)(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			struct sweep *sw);
	/* The operation under test: 0 (or a count) on success, else -errno. */
	long (*op)(struct sweep *sw);
	/* Check the outcome of one run and undo it. */
	void (*check)(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		      struct sweep *sw, long ret, bool injected, unsigned long n);
};

struct sweep {
	const char *what;
	const struct sweep_ops *ops;
	/*
	 * from: fail the nth point and every later one until the operation
	 * returns; otherwise the nth only.  Never for an operation that is a
	 * user-mode page fault: that fault would be retried forever.
	 */
	bool from;
	/*
	 * Fail slab allocations only: page allocations (new slab pages,
	 * vmalloc pages, page tables) are then no points at all, and the
	 * points of a run are the same from one run to the next, one per
	 * kmalloc or kmem_cache_alloc in the order the code makes them.
	 */
	bool slab_only;
	/* Check less per run (large pools, where each run is slow). */
	bool light;
	/* Of a long sweep, run the first head and the last tail points only. */
	unsigned long head, tail;

	/* Results */
	unsigned long points;	/* fault-injection points of one clean run */
	unsigned int runs;	/* runs with a failure injected */
	unsigned int errors;	/* ... that the caller saw as an error */
	unsigned int absorbed;	/* ... that the kernel did without */
	unsigned int seen[3];	/* errnos seen: ENOMEM, EFAULT, other */

	/* Operation state, set by prepare */
	int fd, fd2;
	char *addr;
	size_t len;
	uint64_t token;
	void *arg;
	unsigned long cmd;
	char name[MMK_NAME_MAX];
	struct mmk_pool_create create;
	struct mmk_pool_info info;
	struct mmk_nl *nl;
	unsigned char expect;
};

static void sweep_count(struct sweep *sw, long ret, bool injected)
{
	if (!injected)
		return;
	sw->runs++;
	if (ret < 0) {
		sw->errors++;
		sw->seen[ret == -ENOMEM ? 0 : ret == -EFAULT ? 1 : 2]++;
	} else {
		sw->absorbed++;
	}
}

static unsigned long sweep_next(const struct sweep *sw, unsigned long n)
{
	if (!sw->head || n < sw->head || n + sw->tail >= sw->points)
		return n + 1;
	return sw->points - sw->tail;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Fail every point of this process from now on (fail-nth comes first). */
static void fail_all(FIXTURE_DATA(fi) *self, bool on)
{
	if (pwrite(self->mif, on ? "1" : "0", 1, 0) != 1)
		abort();
}

static void set_probability(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			    const char *value)
{
	static const char *const dirs[] = { FAILSLAB, FAILPAGE };
	static const char *const knobs[][2] = {
		{ "interval", "1" }, { "times", "-1" }, { "space", "0" },
	};
	char path[128];
	unsigned int d, k;

	for (d = 0; d < ARRAY_SIZE(dirs); d++) {
		if (d && !self->page_alloc)
			break;
		for (k = 0; k < ARRAY_SIZE(knobs); k++) {
			snprintf(path, sizeof(path), "%s%s", dirs[d], knobs[k][0]);
			ASSERT_EQ(0, knob(self, path, knobs[k][1])) TH_LOG("%s", path);
		}
		snprintf(path, sizeof(path), "%sprobability", dirs[d]);
		ASSERT_EQ(0, knob(self, path, value)) TH_LOG("%s", path);
	}
}

/*
 * Count the points of one clean run (fail-nth is armed far beyond them and
 * read back), then fail each point in turn.  The sweep goes on past the
 * counted points while failures are still injected, so a run that happens
 * to allocate more is covered too.
 */
static void sweep(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self, struct sweep *sw)
{
	double t0 = now();
	unsigned long n, left;
	bool injected;
	long ret;

	if (self->page_alloc) {
		ASSERT_EQ(0, knob(self, FAILPAGE "ignore-gfp-wait", sw->slab_only ? "Y" : "N"));
		ASSERT_EQ(0, knob(self, FAILPAGE "min-order", sw->slab_only ? "11" : "0"));
	}
	sw->ops->prepare(_metadata, self, sw);
	ASSERT_EQ(0, nth_set(self->nth, COUNT_ARM));
	ret = sw->ops->op(sw);
	left = nth_left(self->nth);
	ASSERT_EQ(0, nth_set(self->nth, 0));
	ASSERT_LT(0UL, left) TH_LOG("%s: more than %lu points", sw->what, COUNT_ARM);
	sw->points = COUNT_ARM - left;
	sw->ops->check(_metadata, self, sw, ret, false, 0);

	/* Probability 100 applies to make-it-fail tasks only, and only once fail-nth fired. */
	if (sw->from)
		set_probability(_metadata, self, "100");
	for (n = 1;; n = sweep_next(sw, n)) {
		sw->ops->prepare(_metadata, self, sw);
		ASSERT_EQ(0, nth_set(self->nth, n));
		if (sw->from)
			fail_all(self, true);
		ret = sw->ops->op(sw);
		if (sw->from)
			fail_all(self, false);
		injected = nth_disarm(self->nth);
		sweep_count(sw, ret, injected);
		sw->ops->check(_metadata, self, sw, ret, injected, n);
		if (!injected && n > sw->points)
			break;
		ASSERT_GT(sw->points + 1000, n) TH_LOG("%s: failures never stop", sw->what);
	}
	if (sw->from)
		set_probability(_metadata, self, "0");
	if (sw->slab_only && self->page_alloc) {
		ASSERT_EQ(0, knob(self, FAILPAGE "ignore-gfp-wait", "N"));
		ASSERT_EQ(0, knob(self, FAILPAGE "min-order", "0"));
	}
	TH_LOG("%s%s%s: %lu points, %u runs failed: %u errors (%u ENOMEM, %u EFAULT), "
	       "%u absorbed; %.1f s",
	       sw->what, sw->from ? " (from nth on)" : "", sw->slab_only ? " (slab)" : "",
	       sw->points, sw->runs, sw->errors,
	       sw->seen[0], sw->seen[1], sw->absorbed, now() - t0);
	EXPECT_EQ(0U, sw->seen[2]) TH_LOG("%s: unexpected errors", sw->what);
}

/* The same sweep, failing one point, then every point from the nth on. */
static void sweep_both(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		       struct sweep *one, struct sweep *from)
{
	*from = *one;
	from->from = true;
	sweep(_metadata, self, one);
	sweep(_metadata, self, from);
}

/* ---------------------------------------------------------------------- */
/* Open                                                                    */
/* ---------------------------------------------------------------------- */

static void open_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw)
{
}

static long open_op(struct sweep *sw)
{
	sw->fd = open(MMK_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	return sw->fd < 0 ? -errno : 0;
}

static void open_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		       struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_create c = {
		.payload_size = 64, .capacity = 2, .mode = 0600, .payload_type = FT_TYPE,
	};

	if (ret) {
		ASSERT_EQ(-ENOMEM, ret) TH_LOG("open, point %lu", n);
		ASSERT_TRUE(injected);
		sw->fd = mmk_open();
		ASSERT_LE(0, sw->fd);
	}
	/* The session, failed into or not, works. */
	ASSERT_EQ(0, mmk_ioctl(sw->fd, MMK_IOC_CREATE, &c)) TH_LOG("open, point %lu", n);
	use_pool(_metadata, sw->fd, "open", n);
	close(sw->fd);
	expect_no_leak(_metadata, self, "open", n);
}

static const struct sweep_ops open_ops = { open_prepare, open_op, open_check };

/* open(/dev/mmk): the session's allocation, and the file's. */
TEST_F_TIMEOUT(fi, open_session, 300)
{
	struct sweep one = { .what = "open", .ops = &open_ops }, from;

	NEED_FAILSLAB();
	sweep_both(_metadata, self, &one, &from);
	EXPECT_LE(1U, one.seen[0]) TH_LOG("no open failed with ENOMEM");
	EXPECT_LE(1U, from.seen[0]) TH_LOG("no open failed with ENOMEM");
}

/* ---------------------------------------------------------------------- */
/* Create                                                                  */
/* ---------------------------------------------------------------------- */

static void create_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			   struct sweep *sw)
{
	if (sw->create.name[0])
		pool_name(self, sw->create.name, "c");
	sw->create.pool_id = 0;
	sw->fd = mmk_open();
	ASSERT_LE(0, sw->fd);
}

static long create_op(struct sweep *sw)
{
	return mmk_ioctl(sw->fd, MMK_IOC_CREATE, &sw->create);
}

static void create_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_info info;

	if (ret) {
		ASSERT_EQ(-ENOMEM, ret) TH_LOG("create, point %lu", n);
		ASSERT_TRUE(injected);
		/* Nothing is left: no session binding, no pool, no name. */
		EXPECT_EQ(-ENOTCONN, mmk_info(sw->fd, &info)) TH_LOG("create, point %lu", n);
		expect_no_leak(_metadata, self, "create", n);
		if (sw->create.name[0]) {
			EXPECT_EQ(-ENOENT, mmk_attach(sw->create.name, FT_TYPE))
				TH_LOG("create, point %lu: failed pool can be attached", n);
		}
		if (sw->light) {
			close(sw->fd);
			return;
		}
		/* The same session can create it now. */
		ASSERT_EQ(0, mmk_ioctl(sw->fd, MMK_IOC_CREATE, &sw->create))
			TH_LOG("create, point %lu: create after the failure", n);
	}
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(sw->create.capacity, info.capacity);
	EXPECT_EQ(sw->create.pool_id, info.pool_id);
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(self->pools + 1, read_u64(_metadata, POOLS_FILE));
	EXPECT_EQ(self->bytes + info.charged_bytes, read_u64(_metadata, BYTES_FILE));
	if (sw->create.name[0] && !sw->light) {
		int fd2 = mmk_attach(sw->create.name, FT_TYPE);

		EXPECT_LE(0, fd2) TH_LOG("create, point %lu: attach: %s", n, strerror(-fd2));
		if (fd2 >= 0)
			close(fd2);
	}
	if (!sw->light)
		use_pool(_metadata, sw->fd, "create", n);
	close(sw->fd);
	expect_no_leak(_metadata, self, "create", n);
}

static const struct sweep_ops create_ops = { create_prepare, create_op, create_check };

static void create_args(struct mmk_pool_create *c, uint32_t payload, uint32_t capacity,
			uint32_t flags, bool named)
{
	memset(c, 0, sizeof(*c));
	c->flags = flags;
	c->payload_size = payload;
	c->capacity = capacity;
	c->mode = 0600;
	c->payload_type = FT_TYPE;
	c->memory_class = MMK_MEM_HOST;
	c->name[0] = named;	/* create_prepare gives it a fresh name */
}

/*
 * A small named pool: the pool, its slot array, each slot, the free
 * stack, the arena (vmalloc: its area, its pages, their page tables), the
 * pool id and the session's hold words all fail in turn.
 */
TEST_F_TIMEOUT(fi, create_small_pool, 300)
{
	struct sweep one = { .what = "create 4 x 16", .ops = &create_ops }, from, slab;

	NEED_FAILSLAB();
	create_args(&one.create, 16, 4, 0, true);
	slab = one;
	slab.slab_only = true;
	sweep(_metadata, self, &slab);
	sweep_both(_metadata, self, &one, &from);
	/*
	 * At least: pool, slot array, 4 slots, free stack, arena (its
	 * vmap_area and vm_struct), hold words; the pool id's node when the
	 * id tree needs one.
	 */
	EXPECT_LE(10U, slab.seen[0]);
	EXPECT_LE(10U, one.seen[0]);
	EXPECT_LE(10U, from.seen[0]);
	device_works(_metadata, self, "create 4 x 16", 0);
}

/* A page-aligned pool: the arena spans several pages. */
TEST_F_TIMEOUT(fi, create_page_aligned_pool, 300)
{
	struct sweep one = { .what = "create 3 x 5000 page-aligned", .ops = &create_ops }, from;

	NEED_FAILSLAB();
	create_args(&one.create, 5000, 3, MMK_POOL_PAGE_ALIGNED, false);
	sweep_both(_metadata, self, &one, &from);
	EXPECT_LE(8U, one.seen[0]);
	EXPECT_LE(8U, from.seen[0]);
	device_works(_metadata, self, "create page-aligned", 0);
}

/*
 * Every slot is its own allocation, and each one's failure is an ENOMEM.
 * Failing slab allocations only, the sites come in the same order every
 * run, so nine slots are at least eight more sites giving ENOMEM than one
 * slot.  (At most ten more: the pool id's tree may need a node or two in
 * one run and not in the other, depending on the id it hands out.)
 */
TEST_F_TIMEOUT(fi, create_fails_at_every_slot, 300)
{
	struct sweep one = { .what = "create 1 slot", .ops = &create_ops, .slab_only = true };
	struct sweep nine = { .what = "create 9 slots", .ops = &create_ops, .slab_only = true };

	NEED_FAILSLAB();
	create_args(&one.create, 100, 1, 0, false);
	create_args(&nine.create, 100, 9, 0, false);
	sweep(_metadata, self, &one);
	sweep(_metadata, self, &nine);
	EXPECT_LE(one.seen[0] + 8, nine.seen[0]);
	EXPECT_GE(one.seen[0] + 10, nine.seen[0]);
}

/*
 * 1025 slots: the slot array, the free stack and the hold words are more
 * than a page, so kvmalloc tries kmalloc and then falls back to vmalloc.
 * Failing the first attempt alone is absorbed; failing the fallback too is
 * ENOMEM.  The slots themselves (covered above) are skipped: only the
 * first 12 and the last 60 points are failed, which hold the pool, the
 * slot array, the last slots, the free stack, the arena, the pool id and
 * the hold words.
 */
TEST_F_TIMEOUT(fi, create_large_pool, 600)
{
	struct sweep one = {
		.what = "create 1025 x 16", .ops = &create_ops,
		.light = true, .head = 12, .tail = 60,
	}, from;

	NEED_FAILSLAB();
	create_args(&one.create, 16, 1025, 0, true);
	sweep_both(_metadata, self, &one, &from);
	EXPECT_LE(1U, one.absorbed) TH_LOG("no kvmalloc fell back to vmalloc");
	EXPECT_LE(6U, one.seen[0]);
	EXPECT_LE(8U, from.seen[0]);
	device_works(_metadata, self, "create 1025", 0);
}

/* ---------------------------------------------------------------------- */
/* Attach                                                                  */
/* ---------------------------------------------------------------------- */

static void attach_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			   struct sweep *sw)
{
	sw->fd2 = mmk_open();
	ASSERT_LE(0, sw->fd2);
}

static long attach_op(struct sweep *sw)
{
	struct mmk_pool_attach a = { .payload_type = FT_TYPE };

	memcpy(a.name, sw->name, sizeof(a.name));
	return mmk_ioctl(sw->fd2, MMK_IOC_ATTACH, &a);
}

static void attach_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_attach a = { .payload_type = FT_TYPE };
	struct mmk_pool_info info;

	memcpy(a.name, sw->name, sizeof(a.name));
	if (ret) {
		ASSERT_EQ(-ENOMEM, ret) TH_LOG("attach, point %lu", n);
		ASSERT_TRUE(injected);
		EXPECT_EQ(-ENOTCONN, mmk_info(sw->fd2, &info));
		ASSERT_EQ(0, mmk_info(sw->fd, &info));
		EXPECT_EQ(1U, info.sessions) TH_LOG("attach, point %lu", n);
		ASSERT_EQ(0, mmk_ioctl(sw->fd2, MMK_IOC_ATTACH, &a))
			TH_LOG("attach, point %lu: attach after the failure", n);
	}
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(2U, info.sessions);
	use_pool(_metadata, sw->fd2, "attach", n);
	close(sw->fd2);
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(info.capacity, info.available);
	EXPECT_EQ(self->pools + 1, read_u64(_metadata, POOLS_FILE));
}

static const struct sweep_ops attach_ops = { attach_prepare, attach_op, attach_check };

static void attach_sweep(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 uint32_t capacity, const char *what, struct sweep *one, struct sweep *from)
{
	one->what = what;
	one->ops = &attach_ops;
	pool_name(self, one->name, "a");
	one->fd = mmk_create(one->name, 16, capacity, 0600, FT_TYPE, 0);
	ASSERT_LE(0, one->fd);
	sweep_both(_metadata, self, one, from);
	close(one->fd);
	expect_no_leak(_metadata, self, what, 0);
	device_works(_metadata, self, what, 0);
}

/*
 * Attach allocates the session's hold words: one kmalloc for 4 slots; for
 * 2000 slots (8000 bytes), kvmalloc's kmalloc try and its vmalloc fallback.
 */
TEST_F_TIMEOUT(fi, attach_small_and_large, 300)
{
	struct sweep small = { 0 }, small_from, large = { 0 }, large_from;

	NEED_FAILSLAB();
	attach_sweep(_metadata, self, 4, "attach 4 slots", &small, &small_from);
	EXPECT_LE(1U, small.seen[0]);
	EXPECT_LE(1U, small_from.seen[0]);
	attach_sweep(_metadata, self, 2000, "attach 2000 slots", &large, &large_from);
	/* The kmalloc try fails alone: the fallback takes over. */
	EXPECT_LE(1U, large.absorbed);
	EXPECT_LE(1U, large_from.seen[0]);
}

/* ---------------------------------------------------------------------- */
/* Map                                                                     */
/* ---------------------------------------------------------------------- */

static void mmap_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw)
{
}

static long mmap_op(struct sweep *sw)
{
	sw->addr = mmap(NULL, sw->len, PROT_READ, MAP_SHARED, sw->fd, 0);
	return sw->addr == MAP_FAILED ? -errno : 0;
}

static void mmap_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		       struct sweep *sw, long ret, bool injected, unsigned long n)
{
	if (ret) {
		ASSERT_EQ(-ENOMEM, ret) TH_LOG("mmap, point %lu", n);
		ASSERT_TRUE(injected);
		/* Not EBUSY: the failed mapping is not counted as the session's. */
		sw->addr = mmap(NULL, sw->len, PROT_READ, MAP_SHARED, sw->fd, 0);
		ASSERT_NE(MAP_FAILED, sw->addr)
			TH_LOG("mmap, point %lu: mmap after the failure: %s", n, strerror(errno));
	}
	EXPECT_EQ(sw->expect, ((volatile unsigned char *)sw->addr)[sw->token]);
	ASSERT_EQ(0, munmap(sw->addr, sw->len));
}

static const struct sweep_ops mmap_ops = { mmap_prepare, mmap_op, mmap_check };

/* Store a message of payload bytes equal to value; where its first byte is. */
static uint64_t store_byte(struct __test_metadata *_metadata, int fd, unsigned char value)
{
	unsigned char payload[64];
	struct mmk_guard g;
	uint64_t tok;

	memset(payload, value, sizeof(payload));
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), value, &tok));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_PEEK_HEADER, tok, &g));
	ASSERT_EQ(0, mmk_read_release(fd, tok));
	return g.offset + sizeof(struct mmk_msg_header);
}

/* mmap(2) of the arena: the VMA and the core's bookkeeping fail in turn. */
TEST_F_TIMEOUT(fi, mmap_arena, 300)
{
	struct sweep sw = { .what = "mmap", .ops = &mmap_ops, .expect = 0x3c }, from;

	NEED_FAILSLAB();
	sw.fd = mmk_create(NULL, 4032, 8, 0600, FT_TYPE, 0);
	ASSERT_LE(0, sw.fd);
	ASSERT_EQ(0, mmk_info(sw.fd, &sw.info));
	sw.len = sw.info.map_size;
	sw.token = store_byte(_metadata, sw.fd, sw.expect);
	sweep_both(_metadata, self, &sw, &from);
	EXPECT_LE(1U, sw.seen[0]);
	EXPECT_LE(1U, from.seen[0]);
	use_pool(_metadata, sw.fd, "mmap", 0);
	close(sw.fd);
	expect_no_leak(_metadata, self, "mmap", 0);
}

/* A user read of a page of the mapping: page tables fail, the fault retries. */
static void fault_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			  struct sweep *sw)
{
	char *at = fresh_gib(_metadata, self);

	sw->addr = mmap(at, sw->len, PROT_READ, MAP_SHARED | MAP_FIXED, sw->fd, 0);
	ASSERT_EQ(at, sw->addr) TH_LOG("mmap: %s", strerror(errno));
}

static long fault_op(struct sweep *sw)
{
	return ((volatile unsigned char *)sw->addr)[sw->token];
}

static void fault_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			struct sweep *sw, long ret, bool injected, unsigned long n)
{
	EXPECT_EQ(sw->expect, ret) TH_LOG("fault, point %lu", n);
	ASSERT_EQ(0, munmap(sw->addr, sw->len));
}

static const struct sweep_ops fault_ops = { fault_prepare, fault_op, fault_check };

/* The same page read by the kernel: write(2) from the mapping into a pipe. */
static long kfault_op(struct sweep *sw)
{
	ssize_t n = write(sw->fd2, sw->addr + sw->token, 32);

	return n < 0 ? -errno : n;
}

static void kfault_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw, long ret, bool injected, unsigned long n)
{
	unsigned char buf[32], want[32];
	int *pfd = sw->arg;

	if (ret < 0) {
		/* The pipe's page (ENOMEM), or the fault on the mapping (EFAULT). */
		ASSERT_TRUE(ret == -EFAULT || ret == -ENOMEM)
			TH_LOG("kernel read, point %lu: %s", n, strerror(-ret));
		ASSERT_TRUE(injected);
	} else {
		ASSERT_EQ(32, ret);
		ASSERT_EQ(32, read(pfd[0], buf, sizeof(buf)));
		memset(want, sw->expect, sizeof(want));
		EXPECT_EQ(0, memcmp(want, buf, sizeof(buf))) TH_LOG("kernel read, point %lu", n);
	}
	EXPECT_EQ(sw->expect, ((volatile unsigned char *)sw->addr)[sw->token]);
	ASSERT_EQ(0, munmap(sw->addr, sw->len));
}

static const struct sweep_ops kfault_ops = { fault_prepare, kfault_op, kfault_check };

/*
 * Page tables for the mapping, allocated by the fault.  A user read whose
 * fault fails is retried and sees the right byte.  A kernel read (write(2)
 * from the mapping) retries a failed fault once inside copy_from_user(), so
 * only failing every point from the nth on makes it fail, with EFAULT.
 */
TEST_F_TIMEOUT(fi, page_fault_on_mapping, 300)
{
	struct sweep user = { .what = "fault (user read)", .ops = &fault_ops, .expect = 0xa7 };
	struct sweep kern = { .what = "fault (kernel read)", .ops = &kfault_ops, .expect = 0xa7 };
	struct sweep kern_from;
	int pfd[2];

	NEED_FAIL_PAGE_ALLOC();
	user.fd = mmk_create(NULL, 4032, 8, 0600, FT_TYPE, 0);
	ASSERT_LE(0, user.fd);
	ASSERT_EQ(0, mmk_info(user.fd, &user.info));
	user.len = user.info.map_size;
	user.token = store_byte(_metadata, user.fd, 0x11);
	user.token = store_byte(_metadata, user.fd, user.expect);	/* second page */
	sweep(_metadata, self, &user);
	/* At least a page table was allocated, failed, and the fault retried. */
	EXPECT_LE(1U, user.absorbed);
	EXPECT_EQ(0U, user.errors);

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	kern.fd = user.fd;
	kern.fd2 = pfd[1];
	kern.arg = pfd;
	kern.len = user.len;
	kern.token = user.token;
	sweep_both(_metadata, self, &kern, &kern_from);
	EXPECT_LE(1U, kern.absorbed);
	EXPECT_LE(1U, kern_from.seen[1]) TH_LOG("no kernel read failed with EFAULT");
	close(pfd[0]);
	close(pfd[1]);
	use_pool(_metadata, user.fd, "fault", 0);
	close(user.fd);
	expect_no_leak(_metadata, self, "fault", 0);
}

/* Writable windows: the window's mmap, then a write fault through it. */
static long wmmap_op(struct sweep *sw)
{
	sw->addr = mmap(NULL, sw->len, PROT_READ | PROT_WRITE, MAP_SHARED, sw->fd,
			sw->cmd);
	return sw->addr == MAP_FAILED ? -errno : 0;
}

static void wmmap_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			struct sweep *sw, long ret, bool injected, unsigned long n)
{
	if (ret) {
		ASSERT_EQ(-ENOMEM, ret) TH_LOG("window mmap, point %lu", n);
		ASSERT_TRUE(injected);
		sw->addr = mmap(NULL, sw->len, PROT_READ | PROT_WRITE, MAP_SHARED, sw->fd,
				sw->cmd);
		ASSERT_NE(MAP_FAILED, sw->addr)
			TH_LOG("window mmap, point %lu: again: %s", n, strerror(errno));
	}
	EXPECT_EQ(sw->expect, ((volatile unsigned char *)sw->addr)[sw->token]);
	ASSERT_EQ(0, munmap(sw->addr, sw->len));
}

static const struct sweep_ops wmmap_ops = { mmap_prepare, wmmap_op, wmmap_check };

static void wfault_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			   struct sweep *sw)
{
	char *at = fresh_gib(_metadata, self);

	sw->addr = mmap(at, sw->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, sw->fd,
			sw->cmd);
	ASSERT_EQ(at, sw->addr) TH_LOG("window mmap: %s", strerror(errno));
}

static long wfault_op(struct sweep *sw)
{
	((volatile unsigned char *)sw->addr)[sw->token] = ++sw->expect;
	return 0;
}

static void wfault_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw, long ret, bool injected, unsigned long n)
{
	EXPECT_EQ(sw->expect, ((volatile unsigned char *)sw->addr)[sw->token])
		TH_LOG("window write, point %lu", n);
	ASSERT_EQ(0, munmap(sw->addr, sw->len));
}

static const struct sweep_ops wfault_ops = { wfault_prepare, wfault_op, wfault_check };

/* A slot's window, or the arena window (every slot, @arena). */
static void window_sweeps(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			  bool arena_window)
{
	struct sweep map = { .what = "window mmap", .ops = &wmmap_ops }, map_from;
	struct sweep wr = { .what = "window write fault", .ops = &wfault_ops };
	struct mmk_guard g;
	const unsigned char *arena;
	uint64_t tok, at;
	size_t len;
	int fd;

	fd = mmk_create(NULL, 5000, 2, 0600, FT_TYPE, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &map.info));
	arena = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, arena);
	ASSERT_EQ(0, mmk_store_seq(fd, "window", 6, 1, &tok));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g));

	/* Where the slot starts in the window. */
	at = arena_window ? g.offset : 0;
	map.fd = wr.fd = fd;
	map.len = wr.len = arena_window ? map.info.map_size : map.info.slot_size;
	map.cmd = wr.cmd = MMK_WINDOW_OFFSET(arena_window ? 0 : g.offset);
	map.token = at + sizeof(struct mmk_msg_header);	/* the payload's first byte */
	wr.token = at + 4096 + 10;			/* a byte on the slot's second page */
	map.expect = 'w';
	sweep_both(_metadata, self, &map, &map_from);
	EXPECT_LE(1U, map.seen[0]);
	EXPECT_LE(1U, map_from.seen[0]);
	sweep(_metadata, self, &wr);
	EXPECT_LE(1U, wr.absorbed);

	/* Every write went in, and the release takes the window's message. */
	ASSERT_EQ(0, mmk_write_release(fd, tok));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok, &g));
	EXPECT_EQ(wr.expect, arena[g.offset + wr.token - at]);
	EXPECT_EQ(0, memcmp("window", mmk_payload(arena, g.offset), 6));
	EXPECT_EQ(0, mmk_read_release(fd, tok));
	munmap((void *)arena, len);
	close(fd);
	expect_no_leak(_metadata, self, "window", 0);
}

TEST_F_TIMEOUT(fi, window_mmap_and_fault, 300)
{
	NEED_FAIL_PAGE_ALLOC();
	window_sweeps(_metadata, self, false);
}

TEST_F_TIMEOUT(fi, arena_window_mmap_and_fault, 300)
{
	NEED_FAIL_PAGE_ALLOC();
	window_sweeps(_metadata, self, true);
}

/* ---------------------------------------------------------------------- */
/* Store and commit                                                        */
/* ---------------------------------------------------------------------- */

/*
 * The store path allocates nothing of its own; what it can meet is a page
 * fault on the caller's buffers.  Header and payload are in fresh anonymous
 * memory, never touched: copying them in needs page tables.
 */
static void ustore_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			   struct sweep *sw)
{
	char *at = fresh_gib(_metadata, self);

	ASSERT_EQ(0, mmk_info(sw->fd, &sw->info));
	sw->addr = mmap(at, 2 * 4096, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(at, sw->addr);
}

static long ustore_op(struct sweep *sw)
{
	struct mmk_store s = {
		.header = (uintptr_t)sw->addr,
		.payload = (uintptr_t)sw->addr + 4096,
		.payload_size = 100,
	};
	int ret = mmk_ioctl(sw->fd, MMK_IOC_STORE, &s);

	sw->token = s.token;
	return ret;
}

static void ustore_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_info info;
	unsigned char zero[100] = { 0 };
	struct mmk_guard g;

	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	if (ret) {
		ASSERT_EQ(-EFAULT, ret) TH_LOG("store, point %lu: %s", n, strerror(-ret));
		ASSERT_TRUE(injected);
		/* Nothing was taken. */
		EXPECT_EQ(info.capacity, info.available) TH_LOG("store, point %lu", n);
		EXPECT_EQ(sw->info.stores, info.stores);
		ASSERT_EQ(0, ustore_op(sw)) TH_LOG("store, point %lu: again", n);
	} else {
		EXPECT_EQ(sw->info.stores + 1, info.stores);
	}
	ASSERT_EQ(0, mmk_guard(sw->fd, MMK_IOC_READ, sw->token, &g));
	EXPECT_EQ(100U, g.payload_size);
	EXPECT_EQ(0, memcmp(zero, mmk_payload(sw->arg, g.offset), sizeof(zero)));
	EXPECT_EQ(0, mmk_read_release(sw->fd, sw->token));
	EXPECT_EQ(0, mmk_free_token(sw->fd, sw->token));
	ASSERT_EQ(0, munmap(sw->addr, 2 * 4096));
}

static const struct sweep_ops ustore_ops = { ustore_prepare, ustore_op, ustore_check };

/* A commit from fresh buffers: EFAULT keeps the guard and the message. */
static void ucommit_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			    struct sweep *sw)
{
	struct mmk_guard g;

	ustore_prepare(_metadata, self, sw);
	sw->token = 0;
	ASSERT_EQ(0, mmk_store_seq(sw->fd, "old message", 11, 5, &sw->token));
	ASSERT_EQ(0, mmk_guard(sw->fd, MMK_IOC_READ_MUT, sw->token, &g));
	sw->len = g.offset;
}

static long ucommit_op(struct sweep *sw)
{
	struct mmk_release r = {
		.token = sw->token,
		.flags = MMK_RELEASE_COMMIT,
		.payload_size = 50,
		.header = (uintptr_t)sw->addr,
		.payload = (uintptr_t)sw->addr + 4096,
	};

	return mmk_ioctl(sw->fd, MMK_IOC_WRITE_RELEASE, &r);
}

static void ucommit_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			  struct sweep *sw, long ret, bool injected, unsigned long n)
{
	const unsigned char *arena = sw->arg;
	unsigned char zero[50] = { 0 };
	struct mmk_pool_info info;
	struct mmk_guard g;

	if (ret) {
		ASSERT_EQ(-EFAULT, ret) TH_LOG("commit, point %lu: %s", n, strerror(-ret));
		ASSERT_TRUE(injected);
		/* Guard still held, message unchanged. */
		ASSERT_EQ(0, mmk_info(sw->fd, &info));
		EXPECT_EQ(1U, info.write_guards) TH_LOG("commit, point %lu", n);
		EXPECT_EQ(0U, info.poisoned);
		EXPECT_EQ(11U, mmk_at(arena, sw->len)->payload_size);
		EXPECT_EQ(0, memcmp("old message", mmk_payload(arena, sw->len), 11));
		ASSERT_EQ(0, ucommit_op(sw)) TH_LOG("commit, point %lu: again", n);
	}
	ASSERT_EQ(0, mmk_guard(sw->fd, MMK_IOC_READ, sw->token, &g));
	EXPECT_EQ(50U, g.payload_size);
	EXPECT_EQ(0, memcmp(zero, mmk_payload(arena, g.offset), sizeof(zero)));
	EXPECT_EQ(0, mmk_read_release(sw->fd, sw->token));
	EXPECT_EQ(0, mmk_free_token(sw->fd, sw->token));
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(info.capacity, info.available);
	ASSERT_EQ(0, munmap(sw->addr, 2 * 4096));
}

static const struct sweep_ops ucommit_ops = { ucommit_prepare, ucommit_op, ucommit_check };

/*
 * copy_from_user() retries a failed fault once, so a single failure is
 * absorbed; failing every point from the nth on gives EFAULT, with nothing
 * stored, and for a commit the guard and the old message kept.
 */
TEST_F_TIMEOUT(fi, store_and_commit_from_unfaulted_buffers, 300)
{
	struct sweep st = { .what = "store", .ops = &ustore_ops }, st_from;
	struct sweep cm = { .what = "commit", .ops = &ucommit_ops }, cm_from;
	size_t len;
	void *arena;

	NEED_FAIL_PAGE_ALLOC();
	st.fd = mmk_create(NULL, 256, 4, 0600, FT_TYPE, 0);
	ASSERT_LE(0, st.fd);
	arena = mmk_map(st.fd, &len);
	ASSERT_NE(MAP_FAILED, arena);
	ASSERT_EQ(0, mmk_info(st.fd, &st.info));
	st.arg = arena;
	sweep_both(_metadata, self, &st, &st_from);
	EXPECT_LE(1U, st.absorbed);
	EXPECT_LE(1U, st_from.seen[1]) TH_LOG("no store failed with EFAULT");

	cm.fd = st.fd;
	cm.arg = arena;
	sweep_both(_metadata, self, &cm, &cm_from);
	EXPECT_LE(1U, cm.absorbed);
	EXPECT_LE(1U, cm_from.seen[1]) TH_LOG("no commit failed with EFAULT");
	munmap(arena, len);
	close(st.fd);
	expect_no_leak(_metadata, self, "store", 0);
}

/* Count the fault-injection points one call passes. */
#define POINTS(call) ({							\
	unsigned long __left;						\
	ASSERT_EQ(0, nth_set(self->nth, COUNT_ARM));			\
	ret = (call);							\
	__left = nth_left(self->nth);					\
	ASSERT_EQ(0, nth_set(self->nth, 0));				\
	COUNT_ARM - __left;						\
})

/*
 * Store (from memory already present), guards, release, commit, free and
 * POOL_INFO allocate nothing: the data path cannot fail for lack of memory.
 */
TEST_F(fi, data_path_does_not_allocate)
{
	unsigned char payload[200];
	struct mmk_msg_header h = { .sequence = 9 };
	struct mmk_store s = {
		.header = (uintptr_t)&h, .payload = (uintptr_t)payload, .payload_size = 200,
	};
	struct mmk_release commit = {
		.flags = MMK_RELEASE_COMMIT, .payload_size = 100,
		.header = (uintptr_t)&h, .payload = (uintptr_t)payload,
	};
	struct mmk_pool_info info;
	struct mmk_release rel;
	struct mmk_guard g;
	struct mmk_free f;
	int fd, ret;

	NEED_FAILSLAB();
	fill_pattern(payload, sizeof(payload), 3);
	fd = mmk_create(NULL, 256, 4, 0600, FT_TYPE, 0);
	ASSERT_LE(0, fd);

	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_STORE, &s)));
	ASSERT_EQ(0, ret);
	memset(&g, 0, sizeof(g));
	g.token = s.token;
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_READ, &g)));
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_PEEK_HEADER, &g)));
	ASSERT_EQ(0, ret);
	memset(&rel, 0, sizeof(rel));
	rel.token = s.token;
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_READ_RELEASE, &rel)));
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_READ_RELEASE, &rel)));
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_READ_MUT, &g)));
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &rel)));
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_READ_MUT, &g)));
	ASSERT_EQ(0, ret);
	commit.token = s.token;
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &commit)));
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_POOL_INFO, &info)));
	ASSERT_EQ(0, ret);
	memset(&f, 0, sizeof(f));
	f.token = s.token;
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_FREE, &f)));
	ASSERT_EQ(0, ret);
	/* Errors do not allocate either. */
	EXPECT_EQ(0UL, POINTS(mmk_ioctl(fd, MMK_IOC_READ, &g)));
	EXPECT_EQ(-ENODATA, ret);
	close(fd);
	expect_no_leak(_metadata, self, "data path", 0);
}

/* ---------------------------------------------------------------------- */
/* Netlink events: their allocations fail, the operations do not           */
/* ---------------------------------------------------------------------- */

static void drain(struct mmk_nl *nl)
{
	struct mmk_nl_reply r = { 0 };

	mmk_nl_drain_events(nl, &r);
	mmk_nl_reply_free(&r);
}

/* A store into a full pool, with an exhausted event to send. */
static void full_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw)
{
	uint64_t tok;

	drain(sw->nl);
	sw->fd = mmk_create(NULL, 16, 1, 0600, FT_TYPE, 0);
	ASSERT_LE(0, sw->fd);
	ASSERT_EQ(0, mmk_store_seq(sw->fd, "full", 4, 1, &tok));
}

/* ENOSPC is this store's success: 0 for it, 1 for a store that got in. */
static long full_op(struct sweep *sw)
{
	uint64_t tok;
	int ret = mmk_store_seq(sw->fd, "more", 4, 2, &tok);

	return ret == -ENOSPC ? 0 : ret ? ret : 1;
}

static void full_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		       struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_info info;

	EXPECT_EQ(0, ret) TH_LOG("full store, point %lu: not ENOSPC", n);
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(1U, info.no_free_slots);
	EXPECT_EQ(0U, info.available);
	EXPECT_EQ(1U, info.stores);
	close(sw->fd);
	expect_no_leak(_metadata, self, "full store", n);
}

static const struct sweep_ops full_ops = { full_prepare, full_op, full_check };

/* Closing a session that holds a write guard: the poisoned event. */
static void poison_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			   struct sweep *sw)
{
	struct mmk_guard g;

	drain(sw->nl);
	pool_name(self, sw->name, "p");
	sw->fd = mmk_create(sw->name, 16, 2, 0600, FT_TYPE, 0);
	ASSERT_LE(0, sw->fd);
	ASSERT_EQ(0, mmk_store_seq(sw->fd, "poison", 6, 1, &sw->token));
	sw->fd2 = mmk_attach(sw->name, FT_TYPE);
	ASSERT_LE(0, sw->fd2);
	ASSERT_EQ(0, mmk_guard(sw->fd2, MMK_IOC_READ_MUT, sw->token, &g));
}

static long poison_op(struct sweep *sw)
{
	return close(sw->fd2) ? -errno : 0;
}

static void poison_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_info info;
	struct mmk_guard g;

	EXPECT_EQ(0, ret);
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(1U, info.poisoned) TH_LOG("close, point %lu", n);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(sw->fd, MMK_IOC_READ, sw->token, &g));
	EXPECT_EQ(0, mmk_free_token(sw->fd, sw->token));
	close(sw->fd);
	expect_no_leak(_metadata, self, "close", n);
}

static const struct sweep_ops poison_ops = { poison_prepare, poison_op, poison_check };

/* The last close of a pool: the destroyed event. */
static void last_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			 struct sweep *sw)
{
	uint64_t tok;

	drain(sw->nl);
	pool_name(self, sw->name, "l");
	sw->fd = mmk_create(sw->name, 16, 2, 0600, FT_TYPE, 0);
	ASSERT_LE(0, sw->fd);
	ASSERT_EQ(0, mmk_store_seq(sw->fd, "last", 4, 1, &tok));
}

static long last_op(struct sweep *sw)
{
	return close(sw->fd) ? -errno : 0;
}

static void last_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		       struct sweep *sw, long ret, bool injected, unsigned long n)
{
	EXPECT_EQ(0, ret);
	expect_no_leak(_metadata, self, "last close", n);
	EXPECT_EQ(-ENOENT, mmk_attach(sw->name, FT_TYPE));
}

static const struct sweep_ops last_ops = { last_prepare, last_op, last_check };

TEST_F_TIMEOUT(fi, event_allocations, 300)
{
	struct sweep sw[4] = {
		{ .what = "create, monitored", .ops = &create_ops },
		{ .what = "store into a full pool, monitored", .ops = &full_ops },
		{ .what = "close with a write guard, monitored", .ops = &poison_ops },
		{ .what = "last close, monitored", .ops = &last_ops },
	}, from[4];
	struct mmk_nl nl;
	unsigned int i;
	int ret;

	NEED_FAILSLAB();
	ret = mmk_nl_open(&nl);
	ASSERT_EQ(0, ret) TH_LOG("netlink: %s", strerror(-ret));
	ret = mmk_nl_join_monitor(&nl);
	if (ret) {
		mmk_nl_close(&nl);
		SKIP(return, "cannot join the monitor group: %s", strerror(-ret));
	}
	create_args(&sw[0].create, 16, 2, 0, true);
	for (i = 0; i < ARRAY_SIZE(sw); i++) {
		sw[i].nl = &nl;
		sweep_both(_metadata, self, &sw[i], &from[i]);
		drain(&nl);
		/* The event's allocations fail without failing the operation. */
		EXPECT_LE(1U, sw[i].absorbed) TH_LOG("%s", sw[i].what);
	}
	mmk_nl_close(&nl);
	device_works(_metadata, self, "events", 0);
}

/* ---------------------------------------------------------------------- */
/* Random failures, everywhere at once                                     */
/* ---------------------------------------------------------------------- */

static bool clean_errno(int err)
{
	return err == ENOMEM || err == EFAULT;
}

/*
 * With make-it-fail set on this process only, one in ten allocations fails,
 * whatever the path; a loop opens, creates, attaches, maps, stores, takes
 * guards, commits, frees and closes.  Every error must be a clean one
 * (ENOMEM, or EFAULT for a copy whose page fault failed), data read back
 * must be what was stored, and once the failures stop everything must be
 * back and working.
 */
struct storm {
	unsigned int calls, errors, unclean, torn;
	int bad_errno[8];
	int bad_line[8];
	/* munmap() can fail too: what is left is unmapped afterwards. */
	unsigned int nleft;
	struct {
		void *addr;
		size_t len;
	} left[64];
};

static int storm_step(struct storm *st, int ret, int line)
{
	st->calls++;
	if (ret >= 0)
		return ret;
	st->errors++;
	if (!clean_errno(-ret)) {
		if (st->unclean < ARRAY_SIZE(st->bad_errno)) {
			st->bad_errno[st->unclean] = -ret;
			st->bad_line[st->unclean] = line;
		}
		st->unclean++;
	}
	return ret;
}

#define STEP(expr)	storm_step(&st, (expr), __LINE__)
#define ERR(cond)	((cond) ? -errno : 0)

static void storm_round(struct storm *st_, unsigned int i, const unsigned char *payload,
			size_t plen)
{
	struct mmk_msg_header h = { .sequence = i };
	struct mmk_pool_attach a = { .payload_type = FT_TYPE };
	struct mmk_pool_create c = {
		.payload_size = plen, .capacity = 8, .mode = 0600, .payload_type = FT_TYPE,
	};
	struct mmk_release r;
	struct mmk_pool_info info;
	struct storm st = *st_;
	struct mmk_guard g;
	void *map = MAP_FAILED;
	uint32_t size = 1 + i % plen;
	int fd, fd2 = -1;
	uint64_t tok;

	fd = open(MMK_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (STEP(ERR(fd < 0)))
		goto out;
	snprintf(c.name, sizeof(c.name), "fault-%d-r%u", getpid(), i);
	if (STEP(mmk_ioctl(fd, MMK_IOC_CREATE, &c)))
		goto out;
	memcpy(a.name, c.name, sizeof(a.name));
	fd2 = open(MMK_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (!STEP(ERR(fd2 < 0)) && STEP(mmk_ioctl(fd2, MMK_IOC_ATTACH, &a))) {
		close(fd2);
		fd2 = -1;
	}
	if (!STEP(mmk_info(fd, &info))) {
		map = mmap(NULL, info.map_size, PROT_READ, MAP_SHARED, fd, 0);
		STEP(ERR(map == MAP_FAILED));
	}
	if (STEP(mmk_store_seq(fd, payload, size, i, &tok)))
		goto out;
	if (fd2 >= 0 && !STEP(mmk_guard(fd2, MMK_IOC_READ, tok, &g))) {
		if (g.payload_size != size ||
		    (map != MAP_FAILED && memcmp(payload, mmk_payload(map, g.offset), size)))
			st.torn++;
		STEP(mmk_read_release(fd2, tok));
	}
	if (!STEP(mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g))) {
		memset(&r, 0, sizeof(r));
		r.token = tok;
		r.flags = MMK_RELEASE_COMMIT;
		r.payload_size = size / 2;
		r.header = (uintptr_t)&h;
		r.payload = (uintptr_t)payload + 1;
		if (STEP(mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r)))
			STEP(mmk_write_release(fd, tok));
	}
	/* Sometimes leave the message, and a write guard, to the close. */
	if (i % 3)
		STEP(mmk_free_token(fd, tok));
	else if (fd2 >= 0)
		STEP(mmk_guard(fd2, MMK_IOC_READ_MUT, tok, &g));
out:
	if (map != MAP_FAILED && STEP(ERR(munmap(map, info.map_size)))) {
		if (st.nleft < ARRAY_SIZE(st.left)) {
			st.left[st.nleft].addr = map;
			st.left[st.nleft++].len = info.map_size;
		} else {
			st.torn++;	/* cannot happen with 300 rounds */
		}
	}
	if (fd2 >= 0)
		close(fd2);
	if (fd >= 0)
		close(fd);
	*st_ = st;
}

TEST_F_TIMEOUT(fi, random_failures, 300)
{
	unsigned char payload[300];
	static struct storm st;
	char name[MMK_NAME_MAX];
	unsigned int i;
	int fd, fd2;

	NEED_FAIL_PAGE_ALLOC();
	fill_pattern(payload, sizeof(payload), 1);
	set_probability(_metadata, self, "10");
	fail_all(self, true);
	for (i = 0; i < 300; i++)
		storm_round(&st, i, payload, sizeof(payload));
	fail_all(self, false);
	set_probability(_metadata, self, "0");

	for (i = 0; i < st.nleft; i++) {
		EXPECT_EQ(0, munmap(st.left[i].addr, st.left[i].len));
	}
	TH_LOG("random failures: %u calls, %u failed, %u munmap calls failed", st.calls,
	       st.errors, st.nleft);
	for (i = 0; i < st.unclean && i < ARRAY_SIZE(st.bad_errno); i++)
		TH_LOG("unclean error at line %d: %s", st.bad_line[i], strerror(st.bad_errno[i]));
	EXPECT_EQ(0U, st.unclean);
	EXPECT_EQ(0U, st.torn);
	EXPECT_LT(0U, st.errors) TH_LOG("nothing failed: is fault injection working?");
	expect_no_leak(_metadata, self, "random failures", 0);

	pool_name(self, name, "after");
	fd = mmk_create(name, 64, 4, 0600, FT_TYPE, 0);
	ASSERT_LE(0, fd);
	fd2 = mmk_attach(name, FT_TYPE);
	ASSERT_LE(0, fd2);
	use_pool(_metadata, fd2, "random failures", 0);
	close(fd2);
	close(fd);
	device_works(_metadata, self, "random failures", 0);
}

#undef STEP
#undef ERR

/* ---------------------------------------------------------------------- */
/* Queues                                                                  */
/* ---------------------------------------------------------------------- */

#define QPARAM		"/sys/module/mmk/parameters/max_queues_per_pool"

static struct mmk_queue_open qopen;

/* A fresh pool for each run; with only one queue allowed per pool, a leaked count shows. */
static void queue_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			  struct sweep *sw)
{
	pool_name(self, sw->name, "q");
	sw->fd = mmk_create(sw->name, 64, 8, 0600, FT_TYPE, 0);
	ASSERT_LE(0, sw->fd);
	sw->fd2 = -1;
	if (sw->create.name[0]) {
		/* Open by name: the queue exists already. */
		sw->fd2 = mmk_queue_create(sw->fd, "fq", MMK_QUEUE_REJECT, 64, 0);
		ASSERT_LE(0, sw->fd2);
		memset(&qopen, 0, sizeof(qopen));
		qopen.flags = MMK_QUEUE_CLOEXEC;
		snprintf(qopen.name, sizeof(qopen.name), "fq");
	} else {
		memset(&qopen, 0, sizeof(qopen));
		qopen.flags = MMK_QUEUE_CREATE | MMK_QUEUE_CLOEXEC;
		qopen.policy = MMK_QUEUE_DROP_OLDEST;
		qopen.cap_items = 64;
		qopen.cap_bytes = 4096;
		snprintf(qopen.name, sizeof(qopen.name), "fq");
	}
	qopen.fd = -1;
	sw->arg = &qopen;
}

static long queue_op(struct sweep *sw)
{
	return mmk_ioctl(sw->fd, MMK_IOC_QUEUE_OPEN, sw->arg);
}

/* The queue (the old one, or the new one) carries a message from one session to another. */
static void queue_works(struct __test_metadata *_metadata, struct sweep *sw, int qfd,
			unsigned long n)
{
	unsigned char payload[16];
	struct mmk_popped e;
	uint64_t tok;
	int s2 = mmk_attach(sw->name, FT_TYPE), q2;

	ASSERT_LE(0, s2) TH_LOG("queue, point %lu", n);
	q2 = mmk_queue_open_name(s2, "fq");
	ASSERT_LE(0, q2) TH_LOG("queue, point %lu: open by name: %s", n, strerror(-q2));
	fill_pattern(payload, sizeof(payload), n);
	ASSERT_EQ(0, mmk_store_push(sw->fd, qfd, NULL, payload, sizeof(payload), &tok))
		TH_LOG("queue, point %lu", n);
	ASSERT_EQ(0, mmk_pop1(s2, q2, 0, &e)) TH_LOG("queue, point %lu", n);
	EXPECT_EQ(tok, e.token);
	EXPECT_EQ(0, mmk_read_release(s2, tok));
	EXPECT_EQ(-ENODATA, mmk_free_token(sw->fd, tok));
	close(q2);
	close(s2);
}

static void queue_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_info info;
	int qfd;

	if (ret) {
		ASSERT_EQ(-ENOMEM, ret) TH_LOG("queue open, point %lu", n);
		ASSERT_TRUE(injected);
		if (sw->fd2 < 0) {
			/* Nothing made: no name, and the pool's one queue is still to be had. */
			EXPECT_EQ(-ENOENT, mmk_queue_open_name(sw->fd, "fq"))
				TH_LOG("queue open, point %lu", n);
			qfd = mmk_queue_create(sw->fd, "fq", MMK_QUEUE_REJECT, 64, 0);
			ASSERT_LE(0, qfd) TH_LOG("queue open, point %lu: create after: %s", n,
						 strerror(-qfd));
		} else {
			qfd = dup(sw->fd2);
		}
	} else {
		qfd = qopen.fd;
		ASSERT_LE(0, qfd);
		EXPECT_EQ(FD_CLOEXEC, fcntl(qfd, F_GETFD) & FD_CLOEXEC);
	}
	/* Never more than the one queue. */
	EXPECT_EQ(-EDQUOT, mmk_queue_create(sw->fd, NULL, MMK_QUEUE_REJECT, 1, 0))
		TH_LOG("queue open, point %lu", n);
	queue_works(_metadata, sw, qfd, n);
	close(qfd);
	if (sw->fd2 >= 0)
		close(sw->fd2);
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(8U, info.available);
	EXPECT_EQ(info.stores, info.frees);
	close(sw->fd);
	expect_no_leak(_metadata, self, "queue open", n);
}

static const struct sweep_ops queue_ops = { queue_prepare, queue_op, queue_check };

/* Creating a queue: the queue, its ring, its bitmap, its id, its file and descriptor. */
TEST_F_TIMEOUT(fi, queue_create, 300)
{
	struct sweep one = { .what = "queue create", .ops = &queue_ops }, from, slab;

	NEED_FAILSLAB();
	ASSERT_EQ(0, knob(self, QPARAM, "1"));
	slab = one;
	slab.slab_only = true;
	sweep(_metadata, self, &slab);
	sweep_both(_metadata, self, &one, &from);
	/* At least the queue, its ring, its bitmap and the file. */
	EXPECT_LE(3U, slab.seen[0]);
	EXPECT_LE(3U, one.seen[0]);
	device_works(_metadata, self, "queue create", 0);
}

/* Opening a queue by name: a new file on the same queue. */
TEST_F_TIMEOUT(fi, queue_open_by_name, 300)
{
	struct sweep one = { .what = "queue open by name", .ops = &queue_ops }, from;

	NEED_FAILSLAB();
	ASSERT_EQ(0, knob(self, QPARAM, "1"));
	one.create.name[0] = 1;		/* open, not create */
	sweep_both(_metadata, self, &one, &from);
	EXPECT_LE(1U, one.seen[0]);
	device_works(_metadata, self, "queue open by name", 0);
}

static void spush_prepare(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			  struct sweep *sw)
{
	static unsigned char payload[40];
	static struct mmk_msg_header h;
	static struct mmk_push p;

	pool_name(self, sw->name, "p");
	sw->fd = mmk_create(sw->name, 64, 4, 0600, FT_TYPE, 0);
	ASSERT_LE(0, sw->fd);
	sw->fd2 = mmk_queue_create(sw->fd, "fq", MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, sw->fd2);
	fill_pattern(payload, sizeof(payload), 3);
	memset(&h, 0, sizeof(h));
	h.sequence = 3;
	memset(&p, 0, sizeof(p));
	p.flags = MMK_PUSH_STORE;
	p.nr_queues = 1;
	p.queue_fds[0] = sw->fd2;
	p.header = (uintptr_t)&h;
	p.payload = (uintptr_t)payload;
	p.payload_size = sizeof(payload);
	sw->arg = &p;
}

static long spush_op(struct sweep *sw)
{
	return mmk_ioctl(sw->fd, MMK_IOC_PUSH, sw->arg);
}

static void spush_check(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
			struct sweep *sw, long ret, bool injected, unsigned long n)
{
	struct mmk_pool_info info;

	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	if (ret) {
		ASSERT_EQ(-ENOMEM, ret) TH_LOG("store-and-push, point %lu", n);
		/* Nothing stored, nothing queued. */
		EXPECT_EQ(4U, info.available);
		EXPECT_EQ(0U, info.stores);
		EXPECT_EQ(0, mmk_queue_items(sw->fd2));
	} else {
		struct mmk_popped e;

		EXPECT_EQ(3U, info.available);
		EXPECT_EQ(1, mmk_queue_items(sw->fd2));
		ASSERT_EQ(0, mmk_pop1(sw->fd, sw->fd2, 0, &e));
		EXPECT_EQ(0, mmk_read_release(sw->fd, e.token));
	}
	queue_works(_metadata, sw, sw->fd2, n);
	close(sw->fd2);
	ASSERT_EQ(0, mmk_info(sw->fd, &info));
	EXPECT_EQ(4U, info.available);
	close(sw->fd);
	expect_no_leak(_metadata, self, "store-and-push", n);
}

static const struct sweep_ops spush_ops = { spush_prepare, spush_op, spush_check };

/* Store-and-push: whatever fails, nothing is half stored or half queued. */
TEST_F_TIMEOUT(fi, queue_store_push, 300)
{
	struct sweep one = { .what = "store-and-push", .ops = &spush_ops }, from;

	NEED_FAILSLAB();
	sweep_both(_metadata, self, &one, &from);
	device_works(_metadata, self, "store-and-push", 0);
}

/* ---------------------------------------------------------------------- */
/* kmemleak                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Last: everything the tests above failed and freed again must really be
 * gone.  kmemleak reports only objects older than 5 seconds, so wait that
 * long first, then scan.
 */
TEST_F_TIMEOUT(fi, kmemleak_finds_nothing, 300)
{
	static char report[64 * 1024];
	unsigned int leaks = 0;
	const char *p;
	ssize_t n;
	int fd;

	NEED_FAILSLAB();
	if (access(KMEMLEAK, R_OK | W_OK))
		SKIP(return, "no " KMEMLEAK " (CONFIG_DEBUG_KMEMLEAK)");
	sleep(6);
	ASSERT_EQ(0, write_str(KMEMLEAK, "scan"));
	fd = open(KMEMLEAK, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	n = read(fd, report, sizeof(report) - 1);
	close(fd);
	ASSERT_LE(0, n);
	report[n] = '\0';
	for (p = report; (p = strstr(p, "unreferenced object")); p++)
		leaks++;
	EXPECT_EQ(0U, leaks) TH_LOG("kmemleak:\n%.4000s", report);
}

TEST_HARNESS_MAIN
