// SPDX-License-Identifier: GPL-2.0
/*
 * System calls counted, not estimated: a perf counter on the tracepoint
 * raw_syscalls:sys_enter, for the calling thread only, counts every system
 * call it enters, whoever makes it (the contender, libc, libmmk or any
 * other library).  Reading the counter is a system call too: the count of
 * one read is measured when the counter is opened and taken off.
 *
 * Needs a kernel with perf events and syscall tracepoints, and tracefs
 * (found at /sys/kernel/tracing or /sys/kernel/debug/tracing, or mounted
 * at /sys/kernel/tracing); without them nothing is counted.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

static const char *const id_files[] = {
	"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
	"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
};

static long long sysc_id = -1;	/* the tracepoint's id; -2: none */

static long long read_id(void)
{
	long long id;
	size_t i;
	FILE *f;

	for (i = 0; i < sizeof(id_files) / sizeof(id_files[0]); i++) {
		f = fopen(id_files[i], "r");
		if (!f)
			continue;
		if (fscanf(f, "%lld", &id) != 1)
			id = -2;
		fclose(f);
		return id;
	}
	return -2;
}

bool bench_sysc_init(void)
{
	int fd;

	if (sysc_id != -1)
		return sysc_id >= 0;
	sysc_id = read_id();
	if (sysc_id < 0 && !mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		sysc_id = read_id();
	if (sysc_id < 0)
		return false;
	fd = bench_sysc_open();
	if (fd < 0) {
		sysc_id = -2;
		return false;
	}
	close(fd);
	return true;
}

/* What reading the counter adds to what it reads: its own system call. */
static uint64_t sysc_self;

int bench_sysc_open(void)
{
	struct perf_event_attr a;
	uint64_t v0, v1;
	int fd;

	if (sysc_id < 0) {
		errno = ENOSYS;
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (uint64_t)sysc_id;
	a.sample_period = 0;
	fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (read(fd, &v0, sizeof(v0)) != sizeof(v0) || read(fd, &v1, sizeof(v1)) != sizeof(v1)) {
		close(fd);
		return -1;
	}
	sysc_self = v1 - v0;
	return fd;
}

uint64_t bench_sysc_read(int fd)
{
	uint64_t v = 0;

	if (fd < 0 || read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

double bench_sysc_per(uint64_t c0, uint64_t c1, uint64_t n)
{
	if (!n || c1 < c0 + sysc_self)
		return -1;
	return (double)(c1 - c0 - sysc_self) / (double)n;
}
