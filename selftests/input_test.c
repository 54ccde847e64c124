// SPDX-License-Identifier: GPL-2.0
/*
 * Bad input to /dev/mmk: unknown flags, reserved fields, bad pointers,
 * sizes over the limits, wrong session state, unknown commands and
 * argument struct sizes (uapi/linux/mmk.h conventions, SPEC 2 and 6,
 * docs/DESIGN.md).  Every failing call must change nothing.
 *
 * Each test gets a fresh anonymous pool with one stored message, plus an
 * unbound session.  Tests that change a module parameter save it first;
 * the fixture restores it.
 *
 * The harness's EXPECT/ASSERT macros expand to more than one statement,
 * so every if or loop body holding one is braced.
 */
#define _GNU_SOURCE
#include <stdbool.h>

#include "mmk_test.h"
#include "kselftest_harness.h"

#define PAYLOAD_SIZE	128U
#define CAPACITY	4U
#define PAYLOAD_TYPE	0x696e7075745f7473ULL

#define PARAM_DIR	"/sys/module/mmk/parameters/"
#define POOLS_FILE	"/sys/class/misc/mmk/pools"
#define BYTES_FILE	"/sys/class/misc/mmk/bytes"
#define MAX_SAVED	4

/* A user address that is never mapped: the kernel half of the address space. */
#define KERNEL_PTR	((void *)0xffff888000000000UL)

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */
/* ---------------------------------------------------------------------- */

static int read_file_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int write_file_str(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	close(fd);
	if (n < 0)
		return -errno;
	return 0;
}

static int read_file_u64(const char *path, uint64_t *val)
{
	char buf[64], *end;
	int ret = read_file_str(path, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

/* The same command with another argument size. */
static unsigned long cmd_size(unsigned long cmd, size_t size)
{
	return _IOC(_IOC_DIR(cmd), _IOC_TYPE(cmd), _IOC_NR(cmd), size);
}

static void create_args(struct mmk_pool_create *c)
{
	memset(c, 0, sizeof(*c));
	c->payload_size = 64;
	c->capacity = 2;
	c->mode = 0600;
	c->payload_type = PAYLOAD_TYPE;
	c->memory_class = MMK_MEM_HOST;
}

static int store_raw(int fd, const void *header, const void *payload, uint32_t size,
		     uint64_t *token)
{
	struct mmk_store s = {
		.header = (uintptr_t)header,
		.payload = (uintptr_t)payload,
		.payload_size = size,
	};
	int ret = mmk_ioctl(fd, MMK_IOC_STORE, &s);

	if (!ret && token)
		*token = s.token;
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Fixture: a bound session with one stored message, and an unbound one    */
/* ---------------------------------------------------------------------- */

FIXTURE(dev) {
	int fd;			/* bound to an anonymous pool */
	int unbound;		/* /dev/mmk opened, not bound */
	uint64_t token;		/* one stored message in fd's pool */
	struct mmk_pool_info info;
	int nsaved;
	struct {
		char name[48];
		char value[32];
	} saved[MAX_SAVED];
};

FIXTURE_SETUP(dev)
{
	static const char msg[] = "input-test";
	struct mmk_msg_header h = { .trace_id = 1 };

	self->fd = -1;
	self->unbound = -1;
	self->fd = mmk_create(NULL, PAYLOAD_SIZE, CAPACITY, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
	self->unbound = mmk_open();
	ASSERT_LE(0, self->unbound) TH_LOG("open: %s", strerror(errno));
	ASSERT_EQ(0, store_raw(self->fd, &h, msg, sizeof(msg), &self->token));
	ASSERT_EQ(0, mmk_info(self->fd, &self->info));
	ASSERT_EQ(CAPACITY - 1, self->info.available);
}

FIXTURE_TEARDOWN(dev)
{
	char path[128];

	/* Put back every module parameter a test changed, newest first. */
	while (self->nsaved > 0) {
		self->nsaved--;
		snprintf(path, sizeof(path), PARAM_DIR "%s", self->saved[self->nsaved].name);
		if (write_file_str(path, self->saved[self->nsaved].value))
			TH_LOG("could not restore %s", path);
	}
	if (self->unbound >= 0)
		close(self->unbound);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Set a module parameter, saving the old value for teardown.  Returns false
 * (after marking the test skipped) when the caller may not write it.
 */
static bool set_param(struct __test_metadata *_metadata, FIXTURE_DATA(dev) *self,
		      const char *name, uint64_t value)
{
	char path[128], old[32], val[32];
	int ret;

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	ret = read_file_str(path, old, sizeof(old));
	if (ret == -EACCES || ret == -EPERM) {
		SKIP(return false, "cannot read %s", path);
	}
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", path, strerror(-ret));
	snprintf(val, sizeof(val), "%llu", (unsigned long long)value);
	ret = write_file_str(path, val);
	if (ret == -EACCES || ret == -EPERM) {
		SKIP(return false, "cannot write %s (not root?)", path);
	}
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", path, strerror(-ret));
	/* Record the old value only once per parameter. */
	for (ret = 0; ret < self->nsaved; ret++)
		if (!strcmp(self->saved[ret].name, name))
			return true;
	ASSERT_GT(MAX_SAVED, self->nsaved);
	snprintf(self->saved[self->nsaved].name, sizeof(self->saved[0].name), "%s", name);
	snprintf(self->saved[self->nsaved].value, sizeof(self->saved[0].value), "%s", old);
	self->nsaved++;
	return true;
}

static uint64_t param_u64(struct __test_metadata *_metadata, const char *name)
{
	char path[128];
	uint64_t v = 0;

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	ASSERT_EQ(0, read_file_u64(path, &v)) TH_LOG("%s", path);
	return v;
}

static uint64_t sysfs_u64(struct __test_metadata *_metadata, const char *path)
{
	uint64_t v = 0;

	ASSERT_EQ(0, read_file_u64(path, &v)) TH_LOG("%s", path);
	return v;
}

static struct mmk_pool_info info_now(struct __test_metadata *_metadata, int fd)
{
	struct mmk_pool_info info;

	ASSERT_EQ(0, mmk_info(fd, &info));
	return info;
}

/* The session is unbound: pool ioctls give ENOTCONN. */
static void expect_unbound(struct __test_metadata *_metadata, int fd)
{
	struct mmk_pool_info info;

	EXPECT_EQ(-ENOTCONN, mmk_info(fd, &info)) TH_LOG("session was bound");
}

/* The fixture's pool is as setup left it: one message, no guard. */
static void expect_pool_unchanged(struct __test_metadata *_metadata, FIXTURE_DATA(dev) *self)
{
	struct mmk_pool_info info = info_now(_metadata, self->fd);

	EXPECT_EQ(CAPACITY - 1, info.available);
	EXPECT_EQ(1U, info.stores);
	EXPECT_EQ(0U, info.frees);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
}

/* Try a create on a fresh unbound session; on success the session is closed. */
static int try_create(struct mmk_pool_create *c)
{
	int fd = mmk_open(), ret;

	if (fd < 0)
		return -errno;
	ret = mmk_ioctl(fd, MMK_IOC_CREATE, c);
	close(fd);
	return ret;
}

/*
 * A create with these arguments fails with err, leaves the session
 * unbound, and adds no pool and no bytes.
 */
static void expect_create_fails(struct __test_metadata *_metadata, FIXTURE_DATA(dev) *self,
				struct mmk_pool_create *c, int err, const char *what)
{
	uint64_t pools = sysfs_u64(_metadata, POOLS_FILE);
	uint64_t bytes = sysfs_u64(_metadata, BYTES_FILE);

	EXPECT_EQ(err, mmk_ioctl(self->unbound, MMK_IOC_CREATE, c)) TH_LOG("%s", what);
	expect_unbound(_metadata, self->unbound);
	EXPECT_EQ(pools, sysfs_u64(_metadata, POOLS_FILE)) TH_LOG("%s", what);
	EXPECT_EQ(bytes, sysfs_u64(_metadata, BYTES_FILE)) TH_LOG("%s", what);
}

/* ---------------------------------------------------------------------- */
/* Unknown flags: EINVAL, nothing changed                                  */
/* ---------------------------------------------------------------------- */

TEST_F(dev, create_unknown_flags_einval)
{
	static const uint32_t bad[] = { 1U << 1, 1U << 16, 1U << 31 };
	struct mmk_pool_create c;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		create_args(&c);
		c.flags = bad[i];
		expect_create_fails(_metadata, self, &c, -EINVAL, "flags");
	}
}

TEST_F(dev, attach_unknown_flags_einval)
{
	struct mmk_pool_attach a = { .flags = MMK_ATTACH_FLAGS_ALL + 1,
				     .payload_type = PAYLOAD_TYPE };
	int owner;

	snprintf(a.name, sizeof(a.name), "mmk-input-attach-%d", getpid());
	owner = mmk_create(a.name, 64, 2, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, owner);
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	a.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	expect_unbound(_metadata, self->unbound);
	EXPECT_EQ(1U, info_now(_metadata, owner).sessions);
	close(owner);
}

TEST_F(dev, store_unknown_flags_einval)
{
	struct mmk_msg_header h = { .trace_id = 2 };
	struct mmk_store s = {
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)"abc",
		.payload_size = 3,
		.flags = 1,
	};

	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_STORE, &s));
	s.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_STORE, &s));
	expect_pool_unchanged(_metadata, self);
}

TEST_F(dev, guard_unknown_flags_einval)
{
	static const unsigned long cmds[] = { MMK_IOC_READ, MMK_IOC_READ_MUT,
					      MMK_IOC_PEEK_HEADER };
	static const uint32_t bad[] = { 1U << 1, 1U << 31, MMK_GUARD_WAIT | (1U << 2) };
	struct mmk_guard g;
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		for (j = 0; j < ARRAY_SIZE(bad); j++) {
			memset(&g, 0, sizeof(g));
			g.token = self->token;
			g.flags = bad[j];
			EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmds[i], &g))
				TH_LOG("cmd %u flags %#x", i, bad[j]);
		}
	}
	expect_pool_unchanged(_metadata, self);
}

TEST_F(dev, release_unknown_flags_einval)
{
	struct mmk_release r = { .token = self->token, .flags = 1U << 1 };
	struct mmk_guard g;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->token, &g));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_READ_RELEASE, &r));
	r.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_READ_RELEASE, &r));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).read_guards);
	ASSERT_EQ(0, mmk_read_release(self->fd, self->token));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	r.flags = 1U << 1;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &r));
	r.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &r));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).write_guards);
	EXPECT_EQ(0, mmk_write_release(self->fd, self->token));
}

TEST_F(dev, free_unknown_flags_einval)
{
	struct mmk_free f = { .token = self->token, .flags = 1 };

	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_FREE, &f));
	f.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_FREE, &f));
	expect_pool_unchanged(_metadata, self);
}

/* Unknown message flags in a stored header. */
TEST_F(dev, header_unknown_flags_einval)
{
	static const uint32_t bad[] = { 1U << 4, 1U << 16, 1U << 31, ~MMK_MSG_FLAGS_ALL };
	struct mmk_msg_header h;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&h, 0, sizeof(h));
		h.flags = bad[i] | MMK_MSG_FIRST_IN_BATCH;
		EXPECT_EQ(-EINVAL, store_raw(self->fd, &h, "x", 1, NULL)) TH_LOG("%#x", bad[i]);
	}
	expect_pool_unchanged(_metadata, self);
}

/* ---------------------------------------------------------------------- */
/* Reserved fields and fields that must be zero: EINVAL                    */
/* ---------------------------------------------------------------------- */

TEST_F(dev, create_reserved_fields_einval)
{
	struct mmk_pool_create c;

	create_args(&c);
	c.__reserved = 1;
	expect_create_fails(_metadata, self, &c, -EINVAL, "__reserved");
	create_args(&c);
	c.__reserved2 = 1ULL << 63;
	expect_create_fails(_metadata, self, &c, -EINVAL, "__reserved2");
	create_args(&c);
	c.memory_device = 1;
	expect_create_fails(_metadata, self, &c, -EINVAL, "memory_device");
}

TEST_F(dev, attach_reserved_fields_einval)
{
	struct mmk_pool_attach a = { .payload_type = PAYLOAD_TYPE };
	int owner;

	snprintf(a.name, sizeof(a.name), "mmk-input-attach-%d", getpid());
	owner = mmk_create(a.name, 64, 2, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, owner);
	/* owner_uid without MMK_ATTACH_OWNER, and an unknown flag. */
	a.owner_uid = 1;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	a.owner_uid = 0;
	a.flags = MMK_ATTACH_FLAGS_ALL + 1;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	a.flags = 0;
	a.__reserved2 = 1;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	expect_unbound(_metadata, self->unbound);
	/* The same arguments with the reserved fields cleared do attach. */
	a.__reserved2 = 0;
	EXPECT_EQ(0, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	EXPECT_EQ(2U, info_now(_metadata, owner).sessions);
	close(owner);
}

TEST_F(dev, guard_reserved_fields_einval)
{
	static const unsigned long cmds[] = { MMK_IOC_READ, MMK_IOC_READ_MUT,
					      MMK_IOC_PEEK_HEADER };
	struct mmk_guard g;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		memset(&g, 0, sizeof(g));
		g.token = self->token;
		g.__reserved = 1;
		EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmds[i], &g)) TH_LOG("cmd %u", i);
		memset(&g, 0, sizeof(g));
		g.token = self->token;
		g.__reserved2 = 1;
		EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmds[i], &g)) TH_LOG("cmd %u", i);
		/* timeout_ns only means something with MMK_GUARD_WAIT. */
		memset(&g, 0, sizeof(g));
		g.token = self->token;
		g.timeout_ns = 1000;
		EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmds[i], &g)) TH_LOG("cmd %u", i);
	}
	expect_pool_unchanged(_metadata, self);
}

/* A release without COMMIT must have payload_size, header and payload zero. */
TEST_F(dev, release_commit_fields_without_commit_einval)
{
	struct mmk_msg_header h = { 0 };
	struct mmk_release r;
	struct mmk_guard g;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->token, &g));
	r = (struct mmk_release){ .token = self->token, .payload_size = 1 };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_READ_RELEASE, &r));
	r = (struct mmk_release){ .token = self->token, .header = (uintptr_t)&h };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_READ_RELEASE, &r));
	r = (struct mmk_release){ .token = self->token, .payload = (uintptr_t)&h };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_READ_RELEASE, &r));
	/* COMMIT is for write guards only. */
	r = (struct mmk_release){ .token = self->token, .flags = MMK_RELEASE_COMMIT,
				  .header = (uintptr_t)&h };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_READ_RELEASE, &r));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).read_guards);
	ASSERT_EQ(0, mmk_read_release(self->fd, self->token));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	r = (struct mmk_release){ .token = self->token, .payload_size = 1 };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &r));
	r = (struct mmk_release){ .token = self->token, .header = (uintptr_t)&h };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &r));
	r = (struct mmk_release){ .token = self->token, .payload = (uintptr_t)&h };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &r));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).write_guards);
	EXPECT_EQ(0, mmk_write_release(self->fd, self->token));
}

TEST_F(dev, free_reserved_field_einval)
{
	struct mmk_free f = { .token = self->token, .__reserved = 1 };

	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_FREE, &f));
	expect_pool_unchanged(_metadata, self);
}

TEST_F(dev, header_reserved_fields_einval)
{
	struct mmk_msg_header h;

	memset(&h, 0, sizeof(h));
	h.__reserved0 = 1;
	EXPECT_EQ(-EINVAL, store_raw(self->fd, &h, "x", 1, NULL));
	memset(&h, 0, sizeof(h));
	h.__reserved1[0] = 1;
	EXPECT_EQ(-EINVAL, store_raw(self->fd, &h, "x", 1, NULL));
	memset(&h, 0, sizeof(h));
	h.__reserved1[1] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, store_raw(self->fd, &h, "x", 1, NULL));
	expect_pool_unchanged(_metadata, self);
}

/* qos must be 0 (default) or 1..3. */
TEST_F(dev, header_bad_qos_einval)
{
	struct mmk_msg_header h = { .qos = 4 };
	uint64_t t;

	EXPECT_EQ(-EINVAL, store_raw(self->fd, &h, "x", 1, NULL));
	h.qos = 255;
	EXPECT_EQ(-EINVAL, store_raw(self->fd, &h, "x", 1, NULL));
	expect_pool_unchanged(_metadata, self);
	h.qos = MMK_QOS_LATENCY_CRITICAL;
	EXPECT_EQ(0, store_raw(self->fd, &h, "x", 1, &t));
}

/* deadline_ns must be zero unless MMK_MSG_HAS_DEADLINE is set. */
TEST_F(dev, header_deadline_without_flag_einval)
{
	struct mmk_msg_header h = { .deadline_ns = 1000, .flags = MMK_MSG_FIRST_IN_BATCH };
	uint64_t t;

	EXPECT_EQ(-EINVAL, store_raw(self->fd, &h, "x", 1, NULL));
	expect_pool_unchanged(_metadata, self);
	h.flags |= MMK_MSG_HAS_DEADLINE;
	EXPECT_EQ(0, store_raw(self->fd, &h, "x", 1, &t));
}

/* ---------------------------------------------------------------------- */
/* Session state: ENOTCONN, EISCONN                                        */
/* ---------------------------------------------------------------------- */

/* Every pool ioctl on a session that is not bound gives ENOTCONN. */
TEST_F(dev, pool_ioctls_on_unbound_session_enotconn)
{
	struct mmk_msg_header h = { 0 };
	struct mmk_pool_info info;
	struct mmk_store s = {
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)"x",
		.payload_size = 1,
	};
	struct mmk_guard g = { .token = self->token };
	struct mmk_release r = { .token = self->token };
	struct mmk_free f = { .token = self->token };
	int fd = self->unbound;

	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_POOL_INFO, &info));
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_STORE, &s));
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_READ, &g));
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_READ_MUT, &g));
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_PEEK_HEADER, &g));
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_READ_RELEASE, &r));
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r));
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd, MMK_IOC_FREE, &f));
	expect_pool_unchanged(_metadata, self);
}

/* CREATE and ATTACH on a bound session give EISCONN; it stays bound to its pool. */
TEST_F(dev, create_or_attach_on_bound_session_eisconn)
{
	struct mmk_pool_attach a = { .payload_type = PAYLOAD_TYPE };
	struct mmk_pool_create c;
	uint64_t pools;
	int other;

	snprintf(a.name, sizeof(a.name), "mmk-input-eisconn-%d", getpid());
	other = mmk_create(a.name, 64, 2, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, other);
	pools = sysfs_u64(_metadata, POOLS_FILE);

	create_args(&c);
	EXPECT_EQ(-EISCONN, mmk_ioctl(self->fd, MMK_IOC_CREATE, &c));
	EXPECT_EQ(-EISCONN, mmk_ioctl(self->fd, MMK_IOC_ATTACH, &a));
	EXPECT_EQ(pools, sysfs_u64(_metadata, POOLS_FILE));
	EXPECT_EQ(self->info.pool_id, info_now(_metadata, self->fd).pool_id);
	EXPECT_EQ(1U, info_now(_metadata, other).sessions);
	expect_pool_unchanged(_metadata, self);

	/* A session bound by attach is just as bound. */
	ASSERT_EQ(0, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	EXPECT_EQ(-EISCONN, mmk_ioctl(self->unbound, MMK_IOC_CREATE, &c));
	EXPECT_EQ(-EISCONN, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	EXPECT_EQ(2U, info_now(_metadata, other).sessions);
	close(other);
}

/* A failed CREATE leaves the session unbound, so a good CREATE can follow. */
TEST_F(dev, failed_create_leaves_session_unbound)
{
	struct mmk_pool_create c;

	create_args(&c);
	c.capacity = 0;
	expect_create_fails(_metadata, self, &c, -EINVAL, "capacity 0");
	create_args(&c);
	EXPECT_EQ(0, mmk_ioctl(self->unbound, MMK_IOC_CREATE, &c));
	EXPECT_NE(0U, c.pool_id);
	EXPECT_EQ(c.pool_id, info_now(_metadata, self->unbound).pool_id);
}

/* ---------------------------------------------------------------------- */
/* Bad user pointers: EFAULT, nothing changed                              */
/* ---------------------------------------------------------------------- */

/* Every ioctl with a NULL, misaligned-low or kernel argument pointer gives EFAULT. */
TEST_F(dev, bad_argument_pointer_efault)
{
	static const unsigned long pool_cmds[] = {
		MMK_IOC_POOL_INFO, MMK_IOC_STORE, MMK_IOC_READ, MMK_IOC_READ_MUT,
		MMK_IOC_PEEK_HEADER, MMK_IOC_READ_RELEASE, MMK_IOC_WRITE_RELEASE, MMK_IOC_FREE,
		MMK_IOC_LOAN, MMK_IOC_BATCH,
	};
	static const unsigned long bind_cmds[] = { MMK_IOC_CREATE, MMK_IOC_ATTACH };
	void *const bad[] = { NULL, (void *)1, KERNEL_PTR };
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(pool_cmds); i++) {
		for (j = 0; j < ARRAY_SIZE(bad); j++) {
			EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, pool_cmds[i], bad[j]))
				TH_LOG("cmd nr %lu, pointer %p", _IOC_NR(pool_cmds[i]), bad[j]);
		}
	}
	for (i = 0; i < ARRAY_SIZE(bind_cmds); i++) {
		for (j = 0; j < ARRAY_SIZE(bad); j++) {
			EXPECT_EQ(-EFAULT, mmk_ioctl(self->unbound, bind_cmds[i], bad[j]))
				TH_LOG("cmd nr %lu, pointer %p", _IOC_NR(bind_cmds[i]), bad[j]);
		}
	}
	expect_unbound(_metadata, self->unbound);
	expect_pool_unchanged(_metadata, self);
}

/*
 * An argument the kernel can read but not write back (a read-only page):
 * EFAULT, and the operation is undone: no message stored, no guard taken,
 * no pool created.
 */
TEST_F(dev, readonly_argument_efault_changes_nothing)
{
	static const unsigned long guard_cmds[] = { MMK_IOC_READ, MMK_IOC_READ_MUT,
						    MMK_IOC_PEEK_HEADER };
	long page = sysconf(_SC_PAGESIZE);
	struct mmk_msg_header h = { .trace_id = 3 };
	struct mmk_pool_create c;
	uint64_t pools;
	unsigned int i;
	char *ro;

	ro = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);

	*(struct mmk_store *)ro = (struct mmk_store){
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)"abc",
		.payload_size = 3,
	};
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, MMK_IOC_STORE, ro));
	expect_pool_unchanged(_metadata, self);

	for (i = 0; i < ARRAY_SIZE(guard_cmds); i++) {
		ASSERT_EQ(0, mprotect(ro, page, PROT_READ | PROT_WRITE));
		*(struct mmk_guard *)ro = (struct mmk_guard){ .token = self->token };
		ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
		EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, guard_cmds[i], ro)) TH_LOG("cmd %u", i);
		expect_pool_unchanged(_metadata, self);
	}

	pools = sysfs_u64(_metadata, POOLS_FILE);
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ | PROT_WRITE));
	create_args(&c);
	memcpy(ro, &c, sizeof(c));
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->unbound, MMK_IOC_CREATE, ro));
	expect_unbound(_metadata, self->unbound);
	EXPECT_EQ(pools, sysfs_u64(_metadata, POOLS_FILE));
	munmap(ro, page);
}

/* STORE with a bad header pointer: EFAULT, nothing stored. */
TEST_F(dev, store_bad_header_pointer_efault)
{
	EXPECT_EQ(-EFAULT, store_raw(self->fd, NULL, "abc", 3, NULL));
	EXPECT_EQ(-EFAULT, store_raw(self->fd, (void *)1, "abc", 3, NULL));
	EXPECT_EQ(-EFAULT, store_raw(self->fd, KERNEL_PTR, "abc", 3, NULL));
	expect_pool_unchanged(_metadata, self);
}

/* STORE with a bad payload pointer (wholly or partly unmapped): EFAULT, nothing stored. */
TEST_F(dev, store_bad_payload_pointer_efault)
{
	long page = sysconf(_SC_PAGESIZE);
	struct mmk_msg_header h = { .trace_id = 4 };
	unsigned char *area;

	EXPECT_EQ(-EFAULT, store_raw(self->fd, &h, NULL, 8, NULL));
	EXPECT_EQ(-EFAULT, store_raw(self->fd, &h, (void *)1, 8, NULL));
	EXPECT_EQ(-EFAULT, store_raw(self->fd, &h, KERNEL_PTR, 8, NULL));

	area = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	ASSERT_EQ(0, munmap(area + page, page));
	EXPECT_EQ(-EFAULT, store_raw(self->fd, &h, area + page - 16, 32, NULL));
	munmap(area, page);
	expect_pool_unchanged(_metadata, self);
}

/* A NULL payload is fine when the size is 0. */
TEST_F(dev, store_null_payload_with_zero_size_ok)
{
	struct mmk_msg_header h = { .trace_id = 5 };
	uint64_t t = MMK_TOKEN_INVALID;

	EXPECT_EQ(0, store_raw(self->fd, &h, NULL, 0, &t));
	EXPECT_NE(MMK_TOKEN_INVALID, t);
	EXPECT_EQ(CAPACITY - 2, info_now(_metadata, self->fd).available);
}

/* ---------------------------------------------------------------------- */
/* Sizes and limits                                                        */
/* ---------------------------------------------------------------------- */

/* A payload larger than the pool's payload size: EMSGSIZE, nothing stored. */
TEST_F(dev, store_payload_too_large_emsgsize)
{
	static unsigned char buf[PAYLOAD_SIZE + 4096];
	struct mmk_msg_header h = { .trace_id = 6 };
	uint64_t t;

	EXPECT_EQ(-EMSGSIZE, store_raw(self->fd, &h, buf, PAYLOAD_SIZE + 1, NULL));
	EXPECT_EQ(-EMSGSIZE, store_raw(self->fd, &h, buf, sizeof(buf), NULL));
	EXPECT_EQ(-EMSGSIZE, store_raw(self->fd, &h, buf, 0xffffffff, NULL));
	expect_pool_unchanged(_metadata, self);
	EXPECT_EQ(0, store_raw(self->fd, &h, buf, PAYLOAD_SIZE, &t));
}

/* A zero payload size or capacity: EINVAL. */
TEST_F(dev, create_zero_size_or_capacity_einval)
{
	struct mmk_pool_create c;

	create_args(&c);
	c.payload_size = 0;
	expect_create_fails(_metadata, self, &c, -EINVAL, "payload_size 0");
	create_args(&c);
	c.capacity = 0;
	expect_create_fails(_metadata, self, &c, -EINVAL, "capacity 0");
}

/* Sizes over the module's limits, and sizes that overflow: EINVAL. */
TEST_F(dev, create_over_limits_einval)
{
	uint64_t max_capacity = param_u64(_metadata, "max_capacity");
	uint64_t max_payload = param_u64(_metadata, "max_payload_size");
	uint64_t max_pool_bytes = param_u64(_metadata, "max_pool_bytes");
	struct mmk_pool_create c;

	ASSERT_GT(0xffffffffULL, max_capacity);
	ASSERT_GT(0xffffffffULL, max_payload);

	create_args(&c);
	c.capacity = (uint32_t)max_capacity + 1;
	expect_create_fails(_metadata, self, &c, -EINVAL, "capacity > max_capacity");
	create_args(&c);
	c.capacity = 1U << 20 | 1;
	expect_create_fails(_metadata, self, &c, -EINVAL, "capacity > 2^20");
	create_args(&c);
	c.payload_size = (uint32_t)max_payload + 1;
	expect_create_fails(_metadata, self, &c, -EINVAL, "payload > max_payload_size");
	create_args(&c);
	c.payload_size = 0xffffffff;
	expect_create_fails(_metadata, self, &c, -EINVAL, "payload 0xffffffff");
	create_args(&c);
	c.capacity = 0xffffffff;
	expect_create_fails(_metadata, self, &c, -EINVAL, "capacity 0xffffffff");
	create_args(&c);
	c.payload_size = 0xffffffff;
	c.capacity = 0xffffffff;
	expect_create_fails(_metadata, self, &c, -EINVAL, "both 0xffffffff");

	/* Each within its limit, together over max_pool_bytes (1 MiB slots). */
	create_args(&c);
	c.payload_size = (1U << 20) - 64;
	c.capacity = (uint32_t)(max_pool_bytes >> 20) + 1;
	if (c.payload_size <= max_payload && c.capacity <= max_capacity)
		expect_create_fails(_metadata, self, &c, -EINVAL, "bytes > max_pool_bytes");
	else
		TH_LOG("limits too small for the max_pool_bytes case");
}

/* mode is file mode bits 0 to 0777; anything else is EINVAL. */
TEST_F(dev, create_bad_mode_einval)
{
	static const uint32_t bad[] = { 01000, 02000, 04000, 01777, 0x10000, 0xffffffff };
	struct mmk_pool_create c;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		create_args(&c);
		c.mode = bad[i];
		expect_create_fails(_metadata, self, &c, -EINVAL, "mode");
	}
	create_args(&c);
	c.mode = 0777;
	EXPECT_EQ(0, try_create(&c));
	create_args(&c);
	c.mode = 0;
	EXPECT_EQ(0, try_create(&c));
}

/* MMK_MEM_DEVICE cannot be honoured by kernel pages: EOPNOTSUPP. */
TEST_F(dev, create_device_memory_eopnotsupp)
{
	struct mmk_pool_create c;

	create_args(&c);
	c.memory_class = MMK_MEM_DEVICE;
	expect_create_fails(_metadata, self, &c, -EOPNOTSUPP, "DEVICE");
}

/* A memory class that does not exist: EINVAL. */
TEST_F(dev, create_unknown_memory_class_einval)
{
	static const uint8_t bad[] = { 4, 9, 255 };
	struct mmk_pool_create c;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		create_args(&c);
		c.memory_class = bad[i];
		expect_create_fails(_metadata, self, &c, -EINVAL, "memory_class");
	}
}

/* Names: NUL-terminated, printable ASCII, no '/'. */
TEST_F(dev, create_bad_name_einval)
{
	struct mmk_pool_create c;
	char prefix[16];

	create_args(&c);
	memset(c.name, 'a', sizeof(c.name));
	expect_create_fails(_metadata, self, &c, -EINVAL, "no NUL");
	create_args(&c);
	snprintf(c.name, sizeof(c.name), "mmk/input-%d", getpid());
	expect_create_fails(_metadata, self, &c, -EINVAL, "slash");
	create_args(&c);
	snprintf(c.name, sizeof(c.name), "/");
	expect_create_fails(_metadata, self, &c, -EINVAL, "only slash");
	create_args(&c);
	snprintf(c.name, sizeof(c.name), "mmk\ninput-%d", getpid());
	expect_create_fails(_metadata, self, &c, -EINVAL, "newline");
	create_args(&c);
	snprintf(c.name, sizeof(c.name), "mmk\x80input-%d", getpid());
	expect_create_fails(_metadata, self, &c, -EINVAL, "non-ASCII");

	/* 63 bytes plus the NUL is the longest name. */
	create_args(&c);
	memset(c.name, 'b', sizeof(c.name) - 1);
	memcpy(c.name, prefix, (size_t)snprintf(prefix, sizeof(prefix), "%d-", getpid()));
	EXPECT_EQ(63U, strlen(c.name));
	EXPECT_EQ(0, try_create(&c));
}

/* A second live pool with the same name: EEXIST; the name is free again once it is gone. */
TEST_F(dev, create_duplicate_name_eexist)
{
	struct mmk_pool_create c;
	int first;

	create_args(&c);
	snprintf(c.name, sizeof(c.name), "mmk-input-dup-%d", getpid());
	first = mmk_create(c.name, 64, 2, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, first);
	expect_create_fails(_metadata, self, &c, -EEXIST, "duplicate");
	/* A different payload type or size does not make it another name. */
	c.payload_type = 1;
	c.payload_size = 32;
	expect_create_fails(_metadata, self, &c, -EEXIST, "duplicate, other type");
	close(first);
	EXPECT_EQ(0, mmk_ioctl(self->unbound, MMK_IOC_CREATE, &c));
}

/* Attach to a name no live pool has: ENOENT. */
TEST_F(dev, attach_missing_name_enoent)
{
	struct mmk_pool_attach a = { .payload_type = PAYLOAD_TYPE };
	int fd;

	snprintf(a.name, sizeof(a.name), "mmk-input-missing-%d", getpid());
	EXPECT_EQ(-ENOENT, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	expect_unbound(_metadata, self->unbound);

	/* A pool that has gone away is missing too. */
	fd = mmk_create(a.name, 64, 2, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-ENOENT, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	expect_unbound(_metadata, self->unbound);
}

/* Attach with a payload type id other than the pool's: EPROTOTYPE. */
TEST_F(dev, attach_wrong_payload_type_eprototype)
{
	struct mmk_pool_attach a = { .payload_type = PAYLOAD_TYPE + 1 };
	int owner;

	snprintf(a.name, sizeof(a.name), "mmk-input-type-%d", getpid());
	owner = mmk_create(a.name, 64, 2, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, owner);
	EXPECT_EQ(-EPROTOTYPE, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	a.payload_type = 0;
	EXPECT_EQ(-EPROTOTYPE, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	a.payload_type = PAYLOAD_TYPE ^ (1ULL << 63);
	EXPECT_EQ(-EPROTOTYPE, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	expect_unbound(_metadata, self->unbound);
	EXPECT_EQ(1U, info_now(_metadata, owner).sessions);

	a.payload_type = PAYLOAD_TYPE;
	ASSERT_EQ(0, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	EXPECT_EQ(info_now(_metadata, owner).pool_id, a.pool_id);
	EXPECT_EQ(a.pool_id, info_now(_metadata, self->unbound).pool_id);
	close(owner);
}

/* An attach name without its NUL: EINVAL. */
TEST_F(dev, attach_name_not_terminated_einval)
{
	struct mmk_pool_attach a = { .payload_type = PAYLOAD_TYPE };

	memset(a.name, 'a', sizeof(a.name));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound, MMK_IOC_ATTACH, &a));
	expect_unbound(_metadata, self->unbound);
}

/* max_pools live pools at most: EDQUOT past it, nothing created. */
TEST_F(dev, max_pools_cap_edquot)
{
	struct mmk_pool_create c;
	uint64_t live = sysfs_u64(_metadata, POOLS_FILE);
	int fd;

	ASSERT_LE(1U, live);
	if (!set_param(_metadata, self, "max_pools", live))
		return;
	create_args(&c);
	snprintf(c.name, sizeof(c.name), "mmk-input-maxpools-%d", getpid());
	expect_create_fails(_metadata, self, &c, -EDQUOT, "at max_pools");
	EXPECT_EQ(-ENOENT, mmk_attach(c.name, PAYLOAD_TYPE));

	/* One more allowed: one create succeeds, the next fails. */
	if (!set_param(_metadata, self, "max_pools", live + 1))
		return;
	fd = mmk_create(NULL, 64, 2, 0600, PAYLOAD_TYPE, 0);
	EXPECT_LE(0, fd);
	expect_create_fails(_metadata, self, &c, -EDQUOT, "at max_pools again");
	if (fd >= 0)
		close(fd);
}

/*
 * max_total_bytes of all pools and sessions: EDQUOT past it, nothing
 * created.  A pool counts its charged_bytes (learnt from one created
 * first): its allocations and its creator's per-slot state.
 */
TEST_F(dev, max_total_bytes_cap_edquot)
{
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);
	uint64_t bytes = sysfs_u64(_metadata, BYTES_FILE), charge;
	struct mmk_pool_create c;
	struct mmk_pool_info info;
	int fd;

	ASSERT_LE(self->info.charged_bytes, bytes);
	create_args(&c);
	c.payload_size = page - 64;	/* one page per slot, 4 pages in all */
	c.capacity = 4;
	fd = mmk_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_CREATE, &c));
	charge = info_now(_metadata, fd).charged_bytes;
	close(fd);
	EXPECT_LT((uint64_t)4 * page, charge);
	create_args(&c);
	c.payload_size = page - 64;
	c.capacity = 4;
	if (!set_param(_metadata, self, "max_total_bytes", bytes + charge - 1))
		return;
	expect_create_fails(_metadata, self, &c, -EDQUOT, "one byte short");

	if (!set_param(_metadata, self, "max_total_bytes", bytes + charge))
		return;
	fd = mmk_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, mmk_ioctl(fd, MMK_IOC_CREATE, &c));
	info = info_now(_metadata, fd);
	EXPECT_EQ((uint64_t)4 * page, info.map_size);
	EXPECT_EQ(charge, info.charged_bytes);
	EXPECT_EQ(bytes + charge, sysfs_u64(_metadata, BYTES_FILE));
	/* Now the cap is reached: even the smallest pool is refused. */
	create_args(&c);
	c.payload_size = 1;
	c.capacity = 1;
	expect_create_fails(_metadata, self, &c, -EDQUOT, "cap reached");
	close(fd);
}

/* ---------------------------------------------------------------------- */
/* Commands and argument sizes                                             */
/* ---------------------------------------------------------------------- */

/* Commands the driver does not know: ENOTTY, bound or not. */
TEST_F(dev, unknown_ioctl_enotty)
{
	const unsigned long bad[] = {
		/* 0x0c to 0x10 are the queue ioctls: 0x11 is the first unknown. */
		_IO(MMK_IOC_MAGIC, _IOC_NR(MMK_IOC_QUEUE_INFO) + 1),
		_IOWR(MMK_IOC_MAGIC, _IOC_NR(MMK_IOC_QUEUE_INFO) + 1, struct mmk_guard),
		_IOWR(MMK_IOC_MAGIC, 0xff, struct mmk_guard),
		_IOWR(MMK_IOC_MAGIC ^ 1, _IOC_NR(MMK_IOC_STORE), struct mmk_store),
		_IO(MMK_IOC_MAGIC, _IOC_NR(MMK_IOC_STORE)),	/* no direction */
		_IOR(MMK_IOC_MAGIC, _IOC_NR(MMK_IOC_FREE), struct mmk_free), /* wrong one */
	};
	struct mmk_guard g = { .token = self->token };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-ENOTTY, mmk_ioctl(self->fd, bad[i], &g)) TH_LOG("cmd %#lx", bad[i]);
		EXPECT_EQ(-ENOTTY, mmk_ioctl(self->unbound, bad[i], &g))
			TH_LOG("unbound cmd %#lx", bad[i]);
	}
	/* Not a terminal either. */
	EXPECT_EQ(0, isatty(self->fd));
	EXPECT_EQ(ENOTTY, errno);
	expect_pool_unchanged(_metadata, self);
}

#define TAIL	64

/* STORE with a bigger struct: zero tail works, non-zero tail E2BIG, smaller EINVAL. */
TEST_F(dev, store_struct_size_variants)
{
	union {
		struct mmk_store s;
		unsigned char raw[sizeof(struct mmk_store) + TAIL];
	} u;
	struct mmk_msg_header h = { .trace_id = 7 };
	struct mmk_guard g;
	size_t big = sizeof(u.raw);

	memset(&u, 0, sizeof(u));
	u.s = (struct mmk_store){ .header = (uintptr_t)&h, .payload = (uintptr_t)"hi",
				  .payload_size = 2 };
	u.raw[big - 1] = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, cmd_size(MMK_IOC_STORE, big), &u));
	u.raw[big - 1] = 0;
	u.raw[sizeof(u.s)] = 0x80;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, cmd_size(MMK_IOC_STORE, big), &u));
	u.raw[sizeof(u.s)] = 0;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(MMK_IOC_STORE, sizeof(u.s) - 8), &u));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(MMK_IOC_STORE, 0), &u));
	expect_pool_unchanged(_metadata, self);

	ASSERT_EQ(0, mmk_ioctl(self->fd, cmd_size(MMK_IOC_STORE, big), &u));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, u.s.token, &g));
	EXPECT_EQ(2U, g.payload_size);
	EXPECT_EQ(CAPACITY - 2, info_now(_metadata, self->fd).available);
}

/* READ/READ_MUT/PEEK with bigger and smaller structs. */
TEST_F(dev, guard_struct_size_variants)
{
	static const unsigned long cmds[] = { MMK_IOC_READ, MMK_IOC_READ_MUT,
					      MMK_IOC_PEEK_HEADER };
	union {
		struct mmk_guard g;
		unsigned char raw[sizeof(struct mmk_guard) + TAIL];
	} u;
	struct mmk_guard ref;
	size_t big = sizeof(u.raw);
	unsigned int i;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, self->token, &ref));
	ASSERT_EQ(0, mmk_read_release(self->fd, self->token));

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		memset(&u, 0, sizeof(u));
		u.g.token = self->token;
		u.raw[big - 1] = 1;
		EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, cmd_size(cmds[i], big), &u));
		u.raw[big - 1] = 0;
		EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(cmds[i], sizeof(u.g) - 4), &u));
		expect_pool_unchanged(_metadata, self);

		ASSERT_EQ(0, mmk_ioctl(self->fd, cmd_size(cmds[i], big), &u)) TH_LOG("cmd %u", i);
		EXPECT_EQ(ref.offset, u.g.offset);
		EXPECT_EQ(ref.payload_size, u.g.payload_size);
		if (cmds[i] == MMK_IOC_READ_MUT) {
			ASSERT_EQ(0, mmk_write_release(self->fd, self->token));
		} else {
			ASSERT_EQ(0, mmk_read_release(self->fd, self->token));
		}
	}
}

/* READ_RELEASE/WRITE_RELEASE with bigger and smaller structs. */
TEST_F(dev, release_struct_size_variants)
{
	union {
		struct mmk_release r;
		unsigned char raw[sizeof(struct mmk_release) + TAIL];
	} u;
	struct mmk_guard g;
	size_t big = sizeof(u.raw);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->token, &g));
	memset(&u, 0, sizeof(u));
	u.r.token = self->token;
	u.raw[big - 1] = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, cmd_size(MMK_IOC_READ_RELEASE, big), &u));
	u.raw[big - 1] = 0;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(MMK_IOC_READ_RELEASE, 8), &u));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).read_guards);
	EXPECT_EQ(0, mmk_ioctl(self->fd, cmd_size(MMK_IOC_READ_RELEASE, big), &u));
	EXPECT_EQ(0U, info_now(_metadata, self->fd).read_guards);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	u.raw[big - 1] = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, cmd_size(MMK_IOC_WRITE_RELEASE, big), &u));
	u.raw[big - 1] = 0;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(MMK_IOC_WRITE_RELEASE, 8), &u));
	EXPECT_EQ(1U, info_now(_metadata, self->fd).write_guards);
	EXPECT_EQ(0, mmk_ioctl(self->fd, cmd_size(MMK_IOC_WRITE_RELEASE, big), &u));
	EXPECT_EQ(0U, info_now(_metadata, self->fd).write_guards);
}

/* FREE with bigger and smaller structs. */
TEST_F(dev, free_struct_size_variants)
{
	union {
		struct mmk_free f;
		unsigned char raw[sizeof(struct mmk_free) + TAIL];
	} u;
	size_t big = sizeof(u.raw);

	memset(&u, 0, sizeof(u));
	u.f.token = self->token;
	u.raw[big - 1] = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, cmd_size(MMK_IOC_FREE, big), &u));
	u.raw[big - 1] = 0;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(MMK_IOC_FREE, 8), &u));
	expect_pool_unchanged(_metadata, self);
	EXPECT_EQ(0, mmk_ioctl(self->fd, cmd_size(MMK_IOC_FREE, big), &u));
	EXPECT_EQ(CAPACITY, info_now(_metadata, self->fd).available);
}

/* CREATE with bigger and smaller structs. */
TEST_F(dev, create_struct_size_variants)
{
	union {
		struct mmk_pool_create c;
		unsigned char raw[sizeof(struct mmk_pool_create) + TAIL];
	} u;
	size_t big = sizeof(u.raw);

	memset(&u, 0, sizeof(u));
	create_args(&u.c);
	u.raw[big - 1] = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->unbound, cmd_size(MMK_IOC_CREATE, big), &u));
	expect_unbound(_metadata, self->unbound);
	u.raw[big - 1] = 0;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound,
				     cmd_size(MMK_IOC_CREATE, sizeof(u.c) - 8), &u));
	expect_unbound(_metadata, self->unbound);
	ASSERT_EQ(0, mmk_ioctl(self->unbound, cmd_size(MMK_IOC_CREATE, big), &u));
	EXPECT_NE(0U, u.c.pool_id);
	EXPECT_EQ(u.c.pool_id, info_now(_metadata, self->unbound).pool_id);
}

/* ATTACH with bigger and smaller structs. */
TEST_F(dev, attach_struct_size_variants)
{
	union {
		struct mmk_pool_attach a;
		unsigned char raw[sizeof(struct mmk_pool_attach) + TAIL];
	} u;
	size_t big = sizeof(u.raw);
	int owner;

	memset(&u, 0, sizeof(u));
	u.a.payload_type = PAYLOAD_TYPE;
	snprintf(u.a.name, sizeof(u.a.name), "mmk-input-attachsz-%d", getpid());
	owner = mmk_create(u.a.name, 64, 2, 0600, PAYLOAD_TYPE, 0);
	ASSERT_LE(0, owner);
	u.raw[big - 1] = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->unbound, cmd_size(MMK_IOC_ATTACH, big), &u));
	u.raw[big - 1] = 0;
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->unbound,
				     cmd_size(MMK_IOC_ATTACH, sizeof(u.a) - 8), &u));
	expect_unbound(_metadata, self->unbound);
	ASSERT_EQ(0, mmk_ioctl(self->unbound, cmd_size(MMK_IOC_ATTACH, big), &u));
	EXPECT_EQ(info_now(_metadata, owner).pool_id, u.a.pool_id);
	EXPECT_EQ(2U, info_now(_metadata, owner).sessions);
	close(owner);
}

/* POOL_INFO with a bigger struct works; a smaller one is EINVAL. */
TEST_F(dev, pool_info_struct_size_variants)
{
	union {
		struct mmk_pool_info i;
		unsigned char raw[sizeof(struct mmk_pool_info) + TAIL];
	} u;
	size_t big = sizeof(u.raw);

	memset(&u, 0, sizeof(u));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(MMK_IOC_POOL_INFO,
							MMK_POOL_INFO_SIZE_VER0 - 8), &u));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, cmd_size(MMK_IOC_POOL_INFO, 4), &u));
	ASSERT_EQ(0, mmk_ioctl(self->fd, cmd_size(MMK_IOC_POOL_INFO, big), &u));
	EXPECT_EQ(0, memcmp(&u.i, &self->info, sizeof(u.i)));
	/* The first published size still works: the kernel writes that much. */
	memset(&u, 0xa5, sizeof(u));
	ASSERT_EQ(0, mmk_ioctl(self->fd, cmd_size(MMK_IOC_POOL_INFO, MMK_POOL_INFO_SIZE_VER0),
			       &u));
	EXPECT_EQ(0, memcmp(&u.i, &self->info, MMK_POOL_INFO_SIZE_VER0));
	EXPECT_EQ(0xa5, u.raw[MMK_POOL_INFO_SIZE_VER0]);
}

/* POOL_INFO writes every byte of its struct: padding and unused name bytes are zero. */
TEST_F(dev, pool_info_padding_zeroed)
{
	struct mmk_pool_info info;
	struct mmk_pool_create c;
	unsigned int k;
	size_t len;

	memset(&info, 0xff, sizeof(info));
	ASSERT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_POOL_INFO, &info));
	EXPECT_EQ(0, info.__pad);
	EXPECT_EQ(0U, info.__pad2);
	EXPECT_EQ(0, info.memory_device);
	for (k = 0; k < sizeof(info.name); k++) {
		EXPECT_EQ(0, info.name[k]) TH_LOG("anonymous name byte %u", k);
	}

	/* A named pool: the bytes after the NUL are zero as well. */
	create_args(&c);
	snprintf(c.name, sizeof(c.name), "mmk-pad-%d", getpid());
	ASSERT_EQ(0, mmk_ioctl(self->unbound, MMK_IOC_CREATE, &c));
	memset(&info, 0xff, sizeof(info));
	ASSERT_EQ(0, mmk_ioctl(self->unbound, MMK_IOC_POOL_INFO, &info));
	len = strlen(c.name);
	EXPECT_EQ(0, memcmp(info.name, c.name, len + 1));
	for (k = len; k < sizeof(info.name); k++) {
		EXPECT_EQ(0, info.name[k]) TH_LOG("name byte %u", k);
	}
	EXPECT_EQ(0, info.__pad);
	EXPECT_EQ(0U, info.__pad2);
	EXPECT_EQ(c.pool_id, info.pool_id);
	EXPECT_EQ(64U, info.payload_size);
	EXPECT_EQ(2U, info.capacity);
}

TEST_HARNESS_MAIN
