/*
 * tcpinfo.c - how much the peer's TCP has acknowledged, whether the peer
 * is still there and talking, and the round trips and retransmissions
 * (`bench link`), from the kernel's tcp_info. glibc's
 * <netinet/tcp.h> stops short of tcpi_bytes_acked, and it cannot be
 * included together with <linux/tcp.h>: this file has the latter alone.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "core/fr_core.h"

int fr_tcp_bytes_acked(int fd, uint64_t *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	if (len < offsetof(struct tcp_info, tcpi_bytes_acked) +
			  sizeof(ti.tcpi_bytes_acked))
		return -ENOTSUP; /* a kernel before 4.1 */
	*out = ti.tcpi_bytes_acked;
	return 0;
}

int fr_tcp_written(int fd, uint64_t *out)
{
	uint64_t acked;
	int queued, rc = fr_tcp_bytes_acked(fd, &acked);

	if (rc < 0)
		return rc;
	if (ioctl(fd, SIOCOUTQ, &queued) < 0)
		return -errno;
	*out = acked + (uint64_t)(queued > 0 ? queued : 0);
	return 0;
}

/* tcpi_state of an open connection (the kernel's TCP_ESTABLISHED, which
 * <netinet/tcp.h> would name, but that header cannot come in here) */
#define STATE_ESTABLISHED 1

int fr_tcp_peer(int fd, struct fr_tcp_peer *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int unread = 0;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	if (ioctl(fd, SIOCINQ, &unread) < 0)
		unread = 0;
	/* FIN or RST received (CLOSE_WAIT, CLOSE), or shut down here */
	out->closed = ti.tcpi_state != STATE_ESTABLISHED;
	out->silent_ms = ti.tcpi_last_data_recv;
	out->unread = unread > 0 ? (uint32_t)unread : 0;
	return 0;
}

int fr_tcp_stats(int fd, struct fr_tcp_stats *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	out->rtt_us = ti.tcpi_rtt;
	out->retrans = ti.tcpi_total_retrans;
	out->min_rtt_us = len >= offsetof(struct tcp_info, tcpi_min_rtt) +
					 sizeof(ti.tcpi_min_rtt)
				  ? ti.tcpi_min_rtt
				  : 0;
	out->acked = len >= offsetof(struct tcp_info, tcpi_bytes_acked) +
				    sizeof(ti.tcpi_bytes_acked)
			     ? ti.tcpi_bytes_acked
			     : 0;
	return 0;
}
