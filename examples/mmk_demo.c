// SPDX-License-Identifier: GPL-2.0
/*
 * mmk_demo - a producer and a consumer sharing one mmk pool and one queue.
 *
 * The producer creates a pool on /dev/mmk with libmmk's kernel backend
 * (mmk_kernel_create, which also maps the pool read-only) and a queue of
 * tokens in it (mmk_queue_create), then forks a consumer.  Because the
 * consumer is a fork, it shares the producer's session (the open file),
 * inherits its mapping and the queue's descriptor: it goes on using the
 * same struct mmk_manager and struct mmk_queue and opens nothing itself.
 * The pool and the queue have names only so that mmkctl can show them
 * ("mmkctl show mmk-demo-PID" lists the queue while the demo runs).
 *
 * Only tokens travel, and only through the queue, which the kernel owns: no
 * pipe.  For each message the producer makes one call (mmk_batch with one
 * MMK_OP_STORE_PUSH op, one ioctl): the kernel copies the message into a
 * free slot and pushes its token.  The queue's policy is Block: while it
 * is full, that call waits in the kernel until the consumer has popped.
 * The push gives the message to mmk: nobody frees it by hand.
 *
 * The consumer waits for a message (mmk_queue_pop_wait), takes whatever
 * else is queued (mmk_queue_try_pop_batch), and checks each message in
 * place through the mapping, without copying it out.  Popping turned the
 * queue's hold into a read guard; releasing the guard (mmk_read_release)
 * frees the message, since nothing else holds it.
 *
 * The queue's cap (half the pool) and the consumer's batch (the rest of
 * the pool, less the slot the producer stores into) keep every slot's
 * owner accounted for, so the pool never runs dry while the queue has
 * room.  With fewer than three slots it can: the store then fails with
 * MMK_E_NO_FREE_SLOTS, and the producer retries after a short sleep (there
 * is no waiting for a free slot; the queue is the flow control).
 *
 * Everything goes through <mmk/mmk.h>, except the pool's statistics at the
 * end: libmmk has no call for them, so the demo reads them with the
 * MMK_IOC_POOL_INFO ioctl of <linux/mmk.h> on the manager's descriptor
 * (mmk_fd).
 *
 *	mmk_demo [-n messages] [-s payload_size] [-c capacity]
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* <linux/mmk.h> goes first when a file uses both (see <mmk/mmk.h>). */
#include <linux/mmk.h>
#include <mmk/mmk.h>

#define DEMO_PAYLOAD_TYPE	0x6d6d6b2d64656d6fULL	/* "mmk-demo" */
#define DEMO_TRACE_ID(seq)	(0x74726163ULL << 32 | (seq))	/* "trac" + seq, seq < 2^32 */
#define DEMO_QUEUE		"demo-tokens"	/* the queue's name */
#define TIMEOUT_S		60		/* longest wait for the other side */
#define TIMEOUT_NS		((uint64_t)TIMEOUT_S * 1000000000ULL)
#define MAX_BATCH		256		/* most messages the consumer pops at once */
#define MAX_REPORTED		10		/* mismatches printed in detail */

static const char *prog = "mmk_demo";

/* Print "mmk_demo: <what>: <strerror>" for errno and exit. */
static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
	exit(EXIT_FAILURE);
}

/*
 * Print "mmk_demo: <what>: <mmk_strerror> (MMK_E_...)" for a libmmk error,
 * with errno's text for MMK_E_SYSTEM, and exit.
 */
static void __attribute__((noreturn, format(printf, 2, 3)))
die_mmk(enum mmk_error err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s (%s)", mmk_strerror(err), mmk_error_name(err));
	if (err == MMK_E_SYSTEM)
		fprintf(stderr, ": %s", strerror(saved));
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The payload of message @seq: a splitmix64 stream seeded by the sequence
 * number, so the consumer can recompute it and check every byte.
 */
static void fill_payload(unsigned char *buf, size_t size, uint64_t seq)
{
	uint64_t state = seq;

	for (size_t i = 0; i < size; i += 8) {
		uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
		size_t n = size - i < 8 ? size - i : 8;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(buf + i, &z, n);
	}
}

static uint32_t batch_flags(uint64_t seq, uint64_t count)
{
	uint32_t flags = 0;

	if (seq == 0)
		flags |= MMK_MSG_FIRST_IN_BATCH;
	if (seq == count - 1)
		flags |= MMK_MSG_LAST_IN_BATCH;
	return flags;
}

struct demo {
	struct mmk_manager *m;		/* the session; shared with the consumer */
	struct mmk_queue *q;		/* the queue; shared with the consumer */
	uint64_t count;			/* messages to send */
	uint32_t size;			/* payload bytes of each message */
	uint32_t batch;			/* most messages the consumer holds at once */
};

/* Filled in by the consumer, read by the producer once the consumer exits. */
struct consumer_result {
	uint64_t checked;
	uint64_t mismatches;
};

/* Check one message in place.  Returns true if it is what the producer sent. */
static bool check_message(const struct demo *d, const struct mmk_read_guard *g, uint64_t seq,
			  unsigned char *expect, uint64_t *reported)
{
	/* The message in the pool's read-only mapping: nothing was copied. */
	const struct mmk_header *h = &g->msg->header;
	const unsigned char *payload = g->msg->payload;
	const char *what = NULL;

	if (h->sequence != seq)
		what = "header.sequence";
	else if (h->trace_id != DEMO_TRACE_ID(seq))
		what = "header.trace_id";
	else if (h->payload_size != d->size)
		what = "payload_size";
	else if (h->flags != batch_flags(seq, d->count))
		what = "header.flags";
	else if (h->qos != MMK_QOS_BEST_EFFORT || h->memory_class != MMK_MEM_HOST)
		what = "header.qos or header.memory_class";
	else {
		fill_payload(expect, d->size, seq);
		if (memcmp(payload, expect, d->size))	/* reads the slot in place */
			what = "payload bytes";
	}
	if (!what)
		return true;
	if ((*reported)++ < MAX_REPORTED)
		fprintf(stderr, "%s: consumer: message %" PRIu64 " (token 0x%016" PRIx64
			"): wrong %s\n", prog, seq, (uint64_t)g->token, what);
	return false;
}

/*
 * The consumer: wait for a message, take every other one already queued
 * (up to d->batch), check each in place, release each.  A release frees
 * the message: the queue gave its hold to the guard, and nothing else
 * holds it.
 */
static int consume(const struct demo *d, struct consumer_result *res)
{
	struct mmk_read_guard *gs = calloc(d->batch, sizeof(*gs));
	unsigned char *expect = malloc(d->size);
	uint64_t seq = 0, reported = 0;

	if (!expect || !gs)
		die("consumer: malloc");

	while (seq < d->count) {
		size_t n = 1, more = 0;
		enum mmk_error err;

		err = mmk_queue_pop_wait(d->q, TIMEOUT_NS, &gs[0]);
		if (err == MMK_E_QUEUE_EMPTY)
			fail("consumer: no message for %d s after message %" PRIu64
			     ": is the producer alive?", TIMEOUT_S, seq);
		if (err)
			die_mmk(err, "consumer: mmk_queue_pop_wait after message %" PRIu64, seq);
		if (d->batch > 1) {
			err = mmk_queue_try_pop_batch(d->q, gs + 1, d->batch - 1, &more);
			if (err && err != MMK_E_QUEUE_EMPTY)
				die_mmk(err, "consumer: mmk_queue_try_pop_batch after message %"
					PRIu64, seq);
			n += more;
		}

		for (size_t i = 0; i < n; i++, seq++) {
			if (seq >= d->count || !check_message(d, &gs[i], seq, expect, &reported))
				res->mismatches++;
			res->checked++;
			err = mmk_read_release(&gs[i]);
			if (err)
				die_mmk(err, "consumer: mmk_read_release of message %" PRIu64, seq);
		}
	}

	free(expect);
	free(gs);
	return res->mismatches ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * The producer: store and push every message, one call each.  The call
 * waits in the kernel while the queue is full (Block policy); a pool with
 * no free slot (possible with fewer than 3 slots) is retried after 100 us.
 * Returns how many times the pool was full.
 */
static uint64_t produce(const struct demo *d)
{
	unsigned char *payload = malloc(d->size);
	uint64_t full = 0;

	if (!payload)
		die("malloc");

	for (uint64_t seq = 0; seq < d->count; seq++) {
		struct mmk_header h = {
			.trace_id = DEMO_TRACE_ID(seq),
			.sequence = seq,
			.created_tick = now_ns(),
			.flags = batch_flags(seq, d->count),
			.qos = MMK_QOS_BEST_EFFORT,
			/* payload_size and memory_class are set by mmk. */
		};
		struct mmk_batch_op op = {
			.op = MMK_OP_STORE_PUSH,	/* mmk_queue_store_push, ... */
			.queue = d->q,
			.header = &h,
			.payload = payload,
			.payload_size = d->size,
			.wait = true,			/* ... waiting for room */
			.timeout_ns = TIMEOUT_NS,
		};
		enum mmk_error err;

		fill_payload(payload, d->size, seq);
		while ((err = mmk_batch(d->m, &op, 1, NULL)) == MMK_E_NO_FREE_SLOTS) {
			full++;
			nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
		}
		if (err == MMK_E_QUEUE_FULL)
			fail("the queue stayed full for %d s at message %" PRIu64
			     ": is the consumer alive?", TIMEOUT_S, seq);
		if (err)
			die_mmk(err, "store and push of message %" PRIu64, seq);
	}
	free(payload);
	return full;
}

static uint32_t parse_u32(const char *arg, char opt, uint32_t min, uint32_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		fail("-%c %s: expected a number from %" PRIu32 " to %" PRIu32, opt, arg,
		     min, max);
	return (uint32_t)v;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: %s [-n messages] [-s payload_size] [-c capacity]\n"
		   "  -n  messages to send        (default 200000)\n"
		   "  -s  payload bytes each      (default 256)\n"
		   "  -c  slots in the pool       (default 64)\n", prog);
}

/* The pool's statistics, which libmmk does not report: read them from the kernel. */
static void pool_info(const struct demo *d, struct mmk_pool_info *info)
{
	if (ioctl(mmk_fd(d->m), MMK_IOC_POOL_INFO, info))
		die("MMK_IOC_POOL_INFO");
}

/* The queue's counters, which libmmk does report. */
static void queue_stats(const struct demo *d, struct mmk_queue_stats *st)
{
	enum mmk_error err = mmk_queue_stats(d->q, st);

	if (err)
		die_mmk(err, "mmk_queue_stats");
}

int main(int argc, char **argv)
{
	struct mmk_config cfg = {
		.mode = 0600,
		.payload_type = DEMO_PAYLOAD_TYPE,
		.memory_class = MMK_MEM_HOST,
	};
	struct mmk_queue_attr qa = {
		.name = DEMO_QUEUE,
		.policy = MMK_POLICY_BLOCK,	/* a full queue makes the producer wait */
	};
	struct demo d = { .count = 200000, .size = 256 };
	uint32_t capacity = 64;
	char name[MMK_NAME_MAX];
	struct mmk_pool_info info;
	struct mmk_queue_stats st;
	struct consumer_result *res;
	enum mmk_error err;
	uint64_t t0, elapsed, full, drops = 0;
	double secs;
	pid_t pid;
	int opt, status;

	while ((opt = getopt(argc, argv, "n:s:c:h")) != -1) {
		switch (opt) {
		case 'n':
			d.count = parse_u32(optarg, 'n', 1, UINT32_MAX);
			break;
		case 's':
			d.size = parse_u32(optarg, 's', 1, UINT32_MAX);
			break;
		case 'c':
			capacity = parse_u32(optarg, 'c', 1, UINT32_MAX);
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_FAILURE;
	}

	/*
	 * The queue holds at most half the pool; the consumer holds at most
	 * the rest, less the slot the producer stores into next.
	 */
	qa.cap_items = capacity / 2 ? capacity / 2 : 1;
	if (qa.cap_items > MMK_QUEUE_ITEMS_MAX)
		qa.cap_items = MMK_QUEUE_ITEMS_MAX;
	d.batch = capacity > qa.cap_items + 1 ? capacity - qa.cap_items - 1 : 1;
	if (d.batch > MAX_BATCH)
		d.batch = MAX_BATCH;

	snprintf(name, sizeof(name), "mmk-demo-%ld", (long)getpid());
	printf("%s: store and push %" PRIu64 " messages of %" PRIu32 " bytes through queue \""
	       DEMO_QUEUE "\" (%" PRIu32 " tokens) of pool \"%s\" (%" PRIu32 " slots);\n"
	       "a forked consumer pops them, reads each in place and checks it\n",
	       prog, d.count, d.size, qa.cap_items, name, capacity);

	/*
	 * 1-2. Open a session of /dev/mmk, create the pool and map it
	 * read-only: one call.  Only the constructor names the backend.
	 */
	cfg.payload_size = d.size;
	cfg.capacity = capacity;
	cfg.name = name;
	err = mmk_kernel_create(&cfg, &d.m);
	if (err == MMK_E_SYSTEM && errno == ENOENT)
		fail("%s does not exist: is the mmk module loaded?", MMK_DEVICE_PATH);
	if (err)
		die_mmk(err, "mmk_kernel_create (payload %" PRIu32 " bytes, %" PRIu32 " slots)",
			d.size, capacity);
	pool_info(&d, &info);
	printf("pool %" PRIu32 ": %" PRIu32 " slots of %" PRIu32 " bytes, %" PRIu64
	       " bytes mapped read-only\n", info.pool_id, info.capacity,
	       info.slot_size, (uint64_t)info.map_size);

	/* 3. The queue: a descriptor of its own, in the pool. */
	err = mmk_queue_create(d.m, &qa, &d.q);
	if (err)
		die_mmk(err, "mmk_queue_create (%" PRIu32 " tokens)", qa.cap_items);

	/* The consumer's tally, in memory shared across the fork. */
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	if (res == MAP_FAILED)
		die("mmap result page");
	memset(res, 0, sizeof(*res));

	fflush(stdout);
	/* 4. Fork: the child shares the session, the mapping, the manager and the queue. */
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		_exit(consume(&d, res));

	/* 5. Produce.  The consumer knows how many messages to expect. */
	t0 = now_ns();
	full = produce(&d);

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			die("waitpid");
	}
	elapsed = now_ns() - t0;
	if (WIFSIGNALED(status))
		fail("the consumer was killed by signal %d", WTERMSIG(status));

	/* 6. Report.  The pool's and the queue's counters must agree with what both sides did. */
	pool_info(&d, &info);
	queue_stats(&d, &st);
	for (int i = 0; i < MMK_DROP_REASONS; i++)
		drops += st.drops[i];
	secs = (double)elapsed / 1e9;
	printf("sent     %" PRIu64 " messages in %.3f s: %.0f messages/s, %.2f MB/s\n",
	       d.count, secs, (double)d.count / secs,
	       (double)d.count * d.size / secs / 1e6);
	printf("checked  %" PRIu64 " messages, %" PRIu64 " mismatches\n", res->checked,
	       res->mismatches);
	printf("waited   %" PRIu64 " times for a free slot (ENOSPC)\n", full);
	printf("queue    pushes %" PRIu64 ", pops %" PRIu64 ", high-water %" PRIu32 "/%" PRIu32
	       ", queued %" PRIu32 ", refused %" PRIu64 ", dropped %" PRIu64 "\n",
	       st.pushes, st.pops, st.high_items, st.cap_items, st.occupancy.items,
	       st.rejected, drops);
	printf("pool     stores %" PRIu64 ", frees %" PRIu64 ", no_free_slots %" PRIu64
	       ", available %" PRIu32 "/%" PRIu32 ",\n"
	       "         read guards %" PRIu32 ", write guards %" PRIu32 ", poisoned %" PRIu32
	       ", sessions %" PRIu32 "\n",
	       (uint64_t)info.stores, (uint64_t)info.frees, (uint64_t)info.no_free_slots,
	       info.available, info.capacity, info.read_guards, info.write_guards,
	       info.poisoned, info.sessions);

	if (WEXITSTATUS(status) != EXIT_SUCCESS && !res->mismatches)
		fail("the consumer failed (exit status %d)", WEXITSTATUS(status));
	if (res->checked != d.count || res->mismatches)
		fail("FAILED: %" PRIu64 " of %" PRIu64 " messages checked, %" PRIu64
		     " mismatches", res->checked, d.count, res->mismatches);
	if (st.pushes != d.count || st.pops != d.count || st.occupancy.items || drops)
		fail("FAILED: the queue's counters do not match what the demo did");
	/* Every message was freed by mmk, at the consumer's release. */
	if (info.stores != d.count || info.frees != d.count ||
	    info.no_free_slots != full || info.available != info.capacity ||
	    info.read_guards || info.write_guards || info.poisoned)
		fail("FAILED: the pool's counters do not match what the demo did");

	if (mmk_available(d.m) != mmk_capacity(d.m))
		fail("FAILED: mmk_available() says %zu of %zu slots are free", mmk_available(d.m),
		     mmk_capacity(d.m));
	mmk_queue_close(d.q);
	mmk_close(d.m);	/* the last reference: the kernel frees the pool */
	printf("%s: OK\n", prog);
	return EXIT_SUCCESS;
}
