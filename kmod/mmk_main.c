// SPDX-License-Identifier: GPL-2.0
/*
 * mmk: kernel-mediated zero-copy message pools.
 *
 * This file holds the module's limits, the /dev/mmk misc device and the
 * ioctl dispatcher, which copies arguments in and out and leaves the work
 * to mmk_pool.c, mmk_session.c and mmk_slot.c.
 */
#include <linux/device.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mmk_internal.h"

unsigned int mmk_max_pools = 256;
module_param_named(max_pools, mmk_max_pools, uint, 0644);
MODULE_PARM_DESC(max_pools, "Live pools at once (default 256)");

unsigned long mmk_max_pool_bytes = 64UL << 20;
module_param_named(max_pool_bytes, mmk_max_pool_bytes, ulong, 0644);
MODULE_PARM_DESC(max_pool_bytes, "Bytes allocated for one pool (default 64 MiB)");

unsigned long mmk_max_total_bytes = 256UL << 20;
module_param_named(max_total_bytes, mmk_max_total_bytes, ulong, 0644);
MODULE_PARM_DESC(max_total_bytes, "Bytes allocated for all pools and sessions (default 256 MiB)");

unsigned int mmk_max_capacity = 65536;
module_param_named(max_capacity, mmk_max_capacity, uint, 0644);
MODULE_PARM_DESC(max_capacity, "Slots of one pool (default 65536, at most 1048576)");

unsigned int mmk_max_payload_size = 16U << 20;
module_param_named(max_payload_size, mmk_max_payload_size, uint, 0644);
MODULE_PARM_DESC(max_payload_size, "Payload bytes of one slot (default 16 MiB)");

unsigned int mmk_max_guards_per_session = 1024;
module_param_named(max_guards_per_session, mmk_max_guards_per_session, uint, 0644);
MODULE_PARM_DESC(max_guards_per_session, "Guards one session holds at once (default 1024)");

unsigned int mmk_max_readers_per_slot = 1024;
module_param_named(max_readers_per_slot, mmk_max_readers_per_slot, uint, 0644);
MODULE_PARM_DESC(max_readers_per_slot, "Shared guards on one slot at once (default 1024)");

unsigned int mmk_max_batch_ops = 1024;
module_param_named(max_batch_ops, mmk_max_batch_ops, uint, 0644);
MODULE_PARM_DESC(max_batch_ops, "Operations in one MMK_IOC_BATCH or MMK_IOC_POP (default 1024)");

unsigned int mmk_max_queue_items = 4096;
module_param_named(max_queue_items, mmk_max_queue_items, uint, 0644);
MODULE_PARM_DESC(max_queue_items, "Hard cap in messages of one queue (default 4096)");

unsigned int mmk_max_queues_per_pool = 64;
module_param_named(max_queues_per_pool, mmk_max_queues_per_pool, uint, 0644);
MODULE_PARM_DESC(max_queues_per_pool, "Live queues of one pool (default 64)");

/*
 * Who may open /dev/mmk at all: owner root, group root until udev gives it
 * the group of its rule (udev/60-mmk.rules: group mmk).  Access to each
 * pool is then checked at attach, like a file's mode.  Read at load only.
 */
static unsigned short mmk_dev_mode = 0660;
module_param_named(dev_mode, mmk_dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "Mode of /dev/mmk, at most 0666 (default 0660)");

/*
 * Argument structs may grow at the end: accept any size from the current
 * one up, as long as the bytes we do not know are zero.
 */
static int mmk_args_in(void *karg, size_t ksize, void __user *uarg, size_t usize)
{
	if (usize < ksize)
		return -EINVAL;
	return copy_struct_from_user(karg, ksize, uarg, usize);
}

/* Copy results out; a larger user struct gets its unknown tail zeroed. */
static int mmk_args_out(void __user *uarg, size_t usize, const void *karg, size_t ksize)
{
	if (copy_to_user(uarg, karg, ksize))
		return -EFAULT;
	if (usize > ksize && clear_user(uarg + ksize, usize - ksize))
		return -EFAULT;
	return 0;
}

/*
 * Bind @s to @pool, whose hold words are reserved, unless @ret (the copy
 * out of the pool id) failed; on any failure give both back.
 */
static int mmk_bind_or_undo(struct mmk_session *s, struct mmk_pool *pool, int ret)
{
	if (!ret)
		ret = mmk_session_bind(s, pool);
	if (ret) {
		mmk_charge_release(mmk_hold_bytes(pool));
		mmk_pool_put(pool);
	}
	return ret;
}

/*
 * Create and attach run under the session's bind_lock, so a session binds
 * once, and a pool created by a call that then fails was never attachable.
 */
static long mmk_ioctl_create(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_pool_create args;
	struct mmk_pool *pool;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;

	mutex_lock(&s->bind_lock);
	if (s->pool) {
		ret = -EISCONN;
		goto unlock;
	}
	ret = mmk_pool_create(&args, &pool);
	if (ret)
		goto unlock;
	args.pool_id = pool->id;
	ret = mmk_bind_or_undo(s, pool, mmk_args_out(uarg, usize, &args, sizeof(args)));
	if (!ret)
		mmk_pool_publish(pool);
unlock:
	mutex_unlock(&s->bind_lock);
	return ret;
}

static long mmk_ioctl_attach(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_pool_attach args;
	struct mmk_pool *pool;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;

	mutex_lock(&s->bind_lock);
	if (s->pool) {
		ret = -EISCONN;
		goto unlock;
	}
	ret = mmk_pool_attach(&args, &pool);
	if (ret)
		goto unlock;
	args.pool_id = pool->id;
	ret = mmk_bind_or_undo(s, pool, mmk_args_out(uarg, usize, &args, sizeof(args)));
unlock:
	mutex_unlock(&s->bind_lock);
	return ret;
}

static_assert(offsetof(struct mmk_pool_info, pool_bytes) == MMK_POOL_INFO_SIZE_VER0);

/* All out: a caller's struct may be any size from the first version up. */
static long mmk_ioctl_pool_info(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_pool_info info;

	if (usize < MMK_POOL_INFO_SIZE_VER0)
		return -EINVAL;
	mmk_pool_fill_info(s->pool, &info);
	return mmk_args_out(uarg, usize, &info, min(usize, sizeof(info)));
}

static long mmk_ioctl_store(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_msg_header h;
	struct mmk_store args;
	u32 idx;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;
	ret = mmk_store_prepare(s, &args, &idx, &h);
	if (ret)
		return ret;
	/* The token reaches the caller before the message becomes reachable. */
	ret = mmk_args_out(uarg, usize, &args, sizeof(args));
	if (ret) {
		mmk_store_abort(s->pool, idx);
		return ret;
	}
	mmk_store_publish(s->pool, idx, &h);
	return 0;
}

static long mmk_ioctl_guard(struct mmk_session *s, void __user *uarg, size_t usize, bool write)
{
	struct mmk_release undo = {};
	struct mmk_guard args;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;
	ret = mmk_guard_acquire(s, &args, write);
	if (ret)
		return ret;
	ret = mmk_args_out(uarg, usize, &args, sizeof(args));
	if (ret) {
		/* The caller cannot know it holds the guard: give it back. */
		undo.token = args.token;
		if (write)
			mmk_write_release(s, &undo);
		else
			mmk_read_release(s, &undo);
	}
	return ret;
}

static long mmk_ioctl_read(struct mmk_session *s, void __user *uarg, size_t usize)
{
	return mmk_ioctl_guard(s, uarg, usize, false);
}

static long mmk_ioctl_read_mut(struct mmk_session *s, void __user *uarg, size_t usize)
{
	return mmk_ioctl_guard(s, uarg, usize, true);
}

static long mmk_ioctl_read_release(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_release args;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	return ret ? ret : mmk_read_release(s, &args);
}

static long mmk_ioctl_write_release(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_release args;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	return ret ? ret : mmk_write_release(s, &args);
}

static long mmk_ioctl_free(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_free args;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	return ret ? ret : mmk_free(s, &args);
}

static long mmk_ioctl_loan(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_release undo = {};
	struct mmk_loan args;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;
	ret = mmk_loan(s, &args);
	if (ret)
		return ret;
	ret = mmk_args_out(uarg, usize, &args, sizeof(args));
	if (ret) {
		/* The caller cannot know the token: cancel the loan. */
		undo.token = args.token;
		mmk_write_release(s, &undo);
	}
	return ret;
}

/* The ops may have run even if the header cannot be written back. */
static long mmk_ioctl_batch(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_batch args;
	int ret, out;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;
	ret = mmk_batch_run(s, &args);
	if (ret == -EINVAL || ret == -EDQUOT)
		return ret;
	out = mmk_args_out(uarg, usize, &args, sizeof(args));
	return ret ? ret : out;
}

/* The descriptor is installed only once nothing can fail any more. */
static long mmk_ioctl_queue_open(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_queue_open args;
	struct file *file;
	int ret, fd;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;
	ret = mmk_queue_open(s, &args, &file);
	if (ret)
		return ret;
	fd = get_unused_fd_flags(O_RDWR | (args.flags & MMK_QUEUE_CLOEXEC ? O_CLOEXEC : 0));
	if (fd < 0) {
		fput(file);
		return fd;
	}
	args.fd = fd;
	ret = mmk_args_out(uarg, usize, &args, sizeof(args));
	if (ret) {
		put_unused_fd(fd);
		fput(file);
		return ret;
	}
	fd_install(fd, file);
	return 0;
}

/*
 * A push that happened cannot be taken back: if its results cannot be
 * written out, the caller still gets EFAULT, and the message is queued.
 */
static long mmk_ioctl_push(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_push args;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;
	ret = mmk_push(s, &args, NULL);
	if (ret)
		return ret;
	return mmk_args_out(uarg, usize, &args, sizeof(args));
}

static long mmk_ioctl_pop(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_pop args;
	int ret, out;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (ret)
		return ret;
	ret = mmk_pop(s, &args);
	if (ret && ret != -EFAULT)
		return ret;
	/* The messages written out are the caller's even if @count is not. */
	out = mmk_args_out(uarg, usize, &args, sizeof(args));
	return ret ? ret : out;
}

static long mmk_ioctl_queue_peek(struct mmk_session *s, void __user *uarg, size_t usize)
{
	struct mmk_queue_peek args;
	int ret;

	ret = mmk_args_in(&args, sizeof(args), uarg, usize);
	if (!ret)
		ret = mmk_queue_peek(s, &args);
	return ret ? ret : mmk_args_out(uarg, usize, &args, sizeof(args));
}

typedef long (*mmk_ioctl_fn)(struct mmk_session *s, void __user *uarg, size_t usize);

static const struct mmk_ioctl_desc {
	unsigned int cmd;
	bool needs_pool;
	mmk_ioctl_fn fn;
} mmk_ioctls[] = {
	[_IOC_NR(MMK_IOC_CREATE)]	 = { MMK_IOC_CREATE, false, mmk_ioctl_create },
	[_IOC_NR(MMK_IOC_ATTACH)]	 = { MMK_IOC_ATTACH, false, mmk_ioctl_attach },
	[_IOC_NR(MMK_IOC_POOL_INFO)]	 = { MMK_IOC_POOL_INFO, true, mmk_ioctl_pool_info },
	[_IOC_NR(MMK_IOC_STORE)]	 = { MMK_IOC_STORE, true, mmk_ioctl_store },
	[_IOC_NR(MMK_IOC_READ)]		 = { MMK_IOC_READ, true, mmk_ioctl_read },
	[_IOC_NR(MMK_IOC_READ_MUT)]	 = { MMK_IOC_READ_MUT, true, mmk_ioctl_read_mut },
	[_IOC_NR(MMK_IOC_PEEK_HEADER)]	 = { MMK_IOC_PEEK_HEADER, true, mmk_ioctl_read },
	[_IOC_NR(MMK_IOC_READ_RELEASE)]	 = { MMK_IOC_READ_RELEASE, true, mmk_ioctl_read_release },
	[_IOC_NR(MMK_IOC_WRITE_RELEASE)] = { MMK_IOC_WRITE_RELEASE, true, mmk_ioctl_write_release },
	[_IOC_NR(MMK_IOC_FREE)]		 = { MMK_IOC_FREE, true, mmk_ioctl_free },
	[_IOC_NR(MMK_IOC_LOAN)]		 = { MMK_IOC_LOAN, true, mmk_ioctl_loan },
	[_IOC_NR(MMK_IOC_BATCH)]	 = { MMK_IOC_BATCH, true, mmk_ioctl_batch },
	[_IOC_NR(MMK_IOC_QUEUE_OPEN)]	 = { MMK_IOC_QUEUE_OPEN, true, mmk_ioctl_queue_open },
	[_IOC_NR(MMK_IOC_PUSH)]		 = { MMK_IOC_PUSH, true, mmk_ioctl_push },
	[_IOC_NR(MMK_IOC_POP)]		 = { MMK_IOC_POP, true, mmk_ioctl_pop },
	[_IOC_NR(MMK_IOC_QUEUE_PEEK)]	 = { MMK_IOC_QUEUE_PEEK, true, mmk_ioctl_queue_peek },
};

/* Command bits other than the size must match exactly. */
#define MMK_IOC_NOSIZE(cmd)	((cmd) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

static long mmk_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct mmk_session *s = file->private_data;
	const struct mmk_ioctl_desc *desc;
	unsigned int nr = _IOC_NR(cmd);

	if (_IOC_TYPE(cmd) != MMK_IOC_MAGIC || nr >= ARRAY_SIZE(mmk_ioctls))
		return -ENOTTY;
	desc = &mmk_ioctls[array_index_nospec(nr, ARRAY_SIZE(mmk_ioctls))];
	if (!desc->fn || MMK_IOC_NOSIZE(cmd) != MMK_IOC_NOSIZE(desc->cmd))
		return -ENOTTY;
	if (desc->needs_pool && !mmk_session_pool(s))
		return -ENOTCONN;
	return desc->fn(s, (void __user *)arg, _IOC_SIZE(cmd));
}

static int mmk_open(struct inode *inode, struct file *file)
{
	struct mmk_session *s = mmk_session_new();

	if (!s)
		return -ENOMEM;
	/* The session's own offsets: see mmk_session.c. */
	file->f_mapping = s->mapping;
	file->private_data = s;
	return 0;
}

/* Every close of a descriptor of the session; see mmk_slot_drop_locked(). */
static int mmk_flush(struct file *file, fl_owner_t id)
{
	struct mmk_session *s = file->private_data;

	atomic_inc(&s->closes);
	return 0;
}

static int mmk_release(struct inode *inode, struct file *file)
{
	mmk_session_destroy(file->private_data);
	return 0;
}

static const struct file_operations mmk_fops = {
	.owner		= THIS_MODULE,
	.open		= mmk_open,
	.flush		= mmk_flush,
	.release	= mmk_release,
	.unlocked_ioctl	= mmk_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= mmk_mmap,
	.llseek		= noop_llseek,
};

static ssize_t pools_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", mmk_pool_count());
}
static DEVICE_ATTR_RO(pools);

static ssize_t bytes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", mmk_pool_bytes());
}
static DEVICE_ATTR_RO(bytes);

static struct attribute *mmk_attrs[] = {
	&dev_attr_pools.attr,
	&dev_attr_bytes.attr,
	NULL,
};
ATTRIBUTE_GROUPS(mmk);

static struct miscdevice mmk_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "mmk",
	.fops	= &mmk_fops,
	.groups	= mmk_groups,
	/* .mode is dev_mode, set at load */
};

static int __init mmk_init(void)
{
	int ret;

	if (mmk_dev_mode & ~0666) {
		pr_err("mmk: dev_mode %#o: only read and write bits may be set\n", mmk_dev_mode);
		return -EINVAL;
	}
	mmk_misc.mode = mmk_dev_mode;

	ret = mmk_pool_init();
	if (ret)
		return ret;
	ret = mmk_session_fs_init();
	if (ret)
		goto err_pool;
	/* Before the device: a pool's events need the family registered. */
	ret = mmk_netlink_init();
	if (ret)
		goto err_fs;
	ret = misc_register(&mmk_misc);
	if (ret)
		goto err_netlink;
	return 0;

err_netlink:
	mmk_netlink_exit();
err_fs:
	mmk_session_fs_exit();
err_pool:
	mmk_pool_exit();
	return ret;
}

static void __exit mmk_exit(void)
{
	/* No pool is left: each open file or mapping pins the module. */
	misc_deregister(&mmk_misc);
	mmk_netlink_exit();
	mmk_session_fs_exit();
	mmk_pool_exit();
}

module_init(mmk_init);
module_exit(mmk_exit);

MODULE_DESCRIPTION("Kernel-mediated zero-copy message pools");
MODULE_LICENSE("GPL");
