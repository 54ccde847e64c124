/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the management tests (netlink_test, mmkctl_test):
 * pools with known ids, child processes under other identities, a writer
 * that can be killed while it holds a write guard, module parameters.
 */
#ifndef MMK_MGMT_H
#define MMK_MGMT_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmk_test.h"
#include "mmk_child.h"

#define NOBODY		65534
#define PARAM_DIR	"/sys/module/mmk/parameters/"
#define SYSFS_POOLS	"/sys/class/misc/mmk/pools"

/* Create a pool; returns the fd (or -errno) and sets *id. */
static inline int mgmt_create(const char *name, uint32_t payload_size, uint32_t capacity,
			      uint32_t mode, uint64_t type, uint32_t *id)
{
	return mmk_create_id(name, payload_size, capacity, mode, type, 0, id);
}

static inline int mgmt_store(int fd, uint64_t seq, uint64_t *token)
{
	char payload[8] = "mgmt";

	return mmk_store_seq(fd, payload, sizeof(payload), seq, token);
}

/*
 * Take every id of uid/gid, with the device's group as the only
 * supplementary group (drops capabilities).
 */
static inline int mgmt_become(uid_t uid, gid_t gid)
{
	if (mmk_setgroups_permitted(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
		return -errno;
	return 0;
}

/*
 * A process that attaches to pool @name, takes the write guard on @token
 * and waits to be killed.  Returns its pid once it holds the guard, or -1.
 */
static inline pid_t mgmt_start_writer(const char *name, uint64_t type, uint64_t token)
{
	int pfd[2];
	pid_t pid;
	char c;

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	pid = start_child();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct mmk_guard g;
		int fd = mmk_attach(name, type);

		close(pfd[0]);
		if (fd < 0 || mmk_guard(fd, MMK_IOC_READ_MUT, token, &g))
			_exit(1);
		if (write(pfd[1], "w", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1) {
		close(pfd[0]);
		wait_child(pid);
		return -1;
	}
	close(pfd[0]);
	return pid;
}

/* Kill the writer; once waitpid returns, its session is gone. */
static inline int mgmt_kill_writer(pid_t pid)
{
	if (kill(pid, SIGKILL))
		return -errno;
	return wait_child(pid) == 128 + SIGKILL ? 0 : -ECHILD;
}

static inline int mgmt_read_ulong(const char *path, unsigned long *val)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	*val = strtoul(buf, NULL, 10);
	return 0;
}

static inline int mgmt_write_ulong(const char *path, unsigned long val)
{
	char buf[32];
	int fd, len, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%lu\n", val);
	if (write(fd, buf, len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

static inline double mgmt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif /* MMK_MGMT_H */
