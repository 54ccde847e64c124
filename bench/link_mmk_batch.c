// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "mmk-batch": mmk-copy with one ioctl per batch instead of one
 * per operation.  The sender fills up to BATCH messages in buffers of its
 * own, stores them with one mmk_batch of STOREs and sends their tokens in
 * one write().  The receiver takes the tokens the pipe holds (up to BATCH),
 * reads them all with one mmk_batch of READs, checks each message in
 * place, then releases and frees them all with one mmk_batch of
 * READ_RELEASE + FREE pairs.  Batches are half the pool, so that the
 * sender fills one while the receiver drains the other.  Backpressure: see
 * mmk_link.h; a batch cut short by a full pool sends what was stored,
 * waits for a credit and stores the rest.  Throughput only: a round trip
 * of batches of one would measure mmk-copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mmk_link.h"

#define BATCH_MAX	32

struct batch_state {
	unsigned int batch;			/* messages per batch */
	unsigned int n;				/* filled, not stored yet */
	void *bufs[BATCH_MAX];
	struct mmk_header hdr[BATCH_MAX];
	struct mmk_batch_op ops[2 * BATCH_MAX];
	uint64_t tok[BATCH_MAX];
	uint64_t seq;				/* receiver: seq of the next one */
	unsigned int next, count;		/* receiver: checked, handed out */
};

static struct batch_state *state(struct bench_link *l)
{
	return ((struct mmk_link *)l->priv)->extra;
}

static int fail_with(enum mmk_error e)
{
	errno = e == MMK_E_SYSTEM ? errno : EPROTO;
	return -1;
}

static void batch_close(struct bench_link *l)
{
	struct mmk_link *k = l->priv;
	struct batch_state *b;
	unsigned int i;

	if (!k)
		return;
	b = k->extra;
	if (b)
		for (i = 0; i < BATCH_MAX; i++)
			free(b->bufs[i]);
	mmk_link_close(l);
}

static int batch_open(struct bench_link *l)
{
	struct batch_state *b;
	unsigned int i;

	if (mmk_link_open(l, 0))
		return -1;
	b = calloc(1, sizeof(*b));
	((struct mmk_link *)l->priv)->extra = b;
	if (!b)
		goto fail;
	b->batch = l->depth / 2 ? l->depth / 2 : 1;
	if (b->batch > BATCH_MAX)
		b->batch = BATCH_MAX;
	/* Both processes get these by fork; only a sender touches them. */
	for (i = 0; i < b->batch; i++) {
		b->bufs[i] = bench_alloc(l->size);
		if (!b->bufs[i])
			goto fail;
	}
	return 0;
fail:
	batch_close(l);
	errno = ENOMEM;
	return -1;
}

/* Store the filled messages; send their tokens as they are stored. */
static int batch_flush(struct bench_link *l, enum bench_dir dir)
{
	struct mmk_link *k = l->priv;
	struct batch_state *b = k->extra;
	unsigned int i, off = 0;
	enum mmk_error e;
	size_t done;

	for (i = 0; i < b->n; i++) {
		b->ops[i] = (struct mmk_batch_op){
			.op = MMK_OP_STORE,
			.header = &b->hdr[i],
			.payload = b->bufs[i],
			.payload_size = l->size,
		};
	}
	while (off < b->n) {
		done = 0;
		e = mmk_batch(k->m, b->ops + off, b->n - off, &done);
		for (i = 0; i < done; i++)
			b->tok[i] = b->ops[off + i].token;
		if (done && mmk_link_send_tokens(k, dir, b->tok, done))
			return -1;
		off += (unsigned int)done;
		if (e == MMK_E_NO_FREE_SLOTS) {
			if (mmk_link_wait_credit(k, dir))
				return -1;
		} else if (e) {
			return fail_with(e);
		}
	}
	b->n = 0;
	return 0;
}

static int batch_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct batch_state *b = state(l);

	bench_fill(b->bufs[b->n], l->size, seq);
	b->hdr[b->n] = (struct mmk_header){ .sequence = seq };
	if (++b->n < b->batch)
		return 0;
	return batch_flush(l, dir);
}

static int batch_end(struct bench_link *l, enum bench_dir dir)
{
	if (batch_flush(l, dir))
		return -1;
	return mmk_link_end(l, dir);
}

/* Receiver: read, check, release and free the next tokens, in 3 ioctls. */
static int batch_refill(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct mmk_link *k = l->priv;
	struct batch_state *b = k->extra;
	enum mmk_error e;
	unsigned int i;
	size_t done;
	int n;

	n = mmk_link_read_tokens(k, dir, b->tok, b->batch);
	if (n <= 0)
		return n;
	for (i = 0; i < (unsigned int)n; i++)
		b->ops[i] = (struct mmk_batch_op){ .op = MMK_OP_READ, .token = b->tok[i] };
	e = mmk_batch(k->m, b->ops, (size_t)n, &done);
	if (e)
		return fail_with(e);
	for (i = 0; i < (unsigned int)n; i++)
		mmk_link_check(b->ops[i].msg, l->size, seq + i);
	for (i = 0; i < (unsigned int)n; i++) {
		b->ops[2 * i] = (struct mmk_batch_op){
			.op = MMK_OP_READ_RELEASE, .token = b->tok[i] };
		b->ops[2 * i + 1] = (struct mmk_batch_op){
			.op = MMK_OP_FREE, .token = b->tok[i] };
	}
	e = mmk_batch(k->m, b->ops, 2 * (size_t)n, &done);
	if (e)
		return fail_with(e);
	mmk_link_freed(l, dir, (unsigned int)n);
	b->next = 0;
	b->count = (unsigned int)n;
	return 1;
}

static int batch_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct batch_state *b = state(l);
	int rc;

	if (b->next == b->count) {
		rc = batch_refill(l, dir, seq);
		if (rc <= 0)
			return rc;
	}
	b->next++;
	return 1;
}

const struct bench_link_ops link_mmk_batch = {
	.name = "mmk-batch",
	.open = batch_open,
	.keep = mmk_link_keep,
	.send = batch_send,
	.recv = batch_recv,
	.end = batch_end,
	.close = batch_close,
};
