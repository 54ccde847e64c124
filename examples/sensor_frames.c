// SPDX-License-Identifier: GPL-2.0
/*
 * sensor_frames - typed frames fanned out through mmk queues, and a chain
 * of stages that forwards them without copying.
 *
 * A camera-like producer publishes frames: a struct sensor_frame with a
 * capture timestamp, a frame id, a 16x16 float image and a checksum.
 * MMK_DEFINE_TYPED() turns the struct into typed wrappers (frame_config,
 * frame_attach, frame_payload, ...): they set and check the pool's payload
 * type id and hand out typed pointers.
 *
 * Only tokens travel, and only through queues that the kernel owns; no
 * pipe, no socket, no copy of a frame:
 *
 *                          +--> [tracker] --> tracker
 *   producer --(fan-out)---+
 *                          +--> [calibrator] --> calibrator --> [encoder] --> encoder
 *                                                                     --> [recorder] --> recorder
 *
 * The producer creates a named, page-aligned /dev/mmk pool and one queue
 * per consumer, named after it, then forks the four consumers.  Each one
 * attaches to the pool by name in a session of its own and opens its
 * queues by name, as an unrelated program would.
 *
 * For every frame the producer loans a free slot (mmk_loan), captures the
 * frame straight into it, publishes it (mmk_write_release) and gives it to
 * two queues at once (mmk_queue_try_push_many): the tracker's and the
 * calibrator's.  Both queues hold the same slot; the frame is freed by mmk
 * when the last of its holders lets go, so nobody frees anything by hand.
 * The fan-out queues refuse a push when full (MMK_POLICY_REJECT): the
 * producer then waits with poll() until both are writable again.
 *
 * The tracker pops each frame (a read guard, in place in its read-only
 * mapping), checks it and releases it.  The calibrator, the encoder and
 * the recorder form a three-stage chain: the first two pop a frame, push
 * the same token to the next stage's queue and only then release their
 * guard, so the frame is always held by someone and never copied.  Their
 * queues block a full push (MMK_POLICY_BLOCK, mmk_queue_push_wait).  The
 * recorder, at the end of the chain, checks every byte and the checksum,
 * and checks that every stage found the frame at the same offset in the
 * pool: the frame never moved.  The last frame carries
 * MMK_MSG_LAST_IN_BATCH, which ends each consumer.
 *
 * The queues' caps bound what is in flight: a frame is held by the
 * producer, a queue or one guard per consumer, so a pool of at least
 * MIN_CAPACITY slots always has a free slot for the next loan.
 *
 * At the end the producer checks that every consumer exited successfully,
 * that every queue delivered every frame and dropped none, that the
 * tracker and the recorder saw each frame at the same offset, and that
 * every slot of the pool is free again.  The exit status is 0 only then.
 *
 *	sensor_frames [-n frames] [-c capacity]
 *
 * Build: cc -o sensor_frames sensor_frames.c $(pkg-config --cflags --libs mmk)
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* The consumers.  Each pops from the queue named after it. */
enum role { TRACKER, CALIBRATOR, ENCODER, RECORDER, NR_ROLES };

static const struct {
	const char *name;		/* the process, and the queue it pops */
	int next;			/* the queue it forwards to, or -1 */
} roles[NR_ROLES] = {
	[TRACKER]	= { "tracker",		-1 },
	[CALIBRATOR]	= { "calibrator",	ENCODER },
	[ENCODER]	= { "encoder",		RECORDER },
	[RECORDER]	= { "recorder",		-1 },
};

/* The fan-out: every frame goes to these two queues at once. */
static const enum role fanout[] = { TRACKER, CALIBRATOR };
#define NR_FANOUT	(sizeof(fanout) / sizeof(fanout[0]))

#define QUEUE_CAP	4		/* frames each queue holds at most */
/*
 * The most frames alive at once: the one being produced, and behind it
 * the longest branch, the chain (three queues and a guard per stage).
 */
#define MIN_CAPACITY	(1 + 3 * (QUEUE_CAP + 1))
#define MAX_FRAMES	(1U << 20)
#define TIMEOUT_S	30		/* longest wait for a peer */
#define TIMEOUT_NS	((uint64_t)TIMEOUT_S * 1000000000ULL)
#define MAX_REPORTED	10		/* wrong frames printed in detail */

/*
 * What each process saw of each frame, in memory shared across the forks:
 * the token the producer pushed and, per consumer, where in the pool the
 * frame was (see pool_offset()).  Not a channel: the consumers write it,
 * the recorder and, at the end, the producer read it.
 */
struct frame_log {
	uint64_t token;
	uint64_t offset[NR_ROLES];
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

/* Capture frame @id into @f: here, straight into a loaned slot. */
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

/*
 * Where a message lies in the pool, in bytes from the pool's start.
 *
 * libmmk hands out pointers into this process's read-only mapping of the
 * pool, which every process maps at an address of its own.  The pool is
 * mapped whole, once, so the offset is the pointer less the start of the
 * mapping that holds it (plus that mapping's file offset, 0): the same
 * number in every process for the same slot.  The mapping is looked up
 * once, in /proc/self/maps.
 */
struct pool_map {
	uintptr_t start, end;
	uint64_t file_offset;
};

static uint64_t pool_offset(const char *who, struct pool_map *pm, const void *msg)
{
	uintptr_t p = (uintptr_t)msg;

	if (!pm->end) {
		char line[512];
		FILE *f = fopen("/proc/self/maps", "re");

		if (!f)
			fail("%s: /proc/self/maps: %s", who, strerror(errno));
		while (fgets(line, sizeof(line), f)) {
			unsigned long start, end;
			unsigned long long off;

			if (sscanf(line, "%lx-%lx %*s %llx", &start, &end, &off) == 3 &&
			    p >= start && p < end) {
				*pm = (struct pool_map){ start, end, off };
				break;
			}
		}
		fclose(f);
	}
	if (p < pm->start || p >= pm->end)
		fail("%s: message at %p is not in the pool's mapping", who, msg);
	return p - pm->start + pm->file_offset;
}

/* Wait until every queue of @qs would admit a push (EPOLLOUT on its descriptor). */
static void wait_writable(struct mmk_queue *const *qs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pollfd pfd = { .fd = mmk_queue_fd(qs[i]), .events = POLLOUT };
		int r;

		while ((r = poll(&pfd, 1, TIMEOUT_S * 1000)) < 0 && errno == EINTR)
			;
		if (r < 0)
			fail("producer: poll: %s", strerror(errno));
		if (r == 0)
			fail("producer: queue %s full for %d s: is its consumer alive?",
			     roles[fanout[i]].name, TIMEOUT_S);
	}
}

/*
 * A consumer: attach to the pool by name, open its queue (and the next
 * stage's) by name, then pop every frame, check it, forward it if it is a
 * stage of the chain, and release it.
 */
static int consume(enum role me, const char *pool, struct frame_log *log, uint32_t nframes)
{
	const char *who = roles[me].name;
	MMK_SCOPED_MANAGER(m);		/* closed when this function returns */
	struct mmk_queue *in, *out = NULL;
	struct pool_map pm = { 0 };
	uint64_t id, bad = 0, last_ns = 0;
	bool last = false;
	enum mmk_error err;

	/* Its own session; the payload type id must match the pool's. */
	err = frame_attach(pool, &m);
	if (err)
		die_mmk(who, "frame_attach", err);
	err = mmk_queue_open(m, who, &in);
	if (err)
		die_mmk(who, "mmk_queue_open (its queue)", err);
	if (roles[me].next >= 0) {
		err = mmk_queue_open(m, roles[roles[me].next].name, &out);
		if (err)
			die_mmk(who, "mmk_queue_open (the next stage's queue)", err);
	}

	for (id = 0; !last; id++) {
		struct mmk_read_guard g;
		const struct sensor_frame *f;
		const char *wrong = NULL;
		uint64_t off;

		/* The queue's hold becomes this session's read guard: nothing is copied. */
		err = mmk_queue_pop_wait(in, TIMEOUT_NS, &g);
		if (err == MMK_E_QUEUE_EMPTY)
			fail("%s: no frame for %d s: is the producer alive?", who, TIMEOUT_S);
		if (err)
			die_mmk(who, "mmk_queue_pop_wait", err);
		if (id >= nframes)
			fail("%s: more than %" PRIu32 " frames", who, nframes);
		last = g.msg->header.flags & MMK_MSG_LAST_IN_BATCH;

		/* Where the frame is, and whether it is the one the producer pushed. */
		off = pool_offset(who, &pm, g.msg);
		log[id].offset[me] = off;
		f = frame_payload(&g);
		if (g.token != log[id].token)
			wrong = "token";
		else if (g.msg->header.sequence != id ||
			 g.msg->header.payload_size != sizeof(*f) ||
			 g.msg->header.qos != MMK_QOS_LATENCY_CRITICAL)
			wrong = "header";
		else if (f->frame_id != id)
			wrong = "frame_id (out of order)";

		/* The ends check every byte; the recorder, the offsets along the chain. */
		if (!wrong && (me == TRACKER || me == RECORDER))
			wrong = verify(f, id, last_ns);
		if (!wrong && me == RECORDER &&
		    (log[id].offset[CALIBRATOR] != off || log[id].offset[ENCODER] != off))
			wrong = "offset: the frame moved along the chain";
		last_ns = f->timestamp_ns;

		/*
		 * A stage forwards the token before it lets go: for a moment
		 * both the next queue and this guard hold the frame, so it is
		 * never free, and never copied.  The push waits while the next
		 * queue is full.
		 */
		if (out) {
			err = mmk_queue_push_wait(out, g.token, TIMEOUT_NS, NULL);
			if (err == MMK_E_QUEUE_FULL)
				fail("%s: queue %s full for %d s: is its consumer alive?", who,
				     roles[roles[me].next].name, TIMEOUT_S);
			if (err)
				die_mmk(who, "mmk_queue_push_wait", err);
		}
		/* Frees the frame if no queue and no other guard holds it. */
		err = mmk_read_release(&g);
		if (err)
			die_mmk(who, "mmk_read_release", err);

		if (wrong && bad++ < MAX_REPORTED)
			fprintf(stderr, "%s: %s: frame %" PRIu64 ": wrong %s\n", prog, who, id,
				wrong);
	}

	switch (me) {
	case TRACKER:
		printf("%s: %" PRIu64 " frames popped and verified in place, %" PRIu64 " bad\n",
		       who, id, bad);
		break;
	case RECORDER:
		printf("%s: %" PRIu64 " frames verified at the end of the chain, %" PRIu64
		       " bad (checksum, pixels, same offset as in the calibrator and encoder)\n",
		       who, id, bad);
		break;
	default:
		printf("%s: %" PRIu64 " frames forwarded to %s without a copy, %" PRIu64 " bad\n",
		       who, id, roles[roles[me].next].name, bad);
	}
	fflush(stdout);
	mmk_queue_close(in);
	mmk_queue_close(out);
	return bad || id != nframes ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Loan, capture in place, publish, and fan out frame @id.  Returns the waits for room. */
static uint64_t produce(struct mmk_manager *m, struct mmk_queue *const *qs, uint64_t id,
			uint32_t nframes, struct frame_log *log)
{
	struct mmk_write_guard w;
	struct mmk_header *h;
	uint64_t token, waits = 0;
	enum mmk_error err;

	/* A free slot, written where the frame will live: no copy. */
	err = mmk_loan(m, &w);
	if (err)	/* MMK_E_NO_FREE_SLOTS cannot happen: see MIN_CAPACITY */
		die_mmk("producer", "mmk_loan", err);
	h = &w.msg->header;
	*h = (struct mmk_header){
		.sequence = id,
		.trace_id = 0x6672616d65000000ULL | id,	/* "frame" + id */
		.created_tick = now_ns(),
		.qos = MMK_QOS_LATENCY_CRITICAL,
		.flags = id == nframes - 1 ? MMK_MSG_LAST_IN_BATCH : 0,
		.payload_size = sizeof(struct sensor_frame),
	};
	capture(frame_payload_mut(&w), id);
	token = w.token;
	log[id].token = token;

	/* Published: the frame exists, still the producer's until it is pushed. */
	err = mmk_write_release(&w);
	if (err)
		die_mmk("producer", "mmk_write_release", err);

	/*
	 * One push gives the frame to both queues, or to neither if either
	 * is full: then wait until both have room and try again.
	 */
	while ((err = mmk_queue_try_push_many(qs, NR_FANOUT, token, NULL)) == MMK_E_QUEUE_FULL) {
		waits++;
		wait_writable(qs, NR_FANOUT);
	}
	if (err)
		die_mmk("producer", "mmk_queue_try_push_many", err);
	return waits;
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

/* Print a queue's counters; false if it did not deliver exactly @n frames. */
static bool queue_report(struct mmk_queue *q, uint64_t n)
{
	struct mmk_queue_stats st;
	uint64_t drops = 0;
	enum mmk_error err;

	err = mmk_queue_stats(q, &st);
	if (err)
		die_mmk("producer", "mmk_queue_stats", err);
	for (int i = 0; i < MMK_DROP_REASONS; i++)
		drops += st.drops[i];
	printf("queue %-10s %-6s cap %" PRIu32 ": pushes %" PRIu64 ", pops %" PRIu64
	       ", high-water %" PRIu32 ", refused when full %" PRIu64 ", dropped %" PRIu64 "\n",
	       st.name, st.policy == MMK_POLICY_BLOCK ? "block" : "reject", st.cap_items,
	       st.pushes, st.pops, st.high_items, st.rejected, drops);
	return st.pushes == n && st.pops == n && !drops && !st.occupancy.items;
}

int main(int argc, char **argv)
{
	uint32_t nframes = 1000, capacity = MIN_CAPACITY;
	struct mmk_queue *q[NR_ROLES], *fan[NR_FANOUT];
	struct mmk_manager *m;
	struct frame_log *log;
	pid_t pid[NR_ROLES];
	struct mmk_config cfg;
	char pool[MMK_NAME_MAX];
	uint64_t waits = 0, moved = 0;
	enum mmk_error err;
	bool failed = false;
	int opt;

	while ((opt = getopt(argc, argv, "n:c:h")) != -1) {
		switch (opt) {
		case 'n':
			nframes = parse_u32(optarg, 'n', 1, MAX_FRAMES);
			break;
		case 'c':
			capacity = parse_u32(optarg, 'c', MIN_CAPACITY, 65536);
			break;
		default:
			fprintf(opt == 'h' ? stdout : stderr,
				"usage: %s [-n frames (1000, at most %u)] "
				"[-c pool capacity (%d, at least %d)]\n",
				prog, MAX_FRAMES, MIN_CAPACITY, MIN_CAPACITY);
			return opt == 'h' ? EXIT_SUCCESS : EXIT_FAILURE;
		}
	}
	if (optind != argc)
		fail("unexpected argument \"%s\"; try -h", argv[optind]);

	/*
	 * A named pool of struct sensor_frame, for the owner only.  Page
	 * aligned, so that a loan writes the frame in the slot itself.
	 */
	snprintf(pool, sizeof(pool), "sensor-frames-%ld", (long)getpid());
	frame_config(&cfg, capacity);
	cfg.name = pool;
	cfg.mode = 0600;
	cfg.memory_class = MMK_MEM_HOST;
	cfg.flags = MMK_POOL_PAGE_ALIGNED;
	err = mmk_kernel_create(&cfg, &m);
	if (err == MMK_E_SYSTEM && errno == ENOENT)
		fail("/dev/mmk does not exist: is the mmk module loaded?");
	if (err)
		die_mmk("producer", "mmk_kernel_create", err);

	/* One queue per consumer, named after it, made before anyone opens it. */
	for (int r = 0; r < NR_ROLES; r++) {
		struct mmk_queue_attr qa = {
			.name = roles[r].name,
			/* A fan-out push never waits: the producer polls instead. */
			.policy = r == TRACKER || r == CALIBRATOR ? MMK_POLICY_REJECT
								   : MMK_POLICY_BLOCK,
			.cap_items = QUEUE_CAP,
		};

		err = mmk_queue_create(m, &qa, &q[r]);
		if (err)
			die_mmk("producer", "mmk_queue_create", err);
	}
	for (size_t i = 0; i < NR_FANOUT; i++)
		fan[i] = q[fanout[i]];

	printf("%s: %" PRIu32 " frames of %zu bytes through pool \"%s\" (%zu slots); "
	       "fan-out to the tracker and a three-stage chain, through queues of %d\n",
	       prog, nframes, sizeof(struct sensor_frame), pool, mmk_capacity(m), QUEUE_CAP);
	fflush(stdout);

	log = mmap(NULL, (size_t)nframes * sizeof(*log), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (log == MAP_FAILED)
		fail("mmap: %s", strerror(errno));

	for (int r = 0; r < NR_ROLES; r++) {
		pid[r] = fork();
		if (pid[r] < 0)
			fail("fork: %s", strerror(errno));
		if (pid[r] == 0) {
			/* A consumer opens what it needs itself: drop the producer's copies. */
			mmk_close(m);
			_exit(consume((enum role)r, pool, log, nframes));
		}
	}

	for (uint64_t id = 0; id < nframes; id++)
		waits += produce(m, fan, id, nframes, log);

	for (int r = 0; r < NR_ROLES; r++) {
		int status;

		while (waitpid(pid[r], &status, 0) < 0)
			if (errno != EINTR)
				fail("waitpid: %s", strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) != EXIT_SUCCESS) {
			fprintf(stderr, "%s: the %s failed (status 0x%x)\n", prog, roles[r].name,
				status);
			failed = true;
		}
	}

	/* The two branches of the fan-out read the very same slot. */
	for (uint64_t id = 0; id < nframes; id++)
		if (log[id].offset[TRACKER] != log[id].offset[RECORDER])
			moved++;
	printf("producer: %" PRIu32 " frames loaned, captured in place and pushed to 2 queues "
	       "at once, waited %" PRIu64 " times for room; %" PRIu64 " seen at different "
	       "offsets by the tracker and the recorder\n", nframes, waits, moved);
	if (moved)
		failed = true;

	for (int r = 0; r < NR_ROLES; r++) {
		if (!queue_report(q[r], nframes))
			failed = true;
		mmk_queue_close(q[r]);
	}

	/* Every frame was freed by mmk when its last holder let go. */
	printf("pool: %zu of %zu slots free\n", mmk_available(m), mmk_capacity(m));
	if (mmk_available(m) != mmk_capacity(m))
		failed = true;
	mmk_close(m);		/* the last session: the kernel frees the pool */
	munmap(log, (size_t)nframes * sizeof(*log));
	if (failed)
		fail("FAILED");
	printf("%s: OK\n", prog);
	return EXIT_SUCCESS;
}
