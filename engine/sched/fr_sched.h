/*
 * fr_sched.h - the scheduler's assignment core: which output carries
 * which segment of one transfer (assign.c), the link simulator that
 * drives it to predict a send (sim.c), the rate learned per address
 * kept in the sender's store (links.c), and the plan made of them
 * (plan.c).
 *
 * `ferry plan` (plan.c) runs that simulator over a site's addresses.
 *
 * Invariants: a segment is free (no carrier), carried by one or two
 * outputs (two only in the endgame), or done (acknowledged once; the
 * first ACK wins). An output's backlog is the bytes of the segments it
 * carries. Segments at or past a reserved tail belong to the courier
 * until the tail is released. Times are seconds on the caller's clock
 * (`now`), rates bytes per second.
 *
 * Life cycle: fr_assign_init, fr_assign_add per output, then any
 * number of threads call next / acked / release / down / up; fini.
 * Nothing here does I/O but links.c.
 */
#ifndef FR_SCHED_H
#define FR_SCHED_H

#include <time.h>

#include "out/fr_out.h"
#include "store/fr_store.h"

struct fr_transfer; /* below */

/* ---- the assignment (assign.c) ------------------------------------------- */

#define FR_ASSIGN_MAX_OUT 16
#define FR_ASSIGN_NONE (-1)  /* nothing for it now: wait for a change */
#define FR_ASSIGN_POLL_S 1.0 /* or ask again after this long (the endgame) */
#define FR_ASSIGN_DONE (-2)  /* every segment is acknowledged */

/* Where an output's rate came from: LEARNED once this send's own
 * estimate replaced the rate it started from. */
enum fr_rate_src {
	FR_RATE_DEFAULT,    /* nothing known: a default */
	FR_RATE_CONFIGURED, /* the address's `bandwidth` */
	FR_RATE_PROFILE,    /* its type's line profile */
	FR_RATE_MEASURED,   /* stored by an earlier send (links.c) */
	FR_RATE_LEARNED	    /* measured in this one */
};
const char *fr_rate_src_name(int src); /* "default", "configured", ... */

/* What status and plan show of one output. */
struct fr_assign_stat {
	char name[64];
	double rate;  /* the current estimate, bytes/s */
	int rate_src; /* enum fr_rate_src */
	bool up, courier;
	uint32_t held;			 /* segments carried now */
	uint64_t backlog;		 /* their bytes */
	uint32_t segs_given, segs_acked; /* acked: first ACKs only */
	uint64_t bytes_given, bytes_acked;
	uint32_t copies;   /* endgame copies given to it */
	uint32_t returned; /* given back: released, or lost in a drop */
	double last_ack;   /* when its last first ACK came (-1: none) */
};

#define FR_ASSIGN_SAMPLES 64
struct fr_assign_out {
	char name[64];
	double rate, latency;
	double setup;  /* before it could start: bringing it up (a dial, a
			* handshake) while it is not open; 0 once it is */
	double opening_from; /* being brought up since (fr_now_s), or -1 */
	bool up, courier;
	uint32_t *q, nq, capq; /* carried segments, in the order given */
	uint64_t backlog;
	double tx_end; /* when its backlog is on the wire, estimated */
	double mark;   /* when its oldest segment began, estimated */
	/* the estimator: busy time and bytes since the last sample */
	double busy_from; /* < 0: idle (nothing carried) */
	double busy_acc;
	uint64_t acked_acc;
	bool tainted;     /* the wire still carries what was not kept: the
			   * next ACK's sample would count it */
	double samples[FR_ASSIGN_SAMPLES]; /* the last ones taken */
	unsigned n_samples;		   /* taken in all */
	struct fr_assign_stat st;
};

struct fr_assign {
	pthread_mutex_t mu;
	uint32_t n_segs, n_done;
	uint64_t done_bytes;    /* of the segments done */
	uint32_t n_held;        /* of them: held at the receiver before any
				 * output of this send carried them */
	uint64_t held_bytes;
	uint32_t *bytes;     /* per segment */
	int8_t (*car)[2];    /* per segment: its carriers, -1 none */
	int8_t *copier;      /* per segment: the output given an endgame
			      * copy of it, -1 none */
	uint8_t *done;	     /* per segment */
	int8_t *lost_by;     /* per segment: the output that had it under
			      * way when it went down, -1 none (credited
			      * if the receiver turns out to hold it) */
	uint32_t first_free; /* no free segment below it */
	uint32_t tail_from;  /* n_segs: no tail reserved */
	uint64_t free_bytes; /* bytes of free segments below tail_from */
	unsigned n_out;
	struct fr_assign_out out[FR_ASSIGN_MAX_OUT];
};

/* have[i] != 0: segment i is already at the receiver. 0 or -ENOMEM;
 * -EINVAL for no segments. */
int fr_assign_init(struct fr_assign *a, uint32_t n_segs,
		   const uint32_t *seg_bytes, const uint8_t *have);
void fr_assign_fini(struct fr_assign *a); /* idempotent; safe zeroed */
/* An output starting from rate (bytes/s, > 0) whose source is src; its
 * latency is from the last byte sent to its ACK. The output's index, or
 * -ENOSPC past FR_ASSIGN_MAX_OUT, -EINVAL for a rate <= 0. */
int fr_assign_add(struct fr_assign *a, const char *name, double rate,
		  int rate_src, double latency_s);
/*
 * Output o has room for one more segment: the segment it should carry
 * (lowest index first), FR_ASSIGN_NONE (it would not land one before the
 * others: ask again after the next ACK, release or drop of any output,
 * or FR_ASSIGN_POLL_S later, since a late output becomes worth copying
 * as time passes) or FR_ASSIGN_DONE. *copy is set
 * when the segment is an endgame copy of one another output carries: the
 * carrier asks fr_assign_is_done before it sends it.
 */
int64_t fr_assign_next(struct fr_assign *a, unsigned o, double now, bool *copy);
/* seg is durable at the receiver, reported by o (a courier's import
 * too): true for its first ACK; every carrier lets go of it. */
bool fr_assign_acked(struct fr_assign *a, unsigned o, uint32_t seg, double now);
/* The same, when o sent only sent bytes' worth of seg's (the receiver
 * kept the start of an interrupted frame): its rate is learned from
 * those, not from the segment's length. */
bool fr_assign_acked_part(struct fr_assign *a, unsigned o, uint32_t seg,
			  uint32_t sent, double now);
bool fr_assign_is_done(struct fr_assign *a, uint32_t seg);
/* seg is at the receiver already (an offer's answer, a copy it holds):
 * done, with no sample for any estimate, credited to the output that had
 * it under way when it went down (its ACK lost with its connection), if
 * any, else to none. */
void fr_assign_held(struct fr_assign *a, uint32_t seg, double now);
/* o will not carry seg after all (refused, cancelled): the others may. */
/* What o sent of seg did not land (the receiver asked for it again): seg
 * goes back as by release, and o's next sample is not taken (its link
 * was busy with bytes that were thrown away). */
void fr_assign_again(struct fr_assign *a, unsigned o, uint32_t seg, double now);
void fr_assign_release(struct fr_assign *a, unsigned o, uint32_t seg,
		       double now);
/* o dropped, or its window closed: all it carried goes back at once. */
void fr_assign_down(struct fr_assign *a, unsigned o, double now);
void fr_assign_up(struct fr_assign *a, unsigned o, double now);
/* Output o is not open: s seconds would go to bringing it up before it
 * could carry a segment (0: it is open). */
void fr_assign_setup(struct fr_assign *a, unsigned o, double s);
/* Output o is being brought up from now: its setup counts down, and
 * one that takes longer than said is expected to take as long again (a
 * dial of 30 s, not 5: the others do not wait for it). Its first
 * fr_assign_next says it is open. */
void fr_assign_opening(struct fr_assign *a, unsigned o, double now);
/* When output o would land segment seg given now (what it carries, its
 * rate, what opening it costs): the assignment's own model. */
double fr_assign_land_at(struct fr_assign *a, unsigned o, uint32_t seg,
			 double now);
bool fr_assign_all_done(struct fr_assign *a);
/* Segments acknowledged (or held) so far; *bytes: theirs. */
uint32_t fr_assign_done(struct fr_assign *a, uint64_t *bytes);
/* Segments the receiver held that no output of this send carried (an
 * offer's answer; not one it holds because another output of this send
 * landed it first); *bytes: theirs. */
uint32_t fr_assign_held_before(struct fr_assign *a, uint64_t *bytes);
void fr_assign_stat(struct fr_assign *a, unsigned o, struct fr_assign_stat *st);
/* The median of output o's own samples in this send (its last
 * FR_ASSIGN_SAMPLES; 0: none): what the link carried here, not blended
 * with where the estimate started, nor pulled down by an outage. What a
 * send keeps for the next; sorted when asked, at its end. */
double fr_assign_rate_own(struct fr_assign *a, unsigned o);

/*
 * The courier's part: segments >= from belong to output `courier`,
 * which next() never serves and which the others' timing leaves out;
 * network outputs do not take them until release_tail (the parcel is
 * late) or until they are acked (the import). -EINVAL for a bad index.
 */
int fr_assign_reserve_tail(struct fr_assign *a, unsigned courier,
			   uint32_t from);
void fr_assign_release_tail(struct fr_assign *a);
/* The bytes of segments from `from` on not at the receiver yet. */
uint64_t fr_assign_left_from(struct fr_assign *a, uint32_t from);

/* A courier as the split sees it: a parcel written at write_rate,
 * shipped in transit_s, imported at import_rate (bytes/s). */
struct fr_courier_model {
	double write_rate, transit_s, import_rate;
	double room; /* bytes its media can take now (0: not known) */
};
/*
 * Where to split: the first segment of the courier's tail, the network
 * (n_net outputs of these rates, each carrying from net_from[i] seconds
 * from now on, < 0: never; NULL: all now) carrying the front, so that
 * both would finish together (the least of the two finishing times'
 * maximum), or FR_ASSIGN_NONE when the network alone is sooner. *eta:
 * the finish with that choice (seconds from now).
 */
int64_t fr_assign_split(uint32_t n_segs, const uint32_t *seg_bytes,
			const double *net_rates, const double *net_from,
			unsigned n_net, const struct fr_courier_model *c,
			double *eta);
/* The courier address a as the split sees it: media written at about
 * 150 MB/s, its `transit`, imported at about 100 MB/s. false when it has
 * no media or no transit time. */
bool fr_courier_model_of(const struct fr_address *a,
			 struct fr_courier_model *cm);
/* Does output o carry seg now? */
bool fr_assign_carries(struct fr_assign *a, unsigned o, uint32_t seg);
/* How long the courier takes to bring `bytes`: written, shipped and
 * imported one after the other (a rate <= 0 counts as instant). */
double fr_courier_time(const struct fr_courier_model *c, uint64_t bytes);

/* ---- the link simulator (sim.c) ------------------------------------------ */

#define FR_SIM_MAX_OFF 32
#define FR_SIM_MAX_DEPTH 16
/* A link as the simulator models it: it sends one segment at a time at
 * `rate`, each ACKed `latency` after its last byte, and holds at most
 * `depth` unacknowledged. The assignment is told start_rate. Off
 * intervals (a drop, a closed window): down at from, up at to (< 0:
 * never again). */
struct fr_sim_link {
	const char *name;
	double rate, start_rate; /* start_rate 0: rate */
	int rate_src;
	double latency;
	double setup;   /* what opening it costs, s (a handshake, a dial):
			 * it opens once it is given a segment, as a send's
			 * link does, and sends from setup later */
	unsigned depth; /* 0: 2 */
	struct {
		double from, to;
	} off[FR_SIM_MAX_OFF];
	unsigned n_off;
};
/* The courier pseudo-output: the split from fr_assign_split; the parcel
 * arrives `late` seconds after it was expected. */
struct fr_sim_courier {
	bool on;
	struct fr_courier_model m;
	double late;
};
struct fr_sim_out {
	struct fr_assign_stat st; /* at the end */
	uint32_t sends;		  /* segments whose sending began */
	uint32_t wasted;	  /* sends whose ACK was not the first */
	double finish;		  /* its last first ACK (0: none) */
};
struct fr_sim_result {
	double eta;	    /* when the last segment was acked */
	uint32_t dups;	    /* sends of a segment sent before, not as an
			       endgame copy nor after a failure */
	uint32_t resent;    /* sends after a failure lost the segment */
	uint32_t copies;    /* endgame copies sent */
	int64_t split;	    /* the courier's first segment, or -1 */
	double courier_eta; /* predicted parcel finish (0: none) */
	unsigned n;	    /* links, then the courier when on */
	struct fr_sim_out out[FR_ASSIGN_MAX_OUT];
};
/* Run a send of these segments over the links (and courier) to the end.
 * 0, -EINVAL (no link, too many, depth too large), -ENOMEM, or
 * -EDEADLK when it cannot finish (every link down for good). */
int fr_sim_run(const struct fr_sim_link *links, unsigned n,
	       const struct fr_sim_courier *cr, uint32_t n_segs,
	       const uint32_t *seg_bytes, struct fr_sim_result *r);

/* ---- rates learned per address (links.c) --------------------------------- */

#define FR_LINK_DEFAULT_RATE 12.5e6 /* bytes/s (100 Mbit/s): nothing known */
/* <store>/links/<SITE>.<name>: the rate measured (bytes/s) and when
 * (Unix time). 0, -ENOENT, or another -errno / FR_E_CONFIG (unreadable). */
int fr_link_load(const struct fr_config *c, const struct fr_address *a,
		 double *rate, int64_t *when);
int fr_link_save(const struct fr_config *c, const struct fr_address *a,
		 double rate, int64_t when);
/* A rate seen in package bytes/s (raw_rate) as the link carried it: raw
 * package bytes that went as wire bytes on the wire. A package that
 * compressed well went faster than the link, and the next one may not
 * compress: what is kept is the link's. */
double fr_link_on_wire(double raw_rate, uint64_t wire, uint64_t raw);
/* The rate a send over a starts from (bytes/s) and its source: stored
 * measurement, else configured bandwidth, else the line profile, else
 * FR_LINK_DEFAULT_RATE. */
double fr_link_rate(const struct fr_config *c, const struct fr_address *a,
		    int *src);
/* What opening address a costs before it carries, s: a LAN's handshake;
 * a RAS line's dial and handshake: the dial none when the line is up now,
 * else what its last dial here took, else its type's assumed time (line
 * profile). *src (may be NULL): where the dial's time came from. */
enum fr_setup_src { FR_SETUP_ASSUMED, FR_SETUP_MEASURED, FR_SETUP_UP };
double fr_link_setup(const struct fr_config *c, const struct fr_address *a,
		     int *src);
const char *fr_setup_src_name(int src); /* "assumed", "measured", "up" */
/* The rate an address's rate limit allows at t, bytes/s (0: no limit). */
double fr_link_limit(const struct fr_address *a, time_t t);
/* Another live send (another process), or a `bench link`, moves bytes
 * over address a now: what this one learns of the link is its share,
 * not the link's. */
bool fr_link_shared(const struct fr_config *c, const struct fr_address *a);
/* ---- send slots (slots.c) ---------------------------------------------- */

struct fr_slots {
	int all_fd, site_fd; /* held (flock), or -1 */
	int max_all, max_site;
};
/* Wait for a send slot of site (max-sends, max-sends-per-site), behind
 * the live waiters of that site of higher priority, and of the same one
 * that came first; waiting(arg, why) once when it has to wait. 0 or a
 * negative code. */
int fr_slots_acquire(const struct fr_config *c, const char *site, int priority,
		     void (*waiting)(void *arg, const char *why), void *arg,
		     struct fr_slots *sl);
void fr_slots_release(struct fr_slots *sl); /* safe on one not taken */

/* How many sends of this store (this one counted, and a `bench link`)
 * move bytes over a now: a rate limit's share of the line is theirs
 * together. */
unsigned fr_link_senders(const struct fr_config *c,
			 const struct fr_address *a);
/* A `bench link` of this process measures a (on), or is over: marked in
 * the store for the sends above. 0 or a negative code. */
int fr_link_bench_mark(const struct fr_config *c, const struct fr_address *a,
		       bool on);

/* What a send learned of a link is kept for the next (and for plan) when
 * it is the link's: not held by a rate limit, nor shared with another
 * send, and long enough to mean something (4 MiB on the wire, or 10 s). */
#define FR_LEARN_MIN_BYTES (4u << 20)
#define FR_LEARN_MIN_S 10.0

/* ---- several outputs at once (stripe.c) ------------------------------------- */

/* A send's courier (stripe.c): a parcel of segments [first, n) written
 * at once to the address's media, the network carrying the front. */
struct fr_stripe_courier {
	const struct fr_address *a;
	struct fr_courier_model model;
	uint32_t first;
	double eta;                  /* both expected done, s from the start */
	bool written;                /* an earlier run's parcel, on its way:
				      * none is written */
};
/* A striped send (stripe.c): the package over every address in addrs at
 * once, by what each carries (with a courier, when not NULL); 0 once the
 * site has it complete. */
/* What no other address nor a retry can fix: the source changed or
 * cannot be read, the package name is another account's. */
bool fr_send_final(int rc);
int fr_stripe_run(const struct fr_config *c, struct fr_transfer *t,
		  struct fr_known *known, bool single,
		  const struct fr_stripe_courier *courier,
		  const struct fr_address *const *addrs, unsigned n,
		  void (*progress)(void *arg, const struct fr_progress *p),
		  void *progress_arg, struct fr_send_result *res, char *err,
		  size_t cap);

/* ---- the plan (plan.c) --------------------------------------------------- */

struct fr_plan;
struct fr_schedule;

/* The simulator's view of a planned link: segments in flight per output
 * (lan.c keeps up to 6; 2 and 4 plan test_plan.sh's send alike, to the
 * segment), and the latency a striped send starts from. */
#define FR_PLAN_DEPTH 4
#define FR_PLAN_LATENCY_S 0.05
/* How far ahead a schedule is followed: closures past the first
 * FR_SIM_MAX_OFF, or past four weeks, count as open. */
#define FR_PLAN_HORIZON_S (28.0 * 86400)

/*
 * The closed intervals of a schedule for a send of this priority from
 * `now` on, as off intervals of L in seconds from now (the first one
 * from 0 when it is closed now). Returns when it first opens (s from
 * now; 0: open now), or -1 when it never opens to the priority.
 */
double fr_plan_windows(const struct fr_schedule *s, int priority, time_t now,
		       struct fr_sim_link *L);

/* What fr_plan_compute simulates: the segments still to send (their
 * bytes, and their indices in the package: NULL for 0..n-1), the
 * network links, and the courier (NULL: none). */
struct fr_plan_input {
	uint32_t n_segs;
	const uint32_t *bytes;
	const uint32_t *index;
	const struct fr_sim_link *links;
	unsigned n_links;
	const struct fr_courier_model *courier;
	const unsigned *output; /* links[i] is p->outputs[output[i]]; NULL:
				 * outputs[i] */
};
/*
 * The send simulated over the links: p->outputs[i] (i < n_links; or
 * output[i]) get
 * segments, bytes and finish, p->eta the last landing; with a courier,
 * p->courier gets alone, and the split when it would beat the network
 * alone (split, first, the two parts, eta, gain) or why not (its name,
 * media, transit and rates are the caller's). Nothing else in p is
 * touched. 0, -EINVAL, -ENOMEM, or -EDEADLK (no link ever
 * up).
 */
int fr_plan_compute(const struct fr_plan_input *in, struct fr_plan *p);
/* What the site holds of m (mf, len: its offer), asked as plan asks
 * (plan.c): through every LAN address among net at once, within 5 s.
 * held[s] = 1 for a segment it holds or holds a copy of; FR_HAVE_* of
 * the first address in priority order that answered, -ENOENT when none
 * did, or -ENOMEM. */
int fr_site_held(const struct fr_config *c, int priority,
		 const struct fr_address *const *net, unsigned n,
		 const struct fr_manifest *m, const uint8_t *mf, size_t len,
		 uint8_t *held);

/* ---- sender-side transfers (sched.c) ----------------------------------- */

struct fr_transfer {
	char id[64];                 /* <12 hex of package id>-<SITE> */
	char dir[1100];              /* <store>/outgoing/<id> */
	char source[4096];
	char name[FR_NAME_MAX + 1];
	char site[FR_CODE_MAX + 1];
	char via[64];
	int priority;
	int level;                   /* -1 auto */
	char state[16];              /* sending, waiting, done, failed */
	bool skip_special;           /* left out: still exit 0 */
	uint32_t left_out;           /* entries the last run left out */
	int courier;                 /* FR_COURIER_*: split with a parcel
				      * when media would help (kept for
				      * resume) */
	char parcel[33];             /* the parcel a send wrote, while it
				      * may still bring the tail */
	bool tail_sent;              /* the network went into that parcel's
				      * segments (the parcel was late, or
				      * failed): what the site holds of
				      * them is not all the parcel's */
	uint32_t tail_net;           /* ... and landed none of them from
				      * this one on (0: none): what the site
				      * holds past it is the parcel's */
};
int fr_transfer_save(const struct fr_transfer *t);
/* The parcel a run of t wrote (its hex id), kept with the transfer. */
int fr_transfer_set_parcel(struct fr_transfer *t, const char *id);
/* The network was let into the parcel's segments (kept for resume). */
int fr_transfer_tail_sent(struct fr_transfer *t);
/* The network landed the parcel's segment seg (kept for resume). */
int fr_transfer_tail_net(struct fr_transfer *t, uint32_t seg);
int fr_transfer_load(const char *dir, struct fr_transfer *t);
int fr_progress_load(const char *dir, struct fr_progress *p);
/* The value of "key=" in one line of <transfer>/outputs (status.c): up
 * to the next space, or, for rest, to the end of the line; "" if none. */
void fr_outputs_field(const char *line, const char *key, bool rest,
		      char *out, size_t cap);
/* The state `status` shows for a transfer (status.c): its record's or
 * its progress's, "interrupted" when its sender is gone, "incomplete"
 * when done but something was left out, "waiting" for a line. */
const char *fr_transfer_state_shown(const struct fr_transfer *t,
				    const struct fr_progress *p);

/* The send's progress file (struct fr_progress, out/fr_out.h). */
int fr_progress_save(const char *dir, const struct fr_progress *p);

/*
 * A receiver that answers "busy" (-EBUSY: all its sessions taken, or the
 * package held by another session still receiving) is asked again after
 * FR_BUSY_RETRY_MS, up to FR_BUSY_RETRIES times in a transfer (by each
 * link of a striped one), before the normal retry-delay applies; these
 * tries do not count against `retries` (retries = 0 still means one try
 * only).
 */
#define FR_BUSY_RETRY_MS 1000u
#define FR_BUSY_RETRIES 10

/* ---- one output's try (sched.c) --------------------------------------------- */
/* One try by one output: open it, offer the manifest and send what the
 * site lacks; res's counts grow with what went. began: an offer was
 * answered before (the start, what the site held, is known). */
int fr_send_by(struct fr_output *o, struct fr_send_ctx *sc,
	       struct fr_send_result *res, bool *began, char *err,
	       size_t errcap);

#endif
