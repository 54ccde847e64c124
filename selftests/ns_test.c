// SPDX-License-Identifier: GPL-2.0
/*
 * Named pools live in the IPC namespace of their creator, as POSIX message
 * queues and SysV IPC do:
 *
 *  - from another IPC namespace a name is not found (ENOENT), and a pool
 *    of the same name can be created there;
 *  - CAP_IPC_OWNER counts only in the user namespace that owns the pool's
 *    IPC namespace;
 *  - netlink shows a caller the pools of its own IPC namespace only, and
 *    an admin of the initial namespaces every pool, each with the inode
 *    number of its IPC namespace.
 *
 * Each test runs once in a new IPC namespace as root, and once in new user
 * and IPC namespaces as an unprivileged uid of group mmk (unshare(2) of
 * CLONE_NEWIPC, and of CLONE_NEWUSER | CLONE_NEWIPC).  The work in the new
 * namespaces is done by a forked child, which reports through its exit
 * status and talks to the test through a pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "mmk_nl.h"
#include "kselftest_harness.h"

#define NS_TYPE		0x6e616d6573703031ULL
#define OTHER_UID	1000

#define EX_CREDS	201	/* could not take the identity */
#define EX_UNSHARE	202	/* unshare(2) refused: no namespaces here */

FIXTURE(ns) {
	char name[MMK_NAME_MAX];
	int fd;			/* the test's pool, in the initial namespaces */
	uint32_t id;
	uint32_t ipc_ns;	/* the test's IPC namespace */
	int up[2];		/* child to test */
	int down[2];		/* test to child */
};

FIXTURE_VARIANT(ns) {
	int flags;		/* of unshare(2) */
	uid_t uid;		/* taken before unshare; mapped to 0 in a new user ns */
	const char *tag;	/* in pool names */
};

FIXTURE_VARIANT_ADD(ns, ipc_as_root) {
	.flags = CLONE_NEWIPC, .uid = 0, .tag = "ipc",
};

FIXTURE_VARIANT_ADD(ns, user_and_ipc_as_user) {
	.flags = CLONE_NEWUSER | CLONE_NEWIPC, .uid = OTHER_UID, .tag = "user",
};

FIXTURE_SETUP(ns)
{
	snprintf(self->name, sizeof(self->name), "ns-%d-%s", getpid(), variant->tag);
	/* Mode 0666: only the namespace keeps anyone out. */
	self->fd = mmk_create_id(self->name, 64, 2, 0666, NS_TYPE, 0, &self->id);
	ASSERT_LE(0, self->fd);
	self->ipc_ns = mmk_self_ipc_ns();
	ASSERT_NE(0U, self->ipc_ns);
	ASSERT_EQ(0, pipe2(self->up, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(self->down, O_CLOEXEC));
}

FIXTURE_TEARDOWN(ns)
{
	close(self->up[0]);
	close(self->up[1]);
	close(self->down[0]);
	close(self->down[1]);
	close(self->fd);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * In the child: take the variant's uid (keeping the device's group), then
 * its new namespaces; in a new user namespace, the uid is mapped to root.
 */
static void enter_namespaces(const FIXTURE_VARIANT(ns) *variant)
{
	char map[64];

	if (variant->uid &&
	    (mmk_setgroups_permitted(0, NULL) ||
	     setresgid(variant->uid, variant->uid, variant->uid) ||
	     setresuid(variant->uid, variant->uid, variant->uid) ||
	     prctl(PR_SET_DUMPABLE, 1)))
		_exit(EX_CREDS);
	if (unshare(variant->flags))
		_exit(EX_UNSHARE);
	if (variant->flags & CLONE_NEWUSER) {
		snprintf(map, sizeof(map), "0 %u 1\n", variant->uid);
		if (write_file("/proc/self/uid_map", map))
			_exit(EX_CREDS);
	}
}

/* Skip the test if the child could not enter the namespaces. */
#define CHECK_CHILD(status) do {						\
	int __st = (status);							\
	if (__st == EX_UNSHARE)							\
		SKIP(return, "unshare(%#x) refused: no namespaces", variant->flags); \
	EXPECT_EQ(0, __st);							\
} while (0)

/* The pool's id through its session. */
static uint32_t pool_id_of(int fd)
{
	struct mmk_pool_info info;

	return mmk_info(fd, &info) ? 0 : info.pool_id;
}

/*
 * A name is found in its own IPC namespace only, and the same name can be
 * taken in another one; netlink shows each side its own pool, and the
 * admin of the initial namespaces both, with their namespaces.
 */
TEST_F(ns, names_and_netlink_are_per_namespace)
{
	const struct mmk_nl_msg *m;
	struct mmk_nl_reply r;
	uint32_t child_id = 0;
	struct mmk_nl nl;
	struct stat st;
	char path[64];
	int fd, status;
	pid_t pid;

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_nl_reply cr;
		struct mmk_nl cnl;
		uint32_t id;
		int cfd, cfd2;

		enter_namespaces(variant);
		CHILD_ASSERT(mmk_self_ipc_ns() != self->ipc_ns);
		/* The initial namespace's pool is not there. */
		CHILD_EQ(-ENOENT, mmk_attach(self->name, NS_TYPE));
		/* Its name is free here, and names this namespace's pool. */
		cfd = mmk_create_id(self->name, 64, 2, 0600, NS_TYPE, 0, &id);
		CHILD_ASSERT(cfd >= 0);
		CHILD_ASSERT(id != self->id);
		CHILD_EQ(-EEXIST, mmk_create(self->name, 64, 2, 0600, NS_TYPE, 0));
		cfd2 = mmk_attach(self->name, NS_TYPE);
		CHILD_ASSERT(cfd2 >= 0);
		CHILD_EQ(id, pool_id_of(cfd2));
		/* Netlink: this namespace's pool only. */
		CHILD_EQ(0, mmk_nl_open(&cnl));
		CHILD_EQ(0, mmk_nl_dump(&cnl, &cr, NULL, NULL));
		CHILD_EQ(0, cr.error);
		CHILD_ASSERT(!mmk_nl_find(&cr, self->id));
		m = mmk_nl_find(&cr, id);
		CHILD_ASSERT(m);
		CHILD_EQ(mmk_self_ipc_ns(), m->val[MMK_A_POOL_IPC_NS]);
		mmk_nl_reply_free(&cr);
		CHILD_EQ(0, mmk_nl_get(&cnl, self->id, NULL, &cr));
		CHILD_EQ(-ENOENT, cr.error);
		mmk_nl_reply_free(&cr);
		CHILD_EQ(0, mmk_nl_get(&cnl, 0, self->name, &cr));
		CHILD_EQ(0, cr.error);
		CHILD_EQ(1, cr.nr);
		CHILD_EQ(id, cr.msgs[0].val[MMK_A_POOL_ID]);
		mmk_nl_reply_free(&cr);
		mmk_nl_close(&cnl);
		/* Tell the test, and keep the pool until it has looked. */
		CHILD_ASSERT(write(self->up[1], &id, sizeof(id)) == sizeof(id));
		get_byte(self->down[0]);
		_exit(0);
	}
	if (read(self->up[0], &child_id, sizeof(child_id)) != sizeof(child_id)) {
		status = wait_child(pid);
		CHECK_CHILD(status);
		ASSERT_TRUE(false) TH_LOG("the child reported no pool");
	}

	/* Here, the name still finds the initial namespace's pool. */
	fd = mmk_attach(self->name, NS_TYPE);
	ASSERT_LE(0, fd);
	EXPECT_EQ(self->id, pool_id_of(fd));
	close(fd);
	EXPECT_EQ(-EEXIST, mmk_create(self->name, 64, 2, 0600, NS_TYPE, 0));

	/* The admin of the initial namespaces sees both, with their namespaces. */
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	ASSERT_EQ(0, stat(path, &st));
	ASSERT_EQ(0, mmk_nl_open(&nl));
	ASSERT_EQ(0, mmk_nl_dump(&nl, &r, NULL, NULL));
	EXPECT_EQ(0, r.error);
	m = mmk_nl_find(&r, self->id);
	ASSERT_NE(NULL, m);
	EXPECT_EQ(self->ipc_ns, m->val[MMK_A_POOL_IPC_NS]);
	m = mmk_nl_find(&r, child_id);
	ASSERT_NE(NULL, m);
	EXPECT_EQ((uint32_t)st.st_ino, m->val[MMK_A_POOL_IPC_NS]);
	EXPECT_STREQ(self->name, m->name);
	mmk_nl_reply_free(&r);
	mmk_nl_close(&nl);

	ASSERT_EQ(0, put_byte(self->down[1], 'x'));
	CHECK_CHILD(wait_child(pid));
}

/*
 * CAP_IPC_OWNER opens a mode-0000 pool of the caller's IPC namespace when
 * the caller has it in the user namespace that owns that IPC namespace
 * (root of a new user namespace, for its own IPC namespace), and nothing
 * without it.
 */
TEST_F(ns, ipc_owner_counts_in_the_owning_user_namespace)
{
	pid_t pid;

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int cfd;

		enter_namespaces(variant);
		cfd = mmk_create(self->name, 64, 2, 0000, NS_TYPE, 0);
		CHILD_ASSERT(cfd >= 0);
		cfd = mmk_attach(self->name, NS_TYPE);
		CHILD_ASSERT(cfd >= 0);
		CHILD_EQ(0, mmk_drop_cap(CAP_IPC_OWNER));
		CHILD_EQ(-EACCES, mmk_attach(self->name, NS_TYPE));
		_exit(0);
	}
	CHECK_CHILD(wait_child(pid));
}

/*
 * Root of a new user namespace that stays in the initial IPC namespace
 * finds the initial namespace's pools, but its CAP_IPC_OWNER does not
 * count there: a mode-0600 pool of root refuses it, and netlink does not
 * show it.
 */
TEST(user_ns_capability_does_not_reach_initial_pools)
{
	char name[MMK_NAME_MAX];
	uint32_t id = 0;
	int fd, status;
	pid_t pid;

	snprintf(name, sizeof(name), "ns-%d-cap", getpid());
	fd = mmk_create_id(name, 64, 2, 0600, NS_TYPE, 0, &id);
	ASSERT_LE(0, fd);
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_nl_reply r;
		struct mmk_nl nl;
		char map[64];

		if (mmk_setgroups_permitted(0, NULL) ||
		    setresgid(OTHER_UID, OTHER_UID, OTHER_UID) ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID) || prctl(PR_SET_DUMPABLE, 1))
			_exit(EX_CREDS);
		if (unshare(CLONE_NEWUSER))
			_exit(EX_UNSHARE);
		snprintf(map, sizeof(map), "0 %u 1\n", OTHER_UID);
		CHILD_EQ(0, write_file("/proc/self/uid_map", map));
		CHILD_EQ(-EACCES, mmk_attach(name, NS_TYPE));
		CHILD_EQ(0, mmk_nl_open(&nl));
		CHILD_EQ(0, mmk_nl_dump(&nl, &r, NULL, NULL));
		CHILD_ASSERT(!mmk_nl_find(&r, id));
		mmk_nl_reply_free(&r);
		mmk_nl_close(&nl);
		_exit(0);
	}
	status = wait_child(pid);
	close(fd);
	if (status == EX_UNSHARE)
		SKIP(return, "unshare(CLONE_NEWUSER) refused");
	EXPECT_EQ(0, status);
}

TEST_HARNESS_MAIN
