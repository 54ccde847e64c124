// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "mmk-queue-zc": zero copy on both sides, batched.  The pool
 * is page-aligned; the producer fills a batch of loans in place through
 * their writable windows, then publishes them with one call that commits
 * and pushes each (MMK_OP_COMMIT_PUSH) and loans the slots of the next
 * batch; the consumer is mmk-queue-batch's.
 * A round trip is one call per side per hop (mmk_qlink.h).
 */
#include "mmk_qlink.h"

static int queue_zc_open(struct bench_link *l)
{
	return qlink_open(l, QLINK_BATCH_MAX, true);
}

const struct bench_link_ops link_mmk_queue_zc = {
	.name = "mmk-queue-zc",
	.pingpong = true,
	.one_call = true,
	.open = queue_zc_open,
	.keep = qlink_keep,
	.send = qlink_send,
	.recv = qlink_recv,
	.end = qlink_end,
	.close = qlink_close,
};
