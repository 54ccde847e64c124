/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libmmk internals: the manager object and the ops table behind it.
 *
 * mmk.c is the front end: it checks arguments that do not depend on the
 * backend, keeps the guard structs, and calls the ops.  core.c implements
 * the heap and static backends over one storage descriptor; kernel.c wraps
 * /dev/mmk.
 */
#ifndef MMK_LIB_INTERNAL_H
#define MMK_LIB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include <mmk/mmk.h>

/*
 * Token layout, the same in every backend (and the kernel's): slot index
 * in bits 0-19, generation in bits 20-47, pool tag in bits 48-63.  Tag
 * 0xffff is never used, so MMK_TOKEN_INVALID never names a message.
 */
#define TOKEN_INDEX_BITS	20
#define TOKEN_GEN_BITS		28
#define TOKEN_GEN_SHIFT		TOKEN_INDEX_BITS
#define TOKEN_TAG_SHIFT		(TOKEN_INDEX_BITS + TOKEN_GEN_BITS)
#define TOKEN_INDEX_MASK	((UINT32_C(1) << TOKEN_INDEX_BITS) - 1)
#define TOKEN_GEN_MASK		((UINT32_C(1) << TOKEN_GEN_BITS) - 1)
#define TOKEN_TAG_NONE		0xffffU

enum guard_kind {
	GUARD_READ,
	GUARD_HEADER,
	GUARD_WRITE,
};

/* What a push gives: a token, a message to store, or a write guard's. */
enum push_kind {
	PUSH_TOKEN,
	PUSH_STORE,
	PUSH_COMMIT,
};

/* One push, checked by the front end (queues distinct, open, of @m). */
struct push_req {
	struct mmk_queue *const *qs;
	size_t n;
	enum push_kind kind;
	uint64_t token;			/* PUSH_TOKEN, PUSH_COMMIT; out for PUSH_STORE */
	const struct mmk_header *header;	/* PUSH_STORE */
	const void *payload;		/* PUSH_STORE */
	uint32_t size;			/* PUSH_STORE */
	struct mmk_message *msg;	/* PUSH_COMMIT: the guard's message */
	void *window;			/* PUSH_COMMIT: the guard's window */
	bool wait;
	uint64_t timeout_ns;
	struct mmk_push_outcome *out;	/* never NULL */
};

/* One popped message: a guard of the manager. */
struct popped {
	uint64_t token;
	struct mmk_message *msg;
	void *window;			/* write pops: as acquire's */
};

struct mmk_ops {
	enum mmk_error (*store)(struct mmk_manager *m, const struct mmk_header *h,
				const void *payload, uint32_t size, uint64_t *token);
	/* On success *msg is the message; *window is backend data for the
	 * write release (the kernel's window record) or NULL. */
	enum mmk_error (*acquire)(struct mmk_manager *m, uint64_t token, enum guard_kind kind,
				  bool wait, uint64_t timeout_ns, struct mmk_message **msg,
				  void **window);
	enum mmk_error (*release_shared)(struct mmk_manager *m, uint64_t token);
	enum mmk_error (*release_write)(struct mmk_manager *m, uint64_t token,
					struct mmk_message *msg, void *window);
	/* Drop a write guard without publishing (a loan: give the slot back). */
	enum mmk_error (*cancel_write)(struct mmk_manager *m, uint64_t token,
				       struct mmk_message *msg, void *window);
	/* Take a free slot under the write guard; *msg and *window as acquire. */
	enum mmk_error (*loan)(struct mmk_manager *m, uint64_t *token, struct mmk_message **msg,
			       void **window);
	/* Optional: run a batch at once; NULL runs the ops one by one. */
	enum mmk_error (*batch)(struct mmk_manager *m, struct mmk_batch_op *ops, size_t n,
				size_t *done);
	enum mmk_error (*free)(struct mmk_manager *m, uint64_t token);
	size_t (*available)(const struct mmk_manager *m);
	void (*close)(struct mmk_manager *m);

	/* Queues.  @attr NULL: open @name; else create.  *out is set. */
	enum mmk_error (*queue_open)(struct mmk_manager *m, const struct mmk_queue_attr *attr,
				     const char *name, struct mmk_queue **out);
	void (*queue_close)(struct mmk_queue *q);
	enum mmk_error (*push)(struct mmk_manager *m, struct push_req *r);
	/* Up to @max (>= 1) messages; *count taken. */
	enum mmk_error (*pop)(struct mmk_queue *q, bool write, bool wait, uint64_t timeout_ns,
			      struct popped *out, size_t max, size_t *count);
	enum mmk_error (*peek)(struct mmk_queue *q, size_t index, struct mmk_queue_entry *e);
	enum mmk_error (*queue_stats)(struct mmk_queue *q, struct mmk_queue_stats *st);
};

/*
 * State of one heap or static slot: struct mmk_slot_state, so that static
 * storage declared by the public macro is used through its own type.
 */
#define SLOT_GEN(s)	((s)->priv[0])	/* bumped by every store */
#define SLOT_READERS(s)	((s)->priv[1])	/* read and header guards held */
#define SLOT_STACK(s)	((s)->priv[2])	/* an entry of the free-slot stack */
#define SLOT_FLAGS(s)	((s)->priv[3])	/* SLOT_*, and the queue holds above */
#define SLOT_READY	0x1U		/* holds a message */
#define SLOT_WRITER	0x2U		/* a write guard is held */
#define SLOT_POISONED	0x4U		/* never set: no writer dies apart from its manager */
#define SLOT_LOANED	0x8U		/* taken by mmk_loan, not yet published */
#define SLOT_GIVEN	0x10U		/* pushed: freed when nothing holds it */
#define SLOT_QSHIFT	8		/* queues holding the message, in the bits above */
#define SLOT_QHOLDS(s)	(SLOT_FLAGS(s) >> SLOT_QSHIFT)

struct cqueue;

/*
 * A queue handle.  Heap and static: one of the MMK_QUEUE_HANDLES_MAX
 * handles inside the queue (struct cqueue).  Kernel: allocated, on the
 * manager's list of open handles.
 */
struct mmk_queue {
	struct mmk_manager *m;
	struct cqueue *cq;		/* heap, static */
	int fd;				/* kernel; else -1 */
	bool open;
	struct mmk_queue *prev, *next;	/* kernel: the manager's list */
};

/*
 * A heap or static queue, inside struct mmk_queue_storage: a ring of
 * struct mmk_queue_item (priv[0] the token, priv[1] the payload size at
 * push).
 */
struct cqueue {
	struct mmk_queue handles[MMK_QUEUE_HANDLES_MAX];
	struct cqueue *next;		/* the manager's queues */
	struct mmk_queue_storage *storage;
	struct mmk_queue_item *ring;
	bool heap;			/* storage allocated by mmk_queue_create */
	uint32_t nr_handles;
	uint32_t policy;
	uint32_t cap_items, soft_items;
	uint64_t cap_bytes, soft_bytes;
	uint32_t head, items, high_items;
	uint64_t bytes;
	uint64_t pushes, pops, rejected, drops[MMK_DROP_REASONS];
	char name[MMK_NAME_MAX];
};

struct core {
	struct mmk_slot_state *slots;
	unsigned char *arena;
	uint32_t nr_free;
	uint32_t nr_guards;	/* guards held, against MMK_GUARDS_MAX */
	uint16_t tag;
	uint32_t nr_queues;
	struct cqueue *queues;
	struct mmk_static_storage *storage;	/* static only */
};

/*
 * What the kernel backend keeps per slot for write guards.  Only the holder
 * of the slot's write guard touches it, and the kernel makes that guard
 * exclusive, so it needs no lock.
 */
struct kern_slot {
	struct mmk_message *buf;	/* write-back buffer, allocated on first use */
	void *window;			/* writable window, mapped on first use, or NULL */
	int window_pid;			/* the process that mapped it */
};

struct kern {
	int fd;
	uint32_t pool_id;
	const unsigned char *map;
	size_t map_size;
	struct kern_slot *slots;	/* capacity entries */
	unsigned char *awin;		/* arena window, mapped on first use, or NULL */
	int awin_pid;			/* the process that mapped (or tried) it */
	bool awin_tried;		/* ... and whether that process tried */
	pthread_mutex_t qlock;		/* protects queues */
	struct mmk_queue *queues;	/* open queue handles */
};

struct mmk_manager {
	const struct mmk_ops *ops;
	enum mmk_backend backend;
	uint32_t capacity;
	uint32_t payload_max;
	uint32_t flags;
	uint64_t payload_type;
	uint8_t memory_class;
	uint16_t memory_device;
	size_t slot_size;
	union {
		struct core core;
		struct kern kern;
	};
};

extern const struct mmk_ops mmk_core_ops;
extern const struct mmk_ops mmk_kernel_ops;

/* mmk.c: run ops of a batch one at a time through the ops table; *done
 * is added to. */
enum mmk_error mmk_batch_one(struct mmk_manager *m, struct mmk_batch_op *op);
enum mmk_error mmk_batch_one_by_one(struct mmk_manager *m, struct mmk_batch_op *ops, size_t n,
				    size_t *done);

/* mmk.c: mark a write guard not held. */
void mmk_write_guard_clear(struct mmk_write_guard *g);

/* core.c: header check shared with the kernel's rules. */
enum mmk_error mmk_header_check(const struct mmk_manager *m, struct mmk_header *h,
				uint32_t payload_size);

#endif /* MMK_LIB_INTERNAL_H */
