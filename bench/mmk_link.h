/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the mmk contenders share: one anonymous /dev/mmk pool of depth
 * slots, created before fork so that both processes use the same session
 * (libmmk's manager is valid in a forked child), and per direction a token
 * pipe (sender to receiver, 8 bytes a message) and a credit pipe (receiver
 * to sender) for backpressure.
 *
 * Backpressure: a sender whose store (or loan) finds the pool full blocks
 * in read() on the credit pipe, then tries again.  The receiver writes one
 * credit byte every depth/2 frees, non-blocking: a full credit pipe already
 * holds wake-ups.  No wake-up is lost: when the pool is full, all depth
 * messages are on their way to the receiver, which frees each of them, so
 * a credit is written after the sender saw the pool full.  Nobody spins.
 */
#ifndef MMK_BENCH_MMK_LINK_H
#define MMK_BENCH_MMK_LINK_H

#include <mmk/mmk.h>

#include "bench.h"

/* Most tokens a receiver takes from its pipe in one read(). */
#define MMK_LINK_TOKENS	64

struct mmk_link {
	struct mmk_manager *m;
	int tok[DIR_COUNT][2];		/* token pipes: [0] read, [1] write */
	int credit[DIR_COUNT][2];	/* credit pipes: [0] read, [1] write */
	unsigned int frees[DIR_COUNT];	/* frees since the last credit */
	uint64_t rtok[DIR_COUNT][MMK_LINK_TOKENS];	/* tokens read, not yet used */
	unsigned int rnext[DIR_COUNT], rcount[DIR_COUNT];
	void *buf;			/* the sender's own buffer (copy) */
	void *extra;			/* the contender's own state */
};

/* Create the pool (flags: MMK_POOL_PAGE_ALIGNED or 0) and the pipes. */
int mmk_link_open(struct bench_link *l, uint32_t flags);
void mmk_link_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx);
void mmk_link_close(struct bench_link *l);

/* Sender: send the token, or @n tokens in one write(). */
int mmk_link_send_tokens(struct mmk_link *k, enum bench_dir dir, const uint64_t *tok,
			 size_t n);
/* Sender: the pool was full; sleep until the receiver frees slots. */
int mmk_link_wait_credit(struct mmk_link *k, enum bench_dir dir);
/* Sender: end the stream (close the token pipe). */
int mmk_link_end(struct bench_link *l, enum bench_dir dir);

/* Receiver: tokens waiting to be read; 0 with nothing read at the end of
 * the stream, -1 on error.  Takes what the pipe holds, up to @max. */
int mmk_link_read_tokens(struct mmk_link *k, enum bench_dir dir, uint64_t *tok,
			 unsigned int max);
/* Receiver: @n slots were freed: write a credit when depth/2 were. */
void mmk_link_freed(struct bench_link *l, enum bench_dir dir, unsigned int n);
/* Receiver: read, check, release and free the next message (one ioctl
 * each), the receive path of mmk-copy and mmk-zc. */
int mmk_link_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq);

/* A message's payload size must be what was sent: count it as a mismatch
 * otherwise, like a wrong checksum. */
bool mmk_link_check(const struct mmk_message *msg, size_t size, uint64_t seq);

#endif /* MMK_BENCH_MMK_LINK_H */
