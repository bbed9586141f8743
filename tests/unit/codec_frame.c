/*
 * codec_frame.c - segment frame header, error names and hashing.
 *
 * Each corrupted field must come back with its own code, so the tests that
 * target a field recompute the header checksum first; without that, every
 * corruption would (rightly) read as FR_E_HDR_CHECKSUM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "fr_codec.h"

static struct fr_frame sample(void)
{
	struct fr_frame f;

	memset(&f, 0, sizeof(f));
	f.flags = FR_FRAME_ZSTD;
	f.level = 3;
	for (int i = 0; i < FR_HASH_LEN; i++) {
		f.pkg[i] = (uint8_t)(0xa0 + i);
		f.hash[i] = (uint8_t)(0x10 + i);
	}
	f.index = 0x01020304;
	f.raw_len = 8u << 20;
	f.stored_len = 12345;
	return f;
}

static void reseal(uint8_t *h)
{
	fr_put64(h + 56, fr_hash64(h, 56));
}

/* Pack the sample, let fix() damage it, reseal, unpack. */
static int unpack_with(void (*fix)(uint8_t *h))
{
	struct fr_frame f = sample(), g;
	uint8_t h[FR_FRAME_HDR];

	fr_frame_pack(h, &f);
	fix(h);
	reseal(h);
	return fr_frame_unpack(&g, h);
}

Test(frame, round_trip)
{
	struct fr_frame f = sample(), g;
	uint8_t h[FR_FRAME_HDR];

	fr_frame_pack(h, &f);
	cr_assert_eq(memcmp(h, "FRSG", 4), 0);
	memset(&g, 0xee, sizeof(g));
	cr_assert_eq(fr_frame_unpack(&g, h), 0);
	cr_assert_eq(g.flags, f.flags);
	cr_assert_eq(g.level, f.level);
	cr_assert_eq(g.index, f.index);
	cr_assert_eq(g.raw_len, f.raw_len);
	cr_assert_eq(g.stored_len, f.stored_len);
	cr_assert_eq(memcmp(g.pkg, f.pkg, FR_HASH_LEN), 0);
	cr_assert_eq(memcmp(g.hash, f.hash, FR_HASH_LEN), 0);
}

Test(frame, raw_round_trip)
{
	struct fr_frame f = sample(), g;
	uint8_t h[FR_FRAME_HDR];

	f.flags = 0;
	f.level = 0;
	f.raw_len = f.stored_len = 1;
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_frame_unpack(&g, h), 0);
	cr_assert_eq(g.raw_len, 1);
	f.raw_len = f.stored_len = FR_SEG_MAX;
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_frame_unpack(&g, h), 0);
}

static void bad_magic(uint8_t *h)
{
	h[0] ^= 1;
}
static void bad_version(uint8_t *h)
{
	h[4] = 2;
}
static void bad_version0(uint8_t *h)
{
	h[4] = 0;
}
static void bad_flags(uint8_t *h)
{
	h[5] = 0x02;
}
static void bad_flags_high(uint8_t *h)
{
	h[5] = 0x81;
}
static void bad_rsvd7(uint8_t *h)
{
	h[7] = 1;
}
static void bad_rsvd36(uint8_t *h)
{
	h[36] = 1;
}
static void bad_rsvd39(uint8_t *h)
{
	h[39] = 0x80;
}
static void raw_zero(uint8_t *h)
{
	fr_put32(h + 28, 0);
}
static void raw_big(uint8_t *h)
{
	fr_put32(h + 28, FR_SEG_MAX + 1);
}
static void raw_huge(uint8_t *h)
{
	fr_put32(h + 28, 0xffffffffu);
}
static void stored_zero(uint8_t *h)
{
	fr_put32(h + 32, 0);
}
static void stored_over_bound(uint8_t *h)
{
	fr_put32(h + 32, (uint32_t)fr_seg_bound(fr_get32(h + 28)) + 1);
}
static void stored_at_bound(uint8_t *h)
{
	fr_put32(h + 32, (uint32_t)fr_seg_bound(fr_get32(h + 28)));
}
static void raw_stored_short(uint8_t *h)
{
	h[5] = 0;
	fr_put32(h + 32, fr_get32(h + 28) - 1);
}
static void raw_stored_long(uint8_t *h)
{
	h[5] = 0;
	fr_put32(h + 32, fr_get32(h + 28) + 1);
}
static void raw_stored_equal(uint8_t *h)
{
	h[5] = 0;
	fr_put32(h + 32, fr_get32(h + 28));
}

Test(frame, each_field_its_own_code)
{
	cr_assert_eq(unpack_with(bad_magic), FR_E_BAD_MAGIC);
	cr_assert_eq(unpack_with(bad_version), FR_E_BAD_VERSION);
	cr_assert_eq(unpack_with(bad_version0), FR_E_BAD_VERSION);
	cr_assert_eq(unpack_with(bad_flags), FR_E_BAD_FLAGS);
	cr_assert_eq(unpack_with(bad_flags_high), FR_E_BAD_FLAGS);
	cr_assert_eq(unpack_with(bad_rsvd7), FR_E_BAD_RESERVED);
	cr_assert_eq(unpack_with(bad_rsvd36), FR_E_BAD_RESERVED);
	cr_assert_eq(unpack_with(bad_rsvd39), FR_E_BAD_RESERVED);
	cr_assert_eq(unpack_with(raw_zero), FR_E_RAW_LENGTH);
	cr_assert_eq(unpack_with(raw_big), FR_E_RAW_LENGTH);
	cr_assert_eq(unpack_with(raw_huge), FR_E_RAW_LENGTH);
	cr_assert_eq(unpack_with(stored_zero), FR_E_STORED_LENGTH);
	cr_assert_eq(unpack_with(stored_over_bound), FR_E_STORED_LENGTH);
	cr_assert_eq(unpack_with(stored_at_bound), 0);
	cr_assert_eq(unpack_with(raw_stored_short), FR_E_STORED_LENGTH);
	cr_assert_eq(unpack_with(raw_stored_long), FR_E_STORED_LENGTH);
	cr_assert_eq(unpack_with(raw_stored_equal), 0);
}

Test(frame, checksum_catches_any_flip)
{
	struct fr_frame f = sample(), g;
	uint8_t h[FR_FRAME_HDR];

	/* Bytes 0..4 are magic and version, checked before the checksum. */
	for (int i = 5; i < FR_FRAME_HDR; i++) {
		for (int bit = 0; bit < 8; bit++) {
			fr_frame_pack(h, &f);
			h[i] ^= (uint8_t)(1u << bit);
			cr_assert_eq(fr_frame_unpack(&g, h), FR_E_HDR_CHECKSUM,
				     "byte %d bit %d", i, bit);
		}
	}
}

Test(frame, bound_is_zstd_bound)
{
	cr_assert_geq(fr_seg_bound(FR_SEG_MAX), FR_SEG_MAX);
	cr_assert_lt(fr_seg_bound(FR_SEG_MAX), 0xffffffffu);
	cr_assert_gt(fr_seg_bound(1), 1);
}

Test(err, names_and_messages)
{
	cr_assert_str_eq(fr_err_name(FR_E_BAD_MAGIC), "FR_E_BAD_MAGIC");
	cr_assert_str_eq(fr_err_name(FR_E_INCOMPLETE), "FR_E_INCOMPLETE");
	cr_assert_str_eq(fr_strerror(FR_E_BAD_MAGIC), "bad magic number");
	cr_assert_str_eq(fr_strerror(FR_E_INCOMPLETE), "package is incomplete");
	cr_assert_str_eq(fr_err_name(-ENOSPC), "ENOSPC");
	cr_assert_str_eq(fr_err_name(-ENOMEM), "ENOMEM");
	cr_assert_str_eq(fr_strerror(-ENOSPC), strerror(ENOSPC));
	cr_assert_lt(FR_E__END, -4095);
	cr_assert_not_null(fr_strerror(FR_E__BASE));
	cr_assert_not_null(fr_strerror(FR_E__END));
	cr_assert_not_null(fr_err_name(12345));
	cr_assert_not_null(fr_err_name(-4000));
}

Test(err, every_code_distinct)
{
	for (int a = FR_E__BASE + 1; a < FR_E__END; a++) {
		cr_assert_eq(strncmp(fr_err_name(a), "FR_E_", 5), 0);
		cr_assert_gt(strlen(fr_strerror(a)), 0);
		for (int b = a + 1; b < FR_E__END; b++)
			cr_assert_str_neq(fr_err_name(a), fr_err_name(b));
	}
}

Test(hash, streaming_matches_one_shot)
{
	static uint8_t data[100000];
	uint8_t a[FR_HASH_LEN], b[FR_HASH_LEN];
	struct fr_hasher h = {0};

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	fr_hash128(data, sizeof(data), a);
	cr_assert_eq(fr_hasher_init(&h), 0);
	for (size_t off = 0, step = 1; off < sizeof(data);
	     step = step * 3 + 1) {
		size_t n =
		    step < sizeof(data) - off ? step : sizeof(data) - off;

		fr_hasher_update(&h, data + off, n);
		off += n;
	}
	fr_hasher_final(&h, b);
	cr_assert_eq(memcmp(a, b, FR_HASH_LEN), 0);

	fr_hasher_reset(&h);
	fr_hasher_update(&h, "x", 1);
	fr_hasher_final(&h, b);
	fr_hash128("x", 1, a);
	cr_assert_eq(memcmp(a, b, FR_HASH_LEN), 0);
	fr_hasher_fini(&h);
	fr_hasher_fini(&h);

	data[5] ^= 1;
	fr_hash128(data, sizeof(data), b);
	fr_hash128(data, sizeof(data) - 1, a);
	cr_assert_neq(memcmp(a, b, FR_HASH_LEN), 0);
	cr_assert_neq(fr_hash64(data, 10), fr_hash64(data + 1, 10));
}

Test(hash, hex_round_trip)
{
	uint8_t in[FR_HASH_LEN], out[FR_HASH_LEN];
	char hex[2 * FR_HASH_LEN + 1];

	for (int i = 0; i < FR_HASH_LEN; i++)
		in[i] = (uint8_t)(i * 17 + 3);
	cr_assert_eq(fr_hex(in, FR_HASH_LEN, hex), hex);
	cr_assert_str_eq(hex, "031425364758697a8b9cadbecfe0f102");
	cr_assert_eq(fr_unhex(hex, out, FR_HASH_LEN), 0);
	cr_assert_eq(memcmp(in, out, FR_HASH_LEN), 0);
	cr_assert_eq(
	    fr_unhex("031425364758697A8B9CADBECFE0F102", out, FR_HASH_LEN), 0);
	cr_assert_eq(memcmp(in, out, FR_HASH_LEN), 0);
	cr_assert_eq(fr_unhex("0314", out, FR_HASH_LEN), FR_E_BAD_NAME);
	cr_assert_eq(fr_unhex("zz", out, 1), FR_E_BAD_NAME);
	cr_assert_eq(fr_unhex("0g", out, 1), FR_E_BAD_NAME);
}

/* A streamed frame's header: zstd, stored_len 0 (told after the payload).
 * Only fr_frame_unpack_wire takes it; parcels and the like refuse it. */
Test(frame, streamed_header)
{
	struct fr_frame f = sample(), g;
	uint8_t h[FR_FRAME_HDR];

	f.flags = FR_FRAME_ZSTD | FR_FRAME_STREAM;
	f.stored_len = 0;
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_frame_unpack(&g, h), FR_E_BAD_FLAGS);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), 0);
	cr_assert_eq(g.flags, FR_FRAME_ZSTD | FR_FRAME_STREAM);
	cr_assert_eq(g.stored_len, 0);
	cr_assert_eq(g.raw_len, f.raw_len);

	f.stored_len = 100; /* a length before the payload is a lie */
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), FR_E_STORED_LENGTH);

	f.stored_len = 0; /* streamed but raw: no such frame */
	f.flags = FR_FRAME_STREAM;
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), FR_E_BAD_FLAGS);

	f = sample(); /* a whole frame reads the same either way */
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), 0);
	cr_assert_eq(g.stored_len, f.stored_len);
	h[5] = 0x04; /* any other flag is still refused */
	reseal(h);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), FR_E_BAD_FLAGS);
}

/* A frame against another segment: ref in the otherwise reserved field,
 * wire only, zstd only; without the flag that field must stay 0. */
Test(frame, reference_header)
{
	struct fr_frame f = sample(), g;
	uint8_t h[FR_FRAME_HDR];

	f.flags = FR_FRAME_ZSTD | FR_FRAME_REF;
	f.ref = 0x00abcdef;
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_get32(h + 36), 0x00abcdef);
	cr_assert_eq(fr_frame_unpack(&g, h), FR_E_BAD_FLAGS);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), 0);
	cr_assert_eq(g.ref, 0x00abcdef);
	cr_assert_eq(g.flags, FR_FRAME_ZSTD | FR_FRAME_REF);

	f.flags = FR_FRAME_REF; /* raw against a reference: no such frame */
	f.stored_len = f.raw_len;
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), FR_E_BAD_FLAGS);

	f = sample(); /* the field without the flag is reserved */
	f.ref = 7;    /* not packed without the flag */
	fr_frame_pack(h, &f);
	cr_assert_eq(fr_get32(h + 36), 0);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), 0);
	cr_assert_eq(g.ref, 0);
	fr_put32(h + 36, 7);
	reseal(h);
	cr_assert_eq(fr_frame_unpack_wire(&g, h), FR_E_BAD_RESERVED);
}
