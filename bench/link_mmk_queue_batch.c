// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "mmk-queue-batch": mmk-queue a batch at a time.  The producer
 * fills a batch of messages in buffers of its own and stores and pushes
 * them all in one call; the consumer releases the batch it checked and
 * pops (waiting for the first) the next batch in one call.  A batch is the
 * depth, at most 64 messages: the consumer checks one batch while the
 * producer fills the next.
 * A round trip is one call per side per hop (mmk_qlink.h).
 */
#include "mmk_qlink.h"

static int queue_batch_open(struct bench_link *l)
{
	return qlink_open(l, QLINK_BATCH_MAX, false);
}

const struct bench_link_ops link_mmk_queue_batch = {
	.name = "mmk-queue-batch",
	.pingpong = true,
	.one_call = true,
	.open = queue_batch_open,
	.keep = qlink_keep,
	.send = qlink_send,
	.recv = qlink_recv,
	.end = qlink_end,
	.close = qlink_close,
};
