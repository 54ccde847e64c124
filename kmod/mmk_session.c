// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions: one per open file of /dev/mmk.  A session is bound to at most
 * one pool, and owns the guards it takes on that pool's slots.
 *
 * Each session has an inode of its own, from a small pseudo filesystem
 * (as dma-buf has), and its file's f_mapping is that inode's mapping.  So
 * the file offsets of a session's mappings belong to it alone, and
 * unmap_mapping_range() on them zaps this session's windows and nobody
 * else's, whatever pool they are on.
 */
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/pid.h>
#include <linux/pseudo_fs.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "mmk_internal.h"

#define MMK_FS_MAGIC	0x6d6d6b66	/* "mmkf" */

static struct vfsmount *mmk_session_mnt;

static int mmk_session_fs_init_fc(struct fs_context *fc)
{
	return init_pseudo(fc, MMK_FS_MAGIC) ? 0 : -ENOMEM;
}

/* No owner: the mount lives from module init to exit, and must not pin it. */
static struct file_system_type mmk_session_fs_type = {
	.name		= "mmk",
	.init_fs_context = mmk_session_fs_init_fc,
	.kill_sb	= kill_anon_super,
};

int mmk_session_fs_init(void)
{
	mmk_session_mnt = kern_mount(&mmk_session_fs_type);
	return PTR_ERR_OR_ZERO(mmk_session_mnt);
}

void mmk_session_fs_exit(void)
{
	kern_unmount(mmk_session_mnt);
}

struct mmk_session *mmk_session_new(void)
{
	struct mmk_session *s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);

	if (!s)
		return NULL;
	s->tag = kzalloc(sizeof(*s->tag), GFP_KERNEL_ACCOUNT);
	if (!s->tag)
		goto fail;
	kref_init(&s->tag->ref);
	s->inode = alloc_anon_inode(mmk_session_mnt->mnt_sb);
	if (IS_ERR(s->inode))
		goto fail;
	s->mapping = s->inode->i_mapping;
	mutex_init(&s->bind_lock);
	atomic_set(&s->nr_guards, 0);
	atomic_set(&s->closes, 0);
	return s;

fail:
	kfree(s->tag);
	kfree(s);
	return NULL;
}

/**
 * mmk_session_bind - bind an unbound session to a pool
 * @s: the session, with bind_lock held and no pool yet
 * @pool: the pool; on success its reference, and the reservation of the
 *	session's hold words (mmk_hold_bytes()), pass to the session
 *
 * Return: 0 or -ENOMEM.  On failure the caller still owns both.
 */
int mmk_session_bind(struct mmk_session *s, struct mmk_pool *pool)
{
	u32 *holds;

	lockdep_assert_held(&s->bind_lock);
	holds = kvcalloc(pool->capacity, sizeof(*holds), MMK_GFP_USER_SIZED);
	if (!holds)
		return -ENOMEM;
	s->holds = holds;
	s->pid = get_pid(task_tgid(current));
	s->uid = current_fsuid();
	get_task_comm(s->comm, current);
	mutex_lock(&pool->members_lock);
	s->id = ++pool->next_session_id;
	list_add_tail(&s->pool_node, &pool->session_list);
	mutex_unlock(&pool->members_lock);
	atomic_inc(&pool->sessions);
	/* Publish holds before the pool; pairs with mmk_session_pool(). */
	smp_store_release(&s->pool, pool);
	return 0;
}

/*
 * The last reference to the file is gone: no ioctl, mmap or fault can run
 * on this session any more.  Drop its guards (poisoning slots whose write
 * guard it held), its hold words' charge, then its pool reference.
 */
void mmk_session_destroy(struct mmk_session *s)
{
	struct mmk_pool *pool = s->pool;

	if (pool) {
		mmk_slots_drop_session(s);
		mutex_lock(&pool->members_lock);
		list_del(&s->pool_node);
		mutex_unlock(&pool->members_lock);
		atomic_dec(&pool->sessions);
		mmk_charge_release(mmk_hold_bytes(pool));
		mmk_pool_put(pool);
		put_pid(s->pid);
	}
	mmk_session_tag_put(s->tag);
	kvfree(s->holds);
	iput(s->inode);
	mutex_destroy(&s->bind_lock);
	kfree(s);
}

static void mmk_session_tag_free(struct kref *ref)
{
	kfree(container_of(ref, struct mmk_session_tag, ref));
}

void mmk_session_tag_put(struct mmk_session_tag *tag)
{
	kref_put(&tag->ref, mmk_session_tag_free);
}

/* Count what @s holds, slot by slot under each slot's lock (a snapshot). */
static void mmk_session_count(struct mmk_session *s, struct mmk_session_stat *st)
{
	struct mmk_pool *pool = s->pool;
	u32 i, hold;

	for (i = 0; i < pool->capacity; i++) {
		struct mmk_slot *slot = pool->slots[i];

		if (!READ_ONCE(s->holds[i]))
			continue;
		spin_lock(&slot->lock);
		hold = s->holds[i];
		st->read_guards += hold & MMK_HOLD_READERS;
		st->write_guards += !!(hold & MMK_HOLD_ANY_WRITE);
		st->loans += hold & MMK_HOLD_ANY_WRITE && slot->loaned;
		if (slot->given)
			st->popped += (hold & MMK_HOLD_READERS) + !!(hold & MMK_HOLD_ANY_WRITE);
		spin_unlock(&slot->lock);
		if (!(i % 1024))
			cond_resched();
	}
}

/**
 * mmk_pool_session_stat - describe a session of a pool, for management
 * @pool: the pool
 * @id: in: where to start; out: the id of the session described
 * @st: out: the session, ids as seen from the caller's namespaces
 *
 * Return: 0, or -ENOENT if no session of @pool has an id >= *@id.
 */
int mmk_pool_session_stat(struct mmk_pool *pool, u32 *id, struct mmk_session_stat *st)
{
	struct mmk_session *s;
	int ret = -ENOENT;

	memset(st, 0, sizeof(*st));
	mutex_lock(&pool->members_lock);
	list_for_each_entry(s, &pool->session_list, pool_node) {
		if (s->id < *id)
			continue;
		*id = s->id;
		st->id = s->id;
		st->pid = pid_vnr(s->pid);
		st->uid = from_kuid_munged(current_user_ns(), s->uid);
		strscpy(st->comm, s->comm, sizeof(st->comm));
		st->queues_open = atomic_read(&s->tag->queues_open);
		/* The session cannot go while members_lock is held. */
		mmk_session_count(s, st);
		ret = 0;
		break;
	}
	mutex_unlock(&pool->members_lock);
	return ret;
}
