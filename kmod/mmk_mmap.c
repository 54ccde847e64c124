// SPDX-License-Identifier: GPL-2.0
/*
 * The read-only mapping of a pool's arena.
 *
 * Pages are inserted one fault at a time as raw PFNs (VM_PFNMAP), so
 * get_user_pages() refuses them and nothing can pin the arena.  VM_MAYWRITE
 * and VM_MAYEXEC are cleared, so mprotect() can never make it writable or
 * executable.  The VMA holds the session's file, and so the pool, alive.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>

#include "mmk_internal.h"
#include "mmk_compat.h"

static struct mmk_session *mmk_vma_session(struct vm_area_struct *vma)
{
	return vma->vm_file->private_data;
}

/* fork() and VMA splits: one more VMA of the session. */
static void mmk_vm_open(struct vm_area_struct *vma)
{
	atomic_inc(&mmk_vma_session(vma)->nr_maps);
}

static void mmk_vm_close(struct vm_area_struct *vma)
{
	atomic_dec(&mmk_vma_session(vma)->nr_maps);
}

static vm_fault_t mmk_vm_fault(struct vm_fault *vmf)
{
	struct mmk_pool *pool = mmk_vma_session(vmf->vma)->pool;
	unsigned long off = vmf->pgoff << PAGE_SHIFT;

	if (off >= pool->map_size)
		return VM_FAULT_SIGBUS;
	return vmf_insert_pfn(vmf->vma, vmf->address, vmalloc_to_pfn(pool->arena + off));
}

static const struct vm_operations_struct mmk_vm_ops = {
	.open	= mmk_vm_open,
	.close	= mmk_vm_close,
	.fault	= mmk_vm_fault,
};

/**
 * mmk_mmap - map the bound pool's arena read-only, once per session
 * @file: the session's file
 * @vma: the new mapping
 *
 * Return: -ENOTCONN if unbound; -EPERM for PROT_WRITE or PROT_EXEC;
 * -EINVAL unless MAP_SHARED at offset 0 for exactly map_size bytes;
 * -EBUSY if a mapping of this session already exists.
 */
int mmk_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mmk_session *s = file->private_data;
	struct mmk_pool *pool = mmk_session_pool(s);

	if (!pool)
		return -ENOTCONN;
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EPERM;
	if (!(vma->vm_flags & VM_MAYSHARE) || vma->vm_pgoff ||
	    vma->vm_end - vma->vm_start != pool->map_size)
		return -EINVAL;
	if (atomic_cmpxchg(&s->nr_maps, 0, 1))
		return -EBUSY;

	vm_flags_mod(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP,
		     VM_MAYWRITE | VM_MAYEXEC);
	vma->vm_ops = &mmk_vm_ops;
	return 0;
}
