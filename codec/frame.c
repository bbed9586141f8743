/*
 * frame.c - the 64-byte segment frame header (layout in docs/FORMAT.md).
 *
 * A header is untrusted input: everything is validated before a single
 * length from it is used, and each field has its own error so a bad
 * parcel or a confused peer can be diagnosed from the code alone. The
 * checksum is checked right after magic and version, so random damage
 * reads as FR_E_HDR_CHECKSUM; the per-field checks behind it catch
 * headers that were written wrong with a valid checksum.
 */
#include <stdbool.h>
#include <string.h>

#include "fr_codec.h"

enum {
	FR_FH_MAGIC = 0,
	FR_FH_VERSION = 4,
	FR_FH_FLAGS = 5,
	FR_FH_LEVEL = 6,
	FR_FH_RSVD1 = 7,
	FR_FH_PKG = 8,
	FR_FH_INDEX = 24,
	FR_FH_RAW = 28,
	FR_FH_STORED = 32,
	FR_FH_RSVD2 = 36,
	FR_FH_HASH = 40,
	FR_FH_CSUM = 56,
};

_Static_assert(FR_FH_CSUM + 8 == FR_FRAME_HDR, "frame header layout");

void fr_frame_pack(uint8_t dst[FR_FRAME_HDR], const struct fr_frame *f)
{
	fr_put32(dst + FR_FH_MAGIC, FR_FRAME_MAGIC);
	dst[FR_FH_VERSION] = FR_FRAME_VERSION;
	dst[FR_FH_FLAGS] = f->flags;
	dst[FR_FH_LEVEL] = f->level;
	dst[FR_FH_RSVD1] = 0;
	memcpy(dst + FR_FH_PKG, f->pkg, FR_HASH_LEN);
	fr_put32(dst + FR_FH_INDEX, f->index);
	fr_put32(dst + FR_FH_RAW, f->raw_len);
	fr_put32(dst + FR_FH_STORED, f->stored_len);
	fr_put32(dst + FR_FH_RSVD2, (f->flags & FR_FRAME_REF) ? f->ref : 0);
	memcpy(dst + FR_FH_HASH, f->hash, FR_HASH_LEN);
	fr_put64(dst + FR_FH_CSUM, fr_hash64(dst, FR_FH_CSUM));
}

static int unpack(struct fr_frame *f, const uint8_t src[FR_FRAME_HDR],
		  bool wire)
{
	uint8_t flags = src[FR_FH_FLAGS];
	uint32_t raw = fr_get32(src + FR_FH_RAW);
	uint32_t stored = fr_get32(src + FR_FH_STORED);

	if (fr_get32(src + FR_FH_MAGIC) != FR_FRAME_MAGIC)
		return FR_E_BAD_MAGIC;
	if (src[FR_FH_VERSION] != FR_FRAME_VERSION)
		return FR_E_BAD_VERSION;
	if (fr_get64(src + FR_FH_CSUM) != fr_hash64(src, FR_FH_CSUM))
		return FR_E_HDR_CHECKSUM;
	if (flags & ~(FR_FRAME_ZSTD | FR_FRAME_STREAM | FR_FRAME_REF))
		return FR_E_BAD_FLAGS;
	/* a streamed payload, or one against another segment, is zstd;
	 * only the wire has them */
	if ((flags & (FR_FRAME_STREAM | FR_FRAME_REF)) &&
	    (!wire || !(flags & FR_FRAME_ZSTD)))
		return FR_E_BAD_FLAGS;
	if (src[FR_FH_RSVD1] != 0 ||
	    (!(flags & FR_FRAME_REF) && fr_get32(src + FR_FH_RSVD2) != 0))
		return FR_E_BAD_RESERVED;
	if (raw < 1 || raw > FR_SEG_MAX)
		return FR_E_RAW_LENGTH;
	/*
	 * A raw payload is the segment itself, so anything but raw_len bytes
	 * is a lie; a zstd payload may be anything up to the worst case.
	 */
	if (flags & FR_FRAME_STREAM) {
		if (stored != 0)
			return FR_E_STORED_LENGTH;
	} else if (flags & FR_FRAME_ZSTD) {
		if (stored < 1 || stored > fr_seg_bound(raw))
			return FR_E_STORED_LENGTH;
	} else if (stored != raw) {
		return FR_E_STORED_LENGTH;
	}

	f->flags = flags;
	f->level = src[FR_FH_LEVEL];
	memcpy(f->pkg, src + FR_FH_PKG, FR_HASH_LEN);
	f->index = fr_get32(src + FR_FH_INDEX);
	f->raw_len = raw;
	f->stored_len = stored;
	memcpy(f->hash, src + FR_FH_HASH, FR_HASH_LEN);
	f->ref = (flags & FR_FRAME_REF) ? fr_get32(src + FR_FH_RSVD2) : 0;
	return 0;
}

int fr_frame_unpack(struct fr_frame *f, const uint8_t src[FR_FRAME_HDR])
{
	return unpack(f, src, false);
}

int fr_frame_unpack_wire(struct fr_frame *f, const uint8_t src[FR_FRAME_HDR])
{
	return unpack(f, src, true);
}

int fr_frame_encode(struct fr_cctx *c, struct fr_frame *f,
		    const uint8_t pkg[FR_HASH_LEN], uint32_t index,
		    const void *src, uint32_t len,
		    const uint8_t want[FR_HASH_LEN], void *dst, size_t cap,
		    int level)
{
	return fr_frame_encode_ref(c, f, pkg, index, src, len, want, dst, cap,
				   level, NULL, 0, 0);
}

int fr_frame_encode_ref(struct fr_cctx *c, struct fr_frame *f,
			const uint8_t pkg[FR_HASH_LEN], uint32_t index,
			const void *src, uint32_t len,
			const uint8_t want[FR_HASH_LEN], void *dst, size_t cap,
			int level, const void *ref, size_t ref_len,
			uint32_t ref_index)
{
	memset(f, 0, sizeof(*f));
	fr_hash128(src, len, f->hash);
	if (want && memcmp(f->hash, want, FR_HASH_LEN))
		return FR_E_CHANGED;
	memcpy(f->pkg, pkg, FR_HASH_LEN);
	f->index = index;
	f->raw_len = len;
	f->stored_len = len;
	if (level > 0 && dst) {
		/* a failure to compress sends the segment raw */
		ssize_t n = fr_seg_compress_ref(c, dst, cap, src, len, level,
						ref, ref_len);
		if (n > 0) {
			f->flags = FR_FRAME_ZSTD | (ref ? FR_FRAME_REF : 0);
			f->level = (uint8_t)level;
			f->stored_len = (uint32_t)n;
			f->ref = ref ? ref_index : 0;
		}
	}
	return 0;
}

int fr_frame_decode(struct fr_dctx *d, const struct fr_frame *f,
		    const void *payload, void *dst,
		    const uint8_t want[FR_HASH_LEN], const uint8_t **raw)
{
	return fr_frame_decode_ref(d, f, payload, dst, want, NULL, 0, raw);
}

int fr_frame_decode_ref(struct fr_dctx *d, const struct fr_frame *f,
			const void *payload, void *dst,
			const uint8_t want[FR_HASH_LEN], const void *ref,
			size_t ref_len, const uint8_t **raw)
{
	uint8_t h[FR_HASH_LEN];

	*raw = payload;
	if ((f->flags & FR_FRAME_REF) && !ref)
		return FR_E_DECOMPRESS;
	if (f->flags & FR_FRAME_ZSTD) {
		int r = fr_seg_decompress_ref(
			d, dst, f->raw_len, payload, f->stored_len,
			(f->flags & FR_FRAME_REF) ? ref : NULL, ref_len);
		if (r < 0)
			return r;
		*raw = dst;
	}
	fr_hash128(*raw, f->raw_len, h);
	if ((want && memcmp(h, want, FR_HASH_LEN)) ||
	    memcmp(h, f->hash, FR_HASH_LEN))
		return FR_E_HASH_MISMATCH;
	return 0;
}
