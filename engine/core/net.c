/*
 * net.c - the control channel: length-prefixed messages on a TCP socket,
 * connection set-up and the handshake (CPace, then every message sealed).
 *
 * Control messages use plain blocking send/recv: they are small and rare.
 * Bulk data (SEGMENT frames) goes through the ring in send.c and serve.c.
 * Every length read from the peer is checked against a limit before any
 * memory is committed, and bodies grow only as bytes actually arrive.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fr_core.h"

int fr_send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fr_recv_exact(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, MSG_WAITALL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fr_msg_send(struct fr_chan *ch, uint32_t type, const void *body,
		uint32_t len)
{
	size_t tl = ch->sealed ? FR_SEAL_TAG : 0, n = FR_MSG_HDR + len + tl;
	uint8_t small[512], *b = n <= sizeof(small) ? small : malloc(n);
	int rc = 0;

	if (!b)
		return -ENOMEM;
	fr_put32(b, type);
	fr_put32(b + 4, len);
	if (len)
		memcpy(b + FR_MSG_HDR, body, len);
	if (ch->sealed)
		rc = fr_rec_seal(ch, b, b + FR_MSG_HDR, len,
				 b + FR_MSG_HDR + len);
	if (rc == 0)
		rc = fr_send_all(ch->fd, b, n);
	if (b != small) {
		sodium_memzero(b, n);
		free(b);
	}
	return rc;
}

int fr_send_error(struct fr_chan *ch, int code, const char *text)
{
	uint8_t buf[512];
	size_t n = strlen(text);

	if (n > sizeof(buf) - 4)
		n = sizeof(buf) - 4;
	fr_put32(buf, (uint32_t)code);
	memcpy(buf + 4, text, n);
	return fr_msg_send(ch, FR_MSG_ERROR, buf, (uint32_t)(n + 4));
}

/* An ERROR's text, printable, into errbuf; its code as ours. */
int fr_error_text(const uint8_t *buf, uint32_t n, char *errbuf, size_t errcap)
{
	int code = n >= 4 ? (int)fr_get32(buf) : FR_E_PROTOCOL;
	size_t tl = n >= 4 ? n - 4 : 0;

	if (tl >= errcap)
		tl = errcap - 1;
	for (size_t i = 0; i < tl; i++) {
		char ch = (char)buf[4 + i];
		errbuf[i] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
	}
	errbuf[tl] = '\0';
	/* busy: the same request may succeed in a moment; a name that is
	 * another account's will not be ours by trying again */
	if (code == -EBUSY || code == FR_E_NOT_OWNER)
		return code;
	return FR_E_REFUSED;
}

/* A body of n bytes, grown with the bytes that really arrive, never by
 * the claim; then a sealed record's tag. */
static int recv_body(int fd, uint32_t n, size_t extra, uint8_t **out)
{
	uint8_t *buf = NULL;
	size_t cap = 0, got = 0, total = n + extra;
	int rc;

	while (got < total) {
		size_t want = total - got;
		if (want > (1u << 20))
			want = 1u << 20;
		if (got + want > cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			while (ncap < got + want)
				ncap *= 2;
			if (ncap > total)
				ncap = total;
			uint8_t *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		rc = fr_recv_exact(fd, buf + got, want);
		if (rc < 0) {
			free(buf);
			return rc;
		}
		got += want;
	}
	*out = buf ? buf : calloc(1, 1);
	return *out ? 0 : -ENOMEM;
}

/* A header of printable text: the peer speaks something else (a web
 * server's "HTTP/1.1", an ssh banner). A ferry header never is: its type
 * is a small number, whose low byte is a control character. */
static bool text_header(const uint8_t *h)
{
	for (size_t i = 0; i < FR_MSG_HDR; i++)
		if ((h[i] < 0x20 && h[i] != '\r' && h[i] != '\n' &&
		     h[i] != '\t') ||
		    h[i] > 0x7e)
			return false;
	return true;
}

int fr_msg_recv(struct fr_chan *ch, uint32_t *type, uint8_t **body,
		uint32_t *len, uint32_t max, char *errbuf, size_t errcap)
{
	uint8_t hdr[FR_MSG_HDR];
	uint8_t *buf = NULL;
	size_t tl = ch->sealed ? FR_SEAL_TAG : 0;
	int rc;

	*body = NULL;
	*len = 0;
	rc = fr_recv_exact(ch->fd, hdr, sizeof(hdr));
	if (rc < 0)
		return rc;
	*type = fr_get32(hdr);
	uint32_t n = fr_get32(hdr + 4);
	if (!ch->sealed && text_header(hdr)) {
		char t[FR_MSG_HDR + 1];
		for (size_t i = 0; i < FR_MSG_HDR; i++)
			t[i] = hdr[i] >= 0x20 ? (char)hdr[i] : ' ';
		t[FR_MSG_HDR] = '\0';
		snprintf(errbuf, errcap,
			 "the peer does not speak ferry's protocol (it sent "
			 "\"%s...\"; is this the right host and port?)",
			 t);
		return FR_E_PROTOCOL;
	}
	if (*type == FR_MSG_ERROR && n > FR_CTRL_MAX)
		return FR_E_PROTOCOL;
	if (*type != FR_MSG_ERROR && n > max) {
		snprintf(errbuf, errcap,
			 "message type %u of %u bytes exceeds the limit of %u",
			 *type, n, max);
		return FR_E_TOO_LARGE;
	}
	rc = recv_body(ch->fd, n, tl, &buf);
	if (rc < 0)
		return rc;
	if (ch->sealed &&
	    fr_rec_open(ch, hdr, buf, n, buf + n) < 0) {
		free(buf);
		snprintf(errbuf, errcap, "message authentication failed");
		return FR_E_SEALED;
	}
	buf[n] = '\0';
	if (*type == FR_MSG_ERROR) {
		rc = fr_error_text(buf, n, errbuf, errcap);
		free(buf);
		return rc;
	}
	*body = buf;
	*len = n;
	return 0;
}

static int split_hostport(const char *hp, char *host, size_t hcap, char *port,
			  size_t pcap)
{
	const char *colon;

	if (hp[0] == '[') { /* [v6]:port */
		const char *end = strchr(hp, ']');
		if (!end || end[1] != ':')
			return FR_E_CONFIG;
		if ((size_t)(end - hp - 1) >= hcap)
			return FR_E_CONFIG;
		memcpy(host, hp + 1, (size_t)(end - hp - 1));
		host[end - hp - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon || (size_t)(colon - hp) >= hcap)
			return FR_E_CONFIG;
		memcpy(host, hp, (size_t)(colon - hp));
		host[colon - hp] = '\0';
	}
	if (!colon[1] || strlen(colon + 1) >= pcap)
		return FR_E_CONFIG;
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

/* The send buffer is left to the kernel's autotuning; the receiver caps
 * its receive buffer (serve.c), which bounds what a crash loses. */
void fr_sock_tune(int fd)
{
	int one = 1, idle = 10, intvl = 5, cnt = 3;
	unsigned user_timeout = 120000; /* ms: unacknowledged data */

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a peer that vanished without a reset (sleep, NAT, a dropped
	 * line) must not hold a session, its package's lock and a
	 * connection slot: probed after 10 s of silence, gone after 25 s */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
		   sizeof(user_timeout));
}

/* getaddrinfo's failure as ours: a name that does not exist, or a
 * resolver that cannot answer now (try again later) */
static int resolve_error(int eai)
{
	if (eai == EAI_NONAME || eai == EAI_FAIL
#ifdef EAI_NODATA
	    || eai == EAI_NODATA
#endif
	)
		return FR_E_NO_HOST;
	return eai == EAI_SYSTEM && errno ? -errno : -EAGAIN;
}

int fr_tcp_connect(const char *hostport, unsigned timeout_ms)
{
	char host[256], port[16];
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, rc;

	if (split_hostport(hostport, host, sizeof(host), port, sizeof(port)))
		return FR_E_CONFIG;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return resolve_error(rc);
	rc = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
						   SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		fr_sock_tune(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
		    errno != EINPROGRESS) {
			rc = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int pr = poll(&pfd, 1, (int)timeout_ms);
		int err = 0;
		socklen_t el = sizeof(err);
		if (pr == 0)
			err = ETIMEDOUT;
		else if (pr < 0 ||
			 getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			rc = -err;
			close(fd);
			fd = -1;
			continue;
		}
		/* back to blocking: the ring and the control path expect it */
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		break;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : rc;
}

int fr_tcp_listen(const char *hostport)
{
	char host[256], port[16];
	struct addrinfo hints = {0}, *res;
	int fd, one = 1;

	if (split_hostport(hostport, host, sizeof(host), port, sizeof(port)))
		return FR_E_CONFIG;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int eai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (eai != 0)
		return resolve_error(eai);
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
		    res->ai_protocol);
	if (fd < 0) {
		int e = -errno;
		freeaddrinfo(res);
		return e;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 64) < 0) {
		int e = -errno;
		close(fd);
		freeaddrinfo(res);
		return e;
	}
	freeaddrinfo(res);
	return fd;
}

/* ---- handshake --------------------------------------------------------- */

static void set_timeout(int fd, unsigned sec)
{
	struct timeval tv = {.tv_sec = sec};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/*
 * HELLO:     magic, version, account length, flags (bit 0: AES-NI here),
 *            account, client nonce
 * CHALLENGE: server nonce, the AEAD chosen, the server's CPace share,
 *            the receiving site's code (bound in the transcript: a client
 *            that reached another site than the one it meant says so)
 * AUTH:      the client's share, the client's confirmation
 * WELCOME:   the server's confirmation; from here on every message is
 *            sealed (seal.c)
 * PROTOCOL.md has the construction, the transcript and the keys.
 */
#define HELLO_AESNI 1
#define FR_HANDSHAKE_S 20 /* the client waits this long for each answer */
#define CHALLENGE_MIN (FR_NONCE_LEN + 1 + 32 + 1) /* + the code */
#define AUTH_LEN (32 + FR_CONFIRM_LEN)

struct hs {
	char account[FR_CODE_MAX + 1];
	uint8_t sid[FR_SID_LEN]; /* client nonce | server nonce */
	uint8_t ad_c[4], ad_s[2 + FR_CODE_MAX];
	size_t ad_s_len;
	uint8_t y[32], ys[32], yc[32];
	uint8_t isk[64];
	struct fr_session_keys k;
};

static void hs_wipe(struct hs *h)
{
	sodium_memzero(h, sizeof(*h));
}

/* The account's generator, a fresh scalar and our share. */
static int hs_share(struct hs *h, const uint8_t prs[32], uint8_t share[32])
{
	uint8_t g[32];
	int rc = fr_cpace_generator(prs, h->account, h->sid, g);

	if (rc < 0)
		return rc;
	crypto_core_ristretto255_scalar_random(h->y);
	rc = fr_cpace_share(g, h->y, share);
	sodium_memzero(g, sizeof(g));
	return rc;
}

/* The intermediate key from the other side's share, and what it gives. */
static int hs_keys(struct hs *h, const uint8_t other[32], uint8_t aead)
{
	int rc = fr_cpace_isk(h->y, other, h->sid, h->ys, h->ad_s,
			      h->ad_s_len, h->yc, h->ad_c, sizeof(h->ad_c),
			      h->isk);

	if (rc == 0)
		fr_session_keys(h->isk, aead, &h->k);
	return rc;
}

static int client_hello(struct fr_chan *ch, struct hs *h, uint8_t flags)
{
	uint8_t hello[8 + FR_CODE_MAX + FR_NONCE_LEN];
	size_t alen = strlen(h->account);

	fr_random(h->sid, FR_NONCE_LEN);
	fr_put32(hello, FR_PROTO_MAGIC);
	fr_put16(hello + 4, FR_PROTO_VERSION);
	hello[6] = (uint8_t)alen;
	hello[7] = flags;
	memcpy(hello + 8, h->account, alen);
	memcpy(hello + 8 + alen, h->sid, FR_NONCE_LEN);
	h->ad_c[0] = 'C';
	fr_put16(h->ad_c + 1, FR_PROTO_VERSION);
	h->ad_c[3] = flags;
	return fr_msg_send(ch, FR_MSG_HELLO, hello,
			   (uint32_t)(8 + alen + FR_NONCE_LEN));
}

/* AD_S: "S", the AEAD, the receiving site's code. */
static void ad_server(struct hs *h, uint8_t aead, const char *code, size_t n)
{
	h->ad_s[0] = 'S';
	h->ad_s[1] = aead;
	memcpy(h->ad_s + 2, code, n);
	h->ad_s_len = 2 + n;
}

/* What the receiver says to HELLO, or why it said nothing useful; the
 * code of the site that answered in site. */
static int client_challenge(struct fr_chan *ch, struct hs *h, uint8_t flags,
			    uint8_t *aead, char site[FR_CODE_MAX + 1],
			    char *errbuf, size_t errcap)
{
	uint8_t *body = NULL;
	uint32_t type, len;
	int rc = fr_msg_recv(ch, &type, &body, &len, FR_CTRL_MAX, errbuf,
			     errcap);

	if (rc == -ECONNRESET) {
		snprintf(errbuf, errcap,
			 "the connection was closed after HELLO (no ferry serve "
			 "behind a forwarder there, or a ferry older than "
			 "protocol 2: upgrade it)");
		return FR_E_BAD_VERSION;
	}
	if (rc < 0)
		return rc;
	size_t n = len >= CHALLENGE_MIN ? body[CHALLENGE_MIN - 1] : 0;
	if (type != FR_MSG_CHALLENGE || len < CHALLENGE_MIN ||
	    len != CHALLENGE_MIN + n || n == 0 || n > FR_CODE_MAX ||
	    (body[FR_NONCE_LEN] != FR_AEAD_XCHACHA20 &&
	     !(body[FR_NONCE_LEN] == FR_AEAD_AES256GCM &&
	       (flags & HELLO_AESNI)))) {
		free(body);
		snprintf(errbuf, errcap, "peer is not a ferry receiver "
					 "(unexpected reply to HELLO)");
		return FR_E_PROTOCOL;
	}
	memcpy(h->sid + FR_NONCE_LEN, body, FR_NONCE_LEN);
	*aead = body[FR_NONCE_LEN];
	memcpy(h->ys, body + FR_NONCE_LEN + 1, 32);
	for (size_t i = 0; i < n; i++) /* (printable: it is said) */
		site[i] = body[CHALLENGE_MIN + i] > 0x20 &&
					  body[CHALLENGE_MIN + i] < 0x7f
				  ? (char)body[CHALLENGE_MIN + i]
				  : '?';
	site[n] = '\0';
	ad_server(h, *aead, (const char *)body + CHALLENGE_MIN, n);
	free(body);
	return 0;
}

int fr_handshake_client(struct fr_chan *ch, const char *account,
			const uint8_t key[32], const char *site, char *errbuf,
			size_t errcap)
{
	struct hs h = {0};
	char there[FR_CODE_MAX + 1];
	uint8_t flags = fr_aead_local() == FR_AEAD_AES256GCM ? HELLO_AESNI : 0;
	uint8_t aead, auth[AUTH_LEN], *body = NULL;
	uint32_t type, len;
	int rc;

	/* a handshake is a few small messages: a peer that takes them and
	 * says nothing for this long will not */
	set_timeout(ch->fd, FR_HANDSHAKE_S);
	snprintf(h.account, sizeof(h.account), "%s", account);
	if ((rc = client_hello(ch, &h, flags)) < 0 ||
	    (rc = client_challenge(ch, &h, flags, &aead, there, errbuf,
				   errcap)) < 0)
		goto out;
	/* not the site meant (a host that leads elsewhere): nothing is
	 * proved to it, nothing sent */
	if (site && strcmp(site, there)) {
		snprintf(errbuf, errcap,
			 "the receiver there is site %s's, not %s's", there,
			 site);
		rc = FR_E_WRONG_SITE;
		goto out;
	}
	if ((rc = hs_share(&h, key, h.yc)) < 0)
		goto out;
	if (hs_keys(&h, h.ys, aead) < 0) {
		snprintf(errbuf, errcap,
			 "the receiver sent an invalid key share");
		rc = FR_E_AUTH;
		goto out;
	}
	memcpy(auth, h.yc, 32);
	memcpy(auth + 32, h.k.confirm_c, FR_CONFIRM_LEN);
	if ((rc = fr_msg_send(ch, FR_MSG_AUTH, auth, sizeof(auth))) < 0 ||
	    (rc = fr_msg_recv(ch, &type, &body, &len, FR_CTRL_MAX, errbuf,
			      errcap)) < 0)
		goto out;
	if (type != FR_MSG_WELCOME || len != FR_CONFIRM_LEN ||
	    crypto_verify_32(body, h.k.confirm_s) != 0) {
		snprintf(errbuf, errcap,
			 "the receiver could not prove it knows account %s's "
			 "password",
			 account);
		rc = FR_E_AUTH;
		goto out;
	}
	rc = fr_chan_seal(ch, aead, h.k.c2s, h.k.s2c);
	set_timeout(ch->fd, 0);
out:
	free(body);
	hs_wipe(&h);
	return rc;
}

/* HELLO: the account and the client's nonce, or why not. */
static int server_hello(struct fr_chan *ch, struct hs *h, uint8_t *flags,
			char *errbuf, size_t errcap)
{
	uint8_t *body = NULL;
	uint32_t type, len;
	int rc = fr_msg_recv(ch, &type, &body, &len, 256, errbuf, errcap);

	if (rc < 0) {
		if (rc == FR_E_TOO_LARGE)
			snprintf(errbuf, errcap, "garbage instead of HELLO");
		return rc == FR_E_TOO_LARGE ? FR_E_PROTOCOL : rc;
	}
	if (type != FR_MSG_HELLO || len < 8 + FR_NONCE_LEN ||
	    fr_get32(body) != FR_PROTO_MAGIC) {
		free(body);
		snprintf(errbuf, errcap, "peer does not speak ferry");
		return FR_E_PROTOCOL;
	}
	unsigned v = fr_get16(body + 4);
	if (v != FR_PROTO_VERSION) {
		char text[256];
		free(body);
		snprintf(text, sizeof(text),
			 "protocol version %u not supported: this receiver "
			 "speaks ferry protocol %u; upgrade "
			 "ferry %s",
			 v, FR_PROTO_VERSION,
			 v < FR_PROTO_VERSION ? "at the sending site"
					      : "at this receiver");
		fr_send_error(ch, FR_E_BAD_VERSION, text);
		snprintf(errbuf, errcap, "%s", text);
		return FR_E_BAD_VERSION;
	}
	size_t alen = body[6];
	if (alen == 0 || alen > FR_CODE_MAX || len != 8 + alen + FR_NONCE_LEN) {
		free(body);
		snprintf(errbuf, errcap, "malformed HELLO");
		return FR_E_PROTOCOL;
	}
	*flags = body[7];
	memcpy(h->account, body + 8, alen);
	h->account[alen] = '\0';
	memcpy(h->sid, body + 8 + alen, FR_NONCE_LEN);
	h->ad_c[0] = 'C';
	fr_put16(h->ad_c + 1, (uint16_t)v);
	h->ad_c[3] = *flags;
	free(body);
	return 0;
}

int fr_handshake_server(struct fr_chan *ch, const struct fr_config *c,
			const struct fr_account **who, char *errbuf,
			size_t errcap)
{
	struct hs h = {0};
	uint8_t flags, prs[32], chal[CHALLENGE_MIN + FR_CODE_MAX], *body = NULL;
	uint32_t type, len;
	int rc;

	set_timeout(ch->fd, 30);
	if ((rc = server_hello(ch, &h, &flags, errbuf, errcap)) < 0)
		goto out;
	/* an unknown account gets a share all the same (from a random
	 * password): the client cannot tell it from a wrong password */
	const struct fr_account *a = fr_config_account(c, h.account);
	if (a)
		memcpy(prs, a->key, 32);
	else
		fr_random(prs, sizeof(prs));
	uint8_t aead = (flags & HELLO_AESNI) &&
				       fr_aead_local() == FR_AEAD_AES256GCM
			       ? FR_AEAD_AES256GCM
			       : FR_AEAD_XCHACHA20;
	size_t n = strlen(c->code);
	fr_random(h.sid + FR_NONCE_LEN, FR_NONCE_LEN);
	ad_server(&h, aead, c->code, n);
	if ((rc = hs_share(&h, prs, h.ys)) < 0)
		goto out;
	memcpy(chal, h.sid + FR_NONCE_LEN, FR_NONCE_LEN);
	chal[FR_NONCE_LEN] = aead;
	memcpy(chal + FR_NONCE_LEN + 1, h.ys, 32);
	chal[CHALLENGE_MIN - 1] = (uint8_t)n;
	memcpy(chal + CHALLENGE_MIN, c->code, n);
	if ((rc = fr_msg_send(ch, FR_MSG_CHALLENGE, chal,
			      (uint32_t)(CHALLENGE_MIN + n))) < 0 ||
	    (rc = fr_msg_recv(ch, &type, &body, &len, 256, errbuf, errcap)) < 0)
		goto out;
	for (char *p = h.account; *p; p++) /* for the log */
		if (*p < 0x21 || *p > 0x7e)
			*p = '?';
	if (type != FR_MSG_AUTH || len != AUTH_LEN) {
		snprintf(errbuf, errcap, "malformed AUTH from account '%s'",
			 h.account);
		rc = FR_E_PROTOCOL;
		goto out;
	}
	memcpy(h.yc, body, 32);
	if (!a || hs_keys(&h, h.yc, aead) < 0 ||
	    crypto_verify_32(body + 32, h.k.confirm_c) != 0) {
		/* one guess of the password, tested online: logged alike
		 * for an unknown account and a wrong password */
		snprintf(errbuf, errcap,
			 "authentication failed for account '%s' (unknown "
			 "account or wrong password, or the handshake was "
			 "altered on the way)",
			 h.account);
		fr_send_error(ch, FR_E_AUTH,
			      "authentication failed (unknown account or wrong "
			      "password, or the handshake was altered on the "
			      "way)");
		rc = FR_E_AUTH;
		goto out;
	}
	if ((rc = fr_msg_send(ch, FR_MSG_WELCOME, h.k.confirm_s,
			      FR_CONFIRM_LEN)) < 0 ||
	    (rc = fr_chan_seal(ch, aead, h.k.s2c, h.k.c2s)) < 0)
		goto out;
	*who = a;
	set_timeout(ch->fd, 0);
out:
	free(body);
	sodium_memzero(prs, sizeof(prs));
	hs_wipe(&h);
	return rc;
}

/* ---- HAVE ------------------------------------------------------------------ */

int fr_send_have(struct fr_chan *ch, int state, const uint8_t *have, uint32_t n,
		 const struct fr_partial *p, uint32_t np)
{
	uint32_t base = FR_HAVE_LEN(n), len = base + np * FR_PARTIAL_REC;
	uint8_t *b = calloc(1, len);
	int rc;

	if (!b)
		return -ENOMEM;
	fr_put32(b, (uint32_t)state);
	fr_put32(b + 4, n);
	for (uint32_t i = 0; i < n; i++)
		if (state == FR_HAVE_COMPLETE || have[i])
			b[8 + i / 8] |= (uint8_t)(1u << (i % 8));
	for (uint32_t k = 0; k < np; k++) {
		uint8_t *r = b + base + k * FR_PARTIAL_REC;
		fr_put32(r, p[k].index);
		fr_put32(r + 4, p[k].got);
		memcpy(r + 8, p[k].hdr, FR_FRAME_HDR);
	}
	rc = fr_msg_send(ch, FR_MSG_HAVE, b, len);
	free(b);
	return rc;
}

int fr_have_parse(uint32_t type, const uint8_t *body, uint32_t len,
		  uint32_t n, uint8_t *have, struct fr_partial *p,
		  uint32_t *np)
{
	uint32_t base = FR_HAVE_LEN(n);

	if (type != FR_MSG_HAVE || len < base ||
	    (len - base) % FR_PARTIAL_REC ||
	    (len - base) / FR_PARTIAL_REC > FR_PARTIAL_MAX ||
	    fr_get32(body + 4) != n)
		return FR_E_PROTOCOL;
	if (have)
		for (uint32_t i = 0; i < n; i++)
			have[i] = (body[8 + i / 8] >> (i % 8)) & 1;
	if (np)
		*np = 0;
	for (uint32_t k = 0; p && np && k < (len - base) / FR_PARTIAL_REC; k++) {
		const uint8_t *r = body + base + k * FR_PARTIAL_REC;
		struct fr_partial *q = &p[*np];
		q->index = fr_get32(r);
		q->got = fr_get32(r + 4);
		memcpy(q->hdr, r + 8, FR_FRAME_HDR);
		if (q->index < n)
			(*np)++;
	}
	return fr_get32(body) == FR_HAVE_COMPLETE ? FR_HAVE_COMPLETE
						  : FR_HAVE_PARTIAL;
}

/* ---- HELD ------------------------------------------------------------------ */

int fr_send_held(struct fr_chan *ch, const uint8_t *unconf,
		 const uint8_t *have, uint32_t n)
{
	uint32_t k = 0;
	uint8_t *b;
	int rc;

	for (uint32_t i = 0; unconf && i < n; i++)
		k += unconf[(size_t)i * FR_UNCONF_REC] && !have[i];
	if (!(b = malloc(4 + (size_t)k * FR_HELD_REC)))
		return -ENOMEM;
	fr_put32(b, k);
	k = 0;
	for (uint32_t i = 0; unconf && i < n; i++) {
		const uint8_t *u = unconf + (size_t)i * FR_UNCONF_REC;
		if (!u[0] || have[i])
			continue;
		uint8_t *r = b + 4 + (size_t)k++ * FR_HELD_REC;
		fr_put32(r, i);
		memcpy(r + 4, u + 1, FR_HASH_LEN);
	}
	rc = fr_msg_send(ch, FR_MSG_HELD, b, 4 + k * FR_HELD_REC);
	free(b);
	return rc;
}

int fr_held_parse(uint32_t type, const uint8_t *body, uint32_t len,
		  uint32_t n, uint8_t *held)
{
	if (type != FR_MSG_HELD || len < 4)
		return FR_E_PROTOCOL;
	uint32_t k = fr_get32(body);
	if (k > n || len != 4 + k * FR_HELD_REC)
		return FR_E_PROTOCOL;
	for (uint32_t j = 0; j < k; j++) {
		const uint8_t *r = body + 4 + (size_t)j * FR_HELD_REC;
		uint32_t i = fr_get32(r);
		if (i >= n || held[(size_t)i * FR_UNCONF_REC] ||
		    fr_hash_unknown(r + 4))
			return FR_E_PROTOCOL;
		held[(size_t)i * FR_UNCONF_REC] = 1;
		memcpy(held + (size_t)i * FR_UNCONF_REC + 1, r + 4, FR_HASH_LEN);
	}
	return (int)k;
}

/* ---- OFFER_Z ------------------------------------------------------------ */

int fr_offer_z_pack(const uint8_t *mf, uint32_t len, int level, uint8_t **body,
		    uint32_t *body_len)
{
	struct fr_cctx c;
	size_t cap = fr_seg_bound(len);
	uint8_t *b = malloc(cap);
	int rc = b ? fr_cctx_init(&c) : -ENOMEM;

	if (rc < 0) {
		free(b);
		return rc;
	}
	ssize_t n = fr_seg_compress(&c, b, cap, mf, len, level);
	fr_cctx_fini(&c);
	if (n <= 0) {
		free(b);
		return n < 0 ? (int)n : FR_E_COMPRESS;
	}
	*body = b;
	*body_len = (uint32_t)n;
	return 0;
}

int fr_offer_z_unpack(const uint8_t *body, uint32_t len, uint8_t **mf,
		      uint32_t *mf_len)
{
	struct fr_dctx d;
	size_t n;
	int rc = fr_dctx_init(&d);

	if (rc < 0)
		return rc;
	rc = fr_decompress_alloc(&d, body, len, FR_MANIFEST_MAX, mf, &n);
	fr_dctx_fini(&d);
	if (rc == 0)
		*mf_len = (uint32_t)n;
	return rc;
}
