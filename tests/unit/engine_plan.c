/*
 * engine_plan.c - the computing part of `ferry plan` (sched/plan.c): a
 * schedule turned into a link's off intervals from a given moment (TZ=UTC,
 * so a time_t is a known weekday and hour), and the send simulated over
 * the links with and without a courier: the outputs carry exactly what is
 * to send, the ETA is no sooner than the bytes over the sum of the rates,
 * an address closed now starts when it opens, held segments keep their
 * package indices, and the courier splits only when that is sooner.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fr_internal.h"

static void utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

TestSuite(plan, .init = utc);

/* 2026-11-23 was a Monday: day 0 .. 6 = Mon .. Sun, at h:m UTC. */
static time_t at(int day, int h, int m)
{
	return (time_t)1795392000 + day * 86400 + h * 3600 + m * 60;
}

enum { MON, TUE, WED, THU, FRI, SAT, SUN };

static struct fr_schedule sched(const char *text)
{
	struct fr_schedule s;
	char err[300];

	memset(&s, 0, sizeof(s));
	cr_assert_eq(fr_schedule_parse(&s, text, err, sizeof(err)), 0, "%s",
		     err);
	return s;
}

/* ---- schedules as off intervals ------------------------------------------ */

static const char *WEEK = "mon-fri 08-18 high; mon-fri 18-08 all; sat-sun all";

Test(plan, windows_closed_now_opens_later)
{
	struct fr_schedule s = sched(WEEK);
	struct fr_sim_link L = {0};

	/* Wednesday 10:30, medium: closed until 18:00, then again from
	 * Thursday and Friday 08:00 to 18:00 */
	double first = fr_plan_windows(&s, FR_PRIO_MEDIUM, at(WED, 10, 30), &L);
	cr_assert_float_eq(first, 7.5 * 3600, 1e-9);
	/* now, Thu and Fri, three weeks of five days, Mon-Wed of the fifth
	 * week: the last one, cut by the horizon, still ends at 18:00 */
	cr_assert_eq(L.n_off, 21);
	cr_assert_float_eq(L.off[20].from, 28 * 86400 - 2.5 * 3600, 1e-9);
	cr_assert_float_eq(L.off[20].to, L.off[20].from + 10 * 3600, 1e-9);
	cr_assert_float_eq(L.off[0].from, 0, 1e-9);
	cr_assert_float_eq(L.off[0].to, 7.5 * 3600, 1e-9);
	cr_assert_float_eq(L.off[1].from, 21.5 * 3600, 1e-9);
	cr_assert_float_eq(L.off[1].to, 31.5 * 3600, 1e-9);
	cr_assert_float_eq(L.off[2].from, 45.5 * 3600, 1e-9);
	cr_assert_float_eq(L.off[2].to, 55.5 * 3600, 1e-9);
}

Test(plan, windows_repeat_each_week)
{
	struct fr_schedule s = sched(WEEK);
	struct fr_sim_link L = {0};

	/* Saturday noon, low: open now; five closures a week, four weeks */
	cr_assert_float_eq(fr_plan_windows(&s, FR_PRIO_LOW, at(SAT, 12, 0), &L),
			   0, 1e-9);
	cr_assert_eq(L.n_off, 20);
	cr_assert_float_eq(L.off[0].from, (36 + 8) * 3600, 1e-9); /* Mon 08 */
	cr_assert_float_eq(L.off[5].from, L.off[0].from + 7 * 86400, 1e-9);
	for (unsigned i = 0; i < L.n_off; i++)
		cr_assert_float_eq(L.off[i].to - L.off[i].from, 10 * 3600,
				   1e-9);
}

Test(plan, windows_open_to_the_priority)
{
	struct fr_schedule s = sched(WEEK), none = {0};
	struct fr_sim_link L = {.n_off = 7};

	cr_assert_float_eq(
	    fr_plan_windows(&s, FR_PRIO_HIGH, at(WED, 10, 30), &L), 0, 1e-9);
	cr_assert_eq(L.n_off, 0, "always open to high");
	L.n_off = 7;
	cr_assert_float_eq(
	    fr_plan_windows(&none, FR_PRIO_LOW, at(WED, 10, 30), &L), 0, 1e-9);
	cr_assert_eq(L.n_off, 0, "no schedule: always open");
}

Test(plan, windows_never_open)
{
	struct fr_schedule s = sched("daily high");
	struct fr_sim_link L = {0};

	cr_assert_float_eq(
	    fr_plan_windows(&s, FR_PRIO_MEDIUM, at(MON, 9, 0), &L), -1, 1e-9);
	cr_assert_eq(L.n_off, 0);
}

Test(plan, windows_past_the_slots_count_as_open)
{
	/* open one hour in two: twelve closures a day */
	struct fr_schedule s = sched("00-01 all; 02-03 all; 04-05 all; 06-07 "
				     "all; 08-09 all; 10-11 all; 12-13 all; "
				     "14-15 all; 16-17 all; 18-19 all; 20-21 "
				     "all; 22-23 all");
	struct fr_sim_link L = {0};

	cr_assert_float_eq(fr_plan_windows(&s, FR_PRIO_LOW, at(TUE, 0, 10), &L),
			   0, 1e-9);
	cr_assert_eq(L.n_off, FR_SIM_MAX_OFF);
	for (unsigned i = 0; i < L.n_off; i++) {
		cr_assert_float_eq(L.off[i].from, 50 * 60 + i * 7200.0, 1e-9);
		cr_assert_float_eq(L.off[i].to, L.off[i].from + 3600, 1e-9);
	}
}

/* ---- the send simulated -------------------------------------------------- */

#define MIB (1u << 20)

static uint32_t *segs(uint32_t n, uint32_t size)
{
	uint32_t *b = malloc(n * sizeof(*b));

	cr_assert(b);
	for (uint32_t i = 0; i < n; i++)
		b[i] = size;
	b[n - 1] = size / 3;
	return b;
}

static double sum(const uint32_t *b, uint32_t n)
{
	double t = 0;

	for (uint32_t i = 0; i < n; i++)
		t += b[i];
	return t;
}

static struct fr_sim_link lk(const char *name, double rate)
{
	return (struct fr_sim_link){.name = name,
				    .rate = rate,
				    .rate_src = FR_RATE_CONFIGURED,
				    .latency = FR_PLAN_LATENCY_S,
				    .depth = FR_PLAN_DEPTH};
}

/* What every plan holds: the outputs carry what is to send, each
 * finishing by the ETA, which is no sooner than the bytes over the sum
 * of the rates. */
static void plan_holds(const struct fr_plan *p, const struct fr_sim_link *L,
		       unsigned n, const uint32_t *b, uint32_t k)
{
	uint32_t s = 0;
	uint64_t bytes = 0;
	double rate = 0;

	for (unsigned i = 0; i < n; i++) {
		s += p->outputs[i].segments;
		bytes += p->outputs[i].bytes;
		cr_assert_leq(p->outputs[i].finish, p->eta);
		rate += L[i].rate;
	}
	cr_assert_eq(s, k);
	cr_assert_eq((double)bytes, sum(b, k));
	cr_assert_geq(p->eta, sum(b, k) / rate * 0.999);
}

Test(plan, two_links_share_by_rate)
{
	struct fr_sim_link L[2] = {lk("fast", 4e6), lk("slow", 1e6)};
	uint32_t *b = segs(34, MIB);
	struct fr_plan p = {0};
	struct fr_plan_input in = {34, b, NULL, L, 2, NULL, NULL};

	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	plan_holds(&p, L, 2, b, 34);
	cr_assert_gt(p.outputs[1].segments, 0);
	cr_assert_gt(p.outputs[0].segments, 2 * p.outputs[1].segments);
	/* within 5% of the fluid bound plus one segment on the fast link */
	cr_assert_leq(p.eta, (sum(b, 34) / 5e6 + MIB / 4e6) * 1.05, "eta %f",
		      p.eta);
	free(b);
}

/* an address that did not answer is left out: the links simulated are
 * the others, their results in their own outputs; the one left out is
 * not touched */
Test(plan, outputs_left_out)
{
	struct fr_sim_link L[2] = {lk("fast", 4e6), lk("slow", 1e6)};
	uint32_t *b = segs(34, MIB);
	struct fr_plan p = {.outputs = {[1] = {.segments = 77}}};
	unsigned out[2] = {2, 0};
	struct fr_plan_input in = {34, b, NULL, L, 2, NULL, out};

	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	cr_assert_eq(p.outputs[1].segments, 77);
	cr_assert_eq(p.outputs[0].segments + p.outputs[2].segments, 34);
	cr_assert_gt(p.outputs[2].segments, 2 * p.outputs[0].segments);
	cr_assert_gt(p.outputs[0].segments, 0);
	cr_assert_leq(p.outputs[2].finish, p.eta);
	free(b);
}

Test(plan, nothing_to_send)
{
	struct fr_sim_link L[1] = {lk("lan", 4e6)};
	struct fr_courier_model cm = {150e6, 3600, 100e6, 0};
	struct fr_plan p = {.eta = 9,
			    .outputs = {{.segments = 3, .finish = 2}}};
	struct fr_plan_input in = {0, NULL, NULL, L, 1, &cm, NULL};

	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	cr_assert_eq(p.eta, 0);
	cr_assert_eq(p.outputs[0].segments, 0);
	cr_assert_eq(p.outputs[0].finish, 0);
	cr_assert_not(p.courier.modelled);
	cr_assert_str_eq(p.courier.why, "nothing to send");
}

Test(plan, bad_input)
{
	struct fr_sim_link L[FR_ASSIGN_MAX_OUT];
	struct fr_courier_model cm = {150e6, 3600, 100e6, 0};
	uint32_t *b = segs(4, MIB);
	struct fr_plan p = {0};

	for (unsigned i = 0; i < FR_ASSIGN_MAX_OUT; i++)
		L[i] = lk("x", 1e6);
	struct fr_plan_input none = {4, b, NULL, L, 0, NULL, NULL};
	cr_assert_eq(fr_plan_compute(&none, &p), -EINVAL);
	struct fr_plan_input full = {4,	 b,   NULL, L, FR_ASSIGN_MAX_OUT,
				     &cm, NULL};
	cr_assert_eq(fr_plan_compute(&full, &p), -EINVAL,
		     "no room for the courier");
	free(b);
}

Test(plan, an_output_that_opens_later)
{
	struct fr_sim_link L[2] = {lk("lan", 4e6), lk("isdn", 4e6)};
	uint32_t *b = segs(400, MIB);
	struct fr_plan p = {0};
	struct fr_plan_input in = {400, b, NULL, L, 2, NULL, NULL};

	/* the second opens 60 s from now, half way through the first's
	 * 105 s alone */
	L[1].off[0].from = 0;
	L[1].off[0].to = 60;
	L[1].n_off = 1;
	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	plan_holds(&p, L, 2, b, 400);
	double alone = sum(b, 400) / 4e6;
	cr_assert_gt(p.outputs[1].segments, 50);
	cr_assert_lt(p.outputs[1].segments, p.outputs[0].segments);
	/* both together from 60 s: 60 + (alone - 60) / 2 */
	cr_assert_float_eq(p.eta, 60 + (alone - 60) / 2, 2.0, "eta %f", p.eta);
	/* closed until after the first is done alone: it carries nothing */
	L[1].off[0].to = 1000;
	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	cr_assert_eq(p.outputs[1].segments, 0);
	cr_assert_eq(p.outputs[1].finish, 0);
	cr_assert_float_eq(p.eta, alone, 1.0);
	free(b);
}

Test(plan, a_window_that_closes_during_the_send)
{
	struct fr_sim_link L[2] = {lk("lan", 4e6), lk("line", 4e6)};
	uint32_t *b = segs(400, MIB);
	struct fr_plan p = {0};
	struct fr_plan_input in = {400, b, NULL, L, 2, NULL, NULL};

	L[1].off[0].from = 20; /* closes after 20 s, for good */
	L[1].off[0].to = -1;
	L[1].n_off = 1;
	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	plan_holds(&p, L, 2, b, 400);
	cr_assert_leq(p.outputs[1].finish, 20);
	double alone = sum(b, 400) / 4e6;
	/* 20 s of both, the rest on the first */
	cr_assert_float_eq(p.eta, 20 + (alone - 40), 2.0, "eta %f", p.eta);
	free(b);
}

Test(plan, held_segments_keep_their_index)
{
	/* the site holds segments 0-9 of 40: the courier's first segment is
	 * named by its index in the package */
	struct fr_sim_link L[1] = {lk("isdn", 16e3)};
	struct fr_courier_model cm = {150e6, 3600, 100e6, 0};
	uint32_t *b = segs(30, 8 * MIB), idx[30];
	struct fr_plan p = {0};

	for (uint32_t i = 0; i < 30; i++)
		idx[i] = 10 + i;
	struct fr_plan_input in = {30, b, idx, L, 1, &cm, NULL};
	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	cr_assert(p.courier.split, "%s", p.courier.why);
	cr_assert_eq(p.courier.first, 10 + p.courier.net_segments);
	cr_assert_eq(p.courier.net_segments + p.courier.segments, 30);
	cr_assert_eq((double)(p.courier.net_bytes + p.courier.bytes),
		     sum(b, 30));
	free(b);
}

Test(plan, courier_far_away_no_split)
{
	struct fr_sim_link L[2] = {lk("fast", 4e6), lk("slow", 1e6)};
	struct fr_courier_model cm = {150e6, 2 * 86400, 100e6, 0};
	uint32_t *b = segs(34, MIB);
	struct fr_plan p = {0};
	struct fr_plan_input in = {34, b, NULL, L, 2, &cm, NULL};

	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	plan_holds(&p, L, 2, b, 34);
	cr_assert(p.courier.modelled);
	cr_assert_not(p.courier.split);
	cr_assert_str_eq(p.courier.why, "the network alone is sooner");
	cr_assert_float_eq(p.courier.alone,
			   fr_courier_time(&cm, (uint64_t)sum(b, 34)), 1e-6);
	free(b);
}

Test(plan, courier_near_a_split)
{
	/* 2 GiB over 5 MB/s is ~430 s; a parcel an hour away loses, one
	 * a minute away wins the back of it */
	struct fr_sim_link L[2] = {lk("fast", 4e6), lk("slow", 1e6)};
	struct fr_courier_model cm = {150e6, 60, 100e6, 0};
	uint32_t *b = segs(256, 8 * MIB);
	struct fr_plan p = {0};
	struct fr_plan_input in = {256, b, NULL, L, 2, &cm, NULL};

	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	double net = p.eta;
	cr_assert(p.courier.split, "%s", p.courier.why);
	cr_assert_gt(p.courier.net_segments, 0);
	cr_assert_gt(p.courier.segments, p.courier.net_segments,
		     "most of it by the parcel");
	cr_assert_eq(p.courier.first, p.courier.net_segments);
	cr_assert_lt(p.courier.eta, net);
	cr_assert_float_eq(p.courier.gain, net - p.courier.eta, 1e-9);
	/* network and parcel finish about together */
	double tail = fr_courier_time(&cm, p.courier.bytes);
	cr_assert_float_eq(p.courier.eta, tail, 10.0);
	/* the outputs still say what the network alone would do */
	plan_holds(&p, L, 2, b, 256);
	cm.transit_s = 3600;
	cr_assert_eq(fr_plan_compute(&in, &p), 0);
	cr_assert_not(p.courier.split);
	free(b);
}
