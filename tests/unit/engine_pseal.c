/*
 * engine_pseal.c - parcel records sealed at rest (engine/core/pseal.c): the
 * records sealed in pieces are exactly libsodium's XChaCha20-Poly1305-IETF
 * (so a volume opens with the one-shot API, and on any CPU), every
 * tamper is refused, the key is the parcel's own.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#include "fr_internal.h"

static void init(void)
{
	cr_assert_geq(sodium_init(), 0);
}

TestSuite(pseal, .init = init);

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

/* a frame-like body (a 64-byte header, then a payload of n bytes) sealed
 * in two pieces: the same bytes and tag as the one-shot AEAD */
static void same_as_libsodium(size_t n)
{
	uint8_t key[32], ad[FR_PSEAL_AD], nonce[FR_REC_NONCE], mac[16],
	    mac2[16];
	uint8_t *plain = malloc(64 + n + 1), *hdr = malloc(64),
		*pay = malloc(n + 1), *one = malloc(64 + n + 1);
	unsigned long long maclen;

	fill(key, 32, 1);
	fill(ad, sizeof(ad), 2);
	fill(plain, 64 + n, 3);
	memcpy(hdr, plain, 64);
	memcpy(pay, plain + 64, n);
	struct fr_piece pc[2] = {{hdr, 64}, {pay, n}};
	fr_pseal(key, nonce, ad, sizeof(ad), pc, 2, mac);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
	    one, mac2, &maclen, plain, 64 + n, ad, sizeof(ad), NULL, nonce,
	    key);
	cr_assert_eq(memcmp(one, hdr, 64), 0, "header, payload %zu", n);
	cr_assert_eq(memcmp(one + 64, pay, n), 0, "payload %zu", n);
	cr_assert_eq(memcmp(mac, mac2, 16), 0, "tag, payload %zu", n);
	/* and libsodium opens what was sealed in pieces */
	cr_assert_eq(
	    crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		one, NULL, one, 64 + n, mac, ad, sizeof(ad), nonce, key),
	    0);
	cr_assert_eq(memcmp(one, plain, 64 + n), 0);
	/* the header alone, peeked at before the payload is read */
	uint8_t peek[64];
	memcpy(peek, hdr, 64);
	fr_pseal_xor(key, nonce, 0, peek, 64);
	cr_assert_eq(memcmp(peek, plain, 64), 0);
	/* opened in pieces */
	cr_assert(fr_pseal_open(key, nonce, ad, sizeof(ad), pc, 2, mac));
	cr_assert_eq(memcmp(hdr, plain, 64), 0);
	cr_assert_eq(memcmp(pay, plain + 64, n), 0);
	free(plain);
	free(hdr);
	free(pay);
	free(one);
}

Test(pseal, pieces_are_the_one_shot_aead)
{
	static const size_t sizes[] = {0, 1, 15, 16, 63, 64, 65, 1000, 70000};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		same_as_libsodium(sizes[i]);
}

Test(pseal, one_piece_is_the_one_shot_aead)
{
	uint8_t key[32], ad[FR_PSEAL_AD], nonce[FR_REC_NONCE], mac[16];
	uint8_t body[333], plain[333], one[333];
	unsigned long long ml;

	fill(key, 32, 9);
	fill(ad, sizeof(ad), 8);
	fill(plain, sizeof(plain), 7);
	memcpy(body, plain, sizeof(body));
	fr_pseal(key, nonce, ad, sizeof(ad), &(struct fr_piece){body, 333}, 1,
		 mac);
	cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			 one, NULL, body, 333, mac, ad, sizeof(ad), nonce, key),
		     0);
	cr_assert_eq(memcmp(one, plain, 333), 0);
	(void)ml;
}

/* every byte of the associated data, the nonce, the body and the tag
 * matters; a refused record is left as it was */
Test(pseal, every_tamper_is_refused)
{
	uint8_t key[32], ad[FR_PSEAL_AD], nonce[FR_REC_NONCE], mac[16];
	uint8_t hdr[64], pay[100], h0[64], p0[100];

	fill(key, 32, 4);
	fill(ad, sizeof(ad), 5);
	fill(hdr, 64, 6);
	fill(pay, 100, 7);
	struct fr_piece pc[2] = {{hdr, 64}, {pay, 100}};
	fr_pseal(key, nonce, ad, sizeof(ad), pc, 2, mac);
	memcpy(h0, hdr, 64);
	memcpy(p0, pay, 100);
	cr_assert(fr_pseal_verify(key, nonce, ad, sizeof(ad), pc, 2, mac));
	for (size_t i = 0; i < sizeof(ad); i++) {
		ad[i] ^= 1;
		cr_assert_not(
		    fr_pseal_verify(key, nonce, ad, sizeof(ad), pc, 2, mac),
		    "ad byte %zu", i);
		ad[i] ^= 1;
	}
	for (size_t i = 0; i < FR_REC_NONCE; i++) {
		nonce[i] ^= 0x80;
		cr_assert_not(
		    fr_pseal_open(key, nonce, ad, sizeof(ad), pc, 2, mac),
		    "nonce byte %zu", i);
		nonce[i] ^= 0x80;
	}
	for (size_t i = 0; i < 164; i++) {
		uint8_t *b = i < 64 ? hdr + i : pay + i - 64;
		*b ^= 4;
		cr_assert_not(
		    fr_pseal_open(key, nonce, ad, sizeof(ad), pc, 2, mac),
		    "body byte %zu", i);
		*b ^= 4;
	}
	for (size_t i = 0; i < 16; i++) {
		mac[i] ^= 2;
		cr_assert_not(
		    fr_pseal_verify(key, nonce, ad, sizeof(ad), pc, 2, mac),
		    "tag byte %zu", i);
		mac[i] ^= 2;
	}
	/* nothing was opened by the refusals */
	cr_assert_eq(memcmp(hdr, h0, 64), 0);
	cr_assert_eq(memcmp(pay, p0, 100), 0);
	/* a wrong key, and the body cut in other pieces is the same body */
	uint8_t k2[32];
	memcpy(k2, key, 32);
	k2[31] ^= 1;
	cr_assert_not(fr_pseal_verify(k2, nonce, ad, sizeof(ad), pc, 2, mac));
	uint8_t whole[164];
	memcpy(whole, hdr, 64);
	memcpy(whole + 64, pay, 100);
	cr_assert(fr_pseal_verify(key, nonce, ad, sizeof(ad),
				  &(struct fr_piece){whole, 164}, 1, mac));
}

/* the same record sealed twice: other nonce, other bytes */
Test(pseal, fresh_nonce_each_time)
{
	uint8_t key[32], ad[FR_PSEAL_AD] = {0}, n1[24], n2[24], m1[16], m2[16];
	uint8_t a[200], b[200];

	fill(key, 32, 1);
	fill(a, 200, 2);
	memcpy(b, a, 200);
	fr_pseal(key, n1, ad, sizeof(ad), &(struct fr_piece){a, 200}, 1, m1);
	fr_pseal(key, n2, ad, sizeof(ad), &(struct fr_piece){b, 200}, 1, m2);
	cr_assert_neq(memcmp(n1, n2, 24), 0);
	cr_assert_neq(memcmp(a, b, 200), 0);
	cr_assert_neq(memcmp(m1, m2, 16), 0);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* The parcel's key: BLAKE2b-256 keyed with the account's key over
 * "ferry-parcel-v3" | parcel id; pinned, so that a change of the
 * derivation (which would make every volume unreadable) is seen. */
Test(pseal, key_derivation)
{
	uint8_t ak[32], parcel[FR_HASH_LEN], k[32], k2[32], want[32];
	uint8_t msg[15 + FR_HASH_LEN], check[FR_CHECK_LEN], check2[16];
	char h[65];

	fill(ak, 32, 0x11);
	fill(parcel, FR_HASH_LEN, 0x40);
	fr_pseal_key(ak, parcel, k);
	memcpy(msg, "ferry-parcel-v3", 15);
	memcpy(msg + 15, parcel, FR_HASH_LEN);
	crypto_generichash(want, 32, msg, sizeof(msg), ak, 32);
	cr_assert_eq(memcmp(k, want, 32), 0);
	hex(k, 32, h);
	cr_assert_str_eq(h, "8d3ddb9faa984cce433868ee2d83de21"
			    "6f78fd14ff28c5643c41d4d291c02805");
	/* another parcel, another account: another key */
	parcel[0] ^= 1;
	fr_pseal_key(ak, parcel, k2);
	cr_assert_neq(memcmp(k, k2, 32), 0);
	parcel[0] ^= 1;
	ak[0] ^= 1;
	fr_pseal_key(ak, parcel, k2);
	cr_assert_neq(memcmp(k, k2, 32), 0);
	/* the key check tells them apart, and is not the key */
	fr_pseal_check(k, check);
	fr_pseal_check(k2, check2);
	cr_assert_neq(memcmp(check, check2, FR_CHECK_LEN), 0);
	cr_assert_neq(memcmp(check, k, FR_CHECK_LEN), 0);
	hex(check, FR_CHECK_LEN, h);
	cr_assert_str_eq(h, "af29619db345d82c282d3df7dbd08248");
}

/* the associated data: the volume header but its volume number and
 * checksum (a frame is sealed before its volume is known), then the
 * record header */
Test(pseal, associated_data)
{
	uint8_t vh[FR_VOL_HDR], vh2[FR_VOL_HDR], rh[FR_REC_HDR];
	uint8_t a1[FR_PSEAL_AD], a2[FR_PSEAL_AD];

	fill(vh, sizeof(vh), 1);
	fill(rh, sizeof(rh), 2);
	memcpy(vh2, vh, sizeof(vh));
	vh2[41] ^= 1;  /* volume number */
	vh2[125] ^= 1; /* checksum */
	fr_pseal_ad(vh, rh, a1);
	fr_pseal_ad(vh2, rh, a2);
	cr_assert_eq(memcmp(a1, a2, sizeof(a1)), 0);
	cr_assert_eq(memcmp(a1 + FR_VOL_HDR, rh, FR_REC_HDR), 0);
	for (int i = 0; i < FR_VOL_HDR; i++) {
		if ((i >= 40 && i < 44) || i >= 120)
			continue;
		memcpy(vh2, vh, sizeof(vh));
		vh2[i] ^= 1;
		fr_pseal_ad(vh2, rh, a2);
		cr_assert_neq(memcmp(a1, a2, sizeof(a1)), 0, "byte %d", i);
	}
	rh[5] ^= 1;
	fr_pseal_ad(vh, rh, a2);
	cr_assert_neq(memcmp(a1, a2, sizeof(a1)), 0);
}
