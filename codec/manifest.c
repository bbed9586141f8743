/*
 * manifest.c - the package manifest: what a package holds and how its byte
 * stream is cut into segments (byte layout in docs/FORMAT.md).
 *
 * Invariants, for a manifest built here or decoded from untrusted bytes:
 * entries are in strict strcmp order of path, each entry's parent is an
 * earlier directory entry, every path is a safe relative path and every
 * link target stays inside the package; files are laid end to end in
 * entry order, and the segment table cuts that stream at multiples of
 * seg_size. The decoder never allocates more than the input's length
 * justifies, and every size sum is overflow-checked.
 *
 * Pure code: no I/O. The engine decides where the bytes go; this file only
 * promises that the names it hands out cannot leave the package directory
 * lexically (the engine still writes with no-follow semantics, since a
 * lexical check cannot see through a chain of symlinks).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

#define FR_MH_LEN 32 /* manifest header */
#define FR_ME_LEN 32 /* fixed part of an entry */
#define FR_MS_LEN 32 /* one segment */
#define FR_MT_LEN 8  /* trailer */
#define FR_MR_LEN 12 /* the root's mtime (FR_MF_ROOT_TIME) */
#define FR_NSEC 1000000000u
#define FR_MAX_ITEMS (FR_MANIFEST_MAX / 32) /* more could never encode */

/* ---- names and paths --------------------------------------------------- */

/* Control bytes make logs, packing lists and terminals lie: a package
 * name is refused one. An entry's path or link target may hold any byte
 * Linux allows in a name (all but NUL and '/' within a component), so
 * every byte but those is carried; whoever prints a path escapes it. */
static bool fr_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

int fr_name_check(const char *name)
{
	size_t len;

	if (!name)
		return FR_E_BAD_NAME;
	len = strnlen(name, FR_NAME_MAX + 1);
	if (len == 0 || len > FR_NAME_MAX)
		return FR_E_BAD_NAME;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return FR_E_BAD_NAME;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || fr_is_ctl((unsigned char)name[i]))
			return FR_E_BAD_NAME;
	return 0;
}

int fr_path_check(const char *path)
{
	size_t len, start = 0;

	if (!path)
		return FR_E_BAD_PATH;
	len = strnlen(path, FR_PATH_MAX + 1);
	if (len == 0 || len > FR_PATH_MAX || path[0] == '/')
		return FR_E_BAD_PATH;
	/* One pass over components; the i == len step closes the last one. */
	for (size_t i = 0; i <= len; i++) {
		size_t clen;

		if (i < len && path[i] != '/')
			continue;
		clen = i - start;
		if (clen == 0)
			return FR_E_BAD_PATH; /* "a//b", trailing '/' */
		if (path[start] == '.' &&
		    (clen == 1 || (clen == 2 && path[start + 1] == '.')))
			return FR_E_BAD_PATH;
		start = i + 1;
	}
	return 0;
}

int fr_link_check(const char *link_path, const char *target)
{
	size_t len, start = 0;
	long depth = 0;

	if (!link_path || !target)
		return FR_E_BAD_LINK;
	len = strnlen(target, FR_PATH_MAX + 1);
	if (len == 0 || len > FR_PATH_MAX || target[0] == '/')
		return FR_E_BAD_LINK;
	/* The link resolves relative to its own directory. */
	for (const char *p = link_path; *p; p++)
		if (*p == '/')
			depth++;
	for (size_t i = 0; i <= len; i++) {
		size_t clen;

		if (i < len && target[i] != '/')
			continue;
		clen = i - start;
		if (clen == 2 && target[start] == '.' &&
		    target[start + 1] == '.') {
			if (--depth < 0)
				return FR_E_BAD_LINK;
		} else if (clen > 0 && !(clen == 1 && target[start] == '.')) {
			depth++;
		}
		start = i + 1;
	}
	return 0;
}

/* ---- building ---------------------------------------------------------- */

int fr_manifest_init(struct fr_manifest *m, const char *name, uint32_t seg_size)
{
	int rc;

	memset(m, 0, sizeof(*m));
	rc = fr_name_check(name);
	if (rc)
		return rc;
	if (seg_size < FR_SEG_MIN || seg_size > FR_SEG_MAX)
		return FR_E_SEG_SIZE;
	m->name = strdup(name);
	if (!m->name)
		return -ENOMEM;
	m->seg_size = seg_size;
	m->root_mode = 0755;
	return 0;
}

void fr_manifest_fini(struct fr_manifest *m)
{
	if (m->entries) {
		for (uint32_t i = 0; i < m->n_entries; i++) {
			free(m->entries[i].path);
			free(m->entries[i].target);
		}
	}
	free(m->entries);
	free(m->segments);
	free(m->data_idx);
	free(m->name);
	memset(m, 0, sizeof(*m));
}

/* strcmp order of the NUL-terminated s against the unterminated p[0..plen) */
static int fr_cmp_prefix(const char *s, const char *p, size_t plen)
{
	int r = strncmp(s, p, plen);

	if (r)
		return r;
	return s[plen] ? 1 : 0;
}

/* Index of the entry named p[0..plen) among the first n (sorted), or -1. */
static int64_t fr_find(const struct fr_manifest *m, uint32_t n, const char *p,
		       size_t plen)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int r = fr_cmp_prefix(m->entries[mid].path, p, plen);

		if (r == 0)
			return mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool fr_has_dir(const struct fr_manifest *m, uint32_t n, const char *p,
		       size_t plen)
{
	int64_t i = fr_find(m, n, p, plen);

	return i >= 0 && m->entries[i].type == FR_ENT_DIR;
}

int fr_link_walk(const char *link_path, const char *target,
		 bool (*is_link)(void *arg, const char *p, size_t n), void *arg)
{
	char buf[2 * FR_PATH_MAX + 2];
	const char *slash = strrchr(link_path, '/'), *t;
	size_t len = 0;

	if (slash) {
		len = (size_t)(slash - link_path);
		if (len >= sizeof(buf))
			return FR_E_BAD_LINK;
		memcpy(buf, link_path, len);
	}
	for (t = target; *t;) {
		const char *end = strchr(t, '/');
		size_t cl = end ? (size_t)(end - t) : strlen(t);
		bool last = !end || !end[1 + strspn(end + 1, "/")];

		if (cl == 0 || (cl == 1 && t[0] == '.')) {
			/* nothing */
		} else if (cl == 2 && t[0] == '.' && t[1] == '.') {
			if (len == 0)
				return FR_E_BAD_LINK;
			while (len > 0 && buf[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
		} else {
			if (len + cl + 2 > sizeof(buf))
				return FR_E_BAD_LINK;
			if (len)
				buf[len++] = '/';
			memcpy(buf + len, t, cl);
			len += cl;
			if (!last && is_link(arg, buf, len))
				return FR_E_BAD_LINK;
		}
		t += cl;
		while (*t == '/')
			t++;
	}
	return 0;
}

static bool fr_is_link(void *arg, const char *p, size_t plen)
{
	const struct fr_manifest *m = arg;
	int64_t i = fr_find(m, m->n_entries, p, plen);

	return i >= 0 && m->entries[i].type == FR_ENT_LINK;
}

/*
 * fr_link_check sees one target as text; the kernel follows every link on
 * the way. A target that passes through another symlink of the package
 * (t -> ".", u -> "t/..") could leave it although each target alone
 * stays inside, so no component but the last may name a symlink.
 */
static int fr_links_check(const struct fr_manifest *m)
{
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct fr_entry *e = &m->entries[i];
		int rc;

		if (e->type == FR_ENT_LINK &&
		    (rc = fr_link_walk(e->path, e->target, fr_is_link,
				       (void *)m)) < 0)
			return rc;
	}
	return 0;
}

/*
 * The rules one entry must meet against the entries before it; shared by
 * add and decode so a manifest we build is one we would accept.
 */
static int fr_entry_check(const struct fr_manifest *m, uint8_t type,
			  const char *path, uint32_t mode, uint32_t nsec,
			  const char *target)
{
	const char *slash;
	int rc;

	if (type != FR_ENT_DIR && type != FR_ENT_FILE && type != FR_ENT_LINK)
		return FR_E_BAD_ENTRY;
	if ((mode & ~07777u) || nsec >= FR_NSEC)
		return FR_E_BAD_ENTRY;
	rc = fr_path_check(path);
	if (rc)
		return rc;
	if (m->n_entries > 0 &&
	    strcmp(m->entries[m->n_entries - 1].path, path) >= 0)
		return FR_E_BAD_ORDER;
	slash = strrchr(path, '/');
	if (slash && !fr_has_dir(m, m->n_entries, path, (size_t)(slash - path)))
		return FR_E_NO_PARENT;
	if (type == FR_ENT_LINK)
		return fr_link_check(path, target);
	return 0;
}

/* Drop a stale layout: a new entry changes every derived field. */
static void fr_layout_drop(struct fr_manifest *m)
{
	free(m->segments);
	free(m->data_idx);
	m->segments = NULL;
	m->data_idx = NULL;
	m->n_segments = 0;
	m->n_data = 0;
	m->total_size = 0;
}

int fr_manifest_add(struct fr_manifest *m, uint8_t type, const char *path,
		    uint32_t mode, uint64_t size, int64_t mtime_sec,
		    uint32_t mtime_nsec, const char *target)
{
	struct fr_entry *e;
	int rc;

	rc = fr_entry_check(m, type, path, mode, mtime_nsec, target);
	if (rc)
		return rc;
	if (m->n_entries >= FR_MAX_ITEMS)
		return FR_E_TOO_LARGE;
	if (m->n_entries == m->cap_entries) {
		uint32_t cap = m->cap_entries ? m->cap_entries * 2 : 16;

		e = realloc(m->entries, (size_t)cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		m->entries = e;
		m->cap_entries = cap;
	}
	e = &m->entries[m->n_entries];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (type == FR_ENT_LINK)
		e->target = strdup(target);
	if (!e->path || (type == FR_ENT_LINK && !e->target)) {
		free(e->path);
		free(e->target);
		return -ENOMEM;
	}
	e->type = type;
	e->mode = mode;
	e->mtime_sec = mtime_sec;
	e->mtime_nsec = mtime_nsec;
	e->size = type == FR_ENT_FILE ? size : 0;
	m->n_entries++;
	fr_layout_drop(m);
	return 0;
}

/*
 * File offsets, total size and data_idx from the entries. Every entry
 * gets the stream position it sits at, so an empty file has a defined
 * offset too. The total stays below 2^63 so it fits an off_t.
 */
static int fr_derive(struct fr_manifest *m)
{
	uint64_t off = 0;
	uint32_t nd = 0, k = 0;

	for (uint32_t i = 0; i < m->n_entries; i++) {
		struct fr_entry *e = &m->entries[i];

		e->offset = off;
		if (e->type != FR_ENT_FILE || e->size == 0)
			continue;
		if (e->size > (uint64_t)INT64_MAX - off)
			return FR_E_TOO_LARGE;
		off += e->size;
		nd++;
	}
	free(m->data_idx);
	m->data_idx = NULL;
	m->n_data = 0;
	if (nd) {
		m->data_idx = malloc((size_t)nd * sizeof(*m->data_idx));
		if (!m->data_idx)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].type == FR_ENT_FILE && m->entries[i].size)
			m->data_idx[k++] = i;
	m->n_data = nd;
	m->total_size = off;
	return 0;
}

static uint64_t fr_nseg(uint64_t total, uint32_t seg_size)
{
	return total / seg_size + (total % seg_size != 0);
}

static uint32_t fr_seg_len(uint64_t total, uint32_t seg_size, uint64_t off)
{
	return total - off < seg_size ? (uint32_t)(total - off) : seg_size;
}

int fr_manifest_layout(struct fr_manifest *m)
{
	uint64_t n;
	int rc;

	fr_layout_drop(m);
	rc = fr_links_check(m);
	if (rc)
		return rc;
	rc = fr_derive(m);
	if (rc)
		return rc;
	n = fr_nseg(m->total_size, m->seg_size);
	if (n > FR_MAX_ITEMS)
		return FR_E_TOO_LARGE;
	if (n) {
		m->segments = calloc((size_t)n, sizeof(*m->segments));
		if (!m->segments)
			return -ENOMEM;
	}
	m->n_segments = (uint32_t)n;
	for (uint32_t i = 0; i < m->n_segments; i++) {
		uint64_t off = (uint64_t)i * m->seg_size;

		m->segments[i].offset = off;
		m->segments[i].length =
		    fr_seg_len(m->total_size, m->seg_size, off);
	}
	return 0;
}

/* ---- encoding ---------------------------------------------------------- */

size_t fr_manifest_encoded_size(const struct fr_manifest *m)
{
	size_t n = FR_MH_LEN + strlen(m->name) + FR_MT_LEN +
		   (m->has_root_time ? FR_MR_LEN : 0);

	/* Bounded by FR_MAX_ITEMS * (32 + 2 * 4096): no overflow in size_t. */
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct fr_entry *e = &m->entries[i];

		n += FR_ME_LEN + strlen(e->path);
		if (e->target)
			n += strlen(e->target);
	}
	return n + (size_t)m->n_segments * FR_MS_LEN;
}

/* listing: as the listing id is computed, open and with every hash zero */
static ssize_t fr_encode_as(const struct fr_manifest *m, void *dst, size_t cap,
			    bool listing)
{
	size_t need = fr_manifest_encoded_size(m);
	size_t nlen = strlen(m->name);
	uint8_t *p = dst, *start = dst;

	if (need > FR_MANIFEST_MAX)
		return FR_E_TOO_LARGE;
	if (cap < need)
		return -ENOBUFS;
	fr_put32(p, FR_MANIFEST_MAGIC);
	fr_put16(p + 4, FR_MANIFEST_VERSION);
	fr_put16(p + 6, (listing || m->open ? FR_MF_OPEN : 0) |
			    (m->has_root_time ? FR_MF_ROOT_TIME : 0));
	fr_put32(p + 8, m->seg_size);
	fr_put32(p + 12, m->n_entries);
	fr_put32(p + 16, m->n_segments);
	fr_put16(p + 20, (uint16_t)nlen);
	fr_put16(p + 22, m->root_mode);
	fr_put64(p + 24, m->total_size);
	p += FR_MH_LEN;
	memcpy(p, m->name, nlen);
	p += nlen;
	if (m->has_root_time) {
		fr_put64(p, (uint64_t)m->root_mtime_sec);
		fr_put32(p + 8, m->root_mtime_nsec);
		p += FR_MR_LEN;
	}
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct fr_entry *e = &m->entries[i];
		size_t pl = strlen(e->path);
		size_t tl = e->target ? strlen(e->target) : 0;

		p[0] = e->type;
		p[1] = 0;
		fr_put16(p + 2, (uint16_t)pl);
		fr_put16(p + 4, (uint16_t)tl);
		fr_put16(p + 6, 0);
		fr_put32(p + 8, e->mode);
		fr_put32(p + 12, e->mtime_nsec);
		fr_put64(p + 16, (uint64_t)e->mtime_sec);
		fr_put64(p + 24, e->size);
		p += FR_ME_LEN;
		memcpy(p, e->path, pl);
		p += pl;
		if (tl)
			memcpy(p, e->target, tl);
		p += tl;
	}
	for (uint32_t i = 0; i < m->n_segments; i++) {
		const struct fr_segment *s = &m->segments[i];

		fr_put64(p, s->offset);
		fr_put32(p + 8, s->length);
		fr_put32(p + 12, 0);
		if (listing)
			memset(p + 16, 0, FR_HASH_LEN);
		else
			memcpy(p + 16, s->hash, FR_HASH_LEN);
		p += FR_MS_LEN;
	}
	fr_put64(p, fr_hash64(start, (size_t)(p - start)));
	p += FR_MT_LEN;
	return (ssize_t)(p - start);
}

ssize_t fr_manifest_encode(const struct fr_manifest *m, void *dst, size_t cap)
{
	return fr_encode_as(m, dst, cap, false);
}

/* m->lid from m's listing (buf holds at least its encoded size). */
static void fr_listing_id(struct fr_manifest *m, void *buf, size_t cap)
{
	ssize_t r = fr_encode_as(m, buf, cap, true);
	if (r >= 0)
		fr_hash128(buf, (size_t)r, m->lid);
}

int fr_manifest_seal_out(struct fr_manifest *m, uint8_t **out, size_t *len)
{
	size_t n = fr_manifest_encoded_size(m);
	ssize_t r;
	uint8_t *buf;

	if (n > FR_MANIFEST_MAX)
		return FR_E_TOO_LARGE;
	buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	fr_listing_id(m, buf, n); /* first: the buffer then holds m itself */
	r = fr_manifest_encode(m, buf, n);
	if (r >= 0)
		fr_hash128(buf, (size_t)r, m->id);
	if (r >= 0 && out) {
		*out = buf;
		*len = (size_t)r;
	} else {
		free(buf);
	}
	return r < 0 ? (int)r : 0;
}

int fr_manifest_seal(struct fr_manifest *m)
{
	return fr_manifest_seal_out(m, NULL, NULL);
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * Follow the length fields only, to find where the body ends (the trailer
 * starts). Each step is bounds-checked against len and consumes at least
 * 32 bytes, so a lying count ends the walk after len/32 steps.
 */
static int fr_walk(const uint8_t *s, size_t len, size_t *end)
{
	size_t pos = FR_MH_LEN + fr_get16(s + 20) +
		     (fr_get16(s + 6) & FR_MF_ROOT_TIME ? FR_MR_LEN : 0);
	uint32_t n = fr_get32(s + 12);

	if (pos > len)
		return FR_E_TRUNCATED;
	for (uint32_t i = 0; i < n; i++) {
		size_t var;

		if (len - pos < FR_ME_LEN)
			return FR_E_TRUNCATED;
		var = (size_t)fr_get16(s + pos + 2) + fr_get16(s + pos + 4);
		pos += FR_ME_LEN;
		if (len - pos < var)
			return FR_E_TRUNCATED;
		pos += var;
	}
	n = fr_get32(s + 16);
	if (n > (len - pos) / FR_MS_LEN)
		return FR_E_TRUNCATED;
	*end = pos + (size_t)n * FR_MS_LEN;
	return 0;
}

/*
 * Integrity before meaning: the trailer is checked before any field is
 * believed, so random damage reads as FR_E_CHECKSUM. When it fails, the
 * walk tells a short input (FR_E_TRUNCATED) or a good manifest followed by
 * junk (FR_E_TRAILING) apart from plain damage.
 */
static int fr_integrity(const uint8_t *s, size_t len)
{
	size_t end = 0;
	int walk = len >= FR_MH_LEN + FR_MT_LEN ? fr_walk(s, len, &end)
						: FR_E_TRUNCATED;

	if (len >= FR_MH_LEN + FR_MT_LEN &&
	    fr_get64(s + len - FR_MT_LEN) == fr_hash64(s, len - FR_MT_LEN)) {
		if (walk || end > len - FR_MT_LEN)
			return FR_E_TRUNCATED;
		if (end < len - FR_MT_LEN)
			return FR_E_TRAILING;
		return 0;
	}
	if (walk || len - end < FR_MT_LEN)
		return FR_E_TRUNCATED;
	if (len - end > FR_MT_LEN && fr_get64(s + end) == fr_hash64(s, end))
		return FR_E_TRAILING;
	return FR_E_CHECKSUM;
}

/* A bounds-checked cursor over the input. */
struct fr_rd {
	const uint8_t *s;
	size_t len, pos;
};

static const uint8_t *fr_take(struct fr_rd *r, size_t n)
{
	const uint8_t *p;

	if (n > r->len - r->pos)
		return NULL;
	p = r->s + r->pos;
	r->pos += n;
	return p;
}

/* Copy n untrusted bytes into a fresh string; `bad` if one is a NUL. */
static int fr_take_str(struct fr_rd *r, size_t n, char **out, int bad)
{
	const uint8_t *p = fr_take(r, n);
	char *str;

	*out = NULL;
	if (!p)
		return FR_E_TRUNCATED;
	if (memchr(p, 0, n))
		return bad;
	str = malloc(n + 1);
	if (!str)
		return -ENOMEM;
	memcpy(str, p, n);
	str[n] = '\0';
	*out = str;
	return 0;
}

static int fr_decode_entry(struct fr_manifest *m, struct fr_rd *r)
{
	const uint8_t *p = fr_take(r, FR_ME_LEN);
	struct fr_entry *e = &m->entries[m->n_entries];
	uint16_t pl, tl;
	uint8_t type;
	int rc;

	if (!p)
		return FR_E_TRUNCATED;
	memset(e, 0, sizeof(*e));
	type = p[0];
	pl = fr_get16(p + 2);
	tl = fr_get16(p + 4);
	if (p[1] != 0 || fr_get16(p + 6) != 0)
		return FR_E_BAD_RESERVED;
	if (pl == 0 || pl > FR_PATH_MAX)
		return FR_E_BAD_PATH;
	if (type == FR_ENT_LINK) {
		if (tl == 0 || tl > FR_PATH_MAX)
			return FR_E_BAD_LINK;
	} else if (tl != 0) {
		return FR_E_BAD_ENTRY;
	}
	e->type = type;
	e->mode = fr_get32(p + 8);
	e->mtime_nsec = fr_get32(p + 12);
	e->mtime_sec = (int64_t)fr_get64(p + 16);
	e->size = fr_get64(p + 24);
	if (type != FR_ENT_FILE && e->size != 0)
		return FR_E_BAD_ENTRY;

	/* Owned by e from here on, so a failure below is freed by fini. */
	rc = fr_take_str(r, pl, &e->path, FR_E_BAD_PATH);
	if (!rc && tl)
		rc = fr_take_str(r, tl, &e->target, FR_E_BAD_LINK);
	if (rc) {
		free(e->path);
		free(e->target);
		e->path = e->target = NULL;
		return rc;
	}
	rc =
	    fr_entry_check(m, type, e->path, e->mode, e->mtime_nsec, e->target);
	if (rc) {
		free(e->path);
		free(e->target);
		e->path = e->target = NULL;
		return rc;
	}
	m->n_entries++;
	return 0;
}

static int fr_decode_body(struct fr_manifest *m, struct fr_rd *r)
{
	const uint8_t *h = fr_take(r, FR_MH_LEN);
	uint32_t n_ent, n_seg;
	uint64_t total;
	int rc;

	if (!h)
		return FR_E_TRUNCATED;
	if (fr_get16(h + 6) & ~(FR_MF_OPEN | FR_MF_ROOT_TIME))
		return FR_E_BAD_FLAGS;
	m->open = fr_get16(h + 6) & FR_MF_OPEN;
	m->has_root_time = fr_get16(h + 6) & FR_MF_ROOT_TIME;
	m->root_mode = fr_get16(h + 22);
	if (m->root_mode & ~07777u)
		return FR_E_BAD_ENTRY;
	m->seg_size = fr_get32(h + 8);
	if (m->seg_size < FR_SEG_MIN || m->seg_size > FR_SEG_MAX)
		return FR_E_SEG_SIZE;
	n_ent = fr_get32(h + 12);
	n_seg = fr_get32(h + 16);
	total = fr_get64(h + 24);

	rc = fr_take_str(r, fr_get16(h + 20), &m->name, FR_E_BAD_NAME);
	if (rc)
		return rc;
	rc = fr_name_check(m->name);
	if (rc)
		return rc;
	if (m->has_root_time) {
		const uint8_t *t = fr_take(r, FR_MR_LEN);
		if (!t)
			return FR_E_TRUNCATED;
		m->root_mtime_sec = (int64_t)fr_get64(t);
		m->root_mtime_nsec = fr_get32(t + 8);
		if (m->root_mtime_nsec >= FR_NSEC)
			return FR_E_BAD_ENTRY;
	}

	/* Counts are believed only as far as the bytes behind them go. */
	if (n_ent > (r->len - r->pos) / FR_ME_LEN ||
	    n_seg > (r->len - r->pos) / FR_MS_LEN)
		return FR_E_TRUNCATED;
	if (n_ent) {
		m->entries = calloc(n_ent, sizeof(*m->entries));
		if (!m->entries)
			return -ENOMEM;
		m->cap_entries = n_ent;
	}
	for (uint32_t i = 0; i < n_ent; i++) {
		rc = fr_decode_entry(m, r);
		if (rc)
			return rc;
	}

	rc = fr_links_check(m);
	if (rc)
		return rc;
	rc = fr_derive(m);
	if (rc)
		return rc;
	if (total != m->total_size ||
	    n_seg != fr_nseg(m->total_size, m->seg_size))
		return FR_E_BAD_SEGMENT;
	if (n_seg > (r->len - r->pos) / FR_MS_LEN)
		return FR_E_TRUNCATED;
	if (n_seg) {
		m->segments = calloc(n_seg, sizeof(*m->segments));
		if (!m->segments)
			return -ENOMEM;
	}
	m->n_segments = n_seg;
	for (uint32_t i = 0; i < n_seg; i++) {
		const uint8_t *p = fr_take(r, FR_MS_LEN);
		struct fr_segment *s = &m->segments[i];
		uint64_t off = (uint64_t)i * m->seg_size;

		if (!p)
			return FR_E_TRUNCATED;
		s->offset = fr_get64(p);
		s->length = fr_get32(p + 8);
		memcpy(s->hash, p + 16, FR_HASH_LEN);
		if (fr_get32(p + 12) != 0)
			return FR_E_BAD_RESERVED;
		if (s->offset != off ||
		    s->length != fr_seg_len(m->total_size, m->seg_size, off))
			return FR_E_BAD_SEGMENT;
	}
	if (!fr_take(r, FR_MT_LEN))
		return FR_E_TRUNCATED;
	if (r->pos != r->len)
		return FR_E_TRAILING;
	return 0;
}

int fr_manifest_decode(struct fr_manifest *m, const void *src, size_t len)
{
	const uint8_t *s = src;
	struct fr_rd r = {.s = s, .len = len, .pos = 0};
	int rc;

	memset(m, 0, sizeof(*m));
	if (len < FR_MH_LEN)
		return FR_E_TRUNCATED;
	if (fr_get32(s) != FR_MANIFEST_MAGIC)
		return FR_E_BAD_MAGIC;
	if (fr_get16(s + 4) != FR_MANIFEST_VERSION)
		return FR_E_BAD_VERSION;
	if (len > FR_MANIFEST_MAX)
		return FR_E_TOO_LARGE;
	rc = fr_integrity(s, len);
	if (rc)
		return rc;
	rc = fr_decode_body(m, &r);
	if (rc) {
		fr_manifest_fini(m);
		return rc;
	}
	fr_hash128(s, len, m->id);
	/* the listing id: the same bytes, flagged open, hashes zero */
	uint8_t *tmp = malloc(len);
	if (!tmp) {
		fr_manifest_fini(m);
		return -ENOMEM;
	}
	fr_listing_id(m, tmp, len);
	free(tmp);
	return 0;
}

/* ---- extents ----------------------------------------------------------- */

void fr_extent_iter_init(struct fr_extent_iter *it, const struct fr_manifest *m,
			 uint32_t seg)
{
	uint32_t lo = 0, hi = m->n_data;

	it->m = m;
	it->pos = it->end = 0;
	it->k = 0;
	if (seg >= m->n_segments)
		return;
	it->pos = m->segments[seg].offset;
	it->end = it->pos + m->segments[seg].length;
	/*
	 * First data file ending after pos. Data files are non-empty and laid
	 * end to end, so their end offsets rise strictly.
	 */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct fr_entry *e = &m->entries[m->data_idx[mid]];

		if (e->offset + e->size <= it->pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	it->k = lo;
}

int fr_extent_next(struct fr_extent_iter *it, struct fr_extent *out)
{
	const struct fr_manifest *m = it->m;
	const struct fr_entry *e;
	uint64_t fend, stop;

	if (it->pos >= it->end || it->k >= m->n_data)
		return 0;
	e = &m->entries[m->data_idx[it->k]];
	fend = e->offset + e->size;
	stop = fend < it->end ? fend : it->end;
	out->entry = m->data_idx[it->k];
	out->file_off = it->pos - e->offset;
	/* Segments start at multiples of seg_size, so this is pos - start. */
	out->seg_off = (uint32_t)(it->pos % m->seg_size);
	out->len = (uint32_t)(stop - it->pos);
	it->pos = stop;
	if (stop == fend)
		it->k++;
	return 1;
}
