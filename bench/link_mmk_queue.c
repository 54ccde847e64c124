// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "mmk-queue": no pipe, one kernel queue per direction.  The
 * producer stores and pushes each message in one call (MMK_OP_STORE_PUSH,
 * waiting for room); the consumer releases the message it checked and
 * pops (waiting) the next in one call, then checks it in place through the
 * pool's read-only mapping.  One system call per message on each side.
 * A round trip is one call per side per hop (mmk_qlink.h).
 */
#include "mmk_qlink.h"

static int queue_open(struct bench_link *l)
{
	return qlink_open(l, 1, false);
}

const struct bench_link_ops link_mmk_queue = {
	.name = "mmk-queue",
	.pingpong = true,
	.one_call = true,
	.open = queue_open,
	.keep = qlink_keep,
	.send = qlink_send,
	.recv = qlink_recv,
	.end = qlink_end,
	.close = qlink_close,
};
