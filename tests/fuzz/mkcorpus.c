/*
 * mkcorpus.c - writes the fuzz targets' seeds, every one a real encoding
 * made by ferry's own encoders (fr_frame_encode + fr_frame_pack,
 * fr_manifest_encode, fr_offer_z_pack, fr_send_have, fr_msg_send,
 * fr_vol_hdr_pack, fr_journal_append, ...), for the fixed package of
 * fuzz_common.h. Usage: fuzz_mkcorpus DIR (tests/fuzz/corpus): writes
 * DIR/<target>/<seed>, replacing seeds of the same name and leaving any
 * other file (inputs found by the fuzzer) alone. tests/fuzz/README.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_internal.h"
#include "fuzz_common.h"

static const char *root;
static struct fr_manifest M;
static uint8_t *mf;
static size_t mf_len;

static void die(const char *what, int rc)
{
	fprintf(stderr, "mkcorpus: %s: %s\n", what, fr_strerror(rc));
	exit(1);
}

static void seed(const char *target, const char *name, const void *data,
		 size_t len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path, -errno);
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f))
		die(path, -EIO);
}

/* A growing byte string, for message streams. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die("realloc", -ENOMEM);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put_msg_hdr(struct buf *b, uint32_t type, uint32_t len)
{
	uint8_t h[FR_MSG_HDR];

	fr_put32(h, type);
	fr_put32(h + 4, len);
	put(b, h, sizeof(h));
}

/* What fr_msg_send writes for one message: its bytes off a socket. */
static void sent_msg(struct buf *b, uint32_t type, const void *body,
		     uint32_t len)
{
	int sv[2];
	uint8_t tmp[65536];
	struct fr_chan ch;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair", -errno);
	fr_chan_plain(&ch, sv[0]); /* opened: the plaintext of the message */
	int rc = type == FR_MSG_ERROR
		     ? fr_send_error(&ch, (int)fr_get32(body),
				     (const char *)body + 4)
		     : fr_msg_send(&ch, type, body, len);
	if (rc < 0)
		die("fr_msg_send", rc);
	close(sv[0]);
	ssize_t n;
	while ((n = read(sv[1], tmp, sizeof(tmp))) > 0)
		put(b, tmp, (size_t)n);
	close(sv[1]);
}

/*
 * A frame's record as opened (PROTOCOL.md): SEGMENT or SEGMENT_CONT, the
 * frame header, the offset (SEGMENT_CONT), the frame's number, a tag per
 * chunk from the offset on (a whole frame; zeros here: the target sees
 * the opened record); then, for a whole frame, the PAYLOAD header.
 */
static void put_rec(struct buf *b, const uint8_t *hdr, const struct fr_frame *f,
		    bool cont, uint32_t off)
{
	bool stream = f->flags & FR_FRAME_STREAM;
	uint32_t ntags = stream ? 0
				: fr_chunk_count(f->stored_len) -
					  off / fr_chunk_size(f->stored_len);
	uint8_t no[8], tag[FR_SEAL_TAG] = {0}, o[4];

	put_msg_hdr(b, cont ? FR_MSG_SEGMENT_CONT : FR_MSG_SEGMENT,
		    FR_FRAME_HDR + (cont ? 4 : 0) + 8 + ntags * FR_SEAL_TAG);
	put(b, hdr, FR_FRAME_HDR);
	if (cont) {
		fr_put32(o, off);
		put(b, o, 4);
	}
	fr_put64(no, 1);
	put(b, no, 8);
	for (uint32_t i = 0; i < ntags; i++)
		put(b, tag, sizeof(tag));
	if (!stream)
		put_msg_hdr(b, FR_MSG_PAYLOAD, f->stored_len - off);
}

static void frames(void)
{
	struct fr_cctx c;
	uint8_t seg[FZ_SEG], ref[FZ_SEG], hdr[FR_FRAME_HDR];
	size_t cap = fr_seg_bound(FZ_SEG);
	uint8_t *z = malloc(cap);
	struct fr_frame f;
	int rc;

	if (!z || (rc = fr_cctx_init(&c)) < 0)
		die("fr_cctx_init", -ENOMEM);

	/* SEGMENT (whole frames): raw, zstd, zstd against segment 0 */
	struct buf s_raw = {0}, s_zstd = {0}, s_ref = {0}, s_all = {0};
	uint8_t sw = 0;
	put(&s_raw, &sw, 1);
	put(&s_zstd, &sw, 1);
	put(&s_ref, &sw, 1);
	put(&s_all, &sw, 1);

	uint32_t len = fz_segment(&M, 1, seg);
	if ((rc = fr_frame_encode(&c, &f, M.lid, 1, seg, len, M.segments[1].hash,
				  NULL, 0, 0)) < 0)
		die("fr_frame_encode", rc);
	fr_frame_pack(hdr, &f);
	seed("frame", "raw", hdr, sizeof(hdr));
	put_rec(&s_raw, hdr, &f, false, 0);
	put(&s_raw, seg, len);
	put_msg_hdr(&s_raw, FR_MSG_END, 0);
	seed("segment", "raw", s_raw.p, s_raw.len);

	for (uint32_t i = 0; i < M.n_segments; i++) {
		len = fz_segment(&M, i, seg);
		if ((rc = fr_frame_encode(&c, &f, M.lid, i, seg, len,
					  M.segments[i].hash, z, cap, 3)) < 0)
			die("fr_frame_encode", rc);
		fr_frame_pack(hdr, &f);
		if (i == 0) {
			seed("frame", "zstd", hdr, sizeof(hdr));
			put_rec(&s_zstd, hdr, &f, false, 0);
			put(&s_zstd, z, f.stored_len);
		}
		put_rec(&s_all, hdr, &f, false, 0);
		put(&s_all, (f.flags & FR_FRAME_ZSTD) ? z : seg, f.stored_len);
	}
	put_msg_hdr(&s_all, FR_MSG_END, 0);
	seed("segment", "zstd", s_zstd.p, s_zstd.len);
	seed("segment", "package", s_all.p, s_all.len);

	uint32_t rlen = fz_segment(&M, 0, ref);
	len = fz_segment(&M, 2, seg);
	if ((rc = fr_frame_encode_ref(&c, &f, M.lid, 2, seg, len,
				      M.segments[2].hash, z, cap, 3, ref, rlen,
				      0)) < 0 ||
	    !(f.flags & FR_FRAME_REF))
		die("fr_frame_encode_ref", rc < 0 ? rc : FR_E_COMPRESS);
	fr_frame_pack(hdr, &f);
	seed("frame", "ref", hdr, sizeof(hdr));
	put_rec(&s_ref, hdr, &f, false, 0);
	put(&s_ref, z, f.stored_len);
	seed("segment", "ref", s_ref.p, s_ref.len);

	/* a streamed frame: header alone, PIECEs, FIN (as lan.c sends it) */
	struct buf s_stream = {0};
	put(&s_stream, &sw, 1);
	len = fz_segment(&M, 1, seg);
	memset(&f, 0, sizeof(f));
	f.flags = FR_FRAME_ZSTD | FR_FRAME_STREAM;
	f.level = 3;
	memcpy(f.pkg, M.lid, FR_HASH_LEN);
	f.index = 1;
	f.raw_len = len;
	fr_hash128(seg, len, f.hash);
	fr_frame_pack(hdr, &f);
	seed("frame", "stream", hdr, sizeof(hdr));
	put_rec(&s_stream, hdr, &f, false, 0);
	/* and the same stream continued from its second piece (the kept
	 * bytes are zeros in the target): SEGMENT_CONT, PIECEs, FIN */
	struct buf s_cont = {0};
	put(&s_cont, &sw, 1);
	put_rec(&s_cont, hdr, &f, true, 100);
	if ((rc = fr_seg_stream_begin(&c, len, 3, NULL, 0)) < 0)
		die("fr_seg_stream_begin", rc);
	size_t in_pos = 0;
	uint32_t stored = 0;
	bool done = false;
	while (!done) {
		ssize_t n =
		    fr_seg_stream_next(&c, seg, len, &in_pos, z, 100, &done);
		if (n < 0)
			die("fr_seg_stream_next", (int)n);
		if (n == 0)
			continue;
		put_msg_hdr(&s_stream, FR_MSG_PIECE, (uint32_t)n);
		put(&s_stream, z, (size_t)n);
		if (stored >= 100) {
			put_msg_hdr(&s_cont, FR_MSG_PIECE, (uint32_t)n);
			put(&s_cont, z, (size_t)n);
		}
		stored += (uint32_t)n;
	}
	uint8_t fin[4];
	fr_put32(fin, stored);
	put_msg_hdr(&s_stream, FR_MSG_FIN, 4);
	put(&s_stream, fin, 4);
	put_msg_hdr(&s_stream, FR_MSG_END, 0);
	seed("segment", "stream", s_stream.p, s_stream.len);
	put_msg_hdr(&s_cont, FR_MSG_FIN, 4);
	put(&s_cont, fin, 4);
	seed("segment", "cont", s_cont.p, s_cont.len);

	/* the same frame against a ferry that refuses streams, headers
	 * checked with their checksums made right */
	s_raw.p[0] = 1;
	seed("segment", "raw-refuse", s_raw.p, s_raw.len);
	s_stream.p[0] = 2;
	seed("segment", "stream-fix", s_stream.p, s_stream.len);

	free(s_raw.p);
	free(s_zstd.p);
	free(s_ref.p);
	free(s_all.p);
	free(s_cont.p);
	free(s_stream.p);
	fr_cctx_fini(&c);
	free(z);
}

static void manifests(void)
{
	struct fr_manifest e;
	uint8_t *body;
	uint32_t blen;
	int rc;

	seed("manifest", "package", mf, mf_len);
	if ((rc = fr_offer_z_pack(mf, (uint32_t)mf_len, 3, &body, &blen)) < 0)
		die("fr_offer_z_pack", rc);
	seed("offer_z", "package", body, blen);
	free(body);

	/* an empty package (no entries, no segments) */
	if ((rc = fr_manifest_init(&e, "empty", FR_SEG_DEFAULT)) < 0 ||
	    (rc = fr_manifest_layout(&e)) < 0 ||
	    (rc = fr_manifest_seal(&e)) < 0)
		die("empty manifest", rc);
	size_t n = fr_manifest_encoded_size(&e);
	uint8_t *b = malloc(n);
	if (!b || fr_manifest_encode(&e, b, n) != (ssize_t)n)
		die("fr_manifest_encode", -ENOMEM);
	seed("manifest", "empty", b, n);
	free(b);
	fr_manifest_fini(&e);

	/* names with odd bytes, a deep tree, an empty file, links */
	if ((rc = fr_manifest_init(&e, "odd names", FR_SEG_MIN)) < 0 ||
	    (rc = fr_manifest_add(&e, FR_ENT_DIR, "a", 0700, 0, 0, 0, NULL)) ||
	    (rc = fr_manifest_add(&e, FR_ENT_DIR, "a/b", 0755, 0, -5, 1,
				  NULL)) ||
	    (rc = fr_manifest_add(&e, FR_ENT_FILE, "a/b/\n\t\x01\xff", 04755,
				  5000, 1, 2, NULL)) ||
	    (rc = fr_manifest_add(&e, FR_ENT_LINK, "a/b/up", 0777, 0, 0, 0,
				  "../b/\n\t\x01\xff")) ||
	    (rc = fr_manifest_add(&e, FR_ENT_FILE, "a/empty", 0644, 0, 0, 0,
				  NULL)) ||
	    (rc = fr_manifest_add(&e, FR_ENT_FILE, "z", 0644, 1, 0, 0, NULL)) ||
	    (rc = fr_manifest_layout(&e)) < 0 ||
	    (rc = fr_manifest_seal(&e)) < 0)
		die("odd manifest", rc);
	n = fr_manifest_encoded_size(&e);
	b = malloc(n);
	if (!b || fr_manifest_encode(&e, b, n) != (ssize_t)n)
		die("fr_manifest_encode", -ENOMEM);
	seed("manifest", "odd", b, n);
	if ((rc = fr_offer_z_pack(b, (uint32_t)n, 19, &body, &blen)) == 0) {
		seed("offer_z", "odd", body, blen);
		free(body);
	}
	free(b);
	fr_manifest_fini(&e);
}

/* A plain channel pair over a socketpair, for a message to be sent and
 * taken as the peer receives it. */
static void chan_pair(int sv[2], struct fr_chan *a, struct fr_chan *b)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair", -errno);
	fr_chan_plain(a, sv[0]);
	fr_chan_plain(b, sv[1]);
}

/* The message sent into the pair (rc: the send's), as received, after
 * the 4-byte segment count n the targets take first: seed target/name. */
static void seed_received(const char *target, const char *name, uint32_t n,
			  int sv[2], struct fr_chan *b, int rc)
{
	uint32_t type, len;
	uint8_t *body, n4[4];
	char err[64];
	struct buf out = {0};

	if (rc < 0 ||
	    (rc = fr_msg_recv(b, &type, &body, &len, 1u << 20, err,
			      sizeof(err))) < 0)
		die(target, rc);
	close(sv[0]);
	close(sv[1]);
	fr_put32(n4, n);
	put(&out, n4, 4);
	put(&out, body, len);
	seed(target, name, out.p, out.len);
	free(out.p);
	free(body);
}

/* HELD: none, two records, one for the last segment (n = 5) */
static void helds(void)
{
	uint8_t unconf[5 * FR_UNCONF_REC] = {0}, have[5] = {0, 1, 0, 0, 0};
	static const struct {
		const char *name;
		uint8_t mask;
	} cases[] = {{"none", 0}, {"two", 0x05}, {"last", 0x10}, {"all", 0x1f}};

	for (size_t k = 0; k < FR_ARRAY_SIZE(cases); k++) {
		int sv[2];
		struct fr_chan a, b2;

		for (uint32_t i = 0; i < 5; i++) {
			unconf[i * FR_UNCONF_REC] = (cases[k].mask >> i) & 1;
			memset(unconf + i * FR_UNCONF_REC + 1, 0x30 + (int)i,
			       FR_HASH_LEN);
		}
		chan_pair(sv, &a, &b2);
		seed_received("held", cases[k].name, 5, sv, &b2,
			      fr_send_held(&a, unconf, have, 5));
	}
}

static void haves(void)
{
	uint8_t have[5] = {1, 0, 1, 0, 0};
	struct fr_partial p[FR_PARTIAL_MAX];
	static const struct {
		const char *name;
		int state;
		uint32_t np;
	} cases[] = {{"partial", FR_HAVE_PARTIAL, 0},
		     {"partial-kept", FR_HAVE_PARTIAL, 2},
		     {"complete", FR_HAVE_COMPLETE, 0},
		     {"partial-most-kept", FR_HAVE_PARTIAL, FR_PARTIAL_MAX}};

	memset(p, 0, sizeof(p));
	p[0].index = 1;
	p[0].got = 100;
	p[1].index = 4;
	p[1].got = 7;
	for (uint32_t k = 2; k < FR_PARTIAL_MAX; k++) {
		p[k].index = k % 5;
		p[k].got = 1000 + k;
	}
	for (size_t k = 0; k < FR_ARRAY_SIZE(cases); k++) {
		int sv[2];
		struct fr_chan a, b2;

		chan_pair(sv, &a, &b2); /* the HAVE as opened */
		seed_received("have", cases[k].name, 5, sv, &b2,
			      fr_send_have(&a, cases[k].state, have, 5, p,
					   cases[k].np));
	}
}

static void acks(void)
{
	struct buf b = {0};
	uint8_t body[400];
	uint8_t hd[1] = {M.n_segments - 1};

	put(&b, hd, 1);
	for (uint32_t i = 0; i < M.n_segments; i++) {
		fr_put32(body, i);
		fr_put32(body + 4, i == 1 ? FR_ACK_BAD : FR_ACK_DURABLE);
		fr_put32(body + 8, 250 * i);
		sent_msg(&b, FR_MSG_ACK, body, 12);
	}
	fr_put32(body, 1);
	fr_put32(body + 4, FR_ACK_NOREF);
	fr_put32(body + 8, 0);
	sent_msg(&b, FR_MSG_ACK, body, 12);
	sent_msg(&b, FR_MSG_DONE, NULL, 0);
	seed("ack", "acks-done", b.p, b.len);

	b.len = 0;
	put(&b, hd, 1);
	fr_put32(body, 0);
	fr_put32(body + 4, FR_ACK_DURABLE);
	fr_put32(body + 8, 1000);
	sent_msg(&b, FR_MSG_ACK, body, 12);
	fr_put32(body, (uint32_t)-ENOSPC);
	strcpy((char *)body + 4, "cannot write 'd/a': No space left on device");
	sent_msg(&b, FR_MSG_ERROR, body, 0);
	seed("ack", "ack-error", b.p, b.len);
	free(b.p);
}

static void volumes(void)
{
	struct fr_vol_hdr h;
	uint8_t vh[FR_VOL_HDR], rh[FR_REC_HDR + 4], tr[FR_TRAILER_LEN];

	memset(&h, 0, sizeof(h));
	h.version = FR_VOL_VERSION;
	for (int i = 0; i < FR_HASH_LEN; i++)
		h.parcel[i] = (uint8_t)(0x11 * i);
	h.mf_len = (uint32_t)mf_len;
	h.volume = 2;
	h.n_segments = M.n_segments;
	h.seg_size = M.seg_size;
	strcpy(h.from, "CEN");
	strcpy(h.to, "LAB-2_x");
	strcpy(h.account, "CEN");
	h.created = 1764000000;
	fr_vol_hdr_pack(vh, &h);
	seed("vol_hdr", "v3", vh, sizeof(vh));
	h.mf_len = 0;
	memset(h.check, 0x5a, sizeof(h.check));
	h.volume = FR_VOL_MAX;
	strcpy(h.to, "ABCDEFGHIJKLMNOP");
	fr_vol_hdr_pack(vh, &h);
	seed("vol_hdr", "last", vh, sizeof(vh));

	static const struct {
		const char *name;
		uint32_t type, len;
	} recs[] = {{"manifest", FR_REC_MANIFEST, 0},
		    {"seglist", FR_REC_SEGLIST, 1},
		    {"frame", FR_REC_FRAME, FR_FRAME_HDR + 4096},
		    {"trailer", FR_REC_TRAILER, FR_TRAILER_LEN}};
	for (size_t k = 0; k < FR_ARRAY_SIZE(recs); k++) {
		struct fr_rec_hdr r = {
		    recs[k].type, recs[k].len ? recs[k].len : (uint32_t)mf_len};
		fr_rec_hdr_pack(rh, &r);
		fr_put32(rh + FR_REC_HDR, 1u << 20); /* what the volume holds */
		seed("rec_hdr", recs[k].name, rh, sizeof(rh));
	}

	struct fr_vol_trailer t = {
	    .volume = 2, .frames = 3, .first = 1, .last = 3, .bytes = 123456};
	memset(t.chain, 0x3c, sizeof(t.chain));
	fr_vol_trailer_pack(tr, &t);
	seed("vol_trailer", "middle", tr, sizeof(tr));
	t.flags = FR_VOL_LAST;
	t.total = 2;
	fr_vol_trailer_pack(tr, &t);
	seed("vol_trailer", "last", tr, sizeof(tr));
	memset(&t, 0, sizeof(t));
	t.volume = 1;
	t.first = 1; /* no frames: first > last */
	fr_vol_trailer_pack(tr, &t);
	seed("vol_trailer", "empty", tr, sizeof(tr));
}

static void journals(void)
{
	char path[] = "/tmp/ferry-mkcorpus-XXXXXX";
	struct fr_journal j;
	uint8_t *b;
	size_t len;
	int rc, fd = mkstemp(path);

	if (fd < 0)
		die("mkstemp", -errno);
	close(fd);
	uint32_t segs[] = {2, 0, 3};
	if ((rc = fr_journal_open(&j, path, &M)) < 0 ||
	    (rc = fr_journal_append(&j, &M, segs, 3)) < 0)
		die("fr_journal_append", rc);
	fr_journal_close(&j);
	if ((rc = fr_read_file(path, 1u << 20, &b, &len)) < 0)
		die("fr_read_file", rc);
	seed("journal", "three", b, len);
	seed("journal", "header", b, FR_JOURNAL_HDR);
	seed("journal", "torn", b, len - 5); /* a crash mid-append */
	free(b);
	unlink(path);
}

static void configs(void)
{
	static const char full[] = "; a site with every section\n"
				   "[site]\n"
				   "code   = CEN\n"
				   "store  = /srv/ferry\n"
				   "listen = 0.0.0.0:7070\n"
				   "\n"
				   "[account LAB]\n"
				   "password-file = /etc/ferry/LAB.pw\n"
				   "\n"
				   "[address LAB lan]\n"
				   "type          = lan\n"
				   "host          = lab.example:7070\n"
				   "account       = CEN\n"
				   "password-env  = FERRY_PW\n"
				   "priority      = 1\n"
				   "bandwidth     = 100M\n"
				   "schedule      = mon-fri 08-18 high; "
				   "mon-fri 18-08 all; sat-sun all\n"
				   "rate-limit    = 08-18 50%; 18-08 100%\n"
				   "\n"
				   "[address LAB isdn]\n"
				   "type          = isdn\n"
				   "host          = 10.20.0.2:7070\n"
				   "dial          = /etc/ferry/dial-lab\n"
				   "hang-up       = /etc/ferry/hangup-lab\n"
				   "idle-timeout  = 60s\n"
				   "password-file = /etc/ferry/CEN-at-LAB.pw\n"
				   "priority      = 2\n"
				   "\n"
				   "[address LAB usb]\n"
				   "type          = courier\n"
				   "password-file = /etc/ferry/CEN-at-LAB.pw\n"
				   "media         = /mnt/usb\n"
				   "transit       = 3d\n"
				   "\n"
				   "[sender]\n"
				   "retries            = 2\n"
				   "retry-delay        = 60s\n"
				   "max-sends          = 5\n"
				   "max-sends-per-site = 3\n"
				   "level              = auto\n"
				   "segment-size       = 8M\n"
				   "workers            = 0\n"
				   "\n"
				   "[receiver]\n"
				   "max-connections = 4\n";
	static const char small[] = "\xEF\xBB\xBF[site]\r\n"
				    "  code = LAB\r\n"
				    "  store = /tmp/s\r\n"
				    "[address CEN x]\r\n"
				    "type = async\r\n"
				    "host = [::1]:7070\r\n"
				    "rate-limit = pulse 4K 5s\r\n"
				    "schedule = high\r\n"
				    "[address CEN y]\n"
				    "type = sna\n"
				    "host = :7070\n"
				    "bandwidth = 9600bit/s\n"
				    "rate-limit = unlimited\n"
				    "[sender]\n"
				    "level = 19\n"
				    "segment-size = 4KiB\n"
				    "retry-delay = 1.5m\n";

	seed("config", "full", full, sizeof(full) - 1);
	seed("config", "small", small, sizeof(small) - 1);
}

/* The handshake, sealed messages and sealed parcel records: fixed bytes
 * (no random nonce), so that the seeds come out the same every time. */
static const uint8_t basepoint[32] = {
    0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9,
    0x61, 0xc5, 0x00, 0x51, 0x5f, 0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82,
    0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76};

static void handshakes(void)
{
	struct buf b = {0};
	uint8_t sw = 0, body[128];

	/* what a client sends: HELLO, then AUTH (a valid point, a guess) */
	put(&b, &sw, 1);
	fr_put32(body, FR_PROTO_MAGIC);
	fr_put16(body + 4, FR_PROTO_VERSION);
	body[6] = 3;
	body[7] = 1;
	memcpy(body + 8, "CEN", 3);
	memset(body + 11, 0x11, FR_NONCE_LEN);
	sent_msg(&b, FR_MSG_HELLO, body, 11 + FR_NONCE_LEN);
	memcpy(body, basepoint, 32);
	memset(body + 32, 0x22, FR_CONFIRM_LEN);
	sent_msg(&b, FR_MSG_AUTH, body, 32 + FR_CONFIRM_LEN);
	seed("handshake", "client", b.p, b.len);
	/* a client of protocol 1 */
	b.len = 0;
	put(&b, &sw, 1);
	fr_put32(body, FR_PROTO_MAGIC);
	fr_put16(body + 4, 1);
	body[6] = 3;
	body[7] = 0;
	memcpy(body + 8, "CEN", 3);
	memset(body + 11, 0x11, FR_NONCE_LEN);
	sent_msg(&b, FR_MSG_HELLO, body, 11 + FR_NONCE_LEN);
	seed("handshake", "old-client", b.p, b.len);
	/* what a receiver answers: CHALLENGE, then WELCOME */
	b.len = 0;
	sw = 1;
	put(&b, &sw, 1);
	memset(body, 0x33, FR_NONCE_LEN);
	body[FR_NONCE_LEN] = FR_AEAD_XCHACHA20;
	memcpy(body + FR_NONCE_LEN + 1, basepoint, 32);
	body[FR_NONCE_LEN + 33] = 3; /* the receiving site's code */
	memcpy(body + FR_NONCE_LEN + 34, "LAB", 3);
	sent_msg(&b, FR_MSG_CHALLENGE, body, FR_NONCE_LEN + 1 + 32 + 1 + 3);
	memset(body, 0x44, FR_CONFIRM_LEN);
	sent_msg(&b, FR_MSG_WELCOME, body, FR_CONFIRM_LEN);
	seed("handshake", "server", b.p, b.len);
	/* a receiver that refuses */
	b.len = 0;
	put(&b, &sw, 1);
	fr_put32(body, (uint32_t)FR_E_AUTH);
	strcpy((char *)body + 4, "authentication failed (unknown account or "
				 "wrong password)");
	sent_msg(&b, FR_MSG_ERROR, body, 0);
	seed("handshake", "refused", b.p, b.len);
	free(b.p);
}

/* fuzz_sealed's list: u32 type, u16 length, body */
static void put_plain(struct buf *b, uint32_t type, const void *body,
		      uint16_t len)
{
	uint8_t h[6];

	fr_put32(h, type);
	fr_put16(h + 4, len);
	put(b, h, sizeof(h));
	put(b, body, len);
}

static void sealed(void)
{
	struct buf b = {0};
	uint8_t sw = 1, u[4], body[64];
	uint8_t have[FR_HAVE_LEN(5)] = {0};

	put(&b, &sw, 1);
	fr_put32(u, UINT32_MAX); /* no flip */
	put(&b, u, 4);
	fr_put32(have, FR_HAVE_PARTIAL);
	fr_put32(have + 4, 5);
	have[8] = 0x05;
	put_plain(&b, FR_MSG_HAVE, have, sizeof(have));
	fr_put32(body, 2);
	fr_put32(body + 4, FR_ACK_DURABLE);
	fr_put32(body + 8, 100);
	put_plain(&b, FR_MSG_ACK, body, 12);
	put_plain(&b, FR_MSG_DONE, NULL, 0);
	fr_put32(body, (uint32_t)-ENOSPC);
	memcpy(body + 4, "no room", 7);
	put_plain(&b, FR_MSG_ERROR, body, 11);
	seed("sealed", "messages", b.p, b.len);
	fr_put32(b.p + 1, 8 + sizeof(have) + 16 + 3); /* a flip in the ACK */
	seed("sealed", "flipped", b.p, b.len);
	/* bytes from the path: a message in the clear */
	b.len = 0;
	sw = 0;
	put(&b, &sw, 1);
	sent_msg(&b, FR_MSG_ACK, body, 12);
	seed("sealed", "cleartext", b.p, b.len);
	free(b.p);
}

static void parcel_records(void)
{
	struct buf b = {0};
	uint8_t sw = 1, u[2], body[200];

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7);
	put(&b, &sw, 1);
	fr_put16(u, UINT16_MAX); /* no flip */
	put(&b, u, 2);
	put(&b, body, sizeof(body));
	seed("parcel_record", "frame", b.p, b.len);
	fr_put16(b.p + 1, FR_REC_HDR + FR_REC_NONCE + 70);
	seed("parcel_record", "flipped", b.p, b.len);
	/* a record found on a medium that the key never sealed: a header,
	 * a nonce, a body and a tag, fixed */
	b.len = 0;
	sw = 0;
	put(&b, &sw, 1);
	uint8_t r[FR_REC_HDR + FR_SEAL_LEN + 100] = {0};
	fr_put32(r, FR_REC_FRAME);
	fr_put32(r + 4, 100);
	memset(r + FR_REC_HDR, 0x66, FR_REC_NONCE);
	memcpy(r + FR_REC_HDR + FR_REC_NONCE, body, 100);
	memset(r + FR_REC_HDR + FR_REC_NONCE + 100, 0x55, FR_REC_MAC);
	put(&b, r, sizeof(r));
	seed("parcel_record", "other-key", b.p, b.len);
	free(b.p);
}

/* fuzz_parcel_msg: a byte for the message (0 PARCEL, 1 PARCEL_QUERY,
 * 2 PARCEL_WITHDRAW), then its body as opened */
static void parcel_msgs(void)
{
	struct buf b = {0};
	uint8_t sw = 0, id[FR_HASH_LEN], n[4];

	memset(id, 0x77, sizeof(id));
	put(&b, &sw, 1);
	put(&b, id, sizeof(id));
	put(&b, mf, mf_len);
	seed("parcel_msg", "register", b.p, b.len);
	b.len = 0;
	sw = 1;
	put(&b, &sw, 1);
	fr_put32(n, 2);
	put(&b, n, 4);
	put(&b, id, sizeof(id));
	memset(id, 0x78, sizeof(id));
	put(&b, id, sizeof(id));
	seed("parcel_msg", "query", b.p, b.len);
	b.len = 0;
	sw = 2;
	put(&b, &sw, 1);
	put(&b, id, sizeof(id));
	seed("parcel_msg", "withdraw", b.p, b.len);
	free(b.p);
}

int main(int argc, char **argv)
{
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST)
		die(root, -errno);
	if ((rc = fz_manifest(&M)) < 0)
		die("fz_manifest", rc);
	mf_len = fr_manifest_encoded_size(&M);
	mf = malloc(mf_len);
	if (!mf || fr_manifest_encode(&M, mf, mf_len) != (ssize_t)mf_len)
		die("fr_manifest_encode", -ENOMEM);
	frames();
	manifests();
	haves();
	helds();
	acks();
	volumes();
	journals();
	configs();
	handshakes();
	sealed();
	parcel_records();
	parcel_msgs();
	free(mf);
	fr_manifest_fini(&M);
	return 0;
}
