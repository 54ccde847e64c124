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

static const char *const tracefs_dirs[] = {
	"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
};

static long long sysc_id = -1;	/* the tracepoint's id; -2: none */

/* The id of tracepoint @event ("group/name"), or -2. */
static long long read_id(const char *event)
{
	char path[256];
	long long id;
	size_t i;
	FILE *f;

	for (i = 0; i < sizeof(tracefs_dirs) / sizeof(tracefs_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/events/%s/id", tracefs_dirs[i], event);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%lld", &id) != 1)
			id = -2;
		fclose(f);
		return id;
	}
	return -2;
}

long long bench_tp_id(const char *event)
{
	long long id = read_id(event);

	if (id < 0 && !mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		id = read_id(event);
	return id;
}

int bench_counter_open(uint32_t type, uint64_t config)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.type = type;
	a.size = sizeof(a);
	a.config = config;
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

bool bench_sysc_init(void)
{
	int fd;

	if (sysc_id != -1)
		return sysc_id >= 0;
	sysc_id = bench_tp_id("raw_syscalls/sys_enter");
	if (sysc_id < 0)
		return false;
	/*
	 * Kept open for the life of the process: the tracepoint then stays
	 * enabled, and the counters each run opens and closes never switch it
	 * on or off again.  Each switch patches kernel text (a jump label),
	 * and under qemu TCG a CPU that runs the site while it is patched has
	 * been seen to spin there for good (soft lockups in
	 * syscall_trace_enter), after a few hundred switches.
	 */
	fd = bench_sysc_open();
	if (fd < 0) {
		sysc_id = -2;
		return false;
	}
	return true;
}

/* What reading the counter adds to what it reads: its own system call. */
static uint64_t sysc_self;

int bench_sysc_open(void)
{
	uint64_t v0, v1;
	int fd;

	if (sysc_id < 0) {
		errno = ENOSYS;
		return -1;
	}
	fd = bench_counter_open(PERF_TYPE_TRACEPOINT, (uint64_t)sysc_id);
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
