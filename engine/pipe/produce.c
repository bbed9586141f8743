/*
 * produce.c - the frame producer: a package's segments made into frames
 * for an output, the stages overlapped and no byte copied between them.
 *
 *   push (caller's thread): the segment's reads started into the slot's
 *     buffer (source/aread.c on the producer's ring: O_DIRECT middles,
 *     the caller goes on at once)
 *   -> its reads back (seen by push and take): a worker checks XXH3
 *     against the manifest (or settles it), compresses with zstd into
 *     the slot's second buffer at the level the output asked for, packs
 *     the header, then runs the output's finish (a parcel seals the
 *     frame in place there, on the worker's core)
 *   -> take (caller's thread): the oldest frame, in the order pushed;
 *     the payload is the compressor's buffer or the read buffer itself.
 *
 * A slot is its worker job (struct fr_wjob first), so the frames are
 * waited for in order with no allocation per segment. One ring waits for
 * both: the reads, and the workers' eventfd. Used by the courier
 * (out/parcel.c) and by `ferry bench pipeline` (bench.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipe/fr_pipe.h"

/* completions: a read (slot << 40 | its number), or the workers' event */
#define UD_EVENT (1ull << 63)

static void arm(struct fr_producer *p);

static void work_frame(struct fr_job *job, int worker)
{
	struct fr_prod_slot *s = (struct fr_prod_slot *)job;
	struct fr_producer *p = s->p;
	uint32_t len = p->m->segments[s->seg].length;
	double t0 = fr_thread_cpu_s();

	s->result = fr_frame_encode(fr_workq_cctx(worker), &s->f, p->fid,
				    s->seg, s->raw, len, s->want, s->out,
				    s->out_cap, s->level);
	if (s->result == 0) {
		s->payload = (s->f.flags & FR_FRAME_ZSTD) ? s->out : s->raw;
		s->stored = s->f.stored_len;
		fr_frame_pack(s->fhdr, &s->f);
		if (p->finish)
			p->finish(s, worker, p->arg);
	}
	s->cpu_s = fr_thread_cpu_s() - t0;
}

int fr_producer_init(struct fr_producer *p, const struct fr_manifest *m,
		     const char *root, bool single, const uint8_t *fid,
		     unsigned depth, fr_prod_finish_fn *finish, void *arg)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->dq.efd = -1;
	if (depth < 1 || depth > FR_PRODUCER_MAX)
		return -EINVAL;
	p->m = m;
	p->root = root;
	p->single = single;
	p->fid = fid;
	p->depth = depth;
	p->finish = finish;
	p->arg = arg;
	/* a read buffer: the segment's shift, and its last O_DIRECT read
	 * rounded up to the block */
	size_t bsz = 2 * FR_DIO_ALIGN + m->seg_size;
	if ((rc = fr_doneq_init(&p->dq)) < 0 ||
	    (rc = fr_pool_new(&p->pool, depth, bsz)) < 0 ||
	    (rc = fr_ring_new(&p->ring, 256)) < 0)
		return rc;
	rc = fr_ring_attach_pool(p->ring, p->pool);
	if (rc < 0 ||
	    (rc = fr_aread_init(&p->src, p->ring, m, root, single)) < 0)
		return rc;
	for (unsigned i = 0; i < depth; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		s->p = p;
		s->index = i;
		s->buf = fr_pool_get(p->pool);
		s->out_cap = fr_seg_bound(m->seg_size);
		if (s->buf < 0 || !(s->out = malloc(s->out_cap)))
			return -ENOMEM;
	}
	arm(p);
	return p->armed ? 0 : -EBUSY;
}

void fr_producer_buffered(struct fr_producer *p)
{
	if (p->src.nodirect)
		memset(p->src.nodirect, 1, p->m->n_entries);
}

/* The workers' jobs back so far, marked done. */
static void jobs_back(struct fr_producer *p)
{
	for (struct fr_job *j = fr_doneq_take(&p->dq); j; j = j->next)
		((struct fr_wjob *)j)->done = true;
}

/* Slot s's reads are all back: to a worker, or its error kept. */
static void reads_back(struct fr_producer *p, struct fr_prod_slot *s)
{
	int rc = fr_aread_finish(&p->src, &s->ar);

	s->reading = false;
	if (--p->n_reading == 0)
		p->read_s += fr_now_s() - p->read_from;
	if (rc < 0) {
		char ep[4 * sizeof(s->ar.errpath)];
		s->result = rc;
		snprintf(s->err, sizeof(s->err), "cannot read '%s': %s",
			 fr_esc(s->ar.errpath, ep, sizeof(ep)), fr_strerror(rc));
		s->pj.done = true; /* nothing for a worker */
		return;
	}
	p->read_bytes += p->m->segments[s->seg].length;
	if (p->closing) { /* read in part (fini stopped its reads): no frame */
		s->pj.done = true;
		return;
	}
	fr_wjob_push(&s->pj, work_frame, &p->dq);
}

/* The workers' eventfd read, out again. */
static void arm(struct fr_producer *p)
{
	p->armed = fr_ring_read(p->ring, p->dq.efd, -1, &p->dq.efd_buf, 8, 0,
				UD_EVENT) == 0;
}

/* One wait on the ring (timeout_ms: -1 for ever, 0 a look), and what
 * came handled. 0, or the ring's error (then the producer is broken:
 * nothing more is pushed). */
static int step(struct fr_producer *p, int timeout_ms)
{
	struct fr_cqe c[64];

	if (!p->armed) { /* (no room for it last time) */
		arm(p);
		if (!p->armed && timeout_ms < 0)
			timeout_ms = 10; /* look at the workers' queue again soon */
	}
	int n = fr_ring_wait(p->ring, c, FR_ARRAY_SIZE(c), timeout_ms);
	if (n < 0 && n != -EINTR && n != -ETIME)
		return p->broken = n;
	for (int i = 0; i < n; i++) {
		if (c[i].ud == UD_EVENT) {
			arm(p);
			continue;
		}
		struct fr_prod_slot *s = &p->slots[c[i].ud >> 40];
		if (fr_aread_on(&p->src, &s->ar, (uint32_t)c[i].ud, c[i].res))
			reads_back(p, s);
	}
	/* reads that waited for room in flight, oldest slot first */
	for (unsigned k = 0; k < p->depth; k++) {
		struct fr_prod_slot *s = &p->slots[(p->taken + k) % p->depth];
		if (s->reading && s->ar.more) {
			fr_aread_more(&p->src, &s->ar);
			if (fr_aread_done(&s->ar))
				reads_back(p, s);
		}
	}
	fr_ring_submit(p->ring); /* (resubmitted reads too) go now */
	jobs_back(p);
	return 0;
}

double fr_producer_read_s(const struct fr_producer *p)
{
	return p->read_s + (p->n_reading ? fr_now_s() - p->read_from : 0);
}

void fr_producer_fini(struct fr_producer *p)
{
	bool stuck = false;

	/* nothing in flight may point into the buffers when they go: no
	 * more reads start, those out come back, and the workers' jobs */
	p->closing = true;
	for (unsigned i = 0; i < p->depth; i++)
		p->slots[i].ar.more = false;
	for (;;) {
		bool busy = false;
		for (unsigned i = 0; i < p->depth; i++) {
			struct fr_prod_slot *s = &p->slots[i];
			if (s->reading && s->ar.pending == 0) {
				fr_aread_finish(&p->src, &s->ar);
				s->reading = false;
				p->n_reading--;
				s->pj.done = true; /* no job was pushed */
			}
			busy |= s->reading || (s->pj.busy && !s->pj.done);
		}
		if (!busy || !p->ring)
			break;
		if (step(p, 1000) < 0) {
			stuck = true;
			break;
		}
	}
	if (stuck) {
		/* the ring failed with reads or jobs out: their buffers are
		 * left to the process rather than freed under them */
		fr_log(FR_LOG_ERROR, "the source's reads could not be waited "
		       "for: %s", fr_strerror(p->broken));
		return;
	}
	for (unsigned i = 0; i < FR_PRODUCER_MAX; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		fr_aread_seg_fini(&s->ar);
		free(s->out);
		s->out = NULL;
	}
	fr_aread_fini(&p->src);
	fr_ring_free(p->ring); /* the eventfd's read cancelled */
	p->ring = NULL;
	fr_pool_free(p->pool);
	p->pool = NULL;
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
	struct fr_prod_slot *s = &p->slots[p->pushed % p->depth];
	uint32_t shift = fr_dio_shift(p->m, seg);
	s->seg = seg;
	s->level = level;
	s->want = want;
	s->result = 0;
	s->stored = 0;
	s->payload = NULL;
	s->err[0] = 0;
	s->raw = (uint8_t *)fr_pool_buf(p->pool, s->buf) + shift;
	s->pj.done = false;
	s->pj.busy = true;
	s->reading = true;
	if (p->n_reading++ == 0)
		p->read_from = fr_now_s();
	int rc = fr_aread_start(&p->src, &s->ar, seg, s->buf, s->raw,
				fr_pool_buf_size(p->pool) - shift,
				(uint64_t)s->index << 40);
	if (rc < 0) { /* (an open that failed): its other reads back first */
		while (s->reading && s->ar.pending && step(p, -1) == 0)
			;
		if (s->reading && s->ar.pending) { /* the ring failed */
			snprintf(err, cap, "cannot wait for the source's reads: "
				 "%s", fr_strerror(p->broken));
			p->pushed++; /* the slot stays out: fini leaves it */
			return p->broken;
		}
		if (s->reading)
			reads_back(p, s);
		s->pj.busy = false;
		snprintf(err, cap, "%s", s->err);
		return s->result ? s->result : rc;
	}
	if (fr_aread_done(&s->ar)) /* an empty segment */
		reads_back(p, s);
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
	while (!s->pj.done) {
		int rc = step(p, -1);
		if (rc == 0)
			continue;
		if (s->reading) { /* the ring failed: no frame (the slot is
				   * never pushed again: p->broken) */
			s->result = rc;
			snprintf(s->err, sizeof(s->err),
				 "cannot wait for the source's reads: %s",
				 fr_strerror(rc));
			break;
		}
		/* its worker's job comes back all the same */
		while (jobs_back(p), !s->pj.done)
			usleep(1000);
		break;
	}
	s->pj.busy = false;
	p->taken++;
	return s;
}
