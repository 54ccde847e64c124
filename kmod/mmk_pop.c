// SPDX-License-Identifier: GPL-2.0
/*
 * Pop and peek (SPEC §9): take the oldest messages of a queue as guards
 * of the popping session, or look at one without taking it.
 *
 * A pop takes the queue's lock, then the head message's slot lock, and
 * turns the queue's hold into a read (or write) guard in one step, so the
 * message is never unheld in between.  No pool-wide lock is taken.
 */
#include <linux/ktime.h>
#include <linux/uaccess.h>

#include "mmk_internal.h"
#include "mmk_compat.h"
#include "mmk_queue.h"

/* ---- pop -------------------------------------------------------------------- */

static bool mmk_slot_expired(const struct mmk_slot *slot, u64 now)
{
	return slot->has_deadline && slot->deadline_ns < now;
}

/* Turn the queue's hold on the head message into a guard of @s; locks held. */
static int mmk_pop_guard_locked(struct mmk_session *s, struct mmk_slot *slot, u32 idx,
				bool write, struct mmk_popped *out)
{
	lockdep_assert_held(&slot->lock);
	if (write && (slot->queued > 1 || slot->readers || slot->writer))
		return -EBUSY;
	if (!mmk_session_charge_guard(s))
		return -EDQUOT;
	slot->queued--;
	if (write) {
		slot->writer = true;
		slot->writer_closes = atomic_read(&s->closes);
		s->holds[idx] |= MMK_HOLD_WRITE;
	} else {
		slot->readers++;
		s->holds[idx]++;
	}
	out->token = mmk_token_make(s->pool, slot->gen, idx);
	out->offset = (u64)idx * s->pool->slot_size;
	out->payload_size = slot->payload_size;
	out->__reserved = 0;
	return 0;
}

/* Take the oldest message of @q as a guard of @s: 0, -EAGAIN if none, or an error. */
static int mmk_queue_take(struct mmk_session *s, struct mmk_queue *q, bool write,
			  struct mmk_popped *out, struct mmk_wakes *w)
{
	u64 now = q->policy == MMK_QUEUE_QOS ? ktime_get_ns() : 0;
	bool removed = false;
	struct mmk_slot *slot;
	int ret = -EAGAIN;
	u32 idx;

	spin_lock(&q->lock);
	while (q->items) {
		idx = q->ring[q->head];
		slot = s->pool->slots[idx];
		if (now && mmk_slot_expired(slot, now)) {
			mmk_queue_drop_head(q, MMK_DROP_DEADLINE);
			removed = true;
			continue;
		}
		spin_lock(&slot->lock);
		ret = mmk_pop_guard_locked(s, slot, idx, write, out);
		spin_unlock(&slot->lock);
		if (!ret) {
			mmk_queue_remove_head(q);
			q->pops++;
			removed = true;
		}
		break;
	}
	spin_unlock(&q->lock);
	if (removed)
		mmk_queue_wake(q, EPOLLOUT | EPOLLWRNORM, w);
	return ret;
}

/* Give back a popped message whose result could not be written out. */
static void mmk_queue_untake(struct mmk_session *s, struct mmk_queue *q,
			     const struct mmk_popped *p, bool write)
{
	struct mmk_release rel = { .token = p->token };
	bool back = false, held;
	struct mmk_slot *slot;
	u32 idx, gen;

	mmk_token_parse(s->pool, p->token, &idx, &gen);
	slot = s->pool->slots[idx];
	spin_lock(&q->lock);
	spin_lock(&slot->lock);
	/* Another thread of the session may have let it go already. */
	held = !mmk_slot_check(slot, gen) &&
	       s->holds[idx] & (write ? MMK_HOLD_ANY_WRITE : MMK_HOLD_READERS);
	/*
	 * A write pop whose window another thread faulted in meanwhile is
	 * released instead of put back: only a release zaps the window.
	 */
	if (held && !(write && slot->windowed) && mmk_queue_unpop(q, idx)) {
		slot->queued++;
		if (write) {
			slot->writer = false;
			s->holds[idx] &= ~MMK_HOLD_ANY_WRITE;
		} else {
			slot->readers--;
			s->holds[idx]--;
		}
		back = true;
	}
	spin_unlock(&slot->lock);
	spin_unlock(&q->lock);
	if (back) {
		atomic_dec(&s->nr_guards);
		mmk_queue_wake(q, EPOLLIN | EPOLLRDNORM, NULL);
		mmk_pool_wake(s->pool);
		return;
	}
	if (!held)
		return;
	/* No room left to put it back (or a window): let it go unread. */
	if (write)
		mmk_write_drop(s, p->token);
	else
		mmk_read_release(s, &rel);
}

/* One attempt to pop, and its outcome, for the wait loop. */
struct mmk_take {
	struct mmk_session *s;
	struct mmk_queue *q;
	bool write;
	struct mmk_popped *out;
	struct mmk_wakes *wakes;
	int ret;
};

static bool mmk_take_try(struct mmk_take *t)
{
	t->ret = mmk_queue_take(t->s, t->q, t->write, t->out, t->wakes);
	return t->ret != -EAGAIN;
}

/* Take one message, waiting for it with MMK_POP_WAIT; @w: the call's held-back wake-ups. */
static int mmk_pop_wait(struct mmk_session *s, struct mmk_queue *q, u32 flags, u64 timeout_ns,
			struct mmk_popped *out, struct mmk_wakes *w)
{
	struct mmk_take t = {
		.s = s, .q = q, .write = flags & MMK_POP_WRITE, .out = out, .wakes = w,
	};
	int wret;

	if (mmk_take_try(&t) || !(flags & MMK_POP_WAIT))
		return t.ret;
	mmk_wakes_flush(w, true);
	/* What a try makes while we sleep (QoS drops) wakes at once. */
	t.wakes = NULL;
	if (timeout_ns)
		wret = wait_event_interruptible_hrtimeout(q->wq, mmk_take_try(&t),
							  ns_to_ktime(min_t(u64, timeout_ns,
									    KTIME_MAX)));
	else
		wret = wait_event_interruptible(q->wq, mmk_take_try(&t));
	return wret == -ERESTARTSYS ? -EINTR : t.ret;
}

static int mmk_pop_check(u32 flags, u64 timeout_ns)
{
	if (flags & ~MMK_POP_FLAGS_ALL)
		return -EINVAL;
	if (!(flags & MMK_POP_WAIT) && timeout_ns)
		return -EINVAL;
	return 0;
}

/**
 * mmk_pop_one - pop one message (a batch's POP op)
 * @s: the session
 * @queue_fd: the queue
 * @flags: MMK_POP_*
 * @timeout_ns: with MMK_POP_WAIT, longest wait (0: none)
 * @out: the message taken
 * @w: wake-ups the batch holds back
 *
 * The caller undoes it with mmk_pop_undo() if @out cannot be written back.
 */
int mmk_pop_one(struct mmk_session *s, int queue_fd, u32 flags, u64 timeout_ns,
		struct mmk_popped *out, struct mmk_wakes *w)
{
	struct mmk_queue *q;
	struct fd f;
	int ret;

	ret = mmk_pop_check(flags, timeout_ns);
	if (ret)
		return ret;
	ret = mmk_queue_fdget(s, queue_fd, &f, &q);
	if (ret)
		return ret;
	ret = mmk_pop_wait(s, q, flags, timeout_ns, out, w);
	fdput(f);
	return ret;
}

/**
 * mmk_pop - take up to args->max messages (MMK_IOC_POP)
 * @s: the session
 * @args: pop arguments; count is set
 *
 * Each message is written out before the next is taken.  One that cannot
 * be written out is put back in front of the queue (or, if a push took
 * its room meanwhile, or a write pop's window was faulted in, let go
 * unread: mmk_queue_untake()) and the call fails with -EFAULT, keeping
 * the ones already written.
 */
int mmk_pop(struct mmk_session *s, struct mmk_pop *args)
{
	struct mmk_popped __user *uent = u64_to_user_ptr(args->entries);
	bool write = args->flags & MMK_POP_WRITE;
	struct mmk_wakes wakes = {};
	struct mmk_popped p;
	struct mmk_queue *q;
	struct fd f;
	int ret;

	args->count = 0;
	ret = mmk_pop_check(args->flags, args->timeout_ns);
	if (ret)
		return ret;
	if (!args->max || args->max > READ_ONCE(mmk_max_batch_ops))
		return -EINVAL;
	ret = mmk_queue_fdget(s, args->queue_fd, &f, &q);
	if (ret)
		return ret;

	/* The room the pops make wakes a waiting push once, at the end. */
	ret = mmk_pop_wait(s, q, args->flags, args->timeout_ns, &p, &wakes);
	while (!ret) {
		if (copy_to_user(uent + args->count, &p, sizeof(p))) {
			mmk_queue_untake(s, q, &p, write);
			ret = -EFAULT;
			break;
		}
		if (++args->count == args->max)
			break;
		ret = mmk_queue_take(s, q, write, &p, &wakes);
	}
	mmk_wakes_flush(&wakes, false);
	fdput(f);
	/* Stopping at an empty queue, or a write pop at a shared message, is fine. */
	return args->count && ret != -EFAULT ? 0 : ret;
}

/**
 * mmk_pop_undo - give back what mmk_pop_one() took
 * @s: the session
 * @queue_fd: the queue it came from
 * @flags: MMK_POP_* of the pop
 * @p: the message
 */
void mmk_pop_undo(struct mmk_session *s, int queue_fd, u32 flags, const struct mmk_popped *p)
{
	struct mmk_release rel = { .token = p->token };
	struct mmk_queue *q;
	struct fd f;

	if (!mmk_queue_fdget(s, queue_fd, &f, &q)) {
		mmk_queue_untake(s, q, p, flags & MMK_POP_WRITE);
		fdput(f);
	} else if (flags & MMK_POP_WRITE) {
		mmk_write_drop(s, p->token);
	} else {
		mmk_read_release(s, &rel);
	}
}

/* ---- peek ------------------------------------------------------------------- */

int mmk_queue_peek(struct mmk_session *s, struct mmk_queue_peek *args)
{
	struct mmk_slot *slot;
	struct mmk_queue *q;
	struct fd f;
	int ret;
	u32 idx;

	if (args->__reserved[0] || args->__reserved[1] || args->__reserved[2] ||
	    args->__reserved2)
		return -EINVAL;
	ret = mmk_queue_fdget(s, args->queue_fd, &f, &q);
	if (ret)
		return ret;

	spin_lock(&q->lock);
	if (args->index < q->items) {
		idx = mmk_queue_at(q, args->index);
		slot = s->pool->slots[idx];
		/* Queued: the slot's message and its metadata cannot change. */
		args->token = mmk_token_make(s->pool, slot->gen, idx);
		args->offset = (u64)idx * s->pool->slot_size;
		args->payload_size = slot->payload_size;
		args->qos = slot->qos;
		args->msg_flags = slot->has_deadline ? MMK_MSG_HAS_DEADLINE : 0;
		args->deadline_ns = slot->has_deadline ? slot->deadline_ns : 0;
	} else {
		ret = -EAGAIN;
	}
	spin_unlock(&q->lock);
	fdput(f);
	return ret;
}

