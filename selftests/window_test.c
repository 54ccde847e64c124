// SPDX-License-Identifier: GPL-2.0
/*
 * Writable windows: in-place writes under a write guard, in page-aligned
 * pools.  The window must exist only while the guard is held.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "mmk_test.h"
#include "mmk_poke.h"
#include "mmk_stall.h"

#define PAYLOAD	5000
#define SLOTS	4

FIXTURE(window) {
	int fd;
	const char *map;
	size_t len;
	struct mmk_pool_info info;
	uint64_t token;
	uint64_t offset;
};

FIXTURE_SETUP(window)
{
	char payload[PAYLOAD];
	struct mmk_guard g;

	self->fd = mmk_create(NULL, PAYLOAD, SLOTS, 0600, 0, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, self->fd);
	self->map = mmk_map(self->fd, &self->len);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, mmk_info(self->fd, &self->info));
	ASSERT_EQ(0U, self->info.slot_size % getpagesize());

	memset(payload, 0x11, sizeof(payload));
	ASSERT_EQ(0, mmk_store_seq(self->fd, payload, 100, 1, &self->token));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, self->token, &g));
	self->offset = g.offset;
	ASSERT_EQ(0, mmk_read_release(self->fd, self->token));
}

FIXTURE_TEARDOWN(window)
{
	munmap((void *)self->map, self->len);
	close(self->fd);
}

static char *map_window(int fd, const struct mmk_pool_info *info, uint64_t offset, int prot)
{
	return mmap(NULL, info->slot_size, prot, MAP_SHARED, fd,
		    MMK_WINDOW_OFFSET(offset));
}

/* Without the write guard there is no window; a read guard is not enough. */
TEST_F(window, refused_without_write_guard)
{
	struct mmk_guard g;

	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(self->fd, &self->info, self->offset,
					 PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->token, &g));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(self->fd, &self->info, self->offset,
					 PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, mmk_read_release(self->fd, self->token));
}

/* Another session's write guard does not open a window for this one. */
TEST_F(window, refused_to_other_session)
{
	struct mmk_guard g;
	int fd2 = mmk_open();

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	/* The same pool through an inherited fd would share the session. */
	close(fd2);
	fd2 = mmk_create(NULL, PAYLOAD, SLOTS, 0600, 0, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd2);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(fd2, &self->info, self->offset, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);	/* offsets are the session's own: no guard there */
	close(fd2);
	EXPECT_EQ(0, mmk_write_release(self->fd, self->token));
}

/* Bad shapes: another slot, wrong length, PROT_EXEC, private, unaligned pool. */
TEST_F(window, bad_requests)
{
	struct mmk_pool_info info2;
	char b[100] = { 0 };
	struct mmk_guard g;
	uint64_t t;
	void *p;
	int fd2;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));

	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(self->fd, &self->info,
					 self->offset + self->info.slot_size,
					 PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);

	errno = 0;
	p = mmap(NULL, self->info.slot_size * 2, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 MMK_WINDOW_OFFSET(self->offset));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);

	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(self->fd, &self->info, self->offset,
					 PROT_READ | PROT_WRITE | PROT_EXEC));
	EXPECT_EQ(EPERM, errno);

	errno = 0;
	p = mmap(NULL, self->info.slot_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd,
		 MMK_WINDOW_OFFSET(self->offset));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);

	errno = 0;
	EXPECT_EQ(MAP_FAILED, map_window(self->fd, &self->info, self->offset + 64,
					 PROT_READ | PROT_WRITE));
	EXPECT_EQ(EINVAL, errno);

	EXPECT_EQ(0, mmk_write_release(self->fd, self->token));

	/* A pool without MMK_POOL_PAGE_ALIGNED has no windows. */
	fd2 = mmk_create(NULL, sizeof(b), 4, 0600, 0, 0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mmk_info(fd2, &info2));
	ASSERT_EQ(0, mmk_store_seq(fd2, b, sizeof(b), 0, &t));
	ASSERT_EQ(0, mmk_guard(fd2, MMK_IOC_READ_MUT, t, &g));
	errno = 0;
	p = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE, MAP_SHARED, fd2,
		 MMK_WINDOW_OFFSET(0));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, mmk_write_release(fd2, t));
	close(fd2);
}

/* Write in place; after release readers see it, and the window is dead. */
TEST_F(window, write_in_place_then_dies)
{
	struct mmk_msg_header *h;
	struct mmk_guard g;
	char *w;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	w = map_window(self->fd, &self->info, g.offset, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, w);
	h = (struct mmk_msg_header *)w;
	EXPECT_EQ(1U, h->sequence);
	h->sequence = 77;
	h->payload_size = 4000;
	memset(w + sizeof(*h), 0xab, 4000);
	ASSERT_EQ(0, mmk_write_release(self->fd, self->token));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->token, &g));
	EXPECT_EQ(4000U, g.payload_size);
	EXPECT_EQ(77U, mmk_at(self->map, g.offset)->sequence);
	EXPECT_EQ(4000U, mmk_at(self->map, g.offset)->payload_size);
	EXPECT_EQ(0xabU, mmk_payload(self->map, g.offset)[3999]);

	/* The guard is gone: the window's pages are gone with it. */
	EXPECT_EQ(SIGBUS, poke(w + 100, 1));
	EXPECT_EQ(0xabU, mmk_payload(self->map, g.offset)[100 - sizeof(*h)]);
	EXPECT_EQ(0, mmk_read_release(self->fd, self->token));

	/* The same VMA works again under a new guard, and dies again. */
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	EXPECT_EQ(0, poke(w + 100, 2));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->token));
	EXPECT_EQ(SIGBUS, poke(w + 100, 3));
	munmap(w, self->info.slot_size);
}

/* After a partial munmap, the rest of the window still maps its own page. */
TEST_F(window, split_window_maps_right_page)
{
	size_t page = getpagesize();
	struct mmk_guard g;
	char *w;

	ASSERT_LE(2 * page, self->info.slot_size);
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	w = map_window(self->fd, &self->info, g.offset, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, w);
	ASSERT_EQ(0, munmap(w, page));
	EXPECT_EQ(0, poke(w + page + 10, 0x5c));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->token));
	EXPECT_EQ(0x5c, self->map[g.offset + page + 10]);
	EXPECT_NE(0x5c, self->map[g.offset + 10]);
	munmap(w + page, self->info.slot_size - page);
}

/* A bad header left in the slot is refused and the guard kept. */
TEST_F(window, bad_header_keeps_guard)
{
	struct mmk_pool_info info;
	struct mmk_msg_header *h;
	struct mmk_guard g;
	char *w;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	w = map_window(self->fd, &self->info, g.offset, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, w);
	h = (struct mmk_msg_header *)w;

	h->flags = 0x80;
	EXPECT_EQ(-EINVAL, mmk_write_release(self->fd, self->token));
	/* Still held: the window still works and readers are still excluded. */
	EXPECT_EQ(0, poke(w + 200, 5));
	EXPECT_EQ(-EBUSY, mmk_guard(self->fd, MMK_IOC_READ, self->token, &g));

	h->flags = 0;
	h->payload_size = PAYLOAD + 1;
	EXPECT_EQ(-EMSGSIZE, mmk_write_release(self->fd, self->token));

	h->payload_size = 10;
	h->memory_class = 99;		/* the kernel owns it: overwritten */
	h->qos = 0;			/* normalised to best-effort */
	EXPECT_EQ(0, mmk_write_release(self->fd, self->token));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, self->token, &g));
	EXPECT_EQ(10U, g.payload_size);
	EXPECT_EQ((unsigned)MMK_MEM_HOST, mmk_at(self->map, g.offset)->memory_class);
	EXPECT_EQ((unsigned)MMK_QOS_BEST_EFFORT, mmk_at(self->map, g.offset)->qos);
	EXPECT_EQ(0, mmk_read_release(self->fd, self->token));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	munmap(w, self->info.slot_size);
}

/* A forked child does not inherit the window. */
TEST_F(window, not_inherited_by_fork)
{
	struct mmk_guard g;
	int status;
	pid_t pid;
	char *w;

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	w = map_window(self->fd, &self->info, g.offset, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, w);
	w[100] = 9;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(poke(w + 100, 1) == SIGSEGV ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, mmk_write_release(self->fd, self->token));
	munmap(w, self->info.slot_size);
}

/* The arena window: every slot in one mapping, offset 0, map_size bytes. */
static char *map_arena(int fd, const struct mmk_pool_info *info)
{
	return mmap(NULL, info->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    MMK_WINDOW_OFFSET(0));
}

/* It maps without a guard, but each slot in it works only under its write guard. */
TEST_F(window, arena_slot_only_under_guard)
{
	struct mmk_guard g;
	uint32_t i;
	char *a;

	a = map_arena(self->fd, &self->info);
	ASSERT_NE(MAP_FAILED, a);
	for (i = 0; i < self->info.capacity; i++)
		EXPECT_EQ(SIGBUS, poke(a + (size_t)i * self->info.slot_size + 100, 1));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, self->token, &g));
	EXPECT_EQ(SIGBUS, poke(a + g.offset + 100, 1));
	ASSERT_EQ(0, mmk_read_release(self->fd, self->token));

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, self->token, &g));
	EXPECT_EQ(0, poke(a + g.offset + sizeof(struct mmk_msg_header), 0x42));
	for (i = 0; i < self->info.capacity; i++)
		if ((uint64_t)i * self->info.slot_size != g.offset)
			EXPECT_EQ(SIGBUS, poke(a + (size_t)i * self->info.slot_size + 100, 1));
	ASSERT_EQ(0, mmk_write_release(self->fd, self->token));
	EXPECT_EQ(SIGBUS, poke(a + g.offset + 100, 1));
	EXPECT_EQ(0x42, mmk_payload(self->map, g.offset)[0]);
	munmap(a, self->info.map_size);
}

/* Shapes of an arena window that are refused: one row each. */
TEST_F(window, arena_bad_shapes)
{
	const size_t slot = self->info.slot_size, all = self->info.map_size;
	static const struct {
		const char *why;
		int at_slot, flags, prot, err;
		int len_slots, len_extra_pages;	/* length: slots, or all + pages */
	} rows[] = {
		{ "two slots at 0", 0, MAP_SHARED, PROT_READ | PROT_WRITE, EINVAL, 2, 0 },
		{ "the arena and a page", 0, MAP_SHARED, PROT_READ | PROT_WRITE, EINVAL, 0, 1 },
		{ "the arena from slot 1", 1, MAP_SHARED, PROT_READ | PROT_WRITE, EINVAL, 0, 0 },
		{ "private", 0, MAP_PRIVATE, PROT_READ | PROT_WRITE, EINVAL, 0, 0 },
		{ "executable", 0, MAP_SHARED, PROT_READ | PROT_WRITE | PROT_EXEC, EPERM, 0, 0 },
	};
	size_t k, len;
	void *p;

	ASSERT_LT(2 * slot, all);
	for (k = 0; k < ARRAY_SIZE(rows); k++) {
		len = rows[k].len_slots ? rows[k].len_slots * slot :
		      all + rows[k].len_extra_pages * getpagesize();
		errno = 0;
		p = mmap(NULL, len, rows[k].prot, rows[k].flags, self->fd,
			 MMK_WINDOW_OFFSET(rows[k].at_slot * slot));
		EXPECT_EQ(MAP_FAILED, p) TH_LOG("%s", rows[k].why);
		EXPECT_EQ(rows[k].err, errno) TH_LOG("%s", rows[k].why);
		if (p != MAP_FAILED)
			munmap(p, len);
	}
}

/* Loans written through the arena window, for a batch of commits. */
static void arena_loans(struct __test_metadata *_metadata, int fd, char *a,
			struct mmk_batch_entry *ops, int n)
{
	struct mmk_msg_header *h;
	int i;

	for (i = 0; i < n; i++) {
		struct mmk_loan l = { 0 };

		ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_LOAN, &l));
		h = (struct mmk_msg_header *)(a + l.offset);
		h->sequence = 500 + i;
		h->payload_size = 1000 + i;
		memset(h + 1, 0x60 + i, 1000 + i);
		memset(&ops[i], 0, sizeof(ops[i]));
		ops[i].op = MMK_BATCH_WRITE_RELEASE;
		ops[i].flags = MMK_RELEASE_COMMIT;
		ops[i].token = l.token;
		ops[i].offset = l.offset;
	}
}

/*
 * A batch of commits through the arena window zaps their windows in one
 * pass.  If it stops at a bad header, the guards it did not commit are
 * the session's again, their windows working; a second batch (a write
 * release and a commit-and-push) finishes them.
 */
TEST_F(window, arena_batch_commits)
{
	struct mmk_batch_entry ops[3], saved[3];
	struct mmk_batch b = { .ops = (uintptr_t)ops, .count = 3 };
	struct mmk_pool_info info;
	struct mmk_popped e;
	struct mmk_guard g;
	int i, qfd;
	char *a;

	a = map_arena(self->fd, &self->info);
	ASSERT_NE(MAP_FAILED, a);
	qfd = mmk_queue_create(self->fd, "arena-q", MMK_QUEUE_REJECT, 4, 0);
	ASSERT_LE(0, qfd);
	arena_loans(_metadata, self->fd, a, ops, 3);
	memcpy(saved, ops, sizeof(ops));
	for (i = 0; i < 3; i++)
		ops[i].offset = 0;
	((struct mmk_msg_header *)(a + saved[1].offset))->flags = 0x80;	/* bad */

	ASSERT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_BATCH, &b));
	EXPECT_EQ(1U, b.done);
	EXPECT_EQ(0, ops[0].result);
	EXPECT_EQ(-EINVAL, ops[1].result);
	EXPECT_EQ(SIGBUS, poke(a + saved[0].offset + 100, 1));
	EXPECT_EQ(0, poke(a + saved[1].offset + 100, 0x61));
	EXPECT_EQ(0, poke(a + saved[2].offset + 100, 0x62));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(2U, info.write_guards);

	((struct mmk_msg_header *)(a + saved[1].offset))->flags = 0;
	memcpy(ops, saved + 1, 2 * sizeof(ops[0]));
	ops[0].offset = ops[1].offset = 0;
	ops[1].op = MMK_BATCH_COMMIT_PUSH;
	ops[1].flags = 0;
	ops[1].queue_fd = qfd;
	b.count = 2;
	ASSERT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_BATCH, &b));
	EXPECT_EQ(2U, b.done);
	EXPECT_EQ(0, ops[0].result);
	EXPECT_EQ(0, ops[1].result);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(SIGBUS, poke(a + saved[i].offset + 100, 1));
		ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, saved[i].token, &g));
		EXPECT_EQ(1000U + i, g.payload_size);
		EXPECT_EQ(500U + i, mmk_at(self->map, g.offset)->sequence);
		EXPECT_EQ(0x60 + i, mmk_payload(self->map, g.offset)[999]);
		EXPECT_EQ(0, mmk_read_release(self->fd, saved[i].token));
	}
	ASSERT_EQ(0, mmk_pop1(self->fd, qfd, 0, &e));
	EXPECT_EQ(saved[2].token, e.token);
	EXPECT_EQ(0, mmk_read_release(self->fd, e.token));
	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	close(qfd);
	munmap(a, self->info.map_size);
}

struct batch_call {
	int fd;
	struct mmk_batch_entry *ops;
	uint32_t n, done;
	int ret;
};

static void *batch_call_run(void *arg)
{
	struct batch_call *bc = arg;
	struct mmk_batch b = { .ops = (uintptr_t)bc->ops, .count = bc->n };

	bc->ret = mmk_ioctl(bc->fd, MMK_IOC_BATCH, &b);
	bc->done = b.done;
	return NULL;
}

#define STALL_RUN	9	/* commits: eight on one page, the ninth stalled */

/* A write release that publishes what was written in place. */
static int commit_in_place(int fd, uint64_t token)
{
	struct mmk_release r = { .token = token, .flags = MMK_RELEASE_COMMIT };

	return mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r);
}

/*
 * A batch marks the guards of its run of commits before it zaps their
 * windows, and reads that run from user memory.  Stalled there (its
 * ninth op on a userfaultfd page), another thread releases one of those
 * guards: that release zaps the window before it returns, so the writer
 * cannot change the message it published.  The batch then finds the
 * guard gone, stops, and hands the others back.
 */
TEST(arena_release_while_a_batch_stalls)
{
	struct mmk_batch_entry *ops, tail[4096 / sizeof(struct mmk_batch_entry)];
	struct batch_call bc = { .n = STALL_RUN };
	uint64_t off[STALL_RUN];
	struct mmk_pool_info info;
	struct mmk_guard g;
	struct stall st;
	const char *map;
	pthread_t thr;
	size_t len;
	char *a;
	int i, ret;

	ret = stall_open(&st);
	if (ret)
		SKIP(return, "no userfaultfd here: %s", strerror(-ret));
	ASSERT_EQ(sizeof(tail), st.len);
	bc.fd = mmk_create(NULL, 100, STALL_RUN, 0600, 0, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, bc.fd);
	ASSERT_EQ(0, mmk_info(bc.fd, &info));
	map = mmk_map(bc.fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	a = map_arena(bc.fd, &info);
	ASSERT_NE(MAP_FAILED, a);

	/* Eight ops at the end of the first page, the ninth on the stalled one. */
	ops = (struct mmk_batch_entry *)st.page - (STALL_RUN - 1);
	bc.ops = ops;
	memset(tail, 0, sizeof(tail));
	for (i = 0; i < STALL_RUN; i++) {
		struct mmk_batch_entry *e = i < STALL_RUN - 1 ? &ops[i] : &tail[0];
		struct mmk_loan l = { 0 };
		struct mmk_msg_header *h;

		ASSERT_EQ(0, mmk_ioctl(bc.fd, MMK_IOC_LOAN, &l));
		off[i] = l.offset;
		h = (struct mmk_msg_header *)(a + l.offset);
		h->sequence = 700 + i;
		h->payload_size = 10;
		memset(h + 1, 0x30 + i, 10);
		memset(e, 0, sizeof(*e));
		e->op = MMK_BATCH_WRITE_RELEASE;
		e->flags = MMK_RELEASE_COMMIT;
		e->token = l.token;
	}
	ASSERT_EQ(0, pthread_create(&thr, NULL, batch_call_run, &bc));
	ASSERT_EQ(0, stall_wait(&st, 10000));

	/* The batch has marked the first eight; release the first from here. */
	ASSERT_EQ(0, commit_in_place(bc.fd, ops[0].token));
	EXPECT_EQ(SIGBUS, poke(a + off[0] + sizeof(struct mmk_msg_header), 0x7f));
	ASSERT_EQ(0, mmk_guard(bc.fd, MMK_IOC_READ, ops[0].token, &g));
	EXPECT_EQ(0x30, mmk_payload(map, g.offset)[0]);
	EXPECT_EQ(0, mmk_read_release(bc.fd, ops[0].token));

	ASSERT_EQ(0, stall_release(&st, tail));
	ASSERT_EQ(0, pthread_join(thr, NULL));
	EXPECT_EQ(0, bc.ret);
	EXPECT_EQ(0U, bc.done);
	EXPECT_EQ(-ENOENT, ops[0].result);

	/* The others are the session's again: their windows work, and they commit. */
	for (i = 1; i < STALL_RUN; i++) {
		uint64_t t = i < STALL_RUN - 1 ? ops[i].token : tail[0].token;

		EXPECT_EQ(0, poke(a + off[i] + sizeof(struct mmk_msg_header) + 1, 0x40 + i));
		EXPECT_EQ(0, commit_in_place(bc.fd, t));
	}
	ASSERT_EQ(0, mmk_info(bc.fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	munmap(a, info.map_size);
	munmap((void *)map, len);
	close(bc.fd);
	stall_close(&st);
}

/* A writer killed while writing through its window (or the arena's) poisons the slot. */
static void killed_writer_poisons(struct __test_metadata *_metadata, bool arena)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	int fd, ready[2], status;
	char c, payload[64] = { 0 };
	uint64_t token;
	pid_t pid;

	fd = mmk_create("window-kill", PAYLOAD, SLOTS, 0600, 0, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &info));
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 1, &token));
	ASSERT_EQ(0, pipe(ready));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* A session of its own, which dies with the child. */
		int cfd = mmk_attach("window-kill", 0);
		char *w;

		close(fd);
		if (cfd < 0 || mmk_guard(cfd, MMK_IOC_READ_MUT, token, &g))
			_exit(1);
		w = arena ? map_arena(cfd, &info) : map_window(cfd, &info, g.offset,
								PROT_READ | PROT_WRITE);
		if (w == MAP_FAILED)
			_exit(2);
		if (arena)
			w += g.offset;
		memset(w + sizeof(struct mmk_msg_header), 0xee, 32);
		if (write(ready[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(4);
	}
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));

	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0U, info.write_guards);
	EXPECT_EQ(1U, info.poisoned);
	EXPECT_EQ(-EOWNERDEAD, mmk_guard(fd, MMK_IOC_READ, token, &g));
	EXPECT_EQ(0, mmk_free_token(fd, token));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0U, info.poisoned);
	close(fd);
}

TEST(killed_window_writer_poisons)
{
	killed_writer_poisons(_metadata, false);
}

TEST(killed_arena_writer_poisons)
{
	killed_writer_poisons(_metadata, true);
}

TEST_HARNESS_MAIN
