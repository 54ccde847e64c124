// SPDX-License-Identifier: GPL-2.0
/*
 * Management over generic netlink: the "mmk" family of
 * docs/netlink/mmk.yaml and uapi/linux/mmk_netlink.h.
 *
 * MMK_CMD_POOL_GET describes one pool (do, by id or by name) or every pool
 * the caller may see (dump).  The "monitor" multicast group carries pool
 * created, destroyed and exhausted events, and slot poisoned events.
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

static struct genl_family mmk_nl_family;

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
	    nla_put_u32(skb, MMK_A_POOL_IPC_NS, mmk_pool_ipc_ns_inum(pool)))
		return -EMSGSIZE;
	return 0;
}

/* One MMK_CMD_POOL_GET message, for a do reply (@cb NULL) or a dump. */
static int mmk_nl_fill_pool(struct sk_buff *skb, struct mmk_pool *pool, u32 portid, u32 seq,
			    int flags, struct netlink_callback *cb)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &mmk_nl_family, flags, MMK_CMD_POOL_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	if (mmk_nl_put_pool(skb, pool, current_user_ns())) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
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

static int mmk_nl_pool_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *id = info->attrs[MMK_A_POOL_ID];
	struct nlattr *name = info->attrs[MMK_A_POOL_NAME];
	struct mmk_pool *pool;
	struct sk_buff *msg;
	int ret;

	if (!id && !name) {
		NL_SET_ERR_MSG(info->extack, "pool id or name required");
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, MMK_A_POOL_ID);
		return -EINVAL;
	}
	if (id && name) {
		NL_SET_ERR_MSG_ATTR(info->extack, name, "give the pool id or its name, not both");
		return -EINVAL;
	}

	pool = mmk_pool_get_visible(id ? nla_get_u32(id) : 0, name ? nla_data(name) : NULL,
				    mmk_nl_admin(skb));
	if (!pool) {
		NL_SET_ERR_MSG_ATTR(info->extack, id ?: name, "no such pool");
		return -ENOENT;
	}

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg) {
		mmk_pool_put(pool);
		return -ENOMEM;
	}
	ret = mmk_nl_fill_pool(msg, pool, info->snd_portid, info->snd_seq, 0, NULL);
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
		ret = mmk_nl_fill_pool(skb, pool, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				       NLM_F_MULTI, cb);
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

static const struct genl_ops mmk_nl_ops[] = {
	{
		.cmd		= MMK_CMD_POOL_GET,
		.doit		= mmk_nl_pool_get_doit,
		.dumpit		= mmk_nl_pool_get_dumpit,
		.policy		= mmk_nl_pool_get_policy,
		.maxattr	= ARRAY_SIZE(mmk_nl_pool_get_policy) - 1,
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
