// SPDX-License-Identifier: GPL-2.0
/*
 * Floors: what no message-passing scheme can beat, measured in the same
 * run.  Memory floor: filling a message and checking it, in one process,
 * with no IPC at all (what every contender does per message on top of
 * moving it).  Syscall floor: the cheapest ioctl on /dev/mmk, an unknown
 * command that the driver refuses with ENOTTY (what every mmk operation
 * pays at least).  And the cost of reading the clock, which every timed
 * round trip includes once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/mmk.h>

#include "bench.h"

/* A command number of mmk's that does not exist. */
#define MMK_IOC_NOTHING		_IO(MMK_IOC_MAGIC, 0xff)

double bench_memory_floor_ns(size_t size, uint64_t budget_ns, uint64_t *iters)
{
	void *buf = bench_alloc(size);
	uint64_t t0, t, n = 0, i, batch;

	if (!buf)
		return -1;
	/* One round first: the buffer's pages are touched before timing. */
	bench_fill(buf, size, 0);
	bench_check(buf, size, 0);
	/* Read the clock only every ~256 KiB: it may be slow (a guest's). */
	batch = ((size_t)256 << 10) / size + 1;
	t0 = bench_now_ns();
	do {
		for (i = 0; i < batch; i++, n++) {
			bench_fill(buf, size, n);
			bench_check(buf, size, n);
		}
	} while ((t = bench_now_ns()) - t0 < budget_ns);
	free(buf);
	*iters = n;
	return (double)(t - t0) / (double)n;
}

double bench_clock_ns(uint64_t budget_ns, uint64_t *iters)
{
	uint64_t t0 = bench_now_ns(), t, n = 0;

	do {
		n++;
	} while ((t = bench_now_ns()) - t0 < budget_ns);
	*iters = n;
	return (double)(t - t0) / (double)n;
}

double bench_syscall_floor_ns(uint64_t budget_ns, uint64_t *iters)
{
	int fd = open("/dev/mmk", O_RDWR | O_CLOEXEC);
	uint64_t t0, t, n = 0, i;

	if (fd < 0)
		return -1;
	if (ioctl(fd, MMK_IOC_NOTHING) != -1 || errno != ENOTTY) {
		close(fd);
		errno = EPROTO;
		return -1;
	}
	t0 = bench_now_ns();
	do {
		for (i = 0; i < 256; i++)
			(void)ioctl(fd, MMK_IOC_NOTHING);
		n += 256;
	} while ((t = bench_now_ns()) - t0 < budget_ns);
	close(fd);
	*iters = n;
	return (double)(t - t0) / (double)n;
}
