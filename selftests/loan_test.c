// SPDX-License-Identifier: GPL-2.0
/*
 * MMK_IOC_LOAN: a free slot under the write guard, written in place (or
 * written back) and published by a committed write release.  Until then no
 * other session sees it; a cancel or the loaner's death gives it back.
 */
#include <setjmp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "mmk_test.h"
#include "mmk_poke.h"

#define PAYLOAD	(4 * 4096)
#define SLOTS	4

static int loan(int fd, struct mmk_loan *l)
{
	memset(l, 0, sizeof(*l));
	return mmk_ioctl(fd, MMK_IOC_LOAN, l);
}

/* Publish what was written in place: COMMIT with no header or payload. */
static int publish_in_place(int fd, uint64_t token)
{
	struct mmk_release r = { .token = token, .flags = MMK_RELEASE_COMMIT };

	return mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r);
}

static char *map_window(int fd, const struct mmk_pool_info *info, uint64_t offset)
{
	return mmap(NULL, info->slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    MMK_WINDOW_OFFSET(offset));
}

FIXTURE(loan) {
	int fd;
	const char *map;
	size_t len;
	struct mmk_pool_info info;
};

FIXTURE_VARIANT(loan) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(loan, page_aligned) {
	.flags = MMK_POOL_PAGE_ALIGNED,
};

FIXTURE_VARIANT_ADD(loan, packed) {
	.flags = 0,
};

FIXTURE_SETUP(loan)
{
	char name[32];

	snprintf(name, sizeof(name), "loan-%d", getpid());
	self->fd = mmk_create(name, PAYLOAD, SLOTS, 0600, 0, variant->flags);
	ASSERT_LE(0, self->fd);
	self->map = mmk_map(self->fd, &self->len);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, mmk_info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(loan)
{
	munmap((void *)self->map, self->len);
	close(self->fd);
}

/* A loan is a write-guarded empty message nobody else can touch. */
TEST_F(loan, hidden_until_published)
{
	struct mmk_msg_header h = { .sequence = 5 };
	char payload[100];
	struct mmk_pool_info info;
	struct mmk_release r;
	struct mmk_guard g;
	struct mmk_loan l;
	int other;

	ASSERT_EQ(0, loan(self->fd, &l));
	EXPECT_NE(MMK_TOKEN_INVALID, l.token);
	EXPECT_EQ(0U, l.offset % self->info.slot_size);
	EXPECT_EQ(0U, mmk_at(self->map, l.offset)->payload_size);
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(SLOTS - 1U, info.available);
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.stores);

	other = mmk_attach(self->info.name, 0);
	ASSERT_LE(0, other);
	EXPECT_EQ(-EBUSY, mmk_guard(other, MMK_IOC_READ, l.token, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(other, MMK_IOC_PEEK_HEADER, l.token, &g));
	EXPECT_EQ(-EBUSY, mmk_guard(other, MMK_IOC_READ_MUT, l.token, &g));
	EXPECT_EQ(-ETXTBSY, mmk_free_token(other, l.token));
	EXPECT_EQ(-ENOENT, mmk_write_release(other, l.token));
	/* Its own session cannot read it either: the guard is exclusive. */
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ, l.token, &g));

	/* Publish by write-back, as any write guard. */
	memset(payload, 0x42, sizeof(payload));
	r = (struct mmk_release){
		.token = l.token,
		.flags = MMK_RELEASE_COMMIT,
		.payload_size = sizeof(payload),
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)payload,
	};
	ASSERT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &r));
	ASSERT_EQ(0, mmk_guard(other, MMK_IOC_READ, l.token, &g));
	EXPECT_EQ(l.offset, g.offset);
	EXPECT_EQ(sizeof(payload), g.payload_size);
	EXPECT_EQ(5U, mmk_at(self->map, g.offset)->sequence);
	EXPECT_EQ(0x42, mmk_payload(self->map, g.offset)[99]);
	EXPECT_EQ(0, mmk_read_release(other, l.token));

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.stores);
	EXPECT_EQ(0, mmk_free_token(other, l.token));
	close(other);
}

/* A release without COMMIT cancels: slot back, token stale, no store. */
TEST_F(loan, cancel)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	struct mmk_loan l, l2;
	uint64_t t;

	ASSERT_EQ(0, loan(self->fd, &l));
	ASSERT_EQ(0, mmk_write_release(self->fd, l.token));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(0U, info.stores);
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, l.token, &g));
	EXPECT_EQ(-EBADSLT, mmk_free_token(self->fd, l.token));
	EXPECT_EQ(-EBADSLT, mmk_write_release(self->fd, l.token));

	/* The slot is reused at a newer generation. */
	ASSERT_EQ(0, loan(self->fd, &l2));
	EXPECT_EQ(l.offset, l2.offset);
	EXPECT_NE(l.token, l2.token);
	ASSERT_EQ(0, mmk_write_release(self->fd, l2.token));
	ASSERT_EQ(0, mmk_store_seq(self->fd, "x", 1, 0, &t));
	EXPECT_NE(l2.token, t);
	EXPECT_EQ(0, mmk_free_token(self->fd, t));
}

/* Closing the session that holds a loan gives the slot back unpoisoned. */
TEST_F(loan, close_gives_back)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	struct mmk_loan l;
	int other = mmk_attach(self->info.name, 0);

	ASSERT_LE(0, other);
	ASSERT_EQ(0, loan(other, &l));
	close(other);
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, l.token, &g));
}

/* Pool full: ENOSPC, counted like a refused store. */
TEST_F(loan, full_pool)
{
	struct mmk_pool_info info;
	struct mmk_loan l[SLOTS], extra;
	int i;

	for (i = 0; i < SLOTS; i++)
		ASSERT_EQ(0, loan(self->fd, &l[i]));
	EXPECT_EQ(-ENOSPC, loan(self->fd, &extra));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.available);
	EXPECT_EQ(1U, info.no_free_slots);
	EXPECT_EQ((uint32_t)SLOTS, info.write_guards);
	for (i = 0; i < SLOTS; i++) {
		EXPECT_EQ(0, mmk_write_release(self->fd, l[i].token));
	}
}

/* Flags, reserved fields and struct sizes are checked. */
TEST_F(loan, bad_arguments)
{
	struct {
		struct mmk_loan l;
		uint64_t tail;
	} big;
	struct mmk_loan l = { .flags = 1 };
	struct mmk_pool_info info;
	int fd2;
	unsigned long cmd_big = _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC,
				     _IOC_NR(MMK_IOC_LOAN), sizeof(big));

	memset(&big, 0, sizeof(big));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_LOAN, &l));
	l = (struct mmk_loan){ .__reserved = 1 };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_LOAN, &l));
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC,
						     _IOC_NR(MMK_IOC_LOAN),
						     sizeof(struct mmk_loan) - 8), &l));
	big.tail = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, cmd_big, &big));
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, MMK_IOC_LOAN, (void *)8));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((uint32_t)SLOTS, info.available);

	/* A larger struct with a zero tail works, and the tail stays zero. */
	big.tail = 0;
	ASSERT_EQ(0, mmk_ioctl(self->fd, cmd_big, &big));
	EXPECT_EQ(0U, big.tail);
	EXPECT_EQ(0, mmk_write_release(self->fd, big.l.token));

	/* Not bound. */
	fd2 = mmk_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-ENOTCONN, loan(fd2, &l));
	close(fd2);
}

/* A loan whose token cannot be written back does not stay taken. */
TEST_F(loan, read_only_struct_cancels)
{
	struct mmk_pool_info info;
	struct mmk_loan *l;

	l = mmap(NULL, getpagesize(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, l);
	EXPECT_EQ(-EFAULT, mmk_ioctl(self->fd, MMK_IOC_LOAN, l));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(0U, info.write_guards);
	munmap(l, getpagesize());
}

/* Write in place through the window, publish, another process reads it. */
TEST_F(loan, window_publish_read_by_other_process)
{
	struct mmk_msg_header *h;
	struct mmk_loan l;
	int status;
	pid_t pid;
	char *w;

	if (!(self->info.flags & MMK_POOL_PAGE_ALIGNED))
		SKIP(return, "windows need a page-aligned pool");
	ASSERT_EQ(0, loan(self->fd, &l));
	w = map_window(self->fd, &self->info, l.offset);
	ASSERT_NE(MAP_FAILED, w);
	h = (struct mmk_msg_header *)w;
	EXPECT_EQ(0U, h->sequence);
	h->sequence = 99;
	h->payload_size = PAYLOAD;
	memset(w + sizeof(*h), 0x5a, PAYLOAD);
	ASSERT_EQ(0, publish_in_place(self->fd, l.token));
	EXPECT_EQ(SIGBUS, poke(w + 10, 1));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = mmk_attach(self->info.name, 0);
		const char *map;
		struct mmk_guard g;
		size_t len, i;
		const unsigned char *p;

		if (fd < 0 || mmk_guard(fd, MMK_IOC_READ, l.token, &g))
			_exit(1);
		map = mmk_map(fd, &len);
		if (map == MAP_FAILED || g.payload_size != PAYLOAD ||
		    mmk_at(map, g.offset)->sequence != 99)
			_exit(2);
		p = mmk_payload(map, g.offset);
		for (i = 0; i < PAYLOAD; i++)
			if (p[i] != 0x5a)
				_exit(3);
		_exit(mmk_read_release(fd, l.token) ? 4 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, mmk_free_token(self->fd, l.token));
	munmap(w, self->info.slot_size);
}

/* A cancelled window loan: window dead, slot free, nothing published. */
TEST_F(loan, window_cancel)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	struct mmk_loan l;
	char *w;

	if (!(self->info.flags & MMK_POOL_PAGE_ALIGNED))
		SKIP(return, "windows need a page-aligned pool");
	ASSERT_EQ(0, loan(self->fd, &l));
	w = map_window(self->fd, &self->info, l.offset);
	ASSERT_NE(MAP_FAILED, w);
	((struct mmk_msg_header *)w)->flags = 0x80;	/* would be refused */
	ASSERT_EQ(0, mmk_write_release(self->fd, l.token));
	EXPECT_EQ(SIGBUS, poke(w + 10, 1));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(0U, info.stores);
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, l.token, &g));
	munmap(w, self->info.slot_size);
}

/*
 * The window exists only under a guard: no mapping without one, SIGBUS
 * after release, and a kept VMA works again under the next loan.
 */
TEST_F(loan, window_needs_guard)
{
	struct mmk_msg_header *h;
	struct mmk_loan l, l2;
	char *w;

	if (!(self->info.flags & MMK_POOL_PAGE_ALIGNED))
		SKIP(return, "windows need a page-aligned pool");
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(self->fd, &self->info, 0));
	EXPECT_EQ(EACCES, errno);

	ASSERT_EQ(0, loan(self->fd, &l));
	w = map_window(self->fd, &self->info, l.offset);
	ASSERT_NE(MAP_FAILED, w);
	h = (struct mmk_msg_header *)w;
	h->payload_size = 1;
	ASSERT_EQ(0, publish_in_place(self->fd, l.token));
	EXPECT_EQ(SIGBUS, poke(w + self->info.slot_size - 1, 1));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(self->fd, &self->info, l.offset));
	EXPECT_EQ(EACCES, errno);
	ASSERT_EQ(0, mmk_free_token(self->fd, l.token));

	/* The same slot comes back first; the kept VMA works again. */
	ASSERT_EQ(0, loan(self->fd, &l2));
	ASSERT_EQ(l.offset, l2.offset);
	EXPECT_EQ(0, poke(w + self->info.slot_size - 1, 7));
	EXPECT_EQ(0U, h->payload_size);	/* a loan starts with a zeroed header */
	h->payload_size = PAYLOAD;
	ASSERT_EQ(0, publish_in_place(self->fd, l2.token));
	EXPECT_EQ(7, self->map[l2.offset + self->info.slot_size - 1]);
	EXPECT_EQ(SIGBUS, poke(w, 1));
	EXPECT_EQ(0, mmk_free_token(self->fd, l2.token));
	munmap(w, self->info.slot_size);
}

/* The first fault maps the whole slot: far fewer faults than pages. */
TEST_F(loan, window_fault_maps_whole_slot)
{
	size_t page = getpagesize(), pages = self->info.slot_size / page, i;
	struct rusage before, after;
	struct mmk_loan l;
	char *w;

	if (!(self->info.flags & MMK_POOL_PAGE_ALIGNED))
		SKIP(return, "windows need a page-aligned pool");
	ASSERT_LE(4U, pages);
	ASSERT_EQ(0, loan(self->fd, &l));
	w = map_window(self->fd, &self->info, l.offset);
	ASSERT_NE(MAP_FAILED, w);
	ASSERT_EQ(0, getrusage(RUSAGE_SELF, &before));
	for (i = 0; i < pages; i++)
		w[i * page] = 1;
	ASSERT_EQ(0, getrusage(RUSAGE_SELF, &after));
	EXPECT_GT(pages, (size_t)(after.ru_minflt - before.ru_minflt));
	ASSERT_EQ(0, mmk_write_release(self->fd, l.token));
	munmap(w, self->info.slot_size);
}

/* A loaning process that dies: slot free, not poisoned, its window gone. */
TEST_F(loan, death_gives_back)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	int ready[2], status;
	uint64_t token;
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* A session of its own, which dies with the child. */
		int cfd = mmk_attach(self->info.name, 0);
		struct mmk_loan l;
		char *w;

		if (cfd < 0 || loan(cfd, &l))
			_exit(1);
		if (self->info.flags & MMK_POOL_PAGE_ALIGNED) {
			w = map_window(cfd, &self->info, l.offset);
			if (w == MAP_FAILED)
				_exit(2);
			memset(w, 0x77, 64);
		}
		if (write(ready[1], &l.token, sizeof(l.token)) != sizeof(l.token))
			_exit(3);
		pause();
		_exit(4);
	}
	close(ready[1]);
	ASSERT_EQ((ssize_t)sizeof(token), read(ready[0], &token, sizeof(token)));
	close(ready[0]);
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(1U, info.write_guards);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ((uint32_t)SLOTS, info.available);
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(0U, info.stores);
	EXPECT_EQ(-EBADSLT, mmk_guard(self->fd, MMK_IOC_READ, token, &g));
	/* The session is gone with its windows: only this one is left. */
	EXPECT_EQ(1U, info.sessions);
}

TEST_HARNESS_MAIN
