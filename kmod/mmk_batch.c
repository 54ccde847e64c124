// SPDX-License-Identifier: GPL-2.0
/*
 * MMK_IOC_BATCH: several data-path operations in one system call.
 *
 * Each op is turned into the argument of its single ioctl and run by the
 * same function (mmk_slot.c), so a batch decides exactly as the single
 * ioctls do.  Ops are copied in a chunk at a time, into the stack, so a
 * batch allocates nothing.  Each op is written back before the next one
 * runs, and a store's token reaches the caller before its message becomes
 * reachable, as with MMK_IOC_STORE.
 */
#include <linux/build_bug.h>
#include <linux/math.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <linux/uaccess.h>

#include "mmk_internal.h"

/* The op layout is fixed: no implicit padding, the same on every ABI. */
static_assert(sizeof(struct mmk_batch_entry) == 64);

/* Ops copied in at once: 8 * 64 bytes of stack. */
#define MMK_BATCH_CHUNK		8

/* What an op left to finish once it is written back, or to undo if not. */
enum mmk_batch_pending {
	MMK_PENDING_NONE,	/* failed, or cannot be undone */
	MMK_PENDING_STORE,	/* publish, or give the slot back */
	MMK_PENDING_GUARD,	/* keep, or drop the read or header guard */
	MMK_PENDING_LOAN,	/* keep, or cancel the loan */
	MMK_PENDING_POP,	/* keep, or give the message back to its queue */
};

/* An op's pending store: its slot and checked header. */
struct mmk_batch_store {
	struct mmk_msg_header h;
	u32 idx;
};

static int mmk_batch_store(struct mmk_session *s, struct mmk_batch_entry *op,
			   struct mmk_batch_store *st)
{
	struct mmk_store args = {
		.header = op->header,
		.payload = op->payload,
		.payload_size = op->payload_size,
	};
	int ret;

	ret = mmk_store_prepare(s, &args, &st->idx, &st->h);
	op->token = ret ? MMK_TOKEN_INVALID : args.token;
	return ret;
}

static int mmk_batch_guard(struct mmk_session *s, struct mmk_batch_entry *op)
{
	struct mmk_guard g = { .token = op->token };
	int ret;

	op->payload_size = 0;
	ret = mmk_guard_acquire(s, &g, false);
	if (ret)
		return ret;
	op->offset = g.offset;
	op->payload_size = g.payload_size;
	return 0;
}

static int mmk_batch_push(struct mmk_session *s, struct mmk_batch_entry *op, u32 flags,
			  struct mmk_wakes *w)
{
	struct mmk_push args = {
		.token = op->token,
		.flags = op->flags | flags,
		.nr_queues = 1,
		.queue_fds = { op->queue_fd },
		.timeout_ns = op->timeout_ns,
		.header = op->header,
		.payload = op->payload,
		.payload_size = op->payload_size,
	};
	int ret;

	if (op->flags & ~MMK_PUSH_WAIT)
		return -EINVAL;
	ret = mmk_push(s, &args, w);
	if (flags & MMK_PUSH_STORE)
		op->token = args.token;
	op->outcome = (args.dropped ? MMK_PUSH_DROPPED : 0) |
		      min_t(u32, args.evicted, MMK_OUTCOME_EVICTED);
	return ret;
}

static int mmk_batch_pop(struct mmk_session *s, struct mmk_batch_entry *op, struct mmk_wakes *w)
{
	struct mmk_popped p;
	int ret;

	op->token = MMK_TOKEN_INVALID;
	op->payload_size = 0;
	ret = mmk_pop_one(s, op->queue_fd, op->flags, op->timeout_ns, &p, w);
	if (ret)
		return ret;
	op->token = p.token;
	op->offset = p.offset;
	op->payload_size = p.payload_size;
	return 0;
}

static int mmk_batch_loan(struct mmk_session *s, struct mmk_batch_entry *op)
{
	struct mmk_loan args = {};
	int ret;

	op->token = MMK_TOKEN_INVALID;
	ret = mmk_loan(s, &args);
	if (ret)
		return ret;
	op->token = args.token;
	op->offset = args.offset;
	return 0;
}

static int mmk_batch_write_release(struct mmk_session *s, struct mmk_batch_entry *op)
{
	struct mmk_release args = {
		.token = op->token,
		.flags = op->flags,
		.payload_size = op->payload_size,
		.header = op->header,
		.payload = op->payload,
	};

	return mmk_write_release(s, &args);
}

/*
 * Fields each op may use besides its token (in, or out and ignored on
 * entry); every other one must be zero on entry, except payload_size for
 * the ops that return it (MMK_F_SIZE_OUT).
 */
#define MMK_F_MSG	BIT(0)	/* header, payload, payload_size */
#define MMK_F_QUEUE	BIT(1)	/* queue_fd, timeout_ns */
#define MMK_F_FLAGS	BIT(2)
#define MMK_F_SIZE_OUT	BIT(3)

static const u8 mmk_batch_fields[] = {
	[MMK_BATCH_STORE]	  = MMK_F_MSG,
	[MMK_BATCH_READ]	  = MMK_F_SIZE_OUT,
	[MMK_BATCH_PEEK_HEADER]	  = MMK_F_SIZE_OUT,
	[MMK_BATCH_READ_RELEASE]  = 0,
	[MMK_BATCH_FREE]	  = 0,
	[MMK_BATCH_PUSH]	  = MMK_F_QUEUE | MMK_F_FLAGS,
	[MMK_BATCH_STORE_PUSH]	  = MMK_F_MSG | MMK_F_QUEUE | MMK_F_FLAGS,
	[MMK_BATCH_COMMIT_PUSH]	  = MMK_F_MSG | MMK_F_QUEUE | MMK_F_FLAGS,
	[MMK_BATCH_POP]		  = MMK_F_QUEUE | MMK_F_FLAGS | MMK_F_SIZE_OUT,
	[MMK_BATCH_LOAN]	  = 0,
	[MMK_BATCH_WRITE_RELEASE] = MMK_F_MSG | MMK_F_FLAGS,
};

/* EINVAL for an unknown op, or a field it does not use that is not zero. */
static int mmk_batch_check(const struct mmk_batch_entry *op)
{
	u8 f;

	if (!op->op || op->op >= ARRAY_SIZE(mmk_batch_fields))
		return -EINVAL;
	f = mmk_batch_fields[op->op];
	if (!(f & MMK_F_MSG) && (op->header || op->payload))
		return -EINVAL;
	if (!(f & (MMK_F_MSG | MMK_F_SIZE_OUT)) && op->payload_size)
		return -EINVAL;
	if (!(f & MMK_F_QUEUE) && (op->queue_fd || op->timeout_ns))
		return -EINVAL;
	if (!(f & MMK_F_FLAGS) && op->flags)
		return -EINVAL;
	return 0;
}

/* Run one op; its result and out fields are set in @op.  @w: the batch's wake-ups. */
static enum mmk_batch_pending mmk_batch_exec(struct mmk_session *s, struct mmk_batch_entry *op,
					     struct mmk_batch_store *st, struct mmk_wakes *w)
{
	struct mmk_release rel = { .token = op->token };
	struct mmk_free fr = { .token = op->token };
	enum mmk_batch_pending pending = MMK_PENDING_NONE;
	int ret;

	op->offset = 0;
	op->outcome = 0;
	ret = mmk_batch_check(op);
	if (ret)
		goto out;
	switch (op->op) {
	case MMK_BATCH_STORE:
		ret = mmk_batch_store(s, op, st);
		pending = MMK_PENDING_STORE;
		break;
	case MMK_BATCH_READ:
	case MMK_BATCH_PEEK_HEADER:
		ret = mmk_batch_guard(s, op);
		pending = MMK_PENDING_GUARD;
		break;
	case MMK_BATCH_READ_RELEASE:
		ret = mmk_read_release(s, &rel);
		break;
	case MMK_BATCH_FREE:
		ret = mmk_free(s, &fr);
		break;
	case MMK_BATCH_PUSH:
		ret = mmk_batch_push(s, op, 0, w);
		break;
	case MMK_BATCH_STORE_PUSH:
		ret = mmk_batch_push(s, op, MMK_PUSH_STORE, w);
		break;
	case MMK_BATCH_COMMIT_PUSH:
		ret = mmk_batch_push(s, op, MMK_PUSH_COMMIT, w);
		break;
	case MMK_BATCH_POP:
		ret = mmk_batch_pop(s, op, w);
		pending = MMK_PENDING_POP;
		break;
	case MMK_BATCH_LOAN:
		ret = mmk_batch_loan(s, op);
		pending = MMK_PENDING_LOAN;
		break;
	case MMK_BATCH_WRITE_RELEASE:
		ret = mmk_batch_write_release(s, op);
		break;
	}
out:
	op->result = ret;
	return ret ? MMK_PENDING_NONE : pending;
}

/* An op ran but its entry could not be written back: take it back. */
static void mmk_batch_undo(struct mmk_session *s, const struct mmk_batch_entry *op,
			   enum mmk_batch_pending pending, const struct mmk_batch_store *st)
{
	struct mmk_release rel = { .token = op->token };
	struct mmk_popped p = { .token = op->token };

	switch (pending) {
	case MMK_PENDING_STORE:
		mmk_store_abort(s->pool, st->idx);
		break;
	case MMK_PENDING_GUARD:
		mmk_read_release(s, &rel);
		break;
	case MMK_PENDING_LOAN:
		mmk_write_release(s, &rel);
		break;
	case MMK_PENDING_POP:
		mmk_pop_undo(s, op->queue_fd, op->flags, &p);
		break;
	case MMK_PENDING_NONE:
		break;
	}
}

/* A commit of what was written through a window: no header, payload or size. */
static bool mmk_batch_commits_in_place(const struct mmk_batch_entry *op)
{
	if (op->header || op->payload || op->payload_size)
		return false;
	return op->op == MMK_BATCH_COMMIT_PUSH ||
	       (op->op == MMK_BATCH_WRITE_RELEASE && op->flags == MMK_RELEASE_COMMIT);
}

/*
 * The slots whose write guards a batch took ahead of their commits, to zap
 * their windows in one pass: @first to @last (first > last: none yet), for
 * the ops before @to.
 */
struct mmk_batch_zap {
	u32 first;
	u32 last;
	u32 to;
};

/*
 * The ops from @i on that commit in place, up to the first that does not:
 * take their windowed write guards out of the session's hands
 * (mmk_write_prezap_locked) and zap all their windows in one pass, rather
 * than one zap per commit.  The guards the batch then does not commit (it
 * stops early, or the ops changed under it) are handed back at its end.
 */
static void mmk_batch_prezap(struct mmk_session *s, const struct mmk_batch_entry __user *uops,
			     u32 i, u32 count, struct mmk_batch_zap *z)
{
	struct mmk_pool *pool = s->pool;
	u32 idx, gen, first = U32_MAX, last = 0;
	struct mmk_batch_entry op;
	struct mmk_slot *slot;
	bool taken;

	for (; i < count; i++) {
		if (copy_from_user(&op, uops + i, sizeof(op)) || !mmk_batch_commits_in_place(&op))
			break;
		if (mmk_token_parse(pool, op.token, &idx, &gen))
			continue;
		slot = pool->slots[idx];
		spin_lock(&slot->lock);
		taken = !mmk_slot_check(slot, gen) && mmk_write_prezap_locked(s, slot, idx);
		spin_unlock(&slot->lock);
		if (!taken)
			continue;
		first = min(first, idx);
		last = max(last, idx);
	}
	z->to = i;
	if (first > last)
		return;
	mmk_window_unmap_span(s, first, last);
	z->first = min(z->first, first);
	z->last = max(z->last, last);
}

/*
 * Run one op and write it back.  Returns 0 when it was written back (its
 * result may be an error), or -EFAULT when it could not be, after undoing
 * it if it can be undone; *counted says whether it stays done anyway.
 */
static int mmk_batch_one(struct mmk_session *s, struct mmk_batch_entry *op,
			 struct mmk_batch_entry __user *uop, struct mmk_wakes *w, bool *counted)
{
	enum mmk_batch_pending pending;
	struct mmk_batch_store st;

	pending = mmk_batch_exec(s, op, &st, w);
	*counted = false;
	if (!copy_to_user(uop, op, sizeof(*op))) {
		if (pending == MMK_PENDING_STORE)
			mmk_store_publish(s->pool, st.idx, &st.h);
		return 0;
	}
	/* A release, free or push that happened cannot be taken back. */
	*counted = !op->result && pending == MMK_PENDING_NONE;
	mmk_batch_undo(s, op, pending, &st);
	return -EFAULT;
}

/**
 * mmk_batch_run - run the ops of a batch, in order, up to the first failure
 * @s: the session
 * @args: the batch, already copied in; args->done is set
 *
 * Return: 0 (whatever the ops did), -EINVAL or -EDQUOT for a bad batch
 * header (nothing run), or -EFAULT if the ops could not be read or an op
 * could not be written back (see struct mmk_batch).
 */
int mmk_batch_run(struct mmk_session *s, struct mmk_batch *args)
{
	struct mmk_batch_entry __user *uops = u64_to_user_ptr(args->ops);
	struct mmk_batch_entry chunk[MMK_BATCH_CHUNK];
	struct mmk_batch_zap zap = { .first = U32_MAX };
	struct mmk_wakes wakes = {};
	unsigned long left;
	u32 i = 0, j, n;
	bool counted;
	int ret = 0;

	args->done = 0;
	if (args->flags || args->__reserved)
		return -EINVAL;
	if (args->count > READ_ONCE(mmk_max_batch_ops))
		return -EDQUOT;

	while (i < args->count) {
		n = min_t(u32, args->count - i, MMK_BATCH_CHUNK);
		/* Run the ops read in full, then fail at the first that was not. */
		left = copy_from_user(chunk, uops + i, n * sizeof(*chunk));
		n -= DIV_ROUND_UP(left, sizeof(*chunk));
		for (j = 0; j < n; j++, i++) {
			/* A run of commits through windows: one zap for all. */
			if (i >= zap.to && mmk_batch_commits_in_place(&chunk[j]))
				mmk_batch_prezap(s, uops, i, args->count, &zap);
			ret = mmk_batch_one(s, &chunk[j], uops + i, &wakes, &counted);
			if (ret) {
				args->done += counted;
				goto out;
			}
			if (chunk[j].result)
				goto out;
			args->done++;
		}
		if (left) {
			ret = -EFAULT;
			goto out;
		}
		cond_resched();
	}
out:
	/* Guards taken for commits that did not run are the caller's again. */
	if (zap.first <= zap.last)
		mmk_write_unzap(s, zap.first, zap.last);
	/* One wake-up per queue for the whole batch (mmk_wakes). */
	mmk_wakes_flush(&wakes, false);
	return ret;
}
