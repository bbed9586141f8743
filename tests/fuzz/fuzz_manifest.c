/*
 * fuzz_manifest.c - fr_manifest_decode on the whole input, as given and
 * again with its trailing checksum made right (so that every field check
 * is reached). An accepted manifest encodes back to the same bytes, has
 * the id of those bytes, and its derived tables are walked (extents of
 * every segment) as the engine walks them.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *buf, size_t size)
{
	struct fr_manifest m;
	uint8_t id[FR_HASH_LEN];
	int r = fr_manifest_decode(&m, buf, size);

	if (r < 0)
		return;
	size_t need = fr_manifest_encoded_size(&m);
	uint8_t *out = malloc(need ? need : 1);
	if (!out)
		abort();
	ssize_t n = fr_manifest_encode(&m, out, need);
	if (n < 0 || (size_t)n != size || memcmp(out, buf, size))
		abort(); /* decode then encode gives the same bytes */
	fr_hash128(out, (size_t)n, id);
	if (memcmp(id, m.id, FR_HASH_LEN))
		abort();
	free(out);
	uint64_t covered = 0;
	for (uint32_t s = 0; s < m.n_segments; s++) {
		struct fr_extent_iter it;
		struct fr_extent e;
		uint64_t seg = 0;
		fr_extent_iter_init(&it, &m, s);
		while (fr_extent_next(&it, &e)) {
			const struct fr_entry *en = &m.entries[e.entry];
			if (e.entry >= m.n_entries || en->type != FR_ENT_FILE ||
			    e.file_off + e.len > en->size ||
			    e.seg_off + (uint64_t)e.len > m.segments[s].length)
				abort();
			seg += e.len;
		}
		if (seg != m.segments[s].length)
			abort();
		covered += seg;
	}
	if (covered != m.total_size)
		abort();
	fr_manifest_fini(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	if (size > (1u << 20))
		return 0;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	check(buf, size);
	if (size >= 8) {
		fr_put64(buf + size - 8, fr_hash64(buf, size - 8));
		check(buf, size);
	}
	free(buf);
	return 0;
}
