/*
 * fuzz_rec_hdr.c - a parcel's 16-byte record header: fr_rec_hdr_unpack,
 * the largest body allowed being the input's bytes 16..19 (the import
 * passes what the volume can still hold), as given and with the header
 * checksum made right. An accepted header packs back to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t src[FR_REC_HDR], uint32_t max_body)
{
	struct fr_rec_hdr r;
	uint8_t again[FR_REC_HDR];

	if (fr_rec_hdr_unpack(&r, src, max_body) < 0)
		return;
	if (r.type < FR_REC_MANIFEST || r.type > FR_REC_TRAILER ||
	    (r.type == FR_REC_TRAILER ? r.len != FR_TRAILER_LEN
				      : r.len == 0 || r.len > max_body) ||
	    (r.type == FR_REC_FRAME && r.len <= FR_FRAME_HDR))
		abort();
	fr_rec_hdr_pack(again, &r);
	if (memcmp(again, src, FR_REC_HDR))
		abort(); /* decode then encode gives the same bytes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[FR_REC_HDR];

	if (size < FR_REC_HDR)
		return 0;
	uint32_t max_body =
	    size >= FR_REC_HDR + 4 ? fr_get32(data + FR_REC_HDR) : FR_SEG_MAX;
	memcpy(h, data, FR_REC_HDR);
	check(h, max_body);
	fr_put32(h + 12, (uint32_t)fr_hash64(h, 12));
	check(h, max_body);
	return 0;
}
