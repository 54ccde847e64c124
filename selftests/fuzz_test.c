// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzzing /dev/mmk from a few processes at once: ioctls with random command
 * numbers, sizes and struct contents (mostly valid structs, mutated),
 * random tokens (valid, stale, forged, another pool's), mmap with random
 * offsets, lengths, protections and flags (each mapping that works is
 * touched, then unmapped, moved or reprotected), sessions opened, bound,
 * closed and reopened; now and then a worker forks a child that carries on
 * with the same sessions and mappings for a while.  Queues too: queue
 * descriptors made and opened with random arguments, pushes (fan-out,
 * store, commit, waits), pops (write, waits, up to N), peeks and infos
 * naming queues, sessions, other descriptors or none, batches of every
 * queue op, and poll, dup and close on the queue descriptors.  The generator is
 * seeded: the seed is printed, and MMK_SEED=<seed> in the environment
 * repeats the same choices (the interleaving of the processes differs from
 * run to run).
 *
 * The test passes if no process is killed by anything but the signals a
 * touch of a mapping may raise (handled where the touch is made), and if
 * afterwards every pool is gone and the module works normally.  The kernel
 * side is judged by the guest runner, which fails the run on any Oops,
 * BUG, KASAN, UBSAN, lockdep or kmemleak report.
 *
 * Calls: MMK_FUZZ_CALLS, else 1,000,000 on a debug kernel (one with
 * kmemleak, lockdep or fault injection) and 100,000 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <linux/fs.h>

#include "mmk_test.h"
#include "kselftest_harness.h"

#define FZ_TYPE		0x66757a7a74797065ULL
#define NWORKERS	3
#define NSESS		4
#define NTOK		64
#define NMAPS		8
#define NNAMES		6
#define NQUEUES		6		/* queue fds a worker keeps */
#define DATA_SIZE	(64 * 1024)
#define POOLS_FILE	"/sys/class/misc/mmk/pools"
#define BYTES_FILE	"/sys/class/misc/mmk/bytes"

/* Exit codes of a worker that stopped for a reason of its own. */
#define EX_SETUP_FAIL	3	/* could not open /dev/mmk or map its buffers */
#define EX_CHILD_FAIL	4	/* a forked child died */

/* What each worker tells the parent, in shared memory. */
struct fz_stats {
	unsigned long calls;		/* every system call made on mmk */
	unsigned long ioctls;
	unsigned long ioctl_ok;
	unsigned long maps, maps_ok;
	unsigned long touch_signals;	/* SIGBUS/SIGSEGV of a touch, handled */
	unsigned long stores_ok, guards_ok, creates_ok, attaches_ok;
	unsigned long queues_ok, pushes_ok, pops_ok, queue_ops;
	unsigned long forks;
	unsigned long max_capacity;	/* of the pools bound to */
	unsigned long max_map;
	unsigned long err[160];		/* ioctl errnos */
	unsigned long kind_ops[12];	/* operations of each kind */
	/* The call in progress, for a post-mortem. */
	unsigned int last_kind;
	unsigned long last_cmd;
	unsigned long last_arg;
	int done;
};

struct fz_shared {
	uint32_t pool_ids[NWORKERS][NSESS];
	char names[NNAMES][MMK_NAME_MAX];
	struct fz_stats w[NWORKERS];
};

/* ---------------------------------------------------------------------- */
/* The generator                                                           */
/* ---------------------------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned int percent)
{
	return below(r, 100) < percent;
}

/* A size: mostly small, sometimes anything. */
static uint32_t rnd_size(struct rng *r, uint32_t typical)
{
	switch (below(r, 10)) {
	case 0:
		return (uint32_t)rnd(r);
	case 1:
		return typical + below(r, 64);
	case 2:
		return 0;
	default:
		return below(r, typical + 1);
	}
}

/* ---------------------------------------------------------------------- */
/* A worker                                                                */
/* ---------------------------------------------------------------------- */

struct sess {
	int fd;
	bool bound;
	struct mmk_pool_info info;
};

struct fmap {
	unsigned char *addr;
	size_t len;
	int prot;
};

struct worker {
	struct rng rng;
	int id;
	struct fz_shared *sh;
	struct fz_stats *st;
	struct sess s[NSESS];
	uint64_t tok[NTOK];
	unsigned int ntok;
	struct fmap maps[NMAPS];
	unsigned int nmaps;
	unsigned char *arg;		/* ioctl argument page, then an inaccessible page */
	unsigned char *data;		/* payloads and headers */
	size_t page;
	int qfd[NQUEUES];		/* queue descriptors, -1 if none */
	uint32_t qpool[NQUEUES];	/* ... and their pools' ids */
	bool sweep;			/* a queue fd we do not know may be open */
};

enum { K_IOCTL = 1, K_IOCTL_NR, K_IOCTL_ANY, K_MMAP, K_MAPOP, K_SESSION, K_OTHER, K_FORK,
       K_STORE, K_QUEUE };

static sigjmp_buf touch_jmp;
static volatile sig_atomic_t touching;

static void on_touch_fault(int sig)
{
	if (!touching) {
		/* Not a touch: let it kill the process, as it would have. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(touch_jmp, sig);
}

/* Interrupts guard waits that would otherwise wait for good. */
static void on_alarm(int sig)
{
}

static void worker_signals(void)
{
	struct sigaction sa = { .sa_handler = on_touch_fault };
	struct sigaction al = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGALRM, &al, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void add_token(struct worker *w, uint64_t t)
{
	if (w->ntok < NTOK)
		w->tok[w->ntok++] = t;
	else
		w->tok[below(&w->rng, NTOK)] = t;
}

static struct sess *pick_sess(struct worker *w)
{
	return &w->s[below(&w->rng, NSESS)];
}

static uint32_t some_pool_id(struct worker *w)
{
	return w->sh->pool_ids[below(&w->rng, NWORKERS)][below(&w->rng, NSESS)];
}

/* A known token, of the session's pool when there is one. */
static uint64_t known_token(struct worker *w, struct sess *s)
{
	unsigned int i, at;

	if (!w->ntok)
		return 0;
	at = below(&w->rng, w->ntok);
	for (i = 0; i < w->ntok; i++) {
		uint64_t t = w->tok[(at + i) % w->ntok];

		if (t >> 48 == s->info.pool_id)
			return t;
	}
	return w->tok[at];
}

/* A token: known (valid or stale), bent, forged, another pool's, random. */
static uint64_t pick_token(struct worker *w, struct sess *s)
{
	struct rng *r = &w->rng;
	uint64_t t = known_token(w, s);

	switch (below(r, 20)) {
	case 0 ... 9:
		return t;
	case 10:
		return t + (1ULL << 20);		/* next generation */
	case 11:
		return t - (1ULL << 20);
	case 12:
		return t ^ (1ULL << below(r, 64));
	case 13:
	case 14:
		return (uint64_t)s->info.pool_id << 48 | below(r, 1ULL << 48);
	case 15:
		return (uint64_t)some_pool_id(w) << 48 | (t & ((1ULL << 48) - 1));
	case 16:
		return MMK_TOKEN_INVALID;
	case 17:
		return 0;
	default:
		return rnd(r);
	}
}

/* A user pointer for the kernel to read: mostly good, sometimes not. */
static uint64_t pick_src(struct worker *w, size_t len)
{
	struct rng *r = &w->rng;

	switch (below(r, 20)) {
	case 0:
		return 0;
	case 1:
		return 0xffff888000000000ULL + below(r, 1 << 20);	/* kernel */
	case 2:
		/* Running into the inaccessible page. */
		return (uintptr_t)w->arg + w->page - below(r, 64);
	case 3:
		if (w->nmaps)
			return (uintptr_t)w->maps[below(r, w->nmaps)].addr;
		return 16;
	case 4:
		return rnd(r);
	default:
		return (uintptr_t)w->data + below(r, DATA_SIZE - (len < DATA_SIZE ? len : 0));
	}
}

/* A message header in the data area: valid, nearly valid or garbage. */
static uint64_t pick_header(struct worker *w)
{
	struct rng *r = &w->rng;
	struct mmk_msg_header *h;
	size_t at = below(r, DATA_SIZE - sizeof(*h));

	h = (struct mmk_msg_header *)(w->data + at);
	if (chance(r, 75)) {
		memset(h, 0, sizeof(*h));
		h->trace_id = rnd(r);
		h->sequence = rnd(r);
		h->flags = below(r, 16);
		h->deadline_ns = h->flags & MMK_MSG_HAS_DEADLINE ? rnd(r) : 0;
		h->qos = below(r, 4);
		h->payload_size = rnd(r);	/* the kernel's to set */
		if (chance(r, 5))
			h->__reserved0 = 1;
	}
	return chance(r, 90) ? (uintptr_t)h : pick_src(w, sizeof(*h));
}

/* Flip a few bits, or a few bytes, of a struct. */
static void mutate(struct rng *r, void *p, size_t len)
{
	unsigned char *b = p;
	unsigned int i, n;

	if (!len || chance(r, 60))
		return;
	n = 1 + below(r, 3);
	for (i = 0; i < n; i++) {
		if (chance(r, 50))
			b[below(r, len)] ^= 1U << below(r, 8);
		else
			b[below(r, len)] = rnd(r);
	}
}

static void pool_name(struct worker *w, char *name)
{
	struct rng *r = &w->rng;
	unsigned int i, n;

	switch (below(r, 10)) {
	case 0 ... 4:
		memcpy(name, w->sh->names[below(r, NNAMES)], MMK_NAME_MAX);
		break;
	case 5 ... 7:
		memset(name, 0, MMK_NAME_MAX);
		break;
	default:
		n = below(r, MMK_NAME_MAX + 1);
		for (i = 0; i < MMK_NAME_MAX; i++)
			name[i] = i < n ? (char)rnd(r) : 0;
	}
}

/* Keep a new queue fd, closing the one it replaces. */
static void add_qfd(struct worker *w, int fd)
{
	unsigned int i = below(&w->rng, NQUEUES);
	struct mmk_queue_info qi;

	if (fd < 0)
		return;
	if (w->qfd[i] >= 0)
		close(w->qfd[i]);
	w->qfd[i] = fd;
	w->qpool[i] = mmk_queue_info(fd, &qi) ? 0 : qi.pool_id;
}

/*
 * A queue descriptor: mostly a queue of the session's pool, else any
 * queue, a session, -1, a closed or a random fd.
 */
static int pick_qfd(struct worker *w, struct sess *s)
{
	struct rng *r = &w->rng;
	unsigned int at = below(r, NQUEUES), i;
	int fd = w->qfd[at];

	if (chance(r, 75)) {
		for (i = 0; i < NQUEUES; i++) {
			unsigned int k = (at + i) % NQUEUES;

			if (w->qfd[k] >= 0 && w->qpool[k] == s->info.pool_id)
				return w->qfd[k];
		}
	}
	switch (below(r, 16)) {
	case 0:
		return pick_sess(w)->fd;
	case 1:
		return -1;
	case 2:
		return 1000;	/* never open */
	case 3:
		return below(r, 64);
	default:
		return fd >= 0 ? fd : pick_sess(w)->fd;
	}
}

static void queue_name(struct worker *w, char *name)
{
	memset(name, 0, MMK_NAME_MAX);
	if (chance(&w->rng, 60))
		snprintf(name, MMK_NAME_MAX, "fq-%u", (unsigned int)below(&w->rng, 4));
	else if (chance(&w->rng, 5))
		memset(name, 'q', MMK_NAME_MAX);	/* no NUL */
}

/* A header, a payload and its size, for a store, a commit or a write back. */
static void pick_message(struct worker *w, uint32_t psize, __u64 *header, __u64 *payload,
			 __u32 *size)
{
	*size = rnd_size(&w->rng, psize);
	*header = pick_header(w);
	*payload = pick_src(w, *size);
}

/* One batch op, queue ops included; op 12 is unknown. */
static void build_batch_op(struct worker *w, struct sess *s, uint32_t psize,
			   struct mmk_batch_entry *e)
{
	struct rng *r = &w->rng;

	memset(e, 0, sizeof(*e));
	e->op = 1 + below(r, MMK_BATCH_WRITE_RELEASE + 1);
	switch (e->op) {
	case MMK_BATCH_STORE:
		pick_message(w, psize, &e->header, &e->payload, &e->payload_size);
		break;
	case MMK_BATCH_STORE_PUSH:
		pick_message(w, psize, &e->header, &e->payload, &e->payload_size);
		e->queue_fd = pick_qfd(w, s);
		break;
	case MMK_BATCH_COMMIT_PUSH:
		if (chance(r, 50))
			pick_message(w, psize, &e->header, &e->payload, &e->payload_size);
		/* fall through */
	case MMK_BATCH_PUSH:
		e->token = pick_token(w, s);
		e->queue_fd = pick_qfd(w, s);
		break;
	case MMK_BATCH_POP:
		e->queue_fd = pick_qfd(w, s);
		e->flags = below(r, 4);
		break;
	case MMK_BATCH_LOAN:
		break;
	case MMK_BATCH_WRITE_RELEASE:
		e->token = pick_token(w, s);
		if (chance(r, 50)) {
			e->flags = MMK_RELEASE_COMMIT;
			if (chance(r, 70))
				pick_message(w, psize, &e->header, &e->payload, &e->payload_size);
		}
		break;
	default:
		e->token = pick_token(w, s);
		break;
	}
	if ((e->op == MMK_BATCH_PUSH || e->op == MMK_BATCH_STORE_PUSH ||
	     e->op == MMK_BATCH_COMMIT_PUSH) && chance(r, 10))
		e->flags = MMK_PUSH_WAIT;
	/* A wait ends by its timeout or by the interval timer. */
	if (e->flags & MMK_PUSH_WAIT && chance(r, 50))
		e->timeout_ns = below(r, 2000000);
	if (chance(r, 3))
		e->timeout_ns = rnd(r);
	if (chance(r, 3))
		e->queue_fd = pick_qfd(w, s);
}

/* Build a mostly valid argument for cmd in buf; returns its size. */
static size_t build_arg(struct worker *w, struct sess *s, unsigned long cmd, void *buf)
{
	struct rng *r = &w->rng;
	uint32_t psize = s->info.payload_size ? s->info.payload_size : 256;

	switch (_IOC_NR(cmd)) {
	case _IOC_NR(MMK_IOC_CREATE): {
		struct mmk_pool_create *c = buf;

		memset(c, 0, sizeof(*c));
		c->flags = chance(r, 30) ? MMK_POOL_PAGE_ALIGNED : 0;
		c->payload_size = chance(r, 95) ? 1 + below(r, 8192) : (uint32_t)rnd(r);
		c->capacity = chance(r, 95) ? 1 + below(r, 64) : (uint32_t)rnd(r);
		c->mode = chance(r, 90) ? 0666 : (uint32_t)rnd(r);
		c->payload_type = chance(r, 90) ? FZ_TYPE : rnd(r);
		c->memory_class = below(r, 5);
		pool_name(w, c->name);
		return sizeof(*c);
	}
	case _IOC_NR(MMK_IOC_ATTACH): {
		struct mmk_pool_attach *a = buf;

		memset(a, 0, sizeof(*a));
		a->payload_type = chance(r, 90) ? FZ_TYPE : rnd(r);
		pool_name(w, a->name);
		return sizeof(*a);
	}
	case _IOC_NR(MMK_IOC_POOL_INFO):
		memset(buf, 0xa5, sizeof(struct mmk_pool_info));
		return sizeof(struct mmk_pool_info);
	case _IOC_NR(MMK_IOC_STORE): {
		struct mmk_store *st = buf;

		memset(st, 0, sizeof(*st));
		st->payload_size = rnd_size(r, psize);
		st->header = pick_header(w);
		st->payload = pick_src(w, st->payload_size);
		st->token = rnd(r);
		return sizeof(*st);
	}
	case _IOC_NR(MMK_IOC_READ):
	case _IOC_NR(MMK_IOC_READ_MUT):
	case _IOC_NR(MMK_IOC_PEEK_HEADER): {
		struct mmk_guard *g = buf;

		memset(g, 0, sizeof(*g));
		g->token = pick_token(w, s);
		if (chance(r, 10)) {
			g->flags = MMK_GUARD_WAIT;
			/* 0 waits for good: the interval timer interrupts it. */
			g->timeout_ns = chance(r, 50) ? below(r, 2000000) : 0;
		}
		g->offset = rnd(r);
		return sizeof(*g);
	}
	case _IOC_NR(MMK_IOC_READ_RELEASE):
	case _IOC_NR(MMK_IOC_WRITE_RELEASE): {
		struct mmk_release *rel = buf;

		memset(rel, 0, sizeof(*rel));
		rel->token = pick_token(w, s);
		if (_IOC_NR(cmd) == _IOC_NR(MMK_IOC_WRITE_RELEASE) && chance(r, 50)) {
			rel->flags = MMK_RELEASE_COMMIT;
			rel->payload_size = rnd_size(r, psize);
			rel->header = pick_header(w);
			rel->payload = pick_src(w, rel->payload_size);
			if (chance(r, 15)) {	/* commit in place */
				rel->payload_size = 0;
				rel->header = 0;
				rel->payload = 0;
			}
		}
		return sizeof(*rel);
	}
	case _IOC_NR(MMK_IOC_LOAN):
		memset(buf, 0, sizeof(struct mmk_loan));
		return sizeof(struct mmk_loan);
	case _IOC_NR(MMK_IOC_BATCH): {
		/* Shared by the worker's threads, if any: a racing array is fair game. */
		static struct mmk_batch_entry ops[8];
		struct mmk_batch *b = buf;
		unsigned int i, n = below(r, ARRAY_SIZE(ops) + 1);

		for (i = 0; i < n; i++)
			build_batch_op(w, s, psize, &ops[i]);
		memset(b, 0, sizeof(*b));
		b->ops = chance(r, 95) ? (uintptr_t)ops : rnd(r);
		b->count = chance(r, 98) ? n : (uint32_t)rnd(r);
		return sizeof(*b);
	}
	case _IOC_NR(MMK_IOC_FREE): {
		struct mmk_free *f = buf;

		memset(f, 0, sizeof(*f));
		f->token = pick_token(w, s);
		return sizeof(*f);
	}
	case _IOC_NR(MMK_IOC_QUEUE_OPEN): {
		struct mmk_queue_open *o = buf;

		memset(o, 0, sizeof(*o));
		o->flags = (chance(r, 75) ? MMK_QUEUE_CREATE : 0) |
			   (chance(r, 50) ? MMK_QUEUE_CLOEXEC : 0);
		if (o->flags & MMK_QUEUE_CREATE) {
			o->policy = below(r, MMK_QUEUE_POLICY_MAX + 2);
			o->cap_items = chance(r, 90) ? 1 + below(r, 8) : (uint32_t)rnd(r);
			o->soft_items = below(r, o->cap_items < 16 ? o->cap_items + 2 : 16);
			if (chance(r, 40)) {
				o->cap_bytes = chance(r, 90) ? below(r, 4096) : rnd(r);
				o->soft_bytes = below(r, o->cap_bytes + 2);
			}
		}
		queue_name(w, o->name);
		o->fd = rnd(r);
		o->queue_id = rnd(r);
		return sizeof(*o);
	}
	case _IOC_NR(MMK_IOC_PUSH): {
		struct mmk_push *p = buf;
		uint32_t i;

		memset(p, 0, sizeof(*p));
		p->token = pick_token(w, s);
		p->flags = chance(r, 60) ? 0 : below(r, 8);
		p->nr_queues = chance(r, 95) ? 1 + below(r, 3) : (uint32_t)rnd(r);
		for (i = 0; i < p->nr_queues && i < MMK_PUSH_MAX_QUEUES; i++)
			p->queue_fds[i] = pick_qfd(w, s);
		if (p->flags & MMK_PUSH_WAIT && chance(r, 50))
			p->timeout_ns = below(r, 2000000);
		if (p->flags & (MMK_PUSH_STORE | MMK_PUSH_COMMIT) && chance(r, 80))
			pick_message(w, psize, &p->header, &p->payload, &p->payload_size);
		p->dropped = rnd(r);
		p->evicted = rnd(r);
		return sizeof(*p);
	}
	case _IOC_NR(MMK_IOC_POP): {
		struct mmk_pop *p = buf;

		memset(p, 0, sizeof(*p));
		p->queue_fd = pick_qfd(w, s);
		p->flags = chance(r, 97) ? below(r, 4) : (uint32_t)rnd(r);
		if (p->flags & MMK_POP_WAIT && chance(r, 50))
			p->timeout_ns = below(r, 2000000);
		p->max = chance(r, 95) ? 1 + below(r, 8) : (uint32_t)rnd(r);
		p->entries = chance(r, 90) ? (uintptr_t)w->data + below(r, DATA_SIZE / 2)
					   : pick_src(w, 8 * sizeof(struct mmk_popped));
		p->count = rnd(r);
		return sizeof(*p);
	}
	case _IOC_NR(MMK_IOC_QUEUE_PEEK): {
		struct mmk_queue_peek *pk = buf;

		memset(pk, 0, sizeof(*pk));
		pk->queue_fd = pick_qfd(w, s);
		pk->index = chance(r, 90) ? below(r, 4) : (uint32_t)rnd(r);
		pk->token = rnd(r);
		return sizeof(*pk);
	}
	}
	return 0;
}

static const unsigned long mmk_cmds[] = {
	MMK_IOC_CREATE, MMK_IOC_ATTACH, MMK_IOC_POOL_INFO, MMK_IOC_STORE,
	MMK_IOC_READ, MMK_IOC_READ_MUT, MMK_IOC_PEEK_HEADER, MMK_IOC_READ_RELEASE,
	MMK_IOC_WRITE_RELEASE, MMK_IOC_FREE, MMK_IOC_LOAN, MMK_IOC_BATCH,
	MMK_IOC_QUEUE_OPEN, MMK_IOC_PUSH, MMK_IOC_POP, MMK_IOC_QUEUE_PEEK,
};

/* Where the argument goes: at the end of the argument page, mostly. */
static void *place_arg(struct worker *w, size_t size, bool *direct)
{
	struct rng *r = &w->rng;

	*direct = false;
	switch (below(r, 40)) {
	case 0:
		return NULL;
	case 1:
		return (void *)(uintptr_t)0xffff888000001000ULL;
	case 2:
		if (w->nmaps)
			return w->maps[below(r, w->nmaps)].addr;	/* read-only, often */
		return NULL;
	case 3:
		/* Straddling into the inaccessible page. */
		return w->arg + w->page - (size ? below(r, size) + 1 : 1);
	default:
		*direct = true;
		if (size > w->page)
			return w->arg;
		return w->arg + w->page - size;
	}
}

static void note_ioctl(struct worker *w, unsigned long cmd, int ret, void *arg, bool direct)
{
	struct fz_stats *st = w->st;

	st->calls++;
	st->ioctls++;
	if (ret) {
		st->err[-ret < (int)ARRAY_SIZE(st->err) ? -ret : 0]++;
		return;
	}
	st->ioctl_ok++;
	/* A queue fd made where we cannot see its number: sweep it up later. */
	if (_IOC_TYPE(cmd) == MMK_IOC_MAGIC && _IOC_NR(cmd) == _IOC_NR(MMK_IOC_QUEUE_OPEN) &&
	    (!direct || _IOC_SIZE(cmd) < sizeof(struct mmk_queue_open) ||
	     _IOC_DIR(cmd) != (_IOC_READ | _IOC_WRITE)))
		w->sweep = true;
	if (_IOC_TYPE(cmd) != MMK_IOC_MAGIC || !direct)
		return;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(MMK_IOC_STORE):
		if (_IOC_SIZE(cmd) >= sizeof(struct mmk_store)) {
			st->stores_ok++;
			add_token(w, ((struct mmk_store *)arg)->token);
		}
		break;
	case _IOC_NR(MMK_IOC_READ):
	case _IOC_NR(MMK_IOC_READ_MUT):
	case _IOC_NR(MMK_IOC_PEEK_HEADER):
		st->guards_ok++;
		break;
	case _IOC_NR(MMK_IOC_LOAN):
		if (_IOC_SIZE(cmd) >= sizeof(struct mmk_loan)) {
			st->guards_ok++;
			add_token(w, ((struct mmk_loan *)arg)->token);
		}
		break;
	case _IOC_NR(MMK_IOC_QUEUE_OPEN):
		if (_IOC_SIZE(cmd) >= sizeof(struct mmk_queue_open) &&
		    _IOC_DIR(cmd) == (_IOC_READ | _IOC_WRITE)) {
			st->queues_ok++;
			add_qfd(w, ((struct mmk_queue_open *)arg)->fd);
		}
		break;
	case _IOC_NR(MMK_IOC_PUSH):
		st->pushes_ok++;
		if (_IOC_SIZE(cmd) >= sizeof(struct mmk_push) &&
		    ((struct mmk_push *)arg)->flags & MMK_PUSH_STORE)
			add_token(w, ((struct mmk_push *)arg)->token);
		break;
	case _IOC_NR(MMK_IOC_POP): {
		const struct mmk_pop *p = arg;
		const unsigned char *e = (const unsigned char *)(uintptr_t)p->entries;
		uint32_t i;

		st->pops_ok++;
		if (_IOC_SIZE(cmd) < sizeof(*p) || e < w->data || e >= w->data + DATA_SIZE / 2)
			break;
		for (i = 0; i < p->count && i < 8; i++)
			add_token(w, ((const struct mmk_popped *)e)[i].token);
		break;
	}
	}
}

/* A session whose bind state may have changed: refresh what we know. */
static void refresh(struct worker *w, struct sess *s)
{
	s->bound = !mmk_info(s->fd, &s->info);
	if (!s->bound)
		memset(&s->info, 0, sizeof(s->info));
	if (s->info.capacity > w->st->max_capacity)
		w->st->max_capacity = s->info.capacity;
	if (s->info.map_size > w->st->max_map)
		w->st->max_map = s->info.map_size;
	w->sh->pool_ids[w->id][s - w->s] = s->info.pool_id;
}

/* A valid command with a mostly valid, sometimes mutated, argument. */
static void op_ioctl(struct worker *w)
{
	struct rng *r = &w->rng;
	struct sess *s = pick_sess(w);
	unsigned long cmd = mmk_cmds[below(r, ARRAY_SIZE(mmk_cmds))];
	unsigned char tmp[512];
	size_t size = build_arg(w, s, cmd, tmp);
	unsigned int nr = _IOC_NR(cmd);
	size_t asize = size;
	bool direct;
	void *arg;
	int ret;

	mutate(r, tmp, size);
	/* The size in the command: exact, bigger (zero or dirty tail), smaller. */
	switch (below(r, 20)) {
	case 0:
		asize = size + 8 * below(r, 16);
		break;
	case 1:
		asize = below(r, size);
		break;
	case 2:
		asize = below(r, 1 << _IOC_SIZEBITS);
		break;
	}
	if (asize > size)
		memset(tmp + size, chance(r, 80) ? 0 : 1, asize - size > sizeof(tmp) - size ?
		       sizeof(tmp) - size : asize - size);
	cmd = _IOC(_IOC_DIR(cmd), MMK_IOC_MAGIC, nr, asize);
	arg = place_arg(w, asize, &direct);
	if (direct)
		memcpy(arg, tmp, asize < sizeof(tmp) ? asize : sizeof(tmp));

	w->st->last_kind = K_IOCTL;
	w->st->last_cmd = cmd;
	w->st->last_arg = (uintptr_t)arg;
	ret = mmk_ioctl(s->fd, cmd, arg);
	note_ioctl(w, cmd, ret, arg, direct);
	if (!ret && (nr == _IOC_NR(MMK_IOC_CREATE) || nr == _IOC_NR(MMK_IOC_ATTACH))) {
		if (nr == _IOC_NR(MMK_IOC_CREATE))
			w->st->creates_ok++;
		else
			w->st->attaches_ok++;
		refresh(w, s);
	}
}

/* The mmk magic with any number, direction and size. */
static void op_ioctl_nr(struct worker *w)
{
	struct rng *r = &w->rng;
	struct sess *s = pick_sess(w);
	unsigned int nr = chance(r, 80) ? below(r, 16) : below(r, 256);
	size_t size = chance(r, 70) ? below(r, 128) : below(r, 1 << _IOC_SIZEBITS);
	unsigned long cmd = _IOC(below(r, 4), MMK_IOC_MAGIC, nr, size);
	bool direct;
	void *arg = place_arg(w, size, &direct);
	size_t i;
	int ret;

	if (direct) {
		for (i = 0; i < size && i < w->page; i++)
			((unsigned char *)arg)[i] = chance(r, 50) ? 0 : rnd(r);
	}
	w->st->last_kind = K_IOCTL_NR;
	w->st->last_cmd = cmd;
	w->st->last_arg = (uintptr_t)arg;
	ret = mmk_ioctl(s->fd, cmd, arg);
	note_ioctl(w, cmd, ret, arg, direct);
	if (!ret && (nr == _IOC_NR(MMK_IOC_CREATE) || nr == _IOC_NR(MMK_IOC_ATTACH)))
		refresh(w, s);
}

/* Any command number at all, but never one that freezes a file system. */
static void op_ioctl_any(struct worker *w)
{
	struct rng *r = &w->rng;
	struct sess *s = pick_sess(w);
	unsigned long cmd = (uint32_t)rnd(r);
	size_t i;
	int ret;

	if (cmd == FIFREEZE || cmd == FITHAW)
		return;
	for (i = 0; i < 256; i++)
		w->arg[w->page - 256 + i] = rnd(r);
	w->st->last_kind = K_IOCTL_ANY;
	w->st->last_cmd = cmd;
	ret = mmk_ioctl(s->fd, cmd, chance(r, 80) ? w->arg + w->page - 256 : NULL);
	note_ioctl(w, cmd, ret, NULL, false);
	refresh(w, s);
}

/* Read a byte of a mapping, and write one if it is writable. */
static void touch(struct worker *w, struct fmap *m)
{
	volatile unsigned char *volatile p = m->addr + below(&w->rng, m->len);
	unsigned char v = rnd(&w->rng);
	bool write = m->prot & PROT_WRITE;

	touching = 1;
	if (!sigsetjmp(touch_jmp, 1)) {
		(void)*p;
		if (write)
			*p = v;
	} else {
		w->st->touch_signals++;
	}
	touching = 0;
}

static void forget_map(struct worker *w, unsigned int i)
{
	w->maps[i] = w->maps[--w->nmaps];
}

static void op_mmap(struct worker *w)
{
	struct rng *r = &w->rng;
	struct sess *s = pick_sess(w);
	static const int prots[] = {
		PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE,
	};
	uint64_t off = 0, slot = s->info.slot_size ? s->info.slot_size : w->page;
	size_t len = s->info.map_size;
	int prot = PROT_READ, flags = MAP_SHARED;
	void *p;

	if (w->nmaps == NMAPS)
		return;
	switch (below(r, 10)) {
	case 0 ... 3:
		break;
	case 4 ... 6:
		/* Mostly a window; else a pool id where the old encoding had it. */
		off = below(r, s->info.capacity + 1) * slot;
		off += chance(r, 90) ? MMK_WINDOW_OFFSET(0) :
		       (uint64_t)some_pool_id(w) << MMK_WINDOW_SHIFT;
		len = slot;
		/* Or the arena window: every slot, each under its guard only. */
		if (chance(r, 30)) {
			off = MMK_WINDOW_OFFSET(0);
			len = s->info.map_size;
		}
		prot = PROT_READ | PROT_WRITE;
		break;
	case 7:
		off = below(r, 1ULL << 52) & ~(uint64_t)(w->page - 1);
		break;
	default:
		break;
	}
	if (chance(r, 30))
		len = chance(r, 50) ? (1 + below(r, 64)) * w->page : below(r, 3 * len + 1);
	if (chance(r, 20))
		prot = prots[below(r, ARRAY_SIZE(prots))];
	if (chance(r, 10))
		flags = MAP_PRIVATE;
	if (chance(r, 10))
		flags |= MAP_POPULATE;
	if (!len || len > (64UL << 20))
		len = w->page;

	w->st->last_kind = K_MMAP;
	w->st->last_cmd = off;
	w->st->last_arg = len;
	w->st->calls++;
	w->st->maps++;
	p = mmap(NULL, len, prot, flags, s->fd, off);
	if (p == MAP_FAILED)
		return;
	w->st->maps_ok++;
	w->maps[w->nmaps].addr = p;
	w->maps[w->nmaps].len = len;
	w->maps[w->nmaps].prot = prot;
	touch(w, &w->maps[w->nmaps]);
	w->nmaps++;
}

/* munmap (whole or part), mprotect, mremap, madvise, or just a touch. */
static void op_mapop(struct worker *w)
{
	struct rng *r = &w->rng;
	unsigned int i;
	struct fmap *m;
	void *p;

	if (!w->nmaps)
		return;
	i = below(r, w->nmaps);
	m = &w->maps[i];
	w->st->last_kind = K_MAPOP;
	w->st->last_arg = (uintptr_t)m->addr;
	w->st->calls++;
	switch (below(r, 8)) {
	case 0:
	case 1:
		munmap(m->addr, m->len);
		forget_map(w, i);
		break;
	case 2:
		if (m->len > w->page) {
			/* Unmap the head; what is left stays mapped. */
			munmap(m->addr, w->page);
			m->addr += w->page;
			m->len -= w->page;
		}
		break;
	case 3: {
		int prot = below(r, 8);

		if (!mprotect(m->addr, m->len, prot))
			m->prot = prot;
		break;
	}
	case 4: {
		size_t nlen = chance(r, 50) ? m->len : m->len + w->page;

		p = mremap(m->addr, m->len, nlen, MREMAP_MAYMOVE);
		if (p != MAP_FAILED) {
			m->addr = p;
			m->len = nlen;
		}
		break;
	}
	case 5:
		madvise(m->addr, m->len, chance(r, 50) ? MADV_DONTNEED : MADV_DONTFORK);
		break;
	default:
		w->st->calls--;
		touch(w, m);
		break;
	}
}

static void close_sess(struct worker *w, struct sess *s)
{
	close(s->fd);
	s->fd = -1;
	s->bound = false;
	memset(&s->info, 0, sizeof(s->info));
	w->sh->pool_ids[w->id][s - w->s] = 0;
}

/* Close and reopen a session, or bind an unbound one the ordinary way. */
static void op_session(struct worker *w)
{
	struct rng *r = &w->rng;
	struct sess *s = pick_sess(w);
	unsigned char buf[sizeof(struct mmk_pool_create)];
	int ret;

	w->st->last_kind = K_SESSION;
	w->st->calls++;
	if (s->bound || chance(r, 30)) {
		close_sess(w, s);
		s->fd = mmk_open();
		if (s->fd < 0)
			_exit(EX_SETUP_FAIL);
		return;
	}
	if (chance(r, 60)) {
		build_arg(w, s, MMK_IOC_CREATE, buf);
		ret = mmk_ioctl(s->fd, MMK_IOC_CREATE, buf);
		if (!ret)
			w->st->creates_ok++;
	} else {
		build_arg(w, s, MMK_IOC_ATTACH, buf);
		ret = mmk_ioctl(s->fd, MMK_IOC_ATTACH, buf);
		if (!ret)
			w->st->attaches_ok++;
	}
	refresh(w, s);
}

/* A valid push of t to a queue of s's pool, and now and then a valid pop. */
static void op_queue_flow(struct worker *w, struct sess *s, uint64_t t)
{
	struct mmk_popped e[4];
	uint32_t count = 0, i;
	int qfd = -1;

	for (i = 0; i < NQUEUES; i++)
		if (w->qfd[i] >= 0 && w->qpool[i] == s->info.pool_id)
			qfd = w->qfd[i];
	if (qfd < 0)
		return;
	w->st->calls++;
	w->st->ioctls++;
	if (!mmk_push(s->fd, t, qfd)) {
		w->st->ioctl_ok++;
		w->st->pushes_ok++;
	}
	if (chance(&w->rng, 50))
		return;
	w->st->calls++;
	w->st->ioctls++;
	if (mmk_pop(s->fd, qfd, chance(&w->rng, 20) ? MMK_POP_WRITE : 0, 0, e, 1 + below(&w->rng, 4),
		    &count))
		return;
	w->st->ioctl_ok++;
	w->st->pops_ok++;
	/* Kept as guards, for the fuzzed releases to find. */
	for (i = 0; i < count; i++)
		add_token(w, e[i].token);
}

/* A message the ordinary way, so that there are live tokens to play with. */
static void op_store(struct worker *w)
{
	struct sess *s = pick_sess(w);
	uint64_t t;

	if (!s->bound)
		return;
	w->st->last_kind = K_STORE;
	w->st->calls++;
	w->st->ioctls++;
	if (!mmk_store_seq(s->fd, w->data, below(&w->rng, s->info.payload_size + 1),
			   rnd(&w->rng), &t)) {
		w->st->ioctl_ok++;
		w->st->stores_ok++;
		add_token(w, t);
		/* Half of them go into a queue of the pool, so that queues hold something. */
		if (chance(&w->rng, 50))
			op_queue_flow(w, s, t);
	}
}

/* What else one can do with the file. */
static void op_other(struct worker *w)
{
	struct rng *r = &w->rng;
	struct sess *s = pick_sess(w);
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN | POLLOUT };
	struct stat stbuf;
	char c[16] = "";
	ssize_t n = 0;
	int fd;

	w->st->last_kind = K_OTHER;
	w->st->calls++;
	switch (below(r, 6)) {
	case 0:
		n = read(s->fd, c, sizeof(c));
		break;
	case 1:
		n = write(s->fd, c, sizeof(c));
		break;
	case 2:
		lseek(s->fd, rnd(r), SEEK_SET);
		break;
	case 3:
		poll(&pfd, 1, 0);
		break;
	case 4:
		fstat(s->fd, &stbuf);
		break;
	default:
		/* A dup shares the session; closing it changes nothing. */
		fd = dup(s->fd);
		if (fd >= 0)
			close(fd);
		break;
	}
	(void)n;	/* mmk has no read or write: EINVAL */
}

/* On a queue descriptor: its info ioctl (or another), poll, read, dup, close. */
static void op_queue(struct worker *w)
{
	struct rng *r = &w->rng;
	unsigned int i = below(r, NQUEUES);
	int fd = w->qfd[i], ret;
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	unsigned char buf[sizeof(struct mmk_queue_info) + 16];
	unsigned long cmd;
	char c[8];

	if (fd < 0)
		return;
	w->st->last_kind = K_QUEUE;
	w->st->calls++;
	w->st->queue_ops++;
	switch (below(r, 8)) {
	case 0 ... 2:
		cmd = chance(r, 70) ? MMK_IOC_QUEUE_INFO :
		      _IOC(below(r, 4), MMK_IOC_MAGIC, below(r, 20), below(r, sizeof(buf) + 1));
		w->st->last_cmd = cmd;
		ret = mmk_ioctl(fd, cmd, chance(r, 95) ? buf : (void *)(uintptr_t)pick_src(w, 8));
		(void)ret;
		break;
	case 3:
		poll(&pfd, 1, 0);
		break;
	case 4:
		if (read(fd, c, sizeof(c)) < 0 || write(fd, c, sizeof(c)) < 0)
			break;
		break;
	case 5:
		add_qfd(w, dup(fd));
		break;
	default:
		close(fd);
		w->qfd[i] = -1;
		break;
	}
}

/* Close the queue fds we lost track of (made through a misplaced argument). */
static void sweep_queue_fds(struct worker *w)
{
	char path[64], link[64];
	unsigned int i;
	bool known;
	ssize_t n;
	int fd;

	w->sweep = false;
	for (fd = 3; fd < 1024; fd++) {
		known = false;
		for (i = 0; i < NQUEUES; i++)
			known |= w->qfd[i] == fd;
		if (known)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strstr(link, "mmk_queue"))
			close(fd);
	}
}

static void worker_loop(struct worker *w, unsigned long calls);

/* A forked child shares the sessions and the arena mappings (not windows). */
static void op_fork(struct worker *w)
{
	pid_t pid;
	int status;

	w->st->last_kind = K_FORK;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		struct fz_stats scratch;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(&scratch, 0, sizeof(scratch));
		w->st = &scratch;
		w->rng.s ^= 0x5bd1e995;
		worker_signals();
		worker_loop(w, 200);
		_exit(0);
	}
	w->st->forks++;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "# worker %d: forked child died: status %#x\n", w->id, status);
		_exit(EX_CHILD_FAIL);
	}
}

static void worker_loop(struct worker *w, unsigned long calls)
{
	unsigned long start = w->st->calls;

	/*
	 * Mostly ioctls; mmap, munmap, open and close cost a thousand times
	 * more on a debug kernel, so they come rarely enough to leave the
	 * time to the ioctls.  Every kind still comes thousands of times in
	 * a million calls.
	 */
	while (w->st->calls - start < calls) {
		w->st->last_kind = 0;
		switch (below(&w->rng, 10000)) {
		case 0 ... 6399:
			op_ioctl(w);
			break;
		case 6400 ... 7899:
			op_ioctl_nr(w);
			break;
		case 7900 ... 8299:
			op_ioctl_any(w);
			break;
		case 8300 ... 9499:
			op_store(w);
			break;
		case 9500 ... 9599:
			op_mmap(w);
			break;
		case 9600 ... 9699:
			op_mapop(w);
			break;
		case 9700 ... 9729:
			op_session(w);
			break;
		case 9730 ... 9899:
			op_other(w);
			break;
		case 9900 ... 9998:
			op_queue(w);
			break;
		default:
			if (w->st->forks < 10)
				op_fork(w);
			break;
		}
		w->st->kind_ops[w->st->last_kind < 12 ? w->st->last_kind : 0]++;
		if (w->sweep)
			sweep_queue_fds(w);
	}
}

static void worker_main(struct fz_shared *sh, int id, uint64_t seed, unsigned long calls)
{
	struct worker w;
	unsigned int i;

	memset(&w, 0, sizeof(w));
	w.rng.s = seed + 0x632be59bd9b4e019ULL * (id + 1);
	w.id = id;
	w.sh = sh;
	w.st = &sh->w[id];
	w.page = sysconf(_SC_PAGESIZE);
	for (i = 0; i < NQUEUES; i++)
		w.qfd[i] = -1;
	w.arg = mmap(NULL, 2 * w.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w.data = mmap(NULL, DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w.arg == MAP_FAILED || w.data == MAP_FAILED ||
	    mprotect(w.arg + w.page, w.page, PROT_NONE))
		_exit(EX_SETUP_FAIL);
	for (i = 0; i < DATA_SIZE; i++)
		w.data[i] = rnd(&w.rng);
	worker_signals();

	/*
	 * One unbound session, one named pool, one anonymous page-aligned,
	 * one attached, if it works out: another worker may have taken the
	 * name already, or not have created the one to attach yet.
	 */
	for (i = 0; i < NSESS; i++) {
		w.s[i].fd = mmk_open();
		if (w.s[i].fd < 0)
			_exit(EX_SETUP_FAIL);
	}
	{
		struct mmk_pool_create c = {
			.payload_size = 512, .capacity = 16, .mode = 0666, .payload_type = FZ_TYPE,
		};
		struct mmk_pool_attach a = { .payload_type = FZ_TYPE };

		memcpy(c.name, sh->names[id], MMK_NAME_MAX);
		mmk_ioctl(w.s[1].fd, MMK_IOC_CREATE, &c);
		memset(c.name, 0, sizeof(c.name));
		c.flags = MMK_POOL_PAGE_ALIGNED;
		c.payload_size = 5000;
		c.capacity = 4;
		mmk_ioctl(w.s[2].fd, MMK_IOC_CREATE, &c);
		memcpy(a.name, sh->names[(id + 1) % NWORKERS], MMK_NAME_MAX);
		mmk_ioctl(w.s[3].fd, MMK_IOC_ATTACH, &a);
	}
	for (i = 0; i < NSESS; i++)
		refresh(&w, &w.s[i]);
	/* A queue of each bound pool to begin with. */
	for (i = 0; i < NSESS; i++)
		add_qfd(&w, mmk_queue_create(w.s[i].fd, NULL, i % (MMK_QUEUE_POLICY_MAX + 1), 4, 2));

	worker_loop(&w, calls);
	for (i = 0; i < NQUEUES; i++)
		if (w.qfd[i] >= 0)
			close(w.qfd[i]);

	for (i = 0; i < w.nmaps; i++)
		munmap(w.maps[i].addr, w.maps[i].len);
	for (i = 0; i < NSESS; i++)
		close(w.s[i].fd);
	w.st->done = 1;
	_exit(0);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t read_u64(const char *path)
{
	char buf[64] = "";
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ~0ULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoull(buf, NULL, 0) : ~0ULL;
}

/* Which debugging the kernel has, or NULL for a production kernel. */
static const char *debug_kernel(void)
{
	if (!access("/sys/kernel/debug/kmemleak", F_OK))
		return "kmemleak";
	if (!access("/proc/lockdep", F_OK))
		return "lockdep";
	if (!access("/sys/kernel/debug/failslab", F_OK))
		return "fault injection";
	return NULL;
}

static const char *const kind_names[] = {
	"-", "ioctl", "ioctl (mmk magic, any nr)", "ioctl (any cmd)", "mmap",
	"munmap/mprotect/mremap/madvise", "session", "read/write/poll/dup", "fork",
	"store (valid)", "queue fd: info/poll/read/dup/close",
};

/* The module, after all that, works as it should. */
static void module_works(struct __test_metadata *_metadata)
{
	unsigned char payload[300], back[300];
	struct mmk_msg_header h = { .sequence = 99 };
	struct mmk_release r = { 0 };
	struct mmk_pool_info info;
	char name[MMK_NAME_MAX];
	struct mmk_guard g;
	unsigned char *w;
	size_t len, i;
	uint64_t tok;
	void *map;
	int fd, fd2;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)(i * 13 + 5);
	snprintf(name, sizeof(name), "fuzz-%d-after", getpid());
	fd = mmk_create(name, 5000, 4, 0600, FZ_TYPE, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd);
	fd2 = mmk_attach(name, FZ_TYPE);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mmk_info(fd2, &info));
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(4U, info.available);
	map = mmk_map(fd2, &len);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 7, &tok));
	ASSERT_EQ(0, mmk_guard(fd2, MMK_IOC_READ, tok, &g));
	EXPECT_EQ(0, memcmp(payload, mmk_payload(map, g.offset), sizeof(payload)));
	EXPECT_EQ(-EBUSY, mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g));
	ASSERT_EQ(0, mmk_read_release(fd2, tok));

	/* Write back, then in place through a window. */
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g));
	for (i = 0; i < sizeof(back); i++)
		back[i] = payload[i] ^ 0xff;
	r.token = tok;
	r.flags = MMK_RELEASE_COMMIT;
	r.payload_size = sizeof(back);
	r.header = (uintptr_t)&h;
	r.payload = (uintptr_t)back;
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r));
	EXPECT_EQ(0, memcmp(back, mmk_payload(map, g.offset), sizeof(back)));
	EXPECT_EQ(99U, mmk_at(map, g.offset)->sequence);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g));
	w = mmap(NULL, info.slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 MMK_WINDOW_OFFSET(g.offset));
	ASSERT_NE(MAP_FAILED, w);
	w[sizeof(struct mmk_msg_header)] = 0x42;
	ASSERT_EQ(0, mmk_write_release(fd, tok));
	EXPECT_EQ(0x42, mmk_payload(map, g.offset)[0]);
	munmap(w, info.slot_size);
	ASSERT_EQ(0, mmk_free_token(fd2, tok));

	/* A queue: store-and-push through one session, pop through the other. */
	do {
		int qfd = mmk_queue_create(fd, "after", MMK_QUEUE_REJECT, 2, 0), q2;
		struct mmk_popped e;

		ASSERT_LE(0, qfd);
		q2 = mmk_queue_open_name(fd2, "after");
		ASSERT_LE(0, q2);
		ASSERT_EQ(0, mmk_store_push(fd, qfd, &h, payload, 10, &tok));
		EXPECT_EQ(-EINPROGRESS, mmk_free_token(fd, tok));
		ASSERT_EQ(0, mmk_pop1(fd2, q2, 0, &e));
		EXPECT_EQ(tok, e.token);
		EXPECT_EQ(0, memcmp(payload, mmk_payload(map, e.offset), 10));
		EXPECT_EQ(0, mmk_read_release(fd2, tok));
		EXPECT_EQ(-ENODATA, mmk_free_token(fd, tok));
		close(q2);
		close(qfd);
	} while (0);
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(4U, info.available);
	EXPECT_EQ(0U, info.read_guards + info.write_guards + info.poisoned);
	munmap(map, len);
	close(fd2);
	close(fd);
}

/*
 * The module's size limits are lowered for the run, so that a mutated size
 * makes a small pool or none: large pools would only slow the run down
 * (POOL_INFO and a session's close walk every slot), and their limits are
 * the business of the other tests.  The teardown puts them back.
 */
static const struct {
	const char *name;
	const char *value;
} fz_limits[] = {
	{ "max_capacity", "1024" },
	{ "max_pool_bytes", "4194304" },
	{ "max_queue_items", "64" },
};

FIXTURE(fz) {
	char saved[ARRAY_SIZE(fz_limits)][32];
};

static int param_io(const char *name, char *buf, size_t len, bool write_it)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/module/mmk/parameters/%s", name);
	fd = open(path, (write_it ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write_it ? write(fd, buf, strlen(buf)) : read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	if (!write_it) {
		buf[n] = '\0';
		if (n && buf[n - 1] == '\n')
			buf[n - 1] = '\0';
	}
	return 0;
}

FIXTURE_SETUP(fz)
{
	char value[32];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fz_limits); i++) {
		ASSERT_EQ(0, param_io(fz_limits[i].name, self->saved[i], sizeof(self->saved[i]),
				      false));
		snprintf(value, sizeof(value), "%s", fz_limits[i].value);
		if (param_io(fz_limits[i].name, value, sizeof(value), true))
			self->saved[i][0] = '\0';	/* not root: the run is just slower */
	}
}

FIXTURE_TEARDOWN(fz)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fz_limits); i++) {
		if (self->saved[i][0] &&
		    param_io(fz_limits[i].name, self->saved[i], sizeof(self->saved[i]), true))
			TH_LOG("could not restore %s", fz_limits[i].name);
	}
}

TEST_F_TIMEOUT(fz, ioctls_mmaps_and_sessions, 590)
{
	const char *debug = debug_kernel();
	const char *env_seed = getenv("MMK_SEED"), *env_calls = getenv("MMK_FUZZ_CALLS");
	uint64_t pools = read_u64(POOLS_FILE), bytes = read_u64(BYTES_FILE);
	unsigned long calls = debug ? 1000000 : 100000, total, next_report;
	struct fz_stats sum = { 0 };
	struct fz_shared *sh;
	pid_t pids[NWORKERS];
	int status[NWORKERS];
	unsigned int i, k, alive;
	uint64_t seed;
	double t0, secs;

	if (env_seed && *env_seed) {
		seed = strtoull(env_seed, NULL, 0);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ ts.tv_nsec ^ (uint64_t)getpid() << 40;
	}
	if (env_calls && *env_calls)
		calls = strtoul(env_calls, NULL, 0);
	ASSERT_LT(0UL, calls);
	TH_LOG("seed %#llx (MMK_SEED=%#llx repeats it), %lu calls from %d processes, %s kernel",
	       (unsigned long long)seed, (unsigned long long)seed, calls, NWORKERS,
	       debug ? debug : "production");

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	for (k = 0; k < NNAMES; k++)
		snprintf(sh->names[k], MMK_NAME_MAX, "fuzz-%d-%u", getpid(), k);

	t0 = now();
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < NWORKERS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			worker_main(sh, i, seed, calls / NWORKERS + (i < calls % NWORKERS));
		}
	}
	next_report = calls / 4;
	for (alive = NWORKERS; alive;) {
		for (i = 0; i < NWORKERS; i++) {
			if (pids[i] > 0 && waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
				pids[i] = 0;
				alive--;
			}
		}
		for (total = 0, i = 0; i < NWORKERS; i++)
			total += sh->w[i].calls;
		if (total >= next_report && alive) {
			TH_LOG("%lu calls, %.0f s", total, now() - t0);
			next_report += calls / 4;
		}
		if (alive)
			usleep(200000);
	}
	secs = now() - t0;

	for (i = 0; i < NWORKERS; i++) {
		struct fz_stats *st = &sh->w[i];

		if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) || !st->done) {
			int code = WIFSIGNALED(status[i]) ? WTERMSIG(status[i]) :
							    WEXITSTATUS(status[i]);

			TH_LOG("worker %u: %s %d after %lu calls; last: %s, cmd/offset %#lx, "
			       "arg/len %#lx",
			       i, WIFSIGNALED(status[i]) ? "killed by signal" : "exit status", code,
			       st->calls, kind_names[st->last_kind < ARRAY_SIZE(kind_names) ?
						     st->last_kind : 0],
			       st->last_cmd, st->last_arg);
		}
		EXPECT_TRUE(WIFEXITED(status[i]) && !WEXITSTATUS(status[i]) && st->done);
		sum.calls += st->calls;
		sum.ioctls += st->ioctls;
		sum.ioctl_ok += st->ioctl_ok;
		sum.maps += st->maps;
		sum.maps_ok += st->maps_ok;
		sum.touch_signals += st->touch_signals;
		sum.stores_ok += st->stores_ok;
		sum.guards_ok += st->guards_ok;
		sum.creates_ok += st->creates_ok;
		sum.attaches_ok += st->attaches_ok;
		sum.queues_ok += st->queues_ok;
		sum.pushes_ok += st->pushes_ok;
		sum.pops_ok += st->pops_ok;
		sum.queue_ops += st->queue_ops;
		sum.forks += st->forks;
		if (st->max_capacity > sum.max_capacity)
			sum.max_capacity = st->max_capacity;
		if (st->max_map > sum.max_map)
			sum.max_map = st->max_map;
		for (k = 0; k < ARRAY_SIZE(sum.kind_ops); k++)
			sum.kind_ops[k] += st->kind_ops[k];
		for (k = 0; k < ARRAY_SIZE(sum.err); k++)
			sum.err[k] += st->err[k];
	}
	TH_LOG("%lu calls in %.1f s: %.0f calls/s; %lu ioctls (%lu worked), %lu mmaps (%lu worked)",
	       sum.calls, secs, sum.calls / secs, sum.ioctls, sum.ioctl_ok, sum.maps, sum.maps_ok);
	TH_LOG("worked: %lu stores, %lu guards, %lu creates, %lu attaches; %lu forks, "
	       "%lu touches faulted",
	       sum.stores_ok, sum.guards_ok, sum.creates_ok, sum.attaches_ok, sum.forks,
	       sum.touch_signals);
	TH_LOG("worked: %lu queue opens, %lu pushes, %lu pops; %lu ops on queue fds",
	       sum.queues_ok, sum.pushes_ok, sum.pops_ok, sum.queue_ops);
	TH_LOG("largest pool bound: %lu slots, %lu bytes", sum.max_capacity, sum.max_map);
	for (k = 1; k < ARRAY_SIZE(kind_names); k++)
		TH_LOG("  %-32s %8lu", kind_names[k], sum.kind_ops[k]);
	for (k = 0; k < ARRAY_SIZE(sum.err); k++) {
		if (sum.err[k] * 200 >= sum.ioctls)
			TH_LOG("  %-12s %lu", k ? strerrorname_np(k) : "other", sum.err[k]);
	}
	EXPECT_LE(calls, sum.calls);
	/* The generator reached the paths that do something. */
	EXPECT_LT(0UL, sum.stores_ok);
	EXPECT_LT(0UL, sum.guards_ok);
	EXPECT_LT(0UL, sum.creates_ok);
	EXPECT_LT(0UL, sum.attaches_ok);
	EXPECT_LT(0UL, sum.maps_ok);
	EXPECT_LT(0UL, sum.queues_ok);
	EXPECT_LT(0UL, sum.pushes_ok);
	EXPECT_LT(0UL, sum.pops_ok);

	/* Every pool went with the processes, and the module works. */
	EXPECT_EQ(pools, read_u64(POOLS_FILE));
	EXPECT_EQ(bytes, read_u64(BYTES_FILE));
	module_works(_metadata);
	EXPECT_EQ(pools, read_u64(POOLS_FILE));
	munmap(sh, sizeof(*sh));
}

TEST_HARNESS_MAIN
