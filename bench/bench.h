/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmk benchmarks: what every contender and driver shares.
 *
 * A contender is a "link": a way to move fixed-size messages from one
 * process to another (pipe, unix socket, POSIX mq, shared-memory ring, mmk
 * pool).  Every link does the same work per message: the sender fills
 * every payload byte with a pattern derived from a sequence number
 * (bench_fill), the receiver reads every byte into a checksum and checks it
 * against the sequence number it expects (bench_check) before it frees or
 * discards the message.  A mismatch is counted and makes the run fail.
 */
#ifndef MMK_BENCH_H
#define MMK_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- pattern and checksum (pattern.c) ------------------------------------ */

/* Payload sizes must be a multiple of this (every size benchmarked is). */
#define BENCH_WORD	8

/* Fill @size bytes at @buf (8-byte aligned) with the pattern of @seq. */
void bench_fill(void *buf, size_t size, uint64_t seq);

/*
 * Read every byte of @buf into a checksum and compare it with the one the
 * pattern of @seq has.  Returns true if they match; a mismatch is also
 * counted in bench_mismatches.
 */
bool bench_check(const void *buf, size_t size, uint64_t seq);

/* Mismatches seen by bench_check() in this process. */
extern uint64_t bench_mismatches;

/*
 * Fault injection for the behaviour test: bench_fill() flips one byte of
 * the message with this sequence number (never, by default), so that the
 * test can see a corrupted message being caught.
 */
extern uint64_t bench_corrupt_seq;

/* ---- time and statistics (stats.c) --------------------------------------- */

/* CLOCK_MONOTONIC in ns: the same clock in every process. */
uint64_t bench_now_ns(void);

/* Sort @n samples in place and return the value at quantile @q (0..1). */
uint64_t bench_quantile(uint64_t *v, size_t n, double q);

/* ---- links --------------------------------------------------------------- */

/* Directions of a link: A to B (the stream, or requests), B to A (replies). */
enum bench_dir { DIR_AB = 0, DIR_BA = 1, DIR_COUNT = 2 };

struct bench_link;

/**
 * struct bench_link_ops - one contender
 * @name:     short name, used in the CSV ("pipe", "mmk-zc", ...)
 * @peer:     true for the alternatives mmk is compared with
 * @pingpong: true if the link can run the round-trip test
 * @one_call: a round trip takes exactly one system call per side per hop
 *            (the smoke test checks it where system calls can be counted)
 * @available: NULL, or false when the link cannot run here (what it needs
 *            is missing): the smoke test skips it, the benchmark leaves it
 *            out unless asked for it by name
 * @isolated: every measurement runs in a process of its own, both sides
 *            forked from it (a runtime that a process may set up once
 *            only, and that fork does not carry over)
 * @open:     before fork: create both directions for messages of l->size
 *            bytes with up to l->depth messages in flight; 0 or -1 (errno)
 * @keep:     after fork, in each process: keep the sending end of @tx and
 *            the receiving end of @rx (DIR_COUNT: none), close the rest
 * @send:     fill message @seq and send it on @dir; 0 or -1
 * @recv:     receive the next message on @dir, check it is message @seq
 *            and let it go; 1 received, 0 the sender ended the stream, -1
 *            error
 * @end:      sender: no more messages on @dir (flush what is buffered, then
 *            let the receiver see the end); 0 or -1
 * @close:    release what open() made, in each process
 */
struct bench_link_ops {
	const char *name;
	bool peer;
	bool pingpong;
	bool one_call;
	bool isolated;
	bool (*available)(void);
	int (*open)(struct bench_link *l);
	void (*keep)(struct bench_link *l, enum bench_dir tx, enum bench_dir rx);
	int (*send)(struct bench_link *l, enum bench_dir dir, uint64_t seq);
	int (*recv)(struct bench_link *l, enum bench_dir dir, uint64_t seq);
	int (*end)(struct bench_link *l, enum bench_dir dir);
	void (*close)(struct bench_link *l);
};

/**
 * struct bench_link - a link being measured
 * @ops:   the contender
 * @size:  payload bytes of every message
 * @depth: messages that may be in flight in one direction (ring slots,
 *         pool slots, queue length): the same for every contender
 * @priv:  the contender's state
 */
struct bench_link {
	const struct bench_link_ops *ops;
	size_t size;
	unsigned int depth;
	void *priv;
};

extern const struct bench_link_ops link_pipe, link_unix, link_mq, link_shm;
extern const struct bench_link_ops link_mmk_copy, link_mmk_zc, link_mmk_batch;
extern const struct bench_link_ops link_mmk_queue, link_mmk_queue_batch, link_mmk_queue_zc;
#ifdef HAVE_ICEORYX
extern const struct bench_link_ops link_iceoryx;
#endif

/* Messages in flight for a payload size: at most 64, and at most 16 MiB. */
unsigned int bench_depth(size_t size);

/* ---- small helpers (util.c) ------------------------------------------------ */

/* Page-aligned zeroed buffer of @size bytes, or NULL. */
void *bench_alloc(size_t size);

/* read()/write() exactly @n bytes, retrying on EINTR and short counts.
 * read_full returns 1 when done, 0 at end of file before any byte, -1 on
 * error or a partial message; write_full returns 0 or -1. */
int bench_read_full(int fd, void *buf, size_t n);
int bench_write_full(int fd, const void *buf, size_t n);

/* Close *fd if it is open and mark it closed. */
void bench_close_fd(int *fd);

/* ---- drivers (run.c) -------------------------------------------------------- */

/**
 * struct bench_limits - how long one measurement runs
 * @budget_ns: stop sending after this long (once @min_msgs were sent)
 * @min_msgs:  send at least this many
 * @max_msgs:  send at most this many (the exact count in the smoke test)
 * @count_from: 0, or count the system calls of each side (bench_sysc_*)
 *            from this message (round trip) to the last; then
 *            @max_msgs must be the exact count
 */
struct bench_limits {
	uint64_t budget_ns;
	uint64_t min_msgs;
	uint64_t max_msgs;
	uint64_t count_from;
};

/**
 * struct bench_result - what one measurement found
 * @msgs:       messages (throughput) or round trips (latency) measured
 * @ns:         throughput: time for @msgs messages, in the receiver
 * @median_ns:  latency: median round trip
 * @p99_ns:     latency: 99th percentile round trip
 * @mismatches: messages whose checksum did not match, in both processes
 * @sys_a:      with bench_limits.count_from: system calls A made per
 *              message (round trip) counted; else -1
 * @sys_b:      the same, for B
 */
struct bench_result {
	uint64_t msgs;
	uint64_t ns;
	uint64_t median_ns;
	uint64_t p99_ns;
	uint64_t mismatches;
	double sys_a;
	double sys_b;
};

/* Where A and B run: wherever the scheduler puts them, A on CPU 0 and B
 * on CPU 1, or both on CPU 0. */
enum bench_affinity { AFFINITY_NONE, AFFINITY_SPLIT, AFFINITY_SAME };
extern enum bench_affinity bench_affinity;

/*
 * Stream messages A to B for the limits; B measures from its first
 * messages (the warm-up) to its last.  @seq0 is the first sequence number.
 * Returns 0, or -1 if anything failed (an error was printed).
 */
int bench_throughput(const struct bench_link_ops *ops, size_t size,
		     const struct bench_limits *lim, uint64_t seq0, struct bench_result *r);

/* Round trips not counted at the start of a latency run (first touch of
 * buffers, rings and pool slots), unless the run has no more than these. */
#define BENCH_LAT_WARMUP	3

/* Round trips A -> B -> A: see docs/PERFORMANCE.md for exactly what one is. */
int bench_latency(const struct bench_link_ops *ops, size_t size,
		  const struct bench_limits *lim, uint64_t seq0, struct bench_result *r);

/* ---- system calls counted (sysc.c) ----------------------------------------- */

/* The id of tracepoint @event ("group/name"), or a negative value. */
long long bench_tp_id(const char *event);
/* A perf counter of the calling thread (PERF_TYPE_*, config), or -1. */
int bench_counter_open(uint32_t type, uint64_t config);
/* Find the counter (before fork); false if this kernel cannot count. */
bool bench_sysc_init(void);
/* A counter of the calling thread's system calls, or -1. */
int bench_sysc_open(void);
/* Its value now (0 if @fd is -1). */
uint64_t bench_sysc_read(int fd);
/* System calls per message between two reads for @n messages, the reads'
 * own taken off; -1 if nothing was counted. */
double bench_sysc_per(uint64_t c0, uint64_t c1, uint64_t n);

/* ---- crash robustness (crash.c) ------------------------------------------------ */

/* The report of mmk_bench --crash: @self is this program (for exec), @p
 * the table's line prefix.  Returns 1 if a round failed. */
int bench_crash(const char *self, unsigned int rounds, const char *p);
/* The consumer a round starts: argv is SYSTEM NAME EXPECT FD. */
int bench_crash_consumer(int argc, char **argv);

/* ---- floors (floors.c) -------------------------------------------------------- */

/* ns per message of bench_fill + bench_check alone, in one process. */
double bench_memory_floor_ns(size_t size, uint64_t budget_ns, uint64_t *iters);

/* ns per bench_now_ns() call: what timing a round trip adds to it. */
double bench_clock_ns(uint64_t budget_ns, uint64_t *iters);

/* ns per ioctl on /dev/mmk that does nothing (an unknown command), or a
 * negative value if /dev/mmk cannot be opened. */
double bench_syscall_floor_ns(uint64_t budget_ns, uint64_t *iters);

#endif /* MMK_BENCH_H */
