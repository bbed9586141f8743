/*
 * codec_hash.c - the segment hash is XXH3-128 whatever path computes it:
 * fr_hash128 (libxxhash's run-time dispatch on x86-64) and the hasher fed
 * in pieces give the bytes of the portable inline XXH3_128bits, in its
 * canonical (big-endian) form, for every length class the vector code
 * treats apart, at every alignment.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fr_codec.h"

static void reference(const void *p, size_t len, uint8_t out[FR_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
	memcpy(out, c.digest, FR_HASH_LEN);
}

static uint8_t *pattern(size_t len)
{
	uint8_t *b = malloc(len + 64);
	uint32_t x = 2463534242u;

	cr_assert_not_null(b);
	for (size_t i = 0; i < len + 64; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
	return b;
}

Test(hash, one_call_equals_the_portable_code)
{
	static const size_t lens[] = {0,   1,    3,    16,   17,      128,
				      129, 240,  241,  1023, 1024,    1025,
				      4096, 65537, 1u << 20, (8u << 20) + 13};
	uint8_t *b = pattern((8u << 20) + 13);
	uint8_t want[FR_HASH_LEN], got[FR_HASH_LEN];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t off = 0; off < 64; off += 13) {
			reference(b + off, lens[i], want);
			fr_hash128(b + off, lens[i], got);
			cr_assert(!memcmp(want, got, FR_HASH_LEN),
				  "length %zu at offset %zu", lens[i], off);
		}
	free(b);
}

Test(hash, pieces_equal_one_call)
{
	size_t len = (3u << 20) + 77;
	uint8_t *b = pattern(len);
	uint8_t want[FR_HASH_LEN], got[FR_HASH_LEN];
	struct fr_hasher h;

	reference(b, len, want);
	cr_assert_eq(fr_hasher_init(&h), 0);
	for (size_t at = 0, step = 1; at < len; step = step * 3 + 1) {
		size_t n = step < len - at ? step : len - at;
		fr_hasher_update(&h, b + at, n);
		at += n;
	}
	fr_hasher_final(&h, got);
	cr_assert(!memcmp(want, got, FR_HASH_LEN));
	fr_hasher_fini(&h);
	free(b);
}
