/*
 * hash.c - XXH3 hashing for segments, frame headers and manifests.
 *
 * The only file that includes xxhash.h, and it does so inline
 * (XXH_INLINE_ALL) so that no xxHash symbol leaks into the other modules.
 * On x86-64 the bulk (a segment's hash, one call or in pieces) goes
 * through libxxhash's dispatcher, which picks SSE2, AVX2 or AVX-512 for
 * this CPU at run time: the inline code is built for the baseline
 * (SSE2) and runs at half the rate of AVX2 (`ferry bench pipeline`
 * against `xxhsum -b`, PERFORMANCE.md). The same function, the same
 * bytes out.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>
#if defined(__x86_64__) && !defined(FERRY_FUZZ)
/* libxxhash's (xxh_x86dispatch.h, which XXH_INLINE_ALL would make
 * static) */
XXH128_hash_t XXH3_128bits_dispatch(const void *input, size_t len);
XXH_errorcode XXH3_128bits_update_dispatch(XXH3_state_t *state,
					   const void *input, size_t len);
#define BULK128 XXH3_128bits_dispatch
#define BULK128_UPDATE XXH3_128bits_update_dispatch
#else
#define BULK128 XXH3_128bits
#define BULK128_UPDATE XXH3_128bits_update
#endif

#include <errno.h>

#include "fr_codec.h"

void fr_hash128(const void *data, size_t len, uint8_t out[FR_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, BULK128(data, len));
	memcpy(out, c.digest, FR_HASH_LEN);
}

uint64_t fr_hash64(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

int fr_hasher_init(struct fr_hasher *h)
{
	XXH3_state_t *s = XXH3_createState();

	if (!s) {
		h->state = NULL;
		return -ENOMEM;
	}
	XXH3_128bits_reset(s);
	h->state = s;
	return 0;
}

void fr_hasher_reset(struct fr_hasher *h)
{
	XXH3_128bits_reset(h->state);
}

void fr_hasher_update(struct fr_hasher *h, const void *data, size_t len)
{
	BULK128_UPDATE(h->state, data, len);
}

void fr_hasher_final(struct fr_hasher *h, uint8_t out[FR_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->state));
	memcpy(out, c.digest, FR_HASH_LEN);
}

void fr_hasher_fini(struct fr_hasher *h)
{
	if (h->state)
		XXH3_freeState(h->state);
	h->state = NULL;
}

char *fr_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
	return out;
}

static int fr_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fr_unhex(const char *hex, uint8_t *out, size_t len)
{
	/* Reads digit by digit so a short string stops at its NUL. */
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		hi = fr_hexval(hex[2 * i]);
		if (hi < 0)
			return FR_E_BAD_NAME;
		lo = fr_hexval(hex[2 * i + 1]);
		if (lo < 0)
			return FR_E_BAD_NAME;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
