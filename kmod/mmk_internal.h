/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmk internals shared by the module's files.  See docs/DESIGN.md for the
 * design; the uAPI is in uapi/linux/mmk.h.
 */
#ifndef MMK_INTERNAL_H
#define MMK_INTERNAL_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/idr.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
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
 * __GFP_RETRY_MAYFAIL makes both the page allocator and the memcg charge
 * fail instead of invoking the OOM killer (see docs/DESIGN.md, "Limits").
 */
#define MMK_GFP_USER_SIZED	(GFP_KERNEL_ACCOUNT | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

/*
 * A session's hold word for one slot: write bit plus shared guard count.
 * MMK_HOLD_ZAPPED stands for MMK_HOLD_WRITE while a batch is about to
 * commit the guard: its window faults refuse, so that the batch zaps the
 * windows of all its commits at once (mmk_batch_prezap); the guard is
 * still the session's, and its release still zaps (finding nothing
 * mapped, it flushes no TLB).
 */
#define MMK_HOLD_WRITE		BIT(31)
#define MMK_HOLD_ZAPPED		BIT(30)
#define MMK_HOLD_READERS	GENMASK(29, 0)
#define MMK_HOLD_ANY_WRITE	(MMK_HOLD_WRITE | MMK_HOLD_ZAPPED)

/* Module parameters; read them with READ_ONCE, root may change them. */
extern unsigned int mmk_max_pools;
extern unsigned long mmk_max_pool_bytes;
extern unsigned long mmk_max_total_bytes;
extern unsigned int mmk_max_capacity;
extern unsigned int mmk_max_payload_size;
extern unsigned int mmk_max_guards_per_session;
extern unsigned int mmk_max_readers_per_slot;
extern unsigned int mmk_max_batch_ops;
extern unsigned int mmk_max_queue_items;
extern unsigned int mmk_max_queues_per_pool;

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
	bool given;		/* pushed: freed when its last hold goes */
	bool has_deadline;	/* deadline_ns is set (MMK_MSG_HAS_DEADLINE) */
	u8 qos;			/* of the message now stored */
	u32 queued;		/* queues holding the message */
	u64 deadline_ns;	/* CLOCK_MONOTONIC, if has_deadline */
	u32 writer_closes;	/* the writer's session's closes when it took the guard */
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
	u64 bytes;		/* charged for the pool itself, sessions apart */
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

	/*
	 * Protects the lists of the pool's queues and sessions, their counts
	 * and ids: queue creation, lookup by name and final put, session bind
	 * and destroy, and management listings.  Never taken by the data
	 * path (store, guards, push, pop).  Outer to every spinlock.
	 */
	struct mutex members_lock;
	struct list_head queues;
	unsigned int nr_queues;
	u64 queue_bytes;	/* reserved by its queues against max_total_bytes */
	struct ida queue_ida;
	struct list_head session_list;
	u32 next_session_id;
};

/*
 * What a session shares with the queue descriptors opened through it,
 * which may outlive it: how many of them are open.
 */
struct mmk_session_tag {
	struct kref ref;
	atomic_t queues_open;
};

/**
 * struct mmk_session - one open file of /dev/mmk
 */
struct mmk_session {
	struct inode *inode;	/* private: its mapping holds only this session's VMAs */
	struct address_space *mapping;	/* the file's, to unmap windows */
	atomic_t closes;	/* descriptors of the session closed (f_op->flush) */
	/* Serialises binding; the data path reads @pool without it. */
	struct mutex bind_lock;
	struct mmk_pool *pool;	/* set once under bind_lock, then constant */
	u32 *holds;		/* per slot; under that slot's lock */
	atomic_t nr_guards;	/* guards held, against the session cap */
	struct mmk_session_tag *tag;

	/* Who bound it, for management; set at bind, then constant. */
	struct list_head pool_node;	/* in pool->session_list, under members_lock */
	u32 id;
	struct pid *pid;
	kuid_t uid;
	char comm[TASK_COMM_LEN];
};

/* What management shows of a session (mmk_pool_session_stat()). */
struct mmk_session_stat {
	u32 id;			/* unique among the pool's sessions, in bind order */
	pid_t pid;		/* tgid that bound it, in the caller's pid namespace */
	uid_t uid;		/* its fsuid at bind, in the caller's user namespace */
	char comm[TASK_COMM_LEN];
	u32 read_guards;	/* read and header guards held */
	u32 write_guards;	/* write guards held, loans included */
	u32 loans;		/* unpublished loans */
	u32 popped;		/* guards held on messages given to queues */
	u32 queues_open;	/* queue descriptors opened through it, still open */
};

/* The pool a session is bound to, or NULL.  Pairs with mmk_session_bind(). */
static inline struct mmk_pool *mmk_session_pool(struct mmk_session *s)
{
	return smp_load_acquire(&s->pool); /* pairs with smp_store_release() at bind */
}

/* Bytes of one session's hold words for @pool, charged at bind. */
static inline u64 mmk_hold_bytes(const struct mmk_pool *pool)
{
	return (u64)pool->capacity * sizeof(u32);
}

static inline void *mmk_slot_addr(const struct mmk_pool *pool, u32 idx)
{
	return pool->arena + (size_t)idx * pool->slot_size;
}

/* Pools */
int mmk_name_check(const char *name, bool allow_empty);
int mmk_pool_init(void);
void mmk_pool_exit(void);
int mmk_pool_create(const struct mmk_pool_create *args, struct mmk_pool **out);
int mmk_pool_attach(const struct mmk_pool_attach *args, struct mmk_pool **out);
void mmk_pool_publish(struct mmk_pool *pool);
void mmk_pool_put(struct mmk_pool *pool);
void mmk_pool_fill_info(struct mmk_pool *pool, struct mmk_pool_info *info);
unsigned int mmk_pool_count(void);
u64 mmk_pool_bytes(void);
int mmk_charge_reserve(u64 bytes);
void mmk_charge_release(u64 bytes);
struct mmk_pool *mmk_pool_get_visible(u32 id, const char *name, bool admin);
struct mmk_pool *mmk_pool_get_next_visible(u32 *id, bool admin, unsigned int *gen);
unsigned int mmk_pool_ipc_ns_inum(const struct mmk_pool *pool);
bool mmk_current_ipc_ns_is_initial(void);

/* Sessions */
int mmk_session_fs_init(void);
void mmk_session_fs_exit(void);
struct mmk_session *mmk_session_new(void);
void mmk_session_destroy(struct mmk_session *s);
int mmk_session_bind(struct mmk_session *s, struct mmk_pool *pool);
int mmk_pool_session_stat(struct mmk_pool *pool, u32 *id, struct mmk_session_stat *st);
void mmk_session_tag_put(struct mmk_session_tag *tag);

/*
 * A write release in two halves, so that commit-and-push can publish
 * into queues between them: mmk_write_begin() takes the guard out of the
 * session's hands and commits; mmk_write_end() finishes the release (or
 * gives the guard back on failure).  See mmk_write_release().
 */
struct mmk_write_op {
	struct mmk_msg_header h;	/* the committed header, if @committed */
	u32 idx;
	u32 gen;
	bool windowed;
	bool loaned;
	bool commit;		/* MMK_RELEASE_COMMIT */
	bool committed;		/* the slot holds a new, checked message */
	bool torn;		/* a write-back was torn: poison or cancel */
};

/* Slots: the data path */
u64 mmk_token_make(const struct mmk_pool *pool, u32 gen, u32 idx);
int mmk_token_parse(const struct mmk_pool *pool, u64 token, u32 *idx, u32 *gen);
int mmk_slot_check(const struct mmk_slot *slot, u32 gen);
bool mmk_session_charge_guard(struct mmk_session *s);
int mmk_store_prepare(struct mmk_session *s, struct mmk_store *args, u32 *idx,
		      struct mmk_msg_header *h);
void mmk_store_publish(struct mmk_pool *pool, u32 idx, const struct mmk_msg_header *h);
void mmk_slot_set_meta(struct mmk_slot *slot, const struct mmk_msg_header *h);
void mmk_store_publish_locked(struct mmk_slot *slot, const struct mmk_msg_header *h);
void mmk_store_unpublish_locked(struct mmk_slot *slot);
void mmk_store_abort(struct mmk_pool *pool, u32 idx);
int mmk_guard_acquire(struct mmk_session *s, struct mmk_guard *args, bool write);
int mmk_read_release(struct mmk_session *s, const struct mmk_release *args);
int mmk_write_begin(struct mmk_session *s, const struct mmk_release *args,
		    struct mmk_write_op *op);
void mmk_write_drop(struct mmk_session *s, u64 token);
bool mmk_write_prezap_locked(struct mmk_session *s, struct mmk_slot *slot, u32 idx);
void mmk_write_unzap(struct mmk_session *s, u32 first, u32 last);
int mmk_write_end(struct mmk_session *s, struct mmk_write_op *op, int ret);
void mmk_write_publish_locked(struct mmk_pool *pool, struct mmk_slot *slot,
			      const struct mmk_write_op *op);
int mmk_write_release(struct mmk_session *s, const struct mmk_release *args);
int mmk_free(struct mmk_session *s, const struct mmk_free *args);
int mmk_loan(struct mmk_session *s, struct mmk_loan *args);
void mmk_slots_drop_session(struct mmk_session *s);
void mmk_pool_wake(struct mmk_pool *pool);
bool mmk_slot_orphaned_locked(struct mmk_slot *slot);
void mmk_slot_recycle(struct mmk_pool *pool, u32 idx);
void mmk_slot_unqueue(struct mmk_pool *pool, u32 idx);

/* Queues (mmk_queue.c, mmk_push.c, mmk_pop.c) */
struct mmk_queue;

/*
 * Queue wake-ups that a call holds back until it ends or is about to
 * wait: a batch of pushes (or a pop of many) then wakes a sleeping peer
 * once, not at every message, and the peer finds the whole batch.  Each
 * queue held here is referenced.  Beyond MMK_WAKES_MAX queues, wake-ups
 * happen at once.
 */
#define MMK_WAKES_MAX	4
struct mmk_wakes {
	u32 n;
	struct mmk_queue *q[MMK_WAKES_MAX];
	__poll_t events[MMK_WAKES_MAX];
};

void mmk_wakes_flush(struct mmk_wakes *w, bool waiting);
int mmk_queue_open(struct mmk_session *s, struct mmk_queue_open *args, struct file **file);
int mmk_push(struct mmk_session *s, struct mmk_push *args, struct mmk_wakes *w);
int mmk_pop_one(struct mmk_session *s, int queue_fd, u32 flags, u64 timeout_ns,
		struct mmk_popped *out, struct mmk_wakes *w);
void mmk_pop_undo(struct mmk_session *s, int queue_fd, u32 flags, const struct mmk_popped *p);
int mmk_pop(struct mmk_session *s, struct mmk_pop *args);
int mmk_queue_peek(struct mmk_session *s, struct mmk_queue_peek *args);
int mmk_pool_queue_info(struct mmk_pool *pool, u32 *id, struct mmk_queue_info *info);
unsigned int mmk_pool_queue_count(struct mmk_pool *pool);

/* Batches of data-path operations */
int mmk_batch_run(struct mmk_session *s, struct mmk_batch *args);

/* Mapping */
int mmk_mmap(struct file *file, struct vm_area_struct *vma);
void mmk_window_unmap(struct mmk_session *s, u32 idx);
void mmk_window_unmap_span(struct mmk_session *s, u32 first, u32 last);

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
