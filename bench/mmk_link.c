// SPDX-License-Identifier: GPL-2.0
/* The pool, token pipes and credits of the mmk contenders (mmk_link.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmk_link.h"

/* Payload type of the bench pools: "mmkbench". */
#define BENCH_PAYLOAD_TYPE	0x6d6d6b62656e6368ULL

static int to_errno(enum mmk_error e)
{
	switch (e) {
	case MMK_E_NO_FREE_SLOTS:
		return ENOSPC;
	case MMK_E_LIMIT:
		return EDQUOT;
	case MMK_E_INVALID:
	case MMK_E_TOO_LARGE:
		return EINVAL;
	case MMK_E_SYSTEM:
		return errno;
	default:
		return EPROTO;
	}
}

void mmk_link_close(struct bench_link *l)
{
	struct mmk_link *k = l->priv;
	int d;

	if (!k)
		return;
	for (d = 0; d < DIR_COUNT; d++) {
		bench_close_fd(&k->tok[d][0]);
		bench_close_fd(&k->tok[d][1]);
		bench_close_fd(&k->credit[d][0]);
		bench_close_fd(&k->credit[d][1]);
	}
	mmk_close(k->m);
	free(k->buf);
	free(k->extra);
	free(k);
	l->priv = NULL;
}

int mmk_link_open(struct bench_link *l, uint32_t flags)
{
	struct mmk_link *k = calloc(1, sizeof(*k));
	struct mmk_config cfg = {
		.payload_size = (uint32_t)l->size,
		.capacity = l->depth,
		.payload_type = BENCH_PAYLOAD_TYPE,
		.memory_class = MMK_MEM_HOST,
		.flags = flags,
		.mode = 0600,
	};
	enum mmk_error e;
	int d;

	if (!k)
		return -1;
	l->priv = k;
	for (d = 0; d < DIR_COUNT; d++)
		k->tok[d][0] = k->tok[d][1] = k->credit[d][0] = k->credit[d][1] = -1;
	e = mmk_kernel_create(&cfg, &k->m);
	if (e) {
		errno = to_errno(e);
		goto fail;
	}
	k->buf = bench_alloc(l->size);
	if (!k->buf)
		goto fail;
	for (d = 0; d < DIR_COUNT; d++) {
		if (pipe2(k->tok[d], O_CLOEXEC) || pipe2(k->credit[d], O_CLOEXEC))
			goto fail;
		if (fcntl(k->credit[d][1], F_SETFL, O_NONBLOCK))
			goto fail;
	}
	return 0;
fail:
	d = errno;
	mmk_link_close(l);
	errno = d;
	return -1;
}

void mmk_link_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx)
{
	struct mmk_link *k = l->priv;
	int d;

	for (d = 0; d < DIR_COUNT; d++) {
		if (d != (int)tx) {
			bench_close_fd(&k->tok[d][1]);
			bench_close_fd(&k->credit[d][0]);
		}
		if (d != (int)rx) {
			bench_close_fd(&k->tok[d][0]);
			bench_close_fd(&k->credit[d][1]);
		}
	}
}

int mmk_link_send_tokens(struct mmk_link *k, enum bench_dir dir, const uint64_t *tok,
			 size_t n)
{
	return bench_write_full(k->tok[dir][1], tok, n * sizeof(*tok));
}

int mmk_link_wait_credit(struct mmk_link *k, enum bench_dir dir)
{
	char c[64];
	ssize_t r;

	do {
		r = read(k->credit[dir][0], c, sizeof(c));
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = EPIPE;		/* the receiver is gone */
	return r > 0 ? 0 : -1;
}

int mmk_link_end(struct bench_link *l, enum bench_dir dir)
{
	struct mmk_link *k = l->priv;

	bench_close_fd(&k->tok[dir][1]);
	return 0;
}

int mmk_link_read_tokens(struct mmk_link *k, enum bench_dir dir, uint64_t *tok,
			 unsigned int max)
{
	ssize_t r;

	/* Token writes are 8-byte multiples, at most PIPE_BUF each, so atomic:
	 * the pipe only ever holds whole tokens. */
	do {
		r = read(k->tok[dir][0], tok, max * sizeof(*tok));
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	if (r % sizeof(*tok)) {
		errno = EPROTO;
		return -1;
	}
	return (int)(r / sizeof(*tok));
}

void mmk_link_freed(struct bench_link *l, enum bench_dir dir, unsigned int n)
{
	struct mmk_link *k = l->priv;
	unsigned int every = l->depth / 2 ? l->depth / 2 : 1;
	char c = 'c';

	k->frees[dir] += n;
	if (k->frees[dir] < every)
		return;
	k->frees[dir] = 0;
	/* A failure is EAGAIN: the pipe is full of credits the sender has not
	 * read yet, which wake it just as well. */
	if (write(k->credit[dir][1], &c, 1) < 0)
		return;
}

bool mmk_link_check(const struct mmk_message *msg, size_t size, uint64_t seq)
{
	if (msg->header.payload_size != size) {
		bench_mismatches++;
		return false;
	}
	return bench_check(msg->payload, size, seq);
}

int mmk_link_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct mmk_link *k = l->priv;
	struct mmk_read_guard g;
	enum mmk_error e;
	uint64_t tok;
	int n;

	if (k->rnext[dir] == k->rcount[dir]) {
		n = mmk_link_read_tokens(k, dir, k->rtok[dir], MMK_LINK_TOKENS);
		if (n <= 0)
			return n;
		k->rnext[dir] = 0;
		k->rcount[dir] = (unsigned int)n;
	}
	tok = k->rtok[dir][k->rnext[dir]++];
	e = mmk_read(k->m, tok, &g);
	if (e) {
		errno = to_errno(e);
		return -1;
	}
	mmk_link_check(g.msg, l->size, seq);
	e = mmk_read_release(&g);
	if (!e)
		e = mmk_free(k->m, tok);
	if (e) {
		errno = to_errno(e);
		return -1;
	}
	mmk_link_freed(l, dir, 1);
	return 1;
}
