/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-console device type (virtio 1.2, 5.3): port 0 on a pair of fds,
 * named ports on host unix sockets, the multiport control queue.
 * See cvmm/devices/virtio-console.h for the behaviour.
 *
 * Every function here runs with the device lock held (ops, ready
 * functions, or a public function between lock and unlock), except
 * create and the destroy op.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include <cvmm/devices/virtio-console.h>

/* Pending device->driver control messages, sent in this order. */
enum {
	PEND_ADD = 1u << 0,
	PEND_CONSOLE = 1u << 1,
	PEND_NAME = 1u << 2,
	PEND_OPEN = 1u << 3,
	PEND_RESIZE = 1u << 4,
};

/* One entry of the device's poll list. */
struct vc_pollent {
	int fd;
	uint32_t events;
	unsigned id;
	bool added;
};

struct vc_port {
	struct virtio_console *c;
	uint32_t id;
	bool configured; /* id 0, or 1..nr_ports */

	/* host side: port 0 uses in_fd/out_fd, socket ports conn_fd */
	char *name;
	char *path;
	bool server;
	bool bound; /* we created the socket file at path */
	int listen_fd;
	struct vc_pollent listen_pe;
	int conn_fd;
	int in_fd, out_fd; /* port 0 only (not owned) */
	bool in_eof, out_broken;
	bool in_sock, out_sock; /* port 0's fds are sockets (send/recv) */
	bool peer_gone; /* the socket peer hung up; unread input remains */
	struct vc_pollent pe[2]; /* [0]: input fd (or both), [1]: output fd */

	/* output buffer: bytes [ostart, ostart + olen) of obuf */
	uint8_t *obuf;
	uint32_t ostart, olen, ocap;
	struct virtq_chain *hold; /* socket ports: a transmit chain held */
	bool holding;

	/* guest side */
	uint32_t pending;
	bool added, ready, guest_open, console_sent, rx_stalled;

	struct virtio_console_port_stats st;
};

struct virtio_console {
	struct virtio_device *vdev;
	uint32_t nr_ports;     /* configured named ports */
	uint32_t max_nr_ports; /* in config space */
	uint32_t flags;
	uint32_t qsize;
	uint16_t cols, rows;
	bool size_known;       /* given at creation or by set_size */
	bool live;	       /* DRIVER_OK seen, no reset since */
	bool multiport;	       /* negotiated */
	struct vc_port *ports; /* max_nr_ports entries */
	struct virtq_chain *rx_chain, *tx_chain, *ctrl_chain;
	struct virtio_console_stats st;
};

/* ---------------------------------------------------------------- helpers */

static uint32_t port_rxq(uint32_t id)
{
	return id == 0 ? 0 : 2 * id + 2;
}

static uint32_t port_txq(uint32_t id)
{
	return id == 0 ? 1 : 2 * id + 3;
}

static bool console_live(struct virtio_console *c)
{
	return c->live && !virtio_device_needs_reset(c->vdev);
}

static bool port_is_socket(const struct vc_port *p)
{
	return p->path != NULL;
}

static bool port_host_connected(const struct vc_port *p)
{
	if (p->id == 0)
		return p->out_fd >= 0 && !p->out_broken;
	return p->conn_fd >= 0;
}

static int port_in_fd(const struct vc_port *p)
{
	if (p->id == 0)
		return p->in_eof ? -1 : p->in_fd;
	return p->conn_fd;
}

static int port_out_fd(const struct vc_port *p)
{
	if (p->id == 0)
		return p->out_broken ? -1 : p->out_fd;
	return p->conn_fd;
}

/* May host input be delivered to the guest on this port now? */
static bool port_rx_allowed(struct vc_port *p)
{
	struct virtio_console *c = p->c;

	if (!p->configured || !console_live(c))
		return false;
	if (c->multiport)
		return p->ready && p->guest_open;
	return p->id == 0;
}

static void port_ready(void *opaque, uint32_t revents);
static void flush_ctrl(struct virtio_console *c);

static void pollent_set(struct vc_port *p, struct vc_pollent *pe, int fd,
			uint32_t events)
{
	struct virtio_poll_fd pfd;

	if (fd < 0)
		events = 0;
	if (pe->added && pe->fd == fd && pe->events == events)
		return;
	if (pe->added) {
		virtio_device_remove_poll_fd(p->c->vdev, pe->id);
		pe->added = false;
	}
	if (!events)
		return;
	pfd = (struct virtio_poll_fd){
		.fd = fd, .events = events, .ready = port_ready, .opaque = p};
	if (virtio_device_add_poll_fd(p->c->vdev, &pfd, &pe->id) == 0) {
		pe->added = true;
		pe->fd = fd;
		pe->events = events;
	}
}

/* Bring the port's poll entries in line with what it waits for. */
static void port_update_poll(struct vc_port *p)
{
	int in = port_in_fd(p), out = port_out_fd(p);
	uint32_t ev_in = 0, ev_out = 0;

	if (in >= 0 && port_rx_allowed(p) && !p->rx_stalled)
		ev_in = POLLIN;
	else if (port_is_socket(p) && p->conn_fd >= 0 && !p->peer_gone)
		ev_in = POLLRDHUP; /* notice a hang-up without reading */
	/* a held chain waits for POLLOUT only while the device is live (a
	 * broken queue keeps it until the reset) */
	if (out >= 0 && (p->olen > 0 || (p->holding && console_live(p->c))))
		ev_out = POLLOUT;
	if (in >= 0 && in == out) {
		pollent_set(p, &p->pe[0], in, ev_in | ev_out);
		pollent_set(p, &p->pe[1], -1, 0);
	} else {
		pollent_set(p, &p->pe[0], in, ev_in);
		pollent_set(p, &p->pe[1], out, ev_out);
	}
}

static void port_pending(struct vc_port *p, uint32_t bits)
{
	if (!p->c->multiport || !p->c->live)
		return;
	p->pending |= bits;
}

/* The host side of a socket port went away. */
static void port_disconnect(struct vc_port *p)
{
	int fd = p->conn_fd;

	if (fd < 0)
		return;
	p->conn_fd = -1;
	port_update_poll(p); /* removes the entries of fd before it closes */
	close(fd);
	p->st.tx_dropped += p->olen;
	p->olen = 0;
	p->ostart = 0;
	p->st.disconnects++;
	if (p->ready)
		port_pending(p, PEND_OPEN);
	flush_ctrl(p->c);
}

static void port_connected(struct vc_port *p, int fd)
{
	p->conn_fd = fd;
	p->peer_gone = false;
	p->st.connects++;
	if (p->ready)
		port_pending(p, PEND_OPEN);
	flush_ctrl(p->c);
}

/* Port 0's output fd failed: drop what is buffered, stop writing. */
static void port_out_failed(struct vc_port *p)
{
	if (p->id != 0) {
		port_disconnect(p);
		return;
	}
	p->out_broken = true;
	p->st.tx_dropped += p->olen;
	p->olen = 0;
	p->ostart = 0;
	if (p->ready)
		port_pending(p, PEND_OPEN);
	flush_ctrl(p->c);
}

/* Sockets get MSG_NOSIGNAL (no SIGPIPE); other fds plain write/read. */
static ssize_t fd_write(int fd, bool sock, const void *buf, size_t len)
{
	if (sock)
		return send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return write(fd, buf, len);
}

static ssize_t fd_read(int fd, bool sock, void *buf, size_t len)
{
	if (sock)
		return recv(fd, buf, len, MSG_DONTWAIT);
	return read(fd, buf, len);
}

static bool fd_is_socket(int fd)
{
	struct stat sb;

	return fd >= 0 && fstat(fd, &sb) == 0 && S_ISSOCK(sb.st_mode);
}

/* Write out what the output buffer holds; true when it is empty. */
static bool port_flush(struct vc_port *p)
{
	unsigned tries = 0;

	while (p->olen > 0 && tries++ < 64) {
		int fd = port_out_fd(p);
		ssize_t n;

		if (fd < 0) {
			p->st.tx_dropped += p->olen;
			p->olen = 0;
			break;
		}
		n = fd_write(fd, p->id != 0 || p->out_sock, p->obuf + p->ostart,
			     p->olen);
		if (n > 0) {
			p->ostart += (uint32_t)n;
			p->olen -= (uint32_t)n;
			p->st.tx_bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		port_out_failed(p);
		break;
	}
	if (p->olen == 0)
		p->ostart = 0;
	return p->olen == 0;
}

/* Free room at the end of the output buffer (compacting it). */
static uint32_t port_room(struct vc_port *p)
{
	if (p->ostart > 0 && p->ostart + p->olen == p->ocap) {
		memmove(p->obuf, p->obuf + p->ostart, p->olen);
		p->ostart = 0;
	}
	return p->ocap - p->ostart - p->olen;
}

/* ------------------------------------------------------------ transmit */

/*
 * Process a port's transmitq.  Port 0 and ports without a host peer
 * complete every chain at once (what cannot be buffered is dropped); a
 * socket port with a peer holds a chain while the socket is full.
 */
static void port_tx(struct vc_port *p)
{
	struct virtio_console *c = p->c;
	uint32_t qi = port_txq(p->id);
	struct virtq *q = virtio_device_queue(c->vdev, qi);
	uint32_t budget = c->qsize, done = 0;
	bool kick = false;

	if (!q || !console_live(c))
		return;
	for (;;) {
		struct virtq_chain *ch = p->hold ? p->hold : c->tx_chain;

		if (!p->holding) {
			int r;

			if (done >= budget) {
				kick = virtq_avail_count(q) > 0;
				break;
			}
			r = virtq_pop(q, ch);
			if (r == 0 && virtq_enable_notification(q))
				r = virtq_pop(q, ch);
			if (r <= 0)
				break;
			if (p->hold)
				p->holding = true;
		}
		while (virtq_chain_readable(ch) > 0) {
			uint32_t room, want;
			ssize_t n;

			if (!p->configured || !port_host_connected(p)) {
				p->st.tx_dropped +=
					virtq_chain_skip_read(ch, UINT32_MAX);
				break;
			}
			room = port_room(p);
			if (room == 0) {
				port_flush(p);
				if (!port_host_connected(p))
					continue;
				room = port_room(p);
			}
			if (room == 0) {
				if (p->hold) {
					/* wait for POLLOUT, keep the chain */
					port_update_poll(p);
					goto out;
				}
				p->st.tx_dropped +=
					virtq_chain_skip_read(ch, UINT32_MAX);
				break;
			}
			want = virtq_chain_readable(ch);
			if (want > room)
				want = room;
			n = virtq_chain_read(ch, p->obuf + p->ostart + p->olen,
					     want);
			if (n < 0) /* the queue broke */
				goto out;
			p->olen += (uint32_t)n;
			port_flush(p);
		}
		p->holding = false;
		if (virtq_complete(q, ch) < 0)
			goto out;
		done++;
		virtio_device_queue_used(c->vdev, qi);
	}
out:
	if (kick)
		virtio_device_queue_kick(c->vdev, qi);
}

/* ------------------------------------------------------------- receive */

/* Deliver host input into the guest's posted receive buffers. */
static void port_rx(struct vc_port *p)
{
	struct virtio_console *c = p->c;
	uint32_t qi = port_rxq(p->id);
	struct virtq *q = virtio_device_queue(c->vdev, qi);
	struct virtq_chain *ch = c->rx_chain;
	uint8_t buf[4096];
	uint32_t n;

	if (!q)
		return;
	for (n = 0; n < c->qsize; n++) {
		uint32_t want;
		ssize_t got;
		int fd = port_in_fd(p), r;

		if (fd < 0 || !port_rx_allowed(p))
			break;
		r = virtq_pop(q, ch);
		if (r == 0) {
			/* no buffer: stop reading until the guest posts */
			if (virtq_enable_notification(q))
				continue;
			p->rx_stalled = true;
			break;
		}
		if (r < 0) {
			/* queue not enabled or broken: stop polling until
			 * queue_ready or a notify */
			p->rx_stalled = true;
			break;
		}
		want = virtq_chain_writable(ch);
		if (want == 0) {
			virtq_complete(q, ch);
			virtio_device_queue_used(c->vdev, qi);
			continue;
		}
		if (want > sizeof(buf))
			want = sizeof(buf);
		got = fd_read(fd, p->id != 0 || p->in_sock, buf, want);
		if (got > 0) {
			if (virtq_chain_write(ch, buf, (size_t)got) < 0)
				break; /* the queue broke */
			p->st.rx_bytes += (uint64_t)got;
			virtq_complete(q, ch);
			virtio_device_queue_used(c->vdev, qi);
			continue;
		}
		virtq_undo_pop(q, ch);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* end of file or an error */
		if (p->id == 0)
			p->in_eof = true;
		else
			port_disconnect(p);
		break;
	}
}

/* After any event on a port: continue a held chain, fix poll interest. */
static void port_service(struct vc_port *p)
{
	if (p->holding && console_live(p->c))
		port_tx(p);
	port_update_poll(p);
}

static void port_ready(void *opaque, uint32_t revents)
{
	struct vc_port *p = opaque;

	(void)revents;
	if (p->olen > 0)
		port_flush(p);
	if (port_rx_allowed(p) && !p->rx_stalled)
		port_rx(p);
	else if (port_is_socket(p) && p->conn_fd >= 0 &&
		 (revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		int unread = 0;

		/* the peer hung up while the guest is not reading: gone
		 * now, unless it left input the guest may still read (then
		 * at its end of file) */
		if (ioctl(p->conn_fd, FIONREAD, &unread) < 0 || unread <= 0)
			port_disconnect(p);
		else
			p->peer_gone = true;
	}
	port_service(p);
}

/* ---------------------------------------------------------- sockets */

static int port_client_connect(struct vc_port *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (p->conn_fd >= 0)
		return 1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	memcpy(sa.sun_path, p->path, strlen(p->path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return 0;
	}
	port_connected(p, fd);
	return 1;
}

static void listen_ready(void *opaque, uint32_t revents)
{
	struct vc_port *p = opaque;
	unsigned i;

	(void)revents;
	for (i = 0; i < 8; i++) {
		int fd = accept4(p->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			break;
		if (p->conn_fd >= 0) {
			/* one peer at a time: refuse the second */
			close(fd);
			p->st.refused++;
			continue;
		}
		port_connected(p, fd);
	}
	port_service(p);
}

static int port_listen(struct vc_port *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct virtio_poll_fd pfd;
	struct stat sb;
	int fd, err;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, p->path, strlen(p->path));
	if (lstat(p->path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		unlink(p->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	p->bound = true;
	p->listen_fd = fd;
	if (listen(fd, 1) < 0)
		return -errno;
	pfd = (struct virtio_poll_fd){
		.fd = fd, .events = POLLIN, .ready = listen_ready, .opaque = p};
	err = virtio_device_add_poll_fd(p->c->vdev, &pfd, &p->listen_pe.id);
	if (err < 0)
		return err;
	p->listen_pe.added = true;
	p->listen_pe.fd = fd;
	p->listen_pe.events = POLLIN;
	return 0;
}

/* ------------------------------------------------------ control queue */

static void ctrl_msg(struct virtio_console_control *m, uint32_t id,
		     uint16_t event, uint16_t value)
{
	m->id = htole32(id);
	m->event = htole16(event);
	m->value = htole16(value);
}

/* Send the device's pending control messages while buffers last. */
static void flush_ctrl(struct virtio_console *c)
{
	struct virtq *q = virtio_device_queue(c->vdev, 2);
	struct virtq_chain *ch = c->ctrl_chain;
	uint32_t i, budget = c->max_nr_ports * 6 + 1;
	bool used = false;

	if (!q || !c->multiport || !console_live(c))
		return;
	for (i = 0; i <= c->nr_ports && budget > 0;) {
		struct vc_port *p = &c->ports[i];
		uint8_t msg[sizeof(struct virtio_console_control) +
			    VIRTIO_CONSOLE_NAME_MAX + 1];
		struct virtio_console_control m;
		uint32_t bit, len = sizeof(m);
		int r;

		if (!p->pending) {
			i++;
			continue;
		}
		budget--;
		bit = p->pending & -p->pending;
		switch (bit) {
		case PEND_ADD:
			ctrl_msg(&m, i, VIRTIO_CONSOLE_PORT_ADD, 1);
			break;
		case PEND_CONSOLE:
			ctrl_msg(&m, i, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
			break;
		case PEND_NAME: {
			size_t nl = strlen(p->name) + 1;

			ctrl_msg(&m, i, VIRTIO_CONSOLE_PORT_NAME, 1);
			memcpy(msg + sizeof(m), p->name, nl);
			len += (uint32_t)nl;
			break;
		}
		case PEND_OPEN:
			ctrl_msg(&m, i, VIRTIO_CONSOLE_PORT_OPEN,
				 port_host_connected(p) ? 1 : 0);
			break;
		default: { /* PEND_RESIZE: struct virtio_console_resize */
			uint16_t sz[2] = {htole16(c->cols), htole16(c->rows)};

			if (c->flags & VIRTIO_CONSOLE_RESIZE_ROWS_FIRST) {
				sz[0] = htole16(c->rows);
				sz[1] = htole16(c->cols);
			}

			ctrl_msg(&m, i, VIRTIO_CONSOLE_RESIZE, 0);
			memcpy(msg + sizeof(m), sz, sizeof(sz));
			len += sizeof(sz);
			break;
		}
		}
		memcpy(msg, &m, sizeof(m));
		r = virtq_pop(q, ch);
		if (r == 0 && virtq_enable_notification(q))
			r = virtq_pop(q, ch);
		if (r <= 0)
			break; /* wait for buffers (queue_notify of 2) */
		if (virtq_chain_writable(ch) < len) {
			c->st.ctrl_no_room++;
		} else {
			if (virtq_chain_write_exact(ch, msg, len) < 0)
				break; /* the queue broke */
			c->st.ctrl_tx++;
			if (bit == PEND_ADD)
				p->added = true;
			if (bit == PEND_CONSOLE)
				p->console_sent = true;
		}
		p->pending &= ~bit;
		if (virtq_complete(q, ch) < 0)
			break;
		used = true;
	}
	if (used)
		virtio_device_queue_used(c->vdev, 2);
}

/* A port named by a driver message, or NULL (counted). */
static struct vc_port *ctrl_port(struct virtio_console *c, uint32_t id)
{
	if (id >= c->max_nr_ports || id > c->nr_ports || !c->ports[id].added) {
		c->st.ctrl_bad_port++;
		return NULL;
	}
	return &c->ports[id];
}

static void handle_ctrl(struct virtio_console *c, uint32_t id, uint16_t event,
			uint16_t value)
{
	struct vc_port *p;
	uint32_t i;

	c->st.ctrl_rx++;
	switch (event) {
	case VIRTIO_CONSOLE_DEVICE_READY:
		if (value != 1) {
			c->st.ctrl_unknown++;
			break;
		}
		for (i = 0; i <= c->nr_ports; i++)
			port_pending(&c->ports[i], PEND_ADD);
		break;
	case VIRTIO_CONSOLE_PORT_READY:
		p = ctrl_port(c, id);
		if (!p)
			break;
		if (value != 1) {
			/* the driver failed to add it */
			c->st.ctrl_unknown++;
			p->ready = false;
			break;
		}
		p->ready = true;
		port_pending(p,
			     (id == 0 ? PEND_CONSOLE : 0) |
				     (id == 0 && c->size_known ? PEND_RESIZE
							       : 0) |
				     (p->name ? PEND_NAME : 0) |
				     (port_host_connected(p) ? PEND_OPEN : 0));
		break;
	case VIRTIO_CONSOLE_PORT_OPEN:
		p = ctrl_port(c, id);
		if (!p)
			break;
		p->guest_open = value != 0;
		if (p->guest_open && port_is_socket(p) && !p->server)
			port_client_connect(p);
		p->rx_stalled = false;
		port_service(p);
		break;
	default:
		/* device-to-driver events and unknown ones */
		c->st.ctrl_unknown++;
		break;
	}
}

/* The control transmitq: messages from the driver. */
static void ctrl_tx(struct virtio_console *c)
{
	struct virtq *q = virtio_device_queue(c->vdev, 3);
	struct virtq_chain *ch = c->ctrl_chain;
	uint32_t n;

	if (!q || !c->multiport)
		return;
	for (n = 0; n < c->qsize; n++) {
		struct virtio_console_control m;
		int r = virtq_pop(q, ch);

		if (r == 0 && virtq_enable_notification(q))
			r = virtq_pop(q, ch);
		if (r <= 0)
			break;
		r = VIRTQ_CHAIN_READ_OBJ(ch, &m);
		if (r == -EMSGSIZE)
			c->st.ctrl_truncated++;
		else if (r < 0)
			break; /* the queue broke */
		if (virtq_complete(q, ch) < 0)
			break;
		virtio_device_queue_used(c->vdev, 3);
		if (r == 0)
			handle_ctrl(c, le32toh(m.id), le16toh(m.event),
				    le16toh(m.value));
		if (!console_live(c))
			break;
	}
	if (n == c->qsize && virtq_avail_count(q) > 0)
		virtio_device_queue_kick(c->vdev, 3);
	flush_ctrl(c);
}

/* ------------------------------------------------------------------ ops */

static void op_queue_notify(void *opaque, uint16_t queue)
{
	struct virtio_console *c = opaque;
	struct vc_port *p;
	uint32_t id;

	if (queue == 2) {
		flush_ctrl(c);
		return;
	}
	if (queue == 3) {
		ctrl_tx(c);
		return;
	}
	id = queue < 2 ? 0 : (queue - 2) / 2;
	if (id >= c->max_nr_ports || (id > 0 && !c->multiport))
		return;
	p = &c->ports[id];
	if (queue == port_rxq(id)) {
		p->rx_stalled = false;
	} else {
		port_tx(p);
	}
	port_service(p);
}

static void op_queue_ready(void *opaque, uint16_t queue, bool ready)
{
	struct virtio_console *c = opaque;
	uint32_t id = queue < 2 ? 0 : (queue - 2) / 2;

	/* a receiveq enabled: host input may flow again */
	if (!ready || queue == 2 || queue == 3 || id >= c->max_nr_ports ||
	    queue != port_rxq(id))
		return;
	c->ports[id].rx_stalled = false;
	if (c->ports[id].configured)
		port_update_poll(&c->ports[id]);
}

static void console_emerg_write(struct virtio_console *c, uint8_t ch)
{
	struct vc_port *p = &c->ports[0];

	c->st.emerg_writes++;
	if (!port_host_connected(p)) {
		p->st.tx_dropped++;
		return;
	}
	if (port_room(p) == 0)
		port_flush(p);
	if (port_room(p) == 0) {
		p->st.tx_dropped++;
		return;
	}
	p->obuf[p->ostart + p->olen] = ch;
	p->olen++;
	port_flush(p);
	port_update_poll(p);
}

static void op_config_write(void *opaque, uint32_t offset, const void *data,
			    unsigned len)
{
	struct virtio_console *c = opaque;

	if (c->flags & VIRTIO_CONSOLE_NO_EMERG_WRITE)
		return;
	/* a write starting at emerg_wr: its low byte is the character */
	if (offset == offsetof(struct virtio_console_config, emerg_wr) &&
	    len >= 1)
		console_emerg_write(c, *(const uint8_t *)data);
}

static int op_activate(void *opaque)
{
	struct virtio_console *c = opaque;
	uint32_t i;

	c->live = true;
	c->multiport =
		virtio_device_has_feature(c->vdev, VIRTIO_CONSOLE_F_MULTIPORT);
	if (!c->multiport)
		c->ports[0].ready = c->ports[0].guest_open = true;
	/* buffers the driver posted before DRIVER_OK */
	if (c->multiport)
		ctrl_tx(c);
	for (i = 0; i <= c->nr_ports; i++) {
		struct vc_port *p = &c->ports[i];

		p->rx_stalled = false;
		if (i == 0 || c->multiport)
			port_tx(p);
		port_update_poll(p);
	}
	return 0;
}

static void op_reset(void *opaque)
{
	struct virtio_console *c = opaque;
	uint32_t i;

	c->live = false;
	c->multiport = false;
	for (i = 0; i < c->max_nr_ports; i++) {
		struct vc_port *p = &c->ports[i];

		p->holding = false; /* chains die with the queues */
		p->pending = 0;
		p->added = p->ready = p->guest_open = false;
		p->console_sent = false;
		p->rx_stalled = false;
		if (p->configured)
			port_update_poll(p);
	}
}

static void console_free(struct virtio_console *c)
{
	uint32_t i;

	if (!c)
		return;
	for (i = 0; c->ports && i < c->max_nr_ports; i++) {
		struct vc_port *p = &c->ports[i];

		if (p->conn_fd >= 0)
			close(p->conn_fd);
		if (p->listen_fd >= 0)
			close(p->listen_fd);
		if (p->bound)
			unlink(p->path);
		free(p->name);
		free(p->path);
		free(p->obuf);
		virtq_chain_free(p->hold);
	}
	free(c->ports);
	virtq_chain_free(c->rx_chain);
	virtq_chain_free(c->tx_chain);
	virtq_chain_free(c->ctrl_chain);
	free(c);
}

static void op_destroy(void *opaque)
{
	console_free(opaque);
}

static const struct virtio_device_ops console_ops = {
	.config_write = op_config_write,
	.activate = op_activate,
	.queue_ready = op_queue_ready,
	.queue_notify = op_queue_notify,
	.reset = op_reset,
	.destroy = op_destroy,
};

/* ----------------------------------------------------------- public API */

static bool fd_ok(int fd)
{
	int fl;

	if (fd < 0)
		return fd == -1;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

static int check_config(const struct virtio_console_params *cfg)
{
	uint32_t i;

	if (cfg->flags &
	    ~(uint32_t)(VIRTIO_CONSOLE_NO_MULTIPORT |
			VIRTIO_CONSOLE_NO_EMERG_WRITE | VIRTIO_CONSOLE_NO_SIZE |
			VIRTIO_CONSOLE_RESIZE_ROWS_FIRST))
		return -EINVAL;
	if (cfg->nr_ports >= VIRTIO_CONSOLE_MAX_PORTS ||
	    (cfg->nr_ports && !cfg->ports))
		return -EINVAL;
	if (cfg->nr_ports && (cfg->flags & VIRTIO_CONSOLE_NO_MULTIPORT))
		return -EINVAL;
	if (cfg->max_nr_ports && (cfg->max_nr_ports <= cfg->nr_ports ||
				  cfg->max_nr_ports > VIRTIO_CONSOLE_MAX_PORTS))
		return -EINVAL;
	if (cfg->max_nr_ports > 1 && (cfg->flags & VIRTIO_CONSOLE_NO_MULTIPORT))
		return -EINVAL;
	if (cfg->out_buffer_size > VIRTIO_CONSOLE_OUT_BUFFER_MAX)
		return -EINVAL;
	if (cfg->queue_max_size &&
	    (cfg->queue_max_size > VIRTQ_MAX_SIZE ||
	     (cfg->queue_max_size & (cfg->queue_max_size - 1))))
		return -EINVAL;
	for (i = 0; i < cfg->nr_ports; i++) {
		const struct virtio_console_port_config *pc = &cfg->ports[i];
		struct sockaddr_un sa;

		if (pc->name && strlen(pc->name) > VIRTIO_CONSOLE_NAME_MAX)
			return -EINVAL;
		if (pc->path && (pc->path[0] == '\0' ||
				 strlen(pc->path) >= sizeof(sa.sun_path)))
			return -EINVAL;
	}
	return 0;
}

static int port_init(struct virtio_console *c, struct vc_port *p, uint32_t id,
		     const struct virtio_console_port_config *pc,
		     uint32_t obuf_size)
{
	p->c = c;
	p->id = id;
	p->listen_fd = -1;
	p->conn_fd = -1;
	p->in_fd = p->out_fd = -1;
	if (id > c->nr_ports)
		return 0;
	p->configured = true;
	if (pc && pc->name && pc->name[0]) {
		p->name = strdup(pc->name);
		if (!p->name)
			return -ENOMEM;
	}
	if (pc && pc->path) {
		p->path = strdup(pc->path);
		if (!p->path)
			return -ENOMEM;
		p->server = pc->server;
		p->hold = virtq_chain_alloc(c->qsize);
		if (!p->hold)
			return -ENOMEM;
	}
	if (id == 0 || p->path) {
		p->obuf = malloc(obuf_size);
		if (!p->obuf)
			return -ENOMEM;
		p->ocap = obuf_size;
	}
	return 0;
}

int virtio_console_create(int in_fd, int out_fd,
			  const struct virtio_console_params *cfg,
			  struct virtio_console **out)
{
	static const struct virtio_console_params defaults;
	struct virtio_device_info info = {.device_id = VIRTIO_ID_CONSOLE};
	struct virtio_console_config vcc = {0}; /* config-space layout */
	struct virtio_console *c;
	uint64_t features = 0;
	uint32_t i;
	int err;

	if (!out || !fd_ok(in_fd) || !fd_ok(out_fd))
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	err = check_config(cfg);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->nr_ports = cfg->nr_ports;
	c->max_nr_ports = cfg->max_nr_ports ? cfg->max_nr_ports
					    : cfg->nr_ports + 1;
	c->flags = cfg->flags;
	c->qsize = cfg->queue_max_size ? cfg->queue_max_size : 256;
	c->size_known = cfg->cols && cfg->rows;
	c->cols = cfg->cols ? cfg->cols : VIRTIO_CONSOLE_DEFAULT_COLS;
	c->rows = cfg->rows ? cfg->rows : VIRTIO_CONSOLE_DEFAULT_ROWS;
	c->ports = calloc(c->max_nr_ports, sizeof(*c->ports));
	c->rx_chain = virtq_chain_alloc(c->qsize);
	c->tx_chain = virtq_chain_alloc(c->qsize);
	c->ctrl_chain = virtq_chain_alloc(c->qsize);
	if (!c->ports || !c->rx_chain || !c->tx_chain || !c->ctrl_chain) {
		console_free(c);
		return -ENOMEM;
	}
	for (i = 0; i < c->max_nr_ports; i++) {
		err = port_init(c, &c->ports[i], i,
				i == 0 || i > c->nr_ports ? NULL
							  : &cfg->ports[i - 1],
				cfg->out_buffer_size
					? cfg->out_buffer_size
					: VIRTIO_CONSOLE_OUT_BUFFER_DEFAULT);
		if (err) {
			console_free(c);
			return err;
		}
	}
	c->ports[0].in_fd = in_fd;
	c->ports[0].out_fd = out_fd;
	c->ports[0].in_sock = fd_is_socket(in_fd);
	c->ports[0].out_sock = fd_is_socket(out_fd);

	if (!(c->flags & VIRTIO_CONSOLE_NO_SIZE))
		features |= 1ull << VIRTIO_CONSOLE_F_SIZE;
	if (!(c->flags & VIRTIO_CONSOLE_NO_MULTIPORT))
		features |= 1ull << VIRTIO_CONSOLE_F_MULTIPORT;
	if (!(c->flags & VIRTIO_CONSOLE_NO_EMERG_WRITE))
		features |= 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE;
	info.num_queues = 2 * c->max_nr_ports + 2;
	info.queue_max_size = c->qsize;
	info.features = features;
	info.config_size = sizeof(vcc);
	err = virtio_device_create(&info, &console_ops, c, &c->vdev);
	if (err) {
		console_free(c);
		return err;
	}
	vcc.cols = htole16(c->cols);
	vcc.rows = htole16(c->rows);
	vcc.max_nr_ports = htole32(c->max_nr_ports);
	virtio_device_lock(c->vdev);
	err = virtio_device_config_set(c->vdev, 0, &vcc, sizeof(vcc), false);
	virtio_device_unlock(c->vdev);
	for (i = 1; !err && i <= c->nr_ports; i++) {
		struct vc_port *p = &c->ports[i];

		if (!p->path)
			continue;
		if (p->server) {
			err = port_listen(p);
		} else {
			virtio_device_lock(c->vdev);
			port_client_connect(p);
			port_update_poll(p); /* watch for a hang-up */
			virtio_device_unlock(c->vdev);
		}
	}
	if (err) {
		virtio_device_destroy(c->vdev); /* frees c (destroy op) */
		return err;
	}
	*out = c;
	return 0;
}

void virtio_console_destroy(struct virtio_console *c)
{
	if (!c)
		return;
	virtio_device_destroy(c->vdev); /* calls op_destroy: frees c */
}

struct virtio_device *virtio_console_device(struct virtio_console *c)
{
	return c ? c->vdev : NULL;
}

int virtio_console_set_size(struct virtio_console *c, uint16_t cols,
			    uint16_t rows)
{
	uint16_t sz[2] = {htole16(cols), htole16(rows)};
	struct vc_port *p;

	if (!c)
		return -EINVAL;
	virtio_device_lock(c->vdev);
	c->cols = cols;
	c->size_known = true;
	c->rows = rows;
	if (!(c->flags & VIRTIO_CONSOLE_NO_SIZE))
		virtio_device_config_set(c->vdev, 0, sz, sizeof(sz), true);
	p = &c->ports[0];
	if (c->multiport && p->console_sent) {
		port_pending(p, PEND_RESIZE);
		flush_ctrl(c);
	}
	virtio_device_unlock(c->vdev);
	return 0;
}

int virtio_console_port_connect(struct virtio_console *c, uint32_t port)
{
	struct vc_port *p;
	int r;

	if (!c || port == 0 || port > c->nr_ports)
		return -EINVAL;
	p = &c->ports[port];
	if (!p->path || p->server)
		return -EINVAL;
	virtio_device_lock(c->vdev);
	r = port_client_connect(p);
	port_service(p);
	virtio_device_unlock(c->vdev);
	return r;
}

int virtio_console_port_stats(struct virtio_console *c, uint32_t port,
			      struct virtio_console_port_stats *st)
{
	struct vc_port *p;

	if (!c || !st || port > c->nr_ports)
		return -EINVAL;
	p = &c->ports[port];
	virtio_device_lock(c->vdev);
	*st = p->st;
	st->host_connected = port_host_connected(p);
	st->guest_ready = p->ready;
	st->guest_open = p->guest_open;
	st->rx_stalled = p->rx_stalled;
	virtio_device_unlock(c->vdev);
	return 0;
}

int virtio_console_stats(struct virtio_console *c,
			 struct virtio_console_stats *st)
{
	if (!c || !st)
		return -EINVAL;
	virtio_device_lock(c->vdev);
	*st = c->st;
	virtio_device_unlock(c->vdev);
	return 0;
}
