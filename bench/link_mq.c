// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "mq": a POSIX message queue per direction, one message per
 * mq_send() and mq_receive().  A queue holds up to min(depth, msg_max)
 * messages.  Linux limits messages to fs.mqueue.msgsize_max (8 KiB by
 * default) and the bytes of a user's queues to RLIMIT_MSGQUEUE (800 KiB):
 * as root, open() raises both (and msg_max) so that 1 MiB messages work.
 * The queues are unlinked at once; the descriptors, shared by fork, keep
 * them alive.  A zero-length message ends the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

#define MQ_DEPTH_MAX	64

struct mq_link {
	mqd_t q[DIR_COUNT];
	void *buf;
};

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Raise a sysctl to at least @want; failure is not an error here: mq_open
 * reports what is still too small. */
static void raise_sysctl(const char *path, long want)
{
	FILE *f;

	if (read_long(path) >= want)
		return;
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%ld\n", want);
		fclose(f);
	}
}

static void mq_raise_limits(size_t size)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	raise_sysctl("/proc/sys/fs/mqueue/msgsize_max", (long)size);
	raise_sysctl("/proc/sys/fs/mqueue/msg_max", MQ_DEPTH_MAX);
	if (setrlimit(RLIMIT_MSGQUEUE, &rl)) {
		/* Not root: as much as the hard limit allows. */
		if (!getrlimit(RLIMIT_MSGQUEUE, &rl)) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
	}
}

static void mq_link_close(struct bench_link *l)
{
	struct mq_link *m = l->priv;
	int d;

	if (!m)
		return;
	for (d = 0; d < DIR_COUNT; d++)
		if (m->q[d] != (mqd_t)-1)
			mq_close(m->q[d]);
	free(m->buf);
	free(m);
	l->priv = NULL;
}

static int mq_link_open(struct bench_link *l)
{
	struct mq_link *m = calloc(1, sizeof(*m));
	struct mq_attr attr = { 0 };
	char name[64];
	long msg_max;
	int d;

	if (!m)
		return -1;
	l->priv = m;
	for (d = 0; d < DIR_COUNT; d++)
		m->q[d] = (mqd_t)-1;
	m->buf = bench_alloc(l->size);
	if (!m->buf)
		goto fail;
	mq_raise_limits(l->size);
	msg_max = read_long("/proc/sys/fs/mqueue/msg_max");
	attr.mq_maxmsg = l->depth;
	if (msg_max > 0 && attr.mq_maxmsg > msg_max)
		attr.mq_maxmsg = msg_max;
	attr.mq_msgsize = (long)l->size;
	for (d = 0; d < DIR_COUNT; d++) {
		snprintf(name, sizeof(name), "/mmk-bench-%d-%d", (int)getpid(), d);
		m->q[d] = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
		if (m->q[d] == (mqd_t)-1)
			goto fail;
		mq_unlink(name);
	}
	return 0;
fail:
	mq_link_close(l);
	return -1;
}

static void mq_link_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx)
{
	struct mq_link *m = l->priv;
	int d;

	for (d = 0; d < DIR_COUNT; d++) {
		if (d != (int)tx && d != (int)rx && m->q[d] != (mqd_t)-1) {
			mq_close(m->q[d]);
			m->q[d] = (mqd_t)-1;
		}
	}
}

static int mq_link_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct mq_link *m = l->priv;
	int r;

	bench_fill(m->buf, l->size, seq);
	do {
		r = mq_send(m->q[dir], m->buf, l->size, 0);
	} while (r < 0 && errno == EINTR);
	return r;
}

static int mq_link_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct mq_link *m = l->priv;
	ssize_t r;

	do {
		r = mq_receive(m->q[dir], m->buf, l->size, NULL);
	} while (r < 0 && errno == EINTR);
	if (r <= 0)
		return (int)r;		/* 0: the end marker */
	if ((size_t)r != l->size) {
		errno = EMSGSIZE;
		return -1;
	}
	bench_check(m->buf, l->size, seq);
	return 1;
}

static int mq_link_end(struct bench_link *l, enum bench_dir dir)
{
	struct mq_link *m = l->priv;
	int r;

	do {
		r = mq_send(m->q[dir], m->buf, 0, 0);
	} while (r < 0 && errno == EINTR);
	return r;
}

const struct bench_link_ops link_mq = {
	.name = "mq",
	.peer = true,
	.pingpong = true,
	.open = mq_link_open,
	.keep = mq_link_keep,
	.send = mq_link_send,
	.recv = mq_link_recv,
	.end = mq_link_end,
	.close = mq_link_close,
};
