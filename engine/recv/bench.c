/*
 * bench.c - the site's side of `ferry bench link`: a session that asked
 * BENCH instead of OFFER (serve.c, after the handshake and the count
 * against max-connections) is measured with, memory to memory; nothing
 * touches the store.
 *
 * Forward, the site counts the client's FILLER per second from its first
 * byte, for the seconds asked, and REPORTs the counts; reverse, it sends
 * FILLER until the client's STOP and REPORTs its own TCP's round trips
 * and retransmissions. Either way the session is bounded here, whatever
 * the client does: FR_BENCH_FIRST_S for the first byte, then at most
 * FR_BENCH_SECONDS_MAX of measuring and FR_BENCH_CAP_PER_S bytes per
 * second granted, then FR_BENCH_TAIL_S to drain or finish.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "recv/fr_recv.h"

#define NS 1000000000ull

static void log_result(const char *who, const char *peer,
		       const struct fr_bench_req *q, const struct fr_bench_report *r)
{
	double s = (double)r->dur_ns / 1e9;

	if (q->flags & FR_BENCH_F_REVERSE)
		fr_log(FR_LOG_INFO,
		       "%s: bench link from %s (reverse, stream %u of %u): "
		       "sent %u s, rtt %.2f ms, %u retransmits",
		       who, peer, q->stream + 1u, q->streams, q->seconds,
		       r->tcp.rtt_avg_us / 1000.0, r->tcp.retrans);
	else
		fr_log(FR_LOG_INFO,
		       "%s: bench link from %s (stream %u of %u): %.1f Mbit/s "
		       "received over %.1f s%s",
		       who, peer, q->stream + 1u, q->streams,
		       s > 0 ? (double)r->total * 8 / s / 1e6 : 0.0, s,
		       r->flags & FR_BENCH_R_CAPPED ? " (byte cap reached)" : "");
}

/* Forward: count, report, then drop what the client still sends until
 * it closes (or resets) the connection. */
static int serve_count(struct fr_chan *ch, const struct fr_bench_req *q,
		       struct fr_bench_report *rep, char *err, size_t cap)
{
	struct fr_bench_rx rx;
	struct fr_bench_count k;
	uint8_t *body = NULL;
	uint32_t type, len;
	int rc = fr_bench_rx_init(&rx, ch, NULL);

	fr_bench_count_init(&k, q->seconds);
	k.cap = FR_BENCH_CAP_PER_S * q->seconds;
	if (rc == 0)
		rc = fr_bench_rx_run(&rx, &k,
				     fr_now_ns() + (uint64_t)(FR_BENCH_FIRST_S +
							      q->seconds) * NS,
				     &type, &body, &len, err, cap);
	free(body); /* a message in the middle: the client stopped early */
	if (rc == -ETIMEDOUT && !k.t0_ns)
		snprintf(err, cap, "nothing came within %d s", FR_BENCH_FIRST_S);
	if (rc == 1) {
		fr_bench_count_end(&k, fr_now_ns());
		rep->flags |= FR_BENCH_R_CUT;
		rc = 0;
	}
	if (rc == 0) {
		rep->flags |= k.capped ? FR_BENCH_R_CAPPED : 0;
		rep->n = k.n;
		rep->dur_ns = k.end_ns;
		rep->total = k.total;
		memcpy(rep->bytes, k.bytes, sizeof(k.bytes));
		rc = fr_bench_report_send(ch, rep);
	}
	uint64_t until = fr_now_ns() + FR_BENCH_TAIL_S * NS;
	while (rc == 0 || rc == 1) { /* until it closes: never a reset of
					* the report before it was read */
		body = NULL;
		int d = fr_bench_rx_run(&rx, NULL, until, &type, &body, &len,
					err, cap);
		free(body);
		if (d < 0)
			break;
	}
	fr_bench_rx_fini(&rx);
	return rc < 0 ? rc : 0;
}

/* Reverse: send until STOP (or the bound), then the REPORT of our TCP. */
static int serve_send(struct fr_chan *ch, const struct fr_bench_req *q,
		      struct fr_bench_report *rep, char *err, size_t cap)
{
	struct fr_bench_tx tx;
	uint8_t *body = NULL;
	uint32_t type = 0, len;
	int rc = fr_bench_tx_init(&tx, ch, q->frame, NULL);

	if (rc == 0)
		rc = fr_bench_tx_run(&tx, fr_now_ns() +
						  (uint64_t)(FR_BENCH_FIRST_S +
							     q->seconds) * NS);
	if (rc == 1) {
		rc = fr_msg_recv(ch, &type, &body, &len, 64, err, cap);
		if (rc == 0 && type != FR_MSG_BENCH_STOP) {
			snprintf(err, cap, "expected STOP, got message type %u",
				 type);
			rc = FR_E_PROTOCOL;
		}
		free(body);
	} else if (rc == 0) {
		rep->flags |= FR_BENCH_R_CUT; /* no STOP in time */
	}
	if (rc == 0) {
		fr_bench_tx_tcp(&tx, &rep->tcp);
		rc = fr_bench_report_send(ch, rep);
	}
	fr_bench_tx_fini(&tx);
	return rc;
}

int fr_bench_serve(const struct fr_config *c, struct fr_chan *ch,
		   const char *who, const char *peer, const uint8_t *body,
		   uint32_t len)
{
	struct fr_bench_req q;
	struct fr_bench_report rep;
	uint8_t go[FR_BENCH_GO_LEN];
	char err[512] = "";
	int rc;

	(void)c;
	if (fr_bench_req_parse(body, len, &q) < 0) {
		fr_log(FR_LOG_WARN, "%s: malformed BENCH from %s", who, peer);
		return fr_send_error(ch, FR_E_PROTOCOL, "malformed BENCH");
	}
	fr_put32(go, q.seconds);
	fr_put32(go + 4, (uint32_t)(FR_BENCH_INTERVAL_S * 1000));
	fr_put64(go + 8, FR_BENCH_CAP_PER_S * q.seconds);
	if ((rc = fr_msg_send(ch, FR_MSG_BENCH_GO, go, sizeof(go))) < 0)
		return rc;
	memset(&rep, 0, sizeof(rep));
	rc = q.flags & FR_BENCH_F_REVERSE ? serve_send(ch, &q, &rep, err, sizeof(err))
					  : serve_count(ch, &q, &rep, err, sizeof(err));
	if (rc < 0)
		fr_log(FR_LOG_WARN, "%s: bench link from %s ended: %s", who,
		       peer, err[0] ? err : fr_strerror(rc));
	else
		log_result(who, peer, &q, &rep);
	return rc;
}
