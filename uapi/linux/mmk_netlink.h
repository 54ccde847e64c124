/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * mmk management over generic netlink.
 *
 * The family is described by docs/netlink/mmk.yaml, in the kernel's netlink
 * spec format; scripts/check-netlink-spec.py checks that every name and
 * value below agrees with it.
 *
 * MMK_CMD_POOL_GET
 *	do:   MMK_A_POOL_ID or MMK_A_POOL_NAME (exactly one) selects a pool;
 *	      the reply carries every pool attribute below except TOKEN.
 *	dump: no request attributes; one message per pool, in id order.
 *	A name is looked up in the caller's IPC namespace.  A caller with
 *	CAP_SYS_ADMIN in the initial user namespace, running in the initial
 *	IPC namespace, sees every pool of every IPC namespace; any other
 *	caller sees only the named pools of its own IPC namespace that it
 *	could attach (mode bits, or CAP_IPC_OWNER in the user namespace that
 *	owns that IPC namespace); any other pool is reported as missing
 *	(ENOENT), exactly like a pool that does not exist.  IPC_NS, the
 *	inode number of the pool's IPC namespace (as in /proc/PID/ns/ipc),
 *	says which namespace a pool lives in.
 *
 * MMK_CMD_QUEUE_GET (attributes MMK_A_QUEUE_*)
 *	do:   the pool (POOL_ID or POOL_NAME, exactly one) and the queue (ID
 *	      or NAME, exactly one); the reply carries every queue attribute.
 *	dump: the pool (POOL_ID or POOL_NAME, exactly one, required); one
 *	      message per queue of that pool, in queue id order.
 *
 * MMK_CMD_SESSION_GET (attributes MMK_A_SESSION_*)
 *	do:   the pool (POOL_ID or POOL_NAME, exactly one) and the session ID.
 *	dump: the pool, as for queues; one message per session (open file
 *	      bound to the pool), in session id order.
 *	Only a caller that may see the pool (as for MMK_CMD_POOL_GET) sees
 *	its queues and sessions; for any other it gets ENOENT.  A session's
 *	pid is that of the caller's pid namespace (0 if it has none there)
 *	and its uid that of the caller's user namespace.
 *
 * Multicast group MMK_MCGRP_MONITOR (joining needs CAP_SYS_ADMIN) carries:
 *	MMK_CMD_POOL_CREATED_NTF	every pool attribute, as POOL_GET
 *	MMK_CMD_POOL_DESTROYED_NTF	ID, NAME, STORES, FREES, NO_FREE_SLOTS
 *	MMK_CMD_POOL_EXHAUSTED_NTF	ID, NAME, CAPACITY, NO_FREE_SLOTS; sent
 *					when a store finds the pool full, at most
 *					once per second per pool
 *	MMK_CMD_SLOT_POISONED_NTF	ID, NAME, TOKEN of the poisoned message
 *
 * NAME is absent for an anonymous pool.  Owner ids are those of the
 * caller's user namespace (the initial one for events).
 */
#ifndef _UAPI_LINUX_MMK_NETLINK_H
#define _UAPI_LINUX_MMK_NETLINK_H

#define MMK_FAMILY_NAME		"mmk"
#define MMK_FAMILY_VERSION	1

enum {
	MMK_A_POOL_ID = 1,		/* u32, 1..65534 */
	MMK_A_POOL_NAME,		/* NUL-terminated string, < MMK_NAME_MAX bytes */
	MMK_A_POOL_PAD,
	MMK_A_POOL_FLAGS,		/* u32, MMK_POOL_* of <linux/mmk.h> */
	MMK_A_POOL_PAYLOAD_SIZE,	/* u32 */
	MMK_A_POOL_SLOT_SIZE,		/* u32, distance between two slots */
	MMK_A_POOL_CAPACITY,		/* u32 */
	MMK_A_POOL_AVAILABLE,		/* u32, free slots */
	MMK_A_POOL_MAP_SIZE,		/* u64, arena bytes */
	MMK_A_POOL_SESSIONS,		/* u32 */
	MMK_A_POOL_READ_GUARDS,		/* u32 */
	MMK_A_POOL_WRITE_GUARDS,	/* u32 */
	MMK_A_POOL_POISONED,		/* u32 */
	MMK_A_POOL_STORES,		/* u64 */
	MMK_A_POOL_FREES,		/* u64 */
	MMK_A_POOL_NO_FREE_SLOTS,	/* u64, stores refused with ENOSPC */
	MMK_A_POOL_MEMORY_CLASS,	/* u32, enum mmk_memory_class */
	MMK_A_POOL_OWNER_UID,		/* u32 */
	MMK_A_POOL_OWNER_GID,		/* u32 */
	MMK_A_POOL_MODE,		/* u32, 0 to 0777 */
	MMK_A_POOL_PAYLOAD_TYPE,	/* u64 */
	MMK_A_POOL_TOKEN,		/* u64 */
	MMK_A_POOL_QUEUES,		/* u32, live queues */
	MMK_A_POOL_IPC_NS,		/* u32, inode number of the pool's IPC namespace */

	__MMK_A_POOL_MAX,
	MMK_A_POOL_MAX = (__MMK_A_POOL_MAX - 1)
};

/* Policies, watermarks and drop reasons are those of <linux/mmk.h>. */
enum {
	MMK_A_QUEUE_POOL_ID = 1,	/* u32, 1..65534 */
	MMK_A_QUEUE_POOL_NAME,		/* NUL-terminated string */
	MMK_A_QUEUE_ID,			/* u32, from 1 */
	MMK_A_QUEUE_NAME,		/* NUL-terminated string; absent if anonymous */
	MMK_A_QUEUE_PAD,
	MMK_A_QUEUE_POLICY,		/* u32, MMK_QUEUE_REJECT .. MMK_QUEUE_QOS */
	MMK_A_QUEUE_WATERMARK,		/* u32, MMK_WM_* */
	MMK_A_QUEUE_CAP_ITEMS,		/* u32 */
	MMK_A_QUEUE_SOFT_ITEMS,		/* u32 */
	MMK_A_QUEUE_CAP_BYTES,		/* u64, 0: no byte cap */
	MMK_A_QUEUE_SOFT_BYTES,		/* u64 */
	MMK_A_QUEUE_ITEMS,		/* u32, messages queued */
	MMK_A_QUEUE_HIGH_ITEMS,		/* u32, most ever queued at once */
	MMK_A_QUEUE_BYTES,		/* u64, payload bytes queued */
	MMK_A_QUEUE_PUSHES,		/* u64, messages admitted */
	MMK_A_QUEUE_POPS,		/* u64 */
	MMK_A_QUEUE_REJECTED,		/* u64, pushes refused (ENOBUFS) */
	MMK_A_QUEUE_DROPS_NEWEST,	/* u64, MMK_DROP_NEWEST */
	MMK_A_QUEUE_DROPS_OLDEST,	/* u64, MMK_DROP_OLDEST */
	MMK_A_QUEUE_DROPS_QOS,		/* u64, MMK_DROP_QOS */
	MMK_A_QUEUE_DROPS_DEADLINE,	/* u64, MMK_DROP_DEADLINE */

	__MMK_A_QUEUE_MAX,
	MMK_A_QUEUE_MAX = (__MMK_A_QUEUE_MAX - 1)
};

enum {
	MMK_A_SESSION_POOL_ID = 1,	/* u32, 1..65534 */
	MMK_A_SESSION_POOL_NAME,	/* NUL-terminated string */
	MMK_A_SESSION_ID,		/* u32, from 1, in bind order */
	MMK_A_SESSION_PID,		/* u32, process that bound it */
	MMK_A_SESSION_COMM,		/* NUL-terminated string, its command */
	MMK_A_SESSION_UID,		/* u32, its fsuid at bind */
	MMK_A_SESSION_READ_GUARDS,	/* u32, read and header guards held */
	MMK_A_SESSION_WRITE_GUARDS,	/* u32, write guards held, loans included */
	MMK_A_SESSION_LOANS,		/* u32, unpublished loans */
	MMK_A_SESSION_POPPED,		/* u32, guards held on popped messages */
	MMK_A_SESSION_QUEUES_OPEN,	/* u32, queue descriptors opened through it */

	__MMK_A_SESSION_MAX,
	MMK_A_SESSION_MAX = (__MMK_A_SESSION_MAX - 1)
};

enum {
	MMK_CMD_POOL_GET = 1,
	MMK_CMD_POOL_CREATED_NTF,
	MMK_CMD_POOL_DESTROYED_NTF,
	MMK_CMD_POOL_EXHAUSTED_NTF,
	MMK_CMD_SLOT_POISONED_NTF,
	MMK_CMD_QUEUE_GET,
	MMK_CMD_SESSION_GET,

	__MMK_CMD_MAX,
	MMK_CMD_MAX = (__MMK_CMD_MAX - 1)
};

#define MMK_MCGRP_MONITOR	"monitor"

#endif /* _UAPI_LINUX_MMK_NETLINK_H */
