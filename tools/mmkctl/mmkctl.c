// SPDX-License-Identifier: GPL-2.0
/*
 * mmkctl - show mmk pools and watch their events, over generic netlink.
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
		"  show NAME|ID          show one pool (also: show name NAME, show id ID)\n"
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

/* ---- pools: attributes and their presentation ------------------------------- */

/*
 * Attribute types as the family defines them (docs/netlink/mmk.yaml;
 * scripts/check-netlink-spec.py checks this table against it).  An
 * attribute that does not match its type is treated as absent.
 */
static const enum mnl_attr_data_type mmk_attr_types[MMK_A_POOL_MAX + 1] = {
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
	[MMK_A_POOL_IPC_NS]		= MNL_TYPE_U32,
};

struct pool {
	bool has[MMK_A_POOL_MAX + 1];
	uint64_t val[MMK_A_POOL_MAX + 1];
	char name[MMK_NAME_MAX];
};

enum field_fmt {
	FMT_UINT,	/* decimal number */
	FMT_HEX,	/* an identifier: 0x-hex, a string in JSON */
	FMT_MODE,	/* octal mode bits: 0600, a string in JSON */
	FMT_CLASS,	/* enum mmk_memory_class by name */
	FMT_FLAGS,	/* MMK_POOL_* flags by name, an array in JSON */
};

struct field {
	int attr;
	const char *key;	/* text key; JSON uses it with '_' for '-' */
	enum field_fmt fmt;
	bool line_break;	/* -p text: start a new line before this one */
};

/* Every pool attribute after the id and the name, in output order. */
static const struct field pool_fields[] = {
	{ MMK_A_POOL_MEMORY_CLASS,	"memory-class",		FMT_CLASS, true },
	{ MMK_A_POOL_OWNER_UID,		"owner-uid",		FMT_UINT, false },
	{ MMK_A_POOL_OWNER_GID,		"owner-gid",		FMT_UINT, false },
	{ MMK_A_POOL_MODE,		"mode",			FMT_MODE, false },
	{ MMK_A_POOL_PAYLOAD_TYPE,	"payload-type",		FMT_HEX, false },
	{ MMK_A_POOL_FLAGS,		"flags",		FMT_FLAGS, false },
	{ MMK_A_POOL_PAYLOAD_SIZE,	"payload-size",		FMT_UINT, true },
	{ MMK_A_POOL_SLOT_SIZE,		"slot-size",		FMT_UINT, false },
	{ MMK_A_POOL_CAPACITY,		"capacity",		FMT_UINT, false },
	{ MMK_A_POOL_AVAILABLE,		"available",		FMT_UINT, false },
	{ MMK_A_POOL_MAP_SIZE,		"map-size",		FMT_UINT, false },
	{ MMK_A_POOL_SESSIONS,		"sessions",		FMT_UINT, true },
	{ MMK_A_POOL_READ_GUARDS,	"read-guards",		FMT_UINT, false },
	{ MMK_A_POOL_WRITE_GUARDS,	"write-guards",		FMT_UINT, false },
	{ MMK_A_POOL_POISONED,		"poisoned",		FMT_UINT, false },
	{ MMK_A_POOL_STORES,		"stores",		FMT_UINT, true },
	{ MMK_A_POOL_FREES,		"frees",		FMT_UINT, false },
	{ MMK_A_POOL_NO_FREE_SLOTS,	"no-free-slots",	FMT_UINT, false },
	{ MMK_A_POOL_TOKEN,		"token",		FMT_HEX, false },
	{ MMK_A_POOL_IPC_NS,		"ipc-ns",		FMT_UINT, false },
};

static const char *const memory_classes[] = {
	[MMK_MEM_HOST]		= "host",
	[MMK_MEM_PINNED_HOST]	= "pinned-host",
	[MMK_MEM_DEVICE]	= "device",
	[MMK_MEM_SHARED]	= "shared",
};

static const char *const pool_flags[] = {
	"page-aligned",		/* MMK_POOL_PAGE_ALIGNED, bit 0 */
};

static void json_key_of(char *dst, size_t size, const char *key)
{
	size_t i;

	for (i = 0; key[i] && i + 1 < size; i++)
		dst[i] = key[i] == '-' ? '_' : key[i];
	dst[i] = '\0';
}

static void print_field_text(const struct field *f, uint64_t v)
{
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
	case FMT_CLASS:
		if (v < sizeof(memory_classes) / sizeof(memory_classes[0]))
			fputs(memory_classes[v], stdout);
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
	}
}

static void print_field_json(const struct field *f, uint64_t v)
{
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
	case FMT_CLASS:
		if (v < sizeof(memory_classes) / sizeof(memory_classes[0]))
			jw_string(key, memory_classes[v]);
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
	}
}

/*
 * One pool (or event) as text, "pool ID [name NAME] key value ...", on
 * one line, or with -p on several indented lines; or as one JSON object.
 * @event, if not NULL, comes first: the event's name.
 */
static void print_pool(const struct pool *p, const char *event)
{
	size_t i;

	if (opt.json) {
		jw_open('{');
		if (event)
			jw_string("event", event);
		if (p->has[MMK_A_POOL_ID])
			jw_uint("id", p->val[MMK_A_POOL_ID]);
		if (p->has[MMK_A_POOL_NAME])
			jw_string("name", p->name);
		for (i = 0; i < sizeof(pool_fields) / sizeof(pool_fields[0]); i++)
			if (p->has[pool_fields[i].attr])
				print_field_json(&pool_fields[i], p->val[pool_fields[i].attr]);
		jw_close('}');
		return;
	}

	if (event)
		printf("%s ", event);
	printf("pool %" PRIu64, p->val[MMK_A_POOL_ID]);
	if (p->has[MMK_A_POOL_NAME])
		printf(" name %s", p->name);
	for (i = 0; i < sizeof(pool_fields) / sizeof(pool_fields[0]); i++) {
		const struct field *f = &pool_fields[i];

		if (!p->has[f->attr])
			continue;
		if (opt.pretty && f->line_break && !event)
			fputs("\n   ", stdout);
		print_field_text(f, p->val[f->attr]);
	}
	putchar('\n');
}

static int pool_attr_cb(const struct nlattr *attr, void *data)
{
	struct pool *p = data;
	uint16_t type = mnl_attr_get_type(attr);

	/* Attributes this version does not know are skipped. */
	if (mnl_attr_type_valid(attr, MMK_A_POOL_MAX) < 0 || !mmk_attr_types[type])
		return MNL_CB_OK;
	if (mnl_attr_validate(attr, mmk_attr_types[type]) < 0)
		return MNL_CB_OK;

	p->has[type] = true;
	switch (mmk_attr_types[type]) {
	case MNL_TYPE_U32:
		p->val[type] = mnl_attr_get_u32(attr);
		break;
	case MNL_TYPE_U64:
		p->val[type] = mnl_attr_get_u64(attr);
		break;
	case MNL_TYPE_NUL_STRING:
		snprintf(p->name, sizeof(p->name), "%s", mnl_attr_get_str(attr));
		break;
	default:
		p->has[type] = false;
		break;
	}
	return MNL_CB_OK;
}

static void parse_pool(const struct nlmsghdr *nlh, struct pool *p)
{
	memset(p, 0, sizeof(*p));
	mnl_attr_parse(nlh, GENL_HDRLEN, pool_attr_cb, p);
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

struct pool_out {
	unsigned int count;
};

/*
 * With -j, list and show print one array.  It is opened with the first
 * pool (or at the end), so that a request that fails prints nothing on
 * standard output.
 */
static bool json_list_open;

static void json_list_begin(void)
{
	if (opt.json && !json_list_open) {
		jw_open('[');
		json_list_open = true;
	}
}

static void json_list_end(void)
{
	if (opt.json) {
		json_list_begin();
		jw_close(']');
		putchar('\n');
	}
}

static int pool_cb(const struct nlmsghdr *nlh, void *data)
{
	struct pool_out *out = data;
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	struct pool p;

	if (mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN || g->cmd != MMK_CMD_POOL_GET)
		return MNL_CB_OK;
	parse_pool(nlh, &p);
	if (!p.has[MMK_A_POOL_ID])
		return MNL_CB_OK;
	json_list_begin();
	print_pool(&p, NULL);
	out->count++;
	return MNL_CB_OK;
}

static int cmd_list(struct nl *nl, int argc, char **argv)
{
	struct pool_out out = { 0 };
	struct nlmsghdr *nlh;
	struct nl_error e;
	char why[320];

	(void)argv;
	if (argc > 0)
		usage(stderr, 2);
	nl_resolve(nl);
	nlh = nl_msg(nl, nl->family, NLM_F_DUMP, MMK_CMD_POOL_GET, MMK_FAMILY_VERSION);
	if (nl_talk(nl, nlh, pool_cb, &out, &e))
		fail("cannot list pools: %s", nl_reason(&e, why, sizeof(why)));
	json_list_end();
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

static int cmd_show(struct nl *nl, int argc, char **argv)
{
	struct pool_out out = { 0 };
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
	if (nl_talk(nl, nlh, pool_cb, &out, &e)) {
		if (e.err == ENOENT)
			fail("pool %s%s%s not found", name ? "\"" : "", what, name ? "\"" : "");
		fail("cannot show pool %s: %s", what, nl_reason(&e, why, sizeof(why)));
	}
	if (!out.count)
		fail("the kernel sent no description of pool %s", what);
	json_list_end();
	return 0;
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
	struct pool p;

	if (nlh->nlmsg_type != *(const uint16_t *)data ||
	    mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN)
		return MNL_CB_OK;
	event = event_name(g->cmd);
	if (!event)
		return MNL_CB_OK;	/* an event this version does not know */
	parse_pool(nlh, &p);
	if (!p.has[MMK_A_POOL_ID])
		return MNL_CB_OK;
	print_pool(&p, event);
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
