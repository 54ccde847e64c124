// SPDX-License-Identifier: GPL-2.0
/*
 * Crash robustness, side by side (a report, not a test):
 *
 *   mmk_bench --crash [ROUNDS]
 *
 * For mmk (a named pool and a named BLOCK queue of 64) and for iceoryx (a
 * publisher, and a subscriber queue of 64 that blocks the producer when
 * full), ROUNDS times (default 100):
 *
 *   1. a consumer process starts (fork and exec of this program, so that
 *      it is a new process with a runtime and a session of its own),
 *      attaches or subscribes, and says it is ready;
 *   2. the producer sends 32 messages of 4032 bytes; the consumer takes
 *      everything it is owed (32, plus what a queue kept for it), checks
 *      every byte, releases all but the last 16 and holds those;
 *   3. the producer sends 16 more (they wait in the consumer's queue);
 *   4. kill -9 of the consumer; the producer then times how long until
 *      the pool is whole again (mmk: every slot free but the ones the
 *      queue holds; iceoryx: every chunk of the test's mempool loanable
 *      again), up to 10 s, and sends 16 more, each within 1 s or not at
 *      all ("kept sending").
 *
 * Messages lost: sent, and never taken by any consumer (the next
 * consumer's first sequence number shows the gap).  Chunks leaked: not
 * back 10 s after the kill.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mmk/mmk.h>

#ifdef HAVE_ICEORYX
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/types.h"
#include "iceoryx_binding_c/wait_set.h"
#endif

#include "bench.h"

#define CR_SIZE		3968		/* payload; + a 64-byte header = 4032 */
#define CR_HDR		64
#define CR_DEPTH	64
#define CR_SEND		32
#define CR_HOLD		16
#define CR_MORE		16
#define CR_TYPE		0x6d6d6b6372617368ULL	/* "mmkcrash" */
#define CR_WAIT_NS	(10ULL * 1000000000ULL)
#define CR_PROBE_PUBS	8		/* iceoryx: chunks one publisher may loan: 8 */

/* What a consumer tells the producer before it is killed. */
struct cr_report {
	uint64_t taken;
	uint64_t first_seq;
	uint64_t last_seq;
	uint64_t mismatches;
};

struct cr_totals {
	uint64_t baseline;	/* busy with no consumer (iceoryx: the publisher's last chunk) */
	uint64_t rounds, sent, taken, lost, leaked, held_dead;
	uint64_t kept_rounds, send_fail;
	uint64_t whole_ns[256], send_ns[256];
	unsigned int n;
	bool failed;
};

struct cr_ops {
	const char *name;
	int (*setup)(void);
	int (*send)(uint64_t seq);
	uint64_t (*leftover)(void);	/* messages a queue kept for the next consumer */
	int (*in_use)(uint64_t *busy);	/* chunks busy beyond what queues hold */
	void (*teardown)(void);
};

static char cr_name[64];

/* ---- consumer ------------------------------------------------------------------------ */

static void cr_ready(int fd)
{
	char c = 'r';

	if (write(fd, &c, 1) != 1)
		_exit(1);
}

static void cr_finish(int fd, struct cr_report *rep)
{
	rep->mismatches = bench_mismatches;
	if (bench_write_full(fd, rep, sizeof(*rep)))
		_exit(1);
	for (;;)
		pause();	/* holding what it holds, until killed */
}

static void cr_take(struct cr_report *rep, const unsigned char *msg, uint64_t seq_field)
{
	if (!rep->taken)
		rep->first_seq = seq_field;
	rep->last_seq = seq_field;
	rep->taken++;
	bench_check(msg, CR_SIZE, seq_field);
}

static int cr_consume_mmk(const char *name, uint64_t expect, int fd)
{
	static struct mmk_read_guard g[CR_DEPTH + CR_SEND];
	struct cr_report rep = { 0 };
	struct mmk_manager *m;
	struct mmk_queue *q;
	uint64_t i;

	if (mmk_kernel_attach(name, CR_TYPE, &m) || mmk_queue_open(m, "crashq", &q))
		return 1;
	cr_ready(fd);
	for (i = 0; i < expect && i < CR_DEPTH + CR_SEND; i++) {
		if (mmk_queue_pop_wait(q, CR_WAIT_NS, &g[i]))
			return 1;
		cr_take(&rep, g[i].msg->payload, g[i].msg->header.sequence);
		if (i + CR_HOLD < expect && mmk_read_release(&g[i]))
			return 1;
	}
	cr_finish(fd, &rep);
	return 0;
}

#ifdef HAVE_ICEORYX
static int cr_consume_iox(const char *name, uint64_t expect, int fd)
{
	iox_notification_info_t info[1];
	struct cr_report rep = { 0 };
	struct timespec tmo = { .tv_sec = 1 };
	iox_sub_storage_t st;
	iox_ws_storage_t wst;
	iox_sub_options_t o;
	const void *chunk;
	uint64_t i, missed, t0;
	char rt[64];
	iox_sub_t sub;
	iox_ws_t ws;

	snprintf(rt, sizeof(rt), "mmkcrashc%d", (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(rt);
	iox_sub_options_init(&o);
	o.queueCapacity = CR_DEPTH;
	o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	sub = iox_sub_init(&st, "mmkcrash", name, "s", &o);
	ws = iox_ws_init(&wst);
	iox_ws_attach_subscriber_event(ws, sub, SubscriberEvent_DATA_RECEIVED, 0, NULL);
	t0 = bench_now_ns();
	while (iox_sub_get_subscription_state(sub) != SubscribeState_SUBSCRIBED) {
		if (bench_now_ns() - t0 > CR_WAIT_NS)
			return 1;
		usleep(1000);
	}
	cr_ready(fd);
	for (i = 0; i < expect; i++) {
		t0 = bench_now_ns();
		while (iox_sub_take_chunk(sub, &chunk) != ChunkReceiveResult_SUCCESS) {
			if (bench_now_ns() - t0 > CR_WAIT_NS)
				return 1;
			(void)iox_ws_timed_wait(ws, tmo, info, 1, &missed);
		}
		cr_take(&rep, (const unsigned char *)chunk + CR_HDR, *(const uint64_t *)chunk);
		if (i + CR_HOLD < expect)
			iox_sub_release_chunk(sub, chunk);
	}
	cr_finish(fd, &rep);
	return 0;
}
#endif

int bench_crash_consumer(int argc, char **argv)
{
	uint64_t expect;
	int fd;

	if (argc != 4)
		return 2;
	expect = strtoull(argv[2], NULL, 10);
	fd = atoi(argv[3]);
	if (!strcmp(argv[0], "mmk"))
		return cr_consume_mmk(argv[1], expect, fd);
#ifdef HAVE_ICEORYX
	if (!strcmp(argv[0], "iceoryx"))
		return cr_consume_iox(argv[1], expect, fd);
#endif
	return 2;
}

/* ---- mmk producer ---------------------------------------------------------------------- */

static struct mmk_manager *cr_m;
static struct mmk_queue *cr_q;
static void *cr_buf;

static int mmk_setup(void)
{
	struct mmk_config cfg = {
		.payload_size = CR_SIZE, .capacity = CR_DEPTH + CR_SEND,
		.payload_type = CR_TYPE, .memory_class = MMK_MEM_HOST, .mode = 0600,
		.name = cr_name,
	};
	struct mmk_queue_attr qa = { .name = "crashq", .policy = MMK_POLICY_BLOCK,
				     .cap_items = CR_DEPTH };

	cr_buf = bench_alloc(CR_SIZE);
	if (!cr_buf || mmk_kernel_create(&cfg, &cr_m) || mmk_queue_create(cr_m, &qa, &cr_q))
		return -1;
	return 0;
}

static int mmk_send(uint64_t seq)
{
	struct mmk_header h = { .sequence = seq };
	struct mmk_batch_op op = {
		.op = MMK_OP_STORE_PUSH, .queue = cr_q, .header = &h, .payload = cr_buf,
		.payload_size = CR_SIZE, .wait = true, .timeout_ns = 1000000000ULL,
	};

	bench_fill(cr_buf, CR_SIZE, seq);
	return mmk_batch(cr_m, &op, 1, NULL) ? -1 : 0;
}

static uint64_t mmk_leftover(void)
{
	struct mmk_occupancy o;

	return mmk_queue_occupancy(cr_q, &o) ? 0 : o.items;
}

static int mmk_in_use(uint64_t *busy)
{
	size_t used = mmk_capacity(cr_m) - mmk_available(cr_m);
	uint64_t queued = mmk_leftover();

	*busy = used > queued ? used - queued : 0;
	return 0;
}

static void mmk_teardown(void)
{
	mmk_queue_close(cr_q);
	mmk_close(cr_m);
	free(cr_buf);
}

static const struct cr_ops cr_mmk = {
	"mmk", mmk_setup, mmk_send, mmk_leftover, mmk_in_use, mmk_teardown,
};

/* ---- iceoryx producer ---------------------------------------------------------------- */

#ifdef HAVE_ICEORYX
static iox_pub_storage_t cr_pst, cr_probe_st[CR_PROBE_PUBS];
static iox_pub_t cr_pub, cr_probe[CR_PROBE_PUBS];

static int iox_setup(void)
{
	iox_pub_options_t o;
	char rt[64], ev[8];
	int i;

	snprintf(rt, sizeof(rt), "mmkcrashp%d", (int)getpid());
	/* The probe runs the mempool dry on purpose: no error log for that. */
	iox_set_loglevel(Iceoryx_LogLevel_Fatal);
	iox_runtime_init(rt);
	iox_pub_options_init(&o);
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	cr_pub = iox_pub_init(&cr_pst, "mmkcrash", cr_name, "s", &o);
	for (i = 0; i < CR_PROBE_PUBS; i++) {
		iox_pub_options_init(&o);
		snprintf(ev, sizeof(ev), "p%d", i);
		cr_probe[i] = iox_pub_init(&cr_probe_st[i], "mmkprobe", cr_name, ev, &o);
	}
	return 0;
}

static int iox_send_one(uint64_t seq)
{
	void *chunk;

	if (iox_pub_loan_chunk(cr_pub, &chunk, CR_HDR + CR_SIZE) != AllocationResult_SUCCESS)
		return -1;
	*(uint64_t *)chunk = seq;
	bench_fill((unsigned char *)chunk + CR_HDR, CR_SIZE, seq);
	iox_pub_publish_chunk(cr_pub, chunk);
	return 0;
}

static uint64_t iox_leftover(void)
{
	return 0;	/* a new subscriber asks for no history */
}

/* Busy chunks of the test's mempool (4096-byte chunks, 64 of them): loan
 * all of them through the probe publishers, count what fails. */
static int iox_in_use(uint64_t *busy)
{
	void *got[CR_PROBE_PUBS * 8];
	int by[CR_PROBE_PUBS * 8];
	int i, k, n = 0, err, null;

	/* iceoryx writes a line to stderr for a mempool run dry, whatever the
	 * log level: not here, where it is what the probe looks for. */
	fflush(stderr);
	err = dup(2);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (err >= 0 && null >= 0)
		dup2(null, 2);
	for (i = 0; i < CR_PROBE_PUBS; i++)
		for (k = 0; k < 8; k++)
			if (iox_pub_loan_chunk(cr_probe[i], &got[n], CR_HDR + CR_SIZE) ==
			    AllocationResult_SUCCESS)
				by[n++] = i;
	*busy = (uint64_t)(CR_DEPTH - n);
	for (k = 0; k < n; k++)
		iox_pub_release_chunk(cr_probe[by[k]], got[k]);
	if (err >= 0 && null >= 0)
		dup2(err, 2);
	if (err >= 0)
		close(err);
	if (null >= 0)
		close(null);
	return 0;
}

static void iox_teardown(void)
{
	int i;

	for (i = 0; i < CR_PROBE_PUBS; i++)
		iox_pub_deinit(cr_probe[i]);
	iox_pub_deinit(cr_pub);
}

static const struct cr_ops cr_iox = {
	"iceoryx", iox_setup, iox_send_one, iox_leftover, iox_in_use, iox_teardown,
};
#endif

/* ---- the driver --------------------------------------------------------------------------- */

static int cr_read_timeout(int fd, void *buf, size_t n, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return bench_read_full(fd, buf, n) == 1 ? 0 : -1;
}

static pid_t cr_spawn(const char *self, const char *sys, uint64_t expect, int *rfd)
{
	char e[32], f[16];
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	snprintf(e, sizeof(e), "%llu", (unsigned long long)expect);
	snprintf(f, sizeof(f), "%d", p[1]);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		execl(self, self, "--crash-consumer", sys, cr_name, e, f, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static void cr_round(const char *self, const struct cr_ops *ops, struct cr_totals *t,
		     uint64_t *seq, uint64_t *next_unseen)
{
	uint64_t expect = ops->leftover() + CR_SEND, busy = 0, t0, i;
	struct cr_report rep = { 0 };
	int rfd = -1, status, ok = 0;
	char c;
	pid_t pid;

	pid = cr_spawn(self, ops->name, expect, &rfd);
	if (pid < 0 || cr_read_timeout(rfd, &c, 1, 20000))
		goto fail;
	for (i = 0; i < CR_SEND; i++, t->sent++)
		if (ops->send((*seq)++))
			goto fail;
	if (cr_read_timeout(rfd, &rep, sizeof(rep), 20000) || rep.mismatches)
		goto fail;
	t->taken += rep.taken;
	if (rep.taken && rep.first_seq > *next_unseen)
		t->lost += rep.first_seq - *next_unseen;
	if (rep.taken)
		*next_unseen = rep.last_seq + 1;
	t->held_dead += CR_HOLD;
	for (i = 0; i < CR_MORE; i++, t->sent++)
		if (ops->send((*seq)++))
			goto fail;

	t0 = bench_now_ns();
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	/* Whole: nothing busy but what a queue holds for the next consumer. */
	while (!ops->in_use(&busy) && busy > t->baseline && bench_now_ns() - t0 < CR_WAIT_NS)
		usleep(200);
	if (t->n < 256)
		t->whole_ns[t->n] = bench_now_ns() - t0;
	t->leaked += busy > t->baseline ? busy - t->baseline : 0;

	t0 = bench_now_ns();
	for (i = 0; i < CR_MORE; i++, t->sent++) {
		uint64_t ts = bench_now_ns();

		if (ops->send((*seq)++) || bench_now_ns() - ts > 1000000000ULL)
			t->send_fail++;
		else
			ok++;
	}
	if (t->n < 256)
		t->send_ns[t->n++] = bench_now_ns() - t0;
	t->kept_rounds += ok == CR_MORE;
	t->rounds++;
	close(rfd);
	return;
fail:
	fprintf(stderr, "mmk_bench: crash %s: round %llu failed\n", ops->name,
		(unsigned long long)t->rounds + 1);
	t->failed = true;
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	if (rfd >= 0)
		close(rfd);
}

static void cr_print(const char *p, const struct cr_ops *ops, struct cr_totals *t)
{
	uint64_t w50 = t->n ? bench_quantile(t->whole_ns, t->n, 0.5) : 0;
	uint64_t wmax = t->n ? bench_quantile(t->whole_ns, t->n, 1.0) : 0;
	uint64_t s50 = t->n ? bench_quantile(t->send_ns, t->n, 0.5) : 0;

	printf("%s  %-8s %6llu %6llu %6llu %9llu %7llu %9.2f %9.2f %8llu/%llu %9.2f\n", p, ops->name,
	       (unsigned long long)t->rounds, (unsigned long long)t->sent,
	       (unsigned long long)t->taken, (unsigned long long)t->lost,
	       (unsigned long long)t->leaked, (double)w50 / 1e6, (double)wmax / 1e6,
	       (unsigned long long)t->kept_rounds, (unsigned long long)t->rounds,
	       (double)s50 / 1e6);
}

int bench_crash(const char *self, unsigned int rounds, const char *p)
{
	const struct cr_ops *sys[2] = { &cr_mmk, NULL };
	static struct cr_totals t;
	unsigned int s, r;
	int failed = 0;

#ifdef HAVE_ICEORYX
	if (link_iceoryx.available())
		sys[1] = &cr_iox;
#endif
	printf("%scrash robustness: %u times, kill -9 of a consumer holding %d received"
	       " messages, %d more waiting in its queue\n", p, rounds, CR_HOLD, CR_MORE);
	printf("%s  (lost = sent, never taken by a consumer; leaked = chunks not back 10 s after"
	       " the kill;\n%s   whole = kill to the pool whole again, ms; kept = rounds where"
	       " %d sends after the kill each took < 1 s; send = their time, ms)\n",
	       p, p, CR_MORE);
	printf("%s  %-8s %6s %6s %6s %9s %7s %9s %9s %10s %9s\n", p, "system", "rounds", "sent",
	       "taken", "lost", "leaked", "whole p50", "whole max", "kept", "send p50");
	for (s = 0; s < 2; s++) {
		uint64_t seq = 1, next_unseen = 1;

		if (!sys[s])
			continue;
		memset(&t, 0, sizeof(t));
		snprintf(cr_name, sizeof(cr_name), "mmkcrash%d%s", (int)getpid(), sys[s]->name);
		if (sys[s]->setup()) {
			fprintf(stderr, "mmk_bench: crash %s: setup failed\n", sys[s]->name);
			failed = 1;
			continue;
		}
		/* What is busy with nobody consuming, once the producer has sent:
		 * iceoryx's publisher keeps its last chunk, to reuse it. */
		if (sys[s] != &cr_mmk && (sys[s]->send(0) || sys[s]->in_use(&t.baseline)))
			t.failed = true;
		for (r = 0; r < rounds && !t.failed; r++)
			cr_round(self, sys[s], &t, &seq, &next_unseen);
		cr_print(p, sys[s], &t);
		sys[s]->teardown();
		failed |= t.failed;
	}
	if (!sys[1])
		printf("%s  iceoryx: not available here (no RouDi running)\n", p);
	printf("%s  (taken counts what consumers took; messages a queue still holds at the end"
	       " are neither taken nor lost)\n", p);
	return failed;
}
