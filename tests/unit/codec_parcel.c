/*
 * codec_parcel.c - the parcel volume header, record header and trailer.
 *
 * As for frames, a test that damages one field recomputes the checksum
 * first, so that the field's own check is what answers.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "fr_codec.h"

/* a version 3 header: sealed, the manifest's length, a key check */
static struct fr_vol_hdr sample(void)
{
	struct fr_vol_hdr h;

	memset(&h, 0, sizeof(h));
	h.version = FR_VOL_VERSION;
	for (int i = 0; i < FR_HASH_LEN; i++)
		h.parcel[i] = (uint8_t)(0x40 + i);
	for (int i = 0; i < FR_CHECK_LEN; i++)
		h.check[i] = (uint8_t)(0x80 + i);
	h.mf_len = 123456;
	h.volume = 3;
	h.n_segments = 200;
	h.seg_size = 8u << 20;
	strcpy(h.from, "CEN");
	strcpy(h.to, "LAB-2");
	strcpy(h.account, "CEN_X");
	h.created = 1764100000;
	return h;
}

static void reseal_vol(uint8_t *b)
{
	fr_put64(b + 120, fr_hash64(b, 120));
}

/* h packed, then changed by fix and resealed: what unpack says */
static int hdr_with(struct fr_vol_hdr h, void (*fix)(uint8_t *b))
{
	struct fr_vol_hdr g;
	uint8_t b[FR_VOL_HDR];

	fr_vol_hdr_pack(b, &h);
	fix(b);
	reseal_vol(b);
	return fr_vol_hdr_unpack(&g, b);
}

static int vol_with(void (*fix)(uint8_t *b)) { return hdr_with(sample(), fix); }

Test(volume, round_trip)
{
	struct fr_vol_hdr h = sample(), g;
	uint8_t b[FR_VOL_HDR];

	fr_vol_hdr_pack(b, &h);
	cr_assert_eq(memcmp(b, "FRPV", 4), 0);
	cr_assert_eq(fr_get16(b + 4), 3);
	cr_assert_eq(fr_get32(b + 52), 123456);
	cr_assert_eq(memcmp(b + 24, h.check, FR_CHECK_LEN), 0);
	memset(&g, 0xee, sizeof(g));
	cr_assert_eq(fr_vol_hdr_unpack(&g, b), 0);
	cr_assert_eq(memcmp(g.parcel, h.parcel, FR_HASH_LEN), 0);
	cr_assert_eq(memcmp(g.check, h.check, FR_CHECK_LEN), 0);
	cr_assert_eq(g.volume, 3);
	cr_assert_eq(g.n_segments, 200);
	cr_assert_eq(g.seg_size, 8u << 20);
	cr_assert_str_eq(g.from, "CEN");
	cr_assert_str_eq(g.to, "LAB-2");
	cr_assert_str_eq(g.account, "CEN_X");
	cr_assert_eq(g.created, 1764100000);
	cr_assert_eq(g.version, FR_VOL_VERSION);
	cr_assert_eq(g.mf_len, 123456);
	cr_assert_eq(fr_vol_hdr_version(b), 3);
}

/*
 * Volumes of versions 1 and 2 (signed, not sealed) are refused, even
 * whole and valid in their own version: no cleartext fallback. The
 * importer tells them by fr_vol_hdr_version.
 */
Test(volume, older_versions_are_refused)
{
	for (uint16_t v = 1; v <= 2; v++) {
		struct fr_vol_hdr h = sample(), g;
		uint8_t b[FR_VOL_HDR];

		h.version = v;
		if (v == 1)
			h.mf_len = 0; /* as version 1 wrote it */
		fr_vol_hdr_pack(b, &h);
		cr_assert_eq(fr_vol_hdr_unpack(&g, b), FR_E_BAD_VERSION,
			     "version %u", v);
		cr_assert_eq(fr_vol_hdr_version(b), v);
	}
	/* not a volume at all: no version to tell */
	uint8_t junk[FR_VOL_HDR] = {'F', 'R', 'S', 'G', 2};
	cr_assert_eq(fr_vol_hdr_version(junk), 0);
}

/* the real thing: the first 128 bytes of a volume written by the ferry
 * before sealing (version 2; tests/e2e/data/parcel-v2.fpv) */
static const uint8_t v2_header[FR_VOL_HDR] = {
	0x46, 0x52, 0x50, 0x56, 0x02, 0x00, 0x00, 0x00, 0xfd, 0x63, 0x75, 0x5e,
	0xfa, 0x7f, 0x44, 0xed, 0xb4, 0x11, 0x77, 0x9b, 0x0b, 0xd5, 0xb1, 0x0a,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x10, 0x00, 0x7e, 0x00, 0x00, 0x00, 0x28, 0x28, 0x10, 0x6b,
	0x00, 0x00, 0x00, 0x00, 0x43, 0x45, 0x4e, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x41, 0x42, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x43, 0x45, 0x4e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xab, 0x28, 0x4e, 0x4e, 0xb0, 0x6c, 0x8e, 0x9e

};

Test(volume, a_version2_volume_of_an_older_ferry)
{
	struct fr_vol_hdr g;

	cr_assert_eq(fr_vol_hdr_version(v2_header), 2);
	cr_assert_eq(fr_vol_hdr_unpack(&g, v2_header), FR_E_BAD_VERSION);
}

static void f_mf0(uint8_t *b) { fr_put32(b + 52, 0); }
static void f_mfbig(uint8_t *b) { fr_put32(b + 52, FR_MANIFEST_MAX + 1); }
static void f_version4(uint8_t *b) { fr_put16(b + 4, 4); }

Test(volume, manifest_length_and_later_versions)
{
	cr_assert_eq(vol_with(f_mf0), FR_E_TOO_LARGE);
	cr_assert_eq(vol_with(f_mfbig), FR_E_TOO_LARGE);
	cr_assert_eq(vol_with(f_version4), FR_E_BAD_VERSION);
}

Test(volume, full_length_codes)
{
	struct fr_vol_hdr h = sample(), g;
	uint8_t b[FR_VOL_HDR];

	strcpy(h.from, "ABCDEFGHIJKLMNOP"); /* 16: no NUL on the medium */
	fr_vol_hdr_pack(b, &h);
	cr_assert_eq(fr_vol_hdr_unpack(&g, b), 0);
	cr_assert_str_eq(g.from, "ABCDEFGHIJKLMNOP");
}

static void f_magic(uint8_t *b) { b[0] ^= 1; }
static void f_version(uint8_t *b) { fr_put16(b + 4, 0); }
static void f_flags(uint8_t *b) { fr_put16(b + 6, 1); }
static void f_rsvd2(uint8_t *b) { b[115] = 1; }
static void f_vol0(uint8_t *b) { fr_put32(b + 40, 0); }
static void f_volbig(uint8_t *b) { fr_put32(b + 40, FR_VOL_MAX + 1); }
static void f_segsmall(uint8_t *b) { fr_put32(b + 48, FR_SEG_MIN - 1); }
static void f_segbig(uint8_t *b) { fr_put32(b + 48, FR_SEG_MAX + 1); }
static void f_nseg0(uint8_t *b) { fr_put32(b + 44, 0); }
static void f_from_empty(uint8_t *b) { memset(b + 64, 0, 16); }
static void f_to_slash(uint8_t *b) { b[81] = '/'; }
static void f_account_gap(uint8_t *b) { b[96 + 10] = 'Z'; } /* after NUL */

Test(volume, each_field_has_its_error)
{
	cr_assert_eq(vol_with(f_magic), FR_E_BAD_MAGIC);
	cr_assert_eq(vol_with(f_version), FR_E_BAD_VERSION);
	cr_assert_eq(vol_with(f_flags), FR_E_BAD_FLAGS);
	cr_assert_eq(vol_with(f_rsvd2), FR_E_BAD_RESERVED);
	cr_assert_eq(vol_with(f_vol0), FR_E_BAD_VOLUME);
	cr_assert_eq(vol_with(f_volbig), FR_E_BAD_VOLUME);
	cr_assert_eq(vol_with(f_segsmall), FR_E_SEG_SIZE);
	cr_assert_eq(vol_with(f_segbig), FR_E_SEG_SIZE);
	cr_assert_eq(vol_with(f_nseg0), FR_E_BAD_INDEX);
	cr_assert_eq(vol_with(f_from_empty), FR_E_BAD_SITE);
	cr_assert_eq(vol_with(f_to_slash), FR_E_BAD_SITE);
	cr_assert_eq(vol_with(f_account_gap), FR_E_BAD_SITE);
}

Test(volume, damage_without_reseal_is_a_checksum_error)
{
	struct fr_vol_hdr h = sample(), g;
	uint8_t b[FR_VOL_HDR];

	for (int i = 8; i < FR_VOL_HDR; i += 7) {
		fr_vol_hdr_pack(b, &h);
		b[i] ^= 0x20;
		cr_assert_eq(fr_vol_hdr_unpack(&g, b), FR_E_HDR_CHECKSUM,
			     "byte %d", i);
	}
}

Test(record, round_trip_and_errors)
{
	struct fr_rec_hdr r = {.type = FR_REC_FRAME, .len = 1000}, g;
	uint8_t b[FR_REC_HDR];

	fr_rec_hdr_pack(b, &r);
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), 0);
	cr_assert_eq(g.type, FR_REC_FRAME);
	cr_assert_eq(g.len, 1000);
	/* too long for the caller's bound */
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 999), FR_E_TOO_LARGE);
	/* a frame shorter than its header */
	r.len = FR_FRAME_HDR;
	fr_rec_hdr_pack(b, &r);
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), FR_E_TOO_LARGE);
	/* a trailer of the wrong size, an empty manifest */
	r = (struct fr_rec_hdr){.type = FR_REC_TRAILER, .len = 33};
	fr_rec_hdr_pack(b, &r);
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), FR_E_TOO_LARGE);
	r = (struct fr_rec_hdr){.type = FR_REC_MANIFEST, .len = 0};
	fr_rec_hdr_pack(b, &r);
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), FR_E_TOO_LARGE);
	/* unknown types */
	r = (struct fr_rec_hdr){.type = 0, .len = 10};
	fr_rec_hdr_pack(b, &r);
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), FR_E_BAD_RECORD);
	r.type = FR_REC_TRAILER + 1;
	fr_rec_hdr_pack(b, &r);
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), FR_E_BAD_RECORD);
	/* magic, then checksum */
	r = (struct fr_rec_hdr){.type = FR_REC_SEGLIST, .len = 10};
	fr_rec_hdr_pack(b, &r);
	b[1] ^= 1;
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), FR_E_BAD_MAGIC);
	fr_rec_hdr_pack(b, &r);
	b[9] ^= 1;
	cr_assert_eq(fr_rec_hdr_unpack(&g, b, 4096), FR_E_HDR_CHECKSUM);
}

Test(trailer, round_trip_and_errors)
{
	struct fr_vol_trailer t = {.volume = 4, .frames = 12, .first = 30,
				   .last = 41, .flags = FR_VOL_LAST,
				   .total = 4, .bytes = 1ull << 33};
	struct fr_vol_trailer g;
	uint8_t b[FR_TRAILER_LEN];

	for (int i = 0; i < 32; i++)
		t.chain[i] = (uint8_t)(0xc0 + i);
	fr_vol_trailer_pack(b, &t);
	cr_assert_eq(memcmp(b + 32, t.chain, 32), 0);
	cr_assert_eq(fr_vol_trailer_unpack(&g, b), 0);
	cr_assert_eq(memcmp(g.chain, t.chain, 32), 0);
	cr_assert_eq(g.volume, 4);
	cr_assert_eq(g.frames, 12);
	cr_assert_eq(g.first, 30);
	cr_assert_eq(g.last, 41);
	cr_assert_eq(g.total, 4);
	cr_assert_eq(g.bytes, 1ull << 33);

	struct fr_vol_trailer bad = t;
	bad.volume = 0;
	fr_vol_trailer_pack(b, &bad);
	cr_assert_eq(fr_vol_trailer_unpack(&g, b), FR_E_BAD_VOLUME);
	bad = t;
	bad.flags = 2;
	fr_vol_trailer_pack(b, &bad);
	cr_assert_eq(fr_vol_trailer_unpack(&g, b), FR_E_BAD_FLAGS);
	bad = t;
	bad.total = 5; /* the last volume is the count */
	fr_vol_trailer_pack(b, &bad);
	cr_assert_eq(fr_vol_trailer_unpack(&g, b), FR_E_BAD_VOLUME);
	bad = t;
	bad.flags = 0; /* not last, yet a count */
	fr_vol_trailer_pack(b, &bad);
	cr_assert_eq(fr_vol_trailer_unpack(&g, b), FR_E_BAD_VOLUME);
	bad = t;
	bad.first = 50;
	fr_vol_trailer_pack(b, &bad);
	cr_assert_eq(fr_vol_trailer_unpack(&g, b), FR_E_BAD_INDEX);
	/* an empty volume: no frames, first > last is fine */
	bad = (struct fr_vol_trailer){.volume = 2, .first = 1, .last = 0};
	fr_vol_trailer_pack(b, &bad);
	cr_assert_eq(fr_vol_trailer_unpack(&g, b), 0);
}

Test(site, codes)
{
	cr_assert_eq(fr_site_check("LAB"), 0);
	cr_assert_eq(fr_site_check("a-b_9"), 0);
	cr_assert_eq(fr_site_check(""), FR_E_BAD_SITE);
	cr_assert_eq(fr_site_check("ABCDEFGHIJKLMNOPQ"), FR_E_BAD_SITE);
	cr_assert_eq(fr_site_check("LA B"), FR_E_BAD_SITE);
	cr_assert_eq(fr_site_check("../x"), FR_E_BAD_SITE);
}
