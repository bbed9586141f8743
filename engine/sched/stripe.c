/*
 * stripe.c - one package over several outputs at once.
 *
 * When two or more network addresses to a site are open to a send's
 * priority (and no --via pins one), each gets a lane: a thread that
 * opens its output, offers the manifest and sends what the assignment
 * (assign.c) gives it, one segment at a time as it has room. The
 * assignment decides by each output's rate: it starts from what is
 * configured, profiled or measured before (links.c) and follows what the
 * output's ACKs show.
 *
 * A lane that drops gives its segments back at once (fr_assign_down) and
 * is redialled with the sender's retry settings; a lane whose schedule
 * window closes gives them back and waits for the window; a lane that
 * comes back takes segments again. Each lane, once every segment is
 * acknowledged, sends END and the segment table; the receiver completes
 * the package once and answers each with DONE. The transfer fails only
 * when every lane has failed, or on what no other link can fix (the
 * source changed, a refused password).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sched/fr_sched.h"

struct stripe;

struct lane {
	struct stripe *st;
	const struct fr_address *a;
	const struct fr_output_ops *ops;
	unsigned idx;                /* in the assignment */
	pthread_t th;
	int rc;
	char err[768];
	char state[24];              /* for status: sending, closed, ... */
	struct fr_send_result res;   /* this lane's counts */
	struct fr_progress last;     /* of its try under way (zeroed after) */
	uint64_t wire_before;        /* its tries' wire bytes before it */
	bool began;
	uint64_t taken;              /* what its receiver took (its TCP's
				      * ACKs, segments acknowledged) */
	double taken_at;             /* when that last grew (this try) */
	bool stall_said;
	bool stalled_once;           /* shown stalled in this send: what it
				      * carried is not its rate */
	int sock;                    /* its connection, -1 none (under mu) */
	bool in_data;                /* this try sends (it reported progress) */
	bool limited;                /* a rate limit held it at some point,
				      * or another send shared its link:
				      * what it showed is not the link's */
	double shared_at;            /* when that sharing was last looked at */
	uint32_t acked_before;       /* its segments acknowledged before this
				      * try (a link in standby that carries
				      * again says so at once) */
	bool standby;                /* failed retries times in a row: tried
				      * again every retry-delay while another
				      * link may carry (under mu) */
};

/* What a link tried again past its retries is counted to cost to open,
 * s, besides its handshake or dial (and more as its open drags on: the
 * assignment counts a late open as later still). More would keep a
 * fast link that came back from being used while the package lasts. */
#define STANDBY_SETUP_S 2.0

/* How often a lane looks for another send over its address. */
#define SHARED_CHECK_S 2.0

/* An output carrying segments whose receiver has taken nothing for this
 * long (a link gone silent: no reset, no error yet) shows as stalled
 * (FERRY_STALL_SHOW_MS, a test build's). */
#define STALL_SHOW_MS 10000

struct stripe {
	const struct fr_config *c;
	struct fr_transfer *t;
	struct fr_known *known;
	bool single;
	struct fr_assign as;
	struct fr_feed feed;         /* the assignment, as the outputs see it */
	struct lane lanes[FR_ASSIGN_MAX_OUT];
	unsigned n;
	pthread_mutex_t mu;          /* progress, the outcome */
	atomic_bool completed;       /* a lane's END was answered DONE */
	atomic_bool cancel;          /* a lane met what others cannot fix */
	void (*progress)(void *arg, const struct fr_progress *p);
	void *progress_arg;
	uint64_t outputs_saved_ns;
	uint64_t shown;              /* the progress's bytes done, so far */
	double eta_win, eta_win_at;  /* the network's ETA with a link closed
				      * by its schedule, and when made */
	bool eta_busy;               /* a lane makes it (without mu) */
	unsigned progress_seq;       /* progress_all's calls */
	struct fr_progress shown_q;  /* the last progress given (a lane's,
				      * made the whole send's) */
	bool has_q;
	double t0;                   /* when the run began (fr_now_s) */
	/* the courier: a parcel of the tail, written by its own thread */
	const struct fr_stripe_courier *cr;
	unsigned cr_idx;             /* its output in the assignment */
	atomic_bool tail_held;       /* the network leaves the tail to it */
	uint32_t front_done;         /* no segment below it is missing */
	pthread_t cr_th;
	bool cr_running;
	int cr_rc;
	char cr_err[1200];           /* failed: why, for status */
	atomic_bool cr_over;         /* the parcel is written (or failed: cr_rc) */
};

/* ---- the assignment as the outputs see it (struct fr_feed) ----------------- */

/* The network has landed every segment before the courier's tail. */
static bool front_done(struct stripe *st)
{
	while (st->front_done < st->cr->first &&
	       fr_assign_is_done(&st->as, st->front_done))
		st->front_done++;
	return st->front_done >= st->cr->first;
}

static int64_t feed_next(void *arg, unsigned out, bool *copy)
{
	struct stripe *st = arg;
	int64_t seg = fr_assign_next(&st->as, out, fr_now_s(), copy);

	if (seg != FR_ASSIGN_NONE || !atomic_load(&st->tail_held))
		return seg;
	pthread_mutex_lock(&st->mu);
	bool go = atomic_load(&st->tail_held) && front_done(st);
	if (go) {
		/* a package never waits for its parcel */
		atomic_store(&st->tail_held, false);
		fr_assign_release_tail(&st->as);
		fr_transfer_tail_sent(st->t);
		if (st->cr->first)
			fr_log(FR_LOG_INFO,
			       "'%s' to %s: the network has sent the front; it "
			       "goes on into the parcel's segments until the "
			       "parcel is imported",
			       st->t->name, st->t->site);
		else
			fr_log(FR_LOG_INFO,
			       "'%s' to %s: the network sends the parcel's "
			       "segments meanwhile, until the parcel is "
			       "imported",
			       st->t->name, st->t->site);
	}
	pthread_mutex_unlock(&st->mu);
	return go ? fr_assign_next(&st->as, out, fr_now_s(), copy) : seg;
}

/* seg is durable, out says (sent: its part of it). The output credited
 * is the one whose copy landed: a network session that had not sent its
 * copy whole (it may have been given it, or be sending it) did not bring
 * it. Of the courier's tail, the parcel's import did; else the other
 * carrier (an endgame copy), if there is one. */
static void feed_acked(void *arg, unsigned out, uint32_t seg, bool went,
		       uint32_t sent)
{
	struct stripe *st = arg;
	unsigned by = out;

	bool other = false; /* no output of this send brought it */
	if (st->cr && seg >= st->cr->first &&
	    (!went || !fr_assign_carries(&st->as, out, seg))) {
		by = st->cr_idx;
	} else if (!went) {
		other = true;
		for (unsigned i = 0; i < st->n && other; i++) {
			unsigned k = st->lanes[i].idx;
			if (k != out && fr_assign_carries(&st->as, k, seg)) {
				by = k;
				other = false;
			}
		}
	}
	/* the progress each lane last gave counts seg among its frames on
	 * their way until it gives the next: not counted twice meanwhile
	 * (the shown progress, which never goes back, ran a segment ahead
	 * of the links and stayed there) */
	uint64_t len = st->known->m->segments[seg].length;
	bool done = fr_assign_is_done(&st->as, seg);
	pthread_mutex_lock(&st->mu);
	for (unsigned i = 0; i < st->n && !done; i++) {
		struct lane *l = &st->lanes[i];
		if (l->idx == out || fr_assign_carries(&st->as, l->idx, seg))
			l->last.moving_bytes -= l->last.moving_bytes < len
							? l->last.moving_bytes
							: len;
	}
	pthread_mutex_unlock(&st->mu);
	if (other) { /* another arrival did (a parcel, another sender of
		      * the package): held, as if before */
		fr_assign_held(&st->as, seg, fr_now_s());
		return;
	}
	/* the rate is learned from what a session carried itself (none:
	 * its time went to a copy thrown away) */
	fr_assign_acked_part(&st->as, by, seg,
			     by != out ? UINT32_MAX : went ? sent : 0,
			     fr_now_s());
	/* the network landed one of the parcel's segments: a resume
	 * credits the parcel only with what it holds past the last such */
	if (st->cr && seg >= st->cr->first && by != st->cr_idx)
		fr_transfer_tail_net(st->t, seg);
}

/* seg was at the site when a session offered the package. Of the tail
 * of a parcel that the network never went into, the parcel brought it:
 * an earlier run's, imported while no send ran, or this run's, imported
 * before any link could offer (every one closed, or the site down) */
static void feed_held(void *arg, uint32_t seg)
{
	struct stripe *st = arg;
	/* (this run's network landed nothing it holds: that would be
	 * done, and not asked about; an earlier run's may have, once its
	 * parcel was late) */
	bool ours = st->cr && !st->cr->written &&
		    atomic_load(&st->cr_over) && st->cr_rc >= 0;
	bool earlier = st->cr && st->cr->written &&
		       (!st->t->tail_sent || seg >= st->t->tail_net);

	if ((ours || earlier) && seg >= st->cr->first)
		fr_assign_acked_part(&st->as, st->cr_idx, seg, UINT32_MAX,
				     fr_now_s());
	else
		fr_assign_held(&st->as, seg, fr_now_s());
}

/* The site held the package complete when a lane offered it (its answer
 * names no segment): each segment no output of this send landed was
 * held, and feed_held says who brought it (a parcel's tail, its import). */
static void held_complete(struct stripe *st)
{
	const struct fr_manifest *m = st->known->m;

	for (uint32_t s = 0; s < m->n_segments; s++)
		if (!fr_assign_is_done(&st->as, s))
			feed_held(st, s);
}

static void feed_again(void *arg, unsigned out, uint32_t seg)
{
	struct stripe *st = arg;

	fr_assign_again(&st->as, out, seg, fr_now_s());
}

static bool feed_is_done(void *arg, uint32_t seg)
{
	struct stripe *st = arg;

	return fr_assign_is_done(&st->as, seg);
}

static bool feed_all_done(void *arg)
{
	struct stripe *st = arg;

	return fr_assign_all_done(&st->as);
}

static uint32_t feed_n_done(void *arg)
{
	struct stripe *st = arg;
	uint64_t bytes;

	return fr_assign_done(&st->as, &bytes);
}

/* What no other link can fix: the others are told to stop. (A refused
 * password is this address's: the others have their own.) */
static bool fatal(int rc)
{
	return fr_send_final(rc) || rc == -ENOMEM;
}

/* ---- progress: the lanes' views made one ----------------------------------- */

/* Why an output carries nothing now, in one word ("-": it carries). */
static bool lane_stalled(const struct lane *l, uint32_t held)
{
	return held && !strcmp(l->state, "sending") &&
	       fr_now_s() - l->taken_at >
		       fr_hook_num("STALL_SHOW_MS", STALL_SHOW_MS) / 1000.0;
}

/* Every segment of the courier's tail is at the receiver (its parcel
 * imported, or the network carried them). */
static bool tail_in(struct stripe *st)
{
	return fr_assign_left_from(&st->as, st->cr->first) == 0;
}

/* How long until the parcel is expected in, 0 when it is in (tail: the
 * bytes of its segments not at the site yet) or due. */
static double courier_due_s(struct stripe *st, uint64_t tail)
{
	return tail ? fmax(0, st->t0 + st->cr->eta - fr_now_s()) : 0;
}

static double courier_left_s(struct stripe *st)
{
	return courier_due_s(st, fr_assign_left_from(&st->as, st->cr->first));
}

/* While a link waits for its window, what is left (but the parcel's
 * tail, while the courier carries it) at the rate of the links sending
 * now would ignore that it opens again: the network's time is
 * simulated as plan does, over the links that have not failed, each at
 * its estimate and with its schedule's closures. Made every 2 s; < 0
 * when none of them carries now or it cannot be made. Under st->mu. */
static double eta_windows(struct stripe *st, bool front_only)
{
	const struct fr_manifest *m = st->known->m;
	double now = fr_now_s();
	bool closed = false;

	for (unsigned i = 0; i < st->n; i++)
		closed |= !strcmp(st->lanes[i].state, "closed");
	if (!closed)
		return -1;
	if (now - st->eta_win_at < 2.0 || st->eta_busy)
		return st->eta_win;
	st->eta_win_at = now;
	uint32_t end = front_only ? st->cr->first : m->n_segments, n = 0;
	uint32_t *bytes = malloc(sizeof(uint32_t) * (end + 1));
	if (!bytes)
		return -1;
	for (uint32_t sg = 0; sg < end; sg++)
		if (!fr_assign_is_done(&st->as, sg))
			bytes[n++] = m->segments[sg].length;
	struct fr_sim_link L[FR_ASSIGN_MAX_OUT];
	unsigned k = 0;
	time_t wall = fr_schedule_now();
	for (unsigned i = 0; i < st->n; i++) {
		const struct lane *l = &st->lanes[i];
		struct fr_assign_stat s;
		if (!strcmp(l->state, "failed") || !strcmp(l->state, "done"))
			continue;
		fr_assign_stat(&st->as, l->idx, &s);
		L[k] = (struct fr_sim_link){.name = l->a->name,
					    .rate = s.rate,
					    .rate_src = s.rate_src,
					    .latency = FR_PLAN_LATENCY_S,
					    .depth = FR_PLAN_DEPTH};
		if (s.rate > 0 && fr_plan_windows(&l->a->schedule,
						  st->t->priority, wall,
						  &L[k]) >= 0)
			k++;
	}
	/* the simulation runs without st->mu: the lanes' progress does not
	 * wait for it (one at a time: eta_busy) */
	struct fr_sim_result r;
	double eta = n ? -1 : 0;
	if (n && k) {
		st->eta_busy = true;
		pthread_mutex_unlock(&st->mu);
		if (fr_sim_run(L, k, NULL, n, bytes, &r) == 0)
			eta = r.eta;
		pthread_mutex_lock(&st->mu);
		st->eta_busy = false;
	}
	st->eta_win = eta;
	free(bytes);
	return eta;
}

/* The package's ETA at the network's rate, the parcel's tail counted
 * as the courier's while the network leaves it to it: the later of the
 * front by network and the parcel, or all by network once it is due. */
static double eta_of(struct stripe *st, uint64_t left, double rate)
{
	bool held = st->cr && atomic_load(&st->tail_held);
	uint64_t tail = held ? fr_assign_left_from(&st->as, st->cr->first) : 0;
	double cr = held ? courier_due_s(st, tail) : 0;
	/* in; or due, and the network goes on */
	double net = eta_windows(st, cr > 0);
	if (net < 0 && rate <= 1)
		return -1;
	if (cr <= 0)
		return net >= 0 ? net : (double)left / rate;
	uint64_t front = left > tail ? left - tail : 0;
	return fmax(net >= 0 ? net : (double)front / rate, cr);
}

static const char *lane_why(const struct lane *l, uint32_t held,
			    bool stalled)
{
	if (strcmp(l->state, "sending") && strcmp(l->state, "idle"))
		return l->state;
	if (stalled)
		return "stalled";
	if (held)
		return "-";
	/* the front is sent: what is left is the parcel's, on its way */
	return atomic_load(&l->st->tail_held) && !tail_in(l->st) ? "courier"
								 : "idle";
}

/* The courier's line: writing its parcel, shipping it (written, not
 * imported yet), done, or failed (the network carried its tail). */
static size_t courier_line(struct stripe *st, char *buf, size_t cap)
{
	struct fr_assign_stat s;
	bool over = atomic_load(&st->cr_over);
	const char *state = over && st->cr_rc < 0	 ? "failed"
			    : !over			 ? "writing"
			    : atomic_load(&st->completed) ||
				      tail_in(st) ? "done"
						  : "shipping";

	fr_assign_stat(&st->as, st->cr_idx, &s);
	bool failed = !strcmp(state, "failed");
	double eta = courier_left_s(st);
	/* due and not in: the network goes on into its segments */
	bool late = !failed && strcmp(state, "done") && eta <= 0;
	int n = snprintf(buf, cap,
			 "output=%s type=courier state=%s segs=%u bytes=%llu "
			 "carrying=%u rate=%.0f rate_src=%s eta=%.0f current=0 "
			 "pid=%ld why=%s error=%s\n",
			 st->cr->a->name, state, s.segs_acked,
			 (unsigned long long)s.bytes_acked, s.held, s.rate,
			 fr_rate_src_name(s.rate_src), eta > 0 ? eta : -1,
			 (long)getpid(),
			 failed ? "failed" : late ? "late" : "-",
			 failed ? st->cr_err : "");
	return n > 0 ? (size_t)n : 0;
}

/*
 * <transfer>/outputs: a line per output, for `ferry status` (FORMAT.md,
 * "Sender-side state"); error, last, takes the rest of its line. pid
 * says whose the file is: a dead sender's lines are stale.
 */
static void save_outputs(struct stripe *st)
{
	char buf[FR_ASSIGN_MAX_OUT * 1200];
	size_t at = 0;

	for (unsigned i = 0; i < st->n && at < sizeof(buf); i++) {
		struct lane *l = &st->lanes[i];
		struct fr_assign_stat s;
		fr_assign_stat(&st->as, l->idx, &s);
		bool stalled = lane_stalled(l, s.held);
		if (stalled && !l->stall_said) {
			l->stall_said = l->stalled_once = true;
			fr_log(FR_LOG_WARN,
			       "'%s' to %s: address %s has taken nothing for "
			       "%.0f s; the other links carry on",
			       st->t->name, st->t->site, l->a->name,
			       fr_now_s() - l->taken_at);
		}
		bool sending = !strcmp(l->state, "sending");
		/* what it holds, less the part of its frames on their way
		 * that its link has carried (or the receiver kept) */
		double left = (double)s.backlog -
			      (sending ? (double)l->last.moving_bytes : 0);
		if (left < 0)
			left = 0;
		double eta = s.rate > 0 && s.held ? left / s.rate : 0;
		if (stalled) /* what it holds lands when it moves again */
			eta = -1;
		bool err = !strcmp(l->state, "failed") ||
			   !strcmp(l->state, "redialling");
		char e[sizeof(l->err)];
		snprintf(e, sizeof(e), "%s", err ? l->err : "");
		for (char *c = e; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		at += (size_t)snprintf(
			buf + at, sizeof(buf) - at,
			"output=%s type=%s state=%s segs=%u bytes=%llu "
			"carrying=%u rate=%.0f rate_src=%s eta=%.0f current=%.0f "
			"pid=%ld why=%s error=%s\n",
			l->a->name, l->ops->name, l->state, s.segs_acked,
			(unsigned long long)s.bytes_acked, s.held, s.rate,
			fr_rate_src_name(s.rate_src), eta,
			sending && !stalled ? l->last.rate : 0.0,
			(long)getpid(), lane_why(l, s.held, stalled), e);
	}
	if (st->cr && at < sizeof(buf))
		at += courier_line(st, buf + at, sizeof(buf) - at);
	char path[1400];
	if (at < sizeof(buf) &&
	    !fr_path_fmt(path, sizeof(path), "%s/outputs", st->t->dir))
		fr_write_file_atomic(path, buf, at);
}

/* The whole send's progress from q (a lane's): what every output has
 * landed and moves now, its rate and ETA; given on, and the outputs
 * record refreshed each second. Under st->mu (eta_windows lets it go
 * while it simulates). */
static void progress_all(struct stripe *st, struct fr_progress q)
{
	uint64_t done = 0;
	double rate = 0;

	/* what is acknowledged, by any output, and the part of each
	 * output's frames on their way that its link has carried; the
	 * level of the output that moves the most */
	uint32_t segs = fr_assign_done(&st->as, &done);
	double best = -1;
	q.wire_bytes = 0;
	for (unsigned i = 0; i < st->n; i++) {
		const struct lane *o = &st->lanes[i];
		q.wire_bytes += o->wire_before + o->last.wire_bytes;
		if (strcmp(o->state, "sending"))
			continue;
		rate += o->last.rate;
		done += o->last.moving_bytes;
		if (o->last.rate > best) {
			best = o->last.rate;
			q.level = o->last.level;
		}
	}
	if (done > q.total_bytes)
		done = q.total_bytes;
	if (done < st->shown) /* never back */
		done = st->shown;
	st->shown = done;
	q.done_bytes = done;
	q.moving_bytes = 0;
	q.segs_done = segs;
	q.rate = rate;
	unsigned seq = ++st->progress_seq;
	q.eta = eta_of(st, q.total_bytes - q.done_bytes, rate);
	if (seq != st->progress_seq)
		return; /* a later one was given while the ETA was made */
	st->shown_q = q;
	st->has_q = true;
	st->progress(st->progress_arg, &q);
	uint64_t now = fr_now_ns();
	if (now - st->outputs_saved_ns > 1000000000ull) {
		save_outputs(st);
		st->outputs_saved_ns = now;
	}
}

static void lane_progress(void *arg, const struct fr_progress *p)
{
	struct lane *l = arg;
	struct stripe *st = l->st;

	pthread_mutex_lock(&st->mu);
	l->last = *p;
	l->in_data = true;
	if (p->link_acked + p->segs_done != l->taken) {
		l->taken = p->link_acked + p->segs_done;
		l->taken_at = fr_now_s();
		l->stall_said = false;
	}
	if (l->standby) {
		struct fr_assign_stat as;
		fr_assign_stat(&st->as, l->idx, &as);
		if (as.segs_acked > l->acked_before) {
			l->standby = false; /* (its retries again, once over) */
			fr_log(FR_LOG_INFO,
			       "'%s' to %s: address %s carries again",
			       st->t->name, st->t->site, l->a->name);
		}
	}
	/* another send over the same address (another process) */
	double now_s = fr_now_s();
	if (!l->limited && now_s - l->shared_at >= SHARED_CHECK_S) {
		l->shared_at = now_s;
		if (fr_link_shared(st->c, l->a)) {
			l->limited = true;
			fr_log(FR_LOG_DEBUG,
			       "'%s' to %s: another send uses address %s too: "
			       "its rate is not learned from this one",
			       st->t->name, st->t->site, l->a->name);
		}
	}
	if (!strcmp(l->state, "dialling") || !strcmp(l->state, "waiting") ||
	    !strcmp(l->state, "starting")) { /* the line is up */
		snprintf(l->state, sizeof(l->state), "sending");
		st->outputs_saved_ns = 0;
	}
	progress_all(st, *p);
	pthread_mutex_unlock(&st->mu);
}

static void lane_state(struct lane *l, const char *state)
{
	struct stripe *st = l->st;

	pthread_mutex_lock(&st->mu);
	bool was = !strcmp(l->state, "sending");
	snprintf(l->state, sizeof(l->state), "%s", state);
	save_outputs(st);
	/* a link that stops sending takes its rate out of the send's now,
	 * not when another reports (none may: every link down) */
	if (was && strcmp(state, "sending") && st->has_q &&
	    !atomic_load(&st->completed))
		progress_all(st, st->shown_q);
	pthread_mutex_unlock(&st->mu);
}

/* ---- one lane -------------------------------------------------------------- */

/* The send needs this lane no more: the package is complete, or it
 * failed for every lane. */
static bool lane_stopped(void *arg)
{
	struct lane *l = arg;

	return atomic_load(&l->st->completed) || atomic_load(&l->st->cancel);
}

/* What a RAS lane's open waits for: its line, or the dial. */
static void lane_opening(void *arg, const char *state)
{
	lane_state(arg, state);
}

/* Sleep up to ms, or less once the transfer is over for every lane. */
static void lane_sleep(struct stripe *st, unsigned ms)
{
	for (unsigned t = 0; t < ms && !atomic_load(&st->completed) &&
			     !atomic_load(&st->cancel);
	     t += 200)
		usleep(200000);
}

/* How a lane's trouble ends its message: whether another link carries
 * on (is up, or coming up). */
static const char *carry_on(struct lane *l)
{
	struct stripe *st = l->st;
	bool others = false;

	pthread_mutex_lock(&st->mu);
	for (unsigned i = 0; i < st->n && !others; i++) {
		const char *s = st->lanes[i].state;
		others = &st->lanes[i] != l &&
			 (!strcmp(s, "sending") || !strcmp(s, "dialling") ||
			  !strcmp(s, "starting") || !strcmp(s, "waiting"));
	}
	pthread_mutex_unlock(&st->mu);
	return others ? "; the other links carry on"
		      : "; no other link carries on now";
}

/* Another lane may still carry the package: one that has not ended, nor
 * is only trying again past its retries (as l is). */
static bool others_live(struct lane *l)
{
	struct stripe *st = l->st;
	bool live = false;

	pthread_mutex_lock(&st->mu);
	for (unsigned i = 0; i < st->n && !live; i++) {
		const struct lane *o = &st->lanes[i];
		live = o != l && !o->standby && strcmp(o->state, "failed") &&
		       strcmp(o->state, "done");
	}
	pthread_mutex_unlock(&st->mu);
	return live;
}

static void set_standby(struct lane *l, bool on)
{
	pthread_mutex_lock(&l->st->mu);
	l->standby = on;
	pthread_mutex_unlock(&l->st->mu);
}

/* Wait while the address's schedule is closed to the send's priority:
 * its segments go to the open outputs meanwhile. */
static void lane_window(struct lane *l)
{
	struct stripe *st = l->st;

	if (fr_schedule_allows(&l->a->schedule, st->t->priority,
			       fr_schedule_now()))
		return;
	fr_assign_down(&st->as, l->idx, fr_now_s());
	lane_state(l, "closed"); /* before the others look */
	char when[64] = "never";
	time_t o = fr_schedule_next_open(&l->a->schedule, st->t->priority,
					 fr_schedule_now());
	if (o != (time_t)-1)
		fr_when_text(o, when, sizeof(when));
	fr_log(FR_LOG_INFO,
	       "'%s' to %s: address %s is closed to %s-priority sends now "
	       "(it opens %s%s)%s",
	       st->t->name, st->t->site, l->a->name,
	       fr_priority_name(st->t->priority), o != (time_t)-1 ? "at " : "",
	       when, carry_on(l));
	while (!atomic_load(&st->completed) && !atomic_load(&st->cancel) &&
	       !fr_schedule_allows(&l->a->schedule, st->t->priority,
				   fr_schedule_now())) {
		lane_sleep(st, 1000);
		/* status follows the courier meanwhile (its ETA, late) */
		pthread_mutex_lock(&st->mu);
		save_outputs(st);
		pthread_mutex_unlock(&st->mu);
	}
	fr_assign_up(&st->as, l->idx, fr_now_s());
}

/*
 * Would the assignment give this output a segment now? A link that the
 * others would always beat is not opened (a RAS line not dialled) until
 * it would: the segment asked for goes back at once, the output takes
 * its own once it is open.
 */
static bool lane_wanted(struct lane *l)
{
	struct stripe *st = l->st;
	bool copy = false;
	/* as the output would ask once open: a courier's tail held back is
	 * let go once the front is done (at once when the parcel carries
	 * the whole package), or no link would ever open to carry it */
	int64_t seg = feed_next(st, l->idx, &copy);

	if (seg < 0)
		return false;
	fr_assign_release(&st->as, l->idx, (uint32_t)seg, fr_now_s());
	/* nor when its window closes before it could land that segment
	 * (a line would be dialled for nothing) */
	time_t now = fr_schedule_now();
	time_t closes = fr_schedule_next_close(&l->a->schedule,
					       st->t->priority, now);
	double t = fr_now_s();
	return closes == (time_t)-1 ||
	       (double)(closes - now) >=
		   fr_assign_land_at(&st->as, l->idx, (uint32_t)seg, t) - t;
}

/* Wait until the output is worth opening, or the send is over: true; or
 * until its window closes: false. */
static bool lane_wait_wanted(struct lane *l)
{
	struct stripe *st = l->st;
	bool told = false;

	/* what opening it costs counts: a 12 KiB tail is not worth a
	 * dial, nor a handshake on a 64 kbit/s link the others beat */
	/* a link tried again past its retries may well be down still: the
	 * others do not leave it segments while it is tried */
	fr_assign_setup(&st->as, l->idx,
			fr_link_setup(st->c, l->a, NULL) +
			    (l->standby ? STANDBY_SETUP_S : 0));
	while (!atomic_load(&st->completed) && !atomic_load(&st->cancel) &&
	       !lane_wanted(l)) {
		if (!told) {
			fr_log(FR_LOG_DEBUG,
			       "'%s' to %s: address %s waits: the other links "
			       "land what is left sooner",
			       st->t->name, st->t->site, l->a->name);
			lane_state(l, "idle");
			told = true;
		}
		lane_sleep(st, 1000);
		/* its window closed meanwhile: it waits for it, closed */
		if (!fr_schedule_allows(&l->a->schedule, st->t->priority,
					fr_schedule_now()))
			return false;
	}
	/* it is brought up from now: its setup counts down, and a dial
	 * that takes longer is expected longer (the others go on) */
	fr_assign_opening(&st->as, l->idx, fr_now_s());
	return true;
}

/* The lane's connection, as its output tells it (-1: none). */
static void lane_sock(void *arg, int sock)
{
	struct lane *l = arg;

	pthread_mutex_lock(&l->st->mu);
	l->sock = sock;
	pthread_mutex_unlock(&l->st->mu);
}

/* The package is complete: a lane still connecting or shaking hands (a
 * line that came up slow or broken) is cut off, not waited for. The
 * lanes that send see `completed` themselves. */
static void cut_others(struct stripe *st, const struct lane *done)
{
	pthread_mutex_lock(&st->mu);
	for (unsigned i = 0; i < st->n; i++) {
		struct lane *l = &st->lanes[i];
		if (l != done && l->sock >= 0 && !l->in_data)
			shutdown(l->sock, SHUT_RDWR);
	}
	pthread_mutex_unlock(&st->mu);
}

/* One try: open, offer, send what the assignment gives, close. */
static int lane_try(struct lane *l, struct fr_offer_z *oz)
{
	struct stripe *st = l->st;
	uint8_t *mf = NULL;
	size_t mf_len = 0;
	int rc = fr_known_offer(st->known, &mf, &mf_len);

	if (rc < 0) {
		snprintf(l->err, sizeof(l->err),
			 "cannot encode the manifest: %s", fr_strerror(rc));
		return rc;
	}
	free(oz->body);
	oz->body = NULL;
	struct fr_output o = {.ops = l->ops, .c = st->c, .a = l->a,
			      .sock_is = lane_sock, .sock_arg = l,
			      .state_is = lane_opening,
			      .stopped = lane_stopped,
			      .senders = fr_link_senders};
	struct fr_send_ctx sc = {
		.known = st->known,
		.m = st->known->m,
		.mf = mf,
		.mf_len = mf_len,
		.root = st->t->source,
		.single = st->single,
		.level = st->t->level,
		.priority = st->t->priority,
		.offer_z = oz,
		.workers = fr_workq_count(),
		.progress = lane_progress,
		.progress_arg = l,
		.feed = &st->feed,
		.out = l->idx,
		.cancel = &st->cancel,
		.completed = &st->completed,
	};
	pthread_mutex_lock(&st->mu);
	l->taken = 0;
	l->taken_at = fr_now_s();
	l->in_data = false;
	pthread_mutex_unlock(&st->mu);
	/* starting while it connects and offers (a RAS output opens its
	 * line first: waiting for it, dialling, it says which); sending
	 * from its first progress */
	lane_state(l, "starting");
	rc = fr_send_by(&o, &sc, &l->res, &l->began, l->err, sizeof(l->err));
	free(mf);
	/* the progress counts the try's bytes from res from now on */
	pthread_mutex_lock(&l->st->mu);
	memset(&l->last, 0, sizeof(l->last));
	l->wire_before = l->res.sent_bytes;
	pthread_mutex_unlock(&l->st->mu);
	return rc;
}

/* The send is over for a lane: cancelled, or the package complete. A
 * lane that waited to try again ends done, as the others (rc so), once
 * it carried something in this send; one whose every try failed (a
 * line whose dial fails, a host that refuses) ends failed, with its
 * error, for the administrator to see although the others completed. */
static bool lane_over(struct lane *l, int *rc)
{
	struct stripe *st = l->st;

	if (atomic_load(&st->completed)) {
		struct fr_assign_stat s;
		fr_assign_stat(&st->as, l->idx, &s);
		bool never = s.segs_acked == 0 && *rc && *rc != -ECANCELED &&
			     *rc != FR_E_CLOSED;
		if (!never)
			*rc = *rc ? -ECANCELED : 0;
		return true;
	}
	return atomic_load(&st->cancel);
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct stripe *st = l->st;
	struct fr_offer_z oz = {0};
	bool plain_retried = false, whole_retried = false;
	int rc = 0, busy = 0;

	for (int attempt = 0;;) {
		if (lane_over(l, &rc))
			break;
		lane_window(l);
		if (!lane_wait_wanted(l)) /* closed meanwhile */
			continue;
		if (lane_over(l, &rc))
			break;
		l->res.attempts++;
		struct fr_assign_stat before, after;
		fr_assign_stat(&st->as, l->idx, &before);
		pthread_mutex_lock(&st->mu);
		l->acked_before = before.segs_acked;
		pthread_mutex_unlock(&st->mu);
		rc = lane_try(l, &oz);
		fr_assign_stat(&st->as, l->idx, &after);
		if (after.segs_acked > before.segs_acked) {
			/* it carried again: a drop later is a new one, with
			 * the retries a first drop has */
			if (l->standby)
				fr_log(FR_LOG_INFO,
				       "'%s' to %s: address %s carries again",
				       st->t->name, st->t->site, l->a->name);
			attempt = 0;
			set_standby(l, false);
		}
		if (rc == 0) { /* DONE: the package is complete */
			if (l->res.was_complete) /* at once, at its offer */
				held_complete(st);
			atomic_store(&st->completed, true);
			cut_others(st, l);
			break;
		}
		if (atomic_load(&st->completed)) /* cut off, or late */
			rc = -ECANCELED;
		fr_assign_down(&st->as, l->idx, fr_now_s());
		if ((oz.refused && !plain_retried) ||
		    (oz.plain_frames && !whole_retried)) {
			fr_log(FR_LOG_WARN, "%s", l->err);
			plain_retried |= oz.refused;
			whole_retried |= oz.plain_frames;
		} else if (rc == FR_E_CLOSED) {
			fr_log(FR_LOG_INFO, "'%s' to %s: %s", st->t->name,
			       st->t->site, l->err);
		} else if (rc == FR_E_AUTH) { /* not tried again */
			lane_state(l, "failed"); /* before the others look */
			fr_log(FR_LOG_ERROR, "%s%s", l->err, carry_on(l));
			break;
		} else if (fatal(rc) || rc == -ECANCELED) {
			if (rc != -ECANCELED) {
				fr_log(FR_LOG_ERROR, "%s", l->err);
				atomic_store(&st->cancel, true);
			}
			break;
		} else if (rc == -EBUSY && st->c->retries > 0 &&
			   busy < (int)FR_BUSY_RETRIES) {
			/* asked again soon, not counted against retries */
			busy++;
			fr_log(FR_LOG_INFO,
			       "'%s' to %s: %s; address %s again in %.0f s (%d "
			       "of %d)%s",
			       st->t->name, st->t->site, l->err, l->a->name,
			       FR_BUSY_RETRY_MS / 1000.0, busy,
			       (int)FR_BUSY_RETRIES, carry_on(l));
			lane_state(l, "redialling");
			lane_sleep(st, FR_BUSY_RETRY_MS);
		} else if (attempt >= st->c->retries) {
			/* its retries are used up: while another link may
			 * carry, it is tried again every retry-delay, so a
			 * link that comes back is used again; when none
			 * can, it fails, and the send with it */
			fr_log(l->standby	  ? FR_LOG_INFO
			       : others_live(l) ? FR_LOG_WARN
						: FR_LOG_ERROR,
			       "%s", l->err);
			if (st->c->retries == 0 || !others_live(l))
				break;
			if (!l->standby)
				fr_log(FR_LOG_INFO,
				       "'%s' to %s: address %s failed %d times "
				       "in a row; tried again every %.0f s while "
				       "the other links carry the package",
				       st->t->name, st->t->site, l->a->name,
				       attempt + 1,
				       st->c->retry_delay_ms / 1000.0);
			set_standby(l, true);
			lane_state(l, "redialling");
			lane_sleep(st, st->c->retry_delay_ms);
		} else {
			/* an error of the send only when no other link
			 * carries it on */
			fr_log(others_live(l) ? FR_LOG_WARN : FR_LOG_ERROR, "%s",
			       l->err);
			++attempt;
			fr_log(FR_LOG_INFO,
			       "'%s' to %s: address %s again in %.0f s (retry "
			       "%d of %d)%s",
			       st->t->name, st->t->site, l->a->name,
			       st->c->retry_delay_ms / 1000.0, attempt,
			       st->c->retries, carry_on(l));
			lane_state(l, "redialling");
			lane_sleep(st, st->c->retry_delay_ms);
		}
		fr_assign_up(&st->as, l->idx, fr_now_s());
	}
	l->rc = rc;
	/* failed: its last try did (the package may be complete by the
	 * others); done: it ended with the package */
	lane_state(l, rc == 0 || (atomic_load(&st->completed) &&
				  (rc == -ECANCELED || rc == FR_E_CLOSED))
			  ? "done"
			  : "failed");
	free(oz.body);
	return NULL;
}

/* ---- the striped send ------------------------------------------------------ */

static int stripe_init(struct stripe *st, const struct fr_address *const *addrs,
		       unsigned n)
{
	const struct fr_manifest *m = st->known->m;
	uint32_t *bytes = malloc(sizeof(uint32_t) * (m->n_segments + 1));
	int rc;

	if (!bytes)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n_segments; i++)
		bytes[i] = m->segments[i].length;
	rc = fr_assign_init(&st->as, m->n_segments, bytes, NULL);
	free(bytes);
	st->feed = (struct fr_feed){.arg = st,
				    .next = feed_next,
				    .acked = feed_acked,
				    .held = feed_held,
				    .again = feed_again,
				    .is_done = feed_is_done,
				    .all_done = feed_all_done,
				    .n_done = feed_n_done};
	for (unsigned i = 0; rc == 0 && i < n && st->n < FR_ASSIGN_MAX_OUT;
	     i++) {
		int src;
		double rate = fr_link_rate(st->c, addrs[i], &src);
		/* under a rate limit it carries what the limit allows */
		double lim = fr_link_limit(addrs[i], fr_schedule_now());
		if (lim > 0 && lim < rate)
			rate = lim;
		/* a LAN's ACK comes after the receiver's sync */
		int k = fr_assign_add(&st->as, addrs[i]->name, rate, src, 0.05);
		if (k < 0)
			return k;
		struct lane *l = &st->lanes[st->n++];
		l->limited = lim > 0;
		l->st = st;
		l->a = addrs[i];
		l->ops = fr_output_for(addrs[i]->type);
		l->idx = (unsigned)k;
		l->sock = -1;
		snprintf(l->state, sizeof(l->state), "starting");
		char rs[32];
		fr_log(FR_LOG_INFO, "'%s' to %s: output %s starts at %s/s (%s)",
		       st->t->name, st->t->site, addrs[i]->name,
		       fr_human_bytes((uint64_t)rate, rs, sizeof(rs)),
		       fr_rate_src_name(src));
	}
	return rc;
}

/* ---- the courier ------------------------------------------------------------ */

/* The parcel's hashes, the send's too (the same listing): at its end
 * the send need not read the tail the parcel brought to settle them. */
static void courier_hashed(void *arg, const struct fr_manifest *m)
{
	struct stripe *st = arg;
	struct fr_known *k = st->known;

	if (m->n_segments != k->m->n_segments ||
	    memcmp(m->lid, k->m->lid, FR_HASH_LEN))
		return;
	for (uint32_t s = 0; s < m->n_segments; s++)
		if (!fr_known_has(k, s))
			fr_known_add(k, s, m->segments[s].hash);
}

static void *courier_main(void *arg)
{
	struct stripe *st = arg;
	const struct fr_stripe_courier *cr = st->cr;
	struct fr_parcel_opts po = {.path = st->t->source,
				    .site = st->t->site,
				    .name = st->t->name,
				    .via = cr->a->name,
				    .level = -2,
				    .first = cr->first,
				    .hashed = courier_hashed,
				    .hashed_arg = st,
				    .quiet = true,
				    .whole = true};
	struct fr_parcel_made made;

	int rc = fr_parcel_create(st->c, &po, &made);
	bool media = rc == -ENOSPC || rc == -EROFS || rc == -EACCES ||
		     rc == -EPERM || rc == -ENOENT || rc == -ENOTDIR ||
		     rc == -EIO || rc == -EDQUOT;
	if (rc < 0 && media) /* before cr_over says it failed */
		snprintf(st->cr_err, sizeof(st->cr_err),
			 "the parcel could not be written to %s (%s): none is "
			 "kept",
			 cr->a->media, fr_strerror(rc));
	else if (rc < 0) /* (a refused registration: not the media's) */
		snprintf(st->cr_err, sizeof(st->cr_err),
			 "no parcel was written (%s)",
			 fr_log_last_error()[0] ? fr_log_last_error()
						: fr_strerror(rc));
	st->cr_rc = rc;
	atomic_store(&st->cr_over, true);
	pthread_mutex_lock(&st->mu); /* status: written, or failed */
	save_outputs(st);
	pthread_mutex_unlock(&st->mu);
	if (st->cr_rc >= 0 && made.kept) /* a resume waits for it */
		fr_transfer_set_parcel(st->t, made.p.id);
	fr_parcel_made_fini(&made);
	if (st->cr_rc < 0) {
		/* the network carries the tail too */
		fr_log(FR_LOG_WARN,
		       "'%s' to %s: %s; the network carries segments %u to %u "
		       "too",
		       st->t->name, st->t->site, st->cr_err, cr->first,
		       st->known->m->n_segments - 1);
		pthread_mutex_lock(&st->mu);
		if (atomic_exchange(&st->tail_held, false))
			fr_assign_release_tail(&st->as);
		pthread_mutex_unlock(&st->mu);
	}
	return NULL;
}

/* The courier's output and its tail; the parcel written at once. */
static int courier_start(struct stripe *st)
{
	const struct fr_stripe_courier *cr = st->cr;
	const struct fr_manifest *m = st->known->m;
	uint64_t tail = 0;

	for (uint32_t s = cr->first; s < m->n_segments; s++)
		tail += m->segments[s].length;
	double t = fr_courier_time(&cr->model, tail);
	int k = fr_assign_add(&st->as, cr->a->name,
			      t > 0 ? (double)tail / t : 1, FR_RATE_CONFIGURED,
			      cr->model.transit_s);
	if (k < 0)
		return k;
	st->cr_idx = (unsigned)k;
	int rc = fr_assign_reserve_tail(&st->as, st->cr_idx, cr->first);
	if (rc < 0)
		return rc;
	atomic_store(&st->tail_held, true);
	if (cr->written) { /* an earlier run's, on its way */
		atomic_store(&st->cr_over, true);
		return 0;
	}
	if (pthread_create(&st->cr_th, NULL, courier_main, st) != 0)
		return -EAGAIN;
	st->cr_running = true;
	return 0;
}

/* The package is complete by network before any of its parcel was
 * imported: the parcel need not be shipped (parcel list says so). */
static void courier_over(struct stripe *st, int rc)
{
	struct fr_assign_stat cs;

	if (rc || !st->cr || !st->t->parcel[0])
		return;
	fr_assign_stat(&st->as, st->cr_idx, &cs);
	if (cs.segs_acked || fr_parcel_not_needed(st->c, st->t->parcel) < 0)
		return;
	fr_log(FR_LOG_INFO,
	       "'%s' to %s: the network brought the whole package: parcel "
	       "%.12s is not needed (it need not be shipped)",
	       st->t->name, st->t->site, st->t->parcel);
}

/* What the lanes did, as one result; the rates learned, kept. */
static int stripe_result(struct stripe *st, struct fr_send_result *res,
			 char *err, size_t cap)
{
	int rc = 0;
	uint64_t most = 0;

	/* what the receiver held before this send: not what a lane that
	 * joined late found there, landed by the others */
	res->segs_skipped = fr_assign_held_before(&st->as, &res->skipped_bytes);
	for (unsigned i = 0; i < st->n; i++) {
		struct lane *l = &st->lanes[i];
		struct fr_assign_stat s;
		res->sent_bytes += l->res.sent_bytes;
		res->read_bytes += l->res.read_bytes;
		res->segs_sent += l->res.segs_sent;
		res->segs_resent += l->res.segs_resent;
		res->was_complete |= l->res.was_complete;
		if (l->res.attempts > res->attempts) /* the most one took */
			res->attempts = l->res.attempts;
		fr_assign_stat(&st->as, l->idx, &s);
		/* the level of the output that carried the most */
		if (s.bytes_acked > most || i == 0) {
			most = s.bytes_acked;
			res->level_last = l->res.level_last;
		}
		if (res->n_outputs < FR_OUTPUTS_MAX) {
			struct fr_output_result *o =
				&res->outputs[res->n_outputs++];
			snprintf(o->name, sizeof(o->name), "%s", l->a->name);
			o->segments = s.segs_acked;
			o->bytes = s.bytes_acked;
			o->rate = s.segs_acked ? s.rate : 0; /* none learned */
			o->finished = s.last_ack;
		}
		/* what it carried in this send, unless it stalled in it */
		double own = fr_assign_rate_own(&st->as, l->idx);
		if (own > 0 && !l->limited && !l->stalled_once &&
		    fr_link_limit(l->a, fr_schedule_now()) <= 0 &&
		    (l->res.sent_bytes >= FR_LEARN_MIN_BYTES ||
		     s.last_ack - st->t0 >= FR_LEARN_MIN_S))
			fr_link_save(st->c, l->a,
				     fr_link_on_wire(own,
						     l->res.sent_bytes,
						     l->res.sent_raw),
				     (int64_t)time(NULL));
		if (l->rc && (!rc || fatal(l->rc))) {
			rc = l->rc;
			snprintf(err, cap, "%s", l->err);
		}
	}
	if (st->cr && res->n_outputs < FR_OUTPUTS_MAX) {
		struct fr_assign_stat cs;
		struct fr_output_result *o = &res->outputs[res->n_outputs++];
		fr_assign_stat(&st->as, st->cr_idx, &cs);
		snprintf(o->name, sizeof(o->name), "%s", st->cr->a->name);
		o->courier = true;
		o->segments = cs.segs_acked;
		o->bytes = cs.bytes_acked;
		o->rate = cs.segs_acked ? cs.rate : 0;
		o->finished = cs.last_ack;
	}
	/* a package the site held complete (its offer's answer says so
	 * at once, segment by segment nothing): what no output brought */
	const struct fr_manifest *m = st->known->m;
	uint32_t brought = 0;
	for (unsigned i = 0; i < res->n_outputs; i++)
		brought += res->outputs[i].segments;
	if (atomic_load(&st->completed) && brought == 0 &&
	    res->segs_skipped < m->n_segments) {
		res->segs_skipped = m->n_segments;
		res->skipped_bytes = m->total_size;
	}
	return atomic_load(&st->completed) ? 0 : rc ? rc : FR_E_INCOMPLETE;
}

int fr_stripe_run(const struct fr_config *c, struct fr_transfer *t,
		  struct fr_known *known, bool single,
		  const struct fr_stripe_courier *courier,
		  const struct fr_address *const *addrs, unsigned n,
		  void (*progress)(void *arg, const struct fr_progress *p),
		  void *progress_arg, struct fr_send_result *res, char *err,
		  size_t cap)
{
	struct stripe *st = calloc(1, sizeof(*st));
	int rc;

	if (!st)
		return -ENOMEM;
	st->c = c;
	st->t = t;
	st->known = known;
	st->single = single;
	st->progress = progress;
	st->progress_arg = progress_arg;
	pthread_mutex_init(&st->mu, NULL);
	double t0 = st->t0 = fr_now_s();
	st->cr = courier;
	rc = stripe_init(st, addrs, n);
	if (rc == 0 && courier)
		rc = courier_start(st);
	if (rc < 0) {
		snprintf(err, cap, "cannot set the outputs up: %s",
			 fr_strerror(rc));
		goto out;
	}
	for (unsigned i = 0; i < st->n; i++)
		if (pthread_create(&st->lanes[i].th, NULL, lane_main,
				   &st->lanes[i]) != 0)
			st->lanes[i].th = 0, st->lanes[i].rc = -EAGAIN;
	for (unsigned i = 0; i < st->n; i++)
		if (st->lanes[i].th)
			pthread_join(st->lanes[i].th, NULL);
	if (st->cr_running) /* the parcel is whole on its media */
		pthread_join(st->cr_th, NULL);
	save_outputs(st);
	rc = stripe_result(st, res, err, cap);
	courier_over(st, rc);
	for (unsigned i = 0; i < res->n_outputs; i++)
		if (res->outputs[i].finished > 0)
			res->outputs[i].finished -= t0;
out:
	fr_assign_fini(&st->as);
	pthread_mutex_destroy(&st->mu);
	free(st);
	return rc;
}
