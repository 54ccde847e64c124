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
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
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
	s->inode = alloc_anon_inode(mmk_session_mnt->mnt_sb);
	if (IS_ERR(s->inode)) {
		kfree(s);
		return NULL;
	}
	s->mapping = s->inode->i_mapping;
	mutex_init(&s->bind_lock);
	atomic_set(&s->nr_guards, 0);
	atomic_set(&s->closes, 0);
	return s;
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
		atomic_dec(&pool->sessions);
		mmk_charge_release(mmk_hold_bytes(pool));
		mmk_pool_put(pool);
	}
	kvfree(s->holds);
	iput(s->inode);
	mutex_destroy(&s->bind_lock);
	kfree(s);
}
