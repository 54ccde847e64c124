/* SPDX-License-Identifier: GPL-2.0 */
/*
 * queue_lockstep.h - queue operations on two managers in lockstep.
 *
 * Shared by diff_test (the heap manager against a kernel pool, or against
 * a static manager) and the fuzzer fuzz_ops (heap against static).  The
 * caller gives two managers of the same configuration, side 0 and side 1,
 * and a source of choices; qls_step() draws one queue operation (store,
 * loan, push, fan-out push, store-push, commit-push, pop, write pop, pop
 * of N, peek, peek_at, release, free, a batch that releases, pushes and
 * pops, close a queue with messages inside and make it again with other
 * caps and another policy) and applies it to both sides.  After every
 * step both sides must have returned the same error and outcome, popped
 * the same message (the token pair both stores returned), read the same
 * bytes, and have the same free slots and, for every queue, the same
 * occupancy and counters.  The first difference is described in
 * qls->why and qls_step() returns false.
 *
 * Policies: every queue is made again from time to time with a policy
 * drawn from all five, caps of 1 to QLS_ITEMS items, and a byte cap (with
 * or without a soft one) half of the time.  Messages get a QoS class and,
 * sometimes, a deadline long past or far ahead.
 */
#ifndef MMK_QUEUE_LOCKSTEP_H
#define MMK_QUEUE_LOCKSTEP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mmk/mmk.h>

#define QLS_QUEUES	4
#define QLS_ITEMS	8	/* largest queue */
#define QLS_TOKENS	64	/* token pairs remembered */
#define QLS_READS	24	/* read guards held at once */
#define QLS_WRITES	4	/* write guards held at once */
#define QLS_PAYLOAD	96	/* largest payload stored */

/* Choices: a number below @n, from the caller's random source. */
typedef uint32_t (*qls_pick_fn)(void *ctx, uint32_t n);

enum qls_op {
	QLS_STORE, QLS_LOAN, QLS_PUSH, QLS_FANOUT, QLS_STORE_PUSH, QLS_COMMIT_PUSH,
	QLS_POP, QLS_POP_WRITE, QLS_POP_BATCH, QLS_PEEK, QLS_RELEASE, QLS_WRITE_END,
	QLS_FREE, QLS_BATCH, QLS_REOPEN, QLS_NR_OPS,
};

static const char *const qls_op_name[QLS_NR_OPS] = {
	"store", "loan", "push", "fanout", "store_push", "commit_push", "pop", "pop_write",
	"pop_batch", "peek", "release", "write_end", "free", "batch", "reopen",
};

struct qls {
	struct mmk_manager *m[2];
	struct mmk_queue *q[2][QLS_QUEUES];
	/* Storage for static sides (NULL entries for other backends). */
	struct mmk_queue_storage *storage[2][QLS_QUEUES];
	struct mmk_queue_attr attr[QLS_QUEUES];
	uint64_t tok[QLS_TOKENS][2];
	uint32_t ntok;
	struct mmk_read_guard rg[QLS_READS][2];
	uint32_t nrg;
	struct mmk_write_guard wg[QLS_WRITES][2];
	uint32_t nwg;
	qls_pick_fn pick;
	void *ctx;
	uint64_t ops[QLS_NR_OPS];
	uint64_t errs[QLS_NR_OPS][MMK_E_QUEUE_EMPTY + 1];
	uint64_t drops, evictions;
	char why[512];
};

static uint32_t qls_pick(struct qls *s, uint32_t n)
{
	return n ? s->pick(s->ctx, n) % n : 0;
}

static bool __attribute__((format(printf, 2, 3))) qls_fail(struct qls *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return false;
}

/* Both sides' errors must agree; counted per op. */
static bool qls_same(struct qls *s, enum qls_op op, enum mmk_error e0, enum mmk_error e1)
{
	if (e0 != e1)
		return qls_fail(s, "%s: %s on side 0, %s on side 1", qls_op_name[op],
				mmk_error_name(e0), mmk_error_name(e1));
	if ((unsigned int)e0 <= MMK_E_QUEUE_EMPTY)
		s->errs[op][e0]++;
	return true;
}

static void qls_remember(struct qls *s, uint64_t t0, uint64_t t1)
{
	s->tok[s->ntok % QLS_TOKENS][0] = t0;
	s->tok[s->ntok % QLS_TOKENS][1] = t1;
	s->ntok++;
}

/* A remembered pair, or a pair of invalid tokens if none. */
static const uint64_t *qls_token(struct qls *s)
{
	static const uint64_t none[2] = { MMK_TOKEN_INVALID, MMK_TOKEN_INVALID };
	uint32_t n = s->ntok < QLS_TOKENS ? s->ntok : QLS_TOKENS;

	if (!n || !qls_pick(s, 16))
		return none;
	/* Mostly the latest ones, which are likely alive. */
	if (qls_pick(s, 4))
		return s->tok[(s->ntok - 1 - qls_pick(s, n < 6 ? n : 6)) % QLS_TOKENS];
	return s->tok[qls_pick(s, n)];
}

/* Side 1's token must be the one remembered with side 0's. */
static bool qls_pair_ok(struct qls *s, const char *what, uint64_t t0, uint64_t t1)
{
	for (uint32_t i = 0; i < QLS_TOKENS && i < s->ntok; i++)
		if (s->tok[i][0] == t0)
			return s->tok[i][1] == t1 ? true :
			       qls_fail(s, "%s: side 1 gave another message (%#llx/%#llx)", what,
					(unsigned long long)t0, (unsigned long long)t1);
	return true;	/* forgotten: cannot tell */
}

static bool qls_msg_same(struct qls *s, const char *what, const struct mmk_message *a,
			 const struct mmk_message *b)
{
	if (!a || !b)
		return a == b ? true : qls_fail(s, "%s: a message on one side only", what);
	if (memcmp(&a->header, &b->header, sizeof(a->header)) ||
	    (a->header.payload_size <= QLS_PAYLOAD &&
	     memcmp(a->payload, b->payload, a->header.payload_size)))
		return qls_fail(s, "%s: the messages differ", what);
	return true;
}

static bool qls_outcome_same(struct qls *s, enum qls_op op, const struct mmk_push_outcome *o)
{
	if (o[0].dropped != o[1].dropped || o[0].evicted != o[1].evicted)
		return qls_fail(s, "%s: outcome dropped %u evicted %u, side 1 %u %u",
				qls_op_name[op], o[0].dropped, o[0].evicted, o[1].dropped,
				o[1].evicted);
	s->drops += o[0].dropped != 0;
	s->evictions += o[0].evicted;
	return true;
}

/* A header drawn for a message: QoS, and sometimes a deadline. */
static void qls_header(struct qls *s, struct mmk_header *h, uint32_t seq)
{
	static const uint64_t deadlines[] = { 1, UINT64_MAX / 2 };

	memset(h, 0, sizeof(*h));
	h->sequence = seq;
	h->qos = (uint8_t)qls_pick(s, 4);
	if (!qls_pick(s, 3)) {
		h->flags = MMK_MSG_HAS_DEADLINE;
		h->deadline_ns = deadlines[qls_pick(s, 2)];
	}
}

static void qls_payload(unsigned char *p, uint32_t size, uint32_t seed)
{
	for (uint32_t i = 0; i < size; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7);
}

/* A new queue @i on both sides, with a random policy and caps. */
static bool qls_make_queue(struct qls *s, uint32_t i)
{
	struct mmk_queue_attr a = { 0 };
	enum mmk_error e[2];

	a.policy = (enum mmk_queue_policy)qls_pick(s, 5);
	a.cap_items = 1 + qls_pick(s, QLS_ITEMS);
	a.soft_items = qls_pick(s, a.cap_items + 1);
	if (qls_pick(s, 2)) {
		a.cap_bytes = 1 + qls_pick(s, 3 * QLS_PAYLOAD);
		a.soft_bytes = qls_pick(s, 2) ? qls_pick(s, (uint32_t)a.cap_bytes + 1) : 0;
	}
	s->attr[i] = a;
	for (int k = 0; k < 2; k++) {
		a.storage = s->storage[k][i];
		e[k] = mmk_queue_create(s->m[k], &a, &s->q[k][i]);
	}
	if (!qls_same(s, QLS_REOPEN, e[0], e[1]))
		return false;
	if (e[0])
		return qls_fail(s, "creating queue %u: %s", i, mmk_error_name(e[0]));
	return true;
}

/* Take the guard arrays' entries @i out by moving the last one there. */
static void qls_drop_read(struct qls *s, uint32_t i)
{
	s->nrg--;
	memcpy(s->rg[i], s->rg[s->nrg], sizeof(s->rg[i]));
}

static void qls_drop_write(struct qls *s, uint32_t i)
{
	s->nwg--;
	memcpy(s->wg[i], s->wg[s->nwg], sizeof(s->wg[i]));
}

/* Keep read guards popped on both sides. */
static bool qls_keep_reads(struct qls *s, const char *what, struct mmk_read_guard *g0,
			   struct mmk_read_guard *g1)
{
	if (!qls_pair_ok(s, what, g0->token, g1->token) || !qls_msg_same(s, what, g0->msg, g1->msg))
		return false;
	if (s->nrg < QLS_READS) {
		s->rg[s->nrg][0] = *g0;
		s->rg[s->nrg][1] = *g1;
		s->nrg++;
		return true;
	}
	/* Full: give them back at once. */
	return qls_same(s, QLS_RELEASE, mmk_read_release(g0), mmk_read_release(g1));
}

/* Every queue's occupancy and counters, and the free slots, agree. */
static bool qls_check(struct qls *s, enum qls_op op)
{
	if (mmk_available(s->m[0]) != mmk_available(s->m[1]))
		return qls_fail(s, "after %s: %zu free slots, side 1 %zu", qls_op_name[op],
				mmk_available(s->m[0]), mmk_available(s->m[1]));
	for (uint32_t i = 0; i < QLS_QUEUES; i++) {
		struct mmk_queue_stats st[2];

		for (int k = 0; k < 2; k++)
			if (mmk_queue_stats(s->q[k][i], &st[k]))
				return qls_fail(s, "after %s: stats of queue %u failed", qls_op_name[op], i);
		if (st[0].occupancy.items != st[1].occupancy.items ||
		    st[0].occupancy.bytes != st[1].occupancy.bytes ||
		    st[0].occupancy.watermark != st[1].occupancy.watermark ||
		    st[0].high_items != st[1].high_items || st[0].pushes != st[1].pushes ||
		    st[0].pops != st[1].pops || st[0].rejected != st[1].rejected ||
		    memcmp(st[0].drops, st[1].drops, sizeof(st[0].drops)) ||
		    st[0].soft_items != st[1].soft_items || st[0].soft_bytes != st[1].soft_bytes)
			return qls_fail(s, "after %s: queue %u (policy %d, cap %u/%u, bytes %llu/%llu): "
					"items %u/%u high %u/%u bytes %llu/%llu wm %d/%d pushes %llu/%llu "
					"pops %llu/%llu rejected %llu/%llu drops %llu,%llu,%llu,%llu/"
					"%llu,%llu,%llu,%llu", qls_op_name[op], i, s->attr[i].policy,
					s->attr[i].cap_items, s->attr[i].soft_items,
					(unsigned long long)s->attr[i].cap_bytes,
					(unsigned long long)s->attr[i].soft_bytes,
					st[0].occupancy.items, st[1].occupancy.items,
					st[0].high_items, st[1].high_items,
					(unsigned long long)st[0].occupancy.bytes,
					(unsigned long long)st[1].occupancy.bytes,
					st[0].occupancy.watermark, st[1].occupancy.watermark,
					(unsigned long long)st[0].pushes, (unsigned long long)st[1].pushes,
					(unsigned long long)st[0].pops, (unsigned long long)st[1].pops,
					(unsigned long long)st[0].rejected,
					(unsigned long long)st[1].rejected,
					(unsigned long long)st[0].drops[0], (unsigned long long)st[0].drops[1],
					(unsigned long long)st[0].drops[2], (unsigned long long)st[0].drops[3],
					(unsigned long long)st[1].drops[0], (unsigned long long)st[1].drops[1],
					(unsigned long long)st[1].drops[2], (unsigned long long)st[1].drops[3]);
	}
	return true;
}

/* Store a message on both sides (plain, or with a queue: @q < QLS_QUEUES). */
static bool qls_store(struct qls *s, enum qls_op op, uint32_t q)
{
	unsigned char pay[QLS_PAYLOAD];
	struct mmk_push_outcome o[2];
	struct mmk_header h;
	enum mmk_error e[2];
	uint64_t t[2];
	uint32_t size = qls_pick(s, QLS_PAYLOAD + 1), seq = (uint32_t)s->ops[op];

	qls_header(s, &h, seq);
	qls_payload(pay, size, seq);
	for (int k = 0; k < 2; k++)
		e[k] = op == QLS_STORE ? mmk_store(s->m[k], &h, pay, size, &t[k]) :
		       mmk_queue_store_push(s->q[k][q], &h, pay, size, &t[k], &o[k]);
	if (!qls_same(s, op, e[0], e[1]))
		return false;
	if (op != QLS_STORE && !e[0] && !qls_outcome_same(s, op, o))
		return false;
	if ((t[0] == MMK_TOKEN_INVALID) != (t[1] == MMK_TOKEN_INVALID))
		return qls_fail(s, "%s: a token on one side only", qls_op_name[op]);
	if (t[0] != MMK_TOKEN_INVALID)
		qls_remember(s, t[0], t[1]);
	return true;
}

static bool qls_loan(struct qls *s)
{
	struct mmk_write_guard g[2];
	enum mmk_error e[2];
	struct mmk_header h;
	uint32_t size, seq = (uint32_t)s->ops[QLS_LOAN];

	if (s->nwg >= QLS_WRITES)
		return true;
	for (int k = 0; k < 2; k++)
		e[k] = mmk_loan(s->m[k], &g[k]);
	if (!qls_same(s, QLS_LOAN, e[0], e[1]))
		return false;
	if (e[0])
		return true;
	qls_remember(s, g[0].token, g[1].token);
	/* Write the message now: committed or published later. */
	qls_header(s, &h, seq);
	size = qls_pick(s, QLS_PAYLOAD + 1);
	for (int k = 0; k < 2; k++) {
		g[k].msg->header = h;
		g[k].msg->header.payload_size = size;
		qls_payload(g[k].msg->payload, size, seq);
		s->wg[s->nwg][k] = g[k];
	}
	s->nwg++;
	return true;
}

static bool qls_push(struct qls *s, enum qls_op op)
{
	struct mmk_queue *qs[2][3];
	struct mmk_push_outcome o[2];
	enum mmk_error e[2];
	const uint64_t *t = qls_token(s);
	uint32_t n = op == QLS_FANOUT ? 2 + qls_pick(s, 2) : 1, first = qls_pick(s, QLS_QUEUES);

	for (uint32_t i = 0; i < n; i++)
		for (int k = 0; k < 2; k++)
			qs[k][i] = s->q[k][(first + i) % QLS_QUEUES];
	for (int k = 0; k < 2; k++)
		e[k] = mmk_queue_try_push_many(qs[k], n, t[k], &o[k]);
	return qls_same(s, op, e[0], e[1]) && qls_outcome_same(s, op, o);
}

static bool qls_commit_push(struct qls *s)
{
	struct mmk_push_outcome o[2];
	enum mmk_error e[2];
	uint32_t q = qls_pick(s, QLS_QUEUES), i;

	if (!s->nwg)
		return qls_loan(s);
	i = qls_pick(s, s->nwg);
	for (int k = 0; k < 2; k++)
		e[k] = mmk_queue_commit_push(s->q[k][q], &s->wg[i][k], &o[k]);
	if (!qls_same(s, QLS_COMMIT_PUSH, e[0], e[1]) || !qls_outcome_same(s, QLS_COMMIT_PUSH, o))
		return false;
	if (!e[0])
		qls_drop_write(s, i);
	return true;
}

static bool qls_pop(struct qls *s, enum qls_op op)
{
	struct mmk_read_guard g[2][4];
	enum mmk_error e[2];
	size_t n[2] = { 1, 1 };
	uint32_t q = qls_pick(s, QLS_QUEUES), max = 1 + qls_pick(s, 4);

	if (op == QLS_POP_WRITE) {
		struct mmk_write_guard w[2];

		for (int k = 0; k < 2; k++)
			e[k] = mmk_queue_try_pop_write(s->q[k][q], &w[k]);
		if (!qls_same(s, op, e[0], e[1]))
			return false;
		if (e[0])
			return true;
		if (!qls_pair_ok(s, "pop_write", w[0].token, w[1].token) ||
		    !qls_msg_same(s, "pop_write", w[0].msg, w[1].msg))
			return false;
		if (s->nwg < QLS_WRITES) {
			s->wg[s->nwg][0] = w[0];
			s->wg[s->nwg][1] = w[1];
			s->nwg++;
			return true;
		}
		return qls_same(s, QLS_WRITE_END, mmk_write_release(&w[0]), mmk_write_release(&w[1]));
	}
	for (int k = 0; k < 2; k++)
		e[k] = op == QLS_POP ? mmk_queue_try_pop(s->q[k][q], &g[k][0]) :
		       mmk_queue_try_pop_batch(s->q[k][q], g[k], max, &n[k]);
	if (!qls_same(s, op, e[0], e[1]))
		return false;
	if (e[0])
		return true;
	if (n[0] != n[1])
		return qls_fail(s, "pop_batch: %zu popped, side 1 %zu", n[0], n[1]);
	for (size_t i = 0; i < n[0]; i++)
		if (!qls_keep_reads(s, qls_op_name[op], &g[0][i], &g[1][i]))
			return false;
	return true;
}

static bool qls_peek(struct qls *s)
{
	struct mmk_queue_entry e[2];
	enum mmk_error err[2];
	uint32_t q = qls_pick(s, QLS_QUEUES), at = qls_pick(s, QLS_ITEMS + 1);

	for (int k = 0; k < 2; k++)
		err[k] = at ? mmk_queue_try_peek_at(s->q[k][q], at - 1, &e[k]) :
		       mmk_queue_try_peek(s->q[k][q], &e[k]);
	if (!qls_same(s, QLS_PEEK, err[0], err[1]))
		return false;
	if (err[0])
		return true;
	if (e[0].payload_size != e[1].payload_size || e[0].qos != e[1].qos ||
	    e[0].flags != e[1].flags || e[0].deadline_ns != e[1].deadline_ns)
		return qls_fail(s, "peek: the entries differ");
	return qls_pair_ok(s, "peek", e[0].token, e[1].token) &&
	       qls_msg_same(s, "peek", e[0].msg, e[1].msg);
}

static bool qls_release(struct qls *s)
{
	uint32_t i;

	if (!s->nrg)
		return true;
	i = qls_pick(s, s->nrg);
	if (!qls_same(s, QLS_RELEASE, mmk_read_release(&s->rg[i][0]), mmk_read_release(&s->rg[i][1])))
		return false;
	qls_drop_read(s, i);
	return true;
}

/* Publish or cancel a loan or write guard (a popped one: the message goes). */
static bool qls_write_end(struct qls *s)
{
	enum mmk_error e[2];
	bool cancel = qls_pick(s, 2);
	uint32_t i;

	if (!s->nwg)
		return true;
	i = qls_pick(s, s->nwg);
	for (int k = 0; k < 2; k++)
		e[k] = cancel ? mmk_write_cancel(&s->wg[i][k]) : mmk_write_release(&s->wg[i][k]);
	if (!qls_same(s, QLS_WRITE_END, e[0], e[1]))
		return false;
	if (!e[0])
		qls_drop_write(s, i);
	return true;
}

static bool qls_free(struct qls *s)
{
	const uint64_t *t = qls_token(s);

	return qls_same(s, QLS_FREE, mmk_free(s->m[0], t[0]), mmk_free(s->m[1], t[1]));
}

/* A consumer's hop: release a guard, push a message, pop the next. */
static bool qls_batch(struct qls *s)
{
	struct mmk_batch_op ops[2][3];
	enum mmk_error e[2];
	size_t done[2], n = 0;
	const uint64_t *t = qls_token(s);
	uint32_t rel = s->nrg ? qls_pick(s, s->nrg) : 0, qp = qls_pick(s, QLS_QUEUES);
	uint32_t qo = qls_pick(s, QLS_QUEUES);
	bool released = false;

	memset(ops, 0, sizeof(ops));
	if (s->nrg && qls_pick(s, 2)) {
		for (int k = 0; k < 2; k++)
			ops[k][n] = (struct mmk_batch_op){ .op = MMK_OP_READ_RELEASE,
							   .token = s->rg[rel][k].token };
		n++;
		released = true;
	}
	for (int k = 0; k < 2; k++) {
		ops[k][n] = (struct mmk_batch_op){ .op = MMK_OP_PUSH, .queue = s->q[k][qp],
						   .token = t[k] };
		ops[k][n + 1] = (struct mmk_batch_op){ .op = MMK_OP_POP, .queue = s->q[k][qo] };
	}
	n += 2;
	for (int k = 0; k < 2; k++)
		e[k] = mmk_batch(s->m[k], ops[k], n, &done[k]);
	if (!qls_same(s, QLS_BATCH, e[0], e[1]))
		return false;
	if (done[0] != done[1])
		return qls_fail(s, "batch: %zu done, side 1 %zu", done[0], done[1]);
	for (size_t i = 0; i < n; i++)
		if (ops[0][i].result != ops[1][i].result)
			return qls_fail(s, "batch op %zu: %s, side 1 %s", i,
					mmk_error_name(ops[0][i].result),
					mmk_error_name(ops[1][i].result));
	if (released && done[0] >= 1) {
		/* The guard struct of a batch-released guard is stale now. */
		s->rg[rel][0].owner = NULL;
		s->rg[rel][1].owner = NULL;
		qls_drop_read(s, rel);
	}
	if (done[0] >= n - 1 && !qls_outcome_same(s, QLS_BATCH, (struct mmk_push_outcome[2]){
			ops[0][n - 2].outcome, ops[1][n - 2].outcome }))
		return false;
	if (done[0] == n) {
		struct mmk_read_guard g[2];

		for (int k = 0; k < 2; k++)
			g[k] = (struct mmk_read_guard){ .msg = ops[k][n - 1].msg,
							.token = ops[k][n - 1].token,
							.owner = s->m[k] };
		return qls_keep_reads(s, "batch pop", &g[0], &g[1]);
	}
	return true;
}

/* Close a queue with whatever it holds, and make it again. */
static bool qls_reopen(struct qls *s)
{
	uint32_t i = qls_pick(s, QLS_QUEUES);

	for (int k = 0; k < 2; k++)
		mmk_queue_close(s->q[k][i]);
	return qls_make_queue(s, i);
}

/*
 * Start: @m0 and @m1 of the same configuration, with no queue.  Static
 * sides need @storage[side][i] with QLS_ITEMS items each.  Returns false
 * (reason in why) if the queues cannot be made alike.
 */
static bool qls_init(struct qls *s, struct mmk_manager *m0, struct mmk_manager *m1,
		     struct mmk_queue_storage *const storage[2][QLS_QUEUES], qls_pick_fn pick,
		     void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->m[0] = m0;
	s->m[1] = m1;
	s->pick = pick;
	s->ctx = ctx;
	if (storage)
		memcpy(s->storage, storage, sizeof(s->storage));
	for (uint32_t i = 0; i < QLS_QUEUES; i++)
		if (!qls_make_queue(s, i))
			return false;
	return true;
}

/* One operation on both sides, then the checks. */
static bool qls_step(struct qls *s)
{
	static const uint8_t weight[QLS_NR_OPS] = {
		[QLS_STORE] = 6, [QLS_LOAN] = 2, [QLS_PUSH] = 14, [QLS_FANOUT] = 5,
		[QLS_STORE_PUSH] = 10, [QLS_COMMIT_PUSH] = 3, [QLS_POP] = 10, [QLS_POP_WRITE] = 4,
		[QLS_POP_BATCH] = 4, [QLS_PEEK] = 5, [QLS_RELEASE] = 18, [QLS_WRITE_END] = 3,
		[QLS_FREE] = 5, [QLS_BATCH] = 6, [QLS_REOPEN] = 1,
	};
	uint32_t total = 0, r;
	enum qls_op op = QLS_STORE;
	bool ok;

	for (int i = 0; i < QLS_NR_OPS; i++)
		total += weight[i];
	r = qls_pick(s, total);
	for (int i = 0; i < QLS_NR_OPS; i++) {
		if (r < weight[i]) {
			op = (enum qls_op)i;
			break;
		}
		r -= weight[i];
	}
	s->ops[op]++;
	switch (op) {
	case QLS_STORE:
		ok = qls_store(s, op, 0);
		break;
	case QLS_STORE_PUSH:
		ok = qls_store(s, op, qls_pick(s, QLS_QUEUES));
		break;
	case QLS_LOAN:
		ok = qls_loan(s);
		break;
	case QLS_PUSH:
	case QLS_FANOUT:
		ok = qls_push(s, op);
		break;
	case QLS_COMMIT_PUSH:
		ok = qls_commit_push(s);
		break;
	case QLS_POP:
	case QLS_POP_WRITE:
	case QLS_POP_BATCH:
		ok = qls_pop(s, op);
		break;
	case QLS_PEEK:
		ok = qls_peek(s);
		break;
	case QLS_RELEASE:
		ok = qls_release(s);
		break;
	case QLS_WRITE_END:
		ok = qls_write_end(s);
		break;
	case QLS_FREE:
		ok = qls_free(s);
		break;
	case QLS_BATCH:
		ok = qls_batch(s);
		break;
	default:
		ok = qls_reopen(s);
		break;
	}
	return ok && qls_check(s, op);
}

/* Close every queue (releasing what they hold) and drop every guard. */
static bool qls_fini(struct qls *s)
{
	bool ok = true;

	while (ok && s->nrg)
		ok = qls_release(s);
	while (ok && s->nwg) {
		ok = qls_same(s, QLS_WRITE_END, mmk_write_cancel(&s->wg[0][0]),
			      mmk_write_cancel(&s->wg[0][1]));
		qls_drop_write(s, 0);
	}
	for (uint32_t i = 0; i < QLS_QUEUES; i++)
		for (int k = 0; k < 2; k++)
			mmk_queue_close(s->q[k][i]);
	if (ok && mmk_available(s->m[0]) != mmk_available(s->m[1]))
		ok = qls_fail(s, "after closing the queues: %zu free slots, side 1 %zu",
			      mmk_available(s->m[0]), mmk_available(s->m[1]));
	return ok;
}

#endif /* MMK_QUEUE_LOCKSTEP_H */
