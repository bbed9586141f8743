/*
 * io_ring.c - the ring against real files and sockets. Every data-path
 * test runs twice: with registered buffers and with FERRY_NO_REGISTER=1,
 * the plain path an unprivileged user gets. Criterion runs each test in
 * its own process, so setenv here does not leak into other tests.
 *
 * A kernel without io_uring (or with it disabled) skips, never passes.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fr_io.h"

#define WAIT_LIMIT_NS (20LL * 1000000000)

static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static bool io_uring_missing(int ret)
{
	return ret == -ENOSYS || ret == -EPERM;
}

static struct fr_ring *ring_or_skip(unsigned entries)
{
	struct fr_ring *r = NULL;
	int ret = fr_ring_new(&r, entries);

	if (io_uring_missing(ret))
		cr_skip_test(
		    "io_uring unavailable here (%s): ring tests skipped",
		    strerror(-ret));
	cr_assert_eq(ret, 0, "fr_ring_new: %s", strerror(-ret));
	return r;
}

static struct fr_pool *pool_new(unsigned count, size_t size)
{
	struct fr_pool *p = NULL;
	int ret = fr_pool_new(&p, count, size);

	cr_assert_eq(ret, 0, "fr_pool_new: %s", strerror(-ret));
	return p;
}

/* Attach in the requested mode and check the ring says what it did. */
static void attach(struct fr_ring *r, struct fr_pool *p, bool noreg)
{
	int ret;

#ifndef FERRY_TEST_HOOKS
	if (noreg)
		cr_skip_test("the plain-buffer path is forced by FERRY_NO_REGISTER, "
			     "which only a test build (FERRY_TEST_HOOKS) obeys");
#endif
	if (noreg)
		setenv("FERRY_NO_REGISTER", "1", 1);
	else
		unsetenv("FERRY_NO_REGISTER");
	ret = fr_ring_attach_pool(r, p);
	cr_assert(ret == 0 || ret == 1, "attach: %d (%s)", ret,
		  ret < 0 ? strerror(-ret) : "");
	cr_assert_eq(fr_ring_registered(r), ret == 1);
	if (noreg)
		cr_assert_eq(ret, 0, "FERRY_NO_REGISTER=1 must not register");
	else if (geteuid() == 0)
		/* root has CAP_IPC_LOCK: a refusal here would be a bug */
		cr_assert_eq(ret, 1, "registration refused for root");
	cr_log_info("%s path", ret == 1 ? "registered" : "plain");
}

/* Completions seen but not yet claimed by the test. */
struct backlog {
	struct fr_cqe c[256];
	unsigned n;
};

/* The completion for ud (a NOTIF one when notif), waiting as needed. */
static struct fr_cqe take(struct fr_ring *r, struct backlog *b, uint64_t ud,
			  bool notif)
{
	int64_t end = now_ns() + WAIT_LIMIT_NS;

	for (;;) {
		unsigned i;
		int ret;

		for (i = 0; i < b->n; i++) {
			struct fr_cqe c = b->c[i];

			if (c.ud == ud && !!(c.flags & FR_CQE_NOTIF) == notif) {
				b->c[i] = b->c[--b->n];
				return c;
			}
		}
		cr_assert(now_ns() < end, "no completion for ud %llu%s",
			  (unsigned long long)ud, notif ? " (notif)" : "");
		cr_assert(b->n < 256, "completion backlog overflow");
		ret = fr_ring_wait(r, b->c + b->n, 256 - b->n, 500);
		cr_assert_geq(ret, 0, "fr_ring_wait: %s", strerror(-ret));
		b->n += (unsigned)ret;
	}
}

static int32_t take_res(struct fr_ring *r, struct backlog *b, uint64_t ud)
{
	return take(r, b, ud, false).res;
}

static int temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/ferry-io-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp %s: %s", path, strerror(errno));
	unlink(path);
	return fd;
}

static void fill(void *buf, size_t len, unsigned seed)
{
	unsigned char *b = buf;
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
}

static bool all_zero(const unsigned char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- ring basics --------------------------------------------------------- */

Test(io_ring, new_free_and_attach_once)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_pool *p = pool_new(2, 4096);

	cr_assert_eq(fr_ring_registered(r), false);
	unsetenv("FERRY_NO_REGISTER");
	cr_assert_geq(fr_ring_attach_pool(r, p), 0);
	cr_assert_eq(fr_ring_attach_pool(r, p), -EBUSY, "one pool per ring");
	cr_log_info("SEND_ZC %ssupported",
		    fr_ring_has_send_zc(r) ? "" : "not ");
	fr_ring_free(r);
	fr_ring_free(NULL);
	fr_pool_free(p);
}

#ifdef FERRY_TEST_HOOKS
/* a test build obeys FERRY_NO_REGISTER=1 only, and refuses another value */
Test(io_ring, env_other_than_1_is_refused, .exit_code = 2)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_pool *p = pool_new(2, 4096);

	setenv("FERRY_NO_REGISTER", "0", 1);
	fr_ring_attach_pool(r, p);
	cr_assert_fail("FERRY_NO_REGISTER=0 was taken");
}
#else
/* a product build ignores the test switch */
Test(io_ring, env_ignored_in_a_product_build)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_pool *p = pool_new(2, 4096);
	int ret;

	setenv("FERRY_NO_REGISTER", "1", 1);
	ret = fr_ring_attach_pool(r, p);
	cr_assert(ret == 0 || ret == 1);
	if (geteuid() == 0)
		cr_assert_eq(ret, 1);
	fr_ring_free(r);
	fr_pool_free(p);
}
#endif

Test(io_ring, wait_zero_with_nothing_pending)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_cqe c[4];
	int64_t t0 = now_ns();

	cr_assert_eq(fr_ring_wait(r, c, 4, 0), 0);
	cr_assert_lt(now_ns() - t0, 1000000000LL, "timeout 0 must not block");
	cr_assert_eq(fr_ring_submit(r), 0);
	fr_ring_free(r);
}

Test(io_ring, wait_times_out_with_zero)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_cqe c[4];
	int64_t t0 = now_ns(), dt;

	cr_assert_eq(fr_ring_wait(r, c, 4, 80), 0);
	dt = now_ns() - t0;
	cr_assert_geq(dt, 75000000LL, "returned after %lld ns", (long long)dt);
	cr_assert_lt(dt, 5000000000LL);
	fr_ring_free(r);
}

Test(io_ring, timeout_completes_with_etime)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_cqe c;
	int64_t t0 = now_ns(), dt;

	cr_assert_eq(fr_ring_timeout(r, 50, 42), 0);
	cr_assert_eq(fr_ring_wait(r, &c, 1, -1), 1);
	dt = now_ns() - t0;
	cr_assert_eq(c.ud, 42);
	cr_assert_eq(c.res, -ETIME);
	cr_assert_eq(c.flags, 0);
	cr_assert_geq(dt, 45000000LL, "fired after %lld ns", (long long)dt);
	fr_ring_free(r);
}

/* The watch a receiving session keeps on its socket: nothing while the
 * peer is there and data waits unread, POLLRDHUP once the peer closed,
 * unread bytes or not. */
Test(io_ring, poll_sees_the_peer_close)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_cqe c;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(fr_ring_poll(r, sv[0], POLLRDHUP, 7), 0);
	cr_assert_eq(write(sv[1], "abc", 3), 3);
	cr_assert_eq(fr_ring_wait(r, &c, 1, 100), 0, "fired with the peer there");
	close(sv[1]);
	cr_assert_eq(fr_ring_wait(r, &c, 1, 5000), 1);
	cr_assert_eq(c.ud, 7);
	cr_assert(c.res > 0 && (c.res & POLLRDHUP), "res %#x", c.res);
	close(sv[0]);
	fr_ring_free(r);
}

Test(io_ring, wait_shorter_than_inflight_timeout)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_cqe c;

	cr_assert_eq(fr_ring_timeout(r, 3000, 1), 0);
	/* the wait's own expiry is not an error, and submits the timeout */
	cr_assert_eq(fr_ring_wait(r, &c, 1, 30), 0);
	cr_assert_eq(fr_ring_submit(r), 0, "nothing left queued");
	fr_ring_free(r);
}

Test(io_ring, more_timeouts_than_slots)
{
	/*
	 * Three times more timeouts than SQ slots, each with its own
	 * duration: slots are reused while earlier timeouts still run, and
	 * the firing order shows each kept its own timespec. They are 50 ms
	 * apart, so that a loaded machine delaying a submission does not
	 * reorder them.
	 */
	struct fr_ring *r = ring_or_skip(8);
	unsigned i;

	for (i = 0; i < 24; i++)
		cr_assert_eq(fr_ring_timeout(r, 50 + 50 * (23 - i), i), 0);
	for (i = 0; i < 24; i++) {
		struct fr_cqe c;
		int ret = fr_ring_wait(r, &c, 1, 5000);

		cr_assert_eq(ret, 1);
		cr_assert_eq(c.res, -ETIME);
		/* the shortest (last queued) fires first */
		cr_assert_eq(c.ud, 23 - i, "got ud %llu at %u",
			     (unsigned long long)c.ud, i);
	}
	fr_ring_free(r);
}

Test(io_ring, full_queue_submits_and_overflowing_cq_drains)
{
	/* 4 SQ slots, 8 CQ slots, 40 requests: prep must submit to make room */
	struct fr_ring *r = ring_or_skip(4);
	struct fr_cqe c[64];
	unsigned seen = 0, i;
	uint64_t mask = 0;

	for (i = 0; i < 40; i++)
		cr_assert_eq(fr_ring_timeout(r, 1, i), 0, "prep %u", i);
	usleep(100000);
	while (seen < 40) {
		int ret = fr_ring_wait(r, c, 64, 2000);

		cr_assert_gt(ret, 0, "stuck at %u of 40", seen);
		for (i = 0; i < (unsigned)ret; i++) {
			cr_assert_eq(c[i].res, -ETIME);
			cr_assert_lt(c[i].ud, 40);
			cr_assert_eq(mask & (1ull << c[i].ud), 0, "ud twice");
			mask |= 1ull << c[i].ud;
		}
		seen += (unsigned)ret;
	}
	cr_assert_eq(fr_ring_wait(r, c, 64, 0), 0);
	fr_ring_free(r);
}

Test(io_ring, error_passes_through)
{
	struct fr_ring *r = ring_or_skip(8);
	struct backlog b = {.n = 0};
	char buf[64];
	int fd = dup(0), tmp = temp_file();

	close(fd); /* now certainly not open */
	cr_assert_eq(fr_ring_read(r, fd, -1, buf, sizeof(buf), 0, 1), 0);
	cr_assert_eq(fr_ring_recv(r, tmp, buf, sizeof(buf), false, 2), 0);
	cr_assert_eq(fr_ring_send(r, tmp, -1, buf, sizeof(buf), 0, 3), 0);
	cr_assert_eq(take_res(r, &b, 1), -EBADF);
	cr_assert_eq(take_res(r, &b, 2), -ENOTSOCK);
	cr_assert_eq(take_res(r, &b, 3), -ENOTSOCK);
	close(tmp);
	fr_ring_free(r);
}

Test(io_ring, buf_id_outside_buffer_is_einval)
{
	struct fr_ring *r = ring_or_skip(8);
	struct fr_pool *p = pool_new(2, 4096);
	char other[16];
	unsigned char *b;

	/* no pool attached yet: a buf_id means nothing */
	cr_assert_eq(fr_ring_read(r, 0, 0, other, 16, 0, 0), -EINVAL);
	attach(r, p, false);
	b = fr_pool_buf(p, 0);
	cr_assert_eq(fr_ring_read(r, 0, 0, other, 16, 0, 0), -EINVAL);
	cr_assert_eq(fr_ring_read(r, 0, 2, b, 16, 0, 0), -EINVAL);
	cr_assert_eq(fr_ring_write(r, 0, 0, b + 4000, 200, 0, 0), -EINVAL);
	cr_assert_eq(fr_ring_send(r, 0, 1, b, 16, 0, 0), -EINVAL);
	cr_assert_eq(fr_ring_submit(r), 0, "nothing was queued");
	fr_ring_free(r);
	fr_pool_free(p);
}

/* ---- files ----------------------------------------------------------------
 */

#define BUF (64 * 1024)

static void file_rw(bool noreg)
{
	struct fr_ring *r = ring_or_skip(32);
	struct fr_pool *p = pool_new(4, BUF);
	struct backlog b = {.n = 0};
	unsigned char *w0, *w1, *rd0, *rd1, heap[200], check[BUF];
	int fd = temp_file(), bad = dup(0), i0, i1, i2, i3;

	close(bad);
	attach(r, p, noreg);
	i0 = fr_pool_get(p);
	i1 = fr_pool_get(p);
	i2 = fr_pool_get(p);
	i3 = fr_pool_get(p);
	w0 = fr_pool_buf(p, i0);
	w1 = fr_pool_buf(p, i1);
	rd0 = fr_pool_buf(p, i2);
	rd1 = fr_pool_buf(p, i3);
	fill(w0, BUF, 1);
	fill(w1, BUF, 2);
	fill(heap, sizeof(heap), 3);

	/* a whole buffer, another at a later offset leaving a hole, a piece
	 * of a buffer, and plain memory */
	cr_assert_eq(fr_ring_write(r, fd, i0, w0, BUF, 0, 10), 0);
	cr_assert_eq(fr_ring_write(r, fd, i1, w1, BUF, 3 * BUF, 11), 0);
	cr_assert_eq(fr_ring_write(r, fd, i0, w0 + 100, 1000, 1 << 20, 12), 0);
	cr_assert_eq(fr_ring_write(r, fd, -1, heap, sizeof(heap), 5 * BUF, 13),
		     0);
	cr_assert_eq(fr_ring_submit(r), 4);
	cr_assert_eq(take_res(r, &b, 10), BUF);
	cr_assert_eq(take_res(r, &b, 11), BUF);
	cr_assert_eq(take_res(r, &b, 12), 1000);
	cr_assert_eq(take_res(r, &b, 13), (int)sizeof(heap));

	cr_assert_eq(fr_ring_fsync(r, fd, true, 20), 0);
	cr_assert_eq(fr_ring_fsync(r, fd, false, 21), 0);
	cr_assert_eq(take_res(r, &b, 20), 0);
	cr_assert_eq(take_res(r, &b, 21), 0);

	/* the kernel saw what we wrote */
	cr_assert_eq(pread(fd, check, BUF, 3 * BUF), BUF);
	cr_assert_eq(memcmp(check, w1, BUF), 0);

	memset(rd0, 0xff, BUF);
	memset(rd1, 0xff, BUF);
	cr_assert_eq(fr_ring_read(r, fd, i2, rd0, BUF, 0, 30), 0);
	cr_assert_eq(fr_ring_read(r, fd, i3, rd1, BUF, BUF, 31), 0);
	cr_assert_eq(take_res(r, &b, 30), BUF);
	cr_assert_eq(take_res(r, &b, 31), BUF);
	cr_assert_eq(memcmp(rd0, w0, BUF), 0);
	cr_assert(all_zero(rd1, BUF), "hole must read as zeros");

	cr_assert_eq(fr_ring_read(r, fd, i2, rd0 + 7, BUF - 7, 3 * BUF, 32), 0);
	cr_assert_eq(take_res(r, &b, 32), BUF - 7);
	cr_assert_eq(memcmp(rd0 + 7, w1, BUF - 7), 0);

	/* short read at EOF: the file ends 1000 bytes into offset 1 MiB */
	cr_assert_eq(fr_ring_read(r, fd, i3, rd1, BUF, 1 << 20, 33), 0);
	cr_assert_eq(fr_ring_read(r, fd, i2, rd0, BUF, (1 << 20) + 1000, 34),
		     0);
	cr_assert_eq(fr_ring_read(r, fd, -1, check, sizeof(heap), 5 * BUF, 35),
		     0);
	cr_assert_eq(take_res(r, &b, 33), 1000);
	cr_assert_eq(memcmp(rd1, w0 + 100, 1000), 0);
	cr_assert_eq(take_res(r, &b, 34), 0, "read at EOF is 0");
	cr_assert_eq(take_res(r, &b, 35), (int)sizeof(heap));
	cr_assert_eq(memcmp(check, heap, sizeof(heap)), 0);

	/* errors pass through on this path too */
	cr_assert_eq(fr_ring_read(r, bad, i2, rd0, BUF, 0, 40), 0);
	cr_assert_eq(fr_ring_write(r, bad, i0, w0, BUF, 0, 41), 0);
	cr_assert_eq(fr_ring_fsync(r, bad, true, 42), 0);
	cr_assert_eq(take_res(r, &b, 40), -EBADF);
	cr_assert_eq(take_res(r, &b, 41), -EBADF);
	cr_assert_eq(take_res(r, &b, 42), -EBADF);
	cr_assert_eq(b.n, 0, "stray completions");

	fr_pool_put(p, i0);
	fr_pool_put(p, i1);
	fr_pool_put(p, i2);
	fr_pool_put(p, i3);
	close(fd);
	fr_ring_free(r);
	fr_pool_free(p);
}

Test(io_ring, file_rw_registered)
{
	file_rw(false);
}
Test(io_ring, file_rw_plain)
{
	file_rw(true);
}

/* ---- sockets --------------------------------------------------------------
 */

static void tcp_pair(int sv[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(l, 0, "socket: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s",
		     strerror(errno));
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(sv[0], (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	sv[1] = accept(l, NULL, NULL);
	cr_assert_geq(sv[1], 0, "accept: %s", strerror(errno));
	close(l);
}

static void unix_pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

#define PIECE (1u << 20)
#define NPIECES 4

/*
 * Several sends (MSG_MORE on all but the last) feed one waitall recv. One
 * send in flight at a time: the header says why.
 */
static void stream(bool noreg, bool tcp)
{
	struct fr_ring *r = ring_or_skip(32);
	struct fr_pool *p = pool_new(NPIECES, PIECE);
	struct backlog b = {.n = 0};
	unsigned char *in = malloc(NPIECES * PIECE);
	int sv[2], ids[NPIECES], i;

	cr_assert_not_null(in);
	if (tcp)
		tcp_pair(sv);
	else
		unix_pair(sv);
	attach(r, p, noreg);
	memset(in, 0, NPIECES * PIECE);
	cr_assert_eq(fr_ring_recv(r, sv[1], in, NPIECES * PIECE, true, 100), 0);
	for (i = 0; i < NPIECES; i++) {
		ids[i] = fr_pool_get(p);
		fill(fr_pool_buf(p, ids[i]), PIECE, 10 + (unsigned)i);
		cr_assert_eq(fr_ring_send(r, sv[0], ids[i],
					  fr_pool_buf(p, ids[i]), PIECE,
					  i < NPIECES - 1 ? FR_SEND_MORE : 0,
					  (uint64_t)i),
			     0);
		cr_assert_eq(take_res(r, &b, (uint64_t)i), (int)PIECE,
			     "send %d short", i);
	}
	cr_assert_eq(take_res(r, &b, 100), (int)(NPIECES * PIECE),
		     "waitall recv short");
	for (i = 0; i < NPIECES; i++) {
		cr_assert_eq(memcmp(in + (size_t)i * PIECE,
				    fr_pool_buf(p, ids[i]), PIECE),
			     0, "piece %d differs", i);
		fr_pool_put(p, ids[i]);
	}

	/* without waitall a recv takes what is there; EOF reads 0 */
	cr_assert_eq(fr_ring_send(r, sv[0], -1, "hello", 5, 0, 200), 0);
	cr_assert_eq(take_res(r, &b, 200), 5);
	cr_assert_eq(fr_ring_recv(r, sv[1], in, 4096, false, 201), 0);
	cr_assert_eq(take_res(r, &b, 201), 5);
	cr_assert_eq(memcmp(in, "hello", 5), 0);
	shutdown(sv[0], SHUT_WR);
	cr_assert_eq(fr_ring_recv(r, sv[1], in, 4096, true, 202), 0);
	cr_assert_eq(take_res(r, &b, 202), 0);

	/* a dead peer is -EPIPE (or a reset), never SIGPIPE */
	close(sv[1]);
	cr_assert_eq(fr_ring_send(r, sv[0], -1, "x", 1, 0, 203), 0);
	{
		int32_t res = take_res(r, &b, 203);

		cr_assert(res == -EPIPE || res == -ECONNRESET, "res %d", res);
	}
	cr_assert_eq(b.n, 0, "stray completions");
	close(sv[0]);
	free(in);
	fr_ring_free(r);
	fr_pool_free(p);
}

Test(io_ring, socketpair_registered)
{
	stream(false, false);
}
Test(io_ring, socketpair_plain)
{
	stream(true, false);
}
Test(io_ring, tcp_registered)
{
	stream(false, true);
}
Test(io_ring, tcp_plain)
{
	stream(true, true);
}

#define ZC_LEN (256u * 1024)

static void send_zc(bool noreg)
{
	struct fr_ring *r = ring_or_skip(32);
	struct fr_pool *p = pool_new(2, ZC_LEN);
	struct backlog b = {.n = 0};
	struct fr_cqe sent, notif;
	unsigned char *in, *out;
	int sv[2], id, round;

	if (!fr_ring_has_send_zc(r)) {
		fr_ring_free(r);
		fr_pool_free(p);
		cr_skip_test("kernel has no IORING_OP_SEND_ZC");
	}
	in = malloc(ZC_LEN);
	cr_assert_not_null(in);
	tcp_pair(sv);
	attach(r, p, noreg);
	id = fr_pool_get(p);
	out = fr_pool_buf(p, id);
	for (round = 0; round < 3; round++) {
		fill(out, ZC_LEN, 50 + (unsigned)round);
		cr_assert_eq(fr_ring_recv(r, sv[1], in, ZC_LEN, true, 2), 0);
		cr_assert_eq(
		    fr_ring_send(r, sv[0], id, out, ZC_LEN, FR_SEND_ZC, 1), 0);
		sent = take(r, &b, 1, false);
		cr_assert_eq(sent.res, (int)ZC_LEN);
		cr_assert(sent.flags & FR_CQE_MORE,
			  "a NOTIF must be announced");
		notif = take(r, &b, 1, true);
		cr_assert(notif.flags & FR_CQE_NOTIF);
		cr_assert_eq(notif.flags & FR_CQE_MORE, 0, "NOTIF is the last");
		cr_assert_eq(take_res(r, &b, 2), (int)ZC_LEN);
		cr_assert_eq(memcmp(in, out, ZC_LEN), 0, "round %d", round);
	}
	/* a plain send with the flag off still has no NOTIF */
	cr_assert_eq(fr_ring_send(r, sv[0], id, out, 100, 0, 3), 0);
	sent = take(r, &b, 3, false);
	cr_assert_eq(sent.res, 100);
	cr_assert_eq(sent.flags, 0);
	cr_assert_eq(b.n, 0, "stray completions");
	fr_pool_put(p, id);
	close(sv[0]);
	close(sv[1]);
	free(in);
	fr_ring_free(r);
	fr_pool_free(p);
}

Test(io_ring, send_zc_tcp_registered)
{
	send_zc(false);
}
Test(io_ring, send_zc_tcp_plain)
{
	send_zc(true);
}

Test(io_ring, send_zc_protocol_holds_on_unix_socket)
{
	/*
	 * AF_UNIX has no zero-copy: whatever the kernel answers, the rule
	 * callers rely on must hold - a NOTIF follows iff FR_CQE_MORE.
	 */
	struct fr_ring *r = ring_or_skip(8);
	struct backlog b = {.n = 0};
	struct fr_cqe sent;
	char in[16];
	int sv[2];

	unix_pair(sv);
	cr_assert_eq(fr_ring_send(r, sv[0], -1, "zero-copy", 9, FR_SEND_ZC, 1),
		     0);
	sent = take(r, &b, 1, false);
	cr_log_info("SEND_ZC on AF_UNIX: res %d flags %#x", sent.res,
		    sent.flags);
	if (sent.flags & FR_CQE_MORE)
		take(r, &b, 1, true);
	else
		cr_assert_eq(fr_ring_wait(r, b.c, 256, 1000), 0,
			     "unannounced NOTIF");
	if (sent.res == 9) {
		cr_assert_eq(read(sv[1], in, sizeof(in)), 9);
		cr_assert_eq(memcmp(in, "zero-copy", 9), 0);
	} else {
		cr_assert(sent.res < 0, "short send %d", sent.res);
	}
	close(sv[0]);
	close(sv[1]);
	fr_ring_free(r);
}

/* ---- RLIMIT_MEMLOCK -------------------------------------------------------
 */

/*
 * Root bypasses RLIMIT_MEMLOCK (CAP_IPC_LOCK), so as root this only shows
 * that a tiny limit breaks nothing; the refusal path itself is pinned down
 * deterministically by the FERRY_NO_REGISTER tests above. Runs in a child
 * so the limit cannot reach anything else. Exit codes: 0 ok, 77 no
 * io_uring, other = the step that failed.
 */
static int memlock_child(void)
{
	struct rlimit rl = {64 * 1024, 64 * 1024};
	struct fr_ring *r = NULL;
	struct fr_pool *p = NULL;
	struct fr_cqe c;
	unsigned char *buf;
	int ret, fd, id;
	char tmpl[] = "/tmp/ferry-memlock-XXXXXX";

	unsetenv("FERRY_NO_REGISTER");
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 2;
	ret = fr_ring_new(&r, 8);
	if (io_uring_missing(ret))
		return 77;
	if (ret)
		return 3;
	if (fr_pool_new(&p, 8, 1 << 20))
		return 4;
	ret = fr_ring_attach_pool(r, p);
	if (ret != 0 && ret != 1)
		return 5;
	if (fr_ring_registered(r) != (ret == 1))
		return 6;
	fd = mkstemp(tmpl);
	if (fd < 0)
		return 7;
	unlink(tmpl);
	id = fr_pool_get(p);
	buf = fr_pool_buf(p, id);
	fill(buf, 1 << 20, 9);
	if (fr_ring_write(r, fd, id, buf, 1 << 20, 0, 1) ||
	    fr_ring_wait(r, &c, 1, 5000) != 1 || c.res != 1 << 20)
		return 8;
	memset(buf, 0, 1 << 20);
	if (fr_ring_read(r, fd, id, buf, 1 << 20, 0, 2) ||
	    fr_ring_wait(r, &c, 1, 5000) != 1 || c.res != 1 << 20)
		return 9;
	{
		unsigned char *want = malloc(1 << 20);

		if (!want)
			return 10;
		fill(want, 1 << 20, 9);
		if (memcmp(want, buf, 1 << 20))
			return 11;
		free(want);
	}
	fr_pool_put(p, id);
	close(fd);
	fr_ring_free(r);
	fr_pool_free(p);
	return ret == 1 ? 0 : 101; /* 101: plain path taken, also fine */
}

Test(io_ring, tiny_memlock_limit_falls_back_or_works)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(memlock_child());
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "child died (status %#x)", st);
	if (WEXITSTATUS(st) == 77)
		cr_skip_test("io_uring unavailable here");
	cr_assert(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 101,
		  "memlock child failed at step %d", WEXITSTATUS(st));
	cr_log_info("under a 64 KiB RLIMIT_MEMLOCK: %s path",
		    WEXITSTATUS(st) == 0 ? "registered" : "plain");
}
