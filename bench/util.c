// SPDX-License-Identifier: GPL-2.0
/* Buffers and whole-message reads and writes on descriptors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

unsigned int bench_depth(size_t size)
{
	size_t d = ((size_t)16 << 20) / (size ? size : 1);

	return d > 64 ? 64 : d < 2 ? 2 : (unsigned int)d;
}

void *bench_alloc(size_t size)
{
	void *p;

	if (posix_memalign(&p, 4096, size ? size : 1))
		return NULL;
	memset(p, 0, size);
	return p;
}

int bench_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			if (got == 0)
				return 0;
			errno = EPIPE;
			return -1;
		}
		got += (size_t)r;
	}
	return 1;
}

int bench_write_full(int fd, const void *buf, size_t n)
{
	size_t put = 0;

	while (put < n) {
		ssize_t r = write(fd, (const char *)buf + put, n - put);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		put += (size_t)r;
	}
	return 0;
}

void bench_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
