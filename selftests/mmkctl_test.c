// SPDX-License-Identifier: GPL-2.0
/*
 * mmkctl, run as a program: what "list" and "show" print against what each
 * test just did, in text, pretty text and JSON, with the queues and the
 * sessions (who holds what) that "show" lists; "monitor" printing every
 * kind of event; what an unprivileged uid sees; one-line errors and exit
 * status when a pool does not exist or the module is not loaded.
 *
 * JSON output is checked with the strict parser of mmk_json.h (the guest
 * has no other JSON tool).  mmkctl is found as $MMKCTL, or on $PATH.
 * The module_not_loaded test unloads and reloads mmk.ko ($MMK_KO).
 * Each test runs mmkctl many times; on a slow (debug, emulated) kernel
 * that takes a while, hence the longer harness timeouts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/syscall.h>

#include "mmk_test.h"
#include "mmk_mgmt.h"
#include "mmk_json.h"
#include "kselftest_harness.h"

#define TYPE		0x6d6d6b63746c3031ULL	/* "mmkctl01" */
#define PAYLOAD		100U

static const char *mmkctl_path(void)
{
	const char *p = getenv("MMKCTL");

	return p && *p ? p : "mmkctl";
}

/* ---- running mmkctl ------------------------------------------------------------ */

struct run {
	int status;		/* exit status, 128 + signal, or -1 */
	char *out, *err;
	size_t out_len, err_len;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

static int append(char **buf, size_t *len, int fd)
{
	char chunk[4096], *p;
	ssize_t n;

	n = read(fd, chunk, sizeof(chunk));
	if (n <= 0)
		return n < 0 && errno == EINTR ? 1 : 0;
	p = realloc(*buf, *len + n + 1);
	if (!p)
		return 0;
	memcpy(p + *len, chunk, n);
	*len += n;
	p[*len] = '\0';
	*buf = p;
	return 1;
}

/* Run mmkctl with @argv (NULL-terminated, without argv[0]) as @uid (-1: as is). */
static int run_ctl(struct run *r, int uid, const char *const *argv)
{
	const char *args[16];
	int out[2], err[2], open_fds = 2;
	struct pollfd pfd[2];
	unsigned int i;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	args[0] = mmkctl_path();
	for (i = 0; argv[i] && i + 2 < ARRAY_SIZE(args); i++)
		args[i + 1] = argv[i];
	args[i + 1] = NULL;
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return -errno;
	pid = start_child();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		if (uid >= 0 && mgmt_become(uid, uid))
			_exit(126);
		execvp(args[0], (char *const *)args);
		fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	pfd[0] = (struct pollfd){ .fd = out[0], .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = err[0], .events = POLLIN };
	while (open_fds) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents && !append(&r->out, &r->out_len, out[0])) {
			pfd[0].fd = -1;
			open_fds--;
		}
		if (pfd[1].revents && !append(&r->err, &r->err_len, err[0])) {
			pfd[1].fd = -1;
			open_fds--;
		}
	}
	close(out[0]);
	close(err[0]);
	r->status = wait_child(pid);
	return 0;
}

#define RUN(r, ...) run_ctl((r), -1, (const char *const[]){ __VA_ARGS__, NULL })
#define RUN_AS(r, uid, ...) run_ctl((r), (uid), (const char *const[]){ __VA_ARGS__, NULL })

static unsigned int count_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A failure: this exit status, nothing on stdout, exactly one line on stderr. */
static void expect_one_line_error(struct __test_metadata *_metadata, const struct run *r,
				  int status, const char *needle)
{
	EXPECT_EQ(status, r->status) TH_LOG("stderr: %s", r->err);
	EXPECT_EQ(0U, r->out_len) TH_LOG("stdout: %s", r->out);
	EXPECT_EQ(1U, count_lines(r->err)) TH_LOG("stderr: %s", r->err);
	EXPECT_EQ('\n', r->err_len ? r->err[r->err_len - 1] : 0);
	EXPECT_EQ(0, strncmp(r->err, "mmkctl: ", 8)) TH_LOG("stderr: %s", r->err);
	if (needle) {
		EXPECT_NE(NULL, strstr(r->err, needle)) TH_LOG("\"%s\" not in: %s", needle, r->err);
	}
}

/* ---- text output ------------------------------------------------------------------ */

#define MAX_PAIRS	32

/* One record of text output: "KIND ID" then key/value pairs. */
struct text_pool {
	char *words[2 * MAX_PAIRS + 2];
	unsigned int nr;
};

static const char *const text_keys[] = {
	"name", "memory-class", "owner-uid", "owner-gid", "mode", "payload-type", "flags",
	"payload-size", "slot-size", "capacity", "available", "map-size", "sessions", "queues",
	"read-guards", "write-guards", "poisoned", "stores", "frees", "no-free-slots", "ipc-ns",
};

static const char *const queue_text_keys[] = {
	"name", "policy", "watermark", "items", "bytes", "high-items", "cap-items", "soft-items",
	"cap-bytes", "soft-bytes", "pushes", "pops", "rejected", "drops-newest", "drops-oldest",
	"drops-qos", "drops-deadline",
};

static const char *const session_text_keys[] = {
	"pid", "comm", "uid", "read-guards", "write-guards", "loans", "popped", "queues-open",
};

/* The kinds of record, and the keys each may have. */
static const struct {
	const char *kind;
	const char *const *keys;
	unsigned int nr_keys;
} text_kinds[] = {
	{ "pool", text_keys, ARRAY_SIZE(text_keys) },
	{ "queue", queue_text_keys, ARRAY_SIZE(queue_text_keys) },
	{ "session", session_text_keys, ARRAY_SIZE(session_text_keys) },
};

static const char *text_get(const struct text_pool *p, const char *key)
{
	unsigned int i;

	for (i = 2; i + 1 < p->nr; i += 2)
		if (!strcmp(p->words[i], key))
			return p->words[i + 1];
	return NULL;
}

/*
 * Split text output into records: a record starts on a line that does not
 * start with a blank; lines that do continue it (-p).  Returns the number
 * of records, or -1 if one is not "KIND ID key value ..." with a known
 * kind and known, distinct keys.  @buf is modified.
 */
static int parse_text(char *buf, struct text_pool *pools, unsigned int max, char *why,
		      size_t whylen)
{
	char *line, *save = NULL, *w, *wsave;
	unsigned int n = 0, i, j, k, kind;
	bool known;

	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != ' ' && line[0] != '\t') {
			if (n == max) {
				snprintf(why, whylen, "more than %u records", max);
				return -1;
			}
			pools[n++].nr = 0;
		} else if (!n) {
			snprintf(why, whylen, "continuation line first: %s", line);
			return -1;
		}
		for (w = strtok_r(line, " \t", &wsave); w; w = strtok_r(NULL, " \t", &wsave)) {
			if (pools[n - 1].nr == ARRAY_SIZE(pools[n - 1].words)) {
				snprintf(why, whylen, "too many words");
				return -1;
			}
			pools[n - 1].words[pools[n - 1].nr++] = w;
		}
	}
	for (i = 0; i < n; i++) {
		struct text_pool *p = &pools[i];

		for (kind = 0; kind < ARRAY_SIZE(text_kinds); kind++)
			if (p->nr && !strcmp(p->words[0], text_kinds[kind].kind))
				break;
		if (p->nr < 2 || kind == ARRAY_SIZE(text_kinds) || p->nr % 2) {
			snprintf(why, whylen, "record %u: not \"KIND ID key value...\"", i);
			return -1;
		}
		for (j = 2; j < p->nr; j += 2) {
			known = false;
			for (k = 0; k < text_kinds[kind].nr_keys; k++)
				known |= !strcmp(p->words[j], text_kinds[kind].keys[k]);
			if (!known) {
				snprintf(why, whylen, "unknown %s key \"%s\"", p->words[0],
					 p->words[j]);
				return -1;
			}
			for (k = 2; k < j; k += 2) {
				if (!strcmp(p->words[j], p->words[k])) {
					snprintf(why, whylen, "key \"%s\" twice", p->words[j]);
					return -1;
				}
			}
		}
	}
	return n;
}

/* The record of @kind and @id, or NULL. */
static const struct text_pool *text_find_kind(const struct text_pool *pools, int n,
					      const char *kind, uint32_t id)
{
	char want[16];
	int i;

	snprintf(want, sizeof(want), "%u", id);
	for (i = 0; i < n; i++)
		if (!strcmp(pools[i].words[0], kind) && !strcmp(pools[i].words[1], want))
			return &pools[i];
	return NULL;
}

static const struct text_pool *text_find(const struct text_pool *pools, int n, uint32_t id)
{
	return text_find_kind(pools, n, "pool", id);
}

/* Every field of a text pool against MMK_IOC_POOL_INFO. */
static void expect_text_is(struct __test_metadata *_metadata, const struct text_pool *p,
			   const struct mmk_pool_info *info)
{
	static const char *const classes[] = { "host", "pinned-host", "device", "shared" };
	const struct { const char *key; uint64_t v; } nums[] = {
		{ "owner-uid", info->owner_uid }, { "owner-gid", info->owner_gid },
		{ "payload-size", info->payload_size }, { "slot-size", info->slot_size },
		{ "capacity", info->capacity }, { "available", info->available },
		{ "map-size", info->map_size }, { "sessions", info->sessions },
		{ "read-guards", info->read_guards }, { "write-guards", info->write_guards },
		{ "poisoned", info->poisoned }, { "stores", info->stores },
		{ "frees", info->frees }, { "no-free-slots", info->no_free_slots },
		{ "ipc-ns", mmk_self_ipc_ns() },
	};
	char want[32];
	unsigned int i;

	ASSERT_NE(NULL, p);
	snprintf(want, sizeof(want), "%u", info->pool_id);
	EXPECT_STREQ(want, p->words[1]);
	EXPECT_EQ(2 + 2 * (ARRAY_SIZE(text_keys) - !info->name[0]), p->nr);
	if (info->name[0]) {
		EXPECT_STREQ(info->name, text_get(p, "name") ?: "(none)");
	} else {
		EXPECT_EQ(NULL, text_get(p, "name"));
	}
	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		snprintf(want, sizeof(want), "%" PRIu64, nums[i].v);
		EXPECT_STREQ(want, text_get(p, nums[i].key) ?: "(none)") TH_LOG("%s", nums[i].key);
	}
	snprintf(want, sizeof(want), "%04o", info->mode);
	EXPECT_STREQ(want, text_get(p, "mode") ?: "(none)");
	snprintf(want, sizeof(want), "0x%" PRIx64, (uint64_t)info->payload_type);
	EXPECT_STREQ(want, text_get(p, "payload-type") ?: "(none)");
	EXPECT_STREQ(classes[info->memory_class & 3], text_get(p, "memory-class") ?: "(none)");
	EXPECT_STREQ(info->flags & MMK_POOL_PAGE_ALIGNED ? "page-aligned" : "none",
		     text_get(p, "flags") ?: "(none)");
}

/* Run mmkctl (text), parse, and check pool @fd's line. */
static void expect_text_run(struct __test_metadata *_metadata, int fd, const char *const *argv)
{
	struct text_pool pools[64];
	struct mmk_pool_info info;
	char why[128];
	struct run r;
	int n;

	ASSERT_EQ(0, run_ctl(&r, -1, argv));
	EXPECT_EQ(0, r.status) TH_LOG("%s %s: %s", argv[0], argv[1] ?: "", r.err);
	EXPECT_EQ(0U, r.err_len) TH_LOG("stderr: %s", r.err);
	n = parse_text(r.out, pools, ARRAY_SIZE(pools), why, sizeof(why));
	ASSERT_LE(0, n) TH_LOG("%s %s: %s", argv[0], argv[1] ?: "", why);
	ASSERT_EQ(0, mmk_info(fd, &info));
	expect_text_is(_metadata, text_find(pools, n, info.pool_id), &info);
	run_free(&r);
}

/* ---- JSON output ------------------------------------------------------------------- */

static const char *const json_keys[] = {
	"id", "name", "memory_class", "owner_uid", "owner_gid", "mode", "payload_type", "flags",
	"payload_size", "slot_size", "capacity", "available", "map_size", "sessions", "queues",
	"read_guards", "write_guards", "poisoned", "stores", "frees", "no_free_slots", "ipc_ns",
};

/* Members "show" adds to the pool: arrays of its queues and its sessions. */
static const char *const json_show_keys[] = { "queue_list", "session_list" };

static const struct json *json_find_pool(const struct json *arr, uint32_t id)
{
	const struct json *c;
	uint64_t v = 0;

	for (c = arr ? arr->child : NULL; c; c = c->next)
		if (json_u64(json_get(c, "id"), &v) && v == id)
			return c;
	return NULL;
}

static void expect_json_is(struct __test_metadata *_metadata, const struct json *o,
			   const struct mmk_pool_info *info)
{
	static const char *const classes[] = { "host", "pinned-host", "device", "shared" };
	const struct { const char *key; uint64_t v; } nums[] = {
		{ "id", info->pool_id },
		{ "owner_uid", info->owner_uid }, { "owner_gid", info->owner_gid },
		{ "payload_size", info->payload_size }, { "slot_size", info->slot_size },
		{ "capacity", info->capacity }, { "available", info->available },
		{ "map_size", info->map_size }, { "sessions", info->sessions },
		{ "read_guards", info->read_guards }, { "write_guards", info->write_guards },
		{ "poisoned", info->poisoned }, { "stores", info->stores },
		{ "frees", info->frees }, { "no_free_slots", info->no_free_slots },
		{ "ipc_ns", mmk_self_ipc_ns() },
	};
	const struct json *c, *flags;
	char want[32];
	unsigned int i, k;
	uint64_t v = 0;
	bool known;

	ASSERT_NE(NULL, o);
	ASSERT_TRUE(o->type == J_OBJECT);
	for (c = o->child; c; c = c->next) {
		known = false;
		for (k = 0; k < ARRAY_SIZE(json_keys); k++)
			known |= !strcmp(c->key, json_keys[k]);
		for (k = 0; k < ARRAY_SIZE(json_show_keys); k++) {
			if (strcmp(c->key, json_show_keys[k]))
				continue;
			known = true;
			EXPECT_TRUE(c->type == J_ARRAY) TH_LOG("%s", c->key);
		}
		EXPECT_TRUE(known) TH_LOG("unknown member \"%s\"", c->key);
	}
	/* Either both lists (show) or neither (list). */
	k = !!json_get(o, "queue_list") + !!json_get(o, "session_list");
	EXPECT_NE(1U, k);
	EXPECT_EQ(ARRAY_SIZE(json_keys) - !info->name[0] + k, json_count(o));
	if (info->name[0]) {
		EXPECT_STREQ(info->name, json_str(json_get(o, "name")) ?: "(none)");
	} else {
		EXPECT_EQ(NULL, json_get(o, "name"));
	}
	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		EXPECT_TRUE(json_u64(json_get(o, nums[i].key), &v)) TH_LOG("%s", nums[i].key);
		EXPECT_EQ(nums[i].v, v) TH_LOG("%s", nums[i].key);
	}
	snprintf(want, sizeof(want), "%04o", info->mode);
	EXPECT_STREQ(want, json_str(json_get(o, "mode")) ?: "(none)");
	snprintf(want, sizeof(want), "0x%" PRIx64, (uint64_t)info->payload_type);
	EXPECT_STREQ(want, json_str(json_get(o, "payload_type")) ?: "(none)");
	EXPECT_STREQ(classes[info->memory_class & 3],
		     json_str(json_get(o, "memory_class")) ?: "(none)");
	flags = json_get(o, "flags");
	ASSERT_NE(NULL, flags);
	EXPECT_TRUE(flags->type == J_ARRAY);
	if (info->flags & MMK_POOL_PAGE_ALIGNED) {
		EXPECT_EQ(1U, json_count(flags));
		EXPECT_STREQ("page-aligned", json_str(flags->child) ?: "(none)");
	} else {
		EXPECT_EQ(0U, json_count(flags));
	}
}

/* Run mmkctl -j ..., which must print one valid JSON array. */
static struct json *json_run(struct __test_metadata *_metadata, const char *const *argv)
{
	struct json *j;
	char err[160];
	struct run r;

	if (run_ctl(&r, -1, argv))
		return NULL;
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(0U, r.err_len) TH_LOG("stderr: %s", r.err);
	j = json_parse(r.out, r.out_len, err, sizeof(err));
	EXPECT_NE(NULL, j) TH_LOG("invalid JSON: %s\n%s", err, r.out);
	if (j) {
		EXPECT_TRUE(j->type == J_ARRAY);
	}
	run_free(&r);
	return j;
}

static void expect_json_run(struct __test_metadata *_metadata, int fd, const char *const *argv)
{
	struct mmk_pool_info info;
	struct json *j = json_run(_metadata, argv);

	ASSERT_NE(NULL, j);
	ASSERT_EQ(0, mmk_info(fd, &info));
	expect_json_is(_metadata, json_find_pool(j, info.pool_id), &info);
	json_free(j);
}

/* ---- the tests --------------------------------------------------------------------- */

FIXTURE(ctl) {
	char prefix[32];
};

FIXTURE_SETUP(ctl)
{
	struct run r;

	snprintf(self->prefix, sizeof(self->prefix), "ctl-%d", getpid());
	ASSERT_EQ(0, RUN(&r, "-V"));
	ASSERT_EQ(0, r.status) TH_LOG("cannot run %s: %s", mmkctl_path(), r.err);
	run_free(&r);
}

FIXTURE_TEARDOWN(ctl)
{
}

/*
 * Two sessions, stores, frees, a refused store, shared and write guards:
 * every form of list and show reports exactly that.
 */
TEST_F_TIMEOUT(ctl, list_and_show_report_what_was_done, 120)
{
	struct mmk_pool_info info;
	char name[48], id[16];
	uint64_t t[6], extra;
	struct mmk_guard g;
	uint32_t pool_id = 0;
	struct json *j;
	int a, b, i;

	snprintf(name, sizeof(name), "%s-show", self->prefix);
	a = mgmt_create(name, PAYLOAD, 6, 0640, TYPE, &pool_id);
	ASSERT_LE(0, a);
	snprintf(id, sizeof(id), "%u", pool_id);
	b = mmk_attach(name, TYPE);
	ASSERT_LE(0, b);
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(0, mgmt_store(i % 2 ? a : b, i, &t[i]));
	}
	ASSERT_EQ(-ENOSPC, mgmt_store(a, 9, &extra));
	ASSERT_EQ(-ENOSPC, mgmt_store(b, 9, &extra));
	ASSERT_EQ(0, mmk_free_token(a, t[0]));
	ASSERT_EQ(0, mmk_guard(a, MMK_IOC_READ, t[1], &g));
	ASSERT_EQ(0, mmk_guard(b, MMK_IOC_READ, t[1], &g));
	ASSERT_EQ(0, mmk_guard(b, MMK_IOC_PEEK_HEADER, t[2], &g));
	ASSERT_EQ(0, mmk_guard(a, MMK_IOC_READ_MUT, t[3], &g));

	/* The test's own account, before comparing mmkctl with the ioctl. */
	ASSERT_EQ(0, mmk_info(a, &info));
	EXPECT_EQ(1U, info.available);
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(3U, info.read_guards);
	EXPECT_EQ(1U, info.write_guards);
	EXPECT_EQ(6U, info.stores);
	EXPECT_EQ(1U, info.frees);
	EXPECT_EQ(2U, info.no_free_slots);

	expect_text_run(_metadata, a, (const char *const[]){ "show", name, NULL });
	expect_text_run(_metadata, a, (const char *const[]){ "show", id, NULL });
	expect_text_run(_metadata, a, (const char *const[]){ "show", "name", name, NULL });
	expect_text_run(_metadata, a, (const char *const[]){ "sh", "id", id, NULL });
	expect_text_run(_metadata, a, (const char *const[]){ "list", NULL });
	expect_text_run(_metadata, a, (const char *const[]){ "l", NULL });
	expect_text_run(_metadata, a, (const char *const[]){ "-p", "list", NULL });
	expect_text_run(_metadata, a, (const char *const[]){ "-pretty", "show", name, NULL });
	expect_json_run(_metadata, a, (const char *const[]){ "-j", "show", name, NULL });
	expect_json_run(_metadata, a, (const char *const[]){ "-json", "show", id, NULL });
	expect_json_run(_metadata, a, (const char *const[]){ "-j", "list", NULL });
	expect_json_run(_metadata, a, (const char *const[]){ "-j", "-p", "list", NULL });
	expect_json_run(_metadata, a, (const char *const[]){ "--pretty", "--json", "show", id,
							     NULL });

	/* show prints exactly one pool. */
	j = json_run(_metadata, (const char *const[]){ "-j", "show", id, NULL });
	ASSERT_NE(NULL, j);
	EXPECT_EQ(1U, json_count(j));
	json_free(j);

	/* Changes show up at once. */
	ASSERT_EQ(0, mmk_write_release(a, t[3]));
	ASSERT_EQ(0, mmk_read_release(b, t[1]));
	ASSERT_EQ(0, mmk_free_token(b, t[5]));
	close(b);
	expect_text_run(_metadata, a, (const char *const[]){ "show", name, NULL });
	expect_json_run(_metadata, a, (const char *const[]){ "-j", "show", name, NULL });
	close(a);
}

TEST_F_TIMEOUT(ctl, anonymous_and_page_aligned_pools, 120)
{
	struct mmk_pool_create c = {
		.flags = MMK_POOL_PAGE_ALIGNED, .payload_size = 200, .capacity = 3,
		.mode = 0600, .payload_type = TYPE, .memory_class = MMK_MEM_SHARED,
	};
	char id[16];
	uint64_t t;
	int fd;

	fd = mmk_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_CREATE, &c));
	ASSERT_EQ(0, mgmt_store(fd, 1, &t));
	snprintf(id, sizeof(id), "%u", c.pool_id);
	expect_text_run(_metadata, fd, (const char *const[]){ "show", id, NULL });
	expect_text_run(_metadata, fd, (const char *const[]){ "-p", "list", NULL });
	expect_json_run(_metadata, fd, (const char *const[]){ "-j", "show", id, NULL });
	expect_json_run(_metadata, fd, (const char *const[]){ "-j", "-p", "list", NULL });
	close(fd);
}

/* A writer killed while it holds its guard: mmkctl shows the poisoned slot. */
TEST_F_TIMEOUT(ctl, poisoned_after_writer_killed, 120)
{
	struct text_pool pools[4];
	char name[48], why[128];
	uint32_t id = 0;
	struct run r;
	pid_t writer;
	uint64_t t;
	int fd, n;

	snprintf(name, sizeof(name), "%s-poison", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 4, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mgmt_store(fd, 1, &t));
	writer = mgmt_start_writer(name, TYPE, t);
	ASSERT_LT(0, writer);
	expect_text_run(_metadata, fd, (const char *const[]){ "show", name, NULL });
	ASSERT_EQ(0, mgmt_kill_writer(writer));

	ASSERT_EQ(0, RUN(&r, "show", name));
	ASSERT_EQ(0, r.status);
	n = parse_text(r.out, pools, ARRAY_SIZE(pools), why, sizeof(why));
	ASSERT_EQ(2, n) TH_LOG("%s", why);	/* the pool and its one session */
	EXPECT_STREQ("session", pools[1].words[0]);
	EXPECT_STREQ("1", text_get(&pools[0], "poisoned"));
	EXPECT_STREQ("0", text_get(&pools[0], "write-guards"));
	EXPECT_STREQ("1", text_get(&pools[0], "sessions"));
	run_free(&r);
	expect_json_run(_metadata, fd, (const char *const[]){ "-j", "show", name, NULL });

	ASSERT_EQ(0, mmk_free_token(fd, t));
	ASSERT_EQ(0, RUN(&r, "show", name));
	n = parse_text(r.out, pools, ARRAY_SIZE(pools), why, sizeof(why));
	ASSERT_EQ(2, n) TH_LOG("%s", why);
	EXPECT_STREQ("0", text_get(&pools[0], "poisoned"));
	run_free(&r);
	close(fd);
}

/* ---- show: queues and who holds what --------------------------------------------------- */

static const char *const policy_names[] = { "reject", "drop-newest", "drop-oldest", "block", "qos" };
static const char *const wm_names[] = { "below-soft", "between", "at-hard" };

/* The numbers of a queue, by key, from MMK_IOC_QUEUE_INFO. */
struct kv {
	const char *key;
	uint64_t v;
};

static unsigned int queue_nums(const struct mmk_queue_info *q, struct kv *out)
{
	const struct kv nums[] = {
		{ "items", q->items }, { "bytes", q->bytes }, { "high-items", q->high_items },
		{ "cap-items", q->cap_items }, { "soft-items", q->soft_items },
		{ "cap-bytes", q->cap_bytes }, { "soft-bytes", q->soft_bytes },
		{ "pushes", q->pushes }, { "pops", q->pops }, { "rejected", q->rejected },
		{ "drops-newest", q->drops[MMK_DROP_NEWEST] },
		{ "drops-oldest", q->drops[MMK_DROP_OLDEST] },
		{ "drops-qos", q->drops[MMK_DROP_QOS] },
		{ "drops-deadline", q->drops[MMK_DROP_DEADLINE] },
	};

	memcpy(out, nums, sizeof(nums));
	return ARRAY_SIZE(nums);
}

/* What a holder's session must show. */
static unsigned int session_nums(const struct mgmt_holding *h, pid_t pid, struct kv *out)
{
	const struct kv nums[] = {
		{ "pid", pid }, { "uid", h->uid },
		{ "read-guards", h->reads + h->headers + h->pops },
		{ "write-guards", h->writes + h->loans }, { "loans", h->loans },
		{ "popped", h->pops }, { "queues-open", !!h->queue },
	};

	memcpy(out, nums, sizeof(nums));
	return ARRAY_SIZE(nums);
}

static void json_key(char *dst, const char *key)
{
	for (; *key; key++)
		*dst++ = *key == '-' ? '_' : *key;
	*dst = '\0';
}

/* Text: a record's numbers and enum words. */
static void expect_text_nums(struct __test_metadata *_metadata, const struct text_pool *p,
			     const struct kv *nums, unsigned int n)
{
	char want[32];
	unsigned int i;

	ASSERT_NE(NULL, p);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%" PRIu64, nums[i].v);
		EXPECT_STREQ(want, text_get(p, nums[i].key) ?: "(none)")
			TH_LOG("%s %s %s", p->words[0], p->words[1], nums[i].key);
	}
}

static void expect_json_nums(struct __test_metadata *_metadata, const struct json *o,
			     const struct kv *nums, unsigned int n)
{
	char key[32];
	unsigned int i;
	uint64_t v;

	ASSERT_NE(NULL, o);
	for (i = 0; i < n; i++) {
		json_key(key, nums[i].key);
		v = ~0ULL;
		EXPECT_TRUE(json_u64(json_get(o, key), &v)) TH_LOG("%s", key);
		EXPECT_EQ(nums[i].v, v) TH_LOG("%s", key);
	}
}

static const struct json *json_find_id(const struct json *arr, uint64_t id)
{
	return json_find_pool(arr, id);
}

/* Queues of the pool in show_lists_queues_and_sessions. */
static const struct {
	const char *name;
	uint32_t policy, cap;
	unsigned int pushes, pops;
} ctl_queues[] = {
	{ "frames", MMK_QUEUE_DROP_OLDEST, 2, 4, 0 },
	{ "", MMK_QUEUE_REJECT, 3, 4, 1 },
	{ "work", MMK_QUEUE_DROP_NEWEST, 4, 3, 0 },
};

/* Holders of the pool; the popper pops from "work". */
static const struct mgmt_holding ctl_holders[] = {
	{ .comm = "ctl-reader", .reads = 2, .headers = 1 },
	{ .comm = "ctl-writer", .writes = 1, .loans = 1 },
	{ .comm = "ctl-popper", .pops = 2, .queue = "work" },
	{ .comm = "ctl-nobody", .uid = NOBODY, .reads = 1 },
};

/*
 * show lists each queue with its numbers and each session with its pid,
 * command, uid and holdings, in every output form; list counts the queues.
 */
TEST_F_TIMEOUT(ctl, show_lists_queues_and_sessions, 180)
{
	const unsigned int nq = ARRAY_SIZE(ctl_queues), nh = ARRAY_SIZE(ctl_holders);
	static const char *const forms[][4] = {
		{ "show", NULL }, { "-p", "show", NULL }, { "-j", "show", NULL },
		{ "-j", "-p", "show", NULL },
	};
	struct mmk_queue_info qi[ARRAY_SIZE(ctl_queues)];
	int qfd[ARRAY_SIZE(ctl_queues)];
	pid_t pids[ARRAY_SIZE(ctl_holders)];
	uint64_t tokens[2 + ARRAY_SIZE(ctl_holders)], t = 0;
	struct text_pool recs[16];
	char name[48], comm[32], why[128];
	struct kv nums[16];
	unsigned int i, k, f;
	struct run r;
	uint32_t id = 0;
	int fd, n;

	snprintf(name, sizeof(name), "%s-holders", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 32, 0666, TYPE, &id);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(tokens); i++) {
		ASSERT_EQ(0, mgmt_store(fd, i, &tokens[i]));
	}
	for (i = 0; i < nq; i++) {
		qfd[i] = mgmt_queue(fd, true, ctl_queues[i].name, ctl_queues[i].policy,
				    ctl_queues[i].cap, 0, 0, NULL);
		ASSERT_LE(0, qfd[i]);
		for (k = 0; k < ctl_queues[i].pushes; k++) {
			ASSERT_EQ(0, mgmt_store(fd, 100 + k, &t));
			/* Admitted, dropped or refused: the counters say which. */
			if (mgmt_push(fd, qfd[i], t) < 0)
				ASSERT_EQ(0, mmk_free_token(fd, t));
		}
		for (k = 0; k < ctl_queues[i].pops; k++) {
			ASSERT_EQ(0, mgmt_pop(fd, qfd[i], &t));
		}
	}
	ASSERT_EQ(0, mgmt_start_holders(name, TYPE, ctl_holders, nh, tokens, pids));
	for (i = 0; i < nq; i++) {
		ASSERT_EQ(0, mmk_ioctl(qfd[i], MMK_IOC_QUEUE_INFO, &qi[i]));
	}
	mgmt_comm(comm, sizeof(comm));

	for (f = 0; f < ARRAY_SIZE(forms); f++) {
		const char *argv[6];
		bool json = !strcmp(forms[f][0], "-j");

		for (k = 0; forms[f][k]; k++)
			argv[k] = forms[f][k];
		argv[k++] = name;
		argv[k] = NULL;

		if (json) {
			const struct json *pool, *ql, *sl, *o;
			struct json *j = json_run(_metadata, argv);
			struct mmk_pool_info info;

			ASSERT_NE(NULL, j);
			ASSERT_EQ(1U, json_count(j));
			pool = j->child;
			ASSERT_EQ(0, mmk_info(fd, &info));
			expect_json_is(_metadata, pool, &info);
			EXPECT_TRUE(json_u64(json_get(pool, "queues"), &t));
			EXPECT_EQ(nq, t);
			ql = json_get(pool, "queue_list");
			sl = json_get(pool, "session_list");
			ASSERT_NE(NULL, ql);
			ASSERT_NE(NULL, sl);
			EXPECT_EQ(nq, json_count(ql));
			EXPECT_EQ(1 + nh, json_count(sl));
			for (i = 0; i < nq; i++) {
				o = json_find_id(ql, qi[i].queue_id);
				ASSERT_NE(NULL, o) TH_LOG("queue %u", qi[i].queue_id);
				expect_json_nums(_metadata, o, nums, queue_nums(&qi[i], nums));
				EXPECT_STREQ(policy_names[qi[i].policy],
					     json_str(json_get(o, "policy")) ?: "(none)");
				EXPECT_STREQ(wm_names[qi[i].watermark],
					     json_str(json_get(o, "watermark")) ?: "(none)");
				if (qi[i].name[0]) {
					EXPECT_STREQ(qi[i].name,
						     json_str(json_get(o, "name")) ?: "(none)");
				} else {
					EXPECT_EQ(NULL, json_get(o, "name"));
				}
			}
			/* Sessions in bind order: this process's first. */
			o = sl->child;
			ASSERT_NE(NULL, o);
			EXPECT_STREQ(comm, json_str(json_get(o, "comm")) ?: "(none)");
			EXPECT_TRUE(json_u64(json_get(o, "pid"), &t));
			EXPECT_EQ((uint64_t)getpid(), t);
			EXPECT_TRUE(json_u64(json_get(o, "queues_open"), &t));
			EXPECT_EQ(nq, t);
			for (i = 0; i < nh; i++) {
				o = o->next;
				ASSERT_NE(NULL, o);
				EXPECT_STREQ(ctl_holders[i].comm,
					     json_str(json_get(o, "comm")) ?: "(none)");
				expect_json_nums(_metadata, o, nums,
						 session_nums(&ctl_holders[i], pids[i], nums));
			}
			json_free(j);
			continue;
		}

		ASSERT_EQ(0, run_ctl(&r, -1, argv));
		EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
		n = parse_text(r.out, recs, ARRAY_SIZE(recs), why, sizeof(why));
		ASSERT_EQ((int)(1 + nq + 1 + nh), n) TH_LOG("%s", why);
		/* The pool, its queues, then its sessions. */
		EXPECT_STREQ("pool", recs[0].words[0]);
		snprintf(why, sizeof(why), "%u", nq);
		EXPECT_STREQ(why, text_get(&recs[0], "queues") ?: "(none)");
		for (i = 0; i < nq; i++) {
			const struct text_pool *p = text_find_kind(recs, n, "queue", qi[i].queue_id);

			EXPECT_EQ(&recs[1 + i], p);
			expect_text_nums(_metadata, p, nums, queue_nums(&qi[i], nums));
			EXPECT_STREQ(policy_names[qi[i].policy], text_get(p, "policy") ?: "(none)");
			EXPECT_STREQ(wm_names[qi[i].watermark], text_get(p, "watermark") ?: "(none)");
			if (qi[i].name[0]) {
				EXPECT_STREQ(qi[i].name, text_get(p, "name") ?: "(none)");
			} else {
				EXPECT_EQ(NULL, text_get(p, "name"));
			}
		}
		EXPECT_STREQ("session", recs[1 + nq].words[0]);
		EXPECT_STREQ(comm, text_get(&recs[1 + nq], "comm") ?: "(none)");
		for (i = 0; i < nh; i++) {
			const struct text_pool *p = &recs[2 + nq + i];

			EXPECT_STREQ("session", p->words[0]);
			EXPECT_STREQ(ctl_holders[i].comm, text_get(p, "comm") ?: "(none)");
			expect_text_nums(_metadata, p, nums,
					 session_nums(&ctl_holders[i], pids[i], nums));
		}
		run_free(&r);
	}

	/* list prints the queue count, and nothing of queues or sessions. */
	ASSERT_EQ(0, RUN(&r, "list"));
	n = parse_text(r.out, recs, ARRAY_SIZE(recs), why, sizeof(why));
	ASSERT_LE(1, n) TH_LOG("%s", why);
	snprintf(why, sizeof(why), "%u", nq);
	EXPECT_STREQ(why, text_get(text_find(recs, n, id), "queues") ?: "(none)");
	for (i = 0; i < (unsigned int)n; i++) {
		EXPECT_STREQ("pool", recs[i].words[0]);
	}
	run_free(&r);

	/* Once the holders are gone, only this process is left. */
	for (i = 0; i < nh; i++) {
		ASSERT_EQ(0, mgmt_kill_writer(pids[i]));
	}
	for (i = 0; i < nq; i++)
		close(qfd[i]);
	ASSERT_EQ(0, RUN(&r, "show", name));
	n = parse_text(r.out, recs, ARRAY_SIZE(recs), why, sizeof(why));
	ASSERT_EQ(2, n) TH_LOG("%s", why);
	EXPECT_STREQ("0", text_get(&recs[0], "queues") ?: "(none)");
	EXPECT_STREQ("0", text_get(&recs[1], "queues-open") ?: "(none)");
	run_free(&r);
	close(fd);
}

/* A pool with no queue: show's JSON still has both lists. */
TEST_F_TIMEOUT(ctl, show_without_queues_has_empty_lists, 120)
{
	char name[48];
	uint32_t id = 0;
	struct json *j;
	int fd;

	snprintf(name, sizeof(name), "%s-noq", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 2, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	j = json_run(_metadata, (const char *const[]){ "-j", "show", name, NULL });
	ASSERT_NE(NULL, j);
	ASSERT_EQ(1U, json_count(j));
	ASSERT_NE(NULL, json_get(j->child, "queue_list"));
	EXPECT_EQ(0U, json_count(json_get(j->child, "queue_list")));
	EXPECT_EQ(1U, json_count(json_get(j->child, "session_list")));
	json_free(j);
	close(fd);
}

/* ---- monitor ------------------------------------------------------------------------ */

struct monitor {
	pid_t pid;
	int fd;
	char buf[1 << 16];
	size_t len;
	bool eof;
};

static int monitor_start(struct monitor *m, bool json)
{
	const char *args[] = { mmkctl_path(), json ? "-j" : "monitor", json ? "monitor" : NULL,
			       NULL };
	int out[2];

	memset(m, 0, sizeof(*m));
	if (pipe2(out, O_CLOEXEC))
		return -errno;
	m->pid = start_child();
	if (m->pid < 0)
		return -errno;
	if (m->pid == 0) {
		dup2(out[1], 1);
		execvp(args[0], (char *const *)args);
		_exit(127);
	}
	close(out[1]);
	m->fd = out[0];
	return 0;
}

/*
 * The next line, or NULL after @timeout_ms (-1: wait for it) or at EOF.
 * The line stays valid until the next call.
 */
static char *monitor_line(struct monitor *m, int timeout_ms)
{
	static char line[1 << 16];
	struct pollfd pfd = { .fd = m->fd, .events = POLLIN };
	char *nl;
	ssize_t n;

	for (;;) {
		nl = memchr(m->buf, '\n', m->len);
		if (nl) {
			size_t l = nl - m->buf;

			memcpy(line, m->buf, l);
			line[l] = '\0';
			memmove(m->buf, nl + 1, m->len - l - 1);
			m->len -= l + 1;
			return line;
		}
		if (m->eof || m->len == sizeof(m->buf))
			return NULL;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return NULL;
		n = read(m->fd, m->buf + m->len, sizeof(m->buf) - m->len);
		if (n <= 0) {
			m->eof = true;
			continue;
		}
		m->len += n;
	}
}

static void monitor_stop(struct monitor *m)
{
	kill(m->pid, SIGTERM);
	wait_child(m->pid);
	close(m->fd);
}

/*
 * mmkctl joins the group some time after it starts, and nothing it prints
 * says when.  Create and destroy marker pools until one shows up: from
 * then on, every event reaches it.  The poll timeout only paces retries.
 */
static bool monitor_sync(struct monitor *m, const char *prefix)
{
	char name[48], *line;
	uint32_t id;
	int i, fd;

	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "%s-sync-%d", prefix, i);
		fd = mgmt_create(name, 8, 1, 0600, TYPE, &id);
		if (fd < 0)
			return false;
		close(fd);
		while ((line = monitor_line(m, 100)))
			if (strstr(line, name))
				return true;
		if (m->eof)
			return false;
	}
	return false;
}

/* The next event line about pool @id (skipping others), or NULL at EOF. */
static char *monitor_event_of(struct monitor *m, uint32_t id, bool json)
{
	char want[32], *line;

	if (json)
		snprintf(want, sizeof(want), "\"id\":%u,", id);
	else
		snprintf(want, sizeof(want), " pool %u ", id);
	while ((line = monitor_line(m, -1))) {
		char *hit = strstr(line, want);

		/* Text: "EVENT pool ID ..."; the id must be the second word. */
		if (hit && (json || hit == strchr(line, ' ')))
			return line;
	}
	return NULL;
}

/* Parse one -j monitor line, check its event name, return the object. */
static struct json *json_event(struct __test_metadata *_metadata, const char *line,
			       const char *event)
{
	struct json *j;
	char err[160];

	if (!line)
		return NULL;
	j = json_parse(line, strlen(line), err, sizeof(err));
	EXPECT_NE(NULL, j) TH_LOG("invalid JSON: %s\n%s", err, line);
	if (j) {
		EXPECT_TRUE(j->type == J_OBJECT);
		EXPECT_STREQ(event, json_str(json_get(j, "event")) ?: "(none)");
	}
	return j;
}

/*
 * Both output forms of monitor report, for one pool: created, exhausted,
 * poisoned (with the token) and destroyed, in that order.
 */
TEST_F_TIMEOUT(ctl, monitor_prints_every_event, 120)
{
	struct monitor *text, *json;
	struct mmk_pool_info info;
	char name[48], tok[32], *line;
	uint64_t t0, t1, extra, v = 0;
	struct json *j;
	uint32_t id = 0;
	pid_t writer;
	int fd;

	text = calloc(1, sizeof(*text));
	json = calloc(1, sizeof(*json));
	ASSERT_TRUE(text && json);
	ASSERT_EQ(0, monitor_start(text, false));
	ASSERT_EQ(0, monitor_start(json, true));
	ASSERT_TRUE(monitor_sync(text, self->prefix));
	ASSERT_TRUE(monitor_sync(json, self->prefix));

	snprintf(name, sizeof(name), "%s-events", self->prefix);
	fd = mgmt_create(name, PAYLOAD, 2, 0600, TYPE, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &info));
	ASSERT_EQ(0, mgmt_store(fd, 1, &t0));
	ASSERT_EQ(0, mgmt_store(fd, 2, &t1));
	ASSERT_EQ(-ENOSPC, mgmt_store(fd, 3, &extra));
	writer = mgmt_start_writer(name, TYPE, t1);
	ASSERT_LT(0, writer);
	ASSERT_EQ(0, mgmt_kill_writer(writer));
	close(fd);
	snprintf(tok, sizeof(tok), "0x%" PRIx64, t1);

	/* JSON: one object per line. */
	j = json_event(_metadata, monitor_event_of(json, id, true), "created");
	ASSERT_NE(NULL, j);
	EXPECT_STREQ(name, json_str(json_get(j, "name")) ?: "(none)");
	EXPECT_TRUE(json_u64(json_get(j, "capacity"), &v));
	EXPECT_EQ(2U, v);
	EXPECT_TRUE(json_u64(json_get(j, "available"), &v));
	EXPECT_EQ(2U, v);
	EXPECT_TRUE(json_u64(json_get(j, "sessions"), &v));
	EXPECT_EQ(1U, v);
	EXPECT_STREQ("0600", json_str(json_get(j, "mode")) ?: "(none)");
	json_free(j);

	j = json_event(_metadata, monitor_event_of(json, id, true), "exhausted");
	ASSERT_NE(NULL, j);
	EXPECT_TRUE(json_u64(json_get(j, "no_free_slots"), &v));
	EXPECT_EQ(1U, v);
	json_free(j);

	j = json_event(_metadata, monitor_event_of(json, id, true), "poisoned");
	ASSERT_NE(NULL, j);
	EXPECT_STREQ(tok, json_str(json_get(j, "token")) ?: "(none)");
	EXPECT_STREQ(name, json_str(json_get(j, "name")) ?: "(none)");
	json_free(j);

	j = json_event(_metadata, monitor_event_of(json, id, true), "destroyed");
	ASSERT_NE(NULL, j);
	EXPECT_TRUE(json_u64(json_get(j, "stores"), &v));
	EXPECT_EQ(2U, v);
	EXPECT_TRUE(json_u64(json_get(j, "frees"), &v));
	EXPECT_EQ(0U, v);
	EXPECT_TRUE(json_u64(json_get(j, "no_free_slots"), &v));
	EXPECT_EQ(1U, v);
	json_free(j);

	/* Text: "EVENT pool ID name NAME key value ...". */
	line = monitor_event_of(text, id, false);
	ASSERT_NE(NULL, line);
	EXPECT_EQ(0, strncmp(line, "created pool ", 13)) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, " capacity 2 ")) TH_LOG("%s", line);
	line = monitor_event_of(text, id, false);
	ASSERT_NE(NULL, line);
	EXPECT_EQ(0, strncmp(line, "exhausted pool ", 15)) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, " no-free-slots 1")) TH_LOG("%s", line);
	line = monitor_event_of(text, id, false);
	ASSERT_NE(NULL, line);
	EXPECT_EQ(0, strncmp(line, "poisoned pool ", 14)) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, tok)) TH_LOG("%s", line);
	line = monitor_event_of(text, id, false);
	ASSERT_NE(NULL, line);
	EXPECT_EQ(0, strncmp(line, "destroyed pool ", 15)) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, " stores 2 frees 0 no-free-slots 1")) TH_LOG("%s", line);

	monitor_stop(text);
	monitor_stop(json);
	free(text);
	free(json);
}

/* ---- who sees what, and errors ----------------------------------------------------------- */

TEST_F_TIMEOUT(ctl, unprivileged_sees_only_attachable_pools, 120)
{
	char pub[48], priv[48], id[16], err[160];
	uint32_t pub_id = 0, priv_id = 0, anon_id = 0;
	int fds[3], qfd[2], i;
	struct json *j;
	struct run r;

	snprintf(pub, sizeof(pub), "%s-pub", self->prefix);
	snprintf(priv, sizeof(priv), "%s-priv", self->prefix);
	fds[0] = mgmt_create(pub, PAYLOAD, 2, 0666, TYPE, &pub_id);
	fds[1] = mgmt_create(priv, PAYLOAD, 2, 0600, TYPE, &priv_id);
	fds[2] = mgmt_create(NULL, PAYLOAD, 2, 0666, TYPE, &anon_id);
	for (i = 0; i < 3; i++) {
		ASSERT_LE(0, fds[i]);
	}
	qfd[0] = mgmt_queue(fds[0], true, "pubq", MMK_QUEUE_REJECT, 2, 0, 0, NULL);
	qfd[1] = mgmt_queue(fds[1], true, "privq", MMK_QUEUE_REJECT, 2, 0, 0, NULL);
	ASSERT_LE(0, qfd[0]);
	ASSERT_LE(0, qfd[1]);

	/* Of the pool it may attach, nobody sees the queue and the session. */
	ASSERT_EQ(0, RUN_AS(&r, NOBODY, "-j", "show", pub));
	EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
	j = json_parse(r.out, r.out_len, err, sizeof(err));
	ASSERT_NE(NULL, j) TH_LOG("invalid JSON: %s\n%s", err, r.out);
	ASSERT_EQ(1U, json_count(j));
	EXPECT_EQ(1U, json_count(json_get(j->child, "queue_list")));
	EXPECT_EQ(1U, json_count(json_get(j->child, "session_list")));
	json_free(j);
	run_free(&r);

	ASSERT_EQ(0, RUN_AS(&r, NOBODY, "-j", "list"));
	EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
	j = json_parse(r.out, r.out_len, err, sizeof(err));
	ASSERT_NE(NULL, j) TH_LOG("invalid JSON: %s\n%s", err, r.out);
	EXPECT_NE(NULL, json_find_pool(j, pub_id));
	EXPECT_EQ(NULL, json_find_pool(j, priv_id));
	EXPECT_EQ(NULL, json_find_pool(j, anon_id));
	json_free(j);
	run_free(&r);

	ASSERT_EQ(0, RUN_AS(&r, NOBODY, "list"));
	EXPECT_EQ(0, r.status);
	EXPECT_NE(NULL, strstr(r.out, pub));
	EXPECT_EQ(NULL, strstr(r.out, priv));
	run_free(&r);

	ASSERT_EQ(0, RUN_AS(&r, NOBODY, "show", priv));
	expect_one_line_error(_metadata, &r, 1, "not found");
	run_free(&r);
	snprintf(id, sizeof(id), "%u", priv_id);
	ASSERT_EQ(0, RUN_AS(&r, NOBODY, "show", id));
	expect_one_line_error(_metadata, &r, 1, "not found");
	run_free(&r);
	snprintf(id, sizeof(id), "%u", anon_id);
	ASSERT_EQ(0, RUN_AS(&r, NOBODY, "-j", "show", id));
	expect_one_line_error(_metadata, &r, 1, "not found");
	run_free(&r);
	ASSERT_EQ(0, RUN_AS(&r, NOBODY, "monitor"));
	expect_one_line_error(_metadata, &r, 1, "CAP_SYS_ADMIN");
	run_free(&r);

	/* Root sees them all. */
	ASSERT_EQ(0, RUN(&r, "show", priv));
	EXPECT_EQ(0, r.status);
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "show", id));
	EXPECT_EQ(0, r.status);
	run_free(&r);
	close(qfd[0]);
	close(qfd[1]);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

TEST_F_TIMEOUT(ctl, errors_are_one_line_with_status, 120)
{
	char missing[48], toolong[80];
	struct run r;

	snprintf(missing, sizeof(missing), "%s-missing", self->prefix);
	memset(toolong, 'x', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = '\0';

	ASSERT_EQ(0, RUN(&r, "show", missing));
	expect_one_line_error(_metadata, &r, 1, "not found");
	EXPECT_NE(NULL, strstr(r.err, missing));
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "-j", "show", "name", missing));
	expect_one_line_error(_metadata, &r, 1, "not found");
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "show", "0"));
	expect_one_line_error(_metadata, &r, 1, "not a pool id");
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "show", "id", "65535"));
	expect_one_line_error(_metadata, &r, 1, "not a pool id");
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "show", toolong));
	expect_one_line_error(_metadata, &r, 1, "not a pool name");
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "frobnicate"));
	expect_one_line_error(_metadata, &r, 2, "unknown command");
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "-x", "list"));
	expect_one_line_error(_metadata, &r, 2, "unknown option");
	run_free(&r);

	/* Usage errors print the usage on stderr, status 2. */
	ASSERT_EQ(0, RUN(&r, "show"));
	EXPECT_EQ(2, r.status);
	EXPECT_EQ(0U, r.out_len);
	EXPECT_NE(NULL, strstr(r.err, "Usage:"));
	run_free(&r);
	ASSERT_EQ(0, RUN(&r, "help"));
	EXPECT_EQ(0, r.status);
	EXPECT_NE(NULL, strstr(r.out, "Usage:"));
	run_free(&r);
}

/* -j list parses, holds exactly the pools the kernel has, and each once. */
TEST_F_TIMEOUT(ctl, json_list_is_valid_and_complete, 120)
{
	unsigned long live = 0;
	const struct json *c, *d;
	uint32_t ids[8] = { 0 };
	char name[48];
	struct json *j;
	int fds[8], i;

	for (i = 0; i < 8; i++) {
		/* Names are printable ASCII without blanks or '/': JSON must escape some. */
		snprintf(name, sizeof(name), "%s-j%d\"q\\%c", self->prefix, i, "{}[],:'"[i % 7]);
		fds[i] = mgmt_create(i % 2 ? name : NULL, 8 << i, 1 + i, 0600, TYPE + i, &ids[i]);
		ASSERT_LE(0, fds[i]) TH_LOG("%s", name);
	}
	ASSERT_EQ(0, mgmt_read_ulong(SYSFS_POOLS, &live));
	j = json_run(_metadata, (const char *const[]){ "-j", "list", NULL });
	ASSERT_NE(NULL, j);
	EXPECT_EQ(live, json_count(j));
	for (c = j->child; c; c = c->next) {
		ASSERT_NE(NULL, json_get(c, "id"));
		for (d = c->next; d; d = d->next) {
			ASSERT_NE(NULL, json_get(d, "id"));
			EXPECT_STRNE(json_get(c, "id")->str, json_get(d, "id")->str);
		}
	}
	for (i = 0; i < 8; i++) {
		struct mmk_pool_info info;

		ASSERT_EQ(0, mmk_info(fds[i], &info));
		expect_json_is(_metadata, json_find_pool(j, ids[i]), &info);
	}
	json_free(j);
	j = json_run(_metadata, (const char *const[]){ "-j", "-p", "list", NULL });
	ASSERT_NE(NULL, j);
	EXPECT_EQ(live, json_count(j));
	json_free(j);
	for (i = 0; i < 8; i++)
		close(fds[i]);
}

/* ---- without the module -------------------------------------------------------------------- */

static int load_module(const char *ko)
{
	int fd, ret;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

/*
 * Unloads mmk.ko, runs each command, and loads it again.  No pool of this
 * program is open while it runs: the fixture tests close all of theirs.
 */
TEST(module_not_loaded)
{
	const char *ko = getenv("MMK_KO");
	static const char *const cmds[][3] = {
		{ "list" }, { "-j", "list" }, { "show", "1" }, { "monitor" },
	};
	unsigned int i;
	struct run r;

	if (!ko || !*ko)
		SKIP(return, "MMK_KO (the path of mmk.ko, to reload it) is not set");
	ASSERT_EQ(0, syscall(SYS_delete_module, "mmk", O_NONBLOCK))
		TH_LOG("rmmod mmk: %s", strerror(errno));
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		ASSERT_EQ(0, run_ctl(&r, -1, cmds[i]));
		expect_one_line_error(_metadata, &r, 1, "not loaded");
		TH_LOG("mmkctl %s: %.*s", cmds[i][0], (int)(r.err_len ? r.err_len - 1 : 0), r.err);
		run_free(&r);
	}
	ASSERT_EQ(0, load_module(ko)) TH_LOG("insmod %s", ko);
	ASSERT_EQ(0, RUN(&r, "list"));
	EXPECT_EQ(0, r.status) TH_LOG("%s", r.err);
	run_free(&r);
}

TEST_HARNESS_MAIN
