/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Child processes for the mmk selftests: start one, wait for it, check
 * inside it, talk to it one byte at a time; and the seeded random numbers
 * that the randomised tests share.
 */
#ifndef MMK_CHILD_H
#define MMK_CHILD_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/capability.h>

/* A failed check in a child: say where, and exit non-zero. */
#define CHILD_ASSERT(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "# child %d: %s:%d: failed: %s (errno %d)\n",	\
			getpid(), __FILE__, __LINE__, #cond, errno);		\
		_exit(1);							\
	}									\
} while (0)

#define CHILD_EQ(expected, actual) do {						\
	long long __exp = (long long)(expected);				\
	long long __act = (long long)(actual);					\
	if (__exp != __act) {							\
		fprintf(stderr, "# child %d: %s:%d: %s is %lld, expected %lld\n", \
			getpid(), __FILE__, __LINE__, #actual, __act, __exp);	\
		_exit(1);							\
	}									\
} while (0)

/*
 * Remove one capability from this process's effective, permitted and
 * inheritable sets.  0, or -1 with errno set.
 */
static inline int mmk_drop_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[CAP_TO_INDEX(cap)].effective &= ~CAP_TO_MASK(cap);
	data[CAP_TO_INDEX(cap)].permitted &= ~CAP_TO_MASK(cap);
	data[CAP_TO_INDEX(cap)].inheritable &= ~CAP_TO_MASK(cap);
	return syscall(SYS_capset, &hdr, data) ? -1 : 0;
}

/* fork(), with the child killed if the test process dies first. */
static inline pid_t start_child(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

/* Zeroed memory shared with the children forked after it; MAP_FAILED on error. */
static inline void *shared_zeroed(size_t size)
{
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

/* Exit status of a child, 128 + signal if it was killed, -1 on error. */
static inline int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

static inline int put_byte(int fd, char c)
{
	return write(fd, &c, 1) == 1 ? 0 : -1;
}

/* The byte read, or -1 at end of file or on error. */
static inline int get_byte(int fd)
{
	unsigned char c;
	ssize_t n;

	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	return n == 1 ? c : -1;
}

static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint32_t rnd(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(splitmix64(s) % n) : 0;
}

/* MMK_SEED if set (to replay a run), else one from the clock. */
static inline uint64_t seed_from_env(void)
{
	const char *e = getenv("MMK_SEED");
	struct timespec ts;

	if (e && *e)
		return strtoull(e, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
}

/* One byte and room for one descriptor: what send_fd() and recv_fd() exchange. */
struct fd_msg {
	char byte;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh;
};

static inline void fd_msg_init(struct fd_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->byte = 'F';
	m->iov.iov_base = &m->byte;
	m->iov.iov_len = 1;
	m->mh.msg_iov = &m->iov;
	m->mh.msg_iovlen = 1;
	m->mh.msg_control = m->cbuf;
	m->mh.msg_controllen = sizeof(m->cbuf);
}

/* Send fd over a unix socket (SCM_RIGHTS) with one byte.  0 or -1. */
static inline int send_fd(int sock, int fd)
{
	struct fd_msg m;
	struct cmsghdr *cm;

	fd_msg_init(&m);
	cm = CMSG_FIRSTHDR(&m.mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	return sendmsg(sock, &m.mh, 0) == 1 ? 0 : -1;
}

/* Receive an fd sent by send_fd() (close-on-exec).  The fd, or -1. */
static inline int recv_fd(int sock)
{
	struct fd_msg m;
	struct cmsghdr *cm;
	int fd;

	fd_msg_init(&m);
	if (recvmsg(sock, &m.mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&m.mh);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

#endif /* MMK_CHILD_H */
