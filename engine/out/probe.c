/*
 * probe.c - `ferry bench link` on the wire: the messages (BENCH, GO,
 * FILLER, STOP, REPORT: PROTOCOL.md), the two halves of a measurement
 * that both ends share (fr_bench_tx sends FILLER and samples its TCP,
 * fr_bench_rx counts FILLER per interval and finds the sealed messages
 * among it), and one stream of the client (fr_probe_run).
 *
 * FILLER is the one message after the handshake that is not sealed: it
 * carries nothing, and nobody reads its bytes. Only its length is used,
 * checked against FR_BENCH_FRAME_MAX. Every other message is sealed as
 * always.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "out/fr_out.h"

#define NS 1000000000ull
#define RX_BUF (256u << 10)

/* ---- messages ---------------------------------------------------------- */

void fr_bench_req_pack(const struct fr_bench_req *q, uint8_t b[FR_BENCH_REQ_LEN])
{
	fr_put32(b, q->flags);
	fr_put32(b + 4, q->seconds);
	fr_put32(b + 8, q->frame);
	fr_put16(b + 12, q->stream);
	fr_put16(b + 14, q->streams);
}

int fr_bench_req_parse(const uint8_t *b, uint32_t len, struct fr_bench_req *q)
{
	if (len != FR_BENCH_REQ_LEN)
		return FR_E_PROTOCOL;
	q->flags = fr_get32(b);
	q->seconds = fr_get32(b + 4);
	q->frame = fr_get32(b + 8);
	q->stream = fr_get16(b + 12);
	q->streams = fr_get16(b + 14);
	if ((q->flags & ~FR_BENCH_F_REVERSE) || q->seconds < 1 ||
	    q->seconds > FR_BENCH_SECONDS_MAX || q->frame < FR_BENCH_FRAME_MIN ||
	    q->frame > FR_BENCH_FRAME_MAX || q->streams < 1 ||
	    q->streams > FR_BENCH_STREAMS_MAX || q->stream >= q->streams)
		return FR_E_PROTOCOL;
	return 0;
}

int fr_bench_report_send(struct fr_chan *ch, const struct fr_bench_report *r)
{
	uint8_t b[FR_BENCH_REPORT_HDR + 8 * FR_BENCH_IV_MAX];
	uint32_t n = r->n > FR_BENCH_IV_MAX ? FR_BENCH_IV_MAX : r->n;

	fr_put32(b, r->flags);
	fr_put32(b + 4, n);
	fr_put64(b + 8, r->dur_ns);
	fr_put64(b + 16, r->total);
	fr_put32(b + 24, r->tcp.rtt_min_us);
	fr_put32(b + 28, r->tcp.rtt_avg_us);
	fr_put32(b + 32, r->tcp.retrans);
	fr_put32(b + 36, r->tcp.samples);
	for (uint32_t i = 0; i < n; i++)
		fr_put64(b + FR_BENCH_REPORT_HDR + 8 * i, r->bytes[i]);
	return fr_msg_send(ch, FR_MSG_BENCH_REPORT, b,
			   FR_BENCH_REPORT_HDR + 8 * n);
}

int fr_bench_report_parse(const uint8_t *b, uint32_t len,
			  struct fr_bench_report *r)
{
	memset(r, 0, sizeof(*r));
	if (len < FR_BENCH_REPORT_HDR)
		return FR_E_PROTOCOL;
	r->flags = fr_get32(b);
	r->n = fr_get32(b + 4);
	r->dur_ns = fr_get64(b + 8);
	r->total = fr_get64(b + 16);
	r->tcp.rtt_min_us = fr_get32(b + 24);
	r->tcp.rtt_avg_us = fr_get32(b + 28);
	r->tcp.retrans = fr_get32(b + 32);
	r->tcp.samples = fr_get32(b + 36);
	if (r->n > FR_BENCH_IV_MAX || len != FR_BENCH_REPORT_HDR + 8 * r->n ||
	    r->dur_ns > (uint64_t)(FR_BENCH_SECONDS_MAX + 1) * NS)
		return FR_E_PROTOCOL;
	for (uint32_t i = 0; i < r->n; i++)
		r->bytes[i] = fr_get64(b + FR_BENCH_REPORT_HDR + 8 * i);
	return 0;
}

/* ---- the sender's side ------------------------------------------------- */

int fr_bench_tx_init(struct fr_bench_tx *t, struct fr_chan *ch, uint32_t frame,
		     _Atomic uint64_t *progress)
{
	struct fr_tcp_stats tn = {0};

	memset(t, 0, sizeof(*t));
	t->ch = ch;
	t->frame = frame;
	t->progress = progress;
	fr_rtt_init(&t->rtt);
	if (!(t->msg = malloc(FR_MSG_HDR + (size_t)frame)))
		return -ENOMEM;
	fr_put32(t->msg, FR_MSG_FILLER);
	fr_put32(t->msg + 4, frame);
	/* random: a compressing modem or VPN on the path must not make
	 * the line look faster than it is */
	fr_random(t->msg + FR_MSG_HDR, frame);
	fr_tcp_stats(ch->fd, &tn);
	t->retrans0 = tn.retrans;
	return 0;
}

void fr_bench_tx_fini(struct fr_bench_tx *t)
{
	free(t->msg);
	t->msg = NULL;
}

/* Sample the TCP (once an interval) and keep the unsent queue near a
 * quarter of a second of what the line carries, at least two messages:
 * a STOP or the end then waits for little besides what is in flight. */
static void tx_sample(struct fr_bench_tx *t, uint64_t *last_acked, double span)
{
	struct fr_tcp_stats tn;

	if (fr_tcp_stats(t->ch->fd, &tn) < 0)
		return;
	fr_rtt_add(&t->rtt, tn.rtt_us / 1000.0, tn.min_rtt_us / 1000.0);
	double rate = span > 0 ? (double)(tn.acked - *last_acked) / span : 0;
	*last_acked = tn.acked;
	double want = rate / 4;
	if (want < 2.0 * (FR_MSG_HDR + t->frame))
		want = 2.0 * (FR_MSG_HDR + t->frame);
	if (want > FR_BENCH_FRAME_MAX)
		want = FR_BENCH_FRAME_MAX;
	int lowat = (int)want;
	setsockopt(t->ch->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
		   sizeof(lowat));
}

static void tx_progress(struct fr_bench_tx *t)
{
	uint64_t acked;

	if (t->progress && fr_tcp_bytes_acked(t->ch->fd, &acked) == 0)
		atomic_store(t->progress, acked);
}

/* Is a message waiting to be read? (a cheap look, no wait) */
static bool tx_msg_waiting(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP));
}

int fr_bench_tx_run(struct fr_bench_tx *t, uint64_t deadline_ns)
{
	size_t total = FR_MSG_HDR + (size_t)t->frame, off = 0;
	uint64_t now = fr_now_ns(), next = now + NS, look = now, acked = 0;
	uint64_t from = now;
	bool stop = false;

	tx_sample(t, &acked, 0);
	for (;;) {
		now = fr_now_ns();
		if (!stop && now - look > NS / 50) {
			stop = tx_msg_waiting(t->ch->fd);
			look = now;
			tx_progress(t);
		}
		if (off == 0 && (stop || now >= deadline_ns))
			return stop ? 1 : 0;
		if (now >= next) {
			tx_sample(t, &acked, (double)(now - from) / 1e9);
			from = now;
			next = now + NS;
		}
		ssize_t n = send(t->ch->fd, t->msg + off, total - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			off = (off + (size_t)n) % total;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		/* the socket is full: wait for room, or for a message (a
		 * STOP, the report); the FILLER under way is finished first */
		struct pollfd pfd = {.fd = t->ch->fd,
				     .events = POLLOUT | (stop ? 0 : POLLIN)};
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			return -errno;
		if (pfd.revents & (POLLIN | POLLHUP))
			stop = true;
	}
}

void fr_bench_tx_tcp(struct fr_bench_tx *t, struct fr_bench_tcp *out)
{
	struct fr_tcp_stats tn = {0};

	if (fr_tcp_stats(t->ch->fd, &tn) == 0)
		fr_rtt_add(&t->rtt, tn.rtt_us / 1000.0, tn.min_rtt_us / 1000.0);
	double avg = fr_rtt_avg(&t->rtt), min = fr_rtt_min(&t->rtt);
	out->rtt_avg_us = avg > 0 ? (uint32_t)(avg * 1000 + 0.5) : 0;
	out->rtt_min_us = min > 0 ? (uint32_t)(min * 1000 + 0.5) : 0;
	out->retrans = tn.retrans - t->retrans0;
	out->samples = t->rtt.n;
}

/* ---- the receiver's side ----------------------------------------------- */

int fr_bench_rx_init(struct fr_bench_rx *x, struct fr_chan *ch,
		     _Atomic uint64_t *progress)
{
	memset(x, 0, sizeof(*x));
	x->ch = ch;
	x->progress = progress;
	x->cap = RX_BUF;
	return (x->buf = malloc(RX_BUF)) ? 0 : -ENOMEM;
}

void fr_bench_rx_fini(struct fr_bench_rx *x)
{
	free(x->buf);
	x->buf = NULL;
}

/* A sealed message whose header came: its body and tag (what of them is
 * in the buffer already, then the socket's), opened. */
static int rx_sealed(struct fr_bench_rx *x, uint32_t *type, uint8_t **body,
		     uint32_t *len, char *err, size_t cap)
{
	uint32_t n = fr_get32(x->hdr + 4), in = x->have - x->pos;
	int rc = 0;

	*type = fr_get32(x->hdr);
	x->hdr_got = 0;
	if (n > FR_CTRL_MAX) {
		snprintf(err, cap, "message type %u of %u bytes exceeds the "
			 "limit of %u", *type, n, FR_CTRL_MAX);
		return FR_E_TOO_LARGE;
	}
	uint8_t *b = malloc((size_t)n + FR_SEAL_TAG + 1);
	if (!b)
		return -ENOMEM;
	if (in > n + FR_SEAL_TAG)
		in = n + FR_SEAL_TAG;
	memcpy(b, x->buf + x->pos, in);
	x->pos += in;
	if (in < n + FR_SEAL_TAG)
		rc = fr_recv_exact(x->ch->fd, b + in, n + FR_SEAL_TAG - in);
	if (rc == 0 && fr_rec_open(x->ch, x->hdr, b, n, b + n) < 0) {
		snprintf(err, cap, "message authentication failed");
		rc = FR_E_SEALED;
	}
	if (rc == 0 && *type == FR_MSG_ERROR) {
		b[n] = '\0';
		rc = fr_error_text(b, n, err, cap);
	}
	if (rc < 0) {
		free(b);
		return rc;
	}
	b[n] = '\0';
	*body = b;
	*len = n;
	return 1;
}

/* Walk what is buffered: FILLER bytes (added to *filler) and headers,
 * until a sealed message's header (1) or the buffer's end (0). */
static int rx_parse(struct fr_bench_rx *x, uint64_t *filler)
{
	while (x->pos < x->have) {
		uint32_t avail = x->have - x->pos;
		if (x->left) {
			uint32_t take = avail < x->left ? avail : x->left;
			x->left -= take;
			x->pos += take;
			*filler += take;
			continue;
		}
		uint32_t take = FR_MSG_HDR - x->hdr_got;
		if (take > avail)
			take = avail;
		memcpy(x->hdr + x->hdr_got, x->buf + x->pos, take);
		x->hdr_got += take;
		x->pos += take;
		if (x->hdr_got < FR_MSG_HDR)
			break;
		if (fr_get32(x->hdr) != FR_MSG_FILLER)
			return 1;
		if (fr_get32(x->hdr + 4) > FR_BENCH_FRAME_MAX)
			return FR_E_TOO_LARGE;
		x->hdr_got = 0;
		x->left = fr_get32(x->hdr + 4);
		*filler += FR_MSG_HDR;
	}
	return 0;
}

/* What the socket has, parsed: 0 (FILLER counted), 1 (a sealed message's
 * header), 2 (the count is over), 4 (nothing there), or an error. */
static int rx_more(struct fr_bench_rx *x, struct fr_bench_count *k)
{
	uint64_t filler = 0;
	int rc = 0;

	if (x->pos == x->have) {
		ssize_t n = recv(x->ch->fd, x->buf, x->cap, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN ? 4 : errno == EINTR ? 0 : -errno;
		x->pos = 0;
		x->have = (uint32_t)n;
	}
	rc = rx_parse(x, &filler);
	if (filler && x->progress)
		atomic_fetch_add(x->progress, filler);
	if (filler && k && !fr_bench_count_add(k, fr_now_ns(), filler))
		return 2;
	return rc;
}

int fr_bench_rx_run(struct fr_bench_rx *x, struct fr_bench_count *k,
		    uint64_t deadline_ns, uint32_t *type, uint8_t **body,
		    uint32_t *len, char *err, size_t cap)
{
	*body = NULL;
	for (;;) {
		uint64_t now = fr_now_ns(), until = deadline_ns;
		if (k && k->t0_ns && k->t0_ns + k->limit_ns < until)
			until = k->t0_ns + k->limit_ns;
		if (now >= until) {
			if (k && k->t0_ns) {
				fr_bench_count_end(k, now);
				return 0;
			}
			return -ETIMEDOUT;
		}
		int rc = rx_more(x, k);
		if (rc == 1)
			return rx_sealed(x, type, body, len, err, cap);
		if (rc == 2)
			return 0;
		if (rc < 0)
			return rc;
		if (rc != 4)
			continue;
		uint64_t wait_ms = (until - now) / 1000000 + 1;
		struct pollfd pfd = {.fd = x->ch->fd, .events = POLLIN};
		if (poll(&pfd, 1, wait_ms > 200 ? 200 : (int)wait_ms) < 0 &&
		    errno != EINTR)
			return -errno;
	}
}

/* ---- one stream, the client's side --------------------------------------- */

/* Connect and authenticate as the address's account; errors as a send
 * words them (lan.c), an account refused as FR_E_AUTH. */
static int probe_connect(struct fr_probe *p, struct fr_chan *ch)
{
	const struct fr_address *a = p->a;
	char tmp[300] = "";
	int fd = fr_tcp_connect(a->host, 15000), rc;

	if (fd < 0) {
		snprintf(p->err, sizeof(p->err),
			 "cannot connect to %s (%s %s): %s", a->host, a->site,
			 a->name, fr_strerror(fd));
		return fd;
	}
	fr_chan_plain(ch, fd);
	rc = fr_handshake_client(ch, a->account, a->key, a->site, tmp,
				 sizeof(tmp));
	if (rc == 0)
		return 0;
	if (rc == FR_E_WRONG_SITE) {
		snprintf(p->err, sizeof(p->err),
			 "[address %s %s] host %s leads to another site: %s "
			 "(check its host)",
			 a->site, a->name, a->host, tmp);
		return FR_E_AUTH;
	}
	if (rc == -EBUSY)
		snprintf(p->err, sizeof(p->err),
			 "%s (%s) is busy: %s (each stream is a session: its "
			 "max-connections counts them)",
			 a->site, a->host, tmp);
	else if (rc == FR_E_REFUSED || rc == FR_E_AUTH)
		snprintf(p->err, sizeof(p->err), "%s (%s) refused account %s: %s",
			 a->site, a->host, a->account,
			 tmp[0] ? tmp : fr_strerror(rc));
	else
		snprintf(p->err, sizeof(p->err), "handshake with %s (%s) failed: %s",
			 a->site, a->host, tmp[0] ? tmp : fr_strerror(rc));
	return rc == FR_E_REFUSED ? FR_E_AUTH : rc;
}

/* BENCH, and its answer GO. An older receiver answers ERROR "expected
 * OFFER": FR_E_PROTOCOL, said so. */
static int probe_ask(struct fr_probe *p, struct fr_chan *ch)
{
	uint8_t req[FR_BENCH_REQ_LEN], *body;
	uint32_t type, len;
	char tmp[300] = "";
	int rc;

	fr_bench_req_pack(&p->req, req);
	if ((rc = fr_msg_send(ch, FR_MSG_BENCH, req, sizeof(req))) < 0 ||
	    (rc = fr_msg_recv(ch, &type, &body, &len, 64, tmp, sizeof(tmp))) < 0) {
		if (rc == FR_E_REFUSED && strstr(tmp, "expected OFFER")) {
			snprintf(p->err, sizeof(p->err),
				 "%s (%s) does not know 'bench link' (it "
				 "answered '%s': a ferry older than this one; "
				 "upgrade it)",
				 p->a->site, p->a->host, tmp);
			return FR_E_PROTOCOL;
		}
		snprintf(p->err, sizeof(p->err), "%s (%s) %s: %s", p->a->site,
			 p->a->host,
			 rc == -EBUSY ? "is busy (max-connections)"
				      : "refused the measurement",
			 tmp[0] ? tmp : fr_strerror(rc));
		return rc;
	}
	rc = type == FR_MSG_BENCH_GO && len == FR_BENCH_GO_LEN ? 0 : FR_E_PROTOCOL;
	if (rc == 0 && fr_get32(body) < p->req.seconds)
		p->req.seconds = fr_get32(body); /* granted less */
	free(body);
	if (rc < 0)
		snprintf(p->err, sizeof(p->err),
			 "%s (%s) answered BENCH with message type %u", p->a->site,
			 p->a->host, type);
	return rc;
}

/* Every stream is ready (true), or one failed. */
static bool gate_pass(struct fr_probe_gate *g, bool ok)
{
	pthread_mutex_lock(&g->mu);
	if (!ok)
		g->failed = true;
	else if (++g->ready == g->n)
		g->t0_ns = fr_now_ns();
	pthread_cond_broadcast(&g->cv);
	while (!g->failed && g->ready < g->n)
		pthread_cond_wait(&g->cv, &g->mu);
	bool pass = !g->failed;
	pthread_mutex_unlock(&g->mu);
	return pass;
}

/* Forward: send FILLER until the receiver's REPORT arrives. */
static int probe_send(struct fr_probe *p, struct fr_chan *ch)
{
	struct fr_bench_tx tx;
	uint8_t *body = NULL;
	uint32_t type, len;
	uint64_t deadline = fr_now_ns() +
			    (uint64_t)(p->req.seconds + FR_BENCH_FIRST_S) * NS;
	int rc = fr_bench_tx_init(&tx, ch, p->req.frame, &p->bytes);

	if (rc == 0 && (rc = fr_bench_tx_run(&tx, deadline)) == 0)
		rc = -ETIMEDOUT;
	if (rc == 1)
		rc = fr_msg_recv(ch, &type, &body, &len,
				 FR_BENCH_REPORT_HDR + 8 * FR_BENCH_IV_MAX,
				 p->err, sizeof(p->err));
	if (rc == 0)
		rc = type == FR_MSG_BENCH_REPORT
			     ? fr_bench_report_parse(body, len, &p->rep)
			     : FR_E_PROTOCOL;
	if (rc == 0)
		fr_bench_tx_tcp(&tx, &p->rep.tcp);
	else if (!p->err[0])
		snprintf(p->err, sizeof(p->err),
			 "no report from %s (%s) after %u s of sending: %s",
			 p->a->site, p->a->host, p->req.seconds,
			 fr_strerror(rc));
	free(body);
	fr_bench_tx_fini(&tx);
	/* what is still queued here is of no use: reset rather than make
	 * the receiver drain it */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(ch->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	return rc;
}

/* Reverse: count what comes for the seconds asked, STOP, then the
 * sender's REPORT (its TCP) after what it still had queued. */
static int probe_recv(struct fr_probe *p, struct fr_chan *ch)
{
	struct fr_bench_rx rx;
	struct fr_bench_count k;
	uint8_t *body = NULL;
	uint32_t type = 0, len;
	uint64_t deadline = fr_now_ns() + FR_BENCH_FIRST_S * NS +
			    (uint64_t)p->req.seconds * NS;
	int rc = fr_bench_rx_init(&rx, ch, &p->bytes);

	fr_bench_count_init(&k, p->req.seconds);
	if (rc == 0)
		rc = fr_bench_rx_run(&rx, &k, deadline, &type, &body, &len,
				     p->err, sizeof(p->err));
	if (rc == 0 || rc == 1) {
		fr_bench_count_end(&k, fr_now_ns());
		if (rc == 0)
			rc = fr_msg_send(ch, FR_MSG_BENCH_STOP, NULL, 0);
		while (rc == 0) /* what it still sends, then its REPORT */
			rc = fr_bench_rx_run(&rx, NULL,
					     fr_now_ns() + FR_BENCH_TAIL_S * NS,
					     &type, &body, &len, p->err,
					     sizeof(p->err));
	}
	if (rc == 1)
		rc = type == FR_MSG_BENCH_REPORT
			     ? fr_bench_report_parse(body, len, &p->rep)
			     : FR_E_PROTOCOL;
	if (rc == 0) {
		p->rep.n = k.n;
		p->rep.dur_ns = k.end_ns;
		p->rep.total = k.total;
		memcpy(p->rep.bytes, k.bytes, sizeof(k.bytes));
	} else if (!p->err[0]) {
		snprintf(p->err, sizeof(p->err),
			 "measuring from %s (%s) failed: %s", p->a->site,
			 p->a->host, fr_strerror(rc));
	}
	free(body);
	fr_bench_rx_fini(&rx);
	return rc;
}

int fr_probe_run(struct fr_probe *p)
{
	struct fr_chan ch;
	int rc;

	memset(&ch, 0, sizeof(ch));
	ch.fd = -1;
	p->err[0] = '\0';
	rc = probe_connect(p, &ch);
	if (rc == 0)
		rc = probe_ask(p, &ch);
	if (!gate_pass(p->gate, rc == 0) && rc == 0)
		rc = -ECANCELED; /* another stream failed */
	if (rc == 0)
		rc = p->req.flags & FR_BENCH_F_REVERSE ? probe_recv(p, &ch)
						       : probe_send(p, &ch);
	if (ch.fd >= 0)
		close(ch.fd);
	fr_chan_wipe(&ch);
	p->rc = rc;
	return rc;
}
