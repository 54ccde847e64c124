// SPDX-License-Identifier: GPL-2.0
/*
 * Limits that hold under memory pressure, and the rules around them:
 *
 *  - the caps are reserved before anything is allocated: a create over a
 *    full cap gets EDQUOT without allocating, also from 30 processes at
 *    once and from a memory cgroup far too small for the pool;
 *  - a create or attach that the caller's memory cgroup cannot hold gets
 *    ENOMEM, and nobody is OOM-killed;
 *  - what the caps count (pool_bytes, charged_bytes, sysfs bytes);
 *  - a dead pool's token does not name a slot of the pool reusing its id;
 *  - attach with an expected owner; the name rules;
 *  - a write guard won by a wait in flight across close is not poisoned.
 *
 * Runs as root; some checks fork a child that becomes nobody.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "mmk_test.h"

#define LIM_TYPE	0x6c696d697473ULL
#define NOBODY		65534
#define POOLS_FILE	"/sys/class/misc/mmk/pools"
#define BYTES_FILE	"/sys/class/misc/mmk/bytes"
#define CGROUP_ROOT	"/sys/fs/cgroup"
#define PAGE_PAYLOAD	(4096 - 64)	/* one page per slot with its header */
#define MIB		(1024ULL * 1024)

static uint64_t read_u64(struct __test_metadata *_metadata, const char *path)
{
	char buf[64];

	ASSERT_EQ(0, read_str(path, buf, sizeof(buf))) TH_LOG("%s", path);
	return strtoull(buf, NULL, 0);
}

/* A counter from a file of "key value" lines (meminfo, memory.events). */
static long long keyed_value(const char *path, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && (line[n] == ' ' || line[n] == ':'))
			v = strtoll(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

static long long mem_available_kib(void)
{
	return keyed_value("/proc/meminfo", "MemAvailable");
}

/* An unprivileged user that may open the device (its group, as udev sets it). */
static int become_nobody(void)
{
	if (mmk_setgroups_permitted(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	return 0;
}

static pid_t start_child(void)
{
	fflush(NULL);
	return fork();
}

/* The child's exit status, or 1000 + signal if it was killed. */
static int wait_child(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

/* ---------------------------------------------------------------------- */
/* Module parameters, saved and restored                                   */
/* ---------------------------------------------------------------------- */

FIXTURE(lim) {
	uint64_t pools, bytes;
	struct mmk_params saved;
	char cgroup[128];
	uint32_t id;
};

FIXTURE_SETUP(lim)
{
	self->pools = read_u64(_metadata, POOLS_FILE);
	self->bytes = read_u64(_metadata, BYTES_FILE);
}

FIXTURE_TEARDOWN(lim)
{
	if (mmk_params_restore(&self->saved))
		TH_LOG("could not restore the module parameters");
	if (self->cgroup[0] && rmdir(self->cgroup))
		TH_LOG("could not remove %s: %s", self->cgroup, strerror(errno));
}

static void set_param(struct __test_metadata *_metadata, FIXTURE_DATA(lim) *self,
		      const char *name, uint64_t value)
{
	ASSERT_EQ(0, mmk_param_set(&self->saved, name, value)) TH_LOG("%s", name);
}

/* The largest page-slot pool under max_pool_bytes, with room for metadata. */
static uint32_t big_capacity(struct __test_metadata *_metadata)
{
	uint64_t cap = mmk_param_u64("max_pool_bytes") / 4096;

	return cap - cap / 16;
}

/*
 * A memory cgroup of its own, limited to max bytes, in self->cgroup;
 * false (and the reason in why) if cgroup v2 or its memory controller is
 * missing.
 */
static bool make_memcg(FIXTURE_DATA(lim) *self, uint64_t max, char *why, size_t len)
{
	char path[192], val[32];

	if (access(CGROUP_ROOT "/cgroup.controllers", F_OK)) {
		snprintf(why, len, "cgroup2 is not mounted at " CGROUP_ROOT);
		return false;
	}
	if (write_str(CGROUP_ROOT "/cgroup.subtree_control", "+memory")) {
		snprintf(why, len, "no memory controller: %s", strerror(errno));
		return false;
	}
	snprintf(self->cgroup, sizeof(self->cgroup), CGROUP_ROOT "/mmk-limits-%d", getpid());
	if (mkdir(self->cgroup, 0755)) {
		snprintf(why, len, "mkdir %s: %s", self->cgroup, strerror(errno));
		self->cgroup[0] = '\0';
		return false;
	}
	snprintf(path, sizeof(path), "%s/memory.max", self->cgroup);
	snprintf(val, sizeof(val), "%llu", (unsigned long long)max);
	if (write_str(path, val)) {
		snprintf(why, len, "memory.max: %s", strerror(errno));
		return false;
	}
	return true;
}

/* Move the calling process into the cgroup at dir.  0 or -errno. */
static int enter_cgroup(const char *dir)
{
	char path[192], pid[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_str(path, pid);
}

static long long memcg_oom_kills(FIXTURE_DATA(lim) *self)
{
	char path[192];

	snprintf(path, sizeof(path), "%s/memory.events", self->cgroup);
	return keyed_value(path, "oom_kill");
}

/* ---------------------------------------------------------------------- */
/* Caps before allocation                                                  */
/* ---------------------------------------------------------------------- */

/*
 * With no pool left under max_pools, a large create in a memory cgroup
 * that could not hold it gets EDQUOT: had it allocated first, it would
 * have run into the cgroup's limit.  Nothing is left behind.
 */
TEST_F_TIMEOUT(lim, full_cap_refuses_before_allocating, 120)
{
	uint32_t cap = big_capacity(_metadata);
	char why[160];
	pid_t pid;
	int ret;

	if (!make_memcg(self, 8 * MIB, why, sizeof(why)))
		SKIP(return, "%s", why);
	set_param(_metadata, self, "max_pools", self->pools);
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (enter_cgroup(self->cgroup))
			_exit(100);
		ret = mmk_create(NULL, PAGE_PAYLOAD, cap, 0600, LIM_TYPE, 0);
		_exit(ret == -EDQUOT ? 0 : ret < 0 ? -ret : 101);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, memcg_oom_kills(self));
	EXPECT_EQ(self->pools, read_u64(_metadata, POOLS_FILE));
	EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE));
}

#define HAMMERS		30
#define HAMMER_SECS	4

/* Loop on large creates until the deadline; exit 0 if every one was EDQUOT. */
static void hammer_child(uint32_t cap, time_t until)
{
	int ret;

	if (become_nobody())
		_exit(100);
	while (time(NULL) < until) {
		ret = mmk_create(NULL, PAGE_PAYLOAD, cap, 0600, LIM_TYPE, 0);
		if (ret >= 0)
			_exit(101);
		if (ret != -EDQUOT)
			_exit(-ret);
	}
	_exit(0);
}

/*
 * 30 unprivileged processes loop on creates of the largest pool over a
 * full max_total_bytes: each gets EDQUOT and nothing else, and the
 * memory they could have taken stays available.
 */
TEST_F_TIMEOUT(lim, concurrent_creates_over_full_cap, 120)
{
	uint32_t cap = big_capacity(_metadata);
	long long before, low, now;
	pid_t pids[HAMMERS];
	time_t until;
	int i;

	set_param(_metadata, self, "max_total_bytes", self->bytes);
	before = mem_available_kib();
	ASSERT_LT(0, before);
	low = before;
	until = time(NULL) + HAMMER_SECS;
	for (i = 0; i < HAMMERS; i++) {
		pids[i] = start_child();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			hammer_child(cap, until);
	}
	while (time(NULL) <= until) {
		now = mem_available_kib();
		if (now < low)
			low = now;
		usleep(20000);
	}
	for (i = 0; i < HAMMERS; i++)
		EXPECT_EQ(0, wait_child(pids[i])) TH_LOG("child %d", i);
	/* One pool is tens of MiB: a single allocation in flight shows. */
	EXPECT_GT(low, before - (long long)(16 * MIB / 1024))
		TH_LOG("MemAvailable went from %lld to %lld KiB", before, low);
	EXPECT_EQ(self->pools, read_u64(_metadata, POOLS_FILE));
	EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE));
}

/* ---------------------------------------------------------------------- */
/* No OOM kill in a small memory cgroup                                    */
/* ---------------------------------------------------------------------- */

#define BALLAST		(7 * MIB)	/* taken by the child before the call */
#define ATTACH_CAP	(1U << 18)	/* hold words of 1 MiB: more than is left */

struct memcg_case {
	const char *what;
	uint32_t payload;	/* of the pool to create, or 0 to attach */
	uint32_t capacity;	/* 0: big_capacity() */
};

static const struct memcg_case memcg_cases[] = {
	{ "create of the largest pool", PAGE_PAYLOAD, 0 },
	{ "create of 65536 small slots", 1, 65536 },
	{ "attach of a pool of 2^18 slots", 0, ATTACH_CAP },
};

/* In the cgroup, with BALLAST touched: run the case, exit 0 on ENOMEM. */
static void memcg_child(const char *cgroup, const struct memcg_case *c, uint32_t cap,
			const char *name)
{
	char *ballast;
	int ret;

	if (enter_cgroup(cgroup))
		_exit(100);
	ballast = malloc(BALLAST);
	if (!ballast)
		_exit(102);
	memset(ballast, 1, BALLAST);
	if (c->payload)
		ret = mmk_create(NULL, c->payload, cap, 0600, LIM_TYPE, 0);
	else
		ret = mmk_attach(name, LIM_TYPE);
	_exit(ret == -ENOMEM ? 0 : ret < 0 ? -ret : 101);
}

/*
 * A process in a memory cgroup of 8 MiB creates pools that cannot fit
 * there, and attaches to a pool whose per-session state cannot: ENOMEM,
 * no OOM kill, the process lives on, and the module's counters are back.
 */
TEST_F_TIMEOUT(lim, small_memcg_gets_enomem_not_oom, 300)
{
	char why[160], name[MMK_NAME_MAX];
	uint64_t pools, bytes;
	unsigned int i;
	int owner = -1;
	pid_t pid;

	if (!make_memcg(self, 8 * MIB, why, sizeof(why)))
		SKIP(return, "%s", why);
	/* Room for the pool to attach to, created here, outside the cgroup. */
	set_param(_metadata, self, "max_capacity", ATTACH_CAP);
	set_param(_metadata, self, "max_pool_bytes", 256 * MIB);
	set_param(_metadata, self, "max_total_bytes", self->bytes + 512 * MIB);
	snprintf(name, sizeof(name), "mmk-limits-attach-%d", getpid());

	for (i = 0; i < sizeof(memcg_cases) / sizeof(memcg_cases[0]); i++) {
		const struct memcg_case *c = &memcg_cases[i];
		uint32_t cap = c->capacity ? c->capacity : 64 * MIB / 4096;

		if (!c->payload) {
			owner = mmk_create(name, 1, c->capacity, 0600, LIM_TYPE, 0);
			ASSERT_LE(0, owner) TH_LOG("%s", c->what);
		}
		pools = read_u64(_metadata, POOLS_FILE);
		bytes = read_u64(_metadata, BYTES_FILE);
		pid = start_child();
		ASSERT_LE(0, pid);
		if (pid == 0)
			memcg_child(self->cgroup, c, cap, name);
		EXPECT_EQ(0, wait_child(pid)) TH_LOG("%s", c->what);
		EXPECT_EQ(0, memcg_oom_kills(self)) TH_LOG("%s", c->what);
		EXPECT_EQ(pools, read_u64(_metadata, POOLS_FILE)) TH_LOG("%s", c->what);
		EXPECT_EQ(bytes, read_u64(_metadata, BYTES_FILE)) TH_LOG("%s", c->what);
		if (owner >= 0)
			close(owner);
		owner = -1;
	}
	EXPECT_EQ(self->pools, read_u64(_metadata, POOLS_FILE));
	EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE));
}

/* ---------------------------------------------------------------------- */
/* What the caps count                                                     */
/* ---------------------------------------------------------------------- */

struct shape {
	uint32_t payload, capacity, flags;
};

static const struct shape shapes[] = {
	{ 1, 16384, 0 },			/* slot metadata weighs more than data */
	{ PAGE_PAYLOAD, 64, MMK_POOL_PAGE_ALIGNED },
	{ 1000, 3, 0 },
};

/*
 * pool_bytes counts at least the arena and, per slot, a pointer, a slot
 * object and a free-stack entry; charged_bytes adds 4 bytes per slot for
 * each bound session; sysfs bytes is the sum.  The caps compare exactly
 * these numbers.
 */
TEST_F_TIMEOUT(lim, caps_count_what_is_allocated, 120)
{
	struct mmk_pool_info info, info2;
	char name[MMK_NAME_MAX];
	unsigned int i;
	uint64_t holds;
	int fd, fd2, fd3;

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *sh = &shapes[i];

		snprintf(name, sizeof(name), "mmk-limits-count-%d-%u", getpid(), i);
		fd = mmk_create(name, sh->payload, sh->capacity, 0600, LIM_TYPE, sh->flags);
		ASSERT_LE(0, fd) TH_LOG("shape %u", i);
		ASSERT_EQ(0, mmk_info(fd, &info));
		holds = 4ULL * sh->capacity;
		EXPECT_LE(info.map_size + sh->capacity * (8ULL + 16 + 4), info.pool_bytes);
		EXPECT_EQ(info.pool_bytes + holds, info.charged_bytes);
		EXPECT_EQ(self->bytes + info.charged_bytes, read_u64(_metadata, BYTES_FILE));

		/* A second session adds its hold words, and gives them back. */
		fd2 = mmk_attach(name, LIM_TYPE);
		ASSERT_LE(0, fd2);
		ASSERT_EQ(0, mmk_info(fd2, &info2));
		EXPECT_EQ(info.pool_bytes + 2 * holds, info2.charged_bytes);
		EXPECT_EQ(self->bytes + info2.charged_bytes, read_u64(_metadata, BYTES_FILE));
		close(fd2);

		/* max_total_bytes: exactly the pool and one more session fit. */
		set_param(_metadata, self, "max_total_bytes",
			  self->bytes + info.charged_bytes + holds);
		fd2 = mmk_attach(name, LIM_TYPE);
		EXPECT_LE(0, fd2);
		fd3 = mmk_attach(name, LIM_TYPE);
		EXPECT_EQ(-EDQUOT, fd3);
		if (fd3 >= 0)
			close(fd3);
		if (fd2 >= 0)
			close(fd2);
		close(fd);
		EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE));

		/* The pool and its creator's session: one byte less is EDQUOT. */
		set_param(_metadata, self, "max_total_bytes", self->bytes + info.charged_bytes - 1);
		fd = mmk_create(NULL, sh->payload, sh->capacity, 0600, LIM_TYPE, sh->flags);
		EXPECT_EQ(-EDQUOT, fd);
		if (fd >= 0)
			close(fd);
		set_param(_metadata, self, "max_total_bytes", self->bytes + info.charged_bytes);
		fd = mmk_create(NULL, sh->payload, sh->capacity, 0600, LIM_TYPE, sh->flags);
		EXPECT_LE(0, fd);
		if (fd >= 0)
			close(fd);

		/* max_pool_bytes compares pool_bytes: one byte less is EINVAL. */
		set_param(_metadata, self, "max_pool_bytes", info.pool_bytes - 1);
		fd = mmk_create(NULL, sh->payload, sh->capacity, 0600, LIM_TYPE, sh->flags);
		EXPECT_EQ(-EINVAL, fd);
		if (fd >= 0)
			close(fd);
		/* Restore max_total_bytes and max_pool_bytes for the next shape. */
		ASSERT_EQ(0, mmk_params_restore(&self->saved));
		EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE));
		EXPECT_EQ(self->pools, read_u64(_metadata, POOLS_FILE));
	}
}

/* ---------------------------------------------------------------------- */
/* Stale pool ids                                                          */
/* ---------------------------------------------------------------------- */

#define TOK_POOL(t)	((uint32_t)((t) >> 48))

/*
 * A pool's token, the pool gone, and a new pool with the same id (pool
 * ids are cyclic: create and close until the id comes back): the old
 * token is EBADSLT there, before and after a store, and differs from the
 * new pool's first token.
 */
#define ID_LOOP_PROBE	512	/* creates timed before going on */
#define ID_LOOP_MAX_S	240	/* longest projected loop worth running */

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Create and close pools until one gets @id; its fd, or -errno: -ETIME
 * if the first creates show that the whole loop would take too long here
 * (the debug kernel under TCG).
 */
static __attribute__((noinline)) int create_until_id(uint32_t id, unsigned int *n)
{
	struct timespec t0;
	uint32_t got = 0;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (*n = 1; *n <= 65536; (*n)++) {
		fd = mmk_create_id(NULL, 16, 1, 0600, LIM_TYPE, 0, &got);
		if (fd < 0 || got == id)
			return fd;
		close(fd);
		if (*n == ID_LOOP_PROBE &&
		    seconds_since(&t0) * (65536 / ID_LOOP_PROBE) > ID_LOOP_MAX_S)
			return -ETIME;
	}
	return -ESRCH;
}

TEST_F_TIMEOUT(lim, dead_pool_token_misses_pool_reusing_its_id, 600)
{
	unsigned char payload[16] = "stale";
	struct timespec t0;
	uint64_t old, fresh;
	struct mmk_guard g;
	unsigned int n;
	int fd;

	fd = mmk_create_id(NULL, sizeof(payload), 1, 0600, LIM_TYPE, 0, &self->id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 1, &old));
	close(fd);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = create_until_id(self->id, &n);
	if (fd == -ETIME)
		SKIP(return, "%u creates took %.1f s: 65534 would take over %d s here",
		     n, seconds_since(&t0), ID_LOOP_MAX_S);
	ASSERT_LE(0, fd) TH_LOG("after %u creates", n);
	TH_LOG("pool id %u came back after %u creates, %.1f s", self->id, n,
	       seconds_since(&t0));
	EXPECT_EQ(-EBADSLT, mmk_guard(fd, MMK_IOC_READ, old, &g));
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 2, &fresh));
	EXPECT_EQ(TOK_POOL(old), TOK_POOL(fresh));
	EXPECT_NE(old, fresh);
	EXPECT_EQ(-EBADSLT, mmk_guard(fd, MMK_IOC_READ, old, &g));
	EXPECT_EQ(-EBADSLT, mmk_free_token(fd, old));
	EXPECT_EQ(0, mmk_free_token(fd, fresh));
	close(fd);
}

/* ---------------------------------------------------------------------- */
/* Attach with an expected owner                                           */
/* ---------------------------------------------------------------------- */

struct owner_case {
	const char *what;
	bool as_nobody;
	uint32_t mode;		/* of the pool, created by root */
	bool exists;
	uint32_t flags, owner;
	int want;		/* 0 or -errno */
};

static const struct owner_case owner_cases[] = {
	{ "root expects root", false, 0600, true, MMK_ATTACH_OWNER, 0, 0 },
	{ "root expects nobody", false, 0600, true, MMK_ATTACH_OWNER, NOBODY, -EPERM },
	{ "no owner given", false, 0600, true, 0, 0, 0 },
	{ "nobody expects root, mode allows", true, 0666, true, MMK_ATTACH_OWNER, 0, 0 },
	{ "squatted name: owner before mode", true, 0600, true, MMK_ATTACH_OWNER, NOBODY,
	  -EPERM },
	{ "right owner, mode refuses", true, 0600, true, MMK_ATTACH_OWNER, 0, -EACCES },
	{ "no such pool before owner", false, 0600, false, MMK_ATTACH_OWNER, NOBODY,
	  -ENOENT },
	{ "uid with no mapping", false, 0600, true, MMK_ATTACH_OWNER, (uint32_t)-1, -EINVAL },
	{ "owner_uid without the flag", false, 0600, true, 0, 5, -EINVAL },
};

static int owner_attach_errno(const struct owner_case *c, const char *name)
{
	int fd = mmk_attach_owner(name, LIM_TYPE, c->flags, c->owner);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd;
}

TEST_F(lim, attach_expects_owner)
{
	char name[MMK_NAME_MAX];
	unsigned int i;
	int fd = -1, ret;
	pid_t pid;

	for (i = 0; i < sizeof(owner_cases) / sizeof(owner_cases[0]); i++) {
		const struct owner_case *c = &owner_cases[i];

		snprintf(name, sizeof(name), "mmk-limits-owner-%d-%u", getpid(), i);
		if (c->exists) {
			fd = mmk_create(name, 16, 2, c->mode, LIM_TYPE, 0);
			ASSERT_LE(0, fd) TH_LOG("%s", c->what);
		}
		if (c->as_nobody) {
			pid = start_child();
			ASSERT_LE(0, pid);
			if (pid == 0) {
				if (become_nobody())
					_exit(100);
				ret = owner_attach_errno(c, name);
				_exit(ret == c->want ? 0 : ret < 0 ? -ret : 101);
			}
			EXPECT_EQ(0, wait_child(pid)) TH_LOG("%s", c->what);
		} else {
			EXPECT_EQ(c->want, owner_attach_errno(c, name)) TH_LOG("%s", c->what);
		}
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
}

/* ---------------------------------------------------------------------- */
/* Names                                                                   */
/* ---------------------------------------------------------------------- */

struct name_case {
	const char *name;
	int want;
};

static const struct name_case name_cases[] = {
	{ "latin1-\x80", -EINVAL },
	{ "latin1-\xff", -EINVAL },
	{ "\xe9t\xe9", -EINVAL },
	{ "del-\x7f", -EINVAL },
	{ "with space", -EINVAL },
	{ "with/slash", -EINVAL },
	{ "tab\there", -EINVAL },
	{ "!~:#-_.{}", 0 },
};

/* Only bytes 0x21..0x7e but '/': create and attach agree. */
TEST_F(lim, names_are_printable_ascii)
{
	char name[MMK_NAME_MAX];
	unsigned int i;
	int fd, fd2;

	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];

		snprintf(name, sizeof(name), "%s%d", c->name, getpid());
		fd = mmk_create(name, 16, 1, 0600, LIM_TYPE, 0);
		EXPECT_EQ(c->want, fd < 0 ? fd : 0) TH_LOG("row %u", i);
		fd2 = mmk_attach(name, LIM_TYPE);
		EXPECT_EQ(c->want, fd2 < 0 ? fd2 : 0) TH_LOG("row %u", i);
		if (fd2 >= 0)
			close(fd2);
		if (fd >= 0)
			close(fd);
	}
}

/* ---------------------------------------------------------------------- */
/* A write guard won by a wait across close                                */
/* ---------------------------------------------------------------------- */

struct waiter {
	int fd;
	uint64_t token;
	int ret;
};

static void *wait_read_mut(void *arg)
{
	struct waiter *w = arg;
	struct mmk_guard g = {
		.token = w->token,
		.flags = MMK_GUARD_WAIT,
		.timeout_ns = 20ULL * 1000 * 1000 * 1000,
	};

	w->ret = mmk_ioctl(w->fd, MMK_IOC_READ_MUT, &g);
	return NULL;
}

FIXTURE(close_wait) {
	int fd, other;
	uint64_t token;
};

FIXTURE_VARIANT(close_wait) {
	bool close_while_waiting;	/* else: close after the guard was returned */
	int read_after;			/* what the other session's read gets */
};

FIXTURE_VARIANT_ADD(close_wait, closed_during_wait_no_poison) {
	.close_while_waiting = true,
	.read_after = 0,
};

FIXTURE_VARIANT_ADD(close_wait, closed_after_guard_poisons) {
	.close_while_waiting = false,
	.read_after = -EOWNERDEAD,
};

FIXTURE_SETUP(close_wait)
{
	unsigned char payload[32] = "across close";
	char name[MMK_NAME_MAX];

	snprintf(name, sizeof(name), "mmk-limits-close-%d", getpid());
	self->fd = mmk_create(name, sizeof(payload), 2, 0600, LIM_TYPE, 0);
	ASSERT_LE(0, self->fd);
	self->other = mmk_attach(name, LIM_TYPE);
	ASSERT_LE(0, self->other);
	ASSERT_EQ(0, mmk_store_seq(self->fd, payload, sizeof(payload), 7, &self->token));
}

FIXTURE_TEARDOWN(close_wait)
{
	close(self->other);
}

/*
 * Thread A waits for READ_MUT while the other session holds a read guard;
 * the main thread closes A's descriptor, then the other session releases.
 * A's wait is not ended by the close and wins the guard, which no code
 * could use: the session's end drops it without poison.  A guard taken
 * before the close poisons as always.
 */
TEST_F_TIMEOUT(close_wait, write_guard_of_a_closed_session, 60)
{
	struct waiter w = { .fd = self->fd, .token = self->token, .ret = 1 };
	struct mmk_pool_info info;
	struct mmk_guard g;
	pthread_t th;

	ASSERT_EQ(0, mmk_guard(self->other, MMK_IOC_READ, self->token, &g));
	if (variant->close_while_waiting) {
		ASSERT_EQ(0, pthread_create(&th, NULL, wait_read_mut, &w));
		usleep(300000);
		EXPECT_EQ(1, w.ret) TH_LOG("the wait ended before the close");
		close(self->fd);
		usleep(100000);
		ASSERT_EQ(0, mmk_read_release(self->other, self->token));
		ASSERT_EQ(0, pthread_join(th, NULL));
		EXPECT_EQ(0, w.ret);
	} else {
		ASSERT_EQ(0, mmk_read_release(self->other, self->token));
		wait_read_mut(&w);
		ASSERT_EQ(0, w.ret);
		close(self->fd);
	}

	ASSERT_EQ(0, mmk_info(self->other, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(variant->read_after ? 1U : 0U, info.poisoned);
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(variant->read_after, mmk_guard(self->other, MMK_IOC_READ, self->token, &g));
	if (!variant->read_after)
		EXPECT_EQ(0, mmk_read_release(self->other, self->token));
	EXPECT_EQ(0, mmk_free_token(self->other, self->token));
}

TEST_HARNESS_MAIN
