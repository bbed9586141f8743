/*
 * verify.c - a received tree against its manifest, and `ferry verify`.
 *
 * fr_tree_diff walks the manifest and the tree once and collects every
 * difference (missing, extra, type, size, mode, mtime, link, content),
 * with the segments whose bytes are not the package's. `verify --repair`
 * turns that into a repair: the damaged segments are marked missing in
 * the store (fr_store_mark_repair), so that the next send or resume of
 * the package carries them and the receiver writes them in place; what
 * needs no data (modes, times, links, empty files, directories) is put
 * back at once. Verify reads the tree and never follows a symlink in it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/fr_store.h"

static const char *const kind_names[] = {
    [FR_DIFF_MISSING] = "missing", [FR_DIFF_EXTRA] = "extra",
    [FR_DIFF_TYPE] = "type",	   [FR_DIFF_SIZE] = "size",
    [FR_DIFF_MODE] = "mode",	   [FR_DIFF_MTIME] = "mtime",
    [FR_DIFF_LINK] = "link",	   [FR_DIFF_CONTENT] = "content",
};

const char *fr_diff_kind_name(enum fr_diff_kind k)
{
	return (unsigned)k < FR_ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

static struct fr_diff *add(struct fr_tree_diffs *d, enum fr_diff_kind kind,
			   uint32_t entry)
{
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 16;
		struct fr_diff *v = realloc(d->v, cap * sizeof(*v));
		if (!v) {
			d->oom = true;
			return NULL;
		}
		d->v = v;
		d->cap = cap;
	}
	struct fr_diff *x = &d->v[d->n++];
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->entry = entry;
	return x;
}

void fr_tree_diffs_fini(struct fr_tree_diffs *d)
{
	for (uint32_t i = 0; i < d->n; i++)
		free(d->v[i].text);
	free(d->v);
	free(d->bad);
	memset(d, 0, sizeof(*d));
}

static void mark_bad(struct fr_tree_diffs *d, uint32_t s)
{
	if (!d->bad[s]) {
		d->bad[s] = 1;
		d->n_bad++;
	}
}

/* Every segment that holds bytes of file entry e is to be sent again. */
static void mark_file(struct fr_tree_diffs *d, const struct fr_manifest *m,
		      const struct fr_entry *e)
{
	if (e->type != FR_ENT_FILE || !e->size)
		return;
	for (uint64_t s = e->offset / m->seg_size;
	     s < m->n_segments && s * m->seg_size < e->offset + e->size; s++)
		mark_bad(d, (uint32_t)s);
}

static int cmp_entry_path(const void *key, const void *elem)
{
	return strcmp(key, ((const struct fr_entry *)elem)->path);
}

/* Index of the parent of entry i, or UINT32_MAX at the top level. */
static uint32_t parent_of(const struct fr_manifest *m, uint32_t i)
{
	char p[FR_PATH_MAX + 1];
	const struct fr_entry *e;

	snprintf(p, sizeof(p), "%s", m->entries[i].path);
	char *slash = strrchr(p, '/');
	if (!slash)
		return UINT32_MAX;
	*slash = '\0';
	e = bsearch(p, m->entries, i, sizeof(*e), cmp_entry_path);
	return e ? (uint32_t)(e - m->entries) : UINT32_MAX;
}

static const char *type_of(mode_t mode)
{
	return S_ISDIR(mode)   ? "a directory"
	       : S_ISREG(mode) ? "a file"
	       : S_ISLNK(mode) ? "a symlink"
			       : "a special file";
}

/* One entry against what lstat says; gone[i] when nothing under it or
 * of its bytes can be checked. */
static void diff_entry(const char *root, const struct fr_manifest *m,
		       uint32_t i, uint8_t *gone, struct fr_tree_diffs *d)
{
	const struct fr_entry *e = &m->entries[i];
	char path[8192], target[FR_PATH_MAX + 1];
	struct stat st;
	struct fr_diff *x;

	uint32_t up = parent_of(m, i);
	if (up != UINT32_MAX && gone[up]) {
		gone[i] = 1; /* reported with its parent */
		mark_file(d, m, e);
		return;
	}
	if (fr_path_fmt(path, sizeof(path), "%s/%s", root, e->path) ||
	    lstat(path, &st) < 0) {
		gone[i] = 1;
		mark_file(d, m, e);
		add(d, FR_DIFF_MISSING, i);
		return;
	}
	bool type_ok = e->type == FR_ENT_DIR	? S_ISDIR(st.st_mode)
		       : e->type == FR_ENT_FILE ? S_ISREG(st.st_mode)
						: S_ISLNK(st.st_mode);
	if (!type_ok) {
		gone[i] = 1;
		mark_file(d, m, e);
		if ((x = add(d, FR_DIFF_TYPE, i)))
			x->text = strdup(type_of(st.st_mode));
		d->unfixable = true;
		return;
	}
	if (e->type == FR_ENT_FILE && (uint64_t)st.st_size != e->size) {
		gone[i] = 1; /* its segments cannot be read as they were */
		mark_file(d, m, e);
		if ((x = add(d, FR_DIFF_SIZE, i)))
			x->got = (uint64_t)st.st_size;
	}
	if (e->type == FR_ENT_LINK) {
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n < 0 || (target[n] = '\0', strcmp(target, e->target))) {
			if ((x = add(d, FR_DIFF_LINK, i)))
				x->text = strdup(n < 0 ? "?" : target);
		}
	} else if ((st.st_mode & 07777) != e->mode) {
		if ((x = add(d, FR_DIFF_MODE, i)))
			x->got = st.st_mode & 07777;
	}
	if (st.st_mtim.tv_sec != e->mtime_sec ||
	    (uint32_t)st.st_mtim.tv_nsec != e->mtime_nsec) {
		if ((x = add(d, FR_DIFF_MTIME, i))) {
			x->got = (uint64_t)st.st_mtim.tv_sec;
			x->got_nsec = (uint32_t)st.st_mtim.tv_nsec;
		}
	}
}

/* Everything under root/rel that the manifest does not list: an extra
 * directory is one difference, not one per file in it. */
static void find_extra(const char *root, const char *rel,
		       const struct fr_manifest *m, const uint8_t *gone,
		       struct fr_tree_diffs *d)
{
	char dir[8192];
	DIR *dh;
	struct dirent *de;

	if (fr_path_fmt(dir, sizeof(dir), "%s%s%s", root, rel[0] ? "/" : "",
			rel) ||
	    !(dh = opendir(dir)))
		return;
	while ((de = readdir(dh))) {
		char sub[FR_PATH_MAX + 1];
		struct fr_diff *x;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fr_path_fmt(sub, sizeof(sub), "%s%s%s", rel,
				rel[0] ? "/" : "", de->d_name))
			continue;
		const struct fr_entry *e = bsearch(
		    sub, m->entries, m->n_entries, sizeof(*e), cmp_entry_path);
		if (!e) {
			if ((x = add(d, FR_DIFF_EXTRA, UINT32_MAX)))
				x->text = strdup(sub);
		} else if (e->type == FR_ENT_DIR && !gone[e - m->entries]) {
			find_extra(root, sub, m, gone, d);
		}
	}
	closedir(dh);
}

/* The file a damaged segment most likely belongs to: one modified since
 * it was received, else the one with most bytes in it. */
static uint32_t suspect(const char *root, const struct fr_manifest *m,
			uint32_t s, uint32_t *n_files)
{
	struct fr_extent_iter it;
	struct fr_extent x;
	uint32_t best = UINT32_MAX, big = 0, touched = UINT32_MAX;
	char path[8192];
	struct stat st;

	*n_files = 0;
	fr_extent_iter_init(&it, m, s);
	while (fr_extent_next(&it, &x)) {
		const struct fr_entry *e = &m->entries[x.entry];
		(*n_files)++;
		if (x.len > big) {
			big = x.len;
			best = x.entry;
		}
		if (touched == UINT32_MAX &&
		    !fr_path_fmt(path, sizeof(path), "%s/%s", root, e->path) &&
		    lstat(path, &st) == 0 &&
		    (st.st_mtim.tv_sec != e->mtime_sec ||
		     (uint32_t)st.st_mtim.tv_nsec != e->mtime_nsec))
			touched = x.entry;
	}
	return touched != UINT32_MAX ? touched : best;
}

/* Does segment s hold bytes of an entry that cannot be read as it was? */
static bool touches_gone(const struct fr_manifest *m, uint32_t s,
			 const uint8_t *gone)
{
	struct fr_extent_iter it;
	struct fr_extent x;

	fr_extent_iter_init(&it, m, s);
	while (fr_extent_next(&it, &x))
		if (gone[x.entry])
			return true;
	return false;
}

static int diff_content(const char *root, const struct fr_manifest *m,
			const uint8_t *gone, struct fr_tree_diffs *d)
{
	struct fr_seg_reader r;
	int rc = fr_seg_reader_init(&r, m->seg_size);

	if (rc < 0)
		return rc;
	for (uint32_t s = 0; s < m->n_segments; s++) {
		uint8_t h[FR_HASH_LEN];
		char msg[512];
		struct fr_diff *x;
		if (d->bad[s])
			continue;
		if (touches_gone(m, s, gone)) {
			mark_bad(d, s);
			continue;
		}
		int e = fr_seg_read(&r, root, false, m, s, msg, sizeof(msg));
		if (e == 0) {
			fr_hash128(r.buf, m->segments[s].length, h);
			if (!memcmp(h, m->segments[s].hash, FR_HASH_LEN))
				continue;
		}
		mark_bad(d, s);
		if (!(x = add(d, FR_DIFF_CONTENT, 0)))
			continue;
		x->segment = s;
		x->entry = suspect(root, m, s, &x->n_files);
		if (e < 0)
			x->text = strdup(msg);
	}
	fr_seg_reader_fini(&r);
	return 0;
}

int fr_tree_diff(const char *root, const struct fr_manifest *m,
		 struct fr_tree_diffs *d)
{
	struct stat st;
	struct fr_diff *x;
	int rc;

	memset(d, 0, sizeof(*d));
	d->bad = calloc(m->n_segments + 1, 1);
	if (!d->bad)
		return -ENOMEM;
	bool there = lstat(root, &st) == 0;
	if (!there || !S_ISDIR(st.st_mode)) {
		if (!there) {
			d->no_root = true;
			add(d, FR_DIFF_MISSING, FR_DIFF_ROOT);
		} else if ((x = add(d, FR_DIFF_TYPE, FR_DIFF_ROOT))) {
			x->text = strdup(type_of(st.st_mode));
			d->unfixable = true;
		}
		for (uint32_t s = 0; s < m->n_segments; s++)
			mark_bad(d, s);
		return d->oom ? -ENOMEM : 0;
	}
	if ((st.st_mode & 07777) != m->root_mode &&
	    (x = add(d, FR_DIFF_MODE, FR_DIFF_ROOT)))
		x->got = st.st_mode & 07777;
	/* (the package directory's own mtime is applied, not checked:
	 * removing a file a repair left there would change it) */
	uint8_t *gone = calloc(m->n_entries + 1, 1);
	if (!gone)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n_entries; i++)
		diff_entry(root, m, i, gone, d);
	find_extra(root, "", m, gone, d);
	rc = diff_content(root, m, gone, d);
	free(gone);
	if (rc == 0 && d->oom)
		rc = -ENOMEM;
	return rc;
}

static void fmt_time(int64_t sec, uint32_t nsec, char *buf, size_t cap)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char s[32];

	if (!gmtime_r(&t, &tm) ||
	    !strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(s, sizeof(s), "%lld", (long long)sec);
	snprintf(buf, cap, "%s.%09u UTC", s, nsec);
}

/* A path for a human line: control bytes and backslashes escaped (\n,
 * \t, \xNN, \\), so a name cannot forge lines. */

const char *fr_diff_path(const struct fr_manifest *m, const struct fr_diff *x)
{
	if (x->kind == FR_DIFF_EXTRA)
		return x->text ? x->text : "?";
	if (x->entry == FR_DIFF_ROOT)
		return ".";
	return m->entries[x->entry].path;
}

static const char *ent_type(uint8_t t)
{
	return t == FR_ENT_DIR	  ? "a directory"
	       : t == FR_ENT_FILE ? "a file"
				  : "a symlink";
}

void fr_diff_text(const struct fr_manifest *m, const struct fr_diff *x,
		  char *buf, size_t cap)
{
	char p[4 * FR_PATH_MAX + 8], a[64], b[64];
	const struct fr_entry *e =
	    x->entry < m->n_entries ? &m->entries[x->entry] : NULL;

	fr_esc(fr_diff_path(m, x), p, sizeof(p));
	switch (x->kind) {
	case FR_DIFF_MISSING:
		if (x->entry == FR_DIFF_ROOT)
			snprintf(buf, cap, "the package directory is missing");
		else
			snprintf(buf, cap,
				 "'%s' is missing (%s of the package)", p,
				 ent_type(e->type));
		break;
	case FR_DIFF_EXTRA:
		snprintf(buf, cap, "'%s' is not in the package's manifest", p);
		break;
	case FR_DIFF_TYPE:
		snprintf(buf, cap, "'%s' is %s, the package has %s", p,
			 x->text ? x->text : "?",
			 e ? ent_type(e->type) : "a directory");
		break;
	case FR_DIFF_SIZE:
		snprintf(buf, cap, "'%s' has %llu bytes, the package %llu", p,
			 (unsigned long long)x->got,
			 (unsigned long long)e->size);
		break;
	case FR_DIFF_MODE:
		snprintf(buf, cap, "'%s' has mode %04llo, the package %04o", p,
			 (unsigned long long)x->got,
			 e ? e->mode : m->root_mode);
		break;
	case FR_DIFF_MTIME:
		fmt_time((int64_t)x->got, x->got_nsec, a, sizeof(a));
		fmt_time(e ? e->mtime_sec : m->root_mtime_sec,
			 e ? e->mtime_nsec : m->root_mtime_nsec, b, sizeof(b));
		snprintf(buf, cap, "'%s' has mtime %s, the package %s", p, a,
			 b);
		break;
	case FR_DIFF_LINK: {
		char t1[4 * FR_PATH_MAX + 8], t2[4 * FR_PATH_MAX + 8];
		snprintf(
		    buf, cap, "'%s' points to '%s', the package to '%s'", p,
		    fr_esc(x->text ? x->text : "?", t1, sizeof(t1)),
		    fr_esc(e->target, t2, sizeof(t2)));
		break;
	}
	case FR_DIFF_CONTENT: {
		const struct fr_segment *s = &m->segments[x->segment];
		if (x->text)
			snprintf(
			    buf, cap,
			    "'%s': content cannot be read (segment %u): %s", p,
			    x->segment, x->text);
		else if (x->n_files > 1)
			snprintf(
			    buf, cap,
			    "'%s': content differs (segment %u, shared "
			    "with %u other file%s, does not match its hash)",
			    p, x->segment, x->n_files - 1,
			    x->n_files > 2 ? "s" : "");
		else {
			uint64_t from =
			    s->offset > e->offset ? s->offset - e->offset : 0;
			snprintf(buf, cap,
				 "'%s': content differs (segment %u, bytes "
				 "%llu..%llu of the file, does not match its "
				 "hash)",
				 p, x->segment, (unsigned long long)from,
				 (unsigned long long)(from + s->length - 1));
		}
		break;
	}
	}
}

/* The gravest difference: what a one-line error names. */
static const struct fr_diff *gravest(const struct fr_tree_diffs *d)
{
	static const uint8_t rank[] = {
	    [FR_DIFF_MISSING] = 0, [FR_DIFF_TYPE] = 1,	[FR_DIFF_SIZE] = 2,
	    [FR_DIFF_CONTENT] = 3, [FR_DIFF_LINK] = 4,	[FR_DIFF_MODE] = 5,
	    [FR_DIFF_EXTRA] = 6,   [FR_DIFF_MTIME] = 7,
	};
	const struct fr_diff *w = d->n ? &d->v[0] : NULL;

	for (uint32_t i = 1; i < d->n; i++)
		if (rank[d->v[i].kind] < rank[w->kind])
			w = &d->v[i];
	return w;
}

int fr_tree_verify(const char *root, const struct fr_manifest *m, char *errbuf,
		   size_t errcap, uint32_t *bad_segments)
{
	struct fr_tree_diffs d;
	int rc = fr_tree_diff(root, m, &d);

	*bad_segments = d.n_bad;
	if (rc == 0 && d.n) {
		const struct fr_diff *w = gravest(&d);
		fr_diff_text(m, w, errbuf, errcap);
		rc = w->kind == FR_DIFF_MISSING ? FR_E_INCOMPLETE
						: FR_E_HASH_MISMATCH;
	}
	fr_tree_diffs_fini(&d);
	return rc;
}

/* ---- `ferry verify [--repair]` ------------------------------------------ */

/* "got" and "want" of a difference, as strings for JSON. */
static void diff_values(const struct fr_manifest *m, const struct fr_diff *x,
			char *got, char *want, size_t cap)
{
	const struct fr_entry *e =
	    x->entry < m->n_entries ? &m->entries[x->entry] : NULL;

	got[0] = want[0] = '\0';
	switch (x->kind) {
	case FR_DIFF_MODE:
		snprintf(got, cap, "%04llo", (unsigned long long)x->got);
		snprintf(want, cap, "%04o", e ? e->mode : m->root_mode);
		break;
	case FR_DIFF_SIZE:
		snprintf(got, cap, "%llu", (unsigned long long)x->got);
		snprintf(want, cap, "%llu", (unsigned long long)e->size);
		break;
	case FR_DIFF_MTIME:
		snprintf(got, cap, "%lld.%09u", (long long)x->got, x->got_nsec);
		snprintf(want, cap, "%lld.%09u",
			 (long long)(e ? e->mtime_sec : m->root_mtime_sec),
			 e ? e->mtime_nsec : m->root_mtime_nsec);
		break;
	case FR_DIFF_TYPE:
		snprintf(got, cap, "%s",
			 x->text ? strchr(x->text, ' ') + 1 : "?");
		snprintf(want, cap, "%s",
			 strchr(e ? ent_type(e->type) : "a directory", ' ') +
			     1);
		break;
	case FR_DIFF_LINK:
		snprintf(got, cap, "%s", x->text ? x->text : "");
		snprintf(want, cap, "%s", e->target);
		break;
	default:
		break;
	}
}

/* The differences as the result lists them. */
static int collect_diffs(const struct fr_manifest *m,
			 const struct fr_tree_diffs *d,
			 struct fr_verify_result *r)
{
	size_t cap = 6 * FR_PATH_MAX + 64;
	char *t = malloc(cap);
	char got[FR_PATH_MAX + 1], want[FR_PATH_MAX + 1];
	int rc = 0;

	if (!t || (d->n && !(r->diffs = calloc(d->n, sizeof(*r->diffs))))) {
		free(t);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < d->n; i++) {
		const struct fr_diff *x = &d->v[i];
		struct fr_verify_diff *v = &r->diffs[r->n_diffs];
		fr_diff_text(m, x, t, cap);
		diff_values(m, x, got, want, sizeof(got));
		v->kind = fr_diff_kind_name(x->kind);
		v->content = x->kind == FR_DIFF_CONTENT;
		v->segment = x->segment;
		v->files = x->n_files;
		v->path = strdup(fr_diff_path(m, x));
		v->message = strdup(t);
		v->got = strdup(got);
		v->want = strdup(want);
		r->n_diffs++;
		if (!v->path || !v->message || !v->got || !v->want) {
			rc = -ENOMEM;
			break;
		}
	}
	free(t);
	return rc;
}

/* Cut or extend each file whose size differs to the manifest's: its
 * segments are all sent again, and they end at the manifest's size. */
static int fix_sizes(const char *root, const struct fr_manifest *m,
		     const struct fr_tree_diffs *d, char *err, size_t cap)
{
	char path[8192];

	for (uint32_t i = 0; i < d->n; i++) {
		const struct fr_diff *x = &d->v[i];
		if (x->kind != FR_DIFF_SIZE)
			continue;
		const struct fr_entry *e = &m->entries[x->entry];
		int fd = -1;
		if (fr_path_fmt(path, sizeof(path), "%s/%s", root, e->path) ||
		    (fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
		    ftruncate(fd, (off_t)e->size) < 0) {
			int rc = -errno;
			snprintf(err, cap, "cannot set the size of '%s': %s",
				 path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return rc;
		}
		close(fd);
	}
	return 0;
}

static int repair(const struct fr_config *c, const char *root,
		  const struct fr_manifest *m, const struct fr_tree_diffs *d,
		  struct fr_verify_result *r)
{
	char mp[1400];
	int rc;

	r->repair = true;
	for (uint32_t i = 0; i < d->n; i++)
		r->extra_left += d->v[i].kind == FR_DIFF_EXTRA;
	if (!d->n) {
		r->nothing = true;
		return 0;
	}
	if (d->unfixable) {
		r->refused = true;
		return 0;
	}
	if (d->no_root) {
		/* nothing left to repair in place: forget the package, and
		 * the next send of it is received whole, as a new one */
		fr_path_fmt(mp, sizeof(mp), "%s/manifests/%s", c->store,
			    m->name);
		if (unlink(mp) < 0 && errno != ENOENT) {
			rc = -errno;
			snprintf(r->repair_err, sizeof(r->repair_err),
				 "cannot remove '%s': %s", mp, strerror(errno));
			return rc;
		}
		fr_path_fmt(mp, sizeof(mp), "%s/manifests", c->store);
		fr_fsync_dir(mp);
		r->forgotten = true;
		return 0;
	}
	if ((rc = fix_sizes(root, m, d, r->repair_err,
			    sizeof(r->repair_err))) < 0)
		return rc;
	if (d->n_bad) {
		rc = fr_store_mark_repair(c->store, m, d->bad, r->repair_err,
					  sizeof(r->repair_err));
		if (rc < 0)
			return rc;
		r->marked = d->n_bad;
		for (uint32_t s = 0; s < m->n_segments; s++)
			if (d->bad[s])
				r->marked_bytes += m->segments[s].length;
		return 0;
	}
	if (d->n > r->extra_left) {
		rc = fr_tree_restore(root, m, r->repair_err,
				     sizeof(r->repair_err));
		if (rc < 0)
			return rc;
		r->restored = true;
	}
	return 0;
}

/* The tree at root against m, and (want_repair) put right: the result
 * filled, 0 or the repair's code. */
static int verify_tree(const struct fr_config *c, const char *name,
		       const char *root, const struct fr_manifest *m,
		       bool want_repair, struct fr_verify_result *r)
{
	struct fr_tree_diffs d = {0};
	char first[8192];
	int rc;

	double t0 = fr_now_s();
	rc = fr_tree_diff(root, m, &d);
	r->seconds = fr_now_s() - t0;
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "cannot verify '%s': %s", root,
		       fr_strerror(rc));
		goto out;
	}
	if (want_repair && (rc = repair(c, root, m, &d, r)) < 0)
		fr_log(FR_LOG_ERROR, "%s: repair failed: %s", name,
		       r->repair_err);
	r->repair_rc = rc;
	r->checked = true;
	r->bad_segments = d.n_bad;
	if (d.n) {
		fr_diff_text(m, gravest(&d), first, sizeof(first));
		r->gravest = strdup(first);
	}
	int crc = collect_diffs(m, &d, r);
	bool intact = !d.n;
	if (rc == 0 && r->restored && !r->extra_left) {
		/* everything was put back here: check it */
		struct fr_tree_diffs again;
		intact = fr_tree_diff(root, m, &again) == 0 && !again.n;
		fr_tree_diffs_fini(&again);
	}
	r->intact_after = d.n && intact;
	if (rc == 0 && crc < 0)
		rc = crc;
	if (rc == 0 && !intact)
		rc = d.no_root && !r->repair ? FR_E_INCOMPLETE
					   : FR_E_HASH_MISMATCH;
out:
	fr_tree_diffs_fini(&d);
	return rc;
}

/* A newer version of name whose completion was cut (a crash between
 * putting it in place and recording its manifest): the package in place
 * and its record may not match, and a repair would cut the one to the
 * other. The partial's id in id when so. */
static bool completion_cut(const char *store, const char *name, char *id,
			   size_t cap)
{
	char dir[1100], mark[1400];
	bool cut = false;
	struct dirent *de;

	fr_path_fmt(dir, sizeof(dir), "%s/partial", store);
	DIR *d = opendir(dir);
	while (d && !cut && (de = readdir(d))) {
		uint8_t *text;
		size_t len;
		if (de->d_name[0] == '.' ||
		    fr_path_fmt(mark, sizeof(mark), "%s/%s/finalizing", dir,
				de->d_name) ||
		    fr_read_file(mark, 4096, &text, &len) < 0)
			continue;
		cut = len == strlen(name) && !memcmp(text, name, len);
		if (cut)
			snprintf(id, cap, "%s", de->d_name);
		free(text);
	}
	if (d)
		closedir(d);
	return cut;
}

int fr_verify(const struct fr_config *c, const char *name, bool repair,
	      struct fr_verify_result *r)
{
	char mp[1400], root[1400];
	struct fr_manifest m = {0};
	int rc;

	memset(r, 0, sizeof(*r));
	if (fr_name_check(name) < 0) {
		fr_log(FR_LOG_ERROR, "'%s' is not a valid package name", name);
		return FR_E_BAD_NAME;
	}
	if (fr_path_fmt(mp, sizeof(mp), "%s/manifests/%s", c->store, name) ||
	    fr_path_fmt(root, sizeof(root), "%s/packages/%s", c->store, name))
		return -ENAMETOOLONG;
	char id[300];
	if (completion_cut(c->store, name, id, sizeof(id))) {
		char en[FR_ESC_MAX];
		fr_log(FR_LOG_ERROR,
		       "the completion of a new version of '%s' was cut short "
		       "(partial/%.12s): the package in place and its record "
		       "may not match until its sender's next session finishes "
		       "it ('ferry resume' at the sender); nothing verified%s",
		       fr_esc(name, en, sizeof(en)), id,
		       repair ? " or repaired" : "");
		return -EAGAIN; /* exit 1: try again once it is done */
	}
	rc = fr_manifest_load(mp, &m);
	if (rc < 0) {
		fr_log(FR_LOG_ERROR,
		       "no complete package '%s' in store '%s' (manifest '%s': "
		       "%s)",
		       name, c->store, mp, fr_strerror(rc));
		return rc;
	}
	r->entries = m.n_entries;
	r->segments = m.n_segments;
	r->bytes = m.total_size;
	rc = verify_tree(c, name, root, &m, repair, r);
	fr_manifest_fini(&m);
	return rc;
}

void fr_verify_result_fini(struct fr_verify_result *r)
{
	for (uint32_t i = 0; i < r->n_diffs; i++) {
		free(r->diffs[i].path);
		free(r->diffs[i].message);
		free(r->diffs[i].got);
		free(r->diffs[i].want);
	}
	free(r->diffs);
	free(r->gravest);
	r->diffs = NULL;
	r->gravest = NULL;
	r->n_diffs = 0;
}
