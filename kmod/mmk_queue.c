// SPDX-License-Identifier: GPL-2.0
/*
 * Queues: bounded FIFOs of tokens of one pool, with an admission policy
 * (SPEC §9; the uAPI is in uapi/linux/mmk.h, the design in docs/DESIGN.md).
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
#include <linux/ktime.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>

#include "mmk_internal.h"
#include "mmk_compat.h"

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

static const struct file_operations mmk_queue_fops;

/* A queue's open file: the queue, and the session it was opened through. */
struct mmk_queue_file {
	struct mmk_queue *q;
	struct mmk_session_tag *tag;
};

void mmk_pool_queues_init(struct mmk_pool *pool)
{
	mutex_init(&pool->members_lock);
	INIT_LIST_HEAD(&pool->queues);
	ida_init(&pool->queue_ida);
	INIT_LIST_HEAD(&pool->session_list);
}

/* ---- occupancy ------------------------------------------------------------ */

static u32 mmk_queue_watermark(const struct mmk_queue *q)
{
	lockdep_assert_held(&q->lock);
	if (q->items >= q->cap_items || (q->cap_bytes && q->bytes >= q->cap_bytes))
		return MMK_WM_AT_HARD;
	if (q->items >= q->soft_items || (q->cap_bytes && q->bytes >= q->soft_bytes))
		return MMK_WM_BETWEEN;
	return MMK_WM_BELOW_SOFT;
}

static u32 mmk_queue_at(const struct mmk_queue *q, u32 n)
{
	u32 pos = q->head + n;

	return q->ring[pos >= q->cap_items ? pos - q->cap_items : pos];
}

static void mmk_queue_append(struct mmk_queue *q, u32 idx, u32 size)
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
static u32 mmk_queue_remove_head(struct mmk_queue *q)
{
	u32 idx = q->ring[q->head];

	q->head = q->head + 1 == q->cap_items ? 0 : q->head + 1;
	q->items--;
	q->bytes -= q->pool->slots[idx]->payload_size;
	__clear_bit(idx, q->member);
	return idx;
}

/* Put a popped entry back in front (it was removed by this call). */
static bool mmk_queue_unpop(struct mmk_queue *q, u32 idx)
{
	if (q->items == q->cap_items)
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
static void mmk_queue_drop_head(struct mmk_queue *q, unsigned int reason)
{
	mmk_slot_unqueue(q->pool, mmk_queue_remove_head(q));
	q->drops[reason]++;
}

static void mmk_queue_wake(struct mmk_queue *q, __poll_t events)
{
	if (wq_has_sleeper(&q->wq))
		wake_up_interruptible_poll(&q->wq, events);
}

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
 * EdgePolicy::decide does.  A message larger than the byte cap can never
 * fit, whatever the occupancy.
 */
static enum mmk_admit mmk_queue_decide(const struct mmk_queue *q, u32 size, u8 qos, u32 *evict)
{
	u32 wm = mmk_queue_watermark(q);

	*evict = 0;
	if (q->cap_bytes && size > q->cap_bytes)
		return MMK_ADMIT_FULL;
	if (wm == MMK_WM_BELOW_SOFT)
		return MMK_ADMIT;
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

/* ---- queue descriptors ------------------------------------------------------ */

/* Called by kref_put_mutex() with pool->members_lock held; drops it. */
static void mmk_queue_release(struct kref *ref)
{
	struct mmk_queue *q = container_of(ref, struct mmk_queue, ref);
	struct mmk_pool *pool = q->pool;

	list_del(&q->node);
	pool->nr_queues--;
	ida_free(&pool->queue_ida, q->id);
	mutex_unlock(&pool->members_lock);

	/* Unreachable now: no file, no lookup.  Let go of every message. */
	while (q->items) {
		mmk_slot_unqueue(pool, mmk_queue_remove_head(q));
		cond_resched();
	}
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
	struct mmk_queue *q;
	int ret = 0;

	mutex_lock(&pool->members_lock);
	q = args->name[0] ? mmk_queue_lookup(pool, args->name) : NULL;
	if (!(args->flags & MMK_QUEUE_CREATE)) {
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
		} else {
			ret = -ENOMEM;
		}
	}
	mutex_unlock(&pool->members_lock);
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
static int mmk_queue_fdget(struct mmk_session *s, int fd, struct fd *f, struct mmk_queue **q)
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

/* Decide for every queue; all or nothing.  Queues and slot locked. */
static int mmk_push_decide(struct mmk_push_op *op, struct mmk_slot *slot,
			   enum mmk_admit *admit, u32 *evict)
{
	bool wait = op->args->flags & MMK_PUSH_WAIT;
	int ret = 0;
	u32 i;

	for (i = 0; i < op->n; i++) {
		admit[i] = mmk_queue_decide(op->q[i], slot->payload_size, slot->qos, &evict[i]);
		if (admit[i] == MMK_ADMIT_BLOCK && wait && !op->blocked)
			op->blocked = op->q[i];
		else if (admit[i] == MMK_ADMIT_FULL || admit[i] == MMK_ADMIT_BLOCK)
			ret = -ENOBUFS;
	}
	if (ret) {
		op->blocked = NULL;
		for (i = 0; i < op->n; i++)
			if (admit[i] == MMK_ADMIT_FULL || admit[i] == MMK_ADMIT_BLOCK)
				op->q[i]->rejected++;
	}
	return op->blocked ? -EAGAIN : ret;
}

/* Give the message to every queue that admits it; queues and slot locked. */
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
		mmk_queue_append(op->q[i], op->idx, slot->payload_size);
		slot->queued++;
	}
	slot->given = true;
	if (op->wop)
		mmk_write_publish_locked(op->s->pool, slot, op->wop);
}

/*
 * One attempt, with every queue locked: 0 (given), -EAGAIN (wait on
 * op->blocked and try again), or the error.
 */
static int mmk_push_locked(struct mmk_push_op *op)
{
	struct mmk_pool *pool = op->s->pool;
	struct mmk_slot *slot = pool->slots[op->idx];
	enum mmk_admit admit[MMK_PUSH_MAX_QUEUES];
	u32 evict[MMK_PUSH_MAX_QUEUES], i;
	bool orphan = false;
	int ret;

	spin_lock(&slot->lock);
	if (op->store)
		mmk_store_publish_locked(slot, op->store);
	ret = mmk_push_check_slot(op, slot);
	if (!ret)
		ret = mmk_push_decide(op, slot, admit, evict);
	if (!ret) {
		mmk_push_give(op, slot, admit);
		orphan = mmk_slot_orphaned_locked(slot);
	} else if (op->store) {
		mmk_store_unpublish_locked(slot);
	}
	spin_unlock(&slot->lock);
	if (ret)
		return ret;

	/* Other slots: evicted messages go after this one's lock is dropped. */
	for (i = 0; i < op->n; i++) {
		op->args->evicted += evict[i];
		while (evict[i]--)
			mmk_queue_drop_head(op->q[i], MMK_DROP_OLDEST);
	}
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
		ret = mmk_push_wait(op, deadline);
		if (ret)
			return ret;
	}
	if (!ret)
		for (i = 0; i < op->n; i++)
			if (!(op->args->dropped & BIT(i)))
				mmk_queue_wake(op->q[i], EPOLLIN | EPOLLRDNORM);
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
		return ret;
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
 *
 * A stored message is published before the push, but its token reaches
 * nobody before the push is decided, so a refused store-and-push is
 * undone as if it never happened.
 */
int mmk_push(struct mmk_session *s, struct mmk_push *args)
{
	struct mmk_push_op op = { .s = s, .args = args };
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
			  struct mmk_popped *out)
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
		mmk_queue_wake(q, EPOLLOUT | EPOLLWRNORM);
	return ret;
}

/* Give back a popped message whose result could not be written out. */
static void mmk_queue_untake(struct mmk_session *s, struct mmk_queue *q,
			     const struct mmk_popped *p, bool write)
{
	struct mmk_release rel = { .token = p->token };
	struct mmk_slot *slot;
	bool back = false;
	u32 idx, gen;

	mmk_token_parse(s->pool, p->token, &idx, &gen);
	slot = s->pool->slots[idx];
	spin_lock(&q->lock);
	spin_lock(&slot->lock);
	if (mmk_queue_unpop(q, idx)) {
		slot->queued++;
		if (write) {
			slot->writer = false;
			s->holds[idx] &= ~MMK_HOLD_WRITE;
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
		return;
	}
	/* No room left to put it back: release it as if it had been read. */
	if (write)
		mmk_write_release(s, &rel);
	else
		mmk_read_release(s, &rel);
}

/* One attempt to pop, and its outcome, for the wait loop. */
struct mmk_take {
	struct mmk_session *s;
	struct mmk_queue *q;
	bool write;
	struct mmk_popped *out;
	int ret;
};

static bool mmk_take_try(struct mmk_take *t)
{
	t->ret = mmk_queue_take(t->s, t->q, t->write, t->out);
	return t->ret != -EAGAIN;
}

/* Take one message, waiting for it with MMK_POP_WAIT. */
static int mmk_pop_wait(struct mmk_session *s, struct mmk_queue *q, u32 flags, u64 timeout_ns,
			struct mmk_popped *out)
{
	struct mmk_take t = { .s = s, .q = q, .write = flags & MMK_POP_WRITE, .out = out };
	int wret;

	if (mmk_take_try(&t) || !(flags & MMK_POP_WAIT))
		return t.ret;
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
 *
 * The caller undoes it with mmk_pop_undo() if @out cannot be written back.
 */
int mmk_pop_one(struct mmk_session *s, int queue_fd, u32 flags, u64 timeout_ns,
		struct mmk_popped *out)
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
	ret = mmk_pop_wait(s, q, flags, timeout_ns, out);
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
 * its room meanwhile, released as if read) and the call fails with
 * -EFAULT, keeping the ones already written.
 */
int mmk_pop(struct mmk_session *s, struct mmk_pop *args)
{
	struct mmk_popped __user *uent = u64_to_user_ptr(args->entries);
	bool write = args->flags & MMK_POP_WRITE;
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

	ret = mmk_pop_wait(s, q, args->flags, args->timeout_ns, &p);
	while (!ret) {
		if (copy_to_user(uent + args->count, &p, sizeof(p))) {
			mmk_queue_untake(s, q, &p, write);
			ret = -EFAULT;
			break;
		}
		if (++args->count == args->max)
			break;
		ret = mmk_queue_take(s, q, write, &p);
	}
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
		mmk_write_release(s, &rel);
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
