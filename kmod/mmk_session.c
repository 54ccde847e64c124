// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions: one per open file of /dev/mmk.  A session is bound to at most
 * one pool, and owns the guards it takes on that pool's slots.
 */
#include <linux/mm.h>
#include <linux/slab.h>

#include "mmk_internal.h"

struct mmk_session *mmk_session_new(struct address_space *mapping)
{
	struct mmk_session *s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);

	if (!s)
		return NULL;
	s->mapping = mapping;
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
	mutex_destroy(&s->bind_lock);
	kfree(s);
}
