// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "unix": a SOCK_SEQPACKET socket pair per direction, one
 * message per send() and recv().  A datagram must fit in the sender's
 * buffer, so the buffer is raised to hold the in-flight messages
 * (SO_SNDBUFFORCE as root, else SO_SNDBUF within net.core.wmem_max).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

struct unix_link {
	int sv[DIR_COUNT][2];	/* [dir][0] receiving end, [dir][1] sending end */
	void *buf;
};

static void unix_close(struct bench_link *l)
{
	struct unix_link *u = l->priv;
	int d;

	if (!u)
		return;
	for (d = 0; d < DIR_COUNT; d++) {
		bench_close_fd(&u->sv[d][0]);
		bench_close_fd(&u->sv[d][1]);
	}
	free(u->buf);
	free(u);
	l->priv = NULL;
}

static void unix_sndbuf(int fd, size_t size, unsigned int depth)
{
	size_t want = 2 * size * depth + 65536;
	int v;

	if (want > ((size_t)32 << 20))
		want = (size_t)32 << 20;
	v = (int)want;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)))
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

static int unix_open(struct bench_link *l)
{
	struct unix_link *u = calloc(1, sizeof(*u));
	int d;

	if (!u)
		return -1;
	l->priv = u;
	for (d = 0; d < DIR_COUNT; d++)
		u->sv[d][0] = u->sv[d][1] = -1;
	u->buf = bench_alloc(l->size);
	if (!u->buf)
		goto fail;
	for (d = 0; d < DIR_COUNT; d++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, u->sv[d]))
			goto fail;
		unix_sndbuf(u->sv[d][1], l->size, l->depth);
	}
	return 0;
fail:
	unix_close(l);
	return -1;
}

static void unix_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx)
{
	struct unix_link *u = l->priv;
	int d;

	for (d = 0; d < DIR_COUNT; d++) {
		if (d != (int)tx)
			bench_close_fd(&u->sv[d][1]);
		if (d != (int)rx)
			bench_close_fd(&u->sv[d][0]);
	}
}

static int unix_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct unix_link *u = l->priv;
	ssize_t r;

	bench_fill(u->buf, l->size, seq);
	do {
		r = send(u->sv[dir][1], u->buf, l->size, 0);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	if ((size_t)r != l->size) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

static int unix_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct unix_link *u = l->priv;
	ssize_t r;

	do {
		r = recv(u->sv[dir][0], u->buf, l->size, MSG_TRUNC);
	} while (r < 0 && errno == EINTR);
	if (r <= 0)
		return (int)r;
	if ((size_t)r != l->size) {
		errno = EMSGSIZE;
		return -1;
	}
	bench_check(u->buf, l->size, seq);
	return 1;
}

static int unix_end(struct bench_link *l, enum bench_dir dir)
{
	struct unix_link *u = l->priv;

	bench_close_fd(&u->sv[dir][1]);
	return 0;
}

const struct bench_link_ops link_unix = {
	.name = "unix",
	.peer = true,
	.pingpong = true,
	.open = unix_open,
	.keep = unix_keep,
	.send = unix_send,
	.recv = unix_recv,
	.end = unix_end,
	.close = unix_close,
};
