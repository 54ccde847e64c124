// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The heap and static backends: one implementation over a storage
 * descriptor (slot states, arena, slot size).  The heap backend gets the
 * storage from one allocation; the static backend is given it.
 *
 * Every rule mirrors the kernel module (kmod/mmk_slot.c) decision for
 * decision, so that the same sequence of calls gives the same answers:
 * the same token layout and generation rule, the same free-slot order (a
 * stack from which slot 0 is taken first), the same check order, and the
 * same guard limits (the module's defaults).  A manager here is one
 * session: every guard on its slots is its own.
 *
 * Single-threaded: no locks.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/*
 * Pool tags for heap and static managers, handed out in turn from 1 to
 * 0xfffe.  A token of another manager is refused unless 65534 managers
 * were created in between.
 */
static atomic_uint next_tag;

static uint16_t new_tag(void)
{
	return (uint16_t)(atomic_fetch_add(&next_tag, 1) % 0xfffeU + 1);
}

static inline struct mmk_message *slot_msg(const struct mmk_manager *m, uint32_t idx)
{
	return (struct mmk_message *)(void *)(m->core.arena + (size_t)idx * m->slot_size);
}

static uint64_t token_make(const struct mmk_manager *m, uint32_t gen, uint32_t idx)
{
	return (uint64_t)m->core.tag << TOKEN_TAG_SHIFT | (uint64_t)gen << TOKEN_GEN_SHIFT | idx;
}

/* Split a token of this manager; MMK_E_BAD_TOKEN if it names none of its slots. */
static enum mmk_error token_parse(const struct mmk_manager *m, uint64_t token, uint32_t *idx,
				  uint32_t *gen)
{
	uint32_t i = (uint32_t)(token & TOKEN_INDEX_MASK);

	if ((token >> TOKEN_TAG_SHIFT) != m->core.tag || i >= m->capacity)
		return MMK_E_BAD_TOKEN;
	*idx = i;
	*gen = (uint32_t)(token >> TOKEN_GEN_SHIFT) & TOKEN_GEN_MASK;
	return MMK_OK;
}

/* The generation rule: is the token's generation the message in the slot? */
static enum mmk_error slot_check(const struct mmk_slot_state *s, uint32_t gen)
{
	if (gen != SLOT_GEN(s))
		return MMK_E_BAD_TOKEN;
	if (!(SLOT_FLAGS(s) & SLOT_READY))
		return MMK_E_NOT_ALLOCATED;
	return MMK_OK;
}

/*
 * Check a header given by the caller and set the fields mmk owns; the
 * kernel's mmk_header_check(), rule for rule.
 */
enum mmk_error mmk_header_check(const struct mmk_manager *m, struct mmk_header *h,
				uint32_t payload_size)
{
	if (h->flags & ~MMK_MSG_FLAGS_ALL || h->qos > MMK_QOS_LATENCY_CRITICAL ||
	    (!(h->flags & MMK_MSG_HAS_DEADLINE) && h->deadline_ns) ||
	    h->reserved0 || h->reserved1[0] || h->reserved1[1])
		return MMK_E_INVALID;
	if (!h->qos)
		h->qos = MMK_QOS_BEST_EFFORT;
	h->payload_size = payload_size;
	h->memory_class = m->memory_class;
	h->memory_device = m->memory_device;
	return MMK_OK;
}

/* The checks of a store, in the kernel's order; *h is the header to store. */
static enum mmk_error store_check(const struct mmk_manager *m, const struct mmk_header *header,
				  uint32_t size, struct mmk_header *h)
{
	enum mmk_error err;

	/* The front end has checked the size against the slot. */
	*h = header ? *header : (struct mmk_header){ 0 };
	err = mmk_header_check(m, h, size);
	if (err)
		return err;
	if (!m->core.nr_free)
		return MMK_E_NO_FREE_SLOTS;
	return MMK_OK;
}

/* Take the next free slot for a checked message. */
static uint32_t store_take(struct mmk_manager *m, const struct mmk_header *h,
			   const void *payload, uint32_t size, uint64_t *token)
{
	uint32_t idx = SLOT_STACK(&m->core.slots[--m->core.nr_free]);
	struct mmk_slot_state *s = &m->core.slots[idx];
	struct mmk_message *msg = slot_msg(m, idx);

	if (size)
		memcpy(msg->payload, payload, size);
	msg->header = *h;
	SLOT_GEN(s) = (SLOT_GEN(s) + 1) & TOKEN_GEN_MASK;
	SLOT_FLAGS(s) |= SLOT_READY;
	*token = token_make(m, SLOT_GEN(s), idx);
	return idx;
}

static enum mmk_error core_store(struct mmk_manager *m, const struct mmk_header *header,
				 const void *payload, uint32_t size, uint64_t *token)
{
	struct mmk_header h;
	enum mmk_error err = store_check(m, header, size, &h);

	if (err)
		return err;
	store_take(m, &h, payload, size, token);
	return MMK_OK;
}

/* The slot a token names, if the token is well formed and current. */
static enum mmk_error core_lookup(struct mmk_manager *m, uint64_t token, uint32_t *idx,
				  struct mmk_slot_state **s)
{
	enum mmk_error err;
	uint32_t gen;

	err = token_parse(m, token, idx, &gen);
	if (err)
		return err;
	*s = &m->core.slots[*idx];
	return slot_check(*s, gen);
}

/* One more guard of the manager, within MMK_GUARDS_MAX. */
static enum mmk_error guard_take(struct mmk_manager *m)
{
	if (m->core.nr_guards >= MMK_GUARDS_MAX)
		return MMK_E_LIMIT;
	m->core.nr_guards++;
	return MMK_OK;
}

/* Empty a slot and put it back on the free-slot stack. */
static void slot_free(struct mmk_manager *m, uint32_t idx, struct mmk_slot_state *s)
{
	SLOT_FLAGS(s) &= ~(SLOT_READY | SLOT_POISONED | SLOT_GIVEN);
	SLOT_STACK(&m->core.slots[m->core.nr_free++]) = idx;
}

/* A given message is freed when no queue and no guard holds it any more. */
static void slot_let_go(struct mmk_manager *m, uint32_t idx)
{
	struct mmk_slot_state *s = &m->core.slots[idx];

	if ((SLOT_FLAGS(s) & SLOT_GIVEN) && !SLOT_QHOLDS(s) && !SLOT_READERS(s) &&
	    !(SLOT_FLAGS(s) & SLOT_WRITER))
		slot_free(m, idx, s);
}

static enum mmk_error core_acquire(struct mmk_manager *m, uint64_t token, enum guard_kind kind,
				   bool wait, uint64_t timeout_ns, struct mmk_message **msg,
				   void **window)
{
	bool write = kind == GUARD_WRITE;
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	(void)wait;	/* nobody else could release the guard meanwhile */
	(void)timeout_ns;
	err = core_lookup(m, token, &idx, &s);
	if (err)
		return err;
	if (SLOT_FLAGS(s) & SLOT_POISONED)
		return MMK_E_POISONED;
	/* A queue's hold is shared: no write guard while one is queued. */
	if (SLOT_FLAGS(s) & SLOT_WRITER || (write && (SLOT_READERS(s) || SLOT_QHOLDS(s))))
		return MMK_E_ALREADY_BORROWED;
	if (!write && SLOT_READERS(s) >= MMK_READERS_MAX)
		return MMK_E_LIMIT;
	err = guard_take(m);
	if (err)
		return err;
	if (write)
		SLOT_FLAGS(s) |= SLOT_WRITER;
	else
		SLOT_READERS(s)++;
	*msg = slot_msg(m, idx);
	if (window)
		*window = NULL;
	return MMK_OK;
}

static enum mmk_error core_release_shared(struct mmk_manager *m, uint64_t token)
{
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	err = core_lookup(m, token, &idx, &s);
	if (err)
		return err;
	/* As the kernel's ENOENT: this manager holds no such guard. */
	if (!SLOT_READERS(s))
		return MMK_E_INVALID;
	SLOT_READERS(s)--;
	m->core.nr_guards--;
	slot_let_go(m, idx);
	return MMK_OK;
}

/* The slot of a write guard this manager holds, with @msg its message. */
static enum mmk_error write_lookup(struct mmk_manager *m, uint64_t token,
				   const struct mmk_message *msg, uint32_t *idx,
				   struct mmk_slot_state **s)
{
	enum mmk_error err = core_lookup(m, token, idx, s);

	if (err)
		return err;
	if (!(SLOT_FLAGS(*s) & SLOT_WRITER) || msg != slot_msg(m, *idx))
		return MMK_E_INVALID;
	return MMK_OK;
}

/* Check a message written in place like a store's, and set mmk's fields. */
static enum mmk_error commit_check(const struct mmk_manager *m, struct mmk_message *msg)
{
	struct mmk_header h = msg->header;
	enum mmk_error err;

	if (h.payload_size > m->payload_max)
		return MMK_E_TOO_LARGE;
	err = mmk_header_check(m, &h, h.payload_size);
	if (err == MMK_OK)
		msg->header = h;
	return err;
}

static enum mmk_error core_release_write(struct mmk_manager *m, uint64_t token,
					 struct mmk_message *msg, void *window)
{
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	(void)window;
	err = write_lookup(m, token, msg, &idx, &s);
	if (err)
		return err;
	/* The message was written in place: check it like a store's. */
	err = commit_check(m, msg);
	if (err)
		return err;
	SLOT_FLAGS(s) &= ~(SLOT_WRITER | SLOT_LOANED);
	m->core.nr_guards--;
	/* A popped write guard: the message was given. */
	slot_let_go(m, idx);
	return MMK_OK;
}

/* As the kernel's mmk_loan(): pop a slot, new generation, empty header. */
static enum mmk_error core_loan(struct mmk_manager *m, uint64_t *token, struct mmk_message **msg,
				void **window)
{
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	if (!m->core.nr_free)
		return MMK_E_NO_FREE_SLOTS;
	err = guard_take(m);
	if (err)
		return err;

	idx = SLOT_STACK(&m->core.slots[--m->core.nr_free]);
	s = &m->core.slots[idx];
	*msg = slot_msg(m, idx);
	memset(&(*msg)->header, 0, sizeof((*msg)->header));
	SLOT_GEN(s) = (SLOT_GEN(s) + 1) & TOKEN_GEN_MASK;
	SLOT_FLAGS(s) |= SLOT_READY | SLOT_WRITER | SLOT_LOANED;
	*token = token_make(m, SLOT_GEN(s), idx);
	*window = NULL;
	return MMK_OK;
}

/*
 * A loan goes back to the free list at a new generation (its token is
 * stale), as in the kernel.  Any other write guard was on the message
 * itself: what was written stays, checked as at release.
 */
static enum mmk_error core_cancel_write(struct mmk_manager *m, uint64_t token,
					struct mmk_message *msg, void *window)
{
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	err = write_lookup(m, token, msg, &idx, &s);
	if (err)
		return err;
	if (!(SLOT_FLAGS(s) & SLOT_LOANED))
		return core_release_write(m, token, msg, window);

	SLOT_GEN(s) = (SLOT_GEN(s) + 1) & TOKEN_GEN_MASK;
	SLOT_FLAGS(s) &= ~(SLOT_WRITER | SLOT_LOANED);
	slot_free(m, idx, s);
	m->core.nr_guards--;
	return MMK_OK;
}

static enum mmk_error core_free(struct mmk_manager *m, uint64_t token)
{
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	err = core_lookup(m, token, &idx, &s);
	if (err)
		return err;
	if (SLOT_READERS(s) || SLOT_FLAGS(s) & SLOT_WRITER)
		return MMK_E_BORROW_ACTIVE;
	if (SLOT_QHOLDS(s))
		return MMK_E_QUEUE_OWNED;
	slot_free(m, idx, s);
	return MMK_OK;
}

/* ---- queues -------------------------------------------------------------------- */

_Static_assert(sizeof(struct cqueue) <= sizeof(((struct mmk_queue_storage *)0)->queue.bytes),
	       "struct cqueue does not fit struct mmk_queue_storage");

/* A queue in use has its storage set; closing the queue clears it. */
static struct cqueue *storage_queue(struct mmk_queue_storage *st)
{
	return (struct cqueue *)(void *)st->queue.bytes;
}

static struct mmk_queue_item *ring_at(const struct cqueue *cq, uint32_t i)
{
	return &cq->ring[(cq->head + i) % cq->cap_items];
}

/* As the kernel decides it: on both item and byte caps. */
static enum mmk_watermark cq_watermark(const struct cqueue *cq)
{
	if (cq->items >= cq->cap_items || (cq->cap_bytes && cq->bytes >= cq->cap_bytes))
		return MMK_WATERMARK_AT_HARD;
	if (cq->items < cq->soft_items && (!cq->cap_bytes || cq->bytes < cq->soft_bytes))
		return MMK_WATERMARK_BELOW_SOFT;
	return MMK_WATERMARK_BETWEEN;
}

static struct cqueue *find_queue(const struct mmk_manager *m, const char *name)
{
	struct cqueue *cq;

	for (cq = m->core.queues; cq; cq = cq->next)
		if (cq->name[0] && !strcmp(cq->name, name))
			return cq;
	return NULL;
}

/* A new handle on @cq; MMK_E_LIMIT if all are in use. */
static enum mmk_error handle_take(struct mmk_manager *m, struct cqueue *cq, struct mmk_queue **out)
{
	for (int i = 0; i < MMK_QUEUE_HANDLES_MAX; i++) {
		struct mmk_queue *q = &cq->handles[i];

		if (!q->open) {
			*q = (struct mmk_queue){ .m = m, .cq = cq, .fd = -1, .open = true };
			cq->nr_handles++;
			*out = q;
			return MMK_OK;
		}
	}
	return MMK_E_LIMIT;
}

static enum mmk_error core_queue_create(struct mmk_manager *m, const struct mmk_queue_attr *a,
					struct mmk_queue **out)
{
	struct mmk_queue_storage *st = a->storage;
	struct cqueue *cq;
	bool heap = m->backend == MMK_BACKEND_HEAP;

	if (!heap && (!st || !st->items || st->cap_items < a->cap_items ||
		      storage_queue(st)->storage))
		return MMK_E_INVALID;
	if (a->name && a->name[0] && find_queue(m, a->name)) {
		errno = EEXIST;
		return MMK_E_SYSTEM;
	}
	if (m->core.nr_queues >= MMK_QUEUES_MAX)
		return MMK_E_LIMIT;
	if (heap) {
		/* One allocation: the storage and its ring. */
		st = malloc(sizeof(*st) + (size_t)a->cap_items * sizeof(struct mmk_queue_item));
		if (!st)
			return MMK_E_SYSTEM;
		st->cap_items = a->cap_items;
		st->items = (struct mmk_queue_item *)(void *)(st + 1);
	}
	cq = storage_queue(st);
	memset(cq, 0, sizeof(*cq));
	cq->storage = st;
	cq->ring = st->items;
	cq->heap = heap;
	cq->policy = a->policy;
	cq->cap_items = a->cap_items;
	cq->soft_items = a->soft_items ? a->soft_items : a->cap_items;
	cq->cap_bytes = a->cap_bytes;
	cq->soft_bytes = a->soft_bytes ? a->soft_bytes : a->cap_bytes;
	if (a->name)
		strcpy(cq->name, a->name);
	cq->next = m->core.queues;
	m->core.queues = cq;
	m->core.nr_queues++;
	return handle_take(m, cq, out);
}

static enum mmk_error core_queue_open(struct mmk_manager *m, const struct mmk_queue_attr *attr,
				      const char *name, struct mmk_queue **out)
{
	struct cqueue *cq;

	if (attr)
		return core_queue_create(m, attr, out);
	cq = find_queue(m, name);
	if (!cq) {
		errno = ENOENT;
		return MMK_E_SYSTEM;
	}
	return handle_take(m, cq, out);
}

/* Take the oldest item out of the queue; returns its slot. */
static uint32_t cq_dequeue(struct cqueue *cq)
{
	struct mmk_queue_item *it = ring_at(cq, 0);
	uint32_t idx = (uint32_t)(it->priv[0] & TOKEN_INDEX_MASK);

	cq->head = (cq->head + 1) % cq->cap_items;
	cq->items--;
	cq->bytes -= it->priv[1];
	return idx;
}

/* Drop the queue's hold on its oldest message, for @reason. */
static void cq_drop_oldest(struct mmk_manager *m, struct cqueue *cq, int reason)
{
	uint32_t idx = cq_dequeue(cq);

	cq->drops[reason]++;
	SLOT_FLAGS(&m->core.slots[idx]) -= 1U << SLOT_QSHIFT;
	slot_let_go(m, idx);
}

static void cq_destroy(struct mmk_manager *m, struct cqueue *cq, bool release)
{
	struct cqueue **pp;

	while (release && cq->items) {
		uint32_t idx = cq_dequeue(cq);

		SLOT_FLAGS(&m->core.slots[idx]) -= 1U << SLOT_QSHIFT;
		slot_let_go(m, idx);
	}
	for (pp = &m->core.queues; *pp; pp = &(*pp)->next) {
		if (*pp == cq) {
			*pp = cq->next;
			break;
		}
	}
	m->core.nr_queues--;
	if (cq->heap) {
		free(cq->storage);
	} else {
		/* The storage may be used again. */
		memset(cq, 0, sizeof(*cq));
	}
}

/* The last handle of a queue releases every message it holds. */
static void core_queue_close(struct mmk_queue *q)
{
	struct cqueue *cq = q->cq;

	q->open = false;
	if (--cq->nr_handles == 0)
		cq_destroy(q->m, cq, true);
}

/* What admission decides for one queue. */
enum verdict {
	V_ADMIT,
	V_DROP,		/* drops[reason] */
	V_FULL,
};

/* limen's EdgePolicy::decide, on the occupancy before the push. */
static enum verdict cq_decide(const struct cqueue *cq, uint32_t size, uint8_t qos, int *reason,
			      uint32_t *evict)
{
	enum mmk_watermark wm = cq_watermark(cq);
	uint64_t bytes;
	uint32_t n;

	*evict = 0;
	if (wm == MMK_WATERMARK_BELOW_SOFT)
		return V_ADMIT;
	if (wm == MMK_WATERMARK_AT_HARD && cq->cap_bytes && size > cq->cap_bytes)
		return V_FULL;
	switch (cq->policy) {
	case MMK_POLICY_DROP_NEWEST:
		*reason = MMK_DROP_NEWEST;
		return V_DROP;
	case MMK_POLICY_DROP_OLDEST:
		if (wm == MMK_WATERMARK_BETWEEN) {
			*evict = 1;
			return V_ADMIT;
		}
		/* Until below both hard caps. */
		for (n = 0, bytes = cq->bytes; n < cq->items; n++) {
			if (cq->items - n < cq->cap_items && (!cq->cap_bytes || bytes < cq->cap_bytes))
				break;
			bytes -= ring_at(cq, n)->priv[1];
		}
		*evict = n;
		return V_ADMIT;
	case MMK_POLICY_QOS:
		if (wm == MMK_WATERMARK_AT_HARD)
			return V_FULL;
		if (qos == MMK_QOS_LATENCY_CRITICAL)
			return V_ADMIT;
		*reason = MMK_DROP_QOS;
		return V_DROP;
	default:	/* REJECT; BLOCK, which cannot wait here */
		return V_FULL;
	}
}

static bool cq_holds(const struct cqueue *cq, uint64_t token)
{
	for (uint32_t i = 0; i < cq->items; i++)
		if (ring_at(cq, i)->priv[0] == token)
			return true;
	return false;
}

/*
 * Push, as the kernel's MMK_IOC_PUSH: the message's checks, then the
 * admission of every queue (nothing changes if one refuses), then each
 * queue takes it, drops it or evicts for it.
 */
static enum mmk_error core_push(struct mmk_manager *m, struct push_req *r)
{
	enum verdict v[MMK_PUSH_MAX_QUEUES];
	int reason[MMK_PUSH_MAX_QUEUES];
	uint32_t evict[MMK_PUSH_MAX_QUEUES];
	struct mmk_header h;
	struct mmk_slot_state *s = NULL;
	enum mmk_error err;
	uint32_t idx = 0, size;
	uint8_t qos;
	size_t i;

	if (r->kind == PUSH_STORE) {
		err = store_check(m, r->header, r->size, &h);
		if (err)
			return err;
		size = r->size;
		qos = h.qos;
	} else {
		if (r->kind == PUSH_COMMIT)
			err = write_lookup(m, r->token, r->msg, &idx, &s);
		else
			err = core_lookup(m, r->token, &idx, &s);
		if (err)
			return err;
		if (r->kind == PUSH_COMMIT) {
			err = commit_check(m, r->msg);
			if (err)
				return err;
		} else {
			if (SLOT_FLAGS(s) & SLOT_POISONED)
				return MMK_E_POISONED;
			if (SLOT_FLAGS(s) & SLOT_WRITER)
				return MMK_E_ALREADY_BORROWED;
			for (i = 0; i < r->n; i++)
				if (cq_holds(r->qs[i]->cq, r->token))
					return MMK_E_QUEUE_OWNED;
		}
		size = slot_msg(m, idx)->header.payload_size;
		qos = slot_msg(m, idx)->header.qos;
	}

	/* Every queue that refuses counts a rejection, as in the kernel. */
	err = MMK_OK;
	for (i = 0; i < r->n; i++)
		if ((v[i] = cq_decide(r->qs[i]->cq, size, qos, &reason[i], &evict[i])) == V_FULL)
			err = MMK_E_QUEUE_FULL;
	if (err) {
		for (i = 0; i < r->n; i++)
			r->qs[i]->cq->rejected += v[i] == V_FULL;
		return err;
	}

	/* Admitted: the message is given. */
	if (r->kind == PUSH_STORE) {
		idx = store_take(m, &h, r->payload, size, &r->token);
		s = &m->core.slots[idx];
	} else if (r->kind == PUSH_COMMIT) {
		SLOT_FLAGS(s) &= ~(SLOT_WRITER | SLOT_LOANED);
		m->core.nr_guards--;
	}
	SLOT_FLAGS(s) |= SLOT_GIVEN;
	for (i = 0; i < r->n; i++) {
		struct cqueue *cq = r->qs[i]->cq;
		struct mmk_queue_item *it;

		if (v[i] == V_DROP) {
			cq->drops[reason[i]]++;
			r->out->dropped |= 1U << i;
			continue;
		}
		for (uint32_t k = 0; k < evict[i]; k++)
			cq_drop_oldest(m, cq, MMK_DROP_OLDEST);
		r->out->evicted += evict[i];
		it = ring_at(cq, cq->items);
		it->priv[0] = r->token;
		it->priv[1] = size;
		cq->items++;
		cq->bytes += size;
		cq->pushes++;
		if (cq->items > cq->high_items)
			cq->high_items = cq->items;
		SLOT_FLAGS(s) += 1U << SLOT_QSHIFT;
	}
	slot_let_go(m, idx);
	return MMK_OK;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A QoS queue drops the expired messages at its head. */
static void cq_drop_expired(struct mmk_manager *m, struct cqueue *cq)
{
	uint64_t now = 0;

	if (cq->policy != MMK_POLICY_QOS)
		return;
	while (cq->items) {
		const struct mmk_header *h = &slot_msg(m, (uint32_t)(ring_at(cq, 0)->priv[0] &
								      TOKEN_INDEX_MASK))->header;

		if (!(h->flags & MMK_MSG_HAS_DEADLINE))
			return;
		if (!now)
			now = now_ns();
		if (h->deadline_ns >= now)
			return;
		cq_drop_oldest(m, cq, MMK_DROP_DEADLINE);
	}
}

static enum mmk_error core_pop(struct mmk_queue *q, bool write, bool wait, uint64_t timeout_ns,
			       struct popped *out, size_t max, size_t *count)
{
	struct mmk_manager *m = q->m;
	struct cqueue *cq = q->cq;
	enum mmk_error err = MMK_OK;
	size_t n;

	(void)wait;	/* nobody else could push meanwhile */
	(void)timeout_ns;
	for (n = 0; n < max; n++) {
		struct mmk_slot_state *s;
		uint64_t token;
		uint32_t idx;

		cq_drop_expired(m, cq);
		if (!cq->items) {
			err = MMK_E_QUEUE_EMPTY;
			break;
		}
		token = ring_at(cq, 0)->priv[0];
		idx = (uint32_t)(token & TOKEN_INDEX_MASK);
		s = &m->core.slots[idx];
		if (write && (SLOT_QHOLDS(s) > 1 || SLOT_READERS(s))) {
			err = MMK_E_ALREADY_BORROWED;
			break;
		}
		err = guard_take(m);
		if (err)
			break;
		cq_dequeue(cq);
		cq->pops++;
		SLOT_FLAGS(s) -= 1U << SLOT_QSHIFT;
		if (write)
			SLOT_FLAGS(s) |= SLOT_WRITER;
		else
			SLOT_READERS(s)++;
		out[n] = (struct popped){ .token = token, .msg = slot_msg(m, idx) };
	}
	*count = n;
	return n ? MMK_OK : err;
}

static enum mmk_error core_peek(struct mmk_queue *q, size_t index, struct mmk_queue_entry *e)
{
	const struct cqueue *cq = q->cq;
	const struct mmk_queue_item *it;
	const struct mmk_message *msg;

	if (index >= cq->items)
		return MMK_E_QUEUE_EMPTY;
	it = ring_at(cq, (uint32_t)index);
	msg = slot_msg(q->m, (uint32_t)(it->priv[0] & TOKEN_INDEX_MASK));
	e->token = it->priv[0];
	e->msg = msg;
	e->payload_size = (uint32_t)it->priv[1];
	e->qos = msg->header.qos;
	e->flags = msg->header.flags & MMK_MSG_HAS_DEADLINE;
	e->deadline_ns = e->flags ? msg->header.deadline_ns : 0;
	return MMK_OK;
}

static enum mmk_error core_queue_stats(struct mmk_queue *q, struct mmk_queue_stats *st)
{
	const struct cqueue *cq = q->cq;

	st->policy = (enum mmk_queue_policy)cq->policy;
	st->cap_items = cq->cap_items;
	st->soft_items = cq->soft_items;
	st->cap_bytes = cq->cap_bytes;
	st->soft_bytes = cq->soft_bytes;
	st->occupancy.items = cq->items;
	st->occupancy.bytes = cq->bytes;
	st->occupancy.watermark = cq_watermark(cq);
	st->high_items = cq->high_items;
	st->pushes = cq->pushes;
	st->pops = cq->pops;
	st->rejected = cq->rejected;
	memcpy(st->drops, cq->drops, sizeof(st->drops));
	memcpy(st->name, cq->name, sizeof(st->name));
	return MMK_OK;
}

static size_t core_available(const struct mmk_manager *m)
{
	return m->core.nr_free;
}

static void core_close(struct mmk_manager *m)
{
	struct mmk_static_storage *st = m->core.storage;

	/* The queues go with the manager (their messages too). */
	while (m->core.queues)
		cq_destroy(m, m->core.queues, false);
	if (st) {
		/* Forget the manager; the storage may be used again. */
		memset(m, 0, sizeof(*m));
		return;
	}
	free(m);
}

const struct mmk_ops mmk_core_ops = {
	.store		= core_store,
	.acquire	= core_acquire,
	.release_shared	= core_release_shared,
	.release_write	= core_release_write,
	.cancel_write	= core_cancel_write,
	.loan		= core_loan,
	.free		= core_free,
	.available	= core_available,
	.close		= core_close,
	.queue_open	= core_queue_open,
	.queue_close	= core_queue_close,
	.push		= core_push,
	.pop		= core_pop,
	.peek		= core_peek,
	.queue_stats	= core_queue_stats,
};

/* Check what heap and static pools share; fills the manager's fields. */
static enum mmk_error core_config(struct mmk_manager *m, const struct mmk_config *cfg,
				  uint32_t flags_ok)
{
	if (!cfg->payload_size || cfg->payload_size > MMK_PAYLOAD_MAX)
		return MMK_E_INVALID;
	if (!cfg->capacity || cfg->capacity > MMK_CAPACITY_MAX)
		return MMK_E_INVALID;
	if (cfg->flags & ~flags_ok)
		return MMK_E_INVALID;
	if (cfg->memory_class > MMK_MEM_SHARED)
		return MMK_E_INVALID;
	if (cfg->memory_device &&
	    (cfg->memory_class != MMK_MEM_DEVICE || cfg->memory_device > UINT16_MAX))
		return MMK_E_INVALID;

	m->ops = &mmk_core_ops;
	m->capacity = cfg->capacity;
	m->payload_max = cfg->payload_size;
	m->flags = cfg->flags;
	m->payload_type = cfg->payload_type;
	m->memory_class = (uint8_t)cfg->memory_class;
	m->memory_device = (uint16_t)cfg->memory_device;
	return MMK_OK;
}

/* Every slot empty at generation 0; slot 0 is handed out first. */
static void core_init_slots(struct mmk_manager *m)
{
	uint32_t i;

	memset(m->core.slots, 0, (size_t)m->capacity * sizeof(*m->core.slots));
	for (i = 0; i < m->capacity; i++)
		SLOT_STACK(&m->core.slots[i]) = m->capacity - 1 - i;
	m->core.nr_free = m->capacity;
	m->core.nr_guards = 0;
	m->core.nr_queues = 0;
	m->core.queues = NULL;
	m->core.tag = new_tag();
}

static size_t align_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

enum mmk_error mmk_heap_create(const struct mmk_config *cfg, struct mmk_manager **out)
{
	struct mmk_manager tmp = { 0 }, *m;
	size_t align = MMK_PAYLOAD_ALIGN, slots_off, arena_off, arena_size, total;
	enum mmk_error err;
	void *mem;
	int ret;

	if (out)
		*out = NULL;
	if (!cfg || !out)
		return MMK_E_INVALID;
	err = core_config(&tmp, cfg, MMK_POOL_PAGE_ALIGNED);
	if (err)
		return err;
	if (cfg->flags & MMK_POOL_PAGE_ALIGNED) {
		long page = sysconf(_SC_PAGESIZE);

		align = page > MMK_PAYLOAD_ALIGN ? (size_t)page : MMK_PAYLOAD_ALIGN;
	}
	tmp.backend = MMK_BACKEND_HEAP;
	tmp.slot_size = align_up(sizeof(struct mmk_header) + cfg->payload_size, align);

	/* One allocation: the manager, the slot states, then the slots. */
	slots_off = align_up(sizeof(*m), _Alignof(struct mmk_slot_state));
	arena_off = align_up(slots_off + (size_t)cfg->capacity * sizeof(struct mmk_slot_state), align);
	if (tmp.slot_size > (SIZE_MAX - arena_off) / cfg->capacity) {
		errno = ENOMEM;
		return MMK_E_SYSTEM;
	}
	arena_size = tmp.slot_size * cfg->capacity;
	total = arena_off + arena_size;
	ret = posix_memalign(&mem, align, total);
	if (ret) {
		errno = ret;
		return MMK_E_SYSTEM;
	}
	/* Zeroed like the kernel's arena: no earlier data in unused bytes. */
	memset(mem, 0, total);

	m = mem;
	*m = tmp;
	m->core.slots = (struct mmk_slot_state *)(void *)((unsigned char *)mem + slots_off);
	m->core.arena = (unsigned char *)mem + arena_off;
	m->core.storage = NULL;
	core_init_slots(m);
	*out = m;
	return MMK_OK;
}

enum mmk_error mmk_static_create(struct mmk_static_storage *st, const struct mmk_config *cfg,
				 struct mmk_manager **out)
{
	struct mmk_config dflt = { 0 };
	struct mmk_manager tmp = { 0 }, *m;
	enum mmk_error err;

	if (out)
		*out = NULL;
	if (!st || !out)
		return MMK_E_INVALID;
	if (!st->slots || !st->arena || !st->capacity || !st->payload_size ||
	    st->slot_size != MMK_SLOT_SIZE(st->payload_size) ||
	    (uintptr_t)st->arena % MMK_PAYLOAD_ALIGN)
		return MMK_E_INVALID;
	m = (struct mmk_manager *)(void *)st->manager.bytes;
	/* An open manager has its ops set; mmk_close() clears them. */
	if (m->ops)
		return MMK_E_INVALID;
	if (!cfg) {
		dflt.payload_size = st->payload_size;
		dflt.capacity = st->capacity;
		cfg = &dflt;
	}
	err = core_config(&tmp, cfg, 0);
	if (err)
		return err;
	if (cfg->payload_size > st->payload_size || cfg->capacity > st->capacity)
		return MMK_E_INVALID;

	tmp.backend = MMK_BACKEND_STATIC;
	tmp.slot_size = st->slot_size;
	tmp.core.slots = st->slots;
	tmp.core.arena = st->arena;
	tmp.core.storage = st;
	*m = tmp;
	core_init_slots(m);
	memset(m->core.arena, 0, (size_t)m->capacity * m->slot_size);
	*out = m;
	return MMK_OK;
}
