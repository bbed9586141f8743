/*
 * fr_out.h - engine/out/: the outputs a send goes by and what they are
 * given: the output interface (open, offer, send, close), the send's
 * context and the feed through which a striped send's scheduler hands
 * out segments, the LAN output and RAS lines, and the measuring of a
 * link (probe.c). The courier's parcels are declared in fr_engine.h.
 */
#ifndef FR_OUT_H
#define FR_OUT_H

#include "pipe/fr_pipe.h"

/* ---- outputs (output.c, lan.c) ----------------------------------------- */

/* What an output is asked to move, and where it reports progress. */
/* The manifest compressed for OFFER_Z, kept across the attempts of one
 * transfer (a redial does not compress it again); refused: the receiver
 * is an older ferry that takes only OFFER. */
struct fr_offer_z {
	uint8_t *body;
	uint32_t len;
	int level;
	bool refused;
	bool plain_frames; /* the receiver refused a streamed frame or a
			    * reference (older): whole frames on their own */
};

/* struct fr_progress, a send's progress: fr_engine.h. */

/*
 * Which segments an output carries in a striped send: the scheduler's
 * assignment (sched/assign.c) as the output sees it. next: the segment
 * to carry next, or < 0 for none now (*copy: an endgame copy); acked:
 * durable at the receiver, by this output; held: the receiver had it.
 */
struct fr_feed {
	void *arg;
	int64_t (*next)(void *arg, unsigned out, bool *copy);
	/* seg is durable at the receiver; went: out's own copy of it had
	 * gone whole before (else another arrival brought it: a parcel's
	 * import, or the other copy of an endgame); sent: the package bytes'
	 * worth of it that out carried (less than the segment when the
	 * receiver kept the start of an interrupted frame) */
	void (*acked)(void *arg, unsigned out, uint32_t seg, bool went,
		      uint32_t sent);
	void (*held)(void *arg, uint32_t seg);
	/* what out sent of seg did not land (NAK'd): it goes back to the
	 * assignment, its time on the wire not counted as carrying */
	void (*again)(void *arg, unsigned out, uint32_t seg);
	bool (*is_done)(void *arg, uint32_t seg);
	bool (*all_done)(void *arg);
	uint32_t (*n_done)(void *arg); /* segments at the receiver, by any */
};

struct fr_send_ctx {
	struct fr_known *known;      /* the hashes made so far */
	const struct fr_manifest *m;
	const uint8_t *mf;           /* encoded manifest */
	size_t mf_len;
	const char *root;            /* source file or tree */
	bool single;                 /* root is one regular file */
	int level;                   /* -1 auto, 0 raw, 1..19 fixed */
	int priority;                /* FR_PRIO_*: what the schedule lets through */
	struct fr_offer_z *offer_z;  /* NULL: always OFFER */
	int workers;
	/* progress, called from the output's thread about 4 times a second */
	void (*progress)(void *arg, const struct fr_progress *p);
	void *progress_arg;
	/* a striped send (stripe.c): this output is one of several, and the
	 * feed says which segments it carries (NULL: all it lacks) */
	const struct fr_feed *feed;
	unsigned out;                /* this output's index in it */
	atomic_bool *cancel;         /* set: another output met what ends the
				      * send (-ECANCELED) */
	uint8_t *copies;             /* NULL, or per segment: set by offer
				      * when the receiver holds a copy the
				      * offer had no hash for (HELD) */
	atomic_bool *completed;      /* set: another output's END was answered
				      * DONE; this one stops (-ECANCELED) */
	/* filled by the output */
	uint64_t wire_bytes, sent_raw, skipped_raw;
	uint64_t read_bytes;         /* of the source, by this attempt */
	uint32_t segs_sent, segs_skipped, segs_resent;
	int level_last;
	double send_s;               /* how long its send ran (fr_send_by) */
	double quiet_s;              /* of it: with frames to send, nothing
				      * taken by the receiver's TCP for a
				      * second or more (a link gone quiet) */
	bool shared;                 /* another send, or `bench link`, used
				      * the address meanwhile */
};

struct fr_output {
	const struct fr_output_ops *ops;
	const struct fr_config *c;
	const struct fr_address *a;
	void *priv;  /* the connection (lan.c) */
	void *line;  /* an on-demand line (ras.c) */
	/* NULL, or told the connection's socket once it is connected, and
	 * -1 before it is closed: another thread may shut it down (a
	 * striped send whose package another link completed) */
	void (*sock_is)(void *arg, int sock);
	void *sock_arg;
	/* NULL, or told (with sock_arg) what an opening RAS output waits
	 * for: "waiting" (another transfer holds its line), "dialling" */
	void (*state_is)(void *arg, const char *state);
	/* NULL, or true (asked with sock_arg) once the send no longer needs
	 * this output (a striped send completed by the others): an open
	 * that waits for its line or dials gives up, -ECANCELED */
	bool (*stopped)(void *arg);
	/* NULL, or asked every second: how many sends of this site (this
	 * one counted, and a `bench link`) use the address now; a rate
	 * limit's share of the line is split among them, and a rate is not
	 * learned from a link another used */
	unsigned (*senders)(const struct fr_config *c,
			    const struct fr_address *a);
};

/*
 * An output moves segments to one site over one address. The scheduler
 * (sched.c) sees only this table: open (connect, dial, authenticate),
 * offer (the manifest; learn which segments the site already holds),
 * send (every segment it does not hold, until durable there), close.
 * Each returns 0 or a negative code, with a message in err.
 */
struct fr_output_ops {
	const char *name;
	int (*open)(struct fr_output *o, char *err, size_t cap);
	/* have[i] = 1 for segments already held; returns FR_HAVE_* */
	int (*offer)(struct fr_output *o, struct fr_send_ctx *sc, uint8_t *have,
		     char *err, size_t cap);
	int (*send)(struct fr_output *o, struct fr_send_ctx *sc,
		    const uint8_t *have, char *err, size_t cap);
	void (*close)(struct fr_output *o);
};
extern const struct fr_output_ops fr_output_lan;
/* The socket of an open lan (or RAS) output, or -1. */
int fr_output_fd(const struct fr_output *o);
const struct fr_output_ops *fr_output_for(int addr_type);

/* ---- ferry bench link: the wire (out/probe.c) ----------------------------- */

#define FR_BENCH_REQ_LEN 16
#define FR_BENCH_GO_LEN 16
#define FR_BENCH_REPORT_HDR 40
#define FR_BENCH_FRAME_LAN (128u << 10) /* filler bytes per message on a LAN */
#define FR_BENCH_FRAME_MAX (4u << 20)
#define FR_BENCH_FRAME_MIN 512u
#define FR_BENCH_F_REVERSE 1u
#define FR_BENCH_R_CAPPED 1u    /* report: the byte cap ended the count */
#define FR_BENCH_R_CUT 2u       /* report: the sender stopped early */
/* The receiver's bounds: a session that has not begun after FIRST_S,
 * counts for at most the seconds asked (<= FR_BENCH_SECONDS_MAX), and at
 * most CAP_PER_S bytes per second asked. */
#define FR_BENCH_FIRST_S 10
#define FR_BENCH_CAP_PER_S (8ull << 30)
#define FR_BENCH_TAIL_S 20 /* draining what is still queued, at most */
struct fr_bench_req {
	uint32_t flags, seconds, frame;
	uint16_t stream, streams;
};
void fr_bench_req_pack(const struct fr_bench_req *q, uint8_t b[FR_BENCH_REQ_LEN]);
/* 0 or FR_E_PROTOCOL (a field out of range) */
int fr_bench_req_parse(const uint8_t *b, uint32_t len, struct fr_bench_req *q);
/* A sender's TCP as the report carries it */
struct fr_bench_tcp {
	uint32_t rtt_min_us, rtt_avg_us, retrans, samples;
};
struct fr_bench_report {
	uint32_t flags, n;
	uint64_t dur_ns, total;
	struct fr_bench_tcp tcp;
	uint64_t bytes[FR_BENCH_IV_MAX];
};
int fr_bench_report_send(struct fr_chan *ch, const struct fr_bench_report *r);
int fr_bench_report_parse(const uint8_t *b, uint32_t len,
			  struct fr_bench_report *r);
/* The sender's side of a socket: its TCP_INFO sampled (sample) and
 * summed up (tcp); bytes its peer's TCP acknowledged (progress). */
struct fr_bench_tx {
	struct fr_chan *ch;
	uint8_t *msg;            /* header | body of one FILLER */
	uint32_t frame;
	struct fr_rtt_acc rtt;
	uint32_t retrans0;
	_Atomic uint64_t *progress; /* NULL, or bytes acknowledged so far */
};
int fr_bench_tx_init(struct fr_bench_tx *t, struct fr_chan *ch, uint32_t frame,
		     _Atomic uint64_t *progress);
void fr_bench_tx_fini(struct fr_bench_tx *t); /* safe on zeroed */
/* Send FILLER until a message arrives to read (1), the deadline (a
 * monotonic ns) passes (0), or an error. */
int fr_bench_tx_run(struct fr_bench_tx *t, uint64_t deadline_ns);
void fr_bench_tx_tcp(struct fr_bench_tx *t, struct fr_bench_tcp *out);
/* The receiving side: FILLER counted into k (when not NULL), until a
 * sealed message came (1: *type, *body malloc'd, *len), the count ended
 * (0), the deadline passed (-ETIMEDOUT) or an error (ERROR from the
 * peer: FR_E_REFUSED with its text in err). */
struct fr_bench_rx {
	struct fr_chan *ch;
	uint8_t *buf;
	uint32_t cap, have, pos;  /* received into buf; parsed up to pos */
	uint32_t left;            /* FILLER bytes still to come */
	uint8_t hdr[FR_MSG_HDR];
	uint32_t hdr_got;
	_Atomic uint64_t *progress; /* NULL, or bytes arrived so far */
};
int fr_bench_rx_init(struct fr_bench_rx *x, struct fr_chan *ch,
		     _Atomic uint64_t *progress);
void fr_bench_rx_fini(struct fr_bench_rx *x); /* safe on zeroed */
int fr_bench_rx_run(struct fr_bench_rx *x, struct fr_bench_count *k,
		    uint64_t deadline_ns, uint32_t *type, uint8_t **body,
		    uint32_t *len, char *err, size_t cap);
/* One stream of a measurement, the client's side (out/probe.c): connect
 * and authenticate as the address's account, ask (BENCH), wait at the
 * gate until every stream is ready, measure, read the report. */
struct fr_probe_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned ready, n;
	bool failed;
	_Atomic uint64_t t0_ns;  /* when the streams began */
	_Atomic unsigned ended;  /* streams whose fr_probe_run returned */
};
struct fr_probe {
	const struct fr_address *a;
	struct fr_bench_req req;
	struct fr_probe_gate *gate;
	_Atomic uint64_t bytes;   /* progress */
	/* results */
	struct fr_bench_report rep; /* the receiver's count (this machine's
				     * with reverse) and the sender's TCP */
	int rc;
	char err[1024];
};
int fr_probe_run(struct fr_probe *p);

/* A parcel can be written to dir (an existing, writable directory: a
 * medium's mount point is not made): 0, else the errno that says why. */
int fr_medium_writable(const char *dir);

/* ---- a RAS line on its own (out/ras.c): ferry bench link, a parcel's
 * messages ---------------------------------------------------------------- */
struct fr_line;
/* Take the address's line as a send would (its lock; dialled unless it is
 * up already: *dialled). 0 or a code, with err. Without wait, a line
 * another transfer holds is not waited for: 1 once it is up (its dial
 * waited for; use it as it is, *out stays NULL), -EAGAIN when it does
 * not come up. */
int fr_line_take(const struct fr_config *c, const struct fr_address *a,
		 bool wait, struct fr_line **out, bool *dialled, char *err,
		 size_t cap);
/* Let it go; hang_up: hang it up now (why: logged, "the measurement is
 * over") unless a transfer is waiting for it (then it is left to its
 * keeper's idle timeout). true when hung up. */
bool fr_line_release(struct fr_line *l, bool hang_up, const char *why);
/* What bringing the address's line up takes, as far as this store knows:
 * 0 when it is up now (its keeper alive: no dial), else the seconds its
 * last dial took (kept at each dial that worked, with its time in *when),
 * else -1 (never dialled here). */
double fr_line_dial_known(const struct fr_config *c, const struct fr_address *a,
			  int64_t *when);

#endif
