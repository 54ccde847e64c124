// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libmmk front end: argument checks common to every backend, the guard
 * structs, the accessors, and the error strings.  Everything that depends
 * on the backend goes through m->ops.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

/* The static storage reserves room for the manager. */
_Static_assert(sizeof(struct mmk_manager) <=
	       sizeof(((struct mmk_static_storage *)0)->manager.bytes),
	       "struct mmk_manager does not fit struct mmk_static_storage");

#define STR_(x) #x
#define STR(x) STR_(x)

const char *mmk_version(void)
{
	return STR(MMK_VERSION_MAJOR) "." STR(MMK_VERSION_MINOR) "." STR(MMK_VERSION_PATCH);
}

static const struct {
	const char *name;
	const char *text;
} errors[] = {
	[MMK_OK]		 = { "MMK_OK", "success" },
	[MMK_E_NO_FREE_SLOTS]	 = { "MMK_E_NO_FREE_SLOTS", "no free slots (pool full)" },
	[MMK_E_BAD_TOKEN]	 = { "MMK_E_BAD_TOKEN", "bad token (malformed, foreign or stale)" },
	[MMK_E_NOT_ALLOCATED]	 = { "MMK_E_NOT_ALLOCATED", "message not allocated (freed)" },
	[MMK_E_ALREADY_BORROWED] = { "MMK_E_ALREADY_BORROWED",
				     "message already borrowed (incompatible guard held)" },
	[MMK_E_BORROW_ACTIVE]	 = { "MMK_E_BORROW_ACTIVE", "borrow active (free while a guard is held)" },
	[MMK_E_QUEUE_OWNED]	 = { "MMK_E_QUEUE_OWNED", "token owned by a queue" },
	[MMK_E_POISONED]	 = { "MMK_E_POISONED", "message poisoned (its writer died)" },
	[MMK_E_TOO_LARGE]	 = { "MMK_E_TOO_LARGE", "payload larger than the slot" },
	[MMK_E_INVALID]		 = { "MMK_E_INVALID", "invalid argument, flag or field" },
	[MMK_E_TYPE_MISMATCH]	 = { "MMK_E_TYPE_MISMATCH", "payload type id mismatch" },
	[MMK_E_LIMIT]		 = { "MMK_E_LIMIT", "limit reached" },
	[MMK_E_SYSTEM]		 = { "MMK_E_SYSTEM", "system error (see errno)" },
	[MMK_E_QUEUE_FULL]	 = { "MMK_E_QUEUE_FULL", "queue full (push refused by its policy)" },
	[MMK_E_QUEUE_EMPTY]	 = { "MMK_E_QUEUE_EMPTY", "queue empty (nothing to pop or peek)" },
};

const char *mmk_strerror(enum mmk_error err)
{
	if ((unsigned int)err < sizeof(errors) / sizeof(errors[0]))
		return errors[err].text;
	return "unknown error";
}

const char *mmk_error_name(enum mmk_error err)
{
	if ((unsigned int)err < sizeof(errors) / sizeof(errors[0]))
		return errors[err].name;
	return "MMK_E_UNKNOWN";
}

void mmk_close(struct mmk_manager *m)
{
	if (m)
		m->ops->close(m);
}

enum mmk_backend mmk_backend(const struct mmk_manager *m)
{
	return m->backend;
}

int mmk_fd(const struct mmk_manager *m)
{
	return m->backend == MMK_BACKEND_KERNEL ? m->kern.fd : -1;
}

size_t mmk_capacity(const struct mmk_manager *m)
{
	return m->capacity;
}

size_t mmk_available(const struct mmk_manager *m)
{
	return m->ops->available(m);
}

enum mmk_memory_class mmk_memory_class(const struct mmk_manager *m, unsigned int *device)
{
	if (device)
		*device = m->memory_device;
	return (enum mmk_memory_class)m->memory_class;
}

size_t mmk_payload_max(const struct mmk_manager *m)
{
	return m->payload_max;
}

uint64_t mmk_payload_type(const struct mmk_manager *m)
{
	return m->payload_type;
}

enum mmk_error mmk_store(struct mmk_manager *m, const struct mmk_header *header,
			 const void *payload, size_t payload_size, uint64_t *token)
{
	if (token)
		*token = MMK_TOKEN_INVALID;
	if (!m || !token || (!payload && payload_size))
		return MMK_E_INVALID;
	if (payload_size > m->payload_max)
		return MMK_E_TOO_LARGE;
	return m->ops->store(m, header, payload, (uint32_t)payload_size, token);
}

enum mmk_error mmk_free(struct mmk_manager *m, uint64_t token)
{
	if (!m)
		return MMK_E_INVALID;
	return m->ops->free(m, token);
}

/* Take a guard of any kind; fills the common fields of the guard structs. */
static enum mmk_error acquire(struct mmk_manager *m, uint64_t token, enum guard_kind kind,
			      bool wait, uint64_t timeout_ns, struct mmk_message **msg,
			      struct mmk_manager **owner, void **window)
{
	enum mmk_error err;

	*msg = NULL;
	*owner = NULL;
	if (window)
		*window = NULL;
	if (!m)
		return MMK_E_INVALID;
	err = m->ops->acquire(m, token, kind, wait, timeout_ns, msg, window);
	if (err == MMK_OK)
		*owner = m;
	else
		*msg = NULL;
	return err;
}

static enum mmk_error read_guard(struct mmk_manager *m, uint64_t token, bool wait,
				 uint64_t timeout_ns, struct mmk_read_guard *g)
{
	struct mmk_message *msg;

	if (!g)
		return MMK_E_INVALID;
	g->token = token;
	enum mmk_error err = acquire(m, token, GUARD_READ, wait, timeout_ns, &msg,
				     &g->owner, NULL);
	g->msg = msg;
	return err;
}

enum mmk_error mmk_read(struct mmk_manager *m, uint64_t token, struct mmk_read_guard *g)
{
	return read_guard(m, token, false, 0, g);
}

enum mmk_error mmk_read_wait(struct mmk_manager *m, uint64_t token, uint64_t timeout_ns,
			     struct mmk_read_guard *g)
{
	return read_guard(m, token, true, timeout_ns, g);
}

static enum mmk_error header_guard(struct mmk_manager *m, uint64_t token, bool wait,
				   uint64_t timeout_ns, struct mmk_header_guard *g)
{
	struct mmk_message *msg;

	if (!g)
		return MMK_E_INVALID;
	g->token = token;
	enum mmk_error err = acquire(m, token, GUARD_HEADER, wait, timeout_ns, &msg,
				     &g->owner, NULL);
	g->msg = msg;
	return err;
}

enum mmk_error mmk_peek_header(struct mmk_manager *m, uint64_t token,
			       struct mmk_header_guard *g)
{
	return header_guard(m, token, false, 0, g);
}

enum mmk_error mmk_peek_header_wait(struct mmk_manager *m, uint64_t token,
				    uint64_t timeout_ns, struct mmk_header_guard *g)
{
	return header_guard(m, token, true, timeout_ns, g);
}

static enum mmk_error write_guard(struct mmk_manager *m, uint64_t token, bool wait,
				  uint64_t timeout_ns, struct mmk_write_guard *g)
{
	if (!g)
		return MMK_E_INVALID;
	g->token = token;
	return acquire(m, token, GUARD_WRITE, wait, timeout_ns, &g->msg, &g->owner,
		       &g->window);
}

enum mmk_error mmk_read_mut(struct mmk_manager *m, uint64_t token, struct mmk_write_guard *g)
{
	return write_guard(m, token, false, 0, g);
}

enum mmk_error mmk_read_mut_wait(struct mmk_manager *m, uint64_t token, uint64_t timeout_ns,
				 struct mmk_write_guard *g)
{
	return write_guard(m, token, true, timeout_ns, g);
}

static enum mmk_error release_shared(struct mmk_manager **owner, uint64_t token)
{
	enum mmk_error err;

	if (!*owner)
		return MMK_E_INVALID;
	err = (*owner)->ops->release_shared(*owner, token);
	if (err == MMK_OK)
		*owner = NULL;
	return err;
}

enum mmk_error mmk_read_release(struct mmk_read_guard *g)
{
	enum mmk_error err;

	if (!g)
		return MMK_E_INVALID;
	err = release_shared(&g->owner, g->token);
	if (err == MMK_OK)
		g->msg = NULL;
	return err;
}

enum mmk_error mmk_header_release(struct mmk_header_guard *g)
{
	enum mmk_error err;

	if (!g)
		return MMK_E_INVALID;
	err = release_shared(&g->owner, g->token);
	if (err == MMK_OK)
		g->msg = NULL;
	return err;
}

/* Mark a write guard not held. */
void mmk_write_guard_clear(struct mmk_write_guard *g)
{
	g->owner = NULL;
	g->msg = NULL;
	g->window = NULL;
}

/* Publish (release) or drop (cancel) a write guard; cleared if that worked. */
static enum mmk_error write_guard_end(struct mmk_write_guard *g, bool cancel)
{
	const struct mmk_ops *ops;
	enum mmk_error err;

	if (!g || !g->owner || !g->msg)
		return MMK_E_INVALID;
	ops = g->owner->ops;
	err = (cancel ? ops->cancel_write : ops->release_write)(g->owner, g->token, g->msg,
								 g->window);
	if (err == MMK_OK)
		mmk_write_guard_clear(g);
	return err;
}

enum mmk_error mmk_write_release(struct mmk_write_guard *g)
{
	return write_guard_end(g, false);
}

enum mmk_error mmk_loan(struct mmk_manager *m, struct mmk_write_guard *g)
{
	enum mmk_error err;

	if (!g)
		return MMK_E_INVALID;
	mmk_write_guard_clear(g);
	g->token = MMK_TOKEN_INVALID;
	if (!m)
		return MMK_E_INVALID;
	err = m->ops->loan(m, &g->token, &g->msg, &g->window);
	if (err == MMK_OK) {
		g->owner = m;
	} else {
		mmk_write_guard_clear(g);
		g->token = MMK_TOKEN_INVALID;
	}
	return err;
}

enum mmk_error mmk_write_cancel(struct mmk_write_guard *g)
{
	return write_guard_end(g, true);
}

/* ---- queues ------------------------------------------------------------------ */

/* A queue name: NULL or "" (anonymous), or shorter than MMK_NAME_MAX. */
static bool name_ok(const char *name)
{
	return !name || strlen(name) < MMK_NAME_MAX;
}

enum mmk_error mmk_queue_create(struct mmk_manager *m, const struct mmk_queue_attr *a,
				struct mmk_queue **out)
{
	if (out)
		*out = NULL;
	if (!m || !a || !out || !name_ok(a->name))
		return MMK_E_INVALID;
	/* The kernel's checks of struct mmk_queue_open. */
	if ((unsigned int)a->policy > MMK_POLICY_QOS || !a->cap_items ||
	    a->cap_items > MMK_QUEUE_ITEMS_MAX || a->soft_items > a->cap_items ||
	    a->soft_bytes > a->cap_bytes)
		return MMK_E_INVALID;
	return m->ops->queue_open(m, a, a->name, out);
}

enum mmk_error mmk_queue_open(struct mmk_manager *m, const char *name, struct mmk_queue **out)
{
	if (out)
		*out = NULL;
	if (!m || !name || !*name || !out || !name_ok(name))
		return MMK_E_INVALID;
	return m->ops->queue_open(m, NULL, name, out);
}

void mmk_queue_close(struct mmk_queue *q)
{
	if (q && q->open)
		q->m->ops->queue_close(q);
}

int mmk_queue_fd(const struct mmk_queue *q)
{
	return q->fd;
}

static bool queue_ok(const struct mmk_queue *q)
{
	return q && q->open;
}

/* Check the queues of a push (open, distinct, of one manager) and run it. */
static enum mmk_error push(struct push_req *r, struct mmk_push_outcome *out)
{
	struct mmk_push_outcome dummy;
	struct mmk_manager *m;
	enum mmk_error err;

	r->out = out ? out : &dummy;
	*r->out = (struct mmk_push_outcome){ 0 };
	if (!r->qs || !r->n || r->n > MMK_PUSH_MAX_QUEUES || !queue_ok(r->qs[0]))
		return MMK_E_INVALID;
	m = r->qs[0]->m;
	for (size_t i = 0; i < r->n; i++) {
		if (!queue_ok(r->qs[i]) || r->qs[i]->m != m)
			return MMK_E_INVALID;
		for (size_t j = 0; j < i; j++)
			if (r->qs[j] == r->qs[i] || (r->qs[j]->cq && r->qs[j]->cq == r->qs[i]->cq))
				return MMK_E_INVALID;
	}
	err = m->ops->push(m, r);
	if (err)
		*r->out = (struct mmk_push_outcome){ 0 };
	return err;
}

enum mmk_error mmk_queue_try_push_many(struct mmk_queue *const *qs, size_t n, uint64_t token,
				       struct mmk_push_outcome *out)
{
	struct push_req r = { .qs = qs, .n = n, .kind = PUSH_TOKEN, .token = token };

	return push(&r, out);
}

enum mmk_error mmk_queue_try_push(struct mmk_queue *q, uint64_t token, struct mmk_push_outcome *out)
{
	return mmk_queue_try_push_many(&q, 1, token, out);
}

enum mmk_error mmk_queue_push_wait(struct mmk_queue *q, uint64_t token, uint64_t timeout_ns,
				   struct mmk_push_outcome *out)
{
	struct push_req r = { .qs = &q, .n = 1, .kind = PUSH_TOKEN, .token = token,
			      .wait = true, .timeout_ns = timeout_ns };

	return push(&r, out);
}

static enum mmk_error store_push(struct mmk_queue *q, const struct mmk_header *header,
				 const void *payload, size_t payload_size, uint64_t *token,
				 bool wait, uint64_t timeout_ns, struct mmk_push_outcome *out)
{
	struct push_req r = { .qs = &q, .n = 1, .kind = PUSH_STORE, .token = MMK_TOKEN_INVALID,
			      .header = header, .payload = payload, .wait = wait,
			      .timeout_ns = timeout_ns };
	enum mmk_error err;

	if (token)
		*token = MMK_TOKEN_INVALID;
	if (out)
		*out = (struct mmk_push_outcome){ 0 };
	if (!queue_ok(q) || (!payload && payload_size))
		return MMK_E_INVALID;
	if (payload_size > q->m->payload_max)
		return MMK_E_TOO_LARGE;
	r.size = (uint32_t)payload_size;
	err = push(&r, out);
	if (err == MMK_OK && token)
		*token = r.token;
	return err;
}

enum mmk_error mmk_queue_store_push(struct mmk_queue *q, const struct mmk_header *header,
				    const void *payload, size_t payload_size, uint64_t *token,
				    struct mmk_push_outcome *out)
{
	return store_push(q, header, payload, payload_size, token, false, 0, out);
}

static enum mmk_error commit_push(struct mmk_queue *q, struct mmk_write_guard *g, bool wait,
				  uint64_t timeout_ns, struct mmk_push_outcome *out)
{
	struct push_req r = { .qs = &q, .n = 1, .kind = PUSH_COMMIT, .wait = wait,
			      .timeout_ns = timeout_ns };
	enum mmk_error err;

	if (out)
		*out = (struct mmk_push_outcome){ 0 };
	if (!queue_ok(q) || !g || !g->owner || !g->msg || g->owner != q->m)
		return MMK_E_INVALID;
	r.token = g->token;
	r.msg = g->msg;
	r.window = g->window;
	err = push(&r, out);
	if (err == MMK_OK)
		mmk_write_guard_clear(g);
	return err;
}

enum mmk_error mmk_queue_commit_push(struct mmk_queue *q, struct mmk_write_guard *g,
				     struct mmk_push_outcome *out)
{
	return commit_push(q, g, false, 0, out);
}

/* Pop up to @max; the guards' common fields are left to the caller. */
static enum mmk_error pop(struct mmk_queue *q, bool write, bool wait, uint64_t timeout_ns,
			  struct popped *p, size_t max, size_t *count)
{
	*count = 0;
	if (!queue_ok(q))
		return MMK_E_INVALID;
	return q->m->ops->pop(q, write, wait, timeout_ns, p, max, count);
}

static void read_guard_set(struct mmk_read_guard *g, struct mmk_manager *m, const struct popped *p)
{
	g->msg = p->msg;
	g->token = p->token;
	g->owner = m;
}

static enum mmk_error pop_read(struct mmk_queue *q, bool wait, uint64_t timeout_ns,
			       struct mmk_read_guard *g)
{
	struct popped p;
	enum mmk_error err;
	size_t n;

	if (!g)
		return MMK_E_INVALID;
	*g = (struct mmk_read_guard){ .token = MMK_TOKEN_INVALID };
	err = pop(q, false, wait, timeout_ns, &p, 1, &n);
	if (err == MMK_OK)
		read_guard_set(g, q->m, &p);
	return err;
}

enum mmk_error mmk_queue_try_pop(struct mmk_queue *q, struct mmk_read_guard *g)
{
	return pop_read(q, false, 0, g);
}

enum mmk_error mmk_queue_pop_wait(struct mmk_queue *q, uint64_t timeout_ns,
				  struct mmk_read_guard *g)
{
	return pop_read(q, true, timeout_ns, g);
}

enum mmk_error mmk_queue_try_pop_write(struct mmk_queue *q, struct mmk_write_guard *g)
{
	struct popped p;
	enum mmk_error err;
	size_t n;

	if (!g)
		return MMK_E_INVALID;
	mmk_write_guard_clear(g);
	g->token = MMK_TOKEN_INVALID;
	err = pop(q, true, false, 0, &p, 1, &n);
	if (err == MMK_OK) {
		g->msg = p.msg;
		g->token = p.token;
		g->window = p.window;
		g->owner = q->m;
	}
	return err;
}

/* Messages one pop may take at once (kernel: its batch chunk). */
#define POP_CHUNK	256

enum mmk_error mmk_queue_try_pop_batch(struct mmk_queue *q, struct mmk_read_guard *gs, size_t max,
				       size_t *count)
{
	struct popped p[POP_CHUNK];
	enum mmk_error err;
	size_t n, i;

	if (count)
		*count = 0;
	if (!gs || !count || !max)
		return MMK_E_INVALID;
	for (i = 0; i < max; i++)
		gs[i] = (struct mmk_read_guard){ .token = MMK_TOKEN_INVALID };
	err = pop(q, false, false, 0, p, max < POP_CHUNK ? max : POP_CHUNK, &n);
	for (i = 0; i < n; i++)
		read_guard_set(&gs[i], q->m, &p[i]);
	*count = n;
	return err;
}

enum mmk_error mmk_queue_try_peek_at(struct mmk_queue *q, size_t index, struct mmk_queue_entry *e)
{
	enum mmk_error err;

	if (!e)
		return MMK_E_INVALID;
	*e = (struct mmk_queue_entry){ .token = MMK_TOKEN_INVALID };
	if (!queue_ok(q))
		return MMK_E_INVALID;
	err = q->m->ops->peek(q, index, e);
	if (err)
		*e = (struct mmk_queue_entry){ .token = MMK_TOKEN_INVALID };
	return err;
}

enum mmk_error mmk_queue_try_peek(struct mmk_queue *q, struct mmk_queue_entry *e)
{
	return mmk_queue_try_peek_at(q, 0, e);
}

enum mmk_error mmk_queue_stats(struct mmk_queue *q, struct mmk_queue_stats *st)
{
	if (!queue_ok(q) || !st)
		return MMK_E_INVALID;
	memset(st, 0, sizeof(*st));
	return q->m->ops->queue_stats(q, st);
}

enum mmk_error mmk_queue_occupancy(struct mmk_queue *q, struct mmk_occupancy *o)
{
	struct mmk_queue_stats st;
	enum mmk_error err;

	if (!o)
		return MMK_E_INVALID;
	err = mmk_queue_stats(q, &st);
	if (err == MMK_OK)
		*o = st.occupancy;
	return err;
}

/* The queue of a batch op: open and of the batch's manager. */
static enum mmk_error batch_queue(const struct mmk_manager *m, const struct mmk_batch_op *op)
{
	return queue_ok(op->queue) && op->queue->m == m ? MMK_OK : MMK_E_INVALID;
}

/* One op of a batch, through the same paths as the single functions. */
enum mmk_error mmk_batch_one(struct mmk_manager *m, struct mmk_batch_op *op)
{
	struct mmk_manager *owner;
	struct mmk_message *msg;
	enum mmk_error err;

	op->msg = NULL;
	if (op->op >= MMK_OP_PUSH && op->op <= MMK_OP_POP_WRITE) {
		op->outcome = (struct mmk_push_outcome){ 0 };
		if (op->op == MMK_OP_STORE_PUSH || op->op == MMK_OP_POP)
			op->token = MMK_TOKEN_INVALID;
		err = batch_queue(m, op);
		if (err)
			return err;
	}
	switch (op->op) {
	case MMK_OP_STORE:
		return mmk_store(m, op->header, op->payload, op->payload_size, &op->token);
	case MMK_OP_READ:
	case MMK_OP_PEEK_HEADER:
		err = acquire(m, op->token, op->op == MMK_OP_READ ? GUARD_READ : GUARD_HEADER,
			      false, 0, &msg, &owner, NULL);
		op->msg = msg;
		return err;
	case MMK_OP_READ_RELEASE:
		owner = m;
		return release_shared(&owner, op->token);
	case MMK_OP_FREE:
		return mmk_free(m, op->token);
	case MMK_OP_PUSH: {
		struct push_req r = { .qs = &op->queue, .n = 1, .kind = PUSH_TOKEN,
				      .token = op->token, .wait = op->wait,
				      .timeout_ns = op->timeout_ns };

		return push(&r, &op->outcome);
	}
	case MMK_OP_STORE_PUSH:
		return store_push(op->queue, op->header, op->payload, op->payload_size, &op->token,
				  op->wait, op->timeout_ns, &op->outcome);
	case MMK_OP_COMMIT_PUSH:
		return commit_push(op->queue, op->guard, op->wait, op->timeout_ns, &op->outcome);
	case MMK_OP_POP: {
		struct mmk_read_guard g;

		err = pop_read(op->queue, op->wait, op->timeout_ns, &g);
		op->token = g.token;
		op->msg = g.msg;
		return err;
	}
	case MMK_OP_POP_WRITE:
		return mmk_queue_try_pop_write(op->queue, op->guard);
	case MMK_OP_LOAN:
		if (!op->guard)
			return MMK_E_INVALID;
		err = mmk_loan(m, op->guard);
		op->token = op->guard->token;
		return err;
	case MMK_OP_WRITE_RELEASE:
	case MMK_OP_WRITE_CANCEL:
		/* A guard of this batch's manager only, as the kernel's session. */
		if (!op->guard || op->guard->owner != m)
			return MMK_E_INVALID;
		return write_guard_end(op->guard, op->op == MMK_OP_WRITE_CANCEL);
	}
	return MMK_E_INVALID;
}

enum mmk_error mmk_batch_one_by_one(struct mmk_manager *m, struct mmk_batch_op *ops, size_t n,
				    size_t *done)
{
	enum mmk_error err = MMK_OK;
	size_t i;

	for (i = 0; i < n && err == MMK_OK; i++) {
		err = mmk_batch_one(m, &ops[i]);
		ops[i].result = err;
		*done += err == MMK_OK;
	}
	return err;
}

enum mmk_error mmk_batch(struct mmk_manager *m, struct mmk_batch_op *ops, size_t n,
			 size_t *done)
{
	enum mmk_error err;
	size_t ok = 0;

	if (done)
		*done = 0;
	if (!m || (!ops && n))
		return MMK_E_INVALID;
	if (m->ops->batch)
		err = m->ops->batch(m, ops, n, &ok);
	else
		err = mmk_batch_one_by_one(m, ops, n, &ok);
	if (done)
		*done = ok;
	return err;
}
