// SPDX-License-Identifier: GPL-2.0
/*
 * MMK_IOC_BATCH: many data-path operations in one ioctl, decided exactly
 * as the single ioctls decide them.
 */
#include <stddef.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "mmk_test.h"

#define PAYLOAD		256
#define SLOTS		8
/* A result no op ever writes: shows an op was not looked at. */
#define UNTOUCHED	12345

/* The entry grew from 48 to 64 bytes with the queue ops: queue_fd, outcome, timeout_ns. */
_Static_assert(sizeof(struct mmk_batch_entry) == 64, "batch entry is 64 bytes");
_Static_assert(offsetof(struct mmk_batch_entry, result) == 36, "result");
_Static_assert(offsetof(struct mmk_batch_entry, offset) == 40, "offset");
_Static_assert(offsetof(struct mmk_batch_entry, queue_fd) == 48, "queue_fd");
_Static_assert(offsetof(struct mmk_batch_entry, outcome) == 52, "outcome");
_Static_assert(offsetof(struct mmk_batch_entry, timeout_ns) == 56, "timeout_ns");

static struct mmk_msg_header zero_header;

static struct mmk_batch_entry op_store(const void *payload, uint32_t size)
{
	return (struct mmk_batch_entry){
		.op = MMK_BATCH_STORE,
		.header = (uintptr_t)&zero_header,
		.payload = (uintptr_t)payload,
		.payload_size = size,
		.result = UNTOUCHED,
	};
}

static struct mmk_batch_entry op_token(uint32_t op, uint64_t token)
{
	return (struct mmk_batch_entry){ .op = op, .token = token, .result = UNTOUCHED };
}

/* Run a batch; 0 or -errno of the ioctl, *done as the kernel left it. */
static int run_batch(int fd, struct mmk_batch_entry *ops, uint32_t count, uint32_t *done)
{
	struct mmk_batch b = { .ops = (uintptr_t)ops, .count = count, .done = UNTOUCHED };
	int ret = mmk_ioctl(fd, MMK_IOC_BATCH, &b);

	if (done)
		*done = b.done;
	return ret;
}

static uint32_t available(int fd)
{
	struct mmk_pool_info info;

	return mmk_info(fd, &info) ? 0 : info.available;
}

/* A token without its pool id: what two identical pools have in common. */
static uint64_t token_slot_gen(uint64_t token)
{
	return token & ((1ULL << 48) - 1);
}

FIXTURE(batch) {
	int fd;
	const char *map;
	size_t len;
	char payload[PAYLOAD];
};

FIXTURE_SETUP(batch)
{
	int i;

	self->fd = mmk_create(NULL, PAYLOAD, SLOTS, 0600, 0, 0);
	ASSERT_LE(0, self->fd);
	self->map = mmk_map(self->fd, &self->len);
	ASSERT_NE(MAP_FAILED, self->map);
	for (i = 0; i < PAYLOAD; i++)
		self->payload[i] = (char)i;
}

FIXTURE_TEARDOWN(batch)
{
	munmap((void *)self->map, self->len);
	close(self->fd);
}

/* Stores, reads, a peek, releases and a free in one batch. */
TEST_F(batch, mixed)
{
	struct mmk_batch_entry ops[8];
	struct mmk_pool_info info;
	uint32_t done;

	ops[0] = op_store(self->payload, 100);
	ops[1] = op_store(self->payload + 1, 50);
	ASSERT_EQ(0, run_batch(self->fd, ops, 2, &done));
	ASSERT_EQ(2U, done);
	ASSERT_EQ(0, ops[0].result);
	ASSERT_EQ(0, ops[1].result);
	ASSERT_NE(ops[0].token, ops[1].token);

	ops[2] = op_token(MMK_BATCH_READ, ops[0].token);
	ops[3] = op_token(MMK_BATCH_PEEK_HEADER, ops[1].token);
	ops[4] = op_token(MMK_BATCH_READ_RELEASE, ops[0].token);
	ops[5] = op_token(MMK_BATCH_READ_RELEASE, ops[1].token);
	ops[6] = op_token(MMK_BATCH_FREE, ops[0].token);
	ops[7] = op_store(self->payload, 7);
	ops[2].payload_size = 999;	/* out: ignored on entry */
	ASSERT_EQ(0, run_batch(self->fd, ops + 2, 6, &done));
	EXPECT_EQ(6U, done);
	for (int i = 2; i < 8; i++) {
		EXPECT_EQ(0, ops[i].result);
	}
	EXPECT_EQ(100U, ops[2].payload_size);
	EXPECT_EQ(50U, ops[3].payload_size);
	EXPECT_EQ(0, memcmp(mmk_payload(self->map, ops[2].offset), self->payload, 100));
	EXPECT_EQ(50U, mmk_at(self->map, ops[3].offset)->payload_size);
	EXPECT_EQ(0U, ops[6].offset);

	ASSERT_EQ(0, mmk_info(self->fd, &info));
	EXPECT_EQ(0U, info.read_guards);
	EXPECT_EQ(3U, info.stores);
	EXPECT_EQ(1U, info.frees);
	EXPECT_EQ(SLOTS - 2U, info.available);
	/* The last store reused the freed slot: the old token is stale. */
	EXPECT_EQ(-EBADSLT, mmk_free_token(self->fd, ops[0].token));
}

/* The first failure stops the batch: done, its result, the rest untouched. */
TEST_F(batch, stops_at_first_error)
{
	struct mmk_batch_entry ops[4];
	uint32_t done;

	ops[0] = op_store(self->payload, 10);
	ops[1] = op_token(MMK_BATCH_READ, MMK_TOKEN_INVALID);
	ops[2] = op_store(self->payload, 10);
	ops[3] = op_store(self->payload, 10);
	ASSERT_EQ(0, run_batch(self->fd, ops, 4, &done));
	EXPECT_EQ(1U, done);
	EXPECT_EQ(0, ops[0].result);
	EXPECT_EQ(-EBADSLT, ops[1].result);
	EXPECT_EQ(UNTOUCHED, ops[2].result);
	EXPECT_EQ(UNTOUCHED, ops[3].result);
	EXPECT_EQ(SLOTS - 1U, available(self->fd));
}

/* Every op gives the errors of its single ioctl. */
TEST_F(batch, op_errors)
{
	struct mmk_msg_header bad = { .flags = 0x80 };
	struct mmk_batch_entry op;
	struct mmk_guard g;
	uint64_t t, freed;
	uint32_t done;
	int i;

	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload, 1, 0, &t));
	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload, 1, 0, &freed));
	ASSERT_EQ(0, mmk_free_token(self->fd, freed));

	op = op_store(self->payload, PAYLOAD + 1);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(0U, done);
	EXPECT_EQ(-EMSGSIZE, op.result);
	EXPECT_EQ(MMK_TOKEN_INVALID, op.token);

	op = op_store(self->payload, 1);
	op.header = (uintptr_t)&bad;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	op = op_store(NULL, 0);
	op.header = 8;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EFAULT, op.result);

	op = op_store(self->payload, 1);
	op.payload = 8;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EFAULT, op.result);
	EXPECT_EQ(SLOTS - 1U, available(self->fd));

	op = op_token(MMK_BATCH_READ, freed);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-ENODATA, op.result);

	op = op_token(MMK_BATCH_PEEK_HEADER, t + (1ULL << 20));
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EBADSLT, op.result);

	op = op_token(MMK_BATCH_READ_RELEASE, t);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-ENOENT, op.result);

	op = op_token(MMK_BATCH_FREE, freed);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-ENODATA, op.result);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	op = op_token(MMK_BATCH_READ, t);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EBUSY, op.result);
	op = op_token(MMK_BATCH_PEEK_HEADER, t);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EBUSY, op.result);
	op = op_token(MMK_BATCH_FREE, t);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-ETXTBSY, op.result);
	ASSERT_EQ(0, mmk_write_release(self->fd, t));

	op = op_token(0, t);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);
	op = op_token(99, t);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);
	op = op_token(MMK_BATCH_READ, t);
	op.flags = MMK_GUARD_WAIT;	/* a batch never waits */
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	/* Full pool. */
	for (i = 0; i < SLOTS - 1; i++) {
		op = op_store(self->payload, 1);
		ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
		ASSERT_EQ(0, op.result);
	}
	op = op_store(self->payload, 1);
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-ENOSPC, op.result);
	EXPECT_EQ(0U, done);
}

/* Fields an op does not use must be zero. */
TEST_F(batch, unused_fields_must_be_zero)
{
	struct mmk_batch_entry op;
	uint32_t done;
	uint64_t t;

	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload, 1, 0, &t));

	op = op_token(MMK_BATCH_READ, t);
	op.header = (uintptr_t)&zero_header;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	op = op_token(MMK_BATCH_PEEK_HEADER, t);
	op.payload = (uintptr_t)self->payload;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	op = op_token(MMK_BATCH_FREE, t);
	op.payload_size = 1;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	op = op_token(MMK_BATCH_READ_RELEASE, t);
	op.header = 1;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	op = op_token(MMK_BATCH_FREE, t);
	op.flags = 1;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	/* Out fields are ignored on entry; the message is still there. */
	op = op_token(MMK_BATCH_FREE, t);
	op.offset = 77;
	op.result = -1;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(0, op.result);
	EXPECT_EQ(1U, done);
}

/*
 * The fields of the 64-byte entry that the data ops do not use: queue_fd
 * and timeout_ns must be zero (EINVAL); outcome is out, ignored on entry
 * and written back as zero.
 */
TEST_F(batch, queue_fields_of_data_ops)
{
	static const uint32_t ops_using_token[] = {
		MMK_BATCH_READ, MMK_BATCH_PEEK_HEADER, MMK_BATCH_FREE,
	};
	struct mmk_batch_entry op;
	uint32_t done, i;
	uint64_t t;

	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload, 1, 0, &t));
	for (i = 0; i < ARRAY_SIZE(ops_using_token); i++) {
		op = op_token(ops_using_token[i], t);
		op.queue_fd = self->fd;
		ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
		EXPECT_EQ(-EINVAL, op.result) TH_LOG("op %u with a queue_fd", op.op);
		op = op_token(ops_using_token[i], t);
		op.timeout_ns = 1;
		ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
		EXPECT_EQ(-EINVAL, op.result) TH_LOG("op %u with a timeout", op.op);
	}
	op = op_store(self->payload, 1);
	op.queue_fd = 1;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);
	EXPECT_EQ((uint32_t)SLOTS - 1, available(self->fd));
	op = op_store(self->payload, 1);
	op.timeout_ns = 1;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(-EINVAL, op.result);

	/* outcome is out only: set on entry, zero on the way back. */
	op = op_token(MMK_BATCH_READ, t);
	op.outcome = 0x12345678;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(0, op.result);
	EXPECT_EQ(0U, op.outcome);
	EXPECT_EQ(0, op.queue_fd);
	EXPECT_EQ(0U, op.timeout_ns);
	EXPECT_EQ(0, mmk_read_release(self->fd, t));
	op = op_store(self->payload, 1);
	op.outcome = 7;
	ASSERT_EQ(0, run_batch(self->fd, &op, 1, &done));
	EXPECT_EQ(0, op.result);
	EXPECT_EQ(0U, op.outcome);
}

/* The batch header: count 0, the cap, flags, reserved, sizes. */
TEST_F(batch, header_checks)
{
	struct {
		struct mmk_batch b;
		uint64_t tail;
	} big;
	struct mmk_batch_entry op = op_store(self->payload, 1);
	struct mmk_batch b = { 0 };
	unsigned int max = 0;
	int fd2;
	FILE *f;

	memset(&big, 0, sizeof(big));
	/* Nothing to do is not an error, even with no array. */
	b.done = 5;
	ASSERT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_BATCH, &b));
	EXPECT_EQ(0U, b.done);

	b = (struct mmk_batch){ .ops = (uintptr_t)&op, .count = 1, .flags = 1 };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_BATCH, &b));
	b = (struct mmk_batch){ .ops = (uintptr_t)&op, .count = 1, .__reserved = 1 };
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, MMK_IOC_BATCH, &b));
	EXPECT_EQ(UNTOUCHED, op.result);

	f = fopen("/sys/module/mmk/parameters/max_batch_ops", "r");
	ASSERT_NE(NULL, f);
	ASSERT_EQ(1, fscanf(f, "%u", &max));
	fclose(f);
	EXPECT_EQ(1024U, max);
	b = (struct mmk_batch){ .ops = (uintptr_t)&op, .count = max + 1 };
	EXPECT_EQ(-EDQUOT, mmk_ioctl(self->fd, MMK_IOC_BATCH, &b));
	EXPECT_EQ(UNTOUCHED, op.result);
	EXPECT_EQ((uint32_t)SLOTS, available(self->fd));

	/* Sizes: smaller than the struct, larger with a non-zero tail. */
	EXPECT_EQ(-EINVAL, mmk_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC,
						     _IOC_NR(MMK_IOC_BATCH),
						     sizeof(struct mmk_batch) - 4), &b));
	big.b = (struct mmk_batch){ .ops = (uintptr_t)&op, .count = 1 };
	big.tail = 1;
	EXPECT_EQ(-E2BIG, mmk_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC,
						   _IOC_NR(MMK_IOC_BATCH), sizeof(big)), &big));
	big.tail = 0;
	ASSERT_EQ(0, mmk_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, MMK_IOC_MAGIC,
					      _IOC_NR(MMK_IOC_BATCH), sizeof(big)), &big));
	EXPECT_EQ(1U, big.b.done);
	EXPECT_EQ(0, op.result);

	/* Unbound session. */
	fd2 = mmk_open();
	ASSERT_LE(0, fd2);
	b = (struct mmk_batch){ .ops = (uintptr_t)&op, .count = 1 };
	EXPECT_EQ(-ENOTCONN, mmk_ioctl(fd2, MMK_IOC_BATCH, &b));
	close(fd2);
}

/* An ops array that cannot be read or written back: EFAULT, nothing lost. */
TEST_F(batch, bad_pointers_lose_nothing)
{
	size_t page = getpagesize();
	struct mmk_batch_entry *ops;
	uint32_t done, fit, i;
	char *mem;

	EXPECT_EQ(-EFAULT, run_batch(self->fd, (void *)8, 1, &done));
	EXPECT_EQ(0U, done);
	EXPECT_EQ((uint32_t)SLOTS, available(self->fd));

	/* Read-only ops: the store cannot hand its token back, so it is undone. */
	mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ops = (struct mmk_batch_entry *)mem;
	ops[0] = op_store(self->payload, 1);
	ASSERT_EQ(0, mprotect(mem, page, PROT_READ));
	EXPECT_EQ(-EFAULT, run_batch(self->fd, ops, 1, &done));
	EXPECT_EQ(0U, done);
	EXPECT_EQ((uint32_t)SLOTS, available(self->fd));

	/* A read-only array: a read guard that cannot be reported is dropped. */
	ASSERT_EQ(0, mprotect(mem, page, PROT_READ | PROT_WRITE));
	ops[0] = op_store(self->payload, 1);
	ASSERT_EQ(0, run_batch(self->fd, ops, 1, &done));
	ASSERT_EQ(0, ops[0].result);
	ops[1] = op_token(MMK_BATCH_READ, ops[0].token);
	ASSERT_EQ(0, mprotect(mem, page, PROT_READ));
	EXPECT_EQ(-EFAULT, run_batch(self->fd, ops + 1, 1, &done));
	EXPECT_EQ(0U, done);
	EXPECT_EQ(0, mmk_free_token(self->fd, ops[0].token));	/* no guard left */

	/* The array runs into an unmapped page: the ops before it are done. */
	ASSERT_EQ(0, mprotect(mem, page, PROT_READ | PROT_WRITE));
	ASSERT_EQ(0, munmap(mem + page, page));
	fit = SLOTS - 1;
	ops = (struct mmk_batch_entry *)(mem + page) - fit;
	for (i = 0; i < fit; i++)
		ops[i] = op_store(self->payload, 1);
	EXPECT_EQ(-EFAULT, run_batch(self->fd, ops, fit + 1, &done));
	/* The kernel reads the array in chunks: how many ran is up to it. */
	EXPECT_GE(fit, done);
	EXPECT_EQ(SLOTS - done, available(self->fd));
	for (i = 0; i < done; i++) {
		EXPECT_EQ(0, mmk_free_token(self->fd, ops[i].token));
	}
	EXPECT_EQ((uint32_t)SLOTS, available(self->fd));
	munmap(mem, page);
}

/* The same sequence, batched and single, on two identical pools. */
TEST(same_as_single_ioctls)
{
	char payload[PAYLOAD] = { 1, 2, 3 };
	uint64_t tokens[SLOTS];
	struct mmk_batch_entry ops[3 * SLOTS];
	struct mmk_guard g;
	uint32_t done, n = 0;
	int a, b, i;

	a = mmk_create(NULL, PAYLOAD, SLOTS, 0600, 0, 0);
	b = mmk_create(NULL, PAYLOAD, SLOTS, 0600, 0, 0);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);

	/* Store all, free every other one, store again: slots get reused. */
	for (i = 0; i < SLOTS; i++)
		ASSERT_EQ(0, mmk_store_seq(a, payload, i, 0, &tokens[i]));
	for (i = 0; i < SLOTS; i += 2)
		ASSERT_EQ(0, mmk_free_token(a, tokens[i]));
	for (i = 0; i < SLOTS; i += 2)
		ASSERT_EQ(0, mmk_store_seq(a, payload, i, 0, &tokens[i]));

	for (i = 0; i < SLOTS; i++)
		ops[n++] = op_store(payload, i);
	ASSERT_EQ(0, run_batch(b, ops, n, &done));
	ASSERT_EQ(n, done);
	for (i = 0; i < SLOTS; i += 2)
		ops[n++] = op_token(MMK_BATCH_FREE, ops[i].token);
	for (i = 0; i < SLOTS; i += 2)
		ops[n++] = op_store(payload, i);
	ASSERT_EQ(0, run_batch(b, ops + SLOTS, n - SLOTS, &done));
	ASSERT_EQ(n - SLOTS, done);

	for (i = 0; i < SLOTS; i++) {
		uint64_t tb = i % 2 ? ops[i].token : ops[SLOTS + SLOTS / 2 + i / 2].token;
		struct mmk_batch_entry rd = op_token(MMK_BATCH_READ, tb);

		/*
		 * The same slot, as many stores past each pool's (random) first
		 * generation as slot 1's first message, stored once on each side.
		 */
		EXPECT_EQ(token_slot_gen(tokens[i]) & 0xfffff, token_slot_gen(tb) & 0xfffff);
		EXPECT_EQ(((tokens[i] >> 20) - (tokens[1] >> 20)) & 0xfffffff,
			  ((tb >> 20) - (ops[1].token >> 20)) & 0xfffffff);
		ASSERT_EQ(0, mmk_guard(a, MMK_IOC_READ, tokens[i], &g));
		ASSERT_EQ(0, run_batch(b, &rd, 1, &done));
		EXPECT_EQ(g.offset, rd.offset);
		EXPECT_EQ(g.payload_size, rd.payload_size);
		EXPECT_EQ(0, mmk_read_release(a, tokens[i]));
		EXPECT_EQ(0, mmk_read_release(b, tb));
	}
	close(a);
	close(b);
}

TEST_HARNESS_MAIN
