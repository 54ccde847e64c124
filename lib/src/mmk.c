// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libmmk front end: argument checks common to every backend, the guard
 * structs, the accessors, and the error strings.  Everything that depends
 * on the backend goes through m->ops.
 */
#include <errno.h>
#include <stddef.h>

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
static void write_guard_clear(struct mmk_write_guard *g)
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
		write_guard_clear(g);
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
	write_guard_clear(g);
	g->token = MMK_TOKEN_INVALID;
	if (!m)
		return MMK_E_INVALID;
	err = m->ops->loan(m, &g->token, &g->msg, &g->window);
	if (err == MMK_OK) {
		g->owner = m;
	} else {
		write_guard_clear(g);
		g->token = MMK_TOKEN_INVALID;
	}
	return err;
}

enum mmk_error mmk_write_cancel(struct mmk_write_guard *g)
{
	return write_guard_end(g, true);
}

/* One op of a batch, through the same paths as the single functions. */
enum mmk_error mmk_batch_one(struct mmk_manager *m, struct mmk_batch_op *op)
{
	struct mmk_manager *owner;
	struct mmk_message *msg;
	enum mmk_error err;

	op->msg = NULL;
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
