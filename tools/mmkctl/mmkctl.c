// SPDX-License-Identifier: GPL-2.0
/*
 * mmkctl - show mmk pools, their queues and who holds what, and watch their
 * events, over generic netlink.
 *
 *	mmkctl [-j] [-p] list
 *	mmkctl [-j] [-p] show NAME|ID
 *	mmkctl [-j] [-p] monitor
 *
 * See mmkctl.8.  The family is described by docs/netlink/mmk.yaml and
 * <linux/mmk_netlink.h>; messages are built and parsed with libmnl.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <linux/mmk.h>
#include <linux/mmk_netlink.h>

#define MMKCTL_VERSION	"1"

static const char *prog = "mmkctl";

static struct {
	bool json;
	bool pretty;
} opt;

/* ---- errors ------------------------------------------------------------- */

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn)) usage(FILE *f, int status)
{
	fprintf(f,
		"Usage: %s [OPTIONS] COMMAND\n"
		"\n"
		"Commands:\n"
		"  list                  show every pool you may see\n"
		"  show NAME|ID          show one pool, its queues and its sessions\n"
		"                        (also: show name NAME, show id ID)\n"
		"  monitor               print pool and slot events as they happen\n"
		"                        (needs CAP_SYS_ADMIN)\n"
		"  help                  print this help\n"
		"\n"
		"Options:\n"
		"  -j, -json             JSON output\n"
		"  -p, -pretty           pretty output: indented JSON, or text on several lines\n"
		"  -V, -Version          print the version\n"
		"  -h, -help             print this help\n",
		prog);
	exit(status);
}

/* ---- JSON writer ---------------------------------------------------------- */

/*
 * Streams JSON to stdout.  Each nesting level remembers whether it has a
 * member yet, to place commas; -p indents by four spaces per level.
 */
#define JSON_DEPTH	8

static struct {
	int depth;
	bool has_member[JSON_DEPTH];
	bool after_key;
} jw;

static void jw_newline(void)
{
	int i;

	if (!opt.pretty)
		return;
	putchar('\n');
	for (i = 0; i < jw.depth; i++)
		fputs("    ", stdout);
}

/*
 * Before any key, or any value not preceded by a key: a comma and a line
 * break as needed.  After a key, the value follows at once.
 */
static void jw_sep(void)
{
	if (jw.after_key) {
		jw.after_key = false;
		return;
	}
	if (jw.depth > 0) {
		if (jw.has_member[jw.depth])
			putchar(',');
		jw.has_member[jw.depth] = true;
		jw_newline();
	}
}

static void jw_open(char c)
{
	jw_sep();
	putchar(c);
	if (jw.depth + 1 >= JSON_DEPTH)
		fail("internal error: JSON nesting too deep");
	jw.has_member[++jw.depth] = false;
}

static void jw_close(char c)
{
	bool had = jw.has_member[jw.depth];

	jw.depth--;
	if (had)
		jw_newline();
	putchar(c);
}

static void jw_string_raw(const char *s)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		default:
			if (*p < 0x20 || *p >= 0x7f)
				printf("\\u%04x", *p);
			else
				putchar(*p);
		}
	}
	putchar('"');
}

static void jw_key(const char *key)
{
	jw_sep();
	jw_string_raw(key);
	fputs(opt.pretty ? ": " : ":", stdout);
	jw.after_key = true;
}

/* A member (@key not NULL) or an array element. */
static void jw_string(const char *key, const char *val)
{
	if (key)
		jw_key(key);
	jw_sep();
	jw_string_raw(val);
}

static void jw_uint(const char *key, uint64_t val)
{
	jw_key(key);
	jw_sep();
	printf("%" PRIu64, val);
}

/* ---- records: attributes and their presentation ------------------------------- */

/*
 * Attribute types as the family defines them (docs/netlink/mmk.yaml;
 * scripts/check-netlink-spec.py checks these tables against it).  An
 * attribute that does not match its type is treated as absent.
 */
static const enum mnl_attr_data_type pool_attr_types[MMK_A_POOL_MAX + 1] = {
	[MMK_A_POOL_ID]			= MNL_TYPE_U32,
	[MMK_A_POOL_NAME]		= MNL_TYPE_NUL_STRING,
	[MMK_A_POOL_FLAGS]		= MNL_TYPE_U32,
	[MMK_A_POOL_PAYLOAD_SIZE]	= MNL_TYPE_U32,
	[MMK_A_POOL_SLOT_SIZE]		= MNL_TYPE_U32,
	[MMK_A_POOL_CAPACITY]		= MNL_TYPE_U32,
	[MMK_A_POOL_AVAILABLE]		= MNL_TYPE_U32,
	[MMK_A_POOL_MAP_SIZE]		= MNL_TYPE_U64,
	[MMK_A_POOL_SESSIONS]		= MNL_TYPE_U32,
	[MMK_A_POOL_READ_GUARDS]	= MNL_TYPE_U32,
	[MMK_A_POOL_WRITE_GUARDS]	= MNL_TYPE_U32,
	[MMK_A_POOL_POISONED]		= MNL_TYPE_U32,
	[MMK_A_POOL_STORES]		= MNL_TYPE_U64,
	[MMK_A_POOL_FREES]		= MNL_TYPE_U64,
	[MMK_A_POOL_NO_FREE_SLOTS]	= MNL_TYPE_U64,
	[MMK_A_POOL_MEMORY_CLASS]	= MNL_TYPE_U32,
	[MMK_A_POOL_OWNER_UID]		= MNL_TYPE_U32,
	[MMK_A_POOL_OWNER_GID]		= MNL_TYPE_U32,
	[MMK_A_POOL_MODE]		= MNL_TYPE_U32,
	[MMK_A_POOL_PAYLOAD_TYPE]	= MNL_TYPE_U64,
	[MMK_A_POOL_TOKEN]		= MNL_TYPE_U64,
	[MMK_A_POOL_QUEUES]		= MNL_TYPE_U32,
	[MMK_A_POOL_IPC_NS]		= MNL_TYPE_U32,
};

static const enum mnl_attr_data_type queue_attr_types[MMK_A_QUEUE_MAX + 1] = {
	[MMK_A_QUEUE_POOL_ID]		= MNL_TYPE_U32,
	[MMK_A_QUEUE_POOL_NAME]		= MNL_TYPE_NUL_STRING,
	[MMK_A_QUEUE_ID]		= MNL_TYPE_U32,
	[MMK_A_QUEUE_NAME]		= MNL_TYPE_NUL_STRING,
	[MMK_A_QUEUE_POLICY]		= MNL_TYPE_U32,
	[MMK_A_QUEUE_WATERMARK]		= MNL_TYPE_U32,
	[MMK_A_QUEUE_CAP_ITEMS]		= MNL_TYPE_U32,
	[MMK_A_QUEUE_SOFT_ITEMS]	= MNL_TYPE_U32,
	[MMK_A_QUEUE_CAP_BYTES]		= MNL_TYPE_U64,
	[MMK_A_QUEUE_SOFT_BYTES]	= MNL_TYPE_U64,
	[MMK_A_QUEUE_ITEMS]		= MNL_TYPE_U32,
	[MMK_A_QUEUE_HIGH_ITEMS]	= MNL_TYPE_U32,
	[MMK_A_QUEUE_BYTES]		= MNL_TYPE_U64,
	[MMK_A_QUEUE_PUSHES]		= MNL_TYPE_U64,
	[MMK_A_QUEUE_POPS]		= MNL_TYPE_U64,
	[MMK_A_QUEUE_REJECTED]		= MNL_TYPE_U64,
	[MMK_A_QUEUE_DROPS_NEWEST]	= MNL_TYPE_U64,
	[MMK_A_QUEUE_DROPS_OLDEST]	= MNL_TYPE_U64,
	[MMK_A_QUEUE_DROPS_QOS]		= MNL_TYPE_U64,
	[MMK_A_QUEUE_DROPS_DEADLINE]	= MNL_TYPE_U64,
};

static const enum mnl_attr_data_type session_attr_types[MMK_A_SESSION_MAX + 1] = {
	[MMK_A_SESSION_POOL_ID]		= MNL_TYPE_U32,
	[MMK_A_SESSION_POOL_NAME]	= MNL_TYPE_NUL_STRING,
	[MMK_A_SESSION_ID]		= MNL_TYPE_U32,
	[MMK_A_SESSION_PID]		= MNL_TYPE_U32,
	[MMK_A_SESSION_COMM]		= MNL_TYPE_NUL_STRING,
	[MMK_A_SESSION_UID]		= MNL_TYPE_U32,
	[MMK_A_SESSION_READ_GUARDS]	= MNL_TYPE_U32,
	[MMK_A_SESSION_WRITE_GUARDS]	= MNL_TYPE_U32,
	[MMK_A_SESSION_LOANS]		= MNL_TYPE_U32,
	[MMK_A_SESSION_POPPED]		= MNL_TYPE_U32,
	[MMK_A_SESSION_QUEUES_OPEN]	= MNL_TYPE_U32,
};

/* Room for the attributes of every kind of record. */
#define REC_ATTRS	32
_Static_assert(MMK_A_POOL_MAX < REC_ATTRS && MMK_A_QUEUE_MAX < REC_ATTRS &&
	       MMK_A_SESSION_MAX < REC_ATTRS, "REC_ATTRS is too small");

/* One message of the family: a pool, a queue or a session. */
struct rec {
	bool has[REC_ATTRS];
	uint64_t val[REC_ATTRS];
	char str[MMK_NAME_MAX];		/* the kind's one string attribute */
};

enum field_fmt {
	FMT_UINT,	/* decimal number */
	FMT_HEX,	/* an identifier: 0x-hex, a string in JSON */
	FMT_MODE,	/* octal mode bits: 0600, a string in JSON */
	FMT_ENUM,	/* a value by name (field.names) */
	FMT_FLAGS,	/* MMK_POOL_* flags by name, an array in JSON */
	FMT_STR,	/* the record's string */
};

struct field {
	int attr;
	const char *key;	/* text key; JSON uses it with '_' for '-' */
	enum field_fmt fmt;
	bool line_break;	/* -p text: start a new line before this one */
	const char *const *names;	/* FMT_ENUM: names by value */
	size_t nr_names;
};

#define FIELD(attr, key, fmt, br)	{ attr, key, fmt, br, NULL, 0 }
#define FIELD_ENUM(attr, key, names, br) \
	{ attr, key, FMT_ENUM, br, names, sizeof(names) / sizeof(names[0]) }

static const char *const memory_classes[] = {
	[MMK_MEM_HOST]		= "host",
	[MMK_MEM_PINNED_HOST]	= "pinned-host",
	[MMK_MEM_DEVICE]	= "device",
	[MMK_MEM_SHARED]	= "shared",
};

static const char *const pool_flags[] = {
	"page-aligned",		/* MMK_POOL_PAGE_ALIGNED, bit 0 */
};

static const char *const queue_policies[] = {
	[MMK_QUEUE_REJECT]	= "reject",
	[MMK_QUEUE_DROP_NEWEST]	= "drop-newest",
	[MMK_QUEUE_DROP_OLDEST]	= "drop-oldest",
	[MMK_QUEUE_BLOCK]	= "block",
	[MMK_QUEUE_QOS]		= "qos",
};

static const char *const watermarks[] = {
	[MMK_WM_BELOW_SOFT]	= "below-soft",
	[MMK_WM_BETWEEN]	= "between",
	[MMK_WM_AT_HARD]	= "at-hard",
};

/* Every pool attribute after the id, in output order. */
static const struct field pool_fields[] = {
	FIELD(MMK_A_POOL_NAME, "name", FMT_STR, false),
	FIELD_ENUM(MMK_A_POOL_MEMORY_CLASS, "memory-class", memory_classes, true),
	FIELD(MMK_A_POOL_OWNER_UID, "owner-uid", FMT_UINT, false),
	FIELD(MMK_A_POOL_OWNER_GID, "owner-gid", FMT_UINT, false),
	FIELD(MMK_A_POOL_MODE, "mode", FMT_MODE, false),
	FIELD(MMK_A_POOL_PAYLOAD_TYPE, "payload-type", FMT_HEX, false),
	FIELD(MMK_A_POOL_FLAGS, "flags", FMT_FLAGS, false),
	FIELD(MMK_A_POOL_PAYLOAD_SIZE, "payload-size", FMT_UINT, true),
	FIELD(MMK_A_POOL_SLOT_SIZE, "slot-size", FMT_UINT, false),
	FIELD(MMK_A_POOL_CAPACITY, "capacity", FMT_UINT, false),
	FIELD(MMK_A_POOL_AVAILABLE, "available", FMT_UINT, false),
	FIELD(MMK_A_POOL_MAP_SIZE, "map-size", FMT_UINT, false),
	FIELD(MMK_A_POOL_SESSIONS, "sessions", FMT_UINT, true),
	FIELD(MMK_A_POOL_QUEUES, "queues", FMT_UINT, false),
	FIELD(MMK_A_POOL_READ_GUARDS, "read-guards", FMT_UINT, false),
	FIELD(MMK_A_POOL_WRITE_GUARDS, "write-guards", FMT_UINT, false),
	FIELD(MMK_A_POOL_POISONED, "poisoned", FMT_UINT, false),
	FIELD(MMK_A_POOL_STORES, "stores", FMT_UINT, true),
	FIELD(MMK_A_POOL_FREES, "frees", FMT_UINT, false),
	FIELD(MMK_A_POOL_NO_FREE_SLOTS, "no-free-slots", FMT_UINT, false),
	FIELD(MMK_A_POOL_TOKEN, "token", FMT_HEX, false),
	FIELD(MMK_A_POOL_IPC_NS, "ipc-ns", FMT_UINT, false),
};

static const struct field queue_fields[] = {
	FIELD(MMK_A_QUEUE_NAME, "name", FMT_STR, false),
	FIELD_ENUM(MMK_A_QUEUE_POLICY, "policy", queue_policies, false),
	FIELD_ENUM(MMK_A_QUEUE_WATERMARK, "watermark", watermarks, false),
	FIELD(MMK_A_QUEUE_ITEMS, "items", FMT_UINT, true),
	FIELD(MMK_A_QUEUE_BYTES, "bytes", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_HIGH_ITEMS, "high-items", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_CAP_ITEMS, "cap-items", FMT_UINT, true),
	FIELD(MMK_A_QUEUE_SOFT_ITEMS, "soft-items", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_CAP_BYTES, "cap-bytes", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_SOFT_BYTES, "soft-bytes", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_PUSHES, "pushes", FMT_UINT, true),
	FIELD(MMK_A_QUEUE_POPS, "pops", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_REJECTED, "rejected", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_DROPS_NEWEST, "drops-newest", FMT_UINT, true),
	FIELD(MMK_A_QUEUE_DROPS_OLDEST, "drops-oldest", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_DROPS_QOS, "drops-qos", FMT_UINT, false),
	FIELD(MMK_A_QUEUE_DROPS_DEADLINE, "drops-deadline", FMT_UINT, false),
};

static const struct field session_fields[] = {
	FIELD(MMK_A_SESSION_PID, "pid", FMT_UINT, false),
	FIELD(MMK_A_SESSION_COMM, "comm", FMT_STR, false),
	FIELD(MMK_A_SESSION_UID, "uid", FMT_UINT, false),
	FIELD(MMK_A_SESSION_READ_GUARDS, "read-guards", FMT_UINT, true),
	FIELD(MMK_A_SESSION_WRITE_GUARDS, "write-guards", FMT_UINT, false),
	FIELD(MMK_A_SESSION_LOANS, "loans", FMT_UINT, false),
	FIELD(MMK_A_SESSION_POPPED, "popped", FMT_UINT, false),
	FIELD(MMK_A_SESSION_QUEUES_OPEN, "queues-open", FMT_UINT, false),
};

/* A kind of record: the command whose messages carry it, and how it prints. */
struct kind {
	const char *name;		/* first word of a text record */
	uint8_t cmd;
	uint16_t max_attr;
	const enum mnl_attr_data_type *types;
	int id_attr, str_attr;
	const struct field *fields;
	size_t nr_fields;
};

#define FIELDS(f)	f, sizeof(f) / sizeof(f[0])

static const struct kind pool_kind = {
	"pool", MMK_CMD_POOL_GET, MMK_A_POOL_MAX, pool_attr_types,
	MMK_A_POOL_ID, MMK_A_POOL_NAME, FIELDS(pool_fields),
};

static const struct kind queue_kind = {
	"queue", MMK_CMD_QUEUE_GET, MMK_A_QUEUE_MAX, queue_attr_types,
	MMK_A_QUEUE_ID, MMK_A_QUEUE_NAME, FIELDS(queue_fields),
};

static const struct kind session_kind = {
	"session", MMK_CMD_SESSION_GET, MMK_A_SESSION_MAX, session_attr_types,
	MMK_A_SESSION_ID, MMK_A_SESSION_COMM, FIELDS(session_fields),
};

static void json_key_of(char *dst, size_t size, const char *key)
{
	size_t i;

	for (i = 0; key[i] && i + 1 < size; i++)
		dst[i] = key[i] == '-' ? '_' : key[i];
	dst[i] = '\0';
}

static const char *enum_name(const struct field *f, uint64_t v)
{
	return v < f->nr_names && f->names[v] ? f->names[v] : NULL;
}

static void print_field_text(const struct field *f, const struct rec *r)
{
	uint64_t v = r->val[f->attr];
	unsigned int bit;
	bool any = false;

	printf(" %s ", f->key);
	switch (f->fmt) {
	case FMT_UINT:
		printf("%" PRIu64, v);
		break;
	case FMT_HEX:
		printf("0x%" PRIx64, v);
		break;
	case FMT_MODE:
		printf("%04" PRIo64, v);
		break;
	case FMT_ENUM:
		if (enum_name(f, v))
			fputs(enum_name(f, v), stdout);
		else
			printf("%" PRIu64, v);
		break;
	case FMT_FLAGS:
		for (bit = 0; bit < 32; bit++) {
			if (!(v & (1ULL << bit)))
				continue;
			if (any)
				putchar(',');
			any = true;
			if (bit < sizeof(pool_flags) / sizeof(pool_flags[0]))
				fputs(pool_flags[bit], stdout);
			else
				printf("0x%x", 1U << bit);
		}
		if (!any)
			fputs("none", stdout);
		break;
	case FMT_STR:
		fputs(r->str, stdout);
		break;
	}
}

static void print_field_json(const struct field *f, const struct rec *r)
{
	uint64_t v = r->val[f->attr];
	char key[32], buf[32];
	unsigned int bit;

	json_key_of(key, sizeof(key), f->key);
	switch (f->fmt) {
	case FMT_UINT:
		jw_uint(key, v);
		break;
	case FMT_HEX:
		/* u64 identifiers do not survive a double: keep them as text. */
		snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
		jw_string(key, buf);
		break;
	case FMT_MODE:
		snprintf(buf, sizeof(buf), "%04" PRIo64, v);
		jw_string(key, buf);
		break;
	case FMT_ENUM:
		if (enum_name(f, v))
			jw_string(key, enum_name(f, v));
		else
			jw_uint(key, v);
		break;
	case FMT_FLAGS:
		jw_key(key);
		jw_open('[');
		for (bit = 0; bit < 32; bit++) {
			if (!(v & (1ULL << bit)))
				continue;
			if (bit < sizeof(pool_flags) / sizeof(pool_flags[0])) {
				jw_string(NULL, pool_flags[bit]);
			} else {
				snprintf(buf, sizeof(buf), "0x%x", 1U << bit);
				jw_string(NULL, buf);
			}
		}
		jw_close(']');
		break;
	case FMT_STR:
		jw_string(key, r->str);
		break;
	}
}

/*
 * One record (or event) as text, "KIND ID key value ...", on one line, or
 * with -p on several indented lines; or as the members of a JSON object
 * the caller opened.  @event, if not NULL, comes first: the event's name.
 */
static void print_rec_members(const struct kind *k, const struct rec *r, const char *event)
{
	size_t i;

	if (opt.json) {
		if (event)
			jw_string("event", event);
		if (r->has[k->id_attr])
			jw_uint("id", r->val[k->id_attr]);
		for (i = 0; i < k->nr_fields; i++)
			if (r->has[k->fields[i].attr])
				print_field_json(&k->fields[i], r);
		return;
	}

	if (event)
		printf("%s ", event);
	printf("%s %" PRIu64, k->name, r->val[k->id_attr]);
	for (i = 0; i < k->nr_fields; i++) {
		const struct field *f = &k->fields[i];

		if (!r->has[f->attr])
			continue;
		if (opt.pretty && f->line_break && !event)
			fputs("\n   ", stdout);
		print_field_text(f, r);
	}
	putchar('\n');
}

/* A whole record: a JSON object, or its text lines. */
static void print_rec(const struct kind *k, const struct rec *r, const char *event)
{
	if (opt.json)
		jw_open('{');
	print_rec_members(k, r, event);
	if (opt.json)
		jw_close('}');
}

struct rec_parse {
	const struct kind *kind;
	struct rec *rec;
};

static int rec_attr_cb(const struct nlattr *attr, void *data)
{
	const struct rec_parse *rp = data;
	const enum mnl_attr_data_type *types = rp->kind->types;
	uint16_t type = mnl_attr_get_type(attr);
	struct rec *r = rp->rec;

	/* Attributes this version does not know are skipped. */
	if (mnl_attr_type_valid(attr, rp->kind->max_attr) < 0 || !types[type])
		return MNL_CB_OK;
	if (mnl_attr_validate(attr, types[type]) < 0)
		return MNL_CB_OK;

	switch (types[type]) {
	case MNL_TYPE_U32:
		r->val[type] = mnl_attr_get_u32(attr);
		break;
	case MNL_TYPE_U64:
		r->val[type] = mnl_attr_get_u64(attr);
		break;
	case MNL_TYPE_NUL_STRING:
		if (type != rp->kind->str_attr)
			return MNL_CB_OK;
		snprintf(r->str, sizeof(r->str), "%s", mnl_attr_get_str(attr));
		break;
	default:
		return MNL_CB_OK;
	}
	r->has[type] = true;
	return MNL_CB_OK;
}

static void parse_rec(const struct kind *k, const struct nlmsghdr *nlh, struct rec *r)
{
	struct rec_parse rp = { k, r };

	memset(r, 0, sizeof(*r));
	mnl_attr_parse(nlh, GENL_HDRLEN, rec_attr_cb, &rp);
}

/* ---- netlink --------------------------------------------------------------- */

struct nl {
	struct mnl_socket *sock;
	unsigned int portid;
	unsigned int seq;
	uint16_t family;
	uint32_t monitor_group;
	char *buf;
	size_t bufsize;
};

/* What the kernel said about a failed request (NLMSG_ERROR or NLMSG_DONE). */
struct nl_error {
	int err;		/* positive errno, 0 if none */
	char msg[256];		/* extack message, may be empty */
};

struct nl_request {
	struct nl_error error;
	mnl_cb_t data_cb;
	void *data;
};

static int extack_attr_cb(const struct nlattr *attr, void *data)
{
	struct nl_error *e = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(e->msg, sizeof(e->msg), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int nl_error_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_request *req = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	unsigned int off;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		req->error.err = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (!e->error)
		return MNL_CB_STOP;	/* an ACK */
	req->error.err = -e->error;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off = MNL_ALIGN(off + e->msg.nlmsg_len - sizeof(e->msg));
		if (off < mnl_nlmsg_get_payload_len(nlh))
			mnl_attr_parse(nlh, off, extack_attr_cb, &req->error);
	}
	return MNL_CB_ERROR;
}

/* The end of a dump, which may carry the dump's error and its message. */
static int nl_done_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_request *req = data;
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(err))
		return MNL_CB_STOP;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (!err)
		return MNL_CB_STOP;
	req->error.err = -err;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
		mnl_attr_parse(nlh, sizeof(err), extack_attr_cb, &req->error);
	return MNL_CB_ERROR;
}

static int nl_data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_request *req = data;

	return req->data_cb(nlh, req->data);
}

/* Not const: mnl_cb_run2() takes a non-const array. */
static mnl_cb_t nl_ctl_cbs[NLMSG_MIN_TYPE] = {
	[NLMSG_ERROR]	= nl_error_cb,
	[NLMSG_DONE]	= nl_done_cb,
};

static void nl_open(struct nl *nl)
{
	int one = 1;

	nl->bufsize = 64 * 1024;	/* more than the largest dump message batch */
	nl->buf = malloc(nl->bufsize);
	if (!nl->buf)
		fail("out of memory");
	nl->sock = mnl_socket_open(NETLINK_GENERIC);
	if (!nl->sock)
		fail("cannot open a generic netlink socket: %s", strerror(errno));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
		fail("cannot bind the netlink socket: %s", strerror(errno));
	/* Extended ACKs carry the kernel's reason; capped ACKs stay small. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned int)time(NULL);
}

static struct nlmsghdr *nl_msg(struct nl *nl, uint16_t type, uint16_t flags, uint8_t cmd,
			       uint8_t version)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

/*
 * Send @nlh and run the replies through @data_cb until the kernel is done.
 * Returns 0, or a positive errno with @e filled in.
 */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t data_cb, void *data,
		   struct nl_error *e)
{
	struct nl_request req = { .data_cb = data_cb, .data = data };
	unsigned int seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	memset(e, 0, sizeof(*e));
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0) {
		e->err = errno;
		return e->err;
	}
	do {
		n = mnl_socket_recvfrom(nl->sock, nl->buf, nl->bufsize);
		if (n < 0) {
			e->err = errno;
			return e->err;
		}
		ret = mnl_cb_run2(nl->buf, n, seq, nl->portid, nl_data_cb, &req, nl_ctl_cbs,
				  NLMSG_MIN_TYPE);
	} while (ret > MNL_CB_STOP);

	if (ret < 0) {
		*e = req.error;
		if (!e->err)
			e->err = errno ? errno : EPROTO;
		return e->err;
	}
	return 0;
}

/* ---- resolving the family ------------------------------------------------- */

struct family_info {
	uint16_t id;
	uint32_t version;
	uint32_t monitor_group;
};

static int mcast_group_cb(const struct nlattr *attr, void *data)
{
	struct family_info *f = data;
	const struct nlattr *a;
	const char *name = NULL;
	uint32_t id = 0;

	mnl_attr_for_each_nested(a, attr) {
		switch (mnl_attr_get_type(a)) {
		case CTRL_ATTR_MCAST_GRP_NAME:
			if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
				name = mnl_attr_get_str(a);
			break;
		case CTRL_ATTR_MCAST_GRP_ID:
			if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
				id = mnl_attr_get_u32(a);
			break;
		}
	}
	if (name && !strcmp(name, MMK_MCGRP_MONITOR))
		f->monitor_group = id;
	return MNL_CB_OK;
}

static int family_attr_cb(const struct nlattr *attr, void *data)
{
	struct family_info *f = data;
	const struct nlattr *grp;

	switch (mnl_attr_get_type(attr)) {
	case CTRL_ATTR_FAMILY_ID:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
			f->id = mnl_attr_get_u16(attr);
		break;
	case CTRL_ATTR_VERSION:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			f->version = mnl_attr_get_u32(attr);
		break;
	case CTRL_ATTR_MCAST_GROUPS:
		mnl_attr_for_each_nested(grp, attr)
			mcast_group_cb(grp, f);
		break;
	}
	return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, GENL_HDRLEN, family_attr_cb, data);
	return MNL_CB_OK;
}

static void nl_resolve(struct nl *nl)
{
	struct family_info f = { 0 };
	struct nlmsghdr *nlh;
	struct nl_error e;

	nlh = nl_msg(nl, GENL_ID_CTRL, NLM_F_ACK, CTRL_CMD_GETFAMILY, 1);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, MMK_FAMILY_NAME);
	if (nl_talk(nl, nlh, family_cb, &f, &e)) {
		if (e.err == ENOENT)
			fail("the mmk module is not loaded (no generic netlink family \"%s\")",
			     MMK_FAMILY_NAME);
		fail("cannot look up the \"%s\" netlink family: %s", MMK_FAMILY_NAME,
		     strerror(e.err));
	}
	if (!f.id)
		fail("the kernel did not report the \"%s\" family's id", MMK_FAMILY_NAME);
	if (f.version < MMK_FAMILY_VERSION)
		fail("the kernel's mmk netlink family is version %" PRIu32 ", older than %d",
		     f.version, MMK_FAMILY_VERSION);
	nl->family = f.id;
	nl->monitor_group = f.monitor_group;
}

/* "MESSAGE: strerror", or just strerror when the kernel gave no message. */
static const char *nl_reason(const struct nl_error *e, char *buf, size_t size)
{
	if (e->msg[0])
		snprintf(buf, size, "%s (%s)", e->msg, strerror(e->err));
	else
		snprintf(buf, size, "%s", strerror(e->err));
	return buf;
}

/* ---- commands ---------------------------------------------------------------- */

/* Records of one kind, as a request's replies bring them. */
struct recs {
	const struct kind *kind;
	struct rec *v;
	size_t n, cap;
};

static int recs_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	struct recs *rs = data;
	struct rec *r;

	if (mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN || g->cmd != rs->kind->cmd)
		return MNL_CB_OK;
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? 2 * rs->cap : 16;
		r = realloc(rs->v, rs->cap * sizeof(*r));
		if (!r)
			fail("out of memory");
		rs->v = r;
	}
	parse_rec(rs->kind, nlh, &rs->v[rs->n]);
	if (rs->v[rs->n].has[rs->kind->id_attr])
		rs->n++;
	return MNL_CB_OK;
}

/*
 * Dump the records of @rs's kind; @filter_attr, if not 0, selects those
 * of pool @pool_id.  Returns 0 or a positive errno, with @e filled in.
 */
static int dump_recs(struct nl *nl, struct recs *rs, int filter_attr, uint32_t pool_id,
		     struct nl_error *e)
{
	struct nlmsghdr *nlh;

	nlh = nl_msg(nl, nl->family, NLM_F_DUMP, rs->kind->cmd, MMK_FAMILY_VERSION);
	if (filter_attr)
		mnl_attr_put_u32(nlh, filter_attr, pool_id);
	return nl_talk(nl, nlh, recs_cb, rs, e);
}

/*
 * With -j, list and show print one array.  Everything is received before
 * anything is printed, so that a request that fails prints nothing on
 * standard output.
 */
static void print_list_members(const struct recs *rs)
{
	size_t i;

	if (opt.json)
		jw_open('[');
	for (i = 0; i < rs->n; i++)
		print_rec(rs->kind, &rs->v[i], NULL);
	if (opt.json)
		jw_close(']');
}

static void print_list(const struct recs *rs)
{
	print_list_members(rs);
	if (opt.json)
		putchar('\n');
}

static int cmd_list(struct nl *nl, int argc, char **argv)
{
	struct recs pools = { .kind = &pool_kind };
	struct nl_error e;
	char why[320];

	(void)argv;
	if (argc > 0)
		usage(stderr, 2);
	nl_resolve(nl);
	if (dump_recs(nl, &pools, 0, 0, &e))
		fail("cannot list pools: %s", nl_reason(&e, why, sizeof(why)));
	print_list(&pools);
	free(pools.v);
	return 0;
}

/* A pool id: decimal, 1 to 65534, nothing else. */
static bool parse_id(const char *s, uint32_t *id)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 65534)
		return false;
	*id = v;
	return true;
}

static bool all_digits(const char *s)
{
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* The pool, then its queues and its sessions: who holds what. */
static int cmd_show(struct nl *nl, int argc, char **argv)
{
	struct recs pool = { .kind = &pool_kind };
	struct recs queues = { .kind = &queue_kind };
	struct recs sessions = { .kind = &session_kind };
	const char *what, *name = NULL;
	struct nlmsghdr *nlh;
	struct nl_error e;
	uint32_t id = 0;
	char why[320];

	if (argc == 2 && !strcmp(argv[0], "id")) {
		what = argv[1];
		if (!parse_id(what, &id))
			fail("\"%s\" is not a pool id (1 to 65534)", what);
	} else if (argc == 2 && !strcmp(argv[0], "name")) {
		name = what = argv[1];
	} else if (argc == 1) {
		what = argv[0];
		if (all_digits(what)) {
			if (!parse_id(what, &id))
				fail("\"%s\" is not a pool id (1 to 65534)", what);
		} else {
			name = what;
		}
	} else {
		usage(stderr, 2);
	}
	if (name && (!name[0] || strlen(name) >= MMK_NAME_MAX))
		fail("\"%s\" is not a pool name (1 to %d bytes)", name, MMK_NAME_MAX - 1);

	nl_resolve(nl);
	nlh = nl_msg(nl, nl->family, NLM_F_ACK, MMK_CMD_POOL_GET, MMK_FAMILY_VERSION);
	if (name)
		mnl_attr_put_strz(nlh, MMK_A_POOL_NAME, name);
	else
		mnl_attr_put_u32(nlh, MMK_A_POOL_ID, id);
	if (nl_talk(nl, nlh, recs_cb, &pool, &e))
		goto failed;
	if (pool.n != 1)
		fail("the kernel sent no description of pool %s", what);

	/* Its queues and sessions, by the id it has (even if shown by name). */
	id = pool.v[0].val[MMK_A_POOL_ID];
	if (dump_recs(nl, &queues, MMK_A_QUEUE_POOL_ID, id, &e) ||
	    dump_recs(nl, &sessions, MMK_A_SESSION_POOL_ID, id, &e))
		goto failed;

	if (opt.json) {
		jw_open('[');
		jw_open('{');
		print_rec_members(&pool_kind, &pool.v[0], NULL);
		jw_key("queue_list");
		print_list_members(&queues);
		jw_key("session_list");
		print_list_members(&sessions);
		jw_close('}');
		jw_close(']');
		putchar('\n');
	} else {
		print_rec(&pool_kind, &pool.v[0], NULL);
		print_list(&queues);
		print_list(&sessions);
	}
	free(pool.v);
	free(queues.v);
	free(sessions.v);
	return 0;

failed:
	/* ENOENT: the pool is not there (or it went away between requests). */
	if (e.err == ENOENT)
		fail("pool %s%s%s not found", name ? "\"" : "", what, name ? "\"" : "");
	fail("cannot show pool %s: %s", what, nl_reason(&e, why, sizeof(why)));
}

static const char *event_name(uint8_t cmd)
{
	switch (cmd) {
	case MMK_CMD_POOL_CREATED_NTF:
		return "created";
	case MMK_CMD_POOL_DESTROYED_NTF:
		return "destroyed";
	case MMK_CMD_POOL_EXHAUSTED_NTF:
		return "exhausted";
	case MMK_CMD_SLOT_POISONED_NTF:
		return "poisoned";
	default:
		return NULL;
	}
}

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	const char *event;
	struct rec p;

	if (nlh->nlmsg_type != *(const uint16_t *)data ||
	    mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN)
		return MNL_CB_OK;
	event = event_name(g->cmd);
	if (!event)
		return MNL_CB_OK;	/* an event this version does not know */
	parse_rec(&pool_kind, nlh, &p);
	if (!p.has[MMK_A_POOL_ID])
		return MNL_CB_OK;
	print_rec(&pool_kind, &p, event);
	if (opt.json)
		putchar('\n');
	fflush(stdout);
	return MNL_CB_OK;
}

static int cmd_monitor(struct nl *nl, int argc, char **argv)
{
	int group, rcvbuf = 1 << 20;
	ssize_t n;
	int ret;

	(void)argv;
	if (argc > 0)
		usage(stderr, 2);
	nl_resolve(nl);
	if (!nl->monitor_group)
		fail("the kernel's mmk family has no \"%s\" group", MMK_MCGRP_MONITOR);
	group = nl->monitor_group;
	if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
		if (errno == EPERM)
			fail("monitor needs CAP_SYS_ADMIN: %s", strerror(errno));
		fail("cannot join the \"%s\" group: %s", MMK_MCGRP_MONITOR, strerror(errno));
	}
	/* Room for bursts, such as a process dying with many write guards. */
	setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	for (;;) {
		n = mnl_socket_recvfrom(nl->sock, nl->buf, nl->bufsize);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				fflush(stdout);
				fprintf(stderr, "%s: events were lost (receive buffer full)\n", prog);
				continue;
			}
			fail("monitor: %s", strerror(errno));
		}
		ret = mnl_cb_run(nl->buf, n, 0, 0, event_cb, &nl->family);
		if (ret < 0 && errno != ENOENT)
			fail("monitor: %s", strerror(errno));
	}
	return 0;
}

/* ---- main ------------------------------------------------------------------ */

/* iproute2 style: a command or option may be shortened to any prefix. */
static bool matches(const char *arg, const char *word)
{
	size_t len = strlen(arg);

	return len > 0 && len <= strlen(word) && !strncmp(arg, word, len);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct nl *nl, int argc, char **argv);
	} cmds[] = {
		{ "list", cmd_list },
		{ "show", cmd_show },
		{ "monitor", cmd_monitor },
	};
	struct nl nl = { 0 };
	const char *arg;
	size_t i;

	while (argc > 1 && argv[1][0] == '-' && argv[1][1]) {
		arg = argv[1] + 1;
		if (arg[0] == '-')
			arg++;	/* --json works like -json */
		if (matches(arg, "json")) {
			opt.json = true;
		} else if (matches(arg, "pretty")) {
			opt.pretty = true;
		} else if (matches(arg, "Version")) {
			printf("%s (mmk) %s, netlink family %s version %d\n", prog, MMKCTL_VERSION,
			       MMK_FAMILY_NAME, MMK_FAMILY_VERSION);
			return 0;
		} else if (matches(arg, "help")) {
			usage(stdout, 0);
		} else {
			fprintf(stderr, "%s: unknown option \"%s\"; try \"%s -help\"\n", prog,
				argv[1], prog);
			return 2;
		}
		argc--;
		argv++;
	}
	if (argc < 2)
		usage(stderr, 2);
	if (matches(argv[1], "help"))
		usage(stdout, 0);

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (matches(argv[1], cmds[i].name)) {
			nl_open(&nl);
			return cmds[i].fn(&nl, argc - 2, argv + 2);
		}
	}
	fprintf(stderr, "%s: unknown command \"%s\"; try \"%s help\"\n", prog, argv[1], prog);
	return 2;
}
