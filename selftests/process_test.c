// SPDX-License-Identifier: GPL-2.0
/*
 * Cross-process rules of /dev/mmk: shared reads by many processes at once,
 * exclusive write guards, guards that follow the open file across fork and
 * fd passing, waiting for a guard, and cleanup when a process dies.
 *
 * Children never use the harness's ASSERT macros: they report through their
 * exit status, and the parent asserts on it.  Processes synchronise through
 * pipes (and, in the concurrency test, counters in shared memory), or by
 * watching a child's state in /proc; never by sleeping for a while.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "kselftest_harness.h"

#define PT_TYPE		0x70726f6365737331ULL
#define PT_PAYLOAD	256
#define PT_SEQ		11
#define PT_NPROC	4

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

static uint64_t fnv1a(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Does the message at offset in map hold exactly this payload and sequence? */
static bool msg_is(const void *map, uint64_t offset, const unsigned char *payload,
		   uint32_t size, uint64_t seq)
{
	const struct mmk_msg_header *h = mmk_at(map, offset);

	return h->payload_size == size && h->sequence == seq &&
	       !memcmp(mmk_payload(map, offset), payload, size);
}

/* Replace a message held under a write guard, and release the guard. */
static int commit(int fd, uint64_t token, const void *payload, uint32_t size, uint64_t seq)
{
	struct mmk_msg_header h = { .sequence = seq, .qos = MMK_QOS_BEST_EFFORT };
	struct mmk_release r = {
		.token = token,
		.flags = MMK_RELEASE_COMMIT,
		.payload_size = size,
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)payload,
	};

	return mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r);
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

static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/*
 * Wait until pid sleeps interruptibly inside ioctl(2), which for the
 * children below means inside an MMK_GUARD_WAIT.  This polls the
 * child's state; it does not guess a duration.  Returns -1 if the child
 * exited instead.
 */
static int wait_blocked_in_ioctl(pid_t pid)
{
	char path[64], buf[512], want[16];
	const char *p;

	snprintf(want, sizeof(want), "%ld ", (long)SYS_ioctl);
	for (;;) {
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_text(path, buf, sizeof(buf)))
			return -1;
		p = strrchr(buf, ')');
		if (!p || p[1] != ' ')
			return -1;
		if (p[2] == 'Z' || p[2] == 'X' || p[2] == 'x')
			return -1;
		if (p[2] == 'S') {
			/* /proc/PID/syscall may be missing; the state is then enough. */
			snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
			if (read_text(path, buf, sizeof(buf)) ||
			    !strncmp(buf, want, strlen(want)))
				return 0;
		}
		usleep(1000);
	}
}

FIXTURE(proc) {
	char name[MMK_NAME_MAX];
	int fd;
	void *map;
	size_t len;
	uint64_t tok;
	uint64_t off;
	unsigned char payload[PT_PAYLOAD];
	unsigned char payload2[PT_PAYLOAD];
};

/*
 * A named pool with a single slot, holding one message, mapped by this
 * process.  One slot means a freed slot is necessarily the one reused.
 */
FIXTURE_SETUP(proc)
{
	struct mmk_guard g;

	snprintf(self->name, sizeof(self->name), "proc-test-%d", getpid());
	fill_pattern(self->payload, sizeof(self->payload), 1);
	fill_pattern(self->payload2, sizeof(self->payload2), 2);
	self->map = MAP_FAILED;
	self->fd = mmk_create(self->name, PT_PAYLOAD, 1, 0600, PT_TYPE, 0);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload, PT_PAYLOAD, PT_SEQ, &self->tok));
	self->map = mmk_map(self->fd, &self->len);
	ASSERT_NE(MAP_FAILED, self->map) TH_LOG("mmap: %s", strerror(errno));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	self->off = g.offset;
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
	ASSERT_TRUE(msg_is(self->map, self->off, self->payload, PT_PAYLOAD, PT_SEQ));
}

FIXTURE_TEARDOWN(proc)
{
	if (self->map != MAP_FAILED)
		munmap(self->map, self->len);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Reader child: take a read guard (through its own session if own), check
 * the bytes in its mapping, report their hash, hold the guard until told to
 * go, check again and release.
 */
static int reader_child(FIXTURE_DATA(proc) *self, int ready_w, int go_r, bool own)
{
	int fd = self->fd;
	void *map = self->map;
	size_t len = self->len;
	struct mmk_guard g;
	uint64_t h;

	if (own) {
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		map = mmk_map(fd, &len);
		CHILD_ASSERT(map != MAP_FAILED);
	}
	CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
	CHILD_EQ(self->off, g.offset);
	CHILD_EQ(PT_PAYLOAD, g.payload_size);
	CHILD_ASSERT(msg_is(map, g.offset, self->payload, PT_PAYLOAD, PT_SEQ));
	h = fnv1a(mmk_payload(map, g.offset), g.payload_size);
	CHILD_EQ(sizeof(h), write(ready_w, &h, sizeof(h)));
	CHILD_EQ('g', get_byte(go_r));
	CHILD_ASSERT(msg_is(map, g.offset, self->payload, PT_PAYLOAD, PT_SEQ));
	CHILD_EQ(0, mmk_read_release(fd, self->tok));
	if (own) {
		CHILD_EQ(0, munmap(map, len));
		CHILD_EQ(0, close(fd));
	}
	return 0;
}

static void shared_read(struct __test_metadata *_metadata, FIXTURE_DATA(proc) *self, bool own)
{
	uint64_t want = fnv1a(self->payload, PT_PAYLOAD), got;
	struct mmk_pool_info info;
	pid_t pids[PT_NPROC];
	int ready[2], go[2];
	struct mmk_guard g;
	int i;

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	for (i = 0; i < PT_NPROC; i++) {
		pids[i] = start_child();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			_exit(reader_child(self, ready[1], go[0], own));
		}
	}
	close(ready[1]);
	close(go[0]);

	/* Every child holds its read guard now. */
	for (i = 0; i < PT_NPROC; i++) {
		ASSERT_EQ(0, read_full(ready[0], &got, sizeof(got)));
		ASSERT_EQ(want, got);
	}
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((unsigned int)(PT_NPROC), info.read_guards);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ((unsigned int)(own ? PT_NPROC + 1 : 1), info.sessions);
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, self->tok));

	/* One more reader, here, while they all hold theirs. */
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	EXPECT_TRUE(msg_is(self->map, g.offset, self->payload, PT_PAYLOAD, PT_SEQ));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((unsigned int)(PT_NPROC + 1), info.read_guards);
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));

	for (i = 0; i < PT_NPROC; i++)
		ASSERT_EQ(0, put_byte(go[1], 'g'));
	close(go[1]);
	for (i = 0; i < PT_NPROC; i++)
		EXPECT_EQ(0, wait_child(pids[i]));
	close(ready[0]);

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(1U, info.sessions);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->tok));
}

/* Several processes, each with its own session and mapping, read at once. */
TEST_F(proc, shared_read_by_attached_processes)
{
	shared_read(_metadata, self, true);
}

/* Forked children share the session and its mapping, and read at once. */
TEST_F(proc, shared_read_by_forked_children)
{
	shared_read(_metadata, self, false);
}

/*
 * A write guard held in this process excludes every guard in another
 * process; the commit is then visible in place in the other's mapping.
 */
TEST_F(proc, write_guard_excludes_other_process)
{
	static const unsigned char short_payload[] = "replaced";
	struct mmk_pool_info info;
	int ready[2], go[2];
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(self->off, g.offset);
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		size_t len;
		void *map;
		int fd;

		close(ready[0]);
		close(go[1]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		map = mmk_map(fd, &len);
		CHILD_ASSERT(map != MAP_FAILED);
		CHILD_EQ(-EBUSY, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
		CHILD_EQ(-EBUSY, mmk_guard(fd, MMK_IOC_READ_MUT, self->tok, &g));
		CHILD_EQ(-EBUSY, mmk_guard(fd, MMK_IOC_PEEK_HEADER, self->tok, &g));
		CHILD_EQ(-ETXTBSY, mmk_free_token(fd, self->tok));
		/* The guard is not this session's to release. */
		CHILD_EQ(-ENOENT, mmk_write_release(fd, self->tok));
		CHILD_EQ(-ENOENT, mmk_read_release(fd, self->tok));
		CHILD_ASSERT(msg_is(map, self->off, self->payload, PT_PAYLOAD, PT_SEQ));
		CHILD_EQ(0, put_byte(ready[1], 'r'));
		CHILD_EQ('g', get_byte(go[0]));
		/* Same mapping as before the commit: the new bytes are in place. */
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
		CHILD_EQ(self->off, g.offset);
		CHILD_EQ(sizeof(short_payload), g.payload_size);
		CHILD_ASSERT(msg_is(map, g.offset, short_payload, sizeof(short_payload),
				    PT_SEQ + 1));
		CHILD_EQ(0, mmk_read_release(fd, self->tok));
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('r', get_byte(ready[0]));
	/* The failed attempts changed nothing. */
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_TRUE(msg_is(self->map, self->off, self->payload, PT_PAYLOAD, PT_SEQ));

	ASSERT_EQ(0, commit(self->fd, self->tok, short_payload, sizeof(short_payload),
			    PT_SEQ + 1));
	EXPECT_TRUE(msg_is(self->map, self->off, short_payload, sizeof(short_payload),
			   PT_SEQ + 1));
	ASSERT_EQ(0, put_byte(go[1], 'g'));
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.read_guards);
	close(ready[0]);
	close(go[1]);
}

/* Read and header guards in another process exclude a writer here. */
TEST_F(proc, readers_in_other_process_exclude_writer)
{
	struct mmk_pool_info info;
	int ready[2], go[2];
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		close(ready[0]);
		close(go[1]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_PEEK_HEADER, self->tok, &g));
		CHILD_EQ(0, put_byte(ready[1], 'r'));
		CHILD_EQ('g', get_byte(go[0]));
		CHILD_EQ(0, mmk_read_release(fd, self->tok));
		CHILD_EQ(0, mmk_read_release(fd, self->tok));
		CHILD_EQ(-ENOENT, mmk_read_release(fd, self->tok));
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('r', get_byte(ready[0]));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(2U, info.read_guards);
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(self->fd, self->tok));
	/* Shared guards still mix. */
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, self->tok, &g));
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));

	ASSERT_EQ(0, put_byte(go[1], 'g'));
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.read_guards);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->tok));
	close(ready[0]);
	close(go[1]);
}

/*
 * A process with its own session dies by SIGKILL holding a write guard:
 * the slot is poisoned for everyone until it is freed, and is then reused.
 */
TEST_F(proc, killed_writer_poisons_slot)
{
	struct mmk_pool_info info;
	int ready[2], go[2];
	struct mmk_guard g;
	uint64_t tok2;
	int other;
	pid_t pid;

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		close(ready[0]);
		close(go[1]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, self->tok, &g));
		CHILD_EQ(0, put_byte(ready[1], 'w'));
		/* Killed here; end of file means the parent gave up. */
		get_byte(go[0]);
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('w', get_byte(ready[0]));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(0U, info.poisoned);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(pid));

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.poisoned);
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, self->tok, &g));

	/* A session that did not exist when the writer died sees it too. */
	other = mmk_attach(self->name, PT_TYPE);
	ASSERT_LE(0, other);
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(other, MMK_IOC_READ, self->tok, &g));

	/* The poisoned slot is still allocated: the one-slot pool is full. */
	EXPECT_EQ(-ENOSPC, mmk_store_seq(self->fd, self->payload2, PT_PAYLOAD, 1, &tok2));

	/* Free recovers it. */
	ASSERT_EQ(0, mmk_free_token(other, self->tok));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(1U, info.available);
	EXPECT_EQ(-ENODATA, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));

	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload2, PT_PAYLOAD, PT_SEQ + 5, &tok2));
	EXPECT_NE(self->tok, tok2);
	ASSERT_EQ(0, mmk_guard(other, MMK_IOC_READ, tok2, &g));
	EXPECT_EQ(self->off, g.offset);
	EXPECT_TRUE(msg_is(self->map, g.offset, self->payload2, PT_PAYLOAD, PT_SEQ + 5));
	ASSERT_EQ(0, mmk_read_release(other, tok2));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, tok2, &g));
	ASSERT_EQ(0, mmk_write_release(self->fd, tok2));
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.poisoned);
	close(other);
	close(ready[0]);
	close(go[1]);
}

/* A process killed while holding read and header guards loses them all. */
TEST_F(proc, killed_reader_releases_guards)
{
	struct mmk_pool_info info;
	int ready[2], go[2];
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		size_t len;
		void *map;
		int fd;

		close(ready[0]);
		close(go[1]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		map = mmk_map(fd, &len);
		CHILD_ASSERT(map != MAP_FAILED);
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_PEEK_HEADER, self->tok, &g));
		CHILD_EQ(0, put_byte(ready[1], 'r'));
		get_byte(go[0]);
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('r', get_byte(ready[0]));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(4U, info.read_guards);
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));

	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(pid));

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(1U, info.sessions);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->tok));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	EXPECT_TRUE(msg_is(self->map, g.offset, self->payload, PT_PAYLOAD, PT_SEQ));
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
	close(ready[0]);
	close(go[1]);
}

/* A forked child shares the session: it can release the parent's read guard. */
TEST_F(proc, fork_child_releases_parent_read_guard)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The inherited mapping shows the message too. */
		CHILD_ASSERT(msg_is(self->map, self->off, self->payload, PT_PAYLOAD, PT_SEQ));
		CHILD_EQ(0, mmk_read_release(self->fd, self->tok));
		CHILD_EQ(-ENOENT, mmk_read_release(self->fd, self->tok));
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(-ENOENT, mmk_read_release(self->fd, self->tok));
}

/*
 * A forked child takes a write guard and exits normally.  The parent still
 * has the session open, so the guard lives on, unpoisoned, and the parent
 * can release it.
 */
TEST_F(proc, fork_child_write_guard_outlives_child)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	int other;
	pid_t pid;

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	other = mmk_attach(self->name, PT_TYPE);
	ASSERT_LE(0, other);
	EXPECT_EQ(-EBUSY, mmk_guard(other, MMK_IOC_READ, self->tok, &g));
	EXPECT_EQ(-ENOENT, mmk_write_release(other, self->tok));

	ASSERT_EQ(0, mmk_write_release(self->fd, self->tok));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	ASSERT_EQ(0, mmk_guard(other, MMK_IOC_READ, self->tok, &g));
	EXPECT_TRUE(msg_is(self->map, g.offset, self->payload, PT_PAYLOAD, PT_SEQ));
	ASSERT_EQ(0, mmk_read_release(other, self->tok));
	close(other);
}

/*
 * Same, but the child is killed: the session is still alive in the parent,
 * so nothing is poisoned, and the parent can commit through the guard.
 */
TEST_F(proc, fork_child_killed_with_write_guard_no_poison)
{
	struct mmk_pool_info info;
	int ready[2], go[2];
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		CHILD_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
		CHILD_EQ(0, put_byte(ready[1], 'w'));
		get_byte(go[0]);
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('w', get_byte(ready[0]));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(pid));

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	ASSERT_EQ(0, commit(self->fd, self->tok, self->payload2, PT_PAYLOAD, PT_SEQ + 1));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	EXPECT_TRUE(msg_is(self->map, g.offset, self->payload2, PT_PAYLOAD, PT_SEQ + 1));
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
	close(ready[0]);
	close(go[1]);
}

/*
 * A session lives until its last fd is closed and its last mapping is
 * unmapped.  A write guard survives close() while mapped, and poisons the
 * slot at munmap().
 */
TEST_F(proc, closed_fd_keeps_write_guard_until_munmap)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	size_t len;
	void *map;
	int fd;

	fd = mmk_attach(self->name, PT_TYPE);
	ASSERT_LE(0, fd);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(0, close(fd));

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	EXPECT_TRUE(msg_is(map, self->off, self->payload, PT_PAYLOAD, PT_SEQ));

	ASSERT_EQ(0, munmap(map, len));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.poisoned);
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	ASSERT_EQ(0, mmk_free_token(self->fd, self->tok));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.poisoned);
}

/* The same with read guards: kept while mapped, dropped (no poison) at munmap. */
TEST_F(proc, closed_fd_keeps_read_guards_until_munmap)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	size_t len;
	void *map;
	int fd;

	fd = mmk_attach(self->name, PT_TYPE);
	ASSERT_LE(0, fd);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_PEEK_HEADER, self->tok, &g));
	ASSERT_EQ(0, close(fd));

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(2U, info.read_guards);
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	EXPECT_TRUE(msg_is(map, self->off, self->payload, PT_PAYLOAD, PT_SEQ));

	ASSERT_EQ(0, munmap(map, len));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.poisoned);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->tok));
}

/*
 * MMK_GUARD_WAIT across processes: the other process sleeps until the write
 * guard here is released, then gets its read guard and the new bytes.
 */
TEST_F(proc, guard_wait_succeeds_after_release)
{
	int ready[2];
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		size_t len;
		void *map;
		int fd;

		close(ready[0]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		map = mmk_map(fd, &len);
		CHILD_ASSERT(map != MAP_FAILED);
		CHILD_EQ(-EBUSY, mmk_guard(fd, MMK_IOC_READ, self->tok, &g));
		CHILD_EQ(0, put_byte(ready[1], 'r'));
		CHILD_EQ(0, guard_wait(fd, MMK_IOC_READ, self->tok, 0, &g));
		CHILD_ASSERT(msg_is(map, g.offset, self->payload2, 100, PT_SEQ + 1));
		CHILD_EQ(0, mmk_read_release(fd, self->tok));
		_exit(0);
	}
	close(ready[1]);
	ASSERT_EQ('r', get_byte(ready[0]));
	ASSERT_EQ(0, wait_blocked_in_ioctl(pid)) TH_LOG("child did not wait for the guard");
	ASSERT_EQ(0, commit(self->fd, self->tok, self->payload2, 100, PT_SEQ + 1));
	EXPECT_EQ(0, wait_child(pid));
	close(ready[0]);
}

/* A waiting writer in another process also gets its turn. */
TEST_F(proc, guard_wait_write_after_readers)
{
	int ready[2];
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, self->tok, &g));
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		close(ready[0]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		CHILD_EQ(0, put_byte(ready[1], 'r'));
		CHILD_EQ(0, guard_wait(fd, MMK_IOC_READ_MUT, self->tok, 0, &g));
		CHILD_EQ(0, commit(fd, self->tok, self->payload2, 50, PT_SEQ + 2));
		_exit(0);
	}
	close(ready[1]);
	ASSERT_EQ('r', get_byte(ready[0]));
	ASSERT_EQ(0, wait_blocked_in_ioctl(pid)) TH_LOG("child did not wait for the guard");
	/* One of two shared guards released: the writer must keep waiting. */
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
	ASSERT_EQ(0, wait_blocked_in_ioctl(pid)) TH_LOG("writer got in while a reader held");
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	EXPECT_TRUE(msg_is(self->map, g.offset, self->payload2, 50, PT_SEQ + 2));
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
	close(ready[0]);
}

/* A wait with a timeout ends with EBUSY while the write guard stays held. */
TEST_F(proc, guard_wait_times_out)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = mmk_attach(self->name, PT_TYPE);

		CHILD_ASSERT(fd >= 0);
		CHILD_EQ(-EBUSY, guard_wait(fd, MMK_IOC_READ, self->tok, 20000000, &g));
		CHILD_EQ(-EBUSY, guard_wait(fd, MMK_IOC_READ_MUT, self->tok, 1000000, &g));
		CHILD_EQ(-EBUSY, guard_wait(fd, MMK_IOC_PEEK_HEADER, self->tok, 1, &g));
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.read_guards);
	ASSERT_EQ(0, mmk_write_release(self->fd, self->tok));
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

/* A signal ends the wait with EINTR (handler installed without SA_RESTART). */
TEST_F(proc, guard_wait_interrupted_by_signal)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	int ready[2];
	struct mmk_guard g;
	pid_t pid;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->tok, &g));
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		close(ready[0]);
		sigemptyset(&sa.sa_mask);
		CHILD_EQ(0, sigaction(SIGUSR1, &sa, NULL));
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		CHILD_EQ(0, put_byte(ready[1], 'r'));
		CHILD_EQ(-EINTR, guard_wait(fd, MMK_IOC_READ, self->tok, 0, &g));
		_exit(0);
	}
	close(ready[1]);
	ASSERT_EQ('r', get_byte(ready[0]));
	ASSERT_EQ(0, wait_blocked_in_ioctl(pid)) TH_LOG("child did not wait for the guard");
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->tok));
	close(ready[0]);
}

/* A waiter is woken when the writer dies, and sees the poison. */
TEST_F(proc, guard_wait_sees_poison_when_writer_dies)
{
	int wready[2], rready[2], wgo[2];
	struct mmk_pool_info info;
	struct mmk_guard g;
	pid_t writer, waiter;

	ASSERT_EQ(0, pipe2(wready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(rready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(wgo, O_CLOEXEC));
	writer = start_child();
	ASSERT_LE(0, writer);
	if (writer == 0) {
		int fd;

		close(wready[0]);
		close(wgo[1]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, self->tok, &g));
		CHILD_EQ(0, put_byte(wready[1], 'w'));
		get_byte(wgo[0]);
		_exit(2);
	}
	close(wready[1]);
	close(wgo[0]);
	ASSERT_EQ('w', get_byte(wready[0]));

	waiter = start_child();
	ASSERT_LE(0, waiter);
	if (waiter == 0) {
		int fd;

		close(rready[0]);
		fd = mmk_attach(self->name, PT_TYPE);
		CHILD_ASSERT(fd >= 0);
		CHILD_EQ(0, put_byte(rready[1], 'r'));
		CHILD_EQ(-EOWNERDEAD, guard_wait(fd, MMK_IOC_READ, self->tok, 0, &g));
		_exit(0);
	}
	close(rready[1]);
	ASSERT_EQ('r', get_byte(rready[0]));
	ASSERT_EQ(0, wait_blocked_in_ioctl(waiter)) TH_LOG("waiter did not wait for the guard");

	ASSERT_EQ(0, kill(writer, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(writer));
	EXPECT_EQ(0, wait_child(waiter));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.poisoned);
	ASSERT_EQ(0, mmk_free_token(self->fd, self->tok));
	close(wready[0]);
	close(rready[0]);
	close(wgo[1]);
}

/*
 * A forked child shares the session; the session, and the child's write
 * guard with it, dies only when the last process holding it goes.
 */
TEST_F(proc, session_shared_by_fork_dies_with_last_process)
{
	struct mmk_pool_info info;
	int ready[2], go[2];
	struct mmk_guard g;
	size_t len;
	void *map;
	pid_t pid;
	int fd;

	fd = mmk_attach(self->name, PT_TYPE);
	ASSERT_LE(0, fd);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, self->tok, &g));
		CHILD_EQ(0, put_byte(ready[1], 'w'));
		get_byte(go[0]);
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('w', get_byte(ready[0]));
	/* This process lets go of the shared session entirely. */
	ASSERT_EQ(0, munmap(map, len));
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(pid));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.sessions);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.poisoned);
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(self->fd, MMK_IOC_READ, self->tok, &g));
	ASSERT_EQ(0, mmk_free_token(self->fd, self->tok));
	close(ready[0]);
	close(go[1]);
}

/*
 * A killed process poisons exactly the slots it held write guards on; its
 * read guards just go, and other sessions' guards stay.
 */
TEST(killed_process_poisons_only_its_write_guards)
{
	unsigned char payload[64];
	struct mmk_pool_info info;
	char name[MMK_NAME_MAX];
	int ready[2], go[2];
	struct mmk_guard g;
	uint64_t tok[4];
	int fd, i;
	pid_t pid;

	snprintf(name, sizeof(name), "proc-test-%d-partial", getpid());
	fd = mmk_create(name, sizeof(payload), 4, 0600, PT_TYPE, 0);
	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++) {
		fill_pattern(payload, sizeof(payload), i);
		ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), i, &tok[i]));
	}
	/* Held here, in another session, across the other process's death. */
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok[2], &g));

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int cfd;

		close(ready[0]);
		close(go[1]);
		cfd = mmk_attach(name, PT_TYPE);
		CHILD_ASSERT(cfd >= 0);
		CHILD_EQ(0, mmk_guard(cfd, MMK_IOC_READ_MUT, tok[0], &g));
		CHILD_EQ(0, mmk_guard(cfd, MMK_IOC_READ_MUT, tok[1], &g));
		CHILD_EQ(0, mmk_guard(cfd, MMK_IOC_READ, tok[2], &g));
		CHILD_EQ(0, mmk_guard(cfd, MMK_IOC_PEEK_HEADER, tok[3], &g));
		CHILD_EQ(0, put_byte(ready[1], 'w'));
		get_byte(go[0]);
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ('w', get_byte(ready[0]));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(2U, info.write_guards);
	EXPECT_EQ(3U, info.read_guards);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, wait_child(pid));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.read_guards);
	EXPECT_EQ(2U, info.poisoned);
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(fd, MMK_IOC_PEEK_HEADER, tok[0], &g));
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(fd, MMK_IOC_READ, tok[1], &g));
	/* Slot 2 still has this session's read guard: no writer yet. */
	EXPECT_EQ(-EBUSY, mmk_guard(fd, MMK_IOC_READ_MUT, tok[2], &g));
	ASSERT_EQ(0, mmk_read_release(fd, tok[2]));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, tok[2], &g));
	ASSERT_EQ(0, mmk_write_release(fd, tok[2]));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, tok[3], &g));
	ASSERT_EQ(0, mmk_write_release(fd, tok[3]));
	ASSERT_EQ(0, mmk_free_token(fd, tok[0]));
	ASSERT_EQ(0, mmk_free_token(fd, tok[1]));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(2U, info.available);
	close(fd);
	close(ready[0]);
	close(go[1]);
}

/*
 * A named pool outlives the process that created it while another process
 * is attached; its name goes with its last session.
 */
TEST(pool_outlives_creator_process)
{
	unsigned char payload[PT_PAYLOAD];
	struct mmk_pool_info info;
	char name[MMK_NAME_MAX];
	int ready[2], go[2];
	struct mmk_guard g;
	size_t len;
	uint64_t tok;
	void *map;
	int fd, fd2;
	pid_t pid;

	snprintf(name, sizeof(name), "proc-test-%d-orphan", getpid());
	fill_pattern(payload, sizeof(payload), 7);
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int cfd;

		close(ready[0]);
		close(go[1]);
		cfd = mmk_create(name, PT_PAYLOAD, 2, 0600, PT_TYPE, 0);
		CHILD_ASSERT(cfd >= 0);
		CHILD_EQ(0, mmk_store_seq(cfd, payload, PT_PAYLOAD, 70, &tok));
		CHILD_EQ(sizeof(tok), write(ready[1], &tok, sizeof(tok)));
		CHILD_EQ('g', get_byte(go[0]));
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ(0, read_full(ready[0], &tok, sizeof(tok)));
	fd = mmk_attach(name, PT_TYPE);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, put_byte(go[1], 'g'));
	ASSERT_EQ(0, wait_child(pid));

	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(1U, info.sessions);
	EXPECT_STREQ(name, info.name);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok, &g));
	EXPECT_TRUE(msg_is(map, g.offset, payload, PT_PAYLOAD, 70));
	ASSERT_EQ(0, mmk_read_release(fd, tok));
	/* Still reachable by name. */
	fd2 = mmk_attach(name, PT_TYPE);
	ASSERT_LE(0, fd2);
	close(fd2);

	/* The last session goes (fd, then mapping): so do the pool and its name. */
	close(fd);
	fd2 = mmk_attach(name, PT_TYPE);
	EXPECT_LE(0, fd2);
	if (fd2 >= 0)
		close(fd2);
	munmap(map, len);
	EXPECT_EQ(-ENOENT, mmk_attach(name, PT_TYPE));
	fd = mmk_create(name, 16, 1, 0600, PT_TYPE + 9, 0);
	ASSERT_LE(0, fd);
	close(fd);
	close(ready[0]);
	close(go[1]);
}

#define TORN_READERS	2
#define TORN_COMMITS	200
#define TORN_PAYLOAD	512

/* Shared between the processes of the test below (MAP_SHARED anonymous). */
struct torn_shared {
	int stop;			/* set by the writer when it is done */
	uint64_t committed;		/* last version the writer committed */
	uint64_t seen;			/* last version a reader saw under a guard */
	int reads[TORN_READERS + 1];	/* successful guards, per reader */
	int versions[TORN_READERS + 1];	/* distinct versions seen, per reader */
};

static int torn_check(const void *map, const struct mmk_guard *g, uint64_t seq)
{
	const struct mmk_msg_header *h = mmk_at(map, g->offset);
	const unsigned char *p = mmk_payload(map, g->offset);
	size_t j;

	CHILD_EQ(seq, h->sequence);
	CHILD_EQ(TORN_PAYLOAD, h->payload_size);
	CHILD_EQ(g->payload_size, h->payload_size);
	for (j = 0; j < TORN_PAYLOAD; j++) {
		if (p[j] != (unsigned char)seq) {
			fprintf(stderr, "# torn: byte %zu is %u under version %llu\n",
				j, p[j], (unsigned long long)seq);
			_exit(1);
		}
	}
	CHILD_EQ(seq, h->sequence);
	return 0;
}

/*
 * Reader: read each new version under a guard.  While still holding the
 * guard it tells the writer, which then asks for the write guard at once;
 * the message must not change before the reader lets go.
 */
static int torn_reader(const char *name, uint64_t tok, struct torn_shared *sh, int id)
{
	uint64_t seq, last = ~0ULL;
	struct mmk_guard g;
	size_t len;
	void *map;
	int fd, i, ret;

	fd = mmk_attach(name, PT_TYPE);
	CHILD_ASSERT(fd >= 0);
	map = mmk_map(fd, &len);
	CHILD_ASSERT(map != MAP_FAILED);
	for (i = 0; !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE); i++) {
		if (last == __atomic_load_n(&sh->committed, __ATOMIC_ACQUIRE)) {
			sched_yield();
			continue;
		}
		ret = mmk_guard(fd, i & 1 ? MMK_IOC_READ : MMK_IOC_PEEK_HEADER, tok, &g);
		if (ret == -EBUSY) {
			sched_yield();
			continue;
		}
		CHILD_EQ(0, ret);
		seq = mmk_at(map, g.offset)->sequence;
		torn_check(map, &g, seq);
		__atomic_store_n(&sh->seen, seq, __ATOMIC_RELEASE);
		sched_yield();
		torn_check(map, &g, seq);
		CHILD_EQ(0, mmk_read_release(fd, tok));
		if (seq != last)
			sh->versions[id]++;
		last = seq;
		__atomic_add_fetch(&sh->reads[id], 1, __ATOMIC_RELEASE);
	}
	return 0;
}

/*
 * Writer: once every reader has read, commit TORN_COMMITS new versions,
 * each as soon as a reader has seen the previous one (usually while that
 * reader still holds its guard), waiting for the write guard each time.
 */
static int torn_writer(const char *name, uint64_t tok, struct torn_shared *sh)
{
	static unsigned char buf[TORN_PAYLOAD];
	struct mmk_guard g;
	uint64_t seq;
	int fd, i;

	fd = mmk_attach(name, PT_TYPE);
	CHILD_ASSERT(fd >= 0);
	for (i = 1; i <= TORN_READERS; i++) {
		while (!__atomic_load_n(&sh->reads[i], __ATOMIC_ACQUIRE))
			sched_yield();
	}
	for (seq = 1; seq <= TORN_COMMITS; seq++) {
		CHILD_EQ(0, guard_wait(fd, MMK_IOC_READ_MUT, tok, 0, &g));
		memset(buf, (unsigned char)seq, sizeof(buf));
		CHILD_EQ(0, commit(fd, tok, buf, sizeof(buf), seq));
		__atomic_store_n(&sh->committed, seq, __ATOMIC_RELEASE);
		while (__atomic_load_n(&sh->seen, __ATOMIC_ACQUIRE) < seq)
			sched_yield();
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Processes read and rewrite one message concurrently: no reader ever sees
 * a message change under its guard, the waiting writer always gets in, and
 * no guard is lost or leaked.
 */
TEST(no_torn_reads_under_concurrent_commits)
{
	static unsigned char payload[TORN_PAYLOAD];
	pid_t pids[TORN_READERS + 1];
	struct mmk_pool_info info;
	char name[MMK_NAME_MAX];
	struct torn_shared *sh;
	struct mmk_guard g;
	uint64_t tok;
	size_t len;
	void *map;
	int fd, i;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	snprintf(name, sizeof(name), "proc-test-%d-torn", getpid());
	fd = mmk_create(name, TORN_PAYLOAD, 1, 0600, PT_TYPE, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 0, &tok));
	for (i = 0; i <= TORN_READERS; i++) {
		pids[i] = start_child();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			_exit(i ? torn_reader(name, tok, sh, i) : torn_writer(name, tok, sh));
	}
	for (i = 0; i <= TORN_READERS; i++)
		EXPECT_EQ(0, wait_child(pids[i])) TH_LOG("%s %d", i ? "reader" : "writer", i);
	for (i = 1; i <= TORN_READERS; i++)
		TH_LOG("reader %d: %d guards, %d versions seen", i, sh->reads[i],
		       sh->versions[i]);
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(1U, info.sessions);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	memset(payload, TORN_COMMITS, sizeof(payload));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok, &g));
	EXPECT_TRUE(msg_is(map, g.offset, payload, TORN_PAYLOAD, TORN_COMMITS));
	ASSERT_EQ(0, mmk_read_release(fd, tok));
	munmap(map, len);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g));
	ASSERT_EQ(0, mmk_write_release(fd, tok));
	munmap(sh, sizeof(*sh));
	close(fd);
}

#define SCM_MSGS 4

struct scm_note {
	uint32_t pool_id;
	uint32_t count;
	uint64_t tokens[SCM_MSGS];
};

static uint32_t scm_size(int i)
{
	return 100 + 50 * i;
}

/* Receives the pool's fd, reads every message, and answers with one of its own. */
static int scm_child(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	unsigned char want[512];
	struct mmk_pool_info info;
	struct scm_note note;
	struct iovec iov = { .iov_base = &note, .iov_len = sizeof(note) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	struct mmk_guard g;
	uint64_t reply;
	size_t len;
	void *map;
	int fd, i;

	CHILD_EQ(sizeof(note), recvmsg(sock, &mh, MSG_CMSG_CLOEXEC));
	cm = CMSG_FIRSTHDR(&mh);
	CHILD_ASSERT(cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS);
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	CHILD_EQ(0, mmk_info(fd, &info));
	CHILD_EQ(note.pool_id, info.pool_id);
	CHILD_EQ(0, info.name[0]);
	CHILD_EQ(1, info.sessions);
	map = mmk_map(fd, &len);
	CHILD_ASSERT(map != MAP_FAILED);
	CHILD_EQ(SCM_MSGS, note.count);
	for (i = 0; i < SCM_MSGS; i++) {
		fill_pattern(want, scm_size(i), 10 + i);
		CHILD_EQ(0, mmk_guard(fd, MMK_IOC_READ, note.tokens[i], &g));
		CHILD_EQ(scm_size(i), g.payload_size);
		CHILD_ASSERT(msg_is(map, g.offset, want, scm_size(i), 1000 + i));
		CHILD_EQ(0, mmk_read_release(fd, note.tokens[i]));
	}
	fill_pattern(want, 77, 99);
	CHILD_EQ(0, mmk_store_seq(fd, want, 77, 2000, &reply));
	CHILD_EQ(sizeof(reply), write(sock, &reply, sizeof(reply)));
	return 0;
}

/*
 * An anonymous pool reaches a process that has no other way to it through
 * SCM_RIGHTS; the receiver reads the messages through its own mapping of
 * the same session, while the sender keeps its own.
 */
TEST(scm_rights_anonymous_pool)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	unsigned char payload[512];
	struct mmk_pool_info info;
	struct scm_note note = { .count = SCM_MSGS };
	struct iovec iov = { .iov_base = &note, .iov_len = sizeof(note) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	struct mmk_guard g;
	uint64_t reply;
	size_t len;
	void *map;
	int sv[2], fd, i;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	/* Forked before the pool exists: the child inherits nothing of it. */
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(sv[0]);
		_exit(scm_child(sv[1]));
	}
	close(sv[1]);

	fd = mmk_create(NULL, 512, 8, 0600, PT_TYPE + 1, 0);
	ASSERT_LE(0, fd);
	/* The sender keeps its mapping: the receiver maps the session too. */
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	for (i = 0; i < SCM_MSGS; i++) {
		fill_pattern(payload, scm_size(i), 10 + i);
		ASSERT_EQ(0, mmk_store_seq(fd, payload, scm_size(i), 1000 + i, &note.tokens[i]));
	}
	ASSERT_EQ(0, mmk_info(fd, &info));
	note.pool_id = info.pool_id;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	ASSERT_EQ((ssize_t)sizeof(note), sendmsg(sv[0], &mh, 0));

	ASSERT_EQ(0, read_full(sv[0], &reply, sizeof(reply)));
	EXPECT_EQ(0, wait_child(pid));

	fill_pattern(payload, 77, 99);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, reply, &g));
	EXPECT_TRUE(msg_is(map, g.offset, payload, 77, 2000));
	ASSERT_EQ(0, mmk_read_release(fd, reply));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ((unsigned int)(SCM_MSGS + 1), info.stores);
	munmap(map, len);
	close(fd);
	close(sv[0]);
}

TEST_HARNESS_MAIN
