/*
 * fuzz_sealed.c - the messages after the handshake, through a real
 * socket, as fr_msg_recv meets them on a sealed channel.
 *
 * First input byte even: the rest is what a machine on the path sends in
 * place of the peer's messages. It holds no key, so no message may open
 * (a message delivered would be a forgery: abort).
 *
 * Odd: the rest is a list of messages (u32 type, u16 length, body) that
 * the harness seals with the peer's key, as the peer would, and the byte
 * at the offset named by the list's first 4 bytes (if within the sealed
 * stream) is flipped on the way. Every message before the flip must
 * arrive as sent (type, length, body: the round trip); the one flipped,
 * and every one after it, must not be delivered. What is delivered goes
 * to the decoders of opened plaintext: ERROR (fr_error_text inside
 * fr_msg_recv), HAVE (fr_have_parse).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 16
#define WIRE_MAX (1u << 16)

struct msg {
	uint32_t type, len, at; /* at: where it starts in the sealed stream */
	const uint8_t *body;
};

static void chans(struct fr_chan *tx, struct fr_chan *rx, int fd, uint8_t aead)
{
	uint8_t k1[32] = {1, 2, 3}, k2[32] = {4, 5, 6};

	fr_chan_plain(tx, -1);
	fr_chan_plain(rx, fd);
	if (fr_chan_seal(tx, aead, k1, k2) < 0 || fr_chan_seal(rx, aead, k2, k1) < 0)
		abort();
}

static void decode(uint32_t type, const uint8_t *body, uint32_t len)
{
	uint8_t have[64];
	struct fr_partial p[FR_PARTIAL_MAX];
	uint32_t np;

	if (type == FR_MSG_HAVE)
		(void)fr_have_parse(type, body, len, 64, have, p, &np);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fr_chan tx, rx;
	struct msg m[MAX_MSGS];
	uint8_t *wire, *body = NULL;
	uint32_t type, len, n = 0, w = 0;
	char err[256];
	int sv[2];

	if (size < 1 || size > WIRE_MAX / 2)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	wire = malloc(WIRE_MAX);
	if (!wire)
		abort();
	chans(&tx, &rx, sv[1], (data[0] & 2) ? FR_AEAD_XCHACHA20 : fr_aead_local());
	uint32_t flip = UINT32_MAX;
	if (!(data[0] & 1)) { /* raw bytes from the path */
		memcpy(wire, data + 1, size - 1);
		w = (uint32_t)(size - 1);
	} else { /* messages sealed as the peer would */
		const uint8_t *p = data + 1, *end = data + size;
		if (end - p >= 4) {
			flip = fr_get32(p);
			p += 4;
		}
		while (n < MAX_MSGS && end - p >= 6) {
			m[n].type = fr_get32(p) % 32;
			m[n].len = fr_get16(p + 4);
			p += 6;
			if (m[n].len > (uint32_t)(end - p))
				m[n].len = (uint32_t)(end - p);
			m[n].body = p;
			p += m[n].len;
			m[n].at = w;
			fr_put32(wire + w, m[n].type);
			fr_put32(wire + w + 4, m[n].len);
			memcpy(wire + w + 8, m[n].body, m[n].len);
			if (fr_rec_seal(&tx, wire + w, wire + w + 8, m[n].len,
					wire + w + 8 + m[n].len) < 0)
				abort();
			w += 8 + m[n].len + FR_SEAL_TAG;
			n++;
		}
		if (flip < w)
			wire[flip] ^= 0x01;
	}
	if (w && write(sv[0], wire, w) != (ssize_t)w)
		abort();
	shutdown(sv[0], SHUT_WR);
	for (uint32_t i = 0;; i++) {
		int rc = fr_msg_recv(&rx, &type, &body, &len, WIRE_MAX, err,
				     sizeof(err));
		if (rc < 0 && rc != FR_E_REFUSED && rc != -EBUSY)
			break;
		/* delivered (a message, or a peer's ERROR): it must be one
		 * the peer sealed, whole and unaltered */
		if (!(data[0] & 1) || i >= n)
			abort();
		if (flip >= m[i].at && flip < m[i].at + 8 + m[i].len + FR_SEAL_TAG)
			abort();
		if (rc == 0) {
			if (type != m[i].type || len != m[i].len ||
			    memcmp(body, m[i].body, len))
				abort();
			decode(type, body, len);
		} else if (m[i].type != FR_MSG_ERROR) {
			abort();
		}
		free(body);
		body = NULL;
	}
	free(body);
	free(wire);
	fr_chan_wipe(&tx);
	fr_chan_wipe(&rx);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
