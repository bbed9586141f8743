/*
 * engine_assign.c - the scheduler's assignment (assign.c) driven by the
 * link simulator (sim.c) over links from 64 kbit/s to 1 Gbit/s, against
 * the targets: the total time within 5% of the lower bound (the
 * package's bytes over the sum of the link rates, plus one segment on
 * the fastest link), never slower than the best single link, a drop and
 * a closed window moving work to the others, no segment sent twice but
 * by the endgame or after a failure, a slow line never holding the last
 * segment, the estimator, the courier's split, and a thread-safety
 * smoke test. Every number asserted comes out of a simulation.
 *
 * Packages are hundreds of 8 MiB segments (ferry's default): a few
 * seconds to an hour of sending, so that the bound's extra segment is
 * small beside the total and 5% is a real margin; with a package of a
 * few segments the bound would be mostly that one segment and say
 * nothing about the sharing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_internal.h"

#define SEG (8u << 20)
#define KBIT(x) ((x) * 1e3 / 8)
#define MBIT(x) ((x) * 1e6 / 8)
#define GBIT(x) ((x) * 1e9 / 8)

static uint32_t *segs(uint32_t n)
{
	uint32_t *b = malloc(n * sizeof(*b));

	cr_assert(b);
	for (uint32_t i = 0; i < n; i++)
		b[i] = SEG;
	b[n - 1] = SEG / 3; /* the last one shorter */
	return b;
}

static double total(const uint32_t *b, uint32_t n)
{
	double t = 0;

	for (uint32_t i = 0; i < n; i++)
		t += b[i];
	return t;
}

static struct fr_sim_link lk(const char *name, double rate, double lat)
{
	return (struct fr_sim_link){.name = name, .rate = rate,
				    .rate_src = FR_RATE_CONFIGURED,
				    .latency = lat, .depth = 2};
}

static bool up_at(const struct fr_sim_link *L, double t)
{
	for (unsigned i = 0; i < L->n_off; i++)
		if (t >= L->off[i].from && (L->off[i].to < 0 || t < L->off[i].to))
			return false;
	return true;
}

/* The fluid bound: when the links, at their true rates while up, could
 * have carried every byte, plus one segment on the fastest link. */
static double bound(const struct fr_sim_link *L, unsigned n, double bytes)
{
	double t = 0, dt = 0.01, fastest = 0;

	for (unsigned i = 0; i < n; i++)
		fastest = fmax(fastest, L[i].rate);
	while (bytes > 0) {
		double cap = 0;
		for (unsigned i = 0; i < n; i++)
			cap += up_at(&L[i], t) ? L[i].rate : 0;
		bytes -= cap * dt;
		t += dt;
		cr_assert(t < 1e7, "the links never carry it");
	}
	return t + SEG / fastest;
}

/* A run that must finish with every segment acked once and none sent
 * twice for no reason. */
static void run(const struct fr_sim_link *L, unsigned n,
		const struct fr_sim_courier *cr, uint32_t nseg,
		const uint32_t *b, struct fr_sim_result *r)
{
	uint32_t acked = 0;

	cr_assert_eq(fr_sim_run(L, n, cr, nseg, b, r), 0);
	for (unsigned o = 0; o < r->n; o++)
		acked += r->out[o].st.segs_acked;
	cr_assert_eq(acked, nseg, "%u of %u segments acked", acked, nseg);
	cr_assert_eq(r->dups, 0, "%u segments sent twice for no reason",
		     r->dups);
}

static void show(const char *what, const struct fr_sim_result *r, double lb)
{
	cr_log_info("%s: eta %.2f s, bound %.2f s (%+.2f%%), copies %u, "
		    "resent %u", what, r->eta, lb, 100 * (r->eta / lb - 1),
		    r->copies, r->resent);
	for (unsigned o = 0; o < r->n; o++)
		cr_log_info("  %-8s %5u segs, finish %9.2f s, rate %.4g (%s), "
			    "sends %u, wasted %u", r->out[o].st.name,
			    r->out[o].st.segs_acked, r->out[o].finish,
			    r->out[o].st.rate,
			    fr_rate_src_name(r->out[o].st.rate_src),
			    r->out[o].sends, r->out[o].wasted);
}

/* Within 5% of the bound, and no slower than any link alone. */
static void near_bound(const char *what, const struct fr_sim_link *L,
		       unsigned n, uint32_t nseg)
{
	uint32_t *b = segs(nseg);
	struct fr_sim_result r, one;
	double lb = bound(L, n, total(b, nseg));

	run(L, n, NULL, nseg, b, &r);
	show(what, &r, lb);
	cr_assert(r.eta <= 1.05 * lb, "%s: %.2f s, bound %.2f s", what, r.eta,
		  lb);
	for (unsigned i = 0; i < n; i++) {
		if (fr_sim_run(&L[i], 1, NULL, nseg, b, &one) == -EDEADLK)
			continue; /* down for good before the end */
		cr_assert(r.eta <= one.eta, "%s: %.2f s, %s alone %.2f s", what,
			  r.eta, L[i].name, one.eta);
	}
	free(b);
}

/* ---- the bound ------------------------------------------------------------ */

Test(assign, two_links)
{
	struct fr_sim_link L[] = {lk("lan", MBIT(100), 0.002),
				  lk("wan", MBIT(20), 0.02)};
	near_bound("100M + 20M", L, 2, 200);
}

Test(assign, two_slow_lines)
{
	/* 64 kbit/s carries a segment in 17 minutes: it earns a few */
	struct fr_sim_link L[] = {lk("2M", MBIT(2), 0.05),
				  lk("64k", KBIT(64), 0.2)};
	near_bound("2M + 64k", L, 2, 100);
}

Test(assign, three_links)
{
	struct fr_sim_link L[] = {lk("20M", MBIT(20), 0.01),
				  lk("5M", MBIT(5), 0.03),
				  lk("isdn", KBIT(128), 0.1)};
	near_bound("20M + 5M + 128k", L, 3, 300);
}

Test(assign, three_fast_links)
{
	struct fr_sim_link L[] = {lk("1G", GBIT(1), 0.0005),
				  lk("100M", MBIT(100), 0.002),
				  lk("isdn", KBIT(128), 0.1)};
	near_bound("1G + 100M + 128k", L, 3, 500);
}

Test(assign, five_links)
{
	struct fr_sim_link L[] = {lk("1G", GBIT(1), 0.0005),
				  lk("100M", MBIT(100), 0.002),
				  lk("10M", MBIT(10), 0.01),
				  lk("2M", MBIT(2), 0.05),
				  lk("64k", KBIT(64), 0.2)};
	near_bound("1G + 100M + 10M + 2M + 64k", L, 5, 1000);
}

Test(assign, five_slow_links)
{
	struct fr_sim_link L[] = {lk("10M", MBIT(10), 0.01),
				  lk("2M", MBIT(2), 0.05),
				  lk("512k", KBIT(512), 0.1),
				  lk("128k", KBIT(128), 0.1),
				  lk("64k", KBIT(64), 0.2)};
	near_bound("10M + 2M + 512k + 128k + 64k", L, 5, 200);
}
