/*
 * engine_adapt.c - the adaptive compression level: raw on a fast link, a
 * high level on a slow link with compressible data, raw again when the
 * data does not compress or the receiver's storage is the bottleneck, and
 * the probing schedule while raw.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "fr_internal.h"

#define SEGLEN (8u << 20)

/* One segment compressed at level with the given ratio and speed. */
static void measure(struct fr_adapt *a, int level, double ratio,
		    double bytes_per_s)
{
	uint32_t stored = (uint32_t)((double)SEGLEN / ratio);

	fr_adapt_segment(a, level, SEGLEN, stored, (double)SEGLEN / bytes_per_s);
}

/* The wire moved bytes at rate for a second. */
static void wire(struct fr_adapt *a, double rate)
{
	fr_adapt_wire(a, (uint64_t)rate, 1.0);
}

/* ---- init and measurement bookkeeping ----------------------------------- */

Test(adapt, init)
{
	struct fr_adapt a;

	memset(&a, 0x5a, sizeof(a));
	fr_adapt_init(&a, 2, -1);
	cr_assert_eq(a.workers, 2);
	cr_assert_eq(a.level, 0, "automatic starts raw");
	cr_assert(a.wire_rate == 0.0);
	cr_assert(a.sink_stall == 0.0);
	for (int l = 0; l < 20; l++)
		cr_assert_not(a.measured[l], "level %d measured at init", l);
	/* priors: faster levels compress less */
	cr_assert(a.speed[1] > a.speed[19]);
	cr_assert(a.ratio[19] > a.ratio[1]);
	cr_assert(a.ratio[0] == 1.0);

	fr_adapt_init(&a, 0, 7);
	cr_assert_eq(a.workers, 1, "workers <= 0 counts as one");
	cr_assert_eq(a.level, 7);
	fr_adapt_init(&a, -3, -1);
	cr_assert_eq(a.workers, 1);
}

Test(adapt, segment_measurements)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 3, 2.0, 100e6);
	cr_assert(a.measured[3]);
	cr_assert_float_eq(a.ratio[3], 2.0, 1e-3);
	cr_assert_float_eq(a.speed[3], 100e6, 1e3);
	/* later measurements move the estimate, not replace it */
	measure(&a, 3, 4.0, 100e6);
	cr_assert(a.ratio[3] > 2.0 && a.ratio[3] < 4.0, "ratio %f", a.ratio[3]);

	/* nonsense is ignored */
	struct fr_adapt before;
	memcpy(&before, &a, sizeof(a));
	fr_adapt_segment(&a, -1, SEGLEN, SEGLEN, 1.0);
	fr_adapt_segment(&a, 20, SEGLEN, SEGLEN, 1.0);
	fr_adapt_segment(&a, 5, 0, 100, 1.0);
	fr_adapt_segment(&a, 5, 100, 0, 1.0);
	cr_assert_eq(memcmp(&a, &before, sizeof(a)), 0);
	cr_assert_not(a.measured[5]);

	/* the wire: nothing moved or no time is no measurement */
	fr_adapt_wire(&a, 0, 1.0);
	fr_adapt_wire(&a, 1000, 0.0);
	fr_adapt_wire(&a, 1000, -1.0);
	cr_assert(a.wire_rate == 0.0);
	fr_adapt_wire(&a, 1000000, 2.0);
	cr_assert_float_eq(a.wire_rate, 500000.0, 1e-6);
}

Test(adapt, nothing_measured_keeps_the_level)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	cr_assert_eq(fr_adapt_choose(&a), 0);
	wire(&a, 16e3); /* a wire, but no idea of the data yet */
	cr_assert_eq(fr_adapt_choose(&a), 0);
	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 3.0, 400e6); /* the data, but no wire yet */
	cr_assert_eq(fr_adapt_choose(&a), 0);
}

/* ---- the decision ------------------------------------------------------- */

Test(adapt, fast_wire_goes_raw)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 3.0, 400e6);
	wire(&a, 2.5e9);
	cr_assert_eq(fr_adapt_choose(&a), 0);
	cr_assert_eq(a.level, 0);
}

Test(adapt, slow_wire_compressible_goes_high)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 3.0, 400e6);
	wire(&a, 16e3);
	int l = fr_adapt_choose(&a);
	cr_assert_geq(l, 15, "slow wire, compressible data: level %d", l);
	cr_assert_eq(a.level, l);
	/* and the choice sticks: no probes while compressing */
	for (int i = 0; i < 200; i++)
		cr_assert_eq(fr_adapt_next(&a), l);
}

Test(adapt, medium_wire_picks_a_middle_level)
{
	/* 2 workers at level 1 compress 800 MB/s; a 100 MB/s wire carries
	 * 300 MB/s of raw data at ratio 3: worth compressing, but not at a
	 * level whose workers cannot keep up (19: 4 MB/s) */
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 3.0, 400e6);
	wire(&a, 100e6);
	int l = fr_adapt_choose(&a);
	cr_assert_gt(l, 0, "level %d", l);
	cr_assert_lt(l, 15, "level %d", l);
}

Test(adapt, incompressible_data_on_a_slow_wire_goes_raw)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 1.0, 400e6); /* level 1 gained nothing */
	wire(&a, 16e3);
	int l = fr_adapt_choose(&a);
	cr_assert_eq(l, 0,
		     "data that level 1 cannot shrink at all (ratio %.2f): "
		     "level %d chosen",
		     a.ratio[1], l);
}

Test(adapt, barely_compressible_data_on_a_slow_wire_goes_raw)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 1.01, 400e6); /* below the 3% that counts as a gain */
	wire(&a, 16e3);
	int l = fr_adapt_choose(&a);
	cr_assert_eq(l, 0, "level %d chosen for data level 1 shrinks by 1%%",
		     l);
}

Test(adapt, measured_level_beats_its_prior)
{
	/* level 19 measured to gain nothing over level 1 on this data: the
	 * slow wire no longer justifies it */
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 3.0, 400e6);
	wire(&a, 16e3);
	cr_assert_eq(fr_adapt_choose(&a), 19);
	measure(&a, 19, 1.0, 2e6);
	int l = fr_adapt_choose(&a);
	cr_assert_neq(l, 19);
	cr_assert_gt(l, 0);
}

Test(adapt, receiver_stall_forces_raw)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 3.0, 400e6);
	wire(&a, 16e3);
	cr_assert_geq(fr_adapt_choose(&a), 15);
	/* one report is not yet a trend */
	fr_adapt_sink(&a, 800);
	cr_assert_geq(fr_adapt_choose(&a), 15);
	for (int i = 0; i < 5; i++)
		fr_adapt_sink(&a, 800);
	cr_assert_eq(fr_adapt_choose(&a), 0, "receiver stalled 80%%, level %d",
		     a.level);
	cr_assert_eq(a.level, 0);
	/* the receiver catches up: compression is worth it again */
	for (int i = 0; i < 20; i++)
		fr_adapt_sink(&a, 0);
	cr_assert_geq(fr_adapt_choose(&a), 15);
}

Test(adapt, sink_report_is_clamped)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	for (int i = 0; i < 100; i++)
		fr_adapt_sink(&a, 1000000);
	cr_assert(a.sink_stall <= 1.0 + 1e-9, "stall %f", a.sink_stall);
	cr_assert(a.sink_stall > 0.99);
}

/* ---- the probe schedule ------------------------------------------------- */

Test(adapt, raw_probes_one_segment_in_64)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	cr_assert_eq(fr_adapt_next(&a), 1, "first segment is a probe");
	for (int i = 0; i < 63; i++)
		cr_assert_eq(fr_adapt_next(&a), 0, "segment %d after the probe",
			     i + 1);
	cr_assert_eq(fr_adapt_next(&a), 1,
		     "64th segment after a probe is not a probe");
}

Test(adapt, probes_keep_coming_while_raw)
{
	struct fr_adapt a;
	int probes = 0, zeros = 0;

	fr_adapt_init(&a, 2, -1);
	for (int i = 0; i < 1000; i++) {
		int l = fr_adapt_next(&a);
		cr_assert(l == 0 || l == 1, "level %d while raw", l);
		if (l == 1)
			probes++;
		else
			zeros++;
	}
	/* about one in 64, never a burst */
	cr_assert_geq(probes, 15);
	cr_assert_leq(probes, 17);
	cr_assert_eq(probes + zeros, 1000);
}

Test(adapt, no_probes_at_a_nonzero_level)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 4, 9);
	for (int i = 0; i < 300; i++)
		cr_assert_eq(fr_adapt_next(&a), 9);
}

Test(adapt, back_to_raw_probes_again)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 3.0, 400e6);
	wire(&a, 16e3);
	int hi = fr_adapt_choose(&a);
	cr_assert_geq(hi, 15);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(fr_adapt_next(&a), hi);
	/* the link turns fast: raw, and raw keeps probing */
	for (int i = 0; i < 20; i++)
		wire(&a, 2.5e9);
	cr_assert_eq(fr_adapt_choose(&a), 0);
	int probes = 0;
	for (int i = 0; i < 200; i++)
		probes += fr_adapt_next(&a) == 1;
	cr_assert_geq(probes, 3);
}

/* ---- a parcel: the source read is the limit, and size is the cost ------- */

Test(adapt, slow_source_and_small_preferred_goes_to_a_stronger_level)
{
	struct fr_adapt a;

	/* a fast medium (275 MB/s) and 2 workers: on speed alone, level 1 */
	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 2.6, 400e6);
	wire(&a, 275e6);
	int fast = fr_adapt_choose(&a);
	cr_assert_leq(fast, 2, "fast medium, no source limit: level %d", fast);

	/* the source reads at 150 MB/s: by the priors, levels up to 7
	 * (2 x 90 MB/s of CPU) keep up with it, level 9 (2 x 60) does not */
	fr_adapt_source(&a, 150000000, 1.0);
	a.prefer_small = false;
	cr_assert_eq(fr_adapt_choose(&a), 0,
		     "source-bound, without prefer_small: the cheapest, raw");
	a.prefer_small = true;
	int l = fr_adapt_choose(&a);
	cr_assert_geq(l, 3, "source-bound parcel: level %d", l);
	cr_assert_leq(l, 7, "level %d would not keep up with the source", l);

	/* a source faster than any compressor: speed decides again, down
	 * to the parcel's floor (level 3 keeps more than half the rate) */
	fr_adapt_source(&a, 20000000000ull, 1.0);
	fr_adapt_source(&a, 20000000000ull, 1.0);
	fr_adapt_source(&a, 20000000000ull, 1.0);
	fr_adapt_source(&a, 20000000000ull, 1.0);
	cr_assert_eq(fr_adapt_choose(&a), FR_SMALL_FLOOR);
	a.prefer_small = false;
	cr_assert_leq(fr_adapt_choose(&a), 2);
}

/* A parcel on a fast medium: level 3 (zstd's default) even where level 1
 * would be faster; below it only where level 3 would cut the rate to a
 * third. */
Test(adapt, small_preferred_keeps_level_3_unless_it_costs_two_thirds)
{
	struct fr_adapt a;

	/* level 1 at 400 MB/s a worker, 2 workers, a 500 MB/s medium: raw
	 * predicts 500 MB/s, level 1 800 MB/s, level 3 (priors: 270 MB/s a
	 * worker) 540 MB/s */
	fr_adapt_init(&a, 2, -1);
	measure(&a, 1, 2.6, 400e6);
	wire(&a, 500e6);
	cr_assert_leq(fr_adapt_choose(&a), 2, "a send: the fastest level");
	a.prefer_small = true;
	cr_assert_eq(fr_adapt_choose(&a), 3, "a parcel: zstd's default");

	/* level 3 measured at 150 MB/s a worker: 300 of 800 MB/s, more
	 * than a third: still level 3 */
	measure(&a, 3, 3.4, 150e6);
	cr_assert_eq(fr_adapt_choose(&a), 3);
	/* at 100 MB/s a worker (200 of 800 MB/s, a quarter) the parcel
	 * takes the faster level */
	for (int i = 0; i < 20; i++)
		measure(&a, 3, 3.4, 100e6);
	int l = fr_adapt_choose(&a);
	cr_assert_lt(l, 3, "level 3 would cost two thirds: level %d", l);
}

/* A line whose rate is known up front (a RAS profile): the first segment
 * is already compressed for it, not sent raw to be measured. */
Test(adapt, known_line_rate_chooses_before_anything_is_measured)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	fr_adapt_line(&a, 128000 / 8.0, SEGLEN);
	cr_assert_eq(a.level, 19, "128 kbit/s: level %d", a.level);
	/* the first segment too: 4 s of CPU save a minute of line */
	cr_assert_eq(fr_adapt_next(&a), 19, "no raw probe first");
	cr_assert_eq(fr_adapt_next(&a), 19);
	fr_adapt_init(&a, 2, -1);
	fr_adapt_line(&a, 2e6 / 8.0, SEGLEN);
	cr_assert_geq(a.level, 15, "2 Mbit/s: level %d", a.level);
	/* the first segment is ready sooner at a middle level: the line
	 * would idle 4 s for level 19 */
	int first = fr_adapt_next(&a);
	cr_assert(first >= 5 && first <= 15, "2 Mbit/s, first segment: %d",
		  first);
	cr_assert_eq(fr_adapt_next(&a), a.level, "then the steady level");
	fr_adapt_init(&a, 2, -1);
	fr_adapt_line(&a, 1e9 / 8.0, SEGLEN);
	cr_assert_leq(a.level, 3, "1 Gbit/s: level %d", a.level);
	/* a pinned level stays */
	fr_adapt_init(&a, 2, -1);
	fr_adapt_pin(&a, 0);
	fr_adapt_line(&a, 16000, SEGLEN);
	cr_assert_eq(a.level, 0);
	cr_assert_eq(fr_adapt_next(&a), 0);
}

/* A parcel goes above level 3 only where its workers, one core short,
 * outrun the medium by half again: a medium they barely keep up with
 * would idle while a segment is still being compressed. */
/* A parcel's choice on a medium of this rate, 2 workers measured at:
 * level 3 200 MB/s a worker (ratio 3.2), level 5 150 (3.4), level 7 90
 * (3.6). */
static int parcel_level_on(double medium_rate)
{
	struct fr_adapt a;

	fr_adapt_init(&a, 2, -1);
	a.prefer_small = true;
	measure(&a, 3, 3.2, 200e6);
	measure(&a, 5, 3.4, 150e6);
	measure(&a, 7, 3.6, 90e6);
	wire(&a, medium_rate);
	return fr_adapt_choose(&a);
}

Test(adapt, parcel_takes_a_stronger_level_only_with_cpu_to_spare)
{
	/* a 45 MB/s medium: level 7's two workers (180 MB/s) would just
	 * feed it (45 x 3.6 = 162 MB/s), one of them would not */
	int l = parcel_level_on(45e6);
	cr_assert_eq(l, 3, "45 MB/s medium: level %d", l);

	/* a 10 MB/s medium (a DVD, an old USB disk): level 7 needs 36 MB/s
	 * of raw input, one worker gives 90 */
	l = parcel_level_on(10e6);
	cr_assert_geq(l, 7, "10 MB/s medium: level %d", l);
	/* and no stronger than one core can feed: level 15 (12 MB/s by
	 * the priors) would need 42 */
	cr_assert_lt(l, 15, "10 MB/s medium: level %d", l);
}
