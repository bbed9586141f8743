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
 * Frames of one package's segments, made in up to depth slots at once,
 * for every output: each segment is read by the asynchronous reader
 * (source/aread.c) into a buffer of the pool, while the caller goes on;
 * once its reads are back, a worker of the shared pool checks its hash
 * (or settles it), compresses it at the level asked into a second
 * buffer of the pool when that pays (the read buffer then goes back at
 * once), packs the frame's header, and runs the output's own step
 * (sealing in place, on the worker's core). No byte is copied between
 * the stages; a slot's buffers stay put until the slot is released, and
 * an output refers to them by the slot's index. Memory: depth read
 * buffers and one compression buffer per worker, whatever the package's
 * size.
 *
 * Two ways to drive it:
 *  - on its own (fr_producer_init): its own ring and pool; push, then
 *    take the frames back in the order pushed (a parcel's volumes,
 *    `bench pipeline`);
 *  - on an output's event loop (fr_producer_init_on): the output's ring,
 *    pool (with headroom before each segment, for the output's
 *    envelope) and done queue; the output starts a slot's reads
 *    (fr_producer_read), hands the producer its reads' completions, is
 *    called back when they are all in, chooses the level then, and
 *    hands the slot to a worker with its own step around the shared
 *    one (fr_producer_encode). The LAN sender (out/lan.c).
 */
#define FR_PRODUCER_MAX 16
enum { FR_PS_FREE, FR_PS_READING, FR_PS_WORKING, FR_PS_MADE };
struct fr_producer;
struct fr_prod_slot {
	struct fr_job job;	   /* first: the slot is its worker's job */
	struct fr_producer *p;
	unsigned index;		   /* in p->slots */
	int state;		   /* FR_PS_* */
	bool back;		   /* its job came back (on its own) */
	struct fr_aread_seg ar;	   /* its reads */
	int in_buf;		   /* the read buffer in the pool, or -1 */
	int out_buf;		   /* the compression buffer, or -1 */
	uint8_t *raw;		   /* the segment's raw bytes, in in_buf */
	char err[600];		   /* a read error (result), said */
	uint32_t seg;
	/* asked of the worker */
	void (*work)(struct fr_prod_slot *s, int worker);
	int level;
	const uint8_t *want;	   /* the hash it must have, or NULL */
	const uint8_t *ref;	   /* compressed against this segment's
				    * bytes (ref_len), or NULL */
	size_t ref_len;
	uint32_t ref_seg;
	/* the worker's result */
	int result;		   /* 0, FR_E_CHANGED (not its hash), or a
				    * read error (err says which file) */
	struct fr_frame f;	   /* the frame's header fields; f.hash */
	uint8_t fhdr[FR_FRAME_HDR]; /* and packed */
	uint8_t *payload;	   /* in out_buf (FR_FRAME_ZSTD) or raw */
	uint32_t stored;
	double cpu_s;		   /* the worker's CPU time */
};
/* A worker's whole job for a slot (an output's, around fr_producer_encode). */
typedef void fr_prod_work_fn(struct fr_prod_slot *s, int worker);
/* Run on the worker after a frame is made (s->result 0): the output's
 * own step, such as sealing s->payload in place. */
typedef void fr_prod_finish_fn(struct fr_prod_slot *s, int worker, void *arg);
/* An output's event loop, for fr_producer_init_on. */
struct fr_prod_host {
	struct fr_ring *ring;	   /* its ring, the pool attached to it */
	struct fr_pool *pool;	   /* buffers of headroom + FR_DIO_ALIGN +
				    * fr_seg_bound(seg_size) bytes */
	uint32_t headroom;	   /* kept before each segment and frame */
	struct fr_doneq *dq;	   /* where the workers' jobs come back */
	uint64_t ud;		   /* its reads' completions carry ud | the
				    * slot's index << 40 | the read's number */
	/* A slot's reads are all in (s->result < 0: they failed, s->err
	 * says how): the output's turn. Not called once stopping. */
	void (*read_back)(struct fr_prod_slot *s, void *arg);
	void *arg;
};
struct fr_producer {
	const struct fr_manifest *m;
	const char *root;
	bool single;
	const uint8_t *fid;	   /* the frames' package id */
	fr_prod_finish_fn *finish; /* or NULL */
	void *arg;
	unsigned depth;
	bool own;		   /* its own ring, pool and done queue */
	struct fr_prod_host h;
	struct fr_doneq dq;	   /* its own */
	uint32_t pushed, taken;	   /* on its own: slots pushed, given back */
	bool armed;		   /* on its own: the eventfd's read is out */
	int broken;		   /* the ring failed: its error */
	bool closing;		   /* stopping: no more frames made */
	struct fr_aread src;
	struct fr_prod_slot slots[FR_PRODUCER_MAX];
	uint64_t read_bytes;	   /* what was read, and the time during
				    * which reads were out */
	double read_s;
	unsigned n_reading;	   /* slots whose reads are out, since */
	double read_from;
};
/* depth slots (1..FR_PRODUCER_MAX) for m's segments at root, framed with
 * id fid, on a ring and pool of its own; the shared workers started
 * (fr_workq_start) by the caller. 0 or -ENOMEM. fini waits for the jobs
 * still out. */
int fr_producer_init(struct fr_producer *p, const struct fr_manifest *m,
		     const char *root, bool single, const uint8_t *fid,
		     unsigned depth, fr_prod_finish_fn *finish, void *arg);
/* The same on an output's event loop (h copied). */
int fr_producer_init_on(struct fr_producer *p, const struct fr_manifest *m,
			const char *root, bool single, const uint8_t *fid,
			unsigned depth, const struct fr_prod_host *h);
void fr_producer_fini(struct fr_producer *p); /* safe on zeroed */
/* Read through the page cache only, never O_DIRECT (a sample the caller
 * has just read, as `bench pipeline` measures it). */
void fr_producer_buffered(struct fr_producer *p);
/* The time during which reads were out, up to now (the source's rate
 * is read_bytes over it). */
double fr_producer_read_s(const struct fr_producer *p);

/* On its own. Slots free for a push. */
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

/* On an output's loop. Start reading segment seg into free slot i (a
 * read buffer taken from the pool). 0; or an error: with reads already
 * out the slot stays FR_PS_READING and read_back says it once they are
 * in, else the slot stays free. read_back may be called before this
 * returns (a segment read at once). */
int fr_producer_read(struct fr_producer *p, unsigned i, uint32_t seg);
/* A completion whose ud is the host's: one of a slot's reads. */
void fr_producer_on_cqe(struct fr_producer *p, const struct fr_cqe *c);
/* Reads that waited for room in flight go out (read_back for those in). */
void fr_producer_more(struct fr_producer *p);
/* Slot s (reads in) to a worker: fn there, back on the host's queue. */
void fr_producer_work(struct fr_prod_slot *s, fr_prod_work_fn *fn);
/* The slot's buffers back to the pool; the slot free. */
void fr_producer_release(struct fr_prod_slot *s);
/* No more reads: a slot's reads that wait for room are given up (the
 * slot released). true while reads are still out (their completions
 * still to be handed over). */
bool fr_producer_stop(struct fr_producer *p);

/* The shared step, on a worker: s's hash checked against s->want (or
 * settled), the segment compressed at s->level (against s->ref) into a
 * pool buffer at the headroom when that pays, the read buffer then
 * given back; the header packed. s->result, s->payload, s->stored. */
void fr_producer_encode(struct fr_prod_slot *s, int worker);

#endif
