/*
 * bench/seal_rate.c - what sealing costs a core: the rate at which one
 * thread seals and opens a frame's payload in place, as the workers do
 * (fr_chunks_seal / fr_chunks_open: 64 KiB chunks under a frame key), for
 * each AEAD this machine has, next to what one core hashes (XXH3-128)
 * and copies (memcpy) in the same run, as yardsticks. AES-256-GCM is
 * measured twice: as ferry does it (OpenSSL's libcrypto for the bulk,
 * engine/core/seal.c) and by libsodium alone (as ferry did before).
 *
 * Then one message sealed per call (fr_aead_seal's case) at a few sizes,
 * by libsodium with the key's state made once and by OpenSSL with the
 * key set up per call (fr_gcm_begin/seal/end): where OpenSSL starts to
 * pay (seal.c's GCM_EVP_MIN).
 *
 *   build/bench_seal_rate [MiB per pass, default 8] [seconds, default 2]
 *
 * Prints one line per measurement, MB/s (10^6 bytes per second).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fr_internal.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum what { SEAL, OPEN, HASH, COPY };

/* Passes over buf for about secs seconds; bytes per second. */
static double rate(enum what w, const struct fr_aead_key *k, uint8_t *buf,
		   uint8_t *copy, uint32_t len, uint8_t *tags, double secs)
{
	uint8_t fh[FR_FRAME_HDR] = {0}, h[FR_HASH_LEN];
	double t0 = now_s(), t;
	uint64_t bytes = 0;

	if (w == OPEN)
		fr_chunks_seal(k, fh, buf, 0, len, tags);
	do {
		switch (w) {
		case SEAL:
			fr_chunks_seal(k, fh, buf, 0, len, tags);
			break;
		case OPEN:
			/* opened, then sealed back (not timed) for the next */
			if (fr_chunks_open(k, fh, buf, 0, len, tags) < 0) {
				fprintf(stderr, "open failed\n");
				exit(1);
			}
			t = now_s();
			fr_chunks_seal(k, fh, buf, 0, len, tags);
			t0 += now_s() - t;
			break;
		case HASH:
			fr_hash128(buf, len, h);
			break;
		case COPY:
			memcpy(copy, buf, len);
			break;
		}
		bytes += len;
		t = now_s();
	} while (t - t0 < secs);
	return (double)bytes / (t - t0);
}

/* One message of len bytes sealed per call, for about secs seconds. */
static double per_call(bool evp, const struct fr_aead_key *k, uint8_t *buf,
		       uint32_t len, double secs)
{
	uint8_t ad[8] = {0}, nb[12] = {0}, tag[FR_SEAL_TAG];
	double t0 = now_s(), t;
	uint64_t bytes = 0;

	do {
		for (int i = 0; i < 64; i++) {
			nb[0]++;
			if (evp) {
				struct fr_gcm *g = fr_gcm_begin(k->key, true);

				if (!g || fr_gcm_seal(g, nb, buf, len, ad,
						      sizeof(ad), tag) < 0) {
					fprintf(stderr, "OpenSSL failed\n");
					exit(1);
				}
				fr_gcm_end(g);
			} else {
				crypto_aead_aes256gcm_encrypt_detached_afternm(
				    buf, tag, NULL, buf, len, ad, sizeof(ad),
				    NULL, nb, &k->gcm);
			}
			bytes += len;
		}
		t = now_s();
	} while (t - t0 < secs);
	return (double)bytes / (t - t0);
}

/* What one OpenSSL run costs before its first byte: a context made,
 * keyed (AES key schedule, GHASH tables) and freed (wiped); seconds. */
static double run_setup(const struct fr_aead_key *k, double secs)
{
	double t0 = now_s(), t;
	uint64_t runs = 0;

	do {
		for (int i = 0; i < 256; i++) {
			struct fr_gcm *g = fr_gcm_begin(k->key, i & 1);

			if (!g) {
				fprintf(stderr, "OpenSSL failed\n");
				exit(1);
			}
			fr_gcm_end(g);
		}
		runs += 256;
		t = now_s();
	} while (t - t0 < secs);
	return (t - t0) / (double)runs;
}

static void per_call_table(const struct fr_aead_key *k, uint8_t *buf,
			   double secs)
{
	static const uint32_t sizes[] = {64, 256, 1024, 4096, 16384, 65536};

	printf("an OpenSSL run's set-up (context made, keyed, freed): "
	       "%.2f us\n",
	       run_setup(k, secs / 4) * 1e6);

	printf("one message per call, AES-256-GCM (MB/s):\n");
	printf("%8s %12s %12s\n", "bytes", "libsodium", "OpenSSL");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		printf("%8u %12.0f %12.0f\n", sizes[i],
		       per_call(false, k, buf, sizes[i], secs / 4) / 1e6,
		       per_call(true, k, buf, sizes[i], secs / 4) / 1e6);
}

static void aead_line(const char *name, const struct fr_aead_key *k,
		      uint8_t *buf, uint8_t *copy, uint32_t len, uint8_t *tags,
		      double secs)
{
	printf("%-28s seal %7.0f MB/s   open %7.0f MB/s\n", name,
	       rate(SEAL, k, buf, copy, len, tags, secs) / 1e6,
	       rate(OPEN, k, buf, copy, len, tags, secs) / 1e6);
}

int main(int argc, char **argv)
{
	uint32_t mib = argc > 1 ? (uint32_t)atoi(argv[1]) : 8;
	double secs = argc > 2 ? atof(argv[2]) : 2;
	uint32_t len = mib << 20;
	uint8_t *buf = malloc(len), *copy = malloc(len);
	uint8_t tags[FR_CHUNKS_MAX * FR_SEAL_TAG], key[32];
	struct fr_aead_key k, gcm = {0};

	if (!buf || !copy || mib == 0 || mib > 64 || sodium_init() < 0) {
		fprintf(stderr, "usage: bench_seal_rate [MiB 1..64] [seconds]\n");
		return 2;
	}
	fr_random(buf, len);
	fr_random(key, sizeof(key));
	printf("payload %u MiB, chunks of %u KiB, one thread, %.0f s each\n",
	       mib, fr_chunk_size(len) >> 10, secs);
	printf("this machine would choose: %s\n", fr_aead_name(fr_aead_local()));
	for (uint8_t a = FR_AEAD_AES256GCM; a <= FR_AEAD_XCHACHA20; a++) {
		if (fr_aead_key_init(&k, a, key) < 0) {
			printf("%-20s not available here\n", fr_aead_name(a));
			continue;
		}
		if (a != FR_AEAD_AES256GCM) {
			aead_line(fr_aead_name(a), &k, buf, copy, len, tags,
				  secs);
			continue;
		}
		if (k.evp)
			aead_line("AES-256-GCM (OpenSSL)", &k, buf, copy, len,
				  tags, secs);
		else
			printf("AES-256-GCM (OpenSSL)        not used here\n");
		bool evp = k.evp;
		k.evp = false;
		aead_line("AES-256-GCM (libsodium)", &k, buf, copy, len, tags,
			  secs);
		k.evp = evp;
		gcm = k;
	}
	printf("%-28s      %7.0f MB/s\n", "XXH3-128",
	       rate(HASH, &k, buf, copy, len, tags, secs) / 1e6);
	printf("%-28s      %7.0f MB/s\n", "memcpy",
	       rate(COPY, &k, buf, copy, len, tags, secs) / 1e6);
	if (gcm.aead == FR_AEAD_AES256GCM && gcm.evp)
		per_call_table(&gcm, buf, secs);
	free(buf);
	free(copy);
	return 0;
}
