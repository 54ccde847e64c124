// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The kernel backend: a thin wrapper over one /dev/mmk session.
 *
 * Every operation is one ioctl; reads point into the session's read-only
 * mapping of the pool, so nothing is copied and no other system call is
 * made.  Write guards use the pool's writable window when it has one
 * (MMK_POOL_PAGE_ALIGNED), else a write-back buffer (see mmk.h).  All
 * state of the manager is set at construction and never changes, except
 * the per-slot write state (struct kern_slot): slots[i] is touched only by
 * the holder of the write guard on slot i, which the kernel makes
 * exclusive, so no lock is needed and the backend is thread-safe.
 */
#define _GNU_SOURCE
/*
 * Window offsets (MMK_WINDOW_OFFSET) need more than 32 bits: a 32-bit
 * build must map them with a 64-bit off_t (mmap64), whatever the
 * application was compiled with.
 */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/mmk.h>

#include "internal.h"

/* struct mmk_header is the kernel's struct mmk_msg_header. */
#define SAME_FIELD(f) \
	_Static_assert(offsetof(struct mmk_header, f) == offsetof(struct mmk_msg_header, f) && \
		       sizeof(((struct mmk_header *)0)->f) == \
		       sizeof(((struct mmk_msg_header *)0)->f), "mmk_header." #f)
_Static_assert(sizeof(struct mmk_header) == sizeof(struct mmk_msg_header), "mmk_header size");
SAME_FIELD(trace_id);
SAME_FIELD(sequence);
SAME_FIELD(created_tick);
SAME_FIELD(deadline_ns);
SAME_FIELD(payload_size);
SAME_FIELD(flags);
SAME_FIELD(qos);
SAME_FIELD(memory_class);
SAME_FIELD(memory_device);
_Static_assert(offsetof(struct mmk_header, reserved0) ==
	       offsetof(struct mmk_msg_header, __reserved0), "mmk_header.reserved0");
_Static_assert(offsetof(struct mmk_header, reserved1) ==
	       offsetof(struct mmk_msg_header, __reserved1), "mmk_header.reserved1");

/* errno of a pool ioctl to enum mmk_error, as the table in <linux/mmk.h>. */
static enum mmk_error from_errno(int e)
{
	switch (e) {
	case ENOSPC:
		return MMK_E_NO_FREE_SLOTS;
	case EBADSLT:
		return MMK_E_BAD_TOKEN;
	case ENODATA:
		return MMK_E_NOT_ALLOCATED;
	case EBUSY:
		return MMK_E_ALREADY_BORROWED;
	case ETXTBSY:
		return MMK_E_BORROW_ACTIVE;
	case EOWNERDEAD:
		return MMK_E_POISONED;
	case EMSGSIZE:
		return MMK_E_TOO_LARGE;
	case EINVAL:
	case EOPNOTSUPP:
	case E2BIG:
		return MMK_E_INVALID;
	case EPROTOTYPE:
		return MMK_E_TYPE_MISMATCH;
	case EDQUOT:
		return MMK_E_LIMIT;
	case EINPROGRESS:
		return MMK_E_QUEUE_OWNED;
	case ENOBUFS:
		return MMK_E_QUEUE_FULL;
	case EAGAIN:
		return MMK_E_QUEUE_EMPTY;
	default:
		errno = e;
		return MMK_E_SYSTEM;
	}
}

static enum mmk_error kern_store(struct mmk_manager *m, const struct mmk_header *header,
				 const void *payload, uint32_t size, uint64_t *token)
{
	static const struct mmk_header zero;
	struct mmk_store st = {
		.header = (uintptr_t)(header ? header : &zero),
		.payload = (uintptr_t)payload,
		.payload_size = size,
	};

	if (ioctl(m->kern.fd, MMK_IOC_STORE, &st))
		return from_errno(errno);
	*token = st.token;
	return MMK_OK;
}

/* Give up a write guard taken by this library without changing the message. */
static void kern_write_abandon(struct mmk_manager *m, uint64_t token)
{
	struct mmk_release r = { .token = token };
	int e = errno;

	(void)ioctl(m->kern.fd, MMK_IOC_WRITE_RELEASE, &r);
	errno = e;
}

/*
 * This process's id, without a system call per use: glibc no longer caches
 * getpid(), and a loan asks for it every time.  A fork() child updates it
 * (pthread_atfork); a child made without fork()'s handlers (a raw clone,
 * _Fork) would see its parent's id, and must not use windows it did not
 * map itself.
 */
static pid_t kern_pid;
static pthread_once_t kern_pid_once = PTHREAD_ONCE_INIT;

static void kern_pid_child(void)
{
	kern_pid = getpid();
}

static void kern_pid_init(void)
{
	kern_pid = getpid();
	(void)pthread_atfork(NULL, NULL, kern_pid_child);
}

static pid_t kern_self(void)
{
	(void)pthread_once(&kern_pid_once, kern_pid_init);
	return kern_pid;
}

/*
 * The slot's writable window in this process: the pool's arena window, or
 * the slot's own, mapped on first use and kept until mmk_close: the kernel
 * lets a slot's window work only under its write guard and zaps its pages
 * at every release, so keeping it costs nothing and saves an mmap and a
 * munmap per guard.  NULL if the pool has no windows or they cannot be
 * mapped (e.g. a descriptor opened read-only).  A forked child does not
 * inherit windows (VM_DONTCOPY), hence the pid.
 */
static void *kern_window(struct mmk_manager *m, struct kern_slot *ks, uint64_t offset)
{
	pid_t self = kern_self();
	void *w;

	if (!(m->flags & MMK_POOL_PAGE_ALIGNED))
		return NULL;
	/*
	 * One window on the whole arena first: one mapping for every slot, and
	 * a batch of commits zaps it in one pass.  A module without arena
	 * windows refuses it: then one window per slot.
	 */
	if (m->kern.awin_pid != self) {
		m->kern.awin = NULL;
		m->kern.awin_tried = false;
	}
	if (!m->kern.awin && !m->kern.awin_tried) {
		m->kern.awin_tried = true;
		m->kern.awin_pid = self;
		w = mmap(NULL, m->kern.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->kern.fd,
			 (off_t)MMK_WINDOW_OFFSET(0));
		if (w != MAP_FAILED)
			m->kern.awin = w;
	}
	if (m->kern.awin)
		return m->kern.awin + offset;
	if (ks->window && ks->window_pid == self)
		return ks->window;
	w = mmap(NULL, m->slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->kern.fd,
		 (off_t)MMK_WINDOW_OFFSET(offset));
	if (w == MAP_FAILED)
		return NULL;
	ks->window = w;
	ks->window_pid = kern_self();
	return w;
}

/*
 * Write guard or loan: the slot's window on page-aligned pools, else the
 * slot's buffer.  The guard's private pointer is the slot's record when
 * the window is used.  A loan starts empty; a guard from read_mut starts
 * with a copy of the message.  On failure the guard is given up.
 */
static enum mmk_error kern_write_view(struct mmk_manager *m, const struct mmk_guard *g,
				      bool loan, struct mmk_message **msg, void **window)
{
	struct kern_slot *ks = &m->kern.slots[g->offset / m->slot_size];
	struct mmk_message *buf;
	void *w;

	*window = NULL;
	w = kern_window(m, ks, g->offset);
	if (w) {
		*msg = w;
		*window = ks;
		return MMK_OK;
	}

	buf = ks->buf;
	if (!buf) {
		void *p;
		int ret = posix_memalign(&p, MMK_PAYLOAD_ALIGN,
					 sizeof(struct mmk_header) + m->payload_max);

		if (ret) {
			kern_write_abandon(m, g->token);
			errno = ret;
			return MMK_E_SYSTEM;
		}
		buf = p;
		ks->buf = buf;
	}
	if (loan) {
		memset(&buf->header, 0, sizeof(buf->header));
	} else {
		/*
		 * The whole slot, not just the current payload: a writer that
		 * grows the message must commit the slot's old bytes where it
		 * wrote none (as the heap and static backends do), never stale
		 * buffer memory.
		 */
		memcpy(buf, m->kern.map + g->offset, sizeof(struct mmk_header) + m->payload_max);
		buf->header.payload_size = g->payload_size;
	}
	*msg = buf;
	return MMK_OK;
}

/* Unmap a slot's window, in the process that mapped it only (the window is
 * not inherited across fork, and the address may mean something else in a
 * child). */
static void kern_window_unmap(struct mmk_manager *m, struct kern_slot *ks)
{
	if (ks->window && ks->window_pid == kern_self())
		munmap(ks->window, m->slot_size);
	ks->window = NULL;
}

static enum mmk_error kern_acquire(struct mmk_manager *m, uint64_t token, enum guard_kind kind,
				   bool wait, uint64_t timeout_ns, struct mmk_message **msg,
				   void **window)
{
	static const unsigned long cmd[] = {
		[GUARD_READ]	= MMK_IOC_READ,
		[GUARD_HEADER]	= MMK_IOC_PEEK_HEADER,
		[GUARD_WRITE]	= MMK_IOC_READ_MUT,
	};
	struct mmk_guard g = {
		.token = token,
		.flags = wait ? MMK_GUARD_WAIT : 0,
		.timeout_ns = wait ? timeout_ns : 0,
	};

	if (ioctl(m->kern.fd, cmd[kind], &g))
		return from_errno(errno);
	if (kind == GUARD_WRITE)
		return kern_write_view(m, &g, false, msg, window);
	*msg = (struct mmk_message *)(uintptr_t)(m->kern.map + g.offset);
	return MMK_OK;
}

static enum mmk_error kern_release_shared(struct mmk_manager *m, uint64_t token)
{
	struct mmk_release r = { .token = token };

	if (ioctl(m->kern.fd, MMK_IOC_READ_RELEASE, &r))
		/* ENOENT: this session holds no such guard (a stale guard copy). */
		return errno == ENOENT ? MMK_E_INVALID : from_errno(errno);
	return MMK_OK;
}

static enum mmk_error kern_release_write(struct mmk_manager *m, uint64_t token,
					 struct mmk_message *msg, void *window)
{
	struct mmk_release r = { .token = token, .flags = MMK_RELEASE_COMMIT };

	/*
	 * Through a window, COMMIT with nothing else: the kernel checks the
	 * header found in the slot.  The window stays mapped for the next
	 * guard; the kernel has zapped its pages.
	 */
	if (!window) {
		r.payload_size = msg->header.payload_size;
		r.header = (uintptr_t)&msg->header;
		r.payload = (uintptr_t)msg->payload;
	}
	if (ioctl(m->kern.fd, MMK_IOC_WRITE_RELEASE, &r))
		return errno == ENOENT ? MMK_E_INVALID : from_errno(errno);
	return MMK_OK;
}

/* No COMMIT: a loan is cancelled, a window's writes are checked and kept. */
static enum mmk_error kern_cancel_write(struct mmk_manager *m, uint64_t token,
					struct mmk_message *msg, void *window)
{
	struct mmk_release r = { .token = token };

	(void)msg;
	(void)window;
	if (ioctl(m->kern.fd, MMK_IOC_WRITE_RELEASE, &r))
		return errno == ENOENT ? MMK_E_INVALID : from_errno(errno);
	return MMK_OK;
}

static enum mmk_error kern_loan(struct mmk_manager *m, uint64_t *token, struct mmk_message **msg,
				void **window)
{
	struct mmk_loan l = { 0 };
	struct mmk_guard g = { 0 };
	enum mmk_error err;

	if (ioctl(m->kern.fd, MMK_IOC_LOAN, &l))
		return from_errno(errno);
	g.token = l.token;
	g.offset = l.offset;
	err = kern_write_view(m, &g, true, msg, window);
	if (err == MMK_OK)
		*token = l.token;
	return err;
}

/* ---- queues ------------------------------------------------------------------ */

_Static_assert(MMK_PUSH_MAX_QUEUES == 8 && MMK_DROP_REASONS == 4, "queue limits");
_Static_assert(MMK_POLICY_REJECT == MMK_QUEUE_REJECT && MMK_POLICY_DROP_NEWEST == MMK_QUEUE_DROP_NEWEST &&
	       MMK_POLICY_DROP_OLDEST == MMK_QUEUE_DROP_OLDEST && MMK_POLICY_BLOCK == MMK_QUEUE_BLOCK &&
	       MMK_POLICY_QOS == MMK_QUEUE_QOS, "queue policies");
_Static_assert(MMK_WATERMARK_BELOW_SOFT == MMK_WM_BELOW_SOFT &&
	       MMK_WATERMARK_BETWEEN == MMK_WM_BETWEEN && MMK_WATERMARK_AT_HARD == MMK_WM_AT_HARD,
	       "watermarks");

/* Link a new handle on descriptor @fd into the manager's list. */
static enum mmk_error kern_queue_handle(struct mmk_manager *m, int fd, struct mmk_queue **out)
{
	struct mmk_queue *q = calloc(1, sizeof(*q));

	if (!q) {
		int e = errno;

		close(fd);
		errno = e;
		return MMK_E_SYSTEM;
	}
	q->m = m;
	q->fd = fd;
	q->open = true;
	pthread_mutex_lock(&m->kern.qlock);
	q->next = m->kern.queues;
	if (q->next)
		q->next->prev = q;
	m->kern.queues = q;
	pthread_mutex_unlock(&m->kern.qlock);
	*out = q;
	return MMK_OK;
}

static enum mmk_error kern_queue_open(struct mmk_manager *m, const struct mmk_queue_attr *a,
				      const char *name, struct mmk_queue **out)
{
	struct mmk_queue_open o = { .flags = MMK_QUEUE_CLOEXEC };

	if (a) {
		o.flags |= MMK_QUEUE_CREATE;
		o.policy = a->policy;
		o.cap_items = a->cap_items;
		o.soft_items = a->soft_items;
		o.cap_bytes = a->cap_bytes;
		o.soft_bytes = a->soft_bytes;
	}
	if (name)
		strcpy(o.name, name);
	if (ioctl(m->kern.fd, MMK_IOC_QUEUE_OPEN, &o))
		return from_errno(errno);
	return kern_queue_handle(m, o.fd, out);
}

/* Unlink and free a handle; the caller holds qlock. */
static void kern_queue_drop(struct mmk_queue *q)
{
	struct mmk_manager *m = q->m;

	if (q->prev)
		q->prev->next = q->next;
	else
		m->kern.queues = q->next;
	if (q->next)
		q->next->prev = q->prev;
	close(q->fd);
	free(q);
}

static void kern_queue_close(struct mmk_queue *q)
{
	struct mmk_manager *m = q->m;

	pthread_mutex_lock(&m->kern.qlock);
	kern_queue_drop(q);
	pthread_mutex_unlock(&m->kern.qlock);
}

/* The uAPI fields of a push: one struct for MMK_IOC_PUSH and batch entries. */
static void kern_push_fields(const struct mmk_manager *m, const struct push_req *r,
			     __u32 *flags, __u64 *header, __u64 *payload, __u32 *size)
{
	static const struct mmk_header zero;

	*flags = r->wait ? MMK_PUSH_WAIT : 0;
	*header = *payload = 0;
	*size = 0;
	if (r->kind == PUSH_STORE) {
		*flags |= MMK_PUSH_STORE;
		*header = (uintptr_t)(r->header ? r->header : &zero);
		*payload = (uintptr_t)r->payload;
		*size = r->size;
	} else if (r->kind == PUSH_COMMIT) {
		*flags |= MMK_PUSH_COMMIT;
		/* Through a window: commit in place, all zero. */
		if (!r->window) {
			*header = (uintptr_t)&r->msg->header;
			*payload = (uintptr_t)r->msg->payload;
			*size = r->msg->header.payload_size;
		}
	}
	(void)m;
}

static enum mmk_error kern_push(struct mmk_manager *m, struct push_req *r)
{
	struct mmk_push p = {
		.token = r->kind == PUSH_STORE ? 0 : r->token,
		.nr_queues = (uint32_t)r->n,
		.timeout_ns = r->wait ? r->timeout_ns : 0,
	};

	kern_push_fields(m, r, &p.flags, &p.header, &p.payload, &p.payload_size);
	for (size_t i = 0; i < r->n; i++)
		p.queue_fds[i] = r->qs[i]->fd;
	if (ioctl(m->kern.fd, MMK_IOC_PUSH, &p))
		/* ENOENT on a commit: no such write guard held. */
		return errno == ENOENT ? MMK_E_INVALID : from_errno(errno);
	if (r->kind == PUSH_STORE)
		r->token = p.token;
	r->out->dropped = p.dropped;
	r->out->evicted = p.evicted;
	return MMK_OK;
}

/* A popped message as a guard: in the mapping, or a write view. */
static enum mmk_error kern_popped(struct mmk_manager *m, bool write, const struct mmk_popped *e,
				  struct popped *p)
{
	struct mmk_guard g = { .token = e->token, .offset = e->offset,
			       .payload_size = e->payload_size };

	p->token = e->token;
	p->window = NULL;
	if (write)
		return kern_write_view(m, &g, false, &p->msg, &p->window);
	p->msg = (struct mmk_message *)(uintptr_t)(m->kern.map + e->offset);
	return MMK_OK;
}

static enum mmk_error kern_pop(struct mmk_queue *q, bool write, bool wait, uint64_t timeout_ns,
			       struct popped *out, size_t max, size_t *count)
{
	struct mmk_manager *m = q->m;
	struct mmk_popped e[256];
	struct mmk_pop p = {
		.queue_fd = q->fd,
		.flags = (wait ? MMK_POP_WAIT : 0) | (write ? MMK_POP_WRITE : 0),
		.timeout_ns = wait ? timeout_ns : 0,
		.entries = (uintptr_t)e,
		.max = (uint32_t)(max < 256 ? max : 256),
	};
	enum mmk_error err;

	if (ioctl(m->kern.fd, MMK_IOC_POP, &p))
		return from_errno(errno);
	for (uint32_t i = 0; i < p.count; i++) {
		err = kern_popped(m, write, &e[i], &out[i]);
		if (err)	/* write pops take one: nothing else to give back */
			return err;
	}
	*count = p.count;
	return MMK_OK;
}

static enum mmk_error kern_peek(struct mmk_queue *q, size_t index, struct mmk_queue_entry *e)
{
	struct mmk_queue_peek p = { .queue_fd = q->fd, .index = (uint32_t)index };

	if (index > UINT32_MAX)
		return MMK_E_QUEUE_EMPTY;
	if (ioctl(q->m->kern.fd, MMK_IOC_QUEUE_PEEK, &p))
		return from_errno(errno);
	e->token = p.token;
	e->msg = (const struct mmk_message *)(uintptr_t)(q->m->kern.map + p.offset);
	e->payload_size = p.payload_size;
	e->qos = p.qos;
	e->flags = p.msg_flags;
	e->deadline_ns = p.deadline_ns;
	return MMK_OK;
}

static enum mmk_error kern_queue_stats(struct mmk_queue *q, struct mmk_queue_stats *st)
{
	struct mmk_queue_info i;

	if (ioctl(q->fd, MMK_IOC_QUEUE_INFO, &i))
		return from_errno(errno);
	st->policy = (enum mmk_queue_policy)i.policy;
	st->cap_items = i.cap_items;
	st->soft_items = i.soft_items;
	st->cap_bytes = i.cap_bytes;
	st->soft_bytes = i.soft_bytes;
	st->occupancy.items = i.items;
	st->occupancy.bytes = i.bytes;
	st->occupancy.watermark = (enum mmk_watermark)i.watermark;
	st->high_items = i.high_items;
	st->pushes = i.pushes;
	st->pops = i.pops;
	st->rejected = i.rejected;
	memcpy(st->drops, i.drops, sizeof(st->drops));
	memcpy(st->name, i.name, sizeof(st->name));
	st->name[sizeof(st->name) - 1] = 0;
	return MMK_OK;
}

/* ---- batches ------------------------------------------------------------------ */

/* Ops per MMK_IOC_BATCH: 256 * 64 bytes of stack. */
#define KERN_BATCH_CHUNK	256

/* Translate one op for the kernel; the front end's checks of mmk_store. */
static enum mmk_error kern_batch_entry(const struct mmk_manager *m, const struct mmk_batch_op *op,
				       struct mmk_batch_entry *e)
{
	static const struct mmk_header zero;
	static const uint32_t code[] = {
		[MMK_OP_STORE]		= MMK_BATCH_STORE,
		[MMK_OP_READ]		= MMK_BATCH_READ,
		[MMK_OP_PEEK_HEADER]	= MMK_BATCH_PEEK_HEADER,
		[MMK_OP_READ_RELEASE]	= MMK_BATCH_READ_RELEASE,
		[MMK_OP_FREE]		= MMK_BATCH_FREE,
		[MMK_OP_PUSH]		= MMK_BATCH_PUSH,
		[MMK_OP_STORE_PUSH]	= MMK_BATCH_STORE_PUSH,
		[MMK_OP_COMMIT_PUSH]	= MMK_BATCH_COMMIT_PUSH,
		[MMK_OP_POP]		= MMK_BATCH_POP,
		[MMK_OP_POP_WRITE]	= MMK_BATCH_POP,
		[MMK_OP_LOAN]		= MMK_BATCH_LOAN,
		[MMK_OP_WRITE_RELEASE]	= MMK_BATCH_WRITE_RELEASE,
		[MMK_OP_WRITE_CANCEL]	= MMK_BATCH_WRITE_RELEASE,
	};

	memset(e, 0, sizeof(*e));
	if ((unsigned int)op->op >= sizeof(code) / sizeof(code[0]))
		return MMK_E_INVALID;
	e->op = code[op->op];
	if (op->op == MMK_OP_LOAN)
		return op->guard ? MMK_OK : MMK_E_INVALID;
	if (op->op == MMK_OP_WRITE_RELEASE || op->op == MMK_OP_WRITE_CANCEL) {
		const struct mmk_write_guard *g = op->guard;

		if (!g || !g->owner || !g->msg || g->owner != m)
			return MMK_E_INVALID;
		e->token = g->token;
		/* As kern_release_write and kern_cancel_write. */
		if (op->op == MMK_OP_WRITE_RELEASE) {
			e->flags = MMK_RELEASE_COMMIT;
			if (!g->window) {
				e->header = (uintptr_t)&g->msg->header;
				e->payload = (uintptr_t)g->msg->payload;
				e->payload_size = g->msg->header.payload_size;
			}
		}
		return MMK_OK;
	}
	if (op->op >= MMK_OP_PUSH) {
		struct mmk_write_guard *g = op->guard;
		struct push_req r = { .kind = PUSH_TOKEN, .token = op->token, .wait = op->wait,
				      .header = op->header, .payload = op->payload,
				      .size = (uint32_t)op->payload_size };

		if (!op->queue || !op->queue->open || op->queue->m != m)
			return MMK_E_INVALID;
		e->queue_fd = op->queue->fd;
		if (op->op == MMK_OP_POP || op->op == MMK_OP_POP_WRITE) {
			if (op->op == MMK_OP_POP_WRITE && !g)
				return MMK_E_INVALID;
			e->flags = (op->wait && op->op == MMK_OP_POP ? MMK_POP_WAIT : 0) |
				   (op->op == MMK_OP_POP_WRITE ? MMK_POP_WRITE : 0);
			e->timeout_ns = e->flags & MMK_POP_WAIT ? op->timeout_ns : 0;
			return MMK_OK;
		}
		if (op->op == MMK_OP_STORE_PUSH) {
			r.kind = PUSH_STORE;
			if (!op->payload && op->payload_size)
				return MMK_E_INVALID;
			if (op->payload_size > m->payload_max)
				return MMK_E_TOO_LARGE;
		} else if (op->op == MMK_OP_COMMIT_PUSH) {
			if (!g || !g->owner || !g->msg || g->owner != m)
				return MMK_E_INVALID;
			r.kind = PUSH_COMMIT;
			r.token = g->token;
			r.msg = g->msg;
			r.window = g->window;
		}
		kern_push_fields(m, &r, &e->flags, &e->header, &e->payload, &e->payload_size);
		/* The op says STORE or COMMIT; only MMK_PUSH_WAIT is a flag. */
		e->flags &= MMK_PUSH_WAIT;
		e->token = r.kind == PUSH_STORE ? 0 : r.token;
		e->timeout_ns = op->wait ? op->timeout_ns : 0;
		return MMK_OK;
	}
	if (op->op != MMK_OP_STORE) {
		e->token = op->token;
		return MMK_OK;
	}
	if (!op->payload && op->payload_size)
		return MMK_E_INVALID;
	if (op->payload_size > m->payload_max)
		return MMK_E_TOO_LARGE;
	e->header = (uintptr_t)(op->header ? op->header : &zero);
	e->payload = (uintptr_t)op->payload;
	e->payload_size = (uint32_t)op->payload_size;
	return MMK_OK;
}

/* Copy one entry's outcome back into the caller's op. */
static enum mmk_error kern_batch_result(struct mmk_manager *m, struct mmk_batch_op *op,
					const struct mmk_batch_entry *e)
{
	op->msg = NULL;
	if (op->op == MMK_OP_STORE || op->op == MMK_OP_STORE_PUSH || op->op == MMK_OP_POP ||
	    op->op == MMK_OP_LOAN)
		op->token = e->result ? MMK_TOKEN_INVALID : e->token;
	if (op->op == MMK_OP_LOAN && e->result) {
		mmk_write_guard_clear(op->guard);
		op->guard->token = MMK_TOKEN_INVALID;
	}
	if (op->op >= MMK_OP_PUSH && op->op <= MMK_OP_COMMIT_PUSH) {
		op->outcome.dropped = e->outcome & MMK_PUSH_DROPPED ? 1 : 0;
		op->outcome.evicted = e->outcome & MMK_OUTCOME_EVICTED;
	}
	if (e->result) {
		int err = -e->result;

		/* ENOENT: no such guard held, as for mmk_read_release. */
		op->result = err == ENOENT ? MMK_E_INVALID : from_errno(err);
		return op->result;
	}
	if (op->op == MMK_OP_READ || op->op == MMK_OP_PEEK_HEADER || op->op == MMK_OP_POP)
		op->msg = (const struct mmk_message *)(uintptr_t)(m->kern.map + e->offset);
	op->result = MMK_OK;
	if (op->op == MMK_OP_COMMIT_PUSH || op->op == MMK_OP_WRITE_RELEASE ||
	    op->op == MMK_OP_WRITE_CANCEL) {
		mmk_write_guard_clear(op->guard);
	} else if (op->op == MMK_OP_POP_WRITE || op->op == MMK_OP_LOAN) {
		struct mmk_guard g = { .token = e->token, .offset = e->offset,
				       .payload_size = e->payload_size };
		struct popped p = { .token = e->token };

		/* The slot's window or buffer; on failure the guard is given back. */
		op->result = kern_write_view(m, &g, op->op == MMK_OP_LOAN, &p.msg, &p.window);
		if (op->result == MMK_OK) {
			op->guard->msg = p.msg;
			op->guard->token = p.token;
			op->guard->window = p.window;
			op->guard->owner = m;
		}
	}
	return op->result;
}

/* Does ops[cnt] use a write guard that one of ops[0 .. cnt - 1] uses? */
static bool guard_in_chunk(const struct mmk_batch_op *ops, size_t cnt)
{
	const struct mmk_write_guard *g = ops[cnt].op >= MMK_OP_COMMIT_PUSH ? ops[cnt].guard : NULL;

	if (!g || ops[cnt].op == MMK_OP_POP)
		return false;
	for (size_t k = 0; k < cnt; k++)
		if (ops[k].op >= MMK_OP_COMMIT_PUSH && ops[k].op != MMK_OP_POP && ops[k].guard == g)
			return true;
	return false;
}

/*
 * One MMK_IOC_BATCH per chunk of ops.  An op that the front end refuses
 * ends its chunk; it fails once the ops before it have run.  So does an op
 * on a write guard that an earlier op of the chunk fills or ends (a loan,
 * a write pop, then its commit-push or release): it starts the next chunk,
 * translated once the guard is what the earlier op made it.  If the
 * module allows fewer ops per batch than a chunk (EDQUOT, nothing run),
 * chunks get smaller, down to one op per call.
 */
static enum mmk_error kern_batch(struct mmk_manager *m, struct mmk_batch_op *ops, size_t n,
				 size_t *done)
{
	struct mmk_batch_entry e[KERN_BATCH_CHUNK];
	size_t i = 0, k, cnt, chunk = KERN_BATCH_CHUNK;
	enum mmk_error refused;

	*done = 0;
	while (i < n) {
		refused = MMK_OK;
		for (cnt = 0; cnt < chunk && i + cnt < n; cnt++) {
			/* A guard an earlier op fills or ends: translate it after. */
			if (guard_in_chunk(ops + i, cnt))
				break;
			refused = kern_batch_entry(m, &ops[i + cnt], &e[cnt]);
			if (refused)
				break;
		}
		if (cnt) {
			struct mmk_batch b = { .ops = (uintptr_t)e, .count = (uint32_t)cnt };

			if (ioctl(m->kern.fd, MMK_IOC_BATCH, &b)) {
				if (errno == EDQUOT && chunk > 1) {
					chunk /= 2;
					continue;
				}
				if (errno == EDQUOT)
					return mmk_batch_one_by_one(m, ops + i, n - i, done);
				return from_errno(errno);
			}
			for (k = 0; k < b.done; k++)
				kern_batch_result(m, &ops[i + k], &e[k]);
			*done += b.done;
			if (b.done < cnt)
				return kern_batch_result(m, &ops[i + b.done], &e[b.done]);
			i += cnt;
		}
		if (refused) {
			ops[i].msg = NULL;
			ops[i].outcome = (struct mmk_push_outcome){ 0 };
			if (ops[i].op == MMK_OP_STORE || ops[i].op == MMK_OP_STORE_PUSH ||
			    ops[i].op == MMK_OP_POP || ops[i].op == MMK_OP_LOAN)
				ops[i].token = MMK_TOKEN_INVALID;
			ops[i].result = refused;
			return refused;
		}
	}
	return MMK_OK;
}

static enum mmk_error kern_free(struct mmk_manager *m, uint64_t token)
{
	struct mmk_free f = { .token = token };

	if (ioctl(m->kern.fd, MMK_IOC_FREE, &f))
		return from_errno(errno);
	return MMK_OK;
}

static size_t kern_available(const struct mmk_manager *m)
{
	struct mmk_pool_info info;

	if (ioctl(m->kern.fd, MMK_IOC_POOL_INFO, &info))
		return 0;
	return info.available;
}

static void kern_close(struct mmk_manager *m)
{
	uint32_t i;

	while (m->kern.queues)
		kern_queue_drop(m->kern.queues);
	pthread_mutex_destroy(&m->kern.qlock);
	/*
	 * A window left mapped would hold the session open: unmap them all,
	 * so that closing the descriptor ends the session (and poisons what
	 * its write guards held) when no one else shares it.
	 */
	for (i = 0; i < m->capacity; i++) {
		kern_window_unmap(m, &m->kern.slots[i]);
		free(m->kern.slots[i].buf);
	}
	if (m->kern.awin && m->kern.awin_pid == kern_self())
		munmap(m->kern.awin, m->kern.map_size);
	free(m->kern.slots);
	munmap((void *)(uintptr_t)m->kern.map, m->kern.map_size);
	close(m->kern.fd);
	free(m);
}

const struct mmk_ops mmk_kernel_ops = {
	.store		= kern_store,
	.acquire	= kern_acquire,
	.release_shared	= kern_release_shared,
	.release_write	= kern_release_write,
	.cancel_write	= kern_cancel_write,
	.loan		= kern_loan,
	.batch		= kern_batch,
	.free		= kern_free,
	.available	= kern_available,
	.close		= kern_close,
	.queue_open	= kern_queue_open,
	.queue_close	= kern_queue_close,
	.push		= kern_push,
	.pop		= kern_pop,
	.peek		= kern_peek,
	.queue_stats	= kern_queue_stats,
};

/* Fail with @err, keeping errno through the cleanup. */
static enum mmk_error fail(int fd, enum mmk_error err)
{
	int e = errno;

	if (fd >= 0)
		close(fd);
	errno = e;
	return err;
}

/* Build the manager of a bound session @fd (which it then owns). */
static enum mmk_error kern_manager(int fd, struct mmk_manager **out)
{
	struct mmk_pool_info info;
	struct mmk_manager *m;
	void *map;

	if (ioctl(fd, MMK_IOC_POOL_INFO, &info)) {
		/* Not a /dev/mmk descriptor, or an unbound session. */
		if (errno == ENOTTY || errno == ENOTCONN)
			return fail(fd, MMK_E_INVALID);
		return fail(fd, MMK_E_SYSTEM);
	}
	if (info.header_size != sizeof(struct mmk_header) || !info.slot_size ||
	    info.map_size > SIZE_MAX) {
		errno = EPROTO;
		return fail(fd, MMK_E_SYSTEM);
	}

	m = calloc(1, sizeof(*m));
	if (!m)
		return fail(fd, MMK_E_SYSTEM);
	m->kern.slots = calloc(info.capacity, sizeof(*m->kern.slots));
	if (!m->kern.slots) {
		free(m);
		return fail(fd, MMK_E_SYSTEM);
	}
	map = mmap(NULL, (size_t)info.map_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		free(m->kern.slots);
		free(m);
		return fail(fd, MMK_E_SYSTEM);
	}

	m->ops = &mmk_kernel_ops;
	m->backend = MMK_BACKEND_KERNEL;
	m->capacity = info.capacity;
	m->payload_max = info.payload_size;
	m->flags = info.flags;
	m->payload_type = info.payload_type;
	m->memory_class = info.memory_class;
	m->memory_device = info.memory_device;
	m->slot_size = info.slot_size;
	m->kern.fd = fd;
	m->kern.pool_id = info.pool_id;
	m->kern.map = map;
	m->kern.map_size = (size_t)info.map_size;
	pthread_mutex_init(&m->kern.qlock, NULL);
	m->kern.queues = NULL;
	*out = m;
	return MMK_OK;
}

static int open_device(void)
{
	return open(MMK_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

enum mmk_error mmk_kernel_create(const struct mmk_config *cfg, struct mmk_manager **out)
{
	struct mmk_pool_create c;
	int fd;

	if (out)
		*out = NULL;
	if (!cfg || !out)
		return MMK_E_INVALID;
	/* Values the uAPI's narrower fields cannot carry are invalid. */
	if (cfg->memory_class > UINT8_MAX || cfg->memory_device > UINT16_MAX ||
	    (cfg->name && strlen(cfg->name) >= MMK_NAME_MAX))
		return MMK_E_INVALID;

	memset(&c, 0, sizeof(c));
	c.flags = cfg->flags;
	c.payload_size = cfg->payload_size;
	c.capacity = cfg->capacity;
	c.mode = cfg->mode;
	c.payload_type = cfg->payload_type;
	c.memory_class = (uint8_t)cfg->memory_class;
	c.memory_device = (uint16_t)cfg->memory_device;
	if (cfg->name)
		strcpy(c.name, cfg->name);

	fd = open_device();
	if (fd < 0)
		return MMK_E_SYSTEM;
	if (ioctl(fd, MMK_IOC_CREATE, &c))
		return fail(fd, from_errno(errno));
	return kern_manager(fd, out);
}

/* Attach to @name; with MMK_ATTACH_OWNER in @flags, only a pool @owner created. */
static enum mmk_error kern_attach(const char *name, uint64_t payload_type, uint32_t flags,
				  uint32_t owner, struct mmk_manager **out)
{
	struct mmk_pool_attach a;
	int fd;

	if (out)
		*out = NULL;
	if (!name || !out || !*name || strlen(name) >= MMK_NAME_MAX)
		return MMK_E_INVALID;

	memset(&a, 0, sizeof(a));
	a.flags = flags;
	a.owner_uid = owner;
	a.payload_type = payload_type;
	strcpy(a.name, name);
	fd = open_device();
	if (fd < 0)
		return MMK_E_SYSTEM;
	if (ioctl(fd, MMK_IOC_ATTACH, &a))
		return fail(fd, from_errno(errno));
	return kern_manager(fd, out);
}

enum mmk_error mmk_kernel_attach(const char *name, uint64_t payload_type,
				 struct mmk_manager **out)
{
	return kern_attach(name, payload_type, 0, 0, out);
}

enum mmk_error mmk_kernel_attach_owner(const char *name, uint64_t payload_type, uid_t owner,
				       struct mmk_manager **out)
{
	return kern_attach(name, payload_type, MMK_ATTACH_OWNER, owner, out);
}

enum mmk_error mmk_kernel_from_fd(int fd, struct mmk_manager **out)
{
	int dup;

	if (out)
		*out = NULL;
	if (fd < 0 || !out)
		return MMK_E_INVALID;
	dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return MMK_E_SYSTEM;
	return kern_manager(dup, out);
}
