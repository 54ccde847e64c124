// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "pipe": one pipe per direction, enlarged to 1 MiB (the default
 * pipe-max-size) so that a whole message fits.  The sender fills a buffer
 * of its own and write()s it; the receiver read()s it into a buffer of its
 * own and checks it there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"

#define PIPE_BYTES	(1 << 20)

struct pipe_link {
	int fd[DIR_COUNT][2];	/* [dir][0] read end, [dir][1] write end */
	void *buf;
};

static void pipe_close(struct bench_link *l)
{
	struct pipe_link *p = l->priv;
	int d;

	if (!p)
		return;
	for (d = 0; d < DIR_COUNT; d++) {
		bench_close_fd(&p->fd[d][0]);
		bench_close_fd(&p->fd[d][1]);
	}
	free(p->buf);
	free(p);
	l->priv = NULL;
}

static int pipe_open(struct bench_link *l)
{
	struct pipe_link *p = calloc(1, sizeof(*p));
	int d;

	if (!p)
		return -1;
	l->priv = p;
	for (d = 0; d < DIR_COUNT; d++)
		p->fd[d][0] = p->fd[d][1] = -1;
	p->buf = bench_alloc(l->size);
	if (!p->buf)
		goto fail;
	for (d = 0; d < DIR_COUNT; d++) {
		if (pipe2(p->fd[d], O_CLOEXEC))
			goto fail;
		/* Best effort: a smaller pipe still works, with more wake-ups. */
		(void)fcntl(p->fd[d][1], F_SETPIPE_SZ, PIPE_BYTES);
	}
	return 0;
fail:
	pipe_close(l);
	return -1;
}

static void pipe_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx)
{
	struct pipe_link *p = l->priv;
	int d;

	for (d = 0; d < DIR_COUNT; d++) {
		if (d != (int)tx)
			bench_close_fd(&p->fd[d][1]);
		if (d != (int)rx)
			bench_close_fd(&p->fd[d][0]);
	}
}

static int pipe_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct pipe_link *p = l->priv;

	bench_fill(p->buf, l->size, seq);
	return bench_write_full(p->fd[dir][1], p->buf, l->size);
}

static int pipe_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct pipe_link *p = l->priv;
	int rc = bench_read_full(p->fd[dir][0], p->buf, l->size);

	if (rc == 1)
		bench_check(p->buf, l->size, seq);
	return rc;
}

static int pipe_end(struct bench_link *l, enum bench_dir dir)
{
	struct pipe_link *p = l->priv;

	bench_close_fd(&p->fd[dir][1]);
	return 0;
}

const struct bench_link_ops link_pipe = {
	.name = "pipe",
	.peer = true,
	.pingpong = true,
	.open = pipe_open,
	.keep = pipe_keep,
	.send = pipe_send,
	.recv = pipe_recv,
	.end = pipe_end,
	.close = pipe_close,
};
