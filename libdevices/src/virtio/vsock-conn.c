/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-vsock: the connection table and its state machine - packets
 * from the guest applied to it (vsock_packet()), the host sockets (the
 * listener, "CONNECT P" handshakes, data both ways with credit), and the
 * packets each connection has for the guest (vsock_conn_fill_rx(), called
 * by the rx pump in vsock.c).  See cvmm/devices/virtio-vsock.h.
 *
 * Every function here runs with the device lock held.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vsock-internal.h"

static void conn_ready(void *opaque, uint32_t revents);

static void conn_set_poll(struct vs_conn *c, uint32_t events)
{
	struct virtio_poll_fd pfd;

	if (c->fd < 0)
		events = 0;
	if (c->polled && c->poll_events == events)
		return;
	if (c->polled) {
		virtio_device_remove_poll_fd(c->v->vdev, c->poll_id);
		c->polled = false;
	}
	if (!events)
		return;
	pfd = (struct virtio_poll_fd){.fd = c->fd,
				      .events = events,
				      .ready = conn_ready,
				      .opaque = c};
	if (virtio_device_add_poll_fd(c->v->vdev, &pfd, &c->poll_id) == 0) {
		c->polled = true;
		c->poll_events = events;
	}
}

/* Bytes the guest's credit lets the device send now. */
static uint32_t conn_peer_credit(const struct vs_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;

	if (in_flight >= c->peer_buf_alloc)
		return 0;
	return c->peer_buf_alloc - in_flight;
}

/* May host input be read for the guest on this connection? */
static bool conn_want_read(const struct vs_conn *c)
{
	return c->state == CS_EST && c->fd >= 0 && !(c->pending & P_RESPONSE) &&
	       !c->host_eof && !c->guest_shut_rcv;
}

void vsock_conn_update_poll(struct vs_conn *c)
{
	uint32_t ev = 0;

	switch (c->state) {
	case CS_HOST_LINE:
		ev = POLLIN;
		break;
	case CS_HOST_REQ:
		/* nothing to read until the guest answers; POLLHUP (the
		 * program gave up) is reported whatever is asked for, and
		 * POLLPRI never comes on a unix socket */
		ev = POLLPRI;
		break;
	case CS_EST:
		if (conn_want_read(c) && !c->readable &&
		    conn_peer_credit(c) > 0)
			ev |= POLLIN;
		if (c->blen > 0)
			ev |= POLLOUT;
		/* a hang-up is reported whatever we ask for: after one,
		 * poll only for what we will act on */
		if (!ev && !c->hup)
			ev = POLLRDHUP;
		break;
	default:
		break;
	}
	conn_set_poll(c, ev);
}

static void conn_close_fd(struct vs_conn *c)
{
	if (c->fd < 0)
		return;
	conn_set_poll(c, 0);
	close(c->fd);
	c->fd = -1;
}

static void conn_free(struct vs_conn *c)
{
	struct virtio_vsock *v = c->v;

	conn_close_fd(c);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->v = v;
	c->fd = -1;
	v->nconns--;
}

/*
 * Close the connection's socket; with @rst tell the guest (RST, sent by
 * the pump, then the slot is freed), without free the slot now.
 */
static void conn_reset(struct vs_conn *c, bool rst)
{
	conn_close_fd(c);
	if (c->state == CS_HOST_LINE || c->state == CS_HOST_REQ)
		c->v->st.host_refused++;
	free(c->buf);
	c->buf = NULL;
	c->blen = c->bstart = 0;
	c->pending = 0;
	if (!rst || c->state == CS_HOST_LINE) {
		conn_free(c);
		return;
	}
	c->state = CS_CLOSING;
}

static struct vs_conn *conn_find(struct virtio_vsock *v, uint32_t guest_port,
				 uint32_t host_port)
{
	for (uint32_t i = 0; i < v->max_conns; i++) {
		struct vs_conn *c = &v->conns[i];

		if (c->state != CS_FREE && c->state != CS_HOST_LINE &&
		    c->guest_port == guest_port && c->host_port == host_port)
			return c;
	}
	return NULL;
}

static struct vs_conn *conn_alloc(struct virtio_vsock *v)
{
	if (v->nconns >= v->max_conns) {
		v->st.conn_cap_hits++;
		return NULL;
	}
	for (uint32_t i = 0; i < v->max_conns; i++) {
		struct vs_conn *c = &v->conns[i];

		if (c->state == CS_FREE) {
			memset(c, 0, sizeof(*c));
			c->v = v;
			c->fd = -1;
			v->nconns++;
			v->st.conns_total++;
			return c;
		}
	}
	return NULL;
}

static void orphan_rst(struct virtio_vsock *v, uint32_t guest_port,
		       uint32_t host_port)
{
	uint32_t slot;

	if (v->orph_len >= VIRTIO_VSOCK_ORPHAN_RST_MAX) {
		v->st.orphan_rst_dropped++;
		return;
	}
	slot = (v->orph_head + v->orph_len) % VIRTIO_VSOCK_ORPHAN_RST_MAX;
	v->orphans[slot].guest_port = guest_port;
	v->orphans[slot].host_port = host_port;
	v->orph_len++;
}

void vsock_close_all(struct virtio_vsock *v)
{
	for (uint32_t i = 0; i < v->max_conns; i++)
		if (v->conns[i].state != CS_FREE)
			conn_free(&v->conns[i]);
	v->orph_len = 0;
}

/* ------------------------------------------------ guest -> host data */

/* When the guest's view of our free space fell below half, tell it. */
static void conn_check_credit_update(struct vs_conn *c)
{
	uint32_t unseen = c->fwd_cnt - c->fwd_told;
	uint64_t used = (uint64_t)unseen + c->blen; /* as the guest counts */

	if (unseen && used > c->v->buf_size / 2)
		c->pending |= P_CREDIT_UPDATE;
}

/* Both directions done (or the guest closed both): RST, close. */
static void conn_check_done(struct vs_conn *c)
{
	if (c->state != CS_EST || c->blen > 0)
		return;
	if (c->guest_shut_send && (c->guest_shut_rcv || c->host_eof))
		conn_reset(c, true);
}

/* Write out buffered guest data; false when the connection was reset. */
static bool conn_flush(struct vs_conn *c)
{
	unsigned tries = 0;

	while (c->blen > 0 && tries++ < 64) {
		ssize_t n = send(c->fd, c->buf + c->bstart, c->blen,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->bstart += (uint32_t)n;
			c->blen -= (uint32_t)n;
			c->fwd_cnt += (uint32_t)n;
			c->v->st.tx_bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_reset(c, true); /* the host peer is gone */
		return false;
	}
	if (c->blen == 0)
		c->bstart = 0;
	if (c->blen == 0 && c->guest_shut_send && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
	conn_check_credit_update(c);
	return true;
}

/* Room for @len more bytes at the end of the buffer (compacting it). */
static uint8_t *conn_buf_tail(struct vs_conn *c, uint32_t len)
{
	if (!c->buf) {
		c->buf = malloc(c->v->buf_size);
		if (!c->buf)
			return NULL;
		c->bstart = 0;
	}
	if (c->bstart + c->blen + len > c->v->buf_size) {
		memmove(c->buf, c->buf + c->bstart, c->blen);
		c->bstart = 0;
	}
	return c->buf + c->bstart + c->blen;
}

/* An RW packet's @len payload bytes, at @ch's read cursor. */
static void conn_guest_data(struct vs_conn *c, struct virtq_chain *ch,
			    uint32_t len)
{
	struct virtio_vsock *v = c->v;

	if (len > v->buf_size - c->blen) {
		/* beyond the credit we gave: the guest broke the protocol */
		v->st.credit_violations++;
		conn_reset(c, true);
		return;
	}
	while (len > 0) {
		uint32_t chunk = len > PKT_MAX ? PKT_MAX : len;
		uint8_t *dst;
		ssize_t n;

		if (c->blen > 0) {
			/* keep the order: behind what waits */
			dst = conn_buf_tail(c, len);
			if (!dst || virtq_chain_read_exact(ch, dst, len) < 0) {
				conn_reset(c, true);
				return;
			}
			c->blen += len;
			break;
		}
		if (virtq_chain_read_exact(ch, v->bounce, chunk) < 0) {
			conn_reset(c, true);
			return;
		}
		len -= chunk;
		n = send(c->fd, v->bounce, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			n = 0;
		if (n < 0) {
			conn_reset(c, true);
			return;
		}
		c->fwd_cnt += (uint32_t)n;
		v->st.tx_bytes += (uint64_t)n;
		if ((uint32_t)n < chunk) {
			dst = conn_buf_tail(c, chunk - (uint32_t)n);
			if (!dst) {
				conn_reset(c, true);
				return;
			}
			memcpy(dst, v->bounce + n, chunk - (uint32_t)n);
			c->blen += chunk - (uint32_t)n;
		}
	}
	if (c->blen > 0)
		conn_flush(c);
	else
		conn_check_credit_update(c);
}

/* ------------------------------------------------ host connections */

/* A host-initiated connection: the guest answered RESPONSE. */
static void conn_host_established(struct vs_conn *c)
{
	char line[24];
	int n = snprintf(line, sizeof(line), "OK %" PRIu32 "\n", c->host_port);
	ssize_t w = send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (w != n) {
		conn_reset(c, true);
		return;
	}
	c->state = CS_EST;
	c->v->st.host_connects++;
}

static bool parse_connect(const char *s, uint32_t len, uint32_t *port)
{
	uint64_t val = 0;
	uint32_t i = 8;

	if (len < 10 || memcmp(s, "CONNECT ", 8) != 0 || s[len - 1] != '\n')
		return false;
	if (len - 1 - i > 10)
		return false;
	for (; i < len - 1; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		val = val * 10 + (uint64_t)(s[i] - '0');
	}
	if (val > UINT32_MAX)
		return false;
	*port = (uint32_t)val;
	return true;
}

static uint32_t alloc_local_port(struct virtio_vsock *v, uint32_t guest_port)
{
	for (uint32_t tries = 0; tries <= v->max_conns; tries++) {
		uint32_t p = v->next_port++;

		if (v->next_port < LOCAL_PORT0)
			v->next_port = LOCAL_PORT0;
		if (!conn_find(v, guest_port, p))
			return p;
	}
	return v->next_port++; /* unreachable: max_conns + 1 tries */
}

/* The "CONNECT P\n" line of a host program. */
static void conn_host_line(struct vs_conn *c)
{
	char line[CONNECT_LINE_MAX];
	ssize_t n = recv(c->fd, line, sizeof(line), MSG_PEEK | MSG_DONTWAIT);
	char *nl;
	uint32_t port;

	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_reset(c, false);
		return;
	}
	nl = memchr(line, '\n', (size_t)n);
	if (!nl) {
		if ((size_t)n >= sizeof(line))
			conn_reset(c, false); /* no line: refused */
		return;
	}
	n = recv(c->fd, line, (size_t)(nl - line + 1), MSG_DONTWAIT);
	if (n != nl - line + 1 || !parse_connect(line, (uint32_t)n, &port)) {
		conn_reset(c, false);
		return;
	}
	c->guest_port = port;
	c->host_port = alloc_local_port(c->v, port);
	c->state = CS_HOST_REQ;
	c->pending = P_REQUEST;
}

static void listen_ready(void *opaque, uint32_t revents);

/* ------------------------------------------------------ rx: to guest */

void vsock_hdr_fill(struct virtio_vsock *v, struct virtio_vsock_hdr *h,
		    uint32_t host_port, uint32_t guest_port, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = htole64(VIRTIO_VSOCK_HOST_CID);
	h->dst_cid = htole64(v->guest_cid);
	h->src_port = htole32(host_port);
	h->dst_port = htole32(guest_port);
	h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
	h->op = htole16(op);
}

static void hdr_credit(struct vs_conn *c, struct virtio_vsock_hdr *h)
{
	h->buf_alloc = htole32(c->v->buf_size);
	h->fwd_cnt = htole32(c->fwd_cnt);
	c->fwd_told = c->fwd_cnt;
}

/* Does connection @c have a packet to send? */
bool vsock_conn_has_rx(const struct vs_conn *c)
{
	switch (c->state) {
	case CS_CLOSING:
		return true;
	case CS_HOST_REQ:
		return c->pending & P_REQUEST;
	case CS_EST:
		if (c->pending)
			return true;
		if (!conn_want_read(c) || !(c->readable || c->hup))
			return false;
		return conn_peer_credit(c) > 0 || !c->credit_req_sent;
	default:
		return false;
	}
}

/*
 * Write @c's next packet into @ch (writable >= HDR_LEN).  Returns the used
 * length, 0 when there was nothing to send after all (the chain goes
 * back), or -1 when the queue broke.
 */
int vsock_conn_fill_rx(struct vs_conn *c, struct virtq_chain *ch)
{
	struct virtio_vsock *v = c->v;
	struct virtio_vsock_hdr h;
	uint32_t room, want, op = 0;
	ssize_t got;

	if (c->state == CS_CLOSING) {
		vsock_hdr_fill(v, &h, c->host_port, c->guest_port,
			       VIRTIO_VSOCK_OP_RST);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		v->st.rst_sent++;
		conn_free(c);
		return (int)HDR_LEN;
	}
	if (c->pending & P_REQUEST)
		op = VIRTIO_VSOCK_OP_REQUEST;
	else if (c->pending & P_RESPONSE)
		op = VIRTIO_VSOCK_OP_RESPONSE;
	else if (c->pending & P_CREDIT_UPDATE)
		op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
	else if (c->pending & P_CREDIT_REQUEST)
		op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
	if (op) {
		c->pending &= ~(op == VIRTIO_VSOCK_OP_REQUEST	 ? P_REQUEST
				: op == VIRTIO_VSOCK_OP_RESPONSE ? P_RESPONSE
				: op == VIRTIO_VSOCK_OP_CREDIT_UPDATE
					? P_CREDIT_UPDATE
					: P_CREDIT_REQUEST);
		vsock_hdr_fill(v, &h, c->host_port, c->guest_port,
			       (uint16_t)op);
		hdr_credit(c, &h);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		return (int)HDR_LEN;
	}
	/* data, or end of file */
	room = virtq_chain_writable(ch) - HDR_LEN;
	want = conn_peer_credit(c);
	if (want == 0) {
		vsock_hdr_fill(v, &h, c->host_port, c->guest_port,
			       VIRTIO_VSOCK_OP_CREDIT_REQUEST);
		hdr_credit(c, &h);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		c->credit_req_sent = true;
		return (int)HDR_LEN;
	}
	if (want > room)
		want = room;
	if (want > PKT_MAX)
		want = PKT_MAX;
	if (want == 0) {
		/* a buffer with room for a header only: no data fits, it
		 * carries our credit instead (and the guest moves on) */
		vsock_hdr_fill(v, &h, c->host_port, c->guest_port,
			       VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		hdr_credit(c, &h);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		return (int)HDR_LEN;
	}
	got = recv(c->fd, v->bounce + HDR_LEN, want, MSG_DONTWAIT);
	if (got < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		c->readable = false;
		c->hup = false;
		return 0;
	}
	if (got < 0) {
		uint32_t gp = c->guest_port, hp = c->host_port;

		/* the socket failed: RST in this chain, the slot freed */
		conn_reset(c, false);
		vsock_hdr_fill(v, &h, hp, gp, VIRTIO_VSOCK_OP_RST);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		v->st.rst_sent++;
		return (int)HDR_LEN;
	}
	if (got == 0) {
		/* end of file: the host will send no more */
		c->host_eof = true;
		c->readable = false;
		vsock_hdr_fill(v, &h, c->host_port, c->guest_port,
			       VIRTIO_VSOCK_OP_SHUTDOWN);
		h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_SEND);
		hdr_credit(c, &h);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		conn_check_done(c);
		return (int)HDR_LEN;
	}
	vsock_hdr_fill(v, &h, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_RW);
	h.len = htole32((uint32_t)got);
	hdr_credit(c, &h);
	memcpy(v->bounce, &h, HDR_LEN);
	if (virtq_chain_write_exact(ch, v->bounce, HDR_LEN + (size_t)got) < 0)
		return -1;
	c->rx_cnt += (uint32_t)got;
	v->st.rx_bytes += (uint64_t)got;
	return (int)(HDR_LEN + (uint32_t)got);
}

/* ------------------------------------------------------ tx: from guest */

static bool guest_connect(struct virtio_vsock *v, struct vs_conn *c,
			  uint32_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (!v->path)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%" PRIu32, v->path,
		 port);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return false;
	}
	c->fd = fd;
	return true;
}

static void guest_request(struct virtio_vsock *v, uint32_t gport,
			  uint32_t hport, const struct virtio_vsock_hdr *h)
{
	struct vs_conn *c = conn_alloc(v);

	if (!c || !guest_connect(v, c, hport)) {
		if (c)
			conn_free(c);
		v->st.guest_refused++;
		orphan_rst(v, gport, hport);
		return;
	}
	c->state = CS_EST;
	c->guest_port = gport;
	c->host_port = hport;
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	c->pending = P_RESPONSE;
	v->st.guest_connects++;
	vsock_conn_update_poll(c);
}

/* One packet from the guest, header @h, payload at @ch's read cursor. */
void vsock_packet(struct virtio_vsock *v, const struct virtio_vsock_hdr *h,
		  struct virtq_chain *ch)
{
	uint32_t gport = le32toh(h->src_port), hport = le32toh(h->dst_port);
	uint32_t len = le32toh(h->len), flags;
	uint16_t op = le16toh(h->op), type = le16toh(h->type);
	struct vs_conn *c;

	if (le64toh(h->src_cid) != v->guest_cid ||
	    le64toh(h->dst_cid) != VIRTIO_VSOCK_HOST_CID) {
		v->st.bad_cid++;
		return;
	}
	c = conn_find(v, gport, hport);
	if (op == VIRTIO_VSOCK_OP_RST) {
		v->st.rst_received++;
		if (c)
			conn_reset(c, false);
		return;
	}
	if (len > virtq_chain_readable(ch) ||
	    type != VIRTIO_VSOCK_TYPE_STREAM || op == VIRTIO_VSOCK_OP_INVALID ||
	    op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
		if (len > virtq_chain_readable(ch))
			v->st.bad_len++;
		else if (type != VIRTIO_VSOCK_TYPE_STREAM)
			v->st.bad_type++;
		else
			v->st.bad_op++;
		if (c)
			conn_reset(c, true);
		else
			orphan_rst(v, gport, hport);
		return;
	}
	if (op == VIRTIO_VSOCK_OP_REQUEST) {
		if (c) {
			/* a second REQUEST for a live connection */
			v->st.bad_op++;
			conn_reset(c, true);
			return;
		}
		guest_request(v, gport, hport, h);
		return;
	}
	if (!c) {
		v->st.unknown_conn++;
		orphan_rst(v, gport, hport);
		return;
	}
	if (c->state == CS_CLOSING)
		return; /* its RST is on the way */
	/* every packet of a connection carries the guest's credit */
	if (c->peer_buf_alloc != le32toh(h->buf_alloc) ||
	    c->peer_fwd_cnt != le32toh(h->fwd_cnt))
		c->credit_req_sent = false;
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);

	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != CS_HOST_REQ || (c->pending & P_REQUEST)) {
			v->st.bad_op++;
			conn_reset(c, true);
			return;
		}
		conn_host_established(c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CS_EST || c->guest_shut_send) {
			v->st.bad_op++;
			conn_reset(c, true);
			return;
		}
		if (len)
			conn_guest_data(c, ch, len);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		if (c->state == CS_EST)
			c->pending |= P_CREDIT_UPDATE;
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != CS_EST) {
			conn_reset(c, true);
			return;
		}
		flags = le32toh(h->flags);
		if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
			c->guest_shut_rcv = true;
		if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND) {
			c->guest_shut_send = true;
			if (c->blen == 0 && !c->wr_shut) {
				shutdown(c->fd, SHUT_WR);
				c->wr_shut = true;
			}
		}
		conn_check_done(c);
		break;
	default: /* REQUEST and RST: handled above */
		break;
	}
	if (c->state != CS_FREE)
		vsock_conn_update_poll(c);
}

/* ---------------------------------------------------------- fd events */

static void conn_ready(void *opaque, uint32_t revents)
{
	struct vs_conn *c = opaque;
	struct virtio_vsock *v = c->v;

	switch (c->state) {
	case CS_HOST_LINE:
		conn_host_line(c);
		break;
	case CS_HOST_REQ:
		/* the host program left before the guest answered: cancel
		 * (RST if the guest has seen the REQUEST) */
		if (revents & (POLLHUP | POLLERR))
			conn_reset(c, !(c->pending & P_REQUEST));
		break;
	case CS_EST:
		if (c->blen > 0 && !conn_flush(c))
			break;
		if (c->state != CS_EST)
			break;
		if (revents & (POLLHUP | POLLERR | POLLRDHUP))
			c->hup = true;
		if (revents & POLLIN)
			c->readable = true;
		conn_check_done(c);
		break;
	default:
		break;
	}
	if (c->state != CS_FREE)
		vsock_conn_update_poll(c);
	vsock_rx_pump(v);
}

/* ------------------------------------------------ handshake deadlines */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool conn_in_handshake(const struct vs_conn *c)
{
	return c->state == CS_HOST_LINE || c->state == CS_HOST_REQ;
}

/* Arm the timer for the earliest handshake deadline (or disarm it). */
static void timer_rearm(struct virtio_vsock *v)
{
	struct itimerspec its = {0};
	uint64_t at = 0;

	for (uint32_t i = 0; i < v->max_conns; i++) {
		const struct vs_conn *c = &v->conns[i];

		if (conn_in_handshake(c) && (!at || c->deadline_ns < at))
			at = c->deadline_ns;
	}
	if (at == v->timer_at)
		return;
	its.it_value.tv_sec = (time_t)(at / 1000000000ull);
	its.it_value.tv_nsec = (long)(at % 1000000000ull);
	if (at && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	if (timerfd_settime(v->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		v->timer_at = at;
}

/* Handshakes past their deadline: the program's socket is closed (RST to
 * the guest when it has seen the REQUEST). */
static void timer_ready(void *opaque, uint32_t revents)
{
	struct virtio_vsock *v = opaque;
	uint64_t ticks, now = now_ns();

	(void)revents;
	if (read(v->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* spurious: rescan anyway */
	}
	v->timer_at = 0;
	for (uint32_t i = 0; i < v->max_conns; i++) {
		struct vs_conn *c = &v->conns[i];

		if (conn_in_handshake(c) && c->deadline_ns <= now) {
			v->st.host_timeouts++;
			conn_reset(c, c->state == CS_HOST_REQ &&
					      !(c->pending & P_REQUEST));
		}
	}
	timer_rearm(v);
	vsock_rx_pump(v);
}

static void listen_ready(void *opaque, uint32_t revents)
{
	struct virtio_vsock *v = opaque;

	(void)revents;
	for (unsigned i = 0; i < ACCEPT_TURN; i++) {
		int fd = accept4(v->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vs_conn *c;

		if (fd < 0)
			break;
		c = conn_alloc(v);
		if (!c) {
			close(fd);
			v->st.host_refused++;
			continue;
		}
		c->fd = fd;
		c->state = CS_HOST_LINE;
		c->deadline_ns = now_ns() + v->handshake_ns;
		vsock_conn_update_poll(c);
	}
	timer_rearm(v);
	vsock_rx_pump(v);
}

int vsock_listen(struct virtio_vsock *v)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct virtio_poll_fd pfd;
	struct stat sb;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	v->listen_fd = fd;
	memcpy(sa.sun_path, v->path, strlen(v->path));
	if (lstat(v->path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		unlink(v->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	v->bound = true;
	if (listen(fd, 64) < 0)
		return -errno;
	pfd = (struct virtio_poll_fd){
		.fd = fd, .events = POLLIN, .ready = listen_ready, .opaque = v};
	r = virtio_device_add_poll_fd(v->vdev, &pfd, NULL);
	if (r < 0)
		return r;
	v->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->timer_fd < 0)
		return -errno;
	pfd = (struct virtio_poll_fd){.fd = v->timer_fd,
				      .events = POLLIN,
				      .ready = timer_ready,
				      .opaque = v};
	return virtio_device_add_poll_fd(v->vdev, &pfd, NULL);
}
