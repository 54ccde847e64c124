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
	MMK_A_POOL_IPC_NS,		/* u32, inode number of the pool's IPC namespace */

	__MMK_A_POOL_MAX,
	MMK_A_POOL_MAX = (__MMK_A_POOL_MAX - 1)
};

enum {
	MMK_CMD_POOL_GET = 1,
	MMK_CMD_POOL_CREATED_NTF,
	MMK_CMD_POOL_DESTROYED_NTF,
	MMK_CMD_POOL_EXHAUSTED_NTF,
	MMK_CMD_SLOT_POISONED_NTF,

	__MMK_CMD_MAX,
	MMK_CMD_MAX = (__MMK_CMD_MAX - 1)
};

#define MMK_MCGRP_MONITOR	"monitor"

#endif /* _UAPI_LINUX_MMK_NETLINK_H */
