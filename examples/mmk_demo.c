// SPDX-License-Identifier: GPL-2.0
/*
 * mmk_demo - a producer and a consumer sharing one mmk pool.
 *
 * The producer creates an anonymous pool on /dev/mmk with libmmk's kernel
 * backend (mmk_kernel_create, which also maps the pool read-only) and forks
 * a consumer.  Because the consumer is a fork, it shares the producer's
 * session (the open file) and inherits its mapping: it goes on using the
 * same struct mmk_manager and opens nothing itself.
 *
 * The producer stores each message with mmk_store() and sends only the
 * 8-byte token through a pipe.  The consumer takes a read guard on the token
 * (mmk_read), checks the message in place through the mapping, without
 * copying it out, drops the guard (mmk_read_release) and frees the slot
 * (mmk_free).  When the pool is full, the store fails with
 * MMK_E_NO_FREE_SLOTS and the producer blocks on a second pipe on which the
 * consumer posts a credit after every batch it has freed.
 *
 * Everything goes through <mmk/mmk.h>, except the pool's statistics at the
 * end: libmmk has no call for them, so the demo reads them with the
 * MMK_IOC_POOL_INFO ioctl of <linux/mmk.h> on the manager's descriptor
 * (mmk_fd).
 *
 *	mmk_demo [-n messages] [-s payload_size] [-c capacity]
 */
#define _GNU_SOURCE		/* pipe2() */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
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
#define TOKEN_BATCH		32	/* tokens the producer sends per write */
#define MAX_REPORTED		10	/* mismatches printed in detail */

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

/* write(2) all of @buf, retrying on EINTR and short writes. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read between 1 and @max whole tokens.  Returns how many, 0 at end of file,
 * or -1 with errno set.
 */
static ssize_t read_tokens(int fd, uint64_t *tokens, size_t max)
{
	size_t got = 0;

	do {
		ssize_t n = read(fd, (char *)tokens + got, max * sizeof(*tokens) - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			if (got == 0)
				return 0;
			errno = EPROTO;		/* the writer left half a token */
			return -1;
		}
		got += (size_t)n;
	} while (got % sizeof(*tokens));	/* complete a split token */

	return (ssize_t)(got / sizeof(*tokens));
}

struct demo {
	struct mmk_manager *m;		/* the session; shared with the consumer */
	uint64_t count;			/* messages to send */
	uint32_t size;			/* payload bytes of each message */
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
 * The consumer: for every token, read guard, check in place, release, free.
 * After each batch of frees, post a credit so a producer waiting on a full
 * pool wakes up.  The credit pipe is non-blocking: if it is full, credits
 * are already waiting, and one more is not needed.
 */
static int consume(const struct demo *d, int token_rd, int credit_wr,
		   struct consumer_result *res)
{
	uint64_t tokens[TOKEN_BATCH];
	unsigned char *expect = malloc(d->size);
	uint64_t seq = 0, reported = 0;
	ssize_t n;

	if (!expect)
		die("consumer: malloc");

	while ((n = read_tokens(token_rd, tokens, TOKEN_BATCH)) > 0) {
		for (ssize_t i = 0; i < n; i++, seq++) {
			struct mmk_read_guard g;
			enum mmk_error err;

			err = mmk_read(d->m, tokens[i], &g);
			if (err)
				die_mmk(err, "consumer: mmk_read of message %" PRIu64, seq);

			if (!check_message(d, &g, seq, expect, &reported))
				res->mismatches++;
			res->checked++;

			err = mmk_read_release(&g);
			if (err)
				die_mmk(err, "consumer: mmk_read_release of message %" PRIu64, seq);
			err = mmk_free(d->m, tokens[i]);
			if (err)
				die_mmk(err, "consumer: mmk_free of message %" PRIu64, seq);
		}
		if (write(credit_wr, "", 1) < 0 && errno != EAGAIN)
			die("consumer: write credit");
	}
	if (n < 0)
		die("consumer: read tokens");

	free(expect);
	return res->mismatches ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Block until the consumer has freed something since the last credit. */
static void wait_for_credit(int credit_rd)
{
	char credits[64];

	for (;;) {
		ssize_t n = read(credit_rd, credits, sizeof(credits));

		if (n > 0)
			return;
		if (n == 0)
			fail("the consumer exited while the pool was full");
		if (errno != EINTR)
			die("read credit");
	}
}

static void send_tokens(int token_wr, const uint64_t *tokens, size_t *nr)
{
	if (*nr && write_all(token_wr, tokens, *nr * sizeof(*tokens)))
		die("send tokens to the consumer");
	*nr = 0;
}

/* The producer: store every message, retrying on ENOSPC once a credit comes back. */
static uint64_t produce(const struct demo *d, int token_wr, int credit_rd)
{
	uint64_t tokens[TOKEN_BATCH];
	unsigned char *payload = malloc(d->size);
	uint64_t full = 0;
	size_t nr = 0;

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
		enum mmk_error err;
		uint64_t token;

		fill_payload(payload, d->size, seq);
		while ((err = mmk_store(d->m, &h, payload, d->size, &token)) != MMK_OK) {
			if (err != MMK_E_NO_FREE_SLOTS)
				die_mmk(err, "mmk_store of message %" PRIu64, seq);
			/*
			 * Pool full.  Every slot is held by a token we have
			 * produced, so hand the pending ones over first, then
			 * wait for the consumer to free one.
			 */
			full++;
			send_tokens(token_wr, tokens, &nr);
			wait_for_credit(credit_rd);
		}
		tokens[nr++] = token;
		if (nr == TOKEN_BATCH)
			send_tokens(token_wr, tokens, &nr);
	}
	send_tokens(token_wr, tokens, &nr);
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

int main(int argc, char **argv)
{
	struct mmk_config cfg = {
		.mode = 0600,
		.payload_type = DEMO_PAYLOAD_TYPE,
		.memory_class = MMK_MEM_HOST,
		/* .name left NULL: an anonymous pool, shared only by fork or fd passing. */
	};
	struct demo d = { .count = 200000, .size = 256 };
	uint32_t capacity = 64;
	struct mmk_pool_info info;
	struct consumer_result *res;
	enum mmk_error err;
	int token_pipe[2], credit_pipe[2];
	uint64_t t0, elapsed, full;
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

	printf("%s: store %" PRIu64 " messages of %" PRIu32 " bytes in an anonymous pool of %"
	       PRIu32 " slots; a forked consumer reads each in place, checks it, frees it\n",
	       prog, d.count, d.size, capacity);

	/*
	 * 1-2. Open a session of /dev/mmk, create the pool and map it
	 * read-only: one call.  Only the constructor names the backend.
	 */
	cfg.payload_size = d.size;
	cfg.capacity = capacity;
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

	/* The consumer's tally, in memory shared across the fork. */
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	if (res == MAP_FAILED)
		die("mmap result page");
	memset(res, 0, sizeof(*res));

	if (pipe2(token_pipe, O_CLOEXEC) || pipe2(credit_pipe, O_CLOEXEC))
		die("pipe2");
	if (fcntl(credit_pipe[1], F_SETFL, O_NONBLOCK))
		die("fcntl O_NONBLOCK");
	/* A consumer that died shows up as EPIPE on the token pipe, not as a signal. */
	signal(SIGPIPE, SIG_IGN);

	fflush(stdout);
	/* 3. Fork: the child shares the session, the mapping and the manager. */
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(token_pipe[1]);
		close(credit_pipe[0]);
		_exit(consume(&d, token_pipe[0], credit_pipe[1], res));
	}
	close(token_pipe[0]);
	close(credit_pipe[1]);

	/* 4. Produce; closing the token pipe tells the consumer there is no more. */
	t0 = now_ns();
	full = produce(&d, token_pipe[1], credit_pipe[0]);
	close(token_pipe[1]);

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			die("waitpid");
	}
	elapsed = now_ns() - t0;
	close(credit_pipe[0]);
	if (WIFSIGNALED(status))
		fail("the consumer was killed by signal %d", WTERMSIG(status));

	/* 5. Report.  The pool's counters must agree with what both sides did. */
	pool_info(&d, &info);
	secs = (double)elapsed / 1e9;
	printf("sent     %" PRIu64 " messages in %.3f s: %.0f messages/s, %.2f MB/s\n",
	       d.count, secs, (double)d.count / secs,
	       (double)d.count * d.size / secs / 1e6);
	printf("checked  %" PRIu64 " messages, %" PRIu64 " mismatches\n", res->checked,
	       res->mismatches);
	printf("waited   %" PRIu64 " times for a free slot (ENOSPC)\n", full);
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
	if (info.stores != d.count || info.frees != d.count ||
	    info.no_free_slots != full || info.available != info.capacity ||
	    info.read_guards || info.write_guards || info.poisoned)
		fail("FAILED: the pool's counters do not match what the demo did");

	if (mmk_available(d.m) != mmk_capacity(d.m))
		fail("FAILED: mmk_available() says %zu of %zu slots are free", mmk_available(d.m),
		     mmk_capacity(d.m));
	mmk_close(d.m);	/* the last reference: the kernel frees the pool */
	printf("%s: OK\n", prog);
	return EXIT_SUCCESS;
}
