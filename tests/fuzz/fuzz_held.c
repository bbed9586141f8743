/*
 * fuzz_held.c - a HELD body (after a partial HAVE): fr_held_parse. The
 * input's first 4 bytes are the sender's segment count n (kept below
 * 2^20), the rest is the body as received.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4 || size - 4 > (1u << 22))
		return 0;
	uint32_t n = fr_get32(data) & 0xfffff;
	uint32_t len = (uint32_t)(size - 4);
	/* the body at its exact size, so a read past it is seen */
	uint8_t *body = malloc(len ? len : 1);
	uint8_t *held = calloc(n + 1, FR_UNCONF_REC);
	if (!body || !held)
		abort();
	memcpy(body, data + 4, len);
	int r = fr_held_parse(FR_MSG_HELD, body, len, n, held);
	if (r < 0 && r != FR_E_PROTOCOL)
		abort();
	if (r >= 0) {
		/* exactly the records it counted, each once, none zero */
		uint32_t k = 0;
		if ((uint32_t)r > n || len != 4 + (uint32_t)r * FR_HELD_REC)
			abort();
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *u = held + (size_t)i * FR_UNCONF_REC;
			if (u[0] > 1 || (u[0] && fr_hash_unknown(u + 1)))
				abort();
			k += u[0];
		}
		if (k != (uint32_t)r)
			abort();
	}
	memset(held, 0, (size_t)(n + 1) * FR_UNCONF_REC);
	if (fr_held_parse(FR_MSG_HAVE, body, len, n, held) != FR_E_PROTOCOL)
		abort();
	free(body);
	free(held);
	return 0;
}
