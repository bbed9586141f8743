/*
 * codec_seg.c - zstd segment payloads: round trips, the raw fallback, and
 * hostile payloads that must fail without writing past raw_len.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

#define GUARD 64

static struct fr_cctx cc;
static struct fr_dctx dc;

static void setup(void)
{
	cr_assert_eq(fr_cctx_init(&cc), 0);
	cr_assert_eq(fr_dctx_init(&dc), 0);
}

static void teardown(void)
{
	fr_cctx_fini(&cc);
	fr_dctx_fini(&dc);
	fr_cctx_fini(&cc); /* idempotent */
	fr_dctx_fini(&dc);
}

TestSuite(seg, .init = setup, .fini = teardown);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint8_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)rng;
}

/* Text-like data: compresses a few times over, not trivially. */
static void fill_text(uint8_t *p, size_t n)
{
	static const char *const words[] = {"segment ",	 "frame ",   "zstd ",
					    "ferry ",	 "package ", "\n",
					    "manifest ", "0x1f2e "};

	for (size_t i = 0; i < n;) {
		const char *w = words[rnd() % 8];

		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
		if (i < n && rnd() % 4 == 0)
			p[i++] = rnd();
	}
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rnd();
}

/* dst of n bytes followed by a guard that must stay untouched. */
static uint8_t *guarded(size_t n)
{
	uint8_t *p = malloc(n + GUARD);

	cr_assert_not_null(p);
	memset(p, 0xcd, n + GUARD);
	return p;
}

static void assert_guard(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < GUARD; i++)
		cr_assert_eq(p[n + i], 0xcd, "wrote past raw_len at +%zu", i);
}

/* Compress text of n bytes at level; returns the payload (caller frees). */
static uint8_t *make(size_t n, int level, uint8_t **raw, size_t *stored)
{
	size_t cap = fr_seg_bound(n);
	uint8_t *src = malloc(n), *dst = malloc(cap);
	ssize_t r;

	cr_assert(src && dst);
	fill_text(src, n);
	r = fr_seg_compress(&cc, dst, cap, src, n, level);
	cr_assert_gt(r, 0, "level %d: %zd", level, r);
	*raw = src;
	*stored = (size_t)r;
	return dst;
}

Test(seg, round_trip_levels)
{
	static const int levels[] = {1, 3, 9, 19};
	size_t n = 64 << 10;

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		uint8_t *raw, *z, *out = guarded(n);
		size_t stored;

		z = make(n, levels[i], &raw, &stored);
		cr_assert_lt(stored, n * 97 / 100);
		cr_assert_eq(fr_seg_decompress(&dc, out, n, z, stored), 0);
		cr_assert_eq(memcmp(out, raw, n), 0);
		assert_guard(out, n);
		free(raw);
		free(z);
		free(out);
	}
}

Test(seg, context_reuse)
{
	/* One context per worker: many segments of different sizes. */
	for (size_t n = 4096; n <= (256u << 10); n *= 4) {
		uint8_t *raw, *z, *out = guarded(n);
		size_t stored;

		z = make(n, 1, &raw, &stored);
		cr_assert_eq(fr_seg_decompress(&dc, out, n, z, stored), 0);
		cr_assert_eq(memcmp(out, raw, n), 0);
		free(raw);
		free(z);
		free(out);
	}
}

Test(seg, incompressible_goes_raw)
{
	size_t n = 64 << 10, cap = fr_seg_bound(n);
	uint8_t *src = malloc(n), *dst = malloc(cap);

	fill_random(src, n);
	cr_assert_eq(fr_seg_compress(&cc, dst, cap, src, n, 3), 0);
	cr_assert_eq(fr_seg_compress(&cc, dst, cap, src, n, 19), 0);
	/* A cap at the worth-it limit also just says "send raw". */
	cr_assert_eq(fr_seg_compress(&cc, dst, n * 97 / 100, src, n, 3), 0);
	free(src);
	free(dst);
}

Test(seg, bad_level_and_small_cap)
{
	size_t n = 64 << 10, cap = fr_seg_bound(n);
	uint8_t *src = malloc(n), *dst = malloc(cap);

	fill_text(src, n);
	cr_assert_eq(fr_seg_compress(&cc, dst, cap, src, n, 0), -EINVAL);
	cr_assert_eq(fr_seg_compress(&cc, dst, cap, src, n, 23), -EINVAL);
	cr_assert_eq(fr_seg_compress(&cc, dst, 16, src, n, 3), -ENOBUFS);
	free(src);
	free(dst);
}

Test(seg, truncated_payload)
{
	size_t n = 64 << 10, stored;
	uint8_t *raw, *z = make(n, 3, &raw, &stored), *out = guarded(n);

	for (size_t cut = 1; cut < stored; cut += (cut < 64 ? 1 : 97)) {
		cr_assert_eq(fr_seg_decompress(&dc, out, n, z, stored - cut),
			     FR_E_DECOMPRESS, "cut %zu", cut);
		assert_guard(out, n);
	}
	cr_assert_eq(fr_seg_decompress(&dc, out, n, z, 0), FR_E_DECOMPRESS);
	free(raw);
	free(z);
	free(out);
}

Test(seg, trailing_bytes)
{
	size_t n = 16 << 10, stored;
	uint8_t *raw, *z = make(n, 3, &raw, &stored), *out = guarded(n);
	uint8_t *two = malloc(2 * stored + 1);

	memcpy(two, z, stored);
	two[stored] = 0;
	cr_assert_eq(fr_seg_decompress(&dc, out, n, two, stored + 1),
		     FR_E_DECOMPRESS);
	/* A second, complete frame after the first is still "more". */
	memcpy(two + stored, z, stored);
	cr_assert_eq(fr_seg_decompress(&dc, out, n, two, 2 * stored),
		     FR_E_DECOMPRESS);
	cr_assert_eq(fr_seg_decompress(&dc, out, 2 * n, two, 2 * stored),
		     FR_E_DECOMPRESS);
	assert_guard(out, n);
	free(two);
	free(raw);
	free(z);
	free(out);
}

Test(seg, wrong_raw_len)
{
	size_t n = 64 << 10, stored;
	uint8_t *raw, *z = make(n, 3, &raw, &stored), *out = guarded(n + 1);

	cr_assert_eq(fr_seg_decompress(&dc, out, n - 1, z, stored),
		     FR_E_DECOMPRESS);
	assert_guard(out, n - 1);
	cr_assert_eq(fr_seg_decompress(&dc, out, n + 1, z, stored),
		     FR_E_DECOMPRESS);
	cr_assert_eq(fr_seg_decompress(&dc, out, 1, z, stored),
		     FR_E_DECOMPRESS);
	cr_assert_eq(fr_seg_decompress(&dc, out, 0, z, stored),
		     FR_E_DECOMPRESS);
	/* And the context still works after the failures. */
	cr_assert_eq(fr_seg_decompress(&dc, out, n, z, stored), 0);
	cr_assert_eq(memcmp(out, raw, n), 0);
	free(raw);
	free(z);
	free(out);
}

Test(seg, garbage)
{
	size_t n = 4096;
	uint8_t junk[512], *out = guarded(n);

	for (int round = 0; round < 200; round++) {
		size_t len = 1 + rnd() % sizeof(junk);

		fill_random(junk, len);
		if (round % 2) /* a real magic, garbage behind it */
			memcpy(junk, "\x28\xb5\x2f\xfd", len < 4 ? len : 4);
		cr_assert_eq(fr_seg_decompress(&dc, out, n, junk, len),
			     FR_E_DECOMPRESS);
		assert_guard(out, n);
	}
	/* A skippable frame is a valid zstd frame that yields nothing. */
	memcpy(junk,
	       "\x50\x2a\x4d\x18\x04\x00\x00\x00"
	       "abcd",
	       12);
	cr_assert_eq(fr_seg_decompress(&dc, out, n, junk, 12), FR_E_DECOMPRESS);
	free(out);
}

Test(seg, bomb_with_declared_size)
{
	size_t big = 16u << 20, cap = fr_seg_bound(big), small = 4096;
	uint8_t *zeros = calloc(1, big), *z = malloc(cap),
		*out = guarded(small);
	ssize_t r = fr_seg_compress(&cc, z, cap, zeros, big, 3);

	cr_assert_gt(r, 0);
	cr_assert_lt(r, 4096);
	cr_assert_eq(fr_seg_decompress(&dc, out, small, z, (size_t)r),
		     FR_E_DECOMPRESS);
	assert_guard(out, small);
	free(zeros);
	free(z);
	free(out);
}

/*
 * A frame without a content size (so only the output capacity can stop
 * it): 64 RLE blocks of 128 KiB each, 8 MiB from a few hundred bytes.
 */
static size_t rle_bomb(uint8_t *p, int blocks)
{
	size_t n = 0;

	memcpy(p, "\x28\xb5\x2f\xfd", 4);
	n = 4;
	p[n++] = 0x00;	 /* no content size, no checksum, not single-segment */
	p[n++] = 7 << 3; /* window 128 KiB */
	for (int i = 0; i < blocks; i++) {
		uint32_t bh = (128u << 10) << 3 | 1u << 1 | (i == blocks - 1);

		p[n++] = (uint8_t)bh;
		p[n++] = (uint8_t)(bh >> 8);
		p[n++] = (uint8_t)(bh >> 16);
		p[n++] = 'A';
	}
	return n;
}

Test(seg, bomb_without_declared_size)
{
	size_t full = 64u * (128u << 10), small = 4096;
	uint8_t frame[512], *out = guarded(small), *all = guarded(full);
	size_t len = rle_bomb(frame, 64);

	cr_assert_eq(fr_seg_decompress(&dc, out, small, frame, len),
		     FR_E_DECOMPRESS);
	assert_guard(out, small);
	cr_assert_eq(fr_seg_decompress(&dc, all, full - 1, frame, len),
		     FR_E_DECOMPRESS);
	assert_guard(all, full - 1);
	/* The same bytes are a good frame when raw_len is the truth. */
	cr_assert_eq(fr_seg_decompress(&dc, all, full, frame, len), 0);
	for (size_t i = 0; i < full; i += 4093)
		cr_assert_eq(all[i], 'A');
	free(out);
	free(all);
}

/* Compress src in pieces of at most piece bytes; returns the total. */
static size_t stream_all(const uint8_t *src, size_t n, int level,
			 uint8_t *dst, size_t cap, size_t piece)
{
	size_t in_pos = 0, out = 0;
	bool done = false;

	cr_assert_eq(fr_seg_stream_begin(&cc, n, level, NULL, 0), 0);
	while (!done) {
		size_t room = cap - out < piece ? cap - out : piece;
		ssize_t r = fr_seg_stream_next(&cc, src, n, &in_pos, dst + out,
					       room, &done);
		cr_assert_geq(r, 0, "stream: %zd", r);
		cr_assert(r > 0 || done || room == 0);
		out += (size_t)r;
	}
	cr_assert_eq(in_pos, n);
	return out;
}

/*
 * A streamed segment is one standard frame with its content size, and its
 * bytes do not depend on how the output is cut: a frame cut on a line is
 * compressed again and goes on from the byte where it was cut.
 */
Test(seg, stream_round_trip_and_cut_independent)
{
	size_t n = 1u << 20, cap = fr_seg_bound(n);
	uint8_t *src = malloc(n), *a = malloc(cap), *b = malloc(cap);
	uint8_t *out = guarded(n);
	static const size_t pieces[] = {1, 777, 65536, 1u << 22};

	cr_assert(src && a && b);
	fill_text(src, n);
	for (int level = 3; level <= 19; level += 16) {
		size_t la = stream_all(src, n, level, a, cap, 65536);
		cr_assert_lt(la, n / 2);
		cr_assert_eq(fr_seg_decompress(&dc, out, n, a, la), 0);
		cr_assert_eq(memcmp(out, src, n), 0);
		assert_guard(out, n);
		for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
			size_t lb = stream_all(src, n, level, b, cap, pieces[i]);
			cr_assert_eq(lb, la, "level %d, pieces of %zu", level,
				     pieces[i]);
			cr_assert_eq(memcmp(a, b, la), 0, "level %d, pieces of %zu",
				     level, pieces[i]);
		}
	}
	/* the context is then good for whole segments again */
	ssize_t w = fr_seg_compress(&cc, b, cap, src, n, 3);
	cr_assert_gt(w, 0);
	cr_assert_eq(fr_seg_decompress(&dc, out, n, b, (size_t)w), 0);
	cr_assert_eq(memcmp(out, src, n), 0);
	cr_assert_eq(fr_seg_stream_begin(&cc, n, 0, NULL, 0), -EINVAL);
	cr_assert_eq(fr_seg_stream_begin(&cc, 0, 3, NULL, 0), -EINVAL);
	free(src);
	free(a);
	free(b);
	free(out);
}

/*
 * Against another segment (a zstd prefix): smaller when the two share
 * content, decompressed only with the same prefix, and again the same
 * bytes however the output is cut (a resumed frame with a reference).
 */
Test(seg, reference_round_trip)
{
	size_t n = 256u << 10, cap = fr_seg_bound(n);
	uint8_t *prev = malloc(n), *src = malloc(n), *a = malloc(cap);
	uint8_t *b = malloc(cap), *out = guarded(n), *other = malloc(n);

	cr_assert(prev && src && a && b && other);
	fill_random(prev, n); /* random, but src repeats most of it */
	memcpy(src, prev, n);
	for (size_t i = 0; i < n; i += 4096)
		src[i] ^= 0x5a;
	fill_random(other, n);
	ssize_t alone = fr_seg_compress(&cc, a, cap, src, n, 19);
	ssize_t with = fr_seg_compress_ref(&cc, b, cap, src, n, 19, prev, n);
	cr_assert_eq(alone, 0, "random data goes raw alone");
	cr_assert_gt(with, 0);
	cr_assert_lt((size_t)with, n / 10, "with the reference: %zd", with);
	cr_assert_eq(fr_seg_decompress_ref(&dc, out, n, b, (size_t)with, prev, n), 0);
	cr_assert_eq(memcmp(out, src, n), 0);
	assert_guard(out, n);
	/* without it, or with other bytes, it does not come back */
	cr_assert_eq(fr_seg_decompress(&dc, out, n, b, (size_t)with),
		     FR_E_DECOMPRESS);
	int r = fr_seg_decompress_ref(&dc, out, n, b, (size_t)with, other, n);
	cr_assert(r == FR_E_DECOMPRESS || memcmp(out, src, n) != 0);
	/* and the context forgets the prefix: a plain frame decodes */
	ssize_t plain = fr_seg_compress(&cc, a, cap, prev, n, 1);
	cr_assert_geq(plain, 0);

	/* streamed against the reference: the same bytes in any pieces */
	static const size_t pieces[] = {333, 65536, 1u << 22};
	size_t first = 0;
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		size_t in_pos = 0, len = 0;
		bool done = false;
		cr_assert_eq(fr_seg_stream_begin(&cc, n, 19, prev, n), 0);
		while (!done) {
			size_t room = cap - len < pieces[i] ? cap - len : pieces[i];
			ssize_t k = fr_seg_stream_next(&cc, src, n, &in_pos,
						       b + len, room, &done);
			cr_assert_geq(k, 0);
			len += (size_t)k;
		}
		if (i == 0) {
			first = len;
			memcpy(a, b, len);
		}
		cr_assert_eq(len, first);
		cr_assert_eq(memcmp(a, b, len), 0, "pieces of %zu", pieces[i]);
		cr_assert_eq(fr_seg_decompress_ref(&dc, out, n, b, len, prev, n), 0);
		cr_assert_eq(memcmp(out, src, n), 0);
	}
	free(prev);
	free(src);
	free(a);
	free(b);
	free(out);
	free(other);
}
