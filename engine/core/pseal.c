/*
 * pseal.c - sealing parcel records at rest (docs/FORMAT.md, "Sealing"):
 * XChaCha20-Poly1305-IETF (libsodium's crypto_aead_xchacha20poly1305_ietf,
 * the same bytes) with a key of the parcel's own, computed here over a
 * record's body in pieces, so that a frame is sealed in place where the
 * worker made it: its 64-byte header in one buffer, its payload (the
 * compressed output, or the raw read buffer) in another, no copy.
 *
 * The construction, as libsodium's: the subkey HChaCha20(key, nonce[0..15]),
 * ChaCha20 with the nonce's last 8 bytes; block 0 of the key stream keys
 * Poly1305, blocks 1.. encrypt the body; the tag is Poly1305 over
 * ad | pad16 | ciphertext | pad16 | le64(ad length) | le64(body length).
 * crypto_stream_xchacha20_xor_ic is that stream (a 64-bit counter whose
 * high half stays 0 is the IETF 32-bit counter with a zero nonce prefix).
 */
#include <sodium.h>
#include <string.h>

#include "core/fr_core.h"

static const uint8_t zeros[16];

void fr_pseal_key(const uint8_t account_key[32],
		  const uint8_t parcel[FR_HASH_LEN], uint8_t out[32])
{
	static const char label[] = "ferry-parcel-v3";
	uint8_t msg[sizeof(label) - 1 + FR_HASH_LEN];

	memcpy(msg, label, sizeof(label) - 1);
	memcpy(msg + sizeof(label) - 1, parcel, FR_HASH_LEN);
	crypto_generichash(out, 32, msg, sizeof(msg), account_key, 32);
}

void fr_pseal_check(const uint8_t pkey[32], uint8_t out[FR_CHECK_LEN])
{
	static const char label[] = "ferry-parcel-check";

	crypto_generichash(out, FR_CHECK_LEN, (const uint8_t *)label,
			   sizeof(label) - 1, pkey, 32);
}

void fr_pseal_ad(const uint8_t vh[FR_VOL_HDR], const uint8_t rh[FR_REC_HDR],
		 uint8_t ad[FR_PSEAL_AD])
{
	memcpy(ad, vh, FR_VOL_HDR);
	memset(ad + 40, 0, 4);	/* the volume number */
	memset(ad + 120, 0, 8); /* the header's checksum */
	memcpy(ad + FR_VOL_HDR, rh, FR_REC_HDR);
}

static void stream_xor(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		       uint64_t at, uint8_t *p, size_t len)
{
	/* block 0 keys Poly1305: the body starts at block 1 */
	crypto_stream_xchacha20_xor_ic(p, p, len, nonce, 1 + at / 64, key);
}

static void mac_of(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		   const uint8_t *ad, size_t ad_len, const struct fr_piece *pc,
		   unsigned n, uint8_t mac[FR_REC_MAC])
{
	crypto_onetimeauth_poly1305_state st;
	uint8_t block0[64], lens[16];
	uint64_t clen = 0;

	crypto_stream_xchacha20(block0, sizeof(block0), nonce, key);
	crypto_onetimeauth_poly1305_init(&st, block0);
	crypto_onetimeauth_poly1305_update(&st, ad, ad_len);
	crypto_onetimeauth_poly1305_update(&st, zeros, (0x10 - ad_len) & 0xf);
	for (unsigned i = 0; i < n; i++) {
		crypto_onetimeauth_poly1305_update(&st, pc[i].p, pc[i].len);
		clen += pc[i].len;
	}
	crypto_onetimeauth_poly1305_update(&st, zeros, (0x10 - clen) & 0xf);
	fr_put64(lens, ad_len);
	fr_put64(lens + 8, clen);
	crypto_onetimeauth_poly1305_update(&st, lens, sizeof(lens));
	crypto_onetimeauth_poly1305_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(block0, sizeof(block0));
}

void fr_pseal(const uint8_t key[32], uint8_t nonce[FR_REC_NONCE],
	      const uint8_t *ad, size_t ad_len, const struct fr_piece *pc,
	      unsigned n, uint8_t mac[FR_REC_MAC])
{
	uint64_t at = 0;

	randombytes_buf(nonce, FR_REC_NONCE);
	for (unsigned i = 0; i < n; i++) {
		stream_xor(key, nonce, at, pc[i].p, pc[i].len);
		at += pc[i].len;
	}
	mac_of(key, nonce, ad, ad_len, pc, n, mac);
}

bool fr_pseal_verify(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		     const uint8_t *ad, size_t ad_len,
		     const struct fr_piece *pc, unsigned n,
		     const uint8_t mac[FR_REC_MAC])
{
	uint8_t want[FR_REC_MAC];

	mac_of(key, nonce, ad, ad_len, pc, n, want);
	return crypto_verify_16(want, mac) == 0;
}

void fr_pseal_xor(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		  uint64_t at, uint8_t *p, size_t len)
{
	stream_xor(key, nonce, at, p, len);
}

bool fr_pseal_open(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		   const uint8_t *ad, size_t ad_len, const struct fr_piece *pc,
		   unsigned n, const uint8_t mac[FR_REC_MAC])
{
	uint64_t at = 0;

	if (!fr_pseal_verify(key, nonce, ad, ad_len, pc, n, mac))
		return false;
	for (unsigned i = 0; i < n; i++) {
		stream_xor(key, nonce, at, pc[i].p, pc[i].len);
		at += pc[i].len;
	}
	return true;
}

uint64_t fr_pseal_rec_size(uint64_t body)
{
	return FR_REC_HDR + body + FR_SEAL_LEN;
}
