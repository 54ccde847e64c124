// SPDX-License-Identifier: GPL-2.0
/*
 * Management over generic netlink: the "mmk" family of
 * docs/netlink/mmk.yaml and uapi/linux/mmk_netlink.h.
 *
 * MMK_CMD_POOL_GET describes one pool (do, by id or by name) or every pool
 * the caller may see (dump).  MMK_CMD_QUEUE_GET and MMK_CMD_SESSION_GET
 * describe the queues and the sessions of one pool the caller may see: who
 * holds what.  The "monitor" multicast group carries pool created,
 * destroyed and exhausted events, and slot poisoned events.
 *
 * Locking: this file has no lock of its own.  Pools are looked up and
 * referenced under mmk_pools_lock inside mmk_pool.c, which is dropped
 * before a message is built.  The event functions are called from process
 * context, never under a spinlock or mmk_pools_lock (a session's bind_lock
 * may be held: create and attach run under it, and sending takes no lock
 * of mmk), so every allocation is GFP_KERNEL.  The family sets
 * parallel_ops: the genetlink core takes no lock around these handlers.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/jiffies.h>
#include <linux/netlink.h>
#include <linux/string.h>
#include <net/genetlink.h>
#include <net/netlink.h>

#include <linux/mmk_netlink.h>

#include "mmk_internal.h"
#include "mmk_compat.h"

/* Offsets in mmk_nl_mcgrps[]. */
enum mmk_nl_mcgrp {
	MMK_NLGRP_MONITOR,
};

/* Not const: 6.1's struct nla_policy points to it without const. */
static struct netlink_range_validation mmk_nl_pool_id_range __ro_after_init = {
	.min = MMK_POOL_ID_MIN,
	.max = MMK_POOL_ID_NONE - 1,
};

/* MMK_CMD_POOL_GET: the do selects a pool by id or name; the dump takes nothing. */
static const struct nla_policy mmk_nl_pool_get_policy[MMK_A_POOL_NAME + 1] = {
	[MMK_A_POOL_ID]		= NLA_POLICY_FULL_RANGE(NLA_U32, &mmk_nl_pool_id_range),
	[MMK_A_POOL_NAME]	= { .type = NLA_NUL_STRING, .len = MMK_NAME_MAX - 1 },
};

/* MMK_CMD_QUEUE_GET: the pool by id or name; the do adds the queue by id or name. */
static const struct nla_policy mmk_nl_queue_get_policy[MMK_A_QUEUE_NAME + 1] = {
	[MMK_A_QUEUE_POOL_ID]	= NLA_POLICY_FULL_RANGE(NLA_U32, &mmk_nl_pool_id_range),
	[MMK_A_QUEUE_POOL_NAME]	= { .type = NLA_NUL_STRING, .len = MMK_NAME_MAX - 1 },
	[MMK_A_QUEUE_ID]	= NLA_POLICY_MIN(NLA_U32, 1),
	[MMK_A_QUEUE_NAME]	= { .type = NLA_NUL_STRING, .len = MMK_NAME_MAX - 1 },
};

/* MMK_CMD_SESSION_GET: the pool by id or name; the do adds the session id. */
static const struct nla_policy mmk_nl_session_get_policy[MMK_A_SESSION_ID + 1] = {
	[MMK_A_SESSION_POOL_ID]	= NLA_POLICY_FULL_RANGE(NLA_U32, &mmk_nl_pool_id_range),
	[MMK_A_SESSION_POOL_NAME] = { .type = NLA_NUL_STRING, .len = MMK_NAME_MAX - 1 },
	[MMK_A_SESSION_ID]	= NLA_POLICY_MIN(NLA_U32, 1),
};

static struct genl_family mmk_nl_family;

/* Where a message goes: a do's reply (@cb NULL) or a part of a dump. */
struct mmk_nl_dest {
	u32 portid;
	u32 seq;
	int flags;
	struct netlink_callback *cb;
};

/* Start a message of @cmd for @d. */
static void *mmk_nl_genlmsg_put(struct sk_buff *skb, const struct mmk_nl_dest *d, u8 cmd)
{
	void *hdr = genlmsg_put(skb, d->portid, d->seq, &mmk_nl_family, d->flags, cmd);

	if (hdr && d->cb)
		genl_dump_check_consistent(d->cb, hdr);
	return hdr;
}

/* End the message, or take it back if putting its attributes failed. */
static int mmk_nl_genlmsg_end(struct sk_buff *skb, void *hdr, int err)
{
	if (err) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static int mmk_nl_put_ident(struct sk_buff *skb, const struct mmk_pool *pool)
{
	if (nla_put_u32(skb, MMK_A_POOL_ID, pool->id))
		return -EMSGSIZE;
	if (pool->name[0] && nla_put_string(skb, MMK_A_POOL_NAME, pool->name))
		return -EMSGSIZE;
	return 0;
}

/* Every attribute of a pool, with owner ids as seen from @ns. */
static int mmk_nl_put_pool(struct sk_buff *skb, struct mmk_pool *pool, struct user_namespace *ns)
{
	struct mmk_pool_info info;

	mmk_pool_fill_info(pool, &info);
	if (mmk_nl_put_ident(skb, pool) ||
	    nla_put_u32(skb, MMK_A_POOL_FLAGS, info.flags) ||
	    nla_put_u32(skb, MMK_A_POOL_PAYLOAD_SIZE, info.payload_size) ||
	    nla_put_u32(skb, MMK_A_POOL_SLOT_SIZE, info.slot_size) ||
	    nla_put_u32(skb, MMK_A_POOL_CAPACITY, info.capacity) ||
	    nla_put_u32(skb, MMK_A_POOL_AVAILABLE, info.available) ||
	    nla_put_u64_64bit(skb, MMK_A_POOL_MAP_SIZE, info.map_size, MMK_A_POOL_PAD) ||
	    nla_put_u32(skb, MMK_A_POOL_SESSIONS, info.sessions) ||
	    nla_put_u32(skb, MMK_A_POOL_READ_GUARDS, info.read_guards) ||
	    nla_put_u32(skb, MMK_A_POOL_WRITE_GUARDS, info.write_guards) ||
	    nla_put_u32(skb, MMK_A_POOL_POISONED, info.poisoned) ||
	    nla_put_u64_64bit(skb, MMK_A_POOL_STORES, info.stores, MMK_A_POOL_PAD) ||
	    nla_put_u64_64bit(skb, MMK_A_POOL_FREES, info.frees, MMK_A_POOL_PAD) ||
	    nla_put_u64_64bit(skb, MMK_A_POOL_NO_FREE_SLOTS, info.no_free_slots,
			      MMK_A_POOL_PAD) ||
	    nla_put_u32(skb, MMK_A_POOL_MEMORY_CLASS, info.memory_class) ||
	    nla_put_u32(skb, MMK_A_POOL_OWNER_UID, from_kuid_munged(ns, pool->uid)) ||
	    nla_put_u32(skb, MMK_A_POOL_OWNER_GID, from_kgid_munged(ns, pool->gid)) ||
	    nla_put_u32(skb, MMK_A_POOL_MODE, info.mode) ||
	    nla_put_u64_64bit(skb, MMK_A_POOL_PAYLOAD_TYPE, info.payload_type, MMK_A_POOL_PAD) ||
	    nla_put_u32(skb, MMK_A_POOL_QUEUES, mmk_pool_queue_count(pool)) ||
	    nla_put_u32(skb, MMK_A_POOL_IPC_NS, mmk_pool_ipc_ns_inum(pool)))
		return -EMSGSIZE;
	return 0;
}

/* One MMK_CMD_POOL_GET message. */
static int mmk_nl_fill_pool(struct sk_buff *skb, struct mmk_pool *pool, const struct mmk_nl_dest *d)
{
	void *hdr = mmk_nl_genlmsg_put(skb, d, MMK_CMD_POOL_GET);

	if (!hdr)
		return -EMSGSIZE;
	return mmk_nl_genlmsg_end(skb, hdr, mmk_nl_put_pool(skb, pool, current_user_ns()));
}

/* One MMK_CMD_QUEUE_GET message. */
static int mmk_nl_fill_queue(struct sk_buff *skb, const struct mmk_queue_info *q,
			     const struct mmk_nl_dest *d)
{
	void *hdr = mmk_nl_genlmsg_put(skb, d, MMK_CMD_QUEUE_GET);
	int err;

	if (!hdr)
		return -EMSGSIZE;
	err = nla_put_u32(skb, MMK_A_QUEUE_POOL_ID, q->pool_id) ||
	      nla_put_u32(skb, MMK_A_QUEUE_ID, q->queue_id) ||
	      (q->name[0] && nla_put_string(skb, MMK_A_QUEUE_NAME, q->name)) ||
	      nla_put_u32(skb, MMK_A_QUEUE_POLICY, q->policy) ||
	      nla_put_u32(skb, MMK_A_QUEUE_WATERMARK, q->watermark) ||
	      nla_put_u32(skb, MMK_A_QUEUE_CAP_ITEMS, q->cap_items) ||
	      nla_put_u32(skb, MMK_A_QUEUE_SOFT_ITEMS, q->soft_items) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_CAP_BYTES, q->cap_bytes, MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_SOFT_BYTES, q->soft_bytes, MMK_A_QUEUE_PAD) ||
	      nla_put_u32(skb, MMK_A_QUEUE_ITEMS, q->items) ||
	      nla_put_u32(skb, MMK_A_QUEUE_HIGH_ITEMS, q->high_items) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_BYTES, q->bytes, MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_PUSHES, q->pushes, MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_POPS, q->pops, MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_REJECTED, q->rejected, MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_DROPS_NEWEST, q->drops[MMK_DROP_NEWEST],
				MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_DROPS_OLDEST, q->drops[MMK_DROP_OLDEST],
				MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_DROPS_QOS, q->drops[MMK_DROP_QOS],
				MMK_A_QUEUE_PAD) ||
	      nla_put_u64_64bit(skb, MMK_A_QUEUE_DROPS_DEADLINE, q->drops[MMK_DROP_DEADLINE],
				MMK_A_QUEUE_PAD);
	return mmk_nl_genlmsg_end(skb, hdr, err);
}

/* One MMK_CMD_SESSION_GET message. */
static int mmk_nl_fill_session(struct sk_buff *skb, u32 pool_id,
			       const struct mmk_session_stat *st, const struct mmk_nl_dest *d)
{
	void *hdr = mmk_nl_genlmsg_put(skb, d, MMK_CMD_SESSION_GET);
	int err;

	if (!hdr)
		return -EMSGSIZE;
	err = nla_put_u32(skb, MMK_A_SESSION_POOL_ID, pool_id) ||
	      nla_put_u32(skb, MMK_A_SESSION_ID, st->id) ||
	      nla_put_u32(skb, MMK_A_SESSION_PID, st->pid) ||
	      nla_put_string(skb, MMK_A_SESSION_COMM, st->comm) ||
	      nla_put_u32(skb, MMK_A_SESSION_UID, st->uid) ||
	      nla_put_u32(skb, MMK_A_SESSION_READ_GUARDS, st->read_guards) ||
	      nla_put_u32(skb, MMK_A_SESSION_WRITE_GUARDS, st->write_guards) ||
	      nla_put_u32(skb, MMK_A_SESSION_LOANS, st->loans) ||
	      nla_put_u32(skb, MMK_A_SESSION_POPPED, st->popped) ||
	      nla_put_u32(skb, MMK_A_SESSION_QUEUES_OPEN, st->queues_open);
	return mmk_nl_genlmsg_end(skb, hdr, err);
}

/*
 * Who sees what (docs/DESIGN.md, "Management"): CAP_SYS_ADMIN in the
 * initial user namespace, held both by the opener of the socket and by the
 * task running the request, with the task in the initial IPC namespace,
 * shows every pool of every IPC namespace; otherwise mmk_pool.c shows the
 * named pools of the task's IPC namespace that it could attach.  The do
 * runs in the requester's context, and each part of a dump in the context
 * of the task that reads it.
 */
static bool mmk_nl_admin(const struct sk_buff *skb)
{
	return netlink_capable(skb, CAP_SYS_ADMIN) && mmk_current_ipc_ns_is_initial();
}

/*
 * The pool a request names by @id_attr or @name_attr (exactly one), if the
 * caller may see it: a reference for the caller, or an ERR_PTR with the
 * reason in @extack.  A pool the caller may not see is missing.
 */
static struct mmk_pool *mmk_nl_get_pool(struct nlattr **attrs, int id_attr, int name_attr,
					bool admin, struct netlink_ext_ack *extack)
{
	struct nlattr *id = attrs ? attrs[id_attr] : NULL;
	struct nlattr *name = attrs ? attrs[name_attr] : NULL;
	struct mmk_pool *pool;

	if (!id && !name) {
		NL_SET_ERR_MSG(extack, "pool id or name required");
		NL_SET_ERR_ATTR_MISS(extack, NULL, id_attr);
		return ERR_PTR(-EINVAL);
	}
	if (id && name) {
		NL_SET_ERR_MSG_ATTR(extack, name, "give the pool id or its name, not both");
		return ERR_PTR(-EINVAL);
	}
	pool = mmk_pool_get_visible(id ? nla_get_u32(id) : 0, name ? nla_data(name) : NULL, admin);
	if (!pool) {
		NL_SET_ERR_MSG_ATTR(extack, id ?: name, "no such pool");
		return ERR_PTR(-ENOENT);
	}
	return pool;
}

static struct mmk_nl_dest mmk_nl_reply_dest(const struct genl_info *info)
{
	return (struct mmk_nl_dest){ .portid = info->snd_portid, .seq = info->snd_seq };
}

static struct mmk_nl_dest mmk_nl_dump_dest(struct netlink_callback *cb)
{
	return (struct mmk_nl_dest){
		.portid = NETLINK_CB(cb->skb).portid,
		.seq	= cb->nlh->nlmsg_seq,
		.flags	= NLM_F_MULTI,
		.cb	= cb,
	};
}

static int mmk_nl_pool_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mmk_nl_dest d = mmk_nl_reply_dest(info);
	struct mmk_pool *pool;
	struct sk_buff *msg;
	int ret;

	pool = mmk_nl_get_pool(info->attrs, MMK_A_POOL_ID, MMK_A_POOL_NAME, mmk_nl_admin(skb),
			       info->extack);
	if (IS_ERR(pool))
		return PTR_ERR(pool);

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg) {
		mmk_pool_put(pool);
		return -ENOMEM;
	}
	ret = mmk_nl_fill_pool(msg, pool, &d);
	mmk_pool_put(pool);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

/*
 * Dump state: cb->args[0] is 0 before the first part, then the id at which
 * the next part resumes.  Pools created or destroyed between two parts
 * change the registry generation, which marks the next part's messages
 * NLM_F_DUMP_INTR.
 */
static int mmk_nl_pool_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct mmk_nl_dest d = mmk_nl_dump_dest(cb);
	bool admin = mmk_nl_admin(cb->skb);
	struct mmk_pool *pool;
	unsigned int gen = 0;
	u32 id = cb->args[0];
	int ret = 0;

	if (!id) {
		struct nlattr **attrs = mmk_genl_dump_attrs(cb);
		int type;

		for (type = 1; attrs && type <= MMK_A_POOL_NAME; type++) {
			if (attrs[type]) {
				NL_SET_ERR_MSG_ATTR(cb->extack, attrs[type],
						    "a pool dump takes no attributes");
				return -EINVAL;
			}
		}
		id = MMK_POOL_ID_MIN;
	}

	while ((pool = mmk_pool_get_next_visible(&id, admin, &gen))) {
		cb->seq = gen;
		ret = mmk_nl_fill_pool(skb, pool, &d);
		mmk_pool_put(pool);
		if (ret)
			break;
		id++;
	}
	if (!pool)
		cb->seq = gen;
	cb->args[0] = id;

	/* A full message ends this part; the next one resumes at @id. */
	if (ret == -EMSGSIZE && skb->len)
		ret = 0;
	return ret ?: skb->len;
}

/*
 * Queues and sessions of a pool: the members of the pool that
 * MMK_CMD_QUEUE_GET and MMK_CMD_SESSION_GET describe.  Both are listed by
 * id through a function of the pool that returns the member with the
 * lowest id at or above a cursor, so one do and one dump serve both.
 */
union mmk_nl_member_buf {
	struct mmk_queue_info queue;
	struct mmk_session_stat session;
};

struct mmk_nl_member {
	const char *required, *both, *missing, *dump_only;	/* extack messages */
	int pool_id_attr, pool_name_attr;
	int id_attr;
	int name_attr;			/* 0: members have no name */
	/* The member with the lowest id >= *@id, or -ENOENT.  May sleep. */
	int (*get)(struct mmk_pool *pool, u32 *id, union mmk_nl_member_buf *buf);
	int (*fill)(struct sk_buff *skb, struct mmk_pool *pool,
		    const union mmk_nl_member_buf *buf, const struct mmk_nl_dest *d);
};

static int mmk_nl_queue_get(struct mmk_pool *pool, u32 *id, union mmk_nl_member_buf *buf)
{
	return mmk_pool_queue_info(pool, id, &buf->queue);
}

static int mmk_nl_queue_fill(struct sk_buff *skb, struct mmk_pool *pool,
			     const union mmk_nl_member_buf *buf, const struct mmk_nl_dest *d)
{
	return mmk_nl_fill_queue(skb, &buf->queue, d);
}

static int mmk_nl_session_get(struct mmk_pool *pool, u32 *id, union mmk_nl_member_buf *buf)
{
	return mmk_pool_session_stat(pool, id, &buf->session);
}

static int mmk_nl_session_fill(struct sk_buff *skb, struct mmk_pool *pool,
			       const union mmk_nl_member_buf *buf, const struct mmk_nl_dest *d)
{
	return mmk_nl_fill_session(skb, pool->id, &buf->session, d);
}

/*
 * NL_SET_ERR_MSG_ATTR() for a message that is not a literal (but static:
 * the extack keeps the pointer).  @attr may be NULL.
 */
static void mmk_nl_set_err(struct netlink_ext_ack *extack, const struct nlattr *attr,
			   const char *msg)
{
	do_trace_netlink_extack(msg);
	if (extack) {
		extack->_msg = msg;
		extack->bad_attr = attr;
	}
}

static const struct mmk_nl_member mmk_nl_queues = {
	.required	= "queue id or name required",
	.both		= "give the queue id or its name, not both",
	.missing	= "no such queue",
	.dump_only	= "a queue dump takes only the pool id or name",
	.pool_id_attr	= MMK_A_QUEUE_POOL_ID,
	.pool_name_attr	= MMK_A_QUEUE_POOL_NAME,
	.id_attr	= MMK_A_QUEUE_ID,
	.name_attr	= MMK_A_QUEUE_NAME,
	.get		= mmk_nl_queue_get,
	.fill		= mmk_nl_queue_fill,
};

static const struct mmk_nl_member mmk_nl_sessions = {
	.required	= "session id required",
	.missing	= "no such session",
	.dump_only	= "a session dump takes only the pool id or name",
	.pool_id_attr	= MMK_A_SESSION_POOL_ID,
	.pool_name_attr	= MMK_A_SESSION_POOL_NAME,
	.id_attr	= MMK_A_SESSION_ID,
	.get		= mmk_nl_session_get,
	.fill		= mmk_nl_session_fill,
};

/* Find the member of @pool named by @id (or by @name, queues only) into @buf. */
static int mmk_nl_member_find(const struct mmk_nl_member *m, struct mmk_pool *pool,
			      const struct nlattr *id, const struct nlattr *name,
			      union mmk_nl_member_buf *buf)
{
	u32 want, cur;
	int ret;

	if (id) {
		want = nla_get_u32(id);
		cur = want;
		ret = m->get(pool, &cur, buf);
		return ret ?: cur == want ? 0 : -ENOENT;
	}
	for (cur = 1; !(ret = m->get(pool, &cur, buf)); cur++) {
		if (!strcmp(buf->queue.name, nla_data(name)))
			return 0;
		if (cur == U32_MAX)
			break;
	}
	return -ENOENT;
}

static int mmk_nl_member_doit(const struct mmk_nl_member *m, struct sk_buff *skb,
			      struct genl_info *info)
{
	struct nlattr *id = info->attrs[m->id_attr];
	struct nlattr *name = m->name_attr ? info->attrs[m->name_attr] : NULL;
	struct mmk_nl_dest d = mmk_nl_reply_dest(info);
	union mmk_nl_member_buf *buf;
	struct mmk_pool *pool;
	struct sk_buff *msg;
	int ret;

	pool = mmk_nl_get_pool(info->attrs, m->pool_id_attr, m->pool_name_attr,
			       mmk_nl_admin(skb), info->extack);
	if (IS_ERR(pool))
		return PTR_ERR(pool);
	ret = -EINVAL;
	if (!id && !name) {
		mmk_nl_set_err(info->extack, NULL, m->required);
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, m->id_attr);
		goto out_pool;
	}
	if (id && name) {
		mmk_nl_set_err(info->extack, name, m->both);
		goto out_pool;
	}

	ret = -ENOMEM;
	buf = kmalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		goto out_pool;
	ret = mmk_nl_member_find(m, pool, id, name, buf);
	if (ret) {
		mmk_nl_set_err(info->extack, id ?: name, m->missing);
		goto out_buf;
	}
	ret = -ENOMEM;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		goto out_buf;
	ret = m->fill(msg, pool, buf, &d);
	if (ret)
		nlmsg_free(msg);
	else
		ret = genlmsg_reply(msg, info);
out_buf:
	kfree(buf);
out_pool:
	mmk_pool_put(pool);
	return ret;
}

/*
 * Dump state: cb->args[0] is 0 before the first part, then the pool's id;
 * cb->args[1] the member id at which the next part resumes; cb->args[2]
 * is set once the member of the highest possible id was sent.  Each part
 * looks the pool up again, with the credentials of the task that reads
 * it.  Members that live through the whole dump are each reported once
 * (a member's id does not change); one created or destroyed during it may
 * or may not be.  If the pool goes away (or out of sight) between two
 * parts, the dump ends there with NLM_F_DUMP_INTR: cb->seq is 1 while the
 * pool is there and 2 once it is not.
 */
static int mmk_nl_member_dumpit(const struct mmk_nl_member *m, struct sk_buff *skb,
				struct netlink_callback *cb)
{
	struct mmk_nl_dest d = mmk_nl_dump_dest(cb);
	bool admin = mmk_nl_admin(cb->skb);
	union mmk_nl_member_buf *buf;
	struct mmk_pool *pool;
	u32 id = cb->args[1];
	int ret;

	if (cb->args[2])
		return 0;
	if (!cb->args[0]) {
		struct nlattr **attrs = mmk_genl_dump_attrs(cb);
		struct nlattr *extra = NULL;

		if (attrs)
			extra = attrs[m->id_attr] ?: m->name_attr ? attrs[m->name_attr] : NULL;
		if (extra) {
			mmk_nl_set_err(cb->extack, extra, m->dump_only);
			return -EINVAL;
		}
		pool = mmk_nl_get_pool(attrs, m->pool_id_attr, m->pool_name_attr, admin,
				       cb->extack);
		if (IS_ERR(pool))
			return PTR_ERR(pool);
		cb->args[0] = pool->id;
		cb->seq = 1;
		id = 1;
	} else {
		pool = mmk_pool_get_visible(cb->args[0], NULL, admin);
		if (!pool) {
			NL_SET_ERR_MSG(cb->extack, "the pool went away during the dump");
			cb->seq = 2;
			return 0;
		}
	}

	ret = -ENOMEM;
	buf = kmalloc(sizeof(*buf), GFP_KERNEL);
	if (buf) {
		while (!(ret = m->get(pool, &id, buf))) {
			ret = m->fill(skb, pool, buf, &d);
			if (ret)
				break;
			if (id == U32_MAX) {
				cb->args[2] = 1;
				break;
			}
			id++;
		}
		kfree(buf);
	}
	mmk_pool_put(pool);
	cb->args[1] = id;

	/* The last member, or a full message, ends this part. */
	if (ret == -ENOENT || (ret == -EMSGSIZE && skb->len))
		ret = 0;
	return ret ?: skb->len;
}

static int mmk_nl_queue_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return mmk_nl_member_doit(&mmk_nl_queues, skb, info);
}

static int mmk_nl_queue_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	return mmk_nl_member_dumpit(&mmk_nl_queues, skb, cb);
}

static int mmk_nl_session_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return mmk_nl_member_doit(&mmk_nl_sessions, skb, info);
}

static int mmk_nl_session_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	return mmk_nl_member_dumpit(&mmk_nl_sessions, skb, cb);
}

static const struct genl_ops mmk_nl_ops[] = {
	{
		.cmd		= MMK_CMD_POOL_GET,
		.doit		= mmk_nl_pool_get_doit,
		.dumpit		= mmk_nl_pool_get_dumpit,
		.policy		= mmk_nl_pool_get_policy,
		.maxattr	= ARRAY_SIZE(mmk_nl_pool_get_policy) - 1,
	},
	{
		.cmd		= MMK_CMD_QUEUE_GET,
		.doit		= mmk_nl_queue_get_doit,
		.dumpit		= mmk_nl_queue_get_dumpit,
		.policy		= mmk_nl_queue_get_policy,
		.maxattr	= ARRAY_SIZE(mmk_nl_queue_get_policy) - 1,
	},
	{
		.cmd		= MMK_CMD_SESSION_GET,
		.doit		= mmk_nl_session_get_doit,
		.dumpit		= mmk_nl_session_get_dumpit,
		.policy		= mmk_nl_session_get_policy,
		.maxattr	= ARRAY_SIZE(mmk_nl_session_get_policy) - 1,
	},
};

/*
 * Events name pools of every user, so only CAP_SYS_ADMIN may join.  They
 * are sent in the initial network namespace only: a container with its
 * own network and user namespaces could pass the capability check in its
 * namespace, but receives nothing.
 */
static const struct genl_multicast_group mmk_nl_mcgrps[] = {
	[MMK_NLGRP_MONITOR] = {
		.name	= MMK_MCGRP_MONITOR,
		.flags	= GENL_MCAST_CAP_SYS_ADMIN,
	},
};

static struct genl_family mmk_nl_family = {
	.name		= MMK_FAMILY_NAME,
	.version	= MMK_FAMILY_VERSION,
	/* Requests work in every netns; pools are not per-netns. */
	.netnsok	= true,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= mmk_nl_ops,
	.n_ops		= ARRAY_SIZE(mmk_nl_ops),
	/*
	 * resv_start_op is 0: the core checks every command's genetlink
	 * header and nlmsg_flags strictly, as for any new family.  The ops
	 * leave .validate at 0, so attributes are parsed strictly too.
	 */
	.mcgrps		= mmk_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(mmk_nl_mcgrps),
};

/* An event message, or NULL when nobody listens (or memory is short). */
static struct sk_buff *mmk_nl_event_new(u8 cmd, void **hdr)
{
	struct sk_buff *msg;

	if (!genl_has_listeners(&mmk_nl_family, &init_net, MMK_NLGRP_MONITOR))
		return NULL;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return NULL;
	*hdr = genlmsg_put(msg, 0, 0, &mmk_nl_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* Send the event, or drop it if filling failed (@err). */
static void mmk_nl_event_send(struct sk_buff *msg, void *hdr, int err)
{
	if (err) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	/* -ESRCH (the last listener just left) is not an error. */
	genlmsg_multicast(&mmk_nl_family, msg, 0, MMK_NLGRP_MONITOR, GFP_KERNEL);
}

/* The pool can now be attached: called by mmk_pool_publish(). */
void mmk_nl_pool_created(struct mmk_pool *pool)
{
	struct sk_buff *msg;
	void *hdr;

	might_sleep();
	msg = mmk_nl_event_new(MMK_CMD_POOL_CREATED_NTF, &hdr);
	if (msg)
		mmk_nl_event_send(msg, hdr, mmk_nl_put_pool(msg, pool, &init_user_ns));
}

/* The pool is out of the registry and about to be freed. */
void mmk_nl_pool_destroyed(struct mmk_pool *pool)
{
	struct sk_buff *msg;
	void *hdr;
	int err;

	might_sleep();
	msg = mmk_nl_event_new(MMK_CMD_POOL_DESTROYED_NTF, &hdr);
	if (!msg)
		return;
	err = mmk_nl_put_ident(msg, pool) ||
	      nla_put_u64_64bit(msg, MMK_A_POOL_STORES, atomic64_read(&pool->stores),
				MMK_A_POOL_PAD) ||
	      nla_put_u64_64bit(msg, MMK_A_POOL_FREES, atomic64_read(&pool->frees),
				MMK_A_POOL_PAD) ||
	      nla_put_u64_64bit(msg, MMK_A_POOL_NO_FREE_SLOTS, atomic64_read(&pool->no_free_slots),
				MMK_A_POOL_PAD);
	mmk_nl_event_send(msg, hdr, err);
}

/*
 * At most one exhausted event per pool per second (HZ jiffies), so that a
 * producer spinning on a full pool cannot flood the monitor.  The pool's
 * no_free_slots counter, sent along, counts every refused store.  Lockless:
 * the cmpxchg picks one sender among racing stores.  0 means never sent.
 */
static bool mmk_nl_exhausted_ratelimit(struct mmk_pool *pool)
{
	unsigned long now = jiffies;
	unsigned long last = READ_ONCE(pool->nl_exhausted_at);

	if (last && time_before(now, last + HZ))
		return false;
	return try_cmpxchg(&pool->nl_exhausted_at, &last, now ?: 1);
}

/* A store found no free slot: called by the store path, no lock held. */
void mmk_nl_pool_exhausted(struct mmk_pool *pool)
{
	struct sk_buff *msg;
	void *hdr;
	int err;

	might_sleep();
	if (!genl_has_listeners(&mmk_nl_family, &init_net, MMK_NLGRP_MONITOR) ||
	    !mmk_nl_exhausted_ratelimit(pool))
		return;
	msg = mmk_nl_event_new(MMK_CMD_POOL_EXHAUSTED_NTF, &hdr);
	if (!msg)
		return;
	err = mmk_nl_put_ident(msg, pool) ||
	      nla_put_u32(msg, MMK_A_POOL_CAPACITY, pool->capacity) ||
	      nla_put_u64_64bit(msg, MMK_A_POOL_NO_FREE_SLOTS, atomic64_read(&pool->no_free_slots),
				MMK_A_POOL_PAD);
	mmk_nl_event_send(msg, hdr, err);
}

/* The slot holding @token was poisoned: called after its slot lock is dropped. */
void mmk_nl_slot_poisoned(struct mmk_pool *pool, u64 token)
{
	struct sk_buff *msg;
	void *hdr;
	int err;

	might_sleep();
	msg = mmk_nl_event_new(MMK_CMD_SLOT_POISONED_NTF, &hdr);
	if (!msg)
		return;
	err = mmk_nl_put_ident(msg, pool) ||
	      nla_put_u64_64bit(msg, MMK_A_POOL_TOKEN, token, MMK_A_POOL_PAD);
	mmk_nl_event_send(msg, hdr, err);
}

int mmk_netlink_init(void)
{
	return genl_register_family(&mmk_nl_family);
}

void mmk_netlink_exit(void)
{
	genl_unregister_family(&mmk_nl_family);
}
