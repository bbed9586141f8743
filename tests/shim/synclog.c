/*
 * synclog.c - an LD_PRELOAD shim for tests only: it records, in the order
 * they happen and with the thread that made them, the calls that decide
 * durability in a receiver: syncfs/fsync/fdatasync, writes to a package's
 * journal, and sends on sockets. tests/e2e/test_durability.sh reads the
 * log and asserts the order "data durable, then journal record made
 * durable, then ACK". The product knows nothing of it.
 *
 * SYNCLOG=FILE names the log (nothing is recorded without it). A line:
 *   TID SYNCFS FD | FSYNC FD | FDATASYNC FD      (J before the name when FD
 *                                                 is a journal)
 *   TID JWRITE FD OFFSET LEN                      a write to a journal
 *   TID SEND FD LEN                               a send on a socket
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536
static unsigned char is_journal[MAX_FD];
static int log_fd = -2; /* -2: not opened yet, -1: off */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *real(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void record(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	pthread_mutex_lock(&lock);
	if (log_fd == -2) {
		const char *path = getenv("SYNCLOG");
		log_fd = path ? (int)syscall(SYS_openat, AT_FDCWD, path,
					     O_WRONLY | O_CREAT | O_APPEND |
						     O_CLOEXEC,
					     0644)
			      : -1;
		if (log_fd < 0)
			log_fd = -1;
	}
	if (log_fd >= 0) {
		n = snprintf(line, sizeof(line), "%ld ", (long)syscall(SYS_gettid));
		va_start(ap, fmt);
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		if (n < (int)sizeof(line) - 1) {
			line[n++] = '\n';
			if (syscall(SYS_write, log_fd, line, (size_t)n) < 0)
				log_fd = -1;
		}
	}
	pthread_mutex_unlock(&lock);
}

static bool journal_fd(int fd)
{
	return fd >= 0 && fd < MAX_FD && is_journal[fd];
}

static bool socket_fd(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void opened(int fd, const char *path)
{
	if (fd < 0 || fd >= MAX_FD)
		return;
	const char *base = strrchr(path, '/');
	is_journal[fd] = !strcmp(base ? base + 1 : path, "journal");
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	static int (*f)(const char *, int, ...);
	va_list ap;

	if (!f)
		f = real("open");
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = f(path, flags, mode);
	opened(fd, path);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	static int (*f)(const char *, int, ...);
	va_list ap;

	if (!f)
		f = real("open64");
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = f(path, flags, mode);
	opened(fd, path);
	return fd;
}

int openat(int dir, const char *path, int flags, ...)
{
	static int (*f)(int, const char *, int, ...);
	va_list ap;

	if (!f)
		f = real("openat");
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = f(dir, path, flags, mode);
	opened(fd, path);
	return fd;
}

int openat64(int dir, const char *path, int flags, ...)
{
	static int (*f)(int, const char *, int, ...);
	va_list ap;

	if (!f)
		f = real("openat64");
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = f(dir, path, flags, mode);
	opened(fd, path);
	return fd;
}

int close(int fd)
{
	static int (*f)(int);

	if (!f)
		f = real("close");
	if (fd >= 0 && fd < MAX_FD)
		is_journal[fd] = 0;
	return f(fd);
}

int syncfs(int fd)
{
	static int (*f)(int);

	if (!f)
		f = real("syncfs");
	int rc = f(fd);
	if (rc == 0)
		record("SYNCFS %d", fd);
	return rc;
}

int fsync(int fd)
{
	static int (*f)(int);

	if (!f)
		f = real("fsync");
	int rc = f(fd);
	if (rc == 0)
		record("%sFSYNC %d", journal_fd(fd) ? "J" : "", fd);
	return rc;
}

int fdatasync(int fd)
{
	static int (*f)(int);

	if (!f)
		f = real("fdatasync");
	int rc = f(fd);
	if (rc == 0)
		record("%sFDATASYNC %d", journal_fd(fd) ? "J" : "", fd);
	return rc;
}

static void wrote(int fd, long long off, ssize_t n)
{
	if (n <= 0)
		return;
	if (journal_fd(fd))
		record("JWRITE %d %lld %zd", fd, off, n);
	else if (socket_fd(fd))
		record("SEND %d %zd", fd, n);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	static ssize_t (*f)(int, const void *, size_t, off_t);

	if (!f)
		f = real("pwrite");
	ssize_t n = f(fd, buf, len, off);
	wrote(fd, (long long)off, n);
	return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	static ssize_t (*f)(int, const void *, size_t, off_t);

	if (!f)
		f = real("pwrite64");
	ssize_t n = f(fd, buf, len, off);
	wrote(fd, (long long)off, n);
	return n;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	static ssize_t (*f)(int, const void *, size_t);

	if (!f)
		f = real("write");
	ssize_t n = f(fd, buf, len);
	wrote(fd, -1, n);
	return n;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	static ssize_t (*f)(int, const struct iovec *, int);

	if (!f)
		f = real("writev");
	ssize_t n = f(fd, iov, cnt);
	wrote(fd, -1, n);
	return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*f)(int, const void *, size_t, int);

	if (!f)
		f = real("send");
	ssize_t n = f(fd, buf, len, flags);
	if (n > 0)
		record("SEND %d %zd", fd, n);
	return n;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
	       const struct sockaddr *to, socklen_t tolen)
{
	static ssize_t (*f)(int, const void *, size_t, int,
			    const struct sockaddr *, socklen_t);

	if (!f)
		f = real("sendto");
	ssize_t n = f(fd, buf, len, flags, to, tolen);
	if (n > 0)
		record("SEND %d %zd", fd, n);
	return n;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*f)(int, const struct msghdr *, int);

	if (!f)
		f = real("sendmsg");
	ssize_t n = f(fd, msg, flags);
	if (n > 0)
		record("SEND %d %zd", fd, n);
	return n;
}
