/*
 * lan.c - the standard sender: segments over one TCP connection.
 *
 * One I/O thread owns the ring and the socket; the frame producer
 * (pipe/produce.c) reads on that ring into this connection's pool, and
 * the shared workers hash and compress. A segment's life, with no byte
 * copied between stages:
 *
 *   READ (fixed) of each extent into buffer B at HEADROOM (plus the
 *      segment's shift: the block-aligned middle of a large extent is
 *      read O_DIRECT, past the page cache, the rest buffered), by the
 *      producer's asynchronous reader
 *   -> read_back, here: the level, and whether the frame streams, goes
 *      on from where the receiver kept it, or is compared with a copy
 *      the receiver holds
 *   -> worker (work_segment): the producer's step (XXH3 check against
 *      the manifest, zstd into buffer C at HEADROOM when the level says
 *      so, B back to the pool), then the chunks sealed in place and the
 *      message and frame headers written just before the payload
 *   -> SEND (or SEND_ZC) of header+payload straight from the buffer
 *   -> the buffer returns to the pool when the send (or its zero-copy
 *      notification) completes
 *   -> the receiver's ACK says the segment is durable there.
 *
 * Memory is the pool: SLOTS read buffers plus one compression buffer per
 * worker, whatever the package size. A NAK (the receiver found the frame
 * corrupt) puts the segment back in the queue.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "out/fr_out.h"

#define SLOTS 6
#define HEADROOM 4096u
/* a frame's record: message header, frame header, offset (SEGMENT_CONT),
 * frame number, then (a whole frame) its chunks' tags; the record's tag;
 * a whole frame's PAYLOAD header */
#define ENV_BASE (FR_MSG_HDR + FR_FRAME_HDR + 8 + FR_SEAL_TAG + FR_MSG_HDR)
#define ENV_MAX (ENV_BASE + 4 + FR_CHUNKS_MAX * FR_SEAL_TAG)
_Static_assert(ENV_MAX <= HEADROOM, "a frame's record fits before it");
#define MAX_RESENDS 5
#define SAME_AS_HELD 1 /* a worker's result: the receiver holds it already */
#define NOTSENT_LOWAT (512u << 10)
#define SENDERS_EVERY_NS 1000000000ull

enum { K_READ = 1, K_SEND, K_EVENT, K_ACK, K_TICK, K_PACE };
#define UD(kind, slot, x)                                                     \
	(((uint64_t)(kind) << 56) | ((uint64_t)(slot) << 40) | (uint64_t)(x))
#define UD_KIND(ud) ((int)((ud) >> 56))
#define UD_SLOT(ud) ((int)(((ud) >> 40) & 0xffff))
#define UD_X(ud) ((uint32_t)((ud)&0xffffffffffu))

enum slot_state { S_FREE, S_READING, S_WORKING, S_READY, S_SENDING, S_NOTIF };

struct lan_conn;

/* The output's side of a producer slot (ps, of the same index): what
 * becomes of its frame. */
struct slot {
	struct fr_prod_slot *ps; /* its segment, buffers, reads and frame */
	struct lan_conn *lc;
	int state;
	/* its record (sealed by the I/O thread as it starts to go: its
	 * counter is its place in the stream) and its frame's tags */
	uint8_t *env;
	uint32_t env_body;
	uint32_t cont_off;   /* a SEGMENT_CONT's: the bytes kept there */
	uint8_t tags[FR_CHUNKS_MAX * FR_SEAL_TAG];
	/* sending */
	uint8_t *send_ptr;
	uint32_t send_len, sent;
	int part;            /* the receiver's partial frame of this segment
			      * (-1: none); after the worker, -1 unless it
			      * goes as a SEGMENT_CONT of it */
	int notifs;
	bool send_done;
	/* a streamed frame (stream): the line takes its pieces while the
	 * worker still compresses the rest. avail is how much of the
	 * message stream from send_ptr is ready; skip, the payload bytes
	 * the receiver kept of it and that are not sent again. */
	bool probe;          /* the receiver holds a copy the offer could
			      * not confirm (HELD): sent only if it differs */
	bool has_ref;        /* compressed against segment ref, which the
			      * receiver holds or gets first */
	uint32_t ref;
	bool dropped;        /* its reference went bad: not to be sent */
	bool stream;
	bool queued;         /* in the send queue (a stream: before READY) */
	bool wdone;          /* its worker has finished */
	bool starved;        /* sending, and waiting for the worker */
	uint32_t skip;
	atomic_uint avail;
	atomic_uint raw_in;  /* of a stream: the raw bytes behind avail */
	atomic_bool cancel;  /* the transfer failed: the worker stops */
};

struct lan_conn {
	int sock;
	struct fr_chan ch;    /* sealed once the handshake is done */
	struct fr_ring *ring;
	struct fr_pool *pool;
	struct fr_doneq done;
	bool zc;
	struct fr_producer prod; /* reads, hashes, compresses (pipe/) */
	struct slot slots[SLOTS];
	int reserve;          /* pool buffers kept for compression */
	/* the work */
	struct fr_send_ctx *sc;
	const struct fr_address *a;
	uint32_t *todo;       /* segments to send, a queue */
	uint32_t todo_head, todo_tail, todo_cap;
	uint8_t *acked;       /* per segment */
	uint8_t *resends;
	uint32_t n_need, n_acked;
	uint32_t n_held0;     /* held at the offer (not in n_need) */
	/* send queue (FIFO of READY slots) */
	int sendq[SLOTS];
	int sq_head, sq_n;
	int sending;          /* slot with a send in flight, or -1 */
	uint64_t send_started;
	double busy_s;
	uint64_t busy_bytes;
	/* acks */
	uint8_t ackbuf[4096];
	uint32_t ack_len;
	bool end_sent, finished;
	bool first_sent;      /* a frame has started to go */
	struct fr_adapt adapt;
	uint8_t *held;          /* HELD: per segment 1 + the receiver's hash
				 * of a copy the offer did not confirm */
	struct fr_partial parts[FR_PARTIAL_MAX]; /* frames the receiver
						  * holds part of (HAVE) */
	uint32_t n_parts;
	bool may_stream;        /* a slow line: frames may go as streams */
	bool streamed;          /* and one did */
	bool may_ref;           /* ... and against the segment before them */
	bool refd;              /* and one did */
	uint8_t *given;         /* per segment: its send began here and no
				 * negative ACK came back for it */
	struct fr_pacer pacer;  /* the address's rate limit */
	bool paced;
	/* under a share of the line: the sends it is split among, asked
	 * every SENDERS_EVERY_NS */
	unsigned (*senders)(const struct fr_config *c,
			    const struct fr_address *a);
	const struct fr_config *c;
	uint64_t senders_ns;
	uint64_t progress_ns;   /* when bytes last went out, or the peer's
				 * TCP or ferry last acknowledged any */
	unsigned stall_ms;      /* no progress for this long: the link is gone */
	uint64_t tcp_acked;     /* bytes the peer's TCP acknowledged */
	int workers_busy;
	uint64_t acked_raw;   /* package bytes held by the receiver */
	/* for the progress count: where each segment's latest frame began in
	 * the frames' byte stream (sc->wire_bytes) and how long it was (0:
	 * still going), and how much of it the receiver had kept from an
	 * earlier session; the socket's bytes written before the first
	 * frame; the count last shown, which never goes back */
	uint64_t *fstart;
	uint32_t *flen, *fkept;
	uint64_t tcp_base, shown;
	uint64_t start_ns, last_tick_ns, last_wire, last_tcp;
	double rate;
	char err[512];
	int error;
};

static bool is_loopback(int sock);
static bool lane_idle(const struct lan_conn *lc);
static bool seg_done_elsewhere(struct lan_conn *lc, uint32_t seg);

static struct lan_conn *lc_of(struct fr_output *o)
{
	return o->priv;
}

/* ---- open / offer / close ---------------------------------------------- */

static int lan_open(struct fr_output *o, char *err, size_t cap)
{
	struct lan_conn *lc = calloc(1, sizeof(*lc));
	int rc;

	if (!lc)
		return -ENOMEM;
	lc->sock = -1;
	lc->sending = -1;
	o->priv = lc;
	rc = fr_tcp_connect(o->a->host, 15000);
	if (rc < 0) {
		snprintf(err, cap, "cannot connect to %s (%s %s): %s",
			 o->a->host, o->a->site, o->a->name, fr_strerror(rc));
		return rc;
	}
	lc->sock = rc;
	if (o->sock_is)
		o->sock_is(o->sock_arg, lc->sock);
	/* Bytes the kernel has taken but not yet put on the wire are lost
	 * with the receiver (they are counted as sent): keep that queue
	 * short. What is in flight is still governed by the window. */
	int lowat = NOTSENT_LOWAT;
	setsockopt(lc->sock, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
		   sizeof(lowat));
	fr_chan_plain(&lc->ch, lc->sock);
	rc = fr_handshake_client(&lc->ch, o->a->account, o->a->key, o->a->site,
				 err, cap);
	if (rc < 0) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s", err);
		if (rc == FR_E_WRONG_SITE) {
			/* a host that leads elsewhere: nothing goes by this
			 * address, as with a password it does not take */
			snprintf(err, cap,
				 "[address %s %s] host %s leads to another "
				 "site: %s; nothing was sent by it (check its "
				 "host)",
				 o->a->site, o->a->name, o->a->host, tmp);
			return FR_E_AUTH;
		}
		if (rc == -EBUSY)
			snprintf(err, cap, "%s (%s) is busy: %s", o->a->site,
				 o->a->host, tmp);
		else if (rc == FR_E_REFUSED || rc == FR_E_AUTH)
			snprintf(err, cap,
				 "%s (%s) refused account %s: %s (the password "
				 "of [address %s %s])",
				 o->a->site, o->a->host, o->a->account,
				 tmp[0] ? tmp : fr_strerror(rc), o->a->site,
				 o->a->name);
		else
			snprintf(err, cap, "handshake with %s (%s) failed: %s",
				 o->a->site, o->a->host,
				 tmp[0] ? tmp : fr_strerror(rc));
		return rc == FR_E_REFUSED ? FR_E_AUTH : rc;
	}
	return 0;
}

/* The receiver's HELD copy of seg (held: its records) has the hash this
 * send made of seg before: the same bytes, not to be read again. */
static bool copy_known(const uint8_t *held, const struct fr_send_ctx *sc,
		       uint32_t seg)
{
	const uint8_t *h = held ? held + (size_t)seg * FR_UNCONF_REC : NULL;

	return h && h[0] && sc->known && fr_known_has(sc->known, seg) &&
	       !memcmp(h + 1, sc->m->segments[seg].hash, FR_HASH_LEN);
}

/* After a partial HAVE: HELD, the copies the receiver holds that the
 * offer had no hash for. FR_HAVE_PARTIAL or a code. */
static int recv_held(struct lan_conn *lc, const struct fr_send_ctx *sc,
		     bool say, char *err, size_t cap)
{
	uint32_t n = sc->m->n_segments, same = 0;
	uint8_t *body;
	uint32_t type, len;
	int rc = fr_msg_recv(&lc->ch, &type, &body, &len,
			     (uint32_t)FR_HELD_MAX(n), err, cap);

	if (rc < 0)
		return rc;
	if (!(lc->held = calloc(n + 1, FR_UNCONF_REC))) {
		free(body);
		return -ENOMEM;
	}
	rc = fr_held_parse(type, body, len, n, lc->held);
	free(body);
	if (rc < 0) {
		snprintf(err, cap, "the receiver sent a malformed HELD");
		return rc;
	}
	for (uint32_t i = 0; rc > 0 && i < n; i++)
		same += copy_known(lc->held, sc, i);
	if (same)
		fr_log(say ? FR_LOG_INFO : FR_LOG_DEBUG,
		       "the receiver holds %u segments as this send hashed "
		       "them before: not read nor sent again",
		       same);
	if (rc > (int)same)
		fr_log(say ? FR_LOG_INFO : FR_LOG_DEBUG,
		       "the receiver holds %d segments this send had not hashed "
		       "yet: read and compared, sent only if they differ",
		       rc - (int)same);
	return FR_HAVE_PARTIAL;
}

static int lan_offer(struct fr_output *o, struct fr_send_ctx *sc,
		     uint8_t *have, char *err, size_t cap)
{
	struct lan_conn *lc = lc_of(o);
	uint8_t *body;
	uint32_t type, len;
	int rc;

	/* Over a link that is not loopback the manifest goes compressed:
	 * a tree's manifest is megabytes, minutes of a slow line, and it
	 * goes again at every redial. */
	struct fr_offer_z *oz = sc->offer_z;
	uint64_t line = fr_line_rate(o->a);
	/* level 19 where the line is slow, unless the manifest is so large
	 * that compressing it would keep the receiver waiting (120 s) */
	int level = line && line <= 2000000 && sc->mf_len <= (32u << 20) ? 19 : 3;
	bool zsent = false;
	/* FERRY_FORCE_OFFER_Z: on loopback too (the tests) */
	if (oz && !oz->refused &&
	    (!is_loopback(lc->sock) || fr_hook_flag("FORCE_OFFER_Z"))) {
		if (oz->body && oz->level != level) {
			free(oz->body);
			oz->body = NULL;
		}
		if (!oz->body &&
		    fr_offer_z_pack(sc->mf, (uint32_t)sc->mf_len, level,
				    &oz->body, &oz->len) == 0)
			oz->level = level;
		zsent = oz->body != NULL;
	}
	if (zsent) {
		fr_log(FR_LOG_DEBUG, "manifest: %zu bytes, %u compressed",
		       sc->mf_len, oz->len);
		rc = fr_msg_send(&lc->ch, FR_MSG_OFFER_Z, oz->body, oz->len);
	} else {
		rc = fr_msg_send(&lc->ch, FR_MSG_OFFER, sc->mf,
				 (uint32_t)sc->mf_len);
	}
	if (rc < 0) {
		snprintf(err, cap, "sending the manifest to %s: %s", o->a->host,
			 fr_strerror(rc));
		return rc;
	}
	uint32_t want = FR_HAVE_LEN(sc->m->n_segments) +
			FR_PARTIAL_MAX * FR_PARTIAL_REC;
	rc = fr_msg_recv(&lc->ch, &type, &body, &len, want, err, cap);
	if (rc < 0) {
		char tmp[400];
		snprintf(tmp, sizeof(tmp), "%s", err);
		if (rc == FR_E_REFUSED && zsent && strstr(tmp, "expected OFFER")) {
			/* an older receiver: the retry sends it plain */
			oz->refused = true;
			snprintf(err, cap,
				 "%s does not take a compressed manifest (an "
				 "older ferry); the next attempt sends it plain",
				 o->a->site);
		} else if (rc == FR_E_REFUSED || rc == -EBUSY ||
			   rc == FR_E_NOT_OWNER)
			snprintf(err, cap, "%s refused package '%s': %s",
				 o->a->site, sc->m->name, tmp);
		else
			snprintf(err, cap, "waiting for %s's answer: %s",
				 o->a->host, fr_strerror(rc));
		return rc;
	}
	rc = fr_have_parse(type, body, len, sc->m->n_segments, have, lc->parts,
			   &lc->n_parts);
	free(body);
	if (rc < 0)
		snprintf(err, cap, "%s answered the offer with a malformed HAVE",
			 o->a->host);
	if (rc == FR_HAVE_PARTIAL)
		/* (said once for a striped send: by its first output) */
		rc = recv_held(lc, sc, !sc->feed || sc->out == 0, err, cap);
	for (uint32_t i = 0; rc == FR_HAVE_PARTIAL && sc->copies &&
			     i < sc->m->n_segments;
	     i++)
		sc->copies[i] = lc->held[(size_t)i * FR_UNCONF_REC];
	return rc;
}

static void lan_close(struct fr_output *o)
{
	struct lan_conn *lc = lc_of(o);

	if (!lc)
		return;
	fr_chan_wipe(&lc->ch);
	free(lc->held);
	if (lc->sock >= 0 && o->sock_is)
		o->sock_is(o->sock_arg, -1);
	if (lc->sock >= 0)
		close(lc->sock);
	free(lc);
	o->priv = NULL;
}

/* ---- the worker's part --------------------------------------------------- */

/* The receiver's partial frame of segment seg, or -1. */
static int part_of(const struct lan_conn *lc, uint32_t seg)
{
	for (uint32_t k = 0; k < lc->n_parts; k++)
		if (lc->parts[k].index == seg && lc->parts[k].got)
			return (int)k;
	return -1;
}

/*
 * A whole frame's record, laid just before the bytes it is sent with:
 * SEGMENT (frame header, frame number, every chunk's tag), or, when the
 * receiver kept the first `from` bytes of this very frame (same header:
 * same bytes, since the level is the same and zstd is deterministic),
 * SEGMENT_CONT (frame header, from, frame number, the tags of the chunks
 * from there), written over the payload bytes that are not sent again;
 * then the PAYLOAD header.
 */
static void frame_record(struct slot *s, uint8_t *base, const uint8_t *fh,
			 uint64_t no, uint32_t from)
{
	uint32_t first = from / fr_chunk_size(s->ps->stored);
	uint32_t nt = fr_chunk_count(s->ps->stored) - first;
	uint32_t body = FR_FRAME_HDR + (from ? 4 : 0) + 8 + nt * FR_SEAL_TAG;
	uint8_t *q = base + from - (FR_MSG_HDR + body + FR_SEAL_TAG + FR_MSG_HDR);

	fr_put32(q, from ? FR_MSG_SEGMENT_CONT : FR_MSG_SEGMENT);
	fr_put32(q + 4, body);
	memcpy(q + FR_MSG_HDR, fh, FR_FRAME_HDR);
	uint8_t *p = q + FR_MSG_HDR + FR_FRAME_HDR;
	if (from) {
		fr_put32(p, from);
		p += 4;
	}
	fr_put64(p, no);
	memcpy(p + 8, s->tags + (size_t)first * FR_SEAL_TAG,
	       (size_t)nt * FR_SEAL_TAG);
	fr_put32(base + from - FR_MSG_HDR, FR_MSG_PAYLOAD);
	fr_put32(base + from - FR_MSG_HDR + 4, s->ps->stored - from);
	s->env = q;
	s->env_body = body;
	s->cont_off = from;
	s->send_ptr = q;
	s->send_len = (uint32_t)(base + s->ps->stored - q);
}

/* The bytes the receiver kept of this frame, if they can be used. */
static uint32_t kept_of(struct slot *s, const uint8_t *fh)
{
	const struct lan_conn *lc = s->lc;
	int k = s->part;

	if (k < 0)
		return 0;
	uint32_t got = lc->parts[k].got;
	if (got == 0 || got >= s->ps->stored || got % fr_chunk_size(s->ps->stored) ||
	    memcmp(fh, lc->parts[k].hdr, FR_FRAME_HDR)) {
		s->part = -1;
		return 0;
	}
	return got;
}

#define PIECE_MIN (64u << 10)
#define STREAM_HDR_MAX (FR_MSG_HDR + FR_FRAME_HDR + 4 + 8 + FR_SEAL_TAG)
#define FIN_LEN (FR_MSG_HDR + 4 + FR_SEAL_TAG)
#define PIECE_OVER (FR_MSG_HDR + FR_SEAL_TAG)

/* Payload bytes per PIECE: all a stream's headers and tags fit in the
 * HEADROOM. */
static uint32_t piece_size(uint32_t raw)
{
	uint32_t p = raw / 128;

	return p < PIECE_MIN ? PIECE_MIN : p;
}

/*
 * Compress the segment as a stream of messages laid end to end in the
 * output buffer, each published (avail) as it is complete:
 *
 *   [kept: skip bytes, not sent] SEGMENT or SEGMENT_CONT (header with
 *   FR_FRAME_STREAM, stored_len 0; sealed as it goes) | PIECE ... | FIN
 *   (stored_len)
 *
 * so that the line starts after the first piece, not after the segment.
 * Each PIECE and the FIN is sealed here under the frame's key, numbered
 * from 0: a cut line keeps every piece that came whole.
 */
static int stream_segment(struct slot *s, int worker, const uint8_t *in,
			  uint32_t len, uint8_t *b, size_t cap,
			  const uint8_t *ref, size_t ref_len)
{
	struct lan_conn *lc = s->lc;
	const struct fr_manifest *m = lc->sc->m;
	struct fr_cctx *cc = fr_workq_cctx(worker);
	struct fr_frame f = {.flags = FR_FRAME_ZSTD | FR_FRAME_STREAM,
			     .level = (uint8_t)s->ps->level,
			     .index = s->ps->seg,
			     .raw_len = len};
	uint8_t fh[FR_FRAME_HDR];
	size_t in_pos = 0, pos = 0;
	bool done = false;
	ssize_t n;
	int rc;
	uint64_t no = fr_chan_frame_no(&lc->ch);
	struct fr_aead_key fk;
	uint32_t part = 0;
	uint8_t ad[FR_MSG_HDR + FR_FRAME_HDR];

	memcpy(f.pkg, m->lid, FR_HASH_LEN); /* the listing: known first */
	memcpy(f.hash, m->segments[s->ps->seg].hash, FR_HASH_LEN);
	if (ref) {
		f.flags |= FR_FRAME_REF;
		f.ref = s->ref;
	}
	fr_frame_pack(fh, &f);
	if (s->skip && (s->part < 0 || memcmp(fh, lc->parts[s->part].hdr,
					      FR_FRAME_HDR)))
		s->skip = 0; /* not the frame the receiver kept part of */
again:
	if ((rc = fr_seg_stream_begin(cc, len, s->ps->level, ref, ref_len)) < 0)
		return rc;
	in_pos = pos = 0;
	while (pos < s->skip) { /* the kept bytes again, to go on from */
		n = fr_seg_stream_next(cc, in, len, &in_pos, b + pos,
				       s->skip - pos, &done);
		if (n < 0)
			return (int)n;
		pos += (size_t)n;
		if (done && pos < s->skip) { /* shorter: not that frame */
			s->skip = 0;
			goto again;
		}
		/* done with pos == skip: every byte is there, only FIN is not */
	}
	if ((rc = fr_frame_key(&lc->ch.tx, lc->ch.aead, no, &fk)) < 0)
		return rc;
	memcpy(ad + FR_MSG_HDR, fh, FR_FRAME_HDR);
	uint8_t *q = b + pos;
	uint32_t body = FR_FRAME_HDR + (s->skip ? 4 : 0) + 8;
	s->send_ptr = s->env = q;
	s->env_body = body;
	s->cont_off = s->skip;
	fr_put32(q, s->skip ? FR_MSG_SEGMENT_CONT : FR_MSG_SEGMENT);
	fr_put32(q + 4, body);
	memcpy(q + FR_MSG_HDR, fh, FR_FRAME_HDR);
	if (s->skip)
		fr_put32(q + FR_MSG_HDR + FR_FRAME_HDR, s->skip);
	fr_put64(q + FR_MSG_HDR + body - 8, no);
	q += FR_MSG_HDR + body + FR_SEAL_TAG;
	uint32_t piece = piece_size(len);
	size_t stored = s->skip;
	while (!done) {
		if (atomic_load_explicit(&s->cancel, memory_order_relaxed))
			return FR_E_CLOSED;
		size_t room = (size_t)(b + cap - q);
		if (room < PIECE_OVER + 1 + FIN_LEN)
			return -ENOBUFS; /* cannot happen: see piece_size */
		room -= PIECE_OVER + FIN_LEN;
		n = fr_seg_stream_next(cc, in, len, &in_pos, q + FR_MSG_HDR,
				       room < piece ? room : piece, &done);
		if (n < 0)
			return (int)n;
		if (n == 0)
			continue;
		fr_put32(q, FR_MSG_PIECE);
		fr_put32(q + 4, (uint32_t)n);
		memcpy(ad, q, FR_MSG_HDR);
		fr_aead_seal(&fk, 0, part++, q + FR_MSG_HDR, (size_t)n, ad,
			     sizeof(ad), q + FR_MSG_HDR + n);
		q += PIECE_OVER + (size_t)n;
		stored += (size_t)n;
		/* the last piece waits for FIN: the line never has to
		 * wait for four bytes */
		if (!done) {
			atomic_store_explicit(&s->raw_in, (uint32_t)in_pos,
					      memory_order_relaxed);
			atomic_store_explicit(&s->avail,
					      (uint32_t)(q - s->send_ptr),
					      memory_order_release);
			fr_doneq_poke(&lc->done);
		}
	}
	fr_put32(q, FR_MSG_FIN);
	fr_put32(q + 4, 4);
	fr_put32(q + FR_MSG_HDR, (uint32_t)stored);
	memcpy(ad, q, FR_MSG_HDR);
	fr_aead_seal(&fk, 0, part, q + FR_MSG_HDR, 4, ad, sizeof(ad),
		     q + FR_MSG_HDR + 4);
	q += FIN_LEN;
	s->ps->stored = (uint32_t)stored;
	s->send_len = (uint32_t)(q - s->send_ptr);
	atomic_store_explicit(&s->avail, s->send_len, memory_order_release);
	return 0;
}

/* FERRY_CORRUPT_SEGMENT=K: segment K's first frame is damaged before it
 * is sealed, as bad memory would (the tests of the receiver's check of
 * the content against the manifest, which the wire can no longer reach) */
static void corrupt_once(uint32_t seg, uint8_t *payload, uint32_t len)
{
	static atomic_bool done;

	if (fr_hook_num("CORRUPT_SEGMENT", UINT32_MAX + 1ul) == seg && len &&
	    !atomic_exchange(&done, true))
		payload[len / 2] ^= 0x40;
}

/* A stream's segment: its hash settled (the first read) or checked. */
static int hash_check(struct lan_conn *lc, uint32_t seg, const uint8_t *in,
		      uint32_t len)
{
	const struct fr_manifest *m = lc->sc->m;
	uint8_t h[FR_HASH_LEN];

	fr_hash128(in, len, h);
	if (fr_known_has(lc->sc->known, seg))
		return memcmp(h, m->segments[seg].hash, FR_HASH_LEN) ? FR_E_CHANGED
								      : 0;
	fr_known_add(lc->sc->known, seg, h);
	return 0;
}

/*
 * The worker's job: a HELD copy compared (not sent if the same), the
 * reference read again, then the frame: streamed piece by piece, or
 * made whole by the producer's shared step (pipe/), sealed in place and
 * its record laid in the headroom before it.
 */
static void work_segment(struct fr_prod_slot *ps, int worker)
{
	struct lan_conn *lc = ps->p->h.arg;
	struct slot *s = &lc->slots[ps->index];
	const struct fr_manifest *m = lc->sc->m;
	const struct fr_segment *sg = &m->segments[ps->seg];
	double t0 = fr_thread_cpu_s();
	struct fr_seg_reader rd = {0};

	if (s->probe && !s->stream) {
		ps->result = hash_check(lc, ps->seg, ps->raw, sg->length);
		if (ps->result == 0 &&
		    !memcmp(sg->hash,
			    lc->held + (size_t)ps->seg * FR_UNCONF_REC + 1,
			    FR_HASH_LEN))
			ps->result = SAME_AS_HELD; /* not sent */
		if (ps->result != 0) {
			s->part = -1;
			ps->cpu_s = fr_thread_cpu_s() - t0;
			return;
		}
	}
	/* a reference not hashed yet (read by another slot just now) is
	 * not checked: compress on its own */
	if (s->has_ref && !fr_known_has(lc->sc->known, s->ref))
		s->has_ref = false;
	if (s->has_ref) { /* the segment it is compressed against, again */
		int r = fr_seg_load(&rd, lc->sc->root, lc->sc->single, m, s->ref);
		if (r == FR_E_HASH_MISMATCH) { /* the source changed */
			fr_seg_reader_fini(&rd);
			ps->result = FR_E_CHANGED;
			s->part = -1;
			return;
		}
		if (r < 0) { /* cannot read it now: compress on its own (a
			      * stream is queued only after this) */
			s->has_ref = false;
		} else {
			ps->ref = rd.buf;
			ps->ref_len = m->segments[s->ref].length;
			ps->ref_seg = s->ref;
		}
	}
	if (s->stream) {
		ps->result = hash_check(lc, ps->seg, ps->raw, sg->length);
		if (ps->result == 0)
			ps->result = stream_segment(
				s, worker, ps->raw, sg->length,
				(uint8_t *)fr_pool_buf(lc->pool, ps->out_buf),
				fr_pool_buf_size(lc->pool), ps->ref, ps->ref_len);
		fr_pool_put(lc->pool, ps->in_buf);
		ps->in_buf = -1;
		ps->raw = NULL;
		ps->ref = NULL;
		fr_seg_reader_fini(&rd);
		ps->cpu_s = fr_thread_cpu_s() - t0;
		return;
	}
	/* the first read of a segment settles its hash; a later one (a
	 * resume, a re-send) must find the same bytes */
	bool known = fr_known_has(lc->sc->known, ps->seg);
	ps->want = known ? sg->hash : NULL;
	fr_producer_encode(ps, worker);
	if (ps->result == 0 && !known)
		fr_known_add(lc->sc->known, ps->seg, ps->f.hash);
	ps->ref = NULL;
	fr_seg_reader_fini(&rd);
	if (!(ps->f.flags & FR_FRAME_REF)) /* raw after all: nothing to wait for */
		s->has_ref = false;
	if (ps->result < 0) {
		s->part = -1;
		return;
	}
	/* the payload is where it was read (raw) or compressed, each after
	 * the headroom its record goes in */
	uint8_t *base = ps->payload;
	struct fr_aead_key fk;
	uint64_t no = fr_chan_frame_no(&lc->ch);
	ps->result = fr_frame_key(&lc->ch.tx, lc->ch.aead, no, &fk);
	if (ps->result < 0) {
		s->part = -1;
		return;
	}
	corrupt_once(ps->seg, base, ps->stored);
	/* sealed here, in place, on this worker's core */
	fr_chunks_seal(&fk, ps->fhdr, base, 0, ps->stored, s->tags);
	sodium_memzero(&fk, sizeof(fk));
	frame_record(s, base, ps->fhdr, no, kept_of(s, ps->fhdr));
	ps->cpu_s = fr_thread_cpu_s() - t0;
}

/* ---- the I/O thread ------------------------------------------------------ */

static void fail(struct lan_conn *lc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct lan_conn *lc, int code, const char *fmt, ...)
{
	va_list ap;

	if (lc->error)
		return;
	lc->error = code;
	va_start(ap, fmt);
	vsnprintf(lc->err, sizeof(lc->err), fmt, ap);
	va_end(ap);
	for (int i = 0; i < SLOTS; i++) /* a stream's worker stops early */
		atomic_store_explicit(&lc->slots[i].cancel, true,
				      memory_order_relaxed);
}

static void todo_push(struct lan_conn *lc, uint32_t seg)
{
	lc->todo[lc->todo_tail % lc->todo_cap] = seg;
	lc->todo_tail++;
}

static int start_read(struct lan_conn *lc, int si, uint32_t seg)
{
	struct slot *s = &lc->slots[si];

	s->state = S_READING; /* (read_back may come at once) */
	int rc = fr_producer_read(&lc->prod, (unsigned)si, seg);
	if (rc < 0 && s->ps->state == FR_PS_FREE)
		s->state = S_FREE;
	return rc;
}

static void slot_release(struct lan_conn *lc, int si)
{
	fr_producer_release(lc->slots[si].ps);
	lc->slots[si].state = S_FREE;
}

/* Slot ps's segment could not be read: the source's, not the link's
 * (another address or a retry would meet it again; a file gone or
 * changed is FR_E_CHANGED); or no buffer was free to read it into (the
 * attempt's, -ENOBUFS). */
static void read_failed(struct lan_conn *lc, const struct fr_prod_slot *ps)
{
	int code = ps->result == FR_E_CHANGED || ps->result == -ENOBUFS ||
				   ps->result == -EINVAL
			   ? ps->result
			   : FR_E_SOURCE;

	fail(lc, code, "%s", ps->err);
}

/* Segment r is still on its way in a slot (read, compressed, queued). */
static bool in_flight(const struct lan_conn *lc, uint32_t r)
{
	for (int i = 0; i < SLOTS; i++)
		if (lc->slots[i].state != S_FREE && lc->slots[i].ps->seg == r)
			return true;
	return false;
}

/*
 * May a frame be compressed against segment r? Only if the receiver has
 * it before that frame: held there, sent on this connection, or on its
 * way (start_send keeps the order).
 */
static bool ref_ok(const struct lan_conn *lc, uint32_t r)
{
	/* a copy the offer did not confirm is held only once TABLE came */
	return r < lc->sc->m->n_segments &&
	       !(lc->held && lc->held[(size_t)r * FR_UNCONF_REC]) &&
	       (lc->acked[r] || lc->given[r] || in_flight(lc, r));
}

/* The producer's call: slot ps's reads are in. The level, the way its
 * frame goes (whole, streamed, from where the receiver kept it), its
 * reference, then a worker. */
static void read_back(struct fr_prod_slot *ps, void *arg)
{
	struct lan_conn *lc = arg;
	int si = (int)ps->index;
	struct slot *s = &lc->slots[si];

	if (ps->result < 0) {
		read_failed(lc, ps);
		slot_release(lc, si);
		return;
	}
	s->state = S_WORKING;
	lc->sc->read_bytes += lc->sc->m->segments[s->ps->seg].length;
	s->ps->level = lc->sc->level >= 0 ? lc->sc->level : fr_adapt_next(&lc->adapt);
	s->part = part_of(lc, s->ps->seg);
	s->stream = s->queued = s->wdone = s->starved = false;
	s->skip = 0;
	atomic_store(&s->avail, 0);
	atomic_store(&s->raw_in, 0);
	atomic_store(&s->cancel, false);
	s->has_ref = s->dropped = false;
	s->probe = lc->held && lc->held[(size_t)s->ps->seg * FR_UNCONF_REC] &&
		   !lc->resends[s->ps->seg];
	struct fr_frame pf;
	if (s->part >= 0 &&
	    fr_frame_unpack_wire(&pf, lc->parts[s->part].hdr) == 0) {
		s->ps->level = pf.level; /* the same level makes the same frame */
		if (pf.flags & FR_FRAME_STREAM) { /* and the same way */
			s->stream = true;
			s->skip = lc->parts[s->part].got;
		}
		if ((pf.flags & FR_FRAME_REF) && pf.ref != s->ps->seg &&
		    ref_ok(lc, pf.ref)) {
			s->has_ref = true;
			s->ref = pf.ref;
		}
	} else {
		/* the segment before, if the receiver will have it first:
		 * matches across the boundary, as in one long stream */
		if (lc->may_ref && s->ps->level > 0 && s->ps->seg > 0 &&
		    !lc->resends[s->ps->seg] && ref_ok(lc, s->ps->seg - 1)) {
			s->has_ref = true;
			s->ref = s->ps->seg - 1;
		}
	}
	if (s->part < 0 && !s->probe && lc->may_stream && s->ps->level > 0 &&
	    lc->sending < 0 &&
	    lc->sq_n == 0 && lc->workers_busy == 0) {
		/* the line is idle until this frame is ready: stream it,
		 * so that it starts with the first piece */
		s->stream = true;
	}
	if (s->stream && (ps->out_buf = fr_pool_get(lc->pool)) < 0) {
		s->stream = false;
		s->skip = 0;
	}
	lc->streamed |= s->stream;
	lc->refd |= s->has_ref;
	if (s->stream)
		fr_log(FR_LOG_DEBUG, "segment %u streams at level %d%s", s->ps->seg,
		       s->ps->level, s->skip ? ", from where it was cut" : "");
	if (s->has_ref)
		fr_log(FR_LOG_DEBUG, "segment %u is compressed against segment %u",
		       s->ps->seg, s->ref);
	lc->workers_busy++;
	fr_producer_work(ps, work_segment);
}

static void maybe_free_sent(struct lan_conn *lc, int si)
{
	struct slot *s = &lc->slots[si];

	/* a stream's worker may still be writing into the buffer */
	if (s->send_done && s->notifs == 0 && (!s->stream || s->wdone))
		slot_release(lc, si);
}

/*
 * Send what is left of slot si's message, or under a rate limit the next
 * chunk of it once the pacer allows (a K_PACE timeout until then).
 */
/* Slot si's send is over (sent, or given up). */
static void send_stop(struct lan_conn *lc, int si)
{
	lc->slots[si].send_done = true;
	lc->sending = -1;
	maybe_free_sent(lc, si);
}

/* How much of slot s's messages may go now. */
static uint32_t ready(const struct slot *s)
{
	if (s->stream && !s->wdone)
		return atomic_load_explicit(&s->avail, memory_order_acquire);
	return s->send_len;
}

static void send_finished(struct lan_conn *lc, int si);

static void send_more(struct lan_conn *lc, int si)
{
	struct slot *s = &lc->slots[si];
	uint32_t len = ready(s) - s->sent;

	if (lc->error) { /* after an error, nothing more goes */
		send_stop(lc, si);
		return;
	}
	if (len == 0 && (!s->stream || s->wdone)) {
		/* all of it went: a stream whose last bytes were sent
		 * before its worker was seen to be done */
		send_finished(lc, si);
		return;
	}
	if (len == 0) { /* a stream ahead of its worker: wait for a poke */
		uint64_t now = fr_now_ns();
		lc->busy_s += (double)(now - lc->send_started) / 1e9;
		lc->send_started = now;
		s->starved = true;
		return;
	}
	if (lc->paced) {
		uint32_t chunk = fr_pacer_chunk(&lc->pacer);
		if (len > chunk)
			len = chunk;
		double w = fr_pacer_wait(&lc->pacer, len, fr_now_s(),
					 fr_schedule_now());
		if (w > 0) {
			int rc = fr_ring_timeout(lc->ring, (unsigned)(w * 1000) + 1,
						 UD(K_PACE, si, 0));
			if (rc < 0)
				fail(lc, rc, "cannot queue a timeout: %s",
				     fr_strerror(rc));
			return;
		}
	}
	/* from the compression buffer, or where it was read */
	int buf = s->ps->out_buf >= 0 ? s->ps->out_buf : s->ps->in_buf;
	int rc = fr_ring_send(lc->ring, lc->sock, buf, s->send_ptr + s->sent,
			      len, lc->zc ? FR_SEND_ZC : 0, UD(K_SEND, si, 0));
	if (rc < 0)
		fail(lc, rc, "cannot queue a send: %s", fr_strerror(rc));
}

/*
 * The next frame to send: the first in the queue whose reference the
 * receiver will have by then. One whose reference is no longer on its way
 * (refused as corrupt meanwhile) is no use: it is read and sent again,
 * then on its own. -1 when none may go yet.
 */
/* The k-th slot of the send queue out of it, the others' order kept. */
static void sendq_take(struct lan_conn *lc, int k)
{
	for (int j = k; j > 0; j--)
		lc->sendq[(lc->sq_head + j) % SLOTS] =
			lc->sendq[(lc->sq_head + j - 1) % SLOTS];
	lc->sq_head = (lc->sq_head + 1) % SLOTS;
	lc->sq_n--;
}

static int next_to_send(struct lan_conn *lc)
{
	for (int k = 0; k < lc->sq_n; k++) {
		int si = lc->sendq[(lc->sq_head + k) % SLOTS];
		struct slot *s = &lc->slots[si];
		bool go = !s->has_ref || lc->acked[s->ref] || lc->given[s->ref];
		bool stale = !go && !in_flight(lc, s->ref);
		/* the receiver has it by now (a parcel, another link): the
		 * frame made goes nowhere */
		bool moot = lc->acked[s->ps->seg] || seg_done_elsewhere(lc, s->ps->seg);
		if (moot && !s->stream) {
			sendq_take(lc, k);
			s->queued = false;
			slot_release(lc, si);
			k--;
			continue;
		}
		if (!go && !stale)
			continue;
		sendq_take(lc, k);
		if (go)
			return si;
		fr_log(FR_LOG_INFO,
		       "segment %u was compressed against segment %u, which "
		       "the receiver refused; it goes again on its own",
		       s->ps->seg, s->ref);
		lc->resends[s->ps->seg]++;
		todo_push(lc, s->ps->seg);
		s->queued = false;
		s->dropped = true;
		if (!s->stream || s->wdone) /* else once its worker is done */
			slot_release(lc, si);
		k--;
	}
	return -1;
}

static void start_send(struct lan_conn *lc)
{
	if (lc->sending >= 0 || lc->sq_n == 0 || lc->error)
		return;
	int si = next_to_send(lc);
	if (si < 0)
		return;
	struct slot *s = &lc->slots[si];
	lc->given[s->ps->seg] = 1;
	lc->fstart[s->ps->seg] = lc->sc->wire_bytes;
	lc->flen[s->ps->seg] = 0;
	lc->fkept[s->ps->seg] = s->cont_off;
	/* its record takes its place in the stream now */
	int r = fr_rec_seal(&lc->ch, s->env, s->env + FR_MSG_HDR, s->env_body,
			    s->env + FR_MSG_HDR + s->env_body);
	if (r < 0) {
		fail(lc, r, "cannot seal segment %u's record: %s", s->ps->seg,
		     fr_strerror(r));
		return;
	}
	s->state = S_SENDING;
	s->sent = 0;
	s->notifs = 0;
	s->send_done = false;
	lc->sending = si;
	lc->send_started = fr_now_ns();
	if (!lc->first_sent) {
		lc->first_sent = true;
		fr_log(FR_LOG_DEBUG, "first segment on the wire after %.3f s",
		       fr_process_s());
	}
	send_more(lc, si);
}

static void on_send(struct lan_conn *lc, int si, const struct fr_cqe *c)
{
	struct slot *s = &lc->slots[si];

	if (c->flags & FR_CQE_NOTIF) {
		s->notifs--;
		maybe_free_sent(lc, si);
		return;
	}
	if (c->flags & FR_CQE_MORE)
		s->notifs++;
	if (c->res < 0 || lc->error) { /* after an error, nothing more goes */
		if (c->res < 0)
			fail(lc, c->res, "connection to the receiver lost: %s",
			     fr_strerror(c->res));
		send_stop(lc, si);
		return;
	}
	s->sent += (uint32_t)c->res;
	lc->progress_ns = fr_now_ns();
	lc->sc->wire_bytes += (uint64_t)c->res;
	lc->busy_bytes += (uint64_t)c->res;
	if ((s->stream && !s->wdone) || s->sent < s->send_len) {
		send_more(lc, si);
		return;
	}
	send_finished(lc, si);
}

/* The package bytes' worth of seg that this connection carried: the
 * part of its frame after what the receiver kept of an interrupted one
 * (for the rate learned from its ACK). */
static uint32_t sent_part(const struct lan_conn *lc, uint32_t seg)
{
	uint64_t raw = lc->sc->m->segments[seg].length;
	uint64_t went = lc->flen[seg], kept = lc->fkept[seg];

	return (uint32_t)(kept && went ? raw * went / (went + kept) : raw);
}

/* Slot si's message went whole: the next one may go. */
static void send_finished(struct lan_conn *lc, int si)
{
	struct slot *s = &lc->slots[si];

	lc->busy_s += (double)(fr_now_ns() - lc->send_started) / 1e9;
	lc->flen[s->ps->seg] = s->sent ? s->sent : 1;
	lc->sc->segs_sent++;
	/* a frame that resumed went only in part: the rate and the ratio
	 * shown (tick) count the raw bytes of the part that went */
	lc->sc->sent_raw += sent_part(lc, s->ps->seg);
	send_stop(lc, si);
	start_send(lc);
}

static void enqueue(struct lan_conn *lc, int si)
{
	lc->slots[si].queued = true;
	lc->sendq[(lc->sq_head + lc->sq_n) % SLOTS] = si;
	lc->sq_n++;
}

/* What a worker did to the frame, for the level choice and the log. */
static void frame_made(struct lan_conn *lc, struct slot *s)
{
	if (lc->sc->level < 0)
		fr_adapt_segment(&lc->adapt, s->ps->level,
				 lc->sc->m->segments[s->ps->seg].length, s->ps->stored,
				 s->ps->cpu_s);
	/* the level chosen, as status shows it (not a probe's) */
	lc->sc->level_last = lc->sc->level >= 0 ? s->ps->level : lc->adapt.level;
	if (s->part >= 0) {
		struct fr_partial *p = &lc->parts[s->part];
		if (!s->stream || s->skip)
			fr_log(FR_LOG_INFO,
			       "segment %u resumes at byte %u of %u: the "
			       "receiver kept the start of an interrupted frame",
			       s->ps->seg, p->got, s->ps->stored);
		p->got = 0; /* used once: a re-send is whole */
	}
}

/* Streams whose first pieces are ready go in the send queue; a stream
 * the line waits for goes on. */
static void stream_progress(struct lan_conn *lc)
{
	for (int si = 0; si < SLOTS; si++) {
		struct slot *s = &lc->slots[si];
		if (!s->stream || s->wdone || s->dropped || lc->error)
			continue;
		if (s->state == S_WORKING && !s->queued &&
		    atomic_load_explicit(&s->avail, memory_order_acquire))
			enqueue(lc, si);
		if (lc->sending == si && s->starved) {
			s->starved = false;
			send_more(lc, si);
		}
	}
}

/* The worker of a stream that is already queued (or sending) is done. */
static void stream_done(struct lan_conn *lc, int si)
{
	struct slot *s = &lc->slots[si];

	s->wdone = true;
	if (s->ps->result < 0 && !lc->error)
		fail(lc, s->ps->result, "segment %u of '%s': %s", s->ps->seg,
		     lc->sc->root, fr_strerror(s->ps->result));
	if (!lc->error)
		frame_made(lc, s);
	if (s->state != S_SENDING) /* still queued: start_send takes it */
		return;
	if (s->send_done)
		maybe_free_sent(lc, si);
	else if (s->starved) {
		s->starved = false;
		send_more(lc, si);
	}
}

/* The receiver's copy of seg is this send's: TABLE confirms it. */
static void same_as_held(struct lan_conn *lc, uint32_t seg)
{
	uint32_t len = lc->sc->m->segments[seg].length;

	if (!lc->acked[seg]) {
		lc->acked[seg] = 1;
		lc->acked_raw += len;
		lc->n_acked++;
		lc->sc->segs_skipped++;
		lc->sc->skipped_raw += len;
	}
	if (lc->sc->feed)
		lc->sc->feed->held(lc->sc->feed->arg, seg);
}


static void on_worker_done(struct lan_conn *lc)
{
	struct fr_job *j = fr_doneq_take(&lc->done);

	if (j) /* a frame made is progress too */
		lc->progress_ns = fr_now_ns();
	while (j) {
		int si = (int)((struct fr_prod_slot *)j)->index;
		struct slot *s = &lc->slots[si];
		j = j->next;
		lc->workers_busy--;
		if (s->dropped) { /* never queued again, never sending */
			s->wdone = true;
			slot_release(lc, si);
			continue;
		}
		if (s->stream && s->queued) {
			stream_done(lc, si);
			continue;
		}
		if (lc->error) {
			slot_release(lc, si);
			continue;
		}
		if (s->ps->result == SAME_AS_HELD) {
			same_as_held(lc, s->ps->seg);
			slot_release(lc, si);
			continue;
		}
		if (s->ps->result == FR_E_CHANGED) {
			fail(lc, s->ps->result,
			     "segment %u of '%s' no longer matches its hash: the "
			     "source changed while it was being sent; send it "
			     "again to carry the new version",
			     s->ps->seg, lc->sc->root);
			slot_release(lc, si);
			continue;
		}
		if (s->ps->result < 0) {
			fail(lc, s->ps->result, "segment %u of '%s': %s", s->ps->seg,
			     lc->sc->root, fr_strerror(s->ps->result));
			slot_release(lc, si);
			continue;
		}
		frame_made(lc, s);
		s->wdone = true;
		s->state = S_READY;
		enqueue(lc, si);
	}
	stream_progress(lc);
	start_send(lc);
}

/* A negative ACK: the segment goes again, and is no one's reference
 * until it has. */
static void send_again(struct lan_conn *lc, uint32_t seg)
{
	lc->sc->segs_resent++;
	lc->given[seg] = 0;
	if (lc->sc->feed) /* the assignment hands it out again */
		lc->sc->feed->again(lc->sc->feed->arg, lc->sc->out, seg);
	else
		todo_push(lc, seg);
}

/* An opened message from the receiver: ACK, DONE or ERROR. false when
 * the transfer ends here. */
static bool on_receiver_msg(struct lan_conn *lc, const struct fr_ack_msg *a)
{
	uint32_t idx = a->index;

	if (a->kind == FR_ACKMSG_DONE) {
		lc->finished = true;
		return true;
	}
	if (a->kind == FR_ACKMSG_ERROR) {
		/* the receiver's errno (ENOSPC, EBUSY) says what happened
		 * there; its own codes describe its side */
		if ((lc->streamed || lc->refd) && lc->sc->offer_z &&
		    (strstr(a->text, "where a segment was expected") ||
		     strstr(a->text, "unknown flags"))) {
			/* an older receiver: the retry sends whole frames */
			lc->sc->offer_z->plain_frames = true;
			fail(lc, FR_E_REFUSED,
			     "%s does not take streamed frames or frames "
			     "against another segment (an older ferry); the "
			     "next attempt sends whole frames on their own",
			     lc->a->site);
			return false;
		}
		fail(lc, a->code < 0 && a->code > -4096 ? a->code : FR_E_REFUSED,
		     "receiver: %s", a->text);
		return false;
	}
	if (a->status == FR_ACK_DURABLE) {
		if (!lc->acked[idx]) {
			lc->acked[idx] = 1;
			lc->acked_raw += lc->sc->m->segments[idx].length;
			lc->n_acked++;
			/* one this send never sent: another arrival (a
			 * parcel, another sender of the package) brought
			 * it, and the site holds it as if before */
			if (!lc->sc->feed && !lc->given[idx]) {
				lc->sc->segs_skipped++;
				lc->sc->skipped_raw +=
				    lc->sc->m->segments[idx].length;
			}
		}
		if (lc->sc->feed)
			lc->sc->feed->acked(lc->sc->feed->arg, lc->sc->out,
					    idx, lc->flen[idx] != 0,
					    sent_part(lc, idx));
	} else if (a->status == FR_ACK_AGAIN) {
		/* not corrupt: the receiver left our copy for another link's,
		 * which then dropped */
		fr_log(FR_LOG_INFO,
		       "segment %u: the receiver was taking it from another link, "
		       "which dropped; sending it again",
		       idx);
		send_again(lc, idx);
	} else if (a->status == FR_ACK_NOREF) {
		/* the segment it was compressed against did not get there:
		 * again, on its own */
		fr_log(FR_LOG_INFO,
		       "receiver lacked the segment that segment %u was "
		       "compressed against; sending it again on its own",
		       idx);
		lc->resends[idx]++;
		send_again(lc, idx);
	} else if (++lc->resends[idx] > MAX_RESENDS) {
		fail(lc, FR_E_HASH_MISMATCH,
		     "segment %u was refused as corrupt %d times", idx,
		     MAX_RESENDS);
		return false;
	} else {
		fr_log(FR_LOG_WARN,
		       "receiver found segment %u corrupt on arrival; sending "
		       "it again",
		       idx);
		send_again(lc, idx);
	}
	return true;
}

static void parse_acks(struct lan_conn *lc)
{
	uint32_t off = 0;

	while (lc->ack_len - off >= FR_MSG_HDR) {
		uint8_t *h = lc->ackbuf + off;
		uint32_t type = fr_get32(h);
		uint32_t len = fr_get32(h + 4);
		if (len > sizeof(lc->ackbuf) - FR_MSG_HDR - FR_SEAL_TAG) {
			fail(lc, FR_E_PROTOCOL, "receiver sent a %u-byte message",
			     len);
			return;
		}
		if (lc->ack_len - off < FR_MSG_HDR + len + FR_SEAL_TAG)
			break;
		uint8_t *b = h + FR_MSG_HDR;
		if (fr_rec_open(&lc->ch, h, b, len, b + len) < 0) {
			fail(lc, FR_E_SEALED,
			     "message authentication failed from the receiver "
			     "%s (%s): session dropped",
			     lc->a->site, lc->a->host);
			return;
		}
		struct fr_ack_msg a;
		int r = fr_ack_decode(type, b, len, lc->sc->m->n_segments, &a);
		if (r == 0 || r == FR_E_BAD_INDEX) {
			if (a.kind == FR_ACKMSG_ACK && a.status == FR_ACK_DURABLE)
				fr_adapt_sink(&lc->adapt, a.stall);
		}
		if (r == FR_E_BAD_INDEX) {
			fail(lc, FR_E_PROTOCOL,
			     "receiver acknowledged segment %u of %u", a.index,
			     lc->sc->m->n_segments);
			return;
		}
		if (r < 0) {
			fail(lc, FR_E_PROTOCOL,
			     "receiver sent unexpected message type %u", type);
			return;
		}
		if (!on_receiver_msg(lc, &a))
			return;
		off += FR_MSG_HDR + len + FR_SEAL_TAG;
	}
	memmove(lc->ackbuf, lc->ackbuf + off, lc->ack_len - off);
	lc->ack_len -= off;
}

/*
 * The package bytes to show as done: those of the segments the receiver
 * acknowledged, and of the frames on their way the part its TCP has
 * acknowledged (a frame of 64 MiB takes minutes on a slow line). Never
 * more than was sent, never less than shown before.
 */
static uint64_t done_bytes(struct lan_conn *lc, double ratio,
			   uint64_t *moving)
{
	const struct fr_manifest *m = lc->sc->m;
	uint64_t done = lc->acked_raw, a = 0;

	if (lc->tcp_acked > lc->tcp_base)
		a = lc->tcp_acked - lc->tcp_base; /* of the frames' stream */
	for (uint32_t i = 0; i < m->n_segments && a; i++) {
		/* (a copy of what another output landed counts for nothing) */
		if (!lc->given[i] || lc->acked[i] || a <= lc->fstart[i] ||
		    seg_done_elsewhere(lc, i))
			continue;
		uint64_t raw = m->segments[i].length, kept = lc->fkept[i];
		uint64_t got = kept + a - lc->fstart[i], len = lc->flen[i];
		if (!len && lc->sending >= 0 && lc->slots[lc->sending].ps->seg == i &&
		    !lc->slots[lc->sending].stream)
			len = lc->slots[lc->sending].send_len;
		if (len)
			len += kept;
		uint64_t part = len ? (got >= len ? raw : raw * got / len)
				    : (uint64_t)((double)got * ratio);
		done += part < raw ? part : raw;
	}
	if (done > m->total_size)
		done = m->total_size;
	*moving = done - lc->acked_raw;
	if (done > lc->shown)
		lc->shown = done;
	return lc->shown;
}

/* Before a frame has gone whole, what its bytes on the wire stand for:
 * a stream's ratio so far, else none (1): a guess from the level would
 * run ahead on data that does not compress, then stand still. */
static double first_ratio(const struct lan_conn *lc)
{
	const struct slot *s = lc->sending >= 0 ? &lc->slots[lc->sending] : NULL;

	if (!s || !s->stream)
		return 1.0;
	uint32_t made = atomic_load_explicit(&s->avail, memory_order_acquire);
	uint32_t raw = atomic_load_explicit(&s->raw_in, memory_order_relaxed);
	return made > 4096 && raw ? (double)raw / made : 1.0;
}

static void tick(struct lan_conn *lc)
{
	uint64_t now = fr_now_ns();
	double dt = (double)(now - lc->last_tick_ns) / 1e9;
	struct fr_send_ctx *sc = lc->sc;

	/* a link that died without a reset (a dropped line, a pulled cable)
	 * would otherwise hold the transfer until TCP gives up. Progress is
	 * what the receiver's TCP acknowledged: one send of a large frame
	 * may take minutes on a slow line. It is counted in bytes: ACKs
	 * alone also answer keepalive and zero-window probes, which a
	 * frozen receiver (or a proxy that stopped forwarding) still does. */
	uint64_t acked;
	if (fr_tcp_bytes_acked(lc->sock, &acked) == 0 && acked > lc->tcp_acked) {
		lc->tcp_acked = acked;
		lc->progress_ns = now;
	}
	if (lane_idle(lc))
		lc->progress_ns = now;
	else if ((lc->sending >= 0 || lc->sq_n > 0) &&
		 now - lc->progress_ns >= 1000000000ull && dt > 0)
		sc->quiet_s += dt; /* frames to go, the link took nothing */
	if (sc->cancel && atomic_load(sc->cancel) && !lc->error) {
		fail(lc, -ECANCELED, "another link of this send failed");
		return;
	}
	/* the package is complete at the receiver: what this output still
	 * has on its way (a dead line's frame, an endgame copy that lost)
	 * is not waited for */
	if (sc->completed && atomic_load(sc->completed) && !lc->error) {
		fail(lc, -ECANCELED, "the package was completed by another link");
		return;
	}
	/* (a worker compressing a large frame at a high level is not a
	 * stall) */
	if (!lc->end_sent && !lc->error && lc->workers_busy == 0 &&
	    now - lc->progress_ns > (uint64_t)lc->stall_ms * 1000000ull) {
		fail(lc, -ETIMEDOUT,
		     "nothing moved for %u s: the line or the receiver is gone",
		     lc->stall_ms / 1000);
		return;
	}
	/* A window that closes stops the transfer at once, mid-frame if
	 * need be: the receiver keeps what came of the frame, and the
	 * scheduler waits for the next window (or an open address). */
	if (!lc->end_sent && !lc->error &&
	    !fr_schedule_allows(&lc->a->schedule, sc->priority,
				fr_schedule_now())) {
		/* (over several links: what all of them landed) */
		uint32_t held = sc->feed && sc->feed->n_done
					? sc->feed->n_done(sc->feed->arg)
					: sc->segs_skipped + lc->n_acked;
		fail(lc, FR_E_CLOSED,
		     "the schedule of address %s %s closed it to %s-priority "
		     "sends; %u of %u segments are held there",
		     lc->a->site, lc->a->name, fr_priority_name(sc->priority),
		     held, sc->m->n_segments);
		return;
	}

	if (sc->level < 0 && !lc->adapt.pinned) {
		if (lc->sending >= 0 && !lc->slots[lc->sending].starved) {
			lc->busy_s += (double)(now - lc->send_started) / 1e9;
			lc->send_started = now;
		}
		fr_adapt_wire(&lc->adapt, lc->busy_bytes, lc->busy_s);
		lc->busy_bytes = 0;
		lc->busy_s = 0;
		int before = lc->adapt.level;
		fr_adapt_choose(&lc->adapt);
		if (lc->adapt.level != before)
			fr_log(FR_LOG_DEBUG,
			       "compression level %d -> %d (link %.0f MB/s, "
			       "receiver stalled %.0f%%)",
			       before, lc->adapt.level, lc->adapt.wire_rate / 1e6,
			       lc->adapt.sink_stall * 100);
	}
	/* the package's rate is the wire's times the ratio seen so far: on
	 * a slow line a segment's ACK comes once a minute, while the wire
	 * moves all the time */
	double ratio = sc->sent_raw && sc->wire_bytes
			       ? (double)sc->sent_raw / (double)sc->wire_bytes
			       : first_ratio(lc);
	if (ratio < 1.0)
		ratio = 1.0;
	uint64_t moving;
	uint64_t done = done_bytes(lc, ratio, &moving);
	if (dt > 0) {
		/* what the receiver's TCP took, where the kernel says: the
		 * socket's buffer takes a frame at once and then nothing for
		 * seconds on a slow link */
		uint64_t moved;
		if (!lc->tcp_acked) /* the kernel does not say */
			moved = sc->wire_bytes - lc->last_wire;
		else
			moved = lc->last_tcp ? lc->tcp_acked - lc->last_tcp : 0;
		double r = (double)moved / dt * ratio;
		lc->rate = lc->rate > 0 ? 0.8 * lc->rate + 0.2 * r : r;
	}
	lc->last_wire = sc->wire_bytes;
	lc->last_tcp = lc->tcp_acked;
	lc->last_tick_ns = now;
	/* (under a rate limit every second, its share follows; else every
	 * 5 s: a directory read, on this thread) */
	if (lc->senders &&
	    now - lc->senders_ns >= (lc->paced ? 1 : 5) * SENDERS_EVERY_NS) {
		lc->senders_ns = now;
		unsigned n = lc->senders(lc->c, lc->a);
		if (lc->paced)
			lc->pacer.senders = n;
		sc->shared |= n > 1;
	}
	if (sc->progress) {
		struct fr_progress p = {0};
		snprintf(p.state, sizeof(p.state), "sending");
		p.total_bytes = sc->m->total_size;
		p.done_bytes = done;
		p.moving_bytes = moving;
		p.wire_bytes = sc->wire_bytes;
		p.n_segments = sc->m->n_segments;
		/* (a copy found the same is skipped and acked: once) */
		p.segs_done = lc->n_held0 + lc->n_acked;
		p.segs_held = sc->segs_skipped;
		p.held_bytes = sc->skipped_raw;
		p.link_acked = lc->tcp_acked ? lc->tcp_acked : sc->wire_bytes;
		p.rate = lc->rate;
		p.eta = lc->rate > 1 ? (double)(p.total_bytes - done) / lc->rate
				     : -1;
		p.level = sc->level >= 0 ? sc->level : lc->adapt.level;
		sc->progress(sc->progress_arg, &p);
	}
}

/* One completion. While draining (after an error, or once DONE came),
 * completions only finish what is in flight. */
static void dispatch(struct lan_conn *lc, const struct fr_cqe *c,
		     bool draining)
{
	switch (UD_KIND(c->ud)) {
	case K_READ:
		fr_producer_on_cqe(&lc->prod, c);
		break;
	case K_SEND:
		on_send(lc, UD_SLOT(c->ud), c);
		break;
	case K_EVENT:
		on_worker_done(lc);
		fr_ring_read(lc->ring, lc->done.efd, -1, &lc->done.efd_buf, 8, 0,
			     UD(K_EVENT, 0, 0));
		break;
	case K_ACK:
		if (c->res <= 0) {
			int e = c->res < 0 ? c->res : -ECONNRESET;
			fail(lc, e, "connection to the receiver lost: %s",
			     fr_strerror(e));
			break;
		}
		lc->ack_len += (uint32_t)c->res;
		lc->progress_ns = fr_now_ns();
		parse_acks(lc);
		if (!lc->finished && !lc->error)
			fr_ring_recv(lc->ring, lc->sock, lc->ackbuf + lc->ack_len,
				     sizeof(lc->ackbuf) - lc->ack_len, false,
				     UD(K_ACK, 0, 0));
		break;
	case K_PACE:
		send_more(lc, UD_SLOT(c->ud));
		break;
	case K_TICK:
		if (draining)
			break;
		tick(lc);
		fr_ring_timeout(lc->ring, 250, UD(K_TICK, 0, 0));
		break;
	}
}

static bool is_loopback(int sock)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(sock, (struct sockaddr *)&ss, &sl) < 0)
		return true;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >>
			24) == 127;
	if (ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
	return true;
}

/* What the link decides: the compression level's start (none on
 * loopback, the line's on a known line), streamed frames and references
 * (slow lines), zero-copy sends (fast links), the first rate estimate,
 * the pacer of a rate limit and the stall time. */
static void choose_paths(struct lan_conn *lc, struct fr_output *o,
			 struct fr_send_ctx *sc)
{
	bool loop = is_loopback(lc->sock);
	/* On loopback there is no link to save: both ends share the CPUs,
	 * and every cycle spent compressing is taken from the receiver. */
	double line = (double)fr_line_rate(o->a) / 8.0; /* bytes/s, 0: unknown */
	if (loop && sc->level < 0)
		fr_adapt_pin(&lc->adapt, 0);
	else if (sc->level < 0 && line > 0)
		fr_adapt_line(&lc->adapt, line, sc->m->seg_size);
	/* On a slow line a frame the line waits for goes as a stream: it
	 * starts after the first piece is compressed, so even the first
	 * segment can have the line's full level (FERRY_FORCE_STREAM: on
	 * loopback too, for the tests). */
	bool plain = sc->offer_z && sc->offer_z->plain_frames;
	bool slow = !loop && line > 0 && line <= 12.5e6;
	lc->may_stream = (slow || fr_hook_flag("FORCE_STREAM")) && !plain &&
			 !fr_hook_flag("NO_STREAM");
	/* ... and each segment is compressed against the one before it,
	 * which the receiver holds by then: what a single long stream would
	 * match across segments is not lost (FERRY_FORCE_REF: on loopback) */
	/* (striped: the segment before may go by another link) */
	lc->may_ref = (slow || fr_hook_flag("FORCE_REF")) && !plain &&
		      !sc->feed &&
		      !fr_hook_flag("NO_REF");
	if (lc->may_stream)
		lc->adapt.first_level = -1;
	/* Zero-copy sends pay on a fast link only. On a slow line they
	 * would pin the buffers of a frame cut by a dropped line until TCP
	 * gives the connection up (minutes), and the session's end with
	 * them. */
	lc->zc = fr_ring_has_send_zc(lc->ring) && !fr_hook_flag("NO_ZC") &&
		 (fr_hook_flag("FORCE_ZC") || (!loop && !slow));
	/* a known line gives the first estimate of the rate (and ETA) */
	if (line > 0)
		lc->rate = line * (lc->adapt.level ? lc->adapt.ratio[lc->adapt.level]
						   : 1.0);
	lc->sending = -1;
	if (o->a->ratelimit.mode != FR_RL_NONE) {
		fr_pacer_init(&lc->pacer, &o->a->ratelimit, line * 8.0);
		/* a share of a slow line goes in its frames, not in lumps
		 * that take the line for many seconds */
		lc->pacer.frame = fr_line_profile(o->a->type)->frame;
		lc->paced = true;
	}
	lc->start_ns = lc->last_tick_ns = lc->progress_ns = fr_now_ns();
	/* an on-demand line is watched closely: its retry redials */
	lc->stall_ms = o->a->type == FR_ADDR_LAN ? 60000 : 20000;
	lc->stall_ms = (unsigned)fr_hook_num("STALL_MS", lc->stall_ms);
	if (lc->paced && o->a->ratelimit.mode == FR_RL_PULSE)
		lc->stall_ms += 2 * o->a->ratelimit.pulse_ms;
	lc->last_wire = 0;
}

/* The send is over: leave nothing in flight that points into our
 * buffers before they go. */
static void drain(struct lan_conn *lc)
{
	struct fr_cqe cqes[64];

	/* Leave nothing in flight that points into our buffers: shut the
	 * socket down so pending socket ops complete, then drain. */
	shutdown(lc->sock, SHUT_RDWR);
	for (int waited = 0;;) {
		/* reads that waited for room in flight go no further;
		 * those out come back to the producer */
		bool busy = fr_producer_stop(&lc->prod) || lc->workers_busy > 0;
		for (int i = 0; i < SLOTS; i++)
			if (lc->slots[i].state == S_SENDING ||
			    (lc->slots[i].state != S_FREE && lc->slots[i].notifs))
				busy = true;
		if (!busy)
			break;
		/* Reads, sends and worker jobs always finish (the socket is
		 * shut down); the pool may not go before they do. */
		int n = fr_ring_wait(lc->ring, cqes, FR_ARRAY_SIZE(cqes), 1000);
		if (n < 0 && n != -EINTR)
			break;
		if (n <= 0) {
			if (++waited % 30 == 0)
				fr_log(FR_LOG_WARN,
				       "still waiting for %d compression job(s) "
				       "and the disk (%d s)",
				       lc->workers_busy, waited);
			continue;
		}
		for (int i = 0; i < n; i++)
			dispatch(lc, &cqes[i], true);
	}
	/* the slots the producer let go of as it stopped */
	for (int i = 0; i < SLOTS; i++)
		if (lc->slots[i].ps->state == FR_PS_FREE)
			lc->slots[i].state = S_FREE;
}

/*
 * Every segment is durable at the receiver: the segment table is settled
 * (the source found unchanged since it was listed), and goes after END.
 */
static int send_end(struct lan_conn *lc)
{
	struct fr_manifest *m = lc->sc->known->m;
	char err[sizeof(lc->err)];
	int rc = fr_known_settle(lc->sc->known, lc->sc->root, lc->sc->single,
				 err, sizeof(err));

	if (rc < 0) {
		fail(lc, rc, "%s", err);
		return rc;
	}
	uint8_t *tab = malloc((size_t)m->n_segments * FR_HASH_LEN + 1);
	if (!tab) {
		fail(lc, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->n_segments; i++)
		memcpy(tab + (size_t)i * FR_HASH_LEN, m->segments[i].hash,
		       FR_HASH_LEN);
	rc = fr_msg_send(&lc->ch, FR_MSG_END, NULL, 0);
	if (rc == 0)
		rc = fr_msg_send(&lc->ch, FR_MSG_TABLE, tab,
				 m->n_segments * FR_HASH_LEN);
	free(tab);
	if (rc < 0)
		fail(lc, rc, "connection lost: %s", fr_strerror(rc));
	return rc;
}

/* ---- a striped send: the assignment's segments -------------------------- */

/* Another output of a striped send has had seg acknowledged. */
static bool seg_done_elsewhere(struct lan_conn *lc, uint32_t seg)
{
	return lc->sc->feed && lc->sc->feed->is_done(lc->sc->feed->arg, seg);
}

/* The next segment the assignment gives this output, queued; false when
 * it gives none now (the others would land them sooner) or all is done. */
static bool take_assigned(struct lan_conn *lc)
{
	bool copy = false;

	if (!lc->sc->feed)
		return false;
	int64_t seg = lc->sc->feed->next(lc->sc->feed->arg, lc->sc->out,
					 &copy);
	if (seg < 0)
		return false;
	if (copy)
		fr_log(FR_LOG_DEBUG, "%s: an endgame copy of segment %u",
		       lc->a->name, (uint32_t)seg);
	lc->given[seg] = 0;
	todo_push(lc, (uint32_t)seg);
	return true;
}

/* Nothing of this output's is on its way: a striped send's output that
 * the assignment leaves idle is not stalled. */
static bool lane_idle(const struct lan_conn *lc)
{
	if (!lc->sc->feed || lc->todo_head != lc->todo_tail ||
	    lc->sending >= 0 || lc->sq_n)
		return false;
	for (int i = 0; i < SLOTS; i++)
		if (lc->slots[i].state != S_FREE)
			return false;
	for (uint32_t i = 0; i < lc->sc->m->n_segments; i++)
		if (lc->given[i] && !lc->acked[i] &&
		    !lc->sc->feed->is_done(lc->sc->feed->arg, i))
			return false;
	return true;
}

/* Every segment is acknowledged (by any output of a striped send), and
 * nothing of ours is still going. */
static bool all_acked(const struct lan_conn *lc)
{
	if (lc->todo_head != lc->todo_tail || lc->sending >= 0 || lc->sq_n)
		return false;
	if (!lc->sc->feed)
		return lc->n_acked == lc->n_need;
	for (int i = 0; i < SLOTS; i++)
		if (lc->slots[i].state != S_FREE)
			return false;
	return lc->sc->feed->all_done(lc->sc->feed->arg);
}

/*
 * The I/O loop's reading: the segments whose reads waited for room in
 * flight go on, then new segments start while slots and buffers allow.
 */
static void feed_reads(struct lan_conn *lc)
{
	int rc;

	/* a segment's reads that waited for room in flight */
	if (!lc->error)
		fr_producer_more(&lc->prod);
	/* start reads while slots and buffers allow */
	for (int i = 0; i < SLOTS && !lc->error; i++) {
		if (lc->slots[i].state != S_FREE)
			continue;
		if ((int)fr_pool_avail(lc->pool) <= lc->reserve)
			break;
		if (lc->todo_head == lc->todo_tail && !take_assigned(lc))
			continue;
		uint32_t seg = lc->todo[lc->todo_head % lc->todo_cap];
		/* the receiver's copy is the one hashed before (not after a
		 * NAK, which says it is not) */
		bool same = !lc->resends[seg] && copy_known(lc->held, lc->sc, seg);
		if (same)
			same_as_held(lc, seg);
		if (same || lc->acked[seg] || seg_done_elsewhere(lc, seg)) {
			/* a NAK raced an old ACK; another link's copy won */
			lc->todo_head++;
			i--;
			continue;
		}
		lc->todo_head++;
		/* a failure after some reads went out is the slot's
		 * error, said once those reads are back (read_back) */
		rc = start_read(lc, i, seg);
		if (rc < 0 && lc->slots[i].state == S_FREE)
			read_failed(lc, lc->slots[i].ps);
		if (rc < 0)
			break;
	}
}

static int lan_send(struct fr_output *o, struct fr_send_ctx *sc,
		    const uint8_t *have, char *err, size_t cap)
{
	struct lan_conn *lc = lc_of(o);
	const struct fr_manifest *m = sc->m;
	struct fr_cqe cqes[64];
	int rc;

	lc->sc = sc;
	lc->a = o->a;
	lc->c = o->c;
	lc->senders = o->senders;
	lc->todo_cap = m->n_segments * (MAX_RESENDS + 1) + 1;
	lc->todo = malloc(lc->todo_cap * sizeof(uint32_t));
	lc->acked = calloc(m->n_segments + 1, 1);
	lc->resends = calloc(m->n_segments + 1, 1);
	lc->given = calloc(m->n_segments + 1, 1);
	lc->fstart = calloc(m->n_segments + 1, sizeof(*lc->fstart));
	lc->flen = calloc(m->n_segments + 1, sizeof(*lc->flen));
	lc->fkept = calloc(m->n_segments + 1, sizeof(*lc->fkept));
	if (!lc->todo || !lc->acked || !lc->resends || !lc->given ||
	    !lc->fstart || !lc->flen || !lc->fkept) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < m->n_segments; i++) {
		if (have[i]) {
			lc->n_held0++;
			sc->segs_skipped++;
			sc->skipped_raw += m->segments[i].length;
			lc->acked[i] = 1;
			lc->acked_raw += m->segments[i].length;
		} else if (sc->feed) { /* given one by one (take_assigned) */
			lc->n_need++;
		} else {
			todo_push(lc, i);
			lc->n_need++;
		}
		if (have[i] && sc->feed)
			sc->feed->held(sc->feed->arg, i);
	}
	for (int i = 0; i < SLOTS; i++) {
		lc->slots[i].lc = lc;
		lc->slots[i].ps = &lc->prod.slots[i];
	}
	fr_adapt_init(&lc->adapt, sc->workers, sc->level);
	lc->reserve = sc->level == 0 ? 0 : sc->workers;
	/* room for the shift of a segment read to line up (O_DIRECT) */
	size_t bsz = HEADROOM + FR_DIO_ALIGN + fr_seg_bound(m->seg_size);
	rc = fr_pool_new(&lc->pool, (unsigned)(SLOTS + lc->reserve), bsz);
	if (rc == 0)
		rc = fr_ring_new(&lc->ring, 256);
	if (rc == 0)
		rc = fr_ring_attach_pool(lc->ring, lc->pool);
	if (rc == 0 || rc == 1)
		rc = fr_doneq_init(&lc->done);
	if (rc == 0) {
		struct fr_prod_host h = {.ring = lc->ring,
					 .pool = lc->pool,
					 .headroom = HEADROOM,
					 .dq = &lc->done,
					 .ud = UD(K_READ, 0, 0),
					 .read_back = read_back,
					 .arg = lc};
		rc = fr_producer_init_on(&lc->prod, m, sc->root, sc->single,
					 m->lid, SLOTS, &h);
	}
	if (rc < 0) {
		snprintf(err, cap, "cannot set up the data path: %s",
			 fr_strerror(rc));
		goto out;
	}
	choose_paths(lc, o, sc);
	/* what went before the frames (the handshake, the offer) */
	if (fr_tcp_written(lc->sock, &lc->tcp_base) < 0)
		lc->tcp_base = UINT64_MAX; /* no count from TCP: ACKs only */
	fr_ring_read(lc->ring, lc->done.efd, -1, &lc->done.efd_buf, 8, 0,
		     UD(K_EVENT, 0, 0));
	fr_ring_recv(lc->ring, lc->sock, lc->ackbuf, sizeof(lc->ackbuf), false,
		     UD(K_ACK, 0, 0));
	fr_ring_timeout(lc->ring, 250, UD(K_TICK, 0, 0));
	tick(lc);

	while (!lc->error && !lc->finished) {
		feed_reads(lc);
		if (!lc->end_sent && all_acked(lc)) {
			if ((rc = send_end(lc)) < 0)
				break;
			lc->end_sent = true;
		}
		int n = fr_ring_wait(lc->ring, cqes, FR_ARRAY_SIZE(cqes), -1);
		if (n < 0) {
			fail(lc, n, "ring wait failed: %s", fr_strerror(n));
			break;
		}
		for (int i = 0; i < n; i++)
			dispatch(lc, &cqes[i], false);
	}
	tick(lc);
	drain(lc);
	fr_log(FR_LOG_DEBUG, "source read: %.1f MiB with O_DIRECT, %.1f MiB buffered",
	       lc->prod.src.read_dio / 1048576.0,
	       lc->prod.src.read_buf / 1048576.0);
	rc = lc->error;
	if (rc < 0)
		snprintf(err, cap, "%s", lc->err);
	else if (!lc->finished) {
		rc = FR_E_INCOMPLETE;
		snprintf(err, cap, "transfer ended before the receiver confirmed it");
	}
out:
	fr_producer_fini(&lc->prod); /* (its buffers back to the pool) */
	fr_ring_free(lc->ring); /* cancels what is still pending */
	lc->ring = NULL;
	if (lc->done.efd > 0)
		fr_doneq_fini(&lc->done);
	fr_pool_free(lc->pool);
	lc->pool = NULL;
	free(lc->todo);
	free(lc->acked);
	free(lc->resends);
	free(lc->given);
	free(lc->fstart);
	free(lc->flen);
	free(lc->fkept);
	lc->todo = NULL;
	lc->acked = lc->resends = lc->given = NULL;
	return rc;
}

int fr_output_fd(const struct fr_output *o)
{
	const struct lan_conn *lc = o->priv;

	return lc ? lc->sock : -1;
}

const struct fr_output_ops fr_output_lan = {
	.name = "lan",
	.open = lan_open,
	.offer = lan_offer,
	.send = lan_send,
	.close = lan_close,
};
