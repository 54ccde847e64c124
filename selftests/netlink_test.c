// SPDX-License-Identifier: GPL-2.0
/*
 * The "mmk" generic netlink family (docs/netlink/mmk.yaml): pool get by
 * id, by name and by dump, the numbers it reports against what each test
 * just did, who sees which pool, the monitor group's events, dumps that
 * resume over 1,000 pools, and malformed requests.
 *
 * The tests run as root, talk netlink through mmk_nl.h (raw sockets, so
 * that they can also send what a library would refuse to), and take other
 * identities in forked children.
 */
#define _GNU_SOURCE
#include <errno.h>
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
	[MMK_A_POOL_PAYLOAD_TYPE] = 8, [MMK_A_POOL_TOKEN] = 8, [MMK_A_POOL_IPC_NS] = 4,
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
	EXPECT_EQ((uint32_t)MMK_FAMILY_VERSION, self->nl.version);
	EXPECT_EQ(1U, self->nl.nr_ops);
	EXPECT_TRUE(self->nl.op_get_do);
	EXPECT_TRUE(self->nl.op_get_dump);
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

TEST_F(nl, malformed_requests_get_errors_with_reasons)
{
	const struct mmk_nl_msg *m;
	struct mmk_nl_reply r;
	struct mmk_nl_req req;
	uint32_t id = 0, unused = 65534;
	unsigned int i;
	int fd;

	/* At least one pool exists, so a request that got far would find one. */
	fd = mgmt_create(NULL, PAYLOAD, 2, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_nl_dump(&self->nl, &r, NULL, NULL));
	while (mmk_nl_find(&r, unused))
		unused--;
	mmk_nl_reply_free(&r);

	for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];

		build_bad(&self->nl, &req, c->kind, unused);
		ASSERT_EQ(0, mmk_nl_talk(&self->nl, &req.nlh, &r)) TH_LOG("%s", c->what);
		EXPECT_EQ(c->error, r.error) TH_LOG("%s: got %d (%s), extack \"%s\"", c->what,
						    r.error, strerror(-r.error), r.extack);
		EXPECT_EQ(0U, r.nr) TH_LOG("%s: a reply came with the error", c->what);
		if (c->extack) {
			EXPECT_NE(0, r.extack[0]) TH_LOG("%s: no extack message", c->what);
			if (c->extack[0]) {
				EXPECT_STREQ(c->extack, r.extack) TH_LOG("%s", c->what);
			}
		}
		TH_LOG("%-40s -> %-4d \"%s\"", c->what, r.error, r.extack);
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

TEST_HARNESS_MAIN
