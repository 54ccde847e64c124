// SPDX-License-Identifier: GPL-2.0
/*
 * Mappings of a pool's arena.
 *
 * The arena mapping (offset 0) is read-only, and a process maps it once.
 * Pages are inserted one fault at a time as raw PFNs (VM_PFNMAP), so
 * get_user_pages() refuses them and nothing can pin the arena.  VM_MAYWRITE
 * and VM_MAYEXEC are cleared, so mprotect() can never make it writable or
 * executable.
 *
 * A window (offset MMK_WINDOW_OFFSET) maps one slot of a page-aligned pool
 * writable, for the holder of its write guard only; an arena window maps
 * every slot, each of them usable only under its write guard.  Its faults check the
 * guard and map the whole slot at once, and a write release unmaps it
 * (mmk_window_unmap), so the window dies with the guard.  It is
 * VM_DONTCOPY: a child never inherits it.  File offsets are the session's
 * own (mmk_session.c), so a window's offset need not name its pool, and
 * fits the 32-bit page offset of a 32-bit process's mmap2().
 *
 * Every VMA holds the session's file, and so the pool, alive.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/vmalloc.h>

#include "mmk_internal.h"
#include "mmk_compat.h"

static struct mmk_session *mmk_vma_session(struct vm_area_struct *vma)
{
	return vma->vm_file->private_data;
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
	.fault	= mmk_vm_fault,
};

/* Does @mm already map the arena of @file (other than @new)?  mmap_lock held. */
static bool mmk_arena_mapped(struct mm_struct *mm, struct file *file,
			     struct vm_area_struct *new)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	lockdep_assert_held(&mm->mmap_lock);
	for_each_vma(vmi, vma)
		if (vma != new && vma->vm_file == file && vma->vm_ops == &mmk_vm_ops)
			return true;
	return false;
}

/*
 * Map every page of the slot that @vmf's VMA covers, the faulting page
 * first, so a writer takes one fault per guard rather than one per page.
 * @off is the arena offset of the faulting page, @slot_off of its slot.
 * A failure past the faulting page only leaves that page to a later fault.
 */
static vm_fault_t mmk_window_fill(struct vm_fault *vmf, struct mmk_pool *pool, u64 off,
				  u64 slot_off)
{
	struct vm_area_struct *vma = vmf->vma;
	unsigned long fault_addr = vmf->address & PAGE_MASK;
	/* File page offset of the slot's first page. */
	u64 base = vmf->pgoff - ((off - slot_off) >> PAGE_SHIFT);
	u32 i, pages = pool->slot_size >> PAGE_SHIFT;
	unsigned long addr;
	vm_fault_t ret;

	ret = vmf_insert_pfn(vma, fault_addr, vmalloc_to_pfn(pool->arena + off));
	if (ret != VM_FAULT_NOPAGE)
		return ret;
	for (i = 0; i < pages; i++) {
		if (base + i < vma->vm_pgoff)
			continue;
		addr = vma->vm_start + ((base + i - vma->vm_pgoff) << PAGE_SHIFT);
		if (addr >= vma->vm_end)
			break;
		if (addr == fault_addr)
			continue;
		if (vmf_insert_pfn(vma, addr,
				   vmalloc_to_pfn(pool->arena + slot_off +
						  ((u64)i << PAGE_SHIFT))) != VM_FAULT_NOPAGE)
			break;
	}
	return ret;
}

static vm_fault_t mmk_window_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mmk_session *s = mmk_vma_session(vma);
	struct mmk_pool *pool = s->pool;
	/* The file offset encodes the arena offset, even in a split VMA. */
	u64 off = ((u64)vmf->pgoff << PAGE_SHIFT) & MMK_WINDOW_OFFSET_MASK;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct mmk_slot *slot;
	bool held;
	u32 idx;

	if (off >= pool->map_size || off / pool->slot_size >= pool->capacity)
		return VM_FAULT_SIGBUS;
	idx = array_index_nospec(off / pool->slot_size, pool->capacity);
	slot = pool->slots[idx];

	down_read(&pool->window_lock);
	spin_lock(&slot->lock);
	held = s->holds[idx] & MMK_HOLD_WRITE;
	/* A window VMA may outlive a guard and fault again under the next. */
	if (held)
		slot->windowed = true;
	spin_unlock(&slot->lock);
	if (held)
		ret = mmk_window_fill(vmf, pool, off, (u64)idx * pool->slot_size);
	up_read(&pool->window_lock);
	return ret;
}

static const struct vm_operations_struct mmk_window_vm_ops = {
	.fault	= mmk_window_fault,
};

/*
 * Map a writable window on a slot whose write guard the session holds, or
 * on the whole arena (offset 0, map_size bytes): a slot of an arena window
 * faults in only while the session holds its write guard, and one zap
 * then covers the windows of many slots (mmk_window_unmap_span).
 */
static int mmk_window_mmap(struct mmk_session *s, struct mmk_pool *pool,
			   struct vm_area_struct *vma)
{
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT, len = vma->vm_end - vma->vm_start;
	struct mmk_slot *slot;
	bool held, arena;
	u32 idx;

	if (!(pool->flags & MMK_POOL_PAGE_ALIGNED) || off >> MMK_WINDOW_SHIFT != 1)
		return -EINVAL;
	off &= MMK_WINDOW_OFFSET_MASK;
	arena = !off && len == pool->map_size;
	if (!arena && (off % pool->slot_size || off >= pool->map_size ||
		       len != pool->slot_size))
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;

	if (!arena) {
		idx = array_index_nospec(off / pool->slot_size, pool->capacity);
		slot = pool->slots[idx];
		spin_lock(&slot->lock);
		held = s->holds[idx] & MMK_HOLD_WRITE;
		if (held)
			slot->windowed = true;
		spin_unlock(&slot->lock);
		if (!held)
			return -EACCES;
	}

	vm_flags_mod(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY,
		     VM_MAYEXEC);
	vma->vm_ops = &mmk_window_vm_ops;
	return 0;
}

/**
 * mmk_window_unmap - make a slot's writable window unusable
 * @s: the session whose write guard on @idx is being released
 * @idx: the slot
 *
 * The guard must already be out of the session's hold word, so faults
 * refuse; this waits for faults in flight and zaps every window page.
 */
void mmk_window_unmap(struct mmk_session *s, u32 idx)
{
	mmk_window_unmap_span(s, idx, idx);
}

/**
 * mmk_window_unmap_span - mmk_window_unmap() of slots @first to @last at once
 * @s: the session whose write guards on some of those slots are released
 * @first: the first slot
 * @last: the last slot
 *
 * One pass for a batch of commits: windows of slots in between that are
 * still held are zapped too, and fault again when next touched.
 */
void mmk_window_unmap_span(struct mmk_session *s, u32 first, u32 last)
{
	struct mmk_pool *pool = s->pool;

	down_write(&pool->window_lock);
	unmap_mapping_range(s->mapping,
			    MMK_WINDOW_OFFSET((u64)first * pool->slot_size),
			    (u64)(last - first + 1) * pool->slot_size, 1);
	up_write(&pool->window_lock);
}

/**
 * mmk_mmap - map the bound pool's arena read-only, once per session
 * @file: the session's file
 * @vma: the new mapping
 *
 * Return: -ENOTCONN if unbound; -EPERM for PROT_WRITE or PROT_EXEC;
 * -EINVAL unless MAP_SHARED at offset 0 for exactly map_size bytes;
 * -EBUSY if this process already maps the session's arena (a process that
 * received the fd, or a forked child that unmapped its copy, may map it).
 * Offsets other than 0 map a window (mmk_window_mmap); -EACCES without the
 * write guard.
 */
int mmk_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mmk_session *s = file->private_data;
	struct mmk_pool *pool = mmk_session_pool(s);

	if (!pool)
		return -ENOTCONN;
	if (vma->vm_pgoff)
		return mmk_window_mmap(s, pool, vma);
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EPERM;
	if (!(vma->vm_flags & VM_MAYSHARE) ||
	    vma->vm_end - vma->vm_start != pool->map_size)
		return -EINVAL;
	if (mmk_arena_mapped(vma->vm_mm, file, vma))
		return -EBUSY;

	vm_flags_mod(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP,
		     VM_MAYWRITE | VM_MAYEXEC);
	vma->vm_ops = &mmk_vm_ops;
	return 0;
}
