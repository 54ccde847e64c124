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
 * dropped that way poisons its slot (but see struct mmk_guard).
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
 *	EINPROGRESS	MMK_E_QUEUE_OWNED	a queue holds the message
 *	ENOBUFS		MMK_E_QUEUE_FULL	a queue refused the push
 *	EAGAIN		MMK_E_QUEUE_EMPTY	nothing (more) in the queue
 *
 * Other errnos (EFAULT, ENOMEM, EACCES, ENOENT, EEXIST, ENOTCONN, EISCONN,
 * EOPNOTSUPP, EINTR, E2BIG, EBADF, EXDEV, EMFILE) keep their usual meaning.
 *
 * Check order, identical in every libmmk backend:
 *	read, read_mut, peek_header: EBADSLT, ENODATA, EOWNERDEAD, EBUSY
 *	free:  EBADSLT, ENODATA, ETXTBSY, EINPROGRESS
 *	store: EMSGSIZE or EINVAL, then ENOSPC
 *	push:  EBADSLT, ENODATA, EOWNERDEAD, EBUSY, EINPROGRESS, then admission
 *	       (ENOBUFS)
 *	pop:   EAGAIN (or a wait), then EBUSY for a write pop
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

/* struct mmk_pool_attach flags. */
#define MMK_ATTACH_OWNER	0x1U	/* the pool's creator must be owner_uid */
#define MMK_ATTACH_FLAGS_ALL	(MMK_ATTACH_OWNER)

/**
 * struct mmk_pool_attach - argument of MMK_IOC_ATTACH
 * @flags:        MMK_ATTACH_*
 * @owner_uid:    with MMK_ATTACH_OWNER: the uid, as seen in the caller's
 *                user namespace, that must have created the pool (EPERM
 *                otherwise; EINVAL if it maps to no uid there); must be
 *                zero without the flag
 * @payload_type: must equal the pool's payload type id (EPROTOTYPE)
 * @name:         NUL-terminated name of the pool (ENOENT if none)
 * @pool_id:      out: the pool's id
 * @__reserved2:  must be zero
 *
 * Checks run in this order: ENOENT, EPERM (owner), EACCES (mode),
 * EPROTOTYPE, then EDQUOT (the session's hold words over max_total_bytes).
 */
struct mmk_pool_attach {
	__u32 flags;
	__u32 owner_uid;
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
 * @pool_bytes:    bytes the module allocated for the pool itself: what
 *                 max_pool_bytes is compared with
 * @charged_bytes: @pool_bytes plus the per-slot state of every session
 *                 bound now and the rings and bitmaps of its queues: what
 *                 the pool counts against max_total_bytes
 * @queues:        the pool's live queues now
 * @__pad3:        zero
 *
 * The struct grows at the end; MMK_POOL_INFO_SIZE_VER0 is its first size.
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
	__u64 pool_bytes;
	__u64 charged_bytes;
	__u32 queues;
	__u32 __pad3;
};

#define MMK_POOL_INFO_SIZE_VER0	168	/* up to and including @name */

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
 * and ends with EBUSY when @timeout_ns passes.  Closing a descriptor of
 * the session does not end a wait in flight (as with flock).  A write
 * guard that no userspace code could have used is never poisoned: if the
 * session goes away and no descriptor of it was closed since the guard was
 * taken (it was won by a call in flight after the last close) and no
 * window was mapped on it, the guard is dropped as if released without
 * COMMIT.  Every other write guard dropped by the session's end poisons
 * its slot.
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
#define MMK_BATCH_PUSH		6	/* MMK_IOC_PUSH of @token to @queue_fd */
#define MMK_BATCH_STORE_PUSH	7	/* MMK_IOC_PUSH with MMK_PUSH_STORE */
#define MMK_BATCH_COMMIT_PUSH	8	/* MMK_IOC_PUSH with MMK_PUSH_COMMIT */
#define MMK_BATCH_POP		9	/* MMK_IOC_POP of one message */
#define MMK_BATCH_LOAN		10	/* as MMK_IOC_LOAN */
#define MMK_BATCH_WRITE_RELEASE	11	/* as MMK_IOC_WRITE_RELEASE */

/**
 * struct mmk_batch_entry - one operation of MMK_IOC_BATCH (fixed layout)
 * @op:           MMK_BATCH_*; anything else fails with EINVAL
 * @flags:        PUSH, STORE_PUSH and COMMIT_PUSH: MMK_PUSH_WAIT;
 *                POP: MMK_POP_WAIT, MMK_POP_WRITE;
 *                WRITE_RELEASE: MMK_RELEASE_COMMIT; else 0
 * @token:        the message; out for STORE, STORE_PUSH, LOAN and POP
 *                (ignored on entry; MMK_TOKEN_INVALID if the op fails)
 * @header:       STORE, STORE_PUSH, and COMMIT_PUSH or WRITE_RELEASE with
 *                a write-back commit: user pointer to a struct
 *                mmk_msg_header; else 0
 * @payload:      as @header: user pointer to the payload; else 0
 * @payload_size: STORE, STORE_PUSH, COMMIT_PUSH, WRITE_RELEASE: payload
 *                bytes; out for READ, PEEK_HEADER and POP (ignored on
 *                entry); else 0
 * @result:       out: 0, or the negative errno the single ioctl would
 *                have failed with
 * @offset:       out: READ, PEEK_HEADER, LOAN and POP: where the message
 *                starts in the mapping; 0 for the others
 * @queue_fd:     PUSH, STORE_PUSH, COMMIT_PUSH and POP: the queue; else 0
 * @outcome:      out: PUSH ops: MMK_PUSH_DROPPED if the queue dropped the
 *                message, plus the number of messages evicted to admit
 *                it (MMK_OUTCOME_EVICTED); 0 for the others
 * @timeout_ns:   with MMK_PUSH_WAIT or MMK_POP_WAIT: longest wait, 0 for
 *                no limit; else 0
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
	__s32 queue_fd;
	__u32 outcome;
	__u64 timeout_ns;
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
 * starts.  So one call can release what was read, push what was made and
 * pop (or wait for) what comes next: a POP that waits is typically the
 * last op, and a run of POPs stops at the first that finds the queue
 * empty (EAGAIN in its @result).  Processing stops at the first op that
 * fails: its @result holds the error, @done counts the ops before it, and
 * the ops after it are not looked at.  The ioctl itself returns 0 whenever
 * the batch header was valid, whatever the ops did.
 *
 * The pushes of a batch wake the queue's waiting pops and pollers when the
 * batch ends, or before it waits, not at each push; so do its pops for
 * waiting pushes, and MMK_IOC_POP's.  A sleeping consumer woken by a
 * batch of pushes to one queue then finds all of them (unless the batch
 * waited partway, or pushed to more than four queues: those wake at once).
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
 * opened O_RDWR) at file offset MMK_WINDOW_OFFSET(guard.offset) and write
 * the message in place: header and payload, no copy.  The offset fits the
 * 32-bit page offset of mmap2(), so 32-bit processes map windows too.  Each
 * session has its own file offsets: a window names a slot of the session's
 * pool.  The window works only while the guard is held: the kernel unmaps
 * its pages when the guard is released, and touching it afterwards raises
 * SIGBUS; mapping it without the guard fails with EACCES.  At write release
 * the kernel checks the header found in the slot like a store's header,
 * and takes the payload size from it (EMSGSIZE or EINVAL, guard still
 * held, if wrong).  The first fault on a window maps the whole slot.  A
 * window VMA may stay mapped from one guard on its slot to the next: it
 * faults again under the next guard, and SIGBUS with none.
 *
 * An arena window maps every slot at once: offset MMK_WINDOW_OFFSET(0),
 * exactly map_size bytes; it needs no guard to be mapped, and each slot in
 * it works, as above, only while the session holds its write guard.  A
 * batch that commits several guards written through windows zaps them in
 * one pass before its first commit (one TLB flush per window mapping,
 * where there was one per guard): from the moment the batch starts, those
 * guards' windows raise SIGBUS, and other held slots between them fault
 * in again when next touched.
 */
#define MMK_WINDOW_SHIFT	40
#define MMK_WINDOW_OFFSET(offset) \
	(((__u64)1 << MMK_WINDOW_SHIFT) + (offset))

/*
 * Queues: bounded FIFOs of tokens of one pool, with an admission policy.
 *
 * A queue is a file descriptor of its own, made or opened with
 * MMK_IOC_QUEUE_OPEN on a session of its pool.  It lives while any
 * descriptor refers to it; it can be passed with SCM_RIGHTS.  poll(2)
 * reports EPOLLIN while it holds a message and EPOLLOUT while it is below
 * its soft caps (a push is then admitted whatever the policy).
 *
 * Pushing a token gives the message to the kernel: from then on it lives
 * while a queue holds it or a guard is held on it, and it is freed when
 * the last one lets go.  Nobody frees it by hand (free gives EINPROGRESS
 * while a queue holds it).  Popping turns the queue's hold into a read
 * guard of the popping session (or a write guard, only if nothing else
 * holds the message); releasing that guard frees the message unless it was
 * pushed on again.  Push and pop are ioctls of the session (/dev/mmk fd),
 * naming the queue by its descriptor, because popped guards belong to the
 * session.
 */

/* Admission policies (struct mmk_queue_open.policy). */
#define MMK_QUEUE_REJECT	0	/* refuse (ENOBUFS) at the soft cap */
#define MMK_QUEUE_DROP_NEWEST	1	/* drop the incoming message */
#define MMK_QUEUE_DROP_OLDEST	2	/* evict the oldest, then admit */
#define MMK_QUEUE_BLOCK		3	/* wait for room (MMK_PUSH_WAIT) */
#define MMK_QUEUE_QOS		4	/* admit latency-critical only; drop expired at pop */
#define MMK_QUEUE_POLICY_MAX	MMK_QUEUE_QOS

/* struct mmk_queue_open flags. */
#define MMK_QUEUE_CREATE	0x1U	/* make a new queue (EEXIST if named and taken) */
#define MMK_QUEUE_CLOEXEC	0x2U	/* the new descriptor is close-on-exec */
#define MMK_QUEUE_OPEN_FLAGS_ALL	(MMK_QUEUE_CREATE | MMK_QUEUE_CLOEXEC)

/**
 * struct mmk_queue_open - argument of MMK_IOC_QUEUE_OPEN
 * @flags:      MMK_QUEUE_*
 * @policy:     with CREATE: MMK_QUEUE_REJECT ... MMK_QUEUE_QOS; else 0
 * @cap_items:  with CREATE: hard cap in messages, 1 to the module
 *              parameter max_queue_items; else 0
 * @soft_items: with CREATE: soft cap, 0 (the hard cap) to @cap_items; else 0
 * @cap_bytes:  with CREATE: hard cap in payload bytes, 0 for none; else 0
 * @soft_bytes: with CREATE: soft byte cap, 0 (the hard cap) to @cap_bytes,
 *              and 0 if @cap_bytes is 0; else 0
 * @name:       NUL-terminated name, unique within the pool; empty for an
 *              anonymous queue (CREATE only).  Without CREATE: the queue
 *              to open (ENOENT if none).
 * @fd:         out: the queue's new descriptor
 * @queue_id:   out: the queue's id, unique among the pool's live queues
 */
struct mmk_queue_open {
	__u32 flags;
	__u32 policy;
	__u32 cap_items;
	__u32 soft_items;
	__u64 cap_bytes;
	__u64 soft_bytes;
	char  name[MMK_NAME_MAX];
	__s32 fd;
	__u32 queue_id;
};

/* Most queues one push names (fan-out). */
#define MMK_PUSH_MAX_QUEUES	8

/* struct mmk_push flags. */
#define MMK_PUSH_WAIT		0x1U	/* Block policy: wait for room */
#define MMK_PUSH_STORE		0x2U	/* store the message first (token out) */
#define MMK_PUSH_COMMIT		0x4U	/* commit this session's write guard or loan first */
#define MMK_PUSH_FLAGS_ALL	(MMK_PUSH_WAIT | MMK_PUSH_STORE | MMK_PUSH_COMMIT)

/* Push outcomes (struct mmk_batch_entry.outcome). */
#define MMK_PUSH_DROPPED	0x80000000U
#define MMK_OUTCOME_EVICTED	0x7fffffffU

/**
 * struct mmk_push - argument of MMK_IOC_PUSH
 * @token:        the message; out with MMK_PUSH_STORE
 * @flags:        MMK_PUSH_*; STORE and COMMIT exclude each other
 * @nr_queues:    queues in @queue_fds, 1 to MMK_PUSH_MAX_QUEUES
 * @queue_fds:    the queues (distinct, all of this session's pool); unused
 *                entries must be 0
 * @timeout_ns:   with MMK_PUSH_WAIT: longest wait, 0 for no limit; else 0
 * @header:       STORE, or COMMIT by write-back: user pointer to a struct
 *                mmk_msg_header; else 0
 * @payload:      as @header, the payload
 * @payload_size: as @header, the payload bytes
 * @dropped:      out: bit i set when queue_fds[i] dropped the message
 * @evicted:      out: messages evicted (DropOldest) to admit it
 * @__reserved:   must be zero
 *
 * Checks, in order: the token (EBADSLT, ENODATA), poison (EOWNERDEAD), a
 * write guard or unpublished loan on it (EBUSY; with COMMIT, this
 * session's own write guard is what is pushed), a queue that already
 * holds it (EINPROGRESS), then admission in every queue.  All or nothing:
 * if any queue refuses (ENOBUFS), or a wait fails (EINTR, or ENOBUFS at
 * the timeout), no queue takes the message and it stays with the caller
 * (STORE: nothing was stored; COMMIT: the guard is still held, with the
 * committed message in the slot).  A drop or an eviction is a success.
 */
struct mmk_push {
	__u64 token;
	__u32 flags;
	__u32 nr_queues;
	__s32 queue_fds[MMK_PUSH_MAX_QUEUES];
	__u64 timeout_ns;
	__u64 header;
	__u64 payload;
	__u32 payload_size;
	__u32 dropped;
	__u32 evicted;
	__u32 __reserved;
};

/**
 * struct mmk_popped - one message taken by MMK_IOC_POP (all out)
 * @token:        the message, now guarded by the popping session
 * @offset:       where it starts in the mapping
 * @payload_size: its payload size
 * @__reserved:   zero
 */
struct mmk_popped {
	__u64 token;
	__u64 offset;
	__u32 payload_size;
	__u32 __reserved;
};

/* struct mmk_pop flags. */
#define MMK_POP_WAIT		0x1U	/* wait for a first message */
#define MMK_POP_WRITE		0x2U	/* take a write guard (EBUSY unless sole holder) */
#define MMK_POP_FLAGS_ALL	(MMK_POP_WAIT | MMK_POP_WRITE)

/**
 * struct mmk_pop - argument of MMK_IOC_POP
 * @queue_fd:   the queue
 * @flags:      MMK_POP_*
 * @timeout_ns: with MMK_POP_WAIT: longest wait, 0 for no limit; else 0
 * @entries:    user pointer to @max struct mmk_popped
 * @max:        messages to take at most, 1 to max_batch_ops
 * @count:      out: messages taken (at least 1 on success)
 *
 * Takes the oldest messages, up to @max, each as a guard of this session.
 * EAGAIN if the queue is empty (after the wait, if any: EAGAIN at the
 * timeout, EINTR on a signal).  A QoS queue drops, instead of delivering,
 * a message whose deadline has passed.  A write pop stops at the first
 * message that something else holds (EBUSY if it is the first).
 */
struct mmk_pop {
	__s32 queue_fd;
	__u32 flags;
	__u64 timeout_ns;
	__u64 entries;
	__u32 max;
	__u32 count;
};

/**
 * struct mmk_queue_peek - argument of MMK_IOC_QUEUE_PEEK
 * @queue_fd:     the queue
 * @index:        0 for the oldest message, n for the n-th after it
 * @token:        out: the message (no guard is taken: read it with one)
 * @offset:       out: where it starts in the mapping
 * @payload_size: out: its payload size
 * @qos:          out: its QoS class
 * @__reserved:   zero
 * @msg_flags:    out: MMK_MSG_HAS_DEADLINE if it has a deadline
 * @deadline_ns:  out: its deadline (CLOCK_MONOTONIC), 0 if none
 *
 * EAGAIN if the queue holds @index messages or fewer.
 */
struct mmk_queue_peek {
	__s32 queue_fd;
	__u32 index;
	__u64 token;
	__u64 offset;
	__u32 payload_size;
	__u8  qos;
	__u8  __reserved[3];
	__u32 msg_flags;
	__u32 __reserved2;
	__u64 deadline_ns;
};

/* Watermark states (struct mmk_queue_info.watermark). */
#define MMK_WM_BELOW_SOFT	0
#define MMK_WM_BETWEEN		1	/* at or above a soft cap, below both hard caps */
#define MMK_WM_AT_HARD		2	/* at or above a hard cap */

/* Drop reasons (struct mmk_queue_info.drops). */
#define MMK_DROP_NEWEST		0	/* DropNewest dropped the incoming message */
#define MMK_DROP_OLDEST		1	/* DropOldest evicted a queued message */
#define MMK_DROP_QOS		2	/* QoS admission dropped a message */
#define MMK_DROP_DEADLINE	3	/* QoS pop dropped an expired message */
#define MMK_DROP_REASONS	4

/**
 * struct mmk_queue_info - argument of MMK_IOC_QUEUE_INFO, on a queue's
 *                         descriptor (all out)
 * @queue_id:     id, unique among the pool's live queues
 * @pool_id:      the pool's id
 * @policy:       MMK_QUEUE_*
 * @watermark:    MMK_WM_* now
 * @cap_items:    hard cap in messages
 * @soft_items:   soft cap in messages
 * @items:        messages held now
 * @high_items:   most messages ever held at once
 * @cap_bytes:    hard cap in payload bytes, 0 if none
 * @soft_bytes:   soft cap in payload bytes, 0 if none
 * @bytes:        payload bytes held now
 * @pushes:       messages admitted since creation
 * @pops:         messages popped since creation
 * @rejected:     pushes refused with ENOBUFS since creation
 * @drops:        messages dropped, per MMK_DROP_* reason
 * @name:         name, empty for an anonymous queue
 */
struct mmk_queue_info {
	__u32 queue_id;
	__u32 pool_id;
	__u32 policy;
	__u32 watermark;
	__u32 cap_items;
	__u32 soft_items;
	__u32 items;
	__u32 high_items;
	__u64 cap_bytes;
	__u64 soft_bytes;
	__u64 bytes;
	__u64 pushes;
	__u64 pops;
	__u64 rejected;
	__u64 drops[MMK_DROP_REASONS];
	char  name[MMK_NAME_MAX];
};

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
/* Run several data-path and queue operations. */
#define MMK_IOC_BATCH		_IOWR(MMK_IOC_MAGIC, 0x0b, struct mmk_batch)
/* Make or open a queue of the bound pool; returns its descriptor. */
#define MMK_IOC_QUEUE_OPEN	_IOWR(MMK_IOC_MAGIC, 0x0c, struct mmk_queue_open)
/* Give a message to one or several queues. */
#define MMK_IOC_PUSH		_IOWR(MMK_IOC_MAGIC, 0x0d, struct mmk_push)
/* Take the oldest messages of a queue as guards of this session. */
#define MMK_IOC_POP		_IOWR(MMK_IOC_MAGIC, 0x0e, struct mmk_pop)
/* Look at a queued message without taking it. */
#define MMK_IOC_QUEUE_PEEK	_IOWR(MMK_IOC_MAGIC, 0x0f, struct mmk_queue_peek)
/* On a queue's descriptor: its caps, occupancy and counters. */
#define MMK_IOC_QUEUE_INFO	_IOR(MMK_IOC_MAGIC, 0x10, struct mmk_queue_info)

#endif /* _UAPI_LINUX_MMK_H */
