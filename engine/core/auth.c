/*
 * auth.c - passwords become keys, keys prove themselves. Both sides of a
 * session hold the account's password; neither sends it. The key is
 * Argon2id (libsodium crypto_pwhash) of the password salted by the
 * account code. The handshake (net.c) runs CPace over ristretto255 with
 * that key as its password string: a balanced PAKE, so nothing seen on
 * the wire, nor one failed attempt, lets anyone test a guess offline.
 * Its intermediate key gives the confirmations and the session's keys.
 * PROTOCOL.md writes the construction down.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fr_core.h"

static int sodium_ready(void)
{
	static int state; /* 0 unknown, 1 ok, -1 failed */

	if (state == 0)
		state = sodium_init() < 0 ? -1 : 1;
	return state > 0 ? 0 : -ENOSYS;
}

int fr_key_derive(const char *password, size_t len, const char *account,
		  uint8_t key[32])
{
	uint8_t salt[crypto_pwhash_SALTBYTES];
	char label[64];

	if (sodium_ready() < 0)
		return -ENOSYS;
	snprintf(label, sizeof(label), "ferry-account:%s", account);
	crypto_generichash(salt, sizeof(salt), (const uint8_t *)label,
			   strlen(label), NULL, 0);
	/* moderate limits: derived once per process per account */
	if (crypto_pwhash(key, 32, password, len, salt, 2, 8u << 20,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM;
	return 0;
}

int fr_secret_load(const char *file, const char *env, char *out, size_t cap,
		   const char *what)
{
	if (env && *env) {
		const char *v = getenv(env);
		if (!v || !*v) {
			fr_log(FR_LOG_ERROR,
			       "%s: environment variable '%s' is not set", what,
			       env);
			return FR_E_CONFIG;
		}
		if (strlen(v) >= cap)
			return FR_E_TOO_LARGE;
		memcpy(out, v, strlen(v) + 1);
		return 0;
	}
	if (!file || !*file) {
		fr_log(FR_LOG_ERROR, "%s: no password-file or password-env",
		       what);
		return FR_E_CONFIG;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;
		fr_log(FR_LOG_ERROR, "%s: cannot read password file '%s': %s",
		       what, file, strerror(-e));
		return e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		st.st_mode = S_IFREG | 0600; /* read() says what is wrong */
	if (!S_ISREG(st.st_mode)) {
		fr_log(FR_LOG_ERROR,
		       "%s: password file '%s' is not a regular file%s", what,
		       file, S_ISDIR(st.st_mode) ? " (a directory)" : "");
		close(fd);
		return FR_E_CONFIG;
	}
	if ((st.st_mode & 0077))
		fr_log(FR_LOG_WARN,
		       "%s: password file '%s' is readable by others "
		       "(chmod 600 it)",
		       what, file);
	ssize_t n = read(fd, out, cap - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		fr_log(FR_LOG_ERROR, "%s: cannot read password file '%s': %s",
		       what, file, strerror(e));
		return -e;
	}
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	if (!out[0]) {
		fr_log(FR_LOG_ERROR, "%s: password file '%s' is empty", what,
		       file);
		return FR_E_CONFIG;
	}
	return 0;
}

void fr_random(void *buf, size_t len)
{
	if (sodium_ready() < 0)
		abort();
	randombytes_buf(buf, len);
}

/* ---- CPace over ristretto255 (draft-irtf-cfrg-cpace) ---------------------- */

#define CPACE_DSI "CPaceRistretto255"
#define CPACE_S_IN 128 /* SHA-512's input block */

/* lv_cat: each part prefixed with its length (LEB128), into h. */
static void lv(crypto_hash_sha512_state *h, const void *p, size_t len)
{
	uint8_t b[10];
	size_t n = 0, v = len;

	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	crypto_hash_sha512_update(h, b, n);
	if (len)
		crypto_hash_sha512_update(h, p, len);
}

static size_t lv_size(size_t len)
{
	size_t n = 1;

	while (len >>= 7)
		n++;
	return n;
}

int fr_cpace_calc_generator(const uint8_t *prs, size_t prs_len,
			    const uint8_t *ci, size_t ci_len, const uint8_t *sid,
			    size_t sid_len, uint8_t g[32])
{
	static const uint8_t zeros[CPACE_S_IN];
	size_t dsi_len = sizeof(CPACE_DSI) - 1;
	size_t used = 1 + lv_size(prs_len) + prs_len + lv_size(dsi_len) + dsi_len;
	size_t zpad = used < CPACE_S_IN ? CPACE_S_IN - used : 0;
	crypto_hash_sha512_state h;
	uint8_t hash[crypto_hash_sha512_BYTES];

	if (sodium_ready() < 0)
		return -ENOSYS;
	crypto_hash_sha512_init(&h);
	lv(&h, CPACE_DSI, dsi_len);
	lv(&h, prs, prs_len);
	lv(&h, zeros, zpad);
	lv(&h, ci, ci_len);
	lv(&h, sid, sid_len);
	crypto_hash_sha512_final(&h, hash);
	crypto_core_ristretto255_from_hash(g, hash);
	sodium_memzero(hash, sizeof(hash));
	return 0;
}

int fr_cpace_generator(const uint8_t prs[32], const char *account,
		       const uint8_t sid[FR_SID_LEN], uint8_t g[32])
{
	uint8_t ci[2 + 16 + FR_CODE_MAX];
	size_t alen = strlen(account), n = 0;

	/* CI: what the session is for: this protocol and the account */
	ci[n++] = 7;
	memcpy(ci + n, "ferry-2", 7);
	n += 7;
	ci[n++] = (uint8_t)alen;
	memcpy(ci + n, account, alen);
	n += alen;
	return fr_cpace_calc_generator(prs, 32, ci, n, sid, FR_SID_LEN, g);
}

int fr_cpace_share(const uint8_t g[32], const uint8_t y[32], uint8_t Y[32])
{
	return crypto_scalarmult_ristretto255(Y, y, g) == 0 ? 0 : FR_E_AUTH;
}

int fr_cpace_isk(const uint8_t y[32], const uint8_t other[32],
		 const uint8_t sid[FR_SID_LEN], const uint8_t ys[32],
		 const uint8_t *ad_s, size_t ad_s_len, const uint8_t yc[32],
		 const uint8_t *ad_c, size_t ad_c_len, uint8_t isk[64])
{
	return fr_cpace_calc_isk(y, other, sid, FR_SID_LEN, ys, ad_s, ad_s_len,
				 yc, ad_c, ad_c_len, isk);
}

int fr_cpace_calc_isk(const uint8_t y[32], const uint8_t other[32],
		      const uint8_t *sid, size_t sid_len, const uint8_t ya[32],
		      const uint8_t *ad_a, size_t ad_a_len,
		      const uint8_t yb[32], const uint8_t *ad_b,
		      size_t ad_b_len, uint8_t isk[64])
{
	crypto_hash_sha512_state h;
	uint8_t k[32];

	/* an invalid encoding, or a share that makes the identity */
	if (!crypto_core_ristretto255_is_valid_point(other) ||
	    crypto_scalarmult_ristretto255(k, y, other) != 0)
		return FR_E_AUTH;
	crypto_hash_sha512_init(&h);
	lv(&h, CPACE_DSI "_ISK", sizeof(CPACE_DSI "_ISK") - 1);
	lv(&h, sid, sid_len);
	lv(&h, k, sizeof(k));
	/* transcript_ir, in the order sent: the server's share first */
	lv(&h, ya, 32);
	lv(&h, ad_a, ad_a_len);
	lv(&h, yb, 32);
	lv(&h, ad_b, ad_b_len);
	crypto_hash_sha512_final(&h, isk);
	sodium_memzero(k, sizeof(k));
	return 0;
}

static void kdf(const uint8_t isk[64], const char *label, uint8_t aead,
		uint8_t out[32])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, isk, 64, 32);
	crypto_generichash_update(&h, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&h, &aead, 1);
	crypto_generichash_final(&h, out, 32);
}

void fr_session_keys(const uint8_t isk[64], uint8_t aead,
		     struct fr_session_keys *k)
{
	kdf(isk, "ferry-2 confirm C", aead, k->confirm_c);
	kdf(isk, "ferry-2 confirm S", aead, k->confirm_s);
	kdf(isk, "ferry-2 key C->S", aead, k->c2s);
	kdf(isk, "ferry-2 key S->C", aead, k->s2c);
}
