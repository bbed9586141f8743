/*
 * fr_io.h - the only door to io_uring. Everything in ferry that submits
 * reads, writes, sends or receives on the data path does it through here;
 * liburing.h is included by io/ alone.
 *
 * Two objects:
 *  - struct fr_pool: a fixed set of equal, page-aligned buffers named by
 *    index. Memory is bounded by the pool, never by what flows through it.
 *    fr_pool_get/put are thread-safe: a buffer may be taken by the I/O
 *    thread and returned by a worker, or by a SEND_ZC notification.
 *  - struct fr_ring: one io_uring, owned and used by one thread only.
 *    A pool can be attached to a ring: its buffers are then registered and
 *    reads/writes into them use READ_FIXED/WRITE_FIXED (and SEND_ZC the
 *    fixed variant). When registration is refused (RLIMIT_MEMLOCK, or the
 *    environment sets FERRY_NO_REGISTER=1), the same calls use plain
 *    READ/WRITE/SEND on the same buffers: the caller's code path does not
 *    change.
 *
 * Errors are -errno, straight from the kernel; nothing is translated.
 * Submissions are queued by the fr_ring_* prep calls and sent to the kernel
 * by fr_ring_submit() or fr_ring_wait(); a prep call that finds the
 * submission queue full submits what is queued and retries once.
 */
#ifndef FR_IO_H
#define FR_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- buffer pool ------------------------------------------------------- */

struct fr_pool;

/* count buffers of buf_size bytes (rounded up to the page size). -errno. */
int fr_pool_new(struct fr_pool **out, unsigned count, size_t buf_size);
void fr_pool_free(struct fr_pool *p); /* NULL-safe */
/* A free buffer's index, or -ENOBUFS. Never blocks. */
int fr_pool_get(struct fr_pool *p);
/* Return buffer id. Returning a buffer that is already free aborts. */
void fr_pool_put(struct fr_pool *p, int id);
void *fr_pool_buf(const struct fr_pool *p, int id);
size_t fr_pool_buf_size(const struct fr_pool *p);
unsigned fr_pool_count(const struct fr_pool *p);
unsigned fr_pool_avail(struct fr_pool *p);

/* ---- ring -------------------------------------------------------------- */

struct fr_ring;

/* A ring with room for `entries` submissions. -errno (e.g. -ENOSYS). */
int fr_ring_new(struct fr_ring **out, unsigned entries);
void fr_ring_free(struct fr_ring *r); /* NULL-safe; unregisters buffers */

/*
 * Attach a pool (at most one per ring). Returns 1 when the buffers were
 * registered, 0 when registration was refused and the plain-buffer path
 * is used, or -errno for any other failure.
 */
int fr_ring_attach_pool(struct fr_ring *r, struct fr_pool *p);
bool fr_ring_registered(const struct fr_ring *r);
/* Whether SEND_ZC is available on this kernel (probed at ring creation). */
bool fr_ring_has_send_zc(const struct fr_ring *r);

/*
 * Prep calls. buf_id >= 0 says that [addr, addr+len) lies inside pool
 * buffer buf_id of the attached pool (fixed ops when registered);
 * buf_id < 0 is any other memory. ud comes back in the completion.
 * Return 0 or -EBUSY when no submission slot could be had (-EINVAL when
 * buf_id >= 0 breaks that promise, on the fixed and the plain path alike).
 */
int fr_ring_read(struct fr_ring *r, int fd, int buf_id, void *addr,
		 unsigned len, uint64_t off, uint64_t ud);
int fr_ring_write(struct fr_ring *r, int fd, int buf_id, const void *addr,
		  unsigned len, uint64_t off, uint64_t ud);

/*
 * A send completes when all len bytes are sent (the kernel resends the
 * rest of a short stream send itself); res < len means the connection
 * failed part way. SIGPIPE is never raised: a dead peer is -EPIPE.
 *
 * Ordering: the kernel does not keep two sends (or two recvs) in flight
 * on one stream socket in order once one of them has to wait for room (or
 * data): their bytes can interleave. Keep at most one send and one recv in
 * flight per socket; issue the next from the previous one's completion.
 *
 * FR_SEND_ZC asks for zero-copy, which is done only when
 * fr_ring_has_send_zc(); otherwise it is silently a plain send and NO
 * notification follows. When it is done, a NOTIF completion (same ud,
 * FR_CQE_NOTIF) follows exactly when the send's own completion carries
 * FR_CQE_MORE: the buffer may be reused only after that NOTIF. Callers must
 * check the flag, not assume a NOTIF.
 */
#define FR_SEND_ZC 0x1u   /* zero-copy: a NOTIF may follow, see above */
#define FR_SEND_MORE 0x2u /* MSG_MORE: more data follows at once */
int fr_ring_send(struct fr_ring *r, int sock, int buf_id, const void *addr,
		 unsigned len, unsigned flags, uint64_t ud);
/* waitall: complete only when len bytes arrived (or EOF/error). */
int fr_ring_recv(struct fr_ring *r, int sock, void *addr, unsigned len,
		 bool waitall, uint64_t ud);
int fr_ring_fsync(struct fr_ring *r, int fd, bool datasync, uint64_t ud);
/* One-shot poll: completes with the ready events of mask (POLLRDHUP, ...;
 * POLLHUP and POLLERR always count) as res once one of them holds. */
int fr_ring_poll(struct fr_ring *r, int fd, unsigned mask, uint64_t ud);
/*
 * Open (res = the new fd) relative to dfd; many opens of existing files
 * overlap their disk waits. (Creates are better done by plain system
 * calls: they serialise on the directory's lock, and handing them to the
 * kernel's workers only adds contention.) path must stay valid until the
 * request is submitted.
 */
int fr_ring_openat(struct fr_ring *r, int dfd, const char *path, int flags,
		   unsigned mode, uint64_t ud);

/*
 * A completion with res -ETIME after ms milliseconds. The timespec is kept
 * by the ring per submission slot and copied by the kernel on submission:
 * any number of timeouts may be in flight.
 */
int fr_ring_timeout(struct fr_ring *r, unsigned ms, uint64_t ud);

/* Submit what is queued. Returns the number submitted or -errno. */
int fr_ring_submit(struct fr_ring *r);

#define FR_CQE_MORE 0x1u  /* another completion for this request follows */
#define FR_CQE_NOTIF 0x2u /* SEND_ZC notification: the buffer is free */
struct fr_cqe {
	uint64_t ud;
	int32_t res;    /* bytes, or -errno */
	uint32_t flags; /* FR_CQE_* */
};

/*
 * Submit what is queued, then wait for at least one completion (or until
 * timeout_ms passes; -1 waits forever, 0 only reaps). Fills up to max
 * completions and returns how many, 0 on timeout, or -errno.
 */
int fr_ring_wait(struct fr_ring *r, struct fr_cqe *out, unsigned max,
		 int timeout_ms);

/*
 * Wait until at least `want` requests have finished, passing every
 * completion to fn(arg, c). fn returns > 0 when it resubmitted the
 * request (still pending), < 0 for an error (the first one is returned),
 * 0 otherwise. *done gets how many finished, which may be more than want:
 * callers keeping N in flight subtract it.
 */
int fr_ring_reap(struct fr_ring *r, unsigned want,
		 int (*fn)(void *arg, const struct fr_cqe *c), void *arg,
		 unsigned *done);

#endif
