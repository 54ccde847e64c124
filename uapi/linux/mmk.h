/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * mmk - kernel-mediated zero-copy message pools.
 *
 * A pool is a fixed number of equal-sized message slots in kernel memory.
 * A process opens /dev/mmk (one open file is one "session"), binds the
 * session to a pool with MMK_IOC_CREATE or MMK_IOC_ATTACH, and maps the
 * pool's arena read-only with mmap(2) once.  Messages are copied in with
 * MMK_IOC_STORE, which returns an opaque 64-bit token.  Any session of the
 * pool can then take a shared read guard on the token and read the message
 * in place through its mapping, or an exclusive write guard and write a new
 * version back.  The kernel enforces every borrow rule between sessions and
 * drops a session's guards when its last reference goes away; a write guard
 * dropped that way poisons its slot.
 *
 * Conventions shared by every ioctl:
 *
 *  - The size encoded in the command is the size of the caller's struct.
 *    The kernel accepts any size from the first published version of the
 *    struct upwards; bytes past what the kernel knows must be zero (E2BIG
 *    otherwise), so the structs can grow at the end.  On the way out, the
 *    kernel zeroes the bytes it does not know.
 *  - Unknown flags and non-zero reserved fields fail with EINVAL.  Fields
 *    marked "out" are ignored on entry.
 *  - Nothing is changed when an ioctl fails (MMK_IOC_BATCH: see there).
 *
 * Errors (errno) and the libmmk error each one stands for:
 *
 *	ENOSPC		MMK_E_NO_FREE_SLOTS	pool full
 *	EBADSLT		MMK_E_BAD_TOKEN		malformed, foreign or stale token
 *	ENODATA		MMK_E_NOT_ALLOCATED	the message was freed
 *	EBUSY		MMK_E_ALREADY_BORROWED	an incompatible guard is held
 *	ETXTBSY		MMK_E_BORROW_ACTIVE	free while a guard is held
 *	EOWNERDEAD	MMK_E_POISONED		a writer died holding the slot
 *	EMSGSIZE	MMK_E_TOO_LARGE		payload larger than the slot
 *	EINVAL		MMK_E_INVALID		bad argument, flag or field
 *	EPROTOTYPE	MMK_E_TYPE_MISMATCH	payload type id differs
 *	EDQUOT		MMK_E_LIMIT		a module or session limit was hit
 *
 * Other errnos (EFAULT, ENOMEM, EACCES, ENOENT, EEXIST, ENOTCONN, EISCONN,
 * EOPNOTSUPP, EINTR, E2BIG) keep their usual meaning.
 *
 * Check order, identical in every libmmk backend:
 *	read, read_mut, peek_header: EBADSLT, ENODATA, EOWNERDEAD, EBUSY
 *	free:  EBADSLT, ENODATA, ETXTBSY
 *	store: EMSGSIZE or EINVAL, then ENOSPC
 */
#ifndef _UAPI_LINUX_MMK_H
#define _UAPI_LINUX_MMK_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MMK_DEVICE_PATH		"/dev/mmk"

/* A token that never names a message. */
#define MMK_TOKEN_INVALID	(~(__u64)0)

/* Longest pool name, including the terminating NUL. */
#define MMK_NAME_MAX		64

/* enum mmk_memory_class - where a pool's payload memory lives. */
enum mmk_memory_class {
	MMK_MEM_HOST		= 0,	/* ordinary host memory */
	MMK_MEM_PINNED_HOST	= 1,	/* host memory that is never swapped */
	MMK_MEM_DEVICE		= 2,	/* memory of device n; see memory_device */
	MMK_MEM_SHARED		= 3,	/* host memory shared between processes */
};

/* Message QoS classes.  Zero in a header given to the kernel means "default". */
#define MMK_QOS_BACKGROUND		1
#define MMK_QOS_BEST_EFFORT		2	/* the default */
#define MMK_QOS_LATENCY_CRITICAL	3

/* struct mmk_msg_header flags. */
#define MMK_MSG_FIRST_IN_BATCH	0x1U
#define MMK_MSG_LAST_IN_BATCH	0x2U
#define MMK_MSG_DEGRADE_ALLOWED	0x4U
#define MMK_MSG_HAS_DEADLINE	0x8U	/* deadline_ns is set */
#define MMK_MSG_FLAGS_ALL	(MMK_MSG_FIRST_IN_BATCH | MMK_MSG_LAST_IN_BATCH | \
				 MMK_MSG_DEGRADE_ALLOWED | MMK_MSG_HAS_DEADLINE)

/**
 * struct mmk_msg_header - the fixed header in front of every message
 * @trace_id:      caller's trace id
 * @sequence:      caller's sequence number
 * @created_tick:  caller's creation tick
 * @deadline_ns:   deadline; must be 0 unless MMK_MSG_HAS_DEADLINE is set
 * @payload_size:  payload bytes that follow the header (set by the kernel)
 * @flags:         MMK_MSG_*; unknown bits are refused
 * @qos:           MMK_QOS_*; 0 is stored as MMK_QOS_BEST_EFFORT
 * @memory_class:  enum mmk_memory_class of the pool (set by the kernel)
 * @memory_device: device index for MMK_MEM_DEVICE, else 0 (set by the kernel)
 * @__reserved0:   must be zero
 * @__reserved1:   must be zero
 *
 * In a pool's mapping, every slot starts with this header, followed by the
 * payload.  When a header is passed to the kernel (store, write release) the
 * fields marked "set by the kernel" are ignored and overwritten.
 */
struct mmk_msg_header {
	__u64 trace_id;
	__u64 sequence;
	__u64 created_tick;
	__u64 deadline_ns;
	__u32 payload_size;
	__u32 flags;
	__u8  qos;
	__u8  memory_class;
	__u16 memory_device;
	__u32 __reserved0;
	__u64 __reserved1[2];
};

/* struct mmk_pool_create flags. */
#define MMK_POOL_PAGE_ALIGNED	0x1U	/* every slot starts on a page */
#define MMK_POOL_FLAGS_ALL	(MMK_POOL_PAGE_ALIGNED)

/**
 * struct mmk_pool_create - argument of MMK_IOC_CREATE
 * @flags:        MMK_POOL_*
 * @payload_size: largest payload a slot holds, in bytes (> 0)
 * @capacity:     number of slots (> 0)
 * @mode:         access mode for attach, like file mode bits (0 to 0777);
 *                read and write permission are both needed to attach
 * @payload_type: payload type id; attach must present the same id
 * @memory_class: enum mmk_memory_class; MMK_MEM_DEVICE is refused
 *                (EOPNOTSUPP) because the kernel pool is host memory
 * @memory_device: must be zero
 * @__reserved:   must be zero
 * @name:         NUL-terminated name, or empty for an anonymous pool that
 *                is shared only by fd passing or fork
 * @pool_id:      out: the new pool's id
 * @__reserved2:  must be zero
 */
struct mmk_pool_create {
	__u32 flags;
	__u32 payload_size;
	__u32 capacity;
	__u32 mode;
	__u64 payload_type;
	__u8  memory_class;
	__u8  __reserved;
	__u16 memory_device;
	__u32 pool_id;
	char  name[MMK_NAME_MAX];
	__u64 __reserved2;
};

/**
 * struct mmk_pool_attach - argument of MMK_IOC_ATTACH
 * @flags:        must be zero
 * @__reserved:   must be zero
 * @payload_type: must equal the pool's payload type id (EPROTOTYPE)
 * @name:         NUL-terminated name of the pool (ENOENT if none)
 * @pool_id:      out: the pool's id
 * @__reserved2:  must be zero
 */
struct mmk_pool_attach {
	__u32 flags;
	__u32 __reserved;
	__u64 payload_type;
	char  name[MMK_NAME_MAX];
	__u32 pool_id;
	__u32 __reserved2;
};

/**
 * struct mmk_pool_info - argument of MMK_IOC_POOL_INFO (all out)
 * @pool_id:       pool id, unique among live pools
 * @flags:         MMK_POOL_* given at creation
 * @payload_size:  largest payload a slot holds
 * @slot_size:     distance between two slots in the mapping
 * @capacity:      number of slots
 * @available:     free slots at the time of the call
 * @map_size:      length to pass to mmap(2), at offset 0
 * @payload_type:  payload type id
 * @memory_class:  enum mmk_memory_class
 * @__pad:         zero
 * @memory_device: device index, 0 unless MMK_MEM_DEVICE
 * @mode:          access mode
 * @owner_uid:     creator's uid, as seen from the caller's user namespace
 * @owner_gid:     creator's gid, as seen from the caller's user namespace
 * @header_size:   sizeof(struct mmk_msg_header) as the kernel knows it
 * @read_guards:   read and header guards held now, by every session
 * @write_guards:  write guards held now
 * @poisoned:      poisoned slots now
 * @sessions:      sessions bound to the pool now
 * @stores:        successful stores since creation
 * @frees:         successful frees since creation
 * @no_free_slots: stores refused with ENOSPC since creation
 * @name:          name, empty for an anonymous pool
 */
struct mmk_pool_info {
	__u32 pool_id;
	__u32 flags;
	__u32 payload_size;
	__u32 slot_size;
	__u32 capacity;
	__u32 available;
	__u64 map_size;
	__u64 payload_type;
	__u8  memory_class;
	__u8  __pad;
	__u16 memory_device;
	__u32 mode;
	__u32 owner_uid;
	__u32 owner_gid;
	__u32 header_size;
	__u32 read_guards;
	__u32 write_guards;
	__u32 poisoned;
	__u32 sessions;
	__u32 __pad2;
	__u64 stores;
	__u64 frees;
	__u64 no_free_slots;
	char  name[MMK_NAME_MAX];
};

/**
 * struct mmk_store - argument of MMK_IOC_STORE
 * @header:       user pointer to a struct mmk_msg_header
 * @payload:      user pointer to @payload_size bytes (may be 0 if size is 0)
 * @payload_size: payload bytes; more than the pool's payload_size: EMSGSIZE
 * @flags:        must be zero
 * @token:        out: the message's token
 */
struct mmk_store {
	__u64 header;
	__u64 payload;
	__u32 payload_size;
	__u32 flags;
	__u64 token;
};

/* struct mmk_guard flags. */
#define MMK_GUARD_WAIT		0x1U	/* wait instead of EBUSY */
#define MMK_GUARD_FLAGS_ALL	(MMK_GUARD_WAIT)

/**
 * struct mmk_guard - argument of MMK_IOC_READ, MMK_IOC_READ_MUT and
 *                    MMK_IOC_PEEK_HEADER
 * @token:        the message
 * @flags:        MMK_GUARD_*
 * @__reserved:   must be zero
 * @timeout_ns:   with MMK_GUARD_WAIT: longest wait, 0 for no limit;
 *                must be zero without it
 * @offset:       out: where the message (its header) starts in the mapping
 * @payload_size: out: the message's payload size when the guard was taken
 * @__reserved2:  must be zero
 *
 * With MMK_GUARD_WAIT, only EBUSY waits; the wait is interruptible (EINTR)
 * and ends with EBUSY when @timeout_ns passes.
 */
struct mmk_guard {
	__u64 token;
	__u32 flags;
	__u32 __reserved;
	__u64 timeout_ns;
	__u64 offset;
	__u32 payload_size;
	__u32 __reserved2;
};

/* struct mmk_release flags. */
#define MMK_RELEASE_COMMIT	0x1U	/* write guard: write back */
#define MMK_RELEASE_FLAGS_ALL	(MMK_RELEASE_COMMIT)

/**
 * struct mmk_release - argument of MMK_IOC_READ_RELEASE and
 *                      MMK_IOC_WRITE_RELEASE
 * @token:        the message whose guard is released
 * @flags:        MMK_RELEASE_COMMIT (write release only)
 * @payload_size: with COMMIT: the new payload size, up to the slot's
 * @header:       with COMMIT: user pointer to the new struct mmk_msg_header
 * @payload:      with COMMIT: user pointer to the new payload
 *
 * COMMIT with @header, @payload and @payload_size all zero commits in
 * place: the message is the one found in the slot (written through a
 * writable window), checked like a window release below.
 *
 * A read release drops one read or header guard this session holds on the
 * token.  A write release drops the session's write guard; with
 * MMK_RELEASE_COMMIT the message is first replaced by @header and @payload,
 * validated like a store.  If that validation or copy fails the guard is
 * still held and the message is unchanged.  Without COMMIT, @payload_size,
 * @header and @payload must be zero.  ENOENT: this session holds no such
 * guard.
 */
struct mmk_release {
	__u64 token;
	__u32 flags;
	__u32 payload_size;
	__u64 header;
	__u64 payload;
};

/**
 * struct mmk_free - argument of MMK_IOC_FREE
 * @token:      the message to free
 * @flags:      must be zero
 * @__reserved: must be zero
 */
struct mmk_free {
	__u64 token;
	__u32 flags;
	__u32 __reserved;
};

/* struct mmk_loan flags: none yet. */
#define MMK_LOAN_FLAGS_ALL	0U

/**
 * struct mmk_loan - argument of MMK_IOC_LOAN
 * @flags:        must be zero
 * @__reserved:   must be zero
 * @token:        out: the token the message will have once published
 * @offset:       out: where the slot starts in the mapping
 *
 * Takes a free slot (ENOSPC if none) and gives this session the write
 * guard on it, as an empty message that no other session can read, peek
 * (EBUSY) or free (ETXTBSY) until it is published.  The slot's header is
 * zeroed.  The holder writes the message through a writable window
 * (page-aligned pools) or sends it with a write-back commit.  A write
 * release with MMK_RELEASE_COMMIT publishes it; one without COMMIT
 * cancels the loan: the slot goes back to the free list and the token
 * becomes stale (EBADSLT).  A session that goes away holding a loan gives
 * the slot back the same way: nothing was published, so nothing is
 * poisoned.  A loan counts as a write guard against the session's limit
 * (EDQUOT, checked after ENOSPC).
 */
struct mmk_loan {
	__u32 flags;
	__u32 __reserved;
	__u64 token;
	__u64 offset;
};

/* struct mmk_batch_entry opcodes. */
#define MMK_BATCH_STORE		1	/* as MMK_IOC_STORE */
#define MMK_BATCH_READ		2	/* as MMK_IOC_READ */
#define MMK_BATCH_PEEK_HEADER	3	/* as MMK_IOC_PEEK_HEADER */
#define MMK_BATCH_READ_RELEASE	4	/* as MMK_IOC_READ_RELEASE */
#define MMK_BATCH_FREE		5	/* as MMK_IOC_FREE */

/**
 * struct mmk_batch_entry - one operation of MMK_IOC_BATCH (fixed layout)
 * @op:           MMK_BATCH_*; anything else fails with EINVAL
 * @flags:        must be zero
 * @token:        the message; out for STORE (ignored on entry; set to
 *                MMK_TOKEN_INVALID if the store fails)
 * @header:       STORE: user pointer to a struct mmk_msg_header; else 0
 * @payload:      STORE: user pointer to the payload; else 0
 * @payload_size: STORE: payload bytes; out for READ and PEEK_HEADER
 *                (ignored on entry); else 0
 * @result:       out: 0, or the negative errno the single ioctl would
 *                have failed with
 * @offset:       out: READ and PEEK_HEADER: where the message starts in
 *                the mapping; 0 for the others
 *
 * Each op is checked and run exactly as its single ioctl, with the same
 * errors; a field an op does not use must be zero (EINVAL).
 */
struct mmk_batch_entry {
	__u32 op;
	__u32 flags;
	__u64 token;
	__u64 header;
	__u64 payload;
	__u32 payload_size;
	__s32 result;
	__u64 offset;
};

/**
 * struct mmk_batch - argument of MMK_IOC_BATCH
 * @ops:        user pointer to @count struct mmk_batch_entry
 * @count:      number of ops; 0 does nothing; more than the module
 *              parameter max_batch_ops: EDQUOT
 * @flags:      must be zero
 * @done:       out: ops that succeeded
 * @__reserved: must be zero
 *
 * The ops run in order, one at a time, each written back (results, and a
 * STORE's token before its message becomes reachable) before the next
 * starts.  Processing stops at the first op that fails: its @result holds
 * the error, @done counts the ops before it, and the ops after it are not
 * looked at.  The ioctl itself returns 0 whenever the batch header was
 * valid, whatever the ops did.
 *
 * If the ops array cannot be read, or an op cannot be written back, the
 * ioctl fails with EFAULT after writing @done (if it can): the ops that
 * did not run, and the one that could not be written back, have no
 * effect (a STORE gives its slot back, a READ or PEEK_HEADER drops its
 * guard), except that a READ_RELEASE or FREE cannot be undone: it stays
 * done and is counted in @done.
 */
struct mmk_batch {
	__u64 ops;
	__u32 count;
	__u32 flags;
	__u32 done;
	__u32 __reserved;
};

/*
 * Writable windows, for MMK_POOL_PAGE_ALIGNED pools only.  While a session
 * holds the write guard on a slot, it may map that one slot read-write
 * (MAP_SHARED, PROT_READ | PROT_WRITE, exactly slot_size bytes, on an fd
 * opened O_RDWR) at file offset MMK_WINDOW_OFFSET(pool_id, guard.offset)
 * and write the message in place: header and payload, no copy.  The window
 * works only while the guard is held: the kernel unmaps its pages when the
 * guard is released, and touching it afterwards raises SIGBUS; mapping it
 * without the guard fails with EACCES.  At write release the kernel checks
 * the header found in the slot like a store's header, and takes the
 * payload size from it (EMSGSIZE or EINVAL, guard still held, if wrong).
 * The first fault on a window maps the whole slot.  A window VMA may stay
 * mapped from one guard on its slot to the next: it faults again under
 * the next guard, and SIGBUS with none.
 */
#define MMK_WINDOW_SHIFT	40
#define MMK_WINDOW_OFFSET(pool_id, offset) \
	(((__u64)(pool_id) << MMK_WINDOW_SHIFT) + (offset))

#define MMK_IOC_MAGIC		0xB8

/* Bind this session to a new pool. EISCONN if already bound. */
#define MMK_IOC_CREATE		_IOWR(MMK_IOC_MAGIC, 0x00, struct mmk_pool_create)
/* Bind this session to a named pool. EISCONN if already bound. */
#define MMK_IOC_ATTACH		_IOWR(MMK_IOC_MAGIC, 0x01, struct mmk_pool_attach)
/* Describe the bound pool. ENOTCONN (every call below) if not bound. */
#define MMK_IOC_POOL_INFO	_IOR(MMK_IOC_MAGIC, 0x02, struct mmk_pool_info)
#define MMK_IOC_STORE		_IOWR(MMK_IOC_MAGIC, 0x03, struct mmk_store)
#define MMK_IOC_READ		_IOWR(MMK_IOC_MAGIC, 0x04, struct mmk_guard)
#define MMK_IOC_READ_MUT	_IOWR(MMK_IOC_MAGIC, 0x05, struct mmk_guard)
#define MMK_IOC_PEEK_HEADER	_IOWR(MMK_IOC_MAGIC, 0x06, struct mmk_guard)
#define MMK_IOC_READ_RELEASE	_IOW(MMK_IOC_MAGIC, 0x07, struct mmk_release)
#define MMK_IOC_WRITE_RELEASE	_IOW(MMK_IOC_MAGIC, 0x08, struct mmk_release)
#define MMK_IOC_FREE		_IOW(MMK_IOC_MAGIC, 0x09, struct mmk_free)
/* Take a free slot under this session's write guard. */
#define MMK_IOC_LOAN		_IOWR(MMK_IOC_MAGIC, 0x0a, struct mmk_loan)
/* Run several store, read, peek, release and free operations. */
#define MMK_IOC_BATCH		_IOWR(MMK_IOC_MAGIC, 0x0b, struct mmk_batch)

#endif /* _UAPI_LINUX_MMK_H */
