/*
 * serve.c - the receiver: `ferry serve`.
 *
 * The main thread accepts; each connection gets a thread that
 * authenticates the peer, takes its manifest, answers with the segments
 * already held, and then runs a ring loop:
 *
 *   RECV message header -> RECV the frame's record (its header validated
 *   before any buffer is committed; its chunks' tags) -> RECV the payload
 *   into a pool buffer; no byte of it is written before its chunk opened:
 *    - raw: in 1 MiB parts, never more than 2 MiB ahead of what opened;
 *      a worker opens the chunks as they come (one job per frame at a
 *      time), and what opened is WRITTEN at once, each extent at its
 *      offset in the package's files (progress); the jobs hash each
 *      chunk as it opens; once all of it opened, a worker checks that
 *      XXH3 against the manifest while the last writes go
 *    - zstd: whole; a worker opens it, decompresses it (never past the
 *      manifest's length) and checks it; then it is WRITTEN
 *    - streamed (PIECEs, then FIN): each piece opened as it comes; then
 *      checked (and decompressed) by a worker, and WRITTEN
 *   -> the connection's sync thread: syncfs in batches, journal append
 *      (fdatasync), then ACK. A corrupt payload is NAK'd and re-sent.
 *
 * After END and the last ACK the package is finalized (store.c) and
 * DONE is sent. A connection that dies leaves its journaled segments in
 * place: the next session for the package resumes from them.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recv/fr_recv.h"

#define RSLOTS 3
#define HEADROOM 4096u
/* written but not yet durable: bounds what a crash can cost */
#define SYNC_WINDOW 8
/* a frame's segment claimed by a session told to stop (its peer gone):
 * how long this one waits for it to let go, to write its own copy */
#define CLAIM_WAIT_MS 2000

enum { K_RECV = 1, K_WRITE, K_EVENT, K_SYNCED, K_HUP, K_TICK, K_CLAIM };
/* a copy that took its segment waits for the old claimer's writes */
#define CLAIM_POLL_MS 2
/* writes in flight per session at most: the ring's completions never
 * overflow, as the sender's reads (FR_AREAD_MAX) */
#define WRITES_MAX 256
#define UD(kind, slot, x)                                                     \
	(((uint64_t)(kind) << 56) | ((uint64_t)(slot) << 40) | (uint64_t)(x))
#define UD_KIND(ud) ((int)((ud) >> 56))
#define UD_SLOT(ud) ((int)(((ud) >> 40) & 0xffff))
#define UD_X(ud) ((uint32_t)((ud)&0xffffffffffu))

/* R_WAITCLAIM: a racing copy, checked, waits for the writes of the
 * session it took the segment from */
enum { R_FREE, R_RECV, R_WAITREF, R_WORK, R_WRITE, R_WAITCLAIM };
/* RS_RECORD: the rest of a record (a frame's, END, FIN) into hdr;
 * RS_PTAG: a PIECE's tag */
enum { RS_MSGHDR, RS_RECORD, RS_WAITBUF, RS_PAYLOAD, RS_PTAG, RS_SINK, RS_STOP };
/* a frame's record: message header, frame header, offset, frame number,
 * tags, the record's tag */
#define REC_MAX                                                               \
	(FR_MSG_HDR + FR_FRAME_HDR + 4 + 8 + FR_CHUNKS_MAX * FR_SEAL_TAG +    \
	 FR_SEAL_TAG + FR_MSG_HDR)

struct wop {
	uint32_t entry, seg_off, len, done;
	uint64_t file_off;
	bool direct;
};


struct rconn;

struct rslot {
	struct fr_job job;
	struct rconn *rc;
	int state;
	struct fr_frame f;
	int buf, out;
	uint32_t shift;      /* data starts at HEADROOM + shift */
	int result;
	bool hashing;        /* the worker's check is still running */
	uint32_t pending;    /* writes in flight */
	int err;
	struct wop *ops;
	uint32_t n_ops, cap_ops;
	/* sealing: the frame's key, header and chunks' tags; the payload
	 * is opened from `from` on (what came before was kept, opened) */
	struct fr_aead_key key;
	uint8_t fhdr[FR_FRAME_HDR];
	uint8_t tags[FR_CHUNKS_MAX * FR_SEAL_TAG];
	uint32_t from, part;
	bool opened;         /* all of the payload is plaintext */
	bool open_only;      /* the worker opened a raw payload: it is
			      * written while the hash is checked */
	/* a copy racing the session receiving its segment (FR_IN_SECOND):
	 * written only once whole, checked, and taken (fr_inbound_take) */
	bool second;
	bool lost;           /* taken by such a copy: nothing more written */
	bool wmore;          /* writes wait for room (WRITES_MAX) */
	/* a raw frame (whole, not zstd) is opened and written as it comes:
	 * a worker opens its whole chunks (one job at a time), and what
	 * opened goes to its files at once */
	bool prog;
	bool busy;           /* an opening job is out */
	bool spool;          /* the line died: keep what came once it is back */
	uint32_t got;        /* of the payload, received */
	uint32_t opened_to;  /* [0, opened_to) is plaintext */
	uint32_t open_at, open_to, open_got; /* the job's range, its result */
	/* a raw frame's hash, taken by its opening jobs chunk by chunk while
	 * each is in the cache: [0, hashed) is in it (a worker's, one job at
	 * a time; the check reads it once every job is back) */
	struct fr_hasher h;
	uint32_t hashed;
	/* the writes' cursor: extent x (split d), of which x_at bytes are
	 * submitted */
	struct fr_extent_iter it;
	struct fr_extent x;
	struct fr_dio_split d;
	uint32_t x_at;
	bool x_valid;
};

struct rconn {
	const struct fr_config *c;
	int sock;
	struct fr_chan ch;    /* sealed once the handshake is done */
	char peer[96];
	char who[FR_CODE_MAX + 1];
	struct fr_store_pkg pkg;
	struct fr_ring *ring;
	struct fr_pool *pool;
	struct fr_doneq done;
	struct rslot slots[RSLOTS];
	int workers_busy;
	/* receive state */
	int rs;
	uint8_t hdr[REC_MAX]; /* a record: a frame's (header, tags; then the
			       * PAYLOAD header), END, FIN */
	uint32_t hdr_got, hdr_want;
	struct fr_frame next; /* validated header of the frame to receive */
	int cur;              /* slot receiving a payload */
	uint32_t pay_got;
	uint32_t pay_open;    /* a stream's: the pieces that came and opened */
	uint8_t ptag[FR_SEAL_TAG];
	struct fr_aead_key next_key; /* the frame's to receive */
	uint32_t next_tags;   /* its tags: at hdr + next_tags */
	bool cont;            /* the message being received is a SEGMENT_CONT */
	bool stream;          /* inside a streamed frame: PIECEs, then FIN */
	uint32_t pay_want;    /* receive the payload up to here */
	uint8_t fhdr[FR_FRAME_HDR]; /* the frame's header as sent */
	bool refuse_stream;   /* FERRY_REFUSE_STREAM: as an older ferry */
	uint8_t *cont_buf;    /* its spooled frame: header, then the prefix */
	uint32_t cont_off;
	uint32_t kept[FR_PARTIAL_MAX]; /* segments with a kept partial frame */
	uint32_t n_kept;      /* (as listed in this session's HAVE) */
	bool recv_inflight;
	bool end_received;
	bool gone;            /* the peer is gone: read what is queued */
	/* the package, shared with the same sender's other sessions (over
	 * other links): its syncer ACKs what it journaled, then wakes us */
	struct fr_inbound *op;
	int slot;             /* our arrival's, in op */
	int sync_efd;
	int hs_slot;          /* its place among the handshakes (-1: none) */
	/* a copy of a segment held or being written by another session:
	 * its payload is read and dropped, its ACK still goes */
	bool sink;
	bool tick_armed;      /* a K_TICK to look at the claimers again */
	bool claim_armed;     /* a K_CLAIM for copies in R_WAITCLAIM */
	uint32_t writes_out;  /* every slot's writes in flight */
	bool next_second;     /* the frame to receive races its claimer */
	uint32_t sink_seg, sink_left;
	uint8_t *sink_buf;
	uint64_t sync_efd_buf;
	pthread_mutex_t wlock; /* one writer on the socket at a time */
	/* outcome */
	int error;
	char err[512];
	uint32_t received, corrupt, received_copies;
	uint32_t begun;          /* frames whose record came, this session */
	uint8_t *taken;       /* per segment: accepted and not yet done with */
	uint8_t *written;     /* per segment: verified and all in its files */
	uint8_t *told;        /* per segment: ACKed durable to the sender
			       * (under wlock) */
	bool told_complete;   /* ... all of them: another arrival completed
			       * the package */
	/* time spent unable to take the next frame (storage slower than the
	 * link): the sender's compression choice depends on it */
	uint64_t stall_since;
	atomic_ullong stall_ns;
	uint64_t report_ns, report_stall;
	/* a session holding a package is listed, so that the same sender's
	 * next session can end it once its peer is gone or silent and take
	 * the package over (open_package) */
	struct rconn *live_next;
	bool live;
	uint8_t id[FR_HASH_LEN]; /* the package's, while listed */
	atomic_bool stop;        /* a new session takes the package over */
	atomic_bool ending;      /* receives nothing more; lets go soon */
};

static atomic_int n_conns;    /* connections, authenticated or not */
static atomic_int n_sessions; /* authenticated sessions */
#define MAX_HANDSHAKES 64
static volatile sig_atomic_t stopping;

/*
 * The connections still shaking hands. When they are MAX_HANDSHAKES, a
 * new one ends the oldest (its socket shut down, so its handshake fails
 * at once) rather than being refused: strangers holding connections open
 * without a password cannot keep a site that may send here out, whose
 * handshake takes a round trip or two.
 */
static struct {
	pthread_mutex_t mu;
	struct rconn *rc[MAX_HANDSHAKES];
	uint64_t since[MAX_HANDSHAKES];
} hs = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void hs_add(struct rconn *rc)
{
	int free_at = -1, oldest = 0;

	pthread_mutex_lock(&hs.mu);
	for (int i = 0; i < MAX_HANDSHAKES; i++) {
		if (!hs.rc[i]) {
			free_at = i;
			break;
		}
		if (hs.since[i] < hs.since[oldest])
			oldest = i;
	}
	if (free_at < 0) {
		struct rconn *old = hs.rc[oldest];
		fr_log(FR_LOG_WARN,
		       "ended the connection from %s: it had not authenticated "
		       "after %.1f s, and %d others wait to",
		       old->peer, (fr_now_ns() - hs.since[oldest]) / 1e9,
		       MAX_HANDSHAKES - 1);
		shutdown(old->sock, SHUT_RDWR);
		old->hs_slot = -1;
		free_at = oldest;
	}
	hs.rc[free_at] = rc;
	hs.since[free_at] = fr_now_ns();
	rc->hs_slot = free_at;
	pthread_mutex_unlock(&hs.mu);
}

/* The handshake is over (either way). */
static void hs_remove(struct rconn *rc)
{
	pthread_mutex_lock(&hs.mu);
	if (rc->hs_slot >= 0 && hs.rc[rc->hs_slot] == rc)
		hs.rc[rc->hs_slot] = NULL;
	rc->hs_slot = -1;
	pthread_mutex_unlock(&hs.mu);
}

static void fail(struct rconn *rc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct rconn *rc, int code, const char *fmt, ...)
{
	va_list ap;

	if (rc->error)
		return;
	rc->error = code ? code : FR_E_PROTOCOL;
	va_start(ap, fmt);
	vsnprintf(rc->err, sizeof(rc->err), fmt, ap);
	va_end(ap);
}

static void sink_done(struct rconn *rc);
static void sink_more(struct rconn *rc);
static void recv_more(struct rconn *rc, void *addr, uint32_t len);

/* A PIECE's tag comes next. */
static void piece_tag(struct rconn *rc)
{
	rc->rs = RS_PTAG;
	rc->hdr_got = 0;
	recv_more(rc, rc->ptag, FR_SEAL_TAG);
}

static void send_locked(struct rconn *rc, uint32_t type, const void *b,
			uint32_t len)
{
	pthread_mutex_lock(&rc->wlock);
	fr_msg_send(&rc->ch, type, b, len);
	pthread_mutex_unlock(&rc->wlock);
}

static void send_ack(struct rconn *rc, uint32_t seg, uint32_t status,
		     uint32_t stall)
{
	uint8_t b[12];

	fr_put32(b, seg);
	fr_put32(b + 4, status);
	fr_put32(b + 8, stall);
	pthread_mutex_lock(&rc->wlock);
	if (status == FR_ACK_DURABLE && rc->told)
		rc->told[seg] = 1;
	fr_msg_send(&rc->ch, FR_MSG_ACK, b, sizeof(b));
	pthread_mutex_unlock(&rc->wlock);
}

/*
 * Another arrival completed the package (a faster sender of it, another
 * installation's, or a parcel) while this session's sender still sends:
 * every segment it was not told of is acknowledged now, so that it stops
 * and ends (END, TABLE, DONE) instead of sending the whole package.
 */
static void tell_complete(struct rconn *rc)
{
	uint32_t n = 0;

	if (rc->told_complete || rc->end_received || !rc->told ||
	    !fr_inbound_completed(rc->op))
		return;
	rc->told_complete = true;
	for (uint32_t s = 0; s < rc->pkg.m.n_segments; s++) {
		pthread_mutex_lock(&rc->wlock);
		bool told = rc->told[s];
		pthread_mutex_unlock(&rc->wlock);
		if (!told) {
			send_ack(rc, s, FR_ACK_DURABLE, 0);
			n++;
		}
	}
	if (n) /* (a striped sender's other links, each time: not said) */
		fr_log(FR_LOG_DEBUG,
		       "%s: package '%s' was completed by another arrival: "
		       "the %u segments its sender was not told of are "
		       "acknowledged, so that it stops",
		       rc->who, rc->pkg.m.name, n);
}

/* Share of the time since the last report that the receiver could not
 * take frames, in thousandths. Called by the syncer's thread only. */
static uint32_t stall_report(struct rconn *rc)
{
	uint64_t now = fr_now_ns(), st = atomic_load(&rc->stall_ns);
	uint64_t dt = now - rc->report_ns, ds = st - rc->report_stall;

	rc->report_ns = now;
	rc->report_stall = st;
	if (dt == 0)
		return 0;
	return ds >= dt ? 1000 : (uint32_t)(ds * 1000 / dt);
}

/* ---- durability: the syncer's report ------------------------------------ */

/* A segment of ours (or one we dropped a copy of) is durable and
 * journaled, or a copy's original failed: ACK it (the syncer's thread,
 * or a session leaving). */
static void arrival_ack(void *arg, uint32_t seg, uint32_t status)
{
	struct rconn *rc = arg;

	send_ack(rc, seg, status,
		 status == FR_ACK_DURABLE ? stall_report(rc) : 0);
}

/* The sync window has room: our ring looks again. */
static void arrival_wake(void *arg)
{
	struct rconn *rc = arg;
	uint64_t one = 1;

	if (write(rc->sync_efd, &one, 8) < 0)
		return;
}

/* ---- where a slot's bytes are ---------------------------------------------- */

/*
 * A raw payload is received where it will be written from: HEADROOM plus
 * the shift that lines its largest extent up for O_DIRECT. A zstd payload
 * is received at HEADROOM of its own buffer and decompressed to the
 * shifted place in `out` (which becomes `buf` once verified).
 */
static uint8_t *payload_at(const struct rconn *rc, const struct rslot *s)
{
	uint32_t at = (s->f.flags & FR_FRAME_ZSTD) ? 0 : s->shift;

	return (uint8_t *)fr_pool_buf(rc->pool, s->buf) + HEADROOM + at;
}

static int data_buf(const struct rslot *s)
{
	return s->out >= 0 ? s->out : s->buf;
}

static uint8_t *data_at(const struct rconn *rc, const struct rslot *s)
{
	return (uint8_t *)fr_pool_buf(rc->pool, data_buf(s)) + HEADROOM +
	       s->shift;
}

/* ---- worker: decompress and verify --------------------------------------- */

static void work_verify(struct fr_job *job, int worker)
{
	struct rslot *s = (struct rslot *)job;
	struct rconn *rc = s->rc;
	const uint8_t *raw;

	struct fr_seg_reader rd = {0};
	const struct fr_manifest *m = &rc->pkg.m;

	/* a raw frame opened as it came was hashed as it opened */
	if (s->prog && s->opened && s->hashed == s->f.stored_len &&
	    s->f.stored_len == s->f.raw_len && s->h.state) {
		uint8_t h[FR_HASH_LEN], want[FR_HASH_LEN];
		fr_inbound_hash(rc->op, s->f.index, want);
		bool known = !fr_hash_unknown(want);
		fr_hasher_final(&s->h, h);
		bool ok = (!known || !memcmp(h, want, FR_HASH_LEN)) &&
			  !memcmp(h, s->f.hash, FR_HASH_LEN);
		s->result = ok ? 0 : FR_E_HASH_MISMATCH;
		if (ok && !known) /* an open offer's: TABLE confirms it */
			fr_inbound_hash_settle(rc->op, s->f.index, h);
		return;
	}
	/* opened first, before any byte of it goes anywhere */
	if (!s->opened) {
		if (fr_chunks_open(&s->key, s->fhdr, payload_at(rc, s), s->from,
				   s->f.stored_len, s->tags) < 0) {
			s->result = FR_E_SEALED;
			return;
		}
		s->opened = true;
		if (!(s->f.flags & FR_FRAME_ZSTD)) {
			s->open_only = true; /* written while hashed */
			return;
		}
	}
	/* the segment it was compressed against, from its files */
	if ((s->f.flags & FR_FRAME_REF) &&
	    fr_seg_load(&rd, rc->pkg.tree, false, m, s->f.ref) < 0) {
		fr_seg_reader_fini(&rd);
		s->result = FR_E_NO_REF;
		return;
	}
	/* decompressed (if zstd) to where it is written from; checked
	 * against the offer's hash, or where the sender had not hashed the
	 * segment yet (an open manifest), its frame's own, which TABLE
	 * confirms at the end */
	uint8_t want[FR_HASH_LEN];
	fr_inbound_hash(rc->op, s->f.index, want);
	bool known = !fr_hash_unknown(want);
	s->result = fr_frame_decode_ref(fr_workq_dctx(worker), &s->f,
					payload_at(rc, s), data_at(rc, s),
					known ? want : NULL, rd.buf,
					rd.buf ? m->segments[s->f.ref].length : 0,
					&raw);
	fr_seg_reader_fini(&rd);
	if (s->result == 0 && !known) /* an open offer's: TABLE confirms it */
		fr_inbound_hash_settle(rc->op, s->f.index, s->f.hash);
}

/* A raw frame's chunks [open_at, open_to), as they came: open_got is the
 * end of what opened (open_to unless a chunk did not). Each chunk that
 * opened is hashed at once, while it is in the cache, so the frame's
 * check makes no pass of its own over the payload. */
static void work_open(struct fr_job *job, int worker)
{
	struct rslot *s = (struct rslot *)job;
	uint32_t c = fr_chunk_size(s->f.stored_len), at = s->open_at;
	uint8_t *p = payload_at(s->rc, s);

	(void)worker;
	while (at < s->open_to) {
		uint32_t to = s->open_to - at < c ? s->open_to : at + c;
		uint32_t got = fr_chunks_open_prefix(
			&s->key, s->fhdr, p, at, to, s->f.stored_len,
			s->tags + (size_t)((at - s->from) / c) * FR_SEAL_TAG);
		/* [0, got) is plaintext (a continued frame's kept prefix
		 * included) */
		if (s->h.state && got > s->hashed) {
			fr_hasher_update(&s->h, p + s->hashed, got - s->hashed);
			s->hashed = got;
		}
		at = got;
		if (got < to)
			break;
	}
	s->open_got = at;
}

/* ---- the I/O thread -------------------------------------------------------- */

static void slot_free(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];

	if (s->buf >= 0)
		fr_pool_put(rc->pool, s->buf);
	if (s->out >= 0)
		fr_pool_put(rc->pool, s->out);
	s->buf = s->out = -1;
	s->state = R_FREE;
}

static void arm_recv(struct rconn *rc);

/* A segment that will not become durable may be sent again. */
static void unmark(struct rconn *rc, uint32_t seg)
{
	rc->taken[seg] = rc->written[seg] = 0;
	fr_inbound_unclaim(rc->op, rc->slot, seg);
}

static int submit_wop(struct rconn *rc, int si, uint32_t k)
{
	struct rslot *s = &rc->slots[si];
	struct wop *op = &s->ops[k];
	uint8_t *base = data_at(rc, s);
	int fd;

	/* a close must not hit the fd of a write still only queued */
	if (fr_store_fd_would_close(&rc->pkg, op->entry, false) ||
	    (op->direct && fr_store_fd_would_close(&rc->pkg, op->entry, true)))
		fr_ring_submit(rc->ring);
	if (op->direct) {
		fd = fr_store_fd(&rc->pkg, op->entry, true);
		if (fd == -EINVAL) { /* this file system: page cache only */
			op->direct = false;
			fd = fr_store_fd(&rc->pkg, op->entry, false);
		}
	} else {
		fd = fr_store_fd(&rc->pkg, op->entry, false);
	}
	if (fd < 0)
		return fd;
	return fr_ring_write(rc->ring, fd, data_buf(s),
			     base + op->seg_off + op->done,
			     op->len - op->done, op->file_off + op->done,
			     UD(K_WRITE, si, k));
}

/* One write of slot si's segment, submitted: 0, an error, or 1 when a
 * copy took the segment from this session (nothing is written). */
static int add_wop(struct rconn *rc, int si, uint32_t entry, uint64_t file_off,
		   uint32_t seg_off, uint32_t len, bool direct)
{
	struct rslot *s = &rc->slots[si];

	if (s->n_ops == s->cap_ops) {
		uint32_t nc = s->cap_ops ? s->cap_ops * 2 : 64;
		struct wop *n = realloc(s->ops, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->ops = n;
		s->cap_ops = nc;
	}
	s->ops[s->n_ops] = (struct wop){.entry = entry,
					.seg_off = seg_off,
					.len = len,
					.file_off = file_off,
					.direct = direct};
	/* a copy that came whole by another link may have taken it */
	if (!fr_inbound_write_begin(rc->op, rc->slot, s->f.index))
		return 1;
	int r = submit_wop(rc, si, s->n_ops);
	if (r < 0) {
		fr_inbound_write_end(rc->op, s->f.index);
		return r;
	}
	s->n_ops++;
	s->pending++;
	rc->writes_out++;
	return 0;
}

static void settle(struct rconn *rc, int si);
static void start_writes(struct rconn *rc, int si);
static void submit_opened(struct rconn *rc, int si);

/* A copy by another link came whole first and took slot si's segment:
 * the rest of this frame is received and nothing more of it written;
 * the other copy's ACK is ours too (inbound.c). */
static void lose(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];

	if (s->lost)
		return;
	s->lost = true;
	fr_log(FR_LOG_INFO,
	       "%s: segment %u of '%s' came whole by another link first; "
	       "this session's copy is dropped",
	       rc->who, s->f.index, rc->pkg.m.name);
}

/* Check and write slot si's frame (its payload is all here): a frame not
 * opened as it came (zstd, streamed; a raw one goes by progress). */
static void verify(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];

	/* The worker opens the payload (a stream's pieces are open
	 * already); the hash check of a raw one then runs while it is
	 * already being written (on_worker_done). */
	s->state = R_WORK;
	s->hashing = true;
	s->open_only = false;
	s->result = 0; /* the slot's last frame may have failed */
	s->job.fn = work_verify;
	s->job.done = &rc->done;
	rc->workers_busy++;
	fr_workq_push(&s->job);
}

/* A record or a frame did not open: someone on the path altered,
 * dropped, replayed or injected bytes. Nothing of it is kept. */
static void sealed_fail(struct rconn *rc)
{
	if (rc->error)
		return;
	fr_log(FR_LOG_ERROR,
	       "message authentication failed from %s at %s: session dropped",
	       rc->who, rc->peer);
	fail(rc, FR_E_SEALED,
	     "message authentication failed from %s at %s: session dropped",
	     rc->who, rc->peer);
}

/*
 * A frame compressed against segment r can be decompressed once r is in
 * its files: held, or written in this session. While r is still on its
 * way here the frame waits; if r will not come (refused as corrupt, or
 * never sent) the frame is refused too, and the sender sends it again on
 * its own.
 */
static void check_ref(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];
	uint32_t r = s->f.ref;

	if (rc->pkg.j.have[r] || rc->written[r]) {
		verify(rc, si);
		return;
	}
	if (rc->taken[r]) {
		s->state = R_WAITREF;
		return;
	}
	s->state = R_WORK;
	s->result = FR_E_NO_REF;
	settle(rc, si);
}

/* Frames that waited for their reference go on (or are refused). */
static void wake_waiting(struct rconn *rc)
{
	for (int i = 0; i < RSLOTS; i++)
		if (rc->slots[i].state == R_WAITREF)
			check_ref(rc, i);
}

/* Slot si's copy is not the one written (a racing copy took its segment,
 * or it was a racing copy that came second): nothing is said for it now
 * unless the copy that took it let go since (then its sender sends it
 * again); else its ACK comes, or came, with the other copy's. */
static void drop_copy(struct rconn *rc, int si)
{
	uint32_t seg = rc->slots[si].f.index;

	rc->taken[seg] = 0;
	rc->received_copies++;
	if (fr_inbound_drop(rc->op, rc->slot, seg) && !rc->error)
		send_ack(rc, seg, FR_ACK_AGAIN, 0);
	slot_free(rc, si);
	wake_waiting(rc);
	arm_recv(rc);
}

/*
 * A slot is done once its check and its writes are both over: a segment
 * that verified and is all on disk goes to the sync thread; a corrupt one
 * is asked for again; anything else may simply be sent again later.
 */
static void settle(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];
	uint32_t seg = s->f.index;

	if (s->state == R_RECV || s->hashing || s->pending || s->busy ||
	    (s->wmore && !s->err && !rc->error && !s->lost))
		return;
	if (s->wmore) { /* writes that never went: the segment is not all
			 * in its files */
		s->wmore = false;
		if (!s->err)
			s->err = -ECANCELED;
	}
	/* a raw frame still being opened: the rest comes */
	if (s->prog && s->state == R_WORK && s->result == 0 && !s->err &&
	    !rc->error)
		return;
	if (s->result != FR_E_SEALED &&
	    !fr_inbound_holds(rc->op, rc->slot, seg)) {
		/* another copy took it, or came first: its ACK is ours */
		drop_copy(rc, si);
		return;
	}
	if (s->result == FR_E_SEALED) {
		sealed_fail(rc);
	} else if (s->result == FR_E_NO_REF && !rc->error) {
		fr_log(FR_LOG_INFO,
		       "%s: segment %u of '%s' was compressed against segment "
		       "%u, which is not here; asking for it on its own",
		       rc->who, seg, rc->pkg.m.name, s->f.ref);
		send_ack(rc, seg, FR_ACK_NOREF, 0);
	} else if (s->result < 0 && !rc->error) {
		rc->corrupt++;
		fr_log(FR_LOG_WARN,
		       "%s: segment %u of '%s' arrived corrupt (%s); asking for "
		       "it again",
		       rc->who, seg, rc->pkg.m.name, fr_strerror(s->result));
		send_ack(rc, seg, FR_ACK_BAD, 0);
	}
	if (s->result < 0 || s->err || s->state != R_WRITE) {
		unmark(rc, seg);
	} else if (!fr_inbound_land(rc->op, rc->slot, seg)) {
		/* a copy took it after our last write: it writes it again */
		lose(rc, si);
		drop_copy(rc, si);
		return;
	} else {
		rc->received++;
		rc->written[seg] = 1;
		fr_syncer_add(&rc->op->sy, seg);
	}
	slot_free(rc, si);
	wake_waiting(rc);
	arm_recv(rc);
}

/*
 * Each extent goes to its file at its offset. The block-aligned middle of
 * a large extent is written O_DIRECT (the data was placed in the buffer so
 * that it lines up, see arm_recv): durable writes then cost one DMA, not a
 * trip through the page cache. Head and tail go buffered. The writes go
 * as a raw frame's do as it opens (submit_opened), all of it open.
 */
static void start_writes(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];

	s->state = R_WRITE;
	s->n_ops = 0;
	s->pending = 0;
	s->err = 0;
	s->opened_to = rc->pkg.m.segments[s->f.index].length;
	fr_extent_iter_init(&s->it, &rc->pkg.m, s->f.index);
	s->x_valid = false;
	submit_opened(rc, si);
	if (rc->error && !s->err) /* its writes stopped short */
		s->err = -ECANCELED;
	if (s->pending == 0)
		settle(rc, si);
}

/*
 * A raw frame's writes, as it opens: what opened since the last call is
 * submitted, extent by extent, each split in a buffered head and tail
 * and an O_DIRECT middle. The middle is cut only at file offsets aligned
 * to FR_DIO_ALIGN (the buffer lines up with the file there); the head
 * and tail go as far as what opened. At most WRITES_MAX writes are out
 * for the session (a segment of many small files is many writes): the
 * rest (wmore) goes as those complete (more_writes).
 */
static void submit_opened(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];
	const uint8_t *base = data_at(rc, s);

	s->wmore = false;
	while (!s->err && !rc->error && !s->lost) {
		if (!s->x_valid) {
			if (!fr_extent_next(&s->it, &s->x))
				return;
			s->d = fr_dio_split(base + s->x.seg_off, s->x.file_off,
					    s->x.len,
					    !rc->pkg.nodirect[s->x.entry]);
			s->x_at = 0;
			s->x_valid = s->x.len > 0;
			continue;
		}
		const struct fr_extent *x = &s->x;
		if (s->opened_to <= x->seg_off + s->x_at)
			return;
		uint32_t avail = s->opened_to - x->seg_off;
		uint32_t mid_end = s->d.head + s->d.mid, end;
		bool direct = s->x_at >= s->d.head && s->x_at < mid_end;
		end = s->x_at < s->d.head ? s->d.head
		      : direct		  ? mid_end
					  : x->len;
		if (avail < end) {
			end = avail;
			if (direct) /* a block's start */
				end = s->d.head +
				      ((end - s->d.head) & ~(FR_DIO_ALIGN - 1));
		}
		if (end <= s->x_at)
			return; /* the next block has not opened yet */
		if (rc->writes_out >= WRITES_MAX) { /* a write to go: later */
			s->wmore = true;
			return;
		}
		int r = add_wop(rc, si, x->entry, x->file_off + s->x_at,
				x->seg_off + s->x_at, end - s->x_at,
				direct && !rc->pkg.nodirect[x->entry]);
		if (r > 0) {
			lose(rc, si);
			return;
		}
		if (r < 0) {
			char ep[FR_ESC_MAX];
			s->err = r;
			fail(rc, r, "cannot write '%s' in '%s': %s",
			     fr_esc(rc->pkg.m.entries[x->entry].path, ep,
				    sizeof(ep)),
			     rc->pkg.tree, fr_strerror(r));
			return;
		}
		s->x_at = end;
		s->x_valid = end < x->len;
	}
}

/*
 * A raw frame goes on as far as it can: what opened is written, the whole
 * chunks that came and are not opened yet go to a worker (its job is
 * free), and once all of it opened and all of its writes are out, its
 * hash is checked while they finish. A frame that failed (a chunk that
 * did not open, a write, the session) writes nothing more: it settles
 * once nothing of it is out.
 */
static void progress(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];
	uint32_t stored = s->f.stored_len;

	if (s->result == 0 && !s->err && !rc->error) {
		submit_opened(rc, si);
		uint32_t c = fr_chunk_size(stored);
		uint32_t to = s->got >= stored ? stored : s->got / c * c;
		if (!s->busy && to > s->opened_to && !s->err && !rc->error) {
			s->busy = true;
			s->open_at = s->opened_to;
			s->open_to = to;
			s->job.fn = work_open;
			s->job.done = &rc->done;
			rc->workers_busy++;
			fr_workq_push(&s->job);
		}
		if (s->state == R_WORK && s->opened_to == stored && !s->err &&
		    !rc->error) {
			/* all written (submitted): the check runs meanwhile */
			s->state = R_WRITE;
			s->opened = true;
			s->hashing = true;
			s->job.fn = work_verify;
			s->job.done = &rc->done;
			rc->workers_busy++;
			fr_workq_push(&s->job);
		}
	}
	settle(rc, si);
}

/* Room for writes again (a write of slot si completed): the slots whose
 * writes waited for it go on; a slot that can write no more fails, its
 * segment not counted. A slot other than si with nothing out after that
 * is settled here (si: by on_write). */
static void more_writes(struct rconn *rc, int si)
{
	for (int i = 0; i < RSLOTS && rc->writes_out < WRITES_MAX; i++) {
		struct rslot *s = &rc->slots[i];
		if (!s->wmore)
			continue;
		if (s->err || rc->error || s->lost) {
			s->wmore = false;
			if (!s->err && !s->lost)
				s->err = -ECANCELED;
		} else {
			submit_opened(rc, i);
		}
		if (i != si && !s->pending && !s->wmore)
			settle(rc, i);
	}
}

static void on_write(struct rconn *rc, int si, uint32_t k, int res)
{
	struct rslot *s = &rc->slots[si];
	struct wop *op = &s->ops[k];
	char ep[FR_ESC_MAX];

	if (res == -EINVAL && op->direct && !s->err && !rc->error) {
		/* the file system took the O_DIRECT open but not the write */
		rc->pkg.nodirect[op->entry] = 1;
		op->direct = false;
		int r = submit_wop(rc, si, k);
		if (r == 0)
			return;
		res = r;
	}
	if (res < 0) {
		if (!s->err)
			fail(rc, res, "cannot write '%s' in '%s': %s",
			     fr_esc(rc->pkg.m.entries[op->entry].path, ep,
				    sizeof(ep)),
			     rc->pkg.tree, fr_strerror(res));
		s->err = res;
	} else if (res == 0) {
		s->err = -EIO;
		fail(rc, -EIO, "write of '%s' made no progress",
		     fr_esc(rc->pkg.m.entries[op->entry].path, ep, sizeof(ep)));
	} else {
		op->done += (uint32_t)res;
		if (op->direct && (op->done % FR_DIO_ALIGN))
			op->direct = false; /* a ragged short write: finish buffered */
		if (op->done < op->len) {
			/* never count a segment whose bytes are not all down */
			int r = s->err ? s->err : rc->error ? -ECANCELED
						: submit_wop(rc, si, k);
			if (r == 0)
				return;
			if (!s->err)
				s->err = r;
			fail(rc, r, "cannot write '%s': %s",
			     fr_esc(rc->pkg.m.entries[op->entry].path, ep,
				    sizeof(ep)),
			     fr_strerror(r));
		}
	}
	fr_inbound_write_end(rc->op, s->f.index);
	rc->writes_out--;
	s->pending--;
	more_writes(rc, si);
	if (s->pending == 0)
		settle(rc, si);
}

static void spool_opened(struct rconn *rc, int si);

/* Copies waiting for the old claimer's writes are looked at again soon
 * (false: the ring had no room for the timer). */
static bool arm_claim_poll(struct rconn *rc)
{
	if (!rc->claim_armed &&
	    fr_ring_timeout(rc->ring, CLAIM_POLL_MS, UD(K_CLAIM, 0, 0)) == 0)
		rc->claim_armed = true;
	return rc->claim_armed;
}

/*
 * A racing copy is whole and checked: if the session receiving the same
 * segment by another link has not written all of it yet, this copy
 * takes it and is written (once that session's writes in flight are
 * done); else it goes, and its ACK comes with the other's.
 */
static void take_copy(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];
	bool waited = s->state == R_WAITCLAIM;
	int r = rc->error ? FR_IN_ACKED
			  : fr_inbound_take(rc->op, rc->slot, s->f.index,
					    CLAIM_POLL_MS);

	if (r == FR_IN_WRITING && !arm_claim_poll(rc)) /* wait here, then */
		r = fr_inbound_take(rc->op, rc->slot, s->f.index, 10000);
	if (r == FR_IN_WRITING) {
		s->state = R_WAITCLAIM;
		return;
	}
	s->state = R_WORK;
	if (r != FR_IN_MINE) {
		/* it goes (settle: not held); cancelled, those waiting are
		 * asked for it again */
		if (rc->error)
			s->result = -ECANCELED;
		settle(rc, si);
		return;
	}
	if (!waited)
		fr_log(FR_LOG_INFO,
		       "%s: segment %u of '%s' came whole by this link first; "
		       "written from this copy",
		       rc->who, s->f.index, rc->pkg.m.name);
	s->second = false;
	if (s->out >= 0) { /* zstd: written from its decompressed copy */
		fr_pool_put(rc->pool, s->buf);
		s->buf = s->out;
		s->out = -1;
	}
	start_writes(rc, si);
}

/* The poll: each copy that waits asks again. */
static void on_claim_poll(struct rconn *rc)
{
	rc->claim_armed = false;
	for (int i = 0; i < RSLOTS; i++)
		if (rc->slots[i].state == R_WAITCLAIM)
			take_copy(rc, i);
}

static void on_worker_done(struct rconn *rc)
{
	struct fr_job *j = fr_doneq_take(&rc->done);

	while (j) {
		struct rslot *s = (struct rslot *)j;
		int si = (int)(s - rc->slots);
		j = j->next;
		rc->workers_busy--;
		if (s->busy) { /* chunks of a raw frame opened, or not */
			s->busy = false;
			if (s->open_got < s->open_to && s->result == 0) {
				/* nothing more of it is written */
				s->result = FR_E_SEALED;
				sealed_fail(rc);
			}
			s->opened_to = s->open_got;
			if (s->spool)
				spool_opened(rc, si);
			progress(rc, si);
			arm_recv(rc); /* the next part may come now */
			continue;
		}
		if (s->open_only && s->result == 0 && !rc->error) {
			/* opened: written while its hash is checked (a
			 * racing copy: once it is checked) */
			s->open_only = false;
			rc->workers_busy++;
			fr_workq_push(&s->job);
			if (!s->second)
				start_writes(rc, si);
			continue;
		}
		s->hashing = false;
		if (s->second && s->state == R_WORK && s->result == 0) {
			take_copy(rc, si);
			continue;
		}
		/* a raw payload is being written already; a zstd one is
		 * written from its decompressed copy once that verified */
		if (s->state == R_WORK && s->result == 0 && !rc->error) {
			fr_pool_put(rc->pool, s->buf);
			s->buf = s->out;
			s->out = -1;
			start_writes(rc, si);
			continue;
		}
		settle(rc, si);
	}
}

static int free_slot(struct rconn *rc)
{
	for (int i = 0; i < RSLOTS; i++)
		if (rc->slots[i].state == R_FREE)
			return i;
	return -1;
}

/* A raw frame's payload comes in parts of this much (or of a chunk, if
 * larger): each part's chunks are opened and written while the next
 * comes. */
#define RECV_PART (1u << 20)
/* ... and no further ahead of what opened than this (or two parts): on a
 * machine that opens slower than the line brings, the rest waits on the
 * sender's side, where a dead receiver does not lose it */
#define RECV_AHEAD (2u << 20)

static void progress(struct rconn *rc, int si);

static void recv_more(struct rconn *rc, void *addr, uint32_t len)
{
	int r = fr_ring_recv(rc->ring, rc->sock, addr, len, true,
			     UD(K_RECV, 0, 0));
	if (r < 0)
		fail(rc, r, "cannot queue a receive: %s", fr_strerror(r));
	else
		rc->recv_inflight = true;
}

/* Payload received that no worker has opened yet (raw frames). */
static uint32_t unopened(const struct rconn *rc)
{
	uint32_t n = 0;

	for (int i = 0; i < RSLOTS; i++) {
		const struct rslot *s = &rc->slots[i];
		if (s->prog && (s->state == R_RECV || s->state == R_WORK) &&
		    s->result == 0 && !s->err)
			n += s->got - s->opened_to;
	}
	return n;
}

static void stall_begin(struct rconn *rc)
{
	if (!rc->stall_since)
		rc->stall_since = fr_now_ns();
}

static void stall_end(struct rconn *rc)
{
	if (rc->stall_since) {
		atomic_fetch_add(&rc->stall_ns, fr_now_ns() - rc->stall_since);
		rc->stall_since = 0;
	}
}

/* How much of slot s's payload the next receive asks for. */
static uint32_t recv_len(const struct rconn *rc, const struct rslot *s)
{
	uint32_t c = fr_chunk_size(s->f.stored_len);
	uint32_t part = c > RECV_PART ? c : RECV_PART;
	uint64_t end = ((uint64_t)rc->pay_got / part + 1) * part;

	if (!s->prog || end > rc->pay_want)
		end = rc->pay_want;
	return (uint32_t)(end - rc->pay_got);
}

/* The next part of a raw frame's payload, once what came before it has
 * (nearly) opened. */
static void recv_part(struct rconn *rc)
{
	struct rslot *s = &rc->slots[rc->cur];
	uint32_t len = recv_len(rc, s);
	uint32_t c = fr_chunk_size(s->f.stored_len);
	uint32_t ahead = c > RECV_PART ? 2 * c : RECV_AHEAD;

	if (!rc->gone && unopened(rc) + len > ahead && unopened(rc) > 0) {
		stall_begin(rc);
		return;
	}
	stall_end(rc);
	recv_more(rc, payload_at(rc, s) + rc->pay_got, len);
}

/* Start (or resume) receiving, as the state allows. */
static void arm_recv(struct rconn *rc)
{
	if (rc->recv_inflight || rc->error || rc->rs == RS_STOP)
		return;
	if (rc->rs == RS_MSGHDR) {
		rc->hdr_got = 0;
		rc->hdr_want = FR_MSG_HDR;
		recv_more(rc, rc->hdr, FR_MSG_HDR);
		return;
	}
	if (rc->rs == RS_PAYLOAD && rc->slots[rc->cur].prog) {
		recv_part(rc);
		return;
	}
	if (rc->rs != RS_WAITBUF)
		return;
	int si = free_slot(rc);
	const struct fr_frame *fr = &rc->next;
	unsigned want = (fr->flags & FR_FRAME_ZSTD) ? 2 : 1;
	uint32_t backlog;
	fr_syncer_state(&rc->op->sy, &backlog);
	bool window_full = backlog >= SYNC_WINDOW;
	if (si < 0 || fr_pool_avail(rc->pool) < want || window_full) {
		stall_begin(rc);
		return;
	}
	stall_end(rc);
	struct rslot *s = &rc->slots[si];
	s->f = *fr;
	s->buf = fr_pool_get(rc->pool);
	s->out = want == 2 ? fr_pool_get(rc->pool) : -1;
	s->state = R_RECV;
	s->shift = fr_dio_shift(&rc->pkg.m, fr->index);
	s->key = rc->next_key;
	memcpy(s->fhdr, rc->fhdr, FR_FRAME_HDR);
	s->from = rc->cont_buf ? rc->cont_off : 0;
	s->part = 0;
	s->opened = false;
	s->second = rc->next_second;
	s->lost = s->wmore = false;
	s->prog = !rc->stream && !s->second &&
		  !(fr->flags & (FR_FRAME_ZSTD | FR_FRAME_REF));
	s->busy = s->spool = s->hashing = s->x_valid = false;
	s->result = s->err = 0; /* the slot's last frame may have failed */
	s->n_ops = s->pending = 0;
	s->got = s->opened_to = s->from;
	s->hashed = 0;
	if (s->h.state)
		fr_hasher_reset(&s->h);
	fr_extent_iter_init(&s->it, &rc->pkg.m, fr->index);
	if (!rc->stream)
		memcpy(s->tags, rc->hdr + rc->next_tags,
		       (size_t)(fr_chunk_count(fr->stored_len) -
				s->from / fr_chunk_size(fr->stored_len)) *
			       FR_SEAL_TAG);
	rc->cur = si;
	rc->pay_got = rc->pay_open = 0;
	rc->rs = RS_PAYLOAD;
	if (rc->cont_buf) { /* a continued frame: its kept prefix first */
		memcpy(payload_at(rc, s), rc->cont_buf + FR_FRAME_HDR,
		       rc->cont_off);
		rc->pay_got = rc->pay_open = rc->cont_off;
		free(rc->cont_buf);
		rc->cont_buf = NULL;
		if (s->prog) /* plaintext already: written at once */
			progress(rc, si);
	}
	if (rc->stream) { /* its payload comes in PIECE messages */
		rc->rs = RS_MSGHDR;
		arm_recv(rc);
		return;
	}
	rc->pay_want = fr->stored_len;
	if (s->prog)
		recv_part(rc);
	else
		recv_more(rc, payload_at(rc, s) + rc->pay_got,
			  fr->stored_len - rc->pay_got);
}

/* ---- partial frames: what a dropped connection leaves ----------------------- */

/* Keeping less than this is not worth a file. */
#define PARTIAL_MIN 4096u

static void spool_path(const struct rconn *rc, uint32_t seg, char *out,
		       size_t cap)
{
	fr_path_fmt(out, cap, "%s/frame-%u", rc->pkg.dir, seg);
}

/*
 * The connection died mid-payload (a dropped line): keep the frame's
 * header and the bytes that came, durably, so that the next session can
 * take only the rest (SEGMENT_CONT) instead of the whole frame again.
 */
static void spool_write(struct rconn *rc, const struct rslot *s, uint32_t got,
			bool stream)
{
	char p[1300];

	if (got < PARTIAL_MIN)
		return;
	size_t len = FR_FRAME_HDR + got;
	uint8_t *b = malloc(len);
	if (!b)
		return;
	memcpy(b, s->fhdr, FR_FRAME_HDR);
	memcpy(b + FR_FRAME_HDR, payload_at(rc, s), got);
	spool_path(rc, s->f.index, p, sizeof(p));
	int w = fr_write_file_atomic(p, b, len);
	if (w == 0 && stream)
		fr_log(FR_LOG_INFO,
		       "%s: kept %u bytes of segment %u's streamed frame for "
		       "the next session",
		       rc->who, got, s->f.index);
	else if (w == 0)
		fr_log(FR_LOG_INFO,
		       "%s: kept %u of the %u bytes of segment %u's frame for "
		       "the next session",
		       rc->who, got, s->f.stored_len, s->f.index);
	free(b);
}

/* A frame's whole chunks that came: those a worker opened, and the rest
 * opened here (a cut line is rare), up to one that does not open. */
static void spool_opened(struct rconn *rc, int si)
{
	struct rslot *s = &rc->slots[si];
	uint32_t c = fr_chunk_size(s->f.stored_len), got = s->opened_to;

	s->spool = false;
	if (s->result == 0 && s->got > got)
		got = fr_chunks_open_prefix(
			&s->key, s->fhdr, payload_at(rc, s), got, s->got,
			s->f.stored_len,
			s->tags + (size_t)((got - s->from) / c) * FR_SEAL_TAG);
	s->opened_to = got;
	spool_write(rc, s, got, false);
}

static void spool_partial(struct rconn *rc)
{
	struct rslot *s = &rc->slots[rc->cur];

	if (!rc->stream && rc->pay_got >= s->f.stored_len)
		return;
	/* only what opened: a stream's whole pieces, a frame's whole
	 * chunks */
	if (rc->stream) {
		spool_write(rc, s, rc->pay_open, true);
		return;
	}
	s->got = rc->pay_got;
	if (s->busy) /* a worker is opening some: once it is back */
		s->spool = true;
	else
		spool_opened(rc, rc->cur);
}


/* The partial frames kept for segments not held yet (stale ones go). */
static uint32_t load_partials(struct rconn *rc, struct fr_partial *out)
{
	const struct fr_manifest *m = &rc->pkg.m;
	DIR *d = opendir(rc->pkg.dir);
	struct dirent *de;
	uint32_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		unsigned seg;
		char extra, p[1300];
		if (sscanf(de->d_name, "frame-%u%c", &seg, &extra) != 1)
			continue;
		spool_path(rc, seg, p, sizeof(p));
		uint8_t h[FR_FRAME_HDR];
		struct fr_frame f;
		struct stat st;
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		bool keep = fd >= 0 && n < FR_PARTIAL_MAX &&
			    seg < m->n_segments && !rc->pkg.j.have[seg] &&
			    fstat(fd, &st) == 0 &&
			    (uint64_t)st.st_size > FR_FRAME_HDR &&
			    pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
			    fr_frame_unpack_wire(&f, h) == 0 &&
			    f.index == seg &&
			    (!(f.flags & FR_FRAME_REF) ||
			     (f.ref != seg && f.ref < m->n_segments)) &&
			    !memcmp(f.pkg, m->lid, FR_HASH_LEN) &&
			    (uint64_t)st.st_size - FR_FRAME_HDR < fr_frame_payload_max(&f);
		if (fd >= 0)
			close(fd);
		if (keep) {
			out[n].index = seg;
			out[n].got = (uint32_t)(st.st_size - FR_FRAME_HDR);
			memcpy(out[n].hdr, h, FR_FRAME_HDR);
			n++;
		}
		if (!keep)
			unlink(p);
	}
	closedir(d);
	return n;
}

/* Forget the partial frame kept for seg, if this session listed one. */
static void drop_kept(struct rconn *rc, uint32_t seg)
{
	for (uint32_t k = 0; k < rc->n_kept; k++)
		if (rc->kept[k] == seg) {
			char p[1300];
			spool_path(rc, seg, p, sizeof(p));
			unlink(p);
			rc->kept[k] = rc->kept[--rc->n_kept];
			return;
		}
}

/* A SEGMENT_CONT: load the spooled frame it continues, or say why not. */
static int load_cont(struct rconn *rc, const struct fr_frame *f,
		     const uint8_t *fh)
{
	char p[1300];
	uint8_t *b;
	size_t len;

	spool_path(rc, f->index, p, sizeof(p));
	if (fr_read_file(p, FR_FRAME_HDR + (size_t)fr_frame_payload_max(f), &b, &len) < 0)
		return FR_E_PROTOCOL;
	if (len < FR_FRAME_HDR + (size_t)rc->cont_off ||
	    memcmp(b, fh, FR_FRAME_HDR)) {
		free(b);
		return FR_E_PROTOCOL;
	}
	drop_kept(rc, f->index); /* in memory now; a new cut spools it again */
	rc->cont_buf = b;
	return 0;
}

/* ---- copies: segments that came by another link ---------------------------- */

#define SINK_BUF (64u << 10)

/* Read (the next part of) a copy's payload into the sink. */
static void sink_more(struct rconn *rc)
{
	uint32_t len = rc->sink_left < SINK_BUF ? rc->sink_left : SINK_BUF;

	rc->rs = RS_SINK;
	recv_more(rc, rc->sink_buf, len);
}

/*
 * A copy of segment f->index: held here already (held), or being written
 * from another session of this sender (the endgame of a striped send
 * sends the last segments twice on purpose). Its payload (len bytes, or
 * a stream's pieces) is read and dropped; its ACK goes at once when it
 * is held, else when the other session's copy is durable (inbound.c).
 */
static void sink_frame(struct rconn *rc, const struct fr_frame *f, uint32_t len,
		       bool stream, bool held)
{
	fr_log(FR_LOG_DEBUG, "%s: segment %u of '%s' came again (%s); dropping "
	       "this copy",
	       rc->who, f->index, rc->pkg.m.name,
	       held ? "held" : "arriving by another link");
	rc->sink = true;
	rc->sink_seg = f->index;
	rc->pay_got = 0;
	if (held)
		send_ack(rc, f->index, FR_ACK_DURABLE, 0);
	if (stream) { /* its PIECEs and its FIN come as messages */
		rc->stream = true;
		rc->rs = RS_MSGHDR;
		arm_recv(rc);
		return;
	}
	rc->sink_left = len;
	if (len == 0) {
		sink_done(rc);
		return;
	}
	sink_more(rc);
}

/* A copy came of a segment another session claimed: if that session's
 * peer is gone, it is ended (inbound.c); while we wait for such copies,
 * we look again every second. */
static void look_at_claimers(struct rconn *rc)
{
	if (!fr_inbound_end_gone(rc->op, rc->slot) || rc->tick_armed)
		return;
	if (fr_ring_timeout(rc->ring, 1000, UD(K_TICK, 0, 0)) == 0)
		rc->tick_armed = true;
}

/* The copy is all read: back to messages. */
static void sink_done(struct rconn *rc)
{
	rc->sink = false;
	rc->stream = false;
	rc->rs = RS_MSGHDR;
	rc->received_copies++;
	arm_recv(rc);
}

/*
 * A frame's record opened: the frame header (checked before any buffer
 * is committed), a SEGMENT_CONT's offset, the frame's number (its key)
 * and, for a whole frame, the tags of the chunks to come.
 */
static void on_frame_header(struct rconn *rc)
{
	struct fr_frame f;
	const struct fr_manifest *m = &rc->pkg.m;
	const uint8_t *fh = rc->hdr + FR_MSG_HDR;
	struct fr_frame_rec fr;
	/* FERRY_REFUSE_STREAM: answer as a ferry from before streamed
	 * frames did (the tests of the sender's fallback) */
	int r = fr_frame_msg_parse(rc->hdr, !rc->refuse_stream, m, &f);

	rc->begun++;
	if (r == FR_E_WRONG_PACKAGE) {
		fail(rc, r, "frame from %s: %s", rc->who, fr_strerror(r));
		return;
	}
	if (r == FR_E_BAD_INDEX && f.index >= m->n_segments) {
		fail(rc, r, "frame from %s: segment %u of %u", rc->who,
		     f.index, m->n_segments);
		return;
	}
	if (r == FR_E_BAD_INDEX) {
		fail(rc, r,
		     "frame from %s: segment %u is compressed against segment "
		     "%u of %u",
		     rc->who, f.index, f.ref, m->n_segments);
		return;
	}
	if (r < 0) {
		fail(rc, r, "corrupt frame header from %s: %s", rc->who,
		     fr_strerror(r));
		return;
	}
	r = fr_frame_rec_parse(rc->hdr, rc->cont, &f, m, &fr);
	if (r == FR_E_SEALED) { /* the PAYLOAD header was changed */
		sealed_fail(rc);
		return;
	}
	if (r < 0) {
		fail(rc, FR_E_RAW_LENGTH,
		     "frame from %s: segment %u has the wrong length", rc->who,
		     f.index);
		return;
	}
	uint32_t off = fr.off;
	bool stream = f.flags & FR_FRAME_STREAM;
	/* (a segment this session is writing is claimed by it: AGAIN) */
	/* claimed by another session: that one's peer may be gone (a
	 * sender killed and resumed at once, a line that dropped); told to
	 * stop, it lets go in a moment, and this copy is written instead of
	 * being sent again (inbound.c) */
	int cl = fr_inbound_claim_wait(rc->op, rc->slot, f.index,
				       CLAIM_WAIT_MS, !rc->cont);
	if (cl == FR_IN_AGAIN || rc->taken[f.index]) {
		if (cl == FR_IN_SECOND)
			fr_inbound_unclaim(rc->op, rc->slot, f.index);
		fail(rc, FR_E_PROTOCOL, "%s sent segment %u again while it was "
		     "still being written", rc->who, f.index);
		return;
	}
	if (cl != FR_IN_MINE && cl != FR_IN_SECOND) {
		/* held, or arriving by another link */
		sink_frame(rc, &f, stream ? 0 : f.stored_len - off, stream,
			   cl == FR_IN_HELD);
		if (cl == FR_IN_ELSEWHERE)
			look_at_claimers(rc);
		return;
	}
	/* a copy racing the session still receiving it (a slow link): it
	 * is received whole, and written if it is first */
	rc->next_second = cl == FR_IN_SECOND;
	if (rc->cont) {
		rc->cont_off = off;
		if (load_cont(rc, &f, fh) < 0) {
			fail(rc, FR_E_PROTOCOL,
			     "%s continued segment %u at byte %u, but no such "
			     "part of it is kept here",
			     rc->who, f.index, off);
			return;
		}
		if (stream)
			fr_log(FR_LOG_INFO,
			       "%s: segment %u's streamed frame resumes at "
			       "byte %u",
			       rc->who, f.index, off);
		else
			fr_log(FR_LOG_INFO,
			       "%s: segment %u resumes at byte %u of %u",
			       rc->who, f.index, off, f.stored_len);
	} else if (!rc->next_second) {
		drop_kept(rc, f.index); /* a whole frame replaces it */
	}
	if ((r = fr_frame_key(&rc->ch.rx, rc->ch.aead, fr.no, &rc->next_key)) < 0) {
		fail(rc, r, "cannot derive a frame's key: %s", fr_strerror(r));
		return;
	}
	rc->next_tags = fr.tags_at;
	rc->taken[f.index] = 1;
	rc->stream = stream; /* every check passed */
	memcpy(rc->fhdr, fh, FR_FRAME_HDR);
	rc->next = f;
	rc->rs = RS_WAITBUF;
	arm_recv(rc);
}

/* The frame's payload is all here: check it, and write it. */
static void payload_done(struct rconn *rc)
{
	if (rc->slots[rc->cur].f.flags & FR_FRAME_REF)
		check_ref(rc, rc->cur);
	else
		verify(rc, rc->cur);
}

/* The rest of a record: len bytes and its tag (and extra bytes after
 * it), into hdr. */
static void recv_record(struct rconn *rc, uint32_t len, uint32_t extra)
{
	rc->rs = RS_RECORD;
	rc->hdr_want = FR_MSG_HDR + len + FR_SEAL_TAG + extra;
	recv_more(rc, rc->hdr + rc->hdr_got, rc->hdr_want - rc->hdr_got);
}

/* A stream's PIECE or FIN opens under its frame's key, numbered. */
static int open_part(struct rconn *rc, uint8_t *body, uint32_t len,
		     const uint8_t *tag)
{
	struct rslot *s = &rc->slots[rc->cur];
	uint8_t ad[FR_MSG_HDR + FR_FRAME_HDR];

	memcpy(ad, rc->hdr, FR_MSG_HDR);
	memcpy(ad + FR_MSG_HDR, s->fhdr, FR_FRAME_HDR);
	return fr_aead_open(&s->key, 0, s->part++, body, len, ad, sizeof(ad),
			    tag);
}

/* Inside a streamed frame only its PIECEs and its FIN may come. */
static void stream_msg(struct rconn *rc, uint32_t type, uint32_t len)
{
	if (rc->sink) { /* a copy's pieces: read, dropped */
		uint32_t raw = rc->pkg.m.segments[rc->sink_seg].length;
		int k = fr_piece_check(type, len, raw, rc->pay_got);
		if (k == FR_MSG_PIECE) {
			rc->pay_got += len;
			rc->sink_left = len;
			if (len)
				sink_more(rc);
			else
				piece_tag(rc);
		} else if (k == FR_MSG_FIN) {
			recv_record(rc, len, 0);
		} else {
			sealed_fail(rc);
		}
		return;
	}
	const struct rslot *s = &rc->slots[rc->cur];
	uint32_t room = (uint32_t)fr_seg_bound(s->f.raw_len) - rc->pay_got;

	int k = fr_piece_check(type, len, s->f.raw_len, rc->pay_got);

	if (k == FR_MSG_PIECE) {
		rc->rs = RS_PAYLOAD;
		rc->pay_want = rc->pay_got + len;
		recv_more(rc, payload_at(rc, s) + rc->pay_got, len);
		return;
	}
	if (k == FR_MSG_FIN) {
		recv_record(rc, len, 0);
		return;
	}
	/* the sender seals each message's header with it: one that does
	 * not fit here was altered, replayed or moved on the way */
	fr_log(FR_LOG_DEBUG,
	       "%s sent message type %u of %u bytes inside segment %u's "
	       "streamed frame (at byte %u, room for %u more)",
	       rc->who, type, len, s->f.index, rc->pay_got, room);
	sealed_fail(rc);
}

/* A PIECE's tag came: what it carried is kept only if it opens. */
static void piece_done(struct rconn *rc)
{
	struct rslot *s = &rc->slots[rc->cur];

	if (rc->sink) {
		rc->rs = RS_MSGHDR;
		arm_recv(rc);
		return;
	}

	if (open_part(rc, payload_at(rc, s) + rc->pay_open,
		      rc->pay_got - rc->pay_open, rc->ptag) < 0) {
		/* the pieces before it are authentic: kept for the resume */
		rc->pay_got = rc->pay_open;
		spool_partial(rc);
		sealed_fail(rc);
		return;
	}
	rc->pay_open = rc->pay_got;
	rc->rs = RS_MSGHDR;
	arm_recv(rc);
}

/* FIN: the streamed payload's length, which must be what came. */
static void stream_end(struct rconn *rc)
{
	struct rslot *s = &rc->slots[rc->cur];
	uint8_t *b = rc->hdr + FR_MSG_HDR;

	if (rc->sink) {
		sink_done(rc);
		return;
	}

	if (open_part(rc, b, 4, b + 4) < 0) {
		sealed_fail(rc);
		return;
	}
	uint32_t stored = fr_get32(b);
	if (fr_fin_parse(b, rc->pay_got, &stored) < 0) {
		fail(rc, FR_E_STORED_LENGTH,
		     "%s ended segment %u's streamed frame at %u bytes, but "
		     "%u came",
		     rc->who, s->f.index, stored, rc->pay_got);
		return;
	}
	s->f.stored_len = stored;
	s->opened = true; /* piece by piece */
	rc->stream = false;
	rc->rs = RS_MSGHDR;
	payload_done(rc);
	arm_recv(rc);
}

/* A record is all here: FIN (in a stream), or END or a frame's record,
 * which must open as the next of the sender's messages. */
static void record_done(struct rconn *rc)
{
	uint32_t type = fr_get32(rc->hdr), len = fr_get32(rc->hdr + 4);

	if (rc->stream) {
		stream_end(rc);
		return;
	}
	if (fr_rec_open(&rc->ch, rc->hdr, rc->hdr + FR_MSG_HDR, len,
			rc->hdr + FR_MSG_HDR + len) < 0) {
		sealed_fail(rc);
		return;
	}
	if (type == FR_MSG_END) {
		rc->end_received = true;
		rc->rs = RS_STOP;
		return;
	}
	on_frame_header(rc);
}

/* A message's header: what may come now, and how long it may be. */
static void on_msg_header(struct rconn *rc)
{
	uint32_t type = fr_get32(rc->hdr), len = fr_get32(rc->hdr + 4);

	if (rc->stream) {
		stream_msg(rc, type, len);
		return;
	}
	rc->cont = type == FR_MSG_SEGMENT_CONT;
	uint32_t base = FR_FRAME_HDR + (rc->cont ? 4u : 0u) + 8;
	int k = fr_seg_rec_check(type, len, rc->refuse_stream);
	bool frame = k == FR_MSG_SEGMENT || k == FR_MSG_SEGMENT_CONT;
	if (k < 0) {
		if (rc->refuse_stream) { /* as an older ferry said it */
			fail(rc, FR_E_PROTOCOL,
			     "%s sent message type %u of %u bytes where a "
			     "segment was expected",
			     rc->who, type, len);
			return;
		}
		/* every header is sealed with its message: one that does
		 * not fit here was altered, replayed or moved on the way */
		fr_log(FR_LOG_DEBUG,
		       "%s sent message type %u of %u bytes where a segment "
		       "was expected",
		       rc->who, type, len);
		sealed_fail(rc);
		return;
	}
	/* a whole frame's record (it has tags) comes with the header of
	 * its PAYLOAD */
	recv_record(rc, len, frame && len > base ? FR_MSG_HDR : 0);
}

static void on_recv(struct rconn *rc, int res)
{
	rc->recv_inflight = false;
	if (res <= 0) {
		if (!rc->sink && (rc->rs == RS_PAYLOAD ||
				  (rc->stream && rc->rs != RS_WAITBUF)))
			spool_partial(rc);
		if (atomic_load(&rc->stop))
			fail(rc, -ECONNRESET,
			     "another session from %s took the package over",
			     rc->who);
		else if (res == 0 || res == -ECONNRESET)
			fail(rc, -ECONNRESET,
			     "%s closed the connection mid-transfer", rc->who);
		else
			fail(rc, res, "receive from %s failed: %s", rc->who,
			     fr_strerror(res));
		return;
	}
	if (rc->rs == RS_MSGHDR || rc->rs == RS_RECORD) {
		rc->hdr_got += (uint32_t)res;
		if (rc->hdr_got < rc->hdr_want) {
			recv_more(rc, rc->hdr + rc->hdr_got,
				  rc->hdr_want - rc->hdr_got);
			return;
		}
		if (rc->rs == RS_RECORD)
			record_done(rc);
		else
			on_msg_header(rc);
		return;
	}
	if (rc->rs == RS_SINK) {
		rc->sink_left -= (uint32_t)res;
		if (rc->sink_left)
			sink_more(rc);
		else if (rc->stream)
			piece_tag(rc);
		else
			sink_done(rc);
		return;
	}
	if (rc->rs == RS_PTAG) {
		rc->hdr_got += (uint32_t)res;
		if (rc->hdr_got < FR_SEAL_TAG)
			recv_more(rc, rc->ptag + rc->hdr_got,
				  FR_SEAL_TAG - rc->hdr_got);
		else
			piece_done(rc);
		return;
	}
	if (rc->rs == RS_PAYLOAD) {
		struct rslot *s = &rc->slots[rc->cur];
		rc->pay_got += (uint32_t)res;
		if (s->prog) { /* opened and written as it comes */
			int si = rc->cur;
			s->got = rc->pay_got;
			if (rc->pay_got >= rc->pay_want) {
				rc->rs = RS_MSGHDR;
				s->state = R_WORK;
			}
			progress(rc, si);
			arm_recv(rc);
			return;
		}
		if (rc->pay_got < rc->pay_want) {
			recv_more(rc, payload_at(rc, s) + rc->pay_got,
				  rc->pay_want - rc->pay_got);
			return;
		}
		if (rc->stream) { /* the piece's tag, then the next piece */
			piece_tag(rc);
			return;
		}
		rc->rs = RS_MSGHDR;
		payload_done(rc);
		arm_recv(rc);
	}
}

/*
 * The socket watch fired: the peer closed or reset the connection (a
 * killed sender's kernel does that at once), or a new session of the same
 * sender takes the package over (open_package shut the socket down). The
 * session ends now, even when it was not reading (slots, buffers or the
 * sync window full) or bytes are still unread: nobody waits for them, and
 * the next session must not wait for it. The frame being received is kept
 * as far as it came; what was received whole is made durable and
 * journaled while the session drains.
 */
static void on_hup(struct rconn *rc, int res)
{
	int e = 0;
	socklen_t el = sizeof(e);

	/* after END every frame is here: the package is finished anyway */
	if (rc->error || rc->end_received)
		return;
	/* a raw frame's receive held back (its opening lags) takes what
	 * is queued now, without waiting */
	rc->gone = true;
	if (!rc->recv_inflight && rc->rs == RS_PAYLOAD &&
	    rc->slots[rc->cur].prog)
		recv_part(rc);
	/* a receive in flight may hold bytes of the frame that are not
	 * counted yet: it ends now (shut down for reading), and its
	 * completion keeps what came and ends the session (on_recv) */
	if (rc->recv_inflight) {
		shutdown(rc->sock, SHUT_RD);
		return;
	}
	if (!rc->sink &&
	    (rc->rs == RS_PAYLOAD || (rc->stream && rc->rs != RS_WAITBUF)))
		spool_partial(rc);
	/* an error other than a reset (keepalive or user timeout) */
	if (res > 0 && (res & POLLERR))
		getsockopt(rc->sock, SOL_SOCKET, SO_ERROR, &e, &el);
	if (atomic_load(&rc->stop))
		fail(rc, -ECONNRESET,
		     "another session from %s took the package over", rc->who);
	else if (e && e != ECONNRESET && e != EPIPE)
		fail(rc, -e, "receive from %s failed: %s", rc->who,
		     strerror(e));
	else
		fail(rc, -ECONNRESET, "%s closed the connection mid-transfer",
		     rc->who);
}

/*
 * The session ends: a frame whose receive is over (EOF, error) but whose
 * payload is not all here is dropped, a streamed one between its pieces
 * too, and a frame waiting for it as its reference is refused.
 */
static void drop_receiving(struct rconn *rc)
{
	bool open = !rc->sink && (rc->rs == RS_PAYLOAD ||
				  (rc->stream && rc->rs != RS_WAITBUF));
	int si = rc->cur;

	/* a frame accepted that waited for a buffer: its claim goes */
	if (rc->rs == RS_WAITBUF && !rc->sink && rc->taken[rc->next.index])
		unmark(rc, rc->next.index);
	rc->rs = RS_STOP;
	rc->stream = false;
	if (open && si >= 0 && rc->slots[si].state == R_RECV) {
		struct rslot *s = &rc->slots[si];
		if (s->prog) { /* its writes and its job may be out */
			if (!s->err)
				s->err = -ECANCELED;
			s->state = R_WORK;
			settle(rc, si);
		} else {
			unmark(rc, s->f.index);
			slot_free(rc, si);
		}
	}
	wake_waiting(rc);
}

static bool all_idle(struct rconn *rc)
{
	for (int i = 0; i < RSLOTS; i++)
		if (rc->slots[i].state != R_FREE)
			return false;
	return rc->workers_busy == 0;
}

/* One completion. While draining, a receive only ends the stream. */
static void dispatch(struct rconn *rc, const struct fr_cqe *c, bool draining)
{
	switch (UD_KIND(c->ud)) {
	case K_RECV:
		if (!draining) {
			on_recv(rc, c->res);
			break;
		}
		rc->recv_inflight = false;
		drop_receiving(rc);
		break;
	case K_WRITE:
		on_write(rc, UD_SLOT(c->ud), UD_X(c->ud), c->res);
		break;
	case K_EVENT:
		on_worker_done(rc);
		fr_ring_read(rc->ring, rc->done.efd, -1, &rc->done.efd_buf, 8, 0,
			     UD(K_EVENT, 0, 0));
		break;
	case K_SYNCED:
		fr_ring_read(rc->ring, rc->sync_efd, -1, &rc->sync_efd_buf, 8, 0,
			     UD(K_SYNCED, 0, 0));
		if (!draining) {
			arm_recv(rc); /* the sync window may have room */
			tell_complete(rc);
		}
		break;
	case K_HUP:
		if (!draining)
			on_hup(rc, c->res);
		break;
	case K_TICK:
		rc->tick_armed = false;
		if (!draining)
			look_at_claimers(rc);
		break;
	case K_CLAIM:
		on_claim_poll(rc);
		break;
	}
}

static int data_phase(struct rconn *rc)
{
	struct fr_cqe cqes[64];
	size_t bsz = HEADROOM + FR_DIO_ALIGN + fr_seg_bound(rc->pkg.m.seg_size);
	int r;

	for (int i = 0; i < RSLOTS; i++) {
		rc->slots[i].rc = rc;
		rc->slots[i].buf = rc->slots[i].out = -1;
		/* without it, the check hashes the payload in a pass */
		(void)fr_hasher_init(&rc->slots[i].h);
	}
	r = fr_pool_new(&rc->pool, RSLOTS + 2, bsz);
	if (r == 0)
		r = fr_ring_new(&rc->ring, 256);
	if (r == 0)
		r = fr_ring_attach_pool(rc->ring, rc->pool);
	if (r == 0 || r == 1)
		r = fr_doneq_init(&rc->done);
	if (r < 0) {
		fail(rc, r, "cannot set up the data path: %s", fr_strerror(r));
		return r;
	}
	rc->taken = calloc(rc->pkg.m.n_segments + 1, 1);
	rc->written = calloc(rc->pkg.m.n_segments + 1, 1);
	pthread_mutex_lock(&rc->wlock);
	rc->told = calloc(rc->pkg.m.n_segments + 1, 1);
	pthread_mutex_unlock(&rc->wlock);
	rc->report_ns = fr_now_ns();
	rc->refuse_stream = fr_hook_flag("REFUSE_STREAM");
	rc->sink_buf = malloc(SINK_BUF);
	if (rc->sync_efd < 0 || !rc->taken || !rc->written || !rc->told ||
	    !rc->sink_buf) {
		fail(rc, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	fr_ring_read(rc->ring, rc->done.efd, -1, &rc->done.efd_buf, 8, 0,
		     UD(K_EVENT, 0, 0));
	fr_ring_read(rc->ring, rc->sync_efd, -1, &rc->sync_efd_buf, 8, 0,
		     UD(K_SYNCED, 0, 0));
	/* the socket is watched whatever the session waits for: a receive
	 * sees the peer's end only once every byte before it is read */
	fr_ring_poll(rc->ring, rc->sock, POLLRDHUP, UD(K_HUP, 0, 0));
	rc->rs = RS_MSGHDR;
	arm_recv(rc);
	tell_complete(rc); /* (completed before this session's data began) */

	for (;;) {
		if (rc->error)
			break;
		uint32_t backlog;
		int serr = fr_syncer_state(&rc->op->sy, &backlog);
		bool synced = backlog == 0;
		if (serr) {
			fail(rc, serr, "cannot make segments durable in '%s': %s",
			     rc->pkg.dir, fr_strerror(serr));
			break;
		}
		if (rc->end_received && all_idle(rc) && synced)
			break;
		int n = fr_ring_wait(rc->ring, cqes, FR_ARRAY_SIZE(cqes), -1);
		if (n < 0) {
			fail(rc, n, "ring wait: %s", fr_strerror(n));
			break;
		}
		for (int i = 0; i < n; i++)
			dispatch(rc, &cqes[i], false);
	}
	/* Drain: no request may still point into the pool when it goes.
	 * Completed writes still reach the journal below. */
	atomic_store(&rc->ending, true);
	if (rc->error)
		shutdown(rc->sock, SHUT_RD);
	if (!rc->recv_inflight)
		drop_receiving(rc);
	/* Requests and worker jobs always finish; freeing the pool before
	 * they do would hand their memory to someone else. */
	for (int waited = 0; rc->recv_inflight || !all_idle(rc);) {
		int n = fr_ring_wait(rc->ring, cqes, FR_ARRAY_SIZE(cqes), 1000);
		if (n < 0 && n != -EINTR)
			break;
		if (n <= 0) {
			if (++waited % 30 == 0)
				fr_log(FR_LOG_WARN,
				       "%s: still waiting for the disk to finish "
				       "(%d s)",
				       rc->who, waited);
			continue;
		}
		for (int i = 0; i < n; i++)
			dispatch(rc, &cqes[i], true);
	}
	/* FERRY_DRAIN_DELAY_MS: an interrupted session's disk is slow to
	 * finish (the tests of an offer that waits for it) */
	unsigned long delay = fr_hook_num("DRAIN_DELAY_MS", 0);
	if (delay && rc->error)
		usleep((useconds_t)delay * 1000);
	/* what we wrote is journaled (and ACKed) before we leave */
	int serr = fr_syncer_wait(&rc->op->sy, 0);
	if (!rc->error && serr)
		fail(rc, serr, "cannot make segments durable: %s",
		     fr_strerror(serr));
	return rc->error;
}

static void session_body(struct rconn *rc);

/*
 * One session at a time holds a package (its lock, store.c). When a new
 * offer finds the package held, it does not give up at once if the
 * session holding it is on its way out:
 *
 *  - it receives nothing more (its peer closed, it failed, it finalizes):
 *    the offer waits until it has let go;
 *  - it is the same sender's, and its peer is gone: a killed sender's
 *    kernel closed or reset the connection (the session may not have
 *    read that far yet, stalled on its disk), or the peer has sent
 *    nothing for STALE_S and nothing is left unread (a line that dropped
 *    without a reset, where the session would wait for TCP to give up:
 *    keepalives do not start while an ACK of ours is unacknowledged, up
 *    to TCP_USER_TIMEOUT). A sending site runs one transfer of a package
 *    at a time, so the same account offering it again means that the
 *    first sender is gone. That session is told to stop (its socket shut
 *    down, which its socket watch sees); it keeps what it received,
 *    partial frame included, makes durable and journals what it wrote,
 *    and lets go; then the new session opens the package;
 *  - the same sender's session that has received nothing since this
 *    offer came may prove silent: the offer watches it, up to STALE_S.
 *
 * A session still receiving is never ended this way: the offer is
 * refused (-EBUSY, "being received by another session"), as it is when
 * the session holding it is another account's. The kernel's view of the
 * connection (fr_tcp_peer) is read, not the session's: its receives may
 * be megabytes each, and it may not be reading at all.
 */
#define STALE_S 5
#define TAKEOVER_MAX_S 20 /* the longest an offer waits for the holder */
#define CLOSING_MS 1500  /* a same-account holder's peer may be closing */
#define UNLISTED_MS 1000  /* held by a session not listed (yet, or any
			   * more), or by a parcel import */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_gone = PTHREAD_COND_INITIALIZER;
static struct rconn *live_head;

static void live_add(struct rconn *rc)
{
	memcpy(rc->id, rc->pkg.m.lid, FR_HASH_LEN);
	pthread_mutex_lock(&live_lock);
	rc->live_next = live_head;
	live_head = rc;
	rc->live = true;
	pthread_mutex_unlock(&live_lock);
}

/* Unlisted before its package closes: a listed session's manifest is
 * there to read, under live_lock. */
static void live_remove(struct rconn *rc)
{
	if (!rc->live)
		return;
	pthread_mutex_lock(&live_lock);
	for (struct rconn **p = &live_head; *p; p = &(*p)->live_next)
		if (*p == rc) {
			*p = rc->live_next;
			break;
		}
	rc->live = false;
	pthread_mutex_unlock(&live_lock);
}

/* The package's lock is free: wake the offers waiting for it. */
static void live_let_go(void)
{
	pthread_mutex_lock(&live_lock);
	pthread_cond_broadcast(&live_gone);
	pthread_mutex_unlock(&live_lock);
}

/* Wait (live_lock held) until a session lets go, 100 ms at most. */
static void live_wait(void)
{
	struct timespec ts;

	fr_deadline(&ts, CLOCK_REALTIME, 0.1);
	pthread_cond_timedwait(&live_gone, &live_lock, &ts);
}

/*
 * Is session o's peer gone? 1 when its connection closed (why: "WHOSE
 * peer closed the connection") or it is silent for STALE_S with nothing
 * unread (a line that dropped without a reset); 0 when not (the kernel's
 * view of the socket in *tp); -1 when that view cannot be had.
 */
static int peer_gone(const struct rconn *o, struct fr_tcp_peer *tp,
		     const char *whose, char *why, size_t cap)
{
	if (fr_tcp_peer(o->sock, tp) < 0)
		return -1;
	if (tp->closed)
		snprintf(why, cap, "%s peer closed the connection", whose);
	else if (tp->unread == 0 && tp->silent_ms >= STALE_S * 1000u)
		snprintf(why, cap, "silent for %.0f s", tp->silent_ms / 1000.0);
	else
		return 0;
	return 1;
}

/* Session o is told to stop: it keeps what it received and lets go. */
static void stop_session(struct rconn *o)
{
	atomic_store(&o->stop, true);
	shutdown(o->sock, SHUT_RDWR);
}

/* o, the same sender's session holding the package (live_lock held):
 * end it if its peer is gone. true: wait for it. */
static bool take_over(const struct rconn *rc, struct rconn *o,
		      uint64_t waited_ms)
{
	struct fr_tcp_peer tp;
	char why[64];

	int gone = peer_gone(o, &tp, "whose", why, sizeof(why));

	if (gone < 0)
		return false;
	if (gone == 0)
		/* nothing came since this offer did: it may prove silent;
		 * and a killed sender's connection closes only once the
		 * kernel has torn its io_uring down, which can take a
		 * moment */
		return waited_ms < CLOSING_MS ||
		       (tp.unread == 0 && tp.silent_ms >= waited_ms);
	fr_log(FR_LOG_INFO,
	       "%s: package '%s' offered again; ending its session from %s, %s",
	       rc->who, o->pkg.m.name, o->peer, why);
	stop_session(o);
	return true;
}

/*
 * inbound.c asks (the package's lock held): o, a session of the package,
 * claimed segments whose copies came by another link. Were its peer gone
 * (a line that dropped mid-frame, with no reset to tell it), it would
 * hold them for ever: it is told to stop, as take_over does, and its
 * claims go back. The same test as take_over's: closed, or silent for
 * STALE_S with nothing unread.
 */
static bool arrival_gone(void *arg)
{
	struct rconn *o = arg;
	struct fr_tcp_peer tp;
	char why[64];

	if (atomic_load(&o->stop))
		return true;
	if (atomic_load(&o->ending) ||
	    peer_gone(o, &tp, "its", why, sizeof(why)) <= 0)
		return false;
	fr_log(FR_LOG_INFO,
	       "%s: segments of '%s' another link brings are held by the "
	       "session from %s, %s: ending it",
	       o->who, o->pkg.m.name, o->peer, why);
	stop_session(o);
	return true;
}

/* The package is held (-EBUSY since t0): true when the offer should wait
 * a little for the holder and try again, false to refuse it. */
static bool wait_holder(const struct rconn *rc, const uint8_t id[FR_HASH_LEN],
			uint64_t t0)
{
	uint64_t waited_ms = (fr_now_ns() - t0) / 1000000;
	struct rconn *o;
	bool wait = false;

	pthread_mutex_lock(&live_lock);
	for (o = live_head; o && memcmp(o->id, id, FR_HASH_LEN);
	     o = o->live_next)
		;
	if (waited_ms >= TAKEOVER_MAX_S * 1000u)
		wait = false;
	else if (!o)
		wait = waited_ms < UNLISTED_MS;
	else if (atomic_load(&o->ending) || atomic_load(&o->stop))
		wait = true;
	else if (!strcmp(o->who, rc->who))
		wait = take_over(rc, o, waited_ms);
	if (wait)
		live_wait();
	pthread_mutex_unlock(&live_lock);
	return wait;
}

/* o is another session of rc's sender for the listing lid, not told to
 * stop (live_lock held). */
static bool same_sender(const struct rconn *o, const struct rconn *rc,
			const uint8_t lid[FR_HASH_LEN])
{
	return o != rc && !memcmp(o->id, lid, FR_HASH_LEN) &&
	       !strcmp(o->who, rc->who) && !atomic_load(&o->stop);
}

/*
 * The same sender's sessions of the package whose peer is gone (closed,
 * or silent for STALE_S with nothing unread) are told to stop: what they
 * had claimed and not written goes back, to come by this session.
 */
static unsigned end_dead_peers(const struct rconn *rc,
			       const uint8_t lid[FR_HASH_LEN])
{
	unsigned n = 0;

	pthread_mutex_lock(&live_lock);
	for (struct rconn *o = live_head; o; o = o->live_next) {
		struct fr_tcp_peer tp;
		char why[64];
		if (!same_sender(o, rc, lid) ||
		    peer_gone(o, &tp, "whose", why, sizeof(why)) <= 0)
			continue;
		fr_log(FR_LOG_INFO,
		       "%s: package '%s' offered again; ending its session from "
		       "%s, %s",
		       rc->who, o->pkg.m.name, o->peer, why);
		stop_session(o);
		n++;
	}
	pthread_mutex_unlock(&live_lock);
	return n;
}

/* The sessions told to stop have let go (their partial frame kept, what
 * they wrote journaled), so that this one's HAVE counts it: at most
 * TAKEOVER_MAX_S. */
static void wait_stopped(const uint8_t lid[FR_HASH_LEN])
{
	uint64_t t0 = fr_now_ns();

	pthread_mutex_lock(&live_lock);
	for (;;) {
		bool left = true;
		for (struct rconn *o = live_head; o; o = o->live_next)
			if (!memcmp(o->id, lid, FR_HASH_LEN) &&
			    atomic_load(&o->stop))
				left = false;
		if (left || fr_now_ns() - t0 > TAKEOVER_MAX_S * 1000000000ull)
			break;
		live_wait();
	}
	pthread_mutex_unlock(&live_lock);
}

/* Is there a session of the same sender and package that has received
 * nothing since this offer began to wait (waited_ms ago, and 50 ms
 * before) and whose peer is not known gone? (live_lock held) */
static bool peers_unsure(const struct rconn *rc, const uint8_t lid[FR_HASH_LEN],
			 uint64_t waited_ms)
{
	for (struct rconn *o = live_head; o; o = o->live_next) {
		struct fr_tcp_peer tp;
		char why[64];
		if (!same_sender(o, rc, lid) || atomic_load(&o->ending))
			continue;
		/* (bytes within the last 50 ms: alive, a killed sender's
		 * go quiet at its kill, longer ago than a new one takes to
		 * start and offer) */
		if (peer_gone(o, &tp, "whose", why, sizeof(why)) == 0 &&
		    tp.silent_ms >= waited_ms + 50)
			return true;
	}
	return false;
}

/*
 * Before this offer is answered, the same sender's other sessions of the
 * package must show what they are: alive (bytes came since the offer:
 * another link of a striped send, which this one joins), or gone. A
 * sender killed and started again at once offers while its old
 * connections are still closing (the kernel tears a killed process's
 * io_uring down in its own time): answered then, the offer's HAVE would
 * leave out what those sessions were about to make durable and the frame
 * one of them would keep, and the new sender would send them again. So
 * the offer waits, at most CLOSING_MS, for each to show activity or to
 * close; the ones gone are ended and waited for (their partial frame
 * kept, what they wrote journaled).
 */
static void settle_peers(const struct rconn *rc, const uint8_t lid[FR_HASH_LEN])
{
	uint64_t t0 = fr_now_ns();

	for (;;) {
		if (end_dead_peers(rc, lid))
			wait_stopped(lid);
		uint64_t waited_ms = (fr_now_ns() - t0) / 1000000;
		pthread_mutex_lock(&live_lock);
		bool unsure = waited_ms < CLOSING_MS &&
			      peers_unsure(rc, lid, waited_ms);
		if (unsure)
			live_wait();
		pthread_mutex_unlock(&live_lock);
		if (!unsure)
			break;
	}
}

/* Open the offered package, or join the same sender's sessions that
 * have it open (inbound.c); wait for another account's holder on its way
 * out. */
static int open_package(struct rconn *rc, const uint8_t *mf, uint32_t len,
			char *err, size_t cap)
{
	uint8_t id[FR_HASH_LEN]; /* the package's listing id */
	uint64_t t0 = 0;
	const struct fr_arrival me = {
		.ack = arrival_ack, .wake = arrival_wake, .gone = arrival_gone,
		.arg = rc, .yields = true};
	struct fr_manifest m;
	int r;

	if ((r = fr_manifest_decode(&m, mf, len)) < 0) {
		snprintf(err, cap, "manifest refused: %s", fr_strerror(r));
		return r;
	}
	memcpy(id, m.lid, FR_HASH_LEN);
	fr_manifest_fini(&m);
	/* the same sender's sessions whose peer is gone end first */
	settle_peers(rc, id);
	while ((r = fr_inbound_join(rc->c->store, mf, len, rc->who, &me, &rc->op,
				 &rc->slot, &rc->pkg, err, cap)) == -EBUSY) {
		if (!t0)
			t0 = fr_now_ns();
		if (!wait_holder(rc, id, t0))
			break;
	}
	return r;
}

/*
 * "Busy" after the handshake, while the sender is already sending its
 * offer: closing at once, with the offer unread, would reset the
 * connection, and a reset discards the answer before the sender reads
 * it (it would see a broken pipe, and wait retry-delay). So the rest of
 * what it sends is read and dropped until it closes, for 2 s at most.
 */
static void refuse_busy(struct fr_chan *ch)
{
	struct timeval tv = {.tv_sec = 2};
	char sink[4096];
	int fd = ch->fd;

	fr_send_error(ch, -EBUSY, "receiver busy, try later");
	shutdown(fd, SHUT_WR);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (uint64_t t0 = fr_now_ns(); fr_now_ns() - t0 < 2000000000ull;)
		if (recv(fd, sink, sizeof(sink), 0) <= 0)
			break;
}

static void session(struct rconn *rc)
{
	const struct fr_account *who = NULL;
	char err[512] = "";
	int r;

	fr_chan_plain(&rc->ch, rc->sock);
	r = fr_handshake_server(&rc->ch, rc->c, &who, err, sizeof(err));
	hs_remove(rc);
	if (r < 0) {
		fr_log(FR_LOG_WARN, "refused connection from %s: %s", rc->peer,
		       err[0] ? err : fr_strerror(r));
		return;
	}
	snprintf(rc->who, sizeof(rc->who), "%s", who->code);
	/* only authenticated peers count against max-connections, so
	 * strangers cannot crowd out the sites that may send here */
	if (atomic_fetch_add(&n_sessions, 1) >= rc->c->max_connections) {
		atomic_fetch_sub(&n_sessions, 1);
		fr_log(FR_LOG_WARN,
		       "%s from %s: %d sessions already running "
		       "(max-connections); asked to retry later",
		       rc->who, rc->peer, rc->c->max_connections);
		refuse_busy(&rc->ch);
		return;
	}
	fr_log(FR_LOG_INFO, "%s connected from %s", rc->who, rc->peer);
	session_body(rc);
	atomic_fetch_sub(&n_sessions, 1);
}

/* A table against a package another session completed. */
static int table_matches(const struct fr_manifest *m, const uint8_t *tab,
			 uint32_t len, char *err, size_t cap)
{
	if (len != m->n_segments * FR_HASH_LEN) {
		snprintf(err, cap, "segment table of %u bytes for %u segments",
			 len, m->n_segments);
		return FR_E_PROTOCOL;
	}
	for (uint32_t i = 0; i < m->n_segments; i++)
		if (memcmp(tab + (size_t)i * FR_HASH_LEN, m->segments[i].hash,
			   FR_HASH_LEN)) {
			snprintf(err, cap, "segment %u differs from the package "
					   "another session completed", i);
			return FR_E_HASH_MISMATCH;
		}
	return 0;
}

/*
 * After END, the sender's segment table (TABLE): every hash it made as it
 * read its source, which each segment held must match. The manifest is
 * then complete and its hash the package id.
 */
static int take_table(struct rconn *rc, bool failed)
{
	char err[512] = "";
	uint8_t *tab = NULL;
	uint32_t type, len;
	struct timeval tv = {.tv_sec = 30};
	int r;

	setsockopt(rc->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r = fr_msg_recv(&rc->ch, &type, &tab, &len,
			rc->pkg.m.n_segments * FR_HASH_LEN, err, sizeof(err));
	if (r == FR_E_SEALED) {
		sealed_fail(rc);
		free(tab);
		return FR_E_SEALED;
	}
	if (r < 0 || type != FR_MSG_TABLE) {
		fail(rc, r < 0 ? r : FR_E_PROTOCOL,
		     "%s: no segment table after END: %s", rc->who,
		     r < 0 ? (err[0] ? err : fr_strerror(r))
			   : "another message came");
		free(tab);
		return rc->error;
	}
	if (failed)
		r = FR_E_INCOMPLETE, snprintf(err, sizeof(err),
			 "package '%s' could not be completed by another "
			 "session", rc->pkg.m.name);
	else if (rc->op->pkg.m.open) /* the first to finish settles it */
		r = fr_store_settle(&rc->op->pkg, tab, len, err, sizeof(err));
	else
		r = table_matches(&rc->op->pkg.m, tab, len, err, sizeof(err));
	free(tab);
	if (r < 0)
		fail(rc, r, "%s: %s", rc->who, err);
	return r;
}

/*
 * END came: the package is complete once its segment table settles it.
 * The first session of the package to get here finishes it; another
 * (the same sender's other link, or a second sender of the same
 * package) waits for that and checks its table against the result.
 */
static void complete(struct rconn *rc)
{
	char err[512] = "";
	int r;

	if (!fr_inbound_finish_begin(rc->op)) {
		bool ok = fr_inbound_finish_wait(rc->op);
		if (take_table(rc, !ok) == 0) {
			fr_log(FR_LOG_INFO,
			       "%s: package '%s' completed by another session "
			       "(%u segments received in this one)",
			       rc->who, rc->pkg.m.name, rc->received);
			send_locked(rc, FR_MSG_DONE, NULL, 0);
		}
		return;
	}
	r = take_table(rc, false);
	if (r == FR_HAVE_COMPLETE) {
		/* the package in place is the one offered: nothing moves */
		fr_store_discard(&rc->op->pkg);
		fr_inbound_finish_end(rc->op, true);
		fr_log(FR_LOG_INFO,
		       "%s: package '%s' is already here, complete: the "
		       "sender's hashes are those of %s/packages/%s",
		       rc->who, rc->pkg.m.name, rc->c->store, rc->pkg.m.name);
		send_locked(rc, FR_MSG_DONE, NULL, 0);
		return;
	}
	if (r == 0) {
		r = fr_store_finalize(&rc->op->pkg, rc->c->store, err,
				      sizeof(err));
		if (r < 0)
			fail(rc, r, "cannot complete '%s': %s", rc->pkg.m.name,
			     err);
	}
	fr_inbound_finish_end(rc->op, r == 0);
	if (r == 0) {
		fr_log(FR_LOG_INFO,
		       "%s: package '%s' complete and verified -> "
		       "%s/packages/%s (%u segments received, %u re-sent)",
		       rc->who, rc->pkg.m.name, rc->c->store, rc->pkg.m.name,
		       rc->received, rc->corrupt);
		send_locked(rc, FR_MSG_DONE, NULL, 0);
	}
}

static void session_body(struct rconn *rc)
{
	char err[512] = "";
	uint8_t *mf = NULL;
	uint32_t type, len;
	int r;

	struct timeval tv = {.tv_sec = 120};
	setsockopt(rc->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r = fr_msg_recv(&rc->ch, &type, &mf, &len, FR_MANIFEST_MAX + 64, err,
			sizeof(err));
	tv.tv_sec = 0;
	setsockopt(rc->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (r == 0 && type == FR_MSG_PARCEL) {
		fr_parcel_serve_register(rc->c, &rc->ch, rc->who, mf, len);
		free(mf);
		return;
	}
	if (r == 0 && type == FR_MSG_PARCEL_QUERY) {
		fr_parcel_serve_query(rc->c, &rc->ch, rc->who, mf, len);
		free(mf);
		return;
	}
	if (r == 0 && type == FR_MSG_IMPORT) {
		fr_parcel_serve_import(rc->c, &rc->ch, rc->who, mf, len);
		free(mf);
		return;
	}
	/* ferry bench link (bench.c); FERRY_REFUSE_BENCH: answer as a
	 * ferry from before it did (test_bench_link) */
	if (r == 0 && type == FR_MSG_BENCH && !fr_hook_flag("REFUSE_BENCH")) {
		fr_bench_serve(rc->c, &rc->ch, rc->who, rc->peer, mf, len);
		free(mf);
		return;
	}
	if (r == 0 && type == FR_MSG_PARCEL_WITHDRAW) {
		fr_parcel_serve_withdraw(rc->c, &rc->ch, rc->who, mf, len);
		free(mf);
		return;
	}
	/* FERRY_REFUSE_OFFER_Z: answer as a ferry from before OFFER_Z did
	 * (the tests of the sender's fallback) */
	if (r == 0 && type == FR_MSG_OFFER_Z && !fr_hook_flag("REFUSE_OFFER_Z")) {
		/* a slow link's sender compressed the manifest */
		uint8_t *raw;
		int z = fr_offer_z_unpack(mf, len, &raw, &len);
		free(mf);
		mf = NULL;
		if (z < 0) {
			fr_log(FR_LOG_WARN, "%s: compressed offer refused: %s",
			       rc->who, fr_strerror(z));
			fr_send_error(&rc->ch, z,
				      "compressed manifest refused");
			return;
		}
		fr_log(FR_LOG_DEBUG, "%s: compressed manifest, %u bytes", rc->who,
		       len);
		mf = raw;
		type = FR_MSG_OFFER;
	}
	if (r == FR_E_SEALED) {
		fr_log(FR_LOG_ERROR,
		       "message authentication failed from %s at %s: session "
		       "dropped",
		       rc->who, rc->peer);
		free(mf);
		return;
	}
	if (r < 0 || type != FR_MSG_OFFER) {
		fr_log(FR_LOG_WARN, "%s: no offer: %s", rc->who,
		       r < 0 ? (err[0] ? err : fr_strerror(r))
			     : "unexpected message");
		if (r == 0)
			fr_send_error(&rc->ch, FR_E_PROTOCOL, "expected OFFER");
		free(mf);
		return;
	}
	rc->sync_efd = eventfd(0, EFD_CLOEXEC);
	r = rc->sync_efd < 0 ? -errno
			     : open_package(rc, mf, len, err, sizeof(err));
	free(mf);
	if (r < 0) {
		fr_log(FR_LOG_ERROR, "%s: %s", rc->who, err);
		fr_send_error(&rc->ch, r, err);
		return;
	}
	char size[32];
	fr_human_bytes(rc->pkg.m.total_size, size, sizeof(size));
	if (r == FR_HAVE_COMPLETE) {
		fr_log(FR_LOG_INFO,
		       "%s: package '%s' (%s) is already here, complete",
		       rc->who, rc->pkg.m.name, size);
		fr_send_have(&rc->ch, FR_HAVE_COMPLETE, rc->pkg.j.have,
			     rc->pkg.m.n_segments, NULL, 0);
		fr_store_close(&rc->pkg);
		return;
	}
	live_add(rc);
	uint32_t held = rc->op->pkg.j.n_have;
	unsigned others = fr_inbound_arrivals(rc->op) - 1;
	fr_log(FR_LOG_INFO,
	       "%s: package '%s' (%s, %u segments): %u held, %u to receive%s",
	       rc->who, rc->pkg.m.name, size, rc->pkg.m.n_segments, held,
	       rc->pkg.m.n_segments - held,
	       others ? " (shared with other sessions of this sender)"
		      : "");
	struct fr_partial parts[FR_PARTIAL_MAX];
	uint32_t np = load_partials(rc, parts);
	for (rc->n_kept = 0; rc->n_kept < np; rc->n_kept++)
		rc->kept[rc->n_kept] = parts[rc->n_kept].index;
	fr_send_have(&rc->ch, FR_HAVE_PARTIAL, rc->pkg.j.have,
		     rc->pkg.m.n_segments, parts, np);
	if (rc->pkg.j.n_unconfirmed)
		fr_log(FR_LOG_INFO,
		       "%s: %u more segments of '%s' held, unconfirmed by the "
		       "offer: their hashes go to the sender",
		       rc->who, rc->pkg.j.n_unconfirmed, rc->pkg.m.name);
	fr_send_held(&rc->ch, rc->pkg.j.unconfirmed, rc->pkg.j.have,
		     rc->pkg.m.n_segments);

	r = data_phase(rc);
	atomic_store(&rc->ending, true);
	if (r == 0)
		complete(rc);
	if (rc->error == -ECONNRESET && r != 0 &&
	    fr_inbound_completing(rc->op)) {
		/* a striped sender's other lanes end once one is DONE */
		fr_log(FR_LOG_INFO,
		       "%s: %s, as another session completes package '%s'; "
		       "%u segments received in this one",
		       rc->who, rc->err, rc->pkg.m.name, rc->received);
	} else if (rc->error == -ECONNRESET && rc->begun == 0 &&
		   !atomic_load(&rc->stop)) {
		/* nothing came after the offer: `ferry plan` asks this way,
		 * a sender stopped at once too; not a transfer cut short */
		fr_log(FR_LOG_INFO,
		       "%s: %s closed the connection after the offer's answer, "
		       "having sent nothing (as ferry plan does); %u of %u "
		       "segments of '%s' held",
		       rc->who, rc->who, rc->op->pkg.j.n_have,
		       rc->pkg.m.n_segments, rc->pkg.m.name);
	} else if (rc->error) {
		bool quiet = rc->error == -ECONNRESET;
		fr_log(quiet ? FR_LOG_INFO : FR_LOG_ERROR,
		       "%s: %s; %u segments received in this session; %u of "
		       "%u segments of '%s' held, resumable",
		       rc->who, rc->err, rc->received, rc->op->pkg.j.n_have,
		       rc->pkg.m.n_segments, rc->pkg.m.name);
		if (!quiet) {
			pthread_mutex_lock(&rc->wlock);
			fr_send_error(&rc->ch, rc->error, rc->err);
			pthread_mutex_unlock(&rc->wlock);
		}
	}
	/* nothing is in flight any more: let go of the package first, a
	 * new session may be waiting for it */
	live_remove(rc);
	fr_store_close(&rc->pkg);
	fr_inbound_leave(rc->op, rc->slot);
	live_let_go();
	fr_ring_free(rc->ring);
	fr_pool_free(rc->pool);
	if (rc->done.efd > 0)
		fr_doneq_fini(&rc->done);
	for (int i = 0; i < RSLOTS; i++) {
		free(rc->slots[i].ops);
		fr_hasher_fini(&rc->slots[i].h);
	}
	free(rc->taken);
	free(rc->written);
	pthread_mutex_lock(&rc->wlock);
	free(rc->told);
	rc->told = NULL;
	pthread_mutex_unlock(&rc->wlock);
	free(rc->sink_buf);
	free(rc->cont_buf);
}

static void *conn_main(void *arg)
{
	struct rconn *rc = arg;

	session(rc);
	fr_chan_wipe(&rc->ch);
	close(rc->sock);
	if (rc->sync_efd >= 0)
		close(rc->sync_efd);
	pthread_mutex_destroy(&rc->wlock);
	free(rc);
	atomic_fetch_sub(&n_conns, 1);
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* One receiver per store: <store>/serve.lock, flock'd for the life of
 * `ferry serve`, names its pid. The fd, or a code said (another runs:
 * -EBUSY). */
static int serve_lock(const char *store)
{
	char path[1200], text[64] = "";
	int fd;

	if (fr_path_fmt(path, sizeof(path), "%s/serve.lock", store))
		return -ENAMETOOLONG;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		int e = -errno;
		fr_log(FR_LOG_ERROR, "cannot open '%s': %s", path,
		       fr_strerror(e));
		return e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
		text[n > 0 ? n : 0] = '\0';
		text[strcspn(text, "\n")] = '\0';
		fr_log(FR_LOG_ERROR,
		       "another ferry serve (%s) receives into the store '%s': "
		       "stop it first; one store has one receiver",
		       text[0] ? text : "its pid unknown", store);
		close(fd);
		return -EBUSY;
	}
	int n = snprintf(text, sizeof(text), "pid=%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)n, 0) != n)
		fr_log(FR_LOG_WARN, "cannot write '%s': %s", path,
		       strerror(errno));
	return fd;
}

int fr_serve(const struct fr_config *c)
{
	struct sigaction sa = {0};
	int lfd, r;

	if (!c->listen[0]) {
		fr_log(FR_LOG_ERROR, "config '%s': [site] has no listen address",
		       c->path);
		return FR_E_CONFIG;
	}
	char err[1400];
	if (fr_store_check(c->store, err, sizeof(err)) < 0) {
		fr_log(FR_LOG_ERROR, "config '%s': %s", c->path, err);
		return FR_E_CONFIG;
	}
	int slk = serve_lock(c->store);
	if (slk < 0)
		return slk;
	signal(SIGPIPE, SIG_IGN);
	sa.sa_handler = on_signal; /* no SA_RESTART: accept() must wake */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((r = fr_workq_start(c->workers)) < 0)
		return r;
	lfd = fr_tcp_listen(c->listen);
	if (lfd < 0) {
		fr_log(FR_LOG_ERROR, "cannot listen on %s: %s%s%s", c->listen,
		       fr_strerror(lfd),
		       lfd == FR_E_NO_HOST ? "; check listen in " : "",
		       lfd == FR_E_NO_HOST ? c->path : "");
		/* a name that does not exist will not by trying again */
		return lfd == FR_E_NO_HOST ? FR_E_CONFIG : lfd;
	}
	fr_log(FR_LOG_INFO, "site %s receiving on %s into %s", c->code,
	       c->listen, c->store);
	while (!stopping) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fr_log(FR_LOG_ERROR, "accept: %s", strerror(errno));
			break;
		}
		struct rconn *rc = calloc(1, sizeof(*rc));
		if (!rc) {
			close(fd);
			continue;
		}
		rc->c = c;
		rc->sock = fd;
		rc->sync_efd = -1;
		char host[64] = "?";
		int port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
			port = ntohs(in->sin6_port);
		}
		snprintf(rc->peer, sizeof(rc->peer), "%s:%d", host, port);
		snprintf(rc->who, sizeof(rc->who), "?");
		pthread_mutex_init(&rc->wlock, NULL);
		fr_sock_tune(fd);
		/* What the kernel holds for us is lost if we die: cap it at
		 * 2 MiB (the kernel doubles it: enough for 1 Gbit/s at 30 ms) instead of letting
		 * autotuning grow it to tcp_rmem's maximum. */
		int rcvbuf = 2 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		/* a bound on threads: the sessions are bounded after the
		 * handshake (max-connections), the handshakes by hs_add */
		if (atomic_fetch_add(&n_conns, 1) >=
		    c->max_connections + 2 * MAX_HANDSHAKES) {
			atomic_fetch_sub(&n_conns, 1);
			fr_log(FR_LOG_WARN,
			       "refused connection from %s: too many connections",
			       rc->peer);
			struct fr_chan plain;
			fr_chan_plain(&plain, fd);
			fr_send_error(&plain, -EBUSY, "receiver busy, try later");
			close(fd);
			free(rc);
			continue;
		}
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		hs_add(rc);
		if (pthread_create(&t, &at, conn_main, rc) != 0) {
			hs_remove(rc);
			atomic_fetch_sub(&n_conns, 1);
			close(fd);
			free(rc);
		}
		pthread_attr_destroy(&at);
	}
	close(lfd);
	fr_log(FR_LOG_INFO, "stopping; interrupted transfers resume later");
	return 0;
}
