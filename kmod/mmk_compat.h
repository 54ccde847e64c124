/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels mmk supports (6.1 and 6.12 LTS).
 * Everything version-dependent lives here and nowhere else.
 */
#ifndef MMK_COMPAT_H
#define MMK_COMPAT_H

#include <linux/file.h>
#include <linux/ipc_namespace.h>
#include <linux/mm.h>
#include <linux/proc_ns.h>
#include <net/genetlink.h>

/* kmod/Kbuild probes the target kernel's headers and sets the MMK_HAVE_*. */
#ifndef MMK_HAVE_VM_FLAGS_MOD
/* 6.3 made vm_flags read-only and added accessors; mmap_lock is held here. */
static inline void vm_flags_mod(struct vm_area_struct *vma, vm_flags_t set, vm_flags_t clear)
{
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
}
#endif

/* 6.12 keeps a struct fd's file behind an accessor; 6.1 has the field. */
#ifndef fd_file
#define fd_file(f)	((f).file)
#endif

/* The attributes of a dump request, parsed and checked against the policy. */
static inline struct nlattr **mmk_genl_dump_attrs(struct netlink_callback *cb)
{
#ifdef MMK_HAVE_GENL_INFO_DUMP
	return genl_info_dump(cb)->attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/*
 * A reference on an IPC namespace.  6.1 does not export put_ipc_ns(), so
 * the reference is dropped through the namespace's own proc_ns_operations,
 * as nsfs drops the one an open /proc/PID/ns/ipc holds.  Without
 * CONFIG_IPC_NS there is only the initial namespace, and no reference.
 */
static inline struct ipc_namespace *mmk_get_ipc_ns(struct ipc_namespace *ns)
{
	return get_ipc_ns(ns);
}

static inline void mmk_put_ipc_ns(struct ipc_namespace *ns)
{
#ifdef CONFIG_IPC_NS
	ns->ns.ops->put(&ns->ns);
#endif
}

/* init_ipc_ns is not exported by 6.1; its inode number is fixed. */
static inline bool mmk_ipc_ns_is_initial(const struct ipc_namespace *ns)
{
	return ns->ns.inum == PROC_IPC_INIT_INO;
}

#endif /* MMK_COMPAT_H */
