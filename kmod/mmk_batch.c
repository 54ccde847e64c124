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
};

static int mmk_batch_store(struct mmk_session *s, struct mmk_batch_entry *op, u32 *idx)
{
	struct mmk_store st = {
		.header = op->header,
		.payload = op->payload,
		.payload_size = op->payload_size,
	};
	int ret;

	ret = mmk_store_prepare(s, &st, idx);
	op->token = ret ? MMK_TOKEN_INVALID : st.token;
	return ret;
}

static int mmk_batch_guard(struct mmk_session *s, struct mmk_batch_entry *op)
{
	struct mmk_guard g = { .token = op->token };
	int ret;

	if (op->header || op->payload)
		return -EINVAL;
	op->payload_size = 0;
	ret = mmk_guard_acquire(s, &g, false);
	if (ret)
		return ret;
	op->offset = g.offset;
	op->payload_size = g.payload_size;
	return 0;
}

/* Run one op; its result and out fields are set in @op. */
static enum mmk_batch_pending mmk_batch_exec(struct mmk_session *s, struct mmk_batch_entry *op,
					     u32 *idx)
{
	struct mmk_release rel = { .token = op->token };
	struct mmk_free fr = { .token = op->token };
	enum mmk_batch_pending pending = MMK_PENDING_NONE;
	int ret;

	op->offset = 0;
	if (op->flags) {
		ret = -EINVAL;
		goto out;
	}
	switch (op->op) {
	case MMK_BATCH_STORE:
		ret = mmk_batch_store(s, op, idx);
		pending = MMK_PENDING_STORE;
		break;
	case MMK_BATCH_READ:
	case MMK_BATCH_PEEK_HEADER:
		ret = mmk_batch_guard(s, op);
		pending = MMK_PENDING_GUARD;
		break;
	case MMK_BATCH_READ_RELEASE:
	case MMK_BATCH_FREE:
		if (op->header || op->payload || op->payload_size) {
			ret = -EINVAL;
			break;
		}
		if (op->op == MMK_BATCH_FREE)
			ret = mmk_free(s, &fr);
		else
			ret = mmk_read_release(s, &rel);
		break;
	default:
		ret = -EINVAL;
		break;
	}
out:
	op->result = ret;
	return ret ? MMK_PENDING_NONE : pending;
}

/*
 * Run one op and write it back.  Returns 0 when it was written back (its
 * result may be an error), or -EFAULT when it could not be, after undoing
 * it if it can be undone; *counted says whether it stays done anyway.
 */
static int mmk_batch_one(struct mmk_session *s, struct mmk_batch_entry *op,
			 struct mmk_batch_entry __user *uop, bool *counted)
{
	struct mmk_release undo = { .token = op->token };
	enum mmk_batch_pending pending;
	u32 idx = 0;

	pending = mmk_batch_exec(s, op, &idx);
	*counted = false;
	if (!copy_to_user(uop, op, sizeof(*op))) {
		if (pending == MMK_PENDING_STORE)
			mmk_store_publish(s->pool, idx, op->payload_size);
		return 0;
	}
	switch (pending) {
	case MMK_PENDING_STORE:
		mmk_store_abort(s->pool, idx);
		break;
	case MMK_PENDING_GUARD:
		mmk_read_release(s, &undo);
		break;
	case MMK_PENDING_NONE:
		/* A release or free that happened cannot be taken back. */
		*counted = !op->result;
		break;
	}
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
	unsigned long left;
	u32 i = 0, j, n;
	bool counted;
	int ret;

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
			ret = mmk_batch_one(s, &chunk[j], uops + i, &counted);
			if (ret) {
				args->done += counted;
				return ret;
			}
			if (chunk[j].result)
				return 0;
			args->done++;
		}
		if (left)
			return -EFAULT;
		cond_resched();
	}
	return 0;
}
