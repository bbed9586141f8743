/*
 * fuzz_vol_hdr.c - a parcel's 128-byte volume header: fr_vol_hdr_unpack
 * on the first 128 bytes, as given and with the header checksum made
 * right. An accepted header has its fields in range and packs back to
 * the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t src[FR_VOL_HDR])
{
	struct fr_vol_hdr h;
	uint8_t again[FR_VOL_HDR];

	memset(&h, 0xa5, sizeof(h));
	if (fr_vol_hdr_unpack(&h, src) < 0)
		return;
	if (fr_site_check(h.from) || fr_site_check(h.to) ||
	    fr_site_check(h.account) || h.volume < 1 || h.volume > FR_VOL_MAX ||
	    h.seg_size < FR_SEG_MIN || h.seg_size > FR_SEG_MAX ||
	    h.version != FR_VOL_VERSION)
		abort();
	fr_vol_hdr_pack(again, &h);
	if (memcmp(again, src, FR_VOL_HDR))
		abort(); /* decode then encode gives the same bytes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[FR_VOL_HDR];

	if (size < FR_VOL_HDR)
		return 0;
	memcpy(h, data, FR_VOL_HDR);
	check(h);
	fr_put64(h + 120, fr_hash64(h, 120));
	check(h);
	return 0;
}
