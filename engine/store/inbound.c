/*
 * inbound.c - one open package shared by all its arrivals.
 *
 * A sender striping a package over several links opens one session per
 * link, all offering the same package at once. They all write into one
 * open package: one lock, one journal, one syncer. Each session is an
 * arrival (a slot here, with the callbacks that reach its socket and
 * its ring); a segment is claimed by the arrival that receives it first
 * and written once. A copy that comes on another link while it is held
 * or being written is a duplicate: its arrival drops it and is told when
 * the segment is durable, so that its ACK still goes (the sender's
 * endgame sends such copies on purpose). The syncer's report is routed
 * to the claimer and every arrival waiting. A claimer whose peer is gone
 * (its line dropped mid-frame, with no reset to tell it) would hold the
 * segment for ever: the arrival waiting for it asks it to stop
 * (fr_inbound_end_gone), and its claims go back. A copy that is still
 * useful, because the claimer is alive but slow (the endgame's reason to
 * send it), races the claimer instead: received whole and checked, it
 * takes the segment if the claimer has not written it all by then, and
 * the claimer writes nothing more of it (fr_inbound_take).
 *
 * The package is opened by the first arrival (store.c: fr_store_open)
 * and closed by the last one to leave. Each arrival works through a view
 * (fr_store_view): the shared manifest and journal, its own file
 * descriptors, so that its ring can keep its files open. Only sessions
 * of the same account share a package; another account's offer waits,
 * as before, for the package to be let go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/fr_store.h"

/* the longest a segment's new holder waits for the writes of the one a
 * copy took it from (they finish in milliseconds) */
#define WRITES_WAIT_MS 10000

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fr_inbound *reg_head;

/* ---- the syncer's report ---------------------------------------------- */

static void open_durable(void *arg, const uint32_t *segs, uint32_t n)
{
	struct fr_inbound *op = arg;

	pthread_mutex_lock(&op->mu);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t s = segs[i], who = op->wait[s];
		if (op->claim[s])
			who |= 1u << (op->claim[s] - 1);
		if (op->second[s]) /* its copy goes */
			who |= 1u << (op->second[s] - 1);
		who |= op->losers[s];
		op->losers[s] = 0;
		if (op->claim[s] && op->arr[op->claim[s] - 1].announce)
			who = op->used; /* every arrival hears of it */
		op->claim[s] = op->second[s] = op->landed[s] = 0;
		op->wait[s] = 0;
		for (unsigned k = 0; k < FR_IN_ARRIVALS; k++)
			if ((who >> k & 1) && (op->used >> k & 1))
				op->arr[k].ack(op->arr[k].arg, s,
					       FR_ACK_DURABLE);
	}
	pthread_cond_broadcast(&op->let_go);
	pthread_mutex_unlock(&op->mu);
}

/* The batch counts as journaled: the sync window has room again, and
 * every arrival's ring looks. */
static void open_wake(void *arg)
{
	struct fr_inbound *op = arg;

	pthread_mutex_lock(&op->mu);
	for (unsigned k = 0; k < FR_IN_ARRIVALS; k++)
		if (op->used >> k & 1)
			op->arr[k].wake(op->arr[k].arg);
	pthread_mutex_unlock(&op->mu);
}

/* ---- joining and leaving ------------------------------------------------ */

static int add_arrival(struct fr_inbound *op, const struct fr_arrival *me)
{
	for (unsigned k = 0; k < FR_IN_ARRIVALS; k++)
		if (!(op->used >> k & 1)) {
			op->arr[k] = *me;
			op->keep |= me->keeps;
			op->joined[k] = fr_now_ns();
			op->used |= 1u << k;
			op->refs++;
			return (int)k;
		}
	return -EBUSY;
}

/* A later offer must agree with the first on every hash both know. */
static bool offer_agrees(const struct fr_manifest *shared, const uint8_t *mf,
			 size_t len)
{
	struct fr_manifest m;
	bool ok;

	if (fr_manifest_decode(&m, mf, len) < 0)
		return false;
	ok = m.n_segments == shared->n_segments;
	for (uint32_t i = 0; ok && i < m.n_segments; i++)
		if (!fr_hash_unknown(m.segments[i].hash) &&
		    !fr_hash_unknown(shared->segments[i].hash) &&
		    memcmp(m.segments[i].hash, shared->segments[i].hash,
			   FR_HASH_LEN))
			ok = false;
	fr_manifest_fini(&m);
	return ok;
}

static struct fr_inbound *find_open(const uint8_t lid[FR_HASH_LEN])
{
	struct fr_inbound *op = reg_head;

	while (op && memcmp(op->lid, lid, FR_HASH_LEN))
		op = op->next;
	return op;
}

/* Last one out: the syncer journals what is left, the package closes. */
static void open_free(struct fr_inbound *op)
{
	fr_syncer_stop(&op->sy);
	fr_store_close(&op->pkg);
	pthread_mutex_destroy(&op->mu);
	pthread_cond_destroy(&op->fin);
	pthread_cond_destroy(&op->let_go);
	free(op->claim);
	free(op->wait);
	free(op->second);
	free(op->landed);
	free(op->writing);
	free(op->losers);
	free(op);
}

/* The package opened afresh by its first arrival (reg_lock held). */
static int open_first(const char *store, const uint8_t *mf, size_t len,
		      const char *from, struct fr_inbound **out,
		      struct fr_store_pkg *complete, char *err, size_t cap)
{
	struct fr_inbound *op = calloc(1, sizeof(*op));
	int r;

	if (!op)
		return -ENOMEM;
	r = fr_store_open(store, mf, len, from, &op->pkg, err, cap);
	if (r == FR_HAVE_COMPLETE) /* the caller says so, and closes it */
		*complete = op->pkg;
	if (r < 0 || r == FR_HAVE_COMPLETE) {
		free(op);
		return r;
	}
	uint32_t n = op->pkg.m.n_segments + 1;
	op->claim = calloc(n, 1);
	op->wait = calloc(n, sizeof(*op->wait));
	op->second = calloc(n, 1);
	op->landed = calloc(n, 1);
	op->writing = calloc(n, sizeof(*op->writing));
	op->losers = calloc(n, sizeof(*op->losers));
	pthread_mutex_init(&op->mu, NULL);
	pthread_cond_init(&op->fin, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&op->let_go, &ca);
	pthread_condattr_destroy(&ca);
	if (!op->claim || !op->wait || !op->second || !op->landed ||
	    !op->writing || !op->losers ||
	    (r = fr_syncer_start(&op->sy, &op->pkg, open_durable, op, -1)) <
		    0) {
		snprintf(err, cap, "out of memory");
		open_free(op);
		return -ENOMEM;
	}
	op->sy.wake = open_wake;
	memcpy(op->lid, op->pkg.m.lid, FR_HASH_LEN);
	snprintf(op->from, sizeof(op->from), "%s", from);
	op->next = reg_head;
	reg_head = op;
	*out = op;
	return FR_HAVE_PARTIAL;
}

int fr_inbound_join(const char *store, const uint8_t *mf, size_t len,
		 const char *from, const struct fr_arrival *me,
		 struct fr_inbound **out, int *slot, struct fr_store_pkg *view,
		 char *err, size_t cap)
{
	uint8_t lid[FR_HASH_LEN];
	struct fr_manifest m;
	struct fr_inbound *op;
	int r;

	if ((r = fr_manifest_decode(&m, mf, len)) < 0) {
		snprintf(err, cap, "manifest refused: %s", fr_strerror(r));
		return r;
	}
	memcpy(lid, m.lid, FR_HASH_LEN);
	fr_manifest_fini(&m);
	pthread_mutex_lock(&reg_lock);
	op = find_open(lid);
	if (op && (op->closing || strcmp(op->from, from))) {
		/* finishing, or another account's: wait for it to let go */
		snprintf(err, cap, "package is being received by another "
				   "session");
		r = -EBUSY;
	} else if (op && !offer_agrees(&op->pkg.m, mf, len)) {
		snprintf(err, cap, "package '%s' is being received with other "
				   "contents (a hash differs from the first "
				   "offer's)",
			 op->pkg.m.name);
		r = FR_E_CHANGED;
	} else if (!op) {
		r = open_first(store, mf, len, from, &op, view, err, cap);
	} else {
		r = FR_HAVE_PARTIAL;
	}
	if (r == FR_HAVE_PARTIAL) {
		pthread_mutex_lock(&op->mu);
		*slot = add_arrival(op, me);
		pthread_mutex_unlock(&op->mu);
		if (*slot < 0) {
			snprintf(err, cap, "%d sessions already receive this "
					   "package",
				 FR_IN_ARRIVALS);
			r = -EBUSY;
		}
		*out = *slot >= 0 ? op : NULL;
	}
	pthread_mutex_unlock(&reg_lock);
	if (r == FR_HAVE_PARTIAL && *slot >= 0) {
		int v = fr_store_view(&op->pkg, view);
		if (v < 0) {
			snprintf(err, cap, "cannot open package '%s': %s",
				 op->pkg.m.name, fr_strerror(v));
			fr_inbound_leave(op, *slot);
			*out = NULL;
			return v;
		}
	}
	return r;
}

static void unclaim_locked(struct fr_inbound *op, int slot, uint32_t seg);

void fr_inbound_leave(struct fr_inbound *op, int slot)
{
	bool last;

	pthread_mutex_lock(&reg_lock);
	pthread_mutex_lock(&op->mu);
	op->used &= ~(1u << slot);
	op->ending &= ~(1u << slot);
	for (uint32_t s = 0; s < op->pkg.m.n_segments; s++) {
		op->wait[s] &= ~(1u << slot);
		op->losers[s] &= ~(1u << slot);
		if (op->claim[s] == slot + 1 || op->second[s] == slot + 1)
			unclaim_locked(op, slot, s);
	}
	pthread_cond_broadcast(&op->let_go);
	last = --op->refs == 0;
	/* a partial package this open made, into which nothing ever came
	 * (an offer only: `ferry plan` asking what the site holds, a
	 * sender stopped at once): no trace of it is left at the site.
	 * Removed before the package leaves the registry (reg_lock held):
	 * an offer of it that comes now opens a new one. (Nothing claimed:
	 * the syncer has nothing to journal.) */
	if (last && op->pkg.fresh && !op->claimed && !op->keep &&
	    !op->closing && op->pkg.lock_fd >= 0 && op->pkg.j.n_have == 0) {
		fr_log(FR_LOG_DEBUG,
		       "package '%s': nothing came into its new partial "
		       "package; removed",
		       op->pkg.m.name);
		fr_store_discard(&op->pkg);
	}
	pthread_mutex_unlock(&op->mu);
	if (last) {
		for (struct fr_inbound **p = &reg_head; *p; p = &(*p)->next)
			if (*p == op) {
				*p = op->next;
				break;
			}
	}
	pthread_mutex_unlock(&reg_lock);
	if (last)
		open_free(op);
}

/* ---- segments ---------------------------------------------------------- */

/* seg is slot's to write (op->mu held) */
static void claim_for(struct fr_inbound *op, int slot, uint32_t seg)
{
	op->claim[seg] = (uint8_t)(slot + 1);
	op->claimed = true;
}

int fr_inbound_claim(struct fr_inbound *op, int slot, uint32_t seg)
{
	int r = FR_IN_MINE;

	pthread_mutex_lock(&op->mu);
	if (op->pkg.j.have[seg] && !op->claim[seg]) {
		r = FR_IN_HELD;
	} else if (op->claim[seg] && op->claim[seg] != slot + 1) {
		op->wait[seg] |= 1u << slot;
		r = FR_IN_ELSEWHERE;
	} else if (op->claim[seg] == slot + 1) {
		r = FR_IN_AGAIN;
	} else {
		claim_for(op, slot, seg);
	}
	pthread_mutex_unlock(&op->mu);
	return r;
}

/* Writes to seg still out, after waiting up to ms for them (op->mu). */
static uint32_t writes_out(struct fr_inbound *op, uint32_t seg, unsigned ms)
{
	struct timespec end;

	fr_deadline(&end, CLOCK_MONOTONIC, ms / 1000.0);
	while (op->writing[seg] && ms &&
	       pthread_cond_timedwait(&op->let_go, &op->mu, &end) != ETIMEDOUT)
		;
	return op->writing[seg];
}

/* A claimed segment that will not be written after all: the copy racing
 * it takes it, or else those waiting for it (their copy was not kept) are
 * told to send it again. A racing copy let go simply goes. */
static void unclaim_locked(struct fr_inbound *op, int slot, uint32_t seg)
{
	uint32_t who = op->wait[seg];

	if (op->second[seg] == slot + 1) {
		op->second[seg] = 0;
		pthread_cond_broadcast(&op->let_go);
		return;
	}
	if (op->claim[seg] != slot + 1)
		return;
	/* a copy that took it and now lets go: the writes of the one it
	 * took it from must be over before anyone else writes it */
	writes_out(op, seg, WRITES_WAIT_MS);
	op->landed[seg] = 0;
	op->claim[seg] = op->second[seg];
	op->second[seg] = 0;
	pthread_cond_broadcast(&op->let_go);
	if (op->claim[seg]) /* its ACK goes with the copy's */
		return;
	op->wait[seg] = 0;
	for (unsigned k = 0; k < FR_IN_ARRIVALS; k++)
		if ((who >> k & 1) && (op->used >> k & 1))
			op->arr[k].ack(op->arr[k].arg, seg, FR_ACK_AGAIN);
	pthread_cond_broadcast(&op->let_go);
}

void fr_inbound_unclaim(struct fr_inbound *op, int slot, uint32_t seg)
{
	pthread_mutex_lock(&op->mu);
	unclaim_locked(op, slot, seg);
	pthread_mutex_unlock(&op->mu);
}

unsigned fr_inbound_end_gone(struct fr_inbound *op, int slot)
{
	uint32_t asked = 0; /* arrivals asked once in this pass */
	unsigned waiting = 0;

	pthread_mutex_lock(&op->mu);
	for (uint32_t s = 0; s < op->pkg.m.n_segments; s++) {
		if (!(op->wait[s] >> slot & 1) || !op->claim[s])
			continue;
		waiting++;
		unsigned k = op->claim[s] - 1u;
		if ((asked >> k & 1) || !(op->used >> k & 1) ||
		    !op->arr[k].gone)
			continue;
		asked |= 1u << k;
		if (op->arr[k].gone(op->arr[k].arg))
			op->ending |= 1u << k;
	}
	pthread_mutex_unlock(&op->mu);
	return waiting;
}

/* Is claimer k (op->mu held) told to stop? Asked once more if not. */
static bool claimer_ending(struct fr_inbound *op, unsigned k)
{
	if (!(op->ending >> k & 1) && (op->used >> k & 1) && op->arr[k].gone &&
	    op->arr[k].gone(op->arr[k].arg))
		op->ending |= 1u << k;
	return op->ending >> k & 1;
}


static bool passed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec ||
	       (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

int fr_inbound_claim_wait(struct fr_inbound *op, int slot, uint32_t seg,
			  unsigned ms, bool race)
{
	struct timespec end, step;
	int r;

	fr_deadline(&end, CLOCK_MONOTONIC, ms / 1000.0);
	pthread_mutex_lock(&op->mu);
	uint64_t me = op->joined[slot];
	bool young = fr_now_ns() - me < (uint64_t)ms * 1000000u;
	for (;;) {
		unsigned c = op->claim[seg];
		if (!c) { /* free, or let go: this copy is the one */
			op->wait[seg] &= ~(1u << slot);
			if (op->pkg.j.have[seg]) {
				r = FR_IN_HELD;
			} else {
				claim_for(op, slot, seg);
				r = FR_IN_MINE;
			}
			break;
		}
		if (c == (unsigned)slot + 1) {
			r = FR_IN_AGAIN;
			break;
		}
		bool ending = claimer_ending(op, c - 1);
		bool patient = young && op->joined[c - 1] + 1000000000ull <= me;
		/* a live claimer, or the wait is over: the copy is not kept,
		 * and this arrival hears when the segment is durable */
		if (passed(&end) || (!ending && !patient)) {
			if (race && (!ending || op->arr[slot].whole) &&
			    op->arr[c - 1].yields &&
			    !op->second[seg] && !op->landed[seg]) {
				op->second[seg] = (uint8_t)(slot + 1);
				r = FR_IN_SECOND;
				break;
			}
			op->wait[seg] |= 1u << slot;
			r = FR_IN_ELSEWHERE;
			break;
		}
		fr_deadline(&step, CLOCK_MONOTONIC, 0.1);
		pthread_cond_timedwait(&op->let_go, &op->mu, ending ? &end : &step);
	}
	pthread_mutex_unlock(&op->mu);
	return r;
}

int fr_inbound_take(struct fr_inbound *op, int slot, uint32_t seg,
		    unsigned wait_ms)
{
	int r;

	pthread_mutex_lock(&op->mu);
	unsigned c = op->claim[seg];
	if (c == (unsigned)slot + 1) { /* the claimer let go: promoted */
		r = writes_out(op, seg, wait_ms) ? FR_IN_WRITING : FR_IN_MINE;
	} else if (op->second[seg] != slot + 1) {
		r = FR_IN_ACKED; /* durable meanwhile: the report told us */
	} else if (!c || op->landed[seg]) {
		op->second[seg] = 0;
		op->wait[seg] |= 1u << slot;
		r = FR_IN_ELSEWHERE;
	} else { /* the claimer is still at it: this copy wins */
		claim_for(op, slot, seg);
		op->second[seg] = 0;
		op->losers[seg] |= 1u << (c - 1);
		r = writes_out(op, seg, wait_ms) ? FR_IN_WRITING : FR_IN_MINE;
	}
	pthread_mutex_unlock(&op->mu);
	return r;
}

bool fr_inbound_holds(struct fr_inbound *op, int slot, uint32_t seg)
{
	pthread_mutex_lock(&op->mu);
	bool h = op->claim[seg] == slot + 1 || op->second[seg] == slot + 1;
	pthread_mutex_unlock(&op->mu);
	return h;
}

bool fr_inbound_drop(struct fr_inbound *op, int slot, uint32_t seg)
{
	bool again = false;

	pthread_mutex_lock(&op->mu);
	if (op->losers[seg] >> slot & 1) {
		op->losers[seg] &= ~(1u << slot);
		if (op->claim[seg])
			op->wait[seg] |= 1u << slot;
		else
			again = !op->pkg.j.have[seg];
	}
	pthread_mutex_unlock(&op->mu);
	return again;
}

void fr_inbound_hash(struct fr_inbound *op, uint32_t seg,
		     uint8_t out[FR_HASH_LEN])
{
	pthread_mutex_lock(&op->mu);
	memcpy(out, op->pkg.m.segments[seg].hash, FR_HASH_LEN);
	pthread_mutex_unlock(&op->mu);
}

void fr_inbound_hash_settle(struct fr_inbound *op, uint32_t seg,
			    const uint8_t h[FR_HASH_LEN])
{
	pthread_mutex_lock(&op->mu);
	uint8_t *want = op->pkg.m.segments[seg].hash;
	if (fr_hash_unknown(want))
		memcpy(want, h, FR_HASH_LEN);
	pthread_mutex_unlock(&op->mu);
}

bool fr_inbound_write_begin(struct fr_inbound *op, int slot, uint32_t seg)
{
	pthread_mutex_lock(&op->mu);
	bool mine = op->claim[seg] == slot + 1;
	if (mine)
		op->writing[seg]++;
	pthread_mutex_unlock(&op->mu);
	return mine;
}

void fr_inbound_write_end(struct fr_inbound *op, uint32_t seg)
{
	pthread_mutex_lock(&op->mu);
	if (--op->writing[seg] == 0)
		pthread_cond_broadcast(&op->let_go);
	pthread_mutex_unlock(&op->mu);
}

bool fr_inbound_land(struct fr_inbound *op, int slot, uint32_t seg)
{
	pthread_mutex_lock(&op->mu);
	bool mine = op->claim[seg] == slot + 1;
	if (mine)
		op->landed[seg] = 1;
	pthread_mutex_unlock(&op->mu);
	return mine;
}

/* ---- completing ---------------------------------------------------------- */

bool fr_inbound_finish_begin(struct fr_inbound *op)
{
	bool first;

	pthread_mutex_lock(&reg_lock);
	first = !op->closing;
	op->closing = true; /* nobody joins what is being completed */
	pthread_mutex_unlock(&reg_lock);
	return first;
}

void fr_inbound_finish_end(struct fr_inbound *op, bool ok)
{
	pthread_mutex_lock(&op->mu);
	op->finished = true;
	op->complete = ok;
	pthread_cond_broadcast(&op->fin);
	/* the others' senders may still be sending: their sessions look */
	for (unsigned k = 0; ok && k < FR_IN_ARRIVALS; k++)
		if ((op->used >> k & 1) && op->arr[k].wake)
			op->arr[k].wake(op->arr[k].arg);
	pthread_mutex_unlock(&op->mu);
}

bool fr_inbound_finish_wait(struct fr_inbound *op)
{
	pthread_mutex_lock(&op->mu);
	while (!op->finished)
		pthread_cond_wait(&op->fin, &op->mu);
	bool ok = op->complete;
	pthread_mutex_unlock(&op->mu);
	return ok;
}

bool fr_inbound_completed(struct fr_inbound *op)
{
	pthread_mutex_lock(&op->mu);
	bool r = op->finished && op->complete;
	pthread_mutex_unlock(&op->mu);
	return r;
}

bool fr_inbound_completing(struct fr_inbound *op)
{
	pthread_mutex_lock(&reg_lock);
	bool closing = op->closing;
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_lock(&op->mu);
	bool r = closing && (!op->finished || op->complete);
	pthread_mutex_unlock(&op->mu);
	return r;
}

unsigned fr_inbound_arrivals(struct fr_inbound *op)
{
	pthread_mutex_lock(&op->mu);
	unsigned n = (unsigned)op->refs;
	pthread_mutex_unlock(&op->mu);
	return n;
}
