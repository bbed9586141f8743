/*
 * net.c - the control channel: length-prefixed messages on a TCP socket,
 * connection set-up and the mutual challenge-response handshake.
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

#include "fr_internal.h"

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

int fr_msg_send(int fd, uint32_t type, const void *body, uint32_t len)
{
	uint8_t hdr[FR_MSG_HDR];
	int rc;

	fr_put32(hdr, type);
	fr_put32(hdr + 4, len);
	rc = fr_send_all(fd, hdr, sizeof(hdr));
	if (rc == 0 && len)
		rc = fr_send_all(fd, body, len);
	return rc;
}

int fr_send_error(int fd, int code, const char *text)
{
	uint8_t buf[512];
	size_t n = strlen(text);

	if (n > sizeof(buf) - 4)
		n = sizeof(buf) - 4;
	fr_put32(buf, (uint32_t)code);
	memcpy(buf + 4, text, n);
	return fr_msg_send(fd, FR_MSG_ERROR, buf, (uint32_t)(n + 4));
}

int fr_msg_recv(int fd, uint32_t *type, uint8_t **body, uint32_t *len,
		uint32_t max, char *errbuf, size_t errcap)
{
	uint8_t hdr[FR_MSG_HDR];
	uint8_t *buf = NULL;
	size_t cap = 0, got = 0;
	int rc;

	*body = NULL;
	*len = 0;
	rc = fr_recv_exact(fd, hdr, sizeof(hdr));
	if (rc < 0)
		return rc;
	*type = fr_get32(hdr);
	uint32_t n = fr_get32(hdr + 4);
	if (*type == FR_MSG_ERROR && n > FR_CTRL_MAX)
		return FR_E_PROTOCOL;
	if (*type != FR_MSG_ERROR && n > max) {
		snprintf(errbuf, errcap,
			 "message type %u of %u bytes exceeds the limit of %u",
			 *type, n, max);
		return FR_E_TOO_LARGE;
	}
	/* grow with the bytes that really arrive, never by the claim */
	while (got < n) {
		size_t want = n - got;
		if (want > (1u << 20))
			want = 1u << 20;
		if (got + want > cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			while (ncap < got + want)
				ncap *= 2;
			if (ncap > n)
				ncap = n;
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
	if (!buf)
		buf = calloc(1, 1);
	else
		buf[n] = '\0';
	if (*type == FR_MSG_ERROR) {
		int code = n >= 4 ? (int)fr_get32(buf) : FR_E_PROTOCOL;
		size_t tl = n >= 4 ? n - 4 : 0;
		if (tl >= errcap)
			tl = errcap - 1;
		for (size_t i = 0; i < tl; i++) {
			char ch = (char)buf[4 + i];
			errbuf[i] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
		}
		errbuf[tl] = '\0';
		free(buf);
		/* busy: the same request may succeed in a moment */
		return code == -EBUSY ? -EBUSY : FR_E_REFUSED;
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
		return -EHOSTUNREACH;
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
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0)
		return -EADDRNOTAVAIL;
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

int fr_handshake_client(int fd, const char *account, const uint8_t key[32],
			char *errbuf, size_t errcap)
{
	uint8_t hello[8 + FR_CODE_MAX + FR_NONCE_LEN];
	uint8_t cnonce[FR_NONCE_LEN], proof[FR_PROOF_LEN];
	size_t alen = strlen(account);
	uint8_t *body = NULL;
	uint32_t type, len;
	int rc;

	set_timeout(fd, 60);
	fr_random(cnonce, sizeof(cnonce));
	fr_put32(hello, FR_PROTO_MAGIC);
	fr_put16(hello + 4, FR_PROTO_VERSION);
	hello[6] = (uint8_t)alen;
	hello[7] = 0;
	memcpy(hello + 8, account, alen);
	memcpy(hello + 8 + alen, cnonce, FR_NONCE_LEN);
	rc = fr_msg_send(fd, FR_MSG_HELLO, hello,
			 (uint32_t)(8 + alen + FR_NONCE_LEN));
	if (rc < 0)
		return rc;
	rc = fr_msg_recv(fd, &type, &body, &len, FR_CTRL_MAX, errbuf, errcap);
	if (rc < 0)
		return rc;
	if (type != FR_MSG_CHALLENGE || len != FR_NONCE_LEN) {
		free(body);
		snprintf(errbuf, errcap, "peer is not a ferry receiver "
					 "(unexpected reply to HELLO)");
		return FR_E_PROTOCOL;
	}
	uint8_t snonce[FR_NONCE_LEN];
	memcpy(snonce, body, FR_NONCE_LEN);
	free(body);
	fr_auth_proof(key, 'C', account, cnonce, snonce, proof);
	rc = fr_msg_send(fd, FR_MSG_AUTH, proof, sizeof(proof));
	if (rc < 0)
		return rc;
	rc = fr_msg_recv(fd, &type, &body, &len, FR_CTRL_MAX, errbuf, errcap);
	if (rc < 0)
		return rc;
	if (type != FR_MSG_WELCOME || len < FR_PROOF_LEN ||
	    !fr_auth_check(key, 'S', account, cnonce, snonce, body)) {
		free(body);
		snprintf(errbuf, errcap,
			 "the receiver could not prove it knows account %s's "
			 "password",
			 account);
		return FR_E_AUTH;
	}
	free(body);
	set_timeout(fd, 0);
	return 0;
}

int fr_handshake_server(int fd, const struct fr_config *c,
			const struct fr_account **who, char *errbuf,
			size_t errcap)
{
	uint8_t *body = NULL;
	uint32_t type, len;
	char account[FR_CODE_MAX + 1];
	uint8_t cnonce[FR_NONCE_LEN], snonce[FR_NONCE_LEN];
	int rc;

	set_timeout(fd, 30);
	rc = fr_msg_recv(fd, &type, &body, &len, 256, errbuf, errcap);
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
	if (fr_get16(body + 4) != FR_PROTO_VERSION) {
		free(body);
		snprintf(errbuf, errcap, "protocol version %u not supported",
			 fr_get16(body + 4));
		return FR_E_BAD_VERSION;
	}
	size_t alen = body[6];
	if (alen == 0 || alen > FR_CODE_MAX || len != 8 + alen + FR_NONCE_LEN) {
		free(body);
		snprintf(errbuf, errcap, "malformed HELLO");
		return FR_E_PROTOCOL;
	}
	memcpy(account, body + 8, alen);
	account[alen] = '\0';
	for (size_t i = 0; i < alen; i++)
		if (account[i] < 0x21 || account[i] > 0x7e)
			account[i] = '?';
	memcpy(cnonce, body + 8 + alen, FR_NONCE_LEN);
	free(body);

	fr_random(snonce, sizeof(snonce));
	rc = fr_msg_send(fd, FR_MSG_CHALLENGE, snonce, sizeof(snonce));
	if (rc < 0)
		return rc;
	rc = fr_msg_recv(fd, &type, &body, &len, 256, errbuf, errcap);
	if (rc < 0)
		return rc;
	const struct fr_account *a = fr_config_account(c, account);
	if (type != FR_MSG_AUTH || len != FR_PROOF_LEN) {
		free(body);
		snprintf(errbuf, errcap, "malformed AUTH from account '%s'",
			 account);
		return FR_E_PROTOCOL;
	}
	if (!a || !fr_auth_check(a->key, 'C', account, cnonce, snonce, body)) {
		free(body);
		snprintf(errbuf, errcap, "%s '%s'",
			 a ? "wrong password for account" : "unknown account",
			 account);
		fr_send_error(fd, FR_E_AUTH,
			      "authentication failed (unknown account or wrong "
			      "password)");
		return FR_E_AUTH;
	}
	free(body);
	uint8_t welcome[FR_PROOF_LEN];
	fr_auth_proof(a->key, 'S', account, cnonce, snonce, welcome);
	rc = fr_msg_send(fd, FR_MSG_WELCOME, welcome, sizeof(welcome));
	if (rc < 0)
		return rc;
	*who = a;
	set_timeout(fd, 0);
	return 0;
}

/* ---- HAVE ------------------------------------------------------------------ */

int fr_send_have(int fd, int state, const uint8_t *have, uint32_t n,
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
	rc = fr_msg_send(fd, FR_MSG_HAVE, b, len);
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
