/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libmmk - one C API for message pools, with three backends.
 *
 *   #include <mmk/mmk.h>
 *   cc prog.c $(pkg-config --cflags --libs mmk)
 *
 * A manager (struct mmk_manager) owns a fixed number of equal-sized message
 * slots.  mmk_store() copies a message (a struct mmk_header and a payload)
 * into a free slot and returns a 64-bit token.  Whoever holds the token can
 * take a guard on the message: a shared read guard (mmk_read), a shared
 * header guard (mmk_peek_header) or an exclusive write guard (mmk_read_mut),
 * read or change the message through the guard's pointer, and release the
 * guard.  mmk_free() gives the slot back.
 *
 * Three backends sit behind the same functions; a program picks one by its
 * constructor and nothing else changes:
 *
 *   kernel  mmk_kernel_create(), mmk_kernel_attach(), mmk_kernel_from_fd():
 *           a /dev/mmk pool, shared between processes, thread-safe.  Reads
 *           are in place through a read-only mapping of the pool.
 *   heap    mmk_heap_create(): every slot from one allocation made by the
 *           constructor.  Single-threaded.
 *   static  mmk_static_create() on storage declared with
 *           MMK_STATIC_STORAGE(): never allocates.  Single-threaded.
 *
 * All three give the same result and the same error for the same sequence
 * of calls; the rules are those of the mmk contract:
 *
 * Tokens.  A token names a slot, the slot's generation and the pool.  Every
 * store into a slot increases its generation by one.  A token whose slot
 * holds its message is valid.  A token whose message was freed, while the
 * slot is still empty, gives MMK_E_NOT_ALLOCATED.  A token whose slot was
 * reused since (stale), a token of another pool, a malformed token and
 * MMK_TOKEN_INVALID give MMK_E_BAD_TOKEN.
 *
 * Borrows.  Read and header guards are shared; a write guard is exclusive.
 * Taking a write guard while any guard is held on the message, or a read or
 * header guard while a write guard is held, fails with
 * MMK_E_ALREADY_BORROWED.  Nothing blocks, except the *_wait() variants.
 * A message cannot be freed while any guard is held on it
 * (MMK_E_BORROW_ACTIVE).
 *
 * Check order.  When several errors apply, the first in these lists wins:
 *   mmk_read, mmk_read_mut, mmk_peek_header:
 *       MMK_E_BAD_TOKEN, MMK_E_NOT_ALLOCATED, MMK_E_POISONED,
 *       MMK_E_ALREADY_BORROWED, MMK_E_LIMIT
 *   mmk_free:
 *       MMK_E_BAD_TOKEN, MMK_E_NOT_ALLOCATED, MMK_E_BORROW_ACTIVE,
 *       MMK_E_QUEUE_OWNED
 *   mmk_queue_try_push:
 *       MMK_E_INVALID (bad argument), MMK_E_BAD_TOKEN, MMK_E_NOT_ALLOCATED,
 *       MMK_E_POISONED, MMK_E_ALREADY_BORROWED, MMK_E_QUEUE_OWNED,
 *       MMK_E_QUEUE_FULL
 *   mmk_queue_try_pop:
 *       MMK_E_INVALID, MMK_E_QUEUE_EMPTY, MMK_E_ALREADY_BORROWED (write
 *       pop), MMK_E_LIMIT
 *   mmk_store:
 *       MMK_E_INVALID (bad argument), MMK_E_TOO_LARGE,
 *       MMK_E_INVALID (bad header), MMK_E_NO_FREE_SLOTS
 *
 * Limits.  A manager holds at most MMK_GUARDS_MAX guards at once, and a
 * message has at most MMK_READERS_MAX read and header guards at once;
 * beyond that guard acquisition fails with MMK_E_LIMIT.  For the kernel
 * backend these are the module's defaults (max_guards_per_session,
 * max_readers_per_slot), which root may change; the heap and static
 * backends use the defaults.
 *
 * Errors.  Functions that can fail return enum mmk_error; MMK_OK is 0.
 * When MMK_E_SYSTEM is returned, errno holds the cause.  Otherwise errno is
 * unspecified.
 *
 * Threads.  Unless a function says otherwise: with the kernel backend,
 * every function may be called from any thread at the same time, on the
 * same manager; with the heap and static backends, calls on one manager
 * must not run concurrently (different managers are independent).  A guard
 * may be released by a thread other than the one that took it, but one
 * guard must not be used by two threads at once.
 *
 * Processes.  A kernel manager is one session of /dev/mmk.  Guards belong
 * to the session: a forked child shares its parent's session and guards,
 * and may go on using the parent's manager (its copy of it).  When the last
 * process holding the session closes it or dies, its guards are released;
 * a write guard released that way poisons its message: read, read_mut and
 * peek_header then fail with MMK_E_POISONED until the message is freed.
 * A heap or static manager is copied by fork(), like any memory.
 *
 * Combining with the uAPI header.  <mmk/mmk.h> needs no kernel header.  It
 * shares some names with <linux/mmk.h> (MMK_TOKEN_INVALID, the memory
 * classes, QoS classes and message flags, MMK_POOL_PAGE_ALIGNED,
 * MMK_NAME_MAX), with the same values.  A file that needs both must include
 * <linux/mmk.h> first.
 */
#ifndef MMK_MMK_H
#define MMK_MMK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMK_VERSION_MAJOR	0
#define MMK_VERSION_MINOR	1
#define MMK_VERSION_PATCH	0

#if defined(__GNUC__) || defined(__clang__)
#define MMK_API		__attribute__((visibility("default")))
#define MMK_NODISCARD	__attribute__((warn_unused_result))
#define MMK_MAYBE_UNUSED	__attribute__((unused))
#else
#define MMK_API
#define MMK_NODISCARD
#define MMK_MAYBE_UNUSED
#endif

#ifdef __cplusplus
#define MMK_STATIC_ASSERT(expr, msg)	static_assert(expr, msg)
#else
#define MMK_STATIC_ASSERT(expr, msg)	_Static_assert(expr, msg)
#endif

/* ---- names shared with <linux/mmk.h> ------------------------------------ */

#ifndef _UAPI_LINUX_MMK_H
/* A token that never names a message. */
#define MMK_TOKEN_INVALID	(~(uint64_t)0)

/* Longest pool name, including the terminating NUL. */
#define MMK_NAME_MAX		64

/* enum mmk_memory_class - where a pool's payload memory lives. */
enum mmk_memory_class {
	MMK_MEM_HOST		= 0,	/* ordinary host memory */
	MMK_MEM_PINNED_HOST	= 1,	/* host memory that is never swapped */
	MMK_MEM_DEVICE		= 2,	/* memory of device n (memory_device) */
	MMK_MEM_SHARED		= 3,	/* host memory shared between processes */
};

/* QoS classes of a message.  0 in a header given to mmk means "default". */
#define MMK_QOS_BACKGROUND		1
#define MMK_QOS_BEST_EFFORT		2	/* the default */
#define MMK_QOS_LATENCY_CRITICAL	3

/* Message flags (struct mmk_header.flags); other bits are refused. */
#define MMK_MSG_FIRST_IN_BATCH	0x1U
#define MMK_MSG_LAST_IN_BATCH	0x2U
#define MMK_MSG_DEGRADE_ALLOWED	0x4U
#define MMK_MSG_HAS_DEADLINE	0x8U	/* deadline_ns is set */
#define MMK_MSG_FLAGS_ALL	(MMK_MSG_FIRST_IN_BATCH | MMK_MSG_LAST_IN_BATCH | \
				 MMK_MSG_DEGRADE_ALLOWED | MMK_MSG_HAS_DEADLINE)

/* Pool flags (struct mmk_config.flags). */
#define MMK_POOL_PAGE_ALIGNED	0x1U	/* every slot starts on a page */

/* Most queues one push names (mmk_queue_try_push_many). */
#define MMK_PUSH_MAX_QUEUES	8

/* Drop reasons: indexes of struct mmk_queue_stats.drops. */
#define MMK_DROP_NEWEST		0	/* DropNewest dropped the incoming message */
#define MMK_DROP_OLDEST		1	/* DropOldest evicted a queued message */
#define MMK_DROP_QOS		2	/* QoS admission dropped a message */
#define MMK_DROP_DEADLINE	3	/* QoS pop dropped an expired message */
#define MMK_DROP_REASONS	4
#endif /* _UAPI_LINUX_MMK_H */

/* ---- errors -------------------------------------------------------------- */

/**
 * enum mmk_error - result of every libmmk function that can fail
 * @MMK_OK:                 success
 * @MMK_E_NO_FREE_SLOTS:    the pool is full (store)
 * @MMK_E_BAD_TOKEN:        malformed, foreign or stale token, or
 *                          MMK_TOKEN_INVALID
 * @MMK_E_NOT_ALLOCATED:    the token's message was freed
 * @MMK_E_ALREADY_BORROWED: an incompatible guard is held on the message
 * @MMK_E_BORROW_ACTIVE:    free while a guard is held on the message
 * @MMK_E_QUEUE_OWNED:      free while a queue holds the token, or a push
 *                          to a queue that already holds it
 * @MMK_E_POISONED:         a writer died holding the message; free it
 * @MMK_E_TOO_LARGE:        payload larger than the pool's slots
 * @MMK_E_INVALID:          bad argument, flag or header field
 * @MMK_E_TYPE_MISMATCH:    the pool's payload type id is another one
 * @MMK_E_LIMIT:            a per-manager, per-message or system limit
 * @MMK_E_SYSTEM:           anything else; errno holds the cause
 * @MMK_E_QUEUE_FULL:       a queue refused a push (its policy, at its caps)
 * @MMK_E_QUEUE_EMPTY:      nothing (more) in the queue: pop, peek
 *
 * The values are part of the ABI and never change.
 */
enum mmk_error {
	MMK_OK			= 0,
	MMK_E_NO_FREE_SLOTS	= 1,
	MMK_E_BAD_TOKEN		= 2,
	MMK_E_NOT_ALLOCATED	= 3,
	MMK_E_ALREADY_BORROWED	= 4,
	MMK_E_BORROW_ACTIVE	= 5,
	MMK_E_QUEUE_OWNED	= 6,
	MMK_E_POISONED		= 7,
	MMK_E_TOO_LARGE		= 8,
	MMK_E_INVALID		= 9,
	MMK_E_TYPE_MISMATCH	= 10,
	MMK_E_LIMIT		= 11,
	MMK_E_SYSTEM		= 12,
	MMK_E_QUEUE_FULL	= 13,
	MMK_E_QUEUE_EMPTY	= 14,
};

/**
 * mmk_strerror - describe an error
 * @err: an enum mmk_error value
 *
 * Returns a static, constant string such as "bad token (malformed, foreign
 * or stale)", or "unknown error" for a value outside the enum.  Never
 * NULL.  Thread-safe.
 */
MMK_API const char *mmk_strerror(enum mmk_error err);

/**
 * mmk_error_name - the C name of an error
 * @err: an enum mmk_error value
 *
 * Returns "MMK_OK", "MMK_E_BAD_TOKEN", ..., or "MMK_E_UNKNOWN" for a value
 * outside the enum.  Never NULL.  Thread-safe.
 */
MMK_API const char *mmk_error_name(enum mmk_error err);

/* ---- messages ---------------------------------------------------------------- */

/**
 * struct mmk_header - the fixed header in front of every message
 * @trace_id:      caller's trace id
 * @sequence:      caller's sequence number
 * @created_tick:  caller's creation tick
 * @deadline_ns:   deadline; must be 0 unless MMK_MSG_HAS_DEADLINE is set
 * @payload_size:  bytes of payload after the header (set by mmk_store;
 *                 a write guard may change it, up to mmk_payload_max())
 * @flags:         MMK_MSG_*; unknown bits are refused (MMK_E_INVALID)
 * @qos:           MMK_QOS_*; 0 is stored as MMK_QOS_BEST_EFFORT; more than
 *                 MMK_QOS_LATENCY_CRITICAL is refused
 * @memory_class:  enum mmk_memory_class of the pool (set by mmk)
 * @memory_device: device index for MMK_MEM_DEVICE, else 0 (set by mmk)
 * @reserved0:     must be zero
 * @reserved1:     must be zero
 *
 * The layout is that of the kernel's struct mmk_msg_header: 64 bytes,
 * fixed-width fields, no implicit padding, 8-byte aligned.  When a header
 * is given to mmk (store, write release), payload_size, memory_class and
 * memory_device are ignored and overwritten.
 */
struct mmk_header {
	uint64_t trace_id;
	uint64_t sequence;
	uint64_t created_tick;
	uint64_t deadline_ns;
	uint32_t payload_size;
	uint32_t flags;
	uint8_t  qos;
	uint8_t  memory_class;
	uint16_t memory_device;
	uint32_t reserved0;
	uint64_t reserved1[2];
};

MMK_STATIC_ASSERT(sizeof(struct mmk_header) == 64, "struct mmk_header is 64 bytes");

/**
 * struct mmk_message - a message: the header, then the payload
 * @header:  the header
 * @payload: header.payload_size bytes
 *
 * The payload starts MMK_PAYLOAD_ALIGN-aligned in every backend.
 */
struct mmk_message {
	struct mmk_header header;
	unsigned char payload[];
};

/* Alignment of every payload, in bytes. */
#define MMK_PAYLOAD_ALIGN	64

/* Largest payload size any backend accepts (the kernel module's own limit,
 * max_payload_size, is lower: 16 MiB by default). */
#define MMK_PAYLOAD_MAX		((uint32_t)1 << 30)

/* Most slots of one pool (the token has 20 bits of slot index). */
#define MMK_CAPACITY_MAX	((uint32_t)1 << 20)

/* Guard limits (see "Limits" above). */
#define MMK_GUARDS_MAX		1024
#define MMK_READERS_MAX		1024

/* ---- managers ---------------------------------------------------------------- */

/* A manager: opaque.  Created by a constructor, destroyed by mmk_close(). */
struct mmk_manager;

/* enum mmk_backend - what a manager is backed by (mmk_backend()). */
enum mmk_backend {
	MMK_BACKEND_KERNEL	= 1,
	MMK_BACKEND_HEAP	= 2,
	MMK_BACKEND_STATIC	= 3,
};

/**
 * struct mmk_config - what a new pool looks like
 * @payload_size:  largest payload of a message, in bytes: 1 to
 *                 MMK_PAYLOAD_MAX (kernel: up to its max_payload_size)
 * @capacity:      number of slots: 1 to MMK_CAPACITY_MAX (kernel: up to its
 *                 max_capacity)
 * @payload_type:  payload type id; any value.  mmk_kernel_attach() must
 *                 present the same id, and the typed wrappers of
 *                 MMK_DEFINE_TYPED() check it.
 * @memory_class:  enum mmk_memory_class.  The kernel refuses MMK_MEM_DEVICE
 *                 (MMK_E_INVALID); heap and static managers report whatever
 *                 class they were given.
 * @memory_device: device index, only with MMK_MEM_DEVICE (0 to 65535);
 *                 must be 0 otherwise
 * @flags:         MMK_POOL_PAGE_ALIGNED or 0.  Kernel: every slot starts on
 *                 a page, and write guards write in place.  Heap: slots
 *                 start on a page.  Static: refused (MMK_E_INVALID).
 * @mode:          kernel only: who may attach, as file mode bits (0 to
 *                 0777; attach needs read and write permission, or
 *                 CAP_IPC_OWNER).  Ignored by heap and static.
 * @name:          kernel only: name for mmk_kernel_attach() (1 to 63
 *                 printable ASCII bytes, no '/'), or NULL or "" for an
 *                 anonymous pool, shared only by fork() or by passing its
 *                 file descriptor.  Ignored by heap and static.
 *
 * Zero-initialise it and set what you need: the same struct can then be
 * given to every backend's constructor.
 */
struct mmk_config {
	uint32_t payload_size;
	uint32_t capacity;
	uint64_t payload_type;
	uint32_t memory_class;
	uint32_t memory_device;
	uint32_t flags;
	uint32_t mode;
	const char *name;
};

/**
 * mmk_kernel_create - create a /dev/mmk pool and a manager on it
 * @cfg: the pool; see struct mmk_config
 * @out: the new manager, on success; NULL on failure
 *
 * Opens /dev/mmk (one session), creates the pool, which is charged to the
 * caller's memory cgroup, and maps it read-only.  The pool lives until the
 * last file descriptor and mapping referring to it are gone.
 *
 * Errors:
 *   MMK_E_INVALID    @cfg or @out NULL; unknown flags; bad mode, memory
 *                    class, name, payload size or capacity (including over
 *                    the module's limits); MMK_MEM_DEVICE
 *   MMK_E_LIMIT      the module's pool count or byte limit was reached
 *   MMK_E_SYSTEM     errno: ENOENT (no /dev/mmk: module not loaded),
 *                    EEXIST (name taken), ENOMEM, EACCES, ...
 *
 * Thread-safe.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_kernel_create(const struct mmk_config *cfg, struct mmk_manager **out);

/**
 * mmk_kernel_attach - open a manager on an existing named /dev/mmk pool
 * @name:         the pool's name
 * @payload_type: the payload type id the pool was created with
 * @out:          the new manager, on success; NULL on failure
 *
 * Opens a new session of /dev/mmk, attaches it to the pool and maps the
 * pool read-only.  The caller needs read and write permission by the
 * pool's mode bits (or CAP_IPC_OWNER).
 *
 * Errors:
 *   MMK_E_INVALID        @name or @out NULL, or @name malformed
 *   MMK_E_TYPE_MISMATCH  the pool's payload type id is not @payload_type
 *   MMK_E_SYSTEM         errno: ENOENT (no such pool, or no /dev/mmk),
 *                        EACCES (refused by the mode bits), ENOMEM, ...
 *
 * Thread-safe.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_kernel_attach(const char *name, uint64_t payload_type, struct mmk_manager **out);

/**
 * mmk_kernel_attach_owner - mmk_kernel_attach(), only to a pool @owner created
 * @name:         the pool's name
 * @payload_type: the payload type id the pool was created with
 * @owner:        the uid (in the caller's user namespace) that must have
 *                created the pool, so that a pool another user created first
 *                under the same name (a squatter) is refused
 * @out:          the new manager, on success; NULL on failure
 *
 * Errors: those of mmk_kernel_attach(), and MMK_E_SYSTEM with errno EPERM
 * if another uid created the pool (checked before the mode bits), or
 * EINVAL if @owner is not a uid of the caller's user namespace.
 *
 * Thread-safe.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_kernel_attach_owner(const char *name, uint64_t payload_type, uid_t owner,
			struct mmk_manager **out);

/**
 * mmk_kernel_from_fd - open a manager on the session behind a descriptor
 * @fd:  a /dev/mmk file descriptor bound to a pool, for instance one
 *       received with SCM_RIGHTS, or mmk_fd() of a manager inherited
 *       across exec
 * @out: the new manager, on success; NULL on failure
 *
 * The manager works on a duplicate of @fd (close-on-exec); the caller keeps
 * @fd.  Both name the same open file, so the same session: the guards of
 * one are the guards of the other.  The pool is mapped read-only.
 *
 * The kernel allows one mapping of a session at a time: while another
 * process still maps this session (for instance the sender, through its own
 * manager), this fails with MMK_E_SYSTEM and errno EBUSY.
 *
 * Errors:
 *   MMK_E_INVALID  @fd negative or @out NULL; @fd is not a bound /dev/mmk
 *                  session (errno ENOTTY or ENOTCONN)
 *   MMK_E_SYSTEM   errno: EBADF, EBUSY (session mapped elsewhere), ENOMEM
 *
 * Thread-safe.
 */
MMK_API MMK_NODISCARD enum mmk_error mmk_kernel_from_fd(int fd, struct mmk_manager **out);

/**
 * mmk_heap_create - create a heap manager
 * @cfg: the pool; payload_size, capacity, payload_type, memory_class,
 *       memory_device and flags are used, mode and name ignored
 * @out: the new manager, on success; NULL on failure
 *
 * Every slot, and the manager itself, come from one allocation made here;
 * no other function of a heap manager allocates.
 *
 * Errors:
 *   MMK_E_INVALID  @cfg or @out NULL; payload size or capacity 0 or over
 *                  MMK_PAYLOAD_MAX or MMK_CAPACITY_MAX; unknown flags;
 *                  memory class unknown, or memory_device set without
 *                  MMK_MEM_DEVICE or over 65535
 *   MMK_E_SYSTEM   errno: ENOMEM
 *
 * Thread-safe (the new manager is single-threaded).
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_heap_create(const struct mmk_config *cfg, struct mmk_manager **out);

/* Storage of a static manager: declare it with MMK_STATIC_STORAGE(). */
struct mmk_slot_state {
	uint32_t priv[4];
};

struct mmk_static_storage {
	union {
		unsigned char bytes[256];
		uint64_t u64;
		void *ptr;
	} manager;
	uint32_t capacity;
	uint32_t payload_size;
	size_t slot_size;
	struct mmk_slot_state *slots;
	unsigned char *arena;
};

/* Distance between two slots for a payload size (header + payload,
 * rounded up to MMK_PAYLOAD_ALIGN). */
#define MMK_SLOT_SIZE(payload_size) \
	((((size_t)(payload_size) + sizeof(struct mmk_header) + MMK_PAYLOAD_ALIGN - 1) / \
	  MMK_PAYLOAD_ALIGN) * MMK_PAYLOAD_ALIGN)

/**
 * MMK_STATIC_STORAGE - declare the storage of a static manager
 * @name:         the variable to declare
 * @capacity:     number of slots (a constant expression > 0)
 * @payload_size: largest payload (a constant expression > 0)
 *
 * Declares and initialises a variable holding the manager, the slots'
 * state and every slot, for mmk_static_create(MMK_STATIC(name), ...).
 * Prefix it with "static" for static storage duration:
 *
 *   static MMK_STATIC_STORAGE(frames, 16, sizeof(struct frame));
 *   ...
 *   err = mmk_static_create(MMK_STATIC(frames), &cfg, &m);
 */
#define MMK_STATIC_STORAGE(name, capacity_, payload_size_)				\
	struct {									\
		MMK_STATIC_ASSERT((capacity_) > 0 &&					\
				  (uint64_t)(capacity_) <= MMK_CAPACITY_MAX,		\
				  "MMK_STATIC_STORAGE: bad capacity");			\
		MMK_STATIC_ASSERT((payload_size_) > 0 &&				\
				  (uint64_t)(payload_size_) <= MMK_PAYLOAD_MAX,	\
				  "MMK_STATIC_STORAGE: bad payload size");		\
		struct mmk_static_storage storage;					\
		struct mmk_slot_state slots[(capacity_)];				\
		_Alignas(MMK_PAYLOAD_ALIGN) unsigned char				\
			arena[(size_t)(capacity_) * MMK_SLOT_SIZE(payload_size_)];	\
	} name = { .storage = {								\
		.capacity = (capacity_),						\
		.payload_size = (payload_size_),					\
		.slot_size = MMK_SLOT_SIZE(payload_size_),				\
		.slots = name.slots,							\
		.arena = name.arena,							\
	} }

/* The struct mmk_static_storage * of a variable declared by MMK_STATIC_STORAGE(). */
#define MMK_STATIC(name)	(&(name).storage)

/**
 * mmk_static_create - create a static manager on caller-provided storage
 * @storage: storage declared with MMK_STATIC_STORAGE(), not in use by an
 *           open manager
 * @cfg:     the pool, or NULL for the storage's capacity and payload size,
 *           payload type 0 and MMK_MEM_HOST.  payload_size and capacity
 *           must fit in the storage; mode and name are ignored.
 * @out:     the new manager, which lives inside @storage; NULL on failure
 *
 * Never allocates, here or in any other function of a static manager.
 * The manager uses the storage until mmk_close(); after that the storage
 * can be given to mmk_static_create() again.
 *
 * Errors:
 *   MMK_E_INVALID  @storage or @out NULL; storage not initialised by
 *                  MMK_STATIC_STORAGE() or in use by an open manager;
 *                  payload size or capacity 0 or larger than the storage;
 *                  any flag; memory class as for mmk_heap_create()
 *
 * Not thread-safe on one storage.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_static_create(struct mmk_static_storage *storage, const struct mmk_config *cfg,
		  struct mmk_manager **out);

/**
 * mmk_close - destroy a manager
 * @m: the manager, or NULL (nothing happens)
 *
 * Kernel: unmaps the pool and closes the session's descriptor.  When the
 * session has no other reference (a forked child, a descriptor passed to
 * another process, a duplicate), the kernel releases its guards; write
 * guards released that way poison their messages.  The pool itself lives
 * on while another session or mapping refers to it.
 * Heap: frees the allocation.  Static: the storage is free to reuse.
 * Either way every guard and message of the manager is gone, and every
 * pointer obtained through it is invalid.
 *
 * Must not run concurrently with any other call on @m.
 */
MMK_API void mmk_close(struct mmk_manager *m);

/**
 * mmk_backend - which backend a manager uses
 * @m: the manager
 *
 * Returns MMK_BACKEND_KERNEL, MMK_BACKEND_HEAP or MMK_BACKEND_STATIC.
 * Thread-safe.
 */
MMK_API enum mmk_backend mmk_backend(const struct mmk_manager *m);

/**
 * mmk_fd - the session's file descriptor of a kernel manager
 * @m: the manager
 *
 * Returns the descriptor (owned by the manager: do not close it), to pass
 * to another process with SCM_RIGHTS or to poll, or -1 for a heap or
 * static manager.  Thread-safe.
 */
MMK_API int mmk_fd(const struct mmk_manager *m);

/**
 * mmk_capacity - number of slots
 * @m: the manager
 *
 * Constant for the life of the manager; no system call.  Thread-safe.
 */
MMK_API size_t mmk_capacity(const struct mmk_manager *m);

/**
 * mmk_available - number of free slots now
 * @m: the manager
 *
 * Kernel: one ioctl; with other sessions at work the value may be out of
 * date on return.  Returns 0 with errno set if that ioctl fails, which
 * does not happen on a manager made by a constructor.  Thread-safe.
 */
MMK_API size_t mmk_available(const struct mmk_manager *m);

/**
 * mmk_memory_class - the pool's memory class
 * @m:      the manager
 * @device: if not NULL, set to the device index (0 unless MMK_MEM_DEVICE)
 *
 * Returns the class the pool was created with.  Thread-safe.
 */
MMK_API enum mmk_memory_class mmk_memory_class(const struct mmk_manager *m,
					       unsigned int *device);

/**
 * mmk_payload_max - largest payload of a message, in bytes
 * @m: the manager
 *
 * Thread-safe.
 */
MMK_API size_t mmk_payload_max(const struct mmk_manager *m);

/**
 * mmk_payload_type - the pool's payload type id
 * @m: the manager
 *
 * Thread-safe.
 */
MMK_API uint64_t mmk_payload_type(const struct mmk_manager *m);

/* ---- store and free ---------------------------------------------------------- */

/**
 * mmk_store - copy a message into a free slot
 * @m:            the manager
 * @header:       the header, or NULL for an all-zero one; payload_size,
 *                memory_class and memory_device are ignored and set by mmk
 * @payload:      @payload_size bytes (may be NULL if @payload_size is 0)
 * @payload_size: bytes of payload, up to mmk_payload_max()
 * @token:        set to the new message's token on success, and to
 *                MMK_TOKEN_INVALID on failure
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID        @m or @token NULL, or @payload NULL with a
 *                        non-zero @payload_size
 *   MMK_E_TOO_LARGE      @payload_size > mmk_payload_max()
 *   MMK_E_INVALID        bad header: unknown flags, qos over
 *                        MMK_QOS_LATENCY_CRITICAL, deadline_ns without
 *                        MMK_MSG_HAS_DEADLINE, non-zero reserved fields
 *   MMK_E_NO_FREE_SLOTS  the pool is full
 *   MMK_E_SYSTEM         kernel: errno, e.g. EFAULT
 *
 * Thread-safety: see "Threads".
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_store(struct mmk_manager *m, const struct mmk_header *header, const void *payload,
	  size_t payload_size, uint64_t *token);

/**
 * mmk_free - free a message and its slot
 * @m:     the manager
 * @token: the message
 *
 * A poisoned message can be freed: that is how its slot is recovered.
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID        @m NULL
 *   MMK_E_BAD_TOKEN      see "Tokens"
 *   MMK_E_NOT_ALLOCATED  already freed
 *   MMK_E_BORROW_ACTIVE  a guard is held on the message (by any session)
 *   MMK_E_QUEUE_OWNED    a queue holds the message (see "queues": a pushed
 *                        message is freed by mmk itself)
 *
 * Thread-safety: see "Threads".
 */
MMK_API enum mmk_error mmk_free(struct mmk_manager *m, uint64_t token);

/* ---- guards ------------------------------------------------------------------ */

/**
 * struct mmk_read_guard - a shared borrow of a whole message
 * @msg:   the message, read-only, valid until the guard is released;
 *         NULL when the guard is not held
 * @token: the message's token
 * @owner: the manager, or NULL when the guard is not held
 *
 * Owned by the caller (on the stack, typically).  Read the fields, never
 * write them.  This holds for every guard struct: a copy names the same
 * guard, and only one of them may be released (releasing the other too
 * gives MMK_E_INVALID, or drops another guard of the same kind that the
 * manager holds on the same message, since guards are counted).  Guards belong to the session, so with the kernel backend
 * a process sharing it (a forked child) may hand its guard struct to
 * another, which may read through it and release it.
 */
struct mmk_read_guard {
	const struct mmk_message *msg;
	uint64_t token;
	struct mmk_manager *owner;
};

/**
 * struct mmk_header_guard - a shared borrow of a message's header
 * @msg:   the message, read-only, valid until the guard is released: only
 *         msg->header may be read; NULL when not held
 * @token: the message's token
 * @owner: the manager, or NULL when the guard is not held
 */
struct mmk_header_guard {
	const struct mmk_message *msg;
	uint64_t token;
	struct mmk_manager *owner;
};

/**
 * struct mmk_write_guard - an exclusive borrow of a message
 * @msg:    the message, writable, valid until the guard is released; NULL
 *          when not held.  Change the payload and the header in place; to
 *          change the payload size, set msg->header.payload_size (up to
 *          mmk_payload_max(); the bytes up to it are the payload)
 * @token:  the message's token
 * @owner:  the manager, or NULL when the guard is not held
 * @window: private to the library (non-NULL when the kernel backend mapped
 *          a writable window for this guard)
 */
struct mmk_write_guard {
	struct mmk_message *msg;
	uint64_t token;
	struct mmk_manager *owner;
	void *window;
};

/**
 * mmk_read - take a read guard on a message
 * @m:     the manager
 * @token: the message
 * @g:     the guard to fill; its previous contents are ignored
 *
 * On success g->msg points to the message until mmk_read_release(g).  The
 * kernel backend makes one ioctl and points into the pool's read-only
 * mapping: nothing is copied.  Writing through the pointer is undefined
 * (kernel: SIGSEGV).  On failure @g is marked not held.
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID           @m or @g NULL
 *   MMK_E_BAD_TOKEN         see "Tokens"
 *   MMK_E_NOT_ALLOCATED     the message was freed
 *   MMK_E_POISONED          its writer died holding it
 *   MMK_E_ALREADY_BORROWED  a write guard is held on it (by any session)
 *   MMK_E_LIMIT             MMK_READERS_MAX on the message, or
 *                           MMK_GUARDS_MAX held by this manager
 *
 * Thread-safety: see "Threads".
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_read(struct mmk_manager *m, uint64_t token, struct mmk_read_guard *g);

/**
 * mmk_read_release - release a read guard
 * @g: a guard filled by mmk_read() or mmk_read_wait()
 *
 * Marks @g not held.  Releasing a guard marked not held (by a release, a
 * failed acquisition, a scope macro or zero-initialisation) does nothing
 * and returns MMK_E_INVALID; an uninitialised guard must not be released.
 *
 * Errors:
 *   MMK_E_INVALID  @g NULL, or marked not held, or a copy of a guard that
 *                  was released already while the manager holds no other
 *                  shared guard on the message (guards are counted per
 *                  message, so such a copy releases one of the others)
 *   MMK_E_SYSTEM   kernel: errno
 */
MMK_API enum mmk_error mmk_read_release(struct mmk_read_guard *g);

/**
 * mmk_peek_header - take a header guard on a message
 * @m:     the manager
 * @token: the message
 * @g:     the guard to fill
 *
 * Like mmk_read(), but only g->msg->header may be read: what an edge or a
 * scheduler needs to decide on size, deadline and QoS.  Header guards are
 * shared, counted with read guards, and block write guards the same way.
 * Errors as for mmk_read().
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_peek_header(struct mmk_manager *m, uint64_t token, struct mmk_header_guard *g);

/**
 * mmk_header_release - release a header guard
 * @g: a guard filled by mmk_peek_header() or mmk_peek_header_wait()
 *
 * As mmk_read_release().
 */
MMK_API enum mmk_error mmk_header_release(struct mmk_header_guard *g);

/**
 * mmk_read_mut - take the write guard on a message
 * @m:     the manager
 * @token: the message
 * @g:     the guard to fill
 *
 * On success g->msg points to a writable copy of the message, or to the
 * message itself; either way what is there at mmk_write_release() becomes
 * the message.  Where it points:
 *   heap, static: the slot itself.
 *   kernel, pool created with MMK_POOL_PAGE_ALIGNED: a writable window on
 *           the slot, mapped on first use and kept until mmk_close; the
 *           kernel lets it work only while the guard is held.
 *   kernel, other pools: a buffer of the manager's for that slot (kept
 *           until mmk_close, so at most one slot's worth of memory per
 *           slot), filled with a copy of the message.
 * Other sessions see the new message once mmk_write_release() returns.
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID           @m or @g NULL
 *   MMK_E_BAD_TOKEN         see "Tokens"
 *   MMK_E_NOT_ALLOCATED     the message was freed
 *   MMK_E_POISONED          its writer died holding it
 *   MMK_E_ALREADY_BORROWED  any guard is held on it (by any session)
 *   MMK_E_LIMIT             MMK_GUARDS_MAX held by this manager
 *   MMK_E_SYSTEM            kernel: errno, e.g. ENOMEM for the buffer
 *                           (the guard is not taken then)
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_read_mut(struct mmk_manager *m, uint64_t token, struct mmk_write_guard *g);

/**
 * mmk_write_release - publish the message and release the write guard
 * @g: a guard filled by mmk_read_mut(), mmk_read_mut_wait() or mmk_loan()
 *
 * Checks the header found in g->msg like mmk_store() checks a header, sets
 * payload_size (from the header), memory_class and memory_device, makes the
 * message visible to later guards, and marks @g not held.
 *
 * If the check fails, nothing is published and the guard is still held:
 * fix the message and call mmk_write_release() again.  A write guard that
 * is never released successfully stays held until mmk_close() (kernel: the
 * message is then poisoned).
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID    @g NULL or not held
 *   MMK_E_TOO_LARGE  msg->header.payload_size > mmk_payload_max()
 *   MMK_E_INVALID    bad header (as for mmk_store)
 *   MMK_E_SYSTEM     kernel: errno
 */
MMK_API enum mmk_error mmk_write_release(struct mmk_write_guard *g);

/**
 * mmk_loan - take a free slot under the write guard, as an empty message
 * @m: the manager
 * @g: the guard to fill; its previous contents are ignored
 *
 * The zero-copy way to produce a message: write it where it will live,
 * then publish it.  On success g->token is the message's token and g->msg
 * points to writable slot memory holding an empty message (zeroed header):
 *   heap, static: the slot itself.
 *   kernel, pool created with MMK_POOL_PAGE_ALIGNED: the slot, through a
 *           writable window that the manager maps on first use and keeps
 *           until mmk_close (one per slot; no system call but the loan's
 *           ioctl and one page fault per guard).
 *   kernel, other pools: the manager's write-back buffer for that slot,
 *           copied in at publication.
 * Write the header and the payload, set msg->header.payload_size, then
 * publish with mmk_write_release(g) (the same checks as for a guard from
 * mmk_read_mut) or give the slot back with mmk_write_cancel(g).  Until
 * then the message exists for no one else: read, peek and mmk_read_mut
 * on the token give MMK_E_ALREADY_BORROWED and mmk_free
 * MMK_E_BORROW_ACTIVE.  A loan held at mmk_close (kernel: when the
 * session goes away, even by a crash) is cancelled, not poisoned, since
 * nothing was ever published.  A loan counts against MMK_GUARDS_MAX.
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID        @m or @g NULL
 *   MMK_E_NO_FREE_SLOTS  the pool is full
 *   MMK_E_LIMIT          MMK_GUARDS_MAX held by this manager
 *   MMK_E_SYSTEM         kernel: errno, e.g. ENOMEM for the buffer (the
 *                        loan is cancelled then)
 *
 * Thread-safety: see "Threads".
 */
MMK_API MMK_NODISCARD enum mmk_error mmk_loan(struct mmk_manager *m, struct mmk_write_guard *g);

/**
 * mmk_write_cancel - drop a write guard without publishing
 * @g: a guard filled by mmk_loan(), mmk_read_mut() or mmk_read_mut_wait()
 *
 * A loan: the slot goes back to the free list and its token becomes stale
 * (MMK_E_BAD_TOKEN).  A guard from mmk_read_mut: the message stays as it
 * is.  Where g->msg is a copy (kernel pools without
 * MMK_POOL_PAGE_ALIGNED), the copy is dropped and the message is as it
 * was before the guard.  Where g->msg is the message itself (heap,
 * static, page-aligned kernel pools), what was written in place cannot be
 * taken back: the header is checked as by mmk_write_release(), with the
 * same errors, and on error the guard is still held.  Marks @g not held.
 *
 * Errors:
 *   MMK_E_INVALID    @g NULL or not held
 *   MMK_E_TOO_LARGE, MMK_E_INVALID  mmk_read_mut guard on an in-place
 *                    message whose header is wrong (as mmk_write_release)
 *   MMK_E_SYSTEM     kernel: errno
 */
MMK_API enum mmk_error mmk_write_cancel(struct mmk_write_guard *g);

/**
 * mmk_read_wait, mmk_peek_header_wait, mmk_read_mut_wait - take a guard,
 * waiting for an incompatible guard to go away
 * @m, @token, @g: as for mmk_read(), mmk_peek_header(), mmk_read_mut()
 * @timeout_ns:    longest wait in nanoseconds; 0 waits without limit
 *
 * Where the non-waiting function would return MMK_E_ALREADY_BORROWED,
 * these wait until the guard can be taken, the timeout passes
 * (MMK_E_ALREADY_BORROWED), or a signal arrives (MMK_E_SYSTEM, errno
 * EINTR).  Every other error comes back at once.  The kernel backend waits
 * interruptibly in the kernel.  A heap or static manager is single-threaded,
 * so nobody could release the guard in the meantime: they return
 * MMK_E_ALREADY_BORROWED at once.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_read_wait(struct mmk_manager *m, uint64_t token, uint64_t timeout_ns,
	      struct mmk_read_guard *g);
MMK_API MMK_NODISCARD enum mmk_error
mmk_peek_header_wait(struct mmk_manager *m, uint64_t token, uint64_t timeout_ns,
		     struct mmk_header_guard *g);
MMK_API MMK_NODISCARD enum mmk_error
mmk_read_mut_wait(struct mmk_manager *m, uint64_t token, uint64_t timeout_ns,
		  struct mmk_write_guard *g);

/* ---- queues ------------------------------------------------------------------- */

/*
 * A queue is a bounded FIFO of tokens of one manager, with an admission
 * policy: limen's Edge.  Producers push tokens, consumers pop them.
 *
 * Push gives.  A pushed message belongs to mmk: it lives while a queue
 * holds it or a guard is held on it, and mmk frees it when the last one
 * lets go (kernel: the pool's "frees" counter counts it; every backend:
 * the slot is free again and the token gives MMK_E_NOT_ALLOCATED).
 * Nobody frees it by hand: mmk_free() gives MMK_E_QUEUE_OWNED while a
 * queue holds it (after MMK_E_BORROW_ACTIVE for guards).  A queue holds a
 * token at most once (a second push to it: MMK_E_QUEUE_OWNED); the same
 * token may be in several queues (fan-out).
 *
 * Pop reads.  Popping turns the queue's hold into a read guard of the
 * popping manager (an ordinary struct mmk_read_guard: the message is read
 * in place, released with mmk_read_release(), which frees it if nothing
 * else holds it).  A consumer forwards a message with no copy by pushing
 * it to the next queue before releasing its guard.  mmk_queue_try_pop_write()
 * takes a write guard instead, only when the queue's hold is the message's
 * only one.
 *
 * Admission, decided on the occupancy before the push (a soft cap of 0
 * means the hard cap):
 *   below both soft caps:  admitted, whatever the policy;
 *   between:   REJECT       MMK_E_QUEUE_FULL
 *              DROP_NEWEST  dropped (a success; outcome.dropped)
 *              DROP_OLDEST  the oldest is evicted, then admitted
 *              BLOCK        waits for room (mmk_queue_push_wait), else
 *                           MMK_E_QUEUE_FULL
 *              QOS          admitted if MMK_QOS_LATENCY_CRITICAL, else
 *                           dropped
 *   at or over a hard cap: a message whose payload alone exceeds the byte
 *              cap is MMK_E_QUEUE_FULL under every policy; REJECT and QOS
 *              give MMK_E_QUEUE_FULL; DROP_NEWEST drops; DROP_OLDEST
 *              evicts the oldest until below both hard caps, then admits;
 *              BLOCK as above.
 * An error leaves the message with the caller: nothing was given.  A drop
 * gives the message, which is freed at once unless something else holds
 * it; an evicted message likewise.  A QOS queue also drops at pop, instead
 * of delivering it, a message whose header has MMK_MSG_HAS_DEADLINE and a
 * deadline_ns (CLOCK_MONOTONIC) in the past.  Every drop is counted
 * (struct mmk_queue_stats).
 *
 * Backends.  Kernel: a queue is a descriptor of its own (mmk_queue_fd(),
 * for poll and epoll: EPOLLIN while it holds a message, EPOLLOUT while it
 * is below its soft caps), shared by every session of the pool that opens
 * it by name, and every call is one ioctl.  Heap and static: the queue is
 * in the manager's memory and seen by that manager only; they are
 * single-threaded, so nothing can change while a call would wait: Block
 * pushes and waiting pops return at once (MMK_E_QUEUE_FULL,
 * MMK_E_QUEUE_EMPTY).  Results and errors are otherwise the same in every
 * backend.  A static manager's queues live in storage declared with
 * MMK_QUEUE_STORAGE() (struct mmk_queue_attr.storage): nothing allocates.
 *
 * Threads: as for the manager ("Threads" above).  A queue handle belongs to
 * its manager: mmk_close() closes the handles still open.
 */

/* A handle on a queue: opaque.  Made by mmk_queue_create() or
 * mmk_queue_open(), destroyed by mmk_queue_close(). */
struct mmk_queue;

/* enum mmk_queue_policy - what a queue does with a push at its soft cap. */
enum mmk_queue_policy {
	MMK_POLICY_REJECT	= 0,	/* refuse: MMK_E_QUEUE_FULL */
	MMK_POLICY_DROP_NEWEST	= 1,	/* drop the incoming message */
	MMK_POLICY_DROP_OLDEST	= 2,	/* evict the oldest, then admit */
	MMK_POLICY_BLOCK	= 3,	/* wait for room (mmk_queue_push_wait) */
	MMK_POLICY_QOS		= 4,	/* latency-critical only; expired dropped at pop */
};

/* enum mmk_watermark - a queue's occupancy against its caps. */
enum mmk_watermark {
	MMK_WATERMARK_BELOW_SOFT = 0,	/* below both soft caps: every push admitted */
	MMK_WATERMARK_BETWEEN	 = 1,	/* at or over a soft cap, below both hard caps */
	MMK_WATERMARK_AT_HARD	 = 2,	/* at or over a hard cap */
};

/* Most items of one queue (the kernel module's default max_queue_items). */
#define MMK_QUEUE_ITEMS_MAX	4096
/* Most queues of one manager (kernel: per pool, max_queues_per_pool). */
#define MMK_QUEUES_MAX		64
/* Heap and static: most handles open on one queue at once. */
#define MMK_QUEUE_HANDLES_MAX	4

/* Storage of a static manager's queue: declare it with MMK_QUEUE_STORAGE(). */
struct mmk_queue_item {
	uint64_t priv[2];
};

struct mmk_queue_storage {
	union {
		unsigned char bytes[640];
		uint64_t u64;
		void *ptr;
	} queue;
	uint32_t cap_items;
	struct mmk_queue_item *items;
};

/**
 * MMK_QUEUE_STORAGE - declare the storage of one queue of a static manager
 * @name:       the variable to declare
 * @cap_items_: most items (a constant expression, 1 to MMK_QUEUE_ITEMS_MAX)
 *
 * Declares and initialises a variable holding a queue and its ring, for
 * struct mmk_queue_attr.storage = MMK_QUEUE_STATIC(name).  Prefix it with
 * "static" for static storage duration:
 *
 *   static MMK_QUEUE_STORAGE(frames_q, 32);
 *   struct mmk_queue_attr a = { .cap_items = 32,
 *                               .storage = MMK_QUEUE_STATIC(frames_q) };
 */
#define MMK_QUEUE_STORAGE(name, cap_items_)						\
	struct {									\
		MMK_STATIC_ASSERT((cap_items_) > 0 &&					\
				  (cap_items_) <= MMK_QUEUE_ITEMS_MAX,			\
				  "MMK_QUEUE_STORAGE: bad capacity");			\
		struct mmk_queue_storage storage;					\
		struct mmk_queue_item items[(cap_items_)];				\
	} name = { .storage = { .cap_items = (cap_items_), .items = name.items } }

/* The struct mmk_queue_storage * of a variable declared by MMK_QUEUE_STORAGE(). */
#define MMK_QUEUE_STATIC(name)	(&(name).storage)

/**
 * struct mmk_queue_attr - what a new queue looks like
 * @name:       1 to 63 bytes, unique among the manager's (kernel: the
 *              pool's) queues, for mmk_queue_open(); NULL or "" for an
 *              anonymous queue (kernel: shared only by passing its
 *              descriptor)
 * @policy:     enum mmk_queue_policy
 * @cap_items:  hard cap in messages, 1 to MMK_QUEUE_ITEMS_MAX (kernel: to
 *              the module's max_queue_items)
 * @soft_items: soft cap in messages, 0 (the hard cap) to @cap_items
 * @cap_bytes:  hard cap in payload bytes, 0 for none
 * @soft_bytes: soft cap in payload bytes, 0 (the hard cap) to @cap_bytes;
 *              must be 0 when @cap_bytes is 0
 * @storage:    static managers: storage declared with MMK_QUEUE_STORAGE(),
 *              not in use, with at least @cap_items items.  Ignored by the
 *              heap and kernel backends (may be set, so that one attr
 *              serves every backend).
 *
 * Zero-initialise it and set what you need.
 */
struct mmk_queue_attr {
	const char *name;
	enum mmk_queue_policy policy;
	uint32_t cap_items;
	uint32_t soft_items;
	uint64_t cap_bytes;
	uint64_t soft_bytes;
	struct mmk_queue_storage *storage;
};

/**
 * mmk_queue_create - make a new queue
 * @m:    the manager whose messages it will hold
 * @attr: caps, policy, name; see struct mmk_queue_attr
 * @out:  the new handle; NULL on failure
 *
 * Kernel: one ioctl; the queue is a new descriptor (close-on-exec),
 * charged to the caller's memory cgroup; it lives while any descriptor
 * refers to it.  Heap: one allocation.  Static: none.
 *
 * Errors:
 *   MMK_E_INVALID  @m, @attr or @out NULL; policy unknown; @cap_items 0 or
 *                  over the limit; soft caps over their hard caps; soft
 *                  bytes without a byte cap; name of 64 bytes or more;
 *                  static: no or bad storage, storage in use or too small
 *   MMK_E_LIMIT    MMK_QUEUES_MAX queues (kernel: max_queues_per_pool)
 *   MMK_E_SYSTEM   errno: EEXIST (name taken), ENOMEM, EMFILE, ...
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_create(struct mmk_manager *m, const struct mmk_queue_attr *attr,
		 struct mmk_queue **out);

/**
 * mmk_queue_open - a new handle on a named queue
 * @m:    the manager (kernel: any session of the queue's pool)
 * @name: the queue's name
 * @out:  the new handle; NULL on failure
 *
 * The queue lives until its last handle (kernel: descriptor) is closed.
 *
 * Errors:
 *   MMK_E_INVALID  @m, @name or @out NULL, @name empty or too long
 *   MMK_E_LIMIT    heap, static: MMK_QUEUE_HANDLES_MAX handles open on it
 *   MMK_E_SYSTEM   errno: ENOENT (no such queue), ENOMEM, EMFILE, ...
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_open(struct mmk_manager *m, const char *name, struct mmk_queue **out);

/**
 * mmk_queue_close - close a queue handle
 * @q: the handle, or NULL (nothing happens)
 *
 * When the last handle (kernel: descriptor, in any process) of a queue is
 * closed, the queue goes away and every message it held is released:
 * freed if nothing else holds it.  @q is invalid afterwards.
 */
MMK_API void mmk_queue_close(struct mmk_queue *q);

/**
 * mmk_queue_fd - the queue's descriptor, for poll and epoll
 * @q: the handle
 *
 * Kernel: the descriptor (owned by the handle: do not close it); EPOLLIN
 * while the queue holds a message, EPOLLOUT while it is below its soft
 * caps.  Heap and static: -1.  Thread-safe.
 */
MMK_API int mmk_queue_fd(const struct mmk_queue *q);

/**
 * struct mmk_push_outcome - what a successful push did
 * @dropped: bit i set when the i-th queue dropped the message instead of
 *           holding it (a single push: bit 0)
 * @evicted: messages evicted (DROP_OLDEST) to admit it, over all queues
 */
struct mmk_push_outcome {
	uint32_t dropped;
	uint32_t evicted;
};

/**
 * mmk_queue_try_push - give a message to a queue
 * @q:     the queue
 * @token: the message, of @q's manager
 * @out:   the outcome (may be NULL); zeroed on failure
 *
 * On success the message is given (see "Push gives"), even if dropped.
 * Read and header guards on the message do not prevent a push (that is
 * how a consumer forwards what it popped).  Never waits.
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID           @q NULL
 *   MMK_E_BAD_TOKEN         see "Tokens"
 *   MMK_E_NOT_ALLOCATED     the message was freed
 *   MMK_E_POISONED          its writer died holding it
 *   MMK_E_ALREADY_BORROWED  a write guard or an unpublished loan is held on it
 *   MMK_E_QUEUE_OWNED       @q holds it already
 *   MMK_E_QUEUE_FULL        refused by the policy (nothing was given)
 *   MMK_E_SYSTEM            kernel: errno
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_try_push(struct mmk_queue *q, uint64_t token, struct mmk_push_outcome *out);

/**
 * mmk_queue_push_wait - mmk_queue_try_push(), waiting for room (BLOCK)
 * @q, @token, @out: as for mmk_queue_try_push()
 * @timeout_ns:      longest wait; 0 waits without limit
 *
 * On a BLOCK queue at its soft cap, the kernel backend waits
 * interruptibly until a push is admitted (MMK_E_QUEUE_FULL at the
 * timeout, MMK_E_SYSTEM with errno EINTR on a signal).  Other policies
 * never wait.  Heap and static: as mmk_queue_try_push().
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_push_wait(struct mmk_queue *q, uint64_t token, uint64_t timeout_ns,
		    struct mmk_push_outcome *out);

/**
 * mmk_queue_try_push_many - give one message to several queues (fan-out)
 * @qs:    @n distinct queues of one manager
 * @n:     1 to MMK_PUSH_MAX_QUEUES
 * @token: the message
 * @out:   the outcome (may be NULL); bit i of dropped is qs[i]
 *
 * All or nothing: if any queue refuses (MMK_E_QUEUE_FULL), no queue takes
 * the message and it stays with the caller; every refusing queue counts a
 * rejection.  Each queue that admits it holds it;
 * the message is freed when all of them and every guard let go.  Errors
 * as mmk_queue_try_push(), and MMK_E_INVALID for @qs NULL, @n out of
 * range, a NULL, repeated or foreign queue.  MMK_E_QUEUE_OWNED if any of
 * them holds the token already.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_try_push_many(struct mmk_queue *const *qs, size_t n, uint64_t token,
			struct mmk_push_outcome *out);

/**
 * mmk_queue_store_push - mmk_store() and mmk_queue_try_push() as one call
 * @q:            the queue
 * @header, @payload, @payload_size: as for mmk_store()
 * @token:        the new message's token; MMK_TOKEN_INVALID on failure
 *                (and when nothing was stored).  May be NULL.
 * @out:          the outcome (may be NULL)
 *
 * If the queue refuses, nothing is stored (no slot, no generation used).
 * A dropped message is freed at once: *@token then gives
 * MMK_E_NOT_ALLOCATED.
 *
 * Errors, in the order they are checked: MMK_E_INVALID (argument),
 * MMK_E_TOO_LARGE, MMK_E_INVALID (header), MMK_E_NO_FREE_SLOTS,
 * MMK_E_QUEUE_FULL, MMK_E_SYSTEM (kernel).
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_store_push(struct mmk_queue *q, const struct mmk_header *header,
		     const void *payload, size_t payload_size, uint64_t *token,
		     struct mmk_push_outcome *out);

/**
 * mmk_queue_commit_push - publish a write guard or loan straight into a queue
 * @q:   the queue
 * @g:   a write guard of @q's manager (mmk_loan, mmk_read_mut,
 *       mmk_queue_try_pop_write)
 * @out: the outcome (may be NULL)
 *
 * Checks the message like mmk_write_release(), publishes it and gives it
 * to @q in one step; on success @g is marked not held.  If the check
 * fails, or the queue refuses, the guard is still held; after a refusal
 * the message checked and committed so far is in place (a loan stays
 * unpublished).
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID     @q or @g NULL, @g not held or of another manager
 *   MMK_E_TOO_LARGE, MMK_E_INVALID  bad message (as mmk_write_release)
 *   MMK_E_QUEUE_FULL  refused by the policy
 *   MMK_E_SYSTEM      kernel: errno
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_commit_push(struct mmk_queue *q, struct mmk_write_guard *g,
		      struct mmk_push_outcome *out);

/**
 * mmk_queue_try_pop - take the oldest message as a read guard
 * @q: the queue
 * @g: the guard to fill, as by mmk_read(); marked not held on failure
 *
 * Kernel: one ioctl, and g->msg points into the pool's read-only mapping:
 * nothing is copied.  Release the guard with mmk_read_release(), which
 * frees the message if nothing else holds it.  A QOS queue first drops
 * the expired messages at its head.
 *
 * Errors, in the order they are checked:
 *   MMK_E_INVALID      @q or @g NULL
 *   MMK_E_QUEUE_EMPTY  nothing to pop
 *   MMK_E_LIMIT        MMK_GUARDS_MAX held by the manager
 *   MMK_E_SYSTEM       kernel: errno
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_try_pop(struct mmk_queue *q, struct mmk_read_guard *g);

/**
 * mmk_queue_pop_wait - mmk_queue_try_pop(), waiting for a message
 * @q, @g:       as for mmk_queue_try_pop()
 * @timeout_ns:  longest wait; 0 waits without limit
 *
 * Kernel: waits interruptibly (MMK_E_QUEUE_EMPTY at the timeout,
 * MMK_E_SYSTEM with errno EINTR on a signal).  Heap and static: as
 * mmk_queue_try_pop(), at once.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_pop_wait(struct mmk_queue *q, uint64_t timeout_ns, struct mmk_read_guard *g);

/**
 * mmk_queue_try_pop_write - take the oldest message as the write guard
 * @q: the queue
 * @g: the guard to fill, as by mmk_read_mut(); marked not held on failure
 *
 * Succeeds only when the queue's hold is the message's only one (no other
 * queue, no guard); otherwise the message stays at the head.  Release with
 * mmk_write_release() (the message, changed, is then freed unless pushed
 * again: use mmk_queue_commit_push() to pass it on) or mmk_write_cancel().
 *
 * Errors, in the order they are checked: MMK_E_INVALID, MMK_E_QUEUE_EMPTY,
 * MMK_E_ALREADY_BORROWED (something else holds the head), MMK_E_LIMIT,
 * MMK_E_SYSTEM.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_try_pop_write(struct mmk_queue *q, struct mmk_write_guard *g);

/**
 * mmk_queue_try_pop_batch - take up to @max oldest messages as read guards
 * @q:     the queue
 * @gs:    @max guards to fill; gs[0 .. *count - 1] are held on success, the
 *         others marked not held
 * @max:   at least 1 (kernel: at most 256 are taken per call)
 * @count: out: guards filled
 *
 * Kernel: one ioctl.  Stops early when the queue is empty or the manager's
 * guard limit is reached.  Errors as mmk_queue_try_pop(), for the first
 * message only; MMK_E_INVALID if @gs or @count is NULL or @max is 0.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_try_pop_batch(struct mmk_queue *q, struct mmk_read_guard *gs, size_t max,
			size_t *count);

/**
 * struct mmk_queue_entry - a queued message, seen by a peek
 * @token:        the message (no guard is taken: take one to read it)
 * @msg:          where it is (kernel: in the read-only mapping); valid
 *                only while it is held by the queue or a guard
 * @payload_size: its payload size
 * @qos:          its QoS class
 * @flags:        MMK_MSG_HAS_DEADLINE if it has a deadline, else 0
 * @deadline_ns:  its deadline (CLOCK_MONOTONIC), 0 if none
 */
struct mmk_queue_entry {
	uint64_t token;
	const struct mmk_message *msg;
	uint32_t payload_size;
	uint8_t qos;
	uint32_t flags;
	uint64_t deadline_ns;
};

/**
 * mmk_queue_try_peek, mmk_queue_try_peek_at - look at a queued message
 * @q:     the queue
 * @index: 0 for the oldest message, n for the n-th after it
 * @e:     filled on success; zeroed (token MMK_TOKEN_INVALID) on failure
 *
 * Takes nothing and drops nothing.  Errors: MMK_E_INVALID (@q or @e NULL),
 * MMK_E_QUEUE_EMPTY (the queue holds @index messages or fewer),
 * MMK_E_SYSTEM (kernel).
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_try_peek(struct mmk_queue *q, struct mmk_queue_entry *e);
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_try_peek_at(struct mmk_queue *q, size_t index, struct mmk_queue_entry *e);

/**
 * struct mmk_occupancy - what a queue holds now
 * @items:     messages
 * @bytes:     their payload bytes (as pushed)
 * @watermark: enum mmk_watermark
 */
struct mmk_occupancy {
	uint32_t items;
	uint64_t bytes;
	enum mmk_watermark watermark;
};

/**
 * mmk_queue_occupancy - items, bytes and watermark state of a queue
 * @q: the queue
 * @o: filled on success
 *
 * Kernel: one ioctl; with other sessions at work the values may be out of
 * date on return.  Errors: MMK_E_INVALID (@q or @o NULL), MMK_E_SYSTEM.
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_occupancy(struct mmk_queue *q, struct mmk_occupancy *o);

/**
 * struct mmk_queue_stats - a queue's caps, occupancy and counters
 * @policy, @cap_items, @soft_items, @cap_bytes, @soft_bytes: as created,
 *              soft caps of 0 replaced by their hard caps
 * @occupancy:  as mmk_queue_occupancy()
 * @high_items: most messages held at once
 * @pushes:     messages admitted
 * @pops:       messages popped (delivered)
 * @rejected:   pushes refused with MMK_E_QUEUE_FULL
 * @drops:      messages dropped, per MMK_DROP_* reason
 * @name:       the name, empty for an anonymous queue
 */
struct mmk_queue_stats {
	enum mmk_queue_policy policy;
	uint32_t cap_items;
	uint32_t soft_items;
	uint64_t cap_bytes;
	uint64_t soft_bytes;
	struct mmk_occupancy occupancy;
	uint32_t high_items;
	uint64_t pushes;
	uint64_t pops;
	uint64_t rejected;
	uint64_t drops[MMK_DROP_REASONS];
	char name[MMK_NAME_MAX];
};

/**
 * mmk_queue_stats - a queue's caps, occupancy and counters
 * @q:  the queue
 * @st: filled on success
 *
 * Errors: MMK_E_INVALID (@q or @st NULL), MMK_E_SYSTEM (kernel).
 */
MMK_API MMK_NODISCARD enum mmk_error
mmk_queue_stats(struct mmk_queue *q, struct mmk_queue_stats *st);

/* ---- batches ------------------------------------------------------------------ */

/* What one entry of mmk_batch() does; the functions it stands for. */
enum mmk_batch_opcode {
	MMK_OP_STORE,		/* mmk_store */
	MMK_OP_READ,		/* mmk_read */
	MMK_OP_PEEK_HEADER,	/* mmk_peek_header */
	MMK_OP_READ_RELEASE,	/* mmk_read_release or mmk_header_release */
	MMK_OP_FREE,		/* mmk_free */
	MMK_OP_PUSH,		/* mmk_queue_try_push, or mmk_queue_push_wait */
	MMK_OP_STORE_PUSH,	/* mmk_queue_store_push */
	MMK_OP_COMMIT_PUSH,	/* mmk_queue_commit_push */
	MMK_OP_POP,		/* mmk_queue_try_pop, or mmk_queue_pop_wait */
	MMK_OP_POP_WRITE,	/* mmk_queue_try_pop_write */
	MMK_OP_LOAN,		/* mmk_loan */
	MMK_OP_WRITE_RELEASE,	/* mmk_write_release */
	MMK_OP_WRITE_CANCEL,	/* mmk_write_cancel */
};

/**
 * struct mmk_batch_op - one operation of mmk_batch()
 * @op:           what to do
 * @token:        the message; out for MMK_OP_STORE (MMK_TOKEN_INVALID if
 *                it fails)
 * @header:       MMK_OP_STORE: the header, or NULL for a zeroed one
 * @payload:      MMK_OP_STORE: the payload (NULL only if @payload_size is 0)
 * @payload_size: MMK_OP_STORE: payload bytes
 * @msg:          out: MMK_OP_READ, MMK_OP_PEEK_HEADER and MMK_OP_POP: the
 *                message, in place, as g->msg of the guard functions; else
 *                NULL
 * @result:       out: MMK_OK, or the error of the function the op stands for
 * @queue:        the queue of MMK_OP_PUSH, MMK_OP_STORE_PUSH,
 *                MMK_OP_COMMIT_PUSH, MMK_OP_POP and MMK_OP_POP_WRITE (of
 *                the batch's manager)
 * @guard:        MMK_OP_COMMIT_PUSH, MMK_OP_WRITE_RELEASE,
 *                MMK_OP_WRITE_CANCEL: the write guard published or dropped
 *                (marked not held on success); MMK_OP_POP_WRITE,
 *                MMK_OP_LOAN: the guard filled
 * @wait:         MMK_OP_PUSH, MMK_OP_STORE_PUSH, MMK_OP_COMMIT_PUSH: wait
 *                for room (BLOCK); MMK_OP_POP: wait for a message (both:
 *                kernel only; heap and static never wait)
 * @timeout_ns:   with @wait: longest wait, 0 for no limit
 * @outcome:      out: the push ops' outcome
 *
 * MMK_OP_PUSH takes @token; MMK_OP_STORE_PUSH sets it; MMK_OP_POP sets it
 * to the popped message's (MMK_TOKEN_INVALID if it fails).  A guard taken
 * by MMK_OP_READ, MMK_OP_PEEK_HEADER or MMK_OP_POP is an ordinary guard
 * of the manager: release it with MMK_OP_READ_RELEASE and the same token,
 * in this batch or a later one (there is no guard struct to release), or
 * with mmk_read_release on a guard struct filled from @token, @msg and the
 * manager, or with mmk_close.  A consumer's hop is one batch, and with the
 * kernel backend one system call: MMK_OP_READ_RELEASE of what it read,
 * MMK_OP_PUSH of what it made, MMK_OP_POP (waiting) of what comes next.
 */
struct mmk_batch_op {
	enum mmk_batch_opcode op;
	uint64_t token;
	const struct mmk_header *header;
	const void *payload;
	size_t payload_size;
	const struct mmk_message *msg;
	enum mmk_error result;
	struct mmk_queue *queue;
	struct mmk_write_guard *guard;
	bool wait;
	uint64_t timeout_ns;
	struct mmk_push_outcome outcome;
};

/**
 * mmk_batch - run several operations in one call
 * @m:    the manager
 * @ops:  @n operations, run in order
 * @n:    how many; 0 does nothing
 * @done: out (may be NULL): how many ops succeeded
 *
 * Each op is checked and run exactly as its function would be, with the
 * same errors.  Processing stops at the first op that fails: its @result
 * holds the error, *@done counts the ops before it, and the ops after it
 * are not touched.  The kernel backend runs up to 256 ops per ioctl
 * (MMK_IOC_BATCH, fewer if the module's max_batch_ops is lower), so a
 * batch costs one system call per 256 ops instead of one per op.
 *
 * Return: MMK_OK if every op succeeded, else the failing op's error;
 * MMK_E_INVALID (with *@done 0, nothing run) if @m is NULL, or @ops is
 * NULL and @n is not 0.  An unknown @op fails that op with MMK_E_INVALID.
 *
 * Thread-safety: see "Threads".
 */
MMK_API enum mmk_error mmk_batch(struct mmk_manager *m, struct mmk_batch_op *ops, size_t n,
				 size_t *done);

/* ---- scope macros -------------------------------------------------------------- */

/*
 * Declare a guard (not held) that is released when it goes out of scope,
 * if it is held then:
 *
 *   {
 *       MMK_SCOPED_READ(g);
 *
 *       if (mmk_read(m, token, &g) == MMK_OK)
 *           use(g.msg->payload, g.msg->header.payload_size);
 *   }   // released here
 *
 * A write guard whose release fails at the end of the scope stays held
 * (see mmk_write_release); check with an explicit release when that
 * matters.  MMK_SCOPED_MANAGER(m) declares a manager pointer, initially
 * NULL, closed at the end of the scope.  These need GCC or Clang.
 */
static inline void mmk_cleanup_read_guard(struct mmk_read_guard *g)
{
	if (g->owner)
		(void)mmk_read_release(g);
}

static inline void mmk_cleanup_header_guard(struct mmk_header_guard *g)
{
	if (g->owner)
		(void)mmk_header_release(g);
}

static inline void mmk_cleanup_write_guard(struct mmk_write_guard *g)
{
	if (g->owner)
		(void)mmk_write_release(g);
}

static inline void mmk_cleanup_manager(struct mmk_manager **m)
{
	mmk_close(*m);
	*m = NULL;
}

#define MMK_SCOPED_READ(g) \
	struct mmk_read_guard g __attribute__((cleanup(mmk_cleanup_read_guard))) = \
		{ .msg = NULL, .token = MMK_TOKEN_INVALID, .owner = NULL }
#define MMK_SCOPED_HEADER(g) \
	struct mmk_header_guard g __attribute__((cleanup(mmk_cleanup_header_guard))) = \
		{ .msg = NULL, .token = MMK_TOKEN_INVALID, .owner = NULL }
#define MMK_SCOPED_WRITE(g) \
	struct mmk_write_guard g __attribute__((cleanup(mmk_cleanup_write_guard))) = \
		{ .msg = NULL, .token = MMK_TOKEN_INVALID, .owner = NULL, .window = NULL }
#define MMK_SCOPED_MANAGER(m) \
	struct mmk_manager *m __attribute__((cleanup(mmk_cleanup_manager))) = NULL

/* ---- typed payloads ------------------------------------------------------------ */

/**
 * MMK_DEFINE_TYPED - typed wrappers for pools of one C struct
 * @name:    prefix of the generated functions
 * @type:    the payload type, e.g. struct sensor_frame
 * @type_id: its 64-bit payload type id
 *
 * Checks at compile time that @type fits a slot (at most MMK_PAYLOAD_MAX
 * bytes) and that its alignment is at most MMK_PAYLOAD_ALIGN, and defines
 * static inline functions:
 *
 *   uint64_t name_type_id(void)
 *       @type_id.
 *   void name_config(struct mmk_config *cfg, uint32_t capacity)
 *       Zero *cfg, then set payload_size = sizeof(type), capacity and
 *       payload_type = @type_id; set the other fields after it if needed.
 *   enum mmk_error name_check(const struct mmk_manager *m)
 *       MMK_E_TYPE_MISMATCH unless the pool's payload type id is @type_id
 *       and its payload size is at least sizeof(type).
 *   enum mmk_error name_attach(const char *pool, struct mmk_manager **out)
 *       mmk_kernel_attach() with @type_id, then name_check().
 *   enum mmk_error name_store(m, const struct mmk_header *h,
 *                             const type *value, uint64_t *token)
 *       name_check(), then mmk_store() of sizeof(type) bytes.
 *   enum mmk_error name_read(m, token, struct mmk_read_guard *g,
 *                            const type **value)
 *   enum mmk_error name_read_mut(m, token, struct mmk_write_guard *g,
 *                                type **value)
 *       name_check(), then mmk_read() / mmk_read_mut(); the message's
 *       payload size must be sizeof(type), else the guard is released and
 *       MMK_E_TYPE_MISMATCH returned.  *value points into the guard's
 *       message.
 *   const type *name_payload(const struct mmk_read_guard *g)
 *   type *name_payload_mut(struct mmk_write_guard *g)
 *       The payload of a held guard as @type.
 *
 * Use it at file scope, followed by a semicolon:
 *
 *   struct sensor_frame { uint64_t t_ns; float xyz[3]; };
 *   MMK_DEFINE_TYPED(frame, struct sensor_frame, 0x5346524d45000001ULL);
 */
#define MMK_DEFINE_TYPED(name, type, type_id)							\
	MMK_STATIC_ASSERT(sizeof(type) <= MMK_PAYLOAD_MAX,					\
			  "MMK_DEFINE_TYPED: " #type " does not fit a slot");			\
	MMK_STATIC_ASSERT(_Alignof(type) <= MMK_PAYLOAD_ALIGN,					\
			  "MMK_DEFINE_TYPED: " #type " is over-aligned");			\
	static inline MMK_MAYBE_UNUSED uint64_t							\
	name##_type_id(void)									\
	{											\
		return (type_id);								\
	}											\
	static inline MMK_MAYBE_UNUSED void							\
	name##_config(struct mmk_config *cfg, uint32_t capacity)				\
	{											\
		*cfg = (struct mmk_config){ .payload_size = (uint32_t)sizeof(type),		\
					    .capacity = capacity,				\
					    .payload_type = (type_id) };			\
	}											\
	static inline MMK_MAYBE_UNUSED enum mmk_error						\
	name##_check(const struct mmk_manager *m)						\
	{											\
		if (!m)										\
			return MMK_E_INVALID;							\
		if (mmk_payload_type(m) != (uint64_t)(type_id) ||				\
		    mmk_payload_max(m) < sizeof(type))						\
			return MMK_E_TYPE_MISMATCH;						\
		return MMK_OK;									\
	}											\
	static inline MMK_MAYBE_UNUSED enum mmk_error						\
	name##_attach(const char *pool, struct mmk_manager **out)				\
	{											\
		enum mmk_error e_ = mmk_kernel_attach(pool, (type_id), out);			\
												\
		if (e_ == MMK_OK && (e_ = name##_check(*out)) != MMK_OK) {			\
			mmk_close(*out);							\
			*out = NULL;								\
		}										\
		return e_;									\
	}											\
	static inline MMK_MAYBE_UNUSED enum mmk_error						\
	name##_store(struct mmk_manager *m, const struct mmk_header *h,				\
		     const type *value, uint64_t *token)					\
	{											\
		enum mmk_error e_ = name##_check(m);						\
												\
		if (e_ != MMK_OK) {								\
			if (token)								\
				*token = MMK_TOKEN_INVALID;					\
			return e_;								\
		}										\
		return mmk_store(m, h, value, sizeof(type), token);				\
	}											\
	static inline MMK_MAYBE_UNUSED const type *						\
	name##_payload(const struct mmk_read_guard *g)						\
	{											\
		return (const type *)(const void *)g->msg->payload;				\
	}											\
	static inline MMK_MAYBE_UNUSED type *							\
	name##_payload_mut(struct mmk_write_guard *g)						\
	{											\
		return (type *)(void *)g->msg->payload;						\
	}											\
	static inline MMK_MAYBE_UNUSED enum mmk_error						\
	name##_read(struct mmk_manager *m, uint64_t token, struct mmk_read_guard *g,		\
		    const type **value)								\
	{											\
		enum mmk_error e_ = name##_check(m);						\
												\
		g->msg = NULL;									\
		g->owner = NULL;								\
		if (e_ == MMK_OK)								\
			e_ = mmk_read(m, token, g);						\
		if (e_ == MMK_OK && g->msg->header.payload_size != sizeof(type)) {		\
			(void)mmk_read_release(g);						\
			e_ = MMK_E_TYPE_MISMATCH;						\
		}										\
		*value = e_ == MMK_OK ? name##_payload(g) : NULL;				\
		return e_;									\
	}											\
	static inline MMK_MAYBE_UNUSED enum mmk_error						\
	name##_read_mut(struct mmk_manager *m, uint64_t token, struct mmk_write_guard *g,	\
			type **value)								\
	{											\
		enum mmk_error e_ = name##_check(m);						\
												\
		g->msg = NULL;									\
		g->owner = NULL;								\
		g->window = NULL;								\
		if (e_ == MMK_OK)								\
			e_ = mmk_read_mut(m, token, g);						\
		if (e_ == MMK_OK && g->msg->header.payload_size != sizeof(type)) {		\
			(void)mmk_write_release(g);						\
			e_ = MMK_E_TYPE_MISMATCH;						\
		}										\
		*value = e_ == MMK_OK ? name##_payload_mut(g) : NULL;				\
		return e_;									\
	}											\
	MMK_STATIC_ASSERT(sizeof(type) > 0, "MMK_DEFINE_TYPED: empty type")

/* ---- version ------------------------------------------------------------------ */

/**
 * mmk_version - the library's version, "MAJOR.MINOR.PATCH"
 *
 * Thread-safe.
 */
MMK_API const char *mmk_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MMK_MMK_H */
