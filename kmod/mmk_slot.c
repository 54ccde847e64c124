// SPDX-License-Identifier: GPL-2.0
/*
 * The data path: tokens, store, guards, release and free.
 *
 * Every decision is made on struct mmk_slot under slot->lock; the arena
 * that users map is written by the kernel and never read back for a
 * decision.  User copies run outside every spinlock: a slot being filled is
 * not yet reachable by any token, and a slot under a write guard cannot be
 * read, written or freed by anyone else.
 */
#include <linux/bitfield.h>
#include <linux/ktime.h>
#include <linux/minmax.h>
#include <linux/nospec.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/uaccess.h>

#include "mmk_internal.h"

u64 mmk_token_make(const struct mmk_pool *pool, u32 gen, u32 idx)
{
	return FIELD_PREP(MMK_TOKEN_POOL, pool->id) | FIELD_PREP(MMK_TOKEN_GEN, gen) |
	       FIELD_PREP(MMK_TOKEN_INDEX, idx);
}

/* Split a token of @pool; -EBADSLT if it cannot name a slot of @pool. */
int mmk_token_parse(const struct mmk_pool *pool, u64 token, u32 *idx, u32 *gen)
{
	u32 i = FIELD_GET(MMK_TOKEN_INDEX, token);

	if (FIELD_GET(MMK_TOKEN_POOL, token) != pool->id || i >= pool->capacity)
		return -EBADSLT;
	*idx = array_index_nospec(i, pool->capacity);
	*gen = FIELD_GET(MMK_TOKEN_GEN, token);
	return 0;
}

/* SPEC §3: is the token's generation the message now in the slot? */
int mmk_slot_check(const struct mmk_slot *slot, u32 gen)
{
	lockdep_assert_held(&slot->lock);
	if (gen != slot->gen)
		return -EBADSLT;
	if (slot->state != MMK_SLOT_READY)
		return -ENODATA;
	return 0;
}

void mmk_pool_wake(struct mmk_pool *pool)
{
	if (wq_has_sleeper(&pool->wq))
		wake_up_interruptible_all(&pool->wq);
}

/* Charge one guard to the session, against the (changeable) cap. */
bool mmk_session_charge_guard(struct mmk_session *s)
{
	int max = min_t(unsigned int, READ_ONCE(mmk_max_guards_per_session), INT_MAX);
	int old = atomic_read(&s->nr_guards);

	do {
		if (old >= max)
			return false;
	} while (!atomic_try_cmpxchg(&s->nr_guards, &old, old + 1));
	return true;
}

/*
 * Check a header given by userspace and set the fields the kernel owns.
 * Unknown flags, a QoS class out of range, a deadline without its flag and
 * non-zero reserved fields are refused.
 */
static int mmk_header_check(const struct mmk_pool *pool, struct mmk_msg_header *h,
			    u32 payload_size)
{
	if (h->flags & ~MMK_MSG_FLAGS_ALL || h->qos > MMK_QOS_LATENCY_CRITICAL ||
	    (!(h->flags & MMK_MSG_HAS_DEADLINE) && h->deadline_ns) ||
	    h->__reserved0 || h->__reserved1[0] || h->__reserved1[1])
		return -EINVAL;
	if (!h->qos)
		h->qos = MMK_QOS_BEST_EFFORT;
	h->payload_size = payload_size;
	h->memory_class = pool->memory_class;
	h->memory_device = 0;
	return 0;
}

static int mmk_header_import(const struct mmk_pool *pool, struct mmk_msg_header *h, u64 uptr,
			     u32 payload_size)
{
	if (copy_from_user(h, u64_to_user_ptr(uptr), sizeof(*h)))
		return -EFAULT;
	return mmk_header_check(pool, h, payload_size);
}

/* Record what queues decide on: the kernel's copy of a checked header. */
void mmk_slot_set_meta(struct mmk_slot *slot, const struct mmk_msg_header *h)
{
	lockdep_assert_held(&slot->lock);
	slot->payload_size = h->payload_size;
	slot->qos = h->qos;
	slot->has_deadline = h->flags & MMK_MSG_HAS_DEADLINE;
	slot->deadline_ns = h->deadline_ns;
}

/* Take a slot off the free stack; -ENOSPC, counted and reported, if none. */
static int mmk_slot_take(struct mmk_pool *pool, u32 *idx)
{
	spin_lock(&pool->free_lock);
	if (!pool->nr_free) {
		spin_unlock(&pool->free_lock);
		atomic64_inc(&pool->no_free_slots);
		mmk_nl_pool_exhausted(pool);
		return -ENOSPC;
	}
	*idx = pool->free_stack[--pool->nr_free];
	spin_unlock(&pool->free_lock);
	return 0;
}

/* Put an empty slot back on the free stack. */
static void mmk_slot_give_back(struct mmk_pool *pool, u32 idx)
{
	spin_lock(&pool->free_lock);
	pool->free_stack[pool->nr_free++] = idx;
	spin_unlock(&pool->free_lock);
}

/**
 * mmk_store_prepare - first half of a store: fill a free slot
 * @s: the session
 * @args: store arguments; args->token is set on success
 * @idx: the slot, still empty and unreachable
 * @h: the message's header as checked and stored, for mmk_store_publish()
 *
 * The caller copies the token out, then calls mmk_store_publish(), or
 * mmk_store_abort() if that copy failed, so a token is never lost.
 */
int mmk_store_prepare(struct mmk_session *s, struct mmk_store *args, u32 *idx,
		      struct mmk_msg_header *h)
{
	struct mmk_pool *pool = s->pool;
	void *dst;
	int ret;

	if (args->flags)
		return -EINVAL;
	if (args->payload_size > pool->payload_size)
		return -EMSGSIZE;
	ret = mmk_header_import(pool, h, args->header, args->payload_size);
	if (ret)
		return ret;

	ret = mmk_slot_take(pool, idx);
	if (ret)
		return ret;

	dst = mmk_slot_addr(pool, *idx);
	if (copy_from_user(dst + sizeof(*h), u64_to_user_ptr(args->payload), args->payload_size)) {
		mmk_store_abort(pool, *idx);
		return -EFAULT;
	}
	memcpy(dst, h, sizeof(*h));

	/* Only this thread changes a free slot's generation. */
	args->token = mmk_token_make(pool, (READ_ONCE(pool->slots[*idx]->gen) + 1) & MMK_GEN_MASK,
				     *idx);
	return 0;
}

/* Make a slot filled by mmk_store_prepare() hold its message; slot->lock held. */
void mmk_store_publish_locked(struct mmk_slot *slot, const struct mmk_msg_header *h)
{
	lockdep_assert_held(&slot->lock);
	slot->gen = (slot->gen + 1) & MMK_GEN_MASK;
	mmk_slot_set_meta(slot, h);
	slot->state = MMK_SLOT_READY;
}

/* Undo mmk_store_publish_locked() before anyone saw it; then mmk_store_abort(). */
void mmk_store_unpublish_locked(struct mmk_slot *slot)
{
	lockdep_assert_held(&slot->lock);
	slot->gen = (slot->gen - 1) & MMK_GEN_MASK;
	slot->state = MMK_SLOT_FREE;
}

/* Make the message stored by mmk_store_prepare() reachable by its token. */
void mmk_store_publish(struct mmk_pool *pool, u32 idx, const struct mmk_msg_header *h)
{
	struct mmk_slot *slot = pool->slots[idx];

	spin_lock(&slot->lock);
	mmk_store_publish_locked(slot, h);
	spin_unlock(&slot->lock);
	atomic64_inc(&pool->stores);
}

/* Give back a slot taken by mmk_store_prepare() and never published. */
void mmk_store_abort(struct mmk_pool *pool, u32 idx)
{
	mmk_slot_give_back(pool, idx);
}

/**
 * mmk_loan - take a free slot under the session's write guard
 * @s: the session
 * @args: loan arguments; token and offset are set on success
 *
 * The slot holds an empty message (zeroed header) at a new generation.
 * Until a committed write release publishes it, it is write-guarded like
 * any message, so no other session can read, peek or free it.
 */
int mmk_loan(struct mmk_session *s, struct mmk_loan *args)
{
	struct mmk_pool *pool = s->pool;
	struct mmk_slot *slot;
	u32 idx, gen;
	int ret;

	if (args->flags & ~MMK_LOAN_FLAGS_ALL || args->__reserved)
		return -EINVAL;
	ret = mmk_slot_take(pool, &idx);
	if (ret)
		return ret;
	if (!mmk_session_charge_guard(s)) {
		mmk_slot_give_back(pool, idx);
		return -EDQUOT;
	}
	/* No token names the slot yet: nobody else looks at it. */
	memset(mmk_slot_addr(pool, idx), 0, sizeof(struct mmk_msg_header));

	slot = pool->slots[idx];
	spin_lock(&slot->lock);
	slot->gen = (slot->gen + 1) & MMK_GEN_MASK;
	slot->payload_size = 0;
	slot->has_deadline = false;
	slot->state = MMK_SLOT_READY;
	slot->writer = true;
	slot->loaned = true;
	s->holds[idx] |= MMK_HOLD_WRITE;
	gen = slot->gen;
	spin_unlock(&slot->lock);

	args->token = mmk_token_make(pool, gen, idx);
	args->offset = (u64)idx * pool->slot_size;
	return 0;
}

/*
 * Empty a loaned slot that was never published.  The generation moves on,
 * so the loan's token is stale, not "freed".  Caller holds slot->lock and
 * puts the slot back on the free stack after dropping it.
 */
static void mmk_loan_cancel_locked(struct mmk_slot *slot)
{
	lockdep_assert_held(&slot->lock);
	slot->gen = (slot->gen + 1) & MMK_GEN_MASK;
	slot->state = MMK_SLOT_FREE;
	slot->loaned = false;
	slot->writer = false;
	slot->windowed = false;
}

/* One attempt to take a guard, and its outcome. */
struct mmk_attempt {
	struct mmk_session *s;
	u32 idx;
	u32 gen;
	bool write;
	u32 size;	/* out: payload size under the guard */
	int ret;	/* out: 0 or the error */
};

/* Try once; the order of checks is SPEC §4's.  True unless -EBUSY. */
static bool mmk_guard_try(struct mmk_attempt *at)
{
	struct mmk_session *s = at->s;
	struct mmk_slot *slot = s->pool->slots[at->idx];
	int ret;

	spin_lock(&slot->lock);
	ret = mmk_slot_check(slot, at->gen);
	if (ret)
		goto out;
	if (slot->poisoned) {
		ret = -EOWNERDEAD;
		goto out;
	}
	if (slot->writer || (at->write && (slot->readers || slot->queued))) {
		ret = -EBUSY;
		goto out;
	}
	if (!at->write &&
	    slot->readers >= min_t(u32, READ_ONCE(mmk_max_readers_per_slot), MMK_HOLD_READERS)) {
		ret = -EDQUOT;
		goto out;
	}
	if (!mmk_session_charge_guard(s)) {
		ret = -EDQUOT;
		goto out;
	}
	if (at->write) {
		slot->writer = true;
		slot->writer_closes = atomic_read(&s->closes);
		s->holds[at->idx] |= MMK_HOLD_WRITE;
	} else {
		slot->readers++;
		s->holds[at->idx]++;
	}
	at->size = slot->payload_size;
out:
	spin_unlock(&slot->lock);
	at->ret = ret;
	return ret != -EBUSY;
}

/**
 * mmk_guard_acquire - take a read (or header) guard, or a write guard
 * @s: the session
 * @args: guard arguments; offset and payload_size are set on success
 * @write: take the exclusive write guard
 */
int mmk_guard_acquire(struct mmk_session *s, struct mmk_guard *args, bool write)
{
	struct mmk_attempt at = { .s = s, .write = write };
	struct mmk_pool *pool = s->pool;
	ktime_t timeout;
	int ret;

	if (args->flags & ~MMK_GUARD_FLAGS_ALL || args->__reserved || args->__reserved2)
		return -EINVAL;
	if (!(args->flags & MMK_GUARD_WAIT) && args->timeout_ns)
		return -EINVAL;
	ret = mmk_token_parse(pool, args->token, &at.idx, &at.gen);
	if (ret)
		return ret;

	if (!mmk_guard_try(&at) && args->flags & MMK_GUARD_WAIT) {
		/* Each wake-up tries again; on a signal or timeout at.ret is -EBUSY. */
		timeout = ns_to_ktime(min_t(u64, args->timeout_ns, KTIME_MAX));
		if (args->timeout_ns)
			ret = wait_event_interruptible_hrtimeout(pool->wq, mmk_guard_try(&at),
								 timeout);
		else
			ret = wait_event_interruptible(pool->wq, mmk_guard_try(&at));
		if (ret == -ERESTARTSYS)
			at.ret = -EINTR;
	}
	if (at.ret)
		return at.ret;

	args->offset = (u64)at.idx * pool->slot_size;
	args->payload_size = at.size;
	return 0;
}

/*
 * A given message (one pushed into a queue) belongs to the kernel: when
 * its last hold goes, its slot is emptied here.  Caller holds slot->lock,
 * and calls mmk_slot_recycle() after dropping it if this returns true.
 */
bool mmk_slot_orphaned_locked(struct mmk_slot *slot)
{
	lockdep_assert_held(&slot->lock);
	if (!slot->given || slot->readers || slot->writer || slot->queued)
		return false;
	slot->state = MMK_SLOT_FREE;
	slot->given = false;
	slot->poisoned = false;
	return true;
}

/* Put a slot emptied under its lock back on the free stack, as a free. */
void mmk_slot_recycle(struct mmk_pool *pool, u32 idx)
{
	mmk_slot_give_back(pool, idx);
	atomic64_inc(&pool->frees);
	/* Waiters on this token now get -ENODATA instead of waiting on. */
	mmk_pool_wake(pool);
}

/* A queue lets go of the message in @idx.  May be called under a queue's lock. */
void mmk_slot_unqueue(struct mmk_pool *pool, u32 idx)
{
	struct mmk_slot *slot = pool->slots[idx];
	bool orphan;

	spin_lock(&slot->lock);
	slot->queued--;
	orphan = mmk_slot_orphaned_locked(slot);
	spin_unlock(&slot->lock);
	if (orphan)
		mmk_slot_recycle(pool, idx);
}

int mmk_read_release(struct mmk_session *s, const struct mmk_release *args)
{
	struct mmk_pool *pool = s->pool;
	bool last = false, orphan = false;
	struct mmk_slot *slot;
	u32 idx, gen;
	int ret;

	if (args->flags || args->payload_size || args->header || args->payload)
		return -EINVAL;
	ret = mmk_token_parse(pool, args->token, &idx, &gen);
	if (ret)
		return ret;

	slot = pool->slots[idx];
	spin_lock(&slot->lock);
	ret = mmk_slot_check(slot, gen);
	if (!ret && !(s->holds[idx] & MMK_HOLD_READERS))
		ret = -ENOENT;
	if (!ret) {
		s->holds[idx]--;
		last = !--slot->readers;
		orphan = mmk_slot_orphaned_locked(slot);
	}
	spin_unlock(&slot->lock);
	if (ret)
		return ret;

	atomic_dec(&s->nr_guards);
	if (orphan)
		mmk_slot_recycle(pool, idx);
	else if (last)
		mmk_pool_wake(pool);
	return 0;
}

/*
 * Replace the message in a slot the caller holds exclusively.  Returns
 * 0, or an error with the message unchanged, or sets *torn if the payload
 * was partly overwritten (a racing munmap of the source after fault-in).
 */
static int mmk_commit(struct mmk_pool *pool, u32 idx, const struct mmk_release *args,
		      struct mmk_msg_header *h, bool *torn)
{
	const void __user *src = u64_to_user_ptr(args->payload);
	void *dst;
	int ret;

	if (args->payload_size > pool->payload_size)
		return -EMSGSIZE;
	ret = mmk_header_import(pool, h, args->header, args->payload_size);
	if (ret)
		return ret;
	if (fault_in_readable(src, args->payload_size))
		return -EFAULT;

	dst = mmk_slot_addr(pool, idx);
	if (copy_from_user(dst + sizeof(*h), src, args->payload_size)) {
		*torn = true;
		return -EFAULT;
	}
	memcpy(dst, h, sizeof(*h));
	return 0;
}

/*
 * The writer wrote in place through a window, now unmapped: check the
 * header it left in the slot, exactly as if it had been stored.
 */
static int mmk_window_settle(struct mmk_pool *pool, u32 idx, struct mmk_msg_header *h)
{
	void *msg = mmk_slot_addr(pool, idx);
	int ret;

	memcpy(h, msg, sizeof(*h));
	if (h->payload_size > pool->payload_size)
		return -EMSGSIZE;
	ret = mmk_header_check(pool, h, h->payload_size);
	if (ret)
		return ret;
	memcpy(msg, h, sizeof(*h));
	return 0;
}

/* COMMIT with no header, payload or size: take the message in the slot. */
static bool mmk_commit_in_place(const struct mmk_release *args)
{
	return !args->header && !args->payload && !args->payload_size;
}

/* Write the new message into the slot; the guard is out of the session's hands. */
static int mmk_write_commit(struct mmk_session *s, const struct mmk_release *args,
			    struct mmk_write_op *op)
{
	struct mmk_pool *pool = s->pool;
	int ret = 0;

	/*
	 * Even after a batch's zap: another thread may release this guard
	 * while the batch is still marking, and only a zap that finished
	 * makes a window dead.  With nothing mapped, it flushes no TLB.
	 */
	if (op->windowed)
		mmk_window_unmap(s, op->idx);
	if (op->commit && mmk_commit_in_place(args))
		ret = mmk_window_settle(pool, op->idx, &op->h);
	else if (op->commit)
		ret = mmk_commit(pool, op->idx, args, &op->h, &op->torn);
	else if (op->windowed && !op->loaned)
		ret = mmk_window_settle(pool, op->idx, &op->h);
	else
		return 0;	/* nothing written: the message stays as it was */
	op->committed = !ret;
	return ret;
}

/* Take the write guard on op->idx out of the session's hands; window faults refuse. */
static int mmk_write_take(struct mmk_session *s, struct mmk_write_op *op)
{
	struct mmk_slot *slot = s->pool->slots[op->idx];
	int ret;

	spin_lock(&slot->lock);
	ret = mmk_slot_check(slot, op->gen);
	if (!ret && !(s->holds[op->idx] & MMK_HOLD_ANY_WRITE))
		ret = -ENOENT;
	if (!ret) {
		s->holds[op->idx] &= ~MMK_HOLD_ANY_WRITE;
		op->windowed = slot->windowed;
		op->loaned = slot->loaned;
	}
	spin_unlock(&slot->lock);
	return ret;
}

/**
 * mmk_write_begin - first half of a write release: commit
 * @s: the session
 * @args: release arguments
 * @op: out: what the second half needs
 *
 * Takes the guard out of the session's hands, so a racing release of the
 * same guard gets -ENOENT and window faults refuse, while the slot stays
 * exclusively held; then writes the new message, if any, into the slot.
 *
 * Return: 0, and the caller then calls mmk_write_end() (or publishes the
 * message with mmk_write_publish_locked()); or an error, with the release
 * finished as mmk_write_release() finishes it.
 */
int mmk_write_begin(struct mmk_session *s, const struct mmk_release *args,
		    struct mmk_write_op *op)
{
	struct mmk_pool *pool = s->pool;
	int ret;

	memset(op, 0, sizeof(*op));
	op->commit = args->flags & MMK_RELEASE_COMMIT;
	if (args->flags & ~MMK_RELEASE_FLAGS_ALL)
		return -EINVAL;
	if (!op->commit && !mmk_commit_in_place(args))
		return -EINVAL;
	ret = mmk_token_parse(pool, args->token, &op->idx, &op->gen);
	if (!ret)
		ret = mmk_write_take(s, op);
	if (ret)
		return ret;

	ret = mmk_write_commit(s, args, op);
	return ret ? mmk_write_end(s, op, ret) : 0;
}

/**
 * mmk_write_prezap_locked - take a windowed write guard out of the session's
 *                           hands ahead of its commit, for a batch
 * @s: the session
 * @slot: the slot, locked
 * @idx: its index
 *
 * A batch that commits several guards written through windows zaps their
 * windows in one pass (mmk_window_unmap_span) before the first commit
 * runs, so that there is one TLB flush for all of them instead of one per
 * commit: each guard is first marked MMK_HOLD_ZAPPED, so that its window
 * faults refuse from then on, as a write release's do; its commit, when
 * it runs, zaps again and finds nothing mapped.  Those the batch does not
 * reach are handed back by mmk_write_unzap().
 *
 * Return: true if the guard was taken (a write guard of @s, windowed).
 */
bool mmk_write_prezap_locked(struct mmk_session *s, struct mmk_slot *slot, u32 idx)
{
	lockdep_assert_held(&slot->lock);
	if (!(s->holds[idx] & MMK_HOLD_WRITE) || !slot->windowed)
		return false;
	s->holds[idx] &= ~MMK_HOLD_WRITE;
	s->holds[idx] |= MMK_HOLD_ZAPPED;
	return true;
}

/**
 * mmk_write_unzap - hand back the guards a batch zapped but did not commit
 * @s: the session
 * @first: the first slot the batch zapped
 * @last: the last
 *
 * Their windows fault again, under the guard, when next touched.
 */
void mmk_write_unzap(struct mmk_session *s, u32 first, u32 last)
{
	struct mmk_pool *pool = s->pool;
	u32 i;

	for (i = first; i <= last; i++) {
		struct mmk_slot *slot = pool->slots[i];

		if (!((i - first) % 1024))
			cond_resched();
		if (!(READ_ONCE(s->holds[i]) & MMK_HOLD_ZAPPED))
			continue;
		spin_lock(&slot->lock);
		if (s->holds[i] & MMK_HOLD_ZAPPED)
			s->holds[i] ^= MMK_HOLD_ZAPPED | MMK_HOLD_WRITE;
		spin_unlock(&slot->lock);
	}
}

/*
 * The write guard ends with the message published: caller holds the
 * slot's lock.  The caller then drops the session's guard count.
 */
void mmk_write_publish_locked(struct mmk_pool *pool, struct mmk_slot *slot,
			      const struct mmk_write_op *op)
{
	lockdep_assert_held(&slot->lock);
	if (op->committed)
		mmk_slot_set_meta(slot, &op->h);
	slot->writer = false;
	slot->windowed = false;
	if (slot->loaned) {
		slot->loaned = false;
		atomic64_inc(&pool->stores);
	}
}

/**
 * mmk_write_end - second half of a write release
 * @s: the session
 * @op: from mmk_write_begin()
 * @ret: 0, or why the release fails
 *
 * On a failure that changed nothing (or left a new message that is not
 * to be published, as commit-and-push does when no queue takes it), the
 * caller keeps its guard (and window).  Otherwise the guard ends: a loan
 * not committed, or torn, is cancelled (it was never published: no
 * poison); a torn write-back poisons the slot.
 */
int mmk_write_end(struct mmk_session *s, struct mmk_write_op *op, int ret)
{
	struct mmk_pool *pool = s->pool;
	struct mmk_slot *slot = pool->slots[op->idx];
	bool cancel, orphan = false;

	spin_lock(&slot->lock);
	if (ret && !op->torn) {
		if (op->committed)
			mmk_slot_set_meta(slot, &op->h);
		s->holds[op->idx] |= MMK_HOLD_WRITE;
		spin_unlock(&slot->lock);
		return ret;
	}
	cancel = op->loaned && (!op->commit || op->torn);
	if (cancel) {
		mmk_loan_cancel_locked(slot);
	} else {
		mmk_write_publish_locked(pool, slot, op);
		if (op->torn)
			slot->poisoned = true;
		orphan = mmk_slot_orphaned_locked(slot);
	}
	spin_unlock(&slot->lock);

	if (cancel)
		mmk_slot_give_back(pool, op->idx);
	atomic_dec(&s->nr_guards);
	if (op->torn && !cancel)
		mmk_nl_slot_poisoned(pool, mmk_token_make(pool, op->gen, op->idx));
	if (orphan)
		mmk_slot_recycle(pool, op->idx);
	else
		mmk_pool_wake(pool);
	return ret;
}

/**
 * mmk_write_drop - end a write guard without taking what its window holds
 * @s: the session
 * @token: the message
 *
 * For a write pop that is undone: the window is zapped and the slot's
 * message (size, QoS, deadline) stays what it was; nothing else holds a
 * message popped for writing, so it is freed.
 */
void mmk_write_drop(struct mmk_session *s, u64 token)
{
	struct mmk_write_op op = {};

	if (mmk_token_parse(s->pool, token, &op.idx, &op.gen) || mmk_write_take(s, &op))
		return;
	if (op.windowed)
		mmk_window_unmap(s, op.idx);
	mmk_write_end(s, &op, 0);
}

int mmk_write_release(struct mmk_session *s, const struct mmk_release *args)
{
	struct mmk_write_op op;
	int ret;

	ret = mmk_write_begin(s, args, &op);
	return ret ? ret : mmk_write_end(s, &op, 0);
}

int mmk_free(struct mmk_session *s, const struct mmk_free *args)
{
	struct mmk_pool *pool = s->pool;
	struct mmk_slot *slot;
	u32 idx, gen;
	int ret;

	if (args->flags || args->__reserved)
		return -EINVAL;
	ret = mmk_token_parse(pool, args->token, &idx, &gen);
	if (ret)
		return ret;

	slot = pool->slots[idx];
	spin_lock(&slot->lock);
	ret = mmk_slot_check(slot, gen);
	if (!ret && (slot->readers || slot->writer))
		ret = -ETXTBSY;
	if (!ret && slot->queued)
		ret = -EINPROGRESS;
	if (!ret) {
		slot->state = MMK_SLOT_FREE;
		slot->poisoned = false;
	}
	spin_unlock(&slot->lock);
	if (ret)
		return ret;

	mmk_slot_recycle(pool, idx);
	return 0;
}

/* What a session's end did to one of its slots. */
enum mmk_hold_drop {
	MMK_HOLD_DROP_NONE,
	MMK_HOLD_DROP_LOAN,		/* a loan cancelled: the slot goes back */
	MMK_HOLD_DROP_POISON,	/* a write guard poisoned the slot */
};

/*
 * Drop a session's @hold on @slot.  A write guard poisons the slot unless
 * no userspace code could have used it: no window was mapped on it, and
 * @closes, the session's closes now, is what it was when the guard was
 * taken, so the call that won it was in flight after the last close.
 */
static enum mmk_hold_drop mmk_slot_drop_locked(struct mmk_slot *slot, u32 hold, u32 closes)
{
	bool poison;

	lockdep_assert_held(&slot->lock);
	slot->readers -= hold & MMK_HOLD_READERS;
	if (!(hold & MMK_HOLD_ANY_WRITE))
		return MMK_HOLD_DROP_NONE;
	if (slot->loaned) {
		mmk_loan_cancel_locked(slot);
		return MMK_HOLD_DROP_LOAN;
	}
	poison = slot->windowed || slot->writer_closes != closes;
	slot->writer = false;
	slot->windowed = false;
	if (!poison)
		return MMK_HOLD_DROP_NONE;
	slot->poisoned = true;
	return MMK_HOLD_DROP_POISON;
}

/*
 * Drop every guard of a session that is going away.  Shared guards are
 * released; a write guard poisons its slot, since its message may be
 * half-written (but see mmk_slot_drop_locked()), except a loan, which was
 * never published: its slot goes back to the free list.  A given message
 * that nothing holds any more is freed.  Every window of the session is
 * gone by now (each one held the session's file).
 */
void mmk_slots_drop_session(struct mmk_session *s)
{
	struct mmk_pool *pool = s->pool;
	int left = atomic_read(&s->nr_guards);
	u32 closes = atomic_read(&s->closes);
	enum mmk_hold_drop drop;
	bool orphan;
	u32 i, hold, gen;

	for (i = 0; left > 0 && i < pool->capacity; i++) {
		struct mmk_slot *slot = pool->slots[i];

		if (!s->holds[i])
			continue;
		spin_lock(&slot->lock);
		hold = s->holds[i];
		gen = slot->gen;
		drop = mmk_slot_drop_locked(slot, hold, closes);
		orphan = drop != MMK_HOLD_DROP_LOAN && mmk_slot_orphaned_locked(slot);
		s->holds[i] = 0;
		spin_unlock(&slot->lock);
		if (drop == MMK_HOLD_DROP_LOAN)
			mmk_slot_give_back(pool, i);
		else if (drop == MMK_HOLD_DROP_POISON)
			mmk_nl_slot_poisoned(pool, mmk_token_make(pool, gen, i));
		if (orphan)
			mmk_slot_recycle(pool, i);
		left -= (hold & MMK_HOLD_READERS) + !!(hold & MMK_HOLD_ANY_WRITE);
		cond_resched();
	}
	atomic_set(&s->nr_guards, 0);
	mmk_pool_wake(pool);
}
