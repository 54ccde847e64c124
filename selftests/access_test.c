// SPDX-License-Identifier: GPL-2.0
/*
 * Who may attach to a named pool of /dev/mmk: the mode bits, checked like a
 * file's against the caller's uid and groups, CAP_IPC_OWNER, the payload
 * type id, and anonymous pools that no name reaches.
 *
 * The tests run as root.  Other identities are taken in forked children,
 * which report through their exit status: 0 when the attach worked, the
 * errno when it failed, and codes above 200 when the child could not even
 * get that far.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/capability.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "kselftest_harness.h"

#define AT_TYPE		0x6163636573733031ULL
#define NOBODY		65534
#define OTHER_UID	1000
#define OTHER_GID	1000
#define POOL_GID	1234

/* Exit codes of a child that failed before the call under test. */
#define EX_CREDS	201	/* could not take the identity */
#define EX_OPEN		202	/* could not open /dev/mmk */
#define EX_CHECK	203	/* attached, but something after it was wrong */
#define EX_CAPS		204	/* could not drop the capability */

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7);
}

/*
 * Take every id of uid/gid, with exactly the given supplementary groups
 * and the device's group: a user who may open /dev/mmk.
 */
static int become(uid_t uid, gid_t gid, size_t ngroups, const gid_t *groups)
{
	if (mmk_setgroups_permitted(ngroups, groups))
		return -1;
	if (setresgid(gid, gid, gid))
		return -1;
	if (setresuid(uid, uid, uid))
		return -1;
	return 0;
}

/* Attach in this process; 0 or the errno, or EX_OPEN. */
static int attach_errno(const char *name, uint64_t type)
{
	struct mmk_pool_attach a = { .payload_type = type };
	int fd, ret;

	snprintf(a.name, sizeof(a.name), "%s", name);
	fd = mmk_open();
	if (fd < 0) {
		fprintf(stderr, "# uid %d: open %s: %s\n", getuid(), MMK_DEVICE_PATH,
			strerror(errno));
		return EX_OPEN;
	}
	ret = mmk_ioctl(fd, MMK_IOC_ATTACH, &a);
	close(fd);
	return -ret;
}

/*
 * Try to attach as uid/gid (with one supplementary group, unless sup is
 * (gid_t)-1).  Returns 0 if it worked, else the errno (or an EX_ code).
 */
static int attach_as(uid_t uid, gid_t gid, gid_t sup, const char *name, uint64_t type)
{
	pid_t pid = start_child();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (become(uid, gid, sup == (gid_t)-1 ? 0 : 1, &sup))
			_exit(EX_CREDS);
		_exit(attach_errno(name, type));
	}
	return wait_child(pid);
}

/* Try to attach as root without one capability.  Same results as attach_as(). */
static int attach_without_cap(int cap, const char *name, uint64_t type)
{
	pid_t pid = start_child();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (mmk_drop_cap(cap))
			_exit(EX_CAPS);
		_exit(attach_errno(name, type));
	}
	return wait_child(pid);
}

/*
 * A pool created by another identity, kept alive by a child process until
 * stop_holder().  The child stores one message and reports its token.
 */
struct holder {
	pid_t pid;
	int ctl;		/* closing it lets the holder exit */
	uint64_t tok;
};

#define HOLDER_MSG	48

static int start_holder(struct holder *h, uid_t uid, gid_t gid, const char *name,
			uint32_t mode, uint64_t type)
{
	int res[2], ctl[2];
	struct {
		int32_t err;
		uint64_t tok;
	} rep = { 0 };
	char c;

	if (pipe2(res, O_CLOEXEC) || pipe2(ctl, O_CLOEXEC))
		return -EPIPE;
	h->pid = start_child();
	if (h->pid < 0)
		return -errno;
	if (h->pid == 0) {
		unsigned char payload[HOLDER_MSG];
		int fd;

		/*
		 * Keep nothing else: an earlier holder's ctl pipe, inherited
		 * here, would keep that holder from seeing its end of file.
		 */
		for (fd = 3; fd < 1024; fd++) {
			if (fd != res[1] && fd != ctl[0])
				close(fd);
		}
		if (become(uid, gid, 0, NULL)) {
			rep.err = -EX_CREDS;
		} else {
			fd = mmk_create(name, 256, 4, mode, type, 0);
			if (fd < 0) {
				rep.err = fd;
			} else {
				fill_pattern(payload, sizeof(payload), uid);
				rep.err = mmk_store_seq(fd, payload, sizeof(payload), uid,
							&rep.tok);
			}
		}
		if (write(res[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(1);
		/* Hold the pool until the parent closes ctl (or dies). */
		while (read(ctl[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(res[1]);
	close(ctl[0]);
	h->ctl = ctl[1];
	if (read_full(res[0], &rep, sizeof(rep)))
		rep.err = -EPIPE;
	close(res[0]);
	h->tok = rep.tok;
	return rep.err;
}

static int stop_holder(struct holder *h)
{
	close(h->ctl);
	return wait_child(h->pid);
}

static void pool_name(char *buf, const char *what)
{
	snprintf(buf, MMK_NAME_MAX, "access-%d-%s", getpid(), what);
}

/* Root's mode-0600 pool: nobody cannot attach, nor find another way in. */
TEST(mode_0600_refuses_other_users)
{
	char name[MMK_NAME_MAX], guess[MMK_NAME_MAX];
	struct mmk_pool_info info;
	int fd;

	pool_name(name, "0600");
	fd = mmk_create(name, 64, 4, 0600, AT_TYPE, 0);
	ASSERT_LE(0, fd) TH_LOG("create: %s", strerror(-fd));
	ASSERT_EQ(0, mmk_info(fd, &info));

	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, -1, name, AT_TYPE));
	/* The permission check comes before the type check. */
	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, -1, name, AT_TYPE + 1));
	EXPECT_EQ(EACCES, attach_as(OTHER_UID, OTHER_GID, -1, name, AT_TYPE));
	/* Root's group does not help without group bits. */
	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, getegid(), name, AT_TYPE));

	/* Guessing: other names do not exist, the empty name is not a name. */
	pool_name(guess, "0600x");
	EXPECT_EQ(ENOENT, attach_as(NOBODY, NOBODY, -1, guess, AT_TYPE));
	snprintf(guess, sizeof(guess), "access-%d-0600", getpid() + 1);
	EXPECT_EQ(ENOENT, attach_as(NOBODY, NOBODY, -1, guess, AT_TYPE));
	snprintf(guess, sizeof(guess), "%u", info.pool_id);
	EXPECT_EQ(ENOENT, attach_as(NOBODY, NOBODY, -1, guess, AT_TYPE));
	EXPECT_EQ(EINVAL, attach_as(NOBODY, NOBODY, -1, "", AT_TYPE));

	/* The owner itself still gets in. */
	EXPECT_EQ(0, attach_errno(name, AT_TYPE));
	close(fd);
}

/* Mode 0606 lets anybody attach, map and use the pool. */
TEST(mode_0606_admits_other_users)
{
	unsigned char payload[100];
	char name[MMK_NAME_MAX];
	uint64_t tok;
	gid_t gid = getegid();
	pid_t pid;
	int fd;

	pool_name(name, "0606");
	fd = mmk_create(name, 128, 4, 0606, AT_TYPE, 0);
	ASSERT_LE(0, fd);
	fill_pattern(payload, sizeof(payload), 5);
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 5, &tok));

	EXPECT_EQ(0, attach_as(NOBODY, NOBODY, -1, name, AT_TYPE));
	EXPECT_EQ(0, attach_as(OTHER_UID, OTHER_GID, -1, name, AT_TYPE));
	EXPECT_EQ(EPROTOTYPE, attach_as(NOBODY, NOBODY, -1, name, AT_TYPE ^ 1));

	/* And nobody can really use it: read root's message, store one. */
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_pool_info info;
		struct mmk_guard g;
		uint64_t mine;
		size_t len;
		void *map;
		int cfd;

		if (become(NOBODY, NOBODY, 0, NULL))
			_exit(EX_CREDS);
		cfd = mmk_attach(name, AT_TYPE);
		if (cfd < 0)
			_exit(-cfd);
		if (mmk_info(cfd, &info) || info.owner_uid != 0 || info.owner_gid != gid ||
		    info.mode != 0606 || strcmp(info.name, name) ||
		    info.payload_type != AT_TYPE)
			_exit(EX_CHECK);
		map = mmk_map(cfd, &len);
		if (map == MAP_FAILED)
			_exit(EX_CHECK);
		if (mmk_guard(cfd, MMK_IOC_READ, tok, &g) ||
		    g.payload_size != sizeof(payload) ||
		    memcmp(mmk_payload(map, g.offset), payload, sizeof(payload)) ||
		    mmk_read_release(cfd, tok))
			_exit(EX_CHECK);
		if (mmk_store_seq(cfd, payload, 10, 6, &mine))
			_exit(EX_CHECK);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

/* Attaching needs both read and write permission. */
TEST(read_or_write_alone_is_not_enough)
{
	static const uint32_t refused[] = { 0604, 0602, 0601, 0605, 0603, 0600 };
	char name[MMK_NAME_MAX];
	unsigned int i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(refused); i++) {
		char what[16];

		snprintf(what, sizeof(what), "m%o", refused[i]);
		pool_name(name, what);
		fd = mmk_create(name, 64, 2, refused[i], AT_TYPE, 0);
		ASSERT_LE(0, fd);
		EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, -1, name, AT_TYPE))
			TH_LOG("mode %o", refused[i]);
		close(fd);
	}
	pool_name(name, "m0607");
	fd = mmk_create(name, 64, 2, 0607, AT_TYPE, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, attach_as(NOBODY, NOBODY, -1, name, AT_TYPE));
	close(fd);
}

/*
 * Group bits apply to members of the pool's group, through the primary or a
 * supplementary group; and, as for files, a member gets the group bits only.
 */
TEST(group_bits_apply_to_group_members)
{
	char g660[MMK_NAME_MAX], g606[MMK_NAME_MAX];
	struct mmk_pool_info info;
	int fd660, fd606;

	/* Still root, but creating with the pool group as effective gid. */
	ASSERT_EQ(0, setresgid(POOL_GID, POOL_GID, POOL_GID));
	pool_name(g660, "g660");
	pool_name(g606, "g606");
	fd660 = mmk_create(g660, 64, 2, 0660, AT_TYPE, 0);
	ASSERT_LE(0, fd660);
	fd606 = mmk_create(g606, 64, 2, 0606, AT_TYPE, 0);
	ASSERT_LE(0, fd606);
	ASSERT_EQ(0, mmk_info(fd660, &info));
	EXPECT_EQ(0U, info.owner_uid);
	EXPECT_EQ((uint32_t)POOL_GID, info.owner_gid);
	EXPECT_EQ(0660U, info.mode);

	EXPECT_EQ(0, attach_as(NOBODY, NOBODY, POOL_GID, g660, AT_TYPE));
	EXPECT_EQ(0, attach_as(NOBODY, POOL_GID, -1, g660, AT_TYPE));
	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, -1, g660, AT_TYPE));
	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, POOL_GID + 1, g660, AT_TYPE));

	EXPECT_EQ(0, attach_as(NOBODY, NOBODY, -1, g606, AT_TYPE));
	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, POOL_GID, g606, AT_TYPE));
	EXPECT_EQ(EACCES, attach_as(NOBODY, POOL_GID, -1, g606, AT_TYPE));
	close(fd660);
	close(fd606);
}

/* Owner bits apply to the owner, and only the owner bits. */
TEST(owner_bits_apply_to_owner)
{
	char o600[MMK_NAME_MAX], o066[MMK_NAME_MAX];
	struct holder h600, h066;

	pool_name(o600, "o600");
	pool_name(o066, "o066");
	ASSERT_EQ(0, start_holder(&h600, OTHER_UID, OTHER_GID, o600, 0600, AT_TYPE));
	ASSERT_EQ(0, start_holder(&h066, OTHER_UID, OTHER_GID, o066, 0066, AT_TYPE));

	EXPECT_EQ(0, attach_as(OTHER_UID, OTHER_GID, -1, o600, AT_TYPE));
	EXPECT_EQ(0, attach_as(OTHER_UID, NOBODY, -1, o600, AT_TYPE));
	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, -1, o600, AT_TYPE));
	EXPECT_EQ(EACCES, attach_as(NOBODY, OTHER_GID, -1, o600, AT_TYPE));

	EXPECT_EQ(EACCES, attach_as(OTHER_UID, OTHER_GID, -1, o066, AT_TYPE));
	EXPECT_EQ(0, attach_as(NOBODY, OTHER_GID, -1, o066, AT_TYPE));
	EXPECT_EQ(0, attach_as(NOBODY, NOBODY, -1, o066, AT_TYPE));

	EXPECT_EQ(0, stop_holder(&h600));
	EXPECT_EQ(0, stop_holder(&h066));
}

/*
 * Root holds CAP_IPC_OWNER and may attach to a pool it does not own, whose
 * mode grants it nothing; POOL_INFO reports the real owner and mode.
 */
TEST(cap_ipc_owner_overrides_mode)
{
	unsigned char want[HOLDER_MSG];
	char n600[MMK_NAME_MAX], n000[MMK_NAME_MAX];
	struct mmk_pool_info info;
	struct holder h600, h000;
	struct mmk_guard g;
	size_t len;
	void *map;
	int fd;

	pool_name(n600, "n600");
	pool_name(n000, "n000");
	ASSERT_EQ(0, start_holder(&h600, NOBODY, NOBODY, n600, 0600, AT_TYPE));
	ASSERT_EQ(0, start_holder(&h000, NOBODY, NOBODY, n000, 0, AT_TYPE));

	fd = mmk_attach(n600, AT_TYPE);
	ASSERT_LE(0, fd) TH_LOG("root attach: %s", strerror(-fd));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ((uint32_t)NOBODY, info.owner_uid);
	EXPECT_EQ((uint32_t)NOBODY, info.owner_gid);
	EXPECT_EQ(0600U, info.mode);
	EXPECT_EQ(2U, info.sessions);
	EXPECT_EQ(AT_TYPE, info.payload_type);
	EXPECT_STREQ(n600, info.name);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	fill_pattern(want, sizeof(want), NOBODY);
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, h600.tok, &g));
	EXPECT_EQ(0, memcmp(want, mmk_payload(map, g.offset), sizeof(want)));
	ASSERT_EQ(0, mmk_read_release(fd, h600.tok));
	munmap(map, len);
	close(fd);

	/* Even mode 0. */
	EXPECT_EQ(0, attach_errno(n000, AT_TYPE));
	/* But not a wrong type. */
	EXPECT_EQ(EPROTOTYPE, attach_errno(n600, AT_TYPE + 1));
	/* The owner gets nothing from mode 0. */
	EXPECT_EQ(EACCES, attach_as(NOBODY, NOBODY, -1, n000, AT_TYPE));

	EXPECT_EQ(0, stop_holder(&h600));
	EXPECT_EQ(0, stop_holder(&h000));
}

/* Without CAP_IPC_OWNER, root is just uid 0 to the mode check. */
TEST(root_without_cap_ipc_owner_is_refused)
{
	char n600[MMK_NAME_MAX], r600[MMK_NAME_MAX];
	struct holder h600;
	int fd;

	pool_name(n600, "n600");
	pool_name(r600, "r600");
	ASSERT_EQ(0, start_holder(&h600, NOBODY, NOBODY, n600, 0600, AT_TYPE));
	fd = mmk_create(r600, 64, 2, 0600, AT_TYPE, 0);
	ASSERT_LE(0, fd);

	EXPECT_EQ(EACCES, attach_without_cap(CAP_IPC_OWNER, n600, AT_TYPE));
	/* Its own pool: the owner bits allow it. */
	EXPECT_EQ(0, attach_without_cap(CAP_IPC_OWNER, r600, AT_TYPE));
	/* The capability that counts is CAP_IPC_OWNER, not the file ones. */
	EXPECT_EQ(0, attach_without_cap(CAP_DAC_OVERRIDE, n600, AT_TYPE));
	EXPECT_EQ(0, attach_without_cap(CAP_DAC_READ_SEARCH, n600, AT_TYPE));

	close(fd);
	EXPECT_EQ(0, stop_holder(&h600));
}

/* An anonymous pool has no name to attach by, for anyone. */
TEST(anonymous_pool_cannot_be_attached)
{
	struct mmk_pool_info info;
	char guess[MMK_NAME_MAX];
	int fd;

	fd = mmk_create(NULL, 64, 2, 0666, AT_TYPE, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(0, info.name[0]);
	EXPECT_EQ(0666U, info.mode);

	EXPECT_EQ(EINVAL, attach_errno("", AT_TYPE));
	EXPECT_EQ(EINVAL, attach_as(NOBODY, NOBODY, -1, "", AT_TYPE));
	snprintf(guess, sizeof(guess), "%u", info.pool_id);
	EXPECT_EQ(ENOENT, attach_errno(guess, AT_TYPE));
	EXPECT_EQ(ENOENT, attach_as(NOBODY, NOBODY, -1, guess, AT_TYPE));
	close(fd);
}

/* The payload type id must match exactly, for root too. */
TEST(wrong_payload_type_refused_even_for_root)
{
	static const uint64_t wrong[] = {
		0, AT_TYPE + 1, AT_TYPE - 1, ~AT_TYPE, AT_TYPE ^ (1ULL << 63),
		AT_TYPE & 0xffffffffULL,
	};
	char name[MMK_NAME_MAX], zname[MMK_NAME_MAX];
	struct mmk_pool_info info;
	unsigned int i;
	int fd, zfd;

	pool_name(name, "type");
	fd = mmk_create(name, 64, 2, 0600, AT_TYPE, 0);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(wrong); i++)
		EXPECT_EQ(EPROTOTYPE, attach_errno(name, wrong[i]))
			TH_LOG("type %#llx", (unsigned long long)wrong[i]);
	EXPECT_EQ(0, attach_errno(name, AT_TYPE));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(1U, info.sessions);

	/* Type 0 is a type like any other. */
	pool_name(zname, "type0");
	zfd = mmk_create(zname, 64, 2, 0600, 0, 0);
	ASSERT_LE(0, zfd);
	EXPECT_EQ(EPROTOTYPE, attach_errno(zname, 1));
	EXPECT_EQ(0, attach_errno(zname, 0));
	close(zfd);
	close(fd);
}

/* POOL_INFO reports owner and mode, the same to every session. */
TEST(pool_info_reports_owner_and_mode)
{
	struct mmk_pool_info a, b;
	char name[MMK_NAME_MAX];
	struct holder h;
	int fd, fd2;

	ASSERT_EQ(0, setresgid(4321, 4321, 4321));
	pool_name(name, "info");
	fd = mmk_create(name, 64, 2, 0640, AT_TYPE, 0);
	ASSERT_LE(0, fd);
	fd2 = mmk_attach(name, AT_TYPE);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mmk_info(fd, &a));
	ASSERT_EQ(0, mmk_info(fd2, &b));
	EXPECT_EQ(0U, a.owner_uid);
	EXPECT_EQ(4321U, a.owner_gid);
	EXPECT_EQ(0640U, a.mode);
	EXPECT_EQ(a.owner_uid, b.owner_uid);
	EXPECT_EQ(a.owner_gid, b.owner_gid);
	EXPECT_EQ(a.mode, b.mode);
	EXPECT_EQ(a.pool_id, b.pool_id);
	EXPECT_EQ(2U, b.sessions);
	close(fd2);
	close(fd);

	pool_name(name, "info2");
	ASSERT_EQ(0, start_holder(&h, OTHER_UID, 2000, name, 0604, AT_TYPE));
	fd = mmk_attach(name, AT_TYPE);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &a));
	EXPECT_EQ((uint32_t)OTHER_UID, a.owner_uid);
	EXPECT_EQ(2000U, a.owner_gid);
	EXPECT_EQ(0604U, a.mode);
	close(fd);
	EXPECT_EQ(0, stop_holder(&h));
}

/* Mode bits beyond 0777 are refused at creation. */
TEST(mode_out_of_range_refused)
{
	static const uint32_t bad[] = { 01000, 02000, 04000, 01777, 0x80000000U };
	char name[MMK_NAME_MAX];
	unsigned int i;
	int fd;

	pool_name(name, "badmode");
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fd = mmk_create(name, 64, 2, bad[i], AT_TYPE, 0);
		EXPECT_EQ(-EINVAL, fd) TH_LOG("mode %#o", bad[i]);
		if (fd >= 0)
			close(fd);
	}
	/* Nothing was half-created: the name is free. */
	EXPECT_EQ(ENOENT, attach_errno(name, AT_TYPE));
}

/*
 * The fd is the capability: a process that got a session by fork keeps
 * using it after dropping to an identity that could not attach.
 */
TEST(inherited_session_works_after_dropping_privileges)
{
	unsigned char payload[64];
	char name[MMK_NAME_MAX];
	uint64_t tok;
	pid_t pid;
	int fd;

	pool_name(name, "inherit");
	fd = mmk_create(name, 64, 2, 0600, AT_TYPE, 0);
	ASSERT_LE(0, fd);
	fill_pattern(payload, sizeof(payload), 9);
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 9, &tok));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mmk_guard g;
		size_t len;
		void *map;

		if (become(NOBODY, NOBODY, 0, NULL))
			_exit(EX_CREDS);
		if (attach_errno(name, AT_TYPE) != EACCES)
			_exit(EX_CHECK);
		map = mmk_map(fd, &len);
		if (map == MAP_FAILED)
			_exit(EX_CHECK);
		if (mmk_guard(fd, MMK_IOC_READ, tok, &g) ||
		    memcmp(mmk_payload(map, g.offset), payload, sizeof(payload)) ||
		    mmk_read_release(fd, tok))
			_exit(EX_CHECK);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

TEST_HARNESS_MAIN
