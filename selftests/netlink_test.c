// SPDX-License-Identifier: GPL-2.0
/*
 * The "mmk" generic netlink family (docs/netlink/mmk.yaml): pool get by
 * id, by name and by dump, the numbers it reports against what each test
 * just did, who sees which pool, the monitor group's events, dumps that
 * resume over 1,000 pools, and malformed requests; the queues of a pool
 * and their counters after pushes, pops and drops, and its sessions: who
 * holds what, from processes holding guards, loans and popped messages.
 *
 * The tests run as root, talk netlink through mmk_nl.h (raw sockets, so
 * that they can also send what a library would refuse to), and take other
 * identities in forked children.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <sys/resource.h>

#include "mmk_test.h"
#include "mmk_mgmt.h"
#include "mmk_nl.h"
#include "kselftest_harness.h"

#define TYPE		0x6e6c5f7465737431ULL	/* "nl_test1" */
#define PAYLOAD		100U
#define DUMP_POOLS	1000U

static const char *const cmd_names[] = {
	[MMK_CMD_POOL_GET]		= "pool-get",
	[MMK_CMD_POOL_CREATED_NTF]	= "created",
	[MMK_CMD_POOL_DESTROYED_NTF]	= "destroyed",
	[MMK_CMD_POOL_EXHAUSTED_NTF]	= "exhausted",
	[MMK_CMD_SLOT_POISONED_NTF]	= "poisoned",
	[MMK_CMD_QUEUE_GET]		= "queue-get",
	[MMK_CMD_SESSION_GET]		= "session-get",
};

static const char *cmd_name(uint8_t cmd)
{
	return cmd < ARRAY_SIZE(cmd_names) && cmd_names[cmd] ? cmd_names[cmd] : "?";
}

/* Attribute widths of the family; 0: a string, or not sent. */
static const uint8_t attr_width[MMK_A_POOL_MAX + 1] = {
	[MMK_A_POOL_ID] = 4, [MMK_A_POOL_FLAGS] = 4, [MMK_A_POOL_PAYLOAD_SIZE] = 4,
	[MMK_A_POOL_SLOT_SIZE] = 4, [MMK_A_POOL_CAPACITY] = 4, [MMK_A_POOL_AVAILABLE] = 4,
	[MMK_A_POOL_MAP_SIZE] = 8, [MMK_A_POOL_SESSIONS] = 4, [MMK_A_POOL_READ_GUARDS] = 4,
	[MMK_A_POOL_WRITE_GUARDS] = 4, [MMK_A_POOL_POISONED] = 4, [MMK_A_POOL_STORES] = 8,
	[MMK_A_POOL_FREES] = 8, [MMK_A_POOL_NO_FREE_SLOTS] = 8, [MMK_A_POOL_MEMORY_CLASS] = 4,
	[MMK_A_POOL_OWNER_UID] = 4, [MMK_A_POOL_OWNER_GID] = 4, [MMK_A_POOL_MODE] = 4,
	[MMK_A_POOL_PAYLOAD_TYPE] = 8, [MMK_A_POOL_TOKEN] = 8, [MMK_A_POOL_QUEUES] = 4,
	[MMK_A_POOL_IPC_NS] = 4,
};

/* What a pool message must say, as the ioctl reports it. */
static void expect_pool_is(struct __test_metadata *_metadata, const struct mmk_nl_msg *m,
			   const struct mmk_pool_info *info)
{
	int a;

	ASSERT_NE(NULL, m);
	EXPECT_EQ(0U, m->unknown);
	for (a = 1; a <= MMK_A_POOL_MAX; a++) {
		if (m->has[a] && attr_width[a]) {
			EXPECT_EQ(attr_width[a], m->len[a]) TH_LOG("attribute %d", a);
		}
	}
	EXPECT_FALSE(m->has[MMK_A_POOL_TOKEN]);
	EXPECT_EQ(info->pool_id, m->val[MMK_A_POOL_ID]);
	EXPECT_EQ(!!info->name[0], m->has[MMK_A_POOL_NAME]);
	if (info->name[0]) {
		EXPECT_STREQ(info->name, m->name);
	}
	EXPECT_EQ(info->flags, m->val[MMK_A_POOL_FLAGS]);
	EXPECT_EQ(info->payload_size, m->val[MMK_A_POOL_PAYLOAD_SIZE]);
	EXPECT_EQ(info->slot_size, m->val[MMK_A_POOL_SLOT_SIZE]);
	EXPECT_EQ(info->capacity, m->val[MMK_A_POOL_CAPACITY]);
	EXPECT_EQ(info->available, m->val[MMK_A_POOL_AVAILABLE]);
	EXPECT_EQ(info->map_size, m->val[MMK_A_POOL_MAP_SIZE]);
	EXPECT_EQ(info->sessions, m->val[MMK_A_POOL_SESSIONS]);
	EXPECT_EQ(info->read_guards, m->val[MMK_A_POOL_READ_GUARDS]);
	EXPECT_EQ(info->write_guards, m->val[MMK_A_POOL_WRITE_GUARDS]);
	EXPECT_EQ(info->poisoned, m->val[MMK_A_POOL_POISONED]);
	EXPECT_EQ(info->stores, m->val[MMK_A_POOL_STORES]);
	EXPECT_EQ(info->frees, m->val[MMK_A_POOL_FREES]);
	EXPECT_EQ(info->no_free_slots, m->val[MMK_A_POOL_NO_FREE_SLOTS]);
	EXPECT_EQ(info->memory_class, m->val[MMK_A_POOL_MEMORY_CLASS]);
	EXPECT_EQ(info->owner_uid, m->val[MMK_A_POOL_OWNER_UID]);
	EXPECT_EQ(info->owner_gid, m->val[MMK_A_POOL_OWNER_GID]);
	EXPECT_EQ(info->mode, m->val[MMK_A_POOL_MODE]);
	EXPECT_EQ(info->payload_type, m->val[MMK_A_POOL_PAYLOAD_TYPE]);
	EXPECT_TRUE(m->has[MMK_A_POOL_QUEUES]);
	/* Every pool of these tests lives in the test's IPC namespace. */
	EXPECT_TRUE(m->has[MMK_A_POOL_IPC_NS]);
	EXPECT_EQ(mmk_self_ipc_ns(), m->val[MMK_A_POOL_IPC_NS]);
}

/* Get pool @id (or @name) and return its one message; asserts success. */
static const struct mmk_nl_msg *get_one(struct __test_metadata *_metadata, struct mmk_nl *nl,
					uint32_t id, const char *name, struct mmk_nl_reply *r)
{
	ASSERT_EQ(0, mmk_nl_get(nl, id, name, r));
	EXPECT_EQ(0, r->error) TH_LOG("extack: \"%s\"", r->extack);
	EXPECT_TRUE(r->acked);
	EXPECT_EQ(1U, r->nr);
	if (r->nr != 1)
		return NULL;
	EXPECT_EQ(MMK_CMD_POOL_GET, r->msgs[0].cmd);
	return &r->msgs[0];
}

FIXTURE(nl) {
	struct mmk_nl nl;
	char prefix[32];
};

FIXTURE_SETUP(nl)
{
	int ret = mmk_nl_open(&self->nl);

	ASSERT_EQ(0, ret) TH_LOG("resolving the \"%s\" family: %s", MMK_FAMILY_NAME,
				 strerror(-ret));
	snprintf(self->prefix, sizeof(self->prefix), "nlt-%d", getpid());
}

FIXTURE_TEARDOWN(nl)
{
	mmk_nl_close(&self->nl);
}

TEST_F(nl, family_describes_itself)
{
	static const uint8_t gets[] = { MMK_CMD_POOL_GET, MMK_CMD_QUEUE_GET, MMK_CMD_SESSION_GET };
	unsigned int i;

	EXPECT_EQ((uint32_t)MMK_FAMILY_VERSION, self->nl.version);
	EXPECT_EQ(ARRAY_SIZE(gets), self->nl.nr_ops);
	for (i = 0; i < ARRAY_SIZE(gets); i++) {
		EXPECT_NE(0U, self->nl.op_flags[gets[i]] & GENL_CMD_CAP_DO)
			TH_LOG("%s", cmd_name(gets[i]));
		EXPECT_NE(0U, self->nl.op_flags[gets[i]] & GENL_CMD_CAP_DUMP)
			TH_LOG("%s", cmd_name(gets[i]));
	}
	EXPECT_NE(0U, self->nl.monitor);
}

/*
 * Two sessions, ten stores, three frees, one refused store, four shared
 * guards and one write guard: get by id, by name and the dump all report
 * exactly that, and agree with MMK_IOC_POOL_INFO.
 */
TEST_F(nl, get_reports_what_was_done)
{
	const struct mmk_nl_msg *m;
	struct mmk_pool_info info;
	struct mmk_nl_reply r;
	char name[48];
	uint64_t t[10], extra;
	struct mmk_guard g;
	int a, b, i;
	uint32_t id = 0;

	snprintf(name, sizeof(name), "%s-get", self->prefix);
	a = mgmt_create(name, PAYLOAD, 8, 0640, TYPE, &id);
	ASSERT_LE(0, a);
	b = mmk_attach(name, TYPE);
	ASSERT_LE(0, b);

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, mgmt_store(a, i, &t[i]));
	}
	ASSERT_EQ(0, mmk_free_token(a, t[0]));
	ASSERT_EQ(0, mmk_free_token(b, t[1]));
	for (i = 5; i < 10; i++) {
		ASSERT_EQ(0, mgmt_store(b, i, &t[i]));
	}
	ASSERT_EQ(-ENOSPC, mgmt_store(a, 99, &extra));
	ASSERT_EQ(0, mmk_guard(a, MMK_IOC_READ, t[2], &g));
	ASSERT_EQ(0, mmk_guard(a, MMK_IOC_READ, t[2], &g));
	ASSERT_EQ(0, mmk_guard(b, MMK_IOC_READ, t[3], &g));
	ASSERT_EQ(0, mmk_guard(a, MMK_IOC_PEEK_HEADER, t[3], &g));
	ASSERT_EQ(0, mmk_guard(b, MMK_IOC_READ_MUT, t[4], &g));
	ASSERT_EQ(0, mmk_free_token(a, t[5]));

	ASSERT_EQ(0, mmk_info(a, &info));
	/* What this test did, independently of the ioctl. */
	EXPECT_EQ(8U, info.capacity);
	EXPECT_EQ(1U, info.available);
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(4U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(0U, info.poisoned);
	EXPECT_EQ(10U, info.stores);
	EXPECT_EQ(3U, info.frees);
	EXPECT_EQ(1U, info.no_free_slots);

	m = get_one(_metadata, &self->nl, id, NULL, &r);
	expect_pool_is(_metadata, m, &info);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_AVAILABLE]);
	EXPECT_EQ(4U, m->val[MMK_A_POOL_READ_GUARDS]);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_WRITE_GUARDS]);
	EXPECT_EQ(10U, m->val[MMK_A_POOL_STORES]);
	EXPECT_EQ(3U, m->val[MMK_A_POOL_FREES]);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_NO_FREE_SLOTS]);
	EXPECT_EQ(2U, m->val[MMK_A_POOL_SESSIONS]);
	EXPECT_EQ(0640U, m->val[MMK_A_POOL_MODE]);
	EXPECT_EQ(TYPE, m->val[MMK_A_POOL_PAYLOAD_TYPE]);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_OWNER_UID]);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_QUEUES]);
	mmk_nl_reply_free(&r);

	m = get_one(_metadata, &self->nl, 0, name, &r);
	expect_pool_is(_metadata, m, &info);
	mmk_nl_reply_free(&r);

	ASSERT_EQ(0, mmk_nl_dump(&self->nl, &r, NULL, NULL));
	EXPECT_EQ(0, r.error);
	EXPECT_TRUE(r.done);
	expect_pool_is(_metadata, mmk_nl_find(&r, id), &info);
	mmk_nl_reply_free(&r);

	/* Releasing and freeing shows up too. */
	ASSERT_EQ(0, mmk_write_release(b, t[4]));
	ASSERT_EQ(0, mmk_read_release(a, t[2]));
	close(b);
	m = get_one(_metadata, &self->nl, id, NULL, &r);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_SESSIONS]);
	EXPECT_EQ(2U, m->val[MMK_A_POOL_READ_GUARDS]);	/* b's read guard went with it */
	EXPECT_EQ(0U, m->val[MMK_A_POOL_WRITE_GUARDS]);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_POISONED]);
	mmk_nl_reply_free(&r);
	close(a);

	/* Gone with its last session. */
	ASSERT_EQ(0, mmk_nl_get(&self->nl, id, NULL, &r));
	EXPECT_EQ(-ENOENT, r.error);
	mmk_nl_reply_free(&r);
}

TEST_F(nl, anonymous_pool_has_no_name)
{
	const struct mmk_nl_msg *m;
	struct mmk_pool_info info;
	struct mmk_nl_reply r;
	uint32_t id = 0;
	int fd;

	fd = mgmt_create(NULL, PAYLOAD, 4, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &info));
	m = get_one(_metadata, &self->nl, id, NULL, &r);
	expect_pool_is(_metadata, m, &info);
	EXPECT_FALSE(m->has[MMK_A_POOL_NAME]);
	mmk_nl_reply_free(&r);

	ASSERT_EQ(0, mmk_nl_dump(&self->nl, &r, NULL, NULL));
	expect_pool_is(_metadata, mmk_nl_find(&r, id), &info);
	mmk_nl_reply_free(&r);
	close(fd);
}

/* A writer killed holding its guard leaves a poisoned slot; free clears it. */
TEST_F(nl, poisoned_after_writer_killed)
{
	const struct mmk_nl_msg *m;
	struct mmk_nl_reply r;
	uint64_t t, other;
	char name[48];
	uint32_t id = 0;
	pid_t writer;
	int fd;

	snprintf(name, sizeof(name), "%s-poison", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 4, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mgmt_store(fd, 1, &t));
	ASSERT_EQ(0, mgmt_store(fd, 2, &other));
	writer = mgmt_start_writer(name, TYPE, t);
	ASSERT_LT(0, writer);

	m = get_one(_metadata, &self->nl, id, NULL, &r);
	EXPECT_EQ(2U, m->val[MMK_A_POOL_SESSIONS]);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_WRITE_GUARDS]);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_POISONED]);
	mmk_nl_reply_free(&r);

	ASSERT_EQ(0, mgmt_kill_writer(writer));
	m = get_one(_metadata, &self->nl, 0, name, &r);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_SESSIONS]);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_WRITE_GUARDS]);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_POISONED]);
	EXPECT_EQ(2U, m->val[MMK_A_POOL_AVAILABLE]);
	mmk_nl_reply_free(&r);

	ASSERT_EQ(0, mmk_free_token(fd, t));
	m = get_one(_metadata, &self->nl, id, NULL, &r);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_POISONED]);
	EXPECT_EQ(3U, m->val[MMK_A_POOL_AVAILABLE]);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_FREES]);
	mmk_nl_reply_free(&r);
	close(fd);
}

/* Events for pool @id among @r's messages, in order. */
static unsigned int events_of(const struct mmk_nl_reply *r, uint32_t id,
			      const struct mmk_nl_msg **out, unsigned int max)
{
	unsigned int i, n = 0;

	for (i = 0; i < r->nr; i++) {
		if (!r->msgs[i].has[MMK_A_POOL_ID] || r->msgs[i].val[MMK_A_POOL_ID] != id)
			continue;
		if (n < max)
			out[n] = &r->msgs[i];
		n++;
	}
	return n;
}

/*
 * Each kind of event arrives once, in order, on a socket that joined the
 * monitor group.  Events are sent by the call that causes them, so each
 * one is queued by the time that call (or waitpid) returns.
 */
TEST_F(nl, monitor_gets_every_event)
{
	const struct mmk_nl_msg *ev[8];
	struct mmk_pool_info info;
	struct mmk_nl_reply r = { 0 }, g;
	struct mmk_nl mon;
	uint64_t t0, t1, extra;
	char name[48];
	uint32_t id = 0;
	pid_t writer;
	int fd;

	ASSERT_EQ(0, mmk_nl_open(&mon));
	ASSERT_EQ(0, mmk_nl_join_monitor(&mon));
	ASSERT_LE(0, mmk_nl_drain_events(&mon, &r));
	mmk_nl_reply_free(&r);

	snprintf(name, sizeof(name), "%s-events", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 2, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	ASSERT_LE(0, mmk_nl_drain_events(&mon, &r));
	ASSERT_EQ(1U, events_of(&r, id, ev, 8));
	EXPECT_EQ(MMK_CMD_POOL_CREATED_NTF, ev[0]->cmd) TH_LOG("got %s", cmd_name(ev[0]->cmd));
	ASSERT_EQ(0, mmk_info(fd, &info));
	expect_pool_is(_metadata, ev[0], &info);
	/* And it says what a get says. */
	get_one(_metadata, &self->nl, id, NULL, &g);
	mmk_nl_reply_free(&g);

	ASSERT_EQ(0, mgmt_store(fd, 1, &t0));
	ASSERT_EQ(0, mgmt_store(fd, 2, &t1));
	ASSERT_EQ(-ENOSPC, mgmt_store(fd, 3, &extra));
	ASSERT_LE(0, mmk_nl_drain_events(&mon, &r));
	ASSERT_EQ(2U, events_of(&r, id, ev, 8));
	EXPECT_EQ(MMK_CMD_POOL_EXHAUSTED_NTF, ev[1]->cmd) TH_LOG("got %s", cmd_name(ev[1]->cmd));
	EXPECT_STREQ(name, ev[1]->name);
	EXPECT_EQ(2U, ev[1]->val[MMK_A_POOL_CAPACITY]);
	EXPECT_EQ(1U, ev[1]->val[MMK_A_POOL_NO_FREE_SLOTS]);

	writer = mgmt_start_writer(name, TYPE, t1);
	ASSERT_LT(0, writer);
	ASSERT_EQ(0, mgmt_kill_writer(writer));
	ASSERT_LE(0, mmk_nl_drain_events(&mon, &r));
	ASSERT_EQ(3U, events_of(&r, id, ev, 8));
	EXPECT_EQ(MMK_CMD_SLOT_POISONED_NTF, ev[2]->cmd) TH_LOG("got %s", cmd_name(ev[2]->cmd));
	EXPECT_STREQ(name, ev[2]->name);
	EXPECT_TRUE(ev[2]->has[MMK_A_POOL_TOKEN]);
	EXPECT_EQ(t1, ev[2]->val[MMK_A_POOL_TOKEN]);

	close(fd);
	ASSERT_LE(0, mmk_nl_drain_events(&mon, &r));
	ASSERT_EQ(4U, events_of(&r, id, ev, 8));
	EXPECT_EQ(MMK_CMD_POOL_DESTROYED_NTF, ev[3]->cmd) TH_LOG("got %s", cmd_name(ev[3]->cmd));
	EXPECT_STREQ(name, ev[3]->name);
	EXPECT_EQ(2U, ev[3]->val[MMK_A_POOL_STORES]);
	EXPECT_EQ(0U, ev[3]->val[MMK_A_POOL_FREES]);
	EXPECT_EQ(1U, ev[3]->val[MMK_A_POOL_NO_FREE_SLOTS]);
	EXPECT_FALSE(ev[3]->has[MMK_A_POOL_CAPACITY]);

	mmk_nl_reply_free(&r);
	mmk_nl_close(&mon);
}

/*
 * A producer hammering a full pool gets at most one exhausted event per
 * second (plus one for a partly covered second), while the counter counts
 * every refusal.  The bound uses the time the loop actually took.
 */
TEST_F(nl, exhausted_is_rate_limited)
{
	const struct mmk_nl_msg *ev[64];
	struct mmk_nl_reply r = { 0 }, g;
	const unsigned int refusals = 300;
	struct mmk_nl mon;
	uint64_t t, extra;
	double start, secs;
	unsigned int i, n;
	uint32_t id = 0;
	int fd;

	ASSERT_EQ(0, mmk_nl_open(&mon));
	ASSERT_EQ(0, mmk_nl_join_monitor(&mon));
	fd = mgmt_create(NULL, PAYLOAD, 1, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mgmt_store(fd, 1, &t));

	start = mgmt_now();
	for (i = 0; i < refusals; i++) {
		ASSERT_EQ(-ENOSPC, mgmt_store(fd, 2, &extra));
	}
	secs = mgmt_now() - start;

	ASSERT_LE(0, mmk_nl_drain_events(&mon, &r));
	n = events_of(&r, id, ev, 64);
	ASSERT_LE(2U, n);	/* created, then at least one exhausted */
	EXPECT_EQ(MMK_CMD_POOL_CREATED_NTF, ev[0]->cmd);
	EXPECT_EQ(MMK_CMD_POOL_EXHAUSTED_NTF, ev[1]->cmd);
	EXPECT_EQ(1U, ev[1]->val[MMK_A_POOL_NO_FREE_SLOTS]);
	EXPECT_GE(2 + (unsigned int)secs, n - 1) TH_LOG("%u exhausted events in %.2f s",
						       n - 1, secs);
	for (i = 2; i < n && i < 64; i++) {
		EXPECT_EQ(MMK_CMD_POOL_EXHAUSTED_NTF, ev[i]->cmd);
		EXPECT_LT(ev[i - 1]->val[MMK_A_POOL_NO_FREE_SLOTS],
			  ev[i]->val[MMK_A_POOL_NO_FREE_SLOTS]);
	}
	TH_LOG("%u refused stores in %.2f s gave %u exhausted events", refusals, secs, n - 1);

	get_one(_metadata, &self->nl, id, NULL, &g);
	EXPECT_EQ(refusals, g.msgs[0].val[MMK_A_POOL_NO_FREE_SLOTS]);
	mmk_nl_reply_free(&g);
	mmk_nl_reply_free(&r);
	close(fd);
	mmk_nl_close(&mon);
}

/*
 * What an unprivileged uid sees.  The child reports the first check that
 * failed through its exit status (0: all passed), and says why on stderr.
 */
enum {
	UNPRIV_OK,
	UNPRIV_CREDS,
	UNPRIV_OPEN,
	UNPRIV_DUMP,
	UNPRIV_SEES_PUBLIC,
	UNPRIV_SEES_PRIVATE,
	UNPRIV_SEES_GROUP,
	UNPRIV_SEES_ANON,
	UNPRIV_GET_PRIVATE,
	UNPRIV_GET_PRIVATE_ID,
	UNPRIV_GET_ANON,
	UNPRIV_GET_PUBLIC,
	UNPRIV_JOIN,
	UNPRIV_OWN,
};

struct unpriv_pools {
	uint32_t pub, priv, grp, anon;
	char pub_name[48], priv_name[48], own_name[48];
};

#define CHILD_FAIL(code, ...) do {				\
	fprintf(stderr, "# child uid %d: ", getuid());		\
	fprintf(stderr, __VA_ARGS__);				\
	fputc('\n', stderr);					\
	_exit(code);						\
} while (0)

static void unprivileged_child(const struct unpriv_pools *p)
{
	struct mmk_nl_reply r;
	struct mmk_nl nl;
	uint32_t own = 0;
	int ret, fd;

	if (mgmt_become(NOBODY, NOBODY))
		CHILD_FAIL(UNPRIV_CREDS, "cannot become nobody: %s", strerror(errno));
	ret = mmk_nl_open(&nl);
	if (ret)
		CHILD_FAIL(UNPRIV_OPEN, "cannot resolve the family: %s", strerror(-ret));

	if (mmk_nl_dump(&nl, &r, NULL, NULL) || r.error)
		CHILD_FAIL(UNPRIV_DUMP, "dump failed: %d \"%s\"", r.error, r.extack);
	if (!mmk_nl_find(&r, p->pub))
		CHILD_FAIL(UNPRIV_SEES_PUBLIC, "0666 pool %u missing from the dump", p->pub);
	if (mmk_nl_find(&r, p->priv))
		CHILD_FAIL(UNPRIV_SEES_PRIVATE, "root's 0600 pool %u is in the dump", p->priv);
	if (mmk_nl_find(&r, p->grp))
		CHILD_FAIL(UNPRIV_SEES_GROUP, "root's 0660 pool %u is in the dump", p->grp);
	if (mmk_nl_find(&r, p->anon))
		CHILD_FAIL(UNPRIV_SEES_ANON, "anonymous pool %u is in the dump", p->anon);
	mmk_nl_reply_free(&r);

	if (mmk_nl_get(&nl, 0, p->priv_name, &r) || r.error != -ENOENT || !r.extack[0] || r.nr)
		CHILD_FAIL(UNPRIV_GET_PRIVATE, "get %s: %d \"%s\", %u messages", p->priv_name,
			   r.error, r.extack, r.nr);
	mmk_nl_reply_free(&r);
	if (mmk_nl_get(&nl, p->priv, NULL, &r) || r.error != -ENOENT || r.nr)
		CHILD_FAIL(UNPRIV_GET_PRIVATE_ID, "get %u: %d, %u messages", p->priv, r.error,
			   r.nr);
	mmk_nl_reply_free(&r);
	if (mmk_nl_get(&nl, p->anon, NULL, &r) || r.error != -ENOENT || r.nr)
		CHILD_FAIL(UNPRIV_GET_ANON, "get %u: %d", p->anon, r.error);
	mmk_nl_reply_free(&r);
	if (mmk_nl_get(&nl, 0, p->pub_name, &r) || r.error || r.nr != 1)
		CHILD_FAIL(UNPRIV_GET_PUBLIC, "get %s: %d \"%s\"", p->pub_name, r.error, r.extack);
	mmk_nl_reply_free(&r);

	ret = mmk_nl_join_monitor(&nl);
	if (ret != -EPERM)
		CHILD_FAIL(UNPRIV_JOIN, "joining the monitor group gave %d, not -EPERM", ret);

	/* Its own 0600 pool it sees, owner and all. */
	fd = mgmt_create(p->own_name, PAYLOAD, 2, 0600, TYPE, &own);
	if (fd < 0)
		CHILD_FAIL(UNPRIV_OWN, "create: %s", strerror(-fd));
	if (mmk_nl_get(&nl, own, NULL, &r) || r.error || r.nr != 1 ||
	    r.msgs[0].val[MMK_A_POOL_OWNER_UID] != NOBODY)
		CHILD_FAIL(UNPRIV_OWN, "get own pool %u: %d", own, r.error);
	mmk_nl_reply_free(&r);
	close(fd);
	mmk_nl_close(&nl);
	_exit(UNPRIV_OK);
}

TEST_F(nl, unprivileged_sees_only_attachable_pools)
{
	struct unpriv_pools p;
	struct mmk_nl_reply r;
	int fds[4], i, status;
	char grp_name[48];
	pid_t pid;

	snprintf(p.pub_name, sizeof(p.pub_name), "%s-pub", self->prefix);
	snprintf(p.priv_name, sizeof(p.priv_name), "%s-priv", self->prefix);
	snprintf(p.own_name, sizeof(p.own_name), "%s-own", self->prefix);
	snprintf(grp_name, sizeof(grp_name), "%s-grp", self->prefix);
	fds[0] = mgmt_create(p.pub_name, PAYLOAD, 2, 0666, TYPE, &p.pub);
	fds[1] = mgmt_create(p.priv_name, PAYLOAD, 2, 0600, TYPE, &p.priv);
	fds[2] = mgmt_create(grp_name, PAYLOAD, 2, 0660, TYPE, &p.grp);
	fds[3] = mgmt_create(NULL, PAYLOAD, 2, 0666, TYPE, &p.anon);
	for (i = 0; i < 4; i++) {
		ASSERT_LE(0, fds[i]);
	}

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0)
		unprivileged_child(&p);
	status = wait_child(pid);
	EXPECT_EQ(UNPRIV_OK, status);

	/* Root (CAP_SYS_ADMIN) sees all of them. */
	ASSERT_EQ(0, mmk_nl_dump(&self->nl, &r, NULL, NULL));
	EXPECT_NE(NULL, mmk_nl_find(&r, p.pub));
	EXPECT_NE(NULL, mmk_nl_find(&r, p.priv));
	EXPECT_NE(NULL, mmk_nl_find(&r, p.grp));
	EXPECT_NE(NULL, mmk_nl_find(&r, p.anon));
	mmk_nl_reply_free(&r);
	for (i = 0; i < 4; i++)
		close(fds[i]);
}

/* ---- queues and sessions: who holds what ---------------------------------------- */

/*
 * What one queue goes through, one character per operation: a, d, r push
 * a new message and expect it admitted, dropped or refused (ENOBUFS); x
 * pushes a message whose deadline has passed and expects it admitted; p
 * pops and expects a message, e pops and expects EAGAIN.  Then what the
 * queue must report.
 */
static const struct queue_case {
	const char *name;	/* "" for an anonymous queue */
	uint32_t policy, cap_items, soft_items;
	uint64_t cap_bytes;
	const char *ops;
	uint32_t items, high_items, watermark;
	uint64_t pushes, pops, rejected, drops[MMK_DROP_REASONS];
} queue_cases[] = {
	{ "reject", MMK_QUEUE_REJECT, 3, 0, 0, "aaarrp",
	  2, 3, MMK_WM_BELOW_SOFT, 3, 1, 2, { 0, 0, 0, 0 } },
	{ "newest", MMK_QUEUE_DROP_NEWEST, 2, 0, 0, "aadd",
	  2, 2, MMK_WM_AT_HARD, 2, 0, 0, { 2, 0, 0, 0 } },
	{ "oldest", MMK_QUEUE_DROP_OLDEST, 2, 0, 0, "aaaaapp",
	  0, 2, MMK_WM_BELOW_SOFT, 5, 2, 0, { 0, 3, 0, 0 } },
	{ "", MMK_QUEUE_REJECT, 4, 2, 100, "aar",
	  2, 2, MMK_WM_BETWEEN, 2, 0, 1, { 0, 0, 0, 0 } },
	{ "qos", MMK_QUEUE_QOS, 4, 1, 0, "xead",
	  1, 1, MMK_WM_BETWEEN, 2, 0, 0, { 0, 0, 1, 1 } },
};

#define QUEUE_MSG	8U	/* payload bytes of mgmt_store()'s messages */

/* Run @c's operations on queue @qfd through session @fd; returns pops done. */
static unsigned int run_queue_case(struct __test_metadata *_metadata, int fd, int qfd,
				   const struct queue_case *c)
{
	unsigned int i, popped = 0;
	uint64_t t;
	int ret;

	for (i = 0; c->ops[i]; i++) {
		char op = c->ops[i];

		if (op == 'p' || op == 'e') {
			ret = mgmt_pop(fd, qfd, &t);
			EXPECT_EQ(op == 'p' ? 0 : -EAGAIN, ret) TH_LOG("queue \"%s\" op %u", c->name, i);
			popped += !ret;
			continue;
		}
		if (op == 'x')
			ret = mgmt_store_hdr(fd, MMK_MSG_HAS_DEADLINE, 1, MMK_QOS_BEST_EFFORT, &t);
		else
			ret = mgmt_store(fd, i, &t);
		ASSERT_EQ(0, ret) TH_LOG("queue \"%s\" op %u: store", c->name, i);
		ret = mgmt_push(fd, qfd, t);
		EXPECT_EQ(op == 'd' ? 1 : op == 'r' ? -ENOBUFS : 0, ret)
			TH_LOG("queue \"%s\" op %u (%c)", c->name, i, op);
		if (ret == -ENOBUFS)
			EXPECT_EQ(0, mmk_free_token(fd, t));
	}
	return popped;
}

/* A queue message against what MMK_IOC_QUEUE_INFO says of the same queue. */
static void expect_queue_is(struct __test_metadata *_metadata, const struct mmk_nl_msg *m,
			    const struct mmk_queue_info *q)
{
	static const struct { int attr; size_t off, size; } nums[] = {
#define N(a, f) { a, offsetof(struct mmk_queue_info, f), sizeof(((struct mmk_queue_info *)0)->f) }
		N(MMK_A_QUEUE_POOL_ID, pool_id), N(MMK_A_QUEUE_ID, queue_id),
		N(MMK_A_QUEUE_POLICY, policy), N(MMK_A_QUEUE_WATERMARK, watermark),
		N(MMK_A_QUEUE_CAP_ITEMS, cap_items), N(MMK_A_QUEUE_SOFT_ITEMS, soft_items),
		N(MMK_A_QUEUE_CAP_BYTES, cap_bytes), N(MMK_A_QUEUE_SOFT_BYTES, soft_bytes),
		N(MMK_A_QUEUE_ITEMS, items), N(MMK_A_QUEUE_HIGH_ITEMS, high_items),
		N(MMK_A_QUEUE_BYTES, bytes), N(MMK_A_QUEUE_PUSHES, pushes),
		N(MMK_A_QUEUE_POPS, pops), N(MMK_A_QUEUE_REJECTED, rejected),
		N(MMK_A_QUEUE_DROPS_NEWEST, drops[MMK_DROP_NEWEST]),
		N(MMK_A_QUEUE_DROPS_OLDEST, drops[MMK_DROP_OLDEST]),
		N(MMK_A_QUEUE_DROPS_QOS, drops[MMK_DROP_QOS]),
		N(MMK_A_QUEUE_DROPS_DEADLINE, drops[MMK_DROP_DEADLINE]),
#undef N
	};
	unsigned int i;
	uint64_t v;

	ASSERT_NE(NULL, m);
	EXPECT_EQ(MMK_CMD_QUEUE_GET, m->cmd);
	EXPECT_EQ(0U, m->unknown);
	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		v = 0;
		memcpy(&v, (const char *)q + nums[i].off, nums[i].size);
		EXPECT_TRUE(m->has[nums[i].attr]) TH_LOG("attribute %d", nums[i].attr);
		EXPECT_EQ(nums[i].size, m->len[nums[i].attr]) TH_LOG("attribute %d", nums[i].attr);
		EXPECT_EQ(v, m->val[nums[i].attr]) TH_LOG("queue %u attribute %d", q->queue_id,
							  nums[i].attr);
	}
	EXPECT_EQ(!!q->name[0], m->has[MMK_A_QUEUE_NAME]);
	if (q->name[0]) {
		EXPECT_STREQ(q->name, m->name);
	}
}

/* A queue message against the case's own expectations. */
static void expect_queue_case(struct __test_metadata *_metadata, const struct mmk_nl_msg *m,
			      const struct queue_case *c, uint32_t pool_id)
{
	const struct { int attr; uint64_t v; } want[] = {
		{ MMK_A_QUEUE_POOL_ID, pool_id }, { MMK_A_QUEUE_POLICY, c->policy },
		{ MMK_A_QUEUE_CAP_ITEMS, c->cap_items },
		{ MMK_A_QUEUE_SOFT_ITEMS, c->soft_items ?: c->cap_items },
		{ MMK_A_QUEUE_CAP_BYTES, c->cap_bytes },
		{ MMK_A_QUEUE_ITEMS, c->items }, { MMK_A_QUEUE_HIGH_ITEMS, c->high_items },
		{ MMK_A_QUEUE_BYTES, c->items * QUEUE_MSG },
		{ MMK_A_QUEUE_WATERMARK, c->watermark }, { MMK_A_QUEUE_PUSHES, c->pushes },
		{ MMK_A_QUEUE_POPS, c->pops }, { MMK_A_QUEUE_REJECTED, c->rejected },
		{ MMK_A_QUEUE_DROPS_NEWEST, c->drops[MMK_DROP_NEWEST] },
		{ MMK_A_QUEUE_DROPS_OLDEST, c->drops[MMK_DROP_OLDEST] },
		{ MMK_A_QUEUE_DROPS_QOS, c->drops[MMK_DROP_QOS] },
		{ MMK_A_QUEUE_DROPS_DEADLINE, c->drops[MMK_DROP_DEADLINE] },
	};
	unsigned int i;

	ASSERT_NE(NULL, m);
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		EXPECT_EQ(want[i].v, m->val[want[i].attr]) TH_LOG("queue \"%s\" attribute %d",
								  c->name, want[i].attr);
	}
}

/*
 * Each queue of the table, after its pushes, pops and drops: the dump,
 * the do by id and by name report exactly what the case expects and what
 * MMK_IOC_QUEUE_INFO says; the pool counts its queues, and the session
 * that popped holds the popped messages.
 */
TEST_F(nl, queues_report_pushes_pops_and_drops)
{
	const unsigned int n = ARRAY_SIZE(queue_cases);
	struct mmk_queue_info qi[ARRAY_SIZE(queue_cases)];
	int qfd[ARRAY_SIZE(queue_cases)];
	uint32_t qid[ARRAY_SIZE(queue_cases)];
	unsigned int i, popped = 0;
	const struct mmk_nl_msg *m;
	struct mmk_nl_reply r;
	char name[48];
	uint32_t id = 0;
	int fd;

	snprintf(name, sizeof(name), "%s-queues", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 32, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	for (i = 0; i < n; i++) {
		const struct queue_case *c = &queue_cases[i];

		qfd[i] = mgmt_queue(fd, true, c->name, c->policy, c->cap_items, c->soft_items,
				    c->cap_bytes, &qid[i]);
		ASSERT_LE(0, qfd[i]) TH_LOG("queue \"%s\": %s", c->name, strerror(-qfd[i]));
		popped += run_queue_case(_metadata, fd, qfd[i], c);
		ASSERT_EQ(0, mmk_ioctl(qfd[i], MMK_IOC_QUEUE_INFO, &qi[i]));
	}

	m = get_one(_metadata, &self->nl, id, NULL, &r);
	EXPECT_EQ(n, m->val[MMK_A_POOL_QUEUES]);
	mmk_nl_reply_free(&r);

	/* The dump, by pool id and by pool name. */
	for (i = 0; i < 2; i++) {
		unsigned int k;

		ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_QUEUE_GET, id, i ? name : NULL, 0,
					   NULL, &r, NULL, NULL));
		EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
		EXPECT_TRUE(r.done);
		EXPECT_FALSE(r.intr);
		ASSERT_EQ(n, r.nr);
		for (k = 0; k < n; k++) {
			m = mmk_nl_find_member(&r, qid[k]);
			expect_queue_is(_metadata, m, &qi[k]);
			expect_queue_case(_metadata, m, &queue_cases[k], id);
			EXPECT_TRUE(m->flags & NLM_F_MULTI);
			if (k) {
				EXPECT_LT(r.msgs[k - 1].val[MMK_A_QUEUE_ID],
					  r.msgs[k].val[MMK_A_QUEUE_ID]);
			}
		}
		mmk_nl_reply_free(&r);
	}

	/* The do, by queue id, and by name for the named ones. */
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_QUEUE_GET, id, NULL, qid[i], NULL, &r,
					   NULL, NULL));
		EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
		EXPECT_TRUE(r.acked);
		ASSERT_EQ(1U, r.nr);
		expect_queue_is(_metadata, &r.msgs[0], &qi[i]);
		mmk_nl_reply_free(&r);
		if (!queue_cases[i].name[0])
			continue;
		ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_QUEUE_GET, 0, name, 0,
					   queue_cases[i].name, &r, NULL, NULL));
		EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
		ASSERT_EQ(1U, r.nr);
		expect_queue_is(_metadata, &r.msgs[0], &qi[i]);
		mmk_nl_reply_free(&r);
	}

	/* The one session holds every popped message, and every queue it opened. */
	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_SESSION_GET, id, NULL, 0, NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
	ASSERT_EQ(1U, r.nr);
	EXPECT_EQ(popped, r.msgs[0].val[MMK_A_SESSION_POPPED]);
	EXPECT_EQ(popped, r.msgs[0].val[MMK_A_SESSION_READ_GUARDS]);
	EXPECT_EQ(n, r.msgs[0].val[MMK_A_SESSION_QUEUES_OPEN]);
	mmk_nl_reply_free(&r);

	/* A closed queue is gone from the listing. */
	close(qfd[0]);
	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_QUEUE_GET, id, NULL, 0, NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(n - 1, r.nr);
	EXPECT_EQ(NULL, mmk_nl_find_member(&r, qid[0]));
	mmk_nl_reply_free(&r);
	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_QUEUE_GET, id, NULL, qid[0], NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(-ENOENT, r.error);
	EXPECT_STREQ("no such queue", r.extack);
	mmk_nl_reply_free(&r);
	for (i = 1; i < n; i++)
		close(qfd[i]);
	close(fd);
}

/*
 * Processes of the table each attach the pool under their own command
 * name (and uid) and take what the row says, then wait to be killed.
 * Tokens are filled in by the test: [0] read, [1] header, [2 + i] row i's
 * write guard.
 */
static const struct mgmt_holding holder_cases[] = {
	{ .comm = "nlt-reader", .reads = 2, .headers = 1 },
	{ .comm = "nlt-writer", .writes = 1, .loans = 1 },
	{ .comm = "nlt-popper", .reads = 1, .pops = 2, .queue = "holders" },
	{ .comm = "nlt-nobody", .uid = NOBODY, .reads = 1, .pops = 1, .queue = "holders" },
};

/*
 * Who holds what: the session dump names each holder by pid, command and
 * uid, in bind order, with exactly the guards, loans, popped messages and
 * queues of its row; once they are killed, only this process's session is
 * left, and the pool's guards are gone with them.
 */
TEST_F(nl, sessions_say_who_holds_what)
{
	const unsigned int n = ARRAY_SIZE(holder_cases);
	uint64_t tokens[2 + ARRAY_SIZE(holder_cases)], t;
	pid_t pids[ARRAY_SIZE(holder_cases)];
	const struct mmk_nl_msg *m;
	unsigned int i, pops = 0;
	struct mmk_nl_reply r;
	char name[48], comm[32];
	uint32_t id = 0, sid;
	int fd, qfd;

	snprintf(name, sizeof(name), "%s-holders", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 16, 0666, TYPE, &id);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(tokens); i++) {
		ASSERT_EQ(0, mgmt_store(fd, i, &tokens[i]));
	}
	for (i = 0; i < n; i++)
		pops += holder_cases[i].pops;
	qfd = mgmt_queue(fd, true, "holders", MMK_QUEUE_REJECT, 8, 0, 0, NULL);
	ASSERT_LE(0, qfd);
	for (i = 0; i < pops; i++) {
		ASSERT_EQ(0, mgmt_store(fd, 100 + i, &t));
		ASSERT_EQ(0, mgmt_push(fd, qfd, t));
	}

	ASSERT_EQ(0, mgmt_start_holders(name, TYPE, holder_cases, n, tokens, pids));

	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_SESSION_GET, 0, name, 0, NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
	EXPECT_TRUE(r.done);
	ASSERT_EQ(1 + n, r.nr);

	/* This process's session first: it bound first, and holds only its queue. */
	mgmt_comm(comm, sizeof(comm));
	m = &r.msgs[0];
	EXPECT_EQ(MMK_CMD_SESSION_GET, m->cmd);
	EXPECT_EQ(0U, m->unknown);
	EXPECT_EQ(id, m->val[MMK_A_SESSION_POOL_ID]);
	EXPECT_EQ((uint64_t)getpid(), m->val[MMK_A_SESSION_PID]);
	EXPECT_STREQ(comm, m->name);
	EXPECT_EQ(0U, m->val[MMK_A_SESSION_UID]);
	EXPECT_EQ(0U, m->val[MMK_A_SESSION_READ_GUARDS]);
	EXPECT_EQ(0U, m->val[MMK_A_SESSION_WRITE_GUARDS]);
	EXPECT_EQ(1U, m->val[MMK_A_SESSION_QUEUES_OPEN]);
	for (i = 0; i < n; i++) {
		const struct mgmt_holding *c = &holder_cases[i];

		m = &r.msgs[1 + i];
		EXPECT_LT(r.msgs[i].val[MMK_A_SESSION_ID], m->val[MMK_A_SESSION_ID]);
		EXPECT_EQ(id, m->val[MMK_A_SESSION_POOL_ID]);
		EXPECT_EQ((uint64_t)pids[i], m->val[MMK_A_SESSION_PID]) TH_LOG("%s", c->comm);
		EXPECT_STREQ(c->comm, m->name);
		EXPECT_EQ(c->uid, m->val[MMK_A_SESSION_UID]) TH_LOG("%s", c->comm);
		EXPECT_EQ(c->reads + c->headers + c->pops, m->val[MMK_A_SESSION_READ_GUARDS])
			TH_LOG("%s", c->comm);
		EXPECT_EQ(c->writes + c->loans, m->val[MMK_A_SESSION_WRITE_GUARDS])
			TH_LOG("%s", c->comm);
		EXPECT_EQ(c->loans, m->val[MMK_A_SESSION_LOANS]) TH_LOG("%s", c->comm);
		EXPECT_EQ(c->pops, m->val[MMK_A_SESSION_POPPED]) TH_LOG("%s", c->comm);
		EXPECT_EQ(c->pops ? 1U : 0U, m->val[MMK_A_SESSION_QUEUES_OPEN]) TH_LOG("%s", c->comm);
	}

	/* The do, by session id. */
	sid = r.msgs[n].val[MMK_A_SESSION_ID];
	mmk_nl_reply_free(&r);
	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_SESSION_GET, id, NULL, sid, NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
	ASSERT_EQ(1U, r.nr);
	EXPECT_EQ((uint64_t)pids[n - 1], r.msgs[0].val[MMK_A_SESSION_PID]);
	EXPECT_STREQ(holder_cases[n - 1].comm, r.msgs[0].name);
	mmk_nl_reply_free(&r);

	/* Killed: their sessions and what they held go with them. */
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, mgmt_kill_writer(pids[i]));
	}
	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_SESSION_GET, id, NULL, 0, NULL, &r, NULL,
				   NULL));
	ASSERT_EQ(1U, r.nr);
	EXPECT_EQ((uint64_t)getpid(), r.msgs[0].val[MMK_A_SESSION_PID]);
	mmk_nl_reply_free(&r);
	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_SESSION_GET, id, NULL, sid, NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(-ENOENT, r.error);
	EXPECT_STREQ("no such session", r.extack);
	mmk_nl_reply_free(&r);
	m = get_one(_metadata, &self->nl, id, NULL, &r);
	EXPECT_EQ(1U, m->val[MMK_A_POOL_SESSIONS]);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_READ_GUARDS]);
	EXPECT_EQ(0U, m->val[MMK_A_POOL_WRITE_GUARDS]);
	mmk_nl_reply_free(&r);
	close(qfd);
	close(fd);
}

/*
 * An unprivileged uid sees nothing of a pool it cannot attach, neither
 * its queues nor its sessions, by id or by name, do or dump; of a pool it
 * can attach it sees both.  Each row is one request from the child.
 */
static const struct member_vis_case {
	uint8_t cmd;
	bool pub;		/* the 0666 pool, else root's 0600 one */
	bool by_name;
	bool dump;		/* else a do for the pool's first member */
	int error;
} member_vis_cases[] = {
	{ MMK_CMD_QUEUE_GET,	false, false, true,  -ENOENT },
	{ MMK_CMD_QUEUE_GET,	false, true,  true,  -ENOENT },
	{ MMK_CMD_QUEUE_GET,	false, false, false, -ENOENT },
	{ MMK_CMD_SESSION_GET,	false, false, true,  -ENOENT },
	{ MMK_CMD_SESSION_GET,	false, true,  true,  -ENOENT },
	{ MMK_CMD_SESSION_GET,	false, true,  false, -ENOENT },
	{ MMK_CMD_QUEUE_GET,	true,  true,  true,  0 },
	{ MMK_CMD_QUEUE_GET,	true,  false, false, 0 },
	{ MMK_CMD_SESSION_GET,	true,  false, true,  0 },
	{ MMK_CMD_SESSION_GET,	true,  true,  false, 0 },
};

struct vis_pools {
	uint32_t id[2];		/* [0] private, [1] public */
	char name[2][48];
};

static void member_vis_child(const struct vis_pools *p)
{
	struct mmk_nl_reply r;
	struct mmk_nl nl;
	unsigned int i;

	if (mgmt_become(NOBODY, NOBODY))
		CHILD_FAIL(100, "cannot become nobody: %s", strerror(errno));
	if (mmk_nl_open(&nl))
		CHILD_FAIL(101, "cannot resolve the family");
	for (i = 0; i < ARRAY_SIZE(member_vis_cases); i++) {
		const struct member_vis_case *c = &member_vis_cases[i];
		unsigned int want = c->error ? 0 : 1 + (c->dump && c->cmd == MMK_CMD_SESSION_GET);

		if (mmk_nl_member(&nl, c->cmd, p->id[c->pub], c->by_name ? p->name[c->pub] : NULL,
				  c->dump ? 0 : 1, NULL, &r, NULL, NULL))
			CHILD_FAIL(1 + i, "row %u: request failed", i);
		if (r.error != c->error || r.nr != want ||
		    (c->error && strcmp(r.extack, "no such pool")))
			CHILD_FAIL(1 + i, "row %u (%s): %d \"%s\" with %u messages", i,
				   cmd_name(c->cmd), r.error, r.extack, r.nr);
		mmk_nl_reply_free(&r);
	}
	mmk_nl_close(&nl);
	_exit(0);
}

TEST_F(nl, unprivileged_sees_no_queue_or_session_of_hidden_pools)
{
	struct vis_pools p;
	int fd[2], b[2], qfd[2], i;
	pid_t pid;

	for (i = 0; i < 2; i++) {
		snprintf(p.name[i], sizeof(p.name[i]), "%s-vis%d", self->prefix, i);
		fd[i] = mgmt_create(p.name[i], PAYLOAD, 4, i ? 0666 : 0600, TYPE, &p.id[i]);
		ASSERT_LE(0, fd[i]);
		b[i] = mmk_attach(p.name[i], TYPE);
		ASSERT_LE(0, b[i]);
		qfd[i] = mgmt_queue(fd[i], true, "q", MMK_QUEUE_REJECT, 4, 0, 0, NULL);
		ASSERT_LE(0, qfd[i]);
	}
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0)
		member_vis_child(&p);
	EXPECT_EQ(0, wait_child(pid));
	for (i = 0; i < 2; i++) {
		close(qfd[i]);
		close(b[i]);
		close(fd[i]);
	}
}

/* ---- malformed requests ------------------------------------------------------- */

enum bad_kind {
	BAD_NO_ATTRS,
	BAD_ID_U8,
	BAD_ID_U64,
	BAD_ID_ZERO,
	BAD_ID_TOO_BIG,
	BAD_NAME_NO_NUL,
	BAD_NAME_64,
	BAD_NAME_HUGE,
	BAD_NAME_EMPTY_PAYLOAD,
	BAD_UNKNOWN_ATTR,
	BAD_REPLY_ONLY_ATTR,
	BAD_NESTED_FLAG,
	BAD_ID_AND_NAME,
	BAD_NO_SUCH_ID,
	BAD_NO_SUCH_NAME,
	BAD_TRAILING_BYTES,
	BAD_DUMP_WITH_ATTR,
	BAD_RESERVED,
	BAD_NLMSG_FLAGS,
	BAD_UNKNOWN_CMD,
	BAD_NTF_CMD,
	BAD_TRUNCATED,
};

static const struct bad_case {
	enum bad_kind kind;
	const char *what;
	int error;
	const char *extack;	/* expected message, "" for any, NULL for none expected */
} bad_cases[] = {
	{ BAD_NO_ATTRS,		"no attribute",		-EINVAL, "pool id or name required" },
	{ BAD_ID_U8,		"id as a u8",		-EINVAL, "" },
	{ BAD_ID_U64,		"id as a u64",		-EINVAL, "" },
	{ BAD_ID_ZERO,		"id 0",			-ERANGE, "" },
	{ BAD_ID_TOO_BIG,	"id 65535",		-ERANGE, "" },
	{ BAD_NAME_NO_NUL,	"name without NUL",	-EINVAL, "" },
	{ BAD_NAME_64,		"64-byte name",		-EINVAL, "" },
	{ BAD_NAME_HUGE,	"3000-byte name",	-EINVAL, "" },
	{ BAD_NAME_EMPTY_PAYLOAD, "zero-length name",	-EINVAL, "" },
	{ BAD_UNKNOWN_ATTR,	"unknown attribute",	-EINVAL, "" },
	{ BAD_REPLY_ONLY_ATTR,	"capacity in a get",	-EINVAL, "" },
	{ BAD_NESTED_FLAG,	"NLA_F_NESTED on id",	-EINVAL, "" },
	{ BAD_ID_AND_NAME,	"id and name",		-EINVAL,
	  "give the pool id or its name, not both" },
	{ BAD_NO_SUCH_ID,	"unused id",		-ENOENT, "no such pool" },
	{ BAD_NO_SUCH_NAME,	"unused name",		-ENOENT, "no such pool" },
	{ BAD_TRAILING_BYTES,	"bytes after the attributes", -EINVAL, "" },
	{ BAD_DUMP_WITH_ATTR,	"dump with an id",	-EINVAL, "a pool dump takes no attributes" },
	{ BAD_RESERVED,		"genl reserved field",	-EINVAL, "" },
	{ BAD_NLMSG_FLAGS,	"NLM_F_REPLACE on a get", -EINVAL, "" },
	/*
	 * The genetlink core refuses a command the family does not have
	 * before the family sees the request, and sets no message.
	 */
	{ BAD_UNKNOWN_CMD,	"command 200",		-EOPNOTSUPP, NULL },
	{ BAD_NTF_CMD,		"a notification as a request", -EOPNOTSUPP, NULL },
	{ BAD_TRUNCATED,	"message shorter than the genl header", -EINVAL, NULL },
};

static void build_bad(struct mmk_nl *nl, struct mmk_nl_req *req, enum bad_kind kind,
		      uint32_t unused_id)
{
	uint16_t fam = nl->family;
	char big[3000];
	struct genlmsghdr *g;
	uint64_t u64 = 1;
	uint8_t u8 = 1;
	char *tail;

	mmk_nl_req_init(req, fam, NLM_F_ACK, MMK_CMD_POOL_GET, MMK_FAMILY_VERSION);
	switch (kind) {
	case BAD_NO_ATTRS:
		break;
	case BAD_ID_U8:
		mmk_nl_put(req, MMK_A_POOL_ID, &u8, sizeof(u8));
		break;
	case BAD_ID_U64:
		mmk_nl_put(req, MMK_A_POOL_ID, &u64, sizeof(u64));
		break;
	case BAD_ID_ZERO:
		mmk_nl_put_u32(req, MMK_A_POOL_ID, 0);
		break;
	case BAD_ID_TOO_BIG:
		mmk_nl_put_u32(req, MMK_A_POOL_ID, 65535);
		break;
	case BAD_NAME_NO_NUL:
		mmk_nl_put(req, MMK_A_POOL_NAME, "abc", 3);
		break;
	case BAD_NAME_64:
		memset(big, 'n', 64);
		big[64] = '\0';
		mmk_nl_put_str(req, MMK_A_POOL_NAME, big);
		break;
	case BAD_NAME_HUGE:
		memset(big, 'n', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		mmk_nl_put_str(req, MMK_A_POOL_NAME, big);
		break;
	case BAD_NAME_EMPTY_PAYLOAD:
		mmk_nl_put(req, MMK_A_POOL_NAME, "", 0);
		break;
	case BAD_UNKNOWN_ATTR:
		mmk_nl_put_u32(req, MMK_A_POOL_MAX + 5, 1);
		break;
	case BAD_REPLY_ONLY_ATTR:
		mmk_nl_put_u32(req, MMK_A_POOL_CAPACITY, 8);
		break;
	case BAD_NESTED_FLAG:
		mmk_nl_put_u32(req, MMK_A_POOL_ID | NLA_F_NESTED, 1);
		break;
	case BAD_ID_AND_NAME:
		mmk_nl_put_u32(req, MMK_A_POOL_ID, 1);
		mmk_nl_put_str(req, MMK_A_POOL_NAME, "x");
		break;
	case BAD_NO_SUCH_ID:
		mmk_nl_put_u32(req, MMK_A_POOL_ID, unused_id);
		break;
	case BAD_NO_SUCH_NAME:
		mmk_nl_put_str(req, MMK_A_POOL_NAME, "nlt-there-is-no-such-pool");
		break;
	case BAD_TRAILING_BYTES:
		mmk_nl_put_u32(req, MMK_A_POOL_ID, 1);
		tail = req->buf + req->nlh.nlmsg_len;
		memset(tail, 0xff, 2);
		req->nlh.nlmsg_len += 2;
		break;
	case BAD_DUMP_WITH_ATTR:
		req->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		mmk_nl_put_u32(req, MMK_A_POOL_ID, 1);
		break;
	case BAD_RESERVED:
		mmk_nl_put_u32(req, MMK_A_POOL_ID, 1);
		g = NLMSG_DATA(&req->nlh);
		g->reserved = 1;
		break;
	case BAD_NLMSG_FLAGS:
		req->nlh.nlmsg_flags |= NLM_F_REPLACE;
		mmk_nl_put_u32(req, MMK_A_POOL_ID, 1);
		break;
	case BAD_UNKNOWN_CMD:
		g = NLMSG_DATA(&req->nlh);
		g->cmd = 200;
		break;
	case BAD_NTF_CMD:
		g = NLMSG_DATA(&req->nlh);
		g->cmd = MMK_CMD_POOL_CREATED_NTF;
		break;
	case BAD_TRUNCATED:
		req->nlh.nlmsg_len = NLMSG_LENGTH(2);
		break;
	}
}

/* A pool id that no pool has now. */
static uint32_t unused_pool_id(struct __test_metadata *_metadata, struct mmk_nl *nl)
{
	struct mmk_nl_reply r;
	uint32_t unused = 65534;

	EXPECT_EQ(0, mmk_nl_dump(nl, &r, NULL, NULL));
	while (mmk_nl_find(&r, unused))
		unused--;
	mmk_nl_reply_free(&r);
	return unused;
}

/*
 * Send @req, which must be refused with @error and no reply.  @extack is
 * the expected message, "" for any, NULL for none expected.  The answer
 * is left in @r for the caller to check further and free.
 */
static void expect_refused(struct __test_metadata *_metadata, struct mmk_nl *nl,
			   struct mmk_nl_req *req, const char *what, int error,
			   const char *extack, struct mmk_nl_reply *r)
{
	ASSERT_EQ(0, mmk_nl_talk(nl, &req->nlh, r)) TH_LOG("%s", what);
	EXPECT_EQ(error, r->error) TH_LOG("%s: got %d (%s), extack \"%s\"", what, r->error,
					  strerror(-r->error), r->extack);
	EXPECT_EQ(0U, r->nr) TH_LOG("%s: a reply came with the error", what);
	if (extack) {
		EXPECT_NE(0, r->extack[0]) TH_LOG("%s: no extack message", what);
		if (extack[0]) {
			EXPECT_STREQ(extack, r->extack) TH_LOG("%s", what);
		}
	}
	TH_LOG("%-40s -> %-4d \"%s\"", what, r->error, r->extack);
}

TEST_F(nl, malformed_requests_get_errors_with_reasons)
{
	const struct mmk_nl_msg *m;
	struct mmk_nl_reply r;
	struct mmk_nl_req req;
	uint32_t id = 0, unused;
	unsigned int i;
	int fd;

	/* At least one pool exists, so a request that got far would find one. */
	fd = mgmt_create(NULL, PAYLOAD, 2, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	unused = unused_pool_id(_metadata, &self->nl);

	for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];

		build_bad(&self->nl, &req, c->kind, unused);
		expect_refused(_metadata, &self->nl, &req, c->what, c->error, c->extack, &r);
		mmk_nl_reply_free(&r);
	}

	/* The missing attribute is named, and the family still answers. */
	build_bad(&self->nl, &req, BAD_NO_ATTRS, unused);
	ASSERT_EQ(0, mmk_nl_talk(&self->nl, &req.nlh, &r));
	EXPECT_TRUE(r.has_miss);
	EXPECT_EQ((uint32_t)MMK_A_POOL_ID, r.miss_type);
	mmk_nl_reply_free(&r);
	m = get_one(_metadata, &self->nl, id, NULL, &r);
	EXPECT_NE(NULL, m);
	mmk_nl_reply_free(&r);
	close(fd);
}

/*
 * Malformed queue and session requests.  Attribute values: a u32, a
 * string, or the test's pool (its id or its name), or a pool id no pool
 * has.
 */
enum bad_val { V_U32, V_U64, V_STR, V_POOL_ID, V_POOL_NAME, V_UNUSED_POOL };

static const struct member_bad_case {
	const char *what;
	uint8_t cmd;
	bool dump;
	struct { uint16_t type; enum bad_val v; uint32_t u32; const char *str; } attrs[3];
	int error;
	const char *extack;	/* as in bad_cases */
	uint16_t miss;		/* the missing attribute the kernel names, 0 if none */
} member_bad_cases[] = {
	/* A dump's own errors come in NLMSG_DONE, which has no missing-attribute type. */
	{ "queue dump without a pool", MMK_CMD_QUEUE_GET, true, { },
	  -EINVAL, "pool id or name required", 0 },
	{ "queue dump with pool id and name", MMK_CMD_QUEUE_GET, true,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL },
	    { MMK_A_QUEUE_POOL_NAME, V_POOL_NAME, 0, NULL } },
	  -EINVAL, "give the pool id or its name, not both", 0 },
	{ "queue dump with a queue id", MMK_CMD_QUEUE_GET, true,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_QUEUE_ID, V_U32, 1, NULL } },
	  -EINVAL, "a queue dump takes only the pool id or name", 0 },
	{ "queue dump with a queue name", MMK_CMD_QUEUE_GET, true,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_QUEUE_NAME, V_STR, 0, "q" } },
	  -EINVAL, "a queue dump takes only the pool id or name", 0 },
	{ "queue dump of an unused pool id", MMK_CMD_QUEUE_GET, true,
	  { { MMK_A_QUEUE_POOL_ID, V_UNUSED_POOL, 0, NULL } }, -ENOENT, "no such pool", 0 },
	{ "queue dump of pool 0", MMK_CMD_QUEUE_GET, true,
	  { { MMK_A_QUEUE_POOL_ID, V_U32, 0, NULL } }, -ERANGE, "", 0 },
	{ "queue dump with pool id as a u64", MMK_CMD_QUEUE_GET, true,
	  { { MMK_A_QUEUE_POOL_ID, V_U64, 1, NULL } }, -EINVAL, "", 0 },
	{ "queue dump with a reply-only attribute", MMK_CMD_QUEUE_GET, true,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_QUEUE_ITEMS, V_U32, 1, NULL } }, -EINVAL, "", 0 },
	{ "queue get without a queue", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL } },
	  -EINVAL, "queue id or name required", MMK_A_QUEUE_ID },
	{ "queue get without a pool", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_ID, V_U32, 1, NULL } }, -EINVAL, "pool id or name required", MMK_A_QUEUE_POOL_ID },
	{ "queue get by id and name", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_QUEUE_ID, V_U32, 1, NULL },
	    { MMK_A_QUEUE_NAME, V_STR, 0, "q" } },
	  -EINVAL, "give the queue id or its name, not both", 0 },
	{ "queue get of queue 0", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_QUEUE_ID, V_U32, 0, NULL } }, -ERANGE, "", 0 },
	{ "queue get of an unused queue id", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_QUEUE_ID, V_U32, 4000000000U, NULL } },
	  -ENOENT, "no such queue", 0 },
	{ "queue get of an unused name", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_POOL_NAME, V_POOL_NAME, 0, NULL }, { MMK_A_QUEUE_NAME, V_STR, 0, "nosuch" } },
	  -ENOENT, "no such queue", 0 },
	{ "queue get with a 64-byte name", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_POOL_ID, V_POOL_ID, 0, NULL },
	    { MMK_A_QUEUE_NAME, V_STR, 0,
	      "0123456789012345678901234567890123456789012345678901234567890123" } },
	  -EINVAL, "", 0 },
	{ "queue get in an unused pool", MMK_CMD_QUEUE_GET, false,
	  { { MMK_A_QUEUE_POOL_ID, V_UNUSED_POOL, 0, NULL }, { MMK_A_QUEUE_ID, V_U32, 1, NULL } },
	  -ENOENT, "no such pool", 0 },
	{ "session dump without a pool", MMK_CMD_SESSION_GET, true, { },
	  -EINVAL, "pool id or name required", 0 },
	{ "session dump with a session id", MMK_CMD_SESSION_GET, true,
	  { { MMK_A_SESSION_POOL_NAME, V_POOL_NAME, 0, NULL }, { MMK_A_SESSION_ID, V_U32, 1, NULL } },
	  -EINVAL, "a session dump takes only the pool id or name", 0 },
	{ "session dump of an unused pool id", MMK_CMD_SESSION_GET, true,
	  { { MMK_A_SESSION_POOL_ID, V_UNUSED_POOL, 0, NULL } }, -ENOENT, "no such pool", 0 },
	{ "session dump with a queue name", MMK_CMD_SESSION_GET, true,
	  { { MMK_A_SESSION_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_QUEUE_NAME, V_STR, 0, "q" } },
	  -EINVAL, "", 0 },
	{ "session get without a session", MMK_CMD_SESSION_GET, false,
	  { { MMK_A_SESSION_POOL_ID, V_POOL_ID, 0, NULL } },
	  -EINVAL, "session id required", MMK_A_SESSION_ID },
	{ "session get of session 0", MMK_CMD_SESSION_GET, false,
	  { { MMK_A_SESSION_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_SESSION_ID, V_U32, 0, NULL } }, -ERANGE, "", 0 },
	{ "session get of an unused session id", MMK_CMD_SESSION_GET, false,
	  { { MMK_A_SESSION_POOL_ID, V_POOL_ID, 0, NULL }, { MMK_A_SESSION_ID, V_U32, 4000000000U, NULL } },
	  -ENOENT, "no such session", 0 },
	{ "session get with pool name without NUL", MMK_CMD_SESSION_GET, false,
	  { { MMK_A_SESSION_POOL_NAME, V_STR, 3, "abc" }, { MMK_A_SESSION_ID, V_U32, 1, NULL } },
	  -EINVAL, "", 0 },
};

TEST_F(nl, malformed_queue_and_session_requests_get_errors_with_reasons)
{
	struct mmk_nl_reply r;
	struct mmk_nl_req req;
	uint32_t id = 0, unused;
	unsigned int i, k;
	char name[48];
	uint64_t u64;
	int fd, qfd;

	snprintf(name, sizeof(name), "%s-bad", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 2, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	qfd = mgmt_queue(fd, true, "q", MMK_QUEUE_REJECT, 2, 0, 0, NULL);
	ASSERT_LE(0, qfd);
	unused = unused_pool_id(_metadata, &self->nl);

	for (i = 0; i < ARRAY_SIZE(member_bad_cases); i++) {
		const struct member_bad_case *c = &member_bad_cases[i];

		mmk_nl_req_init(&req, self->nl.family, c->dump ? NLM_F_DUMP : NLM_F_ACK, c->cmd,
				MMK_FAMILY_VERSION);
		for (k = 0; k < ARRAY_SIZE(c->attrs) && c->attrs[k].type; k++) {
			uint16_t type = c->attrs[k].type;

			switch (c->attrs[k].v) {
			case V_U32:
				mmk_nl_put_u32(&req, type, c->attrs[k].u32);
				break;
			case V_U64:
				u64 = c->attrs[k].u32;
				mmk_nl_put(&req, type, &u64, sizeof(u64));
				break;
			case V_STR:
				/* u32, if set, is a length that leaves the NUL out. */
				mmk_nl_put(&req, type, c->attrs[k].str,
					   c->attrs[k].u32 ?: strlen(c->attrs[k].str) + 1);
				break;
			case V_POOL_ID:
				mmk_nl_put_u32(&req, type, id);
				break;
			case V_POOL_NAME:
				mmk_nl_put_str(&req, type, name);
				break;
			case V_UNUSED_POOL:
				mmk_nl_put_u32(&req, type, unused);
				break;
			}
		}
		expect_refused(_metadata, &self->nl, &req, c->what, c->error, c->extack, &r);
		if (c->miss) {
			EXPECT_TRUE(r.has_miss) TH_LOG("%s", c->what);
			EXPECT_EQ(c->miss, r.miss_type) TH_LOG("%s", c->what);
		}
		mmk_nl_reply_free(&r);
	}
	close(qfd);
	close(fd);
}

/* ---- dumps over many pools ------------------------------------------------- */

FIXTURE(many) {
	struct mmk_nl nl;
	unsigned long saved_max_pools;
	bool restore;
	uint32_t ids[DUMP_POOLS];
	int fds[DUMP_POOLS];
	unsigned int nr;
};

FIXTURE_SETUP(many)
{
	struct rlimit rl = { DUMP_POOLS + 256, DUMP_POOLS + 256 };
	unsigned long live = 0;
	char name[48];
	unsigned int i;
	int ret;

	self->nr = 0;
	ASSERT_EQ(0, mmk_nl_open(&self->nl));
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	ASSERT_EQ(0, mgmt_read_ulong(PARAM_DIR "max_pools", &self->saved_max_pools));
	ASSERT_EQ(0, mgmt_read_ulong(SYSFS_POOLS, &live));
	if (self->saved_max_pools < live + DUMP_POOLS + 8) {
		ASSERT_EQ(0, mgmt_write_ulong(PARAM_DIR "max_pools", live + DUMP_POOLS + 8));
		self->restore = true;
	}
	for (i = 0; i < DUMP_POOLS; i++) {
		snprintf(name, sizeof(name), "nld-%d-%u", getpid(), i);
		ret = mgmt_create(i % 3 ? name : NULL, 8, 1, 0600, TYPE, &self->ids[i]);
		ASSERT_LE(0, ret) TH_LOG("pool %u: %s", i, strerror(-ret));
		self->fds[i] = ret;
		self->nr++;
	}
}

FIXTURE_TEARDOWN(many)
{
	unsigned int i;

	for (i = 0; i < self->nr; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	if (self->restore)
		mgmt_write_ulong(PARAM_DIR "max_pools", self->saved_max_pools);
	mmk_nl_close(&self->nl);
}

static int index_of(const uint32_t *ids, unsigned int n, uint64_t id)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	return -1;
}

/* Ids strictly increase through the whole dump: no repeats, resumed in order. */
static void expect_ordered(struct __test_metadata *_metadata, const struct mmk_nl_reply *r)
{
	unsigned int i;

	for (i = 1; i < r->nr; i++) {
		EXPECT_LT(r->msgs[i - 1].val[MMK_A_POOL_ID], r->msgs[i].val[MMK_A_POOL_ID])
			TH_LOG("message %u", i);
	}
}

TEST_F_TIMEOUT(many, dump_resumes_over_1000_pools, 300)
{
	unsigned long live = 0;
	struct mmk_nl_reply r;
	unsigned int i, found = 0;
	char name[48];
	int k;

	ASSERT_EQ(0, mgmt_read_ulong(SYSFS_POOLS, &live));
	ASSERT_EQ(0, mmk_nl_dump(&self->nl, &r, NULL, NULL));
	EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
	EXPECT_TRUE(r.done);
	EXPECT_FALSE(r.intr);
	EXPECT_EQ(live, r.nr);
	/* Far more than one skb's worth: the dump was resumed many times. */
	EXPECT_LT(2U, r.parts);
	TH_LOG("%u pools in %u parts", r.nr, r.parts);
	expect_ordered(_metadata, &r);

	for (i = 0; i < r.nr; i++) {
		const struct mmk_nl_msg *m = &r.msgs[i];

		k = index_of(self->ids, self->nr, m->val[MMK_A_POOL_ID]);
		if (k < 0)
			continue;
		found++;
		EXPECT_EQ(MMK_CMD_POOL_GET, m->cmd);
		EXPECT_TRUE(m->flags & NLM_F_MULTI);
		EXPECT_EQ(1U, m->val[MMK_A_POOL_CAPACITY]);
		EXPECT_EQ(!!(k % 3), m->has[MMK_A_POOL_NAME]);
		if (k % 3) {
			snprintf(name, sizeof(name), "nld-%d-%u", getpid(), k);
			EXPECT_STREQ(name, m->name);
		}
	}
	EXPECT_EQ(DUMP_POOLS, found);
	mmk_nl_reply_free(&r);
}

struct churn {
	FIXTURE_DATA(many) *self;
	const struct mmk_nl_reply *r;
	uint64_t resume_after;	/* last id of the first part */
	bool closed[DUMP_POOLS];
	unsigned int nr_closed;
	uint32_t new_id;
	int new_fd;
};

/*
 * Between the first two parts: close every other pool that the dump has
 * not reached yet, and create one.
 */
static void churn(void *arg)
{
	struct churn *c = arg;
	unsigned int i;
	bool odd = false;

	if (!c->r->nr)
		return;
	c->resume_after = c->r->msgs[c->r->nr - 1].val[MMK_A_POOL_ID];
	for (i = 0; i < DUMP_POOLS; i++) {
		if (c->self->ids[i] <= c->resume_after)
			continue;
		odd = !odd;
		if (!odd)
			continue;
		close(c->self->fds[i]);
		c->self->fds[i] = -1;
		c->closed[i] = true;
		c->nr_closed++;
	}
	c->new_fd = mgmt_create(NULL, 8, 1, 0600, TYPE, &c->new_id);
}

/*
 * Pools destroyed and created while a dump is under way: no pool is
 * reported twice, every pool that lived throughout is reported, pools
 * destroyed before the dump reached them are not, and the parts after the
 * change say NLM_F_DUMP_INTR so that the reader knows to dump again.
 */
TEST_F_TIMEOUT(many, dump_across_changes_is_flagged, 300)
{
	struct churn c = { .self = self, .new_fd = -1 };
	unsigned int i, closed_seen = 0, closed_gone = 0;
	uint32_t last_closed_seen = 0, first_closed_gone = UINT32_MAX;
	struct mmk_nl_reply r;

	c.r = &r;
	ASSERT_EQ(0, mmk_nl_dump(&self->nl, &r, churn, &c));
	ASSERT_LE(0, c.new_fd);
	EXPECT_EQ(0, r.error);
	EXPECT_TRUE(r.done);
	EXPECT_TRUE(r.intr);
	expect_ordered(_metadata, &r);
	/* A part holds far fewer than 1,000 pools: most were closed under it. */
	EXPECT_LT(DUMP_POOLS / 4, c.nr_closed);
	TH_LOG("first part ended at id %llu; %u pools closed after it",
	       (unsigned long long)c.resume_after, c.nr_closed);

	/*
	 * The kernel builds the next part as soon as the reader takes one, so
	 * closed pools in the part built before the change may still show.
	 * Those must all come before (in id order) every closed pool that
	 * does not show; a pool that stayed open must always show.
	 */
	for (i = 0; i < DUMP_POOLS; i++) {
		bool seen = mmk_nl_find(&r, self->ids[i]);

		if (!c.closed[i]) {
			EXPECT_TRUE(seen) TH_LOG("pool %u (id %u) is missing", i, self->ids[i]);
		} else if (seen) {
			closed_seen++;
			if (self->ids[i] > last_closed_seen)
				last_closed_seen = self->ids[i];
		} else {
			closed_gone++;
			if (self->ids[i] < first_closed_gone)
				first_closed_gone = self->ids[i];
		}
	}
	EXPECT_LT(0U, closed_gone);
	EXPECT_LT(last_closed_seen, first_closed_gone);
	TH_LOG("closed pools: %u still reported (built before the change), %u not",
	       closed_seen, closed_gone);
	mmk_nl_reply_free(&r);
	close(c.new_fd);
}

/* ---- dumps over many queues and sessions ---------------------------------------- */

#define MANY_QUEUES	300U
#define MANY_SESSIONS	600U

/* Member ids strictly increase through the whole dump. */
static void expect_members_ordered(struct __test_metadata *_metadata,
				   const struct mmk_nl_reply *r)
{
	unsigned int i;

	for (i = 1; i < r->nr; i++) {
		EXPECT_LT(r->msgs[i - 1].val[MMK_A_QUEUE_ID], r->msgs[i].val[MMK_A_QUEUE_ID])
			TH_LOG("message %u", i);
	}
}

struct closer {
	int *fds;
	unsigned int n;
};

/* Between two parts: close every descriptor of the pool, which destroys it. */
static void close_all(void *arg)
{
	struct closer *c = arg;
	unsigned int i;

	for (i = 0; i < c->n; i++) {
		if (c->fds[i] >= 0)
			close(c->fds[i]);
		c->fds[i] = -1;
	}
}

/*
 * Dumps of a pool's queues and sessions that take several parts: every
 * member once, in id order; and a pool destroyed between two parts ends
 * the dump early, flagged NLM_F_DUMP_INTR, with the reason.
 */
TEST_F_TIMEOUT(nl, member_dumps_resume_and_flag_a_vanished_pool, 300)
{
	struct rlimit rl = { MANY_QUEUES + MANY_SESSIONS + 256, MANY_QUEUES + MANY_SESSIONS + 256 };
	int fds[1 + MANY_QUEUES + MANY_SESSIONS];
	struct closer c = { .fds = fds };
	unsigned long saved = 0;
	struct mmk_nl_reply r;
	char name[48], qname[16];
	unsigned int i, n = 0;
	uint32_t id = 0;
	int ret;

	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	snprintf(name, sizeof(name), "%s-many", self->prefix);
	fds[n] = mgmt_create(name, 8, 1, 0600, TYPE, &id);
	ASSERT_LE(0, fds[n++]);

	ASSERT_EQ(0, mgmt_read_ulong(PARAM_DIR "max_queues_per_pool", &saved));
	ASSERT_EQ(0, mgmt_write_ulong(PARAM_DIR "max_queues_per_pool", MANY_QUEUES));
	for (i = 0, ret = 0; i < MANY_QUEUES && ret >= 0; i++) {
		snprintf(qname, sizeof(qname), "q%u", i);
		ret = mgmt_queue(fds[0], true, qname, MMK_QUEUE_REJECT, 1, 0, 0, NULL);
		if (ret >= 0)
			fds[n++] = ret;
	}
	mgmt_write_ulong(PARAM_DIR "max_queues_per_pool", saved);
	ASSERT_LE(0, ret) TH_LOG("queue %u: %s", i, strerror(-ret));
	for (i = 0; i < MANY_SESSIONS; i++) {
		fds[n] = mmk_attach(name, TYPE);
		ASSERT_LE(0, fds[n++]) TH_LOG("session %u", i);
	}
	c.n = n;

	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_QUEUE_GET, id, NULL, 0, NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
	EXPECT_TRUE(r.done);
	EXPECT_FALSE(r.intr);
	EXPECT_EQ(MANY_QUEUES, r.nr);
	EXPECT_LT(2U, r.parts);
	expect_members_ordered(_metadata, &r);
	TH_LOG("%u queues in %u parts", r.nr, r.parts);
	mmk_nl_reply_free(&r);

	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_SESSION_GET, 0, name, 0, NULL, &r, NULL,
				   NULL));
	EXPECT_EQ(0, r.error) TH_LOG("extack \"%s\"", r.extack);
	EXPECT_TRUE(r.done);
	EXPECT_FALSE(r.intr);
	EXPECT_EQ(1 + MANY_SESSIONS, r.nr);
	EXPECT_LT(2U, r.parts);
	expect_members_ordered(_metadata, &r);
	TH_LOG("%u sessions in %u parts", r.nr, r.parts);
	mmk_nl_reply_free(&r);

	/* The part after the first was built before the pool went: at least it shows. */
	ASSERT_EQ(0, mmk_nl_member(&self->nl, MMK_CMD_SESSION_GET, id, NULL, 0, NULL, &r,
				   close_all, &c));
	EXPECT_EQ(0, r.error);
	EXPECT_TRUE(r.done);
	EXPECT_TRUE(r.intr);
	EXPECT_LT(0U, r.nr);
	EXPECT_GT(1 + MANY_SESSIONS, r.nr);
	EXPECT_STREQ("the pool went away during the dump", r.extack);
	expect_members_ordered(_metadata, &r);
	TH_LOG("%u sessions reported before the pool went away", r.nr);
	mmk_nl_reply_free(&r);
	close_all(&c);
}

TEST_HARNESS_MAIN
