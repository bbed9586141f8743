/*
 * ring.c - struct fr_ring: one io_uring, its optional registered pool, and
 * the prep/submit/reap calls of fr_io.h. The only file in ferry that
 * includes liburing.h; nothing of liburing leaks through the header.
 *
 * Invariants:
 *  - a ring is used by one thread; nothing here locks;
 *  - pool == NULL until fr_ring_attach_pool; registered implies pool;
 *  - ts[i] belongs to SQE slot i: the kernel copies a timeout's timespec
 *    while it takes the SQE in, before that slot can be handed out again,
 *    so one timespec per slot is enough for any number of timeouts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <liburing.h>

#include "fr_io.h"

struct fr_ring {
	struct io_uring ring;
	struct fr_pool *pool;	      /* attached pool, or NULL */
	struct __kernel_timespec *ts; /* one per SQE slot, see above */
	bool registered;	      /* pool buffers are fixed buffers */
	bool send_zc;		      /* kernel knows IORING_OP_SEND_ZC */
};

int fr_ring_new(struct fr_ring **out, unsigned entries)
{
	/*
	 * SUBMIT_ALL: one bad SQE must not hold back the ones behind it.
	 * COOP_TASKRUN + TASKRUN_FLAG: no IPI per completion; the ring is
	 * reaped by its own thread, which enters the kernel often anyway.
	 * Not SINGLE_ISSUER: the ring may be made by one thread and driven
	 * by another.
	 */
	const unsigned flags = IORING_SETUP_SUBMIT_ALL |
			       IORING_SETUP_COOP_TASKRUN |
			       IORING_SETUP_TASKRUN_FLAG;
	struct io_uring_probe *probe;
	struct fr_ring *r;
	int ret;

	*out = NULL;
	if (entries == 0)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = io_uring_queue_init(entries, &r->ring, flags);
	if (ret < 0) /* older kernel: those flags are only an optimisation */
		ret = io_uring_queue_init(entries, &r->ring, 0);
	if (ret < 0) {
		free(r);
		return ret;
	}
	r->ts = calloc(r->ring.sq.ring_entries, sizeof(*r->ts));
	if (!r->ts) {
		io_uring_queue_exit(&r->ring);
		free(r);
		return -ENOMEM;
	}
	probe = io_uring_get_probe_ring(&r->ring);
	if (probe) {
		r->send_zc =
		    io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
		io_uring_free_probe(probe);
	}
	*out = r;
	return 0;
}

void fr_ring_free(struct fr_ring *r)
{
	if (!r)
		return;
	/* Tearing the ring down unregisters its buffers in the kernel. */
	io_uring_queue_exit(&r->ring);
	free(r->ts);
	free(r);
}

int fr_ring_attach_pool(struct fr_ring *r, struct fr_pool *p)
{
#ifdef FERRY_TEST_HOOKS /* a test build only: see fr_hook_flag */
	const char *no_reg = getenv("FERRY_NO_REGISTER");
#else
	const char *no_reg = NULL;
#endif
	unsigned i, n = fr_pool_count(p);
	struct iovec *iov;
	int ret;

	if (r->pool)
		return -EBUSY;
	if (no_reg && strcmp(no_reg, "1")) {
		fprintf(stderr, "ferry: test switch FERRY_NO_REGISTER='%s' "
				"must be 1\n", no_reg);
		exit(2);
	}
	if (no_reg) {
		r->pool = p;
		return 0;
	}
	iov = calloc(n, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		iov[i].iov_base = fr_pool_buf(p, (int)i);
		iov[i].iov_len = fr_pool_buf_size(p);
	}
	ret = io_uring_register_buffers(&r->ring, iov, n);
	free(iov);
	switch (ret) {
	case 0:
		r->pool = p;
		r->registered = true;
		return 1;
	case -ENOMEM: /* over RLIMIT_MEMLOCK */
	case -EPERM:
	case -EFAULT:
	case -EOPNOTSUPP:
		/* Refused, not broken: the plain path uses the same buffers. */
		r->pool = p;
		return 0;
	default:
		return ret;
	}
}

bool fr_ring_registered(const struct fr_ring *r)
{
	return r->registered;
}

bool fr_ring_has_send_zc(const struct fr_ring *r)
{
	return r->send_zc;
}

static int ring_submit(struct fr_ring *r)
{
	int ret;

	if (io_uring_sq_ready(&r->ring) == 0)
		return 0; /* spare the syscall */
	do
		ret = io_uring_submit(&r->ring);
	while (ret == -EINTR);
	return ret;
}

int fr_ring_submit(struct fr_ring *r)
{
	return ring_submit(r);
}

/* A free SQE; a full queue is submitted once to make room. */
static struct io_uring_sqe *ring_sqe(struct fr_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	if (!sqe && ring_submit(r) >= 0)
		sqe = io_uring_get_sqe(&r->ring);
	return sqe;
}

/*
 * buf_id >= 0 is a promise that the range lies in that buffer of the
 * attached pool. Check it on both paths alike, so a caller's bug shows on
 * the plain path too and not only as -EFAULT from a fixed op.
 */
static int ring_check_buf(const struct fr_ring *r, int buf_id, const void *addr,
			  unsigned len)
{
	uintptr_t lo, a = (uintptr_t)addr;
	size_t size;
	void *base;

	if (buf_id < 0)
		return 0;
	if (!r->pool)
		return -EINVAL;
	base = fr_pool_buf(r->pool, buf_id);
	if (!base)
		return -EINVAL;
	lo = (uintptr_t)base;
	size = fr_pool_buf_size(r->pool);
	if (a < lo || a - lo > size || len > size - (a - lo))
		return -EINVAL;
	return 0;
}

static bool ring_fixed(const struct fr_ring *r, int buf_id)
{
	return r->registered && buf_id >= 0;
}

int fr_ring_read(struct fr_ring *r, int fd, int buf_id, void *addr,
		 unsigned len, uint64_t off, uint64_t ud)
{
	struct io_uring_sqe *sqe;
	int ret = ring_check_buf(r, buf_id, addr, len);

	if (ret)
		return ret;
	sqe = ring_sqe(r);
	if (!sqe)
		return -EBUSY;
	if (ring_fixed(r, buf_id))
		io_uring_prep_read_fixed(sqe, fd, addr, len, off, buf_id);
	else
		io_uring_prep_read(sqe, fd, addr, len, off);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int fr_ring_write(struct fr_ring *r, int fd, int buf_id, const void *addr,
		  unsigned len, uint64_t off, uint64_t ud)
{
	struct io_uring_sqe *sqe;
	int ret = ring_check_buf(r, buf_id, addr, len);

	if (ret)
		return ret;
	sqe = ring_sqe(r);
	if (!sqe)
		return -EBUSY;
	if (ring_fixed(r, buf_id))
		io_uring_prep_write_fixed(sqe, fd, addr, len, off, buf_id);
	else
		io_uring_prep_write(sqe, fd, addr, len, off);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int fr_ring_send(struct fr_ring *r, int sock, int buf_id, const void *addr,
		 unsigned len, unsigned flags, uint64_t ud)
{
	/*
	 * MSG_WAITALL makes the kernel resend the rest of a short stream send
	 * itself, so a completion is all of len or the connection failed.
	 * MSG_NOSIGNAL: a dead peer is -EPIPE in the completion, not SIGPIPE.
	 */
	int msg = MSG_NOSIGNAL | MSG_WAITALL;
	struct io_uring_sqe *sqe;
	int ret = ring_check_buf(r, buf_id, addr, len);

	if (ret)
		return ret;
	if (flags & FR_SEND_MORE)
		msg |= MSG_MORE;
	sqe = ring_sqe(r);
	if (!sqe)
		return -EBUSY;
	if ((flags & FR_SEND_ZC) && r->send_zc) {
		if (ring_fixed(r, buf_id))
			io_uring_prep_send_zc_fixed(sqe, sock, addr, len, msg,
						    0, (unsigned)buf_id);
		else
			io_uring_prep_send_zc(sqe, sock, addr, len, msg, 0);
	} else {
		io_uring_prep_send(sqe, sock, addr, len, msg);
	}
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int fr_ring_recv(struct fr_ring *r, int sock, void *addr, unsigned len,
		 bool waitall, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, sock, addr, len, waitall ? MSG_WAITALL : 0);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int fr_ring_fsync(struct fr_ring *r, int fd, bool datasync, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int fr_ring_poll(struct fr_ring *r, int fd, unsigned mask, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, mask);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int fr_ring_openat(struct fr_ring *r, int dfd, const char *path, int flags,
		   unsigned mode, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_openat(sqe, dfd, path, flags, mode);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int fr_ring_reap(struct fr_ring *r, unsigned want,
		 int (*fn)(void *arg, const struct fr_cqe *c), void *arg,
		 unsigned *done)
{
	struct fr_cqe cqes[64];
	int rc = 0;

	*done = 0;
	while (*done < want) {
		int n = fr_ring_wait(r, cqes, 64, -1);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++) {
			int x = fn(arg, &cqes[i]);
			if (x > 0)
				continue; /* resubmitted: still pending */
			if (x < 0 && rc == 0)
				rc = x;
			(*done)++;
		}
	}
	return rc;
}

int fr_ring_timeout(struct fr_ring *r, unsigned ms, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(r);
	struct __kernel_timespec *ts;

	if (!sqe)
		return -EBUSY;
	ts = &r->ts[sqe - r->ring.sq.sqes];
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (long long)(ms % 1000) * 1000000;
	/* count 0: a pure timer, completing with -ETIME */
	io_uring_prep_timeout(sqe, ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

static unsigned ring_reap(struct fr_ring *r, struct fr_cqe *out, unsigned max)
{
	struct io_uring_cqe *batch[32];
	unsigned n = 0;

	while (n < max) {
		unsigned i, got, want = max - n;

		if (want > 32)
			want = 32;
		/* peek_batch also flushes CQ overflow and pending task work */
		got = io_uring_peek_batch_cqe(&r->ring, batch, want);
		for (i = 0; i < got; i++) {
			struct fr_cqe *c = &out[n++];

			c->ud = io_uring_cqe_get_data64(batch[i]);
			c->res = batch[i]->res;
			c->flags = 0;
			if (batch[i]->flags & IORING_CQE_F_MORE)
				c->flags |= FR_CQE_MORE;
			if (batch[i]->flags & IORING_CQE_F_NOTIF)
				c->flags |= FR_CQE_NOTIF;
		}
		io_uring_cq_advance(&r->ring, got);
		if (got < want)
			break;
	}
	return n;
}

static int64_t ring_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * Wait up to timeout_ms for a first completion. A signal, or a kernel that
 * returns after submitting without waiting the whole time, only costs
 * another round with what is left of the deadline.
 */
static int ring_wait_deadline(struct fr_ring *r, int timeout_ms)
{
	int64_t deadline = ring_now_ns() + (int64_t)timeout_ms * 1000000;

	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts;
		int64_t left = deadline - ring_now_ns();
		int ret;

		if (left <= 0)
			left = 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts,
						       NULL);
		if (io_uring_cq_ready(&r->ring))
			return 0;
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			return ret;
		if (left == 0)
			return 0;
	}
}

int fr_ring_wait(struct fr_ring *r, struct fr_cqe *out, unsigned max,
		 int timeout_ms)
{
	int ret;

	if (timeout_ms == 0 || max == 0 || io_uring_cq_ready(&r->ring)) {
		ret = ring_submit(r);
		if (ret < 0)
			return ret;
	} else if (timeout_ms < 0) {
		/* returns early on a signal: go on until a completion is in */
		do {
			ret = io_uring_submit_and_wait(&r->ring, 1);
			if (ret < 0 && ret != -EINTR)
				return ret;
		} while (!io_uring_cq_ready(&r->ring));
	} else {
		ret = ring_wait_deadline(r, timeout_ms);
		if (ret < 0)
			return ret;
	}
	return (int)ring_reap(r, out, max);
}
