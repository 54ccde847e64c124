// SPDX-License-Identifier: GPL-2.0
/*
 * The pool mapping of /dev/mmk: read-only, shared, whole, once per session,
 * never writable, never pinnable, and its memory returned when the last
 * file and mapping go.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/io_uring.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "kselftest_harness.h"

#define MT_PAYLOAD	4032	/* header + payload = one 4 KiB page */
#define MT_CAPACITY	4
#define MT_MSG_SIZE	200
#define MT_SEQ		7

#define SYSFS_BYTES	"/sys/class/misc/mmk/bytes"
#define SYSFS_POOLS	"/sys/class/misc/mmk/pools"

static void fill_pattern(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

/* errno of a refused mmap, 0 if it succeeded (and was undone). */
static int map_errno(int fd, size_t len, int prot, int flags, off_t off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		return errno;
	munmap(p, len);
	return 0;
}

static int read_u64(const char *path, unsigned long long *val)
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
	*val = strtoull(buf, NULL, 10);
	return 0;
}

FIXTURE(map) {
	int fd;
	struct mmk_pool_info info;
	size_t page;
	uint64_t tok;
	uint64_t off;
	unsigned char payload[MT_MSG_SIZE];
};

/* An anonymous pool of four one-page slots, holding one message. */
FIXTURE_SETUP(map)
{
	struct mmk_guard g;

	self->page = sysconf(_SC_PAGESIZE);
	fill_pattern(self->payload, sizeof(self->payload), 3);
	self->fd = mmk_create(NULL, MT_PAYLOAD, MT_CAPACITY, 0600, 0, 0);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
	ASSERT_EQ(0, mmk_info(self->fd, &self->info));
	ASSERT_LE(2 * self->page, self->info.map_size);
	ASSERT_EQ(0U, self->info.map_size % self->page);
	ASSERT_LE((uint64_t)self->info.capacity * self->info.slot_size, self->info.map_size);
	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload, MT_MSG_SIZE, MT_SEQ, &self->tok));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	self->off = g.offset;
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
}

FIXTURE_TEARDOWN(map)
{
	if (self->fd >= 0)
		close(self->fd);
}

static bool msg_intact(FIXTURE_DATA(map) *self, const void *map)
{
	const struct mmk_msg_header *h = mmk_at(map, self->off);

	return h->payload_size == MT_MSG_SIZE && h->sequence == MT_SEQ &&
	       !memcmp(mmk_payload(map, self->off), self->payload, MT_MSG_SIZE);
}

/* A refused mmap must leave the session free to map once, properly. */
static bool can_map(FIXTURE_DATA(map) *self)
{
	void *p = mmap(NULL, self->info.map_size, PROT_READ, MAP_SHARED, self->fd, 0);
	bool ok;

	if (p == MAP_FAILED)
		return false;
	ok = msg_intact(self, p);
	munmap(p, self->info.map_size);
	return ok;
}

TEST_F(map, read_only_shared_mapping_works)
{
	const struct mmk_msg_header *h;
	void *p;

	p = mmap(NULL, self->info.map_size, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	h = mmk_at(p, self->off);
	EXPECT_TRUE(msg_intact(self, p));
	EXPECT_EQ((uint8_t)MMK_MEM_HOST, h->memory_class);
	EXPECT_EQ((uint8_t)MMK_QOS_BEST_EFFORT, h->qos);
	ASSERT_EQ(0, munmap(p, self->info.map_size));
}

TEST_F(map, mmap_write_refused)
{
	size_t len = self->info.map_size;

	EXPECT_EQ(EPERM, map_errno(self->fd, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0));
	EXPECT_EQ(EPERM, map_errno(self->fd, len, PROT_WRITE, MAP_SHARED, 0));
	EXPECT_TRUE(can_map(self));
}

TEST_F(map, mmap_exec_refused)
{
	size_t len = self->info.map_size;

	EXPECT_EQ(EPERM, map_errno(self->fd, len, PROT_READ | PROT_EXEC, MAP_SHARED, 0));
	EXPECT_EQ(EPERM, map_errno(self->fd, len, PROT_EXEC, MAP_SHARED, 0));
	EXPECT_EQ(EPERM, map_errno(self->fd, len, PROT_READ | PROT_WRITE | PROT_EXEC,
				   MAP_SHARED, 0));
	EXPECT_TRUE(can_map(self));
}

TEST_F(map, mmap_private_refused)
{
	size_t len = self->info.map_size;
	int err;

	EXPECT_EQ(EINVAL, map_errno(self->fd, len, PROT_READ, MAP_PRIVATE, 0));
	/* Two things wrong at once: either answer is a refusal. */
	err = map_errno(self->fd, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0);
	EXPECT_TRUE(err == EPERM || err == EINVAL) TH_LOG("MAP_PRIVATE|PROT_WRITE: %d", err);
	err = map_errno(self->fd, len, PROT_WRITE, MAP_PRIVATE, 0);
	EXPECT_TRUE(err == EPERM || err == EINVAL) TH_LOG("MAP_PRIVATE, PROT_WRITE: %d", err);
	EXPECT_TRUE(can_map(self));
}

TEST_F(map, mmap_offset_refused)
{
	size_t len = self->info.map_size;

	EXPECT_EQ(EINVAL, map_errno(self->fd, len, PROT_READ, MAP_SHARED, self->page));
	EXPECT_EQ(EINVAL, map_errno(self->fd, len - self->page, PROT_READ, MAP_SHARED,
				    self->page));
	EXPECT_EQ(EINVAL, map_errno(self->fd, self->page, PROT_READ, MAP_SHARED,
				    len - self->page));
	EXPECT_TRUE(can_map(self));
}

TEST_F(map, mmap_length_refused)
{
	size_t len = self->info.map_size;

	EXPECT_EQ(EINVAL, map_errno(self->fd, len + self->page, PROT_READ, MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, map_errno(self->fd, len - self->page, PROT_READ, MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, map_errno(self->fd, self->page, PROT_READ, MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, map_errno(self->fd, 2 * len, PROT_READ, MAP_SHARED, 0));
	EXPECT_TRUE(can_map(self));
}

TEST_F(map, mprotect_write_refused)
{
	size_t len = self->info.map_size;
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, len, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(p, self->page, PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_TRUE(msg_intact(self, p));
	ASSERT_EQ(0, munmap(p, len));
}

TEST_F(map, mprotect_exec_refused)
{
	size_t len = self->info.map_size;
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, len, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(p, len, PROT_READ | PROT_WRITE | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	/* Taking access away and giving it back stays within what was granted. */
	EXPECT_EQ(0, mprotect(p, len, PROT_NONE));
	EXPECT_EQ(0, mprotect(p, len, PROT_READ));
	EXPECT_TRUE(msg_intact(self, p));
	ASSERT_EQ(0, munmap(p, len));
}

TEST_F(map, mremap_grow_refused)
{
	size_t len = self->info.map_size;
	void *p, *q;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	q = mremap(p, len, len + self->page, 0);
	EXPECT_EQ(MAP_FAILED, q);
	q = mremap(p, len, len + self->page, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, q);
	if (q != MAP_FAILED)
		p = q;
	EXPECT_TRUE(msg_intact(self, p));
	ASSERT_EQ(0, munmap(p, q != MAP_FAILED ? len + self->page : len));
}

/* Moving the mapping is allowed; it is still the session's one mapping. */
TEST_F(map, mremap_move_keeps_the_mapping)
{
	size_t len = self->info.map_size;
	void *p, *target, *q;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	target = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, target);
	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	ASSERT_EQ(target, q) TH_LOG("mremap move: %s", strerror(errno));
	EXPECT_TRUE(msg_intact(self, q));
	EXPECT_EQ(EBUSY, map_errno(self->fd, len, PROT_READ, MAP_SHARED, 0));
	ASSERT_EQ(0, munmap(q, len));
	EXPECT_TRUE(can_map(self));
}

/* A store after mmap is seen through the mapping: it is the pool's memory. */
TEST_F(map, mapping_shows_later_stores)
{
	size_t len = self->info.map_size;
	unsigned char buf[MT_PAYLOAD];
	struct mmk_guard g;
	uint64_t tok;
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill_pattern(buf, sizeof(buf), 42);
	ASSERT_EQ(0, mmk_store_seq(self->fd, buf, sizeof(buf), 99, &tok));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, tok, &g));
	EXPECT_NE(self->off, g.offset);
	EXPECT_LE(g.offset + self->info.slot_size, len);
	EXPECT_EQ(0U, g.offset % self->info.slot_size);
	EXPECT_EQ(99U, mmk_at(p, g.offset)->sequence);
	EXPECT_EQ((uint32_t)sizeof(buf), mmk_at(p, g.offset)->payload_size);
	EXPECT_EQ(0, memcmp(buf, mmk_payload(p, g.offset), sizeof(buf)));
	ASSERT_EQ(0, mmk_read_release(self->fd, tok));
	ASSERT_EQ(0, munmap(p, len));
}

/* A store through the mapping faults: run it in a child. */
TEST_F(map, write_through_mapping_segfaults)
{
	size_t len = self->info.map_size;
	volatile unsigned char *v;
	void *p;
	pid_t pid;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	v = (volatile unsigned char *)p + self->off + sizeof(struct mmk_msg_header);
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		v[0] = (unsigned char)~v[0];
		_exit(0);
	}
	ASSERT_EQ(128 + SIGSEGV, wait_child(pid));

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The header too, and the last byte of the mapping. */
		((volatile unsigned char *)p)[self->off] = 1;
		((volatile unsigned char *)p)[len - 1] = 1;
		_exit(0);
	}
	ASSERT_EQ(128 + SIGSEGV, wait_child(pid));
	EXPECT_TRUE(msg_intact(self, p));
	ASSERT_EQ(0, munmap(p, len));
}

/* The kernel's own copies to user memory cannot write into it either. */
TEST_F(map, syscall_write_into_mapping_fails)
{
	size_t len = self->info.map_size;
	unsigned char junk[64];
	int pfd[2];
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	memset(junk, 0xa5, sizeof(junk));
	ASSERT_EQ((ssize_t)sizeof(junk), write(pfd[1], junk, sizeof(junk)));
	EXPECT_EQ(-1, read(pfd[0], (char *)p + self->off, sizeof(junk)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_TRUE(msg_intact(self, p));
	close(pfd[0]);
	close(pfd[1]);
	ASSERT_EQ(0, munmap(p, len));
}

/* /proc/self/mem writes with FOLL_FORCE, which must not get through. */
TEST_F(map, proc_self_mem_write_fails)
{
	size_t len = self->info.map_size;
	unsigned char junk[64];
	ssize_t n;
	void *p;
	int mem;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, mem) TH_LOG("open /proc/self/mem: %s", strerror(errno));
	memset(junk, 0x5a, sizeof(junk));
	n = pwrite(mem, junk, sizeof(junk), (off_t)(uintptr_t)((char *)p + self->off));
	EXPECT_EQ(-1, n) TH_LOG("/proc/self/mem wrote %zd bytes into the pool", n);
	n = pwrite(mem, junk, 1, (off_t)(uintptr_t)((char *)p + len - 1));
	EXPECT_EQ(-1, n) TH_LOG("/proc/self/mem wrote %zd bytes into the pool", n);
	EXPECT_TRUE(msg_intact(self, p));
	close(mem);
	ASSERT_EQ(0, munmap(p, len));
}

/* vmsplice must take page references; the pool's pages cannot be pinned. */
TEST_F(map, vmsplice_fails)
{
	size_t len = self->info.map_size;
	struct iovec iov;
	int pfd[2];
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	iov.iov_base = p;
	iov.iov_len = self->page;
	EXPECT_EQ(-1, vmsplice(pfd[1], &iov, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	iov.iov_base = (char *)p + self->off + sizeof(struct mmk_msg_header);
	iov.iov_len = 16;
	EXPECT_EQ(-1, vmsplice(pfd[1], &iov, 1, SPLICE_F_GIFT));
	EXPECT_EQ(EFAULT, errno);
	close(pfd[0]);
	close(pfd[1]);
	ASSERT_EQ(0, munmap(p, len));
}

/* process_vm_readv/writev go through get_user_pages on the target. */
TEST_F(map, process_vm_access_fails)
{
	size_t len = self->info.map_size;
	unsigned char buf[64];
	struct iovec local = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct iovec remote;
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	remote.iov_base = (char *)p + self->off;
	remote.iov_len = sizeof(buf);
	EXPECT_EQ(-1, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	memset(buf, 0x77, sizeof(buf));
	EXPECT_EQ(-1, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_TRUE(msg_intact(self, p));
	ASSERT_EQ(0, munmap(p, len));
}

/*
 * io_uring fixed buffers are the long-term pin (FOLL_LONGTERM): registering
 * ordinary memory works, registering any page of the pool's mapping fails.
 */
TEST_F(map, io_uring_cannot_pin_mapping)
{
	struct io_uring_params params = { 0 };
	size_t len = self->info.map_size;
	struct iovec iov;
	void *p, *buf;
	int ring;

	ring = syscall(__NR_io_uring_setup, 4, &params);
	if (ring < 0 && (errno == ENOSYS || errno == EPERM))
		SKIP(return, "io_uring is not available (%s)", strerror(errno));
	ASSERT_LE(0, ring) TH_LOG("io_uring_setup: %s", strerror(errno));

	/* Control: the same call pins ordinary memory. */
	ASSERT_EQ(0, posix_memalign(&buf, self->page, self->page));
	iov.iov_base = buf;
	iov.iov_len = self->page;
	ASSERT_EQ(0, syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1))
		TH_LOG("registering ordinary memory: %s", strerror(errno));
	ASSERT_EQ(0, syscall(__NR_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, NULL, 0));
	free(buf);

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	iov.iov_base = p;
	iov.iov_len = self->page;
	EXPECT_EQ(-1, syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1));
	EXPECT_EQ(EFAULT, errno);
	close(ring);
	ASSERT_EQ(0, munmap(p, len));
}

TEST_F(map, second_mmap_busy_until_munmap)
{
	size_t len = self->info.map_size;
	void *p, *q;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(EBUSY, map_errno(self->fd, len, PROT_READ, MAP_SHARED, 0));
	/* A wrong request is still wrong, whatever the state. */
	EXPECT_EQ(EPERM, map_errno(self->fd, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0));
	ASSERT_EQ(0, munmap(p, len));

	q = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, q) TH_LOG("mmap after munmap: %s", strerror(errno));
	EXPECT_TRUE(msg_intact(self, q));
	EXPECT_EQ(EBUSY, map_errno(self->fd, len, PROT_READ, MAP_SHARED, 0));
	ASSERT_EQ(0, munmap(q, len));
}

/* Unmapping part of the mapping leaves a mapping of the session. */
TEST_F(map, partial_munmap_keeps_the_mapping)
{
	size_t len = self->info.map_size;
	char *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* The kernel may refuse to split the mapping; either way part remains. */
	if (munmap(p + len - self->page, self->page) == 0)
		EXPECT_TRUE(msg_intact(self, p));
	EXPECT_EQ(EBUSY, map_errno(self->fd, len, PROT_READ, MAP_SHARED, 0));
	ASSERT_EQ(0, munmap(p, len));
	EXPECT_TRUE(can_map(self));
}

/*
 * A process maps a session's arena once.  A forked child inherits the
 * mapping, so it cannot map a second one, but once the parent unmaps its
 * own copy it can map again while the child keeps the inherited one.
 */
TEST_F(map, one_mapping_per_process)
{
	size_t len = self->info.map_size;
	int ready[2], go[2];
	void *p, *q;
	pid_t pid;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		if (!msg_intact(self, p))
			_exit(1);
		/* The inherited mapping is this process's one mapping. */
		if (map_errno(self->fd, len, PROT_READ, MAP_SHARED, 0) != EBUSY)
			_exit(2);
		if (put_byte(ready[1], 'r'))
			_exit(1);
		if (get_byte(go[0]) != 'g')
			_exit(1);
		_exit(msg_intact(self, p) ? 0 : 3);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('r', get_byte(ready[0]));
	EXPECT_EQ(EBUSY, map_errno(self->fd, len, PROT_READ, MAP_SHARED, 0));
	ASSERT_EQ(0, munmap(p, len));
	/* The child still maps it; the parent may map its own again. */
	q = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, q) TH_LOG("mmap while the child maps: %s", strerror(errno));
	EXPECT_TRUE(msg_intact(self, q));
	ASSERT_EQ(0, put_byte(go[1], 'g'));
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, munmap(q, len));
	EXPECT_TRUE(can_map(self));
	close(ready[0]);
	close(go[1]);
}

/* The mapping outlives the fd and still shows the pool's contents. */
TEST_F(map, mapping_outlives_fd)
{
	size_t len = self->info.map_size;
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_TRUE(msg_intact(self, p));
	ASSERT_EQ(0, munmap(p, len));
}

TEST(unbound_session_mmap_enotconn)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = mmk_open();

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", MMK_DEVICE_PATH, strerror(errno));
	EXPECT_EQ(ENOTCONN, map_errno(fd, page, PROT_READ, MAP_SHARED, 0));
	EXPECT_EQ(ENOTCONN, map_errno(fd, 16 * page, PROT_READ, MAP_SHARED, 0));
	close(fd);
}

static void check_zeroed(struct __test_metadata *_metadata, uint32_t payload, uint32_t cap,
			 uint32_t flags)
{
	const unsigned char *p;
	size_t len, i, nonzero = 0;
	int fd;

	fd = mmk_create(NULL, payload, cap, 0600, 0, flags);
	ASSERT_LE(0, fd) TH_LOG("create: %s", strerror(-fd));
	p = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < len; i++)
		nonzero += p[i] != 0;
	EXPECT_EQ(0U, nonzero) TH_LOG("%zu of %zu bytes are not zero", nonzero, len);
	munmap((void *)p, len);
	close(fd);
}

/* A new pool's memory shows nothing of what was there before. */
TEST(fresh_pool_is_zeroed)
{
	check_zeroed(_metadata, 1000, 64, 0);
	check_zeroed(_metadata, 100, 8, MMK_POOL_PAGE_ALIGNED);
	check_zeroed(_metadata, 3 * 4096 + 17, 5, 0);
}

/* A freed and reused pool's memory also starts clean. */
TEST(recreated_pool_is_zeroed)
{
	unsigned char junk[1000];
	uint64_t tok;
	int fd, i;

	memset(junk, 0xff, sizeof(junk));
	fd = mmk_create(NULL, sizeof(junk), 64, 0600, 0, 0);
	ASSERT_LE(0, fd);
	for (i = 0; i < 64; i++)
		ASSERT_EQ(0, mmk_store_seq(fd, junk, sizeof(junk), ~0ULL, &tok));
	close(fd);
	check_zeroed(_metadata, sizeof(junk), 64, 0);
}

/*
 * The module's counters of live pools and arena bytes go up at creation and
 * come back down only when both the fd and the mapping are gone.
 */
TEST(memory_returned_after_close_and_munmap)
{
	unsigned long long bytes0, pools0, bytes, pools;
	struct mmk_pool_info info;
	size_t len;
	void *p;
	int fd;

	ASSERT_EQ(0, read_u64(SYSFS_BYTES, &bytes0));
	ASSERT_EQ(0, read_u64(SYSFS_POOLS, &pools0));

	fd = mmk_create(NULL, 8000, 100, 0600, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &info));
	p = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, p);

	ASSERT_EQ(0, read_u64(SYSFS_BYTES, &bytes));
	ASSERT_EQ(0, read_u64(SYSFS_POOLS, &pools));
	EXPECT_EQ(pools0 + 1, pools);
	EXPECT_LE(bytes0 + (unsigned long long)info.capacity * info.slot_size, bytes);

	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, read_u64(SYSFS_BYTES, &bytes));
	ASSERT_EQ(0, read_u64(SYSFS_POOLS, &pools));
	EXPECT_EQ(pools0 + 1, pools);
	EXPECT_LE(bytes0 + (unsigned long long)info.capacity * info.slot_size, bytes);

	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, read_u64(SYSFS_BYTES, &bytes));
	ASSERT_EQ(0, read_u64(SYSFS_POOLS, &pools));
	EXPECT_EQ(pools0, pools);
	EXPECT_EQ(bytes0, bytes);
}

/* The same when the only holder is a process killed with SIGKILL. */
TEST(memory_returned_when_holder_is_killed)
{
	unsigned long long bytes0, pools0, bytes, pools;
	int ready[2], go[2];
	pid_t pid;

	ASSERT_EQ(0, read_u64(SYSFS_BYTES, &bytes0));
	ASSERT_EQ(0, read_u64(SYSFS_POOLS, &pools0));
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_guard g;
		uint64_t tok;
		size_t len;
		void *p;
		int fd;

		close(ready[0]);
		close(go[1]);
		fd = mmk_create(NULL, 8000, 100, 0600, 0, 0);
		if (fd < 0)
			_exit(1);
		p = mmk_map(fd, &len);
		if (p == MAP_FAILED)
			_exit(1);
		if (mmk_store_seq(fd, "x", 1, 1, &tok) ||
		    mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g))
			_exit(1);
		if (put_byte(ready[1], 'r'))
			_exit(1);
		get_byte(go[0]);
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('r', get_byte(ready[0]));
	ASSERT_EQ(0, read_u64(SYSFS_BYTES, &bytes));
	ASSERT_EQ(0, read_u64(SYSFS_POOLS, &pools));
	EXPECT_EQ(pools0 + 1, pools);
	EXPECT_LT(bytes0, bytes);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(pid));
	ASSERT_EQ(0, read_u64(SYSFS_BYTES, &bytes));
	ASSERT_EQ(0, read_u64(SYSFS_POOLS, &pools));
	EXPECT_EQ(pools0, pools);
	EXPECT_EQ(bytes0, bytes);
	close(ready[0]);
	close(go[1]);
}

TEST_HARNESS_MAIN
