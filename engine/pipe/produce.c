/*
 * produce.c - the frame producer: a package's segments made into frames
 * for an output, the stages overlapped and no byte copied between them.
 *
 *   push (caller's thread): the segment read into the slot's buffer
 *     (fr_seg_read: the ring reader of scan.c)
 *   -> a worker: XXH3 checked against the manifest (or settled), zstd
 *     into the slot's second buffer at the level the output asked for,
 *     the header packed, then the output's finish (a parcel seals the
 *     frame in place there, on the worker's core)
 *   -> take (caller's thread): the oldest frame, in the order pushed;
 *     the payload is the compressor's buffer or the read buffer itself.
 *
 * A slot is its worker job (struct fr_wjob first), so the frames are
 * waited for in order with no allocation per segment. Used by the
 * courier (out/parcel.c) and by `ferry bench pipeline` (bench.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pipe/fr_pipe.h"

static void work_frame(struct fr_job *job, int worker)
{
	struct fr_prod_slot *s = (struct fr_prod_slot *)job;
	struct fr_producer *p = s->p;
	uint32_t len = p->m->segments[s->seg].length;
	double t0 = fr_thread_cpu_s();

	s->result = fr_frame_encode(fr_workq_cctx(worker), &s->f, p->fid,
				    s->seg, s->rd.buf, len, s->want, s->out,
				    s->out_cap, s->level);
	if (s->result == 0) {
		s->payload = (s->f.flags & FR_FRAME_ZSTD) ? s->out : s->rd.buf;
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
	if ((rc = fr_doneq_init(&p->dq)) < 0)
		return rc;
	for (unsigned i = 0; i < depth; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		s->p = p;
		s->index = i;
		s->out_cap = fr_seg_bound(m->seg_size);
		if ((rc = fr_seg_reader_init(&s->rd, m->seg_size)) < 0)
			return rc;
		if (!(s->out = malloc(s->out_cap)))
			return -ENOMEM;
	}
	return 0;
}

void fr_producer_fini(struct fr_producer *p)
{
	for (unsigned i = 0; i < FR_PRODUCER_MAX; i++) {
		struct fr_prod_slot *s = &p->slots[i];
		if (s->pj.busy)
			fr_wjob_wait(&p->dq, &s->pj);
		fr_seg_reader_fini(&s->rd);
		free(s->out);
		s->out = NULL;
	}
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
	s->seg = seg;
	s->level = level;
	s->want = want;
	s->result = 0;
	s->stored = 0;
	s->payload = NULL;
	double r0 = fr_now_s();
	int rc = fr_seg_read(&s->rd, p->root, p->single, p->m, seg, err, cap);
	p->read_s += fr_now_s() - r0;
	if (rc < 0)
		return rc;
	p->read_bytes += p->m->segments[seg].length;
	fr_wjob_push(&s->pj, work_frame, &p->dq);
	p->pushed++;
	return 0;
}

struct fr_prod_slot *fr_producer_take(struct fr_producer *p)
{
	if (p->taken == p->pushed)
		return NULL;
	struct fr_prod_slot *s = &p->slots[p->taken % p->depth];
	fr_wjob_wait(&p->dq, &s->pj);
	p->taken++;
	return s;
}
