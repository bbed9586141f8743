/*
 * bench.c - `ferry bench link` at the top: which address is measured, its
 * line dialled first (a RAS address) and hung up after, one thread per
 * stream (out/probe.c), the results put together (core/benchcalc.c) and
 * kept as the address's measured rate (links.c) for the next send and
 * `ferry plan`. Nothing is printed here: tools/bench_link.c does that.
 *
 * A reverse measurement (the site sends) is not stored: the stored rate
 * is what this machine's sends to the site start from, and a link may
 * carry one way more than the other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sched/fr_sched.h"

#define ADDR_MAX 64

/* The address o asks for: o->via among the site's, else its first
 * network address. FR_E_CONFIG, logged, when there is none. */
static int pick_address(const struct fr_config *c, const struct fr_bench_opts *o,
			const struct fr_address **out)
{
	const struct fr_address *list[ADDR_MAX];
	unsigned n = fr_config_addresses(c, o->site, list, ADDR_MAX);
	char names[512] = "";

	if (!n) {
		fr_log(FR_LOG_ERROR, "config '%s': no address to site '%s'",
		       c->path, o->site);
		return FR_E_CONFIG;
	}
	for (unsigned i = 0; i < n; i++) {
		size_t l = strlen(names);
		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "",
			 list[i]->name);
		if (o->via && strcmp(list[i]->name, o->via))
			continue;
		if (list[i]->type == FR_ADDR_COURIER) {
			if (!o->via)
				continue;
			fr_log(FR_LOG_ERROR,
			       "address '%s' of %s is a courier: there is no "
			       "network to measure on it",
			       o->via, o->site);
			return FR_E_CONFIG;
		}
		*out = list[i];
		return 0;
	}
	if (o->via)
		fr_log(FR_LOG_ERROR, "config '%s': %s has no address '%s' (it has: %s)",
		       c->path, o->site, o->via, names);
	else
		fr_log(FR_LOG_ERROR,
		       "config '%s': %s has no network address to measure (only "
		       "a courier: %s)",
		       c->path, o->site, names);
	return FR_E_CONFIG;
}

struct run {
	struct fr_probe_gate gate;
	struct fr_probe p[FR_BENCH_STREAMS_MAX];
	pthread_t t[FR_BENCH_STREAMS_MAX];
	bool started[FR_BENCH_STREAMS_MAX];
	unsigned n;
	bool shared; /* a send used the address meanwhile */
};

static void *stream_main(void *arg)
{
	struct fr_probe *p = arg;

	fr_probe_run(p);
	atomic_fetch_add(&p->gate->ended, 1);
	return NULL;
}

/* While the streams run: the progress line's facts, 4 times a second;
 * and every second, whether a send uses the address too. */
static void watch(struct run *run, const struct fr_config *c,
		  const struct fr_address *a, const struct fr_bench_opts *o)
{
	uint64_t last = 0, t_last = fr_now_ns();

	for (unsigned k = 0; atomic_load(&run->gate.ended) < run->n; k++) {
		usleep(250000);
		if (k % 4 == 0 && !run->shared && fr_link_shared(c, a))
			run->shared = true;
		if (!o->progress)
			continue;
		uint64_t b = 0, now = fr_now_ns(), t0 = run->gate.t0_ns;
		for (unsigned i = 0; i < run->n; i++)
			b += atomic_load(&run->p[i].bytes);
		struct fr_bench_progress pr = {
			.elapsed = t0 ? (double)(now - t0) / 1e9 : 0,
			.seconds = o->seconds,
			.bytes = b,
			.bps = (double)(b - last) * 8e9 / (double)(now - t_last),
			.phase = t0 ? "measuring" : "connecting",
		};
		last = b;
		t_last = now;
		o->progress(o->progress_arg, &pr);
	}
}

/* One thread per stream; the first failure's code (logged). */
static int run_streams(const struct fr_config *c, const struct fr_address *a,
		       const struct fr_bench_opts *o, uint32_t frame,
		       struct run *run)
{
	int rc = 0;

	pthread_mutex_init(&run->gate.mu, NULL);
	pthread_cond_init(&run->gate.cv, NULL);
	run->gate.n = run->n = o->streams;
	for (unsigned i = 0; i < run->n; i++) {
		struct fr_probe *p = &run->p[i];
		p->a = a;
		p->gate = &run->gate;
		p->req = (struct fr_bench_req){
			.flags = o->reverse ? FR_BENCH_F_REVERSE : 0,
			.seconds = o->seconds,
			.frame = frame,
			.stream = (uint16_t)i,
			.streams = (uint16_t)o->streams,
		};
		run->started[i] =
			pthread_create(&run->t[i], NULL, stream_main, p) == 0;
		if (!run->started[i]) {
			p->rc = -EAGAIN; /* counted, as if ended */
			snprintf(p->err, sizeof(p->err), "cannot start a thread");
			pthread_mutex_lock(&run->gate.mu);
			run->gate.failed = true;
			pthread_cond_broadcast(&run->gate.cv);
			pthread_mutex_unlock(&run->gate.mu);
			atomic_fetch_add(&run->gate.ended, 1);
		}
	}
	watch(run, c, a, o);
	for (unsigned i = 0; i < run->n; i++)
		if (run->started[i])
			pthread_join(run->t[i], NULL);
	for (unsigned i = 0; i < run->n && !rc; i++)
		if (run->p[i].rc < 0 && run->p[i].rc != -ECANCELED) {
			rc = run->p[i].rc;
			fr_log(FR_LOG_ERROR, "%s", run->p[i].err);
		}
	pthread_cond_destroy(&run->gate.cv);
	pthread_mutex_destroy(&run->gate.mu);
	return rc;
}

/* The streams' reports into r: intervals, totals, the sum, rtt. */
static void fill_result(const struct run *run, const struct fr_bench_opts *o,
			struct fr_bench_result *r)
{
	double avg_sum = 0, min = -1;
	unsigned n_avg = 0;

	for (unsigned i = 0; i < run->n; i++) {
		const struct fr_bench_report *rep = &run->p[i].rep;
		struct fr_bench_stream *st = &r->st[i];
		st->n_iv = fr_bench_intervals(rep->bytes, rep->n,
					      (double)rep->dur_ns / 1e9, o->omit,
					      st->iv);
		st->rtt_min_ms = rep->tcp.rtt_min_us ? rep->tcp.rtt_min_us / 1e3 : -1;
		st->rtt_avg_ms = rep->tcp.rtt_avg_us ? rep->tcp.rtt_avg_us / 1e3 : -1;
		st->retransmits = rep->tcp.retrans;
		st->capped = rep->flags & FR_BENCH_R_CAPPED;
		r->retransmits += st->retransmits;
		if (st->rtt_avg_ms > 0) {
			avg_sum += st->rtt_avg_ms;
			n_avg++;
		}
		if (st->rtt_min_ms > 0 && (min < 0 || st->rtt_min_ms < min))
			min = st->rtt_min_ms;
	}
	r->rtt_avg_ms = n_avg ? avg_sum / n_avg : -1;
	r->rtt_min_ms = min;
	fr_bench_sum(r);
}

static void store_result(const struct fr_config *c, const struct fr_address *a,
			 const struct fr_bench_opts *o, bool shared,
			 struct fr_bench_result *r)
{
	int rc;

	if (!o->store)
		snprintf(r->not_stored, sizeof(r->not_stored), "--no-store");
	else if (shared)
		snprintf(r->not_stored, sizeof(r->not_stored),
			 "a send used the address while it was measured: the "
			 "figure is a share of the link");
	else if (o->reverse)
		snprintf(r->not_stored, sizeof(r->not_stored),
			 "--reverse measures what %s sends here, not this "
			 "address",
			 a->site);
	else if (!(r->received_bps > 0))
		snprintf(r->not_stored, sizeof(r->not_stored),
			 "nothing was received after the warm-up");
	else if ((rc = fr_link_save(c, a, r->received_bps / 8,
				    r->stored_at = time(NULL))) < 0) {
		fr_log(FR_LOG_WARN, "cannot keep the rate under '%s/links': %s",
		       c->store, fr_strerror(rc));
		snprintf(r->not_stored, sizeof(r->not_stored),
			 "cannot write it in the store: %s", fr_strerror(rc));
	} else
		r->stored = true;
	if (!r->stored)
		r->stored_at = -1;
}

static void result_head(const struct fr_address *a,
			const struct fr_bench_opts *o, uint32_t frame,
			struct fr_bench_result *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->site, sizeof(r->site), "%s", a->site);
	snprintf(r->address, sizeof(r->address), "%s", a->name);
	snprintf(r->host, sizeof(r->host), "%s", a->host);
	r->type = fr_line_profile(a->type)->name;
	r->seconds = o->seconds;
	r->omit = o->omit;
	r->streams = o->streams;
	r->reverse = o->reverse;
	r->frame = frame;
	r->rtt_min_ms = r->rtt_avg_ms = -1;
	r->stored_at = -1;
}

int fr_bench_link(const struct fr_config *c, const struct fr_bench_opts *o,
		  struct fr_bench_result *r)
{
	const struct fr_address *a;
	struct fr_line *line = NULL;
	char err[800] = "";
	int rc;

	if (o->streams < 1 || o->streams > FR_BENCH_STREAMS_MAX ||
	    o->seconds < 1 || o->seconds > FR_BENCH_SECONDS_MAX ||
	    o->omit >= o->seconds)
		return -EINVAL;
	if ((rc = pick_address(c, o, &a)) < 0)
		return rc;
	uint32_t frame = fr_line_profile(a->type)->frame;
	if (a->type == FR_ADDR_LAN || !frame)
		frame = FR_BENCH_FRAME_LAN;
	result_head(a, o, frame, r);
	if (a->type != FR_ADDR_LAN) {
		if (o->progress) {
			struct fr_bench_progress pr = {.seconds = o->seconds,
						       .phase = "dialling"};
			o->progress(o->progress_arg, &pr);
		}
		if ((rc = fr_line_take(c, a, true, &line, &r->dialled, err,
				       sizeof(err))) < 0) {
			fr_log(FR_LOG_ERROR, "%s", err);
			return rc;
		}
	}
	struct run *run = calloc(1, sizeof(*run));
	/* a send over the address meanwhile learns nothing from it */
	fr_link_bench_mark(c, a, true);
	rc = run ? run_streams(c, a, o, frame, run) : -ENOMEM;
	fr_link_bench_mark(c, a, false);
	bool shared = run && run->shared;
	if (rc == 0)
		fill_result(run, o, r);
	free(run);
	if (line)
		r->hung_up = fr_line_release(line, r->dialled,
					     "the measurement is over");
	if (rc < 0)
		return rc;
	store_result(c, a, o, shared, r);
	return 0;
}
