// SPDX-License-Identifier: GPL-2.0
/*
 * sensor_frames - one producer, two consumers, a typed payload.
 *
 * A camera-like producer publishes frames: a struct sensor_frame with a
 * capture timestamp, a frame id, a 16x16 float image and a checksum.
 * MMK_DEFINE_TYPED() turns the struct into typed wrappers (frame_config,
 * frame_store, frame_read, frame_attach, ...): they set and check the
 * pool's payload type id, check that a message is exactly one struct
 * sensor_frame, and hand out a typed pointer.
 *
 * The producer creates a named /dev/mmk pool and forks two consumers, a
 * "tracker" and a "recorder".  Each consumer attaches to the pool by name
 * in a session of its own, as an unrelated program would; a pool created
 * with another payload type would be refused.  For every frame the
 * producer stores it once and sends the 8-byte token to both consumers.
 * Each consumer takes its own read guard, so both may hold one on the same
 * frame at once, checks the whole frame in place in its read-only mapping
 * (nothing is copied), releases the guard and acknowledges.  The recorder
 * first peeks at the header alone, as a queue deciding on QoS and deadline
 * would.  Once both consumers have acknowledged a frame, the producer frees
 * its slot; when the pool is full, it waits for acknowledgements.
 *
 *	sensor_frames [-n frames] [-c capacity]
 *
 * Build: cc -o sensor_frames sensor_frames.c $(pkg-config --cflags --libs mmk)
 */
#define _GNU_SOURCE		/* pipe2() */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mmk/mmk.h>

#define FRAME_W		16
#define FRAME_H		16

/* One frame, as it lies in a slot of the pool. */
struct sensor_frame {
	uint64_t timestamp_ns;		/* CLOCK_MONOTONIC at capture */
	uint64_t frame_id;		/* 0, 1, 2, ... */
	uint32_t width;			/* FRAME_W */
	uint32_t height;		/* FRAME_H */
	float pixels[FRAME_H][FRAME_W];
	uint32_t checksum;		/* FNV-1a of every byte before it */
	uint32_t reserved;		/* 0 */
};

/* Typed wrappers frame_*() for pools of struct sensor_frame. */
#define SENSOR_FRAME_TYPE_ID	0x73656e73666d3031ULL	/* "sensfm01" */
MMK_DEFINE_TYPED(frame, struct sensor_frame, SENSOR_FRAME_TYPE_ID);

#define NR_CONSUMERS	2
static const char *const consumer_name[NR_CONSUMERS] = { "tracker", "recorder" };

/* A consumer's acknowledgement of one frame (written whole: < PIPE_BUF). */
struct ack {
	uint64_t token;
	uint32_t consumer;
	uint32_t ok;			/* 1 if the frame checked out */
};

static const char *prog = "sensor_frames";

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

/* Exit with "<who>: <what>: <libmmk error>", and errno's text for MMK_E_SYSTEM. */
static void __attribute__((noreturn)) die_mmk(const char *who, const char *what,
					      enum mmk_error err)
{
	if (err == MMK_E_SYSTEM)
		fail("%s: %s: %s (%s)", who, what, mmk_strerror(err), strerror(errno));
	fail("%s: %s: %s (%s)", who, what, mmk_strerror(err), mmk_error_name(err));
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t h = 2166136261U;

	while (len--)
		h = (h ^ *p++) * 16777619U;
	return h;
}

/* The image of frame @id: a pattern anyone can recompute. */
static float pixel(uint64_t id, unsigned int y, unsigned int x)
{
	return (float)((id * 31 + y * FRAME_W + x) % 1000) / 8.0f;
}

static void capture(struct sensor_frame *f, uint64_t id)
{
	memset(f, 0, sizeof(*f));
	f->timestamp_ns = now_ns();
	f->frame_id = id;
	f->width = FRAME_W;
	f->height = FRAME_H;
	for (unsigned int y = 0; y < FRAME_H; y++)
		for (unsigned int x = 0; x < FRAME_W; x++)
			f->pixels[y][x] = pixel(id, y, x);
	f->checksum = fnv1a(f, offsetof(struct sensor_frame, checksum));
}

/* Check a frame where it lies.  Returns NULL if it is frame @id, else what is wrong. */
static const char *verify(const struct sensor_frame *f, uint64_t id, uint64_t not_before_ns)
{
	if (f->frame_id != id)
		return "frame_id";
	if (f->timestamp_ns < not_before_ns)
		return "timestamp went backwards";
	if (f->width != FRAME_W || f->height != FRAME_H || f->reserved)
		return "width, height or reserved";
	if (f->checksum != fnv1a(f, offsetof(struct sensor_frame, checksum)))
		return "checksum";
	for (unsigned int y = 0; y < FRAME_H; y++)
		for (unsigned int x = 0; x < FRAME_W; x++)
			if (f->pixels[y][x] != pixel(id, y, x))
				return "pixels";
	return NULL;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly @len bytes.  Returns 1, 0 at end of file, -1 on error. */
static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return got ? -1 : 0;
		got += (size_t)n;
	}
	return 1;
}

/*
 * A consumer: attach to the pool by name, then for every token read the
 * frame in place, check it, release the guard and acknowledge.
 */
static int consume(int me, const char *pool, int token_rd, int ack_wr)
{
	const char *who = consumer_name[me];
	MMK_SCOPED_MANAGER(m);		/* closed when this function returns */
	uint64_t id = 0, bad = 0, last_ns = 0, token;
	enum mmk_error err;
	int r;

	/* Its own session; the payload type id must match the pool's. */
	err = frame_attach(pool, &m);
	if (err)
		die_mmk(who, "frame_attach", err);

	while ((r = read_all(token_rd, &token, sizeof(token))) > 0) {
		struct ack ack = { .token = token, .consumer = (uint32_t)me };
		const char *wrong = NULL;

		if (me == 1) {
			/* The header alone, as a queue deciding on QoS and deadline would. */
			MMK_SCOPED_HEADER(hg);

			err = mmk_peek_header(m, token, &hg);
			if (err)
				die_mmk(who, "mmk_peek_header", err);
			if (hg.msg->header.sequence != id ||
			    hg.msg->header.qos != MMK_QOS_LATENCY_CRITICAL ||
			    !(hg.msg->header.flags & MMK_MSG_HAS_DEADLINE) ||
			    hg.msg->header.payload_size != sizeof(struct sensor_frame))
				wrong = "header";
		}	/* the header guard is released here */

		{
			MMK_SCOPED_READ(g);	/* released at the end of this block */
			const struct sensor_frame *f;

			err = frame_read(m, token, &g, &f);
			if (err)
				die_mmk(who, "frame_read", err);
			if (!wrong)
				wrong = verify(f, id, last_ns);
			last_ns = f->timestamp_ns;
		}

		if (wrong && bad++ < 10)
			fprintf(stderr, "%s: %s: frame %" PRIu64 ": wrong %s\n", prog, who, id,
				wrong);
		ack.ok = !wrong;
		if (write_all(ack_wr, &ack, sizeof(ack)))
			fail("%s: write ack: %s", who, strerror(errno));
		id++;
	}
	if (r < 0)
		fail("%s: read token: %s", who, strerror(errno));

	printf("%s: %" PRIu64 " frames read in place and verified, %" PRIu64 " bad%s\n", who,
	       id, bad, me == 1 ? " (each header peeked at first)" : "");
	fflush(stdout);
	return bad ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Frames stored and not yet freed, with the acknowledgements they have. */
struct in_flight {
	uint64_t token;
	unsigned int acks;
	bool used;
};

struct producer {
	struct mmk_manager *m;
	struct in_flight *slots;	/* capacity entries */
	uint32_t capacity;
	uint32_t pending;		/* frames in flight */
	uint64_t freed, bad_acks, waits;
	int ack_rd;
};

/* Handle one acknowledgement: free the frame once every consumer has seen it. */
static void take_ack(struct producer *p)
{
	struct ack ack;
	enum mmk_error err;
	uint32_t i;
	int r = read_all(p->ack_rd, &ack, sizeof(ack));

	if (r == 0)
		fail("producer: the consumers are gone with %" PRIu32 " frames in flight",
		     p->pending);
	if (r < 0)
		fail("producer: read ack: %s", strerror(errno));
	if (!ack.ok)
		p->bad_acks++;
	for (i = 0; i < p->capacity; i++)
		if (p->slots[i].used && p->slots[i].token == ack.token)
			break;
	if (i == p->capacity)
		fail("producer: acknowledgement of unknown token 0x%016" PRIx64, ack.token);
	if (++p->slots[i].acks < NR_CONSUMERS)
		return;
	err = mmk_free(p->m, ack.token);
	if (err)
		die_mmk("producer", "mmk_free", err);
	p->slots[i].used = false;
	p->pending--;
	p->freed++;
}

static void add_in_flight(struct producer *p, uint64_t token)
{
	for (uint32_t i = 0; i < p->capacity; i++) {
		if (!p->slots[i].used) {
			p->slots[i] = (struct in_flight){ .token = token, .used = true };
			p->pending++;
			return;
		}
	}
	fail("producer: more frames in flight than slots");
}

/* Take every acknowledgement already waiting, without blocking. */
static void take_ready_acks(struct producer *p)
{
	struct pollfd pfd = { .fd = p->ack_rd, .events = POLLIN };

	while (p->pending && poll(&pfd, 1, 0) > 0)
		take_ack(p);
}

static uint32_t parse_u32(const char *arg, char opt, uint32_t min, uint32_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		fail("-%c %s: expected a number from %" PRIu32 " to %" PRIu32, opt, arg, min, max);
	return (uint32_t)v;
}

int main(int argc, char **argv)
{
	struct producer p = { .capacity = 8 };
	uint32_t nframes = 1000;
	int token_pipe[NR_CONSUMERS][2], ack_pipe[2];
	pid_t pid[NR_CONSUMERS];
	struct mmk_config cfg;
	char pool[MMK_NAME_MAX];
	enum mmk_error err;
	bool failed = false;
	int opt;

	while ((opt = getopt(argc, argv, "n:c:h")) != -1) {
		switch (opt) {
		case 'n':
			nframes = parse_u32(optarg, 'n', 1, UINT32_MAX);
			break;
		case 'c':
			p.capacity = parse_u32(optarg, 'c', 1, 65536);
			break;
		default:
			fprintf(opt == 'h' ? stdout : stderr,
				"usage: %s [-n frames (1000)] [-c pool capacity (8)]\n", prog);
			return opt == 'h' ? EXIT_SUCCESS : EXIT_FAILURE;
		}
	}

	/* A named pool of struct sensor_frame, for the owner only. */
	snprintf(pool, sizeof(pool), "sensor-frames-%ld", (long)getpid());
	frame_config(&cfg, p.capacity);
	cfg.name = pool;
	cfg.mode = 0600;
	cfg.memory_class = MMK_MEM_HOST;
	err = mmk_kernel_create(&cfg, &p.m);
	if (err == MMK_E_SYSTEM && errno == ENOENT)
		fail("/dev/mmk does not exist: is the mmk module loaded?");
	if (err)
		die_mmk("producer", "mmk_kernel_create", err);
	printf("%s: %" PRIu32 " frames of %zu bytes through pool \"%s\" (%zu slots), "
	       "one producer, %d consumers\n", prog, nframes, sizeof(struct sensor_frame), pool,
	       mmk_capacity(p.m), NR_CONSUMERS);
	fflush(stdout);

	p.slots = calloc(p.capacity, sizeof(*p.slots));
	if (!p.slots)
		fail("calloc: %s", strerror(errno));
	if (pipe2(ack_pipe, O_CLOEXEC))
		fail("pipe2: %s", strerror(errno));
	p.ack_rd = ack_pipe[0];
	signal(SIGPIPE, SIG_IGN);	/* a dead consumer shows up as EPIPE */

	for (int c = 0; c < NR_CONSUMERS; c++) {
		if (pipe2(token_pipe[c], O_CLOEXEC))
			fail("pipe2: %s", strerror(errno));
		pid[c] = fork();
		if (pid[c] < 0)
			fail("fork: %s", strerror(errno));
		if (pid[c] == 0) {
			/* A consumer needs nothing of the producer's but its pipes. */
			mmk_close(p.m);
			for (int o = 0; o <= c; o++)
				close(token_pipe[o][1]);
			close(ack_pipe[0]);
			_exit(consume(c, pool, token_pipe[c][0], ack_pipe[1]));
		}
		close(token_pipe[c][0]);
	}
	close(ack_pipe[1]);

	for (uint64_t id = 0; id < nframes; id++) {
		struct mmk_header h = {
			.sequence = id,
			.trace_id = 0x6672616d65000000ULL | id,	/* "frame" + id */
			.created_tick = now_ns(),
			.qos = MMK_QOS_LATENCY_CRITICAL,
			.flags = MMK_MSG_HAS_DEADLINE,
			.deadline_ns = now_ns() + 5000000,	/* 5 ms to consume it */
		};
		struct sensor_frame f;
		uint64_t token;

		capture(&f, id);
		/* Copied into a free slot once; from here on only the token travels. */
		while ((err = frame_store(p.m, &h, &f, &token)) == MMK_E_NO_FREE_SLOTS) {
			p.waits++;
			take_ack(&p);	/* blocks until a consumer acknowledges */
		}
		if (err)
			die_mmk("producer", "frame_store", err);
		add_in_flight(&p, token);
		for (int c = 0; c < NR_CONSUMERS; c++)
			if (write_all(token_pipe[c][1], &token, sizeof(token)))
				fail("producer: send token to %s: %s", consumer_name[c],
				     strerror(errno));
		take_ready_acks(&p);
	}
	for (int c = 0; c < NR_CONSUMERS; c++)
		close(token_pipe[c][1]);	/* end of stream */
	while (p.pending)
		take_ack(&p);

	for (int c = 0; c < NR_CONSUMERS; c++) {
		int status;

		while (waitpid(pid[c], &status, 0) < 0)
			if (errno != EINTR)
				fail("waitpid: %s", strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) != EXIT_SUCCESS) {
			fprintf(stderr, "%s: the %s failed (status 0x%x)\n", prog,
				consumer_name[c], status);
			failed = true;
		}
	}

	printf("producer: %" PRIu32 " frames stored, %" PRIu64 " freed after both consumers "
	       "acknowledged them, waited %" PRIu64 " times for a free slot\n", nframes, p.freed,
	       p.waits);
	if (p.freed != nframes || p.bad_acks)
		failed = true;
	if (mmk_available(p.m) != mmk_capacity(p.m)) {
		fprintf(stderr, "%s: %zu of %zu slots free at the end\n", prog,
			mmk_available(p.m), mmk_capacity(p.m));
		failed = true;
	}
	mmk_close(p.m);		/* the last session: the kernel frees the pool */
	free(p.slots);
	if (failed)
		fail("FAILED");
	printf("%s: OK\n", prog);
	return EXIT_SUCCESS;
}
