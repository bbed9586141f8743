/*
 * codec_known.c - known answers: values computed once by tools other than
 * the code under test, and written down here, so that a drift in the hash
 * or in a byte format fails a test instead of being checked against
 * itself.
 *
 * XXH3-128 and XXH3-64 values come from xxHash's own command-line tool
 * (`xxhsum -H2`, `xxhsum -H3`, Debian's xxhash package, version 0.8.1);
 * fr_hash128 stores the canonical (big-endian) form, as xxhsum prints it.
 * The frame header was written down field by field from FORMAT.md; its
 * checksum (XXH3-64 of the first 56 bytes, stored little-endian) was
 * checked with `xxhsum -H3` on those 56 bytes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

static void from_hex(const char *hex, uint8_t *out, size_t n)
{
	cr_assert_eq(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* The inputs: "", "a", "ferry", 1000 bytes i % 251, 1 MiB (7i + 3) % 256. */
static uint8_t *input(int which, size_t *len)
{
	static const size_t lens[] = {0, 1, 5, 1000, 1u << 20};
	uint8_t *b = malloc(lens[which] + 1);

	cr_assert_not_null(b);
	*len = lens[which];
	for (size_t i = 0; i < *len; i++)
		b[i] = which == 1   ? 'a'
		       : which == 2 ? (uint8_t)"ferry"[i]
		       : which == 3 ? (uint8_t)(i % 251)
				    : (uint8_t)((i * 7 + 3) % 256);
	return b;
}

static const char *const xxh128[] = {
	"99aa06d3014798d86001c324468d497f", "a96faf705af16834e6c632b61e964e1f",
	"85ca3a0dfcfe59849331f43fcdbd2eb8", "18bf41bc8229e27733ef703fb2b20ed1",
	"6b909c52253d6e1b74823cf2cd45b0fe",
};
static const uint64_t xxh64[] = {
	0x2d06800538d394c2ull, 0xe6c632b61e964e1full, 0xd152ce34ff76fb2bull,
	0x33ef703fb2b20ed1ull, 0x74823cf2cd45b0feull,
};

Test(known, xxh3_128_one_shot_and_streamed)
{
	for (int w = 0; w < 5; w++) {
		size_t len;
		uint8_t *b = input(w, &len), want[FR_HASH_LEN], got[FR_HASH_LEN];
		struct fr_hasher h;

		from_hex(xxh128[w], want, FR_HASH_LEN);
		fr_hash128(b, len, got);
		cr_assert_arr_eq(got, want, FR_HASH_LEN, "XXH3-128 of input %d", w);
		/* streamed in uneven pieces: the same value */
		cr_assert_eq(fr_hasher_init(&h), 0);
		for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 + 1)
			fr_hasher_update(&h, b + off, step < len - off ? step : len - off);
		fr_hasher_final(&h, got);
		fr_hasher_fini(&h);
		cr_assert_arr_eq(got, want, FR_HASH_LEN, "streamed XXH3-128 of input %d", w);
		free(b);
	}
}

Test(known, xxh3_64)
{
	for (int w = 0; w < 5; w++) {
		size_t len;
		uint8_t *b = input(w, &len);

		cr_assert_eq(fr_hash64(b, len), xxh64[w], "XXH3-64 of input %d", w);
		free(b);
	}
}

/* magic "FRSG" LE, version 1, flags zstd, level 3, reserved 0, package id
 * 10..1f, index 7, raw 8 MiB, stored 123456, ref 0, hash a0..af, checksum */
static const char *const frame_hdr =
	"4652534701010300101112131415161718191a1b1c1d1e1f0700000000008000"
	"40e2010000000000a0a1a2a3a4a5a6a7a8a9aaabacadaeafaabb28c1d281c195";

static struct fr_frame known_frame(void)
{
	struct fr_frame f;

	memset(&f, 0, sizeof(f));
	f.flags = FR_FRAME_ZSTD;
	f.level = 3;
	for (int i = 0; i < FR_HASH_LEN; i++) {
		f.pkg[i] = (uint8_t)(0x10 + i);
		f.hash[i] = (uint8_t)(0xa0 + i);
	}
	f.index = 7;
	f.raw_len = 8u << 20;
	f.stored_len = 123456;
	return f;
}

Test(known, frame_header_bytes)
{
	struct fr_frame f = known_frame(), g;
	uint8_t want[FR_FRAME_HDR], got[FR_FRAME_HDR];

	from_hex(frame_hdr, want, FR_FRAME_HDR);
	fr_frame_pack(got, &f);
	cr_assert_arr_eq(got, want, FR_FRAME_HDR, "the frame header's bytes drifted");
	cr_assert_eq(fr_frame_unpack(&g, want), 0);
	cr_assert_eq(g.index, 7);
	cr_assert_eq(g.raw_len, 8u << 20);
	cr_assert_eq(g.stored_len, 123456);
	cr_assert_arr_eq(g.hash, f.hash, FR_HASH_LEN);
	want[FR_FRAME_HDR - 1] ^= 1; /* the checksum no longer matches */
	cr_assert_eq(fr_frame_unpack(&g, want), FR_E_HDR_CHECKSUM);
}
