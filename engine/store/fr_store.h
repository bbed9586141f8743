/*
 * fr_store.h - engine/store/: the receiving site's store: the journal,
 * partial packages and their files, the syncer, the open package shared
 * by its arrivals (inbound.c), and a tree checked against its manifest
 * (verify.c).
 */
#ifndef FR_STORE_H
#define FR_STORE_H

#include "pipe/fr_pipe.h"

/* ---- journal (journal.c) ----------------------------------------------- */

#define FR_JOURNAL_MAGIC 0x4c4a5246u /* "FRJL" */
#define FR_JREC_MAGIC 0x524a5246u    /* "FRJR" */
#define FR_JOURNAL_HDR 32
#define FR_JREC_LEN 32

struct fr_journal {
	int fd;
	uint64_t end;        /* byte offset of the next record */
	uint32_t n_segments;
	uint8_t *have;       /* one byte per segment: 1 when journaled */
	uint32_t n_have;
	uint32_t cut;        /* records dropped at open (torn or corrupt) */
	/* records an open manifest could not confirm (it had no hash for
	 * the segment): per segment 1 + the hash, or NULL when none */
	uint8_t *unconfirmed;
	uint32_t n_unconfirmed;
};
void fr_jrec_pack(uint8_t dst[FR_JREC_LEN], uint32_t index,
		  const uint8_t hash[FR_HASH_LEN]);
/* 0 and fields, or a code (FR_E_BAD_MAGIC / FR_E_CHECKSUM). */
int fr_jrec_unpack(const uint8_t src[FR_JREC_LEN], uint32_t *index,
		   uint8_t hash[FR_HASH_LEN]);
/*
 * Open or create the journal for manifest m. Replays it: a record is
 * accepted when it is intact and its hash matches the manifest; the
 * file is cut after the last good record, so a torn tail disappears.
 */
int fr_journal_open(struct fr_journal *j, const char *path,
		    const struct fr_manifest *m);
/* Append records for segs[0..n) and make them durable (fdatasync). */
/* A copy of segment idx with hash h is held that the open manifest does
 * not confirm (for HELD; not journaled: the caller says where it is). */
void fr_journal_note_copy(struct fr_journal *j, uint32_t idx,
			  const uint8_t h[FR_HASH_LEN]);
int fr_journal_append(struct fr_journal *j, const struct fr_manifest *m,
		      const uint32_t *segs, unsigned n);
void fr_journal_close(struct fr_journal *j);
/* Replace the journal at path with one holding exactly the segments
 * with have[i] set (tmp file, fdatasync, rename, fsync of the dir). */
int fr_journal_rewrite(const char *path, const struct fr_manifest *m,
		       const uint8_t *have);
/* The records of the segments with drop[i] set (held, or copies the
 * open manifest could not confirm) left out of the journal at path,
 * which j is then opened again on. 0 or a negative code (j closed). */
int fr_journal_drop(struct fr_journal *j, const char *path,
		    const struct fr_manifest *m, const uint8_t *drop);
/* The journal at path made another listing's (lid): its records kept,
 * to be checked against that listing's hashes at open. 0 or -errno. */
int fr_journal_rebind(const char *path, const uint8_t lid[FR_HASH_LEN]);

/* ---- the receiving store (store.c) ------------------------------------- */

struct fr_store_pkg {
	char dir[1100];      /* <store>/partial/<id> */
	char tree[1200];     /* <dir>/tree; repairing: <store>/packages/<name> */
	bool repair;         /* a complete package, repaired in place */
	bool view;           /* an arrival's view (inbound.c): its fds only */
	int tree_fd;
	int lock_fd;
	int store_fd;        /* for syncfs */
	struct fr_manifest m;
	struct fr_journal j;
	int *fds;            /* per entry: [2e] buffered, [2e+1] O_DIRECT */
	uint8_t *nodirect;   /* per entry: O_DIRECT refused for this file */
	unsigned n_open;
	/* an open offer of the listing of the package in place: what the
	 * journal does not hold is offered as copies of that package's
	 * segments (HELD), read from placed_tree ("" when none) */
	char placed_tree[1200];
	uint8_t *placed;     /* per segment: its copy is in placed_tree */
	bool placed_same;    /* placed_tree is this listing (else another
			      * version with the same files and sizes) */
	bool fresh;          /* its partial directory was made by this open */
	bool placed_all;     /* ... every hash the offer knows is its, and
			      * nothing is received yet: every segment is
			      * offered as a copy, none taken from it */
};
/*
 * Accept a manifest: create (or reopen) the partial package, lock it,
 * create its directories and files, replay its journal. Returns
 * FR_HAVE_COMPLETE when the package is already in place.
 */
int fr_store_open(const char *store, const uint8_t *mf, size_t mf_len,
		  const char *from, struct fr_store_pkg *p, char *errbuf,
		  size_t errcap);
/*
 * The sender's segment table (TABLE: n_segments hashes), every segment
 * journaled: each must be the hash of the segment as received (a frame's
 * own hash, from an open manifest). The manifest becomes complete, its id
 * the package id, and replaces the open one in the partial package.
 * FR_HAVE_COMPLETE: nothing was received and the table is that of the
 * package in place (its copies, every one the sender's): the caller
 * drops the partial package (fr_store_discard) instead of finalizing.
 */
int fr_store_settle(struct fr_store_pkg *p, const uint8_t *tab, uint32_t len,
		    char *errbuf, size_t errcap);
/* The partial package is not needed (the package in place is the one
 * offered): removed, its lock still held until fr_store_close. */
void fr_store_discard(struct fr_store_pkg *p);
#define FR_STORE_MAX_OPEN 128
/* True when fr_store_fd(p, e, direct) would first close the cached fds. */
static inline bool fr_store_fd_would_close(const struct fr_store_pkg *p,
					   uint32_t e, bool direct)
{
	return p->fds[2 * e + (direct ? 1 : 0)] < 0 &&
	       p->n_open >= FR_STORE_MAX_OPEN;
}
/* fd of entry e for writing (cached); direct: opened O_DIRECT, or
 * -EINVAL when the file system refuses that (then use buffered). */
int fr_store_fd(struct fr_store_pkg *p, uint32_t e, bool direct);
/*
 * Write verified segment seg (its raw bytes) into its files, each file
 * opened (created) and closed here: safe from several threads at once,
 * for different segments. The block-aligned middle of a large extent
 * whose bytes line up (see fr_dio_shift) is written O_DIRECT, the
 * rest buffered. On failure errbuf names the file.
 */
int fr_store_write_segment(const struct fr_store_pkg *p, uint32_t seg,
			   const uint8_t *data, char *errbuf, size_t errcap);
/*
 * The syncer (syncer.c): a thread that makes written segments durable
 * (syncfs) and journals them, in batches, while the caller writes on.
 * done (may be NULL) is called from that thread with each journaled
 * batch; notify_fd (or -1), an eventfd, is written after each batch.
 */
struct fr_syncer {
	struct fr_store_pkg *pkg;
	void (*done)(void *arg, const uint32_t *segs, uint32_t n);
	void *arg;
	int notify_fd;
	/* or, when set, called (with arg) where notify_fd would be written:
	 * once the batch counts as journaled */
	void (*wake)(void *arg);
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond, idle;
	uint32_t *pending, n_pending;
	uint32_t n_added, n_journaled;
	bool stop, running;
	int err; /* the first failure; nothing is journaled after it */
};
int fr_syncer_start(struct fr_syncer *s, struct fr_store_pkg *p,
		    void (*done)(void *arg, const uint32_t *segs, uint32_t n),
		    void *arg, int notify_fd);
/* Segment seg is written: make it durable and journal it. */
void fr_syncer_add(struct fr_syncer *s, uint32_t seg);
/* The first failure (or 0); backlog: added but not yet journaled. */
int fr_syncer_state(struct fr_syncer *s, uint32_t *backlog);
/* Wait until at most max_backlog segments are not yet journaled. */
int fr_syncer_wait(struct fr_syncer *s, uint32_t max_backlog);
/* Journal what is pending, end the thread; returns the first failure. */
int fr_syncer_stop(struct fr_syncer *s);

/*
 * One open package shared by all its arrivals (inbound.c): the sessions of
 * one sender receiving it at once, over several links. Opened by the
 * first, closed by the last; one journal, one syncer; each segment
 * claimed by the arrival that receives it first.
 */
#define FR_IN_ARRIVALS 32
struct fr_arrival {
	/* an ACK for seg (FR_ACK_*), from the syncer's thread */
	void (*ack)(void *arg, uint32_t seg, uint32_t status);
	void (*wake)(void *arg); /* the sync window has room */
	/* its peer is gone (closed, or silent with nothing unread): told
	 * to stop, true; NULL or false: it may still bring what it claimed */
	bool (*gone)(void *arg);
	void *arg;
	/* what it brings is told to the other arrivals as it is journaled
	 * (an ACK to each: a parcel import, so that the network sessions'
	 * senders stop before sending it) */
	bool announce;
	/* a copy of a segment it is receiving that comes whole first, by
	 * another session, may take the segment from it (a network session,
	 * whose writes ask fr_inbound_write_begin) */
	bool yields;
	/* it brings whole copies and nobody can be asked for them again (a
	 * parcel import): its copy races a claimer that was told to stop
	 * as well as a live one */
	bool whole;
	/* the partial package stays when it leaves, even empty (a parcel's
	 * registration: it keeps the manifest registered) */
	bool keeps;
};
struct fr_inbound {
	struct fr_inbound *next;
	uint8_t lid[FR_HASH_LEN];
	char from[FR_CODE_MAX + 1];
	bool closing;            /* being completed: nobody joins */
	bool finished, complete; /* ... and how that went (fin) */
	bool claimed;            /* a segment was ever claimed: bytes may
				  * have reached the partial tree */
	bool keep;               /* an arrival keeps the partial package */
	pthread_cond_t fin;
	int refs;
	struct fr_store_pkg pkg;
	struct fr_syncer sy;
	pthread_mutex_t mu;
	uint8_t *claim;          /* per segment: arrival + 1 receiving it */
	uint32_t *wait;          /* per segment: arrivals with a copy of it */
	uint8_t *second;         /* per segment: arrival + 1 receiving a copy
				  * that races the claimer's */
	uint8_t *landed;         /* per segment: all written by its claimer,
				  * handed to the syncer */
	uint32_t *writing;       /* per segment: writes out */
	uint32_t *losers;        /* per segment: arrivals a racing copy took
				  * it from (told when it is durable, or
				  * asked for it again once they let go) */
	struct fr_arrival arr[FR_IN_ARRIVALS];
	uint32_t used;
	uint32_t ending;         /* arrivals told to stop (gone), not left */
	uint64_t joined[FR_IN_ARRIVALS]; /* when each joined (monotonic ns) */
	pthread_cond_t let_go;   /* a claim cleared, or an arrival left
				  * (CLOCK_MONOTONIC) */
};
/* Join the package offered (mf): opened here if nobody has it open, else
 * shared with the same account's sessions. FR_HAVE_PARTIAL (joined: *out,
 * *slot, and *view to work through), FR_HAVE_COMPLETE (*view is the
 * package, to fr_store_close), -EBUSY (another account's, or finishing),
 * FR_E_CHANGED (a hash differs from the first offer's) or an error. */
int fr_inbound_join(const char *store, const uint8_t *mf, size_t len,
		 const char *from, const struct fr_arrival *me,
		 struct fr_inbound **out, int *slot, struct fr_store_pkg *view,
		 char *err, size_t cap);
/* Leave; the last arrival closes the package. */
void fr_inbound_leave(struct fr_inbound *op, int slot);
enum {
	FR_IN_MINE,
	FR_IN_HELD,
	FR_IN_ELSEWHERE,
	FR_IN_AGAIN,
	FR_IN_SECOND,
	FR_IN_WRITING,
	FR_IN_ACKED
};
/* Arrival slot receives seg: FR_IN_MINE (claimed: write it), HELD
 * (durable: a copy, ACK it), ELSEWHERE (another arrival writes it: a
 * copy, ACKed when it is durable), AGAIN (this arrival has it already). */
int fr_inbound_claim(struct fr_inbound *op, int slot, uint32_t seg);
/* A claimed segment not written after all (corrupt, cut off). */
void fr_inbound_unclaim(struct fr_inbound *op, int slot, uint32_t seg);
/* Arrival slot waits for copies of segments another arrival claimed: an
 * arrival among those whose peer is gone (a dead line holds its frame
 * for ever) is told to stop; when it leaves, its claims go back and the
 * waiters' senders are asked for them again. Returns how many segments
 * slot still waits for (0: nothing to look at again). */
unsigned fr_inbound_end_gone(struct fr_inbound *op, int slot);
/* fr_inbound_claim, and when another arrival claimed seg: that one is
 * looked at (as end_gone does); if it was told to stop, wait up to ms
 * for it to let go and claim seg, so that this copy is the one written
 * (FR_IN_MINE, or FR_IN_HELD). While it is not told to, it is looked at
 * again every 100 ms when it joined at least 1 s before slot and slot
 * less than ms ago (the close of a sender that died just before this
 * one may be on its way). FR_IN_ELSEWHERE when it is still claimed (the
 * copy is not kept, as before). All under one hold of the lock between
 * the waits: a claim let go meanwhile is never answered AGAIN to slot. */
int fr_inbound_claim_wait(struct fr_inbound *op, int slot, uint32_t seg,
			  unsigned ms, bool race);
/*
 * Racing copies (the endgame of a striped send: the sender copies the
 * last segments of a slow link onto a fast one). With race, a copy of a
 * segment that a live arrival which yields is still receiving is
 * FR_IN_SECOND: it is received whole and checked, not written, and then
 * fr_inbound_take decides. The copy that is whole first is the one
 * written, and both senders hear when it is durable:
 *   FR_IN_MINE     the segment is slot's now: write it (a claimer that
 *                  was still receiving it writes nothing more of it);
 *   FR_IN_WRITING  slot's, but the old claimer's writes are still out
 *                  (waited for up to wait_ms): ask again soon;
 *   FR_IN_ELSEWHERE the claimer has it all written: the copy goes, its
 *                  ACK comes when the segment is durable;
 *   FR_IN_ACKED    durable already, and slot was told: the copy goes.
 * A claimer let go (unclaim, leave) hands the segment to the copy racing
 * it, if there is one, instead of asking the waiters for it again.
 */
int fr_inbound_take(struct fr_inbound *op, int slot, uint32_t seg,
		    unsigned wait_ms);
/* Does slot still hold seg (its claim, or its racing copy's)? */
bool fr_inbound_holds(struct fr_inbound *op, int slot, uint32_t seg);
/* slot let go of a copy it no longer held: true when nobody brings seg
 * any more and slot's sender must send it again (a racing copy took it
 * from slot, then failed); else slot hears when seg is durable, or did. */
bool fr_inbound_drop(struct fr_inbound *op, int slot, uint32_t seg);
/* seg's hash as the package knows it (all zero: not yet, an open offer),
 * and settled by the first copy that verified: under the package's
 * lock, as two arrivals' workers may check copies of one segment. */
void fr_inbound_hash(struct fr_inbound *op, uint32_t seg,
		     uint8_t out[FR_HASH_LEN]);
void fr_inbound_hash_settle(struct fr_inbound *op, uint32_t seg,
			    const uint8_t h[FR_HASH_LEN]);
/* Each write into seg's files: begin says whether slot still holds seg
 * (false: it was taken by a copy, write nothing more of it); end, once
 * the write is over. */
bool fr_inbound_write_begin(struct fr_inbound *op, int slot, uint32_t seg);
void fr_inbound_write_end(struct fr_inbound *op, uint32_t seg);
/* seg is all written by slot, for the syncer: false when a copy took it
 * meanwhile (this arrival's bytes are not counted). */
bool fr_inbound_land(struct fr_inbound *op, int slot, uint32_t seg);
/* END came: true for the first session, which completes the package and
 * says how that went (finish_end); the others wait for it (true: the
 * package is complete). */
bool fr_inbound_finish_begin(struct fr_inbound *op);
void fr_inbound_finish_end(struct fr_inbound *op, bool ok);
bool fr_inbound_finish_wait(struct fr_inbound *op);
/* The package is complete (an arrival's END or import completed it);
 * each arrival was woken when it became so. */
bool fr_inbound_completed(struct fr_inbound *op);
/* Another arrival's END came: the package is being completed, or was
 * (not one whose completion failed). */
bool fr_inbound_completing(struct fr_inbound *op);
unsigned fr_inbound_arrivals(struct fr_inbound *op);
/* An arrival's own view of an open package: the same manifest and
 * journal (never freed through it), its own file descriptors. */
int fr_store_view(const struct fr_store_pkg *p, struct fr_store_pkg *view);

/*
 * A partial package's times (unix seconds) from what is in its directory
 * (<store>/partial/<id>): created, when its manifest was first written;
 * last, its last activity: a segment journaled, a session that took it
 * up, a frame kept from a cut connection. Either may be NULL.
 */
int fr_partial_times(const char *dir, int64_t *created, int64_t *last);
/* Remove the partial package <store>/partial/<id>, unless a session holds
 * it (-EBUSY) or, with only_empty, it holds a journaled segment
 * (-ENOTEMPTY): 0 or a negative code. */
int fr_store_drop(const char *store, const char *id, bool only_empty);
/* Every segment journaled: verify, apply metadata, move into place; then
 * the partial packages of older versions of the same name go. */
/* Read and decode the manifest file at path (0, or a negative code). */
int fr_manifest_load(const char *path, struct fr_manifest *m);
int fr_store_finalize(struct fr_store_pkg *p, const char *store,
		      char *errbuf, size_t errcap);
void fr_store_close(struct fr_store_pkg *p);
/* At serve's start: the store is (or can be made) a directory with its
 * subdirectories, and a file can be created in it. 0, or a negative code
 * with the reason, naming the path, in errbuf. */
int fr_store_check(const char *store, char *errbuf, size_t errcap);
/*
 * Damaged segments of the complete package m marked missing (bad: one
 * byte per segment, 1 = to be sent again): <store>/partial/<id>/ gets
 * the manifest, a journal of every other segment and a "repair" marker
 * naming the damaged ones, so that fr_store_open answers the next offer
 * of the package with those segments, which are then written in place
 * into packages/<name>/. -EBUSY when a session holds the package.
 */
int fr_store_mark_repair(const char *store, const struct fr_manifest *m,
			 const uint8_t *bad, char *errbuf, size_t errcap);
/* Put back what needs no data in the tree at root: missing directories
 * and empty files, symlinks, modes and times, from the manifest. */
int fr_tree_restore(const char *root, const struct fr_manifest *m,
		    char *errbuf, size_t errcap);

/* ---- a tree against its manifest (verify.c) ---------------------------- */

enum fr_diff_kind {
	FR_DIFF_MISSING,
	FR_DIFF_EXTRA,
	FR_DIFF_TYPE,
	FR_DIFF_SIZE,
	FR_DIFF_MODE,
	FR_DIFF_MTIME,
	FR_DIFF_LINK,
	FR_DIFF_CONTENT,
};
#define FR_DIFF_ROOT UINT32_MAX /* entry of the package directory itself */
struct fr_diff {
	enum fr_diff_kind kind;
	uint32_t entry;     /* the manifest's entry (content: the suspect) */
	uint32_t segment;   /* content: the segment */
	uint32_t n_files;   /* content: files holding bytes of it */
	uint64_t got;       /* mode, size, mtime seconds found */
	uint32_t got_nsec;
	char *text;         /* extra: its path; link: its target; type:
			     * what is there; content: a read error */
};
struct fr_tree_diffs {
	struct fr_diff *v;  /* in manifest order, then extra, then content */
	uint32_t n, cap;
	uint8_t *bad;       /* per segment: 1 = its bytes must come again */
	uint32_t n_bad;
	bool no_root;       /* the package directory is gone */
	bool unfixable;     /* a type difference: repair would destroy it */
	bool oom;
};
/* Every difference between the tree at root and m; 0 or an error (a
 * difference is not an error). fini is safe on a zeroed struct. */
int fr_tree_diff(const char *root, const struct fr_manifest *m,
		 struct fr_tree_diffs *d);
void fr_tree_diffs_fini(struct fr_tree_diffs *d);
const char *fr_diff_kind_name(enum fr_diff_kind k);
const char *fr_diff_path(const struct fr_manifest *m, const struct fr_diff *x);
/* One line (no newline) saying what differs, the path escaped. */
void fr_diff_text(const struct fr_manifest *m, const struct fr_diff *x,
		  char *buf, size_t cap);
/* fr_tree_diff, reduced to the first difference's text and the count of
 * damaged segments: 0, FR_E_INCOMPLETE (something missing) or
 * FR_E_HASH_MISMATCH. */
int fr_tree_verify(const char *root, const struct fr_manifest *m,
		   char *errbuf, size_t errcap, uint32_t *bad_segments);

#endif
