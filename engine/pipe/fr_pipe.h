/*
 * fr_pipe.h - the data path between the source and the outputs: the
 * frame producer every output takes its frames from (produce.c: read ->
 * XXH3 -> zstd at the level the output asks for -> frame, in slots by
 * index), the level that follows the link (adapt.c), and the same path
 * measured without a network (bench.c, `ferry bench pipeline`).
 */
#ifndef FR_PIPE_H
#define FR_PIPE_H

#include "source/fr_source.h"

/* A parcel (prefer_small) is compressed at no less than this level unless
 * that would cut its rate to a third: zstd's own default. */
#define FR_SMALL_FLOOR 3
/* and above that level only where its workers, one core short, outrun
 * the medium (or the source) by half again */
#define FR_SMALL_SPARE 1.5

/* Adaptive compression (adapt.c): pick the level that moves raw bytes
 * fastest given the link's measured rate and each level's measured speed
 * and ratio. */
struct fr_adapt {
	int workers;
	double wire_rate;            /* bytes/s while sending, EWMA */
	double speed[20], ratio[20]; /* raw bytes per CPU second; raw/stored */
	bool measured[20];
	double sink_stall;           /* receiver's stalled share, EWMA */
	unsigned since_probe;
	bool pinned;                 /* automatic, but decided once for all */
	int first_level;             /* >= 0: the first segment's (fr_adapt_line) */
	double source_rate;          /* bytes/s the source is read at, EWMA */
	bool prefer_small;           /* of levels about as fast, the strongest,
				      * and at least FR_SMALL_FLOOR */
	int level;
};
/* Decide the level once (loopback: 0); no probes, no changes. */
void fr_adapt_pin(struct fr_adapt *a, int level);
/* A line whose rate is known before anything is sent (a RAS profile, a
 * configured bandwidth): start from the level the priors give for it.
 * The first segment, which the line waits for, gets the level that
 * finishes it soonest (compressing it plus carrying it). */
void fr_adapt_line(struct fr_adapt *a, double bytes_per_s, uint32_t seg_size);
/* The level for the next segment (occasionally a probe). */
int fr_adapt_next(struct fr_adapt *a);
void fr_adapt_init(struct fr_adapt *a, int workers, int fixed_level);
void fr_adapt_wire(struct fr_adapt *a, uint64_t bytes, double busy_s);
void fr_adapt_segment(struct fr_adapt *a, int level, uint32_t raw,
		      uint32_t stored, double cpu_s);
/* The receiver's report: thousandths of its time spent unable to take
 * frames because its storage lagged. */
void fr_adapt_sink(struct fr_adapt *a, uint32_t stall_permille);
int fr_adapt_choose(struct fr_adapt *a);
/* The raw bytes per second level would move, as fr_adapt_choose weighs
 * it (what `bench pipeline` shows beside the choice). */
double fr_adapt_predict(const struct fr_adapt *a, int level);
/* The levels fr_adapt_choose weighs, into out (at most cap): their
 * number. */
unsigned fr_adapt_levels(int *out, unsigned cap);
/* The source delivered bytes in secs of reading (0: not a limit). */
void fr_adapt_source(struct fr_adapt *a, uint64_t bytes, double secs);

/* ---- the frame producer (produce.c) ---------------------------------------- */

/*
 * Frames of one package's segments, made in up to depth slots at once:
 * each pushed segment is read by the asynchronous reader (source/aread.c)
 * on the producer's ring, while the caller goes on; once its reads are
 * back (push and take look), a worker of the shared pool hashes it
 * (checked against want, or settled when want is NULL) and compresses it
 * at the level pushed (when that pays), then runs the output's finish
 * (sealing in place, on the worker's core). Frames come back in the
 * order pushed. A slot's buffers stay put until it is pushed again: the
 * output refers to them by the slot's index. Memory: depth read buffers
 * and depth compression buffers, whatever the package's size.
 */
#define FR_PRODUCER_MAX 16
struct fr_producer;
struct fr_prod_slot {
	struct fr_wjob pj;	   /* first: the slot is its job */
	struct fr_producer *p;
	unsigned index;		   /* in p->slots */
	struct fr_aread_seg ar;	   /* its reads */
	int buf;		   /* its read buffer in p->pool */
	uint8_t *raw;		   /* the segment's raw bytes, in buf */
	bool reading;		   /* its reads are out */
	char err[600];		   /* a read error (result), said */
	uint8_t *out;		   /* the compressor's output */
	size_t out_cap;
	uint32_t seg;
	int level;
	const uint8_t *want;	   /* the hash it must have, or NULL */
	/* the worker's result */
	int result;		   /* 0, FR_E_CHANGED (not its hash), or a
				    * read error (err says which file) */
	struct fr_frame f;	   /* the frame's header fields; f.hash */
	uint8_t fhdr[FR_FRAME_HDR]; /* and packed */
	uint8_t *payload;	   /* out (FR_FRAME_ZSTD) or raw */
	uint32_t stored;
	double cpu_s;		   /* the worker's CPU time */
};
/* Run on the worker after a frame is made (s->result 0): the output's
 * own step, such as sealing s->payload in place. */
typedef void fr_prod_finish_fn(struct fr_prod_slot *s, int worker, void *arg);
struct fr_producer {
	const struct fr_manifest *m;
	const char *root;
	bool single;
	const uint8_t *fid;	   /* the frames' package id */
	fr_prod_finish_fn *finish; /* or NULL */
	void *arg;
	unsigned depth;
	uint32_t pushed, taken;	   /* slots pushed, and given back */
	struct fr_doneq dq;
	struct fr_ring *ring;	   /* the reads, and the workers' eventfd */
	struct fr_pool *pool;	   /* the read buffers */
	struct fr_aread src;
	bool armed;		   /* the eventfd's read is out */
	int broken;		   /* the ring failed: its error */
	bool closing;		   /* in fini: no more frames made */
	struct fr_prod_slot slots[FR_PRODUCER_MAX];
	uint64_t read_bytes;	   /* what was read, and the time during
				    * which reads were out */
	double read_s;
	unsigned n_reading;	   /* slots whose reads are out, since */
	double read_from;
};
/* depth slots (1..FR_PRODUCER_MAX) for m's segments at root, framed with
 * id fid; the shared workers started (fr_workq_start) by the caller.
 * 0 or -ENOMEM. fini waits for the jobs still out. */
int fr_producer_init(struct fr_producer *p, const struct fr_manifest *m,
		     const char *root, bool single, const uint8_t *fid,
		     unsigned depth, fr_prod_finish_fn *finish, void *arg);
void fr_producer_fini(struct fr_producer *p); /* safe on zeroed */
/* Read through the page cache only, never O_DIRECT (a sample the caller
 * has just read, as `bench pipeline` measures it). */
void fr_producer_buffered(struct fr_producer *p);
/* The time during which reads were out, up to now (the source's rate
 * is read_bytes over it). */
double fr_producer_read_s(const struct fr_producer *p);
/* Slots free for a push. */
unsigned fr_producer_room(const struct fr_producer *p);
/* Frames pushed and not yet taken. */
unsigned fr_producer_pending(const struct fr_producer *p);
/* Start reading segment seg into the next slot; once read, a worker
 * makes its frame at level (0: raw). 0, or an error found at once (a
 * file that cannot be opened) with its message in err; one found later
 * is the frame's result, its message in the slot's err. */
int fr_producer_push(struct fr_producer *p, uint32_t seg, int level,
		     const uint8_t *want, char *err, size_t cap);
/* The oldest frame pushed, once its worker is done (NULL: none out). It
 * stays the caller's until the next push. */
struct fr_prod_slot *fr_producer_take(struct fr_producer *p);

#endif
