/*
 * benchcalc.c - the arithmetic of `ferry bench link`, pure (no I/O, no
 * clock of its own): the receiver's count of bytes per interval, the
 * intervals with their rates and the warm-up left out, a stream's total,
 * several streams added, and the round-trip time's min and average.
 *
 * Invariants: interval k of a count covers [k, k+1) s after the first
 * byte counted, the last one ends where the count ended (it may be
 * shorter); a rate is bytes * 8 over the interval's own length, never
 * over the length asked for. The warm-up (omit) leaves out every interval
 * that ends at or before it; the total is the bytes of the others over
 * their span (iperf3's -O).
 */
#include <string.h>

#include "core/fr_core.h"

#define NS_PER_IV ((uint64_t)(FR_BENCH_INTERVAL_S * 1e9))

void fr_bench_count_init(struct fr_bench_count *k, double seconds)
{
	memset(k, 0, sizeof(*k));
	if (seconds > FR_BENCH_IV_MAX * FR_BENCH_INTERVAL_S)
		seconds = FR_BENCH_IV_MAX * FR_BENCH_INTERVAL_S;
	k->limit_ns = (uint64_t)(seconds * 1e9);
}

bool fr_bench_count_add(struct fr_bench_count *k, uint64_t now_ns,
			uint64_t bytes)
{
	if (!k->t0_ns)
		k->t0_ns = now_ns ? now_ns : 1;
	uint64_t t = now_ns > k->t0_ns ? now_ns - k->t0_ns : 0;
	if (t >= k->limit_ns) {
		k->end_ns = k->limit_ns;
		k->n = (uint32_t)((k->limit_ns + NS_PER_IV - 1) / NS_PER_IV);
		return false;
	}
	uint32_t i = (uint32_t)(t / NS_PER_IV);
	k->bytes[i] += bytes;
	k->total += bytes;
	if (i + 1 > k->n)
		k->n = i + 1;
	k->end_ns = t;
	if (k->cap && k->total >= k->cap) {
		k->capped = true;
		return false;
	}
	return true;
}

void fr_bench_count_end(struct fr_bench_count *k, uint64_t now_ns)
{
	uint64_t t = k->t0_ns && now_ns > k->t0_ns ? now_ns - k->t0_ns : 0;

	if (!k->t0_ns)
		return;
	if (t > k->limit_ns)
		t = k->limit_ns;
	k->end_ns = t;
	uint32_t n = (uint32_t)((t + NS_PER_IV - 1) / NS_PER_IV);
	if (n > k->n)
		k->n = n; /* silent intervals at the end still count */
}

unsigned fr_bench_intervals(const uint64_t *bytes, unsigned n, double dur_s,
			    double omit_s, struct fr_bench_interval *out)
{
	unsigned m = 0;

	if (n > FR_BENCH_IV_MAX)
		n = FR_BENCH_IV_MAX;
	for (unsigned i = 0; i < n; i++) {
		double s = i * FR_BENCH_INTERVAL_S, e = s + FR_BENCH_INTERVAL_S;
		if (e > dur_s)
			e = dur_s;
		if (!(e > s))
			break;
		out[m] = (struct fr_bench_interval){
			.start = s,
			.end = e,
			.bytes = bytes[i],
			.bits_per_second = (double)bytes[i] * 8 / (e - s),
			.omitted = e <= omit_s + 1e-9,
		};
		m++;
	}
	return m;
}

void fr_bench_total(struct fr_bench_stream *st)
{
	double from = -1, to = 0;

	st->bytes = 0;
	for (unsigned i = 0; i < st->n_iv; i++) {
		const struct fr_bench_interval *v = &st->iv[i];
		if (v->omitted)
			continue;
		if (from < 0)
			from = v->start;
		to = v->end;
		st->bytes += v->bytes;
	}
	st->seconds = from < 0 ? 0 : to - from;
	st->received_bps =
		st->seconds > 0 ? (double)st->bytes * 8 / st->seconds : 0;
}

/* The k-th interval of every stream that has one, added. */
static void sum_one(const struct fr_bench_result *r, unsigned k,
		    struct fr_bench_interval *o)
{
	bool any = false;

	*o = (struct fr_bench_interval){.omitted = true};
	for (unsigned s = 0; s < r->streams; s++) {
		const struct fr_bench_stream *st = &r->st[s];
		if (k >= st->n_iv)
			continue;
		const struct fr_bench_interval *v = &st->iv[k];
		if (!any || v->start < o->start)
			o->start = v->start;
		if (!any || v->end > o->end)
			o->end = v->end;
		any = true;
		o->bytes += v->bytes;
		o->bits_per_second += v->bits_per_second;
		o->omitted = o->omitted && v->omitted;
	}
}

void fr_bench_sum(struct fr_bench_result *r)
{
	unsigned n = 0;

	r->received_bps = 0;
	r->received_bytes = 0;
	for (unsigned s = 0; s < r->streams; s++) {
		fr_bench_total(&r->st[s]);
		r->received_bps += r->st[s].received_bps;
		r->received_bytes += r->st[s].bytes;
		if (r->st[s].n_iv > n)
			n = r->st[s].n_iv;
	}
	for (unsigned k = 0; k < n; k++)
		sum_one(r, k, &r->sum[k]);
	r->n_sum = n;
}

void fr_rtt_init(struct fr_rtt_acc *r)
{
	*r = (struct fr_rtt_acc){.min_ms = -1};
}

void fr_rtt_add(struct fr_rtt_acc *r, double sample_ms, double kmin_ms)
{
	if (!(sample_ms > 0))
		return;
	r->sum_ms += sample_ms;
	r->n++;
	double m = kmin_ms > 0 ? kmin_ms : sample_ms;
	if (r->min_ms < 0 || m < r->min_ms || kmin_ms > 0)
		r->min_ms = m; /* the kernel's own minimum wins once known */
}

double fr_rtt_avg(const struct fr_rtt_acc *r)
{
	return r->n ? r->sum_ms / r->n : -1;
}

double fr_rtt_min(const struct fr_rtt_acc *r)
{
	return r->n ? r->min_ms : -1;
}
