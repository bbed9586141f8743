/*
 * bench.c - `ferry bench pipeline`: the sender's data path measured on a
 * real package, with no network, stage by stage and whole:
 *
 *   read    the package's first FR_BENCH_READ_MAX bytes as a send reads
 *           them (the frame producer at level 0: the asynchronous reader,
 *           O_DIRECT middles, several segments in flight, each hashed),
 *           after their pages are dropped from the page cache
 *           (posix_fadvise; "warm" when they stay)
 *   sample  up to FR_BENCH_SAMPLE_MAX bytes of segments spread over the
 *           package, held in memory (the bound of what this costs)
 *   hash    XXH3-128 of the sample on one core
 *   seal    the frames' chunk sealing (the session's AEAD) on one core
 *   levels  per level: zstd compression and decompression of the sample
 *           on one core (each timed for at least STAGE_S, like zstd -b)
 *           and its ratio; then the frame producer with every worker
 *           (read from the page cache, hash, compress, seal) for the
 *           pipeline's rate
 *   auto    the level fr_adapt_choose takes with these measurements over
 *           links of a few speeds, and the rate it predicts
 *
 * Nothing is printed here: tools/bench_pipeline.c shows the result.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipe/fr_pipe.h"

#define FR_BENCH_READ_MAX (1ull << 30)
#define FR_BENCH_SAMPLE_MAX (32ull << 20)
/* segments whose reads are out at once, as the standard sender's */
#define READ_DEPTH 6
/* each timed loop runs at least this long (FERRY_BENCH_STAGE_MS: the
 * tests' shorter stages) */
#define STAGE_S (fr_hook_num("BENCH_STAGE_MS", 1000) / 1000.0)

struct bench {
	const struct fr_bench_pipe_opts *o;
	struct fr_bench_pipe *r;
	struct fr_manifest m;
	struct fr_left_list left; /* counted, not listed */
	char root[4096];
	bool single;
	uint32_t n_alloc;	/* the sample's tables' length */
	uint32_t *segs;		/* the sample's segments */
	uint8_t **raw, **comp;	/* their bytes, and compressed */
	uint32_t *clen;		/* compressed length (0: not compressed) */
	uint8_t *scratch;	/* a segment's room, for sealing */
	struct fr_cctx cc;
	struct fr_dctx dc;
	struct fr_aead_key key;
	struct fr_adapt ad;
	double read_s; /* the source read's time */
};

static void stage(struct bench *b, const char *what, double frac)
{
	if (b->o->progress)
		b->o->progress(what, frac, b->o->arg);
}

static double mb_s(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes / 1e6 / secs : 0.0;
}

/* Drop the page cache of the files holding the package's first `upto`
 * bytes; then the share of those files still cached (-1: unknown). */
static double drop_cache(struct bench *b, uint64_t upto)
{
	const struct fr_manifest *m = &b->m;
	uint64_t total = 0, cached = 0;
	bool known = true;

	for (uint32_t k = 0; k < m->n_data; k++) {
		const struct fr_entry *e = &m->entries[m->data_idx[k]];
		if (e->offset >= upto)
			break;
		int fd = fr_source_open(b->root, b->single, e, false);
		if (fd < 0)
			continue;
		fdatasync(fd); /* dirty pages cannot be dropped */
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		int64_t c = fr_cached_bytes(fd);
		if (c < 0)
			known = false;
		else
			cached += (uint64_t)c < e->size ? (uint64_t)c : e->size;
		total += e->size;
		close(fd);
	}
	return known && total ? (double)cached / (double)total : -1.0;
}

/*
 * The source read as a send reads it, cold when it can be: the frame
 * producer at level 0, so the asynchronous reader's (O_DIRECT middles,
 * the reads of READ_DEPTH segments in flight), each segment hashed by a
 * worker meanwhile, as a send hashes it.
 */
static int measure_read(struct bench *b)
{
	struct fr_bench_pipe *r = b->r;
	struct fr_producer p;
	uint64_t pushed = 0;
	uint32_t next = 0;
	char err[512];
	int rc;

	stage(b, "reading the source", 0);
	r->cached_share = drop_cache(b, FR_BENCH_READ_MAX);
	r->cold = r->cached_share >= 0 && r->cached_share < 0.05;
	uint64_t all = b->m.total_size < FR_BENCH_READ_MAX ? b->m.total_size
							   : FR_BENCH_READ_MAX;
	rc = fr_producer_init(&p, &b->m, b->root, b->single, b->m.lid,
			      READ_DEPTH, NULL, NULL);
	if (rc < 0)
		fr_log(FR_LOG_ERROR, "cannot set up the source's reads: %s",
		       fr_strerror(rc));
	double t0 = fr_now_s();
	while (rc == 0) {
		while (fr_producer_room(&p) && next < b->m.n_segments &&
		       pushed < all) {
			if ((rc = fr_producer_push(&p, next, 0, NULL, err,
						   sizeof(err))) < 0) {
				fr_log(FR_LOG_ERROR, "%s", err);
				break;
			}
			pushed += b->m.segments[next++].length;
		}
		struct fr_prod_slot *s = rc == 0 ? fr_producer_take(&p) : NULL;
		if (!s)
			break;
		if ((rc = s->result) < 0) {
			fr_log(FR_LOG_ERROR, "%s",
			       s->err[0] ? s->err : fr_strerror(rc));
			break;
		}
		r->read_bytes += b->m.segments[s->seg].length;
		stage(b, "reading the source", (double)r->read_bytes / all);
	}
	b->read_s = fr_now_s() - t0;
	r->read_mb_s = mb_s(r->read_bytes, b->read_s);
	fr_producer_fini(&p);
	return rc;
}

/* The sample: segments spread evenly over the package, in memory. */
static int load_sample(struct bench *b)
{
	const struct fr_manifest *m = &b->m;
	struct fr_bench_pipe *r = b->r;
	uint32_t n = (uint32_t)(FR_BENCH_SAMPLE_MAX / m->seg_size);
	struct fr_seg_reader rd = {0};
	char err[512];
	int rc;

	if (n == 0)
		n = 1;
	if (n > m->n_segments)
		n = m->n_segments;
	b->n_alloc = n;
	b->segs = calloc(n, sizeof(*b->segs));
	b->raw = calloc(n, sizeof(*b->raw));
	b->comp = calloc(n, sizeof(*b->comp));
	b->clen = calloc(n, sizeof(*b->clen));
	if (!b->segs || !b->raw || !b->comp || !b->clen ||
	    !(b->scratch = malloc(m->seg_size)))
		return -ENOMEM;
	if ((rc = fr_seg_reader_init(&rd, m->seg_size)) < 0)
		return rc;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		uint32_t s = (uint32_t)((uint64_t)i * m->n_segments / n);
		uint32_t len = m->segments[s].length;
		b->segs[i] = s;
		if ((rc = fr_seg_read(&rd, b->root, b->single, m, s, err,
				      sizeof(err))) < 0) {
			fr_log(FR_LOG_ERROR, "%s", err);
			break;
		}
		if (!(b->raw[i] = malloc(len)) ||
		    !(b->comp[i] = malloc(fr_seg_bound(len)))) {
			rc = -ENOMEM;
			break;
		}
		memcpy(b->raw[i], rd.buf, len);
		r->sample_segments++;
		r->sample_bytes += len;
	}
	fr_seg_reader_fini(&rd);
	return rc;
}

static uint32_t len_of(const struct bench *b, uint32_t i)
{
	return b->m.segments[b->segs[i]].length;
}

/* One stage's work on sample segment i, on this core: 0 when it
 * counts, 1 when there was nothing to do, or a code. */
typedef int seg_fn(struct bench *b, uint32_t i, void *arg);

/*
 * A stage's rate on one core as zstd -b and xxhsum -b count it: rounds
 * of whole passes over the sample, each round at least secs / ROUNDS
 * long, until ROUNDS rounds or secs have passed (one round at least);
 * the fastest round's MB/s (wall time: on a virtual machine a core's
 * CPU time leaves out what the host took, which zstd -b counts). 0 with
 * *rate, or fn's code.
 */
#define ROUNDS 3
static int best_rate(struct bench *b, seg_fn *fn, void *arg, double secs,
		     double *rate)
{
	double start = fr_now_s();

	*rate = 0;
	for (int k = 0; k < ROUNDS && (k == 0 || fr_now_s() - start < secs);
	     k++) {
		uint64_t bytes = 0;
		double t0 = fr_now_s();
		do {
			for (uint32_t i = 0; i < b->r->sample_segments; i++) {
				int rc = fn(b, i, arg);
				if (rc < 0)
					return rc;
				bytes += rc == 0 ? len_of(b, i) : 0;
			}
		} while (bytes && fr_now_s() - t0 < secs / ROUNDS);
		double r = mb_s(bytes, fr_now_s() - t0);
		if (r > *rate)
			*rate = r;
	}
	return 0;
}

static int hash_one(struct bench *b, uint32_t i, void *arg)
{
	uint8_t h[FR_HASH_LEN];

	(void)arg;
	fr_hash128(b->raw[i], len_of(b, i), h);
	return 0;
}

static int seal_one(struct bench *b, uint32_t i, void *arg)
{
	uint8_t fh[FR_FRAME_HDR] = {0};
	uint8_t tags[FR_CHUNKS_MAX * FR_SEAL_TAG];

	(void)arg;
	fr_chunks_seal(&b->key, fh, b->scratch, 0, len_of(b, i), tags);
	return 0;
}

/* XXH3 and the chunk sealing on one core. */
static void measure_hash_seal(struct bench *b)
{
	struct fr_bench_pipe *r = b->r;

	stage(b, "XXH3, one core", 0);
	best_rate(b, hash_one, NULL, STAGE_S, &r->hash_mb_s_per_core);
	stage(b, "sealing, one core", 0);
	best_rate(b, seal_one, NULL, STAGE_S, &r->seal_mb_s_per_core);
}

/* The first pass of a level: each segment's compressed length kept,
 * and the totals for the ratio. */
struct codec_pass {
	int level;
	uint32_t done;
	uint64_t raw, stored;
	double cpu_s;
};

static int compress_one(struct bench *b, uint32_t i, void *arg)
{
	struct codec_pass *cp = arg;
	uint32_t len = len_of(b, i);
	double c0 = fr_thread_cpu_s();
	ssize_t n = fr_seg_compress(&b->cc, b->comp[i], fr_seg_bound(len),
				    b->raw[i], len, cp->level);

	if (n < 0)
		return (int)n;
	if (cp->done < b->r->sample_segments) {
		b->clen[i] = (uint32_t)n; /* 0: went raw */
		cp->raw += len;
		cp->stored += n ? (uint64_t)n : len;
		cp->cpu_s += fr_thread_cpu_s() - c0;
		cp->done++;
	}
	return 0;
}

static int decompress_one(struct bench *b, uint32_t i, void *arg)
{
	(void)arg;
	if (!b->clen[i])
		return 1; /* went raw: nothing to undo */
	return fr_seg_decompress(&b->dc, b->scratch, len_of(b, i), b->comp[i],
				 b->clen[i]);
}

/* zstd at level on one core: compression (the ratio from the first
 * pass), then decompression of what it made. */
static int measure_codec(struct bench *b, struct fr_bench_level *lv)
{
	struct codec_pass cp = {.level = lv->level};
	int rc;

	if ((rc = best_rate(b, compress_one, &cp, STAGE_S,
			    &lv->compress_mb_s_per_core)) < 0)
		return rc;
	lv->ratio = cp.stored ? (double)cp.raw / (double)cp.stored : 1.0;
	fr_adapt_segment(&b->ad, lv->level, (uint32_t)(cp.raw / cp.done),
			 (uint32_t)(cp.stored / cp.done), cp.cpu_s / cp.done);
	return best_rate(b, decompress_one, NULL, STAGE_S / 2,
			 &lv->decompress_mb_s_per_core);
}

/* The producer's finish here: the frame's chunks sealed in place, as a
 * session seals them. */
static void seal_frame(struct fr_prod_slot *s, int worker, void *arg)
{
	const struct fr_aead_key *k = arg;
	uint8_t tags[FR_CHUNKS_MAX * FR_SEAL_TAG];

	(void)worker;
	fr_chunks_seal(k, s->fhdr, s->payload, 0, s->stored, tags);
}

/* The frame producer with every worker at level: the sample's segments
 * read (now from the page cache), hashed, compressed and sealed, round
 * and round for STAGE_S; frames per second of raw bytes. */
static int measure_producer(struct bench *b, int level, double *rate)
{
	struct fr_bench_pipe *r = b->r;
	struct fr_producer p;
	unsigned depth = (unsigned)r->workers * 2;
	uint64_t bytes = 0;
	uint32_t next = 0;
	char err[512];
	int rc;

	if (depth > FR_PRODUCER_MAX)
		depth = FR_PRODUCER_MAX;
	rc = fr_producer_init(&p, &b->m, b->root, b->single, b->m.lid, depth,
			      seal_frame, &b->key);
	fr_producer_buffered(&p); /* the sample is in the page cache */
	double t0 = fr_now_s();
	while (rc == 0) {
		bool more = fr_now_s() - t0 < STAGE_S ||
			    next < (uint32_t)r->workers;
		while (more && rc == 0 && fr_producer_room(&p)) {
			uint32_t s = b->segs[next++ % r->sample_segments];
			rc = fr_producer_push(&p, s, level, NULL, err,
					      sizeof(err));
			if (rc < 0)
				fr_log(FR_LOG_ERROR, "%s", err);
		}
		struct fr_prod_slot *s = fr_producer_take(&p);
		if (!s)
			break;
		if (s->result < 0)
			rc = s->result;
		bytes += b->m.segments[s->seg].length;
	}
	*rate = mb_s(bytes, fr_now_s() - t0);
	fr_producer_fini(&p);
	return rc;
}

static int measure_levels(struct bench *b)
{
	const struct fr_bench_pipe_opts *o = b->o;
	struct fr_bench_pipe *r = b->r;
	int list[FR_BENCH_LEVELS];
	unsigned n = 0;
	int rc = 0;

	if (o->level == -1) /* those the automatic choice weighs */
		n = fr_adapt_levels(list, FR_BENCH_LEVELS);
	else if (o->level < -1)
		for (int l = 1; l <= 19; l++)
			list[n++] = l;
	else
		list[n++] = o->level;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		struct fr_bench_level *lv = &r->levels[r->n_levels];
		char what[64];
		snprintf(what, sizeof(what), "level %d", list[i]);
		stage(b, what, (double)i / n);
		lv->level = list[i];
		if (lv->level == 0) { /* raw: nothing to compress */
			lv->ratio = 1.0;
			rc = measure_producer(b, 0, &lv->pipeline_mb_s);
			r->hash_mb_s = lv->pipeline_mb_s;
		} else if ((rc = measure_codec(b, lv)) == 0) {
			rc = measure_producer(b, lv->level, &lv->pipeline_mb_s);
		}
		r->n_levels++;
	}
	return rc;
}

/* What the automatic level would take over links of these speeds,
 * knowing what was measured here. */
static void auto_table(struct bench *b)
{
	static const double links[] = {128e3, 2e6, 10e6, 100e6, 1e9, 10e9};
	struct fr_bench_pipe *r = b->r;

	fr_adapt_source(&b->ad, r->read_bytes, b->read_s);
	for (unsigned i = 0; i < FR_ARRAY_SIZE(links); i++) {
		struct fr_bench_auto *a = &r->autos[r->n_auto++];
		b->ad.wire_rate = links[i] / 8;
		a->link_bps = links[i];
		a->level = fr_adapt_choose(&b->ad);
		a->predicted_mb_s = fr_adapt_predict(&b->ad, a->level) / 1e6;
	}
}

static int bench_setup(struct bench *b, const struct fr_config *c)
{
	struct fr_bench_pipe *r = b->r;
	uint8_t k[32];
	int rc;

	if ((rc = fr_package_source(b->o->path, NULL, "measure", b->root,
				    sizeof(b->root), r->name,
				    sizeof(r->name))) < 0)
		return rc;
	if ((rc = fr_workq_start(c ? c->workers : 0)) < 0)
		return rc;
	r->workers = fr_workq_count();
	stage(b, "listing the source", 0);
	/* what a send would leave out is counted, not warned of by name */
	int v = fr_log_verbosity;
	if (v > FR_LOG_ERROR)
		fr_log_verbosity = FR_LOG_ERROR;
	rc = fr_scan_list(b->root, r->name, c ? c->seg_size : FR_SEG_DEFAULT,
			  &b->m, &b->single, &b->left);
	fr_log_verbosity = v;
	if (rc < 0)
		return rc;
	r->bytes = b->m.total_size;
	r->files = b->m.n_data;
	r->segments = b->m.n_segments;
	r->left_out = b->left.n;
	r->seg_size = b->m.seg_size;
	if (b->m.n_segments == 0) {
		fr_log(FR_LOG_ERROR, "'%s' holds no bytes to measure with",
		       b->o->path);
		return -ENODATA;
	}
	fr_random(k, sizeof(k));
	uint8_t aead = fr_aead_local();
	r->aead = fr_aead_name(aead);
	fr_adapt_init(&b->ad, r->workers, -1);
	if ((rc = fr_aead_key_init(&b->key, aead, k)) < 0 ||
	    (rc = fr_cctx_init(&b->cc)) < 0 || (rc = fr_dctx_init(&b->dc)) < 0)
		return rc;
	return 0;
}

static void bench_fini(struct bench *b)
{
	for (uint32_t i = 0; b->raw && b->comp && i < b->n_alloc; i++) {
		free(b->raw[i]);
		free(b->comp[i]);
	}
	free(b->raw);
	free(b->comp);
	free(b->clen);
	free(b->segs);
	free(b->scratch);
	fr_cctx_fini(&b->cc);
	fr_dctx_fini(&b->dc);
	sodium_memzero(&b->key, sizeof(b->key));
	fr_manifest_fini(&b->m);
	fr_left_list_fini(&b->left);
}

int fr_bench_pipeline(const struct fr_config *c,
		      const struct fr_bench_pipe_opts *o,
		      struct fr_bench_pipe *r)
{
	struct bench b = {.o = o, .r = r};
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = bench_setup(&b, c)) == 0 && (rc = measure_read(&b)) == 0 &&
	    (rc = load_sample(&b)) == 0) {
		measure_hash_seal(&b);
		if ((rc = measure_levels(&b)) == 0)
			auto_table(&b);
	}
	bench_fini(&b);
	return rc;
}
