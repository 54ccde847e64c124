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

static enum mmk_error core_store(struct mmk_manager *m, const struct mmk_header *header,
				 const void *payload, uint32_t size, uint64_t *token)
{
	struct mmk_header h = { 0 };
	struct mmk_message *msg;
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	/* The front end has checked the size against the slot. */
	if (header)
		h = *header;
	err = mmk_header_check(m, &h, size);
	if (err)
		return err;
	if (!m->core.nr_free)
		return MMK_E_NO_FREE_SLOTS;

	idx = SLOT_STACK(&m->core.slots[--m->core.nr_free]);
	s = &m->core.slots[idx];
	msg = slot_msg(m, idx);
	if (size)
		memcpy(msg->payload, payload, size);
	msg->header = h;
	SLOT_GEN(s) = (SLOT_GEN(s) + 1) & TOKEN_GEN_MASK;
	SLOT_FLAGS(s) |= SLOT_READY;
	*token = token_make(m, SLOT_GEN(s), idx);
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
	if (SLOT_FLAGS(s) & SLOT_WRITER || (write && SLOT_READERS(s)))
		return MMK_E_ALREADY_BORROWED;
	if (!write && SLOT_READERS(s) >= MMK_READERS_MAX)
		return MMK_E_LIMIT;
	if (m->core.nr_guards >= MMK_GUARDS_MAX)
		return MMK_E_LIMIT;

	m->core.nr_guards++;
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
	return MMK_OK;
}

static enum mmk_error core_release_write(struct mmk_manager *m, uint64_t token,
					 struct mmk_message *msg, void *window)
{
	struct mmk_header h;
	struct mmk_slot_state *s;
	enum mmk_error err;
	uint32_t idx;

	(void)window;
	err = core_lookup(m, token, &idx, &s);
	if (err)
		return err;
	if (!(SLOT_FLAGS(s) & SLOT_WRITER) || msg != slot_msg(m, idx))
		return MMK_E_INVALID;

	/* The message was written in place: check it like a store's. */
	h = msg->header;
	if (h.payload_size > m->payload_max)
		return MMK_E_TOO_LARGE;
	err = mmk_header_check(m, &h, h.payload_size);
	if (err)
		return err;
	msg->header = h;
	SLOT_FLAGS(s) &= ~(SLOT_WRITER | SLOT_LOANED);
	m->core.nr_guards--;
	return MMK_OK;
}

/* As the kernel's mmk_loan(): pop a slot, new generation, empty header. */
static enum mmk_error core_loan(struct mmk_manager *m, uint64_t *token, struct mmk_message **msg,
				void **window)
{
	struct mmk_slot_state *s;
	uint32_t idx;

	if (!m->core.nr_free)
		return MMK_E_NO_FREE_SLOTS;
	if (m->core.nr_guards >= MMK_GUARDS_MAX)
		return MMK_E_LIMIT;

	idx = SLOT_STACK(&m->core.slots[--m->core.nr_free]);
	s = &m->core.slots[idx];
	*msg = slot_msg(m, idx);
	memset(&(*msg)->header, 0, sizeof((*msg)->header));
	SLOT_GEN(s) = (SLOT_GEN(s) + 1) & TOKEN_GEN_MASK;
	SLOT_FLAGS(s) |= SLOT_READY | SLOT_WRITER | SLOT_LOANED;
	m->core.nr_guards++;
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

	err = core_lookup(m, token, &idx, &s);
	if (err)
		return err;
	if (!(SLOT_FLAGS(s) & SLOT_WRITER) || msg != slot_msg(m, idx))
		return MMK_E_INVALID;
	if (!(SLOT_FLAGS(s) & SLOT_LOANED))
		return core_release_write(m, token, msg, window);

	SLOT_GEN(s) = (SLOT_GEN(s) + 1) & TOKEN_GEN_MASK;
	SLOT_FLAGS(s) &= ~(SLOT_READY | SLOT_WRITER | SLOT_LOANED);
	SLOT_STACK(&m->core.slots[m->core.nr_free++]) = idx;
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
	SLOT_FLAGS(s) &= ~(SLOT_READY | SLOT_POISONED);
	SLOT_STACK(&m->core.slots[m->core.nr_free++]) = idx;
	return MMK_OK;
}

static size_t core_available(const struct mmk_manager *m)
{
	return m->core.nr_free;
}

static void core_close(struct mmk_manager *m)
{
	struct mmk_static_storage *st = m->core.storage;

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
