/*
 * parcel.c - the courier output: parcels of segment frames on physical
 * media, created at the source (the destination's side, its record of
 * the parcels and their import, is recv/import.c).
 *
 *   create: scan -> register over the network (learn what the site holds)
 *           -> read each missing segment (ring reader) -> worker: XXH3
 *           check + zstd at the level the medium can absorb, then the
 *           frame sealed in place (pseal.c) -> append it to the current
 *           volume; a volume ends at
 *           --volume-size or when its medium is full, and the next goes
 *           on the same or the next medium.
 *
 * The source keeps <store>/parcels/<id>/ (state, manifest). The
 * registration and the receipt travel over the site's network address:
 * `parcel create` registers (and withdraws the registration when it gives
 * up on the parcel), `parcel list` catches up what could not be
 * registered and asks for receipts, `parcel ship` marks one handed to the
 * courier. Nothing here touches the store: out/ sits below it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "out/fr_out.h"

/* how long a site may take to answer a parcel's message once asked */
#define FR_PARCEL_ANSWER_S 120

#define PSLOTS 4
#define SPACE_SLACK (256u << 10) /* left free on a medium: metadata */


/* ---- the source's record of a parcel ------------------------------------ */

struct parcel {
	char dir[1400];
	char id[33];             /* hex of the 16-byte parcel id */
	char name[FR_NAME_MAX + 1];
	char pkg[33];
	char site[FR_CODE_MAX + 1];
	char address[64];
	char state[16];          /* creating, created, shipped, received,
				  * not-needed; interrupted (loaded: its
				  * creating run is gone) */
	long pid;                /* the run that creates it */
	int registered;
	uint32_t volumes, segments, n_segments, left_out;
	uint32_t first;          /* segments before it were not its to carry */
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
			 "n_segments=%u\nleft_out=%u\nfirst=%u\nbytes=%llu\n"
			 "raw=%llu\ncreated=%lld\nshipped=%lld\nreceived=%lld\n"
			 "media=%s\npid=%ld\n",
			 p->id, p->name, p->pkg, p->site, p->address, p->state,
			 p->registered, p->volumes, p->segments, p->n_segments,
			 p->left_out, p->first, (unsigned long long)p->bytes,
			 (unsigned long long)p->raw, (long long)p->created,
			 (long long)p->shipped, (long long)p->received, p->media,
			 p->pid);

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
	p->first = (uint32_t)fr_kv_num(t, "first");
	p->bytes = (uint64_t)fr_kv_num(t, "bytes");
	p->raw = (uint64_t)fr_kv_num(t, "raw");
	p->created = fr_kv_num(t, "created");
	p->shipped = fr_kv_num(t, "shipped");
	p->received = fr_kv_num(t, "received");
	p->pid = fr_kv_num(t, "pid");
	free(text);
	/* a run killed while it wrote the parcel: its volumes are cut */
	if (!strcmp(p->state, "creating") && !fr_pid_alive(p->pid))
		snprintf(p->state, sizeof(p->state), "interrupted");
	return p->id[0] ? 0 : FR_E_CONFIG;
}

/* ---- talking to the destination ---------------------------------------- */

/* The network address a courier relies on: the site's first non-courier
 * address, in priority order. */
/* The site has an address a parcel's messages can go by. */
static bool has_network(const struct fr_config *c, const char *site)
{
	const struct fr_address *all[64];
	unsigned n = fr_config_addresses(c, site, all, 64);

	for (unsigned i = 0; i < n; i++)
		if (fr_output_for(all[i]->type))
			return true;
	return false;
}

/* May a message go over a now to a send of this priority: its schedule
 * open, its rate limit not at 0%. */
static bool open_now(const struct fr_address *a, int priority, time_t now)
{
	return fr_schedule_allows(&a->schedule, priority, now) &&
	       !(a->ratelimit.mode == FR_RL_SHARE &&
		 fr_ratelimit_share(&a->ratelimit, now) == 0);
}

/* A session over address a (its line taken first, *line, unless a is a
 * LAN): the fd, or a code with err set. */
static int connect_address(const struct fr_config *c,
			   const struct fr_address *a, struct fr_chan *ch,
			   struct fr_line **line, char *err, size_t cap)
{
	bool dialled = false;
	int fd, rc;

	if (a->type != FR_ADDR_LAN &&
	    (rc = fr_line_take(c, a, false, line, &dialled, err, cap)) < 0)
		return rc;
	if ((fd = fr_tcp_connect(a->host, 5000)) < 0) {
		snprintf(err, cap, "cannot connect to %s (%s %s): %s", a->host,
			 a->site, a->name, fr_strerror(fd));
		rc = fd;
	} else {
		char why[512] = "";
		fr_chan_plain(ch, fd);
		if ((rc = fr_handshake_client(ch, a->account, a->key, a->site,
					      why, sizeof(why))) == 0)
			return fd;
		close(fd);
		snprintf(err, cap, "handshake with %s (%s %s) failed: %s",
			 a->host, a->site, a->name,
			 why[0]			     ? why
			 : rc == -EAGAIN || rc == -ETIMEDOUT ? "no answer"
							      : fr_strerror(rc));
	}
	/* a line dialled for nothing is hung up at once */
	fr_line_release(*line, dialled, "the parcel's message could not go");
	*line = NULL;
	return rc;
}

/*
 * A session with the site for a parcel's messages (its registration, a
 * query for receipts, a withdrawal), over an address that is open now to
 * some sends (a schedule closed to every priority is respected; one open
 * to high priority only carries these few bytes too): a LAN before a
 * line (which is dialled unless it is up), each tried in turn, and said
 * when it fails. The fd, with *line to let go of after the request
 * (NULL: none taken); or a code with err set: FR_E_CLOSED when every
 * address is closed now.
 */
/* The address the site last answered by in this process: tried first
 * by the next message (one that timed out is not waited for again). */
static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_ok[FR_CODE_MAX + 1 + 64];

static void address_answered(const struct fr_address *a)
{
	pthread_mutex_lock(&last_mu);
	snprintf(last_ok, sizeof(last_ok), "%s %s", a->site, a->name);
	pthread_mutex_unlock(&last_mu);
}

static bool answered_last(const struct fr_address *a)
{
	char k[sizeof(last_ok)];

	snprintf(k, sizeof(k), "%s %s", a->site, a->name);
	pthread_mutex_lock(&last_mu);
	bool yes = !strcmp(k, last_ok);
	pthread_mutex_unlock(&last_mu);
	return yes;
}

static int connect_site(const struct fr_config *c, const char *site,
			struct fr_chan *ch, struct fr_line **line, char *err,
			size_t cap)
{
	const struct fr_address *all[64];
	unsigned n = fr_config_addresses(c, site, all, 64);
	time_t now = fr_schedule_now();
	bool any = false, closed = false, ever = false;
	int rc = 0;

	*line = NULL;
	/* (pass 2: the one that answered last; then LANs, then lines) */
	for (int pass = 2; pass >= 0; pass--)
		for (unsigned i = 0; i < n; i++) {
			const struct fr_address *a = all[i];
			bool last = answered_last(a);
			if (!fr_output_for(a->type) || (pass == 2) != last ||
			    (pass < 2 && (a->type == FR_ADDR_LAN) != pass))
				continue;
			any = true;
			if (!open_now(a, FR_PRIO_HIGH, now)) {
				closed = true;
				ever |= fr_schedule_next_open(&a->schedule,
							      FR_PRIO_HIGH,
							      now) != (time_t)-1;
				continue;
			}
			if (rc < 0) /* the one before failed: said */
				fr_log(FR_LOG_INFO, "%s; trying %s %s", err,
				       a->site, a->name);
			rc = connect_address(c, a, ch, line, err, cap);
			if (rc >= 0)
				address_answered(a);
			if (rc >= 0 || rc == FR_E_AUTH)
				return rc;
		}
	if (!any) {
		snprintf(err, cap, "site %s has no network address", site);
		return FR_E_CONFIG;
	}
	if (rc == 0 && closed) {
		snprintf(err, cap,
			 "no network address of site %s is %s (see their "
			 "schedules)",
			 site, ever ? "open now" : "ever open");
		return ever ? FR_E_CLOSED : FR_E_CONFIG;
	}
	return rc;
}

/* One request over one of the site's network addresses (connect_site),
 * and its answer (malloc'd, at most max bytes). 0, or a code with err
 * set. */
static int ask_site(const struct fr_config *c, const char *site,
		    uint32_t type, const uint8_t *body, uint32_t blen,
		    uint32_t max, uint32_t *atype, uint8_t **ans,
		    uint32_t *alen, char *err, size_t cap)
{
	struct timeval tv = {.tv_sec = FR_PARCEL_ANSWER_S};
	struct fr_chan ch;
	struct fr_line *line;
	int fd, rc;

	if ((fd = connect_site(c, site, &ch, &line, err, cap)) < 0)
		return fd;
	/* a site that takes the request and never answers is given up */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc = fr_msg_send(&ch, type, body, blen);
	if (rc == 0)
		rc = fr_msg_recv(&ch, atype, ans, alen, max, err, cap);
	fr_chan_wipe(&ch);
	close(fd);
	fr_line_release(line, false, NULL); /* its keeper hangs up once idle */
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
		states[i] = memcmp(r, ids[i], FR_HASH_LEN) ? FR_PARCEL_UNKNOWN
							   : fr_get32(r + 16);
		if (states[i] > FR_PARCEL_SUPERSEDED)
			states[i] = FR_PARCEL_UNKNOWN;
	}
	free(ans);
	return 0;
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
	else if (fr_get32(ans + 20) != FR_PARCEL_UNKNOWN)
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
	uint32_t first;              /* segments before it go by network */
	uint8_t *wrote;              /* per segment: 1 written; 2 written before
				      * its hash was known, that hash in whash */
	uint8_t (*whash)[FR_HASH_LEN];
	uint8_t *seglist;            /* the segments the parcel carries */
	uint32_t seglist_len;
	int hash_rc, reg_rc;
	bool registered;             /* the destination took the registration */
	bool complete;               /* the destination holds the package */
	double t0;                   /* when creation started */
	const struct fr_parcel_opts *o; /* its hashed hook */
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
	return FR_VOL_HDR + fr_pseal_rec_size(w->mf_len) +
	       fr_pseal_rec_size(w->seglist_len) +
	       fr_pseal_rec_size(FR_TRAILER_LEN);
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

	fr_hex(w->h.parcel, FR_HASH_LEN, idh);
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
	fr_hex(w->h.parcel, FR_HASH_LEN, idh);
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

/* A parcel's record as the command line shows it. */
static void parcel_info(const struct parcel *p, struct fr_parcel_info *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "%s", p->id);
	snprintf(o->name, sizeof(o->name), "%s", p->name);
	snprintf(o->site, sizeof(o->site), "%s", p->site);
	snprintf(o->state, sizeof(o->state), "%s", p->state);
	snprintf(o->address, sizeof(o->address), "%s", p->address);
	o->registered = p->registered;
	o->first = p->first;
	o->volumes = p->volumes;
	o->segments = p->segments;
	o->n_segments = p->n_segments;
	o->left_out = p->left_out;
	o->bytes = p->bytes;
	o->created = p->created;
	o->shipped = p->shipped;
	o->received = p->received;
}

/* The record of parcel ID (its whole hex id). */
static int find_record(const struct fr_config *c, const char *id,
		       struct parcel *p)
{
	char pdir[1200], dir[1300];
	int rc;

	if (strlen(id) < 12 || parcels_dir(c, pdir, sizeof(pdir)) < 0 ||
	    fr_path_fmt(dir, sizeof(dir), "%s/%.12s", pdir, id) < 0)
		return -ENOENT;
	if ((rc = parcel_load(dir, p)) < 0)
		return rc;
	return strcasecmp(p->id, id) ? -ENOENT : 0;
}

int fr_parcel_find(const struct fr_config *c, const char *id,
		   struct fr_parcel_info *out)
{
	struct parcel p;
	int rc = find_record(c, id, &p);

	if (rc == 0)
		parcel_info(&p, out);
	return rc;
}

int fr_parcel_not_needed(const struct fr_config *c, const char *id)
{
	struct parcel p;
	int rc = find_record(c, id, &p);

	if (rc < 0)
		return rc;
	if (strcmp(p.state, "created") && strcmp(p.state, "shipped"))
		return 0;
	snprintf(p.state, sizeof(p.state), "not-needed");
	return parcel_save(&p);
}

/* ---- creating a parcel: the pipeline ------------------------------------- */

/* A frame's sealed record around the producer's header and payload:
 * rh | nonce | fhdr | payload | mac, one per producer slot. */
struct prec {
	uint8_t rh[FR_REC_HDR];
	uint8_t nonce[FR_REC_NONCE];
	uint8_t mac[FR_REC_MAC];
};
/* What the workers seal with: the parcel's key, the volume header (the
 * associated data), and each slot's record. */
struct packer {
	const uint8_t *key;
	const uint8_t *ph;
	struct prec rec[FR_PRODUCER_MAX];
};

/* The producer's finish: the frame sealed in place on the worker, its
 * header where it was packed, its payload where the producer left it. */
static void pack_seal(struct fr_prod_slot *s, int worker, void *arg)
{
	struct packer *pk = arg;
	struct prec *r = &pk->rec[s->index];
	uint8_t ad[FR_PSEAL_AD];

	(void)worker;
	struct fr_rec_hdr h = {.type = FR_REC_FRAME,
			       .len = FR_FRAME_HDR + s->stored};
	fr_rec_hdr_pack(r->rh, &h);
	fr_pseal_ad(pk->ph, r->rh, ad);
	struct fr_piece pc[2] = {{s->fhdr, FR_FRAME_HDR},
				 {s->payload, s->stored}};
	fr_pseal(pk->key, r->nonce, ad, sizeof(ad), pc, 2, r->mac);
}

/* A frame sealed by a worker, appended to the volume (the next one if
 * it does not fit). */
static int vw_frame(struct vwriter *w, const struct fr_prod_slot *s,
		    const struct prec *r)
{
	uint64_t len = fr_pseal_rec_size(FR_FRAME_HDR + (uint64_t)s->stored);
	struct volinfo *vi;
	int rc;

	if ((rc = vw_room(w, len, false)) < 0)
		return rc;
	off_t at = lseek(w->fd, 0, SEEK_CUR);
	rc = vw_put(w, r->rh, r->nonce, s->fhdr, FR_FRAME_HDR, s->payload,
		    s->stored, r->mac);
	if (rc == -ENOSPC && at >= 0 && ftruncate(w->fd, at) == 0) {
		/* the medium filled sooner than it said: cut the torn
		 * record off and write it again on the next medium (the
		 * same bytes: its associated data has no volume number) */
		vw_cut(w, (uint64_t)at);
		if ((rc = vw_room(w, len, true)) < 0)
			return rc;
		rc = vw_put(w, r->rh, r->nonce, s->fhdr, FR_FRAME_HDR,
			    s->payload, s->stored, r->mac);
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
	if (pp->hash_rc == 0 && pp->o->hashed)
		pp->o->hashed(pp->o->hashed_arg, pp->m);
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
	fr_hex(m->id, FR_HASH_LEN, p->pkg);
	rc = pp->reg_rc;
	if (rc == FR_HAVE_COMPLETE) {
		fr_log(FR_LOG_INFO,
		       "%s already holds '%s' complete: no parcel needed",
		       pp->site, m->name);
		pp->complete = true;
		return pp->settle_rc = -ECANCELED;
	}
	if (rc == FR_E_AUTH || rc == FR_E_REFUSED || rc == FR_E_NOT_OWNER) {
		fr_log(FR_LOG_ERROR, "%s refused the parcel's registration: %s",
		       pp->site, pp->err);
		return pp->settle_rc = rc;
	}
	if (rc < 0 && rc == FR_E_CONFIG) { /* never open */
		fr_log(FR_LOG_WARN,
		       "cannot register the parcel with %s (%s): it will carry "
		       "every segment%s, and its receipt cannot come back",
		       pp->site, pp->err, pp->first ? " of its tail" : "");
		memset(pp->have, 0, m->n_segments);
	} else if (rc < 0) { /* unreachable, or busy now */
		fr_log(FR_LOG_WARN,
		       "cannot register the parcel with %s (%s): it will carry "
		       "every segment%s, and 'ferry parcel list' registers it "
		       "once %s %s",
		       pp->site, pp->err, pp->first ? " of its tail" : "",
		       pp->site,
		       rc == -EBUSY	    ? "has room"
		       : rc == FR_E_CLOSED ? "is open"
					   : "is reachable");
		memset(pp->have, 0, m->n_segments);
	} else {
		p->registered = 1;
	}
	/* a send's courier carries the tail: the network the rest */
	for (uint32_t i = 0; i < pp->first && i < m->n_segments; i++)
		pp->have[i] = 1;
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
	/* the parcel's directory on every medium, if empty now (one
	 * whose volume was opened and dropped is no longer in vols) */
	char idh[2 * FR_HASH_LEN + 1], dir[1300];
	fr_hex(w->h.parcel, FR_HASH_LEN, idh);
	idh[12] = '\0';
	for (unsigned i = 0; i < w->n_media; i++)
		if (!fr_path_fmt(dir, sizeof(dir), "%s/ferry-parcel-%s",
				 w->media[i], idh))
			rmdir(dir);
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

/* A parcel being made: what the steps of fr_parcel_create share. */
struct creation {
	const struct fr_config *c;
	const struct fr_parcel_opts *o;
	const struct fr_address *ca; /* courier */
	const char *media[FR_PARCEL_MEDIA_MAX];
	unsigned n_media;
	char name[FR_NAME_MAX + 1], src[4096];
	bool single;
	int fixed; /* the level, or -1: it follows the medium */
	double t0; /* when creation started */
	struct fr_manifest m;
	struct fr_left_list left;
	struct parcel p;
	struct prep pp;
	struct vwriter w;
	struct packer pk;
	struct fr_producer pr; /* the frames */
	struct fr_adapt ad;
	uint32_t written; /* frames on the media */
	uint64_t raw_done; /* their segments' bytes */
	bool unread;      /* the source could not be read: not kept */
	bool kept;
	struct fr_parcel_made *made; /* what the caller is told, or NULL */
};

/* The frame loop's place and its clocks: cur the next segment to look
 * at. */
struct frame_loop {
	uint32_t cur;
	double last_tick;
	uint64_t read_bytes; /* the producer's counts at the last tick */
	double read_s;
	double t_read, t_work, t_write, cpu_work;
};

/* Keep every slot busy: read the next segments while the workers
 * compress and the oldest goes to the medium. Until the registration
 * answered, every segment goes. */
static int fill_slots(struct creation *cr, struct frame_loop *fl)
{
	const struct fr_manifest *m = &cr->m;
	struct prep *pp = &cr->pp;
	int rc = 0;

	while (rc == 0 && fr_producer_room(&cr->pr)) {
		while (fl->cur < m->n_segments && pp->settled &&
		       pp->have[fl->cur])
			fl->cur++;
		if (fl->cur >= m->n_segments)
			break;
		char msg[700];
		uint32_t seg = fl->cur++;
		int level = cr->fixed >= 0 ? cr->fixed : fr_adapt_next(&cr->ad);
		double r0 = fr_now_s();
		rc = fr_producer_push(&cr->pr, seg, level,
				      pp->settled ? m->segments[seg].hash : NULL,
				      msg, sizeof(msg));
		fl->t_read += fr_now_s() - r0;
		if (rc < 0) {
			fr_log(FR_LOG_ERROR, "%s", msg);
			cr->unread = true;
		}
	}
	return rc;
}

/* The level follows the medium: its rate over four chunks and a second
 * or more, or at least the rate it kept up with; and the source's. */
static void follow_medium(struct creation *cr, struct frame_loop *fl)
{
	struct vwriter *w = &cr->w;
	struct fr_adapt *ad = &cr->ad;

	if (w->busy_s >= 1.0 && w->busy_bytes >= 4ull * WB_CHUNK) {
		double mr = w->busy_bytes / w->busy_s;
		if (w->blocked)
			fr_adapt_wire(ad, w->busy_bytes, w->busy_s);
		else if (mr > ad->wire_rate)
			ad->wire_rate = mr;
		w->busy_bytes = 0;
		w->busy_s = 0;
		w->blocked = false;
	}
	/* what the source delivered while reads were out (the bytes of
	 * reads still out not yet counted: a little low, never high) */
	double rs = fr_producer_read_s(&cr->pr);
	if (rs > fl->read_s) {
		fr_adapt_source(ad, cr->pr.read_bytes - fl->read_bytes,
				rs - fl->read_s);
		fl->read_bytes = cr->pr.read_bytes;
		fl->read_s = rs;
	}
	int before = ad->level;
	fr_adapt_choose(ad);
	if (ad->level != before)
		fr_log(FR_LOG_DEBUG,
		       "compression level %d -> %d (medium %.0f MB/s, source "
		       "%.0f MB/s)",
		       before, ad->level, ad->wire_rate / 1e6,
		       ad->source_rate / 1e6);
}

static void progress_tick(const struct creation *cr, int level, double now)
{
	struct fr_parcel_progress p = {
		.written = cr->written,
		.segments = cr->pp.settled ? cr->p.segments : cr->m.n_segments,
		.mb_s = cr->raw_done / 1e6 / (now - cr->t0 + 1e-9),
		.level = level,
		.volume = cr->w.n_vols,
	};
	cr->o->progress(cr->o->progress_arg, &p);
}

/* Slot s's job is back: its frame to the medium, unless the destination
 * holds the segment after all. */
static int frame_done(struct creation *cr, const struct fr_prod_slot *s,
		      struct frame_loop *fl)
{
	const struct fr_manifest *m = &cr->m;
	struct prep *pp = &cr->pp;
	struct vwriter *w = &cr->w;
	int rc;

	if (s->result < 0 && s->err[0]) { /* a read error */
		fr_log(FR_LOG_ERROR, "%s", s->err);
		cr->unread = true;
		return s->result;
	}
	if (s->result < 0)
		return hash_changed(pp, s->seg);
	/* read before the registration said the destination holds it */
	if (pp->settled && pp->have[s->seg])
		return 0;
	if (cr->fixed < 0)
		fr_adapt_segment(&cr->ad, s->level, m->segments[s->seg].length,
				 s->stored, s->cpu_s);
	double v0 = fr_now_s();
	rc = vw_frame(w, s, &cr->pk.rec[s->index]);
	fl->t_write += fr_now_s() - v0;
	if (rc < 0) {
		if (w->err[0])
			fr_log(FR_LOG_ERROR, "%s", w->err);
		return rc;
	}
	/* Read before the hashes were known: checked now if they are (the
	 * write may have closed a volume, which waits for them), else by
	 * prep_settle. A frame whose write took the answer is in the
	 * segment list from then on. */
	if (pp->settled) {
		if (!s->want &&
		    memcmp(s->f.hash, m->segments[s->seg].hash, FR_HASH_LEN))
			return hash_changed(pp, s->seg);
		pp->seglist[s->seg / 8] |= (uint8_t)(1u << (s->seg % 8));
		pp->wrote[s->seg] = 1;
	} else {
		memcpy(pp->whash[s->seg], s->f.hash, FR_HASH_LEN);
		pp->wrote[s->seg] = 2;
	}
	if (cr->written == 0)
		fr_log(FR_LOG_DEBUG,
		       "first frame written %.2f s after the start",
		       fr_now_s() - cr->t0);
	cr->raw_done += m->segments[s->seg].length;
	cr->written++;
	double now = fr_now_s();
	if (now - fl->last_tick >= 0.25) {
		if (cr->fixed < 0)
			follow_medium(cr, fl);
		if (cr->o->progress)
			progress_tick(cr, s->level, now);
		fl->last_tick = now;
	}
	return 0;
}

/* Read, pack and write the frames the destination lacks: every slot
 * busy, the oldest to the medium; the level follows the medium. */
static int write_frames(struct creation *cr)
{
	struct frame_loop fl = {.last_tick = fr_now_s(), .cur = cr->o->first};
	int rc = 0;

	for (;;) {
		if (rc == 0 && !cr->pp.settled && atomic_load(&cr->pp.done))
			rc = prep_settle(&cr->pp);
		if (rc == 0)
			rc = fill_slots(cr, &fl);
		double q0 = fr_now_s();
		struct fr_prod_slot *s = fr_producer_take(&cr->pr);
		if (!s)
			break;
		fl.t_work += fr_now_s() - q0;
		fl.cpu_work += s->cpu_s;
		if (rc == 0) /* else only what is in flight is drained */
			rc = frame_done(cr, s, &fl);
	}
	fr_log(FR_LOG_DEBUG,
	       "last frame written %.2f s after the start (main thread: "
	       "%.2f s starting reads, %.2f s waiting for the reads and the "
	       "workers, %.2f s writing; reads out %.2f s; workers: %.2f "
	       "CPU s)",
	       fr_now_s() - cr->t0, fl.t_read, fl.t_work, fl.t_write,
	       fr_producer_read_s(&cr->pr), fl.cpu_work);
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

int fr_medium_writable(const char *dir)
{
	struct stat st;

	return stat(dir, &st) < 0	  ? errno
	       : !S_ISDIR(st.st_mode)	  ? ENOTDIR
	       : access(dir, W_OK | X_OK) < 0 ? errno
					  : 0;
}

/* The courier address (the site needs a network one too) and the media
 * to fill, in order: those given, else the address's; each a writable
 * directory. 0, or an error said. */
static int parcel_outputs(const struct fr_config *c,
			  const struct fr_parcel_opts *o,
			  const struct fr_address **ca_out,
			  const char *media[FR_PARCEL_MEDIA_MAX],
			  unsigned *n_media)
{
	if (!(*ca_out = courier_address(c, o->site, o->via))) {
		fr_log(FR_LOG_ERROR,
		       o->via ? "site %s has no courier address named '%s' in '%s'"
			      : "site %s has no courier address in '%s'%s",
		       o->site, o->via ? o->via : c->path,
		       o->via ? c->path : "");
		return FR_E_CONFIG;
	}
	if (!has_network(c, o->site)) {
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
		int e = fr_medium_writable(media[i]);
		if (e) {
			fr_log(FR_LOG_ERROR,
			       "medium '%s' is not a writable directory: %s",
			       media[i], strerror(e));
			return -e;
		}
	}
	return 0;
}

/* Refuse early what cannot work, then list the source (its hashes follow
 * in the background). Nothing to undo when it fails. */
static int create_source(struct creation *cr)
{
	const struct fr_parcel_opts *o = cr->o;
	struct stat st;
	int rc;

	if ((rc = parcel_outputs(cr->c, o, &cr->ca, cr->media,
				 &cr->n_media)) < 0)
		return rc;
	if ((rc = fr_package_source(o->path, o->name, "pack", cr->src,
				    sizeof(cr->src), cr->name,
				    sizeof(cr->name))) < 0)
		return rc;
	if (stat(cr->src, &st) < 0) {
		rc = -errno;
		char ep[FR_ESC_MAX];
		fr_log(FR_LOG_ERROR, "cannot read '%s': %s",
		       fr_esc(cr->src, ep, sizeof(ep)), strerror(-rc));
		return rc;
	}
	if ((rc = fr_workq_start(cr->c->workers)) < 0)
		return rc;
	return fr_scan_list(cr->src, cr->name, cr->c->seg_size, &cr->m,
			    &cr->single, &cr->left);
}

/* The preparation's tables and the parcel's record, its id new. */
/* A parcel directory on a medium left by a run of this store that
 * was killed while it wrote (its record interrupted, or never written):
 * its cut volumes and packing lists removed, said. Not one another
 * store made (no record here), nor, without a record, one written to in
 * the last minute (a run that is just starting). */
#define SWEEP_QUIET_S 60
static void sweep_cut(const struct fr_config *c, const char *media)
{
	char pdir[1200];
	DIR *d = opendir(media);
	struct dirent *de;

	if (!d || parcels_dir(c, pdir, sizeof(pdir)) < 0) {
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		const char *id = de->d_name + 13;
		char rec[1400], dir[1400], f[1700];
		struct parcel p;
		struct stat st;
		if (strncmp(de->d_name, "ferry-parcel-", 13) ||
		    strlen(id) != 12 || strspn(id, "0123456789abcdef") != 12 ||
		    fr_path_fmt(rec, sizeof(rec), "%s/%s", pdir, id) ||
		    stat(rec, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    fr_path_fmt(dir, sizeof(dir), "%s/%s", media, de->d_name))
			continue;
		int lr = parcel_load(rec, &p);
		if (lr == 0 && strcmp(p.state, "interrupted"))
			continue;
		if (lr < 0 && lr != -ENOENT)
			continue;
		DIR *v = opendir(dir);
		struct dirent *ve;
		bool recent = false;
		time_t now = time(NULL);
		/* (no record: no pid to tell a run just starting from a
		 * dead one, only time) */
		while (lr < 0 && v && (ve = readdir(v)))
			if (!fr_path_fmt(f, sizeof(f), "%s/%s", dir, ve->d_name) &&
			    ve->d_name[0] != '.' && stat(f, &st) == 0 &&
			    now - st.st_mtime < SWEEP_QUIET_S)
				recent = true;
		if (v)
			rewinddir(v);
		unsigned n = 0;
		while (!recent && v && (ve = readdir(v))) {
			size_t l = strlen(ve->d_name);
			if (!strncmp(ve->d_name, "vol-", 4) && l > 8 &&
			    (!strcmp(ve->d_name + l - 4, ".fpv") ||
			     !strcmp(ve->d_name + l - 4, ".txt")) &&
			    !fr_path_fmt(f, sizeof(f), "%s/%s", dir, ve->d_name) &&
			    unlink(f) == 0)
				n++;
		}
		if (v)
			closedir(v);
		if (recent)
			continue;
		rmdir(dir);
		if (lr < 0) /* a record never written: nothing to keep */
			rmdir(rec);
		fr_log(FR_LOG_INFO,
		       "removed %u file(s) of parcel %s from '%s': the run that "
		       "wrote it was interrupted, its volumes cut short",
		       n, id, media);
	}
	closedir(d);
}

static int create_record(struct creation *cr)
{
	struct fr_manifest *m = &cr->m;
	struct prep *pp = &cr->pp;
	struct parcel *p = &cr->p;
	char pdir[1200];
	int rc;

	size_t mf_len = fr_manifest_encoded_size(m);
	if (mf_len > FR_MANIFEST_MAX) {
		char ep[FR_ESC_MAX];
		fr_log(FR_LOG_ERROR, "'%s' has too many entries for one manifest",
		       fr_esc(cr->src, ep, sizeof(ep)));
		return FR_E_TOO_LARGE;
	}
	for (unsigned i = 0; i < cr->n_media; i++)
		sweep_cut(cr->c, cr->media[i]);
	pp->c = cr->c;
	pp->o = cr->o;
	pp->t0 = cr->t0;
	pp->first = cr->o->first;
	pp->site = cr->o->site;
	pp->src = cr->src;
	pp->m = m;
	pp->p = p;
	pp->mf_len = mf_len;
	if ((rc = prep_alloc(pp, m->n_segments)) < 0)
		return rc;

	fr_random(cr->w.h.parcel, FR_HASH_LEN);
	memcpy(pp->parcel, cr->w.h.parcel, FR_HASH_LEN);
	fr_hex(cr->w.h.parcel, FR_HASH_LEN, p->id);
	if ((rc = parcels_dir(cr->c, pdir, sizeof(pdir))) < 0 ||
	    (rc = fr_path_fmt(p->dir, sizeof(p->dir), "%s/%.12s", pdir,
			      p->id)) < 0 ||
	    (rc = fr_mkdirs(p->dir)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot create the parcel's record in '%s': %s",
		       pdir, fr_strerror(rc));
		return rc;
	}
	snprintf(p->name, sizeof(p->name), "%s", m->name);
	snprintf(p->site, sizeof(p->site), "%s", cr->o->site);
	snprintf(p->address, sizeof(p->address), "%s", cr->ca->name);
	snprintf(p->state, sizeof(p->state), "creating");
	p->pid = (long)getpid();
	p->n_segments = m->n_segments;
	p->first = cr->o->first;
	p->created = (int64_t)time(NULL);
	snprintf(p->media, sizeof(p->media), "%s", cr->media[0]);
	/* recorded from the start: a run killed before the site answered
	 * shows interrupted (its pid gone), and its cut volumes are swept
	 * at once by the next parcel to the medium */
	if ((rc = parcel_save(p)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot write the parcel's record in '%s': %s",
		       p->dir, fr_strerror(rc));
		return rc;
	}
	return 0;
}

/* Hashing and registration behind the frames, the first volume, the
 * packing slots, then the frames. */
static int create_frames(struct creation *cr)
{
	const struct fr_config *c = cr->c;
	struct prep *pp = &cr->pp;
	struct vwriter *w = &cr->w;
	int rc;

	if ((rc = fr_hash_start(&pp->h, cr->src, cr->single, &cr->m,
				&pp->stop)) < 0) {
		char ep[FR_ESC_MAX];
		fr_log(FR_LOG_ERROR, "cannot start hashing '%s': %s",
		       fr_esc(cr->src, ep, sizeof(ep)), fr_strerror(rc));
		return rc;
	}
	if (pthread_create(&pp->t, NULL, prep_thread, pp) != 0) {
		atomic_store(&pp->stop, true);
		fr_hash_finish(pp->h);
		return -EAGAIN;
	}
	pp->running = true;

	/* the volumes: frames first, the manifest (waited for) closes each
	 * one */
	w->prep = pp;
	vw_setup(w, c, cr->o, cr->ca, pp, &cr->m, cr->media, cr->n_media,
		 pp->mf_len, cr->p.created);
	if ((rc = vw_open(w)) < 0 || (rc = vw_room(w, 0, false)) < 0) {
		if (w->err[0])
			fr_log(FR_LOG_ERROR, "%s", w->err);
		return rc;
	}

	cr->fixed = cr->o->level >= -1 ? cr->o->level : c->level;
	fr_adapt_init(&cr->ad, fr_workq_count(), cr->fixed);
	cr->ad.prefer_small = true;
	if (cr->fixed < 0)
		cr->ad.level = FR_SMALL_FLOOR; /* until measured */
	cr->pk.key = w->key;
	cr->pk.ph = w->ph;
	if ((rc = fr_producer_init(&cr->pr, &cr->m, cr->src, cr->single,
				   w->h.parcel, PSLOTS, pack_seal, &cr->pk)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot set up the data path: %s",
		       fr_strerror(rc));
		return rc;
	}
	return write_frames(cr);
}

/* The parcel kept, for the caller to show: its record, its volumes. */
static void made_said(struct creation *cr, double secs)
{
	struct fr_parcel_made *md = cr->made;
	const struct vwriter *w = &cr->w;

	md->kept = true;
	parcel_info(&cr->p, &md->p);
	snprintf(md->p.name, sizeof(md->p.name), "%s", cr->m.name);
	md->raw_bytes = cr->raw_done;
	md->seconds = secs;
	if (!(md->paths = calloc(w->n_vols + 1, sizeof(*md->paths))))
		return;
	for (uint32_t k = 0; k < w->n_vols; k++)
		if ((md->paths[md->n_paths] = strdup(w->vols[k].path)))
			md->n_paths++;
}

void fr_parcel_made_fini(struct fr_parcel_made *m)
{
	for (uint32_t k = 0; k < m->n_paths; k++)
		free(m->paths[k]);
	free(m->paths);
	m->paths = NULL;
	m->n_paths = 0;
	fr_left_list_fini(&m->left);
}

/* The frames stopped (rc: why): the last volume closed, and the parcel
 * kept (its packing lists, its record, the summary) or its volumes
 * dropped. */
static int create_close(struct creation *cr, int rc)
{
	struct prep *pp = &cr->pp;
	struct parcel *p = &cr->p;
	struct vwriter *w = &cr->w;

	if (cr->o->progress_end)
		cr->o->progress_end(cr->o->progress_arg);
	while (fr_producer_take(&cr->pr)) /* the frames still out */
		;
	/* an error other than a full medium after some frames: the hashing
	 * need not go on */
	if (rc < 0 && (rc != -ENOSPC || cr->written == 0))
		atomic_store(&pp->stop, true);
	rc = close_last_volume(w, rc, cr->t0);
	/* volumes without a manifest, from a source that changed or could
	 * not be read, or not needed: none is kept */
	bool keep = rc == 0 || (!cr->o->whole && cr->written > 0 &&
				pp->settled &&
				pp->settle_rc == 0 && rc != FR_E_CHANGED &&
				!cr->unread);
	if (!keep && cr->unread && cr->written > 0)
		fr_log(FR_LOG_ERROR, "the parcel is not kept: create it again "
		       "once the source can be read");
	if (pp->complete)
		rc = 0;
	if (!keep || pp->complete) {
		drop_volumes(w);
		if (p->dir[0])
			fr_remove_tree(p->dir);
		return rc;
	}
	cr->kept = true;
	for (uint32_t k = 0; k < w->n_vols; k++)
		write_packing_list(w, k);
	p->volumes = w->n_vols;
	p->bytes = w->total_bytes;
	p->raw = cr->raw_done;
	p->left_out = not_written(pp, &cr->m);
	p->segments = cr->written;
	double secs = fr_now_s() - cr->t0;
	snprintf(p->state, sizeof(p->state), "created");
	parcel_save(p);
	if (cr->o->quiet) {
		char rz[32];
		fr_log(FR_LOG_INFO,
		       "parcel %.12s for %s: segments %u to %u (%s) in %u "
		       "volume(s) on %s, %.1f s: ship it",
		       p->id, cr->o->site, cr->o->first, cr->m.n_segments - 1,
		       fr_human_bytes(cr->raw_done, rz, sizeof(rz)), w->n_vols,
		       cr->media[0], secs);
	}
	if (cr->made)
		made_said(cr, secs);
	return rc;
}

/* What the walk left out handed to the caller (an error unless
 * --skip-special), everything let go, and a registration of a parcel
 * not kept withdrawn. */
static int create_end(struct creation *cr, int rc)
{
	struct prep *pp = &cr->pp;
	struct vwriter *w = &cr->w;

	if (rc == 0 && cr->left.n && !cr->o->skip_special)
		rc = FR_E_LEFT_OUT;
	if (cr->made) {
		cr->made->left = cr->left;
		memset(&cr->left, 0, sizeof(cr->left));
	}
	fr_left_list_fini(&cr->left);
	if (w->fd >= 0)
		close(w->fd);
	fr_producer_fini(&cr->pr);
	for (uint32_t k = 0; k < w->n_vols; k++)
		free(w->vols[k].segs);
	free(w->vols);
	sodium_memzero(w->key, sizeof(w->key));
	if (pp->running) {
		atomic_store(&pp->stop, true);
		pthread_join(pp->t, NULL);
	}
	/* registered, and no parcel after all */
	if (pp->registered && !cr->kept)
		withdraw_parcel(cr->c, cr->o->site, pp->parcel);
	free(pp->mf);
	free(pp->have);
	free(pp->wrote);
	free(pp->whash);
	free(pp->seglist);
	fr_manifest_fini(&cr->m);
	return rc;
}

int fr_parcel_create(const struct fr_config *c, const struct fr_parcel_opts *o,
		     struct fr_parcel_made *made)
{
	struct creation cr = {.c = c, .o = o, .t0 = fr_now_s(),
			      .w = {.fd = -1}, .pr = {.dq = {.efd = -1}},
			      .made = made};
	int rc;

	if (made)
		memset(made, 0, sizeof(*made));
	if ((rc = create_source(&cr)) < 0)
		return rc;
	if ((rc = create_record(&cr)) == 0)
		rc = create_close(&cr, create_frames(&cr));
	return create_end(&cr, rc);
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
		    !strcmp(p->state, "creating") ||
		    !strcmp(p->state, "interrupted") ||
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
			const char *ns =
				st[q] == FR_PARCEL_RECEIVED     ? "received"
				: st[q] == FR_PARCEL_SUPERSEDED ? "not-needed"
								: NULL;
			if (ns && strcmp(p->state, ns)) {
				snprintf(p->state, sizeof(p->state), "%s", ns);
				if (st[q] == FR_PARCEL_RECEIVED)
					p->received = (int64_t)time(NULL);
				parcel_save(p);
			}
		}
	}
	free(ids);
	free(who);
	free(st);
}

int fr_parcel_list(const struct fr_config *c, bool offline,
		   struct fr_parcel_info **out, uint32_t *n)
{
	struct parcel *ps;

	*out = NULL;
	load_all(c, &ps, n);
	if (!offline)
		catch_up(c, ps, *n);
	if (*n && !(*out = calloc(*n, sizeof(**out)))) {
		free(ps);
		*n = 0;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < *n; i++)
		parcel_info(&ps[i], &(*out)[i]);
	free(ps);
	return 0;
}

int fr_parcel_ship(const struct fr_config *c, const char *which,
		   struct fr_parcel_info *out, bool *already)
{
	struct parcel *ps;
	uint32_t n, hit = 0, k = 0;
	int rc = 0;

	*already = false;
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
	} else if (!strcmp(p->state, "shipped")) {
		*already = true;
	} else if (!strcmp(p->state, "interrupted")) {
		fr_log(FR_LOG_ERROR,
		       "parcel %.12s was not written whole (the run that "
		       "wrote it to %s was interrupted): nothing to ship; its "
		       "volumes there may be removed, and a new parcel made",
		       p->id, p->media);
		rc = -EINVAL;
	} else {
		fr_log(FR_LOG_ERROR, "parcel %.12s is %s: nothing to ship", p->id,
		       p->state);
		rc = -EINVAL;
	}
	parcel_info(p, out);
	free(ps);
	return rc;
}
