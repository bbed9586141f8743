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

#include "pipe/fr_pipe.h"

/* completions: a read (slot << 40 | its number), or the workers' event */
#define UD_EVENT (1ull << 63)

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
	if ((rc = fr_ring_read(p->ring, p->dq.efd, -1, &p->dq.efd_buf, 8, 0,
			       UD_EVENT)) < 0)
		return rc;
	p->armed = true;
	return 0;
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
	fr_wjob_push(&s->pj, work_frame, &p->dq);
}

/* One wait on the ring (timeout_ms: -1 for ever, 0 a look), and what
 * came handled. 0, or the ring's error. */
static int step(struct fr_producer *p, int timeout_ms)
{
	struct fr_cqe c[64];
	int n = fr_ring_wait(p->ring, c, FR_ARRAY_SIZE(c), timeout_ms);

	if (n < 0)
		return n == -EINTR || n == -ETIME ? 0 : n;
	for (int i = 0; i < n; i++) {
		if (c[i].ud == UD_EVENT) {
			p->armed = fr_ring_read(p->ring, p->dq.efd, -1,
						&p->dq.efd_buf, 8, 0,
						UD_EVENT) == 0;
			continue;
		}
		struct fr_prod_slot *s = &p->slots[c[i].ud >> 40];
		if (fr_aread_on(&p->src, &s->ar, (uint32_t)c[i].ud, c[i].res))
			reads_back(p, s);
	}
	/* reads that waited for room in flight */
	for (unsigned i = 0; i < p->depth; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		if (s->reading && s->ar.more) {
			fr_aread_more(&p->src, &s->ar);
			if (fr_aread_done(&s->ar))
				reads_back(p, s);
		}
	}
	jobs_back(p);
	return 0;
}

void fr_producer_fini(struct fr_producer *p)
{
	/* nothing in flight may point into the buffers when they go */
	for (;;) {
		bool busy = false;
		for (unsigned i = 0; i < p->depth; i++) {
			struct fr_prod_slot *s = &p->slots[i];
			if (s->reading && s->ar.pending == 0) { /* waited for room */
				fr_aread_finish(&p->src, &s->ar);
				s->reading = false;
			}
			busy |= s->reading || (s->pj.busy && !s->pj.done);
		}
		if (!busy || !p->ring || step(p, 1000) < 0)
			break;
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
		if (s->reading) { /* the ring failed: no frame */
			s->result = rc;
			snprintf(s->err, sizeof(s->err),
				 "cannot wait for the source's reads: %s",
				 fr_strerror(rc));
		} else { /* its worker's job comes back all the same */
			fr_wjob_wait(&p->dq, &s->pj);
		}
		break;
	}
	s->pj.busy = false;
	p->taken++;
	return s;
}
