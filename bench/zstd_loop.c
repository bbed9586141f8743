/*
 * zstd_loop.c - the yardstick under `ferry bench pipeline`'s zstd rates:
 * the shared libzstd that ferry links (Debian's zstd command carries a
 * static copy of its own, built otherwise), driven the plainest way.
 * FILE is cut into 8 MiB chunks, as ferry cuts segments; each chunk is
 * compressed with ZSTD_compressCCtx at LEVEL, then decompressed, each
 * in three rounds of at least a second; the fastest round of each is
 * printed as "ratio compress_MB/s decompress_MB/s" (MB = 10^6 bytes).
 *
 *   build/bench_zstd_loop LEVEL FILE      (bench/pipeline.sh runs it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zstd.h>

#define CHUNK (8u << 20)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned char *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || !(b = malloc((size_t)n)) ||
	    fread(b, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		exit(1);
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

int main(int argc, char **argv)
{
	size_t len, nchunks, cap = ZSTD_compressBound(CHUNK), stored = 0;
	double best_c = 0, best_d = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_zstd_loop LEVEL FILE\n");
		return 2;
	}
	int level = atoi(argv[1]);
	unsigned char *src = load(argv[2], &len), *back = malloc(CHUNK);
	nchunks = (len + CHUNK - 1) / CHUNK;
	unsigned char **dst = calloc(nchunks, sizeof(*dst));
	size_t *dlen = calloc(nchunks, sizeof(*dlen));
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	if (!back || !dst || !dlen || !cc || !dc)
		return 1;
	for (size_t i = 0; i < nchunks; i++)
		if (!(dst[i] = malloc(cap)))
			return 1;
	for (int r = 0; r < 3; r++) {
		size_t bytes = 0;
		double t0 = now();
		do {
			for (size_t i = 0; i < nchunks; i++) {
				size_t n = len - i * CHUNK < CHUNK ? len - i * CHUNK : CHUNK;
				dlen[i] = ZSTD_compressCCtx(cc, dst[i], cap, src + i * CHUNK, n,
							    level);
				if (ZSTD_isError(dlen[i]))
					return 1;
				bytes += n;
			}
		} while (now() - t0 < 1.0);
		double rate = (double)bytes / 1e6 / (now() - t0);
		best_c = rate > best_c ? rate : best_c;
	}
	for (size_t i = 0; i < nchunks; i++)
		stored += dlen[i];
	for (int r = 0; r < 3; r++) {
		size_t bytes = 0;
		double t0 = now();
		do {
			for (size_t i = 0; i < nchunks; i++) {
				size_t n = ZSTD_decompressDCtx(dc, back, CHUNK, dst[i], dlen[i]);
				if (ZSTD_isError(n))
					return 1;
				bytes += n;
			}
		} while (now() - t0 < 1.0);
		double rate = (double)bytes / 1e6 / (now() - t0);
		best_d = rate > best_d ? rate : best_d;
	}
	printf("%.3f %.1f %.1f\n", (double)len / (double)stored, best_c, best_d);
	return 0;
}
