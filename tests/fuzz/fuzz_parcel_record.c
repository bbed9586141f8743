/*
 * fuzz_parcel_record.c - a parcel volume's sealed record as an import
 * meets it: record header, nonce, body, tag (FORMAT.md, "Sealing"),
 * opened with the parcel's key (fr_pseal_open, the body in two pieces as
 * a frame's header and payload are).
 *
 * First input byte even: the rest is a record as found on the medium;
 * nobody without the key can make one that opens (abort if it does).
 * Odd: the rest is a body the harness seals as `parcel create` would,
 * then one byte (its offset: the next 2 input bytes) of the record is
 * flipped; the record opens, back to the same body, only when the flip
 * fell outside it.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = {9, 9, 9};

/* the pieces: a frame's header first (up to 64 bytes), then the rest */
static unsigned pieces(uint8_t *body, size_t len, struct fr_piece pc[2])
{
	size_t h = len < 64 ? len : 64;

	pc[0] = (struct fr_piece){body, h};
	pc[1] = (struct fr_piece){body + h, len - h};
	return len > h ? 2 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t vh[FR_VOL_HDR] = {0}, ad[FR_PSEAL_AD];
	struct fr_piece pc[2];

	if (size < 1 || size > (1u << 16))
		return 0;
	if (!(data[0] & 1)) {
		size_t n = size - 1;
		if (n < FR_REC_HDR + FR_SEAL_LEN)
			return 0;
		uint8_t *r = malloc(n);
		if (!r)
			abort();
		memcpy(r, data + 1, n);
		uint8_t *body = r + FR_REC_HDR + FR_REC_NONCE;
		size_t blen = n - FR_REC_HDR - FR_SEAL_LEN;
		fr_pseal_ad(vh, r, ad);
		if (fr_pseal_open(key, r + FR_REC_HDR, ad, sizeof(ad), pc,
				  pieces(body, blen, pc), body + blen))
			abort(); /* opened without the key */
		free(r);
		return 0;
	}
	if (size < 3)
		return 0;
	uint32_t flip = fr_get16(data + 1);
	size_t blen = size - 3, n = FR_REC_HDR + FR_SEAL_LEN + blen;
	uint8_t *r = malloc(n);
	if (!r)
		abort();
	fr_put32(r, 2);
	fr_put32(r + 4, (uint32_t)blen);
	memset(r + 8, 0, FR_REC_HDR - 8);
	uint8_t *body = r + FR_REC_HDR + FR_REC_NONCE;
	memcpy(body, data + 3, blen);
	fr_pseal_ad(vh, r, ad);
	fr_pseal(key, r + FR_REC_HDR, ad, sizeof(ad), pc,
		 pieces(body, blen, pc), body + blen);
	if (flip < n)
		r[flip] ^= 0x80;
	fr_pseal_ad(vh, r, ad);
	bool ok = fr_pseal_open(key, r + FR_REC_HDR, ad, sizeof(ad), pc,
				pieces(body, blen, pc), body + blen);
	if (ok != (flip >= n) || (ok && memcmp(body, data + 3, blen)))
		abort();
	free(r);
	return 0;
}
