// SPDX-License-Identifier: GPL-2.0
/*
 * Pools: creation, lookup by name, permission checks at attach, lifetime.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/idr.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "mmk_internal.h"
#include "mmk_compat.h"

/*
 * Protects mmk_pool_idr, mmk_nr_pools, mmk_total_bytes and mmk_pools_gen,
 * and makes the final put of a pool atomic with respect to lookups
 * (kref_put_mutex).  Never taken on the data path, never held while a
 * netlink message is sent, and never held across a pool's allocation.
 *
 * mmk_nr_pools and mmk_total_bytes are reservations: a create reserves a
 * pool and its whole charge (mmk_pool_charge(), plus its creator's hold
 * words) before allocating anything, an attach reserves its hold words, and
 * every failure gives back what it reserved.
 */
static DEFINE_MUTEX(mmk_pools_lock);
static DEFINE_IDR(mmk_pool_idr);
static unsigned int mmk_nr_pools;
static u64 mmk_total_bytes;
/* Changes whenever a pool is published or removed; never 0 (netlink dumps). */
static unsigned int mmk_pools_gen = 1;

static struct kmem_cache *mmk_slot_cache;

int mmk_pool_init(void)
{
	mmk_slot_cache = KMEM_CACHE(mmk_slot, SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT);
	return mmk_slot_cache ? 0 : -ENOMEM;
}

void mmk_pool_exit(void)
{
	idr_destroy(&mmk_pool_idr);
	kmem_cache_destroy(mmk_slot_cache);
}

unsigned int mmk_pool_count(void)
{
	return READ_ONCE(mmk_nr_pools);
}

/* Reserve @bytes, and a pool if @pool, against the caps; -EDQUOT if over. */
static int mmk_charge_reserve_locked(u64 bytes, bool pool)
{
	lockdep_assert_held(&mmk_pools_lock);
	if (pool && mmk_nr_pools >= READ_ONCE(mmk_max_pools))
		return -EDQUOT;
	if (mmk_total_bytes + bytes > READ_ONCE(mmk_max_total_bytes))
		return -EDQUOT;
	mmk_nr_pools += pool;
	mmk_total_bytes += bytes;
	return 0;
}

static void mmk_charge_release_locked(u64 bytes, bool pool)
{
	lockdep_assert_held(&mmk_pools_lock);
	mmk_nr_pools -= pool;
	mmk_total_bytes -= bytes;
}

/* Reserve @bytes for something other than a pool (a session, a queue). */
int mmk_charge_reserve(u64 bytes)
{
	int ret;

	mutex_lock(&mmk_pools_lock);
	ret = mmk_charge_reserve_locked(bytes, false);
	mutex_unlock(&mmk_pools_lock);
	return ret;
}

/* Give back a reservation of @bytes that no pool stands for. */
void mmk_charge_release(u64 bytes)
{
	mutex_lock(&mmk_pools_lock);
	mmk_charge_release_locked(bytes, false);
	mutex_unlock(&mmk_pools_lock);
}

/*
 * Everything the module allocates for a pool of @capacity slots and a
 * @map_size arena, sessions apart: struct, slot pointers, slot objects,
 * free stack and arena.  max_pool_bytes and max_total_bytes count this.
 */
static u64 mmk_pool_charge(u32 capacity, u64 map_size)
{
	u64 per_slot = sizeof(struct mmk_slot *) + kmem_cache_size(mmk_slot_cache) + sizeof(u32);

	return sizeof(struct mmk_pool) + capacity * per_slot + map_size;
}

u64 mmk_pool_bytes(void)
{
	u64 bytes;

	mutex_lock(&mmk_pools_lock);
	bytes = mmk_total_bytes;
	mutex_unlock(&mmk_pools_lock);
	return bytes;
}

/*
 * Names: 1..MMK_NAME_MAX-1 bytes from 0x21 to 0x7e but '/', NUL-terminated.
 * Not isgraph(): the kernel's takes Latin-1 letters too.
 */
int mmk_name_check(const char *name, bool allow_empty)
{
	size_t len = strnlen(name, MMK_NAME_MAX);
	size_t i;
	u8 c;

	if (len == MMK_NAME_MAX || (!len && !allow_empty))
		return -EINVAL;
	for (i = 0; i < len; i++) {
		c = name[i];
		if (c < 0x21 || c > 0x7e || c == '/')
			return -EINVAL;
	}
	return 0;
}

/*
 * Names live in IPC namespaces, as POSIX message queues and SysV IPC do:
 * a name is unique within its creator's namespace, and found from there
 * only.  The calling task's namespace, which only the task itself changes.
 */
static struct ipc_namespace *mmk_current_ipc_ns(void)
{
	return current->nsproxy->ipc_ns;
}

bool mmk_current_ipc_ns_is_initial(void)
{
	return mmk_ipc_ns_is_initial(mmk_current_ipc_ns());
}

unsigned int mmk_pool_ipc_ns_inum(const struct mmk_pool *pool)
{
	return pool->ipc_ns->ns.inum;
}

/* The pool named @name in the caller's IPC namespace; caller holds mmk_pools_lock. */
static struct mmk_pool *mmk_pool_lookup(const char *name)
{
	struct ipc_namespace *ns = mmk_current_ipc_ns();
	struct mmk_pool *pool;
	int id;

	lockdep_assert_held(&mmk_pools_lock);
	idr_for_each_entry(&mmk_pool_idr, pool, id)
		if (pool->name[0] && pool->ipc_ns == ns && !strcmp(pool->name, name))
			return pool;
	return NULL;
}

static void mmk_pool_free(struct mmk_pool *pool)
{
	u32 i;

	vfree(pool->arena);
	kvfree(pool->free_stack);
	if (pool->slots) {
		for (i = 0; i < pool->capacity; i++)
			if (pool->slots[i])
				kmem_cache_free(mmk_slot_cache, pool->slots[i]);
		kvfree(pool->slots);
	}
	ida_destroy(&pool->queue_ida);
	mutex_destroy(&pool->members_lock);
	if (pool->ipc_ns)
		mmk_put_ipc_ns(pool->ipc_ns);
	kfree(pool);
}

/* Allocate everything a pool needs; nothing is published yet. */
static struct mmk_pool *mmk_pool_alloc(const struct mmk_pool_create *args, u32 slot_size,
				       u64 map_size)
{
	struct mmk_pool *pool;
	u32 i, gen;

	pool = kzalloc(sizeof(*pool), GFP_KERNEL_ACCOUNT);
	if (!pool)
		return NULL;

	kref_init(&pool->ref);
	pool->ipc_ns = mmk_get_ipc_ns(mmk_current_ipc_ns());
	pool->flags = args->flags;
	pool->payload_size = args->payload_size;
	pool->slot_size = slot_size;
	pool->capacity = args->capacity;
	pool->map_size = map_size;
	pool->payload_type = args->payload_type;
	pool->memory_class = args->memory_class;
	pool->mode = args->mode;
	pool->uid = current_fsuid();
	pool->gid = current_fsgid();
	strscpy(pool->name, args->name, sizeof(pool->name));
	spin_lock_init(&pool->free_lock);
	init_rwsem(&pool->window_lock);
	init_waitqueue_head(&pool->wq);
	mutex_init(&pool->members_lock);
	INIT_LIST_HEAD(&pool->queues);
	INIT_LIST_HEAD(&pool->session_list);
	ida_init(&pool->queue_ida);

	pool->slots = kvcalloc(pool->capacity, sizeof(*pool->slots), MMK_GFP_USER_SIZED);
	if (!pool->slots)
		goto fail;
	/* A random first generation: a dead pool's tokens miss its id's next pool. */
	gen = get_random_u32() & MMK_GEN_MASK;
	for (i = 0; i < pool->capacity; i++) {
		pool->slots[i] = kmem_cache_zalloc(mmk_slot_cache, MMK_GFP_USER_SIZED);
		if (!pool->slots[i])
			goto fail;
		spin_lock_init(&pool->slots[i]->lock);
		pool->slots[i]->gen = gen;
	}

	/* Stack of free indices; slot 0 is handed out first. */
	pool->free_stack = kvmalloc_array(pool->capacity, sizeof(*pool->free_stack),
					  MMK_GFP_USER_SIZED);
	if (!pool->free_stack)
		goto fail;
	for (i = 0; i < pool->capacity; i++)
		pool->free_stack[i] = pool->capacity - 1 - i;
	pool->nr_free = pool->capacity;

	pool->arena = __vmalloc(map_size, MMK_GFP_USER_SIZED | __GFP_ZERO);
	if (!pool->arena)
		goto fail;
	return pool;

fail:
	mmk_pool_free(pool);
	return NULL;
}

/* Validate creation arguments and compute the layout; see docs/DESIGN.md. */
static int mmk_pool_check_args(const struct mmk_pool_create *args, u32 *slot_size,
			       u64 *map_size, u64 *bytes)
{
	u64 size, align;
	int ret;

	if (args->flags & ~MMK_POOL_FLAGS_ALL)
		return -EINVAL;
	if (args->__reserved || args->__reserved2)
		return -EINVAL;
	if (args->mode & ~0777)
		return -EINVAL;
	if (args->memory_class > MMK_MEM_SHARED || args->memory_device)
		return -EINVAL;
	/* Kernel pages cannot be device memory. */
	if (args->memory_class == MMK_MEM_DEVICE)
		return -EOPNOTSUPP;
	ret = mmk_name_check(args->name, true);
	if (ret)
		return ret;

	if (!args->payload_size || args->payload_size > READ_ONCE(mmk_max_payload_size))
		return -EINVAL;
	if (!args->capacity || args->capacity > READ_ONCE(mmk_max_capacity) ||
	    args->capacity > MMK_CAPACITY_LIMIT)
		return -EINVAL;

	align = args->flags & MMK_POOL_PAGE_ALIGNED ? PAGE_SIZE : MMK_SLOT_ALIGN;
	size = ALIGN((u64)sizeof(struct mmk_msg_header) + args->payload_size, align);
	if (size > U32_MAX)
		return -EINVAL;
	*slot_size = size;
	/* capacity <= 2^20 and size < 2^32: no overflow in u64. */
	*map_size = PAGE_ALIGN(size * args->capacity);
	*bytes = mmk_pool_charge(args->capacity, *map_size);
	/* Window offsets lie above every arena offset. */
	if (*bytes > READ_ONCE(mmk_max_pool_bytes) || *map_size > BIT_ULL(MMK_WINDOW_SHIFT))
		return -EINVAL;
	return 0;
}

/* Reserve a pool of @bytes named @name (if any) against the caps. */
static int mmk_pool_reserve(const char *name, u64 bytes)
{
	int ret;

	mutex_lock(&mmk_pools_lock);
	ret = mmk_charge_reserve_locked(bytes, true);
	if (!ret && name[0] && mmk_pool_lookup(name)) {
		mmk_charge_release_locked(bytes, true);
		ret = -EEXIST;
	}
	mutex_unlock(&mmk_pools_lock);
	return ret;
}

/* Give @pool its id; its name may have been taken since it was reserved. */
static int mmk_pool_register(struct mmk_pool *pool)
{
	int ret = -EEXIST;

	mutex_lock(&mmk_pools_lock);
	if (!pool->name[0] || !mmk_pool_lookup(pool->name))
		ret = idr_alloc_cyclic(&mmk_pool_idr, pool, MMK_POOL_ID_MIN, MMK_POOL_ID_NONE,
				       GFP_KERNEL);
	if (ret >= 0)
		pool->id = ret;
	mutex_unlock(&mmk_pools_lock);
	if (ret == -ENOSPC)
		return -EDQUOT;
	return ret < 0 ? ret : 0;
}

/**
 * mmk_pool_create - create and register a pool
 * @args: the caller's validated-on-entry creation arguments
 * @out: the new pool, holding one reference for the caller
 *
 * The pool's charge and its creator's hold words are reserved against the
 * caps before anything is allocated; the caller binds its session next, or
 * gives the hold words back (mmk_charge_release()) and puts the pool.
 * Nothing is visible to anyone until every allocation and check succeeded.
 */
int mmk_pool_create(const struct mmk_pool_create *args, struct mmk_pool **out)
{
	struct mmk_pool *pool;
	u64 map_size, bytes, holds;
	u32 slot_size;
	int ret;

	ret = mmk_pool_check_args(args, &slot_size, &map_size, &bytes);
	if (ret)
		return ret;
	holds = (u64)args->capacity * sizeof(u32);
	ret = mmk_pool_reserve(args->name, bytes + holds);
	if (ret)
		return ret;

	pool = mmk_pool_alloc(args, slot_size, map_size);
	ret = pool ? mmk_pool_register(pool) : -ENOMEM;
	if (ret) {
		if (pool)
			mmk_pool_free(pool);
		mutex_lock(&mmk_pools_lock);
		mmk_charge_release_locked(bytes + holds, true);
		mutex_unlock(&mmk_pools_lock);
		return ret;
	}
	pool->bytes = bytes;
	*out = pool;
	return 0;
}

/* File-like mode check: read and write are both needed to attach. */
static bool mmk_pool_mode_allows(const struct mmk_pool *pool)
{
	umode_t mode = pool->mode;

	if (uid_eq(current_fsuid(), pool->uid))
		mode >>= 6;
	else if (in_group_p(pool->gid))
		mode >>= 3;
	return (mode & 06) == 06;
}

/* CAP_IPC_OWNER counts in the user namespace that owns the pool's IPC namespace. */
static bool mmk_pool_may_attach(const struct mmk_pool *pool)
{
	return mmk_pool_mode_allows(pool) || ns_capable(pool->ipc_ns->user_ns, CAP_IPC_OWNER);
}

/**
 * mmk_pool_attach - find a named pool the caller may attach
 * @args: attach arguments
 * @out: the pool, with a reference taken for the caller
 *
 * The caller's hold words are reserved against max_total_bytes; the caller
 * binds its session next, or gives them back and puts the pool.
 */
int mmk_pool_attach(const struct mmk_pool_attach *args, struct mmk_pool **out)
{
	bool want_owner = args->flags & MMK_ATTACH_OWNER;
	kuid_t owner = INVALID_UID;
	struct mmk_pool *pool;
	int ret = 0;

	if (args->flags & ~MMK_ATTACH_FLAGS_ALL || args->__reserved2)
		return -EINVAL;
	if (want_owner)
		owner = make_kuid(current_user_ns(), args->owner_uid);
	if (want_owner ? !uid_valid(owner) : args->owner_uid)
		return -EINVAL;
	ret = mmk_name_check(args->name, false);
	if (ret)
		return ret;

	mutex_lock(&mmk_pools_lock);
	pool = mmk_pool_lookup(args->name);
	if (!pool || !pool->live)
		ret = -ENOENT;
	else if (want_owner && !uid_eq(pool->uid, owner))
		ret = -EPERM;
	else if (!mmk_pool_may_attach(pool))
		ret = -EACCES;
	else if (pool->payload_type != args->payload_type)
		ret = -EPROTOTYPE;
	else
		ret = mmk_charge_reserve_locked(mmk_hold_bytes(pool), false);
	if (!ret)
		kref_get(&pool->ref);
	mutex_unlock(&mmk_pools_lock);

	if (!ret)
		*out = pool;
	return ret;
}

/* The creator is bound: from now on the pool can be attached by name. */
void mmk_pool_publish(struct mmk_pool *pool)
{
	mutex_lock(&mmk_pools_lock);
	pool->live = true;
	mmk_pools_gen = mmk_pools_gen + 1 ?: 1;
	mutex_unlock(&mmk_pools_lock);
	mmk_nl_pool_created(pool);
}

/* Called by kref_put_mutex() with mmk_pools_lock held; drops it. */
static void mmk_pool_release(struct kref *ref)
{
	struct mmk_pool *pool = container_of(ref, struct mmk_pool, ref);

	idr_remove(&mmk_pool_idr, pool->id);
	mmk_charge_release_locked(pool->bytes, true);
	mmk_pools_gen = mmk_pools_gen + 1 ?: 1;
	mutex_unlock(&mmk_pools_lock);
	/* Unreachable now: @live no longer changes.  Announced pools only. */
	if (pool->live)
		mmk_nl_pool_destroyed(pool);
	mmk_pool_free(pool);
}

void mmk_pool_put(struct mmk_pool *pool)
{
	kref_put_mutex(&pool->ref, mmk_pool_release, &mmk_pools_lock);
}

/*
 * What management (netlink) shows; see docs/DESIGN.md, "Management".  An
 * @admin caller (of the initial namespaces) sees every live pool, of every
 * IPC namespace.  Anyone else sees the named pools of its own IPC
 * namespace that it could attach; the capability is checked without
 * auditing a refusal, since listing is not an attempt to attach.
 * Anonymous pools cannot be attached by anyone, so only @admin sees them.
 */
static bool mmk_pool_visible(const struct mmk_pool *pool, bool admin)
{
	lockdep_assert_held(&mmk_pools_lock);
	if (!pool->live)
		return false;
	if (admin)
		return true;
	return pool->name[0] && pool->ipc_ns == mmk_current_ipc_ns() &&
	       (mmk_pool_mode_allows(pool) ||
		ns_capable_noaudit(pool->ipc_ns->user_ns, CAP_IPC_OWNER));
}

/**
 * mmk_pool_get_visible - find a pool the caller may see
 * @id: the pool's id, or 0 to find it by @name
 * @name: the pool's name in the caller's IPC namespace, NUL-terminated
 *	(used when @id is 0)
 * @admin: the caller may see every pool
 *
 * Return: the pool with a reference held for the caller (mmk_pool_put()),
 * or NULL if there is no such pool or the caller may not see it.
 */
struct mmk_pool *mmk_pool_get_visible(u32 id, const char *name, bool admin)
{
	struct mmk_pool *pool;

	mutex_lock(&mmk_pools_lock);
	pool = id ? idr_find(&mmk_pool_idr, id) : mmk_pool_lookup(name);
	if (pool && mmk_pool_visible(pool, admin))
		kref_get(&pool->ref);
	else
		pool = NULL;
	mutex_unlock(&mmk_pools_lock);
	return pool;
}

/**
 * mmk_pool_get_next_visible - the visible pool with the lowest id >= *@id
 * @id: in: where to start; out: the id of the pool returned
 * @admin: the caller may see every pool
 * @gen: out: the registry's generation, which changes whenever a pool is
 *	published or removed
 *
 * Return: the pool with a reference held for the caller, or NULL.
 */
struct mmk_pool *mmk_pool_get_next_visible(u32 *id, bool admin, unsigned int *gen)
{
	struct mmk_pool *pool;
	int next = *id;

	mutex_lock(&mmk_pools_lock);
	*gen = mmk_pools_gen;
	while ((pool = idr_get_next(&mmk_pool_idr, &next)) && !mmk_pool_visible(pool, admin))
		next++;
	if (pool) {
		kref_get(&pool->ref);
		*id = next;
	}
	mutex_unlock(&mmk_pools_lock);
	return pool;
}

/*
 * Fill @info.  Guard and poison counts are summed slot by slot, so the
 * data path keeps no pool-wide counters for them; the sum is a snapshot.
 * Process context: it may sleep.
 */
void mmk_pool_fill_info(struct mmk_pool *pool, struct mmk_pool_info *info)
{
	struct user_namespace *ns = current_user_ns();
	u32 i;

	memset(info, 0, sizeof(*info));
	info->pool_id = pool->id;
	info->flags = pool->flags;
	info->payload_size = pool->payload_size;
	info->slot_size = pool->slot_size;
	info->capacity = pool->capacity;
	info->available = READ_ONCE(pool->nr_free);
	info->map_size = pool->map_size;
	info->payload_type = pool->payload_type;
	info->memory_class = pool->memory_class;
	info->mode = pool->mode;
	info->owner_uid = from_kuid_munged(ns, pool->uid);
	info->owner_gid = from_kgid_munged(ns, pool->gid);
	info->header_size = sizeof(struct mmk_msg_header);
	info->sessions = atomic_read(&pool->sessions);
	info->stores = atomic64_read(&pool->stores);
	info->frees = atomic64_read(&pool->frees);
	info->no_free_slots = atomic64_read(&pool->no_free_slots);
	strscpy(info->name, pool->name, sizeof(info->name));
	info->pool_bytes = pool->bytes;
	mutex_lock(&pool->members_lock);
	info->queues = pool->nr_queues;
	info->charged_bytes = pool->bytes + info->sessions * mmk_hold_bytes(pool) +
			      pool->queue_bytes;
	mutex_unlock(&pool->members_lock);

	for (i = 0; i < pool->capacity; i++) {
		struct mmk_slot *slot = pool->slots[i];

		spin_lock(&slot->lock);
		info->read_guards += slot->readers;
		info->write_guards += slot->writer;
		info->poisoned += slot->poisoned;
		spin_unlock(&slot->lock);
		if (!(i % 1024))
			cond_resched();
	}
}
