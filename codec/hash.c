/*
 * hash.c - XXH3 hashing for segments, frame headers and manifests.
 *
 * The only file that includes xxhash.h, and it does so inline
 * (XXH_INLINE_ALL) so the hot segment hash compiles into ferry and no
 * xxHash symbol leaks into the other modules.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>

#include "fr_codec.h"

void fr_hash128(const void *data, size_t len, uint8_t out[FR_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
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
	XXH3_128bits_update(h->state, data, len);
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
