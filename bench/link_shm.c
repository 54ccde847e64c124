// SPDX-License-Identifier: GPL-2.0
/*
 * Contender "shm": what a careful user writes by hand.  One single-producer
 * single-consumer ring per direction in a memfd mapped shared before fork:
 * depth slots of one message each.  The sender fills a buffer of its own
 * and copies it into the next slot (the copy a store makes); the receiver
 * checks the message in place in the ring and gives the slot back.
 *
 * head and tail are free-running 32-bit counters on their own cache lines.
 * Nobody spins: a receiver that finds the ring empty (a sender that finds
 * it full) announces it in cons_wait (prod_wait), looks again, and sleeps
 * in FUTEX_WAIT on head (tail); only the sleeper clears its flag, once it
 * got what it waited for.  The other side changes head (tail) before it
 * looks at the flag, so either the sleeper sees the change or the other
 * side sees the flag and wakes it: the futex calls happen only when the
 * ring is empty or full.  The end of the stream is one more step of head,
 * with ended set and end_at naming it, so that a sleeping receiver wakes.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

struct ring_ctl {
	alignas(64) _Atomic uint32_t head;	/* written by the sender */
	_Atomic uint32_t prod_wait;		/* sender sleeps on tail */
	_Atomic uint32_t ended;
	_Atomic uint32_t end_at;
	alignas(64) _Atomic uint32_t tail;	/* written by the receiver */
	_Atomic uint32_t cons_wait;		/* receiver sleeps on head */
};

#define RING_DATA_OFFSET	4096

struct shm_link {
	void *map[DIR_COUNT];
	size_t map_size;
	void *buf;
};

_Static_assert(sizeof(struct ring_ctl) <= RING_DATA_OFFSET, "ring control fits its page");

static void futex_wait(_Atomic uint32_t *word, uint32_t val)
{
	/* Shared (not FUTEX_PRIVATE): the word is in another process too. */
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static struct ring_ctl *ring(struct shm_link *s, enum bench_dir dir)
{
	return s->map[dir];
}

static unsigned char *slot(struct bench_link *l, enum bench_dir dir, uint32_t i)
{
	struct shm_link *s = l->priv;

	return (unsigned char *)s->map[dir] + RING_DATA_OFFSET + (size_t)(i % l->depth) * l->size;
}

static void shm_close(struct bench_link *l)
{
	struct shm_link *s = l->priv;
	int d;

	if (!s)
		return;
	for (d = 0; d < DIR_COUNT; d++)
		if (s->map[d])
			munmap(s->map[d], s->map_size);
	free(s->buf);
	free(s);
	l->priv = NULL;
}

static int shm_open_link(struct bench_link *l)
{
	struct shm_link *s = calloc(1, sizeof(*s));
	int d, fd;

	if (!s)
		return -1;
	l->priv = s;
	s->buf = bench_alloc(l->size);
	if (!s->buf)
		goto fail;
	s->map_size = RING_DATA_OFFSET + (size_t)l->depth * l->size;
	for (d = 0; d < DIR_COUNT; d++) {
		fd = memfd_create("mmk-bench-ring", MFD_CLOEXEC);
		if (fd < 0)
			goto fail;
		if (ftruncate(fd, (off_t)s->map_size)) {
			close(fd);
			goto fail;
		}
		s->map[d] = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (s->map[d] == MAP_FAILED) {
			s->map[d] = NULL;
			goto fail;
		}
	}
	return 0;
fail:
	shm_close(l);
	return -1;
}

static void shm_keep(struct bench_link *l, enum bench_dir tx, enum bench_dir rx)
{
	(void)l;
	(void)tx;
	(void)rx;
}

static int shm_send(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct shm_link *s = l->priv;
	struct ring_ctl *r = ring(s, dir);
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed), t;

	bool waited = false;

	bench_fill(s->buf, l->size, seq);
	while ((t = atomic_load_explicit(&r->tail, memory_order_acquire)), h - t >= l->depth) {
		atomic_store(&r->prod_wait, 1);
		waited = true;
		t = atomic_load(&r->tail);
		if (h - t < l->depth)
			break;
		futex_wait(&r->tail, t);
	}
	if (waited)
		atomic_store(&r->prod_wait, 0);
	memcpy(slot(l, dir, h), s->buf, l->size);
	atomic_store(&r->head, h + 1);
	if (atomic_load(&r->cons_wait))
		futex_wake(&r->head);
	return 0;
}

static int shm_recv(struct bench_link *l, enum bench_dir dir, uint64_t seq)
{
	struct ring_ctl *r = ring(l->priv, dir);
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed), h;
	bool waited = false;

	while ((h = atomic_load_explicit(&r->head, memory_order_acquire)) == t) {
		atomic_store(&r->cons_wait, 1);
		waited = true;
		h = atomic_load(&r->head);
		if (h != t)
			break;
		futex_wait(&r->head, t);
	}
	if (waited)
		atomic_store(&r->cons_wait, 0);
	if (atomic_load(&r->ended) && atomic_load(&r->end_at) == t)
		return 0;
	bench_check(slot(l, dir, t), l->size, seq);
	atomic_store(&r->tail, t + 1);
	if (atomic_load(&r->prod_wait))
		futex_wake(&r->tail);
	return 1;
}

static int shm_end(struct bench_link *l, enum bench_dir dir)
{
	struct ring_ctl *r = ring(l->priv, dir);
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	atomic_store(&r->end_at, h);
	atomic_store(&r->ended, 1);
	atomic_store(&r->head, h + 1);
	futex_wake(&r->head);
	return 0;
}

const struct bench_link_ops link_shm = {
	.name = "shm",
	.peer = true,
	.pingpong = true,
	.open = shm_open_link,
	.keep = shm_keep,
	.send = shm_send,
	.recv = shm_recv,
	.end = shm_end,
	.close = shm_close,
};
