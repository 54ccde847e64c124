// SPDX-License-Identifier: GPL-2.0
/* The pool, queues and batches of the queue contenders (mmk_qlink.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mmk_qlink.h"

/* Payload type of the bench pools: "mmkqueue". */
#define QLINK_PAYLOAD_TYPE	0x6d6d6b7175657565ULL

/* Sequence number of the message that ends a stream. */
#define QLINK_END		UINT64_MAX

/* Longest wait for room or for a message: the peer is gone after this. */
#define QLINK_WAIT_NS		(20ULL * 1000000000ULL)

/* Ops of one call at most: releases, pushes, loans and pops of a batch. */
#define QLINK_OPS_MAX		(4 * QLINK_BATCH_MAX)

struct qlink {
	struct mmk_manager *m;
	struct mmk_queue *q[DIR_COUNT];
	unsigned int batch;
	bool zc;
	bool fuse;			/* this process receives too: sends ride on recvs */
	enum bench_dir tx;		/* where a fused send goes */
	/* producer */
	unsigned int n;			/* messages filled, not pushed yet */
	void *bufs[QLINK_BATCH_MAX];	/* copy: the messages filled */
	struct mmk_header hdr[QLINK_BATCH_MAX];
	struct mmk_write_guard loan[2][QLINK_BATCH_MAX];	/* zero copy */
	unsigned int cur;		/* loan[cur] is being filled */
	unsigned int nloans[2];
	/* consumer */
	uint64_t held[QLINK_BATCH_MAX];	/* checked, to be released */
	unsigned int nheld;
	const struct mmk_message *got[QLINK_BATCH_MAX];
	uint64_t got_tok[QLINK_BATCH_MAX];
	unsigned int next, count;
	bool ended;
	struct mmk_batch_op ops[QLINK_OPS_MAX];
};

static struct qlink *ql(struct bench_link *l)
{
	return l->priv;
}

static int fail_with(enum mmk_error e)
{
	switch (e) {
	case MMK_E_SYSTEM:
		break;
	case MMK_E_NO_FREE_SLOTS:
		errno = ENOSPC;
		break;
	case MMK_E_QUEUE_EMPTY:
	case MMK_E_QUEUE_FULL:
		errno = ETIMEDOUT;
		break;
	default:
		errno = EPROTO;
		break;
	}
	return -1;
}

void qlink_close(struct bench_link *l)
{
	struct qlink *k = ql(l);
	unsigned int i;
	int d;

	if (!k)
		return;
	for (d = 0; d < DIR_COUNT; d++)
		if (k->q[d])
			mmk_queue_close(k->q[d]);
	mmk_close(k->m);
	for (i = 0; i < QLINK_BATCH_MAX; i++)
		free(k->bufs[i]);
	free(k);
	l->priv = NULL;
}

int qlink_open(struct bench_link *l, unsigned int batch, bool zc)
{
	struct qlink *k = calloc(1, sizeof(*k));
	struct mmk_config cfg = {
		.payload_size = (uint32_t)l->size,
		.payload_type = QLINK_PAYLOAD_TYPE,
		.memory_class = MMK_MEM_HOST,
		.flags = zc ? MMK_POOL_PAGE_ALIGNED : 0,
		.mode = 0600,
	};
	struct mmk_queue_attr qa = {
		.policy = MMK_POLICY_BLOCK,
		.cap_items = l->depth,
	};
	enum mmk_error e = MMK_OK;
	unsigned int i;
	int d;

	if (!k)
		return -1;
	l->priv = k;
	if (batch > l->depth)
		batch = l->depth;
	if (batch > QLINK_BATCH_MAX)
		batch = QLINK_BATCH_MAX;
	k->batch = batch ? batch : 1;
	k->zc = zc;
	/*
	 * The queue holds up to depth messages; the consumer holds a batch it
	 * is checking, the zero-copy producer a batch of loans it is filling:
	 * slots for all of them, and for the end of the stream, so that a
	 * store or a loan never finds the pool full.
	 */
	cfg.capacity = l->depth + 2 * k->batch + 2;
	e = mmk_kernel_create(&cfg, &k->m);
	for (d = 0; !e && d < DIR_COUNT; d++)
		e = mmk_queue_create(k->m, &qa, &k->q[d]);
	if (e)
		goto fail;
	if (!zc) {
		/* Both processes get these by fork; only a sender touches them. */
		for (i = 0; i < k->batch; i++) {
			k->bufs[i] = bench_alloc(l->size);
			if (!k->bufs[i]) {
				e = MMK_E_SYSTEM;
				errno = ENOMEM;
				goto fail;
			}
		}
	}
	return 0;
fail:
	fail_with(e);
	d = errno;
	qlink_close(l);
	errno = d;
	return -1;
}

void qlink_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx)
{
	struct qlink *k = ql(l);

	k->fuse = tx != DIR_COUNT && rx != DIR_COUNT;
	k->tx = tx;
	/* A round trip has one message in flight each way. */
	if (k->fuse)
		k->batch = 1;
}

/* The push ops of the filled messages (and, with @more, the loans of the
 * next ones). */
static size_t push_ops(struct bench_link *l, enum bench_dir dir, struct mmk_batch_op *op,
		       bool more)
{
	struct qlink *k = ql(l);
	unsigned int i, nxt = k->cur ^ 1;
	size_t n = 0;

	for (i = 0; i < k->n; i++, n++) {
		if (k->zc)
			op[n] = (struct mmk_batch_op){
				.op = MMK_OP_COMMIT_PUSH, .queue = k->q[dir],
				.guard = &k->loan[k->cur][i], .wait = true,
				.timeout_ns = QLINK_WAIT_NS };
		else
			op[n] = (struct mmk_batch_op){
				.op = MMK_OP_STORE_PUSH, .queue = k->q[dir],
				.header = &k->hdr[i], .payload = k->bufs[i],
				.payload_size = l->size, .wait = true,
				.timeout_ns = QLINK_WAIT_NS };
	}
	if (k->zc && k->n && more) {
		/* The other set of guards: a loan must not fill a guard that an
		 * earlier op of the call publishes (libmmk would split the call). */
		for (i = k->nloans[nxt]; i < k->batch; i++, n++)
			op[n] = (struct mmk_batch_op){ .op = MMK_OP_LOAN,
						       .guard = &k->loan[nxt][i] };
	}
	return n;
}

/* After the ops of push_ops() ran (@done of them): the state they leave. */
static int push_done(struct qlink *k, size_t npush, size_t nops, size_t done)
{
	unsigned int nxt = k->cur ^ 1;

	if (done < npush)
		return -1;
	k->n = 0;
	if (k->zc && npush) {
		k->nloans[k->cur] = 0;
		k->nloans[nxt] += (unsigned int)(done - npush);
		k->cur = nxt;
		if (done < nops)
			return -1;
	}
	return 0;
}

/* Loans for the set being filled, if it has none (the first batch). */
static int take_loans(struct qlink *k)
{
	unsigned int i, c = k->cur;
	enum mmk_error e;
	size_t done = 0;

	for (i = k->nloans[c]; i < k->batch; i++)
		k->ops[i - k->nloans[c]] = (struct mmk_batch_op){ .op = MMK_OP_LOAN,
								  .guard = &k->loan[c][i] };
	e = mmk_batch(k->m, k->ops, k->batch - k->nloans[c], &done);
	k->nloans[c] += (unsigned int)done;
	return e ? fail_with(e) : 0;
}

/* Push what was filled, with the loans of the next batch, in one call
 * (stream producer). */
static int flush(struct bench_link *l, enum bench_dir dir)
{
	struct qlink *k = ql(l);
	enum mmk_error e;
	size_t n, done = 0;

	if (!k->n)
		return 0;
	n = push_ops(l, dir, k->ops, true);
	e = mmk_batch(k->m, k->ops, n, &done);
	if (push_done(k, k->n, n, done))
		return fail_with(e);
	return 0;
}

int qlink_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct qlink *k = ql(l);
	struct mmk_message *msg;

	if (k->zc) {
		if (k->n == k->nloans[k->cur] && take_loans(k))
			return -1;
		msg = k->loan[k->cur][k->n].msg;
		/* A loan's header is zeroed: set what a store would. */
		msg->header.sequence = seq;
		msg->header.payload_size = (uint32_t)l->size;
		bench_fill(msg->payload, l->size, seq);
	} else {
		k->hdr[k->n] = (struct mmk_header){ .sequence = seq };
		bench_fill(k->bufs[k->n], l->size, seq);
	}
	k->n++;
	/* A round trip sends with the receive that follows. */
	if (k->fuse || k->n < k->batch)
		return 0;
	return flush(l, dir);
}

/* Release what was checked, push what was filled, pop (waiting) what comes
 * next on @dir: one call. */
static int refill(struct bench_link *l, enum bench_dir dir)
{
	struct qlink *k = ql(l);
	unsigned int i, npop = k->fuse ? 1 : k->batch;
	size_t n = 0, nrel, npush = 0, nops, done = 0;
	enum mmk_error e;

	for (i = 0; i < k->nheld; i++)
		k->ops[n++] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE,
						     .token = k->held[i] };
	nrel = n;
	if (k->fuse && k->n) {
		npush = k->n;
		n += push_ops(l, k->tx, k->ops + n, true);
	}
	nops = n;
	for (i = 0; i < npop; i++)
		k->ops[n++] = (struct mmk_batch_op){ .op = MMK_OP_POP, .queue = k->q[dir],
						     .wait = i == 0, .timeout_ns = i ? 0 : QLINK_WAIT_NS };
	e = mmk_batch(k->m, k->ops, n, &done);
	if (done < nrel)
		return fail_with(e);
	k->nheld = 0;
	if (npush && push_done(k, npush, nops - nrel, (done < nops ? done : nops) - nrel))
		return fail_with(e);
	/* A run of pops stops at the first that finds the queue empty. */
	if (done == nops)
		return fail_with(e);
	k->next = 0;
	k->count = 0;
	for (i = 0; i < done - nops; i++) {
		const struct mmk_batch_op *op = &k->ops[nops + i];

		k->got[k->count] = op->msg;
		k->got_tok[k->count++] = op->token;
	}
	return 0;
}

int qlink_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct qlink *k = ql(l);
	const struct mmk_message *msg;

	if (k->ended)
		return 0;
	if (k->next == k->count && refill(l, dir))
		return -1;
	msg = k->got[k->next];
	k->held[k->nheld++] = k->got_tok[k->next++];
	if (msg->header.sequence == QLINK_END && msg->header.payload_size == 0) {
		k->ended = true;
		return 0;
	}
	if (msg->header.payload_size != l->size) {
		bench_mismatches++;
		return 1;
	}
	bench_check(msg->payload, l->size, seq);
	return 1;
}

int qlink_end(struct bench_link *l, enum bench_dir dir)
{
	struct qlink *k = ql(l);
	struct mmk_header h = { .sequence = QLINK_END };
	unsigned int c, i, filled;
	enum mmk_error e;
	size_t n;

	/* What was filled, then the loans not filled go back (the end of the
	 * stream needs a slot), then the end: one call. */
	n = push_ops(l, dir, k->ops, false);
	filled = k->n;
	k->n = 0;
	for (c = 0; c < 2; c++) {
		for (i = c == k->cur ? filled : 0; i < k->nloans[c]; i++)
			k->ops[n++] = (struct mmk_batch_op){ .op = MMK_OP_WRITE_CANCEL,
							     .guard = &k->loan[c][i] };
		k->nloans[c] = 0;
	}
	k->ops[n++] = (struct mmk_batch_op){
		.op = MMK_OP_STORE_PUSH, .queue = k->q[dir], .header = &h,
		.wait = true, .timeout_ns = QLINK_WAIT_NS,
	};
	e = mmk_batch(k->m, k->ops, n, NULL);
	return e ? fail_with(e) : 0;
}
