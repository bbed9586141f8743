/*
 * fuzz_vol_trailer.c - a parcel volume's 32-byte trailer (it has no
 * checksum of its own: the record's tag covers it): fr_vol_trailer_unpack
 * on the first 32 bytes. An accepted trailer is consistent and packs back
 * to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fr_vol_trailer t;
	uint8_t src[FR_TRAILER_LEN], again[FR_TRAILER_LEN];

	if (size < FR_TRAILER_LEN)
		return 0;
	memcpy(src, data, FR_TRAILER_LEN);
	if (fr_vol_trailer_unpack(&t, src) < 0)
		return 0;
	if (t.volume < 1 || t.volume > FR_VOL_MAX || (t.flags & ~FR_VOL_LAST) ||
	    ((t.flags & FR_VOL_LAST) ? t.total != t.volume : t.total != 0) ||
	    (t.frames && t.first > t.last))
		abort();
	fr_vol_trailer_pack(again, &t);
	if (memcmp(again, src, FR_TRAILER_LEN))
		abort(); /* decode then encode gives the same bytes */
	return 0;
}
