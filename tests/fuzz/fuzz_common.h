/*
 * fuzz_common.h - what the fuzz targets and the seed generator share: a
 * small fixed package (its manifest and the bytes of its segments), so
 * that a target that checks frames or journal records against a manifest
 * and the seeds made for it agree. Header-only: each target is one file.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

#define FZ_SEG FR_SEG_MIN /* 4 KiB segments: small and fast */
#define FZ_SIZE_A 10000u  /* d/a */
#define FZ_SIZE_B 3000u	  /* b */
#define FZ_TOTAL (FZ_SIZE_A + FZ_SIZE_B)

/* The package's byte stream (b, then d/a: path order): compressible,
 * and not the same in every segment. */
static inline uint8_t fz_byte(uint64_t pos)
{
	static const char text[] = "ferry carries software to every site; ";
	return (uint8_t)(text[pos % (sizeof(text) - 1)] + (pos / 4096) % 3);
}

/* Segment seg's raw bytes into dst (FZ_SEG bytes); returns its length. */
static inline uint32_t fz_segment(const struct fr_manifest *m, uint32_t seg,
				  uint8_t *dst)
{
	uint32_t len = m->segments[seg].length;

	for (uint32_t i = 0; i < len; i++)
		dst[i] = fz_byte(m->segments[seg].offset + i);
	return len;
}

/* The fixed manifest: b (3000 bytes), d/, d/a (10000), l -> b. */
static inline int fz_manifest(struct fr_manifest *m)
{
	static uint8_t seg[FZ_SEG];
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = fr_manifest_init(m, "fuzzpkg", FZ_SEG)) < 0 ||
	    (rc = fr_manifest_add(m, FR_ENT_FILE, "b", 0644, FZ_SIZE_B,
				  1700000000, 5, NULL)) < 0 ||
	    (rc = fr_manifest_add(m, FR_ENT_DIR, "d", 0755, 0, 1700000001, 0,
				  NULL)) < 0 ||
	    (rc = fr_manifest_add(m, FR_ENT_FILE, "d/a", 0600, FZ_SIZE_A,
				  1700000002, 999999999, NULL)) < 0 ||
	    (rc = fr_manifest_add(m, FR_ENT_LINK, "l", 0777, 0, 1700000003, 0,
				  "b")) < 0 ||
	    (rc = fr_manifest_layout(m)) < 0)
		goto fail;
	for (uint32_t s = 0; s < m->n_segments; s++) {
		uint32_t len = fz_segment(m, s, seg);
		fr_hash128(seg, len, m->segments[s].hash);
	}
	if ((rc = fr_manifest_seal(m)) < 0)
		goto fail;
	return 0;
fail:
	fr_manifest_fini(m);
	return rc;
}

#endif
