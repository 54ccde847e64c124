// SPDX-License-Identifier: GPL-2.0
/*
 * Admission and push (SPEC §9): give a message to one or several queues.
 *
 * A push locks its queues in address order (at most MMK_PUSH_MAX_QUEUES,
 * each a lockdep subclass), then the message's slot: it checks the
 * message, decides for every queue on its occupancy, and counts the
 * queues' holds under the slot's lock; then, with only the queues locked,
 * it evicts (DropOldest) and appends.  All or nothing: a refusal by any
 * queue leaves the message with the caller.  No pool-wide lock is taken.
 */
#include <linux/ktime.h>
#include <linux/sort.h>
#include <linux/uaccess.h>

#include "mmk_internal.h"
#include "mmk_compat.h"
#include "mmk_queue.h"

/* ---- admission ------------------------------------------------------------ */

enum mmk_admit {
	MMK_ADMIT,		/* take it, after evicting @evict messages */
	MMK_ADMIT_DROP,		/* a success: the message is dropped */
	MMK_ADMIT_FULL,		/* -ENOBUFS */
	MMK_ADMIT_BLOCK,	/* wait for room, or -ENOBUFS */
};

/* Messages DropOldest evicts at the hard cap: until below both hard caps. */
static u32 mmk_queue_evictions(const struct mmk_queue *q)
{
	u64 bytes = q->bytes;
	u32 n = 0;

	while (n < q->items && (q->items - n >= q->cap_items ||
				(q->cap_bytes && bytes >= q->cap_bytes))) {
		bytes -= q->pool->slots[mmk_queue_at(q, n)]->payload_size;
		n++;
	}
	return n;
}

/*
 * SPEC §9 admission, decided on the occupancy before the push, as limen's
 * EdgePolicy::decide does.  At the hard cap, a message larger than the
 * byte cap is refused whatever the policy: no eviction could make room.
 */
static enum mmk_admit mmk_queue_decide(const struct mmk_queue *q, u32 size, u8 qos, u32 *evict)
{
	u32 wm = mmk_queue_watermark(q);

	*evict = 0;
	if (wm == MMK_WM_BELOW_SOFT)
		return MMK_ADMIT;
	if (wm == MMK_WM_AT_HARD && q->cap_bytes && size > q->cap_bytes)
		return MMK_ADMIT_FULL;
	switch (q->policy) {
	case MMK_QUEUE_DROP_NEWEST:
		return MMK_ADMIT_DROP;
	case MMK_QUEUE_DROP_OLDEST:
		*evict = wm == MMK_WM_AT_HARD ? mmk_queue_evictions(q) : 1;
		return MMK_ADMIT;
	case MMK_QUEUE_BLOCK:
		return MMK_ADMIT_BLOCK;
	case MMK_QUEUE_QOS:
		if (wm == MMK_WM_AT_HARD)
			return MMK_ADMIT_FULL;
		return qos == MMK_QOS_LATENCY_CRITICAL ? MMK_ADMIT : MMK_ADMIT_DROP;
	default:
		return MMK_ADMIT_FULL;
	}
}

/* Below the soft caps: every policy admits a push without dropping. */
static bool mmk_queue_has_room(struct mmk_queue *q)
{
	bool room;

	spin_lock(&q->lock);
	room = mmk_queue_watermark(q) == MMK_WM_BELOW_SOFT;
	spin_unlock(&q->lock);
	return room;
}

/* ---- push ------------------------------------------------------------------- */

/* One push: its queues, locked together in address order. */
struct mmk_push_op {
	struct mmk_session *s;
	struct mmk_push *args;
	struct mmk_write_op *wop;	/* COMMIT: this session's write guard */
	const struct mmk_msg_header *store;	/* STORE: the slot's new message */
	struct mmk_queue *q[MMK_PUSH_MAX_QUEUES];
	struct fd f[MMK_PUSH_MAX_QUEUES];
	u32 n;
	u32 idx;
	u32 gen;
	struct mmk_queue *blocked;	/* out: the queue to wait on */
	struct mmk_wakes *wakes;	/* wake-ups held back, or NULL */
};

static int mmk_queue_cmp(const void *a, const void *b)
{
	const struct mmk_queue *x = *(const struct mmk_queue * const *)a;
	const struct mmk_queue *y = *(const struct mmk_queue * const *)b;

	return x < y ? -1 : x > y;
}

static void mmk_push_lock(struct mmk_push_op *op)
{
	struct mmk_queue *sorted[MMK_PUSH_MAX_QUEUES];
	u32 i;

	memcpy(sorted, op->q, op->n * sizeof(*sorted));
	sort(sorted, op->n, sizeof(*sorted), mmk_queue_cmp, NULL);
	/* At most MMK_PUSH_MAX_QUEUES (8) lockdep subclasses. */
	for (i = 0; i < op->n; i++) {
		spin_lock_nested(&sorted[i]->lock, i);
		__release(&sorted[i]->lock);	/* sparse: held until mmk_push_unlock() */
	}
}

static void mmk_push_unlock(struct mmk_push_op *op)
{
	u32 i;

	for (i = 0; i < op->n; i++) {
		__acquire(&op->q[i]->lock);	/* sparse: taken by mmk_push_lock() */
		spin_unlock(&op->q[i]->lock);
	}
}

/* SPEC §9 checks of the message itself, in order; slot->lock held. */
static int mmk_push_check_slot(struct mmk_push_op *op, struct mmk_slot *slot)
{
	u32 i;
	int ret;

	lockdep_assert_held(&slot->lock);
	ret = mmk_slot_check(slot, op->gen);
	if (ret)
		return ret;
	if (slot->poisoned)
		return -EOWNERDEAD;
	if (!op->wop && slot->writer)
		return -EBUSY;
	for (i = 0; i < op->n; i++)
		if (test_bit(op->idx, op->q[i]->member))
			return -EINPROGRESS;
	return 0;
}

/*
 * Decide for every queue; all or nothing.  Queues and slot locked.  A
 * Block queue that cannot admit makes the push wait (on the first such
 * queue, then decide again) unless another queue refuses outright.
 */
static int mmk_push_decide(struct mmk_push_op *op, struct mmk_slot *slot,
			   enum mmk_admit *admit, u32 *evict)
{
	bool wait = op->args->flags & MMK_PUSH_WAIT, full = false;
	u32 i;

	op->blocked = NULL;
	for (i = 0; i < op->n; i++) {
		admit[i] = mmk_queue_decide(op->q[i], slot->payload_size, slot->qos, &evict[i]);
		if (admit[i] == MMK_ADMIT_FULL || (admit[i] == MMK_ADMIT_BLOCK && !wait))
			full = true;
		else if (admit[i] == MMK_ADMIT_BLOCK && !op->blocked)
			op->blocked = op->q[i];
	}
	if (!full)
		return op->blocked ? -EAGAIN : 0;
	op->blocked = NULL;
	for (i = 0; i < op->n; i++)
		if (admit[i] == MMK_ADMIT_FULL || admit[i] == MMK_ADMIT_BLOCK)
			op->q[i]->rejected++;
	return -ENOBUFS;
}

/*
 * Give the message to every queue that admits it: count its holds and
 * drops under the slot's lock (queues and slot locked).  It is put in the
 * rings by mmk_push_insert() once the slot's lock is dropped: a message
 * held by a queue cannot be freed, rewritten or pushed to these queues
 * meanwhile, and nobody looks at a ring without its queue's lock.
 */
static void mmk_push_give(struct mmk_push_op *op, struct mmk_slot *slot,
			  const enum mmk_admit *admit)
{
	u32 i;

	for (i = 0; i < op->n; i++) {
		if (admit[i] == MMK_ADMIT_DROP) {
			op->args->dropped |= BIT(i);
			op->q[i]->drops[op->q[i]->policy == MMK_QUEUE_QOS ?
					MMK_DROP_QOS : MMK_DROP_NEWEST]++;
			continue;
		}
		slot->queued++;
	}
	slot->given = true;
	if (op->wop)
		mmk_write_publish_locked(op->s->pool, slot, op->wop);
}

/* Evict (DropOldest), then append, in every queue that admitted it; queues locked. */
static void mmk_push_insert(struct mmk_push_op *op, u32 size, u32 *evict)
{
	u32 i;

	for (i = 0; i < op->n; i++) {
		if (op->args->dropped & BIT(i))
			continue;
		op->args->evicted += evict[i];
		while (evict[i]--)
			mmk_queue_drop_head(op->q[i], MMK_DROP_OLDEST);
		mmk_queue_append(op->q[i], op->idx, size);
	}
}

/*
 * One attempt, with every queue locked: 0 (given), -EAGAIN (wait on
 * op->blocked and try again), or the error.  A store is published, and a
 * commit's new header recorded, before the checks, under the slot's lock:
 * admission decides on the message being pushed.
 */
static int mmk_push_locked(struct mmk_push_op *op)
{
	struct mmk_pool *pool = op->s->pool;
	struct mmk_slot *slot = pool->slots[op->idx];
	enum mmk_admit admit[MMK_PUSH_MAX_QUEUES];
	u32 evict[MMK_PUSH_MAX_QUEUES], size;
	bool orphan = false;
	int ret;

	spin_lock(&slot->lock);
	if (op->store)
		mmk_store_publish_locked(slot, op->store);
	if (op->wop && op->wop->committed)
		mmk_slot_set_meta(slot, &op->wop->h);
	ret = mmk_push_check_slot(op, slot);
	if (!ret)
		ret = mmk_push_decide(op, slot, admit, evict);
	if (!ret) {
		mmk_push_give(op, slot, admit);
		orphan = mmk_slot_orphaned_locked(slot);
	} else if (op->store) {
		mmk_store_unpublish_locked(slot);
	}
	size = slot->payload_size;
	spin_unlock(&slot->lock);
	if (ret)
		return ret;

	mmk_push_insert(op, size, evict);
	if (orphan)
		mmk_slot_recycle(pool, op->idx);
	return 0;
}

/* Wait for room in op->blocked: 0, or -EINTR, or -ENOBUFS at the deadline. */
static int mmk_push_wait(struct mmk_push_op *op, ktime_t deadline)
{
	struct mmk_queue *q = op->blocked;
	ktime_t left;
	int ret;

	op->blocked = NULL;
	if (!op->args->timeout_ns)
		return wait_event_interruptible(q->wq, mmk_queue_has_room(q)) ? -EINTR : 0;
	left = ktime_sub(deadline, ktime_get());
	if (ktime_to_ns(left) <= 0)
		return -ENOBUFS;
	ret = wait_event_interruptible_hrtimeout(q->wq, mmk_queue_has_room(q), left);
	if (ret == -ERESTARTSYS)
		return -EINTR;
	return ret ? -ENOBUFS : 0;
}

static int mmk_push_run(struct mmk_push_op *op)
{
	u64 timeout = min_t(u64, op->args->timeout_ns, KTIME_MAX / 2);
	ktime_t deadline = ktime_add_ns(ktime_get(), timeout);
	int ret;
	u32 i;

	for (;;) {
		op->args->dropped = 0;
		op->args->evicted = 0;
		mmk_push_lock(op);
		ret = mmk_push_locked(op);
		mmk_push_unlock(op);
		if (ret != -EAGAIN)
			break;
		if (op->wakes)
			mmk_wakes_flush(op->wakes, true);
		ret = mmk_push_wait(op, deadline);
		if (ret)
			return ret;
	}
	if (!ret)
		for (i = 0; i < op->n; i++)
			if (!(op->args->dropped & BIT(i)))
				mmk_queue_wake(op->q[i], EPOLLIN | EPOLLRDNORM, op->wakes);
	return ret;
}

static int mmk_push_check_args(const struct mmk_push *args)
{
	u32 flags = args->flags, i;

	if (flags & ~MMK_PUSH_FLAGS_ALL || args->__reserved ||
	    (flags & MMK_PUSH_STORE && flags & MMK_PUSH_COMMIT))
		return -EINVAL;
	if (!args->nr_queues || args->nr_queues > MMK_PUSH_MAX_QUEUES)
		return -EINVAL;
	for (i = args->nr_queues; i < MMK_PUSH_MAX_QUEUES; i++)
		if (args->queue_fds[i])
			return -EINVAL;
	if (!(flags & MMK_PUSH_WAIT) && args->timeout_ns)
		return -EINVAL;
	if (!(flags & (MMK_PUSH_STORE | MMK_PUSH_COMMIT)) &&
	    (args->header || args->payload || args->payload_size))
		return -EINVAL;
	return 0;
}

static void mmk_push_put_queues(struct mmk_push_op *op)
{
	while (op->n)
		fdput(op->f[--op->n]);
}

/* Look up the queues: distinct, all of this session's pool. */
static int mmk_push_get_queues(struct mmk_push_op *op)
{
	u32 i;
	int ret;

	for (op->n = 0; op->n < op->args->nr_queues; op->n++) {
		ret = mmk_queue_fdget(op->s, op->args->queue_fds[op->n], &op->f[op->n],
				      &op->q[op->n]);
		if (ret)
			goto fail;
		for (i = 0; i < op->n; i++) {
			if (op->q[i] == op->q[op->n]) {
				fdput(op->f[op->n]);
				ret = -EINVAL;
				goto fail;
			}
		}
	}
	return 0;
fail:
	mmk_push_put_queues(op);
	return ret;
}

/*
 * MMK_PUSH_STORE: fill a free slot, then publish it and push it in one
 * step under the slot's lock, so nobody sees the message unless a queue
 * took it; a refused store-and-push gives the slot back unseen.
 */
static int mmk_push_store(struct mmk_push_op *op)
{
	struct mmk_push *args = op->args;
	struct mmk_store st = {
		.header = args->header,
		.payload = args->payload,
		.payload_size = args->payload_size,
	};
	struct mmk_msg_header h;
	int ret;

	ret = mmk_store_prepare(op->s, &st, &op->idx, &h);
	if (ret)
		return ret;
	mmk_token_parse(op->s->pool, st.token, &op->idx, &op->gen);
	op->store = &h;
	ret = mmk_push_run(op);
	if (ret) {
		mmk_store_abort(op->s->pool, op->idx);
		args->token = MMK_TOKEN_INVALID;
		return ret;
	}
	atomic64_inc(&op->s->pool->stores);
	args->token = st.token;
	return 0;
}

/*
 * A commit-and-push by a session without the write guard: EBUSY if
 * another session holds it (or a loan on it), as SPEC §9 orders push's
 * checks; ENOENT, as for a write release, if nobody does.
 */
static int mmk_push_commit_refused(struct mmk_session *s, u64 token, int ret)
{
	struct mmk_slot *slot;
	u32 idx, gen;
	bool busy;

	if (ret != -ENOENT || mmk_token_parse(s->pool, token, &idx, &gen))
		return ret;
	slot = s->pool->slots[idx];
	spin_lock(&slot->lock);
	busy = slot->writer;
	spin_unlock(&slot->lock);
	return busy ? -EBUSY : ret;
}

/* MMK_PUSH_COMMIT: commit this session's write guard, then push it. */
static int mmk_push_commit(struct mmk_push_op *op)
{
	struct mmk_push *args = op->args;
	struct mmk_release rel = {
		.token = args->token,
		.flags = MMK_RELEASE_COMMIT,
		.payload_size = args->payload_size,
		.header = args->header,
		.payload = args->payload,
	};
	struct mmk_write_op wop;
	int ret;

	ret = mmk_write_begin(op->s, &rel, &wop);
	if (ret)
		return mmk_push_commit_refused(op->s, args->token, ret);
	op->wop = &wop;
	op->idx = wop.idx;
	op->gen = wop.gen;
	ret = mmk_push_run(op);
	if (ret)
		return mmk_write_end(op->s, &wop, ret);	/* the guard stays held */
	atomic_dec(&op->s->nr_guards);
	mmk_pool_wake(op->s->pool);
	return 0;
}

/**
 * mmk_push - give a message to one or several queues (MMK_IOC_PUSH)
 * @s: the session
 * @args: push arguments; token (STORE), dropped and evicted are set
 * @w: wake-ups to hold back (a batch's), or NULL to wake at once
 *
 * A stored message is published before the push, but its token reaches
 * nobody before the push is decided, so a refused store-and-push is
 * undone as if it never happened.
 */
int mmk_push(struct mmk_session *s, struct mmk_push *args, struct mmk_wakes *w)
{
	struct mmk_push_op op = { .s = s, .args = args, .wakes = w };
	int ret;

	args->dropped = 0;
	args->evicted = 0;
	ret = mmk_push_check_args(args);
	if (ret)
		return ret;
	ret = mmk_push_get_queues(&op);
	if (ret)
		return ret;
	if (args->flags & MMK_PUSH_STORE) {
		ret = mmk_push_store(&op);
	} else if (args->flags & MMK_PUSH_COMMIT) {
		ret = mmk_push_commit(&op);
	} else {
		ret = mmk_token_parse(s->pool, args->token, &op.idx, &op.gen);
		if (!ret)
			ret = mmk_push_run(&op);
	}
	mmk_push_put_queues(&op);
	return ret;
}

