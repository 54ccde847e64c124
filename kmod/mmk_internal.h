/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmk internals shared by the module's files.  See docs/DESIGN.md for the
 * design; the uAPI is in uapi/linux/mmk.h.
 */
#ifndef MMK_INTERNAL_H
#define MMK_INTERNAL_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>

#include <linux/mmk.h>

struct ipc_namespace;

/*
 * Token layout (opaque to users): slot index, generation, pool id.
 * Pool id MMK_POOL_ID_NONE is never allocated, so MMK_TOKEN_INVALID
 * (all ones) never matches a pool.
 */
#define MMK_TOKEN_INDEX		GENMASK_ULL(19, 0)
#define MMK_TOKEN_GEN		GENMASK_ULL(47, 20)
#define MMK_TOKEN_POOL		GENMASK_ULL(63, 48)
#define MMK_GEN_MASK		((u32)(MMK_TOKEN_GEN >> 20))
#define MMK_CAPACITY_LIMIT	BIT(20)
#define MMK_POOL_ID_MIN		1
#define MMK_POOL_ID_NONE	0xffff

#define MMK_SLOT_ALIGN		64	/* slots start on a cache line */
#define MMK_WINDOW_OFFSET_MASK	(BIT_ULL(MMK_WINDOW_SHIFT) - 1)

/*
 * Allocations whose size a caller chooses (capacity, slot size): charged to
 * its memcg, and a failure is the caller's ENOMEM, not a kernel warning.
 */
#define MMK_GFP_USER_SIZED	(GFP_KERNEL_ACCOUNT | __GFP_NOWARN)

/* A session's hold word for one slot: write bit plus shared guard count. */
#define MMK_HOLD_WRITE		BIT(31)
#define MMK_HOLD_READERS	GENMASK(30, 0)

/* Module parameters; read them with READ_ONCE, root may change them. */
extern unsigned int mmk_max_pools;
extern unsigned long mmk_max_pool_bytes;
extern unsigned long mmk_max_total_bytes;
extern unsigned int mmk_max_capacity;
extern unsigned int mmk_max_payload_size;
extern unsigned int mmk_max_guards_per_session;
extern unsigned int mmk_max_readers_per_slot;
extern unsigned int mmk_max_batch_ops;

enum mmk_slot_state {
	MMK_SLOT_FREE,
	MMK_SLOT_READY,
};

/*
 * struct mmk_slot - kernel-private state of one slot, from mmk_slot_cache.
 * The kernel never trusts the header in the arena: it decides only on
 * these fields.
 */
struct mmk_slot {
	/*
	 * Protects every field below, and the hold word of every session
	 * for this slot.  Innermost lock; nothing sleeps under it.
	 */
	spinlock_t lock;
	u32 gen;		/* bumped by every store */
	u32 payload_size;	/* of the message now stored */
	u32 readers;		/* read and header guards held */
	u8 state;		/* enum mmk_slot_state */
	bool writer;		/* a write guard is held */
	bool poisoned;		/* a write guard was dropped by close */
	bool windowed;		/* the writer mapped a writable window */
	bool loaned;		/* taken by MMK_IOC_LOAN, not yet published */
};

/**
 * struct mmk_pool - a pool of equal-sized slots
 *
 * Everything from @id to @name is set at creation and never changes.
 * A pool is registered (its id and name taken) at creation, and becomes
 * attachable (@live) only once its creator's session is bound to it.
 */
struct mmk_pool {
	struct kref ref;	/* one per bound session */
	u32 id;
	u32 flags;
	u32 payload_size;
	u32 slot_size;
	u32 capacity;
	u64 map_size;
	u64 payload_type;
	u8 memory_class;
	umode_t mode;
	kuid_t uid;
	kgid_t gid;
	char name[MMK_NAME_MAX];
	bool live;		/* attachable; under mmk_pools_lock */
	/* The creator's: names are unique, and found, in it only. */
	struct ipc_namespace *ipc_ns;

	struct mmk_slot **slots;
	void *arena;		/* vmalloc, map_size bytes, mapped read-only */

	/* Protects free_stack and nr_free.  Taken by store, loan, loan cancel and free only. */
	spinlock_t free_lock;
	u32 *free_stack;
	u32 nr_free;

	/*
	 * Writable windows: faults take it shared, and a write release takes
	 * it exclusively around unmapping the window, so no fault can map a
	 * page after the guard is gone.  Only page-aligned pools use it.
	 */
	struct rw_semaphore window_lock;

	/* Guard waiters (MMK_GUARD_WAIT); woken only when it has sleepers. */
	wait_queue_head_t wq;

	atomic_t sessions;
	atomic64_t stores;
	atomic64_t frees;
	atomic64_t no_free_slots;

	/* jiffies of the last exhausted event, 0 if none; cmpxchg, no lock. */
	unsigned long nl_exhausted_at;
};

/**
 * struct mmk_session - one open file of /dev/mmk
 */
struct mmk_session {
	struct address_space *mapping;	/* of the file, to unmap windows */
	/* Serialises binding; the data path reads @pool without it. */
	struct mutex bind_lock;
	struct mmk_pool *pool;	/* set once under bind_lock, then constant */
	u32 *holds;		/* per slot; under that slot's lock */
	atomic_t nr_guards;	/* guards held, against the session cap */
};

/* The pool a session is bound to, or NULL.  Pairs with mmk_session_bind(). */
static inline struct mmk_pool *mmk_session_pool(struct mmk_session *s)
{
	return smp_load_acquire(&s->pool); /* pairs with smp_store_release() at bind */
}

static inline void *mmk_slot_addr(const struct mmk_pool *pool, u32 idx)
{
	return pool->arena + (size_t)idx * pool->slot_size;
}

/* Pools */
int mmk_pool_init(void);
void mmk_pool_exit(void);
int mmk_pool_create(const struct mmk_pool_create *args, struct mmk_pool **out);
int mmk_pool_attach(const struct mmk_pool_attach *args, struct mmk_pool **out);
void mmk_pool_publish(struct mmk_pool *pool);
void mmk_pool_put(struct mmk_pool *pool);
void mmk_pool_fill_info(struct mmk_pool *pool, struct mmk_pool_info *info);
unsigned int mmk_pool_count(void);
u64 mmk_pool_bytes(void);
struct mmk_pool *mmk_pool_get_visible(u32 id, const char *name, bool admin);
struct mmk_pool *mmk_pool_get_next_visible(u32 *id, bool admin, unsigned int *gen);
unsigned int mmk_pool_ipc_ns_inum(const struct mmk_pool *pool);
bool mmk_current_ipc_ns_is_initial(void);

/* Sessions */
struct mmk_session *mmk_session_new(struct address_space *mapping);
void mmk_session_destroy(struct mmk_session *s);
int mmk_session_bind(struct mmk_session *s, struct mmk_pool *pool);

/* Slots: the data path */
int mmk_store_prepare(struct mmk_session *s, struct mmk_store *args, u32 *idx);
void mmk_store_publish(struct mmk_pool *pool, u32 idx, u32 payload_size);
void mmk_store_abort(struct mmk_pool *pool, u32 idx);
int mmk_guard_acquire(struct mmk_session *s, struct mmk_guard *args, bool write);
int mmk_read_release(struct mmk_session *s, const struct mmk_release *args);
int mmk_write_release(struct mmk_session *s, const struct mmk_release *args);
int mmk_free(struct mmk_session *s, const struct mmk_free *args);
int mmk_loan(struct mmk_session *s, struct mmk_loan *args);
void mmk_slots_drop_session(struct mmk_session *s);
void mmk_pool_wake(struct mmk_pool *pool);

/* Batches of data-path operations */
int mmk_batch_run(struct mmk_session *s, struct mmk_batch *args);

/* Mapping */
int mmk_mmap(struct file *file, struct vm_area_struct *vma);
void mmk_window_unmap(struct mmk_session *s, u32 idx);

/*
 * Management over generic netlink.  The event functions may sleep: call
 * them from process context with no spinlock (and no mmk_pools_lock) held.
 */
int mmk_netlink_init(void);
void mmk_netlink_exit(void);
void mmk_nl_pool_created(struct mmk_pool *pool);
void mmk_nl_pool_destroyed(struct mmk_pool *pool);
void mmk_nl_pool_exhausted(struct mmk_pool *pool);
void mmk_nl_slot_poisoned(struct mmk_pool *pool, u64 token);

#endif /* MMK_INTERNAL_H */
