/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The queue object, shared by mmk_queue.c (the object and its files),
 * mmk_push.c (admission and push) and mmk_pop.c (pop and peek).
 */
#ifndef MMK_QUEUE_H
#define MMK_QUEUE_H

#include <linux/file.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/poll.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include "mmk_internal.h"

struct mmk_queue {
	struct kref ref;		/* one per open file */
	struct mmk_pool *pool;		/* a reference held for the queue's life */
	struct list_head node;		/* in pool->queues, under pool->members_lock */
	u32 id;
	u32 policy;
	u32 cap_items;
	u32 soft_items;
	u64 cap_bytes;
	u64 soft_bytes;
	char name[MMK_NAME_MAX];

	/*
	 * Protects everything below.  Outer to slot->lock and pool->free_lock;
	 * a push to several queues nests their locks in address order.
	 */
	spinlock_t lock;
	u32 *ring;			/* cap_items slot indices */
	u32 head;			/* ring index of the oldest message */
	u32 items;
	u32 high_items;
	u64 bytes;
	unsigned long *member;		/* one bit per slot of the pool */
	u64 pushes;
	u64 pops;
	u64 rejected;
	u64 drops[MMK_DROP_REASONS];

	/* Pops and Block pushes wait here, and poll. */
	wait_queue_head_t wq;
};

/* The ring; each with q->lock held. */
u32 mmk_queue_watermark(const struct mmk_queue *q);
u32 mmk_queue_at(const struct mmk_queue *q, u32 n);
void mmk_queue_append(struct mmk_queue *q, u32 idx, u32 size);
u32 mmk_queue_remove_head(struct mmk_queue *q);
bool mmk_queue_unpop(struct mmk_queue *q, u32 idx);
void mmk_queue_drop_head(struct mmk_queue *q, unsigned int reason);

/* Wake pops, Block pushes and pollers, or (@w) at the end of the call; without q->lock. */
void mmk_queue_wake(struct mmk_queue *q, __poll_t events, struct mmk_wakes *w);

int mmk_queue_fdget(struct mmk_session *s, int fd, struct fd *f, struct mmk_queue **q);

#endif /* MMK_QUEUE_H */
