/*
 * fuzz_have.c - a HAVE body: fr_have_parse. The input's first 4 bytes
 * are the sender's segment count n (kept below 2^20, as a manifest of
 * that many segments would be), the rest is the body as received.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fr_partial p[FR_PARTIAL_MAX];
	uint32_t np = 0;

	if (size < 4 || size - 4 > (1u << 20))
		return 0;
	uint32_t n = fr_get32(data) & 0xfffff;
	uint32_t len = (uint32_t)(size - 4);
	/* the body at its exact size, so a read past it is seen */
	uint8_t *body = malloc(len ? len : 1);
	uint8_t *have = malloc(n ? n : 1);
	if (!body || !have)
		abort();
	memcpy(body, data + 4, len);
	int r = fr_have_parse(FR_MSG_HAVE, body, len, n, have, p, &np);
	if (r != FR_HAVE_PARTIAL && r != FR_HAVE_COMPLETE && r != FR_E_PROTOCOL)
		abort();
	if (r >= 0) {
		if (np > FR_PARTIAL_MAX ||
		    len != FR_HAVE_LEN(n) + (len - FR_HAVE_LEN(n)) /
						FR_PARTIAL_REC * FR_PARTIAL_REC)
			abort();
		for (uint32_t k = 0; k < np; k++)
			if (p[k].index >= n)
				abort();
		for (uint32_t i = 0; i < n; i++)
			if (have[i] > 1)
				abort();
	}
	/* another type, and a parse that wants nothing back */
	if (fr_have_parse(FR_MSG_ACK, body, len, n, NULL, NULL, NULL) !=
	    FR_E_PROTOCOL)
		abort();
	int r2 = fr_have_parse(FR_MSG_HAVE, body, len, n, NULL, NULL, NULL);
	if (r2 != r)
		abort();
	free(body);
	free(have);
	return 0;
}
