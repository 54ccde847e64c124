/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the queue contenders of mmk share (mmk-queue, mmk-queue-batch,
 * mmk-queue-zc): one anonymous /dev/mmk pool and one kernel queue per
 * direction, made before fork; no pipe.  The queue is the backpressure:
 * its policy is BLOCK and every push waits for room (MMK_PUSH_WAIT); a
 * consumer waits in its pop (MMK_POP_WAIT).  Nobody spins.
 *
 * Every system call is one MMK_IOC_BATCH:
 *
 *   producer of a stream    one per batch: STORE_PUSH (copy) or
 *                           COMMIT_PUSH of the loans filled in place plus
 *                           LOANs of the next batch's slots (zero copy)
 *   consumer of a stream    one per batch: READ_RELEASE of every message
 *                           it checked, then POP (waiting) and POPs of
 *                           what else is queued, up to the batch
 *   either side of a round  one per hop: READ_RELEASE of the message it
 *   trip                    answered, the push of its own message (and
 *                           the loan of the next one's slot), POP
 *                           (waiting) of the next message: a send only
 *                           fills the message, the receive that follows
 *                           carries it, as binder's BINDER_WRITE_READ does
 *
 * The end of a stream is a message of no payload whose sequence is
 * QLINK_END.  Waits have a timeout (QLINK_WAIT_NS), so a dead peer makes
 * the run fail instead of hang.
 */
#ifndef MMK_BENCH_QLINK_H
#define MMK_BENCH_QLINK_H

#include <mmk/mmk.h>

#include "bench.h"

/* Most messages of one batch (a stream's depth is at most 64). */
#define QLINK_BATCH_MAX	64

/* Open the pool and both queues; @batch: messages per batch (1 for
 * mmk-queue, capped at the depth), @zc: loans on a page-aligned pool. */
int qlink_open(struct bench_link *l, unsigned int batch, bool zc);
void qlink_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx);
int qlink_send(struct bench_link *l, enum bench_dir dir, uint64_t seq);
int qlink_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq);
int qlink_end(struct bench_link *l, enum bench_dir dir);
void qlink_close(struct bench_link *l);

#endif /* MMK_BENCH_QLINK_H */
