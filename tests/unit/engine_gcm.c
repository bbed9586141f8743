/*
 * engine_gcm.c - AES-256-GCM by OpenSSL (seal.c's fr_gcm_*, the frames'
 * chunks) against libsodium's crypto_aead_aes256gcm_*, which ferry used
 * alone before and which the other end may still use.
 *
 * For keys, nonces, associated data and lengths from a seeded generator
 * (lengths 0, 1, 15, 16, 17, block and chunk edges, 64 KiB, odd sizes),
 * OpenSSL's ciphertext and tag are byte for byte libsodium's, OpenSSL
 * opens what libsodium sealed, and a byte flipped anywhere (body, tag,
 * associated data, nonce) does not open and leaves no plaintext. A
 * frame's chunks and a large message come out the same whichever does
 * them, and runs on several threads at once do not disturb each other.
 * Skipped where libsodium has no AES-256-GCM (no AES-NI).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

static void need_aes(void)
{
	cr_assert_geq(sodium_init(), 0);
	if (!crypto_aead_aes256gcm_is_available())
		cr_skip_test("no AES-NI on this machine: libsodium has no "
			     "AES-256-GCM to compare with");
}

/* The test's data: deterministic, from a seed and a counter. */
static void gen(uint8_t *out, size_t len, uint64_t what)
{
	uint8_t seed[randombytes_SEEDBYTES] = "ferry engine_gcm test seed.....";

	fr_put64(seed + 24, what);
	randombytes_buf_deterministic(out, len, seed);
}

static uint32_t gen32(uint64_t what)
{
	uint8_t b[4];

	gen(b, 4, what);
	return fr_get32(b);
}

struct sample {
	uint8_t key[32], nonce[12], ad[80], tag[FR_SEAL_TAG];
	size_t len, adlen;
	uint8_t *plain, *ct; /* len bytes each */
};

/* Sample i of length len: libsodium's sealing in ct and tag. */
static void sample(struct sample *s, uint64_t i, size_t len)
{
	s->len = len;
	gen(s->key, 32, i * 8 + 1);
	gen(s->nonce, 12, i * 8 + 2);
	s->adlen = i % 5 == 0 ? 0 : gen32(i * 8 + 3) % sizeof(s->ad) + 1;
	gen(s->ad, s->adlen, i * 8 + 4);
	s->plain = malloc(len + 1);
	s->ct = malloc(len + 1);
	cr_assert(s->plain && s->ct);
	gen(s->plain, len, i * 8 + 5);
	cr_assert_eq(crypto_aead_aes256gcm_encrypt_detached(
			 s->ct, s->tag, NULL, s->plain, len, s->ad, s->adlen,
			 NULL, s->nonce, s->key),
		     0);
}

static void sample_free(struct sample *s)
{
	free(s->plain);
	free(s->ct);
}

/* Lengths: the edges, then odd ones up to past two chunks. */
static size_t length(unsigned i)
{
	/* clang-format off */
	static const size_t edges[] = {0,     1,     15,    16,	   17,
				       31,    32,    33,    255,   256,
				       4095,  4096,  4097,  65535, 65536,
				       65537, 96 + 3 * 256 + 5, 131071};
	/* clang-format on */

	if (i < FR_ARRAY_SIZE(edges))
		return edges[i];
	return gen32(1000 + i) % (200u << 10) | 1;
}
#define LENGTHS 48u

/* OpenSSL seals sample s as libsodium did, in place, in run g. */
static void check_seal(struct fr_gcm *g, const struct sample *s)
{
	uint8_t *buf = malloc(s->len + 1), tag[FR_SEAL_TAG];

	memcpy(buf, s->plain, s->len);
	cr_assert_eq(
	    fr_gcm_seal(g, s->nonce, buf, s->len, s->ad, s->adlen, tag), 0);
	cr_assert_arr_eq(buf, s->ct, s->len, "ciphertext differs, length %zu",
			 s->len);
	cr_assert_arr_eq(tag, s->tag, FR_SEAL_TAG, "tag differs, length %zu",
			 s->len);
	free(buf);
}

/* OpenSSL opens what libsodium sealed, in run g. */
static void check_open(struct fr_gcm *g, const struct sample *s)
{
	uint8_t *buf = malloc(s->len + 1);

	memcpy(buf, s->ct, s->len);
	cr_assert_eq(
	    fr_gcm_open(g, s->nonce, buf, s->len, s->ad, s->adlen, s->tag), 0,
	    "libsodium's sealing does not open, length %zu", s->len);
	cr_assert_arr_eq(buf, s->plain, s->len);
	free(buf);
}

Test(gcm, openssl_seals_and_opens_as_libsodium_does)
{
	need_aes();
	for (unsigned i = 0; i < LENGTHS; i++) {
		struct sample s;

		sample(&s, i, length(i));
		/* a run of one call, as a message */
		struct fr_gcm *g = fr_gcm_begin(s.key, true);
		cr_assert_not_null(g, "OpenSSL has no AES-256-GCM here");
		check_seal(g, &s);
		fr_gcm_end(g);
		g = fr_gcm_begin(s.key, false);
		cr_assert_not_null(g);
		check_open(g, &s);
		fr_gcm_end(g);
		sample_free(&s);
	}
}

/* One run, many calls under one key: each call's nonce, AD and length
 * are its own, nothing leaks from the call before. */
Test(gcm, one_run_many_calls)
{
	need_aes();
	struct sample s[LENGTHS];
	struct fr_gcm *gs, *go;

	for (unsigned i = 0; i < LENGTHS; i++) {
		sample(&s[i], 100 + i, length(i));
		memcpy(s[i].key, s[0].key, 32); /* one key, sealed again */
		cr_assert_eq(crypto_aead_aes256gcm_encrypt_detached(
				 s[i].ct, s[i].tag, NULL, s[i].plain, s[i].len,
				 s[i].ad, s[i].adlen, NULL, s[i].nonce,
				 s[i].key),
			     0);
	}
	gs = fr_gcm_begin(s[0].key, true);
	go = fr_gcm_begin(s[0].key, false);
	cr_assert(gs && go);
	for (unsigned i = 0; i < LENGTHS; i++) {
		check_seal(gs, &s[i]);
		check_open(go, &s[i]);
	}
	fr_gcm_end(gs);
	fr_gcm_end(go);
	for (unsigned i = 0; i < LENGTHS; i++)
		sample_free(&s[i]);
}

/* Open s with byte `at` of (body | tag | ad | nonce) flipped: refused,
 * the buffer zeroed; the run goes on opening the next. */
static void flipped(struct fr_gcm *g, const struct sample *s, size_t at)
{
	struct sample t = *s;
	uint8_t *buf = malloc(s->len + 1);

	memcpy(buf, s->ct, s->len);
	if (at < s->len)
		buf[at] ^= 0x01;
	else if ((at -= s->len) < FR_SEAL_TAG)
		t.tag[at] ^= 0x80;
	else if ((at -= FR_SEAL_TAG) < s->adlen)
		t.ad[at] ^= 0x10;
	else
		t.nonce[at - s->adlen] ^= 0x04;
	cr_assert_eq(fr_gcm_open(g, t.nonce, buf, s->len, t.ad, t.adlen, t.tag),
		     FR_E_SEALED, "opened with a byte flipped, length %zu",
		     s->len);
	for (size_t j = 0; j < s->len; j++)
		cr_assert_eq(buf[j], 0, "plaintext left after a failed open");
	free(buf);
}

Test(gcm, a_flipped_byte_anywhere_does_not_open)
{
	need_aes();
	for (unsigned i = 0; i < LENGTHS; i++) {
		struct sample s;

		sample(&s, 200 + i, length(i));
		size_t all = s.len + FR_SEAL_TAG + s.adlen + 12;
		struct fr_gcm *g = fr_gcm_begin(s.key, false);
		cr_assert_not_null(g);
		if (all <= 400) { /* every byte */
			for (size_t at = 0; at < all; at++)
				flipped(g, &s, at);
		} else { /* the ends of each part, and a sample */
			size_t edge[] = {0, s.len - 1, s.len, all - 1,
					 s.len + FR_SEAL_TAG - 1};
			for (size_t j = 0; j < FR_ARRAY_SIZE(edge); j++)
				flipped(g, &s, edge[j]);
			for (unsigned j = 0; j < 16; j++)
				flipped(g, &s, gen32(300 + i * 16 + j) % all);
		}
		check_open(g, &s); /* and the run still opens the real one */
		fr_gcm_end(g);
		sample_free(&s);
	}
}

/* A frame of len bytes sealed in chunks under an AES-256-GCM key: what
 * OpenSSL makes (k.evp) is libsodium's, chunk by chunk. */
static void frame_case(uint32_t len)
{
	struct fr_aead_key k;
	uint8_t key[32], fh[FR_FRAME_HDR], nb[12] = {0};
	uint8_t tags[FR_CHUNKS_MAX * FR_SEAL_TAG];
	uint8_t sodium_tags[FR_CHUNKS_MAX * FR_SEAL_TAG];
	uint8_t *orig = malloc(len + 1), *p = malloc(len + 1),
		*q = malloc(len + 1);
	uint32_t c = fr_chunk_size(len);

	gen(key, 32, len * 4ull + 1);
	gen(fh, sizeof(fh), len * 4ull + 2);
	gen(orig, len, len * 4ull + 3);
	cr_assert_eq(fr_aead_key_init(&k, FR_AEAD_AES256GCM, key), 0);
	cr_assert(k.evp, "the frames' chunks are not OpenSSL's here");
	memcpy(p, orig, len);
	fr_chunks_seal(&k, fh, p, 0, len, tags);
	/* libsodium's, chunk by chunk: nonce (0, part) */
	memcpy(q, orig, len);
	for (uint32_t at = 0, i = 0; at < len; at += c, i++) {
		uint32_t n = len - at < c ? len - at : c;
		fr_put32(nb + 8, i);
		crypto_aead_aes256gcm_encrypt_detached(
		    q + at, sodium_tags + i * FR_SEAL_TAG, NULL, q + at, n, fh,
		    sizeof(fh), NULL, nb, key);
	}
	cr_assert_arr_eq(p, q, len, "a frame of %u sealed otherwise", len);
	cr_assert_arr_eq(tags, sodium_tags, fr_chunk_count(len) * FR_SEAL_TAG);
	/* all by libsodium (k.evp false) gives the same */
	k.evp = false;
	memcpy(q, orig, len);
	fr_chunks_seal(&k, fh, q, 0, len, sodium_tags);
	cr_assert_arr_eq(p, q, len);
	cr_assert_arr_eq(tags, sodium_tags, fr_chunk_count(len) * FR_SEAL_TAG);
	/* OpenSSL opens it, from a chunk on too; a flipped byte stops it */
	k.evp = true;
	if (len > c) {
		memcpy(q, p, len);
		cr_assert_eq(
		    fr_chunks_open(&k, fh, q, c, len, tags + FR_SEAL_TAG), 0);
		cr_assert_arr_eq(q + c, orig + c, len - c);
		memcpy(q, p, len);
		q[c + 7] ^= 1;
		cr_assert_eq(
		    fr_chunks_open_prefix(&k, fh, q, 0, len, len, tags), c);
		cr_assert_arr_eq(q, orig, c);
	}
	cr_assert_eq(fr_chunks_open(&k, fh, p, 0, len, tags), 0);
	cr_assert_arr_eq(p, orig, len);
	sodium_memzero(&k, sizeof(k));
	free(orig);
	free(p);
	free(q);
}

Test(gcm, a_frames_chunks_are_libsodiums)
{
	need_aes();
	frame_case(1);
	frame_case(17);
	frame_case(FR_CHUNK_MIN);
	frame_case(5 * FR_CHUNK_MIN + 101);
	frame_case((8u << 20) + 12345); /* chunks of 128 KiB */
}

/* A message of 4 KiB or more goes by OpenSSL in fr_aead_seal/open. */
Test(gcm, large_messages_are_libsodiums)
{
	need_aes();
	static const size_t lens[] = {4095, 4096, 4097, 65536 + 3, 300001};
	struct fr_aead_key k, ks;
	uint8_t key[32], ad[8], tag[FR_SEAL_TAG], tag2[FR_SEAL_TAG];

	gen(key, 32, 7);
	gen(ad, 8, 8);
	cr_assert_eq(fr_aead_key_init(&k, FR_AEAD_AES256GCM, key), 0);
	ks = k;
	ks.evp = false;
	for (size_t i = 0; i < FR_ARRAY_SIZE(lens); i++) {
		size_t n = lens[i];
		uint8_t *a = malloc(n), *b = malloc(n), *o = malloc(n);

		gen(o, n, 9 + i);
		memcpy(a, o, n);
		memcpy(b, o, n);
		fr_aead_seal(&k, 77, (uint32_t)i, a, n, ad, 8, tag);
		fr_aead_seal(&ks, 77, (uint32_t)i, b, n, ad, 8, tag2);
		cr_assert_arr_eq(a, b, n);
		cr_assert_arr_eq(tag, tag2, FR_SEAL_TAG);
		cr_assert_eq(
		    fr_aead_open(&k, 77, (uint32_t)i, a, n, ad, 8, tag), 0);
		cr_assert_arr_eq(a, o, n);
		b[n / 2] ^= 1;
		cr_assert_eq(
		    fr_aead_open(&k, 77, (uint32_t)i, b, n, ad, 8, tag2),
		    FR_E_SEALED);
		free(a);
		free(b);
		free(o);
	}
}

/* Workers seal and open different frames at once: each thread's runs
 * are its own. */
struct worker {
	pthread_t t;
	unsigned id;
	int bad;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (unsigned r = 0; r < 40; r++) {
		struct sample s;

		sample(&s, 10000 + w->id * 1000 + r, 70000 + r * 13);
		struct fr_gcm *g = fr_gcm_begin(s.key, r % 2);
		uint8_t *buf = malloc(s.len), tag[FR_SEAL_TAG];

		if (r % 2) {
			memcpy(buf, s.plain, s.len);
			w->bad += !g ||
				  fr_gcm_seal(g, s.nonce, buf, s.len, s.ad,
					      s.adlen, tag) ||
				  memcmp(buf, s.ct, s.len) ||
				  memcmp(tag, s.tag, FR_SEAL_TAG);
		} else {
			memcpy(buf, s.ct, s.len);
			w->bad += !g ||
				  fr_gcm_open(g, s.nonce, buf, s.len, s.ad,
					      s.adlen, s.tag) ||
				  memcmp(buf, s.plain, s.len);
		}
		fr_gcm_end(g);
		free(buf);
		sample_free(&s);
	}
	return NULL;
}

Test(gcm, threads_at_once)
{
	need_aes();
	struct worker w[4];

	for (unsigned i = 0; i < FR_ARRAY_SIZE(w); i++) {
		w[i].id = i;
		w[i].bad = 0;
		cr_assert_eq(pthread_create(&w[i].t, NULL, work, &w[i]), 0);
	}
	for (unsigned i = 0; i < FR_ARRAY_SIZE(w); i++) {
		pthread_join(w[i].t, NULL);
		cr_assert_eq(w[i].bad, 0, "thread %u: %d wrong", i, w[i].bad);
	}
}
