/*
 * fuzz_frame.c - the 64-byte segment frame header: fr_frame_unpack_wire
 * and fr_frame_unpack on the first 64 bytes, as given and again with the
 * header checksum made right (so that the checks behind it are reached).
 * A header either is accepted with fields in their ranges and packs back
 * to the same bytes, or is refused with one of ferry's codes; the media's
 * rules are the wire's with fewer flags.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t hdr[FR_FRAME_HDR])
{
	struct fr_frame f, g;
	uint8_t again[FR_FRAME_HDR];
	int r, rm;

	memset(&f, 0, sizeof(f));
	memset(&g, 0, sizeof(g));
	r = fr_frame_unpack_wire(&f, hdr);
	rm = fr_frame_unpack(&g, hdr);

	if (r != 0 && (r >= 0 || r <= FR_E__BASE || r >= FR_E__END))
		abort();
	if (rm == 0 && r != 0) /* the media's headers are wire headers */
		abort();
	if (r < 0)
		return;
	if (f.raw_len < 1 || f.raw_len > FR_SEG_MAX)
		abort();
	if (f.flags & FR_FRAME_STREAM ? f.stored_len != 0
	    : f.flags & FR_FRAME_ZSTD
		? f.stored_len < 1 || f.stored_len > fr_seg_bound(f.raw_len)
		: f.stored_len != f.raw_len)
		abort();
	fr_frame_pack(again, &f);
	if (memcmp(again, hdr, FR_FRAME_HDR))
		abort(); /* decode then encode gives the same bytes */
	if (rm == 0 && memcmp(&f, &g, sizeof(f)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[FR_FRAME_HDR];

	if (size < FR_FRAME_HDR)
		return 0;
	memcpy(hdr, data, FR_FRAME_HDR);
	check(hdr);
	fr_put64(hdr + 56, fr_hash64(hdr, 56));
	check(hdr);
	return 0;
}
