/*
 * fuzz_offer_z.c - an OFFER_Z body: fr_offer_z_unpack (one zstd frame,
 * never more than FR_MANIFEST_MAX out, no declared size trusted), then
 * fr_manifest_decode of what came out, as it came and with its checksum
 * made right.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fr_manifest m;
	uint8_t *mf = NULL;
	uint32_t len = 0;

	if (size > (1u << 20))
		return 0;
	int r = fr_offer_z_unpack(data, (uint32_t)size, &mf, &len);
	if (r < 0) {
		if (mf)
			abort(); /* nothing handed out on failure */
		return 0;
	}
	if (len > FR_MANIFEST_MAX)
		abort();
	if (fr_manifest_decode(&m, mf, len) == 0)
		fr_manifest_fini(&m);
	if (len >= 8) {
		fr_put64(mf + len - 8, fr_hash64(mf, len - 8));
		if (fr_manifest_decode(&m, mf, len) == 0)
			fr_manifest_fini(&m);
	}
	free(mf);
	return 0;
}
