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

/* Open /dev/mmk and attach to a named pool.  Returns the fd or -errno. */
static inline int mmk_attach(const char *name, uint64_t type)
{
	struct mmk_pool_attach a = { .payload_type = type };
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

#endif /* MMK_TEST_H */
