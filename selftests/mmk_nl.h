/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small generic netlink client for the mmk family, written against the
 * socket API directly (the selftests are static; libmnl has no static
 * library), so that the tests can also send what no well-behaved client
 * would: wrong types, unknown commands, truncated messages.
 *
 * Every function returns 0 or -errno.
 */
#ifndef MMK_NL_H
#define MMK_NL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <linux/mmk.h>
#include <linux/mmk_netlink.h>

#define MMK_NL_BUF	(64 * 1024)

/* At least the highest attribute type of any set of the family. */
#define MMK_NL_MAX_ATTR	31
_Static_assert((int)MMK_A_POOL_MAX <= MMK_NL_MAX_ATTR && (int)MMK_A_QUEUE_MAX <= MMK_NL_MAX_ATTR &&
	       (int)MMK_A_SESSION_MAX <= MMK_NL_MAX_ATTR, "MMK_NL_MAX_ATTR is too small");

struct mmk_nl {
	int fd;
	uint32_t portid;
	uint32_t seq;
	uint16_t family;
	uint32_t version;
	uint32_t monitor;	/* multicast group id */
	uint32_t op_flags[MMK_CMD_MAX + 1];	/* GENL_CMD_CAP_* of each command */
	unsigned int nr_ops;
};

/*
 * One message of the family, attributes indexed by type (those of the
 * command's set: MMK_A_POOL_*, MMK_A_QUEUE_* or MMK_A_SESSION_*).
 */
struct mmk_nl_msg {
	uint8_t cmd;
	uint16_t flags;		/* nlmsg_flags */
	bool has[MMK_NL_MAX_ATTR + 1];
	uint16_t len[MMK_NL_MAX_ATTR + 1];
	uint64_t val[MMK_NL_MAX_ATTR + 1];
	char name[MMK_NAME_MAX + 8];	/* pool or queue name, or session comm */
	unsigned int unknown;	/* attributes of a type above the set's highest */
};

/* The queue and session sets number the pool and the member id alike. */
_Static_assert((int)MMK_A_QUEUE_POOL_ID == (int)MMK_A_SESSION_POOL_ID &&
	       (int)MMK_A_QUEUE_POOL_NAME == (int)MMK_A_SESSION_POOL_NAME &&
	       (int)MMK_A_QUEUE_ID == (int)MMK_A_SESSION_ID, "queue and session sets differ");

/* The highest attribute and the string attribute of @cmd's messages. */
static inline unsigned int mmk_nl_max_attr(uint8_t cmd)
{
	return cmd == MMK_CMD_QUEUE_GET ? MMK_A_QUEUE_MAX :
	       cmd == MMK_CMD_SESSION_GET ? MMK_A_SESSION_MAX : MMK_A_POOL_MAX;
}

static inline unsigned int mmk_nl_str_attr(uint8_t cmd)
{
	return cmd == MMK_CMD_QUEUE_GET ? MMK_A_QUEUE_NAME :
	       cmd == MMK_CMD_SESSION_GET ? MMK_A_SESSION_COMM : MMK_A_POOL_NAME;
}

/* Everything the kernel answered to one request. */
struct mmk_nl_reply {
	int error;		/* 0 or -errno from NLMSG_ERROR or NLMSG_DONE */
	char extack[256];	/* NLMSGERR_ATTR_MSG, "" if none */
	bool has_offs, has_miss;
	uint32_t offs;		/* NLMSGERR_ATTR_OFFS */
	uint32_t miss_type;	/* NLMSGERR_ATTR_MISS_TYPE */
	bool acked;		/* an NLMSG_ERROR with error 0 */
	bool done;		/* NLMSG_DONE seen */
	bool intr;		/* some message had NLM_F_DUMP_INTR */
	unsigned int parts;	/* recv() calls that returned messages */
	unsigned int nr;	/* messages of the family */
	unsigned int cap;
	struct mmk_nl_msg *msgs;
};

static inline void mmk_nl_reply_free(struct mmk_nl_reply *r)
{
	free(r->msgs);
	memset(r, 0, sizeof(*r));
}

/* ---- building requests ---------------------------------------------------- */

struct mmk_nl_req {
	union {
		struct nlmsghdr nlh;
		char buf[4096];
	};
};

static inline struct nlmsghdr *mmk_nl_req_init(struct mmk_nl_req *req, uint16_t type,
					       uint16_t flags, uint8_t cmd, uint8_t version)
{
	struct genlmsghdr *g;

	memset(req, 0, sizeof(*req));
	req->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	req->nlh.nlmsg_type = type;
	req->nlh.nlmsg_flags = NLM_F_REQUEST | flags;
	g = NLMSG_DATA(&req->nlh);
	g->cmd = cmd;
	g->version = version;
	return &req->nlh;
}

/* Append one attribute; @len bytes of @data, padded to 4. */
static inline void mmk_nl_put(struct mmk_nl_req *req, uint16_t type, const void *data,
			      uint16_t len)
{
	struct nlattr *a = (struct nlattr *)(req->buf + NLMSG_ALIGN(req->nlh.nlmsg_len));

	if (NLMSG_ALIGN(req->nlh.nlmsg_len) + NLA_ALIGN(NLA_HDRLEN + len) > sizeof(req->buf))
		abort();
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	memset((char *)a + NLA_HDRLEN + len, 0, NLA_ALIGN(a->nla_len) - a->nla_len);
	req->nlh.nlmsg_len = NLMSG_ALIGN(req->nlh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static inline void mmk_nl_put_u32(struct mmk_nl_req *req, uint16_t type, uint32_t v)
{
	mmk_nl_put(req, type, &v, sizeof(v));
}

static inline void mmk_nl_put_str(struct mmk_nl_req *req, uint16_t type, const char *s)
{
	mmk_nl_put(req, type, s, strlen(s) + 1);
}

/* ---- sending and receiving -------------------------------------------------- */

static inline int mmk_nl_send(struct mmk_nl *nl, struct nlmsghdr *nlh)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	nlh->nlmsg_seq = ++nl->seq;
	if (sendto(nl->fd, nlh, nlh->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

static inline void mmk_nl_parse_extack(struct mmk_nl_reply *r, const char *p, size_t len)
{
	const struct nlattr *a;

	while (len >= NLA_HDRLEN) {
		a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return;
		switch (a->nla_type) {
		case NLMSGERR_ATTR_MSG:
			snprintf(r->extack, sizeof(r->extack), "%.*s",
				 (int)(a->nla_len - NLA_HDRLEN), p + NLA_HDRLEN);
			break;
		case NLMSGERR_ATTR_OFFS:
			r->has_offs = true;
			memcpy(&r->offs, p + NLA_HDRLEN, sizeof(r->offs));
			break;
		case NLMSGERR_ATTR_MISS_TYPE:
			r->has_miss = true;
			memcpy(&r->miss_type, p + NLA_HDRLEN, sizeof(r->miss_type));
			break;
		}
		if ((size_t)NLA_ALIGN(a->nla_len) >= len)
			return;
		len -= NLA_ALIGN(a->nla_len);
		p += NLA_ALIGN(a->nla_len);
	}
}

/* Parse one family message's attributes.  -EBADMSG if malformed. */
static inline int mmk_nl_parse_msg(const struct nlmsghdr *nlh, struct mmk_nl_msg *m)
{
	const struct genlmsghdr *g = NLMSG_DATA(nlh);
	const char *p = (const char *)g + GENL_HDRLEN;
	size_t len;
	const struct nlattr *a;

	memset(m, 0, sizeof(*m));
	if (nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -EBADMSG;
	len = nlh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	m->cmd = g->cmd;
	m->flags = nlh->nlmsg_flags;
	while (len > 0) {
		uint16_t plen;

		if (len < NLA_HDRLEN)
			return -EBADMSG;
		a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return -EBADMSG;
		plen = a->nla_len - NLA_HDRLEN;
		if (a->nla_type > mmk_nl_max_attr(m->cmd)) {
			m->unknown++;
		} else {
			if (m->has[a->nla_type])
				return -EBADMSG;	/* each attribute at most once */
			m->has[a->nla_type] = true;
			m->len[a->nla_type] = plen;
			if (plen == 4)
				m->val[a->nla_type] = *(const uint32_t *)(p + NLA_HDRLEN);
			else if (plen == 8)
				memcpy(&m->val[a->nla_type], p + NLA_HDRLEN, 8);
			if (a->nla_type == mmk_nl_str_attr(m->cmd)) {
				if (!plen || plen > sizeof(m->name) || p[NLA_HDRLEN + plen - 1])
					return -EBADMSG;
				memcpy(m->name, p + NLA_HDRLEN, plen);
			}
		}
		if ((size_t)NLA_ALIGN(a->nla_len) >= len)
			break;
		len -= NLA_ALIGN(a->nla_len);
		p += NLA_ALIGN(a->nla_len);
	}
	return 0;
}

static inline int mmk_nl_reply_add(struct mmk_nl_reply *r, const struct nlmsghdr *nlh)
{
	struct mmk_nl_msg *m;

	if (r->nr == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		m = realloc(r->msgs, r->cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		r->msgs = m;
	}
	return mmk_nl_parse_msg(nlh, &r->msgs[r->nr++]);
}

/*
 * Receive the answer to request @seq: family messages into @r, until an
 * NLMSG_ERROR (error or ACK) or NLMSG_DONE.  Messages of other sequence
 * numbers (events on a joined socket) are skipped.  Returns 0 when the
 * answer was complete (r->error says how it ended), or -errno if receiving
 * failed.  @between, if not NULL, runs after the first part of a dump.
 */
static inline int mmk_nl_recv(struct mmk_nl *nl, uint32_t seq, struct mmk_nl_reply *r,
			      void (*between)(void *), void *arg)
{
	static char buf[MMK_NL_BUF] __attribute__((aligned(8)));
	const struct nlmsghdr *nlh;
	ssize_t n;
	int len, ret;

	for (;;) {
		n = recv(nl->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		len = n;
		r->parts++;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				r->intr = true;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);
				size_t off = sizeof(*e);

				r->error = e->error;
				r->acked = !e->error;
				if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
					off = NLMSG_ALIGN(off + e->msg.nlmsg_len - sizeof(e->msg));
				if (nlh->nlmsg_flags & NLM_F_ACK_TLVS &&
				    NLMSG_LENGTH(off) < nlh->nlmsg_len)
					mmk_nl_parse_extack(r, (const char *)NLMSG_DATA(nlh) + off,
							    nlh->nlmsg_len - NLMSG_LENGTH(off));
				return 0;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				int err = 0;

				if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(err)))
					memcpy(&err, NLMSG_DATA(nlh), sizeof(err));
				r->error = err;
				r->done = true;
				if (nlh->nlmsg_flags & NLM_F_ACK_TLVS &&
				    nlh->nlmsg_len > NLMSG_LENGTH(sizeof(err)))
					mmk_nl_parse_extack(r, (const char *)NLMSG_DATA(nlh) +
							    sizeof(err),
							    nlh->nlmsg_len -
							    NLMSG_LENGTH(sizeof(err)));
				return 0;
			}
			if (nlh->nlmsg_type == nl->family) {
				ret = mmk_nl_reply_add(r, nlh);
				if (ret)
					return ret;
			}
		}
		if (between && r->parts == 1) {
			between(arg);
			between = NULL;
		}
	}
}

/* Send @nlh and collect the whole answer. */
static inline int mmk_nl_talk(struct mmk_nl *nl, struct nlmsghdr *nlh, struct mmk_nl_reply *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = mmk_nl_send(nl, nlh);
	return ret ? ret : mmk_nl_recv(nl, nlh->nlmsg_seq, r, NULL, NULL);
}

/* ---- the family ----------------------------------------------------------------- */

static inline void mmk_nl_parse_family(struct mmk_nl *nl, const struct nlmsghdr *nlh)
{
	const char *p = (const char *)NLMSG_DATA(nlh) + GENL_HDRLEN;
	int len = nlh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	const struct nlattr *a, *n, *g;

	for (a = (const void *)p; len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
	     a->nla_len <= len; len -= NLA_ALIGN(a->nla_len),
	     a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		const char *data = (const char *)a + NLA_HDRLEN;
		int dlen = a->nla_len - NLA_HDRLEN, nlen, glen;

		switch (a->nla_type & NLA_TYPE_MASK) {
		case CTRL_ATTR_FAMILY_ID:
			memcpy(&nl->family, data, sizeof(nl->family));
			break;
		case CTRL_ATTR_VERSION:
			memcpy(&nl->version, data, sizeof(nl->version));
			break;
		case CTRL_ATTR_OPS:
		case CTRL_ATTR_MCAST_GROUPS:
			for (n = (const void *)data; dlen >= NLA_HDRLEN && n->nla_len >= NLA_HDRLEN &&
			     n->nla_len <= dlen; dlen -= NLA_ALIGN(n->nla_len),
			     n = (const void *)((const char *)n + NLA_ALIGN(n->nla_len))) {
				uint32_t id = 0, flags = 0;
				const char *name = NULL;

				nlen = n->nla_len - NLA_HDRLEN;
				for (g = (const void *)((const char *)n + NLA_HDRLEN);
				     nlen >= NLA_HDRLEN && g->nla_len >= NLA_HDRLEN &&
				     g->nla_len <= nlen; nlen -= NLA_ALIGN(g->nla_len),
				     g = (const void *)((const char *)g + NLA_ALIGN(g->nla_len))) {
					glen = g->nla_len - NLA_HDRLEN;
					if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_OPS) {
						if (g->nla_type == CTRL_ATTR_OP_ID && glen >= 4)
							memcpy(&id, (const char *)g + NLA_HDRLEN, 4);
						if (g->nla_type == CTRL_ATTR_OP_FLAGS && glen >= 4)
							memcpy(&flags, (const char *)g + NLA_HDRLEN, 4);
					} else {
						if (g->nla_type == CTRL_ATTR_MCAST_GRP_ID && glen >= 4)
							memcpy(&id, (const char *)g + NLA_HDRLEN, 4);
						if (g->nla_type == CTRL_ATTR_MCAST_GRP_NAME)
							name = (const char *)g + NLA_HDRLEN;
					}
				}
				if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_OPS) {
					nl->nr_ops++;
					if (id <= MMK_CMD_MAX)
						nl->op_flags[id] = flags;
				} else if (name && !strcmp(name, MMK_MCGRP_MONITOR)) {
					nl->monitor = id;
				}
			}
			break;
		}
		if (NLA_ALIGN(a->nla_len) >= len)
			break;
	}
}

/* Open a socket with extended ACKs and resolve the family.  -ENOENT: not loaded. */
static inline int mmk_nl_open(struct mmk_nl *nl)
{
	static char buf[MMK_NL_BUF] __attribute__((aligned(8)));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t salen = sizeof(sa);
	struct mmk_nl_req req;
	struct nlmsghdr *nlh;
	const struct nlmsghdr *r;
	int one = 1, ret = 0, len;
	ssize_t n;
	bool done = false;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(nl->fd, (struct sockaddr *)&sa, &salen) ||
	    setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one))) {
		ret = -errno;
		goto fail;
	}
	nl->portid = sa.nl_pid;

	nlh = mmk_nl_req_init(&req, GENL_ID_CTRL, NLM_F_ACK, CTRL_CMD_GETFAMILY, 1);
	mmk_nl_put_str(&req, CTRL_ATTR_FAMILY_NAME, MMK_FAMILY_NAME);
	ret = mmk_nl_send(nl, nlh);
	while (!ret && !done) {
		n = recv(nl->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			ret = -errno;
			break;
		}
		len = n;
		for (r = (void *)buf; NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
			if (r->nlmsg_type == NLMSG_ERROR) {
				ret = ((const struct nlmsgerr *)NLMSG_DATA(r))->error;
				done = true;
			} else if (r->nlmsg_type == GENL_ID_CTRL) {
				mmk_nl_parse_family(nl, r);
			}
		}
	}
	if (!ret && !nl->family)
		ret = -EPROTO;
	if (!ret)
		return 0;
fail:
	close(nl->fd);
	nl->fd = -1;
	return ret;
}

static inline void mmk_nl_close(struct mmk_nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

static inline int mmk_nl_join_monitor(struct mmk_nl *nl)
{
	int grp = nl->monitor;

	if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)))
		return -errno;
	return 0;
}

/* MMK_CMD_POOL_GET do by id (name NULL) or by name. */
static inline int mmk_nl_get(struct mmk_nl *nl, uint32_t id, const char *name,
			     struct mmk_nl_reply *r)
{
	struct mmk_nl_req req;
	struct nlmsghdr *nlh;

	nlh = mmk_nl_req_init(&req, nl->family, NLM_F_ACK, MMK_CMD_POOL_GET, MMK_FAMILY_VERSION);
	if (name)
		mmk_nl_put_str(&req, MMK_A_POOL_NAME, name);
	else
		mmk_nl_put_u32(&req, MMK_A_POOL_ID, id);
	return mmk_nl_talk(nl, nlh, r);
}

/* MMK_CMD_POOL_GET dump; @between runs after the first part. */
static inline int mmk_nl_dump(struct mmk_nl *nl, struct mmk_nl_reply *r,
			      void (*between)(void *), void *arg)
{
	struct mmk_nl_req req;
	struct nlmsghdr *nlh;
	int ret;

	nlh = mmk_nl_req_init(&req, nl->family, NLM_F_DUMP, MMK_CMD_POOL_GET, MMK_FAMILY_VERSION);
	memset(r, 0, sizeof(*r));
	ret = mmk_nl_send(nl, nlh);
	return ret ? ret : mmk_nl_recv(nl, nlh->nlmsg_seq, r, between, arg);
}

/*
 * MMK_CMD_QUEUE_GET or MMK_CMD_SESSION_GET of pool @pool_id (or
 * @pool_name): a do for member @id (or queue @name), or a dump if both
 * are 0/NULL.  The pool attributes have the same types in both sets.
 */
static inline int mmk_nl_member(struct mmk_nl *nl, uint8_t cmd, uint32_t pool_id,
				const char *pool_name, uint32_t id, const char *name,
				struct mmk_nl_reply *r, void (*between)(void *), void *arg)
{
	bool dump = !id && !name;
	struct mmk_nl_req req;
	struct nlmsghdr *nlh;
	int ret;

	nlh = mmk_nl_req_init(&req, nl->family, dump ? NLM_F_DUMP : NLM_F_ACK, cmd,
			      MMK_FAMILY_VERSION);
	if (pool_name)
		mmk_nl_put_str(&req, MMK_A_QUEUE_POOL_NAME, pool_name);
	else
		mmk_nl_put_u32(&req, MMK_A_QUEUE_POOL_ID, pool_id);
	if (id)
		mmk_nl_put_u32(&req, cmd == MMK_CMD_QUEUE_GET ? MMK_A_QUEUE_ID : MMK_A_SESSION_ID,
			       id);
	if (name)
		mmk_nl_put_str(&req, MMK_A_QUEUE_NAME, name);
	memset(r, 0, sizeof(*r));
	ret = mmk_nl_send(nl, nlh);
	return ret ? ret : mmk_nl_recv(nl, nlh->nlmsg_seq, r, between, arg);
}

/* The queue or session message with id @id in @r, or NULL. */
static inline const struct mmk_nl_msg *mmk_nl_find_member(const struct mmk_nl_reply *r,
							  uint32_t id)
{
	unsigned int i;

	for (i = 0; i < r->nr; i++)
		if (r->msgs[i].has[MMK_A_QUEUE_ID] && r->msgs[i].val[MMK_A_QUEUE_ID] == id)
			return &r->msgs[i];
	return NULL;
}

/* The message about pool @id in @r, or NULL. */
static inline const struct mmk_nl_msg *mmk_nl_find(const struct mmk_nl_reply *r, uint32_t id)
{
	unsigned int i;

	for (i = 0; i < r->nr; i++)
		if (r->msgs[i].has[MMK_A_POOL_ID] && r->msgs[i].val[MMK_A_POOL_ID] == id)
			return &r->msgs[i];
	return NULL;
}

/*
 * Events waiting on a socket that joined the monitor group, without
 * blocking: each one is appended to @r.  Returns the number added.
 */
static inline int mmk_nl_drain_events(struct mmk_nl *nl, struct mmk_nl_reply *r)
{
	static char buf[MMK_NL_BUF] __attribute__((aligned(8)));
	const struct nlmsghdr *nlh;
	unsigned int before = r->nr;
	ssize_t n;
	int len, ret;

	for (;;) {
		n = recv(nl->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN ? (int)(r->nr - before) : -errno;
		len = n;
		for (nlh = (void *)buf; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
			if (nlh->nlmsg_type != nl->family || nlh->nlmsg_seq != 0)
				continue;
			ret = mmk_nl_reply_add(r, nlh);
			if (ret)
				return ret;
		}
	}
}

#endif /* MMK_NL_H */
