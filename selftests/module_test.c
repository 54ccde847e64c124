// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifetime: mmk cannot be unloaded while any open file or mapping
 * of /dev/mmk exists, unloads cleanly once the last one is gone, and
 * survives being loaded and unloaded many times.
 *
 * This program unloads and reloads the module, so it runs last, as root,
 * with MMK_KO set to the path of mmk.ko.  It leaves the module loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "kselftest_harness.h"

#define MOD_NAME	"mmk"
#define MOD_SYSFS	"/sys/module/" MOD_NAME
#define MOD_REFCNT	MOD_SYSFS "/refcnt"
#define SYSFS_POOLS	"/sys/class/misc/mmk/pools"
#define SYSFS_BYTES	"/sys/class/misc/mmk/bytes"
#define LOOPS		20

static int load_module(const char *ko)
{
	int fd, ret;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

/* delete_module(2) without waiting, as rmmod does. */
static int unload_module(void)
{
	return syscall(SYS_delete_module, MOD_NAME, O_NONBLOCK) ? -errno : 0;
}

static bool module_loaded(void)
{
	return access(MOD_SYSFS, F_OK) == 0;
}

/*
 * Wait for /dev/mmk to appear (present) or go (!present).  devtmpfs makes
 * the node before finit_module returns; the bounded poll is only there in
 * case the node is created by something slower.  Returns 0 when it did.
 */
static int wait_dev(bool present)
{
	int i;

	for (i = 0; i < 500; i++) {
		if ((access(MMK_DEVICE_PATH, F_OK) == 0) == present)
			return 0;
		usleep(10000);
	}
	return -1;
}

static int read_long(const char *path, long *val)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	*val = strtol(buf, NULL, 10);
	return 0;
}

FIXTURE(mod) {
	const char *ko;
};

/* Every test starts (and ends) with the module loaded and /dev/mmk present. */
FIXTURE_SETUP(mod)
{
	int ret;

	self->ko = getenv("MMK_KO");
	if (!self->ko || !*self->ko) {
		self->ko = NULL;
		return;
	}
	if (!module_loaded()) {
		ret = load_module(self->ko);
		ASSERT_EQ(0, ret) TH_LOG("load %s: %s", self->ko, strerror(-ret));
	}
	ASSERT_EQ(0, wait_dev(true)) TH_LOG("%s did not appear", MMK_DEVICE_PATH);
}

FIXTURE_TEARDOWN(mod)
{
	if (self->ko && !module_loaded()) {
		load_module(self->ko);
		wait_dev(true);
	}
}

#define NEED_KO() do {							\
	if (!self->ko)							\
		SKIP(return, "MMK_KO is not set");			\
} while (0)

/* Unload is refused (EWOULDBLOCK, as for any module in use) and harmless. */
static void expect_unload_refused(struct __test_metadata *_metadata)
{
	long refcnt = -1;

	ASSERT_EQ(0, read_long(MOD_REFCNT, &refcnt));
	EXPECT_LT(0, refcnt);
	EXPECT_EQ(-EWOULDBLOCK, unload_module());
	ASSERT_TRUE(module_loaded());
	ASSERT_EQ(0, access(MMK_DEVICE_PATH, F_OK));
}

/* An open file and then a lone mapping each hold the module. */
TEST_F(mod, unload_refused_while_fd_or_mapping_exists)
{
	const struct mmk_msg_header *h;
	struct mmk_guard g;
	long pools, bytes;
	uint64_t tok;
	size_t len;
	void *map;
	int fd, ret;

	NEED_KO();

	/* Just open, not bound. */
	fd = mmk_open();
	ASSERT_LE(0, fd);
	expect_unload_refused(_metadata);

	/* Bound, with a message and a mapping. */
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_CREATE, &(struct mmk_pool_create){
		.payload_size = 100, .capacity = 4, .mode = 0600,
		.memory_class = MMK_MEM_HOST }));
	ASSERT_EQ(0, mmk_store_seq(fd, "lifetime", 9, 77, &tok));
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok, &g));
	expect_unload_refused(_metadata);

	/* Only the mapping is left: it holds the file, the file the module. */
	ASSERT_EQ(0, close(fd));
	expect_unload_refused(_metadata);
	h = mmk_at(map, g.offset);
	EXPECT_EQ(77U, h->sequence);
	EXPECT_EQ(0, memcmp(mmk_payload(map, g.offset), "lifetime", 9));

	ASSERT_EQ(0, munmap(map, len));
	ASSERT_EQ(0, read_long(SYSFS_POOLS, &pools));
	EXPECT_EQ(0, pools);
	ret = unload_module();
	ASSERT_EQ(0, ret) TH_LOG("unload: %s", strerror(-ret));
	EXPECT_FALSE(module_loaded());
	EXPECT_EQ(0, wait_dev(false)) TH_LOG("%s is still there", MMK_DEVICE_PATH);

	ret = load_module(self->ko);
	ASSERT_EQ(0, ret) TH_LOG("reload: %s", strerror(-ret));
	ASSERT_EQ(0, wait_dev(true));
	ASSERT_EQ(0, read_long(SYSFS_POOLS, &pools));
	EXPECT_EQ(0, pools);
	ASSERT_EQ(0, read_long(SYSFS_BYTES, &bytes));
	EXPECT_EQ(0, bytes);
}

/* A file held by another process holds the module; its death lets go. */
TEST_F(mod, unload_refused_while_other_process_holds_fd)
{
	int ready[2], go[2];
	pid_t pid;
	int ret;

	NEED_KO();
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_guard g;
		uint64_t tok;
		size_t len;
		void *map;
		int fd;

		close(ready[0]);
		close(go[1]);
		fd = mmk_create(NULL, 64, 2, 0600, 0, 0);
		if (fd < 0)
			_exit(1);
		map = mmk_map(fd, &len);
		if (map == MAP_FAILED || mmk_store_seq(fd, "x", 1, 1, &tok) ||
		    mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g))
			_exit(1);
		/* Only the mapping and a write guard are left. */
		close(fd);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		get_byte(go[0]);
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('r', get_byte(ready[0]));
	expect_unload_refused(_metadata);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(pid));
	ret = unload_module();
	ASSERT_EQ(0, ret) TH_LOG("unload: %s", strerror(-ret));
	EXPECT_FALSE(module_loaded());
	ret = load_module(self->ko);
	ASSERT_EQ(0, ret) TH_LOG("reload: %s", strerror(-ret));
	ASSERT_EQ(0, wait_dev(true));
	close(ready[0]);
	close(go[1]);
}

TEST_F(mod, second_load_is_eexist)
{
	NEED_KO();
	EXPECT_EQ(-EEXIST, load_module(self->ko));
	EXPECT_TRUE(module_loaded());
}

/* Load, use, unload, LOOPS times; every load starts from a clean state. */
TEST_F_TIMEOUT(mod, load_use_unload_loop, 600)
{
	unsigned char payload[200];
	char name[MMK_NAME_MAX];
	struct mmk_guard g;
	long pools, bytes;
	uint64_t tok;
	size_t len;
	void *map;
	int i, fd, ret;

	NEED_KO();
	snprintf(name, sizeof(name), "module-loop");
	for (i = 0; i < LOOPS; i++) {
		if (!module_loaded()) {
			ret = load_module(self->ko);
			ASSERT_EQ(0, ret) TH_LOG("load #%d: %s", i, strerror(-ret));
		}
		ASSERT_EQ(0, wait_dev(true)) TH_LOG("load #%d: no %s", i, MMK_DEVICE_PATH);
		ASSERT_EQ(0, read_long(SYSFS_POOLS, &pools));
		ASSERT_EQ(0, pools) TH_LOG("load #%d", i);

		/* The same name every time: nothing of the last load is left. */
		fd = mmk_create(name, sizeof(payload), 16, 0600, i, 0);
		ASSERT_LE(0, fd) TH_LOG("load #%d: create: %s", i, strerror(-fd));
		memset(payload, i, sizeof(payload));
		ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), i, &tok));
		map = mmk_map(fd, &len);
		ASSERT_NE(MAP_FAILED, map);
		ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok, &g));
		ASSERT_EQ(0, memcmp(mmk_payload(map, g.offset), payload, sizeof(payload)));
		/* Left held on purpose: close must clean it up. */
		ASSERT_EQ(-EBUSY, mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g));
		ASSERT_EQ(0, read_long(SYSFS_BYTES, &bytes));
		ASSERT_LT(0, bytes);
		ASSERT_EQ(0, munmap(map, len));
		ASSERT_EQ(0, close(fd));

		ret = unload_module();
		ASSERT_EQ(0, ret) TH_LOG("unload #%d: %s", i, strerror(-ret));
		ASSERT_FALSE(module_loaded());
	}
	/* Leave it loaded. */
	ret = load_module(self->ko);
	ASSERT_EQ(0, ret) TH_LOG("final load: %s", strerror(-ret));
	ASSERT_EQ(0, wait_dev(true));
	fd = mmk_open();
	ASSERT_LE(0, fd);
	close(fd);
}

TEST_HARNESS_MAIN
