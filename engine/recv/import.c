/*
 * import.c - the destination's side of courier parcels (they are made by
 * out/parcel.c): its record of the parcels it was told to expect, the
 * answers to PARCEL, PARCEL_QUERY and PARCEL_WITHDRAW (serve.c hands them
 * here), and `parcel import`.
 *
 *   import: read volumes front to back -> worker: check each frame's
 *           tag and open it in place (the parcel's key, from the
 *           account's), decompress + XXH3 against the manifest, then
 *           write in place -> the syncer (syncer.c):
 *           syncfs + journal in batches while the next are written ->
 *           finalize once every segment is held, by parcel or network.
 *
 * The destination keeps <store>/incoming/<parcel id> (the parcel's state
 * and the volumes seen); the package itself goes into the store as a
 * network session's would (the same partial package, journal and lock).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recv/fr_recv.h"

#define ISLOTS 4
/* import: segments written but not yet durable, at most (the syncer
 * makes them durable in batches meanwhile) */
#define SYNC_WINDOW 16
#define IN_VOLS 1024 /* volumes of a parcel the destination keeps track of */

static const char *const in_states[] = {"unknown", "expected", "importing",
					"received", "not-needed"};

/* ---- small helpers ---------------------------------------------------- */


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
		fr_hex(m.id, FR_HASH_LEN, hex);
		same = !strcmp(hex, pkg);
	}
	fr_manifest_fini(&m);
	free(mf);
	return same;
}

/* ---- the receiver's side of registration and receipts (serve.c) --------- */

/* The syncer's word for a segment of ours: nothing to tell anyone (the
 * network sessions of the package hear of it from inbound.c). */
static void imp_ack(void *arg, uint32_t seg, uint32_t status)
{
}

static void imp_wake(void *arg)
{
}


int fr_parcel_serve_register(const struct fr_config *c, struct fr_chan *ch,
			     const char *who, const uint8_t *body,
			     uint32_t len)
{
	struct fr_store_pkg pkg;
	struct incoming in;
	char err[512], id[33], pkgid[33];
	/* a moment's arrival: the package may be arriving by network now */
	const struct fr_arrival me = {.ack = imp_ack, .wake = imp_wake,
				      .keeps = true};
	struct fr_inbound *op = NULL;
	int slot = -1, r;

	if (len <= FR_HASH_LEN) {
		fr_send_error(ch, FR_E_PROTOCOL, "PARCEL without a manifest");
		return FR_E_PROTOCOL;
	}
	fr_hex(body, FR_HASH_LEN, id);
	r = fr_inbound_join(c->store, body + FR_HASH_LEN, len - FR_HASH_LEN, who,
			    &me, &op, &slot, &pkg, err, sizeof(err));
	if (r < 0) {
		fr_log(FR_LOG_ERROR, "%s: parcel %.12s: %s", who, id, err);
		fr_send_error(ch, r, err);
		return r;
	}
	incoming_load(c, id, &in);
	fr_hex(pkg.m.id, FR_HASH_LEN, pkgid);
	snprintf(in.name, sizeof(in.name), "%s", pkg.m.name);
	snprintf(in.pkg, sizeof(in.pkg), "%s", pkgid);
	fr_hex(pkg.m.lid, FR_HASH_LEN, in.partial);
	snprintf(in.from, sizeof(in.from), "%s", who);
	if (in.state == FR_PARCEL_UNKNOWN)
		in.state = r == FR_HAVE_COMPLETE ? FR_PARCEL_SUPERSEDED
						 : FR_PARCEL_EXPECTED;
	incoming_save(&in);
	fr_log(FR_LOG_INFO,
	       "%s: parcel %.12s of '%s' registered; %u of %u segments "
	       "already held",
	       who, id, pkg.m.name,
	       r == FR_HAVE_COMPLETE ? pkg.m.n_segments
				     : op ? op->pkg.j.n_have : pkg.j.n_have,
	       pkg.m.n_segments);
	fr_send_have(ch, r, pkg.j.have, pkg.m.n_segments, NULL, 0);
	fr_store_close(&pkg);
	if (op)
		fr_inbound_leave(op, slot);
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
		fr_hex(pid, FR_HASH_LEN, id);
		incoming_load(c, id, &in);
		uint32_t st = (uint32_t)in.state;
		/* only the site that registered it may learn about it */
		if (strcmp(in.from, who))
			st = FR_PARCEL_UNKNOWN;
		else if (st != FR_PARCEL_RECEIVED &&
			 package_complete(c, in.name, in.pkg))
			/* imported in part, the network brought the rest: it
			 * came (and may have brought some); else not needed */
			st = st == FR_PARCEL_IMPORTING ? FR_PARCEL_RECEIVED
						       : FR_PARCEL_SUPERSEDED;
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
			(in.state == FR_PARCEL_EXPECTED ||
			 in.state == FR_PARCEL_IMPORTING);
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
	uint32_t st = FR_PARCEL_UNKNOWN;

	if (len != FR_HASH_LEN) {
		fr_send_error(ch, FR_E_PROTOCOL, "malformed PARCEL_WITHDRAW");
		return FR_E_PROTOCOL;
	}
	fr_hex(body, FR_HASH_LEN, id);
	incoming_load(c, id, &in);
	if (!in.name[0] || strcmp(in.from, who)) {
		/* never registered by this account: nothing to withdraw */
	} else if (in.state == FR_PARCEL_IMPORTING ||
		   in.state == FR_PARCEL_RECEIVED) {
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

/* ---- importing ----------------------------------------------------------- */

/* An import run by the receiver for a client (IMPORT): the client's
 * socket, watched so that a client killed or stopped (Ctrl-C) stops the
 * import as it would have stopped its own; -1 otherwise. */
static __thread int import_client = -1;

static bool client_gone(void)
{
	struct pollfd p = {.fd = import_client, .events = POLLRDHUP};

	return import_client >= 0 && poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

struct islot {
	struct fr_wjob pj; /* first */
	const struct fr_store_pkg *pkg;
	const uint8_t *want;  /* the segment's hash, as the parcel says */
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
	bool second;     /* a network session was receiving its segment:
			  * checked, then written only if it takes the
			  * segment from that session (imp_take) */
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
				    s->want, &s->data);
	/* a package a network sender offered open: its hash is the
	 * parcel's now (this slot's segment alone; TABLE confirms it) */
	uint8_t *h = (uint8_t *)s->pkg->m.segments[s->f.index].hash;
	if (s->result == 0 && fr_hash_unknown(h))
		memcpy(h, s->want, FR_HASH_LEN);
	/* the workers write too: creating and filling many small files
	 * costs system time that one thread would serialise */
	if (s->result == 0 && !s->second)
		s->werr = fr_store_write_segment(s->pkg, s->f.index, s->data,
						 s->werrmsg,
						 sizeof(s->werrmsg));
}

struct importer {
	const struct fr_config *c;
	/* the package, shared with the network sessions receiving it at the
	 * same time (inbound.c): our view of it, our arrival's slot */
	struct fr_store_pkg pkg;
	struct fr_inbound *op;
	int slot;
	bool open;
	uint8_t *phash;          /* the parcel's manifest's segment hashes */
	uint8_t pkg_id[FR_HASH_LEN]; /* and its id: the package's (the
				      * shared open package's may be open) */
	struct islot slots[ISLOTS];
	struct fr_doneq dq;
	uint8_t *taken;          /* per segment: written in this run (1),
				  * or another arrival's to write (2) */
	uint32_t n_added;        /* handed to it since the last imp_sync */
	uint32_t imported, held, refused, damaged;
	int error;
	char err[1600];
	/* the parcel's */
	char id[33];
	char from[FR_CODE_MAX + 1]; /* the account its volumes are sealed for */
	uint8_t pkey[32];
	uint8_t *seglist;           /* the segments it carries */
	bool seglist_unknown;       /* no volume had it (the last one is not
				     * here, or cut): every segment */
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
	int rc = fr_syncer_wait(&im->op->sy, 0);

	imp_sync_failed(im, rc);
	if (rc == 0)
		im->imported += im->n_added;
	im->n_added = 0;
	return rc;
}

/*
 * Slot s's segment was being received by a network session when the
 * parcel's copy was read: the copy, whole and checked, takes it if that
 * session has not written all of it yet, and is written here once the
 * session's writes in flight are over; else it goes, and the session's
 * copy is the one held. True: written (s->werr says how).
 */
static bool imp_take(struct importer *im, struct islot *s, const char *vname)
{
	uint32_t seg = s->f.index;
	int r = FR_IN_WRITING;

	s->second = false;
	for (int i = 0; i < 3 && r == FR_IN_WRITING; i++)
		r = fr_inbound_take(im->op, im->slot, seg, 10000);
	if (r == FR_IN_WRITING) { /* writes stuck: theirs, not ours */
		fr_inbound_unclaim(im->op, im->slot, seg);
		im->taken[seg] = 0;
		fr_log(FR_LOG_WARN,
		       "%s: segment %u not imported: a network session's "
		       "writes to it are still out after 30 s",
		       vname, seg);
		return false;
	}
	if (r != FR_IN_MINE) {
		im->held++;
		im->taken[seg] = 2;
		return false;
	}
	fr_log(FR_LOG_INFO,
	       "%s: segment %u of '%s' was still coming by network; written "
	       "from the parcel",
	       vname, seg, im->pkg.m.name);
	s->werr = fr_store_write_segment(s->pkg, seg, s->data, s->werrmsg,
					 sizeof(s->werrmsg));
	return true;
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
		fr_inbound_unclaim(im->op, im->slot, s->f.index);
		fr_log(FR_LOG_ERROR, "%s: segment %u refused: %s", vname,
		       s->f.index, fr_strerror(s->result));
		return;
	}
	if (s->second && !imp_take(im, s, vname))
		return;
	if ((rc = s->werr) < 0) {
		im->error = rc;
		snprintf(im->err, sizeof(im->err), "segment %u: %s", s->f.index,
			 s->werrmsg);
		return;
	}
	fr_syncer_add(&im->op->sy, s->f.index);
	im->n_added++;
	imp_sync_failed(im, fr_syncer_wait(&im->op->sy, SYNC_WINDOW));
}

static void imp_wait(struct importer *im, struct islot *s, const char *vname)
{
	fr_wjob_wait(&im->dq, &s->pj);
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
	else if (!S_ISREG(st.st_mode)) {
		/* (opening a fifo would wait for a writer forever) */
		fr_log(FR_LOG_WARN, "'%s' is not a regular file: skipped", path);
		return 0;
	}
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
	 * by the syncer right now. A segment a network session is still
	 * receiving is raced: that session may never finish it (its sender
	 * gone), and nobody could ask the parcel for it again. */
	int cl = im->taken[f->index]
		     ? FR_IN_AGAIN
		     : fr_inbound_claim_wait(im->op, im->slot, f->index, 0, true);
	if (cl != FR_IN_MINE && cl != FR_IN_SECOND) {
		if (!frame_authentic(s, key, ad, nonce, mac, len)) {
			im->refused++;
			fr_log(FR_LOG_ERROR, "%s: segment %u refused: %s",
			       v->path, f->index, fr_strerror(FR_E_FORGED));
			f->index = UINT32_MAX;
			return false;
		}
		im->held++;
		if (!im->taken[f->index]) /* a network session brings it */
			im->taken[f->index] = 2;
		return false;
	}
	im->taken[f->index] = 1;
	s->second = cl == FR_IN_SECOND;
	s->f = *f;
	s->pkg = &im->pkg;
	s->want = im->phash + (size_t)f->index * FR_HASH_LEN;
	s->key = key;
	memcpy(s->ad, ad, FR_PSEAL_AD);
	memcpy(s->nonce, nonce, FR_REC_NONCE);
	memcpy(s->mac, mac, FR_REC_MAC);
	fr_wjob_push(&s->pj, work_unpack, &im->dq);
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

/* A volume being read: where, what it held so far, the chain of its
 * records for its trailer; slots read into up to next, waited for up
 * to head. */
struct vread {
	struct importer *im;
	struct vol *v;
	int fd;
	const uint8_t *key;
	uint64_t pos;
	uint32_t frames, next, head, first, last;
	uint32_t max_body, mf_len, sl_len; /* what a record's length may be */
	crypto_generichash_state chain;
	struct fr_vol_trailer t;
	bool trailer; /* read, and whole */
};

/* A record as read: its header, nonce and tag, its associated data. A
 * frame's sealed header is in its slot and its header opened (not yet
 * checked) in fh, its payload at the slot's in + shift; the body of
 * another is at body (malloc'd, or small for a trailer). */
struct vrec {
	struct fr_rec_hdr r;
	uint8_t rh[FR_REC_HDR], nonce[FR_REC_NONCE], mac[FR_REC_MAC];
	uint8_t ad[FR_PSEAL_AD];
	uint8_t fh[FR_FRAME_HDR];
	uint8_t *body;
	uint8_t small[FR_TRAILER_LEN];
};

/* A frame's header into slot s (and opened into x->fh, to know the
 * index), its payload where that segment's bytes line up. */
static int read_frame(struct vread *vr, struct islot *s, struct vrec *x)
{
	const struct fr_manifest *m = &vr->im->pkg.m;
	int rc = read_all(vr->fd, s->fh, FR_FRAME_HDR);

	memcpy(x->fh, s->fh, FR_FRAME_HDR);
	fr_pseal_xor(vr->key, x->nonce, 0, x->fh, FR_FRAME_HDR);
	/* the index is checked later; a wrong one only costs the
	 * alignment */
	uint32_t idx = fr_get32(x->fh + 24);
	s->shift = rc == 0 && idx < m->n_segments ? fr_dio_shift(m, idx) : 0;
	if (rc == 0)
		rc = read_all(vr->fd, s->in + s->shift,
			      x->r.len - FR_FRAME_HDR);
	return rc;
}

/* The volume's next record into x, a frame's into slot s: 0, or a
 * negative code when the volume cannot be read on (said and counted
 * damaged, but for -ENOMEM). */
static int read_rec(struct vread *vr, struct islot *s, struct vrec *x)
{
	struct importer *im = vr->im;
	const char *vname = vr->v->path;
	int rc = read_all(vr->fd, x->rh, sizeof(x->rh));

	if (rc == FR_E_TRUNCATED) {
		fr_log(FR_LOG_ERROR,
		       "%s is truncated at byte %llu (no trailer): the "
		       "%u frame(s) before that were read",
		       vname, (unsigned long long)vr->pos, vr->frames);
		im->damaged++;
		return rc;
	}
	if (rc == 0)
		rc = fr_rec_hdr_unpack(&x->r, x->rh, FR_MANIFEST_MAX);
	/* every length is known from the manifest: none is trusted */
	if (rc == 0 &&
	    (x->r.type == FR_REC_FRAME      ? x->r.len > vr->max_body
	     : x->r.type == FR_REC_MANIFEST ? x->r.len != vr->mf_len
	     : x->r.type == FR_REC_SEGLIST  ? x->r.len != vr->sl_len
					    : false))
		rc = FR_E_TOO_LARGE;
	if (rc < 0) {
		fr_log(FR_LOG_ERROR,
		       "%s is damaged at byte %llu (%s): the rest of it "
		       "cannot be read; %u frame(s) were read before",
		       vname, (unsigned long long)vr->pos, fr_strerror(rc),
		       vr->frames);
		im->damaged++;
		return rc;
	}
	x->body = x->r.type == FR_REC_FRAME ? s->in : NULL;
	if (x->r.type == FR_REC_TRAILER)
		x->body = x->small;
	else if (!x->body && !(x->body = malloc(x->r.len)))
		return -ENOMEM;
	rc = read_all(vr->fd, x->nonce, sizeof(x->nonce));
	if (rc == 0 && x->r.type == FR_REC_FRAME)
		rc = read_frame(vr, s, x);
	else if (rc == 0)
		rc = read_all(vr->fd, x->body, x->r.len);
	if (rc == 0)
		rc = read_all(vr->fd, x->mac, sizeof(x->mac));
	if (rc < 0) {
		fr_log(FR_LOG_ERROR,
		       "%s is truncated in the record at byte %llu: the "
		       "%u frame(s) before it were read",
		       vname, (unsigned long long)vr->pos, vr->frames);
		im->damaged++;
		if (x->body != s->in && x->body != x->small)
			free(x->body);
		return rc;
	}
	vr->pos += fr_pseal_rec_size(x->r.len);
	fr_pseal_ad(vr->v->vh, x->rh, x->ad);
	return 0;
}

/* A manifest, segment list or trailer record, opened and chained: true
 * when the volume ends here (its trailer, or a record that does not
 * open: the volume is refused from there on). */
static bool open_rec(struct vread *vr, struct vrec *x)
{
	if (!fr_pseal_open(vr->key, x->nonce, x->ad, sizeof(x->ad),
			   &(struct fr_piece){x->body, x->r.len}, 1, x->mac)) {
		fr_log(FR_LOG_ERROR,
		       "%s: its %s record at byte %llu fails authentication "
		       "(%s): the volume is refused from there on; the %u "
		       "frame(s) before it were read",
		       vr->v->path, rec_name(x->r.type),
		       (unsigned long long)(vr->pos -
					    fr_pseal_rec_size(x->r.len)),
		       fr_strerror(FR_E_FORGED), vr->frames);
		vr->im->damaged++;
		if (x->body != x->small)
			free(x->body);
		return true;
	}
	if (x->r.type == FR_REC_TRAILER) {
		vr->trailer = trailer_ok(vr->im, vr->v, &vr->chain, x->body,
					 &vr->t);
		return true;
	}
	chain_rec(&vr->chain, x->rh, x->nonce, x->mac);
	free(x->body);
	return false;
}

/* A frame record, chained and counted: handed to a worker in slot s
 * unless refused or held already. */
static void frame_rec(struct vread *vr, struct islot *s, const struct vrec *x)
{
	struct fr_frame f;

	chain_rec(&vr->chain, x->rh, x->nonce, x->mac);
	vr->frames++;
	if (take_frame(vr->im, s, vr->v, vr->key, x->ad, x->nonce, x->mac,
		       x->r.len, x->fh, vr->frames - 1,
		       vr->pos - fr_pseal_rec_size(x->r.len), &f))
		vr->next++;
	if (f.index == UINT32_MAX) /* refused */
		return;
	if (f.index < vr->first)
		vr->first = f.index;
	if (f.index > vr->last)
		vr->last = f.index;
}

/* Import one volume into the open package, opening its records with the
 * parcel's key; records what it held. */
static int import_volume(struct importer *im, struct vol *v, int fd,
			 struct incoming *in, const uint8_t *key)
{
	const struct fr_manifest *m = &im->pkg.m;
	const char *vname = v->path;
	struct vread vr = {
		.im = im, .v = v, .fd = fd, .key = key, .pos = FR_VOL_HDR,
		.first = UINT32_MAX,
		.max_body = FR_FRAME_HDR + (uint32_t)fr_seg_bound(m->seg_size),
		.mf_len = (uint32_t)fr_manifest_encoded_size(m),
		.sl_len = (m->n_segments + 7) / 8,
	};
	uint32_t imported0 = im->imported, held0 = im->held;
	uint32_t refused0 = im->refused;
	struct readahead ra = {0};
	int rc = 0;

	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	crypto_generichash_init(&vr.chain, NULL, 0, sizeof(vr.t.chain));
	crypto_generichash_update(&vr.chain, v->vh, FR_VOL_HDR);
	while (!vr.trailer && !im->error) {
		struct islot *s = &im->slots[vr.next % ISLOTS];
		struct vrec x;

		if (client_gone()) {
			im->error = -ECANCELED;
			snprintf(im->err, sizeof(im->err),
				 "the client that asked for the import is "
				 "gone: stopped, resumable");
			break;
		}
		read_ahead(fd, vr.pos, &ra);
		/* a slot to read into: the oldest job finishes first */
		if (vr.next - vr.head == ISLOTS) {
			imp_wait(im, &im->slots[vr.head % ISLOTS], vname);
			vr.head++;
			continue;
		}
		if ((rc = read_rec(&vr, s, &x)) < 0)
			break;
		if (x.r.type != FR_REC_FRAME) {
			if (open_rec(&vr, &x))
				break;
			continue;
		}
		frame_rec(&vr, s, &x);
	}
	for (; vr.head < vr.next; vr.head++)
		imp_wait(im, &im->slots[vr.head % ISLOTS], vname);
	imp_sync(im);
	if (rc == -ENOMEM && !im->error) {
		im->error = rc;
		snprintf(im->err, sizeof(im->err), "out of memory");
	}
	note_volume(in, v, &vr.t, vr.trailer, vr.frames, vr.first, vr.last);
	if (vr.trailer && vr.t.frames != vr.frames) {
		fr_log(FR_LOG_ERROR, "%s: holds %u frames, its trailer says %u",
		       vname, vr.frames, vr.t.frames);
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
static void fill_missing(const struct importer *im, const struct incoming *in,
			 const uint8_t *seglist, struct fr_import_parcel *ip)
{
	const struct fr_manifest *m = &im->pkg.m;
	size_t o = 0;
	uint32_t upto = in->total ? in->total : in->n_vol;
	char *vols = ip->missing_volumes;
	size_t cap = sizeof(ip->missing_volumes);

	vols[0] = '\0';
	for (uint32_t k = 1; k <= upto && k < FR_ARRAY_SIZE(in->seen); k++)
		if (!in->seen[k] && o + 24 < cap)
			o += (size_t)snprintf(vols + o, cap - o,
					      "%svol-%03u.fpv", o ? ", " : "", k);
	ip->last_volume_seen = in->total != 0;
	ip->n_missing = ip->not_in_parcel = 0;
	ip->missing_segments[0] = '\0';
	/* which segments are the parcel's is in its last volume: without
	 * it, the missing volumes say what is missing */
	if (im->seglist_unknown)
		return;
	/* not missing: held, or left to the session that brings it now */
	uint8_t *there = malloc(m->n_segments + 1);
	if (there)
		for (uint32_t i = 0; i < m->n_segments; i++)
			there[i] = im->pkg.j.have[i] || im->taken[i] == 2;
	bitmap_ranges(seglist, m->n_segments, there ? there : im->pkg.j.have,
		      ip->missing_segments, sizeof(ip->missing_segments),
		      &ip->n_missing);
	free(there);
	ip->not_in_parcel = 0;
	for (uint32_t i = 0; i < m->n_segments; i++)
		if (!im->pkg.j.have[i] && !((seglist[i / 8] >> (i % 8)) & 1))
			ip->not_in_parcel++;
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
	uint64_t tail = fr_pseal_rec_size(len) + fr_pseal_rec_size(sl_len) +
			fr_pseal_rec_size(FR_TRAILER_LEN);
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

/* What an import did with its parcel, and what is still missing. */
static void fill_import(const struct importer *im, const struct incoming *in,
			const uint8_t *seglist, bool complete,
			struct fr_import_parcel *ip)
{
	const struct fr_store_pkg *pkg = im->op ? &im->op->pkg : &im->pkg;

	snprintf(ip->name, sizeof(ip->name), "%s", pkg->m.name);
	ip->imported = im->imported;
	ip->held = im->held;
	ip->refused = im->refused;
	ip->damaged = im->damaged;
	ip->complete = complete;
	ip->n_have = pkg->j.n_have;
	ip->n_segments = pkg->m.n_segments;
	fill_missing(im, in, seglist, ip);
}

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

	for (int i = 0; i < ISLOTS; i++)
		if (!(im->slots[i].in = aligned_alloc(FR_DIO_ALIGN, in_cap)) ||
		    !(im->slots[i].out = aligned_alloc(FR_DIO_ALIGN, out_cap)))
			return -ENOMEM;
	return 0;
}

/*
 * The parcel's manifest into *mf and *mf_len, and into im its segment
 * list, the account it was sealed for and the parcel's key; *mv the
 * volume it came from. 0; 1 when the package is complete here already
 * (in names it); or a negative code, said (nothing of the store touched).
 */
static int parcel_manifest(struct importer *im, struct vol *v, uint32_t n,
			   uint8_t **mf, uint32_t *mf_len,
			   const struct vol **mv, struct incoming *in)
{
	const struct fr_config *c = im->c;
	int fd;

	*mv = find_manifest(c, v, n, im->pkey, mf, mf_len, &im->seglist,
			    im->from);
	/* the medium starts on the first volume's frames while the tree is
	 * made (asked for after the manifest, which it would delay) */
	if ((fd = open(v[0].path, O_RDONLY | O_CLOEXEC)) >= 0) {
		posix_fadvise(fd, 0, (off_t)RA_AHEAD, POSIX_FADV_WILLNEED);
		close(fd);
	}
	bool any_fits = false, wrong = false;
	for (uint32_t k = 0; k < n; k++) {
		wrong |= v[k].wrong_key;
		any_fits |= !v[k].wrong_key &&
			    fr_config_account(c, v[k].h.account) != NULL;
	}
	if (!*mf && wrong && !any_fits) {
		/* said per volume: nothing of the store is touched */
		fr_log(FR_LOG_ERROR,
		       "parcel %.12s: no volume given opens with its "
		       "account's key: nothing imported",
		       im->id);
		return FR_E_AUTH;
	}
	if (!*mf) {
		/* a volume cut short has none (the manifest ends a
		 * volume): the registration, or an earlier import, left it
		 * in the store */
		incoming_load(c, im->id, in);
		if (registered_manifest(c, in, &v[0], mf, mf_len, im->from))
			return 1;
		*mv = &v[0];
	}
	if (!*mf) {
		fr_log(FR_LOG_ERROR,
		       "parcel %.12s: no volume given has a readable, "
		       "authentic manifest",
		       im->id);
		return FR_E_FORGED;
	}
	return 0;
}

/* The destination's record of the parcel, as the open package and the
 * account of its volumes say; its state is the caller's. */
static void incoming_fill(struct incoming *in, const struct importer *im)
{
	incoming_load(im->c, im->id, in);
	snprintf(in->name, sizeof(in->name), "%s", im->pkg.m.name);
	fr_hex(im->pkg_id, FR_HASH_LEN, in->pkg);
	fr_hex(im->pkg.m.lid, FR_HASH_LEN, in->partial);
	snprintf(in->from, sizeof(in->from), "%s", im->from);
}

/* ---- the import as an arrival of the package (inbound.c) ------------------ */

/*
 * Open the parcel's package, or join the network sessions receiving it
 * now: they stop before sending what the parcel brings (its segments
 * are acknowledged to them as they are journaled). FR_HAVE_* or an error.
 */
static int imp_join(struct importer *im, const uint8_t *mf, uint32_t len,
		    char *err, size_t cap)
{
	const struct fr_arrival me = {.ack = imp_ack,
				      .wake = imp_wake,
				      .arg = im,
				      .announce = true,
				      .whole = true};
	struct fr_manifest m;
	int rc = fr_manifest_decode(&m, mf, len);

	if (rc < 0) {
		snprintf(err, cap, "manifest refused: %s", fr_strerror(rc));
		return rc;
	}
	memcpy(im->pkg_id, m.id, FR_HASH_LEN);
	im->phash = malloc((size_t)m.n_segments * FR_HASH_LEN + 1);
	for (uint32_t i = 0; im->phash && i < m.n_segments; i++)
		memcpy(im->phash + (size_t)i * FR_HASH_LEN, m.segments[i].hash,
		       FR_HASH_LEN);
	fr_manifest_fini(&m);
	if (!im->phash)
		return -ENOMEM;
	im->slot = -1;
	rc = fr_inbound_join(im->c->store, mf, len, im->from, &me, &im->op,
			     &im->slot, &im->pkg, err, cap);
	if (rc == FR_HAVE_COMPLETE)
		im->op = NULL;
	return rc;
}

/* Every volume of the parcel has been imported (the last one seen). */
static bool all_volumes(const struct incoming *in)
{
	if (!in->total || in->total >= IN_VOLS)
		return false;
	for (uint32_t k = 1; k <= in->total; k++)
		if (!in->seen[k])
			return false;
	return true;
}

/* Every segment is here: settled by the parcel's table (a package a
 * network sender offered open), verified and moved into place. */
static int imp_complete(struct importer *im, char *err, size_t cap)
{
	struct fr_store_pkg *p = &im->op->pkg;
	int rc = 0;

	if (p->m.open)
		rc = fr_store_settle(p, im->phash,
				     p->m.n_segments * FR_HASH_LEN, err, cap);
	if (rc == FR_HAVE_COMPLETE) /* the package in place: nothing moves */
		fr_store_discard(p), rc = 0;
	else if (rc == 0)
		rc = fr_store_finalize(p, im->c->store, err, cap);
	fr_inbound_finish_end(im->op, rc == 0);
	return rc;
}

/* What the import of the open package needs: the segment list (every
 * segment, when no volume had one), the segments taken, the done queue,
 * the syncer, the slots. */
static int importer_start(struct importer *im)
{
	uint32_t sl_len = (im->pkg.m.n_segments + 7) / 8;
	int rc = 0;

	if (!im->seglist && (im->seglist = calloc(sl_len, 1))) {
		memset(im->seglist, 0xff, sl_len);
		im->seglist_unknown = true;
	}
	im->taken = calloc(im->pkg.m.n_segments + 1, 1);
	if (!im->seglist || !im->taken || (rc = fr_doneq_init(&im->dq)) < 0)
		return rc < 0 ? rc : -ENOMEM;
	return islots_alloc(im);
}

/* Every volume of v[0..n) that fits into the open package, its record
 * kept in in; the package finalized once it is whole (*complete). */
static int import_volumes(struct importer *im, struct vol *v, uint32_t n,
			  struct incoming *in, bool *complete)
{
	const struct fr_config *c = im->c;
	char err[600];
	int rc, fd;

	for (uint32_t k = 0; k < n && !im->error; k++) {
		if ((fd = volume_fd(im, &v[k], im->from, im->pkey)) < 0)
			continue;
		import_volume(im, &v[k], fd, in, im->pkey);
		close(fd);
		incoming_save(in);
	}
	if (im->error) {
		fr_log(FR_LOG_ERROR, "parcel %.12s: %s", im->id, im->err);
		return im->error;
	}
	if (im->op->pkg.j.n_have != im->pkg.m.n_segments) {
		if (all_volumes(in) && !im->refused && !im->damaged) {
			/* it brought all it had; the network brings the rest:
			 * received, as its receipt says */
			in->state = FR_PARCEL_RECEIVED;
			incoming_save(in);
		}
		return 0;
	}
	if (!fr_inbound_finish_begin(im->op)) {
		/* a network session completes it (its END came) */
		if (!fr_inbound_finish_wait(im->op))
			return 0;
	} else if ((rc = imp_complete(im, err, sizeof(err))) < 0) {
		fr_log(FR_LOG_ERROR, "cannot complete '%s': %s", im->pkg.m.name,
		       err);
		return rc;
	}
	in->state = FR_PARCEL_RECEIVED;
	incoming_save(in);
	*complete = true;
	fr_log(FR_LOG_INFO,
	       "package '%s' complete and verified -> %s/packages/%s",
	       im->pkg.m.name, c->store, im->pkg.m.name);
	return 0;
}

static void importer_fini(struct importer *im)
{
	for (int i = 0; i < ISLOTS; i++) {
		if (im->slots[i].pj.busy)
			imp_wait(im, &im->slots[i], "");
		free(im->slots[i].in);
		free(im->slots[i].out);
	}
	if (im->dq.efd >= 0)
		fr_doneq_fini(&im->dq);
	if (im->op)
		imp_sync(im);
	if (im->open)
		fr_store_close(&im->pkg);
	if (im->op)
		fr_inbound_leave(im->op, im->slot);
	free(im->phash);
	free(im->taken);
	free(im->seglist);
	sodium_memzero(im->pkey, sizeof(im->pkey));
}

/* Import one parcel's volumes v[0..n): what it did in *ip. */
/*
 * Is another version of the parcel's package in place, put there after
 * the parcel was made, or in the same second (a later send, or a newer
 * parcel)? Then the parcel
 * is stale: importing it would roll the package back. It is marked
 * not-needed and nothing of the store is touched.
 */
static bool superseded(const struct fr_config *c, const struct importer *im,
		       const uint8_t *mf, uint32_t mf_len, const struct vol *mv,
		       struct fr_import_parcel *ip)
{
	struct fr_manifest m = {0}, placed = {0};
	char path[1400];
	uint8_t *pm = NULL;
	size_t pm_len;
	struct stat st;
	bool newer = false;

	if (fr_manifest_decode(&m, mf, mf_len) < 0)
		return false;
	if (fr_path_fmt(path, sizeof(path), "%s/manifests/%s", c->store,
			m.name) == 0 &&
	    /* (the same second counts as after: a parcel is made in
	     * seconds, and the doubt goes to what is in place) */
	    stat(path, &st) == 0 && st.st_mtime >= mv->h.created &&
	    fr_read_file(path, FR_MANIFEST_MAX, &pm, &pm_len) == 0 &&
	    fr_manifest_decode(&placed, pm, pm_len) == 0 &&
	    memcmp(placed.id, m.id, FR_HASH_LEN) != 0)
		newer = true;
	if (newer) {
		char ep[FR_ESC_MAX], made[32], at[32];
		struct incoming in;
		fr_log(FR_LOG_INFO,
		       "parcel %.12s: '%s' in place here is a newer version "
		       "(placed %s, after the parcel was made %s): the parcel "
		       "is stale and not imported",
		       im->id, fr_esc(m.name, ep, sizeof(ep)),
		       fr_time_text((int64_t)st.st_mtime, at, sizeof(at)),
		       fr_time_text(mv->h.created, made, sizeof(made)));
		incoming_load(c, im->id, &in);
		if (!in.name[0])
			snprintf(in.name, sizeof(in.name), "%s", m.name);
		if (in.state != FR_PARCEL_RECEIVED) {
			in.state = FR_PARCEL_SUPERSEDED;
			incoming_save(&in);
		}
		snprintf(ip->name, sizeof(ip->name), "%s", m.name);
		ip->superseded = true;
		ip->placed = (int64_t)st.st_mtime;
		ip->made = mv->h.created;
	}
	free(pm);
	fr_manifest_fini(&placed);
	fr_manifest_fini(&m);
	return newer;
}

static int import_parcel(const struct fr_config *c, struct vol *v, uint32_t n,
			 struct fr_import_parcel *ip)
{
	struct importer im = {.c = c, .dq = {.efd = -1}};
	struct incoming in;
	const struct vol *mv;
	uint8_t *mf = NULL;
	uint32_t mf_len = 0;
	char err[600];
	int rc;

	fr_hex(v[0].h.parcel, FR_HASH_LEN, im.id);
	snprintf(ip->id, sizeof(ip->id), "%s", im.id);
	rc = parcel_manifest(&im, v, n, &mf, &mf_len, &mv, &in);
	if (rc > 0) {
		snprintf(ip->name, sizeof(ip->name), "%s", in.name);
		ip->already_complete = ip->complete = true;
		rc = 0;
	} else if (rc == 0 && superseded(c, &im, mf, mf_len, mv, ip)) {
		free(mf);
		sodium_memzero(im.pkey, sizeof(im.pkey));
		free(im.seglist);
		return 0;
	} else if (rc == 0) {
		rc = imp_join(&im, mf, mf_len, err, sizeof(err));
		free(mf);
		if (rc < 0)
			fr_log(FR_LOG_ERROR, "parcel %.12s: %s", im.id, err);
		im.open = rc >= 0;
	}
	if (!im.open) {
		free(im.phash);
		free(im.seglist);
		sodium_memzero(im.pkey, sizeof(im.pkey));
		return rc;
	}
	if (im.pkg.m.n_segments != mv->h.n_segments ||
	    im.pkg.m.seg_size != mv->h.seg_size) {
		fr_log(FR_LOG_ERROR,
		       "parcel %.12s: its volumes do not match its manifest",
		       im.id);
		rc = FR_E_BAD_INDEX;
	} else if (rc == FR_HAVE_COMPLETE) {
		/* by network, or an earlier import */
		incoming_fill(&in, &im);
		if (in.state != FR_PARCEL_RECEIVED)
			in.state = FR_PARCEL_SUPERSEDED;
		incoming_save(&in);
		snprintf(ip->name, sizeof(ip->name), "%s", im.pkg.m.name);
		ip->already_complete = ip->complete = true;
		rc = 0;
	} else {
		incoming_fill(&in, &im);
		if (in.state != FR_PARCEL_RECEIVED)
			in.state = FR_PARCEL_IMPORTING;
		bool complete = false;
		if ((rc = importer_start(&im)) == 0 &&
		    (rc = import_volumes(&im, v, n, &in, &complete)) == 0) {
			fill_import(&im, &in, im.seglist, complete, ip);
			rc = im.refused || im.damaged ? FR_E_HASH_MISMATCH : 0;
		}
	}
	importer_fini(&im);
	return rc;
}

/* A volume refused whole, added to the result. */
static void refused_add(struct fr_import_result *res, const char *path,
			const char *why)
{
	struct fr_import_refused *n =
		realloc(res->refused, (res->n_refused + 1) * sizeof(*n));

	if (!n)
		return;
	res->refused = n;
	snprintf(n[res->n_refused].path, sizeof(n->path), "%s", path);
	snprintf(n[res->n_refused].why, sizeof(n->why), "%s", why);
	res->n_refused++;
}

/* Every volume's header read first: what is not a volume, is of an older
 * format or is addressed to another site is refused (said, in res, and
 * the first such code in *worst), the others kept at the front of v.
 * Returns how many are kept. */
static uint32_t keep_ours(const struct fr_config *c, struct vol *v,
			  uint32_t n, struct fr_import_result *res, int *worst)
{
	uint32_t good = 0;

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
			refused_add(res, v[k].path,
				     "made by an older ferry: make the parcel "
				     "again with this one");
			*worst = *worst ? *worst : r;
			continue;
		}
		if (r < 0) {
			fr_log(FR_LOG_ERROR, "%s: not a usable parcel volume: %s",
			       v[k].path, fr_strerror(r));
			refused_add(res, v[k].path, fr_strerror(r));
			*worst = *worst ? *worst : r;
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
			refused_add(res, v[k].path, why);
			*worst = FR_E_WRONG_SITE;
			continue;
		}
		if (good != k)
			v[good] = v[k];
		good++;
	}
	return good;
}

/* One parcel more in the result: its slot, zeroed (NULL: no memory). */
static struct fr_import_parcel *parcel_add(struct fr_import_result *res)
{
	struct fr_import_parcel *n =
		realloc(res->parcels, (res->n_parcels + 1) * sizeof(*n));

	if (!n)
		return NULL;
	res->parcels = n;
	memset(&n[res->n_parcels], 0, sizeof(*n));
	return &n[res->n_parcels++];
}

static int import_here(const struct fr_config *c, const char *const *paths,
		       unsigned n_paths, struct fr_import_result *res)
{
	struct vol *v = NULL;
	uint32_t n = 0, good = 0;
	int rc = 0, worst = 0;

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
	good = keep_ours(c, v, n, res, &worst);
	if (fr_workq_start(c->workers) < 0)
		good = 0;
	qsort(v, good, sizeof(*v), cmp_vol);
	for (uint32_t a = 0; a < good;) {
		uint32_t b = a + 1;
		while (b < good && !memcmp(v[a].h.parcel, v[b].h.parcel, FR_HASH_LEN))
			b++;
		struct fr_import_parcel *ip = parcel_add(res);
		rc = ip ? import_parcel(c, v + a, b - a, ip) : -ENOMEM;
		if (rc < 0 && !worst)
			worst = rc;
		if (ip && !ip->name[0])
			res->n_parcels--; /* it failed before it began: said */
		a = b;
	}
	free(v);
	return worst;
}

void fr_import_result_fini(struct fr_import_result *r)
{
	free(r->parcels);
	free(r->refused);
	memset(r, 0, sizeof(*r));
}

/* ---- an import run by the receiver that is running ------------------------ */

/*
 * While `ferry serve` runs, a package may be arriving by network when its
 * parcel comes: the import must then join that package in the receiver's
 * process (inbound.c), so `parcel import` asks the running receiver to do
 * it (IMPORT, from this machine only, as one of the site's accounts) and
 * shows what it says. With no receiver listening, it imports here.
 */
#define IMPORT_CONNECT_MS 1000

/* The receiver's listen address as seen from this machine. */
static void local_listen(const struct fr_config *c, char *out, size_t cap)
{
	const char *port = strrchr(c->listen, ':');

	if ((c->listen[0] == ':' || !strncmp(c->listen, "0.0.0.0:", 8)) &&
	    port) /* every address: this machine's is loopback */
		snprintf(out, cap, "127.0.0.1%s", port);
	else if (!strncmp(c->listen, "[::]:", 5) && port)
		snprintf(out, cap, "[::1]%s", port);
	else
		snprintf(out, cap, "%s", c->listen);
}

/* IMPORT's body: flags (2: the result as a record; a receiver before it
 * answered text, 1: as JSON), then each path (absolute), NUL-ended. */
#define IMPORT_RECORD 2
static uint8_t *import_req(const char *const *paths, unsigned n, uint32_t *len)
{
	size_t cap = 1;
	char abs[PATH_MAX];

	for (unsigned i = 0; i < n; i++)
		cap += PATH_MAX + 1;
	uint8_t *b = malloc(cap), *at = b;
	if (!b)
		return NULL;
	*at++ = IMPORT_RECORD;
	for (unsigned i = 0; i < n; i++) {
		const char *p = realpath(paths[i], abs) ? abs : paths[i];
		size_t l = strlen(p) + 1;
		memcpy(at, p, l);
		at += l;
	}
	*len = (uint32_t)(at - b);
	return b;
}

/*
 * The result as IMPORT_DONE carries it (PROTOCOL.md): counts big-endian,
 * strings as a 4-byte length and their bytes. A growing buffer; an
 * allocation that fails marks it, and the answer is then an error.
 */
struct rbuf {
	uint8_t *b;
	size_t len, cap;
	bool bad;
};

static void put_bytes(struct rbuf *r, const void *p, size_t n)
{
	if (r->bad)
		return;
	if (r->len + n > r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 4096;
		while (nc < r->len + n)
			nc *= 2;
		uint8_t *nb = realloc(r->b, nc);
		if (!nb) {
			r->bad = true;
			return;
		}
		r->b = nb;
		r->cap = nc;
	}
	memcpy(r->b + r->len, p, n);
	r->len += n;
}

static void put_u32(struct rbuf *r, uint32_t v)
{
	uint8_t b[4];

	fr_put32(b, v);
	put_bytes(r, b, 4);
}

static void put_str(struct rbuf *r, const char *s)
{
	put_u32(r, (uint32_t)strlen(s));
	put_bytes(r, s, strlen(s));
}

static void result_encode(const struct fr_import_result *res, struct rbuf *r)
{
	put_u32(r, res->n_parcels);
	put_u32(r, res->n_refused);
	put_u32(r, (uint32_t)res->error);
	put_str(r, res->message);
	for (unsigned i = 0; i < res->n_parcels; i++) {
		const struct fr_import_parcel *p = &res->parcels[i];
		put_str(r, p->id);
		put_str(r, p->name);
		put_u32(r, (uint32_t)p->already_complete | (uint32_t)p->complete << 1 |
				   (uint32_t)p->last_volume_seen << 2 |
				   (uint32_t)p->superseded << 3);
		put_u32(r, (uint32_t)p->placed);
		put_u32(r, (uint32_t)p->made);
		put_u32(r, p->imported);
		put_u32(r, p->held);
		put_u32(r, p->refused);
		put_u32(r, p->damaged);
		put_u32(r, p->n_have);
		put_u32(r, p->n_segments);
		put_u32(r, p->n_missing);
		put_u32(r, p->not_in_parcel);
		put_str(r, p->missing_volumes);
		put_str(r, p->missing_segments);
	}
	for (unsigned i = 0; i < res->n_refused; i++) {
		put_str(r, res->refused[i].path);
		put_str(r, res->refused[i].why);
	}
}

/* Reading it back: every field checked against what is left. */
struct rget {
	const uint8_t *b;
	uint32_t len, at;
	bool bad;
};

static uint32_t get_u32(struct rget *g)
{
	if (g->bad || g->len - g->at < 4) {
		g->bad = true;
		return 0;
	}
	g->at += 4;
	return fr_get32(g->b + g->at - 4);
}

/* A string into out (cap bytes, cut to fit; a NUL in it is refused). */
static void get_str(struct rget *g, char *out, size_t cap)
{
	uint32_t n = get_u32(g);

	out[0] = '\0';
	if (g->bad || n > g->len - g->at || memchr(g->b + g->at, 0, n)) {
		g->bad = true;
		return;
	}
	snprintf(out, cap, "%.*s", (int)n, (const char *)g->b + g->at);
	g->at += n;
}

static int result_decode(const uint8_t *b, uint32_t len,
			 struct fr_import_result *res)
{
	struct rget g = {.b = b, .len = len};
	uint32_t np = get_u32(&g), nr = get_u32(&g);

	/* a parcel takes 56 bytes at least, a refused volume 8: no more
	 * than the answer holds, and no more than one import reads */
	if (g.bad || np > len / 56 || nr > len / 8 || np > 65536 || nr > 65536)
		return FR_E_PROTOCOL;
	res->error = (int32_t)get_u32(&g);
	get_str(&g, res->message, sizeof(res->message));
	res->parcels = calloc(np ? np : 1, sizeof(*res->parcels));
	res->refused = calloc(nr ? nr : 1, sizeof(*res->refused));
	if (!res->parcels || !res->refused)
		return -ENOMEM;
	for (uint32_t i = 0; i < np && !g.bad; i++) {
		struct fr_import_parcel *p = &res->parcels[i];
		get_str(&g, p->id, sizeof(p->id));
		get_str(&g, p->name, sizeof(p->name));
		uint32_t f = get_u32(&g);
		p->already_complete = f & 1;
		p->complete = f & 2;
		p->last_volume_seen = f & 4;
		p->superseded = f & 8;
		p->placed = get_u32(&g);
		p->made = get_u32(&g);
		p->imported = get_u32(&g);
		p->held = get_u32(&g);
		p->refused = get_u32(&g);
		p->damaged = get_u32(&g);
		p->n_have = get_u32(&g);
		p->n_segments = get_u32(&g);
		p->n_missing = get_u32(&g);
		p->not_in_parcel = get_u32(&g);
		get_str(&g, p->missing_volumes, sizeof(p->missing_volumes));
		get_str(&g, p->missing_segments, sizeof(p->missing_segments));
		res->n_parcels = i + 1;
	}
	for (uint32_t i = 0; i < nr && !g.bad; i++) {
		get_str(&g, res->refused[i].path, sizeof(res->refused[i].path));
		get_str(&g, res->refused[i].why, sizeof(res->refused[i].why));
		res->n_refused = i + 1;
	}
	return g.bad || g.at != len ? FR_E_PROTOCOL : 0;
}

int fr_import_result_pack(const struct fr_import_result *res, uint8_t **out,
			  uint32_t *len)
{
	struct rbuf r = {0};

	result_encode(res, &r);
	if (r.bad || r.len > UINT32_MAX) {
		free(r.b);
		return -ENOMEM;
	}
	*out = r.b;
	*len = (uint32_t)r.len;
	return 0;
}

int fr_import_result_unpack(const uint8_t *b, uint32_t len,
			    struct fr_import_result *res)
{
	memset(res, 0, sizeof(*res));
	return result_decode(b, len, res);
}

/* IMPORT_DONE: the exit code, the result's length and the result, then
 * the import's log lines (to our standard error as they were). */
static int import_answer(const uint8_t *b, uint32_t len,
			 struct fr_import_result *res)
{
	if (len < 8 || fr_get32(b + 4) > len - 8)
		return FR_E_PROTOCOL;
	uint32_t olen = fr_get32(b + 4);
	if (fwrite(b + 8 + olen, 1, len - 8 - olen, stderr) == 0 &&
	    len - 8 - olen)
		return FR_E_PROTOCOL;
	fr_import_result_fini(res);
	int rc = fr_import_result_unpack(b + 8, olen, res);
	if (rc < 0) {
		fr_log(FR_LOG_ERROR,
		       "the receiver's answer to the import is not a result "
		       "this ferry reads (%s): is the receiver running an "
		       "older ferry? Restart it with this one",
		       fr_strerror(rc));
		return rc;
	}
	return (int32_t)fr_get32(b);
}

/* Does this process see a volume in paths? (quietly) */
static bool volumes_here(const char *const *paths, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct stat st;
		struct vol *v = NULL;
		uint32_t k = 0;
		if (stat(paths[i], &st) < 0)
			continue;
		int vl = fr_log_verbosity;
		fr_log_verbosity = -1; /* (what it cannot read is said later) */
		find_volumes(paths[i], 0, &v, &k);
		fr_log_verbosity = vl;
		free(v);
		if (k)
			return true;
	}
	return false;
}

/* 1 with *rc when the running receiver did the import, 0 when there is
 * none to ask (or it cannot: an older one, or one that does not see the
 * volumes this process sees): import here. */
static int by_receiver(const struct fr_config *c, const char *const *paths,
		       unsigned n, struct fr_import_result *res, int *rc)
{
	char host[300], err[512];
	struct fr_chan ch;
	uint8_t *req, *ans = NULL;
	uint32_t len, type;

	if (!c->listen[0] || !c->n_accounts || fr_hook_flag("IMPORT_HERE"))
		return 0;
	local_listen(c, host, sizeof(host));
	int fd = fr_tcp_connect(host, IMPORT_CONNECT_MS);
	if (fd < 0)
		return 0; /* no receiver running */
	fr_chan_plain(&ch, fd);
	int r = fr_handshake_client(&ch, c->accounts[0].code,
				    c->accounts[0].key, c->code, err, sizeof(err));
	if (r == 0 && !(req = import_req(paths, n, &len)))
		r = -ENOMEM;
	if (r == 0) {
		r = fr_msg_send(&ch, FR_MSG_IMPORT, req, len);
		free(req);
	}
	if (r == 0)
		r = fr_msg_recv(&ch, &type, &ans, &len, FR_MANIFEST_MAX, err,
				sizeof(err));
	fr_chan_wipe(&ch);
	close(fd);
	if (r < 0 || type != FR_MSG_IMPORT_DONE) {
		fr_log(FR_LOG_WARN,
		       "the receiver at %s did not take the import (%s); "
		       "importing here",
		       host, r < 0 ? (err[0] ? err : fr_strerror(r))
				   : "an older ferry");
		free(ans);
		return 0;
	}
	/* it found no volume where this process sees some: it runs in
	 * another mount namespace (a mount made after it started, its
	 * service's private mounts) */
	if (len >= 8 && (int32_t)fr_get32(ans) == -ENOENT &&
	    volumes_here(paths, n)) {
		free(ans);
		fr_log(FR_LOG_WARN,
		       "the receiver running at %s does not see the volumes "
		       "in %s%s (it runs in another mount namespace: a mount "
		       "made after it started, or its service's private "
		       "mounts); importing here, which needs the package not "
		       "to be open there",
		       host, paths[0], n > 1 ? " and the others given" : "");
		return 0;
	}
	fr_log(FR_LOG_DEBUG, "imported by the receiver running at %s", host);
	*rc = import_answer(ans, len, res);
	free(ans);
	return 1;
}

/* An import in this process; the result says how it ended. */
static int import_local(const struct fr_config *c, const char *const *paths,
			unsigned n, struct fr_import_result *res)
{
	int rc = import_here(c, paths, n, res);

	res->error = rc;
	if (rc) /* this thread's: a receiver runs other sessions meanwhile */
		snprintf(res->message, sizeof(res->message), "%s",
			 fr_log_thread_error()[0] ? fr_log_thread_error()
						  : fr_strerror(rc));
	return rc;
}

int fr_parcel_import(const struct fr_config *c, const char *const *paths,
		     unsigned n_paths, struct fr_import_result *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (by_receiver(c, paths, n_paths, out, &rc))
		return rc;
	return import_local(c, paths, n_paths, out);
}

/* Is the session's peer on this machine? On loopback only: a peer at
 * one of this machine's own addresses may be one translated to it (a
 * NAT, a forwarder), and an import names paths on this machine. */
static bool peer_local(int fd)
{
	struct sockaddr_storage ss, me;
	socklen_t sl = sizeof(ss), ml = sizeof(me);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return false;
	/* this machine reaching its own address (listen names one that is
	 * not loopback): the peer's address is the one it reached */
	if (getsockname(fd, (struct sockaddr *)&me, &ml) == 0 &&
	    me.ss_family == ss.ss_family &&
	    ((ss.ss_family == AF_INET &&
	      ((struct sockaddr_in *)&ss)->sin_addr.s_addr ==
		      ((struct sockaddr_in *)&me)->sin_addr.s_addr) ||
	     (ss.ss_family == AF_INET6 &&
	      !memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr,
		      &((struct sockaddr_in6 *)&me)->sin6_addr,
		      sizeof(struct in6_addr)))))
		return true;
	if (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
		/* a listener on [::] takes IPv4 loopback as ::ffff:127.x */
		return ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[12] == 127;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >>
			24) == 127;
	if (ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
			&((struct sockaddr_in6 *)&ss)->sin6_addr);
	return false;
}

static pthread_mutex_t serve_import_mu = PTHREAD_MUTEX_INITIALIZER;

int fr_parcel_serve_import(const struct fr_config *c, struct fr_chan *ch,
			   const char *who, const uint8_t *body, uint32_t len)
{
	const char *paths[256];
	unsigned n = 0;
	char *logs = NULL;
	size_t llen = 0;
	struct fr_import_result res = {0};
	struct rbuf out = {0};

	if (!peer_local(ch->fd)) {
		fr_log(FR_LOG_WARN, "%s: an import asked for from another machine "
		       "refused", who);
		return fr_send_error(ch, FR_E_REFUSED,
				     "imports are asked for from this machine "
				     "only");
	}
	for (uint32_t at = 1; len && at < len && n < 256;) {
		const uint8_t *z = memchr(body + at, 0, len - at);
		if (!z)
			break;
		paths[n++] = (const char *)body + at;
		at = (uint32_t)(z - body) + 1;
	}
	if (!len || !n)
		return fr_send_error(ch, FR_E_PROTOCOL, "IMPORT without a path");
	if (!(body[0] & IMPORT_RECORD)) /* an older ferry reads text */
		return fr_send_error(ch, FR_E_PROTOCOL,
				     "this receiver answers imports to its own "
				     "ferry only: run 'parcel import' with the "
				     "ferry that runs it");
	FILE *lg = open_memstream(&logs, &llen);
	if (!lg)
		return fr_send_error(ch, -ENOMEM, "out of memory");
	fr_log(FR_LOG_INFO, "%s: importing %u path(s) for a client on this "
	       "machine", who, n);
	/* one import at a time: a second waits for the first to let go of
	 * what it claimed (it may be one whose client was killed) */
	pthread_mutex_lock(&serve_import_mu);
	fr_log_copy_to(lg);
	import_client = ch->fd;
	int rc = import_local(c, paths, n, &res);
	import_client = -1;
	fr_log_copy_to(NULL);
	pthread_mutex_unlock(&serve_import_mu);
	fclose(lg);
	put_u32(&out, (uint32_t)rc);
	put_u32(&out, 0); /* the result's length, below */
	size_t at = out.len;
	result_encode(&res, &out);
	if (!out.bad)
		fr_put32(out.b + 4, (uint32_t)(out.len - at));
	put_bytes(&out, logs, llen);
	int r = out.bad ? fr_send_error(ch, -ENOMEM, "out of memory")
			: fr_msg_send(ch, FR_MSG_IMPORT_DONE, out.b,
				      (uint32_t)out.len);
	free(out.b);
	free(logs);
	fr_import_result_fini(&res);
	return r;
}
