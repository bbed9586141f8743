/*
 * assign.c - which output carries which segment of one transfer. Pure
 * bookkeeping under one mutex: no I/O, no clock of its own (every call
 * is told `now`), so several output threads share one struct fr_assign
 * and a test drives it with a simulated clock (sim.c).
 *
 * The rule. Segments are handed out from the front. An output with room
 * gets the lowest free segment when it would land it no later than the
 * other outputs could finish everything that remains: their backlogs
 * still to be sent plus every free segment, over the sum of their rates
 * (and never sooner than the best of them lands that one segment alone,
 * a segment being indivisible). So a fast output takes whatever it asks
 * for, and a 128 kbit/s line takes a segment only while the package is
 * long enough that it finishes it before the fast links finish the rest.
 * Its landing time is when its own backlog is on the wire, plus the
 * segment at its rate, plus its latency.
 *
 * The model of an output. tx_end is when its backlog will be on the
 * wire: a segment given at now moves it to max(tx_end, now) + bytes /
 * rate; an ACK re-bases it to now - latency + backlog / rate (the next
 * segment left when the acked one's last byte did). An output whose
 * oldest segment is overdue (no ACK by its expected time) is taken to
 * be slower: a segment late by x is expected x later still, and the
 * output's other times are stretched about its last ACK in proportion,
 * which is what lets the endgame rescue a link that stalls.
 *
 * The endgame. When no segment is free, an output with room may take a
 * copy of the carried segment with the latest expected landing on
 * another output, if it would land it sooner by a margin (a tenth of the
 * wait, plus 50 ms) and no other output would land it sooner still (its
 * backlog counted); at most two carriers per segment. The first ACK
 * wins: the other carrier lets go of it (it asks fr_assign_is_done
 * before it sends a copy).
 *
 * The estimator. Each output starts from its given rate and follows an
 * exponentially weighted average of samples of acknowledged bytes per
 * second of busy time. Busy time is counted only while the output
 * carries something, from latency after it became busy (the first byte
 * cannot be acked sooner) to each ACK, so idle time never lowers the
 * estimate. A sample is taken at the first ACK after >= 1 s of busy
 * time (a slow line: every ACK) that is for the oldest segment the output
 * carries (ACKs of one batch come in any order), weighted by
 * 1 - exp(-busy / 4 s): time
 * rather than sample count decides how fast the estimate moves, so a
 * wrong start (10x either way) is forgotten after ~20 s of sending, fast
 * link or slow. What a send keeps for the next one (stripe.c) is the
 * median of its own last samples (fr_assign_rate_own): not the
 * estimate, which a short send leaves half way from where it started,
 * and which an outage of a few seconds pulls down for the next 20.
 * Busy time that ends without an ACK (a copy cancelled, a segment
 * released, a drop) is dropped from the sample, and so is an endgame
 * copy's (the receiver acknowledges the copy it threw away once
 * the original is durable, maybe before the copy was all sent); after a segment
 * the receiver asked for again, or one whose other copy landed first
 * while this output still had it on the wire, the next sample is not
 * taken at all (the link was still carrying what was thrown away).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/fr_sched.h"

#define SAMPLE_S 1.0
#define TAU_S 4.0
#define COPY_SHARE 0.1
#define COPY_MIN_S 0.05

const char *fr_rate_src_name(int src)
{
	static const char *const names[] = {"default", "configured", "profile",
					    "measured", "learned"};
	return src >= 0 && src < (int)FR_ARRAY_SIZE(names) ? names[src] : "?";
}

/* ---- segments and carriers ----------------------------------------------- */

static bool seg_free(const struct fr_assign *a, uint32_t s)
{
	return !a->done[s] && a->car[s][0] < 0 && a->car[s][1] < 0 &&
	       s < a->tail_from;
}

static void free_bytes_count(struct fr_assign *a)
{
	a->free_bytes = 0;
	for (uint32_t s = 0; s < a->n_segs; s++)
		if (seg_free(a, s))
			a->free_bytes += a->bytes[s];
}

/* The lowest free segment, or -1. */
static int64_t first_free(struct fr_assign *a)
{
	while (a->first_free < a->tail_from && !seg_free(a, a->first_free))
		a->first_free++;
	return a->first_free < a->tail_from ? (int64_t)a->first_free : -1;
}

static int q_push(struct fr_assign_out *p, uint32_t s)
{
	if (p->nq == p->capq) {
		uint32_t cap = p->capq ? 2 * p->capq : 8;
		uint32_t *q = realloc(p->q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		p->q = q;
		p->capq = cap;
	}
	p->q[p->nq++] = s;
	return 0;
}

/* Where s was in p's queue, or -1. */
static int64_t q_remove(struct fr_assign_out *p, uint32_t s)
{
	for (uint32_t i = 0; i < p->nq; i++)
		if (p->q[i] == s) {
			memmove(&p->q[i], &p->q[i + 1],
				(p->nq - i - 1) * sizeof(*p->q));
			p->nq--;
			return i;
		}
	return -1;
}

/* o carried s and does no more, without an ACK of its own. If s was the
 * oldest, the one on the wire, the busy time since the last event went
 * to it and is not counted (see the estimator). */
static void let_go(struct fr_assign *a, unsigned o, uint32_t s, double now)
{
	struct fr_assign_out *p = &a->out[o];
	int64_t at = q_remove(p, s);

	if (at < 0)
		return;
	if (a->copier[s] == (int8_t)o)
		a->copier[s] = -1;
	for (int k = 0; k < 2; k++)
		if (a->car[s][k] == (int8_t)o)
			a->car[s][k] = -1;
	p->backlog -= a->bytes[s];
	p->tx_end -= a->bytes[s] / p->rate;
	if (!p->nq)
		p->busy_from = -1;
	else if (at == 0)
		p->busy_from = fmax(now, p->busy_from);
	if (seg_free(a, s)) {
		a->free_bytes += a->bytes[s];
		if (s < a->first_free)
			a->first_free = s;
	}
}

/* Another copy of s landed first (or the receiver holds it): o lets go.
 * If s was the one on o's wire, its bytes still go out (TCP cannot take
 * them back), and the time they take would be counted against o's next
 * ACK: that sample is not taken. */
static void let_go_lost(struct fr_assign *a, unsigned o, uint32_t s,
			double now)
{
	struct fr_assign_out *p = &a->out[o];
	bool on_wire = p->nq && p->q[0] == s;

	let_go(a, o, s, now);
	if (on_wire)
		p->tainted = true;
}

/* ---- the model of an output ---------------------------------------------- */

/* Its rate and tx_end at now, stretched when its oldest segment is
 * overdue. */
static void view(const struct fr_assign *a, const struct fr_assign_out *p,
		 double now, double *rate, double *tx_end, double *k)
{
	*rate = p->rate;
	*tx_end = p->tx_end;
	*k = 1;
	if (!p->nq)
		return;
	double head =
	    p->tx_end - (p->backlog - a->bytes[p->q[0]]) / p->rate + p->latency;
	if (head < now && head > p->mark + 1e-9) {
		/* late by x: expect it x later still */
		*k = (2 * now - head - p->mark) / (head - p->mark);
		*rate = p->rate / *k;
		*tx_end = p->mark + (p->tx_end - p->mark) * *k;
	}
}

/* What bringing it up still costs, s: its setup, or while it is being
 * brought up what is left of it, and once late by x, x more. */
static double setup_left(const struct fr_assign_out *p, double now)
{
	if (p->opening_from < 0)
		return p->setup;
	double e = now - p->opening_from;
	return fmax(p->setup - e, e);
}

static double land_at(const struct fr_assign *a, const struct fr_assign_out *p,
		      uint32_t bytes, double now)
{
	double rate, tx_end, k;

	view(a, p, now, &rate, &tx_end, &k);
	return fmax(tx_end, now + setup_left(p, now)) + bytes / rate +
	       p->latency;
}

/* When the outputs other than o could finish all that remains (see the
 * rule); INFINITY when no other is up. */
static double others_finish(const struct fr_assign *a, unsigned o,
			    uint32_t bytes, double now)
{
	double sum = 0, work = (double)a->free_bytes, best = INFINITY;
	double lat = INFINITY;

	for (unsigned i = 0; i < a->n_out; i++) {
		const struct fr_assign_out *p = &a->out[i];
		if (i == o || !p->up || p->courier)
			continue;
		double rate, tx_end, k;
		view(a, p, now, &rate, &tx_end, &k);
		sum += rate;
		/* busy until its backlog is out, or until it is up */
		work += fmax(fmax(0, tx_end - now), setup_left(p, now)) * rate;
		lat = fmin(lat, p->latency);
		best = fmin(best, land_at(a, p, bytes, now));
	}
	if (sum <= 0)
		return INFINITY;
	return fmax(now + work / sum + lat, best);
}

/* ---- the estimator ------------------------------------------------------- */

/* An ACK of bytes at now; oldest: of the oldest segment o carries (the
 * receiver's batch may acknowledge a later, shorter one first: a sample
 * at that ACK would count the time of the longer one before it, 783
 * bytes over 1.8 s, and pull a slow line's rate a third down). */
static void estimate(struct fr_assign_out *p, uint32_t bytes, double now,
		     bool oldest)
{
	if (p->busy_from < 0)
		return;
	p->busy_acc += fmax(0, now - p->busy_from);
	p->busy_from = now;
	p->acked_acc += bytes;
	if (p->tainted) { /* its time went to bytes thrown away too */
		p->tainted = false;
		p->busy_acc = 0;
		p->acked_acc = 0;
		return;
	}
	if (!oldest || p->busy_acc < SAMPLE_S || p->acked_acc == 0)
		return;
	double sample = (double)p->acked_acc / p->busy_acc;
	p->samples[p->n_samples++ % FR_ASSIGN_SAMPLES] = sample;
	double w = 1 - exp(-p->busy_acc / TAU_S);
	p->rate += w * (sample - p->rate);
	p->st.rate_src = FR_RATE_LEARNED;
	p->busy_acc = 0;
	p->acked_acc = 0;
}

/* ---- life cycle ---------------------------------------------------------- */

int fr_assign_init(struct fr_assign *a, uint32_t n_segs,
		   const uint32_t *seg_bytes, const uint8_t *have)
{
	memset(a, 0, sizeof(*a));
	if (!n_segs || !seg_bytes)
		return -EINVAL;
	a->bytes = malloc(n_segs * sizeof(*a->bytes));
	a->car = malloc(n_segs * sizeof(*a->car));
	a->copier = malloc(n_segs);
	a->done = calloc(n_segs, 1);
	a->lost_by = malloc(n_segs);
	if (!a->bytes || !a->car || !a->copier || !a->done || !a->lost_by) {
		free(a->bytes);
		free(a->car);
		free(a->copier);
		free(a->done);
		free(a->lost_by);
		memset(a, 0, sizeof(*a));
		return -ENOMEM;
	}
	memcpy(a->bytes, seg_bytes, n_segs * sizeof(*a->bytes));
	memset(a->car, -1, n_segs * sizeof(*a->car));
	memset(a->copier, -1, n_segs);
	memset(a->lost_by, -1, n_segs);
	a->n_segs = a->tail_from = n_segs;
	for (uint32_t s = 0; s < n_segs; s++)
		if (have && have[s]) {
			a->done[s] = 1;
			a->n_done++;
			a->done_bytes += a->bytes[s];
		}
	free_bytes_count(a);
	pthread_mutex_init(&a->mu, NULL);
	return 0;
}

void fr_assign_fini(struct fr_assign *a)
{
	if (!a->bytes)
		return;
	for (unsigned i = 0; i < a->n_out; i++)
		free(a->out[i].q);
	free(a->bytes);
	free(a->car);
	free(a->copier);
	free(a->done);
	free(a->lost_by);
	pthread_mutex_destroy(&a->mu);
	memset(a, 0, sizeof(*a));
}

int fr_assign_add(struct fr_assign *a, const char *name, double rate,
		  int rate_src, double latency_s)
{
	if (!(rate > 0) || !(latency_s >= 0))
		return -EINVAL;
	pthread_mutex_lock(&a->mu);
	int o = a->n_out < FR_ASSIGN_MAX_OUT ? (int)a->n_out++ : -ENOSPC;
	if (o >= 0) {
		struct fr_assign_out *p = &a->out[o];
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
		p->rate = rate;
		p->latency = latency_s;
		p->up = true;
		p->busy_from = -1;
		p->opening_from = -1;
		p->st.rate_src = rate_src;
		p->st.last_ack = -1;
	}
	pthread_mutex_unlock(&a->mu);
	return o;
}

/* ---- handing out --------------------------------------------------------- */

static int64_t give(struct fr_assign *a, unsigned o, uint32_t s, double now,
		    bool copy)
{
	struct fr_assign_out *p = &a->out[o];
	bool was_free = seg_free(a, s);

	if (q_push(p, s) < 0)
		return FR_ASSIGN_NONE;
	a->car[s][a->car[s][0] < 0 ? 0 : 1] = (int8_t)o;
	if (was_free)
		a->free_bytes -= a->bytes[s];
	if (p->nq == 1) {
		p->mark = now;
		p->busy_from = now + p->latency;
	}
	p->tx_end = fmax(p->tx_end, now) + a->bytes[s] / p->rate;
	p->backlog += a->bytes[s];
	p->st.segs_given++;
	p->st.bytes_given += a->bytes[s];
	p->st.copies += copy;
	if (copy)
		a->copier[s] = (int8_t)o;
	return s;
}

/* Would o land a copy of s, carried by c, no later than any other
 * output could? (A copy by a slower one would keep the best from it:
 * two carriers at most.) */
static bool best_copier(const struct fr_assign *a, unsigned o, unsigned c,
			uint32_t s, double mine, double now)
{
	for (unsigned i = 0; i < a->n_out; i++) {
		const struct fr_assign_out *p = &a->out[i];
		if (i != o && i != c && p->up && !p->courier &&
		    land_at(a, p, a->bytes[s], now) < mine)
			return false;
	}
	return true;
}

/* The carried segment another output would land last, if o would land
 * it sooner by the margin and soonest of all: -1 when none. */
static int64_t endgame(struct fr_assign *a, unsigned o, double now)
{
	int64_t pick = -1;
	double latest = -INFINITY;

	for (unsigned i = 0; i < a->n_out; i++) {
		const struct fr_assign_out *p = &a->out[i];
		if (i == o || !p->up || p->courier)
			continue;
		double rate, tx_end, k, after = (double)p->backlog;
		view(a, p, now, &rate, &tx_end, &k);
		for (uint32_t j = 0; j < p->nq; j++) {
			uint32_t s = p->q[j];
			after -= a->bytes[s];
			double due = tx_end - after / rate + p->latency * k;
			if (a->done[s] ||
			    (a->car[s][0] >= 0 && a->car[s][1] >= 0) ||
			    due <= latest)
				continue;
			double margin = COPY_SHARE * (due - now) + COPY_MIN_S;
			double mine = land_at(a, &a->out[o], a->bytes[s], now);
			if (mine + margin < due &&
			    best_copier(a, o, i, s, mine, now)) {
				latest = due;
				pick = s;
			}
		}
	}
	return pick;
}

int64_t fr_assign_next(struct fr_assign *a, unsigned o, double now, bool *copy)
{
	int64_t s = FR_ASSIGN_NONE;

	*copy = false;
	pthread_mutex_lock(&a->mu);
	if (a->n_done == a->n_segs) {
		s = FR_ASSIGN_DONE;
	} else if (o < a->n_out && a->out[o].up && !a->out[o].courier) {
		struct fr_assign_out *p = &a->out[o];
		if (p->opening_from >= 0) { /* it asks: it is open */
			p->opening_from = -1;
			p->setup = 0;
		}
		int64_t f = first_free(a);
		if (f >= 0) {
			uint32_t b = a->bytes[f];
			if (land_at(a, &a->out[o], b, now) <=
			    others_finish(a, o, b, now))
				s = give(a, o, (uint32_t)f, now, false);
		} else if ((f = endgame(a, o, now)) >= 0) {
			s = give(a, o, (uint32_t)f, now, true);
			*copy = s >= 0;
		}
	}
	pthread_mutex_unlock(&a->mu);
	return s;
}

/* ---- what comes back ----------------------------------------------------- */

static void ack_carrier(struct fr_assign *a, unsigned o, uint32_t s,
			uint32_t sent, double now)
{
	struct fr_assign_out *p = &a->out[o];
	int64_t at = q_remove(p, s);

	if (at < 0)
		return;
	for (int k = 0; k < 2; k++)
		if (a->car[s][k] == (int8_t)o)
			a->car[s][k] = -1;
	p->backlog -= a->bytes[s];
	if (a->copier[s] == (int8_t)o) {
		/* an endgame copy: its ACK may be for the original's bytes
		 * (the receiver keeps one copy and acknowledges both), so it
		 * makes no sample; its time is not counted either */
		a->copier[s] = -1;
		if (p->busy_from >= 0)
			p->busy_from = now;
	} else {
		if (!sent) /* its time went to a copy thrown away */
			p->tainted = true;
		estimate(p, sent < a->bytes[s] ? sent : a->bytes[s], now,
			 at == 0);
	}
	p->tx_end = now - p->latency + p->backlog / p->rate;
	if (p->nq)
		p->mark = now - p->latency;
	else
		p->busy_from = -1;
}

bool fr_assign_acked(struct fr_assign *a, unsigned o, uint32_t seg, double now)
{
	return fr_assign_acked_part(a, o, seg, UINT32_MAX, now);
}

bool fr_assign_acked_part(struct fr_assign *a, unsigned o, uint32_t seg,
			  uint32_t sent, double now)
{
	bool first = false;

	pthread_mutex_lock(&a->mu);
	if (o < a->n_out && seg < a->n_segs) {
		bool was_free = seg_free(a, seg);
		ack_carrier(a, o, seg, sent, now);
		if (!a->done[seg]) {
			if (was_free)
				a->free_bytes -= a->bytes[seg];
			a->done[seg] = 1;
			a->n_done++;
			a->done_bytes += a->bytes[seg];
			for (int k = 0; k < 2; k++)
				if (a->car[seg][k] >= 0)
					let_go_lost(a, (unsigned)a->car[seg][k],
						    seg, now);
			struct fr_assign_stat *st = &a->out[o].st;
			st->segs_acked++;
			st->bytes_acked += a->bytes[seg];
			st->last_ack = now;
			first = true;
		}
	}
	pthread_mutex_unlock(&a->mu);
	return first;
}

void fr_assign_held(struct fr_assign *a, uint32_t seg, double now)
{
	pthread_mutex_lock(&a->mu);
	if (seg < a->n_segs && !a->done[seg]) {
		if (seg_free(a, seg))
			a->free_bytes -= a->bytes[seg];
		a->done[seg] = 1;
		a->n_done++;
		a->done_bytes += a->bytes[seg];
		for (int k = 0; k < 2; k++)
			if (a->car[seg][k] >= 0)
				let_go_lost(a, (unsigned)a->car[seg][k], seg,
					    now);
		if (a->lost_by[seg] >= 0) { /* it came whole before the drop */
			struct fr_assign_stat *st = &a->out[a->lost_by[seg]].st;
			st->segs_acked++;
			st->bytes_acked += a->bytes[seg];
		} else {
			a->n_held++;
			a->held_bytes += a->bytes[seg];
		}
	}
	pthread_mutex_unlock(&a->mu);
}

bool fr_assign_carries(struct fr_assign *a, unsigned o, uint32_t seg)
{
	pthread_mutex_lock(&a->mu);
	bool c = seg < a->n_segs &&
		 (a->car[seg][0] == (int8_t)o || a->car[seg][1] == (int8_t)o);
	pthread_mutex_unlock(&a->mu);
	return c;
}

bool fr_assign_is_done(struct fr_assign *a, uint32_t seg)
{
	pthread_mutex_lock(&a->mu);
	bool d = seg < a->n_segs && a->done[seg];
	pthread_mutex_unlock(&a->mu);
	return d;
}

uint32_t fr_assign_done(struct fr_assign *a, uint64_t *bytes)
{
	pthread_mutex_lock(&a->mu);
	uint32_t n = a->n_done;
	*bytes = a->done_bytes;
	pthread_mutex_unlock(&a->mu);
	return n;
}

uint32_t fr_assign_held_before(struct fr_assign *a, uint64_t *bytes)
{
	pthread_mutex_lock(&a->mu);
	uint32_t n = a->n_held;
	*bytes = a->held_bytes;
	pthread_mutex_unlock(&a->mu);
	return n;
}

bool fr_assign_all_done(struct fr_assign *a)
{
	pthread_mutex_lock(&a->mu);
	bool d = a->n_done == a->n_segs;
	pthread_mutex_unlock(&a->mu);
	return d;
}

void fr_assign_release(struct fr_assign *a, unsigned o, uint32_t seg,
		       double now)
{
	pthread_mutex_lock(&a->mu);
	if (o < a->n_out && seg < a->n_segs) {
		uint32_t before = a->out[o].nq;
		let_go(a, o, seg, now);
		a->out[o].st.returned += before - a->out[o].nq;
	}
	pthread_mutex_unlock(&a->mu);
}

void fr_assign_again(struct fr_assign *a, unsigned o, uint32_t seg, double now)
{
	fr_assign_release(a, o, seg, now);
	pthread_mutex_lock(&a->mu);
	if (o < a->n_out)
		a->out[o].tainted = true;
	pthread_mutex_unlock(&a->mu);
}

void fr_assign_down(struct fr_assign *a, unsigned o, double now)
{
	pthread_mutex_lock(&a->mu);
	if (o < a->n_out) {
		struct fr_assign_out *p = &a->out[o];
		p->st.returned += p->nq;
		while (p->nq) {
			a->lost_by[p->q[p->nq - 1]] = (int8_t)o;
			let_go(a, o, p->q[p->nq - 1], now);
		}
		p->up = false;
		p->backlog = 0;
		p->busy_from = -1;
	}
	pthread_mutex_unlock(&a->mu);
}

double fr_assign_land_at(struct fr_assign *a, unsigned o, uint32_t seg,
			 double now)
{
	double t = INFINITY;

	pthread_mutex_lock(&a->mu);
	if (o < a->n_out && seg < a->n_segs)
		t = land_at(a, &a->out[o], a->bytes[seg], now);
	pthread_mutex_unlock(&a->mu);
	return t;
}

void fr_assign_setup(struct fr_assign *a, unsigned o, double s)
{
	pthread_mutex_lock(&a->mu);
	if (o < a->n_out) {
		a->out[o].setup = s;
		a->out[o].opening_from = -1;
	}
	pthread_mutex_unlock(&a->mu);
}

void fr_assign_opening(struct fr_assign *a, unsigned o, double now)
{
	pthread_mutex_lock(&a->mu);
	if (o < a->n_out)
		a->out[o].opening_from = now;
	pthread_mutex_unlock(&a->mu);
}

void fr_assign_up(struct fr_assign *a, unsigned o, double now)
{
	pthread_mutex_lock(&a->mu);
	if (o < a->n_out) {
		a->out[o].up = true;
		a->out[o].tx_end = now;
	}
	pthread_mutex_unlock(&a->mu);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

double fr_assign_rate_own(struct fr_assign *a, unsigned o)
{
	double v[FR_ASSIGN_SAMPLES];
	unsigned n = 0;

	pthread_mutex_lock(&a->mu);
	if (o < a->n_out) {
		const struct fr_assign_out *p = &a->out[o];
		n = p->n_samples < FR_ASSIGN_SAMPLES ? p->n_samples
						     : FR_ASSIGN_SAMPLES;
		memcpy(v, p->samples, n * sizeof(double));
	}
	pthread_mutex_unlock(&a->mu);
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void fr_assign_stat(struct fr_assign *a, unsigned o, struct fr_assign_stat *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&a->mu);
	if (o < a->n_out) {
		const struct fr_assign_out *p = &a->out[o];
		*st = p->st;
		snprintf(st->name, sizeof(st->name), "%s", p->name);
		st->rate = p->rate;
		st->up = p->up;
		st->courier = p->courier;
		st->held = p->nq;
		st->backlog = p->backlog;
	}
	pthread_mutex_unlock(&a->mu);
}

/* ---- the courier's tail -------------------------------------------------- */

int fr_assign_reserve_tail(struct fr_assign *a, unsigned courier, uint32_t from)
{
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	if (courier >= a->n_out || from > a->n_segs) {
		rc = -EINVAL;
	} else {
		a->out[courier].courier = true;
		a->tail_from = from;
		free_bytes_count(a);
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

uint64_t fr_assign_left_from(struct fr_assign *a, uint32_t from)
{
	uint64_t left = 0;

	pthread_mutex_lock(&a->mu);
	for (uint32_t s = from; s < a->n_segs; s++)
		if (!a->done[s])
			left += a->bytes[s];
	pthread_mutex_unlock(&a->mu);
	return left;
}

void fr_assign_release_tail(struct fr_assign *a)
{
	pthread_mutex_lock(&a->mu);
	a->tail_from = a->n_segs;
	free_bytes_count(a);
	pthread_mutex_unlock(&a->mu);
}

double fr_courier_time(const struct fr_courier_model *c, uint64_t bytes)
{
	double t = c->transit_s;

	if (c->write_rate > 0)
		t += (double)bytes / c->write_rate;
	if (c->import_rate > 0)
		t += (double)bytes / c->import_rate;
	return t;
}

/* The network's links (rate, and from when on it carries: s from now),
 * in the order they start; those that never do are left out. */
struct net_link {
	double rate, from;
};
static unsigned net_links(const double *rates, const double *from,
			  unsigned n, struct net_link *out)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		struct net_link l = {rates[i], from ? from[i] : 0};
		if (!(l.rate > 0) || l.from < 0)
			continue;
		unsigned j = k++;
		for (; j > 0 && out[j - 1].from > l.from; j--)
			out[j] = out[j - 1];
		out[j] = l;
	}
	return k;
}

/* When the network would have carried bytes: each link at its rate from
 * its start on (INFINITY without a link). */
static double net_time(const struct net_link *l, unsigned n, double bytes)
{
	double t = 0, sum = 0, done = 0;

	if (bytes <= 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		if (sum > 0 && done + sum * (l[i].from - t) >= bytes)
			return t + (bytes - done) / sum;
		done += sum * (l[i].from - t);
		t = l[i].from;
		sum += l[i].rate;
	}
	return sum > 0 ? t + (bytes - done) / sum : INFINITY;
}

int64_t fr_assign_split(uint32_t n_segs, const uint32_t *seg_bytes,
			const double *net_rates, const double *net_from,
			unsigned n_net, const struct fr_courier_model *c,
			double *eta)
{
	struct net_link nl[FR_ASSIGN_MAX_OUT];
	double total = 0, front = 0;
	unsigned n = net_links(net_rates, net_from,
			       n_net < FR_ASSIGN_MAX_OUT ? n_net
							 : FR_ASSIGN_MAX_OUT,
			       nl);

	for (uint32_t s = 0; s < n_segs; s++)
		total += seg_bytes[s];
	/* no split: the network alone (never, without a network) */
	double best = net_time(nl, n, total);
	int64_t split = FR_ASSIGN_NONE;
	for (uint32_t k = 0; k < n_segs; k++) {
		double t = fmax(net_time(nl, n, front),
				fr_courier_time(c, (uint64_t)(total - front)));
		/* a tail its media cannot take is no choice */
		if (t < best && !(c->room > 0 && total - front > c->room)) {
			best = t;
			split = k;
		}
		front += seg_bytes[k];
	}
	if (eta)
		*eta = best;
	return split;
}
