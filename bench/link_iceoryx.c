// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "iceoryx": Eclipse iceoryx 2.0 through its C binding, with
 * iox-roudi running (the guest starts it).  One publisher and one
 * subscriber per direction, on a service of their own.  The sender loans a
 * chunk, fills it in place and publishes it; the receiver takes the chunk,
 * checks it in place and releases it; a receiver with nothing to take
 * waits in a WaitSet attached to the subscriber's DATA_RECEIVED event
 * (blocking, as a real consumer waits).  Backpressure as the other
 * contenders have it: the subscriber's queue holds depth chunks and
 * blocks the producer when full (QueueFullPolicy_BLOCK_PRODUCER with
 * ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER), so no chunk is ever lost.
 *
 * A chunk is a 64-byte header (the sequence number, or the end of the
 * stream) then the payload, as an mmk slot is.
 *
 * The runtime is a process's own (iox_runtime_init, once per process, not
 * inherited by fork): this link is "isolated", each measurement runs in a
 * new process (run.c), and each side registers after the fork, in keep().
 * Needs RouDi: without MMK_BENCH_ICEORYX=1 in the environment (the guest
 * sets it once RouDi is up), open() fails with ENOTCONN instead of
 * waiting for a RouDi that will never come.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iceoryx_binding_c/chunk.h"
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/notification_info.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/types.h"
#include "iceoryx_binding_c/wait_set.h"

#include "bench.h"

#define IOX_HDR		64
#define IOX_END		UINT64_MAX
/* Longest wait for a peer (subscription, a chunk, room): then it failed. */
#define IOX_WAIT_S	20

struct iox_hdr {
	uint64_t seq;
	uint64_t size;
};

struct iox_link {
	char instance[64];
	bool have_pub[DIR_COUNT], have_sub[DIR_COUNT], have_ws[DIR_COUNT];
	iox_pub_storage_t pub_st[DIR_COUNT];
	iox_sub_storage_t sub_st[DIR_COUNT];
	iox_ws_storage_t ws_st[DIR_COUNT];
	iox_pub_t pub[DIR_COUNT];
	iox_sub_t sub[DIR_COUNT];
	iox_ws_t ws[DIR_COUNT];
	const void *held[DIR_COUNT];	/* the chunk last checked, to release */
};

static const char *const dir_event[DIR_COUNT] = { "ab", "ba" };

static bool runtime_up;

static bool iox_available(void)
{
	const char *on = getenv("MMK_BENCH_ICEORYX");

	return on && !strcmp(on, "1");
}

static int iox_open(struct bench_link *l)
{
	static unsigned int opened;
	struct iox_link *x;

	if (!iox_available()) {
		errno = ENOTCONN;
		return -1;
	}
	if (l->depth > 256) {		/* iceoryx's most chunks in a subscriber queue */
		errno = EINVAL;
		return -1;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	snprintf(x->instance, sizeof(x->instance), "p%dn%u", (int)getpid(), opened++);
	l->priv = x;
	return 0;
}

static bool deadline_passed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec - t0->tv_sec > IOX_WAIT_S;
}

static void iox_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx)
{
	struct iox_link *x = l->priv;
	struct timespec t0;
	char name[64];

	if (!runtime_up) {
		snprintf(name, sizeof(name), "mmkbench%d", (int)getpid());
		iox_set_loglevel(Iceoryx_LogLevel_Warn);
		iox_runtime_init(name);
		runtime_up = true;
	}
	if (tx != DIR_COUNT) {
		iox_pub_options_t o;

		iox_pub_options_init(&o);
		o.historyCapacity = 0;
		o.offerOnCreate = true;
		o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
		x->pub[tx] = iox_pub_init(&x->pub_st[tx], "mmkbench", x->instance,
					  dir_event[tx], &o);
		x->have_pub[tx] = true;
	}
	if (rx != DIR_COUNT) {
		iox_sub_options_t o;

		iox_sub_options_init(&o);
		o.queueCapacity = l->depth;
		o.historyRequest = 0;
		o.subscribeOnCreate = true;
		o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
		x->sub[rx] = iox_sub_init(&x->sub_st[rx], "mmkbench", x->instance,
					  dir_event[rx], &o);
		x->have_sub[rx] = true;
		x->ws[rx] = iox_ws_init(&x->ws_st[rx]);
		x->have_ws[rx] = true;
		if (iox_ws_attach_subscriber_event(x->ws[rx], x->sub[rx],
						   SubscriberEvent_DATA_RECEIVED, 0, NULL) !=
		    WaitSetResult_SUCCESS)
			fprintf(stderr, "bench: iceoryx: cannot attach the WaitSet\n");
	}
	/* Nothing may be sent before the other side's port is connected:
	 * without history, a chunk published to nobody is gone. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!deadline_passed(&t0) &&
	       ((tx != DIR_COUNT && !iox_pub_has_subscribers(x->pub[tx])) ||
		(rx != DIR_COUNT &&
		 iox_sub_get_subscription_state(x->sub[rx]) != SubscribeState_SUBSCRIBED)))
		usleep(1000);
}

static int iox_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct iox_link *x = l->priv;
	enum iox_AllocationResult a;
	struct iox_hdr *h;
	struct timespec t0;
	void *chunk;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((a = iox_pub_loan_chunk(x->pub[dir], &chunk, (uint32_t)(IOX_HDR + l->size))) ==
	       AllocationResult_RUNNING_OUT_OF_CHUNKS && !deadline_passed(&t0))
		usleep(100);
	if (a != AllocationResult_SUCCESS) {
		fprintf(stderr, "bench: iceoryx: loan: result %d\n", (int)a);
		errno = ENOBUFS;
		return -1;
	}
	h = chunk;
	h->seq = seq;
	h->size = l->size;
	bench_fill((unsigned char *)chunk + IOX_HDR, l->size, seq);
	iox_pub_publish_chunk(x->pub[dir], chunk);
	return 0;
}

static int iox_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct iox_link *x = l->priv;
	iox_notification_info_t info[1];
	enum iox_ChunkReceiveResult r;
	const struct iox_hdr *h;
	struct timespec t0, tmo = { .tv_sec = 1 };
	const void *chunk;
	uint64_t missed;

	if (x->held[dir]) {
		iox_sub_release_chunk(x->sub[dir], x->held[dir]);
		x->held[dir] = NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((r = iox_sub_take_chunk(x->sub[dir], &chunk)) == ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
		if (deadline_passed(&t0)) {
			errno = ETIMEDOUT;
			return -1;
		}
		(void)iox_ws_timed_wait(x->ws[dir], tmo, info, 1, &missed);
	}
	if (r != ChunkReceiveResult_SUCCESS) {
		fprintf(stderr, "bench: iceoryx: take: result %d\n", (int)r);
		errno = EPROTO;
		return -1;
	}
	x->held[dir] = chunk;
	h = chunk;
	if (h->seq == IOX_END)
		return 0;
	if (h->size != l->size) {
		bench_mismatches++;
		return 1;
	}
	bench_check((const unsigned char *)chunk + IOX_HDR, l->size, seq);
	return 1;
}

static int iox_end(struct bench_link *l, enum bench_dir dir)
{
	struct iox_link *x = l->priv;
	struct iox_hdr *h;
	void *chunk;

	if (iox_pub_loan_chunk(x->pub[dir], &chunk, IOX_HDR) != AllocationResult_SUCCESS) {
		errno = ENOBUFS;
		return -1;
	}
	h = chunk;
	h->seq = IOX_END;
	h->size = 0;
	iox_pub_publish_chunk(x->pub[dir], chunk);
	return 0;
}

static void iox_close(struct bench_link *l)
{
	struct iox_link *x = l->priv;
	int d;

	if (!x)
		return;
	for (d = 0; d < DIR_COUNT; d++) {
		if (x->have_ws[d])
			iox_ws_deinit(x->ws[d]);
		if (x->have_sub[d]) {
			if (x->held[d])
				iox_sub_release_chunk(x->sub[d], x->held[d]);
			iox_sub_deinit(x->sub[d]);
		}
		if (x->have_pub[d])
			iox_pub_deinit(x->pub[d]);
	}
	free(x);
	l->priv = NULL;
}

const struct bench_link_ops link_iceoryx = {
	.name = "iceoryx",
	.peer = true,
	.pingpong = true,
	.isolated = true,
	.available = iox_available,
	.open = iox_open,
	.keep = iox_keep,
	.send = iox_send,
	.recv = iox_recv,
	.end = iox_end,
	.close = iox_close,
};
