/*
 * seal.c - everything after the handshake is sealed (PROTOCOL.md,
 * "Sealed messages").
 *
 * Each direction of a session has its own key from the handshake. A
 * message record is sealed with the direction's records' key and its
 * counter as the nonce, its type and length as associated data: a
 * record altered, dropped, replayed, moved or cut does not open. The
 * records' key changes every 2^epoch_bits messages (derived from the
 * direction's key and the epoch), so the counter never wraps under one
 * key.
 *
 * A frame's payload is sealed by the worker that made it, in place, in
 * chunks, under a key of its own: derived from the direction's key and
 * the frame's number, which the worker takes from the direction's frame
 * counter. The frame's header (with the number and the chunks' tags)
 * goes in a message record, so the frame is bound to its place in the
 * stream; each chunk opens on its own, so what arrived of a cut frame
 * can be kept.
 *
 * AES-256-GCM's bulk (the frames' chunks, and any message of GCM_EVP_MIN
 * bytes or more) is done by OpenSSL's libcrypto, the rest by libsodium:
 * the same standard cipher, so the same bytes on the wire, but OpenSSL's
 * code for a CPU with VAES seals and opens about 2.2 times as fast per
 * core as libsodium 1.0.18's, and takes 0.35 core-seconds per GiB off
 * each side of a send (PERFORMANCE.md, "What sealing costs"): a send
 * over a fast line is bound by the CPU. libsodium stays for everything else:
 * the handshake, the keys, XChaCha20, wiping. OpenSSL is included in
 * this file only.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/fr_core.h"

#define PART_RECORD 0xffffffffu
/* Below this a message is sealed by libsodium with the key's state from
 * fr_aead_key_init: setting OpenSSL's key up for one call costs more
 * than it saves (bench/seal_rate.c). */
#define GCM_EVP_MIN 4096u

/* ---- AES-256-GCM by OpenSSL ---------------------------------------------- */

/*
 * The cipher is fetched once (an implicit fetch in every init would look
 * it up in OpenSSL's provider store each time); a run's context is the
 * caller's thread's alone, made and freed per run: a run is a frame's
 * chunks or one large message, and its key is the frame's own, so there
 * is no key schedule to keep between runs, and EVP_CIPHER_CTX_free
 * wipes the one it made.
 */
static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

struct fr_gcm *fr_gcm_begin(const uint8_t key[32], bool seal)
{
	EVP_CIPHER_CTX *c;

	pthread_once(&gcm_once, gcm_fetch);
	if (!gcm_cipher || !(c = EVP_CIPHER_CTX_new()))
		return NULL;
	if (EVP_CipherInit_ex2(c, gcm_cipher, key, NULL, seal, NULL) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return (struct fr_gcm *)c;
}

void fr_gcm_end(struct fr_gcm *g)
{
	EVP_CIPHER_CTX_free((EVP_CIPHER_CTX *)g); /* wipes the key schedule */
}

/* The nonce and the associated data: the call's start. */
static int gcm_start(EVP_CIPHER_CTX *c, const uint8_t nonce[12],
		     const uint8_t *ad, size_t adlen)
{
	int n;

	if (adlen > INT_MAX ||
	    EVP_CipherInit_ex2(c, NULL, NULL, nonce, -1, NULL) != 1)
		return -1;
	return adlen == 0 || EVP_CipherUpdate(c, NULL, &n, ad, (int)adlen) == 1
		   ? 0
		   : -1;
}

/* buf through the cipher in place, in pieces an int can count */
static int gcm_update(EVP_CIPHER_CTX *c, uint8_t *buf, size_t len)
{
	for (size_t at = 0; at < len;) {
		int step = len - at > (1u << 30) ? 1 << 30 : (int)(len - at), n;

		if (EVP_CipherUpdate(c, buf + at, &n, buf + at, step) != 1 ||
		    n != step)
			return -1;
		at += (size_t)step;
	}
	return 0;
}

int fr_gcm_seal(struct fr_gcm *g, const uint8_t nonce[12], uint8_t *buf,
		size_t len, const uint8_t *ad, size_t adlen,
		uint8_t tag[FR_SEAL_TAG])
{
	EVP_CIPHER_CTX *c = (EVP_CIPHER_CTX *)g;
	uint8_t end[16];
	int n;

	if (gcm_start(c, nonce, ad, adlen) < 0)
		return -1;
	if (gcm_update(c, buf, len) < 0 ||
	    EVP_CipherFinal_ex(c, end, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, FR_SEAL_TAG, tag) !=
		1) {
		sodium_memzero(buf, len);
		memset(tag, 0, FR_SEAL_TAG);
	}
	return 0;
}

int fr_gcm_open(struct fr_gcm *g, const uint8_t nonce[12], uint8_t *buf,
		size_t len, const uint8_t *ad, size_t adlen,
		const uint8_t tag[FR_SEAL_TAG])
{
	EVP_CIPHER_CTX *c = (EVP_CIPHER_CTX *)g;
	uint8_t end[16];
	int n;

	if (gcm_start(c, nonce, ad, adlen) == 0 &&
	    gcm_update(c, buf, len) == 0 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, FR_SEAL_TAG,
				(void *)tag) == 1 &&
	    EVP_CipherFinal_ex(c, end, &n) == 1)
		return 0;
	sodium_memzero(buf, len); /* nothing unauthenticated is left */
	return FR_E_SEALED;
}

const char *fr_versions(void)
{
	static char v[160];

	snprintf(v, sizeof(v),
		 "protocol %d (sealed sessions, one read of the source), "
		 "parcel volume format %d "
		 "(sealed)",
		 FR_PROTO_VERSION, FR_VOL_VERSION);
	return v;
}

const char *fr_aead_here(void)
{
	return fr_aead_name(fr_aead_local());
}

uint8_t fr_aead_local(void)
{
	static int ok = -1;

	if (ok < 0)
		ok = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
	/* FERRY_XCHACHA: as a machine without AES-NI (the tests) */
	if (fr_hook_flag("XCHACHA"))
		return FR_AEAD_XCHACHA20;
	return ok ? FR_AEAD_AES256GCM : FR_AEAD_XCHACHA20;
}

const char *fr_aead_name(uint8_t aead)
{
	return aead == FR_AEAD_AES256GCM   ? "AES-256-GCM"
	       : aead == FR_AEAD_XCHACHA20 ? "XChaCha20-Poly1305"
					   : "?";
}

int fr_aead_key_init(struct fr_aead_key *k, uint8_t aead,
		     const uint8_t key[32])
{
	if (sodium_init() < 0)
		return -ENOSYS;
	k->aead = aead;
	k->evp = false;
	memcpy(k->key, key, 32);
	if (aead == FR_AEAD_AES256GCM) {
		if (!crypto_aead_aes256gcm_is_available())
			return FR_E_AUTH;
		crypto_aead_aes256gcm_beforenm(&k->gcm, key);
		pthread_once(&gcm_once, gcm_fetch);
		/* FERRY_SODIUM_GCM: libsodium's AES-256-GCM only (the tests
		 * of one side's OpenSSL against the other's libsodium) */
		k->evp = gcm_cipher != NULL && !fr_hook_flag("SODIUM_GCM");
		return 0;
	}
	return aead == FR_AEAD_XCHACHA20 ? 0 : FR_E_AUTH;
}

/* 12 bytes for AES-256-GCM, 24 for XChaCha20: n (LE), part, zeros. */
static void nonce(uint8_t out[24], uint64_t n, uint32_t part)
{
	memset(out, 0, 24);
	fr_put64(out, n);
	fr_put32(out + 8, part);
}

void fr_aead_seal(const struct fr_aead_key *k, uint64_t n, uint32_t part,
		  uint8_t *buf, size_t len, const uint8_t *ad, size_t adlen,
		  uint8_t tag[FR_SEAL_TAG])
{
	uint8_t nb[24];

	nonce(nb, n, part);
	if (k->aead == FR_AEAD_AES256GCM && k->evp && len >= GCM_EVP_MIN) {
		struct fr_gcm *g = fr_gcm_begin(k->key, true);
		int r = g ? fr_gcm_seal(g, nb, buf, len, ad, adlen, tag) : -1;

		fr_gcm_end(g);
		if (r == 0)
			return;
	}
	if (k->aead == FR_AEAD_AES256GCM)
		crypto_aead_aes256gcm_encrypt_detached_afternm(
			buf, tag, NULL, buf, len, ad, adlen, NULL, nb, &k->gcm);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
			buf, tag, NULL, buf, len, ad, adlen, NULL, nb, k->key);
}

int fr_aead_open(const struct fr_aead_key *k, uint64_t n, uint32_t part,
		 uint8_t *buf, size_t len, const uint8_t *ad, size_t adlen,
		 const uint8_t tag[FR_SEAL_TAG])
{
	uint8_t nb[24];
	int r;

	nonce(nb, n, part);
	if (k->aead == FR_AEAD_AES256GCM && k->evp && len >= GCM_EVP_MIN) {
		struct fr_gcm *g = fr_gcm_begin(k->key, false);

		if (g) {
			r = fr_gcm_open(g, nb, buf, len, ad, adlen, tag);
			fr_gcm_end(g);
			return r;
		}
	}
	if (k->aead == FR_AEAD_AES256GCM)
		r = crypto_aead_aes256gcm_decrypt_detached_afternm(
			buf, NULL, buf, len, tag, ad, adlen, nb, &k->gcm);
	else
		r = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			buf, NULL, buf, len, tag, ad, adlen, nb, k->key);
	return r == 0 ? 0 : FR_E_SEALED;
}

/* base -> the key of one use: label, then a number */
static void derive(const uint8_t base[32], const char *label, uint64_t no,
		   uint8_t out[32])
{
	crypto_generichash_state h;
	uint8_t nb[8];

	fr_put64(nb, no);
	crypto_generichash_init(&h, base, 32, 32);
	crypto_generichash_update(&h, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&h, nb, sizeof(nb));
	crypto_generichash_final(&h, out, 32);
}

static int dir_epoch(struct fr_seal_dir *d, uint8_t aead, uint64_t epoch)
{
	uint8_t k[32];
	int r;

	derive(d->base, "ferry-2 records", epoch, k);
	r = fr_aead_key_init(&d->rec, aead, k);
	sodium_memzero(k, sizeof(k));
	d->epoch = epoch;
	return r;
}

void fr_chan_plain(struct fr_chan *ch, int fd)
{
	memset(ch, 0, sizeof(*ch));
	ch->fd = fd;
	ch->epoch_bits = 32;
}

int fr_chan_seal(struct fr_chan *ch, uint8_t aead, const uint8_t tx[32],
		 const uint8_t rx[32])
{
	int r;

	ch->aead = aead;
	memcpy(ch->tx.base, tx, 32);
	memcpy(ch->rx.base, rx, 32);
	ch->tx.ctr = ch->rx.ctr = 0;
	atomic_store(&ch->tx.frames, 0);
	atomic_store(&ch->rx.frames, 0);
	if ((r = dir_epoch(&ch->tx, aead, 0)) < 0 ||
	    (r = dir_epoch(&ch->rx, aead, 0)) < 0)
		return r;
	ch->sealed = true;
	return 0;
}

void fr_chan_wipe(struct fr_chan *ch)
{
	int fd = ch->fd;

	sodium_memzero(&ch->tx, sizeof(ch->tx));
	sodium_memzero(&ch->rx, sizeof(ch->rx));
	ch->sealed = false;
	ch->fd = fd;
}

/* The counter's records' key, changed at each epoch's start. */
static int rec_key(struct fr_chan *ch, struct fr_seal_dir *d)
{
	if (d->ctr == UINT64_MAX)
		return FR_E_WORN;
	uint64_t e = ch->epoch_bits >= 64 ? 0 : d->ctr >> ch->epoch_bits;
	return e == d->epoch ? 0 : dir_epoch(d, ch->aead, e);
}

int fr_rec_seal(struct fr_chan *ch, const uint8_t hdr[8], uint8_t *body,
		uint32_t len, uint8_t tag[FR_SEAL_TAG])
{
	int r = rec_key(ch, &ch->tx);

	if (r < 0)
		return r;
	fr_aead_seal(&ch->tx.rec, ch->tx.ctr, PART_RECORD, body, len, hdr, 8,
		     tag);
	ch->tx.ctr++;
	return 0;
}

int fr_rec_open(struct fr_chan *ch, const uint8_t hdr[8], uint8_t *body,
		uint32_t len, const uint8_t tag[FR_SEAL_TAG])
{
	int r = rec_key(ch, &ch->rx);

	if (r < 0)
		return r;
	r = fr_aead_open(&ch->rx.rec, ch->rx.ctr, PART_RECORD, body, len, hdr,
			 8, tag);
	if (r == 0)
		ch->rx.ctr++;
	return r;
}

uint64_t fr_chan_frame_no(struct fr_chan *ch)
{
	return atomic_fetch_add(&ch->tx.frames, 1);
}

int fr_frame_key(const struct fr_seal_dir *d, uint8_t aead, uint64_t no,
		 struct fr_aead_key *out)
{
	uint8_t k[32];
	int r;

	derive(d->base, "ferry-2 frame", no, k);
	r = fr_aead_key_init(out, aead, k);
	sodium_memzero(k, sizeof(k));
	return r;
}

uint32_t fr_chunk_size(uint32_t stored_len)
{
	uint32_t c = FR_CHUNK_MIN;

	while (c < (1u << 30) && (stored_len + (uint64_t)c - 1) / c > FR_CHUNKS_MAX)
		c <<= 1;
	return c;
}

uint32_t fr_chunk_count(uint32_t stored_len)
{
	uint32_t c = fr_chunk_size(stored_len);

	return (uint32_t)((stored_len + (uint64_t)c - 1) / c);
}

/* A frame's chunks: one OpenSSL run under its key where it is AES-256-GCM
 * (NULL: libsodium, chunk by chunk). */
static struct fr_gcm *chunks_begin(const struct fr_aead_key *k, bool seal)
{
	return k->aead == FR_AEAD_AES256GCM && k->evp
		   ? fr_gcm_begin(k->key, seal)
		   : NULL;
}

void fr_chunks_seal(const struct fr_aead_key *k, const uint8_t *fhdr,
		    uint8_t *payload, uint32_t from, uint32_t stored,
		    uint8_t *tags)
{
	uint32_t c = fr_chunk_size(stored);
	struct fr_gcm *g = from < stored ? chunks_begin(k, true) : NULL;
	uint8_t nb[24];

	for (uint32_t at = from, i = 0; at < stored; at += c, i++) {
		uint32_t n = stored - at < c ? stored - at : c;
		uint8_t *tag = tags + (size_t)i * FR_SEAL_TAG;

		nonce(nb, 0, at / c);
		if (!g || fr_gcm_seal(g, nb, payload + at, n, fhdr,
				      FR_FRAME_HDR, tag) < 0)
			fr_aead_seal(k, 0, at / c, payload + at, n, fhdr,
				     FR_FRAME_HDR, tag);
	}
	fr_gcm_end(g);
}

int fr_chunks_open(const struct fr_aead_key *k, const uint8_t *fhdr,
		   uint8_t *payload, uint32_t from, uint32_t stored,
		   const uint8_t *tags)
{
	return fr_chunks_open_prefix(k, fhdr, payload, from, stored, stored,
				     tags) == stored
		       ? 0
		       : FR_E_SEALED;
}

uint32_t fr_chunks_open_prefix(const struct fr_aead_key *k,
			       const uint8_t *fhdr, uint8_t *payload,
			       uint32_t from, uint32_t got, uint32_t stored,
			       const uint8_t *tags)
{
	uint32_t c = fr_chunk_size(stored), at = from;
	struct fr_gcm *g = from < got ? chunks_begin(k, false) : NULL;
	uint8_t nb[24];

	for (uint32_t i = 0; at < got; at += c, i++) {
		uint32_t n = stored - at < c ? stored - at : c;
		const uint8_t *tag = tags + (size_t)i * FR_SEAL_TAG;

		if (at + n > got)
			break;
		nonce(nb, 0, at / c);
		if ((g ? fr_gcm_open(g, nb, payload + at, n, fhdr, FR_FRAME_HDR,
				     tag)
		       : fr_aead_open(k, 0, at / c, payload + at, n, fhdr,
				      FR_FRAME_HDR, tag)) < 0)
			break;
	}
	fr_gcm_end(g);
	return at < got ? at : got;
}
