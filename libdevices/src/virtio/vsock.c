/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-vsock device type (virtio 1.2, 5.10): stream connections between
 * the guest and host unix sockets.  See cvmm/devices/virtio-vsock.h for the
 * behaviour.
 *
 * Every function here runs with the device lock held (ops, ready
 * functions, or a public function between lock and unlock), except
 * create and the destroy op.
 *
 * Shape: packets from the guest (tx queue) are parsed and applied to the
 * connection table at once (tx chains are never held); everything the
 * device sends (rx queue) is produced by one pump, vsock_rx_pump(), that
 * serves pending RSTs for unknown connections and then the connections
 * round robin, one packet each per turn, only while the guest has rx
 * buffers posted.  Handlers only set flags; the pump runs at the end of
 * every op and ready function.
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
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include <cvmm/devices/virtio-vsock.h>

#define Q_RX	0u
#define Q_TX	1u
#define Q_EVENT 2u

#define HDR_LEN		 ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define PKT_MAX		 (64u << 10) /* payload of one rx packet, at most */
#define CONNECT_LINE_MAX 32u	     /* "CONNECT 4294967295\n" fits */
#define ACCEPT_TURN	 16u	     /* accepts per listener wake-up */
#define LOCAL_PORT0	 (1u << 30)  /* first port for host-initiated conns */

enum conn_state {
	CS_FREE = 0,
	CS_HOST_LINE, /* host program connected, reading "CONNECT P\n" */
	CS_HOST_REQ,  /* REQUEST to the guest pending or sent */
	CS_EST,	      /* established */
	CS_CLOSING,   /* socket closed, RST to the guest pending */
};

/* Packets a connection has to send (besides data). */
enum {
	P_REQUEST = 1u << 0,
	P_RESPONSE = 1u << 1,
	P_CREDIT_UPDATE = 1u << 2,
	P_CREDIT_REQUEST = 1u << 3,
};

struct vs_conn {
	struct virtio_vsock *v;
	enum conn_state state;
	uint32_t guest_port, host_port;
	int fd;
	unsigned poll_id;
	bool polled;
	uint32_t poll_events;
	uint32_t pending;

	/* guest -> host: bytes [bstart, bstart + blen) of buf wait for the
	 * socket; fwd_cnt counts bytes written to it, fwd_told the fwd_cnt
	 * last sent to the guest */
	uint8_t *buf;
	uint32_t bstart, blen;
	uint32_t fwd_cnt, fwd_told;
	bool guest_shut_send, guest_shut_rcv, wr_shut;

	/* host -> guest: the guest's credit */
	uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
	bool readable;	      /* the socket reported input not yet read */
	bool hup;	      /* the socket reported a hang-up */
	bool host_eof;	      /* end of file read, SHUTDOWN SEND sent */
	bool credit_req_sent; /* CREDIT_REQUEST sent, no credit since */
};

struct orphan_rst {
	uint32_t guest_port, host_port;
};

struct virtio_vsock {
	struct virtio_device *vdev;
	uint64_t guest_cid;
	char *path;
	bool bound;
	int listen_fd;
	uint32_t max_conns, buf_size, qsize;
	bool live;
	bool rx_no_buf; /* the guest has no rx buffer posted */
	bool event_pending;

	struct vs_conn *conns; /* max_conns slots */
	uint32_t nconns;       /* slots in use */
	uint32_t rr;	       /* round-robin position */
	uint32_t next_port;

	struct orphan_rst orphans[VIRTIO_VSOCK_ORPHAN_RST_MAX];
	uint32_t orph_head, orph_len;

	struct virtq_chain *rx_chain, *tx_chain, *ev_chain;
	uint8_t *bounce; /* HDR_LEN + PKT_MAX */

	struct virtio_vsock_stats st;
};

/* ------------------------------------------------------------ helpers */

static bool vsock_live(struct virtio_vsock *v)
{
	return v->live && !virtio_device_needs_reset(v->vdev);
}

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

static void conn_update_poll(struct vs_conn *c)
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

static void close_all(struct virtio_vsock *v)
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

static void hdr_fill(struct virtio_vsock *v, struct virtio_vsock_hdr *h,
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
static bool conn_has_rx(const struct vs_conn *c)
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
static int conn_fill_rx(struct vs_conn *c, struct virtq_chain *ch)
{
	struct virtio_vsock *v = c->v;
	struct virtio_vsock_hdr h;
	uint32_t room, want, op = 0;
	ssize_t got;

	if (c->state == CS_CLOSING) {
		hdr_fill(v, &h, c->host_port, c->guest_port,
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
		hdr_fill(v, &h, c->host_port, c->guest_port, (uint16_t)op);
		hdr_credit(c, &h);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		return (int)HDR_LEN;
	}
	/* data, or end of file */
	room = virtq_chain_writable(ch) - HDR_LEN;
	want = conn_peer_credit(c);
	if (want == 0) {
		hdr_fill(v, &h, c->host_port, c->guest_port,
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
	if (want == 0)
		return 0;
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
		hdr_fill(v, &h, hp, gp, VIRTIO_VSOCK_OP_RST);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		v->st.rst_sent++;
		return (int)HDR_LEN;
	}
	if (got == 0) {
		/* end of file: the host will send no more */
		c->host_eof = true;
		c->readable = false;
		hdr_fill(v, &h, c->host_port, c->guest_port,
			 VIRTIO_VSOCK_OP_SHUTDOWN);
		h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_SEND);
		hdr_credit(c, &h);
		if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
			return -1;
		conn_check_done(c);
		return (int)HDR_LEN;
	}
	hdr_fill(v, &h, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_RW);
	h.len = htole32((uint32_t)got);
	hdr_credit(c, &h);
	memcpy(v->bounce, &h, HDR_LEN);
	if (virtq_chain_write_exact(ch, v->bounce, HDR_LEN + (size_t)got) < 0)
		return -1;
	c->rx_cnt += (uint32_t)got;
	v->st.rx_bytes += (uint64_t)got;
	return (int)(HDR_LEN + (uint32_t)got);
}

/* The next connection with a packet to send, round robin; NULL: none. */
static struct vs_conn *next_rx_conn(struct virtio_vsock *v)
{
	for (uint32_t k = 0; k < v->max_conns; k++) {
		uint32_t i = (v->rr + k) % v->max_conns;

		if (conn_has_rx(&v->conns[i])) {
			v->rr = (i + 1) % v->max_conns;
			return &v->conns[i];
		}
	}
	return NULL;
}

static void vsock_rx_pump(struct virtio_vsock *v)
{
	struct virtq *q = virtio_device_queue(v->vdev, Q_RX);
	struct virtq_chain *ch = v->rx_chain;
	uint32_t n, budget = v->qsize;
	uint32_t idle = 0; /* packets that came back empty in a row */
	bool used = false;

	if (!vsock_live(v) || v->rx_no_buf)
		return;
	for (n = 0; n < budget;) {
		struct vs_conn *c = NULL;
		int r, len;

		if (v->orph_len == 0) {
			c = next_rx_conn(v);
			if (!c)
				break;
		}
		r = virtq_pop(q, ch);
		if (r == 0 && virtq_enable_notification(q))
			r = virtq_pop(q, ch);
		if (r == 0) {
			v->rx_no_buf = true; /* resume at the next rx kick */
			break;
		}
		if (r < 0)
			break; /* not ready or broken */
		if (virtq_chain_writable(ch) < HDR_LEN) {
			v->st.rx_short_buffer++;
			if (virtq_complete_len(q, ch, 0) < 0)
				break;
			used = true;
			n++;
			continue;
		}
		if (!c) {
			struct orphan_rst *o = &v->orphans[v->orph_head];
			struct virtio_vsock_hdr h;

			hdr_fill(v, &h, o->host_port, o->guest_port,
				 VIRTIO_VSOCK_OP_RST);
			if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
				break;
			v->orph_head = (v->orph_head + 1) %
				       VIRTIO_VSOCK_ORPHAN_RST_MAX;
			v->orph_len--;
			v->st.rst_sent++;
			len = (int)HDR_LEN;
		} else {
			len = conn_fill_rx(c, ch);
			if (len < 0)
				break;
		}
		if (len == 0) {
			virtq_undo_pop(q, ch);
			if (c->state != CS_FREE)
				conn_update_poll(c);
			if (++idle > v->max_conns)
				break;
			continue;
		}
		idle = 0;
		if (virtq_complete_len(q, ch, (uint32_t)len) < 0)
			break;
		if (c && c->state != CS_FREE)
			conn_update_poll(c);
		used = true;
		n++;
	}
	if (used)
		virtio_device_queue_used(v->vdev, Q_RX);
	if (n == budget)
		virtio_device_queue_kick(v->vdev, Q_RX); /* more next round */
}

static void vsock_event_pump(struct virtio_vsock *v)
{
	struct virtq *q = virtio_device_queue(v->vdev, Q_EVENT);
	struct virtq_chain *ch = v->ev_chain;
	bool used = false;

	if (!vsock_live(v))
		return;
	for (uint32_t n = 0; v->event_pending && n < v->qsize; n++) {
		struct virtio_vsock_event e = {
			.id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET)};
		int r = virtq_pop(q, ch);

		if (r == 0 && virtq_enable_notification(q))
			r = virtq_pop(q, ch);
		if (r <= 0)
			break;
		if (virtq_chain_writable(ch) >= sizeof(e)) {
			if (VIRTQ_CHAIN_WRITE_OBJ(ch, &e) < 0)
				break;
			v->event_pending = false;
			v->st.events_sent++;
		}
		if (virtq_complete(q, ch) < 0)
			break;
		used = true;
	}
	if (used)
		virtio_device_queue_used(v->vdev, Q_EVENT);
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
	conn_update_poll(c);
}

/* One packet from the guest, header @h, payload at @ch's read cursor. */
static void vsock_packet(struct virtio_vsock *v,
			 const struct virtio_vsock_hdr *h,
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
	if (!c || c->state == CS_CLOSING) {
		if (!c)
			v->st.unknown_conn++;
		if (!c)
			orphan_rst(v, gport, hport);
		return;
	}
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
	default: /* RESPONSE on a guest-initiated one, REQUEST: above */
		break;
	}
	if (c->state != CS_FREE)
		conn_update_poll(c);
}

static void vsock_tx(struct virtio_vsock *v)
{
	struct virtq *q = virtio_device_queue(v->vdev, Q_TX);
	struct virtq_chain *ch = v->tx_chain;
	uint32_t n;

	if (!vsock_live(v))
		return;
	for (n = 0; n < v->qsize; n++) {
		struct virtio_vsock_hdr h;
		int r = virtq_pop(q, ch);

		if (r == 0 && virtq_enable_notification(q))
			r = virtq_pop(q, ch);
		if (r <= 0)
			break;
		r = VIRTQ_CHAIN_READ_OBJ(ch, &h);
		if (r == -EMSGSIZE)
			v->st.short_header++;
		else if (r < 0)
			break; /* the queue broke */
		else
			vsock_packet(v, &h, ch);
		if (virtq_complete_len(q, ch, 0) < 0)
			break;
		virtio_device_queue_used(v->vdev, Q_TX);
		if (!vsock_live(v))
			break;
	}
	if (n == v->qsize && virtq_avail_count(q) > 0)
		virtio_device_queue_kick(v->vdev, Q_TX);
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
		conn_update_poll(c);
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
		conn_update_poll(c);
	}
	vsock_rx_pump(v);
}

static int vsock_listen(struct virtio_vsock *v)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct virtio_poll_fd pfd;
	struct stat sb;
	int fd;

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
	return virtio_device_add_poll_fd(v->vdev, &pfd, NULL);
}

/* ------------------------------------------------------------------ ops */

static void op_queue_notify(void *opaque, uint16_t queue)
{
	struct virtio_vsock *v = opaque;

	if (queue == Q_TX)
		vsock_tx(v);
	else if (queue == Q_RX)
		v->rx_no_buf = false;
	else if (queue == Q_EVENT)
		vsock_event_pump(v);
	vsock_rx_pump(v);
}

static void op_queue_ready(void *opaque, uint16_t queue, bool ready)
{
	struct virtio_vsock *v = opaque;

	if (ready && queue == Q_RX)
		v->rx_no_buf = false;
}

static int op_activate(void *opaque)
{
	struct virtio_vsock *v = opaque;

	v->live = true;
	v->rx_no_buf = false;
	vsock_tx(v);
	vsock_event_pump(v);
	vsock_rx_pump(v);
	return 0;
}

static void op_reset(void *opaque)
{
	struct virtio_vsock *v = opaque;

	v->live = false;
	v->rx_no_buf = false;
	v->event_pending = false;
	close_all(v);
}

static void vsock_free(struct virtio_vsock *v)
{
	if (!v)
		return;
	for (uint32_t i = 0; v->conns && i < v->max_conns; i++) {
		if (v->conns[i].fd >= 0)
			close(v->conns[i].fd);
		free(v->conns[i].buf);
	}
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->bound)
		unlink(v->path);
	free(v->path);
	free(v->conns);
	free(v->bounce);
	virtq_chain_free(v->rx_chain);
	virtq_chain_free(v->tx_chain);
	virtq_chain_free(v->ev_chain);
	free(v);
}

static void op_destroy(void *opaque)
{
	vsock_free(opaque);
}

static const struct virtio_device_ops vsock_ops = {
	.activate = op_activate,
	.queue_ready = op_queue_ready,
	.queue_notify = op_queue_notify,
	.reset = op_reset,
	.destroy = op_destroy,
};

/* ----------------------------------------------------------- public API */

static int check_params(const struct virtio_vsock_params *p)
{
	struct sockaddr_un sa;

	if (p->guest_cid && (p->guest_cid < 3 || p->guest_cid >= 0xffffffffu))
		return -EINVAL;
	if (p->uds_path && (p->uds_path[0] == '\0' ||
			    strlen(p->uds_path) + 11 >= sizeof(sa.sun_path)))
		return -EINVAL;
	if (p->max_connections > VIRTIO_VSOCK_MAX_CONNS_LIMIT)
		return -EINVAL;
	if (p->conn_buf_size && (p->conn_buf_size < VIRTIO_VSOCK_CONN_BUF_MIN ||
				 p->conn_buf_size > VIRTIO_VSOCK_CONN_BUF_MAX))
		return -EINVAL;
	if (p->queue_max_size &&
	    (p->queue_max_size > VIRTQ_MAX_SIZE ||
	     (p->queue_max_size & (p->queue_max_size - 1))))
		return -EINVAL;
	return 0;
}

int virtio_vsock_create(const struct virtio_vsock_params *cfg,
			struct virtio_vsock **out)
{
	static const struct virtio_vsock_params defaults;
	struct virtio_device_info info = {.device_id = VIRTIO_ID_VSOCK};
	struct virtio_vsock_config vc;
	struct virtio_vsock *v;
	int err;

	if (!out)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	err = check_params(cfg);
	if (err)
		return err;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->listen_fd = -1;
	v->guest_cid = cfg->guest_cid ? cfg->guest_cid
				      : VIRTIO_VSOCK_GUEST_CID_DEFAULT;
	v->max_conns = cfg->max_connections ? cfg->max_connections
					    : VIRTIO_VSOCK_MAX_CONNS_DEFAULT;
	v->buf_size = cfg->conn_buf_size ? cfg->conn_buf_size
					 : VIRTIO_VSOCK_CONN_BUF_DEFAULT;
	v->qsize = cfg->queue_max_size ? cfg->queue_max_size : 256;
	v->next_port = LOCAL_PORT0;
	v->conns = calloc(v->max_conns, sizeof(*v->conns));
	v->bounce = malloc(HDR_LEN + PKT_MAX);
	v->rx_chain = virtq_chain_alloc(v->qsize);
	v->tx_chain = virtq_chain_alloc(v->qsize);
	v->ev_chain = virtq_chain_alloc(v->qsize);
	if (cfg->uds_path)
		v->path = strdup(cfg->uds_path);
	if (!v->conns || !v->bounce || !v->rx_chain || !v->tx_chain ||
	    !v->ev_chain || (cfg->uds_path && !v->path)) {
		vsock_free(v);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < v->max_conns; i++) {
		v->conns[i].v = v;
		v->conns[i].fd = -1;
	}
	info.num_queues = 3;
	info.queue_max_size = v->qsize;
	info.config_size = sizeof(vc);
	err = virtio_device_create(&info, &vsock_ops, v, &v->vdev);
	if (err) {
		vsock_free(v);
		return err;
	}
	vc.guest_cid = htole64(v->guest_cid);
	virtio_device_lock(v->vdev);
	err = virtio_device_config_set(v->vdev, 0, &vc, sizeof(vc), false);
	virtio_device_unlock(v->vdev);
	if (!err && v->path)
		err = vsock_listen(v);
	if (err) {
		virtio_device_destroy(v->vdev); /* frees v (destroy op) */
		return err;
	}
	*out = v;
	return 0;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	virtio_device_destroy(v->vdev); /* calls op_destroy: frees v */
}

struct virtio_device *virtio_vsock_device(struct virtio_vsock *v)
{
	return v ? v->vdev : NULL;
}

int virtio_vsock_transport_reset(struct virtio_vsock *v)
{
	if (!v)
		return -EINVAL;
	virtio_device_lock(v->vdev);
	close_all(v);
	v->event_pending = true;
	vsock_event_pump(v);
	virtio_device_unlock(v->vdev);
	return 0;
}

int virtio_vsock_stats(struct virtio_vsock *v, struct virtio_vsock_stats *st)
{
	if (!v || !st)
		return -EINVAL;
	virtio_device_lock(v->vdev);
	*st = v->st;
	st->conns_open = v->nconns;
	st->buffered_bytes = 0;
	for (uint32_t i = 0; i < v->max_conns; i++)
		st->buffered_bytes += v->conns[i].blen;
	virtio_device_unlock(v->vdev);
	return 0;
}
