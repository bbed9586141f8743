/*
 * plan.c - `ferry plan`: what a send would do, before anything moves.
 *
 * The package is listed as a send lists it (sizes are all a plan needs),
 * with the hashes an earlier send of the same listing left in its
 * transfer directory (read, never written). The site is asked what it
 * holds through every LAN address at once, within ASK_S: an OFFER, its
 * HAVE and HELD, then the session is closed (the site keeps the listing
 * as a partial package, as after any offer). The answer of the first
 * address in priority order is kept; an address that does not answer is
 * left out of the plan, with why (a send would not get through it now
 * either), unless none answers. A dial-up line is never dialled for a
 * plan; --offline asks nothing.
 *
 * The send is then simulated (sim.c, which drives the real assignment)
 * over every network address a striped send would use: each at the rate
 * it would start from (links.c: measured before, configured, its line
 * profile, or a default), capped by its rate limit as it stands now,
 * with its schedule's closures over the next weeks as off intervals, so
 * an address closed now is an output that starts later. With a courier
 * address that has media and a transit time, the send is simulated
 * again with the courier taking the tail fr_assign_split chooses; the
 * split is reported when it lands the package sooner than the network
 * alone.
 *
 * Nothing here prints: tools/ presents struct fr_plan.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sched/fr_sched.h"

#define ASK_S 5.0	       /* for every address asked, in all */

/* ---- the computation (pure: the unit tests drive it) --------------------- */

/* A closure of L begins at `from` (seconds from now), open-ended. */
static void off_begin(struct fr_sim_link *L, double from)
{
	L->off[L->n_off].from = from;
	L->off[L->n_off].to = -1;
	L->n_off++;
}

double fr_plan_windows(const struct fr_schedule *s, int priority, time_t now,
		       struct fr_sim_link *L)
{
	bool open = fr_schedule_allows(s, priority, now);
	double first = open ? 0 : -1;

	L->n_off = 0;
	if (!open)
		off_begin(L, 0);
	if (!s->set)
		return 0;
	for (time_t t = now - now % 60 + 60; t - now < FR_PLAN_HORIZON_S;
	     t += 60) {
		bool o = fr_schedule_allows(s, priority, t);
		if (o == open)
			continue;
		open = o;
		if (o) { /* the closure ends */
			L->off[L->n_off - 1].to = (double)(t - now);
			if (first < 0)
				first = (double)(t - now);
		} else if (L->n_off == FR_SIM_MAX_OFF) {
			break; /* past the slots: open from here on */
		} else {
			off_begin(L, (double)(t - now));
		}
	}
	if (first < 0) {
		L->n_off = 0;
		return -1;
	}
	/* a closure the horizon cut: to when it opens again */
	unsigned k = L->n_off;
	if (k && L->off[k - 1].to < 0) {
		time_t o = fr_schedule_next_open(
		    s, priority, now + (time_t)L->off[k - 1].from);
		L->off[k - 1].to = o == (time_t)-1 ? -1 : (double)(o - now);
	}
	return first;
}

static uint32_t seg_index(const struct fr_plan_input *in, uint32_t i)
{
	return in->index ? in->index[i] : i;
}

static unsigned out_index(const struct fr_plan_input *in, unsigned i)
{
	return in->output ? in->output[i] : i;
}

/* The courier's tail simulated beside the network's front. */
static int compute_courier(const struct fr_plan_input *in, double net_eta,
			   struct fr_plan *p)
{
	struct fr_plan_courier *pc = &p->courier;
	struct fr_sim_courier cr = {.on = true, .m = *in->courier};
	struct fr_sim_result r;
	uint64_t all = 0;

	for (uint32_t i = 0; i < in->n_segs; i++)
		all += in->bytes[i];
	pc->alone = fr_courier_time(in->courier, all);
	pc->modelled = true;
	int rc =
	    fr_sim_run(in->links, in->n_links, &cr, in->n_segs, in->bytes, &r);
	if (rc < 0)
		return rc;
	if (r.split < 0 || !(r.eta < net_eta)) {
		snprintf(pc->why, sizeof(pc->why), "%s",
			 "the network alone is sooner");
		return 0;
	}
	const struct fr_assign_stat *co = &r.out[r.n - 1].st;
	pc->split = true;
	pc->first = seg_index(in, (uint32_t)r.split);
	pc->segments = co->segs_acked;
	pc->bytes = co->bytes_acked;
	pc->net_segments = in->n_segs - co->segs_acked;
	pc->net_bytes = all - co->bytes_acked;
	pc->eta = r.eta;
	pc->gain = net_eta - r.eta;
	return 0;
}

int fr_plan_compute(const struct fr_plan_input *in, struct fr_plan *p)
{
	struct fr_sim_result r;
	int rc;

	if (!in->n_links || in->n_links > FR_OUTPUTS_MAX ||
	    (in->courier && in->n_links + 1 > FR_ASSIGN_MAX_OUT))
		return -EINVAL;
	p->eta = 0;
	struct fr_plan_courier *pc = &p->courier;
	if (in->courier) { /* what it computes of the courier, afresh */
		pc->alone = pc->eta = pc->gain = 0;
		pc->modelled = pc->split = false;
		pc->first = pc->net_segments = pc->segments = 0;
		pc->net_bytes = pc->bytes = 0;
		pc->why[0] = '\0';
	}
	for (unsigned i = 0; i < in->n_links; i++) {
		struct fr_plan_output *o = &p->outputs[out_index(in, i)];
		o->segments = 0;
		o->bytes = 0;
		o->finish = 0;
	}
	if (!in->n_segs) {
		if (in->courier)
			snprintf(pc->why, sizeof(pc->why), "%s",
				 "nothing to send");
		return 0;
	}
	rc =
	    fr_sim_run(in->links, in->n_links, NULL, in->n_segs, in->bytes, &r);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < in->n_links; i++) {
		struct fr_plan_output *o = &p->outputs[out_index(in, i)];
		o->segments = r.out[i].st.segs_acked;
		o->bytes = r.out[i].st.bytes_acked;
		o->finish = r.out[i].finish;
	}
	p->eta = r.eta;
	return in->courier ? compute_courier(in, r.eta, p) : 0;
}

/* ---- the site's addresses ------------------------------------------------ */

/* Why no address is usable, said once every address was looked at. */
static int no_usable(const struct fr_config *c, const struct fr_plan_opts *o,
		     unsigned network, bool courier)
{
	if (network)
		fr_log(FR_LOG_ERROR,
		       "no address to %s%s%s is ever open to %s-priority "
		       "sends (see their schedules); plan with a higher "
		       "--priority or change a schedule",
		       o->site, o->via ? " named " : "", o->via ? o->via : "",
		       fr_priority_name(o->priority));
	else
		fr_log(FR_LOG_ERROR,
		       "no network address for site %s in '%s'%s (add an "
		       "[address %s NAME] section of type lan or a line type)",
		       o->site, c->path,
		       courier ? ": a courier needs one to the same site" : "",
		       o->site);
	return FR_E_CONFIG;
}

/* The network addresses a send would use (those a striped send takes,
 * or the one --via names) and the site's first courier address. */
static int plan_addresses(const struct fr_config *c,
			  const struct fr_plan_opts *o, time_t now,
			  const struct fr_address **net, unsigned *n,
			  const struct fr_address **courier)
{
	const struct fr_address *all[64];
	unsigned k = fr_config_addresses(c, o->site, all, 64), network = 0;
	bool named = !o->via;
	char names[600];
	size_t at = 0;

	*n = 0;
	*courier = NULL;
	if (!k) {
		char sites[256];
		fr_config_sites(c, sites, sizeof(sites));
		fr_log(FR_LOG_ERROR,
		       "no address for site '%s' in '%s' (%s%s%sadd an "
		       "[address %s NAME] section)",
		       o->site, c->path, sites[0] ? "sites with addresses: " : "",
		       sites, sites[0] ? "; or " : "", o->site);
		return FR_E_CONFIG;
	}
	for (unsigned i = 0; i < k; i++) {
		const struct fr_address *a = all[i];
		bool via = !o->via || !strcmp(o->via, a->name);
		named |= via;
		if (at < sizeof(names))
			at += (size_t)snprintf(names + at, sizeof(names) - at,
					       "%s%s", i ? ", " : "", a->name);
		if (a->type == FR_ADDR_COURIER) {
			if (o->via && via) {
				fr_log(FR_LOG_ERROR,
				       "address %s %s is a courier: a plan "
				       "weighs the courier against the network "
				       "by itself; name a network address with "
				       "--via, or leave it out",
				       a->site, a->name);
				return FR_E_CONFIG;
			}
			if (!*courier)
				*courier = a;
			continue;
		}
		if (!via || !fr_output_for(a->type))
			continue;
		network++;
		if (*n < FR_OUTPUTS_MAX - 1 &&
		    fr_schedule_next_open(&a->schedule, o->priority, now) !=
			(time_t)-1)
			net[(*n)++] = a;
	}
	if (!named) {
		fr_log(FR_LOG_ERROR,
		       "site %s has no address named '%s' in '%s' (its "
		       "addresses: %s)",
		       o->site, o->via, c->path, names);
		return FR_E_CONFIG;
	}
	return *n ? 0 : no_usable(c, o, network, *courier != NULL);
}

/* ---- the source ---------------------------------------------------------- */

/* The listing, sealed open as a send seals it, with the hashes an
 * earlier send of it made. */
static int plan_source(const struct fr_config *c, const struct fr_plan_opts *o,
		       struct fr_plan *p, struct fr_manifest *m)
{
	char abs[FR_PATH_MAX + 1], hex[2 * FR_HASH_LEN + 1], dir[1300];
	struct fr_left_list left = {0};
	bool single;
	int rc;

	if ((rc = fr_package_source(o->path, o->name, "plan", abs, sizeof(abs),
				    p->name, sizeof(p->name))) < 0)
		return rc;
	rc = fr_scan_list(abs, p->name, c->seg_size, m, &single, &left);
	p->left_out = left.n;
	fr_left_list_fini(&left);
	if (rc < 0)
		return rc;
	m->open = true;
	if ((rc = fr_manifest_seal(m)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot carry '%s': %s", p->name,
		       fr_strerror(rc));
		return rc;
	}
	p->total_bytes = m->total_size;
	p->n_segments = m->n_segments;
	/* the transfer a send of this listing keeps (sched.c) */
	fr_hex(m->lid, FR_HASH_LEN, hex);
	hex[12] = '\0';
	if (fr_path_fmt(dir, sizeof(dir), "%s/outgoing/%s-%s", c->store, hex,
			p->site) == 0) {
		uint32_t k = fr_known_peek(m, dir);
		fr_log(FR_LOG_DEBUG, "'%s': %u of %u segments hashed before",
		       p->name, k, m->n_segments);
	}
	return 0;
}

/* ---- asking the site ----------------------------------------------------- */

/* One question to one address, in a thread of its own so that a site
 * that does not answer holds the plan no longer than its deadline; the
 * thread may outlive the call, so it owns copies of what it uses. */
struct ask {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned; /* under mu: the last of the two frees it */
	int fd;               /* under mu: the connection, while open */
	struct fr_address a;
	struct fr_config c;   /* the store's path only */
	struct fr_manifest m; /* the name and segment count only */
	uint8_t *mf, *have, *copies;
	size_t mf_len;
	int priority, rc;
	char err[512];
};

/* A question given up is cut off; its thread has this long to end. */
#define ASK_END_S 2.0

/* The questions left to their threads: the process may exit before the
 * threads free them (one per address at most). */
static struct ask *abandoned[FR_OUTPUTS_MAX];
static unsigned n_abandoned;

static void ask_free(struct ask *k)
{
	explicit_bzero(&k->a, sizeof(k->a));
	free(k->mf);
	free(k->have);
	free(k->copies);
	free(k->m.name);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static void *ask_main(void *arg)
{
	struct ask *k = arg;
	struct fr_output o = {.ops = &fr_output_lan, .c = &k->c, .a = &k->a};
	struct fr_offer_z oz = {0};
	struct fr_send_ctx sc = {.m = &k->m,
				 .mf = k->mf,
				 .mf_len = k->mf_len,
				 .priority = k->priority,
				 .offer_z = &oz,
				 .copies = k->copies};
	char err[512] = "";
	int rc = o.ops->open(&o, err, sizeof(err));

	pthread_mutex_lock(&k->mu);
	k->fd = rc == 0 ? fr_output_fd(&o) : -1;
	if (k->fd >= 0 && k->abandoned) /* given up while it connected */
		shutdown(k->fd, SHUT_RDWR);
	pthread_mutex_unlock(&k->mu);
	if (rc == 0)
		rc = o.ops->offer(&o, &sc, k->have, err, sizeof(err));
	pthread_mutex_lock(&k->mu);
	k->fd = -1;
	pthread_mutex_unlock(&k->mu);
	o.ops->close(&o);
	free(oz.body);
	pthread_mutex_lock(&k->mu);
	k->rc = rc;
	snprintf(k->err, sizeof(k->err), "%s", err);
	k->done = true;
	bool gone = k->abandoned;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	if (gone)
		ask_free(k);
	return NULL;
}

static struct ask *ask_new(const struct fr_config *c,
			   const struct fr_address *a,
			   const struct fr_manifest *m, const uint8_t *mf,
			   size_t len, int priority)
{
	struct ask *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;

	if (!k)
		return NULL;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	k->fd = -1;
	k->a = *a;
	snprintf(k->c.store, sizeof(k->c.store), "%s", c->store);
	k->m.n_segments = m->n_segments;
	k->m.name = strdup(m->name);
	k->mf = malloc(len);
	k->mf_len = len;
	k->have = calloc(m->n_segments + 1, 1);
	k->copies = calloc(m->n_segments + 1, 1);
	k->priority = priority;
	if (!k->m.name || !k->mf || !k->have || !k->copies) {
		ask_free(k);
		return NULL;
	}
	memcpy(k->mf, mf, len);
	return k;
}

/* Wait for k until `deadline` (fr_now_s): true when it answered. Not
 * final: nothing is decided (the caller waits again); final and not
 * answered: k is left to its thread, which frees it. */
static bool ask_wait(struct ask *k, double deadline, bool final)
{
	struct timespec ts;

	fr_deadline(&ts, CLOCK_MONOTONIC, deadline - fr_now_s());
	pthread_mutex_lock(&k->mu);
	while (!k->done && pthread_cond_timedwait(&k->cv, &k->mu, &ts) == 0)
		;
	bool done = k->done;
	if (!done && !final && k->fd >= 0)
		/* too late: its connection ends, so that its thread does
		 * (and lets go of what it holds) before we exit */
		shutdown(k->fd, SHUT_RDWR);
	if (final) {
		k->abandoned = !done;
		if (!done) /* still reachable, for a leak check at exit */
			abandoned[n_abandoned++ % FR_OUTPUTS_MAX] = k;
	}
	pthread_mutex_unlock(&k->mu);
	return done;
}

/* A question to one address, on a thread of its own. */
struct asking {
	struct ask *k;
	pthread_t th;
};

/* Ask a what it holds of m: started. -ENOMEM or -EAGAIN. */
static int ask_start(const struct fr_config *c, const struct fr_address *a,
		     const struct fr_manifest *m, const uint8_t *mf,
		     size_t len, int priority, struct asking *q)
{
	if (!(q->k = ask_new(c, a, m, mf, len, priority)))
		return -ENOMEM;
	if (pthread_create(&q->th, NULL, ask_main, q->k) != 0) {
		ask_free(q->k);
		q->k = NULL;
		return -EAGAIN;
	}
	return 0;
}

/* Its answer, once ask_wait(q->k, deadline, false) said whether it came
 * in time (in_time), and waited for until end (when not): FR_HAVE_*
 * with have and copies filled, -ETIMEDOUT, or the output's code; err
 * says why. */
static int ask_end(struct asking *q, const struct fr_manifest *m,
		   bool in_time, double end, uint8_t *have, uint8_t *copies,
		   char *err, size_t cap)
{
	struct ask *k = q->k;

	if (!in_time && !ask_wait(k, end, true)) {
		pthread_detach(q->th); /* its thread frees k */
		snprintf(err, cap, "%s (%s) did not answer within %.0f s",
			 k->a.name, k->a.host, ASK_S);
		return -ETIMEDOUT;
	}
	/* joined, so that what its thread holds (OpenSSL's per-thread
	 * state) is let go before the process ends */
	pthread_join(q->th, NULL);
	int rc = in_time ? k->rc : -ETIMEDOUT;
	if (!in_time)
		snprintf(k->err, sizeof(k->err),
			 "%s (%s) did not answer within %.0f s", k->a.name,
			 k->a.host, ASK_S);
	snprintf(err, cap, "%s", k->err[0] ? k->err : fr_strerror(rc));
	memcpy(have, k->have, m->n_segments);
	memcpy(copies, k->copies, m->n_segments);
	ask_free(k);
	q->k = NULL;
	return rc;
}

/* What the site's answer says is held, counted into p. */
static void held_count(const struct fr_manifest *m, int answer,
		       const uint8_t *have, const uint8_t *copies,
		       uint8_t *held, struct fr_plan *p)
{
	for (uint32_t s = 0; s < m->n_segments; s++) {
		held[s] = answer == FR_HAVE_COMPLETE || have[s] || copies[s];
		if (!held[s])
			continue;
		p->held_segments++;
		p->held_bytes += m->segments[s].length;
		p->held_unconfirmed += answer != FR_HAVE_COMPLETE && !have[s];
	}
}

/* The site's answers, through each address asked (ask_site). */
struct answers {
	int rc[FR_OUTPUTS_MAX];     /* FR_HAVE_*, or why not (err) */
	bool asked[FR_OUTPUTS_MAX];
	char err[FR_OUTPUTS_MAX][512];
	int first;                  /* the first in priority order that
				     * answered, or -1 */
	uint8_t *have, *copies;     /* ... and what it holds */
};

/* Ask the site what it holds of m (mf: its offer) through every LAN
 * address among net at once, within ASK_S (and ASK_END_S more for a
 * question cut off then to end). 0 or -ENOMEM; a.have and a.copies are
 * the caller's to free. */
static int ask_site(const struct fr_config *c, int priority,
		    const struct fr_address *const *net, unsigned n,
		    const struct fr_manifest *m, const uint8_t *mf, size_t len,
		    struct answers *a)
{
	double deadline = fr_now_s() + ASK_S;
	struct asking q[FR_OUTPUTS_MAX];
	bool in_time[FR_OUTPUTS_MAX] = {0};
	uint8_t *have = calloc(m->n_segments + 1, 1),
		*copies = calloc(m->n_segments + 1, 1);

	memset(a, 0, sizeof(*a));
	memset(q, 0, sizeof(q));
	a->first = -1;
	a->have = calloc(m->n_segments + 1, 1);
	a->copies = calloc(m->n_segments + 1, 1);
	if (!have || !copies || !a->have || !a->copies) {
		free(have);
		free(copies);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n && i < FR_OUTPUTS_MAX; i++) {
		if (net[i]->type != FR_ADDR_LAN)
			continue;
		a->asked[i] = true;
		if (ask_start(c, net[i], m, mf, len, priority, &q[i]) < 0) {
			a->rc[i] = -ENOMEM;
			snprintf(a->err[i], sizeof(a->err[i]), "%s",
				 "not asked: out of memory or threads");
		}
	}
	/* every question cut off at the deadline, then given the same
	 * time to end */
	for (unsigned i = 0; i < n && i < FR_OUTPUTS_MAX; i++)
		if (q[i].k)
			in_time[i] = ask_wait(q[i].k, deadline, false);
	double end = fr_now_s() + ASK_END_S;
	for (unsigned i = 0; i < n && i < FR_OUTPUTS_MAX; i++) {
		if (!q[i].k)
			continue;
		a->rc[i] = ask_end(&q[i], m, in_time[i], end, have, copies,
				   a->err[i], sizeof(a->err[i]));
		if (a->rc[i] >= 0 && a->first < 0) {
			a->first = (int)i;
			memcpy(a->have, have, m->n_segments);
			memcpy(a->copies, copies, m->n_segments);
		}
	}
	free(have);
	free(copies);
	return 0;
}

/* held[s] = 1 for what the site holds, asked through every LAN address
 * at once: the answer of the first in priority order kept, p says
 * through which, or why none answered. An address that did not answer
 * (refused, unreachable, silent, a password it does not take) has why
 * in unreach[i]: a send would not get through it now either. */
static int plan_held(const struct fr_config *c, const struct fr_plan_opts *o,
		     const struct fr_address *const *net, unsigned n,
		     struct fr_manifest *m, uint8_t *held,
		     char (*unreach)[256], struct fr_plan *p)
{
	uint8_t *mf = NULL;
	size_t len;
	struct answers a = {.first = -1};
	unsigned tried = 0, refused = 0, lines = 0;
	int rc = 0;

	snprintf(p->not_asked, sizeof(p->not_asked), "%s",
		 o->offline ? "--offline"
			    : "no LAN address to ask (a plan does not dial a "
			      "line)");
	if (!o->offline && (rc = fr_manifest_seal_out(m, &mf, &len)) == 0)
		rc = ask_site(c, o->priority, net, n, m, mf, len, &a);
	for (unsigned i = 0; rc == 0 && i < n && i < FR_OUTPUTS_MAX; i++) {
		if (!a.asked[i])
			continue;
		int r = a.rc[i];
		if ((int)i == a.first) {
			p->asked = true;
			p->not_asked[0] = '\0';
			snprintf(p->asked_via, sizeof(p->asked_via), "%s",
				 net[i]->name);
			held_count(m, r, a.have, a.copies, held, p);
		}
		if (r >= 0 || r == -EBUSY || r == -ENOMEM) {
			if (r == -ENOMEM)
				snprintf(unreach[i], 256, "%.255s", a.err[i]);
			continue; /* it answered (busy: a send waits) */
		}
		refused += r == FR_E_AUTH;
		fr_log(FR_LOG_DEBUG, "asking %s what it holds: %s", o->site,
		       a.err[i]);
		snprintf(unreach[i], 256, "%.255s", a.err[i]);
		if (p->asked)
			continue;
		/* every address's answer, the first in full */
		size_t at = tried++ ? strlen(p->not_asked) : 0;
		snprintf(p->not_asked + at, sizeof(p->not_asked) - at, "%s%s",
			 at ? "; " : "", a.err[i]);
	}
	free(mf);
	free(a.have);
	free(a.copies);
	for (unsigned i = 0; i < n; i++)
		lines += net[i]->type != FR_ADDR_LAN;
	if (rc == 0 && refused && refused == n && !lines)
		return FR_E_AUTH; /* as a send would be: nothing to plan over */
	return rc;
}

int fr_site_held(const struct fr_config *c, int priority,
		 const struct fr_address *const *net, unsigned n,
		 const struct fr_manifest *m, const uint8_t *mf, size_t len,
		 uint8_t *held)
{
	struct answers a;
	int rc = ask_site(c, priority, net, n, m, mf, len, &a);

	if (rc == 0 && a.first >= 0) {
		rc = a.rc[a.first];
		for (uint32_t s = 0; s < m->n_segments; s++)
			held[s] = rc == FR_HAVE_COMPLETE || a.have[s] ||
				  a.copies[s];
	} else if (rc == 0) {
		rc = -ENOENT;
	}
	free(a.have);
	free(a.copies);
	return rc;
}

/* The outputs planned are lines only (--via a line): the site is asked
 * what it holds through its LAN addresses, which the plan does not
 * otherwise use (their errors say nothing of the outputs). */
static int ask_by_lan(const struct fr_config *c, const struct fr_plan_opts *o,
		      const struct fr_address *const *net, unsigned n,
		      struct fr_manifest *m, uint8_t *held, struct fr_plan *p)
{
	const struct fr_address *all[64], *lan[FR_OUTPUTS_MAX];
	char unreach[FR_OUTPUTS_MAX][256];
	unsigned k = fr_config_addresses(c, o->site, all, 64), nl = 0;

	for (unsigned i = 0; i < n; i++)
		if (net[i]->type == FR_ADDR_LAN)
			return 0; /* asked already */
	for (unsigned i = 0; i < k && nl < FR_OUTPUTS_MAX; i++)
		if (all[i]->type == FR_ADDR_LAN)
			lan[nl++] = all[i];
	if (!nl)
		return 0;
	memset(unreach, 0, sizeof(unreach));
	int rc = plan_held(c, o, lan, nl, m, held, unreach, p);
	return rc == FR_E_AUTH ? 0 : rc; /* (a line may take its password) */
}

/* ---- the outputs and the courier ----------------------------------------- */

/* Output a as the simulator sees it: the rate it would start from (its
 * rate limit as it stands now caps it), its schedule's closures. */
static void plan_output(const struct fr_config *c, const struct fr_address *a,
			const struct fr_plan *p, struct fr_sim_link *L,
			struct fr_plan_output *o)
{
	int src;
	double rate = fr_link_rate(c, a, &src), stored;

	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", a->name);
	o->type = fr_line_profile(a->type)->name;
	o->measured_at = -1;
	if (src == FR_RATE_MEASURED &&
	    fr_link_load(c, a, &stored, &o->measured_at) < 0)
		o->measured_at = -1;
	double cap = fr_link_limit(a, fr_schedule_now());
	if (cap > 0 && cap < rate) {
		rate = cap;
		o->limited = true;
	}
	o->rate = rate;
	o->rate_src = fr_rate_src_name(src);
	/* a handshake, a dial: as a send counts it before it opens a link */
	int ssrc;
	o->setup = fr_link_setup(c, a, &ssrc);
	o->setup_src = fr_setup_src_name(ssrc);
	*L = (struct fr_sim_link){.name = o->name,
				  .rate = rate,
				  .rate_src = src,
				  .latency = FR_PLAN_LATENCY_S,
				  .setup = o->setup,
				  .depth = FR_PLAN_DEPTH};
	o->opens = fmax(
	    0, fr_plan_windows(&a->schedule, p->priority, fr_schedule_now(), L));
}

/* The courier as modelled: false (and why) when it cannot be. */
static bool plan_courier(const struct fr_address *a,
			 struct fr_courier_model *cm, struct fr_plan *p)
{
	struct fr_plan_courier *pc = &p->courier;
	double transit;

	p->has_courier = true;
	snprintf(pc->name, sizeof(pc->name), "%s", a->name);
	snprintf(pc->media, sizeof(pc->media), "%s", a->media);
	pc->transit_s = -1;
	if (a->transit[0] && fr_parse_duration_s(a->transit, &transit) == 0)
		pc->transit_s = transit;
	/* the model a send's split uses (links.c) */
	if (!fr_courier_model_of(a, cm)) {
		snprintf(pc->why, sizeof(pc->why), "its address has no %s",
			 !a->media[0] ? "media directory" : "transit time");
		return false;
	}
	/* a parcel could not be written there: a send would carry it all
	 * by network */
	int e = fr_medium_writable(a->media);
	if (e) {
		snprintf(pc->why, sizeof(pc->why),
			 "a parcel cannot be written to its media (%s)",
			 strerror(e));
		return false;
	}
	pc->write_rate = cm->write_rate;
	pc->import_rate = cm->import_rate;
	return true;
}

/* Smaller segments than the package's, tried over the same links: the
 * size that lands the bytes to send soonest, when it is sooner by 1% and
 * a second at least (a segment is the least a link can carry: a slow
 * link's last one may end long before the fast ones'). */
#define BETTER_SEG_MIN (1u << 20)
#define BETTER_SEGS_MAX (1u << 22)
static void smaller_segments(const struct fr_sim_link *links, unsigned n,
			     uint32_t seg_size, struct fr_plan *p)
{
	p->better_seg = 0;
	if (n < 2 || p->eta <= 0)
		return;
	for (uint32_t size = seg_size / 2; size >= BETTER_SEG_MIN; size /= 2) {
		uint64_t k = (p->send_bytes + size - 1) / size;
		struct fr_sim_result r;
		if (k > BETTER_SEGS_MAX)
			break;
		uint32_t *bytes = malloc((size_t)k * sizeof(*bytes));
		if (!bytes)
			break;
		for (uint64_t i = 0; i < k; i++)
			bytes[i] = i + 1 < k ? size
					     : (uint32_t)(p->send_bytes -
							  (k - 1) * size);
		int rc = fr_sim_run(links, n, NULL, (uint32_t)k, bytes, &r);
		free(bytes);
		double best = p->better_seg ? p->better_eta : p->eta;
		if (rc == 0 && r.eta < best * 0.99 && best - r.eta >= 1.0) {
			p->better_seg = size;
			p->better_eta = r.eta;
		}
	}
}

/* The segments still to send, simulated over the outputs (and the
 * courier). */
static int plan_run(const struct fr_config *c,
		    const struct fr_address *const *net, unsigned n,
		    const struct fr_address *courier,
		    const struct fr_manifest *m, const uint8_t *held,
		    char (*unreach)[256], struct fr_plan *p)
{
	struct fr_sim_link links[FR_OUTPUTS_MAX];
	unsigned output[FR_OUTPUTS_MAX], used = 0;
	struct fr_courier_model cm;
	uint32_t *bytes = malloc((m->n_segments + 1) * sizeof(*bytes));
	uint32_t *index = malloc((m->n_segments + 1) * sizeof(*index));
	uint32_t k = 0;
	int rc = -ENOMEM;

	if (bytes && index) {
		for (uint32_t s = 0; s < m->n_segments; s++)
			if (!held[s]) {
				bytes[k] = m->segments[s].length;
				index[k++] = s;
			}
		p->send_segments = k;
		p->send_bytes = m->total_size - p->held_bytes;
		for (unsigned i = 0; i < n; i++) {
			plan_output(c, net[i], p, &links[used],
				    &p->outputs[i]);
			memcpy(p->outputs[i].unreachable, unreach[i],
			       sizeof(p->outputs[i].unreachable));
			if (unreach[i][0])
				p->n_unreachable++;
			else
				output[used++] = i;
		}
		p->n_outputs = n;
		if (!used) /* none answered: as if they would */
			for (unsigned i = 0; i < n; i++) {
				plan_output(c, net[i], p, &links[i],
					    &p->outputs[i]);
				memcpy(p->outputs[i].unreachable, unreach[i],
				       sizeof(p->outputs[i].unreachable));
				output[used++] = i;
			}
		bool cr = courier && plan_courier(courier, &cm, p);
		struct fr_plan_input in = {k,	  bytes, index,
					   links, used,	 cr ? &cm : NULL,
					   output};
		rc = fr_plan_compute(&in, p);
		p->seg_size = m->seg_size;
		if (rc == 0)
			smaller_segments(links, used, m->seg_size, p);
	}
	if (rc < 0)
		fr_log(FR_LOG_ERROR, "cannot plan '%s' to %s: %s", p->name,
		       p->site, fr_strerror(rc));
	free(bytes);
	free(index);
	return rc;
}

int fr_plan(const struct fr_config *c, const struct fr_plan_opts *o,
	    struct fr_plan *p)
{
	const struct fr_address *net[FR_OUTPUTS_MAX], *courier;
	char unreach[FR_OUTPUTS_MAX][256];
	struct fr_manifest m = {0};
	uint8_t *held = NULL;
	unsigned n;
	int rc;

	memset(p, 0, sizeof(*p));
	memset(unreach, 0, sizeof(unreach));
	p->now = (int64_t)time(NULL);
	p->priority = o->priority;
	snprintf(p->site, sizeof(p->site), "%s", o->site);
	signal(SIGPIPE, SIG_IGN); /* a site that hangs up on the question */
	if ((rc = plan_addresses(c, o, fr_schedule_now(), net, &n, &courier)) <
		0 ||
	    (rc = plan_source(c, o, p, &m)) < 0)
		goto out;
	if (!(held = calloc(m.n_segments + 1, 1))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = plan_held(c, o, net, n, &m, held, unreach, p)) < 0) {
		if (rc == FR_E_AUTH)
			fr_log(FR_LOG_ERROR,
			       "%s refused the account on every address: %s",
			       o->site, p->not_asked);
		else
			fr_log(FR_LOG_ERROR,
			       "cannot encode the manifest of '%s': %s",
			       p->name, fr_strerror(rc));
		goto out;
	}
	if (!p->asked && !o->offline && (rc = ask_by_lan(c, o, net, n, &m,
							 held, p)) < 0)
		goto out;
	rc = plan_run(c, net, n, courier, &m, held, unreach, p);
out:
	free(held);
	fr_manifest_fini(&m);
	return rc;
}
