// SPDX-License-Identifier: GPL-2.0
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
#include <errno.h>
#include <fcntl.h>
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
 * Write guard: a window on page-aligned pools, else the slot's buffer.  The
 * guard's private pointer is the slot's record when a window is mapped.
 */
static enum mmk_error kern_write_view(struct mmk_manager *m, const struct mmk_guard *g,
				      struct mmk_message **msg, void **window)
{
	struct kern_slot *ks = &m->kern.slots[g->offset / m->slot_size];
	struct mmk_message *buf;

	*window = NULL;
	if (m->flags & MMK_POOL_PAGE_ALIGNED) {
		void *w = mmap(NULL, m->slot_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			       m->kern.fd, (off_t)MMK_WINDOW_OFFSET(m->kern.pool_id, g->offset));

		if (w != MAP_FAILED) {
			ks->window = w;
			ks->window_pid = getpid();
			*msg = w;
			*window = ks;
			return MMK_OK;
		}
		/* No window (e.g. a descriptor opened read-only): write back. */
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
	/*
	 * The whole slot, not just the current payload: a writer that grows
	 * the message must commit the slot's old bytes where it wrote none
	 * (as the heap and static backends do), never stale buffer memory.
	 */
	memcpy(buf, m->kern.map + g->offset, sizeof(struct mmk_header) + m->payload_max);
	buf->header.payload_size = g->payload_size;
	*msg = buf;
	return MMK_OK;
}

/* Unmap a slot's window, in the process that mapped it only (the window is
 * not inherited across fork, and the address may mean something else in a
 * child). */
static void kern_window_unmap(struct mmk_manager *m, struct kern_slot *ks)
{
	if (ks->window && ks->window_pid == getpid())
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
		return kern_write_view(m, &g, msg, window);
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
	struct mmk_release r = { .token = token };

	if (!window) {
		r.flags = MMK_RELEASE_COMMIT;
		r.payload_size = msg->header.payload_size;
		r.header = (uintptr_t)&msg->header;
		r.payload = (uintptr_t)msg->payload;
	}
	/* Through a window, the kernel checks the header found in the slot. */
	if (ioctl(m->kern.fd, MMK_IOC_WRITE_RELEASE, &r))
		return errno == ENOENT ? MMK_E_INVALID : from_errno(errno);
	if (window)
		kern_window_unmap(m, window);
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

	/*
	 * A window left mapped would hold the session open: unmap them all,
	 * so that closing the descriptor ends the session (and poisons what
	 * its write guards held) when no one else shares it.
	 */
	for (i = 0; i < m->capacity; i++) {
		kern_window_unmap(m, &m->kern.slots[i]);
		free(m->kern.slots[i].buf);
	}
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
	.free		= kern_free,
	.available	= kern_available,
	.close		= kern_close,
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

enum mmk_error mmk_kernel_attach(const char *name, uint64_t payload_type,
				 struct mmk_manager **out)
{
	struct mmk_pool_attach a;
	int fd;

	if (out)
		*out = NULL;
	if (!name || !out || !*name || strlen(name) >= MMK_NAME_MAX)
		return MMK_E_INVALID;

	memset(&a, 0, sizeof(a));
	a.payload_type = payload_type;
	strcpy(a.name, name);
	fd = open_device();
	if (fd < 0)
		return MMK_E_SYSTEM;
	if (ioctl(fd, MMK_IOC_ATTACH, &a))
		return fail(fd, from_errno(errno));
	return kern_manager(fd, out);
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
