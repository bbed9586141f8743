/*
 * fr_internal.h - what the engine's own files share and tools/ must not
 * see: the wire messages, authentication, the journal, the store, the
 * worker pool, the scanner and small file-system helpers.
 */
#ifndef FR_INTERNAL_H
#define FR_INTERNAL_H

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fr_codec.h"
#include "fr_engine.h"
#include "fr_io.h"

#define FR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- time and helpers (util.c) ----------------------------------------- */

uint64_t fr_now_ns(void);             /* CLOCK_MONOTONIC */
/*
 * Test hooks: FERRY_<name> switches that force a path for a test. Only a
 * build configured with FERRY_TEST_HOOKS obeys them; in any other build
 * they are false and the default. A flag must be "1", a number digits
 * only: any other value ends the process with a message (exit 2).
 */
bool fr_hook_flag(const char *name);
unsigned long fr_hook_num(const char *name, unsigned long dflt);
/* The wall clock that address schedules are decided against: time(NULL),
 * later by FERRY_CLOCK_SHIFT_S seconds in a test build (a window that
 * closes in seconds, not at the next minute). */
time_t fr_schedule_now(void);
double fr_now_s(void);
/* Seconds since this process started (10 ms steps). */
double fr_process_s(void);
double fr_thread_cpu_s(void);         /* this thread's CPU time */
/* mkdir -p relative to nothing: every missing component, mode 0755. */
int fr_mkdirs(const char *path);
/* All of buf at off (off < 0: at the file position), across short
 * writes and EINTR. 0 or -errno. */
int fr_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Write data to path atomically (tmp file, fsync, rename, fsync dir). */
int fr_write_file_atomic(const char *path, const void *data, size_t len);
/* Read a whole small file (at most max bytes) into a malloc'd buffer. */
int fr_read_file(const char *path, size_t max, uint8_t **out, size_t *len);
int fr_fsync_dir(const char *path);
/* rm -rf, staying on the given tree (no symlink is followed). */
int fr_remove_tree(const char *path);
/* snprintf that reports truncation as -ENAMETOOLONG. */
int fr_path_fmt(char *dst, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A progress line on the terminal (stderr), never wider than it (its
 * TIOCGWINSZ, else $COLUMNS, else 80): the parts in order, two spaces
 * apart; while too wide, the part with the highest drop rank is left
 * out (rank 0 never), and what is still too wide is cut. */
struct fr_tty_part {
	const char *text;
	int drop;
};
void fr_tty_line(const struct fr_tty_part *parts, unsigned n);
/* fr_human_bytes, fr_json_time, fr_span_str, fr_json_str, fr_esc: in
 * fr_engine.h, for the command line too. */
/* The value of "key=value" lines in text (0), or -ENOENT and "". */
int fr_kv_get(const char *text, const char *key, char *out, size_t cap);
long fr_kv_num(const char *text, const char *key); /* 0 when absent */

/* ---- parcel records sealed at rest (pseal.c) ---------------------------- */

/* the associated data of a record: its volume header without the volume
 * number and checksum (the parcel's), then its record header */
#define FR_PSEAL_AD (FR_VOL_HDR + FR_REC_HDR)
struct fr_piece {
	uint8_t *p;
	size_t len; /* a multiple of 64 but for the last piece */
};
/* The parcel's key: BLAKE2b-256 keyed with the account's key over
 * "ferry-parcel-v3" | parcel id. */
void fr_pseal_key(const uint8_t account_key[32],
		  const uint8_t parcel[FR_HASH_LEN], uint8_t out[32]);
/* What the volume header carries to tell a wrong key: BLAKE2b-128 keyed
 * with the parcel's key over "ferry-parcel-check". */
void fr_pseal_check(const uint8_t pkey[32], uint8_t out[FR_CHECK_LEN]);
/* A record's bytes on the medium: header, nonce, body, tag. */
uint64_t fr_pseal_rec_size(uint64_t body);
void fr_pseal_ad(const uint8_t vh[FR_VOL_HDR], const uint8_t rh[FR_REC_HDR],
		 uint8_t ad[FR_PSEAL_AD]);
/* Seal the pieces (one body) in place under a fresh random nonce. */
void fr_pseal(const uint8_t key[32], uint8_t nonce[FR_REC_NONCE],
	      const uint8_t *ad, size_t ad_len, const struct fr_piece *pc,
	      unsigned n, uint8_t mac[FR_REC_MAC]);
/* The tag checked, nothing decrypted. */
bool fr_pseal_verify(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		     const uint8_t *ad, size_t ad_len,
		     const struct fr_piece *pc, unsigned n,
		     const uint8_t mac[FR_REC_MAC]);
/* Checked, then opened in place; false (nothing changed) when altered. */
bool fr_pseal_open(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		   const uint8_t *ad, size_t ad_len,
		   const struct fr_piece *pc, unsigned n,
		   const uint8_t mac[FR_REC_MAC]);
/* En- or decrypt len bytes at byte `at` (a multiple of 64) of a body,
 * the tag unchecked: to peek at a frame's header before its payload is
 * read. */
void fr_pseal_xor(const uint8_t key[32], const uint8_t nonce[FR_REC_NONCE],
		  uint64_t at, uint8_t *p, size_t len);

/* ---- authentication (auth.c) ------------------------------------------- */

#define FR_NONCE_LEN 32
#define FR_SID_LEN (2 * FR_NONCE_LEN) /* client nonce | server nonce */
#define FR_CONFIRM_LEN 32
/* Derive the account's key from a password and the account's code. */
int fr_key_derive(const char *password, size_t len, const char *account,
		  uint8_t key[32]);
/* Read a secret: from a file (first line), or an environment variable. */
int fr_secret_load(const char *file, const char *env, char *out, size_t cap,
		   const char *what);
void fr_random(void *buf, size_t len);
/*
 * CPace over ristretto255 (PROTOCOL.md): the generator from the account
 * key (the password string), the account and the session id; a share
 * Y = y * g; and the intermediate session key from our scalar, the other
 * side's share and the transcript (the server's share and data first).
 * FR_E_AUTH for a share that is not a valid point or makes the identity.
 */
int fr_cpace_generator(const uint8_t prs[32], const char *account,
		       const uint8_t sid[FR_SID_LEN], uint8_t g[32]);
/* The draft's calculate_generator and ISK (initiator-responder) for any
 * PRS, CI and sid: what the two above are made of, and what the draft's
 * test vectors check. */
int fr_cpace_calc_generator(const uint8_t *prs, size_t prs_len,
			    const uint8_t *ci, size_t ci_len, const uint8_t *sid,
			    size_t sid_len, uint8_t g[32]);
int fr_cpace_calc_isk(const uint8_t y[32], const uint8_t other[32],
		      const uint8_t *sid, size_t sid_len, const uint8_t ya[32],
		      const uint8_t *ad_a, size_t ad_a_len,
		      const uint8_t yb[32], const uint8_t *ad_b,
		      size_t ad_b_len, uint8_t isk[64]);
int fr_cpace_share(const uint8_t g[32], const uint8_t y[32], uint8_t Y[32]);
int fr_cpace_isk(const uint8_t y[32], const uint8_t other[32],
		 const uint8_t sid[FR_SID_LEN], const uint8_t ys[32],
		 const uint8_t *ad_s, size_t ad_s_len, const uint8_t yc[32],
		 const uint8_t *ad_c, size_t ad_c_len, uint8_t isk[64]);
/* What the intermediate key gives: each side's confirmation, and one
 * key per direction, bound to the AEAD chosen. */
struct fr_session_keys {
	uint8_t confirm_c[FR_CONFIRM_LEN], confirm_s[FR_CONFIRM_LEN];
	uint8_t c2s[32], s2c[32];
};
void fr_session_keys(const uint8_t isk[64], uint8_t aead,
		     struct fr_session_keys *k);

/* ---- sealing (seal.c) ------------------------------------------------------ */

enum { FR_AEAD_AES256GCM = 1, FR_AEAD_XCHACHA20 = 2 };
#define FR_SEAL_TAG 16
/* One AEAD key, ready to use from any thread. */
struct fr_aead_key {
	crypto_aead_aes256gcm_state gcm; /* first: aligned to 16 */
	uint8_t aead;
	/* AES-256-GCM's bulk by OpenSSL (fr_gcm_*, same bytes, faster);
	 * false: all by libsodium (OpenSSL unusable; the bench's yardstick) */
	bool evp;
	uint8_t key[32];
};
/* One direction of a session: its key from the handshake, the message
 * counter and the current records' key, the frame counter. */
struct fr_seal_dir {
	uint8_t base[32];
	struct fr_aead_key rec;
	uint64_t ctr, epoch;
	atomic_ullong frames;
};
/* A connection: plain until the handshake seals it. */
struct fr_chan {
	int fd;
	bool sealed;
	uint8_t aead;
	unsigned epoch_bits; /* 2^epoch_bits messages per records' key */
	struct fr_seal_dir tx, rx;
};
/* The AEAD this machine would choose: AES-256-GCM where the CPU has
 * AES-NI (crypto_aead_aes256gcm_is_available), else XChaCha20-Poly1305. */
uint8_t fr_aead_local(void);
const char *fr_aead_name(uint8_t aead);
void fr_chan_plain(struct fr_chan *ch, int fd);
int fr_chan_seal(struct fr_chan *ch, uint8_t aead, const uint8_t tx[32],
		 const uint8_t rx[32]);
void fr_chan_wipe(struct fr_chan *ch);
int fr_aead_key_init(struct fr_aead_key *k, uint8_t aead,
		     const uint8_t key[32]);
/* In place, tag detached; the nonce is (n, part) (PROTOCOL.md). */
void fr_aead_seal(const struct fr_aead_key *k, uint64_t n, uint32_t part,
		  uint8_t *buf, size_t len, const uint8_t *ad, size_t adlen,
		  uint8_t tag[FR_SEAL_TAG]);
int fr_aead_open(const struct fr_aead_key *k, uint64_t n, uint32_t part,
		 uint8_t *buf, size_t len, const uint8_t *ad, size_t adlen,
		 const uint8_t tag[FR_SEAL_TAG]); /* 0 or FR_E_SEALED */
/* AES-256-GCM by OpenSSL's libcrypto (EVP), for the bulk: a run of calls
 * under one key, the key set up once, a 12-byte nonce each. Byte for byte
 * what libsodium's crypto_aead_aes256gcm_*_detached give (the test
 * engine_seal checks it). A run is one thread's; fr_gcm_end wipes it.
 * NULL: OpenSSL cannot here, use libsodium. */
struct fr_gcm;
struct fr_gcm *fr_gcm_begin(const uint8_t key[32], bool seal);
void fr_gcm_end(struct fr_gcm *g); /* NULL: nothing */
/* In place; 0, or -1 with buf untouched (seal it with libsodium). An
 * OpenSSL failure after buf is touched, which these lengths cannot
 * cause, leaves it zeroed under a zero tag: no plaintext leaves, and no
 * receiver opens it. */
int fr_gcm_seal(struct fr_gcm *g, const uint8_t nonce[12], uint8_t *buf,
		size_t len, const uint8_t *ad, size_t adlen,
		uint8_t tag[FR_SEAL_TAG]);
/* In place; 0, or FR_E_SEALED with buf zeroed (as libsodium leaves it) */
int fr_gcm_open(struct fr_gcm *g, const uint8_t nonce[12], uint8_t *buf,
		size_t len, const uint8_t *ad, size_t adlen,
		const uint8_t tag[FR_SEAL_TAG]);
/* A message record: hdr (type, length) is its associated data, the
 * direction's next counter its nonce. The body is sealed in place. */
int fr_rec_seal(struct fr_chan *ch, const uint8_t hdr[8], uint8_t *body,
		uint32_t len, uint8_t tag[FR_SEAL_TAG]);
int fr_rec_open(struct fr_chan *ch, const uint8_t hdr[8], uint8_t *body,
		uint32_t len, const uint8_t tag[FR_SEAL_TAG]);
/* Frames: each has its own number in its direction (taken by the worker
 * that seals it) and its own key; its payload is sealed in chunks, each
 * with its tag, so that what arrived of a cut frame can be kept. */
#define FR_CHUNK_MIN (64u << 10)
#define FR_CHUNKS_MAX 128u
uint64_t fr_chan_frame_no(struct fr_chan *ch);
int fr_frame_key(const struct fr_seal_dir *d, uint8_t aead, uint64_t no,
		 struct fr_aead_key *out);
uint32_t fr_chunk_size(uint32_t stored_len);
uint32_t fr_chunk_count(uint32_t stored_len);
/* Seal (open) the chunks of payload[from, stored) in place; tags holds
 * the tag of each chunk from from / chunk on. from is a chunk's start. */
void fr_chunks_seal(const struct fr_aead_key *k, const uint8_t *fhdr,
		    uint8_t *payload, uint32_t from, uint32_t stored,
		    uint8_t *tags);
int fr_chunks_open(const struct fr_aead_key *k, const uint8_t *fhdr,
		   uint8_t *payload, uint32_t from, uint32_t stored,
		   const uint8_t *tags);
/* Open the whole chunks of payload[from, got); the end of what opened. */
uint32_t fr_chunks_open_prefix(const struct fr_aead_key *k,
			       const uint8_t *fhdr, uint8_t *payload,
			       uint32_t from, uint32_t got, uint32_t stored,
			       const uint8_t *tags);

/* ---- wire messages (net.c) --------------------------------------------- */

/* Every message: type u32, length u32, then length bytes of body. */
#define FR_MSG_HDR 8
#define FR_PROTO_MAGIC 0x59524546u /* "FERY" */
#define FR_PROTO_VERSION 3
enum fr_msg_type {
	FR_MSG_HELLO = 1,  /* C->S magic, version, account, cnonce */
	FR_MSG_CHALLENGE,  /* S->C snonce */
	FR_MSG_AUTH,       /* C->S client proof */
	FR_MSG_WELCOME,    /* S->C server proof */
	FR_MSG_OFFER,      /* C->S manifest */
	FR_MSG_HAVE,       /* S->C state, bitmap of segments held */
	FR_MSG_SEGMENT,    /* C->S frame header + payload */
	FR_MSG_ACK,        /* S->C index, status */
	FR_MSG_END,        /* C->S every segment sent */
	FR_MSG_DONE,       /* S->C package complete and in place */
	FR_MSG_ERROR,      /* either way: code, text; then the peer closes */
	FR_MSG_PARCEL,     /* C->S parcel id + manifest: expect this parcel */
	FR_MSG_PARCEL_QUERY, /* C->S parcel ids */
	FR_MSG_PARCEL_STATE, /* S->C per id: state */
	FR_MSG_SEGMENT_CONT, /* C->S frame header, offset, the rest of the payload */
	FR_MSG_OFFER_Z,    /* C->S the manifest as one zstd frame */
	FR_MSG_PIECE,      /* C->S the next bytes of a streamed frame's payload */
	FR_MSG_FIN,        /* C->S a streamed frame's payload length: it ends */
	FR_MSG_PARCEL_WITHDRAW, /* C->S parcel id: it will not come */
	FR_MSG_PAYLOAD,    /* C->S a whole frame's sealed payload: after its
			    * SEGMENT record, with no tag of its own */
	FR_MSG_TABLE,      /* C->S after END: every segment's hash, settled */
	FR_MSG_HELD,       /* S->C after HAVE: held segments the offer had no
			    * hash for, with the receiver's hash */
	FR_MSG_IMPORT,     /* C->S (this machine only): import these volumes */
	FR_MSG_IMPORT_DONE, /* S->C the import's exit code, output and log */
	FR_MSG_BENCH = 25, /* C->S instead of OFFER: measure the link */
	FR_MSG_BENCH_GO,   /* S->C accepted: the bounds granted */
	FR_MSG_FILLER,     /* either way: bytes to count, unsealed, unread */
	FR_MSG_BENCH_STOP, /* C->S reverse: counted enough, stop sending */
	FR_MSG_BENCH_REPORT, /* S->C the counts, or the sender's TCP_INFO */
};
#define FR_CTRL_MAX (64u << 10) /* any control message but OFFER and HAVE */

/* Plain before the handshake, sealed after it (ch->sealed). */
int fr_msg_send(struct fr_chan *ch, uint32_t type, const void *body,
		uint32_t len);
/*
 * Receive one message of one of the expected types into a malloc'd body
 * (grown as bytes arrive, up to max). FR_MSG_ERROR from the peer is
 * returned as FR_E_REFUSED with its text in errbuf, or as -EBUSY when its
 * code is -EBUSY (the receiver is full, or the package is held by another
 * session: worth trying again shortly).
 */
int fr_msg_recv(struct fr_chan *ch, uint32_t *type, uint8_t **body,
		uint32_t *len, uint32_t max, char *errbuf, size_t errcap);
int fr_send_error(struct fr_chan *ch, int code, const char *text);
/* An ERROR body: its text (printable) into errbuf; FR_E_REFUSED or
 * -EBUSY. */
int fr_error_text(const uint8_t *buf, uint32_t n, char *errbuf, size_t errcap);
int fr_recv_exact(int fd, void *buf, size_t len);
int fr_send_all(int fd, const void *buf, size_t len);
/* Connect to "host:port" (TCP), with a timeout. Returns fd or -errno. */
int fr_tcp_connect(const char *hostport, unsigned timeout_ms);
int fr_tcp_listen(const char *hostport);
void fr_sock_tune(int fd);
/* Bytes of ours the peer's TCP has acknowledged (tcpinfo.c): grows only
 * with data, not with keepalive or window probes. 0 or -errno. */
int fr_tcp_bytes_acked(int fd, uint64_t *out);
/* Bytes written to the socket so far: acknowledged, or still queued. */
int fr_tcp_written(int fd, uint64_t *out);
/* The state of a connection as its kernel sees it (tcpinfo.c): the peer
 * closed or reset it (or it was shut down here); how long since data last
 * arrived; bytes arrived and not yet read. Safe from any thread. */
struct fr_tcp_peer {
	bool closed;
	uint32_t silent_ms, unread;
};
int fr_tcp_peer(int fd, struct fr_tcp_peer *out);
/* Client and server halves of the handshake; on success ch is sealed. */
int fr_handshake_client(struct fr_chan *ch, const char *account,
			const uint8_t key[32], char *errbuf, size_t errcap);
/* Returns the account on success. */
int fr_handshake_server(struct fr_chan *ch, const struct fr_config *c,
			const struct fr_account **who, char *errbuf,
			size_t errcap);

/* HAVE states */
enum { FR_HAVE_PARTIAL = 0, FR_HAVE_COMPLETE = 1 };
#define FR_HAVE_LEN(n) (8u + ((n) + 7u) / 8u)
/*
 * A frame the receiver holds part of (its connection died mid-payload):
 * the frame's header and how many payload bytes it kept. The sender may
 * send the rest (SEGMENT_CONT) if its frame for that segment has the
 * same header.
 */
struct fr_partial {
	uint32_t index, got;
	uint8_t hdr[FR_FRAME_HDR];
};
#define FR_PARTIAL_MAX 64
#define FR_PARTIAL_REC (8u + FR_FRAME_HDR)
/* HAVE: state, then one bit per segment of n (all set when complete),
 * then np partial-frame records. */
int fr_send_have(struct fr_chan *ch, int state, const uint8_t *have, uint32_t n,
		 const struct fr_partial *p, uint32_t np);
/* A received message as HAVE for n segments: have[i] filled (when not
 * NULL), and up to FR_PARTIAL_MAX partial frames into p (when not NULL;
 * *np their number); returns FR_HAVE_* or FR_E_PROTOCOL. */
/*
 * OFFER_Z: the manifest compressed at level, for a slow link. Fills a
 * malloc'd body; 0, or FR_E_COMPRESS when compression does not pay (send
 * OFFER instead), or -ENOMEM.
 */
int fr_offer_z_pack(const uint8_t *mf, uint32_t len, int level, uint8_t **body,
		    uint32_t *body_len);
/*
 * An OFFER_Z body (one zstd frame) back into the manifest's bytes
 * (malloc'd, grown as they come out, never past FR_MANIFEST_MAX); 0 or
 * FR_E_TOO_LARGE, FR_E_DECOMPRESS, -ENOMEM.
 */
int fr_offer_z_unpack(const uint8_t *body, uint32_t len, uint8_t **mf,
		      uint32_t *mf_len);
int fr_have_parse(uint32_t type, const uint8_t *body, uint32_t len,
		  uint32_t n, uint8_t *have, struct fr_partial *p,
		  uint32_t *np);
/*
 * HELD (after a partial HAVE): the segments the receiver journaled whose
 * hash the open offer did not give, each with the hash it holds (a
 * parcel's, an earlier session's). unconf: fr_journal's array (NULL:
 * none). The sender reads and hashes them; one that hashes the same is
 * not sent (PROTOCOL.md).
 */
int fr_send_held(struct fr_chan *ch, const uint8_t *unconf,
		 const uint8_t *have, uint32_t n);
/* body as HELD for n segments: held[i * FR_UNCONF_REC] = 1 and the hash
 * (held zeroed by the caller); its count, or FR_E_PROTOCOL. */
int fr_held_parse(uint32_t type, const uint8_t *body, uint32_t len,
		  uint32_t n, uint8_t *held);
#define FR_HELD_REC (4 + FR_HASH_LEN)
#define FR_HELD_MAX(n) (4 + (uint64_t)(n) * FR_HELD_REC)
/* ACK status */
enum { FR_ACK_DURABLE = 0, FR_ACK_BAD = 1, FR_ACK_NOREF = 2 };

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
#define FR_UNCONF_REC (1 + FR_HASH_LEN)

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
int fr_journal_append(struct fr_journal *j, const struct fr_manifest *m,
		      const uint32_t *segs, unsigned n);
void fr_journal_close(struct fr_journal *j);
/* Replace the journal at path with one holding exactly the segments
 * with have[i] set (tmp file, fdatasync, rename, fsync of the dir). */
int fr_journal_rewrite(const char *path, const struct fr_manifest *m,
		       const uint8_t *have);

/* ---- worker pool (workq.c) --------------------------------------------- */

/*
 * Jobs are caller-owned structs (no allocation per segment); a worker runs
 * job->fn and then pushes the job onto its completion queue, whose eventfd
 * wakes the I/O thread's ring.
 */
struct fr_doneq;
struct fr_job {
	void (*fn)(struct fr_job *job, int worker);
	struct fr_doneq *done;
	struct fr_job *next;
};
struct fr_doneq {
	pthread_mutex_t lock;
	struct fr_job *head, *tail;
	int efd;
	uint64_t efd_buf; /* the ring's read target */
};
int fr_workq_start(int n); /* n <= 0: one per core; idempotent */
int fr_workq_count(void);
void fr_workq_push(struct fr_job *job);
int fr_doneq_init(struct fr_doneq *q);
void fr_doneq_fini(struct fr_doneq *q);
/* Wake the I/O thread without finishing a job (a job's progress). */
void fr_doneq_poke(struct fr_doneq *q);
/* Take everything finished so far (a list through ->next), or NULL. */
struct fr_job *fr_doneq_take(struct fr_doneq *q);
/* Per-worker contexts, created at start. */
struct fr_cctx *fr_workq_cctx(int worker);
struct fr_dctx *fr_workq_dctx(int worker);
/*
 * A job its thread blocks for, the slots' jobs waited for in order (a
 * parcel's create and import): first in its slot, so a slot is its job.
 * Every job on such a done queue must be one. busy: pushed, not waited for.
 */
struct fr_wjob {
	struct fr_job job;
	bool busy, done;
};
void fr_wjob_push(struct fr_wjob *w, void (*fn)(struct fr_job *, int),
		  struct fr_doneq *dq);
/* Block until w's job is back (others that come back are marked done). */
void fr_wjob_wait(struct fr_doneq *dq, struct fr_wjob *w);

/* ---- scanning a source (scan.c) ---------------------------------------- */

/*
 * A package's manifest, in two halves. fr_scan_list walks and lays out
 * the package: entries and segment lengths, hashes zero, not sealed
 * (*single: the source is one file). What the walk left out (fifos,
 * sockets, devices, symlinks leading out) goes to *left, sorted by path,
 * when left is not NULL (the caller frees it with fr_left_list_fini; it
 * is empty after a failure). A send hashes the segments as it reads them
 * (known.c); for a parcel, fr_hash_start hashes every segment into m, in
 * order, with threads of its own (stopping early, -ECANCELED, once
 * *stop is set, when stop is not NULL); fr_hash_finish waits for them,
 * seals m (its id) and frees h: 0, or the read error (logged).
 */
struct fr_scan_hash;
int fr_scan_list(const char *path, const char *name, uint32_t seg_size,
		 struct fr_manifest *out, bool *single,
		 struct fr_left_list *left);
int fr_hash_start(struct fr_scan_hash **h, const char *root, bool single,
		  struct fr_manifest *m, atomic_bool *stop);
int fr_hash_finish(struct fr_scan_hash *h);
/*
 * Reads segments of a tree (or single file) at root into one buffer of
 * its own, with all of a segment's opens, then all its reads, in flight
 * through a ring. Used by the hashing pass, verify and recovery.
 */
struct fr_seg_reader {
	struct fr_ring *ring;
	struct fr_pool *pool;
	int buf_id;
	uint8_t *buf;                  /* the segment, after fr_seg_read */
	struct fr_extent *ext;         /* per extent of the segment ... */
	int *fds;
	char (*paths)[FR_PATH_MAX + 1];
	uint32_t *done;                /* ... bytes read so far */
	uint32_t cap;
};
int fr_seg_reader_init(struct fr_seg_reader *r, uint32_t seg_size);
void fr_seg_reader_fini(struct fr_seg_reader *r); /* safe on zeroed */
int fr_seg_read(struct fr_seg_reader *r, const char *root, bool single,
		const struct fr_manifest *m, uint32_t s, char *errbuf,
		size_t errcap);
/*
 * Segment s of the tree (or file) at root, read into a reader of its own
 * (r zeroed; fr_seg_reader_fini it after use) and checked against the
 * manifest's hash: 0 with the bytes at r->buf, or FR_E_HASH_MISMATCH (they
 * are not that segment) or a read error. For a frame compressed against
 * another segment, on both sides of the wire.
 */
int fr_seg_load(struct fr_seg_reader *r, const char *root, bool single,
		const struct fr_manifest *m, uint32_t s);
/* Open entry e of the source at root for reading (O_NOFOLLOW); direct:
 * O_DIRECT, -EINVAL where the file system refuses it. */
int fr_source_open(const char *root, bool single_file,
		   const struct fr_entry *e, bool direct);

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
 */
int fr_store_settle(struct fr_store_pkg *p, const uint8_t *tab, uint32_t len,
		    char *errbuf, size_t errcap);
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
/* O_DIRECT wants memory, offset and length aligned to the block size;
 * 4096 covers every device ferry expects to write to. */
#define FR_DIO_ALIGN 4096u
#define FR_DIO_MIN (64u << 10) /* smaller pieces go through the page cache */
/* Where in a buffer (from an FR_DIO_ALIGN boundary) to put segment seg's
 * data so that its largest extent lines up with its file's blocks. */
uint32_t fr_dio_shift(const struct fr_manifest *m, uint32_t seg);
/*
 * How len bytes at address at, going to file offset off, are written: a
 * buffered head, the block-aligned middle O_DIRECT, a buffered tail. No
 * middle (all of it in head) where direct is false, the bytes do not
 * line up with the file's blocks, or the middle would be under
 * FR_DIO_MIN.
 */
struct fr_dio_split {
	uint32_t head, mid, tail;
};
struct fr_dio_split fr_dio_split(const uint8_t *at, uint64_t off, uint32_t len,
				 bool direct);
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
};
struct fr_inbound {
	struct fr_inbound *next;
	uint8_t lid[FR_HASH_LEN];
	char from[FR_CODE_MAX + 1];
	bool closing;            /* being completed: nobody joins */
	bool finished, complete; /* ... and how that went (fin) */
	pthread_cond_t fin;
	int refs;
	struct fr_store_pkg pkg;
	struct fr_syncer sy;
	pthread_mutex_t mu;
	uint8_t *claim;          /* per segment: arrival + 1 receiving it */
	uint32_t *wait;          /* per segment: arrivals with a copy of it */
	struct fr_arrival arr[FR_IN_ARRIVALS];
	uint32_t used;
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
enum { FR_IN_MINE, FR_IN_HELD, FR_IN_ELSEWHERE, FR_IN_AGAIN };
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
/* END came: true for the first session, which completes the package and
 * says how that went (finish_end); the others wait for it (true: the
 * package is complete). */
bool fr_inbound_finish_begin(struct fr_inbound *op);
void fr_inbound_finish_end(struct fr_inbound *op, bool ok);
bool fr_inbound_finish_wait(struct fr_inbound *op);
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

/* ---- parcels, the receiver's side (recv/import.c) ---------------------- */
/* IMPORT from a client on this machine: run the import here, in the
 * running receiver, and answer IMPORT_DONE (recv/import.c). */
int fr_parcel_serve_import(const struct fr_config *c, struct fr_chan *ch,
			   const char *who, const uint8_t *body, uint32_t len);

/* A parcel's state at the destination, as PARCEL_STATE carries it
 * (PROTOCOL.md): import.c keeps it, out/parcel.c asks for it. */
enum fr_parcel_state {
	FR_PARCEL_UNKNOWN,
	FR_PARCEL_EXPECTED,
	FR_PARCEL_IMPORTING,
	FR_PARCEL_RECEIVED,
	FR_PARCEL_SUPERSEDED
};

int fr_parcel_serve_register(const struct fr_config *c, struct fr_chan *ch,
			     const char *who, const uint8_t *body,
			     uint32_t len);
int fr_parcel_serve_query(const struct fr_config *c, struct fr_chan *ch,
			  const char *who, const uint8_t *body, uint32_t len);
int fr_parcel_serve_withdraw(const struct fr_config *c, struct fr_chan *ch,
			     const char *who, const uint8_t *body,
			     uint32_t len);

/* The package at path: its absolute path, and its name (given, or the
 * path's last part), checked. Errors are logged ("cannot <verb> ..."). */
int fr_package_source(const char *path, const char *given, const char *verb,
		      char *abs, size_t abscap, char *name, size_t namecap);

/* ---- sender-side transfers (transfer.c) -------------------------------- */

struct fr_transfer {
	char id[64];                 /* <12 hex of package id>-<SITE> */
	char dir[1100];              /* <store>/outgoing/<id> */
	char source[4096];
	char name[FR_NAME_MAX + 1];
	char site[FR_CODE_MAX + 1];
	char via[64];
	int priority;
	int level;                   /* -1 auto */
	char state[16];              /* sending, waiting, done, failed */
	bool skip_special;           /* left out: still exit 0 */
	uint32_t left_out;           /* entries the last run left out */
	bool courier;                /* this run (not kept): split with a
				      * parcel when media would help */
};
int fr_transfer_save(const struct fr_transfer *t);
int fr_transfer_load(const char *dir, struct fr_transfer *t);
/* Progress snapshot for `status`, rewritten atomically by the sender. */
struct fr_progress {
	char state[16];
	uint64_t total_bytes, done_bytes, wire_bytes;
	uint32_t n_segments, segs_done;
	double rate;   /* bytes/s of package data */
	double eta;    /* seconds, <0 unknown */
	int level;
	char output[96];
	char error[800];
	long pid;
	int64_t updated; /* unix seconds */
};
int fr_progress_save(const char *dir, const struct fr_progress *p);
int fr_progress_load(const char *dir, struct fr_progress *p);

/* ---- outputs (output.c, lan.c) ----------------------------------------- */

/* What an output is asked to move, and where it reports progress. */
/* The manifest compressed for OFFER_Z, kept across the attempts of one
 * transfer (a redial does not compress it again); refused: the receiver
 * is an older ferry that takes only OFFER. */
struct fr_offer_z {
	uint8_t *body;
	uint32_t len;
	int level;
	bool refused;
	bool plain_frames; /* the receiver refused a streamed frame or a
			    * reference (older): whole frames on their own */
};

/* ---- the hashes a sender has made (known.c) ----------------------------- */

/*
 * A sender's manifest, open until every segment is hashed: the workers
 * that read the segments to send them hash them (fr_known_add, from any
 * thread), and each hash is kept in <transfer>/hashes before its frame
 * goes, so that a resume reads only what is left.
 */
struct fr_known {
	struct fr_manifest *m;
	atomic_uchar *have;   /* per segment: m's hash of it is known */
	atomic_uint n;        /* how many are */
	int fd;               /* <dir>/hashes, or -1 once all are known */
	char dir[1300];
};
/* Start from prev (an earlier manifest of the same listing, or NULL) and
 * the records in dir; writes dir/manifest (open, or complete when every
 * hash is known: then m->id is the package id). */
int fr_known_open(struct fr_known *k, struct fr_manifest *m, const char *dir,
		  const struct fr_manifest *prev);
static inline bool fr_known_has(const struct fr_known *k, uint32_t s)
{
	return atomic_load_explicit(&k->have[s], memory_order_acquire);
}
static inline bool fr_known_all(const struct fr_known *k)
{
	return atomic_load(&k->n) >= k->m->n_segments;
}
/* Segment s hashes to h: recorded (once; thread-safe, one segment per
 * caller at a time). 0 or the write's code (not fatal). */
int fr_known_add(struct fr_known *k, uint32_t s, const uint8_t h[FR_HASH_LEN]);
/* The manifest to offer now (open unless every hash is known). */
int fr_known_offer(struct fr_known *k, uint8_t **mf, size_t *len);
/* The hashes an earlier send of m's listing made (dir/manifest, the
 * records in dir/hashes) copied into m, nothing written: what `ferry
 * plan` offers. m->open is set; returns how many hashes are known. */
uint32_t fr_known_peek(struct fr_manifest *m, const char *dir);
/*
 * Every segment hashed (those nobody read, because another arrival such
 * as a parcel brought them to the receiver, are read and hashed first):
 * every entry is looked at again (lstat); if each
 * is what it was when listed, the manifest becomes complete (m->id the package
 * id) and replaces the records. FR_E_CHANGED (naming what changed in err)
 * if it is not.
 */
int fr_known_settle(struct fr_known *k, const char *root, bool single,
		    char *err, size_t cap);
void fr_known_close(struct fr_known *k);

/*
 * Which segments an output carries in a striped send: the scheduler's
 * assignment (sched/assign.c) as the output sees it. next: the segment
 * to carry next, or < 0 for none now (*copy: an endgame copy); acked:
 * durable at the receiver, by this output; held: the receiver had it.
 */
struct fr_feed {
	void *arg;
	int64_t (*next)(void *arg, unsigned out, bool *copy);
	void (*acked)(void *arg, unsigned out, uint32_t seg);
	void (*held)(void *arg, uint32_t seg);
	bool (*is_done)(void *arg, uint32_t seg);
	bool (*all_done)(void *arg);
};

struct fr_send_ctx {
	struct fr_known *known;      /* the hashes made so far */
	const struct fr_manifest *m;
	const uint8_t *mf;           /* encoded manifest */
	size_t mf_len;
	const char *root;            /* source file or tree */
	bool single;                 /* root is one regular file */
	int level;                   /* -1 auto, 0 raw, 1..19 fixed */
	int priority;                /* FR_PRIO_*: what the schedule lets through */
	struct fr_offer_z *offer_z;  /* NULL: always OFFER */
	int workers;
	/* progress, called from the output's thread about 4 times a second */
	void (*progress)(void *arg, const struct fr_progress *p);
	void *progress_arg;
	/* a striped send (stripe.c): this output is one of several, and the
	 * feed says which segments it carries (NULL: all it lacks) */
	const struct fr_feed *feed;
	unsigned out;                /* this output's index in it */
	atomic_bool *cancel;         /* set: another output met what ends the
				      * send (-ECANCELED) */
	uint8_t *copies;             /* NULL, or per segment: set by offer
				      * when the receiver holds a copy the
				      * offer had no hash for (HELD) */
	atomic_bool *completed;      /* set: another output's END was answered
				      * DONE; this one stops (-ECANCELED) */
	/* filled by the output */
	uint64_t wire_bytes, sent_raw, skipped_raw;
	uint64_t read_bytes;         /* of the source, by this attempt */
	uint32_t segs_sent, segs_skipped, segs_resent;
	int level_last;
};

struct fr_output {
	const struct fr_output_ops *ops;
	const struct fr_config *c;
	const struct fr_address *a;
	void *priv;  /* the connection (lan.c) */
	void *line;  /* an on-demand line (ras.c) */
};

/*
 * An output moves segments to one site over one address. The scheduler
 * (sched.c) sees only this table: open (connect, dial, authenticate),
 * offer (the manifest; learn which segments the site already holds),
 * send (every segment it does not hold, until durable there), close.
 * Each returns 0 or a negative code, with a message in err.
 */
struct fr_output_ops {
	const char *name;
	int (*open)(struct fr_output *o, char *err, size_t cap);
	/* have[i] = 1 for segments already held; returns FR_HAVE_* */
	int (*offer)(struct fr_output *o, struct fr_send_ctx *sc, uint8_t *have,
		     char *err, size_t cap);
	int (*send)(struct fr_output *o, struct fr_send_ctx *sc,
		    const uint8_t *have, char *err, size_t cap);
	void (*close)(struct fr_output *o);
};
extern const struct fr_output_ops fr_output_lan;
/* The socket of an open lan (or RAS) output, or -1. */
int fr_output_fd(const struct fr_output *o);
const struct fr_output_ops *fr_output_for(int addr_type);
/* One try by one output: open it, offer the manifest and send what the
 * site lacks; res's counts grow with what went. began: an offer was
 * answered before (the start, what the site held, is known). */
int fr_send_by(struct fr_output *o, struct fr_send_ctx *sc,
	       struct fr_send_result *res, bool *began, char *err,
	       size_t errcap);

/* ---- transfer messages as pure checks (wire.c) ------------------------- */

/*
 * The receiver's messages to a sender during a transfer (lan.c's
 * parse_acks): ACK (a 12-byte body), DONE, ERROR (at least 4 bytes).
 */
enum { FR_ACKMSG_ACK = 1, FR_ACKMSG_DONE, FR_ACKMSG_ERROR };
struct fr_ack_msg {
	uint32_t kind;                 /* FR_ACKMSG_* */
	uint32_t type, len;            /* the message's type and body length */
	uint32_t index, status, stall; /* ACK: status FR_ACK_*, any other
					* value is taken as FR_ACK_BAD */
	int code;                      /* ERROR: its code, as sent */
	char text[400];                /* ERROR: its text, cut to 399 bytes */
};
/*
 * A message from the receiver, opened: 0 with *out, FR_E_BAD_INDEX (an
 * ACK for a segment >= n_segments: out->index) or FR_E_PROTOCOL (any
 * other message: out->type, out->len).
 */
int fr_ack_decode(uint32_t type, const uint8_t *body, uint32_t len,
		  uint32_t n_segments, struct fr_ack_msg *out);
/*
 * The receiver, where a frame's record is expected: the message header's
 * type and length. FR_MSG_END (END, empty), or FR_MSG_SEGMENT /
 * FR_MSG_SEGMENT_CONT (a frame's record of a length it may have), or
 * FR_E_PROTOCOL. refuse_stream: as a ferry from before streamed frames
 * (a record must carry tags).
 */
int fr_seg_rec_check(uint32_t type, uint32_t len, bool refuse_stream);
/* The most payload bytes a frame may have: stored_len, or a streamed
 * frame's zstd bound. */
uint32_t fr_frame_payload_max(const struct fr_frame *f);
/*
 * hdr: the message header, the frame header and (SEGMENT_CONT) the
 * offset, as they came. The frame header's checks that need only the
 * manifest: fr_frame_unpack_wire (wire false: fr_frame_unpack), the
 * package (on the wire a frame carries the listing id, m->lid), the
 * index and the reference. 0 with *f, or the unpack's code,
 * FR_E_WRONG_PACKAGE, FR_E_BAD_INDEX (index or ref). The caller then
 * checks that the segment is neither held nor being written, then:
 */
int fr_frame_msg_parse(const uint8_t *hdr, bool wire,
		       const struct fr_manifest *m, struct fr_frame *f);
/* A frame's record, opened (rec: message header, then the body, its tag
 * and, for a whole frame, the PAYLOAD header), once its frame header
 * passed fr_frame_msg_parse: the offset (SEGMENT_CONT), the frame's
 * number, where its tags are and how many. 0 with *out, FR_E_SEALED (the
 * PAYLOAD header does not say what the record says) or FR_E_RAW_LENGTH
 * (a length, the offset or the number of tags is wrong). */
struct fr_frame_rec {
	uint32_t off, tags_at, tags;
	uint64_t no;
};
int fr_frame_rec_parse(const uint8_t *rec, bool cont, const struct fr_frame *f,
		       const struct fr_manifest *m, struct fr_frame_rec *out);
/* Inside a streamed frame of raw_len bytes of which pay_got payload
 * bytes came (serve.c's stream_msg): FR_MSG_PIECE (len more bytes, within
 * the zstd bound), FR_MSG_FIN (a 4-byte body), or FR_E_PROTOCOL. */
int fr_piece_check(uint32_t type, uint32_t len, uint32_t raw_len,
		   uint32_t pay_got);
/* FIN's body: the payload's length, which must be pay_got and at least
 * 1. 0 with *stored, or FR_E_STORED_LENGTH. */
int fr_fin_parse(const uint8_t body[4], uint32_t pay_got, uint32_t *stored);

/* ---- ferry bench link: the arithmetic (core/benchcalc.c) --------------- */

/*
 * The receiver's count: bytes per interval of FR_BENCH_INTERVAL_S from
 * the first byte it counted (t0); nothing allocated. A count ends at
 * `limit_ns` after t0 (bytes that arrive later are not counted).
 */
struct fr_bench_count {
	uint64_t t0_ns;   /* monotonic time of the first byte; 0: none yet */
	uint64_t limit_ns, end_ns; /* the end asked for; where it ended */
	uint64_t bytes[FR_BENCH_IV_MAX];
	uint32_t n;       /* intervals begun */
	uint64_t total;
	uint64_t cap;     /* bytes at which the count ends (0: none) */
	bool capped;      /* ... as it did */
};
void fr_bench_count_init(struct fr_bench_count *k, double seconds);
/* bytes arrived at now_ns: false when now_ns is past the limit (not
 * counted: the count is over, end_ns is the limit), or when the total
 * reached the cap with them (counted; capped set). */
bool fr_bench_count_add(struct fr_bench_count *k, uint64_t now_ns,
			uint64_t bytes);
/* Counting stopped at now_ns (the sender stopped, the cap): end_ns. */
void fr_bench_count_end(struct fr_bench_count *k, uint64_t now_ns);
/* n counts of intervals of FR_BENCH_INTERVAL_S, the last ending at dur_s:
 * the intervals, each marked omitted when it ends at or before omit_s;
 * returns how many (at most FR_BENCH_IV_MAX; an interval of no length
 * is dropped). */
unsigned fr_bench_intervals(const uint64_t *bytes, unsigned n, double dur_s,
			    double omit_s, struct fr_bench_interval *out);
/* The stream's total after the warm-up: st->bytes, st->seconds and
 * st->received_bps from st->iv. */
void fr_bench_total(struct fr_bench_stream *st);
/* The streams' intervals added, k-th with k-th (start the earliest, end
 * the latest, bytes and bits per second added; omitted when all are);
 * and the sum of their totals into r. */
void fr_bench_sum(struct fr_bench_result *r);
/* Round-trip time samples (ms) of one sender: avg of tcpi_rtt taken once
 * an interval; min is the kernel's tcpi_min_rtt where it has one, else
 * the least sample. */
struct fr_rtt_acc {
	double min_ms, sum_ms;
	unsigned n;
};
void fr_rtt_init(struct fr_rtt_acc *r);
void fr_rtt_add(struct fr_rtt_acc *r, double sample_ms, double kmin_ms);
double fr_rtt_avg(const struct fr_rtt_acc *r); /* < 0: no sample */
double fr_rtt_min(const struct fr_rtt_acc *r); /* < 0: no sample */

/* ---- ferry bench link: the wire (out/probe.c) ----------------------------- */

#define FR_BENCH_REQ_LEN 16
#define FR_BENCH_GO_LEN 16
#define FR_BENCH_REPORT_HDR 40
#define FR_BENCH_FRAME_LAN (128u << 10) /* filler bytes per message on a LAN */
#define FR_BENCH_FRAME_MAX (4u << 20)
#define FR_BENCH_FRAME_MIN 512u
#define FR_BENCH_F_REVERSE 1u
#define FR_BENCH_R_CAPPED 1u    /* report: the byte cap ended the count */
#define FR_BENCH_R_CUT 2u       /* report: the sender stopped early */
/* The receiver's bounds: a session that has not begun after FIRST_S,
 * counts for at most the seconds asked (<= FR_BENCH_SECONDS_MAX), and at
 * most CAP_PER_S bytes per second asked. */
#define FR_BENCH_FIRST_S 10
#define FR_BENCH_CAP_PER_S (8ull << 30)
#define FR_BENCH_TAIL_S 20 /* draining what is still queued, at most */
struct fr_bench_req {
	uint32_t flags, seconds, frame;
	uint16_t stream, streams;
};
void fr_bench_req_pack(const struct fr_bench_req *q, uint8_t b[FR_BENCH_REQ_LEN]);
/* 0 or FR_E_PROTOCOL (a field out of range) */
int fr_bench_req_parse(const uint8_t *b, uint32_t len, struct fr_bench_req *q);
/* A sender's TCP as the report carries it */
struct fr_bench_tcp {
	uint32_t rtt_min_us, rtt_avg_us, retrans, samples;
};
struct fr_bench_report {
	uint32_t flags, n;
	uint64_t dur_ns, total;
	struct fr_bench_tcp tcp;
	uint64_t bytes[FR_BENCH_IV_MAX];
};
int fr_bench_report_send(struct fr_chan *ch, const struct fr_bench_report *r);
int fr_bench_report_parse(const uint8_t *b, uint32_t len,
			  struct fr_bench_report *r);
/* The sender's side of a socket: its TCP_INFO sampled (sample) and
 * summed up (tcp); bytes its peer's TCP acknowledged (progress). */
struct fr_bench_tx {
	struct fr_chan *ch;
	uint8_t *msg;            /* header | body of one FILLER */
	uint32_t frame;
	struct fr_rtt_acc rtt;
	uint32_t retrans0;
	_Atomic uint64_t *progress; /* NULL, or bytes acknowledged so far */
};
int fr_bench_tx_init(struct fr_bench_tx *t, struct fr_chan *ch, uint32_t frame,
		     _Atomic uint64_t *progress);
void fr_bench_tx_fini(struct fr_bench_tx *t); /* safe on zeroed */
/* Send FILLER until a message arrives to read (1), the deadline (a
 * monotonic ns) passes (0), or an error. */
int fr_bench_tx_run(struct fr_bench_tx *t, uint64_t deadline_ns);
void fr_bench_tx_tcp(struct fr_bench_tx *t, struct fr_bench_tcp *out);
/* The receiving side: FILLER counted into k (when not NULL), until a
 * sealed message came (1: *type, *body malloc'd, *len), the count ended
 * (0), the deadline passed (-ETIMEDOUT) or an error (ERROR from the
 * peer: FR_E_REFUSED with its text in err). */
struct fr_bench_rx {
	struct fr_chan *ch;
	uint8_t *buf;
	uint32_t cap, have, pos;  /* received into buf; parsed up to pos */
	uint32_t left;            /* FILLER bytes still to come */
	uint8_t hdr[FR_MSG_HDR];
	uint32_t hdr_got;
	_Atomic uint64_t *progress; /* NULL, or bytes arrived so far */
};
int fr_bench_rx_init(struct fr_bench_rx *x, struct fr_chan *ch,
		     _Atomic uint64_t *progress);
void fr_bench_rx_fini(struct fr_bench_rx *x); /* safe on zeroed */
int fr_bench_rx_run(struct fr_bench_rx *x, struct fr_bench_count *k,
		    uint64_t deadline_ns, uint32_t *type, uint8_t **body,
		    uint32_t *len, char *err, size_t cap);
/* One stream of a measurement, the client's side (out/probe.c): connect
 * and authenticate as the address's account, ask (BENCH), wait at the
 * gate until every stream is ready, measure, read the report. */
struct fr_probe_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned ready, n;
	bool failed;
	_Atomic uint64_t t0_ns;  /* when the streams began */
	_Atomic unsigned ended;  /* streams whose fr_probe_run returned */
};
struct fr_probe {
	const struct fr_address *a;
	struct fr_bench_req req;
	struct fr_probe_gate *gate;
	_Atomic uint64_t bytes;   /* progress */
	/* results */
	struct fr_bench_report rep; /* the receiver's count (this machine's
				     * with reverse) and the sender's TCP */
	int rc;
	char err[1024];
};
int fr_probe_run(struct fr_probe *p);

/* ---- ferry bench link: the site's side (recv/bench.c) ---------------------- */
/* BENCH after the handshake: measure with the client and answer. */
int fr_bench_serve(const struct fr_config *c, struct fr_chan *ch,
		   const char *who, const char *peer, const uint8_t *body,
		   uint32_t len);

/* ---- a RAS line on its own (out/ras.c), for ferry bench link -------------- */
struct fr_line;
/* Take the address's line as a send would (its lock; dialled unless it is
 * up already: *dialled). 0 or a code, with err. */
int fr_line_take(const struct fr_config *c, const struct fr_address *a,
		 struct fr_line **out, bool *dialled, char *err, size_t cap);
/* Let it go; hang_up: hang it up now unless a transfer is waiting for it
 * (then it is left to its keeper's idle timeout). true when hung up. */
bool fr_line_release(struct fr_line *l, bool hang_up);

/* the scheduler's assignment, link simulator and learned rates */
#include "pipe/fr_pipe.h"
#include "sched/fr_sched.h"

#endif
