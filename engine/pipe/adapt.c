/*
 * adapt.c - the compression level follows the link. For every level we
 * know (or assume, until measured) how many raw bytes a worker compresses
 * per CPU second and the ratio it reaches; the link's rate is measured
 * while sends are in flight. A level can move raw bytes no faster than
 * its workers compress them, nor faster than the link carries its output:
 * predicted = min(speed * workers, wire_rate * ratio). The best predicted
 * level wins. On loopback that is raw (0); on a 128 kbit line it is 19.
 * When the receiver reports that it spends much of its time unable to
 * take frames (its storage is the slowest stage), compression cannot help
 * and the level is 0. Where the source is read more slowly than that
 * (fr_adapt_source), no level beats the read; a parcel, whose size is
 * what costs, then takes the strongest level that keeps up, and no less
 * than zstd's default level 3 unless level 3 would cut its rate to a
 * third.
 */
#include <string.h>

#include "pipe/fr_pipe.h"

/* Priors from zstd on real binaries (see DESIGN.md); replaced as soon as
 * a level is measured, and ratios are scaled by what this data achieved. */
static const struct {
	int level;
	double speed, ratio;
} priors[] = {
	{0, 6000e6, 1.0}, {1, 400e6, 3.2},  {2, 330e6, 3.3},
	{3, 270e6, 3.5},  {5, 150e6, 3.7},  {7, 90e6, 3.9},
	{9, 60e6, 4.0},   {12, 30e6, 4.1},  {15, 12e6, 4.2},
	{19, 2e6, 4.6},
};

void fr_adapt_init(struct fr_adapt *a, int workers, int fixed_level)
{
	memset(a, 0, sizeof(*a));
	a->workers = workers > 0 ? workers : 1;
	for (unsigned i = 0; i < FR_ARRAY_SIZE(priors); i++) {
		a->speed[priors[i].level] = priors[i].speed;
		a->ratio[priors[i].level] = priors[i].ratio;
	}
	/* raw until measured; fr_adapt_next() probes with a cheap level */
	a->level = fixed_level >= 0 ? fixed_level : 0;
	a->first_level = -1;
	a->since_probe = 1u << 30;
}

void fr_adapt_pin(struct fr_adapt *a, int level)
{
	a->level = level;
	a->pinned = true;
}

void fr_adapt_line(struct fr_adapt *a, double bytes_per_s, uint32_t seg_size)
{
	if (bytes_per_s <= 0.0 || a->pinned)
		return;
	/* the line idles until the first frame is ready: one worker
	 * compresses it while nothing else is sent */
	double soonest = -1.0;
	for (unsigned i = 0; i < FR_ARRAY_SIZE(priors); i++) {
		double t = seg_size / priors[i].speed +
			   seg_size / priors[i].ratio / bytes_per_s;
		if (soonest < 0 || t < soonest) {
			soonest = t;
			a->first_level = priors[i].level;
		}
	}
	a->wire_rate = bytes_per_s;
	/* nothing measured yet: choose by the priors, as if this data
	 * compressed like the binaries they come from */
	double best = -1.0;
	for (unsigned i = 0; i < FR_ARRAY_SIZE(priors); i++) {
		double cpu = priors[i].speed * a->workers;
		double net = bytes_per_s * priors[i].ratio;
		double pred = cpu < net ? cpu : net;
		if (pred > best * 1.05) {
			best = pred;
			a->level = priors[i].level;
		}
	}
	a->since_probe = 0; /* no raw probing while compressing */
}

int fr_adapt_next(struct fr_adapt *a)
{
	if (a->pinned)
		return a->level;
	if (a->first_level >= 0) {
		int l = a->first_level;
		a->first_level = -1;
		return l;
	}
	/* While sending raw, compress one segment in 64 at level 1: that
	 * keeps the ratio and speed estimates true to the data in hand. */
	if (a->level == 0 && a->since_probe >= 64) {
		a->since_probe = 1;
		return 1;
	}
	a->since_probe++;
	return a->level;
}

void fr_adapt_wire(struct fr_adapt *a, uint64_t bytes, double busy_s)
{
	if (busy_s <= 0.0 || bytes == 0)
		return;
	double r = (double)bytes / busy_s;
	a->wire_rate = a->wire_rate > 0 ? 0.7 * a->wire_rate + 0.3 * r : r;
}

void fr_adapt_segment(struct fr_adapt *a, int level, uint32_t raw,
		      uint32_t stored, double cpu_s)
{
	if (level < 0 || level > 19 || raw == 0 || stored == 0)
		return;
	double ratio = (double)raw / (double)stored;
	double speed = cpu_s > 1e-6 ? (double)raw / cpu_s : a->speed[level];
	if (a->measured[level]) {
		a->ratio[level] = 0.7 * a->ratio[level] + 0.3 * ratio;
		a->speed[level] = 0.7 * a->speed[level] + 0.3 * speed;
	} else {
		a->ratio[level] = ratio;
		a->speed[level] = speed;
		a->measured[level] = true;
	}
}

void fr_adapt_source(struct fr_adapt *a, uint64_t bytes, double secs)
{
	if (secs <= 0.0 || bytes == 0)
		return;
	double r = (double)bytes / secs;
	a->source_rate = a->source_rate > 0 ? 0.7 * a->source_rate + 0.3 * r : r;
}

void fr_adapt_sink(struct fr_adapt *a, uint32_t stall_permille)
{
	double v = stall_permille > 1000 ? 1.0 : stall_permille / 1000.0;
	a->sink_stall = 0.8 * a->sink_stall + 0.2 * v;
}

/* What this data gains from compression, relative to the priors: the
 * gain (ratio - 1) scales, so data that does not compress at level 1 is
 * not expected to compress at level 19 either. -1: no level measured. */
static double gain_scale(const struct fr_adapt *a)
{
	for (unsigned i = 1; i < FR_ARRAY_SIZE(priors); i++) {
		int l = priors[i].level;
		if (a->measured[l]) {
			double g = (a->ratio[l] - 1.0) / (priors[i].ratio - 1.0);
			return g < 0.0 ? 0.0 : g;
		}
	}
	return -1.0;
}

/* The ratio level reaches on this data: measured, else its prior's
 * scaled by gscale; 1 where it would gain under 3% (raw anyway). */
static double ratio_at(const struct fr_adapt *a, int l, double gscale)
{
	double ratio = 1.0;

	if (l > 0 && a->measured[l])
		ratio = a->ratio[l];
	else
		for (unsigned i = 1; l > 0 && i < FR_ARRAY_SIZE(priors); i++)
			if (priors[i].level == l)
				ratio = 1.0 + (priors[i].ratio - 1.0) * gscale;
	return ratio < 1.03 ? 1.0 : ratio;
}

/* Raw bytes per second at level l: no faster than its workers compress,
 * than the link carries its output, or than the source is read. */
static double predicted(const struct fr_adapt *a, int l, double ratio)
{
	double cpu = a->speed[l] * a->workers;
	double net = a->wire_rate * ratio;
	double pred = cpu < net ? cpu : net;

	if (a->source_rate > 0.0 && pred > a->source_rate)
		pred = a->source_rate;
	return pred;
}

double fr_adapt_predict(const struct fr_adapt *a, int level)
{
	double g = gain_scale(a);

	return predicted(a, level, ratio_at(a, level, g < 0.0 ? 0.0 : g));
}

unsigned fr_adapt_levels(int *out, unsigned cap)
{
	unsigned n = 0;

	for (unsigned i = 0; i < FR_ARRAY_SIZE(priors) && n < cap; i++)
		out[n++] = priors[i].level;
	return n;
}

int fr_adapt_choose(struct fr_adapt *a)
{
	/* The receiver's storage is the bottleneck, not the link: smaller
	 * frames would not land any sooner, and decompressing them would
	 * cost the receiver's CPU. */
	if (a->sink_stall > 0.3) {
		a->level = 0;
		return 0;
	}
	double gscale = gain_scale(a);
	if (a->wire_rate <= 0.0 || gscale < 0.0)
		return a->level; /* nothing to go on yet */
	double best = -1.0, pred_of[FR_ARRAY_SIZE(priors)];
	double spare_of[FR_ARRAY_SIZE(priors)];
	int best_level = 0;
	for (unsigned i = 0; i < FR_ARRAY_SIZE(priors); i++) {
		int l = priors[i].level;
		double ratio = ratio_at(a, l, gscale);
		double net = a->wire_rate * ratio;
		double pred = predicted(a, l, ratio);
		pred_of[i] = pred;
		/* how far the workers outrun the slower of the medium and
		 * the source at this level, one core left to the reads,
		 * the writes and the kernel */
		double need = net;
		if (a->source_rate > 0.0 && a->source_rate < need)
			need = a->source_rate;
		spare_of[i] = a->speed[l] * (a->workers > 1 ? a->workers - 1 : 1) /
			      need;
		/* prefer the cheaper level unless the gain is real (5%) */
		if (pred > best * 1.05) {
			best = pred;
			best_level = l;
		}
	}
	/* where size is the cost (a parcel), the strongest level that is
	 * about as fast as the fastest and whose workers, one core short,
	 * outrun the medium (or the source) by half again: they share the
	 * cores with the reads, the writes and the kernel, and a medium
	 * left idle while a segment is still being compressed costs more
	 * time than the stronger level saves. Never below zstd's default (3) unless
	 * that would cut the rate to a third: what goes on the media is
	 * also what must fit on it and be shipped, and the parcel's other
	 * stages (the scan, reading the source) do not speed up */
	if (a->prefer_small) {
		int pick = -1;
		for (unsigned i = 0; i < FR_ARRAY_SIZE(priors); i++) {
			if (pred_of[i] >= best * 0.95 &&
			    spare_of[i] >= FR_SMALL_SPARE)
				pick = priors[i].level;
			if (priors[i].level == FR_SMALL_FLOOR &&
			    pick < FR_SMALL_FLOOR && pred_of[i] >= best / 3)
				pick = FR_SMALL_FLOOR;
		}
		/* nothing with CPU to spare: no stronger than zstd's
		 * default */
		best_level = pick >= 0 ? pick
			     : best_level < FR_SMALL_FLOOR ? best_level
							   : FR_SMALL_FLOOR;
	}
	a->level = best_level;
	return best_level;
}
