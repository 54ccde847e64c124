// SPDX-License-Identifier: GPL-2.0
/*
 * Queues (SPEC §9): kernel-owned FIFOs of tokens with an admission policy.
 *
 * Every rule of §9 and every error of every queue operation: open and
 * create (flags, caps, names, limits, foreign and bad descriptors),
 * push (the §4 order of checks, all or nothing, store- and commit-and-push),
 * admission (a table: policy x cap kind x fill level), fan-out, forwarding
 * along a chain with no copy, FIFO order across processes (and a queue
 * passed with SCM_RIGHTS), poll and epoll, waits that time out or are
 * interrupted, QUEUE_OWNED and NOT_ALLOCATED, write pops, pop of up to N,
 * peek, deadline drops, the counters, every queue op of MMK_IOC_BATCH and
 * when a batch's pushes wake their readers, and
 * every way a message could leak: each given message ends freed, and the
 * pool's counters say so.
 *
 * The harness's EXPECT/ASSERT macros expand to more than one statement,
 * so every if or loop body holding one is braced.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "mmk_poke.h"
#include "mmk_stall.h"
#include "kselftest_harness.h"

#define QT_TYPE		0x7175657565733031ULL
#define PAYLOAD		512
#define SLOTS		64
#define POOLS_FILE	"/sys/class/misc/mmk/pools"
#define BYTES_FILE	"/sys/class/misc/mmk/bytes"
#define MS		1000000ULL	/* ns */
#define UNTOUCHED	12345		/* a batch result no op ever writes */
#define BE		MMK_QOS_BEST_EFFORT
#define LC		MMK_QOS_LATENCY_CRITICAL
#define BG		MMK_QOS_BACKGROUND

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static unsigned char pat(uint64_t seq, uint32_t j)
{
	return (unsigned char)(seq * 131 + j * 7 + 1);
}

static void fill(unsigned char *buf, uint32_t size, uint64_t seq)
{
	uint32_t j;

	for (j = 0; j < size; j++)
		buf[j] = pat(seq, j);
}

/* The message at offset has sequence seq, size bytes and seq's pattern. */
static bool msg_ok(const void *map, uint64_t offset, uint64_t seq, uint32_t size)
{
	const struct mmk_msg_header *h = mmk_at(map, offset);
	const unsigned char *p = mmk_payload(map, offset);
	uint32_t j;

	if (h->sequence != seq || h->payload_size != size)
		return false;
	for (j = 0; j < size; j++)
		if (p[j] != pat(seq, j))
			return false;
	return true;
}

/* A header: sequence seq, QoS class, and a deadline when deadline_ns != 0. */
static struct mmk_msg_header hdr(uint64_t seq, uint8_t qos, uint64_t deadline_ns)
{
	return (struct mmk_msg_header){
		.sequence = seq,
		.qos = qos,
		.flags = deadline_ns ? MMK_MSG_HAS_DEADLINE : 0,
		.deadline_ns = deadline_ns,
	};
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	alarms++;
}

/* SIGALRM after ms milliseconds, interrupting (no SA_RESTART) whatever waits. */
static void alarm_in(unsigned int ms)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval it = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

FIXTURE(q) {
	int fd;			/* the pool's first session */
	void *map;
	size_t len;
	char name[MMK_NAME_MAX];
	uint32_t pool_id;
	uint64_t seq;
	uint64_t pools, bytes;	/* the module's counts before the pool */
	unsigned char buf[PAYLOAD];
	struct mmk_params params;
};

FIXTURE_SETUP(q)
{
	self->pools = sysfs_number(POOLS_FILE);
	self->bytes = sysfs_number(BYTES_FILE);
	snprintf(self->name, sizeof(self->name), "queue-test-%d", getpid());
	self->fd = mmk_create_id(self->name, PAYLOAD, SLOTS, 0600, QT_TYPE, 0, &self->pool_id);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
	self->map = mmk_map(self->fd, &self->len);
	ASSERT_NE(MAP_FAILED, self->map);
	self->seq = 1000;
}

FIXTURE_TEARDOWN(q)
{
	if (mmk_params_restore(&self->params))
		TH_LOG("could not restore the module parameters");
	if (self->map != MAP_FAILED)
		munmap(self->map, self->len);
	close(self->fd);
}

/* Set a module parameter for this test; the teardown restores it.  false: skipped. */
static bool set_param(struct __test_metadata *_metadata, FIXTURE_DATA(q) *self,
		      const char *name, unsigned long value)
{
	int ret = mmk_param_set(&self->params, name, value);

	if (ret == -EACCES || ret == -EPERM) {
		SKIP(return false, "cannot write %s (not root?)", name);
	}
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", name, strerror(-ret));
	return true;
}

/* Store a message of size bytes with the next sequence number; its token. */
static uint64_t put_hdr(FIXTURE_DATA(q) *self, int fd, uint32_t size, struct mmk_msg_header h)
{
	uint64_t t = MMK_TOKEN_INVALID;

	h.sequence = ++self->seq;
	fill(self->buf, size, self->seq);
	if (mmk_store_hdr(fd, &h, self->buf, size, &t))
		return MMK_TOKEN_INVALID;
	return t;
}

static uint64_t put(FIXTURE_DATA(q) *self, uint32_t size)
{
	return put_hdr(self, self->fd, size, hdr(0, MMK_QOS_BEST_EFFORT, 0));
}

static struct mmk_pool_info pinfo(int fd)
{
	struct mmk_pool_info info;

	if (mmk_info(fd, &info))
		memset(&info, 0xff, sizeof(info));
	return info;
}

static struct mmk_queue_info qinfo(int qfd)
{
	struct mmk_queue_info qi;

	if (mmk_queue_info(qfd, &qi))
		memset(&qi, 0xff, sizeof(qi));
	return qi;
}

/* What a token answers to a header peek now: 0 (live), or -errno. */
static int answer(int fd, uint64_t token)
{
	struct mmk_guard g;
	int ret = mmk_guard(fd, MMK_IOC_PEEK_HEADER, token, &g);

	if (!ret)
		mmk_read_release(fd, token);
	return ret;
}

/* A second session of the fixture's pool. */
static int attach(FIXTURE_DATA(q) *self)
{
	return mmk_attach(self->name, QT_TYPE);
}

/* Commit this session's write guard on token by write-back, and push it to qfd. */
static int commit_push(int fd, uint64_t token, int qfd, const struct mmk_msg_header *h,
		       const void *payload, uint32_t size)
{
	struct mmk_push p = {
		.token = token, .flags = MMK_PUSH_COMMIT, .nr_queues = 1, .queue_fds = { qfd },
		.header = (uintptr_t)h, .payload = (uintptr_t)payload, .payload_size = size,
	};

	return mmk_ioctl(fd, MMK_IOC_PUSH, &p);
}

/* ---------------------------------------------------------------------- */
/* Open and create                                                         */
/* ---------------------------------------------------------------------- */

struct open_case {
	const char *what;
	uint32_t flags, policy, cap_items, soft_items;
	uint64_t cap_bytes, soft_bytes;
	const char *name;
	int err;
	uint32_t want_soft_items;	/* on success */
	uint64_t want_soft_bytes;
};

#define C	MMK_QUEUE_CREATE
#define MAXQ	0xfffffff0U	/* stands for max_queue_items */

static const struct open_case open_cases[] = {
	{ "reject 4/2", C, MMK_QUEUE_REJECT, 4, 2, 0, 0, NULL, 0, 2, 0 },
	{ "soft 0 is the hard cap", C, MMK_QUEUE_DROP_OLDEST, 4, 0, 0, 0, NULL, 0, 4, 0 },
	{ "soft equals hard", C, MMK_QUEUE_BLOCK, 4, 4, 0, 0, NULL, 0, 4, 0 },
	{ "one item", C, MMK_QUEUE_DROP_NEWEST, 1, 0, 0, 0, NULL, 0, 1, 0 },
	{ "max_queue_items", C, MMK_QUEUE_QOS, MAXQ, 0, 0, 0, NULL, 0, MAXQ, 0 },
	{ "byte caps", C, MMK_QUEUE_QOS, 8, 4, 1000, 500, NULL, 0, 4, 500 },
	{ "soft bytes 0 is the byte cap", C, MMK_QUEUE_REJECT, 8, 0, 1000, 0, NULL, 0, 8, 1000 },
	{ "soft bytes equal the cap", C, MMK_QUEUE_REJECT, 8, 0, 1000, 1000, NULL, 0, 8, 1000 },
	{ "cloexec", C | MMK_QUEUE_CLOEXEC, MMK_QUEUE_REJECT, 2, 0, 0, 0, "cx", 0, 2, 0 },
	{ "unknown flag", C | 0x4, MMK_QUEUE_REJECT, 4, 0, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "high flag", C | 0x80000000U, MMK_QUEUE_REJECT, 4, 0, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "policy past the last", C, MMK_QUEUE_POLICY_MAX + 1, 4, 0, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "policy ~0", C, ~0U, 4, 0, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "no items", C, MMK_QUEUE_REJECT, 0, 0, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "past max_queue_items", C, MMK_QUEUE_REJECT, MAXQ + 1, 0, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "items ~0", C, MMK_QUEUE_REJECT, ~0U, 0, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "soft over hard", C, MMK_QUEUE_REJECT, 4, 5, 0, 0, NULL, -EINVAL, 0, 0 },
	{ "soft bytes over the cap", C, MMK_QUEUE_REJECT, 4, 0, 100, 101, NULL, -EINVAL, 0, 0 },
	{ "soft bytes, no byte cap", C, MMK_QUEUE_REJECT, 4, 0, 0, 100, NULL, -EINVAL, 0, 0 },
	{ "open with a policy", 0, MMK_QUEUE_DROP_NEWEST, 0, 0, 0, 0, "x", -EINVAL, 0, 0 },
	{ "open with items", 0, 0, 4, 0, 0, 0, "x", -EINVAL, 0, 0 },
	{ "open with soft items", 0, 0, 0, 1, 0, 0, "x", -EINVAL, 0, 0 },
	{ "open with bytes", 0, 0, 0, 0, 100, 0, "x", -EINVAL, 0, 0 },
	{ "open with soft bytes", 0, 0, 0, 0, 0, 100, "x", -EINVAL, 0, 0 },
	{ "open of no such name", 0, 0, 0, 0, 0, 0, "no-such-queue", -ENOENT, 0, 0 },
	{ "open with no name", 0, 0, 0, 0, 0, 0, "", -EINVAL, 0, 0 },
	{ "open, cloexec, no such name", MMK_QUEUE_CLOEXEC, 0, 0, 0, 0, 0, "nq", -ENOENT, 0, 0 },
};

#undef C

/* Every row: the errno, or a queue whose info shows what was asked. */
TEST_F(q, open_cases)
{
	unsigned long maxq = mmk_param("max_queue_items");
	unsigned int i;

	ASSERT_EQ(4096UL, maxq) TH_LOG("max_queue_items' default");
	for (i = 0; i < ARRAY_SIZE(open_cases); i++) {
		const struct open_case *c = &open_cases[i];
		struct mmk_queue_open o = {
			.flags = c->flags,
			.policy = c->policy,
			.cap_items = c->cap_items == MAXQ ? maxq :
				     c->cap_items == MAXQ + 1 ? maxq + 1 : c->cap_items,
			.soft_items = c->soft_items,
			.cap_bytes = c->cap_bytes,
			.soft_bytes = c->soft_bytes,
			.fd = 77,
			.queue_id = 77,
		};
		struct mmk_queue_info qi;
		int ret, fdflags;

		if (c->name)
			snprintf(o.name, sizeof(o.name), "%s", c->name);
		ret = mmk_ioctl(self->fd, MMK_IOC_QUEUE_OPEN, &o);
		EXPECT_EQ(c->err, ret) TH_LOG("%s", c->what);
		if (ret)
			continue;
		ASSERT_LE(0, o.fd) TH_LOG("%s", c->what);
		EXPECT_NE(self->fd, o.fd);
		ASSERT_EQ(0, mmk_queue_info(o.fd, &qi)) TH_LOG("%s", c->what);
		EXPECT_EQ(o.queue_id, qi.queue_id) TH_LOG("%s", c->what);
		EXPECT_EQ(self->pool_id, qi.pool_id);
		EXPECT_EQ(c->policy, qi.policy) TH_LOG("%s", c->what);
		EXPECT_EQ(o.cap_items, qi.cap_items) TH_LOG("%s", c->what);
		EXPECT_EQ(c->want_soft_items == MAXQ ? maxq : c->want_soft_items, qi.soft_items)
			TH_LOG("%s", c->what);
		EXPECT_EQ(c->cap_bytes, qi.cap_bytes) TH_LOG("%s", c->what);
		EXPECT_EQ(c->want_soft_bytes, qi.soft_bytes) TH_LOG("%s", c->what);
		EXPECT_EQ(0U, qi.items);
		EXPECT_EQ(0U, qi.bytes);
		EXPECT_EQ((uint32_t)MMK_WM_BELOW_SOFT, qi.watermark);
		EXPECT_STREQ(c->name ? c->name : "", qi.name);
		fdflags = fcntl(o.fd, F_GETFD);
		EXPECT_EQ(c->flags & MMK_QUEUE_CLOEXEC ? FD_CLOEXEC : 0, fdflags & FD_CLOEXEC)
			TH_LOG("%s", c->what);
		close(o.fd);
	}
}

/* The struct: shorter is EINVAL, longer with a non-zero tail E2BIG; out fields ignored. */
TEST_F(q, open_struct_size)
{
	struct {
		struct mmk_queue_open o;
		uint64_t tail;
	} big = { .o = { .flags = MMK_QUEUE_CREATE, .cap_items = 2 } };
	unsigned long nr = _IOC_NR(MMK_IOC_QUEUE_OPEN);

	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC, nr,
						     sizeof(struct mmk_queue_open) - 8), &big.o));
	big.tail = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC, nr,
						   sizeof(big)), &big));
	big.tail = 0;
	ASSERT_EQ(0, mmk_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC, nr,
					      sizeof(big)), &big));
	EXPECT_LE(0, big.o.fd);
	EXPECT_EQ(0U, big.tail);
	close(big.o.fd);
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, MMK_IOC_QUEUE_OPEN, (void *)8));
	/* A name with no NUL in its 64 bytes. */
	memset(&big, 0, sizeof(big));
	big.o.flags = MMK_QUEUE_CREATE;
	big.o.cap_items = 2;
	memset(big.o.name, 'n', sizeof(big.o.name));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_QUEUE_OPEN, &big.o));
}

/* Names: unique in the pool (EEXIST), opened by name (one queue), gone with the last fd. */
TEST_F(q, names)
{
	struct mmk_queue_info a, b;
	struct mmk_popped e;
	char link[128], path[64];
	int q1, q2, q3, other, oq, anon1, anon2;
	uint64_t t;
	ssize_t n;

	q1 = mmk_queue_create(self->fd, "edge", MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, q1);
	EXPECT_EQ(-EEXIST, mmk_queue_create(self->fd, "edge", MMK_QUEUE_REJECT, 4, 0));
	EXPECT_EQ(-EEXIST, mmk_queue_create(self->fd, "edge", MMK_QUEUE_BLOCK, 9, 1));
	q2 = mmk_queue_open_name(self->fd, "edge");
	ASSERT_LE(0, q2);
	EXPECT_NE(q1, q2);
	a = qinfo(q1);
	b = qinfo(q2);
	EXPECT_EQ(a.queue_id, b.queue_id);
	EXPECT_STREQ("edge", b.name);

	/* One queue behind both: pushed through one, popped through the other. */
	t = put(self, 8);
	ASSERT_EQ(0, mmk_push(self->fd, t, q1));
	EXPECT_EQ(1, mmk_queue_items(q2));
	ASSERT_EQ(0, mmk_pop1(self->fd, q2, 0, &e));
	EXPECT_EQ(t, e.token);
	EXPECT_EQ(0, mmk_read_release(self->fd, t));

	/* Another session of the pool opens it too. */
	other = attach(self);
	ASSERT_LE(0, other);
	q3 = mmk_queue_open_name(other, "edge");
	ASSERT_LE(0, q3);
	EXPECT_EQ(a.queue_id, qinfo(q3).queue_id);

	/* The name belongs to the pool: another pool may use it. */
	oq = mmk_create(NULL, 64, 2, 0600, 0, 0);
	ASSERT_LE(0, oq);
	EXPECT_EQ(-ENOENT, mmk_queue_open_name(oq, "edge"));
	anon1 = mmk_queue_create(oq, "edge", MMK_QUEUE_REJECT, 1, 0);
	EXPECT_LE(0, anon1);
	close(anon1);
	close(oq);

	/* Anonymous queues: as many as wanted, different ids. */
	anon1 = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0);
	anon2 = mmk_queue_create(self->fd, "", MMK_QUEUE_REJECT, 1, 0);
	ASSERT_LE(0, anon1);
	ASSERT_LE(0, anon2);
	EXPECT_NE(qinfo(anon1).queue_id, qinfo(anon2).queue_id);
	EXPECT_NE(a.queue_id, qinfo(anon1).queue_id);
	EXPECT_STREQ("", qinfo(anon1).name);

	/* An anonymous inode of its own. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", q1);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = '\0';
	EXPECT_STREQ("anon_inode:[mmk_queue]", link);

	/* The name lives while any fd does: not the fd it was created with. */
	close(q1);
	EXPECT_EQ(-EEXIST, mmk_queue_create(self->fd, "edge", MMK_QUEUE_REJECT, 4, 0));
	close(q2);
	close(q3);
	EXPECT_EQ(-ENOENT, mmk_queue_open_name(self->fd, "edge"));
	q1 = mmk_queue_create(self->fd, "edge", MMK_QUEUE_REJECT, 4, 0);
	EXPECT_LE(0, q1);
	close(q1);
	close(anon1);
	close(anon2);
	close(other);
}

/* An unbound session has no pool to make queues in or push to. */
TEST_F(q, unbound_session)
{
	struct mmk_queue_peek pk;
	struct mmk_popped e;
	int s = mmk_open(), qfd;

	ASSERT_LE(0, s);
	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 2, 0);
	ASSERT_LE(0, qfd);
	EXPECT_EQ(-ENOTCONN, mmk_queue_create(s, NULL, MMK_QUEUE_REJECT, 2, 0));
	EXPECT_EQ(-ENOTCONN, mmk_queue_open_name(s, "x"));
	EXPECT_EQ(-ENOTCONN, mmk_push(s, put(self, 1), qfd));
	EXPECT_EQ(-ENOTCONN, mmk_pop1(s, qfd, 0, &e));
	EXPECT_EQ(-ENOTCONN, mmk_queue_peek(s, qfd, 0, &pk));
	EXPECT_EQ(0, mmk_queue_items(qfd));
	close(qfd);
	close(s);
}

/* max_queues_per_pool live queues in a pool: EDQUOT past it, room again after a close. */
TEST_F(q, max_queues_per_pool)
{
	int qs[4], extra, other, pool2, oq, i;

	ASSERT_EQ(64UL, mmk_param("max_queues_per_pool")) TH_LOG("the default");
	if (!set_param(_metadata, self, "max_queues_per_pool", 4))
		return;
	for (i = 0; i < 4; i++) {
		qs[i] = mmk_queue_create(self->fd, i == 0 ? "named" : NULL, MMK_QUEUE_REJECT, 1, 0);
		ASSERT_LE(0, qs[i]) TH_LOG("queue %d", i);
	}
	EXPECT_EQ(-EDQUOT, mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0));
	EXPECT_EQ(-EDQUOT, mmk_queue_create(self->fd, "more", MMK_QUEUE_REJECT, 1, 0));
	/* Opening one that exists makes no new queue. */
	extra = mmk_queue_open_name(self->fd, "named");
	EXPECT_LE(0, extra);
	/* Another session of the pool counts against the same pool. */
	other = attach(self);
	ASSERT_LE(0, other);
	EXPECT_EQ(-EDQUOT, mmk_queue_create(other, NULL, MMK_QUEUE_REJECT, 1, 0));
	/* Another pool does not. */
	pool2 = mmk_create(NULL, 64, 2, 0600, 0, 0);
	ASSERT_LE(0, pool2);
	oq = mmk_queue_create(pool2, NULL, MMK_QUEUE_REJECT, 1, 0);
	EXPECT_LE(0, oq);
	close(oq);
	close(pool2);
	close(qs[1]);
	qs[1] = mmk_queue_create(other, NULL, MMK_QUEUE_REJECT, 1, 0);
	EXPECT_LE(0, qs[1]);
	EXPECT_EQ(-EDQUOT, mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0));
	/* The named queue has two fds: closing one frees no room. */
	close(qs[0]);
	EXPECT_EQ(-EDQUOT, mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0));
	close(extra);
	qs[0] = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0);
	EXPECT_LE(0, qs[0]);
	for (i = 0; i < 4; i++)
		close(qs[i]);
	close(other);
}

/* ---------------------------------------------------------------------- */
/* Descriptors that are not this pool's queues                             */
/* ---------------------------------------------------------------------- */

enum { FD_CLOSED, FD_NEGATIVE, FD_SESSION, FD_PIPE, FD_DEVNULL, FD_FOREIGN, FD_KINDS };

static const struct {
	const char *what;
	int err;
} bad_fds[FD_KINDS] = {
	[FD_CLOSED] = { "a closed fd", -EBADF },
	[FD_NEGATIVE] = { "fd -1", -EBADF },
	[FD_SESSION] = { "a /dev/mmk session", -EINVAL },
	[FD_PIPE] = { "a pipe", -EINVAL },
	[FD_DEVNULL] = { "/dev/null", -EINVAL },
	[FD_FOREIGN] = { "another pool's queue", -EXDEV },
};

enum { QOP_PUSH, QOP_STORE_PUSH, QOP_FANOUT, QOP_POP, QOP_PEEK, QOP_BATCH_PUSH,
       QOP_BATCH_STORE_PUSH, QOP_BATCH_POP, QOP_KINDS };

static const char *const qop_names[QOP_KINDS] = {
	"push", "store push", "fan-out push", "pop", "peek", "batch push",
	"batch store push", "batch pop",
};

/* One queue op on bad, from fd; 0 or -errno (a batch op: its result). */
static int qop(int fd, int op, int bad, int good, uint64_t token, const void *payload)
{
	struct mmk_msg_header h = { 0 };
	struct mmk_batch_entry be = { .queue_fd = bad, .result = UNTOUCHED };
	struct mmk_batch b = { .ops = (uintptr_t)&be, .count = 1 };
	struct mmk_queue_peek pk;
	struct mmk_popped e;
	int two[2] = { good, bad };
	int ret;

	switch (op) {
	case QOP_PUSH:
		return mmk_push(fd, token, bad);
	case QOP_STORE_PUSH:
		return mmk_store_push(fd, bad, NULL, payload, 4, NULL);
	case QOP_FANOUT:
		return mmk_push_to(fd, token, two, 2, 0, 0, NULL);
	case QOP_POP:
		return mmk_pop1(fd, bad, 0, &e);
	case QOP_PEEK:
		return mmk_queue_peek(fd, bad, 0, &pk);
	case QOP_BATCH_PUSH:
		be.op = MMK_BATCH_PUSH;
		be.token = token;
		break;
	case QOP_BATCH_STORE_PUSH:
		be.op = MMK_BATCH_STORE_PUSH;
		be.header = (uintptr_t)&h;
		be.payload = (uintptr_t)payload;
		be.payload_size = 4;
		break;
	case QOP_BATCH_POP:
		be.op = MMK_BATCH_POP;
		break;
	}
	ret = mmk_ioctl(fd, MMK_IOC_BATCH, &b);
	return ret ? ret : be.result;
}

/* Every queue op, given each kind of descriptor that is not a queue of this pool. */
TEST_F(q, bad_queue_fds)
{
	int fds[FD_KINDS], good, other, pipefd[2], k, op, ret;
	struct mmk_pool_info before, after;
	uint64_t t;

	good = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, good);
	ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));
	other = mmk_create(NULL, PAYLOAD, 4, 0600, 0, 0);
	ASSERT_LE(0, other);
	fds[FD_CLOSED] = 1000;	/* never opened here */
	close(fds[FD_CLOSED]);
	fds[FD_NEGATIVE] = -1;
	fds[FD_SESSION] = self->fd;
	fds[FD_PIPE] = pipefd[0];
	fds[FD_DEVNULL] = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fds[FD_DEVNULL]);
	fds[FD_FOREIGN] = mmk_queue_create(other, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, fds[FD_FOREIGN]);
	/* The foreign queue has something in it, for the pop and the peek. */
	ASSERT_EQ(0, mmk_store_push(other, fds[FD_FOREIGN], NULL, self->buf, 4, NULL));

	t = put(self, 4);
	before = pinfo(self->fd);
	for (k = 0; k < FD_KINDS; k++) {
		for (op = 0; op < QOP_KINDS; op++) {
			ret = qop(self->fd, op, fds[k], good, t, self->buf);
			EXPECT_EQ(bad_fds[k].err, ret)
				TH_LOG("%s on %s: %s", qop_names[op], bad_fds[k].what, strerror(-ret));
		}
	}
	/* Nothing happened: nothing stored, nothing pushed, the token still the caller's. */
	after = pinfo(self->fd);
	EXPECT_EQ(before.stores, after.stores);
	EXPECT_EQ(before.available, after.available);
	EXPECT_EQ(0U, after.read_guards);
	EXPECT_EQ(0, mmk_queue_items(good));
	EXPECT_EQ(1, mmk_queue_items(fds[FD_FOREIGN]));
	EXPECT_EQ(0, mmk_free_token(self->fd, t));
	/* QUEUE_INFO is a queue's ioctl, not a session's or a pipe's. */
	do {
		struct mmk_queue_info qi;

		EXPECT_NE(0, mmk_queue_info(self->fd, &qi));
		EXPECT_NE(0, mmk_queue_info(pipefd[0], &qi));
	} while (0);
	close(fds[FD_DEVNULL]);
	close(fds[FD_FOREIGN]);
	close(other);
	close(pipefd[0]);
	close(pipefd[1]);
	close(good);
}

/* ---------------------------------------------------------------------- */
/* Push: argument checks, and the order of the checks                      */
/* ---------------------------------------------------------------------- */

enum { MUT_NONE, MUT_NR0, MUT_NR9, MUT_DUP, MUT_UNUSED, MUT_FLAGS, MUT_STORE_COMMIT,
       MUT_TIMEOUT, MUT_HEADER, MUT_PAYLOAD, MUT_SIZE, MUT_RESERVED, MUT_OUT };

static const struct {
	const char *what;
	int mut;
	int err;
} push_args[] = {
	{ "valid", MUT_NONE, 0 },
	{ "no queue", MUT_NR0, -EINVAL },
	{ "nine queues", MUT_NR9, -EINVAL },
	{ "one queue twice", MUT_DUP, -EINVAL },
	{ "an unused fd slot set", MUT_UNUSED, -EINVAL },
	{ "unknown flag", MUT_FLAGS, -EINVAL },
	{ "store and commit", MUT_STORE_COMMIT, -EINVAL },
	{ "timeout without wait", MUT_TIMEOUT, -EINVAL },
	{ "header without store or commit", MUT_HEADER, -EINVAL },
	{ "payload without store or commit", MUT_PAYLOAD, -EINVAL },
	{ "size without store or commit", MUT_SIZE, -EINVAL },
	{ "reserved", MUT_RESERVED, -EINVAL },
	{ "out fields set on entry", MUT_OUT, 0 },
};

TEST_F(q, push_arguments)
{
	struct mmk_msg_header h = { 0 };
	int qs[MMK_PUSH_MAX_QUEUES], i, ret;
	unsigned int r;

	for (i = 0; i < MMK_PUSH_MAX_QUEUES; i++) {
		qs[i] = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
		ASSERT_LE(0, qs[i]);
	}
	for (r = 0; r < ARRAY_SIZE(push_args); r++) {
		uint64_t t = put(self, 4);
		struct mmk_push p = { .token = t, .nr_queues = 2, .queue_fds = { qs[0], qs[1] } };

		switch (push_args[r].mut) {
		case MUT_NR0:
			p.nr_queues = 0;
			break;
		case MUT_NR9:
			p.nr_queues = MMK_PUSH_MAX_QUEUES + 1;
			break;
		case MUT_DUP:
			p.queue_fds[1] = qs[0];
			break;
		case MUT_UNUSED:
			p.queue_fds[2] = qs[2];
			break;
		case MUT_FLAGS:
			p.flags = 0x8;
			break;
		case MUT_STORE_COMMIT:
			p.flags = MMK_PUSH_STORE | MMK_PUSH_COMMIT;
			p.header = (uintptr_t)&h;
			break;
		case MUT_TIMEOUT:
			p.timeout_ns = MS;
			break;
		case MUT_HEADER:
			p.header = (uintptr_t)&h;
			break;
		case MUT_PAYLOAD:
			p.payload = (uintptr_t)self->buf;
			break;
		case MUT_SIZE:
			p.payload_size = 4;
			break;
		case MUT_RESERVED:
			p.__reserved = 1;
			break;
		case MUT_OUT:
			p.dropped = 3;
			p.evicted = 5;
			break;
		}
		ret = mmk_ioctl(self->fd, MMK_IOC_PUSH, &p);
		EXPECT_EQ(push_args[r].err, ret) TH_LOG("%s", push_args[r].what);
		if (!ret) {
			EXPECT_EQ(0U, p.dropped);
			EXPECT_EQ(0U, p.evicted);
			EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, t));
		} else {
			EXPECT_EQ(0, mmk_free_token(self->fd, t)) TH_LOG("%s", push_args[r].what);
		}
	}
	/* All eight at once is allowed. */
	{
		uint64_t t = put(self, 4);

		EXPECT_EQ(0, mmk_push_to(self->fd, t, qs, MMK_PUSH_MAX_QUEUES, 0, 0, NULL));
		for (i = 0; i < MMK_PUSH_MAX_QUEUES; i++) {
			EXPECT_EQ(i < 2 ? 3 : 1, mmk_queue_items(qs[i]));
		}
	}
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, MMK_IOC_PUSH, (void *)8));
	for (i = 0; i < MMK_PUSH_MAX_QUEUES; i++)
		close(qs[i]);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* A write guard held by a child that dies: the slot is poisoned. */
static uint64_t poisoned_token(FIXTURE_DATA(q) *self)
{
	uint64_t t = put(self, 4);
	pid_t pid = start_child();

	if (pid == 0) {
		struct mmk_guard g;
		int s = attach(self);

		CHILD_ASSERT(s >= 0);
		CHILD_EQ(0, mmk_guard(s, MMK_IOC_READ_MUT, t, &g));
		_exit(0);
	}
	return wait_child(pid) == 0 ? t : MMK_TOKEN_INVALID;
}

/*
 * Push checks, in order: BAD_TOKEN, NOT_ALLOCATED, POISONED, ALREADY_BORROWED,
 * QUEUE_OWNED, then admission.  Each row is a token in one state, pushed
 * into a full Reject queue: the first check that applies answers.
 */
TEST_F(q, push_check_order)
{
	struct mmk_guard g;
	struct mmk_loan loan = { 0 };
	int full, empty, other, qq[2];
	uint64_t live, freed, poisoned, wguard, loaned, queued, foreign, held;
	unsigned int i;

	full = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0);
	empty = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, full);
	ASSERT_LE(0, empty);
	ASSERT_EQ(0, mmk_store_push(self->fd, full, NULL, self->buf, 1, &queued));
	other = attach(self);
	ASSERT_LE(0, other);

	live = put(self, 4);
	poisoned = poisoned_token(self);
	ASSERT_NE(MMK_TOKEN_INVALID, poisoned);
	wguard = put(self, 4);
	ASSERT_EQ(0, mmk_guard(other, MMK_IOC_READ_MUT, wguard, &g));
	ASSERT_EQ(0, mmk_ioctl(other, MMK_IOC_LOAN, &loan));
	loaned = loan.token;
	held = put(self, 4);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, held, &g));	/* our own */
	do {
		int p = mmk_create(NULL, PAYLOAD, 4, 0600, 0, 0);

		ASSERT_LE(0, p);
		ASSERT_EQ(0, mmk_store_seq(p, self->buf, 1, 0, &foreign));
		close(p);
	} while (0);
	/* Last, so that no later store reuses its slot. */
	freed = put(self, 4);
	ASSERT_EQ(0, mmk_free_token(self->fd, freed));

	do {
		const struct {
			const char *what;
			uint64_t token;
			int to_full, to_empty;
		} rows[] = {
			{ "invalid token", MMK_TOKEN_INVALID, -EBADSLT, -EBADSLT },
			{ "forged generation", live + (1ULL << 20), -EBADSLT, -EBADSLT },
			{ "another pool's token", foreign, -EBADSLT, -EBADSLT },
			{ "freed", freed, -ENODATA, -ENODATA },
			{ "poisoned", poisoned, -EOWNERDEAD, -EOWNERDEAD },
			{ "another's write guard", wguard, -EBUSY, -EBUSY },
			{ "another's loan", loaned, -EBUSY, -EBUSY },
			{ "own write guard, no commit", held, -EBUSY, -EBUSY },
			{ "already queued here", queued, -EINPROGRESS, 0 },
			{ "live", live, -ENOBUFS, 0 },
		};

		for (i = 0; i < ARRAY_SIZE(rows); i++) {
			EXPECT_EQ(rows[i].to_full, mmk_push(self->fd, rows[i].token, full))
				TH_LOG("%s, to a full queue", rows[i].what);
			/* Fan-out: the empty queue first, then the full one. */
			qq[0] = empty;
			qq[1] = full;
			EXPECT_EQ(rows[i].to_full, mmk_push_to(self->fd, rows[i].token, qq, 2, 0, 0, NULL))
				TH_LOG("%s, fanned out", rows[i].what);
			EXPECT_EQ(0, mmk_queue_items(empty)) TH_LOG("%s: all or nothing", rows[i].what);
			EXPECT_EQ(rows[i].to_empty, mmk_push(self->fd, rows[i].token, empty))
				TH_LOG("%s, to an empty queue", rows[i].what);
			if (!rows[i].to_empty) {
				/* Now this queue holds it. */
				EXPECT_EQ(-EINPROGRESS, mmk_push(self->fd, rows[i].token, empty))
					TH_LOG("%s, pushed twice", rows[i].what);
				EXPECT_EQ(0, mmk_pop1(self->fd, empty, 0, NULL));
				EXPECT_EQ(0, mmk_read_release(self->fd, rows[i].token));
			}
		}
	} while (0);
	EXPECT_EQ(1, mmk_queue_items(full));
	EXPECT_EQ(0, mmk_queue_items(empty));
	/* The popped "live" was given: its release freed it. */
	EXPECT_EQ(-ENODATA, answer(self->fd, live));
	EXPECT_EQ(0, mmk_write_release(self->fd, held));
	EXPECT_EQ(0, mmk_write_release(other, wguard));
	EXPECT_EQ(0, mmk_write_release(other, loaned));	/* cancels the loan */
	close(full);
	close(empty);
	close(other);
}

/* Read guards, the pusher's own too, do not stop a push (a forwarding consumer holds one). */
TEST_F(q, read_guards_do_not_stop_a_push)
{
	struct mmk_guard g;
	int qfd, other;
	uint64_t t;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, qfd);
	other = attach(self);
	ASSERT_LE(0, other);
	t = put(self, 16);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	ASSERT_EQ(0, mmk_guard(other, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(0, mmk_push(self->fd, t, qfd));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(other, t));
	EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, t));
	/* Any session of the pool may push any of its tokens. */
	EXPECT_EQ(0, mmk_store_push(other, qfd, NULL, self->buf, 1, &t));
	EXPECT_EQ(2, mmk_queue_items(qfd));
	close(qfd);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
	close(other);
}

/* ---------------------------------------------------------------------- */
/* Admission: policy x cap kind x fill level                               */
/* ---------------------------------------------------------------------- */

/*
 * Three shapes of queue: items with a soft cap below the hard one, items
 * with the soft cap at the hard one (a Reject, Drop Newest or Block queue
 * never gets past its soft cap by pushes), and bytes (the byte count
 * passes a cap when a message admitted below it is large).  The "fill"
 * messages are pushed first (latency critical, so a QoS queue takes them
 * too), then one more of "size" bytes and class "qos".
 */
enum { CFG_ITEMS, CFG_ITEMS_HARD, CFG_BYTES };

static const struct {
	uint32_t cap_items, soft_items;
	uint64_t cap_bytes, soft_bytes;
} adm_cfg[] = {
	[CFG_ITEMS] = { 4, 2, 0, 0 },
	[CFG_ITEMS_HARD] = { 2, 0, 0, 0 },
	[CFG_BYTES] = { 16, 0, 400, 200 },
};

#define OVERSIZE	401	/* more than CFG_BYTES' byte cap */

struct adm_case {
	const char *what;
	uint32_t policy;
	int cfg;
	uint32_t nfill;
	uint32_t fill[4];	/* sizes; 0 for 10 bytes */
	uint8_t qos;
	uint32_t size;		/* 0 for 10 bytes */
	int err;
	bool dropped;
	uint32_t evicted;
	int reason;		/* the drops[] counter that counts it, -1 if none */
};

#define R	MMK_QUEUE_REJECT
#define DN	MMK_QUEUE_DROP_NEWEST
#define DO	MMK_QUEUE_DROP_OLDEST
#define BL	MMK_QUEUE_BLOCK
#define QS	MMK_QUEUE_QOS
#define I	CFG_ITEMS
#define IH	CFG_ITEMS_HARD
#define B	CFG_BYTES
#define NONE	false, 0, -1
#define FULL	-ENOBUFS, NONE
#define OK	0, NONE
#define DROP(r)	0, true, 0, r
#define EVICT1	0, false, 1, MMK_DROP_OLDEST
#define B_BELOW	1, { 100 }
#define B_SOFT	2, { 100, 100 }		/* 200: at the soft cap */
#define B_BETW	2, { 150, 100 }		/* 250: between */
#define B_HARD	2, { 199, 201 }		/* 400: at the hard cap */

static const struct adm_case adm_cases[] = {
	/* Items, soft 2 of 4. */
	{ "reject, empty", R, I, 0, { 0 }, BE, 0, OK },
	{ "reject, below soft", R, I, 1, { 0 }, BE, 0, OK },
	{ "reject, at soft", R, I, 2, { 0 }, LC, 0, FULL },
	{ "drop newest, below soft", DN, I, 1, { 0 }, BE, 0, OK },
	{ "drop newest, at soft", DN, I, 2, { 0 }, LC, 0, DROP(MMK_DROP_NEWEST) },
	{ "drop oldest, below soft", DO, I, 1, { 0 }, BE, 0, OK },
	{ "drop oldest, at soft", DO, I, 2, { 0 }, BE, 0, EVICT1 },
	{ "block, below soft", BL, I, 1, { 0 }, BE, 0, OK },
	{ "block, at soft, no wait", BL, I, 2, { 0 }, LC, 0, FULL },
	{ "qos, below soft, background", QS, I, 1, { 0 }, BG, 0, OK },
	{ "qos, at soft, best effort", QS, I, 2, { 0 }, BE, 0, DROP(MMK_DROP_QOS) },
	{ "qos, at soft, class 0 (best effort)", QS, I, 2, { 0 }, 0, 0, DROP(MMK_DROP_QOS) },
	{ "qos, at soft, background", QS, I, 2, { 0 }, BG, 0, DROP(MMK_DROP_QOS) },
	{ "qos, at soft, latency critical", QS, I, 2, { 0 }, LC, 0, OK },
	{ "qos, between, background", QS, I, 3, { 0 }, BG, 0, DROP(MMK_DROP_QOS) },
	{ "qos, between, latency critical", QS, I, 3, { 0 }, LC, 0, OK },
	{ "qos, at hard, latency critical", QS, I, 4, { 0 }, LC, 0, FULL },
	{ "qos, at hard, best effort", QS, I, 4, { 0 }, BE, 0, FULL },
	/* Items, soft = hard = 2. */
	{ "hard items: reject", R, IH, 2, { 0 }, LC, 0, FULL },
	{ "hard items: drop newest", DN, IH, 2, { 0 }, LC, 0, DROP(MMK_DROP_NEWEST) },
	{ "hard items: drop oldest", DO, IH, 2, { 0 }, BE, 0, EVICT1 },
	{ "hard items: block, no wait", BL, IH, 2, { 0 }, LC, 0, FULL },
	{ "hard items: qos, latency critical", QS, IH, 2, { 0 }, LC, 0, FULL },
	{ "hard items: qos, background", QS, IH, 2, { 0 }, BG, 0, FULL },
	/* Bytes, soft 200 of 400. */
	{ "bytes: reject, below soft", R, B, B_BELOW, BE, 100, OK },
	{ "bytes: reject, at soft", R, B, B_SOFT, BE, 100, FULL },
	{ "bytes: reject, between", R, B, B_BETW, LC, 100, FULL },
	{ "bytes: reject, at hard", R, B, B_HARD, BE, 1, FULL },
	{ "bytes: drop newest, below soft", DN, B, B_BELOW, BE, 100, OK },
	{ "bytes: drop newest, at soft", DN, B, B_SOFT, BE, 100, DROP(MMK_DROP_NEWEST) },
	{ "bytes: drop newest, between", DN, B, B_BETW, BE, 100, DROP(MMK_DROP_NEWEST) },
	{ "bytes: drop newest, at hard", DN, B, B_HARD, BE, 1, DROP(MMK_DROP_NEWEST) },
	{ "bytes: drop oldest, below soft", DO, B, B_BELOW, BE, 100, OK },
	{ "bytes: drop oldest, at soft", DO, B, B_SOFT, BE, 100, EVICT1 },
	{ "bytes: drop oldest, between", DO, B, B_BETW, BE, 100, EVICT1 },
	{ "bytes: drop oldest, at hard", DO, B, B_HARD, BE, 100, EVICT1 },
	{ "bytes: block, below soft", BL, B, B_BELOW, BE, 100, OK },
	{ "bytes: block, at soft, no wait", BL, B, B_SOFT, BE, 100, FULL },
	{ "bytes: block, at hard, no wait", BL, B, B_HARD, BE, 100, FULL },
	{ "bytes: qos, at soft, best effort", QS, B, B_SOFT, BE, 100, DROP(MMK_DROP_QOS) },
	{ "bytes: qos, between, background", QS, B, B_BETW, BG, 100, DROP(MMK_DROP_QOS) },
	{ "bytes: qos, between, latency critical", QS, B, B_BETW, LC, 100, OK },
	{ "bytes: qos, at hard, latency critical", QS, B, B_HARD, LC, 1, FULL },
	{ "bytes: qos, at hard, best effort", QS, B, B_HARD, BE, 1, FULL },
	/* A payload larger than the byte cap. */
	{ "oversize: reject, empty (below soft)", R, B, 0, { 0 }, BE, OVERSIZE, OK },
	{ "oversize: drop newest, at soft", DN, B, B_SOFT, BE, OVERSIZE, DROP(MMK_DROP_NEWEST) },
	{ "oversize: drop oldest, at soft", DO, B, B_SOFT, BE, OVERSIZE, EVICT1 },
	{ "oversize: qos, between, latency critical", QS, B, B_BETW, LC, OVERSIZE, OK },
	{ "oversize: reject, at hard", R, B, B_HARD, BE, OVERSIZE, FULL },
	{ "oversize: drop newest, at hard", DN, B, B_HARD, BE, OVERSIZE, FULL },
	{ "oversize: drop oldest, at hard", DO, B, B_HARD, BE, OVERSIZE, FULL },
	{ "oversize: block, at hard", BL, B, B_HARD, BE, OVERSIZE, FULL },
	{ "oversize: qos, at hard, latency critical", QS, B, B_HARD, LC, OVERSIZE, FULL },
};

#undef R
#undef DN
#undef DO
#undef BL
#undef QS
#undef I
#undef IH
#undef B
#undef NONE
#undef FULL
#undef OK
#undef DROP
#undef EVICT1

static uint32_t watermark(const struct mmk_queue_info *qi)
{
	if (qi->items >= qi->cap_items || (qi->cap_bytes && qi->bytes >= qi->cap_bytes))
		return MMK_WM_AT_HARD;
	if (qi->items >= qi->soft_items || (qi->cap_bytes && qi->bytes >= qi->soft_bytes))
		return MMK_WM_BETWEEN;
	return MMK_WM_BELOW_SOFT;
}

TEST_F(q, admission_table)
{
	unsigned int r, i, d;

	for (r = 0; r < ARRAY_SIZE(adm_cases); r++) {
		const struct adm_case *c = &adm_cases[r];
		uint32_t size = c->size ? c->size : 10;
		uint32_t admitted = !c->err && !c->dropped, items;
		struct mmk_pool_info before, after;
		struct mmk_queue_info qi;
		struct mmk_queue_peek pk;
		struct mmk_push p;
		uint64_t f[4], t, bytes = 0;
		int qfd, fd;

		/* A pool of its own: a row cannot disturb the next. */
		fd = mmk_create(NULL, PAYLOAD, 8, 0600, QT_TYPE, 0);
		ASSERT_LE(0, fd);
		qfd = mmk_queue_create_id(fd, NULL, c->policy, adm_cfg[c->cfg].cap_items,
					  adm_cfg[c->cfg].soft_items, adm_cfg[c->cfg].cap_bytes,
					  adm_cfg[c->cfg].soft_bytes, NULL);
		ASSERT_LE(0, qfd) TH_LOG("%s", c->what);
		for (i = 0; i < c->nfill; i++) {
			f[i] = put_hdr(self, fd, c->fill[i] ? c->fill[i] : 10, hdr(0, LC, 0));
			ASSERT_EQ(0, mmk_push(fd, f[i], qfd)) TH_LOG("%s: fill %u", c->what, i);
			if (i >= c->evicted)
				bytes += c->fill[i] ? c->fill[i] : 10;
		}
		t = put_hdr(self, fd, size, hdr(0, c->qos, 0));
		ASSERT_NE(MMK_TOKEN_INVALID, t);
		before = pinfo(fd);
		EXPECT_EQ(c->err, mmk_push_to(fd, t, &qfd, 1, 0, 0, &p)) TH_LOG("%s", c->what);
		if (!c->err) {
			EXPECT_EQ(c->dropped ? 1U : 0U, p.dropped) TH_LOG("%s", c->what);
			EXPECT_EQ(c->evicted, p.evicted) TH_LOG("%s", c->what);
		}

		after = pinfo(fd);
		items = c->nfill - c->evicted + admitted;
		qi = qinfo(qfd);
		EXPECT_EQ(items, qi.items) TH_LOG("%s", c->what);
		EXPECT_EQ(bytes + admitted * size, qi.bytes) TH_LOG("%s", c->what);
		EXPECT_EQ(c->nfill + admitted, qi.pushes) TH_LOG("%s", c->what);
		EXPECT_EQ(c->err ? 1U : 0U, qi.rejected) TH_LOG("%s", c->what);
		for (d = 0; d < MMK_DROP_REASONS; d++) {
			uint64_t want = (int)d != c->reason ? 0 : c->dropped ? 1 : c->evicted;

			EXPECT_EQ(want, qi.drops[d]) TH_LOG("%s: drops[%u]", c->what, d);
		}
		EXPECT_EQ(watermark(&qi), qi.watermark) TH_LOG("%s", c->what);
		EXPECT_EQ(0U, qi.pops);

		/* The fate of each message: dropped and evicted ones are freed at once. */
		EXPECT_EQ(before.frees + c->dropped + c->evicted, after.frees) TH_LOG("%s", c->what);
		EXPECT_EQ(before.available + c->dropped + c->evicted, after.available);
		for (i = 0; i < c->evicted; i++) {
			EXPECT_EQ(-ENODATA, answer(fd, f[i])) TH_LOG("%s: evicted %u", c->what, i);
		}
		if (c->dropped) {
			EXPECT_EQ(-ENODATA, answer(fd, t)) TH_LOG("%s", c->what);
		} else if (c->err) {
			/* Still the caller's: no queue holds it. */
			EXPECT_EQ(0, answer(fd, t));
			EXPECT_EQ(0, mmk_free_token(fd, t)) TH_LOG("%s", c->what);
		} else {
			EXPECT_EQ(0, mmk_queue_peek(fd, qfd, items ? items - 1 : 0, &pk))
				TH_LOG("%s", c->what);
			EXPECT_EQ(t, pk.token) TH_LOG("%s", c->what);
			EXPECT_EQ(size, pk.payload_size);
			EXPECT_EQ(-EINPROGRESS, mmk_free_token(fd, t)) TH_LOG("%s", c->what);
		}
		/* Oldest first, the evicted ones gone. */
		if (c->evicted < c->nfill) {
			EXPECT_EQ(0, mmk_queue_peek(fd, qfd, 0, &pk));
			EXPECT_EQ(f[c->evicted], pk.token) TH_LOG("%s", c->what);
		}
		close(qfd);
		EXPECT_EQ(8U, pinfo(fd).available) TH_LOG("%s: after close", c->what);
		close(fd);
	}
}

/* Drop Oldest at the hard cap evicts until below it: here two messages. */
TEST_F(q, drop_oldest_evicts_until_below_hard)
{
	struct mmk_queue_info qi;
	struct mmk_push p;
	uint64_t a, b, c, d;
	int qfd;

	qfd = mmk_queue_create_id(self->fd, NULL, MMK_QUEUE_DROP_OLDEST, 16, 0, 400, 0, NULL);
	ASSERT_LE(0, qfd);
	/* 0, 10 and 390 bytes are below 400: all three admitted, 490 bytes. */
	a = put(self, 10);
	b = put(self, 380);
	c = put(self, 100);
	ASSERT_EQ(0, mmk_push(self->fd, a, qfd));
	ASSERT_EQ(0, mmk_push(self->fd, b, qfd));
	ASSERT_EQ(0, mmk_push(self->fd, c, qfd));
	qi = qinfo(qfd);
	EXPECT_EQ(490U, qi.bytes);
	EXPECT_EQ((uint32_t)MMK_WM_AT_HARD, qi.watermark);
	d = put(self, 50);
	ASSERT_EQ(0, mmk_push_to(self->fd, d, &qfd, 1, 0, 0, &p));
	EXPECT_EQ(2U, p.evicted);
	EXPECT_EQ(0U, p.dropped);
	qi = qinfo(qfd);
	EXPECT_EQ(2U, qi.items);
	EXPECT_EQ(150U, qi.bytes);
	EXPECT_EQ(2U, qi.drops[MMK_DROP_OLDEST]);
	EXPECT_EQ(4U, qi.pushes);
	EXPECT_EQ(-ENODATA, answer(self->fd, a));
	EXPECT_EQ(-ENODATA, answer(self->fd, b));
	EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, c));
	EXPECT_EQ(SLOTS - 2U, pinfo(self->fd).available);
	close(qfd);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* A dropped or evicted message that something else still holds is not freed. */
TEST_F(q, drops_free_only_unheld_messages)
{
	struct mmk_guard g;
	struct mmk_push p;
	int dn, dq, qq[2];
	uint64_t t, u;

	dn = mmk_queue_create(self->fd, NULL, MMK_QUEUE_DROP_NEWEST, 1, 0);
	dq = mmk_queue_create(self->fd, NULL, MMK_QUEUE_DROP_OLDEST, 1, 0);
	ASSERT_LE(0, dn);
	ASSERT_LE(0, dq);
	ASSERT_EQ(0, mmk_store_push(self->fd, dn, NULL, self->buf, 1, NULL));

	/* Dropped while the pusher holds a read guard: freed at the release. */
	t = put(self, 8);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	ASSERT_EQ(0, mmk_push_to(self->fd, t, &dn, 1, 0, 0, &p));
	EXPECT_EQ(1U, p.dropped);
	EXPECT_EQ(0, answer(self->fd, t));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(-ENODATA, answer(self->fd, t));

	/* Dropped by one queue of a fan-out, taken by the other: lives there. */
	t = put(self, 8);
	qq[0] = dq;
	qq[1] = dn;
	ASSERT_EQ(0, mmk_push_to(self->fd, t, qq, 2, 0, 0, &p));
	EXPECT_EQ(2U, p.dropped);	/* bit 1: queue_fds[1] */
	EXPECT_EQ(0U, p.evicted);
	EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, t));

	/* Evicted from dq while still in... nothing else: freed; held by a guard: kept. */
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	u = put(self, 8);
	ASSERT_EQ(0, mmk_push_to(self->fd, u, &dq, 1, 0, 0, &p));
	EXPECT_EQ(1U, p.evicted);
	EXPECT_EQ(0, answer(self->fd, t));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(-ENODATA, answer(self->fd, t));
	close(dn);
	close(dq);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* ---------------------------------------------------------------------- */
/* Fan-out and forwarding                                                  */
/* ---------------------------------------------------------------------- */

/* Three queues, three consumer sessions, every order of release: freed exactly at the last. */
TEST_F(q, fanout_every_release_order)
{
	static const int orders[6][3] = {
		{ 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 }, { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 },
	};
	int qs[3], cons[3], i, k;

	for (i = 0; i < 3; i++) {
		qs[i] = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
		cons[i] = attach(self);
		ASSERT_LE(0, qs[i]);
		ASSERT_LE(0, cons[i]);
	}
	for (k = 0; k < 6; k++) {
		struct mmk_pool_info before, now;
		struct mmk_popped e[3];
		struct mmk_push p;
		uint64_t t = put(self, 100);
		uint64_t seq = self->seq;

		before = pinfo(self->fd);
		ASSERT_EQ(0, mmk_push_to(self->fd, t, qs, 3, 0, 0, &p));
		EXPECT_EQ(0U, p.dropped);
		for (i = 0; i < 3; i++) {
			EXPECT_EQ(1, mmk_queue_items(qs[i]));
			ASSERT_EQ(0, mmk_pop1(cons[i], qs[i], 0, &e[i]));
			EXPECT_EQ(t, e[i].token);
			EXPECT_EQ(e[0].offset, e[i].offset);	/* one message, no copy */
			EXPECT_EQ(100U, e[i].payload_size);
		}
		EXPECT_TRUE(msg_ok(self->map, e[0].offset, seq, 100));
		EXPECT_EQ(3U, pinfo(self->fd).read_guards);
		for (i = 0; i < 3; i++) {
			int c = orders[k][i];

			EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t));
			ASSERT_EQ(0, mmk_read_release(cons[c], t)) TH_LOG("order %d, step %d", k, i);
			now = pinfo(self->fd);
			if (i < 2) {
				EXPECT_EQ(before.available, now.available) TH_LOG("order %d, step %d", k, i);
				EXPECT_EQ(before.frees, now.frees);
				EXPECT_EQ(0, answer(self->fd, t)) TH_LOG("order %d, step %d", k, i);
			} else {
				EXPECT_EQ(before.available + 1, now.available) TH_LOG("order %d", k);
				EXPECT_EQ(before.frees + 1, now.frees) TH_LOG("order %d", k);
				EXPECT_EQ(-ENODATA, answer(self->fd, t)) TH_LOG("order %d", k);
			}
		}
	}
	for (i = 0; i < 3; i++) {
		close(qs[i]);
		close(cons[i]);
	}
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* All or nothing: one full Reject queue refuses, no queue takes it. */
TEST_F(q, fanout_all_or_nothing)
{
	struct mmk_push p;
	int qs[3], i;
	uint64_t t;

	for (i = 0; i < 3; i++) {
		qs[i] = mmk_queue_create(self->fd, NULL, i == 2 ? MMK_QUEUE_REJECT : MMK_QUEUE_DROP_OLDEST,
					 2, 0);
		ASSERT_LE(0, qs[i]);
	}
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, mmk_store_push(self->fd, qs[2], NULL, self->buf, 1, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, qs[0], NULL, self->buf, 1, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, qs[0], NULL, self->buf, 1, NULL));
	t = put(self, 4);
	EXPECT_EQ(-ENOBUFS, mmk_push_to(self->fd, t, qs, 3, 0, 0, &p));
	/* Nothing evicted from the Drop Oldest queue either. */
	EXPECT_EQ(2, mmk_queue_items(qs[0]));
	EXPECT_EQ(0, mmk_queue_items(qs[1]));
	EXPECT_EQ(2, mmk_queue_items(qs[2]));
	EXPECT_EQ(0U, qinfo(qs[0]).drops[MMK_DROP_OLDEST]);
	EXPECT_EQ(1U, qinfo(qs[2]).rejected);
	EXPECT_EQ(0, mmk_free_token(self->fd, t));

	/* The same with STORE: nothing stored. */
	do {
		struct mmk_pool_info before = pinfo(self->fd);
		struct mmk_msg_header h = { 0 };
		struct mmk_push sp = {
			.flags = MMK_PUSH_STORE, .nr_queues = 3,
			.queue_fds = { qs[0], qs[1], qs[2] },
			.header = (uintptr_t)&h, .payload = (uintptr_t)self->buf, .payload_size = 3,
		};

		EXPECT_EQ(-ENOBUFS, mmk_ioctl(self->fd, MMK_IOC_PUSH, &sp));
		EXPECT_EQ(before.stores, pinfo(self->fd).stores);
		EXPECT_EQ(before.available, pinfo(self->fd).available);
	} while (0);
	for (i = 0; i < 3; i++)
		close(qs[i]);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* A chain of three queues: each stage pops, pushes on, releases; one slot all along. */
TEST_F(q, chain_forwards_without_copy)
{
	int qs[3], st[4], i, k;
	uint64_t seqs[5], toks[5];

	for (i = 0; i < 3; i++) {
		qs[i] = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
		ASSERT_LE(0, qs[i]);
	}
	for (i = 0; i < 4; i++) {
		st[i] = attach(self);
		ASSERT_LE(0, st[i]);
	}
	for (k = 0; k < 5; k++) {
		toks[k] = put_hdr(self, st[0], 64 + k, hdr(0, BE, 0));
		seqs[k] = self->seq;
		ASSERT_EQ(0, mmk_push(st[0], toks[k], qs[0]));
	}
	for (k = 0; k < 5; k++) {
		uint64_t offset = 0;

		for (i = 0; i < 3; i++) {
			struct mmk_popped e;

			ASSERT_EQ(0, mmk_pop1(st[i + 1], qs[i], 0, &e)) TH_LOG("msg %d, stage %d", k, i);
			EXPECT_EQ(toks[k], e.token);
			if (i == 0)
				offset = e.offset;
			EXPECT_EQ(offset, e.offset) TH_LOG("msg %d, stage %d: copied", k, i);
			EXPECT_TRUE(msg_ok(self->map, e.offset, seqs[k], 64 + k));
			if (i < 2) {
				ASSERT_EQ(0, mmk_push(st[i + 1], e.token, qs[i + 1]));
			}
			ASSERT_EQ(0, mmk_read_release(st[i + 1], e.token));
			if (i < 2) {
				EXPECT_EQ(0, answer(self->fd, e.token)) TH_LOG("msg %d, stage %d", k, i);
			}
		}
		EXPECT_EQ(-ENODATA, answer(self->fd, toks[k])) TH_LOG("msg %d", k);
	}
	{
		struct mmk_pool_info info = pinfo(self->fd);

		EXPECT_EQ((uint32_t)SLOTS, info.available);
		EXPECT_EQ(5U, info.stores);
		EXPECT_EQ(5U, info.frees);
		EXPECT_EQ(0U, info.read_guards);
	}
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(5U, qinfo(qs[i]).pushes);
		EXPECT_EQ(5U, qinfo(qs[i]).pops);
		close(qs[i]);
	}
	for (i = 0; i < 4; i++)
		close(st[i]);
}

/* ---------------------------------------------------------------------- */
/* FIFO across processes                                                   */
/* ---------------------------------------------------------------------- */

#define FIFO_N		60
#define FIFO_PRODUCERS	2

/* A producer: its own session and its own fd for the queue, opened by name. */
static void fifo_producer(FIXTURE_DATA(q) *self, int id)
{
	unsigned char buf[PAYLOAD];
	int s = attach(self), qfd, i;

	CHILD_ASSERT(s >= 0);
	qfd = mmk_queue_open_name(s, "fifo");
	CHILD_ASSERT(qfd >= 0);
	for (i = 0; i < FIFO_N; i++) {
		uint64_t seq = ((uint64_t)(id + 1) << 32) | i;
		struct mmk_msg_header h = hdr(seq, BE, 0);
		struct mmk_push p = {
			.flags = MMK_PUSH_STORE | MMK_PUSH_WAIT,
			.nr_queues = 1,
			.queue_fds = { qfd },
			.header = (uintptr_t)&h,
			.payload = (uintptr_t)buf,
			.payload_size = 1 + (seq % 200),
		};

		fill(buf, p.payload_size, seq);
		CHILD_EQ(0, mmk_ioctl(s, MMK_IOC_PUSH, &p));
	}
	_exit(0);
}

/* The consumer: the queue came through SCM_RIGHTS; per-producer order, nothing twice. */
static void fifo_consumer(FIXTURE_DATA(q) *self, int sock)
{
	int s = attach(self), qfd, got[FIFO_PRODUCERS] = { 0 }, i;
	struct mmk_queue_info qi;
	size_t len;
	void *map;

	CHILD_ASSERT(s >= 0);
	map = mmk_map(s, &len);
	CHILD_ASSERT(map != MAP_FAILED);
	qfd = recv_fd(sock);
	CHILD_ASSERT(qfd >= 0);
	CHILD_EQ(0, mmk_queue_info(qfd, &qi));
	CHILD_ASSERT(!strcmp(qi.name, "fifo"));
	for (i = 0; i < FIFO_N * FIFO_PRODUCERS; i++) {
		struct mmk_popped e;
		const struct mmk_msg_header *h;
		uint64_t seq;
		int id;

		CHILD_EQ(0, mmk_pop(s, qfd, MMK_POP_WAIT, 10000 * MS, &e, 1, NULL));
		h = mmk_at(map, e.offset);
		seq = h->sequence;
		id = (int)(seq >> 32) - 1;
		CHILD_ASSERT(id >= 0 && id < FIFO_PRODUCERS);
		CHILD_EQ(got[id], seq & 0xffffffff);
		CHILD_ASSERT(msg_ok(map, e.offset, seq, 1 + (seq % 200)));
		CHILD_EQ(e.payload_size, 1 + (seq % 200));
		got[id]++;
		CHILD_EQ(0, mmk_read_release(s, e.token));
	}
	CHILD_EQ(-EAGAIN, mmk_pop1(s, qfd, 0, NULL));
	_exit(0);
}

TEST_F(q, fifo_across_processes)
{
	pid_t prod[FIFO_PRODUCERS], cons;
	struct mmk_pool_info info;
	struct mmk_queue_info qi;
	int sv[2], qfd, i;

	/* Block with room for 8: producers wait for the consumer. */
	qfd = mmk_queue_create(self->fd, "fifo", MMK_QUEUE_BLOCK, 8, 0);
	ASSERT_LE(0, qfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	cons = start_child();
	ASSERT_LE(0, cons);
	if (cons == 0) {
		close(sv[0]);
		close(qfd);
		fifo_consumer(self, sv[1]);
	}
	close(sv[1]);
	for (i = 0; i < FIFO_PRODUCERS; i++) {
		prod[i] = start_child();
		ASSERT_LE(0, prod[i]);
		if (prod[i] == 0) {
			close(qfd);
			fifo_producer(self, i);
		}
	}
	ASSERT_EQ(0, send_fd(sv[0], qfd));
	for (i = 0; i < FIFO_PRODUCERS; i++) {
		EXPECT_EQ(0, wait_child(prod[i])) TH_LOG("producer %d", i);
	}
	EXPECT_EQ(0, wait_child(cons));
	qi = qinfo(qfd);
	EXPECT_EQ((uint64_t)FIFO_N * FIFO_PRODUCERS, qi.pushes);
	EXPECT_EQ((uint64_t)FIFO_N * FIFO_PRODUCERS, qi.pops);
	EXPECT_EQ(0U, qi.items);
	EXPECT_EQ(0U, qi.rejected);
	EXPECT_GE(8U, qi.high_items);
	info = pinfo(self->fd);
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ((uint64_t)FIFO_N * FIFO_PRODUCERS, info.stores);
	EXPECT_EQ(info.stores, info.frees);
	close(sv[0]);
	close(qfd);
}

/* One producer process, one consumer process: exactly the order pushed. */
TEST_F(q, fifo_exact_order)
{
	int qfd, i;
	pid_t pid;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 64, 0);
	ASSERT_LE(0, qfd);
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The fork shares the session; the child pops what the parent pushes. */
		for (i = 0; i < 40; i++) {
			struct mmk_popped e;

			CHILD_EQ(0, mmk_pop(self->fd, qfd, MMK_POP_WAIT, 10000 * MS, &e, 1, NULL));
			CHILD_EQ(1001 + i, mmk_at(self->map, e.offset)->sequence);
			CHILD_ASSERT(msg_ok(self->map, e.offset, 1001 + i, i + 1));
			CHILD_EQ(0, mmk_read_release(self->fd, e.token));
		}
		_exit(0);
	}
	for (i = 0; i < 40; i++) {
		uint64_t t = put(self, i + 1);

		ASSERT_EQ(0, mmk_push(self->fd, t, qfd));
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
	close(qfd);
}

/* ---------------------------------------------------------------------- */
/* poll and epoll                                                          */
/* ---------------------------------------------------------------------- */

static short poll_now(int qfd)
{
	struct pollfd pf = { .fd = qfd, .events = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM };

	return poll(&pf, 1, 0) < 0 ? -1 : pf.revents;
}

TEST_F(q, poll_states)
{
	int qfd, bq;
	uint64_t t[3];
	int i;

	/* QoS, so that latency-critical messages get past the soft cap. */
	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_QOS, 3, 2);
	ASSERT_LE(0, qfd);
	EXPECT_EQ(POLLOUT | POLLWRNORM, poll_now(qfd));
	for (i = 0; i < 3; i++) {
		t[i] = put_hdr(self, self->fd, 10, hdr(0, LC, 0));
		ASSERT_EQ(0, mmk_push(self->fd, t[i], qfd));
		/* EPOLLOUT below soft (2) only. */
		EXPECT_EQ(POLLIN | POLLRDNORM | (i < 1 ? POLLOUT | POLLWRNORM : 0), poll_now(qfd))
			TH_LOG("%d queued", i + 1);
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, mmk_pop1(self->fd, qfd, 0, NULL));
		EXPECT_EQ((i < 2 ? POLLIN | POLLRDNORM : 0) | (i >= 1 ? POLLOUT | POLLWRNORM : 0),
			  poll_now(qfd)) TH_LOG("%d popped", i + 1);
		EXPECT_EQ(0, mmk_read_release(self->fd, t[i]));
	}

	/* The byte cap's soft level takes EPOLLOUT away too. */
	bq = mmk_queue_create_id(self->fd, NULL, MMK_QUEUE_REJECT, 16, 0, 300, 200, NULL);
	ASSERT_LE(0, bq);
	ASSERT_EQ(0, mmk_store_push(self->fd, bq, NULL, self->buf, 199, NULL));
	EXPECT_EQ(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM, poll_now(bq));
	ASSERT_EQ(0, mmk_store_push(self->fd, bq, NULL, self->buf, 1, NULL));
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(bq));
	close(bq);
	close(qfd);
}

/* epoll_wait on qfd for events; 1 with *got set, 0 on timeout, -1 on error. */
static int wait_event(int qfd, uint32_t events, int timeout_ms, uint32_t *got)
{
	struct epoll_event ev = { .events = events }, out;
	int ep = epoll_create1(EPOLL_CLOEXEC), n;

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, qfd, &ev))
		return -1;
	do {
		n = epoll_wait(ep, &out, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	close(ep);
	if (n == 1)
		*got = out.events;
	return n;
}

/* A process asleep in epoll_wait wakes for a push, and for room; never without cause. */
TEST_F(q, epoll_wakeups)
{
	int qfd, other, sync[2];
	uint32_t got = 0;
	uint64_t t;
	pid_t pid;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 2, 1);
	other = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 2, 0);
	ASSERT_LE(0, qfd);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, pipe2(sync, O_CLOEXEC));

	/* Nothing queued: no EPOLLIN, whatever happens elsewhere. */
	EXPECT_EQ(0, wait_event(qfd, EPOLLIN, 0, &got));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint32_t ev = 0;
		uint64_t t0;

		/* Phase 1: no EPOLLIN while the parent pushes elsewhere and fails pushes here. */
		CHILD_EQ(0, put_byte(sync[1], 'a'));
		CHILD_EQ(0, wait_event(qfd, EPOLLIN, 300, &ev));
		/* Phase 2: woken by the push, which comes 100 ms after 'b' at the earliest. */
		t0 = now_ns();
		CHILD_EQ(0, put_byte(sync[1], 'b'));
		CHILD_EQ(1, wait_event(qfd, EPOLLIN | EPOLLRDNORM, 10000, &ev));
		CHILD_ASSERT(ev & EPOLLIN);
		CHILD_ASSERT(now_ns() - t0 >= 50 * MS);
		CHILD_EQ(1, mmk_queue_items(qfd));
		/* Phase 3: no room (at soft 1): woken when the parent pops. */
		CHILD_EQ(0, wait_event(qfd, EPOLLOUT, 0, &ev));
		CHILD_EQ(0, put_byte(sync[1], 'c'));
		CHILD_EQ(1, wait_event(qfd, EPOLLOUT, 10000, &ev));
		CHILD_ASSERT(ev & EPOLLOUT);
		CHILD_EQ(0, mmk_queue_items(qfd));
		_exit(0);
	}
	close(sync[1]);		/* a child that fails ends the wait for its byte */
	ASSERT_EQ('a', get_byte(sync[0]));
	usleep(50000);
	t = put(self, 8);
	EXPECT_EQ(0, mmk_push(self->fd, t, other));
	EXPECT_EQ(-EBADSLT, mmk_push(self->fd, MMK_TOKEN_INVALID, qfd));
	t = put(self, 8);
	EXPECT_EQ(0, mmk_free_token(self->fd, t));
	ASSERT_EQ('b', get_byte(sync[0]));
	usleep(100000);
	t = put(self, 8);
	ASSERT_EQ(0, mmk_push(self->fd, t, qfd));
	ASSERT_EQ('c', get_byte(sync[0]));
	usleep(100000);
	ASSERT_EQ(0, mmk_pop1(self->fd, qfd, 0, NULL));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	/* Popped and released: no EPOLLIN left behind. */
	EXPECT_EQ(1, wait_event(qfd, EPOLLIN | EPOLLOUT, 0, &got));
	EXPECT_EQ((uint32_t)EPOLLOUT, got);
	close(sync[0]);
	close(qfd);
	close(other);
}

/* Edge-triggered: one event per push, none for a pop or a release. */
TEST_F(q, epoll_edge_triggered)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
	struct mmk_popped e[2];
	int qfd, ep;
	uint64_t t;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qfd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, qfd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 1, &t));
	EXPECT_EQ(1, epoll_wait(ep, &out, 1, 0));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 1, NULL));
	EXPECT_EQ(1, epoll_wait(ep, &out, 1, 0));
	/* Emptied: nothing to report, whatever woke the queue. */
	ASSERT_EQ(0, mmk_pop(self->fd, qfd, 0, 0, e, 2, NULL));
	ASSERT_EQ(0, mmk_read_release(self->fd, e[0].token));
	ASSERT_EQ(0, mmk_read_release(self->fd, e[1].token));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
	close(ep);
	close(qfd);
}

/* ---------------------------------------------------------------------- */
/* Waits                                                                   */
/* ---------------------------------------------------------------------- */

/* Block: a push waits for room, times out with ENOBUFS, is interrupted, is admitted. */
TEST_F(q, block_push_waits)
{
	struct mmk_push p;
	uint64_t t, t0, el;
	int qfd, between;
	pid_t pid;

	qfd = mmk_queue_create(self->fd, "blk", MMK_QUEUE_BLOCK, 2, 0);
	ASSERT_LE(0, qfd);
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 1, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 1, NULL));
	t = put(self, 4);

	/* Timeout: ENOBUFS, not before the time, the message still the caller's. */
	t0 = now_ns();
	EXPECT_EQ(-ENOBUFS, mmk_push_to(self->fd, t, &qfd, 1, MMK_PUSH_WAIT, 100 * MS, &p));
	el = now_ns() - t0;
	EXPECT_LE(100 * MS, el);
	EXPECT_GT(5000 * MS, el);
	EXPECT_EQ(0, answer(self->fd, t));
	EXPECT_EQ(2, mmk_queue_items(qfd));

	/* A signal: EINTR, nothing given. */
	alarms = 0;
	alarm_in(100);
	t0 = now_ns();
	EXPECT_EQ(-EINTR, mmk_push_to(self->fd, t, &qfd, 1, MMK_PUSH_WAIT, 0, &p));
	EXPECT_LE(90 * MS, now_ns() - t0);
	EXPECT_EQ(1, alarms);
	EXPECT_EQ(2, mmk_queue_items(qfd));
	EXPECT_EQ(0, mmk_free_token(self->fd, t));

	/* STORE and wait, timing out: nothing stored. */
	do {
		struct mmk_pool_info before = pinfo(self->fd);
		struct mmk_msg_header h = { 0 };
		struct mmk_push sp = {
			.flags = MMK_PUSH_STORE | MMK_PUSH_WAIT, .nr_queues = 1, .queue_fds = { qfd },
			.timeout_ns = 30 * MS, .header = (uintptr_t)&h,
			.payload = (uintptr_t)self->buf, .payload_size = 2,
		};

		EXPECT_EQ(-ENOBUFS, mmk_ioctl(self->fd, MMK_IOC_PUSH, &sp));
		EXPECT_EQ(before.stores, pinfo(self->fd).stores);
		EXPECT_EQ(before.available, pinfo(self->fd).available);
	} while (0);

	/* Room made by another process's pop: the waiting push is admitted, at the tail. */
	t = put(self, 4);
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int s = attach(self), q2;
		struct mmk_popped e;

		CHILD_ASSERT(s >= 0);
		q2 = mmk_queue_open_name(s, "blk");
		CHILD_ASSERT(q2 >= 0);
		usleep(150000);
		CHILD_EQ(0, mmk_pop1(s, q2, 0, &e));
		CHILD_EQ(0, mmk_read_release(s, e.token));
		_exit(0);
	}
	t0 = now_ns();
	EXPECT_EQ(0, mmk_push_to(self->fd, t, &qfd, 1, MMK_PUSH_WAIT, 0, &p));
	EXPECT_LE(100 * MS, now_ns() - t0);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(2, mmk_queue_items(qfd));
	do {
		struct mmk_queue_peek pk;

		ASSERT_EQ(0, mmk_queue_peek(self->fd, qfd, 1, &pk));
		EXPECT_EQ(t, pk.token);
	} while (0);

	/* Block waits between the soft and the hard cap too. */
	between = mmk_queue_create(self->fd, NULL, MMK_QUEUE_BLOCK, 3, 1);
	ASSERT_LE(0, between);
	ASSERT_EQ(0, mmk_store_push(self->fd, between, NULL, self->buf, 1, NULL));
	t = put(self, 4);
	t0 = now_ns();
	EXPECT_EQ(-ENOBUFS, mmk_push_to(self->fd, t, &between, 1, MMK_PUSH_WAIT, 50 * MS, &p));
	EXPECT_LE(50 * MS, now_ns() - t0);
	EXPECT_EQ(1, mmk_queue_items(between));
	EXPECT_EQ(0, mmk_free_token(self->fd, t));
	close(between);
	close(qfd);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* A push to several full Block queues waits until every one of them has room. */
TEST_F(q, block_fanout_waits_for_every_queue)
{
	int qs[2], i;
	uint64_t t, t0;
	pid_t pid;

	for (i = 0; i < 2; i++) {
		qs[i] = mmk_queue_create(self->fd, i ? "blk2" : "blk1", MMK_QUEUE_BLOCK, 1, 0);
		ASSERT_LE(0, qs[i]);
		ASSERT_EQ(0, mmk_store_push(self->fd, qs[i], NULL, self->buf, 1, NULL));
	}
	t = put(self, 4);
	t0 = now_ns();
	EXPECT_EQ(-ENOBUFS, mmk_push_to(self->fd, t, qs, 2, MMK_PUSH_WAIT, 100 * MS, NULL));
	EXPECT_LE(100 * MS, now_ns() - t0);
	EXPECT_EQ(0, answer(self->fd, t));

	/* Room in one, then in the other: the push goes through after the second. */
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int s = attach(self), q1, q2;
		struct mmk_popped e;

		CHILD_ASSERT(s >= 0);
		q1 = mmk_queue_open_name(s, "blk1");
		q2 = mmk_queue_open_name(s, "blk2");
		CHILD_ASSERT(q1 >= 0 && q2 >= 0);
		usleep(100000);
		CHILD_EQ(0, mmk_pop1(s, q2, 0, &e));
		CHILD_EQ(0, mmk_read_release(s, e.token));
		usleep(100000);
		CHILD_EQ(0, mmk_pop1(s, q1, 0, &e));
		CHILD_EQ(0, mmk_read_release(s, e.token));
		_exit(0);
	}
	t0 = now_ns();
	EXPECT_EQ(0, mmk_push_to(self->fd, t, qs, 2, MMK_PUSH_WAIT, 5000 * MS, NULL));
	EXPECT_LE(150 * MS, now_ns() - t0);
	EXPECT_EQ(0, wait_child(pid));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(1, mmk_queue_items(qs[i])) TH_LOG("queue %d", i);
		close(qs[i]);
	}
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* Pop waits for a first message: times out with EAGAIN, is interrupted, gets it. */
TEST_F(q, pop_waits)
{
	struct mmk_popped e[4];
	uint64_t t0, el;
	uint32_t count = 9;
	int qfd;
	pid_t pid;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qfd);
	t0 = now_ns();
	EXPECT_EQ(-EAGAIN, mmk_pop(self->fd, qfd, MMK_POP_WAIT, 100 * MS, e, 1, NULL));
	el = now_ns() - t0;
	EXPECT_LE(100 * MS, el);
	EXPECT_GT(5000 * MS, el);

	alarms = 0;
	alarm_in(100);
	t0 = now_ns();
	EXPECT_EQ(-EINTR, mmk_pop(self->fd, qfd, MMK_POP_WAIT, 0, e, 1, NULL));
	EXPECT_LE(90 * MS, now_ns() - t0);
	EXPECT_EQ(1, alarms);

	/* Woken by a push from another process; never waits for more than the first. */
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		usleep(150000);
		CHILD_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 5, NULL));
		_exit(0);
	}
	t0 = now_ns();
	EXPECT_EQ(0, mmk_pop(self->fd, qfd, MMK_POP_WAIT, 10000 * MS, e, 4, &count));
	EXPECT_LE(100 * MS, now_ns() - t0);
	EXPECT_EQ(1U, count);
	EXPECT_EQ(5U, e[0].payload_size);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, mmk_read_release(self->fd, e[0].token));
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
	close(qfd);
}

/* ---------------------------------------------------------------------- */
/* Ownership: QUEUE_OWNED, NOT_ALLOCATED                                   */
/* ---------------------------------------------------------------------- */

TEST_F(q, queue_owned_and_not_allocated)
{
	struct mmk_pool_info before;
	struct mmk_popped e;
	struct mmk_guard g;
	int qfd, q2;
	uint64_t t;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
	q2 = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, qfd);
	ASSERT_LE(0, q2);
	t = put(self, 32);
	ASSERT_EQ(0, mmk_push(self->fd, t, qfd));

	/* Free while queued: QUEUE_OWNED; with a guard too, BORROW_ACTIVE first. */
	EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_TRUE(msg_ok(self->map, g.offset, self->seq, 32));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, t, &g));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	/* A queue's hold is shared: no write guard. */
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	/* Once per queue; another queue may take it too. */
	EXPECT_EQ(-EINPROGRESS, mmk_push(self->fd, t, qfd));
	EXPECT_EQ(0, mmk_push(self->fd, t, q2));
	EXPECT_EQ(-EINPROGRESS, mmk_push(self->fd, t, q2));
	EXPECT_EQ(1, mmk_queue_items(qfd));

	/* Popped from one, still in the other. */
	ASSERT_EQ(0, mmk_pop1(self->fd, qfd, 0, &e));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, t));
	/* The queue no longer holds it: it may be pushed back. */
	EXPECT_EQ(0, mmk_push(self->fd, t, qfd));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	ASSERT_EQ(0, mmk_pop1(self->fd, qfd, 0, &e));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, t));
	before = pinfo(self->fd);
	ASSERT_EQ(0, mmk_pop1(self->fd, q2, 0, &e));
	EXPECT_EQ(before.available, pinfo(self->fd).available);

	/* The last release frees it: NOT_ALLOCATED everywhere after. */
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(before.frees + 1, pinfo(self->fd).frees);
	EXPECT_EQ(before.available + 1, pinfo(self->fd).available);
	EXPECT_EQ(-ENODATA, mmk_free_token(self->fd, t));
	EXPECT_EQ(-ENODATA, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_EQ(-ENODATA, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	EXPECT_EQ(-ENODATA, mmk_push(self->fd, t, qfd));
	EXPECT_EQ(-ENODATA, mmk_read_release(self->fd, t));
	/* Stored again: if into the same slot, the old token is stale. */
	do {
		uint64_t u = put(self, 1);
		struct mmk_guard gu;

		ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, u, &gu));
		EXPECT_EQ(gu.offset == e.offset ? -EBADSLT : -ENODATA, mmk_push(self->fd, t, qfd));
		EXPECT_EQ(0, mmk_read_release(self->fd, u));
		EXPECT_EQ(0, mmk_free_token(self->fd, u));
	} while (0);
	close(qfd);
	close(q2);
}

/* ---------------------------------------------------------------------- */
/* Pops                                                                    */
/* ---------------------------------------------------------------------- */

/* A write pop: only when the queue's hold is the message's only one. */
TEST_F(q, write_pop_only_as_sole_holder)
{
	struct mmk_msg_header h = hdr(4242, BE, 0);
	struct mmk_pool_info before;
	struct mmk_queue_peek pk;
	struct mmk_popped e[3];
	struct mmk_release rel;
	struct mmk_guard g;
	int qa, qb, other, qq[2];
	uint64_t a, b, c;
	uint32_t count;

	qa = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	qb = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qa);
	ASSERT_LE(0, qb);
	other = attach(self);
	ASSERT_LE(0, other);

	/* Sole holder: a write guard; a write release frees it (it was given). */
	a = put(self, 8);
	ASSERT_EQ(0, mmk_push(self->fd, a, qa));
	ASSERT_EQ(0, mmk_pop1(self->fd, qa, MMK_POP_WRITE, &e[0]));
	EXPECT_EQ(a, e[0].token);
	EXPECT_EQ(1U, pinfo(self->fd).write_guards);
	EXPECT_EQ(-EBUSY, mmk_guard(other, MMK_IOC_READ, a, &g));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, a));
	fill(self->buf, 20, 4242);
	before = pinfo(self->fd);
	rel = (struct mmk_release){
		.token = a, .flags = MMK_RELEASE_COMMIT, .payload_size = 20,
		.header = (uintptr_t)&h, .payload = (uintptr_t)self->buf,
	};
	EXPECT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &rel));
	EXPECT_EQ(before.frees + 1, pinfo(self->fd).frees);
	EXPECT_EQ(-ENODATA, answer(self->fd, a));

	/* Also in another queue: EBUSY, and it stays at the head. */
	b = put(self, 8);
	qq[0] = qa;
	qq[1] = qb;
	ASSERT_EQ(0, mmk_push_to(self->fd, b, qq, 2, 0, 0, NULL));
	EXPECT_EQ(-EBUSY, mmk_pop1(self->fd, qa, MMK_POP_WRITE, &e[0]));
	ASSERT_EQ(0, mmk_queue_peek(self->fd, qa, 0, &pk));
	EXPECT_EQ(b, pk.token);
	EXPECT_EQ(1, mmk_queue_items(qa));
	EXPECT_EQ(1U, qinfo(qa).pops);	/* a's */
	/* Out of the other queue, but a read guard elsewhere: still EBUSY. */
	ASSERT_EQ(0, mmk_pop1(other, qb, 0, &e[0]));
	EXPECT_EQ(-EBUSY, mmk_pop1(self->fd, qa, MMK_POP_WRITE, &e[0]));
	EXPECT_EQ(0, mmk_read_release(other, b));
	/* Now the queue is the only holder. */
	ASSERT_EQ(0, mmk_pop1(self->fd, qa, MMK_POP_WRITE, &e[0]));
	EXPECT_EQ(b, e[0].token);
	/* Forwarded with a commit: the write guard becomes qb's hold. */
	fill(self->buf, 20, 4242);
	EXPECT_EQ(0, commit_push(self->fd, b, qb, &h, self->buf, 20));
	EXPECT_EQ(0U, pinfo(self->fd).write_guards);
	ASSERT_EQ(0, mmk_pop1(other, qb, 0, &e[0]));
	EXPECT_TRUE(msg_ok(self->map, e[0].offset, 4242, 20));
	EXPECT_EQ(0, mmk_read_release(other, b));
	EXPECT_EQ(-ENODATA, answer(self->fd, b));

	/* A multi-pop with WRITE stops at the first message something else holds. */
	a = put(self, 1);
	b = put(self, 1);
	c = put(self, 1);
	ASSERT_EQ(0, mmk_push(self->fd, a, qa));
	ASSERT_EQ(0, mmk_push_to(self->fd, b, qq, 2, 0, 0, NULL));
	ASSERT_EQ(0, mmk_push(self->fd, c, qa));
	count = 9;
	ASSERT_EQ(0, mmk_pop(self->fd, qa, MMK_POP_WRITE, 0, e, 3, &count));
	EXPECT_EQ(1U, count);
	EXPECT_EQ(a, e[0].token);
	EXPECT_EQ(-EBUSY, mmk_pop(self->fd, qa, MMK_POP_WRITE, 0, e, 3, &count));
	EXPECT_EQ(2, mmk_queue_items(qa));
	/* A read pop takes both. */
	ASSERT_EQ(0, mmk_pop(self->fd, qa, 0, 0, e + 1, 2, &count));
	EXPECT_EQ(2U, count);
	EXPECT_EQ(b, e[1].token);
	EXPECT_EQ(c, e[2].token);
	EXPECT_EQ(0, mmk_write_release(self->fd, a));
	EXPECT_EQ(0, mmk_read_release(self->fd, b));
	EXPECT_EQ(0, mmk_read_release(self->fd, c));
	EXPECT_EQ(0, answer(self->fd, b));	/* still in qb */
	close(qa);
	close(qb);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
	EXPECT_EQ(0U, pinfo(self->fd).poisoned);
	close(other);
}

/* Pop of up to N: oldest first, each a read guard; arguments checked. */
TEST_F(q, pop_batch_and_arguments)
{
	unsigned long maxb = mmk_param("max_batch_ops");
	struct mmk_popped e[8];
	uint64_t t[5];
	uint32_t count;
	int qfd, i;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qfd);
	EXPECT_EQ(-EAGAIN, mmk_pop(self->fd, qfd, 0, 0, e, 8, &count));
	for (i = 0; i < 5; i++) {
		t[i] = put(self, 10 + i);
		ASSERT_EQ(0, mmk_push(self->fd, t[i], qfd));
	}
	/* Argument checks change nothing. */
	EXPECT_EQ(-EINVAL, mmk_pop(self->fd, qfd, 0, 0, e, 0, NULL));
	EXPECT_EQ(-EINVAL, mmk_pop(self->fd, qfd, 0, 0, e, maxb + 1, NULL));
	EXPECT_EQ(-EINVAL, mmk_pop(self->fd, qfd, 0x4, 0, e, 1, NULL));
	EXPECT_EQ(-EINVAL, mmk_pop(self->fd, qfd, 0, MS, e, 1, NULL));
	EXPECT_EQ(-EFAULT, mmk_pop(self->fd, qfd, 0, 0, (void *)8, 1, NULL));
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, MMK_IOC_POP, (void *)8));
	EXPECT_EQ(5, mmk_queue_items(qfd));
	EXPECT_EQ(0U, pinfo(self->fd).read_guards);

	count = 0;
	ASSERT_EQ(0, mmk_pop(self->fd, qfd, 0, 0, e, 3, &count));
	EXPECT_EQ(3U, count);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(t[i], e[i].token);
		EXPECT_EQ(10U + i, e[i].payload_size);
		EXPECT_EQ(0U, e[i].__reserved);
		EXPECT_TRUE(msg_ok(self->map, e[i].offset, 1001 + i, 10 + i));
	}
	EXPECT_EQ(3U, pinfo(self->fd).read_guards);
	ASSERT_EQ(0, mmk_pop(self->fd, qfd, 0, 0, e + 3, 5, &count));
	EXPECT_EQ(2U, count);
	EXPECT_EQ(t[3], e[3].token);
	EXPECT_EQ(t[4], e[4].token);
	EXPECT_EQ(-EAGAIN, mmk_pop(self->fd, qfd, 0, 0, e, 8, &count));
	EXPECT_EQ(5U, qinfo(qfd).pops);
	for (i = 0; i < 5; i++) {
		EXPECT_EQ(0, mmk_read_release(self->fd, t[i]));
	}
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
	close(qfd);
}

/* A popped message is a guard of the session: max_guards_per_session bounds it (EDQUOT). */
TEST_F(q, pop_counts_against_guard_limit)
{
	struct mmk_popped e[4];
	struct mmk_guard g;
	uint32_t count;
	uint64_t t;
	int qfd, i;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qfd);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 1, NULL));
	t = put(self, 1);
	if (!set_param(_metadata, self, "max_guards_per_session", 3))
		return;
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	/* Two guards left: a pop of four takes two. */
	ASSERT_EQ(0, mmk_pop(self->fd, qfd, 0, 0, e, 4, &count));
	EXPECT_EQ(2U, count);
	EXPECT_EQ(-EDQUOT, mmk_pop(self->fd, qfd, 0, 0, e, 4, &count));
	EXPECT_EQ(2, mmk_queue_items(qfd));
	EXPECT_EQ(0, mmk_read_release(self->fd, e[0].token));
	ASSERT_EQ(0, mmk_pop(self->fd, qfd, 0, 0, e, 4, &count));
	EXPECT_EQ(1U, count);
	EXPECT_EQ(1, mmk_queue_items(qfd));
	close(qfd);
}

/* Peek: the oldest or the n-th, what a header says, no guard taken. */
TEST_F(q, peek)
{
	uint64_t dl = now_ns() + 3600000 * MS, t[3];
	struct mmk_queue_peek pk;
	int qfd, i;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qfd);
	EXPECT_EQ(-EAGAIN, mmk_queue_peek(self->fd, qfd, 0, &pk));
	t[0] = put_hdr(self, self->fd, 7, hdr(0, MMK_QOS_BACKGROUND, 0));
	t[1] = put_hdr(self, self->fd, 70, hdr(0, MMK_QOS_LATENCY_CRITICAL, dl));
	t[2] = put_hdr(self, self->fd, 0, hdr(0, 0, 0));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, mmk_push(self->fd, t[i], qfd));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, mmk_queue_peek(self->fd, qfd, i, &pk));
		EXPECT_EQ(t[i], pk.token);
		EXPECT_EQ(mmk_at(self->map, pk.offset)->sequence, 1001U + i);
	}
	ASSERT_EQ(0, mmk_queue_peek(self->fd, qfd, 0, &pk));
	EXPECT_EQ(7U, pk.payload_size);
	EXPECT_EQ(MMK_QOS_BACKGROUND, pk.qos);
	EXPECT_EQ(0U, pk.msg_flags);
	EXPECT_EQ(0U, pk.deadline_ns);
	ASSERT_EQ(0, mmk_queue_peek(self->fd, qfd, 1, &pk));
	EXPECT_EQ(70U, pk.payload_size);
	EXPECT_EQ(MMK_QOS_LATENCY_CRITICAL, pk.qos);
	EXPECT_EQ(MMK_MSG_HAS_DEADLINE, pk.msg_flags);
	EXPECT_EQ(dl, pk.deadline_ns);
	ASSERT_EQ(0, mmk_queue_peek(self->fd, qfd, 2, &pk));
	EXPECT_EQ(MMK_QOS_BEST_EFFORT, pk.qos);
	EXPECT_EQ(0U, pk.payload_size);
	EXPECT_EQ(-EAGAIN, mmk_queue_peek(self->fd, qfd, 3, &pk));
	EXPECT_EQ(-EAGAIN, mmk_queue_peek(self->fd, qfd, ~0U, &pk));
	/* Nothing taken. */
	EXPECT_EQ(0U, pinfo(self->fd).read_guards);
	EXPECT_EQ(3, mmk_queue_items(qfd));
	EXPECT_EQ(0U, qinfo(qfd).pops);
	/* Reserved fields in, out fields ignored. */
	memset(&pk, 0, sizeof(pk));
	pk.queue_fd = qfd;
	pk.__reserved[1] = 1;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_QUEUE_PEEK, &pk));
	memset(&pk, 0, sizeof(pk));
	pk.queue_fd = qfd;
	pk.__reserved2 = 1;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_QUEUE_PEEK, &pk));
	memset(&pk, 0, sizeof(pk));
	pk.queue_fd = qfd;
	pk.token = 5;
	pk.deadline_ns = 5;
	EXPECT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_QUEUE_PEEK, &pk));
	EXPECT_EQ(t[0], pk.token);
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, MMK_IOC_QUEUE_PEEK, (void *)8));
	close(qfd);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* QoS queues drop, at pop, a message whose deadline has passed; other policies deliver it. */
TEST_F(q, qos_deadline_drop_at_pop)
{
	uint64_t past = now_ns() - 1 * MS, future = now_ns() + 3600000 * MS;
	struct mmk_pool_info before;
	struct mmk_popped e[4];
	uint64_t late1, late2, ok, plain, late3;
	uint32_t count;
	int qq, rq;

	qq = mmk_queue_create(self->fd, NULL, MMK_QUEUE_QOS, 8, 0);
	rq = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qq);
	ASSERT_LE(0, rq);
	late1 = put_hdr(self, self->fd, 8, hdr(0, LC, past));
	late2 = put_hdr(self, self->fd, 8, hdr(0, LC, 1));
	ok = put_hdr(self, self->fd, 8, hdr(0, LC, future));
	plain = put_hdr(self, self->fd, 8, hdr(0, LC, 0));
	ASSERT_EQ(0, mmk_push(self->fd, late1, qq));
	ASSERT_EQ(0, mmk_push(self->fd, late2, qq));
	ASSERT_EQ(0, mmk_push(self->fd, ok, qq));
	ASSERT_EQ(0, mmk_push(self->fd, plain, qq));
	EXPECT_EQ(4, mmk_queue_items(qq));
	before = pinfo(self->fd);
	count = 0;
	ASSERT_EQ(0, mmk_pop(self->fd, qq, 0, 0, e, 1, &count));
	EXPECT_EQ(1U, count);
	EXPECT_EQ(ok, e[0].token);
	EXPECT_EQ(2U, qinfo(qq).drops[MMK_DROP_DEADLINE]);
	EXPECT_EQ(1U, qinfo(qq).pops);
	EXPECT_EQ(1, mmk_queue_items(qq));
	EXPECT_EQ(before.frees + 2, pinfo(self->fd).frees);
	EXPECT_EQ(-ENODATA, answer(self->fd, late1));
	EXPECT_EQ(-ENODATA, answer(self->fd, late2));
	ASSERT_EQ(0, mmk_pop1(self->fd, qq, 0, &e[1]));
	EXPECT_EQ(plain, e[1].token);
	EXPECT_EQ(0, mmk_read_release(self->fd, ok));
	EXPECT_EQ(0, mmk_read_release(self->fd, plain));

	/* Only expired ones queued: the pop finds nothing. */
	late3 = put_hdr(self, self->fd, 8, hdr(0, LC, past));
	ASSERT_EQ(0, mmk_push(self->fd, late3, qq));
	EXPECT_EQ(-EAGAIN, mmk_pop1(self->fd, qq, 0, &e[0]));
	EXPECT_EQ(0, mmk_queue_items(qq));
	EXPECT_EQ(3U, qinfo(qq).drops[MMK_DROP_DEADLINE]);

	/* An expired message still held elsewhere (another queue) is not freed by the drop. */
	late3 = put_hdr(self, self->fd, 8, hdr(0, LC, past));
	{
		int both[2] = { qq, rq };

		ASSERT_EQ(0, mmk_push_to(self->fd, late3, both, 2, 0, 0, NULL));
	}
	EXPECT_EQ(-EAGAIN, mmk_pop1(self->fd, qq, 0, &e[0]));
	EXPECT_EQ(0, answer(self->fd, late3));
	/* A Reject queue delivers it. */
	ASSERT_EQ(0, mmk_pop1(self->fd, rq, 0, &e[0]));
	EXPECT_EQ(late3, e[0].token);
	EXPECT_EQ(0U, qinfo(rq).drops[MMK_DROP_DEADLINE]);
	EXPECT_EQ(0, mmk_read_release(self->fd, late3));
	EXPECT_EQ(-ENODATA, answer(self->fd, late3));
	close(qq);
	close(rq);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* MMK_IOC_QUEUE_INFO: occupancy, watermark, high water mark, counters; the struct's size. */
TEST_F(q, info_counters)
{
	struct {
		struct mmk_queue_info qi;
		uint64_t tail;
	} big;
	struct mmk_queue_info qi;
	struct mmk_popped e;
	unsigned long nr = _IOC_NR(MMK_IOC_QUEUE_INFO);
	static uint32_t id;
	int qfd, i;

	qfd = mmk_queue_create_id(self->fd, "counted", MMK_QUEUE_DROP_NEWEST, 4, 2, 1000, 300, &id);
	ASSERT_LE(0, qfd);
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 100, NULL));
		qi = qinfo(qfd);
		EXPECT_EQ(i < 2 ? (uint32_t)i + 1 : 2U, qi.items) TH_LOG("push %d", i);
		EXPECT_EQ(i < 1 ? (uint32_t)MMK_WM_BELOW_SOFT : (uint32_t)MMK_WM_BETWEEN, qi.watermark) TH_LOG("push %d", i);
	}
	/* Wait: at 2 items (soft), dropped from the third on. */
	qi = qinfo(qfd);
	EXPECT_EQ(id, qi.queue_id);
	EXPECT_EQ(self->pool_id, qi.pool_id);
	EXPECT_EQ((uint32_t)MMK_QUEUE_DROP_NEWEST, qi.policy);
	EXPECT_EQ(4U, qi.cap_items);
	EXPECT_EQ(2U, qi.soft_items);
	EXPECT_EQ(1000U, qi.cap_bytes);
	EXPECT_EQ(300U, qi.soft_bytes);
	EXPECT_EQ(200U, qi.bytes);
	EXPECT_EQ(2U, qi.high_items);
	EXPECT_EQ(2U, qi.pushes);
	EXPECT_EQ(3U, qi.drops[MMK_DROP_NEWEST]);
	EXPECT_EQ(0U, qi.rejected);
	EXPECT_STREQ("counted", qi.name);
	ASSERT_EQ(0, mmk_pop1(self->fd, qfd, 0, &e));
	EXPECT_EQ(0, mmk_read_release(self->fd, e.token));
	qi = qinfo(qfd);
	EXPECT_EQ(1U, qi.items);
	EXPECT_EQ(100U, qi.bytes);
	EXPECT_EQ(2U, qi.high_items);
	EXPECT_EQ(1U, qi.pops);
	EXPECT_EQ((uint32_t)MMK_WM_BELOW_SOFT, qi.watermark);

	/* Sizes: longer is fine (the tail zeroed), shorter is EINVAL. */
	memset(&big, 0xa5, sizeof(big));
	ASSERT_EQ(0, mmk_ioctl(qfd, _IOC(_IOC_READ, MMK_IOC_MAGIC, nr, sizeof(big)), &big));
	EXPECT_EQ(0U, big.tail);
	EXPECT_EQ(1U, big.qi.items);
	EXPECT_EQ(-EINVAL, mmk_ioctl(qfd, _IOC(_IOC_READ, MMK_IOC_MAGIC, nr, sizeof(qi) - 8), &qi));
	EXPECT_EQ(-EFAULT, mmk_ioctl(qfd, MMK_IOC_QUEUE_INFO, (void *)8));
	/* Session ioctls are not a queue's. */
	do {
		struct mmk_pool_info pi;

		EXPECT_NE(0, mmk_ioctl(qfd, MMK_IOC_POOL_INFO, &pi));
	} while (0);
	close(qfd);
}

/* Store-and-push and commit-and-push (a write guard or a loan). */
TEST_F(q, store_push_and_commit_push)
{
	struct mmk_msg_header h = hdr(777, LC, 0);
	struct mmk_pool_info before;
	struct mmk_popped e;
	struct mmk_loan loan = { 0 };
	struct mmk_guard g;
	int qfd, full, other;
	uint64_t t;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	full = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0);
	ASSERT_LE(0, qfd);
	ASSERT_LE(0, full);
	ASSERT_EQ(0, mmk_store_push(self->fd, full, NULL, self->buf, 1, NULL));
	other = attach(self);
	ASSERT_LE(0, other);

	/* STORE: token out, the message in the queue, nobody's to free. */
	fill(self->buf, 50, 777);
	before = pinfo(self->fd);
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, &h, self->buf, 50, &t));
	EXPECT_NE(MMK_TOKEN_INVALID, t);
	EXPECT_EQ(before.stores + 1, pinfo(self->fd).stores);
	EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, t));
	ASSERT_EQ(0, mmk_pop1(other, qfd, 0, &e));
	EXPECT_EQ(t, e.token);
	EXPECT_TRUE(msg_ok(self->map, e.offset, 777, 50));
	EXPECT_EQ(0, mmk_read_release(other, t));
	EXPECT_EQ(-ENODATA, answer(self->fd, t));
	/* STORE checks as a store does. */
	EXPECT_EQ(-EMSGSIZE, mmk_store_push(self->fd, qfd, &h, self->buf, PAYLOAD + 1, &t));
	EXPECT_EQ(MMK_TOKEN_INVALID, t);
	do {
		struct mmk_msg_header bad = { .flags = 0x80 };

		EXPECT_EQ(-EINVAL, mmk_store_push(self->fd, qfd, &bad, self->buf, 1, &t));
	} while (0);

	/* COMMIT of a write guard, write-back. */
	t = put(self, 4);
	fill(self->buf, 50, 777);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	/* Refused: the guard is still held, with the committed message in the slot. */
	EXPECT_EQ(-ENOBUFS, commit_push(self->fd, t, full, &h, self->buf, 50));
	EXPECT_EQ(1U, pinfo(self->fd).write_guards);
	EXPECT_EQ(-EBUSY, mmk_guard(other, MMK_IOC_READ, t, &g));
	/* Another session cannot commit our guard. */
	EXPECT_EQ(-EBUSY, commit_push(other, t, qfd, &h, self->buf, 50));
	EXPECT_EQ(0, commit_push(self->fd, t, qfd, &h, self->buf, 50));
	EXPECT_EQ(0U, pinfo(self->fd).write_guards);
	EXPECT_EQ(-ENOENT, mmk_write_release(self->fd, t));
	ASSERT_EQ(0, mmk_pop1(other, qfd, 0, &e));
	EXPECT_TRUE(msg_ok(self->map, e.offset, 777, 50));
	EXPECT_EQ(0, mmk_read_release(other, t));
	EXPECT_EQ(-ENODATA, answer(self->fd, t));

	/* COMMIT refused, then released without commit: the committed content stays. */
	t = put(self, 4);
	fill(self->buf, 50, 777);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	EXPECT_EQ(-ENOBUFS, commit_push(self->fd, t, full, &h, self->buf, 50));
	EXPECT_EQ(0, mmk_write_release(self->fd, t));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, t, &g));
	EXPECT_TRUE(msg_ok(self->map, g.offset, 777, 50));
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	EXPECT_EQ(0, mmk_free_token(self->fd, t));

	/* COMMIT of a loan publishes it straight into the queue. */
	ASSERT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_LOAN, &loan));
	/* Not this session's loan: EBUSY. */
	EXPECT_EQ(-EBUSY, commit_push(other, loan.token, qfd, &h, self->buf, 50));
	EXPECT_EQ(0, commit_push(self->fd, loan.token, qfd, &h, self->buf, 50));
	EXPECT_EQ(-EINPROGRESS, mmk_free_token(self->fd, loan.token));
	ASSERT_EQ(0, mmk_pop1(other, qfd, 0, &e));
	EXPECT_EQ(loan.token, e.token);
	EXPECT_EQ(loan.offset, e.offset);
	EXPECT_TRUE(msg_ok(self->map, e.offset, 777, 50));
	EXPECT_EQ(0, mmk_read_release(other, loan.token));
	EXPECT_EQ(-ENODATA, answer(self->fd, loan.token));
	/* COMMIT (in place) with no guard of ours on it. */
	t = put(self, 4);
	EXPECT_EQ(-ENOENT, commit_push(self->fd, t, qfd, NULL, NULL, 0));
	EXPECT_EQ(0, mmk_queue_items(qfd));
	EXPECT_EQ(0, mmk_free_token(self->fd, t));
	close(qfd);
	close(full);
	close(other);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
	EXPECT_EQ(0U, pinfo(self->fd).write_guards);
}

/* ---------------------------------------------------------------------- */
/* Batch queue ops                                                         */
/* ---------------------------------------------------------------------- */

static struct mmk_batch_entry bop(uint32_t op, int qfd, uint64_t token)
{
	return (struct mmk_batch_entry){ .op = op, .queue_fd = qfd, .token = token,
					 .result = UNTOUCHED, .outcome = UNTOUCHED };
}

static int run_batch(int fd, struct mmk_batch_entry *ops, uint32_t n, uint32_t *done)
{
	struct mmk_batch b = { .ops = (uintptr_t)ops, .count = n, .done = UNTOUCHED };
	int ret = mmk_ioctl(fd, MMK_IOC_BATCH, &b);

	*done = b.done;
	return ret;
}

/* One hop in one call: release what was read, push what was made, wait for the next. */
TEST_F(q, batch_release_push_pop_wait)
{
	static struct mmk_msg_header h;
	struct mmk_batch_entry ops[4];
	int in, out, cons;
	uint32_t done;
	uint64_t first;
	pid_t pid;

	in = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	out = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, in);
	ASSERT_LE(0, out);
	cons = attach(self);
	ASSERT_LE(0, cons);
	ASSERT_EQ(0, mmk_store_push(self->fd, in, NULL, self->buf, 3, &first));

	/* The first pop, in a batch of its own. */
	ops[0] = bop(MMK_BATCH_POP, in, 0);
	ASSERT_EQ(0, run_batch(cons, ops, 1, &done));
	ASSERT_EQ(1U, done);
	EXPECT_EQ(0, ops[0].result);
	EXPECT_EQ(first, ops[0].token);
	EXPECT_EQ(3U, ops[0].payload_size);
	EXPECT_EQ(0U, ops[0].outcome);

	/* Forward it, release it, store-and-push a result, and wait for the next. */
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		usleep(150000);
		CHILD_EQ(0, mmk_store_push(self->fd, in, NULL, self->buf, 9, NULL));
		_exit(0);
	}
	ops[0] = bop(MMK_BATCH_PUSH, out, first);
	ops[1] = bop(MMK_BATCH_READ_RELEASE, 0, first);
	ops[2] = bop(MMK_BATCH_STORE_PUSH, out, 0);
	ops[2].header = (uintptr_t)&h;
	ops[2].payload = (uintptr_t)self->buf;
	ops[2].payload_size = 11;
	ops[3] = bop(MMK_BATCH_POP, in, 0);
	ops[3].flags = MMK_POP_WAIT;
	ops[3].timeout_ns = 10000 * MS;
	ASSERT_EQ(0, run_batch(cons, ops, 4, &done));
	EXPECT_EQ(4U, done);
	EXPECT_EQ(0, ops[0].result);
	EXPECT_EQ(0U, ops[0].outcome);
	EXPECT_EQ(0, ops[1].result);
	EXPECT_EQ(0, ops[2].result);
	EXPECT_NE(MMK_TOKEN_INVALID, ops[2].token);
	EXPECT_EQ(0, ops[3].result);
	EXPECT_EQ(9U, ops[3].payload_size);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(2, mmk_queue_items(out));
	EXPECT_EQ(0, mmk_queue_items(in));
	EXPECT_EQ(1U, pinfo(self->fd).read_guards);
	EXPECT_EQ(0, mmk_read_release(cons, ops[3].token));
	close(in);
	close(out);
	close(cons);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

struct stalled_batch {
	int fd;
	struct mmk_batch_entry *ops;
	uint32_t n, done;
	int ret;
};

static void *stalled_batch_run(void *arg)
{
	struct stalled_batch *sb = arg;

	sb->ret = run_batch(sb->fd, sb->ops, sb->n, &sb->done);
	return NULL;
}

/*
 * A batch's pushes wake a waiting pop when the batch ends, not at each
 * push: with the batch stopped between its first push and its second (a
 * payload on a stalled page), the pop still sleeps; once it ends, the pop
 * finds both messages.
 */
TEST_F(q, batch_wakes_a_waiting_pop_at_its_end)
{
	static struct mmk_msg_header h;
	struct mmk_batch_entry ops[2];
	struct stalled_batch sb = { .fd = self->fd, .ops = ops, .n = 2 };
	struct pollfd woke;
	struct stall st;
	int qfd, pfd[2];
	pthread_t thr;
	pid_t pid;
	char count;
	int ret;

	ret = stall_open(&st);
	if (ret)
		SKIP(return, "no userfaultfd here: %s", strerror(-ret));
	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qfd);
	ASSERT_EQ(0, pipe(pfd));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_popped e[4];
		uint32_t n = 0;

		CHILD_EQ(0, mmk_pop(self->fd, qfd, MMK_POP_WAIT, 10000 * MS, e, 4, &n));
		count = (char)n;
		CHILD_EQ(1, write(pfd[1], &count, 1));
		while (n)
			CHILD_EQ(0, mmk_read_release(self->fd, e[--n].token));
		_exit(0);
	}
	usleep(100000);			/* the child is waiting by now */
	ops[0] = bop(MMK_BATCH_STORE_PUSH, qfd, 0);
	ops[1] = bop(MMK_BATCH_STORE_PUSH, qfd, 0);
	ops[0].header = ops[1].header = (uintptr_t)&h;
	ops[0].payload = (uintptr_t)self->buf;
	ops[1].payload = (uintptr_t)st.page;
	ops[0].payload_size = ops[1].payload_size = 16;
	ASSERT_EQ(0, pthread_create(&thr, NULL, stalled_batch_run, &sb));

	/* The batch has pushed once and stopped at the second payload. */
	ASSERT_EQ(0, stall_wait(&st, 10000));
	EXPECT_EQ(1, mmk_queue_items(qfd));
	woke = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
	EXPECT_EQ(0, poll(&woke, 1, 300)) TH_LOG("the pop woke before the batch ended");

	ASSERT_EQ(0, stall_release(&st, NULL));
	ASSERT_EQ(0, pthread_join(thr, NULL));
	EXPECT_EQ(0, sb.ret);
	EXPECT_EQ(2U, sb.done);
	ASSERT_EQ(1, read(pfd[0], &count, 1));
	EXPECT_EQ(2, count);
	EXPECT_EQ(0, wait_child(pid));
	close(pfd[0]);
	close(pfd[1]);
	stall_close(&st);
	close(qfd);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

struct pop_call {
	int fd, qfd;
	struct mmk_popped *entries;
	int ret;
};

static void *pop_call_run(void *arg)
{
	struct pop_call *pc = arg;
	struct mmk_pop args = {
		.queue_fd = pc->qfd, .flags = MMK_POP_WRITE, .max = 1,
		.entries = (uintptr_t)pc->entries,
	};

	pc->ret = mmk_ioctl(pc->fd, MMK_IOC_POP, &args);
	return NULL;
}

/*
 * A write pop whose result cannot be written out is not put back once
 * another thread faulted its window in meanwhile (the arena window needs
 * no new mmap for that): its guard ends without taking what the window
 * wrote (even a header no release would take), the window is zapped, and
 * the message, which nothing else holds, is freed.
 */
TEST_F(q, write_pop_undone_with_window_mapped_is_released)
{
	static struct mmk_msg_header h;
	struct pop_call pc;
	struct mmk_pool_info info;
	uint64_t tok, off;
	struct mmk_guard g;
	struct stall st;
	pthread_t thr;
	char *a;
	int fd, ret;

	ret = stall_open(&st);
	if (ret)
		SKIP(return, "no userfaultfd here: %s", strerror(-ret));
	fd = mmk_create(NULL, 100, 4, 0600, QT_TYPE, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &info));
	a = mmap(NULL, info.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 MMK_WINDOW_OFFSET(0));
	ASSERT_NE(MAP_FAILED, a);
	pc = (struct pop_call){ .fd = fd, .entries = (struct mmk_popped *)st.page };
	pc.qfd = mmk_queue_create(fd, NULL, MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, pc.qfd);
	h.sequence = 5;
	ASSERT_EQ(0, mmk_store_push(fd, pc.qfd, &h, self->buf, 8, &tok));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_PEEK_HEADER, tok, &g));
	off = g.offset;
	ASSERT_EQ(0, mmk_read_release(fd, tok));

	/* The pop holds the write guard and stalls writing out its result. */
	ASSERT_EQ(0, pthread_create(&thr, NULL, pop_call_run, &pc));
	ASSERT_EQ(0, stall_wait(&st, 10000));
	EXPECT_EQ(0, poke(a + off + sizeof(struct mmk_msg_header), 0x7e));
	/* A header no release would take: the undo must not try to. */
	EXPECT_EQ(0, poke(a + off + offsetof(struct mmk_msg_header, flags), (char)0x80));
	ASSERT_EQ(0, stall_fail(&st));
	ASSERT_EQ(0, pthread_join(thr, NULL));
	EXPECT_EQ(-EFAULT, pc.ret);

	/* Released, not put back: the window is dead and the queue empty. */
	EXPECT_EQ(SIGBUS, poke(a + off + sizeof(struct mmk_msg_header), 0x7d));
	EXPECT_EQ(0, mmk_queue_items(pc.qfd));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(4U, info.available);
	munmap(a, info.map_size);
	close(pc.qfd);
	close(fd);
	stall_close(&st);
}

/*
 * A batch that pushes and then waits wakes its peer before it waits:
 * the peer's answer to the push is what it waits for.
 */
TEST_F(q, batch_wakes_its_peer_before_waiting)
{
	static struct mmk_msg_header h;
	struct mmk_batch_entry ops[2];
	struct mmk_popped e;
	uint32_t done;
	int ping, pong;
	pid_t pid;

	ping = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	pong = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, ping);
	ASSERT_LE(0, pong);
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* No time limit: only the batch's wake-up ends this wait. */
		CHILD_EQ(0, mmk_pop(self->fd, ping, MMK_POP_WAIT, 0, &e, 1, NULL));
		CHILD_EQ(0, mmk_store_push(self->fd, pong, NULL, self->buf, e.payload_size + 1,
					   NULL));
		CHILD_EQ(0, mmk_read_release(self->fd, e.token));
		_exit(0);
	}
	usleep(100000);			/* the child is waiting by now */
	ops[0] = bop(MMK_BATCH_STORE_PUSH, ping, 0);
	ops[0].header = (uintptr_t)&h;
	ops[0].payload = (uintptr_t)self->buf;
	ops[0].payload_size = 7;
	ops[1] = bop(MMK_BATCH_POP, pong, 0);
	ops[1].flags = MMK_POP_WAIT;
	ops[1].timeout_ns = 10000 * MS;
	EXPECT_EQ(0, run_batch(self->fd, ops, 2, &done));
	EXPECT_EQ(2U, done);
	EXPECT_EQ(0, ops[1].result);
	EXPECT_EQ(8U, ops[1].payload_size);
	if (done != 2)
		kill(pid, SIGKILL);	/* never woken: it would wait forever */
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, mmk_read_release(self->fd, ops[1].token));
	close(ping);
	close(pong);
	EXPECT_EQ((uint32_t)SLOTS, pinfo(self->fd).available);
}

/* A run of POPs stops at the first that finds the queue empty; the ioctl returns 0. */
TEST_F(q, batch_stops_at_eagain)
{
	struct mmk_batch_entry ops[4];
	uint32_t done;
	uint64_t t[2];
	int qfd, i;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 8, 0);
	ASSERT_LE(0, qfd);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 1 + i, &t[i]));
	for (i = 0; i < 4; i++)
		ops[i] = bop(MMK_BATCH_POP, qfd, 0);
	ASSERT_EQ(0, run_batch(self->fd, ops, 4, &done));
	EXPECT_EQ(2U, done);
	EXPECT_EQ(0, ops[0].result);
	EXPECT_EQ(t[0], ops[0].token);
	EXPECT_EQ(t[1], ops[1].token);
	EXPECT_EQ(-EAGAIN, ops[2].result);
	EXPECT_EQ(MMK_TOKEN_INVALID, ops[2].token);
	EXPECT_EQ(UNTOUCHED, ops[3].result);
	EXPECT_EQ(2U, pinfo(self->fd).read_guards);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, mmk_read_release(self->fd, t[i]));
	}
	/* A POP that waits and times out. */
	ops[0] = bop(MMK_BATCH_POP, qfd, 0);
	ops[0].flags = MMK_POP_WAIT;
	ops[0].timeout_ns = 50 * MS;
	ASSERT_EQ(0, run_batch(self->fd, ops, 1, &done));
	EXPECT_EQ(0U, done);
	EXPECT_EQ(-EAGAIN, ops[0].result);
	close(qfd);
}

/* Batch push outcomes, store-push, commit-push, loan and write release, and their errors. */
TEST_F(q, batch_queue_ops)
{
	static struct mmk_msg_header h;
	struct mmk_batch_entry ops[6];
	int dn, dq, full, bq;
	uint32_t done;
	uint64_t a, b, c, old;

	dn = mmk_queue_create(self->fd, NULL, MMK_QUEUE_DROP_NEWEST, 1, 0);
	dq = mmk_queue_create(self->fd, NULL, MMK_QUEUE_DROP_OLDEST, 1, 0);
	full = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 1, 0);
	bq = mmk_queue_create(self->fd, NULL, MMK_QUEUE_BLOCK, 1, 0);
	ASSERT_LE(0, dn);
	ASSERT_LE(0, dq);
	ASSERT_LE(0, full);
	ASSERT_LE(0, bq);
	ASSERT_EQ(0, mmk_store_push(self->fd, dn, NULL, self->buf, 1, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, dq, NULL, self->buf, 1, &old));
	ASSERT_EQ(0, mmk_store_push(self->fd, full, NULL, self->buf, 1, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, bq, NULL, self->buf, 1, NULL));

	/* Outcomes: dropped, evicted, refused. */
	a = put(self, 2);
	b = put(self, 2);
	c = put(self, 2);
	ops[0] = bop(MMK_BATCH_PUSH, dn, a);
	ops[1] = bop(MMK_BATCH_PUSH, dq, b);
	ops[2] = bop(MMK_BATCH_PUSH, full, c);
	ASSERT_EQ(0, run_batch(self->fd, ops, 3, &done));
	EXPECT_EQ(2U, done);
	EXPECT_EQ(0, ops[0].result);
	EXPECT_EQ(MMK_PUSH_DROPPED, ops[0].outcome);
	EXPECT_EQ(0, ops[1].result);
	EXPECT_EQ(1U, ops[1].outcome);
	EXPECT_EQ(0U, ops[1].outcome & MMK_PUSH_DROPPED);
	EXPECT_EQ(-ENOBUFS, ops[2].result);
	EXPECT_EQ(0U, ops[2].outcome);
	EXPECT_EQ(-ENODATA, answer(self->fd, a));
	EXPECT_EQ(0, mmk_free_token(self->fd, c));
	do {
		struct mmk_queue_peek pk;

		EXPECT_EQ(0, mmk_queue_peek(self->fd, dq, 0, &pk));
		EXPECT_EQ(b, pk.token);	/* the evicted one was the older */
		EXPECT_EQ(1, mmk_queue_items(dq));
		EXPECT_EQ(0, answer(self->fd, b));
		EXPECT_EQ(-ENODATA, answer(self->fd, old));
	} while (0);
	close(dq);
	dq = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, dq);

	/* A Block push that waits in a batch, and times out. */
	a = put(self, 2);
	ops[0] = bop(MMK_BATCH_PUSH, bq, a);
	ops[0].flags = MMK_PUSH_WAIT;
	ops[0].timeout_ns = 30 * MS;
	ASSERT_EQ(0, run_batch(self->fd, ops, 1, &done));
	EXPECT_EQ(-ENOBUFS, ops[0].result);
	EXPECT_EQ(0, mmk_free_token(self->fd, a));

	/* LOAN, then COMMIT_PUSH of it by write-back; STORE_PUSH that fails stores nothing. */
	fill(self->buf, 30, 99);
	h.sequence = 99;
	ops[0] = bop(MMK_BATCH_LOAN, 0, 0);
	ASSERT_EQ(0, run_batch(self->fd, ops, 1, &done));
	ASSERT_EQ(0, ops[0].result);
	a = ops[0].token;
	ops[1] = bop(MMK_BATCH_COMMIT_PUSH, dq, a);
	ops[1].header = (uintptr_t)&h;
	ops[1].payload = (uintptr_t)self->buf;
	ops[1].payload_size = 30;
	ops[2] = bop(MMK_BATCH_STORE_PUSH, full, 0);
	ops[2].header = (uintptr_t)&h;
	ops[2].payload = (uintptr_t)self->buf;
	ops[2].payload_size = 30;
	{
		uint64_t stores = pinfo(self->fd).stores;

		ASSERT_EQ(0, run_batch(self->fd, ops + 1, 2, &done));
		EXPECT_EQ(1U, done);
		EXPECT_EQ(0, ops[1].result);
		EXPECT_EQ(0U, ops[1].outcome);
		EXPECT_EQ(-ENOBUFS, ops[2].result);
		EXPECT_EQ(MMK_TOKEN_INVALID, ops[2].token);
		/* The loan's publication is a store; the refused STORE_PUSH is none. */
		EXPECT_EQ(stores + 1, pinfo(self->fd).stores);
	}
	{
		struct mmk_popped e;

		ASSERT_EQ(0, mmk_pop1(self->fd, dq, 0, &e));
		EXPECT_EQ(a, e.token);
		EXPECT_TRUE(msg_ok(self->map, e.offset, 99, 30));
		EXPECT_EQ(0, mmk_read_release(self->fd, a));
	}

	/* WRITE_RELEASE with a commit, and a POP with WRITE then its release. */
	b = put(self, 2);
	{
		struct mmk_guard g;

		ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, b, &g));
	}
	ops[0] = bop(MMK_BATCH_WRITE_RELEASE, 0, b);
	ops[0].flags = MMK_RELEASE_COMMIT;
	ops[0].header = (uintptr_t)&h;
	ops[0].payload = (uintptr_t)self->buf;
	ops[0].payload_size = 30;
	ops[1] = bop(MMK_BATCH_PUSH, dq, b);
	ops[2] = bop(MMK_BATCH_POP, dq, 0);
	ops[2].flags = MMK_POP_WRITE;
	ops[3] = bop(MMK_BATCH_WRITE_RELEASE, 0, b);
	ASSERT_EQ(0, run_batch(self->fd, ops, 4, &done));
	EXPECT_EQ(4U, done);
	EXPECT_EQ(b, ops[2].token);
	EXPECT_EQ(30U, ops[2].payload_size);
	EXPECT_EQ(-ENODATA, answer(self->fd, b));

	/* Errors, as the single ioctls give them, and fields an op does not use. */
	do {
		const struct {
			const char *what;
			struct mmk_batch_entry e;
			int err;
		} rows[] = {
			{ "push of an invalid token", bop(MMK_BATCH_PUSH, dq, MMK_TOKEN_INVALID), -EBADSLT },
			{ "pop, unknown flag", { .op = MMK_BATCH_POP, .queue_fd = dq, .flags = 4 }, -EINVAL },
			{ "pop, timeout without wait", { .op = MMK_BATCH_POP, .queue_fd = dq, .timeout_ns = 1 },
			  -EINVAL },
			{ "push, unknown flag", { .op = MMK_BATCH_PUSH, .queue_fd = dq, .flags = 0x8,
					      .token = put(self, 1) }, -EINVAL },
			{ "push, store flag", { .op = MMK_BATCH_PUSH, .queue_fd = dq, .flags = MMK_PUSH_STORE,
						.token = put(self, 1) }, -EINVAL },
			{ "push with a header", { .op = MMK_BATCH_PUSH, .queue_fd = dq, .token = put(self, 1),
						  .header = (uintptr_t)&h }, -EINVAL },
			{ "store with a queue", { .op = MMK_BATCH_STORE, .queue_fd = dq, .header = (uintptr_t)&h },
			  -EINVAL },
			{ "read with a timeout", { .op = MMK_BATCH_READ, .token = put(self, 1), .timeout_ns = 1 },
			  -EINVAL },
			{ "free with a timeout", { .op = MMK_BATCH_FREE, .token = put(self, 1),
						    .timeout_ns = 5 }, -EINVAL },
			{ "loan with a queue", { .op = MMK_BATCH_LOAN, .queue_fd = dq }, -EINVAL },
			{ "loan with flags", { .op = MMK_BATCH_LOAN, .flags = 1 }, -EINVAL },
			{ "write release, nothing held", bop(MMK_BATCH_WRITE_RELEASE, 0, put(self, 1)), -ENOENT },
			{ "commit push, nothing held", bop(MMK_BATCH_COMMIT_PUSH, dq, put(self, 1)), -ENOENT },
			{ "op past the last", { .op = MMK_BATCH_WRITE_RELEASE + 1 }, -EINVAL },
		};
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(rows); i++) {
			struct mmk_batch_entry e = rows[i].e;

			e.result = UNTOUCHED;
			ASSERT_EQ(0, run_batch(self->fd, &e, 1, &done)) TH_LOG("%s", rows[i].what);
			EXPECT_EQ(rows[i].err, e.result) TH_LOG("%s", rows[i].what);
			EXPECT_EQ(0U, done) TH_LOG("%s", rows[i].what);
		}
	} while (0);
	close(dn);
	close(dq);
	close(full);
	close(bq);
}

/* ---------------------------------------------------------------------- */
/* Nothing leaks                                                           */
/* ---------------------------------------------------------------------- */

/* The last fd of a queue closing releases every message in it. */
TEST_F(q, leak_last_queue_fd_closing)
{
	struct mmk_pool_info before, info;
	struct mmk_guard g;
	int qfd, dupfd, byname, other;
	uint64_t held, fanned;
	int i;

	qfd = mmk_queue_create(self->fd, "leaky", MMK_QUEUE_REJECT, 16, 0);
	other = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 16, 0);
	ASSERT_LE(0, qfd);
	ASSERT_LE(0, other);
	before = pinfo(self->fd);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 10, NULL));
	/* One also held by a read guard, one also in another queue. */
	held = put(self, 10);
	ASSERT_EQ(0, mmk_push(self->fd, held, qfd));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, held, &g));
	fanned = put(self, 10);
	{
		int both[2] = { qfd, other };

		ASSERT_EQ(0, mmk_push_to(self->fd, fanned, both, 2, 0, 0, NULL));
	}
	dupfd = dup(qfd);
	byname = mmk_queue_open_name(self->fd, "leaky");
	ASSERT_LE(0, dupfd);
	ASSERT_LE(0, byname);
	EXPECT_EQ(before.available - 10, pinfo(self->fd).available);

	close(qfd);
	close(dupfd);
	/* One fd is left: nothing released. */
	EXPECT_EQ(before.available - 10, pinfo(self->fd).available);
	EXPECT_EQ(10, mmk_queue_items(byname));
	close(byname);
	info = pinfo(self->fd);
	EXPECT_EQ(before.available - 2, info.available);
	EXPECT_EQ(before.frees + 8, info.frees);
	EXPECT_EQ(0, answer(self->fd, held));
	EXPECT_EQ(0, answer(self->fd, fanned));
	EXPECT_EQ(-ENOENT, mmk_queue_open_name(self->fd, "leaky"));
	EXPECT_EQ(0, mmk_read_release(self->fd, held));
	EXPECT_EQ(-ENODATA, answer(self->fd, held));
	close(other);
	info = pinfo(self->fd);
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(info.stores, info.frees);
}

/* A session that dies holding popped guards, read and write: every message freed. */
TEST_F(q, leak_session_dies_with_popped_guards)
{
	struct mmk_pool_info before, info;
	uint64_t kept;
	int qfd, q2, i, sync[2];
	pid_t pid;

	qfd = mmk_queue_create(self->fd, "popped", MMK_QUEUE_REJECT, 16, 0);
	q2 = mmk_queue_create(self->fd, "second", MMK_QUEUE_REJECT, 16, 0);
	ASSERT_LE(0, qfd);
	ASSERT_LE(0, q2);
	for (i = 0; i < 6; i++)
		ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 10, NULL));
	/* One also in a second queue: it must outlive the dead session's guard. */
	kept = put(self, 10);
	{
		int both[2] = { qfd, q2 };

		ASSERT_EQ(0, mmk_push_to(self->fd, kept, both, 2, 0, 0, NULL));
	}
	ASSERT_EQ(0, pipe2(sync, O_CLOEXEC));
	before = pinfo(self->fd);
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_popped e[8];
		uint32_t count;
		int s = attach(self), cq;

		CHILD_ASSERT(s >= 0);
		cq = mmk_queue_open_name(s, "popped");
		CHILD_ASSERT(cq >= 0);
		/* Two write pops (sole holders), then the rest as read guards. */
		CHILD_EQ(0, mmk_pop(s, cq, MMK_POP_WRITE, 0, e, 2, &count));
		CHILD_EQ(2, count);
		CHILD_EQ(0, mmk_pop(s, cq, 0, 0, e, 8, &count));
		CHILD_EQ(5, count);
		CHILD_EQ(0, put_byte(sync[1], 'p'));
		pause();
		_exit(0);
	}
	close(sync[1]);		/* a child that fails ends the wait for its byte */
	ASSERT_EQ('p', get_byte(sync[0]));
	info = pinfo(self->fd);
	EXPECT_EQ(2U, info.write_guards);
	EXPECT_EQ(5U, info.read_guards);
	EXPECT_EQ(0, mmk_queue_items(qfd));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, wait_child(pid));
	info = pinfo(self->fd);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(before.available + 6, info.available);
	EXPECT_EQ(before.frees + 6, info.frees);
	EXPECT_EQ(0, answer(self->fd, kept));
	close(qfd);
	close(q2);
	info = pinfo(self->fd);
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(info.stores, info.frees);
	close(sync[0]);
}

/* A process killed inside a waiting push or a waiting pop leaves nothing behind. */
TEST_F(q, leak_killed_in_push_and_pop_waits)
{
	struct mmk_pool_info before, info;
	int full, empty, sync[2], k;
	uint64_t mine;
	pid_t pid;

	full = mmk_queue_create(self->fd, "full", MMK_QUEUE_BLOCK, 2, 0);
	empty = mmk_queue_create(self->fd, "empty", MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, full);
	ASSERT_LE(0, empty);
	ASSERT_EQ(0, mmk_store_push(self->fd, full, NULL, self->buf, 1, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, full, NULL, self->buf, 1, NULL));
	mine = put(self, 4);
	ASSERT_EQ(0, pipe2(sync, O_CLOEXEC));
	before = pinfo(self->fd);

	/* k = 0: store-and-push waiting; 1: push of a stored token waiting; 2: pop waiting. */
	for (k = 0; k < 3; k++) {
		pid = start_child();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int s = attach(self), qf, qe;
			struct mmk_msg_header h = { 0 };
			struct mmk_push p = { .flags = MMK_PUSH_WAIT, .nr_queues = 1 };
			struct mmk_popped e;

			CHILD_ASSERT(s >= 0);
			qf = mmk_queue_open_name(s, "full");
			qe = mmk_queue_open_name(s, "empty");
			CHILD_ASSERT(qf >= 0 && qe >= 0);
			CHILD_EQ(0, put_byte(sync[1], 'w'));
			if (k == 2)
				mmk_pop(s, qe, MMK_POP_WAIT, 0, &e, 1, NULL);
			p.queue_fds[0] = qf;
			if (k == 0) {
				p.flags |= MMK_PUSH_STORE;
				p.header = (uintptr_t)&h;
				p.payload = (uintptr_t)self->buf;
				p.payload_size = 8;
			} else {
				p.token = mine;
			}
			mmk_ioctl(s, MMK_IOC_PUSH, &p);
			_exit(3);
		}
		ASSERT_EQ('w', get_byte(sync[0]));
		usleep(200000);	/* asleep in the wait by now */
		ASSERT_EQ(0, kill(pid, SIGKILL));
		EXPECT_EQ(128 + SIGKILL, wait_child(pid)) TH_LOG("case %d", k);
		info = pinfo(self->fd);
		EXPECT_EQ(before.available, info.available) TH_LOG("case %d", k);
		EXPECT_EQ(before.stores, info.stores) TH_LOG("case %d", k);
		EXPECT_EQ(1U, info.sessions) TH_LOG("case %d", k);
		EXPECT_EQ(2, mmk_queue_items(full)) TH_LOG("case %d", k);
		/* The stored token is still its owner's, not given. */
		EXPECT_EQ(0, answer(self->fd, mine)) TH_LOG("case %d", k);
	}
	/* The dead waiter took nothing: a message pushed now stays for the next pop. */
	ASSERT_EQ(0, mmk_push(self->fd, mine, empty));
	EXPECT_EQ(1, mmk_queue_items(empty));
	close(full);
	close(empty);
	info = pinfo(self->fd);
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(info.stores, info.frees);
	close(sync[0]);
	close(sync[1]);
}

/* The pool's last session goes while queues still exist: they keep the pool, then free it. */
TEST_F(q, leak_pool_outlives_sessions_while_queues_exist)
{
	struct mmk_pool_info info;
	struct mmk_popped e;
	int qfd, s;

	qfd = mmk_queue_create(self->fd, "keeper", MMK_QUEUE_REJECT, 16, 0);
	ASSERT_LE(0, qfd);
	ASSERT_EQ(self->pools + 1, sysfs_number(POOLS_FILE));
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 10, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 10, NULL));
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 10, NULL));
	/* The session holds one popped guard when it goes. */
	ASSERT_EQ(0, mmk_pop1(self->fd, qfd, 0, &e));
	munmap(self->map, self->len);
	self->map = MAP_FAILED;
	close(self->fd);
	self->fd = -1;

	/* The queue keeps the pool: still counted, still attachable, its guard freed. */
	EXPECT_EQ(self->pools + 1, sysfs_number(POOLS_FILE));
	EXPECT_EQ(2, mmk_queue_items(qfd));
	s = attach(self);
	ASSERT_LE(0, s);
	info = pinfo(s);
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(SLOTS - 2U, info.available);
	EXPECT_EQ(1U, info.frees);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(-ENODATA, answer(s, e.token));
	close(s);

	/* With the last queue fd, the pool goes, its messages with it. */
	EXPECT_EQ(self->pools + 1, sysfs_number(POOLS_FILE));
	close(qfd);
	EXPECT_EQ(self->pools, sysfs_number(POOLS_FILE));
	EXPECT_EQ(self->bytes, sysfs_number(BYTES_FILE));
	EXPECT_EQ(-ENOENT, mmk_attach(self->name, QT_TYPE));
	self->fd = mmk_open();	/* for the teardown */
}

/* A forked child shares the session: its exit drops nothing of the parent's popped guards. */
TEST_F(q, fork_shares_popped_guards)
{
	struct mmk_popped e;
	int qfd;
	pid_t pid;

	qfd = mmk_queue_create(self->fd, NULL, MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, qfd);
	ASSERT_EQ(0, mmk_store_push(self->fd, qfd, NULL, self->buf, 10, NULL));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_EQ(0, mmk_pop1(self->fd, qfd, 0, &e));
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(1U, pinfo(self->fd).read_guards);
	EXPECT_EQ(SLOTS - 1U, pinfo(self->fd).available);
	do {
		struct mmk_queue_peek pk;

		EXPECT_EQ(-EAGAIN, mmk_queue_peek(self->fd, qfd, 0, &pk));
	} while (0);
	close(qfd);
	munmap(self->map, self->len);
	self->map = MAP_FAILED;
	close(self->fd);
	self->fd = mmk_open();
	EXPECT_EQ(self->pools, sysfs_number(POOLS_FILE));
}

TEST_HARNESS_MAIN
