// SPDX-License-Identifier: GPL-2.0
/*
 * diff_test - the heap backend and the kernel backend, in lockstep.
 *
 * A seeded random sequence of operations (store, read, peek_header,
 * read_mut, the three releases, free) is applied to a heap manager and to
 * a /dev/mmk pool of the same capacity, payload size, payload type and
 * memory class.  After every step both must have returned the same error,
 * both guards must be held or not held alike, every byte read through a
 * guard must be the same on both sides (and what the test stored there),
 * and mmk_available() must agree.  The first step where they differ ends
 * the run with the seed, the step, the operation and both answers.
 *
 * Tokens are opaque and differ between the backends (the pool tag, at
 * least), so the test keeps a table of every pair of tokens the two
 * stores returned, and always hands each backend its own half:
 *
 *   live     a message both sides hold
 *   freed    one of the last messages freed: its slot may be empty still
 *            (NOT_ALLOCATED) or reused (stale: BAD_TOKEN)
 *   history  any token ever returned: live, freed, or stale (slot reused)
 *   foreign  a message of another manager (a second heap manager and a
 *            second kernel pool)
 *   invalid  MMK_TOKEN_INVALID
 *   random   the same random 64-bit value on both sides (never one with
 *            either pool's tag, so it is garbage on both)
 *   mutated  a past token of each side, changed the same way in the
 *            token layout of docs/DESIGN.md (slot index in bits 0-19,
 *            generation in bits 20-47, pool tag in bits 48-63): an older
 *            generation, a generation far ahead, an index past the
 *            capacity, or another pool tag.  By SPEC §3 each of these is
 *            a bad token on any backend.
 *   unused   the first generation of a slot no store has used yet on either
 *            side: an empty slot whose generation matches (SPEC §3:
 *            NOT_ALLOCATED).  The heap starts every slot at 0, a kernel pool
 *            at a random generation of its own; each is learnt, with the
 *            pool tag, from the side's first token (its slot's first + 1)
 *
 * Releases are also tried on copies of guards taken before their release
 * (a misuse, on which both sides must agree too).  The mix of operations
 * changes in phases (fill the pool, drain it, hoard guards up to the
 * guard limits, focus on one message), so that full pools, empty pools,
 * borrow conflicts and MMK_E_LIMIT all occur.
 *
 * Three runs: the main one (100000 operations by default) on an ordinary
 * pool, whose write guards are write-back buffers, a shorter one on an
 * MMK_POOL_PAGE_ALIGNED pool, whose write guards are writable windows, and
 * a queue run (50000 operations by default: queues of every policy, with
 * pushes, fan-outs, store-pushes, commit-pushes, pops, write pops, pops of
 * N, peeks, releases, frees, batches, and queues closed with messages
 * inside; see queue_lockstep.h).  Each prints one TAP line.  The seed is taken from the time unless given,
 * and is always printed; the same seed replays the same run.
 *
 *	diff_test [-b kernel|static|heap] [-s seed] [-n ops] [-p page_aligned_ops]
 *		  [-q queue_ops] [-v]
 *
 * With -b static or -b heap the heap manager is compared with a static
 * manager or a second heap manager instead, which needs no /dev/mmk.  Tokens
 * are printed as heap/other pairs.
 *
 * Exit status: 0 if both runs passed, 1 if one failed, 4 (kselftest's
 * "skip") if /dev/mmk does not exist.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mmk/mmk.h>

#include "queue_lockstep.h"

#define DEFAULT_OPS		100000
#define DEFAULT_PAGE_OPS	20000
#define DEFAULT_QUEUE_OPS	50000
#define KSFT_SKIP		4

/* The token layout documented in docs/DESIGN.md (and used by every backend). */
#define TOK_INDEX_MASK		0xfffffULL
#define TOK_GEN_SHIFT		20
#define TOK_GEN_MASK		0xfffffffULL
#define TOK_TAG_SHIFT		48

#define MAX_GUARDS		4096	/* per kind, held by the test at once */
#define COPY_RING		64	/* copies of released guards kept */
#define FREED_RING		16	/* tokens of the last messages freed */
#define LOG_RING		8	/* recent steps printed on failure */
#define LOG_LEN			200

static bool verbose;

/* What the heap manager is compared with: the kernel (in the guest), or on
 * any machine a static manager or a second heap manager (-b). */
enum versus { VS_KERNEL, VS_STATIC, VS_HEAP };
static enum versus versus = VS_KERNEL;
static const char *oname = "kernel";

/* Storage for -b static: big enough for every configuration drawn below. */
#define STATIC_MAX_CAP		64
#define STATIC_MAX_PAYLOAD	9000
static MMK_STATIC_STORAGE(static_pool, STATIC_MAX_CAP, STATIC_MAX_PAYLOAD);

/* ---- random numbers ----------------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)	/* splitmix64 */
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform enough in [0, n) for n far below 2^64. */
static uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rnd(r) % n) : 0;
}

static bool chance(struct rng *r, unsigned int percent)
{
	return below(r, 100) < percent;
}

/* The payload bytes for a content seed: anyone can recompute them. */
static void fill(unsigned char *buf, size_t size, uint64_t seed)
{
	struct rng r = { seed };

	for (size_t i = 0; i < size; i += 8) {
		uint64_t z = rnd(&r);

		memcpy(buf + i, &z, size - i < 8 ? size - i : 8);
	}
}

/* ---- state of one run ------------------------------------------------------------ */

enum op {
	OP_STORE, OP_READ, OP_PEEK, OP_READ_MUT, OP_READ_REL, OP_HDR_REL, OP_WRITE_REL,
	OP_FREE, OP_COPY_REL, OP_LOAN, OP_CANCEL, OP_BATCH, NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"store", "read", "peek_header", "read_mut", "read_release", "header_release",
	"write_release", "free", "release_of_copy", "loan", "write_cancel", "batch",
};

enum tok_kind {
	TK_LIVE, TK_FREED, TK_HISTORY, TK_FOREIGN, TK_INVALID, TK_RANDOM, TK_MUTATED,
	TK_UNUSED, NR_TK
};

static const char *const tk_name[NR_TK] = {
	"live", "freed", "history", "foreign", "invalid", "random", "mutated", "unused",
};

enum phase { PH_BALANCED, PH_FILL, PH_DRAIN, PH_HOARD, PH_FOCUS, NR_PHASES };

/* Relative weight of each operation in each phase. */
static const unsigned int weights[NR_PHASES][NR_OPS] = {
	/*		  store read peek mut  rrel hrel wrel free copy loan cncl batch */
	[PH_BALANCED] = { 20,   14,  8,   6,   12,  8,   8,   22,  2,   6,   4,   6 },
	[PH_FILL]     = { 45,   10,  5,   4,   10,  6,   6,   12,  2,   12,  2,   8 },
	[PH_DRAIN]    = {  6,    5,  3,   2,   26,  18,  16,  23,  1,   2,   8,   6 },
	[PH_HOARD]    = {  8,   48,  30,  7,   0,   0,   0,   7,   0,   2,   0,   10 },
	[PH_FOCUS]    = { 10,   30,  15,  15,  10,  8,   8,   4,   0,   4,   4,   4 },
};

static const char *const phase_name[NR_PHASES] = {
	"balanced", "fill", "drain", "hoard", "focus",
};

struct pair {
	uint64_t h, k;		/* the heap's token, the kernel's token */
};

/* A message both sides hold, and what it must read as. */
struct live {
	struct pair tok;
	struct mmk_header hdr;	/* as mmk must have stored it */
	unsigned char *payload;	/* payload_max bytes */
};

struct rguard {
	struct mmk_read_guard h, k;
};

struct hguard {
	struct mmk_header_guard h, k;
};

struct wguard {
	struct mmk_write_guard h, k;
	struct mmk_header want;	/* what the message says now (normalised) */
	bool bad;		/* the last edit left a header release must refuse */
	bool edited;		/* written through since it was taken */
	bool loan;		/* from mmk_loan, not yet published */
	unsigned char *payload;	/* what its payload is now */
};

struct copy {			/* a copy of a guard taken before its release */
	int kind;		/* OP_READ_REL, OP_HDR_REL or OP_WRITE_REL */
	union {
		struct rguard r;
		struct hguard hd;
		struct wguard w;
	};
};

/* The ops of one mmk_batch call, for each side, and what the test expects of them. */
#define BATCH_CHUNK		256	/* ops per MMK_IOC_BATCH */
#define BATCH_MAX		600
#define BATCH_PAYLOAD		64	/* largest payload a batch stores */

struct batch {
	struct mmk_batch_op h[BATCH_MAX], k[BATCH_MAX];
	struct pair tok[BATCH_MAX];
	struct mmk_header hdr[BATCH_MAX], want[BATCH_MAX];
	bool ok_hdr[BATCH_MAX];
	bool clean;		/* meant to run through: live tokens, good stores */
	unsigned char payload[BATCH_MAX * BATCH_PAYLOAD];
};

struct run {
	const char *name;
	uint64_t seed;
	struct rng rng;
	uint64_t nops, step;
	struct mmk_config cfg;
	struct mmk_manager *heap, *kern;		/* the two under test */
	struct mmk_manager *heap2, *kern2;		/* for foreign tokens */
	struct pair foreign;
	uint64_t heap_tag, kern_tag;			/* learnt from the first store */
	uint64_t heap_gen0, kern_gen0;			/* first generation, likewise */
	bool tags_known;

	struct live *live;
	uint32_t nlive;
	struct pair *hist;
	uint64_t nhist, hist_cap;
	struct pair freed[FREED_RING];
	uint32_t nfreed;
	unsigned char *used;				/* slot index seen in a token */

	struct rguard *rg;
	struct hguard *hg;
	struct wguard *wg;
	uint32_t nrg, nhg, nwg;
	struct copy copies[COPY_RING];
	uint32_t ncopies;

	enum phase phase;
	uint64_t phase_end;
	uint32_t nphases;
	uint32_t focus;					/* index into live[] */

	unsigned char *scratch;				/* payload_max + 256 bytes */
	char log[LOG_RING][LOG_LEN];
	bool failed;

	/* Coverage: what each operation returned, and which tokens were used. */
	uint64_t outcome[NR_OPS][MMK_E_SYSTEM + 1];
	uint64_t tk_count[NR_TK];
	uint64_t max_guards;
	uint64_t batch_ops;				/* ops that succeeded in batches */

	struct batch batch;
};

/* ---- reporting ------------------------------------------------------------------- */

static void __attribute__((format(printf, 2, 3))) logstep(struct run *r, const char *fmt, ...)
{
	char *line = r->log[r->step % LOG_RING];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, LOG_LEN, fmt, ap);
	va_end(ap);
	if (verbose)
		printf("# %s step %" PRIu64 ": %s\n", r->name, r->step, line);
}

/* Report the first difference and mark the run failed.  Returns false. */
static bool __attribute__((format(printf, 2, 3))) fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return false;
	r->failed = true;
	printf("# FAIL %s, seed %" PRIu64 ", step %" PRIu64 " of %" PRIu64 " (phase %s):\n",
	       r->name, r->seed, r->step, r->nops, phase_name[r->phase]);
	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n#   recent steps, oldest first:\n");
	for (uint64_t s = r->step >= LOG_RING - 1 ? r->step - (LOG_RING - 1) : 0; s <= r->step; s++)
		printf("#     %" PRIu64 ": %s\n", s, r->log[s % LOG_RING]);
	printf("#   replay: diff_test%s%s -s %" PRIu64 " -v\n", versus == VS_KERNEL ? "" : " -b ",
	       versus == VS_KERNEL ? "" : oname, r->seed);
	fflush(stdout);
	return false;
}

static const char *en(enum mmk_error e)
{
	return mmk_error_name(e);
}

/* The same answer from both?  Counts the outcome for the coverage report. */
static bool same(struct run *r, enum op op, enum mmk_error eh, enum mmk_error ek)
{
	if (eh != ek)
		return fail(r, "%s: heap returned %s, %s returned %s", op_name[op], en(eh),
			    oname, en(ek));
	if ((unsigned int)eh <= MMK_E_SYSTEM)
		r->outcome[op][eh]++;
	if (eh == MMK_E_SYSTEM)
		return fail(r, "%s: MMK_E_SYSTEM on both sides (errno %d)", op_name[op], errno);
	return true;
}

/* ---- tokens ------------------------------------------------------------------------- */

static uint64_t tok_index(uint64_t t)
{
	return t & TOK_INDEX_MASK;
}

static uint64_t tok_gen(uint64_t t)
{
	return (t >> TOK_GEN_SHIFT) & TOK_GEN_MASK;
}

static uint64_t tok_tag(uint64_t t)
{
	return t >> TOK_TAG_SHIFT;
}

static uint64_t tok_make(uint64_t tag, uint64_t gen, uint64_t index)
{
	return tag << TOK_TAG_SHIFT | (gen & TOK_GEN_MASK) << TOK_GEN_SHIFT |
	       (index & TOK_INDEX_MASK);
}

static struct live *find_live(struct run *r, struct pair t, uint32_t *at)
{
	for (uint32_t i = 0; i < r->nlive; i++) {
		if (r->live[i].tok.h == t.h) {
			if (r->live[i].tok.k != t.k)
				return NULL;
			if (at)
				*at = i;
			return &r->live[i];
		}
	}
	return NULL;
}

static bool is_write_held(const struct run *r, struct pair t)
{
	for (uint32_t i = 0; i < r->nwg; i++)
		if (r->wg[i].h.token == t.h)
			return true;
	return false;
}

/* One variant of SPEC §3's "bad token", applied to a token of either side. */
static uint64_t mutate(const struct run *r, uint64_t t, unsigned int how, uint64_t arg)
{
	uint64_t idx = tok_index(t), gen = tok_gen(t), tag = tok_tag(t);

	switch (how) {
	case 0:		/* an older generation of the same slot: stale */
		if (gen)
			return tok_make(tag, gen - 1 - arg % gen, idx);
		/* fall through */
	case 1:		/* a generation no store can reach in this run */
		return tok_make(tag, gen + (TOK_GEN_MASK + 1) / 2, idx);
	case 2:		/* a slot past the capacity */
		return tok_make(tag, gen, r->cfg.capacity + arg % (TOK_INDEX_MASK + 1 -
								   r->cfg.capacity));
	default:	/* another pool's tag */
		return tok_make(tag ^ (1 + arg % 0xfffe), gen, idx);
	}
}

/* Pick the token(s) an operation is tried on. */
static struct pair pick_token(struct run *r, enum tok_kind *kind_out)
{
	unsigned int live_pct = r->phase == PH_HOARD || r->phase == PH_FOCUS ? 85 : 50;
	struct pair p = { MMK_TOKEN_INVALID, MMK_TOKEN_INVALID };
	enum tok_kind kind = TK_INVALID;
	unsigned int x;

	if (r->nlive && chance(&r->rng, live_pct)) {
		kind = TK_LIVE;
		if (r->phase == PH_FOCUS && chance(&r->rng, 80))
			p = r->live[r->focus % r->nlive].tok;
		else
			p = r->live[below(&r->rng, r->nlive)].tok;
		goto out;
	}
	x = below(&r->rng, 100);
	if (x < 20) {
		if (r->nfreed) {
			kind = TK_FREED;
			p = r->freed[below(&r->rng, r->nfreed < FREED_RING ? r->nfreed : FREED_RING)];
		}
	} else if (x < 40) {
		if (r->nhist) {
			kind = TK_HISTORY;
			p = r->hist[below(&r->rng, (uint32_t)r->nhist)];
		}
	} else if (x < 50) {
		kind = TK_FOREIGN;
		p = r->foreign;
	} else if (x < 58) {
		kind = TK_INVALID;
	} else if (x < 68) {
		if (r->tags_known) {
			kind = TK_RANDOM;
			do {
				p.h = rnd(&r->rng);
			} while (tok_tag(p.h) == r->heap_tag || tok_tag(p.h) == r->kern_tag);
			p.k = p.h;
		}
	} else if (x < 90) {
		if (r->nhist) {
			struct pair base = r->hist[below(&r->rng, (uint32_t)r->nhist)];
			unsigned int how = below(&r->rng, 4);
			uint64_t arg = rnd(&r->rng);

			kind = TK_MUTATED;
			p.h = mutate(r, base.h, how, arg);
			p.k = mutate(r, base.k, how, arg);
		}
	} else if (r->tags_known) {
		uint32_t idx = below(&r->rng, r->cfg.capacity), n;

		/* The first slot from idx on that no token has named yet. */
		for (n = 0; n < r->cfg.capacity && r->used[idx]; n++)
			idx = (idx + 1) % r->cfg.capacity;
		if (n < r->cfg.capacity) {
			kind = TK_UNUSED;
			p.h = tok_make(r->heap_tag, r->heap_gen0, idx);
			p.k = tok_make(r->kern_tag, r->kern_gen0, idx);
		}
	}
out:
	r->tk_count[kind]++;
	*kind_out = kind;
	return p;
}

/* ---- messages ----------------------------------------------------------------------- */

/*
 * A random header, as a caller might pass it: the fields mmk sets are
 * garbage on purpose.  Sometimes (bad_pct) one rule of SPEC §2 is broken.
 * *want gets the header mmk must store for a payload of @size.
 */
static bool random_header(struct run *r, struct mmk_header *h, struct mmk_header *want,
			  uint32_t size, unsigned int bad_pct)
{
	memset(h, 0, sizeof(*h));
	h->trace_id = rnd(&r->rng);
	h->sequence = rnd(&r->rng);
	h->created_tick = rnd(&r->rng);
	h->flags = (uint32_t)rnd(&r->rng) & (MMK_MSG_FIRST_IN_BATCH | MMK_MSG_LAST_IN_BATCH |
					     MMK_MSG_DEGRADE_ALLOWED);
	if (chance(&r->rng, 30)) {
		h->flags |= MMK_MSG_HAS_DEADLINE;
		h->deadline_ns = rnd(&r->rng);
	}
	h->qos = (uint8_t)below(&r->rng, MMK_QOS_LATENCY_CRITICAL + 1);
	h->payload_size = (uint32_t)rnd(&r->rng);
	h->memory_class = (uint8_t)rnd(&r->rng);
	h->memory_device = (uint16_t)rnd(&r->rng);

	*want = *h;
	if (!want->qos)
		want->qos = MMK_QOS_BEST_EFFORT;
	want->payload_size = size;
	want->memory_class = (uint8_t)r->cfg.memory_class;
	want->memory_device = 0;

	if (!chance(&r->rng, bad_pct))
		return true;
	switch (below(&r->rng, 5)) {
	case 0:
		h->flags |= 1U << (4 + below(&r->rng, 28));
		break;
	case 1:
		h->qos = (uint8_t)(MMK_QOS_LATENCY_CRITICAL + 1 + below(&r->rng, 252));
		break;
	case 2:
		h->flags &= ~MMK_MSG_HAS_DEADLINE;
		h->deadline_ns = 1 + rnd(&r->rng) % UINT64_MAX;
		break;
	case 3:
		h->reserved0 = 1 + below(&r->rng, UINT32_MAX);
		break;
	default:
		h->reserved1[below(&r->rng, 2)] = 1 + rnd(&r->rng) % UINT64_MAX;
		break;
	}
	return false;
}

/* The first field in which two headers differ. */
static const char *header_diff(const struct mmk_header *a, const struct mmk_header *b)
{
#define FIELD(f) { #f, offsetof(struct mmk_header, f), sizeof(a->f) }
	static const struct {
		const char *name;
		size_t off, size;
	} fields[] = {
		FIELD(trace_id), FIELD(sequence), FIELD(created_tick), FIELD(deadline_ns),
		FIELD(payload_size), FIELD(flags), FIELD(qos), FIELD(memory_class),
		FIELD(memory_device), FIELD(reserved0), FIELD(reserved1),
	};
#undef FIELD

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (memcmp((const char *)a + fields[i].off, (const char *)b + fields[i].off,
			   fields[i].size))
			return fields[i].name;
	return "padding";
}

/* The message behind both guards must be the same, and what the test put there. */
static bool check_msg(struct run *r, const char *what, const struct mmk_message *mh,
		      const struct mmk_message *mk, const struct live *l, bool header_only)
{
	uint32_t size = mh->header.payload_size;

	if (memcmp(&mh->header, &mk->header, sizeof(mh->header)))
		return fail(r, "%s: the headers differ in %s (payload_size: heap %" PRIu32
			    ", %s %" PRIu32 "; qos: heap %u, %s %u)", what,
			    header_diff(&mh->header, &mk->header), mh->header.payload_size, oname,
			    mk->header.payload_size, mh->header.qos, oname, mk->header.qos);
	if (memcmp(&mh->header, &l->hdr, sizeof(l->hdr)))
		return fail(r, "%s: the header is not the one stored: %s differs (payload_size %"
			    PRIu32 ", expected %" PRIu32 ")", what, header_diff(&mh->header, &l->hdr),
			    size, l->hdr.payload_size);
	if (header_only)
		return true;
	if (memcmp(mh->payload, mk->payload, size))
		return fail(r, "%s: the payloads (%" PRIu32 " bytes) differ", what, size);
	if (memcmp(mh->payload, l->payload, size))
		return fail(r, "%s: the payload is not the one stored", what);
	return true;
}

static bool check_guard_clear(struct run *r, const char *what, const void *hmsg,
			      const void *hown, const void *kmsg, const void *kown)
{
	if (hmsg || hown || kmsg || kown)
		return fail(r, "%s failed but left a guard marked held (heap %p/%p, %s %p/%p)",
			    what, hmsg, hown, oname, kmsg, kown);
	return true;
}

static void remember_copy(struct run *r, int kind, const void *g, size_t size)
{
	struct copy *c = &r->copies[r->ncopies++ % COPY_RING];

	c->kind = kind;
	memcpy(&c->r, g, size);
}

/* ---- operations ------------------------------------------------------------------------ */

static uint64_t guards_held(const struct run *r)
{
	return (uint64_t)r->nrg + r->nhg + r->nwg;
}

static bool add_live(struct run *r, const char *what, struct pair t,
		     const struct mmk_header *want, const void *payload, uint32_t size);

static bool do_store(struct run *r)
{
	uint32_t pmax = r->cfg.payload_size, size;
	struct mmk_header h, want;
	uint64_t th, tk, cseed = rnd(&r->rng);
	const void *payload = r->scratch;
	const struct mmk_header *hp = &h;
	enum mmk_error eh, ek;
	bool ok_hdr;

	size = chance(&r->rng, 4) ? pmax + 1 + below(&r->rng, 200) : below(&r->rng, pmax + 1);
	fill(r->scratch, size > pmax + 200 ? 0 : size, cseed);
	ok_hdr = random_header(r, &h, &want, size, 6);
	if (chance(&r->rng, 5)) {
		hp = NULL;	/* an all-zero header */
		memset(&want, 0, sizeof(want));
		want.qos = MMK_QOS_BEST_EFFORT;
		want.payload_size = size;
		want.memory_class = (uint8_t)r->cfg.memory_class;
		ok_hdr = true;
	}
	if (size && chance(&r->rng, 2))
		payload = NULL;
	logstep(r, "store %" PRIu32 " bytes (max %" PRIu32 ")%s%s%s", size, pmax,
		hp ? "" : ", no header", ok_hdr ? "" : ", bad header",
		payload ? "" : ", payload NULL");

	eh = mmk_store(r->heap, hp, payload, size, &th);
	ek = mmk_store(r->kern, hp, payload, size, &tk);
	if (!same(r, OP_STORE, eh, ek))
		return false;
	if (eh != MMK_OK) {
		if (th != MMK_TOKEN_INVALID || tk != MMK_TOKEN_INVALID)
			return fail(r, "store failed but set a token (0x%" PRIx64 "/0x%" PRIx64 ")",
				    th, tk);
		return true;
	}
	if (!ok_hdr || size > pmax || !payload)
		return fail(r, "store succeeded on both sides with a bad argument");
	if (!add_live(r, "store", (struct pair){ th, tk }, &want, r->scratch, size))
		return false;
	logstep(r, "store %" PRIu32 " bytes -> 0x%016" PRIx64 "/0x%016" PRIx64,
		size, th, tk);
	return true;
}

/* A store or a loan returned tokens @t: the message is live, with this content. */
static bool add_live(struct run *r, const char *what, struct pair t,
		     const struct mmk_header *want, const void *payload, uint32_t size)
{
	uint64_t th = t.h, tk = t.k;

	if (r->nlive >= r->cfg.capacity)
		return fail(r, "%s succeeded on a full pool", what);

	struct live *l = &r->live[r->nlive++];

	l->tok = t;
	l->hdr = *want;
	memcpy(l->payload, payload, size);
	if (r->nhist == r->hist_cap) {
		r->hist_cap *= 2;
		r->hist = realloc(r->hist, r->hist_cap * sizeof(*r->hist));
		if (!r->hist)
			return fail(r, "out of memory");
	}
	r->hist[r->nhist++] = l->tok;
	r->used[tok_index(th) % r->cfg.capacity] = 1;
	r->used[tok_index(tk) % r->cfg.capacity] = 1;
	if (!r->tags_known) {
		r->heap_tag = tok_tag(th);
		r->kern_tag = tok_tag(tk);
		r->heap_gen0 = (tok_gen(th) - 1) & TOK_GEN_MASK;
		r->kern_gen0 = (tok_gen(tk) - 1) & TOK_GEN_MASK;
		r->tags_known = true;
	}
	return true;
}

static bool do_acquire(struct run *r, enum op op)
{
	enum tok_kind kind;
	struct pair t = pick_token(r, &kind);
	enum mmk_error eh, ek;
	struct live *l;
	bool ok = true;

	if ((op == OP_READ && r->nrg == MAX_GUARDS) || (op == OP_PEEK && r->nhg == MAX_GUARDS))
		return true;
	logstep(r, "%s %s token 0x%016" PRIx64 "/0x%016" PRIx64, op_name[op],
		tk_name[kind], t.h, t.k);

	if (op == OP_READ) {
		struct rguard *g = &r->rg[r->nrg];

		eh = mmk_read(r->heap, t.h, &g->h);
		ek = mmk_read(r->kern, t.k, &g->k);
		if (!same(r, op, eh, ek))
			return false;
		if (eh)
			return check_guard_clear(r, "read", g->h.msg, g->h.owner, g->k.msg,
						 g->k.owner);
		r->nrg++;
		l = find_live(r, t, NULL);
		if (!l)
			return fail(r, "read succeeded on a token that names no live message");
		ok = check_msg(r, "read", g->h.msg, g->k.msg, l, false);
	} else if (op == OP_PEEK) {
		struct hguard *g = &r->hg[r->nhg];

		eh = mmk_peek_header(r->heap, t.h, &g->h);
		ek = mmk_peek_header(r->kern, t.k, &g->k);
		if (!same(r, op, eh, ek))
			return false;
		if (eh)
			return check_guard_clear(r, "peek_header", g->h.msg, g->h.owner, g->k.msg,
						 g->k.owner);
		r->nhg++;
		l = find_live(r, t, NULL);
		if (!l)
			return fail(r, "peek_header succeeded on a token that names no live message");
		ok = check_msg(r, "peek_header", g->h.msg, g->k.msg, l, true);
	} else {
		struct wguard *g = &r->wg[r->nwg];

		eh = mmk_read_mut(r->heap, t.h, &g->h);
		ek = mmk_read_mut(r->kern, t.k, &g->k);
		if (!same(r, op, eh, ek))
			return false;
		if (eh)
			return check_guard_clear(r, "read_mut", g->h.msg, g->h.owner, g->k.msg,
						 g->k.owner);
		r->nwg++;
		l = find_live(r, t, NULL);
		if (!l)
			return fail(r, "read_mut succeeded on a token that names no live message");
		if (r->nwg > r->cfg.capacity)
			return fail(r, "more write guards than slots");
		ok = check_msg(r, "read_mut", g->h.msg, g->k.msg, l, false);
		g->want = l->hdr;
		g->bad = false;
		g->edited = false;
		g->loan = false;
		memcpy(g->payload, l->payload, l->hdr.payload_size);
	}
	if (guards_held(r) > r->max_guards)
		r->max_guards = guards_held(r);
	return ok;
}

static bool do_release_shared(struct run *r, enum op op)
{
	enum mmk_error eh, ek;
	uint32_t i;

	if (op == OP_READ_REL) {
		if (!r->nrg)
			return true;
		i = below(&r->rng, r->nrg);
		struct rguard g = r->rg[i];

		logstep(r, "read_release 0x%016" PRIx64 "/0x%016" PRIx64, g.h.token,
			g.k.token);
		eh = mmk_read_release(&r->rg[i].h);
		ek = mmk_read_release(&r->rg[i].k);
		if (!same(r, op, eh, ek))
			return false;
		if (!eh && (r->rg[i].h.owner || r->rg[i].k.owner || r->rg[i].h.msg ||
			    r->rg[i].k.msg))
			return fail(r, "read_release succeeded but the guard is still marked held");
		/*
		 * Even if the release failed (a copy released this guard's hold
		 * earlier: see do_release_copy), the test forgets the guard.
		 */
		remember_copy(r, op, &g, sizeof(g));
		r->rg[i] = r->rg[--r->nrg];
	} else {
		if (!r->nhg)
			return true;
		i = below(&r->rng, r->nhg);
		struct hguard g = r->hg[i];

		logstep(r, "header_release 0x%016" PRIx64 "/0x%016" PRIx64,
			g.h.token, g.k.token);
		eh = mmk_header_release(&r->hg[i].h);
		ek = mmk_header_release(&r->hg[i].k);
		if (!same(r, op, eh, ek))
			return false;
		if (!eh && (r->hg[i].h.owner || r->hg[i].k.owner || r->hg[i].h.msg ||
			    r->hg[i].k.msg))
			return fail(r, "header_release succeeded but the guard is still marked held");
		remember_copy(r, op, &g, sizeof(g));
		r->hg[i] = r->hg[--r->nhg];
	}
	return true;
}

/*
 * Change the message under a write guard, the same way on both sides:
 * new header and payload (0), header only (1), a bad header (2), a
 * payload size over the slot (3).  Returns the variant.
 */
static unsigned int write_edit(struct run *r, struct wguard *g)
{
	uint32_t pmax = r->cfg.payload_size;
	unsigned int how = below(&r->rng, 100);
	struct mmk_header h, want;
	uint32_t size;

	if (how < 50) {
		size = below(&r->rng, pmax + 1);
		fill(r->scratch, size, rnd(&r->rng));
		random_header(r, &h, &want, size, 0);
		h.payload_size = size;
		memcpy(g->h.msg->payload, r->scratch, size);
		memcpy(g->k.msg->payload, r->scratch, size);
		memcpy(g->payload, r->scratch, size);
		how = 0;
	} else if (how < 75) {
		size = g->want.payload_size;
		random_header(r, &h, &want, size, 0);
		h.payload_size = size;
		how = 1;
	} else if (how < 90) {
		size = g->want.payload_size;
		random_header(r, &h, &want, size, 100);
		h.payload_size = size;
		how = 2;
	} else {
		size = g->want.payload_size;
		random_header(r, &h, &want, size, 0);
		h.payload_size = chance(&r->rng, 80) ? pmax + 1 + below(&r->rng, 4096) :
						       pmax + 1 + below(&r->rng, UINT32_MAX - pmax);
		how = 3;
	}
	g->h.msg->header = h;
	g->k.msg->header = h;
	if (how < 2)
		g->want = want;
	g->bad = how >= 2;
	g->edited = true;
	return how;
}

static bool do_write_release(struct run *r)
{
	static const char *const edit_name[] = {
		"new message", "new header", "bad header", "payload size over the slot",
		"unchanged",
	};
	unsigned int how = 4;
	enum mmk_error eh, ek;
	struct live *l;
	uint32_t i;

	if (!r->nwg)
		return true;
	i = below(&r->rng, r->nwg);
	struct wguard *g = &r->wg[i];

	if (chance(&r->rng, 75))
		how = write_edit(r, g);
	logstep(r, "write_release (%s) 0x%016" PRIx64 "/0x%016" PRIx64,
		edit_name[how], g->h.token, g->k.token);
	struct wguard copy = *g;

	eh = mmk_write_release(&g->h);
	ek = mmk_write_release(&g->k);
	if (!same(r, OP_WRITE_REL, eh, ek))
		return false;
	if (eh) {
		/* The guard stays held; a later release tries again. */
		if (!g->h.owner || !g->k.owner || !g->h.msg || !g->k.msg)
			return fail(r, "write_release failed but dropped the guard");
		if (!g->bad)
			return fail(r, "write_release of a good message failed on both sides");
		return true;
	}
	if (g->bad)
		return fail(r, "write_release of a bad message succeeded on both sides");
	if (g->h.owner || g->k.owner || g->h.msg || g->k.msg)
		return fail(r, "write_release succeeded but the guard is still marked held");
	l = find_live(r, (struct pair){ g->h.token, g->k.token }, NULL);
	if (!l)
		return fail(r, "write_release succeeded on a token that names no live message");
	l->hdr = g->want;
	memcpy(l->payload, g->payload, g->want.payload_size);
	/* Keep the copy (not its payload buffer, which the slot reuses). */
	copy.payload = NULL;
	remember_copy(r, OP_WRITE_REL, &copy, sizeof(copy));
	/* Swap the buffers so each held guard keeps its own. */
	unsigned char *buf = g->payload;

	*g = r->wg[--r->nwg];
	r->wg[r->nwg].payload = buf;
	return true;
}

/*
 * Release a copy of a guard that was already released.  A copy of a read
 * or header guard releases one of the manager's shared guards on that
 * message if it holds another one, and fails otherwise; either way both
 * backends must agree.  A copy of a write guard is only tried while the
 * test holds no write guard on the message (otherwise it would release
 * that guard, and with a kernel window unmap memory it does not own).
 */
static bool do_release_copy(struct run *r)
{
	enum mmk_error eh, ek;
	struct copy c;

	if (!r->ncopies)
		return true;
	c = r->copies[below(&r->rng, r->ncopies < COPY_RING ? r->ncopies : COPY_RING)];
	switch (c.kind) {
	case OP_READ_REL:
		logstep(r, "read_release of a copy, 0x%016" PRIx64 "/0x%016" PRIx64,
			c.r.h.token, c.r.k.token);
		eh = mmk_read_release(&c.r.h);
		ek = mmk_read_release(&c.r.k);
		break;
	case OP_HDR_REL:
		logstep(r, "header_release of a copy, 0x%016" PRIx64 "/0x%016" PRIx64,
			c.hd.h.token, c.hd.k.token);
		eh = mmk_header_release(&c.hd.h);
		ek = mmk_header_release(&c.hd.k);
		break;
	default:
		if (is_write_held(r, (struct pair){ c.w.h.token, c.w.k.token }))
			return true;
		logstep(r, "write_release of a copy, 0x%016" PRIx64 "/0x%016" PRIx64,
			c.w.h.token, c.w.k.token);
		eh = mmk_write_release(&c.w.h);
		ek = mmk_write_release(&c.w.k);
		if (!same(r, OP_COPY_REL, eh, ek))
			return false;
		if (eh == MMK_OK)
			return fail(r, "write_release of a released guard's copy succeeded");
		return true;
	}
	return same(r, OP_COPY_REL, eh, ek);
}

static bool do_free(struct run *r)
{
	enum tok_kind kind;
	struct pair t = pick_token(r, &kind);
	enum mmk_error eh, ek;
	uint32_t at;

	logstep(r, "free %s token 0x%016" PRIx64 "/0x%016" PRIx64, tk_name[kind],
		t.h, t.k);
	eh = mmk_free(r->heap, t.h);
	ek = mmk_free(r->kern, t.k);
	if (!same(r, OP_FREE, eh, ek))
		return false;
	if (eh)
		return true;
	if (!find_live(r, t, &at))
		return fail(r, "free succeeded on a token that names no live message");
	/* Swap the last entry in, and give the freed entry's buffer to the end. */
	unsigned char *buf = r->live[at].payload;

	r->live[at] = r->live[--r->nlive];
	r->live[r->nlive].payload = buf;
	r->freed[r->nfreed++ % FREED_RING] = t;
	return true;
}

/* ---- loans and batches ----------------------------------------------------------------- */

/* What a loan's empty message says once published unchanged. */
static struct mmk_header empty_header(const struct run *r)
{
	return (struct mmk_header){ .qos = MMK_QOS_BEST_EFFORT,
				    .memory_class = (uint8_t)r->cfg.memory_class };
}

static bool do_loan(struct run *r)
{
	static const struct mmk_header zero;
	enum mmk_error eh, ek;
	struct wguard *g;

	if (r->nwg > r->cfg.capacity)
		return true;
	g = &r->wg[r->nwg];
	logstep(r, "loan");
	eh = mmk_loan(r->heap, &g->h);
	ek = mmk_loan(r->kern, &g->k);
	if (!same(r, OP_LOAN, eh, ek))
		return false;
	if (eh) {
		if (g->h.token != MMK_TOKEN_INVALID || g->k.token != MMK_TOKEN_INVALID)
			return fail(r, "loan failed but set a token");
		return check_guard_clear(r, "loan", g->h.msg, g->h.owner, g->k.msg, g->k.owner);
	}
	r->nwg++;
	if (r->nwg > r->cfg.capacity)
		return fail(r, "more write guards than slots");
	if (memcmp(&g->h.msg->header, &zero, sizeof(zero)) ||
	    memcmp(&g->k.msg->header, &zero, sizeof(zero)))
		return fail(r, "loan: the empty message's header is not zeroed");
	g->want = empty_header(r);
	g->bad = false;
	g->edited = false;
	g->loan = true;
	logstep(r, "loan -> 0x%016" PRIx64 "/0x%016" PRIx64, g->h.token, g->k.token);
	if (guards_held(r) > r->max_guards)
		r->max_guards = guards_held(r);
	/* Not readable until published, but it holds its slot. */
	return add_live(r, "loan", (struct pair){ g->h.token, g->k.token }, &g->want,
			g->payload, 0);
}

/*
 * mmk_write_cancel on a held write guard.  A loan goes back to the free
 * list, whatever was written, and its token is stale.  A read_mut guard
 * differs by where it writes: a write-back copy (kernel pools without
 * MMK_POOL_PAGE_ALIGNED) is dropped unchecked, a message written in place
 * (heap, static, kernel windows) is checked and kept as by a release.  So
 * an edited read_mut guard is only cancelled when both sides write in place.
 */
static bool do_cancel(struct run *r)
{
	static const char *const edit_name[] = {
		"new message", "new header", "bad header", "payload size over the slot",
		"unchanged",
	};
	bool in_place = versus != VS_KERNEL || r->cfg.flags & MMK_POOL_PAGE_ALIGNED;
	unsigned int how = 4;
	enum mmk_error eh, ek;
	uint32_t i, at;

	if (!r->nwg)
		return true;
	i = below(&r->rng, r->nwg);
	struct wguard *g = &r->wg[i];

	if (!g->loan && g->edited && !in_place)
		return true;
	if ((g->loan || in_place) && chance(&r->rng, 60))
		how = write_edit(r, g);
	logstep(r, "write_cancel of a %s (%s) 0x%016" PRIx64 "/0x%016" PRIx64,
		g->loan ? "loan" : "read_mut guard", edit_name[how], g->h.token, g->k.token);
	struct wguard copy = *g;
	struct pair t = { g->h.token, g->k.token };

	eh = mmk_write_cancel(&g->h);
	ek = mmk_write_cancel(&g->k);
	if (!same(r, OP_CANCEL, eh, ek))
		return false;
	if (eh) {
		if (g->loan)
			return fail(r, "write_cancel of a loan failed on both sides");
		if (!g->h.owner || !g->k.owner || !g->h.msg || !g->k.msg)
			return fail(r, "write_cancel failed but dropped the guard");
		if (!g->bad)
			return fail(r, "write_cancel of a good message failed on both sides");
		return true;
	}
	if (!g->loan && g->bad)
		return fail(r, "write_cancel of a bad message written in place succeeded");
	if (g->h.owner || g->k.owner || g->h.msg || g->k.msg)
		return fail(r, "write_cancel succeeded but the guard is still marked held");
	struct live *l = find_live(r, t, &at);

	if (!l)
		return fail(r, "write_cancel succeeded on a token that names no live message");
	if (g->loan) {
		unsigned char *buf = l->payload;

		r->live[at] = r->live[--r->nlive];
		r->live[r->nlive].payload = buf;
		r->freed[r->nfreed++ % FREED_RING] = t;
	} else if (g->edited) {
		l->hdr = g->want;
		memcpy(l->payload, g->payload, g->want.payload_size);
	}
	copy.payload = NULL;
	remember_copy(r, OP_WRITE_REL, &copy, sizeof(copy));
	unsigned char *buf = g->payload;

	*g = r->wg[--r->nwg];
	r->wg[r->nwg].payload = buf;
	return true;
}

#define BATCH_UNTOUCHED		((enum mmk_error)0x55)

/* Forget one shared guard the test holds on @t: a batch released it by token. */
static void forget_shared(struct run *r, struct pair t)
{
	for (uint32_t i = 0; i < r->nrg; i++)
		if (r->rg[i].h.token == t.h) {
			r->rg[i] = r->rg[--r->nrg];
			return;
		}
	for (uint32_t i = 0; i < r->nhg; i++)
		if (r->hg[i].h.token == t.h) {
			r->hg[i] = r->hg[--r->nhg];
			return;
		}
}

/* The token a batch op is tried on: often one of an earlier op of the batch. */
static struct pair batch_token(struct run *r, struct batch *b, size_t i, enum mmk_batch_opcode op)
{
	enum tok_kind kind;

	if (b->clean && r->nlive && op != MMK_OP_READ_RELEASE)
		return r->live[below(&r->rng, r->nlive)].tok;
	if (i && chance(&r->rng, op == MMK_OP_READ_RELEASE ? 50 : 25)) {
		size_t j = below(&r->rng, (uint32_t)i);

		if (b->h[j].op != MMK_OP_STORE)
			return b->tok[j];
	}
	if (op == MMK_OP_READ_RELEASE && chance(&r->rng, 30)) {
		if (r->nrg && chance(&r->rng, 60)) {
			struct rguard *g = &r->rg[below(&r->rng, r->nrg)];

			return (struct pair){ g->h.token, g->k.token };
		}
		if (r->nhg) {
			struct hguard *g = &r->hg[below(&r->rng, r->nhg)];

			return (struct pair){ g->h.token, g->k.token };
		}
	}
	return pick_token(r, &kind);
}

/*
 * mmk_batch of random ops on both sides: every op's result, done and the
 * return value must agree, the ops after the first failure must be
 * untouched, and then the test's state follows the ops that ran.  Some
 * batches are longer than one MMK_IOC_BATCH chunk (256 ops).
 */
static bool do_batch(struct run *r)
{
	struct batch *b = &r->batch;
	uint32_t pmax = r->cfg.payload_size;
	size_t n, dh = 99, dk = 99, i;
	enum mmk_error eh, ek;

	n = chance(&r->rng, 3) ? BATCH_CHUNK + 1 + below(&r->rng, BATCH_MAX - BATCH_CHUNK) :
				 1 + below(&r->rng, 24);
	if (r->nrg + n > MAX_GUARDS || r->nhg + n > MAX_GUARDS)
		return true;
	b->clean = chance(&r->rng, 30);
	for (i = 0; i < n; i++) {
		struct mmk_batch_op *o = &b->h[i];
		unsigned int x = below(&r->rng, 100);

		memset(o, 0, sizeof(*o));
		b->ok_hdr[i] = true;
		o->op = x < 20 ? MMK_OP_STORE : x < 45 ? MMK_OP_READ : x < 60 ? MMK_OP_PEEK_HEADER :
			x < 80 ? MMK_OP_READ_RELEASE : x < 98 || b->clean ? MMK_OP_FREE :
			(enum mmk_batch_opcode)(5 + below(&r->rng, 1000));
		if (o->op == MMK_OP_STORE) {
			uint32_t size = below(&r->rng, (pmax < BATCH_PAYLOAD ? pmax : BATCH_PAYLOAD) + 1);
			unsigned char *p = b->payload + i * BATCH_PAYLOAD;

			fill(p, size, rnd(&r->rng));
			o->payload = p;
			if (!b->clean && chance(&r->rng, 4)) {	/* over the slot: the bytes do not matter */
				size = pmax + 1;
				o->payload = r->scratch;
			}
			o->payload_size = size;
			b->ok_hdr[i] = random_header(r, &b->hdr[i], &b->want[i], size,
						     b->clean ? 0 : 6);
			o->header = &b->hdr[i];
			if (chance(&r->rng, 5)) {
				o->header = NULL;
				b->want[i] = empty_header(r);
				b->want[i].payload_size = size;
				b->ok_hdr[i] = true;
			}
			if (!b->clean && size && chance(&r->rng, 2))
				o->payload = NULL;
			b->tok[i] = (struct pair){ 0x1234, 0x1234 };	/* out only */
		} else {
			b->tok[i] = batch_token(r, b, i, o->op);
		}
		o->token = b->tok[i].h;
		o->msg = (const void *)r->scratch;	/* out only: must be set or untouched */
		o->result = BATCH_UNTOUCHED;
		b->k[i] = *o;
		b->k[i].token = b->tok[i].k;
	}
	logstep(r, "batch of %zu ops%s", n, b->clean ? ", live tokens" : "");

	eh = mmk_batch(r->heap, b->h, n, &dh);
	ek = mmk_batch(r->kern, b->k, n, &dk);
	if (!same(r, OP_BATCH, eh, ek))
		return false;
	if (dh != dk || dh > n || (eh == MMK_OK) != (dh == n))
		return fail(r, "batch of %zu ops returned %s: done %zu on the heap, %zu on %s", n,
			    en(eh), dh, dk, oname);
	logstep(r, "batch of %zu ops: %s, done %zu", n, en(eh), dh);
	r->batch_ops += dh;
	for (i = 0; i < n; i++) {
		struct mmk_batch_op *oh = &b->h[i], *ok = &b->k[i];
		enum mmk_error want = i < dh ? MMK_OK : i == dh ? eh : BATCH_UNTOUCHED;

		if (oh->result != want || ok->result != want)
			return fail(r, "batch op %zu of %zu (opcode %d, done %zu): result %s on the "
				    "heap, %s on %s, expected %s", i, n, (int)oh->op, dh,
				    en(oh->result), en(ok->result), oname, en(want));
		if (i > dh) {
			if (oh->msg != (const void *)r->scratch || ok->msg != (const void *)r->scratch ||
			    oh->token != b->tok[i].h || ok->token != b->tok[i].k)
				return fail(r, "batch op %zu, after the failing op %zu, was touched",
					    i, dh);
			continue;
		}
		bool read = oh->op == MMK_OP_READ || oh->op == MMK_OP_PEEK_HEADER;

		if (!read || i == dh) {
			if (oh->msg || ok->msg)
				return fail(r, "batch op %zu (opcode %d, %s) gave a message", i,
					    (int)oh->op, en(oh->result));
		} else if (!oh->msg || !ok->msg) {
			return fail(r, "batch op %zu read without a message", i);
		}
		if (oh->op == MMK_OP_STORE && i == dh &&
		    (oh->token != MMK_TOKEN_INVALID || ok->token != MMK_TOKEN_INVALID))
			return fail(r, "batch store %zu failed but set a token", i);
		if (i == dh)
			break;

		/* The op succeeded on both sides: follow it. */
		struct pair t = { oh->token, ok->token };
		uint32_t at;

		switch (oh->op) {
		case MMK_OP_STORE:
			if (!b->ok_hdr[i] || oh->payload_size > pmax || !oh->payload)
				return fail(r, "batch store %zu succeeded with a bad argument", i);
			b->tok[i] = t;
			if (!add_live(r, "batch store", t, &b->want[i], oh->payload,
				      (uint32_t)oh->payload_size))
				return false;
			break;
		case MMK_OP_READ:
			r->rg[r->nrg++] = (struct rguard){ { oh->msg, t.h, r->heap },
							   { ok->msg, t.k, r->kern } };
			break;
		case MMK_OP_PEEK_HEADER:
			r->hg[r->nhg++] = (struct hguard){ { oh->msg, t.h, r->heap },
							   { ok->msg, t.k, r->kern } };
			break;
		case MMK_OP_READ_RELEASE:
			forget_shared(r, t);
			break;
		default:	/* MMK_OP_FREE */
			if (!find_live(r, t, &at))
				return fail(r, "batch free %zu succeeded on a token that names no "
					    "live message", i);
			unsigned char *buf = r->live[at].payload;

			r->live[at] = r->live[--r->nlive];
			r->live[r->nlive].payload = buf;
			r->freed[r->nfreed++ % FREED_RING] = t;
			break;
		}
	}
	if (guards_held(r) > r->max_guards)
		r->max_guards = guards_held(r);
	/*
	 * What the reads saw: later ops of the batch may have freed the
	 * message and stored another there, so only messages still live are
	 * compared.
	 */
	for (i = 0; i < dh; i++) {
		struct live *l;

		if (b->h[i].op != MMK_OP_READ && b->h[i].op != MMK_OP_PEEK_HEADER)
			continue;
		l = find_live(r, (struct pair){ b->h[i].token, b->k[i].token }, NULL);
		if (l && !check_msg(r, "batch read", b->h[i].msg, b->k[i].msg, l,
				    b->h[i].op == MMK_OP_PEEK_HEADER))
			return false;
	}
	return true;
}

static bool check_counts(struct run *r)
{
	size_t ah = mmk_available(r->heap), ak = mmk_available(r->kern);

	if (ah != ak)
		return fail(r, "available: heap %zu, %s %zu", ah, oname, ak);
	if (ah != r->cfg.capacity - r->nlive)
		return fail(r, "available: %zu on both sides, but %" PRIu32 " of %" PRIu32
			    " slots hold messages", ah, r->nlive, r->cfg.capacity);
	return true;
}

static void next_phase(struct run *r)
{
	static const unsigned int pick[] = {
		PH_BALANCED, PH_BALANCED, PH_BALANCED, PH_FILL, PH_FILL, PH_DRAIN, PH_DRAIN,
		PH_DRAIN, PH_FOCUS, PH_FOCUS,
	};
	enum phase prev = r->phase;

	/* Hoard on the fourth phase and every 12th after it; drain after a hoard. */
	if (r->nphases % 12 == 3)
		r->phase = PH_HOARD;
	else if (prev == PH_HOARD)
		r->phase = PH_DRAIN;
	else
		r->phase = pick[below(&r->rng, sizeof(pick) / sizeof(pick[0]))];
	r->phase_end = r->step + (r->phase == PH_HOARD ? 2500 : 300 + below(&r->rng, 1700));
	r->focus = (uint32_t)rnd(&r->rng);
	r->nphases++;
}

/* Guards the test tries to stay under in each phase (most acquisitions fail). */
static uint64_t guard_target(const struct run *r)
{
	switch (r->phase) {
	case PH_HOARD:
		return UINT64_MAX;
	case PH_DRAIN:
		return 0;
	case PH_FILL:
		return r->cfg.capacity / 2 + 1;
	case PH_FOCUS:
		return r->cfg.capacity + 8;
	default:
		return r->cfg.capacity;
	}
}

static bool step(struct run *r)
{
	const unsigned int *w = weights[r->phase];
	uint64_t held = guards_held(r);
	unsigned int total = 0, x;
	int op;

	if (held > guard_target(r) && chance(&r->rng, 60)) {
		/* Over the target: release a guard, of a kind picked by count. */
		x = below(&r->rng, (uint32_t)held);
		op = x < r->nrg ? OP_READ_REL : x < r->nrg + r->nhg ? OP_HDR_REL : OP_WRITE_REL;
	} else {
		for (op = 0; op < NR_OPS; op++)
			total += w[op];
		x = below(&r->rng, total);
		for (op = 0; op < NR_OPS - 1 && x >= w[op]; op++)
			x -= w[op];
	}

	switch (op) {
	case OP_STORE:
		return do_store(r);
	case OP_READ:
	case OP_PEEK:
	case OP_READ_MUT:
		return do_acquire(r, op);
	case OP_READ_REL:
	case OP_HDR_REL:
		return do_release_shared(r, op);
	case OP_WRITE_REL:
		return do_write_release(r);
	case OP_FREE:
		return do_free(r);
	case OP_LOAN:
		return do_loan(r);
	case OP_CANCEL:
		return do_cancel(r);
	case OP_BATCH:
		return do_batch(r);
	default:
		return do_release_copy(r);
	}
}

/* Release every guard, free every message, and check both pools are empty. */
static bool drain_all(struct run *r)
{
	r->phase = PH_DRAIN;
	while (!r->failed && r->nwg) {
		struct wguard *g = &r->wg[0];

		g->h.msg->header = g->want;	/* a valid header, whatever the last edit was */
		g->k.msg->header = g->want;
		memcpy(g->h.msg->payload, g->payload, g->want.payload_size);
		memcpy(g->k.msg->payload, g->payload, g->want.payload_size);
		r->step++;
		logstep(r, "final write_release 0x%016" PRIx64 "/0x%016" PRIx64, g->h.token,
			g->k.token);
		enum mmk_error eh = mmk_write_release(&g->h), ek = mmk_write_release(&g->k);

		if (!same(r, OP_WRITE_REL, eh, ek))
			return false;
		if (eh)
			return fail(r, "final write_release of a good message: %s", en(eh));
		unsigned char *buf = g->payload;

		*g = r->wg[--r->nwg];
		r->wg[r->nwg].payload = buf;
	}
	while (!r->failed && r->nrg) {
		r->step++;
		logstep(r, "final read_release 0x%016" PRIx64, r->rg[r->nrg - 1].h.token);
		r->nrg--;
		if (!same(r, OP_READ_REL, mmk_read_release(&r->rg[r->nrg].h),
			  mmk_read_release(&r->rg[r->nrg].k)))
			return false;
	}
	while (!r->failed && r->nhg) {
		r->step++;
		logstep(r, "final header_release 0x%016" PRIx64, r->hg[r->nhg - 1].h.token);
		r->nhg--;
		if (!same(r, OP_HDR_REL, mmk_header_release(&r->hg[r->nhg].h),
			  mmk_header_release(&r->hg[r->nhg].k)))
			return false;
	}
	while (!r->failed && r->nlive) {
		struct pair t = r->live[--r->nlive].tok;
		enum mmk_error eh = mmk_free(r->heap, t.h), ek = mmk_free(r->kern, t.k);

		r->step++;
		logstep(r, "final free 0x%016" PRIx64 "/0x%016" PRIx64, t.h, t.k);
		if (!same(r, OP_FREE, eh, ek))
			return false;
		if (eh)
			return fail(r, "final free: %s with no guard held", en(eh));
	}
	return !r->failed && check_counts(r);
}

/* Did the run reach every outcome it is meant to compare? */
static bool check_coverage(struct run *r)
{
	static const struct {
		enum op op;
		enum mmk_error err;
	} need[] = {
		{ OP_STORE, MMK_OK }, { OP_STORE, MMK_E_NO_FREE_SLOTS },
		{ OP_STORE, MMK_E_TOO_LARGE }, { OP_STORE, MMK_E_INVALID },
		{ OP_READ, MMK_OK }, { OP_READ, MMK_E_BAD_TOKEN }, { OP_READ, MMK_E_NOT_ALLOCATED },
		{ OP_READ, MMK_E_ALREADY_BORROWED }, { OP_READ, MMK_E_LIMIT },
		{ OP_PEEK, MMK_OK }, { OP_PEEK, MMK_E_BAD_TOKEN },
		{ OP_READ_MUT, MMK_OK }, { OP_READ_MUT, MMK_E_ALREADY_BORROWED },
		{ OP_READ_MUT, MMK_E_NOT_ALLOCATED },
		{ OP_READ_REL, MMK_OK }, { OP_HDR_REL, MMK_OK },
		{ OP_WRITE_REL, MMK_OK }, { OP_WRITE_REL, MMK_E_INVALID },
		{ OP_WRITE_REL, MMK_E_TOO_LARGE },
		{ OP_FREE, MMK_OK }, { OP_FREE, MMK_E_BAD_TOKEN }, { OP_FREE, MMK_E_NOT_ALLOCATED },
		{ OP_FREE, MMK_E_BORROW_ACTIVE },
		{ OP_LOAN, MMK_OK }, { OP_LOAN, MMK_E_NO_FREE_SLOTS }, { OP_CANCEL, MMK_OK },
		{ OP_BATCH, MMK_OK }, { OP_BATCH, MMK_E_BAD_TOKEN },
		{ OP_BATCH, MMK_E_NOT_ALLOCATED },
	};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!r->outcome[need[i].op][need[i].err])
			return fail(r, "coverage: %s never returned %s in %" PRIu64 " operations",
				    op_name[need[i].op], en(need[i].err), r->nops);
	for (int k = 0; k < NR_TK; k++)
		if (!r->tk_count[k] && k != TK_UNUSED)
			return fail(r, "coverage: no %s token was ever tried", tk_name[k]);
	return true;
}

static void report(const struct run *r)
{
	printf("# %s: capacity %" PRIu32 ", payload %" PRIu32 " bytes, memory class %" PRIu32
	       ", %" PRIu32 " phases, up to %" PRIu64 " guards held at once\n", r->name,
	       r->cfg.capacity, r->cfg.payload_size, r->cfg.memory_class, r->nphases,
	       r->max_guards);
	printf("#   %" PRIu64 " ops succeeded inside batches\n", r->batch_ops);
	printf("#   tokens tried:");
	for (int k = 0; k < NR_TK; k++)
		printf(" %s %" PRIu64, tk_name[k], r->tk_count[k]);
	printf("\n");
	for (int op = 0; op < NR_OPS; op++) {
		printf("#   %-15s", op_name[op]);
		for (int e = 0; e <= MMK_E_SYSTEM; e++)
			if (r->outcome[op][e])
				printf(" %s %" PRIu64, en((enum mmk_error)e), r->outcome[op][e]);
		printf("\n");
	}
}

/* ---- set-up ---------------------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p) {
		perror("diff_test: calloc");
		exit(1);
	}
	return p;
}

/* The manager the heap manager is compared with. */
static enum mmk_error create_other(const struct mmk_config *cfg, struct mmk_manager **out)
{
	struct mmk_config c = *cfg;

	switch (versus) {
	case VS_KERNEL:
		return mmk_kernel_create(cfg, out);
	case VS_STATIC:
		c.flags = 0;	/* a static manager has no page-aligned slots */
		return mmk_static_create(MMK_STATIC(static_pool), &c, out);
	default:
		return mmk_heap_create(cfg, out);
	}
}

/* Returns 0 if the run passed, 1 if it failed, KSFT_SKIP if there is no /dev/mmk. */
static int run_one(int num, const char *label, uint64_t seed, uint64_t nops, uint32_t flags,
		   uint32_t max_cap, uint32_t max_payload, bool coverage)
{
	static const uint32_t classes[] = { MMK_MEM_HOST, MMK_MEM_PINNED_HOST, MMK_MEM_SHARED };
	char name[128];
	struct run *r = xcalloc(1, sizeof(*r));
	enum mmk_error e;
	uint64_t t;
	int ret = 1;

	snprintf(name, sizeof(name), "diff_%s%" PRIu64 "_ops_seed_%" PRIu64, label, nops, seed);
	r->name = name;
	r->seed = seed;
	r->rng.s = seed;
	r->nops = nops;
	r->cfg.capacity = 1 + below(&r->rng, max_cap);
	r->cfg.payload_size = 1 + below(&r->rng, max_payload);
	r->cfg.payload_type = rnd(&r->rng);
	r->cfg.memory_class = classes[below(&r->rng, 3)];
	r->cfg.flags = flags;
	r->cfg.mode = 0600;

	e = create_other(&r->cfg, &r->kern);
	if (e == MMK_E_SYSTEM && errno == ENOENT) {
		printf("ok %d %s # SKIP /dev/mmk does not exist (module not loaded)\n", num, name);
		free(r);
		return KSFT_SKIP;
	}
	if (e) {
		printf("# creating the %s manager: %s (errno %d)\n", oname, en(e), errno);
		goto out;
	}
	if (mmk_heap_create(&r->cfg, &r->heap) || mmk_heap_create(&r->cfg, &r->heap2) ||
	    (versus == VS_KERNEL ? mmk_kernel_create(&r->cfg, &r->kern2) :
				   mmk_heap_create(&r->cfg, &r->kern2))) {
		printf("# creating the other managers failed\n");
		goto out;
	}
	if (mmk_capacity(r->heap) != mmk_capacity(r->kern) ||
	    mmk_payload_max(r->heap) != mmk_payload_max(r->kern) ||
	    mmk_payload_type(r->heap) != mmk_payload_type(r->kern) ||
	    mmk_memory_class(r->heap, NULL) != mmk_memory_class(r->kern, NULL)) {
		fail(r, "capacity, payload_max, payload_type or memory_class differ");
		goto out;
	}
	{
		struct mmk_header h = { .sequence = 1 };
		unsigned char b = 0x5a;

		if (mmk_store(r->heap2, &h, &b, 1, &r->foreign.h) ||
		    mmk_store(r->kern2, &h, &b, 1, &r->foreign.k)) {
			printf("# storing the foreign messages failed\n");
			goto out;
		}
	}

	r->live = xcalloc(r->cfg.capacity, sizeof(*r->live));
	for (uint32_t i = 0; i < r->cfg.capacity; i++)
		r->live[i].payload = xcalloc(1, r->cfg.payload_size);
	r->hist_cap = 1024;
	r->hist = xcalloc(r->hist_cap, sizeof(*r->hist));
	r->used = xcalloc(r->cfg.capacity, 1);
	r->rg = xcalloc(MAX_GUARDS, sizeof(*r->rg));
	r->hg = xcalloc(MAX_GUARDS, sizeof(*r->hg));
	r->wg = xcalloc(r->cfg.capacity + 1, sizeof(*r->wg));
	for (uint32_t i = 0; i <= r->cfg.capacity; i++)
		r->wg[i].payload = xcalloc(1, r->cfg.payload_size);
	r->scratch = xcalloc(1, (size_t)r->cfg.payload_size + 256);

	printf("# %s: heap against %s, capacity %" PRIu32 ", payload %" PRIu32 " bytes%s\n",
	       name, oname, r->cfg.capacity, r->cfg.payload_size,
	       flags & MMK_POOL_PAGE_ALIGNED ? ", page-aligned (write guards are windows)" :
					       " (write guards are write-back buffers)");
	fflush(stdout);
	t = (uint64_t)time(NULL);
	next_phase(r);
	for (r->step = 0; r->step < nops; r->step++) {
		if (r->step == r->phase_end)
			next_phase(r);
		if (!step(r) || !check_counts(r))
			break;
	}
	if (!r->failed)
		drain_all(r);
	if (!r->failed && coverage)
		check_coverage(r);
	report(r);
	printf("# %s: %" PRIu64 " steps in about %" PRIu64 " s\n", name, r->step,
	       (uint64_t)time(NULL) - t);
	ret = r->failed;
out:
	printf("%s %d %s\n", ret ? "not ok" : "ok", num, name);
	fflush(stdout);
	mmk_close(r->heap);
	mmk_close(r->kern);
	mmk_close(r->heap2);
	mmk_close(r->kern2);
	if (r->live)
		for (uint32_t i = 0; i < r->cfg.capacity; i++)
			free(r->live[i].payload);
	if (r->wg)
		for (uint32_t i = 0; i <= r->cfg.capacity; i++)
			free(r->wg[i].payload);
	free(r->live);
	free(r->hist);
	free(r->used);
	free(r->rg);
	free(r->hg);
	free(r->wg);
	free(r->scratch);
	free(r);
	return ret;
}

/* ---- queues --------------------------------------------------------------------- */

/* Queue storage for -b static. */
static MMK_QUEUE_STORAGE(qs_0, QLS_ITEMS);
static MMK_QUEUE_STORAGE(qs_1, QLS_ITEMS);
static MMK_QUEUE_STORAGE(qs_2, QLS_ITEMS);
static MMK_QUEUE_STORAGE(qs_3, QLS_ITEMS);

static uint32_t queue_pick(void *ctx, uint32_t n)
{
	return below(ctx, n);
}

/*
 * The queue run: queue operations of every kind, with every policy, on
 * the heap manager and the other one in lockstep (lib/tests/queue_lockstep.h).
 */
static int run_queues(int num, uint64_t seed, uint64_t nops)
{
	struct mmk_queue_storage *const storage[2][QLS_QUEUES] = {
		{ NULL },
		{ MMK_QUEUE_STATIC(qs_0), MMK_QUEUE_STATIC(qs_1), MMK_QUEUE_STATIC(qs_2),
		  MMK_QUEUE_STATIC(qs_3) },
	};
	struct mmk_config cfg = { .payload_size = 128, .capacity = 40, .mode = 0600 };
	struct mmk_manager *h = NULL, *o = NULL;
	struct rng rng = { seed ^ 0x7175657565ULL };
	static struct qls s;
	char name[128];
	uint64_t i = 0;
	int ret = 1;

	snprintf(name, sizeof(name), "diff_queues_%" PRIu64 "_ops_seed_%" PRIu64, nops, seed);
	cfg.payload_type = rnd(&rng);
	if (mmk_heap_create(&cfg, &h) || create_other(&cfg, &o)) {
		printf("# creating the managers failed (errno %d)\n", errno);
		goto out;
	}
	if (!qls_init(&s, h, o, versus == VS_STATIC ? storage : NULL, queue_pick, &rng))
		goto fail;
	for (i = 0; i < nops; i++)
		if (!qls_step(&s))
			goto fail;
	if (!qls_fini(&s))
		goto fail;
	printf("# %s: heap against %s, %d queues; ops:", name, oname, QLS_QUEUES);
	for (int k = 0; k < QLS_NR_OPS; k++)
		printf(" %s %" PRIu64, qls_op_name[k], s.ops[k]);
	printf("\n# %s: drops %" PRIu64 ", evictions %" PRIu64 "; errors:", name, s.drops,
	       s.evictions);
	for (int e = 0; e <= MMK_E_QUEUE_EMPTY; e++) {
		uint64_t n = 0;

		for (int k = 0; k < QLS_NR_OPS; k++)
			n += s.errs[k][e];
		if (n)
			printf(" %s %" PRIu64, en((enum mmk_error)e), n);
	}
	printf("\n");
	ret = 0;
	goto out;
fail:
	printf("# %s: step %" PRIu64 ": %s\n", name, i, s.why);
out:
	printf("%s %d %s\n", ret ? "not ok" : "ok", num, name);
	fflush(stdout);
	mmk_close(h);
	mmk_close(o);
	return ret;
}

static uint64_t parse_u64(const char *arg, char opt)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-') {
		fprintf(stderr, "diff_test: -%c %s: expected a number\n", opt, arg);
		exit(2);
	}
	return v;
}

static const char usage[] =
	"usage: diff_test [-b kernel|static|heap] [-s seed] [-n ops] [-p page_aligned_ops]\n"
	"                 [-q queue_ops] [-v]\n"
	"  -b  what the heap manager is compared with (default: kernel, a /dev/mmk pool)\n"
	"  -s  seed (default: from the clock); the same seed replays the same run\n"
	"  -n  operations of the main run (default 100000)\n"
	"  -p  operations of the page-aligned run (default 20000)\n"
	"  -q  operations of the queue run (default 50000)\n"
	"  -v  print every step\n";

int main(int argc, char **argv)
{
	uint64_t seed, nops = DEFAULT_OPS, page_ops = DEFAULT_PAGE_OPS, queue_ops = DEFAULT_QUEUE_OPS;
	bool have_seed = false;
	struct timespec ts;
	int opt, a, b, c;

	while ((opt = getopt(argc, argv, "b:s:n:p:q:vh")) != -1) {
		switch (opt) {
		case 'b':
			oname = optarg;
			if (!strcmp(optarg, "kernel"))
				versus = VS_KERNEL;
			else if (!strcmp(optarg, "static"))
				versus = VS_STATIC;
			else if (!strcmp(optarg, "heap"))
				versus = VS_HEAP;
			else
				goto usage;
			break;
		case 's':
			seed = parse_u64(optarg, 's');
			have_seed = true;
			break;
		case 'n':
			nops = parse_u64(optarg, 'n');
			break;
		case 'p':
			page_ops = parse_u64(optarg, 'p');
			break;
		case 'q':
			queue_ops = parse_u64(optarg, 'q');
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			printf("%s", usage);
			return 0;
		default:
usage:
			fprintf(stderr, "%s", usage);
			return 2;
		}
	}
	if (!have_seed) {
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		seed ^= (uint64_t)getpid() << 32;
	}

	printf("TAP version 13\n1..3\n");
	printf("# seed %" PRIu64 "%s; replay with: diff_test -s %" PRIu64 "\n", seed,
	       have_seed ? " (given)" : " (from the clock)", seed);
	fflush(stdout);
	/* Coverage is only required of runs long enough to reach it. */
	a = run_one(1, "", seed, nops, 0, 64, 700, nops >= DEFAULT_OPS);
	if (a == KSFT_SKIP) {
		printf("ok 2 diff_page_aligned # SKIP /dev/mmk does not exist\n");
		printf("ok 3 diff_queues # SKIP /dev/mmk does not exist\n");
		return KSFT_SKIP;
	}
	b = run_one(2, "page_aligned_", seed, page_ops, MMK_POOL_PAGE_ALIGNED, 16, 9000, false);
	c = run_queues(3, seed, queue_ops);
	return a || b || c ? 1 : 0;
}
