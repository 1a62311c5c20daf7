/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-vsock device type (virtio 1.2, 5.10): stream connections between
 * the guest and host unix sockets.  See cvmm/devices/virtio-vsock.h for the
 * behaviour.  This file: the three queues, the ops and the public API;
 * vsock-conn.c: the connection table and its state machine.
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
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_ids.h>

#include "vsock-internal.h"

/* ------------------------------------------------------------ helpers */

bool vsock_live(struct virtio_vsock *v)
{
	return v->live && !virtio_device_needs_reset(v->vdev);
}

/* The next connection with a packet to send, round robin; NULL: none. */
static struct vs_conn *next_rx_conn(struct virtio_vsock *v)
{
	for (uint32_t k = 0; k < v->max_conns; k++) {
		uint32_t i = (v->rr + k) % v->max_conns;

		if (vsock_conn_has_rx(&v->conns[i])) {
			v->rr = (i + 1) % v->max_conns;
			return &v->conns[i];
		}
	}
	return NULL;
}

void vsock_rx_pump(struct virtio_vsock *v)
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

			vsock_hdr_fill(v, &h, o->host_port, o->guest_port,
				       VIRTIO_VSOCK_OP_RST);
			if (VIRTQ_CHAIN_WRITE_OBJ(ch, &h) < 0)
				break;
			v->orph_head = (v->orph_head + 1) %
				       VIRTIO_VSOCK_ORPHAN_RST_MAX;
			v->orph_len--;
			v->st.rst_sent++;
			len = (int)HDR_LEN;
		} else {
			len = vsock_conn_fill_rx(c, ch);
			if (len < 0)
				break;
		}
		if (len == 0) {
			virtq_undo_pop(q, ch);
			if (c->state != CS_FREE)
				vsock_conn_update_poll(c);
			if (++idle > v->max_conns)
				break;
			continue;
		}
		idle = 0;
		if (virtq_complete_len(q, ch, (uint32_t)len) < 0)
			break;
		if (c && c->state != CS_FREE)
			vsock_conn_update_poll(c);
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
	vsock_close_all(v);
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
	if (v->timer_fd >= 0)
		close(v->timer_fd);
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
	v->timer_fd = -1;
	v->handshake_ns =
		(uint64_t)(cfg->connect_timeout_ms
				   ? cfg->connect_timeout_ms
				   : VIRTIO_VSOCK_CONNECT_TIMEOUT_DEFAULT_MS) *
		1000000ull;
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
	vsock_close_all(v);
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
