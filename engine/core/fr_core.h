/*
 * fr_core.h - engine/core/, what every other folder of the engine stands
 * on: time and file helpers, the test switches, authentication and
 * sealing (sessions and parcel records), the wire's control messages and
 * their pure checks, the worker pool, O_DIRECT placement, and the
 * arithmetic of `bench link`. It includes the codec's and io's headers.
 */
#ifndef FR_CORE_H
#define FR_CORE_H

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
/* *t: secs from now on clock clk (for pthread_cond_timedwait). */
void fr_deadline(struct timespec *t, clockid_t clk, double secs);
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
/* fr_human_bytes, fr_json_time, fr_span_str, fr_clock_str, fr_json_str,
 * fr_esc: in fr_engine.h, for the command line too. */
/* A process that a state file names runs still: it exists and has not
 * exited (a zombie, killed and not yet reaped by its parent, has). */
bool fr_pid_alive(long pid);
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
#define FR_PROTO_VERSION 4
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
/* What the kernel's TCP says of a connection we send on: its smoothed and
 * least round trips (us; the least 0 before Linux 4.6), retransmissions,
 * and bytes acknowledged (0 before 4.1). 0 or -errno. */
struct fr_tcp_stats {
	uint32_t rtt_us, min_rtt_us, retrans;
	uint64_t acked;
};
int fr_tcp_stats(int fd, struct fr_tcp_stats *out);
/* Client and server halves of the handshake; on success ch is sealed.
 * site: the code of the site meant (or NULL): a receiver of another
 * site is left at once, FR_E_WRONG_SITE (errbuf names both). */
int fr_handshake_client(struct fr_chan *ch, const char *account,
			const uint8_t key[32], const char *site, char *errbuf,
			size_t errcap);
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
/* a held copy the offer could not confirm: 1, then its hash (HELD, the
 * journal's unconfirmed records) */
#define FR_UNCONF_REC (1 + FR_HASH_LEN)
/* body as HELD for n segments: held[i * FR_UNCONF_REC] = 1 and the hash
 * (held zeroed by the caller); its count, or FR_E_PROTOCOL. */
int fr_held_parse(uint32_t type, const uint8_t *body, uint32_t len,
		  uint32_t n, uint8_t *held);
#define FR_HELD_REC (4 + FR_HASH_LEN)
#define FR_HELD_MAX(n) (4 + (uint64_t)(n) * FR_HELD_REC)
/* ACK status */
/* AGAIN: not kept, another arrival was bringing it and let go: send it
 * again (an older sender takes it as BAD) */
enum { FR_ACK_DURABLE = 0, FR_ACK_BAD = 1, FR_ACK_NOREF = 2, FR_ACK_AGAIN = 3 };

/* ---- O_DIRECT placement (util.c) ---------------------------------------- */
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
/* Bytes of the file behind fd in the page cache (cachestat), or -1 when
 * the kernel cannot say (before Linux 6.5). */
int64_t fr_cached_bytes(int fd);

/* ---- a parcel's state at the destination (PARCEL_STATE) ---------------- */
/* A parcel's state at the destination, as PARCEL_STATE carries it
 * (PROTOCOL.md): import.c keeps it, out/parcel.c asks for it. */
enum fr_parcel_state {
	FR_PARCEL_UNKNOWN,
	FR_PARCEL_EXPECTED,
	FR_PARCEL_IMPORTING,
	FR_PARCEL_RECEIVED,
	FR_PARCEL_SUPERSEDED
};

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

#endif
