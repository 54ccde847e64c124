// SPDX-License-Identifier: GPL-2.0
/*
 * Writable windows of pools with large ids, built twice: as a 64-bit
 * program (window_wide_test) and as a 32-bit one (window_wide_test_32), whose
 * mmap() is mmap2() with a 32-bit page offset.  A window's offset names
 * no pool, so it fits there whatever the pool's id.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <stdint.h>

#include "kselftest_harness.h"
#include "mmk_test.h"

#define WIDE_TYPE	0x77696465ULL
#define MIN_ID		17U
#define NSLOTS		4
#define PAYLOAD		(4096 - 64)

FIXTURE(wide) {
	int fd;
	uint32_t id;
	struct mmk_pool_info info;
	const unsigned char *map;
	size_t len;
};

FIXTURE_SETUP(wide)
{
	unsigned int i;

	/* Ids are cyclic: create and drop pools until this one's id is large. */
	for (i = 0; i <= MIN_ID; i++) {
		self->fd = mmk_create_id(NULL, PAYLOAD, NSLOTS, 0600, WIDE_TYPE,
					 MMK_POOL_PAGE_ALIGNED, &self->id);
		ASSERT_LE(0, self->fd);
		if (self->id >= MIN_ID)
			break;
		close(self->fd);
	}
	ASSERT_LE(MIN_ID, self->id);
	ASSERT_EQ(0, mmk_info(self->fd, &self->info));
	self->map = mmk_map(self->fd, &self->len);
	ASSERT_TRUE(self->map != MAP_FAILED);
}

FIXTURE_TEARDOWN(wide)
{
	munmap((void *)self->map, self->len);
	close(self->fd);
}

/* The largest window offset of the largest pool fits a 32-bit page offset. */
TEST(window_offset_fits_mmap2)
{
	uint64_t last = MMK_WINDOW_OFFSET((1ULL << MMK_WINDOW_SHIFT) - 4096);

	EXPECT_GT(1ULL << 32, last / 4096);
	EXPECT_EQ(8U, sizeof(off_t));
}

/* Map the window of the slot at offset; MAP_FAILED with errno on failure. */
static void *window(int fd, uint64_t offset, size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)MMK_WINDOW_OFFSET(offset));
}

/* Write in place through a window, commit, and read it back. */
TEST_F(wide, write_through_window_of_large_pool_id)
{
	unsigned char payload[64] = "before";
	struct mmk_release r = { .flags = MMK_RELEASE_COMMIT };
	struct mmk_msg_header *h;
	struct mmk_guard g;
	uint64_t tok;
	unsigned char *w;
	void *p;

	ASSERT_EQ(0, mmk_store_seq(self->fd, payload, sizeof(payload), 1, &tok));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, tok, &g));
	w = window(self->fd, g.offset, self->info.slot_size);
	ASSERT_TRUE(w != MAP_FAILED) TH_LOG("mmap: %s", strerror(errno));
	h = (struct mmk_msg_header *)w;
	h->sequence = 99;
	h->payload_size = 100;
	memset(w + sizeof(*h), 0x5a, 100);
	r.token = tok;
	ASSERT_EQ(0, mmk_ioctl(self->fd, MMK_IOC_WRITE_RELEASE, &r));
	munmap(w, self->info.slot_size);

	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ, tok, &g));
	EXPECT_EQ(100U, g.payload_size);
	EXPECT_EQ(99U, mmk_at(self->map, g.offset)->sequence);
	EXPECT_EQ(0x5a, mmk_payload(self->map, g.offset)[0]);
	EXPECT_EQ(0x5a, mmk_payload(self->map, g.offset)[99]);
	EXPECT_EQ(0, mmk_read_release(self->fd, tok));

	/* A window only under a guard. */
	errno = 0;
	p = window(self->fd, g.offset, self->info.slot_size);
	EXPECT_TRUE(p == MAP_FAILED);
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, mmk_free_token(self->fd, tok));
}

/*
 * Two sessions, each with a window at the same offset: a release in one
 * zaps its own window only, the other still writes through its own.
 */
TEST_F(wide, release_zaps_only_its_session)
{
	unsigned char payload[8] = "x";
	struct mmk_guard g, g2;
	uint64_t t, t2;
	uint32_t id2;
	unsigned char *w, *w2;
	int fd2;

	fd2 = mmk_create_id(NULL, PAYLOAD, NSLOTS, 0600, WIDE_TYPE, MMK_POOL_PAGE_ALIGNED, &id2);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mmk_store_seq(self->fd, payload, sizeof(payload), 1, &t));
	ASSERT_EQ(0, mmk_store_seq(fd2, payload, sizeof(payload), 1, &t2));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_READ_MUT, t, &g));
	ASSERT_EQ(0, mmk_guard(fd2, MMK_IOC_READ_MUT, t2, &g2));
	ASSERT_EQ(g.offset, g2.offset);
	w = window(self->fd, g.offset, self->info.slot_size);
	w2 = window(fd2, g2.offset, self->info.slot_size);
	ASSERT_TRUE(w != MAP_FAILED);
	ASSERT_TRUE(w2 != MAP_FAILED);
	w[100] = 1;
	w2[100] = 2;
	ASSERT_EQ(0, mmk_write_release(self->fd, t));
	/* Still mapped and still the other pool's slot. */
	EXPECT_EQ(2, w2[100]);
	w2[101] = 3;
	EXPECT_EQ(0, mmk_write_release(fd2, t2));
	munmap(w, self->info.slot_size);
	munmap(w2, self->info.slot_size);
	close(fd2);
}

TEST_HARNESS_MAIN
