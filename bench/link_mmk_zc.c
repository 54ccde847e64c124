// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "mmk-zc": zero copy on both sides.  The pool is page-aligned;
 * the sender loans an empty slot (mmk_loan: a write guard, and a writable
 * window on the slot), fills the payload in place, publishes it with
 * mmk_write_release and sends the token; the receiver is mmk-copy's (read
 * in place, release, free).  Backpressure: see mmk_link.h.
 */
#include <errno.h>

#include "mmk_link.h"

static int zc_open(struct bench_link *l)
{
	return mmk_link_open(l, MMK_POOL_PAGE_ALIGNED);
}

static int zc_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct mmk_link *k = l->priv;
	struct mmk_write_guard g;
	enum mmk_error e;
	uint64_t tok;

	while ((e = mmk_loan(k->m, &g)) == MMK_E_NO_FREE_SLOTS)
		if (mmk_link_wait_credit(k, dir))
			return -1;
	if (e)
		goto fail;
	/* The loan's header is zeroed: set what a store would. */
	g.msg->header.sequence = seq;
	g.msg->header.payload_size = (uint32_t)l->size;
	bench_fill(g.msg->payload, l->size, seq);
	tok = g.token;
	e = mmk_write_release(&g);
	if (e)
		goto fail;
	return mmk_link_send_tokens(k, dir, &tok, 1);
fail:
	errno = e == MMK_E_SYSTEM ? errno : EPROTO;
	return -1;
}

const struct bench_link_ops link_mmk_zc = {
	.name = "mmk-zc",
	.pingpong = true,
	.open = zc_open,
	.keep = mmk_link_keep,
	.send = zc_send,
	.recv = mmk_link_recv,
	.end = mmk_link_end,
	.close = mmk_link_close,
};
