/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A page whose first access stalls until the test lets it go
 * (userfaultfd): an ioctl that copies from or to it stops there, in the
 * kernel, for as long as the test wants.  The debug kernel has no
 * userfaultfd: tests skip there.
 */
#ifndef MMK_STALL_H
#define MMK_STALL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <linux/userfaultfd.h>

/*
 * Two pages: the first an ordinary one, the second (@page) stalls at its
 * first access, so that an array can end on the first and go on, stalled,
 * on the second.  0, or -errno if userfaultfd is not available.
 */
struct stall {
	int uffd;
	unsigned char *page;
	size_t len;
};

static inline int stall_open(struct stall *st)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	unsigned char *two;

	st->len = getpagesize();
	st->uffd = -1;
	st->page = NULL;
	two = mmap(NULL, 2 * st->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (two == MAP_FAILED)
		return -errno;
	two[0] = 0;		/* the first page is there */
	st->page = two + st->len;
	st->uffd = syscall(__NR_userfaultfd, O_CLOEXEC);
	if (st->uffd < 0)
		return -errno;
	reg.range.start = (uintptr_t)st->page;
	reg.range.len = st->len;
	if (ioctl(st->uffd, UFFDIO_API, &api) || ioctl(st->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	return 0;
}

/* Wait until something stalls on the page. */
static inline int stall_wait(struct stall *st, int timeout_ms)
{
	struct pollfd p = { .fd = st->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&p, 1, timeout_ms) != 1 || read(st->uffd, &msg, sizeof(msg)) != sizeof(msg))
		return -1;
	return msg.event == UFFD_EVENT_PAGEFAULT ? 0 : -1;
}

/* Let it go: the page becomes a copy of @src (a page), or zeros if NULL. */
static inline int stall_release(struct stall *st, const void *src)
{
	struct uffdio_copy copy = {
		.dst = (uintptr_t)st->page, .src = (uintptr_t)src, .len = st->len,
	};
	struct uffdio_zeropage zero = {
		.range = { .start = (uintptr_t)st->page, .len = st->len },
	};

	if (!src)
		return ioctl(st->uffd, UFFDIO_ZEROPAGE, &zero) ? -errno : 0;
	return ioctl(st->uffd, UFFDIO_COPY, &copy) ? -errno : 0;
}

/*
 * Let it go, failing: the page is unmapped and the stalled access woken,
 * so that it faults again and, in the kernel, fails with EFAULT.
 */
static inline int stall_fail(struct stall *st)
{
	struct uffdio_range range = { .start = (uintptr_t)st->page, .len = st->len };

	if (munmap(st->page, st->len))
		return -errno;
	return ioctl(st->uffd, UFFDIO_WAKE, &range) ? -errno : 0;
}

static inline void stall_close(struct stall *st)
{
	if (st->uffd >= 0)
		close(st->uffd);
	munmap(st->page - st->len, 2 * st->len);
}

#endif /* MMK_STALL_H */
