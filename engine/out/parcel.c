/*
 * parcel.c - the courier output: parcels of segment frames on physical
 * media, created at the source and imported at the destination.
 *
 *   create: scan -> register over the network (learn what the site holds)
 *           -> read each missing segment (ring reader) -> worker: XXH3
 *           check + zstd at the level the medium can absorb, then the
 *           frame sealed in place (pseal.c) -> append it to the current
 *           volume; a volume ends at
 *           --volume-size or when its medium is full, and the next goes
 *           on the same or the next medium.
 *   import: read volumes front to back -> worker: check each frame's
 *           tag and open it in place (the parcel's key, from the
 *           account's), decompress + XXH3 against the manifest, then
 *           write in place -> the syncer (syncer.c):
 *           syncfs + journal in batches while the next are written ->
 *           finalize once every segment is held, by parcel or network.
 *
 * The source keeps <store>/parcels/<id>/ (state, manifest); the
 * destination keeps <store>/incoming/<parcel id> (volumes seen). The
 * registration and the receipt travel over the site's network address:
 * `parcel create` registers (and withdraws the registration when it gives
 * up on the parcel), `parcel list` catches up what could not be
 * registered and asks for receipts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fr_internal.h"

#define PSLOTS 4
/* import: segments written but not yet durable, at most (the syncer
 * makes them durable in batches meanwhile) */
#define SYNC_WINDOW 16
#define SPACE_SLACK (256u << 10) /* left free on a medium: metadata */
#define TRAILER_REC (FR_REC_HDR + FR_TRAILER_LEN + FR_SEAL_LEN)
#define IN_VOLS 1024 /* volumes of a parcel the destination keeps track of */

enum { P_UNKNOWN, P_EXPECTED, P_IMPORTING, P_RECEIVED, P_SUPERSEDED };
static const char *const in_states[] = {"unknown", "expected", "importing",
					"received", "not-needed"};

/* ---- sealed records ------------------------------------------------------ */

/* A record's bytes on the medium: header, nonce, body, tag. */
static uint64_t rec_size(uint64_t body)
{
	return FR_REC_HDR + body + FR_SEAL_LEN;
}

/* ---- small helpers ---------------------------------------------------- */

static void id_hex(const uint8_t id[FR_HASH_LEN], char out[33])
{
	fr_hex(id, FR_HASH_LEN, out);
}

static void ranges(const uint32_t *v, uint32_t n, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < n && o + 32 < cap;) {
		uint32_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (j == i)
			o += (size_t)snprintf(out + o, cap - o, "%s%u",
					      o ? "," : "", v[i]);
		else
			o += (size_t)snprintf(out + o, cap - o, "%s%u-%u",
					      o ? "," : "", v[i], v[j]);
		i = j + 1;
	}
	if (o + 32 >= cap)
		snprintf(out + o, cap - o, ",...");
}

/* Which bits of a bitmap are set, as ranges. */
static void bitmap_ranges(const uint8_t *bm, uint32_t n, const uint8_t *skip,
			  char *out, size_t cap, uint32_t *count)
{
	uint32_t *v = malloc((n + 1) * sizeof(*v)), k = 0;

	if (!v) {
		snprintf(out, cap, "?");
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		if (((bm[i / 8] >> (i % 8)) & 1) && !(skip && skip[i]))
			v[k++] = i;
	ranges(v, k, out, cap);
	if (count)
		*count = k;
	free(v);
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return FR_E_TRUNCATED;
		got += (size_t)n;
	}
	return 0;
}

/* ---- the source's record of a parcel ------------------------------------ */

struct parcel {
	char dir[1400];
	char id[33];             /* hex of the 16-byte parcel id */
	char name[FR_NAME_MAX + 1];
	char pkg[33];
	char site[FR_CODE_MAX + 1];
	char address[64];
	char state[16];          /* created, shipped, received, not-needed */
	int registered;
	uint32_t volumes, segments, n_segments, left_out;
	uint64_t bytes, raw;
	int64_t created, shipped, received;
	char media[1024];
};

static int parcels_dir(const struct fr_config *c, char *out, size_t cap)
{
	return fr_path_fmt(out, cap, "%s/parcels", c->store);
}

static int parcel_save(const struct parcel *p)
{
	char path[1500], buf[4096];
	int n = snprintf(buf, sizeof(buf),
			 "id=%s\nname=%s\npackage=%s\nsite=%s\naddress=%s\n"
			 "state=%s\nregistered=%d\nvolumes=%u\nsegments=%u\n"
			 "n_segments=%u\nleft_out=%u\nbytes=%llu\nraw=%llu\n"
			 "created=%lld\nshipped=%lld\nreceived=%lld\nmedia=%s\n",
			 p->id, p->name, p->pkg, p->site, p->address, p->state,
			 p->registered, p->volumes, p->segments, p->n_segments,
			 p->left_out, (unsigned long long)p->bytes,
			 (unsigned long long)p->raw, (long long)p->created,
			 (long long)p->shipped, (long long)p->received, p->media);

	if (fr_path_fmt(path, sizeof(path), "%s/parcel", p->dir))
		return -ENAMETOOLONG;
	return fr_write_file_atomic(path, buf, (size_t)n);
}

static int parcel_load(const char *dir, struct parcel *p)
{
	char path[1300];
	uint8_t *text;
	size_t len;
	int rc;

	memset(p, 0, sizeof(*p));
	if (fr_path_fmt(path, sizeof(path), "%s/parcel", dir))
		return -ENAMETOOLONG;
	if ((rc = fr_read_file(path, 1 << 16, &text, &len)) < 0)
		return rc;
	const char *t = (const char *)text;
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	fr_kv_get(t, "id", p->id, sizeof(p->id));
	fr_kv_get(t, "name", p->name, sizeof(p->name));
	fr_kv_get(t, "package", p->pkg, sizeof(p->pkg));
	fr_kv_get(t, "site", p->site, sizeof(p->site));
	fr_kv_get(t, "address", p->address, sizeof(p->address));
	fr_kv_get(t, "state", p->state, sizeof(p->state));
	fr_kv_get(t, "media", p->media, sizeof(p->media));
	p->registered = (int)fr_kv_num(t, "registered");
	p->volumes = (uint32_t)fr_kv_num(t, "volumes");
	p->segments = (uint32_t)fr_kv_num(t, "segments");
	p->n_segments = (uint32_t)fr_kv_num(t, "n_segments");
	p->left_out = (uint32_t)fr_kv_num(t, "left_out");
	p->bytes = (uint64_t)fr_kv_num(t, "bytes");
	p->raw = (uint64_t)fr_kv_num(t, "raw");
	p->created = fr_kv_num(t, "created");
	p->shipped = fr_kv_num(t, "shipped");
	p->received = fr_kv_num(t, "received");
	free(text);
	return p->id[0] ? 0 : FR_E_CONFIG;
}

/* ---- talking to the destination ---------------------------------------- */

/* The network address a courier relies on: the site's first non-courier
 * address, in priority order. */
static const struct fr_address *net_address(const struct fr_config *c,
					    const char *site)
{
	const struct fr_address *all[64];
	unsigned n = fr_config_addresses(c, site, all, 64);

	for (unsigned i = 0; i < n; i++)
		if (all[i]->type != FR_ADDR_COURIER)
			return all[i];
	return NULL;
}

static int connect_site(const struct fr_address *a, struct fr_chan *ch,
			char *err, size_t cap)
{
	int fd = fr_tcp_connect(a->host, 5000);

	if (fd < 0) {
		snprintf(err, cap, "cannot connect to %s (%s %s): %s", a->host,
			 a->site, a->name, fr_strerror(fd));
		return fd;
	}
	fr_chan_plain(ch, fd);
	int rc = fr_handshake_client(ch, a->account, a->key, err, cap);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* One request over the site's network address, and its answer
 * (malloc'd, at most max bytes). 0, or a code with err set. */
static int ask_site(const struct fr_config *c, const char *site,
		    uint32_t type, const uint8_t *body, uint32_t blen,
		    uint32_t max, uint32_t *atype, uint8_t **ans,
		    uint32_t *alen, char *err, size_t cap)
{
	const struct fr_address *a = net_address(c, site);
	struct fr_chan ch;
	int fd, rc;

	if (!a) {
		snprintf(err, cap, "site %s has no network address", site);
		return FR_E_CONFIG;
	}
	if ((fd = connect_site(a, &ch, err, cap)) < 0)
		return fd;
	rc = fr_msg_send(&ch, type, body, blen);
	if (rc == 0)
		rc = fr_msg_recv(&ch, atype, ans, alen, max, err, cap);
	fr_chan_wipe(&ch);
	close(fd);
	if (rc < 0 && !err[0])
		snprintf(err, cap, "%s", fr_strerror(rc));
	return rc;
}

/*
 * Register a parcel: the destination prepares the package and answers
 * with the segments it holds (have[], when not NULL). Returns FR_HAVE_*
 * or a negative code with err set.
 */
static int register_parcel(const struct fr_config *c, const char *site,
			   const uint8_t id[FR_HASH_LEN], const uint8_t *mf,
			   size_t mf_len, uint32_t n_segments, uint8_t *have,
			   char *err, size_t cap)
{
	uint8_t *body = malloc(FR_HASH_LEN + mf_len), *ans = NULL;
	uint32_t type, len;
	int rc;

	if (!body)
		return -ENOMEM;
	memcpy(body, id, FR_HASH_LEN);
	memcpy(body + FR_HASH_LEN, mf, mf_len);
	rc = ask_site(c, site, FR_MSG_PARCEL, body,
		      (uint32_t)(FR_HASH_LEN + mf_len), FR_HAVE_LEN(n_segments),
		      &type, &ans, &len, err, cap);
	free(body);
	if (rc < 0)
		return rc;
	rc = fr_have_parse(type, ans, len, n_segments, have, NULL, NULL);
	free(ans);
	if (rc < 0)
		snprintf(err, cap, "%s answered with a malformed HAVE", site);
	return rc;
}

/* Ask a site about parcels: states[i] = P_* for ids[i]. */
static int query_parcels(const struct fr_config *c, const char *site,
			 uint8_t (*ids)[FR_HASH_LEN], uint32_t n,
			 uint32_t *states, char *err, size_t cap)
{
	uint8_t *body = malloc(4 + (size_t)n * FR_HASH_LEN), *ans = NULL;
	uint32_t type, len;
	int rc;

	if (!body)
		return -ENOMEM;
	fr_put32(body, n);
	memcpy(body + 4, ids, (size_t)n * FR_HASH_LEN);
	rc = ask_site(c, site, FR_MSG_PARCEL_QUERY, body, 4 + n * FR_HASH_LEN,
		      4 + n * 20, &type, &ans, &len, err, cap);
	free(body);
	if (rc < 0)
		return rc;
	if (type != FR_MSG_PARCEL_STATE || len != 4 + n * 20 ||
	    fr_get32(ans) != n) {
		free(ans);
		snprintf(err, cap, "%s answered with a malformed PARCEL_STATE",
			 site);
		return FR_E_PROTOCOL;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *r = ans + 4 + i * 20;
		states[i] = memcmp(r, ids[i], FR_HASH_LEN) ? P_UNKNOWN
							   : fr_get32(r + 16);
		if (states[i] > P_SUPERSEDED)
			states[i] = P_UNKNOWN;
	}
	free(ans);
	return 0;
}

/* ---- the destination's record of a parcel ------------------------------- */

struct incoming {
	char path[1300];
	char id[33], name[FR_NAME_MAX + 1], pkg[33], from[FR_CODE_MAX + 1];
	char partial[33];            /* its partial package: the listing id */
	int state;
	uint32_t total;              /* volumes, once the last one was seen */
	uint32_t n_vol;              /* highest volume number seen */
	uint8_t seen[IN_VOLS];       /* volumes tracked: 1..IN_VOLS-1 */
	uint32_t first[IN_VOLS], last[IN_VOLS], frames[IN_VOLS];
};

/* Where its partial package is: by listing id (an older record: by
 * package id, as partial packages were named then). */
static const char *partial_of(const struct incoming *in)
{
	return in->partial[0] ? in->partial : in->pkg;
}

static int incoming_path(const struct fr_config *c, const char *id,
			 char *out, size_t cap)
{
	return fr_path_fmt(out, cap, "%s/incoming/%s", c->store, id);
}

static void incoming_load(const struct fr_config *c, const char *id,
			  struct incoming *in)
{
	uint8_t *text;
	size_t len;
	char v[64];

	memset(in, 0, sizeof(*in));
	snprintf(in->id, sizeof(in->id), "%s", id);
	incoming_path(c, id, in->path, sizeof(in->path));
	if (fr_read_file(in->path, 1 << 20, &text, &len) < 0)
		return;
	const char *t = (const char *)text;
	fr_kv_get(t, "name", in->name, sizeof(in->name));
	fr_kv_get(t, "package", in->pkg, sizeof(in->pkg));
	fr_kv_get(t, "partial", in->partial, sizeof(in->partial));
	fr_kv_get(t, "from", in->from, sizeof(in->from));
	fr_kv_get(t, "state", v, sizeof(v));
	for (int i = 0; i < (int)FR_ARRAY_SIZE(in_states); i++)
		if (!strcmp(v, in_states[i]))
			in->state = i;
	in->total = (uint32_t)fr_kv_num(t, "total");
	for (uint32_t k = 1; k < FR_ARRAY_SIZE(in->seen); k++) {
		char key[32];
		snprintf(key, sizeof(key), "vol.%u", k);
		if (fr_kv_get(t, key, v, sizeof(v)) == 0) {
			unsigned a = 0, b = 0, f = 0;
			if (sscanf(v, "%u %u %u", &f, &a, &b) == 3) {
				in->seen[k] = 1;
				in->frames[k] = f;
				in->first[k] = a;
				in->last[k] = b;
				if (k > in->n_vol)
					in->n_vol = k;
			}
		}
	}
	free(text);
}

static int incoming_save(const struct incoming *in)
{
	size_t cap = 4096 + (size_t)in->n_vol * 48, o;
	char *buf = malloc(cap);
	int rc;

	if (!buf)
		return -ENOMEM;
	o = (size_t)snprintf(buf, cap,
			     "id=%s\nname=%s\npackage=%s\npartial=%s\nfrom=%s\n"
			     "state=%s\ntotal=%u\n",
			     in->id, in->name, in->pkg, in->partial, in->from,
			     in_states[in->state], in->total);
	for (uint32_t k = 1; k <= in->n_vol && o < cap; k++)
		if (in->seen[k])
			o += (size_t)snprintf(buf + o, cap - o,
					      "vol.%u=%u %u %u\n", k,
					      in->frames[k], in->first[k],
					      in->last[k]);
	char dir[1300];
	snprintf(dir, sizeof(dir), "%s", in->path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	rc = fr_mkdirs(dir);
	if (rc == 0)
		rc = fr_write_file_atomic(in->path, buf, o < cap ? o : cap);
	free(buf);
	return rc;
}

/* Is package pkg (hex id) complete in the store under name? */
static bool package_complete(const struct fr_config *c, const char *name,
			     const char *pkg)
{
	char path[1400];
	uint8_t *mf;
	size_t len;
	struct fr_manifest m = {0};
	bool same = false;

	if (!name[0] ||
	    fr_path_fmt(path, sizeof(path), "%s/manifests/%s", c->store, name) ||
	    fr_read_file(path, FR_MANIFEST_MAX, &mf, &len) < 0)
		return false;
	if (fr_manifest_decode(&m, mf, len) == 0) {
		char hex[33];
		id_hex(m.id, hex);
		same = !strcmp(hex, pkg);
	}
	fr_manifest_fini(&m);
	free(mf);
	return same;
}

/* ---- the receiver's side of registration and receipts (serve.c) --------- */

int fr_parcel_serve_register(const struct fr_config *c, struct fr_chan *ch,
			     const char *who, const uint8_t *body,
			     uint32_t len)
{
	struct fr_store_pkg pkg;
	struct incoming in;
	char err[512], id[33], pkgid[33];
	int r;

	if (len <= FR_HASH_LEN) {
		fr_send_error(ch, FR_E_PROTOCOL, "PARCEL without a manifest");
		return FR_E_PROTOCOL;
	}
	id_hex(body, id);
	r = fr_store_open(c->store, body + FR_HASH_LEN, len - FR_HASH_LEN, who,
			  &pkg, err, sizeof(err));
	if (r < 0) {
		fr_log(FR_LOG_ERROR, "%s: parcel %.12s: %s", who, id, err);
		fr_send_error(ch, r, err);
		return r;
	}
	incoming_load(c, id, &in);
	id_hex(pkg.m.id, pkgid);
	snprintf(in.name, sizeof(in.name), "%s", pkg.m.name);
	snprintf(in.pkg, sizeof(in.pkg), "%s", pkgid);
	id_hex(pkg.m.lid, in.partial);
	snprintf(in.from, sizeof(in.from), "%s", who);
	if (in.state == P_UNKNOWN)
		in.state = r == FR_HAVE_COMPLETE ? P_SUPERSEDED : P_EXPECTED;
	incoming_save(&in);
	fr_log(FR_LOG_INFO,
	       "%s: parcel %.12s of '%s' registered; %u of %u segments "
	       "already held",
	       who, id, pkg.m.name,
	       r == FR_HAVE_COMPLETE ? pkg.m.n_segments : pkg.j.n_have,
	       pkg.m.n_segments);
	fr_send_have(ch, r, pkg.j.have, pkg.m.n_segments, NULL, 0);
	fr_store_close(&pkg);
	return 0;
}

int fr_parcel_serve_query(const struct fr_config *c, struct fr_chan *ch,
			  const char *who, const uint8_t *body, uint32_t len)
{
	uint32_t n = len >= 4 ? fr_get32(body) : 0;

	if (len < 4 || n > 65536 || len != 4 + n * FR_HASH_LEN) {
		fr_send_error(ch, FR_E_PROTOCOL, "malformed PARCEL_QUERY");
		return FR_E_PROTOCOL;
	}
	uint8_t *ans = malloc(4 + (size_t)n * 20);
	if (!ans)
		return -ENOMEM;
	fr_put32(ans, n);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *pid = body + 4 + i * FR_HASH_LEN;
		struct incoming in;
		char id[33];
		id_hex(pid, id);
		incoming_load(c, id, &in);
		uint32_t st = (uint32_t)in.state;
		/* only the site that registered it may learn about it */
		if (strcmp(in.from, who))
			st = P_UNKNOWN;
		else if (st != P_RECEIVED && package_complete(c, in.name, in.pkg))
			st = P_SUPERSEDED;
		memcpy(ans + 4 + i * 20, pid, FR_HASH_LEN);
		fr_put32(ans + 4 + i * 20 + 16, st);
	}
	int rc = fr_msg_send(ch, FR_MSG_PARCEL_STATE, ans, 4 + n * 20);
	free(ans);
	return rc;
}

/* Does a parcel other than id, expected or importing, carry package pkg? */
static bool other_parcel_for(const struct fr_config *c, const char *id,
			     const char *pkg)
{
	char dir[1300];
	struct dirent *de;
	bool found = false;
	DIR *d;

	if (fr_path_fmt(dir, sizeof(dir), "%s/incoming", c->store) ||
	    !(d = opendir(dir)))
		return false;
	while (!found && (de = readdir(d))) {
		struct incoming in;
		if (de->d_name[0] == '.' || !strcmp(de->d_name, id) ||
		    strlen(de->d_name) != 32)
			continue;
		incoming_load(c, de->d_name, &in);
		found = !strcmp(in.pkg, pkg) &&
			(in.state == P_EXPECTED || in.state == P_IMPORTING);
	}
	closedir(d);
	return found;
}

/*
 * The source gave up on a parcel it registered (the source changed under
 * it, its media failed): the registration goes, and so does the partial
 * package it made, unless that holds a segment, a session holds it, or
 * another parcel is expected for it. A parcel whose volumes already came
 * stays. The answer is a PARCEL_STATE for the id: unknown once withdrawn.
 */
int fr_parcel_serve_withdraw(const struct fr_config *c, struct fr_chan *ch,
			     const char *who, const uint8_t *body,
			     uint32_t len)
{
	struct incoming in;
	char id[33];
	uint8_t ans[4 + 20];
	uint32_t st = P_UNKNOWN;

	if (len != FR_HASH_LEN) {
		fr_send_error(ch, FR_E_PROTOCOL, "malformed PARCEL_WITHDRAW");
		return FR_E_PROTOCOL;
	}
	id_hex(body, id);
	incoming_load(c, id, &in);
	if (!in.name[0] || strcmp(in.from, who)) {
		/* never registered by this account: nothing to withdraw */
	} else if (in.state == P_IMPORTING || in.state == P_RECEIVED) {
		st = (uint32_t)in.state;
		fr_log(FR_LOG_WARN,
		       "%s: parcel %.12s of '%s' withdrawn, but volumes of it "
		       "were imported already; it stays",
		       who, id, in.name);
	} else {
		unlink(in.path);
		int r = other_parcel_for(c, id, in.pkg)
				? -EEXIST
				: fr_store_drop(c->store, partial_of(&in), true);
		fr_log(FR_LOG_INFO, "%s: parcel %.12s of '%s' withdrawn%s", who,
		       id, in.name,
		       r == 0         ? "; its empty partial package removed"
		       : r == -ENOENT ? ""
				      : "; its partial package stays (it holds "
					"segments, is being received or is "
					"expected by another parcel)");
	}
	fr_put32(ans, 1);
	memcpy(ans + 4, body, FR_HASH_LEN);
	fr_put32(ans + 4 + FR_HASH_LEN, st);
	return fr_msg_send(ch, FR_MSG_PARCEL_STATE, ans, sizeof(ans));
}

/* Tell the site that a parcel it was told to expect will not come. */
static void withdraw_parcel(const struct fr_config *c, const char *site,
			    const uint8_t id[FR_HASH_LEN])
{
	uint8_t *ans = NULL;
	uint32_t type, len;
	char err[600] = "";
	int rc = ask_site(c, site, FR_MSG_PARCEL_WITHDRAW, id, FR_HASH_LEN,
			  4 + 20, &type, &ans, &len, err, sizeof(err));

	if (rc == 0 && (type != FR_MSG_PARCEL_STATE || len != 4 + 20)) {
		rc = FR_E_PROTOCOL;
		snprintf(err, sizeof(err), "malformed answer");
	}
	if (rc < 0)
		fr_log(FR_LOG_WARN,
		       "cannot withdraw the parcel's registration from %s (%s): "
		       "'ferry prune' there removes the partial package it made",
		       site, err);
	else if (fr_get32(ans + 20) != P_UNKNOWN)
		fr_log(FR_LOG_WARN,
		       "%s keeps the parcel registered: volumes of it were "
		       "imported there already",
		       site);
	else
		fr_log(FR_LOG_INFO, "the parcel's registration with %s is "
		       "withdrawn", site);
	free(ans);
}

/* ---- creating a parcel: the volume writer -------------------------------- */

/*
 * What a volume needs and the volumes' first frames do not: the segment
 * hashes, so the manifest and the package id, and the registration, so
 * which segments the destination holds. A thread waits for the hashing
 * pass and registers the parcel while the frames are already written;
 * prep_settle takes its result on the main thread.
 */
struct prep {
	pthread_t t;
	bool running;                /* started, not joined */
	bool settled;
	int settle_rc;
	atomic_bool done;
	atomic_bool stop;            /* tells the hashing to give up */
	struct fr_scan_hash *h;
	const struct fr_config *c;
	const char *site, *src;
	struct fr_manifest *m;
	struct parcel *p;
	uint8_t *mf;
	size_t mf_len;
	uint8_t parcel[FR_HASH_LEN];
	uint8_t *have;               /* per segment: the destination holds it */
	uint8_t *wrote;              /* per segment: 1 written; 2 written before
				      * its hash was known, that hash in whash */
	uint8_t (*whash)[FR_HASH_LEN];
	uint8_t *seglist;            /* the segments the parcel carries */
	uint32_t seglist_len;
	int hash_rc, reg_rc;
	bool registered;             /* the destination took the registration */
	bool complete;               /* the destination holds the package */
	double t0;                   /* when creation started */
	char err[600];
};

struct volinfo {
	char path[1300];
	uint32_t frames;
	uint64_t bytes;
	uint32_t *segs;
	uint32_t n_segs, cap_segs;
};

#define WB_CHUNK (32u << 20)
#define WB_KICK (4u << 20)
#define WB_LAG 2 /* chunks the medium is given before the oldest is waited for */
#define WB_PAGE 4096

struct vwriter {
	const char *const *media;
	unsigned n_media, mi;
	uint64_t limit;              /* --volume-size, 0: fill the medium */
	uint8_t key[32];             /* the parcel's (fr_pseal_key) */
	struct fr_vol_hdr h;
	uint8_t vh[FR_VOL_HDR];      /* the open volume's */
	uint8_t ph[FR_VOL_HDR];      /* a volume's, for the associated data
				      * of frames (its volume number is not
				      * part of it): never written after
				      * vw_setup, read by the workers */
	crypto_generichash_state chain; /* the open volume's, for its trailer */
	struct prep *prep;           /* waited for before the manifest and
				      * segment list close a volume */
	const uint8_t *mf;
	size_t mf_len;
	const uint8_t *seglist;
	uint32_t seglist_len;
	int fd;
	uint64_t bytes;              /* of the open volume */
	uint64_t started, waited;    /* write-behind: writeback started up to
				      * here; waited for (and dropped) to here */
	uint64_t kicked;             /* first chunk: writeback started to here */
	uint64_t q_end[WB_LAG + 1];  /* chunks given to the medium, not waited */
	double q_issued[WB_LAG + 1]; /* for yet: where each ends, when given */
	unsigned q_n;
	uint64_t total_bytes;
	struct volinfo *vols;
	uint32_t n_vols;
	/* the medium's rate, from the write-behind's waits: bytes and
	 * seconds from a chunk's start (given to the medium, and the one
	 * before done) to its end. Those are the medium's own only if some
	 * wait found it busy; else it kept up with us, a lower bound. */
	double busy_s;
	uint64_t busy_bytes;
	bool blocked;
	double done_t;               /* when the last wait returned */
	char err[1600];
};

static uint64_t medium_free(int fd)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/*
 * Write-behind: once WB_CHUNK more bytes are written, start their
 * writeback and wait for the chunk WB_LAG before. The medium then never
 * holds more than WB_LAG + 1 chunks of dirty data: the time spent writing
 * is the medium's own (which the level choice needs, not the page
 * cache's), a slow USB disk or tape does not make the final sync a long
 * silence, and the parcel does not push the package's pages out of the
 * cache. Two chunks queued (not one) keep the medium busy through the
 * pipeline's own hiccups.
 */

static int vw_write_behind(struct vwriter *w)
{
	/* Until a volume's first chunk is full the medium would sit idle
	 * (the kernel starts writeback on its own only much later): it is
	 * given each WB_KICK bytes as they come. */
	/* Chunks end on a page: a page shared by two chunks would be
	 * written again with the second, and waiting for the first would
	 * then wait for the second too, leaving the medium idle after. */
	uint64_t upto = w->bytes & ~(uint64_t)(WB_PAGE - 1);
	if (w->started == 0 && upto - w->kicked >= WB_KICK) {
		if (sync_file_range(w->fd, (off_t)w->kicked,
				    (off_t)(upto - w->kicked),
				    SYNC_FILE_RANGE_WRITE) < 0)
			return -errno;
		w->kicked = upto;
	}
	if (upto - w->started < WB_CHUNK)
		return 0;
	if (sync_file_range(w->fd, (off_t)w->started,
			    (off_t)(upto - w->started),
			    SYNC_FILE_RANGE_WRITE) < 0)
		return -errno;
	w->q_end[w->q_n] = upto;
	w->q_issued[w->q_n++] = fr_now_s();
	w->started = upto;
	if (w->q_n > WB_LAG) {
		uint64_t end = w->q_end[0], len = end - w->waited;
		double issued_t = w->q_issued[0];
		memmove(w->q_end, w->q_end + 1, --w->q_n * sizeof(*w->q_end));
		memmove(w->q_issued, w->q_issued + 1,
			w->q_n * sizeof(*w->q_issued));
		double t0 = fr_now_s();
		if (sync_file_range(w->fd, (off_t)w->waited, (off_t)len,
				    SYNC_FILE_RANGE_WAIT_BEFORE |
					    SYNC_FILE_RANGE_WRITE |
					    SYNC_FILE_RANGE_WAIT_AFTER) < 0)
			return -errno;
		double t1 = fr_now_s();
		/* The medium took this chunk once it was given it and had
		 * finished the one before. A medium may work on two chunks
		 * at once, so one wait is long and the next none: only the
		 * sums over several chunks tell its rate. */
		double from = issued_t > w->done_t ? issued_t : w->done_t;
		if (t1 > from) {
			w->busy_bytes += len;
			w->busy_s += t1 - from;
			if (t1 - t0 > 0.002)
				w->blocked = true;
		}
		w->done_t = t1;
		posix_fadvise(w->fd, (off_t)w->waited, (off_t)len,
			      POSIX_FADV_DONTNEED);
		w->waited = end;
	}
	return 0;
}

static int vw_write(struct vwriter *w, const void *buf, size_t len)
{
	int rc = fr_pwrite_all(w->fd, buf, len, -1);

	if (rc == 0) {
		w->bytes += len;
		w->total_bytes += len;
		rc = vw_write_behind(w);
	}
	return rc;
}

/* A sealed record: its header, nonce, body (in up to two pieces) and
 * tag; chained for the trailer once written whole. */
static int vw_put(struct vwriter *w, const uint8_t rh[FR_REC_HDR],
		  const uint8_t nonce[FR_REC_NONCE], const uint8_t *a,
		  size_t alen, const uint8_t *b, size_t blen,
		  const uint8_t mac[FR_REC_MAC])
{
	int rc;

	if ((rc = vw_write(w, rh, FR_REC_HDR)) < 0 ||
	    (rc = vw_write(w, nonce, FR_REC_NONCE)) < 0 ||
	    (rc = vw_write(w, a, alen)) < 0 ||
	    (b && blen && (rc = vw_write(w, b, blen)) < 0) ||
	    (rc = vw_write(w, mac, FR_REC_MAC)) < 0)
		return rc;
	crypto_generichash_update(&w->chain, rh, FR_REC_HDR);
	crypto_generichash_update(&w->chain, nonce, FR_REC_NONCE);
	crypto_generichash_update(&w->chain, mac, FR_REC_MAC);
	return 0;
}

/* A record made here (manifest, segment list, trailer): sealed in a
 * copy, the body being kept for the next volume. */
static int vw_record(struct vwriter *w, uint32_t type, const uint8_t *body,
		     size_t len)
{
	struct fr_rec_hdr r = {.type = type, .len = (uint32_t)len};
	uint8_t rh[FR_REC_HDR], nonce[FR_REC_NONCE], mac[FR_REC_MAC];
	uint8_t ad[FR_PSEAL_AD], *c = malloc(len);
	int rc;

	if (!c)
		return -ENOMEM;
	memcpy(c, body, len);
	fr_rec_hdr_pack(rh, &r);
	fr_pseal_ad(w->vh, rh, ad);
	fr_pseal(w->key, nonce, ad, sizeof(ad),
		 &(struct fr_piece){c, len}, 1, mac);
	rc = vw_put(w, rh, nonce, c, len, NULL, 0, mac);
	free(c);
	return rc;
}

static uint64_t fixed_part(const struct vwriter *w)
{
	return FR_VOL_HDR + rec_size(w->mf_len) + rec_size(w->seglist_len) +
	       TRAILER_REC;
}

/* What closes a volume: the manifest, the segment list and the trailer.
 * Room for it is kept while frames are written. */
static uint64_t tail_part(const struct vwriter *w)
{
	return fixed_part(w) - FR_VOL_HDR;
}

static int prep_settle(struct prep *pp);

static int vw_open(struct vwriter *w)
{
	char dir[1200], idh[33];
	struct volinfo *vi;
	int rc;

	id_hex(w->h.parcel, idh);
	idh[12] = '\0';
	if (w->mi >= w->n_media) {
		snprintf(w->err, sizeof(w->err), "no medium left");
		return -ENOSPC;
	}
	if (w->n_vols >= FR_VOL_MAX)
		return FR_E_BAD_VOLUME;
	vi = realloc(w->vols, (w->n_vols + 1) * sizeof(*vi));
	if (!vi)
		return -ENOMEM;
	w->vols = vi;
	vi = &w->vols[w->n_vols];
	memset(vi, 0, sizeof(*vi));
	if ((rc = fr_path_fmt(dir, sizeof(dir), "%s/ferry-parcel-%s",
			      w->media[w->mi], idh)) < 0 ||
	    (rc = fr_mkdirs(dir)) < 0 ||
	    (rc = fr_path_fmt(vi->path, sizeof(vi->path), "%s/vol-%03u.fpv", dir,
			      w->n_vols + 1)) < 0) {
		snprintf(w->err, sizeof(w->err), "cannot create '%s': %s", dir,
			 fr_strerror(rc));
		return rc;
	}
	w->fd = open(vi->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = -errno;
		snprintf(w->err, sizeof(w->err), "cannot create '%s': %s",
			 vi->path, strerror(errno));
		return rc;
	}
	w->n_vols++;
	w->bytes = w->started = w->waited = w->kicked = 0;
	w->h.volume = w->n_vols;
	fr_vol_hdr_pack(w->vh, &w->h);
	crypto_generichash_init(&w->chain, NULL, 0, 32);
	crypto_generichash_update(&w->chain, w->vh, FR_VOL_HDR);
	if ((rc = vw_write(w, w->vh, FR_VOL_HDR)) < 0) {
		snprintf(w->err, sizeof(w->err), "cannot write '%s': %s",
			 vi->path, fr_strerror(rc));
		return rc;
	}
	return 0;
}

/*
 * The packing list beside a volume, for the courier and whoever unpacks:
 * only what the medium may tell anyone who finds it (docs/FORMAT.md):
 * the parcel, which volume of how many, its size, the sites. No name of
 * the package or of a file, no segment, no hash: the volume is sealed.
 */
static void write_packing_list(const struct vwriter *w, uint32_t k)
{
	const struct volinfo *vi = &w->vols[k];
	char path[1320], idh[33], sz[32], tsz[32], when[64];
	time_t t = (time_t)w->h.created;
	struct tm tm;

	snprintf(path, sizeof(path), "%.*s.txt", (int)strlen(vi->path) - 4,
		 vi->path);
	id_hex(w->h.parcel, idh);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f,
		"FERRY PARCEL - PACKING LIST\n"
		"\n"
		"parcel:    %.12s (%s)\n"
		"volume:    %u of %u  (%s, %s)\n"
		"parcel:    %u volume(s), %s\n"
		"from:      site %s\n"
		"to:        site %s\n"
		"created:   %s\n"
		"\n"
		"The volumes are sealed: only site %s can read them.\n"
		"To import at %s:  ferry parcel import DIR --config <its config>\n"
		"(DIR: where this volume is mounted; volumes may be imported in\n"
		"any order, one at a time or together.)\n",
		idh, idh, k + 1, w->n_vols, strrchr(vi->path, '/') + 1,
		fr_human_bytes(vi->bytes, sz, sizeof(sz)), w->n_vols,
		fr_human_bytes(w->total_bytes, tsz, sizeof(tsz)), w->h.from,
		w->h.to, when, w->h.to, w->h.to);
	fclose(f);
}

/* The open volume cut back to `at` bytes: the write-behind forgets what
 * lay beyond. */
static void vw_cut(struct vwriter *w, uint64_t at)
{
	uint64_t page = at & ~(uint64_t)(WB_PAGE - 1);

	w->total_bytes -= w->bytes - at;
	w->bytes = at;
	if (w->started > page)
		w->started = page;
	if (w->kicked > page)
		w->kicked = page;
	if (w->waited > page)
		w->waited = page;
	while (w->q_n && w->q_end[w->q_n - 1] > page)
		w->q_n--;
}

/* Close the open volume's file; the next volume's write-behind starts
 * afresh. */
static int vw_shut(struct vwriter *w)
{
	int rc = close(w->fd) < 0 ? -errno : 0;

	w->fd = -1;
	w->q_n = 0;
	w->done_t = 0;
	return rc;
}

static int vw_close(struct vwriter *w, bool last)
{
	struct volinfo *vi = &w->vols[w->n_vols - 1];
	struct fr_vol_trailer t = {
		.volume = w->n_vols,
		.frames = vi->frames,
		.first = vi->n_segs ? vi->segs[0] : 1,
		.last = vi->n_segs ? vi->segs[vi->n_segs - 1] : 0,
		.flags = last ? FR_VOL_LAST : 0,
		.total = last ? w->n_vols : 0,
		.bytes = w->bytes,
	};
	uint8_t tb[FR_TRAILER_LEN];
	int rc = 0;

	w->err[0] = '\0';
	/* the manifest and the segment list, once known (an error there
	 * was logged: w->err stays empty) */
	if ((rc = prep_settle(w->prep)) < 0) {
		vw_shut(w);
		return rc;
	}
	uint64_t frames_end = w->bytes;
	if ((rc = vw_record(w, FR_REC_MANIFEST, w->mf, w->mf_len)) == 0)
		rc = vw_record(w, FR_REC_SEGLIST, w->seglist, w->seglist_len);
	if (rc == 0) {
		/* the trailer lists every record before it, in order */
		crypto_generichash_final(&w->chain, t.chain, sizeof(t.chain));
		fr_vol_trailer_pack(tb, &t);
		rc = vw_record(w, FR_REC_TRAILER, tb, sizeof(tb));
	}
	if (rc < 0 && ftruncate(w->fd, (off_t)frames_end) == 0) {
		/* a torn tail is cut off: the volume reads as cut short */
		vw_cut(w, frames_end);
		snprintf(w->err, sizeof(w->err),
			 "cannot finish '%s' (%s): its frames can be imported "
			 "only with another volume of the parcel, or once the "
			 "parcel is registered",
			 vi->path, fr_strerror(rc));
	}
	if (rc == 0 && fdatasync(w->fd) < 0)
		rc = -errno;
	int rc2 = vw_shut(w);
	if (rc == 0)
		rc = rc2;
	vi->bytes = w->bytes;
	if (rc < 0 && !w->err[0])
		snprintf(w->err, sizeof(w->err), "cannot finish '%s': %s",
			 vi->path, fr_strerror(rc));
	return rc;
}

/*
 * Make room for a record of len bytes: a new volume when --volume-size
 * would be passed, the next medium when this one is full. Returns 0, or
 * -ENOSPC when no medium is left (w->err says so).
 */
static int vw_room(struct vwriter *w, uint64_t len, bool full_now)
{
	int rc;

	for (;;) {
		uint64_t tail = tail_part(w);
		bool over_limit = w->limit && w->bytes + len + tail > w->limit;
		bool full = full_now ||
			    medium_free(w->fd) < len + tail + SPACE_SLACK;
		full_now = false;
		if (!over_limit && !full)
			return 0;
		if (w->limit && fixed_part(w) + len > w->limit) {
			snprintf(w->err, sizeof(w->err),
				 "--volume-size %llu is too small: one volume "
				 "must hold the manifest and at least one "
				 "segment (%llu bytes)",
				 (unsigned long long)w->limit,
				 (unsigned long long)(fixed_part(w) + len));
			return FR_E_TOO_LARGE;
		}
		bool empty = w->vols[w->n_vols - 1].frames == 0;
		if (full && empty) {
			/* an empty volume on a full medium is no use: it goes
			 * without a tail (nor the wait for its manifest) */
			vw_shut(w);
			w->total_bytes -= w->bytes;
			unlink(w->vols[w->n_vols - 1].path);
			free(w->vols[w->n_vols - 1].segs);
			w->n_vols--;
		} else if ((rc = vw_close(w, false)) < 0) {
			return rc;
		}
		if (full) {
			w->mi++;
			if (w->mi >= w->n_media) {
				snprintf(w->err, sizeof(w->err),
					 "media full: %s has no room for the "
					 "next segment",
					 w->media[w->n_media - 1]);
				return -ENOSPC;
			}
			fr_log(FR_LOG_INFO, "%s is full; going on on %s",
			       w->media[w->mi - 1], w->media[w->mi]);
		}
		if ((rc = vw_open(w)) < 0)
			return rc;
	}
}

/* ---- worker jobs, waited for in order ------------------------------------ */

/* A slot's job: first in every slot, so a slot is its job. */
struct pjob {
	struct fr_job job;
	bool busy, done;
};

static void pjob_push(struct pjob *p, void (*fn)(struct fr_job *, int),
		      struct fr_doneq *dq)
{
	p->done = false;
	p->busy = true;
	p->job.fn = fn;
	p->job.done = dq;
	fr_workq_push(&p->job);
}

/* Block until p's job is back (others that come back are marked). */
static void pjob_wait(struct fr_doneq *dq, struct pjob *p)
{
	while (!p->done) {
		uint64_t v;
		struct fr_job *j = fr_doneq_take(dq);
		if (!j) {
			if (read(dq->efd, &v, 8) < 0 && errno != EINTR &&
			    errno != EAGAIN)
				return;
			continue;
		}
		for (; j; j = j->next)
			((struct pjob *)j)->done = true;
	}
	p->busy = false;
}

/* ---- creating a parcel: the pipeline ------------------------------------- */

struct pslot {
	struct pjob pj; /* first */
	const struct fr_manifest *m;
	const uint8_t *fid;        /* the frames' id: the parcel's */
	const uint8_t *key;        /* the parcel's, to seal with */
	const uint8_t *ph;         /* a volume header, for the associated data */
	const uint8_t *want;       /* the segment's hash, NULL: not known yet */
	struct fr_seg_reader rd;
	uint8_t *out;
	size_t out_cap;
	uint32_t seg;
	int level;
	int result;
	/* the sealed record: rh | nonce | fhdr | payload | mac */
	uint8_t rh[FR_REC_HDR];
	uint8_t nonce[FR_REC_NONCE];
	uint8_t fhdr[FR_FRAME_HDR];
	uint8_t mac[FR_REC_MAC];
	uint8_t hash[FR_HASH_LEN];
	uint8_t *payload;
	uint32_t stored;
	double cpu_s;
};

/* Frame, compress, and seal in place: the header where it was packed,
 * the payload in the compressor's output or the read buffer itself. */
static void work_pack(struct fr_job *job, int worker)
{
	struct pslot *s = (struct pslot *)job;
	const struct fr_segment *sg = &s->m->segments[s->seg];
	struct fr_frame f;
	uint8_t ad[FR_PSEAL_AD];
	double t0 = fr_thread_cpu_s();

	s->result = fr_frame_encode(fr_workq_cctx(worker), &f, s->fid, s->seg,
				    s->rd.buf, sg->length, s->want, s->out,
				    s->out_cap, s->level);
	if (s->result < 0)
		return;
	memcpy(s->hash, f.hash, FR_HASH_LEN);
	s->payload = (f.flags & FR_FRAME_ZSTD) ? s->out : s->rd.buf;
	s->stored = f.stored_len;
	fr_frame_pack(s->fhdr, &f);
	struct fr_rec_hdr r = {.type = FR_REC_FRAME,
			       .len = FR_FRAME_HDR + s->stored};
	fr_rec_hdr_pack(s->rh, &r);
	fr_pseal_ad(s->ph, s->rh, ad);
	struct fr_piece pc[2] = {{s->fhdr, FR_FRAME_HDR},
				 {s->payload, s->stored}};
	fr_pseal(s->key, s->nonce, ad, sizeof(ad), pc, 2, s->mac);
	s->cpu_s = fr_thread_cpu_s() - t0;
}

/* A frame sealed by a worker, appended to the volume (the next one if
 * it does not fit). */
static int vw_frame(struct vwriter *w, const struct pslot *s)
{
	uint64_t len = rec_size(FR_FRAME_HDR + (uint64_t)s->stored);
	struct volinfo *vi;
	int rc;

	if ((rc = vw_room(w, len, false)) < 0)
		return rc;
	off_t at = lseek(w->fd, 0, SEEK_CUR);
	rc = vw_put(w, s->rh, s->nonce, s->fhdr, FR_FRAME_HDR, s->payload,
		    s->stored, s->mac);
	if (rc == -ENOSPC && at >= 0 && ftruncate(w->fd, at) == 0) {
		/* the medium filled sooner than it said: cut the torn
		 * record off and write it again on the next medium (the
		 * same bytes: its associated data has no volume number) */
		vw_cut(w, (uint64_t)at);
		if ((rc = vw_room(w, len, true)) < 0)
			return rc;
		rc = vw_put(w, s->rh, s->nonce, s->fhdr, FR_FRAME_HDR,
			    s->payload, s->stored, s->mac);
	}
	vi = &w->vols[w->n_vols - 1];
	if (rc < 0) {
		snprintf(w->err, sizeof(w->err), "cannot write '%s': %s",
			 vi->path, fr_strerror(rc));
		return rc;
	}
	if (vi->n_segs == vi->cap_segs) {
		uint32_t nc = vi->cap_segs ? vi->cap_segs * 2 : 64;
		uint32_t *n = realloc(vi->segs, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		vi->segs = n;
		vi->cap_segs = nc;
	}
	vi->segs[vi->n_segs++] = s->seg;
	vi->frames++;
	return 0;
}

static void *prep_thread(void *arg)
{
	struct prep *pp = arg;

	pp->hash_rc = fr_hash_finish(pp->h);
	pp->h = NULL;
	if (pp->hash_rc == 0 && atomic_load(&pp->stop))
		pp->hash_rc = -ECANCELED; /* nothing to register */
	if (pp->hash_rc == 0) {
		fr_manifest_encode(pp->m, pp->mf, pp->mf_len);
		pp->reg_rc = register_parcel(pp->c, pp->site, pp->parcel, pp->mf,
					     pp->mf_len, pp->m->n_segments,
					     pp->have, pp->err, sizeof(pp->err));
		pp->registered = pp->reg_rc >= 0;
	}
	atomic_store(&pp->done, true);
	return NULL;
}

static int hash_changed(const struct prep *pp, uint32_t seg)
{
	fr_log(FR_LOG_ERROR,
	       "segment %u of '%s' no longer matches its hash: the source "
	       "changed while the parcel was being written; create it again",
	       seg, pp->src);
	return FR_E_CHANGED;
}

/*
 * Take the prep thread's result (waiting for it): the manifest written
 * to the parcel's record, the frames written so far checked against their
 * hashes, the segment list. 0; a negative code, logged; -ECANCELED with
 * pp->complete when the destination holds the package complete.
 */
static int prep_settle(struct prep *pp)
{
	struct parcel *p = pp->p;
	const struct fr_manifest *m = pp->m;
	char mpath[1300];
	int rc;

	if (pp->settled)
		return pp->settle_rc;
	pp->settled = true;
	double w0 = fr_now_s();
	pthread_join(pp->t, NULL);
	pp->running = false;
	uint32_t before = 0;
	for (uint32_t i = 0; i < m->n_segments; i++)
		before += pp->wrote[i] != 0;
	fr_log(FR_LOG_DEBUG,
	       "hashed and registered %.2f s after the start (waited %.2f s), "
	       "%u frame(s) already written",
	       fr_now_s() - pp->t0, fr_now_s() - w0, before);
	if ((rc = pp->hash_rc) < 0)
		return pp->settle_rc = rc;
	fr_path_fmt(mpath, sizeof(mpath), "%s/manifest", p->dir);
	if ((rc = fr_write_file_atomic(mpath, pp->mf, pp->mf_len)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot write '%s': %s", mpath,
		       fr_strerror(rc));
		return pp->settle_rc = rc;
	}
	id_hex(m->id, p->pkg);
	rc = pp->reg_rc;
	if (rc == FR_HAVE_COMPLETE) {
		fr_log(FR_LOG_INFO,
		       "%s already holds '%s' complete: no parcel needed",
		       pp->site, m->name);
		pp->complete = true;
		return pp->settle_rc = -ECANCELED;
	}
	if (rc == FR_E_AUTH || rc == FR_E_REFUSED || rc == -EBUSY) {
		fr_log(FR_LOG_ERROR, "%s refused the parcel's registration: %s",
		       pp->site, pp->err);
		return pp->settle_rc = rc;
	}
	if (rc < 0) {
		fr_log(FR_LOG_WARN,
		       "cannot register the parcel with %s (%s): it will carry "
		       "every segment, and 'ferry parcel list' registers it "
		       "once %s is reachable",
		       pp->site, pp->err, pp->site);
		memset(pp->have, 0, m->n_segments);
	} else {
		p->registered = 1;
	}
	p->segments = 0;
	for (uint32_t i = 0; i < m->n_segments; i++) {
		if (pp->wrote[i] == 2) {
			if (memcmp(pp->whash[i], m->segments[i].hash, FR_HASH_LEN))
				return pp->settle_rc = hash_changed(pp, i);
			pp->wrote[i] = 1;
		}
		if (!pp->have[i] || pp->wrote[i]) {
			pp->seglist[i / 8] |= (uint8_t)(1u << (i % 8));
			p->segments++;
		}
	}
	parcel_save(p);
	return pp->settle_rc = 0;
}

static const struct fr_address *courier_address(const struct fr_config *c,
						const char *site,
						const char *via)
{
	const struct fr_address *all[64];
	unsigned n = fr_config_addresses(c, site, all, 64);

	for (unsigned i = 0; i < n; i++)
		if (all[i]->type == FR_ADDR_COURIER &&
		    (!via || !strcmp(all[i]->name, via)))
			return all[i];
	return NULL;
}

static void print_json_str(FILE *out, const char *key, const char *v, bool comma)
{
	char buf[2200];

	fprintf(out, "\"%s\": %s%s", key, fr_json_str(v, buf, sizeof(buf)),
		comma ? ", " : "");
}

/* The per-segment tables of the preparation: the manifest's bytes, what
 * the site holds, what was written (and its hash), the segment list. */
static int prep_alloc(struct prep *pp, uint32_t n_segments)
{
	pp->seglist_len = (n_segments + 7) / 8;
	if (!(pp->mf = malloc(pp->mf_len)) ||
	    !(pp->have = calloc(n_segments + 1, 1)) ||
	    !(pp->wrote = calloc(n_segments + 1, 1)) ||
	    !(pp->whash = malloc((n_segments + 1) * sizeof(*pp->whash))) ||
	    !(pp->seglist = calloc(pp->seglist_len, 1)))
		return -ENOMEM;
	return 0;
}

/* The packing slots for the frames of m, framed with the parcel's id and
 * sealed with its key, as w writes them. */
static int pslots_init(struct pslot *slots, const struct fr_manifest *m,
		       const struct vwriter *w)
{
	int rc = 0;

	for (int i = 0; i < PSLOTS; i++) {
		slots[i].m = m;
		slots[i].fid = w->h.parcel;
		slots[i].key = w->key;
		slots[i].ph = w->ph;
		slots[i].out_cap = fr_seg_bound(m->seg_size);
		if ((rc = fr_seg_reader_init(&slots[i].rd, m->seg_size)) < 0 ||
		    !(slots[i].out = malloc(slots[i].out_cap))) {
			rc = rc < 0 ? rc : -ENOMEM;
			fr_log(FR_LOG_ERROR, "cannot set up the data path: %s",
			       fr_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/* Close the volume still open (the last one: it says so); rc, or the
 * error of that close. */
static int close_last_volume(struct vwriter *w, int rc, double t0)
{
	if (w->fd >= 0) {
		int r2 = vw_close(w, true);
		if (r2 < 0 && rc == 0) {
			rc = r2;
			if (w->err[0])
				fr_log(FR_LOG_ERROR, "%s", w->err);
		}
		fr_log(FR_LOG_DEBUG, "last volume closed %.2f s after the start",
		       fr_now_s() - t0);
	} else if (w->n_vols && rc == -ENOSPC) {
		/* the media filled up: the volume closed last is the last */
		fr_log(FR_LOG_WARN,
		       "the last volume written, %s, does not say it is the "
		       "last",
		       w->vols[w->n_vols - 1].path);
	}
	return rc;
}

/* A parcel not kept: its volumes, their packing lists and their folder
 * go. */
static void drop_volumes(const struct vwriter *w)
{
	for (uint32_t k = 0; k < w->n_vols; k++) {
		char txt[1320];
		unlink(w->vols[k].path);
		snprintf(txt, sizeof(txt), "%.*s.txt",
			 (int)strlen(w->vols[k].path) - 4, w->vols[k].path);
		unlink(txt);
	}
	if (w->n_vols) {
		char dir[1300];
		snprintf(dir, sizeof(dir), "%.*s",
			 (int)(strrchr(w->vols[0].path, '/') - w->vols[0].path),
			 w->vols[0].path);
		rmdir(dir);
	}
}

/* Segments of the parcel's list that no volume holds (did not fit). */
static uint32_t not_written(const struct prep *pp, const struct fr_manifest *m)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->n_segments; i++)
		if (((pp->seglist[i / 8] >> (i % 8)) & 1) && !pp->wrote[i])
			n++;
	return n;
}

/* What the frame loop of a parcel works with; written and raw_done come
 * out. */
struct packing {
	const struct fr_parcel_opts *o;
	const char *src;
	bool single;
	int fixed; /* the level, or -1: it follows the medium */
	double t0;
	const struct fr_manifest *m;
	const struct parcel *p;
	struct prep *pp;
	struct pslot *slots;
	struct fr_doneq *dq;
	struct fr_adapt *ad;
	struct vwriter *w;
	uint32_t written;
	uint64_t raw_done;
};

/* Read, pack and write the frames the destination lacks: every slot
 * busy, the oldest to the medium; the level follows the medium. */
static int write_frames(struct packing *k)
{
	const struct fr_parcel_opts *o = k->o;
	const struct fr_manifest *m = k->m;
	const struct parcel *p = k->p;
	const char *src = k->src;
	bool single = k->single;
	int fixed = k->fixed;
	double t0 = k->t0;
	struct prep *pp = k->pp;
	struct pslot *slots = k->slots;
	struct fr_doneq *dq = k->dq;
	struct fr_adapt *ad = k->ad;
	struct vwriter *w = k->w;
	uint32_t written = 0;
	uint64_t raw_done = 0;
	int rc = 0;

	double last_tick = fr_now_s();
	uint64_t read_bytes = 0;
	double read_s = 0;
	uint32_t next = 0, head = 0, cur = 0;
	double t_read = 0, t_work = 0, t_write = 0, cpu_work = 0;
	for (;;) {
		if (rc == 0 && !pp->settled && atomic_load(&pp->done))
			rc = prep_settle(pp);
		/* keep every slot busy: read the next segments while the
		 * workers compress and the oldest goes to the medium. Until
		 * the registration answered, every segment goes. */
		while (rc == 0 && next - head < PSLOTS) {
			while (cur < m->n_segments && pp->settled && pp->have[cur])
				cur++;
			if (cur >= m->n_segments)
				break;
			struct pslot *s = &slots[next % PSLOTS];
			char msg[512];
			s->seg = cur++;
			s->want = pp->settled ? m->segments[s->seg].hash : NULL;
			double r0 = fr_now_s();
			rc = fr_seg_read(&s->rd, src, single, m, s->seg, msg,
					 sizeof(msg));
			double dt = fr_now_s() - r0;
			read_s += dt;
			t_read += dt;
			read_bytes += m->segments[s->seg].length;
			if (rc < 0) {
				fr_log(FR_LOG_ERROR, "%s", msg);
				break;
			}
			s->level = fixed >= 0 ? fixed : fr_adapt_next(ad);
			pjob_push(&s->pj, work_pack, dq);
			next++;
		}
		if (head == next)
			break;
		struct pslot *s = &slots[head % PSLOTS];
		double q0 = fr_now_s();
		pjob_wait(dq, &s->pj);
		t_work += fr_now_s() - q0;
		cpu_work += s->cpu_s;
		head++;
		if (rc < 0)
			continue; /* drain what is in flight */
		if (s->result < 0) {
			rc = hash_changed(pp, s->seg);
			continue;
		}
		/* read before the registration said the destination holds it */
		if (pp->settled && pp->have[s->seg])
			continue;
		if (fixed < 0)
			fr_adapt_segment(ad, s->level, m->segments[s->seg].length,
					 s->stored, s->cpu_s);
		double v0 = fr_now_s();
		rc = vw_frame(w, s);
		t_write += fr_now_s() - v0;
		if (rc < 0) {
			if (w->err[0])
				fr_log(FR_LOG_ERROR, "%s", w->err);
			continue;
		}
		/* Read before the hashes were known: checked now if they are
		 * (the write may have closed a volume, which waits for them),
		 * else by prep_settle. A frame whose write took the answer
		 * is in the segment list from then on. */
		if (pp->settled) {
			if (!s->want &&
			    memcmp(s->hash, m->segments[s->seg].hash, FR_HASH_LEN)) {
				rc = hash_changed(pp, s->seg);
				continue;
			}
			pp->seglist[s->seg / 8] |= (uint8_t)(1u << (s->seg % 8));
			pp->wrote[s->seg] = 1;
		} else {
			memcpy(pp->whash[s->seg], s->hash, FR_HASH_LEN);
			pp->wrote[s->seg] = 2;
		}
		if (written == 0)
			fr_log(FR_LOG_DEBUG, "first frame written %.2f s after "
			       "the start", fr_now_s() - t0);
		raw_done += m->segments[s->seg].length;
		written++;
		double now = fr_now_s();
		if (now - last_tick >= 0.25) {
			if (fixed < 0) {
				/* the medium is the link: its rate over
				 * four chunks and a second or more, or at
				 * least the rate it kept up with */
				if (w->busy_s >= 1.0 &&
				    w->busy_bytes >= 4ull * WB_CHUNK) {
					double mr = w->busy_bytes / w->busy_s;
					if (w->blocked)
						fr_adapt_wire(ad, w->busy_bytes,
							      w->busy_s);
					else if (mr > ad->wire_rate)
						ad->wire_rate = mr;
					w->busy_bytes = 0;
					w->busy_s = 0;
					w->blocked = false;
				}
				fr_adapt_source(ad, read_bytes, read_s);
				read_bytes = 0;
				read_s = 0;
				int before = ad->level;
				fr_adapt_choose(ad);
				if (ad->level != before)
					fr_log(FR_LOG_DEBUG,
					       "compression level %d -> %d "
					       "(medium %.0f MB/s, source "
					       "%.0f MB/s)",
					       before, ad->level,
					       ad->wire_rate / 1e6,
					       ad->source_rate / 1e6);
			}
			if (o->progress) {
				char sg[64], rt[32], lv[32], vl[32];
				snprintf(sg, sizeof(sg), "parcel: %u/%u segments",
					 written,
					 pp->settled ? p->segments : m->n_segments);
				snprintf(rt, sizeof(rt), "%.0f MB/s",
					 raw_done / 1e6 / (now - t0 + 1e-9));
				snprintf(lv, sizeof(lv), "level %d", s->level);
				snprintf(vl, sizeof(vl), "volume %u", w->n_vols);
				const struct fr_tty_part parts[] = {
					{sg, 0}, {rt, 2}, {lv, 3}, {vl, 1}};
				fr_tty_line(parts, FR_ARRAY_SIZE(parts));
			}
			last_tick = now;
		}
	}
	fr_log(FR_LOG_DEBUG,
	       "last frame written %.2f s after the start (main thread: "
	       "%.2f s reading, %.2f s waiting for the workers, %.2f s "
	       "writing; workers: %.2f CPU s)",
	       fr_now_s() - t0, t_read, t_work, t_write, cpu_work);
	k->written = written;
	k->raw_done = raw_done;
	return rc;
}

/* A volume writer for the parcel: its media, the volume size, the key
 * that seals it (from the account's), the manifest and segment list it
 * carries and the header every volume starts with. */
static void vw_setup(struct vwriter *w, const struct fr_config *c,
		     const struct fr_parcel_opts *o, const struct fr_address *ca,
		     const struct prep *pp, const struct fr_manifest *m,
		     const char **media, unsigned n_media, size_t mf_len,
		     int64_t created)
{
	w->media = media;
	w->n_media = n_media;
	w->limit = o->volume_size;
	fr_pseal_key(ca->key, w->h.parcel, w->key);
	fr_pseal_check(w->key, w->h.check);
	w->mf = pp->mf;
	w->mf_len = mf_len;
	w->seglist = pp->seglist;
	w->seglist_len = pp->seglist_len;
	w->h.version = FR_VOL_VERSION;
	w->h.mf_len = (uint32_t)mf_len;
	w->h.n_segments = m->n_segments;
	w->h.seg_size = m->seg_size;
	snprintf(w->h.from, sizeof(w->h.from), "%s", c->code);
	snprintf(w->h.to, sizeof(w->h.to), "%s", o->site);
	snprintf(w->h.account, sizeof(w->h.account), "%s", ca->account);
	w->h.created = created;
	w->h.volume = 1;
	fr_vol_hdr_pack(w->ph, &w->h);
}

/* The summary of a parcel made: one JSON object, or its lines (the
 * volumes, what did not fit, what the walk left out). */
static void report_created(const struct fr_parcel_opts *o,
			   const struct parcel *p, const struct fr_manifest *m,
			   const struct vwriter *w,
			   const struct fr_left_list *left, uint64_t raw_done,
			   double secs)
{
	char sz[32], rz[32], en[4 * FR_NAME_MAX + 8];
	if (o->json) {
		printf("{");
		print_json_str(stdout, "parcel", p->id, true);
		print_json_str(stdout, "name", m->name, true);
		print_json_str(stdout, "site", o->site, true);
		printf("\"registered\": %s, \"volumes\": %u, \"segments\": %u, "
		       "\"n_segments\": %u, \"left_out\": %u, \"bytes\": %llu, "
		       "\"raw_bytes\": %llu, \"seconds\": %.3f, \"paths\": [",
		       p->registered ? "true" : "false", p->volumes, p->segments,
		       p->n_segments, p->left_out, (unsigned long long)p->bytes,
		       (unsigned long long)raw_done, secs);
		for (uint32_t k = 0; k < w->n_vols; k++) {
			char b[2700];
			printf("%s%s", k ? ", " : "",
			       fr_json_str(w->vols[k].path, b, sizeof(b)));
		}
		/* "left_out" above counts segments that did not fit */
		printf("], \"skip_special\": %s, \"left_out_entries\": ",
		       o->skip_special ? "true" : "false");
		fr_left_json(left, stdout);
		printf("}\n");
	} else {
		printf("parcel %.12s: '%s' for %s, %u segment(s) (%s) in %u "
		       "volume(s), %s on the media, %.1f s%s\n",
		       p->id, fr_esc(m->name, en, sizeof(en)), o->site, p->segments,
		       fr_human_bytes(raw_done, rz, sizeof(rz)), w->n_vols,
		       fr_human_bytes(w->total_bytes, sz, sizeof(sz)), secs,
		       p->registered ? "" : " (not registered yet)");
		for (uint32_t k = 0; k < w->n_vols; k++)
			printf("  %s\n", w->vols[k].path);
		if (p->left_out)
			printf("%u segment(s) did not fit: they can go over the "
			       "network ('ferry send') or in another parcel\n",
			       p->left_out);
		fr_left_print(left, stdout);
	}
}

/* The courier address (and the network one it needs) and the media to
 * fill, in order: those given, else the address's; each a writable
 * directory. 0, or an error said. */
static int parcel_outputs(const struct fr_config *c,
			  const struct fr_parcel_opts *o,
			  const struct fr_address **ca_out,
			  const struct fr_address **na_out,
			  const char *media[FR_PARCEL_MEDIA_MAX],
			  unsigned *n_media)
{
	struct stat st;

	if (!(*ca_out = courier_address(c, o->site, o->via))) {
		fr_log(FR_LOG_ERROR,
		       o->via ? "site %s has no courier address named '%s' in '%s'"
			      : "site %s has no courier address in '%s'%s",
		       o->site, o->via ? o->via : c->path,
		       o->via ? c->path : "");
		return FR_E_CONFIG;
	}
	if (!(*na_out = net_address(c, o->site))) {
		fr_log(FR_LOG_ERROR,
		       "site %s has no network address in '%s': a courier "
		       "needs one (lan or RAS), over which the parcel is "
		       "registered and its receipt comes back",
		       o->site, c->path);
		return FR_E_CONFIG;
	}
	for (unsigned i = 0; i < o->n_media && *n_media < FR_PARCEL_MEDIA_MAX; i++)
		media[(*n_media)++] = o->media[i];
	if (!*n_media && (*ca_out)->media[0])
		media[(*n_media)++] = (*ca_out)->media;
	if (!*n_media) {
		fr_log(FR_LOG_ERROR,
		       "no medium: give --media DIR, or media = DIR in "
		       "[address %s %s]",
		       (*ca_out)->site, (*ca_out)->name);
		return FR_E_CONFIG;
	}
	for (unsigned i = 0; i < *n_media; i++) {
		if (stat(media[i], &st) < 0 || !S_ISDIR(st.st_mode) ||
		    access(media[i], W_OK) < 0) {
			fr_log(FR_LOG_ERROR,
			       "medium '%s' is not a writable directory%s%s",
			       media[i], errno ? ": " : "",
			       errno ? strerror(errno) : "");
			return -ENOTDIR;
		}
	}
	return 0;
}

int fr_parcel_create(const struct fr_config *c, const struct fr_parcel_opts *o)
{
	const struct fr_address *ca, *na;
	struct fr_manifest m = {0};
	struct vwriter w = {.fd = -1};
	struct pslot slots[PSLOTS] = {0};
	struct fr_doneq dq = {.efd = -1};
	struct fr_adapt ad;
	struct parcel p = {0};
	struct prep pp = {0};
	const char *media[FR_PARCEL_MEDIA_MAX];
	uint32_t written = 0;
	uint64_t raw_done = 0;
	double t0 = fr_now_s();
	unsigned n_media = 0;
	bool kept = false;
	char name[FR_NAME_MAX + 1], pdir[1200], src[4096];
	struct fr_left_list left = {0};
	bool left_said = false;
	struct stat st;
	int rc;

	/* ---- refuse early what cannot work */
	if ((rc = parcel_outputs(c, o, &ca, &na, media, &n_media)) < 0)
		return rc;
	if ((rc = fr_package_source(o->path, o->name, "pack", src, sizeof(src),
				    name, sizeof(name))) < 0)
		return rc;
	if (stat(src, &st) < 0) {
		rc = -errno;
		char ep[FR_ESC_MAX];
		fr_log(FR_LOG_ERROR, "cannot read '%s': %s",
		       fr_esc(src, ep, sizeof(ep)), strerror(-rc));
		return rc;
	}
	if ((rc = fr_workq_start(c->workers)) < 0)
		return rc;

	/* ---- the listing; the hashes follow in the background */
	bool single;
	if ((rc = fr_scan_list(src, name, c->seg_size, &m, &single, &left)) < 0)
		return rc;
	size_t mf_len = fr_manifest_encoded_size(&m);
	if (mf_len > FR_MANIFEST_MAX) {
		char ep[FR_ESC_MAX];
		fr_log(FR_LOG_ERROR, "'%s' has too many entries for one manifest",
		       fr_esc(src, ep, sizeof(ep)));
		rc = FR_E_TOO_LARGE;
		goto out;
	}
	pp.c = c;
	pp.t0 = t0;
	pp.site = o->site;
	pp.src = src;
	pp.m = &m;
	pp.p = &p;
	pp.mf_len = mf_len;
	if ((rc = prep_alloc(&pp, m.n_segments)) < 0)
		goto out;

	/* ---- the parcel's record */
	fr_random(w.h.parcel, FR_HASH_LEN);
	memcpy(pp.parcel, w.h.parcel, FR_HASH_LEN);
	id_hex(w.h.parcel, p.id);
	if ((rc = parcels_dir(c, pdir, sizeof(pdir))) < 0 ||
	    (rc = fr_path_fmt(p.dir, sizeof(p.dir), "%s/%.12s", pdir, p.id)) < 0 ||
	    (rc = fr_mkdirs(p.dir)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot create the parcel's record in '%s': %s",
		       pdir, fr_strerror(rc));
		goto out;
	}
	snprintf(p.name, sizeof(p.name), "%s", m.name);
	snprintf(p.site, sizeof(p.site), "%s", o->site);
	snprintf(p.address, sizeof(p.address), "%s", ca->name);
	snprintf(p.state, sizeof(p.state), "creating");
	p.n_segments = m.n_segments;
	p.created = (int64_t)time(NULL);
	snprintf(p.media, sizeof(p.media), "%s", media[0]);

	/* ---- hashing and registration, behind the frames */
	if ((rc = fr_hash_start(&pp.h, src, single, &m, &pp.stop)) < 0) {
		char ep[FR_ESC_MAX];
		fr_log(FR_LOG_ERROR, "cannot start hashing '%s': %s",
		       fr_esc(src, ep, sizeof(ep)), fr_strerror(rc));
		goto stopped;
	}
	if (pthread_create(&pp.t, NULL, prep_thread, &pp) != 0) {
		atomic_store(&pp.stop, true);
		fr_hash_finish(pp.h);
		rc = -EAGAIN;
		goto stopped;
	}
	pp.running = true;

	/* ---- the volumes: frames first, the manifest (waited for) closes
	 * each one */
	w.prep = &pp;
	vw_setup(&w, c, o, ca, &pp, &m, media, n_media, mf_len, p.created);
	if ((rc = vw_open(&w)) < 0 || (rc = vw_room(&w, 0, false)) < 0) {
		if (w.err[0])
			fr_log(FR_LOG_ERROR, "%s", w.err);
		goto stopped;
	}

	int fixed = o->level >= -1 ? o->level : c->level;
	fr_adapt_init(&ad, fr_workq_count(), fixed);
	ad.prefer_small = true;
	if (fixed < 0)
		ad.level = FR_SMALL_FLOOR; /* until measured */
	if ((rc = fr_doneq_init(&dq)) < 0)
		goto stopped;
	if ((rc = pslots_init(slots, &m, &w)) < 0)
		goto stopped;

	struct packing pk = {
		.o = o, .src = src, .single = single, .fixed = fixed, .t0 = t0,
		.m = &m, .p = &p, .pp = &pp, .slots = slots, .dq = &dq,
		.ad = &ad, .w = &w,
	};
	rc = write_frames(&pk);
	written = pk.written;
	raw_done = pk.raw_done;
stopped:
	if (o->progress)
		fprintf(stderr, "\r\033[K");
	for (int i = 0; i < PSLOTS; i++)
		if (slots[i].pj.busy)
			pjob_wait(&dq, &slots[i].pj);
	/* an error other than a full medium after some frames: the hashing
	 * need not go on */
	if (rc < 0 && (rc != -ENOSPC || written == 0))
		atomic_store(&pp.stop, true);
	rc = close_last_volume(&w, rc, t0);
	/* volumes without a manifest, from a source that changed, or not
	 * needed: none is kept */
	bool keep = rc == 0 || (written > 0 && pp.settled &&
				pp.settle_rc == 0 && rc != FR_E_CHANGED);
	if (pp.complete)
		rc = 0;
	if (!keep || pp.complete) {
		drop_volumes(&w);
		if (p.dir[0])
			fr_remove_tree(p.dir);
		goto out;
	}
	kept = true;
	for (uint32_t k = 0; k < w.n_vols; k++)
		write_packing_list(&w, k);
	p.volumes = w.n_vols;
	p.bytes = w.total_bytes;
	p.raw = raw_done;
	p.left_out = not_written(&pp, &m);
	p.segments = written;
	double secs = fr_now_s() - t0;
	snprintf(p.state, sizeof(p.state), "created");
	parcel_save(&p);
	report_created(o, &p, &m, &w, &left, raw_done, secs);
	left_said = true;
out:
	if (rc == 0 && left.n) {
		if (!left_said) {
			fprintf(stderr, "%s: ", fr_log_tag);
			fr_left_print(&left, stderr);
		}
		if (!o->skip_special)
			rc = FR_E_LEFT_OUT;
	}
	fr_left_list_fini(&left);
	if (w.fd >= 0)
		close(w.fd);
	for (int i = 0; i < PSLOTS; i++) {
		if (slots[i].pj.busy)
			pjob_wait(&dq, &slots[i].pj);
		fr_seg_reader_fini(&slots[i].rd);
		free(slots[i].out);
	}
	if (dq.efd >= 0)
		fr_doneq_fini(&dq);
	for (uint32_t k = 0; k < w.n_vols; k++)
		free(w.vols[k].segs);
	free(w.vols);
	sodium_memzero(w.key, sizeof(w.key));
	if (pp.running) {
		atomic_store(&pp.stop, true);
		pthread_join(pp.t, NULL);
	}
	/* registered, and no parcel after all */
	if (pp.registered && !kept)
		withdraw_parcel(c, o->site, pp.parcel);
	free(pp.mf);
	free(pp.have);
	free(pp.wrote);
	free(pp.whash);
	free(pp.seglist);
	fr_manifest_fini(&m);
	return rc;
}

/* ---- importing ----------------------------------------------------------- */

struct islot {
	struct pjob pj; /* first */
	const struct fr_store_pkg *pkg;
	struct fr_frame f;
	uint8_t *in, *out;  /* FR_DIO_ALIGN-aligned */
	uint32_t shift;     /* the frame's bytes are at in and out + shift:
			     * its largest extent lines up for O_DIRECT */
	const uint8_t *data;
	/* the frame's record as read: its header still sealed in fh, its
	 * payload at in + shift (f is the header opened, not checked yet) */
	const uint8_t *key;
	uint8_t ad[FR_PSEAL_AD];
	uint8_t nonce[FR_REC_NONCE], mac[FR_REC_MAC];
	uint8_t fh[FR_FRAME_HDR];
	int result;      /* the frame's check */
	int werr;        /* writing it into its files, named in werrmsg */
	char werrmsg[1200];
};

static void work_unpack(struct fr_job *job, int worker)
{
	struct islot *s = (struct islot *)job;

	s->werr = 0;
	/* checked and opened here, before any byte of it reaches a file */
	struct fr_piece pc[2] = {{s->fh, FR_FRAME_HDR},
				 {s->in + s->shift, s->f.stored_len}};
	if (!fr_pseal_verify(s->key, s->nonce, s->ad, sizeof(s->ad), pc, 2,
			     s->mac)) {
		s->result = FR_E_FORGED;
		return;
	}
	fr_pseal_xor(s->key, s->nonce, FR_FRAME_HDR, s->in + s->shift,
		     s->f.stored_len);
	s->result = fr_frame_decode(fr_workq_dctx(worker), &s->f,
				    s->in + s->shift, s->out + s->shift,
				    s->pkg->m.segments[s->f.index].hash,
				    &s->data);
	/* the workers write too: creating and filling many small files
	 * costs system time that one thread would serialise */
	if (s->result == 0)
		s->werr = fr_store_write_segment(s->pkg, s->f.index, s->data,
						 s->werrmsg,
						 sizeof(s->werrmsg));
}

struct importer {
	const struct fr_config *c;
	struct fr_store_pkg pkg;
	bool open;
	struct islot slots[PSLOTS];
	struct fr_doneq dq;
	uint8_t *taken;          /* per segment: written in this run */
	struct fr_syncer sy;     /* makes them durable and journals them */
	uint32_t n_added;        /* handed to it since the last imp_sync */
	uint32_t imported, held, refused, damaged;
	int error;
	char err[1600];
};

static void imp_sync_failed(struct importer *im, int rc)
{
	if (rc < 0 && !im->error) {
		im->error = rc;
		snprintf(im->err, sizeof(im->err),
			 "cannot make segments durable in '%s': %s", im->pkg.dir,
			 fr_strerror(rc));
	}
}

/* Everything written so far durable and journaled. */
static int imp_sync(struct importer *im)
{
	int rc = fr_syncer_wait(&im->sy, 0);

	imp_sync_failed(im, rc);
	if (rc == 0)
		im->imported += im->n_added;
	im->n_added = 0;
	return rc;
}

/* The job of slot s is back: write its segment, or say why not. */
static void imp_finish(struct importer *im, struct islot *s, const char *vname)
{
	int rc;

	if (im->error)
		return;
	if (s->result < 0) {
		im->refused++;
		im->taken[s->f.index] = 0;
		fr_log(FR_LOG_ERROR, "%s: segment %u refused: %s", vname,
		       s->f.index, fr_strerror(s->result));
		return;
	}
	if ((rc = s->werr) < 0) {
		im->error = rc;
		snprintf(im->err, sizeof(im->err), "segment %u: %s", s->f.index,
			 s->werrmsg);
		return;
	}
	fr_syncer_add(&im->sy, s->f.index);
	im->n_added++;
	imp_sync_failed(im, fr_syncer_wait(&im->sy, SYNC_WINDOW));
}

static void imp_wait(struct importer *im, struct islot *s, const char *vname)
{
	pjob_wait(&im->dq, &s->pj);
	imp_finish(im, s, vname);
}

struct vol {
	char path[4096];
	dev_t dev; /* a volume named twice (by two paths) is read once */
	ino_t ino;
	struct fr_vol_hdr h;
	uint8_t vh[FR_VOL_HDR];
	bool wrong_key; /* its key check failed (said) */
};

static int cmp_vol(const void *a, const void *b)
{
	const struct vol *x = a, *y = b;
	int d = memcmp(x->h.parcel, y->h.parcel, FR_HASH_LEN);

	if (d)
		return d;
	return x->h.volume < y->h.volume ? -1 : x->h.volume > y->h.volume;
}

static int add_volume(struct vol **v, uint32_t *n, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		memset(&st, 0, sizeof(st)); /* reported when it is opened */
	for (uint32_t k = 0; k < *n && st.st_ino; k++)
		if ((*v)[k].dev == st.st_dev && (*v)[k].ino == st.st_ino) {
			fr_log(FR_LOG_INFO, "%s is %s, given twice: read once",
			       path, (*v)[k].path);
			return 0;
		}
	struct vol *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	snprintf(nv[*n].path, sizeof(nv[*n].path), "%s", path);
	nv[*n].dev = st.st_dev;
	nv[*n].ino = st.st_ino;
	(*n)++;
	return 0;
}

static int find_volumes(const char *path, int depth, struct vol **v,
			uint32_t *n)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fr_log(FR_LOG_ERROR, "cannot read '%s': %s", path,
		       strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return add_volume(v, n, path);
	DIR *d = opendir(path);
	if (!d) {
		fr_log(FR_LOG_ERROR, "cannot read '%s': %s", path,
		       strerror(errno));
		return -errno;
	}
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		char sub[4096];
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' ||
		    fr_path_fmt(sub, sizeof(sub), "%s/%s", path, e->d_name))
			continue;
		if (l > 4 && !strcmp(e->d_name + l - 4, ".fpv"))
			rc = add_volume(v, n, sub);
		else if (depth < 3 && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			rc = find_volumes(sub, depth + 1, v, n);
	}
	closedir(d);
	return rc;
}

/*
 * Keep the medium busy during an import: the next RA_AHEAD bytes of the
 * volume are asked for (asynchronously) whenever the reader has used
 * RA_STEP of them, so the medium reads while the workers unpack, the
 * files are written and, for the first volume, the tree is created.
 * What was read is dropped from the page cache: a volume is read once.
 */
#define RA_AHEAD ((uint64_t)96 << 20)
#define RA_STEP ((uint64_t)16 << 20)

struct readahead {
	uint64_t asked; /* up to here the medium was asked for */
	uint64_t dropped; /* below here the page cache was let go */
};

static void read_ahead(int fd, uint64_t pos, struct readahead *ra)
{
	if (pos + RA_AHEAD >= ra->asked + RA_STEP) {
		posix_fadvise(fd, (off_t)ra->asked,
			      (off_t)(pos + RA_AHEAD - ra->asked),
			      POSIX_FADV_WILLNEED);
		ra->asked = pos + RA_AHEAD;
	}
	if (pos >= ra->dropped + RA_STEP) {
		posix_fadvise(fd, (off_t)ra->dropped, (off_t)(pos - ra->dropped),
			      POSIX_FADV_DONTNEED);
		ra->dropped = pos;
	}
}

/* The record's tag checked on the reading thread: a frame not handed to
 * a worker (refused, or held already) is still told altered or not. */
static bool frame_authentic(const struct islot *s, const uint8_t *key,
			    const uint8_t ad[FR_PSEAL_AD],
			    const uint8_t nonce[FR_REC_NONCE],
			    const uint8_t mac[FR_REC_MAC], uint32_t len)
{
	struct fr_piece pc[2] = {{(uint8_t *)s->fh, FR_FRAME_HDR},
				 {s->in + s->shift, len - FR_FRAME_HDR}};

	return fr_pseal_verify(key, nonce, ad, FR_PSEAL_AD, pc, 2, mac);
}

static const char *rec_name(uint32_t type)
{
	return type == FR_REC_TRAILER	 ? "trailer"
	       : type == FR_REC_MANIFEST ? "manifest"
					 : "segment list";
}

/* A record's header, nonce and tag, in order: what the trailer chains. */
static void chain_rec(crypto_generichash_state *chain, const uint8_t *rh,
		      const uint8_t *nonce, const uint8_t *mac)
{
	crypto_generichash_update(chain, rh, FR_REC_HDR);
	crypto_generichash_update(chain, nonce, FR_REC_NONCE);
	crypto_generichash_update(chain, mac, FR_REC_MAC);
}

/* The trailer opened: it must be this volume's and list its records
 * (the chain so far). true when the volume is whole. */
static bool trailer_ok(struct importer *im, const struct vol *v,
		       crypto_generichash_state *chain, const uint8_t *body,
		       struct fr_vol_trailer *t)
{
	uint8_t got[sizeof(t->chain)];
	int rc;

	crypto_generichash_final(chain, got, sizeof(got));
	rc = fr_vol_trailer_unpack(t, body);
	if (rc < 0 || t->volume != v->h.volume) {
		fr_log(FR_LOG_ERROR, "%s: bad trailer: %s", v->path,
		       fr_strerror(rc < 0 ? rc : FR_E_BAD_VOLUME));
		im->damaged++;
		return false;
	}
	if (sodium_memcmp(got, t->chain, sizeof(got))) {
		fr_log(FR_LOG_ERROR,
		       "%s: its records are not the ones its trailer lists "
		       "(altered, moved, dropped, repeated or reordered): the "
		       "volume is refused (its frames that opened were read)",
		       v->path);
		im->damaged++;
		return false;
	}
	return true;
}

/* A frame record read into slot s (header fh as opened, not yet
 * checked): refused, held already, or handed to a worker (true). */
static bool take_frame(struct importer *im, struct islot *s,
		       const struct vol *v, const uint8_t *key,
		       const uint8_t *ad, const uint8_t *nonce,
		       const uint8_t *mac, uint32_t len, const uint8_t *fh,
		       uint32_t nframe, uint64_t at, struct fr_frame *f)
{
	const struct fr_manifest *m = &im->pkg.m;
	int fr = fr_frame_unpack(f, fh);

	if (fr < 0 || memcmp(f->pkg, v->h.parcel, FR_HASH_LEN) ||
	    f->index >= m->n_segments ||
	    f->raw_len != m->segments[f->index].length ||
	    len != FR_FRAME_HDR + f->stored_len) {
		uint32_t idx = fr_get32(fh + 24);
		bool ok = frame_authentic(s, key, ad, nonce, mac, len);
		im->refused++;
		if (ok)
			fr_log(FR_LOG_ERROR, "%s: segment %u refused: %s",
			       v->path, idx,
			       fr < 0 ? fr_strerror(fr)
				      : "frame does not match the manifest");
		else
			fr_log(FR_LOG_ERROR,
			       "%s: frame record %u (at byte %llu) refused: %s",
			       v->path, nframe, (unsigned long long)at,
			       fr_strerror(FR_E_FORGED));
		f->index = UINT32_MAX;
		return false;
	}
	/* taken first: a segment taken in this run may be being journaled
	 * by the syncer right now */
	if (im->taken[f->index] || im->pkg.j.have[f->index]) {
		if (!frame_authentic(s, key, ad, nonce, mac, len)) {
			im->refused++;
			fr_log(FR_LOG_ERROR, "%s: segment %u refused: %s",
			       v->path, f->index, fr_strerror(FR_E_FORGED));
			f->index = UINT32_MAX;
			return false;
		}
		im->held++;
		return false;
	}
	im->taken[f->index] = 1;
	s->f = *f;
	s->pkg = &im->pkg;
	s->key = key;
	memcpy(s->ad, ad, FR_PSEAL_AD);
	memcpy(s->nonce, nonce, FR_REC_NONCE);
	memcpy(s->mac, mac, FR_REC_MAC);
	pjob_push(&s->pj, work_unpack, &im->dq);
	return true;
}

/* What the volume held, as far as it could be read (its trailer's word
 * when it had one), for `parcel import`'s report and `status`. */
static void note_volume(struct incoming *in, const struct vol *v,
			const struct fr_vol_trailer *t, bool trailer,
			uint32_t frames, uint32_t first, uint32_t last)
{
	uint32_t k = v->h.volume;

	if (k >= FR_ARRAY_SIZE(in->seen))
		return;
	in->seen[k] = 1;
	in->frames[k] = trailer ? t->frames : frames;
	in->first[k] = trailer ? t->first : first;
	in->last[k] = trailer ? t->last : last;
	if (k > in->n_vol)
		in->n_vol = k;
	if (trailer && (t->flags & FR_VOL_LAST))
		in->total = t->total;
}

/* Import one volume into the open package, opening its records with the
 * parcel's key; records what it held. */
static int import_volume(struct importer *im, struct vol *v, int fd,
			 struct incoming *in, const uint8_t *key)
{
	const struct fr_manifest *m = &im->pkg.m;
	const char *vname = v->path;
	uint32_t max_body = FR_FRAME_HDR + (uint32_t)fr_seg_bound(m->seg_size);
	uint64_t pos = FR_VOL_HDR;
	uint32_t frames = 0, next = 0, head = 0, first = UINT32_MAX, last = 0;
	uint32_t imported0 = im->imported, held0 = im->held;
	uint32_t refused0 = im->refused;
	struct fr_vol_trailer t = {0};
	crypto_generichash_state chain;
	bool trailer = false;
	int rc = 0;

	uint32_t mf_len = (uint32_t)fr_manifest_encoded_size(m);
	uint32_t sl_len = (m->n_segments + 7) / 8;
	struct readahead ra = {0};
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	crypto_generichash_init(&chain, NULL, 0, sizeof(t.chain));
	crypto_generichash_update(&chain, v->vh, FR_VOL_HDR);
	while (!trailer && !im->error) {
		uint8_t rh[FR_REC_HDR], nonce[FR_REC_NONCE], mac[FR_REC_MAC];
		uint8_t ad[FR_PSEAL_AD];
		struct fr_rec_hdr r;
		struct islot *s = &im->slots[next % PSLOTS];

		read_ahead(fd, pos, &ra);

		/* a slot to read into: the oldest job finishes first */
		if (next - head == PSLOTS) {
			imp_wait(im, &im->slots[head % PSLOTS], vname);
			head++;
			continue;
		}
		rc = read_all(fd, rh, sizeof(rh));
		if (rc == FR_E_TRUNCATED) {
			fr_log(FR_LOG_ERROR,
			       "%s is truncated at byte %llu (no trailer): the "
			       "%u frame(s) before that were read",
			       vname, (unsigned long long)pos, frames);
			im->damaged++;
			break;
		}
		if (rc == 0)
			rc = fr_rec_hdr_unpack(&r, rh, FR_MANIFEST_MAX);
		/* every length is known from the manifest: none is trusted */
		if (rc == 0 && (r.type == FR_REC_FRAME ? r.len > max_body
				: r.type == FR_REC_MANIFEST ? r.len != mf_len
				: r.type == FR_REC_SEGLIST ? r.len != sl_len
							    : false))
			rc = FR_E_TOO_LARGE;
		if (rc < 0) {
			fr_log(FR_LOG_ERROR,
			       "%s is damaged at byte %llu (%s): the rest of it "
			       "cannot be read; %u frame(s) were read before",
			       vname, (unsigned long long)pos, fr_strerror(rc),
			       frames);
			im->damaged++;
			break;
		}
		uint8_t *body = r.type == FR_REC_FRAME ? s->in : NULL;
		uint8_t small[FR_TRAILER_LEN];
		if (r.type == FR_REC_TRAILER)
			body = small;
		else if (!body && !(body = malloc(r.len))) {
			rc = -ENOMEM;
			break;
		}
		/* a frame's header goes to the slot, its payload to `in`; the
		 * header is opened (not checked yet) to know the index */
		uint8_t fh[FR_FRAME_HDR];
		rc = read_all(fd, nonce, sizeof(nonce));
		if (rc == 0 && r.type == FR_REC_FRAME) {
			rc = read_all(fd, s->fh, FR_FRAME_HDR);
			memcpy(fh, s->fh, FR_FRAME_HDR);
			fr_pseal_xor(key, nonce, 0, fh, FR_FRAME_HDR);
			/* the index is checked below; a wrong one only
			 * costs the alignment */
			uint32_t idx = fr_get32(fh + 24);
			s->shift = rc == 0 && idx < m->n_segments
					   ? fr_dio_shift(m, idx)
					   : 0;
			if (rc == 0)
				rc = read_all(fd, s->in + s->shift,
					      r.len - FR_FRAME_HDR);
		} else if (rc == 0) {
			rc = read_all(fd, body, r.len);
		}
		if (rc == 0)
			rc = read_all(fd, mac, sizeof(mac));
		if (rc < 0) {
			fr_log(FR_LOG_ERROR,
			       "%s is truncated in the record at byte %llu: the "
			       "%u frame(s) before it were read",
			       vname, (unsigned long long)pos, frames);
			im->damaged++;
			if (body != s->in && body != small)
				free(body);
			break;
		}
		pos += rec_size(r.len);
		fr_pseal_ad(v->vh, rh, ad);
		if (r.type != FR_REC_FRAME) {
			if (!fr_pseal_open(key, nonce, ad, sizeof(ad),
					   &(struct fr_piece){body, r.len}, 1,
					   mac)) {
				fr_log(FR_LOG_ERROR,
				       "%s: its %s record at byte %llu fails "
				       "authentication (%s): the volume is "
				       "refused from there on; the %u "
				       "frame(s) before it were read",
				       vname, rec_name(r.type),
				       (unsigned long long)(pos -
							    rec_size(r.len)),
				       fr_strerror(FR_E_FORGED), frames);
				im->damaged++;
				if (body != small)
					free(body);
				break;
			}
			if (r.type == FR_REC_TRAILER) {
				trailer = trailer_ok(im, v, &chain, body, &t);
				break;
			}
			chain_rec(&chain, rh, nonce, mac);
			free(body);
			continue;
		}
		chain_rec(&chain, rh, nonce, mac);
		frames++;
		struct fr_frame f;
		if (take_frame(im, s, v, key, ad, nonce, mac, r.len, fh,
			       frames - 1, pos - rec_size(r.len), &f))
			next++;
		if (f.index == UINT32_MAX) /* refused */
			continue;
		if (f.index < first)
			first = f.index;
		if (f.index > last)
			last = f.index;
	}
	for (; head < next; head++)
		imp_wait(im, &im->slots[head % PSLOTS], vname);
	imp_sync(im);
	if (rc == -ENOMEM && !im->error) {
		im->error = rc;
		snprintf(im->err, sizeof(im->err), "out of memory");
	}
	note_volume(in, v, &t, trailer, frames, first, last);
	if (trailer && t.frames != frames) {
		fr_log(FR_LOG_ERROR, "%s: holds %u frames, its trailer says %u",
		       vname, frames, t.frames);
		im->damaged++;
	}
	fr_log(FR_LOG_INFO,
	       "%s (volume %u): %u segment(s) imported, %u already held, %u "
	       "refused",
	       vname, v->h.volume, im->imported - imported0, im->held - held0,
	       im->refused - refused0);
	return im->error;
}

/* Volumes of the parcel not imported yet, by number and segments. */
static void report_missing(const struct importer *im, const struct incoming *in,
			   const uint8_t *seglist, FILE *out, bool json)
{
	const struct fr_manifest *m = &im->pkg.m;
	char buf[2048], vols[1024] = "";
	uint32_t n_missing = 0, n_other = 0;
	size_t o = 0;
	uint32_t upto = in->total ? in->total : in->n_vol;

	for (uint32_t k = 1; k <= upto && k < FR_ARRAY_SIZE(in->seen); k++)
		if (!in->seen[k] && o + 24 < sizeof(vols))
			o += (size_t)snprintf(vols + o, sizeof(vols) - o,
					      "%svol-%03u.fpv", o ? ", " : "", k);
	bitmap_ranges(seglist, m->n_segments, im->pkg.j.have, buf, sizeof(buf),
		      &n_missing);
	for (uint32_t i = 0; i < m->n_segments; i++)
		if (!im->pkg.j.have[i] && !((seglist[i / 8] >> (i % 8)) & 1))
			n_other++;
	if (json) {
		char b1[2200], b2[1100];
		fprintf(out,
			"\"missing_volumes\": %s, \"last_volume_seen\": %s, "
			"\"missing_segments\": %s, \"n_missing\": %u, "
			"\"not_in_parcel\": %u",
			fr_json_str(vols, b2, sizeof(b2)),
			in->total ? "true" : "false",
			fr_json_str(buf, b1, sizeof(b1)), n_missing, n_other);
		return;
	}
	if (vols[0] || !in->total)
		fprintf(out, "missing volumes: %s%s%s\n", vols[0] ? vols : "",
			vols[0] && !in->total ? ", and " : "",
			in->total ? ""
				  : "any after the highest seen (the last volume "
				    "has not been imported)");
	if (n_missing)
		fprintf(out, "missing segments of the parcel (%u): %s\n",
			n_missing, buf);
	if (n_other)
		fprintf(out,
			"%u other segment(s) are not in this parcel: they "
			"come over the network\n",
			n_other);
}

/* Nothing to import: the package is complete here already. */
static void say_complete(FILE *out, bool json, const char *id,
			 const char *name)
{
	if (json)
		fprintf(out,
			"{\"parcel\": \"%s\", \"imported\": 0, \"complete\": "
			"true, \"already_complete\": true}\n",
			id);
	else
		fprintf(out,
			"parcel %.12s: package '%s' is already complete here; "
			"nothing to import\n",
			id, name);
}

/* One authentic record of type `type` at fd's offset: its body opened,
 * or NULL. */
static uint8_t *read_record(int fd, const struct vol *v, const uint8_t *key,
			    uint32_t type, uint32_t len)
{
	uint8_t rh[FR_REC_HDR], nonce[FR_REC_NONCE], mac[FR_REC_MAC];
	uint8_t ad[FR_PSEAL_AD], *body;
	struct fr_rec_hdr r;

	if (read_all(fd, rh, sizeof(rh)) < 0 ||
	    fr_rec_hdr_unpack(&r, rh, FR_MANIFEST_MAX) < 0 || r.type != type ||
	    r.len != len || !(body = malloc(len)))
		return NULL;
	fr_pseal_ad(v->vh, rh, ad);
	if (read_all(fd, nonce, sizeof(nonce)) < 0 ||
	    read_all(fd, body, len) < 0 || read_all(fd, mac, sizeof(mac)) < 0 ||
	    !fr_pseal_open(key, nonce, ad, sizeof(ad),
			   &(struct fr_piece){body, len}, 1, mac)) {
		free(body);
		return NULL;
	}
	return body;
}

/*
 * The manifest of volume v and the segment list after it, before the
 * trailer (the manifest's length from the header). *mf NULL when it does
 * not read authentic; *seglist is set only with *mf, and only once.
 */
static void read_manifest(int fd, const struct vol *v, const uint8_t *key,
			  uint8_t **mf, uint32_t *mf_len, uint8_t **seglist)
{
	uint32_t sl_len = (v->h.n_segments + 7) / 8, len = v->h.mf_len;
	uint64_t tail = rec_size(len) + rec_size(sl_len) + TRAILER_REC;
	struct stat st;

	*mf = NULL;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < FR_VOL_HDR + tail)
		return;
	if (lseek(fd, (off_t)((uint64_t)st.st_size - tail), SEEK_SET) < 0 ||
	    !(*mf = read_record(fd, v, key, FR_REC_MANIFEST, len)))
		return;
	*mf_len = len;
	if (!*seglist)
		*seglist = read_record(fd, v, key, FR_REC_SEGLIST, sl_len);
}

/* The key of v's parcel from the account's key, into pkey: false (said,
 * once) when it is not the one that sealed v. */
static bool volume_key(struct vol *v, const struct fr_account *acct,
		       uint8_t pkey[32])
{
	uint8_t check[FR_CHECK_LEN];

	fr_pseal_key(acct->key, v->h.parcel, pkey);
	fr_pseal_check(pkey, check);
	if (sodium_memcmp(check, v->h.check, FR_CHECK_LEN) == 0)
		return true;
	if (!v->wrong_key)
		fr_log(FR_LOG_ERROR,
		       "%s: cannot be opened with the key of account %s: it "
		       "was sealed with another password for %s (the sending "
		       "site's and this site's password files differ): refused",
		       v->path, acct->code, acct->code);
	v->wrong_key = true;
	return false;
}

/* The manifest registered for parcel in (by the network, or an earlier
 * import), for volumes signed by the account that registered it: into
 * *mf and *mf_len, with that account in from. True when that package is
 * complete already (nothing is read then). */
static bool registered_manifest(const struct fr_config *c,
				const struct incoming *in, const struct vol *v0,
				uint8_t **mf, uint32_t *mf_len,
				char from[FR_CODE_MAX + 1])
{
	char path[1400];
	size_t len;
	bool ours = in->pkg[0] && !strcmp(in->from, v0->h.account);

	if (!ours)
		return false;
	if (package_complete(c, in->name, in->pkg))
		return true;
	if (fr_path_fmt(path, sizeof(path), "%s/partial/%s/manifest", c->store,
			partial_of(in)) == 0 &&
	    fr_read_file(path, FR_MANIFEST_MAX, mf, &len) == 0) {
		*mf_len = (uint32_t)len;
		snprintf(from, FR_CODE_MAX + 1, "%s", in->from);
		fr_log(FR_LOG_INFO,
		       "parcel %.12s: no volume given carries a readable "
		       "manifest; using the one registered for it",
		       in->id);
	}
	return false;
}

/* What an import did: its object in the "parcels" array (json; *printed
 * counts them, for the commas), or its summary line and what is still
 * missing. */
static void report_import(const struct importer *im, const struct incoming *in,
			  const uint8_t *seglist, const char *id, bool complete,
			  bool json, FILE *out, unsigned *printed)
{
	const struct fr_store_pkg *pkg = &im->pkg;

	if (json) {
		char b[600];
		fprintf(out,
			"%s{\"parcel\": \"%s\", \"name\": %s, "
			"\"imported\": %u, \"already_held\": %u, \"refused\": %u, "
			"\"damaged_volumes\": %u, \"complete\": %s, \"held\": %u, "
			"\"n_segments\": %u, ",
			(*printed)++ ? ",\n  " : "\n  ", id,
			fr_json_str(pkg->m.name, b, sizeof(b)), im->imported,
			im->held, im->refused, im->damaged,
			complete ? "true" : "false", pkg->j.n_have,
			pkg->m.n_segments);
		report_missing(im, in, seglist, out, true);
		fputc('}', out);
		return;
	}
	fprintf(out,
		"parcel %.12s, package '%s': %u segment(s) imported, %u "
		"already held, %u refused; %u of %u segments held%s\n",
		id, pkg->m.name, im->imported, im->held, im->refused,
		pkg->j.n_have, pkg->m.n_segments, complete ? " - complete" : "");
	if (!complete)
		report_missing(im, in, seglist, out, false);
}

/* Import one parcel's volumes v[0..n); with json, its object goes into
 * the "parcels" array on out (*printed counts them, for the commas). */
/* The manifest (and segment list) of the first volume where it reads
 * authentic, and the account it was sealed for; the volume it came from,
 * or v[0] when none had it (*mf NULL). */
static const struct vol *find_manifest(const struct fr_config *c,
				       struct vol *v, uint32_t n,
				       uint8_t pkey[32], uint8_t **mf,
				       uint32_t *mf_len, uint8_t **seglist,
				       char from[FR_CODE_MAX + 1])
{
	const struct vol *mv = &v[0];

	for (uint32_t k = 0; k < n && !*mf; k++) {
		const struct fr_account *acct =
			fr_config_account(c, v[k].h.account);
		if (!acct || !volume_key(&v[k], acct, pkey))
			continue;
		int fd = open(v[k].path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		read_manifest(fd, &v[k], pkey, mf, mf_len, seglist);
		close(fd);
		mv = &v[k];
		snprintf(from, FR_CODE_MAX + 1, "%s", v[k].h.account);
	}
	return mv;
}

/* Volume k, ready to import: of this package, sealed for the manifest's
 * account, which this site has; its key into pkey and its fd at its
 * first record, or -1 (said, and counted damaged). */
static int volume_fd(struct importer *im, struct vol *vk, const char *from,
		     uint8_t pkey[32])
{
	const struct fr_config *c = im->c;
	const struct fr_account *acct;
	int fd;

	if (vk->h.n_segments != im->pkg.m.n_segments ||
	    vk->h.seg_size != im->pkg.m.seg_size) {
		fr_log(FR_LOG_ERROR, "%s: belongs to another package", vk->path);
		im->damaged++;
		return -1;
	}
	if (strcmp(vk->h.account, from)) {
		fr_log(FR_LOG_ERROR,
		       "%s: sealed for account %s, and the parcel's manifest "
		       "for %s: refused",
		       vk->path, vk->h.account, from);
		im->damaged++;
		return -1;
	}
	acct = fr_config_account(c, vk->h.account);
	if (!acct) {
		fr_log(FR_LOG_ERROR,
		       "%s: sealed for account %s, which '%s' does not have: "
		       "refused",
		       vk->path, vk->h.account, c->path);
		im->damaged++;
		return -1;
	}
	if (!volume_key(vk, acct, pkey)) {
		im->damaged++;
		return -1;
	}
	fd = open(vk->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || lseek(fd, FR_VOL_HDR, SEEK_SET) < 0) {
		fr_log(FR_LOG_ERROR, "cannot read '%s': %s", vk->path,
		       strerror(errno));
		im->damaged++;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The importer's slots: a frame as read (room for its shift, in whole
 * blocks) and as decompressed. */
static int islots_alloc(struct importer *im)
{
	size_t in_cap = (fr_seg_bound(im->pkg.m.seg_size) + 2 * FR_DIO_ALIGN) &
			~(size_t)(FR_DIO_ALIGN - 1);
	size_t out_cap = (im->pkg.m.seg_size + 2 * FR_DIO_ALIGN) &
			 ~(size_t)(FR_DIO_ALIGN - 1);

	for (int i = 0; i < PSLOTS; i++)
		if (!(im->slots[i].in = aligned_alloc(FR_DIO_ALIGN, in_cap)) ||
		    !(im->slots[i].out = aligned_alloc(FR_DIO_ALIGN, out_cap)))
			return -ENOMEM;
	return 0;
}

static int import_parcel(const struct fr_config *c, struct vol *v, uint32_t n,
			 bool json, FILE *out, bool *complete, unsigned *printed)
{
	struct importer im = {.c = c, .dq = {.efd = -1}};
	uint8_t pkey[32];
	struct incoming in;
	uint8_t *mf = NULL, *seglist = NULL;
	uint32_t mf_len = 0;
	char from[FR_CODE_MAX + 1] = "", id[33], err[600];
	int rc = 0, fd = -1;

	*complete = false;
	id_hex(v[0].h.parcel, id);
	/* the volume the manifest came from */
	const struct vol *mv =
		find_manifest(c, v, n, pkey, &mf, &mf_len, &seglist, from);
	/* the medium starts on the first volume's frames while the tree is
	 * made (asked for after the manifest, which it would delay) */
	if ((fd = open(v[0].path, O_RDONLY | O_CLOEXEC)) >= 0) {
		posix_fadvise(fd, 0, (off_t)RA_AHEAD, POSIX_FADV_WILLNEED);
		close(fd);
		fd = -1;
	}
	bool any_fits = false, wrong = false;
	for (uint32_t k = 0; k < n; k++) {
		wrong |= v[k].wrong_key;
		any_fits |= !v[k].wrong_key &&
			    fr_config_account(c, v[k].h.account) != NULL;
	}
	if (!mf && wrong && !any_fits) {
		/* said per volume: nothing of the store is touched */
		fr_log(FR_LOG_ERROR,
		       "parcel %.12s: no volume given opens with its "
		       "account's key: nothing imported",
		       id);
		sodium_memzero(pkey, sizeof(pkey));
		return FR_E_AUTH;
	}
	if (!mf) {
		/* a volume cut short has none (the manifest ends a
		 * volume): the registration, or an earlier import, left it
		 * in the store */
		incoming_load(c, id, &in);
		if (registered_manifest(c, &in, &v[0], &mf, &mf_len, from)) {
			say_complete(out, json, id, in.name);
			*complete = true;
			sodium_memzero(pkey, sizeof(pkey));
			return 0;
		}
		mv = &v[0];
	}
	if (!mf) {
		fr_log(FR_LOG_ERROR,
		       "parcel %.12s: no volume given has a readable, "
		       "authentic manifest",
		       id);
		sodium_memzero(pkey, sizeof(pkey));
		return FR_E_FORGED;
	}
	rc = fr_store_open(c->store, mf, mf_len, from, &im.pkg, err, sizeof(err));
	free(mf);
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "parcel %.12s: %s", id, err);
		free(seglist);
		sodium_memzero(pkey, sizeof(pkey));
		return rc;
	}
	im.open = true;
	if (im.pkg.m.n_segments != mv->h.n_segments ||
	    im.pkg.m.seg_size != mv->h.seg_size) {
		fr_log(FR_LOG_ERROR,
		       "parcel %.12s: its volumes do not match its manifest", id);
		rc = FR_E_BAD_INDEX;
		goto out;
	}
	if (rc == FR_HAVE_COMPLETE) {
		/* by network, or an earlier import */
		char pk[33];
		incoming_load(c, id, &in);
		snprintf(in.name, sizeof(in.name), "%s", im.pkg.m.name);
		id_hex(im.pkg.m.id, pk);
		snprintf(in.pkg, sizeof(in.pkg), "%s", pk);
		id_hex(im.pkg.m.lid, in.partial);
		snprintf(in.from, sizeof(in.from), "%s", from);
		if (in.state != P_RECEIVED)
			in.state = P_SUPERSEDED;
		incoming_save(&in);
		*complete = true;
		say_complete(out, json, id, im.pkg.m.name);
		rc = 0;
		goto out;
	}
	if (!seglist && (seglist = calloc((im.pkg.m.n_segments + 7) / 8, 1)))
		memset(seglist, 0xff, (im.pkg.m.n_segments + 7) / 8);
	incoming_load(c, id, &in);
	snprintf(in.name, sizeof(in.name), "%s", im.pkg.m.name);
	id_hex(im.pkg.m.id, in.pkg);
	id_hex(im.pkg.m.lid, in.partial);
	snprintf(in.from, sizeof(in.from), "%s", from);
	if (in.state != P_RECEIVED)
		in.state = P_IMPORTING;
	im.taken = calloc(im.pkg.m.n_segments + 1, 1);
	if (!seglist || !im.taken || (rc = fr_doneq_init(&im.dq)) < 0 ||
	    (rc = fr_syncer_start(&im.sy, &im.pkg, NULL, NULL, -1)) < 0) {
		rc = rc < 0 ? rc : -ENOMEM;
		goto out;
	}
	if ((rc = islots_alloc(&im)) < 0)
		goto out;

	for (uint32_t k = 0; k < n && !im.error; k++) {
		if ((fd = volume_fd(&im, &v[k], from, pkey)) < 0)
			continue;
		import_volume(&im, &v[k], fd, &in, pkey);
		close(fd);
		incoming_save(&in);
	}
	if (im.error) {
		fr_log(FR_LOG_ERROR, "parcel %.12s: %s", id, im.err);
		rc = im.error;
		goto out;
	}
	if (im.pkg.j.n_have == im.pkg.m.n_segments) {
		rc = fr_store_finalize(&im.pkg, c->store, err, sizeof(err));
		if (rc < 0) {
			fr_log(FR_LOG_ERROR, "cannot complete '%s': %s",
			       im.pkg.m.name, err);
			goto out;
		}
		in.state = P_RECEIVED;
		incoming_save(&in);
		*complete = true;
		fr_log(FR_LOG_INFO,
		       "package '%s' complete and verified -> %s/packages/%s",
		       im.pkg.m.name, c->store, im.pkg.m.name);
	}
	report_import(&im, &in, seglist, id, *complete, json, out, printed);
	rc = im.refused || im.damaged ? FR_E_HASH_MISMATCH : 0;
out:
	for (int i = 0; i < PSLOTS; i++) {
		if (im.slots[i].pj.busy)
			imp_wait(&im, &im.slots[i], "");
		free(im.slots[i].in);
		free(im.slots[i].out);
	}
	if (im.dq.efd >= 0)
		fr_doneq_fini(&im.dq);
	fr_syncer_stop(&im.sy);
	if (im.open)
		fr_store_close(&im.pkg);
	free(im.taken);
	free(seglist);
	sodium_memzero(pkey, sizeof(pkey));
	return rc;
}

/* A volume refused whole, as a JSON object in the list rj (or nothing). */
static void refused_json(FILE *rj, const char *path, const char *why)
{
	char p[FR_ESC_MAX], w[300];

	if (!rj)
		return;
	fprintf(rj, "%s{\"path\": %s, \"error\": %s}", ftell(rj) ? ", " : "",
		fr_json_str(path, p, sizeof(p)), fr_json_str(why, w, sizeof(w)));
}

int fr_parcel_import(const struct fr_config *c, const char *const *paths,
		     unsigned n_paths, bool json, FILE *out)
{
	struct vol *v = NULL;
	uint32_t n = 0, good = 0;
	int rc = 0, worst = 0;
	unsigned printed = 0;
	char *refused = NULL; /* JSON objects of the volumes refused whole */
	size_t refused_len = 0;
	FILE *rj = NULL;

	for (unsigned i = 0; i < n_paths; i++)
		if ((rc = find_volumes(paths[i], 0, &v, &n)) < 0) {
			free(v);
			return rc;
		}
	if (!n) {
		fr_log(FR_LOG_ERROR, "no parcel volume (*.fpv) found in %s%s",
		       paths[0], n_paths > 1 ? " and the others given" : "");
		free(v);
		return -ENOENT;
	}
	if (json && !(rj = open_memstream(&refused, &refused_len))) {
		free(v);
		return -ENOMEM;
	}
	/* read every header first: refuse what is not ours or not a volume */
	for (uint32_t k = 0; k < n; k++) {
		int fd = open(v[k].path, O_RDONLY | O_CLOEXEC);
		int r = fd < 0 ? -errno : read_all(fd, v[k].vh, FR_VOL_HDR);
		if (fd >= 0)
			close(fd);
		if (r == 0)
			r = fr_vol_hdr_unpack(&v[k].h, v[k].vh);
		unsigned ver = r == FR_E_BAD_VERSION ? fr_vol_hdr_version(v[k].vh)
						     : 0;
		if (ver && ver < FR_VOL_VERSION) {
			fr_log(FR_LOG_ERROR,
			       "%s: made by an older ferry (volume format %u, "
			       "not sealed): it is not imported; make the "
			       "parcel again with this ferry ('ferry parcel "
			       "create')",
			       v[k].path, ver);
			refused_json(rj, v[k].path,
				     "made by an older ferry: make the parcel "
				     "again with this one");
			worst = worst ? worst : r;
			continue;
		}
		if (r < 0) {
			fr_log(FR_LOG_ERROR, "%s: not a usable parcel volume: %s",
			       v[k].path, fr_strerror(r));
			refused_json(rj, v[k].path, fr_strerror(r));
			worst = worst ? worst : r;
			continue;
		}
		if (strcmp(v[k].h.to, c->code)) {
			char why[64];
			fr_log(FR_LOG_ERROR,
			       "%s: addressed to site %s, and this is %s: "
			       "refused",
			       v[k].path, v[k].h.to, c->code);
			snprintf(why, sizeof(why), "addressed to site %s",
				 v[k].h.to);
			refused_json(rj, v[k].path, why);
			worst = FR_E_WRONG_SITE;
			continue;
		}
		if (good != k)
			v[good] = v[k];
		good++;
	}
	if (fr_workq_start(c->workers) < 0)
		good = 0;
	qsort(v, good, sizeof(*v), cmp_vol);
	if (json)
		fputs("{\"parcels\": [", out);
	for (uint32_t a = 0; a < good;) {
		uint32_t b = a + 1;
		while (b < good && !memcmp(v[a].h.parcel, v[b].h.parcel, FR_HASH_LEN))
			b++;
		bool complete;
		rc = import_parcel(c, v + a, b - a, json, out, &complete,
				   &printed);
		if (rc < 0 && !worst)
			worst = rc;
		a = b;
	}
	if (json) {
		char e[1100];
		fclose(rj);
		fprintf(out,
			"%s], \"refused_volumes\": [%s], \"ok\": %s, "
			"\"error\": %s}\n",
			printed ? "\n" : "", refused ? refused : "",
			worst ? "false" : "true",
			worst ? fr_json_str(fr_log_last_error()[0]
						    ? fr_log_last_error()
						    : fr_strerror(worst),
					    e, sizeof(e))
			      : "null");
		free(refused);
	}
	free(v);
	return worst;
}

/* ---- list and ship --------------------------------------------------------- */

static int load_all(const struct fr_config *c, struct parcel **out, uint32_t *n)
{
	char dir[1200];
	DIR *d;
	struct dirent *e;

	*out = NULL;
	*n = 0;
	if (parcels_dir(c, dir, sizeof(dir)) < 0 || !(d = opendir(dir)))
		return 0;
	while ((e = readdir(d))) {
		char sub[1300];
		struct parcel p;
		if (e->d_name[0] == '.' ||
		    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, e->d_name) ||
		    parcel_load(sub, &p) < 0)
			continue;
		struct parcel *np = realloc(*out, (*n + 1) * sizeof(*np));
		if (!np)
			break;
		*out = np;
		np[(*n)++] = p;
	}
	closedir(d);
	return 0;
}

/* Register what is not registered, and ask each site for receipts. */
static void catch_up(const struct fr_config *c, struct parcel *ps, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct parcel *p = &ps[i];
		char err[600] = "", path[1300];
		uint8_t *mf, id[FR_HASH_LEN];
		size_t len;
		struct fr_manifest m = {0};
		if (p->registered || !strcmp(p->state, "received") ||
		    fr_unhex(p->id, id, FR_HASH_LEN) < 0 ||
		    fr_path_fmt(path, sizeof(path), "%s/manifest", p->dir) ||
		    fr_read_file(path, FR_MANIFEST_MAX, &mf, &len) < 0)
			continue;
		if (fr_manifest_decode(&m, mf, len) == 0) {
			int r = register_parcel(c, p->site, id, mf, len,
						m.n_segments, NULL, err,
						sizeof(err));
			if (r >= 0) {
				p->registered = 1;
				parcel_save(p);
				fr_log(FR_LOG_INFO, "parcel %.12s registered with %s",
				       p->id, p->site);
			} else {
				fr_log(FR_LOG_WARN,
				       "parcel %.12s: still not registered with "
				       "%s: %s",
				       p->id, p->site, err);
			}
		}
		fr_manifest_fini(&m);
		free(mf);
	}
	/* one query per site, for its parcels not received yet */
	uint8_t(*ids)[FR_HASH_LEN] = malloc((n + 1) * FR_HASH_LEN);
	uint32_t *who = malloc((n + 1) * sizeof(*who));
	uint32_t *st = malloc((n + 1) * sizeof(*st));
	for (uint32_t i = 0; ids && who && st && i < n; i++) {
		uint32_t k = 0, j;
		char err[600] = "";
		for (j = 0; j < i && strcmp(ps[j].site, ps[i].site); j++)
			;
		if (j < i) /* this site was asked already */
			continue;
		for (j = i; j < n; j++)
			if (!strcmp(ps[j].site, ps[i].site) && ps[j].registered &&
			    strcmp(ps[j].state, "received") &&
			    fr_unhex(ps[j].id, ids[k], FR_HASH_LEN) == 0)
				who[k++] = j;
		if (!k)
			continue;
		if (query_parcels(c, ps[i].site, ids, k, st, err, sizeof(err))) {
			fr_log(FR_LOG_WARN, "cannot ask %s about its parcels: %s",
			       ps[i].site, err);
			continue;
		}
		for (uint32_t q = 0; q < k; q++) {
			struct parcel *p = &ps[who[q]];
			const char *ns = st[q] == P_RECEIVED	  ? "received"
					 : st[q] == P_SUPERSEDED ? "not-needed"
								 : NULL;
			if (ns && strcmp(p->state, ns)) {
				snprintf(p->state, sizeof(p->state), "%s", ns);
				if (st[q] == P_RECEIVED)
					p->received = (int64_t)time(NULL);
				parcel_save(p);
			}
		}
	}
	free(ids);
	free(who);
	free(st);
}

int fr_parcel_list(const struct fr_config *c, bool json, bool offline,
		   FILE *out)
{
	struct parcel *ps;
	uint32_t n;

	load_all(c, &ps, &n);
	if (!offline)
		catch_up(c, ps, n);
	if (json)
		fprintf(out, "[");
	else if (n)
		fprintf(out, "%-12s  %-20s  %-6s  %-10s  %7s  %8s  %9s  %s\n",
			"PARCEL", "PACKAGE", "SITE", "STATE", "VOLUMES",
			"SEGMENTS", "SIZE", "CREATED");
	else
		fprintf(out, "no parcels\n");
	for (uint32_t i = 0; i < n; i++) {
		const struct parcel *p = &ps[i];
		char sz[32], when[32], b[600];
		time_t t = (time_t)p->created;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		if (json) {
			fprintf(out,
				"%s{\"parcel\": \"%s\", \"name\": %s, "
				"\"site\": \"%s\", \"state\": \"%s\", "
				"\"registered\": %s, \"volumes\": %u, "
				"\"segments\": %u, \"n_segments\": %u, "
				"\"left_out\": %u, \"bytes\": %llu, "
				"\"created\": %lld, \"shipped\": %lld, "
				"\"received\": %lld}",
				i ? ", " : "", p->id,
				fr_json_str(p->name, b, sizeof(b)), p->site,
				p->state, p->registered ? "true" : "false",
				p->volumes, p->segments, p->n_segments,
				p->left_out, (unsigned long long)p->bytes,
				(long long)p->created, (long long)p->shipped,
				(long long)p->received);
			continue;
		}
		fprintf(out, "%-12.12s  %-20s  %-6s  %-10s  %7u  %8u  %9s  %s%s\n",
			p->id, p->name, p->site, p->state, p->volumes,
			p->segments, fr_human_bytes(p->bytes, sz, sizeof(sz)),
			when, p->registered ? "" : "  (not registered)");
	}
	if (json)
		fprintf(out, "]\n");
	free(ps);
	return 0;
}

int fr_parcel_ship(const struct fr_config *c, const char *which, FILE *out)
{
	struct parcel *ps;
	uint32_t n, hit = 0, k = 0;
	int rc = 0;

	/* the id, or any prefix of it that names one parcel */
	load_all(c, &ps, &n);
	for (uint32_t i = 0; i < n; i++)
		if (which[0] && !strncasecmp(ps[i].id, which, strlen(which))) {
			hit++;
			k = i;
		}
	if (hit != 1) {
		if (!hit)
			fr_log(FR_LOG_ERROR,
			       "no parcel '%s' (see 'ferry parcel list')", which);
		else
			fr_log(FR_LOG_ERROR,
			       "'%s' names %u parcels: give more of the id", which,
			       hit);
		for (uint32_t i = 0; hit > 1 && i < n; i++)
			if (!strncasecmp(ps[i].id, which, strlen(which)))
				fr_log(FR_LOG_ERROR, "  %.12s  '%s' for %s, %s",
				       ps[i].id, ps[i].name, ps[i].site,
				       ps[i].state);
		free(ps);
		return hit ? -EINVAL : -ENOENT;
	}
	struct parcel *p = &ps[k];
	if (!strcmp(p->state, "created")) {
		snprintf(p->state, sizeof(p->state), "shipped");
		p->shipped = (int64_t)time(NULL);
		rc = parcel_save(p);
		if (rc == 0)
			fprintf(out, "parcel %.12s ('%s' for %s) marked shipped\n",
				p->id, p->name, p->site);
	} else if (!strcmp(p->state, "shipped")) {
		fprintf(out, "parcel %.12s was already marked shipped\n", p->id);
	} else {
		fr_log(FR_LOG_ERROR, "parcel %.12s is %s: nothing to ship", p->id,
		       p->state);
		rc = -EINVAL;
	}
	free(ps);
	return rc;
}
