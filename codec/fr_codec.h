/*
 * fr_codec.h - ferry's pure encoding layer: error codes, hashing, segment
 * frames, segment compression and the package manifest.
 *
 * Nothing here does I/O or knows about io_uring, sockets or the engine.
 * Functions that produce bytes take a caller-supplied destination and a
 * capacity (the zstd shape); nothing allocates per segment. The manifest
 * allocates once per entry while it is built or decoded, never more than
 * the bytes actually given to it justify.
 *
 * Errors: functions return a negative code. -errno values pass through
 * untranslated; ferry's own codes lie below -4095 and come from FR_ERRORS,
 * so fr_strerror() and fr_err_name() work on both.
 *
 * All multi-byte integers on the wire and on media are little-endian.
 */
#ifndef FR_CODEC_H
#define FR_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* ---- errors ------------------------------------------------------------ */

#define FR_ERRORS(X)                                                          \
	X(BAD_MAGIC, "bad magic number")                                      \
	X(BAD_VERSION, "unsupported format version")                          \
	X(BAD_FLAGS, "unknown flags set")                                     \
	X(BAD_RESERVED, "reserved field is not zero")                         \
	X(HDR_CHECKSUM, "header checksum mismatch")                           \
	X(TRUNCATED, "input is truncated")                                    \
	X(RAW_LENGTH, "raw length out of range")                              \
	X(STORED_LENGTH, "stored length out of range")                        \
	X(HASH_MISMATCH, "content hash mismatch")                             \
	X(DECOMPRESS, "compressed payload is corrupt")                        \
	X(COMPRESS, "compression failed")                                     \
	X(WRONG_PACKAGE, "frame belongs to another package")                  \
	X(BAD_INDEX, "segment index out of range")                            \
	X(SEG_SIZE, "segment size out of range")                              \
	X(BAD_NAME, "invalid package name")                                   \
	X(BAD_PATH, "path is not a safe relative path")                       \
	X(BAD_ENTRY, "invalid entry type or mode")                            \
	X(BAD_ORDER, "entries are not in strict path order")                  \
	X(NO_PARENT, "entry's parent directory is not in the manifest")       \
	X(BAD_LINK, "symlink target leaves the package")                      \
	X(BAD_SEGMENT, "segment table does not match the files")              \
	X(CHECKSUM, "checksum mismatch")                                      \
	X(TOO_LARGE, "input exceeds a hard limit")                            \
	X(TRAILING, "trailing bytes after the end")                           \
	X(AUTH, "authentication failed")                                      \
	X(PROTOCOL, "protocol violation by peer")                             \
	X(CONFIG, "invalid configuration")                                    \
	X(REFUSED, "refused by peer")                                         \
	X(CHANGED, "source changed while it was being sent")                  \
	X(INCOMPLETE, "package is incomplete")                               \
	X(BAD_RECORD, "unknown record type")                                  \
	X(BAD_VOLUME, "volume number out of range")                           \
	X(BAD_SITE, "invalid site code")                                      \
	X(WRONG_SITE, "addressed to another site")                            \
	X(FORGED, "authentication tag mismatch: altered or forged")           \
	X(LINE, "the line could not be brought up")                           \
	X(CLOSED, "the address's schedule closed")                            \
	X(NO_REF, "the segment it was compressed against is not here")       \
	X(LEFT_OUT, "sent, but something was left out of the package")      \
	X(SEALED, "message authentication failed")                            \
	X(WORN, "the session's message counter is used up")                  \
	X(NOT_OWNER, "the package name belongs to another account")           \
	X(NO_HOST, "no such host (the name does not resolve)")               \
	X(SOURCE, "the source cannot be read")

#define FR_E_ENUM_(name, msg) FR_E_##name,
enum fr_err {
	FR_E__BASE = -6000,
	FR_ERRORS(FR_E_ENUM_)
	FR_E__END
};
#undef FR_E_ENUM_

/* Message for a negative code: ferry's own text, or strerror(-code). */
const char *fr_strerror(int code);
/* Symbolic name: "FR_E_BAD_MAGIC", or "ENOSPC"-style for -errno. */
const char *fr_err_name(int code);

/* ---- little-endian helpers (inline, used by every encoder) ------------- */

static inline void fr_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void fr_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fr_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t fr_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t fr_get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t fr_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---- hashing (XXH3) ---------------------------------------------------- */

#define FR_HASH_LEN 16

/* XXH3-128 of data, canonical (big-endian) byte order into out. */
void fr_hash128(const void *data, size_t len, uint8_t out[FR_HASH_LEN]);
uint64_t fr_hash64(const void *data, size_t len);

/* Streaming XXH3-128, for hashing a segment that spans many reads. */
struct fr_hasher {
	void *state; /* XXH3_state_t, opaque */
};
int fr_hasher_init(struct fr_hasher *h); /* 0 or -ENOMEM */
void fr_hasher_reset(struct fr_hasher *h);
void fr_hasher_update(struct fr_hasher *h, const void *data, size_t len);
void fr_hasher_final(struct fr_hasher *h, uint8_t out[FR_HASH_LEN]);
void fr_hasher_fini(struct fr_hasher *h); /* idempotent, safe on zeroed */

/* Lower-case hex of a hash into out (2*len+1 bytes). Returns out. */
char *fr_hex(const uint8_t *bytes, size_t len, char *out);
/* Parse 2*len hex digits; 0 or FR_E_BAD_NAME. */
int fr_unhex(const char *hex, uint8_t *out, size_t len);

/* ---- segment frames ---------------------------------------------------- */

#define FR_FRAME_MAGIC 0x47535246u /* "FRSG" */
#define FR_FRAME_VERSION 1
#define FR_FRAME_HDR 64
#define FR_FRAME_ZSTD 0x01u   /* payload is one standard zstd frame */
#define FR_FRAME_STREAM 0x02u /* streamed: stored_len is 0 here and comes
			       * after the payload (PROTOCOL.md) */
#define FR_FRAME_REF 0x04u    /* zstd with segment `ref`'s raw bytes as its
			       * prefix (PROTOCOL.md) */
#define FR_SEG_MIN (4u << 10) /* smallest configurable segment size */
#define FR_SEG_MAX (64u << 20)
#define FR_SEG_DEFAULT (8u << 20)

struct fr_frame {
	uint8_t flags;          /* FR_FRAME_ZSTD or 0 (raw) */
	uint8_t level;          /* zstd level used, 0 for raw; informational */
	uint8_t pkg[FR_HASH_LEN];
	uint32_t index;         /* segment number within the package */
	uint32_t raw_len;       /* bytes after decompression */
	uint32_t stored_len;    /* payload bytes following the header */
	uint8_t hash[FR_HASH_LEN]; /* XXH3-128 of the raw bytes */
	uint32_t ref;           /* with FR_FRAME_REF: the prefix's segment */
};

/* Worst-case payload size for a segment of raw_len bytes (zstd bound). */
size_t fr_seg_bound(size_t raw_len);

/* Write the 64-byte header (with its checksum). */
void fr_frame_pack(uint8_t dst[FR_FRAME_HDR], const struct fr_frame *f);
/*
 * Parse and validate a 64-byte header: magic, version, header checksum,
 * flags, reserved, raw_len in 1..FR_SEG_MAX, stored_len == raw_len when
 * raw, 1..fr_seg_bound(raw_len) when compressed. Each failure has its own
 * code. It does not know the package: callers check pkg and index.
 */
int fr_frame_unpack(struct fr_frame *f, const uint8_t src[FR_FRAME_HDR]);
/*
 * The same, and also the headers only the wire has, which fr_frame_unpack
 * refuses (FR_E_BAD_FLAGS): a streamed frame (FR_FRAME_STREAM: zstd,
 * stored_len 0, its payload's length told after the payload) and a frame
 * compressed against another segment (FR_FRAME_REF: zstd, ref in the
 * field that is otherwise reserved; the caller checks it against the
 * manifest). Without FR_FRAME_REF that field must be 0.
 */
int fr_frame_unpack_wire(struct fr_frame *f, const uint8_t src[FR_FRAME_HDR]);

/* Compression contexts: one per worker thread, reused for every segment. */
struct fr_cctx {
	void *zc; /* ZSTD_CCtx */
};
struct fr_dctx {
	void *zd; /* ZSTD_DCtx */
};
int fr_cctx_init(struct fr_cctx *c); /* 0 or -ENOMEM */
void fr_cctx_fini(struct fr_cctx *c);
int fr_dctx_init(struct fr_dctx *d);
void fr_dctx_fini(struct fr_dctx *d);

/*
 * Compress src[0..len) at level (1..22) into dst (cap bytes). Returns the
 * compressed size when it is clearly smaller than len (under 97%), 0 when
 * the segment should go raw, or a negative code.
 */
ssize_t fr_seg_compress(struct fr_cctx *c, void *dst, size_t cap,
			const void *src, size_t len, int level);
/*
 * fr_seg_compress with ref[0..ref_len) (another segment's raw bytes, which
 * the receiver holds) as the prefix: matches may reach into it, and only
 * a decompression given the same prefix restores the segment. ref NULL is
 * fr_seg_compress.
 */
ssize_t fr_seg_compress_ref(struct fr_cctx *c, void *dst, size_t cap,
			    const void *src, size_t len, int level,
			    const void *ref, size_t ref_len);
/*
 * A segment compressed in pieces, as the line takes them. Begin with
 * fr_seg_stream_begin (len bytes at level, ref as in fr_seg_compress_ref,
 * which must stay in place until the end), then call fr_seg_stream_next
 * with the same src and *in_pos (0 at first) until *done: each call fills
 * dst[0..cap) as far as it can and returns the bytes written, or a
 * negative code. The pieces laid end to end are one standard zstd frame
 * with its content size. The bytes depend only on src and level, not on
 * how the output is cut into pieces (a resumed frame relies on that).
 */
int fr_seg_stream_begin(struct fr_cctx *c, size_t len, int level,
			const void *ref, size_t ref_len);
ssize_t fr_seg_stream_next(struct fr_cctx *c, const void *src, size_t len,
			   size_t *in_pos, void *dst, size_t cap, bool *done);
/*
 * Decompress one zstd frame into exactly raw_len bytes of dst. Never
 * writes past dst[raw_len); any other outcome (short, long, corrupt,
 * more than one frame) is FR_E_DECOMPRESS.
 */
int fr_seg_decompress(struct fr_dctx *d, void *dst, size_t raw_len,
		      const void *src, size_t stored_len);
/* The same for a payload compressed against ref (fr_seg_compress_ref). */
int fr_seg_decompress_ref(struct fr_dctx *d, void *dst, size_t raw_len,
			  const void *src, size_t stored_len, const void *ref,
			  size_t ref_len);
/*
 * Decompress one zstd frame (all of src[0..len), nothing after it) into a
 * malloc'd buffer that grows with what comes out, never past max: no
 * size the frame declares is trusted. 0 with *out and *out_len, or
 * FR_E_DECOMPRESS, FR_E_TOO_LARGE (more than max), -ENOMEM.
 */
int fr_decompress_alloc(struct fr_dctx *d, const void *src, size_t len,
			size_t max, uint8_t **out, size_t *out_len);

/*
 * A segment's frame for sending: the XXH3-128 of src (len bytes) must be
 * want, the manifest's (else FR_E_CHANGED: these are not the bytes the
 * manifest describes); want NULL: not known yet, the caller compares
 * f->hash with it once it is. At level > 0 with dst, the segment is compressed
 * into dst (cap bytes) when that pays. Fills f, to be packed with
 * fr_frame_pack: the payload is dst when f->flags has FR_FRAME_ZSTD, else
 * src.
 */
int fr_frame_encode(struct fr_cctx *c, struct fr_frame *f,
		    const uint8_t pkg[FR_HASH_LEN], uint32_t index,
		    const void *src, uint32_t len,
		    const uint8_t want[FR_HASH_LEN], void *dst, size_t cap,
		    int level);
/* The same, compressed against segment ref_index's raw bytes ref[0..
 * ref_len) when ref is not NULL (FR_FRAME_REF; raw frames have none). */
int fr_frame_encode_ref(struct fr_cctx *c, struct fr_frame *f,
			const uint8_t pkg[FR_HASH_LEN], uint32_t index,
			const void *src, uint32_t len,
			const uint8_t want[FR_HASH_LEN], void *dst, size_t cap,
			int level, const void *ref, size_t ref_len,
			uint32_t ref_index);
/*
 * Check a received frame's payload: a zstd payload is decompressed into
 * dst (exactly f->raw_len bytes); the raw bytes must hash to f->hash and
 * to want, the manifest's (NULL: not known yet, f->hash alone). 0 with
 * *raw at them (payload or dst), or a
 * code (FR_E_DECOMPRESS, FR_E_HASH_MISMATCH).
 */
int fr_frame_decode(struct fr_dctx *d, const struct fr_frame *f,
		    const void *payload, void *dst,
		    const uint8_t want[FR_HASH_LEN], const uint8_t **raw);
/* The same with a frame that may be compressed against segment f->ref,
 * whose raw bytes are ref[0..ref_len) (NULL when f has no FR_FRAME_REF). */
int fr_frame_decode_ref(struct fr_dctx *d, const struct fr_frame *f,
			const void *payload, void *dst,
			const uint8_t want[FR_HASH_LEN], const void *ref,
			size_t ref_len, const uint8_t **raw);

/* ---- manifest ---------------------------------------------------------- */

#define FR_MANIFEST_MAGIC 0x464d5246u /* "FRMF" */
#define FR_MANIFEST_VERSION 1
#define FR_MANIFEST_MAX (512u << 20) /* encoded size hard limit */
/* header flag: the segment table is not settled yet; a segment whose
 * hash is all zero bytes has not been hashed (FORMAT.md, "Open
 * manifests") */
#define FR_MF_OPEN 0x0001u
#define FR_MF_ROOT_TIME 0x0002u /* the root directory's mtime follows the
				 * name (12 bytes) */
#define FR_PATH_MAX 4096
#define FR_NAME_MAX 255
#define FR_CODE_MAX 16 /* site and account codes */

enum fr_entry_type { FR_ENT_DIR = 1, FR_ENT_FILE = 2, FR_ENT_LINK = 3 };

struct fr_entry {
	uint8_t type;       /* enum fr_entry_type */
	uint32_t mode;      /* permission bits only (07777) */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;      /* files only; 0 for dirs and links */
	uint64_t offset;    /* derived: start of the file's bytes in the stream */
	char *path;         /* relative, '/'-separated, owned by the manifest */
	char *target;       /* symlinks only (owned), else NULL */
};

struct fr_segment {
	uint64_t offset;    /* derived: index * seg_size */
	uint32_t length;    /* seg_size, the last one shorter */
	uint8_t hash[FR_HASH_LEN];
};

struct fr_manifest {
	char *name;                 /* package name, owned */
	uint16_t root_mode;         /* the package directory's mode (07777) */
	bool has_root_time;         /* FR_MF_ROOT_TIME: and its mtime */
	int64_t root_mtime_sec;
	uint32_t root_mtime_nsec;
	uint32_t seg_size;
	uint64_t total_size;        /* sum of file sizes */
	uint32_t n_entries, cap_entries;
	struct fr_entry *entries;   /* strict byte order of path */
	uint32_t n_segments;
	struct fr_segment *segments;
	uint32_t n_data;            /* files with size > 0 ... */
	uint32_t *data_idx;         /* ... their entry indices, by offset */
	bool open;                  /* FR_MF_OPEN: some hashes not known yet */
	uint8_t id[FR_HASH_LEN];    /* XXH3-128 of the encoding (after seal/decode) */
	uint8_t lid[FR_HASH_LEN];   /* the listing id: XXH3-128 of the encoding
				     * as an open manifest with every hash
				     * zero (after seal/decode); the same
				     * for every manifest of one listing */
};

/* A hash that is all zero bytes: in an open manifest, not known yet. */
static inline bool fr_hash_unknown(const uint8_t h[FR_HASH_LEN])
{
	static const uint8_t zero[FR_HASH_LEN];
	return !memcmp(h, zero, FR_HASH_LEN);
}

/* Name: 1..255 bytes, no '/', no control bytes, not "." or "..". */
int fr_name_check(const char *name);
/* Relative path of safe components: no "", ".", "..", leading '/', NUL.
 * Every other byte is allowed (newline, tab, control bytes, bytes that
 * are not UTF-8): Linux allows them in names. */
int fr_path_check(const char *path);
/* A symlink at link_path pointing to target stays inside the package. */
int fr_link_check(const char *link_path, const char *target);
/* Follow target from the directory of link_path, a component at a time:
 * FR_E_BAD_LINK when it climbs above the package or passes through a
 * path that is_link(arg, path, length) calls a symlink (anything but its
 * last component), else 0. The manifest's check of every link (layout,
 * decode), and the walk's before it lists a link. */
int fr_link_walk(const char *link_path, const char *target,
		 bool (*is_link)(void *arg, const char *p, size_t n), void *arg);

/* Start an empty manifest. 0, FR_E_BAD_NAME, FR_E_SEG_SIZE or -ENOMEM. */
int fr_manifest_init(struct fr_manifest *m, const char *name,
		     uint32_t seg_size);
/*
 * Append an entry; paths must come in strict byte order with parents
 * first. Sizes of dirs and links are ignored. Returns 0 or a code.
 */
int fr_manifest_add(struct fr_manifest *m, uint8_t type, const char *path,
		    uint32_t mode, uint64_t size, int64_t mtime_sec,
		    uint32_t mtime_nsec, const char *target);
/* After the last add: derive offsets, total size and the segment table
 * (hashes zeroed, to be filled by the caller). */
int fr_manifest_layout(struct fr_manifest *m);
/* After the hashes are filled (or, m->open, some of them): compute m->id
 * and m->lid from the encoding. */
int fr_manifest_seal(struct fr_manifest *m);
/* The same, and the encoding it hashed, malloc'd, to *out (*len bytes). */
int fr_manifest_seal_out(struct fr_manifest *m, uint8_t **out, size_t *len);

size_t fr_manifest_encoded_size(const struct fr_manifest *m);
/* Encode into dst; returns the length or -ENOBUFS if cap is too small. */
ssize_t fr_manifest_encode(const struct fr_manifest *m, void *dst,
			   size_t cap);
/*
 * Decode and validate untrusted bytes into m (which must be zeroed or
 * fini'd). Checks every field, every path and link, the order, the
 * segment table and the checksum; sets m->id. On error m is left fini'd.
 */
int fr_manifest_decode(struct fr_manifest *m, const void *src, size_t len);
void fr_manifest_fini(struct fr_manifest *m); /* idempotent */

/* One contiguous piece of a segment that lies in one file. */
struct fr_extent {
	uint32_t entry;     /* index into m->entries */
	uint64_t file_off;  /* offset within that file */
	uint32_t seg_off;   /* offset within the segment */
	uint32_t len;
};

/* Iterate the extents of a segment, in stream order. */
struct fr_extent_iter {
	const struct fr_manifest *m;
	uint64_t pos, end;  /* stream positions */
	uint32_t k;         /* index into m->data_idx */
};
void fr_extent_iter_init(struct fr_extent_iter *it,
			 const struct fr_manifest *m, uint32_t seg);
/* 1 and *out filled, or 0 at the end. */
int fr_extent_next(struct fr_extent_iter *it, struct fr_extent *out);

/* ---- parcel volumes ---------------------------------------------------- */

/*
 * A parcel volume (docs/FORMAT.md) is written front to back in one pass:
 * a 128-byte volume header, then records, each a 16-byte record header,
 * a 24-byte nonce, its body sealed (XChaCha20-Poly1305-IETF, by the
 * engine with a key of the parcel's own; this layer only lays the bytes
 * out) and a 16-byte Poly1305 tag:
 *
 *   header (128) | FRAME record ... | MANIFEST | SEGLIST | TRAILER
 *
 * The last record is the trailer; a volume without one was cut short.
 */
#define FR_VOL_MAGIC 0x56505246u /* "FRPV" */
#define FR_VOL_VERSION 3    /* sealed; 1 and 2 (signed, in the clear) are
			     * refused: made by an older ferry */
#define FR_VOL_HDR 128
#define FR_REC_MAGIC 0x52505246u /* "FRPR" */
#define FR_REC_HDR 16
#define FR_REC_NONCE 24     /* after the record header */
#define FR_REC_MAC 16       /* after the body */
#define FR_SEAL_LEN (FR_REC_NONCE + FR_REC_MAC) /* a record's bytes beyond
						  * its header and body */
#define FR_CHECK_LEN 16     /* the volume header's key check */
#define FR_TRAILER_LEN 64
#define FR_VOL_MAX 99999u  /* volumes in one parcel */

enum fr_rec_type {
	FR_REC_MANIFEST = 1, /* the package's manifest */
	FR_REC_SEGLIST,      /* bitmap: the segments the whole parcel holds */
	FR_REC_FRAME,        /* a segment frame: 64-byte header + payload */
	FR_REC_TRAILER       /* end of the volume */
};

struct fr_vol_hdr {
	uint16_t version;             /* FR_VOL_VERSION */
	uint8_t parcel[FR_HASH_LEN];  /* random, names the parcel */
	uint8_t check[FR_CHECK_LEN];  /* tells the key that opens it */
	uint32_t mf_len;              /* the MANIFEST record's body bytes */
	uint32_t volume;              /* 1-based */
	uint32_t n_segments;          /* of the package */
	uint32_t seg_size;
	char from[FR_CODE_MAX + 1];   /* sending site */
	char to[FR_CODE_MAX + 1];     /* destination site */
	char account[FR_CODE_MAX + 1];/* whose key seals it, at `to` */
	int64_t created;              /* unix seconds */
};

struct fr_rec_hdr {
	uint32_t type;                /* enum fr_rec_type */
	uint32_t len;                 /* body bytes (nonce, tag not included) */
};

struct fr_vol_trailer {
	uint32_t volume;
	uint32_t frames;              /* frame records in this volume */
	uint32_t first, last;         /* segment indices (first > last: none) */
	uint32_t flags;               /* FR_VOL_LAST */
	uint32_t total;               /* volumes in the parcel, when LAST */
	uint64_t bytes;               /* bytes of the volume before the trailer */
	uint8_t chain[32];            /* BLAKE2b-256 of the volume header and
				       * every record's header, nonce and tag
				       * before the trailer, in order */
};
#define FR_VOL_LAST 0x1u

/* A site code: 1..16 of A-Z, 0-9, '_' and '-'. 0 or FR_E_BAD_SITE. */
int fr_site_check(const char *code);
void fr_vol_hdr_pack(uint8_t dst[FR_VOL_HDR], const struct fr_vol_hdr *h);
/* 0 or a code; a volume of an older version (1, 2: see
 * fr_vol_hdr_version) is FR_E_BAD_VERSION. */
int fr_vol_hdr_unpack(struct fr_vol_hdr *h, const uint8_t src[FR_VOL_HDR]);
/* The version a volume header says, 0 when it is not one (bad magic). */
unsigned fr_vol_hdr_version(const uint8_t src[FR_VOL_HDR]);
void fr_rec_hdr_pack(uint8_t dst[FR_REC_HDR], const struct fr_rec_hdr *r);
/* Validates magic, checksum, type, and len against max_body. */
int fr_rec_hdr_unpack(struct fr_rec_hdr *r, const uint8_t src[FR_REC_HDR],
		      uint32_t max_body);
void fr_vol_trailer_pack(uint8_t dst[FR_TRAILER_LEN],
			 const struct fr_vol_trailer *t);
int fr_vol_trailer_unpack(struct fr_vol_trailer *t,
			  const uint8_t src[FR_TRAILER_LEN]);

#endif
