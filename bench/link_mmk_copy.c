// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "mmk-copy": the sender fills a buffer of its own and
 * mmk_store()s it (the kernel copies it into a slot), then sends the 8-byte
 * token over a pipe; the receiver takes a read guard, checks the message in
 * place through the pool's read-only mapping, releases the guard and frees
 * the slot.  Backpressure: see mmk_link.h.
 */
#include <errno.h>

#include "mmk_link.h"

static int copy_open(struct bench_link *l)
{
	return mmk_link_open(l, 0);
}

static int copy_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct mmk_link *k = l->priv;
	struct mmk_header h = { .sequence = seq };
	enum mmk_error e;
	uint64_t tok;

	bench_fill(k->buf, l->size, seq);
	while ((e = mmk_store(k->m, &h, k->buf, l->size, &tok)) == MMK_E_NO_FREE_SLOTS)
		if (mmk_link_wait_credit(k, dir))
			return -1;
	if (e) {
		errno = e == MMK_E_SYSTEM ? errno : EPROTO;
		return -1;
	}
	return mmk_link_send_tokens(k, dir, &tok, 1);
}

const struct bench_link_ops link_mmk_copy = {
	.name = "mmk-copy",
	.pingpong = true,
	.open = copy_open,
	.keep = mmk_link_keep,
	.send = copy_send,
	.recv = mmk_link_recv,
	.end = mmk_link_end,
	.close = mmk_link_close,
};
