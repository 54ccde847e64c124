/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the mmk selftests.  Each helper returns what the
 * syscall returned, with errno intact, so a test can assert on both.
 */
#ifndef MMK_TEST_H
#define MMK_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/mmk.h>

/* ioctl() that returns -errno instead of -1, so ASSERT_EQ(-EBUSY, ...) reads well. */
static inline int mmk_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int mmk_open(void)
{
	return open(MMK_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

/*
 * The inode number of the IPC namespace of this process, which names it in
 * netlink's IPC_NS attribute; 0 if /proc is not there.
 */
static inline uint32_t mmk_self_ipc_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/ipc", &st) ? 0 : (uint32_t)st.st_ino;
}

/*
 * The group that may open /dev/mmk (udev/60-mmk.rules gives it group mmk,
 * mode 0660), or (gid_t)-1 if the device is open to others anyway or
 * missing.
 */
static inline gid_t mmk_dev_gid(void)
{
	struct stat st;

	if (stat(MMK_DEVICE_PATH, &st) || (st.st_mode & 0006) == 0006)
		return (gid_t)-1;
	return st.st_gid;
}

/*
 * setgroups() for a process that stands for a permitted user of mmk: the
 * @n groups of @groups (at most 15), plus the device's group.  Tests of
 * who may attach to a pool drop privileges this way; a test of who may
 * open the device calls setgroups() itself.
 */
static inline int mmk_setgroups_permitted(size_t n, const gid_t *groups)
{
	gid_t all[16];
	gid_t dev = mmk_dev_gid();
	size_t i;

	if (n >= sizeof(all) / sizeof(all[0])) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		all[i] = groups[i];
	if (dev != (gid_t)-1)
		all[n++] = dev;
	return setgroups(n, all);
}

/*
 * Open /dev/mmk and create a pool.  name may be NULL (anonymous).
 * Returns the fd, or -errno with nothing left open; sets *id (if not
 * NULL) to the new pool's id.
 */
static inline int mmk_create_id(const char *name, uint32_t payload_size, uint32_t capacity,
				uint32_t mode, uint64_t type, uint32_t flags, uint32_t *id)
{
	struct mmk_pool_create c = {
		.flags = flags,
		.payload_size = payload_size,
		.capacity = capacity,
		.mode = mode,
		.payload_type = type,
		.memory_class = MMK_MEM_HOST,
	};
	int fd, ret;

	if (name)
		snprintf(c.name, sizeof(c.name), "%s", name);
	fd = mmk_open();
	if (fd < 0)
		return -errno;
	ret = mmk_ioctl(fd, MMK_IOC_CREATE, &c);
	if (ret) {
		close(fd);
		return ret;
	}
	if (id)
		*id = c.pool_id;
	return fd;
}

static inline int mmk_create(const char *name, uint32_t payload_size, uint32_t capacity,
			     uint32_t mode, uint64_t type, uint32_t flags)
{
	return mmk_create_id(name, payload_size, capacity, mode, type, flags, NULL);
}

/*
 * Open /dev/mmk and attach to a named pool, with MMK_ATTACH_* flags and
 * the owner uid they may need.  Returns the fd or -errno.
 */
static inline int mmk_attach_owner(const char *name, uint64_t type, uint32_t flags,
				   uint32_t owner)
{
	struct mmk_pool_attach a = { .flags = flags, .owner_uid = owner, .payload_type = type };
	int fd, ret;

	snprintf(a.name, sizeof(a.name), "%s", name);
	fd = mmk_open();
	if (fd < 0)
		return -errno;
	ret = mmk_ioctl(fd, MMK_IOC_ATTACH, &a);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* Open /dev/mmk and attach to a named pool.  Returns the fd or -errno. */
static inline int mmk_attach(const char *name, uint64_t type)
{
	return mmk_attach_owner(name, type, 0, 0);
}

static inline int mmk_info(int fd, struct mmk_pool_info *info)
{
	memset(info, 0, sizeof(*info));
	return mmk_ioctl(fd, MMK_IOC_POOL_INFO, info);
}

/* Map the whole arena read-only.  Returns MAP_FAILED on error, errno set. */
static inline void *mmk_map(int fd, size_t *len)
{
	struct mmk_pool_info info;

	if (mmk_info(fd, &info))
		return MAP_FAILED;
	*len = info.map_size;
	return mmap(NULL, info.map_size, PROT_READ, MAP_SHARED, fd, 0);
}

/* Store payload with a header whose sequence is seq.  0 or -errno. */
static inline int mmk_store_seq(int fd, const void *payload, uint32_t size, uint64_t seq,
				uint64_t *token)
{
	struct mmk_msg_header h = { .sequence = seq, .qos = MMK_QOS_BEST_EFFORT };
	struct mmk_store s = {
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)payload,
		.payload_size = size,
	};
	int ret = mmk_ioctl(fd, MMK_IOC_STORE, &s);

	if (!ret)
		*token = s.token;
	return ret;
}

/* Take a guard of kind cmd (MMK_IOC_READ, _READ_MUT, _PEEK_HEADER). */
static inline int mmk_guard(int fd, unsigned long cmd, uint64_t token, struct mmk_guard *g)
{
	memset(g, 0, sizeof(*g));
	g->token = token;
	return mmk_ioctl(fd, cmd, g);
}

static inline int mmk_read_release(int fd, uint64_t token)
{
	struct mmk_release r = { .token = token };

	return mmk_ioctl(fd, MMK_IOC_READ_RELEASE, &r);
}

static inline int mmk_write_release(int fd, uint64_t token)
{
	struct mmk_release r = { .token = token };

	return mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r);
}

static inline int mmk_free_token(int fd, uint64_t token)
{
	struct mmk_free f = { .token = token };

	return mmk_ioctl(fd, MMK_IOC_FREE, &f);
}

/* The message at offset in a mapping. */
static inline const struct mmk_msg_header *mmk_at(const void *map, uint64_t offset)
{
	return (const struct mmk_msg_header *)((const char *)map + offset);
}

static inline const unsigned char *mmk_payload(const void *map, uint64_t offset)
{
	return (const unsigned char *)map + offset + sizeof(struct mmk_msg_header);
}

/*
 * Read a sysfs, debugfs or procfs file into buf, without its trailing
 * newline and spaces.  0 or -errno.
 */
static inline int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* Write value to a sysfs, debugfs or procfs file.  0 or -errno. */
static inline int write_str(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* ---- queues ---------------------------------------------------------------- */

#define MMK_PARAM_DIR	"/sys/module/mmk/parameters/"

/* Read a module parameter (MMK_PARAM_DIR NAME); 0 if unreadable. */
static inline unsigned long mmk_param(const char *name)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), MMK_PARAM_DIR "%s", name);
	if (read_str(path, buf, sizeof(buf)))
		return 0;
	return strtoul(buf, NULL, 0);
}

/* A module parameter's value, or ~0 if it cannot be read. */
static inline unsigned long long mmk_param_u64(const char *name)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), MMK_PARAM_DIR "%s", name);
	return read_str(path, buf, sizeof(buf)) ? ~0ULL : strtoull(buf, NULL, 0);
}

/* Module parameters a test changed, with their old values, newest last. */
#define MMK_PARAMS_MAX	8
struct mmk_params {
	int n;
	struct {
		char name[48];
		char value[32];
	} saved[MMK_PARAMS_MAX];
};

/* Set a module parameter, remembering its old value.  0 or -errno. */
static inline int mmk_param_set(struct mmk_params *p, const char *name, unsigned long value)
{
	char path[128], old[32], val[32];
	int ret;

	if (p->n >= MMK_PARAMS_MAX)
		return -ENOSPC;
	snprintf(path, sizeof(path), MMK_PARAM_DIR "%s", name);
	ret = read_str(path, old, sizeof(old));
	if (ret)
		return ret;
	snprintf(val, sizeof(val), "%lu", value);
	ret = write_str(path, val);
	if (ret)
		return ret;
	snprintf(p->saved[p->n].name, sizeof(p->saved[0].name), "%s", name);
	snprintf(p->saved[p->n].value, sizeof(p->saved[0].value), "%s", old);
	p->n++;
	return 0;
}

/* Put back every parameter mmk_param_set() changed, newest first.  0 or the last -errno. */
static inline int mmk_params_restore(struct mmk_params *p)
{
	char path[128];
	int ret = 0, err;

	while (p->n > 0) {
		p->n--;
		snprintf(path, sizeof(path), MMK_PARAM_DIR "%s", p->saved[p->n].name);
		err = write_str(path, p->saved[p->n].value);
		if (err)
			ret = err;
	}
	return ret;
}

/*
 * Create a queue of the session's pool.  name may be NULL (anonymous).
 * Returns the queue's new fd, or -errno; sets *id (if not NULL).
 */
static inline int mmk_queue_create_id(int fd, const char *name, uint32_t policy,
				      uint32_t cap_items, uint32_t soft_items,
				      uint64_t cap_bytes, uint64_t soft_bytes, uint32_t *id)
{
	struct mmk_queue_open o = {
		.flags = MMK_QUEUE_CREATE | MMK_QUEUE_CLOEXEC,
		.policy = policy,
		.cap_items = cap_items,
		.soft_items = soft_items,
		.cap_bytes = cap_bytes,
		.soft_bytes = soft_bytes,
		.fd = -1,
	};
	int ret;

	if (name)
		snprintf(o.name, sizeof(o.name), "%s", name);
	ret = mmk_ioctl(fd, MMK_IOC_QUEUE_OPEN, &o);
	if (ret)
		return ret;
	if (id)
		*id = o.queue_id;
	return o.fd;
}

static inline int mmk_queue_create(int fd, const char *name, uint32_t policy,
				   uint32_t cap_items, uint32_t soft_items)
{
	return mmk_queue_create_id(fd, name, policy, cap_items, soft_items, 0, 0, NULL);
}

/* Open a named queue of the session's pool: a new fd, or -errno. */
static inline int mmk_queue_open_name(int fd, const char *name)
{
	struct mmk_queue_open o = { .flags = MMK_QUEUE_CLOEXEC, .fd = -1 };
	int ret;

	snprintf(o.name, sizeof(o.name), "%s", name);
	ret = mmk_ioctl(fd, MMK_IOC_QUEUE_OPEN, &o);
	return ret ? ret : o.fd;
}

static inline int mmk_queue_info(int qfd, struct mmk_queue_info *qi)
{
	memset(qi, 0, sizeof(*qi));
	return mmk_ioctl(qfd, MMK_IOC_QUEUE_INFO, qi);
}

/* Messages a queue holds now, or -errno. */
static inline long mmk_queue_items(int qfd)
{
	struct mmk_queue_info qi;
	int ret = mmk_queue_info(qfd, &qi);

	return ret ? ret : (long)qi.items;
}

/*
 * Push token to the n queues in qfds.  p (if not NULL) receives the whole
 * argument back: dropped, evicted.  0 or -errno.
 */
static inline int mmk_push_to(int fd, uint64_t token, const int *qfds, uint32_t n,
			      uint32_t flags, uint64_t timeout_ns, struct mmk_push *p)
{
	struct mmk_push tmp, *a = p ? p : &tmp;
	uint32_t i;

	memset(a, 0, sizeof(*a));
	a->token = token;
	a->flags = flags;
	a->nr_queues = n;
	a->timeout_ns = timeout_ns;
	for (i = 0; i < n && i < MMK_PUSH_MAX_QUEUES; i++)
		a->queue_fds[i] = qfds[i];
	return mmk_ioctl(fd, MMK_IOC_PUSH, a);
}

static inline int mmk_push(int fd, uint64_t token, int qfd)
{
	return mmk_push_to(fd, token, &qfd, 1, 0, 0, NULL);
}

/* Store header h (NULL: a default one) and payload, and push to qfd in one call. */
static inline int mmk_store_push(int fd, int qfd, const struct mmk_msg_header *h,
				 const void *payload, uint32_t size, uint64_t *token)
{
	struct mmk_msg_header def = { .qos = MMK_QOS_BEST_EFFORT };
	struct mmk_push p = {
		.flags = MMK_PUSH_STORE,
		.nr_queues = 1,
		.queue_fds = { qfd },
		.header = (uintptr_t)(h ? h : &def),
		.payload = (uintptr_t)payload,
		.payload_size = size,
	};
	int ret = mmk_ioctl(fd, MMK_IOC_PUSH, &p);

	if (token)
		*token = ret ? MMK_TOKEN_INVALID : p.token;
	return ret;
}

/* Pop up to max messages into e; *count (if not NULL) how many.  0 or -errno. */
static inline int mmk_pop(int fd, int qfd, uint32_t flags, uint64_t timeout_ns,
			  struct mmk_popped *e, uint32_t max, uint32_t *count)
{
	struct mmk_pop p = {
		.queue_fd = qfd,
		.flags = flags,
		.timeout_ns = timeout_ns,
		.entries = (uintptr_t)e,
		.max = max,
	};
	int ret = mmk_ioctl(fd, MMK_IOC_POP, &p);

	if (count)
		*count = p.count;
	return ret;
}

/* Pop one message; e (if not NULL) receives it.  0 or -errno. */
static inline int mmk_pop1(int fd, int qfd, uint32_t flags, struct mmk_popped *e)
{
	struct mmk_popped tmp;

	return mmk_pop(fd, qfd, flags, 0, e ? e : &tmp, 1, NULL);
}

static inline int mmk_queue_peek(int fd, int qfd, uint32_t index, struct mmk_queue_peek *pk)
{
	memset(pk, 0, sizeof(*pk));
	pk->queue_fd = qfd;
	pk->index = index;
	return mmk_ioctl(fd, MMK_IOC_QUEUE_PEEK, pk);
}

/* Store with a full header of the caller's.  0 or -errno. */
static inline int mmk_store_hdr(int fd, const struct mmk_msg_header *h, const void *payload,
				uint32_t size, uint64_t *token)
{
	struct mmk_store s = {
		.header = (uintptr_t)h,
		.payload = (uintptr_t)payload,
		.payload_size = size,
	};
	int ret = mmk_ioctl(fd, MMK_IOC_STORE, &s);

	if (!ret)
		*token = s.token;
	return ret;
}

/* A number from a sysfs file such as /sys/class/misc/mmk/pools; ~0 if unreadable. */
static inline uint64_t sysfs_number(const char *path)
{
	char buf[64];

	if (read_str(path, buf, sizeof(buf)))
		return ~0ULL;
	return strtoull(buf, NULL, 0);
}

#endif /* MMK_TEST_H */
