/*
 * parcel.c - the fixed parts of a parcel volume: the volume header, the
 * record header and the trailer (layout in docs/FORMAT.md).
 *
 * Like frame headers, these are untrusted input on import: a volume may
 * have been damaged on the medium or altered in transit. Each field has
 * its own error; checksums come right after magic and version so random
 * damage reads as a checksum error. Sealing (encryption and
 * authentication) is the engine's (libsodium); this file only lays out
 * and checks the bytes.
 */
#include <string.h>

#include "fr_codec.h"

enum {
	VH_MAGIC = 0,
	VH_VERSION = 4,
	VH_FLAGS = 6,
	VH_PARCEL = 8,
	VH_CHECK = 24,
	VH_VOLUME = 40,
	VH_NSEG = 44,
	VH_SEGSIZE = 48,
	VH_MFLEN = 52,
	VH_CREATED = 56,
	VH_FROM = 64,
	VH_TO = 80,
	VH_ACCOUNT = 96,
	VH_RSVD2 = 112,
	VH_CSUM = 120,
};
_Static_assert(VH_CSUM + 8 == FR_VOL_HDR, "volume header layout");
_Static_assert(FR_CODE_MAX == 16, "site codes fill 16 bytes");

enum { RH_MAGIC = 0, RH_TYPE = 4, RH_LEN = 8, RH_CSUM = 12 };

int fr_site_check(const char *code)
{
	size_t n = strnlen(code, FR_CODE_MAX + 1);

	if (n == 0 || n > FR_CODE_MAX)
		return FR_E_BAD_SITE;
	for (size_t i = 0; i < n; i++) {
		char c = code[i];
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '-' && c != '_')
			return FR_E_BAD_SITE;
	}
	return 0;
}

static void put_code(uint8_t *dst, const char *code)
{
	size_t n = strnlen(code, FR_CODE_MAX);

	memset(dst, 0, FR_CODE_MAX);
	memcpy(dst, code, n);
}

/* A 16-byte NUL-padded code: no byte after the first NUL may be set. */
static int get_code(char out[FR_CODE_MAX + 1], const uint8_t *src)
{
	size_t n = strnlen((const char *)src, FR_CODE_MAX);

	for (size_t i = n; i < FR_CODE_MAX; i++)
		if (src[i])
			return FR_E_BAD_SITE;
	memcpy(out, src, n);
	out[n] = '\0';
	return fr_site_check(out);
}

void fr_vol_hdr_pack(uint8_t dst[FR_VOL_HDR], const struct fr_vol_hdr *h)
{
	memset(dst, 0, FR_VOL_HDR);
	fr_put32(dst + VH_MAGIC, FR_VOL_MAGIC);
	/* another version only in tests, which make old headers */
	fr_put16(dst + VH_VERSION, h->version ? h->version : FR_VOL_VERSION);
	memcpy(dst + VH_PARCEL, h->parcel, FR_HASH_LEN);
	memcpy(dst + VH_CHECK, h->check, FR_CHECK_LEN);
	fr_put32(dst + VH_VOLUME, h->volume);
	fr_put32(dst + VH_NSEG, h->n_segments);
	fr_put32(dst + VH_SEGSIZE, h->seg_size);
	fr_put32(dst + VH_MFLEN, h->mf_len);
	fr_put64(dst + VH_CREATED, (uint64_t)h->created);
	put_code(dst + VH_FROM, h->from);
	put_code(dst + VH_TO, h->to);
	put_code(dst + VH_ACCOUNT, h->account);
	fr_put64(dst + VH_CSUM, fr_hash64(dst, VH_CSUM));
}

unsigned fr_vol_hdr_version(const uint8_t src[FR_VOL_HDR])
{
	if (fr_get32(src + VH_MAGIC) != FR_VOL_MAGIC)
		return 0;
	return fr_get16(src + VH_VERSION);
}

int fr_vol_hdr_unpack(struct fr_vol_hdr *h, const uint8_t src[FR_VOL_HDR])
{
	uint32_t volume = fr_get32(src + VH_VOLUME);
	uint32_t seg_size = fr_get32(src + VH_SEGSIZE);
	uint32_t mf_len = fr_get32(src + VH_MFLEN);
	int r;

	if (fr_get32(src + VH_MAGIC) != FR_VOL_MAGIC)
		return FR_E_BAD_MAGIC;
	/* 1 and 2 were signed, not sealed: refused, not read in the clear */
	if (fr_get16(src + VH_VERSION) != FR_VOL_VERSION)
		return FR_E_BAD_VERSION;
	if (fr_get64(src + VH_CSUM) != fr_hash64(src, VH_CSUM))
		return FR_E_HDR_CHECKSUM;
	if (fr_get16(src + VH_FLAGS) != 0)
		return FR_E_BAD_FLAGS;
	if (fr_get64(src + VH_RSVD2) != 0)
		return FR_E_BAD_RESERVED;
	if (mf_len == 0 || mf_len > FR_MANIFEST_MAX)
		return FR_E_TOO_LARGE;
	if (volume < 1 || volume > FR_VOL_MAX)
		return FR_E_BAD_VOLUME;
	if (seg_size < FR_SEG_MIN || seg_size > FR_SEG_MAX)
		return FR_E_SEG_SIZE;
	if (fr_get32(src + VH_NSEG) == 0)
		return FR_E_BAD_INDEX;
	if ((r = get_code(h->from, src + VH_FROM)) < 0 ||
	    (r = get_code(h->to, src + VH_TO)) < 0 ||
	    (r = get_code(h->account, src + VH_ACCOUNT)) < 0)
		return r;
	h->version = FR_VOL_VERSION;
	h->mf_len = mf_len;
	memcpy(h->parcel, src + VH_PARCEL, FR_HASH_LEN);
	memcpy(h->check, src + VH_CHECK, FR_CHECK_LEN);
	h->volume = volume;
	h->n_segments = fr_get32(src + VH_NSEG);
	h->seg_size = seg_size;
	h->created = (int64_t)fr_get64(src + VH_CREATED);
	return 0;
}

static uint32_t rec_csum(const uint8_t *src)
{
	return (uint32_t)fr_hash64(src, RH_CSUM);
}

void fr_rec_hdr_pack(uint8_t dst[FR_REC_HDR], const struct fr_rec_hdr *r)
{
	fr_put32(dst + RH_MAGIC, FR_REC_MAGIC);
	fr_put32(dst + RH_TYPE, r->type);
	fr_put32(dst + RH_LEN, r->len);
	fr_put32(dst + RH_CSUM, rec_csum(dst));
}

int fr_rec_hdr_unpack(struct fr_rec_hdr *r, const uint8_t src[FR_REC_HDR],
		      uint32_t max_body)
{
	uint32_t type = fr_get32(src + RH_TYPE), len = fr_get32(src + RH_LEN);

	if (fr_get32(src + RH_MAGIC) != FR_REC_MAGIC)
		return FR_E_BAD_MAGIC;
	if (fr_get32(src + RH_CSUM) != rec_csum(src))
		return FR_E_HDR_CHECKSUM;
	if (type < FR_REC_MANIFEST || type > FR_REC_TRAILER)
		return FR_E_BAD_RECORD;
	if (type == FR_REC_TRAILER ? len != FR_TRAILER_LEN
	    : type == FR_REC_FRAME ? len <= FR_FRAME_HDR || len > max_body
				   : len == 0 || len > max_body)
		return FR_E_TOO_LARGE;
	r->type = type;
	r->len = len;
	return 0;
}

void fr_vol_trailer_pack(uint8_t dst[FR_TRAILER_LEN],
			 const struct fr_vol_trailer *t)
{
	fr_put32(dst, t->volume);
	fr_put32(dst + 4, t->frames);
	fr_put32(dst + 8, t->first);
	fr_put32(dst + 12, t->last);
	fr_put32(dst + 16, t->flags);
	fr_put32(dst + 20, t->total);
	fr_put64(dst + 24, t->bytes);
	memcpy(dst + 32, t->chain, sizeof(t->chain));
}

int fr_vol_trailer_unpack(struct fr_vol_trailer *t,
			  const uint8_t src[FR_TRAILER_LEN])
{
	uint32_t volume = fr_get32(src), flags = fr_get32(src + 16);
	uint32_t total = fr_get32(src + 20);

	if (volume < 1 || volume > FR_VOL_MAX)
		return FR_E_BAD_VOLUME;
	if (flags & ~FR_VOL_LAST)
		return FR_E_BAD_FLAGS;
	/* the last volume's number is the count; other volumes leave it 0 */
	if ((flags & FR_VOL_LAST) ? total != volume : total != 0)
		return FR_E_BAD_VOLUME;
	t->volume = volume;
	t->frames = fr_get32(src + 4);
	t->first = fr_get32(src + 8);
	t->last = fr_get32(src + 12);
	if (t->frames && t->first > t->last)
		return FR_E_BAD_INDEX;
	t->flags = flags;
	t->total = total;
	t->bytes = fr_get64(src + 24);
	memcpy(t->chain, src + 32, sizeof(t->chain));
	return 0;
}
