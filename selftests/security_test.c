// SPDX-License-Identifier: GPL-2.0
/*
 * What a hostile process can get out of /dev/mmk, beyond what
 * access_test.c and mapping_test.c already cover:
 *
 *  - another user cannot reach a pool by its id, its tokens or its
 *    window offsets, nor get a session out of another process through
 *    /proc or pidfd_getfd();
 *  - no mapping becomes writable: not in a forked child, not through
 *    another process's /proc/PID/mem, process_vm_writev() or ptrace;
 *  - every struct the kernel copies out carries only what it should: out
 *    fields are set, everything else is left exactly as given (reserved
 *    fields and padding zero), and a failing call writes nothing back;
 *  - the per-pool, total-byte and pool-count caps stop a process that
 *    creates pools in a loop, and the guard caps one that takes guards in
 *    a loop, with clean errors, and everything comes back when it exits.
 *
 * The tests run as root; other identities are taken in forked children,
 * which report through their exit status (0, an errno, or an EX_ code).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "mmk_test.h"
#include "mmk_child.h"
#include "kselftest_harness.h"

#define SEC_TYPE	0x7365637572697479ULL
#define NOBODY		65534
#define POOLS_FILE	"/sys/class/misc/mmk/pools"
#define BYTES_FILE	"/sys/class/misc/mmk/bytes"

/* Exit codes of a child that failed before or after the call under test. */
#define EX_CREDS	201	/* could not take the identity */
#define EX_SETUP	202	/* could not set up what the check needs */
#define EX_CHECK	203	/* a check after the call failed */
#define EX_WRITTEN	204	/* a write into the pool got through */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open	434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd	438
#endif

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* nobody, a permitted user of /dev/mmk: in the device's group only. */
static int become_nobody(void)
{
	if (mmk_setgroups_permitted(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	return 0;
}

static uint64_t read_u64(struct __test_metadata *_metadata, const char *path)
{
	char buf[64];

	ASSERT_EQ(0, read_str(path, buf, sizeof(buf))) TH_LOG("%s", path);
	return strtoull(buf, NULL, 0);
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

static void pool_name(char *buf, const char *what)
{
	snprintf(buf, MMK_NAME_MAX, "security-%d-%s", getpid(), what);
}

static uint64_t token_of(uint32_t pool_id, uint32_t gen, uint32_t idx)
{
	return (uint64_t)pool_id << 48 | (uint64_t)(gen & 0xfffffff) << 20 | (idx & 0xfffff);
}

/* One write into p, in a signal-safe way: the signal it raised, or 0. */
static sigjmp_buf poke_jmp;
static volatile sig_atomic_t poke_sig;

static void on_poke_fault(int sig)
{
	poke_sig = sig;
	siglongjmp(poke_jmp, 1);
}

static int poke(volatile unsigned char *p, unsigned char v)
{
	struct sigaction sa = { .sa_handler = on_poke_fault }, old_bus, old_segv;

	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	poke_sig = 0;
	if (!sigsetjmp(poke_jmp, 1))
		*p = v;
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	return poke_sig;
}

/* ---------------------------------------------------------------------- */
/* Ids, tokens, names and fds of another user's pool                       */
/* ---------------------------------------------------------------------- */

/* Every ioctl that takes a token, with the token: all must refuse it. */
static int foreign_token_errno(int fd, uint64_t tok)
{
	struct mmk_guard g = { .token = tok };
	struct mmk_release r = { .token = tok };
	struct mmk_free f = { .token = tok };
	static const unsigned long guards[] = {
		MMK_IOC_READ, MMK_IOC_READ_MUT, MMK_IOC_PEEK_HEADER,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(guards); i++) {
		memset(&g, 0, sizeof(g));
		g.token = tok;
		if (mmk_ioctl(fd, guards[i], &g) != -EBADSLT)
			return EX_CHECK;
	}
	if (mmk_ioctl(fd, MMK_IOC_READ_RELEASE, &r) != -EBADSLT ||
	    mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r) != -EBADSLT ||
	    mmk_ioctl(fd, MMK_IOC_FREE, &f) != -EBADSLT)
		return EX_CHECK;
	return 0;
}

/*
 * Pools are attached by name only: MMK_IOC_ATTACH has no id field, and no
 * other call turns an id into a session.  So an id, even a known one,
 * gives an unprivileged process nothing: not an attach (the id as a name
 * is just a name that does not exist), not a token that works on its own
 * pool, not a window of the other pool.  The tokens of another live pool
 * carry that pool's id and fail with EBADSLT on every call.
 */
TEST(pool_ids_and_tokens_of_another_user_give_nothing)
{
	unsigned char payload[64];
	struct mmk_pool_info victim;
	char name[MMK_NAME_MAX];
	uint64_t tok;
	pid_t pid;
	int fd;

	pool_name(name, "victim");
	fd = mmk_create(name, 4096 - 64, 4, 0600, SEC_TYPE, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &victim));
	fill_pattern(payload, sizeof(payload), 1);
	ASSERT_EQ(0, mmk_store_seq(fd, payload, sizeof(payload), 1, &tok));

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		static const char *const fmts[] = { "%u", "%#x", "%08u", "pool-%u", "mmk%u" };
		struct mmk_pool_info own;
		char guess[MMK_NAME_MAX];
		unsigned int i, g;
		void *p;
		int ofd, ret;

		if (become_nobody())
			_exit(EX_CREDS);
		for (i = 0; i < ARRAY_SIZE(fmts); i++) {
			snprintf(guess, sizeof(guess), fmts[i], victim.pool_id);
			ret = mmk_attach(guess, SEC_TYPE);
			if (ret != -ENOENT)
				_exit(ret >= 0 ? EX_CHECK : -ret);
		}
		/* Its own pool, the same shape: the victim's tokens do nothing here. */
		ofd = mmk_create(NULL, 4096 - 64, 4, 0600, SEC_TYPE, MMK_POOL_PAGE_ALIGNED);
		if (ofd < 0 || mmk_info(ofd, &own))
			_exit(EX_SETUP);
		if (own.pool_id == victim.pool_id)
			_exit(EX_CHECK);
		ret = foreign_token_errno(ofd, tok);
		for (i = 0; !ret && i < victim.capacity; i++) {
			for (g = 0; !ret && g < 4; g++)
				ret = foreign_token_errno(ofd, token_of(victim.pool_id, g, i));
		}
		if (ret)
			_exit(ret);
		/* Window offsets are the session's own: no guard here, no window. */
		p = mmap(NULL, own.slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, ofd,
			 MMK_WINDOW_OFFSET(0));
		if (p != MAP_FAILED || errno != EACCES)
			_exit(EX_CHECK);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));

	/* The victim's message and pool are untouched. */
	ASSERT_EQ(0, mmk_info(fd, &victim));
	EXPECT_EQ(3U, victim.available);
	EXPECT_EQ(0U, victim.read_guards);
	EXPECT_EQ(0U, victim.write_guards);
	EXPECT_EQ(0U, victim.frees);
	EXPECT_EQ(1U, victim.sessions);
	close(fd);
}

/*
 * Names are one namespace, like System V IPC keys: a wrong name is ENOENT
 * whoever asks, a right one EACCES without permission.  Guessing around a
 * real name (case, prefixes, suffixes, truncation) finds nothing, and
 * creating a pool under the name of a live one is EEXIST, leaving the
 * session unbound and the pool its owner's.
 */
TEST(guessed_names_find_nothing)
{
	char name[MMK_NAME_MAX];
	pid_t pid;
	int fd;

	pool_name(name, "Secret");
	fd = mmk_create(name, 64, 2, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, fd);

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		static const char *const tweaks[] = {
			"%.*s", "%.*s ", "%.*s\t", "%.*s/", "/%.*s", "%.*sx", "x%.*s", "%.*s.",
		};
		struct mmk_pool_create c = {
			.payload_size = 64, .capacity = 2, .mode = 0666, .payload_type = SEC_TYPE,
		};
		struct mmk_pool_info info;
		char guess[MMK_NAME_MAX], tmp[MMK_NAME_MAX + 8];
		size_t len = strlen(name), k;
		unsigned int i;
		int ret, sfd;

		if (become_nobody())
			_exit(EX_CREDS);
		/* Truncations and extensions. */
		for (k = 1; k < len; k++) {
			snprintf(guess, MMK_NAME_MAX, "%.*s", (int)k, name);
			ret = mmk_attach(guess, SEC_TYPE);
			if (ret != -ENOENT)
				_exit(EX_CHECK);
		}
		for (i = 1; i < ARRAY_SIZE(tweaks); i++) {
			snprintf(tmp, sizeof(tmp), tweaks[i], (int)len, name);
			if (strlen(tmp) >= MMK_NAME_MAX)
				continue;
			memcpy(guess, tmp, strlen(tmp) + 1);
			ret = mmk_attach(guess, SEC_TYPE);
			/* Names with a space or '/' are not names at all. */
			if (ret != -ENOENT && ret != -EINVAL)
				_exit(EX_CHECK);
		}
		/* Case matters. */
		snprintf(guess, sizeof(guess), "%s", name);
		for (k = 0; guess[k]; k++)
			guess[k] = guess[k] >= 'a' && guess[k] <= 'z' ? guess[k] - 32 :
				   guess[k] >= 'A' && guess[k] <= 'Z' ? guess[k] + 32 : guess[k];
		if (mmk_attach(guess, SEC_TYPE) != -ENOENT)
			_exit(EX_CHECK);
		/* The real name: there, but not for nobody. */
		if (mmk_attach(name, SEC_TYPE) != -EACCES)
			_exit(EX_CHECK);
		/* Taking the name over fails, and binds nothing. */
		sfd = mmk_open();
		if (sfd < 0)
			_exit(EX_SETUP);
		snprintf(c.name, sizeof(c.name), "%s", name);
		if (mmk_ioctl(sfd, MMK_IOC_CREATE, &c) != -EEXIST)
			_exit(EX_CHECK);
		if (mmk_info(sfd, &info) != -ENOTCONN)
			_exit(EX_CHECK);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

/*
 * A session is an open file; nothing but fd passing or fork hands it over.
 * Reopening /dev/mmk through /proc/PID/fd makes a new, unbound session even
 * for root; another user cannot open another process's /proc/PID/fd
 * entries at all, nor take the fd with pidfd_getfd().
 */
TEST(session_cannot_be_taken_from_another_process)
{
	struct mmk_pool_info info;
	char name[MMK_NAME_MAX], path[64];
	int fd, again, pidfd, taken;
	pid_t pid, me = getpid();

	pool_name(name, "taken");
	fd = mmk_create(name, 64, 2, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, fd);

	/* Root, its own process: a path reopen is a new session. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	again = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, again) TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_EQ(-ENOTCONN, mmk_info(again, &info));
	close(again);

	/* Control: root may take the very file with pidfd_getfd(). */
	pidfd = syscall(SYS_pidfd_open, me, 0);
	if (pidfd < 0 && errno == ENOSYS)
		SKIP(return, "no pidfd_open");
	ASSERT_LE(0, pidfd);
	taken = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (taken < 0 && errno == ENOSYS) {
		close(pidfd);
		SKIP(return, "no pidfd_getfd");
	}
	ASSERT_LE(0, taken);
	EXPECT_EQ(0, mmk_info(taken, &info));
	EXPECT_EQ(1U, info.sessions);
	close(taken);
	close(pidfd);

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int cfd, p;

		/* Start without the session: fork handed it over. */
		close(fd);
		if (become_nobody())
			_exit(EX_CREDS);
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", me, fd);
		cfd = open(path, O_RDWR | O_CLOEXEC);
		if (cfd >= 0 || (errno != EACCES && errno != EPERM))
			_exit(EX_CHECK);
		p = syscall(SYS_pidfd_open, me, 0);
		if (p < 0)
			_exit(EX_SETUP);
		cfd = syscall(SYS_pidfd_getfd, p, fd, 0);
		if (cfd >= 0 || errno != EPERM)
			_exit(EX_CHECK);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(1U, info.sessions);
	close(fd);
}

/* ---------------------------------------------------------------------- */
/* No mapping becomes writable                                             */
/* ---------------------------------------------------------------------- */

#define MAP_MSG		200

FIXTURE(ro) {
	int fd;
	struct mmk_pool_info info;
	unsigned char *map;
	uint64_t tok;
	uint64_t off;		/* of the message's payload in the mapping */
	unsigned char payload[MAP_MSG];
};

FIXTURE_SETUP(ro)
{
	struct mmk_guard g;
	size_t len;

	fill_pattern(self->payload, sizeof(self->payload), 7);
	self->fd = mmk_create(NULL, 4032, 4, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, mmk_info(self->fd, &self->info));
	self->map = mmk_map(self->fd, &len);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, mmk_store_seq(self->fd, self->payload, MAP_MSG, 7, &self->tok));
	ASSERT_EQ(0, mmk_guard(self->fd, MMK_IOC_PEEK_HEADER, self->tok, &g));
	ASSERT_EQ(0, mmk_read_release(self->fd, self->tok));
	self->off = g.offset + sizeof(struct mmk_msg_header);
}

FIXTURE_TEARDOWN(ro)
{
	munmap(self->map, self->info.map_size);
	close(self->fd);
}

static bool intact(FIXTURE_DATA(ro) *self)
{
	return !memcmp(self->map + self->off, self->payload, MAP_MSG);
}

/* The forked child's copy of the mapping is just as read-only. */
TEST_F(ro, mprotect_in_forked_child_refused)
{
	size_t len = self->info.map_size;
	pid_t pid;

	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned char *moved, *spot;

		if (!mprotect(self->map, len, PROT_READ | PROT_WRITE) || errno != EACCES)
			_exit(EX_WRITTEN);
		if (!mprotect(self->map, len, PROT_READ | PROT_EXEC) || errno != EACCES)
			_exit(EX_CHECK);
		if (!mprotect(self->map + 4096, 4096, PROT_WRITE) || errno != EACCES)
			_exit(EX_WRITTEN);
		if (poke(self->map + self->off, 0x55) != SIGSEGV)
			_exit(EX_WRITTEN);
		/* Moved elsewhere, it is still the same read-only mapping. */
		spot = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (spot == MAP_FAILED)
			_exit(EX_SETUP);
		moved = mremap(self->map, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
		if (moved != spot)
			_exit(EX_SETUP);
		if (!mprotect(moved, len, PROT_READ | PROT_WRITE) || errno != EACCES)
			_exit(EX_WRITTEN);
		if (poke(moved + self->off, 0x55) != SIGSEGV)
			_exit(EX_WRITTEN);
		if (memcmp(moved + self->off, self->payload, MAP_MSG))
			_exit(EX_CHECK);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_TRUE(intact(self));
	EXPECT_EQ(-1, mprotect(self->map, len, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
}

/*
 * A child holds the mapping and waits.  The parent, root, writes at the
 * child's address through /proc/PID/mem (FOLL_FORCE) and
 * process_vm_writev(): nothing gets through.
 */
TEST_F(ro, other_process_cannot_write_through_proc_mem)
{
	unsigned char junk[64];
	struct iovec local = { .iov_base = junk, .iov_len = sizeof(junk) };
	struct iovec remote;
	int ready[2], go[2], mem;
	char path[64], c;
	uintptr_t at;
	ssize_t n;
	pid_t pid;

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The mapping was inherited: it is at the same address. */
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(EX_SETUP);
		_exit(intact(self) ? 0 : EX_WRITTEN);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	at = (uintptr_t)self->map + self->off;
	memset(junk, 0x5a, sizeof(junk));

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, mem) TH_LOG("%s: %s", path, strerror(errno));
	n = pwrite(mem, junk, sizeof(junk), (off_t)at);
	EXPECT_EQ(-1, n) TH_LOG("/proc/PID/mem wrote %zd bytes into the pool", n);
	n = pwrite(mem, junk, 1, (off_t)((uintptr_t)self->map + self->info.map_size - 1));
	EXPECT_EQ(-1, n);
	close(mem);

	remote.iov_base = (void *)at;
	remote.iov_len = sizeof(junk);
	n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EFAULT, errno);

	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_TRUE(intact(self));
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

/* A tracer's PTRACE_POKEDATA (FOLL_FORCE as well) cannot write either. */
TEST_F(ro, ptrace_pokedata_cannot_write)
{
	uintptr_t at = (uintptr_t)self->map + self->off;
	int status, ready[2];
	long word;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (write(ready[1], "r", 1) != 1)
			_exit(EX_SETUP);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, pid, NULL, NULL)) TH_LOG("seize: %s", strerror(errno));
	ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, pid, NULL, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSTOPPED(status));

	memset(&word, 0xa5, sizeof(word));
	errno = 0;
	EXPECT_EQ(-1, ptrace(PTRACE_POKEDATA, pid, (void *)at, (void *)word));
	EXPECT_NE(0, errno);
	errno = 0;
	EXPECT_EQ(-1, ptrace(PTRACE_POKEDATA, pid, (void *)(uintptr_t)self->map, (void *)word));
	EXPECT_NE(0, errno);

	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(intact(self));
	close(ready[0]);
	close(ready[1]);
}

/* A window is writable under its guard only, and never executable. */
TEST(window_never_executable_nor_writable_after_release)
{
	struct mmk_pool_info info;
	struct mmk_guard g;
	unsigned char *w;
	uint64_t tok;
	int fd;

	fd = mmk_create(NULL, 5000, 2, 0600, SEC_TYPE, MMK_POOL_PAGE_ALIGNED);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_info(fd, &info));
	ASSERT_EQ(0, mmk_store_seq(fd, "w", 1, 1, &tok));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, tok, &g));
	w = mmap(NULL, info.slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 MMK_WINDOW_OFFSET(g.offset));
	ASSERT_NE(MAP_FAILED, w);
	EXPECT_EQ(-1, mprotect(w, info.slot_size, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, poke(w + 100, 1));
	ASSERT_EQ(0, mmk_write_release(fd, tok));
	/* Released: the window has no pages, whatever its protection says. */
	EXPECT_EQ(SIGBUS, poke(w + 100, 2));
	EXPECT_EQ(0, mprotect(w, info.slot_size, PROT_READ));
	EXPECT_EQ(0, mprotect(w, info.slot_size, PROT_READ | PROT_WRITE));
	EXPECT_EQ(SIGBUS, poke(w + 100, 3));
	munmap(w, info.slot_size);
	close(fd);
}

/* ---------------------------------------------------------------------- */
/* What the kernel copies out                                              */
/* ---------------------------------------------------------------------- */

/* Bytes of a and b that differ, outside [skip_from, skip_to). */
static size_t diff_outside(const void *a, const void *b, size_t len, size_t skip_from,
			   size_t skip_to)
{
	const unsigned char *x = a, *y = b;
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if ((i < skip_from || i >= skip_to) && x[i] != y[i])
			n++;
	return n;
}

static bool all_bytes(const void *p, size_t len, unsigned char v)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != v)
			return false;
	return true;
}

#define TAIL	64

/* POOL_INFO into a bigger buffer of 0xff: everything past what it knows is zeroed. */
TEST(pool_info_zeroes_padding_and_unknown_tail)
{
	union {
		struct mmk_pool_info i;
		unsigned char raw[sizeof(struct mmk_pool_info) + TAIL];
	} u;
	char name[MMK_NAME_MAX];
	size_t len;
	int fd;

	pool_name(name, "info");
	fd = mmk_create(name, 64, 2, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, fd);
	memset(&u, 0xff, sizeof(u));
	ASSERT_EQ(0, mmk_ioctl(fd, _IOC(_IOC_READ, MMK_IOC_MAGIC, _IOC_NR(MMK_IOC_POOL_INFO),
					 sizeof(u)), &u));
	EXPECT_TRUE(all_bytes(u.raw + sizeof(u.i), TAIL, 0));
	EXPECT_EQ(0, u.i.__pad);
	EXPECT_EQ(0U, u.i.__pad2);
	EXPECT_EQ(0, u.i.memory_device);
	len = strlen(name);
	EXPECT_STREQ(name, u.i.name);
	EXPECT_TRUE(all_bytes(u.i.name + len, sizeof(u.i.name) - len, 0));
	close(fd);
}

/*
 * CREATE and ATTACH, with every byte that the caller may set to anything
 * set to 0xff (the out pool_id, the unused name bytes after the NUL, the
 * payload type): the kernel sets pool_id and changes nothing else.
 */
TEST(create_and_attach_write_only_pool_id)
{
	struct mmk_pool_create c, cwant;
	struct mmk_pool_attach a, awant;
	struct mmk_pool_info info;
	int fd, fd2;

	memset(&c, 0xff, sizeof(c));
	c.flags = 0;
	c.payload_size = 64;
	c.capacity = 2;
	c.mode = 0600;
	c.memory_class = MMK_MEM_HOST;
	c.__reserved = 0;
	c.memory_device = 0;
	c.__reserved2 = 0;
	snprintf(c.name, 24, "security-%d-c", getpid());
	cwant = c;
	fd = mmk_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_CREATE, &c));
	ASSERT_EQ(0, mmk_info(fd, &info));
	cwant.pool_id = info.pool_id;
	EXPECT_EQ(0, memcmp(&cwant, &c, sizeof(c)))
		TH_LOG("%zu bytes changed besides pool_id",
		       diff_outside(&cwant, &c, sizeof(c), 0, 0));
	EXPECT_EQ(~0ULL, info.payload_type);

	memset(&a, 0xff, sizeof(a));
	a.flags = 0;
	a.owner_uid = 0;
	a.__reserved2 = 0;
	memcpy(a.name, c.name, strlen(c.name) + 1);
	awant = a;
	fd2 = mmk_open();
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mmk_ioctl(fd2, MMK_IOC_ATTACH, &a));
	awant.pool_id = info.pool_id;
	EXPECT_EQ(0, memcmp(&awant, &a, sizeof(a)))
		TH_LOG("%zu bytes changed besides pool_id",
		       diff_outside(&awant, &a, sizeof(a), 0, 0));
	close(fd2);
	close(fd);
}

/* STORE and the guards: token, offset and payload_size set, nothing else. */
TEST(store_and_guards_write_only_their_results)
{
	static const unsigned long guards[] = {
		MMK_IOC_READ, MMK_IOC_PEEK_HEADER, MMK_IOC_READ_MUT,
	};
	unsigned char payload[100];
	struct mmk_msg_header h = { .sequence = 3 };
	struct mmk_store s, swant;
	struct mmk_guard g, gwant;
	unsigned int i;
	uint64_t offset = 0;
	int fd;

	fd = mmk_create(NULL, 128, 4, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, fd);
	fill_pattern(payload, sizeof(payload), 3);

	memset(&s, 0xff, sizeof(s));
	s.header = (uintptr_t)&h;
	s.payload = (uintptr_t)payload;
	s.payload_size = sizeof(payload);
	s.flags = 0;
	swant = s;
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_STORE, &s));
	EXPECT_NE(MMK_TOKEN_INVALID, s.token);
	EXPECT_EQ(0U, diff_outside(&swant, &s, sizeof(s), offsetof(struct mmk_store, token),
				   offsetof(struct mmk_store, token) + sizeof(s.token)));

	for (i = 0; i < ARRAY_SIZE(guards); i++) {
		memset(&g, 0xff, sizeof(g));
		g.token = s.token;
		g.flags = 0;
		g.__reserved = 0;
		g.timeout_ns = 0;
		g.__reserved2 = 0;
		gwant = g;
		ASSERT_EQ(0, mmk_ioctl(fd, guards[i], &g)) TH_LOG("guard %u", i);
		EXPECT_EQ(sizeof(payload), g.payload_size);
		if (i)
			EXPECT_EQ(offset, g.offset);
		offset = g.offset;
		gwant.offset = g.offset;
		gwant.payload_size = g.payload_size;
		EXPECT_EQ(0, memcmp(&gwant, &g, sizeof(g))) TH_LOG("guard %u", i);
		if (guards[i] == MMK_IOC_READ_MUT) {
			ASSERT_EQ(0, mmk_write_release(fd, s.token));
		} else {
			ASSERT_EQ(0, mmk_read_release(fd, s.token));
		}
	}
	close(fd);
}

/* A failing call writes nothing back: the caller's struct is as it was. */
TEST(failed_calls_write_nothing_back)
{
	unsigned char payload[64] = { 1 };
	struct mmk_msg_header h = { 0 };
	struct mmk_pool_create c, cwant;
	struct mmk_pool_attach a, awant;
	struct mmk_store s, swant;
	struct mmk_guard g, gwant;
	char name[MMK_NAME_MAX];
	uint64_t tok, freed;
	int fd, other;

	pool_name(name, "nowrite");
	fd = mmk_create(name, 64, 2, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, mmk_store_seq(fd, payload, 8, 1, &tok));
	ASSERT_EQ(0, mmk_store_seq(fd, payload, 8, 2, &freed));
	ASSERT_EQ(0, mmk_free_token(fd, freed));
	other = mmk_open();
	ASSERT_LE(0, other);

	/* CREATE: EEXIST, EINVAL; ATTACH: ENOENT, EPROTOTYPE. */
	memset(&c, 0xff, sizeof(c));
	c.flags = 0;
	c.payload_size = 64;
	c.capacity = 2;
	c.mode = 0600;
	c.memory_class = 0;
	c.__reserved = 0;
	c.memory_device = 0;
	c.__reserved2 = 0;
	snprintf(c.name, sizeof(c.name), "%s", name);
	cwant = c;
	EXPECT_EQ(-EEXIST, mmk_ioctl(other, MMK_IOC_CREATE, &c));
	EXPECT_EQ(0, memcmp(&cwant, &c, sizeof(c)));
	c.capacity = 0;
	cwant = c;
	EXPECT_EQ(-EINVAL, mmk_ioctl(other, MMK_IOC_CREATE, &c));
	EXPECT_EQ(0, memcmp(&cwant, &c, sizeof(c)));

	memset(&a, 0xff, sizeof(a));
	a.flags = 0;
	a.owner_uid = 0;
	a.__reserved2 = 0;
	a.payload_type = SEC_TYPE + 1;
	snprintf(a.name, sizeof(a.name), "%s", name);
	awant = a;
	EXPECT_EQ(-EPROTOTYPE, mmk_ioctl(other, MMK_IOC_ATTACH, &a));
	EXPECT_EQ(0, memcmp(&awant, &a, sizeof(a)));
	pool_name(a.name, "nowrite-none");
	a.payload_type = SEC_TYPE;
	awant = a;
	EXPECT_EQ(-ENOENT, mmk_ioctl(other, MMK_IOC_ATTACH, &a));
	EXPECT_EQ(0, memcmp(&awant, &a, sizeof(a)));

	/* STORE: EMSGSIZE, EINVAL (header), ENOSPC. */
	memset(&s, 0xff, sizeof(s));
	s.header = (uintptr_t)&h;
	s.payload = (uintptr_t)payload;
	s.payload_size = 65;
	s.flags = 0;
	swant = s;
	EXPECT_EQ(-EMSGSIZE, mmk_ioctl(fd, MMK_IOC_STORE, &s));
	EXPECT_EQ(0, memcmp(&swant, &s, sizeof(s)));
	s.payload_size = 8;
	h.__reserved0 = 1;
	swant = s;
	EXPECT_EQ(-EINVAL, mmk_ioctl(fd, MMK_IOC_STORE, &s));
	EXPECT_EQ(0, memcmp(&swant, &s, sizeof(s)));
	h.__reserved0 = 0;
	ASSERT_EQ(0, mmk_store_seq(fd, payload, 8, 3, &freed));
	memset(&s.token, 0xff, sizeof(s.token));
	swant = s;
	EXPECT_EQ(-ENOSPC, mmk_ioctl(fd, MMK_IOC_STORE, &s));
	EXPECT_EQ(0, memcmp(&swant, &s, sizeof(s)));

	/* Guards: EBADSLT, ENODATA, EBUSY. */
	memset(&g, 0xff, sizeof(g));
	g.flags = 0;
	g.__reserved = 0;
	g.timeout_ns = 0;
	g.__reserved2 = 0;
	g.token = MMK_TOKEN_INVALID;
	gwant = g;
	EXPECT_EQ(-EBADSLT, mmk_ioctl(fd, MMK_IOC_READ, &g));
	EXPECT_EQ(0, memcmp(&gwant, &g, sizeof(g)));
	g.token = tok + (1ULL << 20);	/* another generation */
	gwant = g;
	EXPECT_EQ(-EBADSLT, mmk_ioctl(fd, MMK_IOC_READ, &g));
	EXPECT_EQ(0, memcmp(&gwant, &g, sizeof(g)));
	ASSERT_EQ(0, mmk_free_token(fd, freed));
	g.token = freed;
	gwant = g;
	EXPECT_EQ(-ENODATA, mmk_ioctl(fd, MMK_IOC_PEEK_HEADER, &g));
	EXPECT_EQ(0, memcmp(&gwant, &g, sizeof(g)));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, tok, &gwant));
	memset(&g, 0xff, sizeof(g));
	g.flags = 0;
	g.__reserved = 0;
	g.timeout_ns = 0;
	g.__reserved2 = 0;
	g.token = tok;
	gwant = g;
	EXPECT_EQ(-EBUSY, mmk_ioctl(fd, MMK_IOC_READ_MUT, &g));
	EXPECT_EQ(0, memcmp(&gwant, &g, sizeof(g)));
	ASSERT_EQ(0, mmk_read_release(fd, tok));
	close(other);
	close(fd);
}

/*
 * The header in the mapping holds what the caller gave and what the
 * kernel owns, nothing else: kernel-owned fields given as 0xff are
 * overwritten, and qos 0 becomes the default.  Same for a commit.
 */
TEST(message_header_holds_only_normalised_fields)
{
	unsigned char payload[40];
	struct mmk_msg_header h, want;
	struct mmk_store s = { 0 };
	struct mmk_release r = { 0 };
	struct mmk_guard g;
	size_t len;
	void *map;
	int fd;

	fd = mmk_create(NULL, 128, 2, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, fd);
	map = mmk_map(fd, &len);
	ASSERT_NE(MAP_FAILED, map);
	fill_pattern(payload, sizeof(payload), 9);

	memset(&h, 0, sizeof(h));
	h.trace_id = ~0ULL;
	h.sequence = 0x0102030405060708ULL;
	h.created_tick = ~0ULL;
	h.deadline_ns = ~0ULL;
	h.flags = MMK_MSG_FLAGS_ALL;
	h.qos = 0;
	h.payload_size = ~0U;
	h.memory_class = 0xff;
	h.memory_device = 0xffff;
	want = h;
	want.payload_size = sizeof(payload);
	want.memory_class = MMK_MEM_HOST;
	want.memory_device = 0;
	want.qos = MMK_QOS_BEST_EFFORT;

	s.header = (uintptr_t)&h;
	s.payload = (uintptr_t)payload;
	s.payload_size = sizeof(payload);
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_STORE, &s));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ_MUT, s.token, &g));
	EXPECT_EQ(0, memcmp(&want, mmk_at(map, g.offset), sizeof(want)));

	h.trace_id = 1;
	h.flags = 0;
	h.deadline_ns = 0;
	h.qos = MMK_QOS_LATENCY_CRITICAL;
	want = h;
	want.payload_size = 10;
	want.memory_class = MMK_MEM_HOST;
	want.memory_device = 0;
	r.token = s.token;
	r.flags = MMK_RELEASE_COMMIT;
	r.payload_size = 10;
	r.header = (uintptr_t)&h;
	r.payload = (uintptr_t)payload;
	ASSERT_EQ(0, mmk_ioctl(fd, MMK_IOC_WRITE_RELEASE, &r));
	ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_PEEK_HEADER, s.token, &g));
	EXPECT_EQ(0, memcmp(&want, mmk_at(map, g.offset), sizeof(want)));
	EXPECT_EQ(10U, g.payload_size);
	ASSERT_EQ(0, mmk_read_release(fd, s.token));
	munmap(map, len);
	close(fd);
}

/* ---------------------------------------------------------------------- */
/* Caps against a process that loops                                       */
/* ---------------------------------------------------------------------- */

FIXTURE(caps) {
	uint64_t pools, bytes;
	struct mmk_params saved;
};

FIXTURE_SETUP(caps)
{
	self->pools = read_u64(_metadata, POOLS_FILE);
	self->bytes = read_u64(_metadata, BYTES_FILE);
}

FIXTURE_TEARDOWN(caps)
{
	if (mmk_params_restore(&self->saved))
		TH_LOG("could not restore the module parameters");
}

static void set_param(struct __test_metadata *_metadata, FIXTURE_DATA(caps) *self,
		      const char *name, uint64_t value)
{
	ASSERT_EQ(0, mmk_param_set(&self->saved, name, value)) TH_LOG("%s", name);
}

/* What a looping child reports through a pipe. */
struct loop_result {
	int err;		/* errno of the call that stopped the loop */
	unsigned int done;	/* calls that worked before it */
	uint64_t bytes;		/* the module's byte count at that moment */
	uint64_t pools;
};

static int read_loop_result(int fd, struct loop_result *r)
{
	return read(fd, r, sizeof(*r)) == sizeof(*r) ? 0 : -1;
}

static uint64_t sysfs_u64(const char *path)
{
	char buf[64];

	return read_str(path, buf, sizeof(buf)) ? ~0ULL : strtoull(buf, NULL, 0);
}

/*
 * As nobody, create pools of payload x capacity, each on its own session,
 * keeping them all, until a create fails (or max calls).  Report through
 * res, then hold everything until the parent closes ctl.
 */
static void create_loop_child(int res, int ctl, uint32_t payload, uint32_t capacity,
			      unsigned int max)
{
	struct loop_result r = { 0 };
	struct rlimit rl;
	char c;
	int fd;

	if (become_nobody())
		_exit(EX_CREDS);
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < max + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (r.done = 0; r.done < max; r.done++) {
		fd = mmk_create(NULL, payload, capacity, 0600, SEC_TYPE, 0);
		if (fd < 0) {
			r.err = -fd;
			break;
		}
	}
	r.bytes = sysfs_u64(BYTES_FILE);
	r.pools = sysfs_u64(POOLS_FILE);
	if (write(res, &r, sizeof(r)) != sizeof(r))
		_exit(EX_SETUP);
	while (read(ctl, &c, 1) > 0)
		;
	_exit(0);
}

/* Run create_loop_child; the counters once it exited are checked too. */
static void create_loop(struct __test_metadata *_metadata, FIXTURE_DATA(caps) *self,
			uint32_t payload, uint32_t capacity, unsigned int max,
			struct loop_result *r)
{
	int res[2], ctl[2];
	pid_t pid;

	ASSERT_EQ(0, pipe2(res, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(ctl, O_CLOEXEC));
	pid = start_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(res[0]);
		close(ctl[1]);
		create_loop_child(res[1], ctl[0], payload, capacity, max);
	}
	close(res[1]);
	close(ctl[0]);
	ASSERT_EQ(0, read_loop_result(res[0], r));
	close(res[0]);
	close(ctl[1]);
	EXPECT_EQ(0, wait_child(pid));
	/* Everything the loop made went with it. */
	EXPECT_EQ(self->pools, read_u64(_metadata, POOLS_FILE));
	EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE));
}

/*
 * What one pool of this shape and its creator's session count against
 * the caps (charged_bytes), and what the pool alone counts against
 * max_pool_bytes (pool_bytes, if @pool_bytes), learnt by creating one.
 */
static uint64_t pool_charge(struct __test_metadata *_metadata, uint32_t payload,
			    uint32_t capacity, uint64_t *pool_bytes)
{
	struct mmk_pool_info info;
	int fd;

	fd = mmk_create(NULL, payload, capacity, 0600, SEC_TYPE, 0);
	if (fd < 0 || mmk_info(fd, &info)) {
		TH_LOG("create %u x %u: %s", payload, capacity, strerror(-fd));
		return ~0ULL;
	}
	close(fd);
	if (pool_bytes)
		*pool_bytes = info.pool_bytes;
	return info.charged_bytes;
}

/* A pool over max_pool_bytes is EINVAL before anything is allocated. */
TEST_F_TIMEOUT(caps, per_pool_cap_stops_create_loop, 120)
{
	uint64_t max = mmk_param_u64("max_pool_bytes"), eight;
	uint32_t payload = 4096 - 64;
	struct loop_result r;

	/* One slot more than fits (at most max_capacity, at least 2). */
	ASSERT_GE(mmk_param_u64("max_capacity"), max / 4096 + 1)
		TH_LOG("max_capacity too small to go over max_pool_bytes");
	create_loop(_metadata, self, payload, max / 4096 + 1, 1000, &r);
	EXPECT_EQ(EINVAL, r.err);
	EXPECT_EQ(0U, r.done);
	EXPECT_EQ(self->bytes, r.bytes);

	/* Lowered to what 8 slots count: those are made, 9 are refused. */
	pool_charge(_metadata, payload, 8, &eight);
	set_param(_metadata, self, "max_pool_bytes", eight);
	create_loop(_metadata, self, payload, 8, 3, &r);
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(3U, r.done);
	create_loop(_metadata, self, payload, 9, 1000, &r);
	EXPECT_EQ(EINVAL, r.err);
	EXPECT_EQ(0U, r.done);
}

/* max_total_bytes stops the loop with EDQUOT, exactly at the cap. */
TEST_F_TIMEOUT(caps, total_bytes_cap_stops_create_loop, 120)
{
	uint64_t one = pool_charge(_metadata, 4096 - 64, 4, NULL);
	struct loop_result r;

	set_param(_metadata, self, "max_total_bytes", self->bytes + 5 * one - 1);
	create_loop(_metadata, self, 4096 - 64, 4, 1000, &r);
	EXPECT_EQ(EDQUOT, r.err);
	EXPECT_EQ(4U, r.done);
	EXPECT_EQ(self->bytes + 4 * one, r.bytes);
	EXPECT_EQ(self->pools + 4, r.pools);
}

/* max_pools stops the loop with EDQUOT, exactly at the cap. */
TEST_F_TIMEOUT(caps, pool_count_cap_stops_create_loop, 120)
{
	struct loop_result r;

	set_param(_metadata, self, "max_pools", self->pools + 10);
	create_loop(_metadata, self, 16, 1, 1000, &r);
	EXPECT_EQ(EDQUOT, r.err);
	EXPECT_EQ(10U, r.done);
	EXPECT_EQ(self->pools + 10, r.pools);
}

/*
 * With the module's own limits (whatever they are set to now), an
 * unprivileged loop is stopped by max_pools, and a loop of the largest
 * pools by max_total_bytes.
 */
TEST_F_TIMEOUT(caps, module_limits_stop_create_loops, 300)
{
	uint64_t max_pools = mmk_param_u64("max_pools");
	uint64_t max_total = mmk_param_u64("max_total_bytes");
	uint64_t max_pool = mmk_param_u64("max_pool_bytes");
	/* Page slots, room left for their metadata under max_pool_bytes. */
	uint32_t cap = max_pool / 4096 - max_pool / 4096 / 16;
	uint64_t big, fit;
	struct loop_result r;

	if (max_pools > 4000)
		SKIP(return, "max_pools %llu: too many files for one process",
		     (unsigned long long)max_pools);
	create_loop(_metadata, self, 16, 1, max_pools + 10, &r);
	EXPECT_EQ(EDQUOT, r.err);
	EXPECT_EQ(max_pools - self->pools, r.done);
	EXPECT_EQ(max_pools, r.pools);

	/* The largest pools, payload a page: as many as max_total_bytes holds. */
	ASSERT_LE(self->bytes, max_total);
	if (max_total / max_pool > 8 || cap > mmk_param_u64("max_capacity"))
		SKIP(return, "limits too large to exhaust here");
	big = pool_charge(_metadata, 4096 - 64, cap, NULL);
	fit = (max_total - self->bytes) / big;
	create_loop(_metadata, self, 4096 - 64, cap, 1000, &r);
	EXPECT_EQ(EDQUOT, r.err);
	EXPECT_EQ(fit, r.done);
	EXPECT_EQ(self->bytes + fit * big, r.bytes);
}

/*
 * A session takes guards in a loop: it stops at max_guards_per_session
 * with EDQUOT, for every kind of guard, and closing the session (here:
 * the process exiting or being killed) drops them all.
 */
static void guard_loop_child(int res, const char *name, const uint64_t *tok,
			     unsigned int nmsg, bool hang)
{
	struct loop_result r = { 0 };
	struct mmk_guard g;
	int fd, ret;

	if (become_nobody())
		_exit(EX_CREDS);
	fd = mmk_attach(name, SEC_TYPE);
	if (fd < 0)
		_exit(EX_SETUP);
	for (r.done = 0; r.done < 1000000; r.done++) {
		ret = mmk_guard(fd, MMK_IOC_READ, tok[r.done % nmsg], &g);
		if (ret) {
			r.err = -ret;
			break;
		}
	}
	/* At the cap, every kind of guard is refused. */
	if (mmk_guard(fd, MMK_IOC_PEEK_HEADER, tok[0], &g) != -EDQUOT ||
	    mmk_guard(fd, MMK_IOC_READ_MUT, tok[nmsg - 1], &g) != -EBUSY)
		r.err = EX_CHECK;
	if (write(res, &r, sizeof(r)) != sizeof(r))
		_exit(EX_SETUP);
	if (hang) {
		for (;;)
			pause();
	}
	_exit(0);
}

TEST_F_TIMEOUT(caps, guard_cap_stops_guard_loop, 120)
{
	uint64_t max = mmk_param_u64("max_guards_per_session");
	uint64_t per_slot = mmk_param_u64("max_readers_per_slot");
	unsigned char payload[8] = { 0 };
	struct mmk_pool_info info;
	struct loop_result r;
	char name[MMK_NAME_MAX];
	unsigned int i, nmsg, round;
	uint64_t tok[16];
	int fd, res[2];
	pid_t pid;

	if (max > 100000)
		SKIP(return, "max_guards_per_session %llu is too large to loop to",
		     (unsigned long long)max);
	/* Enough messages that the per-slot cap is not what stops the loop. */
	nmsg = max / per_slot + 2;
	ASSERT_GE(16U, nmsg) TH_LOG("max_readers_per_slot too small for this test");
	pool_name(name, "guards");
	fd = mmk_create(name, 8, nmsg, 0606, SEC_TYPE, 0);
	ASSERT_LE(0, fd);
	for (i = 0; i < nmsg; i++) {
		ASSERT_EQ(0, mmk_store_seq(fd, payload, 8, i, &tok[i]));
	}

	/* Once exiting, once killed with everything held. */
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, pipe2(res, O_CLOEXEC));
		pid = start_child();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			close(res[0]);
			guard_loop_child(res[1], name, tok, nmsg, round == 1);
		}
		close(res[1]);
		ASSERT_EQ(0, read_loop_result(res[0], &r));
		close(res[0]);
		EXPECT_EQ(EDQUOT, r.err) TH_LOG("round %u", round);
		EXPECT_EQ(max, r.done);
		if (round == 1) {
			ASSERT_EQ(0, mmk_info(fd, &info));
			EXPECT_EQ(max, info.read_guards);
			EXPECT_EQ(2U, info.sessions);
			kill(pid, SIGKILL);
			EXPECT_EQ(128 + SIGKILL, wait_child(pid));
		} else {
			EXPECT_EQ(0, wait_child(pid));
		}
		ASSERT_EQ(0, mmk_info(fd, &info));
		EXPECT_EQ(0U, info.read_guards) TH_LOG("round %u", round);
		EXPECT_EQ(0U, info.write_guards);
		EXPECT_EQ(1U, info.sessions);
	}
	/* Nothing is held any more: every message can be freed. */
	for (i = 0; i < nmsg; i++) {
		EXPECT_EQ(0, mmk_free_token(fd, tok[i]));
	}
	close(fd);
}

/*
 * max_readers_per_slot counts the shared guards of every session on a
 * slot, max_guards_per_session those of one session on every slot.
 */
TEST_F_TIMEOUT(caps, reader_caps_per_slot_and_per_session, 120)
{
	struct mmk_pool_info info;
	char name[MMK_NAME_MAX];
	struct mmk_guard g;
	unsigned int i;
	uint64_t a, b;
	int fd, fd2;

	set_param(_metadata, self, "max_readers_per_slot", 40);
	set_param(_metadata, self, "max_guards_per_session", 30);
	pool_name(name, "readers");
	fd = mmk_create(name, 8, 2, 0600, SEC_TYPE, 0);
	ASSERT_LE(0, fd);
	fd2 = mmk_attach(name, SEC_TYPE);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, mmk_store_seq(fd, "a", 1, 1, &a));
	ASSERT_EQ(0, mmk_store_seq(fd, "b", 1, 2, &b));

	for (i = 0; i < 30; i++) {
		ASSERT_EQ(0, mmk_guard(fd, MMK_IOC_READ, a, &g));
	}
	EXPECT_EQ(-EDQUOT, mmk_guard(fd, MMK_IOC_READ, a, &g));
	EXPECT_EQ(-EDQUOT, mmk_guard(fd, MMK_IOC_PEEK_HEADER, b, &g));
	/* The other session may add 10 more on a, then the slot is full. */
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(0, mmk_guard(fd2, MMK_IOC_READ, a, &g));
	}
	EXPECT_EQ(-EDQUOT, mmk_guard(fd2, MMK_IOC_PEEK_HEADER, a, &g));
	EXPECT_EQ(0, mmk_guard(fd2, MMK_IOC_READ, b, &g));
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(41U, info.read_guards);

	/* Closing a session drops exactly its guards. */
	close(fd2);
	ASSERT_EQ(0, mmk_info(fd, &info));
	EXPECT_EQ(30U, info.read_guards);
	EXPECT_EQ(1U, info.sessions);
	close(fd);
	EXPECT_EQ(self->pools, read_u64(_metadata, POOLS_FILE));
	EXPECT_EQ(self->bytes, read_u64(_metadata, BYTES_FILE));
}

TEST_HARNESS_MAIN
