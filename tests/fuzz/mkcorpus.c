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

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair", -errno);
	int rc = type == FR_MSG_ERROR
		     ? fr_send_error(sv[0], (int)fr_get32(body),
				     (const char *)body + 4)
		     : fr_msg_send(sv[0], type, body, len);
	if (rc < 0)
		die("fr_msg_send", rc);
	close(sv[0]);
	ssize_t n;
	while ((n = read(sv[1], tmp, sizeof(tmp))) > 0)
		put(b, tmp, (size_t)n);
	close(sv[1]);
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
	if ((rc = fr_frame_encode(&c, &f, M.id, 1, seg, len, M.segments[1].hash,
				  NULL, 0, 0)) < 0)
		die("fr_frame_encode", rc);
	fr_frame_pack(hdr, &f);
	seed("frame", "raw", hdr, sizeof(hdr));
	put_msg_hdr(&s_raw, FR_MSG_SEGMENT, FR_FRAME_HDR + f.stored_len);
	put(&s_raw, hdr, sizeof(hdr));
	put(&s_raw, seg, len);
	put_msg_hdr(&s_raw, FR_MSG_END, 0);
	seed("segment", "raw", s_raw.p, s_raw.len);

	for (uint32_t i = 0; i < M.n_segments; i++) {
		len = fz_segment(&M, i, seg);
		if ((rc = fr_frame_encode(&c, &f, M.id, i, seg, len,
					  M.segments[i].hash, z, cap, 3)) < 0)
			die("fr_frame_encode", rc);
		fr_frame_pack(hdr, &f);
		if (i == 0) {
			seed("frame", "zstd", hdr, sizeof(hdr));
			put_msg_hdr(&s_zstd, FR_MSG_SEGMENT,
				    FR_FRAME_HDR + f.stored_len);
			put(&s_zstd, hdr, sizeof(hdr));
			put(&s_zstd, z, f.stored_len);
		}
		put_msg_hdr(&s_all, FR_MSG_SEGMENT,
			    FR_FRAME_HDR + f.stored_len);
		put(&s_all, hdr, sizeof(hdr));
		put(&s_all, (f.flags & FR_FRAME_ZSTD) ? z : seg, f.stored_len);
	}
	put_msg_hdr(&s_all, FR_MSG_END, 0);
	seed("segment", "zstd", s_zstd.p, s_zstd.len);
	seed("segment", "package", s_all.p, s_all.len);

	uint32_t rlen = fz_segment(&M, 0, ref);
	len = fz_segment(&M, 2, seg);
	if ((rc = fr_frame_encode_ref(&c, &f, M.id, 2, seg, len,
				      M.segments[2].hash, z, cap, 3, ref, rlen,
				      0)) < 0 ||
	    !(f.flags & FR_FRAME_REF))
		die("fr_frame_encode_ref", rc < 0 ? rc : FR_E_COMPRESS);
	fr_frame_pack(hdr, &f);
	seed("frame", "ref", hdr, sizeof(hdr));
	put_msg_hdr(&s_ref, FR_MSG_SEGMENT, FR_FRAME_HDR + f.stored_len);
	put(&s_ref, hdr, sizeof(hdr));
	put(&s_ref, z, f.stored_len);
	seed("segment", "ref", s_ref.p, s_ref.len);

	/* SEGMENT_CONT of the zstd frame of segment 3, from byte 10 */
	struct buf s_cont = {0};
	put(&s_cont, &sw, 1);
	len = fz_segment(&M, 3, seg);
	if ((rc = fr_frame_encode(&c, &f, M.id, 3, seg, len, M.segments[3].hash,
				  z, cap, 3)) < 0 ||
	    f.stored_len <= 10)
		die("fr_frame_encode", rc < 0 ? rc : FR_E_COMPRESS);
	fr_frame_pack(hdr, &f);
	uint8_t off[4];
	fr_put32(off, 10);
	put_msg_hdr(&s_cont, FR_MSG_SEGMENT_CONT,
		    FR_FRAME_HDR + 4 + f.stored_len - 10);
	put(&s_cont, hdr, sizeof(hdr));
	put(&s_cont, off, 4);
	put(&s_cont, z + 10, f.stored_len - 10);
	seed("segment", "cont", s_cont.p, s_cont.len);

	/* a streamed frame: header alone, PIECEs, FIN (as lan.c sends it) */
	struct buf s_stream = {0};
	put(&s_stream, &sw, 1);
	len = fz_segment(&M, 1, seg);
	memset(&f, 0, sizeof(f));
	f.flags = FR_FRAME_ZSTD | FR_FRAME_STREAM;
	f.level = 3;
	memcpy(f.pkg, M.id, FR_HASH_LEN);
	f.index = 1;
	f.raw_len = len;
	fr_hash128(seg, len, f.hash);
	fr_frame_pack(hdr, &f);
	seed("frame", "stream", hdr, sizeof(hdr));
	put_msg_hdr(&s_stream, FR_MSG_SEGMENT, FR_FRAME_HDR);
	put(&s_stream, hdr, sizeof(hdr));
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
		stored += (uint32_t)n;
	}
	uint8_t fin[4];
	fr_put32(fin, stored);
	put_msg_hdr(&s_stream, FR_MSG_FIN, 4);
	put(&s_stream, fin, 4);
	put_msg_hdr(&s_stream, FR_MSG_END, 0);
	seed("segment", "stream", s_stream.p, s_stream.len);

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

static void haves(void)
{
	uint8_t have[5] = {1, 0, 1, 0, 0};
	struct fr_partial p[FR_PARTIAL_MAX];
	struct buf b;
	uint8_t n4[4];
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
		uint32_t type, len;
		uint8_t *body;
		char err[64];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			die("socketpair", -errno);
		int rc = fr_send_have(sv[0], cases[k].state, have, 5, p,
				      cases[k].np);
		if (rc < 0 ||
		    (rc = fr_msg_recv(sv[1], &type, &body, &len, 1u << 20, err,
				      sizeof(err))) < 0)
			die("fr_send_have", rc);
		close(sv[0]);
		close(sv[1]);
		memset(&b, 0, sizeof(b));
		fr_put32(n4, 5);
		put(&b, n4, 4);
		put(&b, body, len);
		seed("have", cases[k].name, b.p, b.len);
		free(b.p);
		free(body);
	}
}

static void acks(void)
{
	struct buf b = {0};
	uint8_t body[400];
	uint8_t hd[2] = {M.n_segments - 1, 255};

	put(&b, hd, 2);
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
	hd[1] = 6; /* the socket delivers 7 bytes at a time */
	put(&b, hd, 2);
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
	seed("vol_hdr", "v2", vh, sizeof(vh));
	h.version = FR_VOL_VERSION_1;
	h.mf_len = 0;
	memcpy(h.pkg, M.id, FR_HASH_LEN);
	h.volume = FR_VOL_MAX;
	strcpy(h.to, "ABCDEFGHIJKLMNOP");
	fr_vol_hdr_pack(vh, &h);
	seed("vol_hdr", "v1", vh, sizeof(vh));

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
	acks();
	volumes();
	journals();
	configs();
	free(mf);
	fr_manifest_fini(&M);
	return 0;
}
