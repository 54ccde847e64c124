// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_ops - libFuzzer target: operation sequences on the heap and static
 * backends, checked against each other and against a model of the rules.
 *
 * The input is decoded into a pool configuration and a sequence of
 * operations (store, read, peek_header, read_mut, their waiting variants,
 * the releases, free, the typed wrappers of MMK_DEFINE_TYPED, runs of
 * shared guards that reach MMK_GUARDS_MAX, releases of stale copies of
 * guards, calls with NULL arguments, the constructors' checks on other
 * managers, loans published or cancelled, write guards cancelled,
 * batches of MMK_OP_* up to their first failure, and runs of queue
 * operations).  Every operation is applied to
 * a heap manager and to a static manager with the same configuration, and
 * predicted by a small model of SPEC §3-§5 (generations, check order,
 * borrows, guard limits).  After every step:
 *
 *   - both backends returned the error the model predicts;
 *   - a failed call left no token and no guard behind;
 *   - available() + messages held == capacity, on both backends;
 *   - every message read through a guard is, byte for byte, what was
 *     stored or written back there, on both backends;
 *   - the constant attributes (capacity, payload size, type id, memory
 *     class) have not changed;
 *   - a batch ran every op up to the first failing one, which has the
 *     error its function would return, reported done as the number
 *     before it, and left the ops after it untouched.
 *
 * Queue operations (push, fan-out, store-push, commit-push, pop, write
 * pop, pop of N, peek, peek_at, occupancy and counters, release-push-pop
 * batches, queues closed with messages inside and made again with another
 * of the five policies) run on a second pair of managers, heap and
 * static, in lockstep (lib/tests/queue_lockstep.h): there the two
 * backends are checked against each other, errors, outcomes, popped
 * messages, free slots, occupancy and counters, rather than against the
 * model.
 *
 * Any difference aborts with a description of the step.  Any input is
 * valid.  Build and run it with lib/fuzz/Makefile; lib/fuzz/corpus holds
 * the seed inputs.
 *
 * Tokens.  The harness names messages in a model space (slot index,
 * generation, own pool or not) and builds each backend's token from it
 * with the token layout both share (docs/DESIGN.md): the two backends
 * take free slots in the same order, which the harness checks at every
 * store, so a model token means the same message on both.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mmk/mmk.h>

#include "../tests/queue_lockstep.h"

#define MAX_CAP		16
#define MAX_PAYLOAD	256
#define MAX_HELD	(MMK_GUARDS_MAX + 8)
#define MAX_HIST	64
#define MAX_STEPS	4096
#define MAX_BATCH	12

#define TOK_INDEX_MASK	0xfffffULL
#define TOK_GEN_SHIFT	20
#define TOK_GEN_MASK	0xfffffffULL
#define TOK_TAG_SHIFT	48

/* The typed payload exercised through MMK_DEFINE_TYPED. */
struct fz_item {
	uint64_t stamp;
	uint32_t id;
	uint16_t kind;
	uint8_t  bytes[10];
};

#define FZ_TYPE_ID	0x66757a7a2d697465ULL	/* "fuzz-ite" */
MMK_DEFINE_TYPED(fz, struct fz_item, FZ_TYPE_ID);

static MMK_STATIC_STORAGE(fz_storage, MAX_CAP, MAX_PAYLOAD);
/* A second, small storage for the constructor checks. */
#define PROBE_CAP	4
#define PROBE_PAYLOAD	64
static MMK_STATIC_STORAGE(probe_storage, PROBE_CAP, PROBE_PAYLOAD);

/* ---- input ----------------------------------------------------------------------- */

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t u64(struct input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | u8(in);
	return v;
}

/* ---- model ------------------------------------------------------------------------- */

struct mslot {
	uint32_t gen;
	bool ready;
	bool writer;
	uint32_t readers;
	struct mmk_header hdr;
	unsigned char payload[MAX_PAYLOAD];
};

/* A token in model space. */
struct mtok {
	enum { MT_SLOT, MT_RAW } type;
	bool own;		/* MT_SLOT: this pool's tag, else another one */
	uint32_t idx;		/* MT_SLOT: may be past the capacity */
	uint32_t gen;
	uint64_t raw;		/* MT_RAW: the same value for both backends */
};

enum gkind { G_READ, G_HEADER, G_WRITE };

struct held {
	enum gkind kind;
	uint32_t idx;
	struct mtok tok;
	union {
		struct {
			struct mmk_read_guard h, s;
		} r;
		struct {
			struct mmk_header_guard h, s;
		} hd;
		struct {
			struct mmk_write_guard h, s;
		} w;
	};
	/* G_WRITE: what the message under the guard says now. */
	struct mmk_header want;
	bool too_large, bad;
	bool loan;		/* G_WRITE from mmk_loan, not yet published */
};

struct fz {
	struct mmk_config cfg;
	struct mmk_manager *h, *s;
	uint64_t htag, stag;
	bool tags_known;
	struct mslot slot[MAX_CAP];
	uint32_t allocated;
	uint32_t guards;
	struct held *held;		/* MAX_HELD entries, not cleared between runs */
	uint32_t nheld;
	struct mtok hist[MAX_HIST];
	uint32_t nhist;
	struct held released;		/* a guard after its release */
	bool have_released;
	struct held copies[16];		/* copies of guards, taken before their release */
	uint32_t ncopies;
	uint32_t step;
	unsigned char buf[MAX_PAYLOAD + 64];
	unsigned char batch_buf[MAX_BATCH][MAX_PAYLOAD + 16];	/* payloads of batch stores */
};

static void __attribute__((noreturn, format(printf, 2, 3))) bug(const struct fz *f,
								const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_ops: step %" PRIu32 " (capacity %" PRIu32 ", payload %" PRIu32
		", class %" PRIu32 ", flags 0x%" PRIx32 "): ", f->step, f->cfg.capacity,
		f->cfg.payload_size, f->cfg.memory_class, f->cfg.flags);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static const char *en(enum mmk_error e)
{
	return mmk_error_name(e);
}

/* Both backends must have returned what the model predicts. */
static void expect(const struct fz *f, const char *op, enum mmk_error want, enum mmk_error eh,
		   enum mmk_error es)
{
	if (eh != want || es != want)
		bug(f, "%s: expected %s, heap returned %s, static returned %s", op, en(want),
		    en(eh), en(es));
	if (!strcmp(mmk_strerror(want), mmk_strerror((enum mmk_error)99)) ||
	    !strcmp(mmk_error_name(want), mmk_error_name((enum mmk_error)99)))
		bug(f, "%s: %s has no description", op, en(want));
}

static uint64_t tok_make(uint64_t tag, uint64_t gen, uint64_t idx)
{
	return tag << TOK_TAG_SHIFT | (gen & TOK_GEN_MASK) << TOK_GEN_SHIFT |
	       (idx & TOK_INDEX_MASK);
}

/* The token each backend gets for a model token. */
static void tok_pair(const struct fz *f, const struct mtok *t, uint64_t *th, uint64_t *ts)
{
	if (t->type == MT_RAW) {
		*th = *ts = t->raw;
		return;
	}
	/* Any tag other than the pool's own is as good as any other. */
	*th = tok_make(t->own ? f->htag : f->htag ^ 0x5a5a, t->gen, t->idx);
	*ts = tok_make(t->own ? f->stag : f->stag ^ 0x5a5a, t->gen, t->idx);
}

/* SPEC §3: the model slot a token names, or the error. */
static enum mmk_error model_token(const struct fz *f, const struct mtok *t, uint32_t *idx)
{
	const struct mslot *s;

	if (t->type == MT_RAW || !t->own || t->idx >= f->cfg.capacity)
		return MMK_E_BAD_TOKEN;
	s = &f->slot[t->idx];
	if (t->gen != s->gen)
		return MMK_E_BAD_TOKEN;
	if (!s->ready)
		return MMK_E_NOT_ALLOCATED;
	*idx = t->idx;
	return MMK_OK;
}

/* SPEC §4-§5: what acquiring a guard of @kind must return. */
static enum mmk_error model_acquire(const struct fz *f, const struct mtok *t, enum gkind kind,
				    uint32_t *idx)
{
	enum mmk_error e = model_token(f, t, idx);
	const struct mslot *s;

	if (e)
		return e;
	s = &f->slot[*idx];
	if (s->writer || (kind == G_WRITE && s->readers))
		return MMK_E_ALREADY_BORROWED;
	if (kind != G_WRITE && s->readers >= MMK_READERS_MAX)
		return MMK_E_LIMIT;
	if (f->guards >= MMK_GUARDS_MAX)
		return MMK_E_LIMIT;
	return MMK_OK;
}

static void check_counts(const struct fz *f, const char *op)
{
	size_t ah = mmk_available(f->h), as = mmk_available(f->s);

	if (ah + f->allocated != f->cfg.capacity || as + f->allocated != f->cfg.capacity)
		bug(f, "after %s: available heap %zu, static %zu, but %" PRIu32 " of %" PRIu32
		    " slots hold messages", op, ah, as, f->allocated, f->cfg.capacity);
	if (f->nheld != f->guards)
		bug(f, "after %s: %" PRIu32 " guards held, model counts %" PRIu32, op, f->nheld,
		    f->guards);
	if (mmk_capacity(f->h) != f->cfg.capacity || mmk_capacity(f->s) != f->cfg.capacity ||
	    mmk_payload_max(f->h) != f->cfg.payload_size ||
	    mmk_payload_max(f->s) != f->cfg.payload_size ||
	    mmk_payload_type(f->h) != f->cfg.payload_type ||
	    mmk_payload_type(f->s) != f->cfg.payload_type ||
	    mmk_memory_class(f->h, NULL) != (enum mmk_memory_class)f->cfg.memory_class ||
	    mmk_memory_class(f->s, NULL) != (enum mmk_memory_class)f->cfg.memory_class)
		bug(f, "after %s: an attribute of a manager changed", op);
}

/* The message under a guard, on both sides, must be the model's. */
static void check_msg(const struct fz *f, const char *op, uint32_t idx,
		      const struct mmk_message *mh, const struct mmk_message *ms, bool header_only)
{
	const struct mslot *s = &f->slot[idx];

	if (!mh || !ms)
		bug(f, "%s: succeeded without a message pointer", op);
	if (memcmp(&mh->header, &s->hdr, sizeof(s->hdr)) ||
	    memcmp(&ms->header, &s->hdr, sizeof(s->hdr)))
		bug(f, "%s: header differs from the one stored (payload_size heap %" PRIu32
		    ", static %" PRIu32 ", model %" PRIu32 ")", op, mh->header.payload_size,
		    ms->header.payload_size, s->hdr.payload_size);
	if (header_only)
		return;
	if (memcmp(mh->payload, s->payload, s->hdr.payload_size) ||
	    memcmp(ms->payload, s->payload, s->hdr.payload_size))
		bug(f, "%s: payload differs from the one stored", op);
	if ((uintptr_t)mh->payload % MMK_PAYLOAD_ALIGN || (uintptr_t)ms->payload % MMK_PAYLOAD_ALIGN)
		bug(f, "%s: payload not %d-byte aligned", op, MMK_PAYLOAD_ALIGN);
}

/* ---- decoding ----------------------------------------------------------------------- */

static void remember(struct fz *f, const struct mtok *t)
{
	f->hist[f->nhist++ % MAX_HIST] = *t;
}

static struct mtok pick_token(struct fz *f, struct input *in)
{
	uint8_t sel = u8(in);
	struct mtok t = { .type = MT_RAW, .raw = MMK_TOKEN_INVALID };
	uint32_t live[MAX_CAP], nlive = 0;

	for (uint32_t i = 0; i < f->cfg.capacity; i++)
		if (f->slot[i].ready)
			live[nlive++] = i;

	switch (sel % 8) {
	case 0:
	case 1:
	case 2:		/* a message held now */
		if (nlive) {
			uint32_t i = live[(sel >> 3) % nlive];

			t = (struct mtok){ .type = MT_SLOT, .own = true, .idx = i,
					   .gen = f->slot[i].gen };
		}
		break;
	case 3:		/* a token returned earlier: live, freed or stale */
		if (f->nhist)
			t = f->hist[(sel >> 3) % (f->nhist < MAX_HIST ? f->nhist : MAX_HIST)];
		break;
	case 4:		/* near a slot's generation, maybe past the capacity or foreign */
		if (f->tags_known) {
			uint8_t a = u8(in), b = u8(in);
			uint32_t idx = a % (f->cfg.capacity + 2);
			uint32_t base = idx < f->cfg.capacity ? f->slot[idx].gen : 1;

			t = (struct mtok){ .type = MT_SLOT, .own = !(b & 0x80), .idx = idx,
					   .gen = (uint32_t)((base + (int8_t)(b << 1) / 2) &
							     TOK_GEN_MASK) };
		}
		break;
	case 5:		/* the last slot of the pool index space, or 0 */
		if (f->tags_known)
			t = (struct mtok){ .type = MT_SLOT, .own = true,
					   .idx = sel & 0x80 ? (uint32_t)TOK_INDEX_MASK : 0,
					   .gen = 0 };
		break;
	case 6:		/* any 64-bit value, unless it carries either pool's tag */
		t.raw = u64(in);
		if (!f->tags_known)
			/* Tags are learnt at the first store; tag 0 is never a pool's. */
			t.raw &= ~((uint64_t)0xffff << TOK_TAG_SHIFT);
		else if ((t.raw >> TOK_TAG_SHIFT) == f->htag || (t.raw >> TOK_TAG_SHIFT) == f->stag)
			t.raw = MMK_TOKEN_INVALID;
		break;
	default:	/* MMK_TOKEN_INVALID */
		break;
	}
	return t;
}

/* A header as a caller may pass it; *bad if one rule of SPEC §2 is broken. */
static void make_header(const struct fz *f, struct input *in, struct mmk_header *h,
			struct mmk_header *want, uint32_t size, bool *bad)
{
	uint8_t a = u8(in);

	memset(h, 0, sizeof(*h));
	h->trace_id = 0x7472616365000000ULL | f->step;
	h->sequence = f->step;
	h->created_tick = a;
	h->flags = a & 7;
	if (a & 8) {
		h->flags |= MMK_MSG_HAS_DEADLINE;
		h->deadline_ns = 1000000ULL * a;
	}
	h->qos = (uint8_t)((a >> 4) & 3);
	/* Fields mmk sets itself: garbage here. */
	h->payload_size = 0xdeadbeef;
	h->memory_class = 0xee;
	h->memory_device = 0xbeef;

	*want = *h;
	if (!want->qos)
		want->qos = MMK_QOS_BEST_EFFORT;
	want->payload_size = size;
	want->memory_class = (uint8_t)f->cfg.memory_class;
	want->memory_device = (uint16_t)f->cfg.memory_device;

	*bad = false;
	if (!(a & 0x40))
		return;
	*bad = true;
	switch (u8(in) % 5) {
	case 0:
		h->flags |= 0x10;
		break;
	case 1:
		h->qos = 4 + (a & 0x3f);
		break;
	case 2:
		h->flags &= ~MMK_MSG_HAS_DEADLINE;
		h->deadline_ns = 1;
		break;
	case 3:
		h->reserved0 = 1;
		break;
	default:
		h->reserved1[1] = 1;
		break;
	}
}

static void fill(unsigned char *b, uint32_t size, uint32_t seed)
{
	for (uint32_t i = 0; i < size; i++)
		b[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 3));
}

/* ---- operations ------------------------------------------------------------------------ */

/* A store or a loan took a slot: check the tokens, and the slot holds a message now. */
static uint32_t claim_slot(struct fz *f, const char *op, uint64_t th, uint64_t ts)
{
	uint32_t idx = (uint32_t)(th & TOK_INDEX_MASK);
	uint32_t gen = (uint32_t)((th >> TOK_GEN_SHIFT) & TOK_GEN_MASK);
	struct mslot *s;

	if (!f->tags_known) {
		f->htag = th >> TOK_TAG_SHIFT;
		f->stag = ts >> TOK_TAG_SHIFT;
		f->tags_known = true;
		if (f->htag == f->stag || f->htag == 0xffff)
			bug(f, "%s: heap and static pool tags 0x%" PRIx64 ", 0x%" PRIx64, op,
			    f->htag, f->stag);
	}
	if (th >> TOK_TAG_SHIFT != f->htag || ts >> TOK_TAG_SHIFT != f->stag ||
	    (th ^ ts) & ((1ULL << TOK_TAG_SHIFT) - 1))
		bug(f, "%s: tokens 0x%016" PRIx64 " (heap), 0x%016" PRIx64
		    " (static) name different slots or generations", op, th, ts);
	if (idx >= f->cfg.capacity)
		bug(f, "%s: token names slot %" PRIu32 " of %" PRIu32, op, idx, f->cfg.capacity);
	s = &f->slot[idx];
	if (s->ready)
		bug(f, "%s: stored into slot %" PRIu32 ", which holds a message", op, idx);
	if (gen != ((s->gen + 1) & TOK_GEN_MASK))
		bug(f, "%s: slot %" PRIu32 " generation %" PRIu32 " after %" PRIu32
		    " (SPEC §3: one up per store)", op, idx, gen, s->gen);
	s->gen = gen;
	s->ready = true;
	f->allocated++;
	remember(f, &(struct mtok){ .type = MT_SLOT, .own = true, .idx = idx, .gen = gen });
	return idx;
}

static void record_store(struct fz *f, const char *op, uint64_t th, uint64_t ts,
			 const struct mmk_header *want, const void *payload, uint32_t size)
{
	struct mslot *s = &f->slot[claim_slot(f, op, th, ts)];

	s->hdr = *want;
	memcpy(s->payload, payload, size);
}

static void op_store(struct fz *f, struct input *in)
{
	uint8_t a = u8(in), b = u8(in);
	uint32_t size = (uint32_t)((a << 8 | b) % (f->cfg.payload_size + 9));
	struct mmk_header h, want;
	const struct mmk_header *hp = &h;
	const void *payload = f->buf;
	enum mmk_error e = MMK_OK, eh, es;
	uint64_t th = 0, ts = 0;
	bool bad;

	fill(f->buf, size <= MAX_PAYLOAD ? size : 0, f->step);
	make_header(f, in, &h, &want, size, &bad);
	if (a & 0x80) {		/* no header: all zero */
		hp = NULL;
		memset(&want, 0, sizeof(want));
		want.qos = MMK_QOS_BEST_EFFORT;
		want.payload_size = size;
		want.memory_class = (uint8_t)f->cfg.memory_class;
		want.memory_device = (uint16_t)f->cfg.memory_device;
		bad = false;
	}
	if (size && (a & 0x40) && (b & 1))
		payload = NULL;

	if (!payload && size)
		e = MMK_E_INVALID;
	else if (size > f->cfg.payload_size)
		e = MMK_E_TOO_LARGE;
	else if (bad)
		e = MMK_E_INVALID;
	else if (f->allocated == f->cfg.capacity)
		e = MMK_E_NO_FREE_SLOTS;

	eh = mmk_store(f->h, hp, payload, size, &th);
	es = mmk_store(f->s, hp, payload, size, &ts);
	expect(f, "store", e, eh, es);
	if (e) {
		if (th != MMK_TOKEN_INVALID || ts != MMK_TOKEN_INVALID)
			bug(f, "store failed but returned a token");
		return;
	}
	record_store(f, "store", th, ts, &want, f->buf, size);
}

static void op_typed_store(struct fz *f, struct input *in)
{
	struct fz_item item = { .stamp = u64(in), .id = f->step, .kind = u8(in) };
	struct mmk_header h, want;
	enum mmk_error e = MMK_OK, eh, es;
	uint64_t th = 0, ts = 0;
	bool bad;

	memset(item.bytes, item.kind, sizeof(item.bytes));
	make_header(f, in, &h, &want, sizeof(item), &bad);
	if (f->cfg.payload_type != FZ_TYPE_ID || f->cfg.payload_size < sizeof(item))
		e = MMK_E_TYPE_MISMATCH;
	else if (bad)
		e = MMK_E_INVALID;
	else if (f->allocated == f->cfg.capacity)
		e = MMK_E_NO_FREE_SLOTS;

	eh = fz_store(f->h, &h, &item, &th);
	es = fz_store(f->s, &h, &item, &ts);
	expect(f, "typed store", e, eh, es);
	if (e) {
		if (th != MMK_TOKEN_INVALID || ts != MMK_TOKEN_INVALID)
			bug(f, "typed store failed but returned a token");
		return;
	}
	record_store(f, "typed store", th, ts, &want, &item, sizeof(item));
}

static void add_held(struct fz *f, struct held *g, uint32_t idx)
{
	if (f->nheld == MAX_HELD)
		bug(f, "more than %d guards held", MAX_HELD);
	g->idx = idx;
	f->held[f->nheld++] = *g;
	f->guards++;
	if (g->kind == G_WRITE)
		f->slot[idx].writer = true;
	else
		f->slot[idx].readers++;
}

/* Take a guard of @kind on both sides; true if it was taken. */
static bool acquire(struct fz *f, const struct mtok *t, enum gkind kind, bool wait,
		    bool typed)
{
	static const char *const name[] = { "read", "peek_header", "read_mut" };
	struct held g = { .kind = kind };
	enum mmk_error e, eh, es;
	uint64_t th, ts;
	uint32_t idx = 0;

	tok_pair(f, t, &th, &ts);
	e = model_acquire(f, t, kind, &idx);
	if (typed) {
		const struct fz_item *vh = NULL, *vs = NULL;

		if (f->cfg.payload_type != FZ_TYPE_ID || f->cfg.payload_size < sizeof(struct fz_item))
			e = MMK_E_TYPE_MISMATCH;
		else if (!e && f->slot[idx].hdr.payload_size != sizeof(struct fz_item))
			e = MMK_E_TYPE_MISMATCH;
		eh = fz_read(f->h, th, &g.r.h, &vh);
		es = fz_read(f->s, ts, &g.r.s, &vs);
		expect(f, "typed read", e, eh, es);
		if (!e && (vh != (const void *)g.r.h.msg->payload ||
			   vs != (const void *)g.r.s.msg->payload))
			bug(f, "typed read: the value is not the guard's payload");
		if (e && (vh || vs))
			bug(f, "typed read failed but gave a value");
	} else if (kind == G_READ) {
		eh = wait ? mmk_read_wait(f->h, th, 1, &g.r.h) : mmk_read(f->h, th, &g.r.h);
		es = wait ? mmk_read_wait(f->s, ts, 1, &g.r.s) : mmk_read(f->s, ts, &g.r.s);
		expect(f, name[kind], e, eh, es);
	} else if (kind == G_HEADER) {
		eh = wait ? mmk_peek_header_wait(f->h, th, 1, &g.hd.h) :
			    mmk_peek_header(f->h, th, &g.hd.h);
		es = wait ? mmk_peek_header_wait(f->s, ts, 1, &g.hd.s) :
			    mmk_peek_header(f->s, ts, &g.hd.s);
		expect(f, name[kind], e, eh, es);
	} else {
		eh = wait ? mmk_read_mut_wait(f->h, th, 1, &g.w.h) : mmk_read_mut(f->h, th, &g.w.h);
		es = wait ? mmk_read_mut_wait(f->s, ts, 1, &g.w.s) : mmk_read_mut(f->s, ts, &g.w.s);
		expect(f, name[kind], e, eh, es);
	}

	/* What the guards say, whatever their kind. */
	const struct mmk_message *mh, *ms;
	const struct mmk_manager *oh, *os;
	uint64_t kh, ks;

	if (kind == G_READ) {
		mh = g.r.h.msg, oh = g.r.h.owner, kh = g.r.h.token;
		ms = g.r.s.msg, os = g.r.s.owner, ks = g.r.s.token;
	} else if (kind == G_HEADER) {
		mh = g.hd.h.msg, oh = g.hd.h.owner, kh = g.hd.h.token;
		ms = g.hd.s.msg, os = g.hd.s.owner, ks = g.hd.s.token;
	} else {
		mh = g.w.h.msg, oh = g.w.h.owner, kh = g.w.h.token;
		ms = g.w.s.msg, os = g.w.s.owner, ks = g.w.s.token;
	}
	if (e) {
		if (mh || oh || ms || os)
			bug(f, "%s failed but left the guard marked held", name[kind]);
		return false;
	}
	if (oh != f->h || os != f->s || kh != th || ks != ts)
		bug(f, "%s: the guard does not name its manager and token", name[kind]);
	check_msg(f, name[kind], idx, mh, ms, kind == G_HEADER);
	if (kind == G_WRITE)
		g.want = f->slot[idx].hdr;
	g.tok = *t;
	add_held(f, &g, idx);
	return true;
}

static void drop_held(struct fz *f, uint32_t i)
{
	struct held *g = &f->held[i];

	if (g->kind == G_WRITE)
		f->slot[g->idx].writer = false;
	else
		f->slot[g->idx].readers--;
	f->guards--;
	f->released = *g;
	f->have_released = true;
	f->held[i] = f->held[--f->nheld];
}

/* Change the message under a write guard the same way on both sides. */
static void write_edit(struct fz *f, struct held *g, struct input *in)
{
	uint8_t how = u8(in);
	struct mmk_header h, want;
	uint32_t size = g->want.payload_size;
	bool bad;

	switch (how % 4) {
	case 0:		/* nothing */
		return;
	case 1:		/* a new payload (any size up to the slot) and header */
		size = u8(in) % (f->cfg.payload_size + 1);
		fill(f->buf, size, how);
		memcpy(g->w.h.msg->payload, f->buf, size);
		memcpy(g->w.s.msg->payload, f->buf, size);
		memcpy(f->slot[g->idx].payload, f->buf, size);	/* no one can read it now */
		/* fall through */
	case 2:		/* a new header, maybe a bad one */
		make_header(f, in, &h, &want, size, &bad);
		h.payload_size = size;
		g->want = want;
		g->bad = bad;
		g->too_large = false;
		break;
	default:	/* a payload size over the slot */
		h = g->w.h.msg->header;
		h.payload_size = f->cfg.payload_size + 1 + u8(in);
		g->too_large = true;
		break;
	}
	g->w.h.msg->header = h;
	g->w.s.msg->header = h;
}

static void op_release(struct fz *f, struct input *in)
{
	uint8_t a = u8(in);
	enum mmk_error e = MMK_OK, eh, es;
	struct held *g;

	if (!f->nheld) {
		/* Releasing a released guard fails without touching anything. */
		if (!f->have_released)
			return;
		g = &f->released;
		e = MMK_E_INVALID;
		if (g->kind == G_READ) {
			eh = mmk_read_release(&g->r.h);
			es = mmk_read_release(&g->r.s);
		} else if (g->kind == G_HEADER) {
			eh = mmk_header_release(&g->hd.h);
			es = mmk_header_release(&g->hd.s);
		} else {
			eh = mmk_write_release(&g->w.h);
			es = mmk_write_release(&g->w.s);
		}
		expect(f, "release of a released guard", e, eh, es);
		return;
	}
	uint32_t i = a % f->nheld;
	struct held before;

	g = &f->held[i];
	before = *g;
	switch (g->kind) {
	case G_READ:
		eh = mmk_read_release(&g->r.h);
		es = mmk_read_release(&g->r.s);
		expect(f, "read_release", e, eh, es);
		if (g->r.h.owner || g->r.h.msg || g->r.s.owner || g->r.s.msg)
			bug(f, "read_release left the guard marked held");
		break;
	case G_HEADER:
		eh = mmk_header_release(&g->hd.h);
		es = mmk_header_release(&g->hd.s);
		expect(f, "header_release", e, eh, es);
		if (g->hd.h.owner || g->hd.h.msg || g->hd.s.owner || g->hd.s.msg)
			bug(f, "header_release left the guard marked held");
		break;
	default:
		write_edit(f, g, in);
		if (g->too_large)
			e = MMK_E_TOO_LARGE;
		else if (g->bad)
			e = MMK_E_INVALID;
		eh = mmk_write_release(&g->w.h);
		es = mmk_write_release(&g->w.s);
		expect(f, "write_release", e, eh, es);
		if (e) {
			if (!g->w.h.owner || !g->w.s.owner)
				bug(f, "write_release failed but dropped the guard");
			return;
		}
		if (g->w.h.owner || g->w.h.msg || g->w.s.owner || g->w.s.msg)
			bug(f, "write_release left the guard marked held");
		f->slot[g->idx].hdr = g->want;
		break;
	}
	f->copies[f->ncopies++ % 16] = before;
	drop_held(f, i);
}

/* One shared guard on slot @idx was released by token: forget one the test lists. */
static void forget_shared(struct fz *f, const char *op, uint32_t idx)
{
	for (uint32_t i = 0; i < f->nheld; i++) {
		if (f->held[i].kind != G_WRITE && f->held[i].idx == idx) {
			f->slot[idx].readers--;
			f->guards--;
			f->held[i] = f->held[--f->nheld];
			return;
		}
	}
	bug(f, "%s: no shared guard listed on slot %" PRIu32, op, idx);
}

/*
 * Release a copy of a guard taken before that guard was released (a
 * misuse the API tolerates).  The token is checked first; then a copy of
 * a shared guard releases one of the manager's shared guards on that
 * message, if it holds one, and a copy of a write guard fails.  Copies of
 * write guards are only tried while no write guard is held on the message.
 */
static void op_release_copy(struct fz *f, struct input *in, bool cancel)
{
	uint8_t a = u8(in);
	enum mmk_error e, eh, es;
	struct held c;
	uint32_t idx = 0;

	if (!f->ncopies)
		return;
	c = f->copies[a % (f->ncopies < 16 ? f->ncopies : 16)];
	e = model_token(f, &c.tok, &idx);
	if (c.kind == G_WRITE) {
		if (!e && f->slot[idx].writer)
			return;
		if (!e)
			e = MMK_E_INVALID;
		eh = cancel ? mmk_write_cancel(&c.w.h) : mmk_write_release(&c.w.h);
		es = cancel ? mmk_write_cancel(&c.w.s) : mmk_write_release(&c.w.s);
		expect(f, cancel ? "write_cancel of a copy" : "write_release of a copy", e, eh, es);
		return;
	}
	if (cancel)	/* only write guards can be cancelled */
		return;
	if (!e && !f->slot[idx].readers)
		e = MMK_E_INVALID;
	if (c.kind == G_READ) {
		eh = mmk_read_release(&c.r.h);
		es = mmk_read_release(&c.r.s);
	} else {
		eh = mmk_header_release(&c.hd.h);
		es = mmk_header_release(&c.hd.s);
	}
	expect(f, "release of a copy", e, eh, es);
	if (!e)
		forget_shared(f, "release of a copy", idx);
}

/* Calls with a NULL manager, guard or token pointer fail and change nothing. */
static void op_null_args(struct fz *f, struct input *in)
{
	struct mtok t = pick_token(f, in);
	uint8_t which = u8(in) % 9;
	struct mmk_read_guard rg = { .msg = NULL, .owner = NULL };
	enum mmk_error eh, es;
	uint64_t th, ts, out = 0;
	unsigned char b = 0;

	tok_pair(f, &t, &th, &ts);
	switch (which) {
	case 0:
		eh = mmk_store(NULL, NULL, &b, 1, &out);
		es = out == MMK_TOKEN_INVALID ? MMK_E_INVALID : MMK_OK;
		break;
	case 1:
		eh = mmk_store(f->h, NULL, &b, 1, NULL);
		es = mmk_store(f->s, NULL, &b, 1, NULL);
		break;
	case 2:
		rg.owner = f->h;	/* garbage in: must come back cleared */
		eh = mmk_read(NULL, th, &rg);
		es = rg.owner || rg.msg ? MMK_OK : MMK_E_INVALID;
		break;
	case 3:
		eh = mmk_read(f->h, th, NULL);
		es = mmk_read(f->s, ts, NULL);
		break;
	case 4:
		eh = mmk_peek_header(f->h, th, NULL);
		es = mmk_peek_header(f->s, ts, NULL);
		break;
	case 5:
		eh = mmk_read_mut(f->h, th, NULL);
		es = mmk_read_mut(f->s, ts, NULL);
		break;
	case 6:
		eh = mmk_free(NULL, th);
		es = mmk_free(NULL, ts);
		break;
	case 7:
		eh = mmk_read_release(NULL);
		es = mmk_header_release(NULL) == MMK_E_INVALID ? mmk_write_release(NULL) : MMK_OK;
		break;
	default:		/* a guard that was never taken */
		eh = mmk_read_release(&rg);
		es = mmk_write_release(&(struct mmk_write_guard){ .msg = NULL, .owner = NULL });
		break;
	}
	expect(f, "a call with a NULL or unheld argument", MMK_E_INVALID, eh, es);
}

/* The constructors' checks, on a second heap manager and a second storage. */
static void op_config_probe(struct fz *f, struct input *in)
{
	static const uint32_t payloads[] = { 0, 1, 64, 65, 256, MMK_PAYLOAD_MAX + 1 };
	static const uint32_t capacities[] = { 0, 1, 4, 5, 8, MMK_CAPACITY_MAX + 1 };
	static const uint32_t flags[] = { 0, MMK_POOL_PAGE_ALIGNED, 2, 0x80000000U };
	static const uint32_t devices[] = { 0, 7, 65536 };
	uint8_t a = u8(in), b = u8(in);
	struct mmk_config c = {
		.payload_size = payloads[a % 6],
		.capacity = capacities[(a / 6) % 6],
		.flags = flags[b % 4],
		.memory_class = (b >> 2) % 6,
		.memory_device = devices[(b >> 5) % 3],
		.payload_type = a,
	};
	bool use_null = (a >= 216) && (b & 1);
	enum mmk_error eh_want = MMK_OK, es_want, eh, es;
	struct mmk_manager *mh = NULL, *ms = NULL;

	if (!c.payload_size || c.payload_size > MMK_PAYLOAD_MAX || !c.capacity ||
	    c.capacity > MMK_CAPACITY_MAX || c.flags & ~MMK_POOL_PAGE_ALIGNED ||
	    c.memory_class > MMK_MEM_SHARED ||
	    (c.memory_device && (c.memory_class != MMK_MEM_DEVICE || c.memory_device > 65535)))
		eh_want = MMK_E_INVALID;
	es_want = eh_want;
	if (!es_want && (c.flags || c.payload_size > PROBE_PAYLOAD || c.capacity > PROBE_CAP))
		es_want = MMK_E_INVALID;
	if (use_null)	/* the storage's own capacity and payload size */
		es_want = MMK_OK;

	eh = mmk_heap_create(&c, &mh);
	es = mmk_static_create(MMK_STATIC(probe_storage), use_null ? NULL : &c, &ms);
	if (eh != eh_want || es != es_want || !eh != !!mh || !es != !!ms)
		bug(f, "create (payload %" PRIu32 ", capacity %" PRIu32 ", flags 0x%" PRIx32
		    ", class %" PRIu32 ", device %" PRIu32 "%s): heap %s (expected %s), static %s"
		    " (expected %s)", c.payload_size, c.capacity, c.flags, c.memory_class,
		    c.memory_device, use_null ? ", static without config" : "", en(eh),
		    en(eh_want), en(es), en(es_want));
	if (mh && (mmk_capacity(mh) != c.capacity || mmk_payload_max(mh) != c.payload_size ||
		   mmk_available(mh) != c.capacity || mmk_payload_type(mh) != c.payload_type))
		bug(f, "create: the new heap manager's attributes differ from its config");
	if (ms && use_null && (mmk_capacity(ms) != PROBE_CAP ||
			       mmk_payload_max(ms) != PROBE_PAYLOAD || mmk_payload_type(ms)))
		bug(f, "create: a static manager without config is not its storage's size");
	/* The storage in use by a manager cannot be used again. */
	struct mmk_manager *again = NULL;

	if (ms && (mmk_static_create(MMK_STATIC(probe_storage), NULL, &again) != MMK_E_INVALID ||
		   again))
		bug(f, "create: a static storage in use was used again");
	if (mmk_static_create(MMK_STATIC(fz_storage), NULL, &again) != MMK_E_INVALID || again)
		bug(f, "create: the static storage of the manager under test was used again");
	mmk_close(mh);
	mmk_close(ms);
}

static void op_free(struct fz *f, struct input *in)
{
	struct mtok t = pick_token(f, in);
	enum mmk_error e, eh, es;
	uint64_t th, ts;
	uint32_t idx = 0;

	tok_pair(f, &t, &th, &ts);
	e = model_token(f, &t, &idx);
	if (!e && (f->slot[idx].readers || f->slot[idx].writer))
		e = MMK_E_BORROW_ACTIVE;
	eh = mmk_free(f->h, th);
	es = mmk_free(f->s, ts);
	expect(f, "free", e, eh, es);
	if (!e) {
		f->slot[idx].ready = false;
		f->allocated--;
	}
}

/* Many shared guards on one message: reaches MMK_READERS_MAX / MMK_GUARDS_MAX. */
static void op_hoard(struct fz *f, struct input *in)
{
	uint32_t n = 1 + u8(in) * 5u;
	enum gkind kind = n & 1 ? G_HEADER : G_READ;
	struct mtok t = pick_token(f, in);

	while (n--)
		if (!acquire(f, &t, kind, false, false))
			break;
}

/* ---- loans --------------------------------------------------------------------------- */

/* What a loan's empty message says once published unchanged (SPEC: header checked). */
static struct mmk_header empty_header(const struct fz *f)
{
	return (struct mmk_header){ .qos = MMK_QOS_BEST_EFFORT,
				    .memory_class = (uint8_t)f->cfg.memory_class,
				    .memory_device = (uint16_t)f->cfg.memory_device };
}

/* Calls of the loan, cancel and batch functions with a NULL or unheld argument. */
static void loan_null_args(struct fz *f, uint8_t which)
{
	struct mmk_write_guard gh = { .msg = (void *)f->buf, .token = 1, .owner = f->s },
			       gs = gh;
	struct mmk_batch_op op = { .op = MMK_OP_FREE, .token = 7 };
	size_t dh = 99, ds = 99;
	enum mmk_error eh, es;

	switch (which % 5) {
	case 0:		/* garbage in the guard: must come back cleared */
		eh = mmk_loan(NULL, &gh);
		es = mmk_loan(NULL, &gs);
		if (gh.msg || gh.owner || gh.token != MMK_TOKEN_INVALID || gs.msg || gs.owner)
			bug(f, "loan without a manager left the guard filled");
		break;
	case 1:
		eh = mmk_loan(f->h, NULL);
		es = mmk_loan(f->s, NULL);
		break;
	case 2:		/* a guard never taken, and no guard */
		gh.owner = NULL;
		eh = mmk_write_cancel(&gh);
		es = mmk_write_cancel(NULL);
		break;
	case 3:		/* ops NULL but n not 0: nothing runs */
		eh = mmk_batch(f->h, NULL, 1 + which, &dh);
		es = mmk_batch(f->s, NULL, 1 + which, &ds);
		if (dh || ds)
			bug(f, "batch with NULL ops: done %zu (heap), %zu (static)", dh, ds);
		break;
	default:	/* no manager: the op is not touched */
		op.result = (enum mmk_error)0x55;
		eh = mmk_batch(NULL, &op, 1, &dh);
		es = mmk_batch(NULL, &op, 1, NULL);
		if (dh || op.result != (enum mmk_error)0x55 || op.token != 7)
			bug(f, "batch without a manager touched its op or done");
		break;
	}
	expect(f, "a loan, cancel or batch call with a NULL or unheld argument", MMK_E_INVALID,
	       eh, es);
}

/* mmk_loan: a free slot under a write guard, as an empty message. */
static void op_loan(struct fz *f, struct input *in)
{
	static const struct mmk_header zero;
	uint8_t a = u8(in);
	struct held g = { .kind = G_WRITE, .loan = true };
	enum mmk_error e = MMK_OK, eh, es;
	uint32_t idx;

	if ((a & 0x1f) == 0x1f) {
		loan_null_args(f, a >> 5);
		return;
	}
	if (f->allocated == f->cfg.capacity)
		e = MMK_E_NO_FREE_SLOTS;
	else if (f->guards >= MMK_GUARDS_MAX)
		e = MMK_E_LIMIT;
	/* Garbage in the guards: the loan ignores it. */
	g.w.h = (struct mmk_write_guard){ .msg = (void *)f->buf, .token = 1, .owner = f->s,
					  .window = f->buf };
	g.w.s = (struct mmk_write_guard){ .msg = (void *)f->buf, .token = 1, .owner = f->h,
					  .window = f->buf };
	eh = mmk_loan(f->h, &g.w.h);
	es = mmk_loan(f->s, &g.w.s);
	expect(f, "loan", e, eh, es);
	if (e) {
		if (g.w.h.msg || g.w.h.owner || g.w.h.token != MMK_TOKEN_INVALID || g.w.s.msg ||
		    g.w.s.owner || g.w.s.token != MMK_TOKEN_INVALID)
			bug(f, "loan failed but left a guard or a token");
		return;
	}
	if (g.w.h.owner != f->h || g.w.s.owner != f->s || !g.w.h.msg || !g.w.s.msg)
		bug(f, "loan: the guard does not name its manager and message");
	if (memcmp(&g.w.h.msg->header, &zero, sizeof(zero)) ||
	    memcmp(&g.w.s.msg->header, &zero, sizeof(zero)))
		bug(f, "loan: the empty message's header is not zeroed");
	if ((uintptr_t)g.w.h.msg->payload % MMK_PAYLOAD_ALIGN ||
	    (uintptr_t)g.w.s.msg->payload % MMK_PAYLOAD_ALIGN)
		bug(f, "loan: payload not %d-byte aligned", MMK_PAYLOAD_ALIGN);
	idx = claim_slot(f, "loan", g.w.h.token, g.w.s.token);
	g.want = empty_header(f);
	g.tok = (struct mtok){ .type = MT_SLOT, .own = true, .idx = idx, .gen = f->slot[idx].gen };
	add_held(f, &g, idx);
}

/*
 * mmk_write_cancel on a held write guard, after an edit of the message.  A
 * loan goes back to the free list whatever it says, its token stale; a
 * read_mut guard on heap and static memory is checked and kept as a release.
 */
static void op_cancel(struct fz *f, struct input *in)
{
	uint8_t a = u8(in);
	uint32_t w[MAX_HELD], nw = 0, i;
	enum mmk_error e = MMK_OK, eh, es;
	struct held *g, before;

	for (i = 0; i < f->nheld; i++)
		if (f->held[i].kind == G_WRITE)
			w[nw++] = i;
	if (!nw) {
		/* Cancelling a released write guard fails without touching anything. */
		if (f->have_released && f->released.kind == G_WRITE)
			expect(f, "cancel of a released guard", MMK_E_INVALID,
			       mmk_write_cancel(&f->released.w.h),
			       mmk_write_cancel(&f->released.w.s));
		return;
	}
	i = w[a % nw];
	g = &f->held[i];
	before = *g;
	write_edit(f, g, in);
	if (!g->loan && g->too_large)
		e = MMK_E_TOO_LARGE;
	else if (!g->loan && g->bad)
		e = MMK_E_INVALID;
	eh = mmk_write_cancel(&g->w.h);
	es = mmk_write_cancel(&g->w.s);
	expect(f, g->loan ? "write_cancel of a loan" : "write_cancel", e, eh, es);
	if (e) {
		if (!g->w.h.owner || !g->w.s.owner)
			bug(f, "write_cancel failed but dropped the guard");
		return;
	}
	if (g->w.h.owner || g->w.h.msg || g->w.s.owner || g->w.s.msg)
		bug(f, "write_cancel left the guard marked held");
	if (g->loan) {
		struct mslot *s = &f->slot[g->idx];

		s->gen = (s->gen + 1) & TOK_GEN_MASK;	/* the loan's token is stale now */
		s->ready = false;
		f->allocated--;
	} else {
		f->slot[g->idx].hdr = g->want;
	}
	f->copies[f->ncopies++ % 16] = before;
	drop_held(f, i);
}

/* ---- batches ---------------------------------------------------------------------------- */

#define BATCH_UNTOUCHED		((enum mmk_error)0x55)

/* What one op of a batch must have done, given the model before it; updates the model. */
static enum mmk_error batch_model_op(struct fz *f, size_t i, struct mmk_batch_op *oh,
				     struct mmk_batch_op *os, const struct mtok *t,
				     const struct mmk_header *want, bool bad)
{
	enum mmk_error e = MMK_OK;
	uint32_t idx = 0;
	char name[48];

	switch (oh->op) {
	case MMK_OP_STORE:
		snprintf(name, sizeof(name), "batch op %zu (store)", i);
		if (!oh->payload && oh->payload_size)
			e = MMK_E_INVALID;
		else if (oh->payload_size > f->cfg.payload_size)
			e = MMK_E_TOO_LARGE;
		else if (bad)
			e = MMK_E_INVALID;
		else if (f->allocated == f->cfg.capacity)
			e = MMK_E_NO_FREE_SLOTS;
		expect(f, name, e, oh->result, os->result);
		if (e && (oh->token != MMK_TOKEN_INVALID || os->token != MMK_TOKEN_INVALID))
			bug(f, "%s failed but returned a token", name);
		if (!e)
			record_store(f, name, oh->token, os->token, want, oh->payload,
				     (uint32_t)oh->payload_size);
		break;
	case MMK_OP_READ:
	case MMK_OP_PEEK_HEADER: {
		enum gkind kind = oh->op == MMK_OP_READ ? G_READ : G_HEADER;
		struct held g = { .kind = kind, .tok = *t };

		snprintf(name, sizeof(name), "batch op %zu (%s)", i,
			 kind == G_READ ? "read" : "peek_header");
		e = model_acquire(f, t, kind, &idx);
		expect(f, name, e, oh->result, os->result);
		if (e) {
			if (oh->msg || os->msg)
				bug(f, "%s failed but gave a message", name);
			break;
		}
		if (!oh->msg || !os->msg)
			bug(f, "%s succeeded without a message pointer", name);
		/* The guard the batch took, as a guard struct the test can release. */
		if (kind == G_READ) {
			g.r.h = (struct mmk_read_guard){ oh->msg, oh->token, f->h };
			g.r.s = (struct mmk_read_guard){ os->msg, os->token, f->s };
		} else {
			g.hd.h = (struct mmk_header_guard){ oh->msg, oh->token, f->h };
			g.hd.s = (struct mmk_header_guard){ os->msg, os->token, f->s };
		}
		add_held(f, &g, idx);
		break;
	}
	case MMK_OP_READ_RELEASE:
		snprintf(name, sizeof(name), "batch op %zu (read_release)", i);
		e = model_token(f, t, &idx);
		if (!e && !f->slot[idx].readers)
			e = MMK_E_INVALID;	/* no shared guard held on it */
		expect(f, name, e, oh->result, os->result);
		if (!e)
			forget_shared(f, name, idx);
		break;
	case MMK_OP_FREE:
		snprintf(name, sizeof(name), "batch op %zu (free)", i);
		e = model_token(f, t, &idx);
		if (!e && (f->slot[idx].readers || f->slot[idx].writer))
			e = MMK_E_BORROW_ACTIVE;
		expect(f, name, e, oh->result, os->result);
		if (!e) {
			f->slot[idx].ready = false;
			f->allocated--;
		}
		break;
	default:
		snprintf(name, sizeof(name), "batch op %zu (opcode %d)", i, (int)oh->op);
		e = MMK_E_INVALID;
		expect(f, name, e, oh->result, os->result);
		break;
	}
	if ((oh->op != MMK_OP_READ && oh->op != MMK_OP_PEEK_HEADER) && (oh->msg || os->msg))
		bug(f, "%s gave a message", name);
	return e;
}

/*
 * mmk_batch of up to MAX_BATCH random ops on tokens live, freed, stale or
 * random, or of earlier ops of the batch.  The model replays the ops in
 * order and stops at the first it predicts to fail: every op before it
 * succeeded as its function would, it failed with that function's error,
 * and no op after it was touched.
 */
static void op_batch(struct fz *f, struct input *in)
{
	static const enum mmk_batch_opcode code[] = {
		MMK_OP_STORE, MMK_OP_READ, MMK_OP_PEEK_HEADER, MMK_OP_READ_RELEASE, MMK_OP_FREE,
		MMK_OP_READ, MMK_OP_STORE, MMK_OP_READ_RELEASE,
	};
	uint8_t a = u8(in);
	size_t n = a % (MAX_BATCH + 1), dh = 99, ds = 99, i;
	struct mmk_batch_op oh[MAX_BATCH], os[MAX_BATCH];
	struct mmk_header hdr[MAX_BATCH], want[MAX_BATCH];
	struct mtok tok[MAX_BATCH];
	bool bad[MAX_BATCH], no_done = a & 0x80;
	enum mmk_error e = MMK_OK, eh, es;
	uint64_t th, ts;

	for (i = 0; i < n; i++) {
		uint8_t b = u8(in);
		struct mmk_batch_op *o = &oh[i];

		memset(o, 0, sizeof(*o));
		tok[i] = (struct mtok){ .type = MT_RAW, .raw = MMK_TOKEN_INVALID };
		bad[i] = false;
		o->op = code[b & 7];
		if ((b & 0xf8) == 0xf8)		/* not an opcode */
			o->op = (enum mmk_batch_opcode)(5u + (b & 3u) * 0x3fffffffu);
		if (o->op == MMK_OP_STORE) {
			uint8_t c = u8(in);
			uint32_t size = (uint32_t)(c * 3u) % (f->cfg.payload_size + 9);

			fill(f->batch_buf[i], size <= MAX_PAYLOAD ? size : 0, f->step * 16 + i);
			o->payload = f->batch_buf[i];
			o->payload_size = size;
			if (size && (c & 0x40) && (b & 0x20))
				o->payload = NULL;
			make_header(f, in, &hdr[i], &want[i], size, &bad[i]);
			o->header = &hdr[i];
			if (c & 0x80) {		/* no header: all zero */
				o->header = NULL;
				want[i] = empty_header(f);
				want[i].payload_size = size;
				bad[i] = false;
			}
			o->token = 0x1234;	/* out only */
		} else if ((b & 0x10) && i) {	/* an earlier op's token, maybe freed by now */
			tok[i] = tok[(b >> 5) % i];
		} else if (o->op == MMK_OP_READ_RELEASE && (b & 0x20) && f->nheld) {
			/* a guard the test holds, of any kind */
			tok[i] = f->held[(b >> 6) % f->nheld].tok;
		} else {
			tok[i] = pick_token(f, in);
		}
		if (o->op != MMK_OP_STORE) {
			tok_pair(f, &tok[i], &th, &ts);
			o->token = th;
		}
		o->msg = (const struct mmk_message *)(const void *)f->buf;	/* out only */
		o->result = BATCH_UNTOUCHED;
		os[i] = *o;
		if (o->op != MMK_OP_STORE)
			os[i].token = ts;
	}

	eh = mmk_batch(f->h, oh, n, no_done ? NULL : &dh);
	es = mmk_batch(f->s, os, n, no_done ? NULL : &ds);

	for (i = 0; i < n; i++) {
		e = batch_model_op(f, i, &oh[i], &os[i], &tok[i], &want[i], bad[i]);
		if (e)
			break;
	}
	expect(f, "batch", e, eh, es);
	/*
	 * What the reads saw, now that the batch is over: later ops of it may
	 * have released, freed and stored over a message read early, so only
	 * a message still there at the same generation is compared.
	 */
	for (size_t j = 0; j < i; j++) {
		uint32_t idx = 0;

		if ((oh[j].op == MMK_OP_READ || oh[j].op == MMK_OP_PEEK_HEADER) &&
		    !model_token(f, &tok[j], &idx))
			check_msg(f, "batch read or peek_header", idx, oh[j].msg, os[j].msg,
				  oh[j].op == MMK_OP_PEEK_HEADER);
	}
	if (!no_done && (dh != i || ds != i))
		bug(f, "batch of %zu: done %zu (heap), %zu (static), expected %zu", n, dh, ds, i);
	for (i++; i < n; i++)
		if (oh[i].result != BATCH_UNTOUCHED || os[i].result != BATCH_UNTOUCHED ||
		    oh[i].msg != (const void *)f->buf || os[i].msg != (const void *)f->buf ||
		    (oh[i].op == MMK_OP_STORE && (oh[i].token != 0x1234 || os[i].token != 0x1234)))
			bug(f, "batch: op %zu, after the failing one, was touched", i);
}

/* Release everything, free everything, and check both managers are empty. */
static void finish(struct fz *f)
{
	while (f->nheld) {
		struct held *g = &f->held[f->nheld - 1];
		enum mmk_error eh, es;

		if (g->kind == G_WRITE) {
			g->w.h.msg->header = g->want;
			g->w.s.msg->header = g->want;
			eh = mmk_write_release(&g->w.h);
			es = mmk_write_release(&g->w.s);
		} else if (g->kind == G_READ) {
			eh = mmk_read_release(&g->r.h);
			es = mmk_read_release(&g->r.s);
		} else {
			eh = mmk_header_release(&g->hd.h);
			es = mmk_header_release(&g->hd.s);
		}
		expect(f, "final release", MMK_OK, eh, es);
		drop_held(f, f->nheld - 1);
	}
	for (uint32_t i = 0; i < f->cfg.capacity; i++) {
		struct mtok t = { .type = MT_SLOT, .own = true, .idx = i, .gen = f->slot[i].gen };
		uint64_t th, ts;

		if (!f->slot[i].ready)
			continue;
		tok_pair(f, &t, &th, &ts);
		expect(f, "final free", MMK_OK, mmk_free(f->h, th), mmk_free(f->s, ts));
		f->slot[i].ready = false;
		f->allocated--;
	}
	check_counts(f, "the final frees");
	if (mmk_available(f->h) != f->cfg.capacity)
		bug(f, "not every slot is free at the end");
}

/* ---- queues ------------------------------------------------------------------------ */

/*
 * Queue operations run on a second pair of managers, heap and static, in
 * lockstep (lib/tests/queue_lockstep.h): the queues' own rules are checked
 * heap against static, not against the model above.  Made on the first
 * queue step of an input.
 */
#define QFZ_CAP		24
#define QFZ_PAYLOAD	QLS_PAYLOAD
static MMK_STATIC_STORAGE(qfz_storage, QFZ_CAP, QFZ_PAYLOAD);
static MMK_QUEUE_STORAGE(qfz_q0, QLS_ITEMS);
static MMK_QUEUE_STORAGE(qfz_q1, QLS_ITEMS);
static MMK_QUEUE_STORAGE(qfz_q2, QLS_ITEMS);
static MMK_QUEUE_STORAGE(qfz_q3, QLS_ITEMS);

struct qfz {
	struct mmk_manager *h, *s;
	struct qls ls;
	bool on;
};

static uint32_t qfz_pick(void *ctx, uint32_t n)
{
	struct input *in = ctx;
	uint32_t v = u8(in);

	return n > 256 ? v << 8 | u8(in) : v;
}

/* Up to 16 queue operations, chosen by the input. */
static void op_queues(struct fz *f, struct qfz *q, struct input *in)
{
	struct mmk_queue_storage *const storage[2][QLS_QUEUES] = {
		{ NULL },
		{ MMK_QUEUE_STATIC(qfz_q0), MMK_QUEUE_STATIC(qfz_q1), MMK_QUEUE_STATIC(qfz_q2),
		  MMK_QUEUE_STATIC(qfz_q3) },
	};
	uint32_t n = 1 + u8(in) % 16;

	if (!q->on) {
		struct mmk_config cfg = { .payload_size = QFZ_PAYLOAD, .capacity = QFZ_CAP,
					  .payload_type = FZ_TYPE_ID };
		enum mmk_error eh = mmk_heap_create(&cfg, &q->h);
		enum mmk_error es = mmk_static_create(MMK_STATIC(qfz_storage), &cfg, &q->s);

		if (eh || es)
			bug(f, "queue managers: heap %s, static %s", en(eh), en(es));
		q->on = true;
		if (!qls_init(&q->ls, q->h, q->s, storage, qfz_pick, in))
			bug(f, "queues: %s", q->ls.why);
	}
	q->ls.ctx = in;
	while (n--)
		if (!qls_step(&q->ls))
			bug(f, "queues: %s", q->ls.why);
}

static void finish_queues(struct fz *f, struct qfz *q)
{
	if (!q->on)
		return;
	if (!qls_fini(&q->ls))
		bug(f, "queues at the end: %s", q->ls.why);
	mmk_close(q->h);
	mmk_close(q->s);
	q->on = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct held held[MAX_HELD];
	static struct fz fz;
	static struct qfz qfz;
	struct input in = { data, size };
	struct fz *f = &fz;
	uint8_t c0 = u8(&in), c1 = u8(&in), c2 = u8(&in), c3 = u8(&in);
	struct mmk_config scfg;
	enum mmk_error eh, es;

	memset(f, 0, sizeof(*f));
	f->held = held;
	f->cfg.capacity = 1 + c0 % MAX_CAP;
	f->cfg.payload_size = 1 + c1 % MAX_PAYLOAD;
	f->cfg.payload_type = c2 & 1 ? FZ_TYPE_ID : FZ_TYPE_ID ^ c3;
	f->cfg.memory_class = (c2 >> 1) & 3;
	f->cfg.memory_device = f->cfg.memory_class == MMK_MEM_DEVICE ? c3 : 0;
	/* Page-aligned slots for the heap; a static manager refuses the flag. */
	f->cfg.flags = (c2 & 0x18) == 0x18 ? MMK_POOL_PAGE_ALIGNED : 0;
	scfg = f->cfg;
	scfg.flags = 0;

	eh = mmk_heap_create(&f->cfg, &f->h);
	es = mmk_static_create(MMK_STATIC(fz_storage), &scfg, &f->s);
	if (eh || es)
		bug(f, "create: heap %s, static %s", en(eh), en(es));
	if (mmk_backend(f->h) != MMK_BACKEND_HEAP || mmk_backend(f->s) != MMK_BACKEND_STATIC ||
	    mmk_fd(f->h) != -1 || mmk_fd(f->s) != -1)
		bug(f, "backend or fd of a new manager");
	check_counts(f, "create");

	for (f->step = 0; in.n && f->step < MAX_STEPS; f->step++) {
		uint8_t op = u8(&in);
		struct mtok t;

		/*
		 * Loans, cancels and batches: selectors whose top bit meant
		 * nothing before, so that older inputs keep their meaning.
		 */
		if (op & 0x80) {
			bool done = true;

			switch ((op & 0x7f) % 15) {
			case 0:
			case 1:
				op_loan(f, &in);
				break;
			case 6:
			case 7:
				op_cancel(f, &in);
				break;
			case 8:
				op_batch(f, &in);
				break;
			case 12:
				op_release_copy(f, &in, true);
				break;
			case 13:
				op_queues(f, &qfz, &in);
				break;
			default:
				done = false;
				break;
			}
			if (done) {
				check_counts(f, "a step");
				continue;
			}
		}
		switch ((op & 0x7f) % 15) {
		case 0:
		case 1:
			op_store(f, &in);
			break;
		case 2:
		case 3:
			t = pick_token(f, &in);
			acquire(f, &t, G_READ, op & 0x80, false);
			break;
		case 4:
			t = pick_token(f, &in);
			acquire(f, &t, G_HEADER, op & 0x80, false);
			break;
		case 5:
			t = pick_token(f, &in);
			acquire(f, &t, G_WRITE, op & 0x80, false);
			break;
		case 6:
		case 7:
			op_release(f, &in);
			break;
		case 8:
			op_free(f, &in);
			break;
		case 9:
			op_typed_store(f, &in);
			break;
		case 10:
			t = pick_token(f, &in);
			acquire(f, &t, G_READ, false, true);
			break;
		case 11:
			op_hoard(f, &in);
			break;
		case 12:
			op_release_copy(f, &in, false);
			break;
		case 13:
			op_null_args(f, &in);
			break;
		default:
			op_config_probe(f, &in);
			break;
		}
		check_counts(f, "a step");
	}
	finish(f);
	finish_queues(f, &qfz);
	mmk_close(f->h);
	mmk_close(f->s);
	return 0;
}
