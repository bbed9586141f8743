/*
 * engine_bench.c - `ferry bench link`'s arithmetic (core/benchcalc.c) and
 * its messages (out/probe.c): the receiver's count per second, the
 * intervals and their rates, the warm-up left out, several streams
 * added (with intervals of different lengths), the round trip's min and
 * average, and the BENCH and REPORT bodies with their bounds.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "fr_internal.h"

#define S 1000000000ull

Test(bench_count, bytes_by_second_from_the_first_byte)
{
	struct fr_bench_count k;

	fr_bench_count_init(&k, 3);
	/* the first byte at t0 = 5 s (any monotonic time) */
	cr_assert(fr_bench_count_add(&k, 5 * S, 100));
	cr_assert(fr_bench_count_add(&k, 5 * S + S / 2, 50));
	cr_assert(fr_bench_count_add(&k, 6 * S, 200)); /* exactly 1 s: 2nd */
	cr_assert(fr_bench_count_add(&k, 7 * S + 999999999, 7));
	/* at the limit (3 s after the first byte): not counted, over */
	cr_assert_not(fr_bench_count_add(&k, 8 * S, 1000));
	cr_assert_eq(k.bytes[0], 150);
	cr_assert_eq(k.bytes[1], 200);
	cr_assert_eq(k.bytes[2], 7);
	cr_assert_eq(k.total, 357);
	cr_assert_eq(k.n, 3);
	cr_assert_eq(k.end_ns, 3 * S);
}

Test(bench_count, ended_early_and_silent_seconds)
{
	struct fr_bench_count k;

	fr_bench_count_init(&k, 10);
	fr_bench_count_add(&k, S, 10);
	/* the sender stopped at 3.5 s; nothing came after 0 s */
	fr_bench_count_end(&k, S + 3 * S + S / 2);
	cr_assert_eq(k.n, 4); /* silent seconds still count as intervals */
	cr_assert_eq(k.end_ns, 3 * S + S / 2);
}

Test(bench_count, byte_cap)
{
	struct fr_bench_count k;

	fr_bench_count_init(&k, 10);
	k.cap = 1000;
	cr_assert(fr_bench_count_add(&k, S, 600));
	cr_assert_not(fr_bench_count_add(&k, S + 1, 600)); /* counted, capped */
	cr_assert(k.capped);
	cr_assert_eq(k.total, 1200);
}

Test(bench_intervals, rates_and_the_warm_up)
{
	const uint64_t bytes[] = {1000, 12500000, 12500000, 6250000};
	struct fr_bench_interval iv[FR_BENCH_IV_MAX];
	struct fr_bench_stream st = {0};

	/* 3.5 s counted: the last interval is half a second */
	unsigned n = fr_bench_intervals(bytes, 4, 3.5, 1, iv);
	cr_assert_eq(n, 4);
	cr_assert(iv[0].omitted);
	cr_assert_not(iv[1].omitted);
	cr_assert_float_eq(iv[1].bits_per_second, 100e6, 1);
	cr_assert_float_eq(iv[3].start, 3.0, 1e-9);
	cr_assert_float_eq(iv[3].end, 3.5, 1e-9);
	cr_assert_float_eq(iv[3].bits_per_second, 100e6, 1); /* its own length */
	memcpy(st.iv, iv, sizeof(iv));
	st.n_iv = n;
	fr_bench_total(&st);
	cr_assert_eq(st.bytes, 31250000);
	cr_assert_float_eq(st.seconds, 2.5, 1e-9);
	cr_assert_float_eq(st.received_bps, 100e6, 1);
}

Test(bench_intervals, nothing_left_out_and_all_left_out)
{
	const uint64_t bytes[] = {100, 100};
	struct fr_bench_interval iv[FR_BENCH_IV_MAX];
	struct fr_bench_stream st = {0};

	st.n_iv = fr_bench_intervals(bytes, 2, 2, 0, st.iv);
	fr_bench_total(&st);
	cr_assert_float_eq(st.received_bps, 800, 1e-6);
	/* a count shorter than the warm-up: nothing measured */
	st.n_iv = fr_bench_intervals(bytes, 2, 0.8, 1, st.iv);
	cr_assert_eq(st.n_iv, 1);
	fr_bench_total(&st);
	cr_assert_eq(st.bytes, 0);
	cr_assert_float_eq(st.received_bps, 0, 1e-9);
	/* an interval of no length is dropped */
	cr_assert_eq(fr_bench_intervals(bytes, 2, 1.0, 0, iv), 1);
}

Test(bench_sum, streams_with_intervals_of_different_lengths)
{
	static struct fr_bench_result r;
	const uint64_t a[] = {500, 1000, 1000, 1000};
	const uint64_t b[] = {250, 500, 500};

	memset(&r, 0, sizeof(r));
	r.streams = 2;
	/* stream 1: 4 s; stream 2: 2.5 s (its last interval half) */
	r.st[0].n_iv = fr_bench_intervals(a, 4, 4, 1, r.st[0].iv);
	r.st[1].n_iv = fr_bench_intervals(b, 3, 2.5, 1, r.st[1].iv);
	fr_bench_sum(&r);
	cr_assert_eq(r.n_sum, 4);
	cr_assert(r.sum[0].omitted);
	cr_assert_eq(r.sum[1].bytes, 1500);
	cr_assert_float_eq(r.sum[1].bits_per_second, 12000, 1e-6);
	/* interval 3: 1 s of a (8000 bit/s), 0.5 s of b (8000 bit/s) */
	cr_assert_float_eq(r.sum[2].start, 2, 1e-9);
	cr_assert_float_eq(r.sum[2].end, 3, 1e-9);
	cr_assert_eq(r.sum[2].bytes, 1500);
	cr_assert_float_eq(r.sum[2].bits_per_second, 16000, 1e-6);
	cr_assert_eq(r.sum[3].bytes, 1000); /* a alone */
	/* totals: a 3000 B over 3 s, b 1000 B over 1.5 s, added */
	cr_assert_float_eq(r.st[0].received_bps, 8000, 1e-6);
	cr_assert_float_eq(r.st[1].received_bps, 1000 * 8 / 1.5, 1e-6);
	cr_assert_float_eq(r.received_bps, 8000 + 1000 * 8 / 1.5, 1e-6);
	cr_assert_eq(r.received_bytes, 4000);
}

Test(bench_rtt, min_and_average)
{
	struct fr_rtt_acc r;

	fr_rtt_init(&r);
	cr_assert_lt(fr_rtt_avg(&r), 0);
	cr_assert_lt(fr_rtt_min(&r), 0);
	fr_rtt_add(&r, 0, 0); /* no sample: left out */
	fr_rtt_add(&r, 10, 0);
	fr_rtt_add(&r, 30, 0);
	cr_assert_float_eq(fr_rtt_avg(&r), 20, 1e-9);
	cr_assert_float_eq(fr_rtt_min(&r), 10, 1e-9);
	/* the kernel's own minimum (tcpi_min_rtt) wins once it is known */
	fr_rtt_add(&r, 20, 4);
	cr_assert_float_eq(fr_rtt_min(&r), 4, 1e-9);
	cr_assert_float_eq(fr_rtt_avg(&r), 20, 1e-9);
}

Test(bench_wire, request_round_trip_and_bounds)
{
	struct fr_bench_req q = {.flags = FR_BENCH_F_REVERSE,
				 .seconds = 10,
				 .frame = 4096,
				 .stream = 1,
				 .streams = 2},
			    o;
	uint8_t b[FR_BENCH_REQ_LEN];

	fr_bench_req_pack(&q, b);
	cr_assert_eq(fr_bench_req_parse(b, sizeof(b), &o), 0);
	cr_assert_eq(o.flags, q.flags);
	cr_assert_eq(o.seconds, 10);
	cr_assert_eq(o.frame, 4096);
	cr_assert_eq(o.stream, 1);
	cr_assert_eq(o.streams, 2);
	cr_assert_eq(fr_bench_req_parse(b, sizeof(b) - 1, &o), FR_E_PROTOCOL);
	struct fr_bench_req bad[] = {
	    {.flags = 4, .seconds = 1, .frame = 4096, .streams = 1},
	    {.seconds = 0, .frame = 4096, .streams = 1},
	    {.seconds = FR_BENCH_SECONDS_MAX + 1, .frame = 4096, .streams = 1},
	    {.seconds = 1, .frame = FR_BENCH_FRAME_MAX + 1, .streams = 1},
	    {.seconds = 1, .frame = 1, .streams = 1},
	    {.seconds = 1, .frame = 4096, .streams = 0},
	    {.seconds = 1, .frame = 4096, .stream = 2, .streams = 2},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fr_bench_req_pack(&bad[i], b);
		cr_assert_eq(fr_bench_req_parse(b, sizeof(b), &o), FR_E_PROTOCOL,
			     "case %zu", i);
	}
}

Test(bench_wire, report_bounds)
{
	uint8_t b[FR_BENCH_REPORT_HDR + 8 * (FR_BENCH_IV_MAX + 1)] = {0};
	struct fr_bench_report r;

	fr_put32(b + 4, 2);
	fr_put64(b + 8, 2 * S);
	fr_put64(b + FR_BENCH_REPORT_HDR, 5);
	fr_put64(b + FR_BENCH_REPORT_HDR + 8, 6);
	cr_assert_eq(fr_bench_report_parse(b, FR_BENCH_REPORT_HDR + 16, &r), 0);
	cr_assert_eq(r.bytes[1], 6);
	/* a length that does not match its count, too many intervals, a
	 * duration past the bound */
	cr_assert_eq(fr_bench_report_parse(b, FR_BENCH_REPORT_HDR + 8, &r),
		     FR_E_PROTOCOL);
	fr_put32(b + 4, FR_BENCH_IV_MAX + 1);
	cr_assert_eq(fr_bench_report_parse(b, sizeof(b), &r), FR_E_PROTOCOL);
	fr_put32(b + 4, 0);
	fr_put64(b + 8, (FR_BENCH_SECONDS_MAX + 2) * S);
	cr_assert_eq(fr_bench_report_parse(b, FR_BENCH_REPORT_HDR, &r),
		     FR_E_PROTOCOL);
}
