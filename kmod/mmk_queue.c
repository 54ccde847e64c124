// SPDX-License-Identifier: GPL-2.0
/*
 * Queues: bounded FIFOs of tokens of one pool, with an admission policy
 * (SPEC §9; the uAPI is in uapi/linux/mmk.h, the design in docs/DESIGN.md).
 *
 * This file holds the queue object: its ring, its files, open and lookup,
 * and listings; admission and push are in mmk_push.c, pop and peek in
 * mmk_pop.c.
 *
 * A queue is a file of its own.  It holds slot indices in a ring, and a
 * bitmap of the slots it holds: a message is in a queue at most once, and
 * a queued message cannot be freed or rewritten, so its slot index names
 * it and its size and QoS do not change while it is queued.  Every
 * decision about a queue is taken under its lock; a slot's queue count
 * (slot->queued) changes under the slot's lock, nested inside.  Push and
 * pop take no pool-wide lock.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mmk_internal.h"
#include "mmk_compat.h"
#include "mmk_queue.h"

static const struct file_operations mmk_queue_fops;

/* A queue's open file: the queue, and the session it was opened through. */
struct mmk_queue_file {
	struct mmk_queue *q;
	struct mmk_session_tag *tag;
};

/* ---- occupancy ------------------------------------------------------------ */

u32 mmk_queue_watermark(const struct mmk_queue *q)
{
	lockdep_assert_held(&q->lock);
	if (q->items >= q->cap_items || (q->cap_bytes && q->bytes >= q->cap_bytes))
		return MMK_WM_AT_HARD;
	if (q->items >= q->soft_items || (q->cap_bytes && q->bytes >= q->soft_bytes))
		return MMK_WM_BETWEEN;
	return MMK_WM_BELOW_SOFT;
}

u32 mmk_queue_at(const struct mmk_queue *q, u32 n)
{
	u32 pos = q->head + n;

	return q->ring[pos >= q->cap_items ? pos - q->cap_items : pos];
}

void mmk_queue_append(struct mmk_queue *q, u32 idx, u32 size)
{
	u32 pos = q->head + q->items;

	q->ring[pos >= q->cap_items ? pos - q->cap_items : pos] = idx;
	q->items++;
	q->high_items = max(q->high_items, q->items);
	q->bytes += size;
	__set_bit(idx, q->member);
	q->pushes++;
}

/* Take the oldest entry off the ring; the slot's queue count is the caller's. */
u32 mmk_queue_remove_head(struct mmk_queue *q)
{
	u32 idx = q->ring[q->head];

	q->head = q->head + 1 == q->cap_items ? 0 : q->head + 1;
	q->items--;
	q->bytes -= q->pool->slots[idx]->payload_size;
	__clear_bit(idx, q->member);
	return idx;
}

/* Put a popped entry back in front (it was removed by this call). */
bool mmk_queue_unpop(struct mmk_queue *q, u32 idx)
{
	/* Not if the descriptor now names a queue that holds it, or never popped. */
	if (q->items == q->cap_items || test_bit(idx, q->member) || !q->pops)
		return false;
	q->head = q->head ? q->head - 1 : q->cap_items - 1;
	q->ring[q->head] = idx;
	q->items++;
	q->bytes += q->pool->slots[idx]->payload_size;
	__set_bit(idx, q->member);
	q->pops--;
	return true;
}

/* Drop the oldest message for @reason; it is freed if nothing else holds it. */
void mmk_queue_drop_head(struct mmk_queue *q, unsigned int reason)
{
	mmk_slot_unqueue(q->pool, mmk_queue_remove_head(q));
	q->drops[reason]++;
}

static void mmk_queue_put(struct mmk_queue *q);

/*
 * @sync: the caller is about to wait, so the woken task may as well run
 * on this CPU (WF_SYNC), as a pipe writer's wake-up does.
 */
static void mmk_queue_wake_now(struct mmk_queue *q, __poll_t events, bool sync)
{
	if (!wq_has_sleeper(&q->wq))
		return;
	if (sync)
		wake_up_interruptible_sync_poll(&q->wq, events);
	else
		wake_up_interruptible_poll(&q->wq, events);
}

void mmk_queue_wake(struct mmk_queue *q, __poll_t events, struct mmk_wakes *w)
{
	u32 i;

	for (i = 0; w && i < w->n; i++) {
		if (w->q[i] == q) {
			w->events[i] |= events;
			return;
		}
	}
	if (w && w->n < MMK_WAKES_MAX) {
		kref_get(&q->ref);
		w->q[w->n] = q;
		w->events[w->n++] = events;
		return;
	}
	mmk_queue_wake_now(q, events, false);
}

/**
 * mmk_wakes_flush - the wake-ups a call held back, now
 * @w: what it held back; emptied
 * @waiting: the call is about to wait
 *
 * Called at the end of the call, and before it waits: a call that waits
 * holding back a wake-up could wait for the very peer it did not wake.
 */
void mmk_wakes_flush(struct mmk_wakes *w, bool waiting)
{
	while (w->n) {
		w->n--;
		mmk_queue_wake_now(w->q[w->n], w->events[w->n], waiting);
		mmk_queue_put(w->q[w->n]);
	}
}

/* ---- queue descriptors ------------------------------------------------------ */

/*
 * What a queue of @cap_items allocates, counted against max_total_bytes:
 * its struct, ring and membership bitmap.
 */
static u64 mmk_queue_charge(const struct mmk_pool *pool, u32 cap_items)
{
	return sizeof(struct mmk_queue) + (u64)cap_items * sizeof(u32) +
	       BITS_TO_LONGS(pool->capacity) * sizeof(long);
}

/* Called by kref_put_mutex() with pool->members_lock held; drops it. */
static void mmk_queue_release(struct kref *ref)
{
	struct mmk_queue *q = container_of(ref, struct mmk_queue, ref);
	struct mmk_pool *pool = q->pool;

	list_del(&q->node);
	pool->nr_queues--;
	pool->queue_bytes -= mmk_queue_charge(pool, q->cap_items);
	ida_free(&pool->queue_ida, q->id);
	mutex_unlock(&pool->members_lock);

	/* Unreachable now: no file, no lookup.  Let go of every message. */
	while (q->items) {
		mmk_slot_unqueue(pool, mmk_queue_remove_head(q));
		cond_resched();
	}
	mmk_charge_release(mmk_queue_charge(pool, q->cap_items));
	kvfree(q->member);
	kvfree(q->ring);
	kfree(q);
	mmk_pool_put(pool);
}

static void mmk_queue_put(struct mmk_queue *q)
{
	kref_put_mutex(&q->ref, mmk_queue_release, &q->pool->members_lock);
}

static int mmk_queue_file_release(struct inode *inode, struct file *file)
{
	struct mmk_queue_file *qf = file->private_data;

	atomic_dec(&qf->tag->queues_open);
	mmk_session_tag_put(qf->tag);
	mmk_queue_put(qf->q);
	kfree(qf);
	return 0;
}

static struct mmk_queue *mmk_file_queue(struct file *file)
{
	return ((struct mmk_queue_file *)file->private_data)->q;
}

static __poll_t mmk_queue_poll(struct file *file, poll_table *pt)
{
	struct mmk_queue *q = mmk_file_queue(file);
	__poll_t mask = 0;

	poll_wait(file, &q->wq, pt);
	spin_lock(&q->lock);
	if (q->items)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (mmk_queue_watermark(q) == MMK_WM_BELOW_SOFT)
		mask |= EPOLLOUT | EPOLLWRNORM;
	spin_unlock(&q->lock);
	return mask;
}

static void mmk_queue_fill_info(struct mmk_queue *q, struct mmk_queue_info *info)
{
	memset(info, 0, sizeof(*info));
	info->queue_id = q->id;
	info->pool_id = q->pool->id;
	info->policy = q->policy;
	info->cap_items = q->cap_items;
	info->soft_items = q->soft_items;
	info->cap_bytes = q->cap_bytes;
	info->soft_bytes = q->cap_bytes ? q->soft_bytes : 0;
	strscpy(info->name, q->name, sizeof(info->name));

	spin_lock(&q->lock);
	info->watermark = mmk_queue_watermark(q);
	info->items = q->items;
	info->high_items = q->high_items;
	info->bytes = q->bytes;
	info->pushes = q->pushes;
	info->pops = q->pops;
	info->rejected = q->rejected;
	memcpy(info->drops, q->drops, sizeof(info->drops));
	spin_unlock(&q->lock);
}

static long mmk_queue_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct mmk_queue_info info;
	void __user *uarg = (void __user *)arg;
	size_t usize = _IOC_SIZE(cmd);

	if (_IOC_TYPE(cmd) != MMK_IOC_MAGIC || _IOC_NR(cmd) != _IOC_NR(MMK_IOC_QUEUE_INFO) ||
	    _IOC_DIR(cmd) != _IOC_READ)
		return -ENOTTY;
	if (usize < sizeof(info))
		return -EINVAL;
	mmk_queue_fill_info(mmk_file_queue(file), &info);
	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	if (usize > sizeof(info) && clear_user(uarg + sizeof(info), usize - sizeof(info)))
		return -EFAULT;
	return 0;
}

static const struct file_operations mmk_queue_fops = {
	.owner		= THIS_MODULE,
	.release	= mmk_queue_file_release,
	.poll		= mmk_queue_poll,
	.unlocked_ioctl	= mmk_queue_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

/* Caller holds pool->members_lock. */
static struct mmk_queue *mmk_queue_lookup(struct mmk_pool *pool, const char *name)
{
	struct mmk_queue *q;

	lockdep_assert_held(&pool->members_lock);
	list_for_each_entry(q, &pool->queues, node)
		if (q->name[0] && !strcmp(q->name, name))
			return q;
	return NULL;
}

static int mmk_queue_check_args(const struct mmk_queue_open *args)
{
	bool create = args->flags & MMK_QUEUE_CREATE;

	if (args->flags & ~MMK_QUEUE_OPEN_FLAGS_ALL)
		return -EINVAL;
	if (mmk_name_check(args->name, create))
		return -EINVAL;
	if (!create)
		return args->policy || args->cap_items || args->soft_items || args->cap_bytes ||
		       args->soft_bytes ? -EINVAL : 0;
	if (args->policy > MMK_QUEUE_POLICY_MAX)
		return -EINVAL;
	if (!args->cap_items || args->cap_items > READ_ONCE(mmk_max_queue_items) ||
	    args->soft_items > args->cap_items)
		return -EINVAL;
	if (args->soft_bytes > args->cap_bytes)
		return -EINVAL;
	return 0;
}

/* Allocate a queue for @pool; caller holds pool->members_lock. */
static struct mmk_queue *mmk_queue_alloc(struct mmk_pool *pool, const struct mmk_queue_open *args)
{
	struct mmk_queue *q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
	int id;

	if (!q)
		return NULL;
	q->ring = kvmalloc_array(args->cap_items, sizeof(*q->ring), MMK_GFP_USER_SIZED);
	q->member = kvcalloc(BITS_TO_LONGS(pool->capacity), sizeof(long), MMK_GFP_USER_SIZED);
	id = ida_alloc_min(&pool->queue_ida, 1, GFP_KERNEL);
	if (!q->ring || !q->member || id < 0) {
		if (id >= 0)
			ida_free(&pool->queue_ida, id);
		kvfree(q->member);
		kvfree(q->ring);
		kfree(q);
		return NULL;
	}
	kref_init(&q->ref);
	spin_lock_init(&q->lock);
	init_waitqueue_head(&q->wq);
	q->id = id;
	q->pool = pool;
	q->policy = args->policy;
	q->cap_items = args->cap_items;
	q->soft_items = args->soft_items ?: args->cap_items;
	q->cap_bytes = args->cap_bytes;
	q->soft_bytes = args->soft_bytes ?: args->cap_bytes;
	strscpy(q->name, args->name, sizeof(q->name));
	return q;
}

/* Make a new queue of @pool, or find the named one; a reference for the caller. */
static int mmk_queue_get(struct mmk_pool *pool, const struct mmk_queue_open *args,
			 struct mmk_queue **out)
{
	bool create = args->flags & MMK_QUEUE_CREATE;
	u64 bytes = create ? mmk_queue_charge(pool, args->cap_items) : 0;
	struct mmk_queue *q;
	int ret = 0;

	/* The caps first: nothing is allocated for a queue over them. */
	if (bytes && mmk_charge_reserve(bytes))
		return -EDQUOT;
	mutex_lock(&pool->members_lock);
	q = args->name[0] ? mmk_queue_lookup(pool, args->name) : NULL;
	if (!create) {
		if (q)
			kref_get(&q->ref);
		else
			ret = -ENOENT;
	} else if (q) {
		ret = -EEXIST;
	} else if (pool->nr_queues >= READ_ONCE(mmk_max_queues_per_pool)) {
		ret = -EDQUOT;
	} else {
		q = mmk_queue_alloc(pool, args);
		if (q) {
			kref_get(&pool->ref);
			list_add_tail(&q->node, &pool->queues);
			pool->nr_queues++;
			pool->queue_bytes += bytes;
		} else {
			ret = -ENOMEM;
		}
	}
	mutex_unlock(&pool->members_lock);
	if (ret && bytes)
		mmk_charge_release(bytes);
	*out = q;
	return ret;
}

/**
 * mmk_queue_open - make or open a queue of the session's pool
 * @s: the session
 * @args: open arguments; queue_id is set on success (fd by the caller)
 * @file: out: the queue's new file, for the caller to install
 */
int mmk_queue_open(struct mmk_session *s, struct mmk_queue_open *args, struct file **file)
{
	struct mmk_queue_file *qf;
	int ret;

	ret = mmk_queue_check_args(args);
	if (ret)
		return ret;
	qf = kzalloc(sizeof(*qf), GFP_KERNEL_ACCOUNT);
	if (!qf)
		return -ENOMEM;
	ret = mmk_queue_get(s->pool, args, &qf->q);
	if (ret)
		goto fail;
	*file = anon_inode_getfile("[mmk_queue]", &mmk_queue_fops, qf, O_RDWR);
	if (IS_ERR(*file)) {
		ret = PTR_ERR(*file);
		mmk_queue_put(qf->q);
		goto fail;
	}
	qf->tag = s->tag;
	kref_get(&qf->tag->ref);
	atomic_inc(&qf->tag->queues_open);
	args->queue_id = qf->q->id;
	return 0;
fail:
	kfree(qf);
	return ret;
}

/* ---- the queue a descriptor names ------------------------------------------ */

/* -EBADF if @fd is no descriptor, -EINVAL if not a queue, -EXDEV if another pool's. */
int mmk_queue_fdget(struct mmk_session *s, int fd, struct fd *f, struct mmk_queue **q)
{
	*f = fdget(fd);
	if (!fd_file(*f))
		return -EBADF;
	if (fd_file(*f)->f_op != &mmk_queue_fops) {
		fdput(*f);
		return -EINVAL;
	}
	*q = mmk_file_queue(fd_file(*f));
	if ((*q)->pool != s->pool) {
		fdput(*f);
		return -EXDEV;
	}
	return 0;
}

/* ---- management ----------------------------------------------------------- */

unsigned int mmk_pool_queue_count(struct mmk_pool *pool)
{
	unsigned int n;

	mutex_lock(&pool->members_lock);
	n = pool->nr_queues;
	mutex_unlock(&pool->members_lock);
	return n;
}

/**
 * mmk_pool_queue_info - describe a queue of a pool, for management
 * @pool: the pool
 * @id: in: where to start; out: the id of the queue described
 * @info: out: the queue
 *
 * Return: 0, or -ENOENT if no queue of @pool has an id >= *@id.
 */
int mmk_pool_queue_info(struct mmk_pool *pool, u32 *id, struct mmk_queue_info *info)
{
	struct mmk_queue *q, *best = NULL;

	mutex_lock(&pool->members_lock);
	list_for_each_entry(q, &pool->queues, node)
		if (q->id >= *id && (!best || q->id < best->id))
			best = q;
	/* A queue leaves the list under members_lock before it is freed. */
	if (best) {
		*id = best->id;
		mmk_queue_fill_info(best, info);
	}
	mutex_unlock(&pool->members_lock);
	return best ? 0 : -ENOENT;
}
