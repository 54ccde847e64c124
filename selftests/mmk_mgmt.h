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
#include <sys/ioctl.h>
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

/* Store an 8-byte message with header @flags, @deadline_ns and @qos. */
static inline int mgmt_store_hdr(int fd, uint32_t flags, uint64_t deadline_ns, uint8_t qos,
				 uint64_t *token)
{
	struct mmk_msg_header h = { .flags = flags, .deadline_ns = deadline_ns, .qos = qos };
	char payload[8] = "mgmt";
	struct mmk_store s = {
		.header = (uintptr_t)&h,
		.payload = (uintptr_t)payload,
		.payload_size = sizeof(payload),
	};
	int ret = mmk_ioctl(fd, MMK_IOC_STORE, &s);

	if (!ret)
		*token = s.token;
	return ret;
}

/*
 * Create (@create) or open queue @name ("" and @create: anonymous) through
 * session @fd.  Returns the queue's descriptor or -errno; sets *@id.
 */
static inline int mgmt_queue(int fd, bool create, const char *name, uint32_t policy,
			     uint32_t cap_items, uint32_t soft_items, uint64_t cap_bytes,
			     uint32_t *id)
{
	struct mmk_queue_open q = {
		.flags = (create ? MMK_QUEUE_CREATE : 0) | MMK_QUEUE_CLOEXEC,
		.policy = policy,
		.cap_items = cap_items,
		.soft_items = soft_items,
		.cap_bytes = cap_bytes,
	};
	int ret;

	snprintf(q.name, sizeof(q.name), "%s", name);
	ret = mmk_ioctl(fd, MMK_IOC_QUEUE_OPEN, &q);
	if (ret)
		return ret;
	if (id)
		*id = q.queue_id;
	return q.fd;
}

/* Push @token to queue @qfd: 0 admitted, 1 dropped, or -errno. */
static inline int mgmt_push(int fd, int qfd, uint64_t token)
{
	struct mmk_push p = { .token = token, .nr_queues = 1, .queue_fds = { qfd } };
	int ret = mmk_ioctl(fd, MMK_IOC_PUSH, &p);

	return ret ? ret : (int)(p.dropped & 1);
}

/* Pop one message of queue @qfd as a read guard: 0 or -errno; sets *@token. */
static inline int mgmt_pop(int fd, int qfd, uint64_t *token)
{
	struct mmk_popped out = { 0 };
	struct mmk_pop p = { .queue_fd = qfd, .entries = (uintptr_t)&out, .max = 1 };
	int ret = mmk_ioctl(fd, MMK_IOC_POP, &p);

	if (!ret && token)
		*token = out.token;
	return ret;
}

/* Take a loan (an unpublished write guard): 0 or -errno. */
static inline int mgmt_loan(int fd, uint64_t *token)
{
	struct mmk_loan l = { 0 };
	int ret = mmk_ioctl(fd, MMK_IOC_LOAN, &l);

	if (!ret)
		*token = l.token;
	return ret;
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

/* What a holder process takes, then keeps until it is killed. */
struct mgmt_holding {
	const char *comm;	/* its command name (at most 15 bytes); NULL: unchanged */
	uid_t uid;		/* 0: stays root */
	unsigned int reads, headers, writes, loans, pops;
	uint64_t read_token, header_token, write_token;
	const char *queue;	/* the queue of the pool it pops from */
};

static inline void mgmt_hold(const char *pool, uint64_t type, const struct mgmt_holding *h,
			     int ready)
{
	struct mmk_guard g;
	unsigned int k;
	int fd, qfd = -1;
	uint64_t t;

	if (h->uid && mgmt_become(h->uid, h->uid))
		_exit(10);
	if (h->comm && prctl(PR_SET_NAME, h->comm))
		_exit(11);
	fd = mmk_attach(pool, type);
	if (fd < 0)
		_exit(12);
	for (k = 0; k < h->reads; k++)
		if (mmk_guard(fd, MMK_IOC_READ, h->read_token, &g))
			_exit(13);
	for (k = 0; k < h->headers; k++)
		if (mmk_guard(fd, MMK_IOC_PEEK_HEADER, h->header_token, &g))
			_exit(14);
	for (k = 0; k < h->writes; k++)
		if (mmk_guard(fd, MMK_IOC_READ_MUT, h->write_token, &g))
			_exit(15);
	for (k = 0; k < h->loans; k++)
		if (mgmt_loan(fd, &t))
			_exit(16);
	if (h->queue) {
		qfd = mgmt_queue(fd, false, h->queue, 0, 0, 0, 0, NULL);
		if (qfd < 0)
			_exit(17);
	}
	for (k = 0; k < h->pops; k++)
		if (mgmt_pop(fd, qfd, &t))
			_exit(18);
	if (write(ready, "h", 1) != 1)
		_exit(19);
	for (;;)
		pause();
}

/*
 * A process that attaches pool @pool as @h says, takes what it says and
 * waits to be killed (mgmt_kill_writer()).  Returns its pid once it holds
 * everything, or -1 (its exit status says which step failed).
 */
static inline pid_t mgmt_start_holder(const char *pool, uint64_t type,
				      const struct mgmt_holding *h)
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
		close(pfd[0]);
		mgmt_hold(pool, type, h, pfd[1]);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1) {
		close(pfd[0]);
		fprintf(stderr, "# holder %s exited with %d\n", h->comm ?: "", wait_child(pid));
		return -1;
	}
	close(pfd[0]);
	return pid;
}

/*
 * Start a holder for each of @rows, one after the other (so that they bind
 * in that order), with the tokens @tokens: [0] for read guards, [1] for
 * header guards, [2 + i] for row i's write guard.  0, or -1 if one failed.
 */
static inline int mgmt_start_holders(const char *pool, uint64_t type,
				     const struct mgmt_holding *rows, unsigned int n,
				     const uint64_t *tokens, pid_t *pids)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct mgmt_holding h = rows[i];

		h.read_token = tokens[0];
		h.header_token = tokens[1];
		h.write_token = tokens[2 + i];
		pids[i] = mgmt_start_holder(pool, type, &h);
		if (pids[i] < 0)
			return -1;
	}
	return 0;
}

/*
 * A process that attaches to pool @name, takes the write guard on @token
 * and waits to be killed.  Returns its pid once it holds the guard, or -1.
 */
static inline pid_t mgmt_start_writer(const char *name, uint64_t type, uint64_t token)
{
	const struct mgmt_holding h = { .writes = 1, .write_token = token };

	return mgmt_start_holder(name, type, &h);
}

/* The command name of this process. */
static inline void mgmt_comm(char *buf, size_t len)
{
	if (read_str("/proc/self/comm", buf, len))
		snprintf(buf, len, "?");
	buf[strcspn(buf, "\n")] = '\0';
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
