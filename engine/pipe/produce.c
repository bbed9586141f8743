/*
 * produce.c - the frame producer: a package's segments made into frames
 * for an output, the stages overlapped and no byte copied between them.
 *
 *   read (the caller's thread): the segment's reads started into a pool
 *     buffer (source/aread.c on the ring: O_DIRECT middles), at the
 *     output's headroom; the caller goes on at once
 *   -> its reads back: on its own, a worker is given the slot at the
 *     level pushed; on an output's loop, the output is called back and
 *     chooses the level, the reference, the way the frame goes
 *   -> the worker (fr_producer_encode): XXH3 checked against the
 *     manifest (or settled), zstd into a second pool buffer at the
 *     headroom when the level says so (the read buffer back at once),
 *     the header packed, then the output's own step (a parcel seals the
 *     frame in place there; a session seals it and lays its envelope in
 *     the headroom)
 *   -> on its own, take: the oldest frame, in the order pushed; on an
 *     output's loop, the job comes back on the output's done queue.
 *
 * A slot is its worker job (struct fr_job first), so no allocation is
 * made per segment. On its own, one ring waits for both the reads and
 * the workers' eventfd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipe/fr_pipe.h"

/* completions on its own ring: a read (slot << 40 | its number), or the
 * workers' event */
#define UD_EVENT (1ull << 63)
#define UD_INDEX(ud) ((unsigned)(((ud) >> 40) & 0xffff))

static void arm(struct fr_producer *p);

void fr_producer_encode(struct fr_prod_slot *s, int worker)
{
	struct fr_producer *p = s->p;
	struct fr_pool *pool = p->h.pool;
	uint32_t len = p->m->segments[s->seg].length;
	int out = s->level > 0 ? fr_pool_get(pool) : -1;
	uint8_t *dst = out >= 0 ? (uint8_t *)fr_pool_buf(pool, out) +
					  p->h.headroom
				: NULL;

	s->result = fr_frame_encode_ref(
		fr_workq_cctx(worker), &s->f, p->fid, s->seg, s->raw, len,
		s->want, dst, fr_pool_buf_size(pool) - p->h.headroom, s->level,
		s->ref, s->ref_len, s->ref_seg);
	if (s->result == 0 && (s->f.flags & FR_FRAME_ZSTD)) {
		/* the read buffer is not sent: back at once */
		s->out_buf = out;
		s->payload = dst;
		fr_pool_put(pool, s->in_buf);
		s->in_buf = -1;
		s->raw = NULL;
	} else {
		if (out >= 0)
			fr_pool_put(pool, out);
		s->payload = s->raw;
	}
	if (s->result == 0) {
		s->stored = s->f.stored_len;
		fr_frame_pack(s->fhdr, &s->f);
	}
}

/* The work of a producer on its own: the frame, and the output's step. */
static void work_frame(struct fr_prod_slot *s, int worker)
{
	struct fr_producer *p = s->p;
	double t0 = fr_thread_cpu_s();

	fr_producer_encode(s, worker);
	if (s->result == 0 && p->finish)
		p->finish(s, worker, p->arg);
	s->cpu_s = fr_thread_cpu_s() - t0;
}

static void run_job(struct fr_job *job, int worker)
{
	struct fr_prod_slot *s = (struct fr_prod_slot *)job;

	s->work(s, worker);
}

void fr_producer_work(struct fr_prod_slot *s, fr_prod_work_fn *fn)
{
	s->state = FR_PS_WORKING;
	s->back = false;
	s->work = fn;
	s->job.fn = run_job;
	s->job.done = s->p->h.dq;
	fr_workq_push(&s->job);
}

void fr_producer_release(struct fr_prod_slot *s)
{
	struct fr_pool *pool = s->p->h.pool;

	if (s->in_buf >= 0)
		fr_pool_put(pool, s->in_buf);
	if (s->out_buf >= 0)
		fr_pool_put(pool, s->out_buf);
	s->in_buf = s->out_buf = -1;
	s->raw = s->payload = NULL;
	s->want = s->ref = NULL;
	s->state = FR_PS_FREE;
}

/* What both ways share: the package, the slots. */
static int setup(struct fr_producer *p, const struct fr_manifest *m,
		 const char *root, bool single, const uint8_t *fid,
		 unsigned depth)
{
	memset(p, 0, sizeof(*p));
	p->dq.efd = -1;
	if (depth < 1 || depth > FR_PRODUCER_MAX)
		return -EINVAL;
	p->m = m;
	p->root = root;
	p->single = single;
	p->fid = fid;
	p->depth = depth;
	for (unsigned i = 0; i < FR_PRODUCER_MAX; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		s->p = p;
		s->index = i;
		s->in_buf = s->out_buf = -1;
	}
	return 0;
}

int fr_producer_init_on(struct fr_producer *p, const struct fr_manifest *m,
			const char *root, bool single, const uint8_t *fid,
			unsigned depth, const struct fr_prod_host *h)
{
	int rc = setup(p, m, root, single, fid, depth);

	if (rc < 0)
		return rc;
	p->h = *h;
	return fr_aread_init(&p->src, p->h.ring, m, root, single);
}

int fr_producer_init(struct fr_producer *p, const struct fr_manifest *m,
		     const char *root, bool single, const uint8_t *fid,
		     unsigned depth, fr_prod_finish_fn *finish, void *arg)
{
	int rc = setup(p, m, root, single, fid, depth);

	if (rc < 0)
		return rc;
	p->finish = finish;
	p->arg = arg;
	p->own = true;
	p->h.dq = &p->dq;
	/* a buffer: the segment's shift and its last O_DIRECT read rounded
	 * up to the block, or its frame. Each slot holds one, and a worker
	 * compressing one more for a moment. */
	size_t bsz = 2 * FR_DIO_ALIGN + fr_seg_bound(m->seg_size);
	unsigned n = depth + (unsigned)fr_workq_count();
	if ((rc = fr_doneq_init(&p->dq)) < 0 ||
	    (rc = fr_pool_new(&p->h.pool, n, bsz)) < 0 ||
	    (rc = fr_ring_new(&p->h.ring, 256)) < 0)
		return rc;
	rc = fr_ring_attach_pool(p->h.ring, p->h.pool);
	if (rc < 0 ||
	    (rc = fr_aread_init(&p->src, p->h.ring, m, root, single)) < 0)
		return rc;
	arm(p);
	return p->armed ? 0 : -EBUSY;
}

void fr_producer_buffered(struct fr_producer *p)
{
	if (p->src.nodirect)
		memset(p->src.nodirect, 1, p->m->n_entries);
}

/* A read of slot s's failed with rc: said, naming the file. */
static void read_error(struct fr_prod_slot *s, int rc)
{
	char ep[4 * sizeof(s->ar.errpath)];

	s->result = rc;
	snprintf(s->err, sizeof(s->err), "cannot read '%s': %s",
		 fr_esc(s->ar.errpath, ep, sizeof(ep)), fr_strerror(rc));
}

/* Slot s's reads are over: its error said, the time counted. */
static int reads_over(struct fr_producer *p, struct fr_prod_slot *s)
{
	int rc = fr_aread_finish(&p->src, &s->ar);

	if (--p->n_reading == 0)
		p->read_s += fr_now_s() - p->read_from;
	if (rc < 0)
		read_error(s, rc);
	else
		p->read_bytes += p->m->segments[s->seg].length;
	return rc;
}

/* Slot s's reads are all back: to a worker (on its own), to the output,
 * or, when stopping, nowhere. */
static void reads_back(struct fr_producer *p, struct fr_prod_slot *s)
{
	int rc = reads_over(p, s);

	if (p->closing) { /* read in part (its reads were stopped) */
		if (p->own) {
			s->state = FR_PS_MADE;
			s->back = true;
		} else {
			fr_producer_release(s);
		}
		return;
	}
	if (!p->own) {
		p->h.read_back(s, p->h.arg);
		return;
	}
	if (rc < 0) { /* nothing for a worker */
		s->state = FR_PS_MADE;
		s->back = true;
		return;
	}
	fr_producer_work(s, work_frame);
}

int fr_producer_read(struct fr_producer *p, unsigned i, uint32_t seg)
{
	struct fr_prod_slot *s = &p->slots[i];

	int b = p->broken ? p->broken
		: i >= p->depth || s->state != FR_PS_FREE ||
				seg >= p->m->n_segments
			? -EINVAL
			: fr_pool_get(p->h.pool);
	if (b < 0) { /* (the slot free, its error said) */
		s->result = b;
		snprintf(s->err, sizeof(s->err),
			 "cannot start reading segment %u: %s", seg,
			 fr_strerror(b));
		return b;
	}
	uint32_t shift = fr_dio_shift(p->m, seg);
	uint32_t at = p->h.headroom + shift;
	s->seg = seg;
	s->in_buf = b;
	s->out_buf = -1;
	s->raw = (uint8_t *)fr_pool_buf(p->h.pool, b) + at;
	s->payload = NULL;
	s->result = 0;
	s->stored = 0;
	s->err[0] = 0;
	s->state = FR_PS_READING;
	s->back = false;
	if (p->n_reading++ == 0)
		p->read_from = fr_now_s();
	int rc = fr_aread_start(&p->src, &s->ar, seg, b, s->raw,
				fr_pool_buf_size(p->h.pool) - at,
				p->h.ud | (uint64_t)i << 40);
	if (rc < 0 && s->ar.pending == 0) { /* nothing went: free again */
		int e = fr_aread_finish(&p->src, &s->ar);
		if (--p->n_reading == 0)
			p->read_s += fr_now_s() - p->read_from;
		if (e < 0) {
			read_error(s, e);
		} else {
			s->result = rc;
			snprintf(s->err, sizeof(s->err),
				 "cannot start reading segment %u: %s", seg,
				 fr_strerror(rc));
		}
		fr_producer_release(s);
		return s->result;
	}
	if (fr_aread_done(&s->ar)) /* an empty segment */
		reads_back(p, s);
	return rc;
}

void fr_producer_on_cqe(struct fr_producer *p, const struct fr_cqe *c)
{
	unsigned i = UD_INDEX(c->ud);
	struct fr_prod_slot *s = &p->slots[i];

	if (i < p->depth && s->state == FR_PS_READING &&
	    fr_aread_on(&p->src, &s->ar, (uint32_t)c->ud, c->res))
		reads_back(p, s);
}

void fr_producer_more(struct fr_producer *p)
{
	/* oldest slot first on its own */
	for (unsigned k = 0; k < p->depth && !p->closing; k++) {
		struct fr_prod_slot *s =
			&p->slots[(p->own ? p->taken + k : k) % p->depth];
		if (s->state == FR_PS_READING && s->ar.more) {
			fr_aread_more(&p->src, &s->ar);
			if (fr_aread_done(&s->ar))
				reads_back(p, s);
		}
	}
}

bool fr_producer_stop(struct fr_producer *p)
{
	bool reading = false;

	/* nothing in flight may point into the buffers when they go: no
	 * more reads start, and those out come back */
	p->closing = true;
	for (unsigned i = 0; i < p->depth; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		if (s->state != FR_PS_READING)
			continue;
		s->ar.more = false;
		if (s->ar.pending == 0)
			reads_back(p, s);
		else
			reading = true;
	}
	return reading;
}

/* The workers' jobs back so far, marked (on its own). */
static void jobs_back(struct fr_producer *p)
{
	for (struct fr_job *j = fr_doneq_take(&p->dq); j; j = j->next) {
		struct fr_prod_slot *s = (struct fr_prod_slot *)j;
		s->state = FR_PS_MADE;
		s->back = true;
	}
}

/* The workers' eventfd read, out again. */
static void arm(struct fr_producer *p)
{
	p->armed = fr_ring_read(p->h.ring, p->dq.efd, -1, &p->dq.efd_buf, 8, 0,
				UD_EVENT) == 0;
}

/* On its own: one wait on the ring (timeout_ms: -1 for ever, 0 a look),
 * and what came handled. 0, or the ring's error (then the producer is
 * broken: nothing more is pushed). */
static int step(struct fr_producer *p, int timeout_ms)
{
	struct fr_cqe c[64];

	if (!p->armed) { /* (no room for it last time) */
		arm(p);
		if (!p->armed && timeout_ms < 0)
			timeout_ms = 10; /* look at the workers' queue again soon */
	}
	int n = fr_ring_wait(p->h.ring, c, FR_ARRAY_SIZE(c), timeout_ms);
	if (n < 0 && n != -EINTR && n != -ETIME)
		return p->broken = n;
	for (int i = 0; i < n; i++) {
		if (c[i].ud == UD_EVENT)
			arm(p);
		else
			fr_producer_on_cqe(p, &c[i]);
	}
	fr_producer_more(p); /* reads that waited for room in flight */
	fr_ring_submit(p->h.ring); /* (resubmitted reads too) go now */
	jobs_back(p);
	return 0;
}

double fr_producer_read_s(const struct fr_producer *p)
{
	return p->read_s + (p->n_reading ? fr_now_s() - p->read_from : 0);
}

/* On its own: the reads and jobs still out waited for. false if the
 * ring failed with some out. */
static bool wait_out(struct fr_producer *p)
{
	fr_producer_stop(p);
	for (;;) {
		bool busy = false;
		for (unsigned i = 0; i < p->depth; i++) {
			struct fr_prod_slot *s = &p->slots[i];
			busy |= s->state == FR_PS_READING ||
				(s->state == FR_PS_WORKING && !s->back);
		}
		if (!busy || !p->h.ring)
			return true;
		if (step(p, 1000) < 0)
			return false;
	}
}

void fr_producer_fini(struct fr_producer *p)
{
	if (p->own && !wait_out(p)) {
		/* the ring failed with reads or jobs out: their buffers are
		 * left to the process rather than freed under them */
		fr_log(FR_LOG_ERROR, "the source's reads could not be waited "
		       "for: %s", fr_strerror(p->broken));
		return;
	}
	for (unsigned i = 0; i < FR_PRODUCER_MAX; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		if (p->h.pool && s->p == p && s->state != FR_PS_READING)
			fr_producer_release(s);
		fr_aread_seg_fini(&s->ar);
	}
	fr_aread_fini(&p->src);
	if (!p->own)
		return; /* the output's ring, pool and queue */
	fr_ring_free(p->h.ring); /* the eventfd's read cancelled */
	p->h.ring = NULL;
	fr_pool_free(p->h.pool);
	p->h.pool = NULL;
	if (p->dq.efd >= 0)
		fr_doneq_fini(&p->dq);
	p->dq.efd = -1;
}

unsigned fr_producer_pending(const struct fr_producer *p)
{
	return p->pushed - p->taken;
}

unsigned fr_producer_room(const struct fr_producer *p)
{
	return p->depth - fr_producer_pending(p);
}

int fr_producer_push(struct fr_producer *p, uint32_t seg, int level,
		     const uint8_t *want, char *err, size_t cap)
{
	if (!fr_producer_room(p) || seg >= p->m->n_segments)
		return -EINVAL;
	if (p->broken) {
		snprintf(err, cap, "cannot wait for the source's reads: %s",
			 fr_strerror(p->broken));
		return p->broken;
	}
	unsigned i = p->pushed % p->depth;
	struct fr_prod_slot *s = &p->slots[i];
	if (s->state != FR_PS_FREE) /* the frame taken before: done with */
		fr_producer_release(s);
	s->level = level;
	s->want = want;
	int rc = fr_producer_read(p, i, seg);
	if (rc < 0) {
		if (s->state == FR_PS_FREE) {
			snprintf(err, cap, "%s", s->err);
			return rc;
		}
		/* (an open that failed): its other reads back first */
		while (s->state == FR_PS_READING && step(p, -1) == 0)
			;
		if (s->state == FR_PS_READING) { /* the ring failed */
			snprintf(err, cap, "cannot wait for the source's reads: "
				 "%s", fr_strerror(p->broken));
			p->pushed++; /* the slot stays out: fini leaves it */
			return p->broken;
		}
		snprintf(err, cap, "%s", s->err);
		rc = s->result ? s->result : rc;
		fr_producer_release(s);
		return rc;
	}
	p->pushed++;
	step(p, 0); /* what came meanwhile */
	return 0;
}

struct fr_prod_slot *fr_producer_take(struct fr_producer *p)
{
	if (p->taken == p->pushed)
		return NULL;
	struct fr_prod_slot *s = &p->slots[p->taken % p->depth];
	jobs_back(p);
	while (!s->back) {
		int rc = step(p, -1);
		if (rc == 0)
			continue;
		if (s->state == FR_PS_READING) {
			/* the ring failed: no frame (the slot is never
			 * pushed again: p->broken) */
			s->result = rc;
			snprintf(s->err, sizeof(s->err),
				 "cannot wait for the source's reads: %s",
				 fr_strerror(rc));
			break;
		}
		/* its worker's job comes back all the same */
		while (jobs_back(p), !s->back)
			usleep(1000);
		break;
	}
	p->taken++;
	return s;
}
