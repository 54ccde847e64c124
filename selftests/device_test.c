// SPDX-License-Identifier: GPL-2.0
/*
 * Who may open /dev/mmk at all: the module creates it with mode dev_mode
 * (default 0660), and the udev rule (udev/60-mmk.rules; the guest's /init
 * applies it after every insmod) gives it group mmk.  A uid outside that
 * group gets EACCES at open; a member, through its primary or a
 * supplementary group, can create pools; root can, through its
 * capabilities.
 *
 * The tests run as root; each identity is taken in a forked child, which
 * reports through its exit status: 0 when it opened the device and
 * created a pool, the open's errno when that failed, and codes above 200
 * when it could not get that far.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "kselftest_harness.h"

#define DEV_GROUP	"mmk"
#define DEV_MODE_PARAM	"/sys/module/mmk/parameters/dev_mode"
#define DEV_TYPE	0x6465766963653031ULL
#define NOBODY		65534
#define OTHER_GID	1000

#define EX_CREDS	201	/* could not take the identity */
#define EX_CREATE	202	/* opened, but could not create a pool */

/* The gid of group DEV_GROUP in /etc/group, or -1. */
static long dev_group_gid(void)
{
	char line[256], name[64];
	long gid = -1, g;
	FILE *f;

	f = fopen("/etc/group", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63[^:]:%*[^:]:%ld:", name, &g) == 2 &&
		    !strcmp(name, DEV_GROUP)) {
			gid = g;
			break;
		}
	}
	fclose(f);
	return gid;
}

/* How the child's groups relate to the device's group. */
enum member {
	NOT_MEMBER,	/* primary and supplementary groups are others */
	SUPPLEMENTARY,	/* the device's group is a supplementary group */
	PRIMARY,	/* the device's group is the primary group */
};

FIXTURE(dev) {
	gid_t gid;
};

FIXTURE_VARIANT(dev) {
	uid_t uid;
	enum member member;
	int expected;	/* exit status of the child: 0 or the errno of open */
};

FIXTURE_VARIANT_ADD(dev, nobody_outside_group) {
	.uid = NOBODY, .member = NOT_MEMBER, .expected = EACCES,
};

FIXTURE_VARIANT_ADD(dev, other_uid_outside_group) {
	.uid = 1000, .member = NOT_MEMBER, .expected = EACCES,
};

FIXTURE_VARIANT_ADD(dev, supplementary_member) {
	.uid = NOBODY, .member = SUPPLEMENTARY, .expected = 0,
};

FIXTURE_VARIANT_ADD(dev, primary_member) {
	.uid = 1000, .member = PRIMARY, .expected = 0,
};

FIXTURE_VARIANT_ADD(dev, root_outside_group) {
	.uid = 0, .member = NOT_MEMBER, .expected = 0,
};

FIXTURE_SETUP(dev)
{
	long gid = dev_group_gid();

	if (gid < 0)
		SKIP(return, "no group '%s' in /etc/group", DEV_GROUP);
	self->gid = gid;
}

FIXTURE_TEARDOWN(dev)
{
}

/* The device has the rule's group and mode, and the module's default mode. */
TEST_F(dev, node_has_group_and_mode)
{
	struct stat st;
	char buf[32];

	ASSERT_EQ(0, stat(MMK_DEVICE_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0660U, st.st_mode & 07777);
	EXPECT_EQ(0U, st.st_uid);
	EXPECT_EQ(self->gid, st.st_gid);
	/* Printed in decimal: 0660 is 432. */
	ASSERT_EQ(0, read_str(DEV_MODE_PARAM, buf, sizeof(buf)));
	EXPECT_EQ(0660, strtol(buf, NULL, 10));
}

TEST_F(dev, open_and_create)
{
	gid_t other = OTHER_GID;
	pid_t pid;

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		gid_t gid = variant->member == PRIMARY ? self->gid : other;
		int fd;

		if (setgroups(variant->member == SUPPLEMENTARY ? 1 : 0, &self->gid) ||
		    setresgid(gid, gid, gid) ||
		    setresuid(variant->uid, variant->uid, variant->uid))
			_exit(EX_CREDS);
		fd = mmk_open();
		if (fd < 0)
			_exit(errno);
		close(fd);
		fd = mmk_create(NULL, 64, 2, 0600, DEV_TYPE, 0);
		if (fd < 0)
			_exit(EX_CREATE);
		close(fd);
		_exit(0);
	}
	EXPECT_EQ(variant->expected, wait_child(pid));
}

TEST_HARNESS_MAIN
