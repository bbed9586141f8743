/*
 * sim.c - a discrete-event simulator of a send over several links,
 * driving the real assignment (assign.c) with a simulated clock: what
 * `ferry plan` predicts (per output: segments, bytes, finish; the ETA)
 * and what the unit tests hold the assignment to.
 *
 * A link holds at most `depth` segments unacknowledged. It sends them
 * one at a time in the order given, at its true rate, and each is
 * acknowledged `latency` after its last byte. Before it begins a
 * segment it asks whether it is already done (an endgame copy that lost,
 * or its original once a copy won) and drops it if so; a segment on the
 * wire is finished, and its late ACK counted as wasted. An off interval
 * (a drop, a closed window) takes the link down: what it held is lost
 * (fr_assign_down gives it to the others) and its pending ACKs with it.
 * The courier, when on, takes the tail fr_assign_split chooses; its
 * parcel is written, shipped and imported in one piece, each segment
 * acknowledged as the import reaches it; if it has not finished by the
 * time it was expected, the tail is released to the network, and what
 * the network has not taken by the time the parcel does arrive is left
 * to its import again.
 *
 * A link with room that was given nothing asks again every
 * FR_ASSIGN_POLL_S, as an output thread waiting for a change does.
 * Every send is counted per segment, so a test can tell a segment sent
 * twice by the endgame or after a failure from one sent twice for no
 * reason (r->dups, which must stay 0). Nothing here reads a clock, does
 * I/O or prints.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/fr_sched.h"

enum { QUEUED, SENDING, SENT };
enum { LOST = 1, COPIED = 2 };
#define MAX_STEPS 10000000u

struct slot {
	uint32_t seg;
	bool copy;
	int state;
	double t; /* SENDING: its last byte; SENT: its ACK */
};

struct link {
	const struct fr_sim_link *L;
	unsigned depth, nh, n_ev, next_ev;
	bool up;
	double open_at; /* with a setup: when it is open (INFINITY: not
			 * opened yet) */
	bool opening;   /* its setup runs: open at open_at */
	struct slot h[FR_SIM_MAX_DEPTH];
	double ev[2 * FR_SIM_MAX_OFF]; /* when it goes down or up, in order */
	bool ev_up[2 * FR_SIM_MAX_OFF];
};

struct sim {
	struct fr_assign a;
	struct link l[FR_ASSIGN_MAX_OUT];
	unsigned n;
	const uint32_t *bytes;
	uint32_t n_segs;
	uint32_t *sends;
	uint8_t *flags;
	int co;		   /* the courier's output, or -1 */
	uint32_t imp_next; /* the next segment the import reaches */
	double imp_at, imp_rate, release_at, arrive;
	double poll_at; /* a link with room asks again */
	bool released;
	struct fr_sim_result *r;
};

/* ---- links --------------------------------------------------------------- */

static void link_events(struct link *k)
{
	const struct fr_sim_link *L = k->L;

	k->n_ev = 0;
	for (unsigned i = 0; i < L->n_off && i < FR_SIM_MAX_OFF; i++) {
		k->ev[k->n_ev] = L->off[i].from;
		k->ev_up[k->n_ev++] = false;
		if (L->off[i].to >= 0) {
			k->ev[k->n_ev] = L->off[i].to;
			k->ev_up[k->n_ev++] = true;
		}
	}
	for (unsigned i = 1; i < k->n_ev; i++) /* insertion sort, stable */
		for (unsigned j = i; j > 0 && k->ev[j] < k->ev[j - 1]; j--) {
			double t = k->ev[j];
			bool u = k->ev_up[j];
			k->ev[j] = k->ev[j - 1];
			k->ev_up[j] = k->ev_up[j - 1];
			k->ev[j - 1] = t;
			k->ev_up[j - 1] = u;
		}
}

static void slot_drop(struct link *k, unsigned i)
{
	memmove(&k->h[i], &k->h[i + 1], (k->nh - i - 1) * sizeof(k->h[0]));
	k->nh--;
}

static void send_begins(struct sim *S, unsigned o, struct slot *sl, double now)
{
	uint32_t s = sl->seg;

	if (S->sends[s] && sl->copy)
		S->r->copies++;
	else if (S->sends[s] && (S->flags[s] & LOST))
		S->r->resent++;
	else if (S->sends[s] && !(S->flags[s] & COPIED))
		S->r->dups++;
	S->sends[s]++;
	S->r->out[o].sends++;
	sl->state = SENDING;
	sl->t = now + S->bytes[s] / S->l[o].L->rate;
}

/* Begin the next segment if the link is free: false when nothing
 * changed. */
static bool kick(struct sim *S, unsigned o, double now)
{
	struct link *k = &S->l[o];

	for (unsigned i = 0; i < k->nh; i++) {
		if (k->h[i].state == SENDING)
			return false;
		if (k->h[i].state != QUEUED)
			continue;
		if (fr_assign_is_done(&S->a, k->h[i].seg)) {
			slot_drop(k, i);
			return true;
		}
		send_begins(S, o, &k->h[i], now);
		return true;
	}
	return false;
}

/* Each link with room asks for segments until nothing changes; one
 * still with room asks again FR_ASSIGN_POLL_S later. */
/* A link not open yet is opened when it would be given a segment (the
 * segment goes back: a send's link asks again once open): open from
 * setup later. false while it is not open. */
static bool open_link(struct sim *S, unsigned o, double now)
{
	struct link *k = &S->l[o];
	bool copy;

	if (k->open_at <= now) {
		k->opening = false;
		return true;
	}
	if (isinf(k->open_at)) {
		int64_t s = fr_assign_next(&S->a, o, now, &copy);
		if (s >= 0) {
			fr_assign_release(&S->a, o, (uint32_t)s, now);
			fr_assign_opening(&S->a, o, now);
			k->open_at = now + k->L->setup;
			k->opening = true;
		}
	}
	return false;
}

static void fill(struct sim *S, double now)
{
	bool changed = true;

	S->poll_at = INFINITY;
	while (changed) {
		changed = false;
		for (unsigned o = 0; o < S->n; o++) {
			struct link *k = &S->l[o];
			if (k->up && !open_link(S, o, now)) {
				if (isinf(k->open_at))
					S->poll_at = now + FR_ASSIGN_POLL_S;
				continue;
			}
			while (k->up && k->nh < k->depth) {
				bool copy;
				int64_t s =
				    fr_assign_next(&S->a, o, now, &copy);
				if (s < 0)
					break;
				k->h[k->nh++] =
				    (struct slot){(uint32_t)s, copy, QUEUED, 0};
				if (copy)
					S->flags[s] |= COPIED;
				changed = true;
			}
			while (k->up && kick(S, o, now))
				changed = true;
			if (k->up && k->nh < k->depth)
				S->poll_at = now + FR_ASSIGN_POLL_S;
		}
	}
}

static void link_down(struct sim *S, unsigned o, double now)
{
	struct link *k = &S->l[o];

	for (unsigned i = 0; i < k->nh; i++)
		if (k->h[i].state != QUEUED)
			S->flags[k->h[i].seg] |= LOST;
	k->nh = 0;
	k->up = false;
	fr_assign_down(&S->a, o, now);
	if (k->L->setup > 0) { /* opened again when it is back */
		fr_assign_setup(&S->a, o, k->L->setup);
		k->open_at = INFINITY;
		k->opening = false;
	}
}

/* ---- events -------------------------------------------------------------- */

static double link_next(const struct link *k)
{
	double t = k->next_ev < k->n_ev ? k->ev[k->next_ev] : INFINITY;

	if (k->up && k->opening)
		t = fmin(t, k->open_at);

	for (unsigned i = 0; i < k->nh; i++)
		if (k->h[i].state != QUEUED)
			t = fmin(t, k->h[i].t);
	return t;
}

static double next_time(const struct sim *S)
{
	double t = fmin(S->release_at, S->released ? S->arrive : INFINITY);

	t = fmin(t, S->poll_at);
	if (S->co >= 0 && S->imp_next < S->n_segs)
		t = fmin(t, S->imp_at);

	for (unsigned o = 0; o < S->n; o++)
		t = fmin(t, link_next(&S->l[o]));
	return t;
}

static void link_step(struct sim *S, unsigned o, double now)
{
	struct link *k = &S->l[o];

	for (unsigned i = 0; i < k->nh;) {
		struct slot *sl = &k->h[i];
		if (sl->state == SENT && sl->t <= now) {
			if (!fr_assign_acked(&S->a, o, sl->seg, now))
				S->r->out[o].wasted++;
			slot_drop(k, i);
			continue;
		}
		if (sl->state == SENDING && sl->t <= now) {
			sl->state = SENT;
			sl->t = now + k->L->latency;
		}
		i++;
	}
	while (k->next_ev < k->n_ev && k->ev[k->next_ev] <= now) {
		bool up = k->ev_up[k->next_ev++];
		if (up && !k->up) {
			k->up = true;
			fr_assign_up(&S->a, o, now);
		} else if (!up && k->up) {
			link_down(S, o, now);
		}
	}
}

static void courier_step(struct sim *S, double now)
{
	while (S->co >= 0 && S->imp_next < S->n_segs && S->imp_at <= now) {
		if (!fr_assign_acked(&S->a, (unsigned)S->co, S->imp_next, now))
			S->r->out[S->co].wasted++;
		if (++S->imp_next < S->n_segs)
			S->imp_at += S->bytes[S->imp_next] / S->imp_rate;
	}
	if (S->release_at <= now) {
		S->release_at = INFINITY;
		S->released = S->imp_next < S->n_segs;
		if (S->released) /* the parcel is late */
			fr_assign_release_tail(&S->a);
	}
	if (S->released && S->arrive <= now) {
		/* it came after all: the network leaves the rest to it */
		S->released = false;
		fr_assign_reserve_tail(&S->a, (unsigned)S->co, S->imp_next);
	}
}

/* ---- a run --------------------------------------------------------------- */

/* When link L is first up from the start on (-1: never). */
static double first_up(const struct fr_sim_link *L)
{
	double t = 0;

	for (bool moved = true; moved;) {
		moved = false;
		for (unsigned i = 0; i < L->n_off; i++)
			if (L->off[i].from <= t &&
			    (L->off[i].to < 0 || t < L->off[i].to)) {
				if (L->off[i].to < 0)
					return -1;
				t = L->off[i].to;
				moved = true;
			}
	}
	return t;
}

static int courier_setup(struct sim *S, const struct fr_sim_courier *cr)
{
	double rates[FR_ASSIGN_MAX_OUT], from[FR_ASSIGN_MAX_OUT], eta;
	uint64_t tail = 0;

	for (unsigned o = 0; o < S->n; o++) {
		rates[o] = S->l[o].L->start_rate > 0 ? S->l[o].L->start_rate
						     : S->l[o].L->rate;
		from[o] = first_up(S->l[o].L);
	}
	/* (a link closed at the start carries from when it opens) */
	int64_t k = fr_assign_split(S->n_segs, S->bytes, rates, from, S->n,
				    &cr->m, &eta);
	S->r->split = k;
	if (k < 0)
		return 0;
	for (uint32_t s = (uint32_t)k; s < S->n_segs; s++)
		tail += S->bytes[s];
	double t = fr_courier_time(&cr->m, tail);
	int co = fr_assign_add(&S->a, "courier", (double)tail / t,
			       FR_RATE_PROFILE, 0);
	if (co < 0 || fr_assign_reserve_tail(&S->a, (unsigned)co, (uint32_t)k))
		return co < 0 ? co : -EINVAL;
	S->co = co;
	S->r->courier_eta = t;
	S->release_at = t * (1 + 1e-9) + 1e-6; /* after an import on time */
	/* the import, once written and shipped */
	S->imp_rate = cr->m.import_rate > 0 ? cr->m.import_rate : INFINITY;
	S->imp_next = (uint32_t)k;
	S->arrive = t - tail / S->imp_rate + cr->late;
	S->imp_at = S->arrive + S->bytes[k] / S->imp_rate;
	return 0;
}

static int sim_setup(struct sim *S, const struct fr_sim_link *links, unsigned n,
		     uint32_t n_segs, const uint32_t *seg_bytes)
{
	int rc = fr_assign_init(&S->a, n_segs, seg_bytes, NULL);

	if (rc < 0)
		return rc;
	S->n = n;
	S->bytes = seg_bytes;
	S->n_segs = n_segs;
	S->co = -1;
	S->release_at = INFINITY;
	S->sends = calloc(n_segs, sizeof(*S->sends));
	S->flags = calloc(n_segs, 1);
	if (!S->sends || !S->flags)
		return -ENOMEM;
	for (unsigned o = 0; o < n; o++) {
		const struct fr_sim_link *L = &links[o];
		struct link *k = &S->l[o];
		double start = L->start_rate > 0 ? L->start_rate : L->rate;
		if (!(L->rate > 0) || L->depth > FR_SIM_MAX_DEPTH)
			return -EINVAL;
		if ((rc = fr_assign_add(&S->a, L->name, start, L->rate_src,
					L->latency)) < 0)
			return rc;
		k->L = L;
		k->depth = L->depth ? L->depth : 2;
		k->up = true;
		k->open_at = L->setup > 0 ? INFINITY : 0;
		if (L->setup > 0)
			fr_assign_setup(&S->a, o, L->setup);
		link_events(k);
	}
	return 0;
}

static void sim_result(struct sim *S)
{
	struct fr_sim_result *r = S->r;

	r->n = S->a.n_out;
	r->eta = 0;
	for (unsigned o = 0; o < r->n; o++) {
		fr_assign_stat(&S->a, o, &r->out[o].st);
		r->out[o].finish = fmax(0, r->out[o].st.last_ack);
		r->eta = fmax(r->eta, r->out[o].finish);
	}
}

static int sim_loop(struct sim *S)
{
	double now = 0;

	for (unsigned o = 0; o < S->n; o++)
		link_step(S, o, now);
	fill(S, now);
	for (unsigned i = 0; !fr_assign_all_done(&S->a); i++) {
		now = next_time(S);
		if (isinf(now) || i == MAX_STEPS)
			return -EDEADLK;
		courier_step(S, now);
		for (unsigned o = 0; o < S->n; o++)
			link_step(S, o, now);
		fill(S, now);
	}
	return 0;
}

int fr_sim_run(const struct fr_sim_link *links, unsigned n,
	       const struct fr_sim_courier *cr, uint32_t n_segs,
	       const uint32_t *seg_bytes, struct fr_sim_result *r)
{
	struct sim *S = calloc(1, sizeof(*S));
	int rc;

	memset(r, 0, sizeof(*r));
	r->split = -1;
	if (!S)
		return -ENOMEM;
	S->r = r;
	if (!n || n + (cr && cr->on ? 1u : 0u) > FR_ASSIGN_MAX_OUT)
		rc = -EINVAL;
	else if ((rc = sim_setup(S, links, n, n_segs, seg_bytes)) == 0 &&
		 (!cr || !cr->on || (rc = courier_setup(S, cr)) == 0))
		rc = sim_loop(S);
	if (S->a.bytes)
		sim_result(S);
	fr_assign_fini(&S->a);
	free(S->sends);
	free(S->flags);
	free(S);
	return rc;
}
