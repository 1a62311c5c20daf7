/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net device type (virtio 1.2, 5.1): queue pairs served by a
 * backend (struct virtio_net_backend_ops), the control queue (RX modes,
 * MAC tables and address, MQ pairs), link status.  See
 * cvmm/devices/virtio-net.h for the behaviour.
 *
 * Every function here runs with the device lock held (ops, ready
 * functions, or a public function between lock and unlock), except
 * create and the destroy op.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_net.h>

#include <cvmm/devices/virtio-net.h>

#define F(bit)	       (1ull << (bit))
#define RX_HOLD_MAX    64u  /* chains popped ahead per receive queue */
#define CHAIN_IOV_MAX  64   /* iovecs per receive chain */
#define NET_IOV_MAX    1024 /* iovecs per frame (the kernel's limit) */
#define MAC_TABLE_MAX  64u  /* stored entries, unicast + multicast */
#define ETH_HDR	       14u
#define CONFIG_SIZE    12u /* mac, status, max_virtqueue_pairs, mtu */
#define CFG_STATUS_OFF 6u
#define CFG_PAIRS_OFF  8u
#define CFG_MTU_OFF    10u

/* One entry of the device's poll list. */
struct net_pollent {
	int fd;
	uint32_t events;
	unsigned id;
	bool added;
};

/* A receive chain popped ahead, its writable buffers exported. */
struct rx_held {
	struct virtq_chain *c;
	struct iovec iov[CHAIN_IOV_MAX];
	int niov;
	uint32_t len;
};

struct net_pair {
	struct virtio_net *n;
	uint32_t idx;
	bool open;	 /* the backend pair is open (pair < cur_pairs) */
	bool rx_stalled; /* waiting for the driver to post buffers */
	bool rx_eof;	 /* the backend's recv returned 0: none ever again */
	bool tx_blocked; /* holding tx_chain until the backend can take it */
	struct rx_held *held; /* ring of RX_HOLD_MAX */
	uint32_t hhead, nheld;
	struct iovec *rx_iov; /* NET_IOV_MAX */
	uint8_t scratch[64];  /* detects frames larger than the buffers */
	struct virtq_chain *tx_chain;
	struct iovec *tx_iov; /* NET_IOV_MAX */
	int tx_niov;
	uint32_t tx_len; /* frame bytes, header excluded */
	struct virtio_net_hdr_v1 tx_hdr;
	struct net_pollent pe[2];
	struct virtio_net_queue_stats st;
};

struct virtio_net {
	struct virtio_device *vdev;
	const struct virtio_net_backend_ops *ops;
	void *be;
	uint32_t max_pairs, qsize, mtu;
	uint64_t feat; /* negotiated (FEATURES_OK), 0 after a reset */
	bool be_hdr;   /* the backend takes virtio-net headers */
	bool live;     /* activated (DRIVER_OK) and not reset since */
	bool link_up;
	uint32_t cur_pairs;
	uint8_t mac_default[6];
	/* receive filter */
	bool promisc, allmulti, uni_overflow, multi_overflow;
	uint8_t mac[6];
	uint32_t n_uni, n_multi; /* stored entries: uni first in macs */
	uint8_t macs[MAC_TABLE_MAX][6];
	struct virtq_chain *ctrl_chain;
	struct vring_used_elem *elems; /* RX_HOLD_MAX */
	struct net_pair *pairs;
};

/* ------------------------------------------------------------- helpers */

static bool has(const struct virtio_net *n, unsigned bit)
{
	return n->feat & F(bit);
}

static bool net_live(const struct virtio_net *n)
{
	uint8_t st = virtio_device_status(n->vdev);

	return n->live && (st & VIRTIO_DEVICE_STATUS_DRIVER_OK) &&
	       !(st & (VIRTIO_DEVICE_STATUS_NEEDS_RESET |
		       VIRTIO_DEVICE_STATUS_FAILED));
}

static uint32_t ctrl_queue(const struct virtio_net *n)
{
	return has(n, VIRTIO_NET_F_MQ) ? 2 * n->max_pairs : 2;
}

/* Copy @len bytes at @off of the iovec array into/out of @buf. */
static void iov_copy(const struct iovec *iov, int cnt, size_t off, void *buf,
		     size_t len, bool to_iov)
{
	uint8_t *b = buf;

	for (int i = 0; i < cnt && len; i++) {
		size_t l = iov[i].iov_len, k;

		if (off >= l) {
			off -= l;
			continue;
		}
		k = l - off < len ? l - off : len;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, b, k);
		else
			memcpy(b, (uint8_t *)iov[i].iov_base + off, k);
		b += k;
		len -= k;
		off = 0;
	}
}

/* Drop the first @skip bytes of @iov (@cnt entries) in place; returns the
 * new count (the array start may move: *@start receives it). */
static int iov_skip(struct iovec *iov, int cnt, size_t skip,
		    struct iovec **start)
{
	int i = 0;

	while (i < cnt && skip >= iov[i].iov_len) {
		skip -= iov[i].iov_len;
		i++;
	}
	if (i < cnt && skip) {
		iov[i].iov_base = (uint8_t *)iov[i].iov_base + skip;
		iov[i].iov_len -= skip;
	}
	*start = iov + i;
	return cnt - i;
}

/* ----------------------------------------------------------- poll list */

static void pair_ready(void *opaque, uint32_t revents);

static void pollent_set(struct net_pair *p, struct net_pollent *pe, int fd,
			uint32_t events)
{
	struct virtio_poll_fd pfd;

	if (fd < 0)
		events = 0;
	if (pe->added && pe->fd == fd && pe->events == events)
		return;
	if (pe->added) {
		virtio_device_remove_poll_fd(p->n->vdev, pe->id);
		pe->added = false;
	}
	if (!events)
		return;
	pfd = (struct virtio_poll_fd){
		.fd = fd, .events = events, .ready = pair_ready, .opaque = p};
	if (virtio_device_add_poll_fd(p->n->vdev, &pfd, &pe->id) == 0) {
		pe->added = true;
		pe->fd = fd;
		pe->events = events;
	}
}

static void pair_update_poll(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	int rfd = -1, tfd = -1;
	uint32_t rev = 0, tev = 0;

	if (p->open && net_live(n)) {
		rfd = n->ops->rx_fd(n->be, p->idx);
		tfd = n->ops->tx_fd ? n->ops->tx_fd(n->be, p->idx) : -1;
		if (!p->rx_stalled && !p->rx_eof && n->link_up)
			rev = POLLIN;
		if (p->tx_blocked)
			tev = POLLOUT;
	}
	if (rfd >= 0 && rfd == tfd) {
		pollent_set(p, &p->pe[0], rfd, rev | tev);
		pollent_set(p, &p->pe[1], -1, 0);
	} else {
		pollent_set(p, &p->pe[0], rfd, rev);
		pollent_set(p, &p->pe[1], tfd, tev);
	}
}

static void update_polls(struct virtio_net *n)
{
	for (uint32_t i = 0; i < n->max_pairs; i++)
		pair_update_poll(&n->pairs[i]);
}

/* ------------------------------------------------------ receive filter */

static bool mac_in(const struct virtio_net *n, const uint8_t *d, uint32_t from,
		   uint32_t count)
{
	for (uint32_t i = from; i < from + count; i++)
		if (!memcmp(n->macs[i], d, 6))
			return true;
	return false;
}

static bool rx_accept(const struct virtio_net *n, const uint8_t d[6])
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	if (n->promisc)
		return true;
	if (d[0] & 1) {
		if (!memcmp(d, bcast, 6) || n->allmulti || n->multi_overflow)
			return true;
		return mac_in(n, d, n->n_uni, n->n_multi);
	}
	if (!memcmp(d, n->mac, 6) || n->uni_overflow)
		return true;
	return mac_in(n, d, 0, n->n_uni);
}

static void rx_filter_reset(struct virtio_net *n)
{
	n->promisc = true; /* until the driver sets a mode */
	n->allmulti = false;
	n->uni_overflow = n->multi_overflow = false;
	n->n_uni = n->n_multi = 0;
	memcpy(n->mac, n->mac_default, 6);
}

/* ------------------------------------------------------------- receive */

static struct rx_held *held_at(struct net_pair *p, uint32_t i)
{
	return &p->held[(p->hhead + i) % RX_HOLD_MAX];
}

static uint32_t rx_need(const struct virtio_net *n)
{
	if (has(n, VIRTIO_NET_F_GUEST_TSO4) ||
	    has(n, VIRTIO_NET_F_GUEST_TSO6) || has(n, VIRTIO_NET_F_GUEST_UFO))
		return VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME;
	return VIRTIO_NET_HDR_LEN + (n->mtu ? n->mtu : 1500) + 18;
}

/* Pop one more receive chain into the hold ring: 1 popped, 0 none, < 0
 * the queue is unusable (not ready, broken). */
static int rx_pop(struct net_pair *p, struct virtq *q, uint32_t need)
{
	for (;;) {
		struct rx_held *h = held_at(p, p->nheld);
		uint32_t len;
		int r = virtq_pop(q, h->c), niov;

		if (r <= 0)
			return r;
		len = virtq_chain_writable(h->c);
		if (len > need)
			len = need;
		niov = len ? virtq_chain_writable_iov(h->c, len, h->iov,
						      CHAIN_IOV_MAX)
			   : 0;
		if (niov == -EIO)
			return -EIO;
		if (niov <= 0) {
			/* no writable byte, or too fragmented: give it back
			 * empty and count it */
			p->st.rx_errors++;
			if (virtq_complete_len(q, h->c, 0) < 0)
				return -EIO;
			virtio_device_queue_used(p->n->vdev, 2 * p->idx);
			continue;
		}
		h->niov = niov;
		h->len = len;
		p->nheld++;
		return 1;
	}
}

/* The held chains' iovecs in order, as many as fit NET_IOV_MAX - 1
 * entries (one is kept for the scratch); *@total receives their bytes. */
static int rx_build_iov(struct net_pair *p, struct iovec *iov, uint32_t *total)
{
	int cnt = 0;

	*total = 0;
	for (uint32_t i = 0; i < p->nheld; i++) {
		struct rx_held *h = held_at(p, i);

		if (cnt + h->niov > NET_IOV_MAX - 1)
			break;
		memcpy(iov + cnt, h->iov, sizeof(*iov) * (size_t)h->niov);
		cnt += h->niov;
		*total += h->len;
	}
	return cnt;
}

static void net_rx(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	uint32_t qi = 2 * p->idx;
	struct virtq *q = virtio_device_queue(n->vdev, qi);
	uint32_t need, budget, hold_max;
	bool mrg, used = false;

	if (!q || !p->open || !net_live(n) || !n->link_up || p->rx_stalled ||
	    p->rx_eof)
		return;
	need = rx_need(n);
	mrg = has(n, VIRTIO_NET_F_MRG_RXBUF);
	hold_max = mrg ? RX_HOLD_MAX : 1;
	if (hold_max > virtq_size(q))
		hold_max = virtq_size(q);
	budget = virtq_size(q);
	for (uint32_t f = 0; f < budget; f++) {
		uint32_t total = 0, itotal, k, rem;
		struct iovec *iov = p->rx_iov, *rd;
		int cnt = 0, rcnt;
		bool exhausted = false;
		ssize_t got;
		size_t flen;
		uint8_t dst[6];
		uint16_t nb;

		for (uint32_t i = 0; i < p->nheld; i++)
			total += held_at(p, i)->len;
		while (total < need && p->nheld < hold_max) {
			int r = rx_pop(p, q, need);

			if (r == 0) {
				if (virtq_enable_notification(q))
					continue;
				exhausted = true;
				break;
			}
			if (r < 0) {
				p->rx_stalled = true; /* until ready/notify */
				goto out;
			}
			total += held_at(p, p->nheld - 1)->len;
		}
		if (p->nheld == 0 ||
		    (mrg && exhausted && total < need && p->nheld < hold_max)) {
			/* too few buffers: stop reading until a kick */
			p->rx_stalled = true;
			p->st.rx_no_buffers++;
			break;
		}
		cnt = rx_build_iov(p, iov, &itotal);
		/* a scratch iovec after the guest's buffers: a backend that
		 * truncates silently (tap) then still reports more bytes
		 * than the buffers hold for a frame that does not fit */
		iov[cnt] = (struct iovec){p->scratch, sizeof(p->scratch)};
		if (n->be_hdr) {
			got = n->ops->recv(n->be, p->idx, iov, cnt + 1);
			flen = got < 0 ? 0 : (size_t)got;
		} else {
			rcnt = iov_skip(iov, cnt + 1, VIRTIO_NET_HDR_LEN, &rd);
			got = n->ops->recv(n->be, p->idx, rd, rcnt);
			flen = got < 0 ? 0 : (size_t)got + VIRTIO_NET_HDR_LEN;
			/* the skip edited the array: rebuild it */
			cnt = rx_build_iov(p, iov, &itotal);
		}
		if (got == -EAGAIN || got == -EWOULDBLOCK)
			break;
		if (got == -EINTR)
			continue;
		if (got == 0) {
			/* end of file: stop polling it (no busy loop on a
			 * hung-up peer) until the pair is opened again */
			p->rx_eof = true;
			p->st.rx_errors++;
			break;
		}
		if (got < 0 || flen < VIRTIO_NET_HDR_LEN + ETH_HDR) {
			p->st.rx_errors++;
			continue;
		}
		if (flen > itotal) {
			p->st.rx_oversize++; /* buffers stay for the next */
			continue;
		}
		if (!n->be_hdr) {
			struct virtio_net_hdr_v1 z = {0};

			iov_copy(iov, cnt, 0, &z, sizeof(z), true);
		}
		iov_copy(iov, cnt, VIRTIO_NET_HDR_LEN, dst, 6, false);
		if (!rx_accept(n, dst)) {
			p->st.rx_filtered++;
			continue;
		}
		rem = (uint32_t)flen;
		for (k = 0; k < p->nheld && rem; k++) {
			struct rx_held *h = held_at(p, k);
			uint32_t l = h->len < rem ? h->len : rem;

			n->elems[k].id = h->c->head;
			n->elems[k].len = l;
			rem -= l;
		}
		nb = htole16((uint16_t)k);
		iov_copy(iov, cnt,
			 offsetof(struct virtio_net_hdr_v1, num_buffers), &nb,
			 sizeof(nb), true);
		if (virtq_add_used_batch(q, n->elems, k) < 0) {
			p->rx_stalled = true;
			goto out;
		}
		p->hhead = (p->hhead + k) % RX_HOLD_MAX;
		p->nheld -= k;
		p->st.rx_packets++;
		p->st.rx_bytes += flen - VIRTIO_NET_HDR_LEN;
		used = true;
	}
out:
	if (used)
		virtio_device_queue_used(n->vdev, qi);
}

/* ------------------------------------------------------------ transmit */

/* Check the chain just popped and build the frame's iovecs: 0, -EINVAL
 * for a malformed frame, -EIO when the queue broke. */
static int tx_prepare(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	struct virtq_chain *c = p->tx_chain;
	struct virtio_net_hdr_v1 *h = &p->tx_hdr;
	uint32_t rd = virtq_chain_readable(c), flen;
	uint8_t gso;
	int r, off = 0;

	if (rd < VIRTIO_NET_HDR_LEN)
		return -EINVAL;
	flen = rd - VIRTIO_NET_HDR_LEN;
	if (flen > VIRTIO_NET_MAX_FRAME || flen < ETH_HDR)
		return -EINVAL;
	r = virtq_chain_read_exact(c, h, VIRTIO_NET_HDR_LEN);
	if (r)
		return r == -EIO ? -EIO : -EINVAL;
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return -EINVAL;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!has(n, VIRTIO_NET_F_CSUM))
			return -EINVAL;
		if ((uint32_t)le16toh(h->csum_start) + le16toh(h->csum_offset) +
			    2 >
		    flen)
			return -EINVAL;
	}
	gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 &&
		     !has(n, VIRTIO_NET_F_HOST_TSO4)) ||
		    (gso == VIRTIO_NET_HDR_GSO_TCPV6 &&
		     !has(n, VIRTIO_NET_F_HOST_TSO6)) ||
		    (gso == VIRTIO_NET_HDR_GSO_UDP &&
		     !has(n, VIRTIO_NET_F_HOST_UFO)))
			return -EINVAL;
		if (gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
		    gso != VIRTIO_NET_HDR_GSO_TCPV6 &&
		    gso != VIRTIO_NET_HDR_GSO_UDP)
			return -EINVAL;
		if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
		    !has(n, VIRTIO_NET_F_HOST_ECN))
			return -EINVAL;
		if (le16toh(h->gso_size) == 0 || le16toh(h->hdr_len) >= flen)
			return -EINVAL;
	}
	h->num_buffers = 0;
	if (n->be_hdr) {
		p->tx_iov[0] = (struct iovec){h, VIRTIO_NET_HDR_LEN};
		off = 1;
	}
	r = virtq_chain_readable_iov(c, flen, p->tx_iov + off,
				     NET_IOV_MAX - off);
	if (r == -EIO)
		return -EIO;
	if (r <= 0)
		return -EINVAL; /* too fragmented */
	p->tx_niov = r + off;
	p->tx_len = flen;
	return 0;
}

static void net_tx(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	uint32_t qi = 2 * p->idx + 1;
	struct virtq *q = virtio_device_queue(n->vdev, qi);
	uint32_t budget, done = 0;
	bool used = false, kick = false;

	if (!q || !p->open || !net_live(n))
		return;
	budget = virtq_size(q);
	for (;;) {
		ssize_t s;

		if (!p->tx_blocked) {
			int r;

			if (done >= budget) {
				kick = virtq_avail_count(q) > 0;
				break;
			}
			r = virtq_pop(q, p->tx_chain);
			if (r == 0 && virtq_enable_notification(q))
				r = virtq_pop(q, p->tx_chain);
			if (r <= 0)
				break;
			done++;
			r = tx_prepare(p);
			if (r == -EIO)
				break;
			if (r < 0 || !n->link_up) {
				if (r < 0)
					p->st.tx_errors++;
				else
					p->st.tx_dropped++;
				if (virtq_complete_len(q, p->tx_chain, 0) < 0)
					break;
				used = true;
				continue;
			}
		}
		s = n->ops->send(n->be, p->idx, p->tx_iov, p->tx_niov);
		if (s == -EAGAIN || s == -EWOULDBLOCK) {
			p->tx_blocked = true;
			break;
		}
		if (s == -EINTR)
			continue;
		p->tx_blocked = false;
		if (s < 0) {
			p->st.tx_dropped++;
		} else {
			p->st.tx_packets++;
			p->st.tx_bytes += p->tx_len;
		}
		if (virtq_complete_len(q, p->tx_chain, 0) < 0)
			break;
		used = true;
	}
	if (used)
		virtio_device_queue_used(n->vdev, qi);
	if (kick)
		virtio_device_queue_kick(n->vdev, qi);
}

static void pair_ready(void *opaque, uint32_t revents)
{
	struct net_pair *p = opaque;

	(void)revents;
	if (p->tx_blocked)
		net_tx(p);
	net_rx(p);
	pair_update_poll(p);
}

/* ------------------------------------------------------ queue pairs */

static void pair_close(struct net_pair *p)
{
	struct virtio_net *n = p->n;

	if (p->open && n->ops->rings_stop)
		n->ops->rings_stop(n->be, p->idx);
	if (p->open && n->ops->close_queue_pair)
		n->ops->close_queue_pair(n->be, p->idx);
	p->open = false;
	p->tx_blocked = false;
	p->rx_stalled = false;
	p->rx_eof = false;
}

/* Use pairs [0, @want): open the new ones, close the others. */
static int set_pairs(struct virtio_net *n, uint32_t want)
{
	uint32_t i;

	for (i = n->cur_pairs; i < want; i++) {
		struct net_pair *p = &n->pairs[i];

		if (n->ops->open_queue_pair) {
			int r = n->ops->open_queue_pair(n->be, i);

			if (r < 0) {
				while (i-- > n->cur_pairs)
					pair_close(&n->pairs[i]);
				return r;
			}
		}
		if (n->ops->rings_start) {
			int r = n->ops->rings_start(n->be, i, n->vdev);

			if (r < 0) {
				if (n->ops->close_queue_pair)
					n->ops->close_queue_pair(n->be, i);
				while (i-- > n->cur_pairs)
					pair_close(&n->pairs[i]);
				return r;
			}
		}
		p->open = true;
		p->rx_stalled = false;
		p->rx_eof = false;
		p->tx_blocked = false;
	}
	for (i = want; i < n->cur_pairs; i++)
		pair_close(&n->pairs[i]);
	n->cur_pairs = want;
	return 0;
}

/* ------------------------------------------------------- control queue */

static uint8_t ctrl_mac_table(struct virtio_net *n, struct virtq_chain *c)
{
	uint8_t tmp[MAC_TABLE_MAX][6];
	uint32_t stored = 0, counts[2];
	bool over[2] = {false, false};

	for (int t = 0; t < 2; t++) {
		uint32_t e;

		if (virtq_chain_read_exact(c, &e, 4))
			return VIRTIO_NET_ERR;
		e = le32toh(e);
		if (e > virtq_chain_readable(c) / 6)
			return VIRTIO_NET_ERR;
		counts[t] = 0;
		for (uint32_t i = 0; i < e; i++) {
			uint8_t m[6];

			if (virtq_chain_read_exact(c, m, 6))
				return VIRTIO_NET_ERR;
			if (stored == MAC_TABLE_MAX) {
				over[t] = true;
				continue;
			}
			memcpy(tmp[stored++], m, 6);
			counts[t]++;
		}
	}
	memcpy(n->macs, tmp, sizeof(tmp[0]) * stored);
	n->n_uni = counts[0];
	n->n_multi = counts[1];
	n->uni_overflow = over[0];
	n->multi_overflow = over[1];
	return VIRTIO_NET_OK;
}

static uint8_t ctrl_cmd(struct virtio_net *n, struct virtq_chain *c,
			uint8_t cls, uint8_t cmd)
{
	switch (cls) {
	case VIRTIO_NET_CTRL_RX: {
		uint8_t on;

		if (!has(n, VIRTIO_NET_F_CTRL_RX) ||
		    (cmd != VIRTIO_NET_CTRL_RX_PROMISC &&
		     cmd != VIRTIO_NET_CTRL_RX_ALLMULTI) ||
		    virtq_chain_read_exact(c, &on, 1))
			return VIRTIO_NET_ERR;
		if (cmd == VIRTIO_NET_CTRL_RX_PROMISC)
			n->promisc = on != 0;
		else
			n->allmulti = on != 0;
		return VIRTIO_NET_OK;
	}
	case VIRTIO_NET_CTRL_MAC:
		if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET &&
		    has(n, VIRTIO_NET_F_CTRL_RX))
			return ctrl_mac_table(n, c);
		if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET &&
		    has(n, VIRTIO_NET_F_CTRL_MAC_ADDR)) {
			uint8_t m[6];
			uint8_t *cfg = virtio_device_config_data(n->vdev);

			if (virtq_chain_read_exact(c, m, 6))
				return VIRTIO_NET_ERR;
			memcpy(n->mac, m, 6);
			memcpy(cfg, m, 6);
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MQ: {
		uint16_t v;

		if (!has(n, VIRTIO_NET_F_MQ) ||
		    cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ||
		    virtq_chain_read_exact(c, &v, 2))
			return VIRTIO_NET_ERR;
		v = le16toh(v);
		if (v < 1 || v > n->max_pairs)
			return VIRTIO_NET_ERR;
		if (set_pairs(n, v) < 0)
			return VIRTIO_NET_ERR;
		return VIRTIO_NET_OK;
	}
	default:
		return VIRTIO_NET_ERR;
	}
}

static void net_ctrl(struct virtio_net *n)
{
	uint32_t qi = ctrl_queue(n);
	struct virtq *q = virtio_device_queue(n->vdev, qi);
	struct virtq_chain *c = n->ctrl_chain;
	uint32_t budget, done;
	bool used = false, kick = false;

	if (!q || !net_live(n))
		return;
	budget = virtq_size(q);
	for (done = 0;; done++) {
		struct virtio_net_ctrl_hdr h;
		uint8_t ack = VIRTIO_NET_ERR;
		int r;

		if (done >= budget) {
			kick = virtq_avail_count(q) > 0;
			break;
		}
		r = virtq_pop(q, c);
		if (r == 0 && virtq_enable_notification(q))
			r = virtq_pop(q, c);
		if (r <= 0)
			break;
		r = VIRTQ_CHAIN_READ_OBJ(c, &h);
		if (r == -EIO)
			break;
		if (r == 0 && virtq_chain_writable(c) > 0)
			ack = ctrl_cmd(n, c, h.class, h.cmd);
		if (virtq_is_broken(q))
			break;
		if (virtq_chain_writable(c) > 0 &&
		    virtq_chain_write(c, &ack, 1) < 0)
			break;
		if (virtq_complete(q, c) < 0)
			break;
		used = true;
	}
	if (used)
		virtio_device_queue_used(n->vdev, qi);
	if (kick)
		virtio_device_queue_kick(n->vdev, qi);
	update_polls(n);
}

/* ------------------------------------------------------------------ ops */

static int op_features_ok(void *opaque, uint64_t f)
{
	struct virtio_net *n = opaque;
	bool ctrl = f & F(VIRTIO_NET_F_CTRL_VQ);

	if ((f & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |
		  F(VIRTIO_NET_F_GUEST_UFO))) &&
	    !(f & F(VIRTIO_NET_F_GUEST_CSUM)))
		return -EINVAL;
	if ((f & F(VIRTIO_NET_F_GUEST_ECN)) &&
	    !(f & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6))))
		return -EINVAL;
	if ((f & (F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |
		  F(VIRTIO_NET_F_HOST_UFO))) &&
	    !(f & F(VIRTIO_NET_F_CSUM)))
		return -EINVAL;
	if ((f & F(VIRTIO_NET_F_HOST_ECN)) &&
	    !(f & (F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6))))
		return -EINVAL;
	if (!ctrl && (f & (F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_NET_F_MQ) |
			   F(VIRTIO_NET_F_CTRL_MAC_ADDR))))
		return -EINVAL;
	if (n->be_hdr) {
		int r = n->ops->set_vnet_hdr_size(n->be, VIRTIO_NET_HDR_LEN);

		if (r < 0)
			return r;
		if (n->ops->set_offloads) {
			r = n->ops->set_offloads(n->be, f);
			if (r < 0)
				return r;
		}
	}
	n->feat = f;
	return 0;
}

static int op_activate(void *opaque)
{
	struct virtio_net *n = opaque;
	int r;

	n->live = true;
	r = set_pairs(n, 1);
	if (r < 0) {
		n->live = false;
		return r;
	}
	update_polls(n);
	return 0;
}

static void op_queue_ready(void *opaque, uint16_t queue, bool ready)
{
	struct virtio_net *n = opaque;
	uint32_t pi = queue / 2u;

	if (queue == ctrl_queue(n) || pi >= n->max_pairs)
		return;
	if (queue % 2 == 0) {
		n->pairs[pi].rx_stalled = false;
		if (!ready)
			n->pairs[pi].nheld = 0;
	} else if (!ready) {
		n->pairs[pi].tx_blocked = false;
	}
	pair_update_poll(&n->pairs[pi]);
}

static void op_queue_notify(void *opaque, uint16_t queue)
{
	struct virtio_net *n = opaque;
	struct net_pair *p;

	if (queue == ctrl_queue(n)) {
		net_ctrl(n);
		return;
	}
	if (queue / 2u >= n->cur_pairs)
		return; /* a pair the driver does not use */
	/* Rings the backend serves (vhost-net): pass the kick on. */
	if (n->ops->rings_start) {
		n->ops->rings_notify(n->be, queue / 2u, queue);
		return;
	}
	p = &n->pairs[queue / 2u];
	if (queue % 2 == 0) {
		p->rx_stalled = false;
		net_rx(p);
	} else if (!p->tx_blocked) {
		net_tx(p);
	}
	pair_update_poll(p);
}

static void op_reset(void *opaque)
{
	struct virtio_net *n = opaque;

	/* Synchronous device: nothing is in flight in the backend; held
	 * chains are forgotten (the queues are reset after this). */
	for (uint32_t i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		pair_close(p);
		p->nheld = 0;
		p->hhead = 0;
	}
	n->cur_pairs = 0;
	n->live = false;
	n->feat = 0;
	update_polls(n);
	if (n->be_hdr && n->ops->set_offloads)
		n->ops->set_offloads(n->be, 0);
	rx_filter_reset(n);
	virtio_device_config_set(n->vdev, 0, n->mac_default, 6, false);
}

static void net_free(struct virtio_net *n)
{
	if (n->pairs) {
		for (uint32_t i = 0; i < n->max_pairs; i++) {
			struct net_pair *p = &n->pairs[i];

			if (p->held)
				for (uint32_t j = 0; j < RX_HOLD_MAX; j++)
					virtq_chain_free(p->held[j].c);
			free(p->held);
			free(p->rx_iov);
			free(p->tx_iov);
			virtq_chain_free(p->tx_chain);
		}
	}
	free(n->pairs);
	free(n->elems);
	virtq_chain_free(n->ctrl_chain);
	free(n);
}

static void op_destroy(void *opaque)
{
	struct virtio_net *n = opaque;

	if (n->ops->destroy)
		n->ops->destroy(n->be);
	net_free(n);
}

static const struct virtio_device_ops net_ops = {
	.features_ok = op_features_ok,
	.activate = op_activate,
	.queue_ready = op_queue_ready,
	.queue_notify = op_queue_notify,
	.reset = op_reset,
	.destroy = op_destroy,
};

static void aux_ready(void *opaque, uint32_t revents)
{
	struct virtio_net *n = opaque;

	n->ops->aux_ready(n->be, revents);
	for (uint32_t i = 0; i < n->cur_pairs; i++)
		net_rx(&n->pairs[i]);
	update_polls(n);
}

/* ----------------------------------------------------------- life cycle */

static int net_alloc(struct virtio_net *n)
{
	n->pairs = calloc(n->max_pairs, sizeof(*n->pairs));
	n->elems = calloc(RX_HOLD_MAX, sizeof(*n->elems));
	n->ctrl_chain = virtq_chain_alloc(n->qsize);
	if (!n->pairs || !n->elems || !n->ctrl_chain)
		return -ENOMEM;
	for (uint32_t i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		p->n = n;
		p->idx = i;
		p->held = calloc(RX_HOLD_MAX, sizeof(*p->held));
		p->rx_iov = calloc(NET_IOV_MAX, sizeof(*p->rx_iov));
		p->tx_iov = calloc(NET_IOV_MAX, sizeof(*p->tx_iov));
		p->tx_chain = virtq_chain_alloc(n->qsize);
		if (!p->held || !p->rx_iov || !p->tx_iov || !p->tx_chain)
			return -ENOMEM;
		for (uint32_t j = 0; j < RX_HOLD_MAX; j++) {
			p->held[j].c = virtq_chain_alloc(n->qsize);
			if (!p->held[j].c)
				return -ENOMEM;
		}
	}
	return 0;
}

int virtio_net_create(const struct virtio_net_backend_ops *ops, void *be,
		      const struct virtio_net_options *opts,
		      struct virtio_net **out)
{
	static const uint8_t zero[6];
	struct virtio_net_options o = {0};
	struct virtio_device_info info = {0};
	struct virtio_net *n;
	uint64_t feat;
	uint16_t v;
	int ret;

	if (!ops || !ops->rx_fd || !out)
		return -EINVAL;
	/* Frames moved by the device, or rings served by the backend. */
	if (ops->rings_start ? !ops->rings_stop || !ops->rings_notify
			     : !ops->recv || !ops->send)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (!o.max_pairs)
		o.max_pairs = 1;
	if (!o.queue_size)
		o.queue_size = 256;
	if (o.max_pairs > VIRTIO_NET_MAX_PAIRS || o.queue_size < 2 ||
	    o.queue_size > VIRTQ_MAX_SIZE ||
	    (o.queue_size & (o.queue_size - 1)) ||
	    (o.mtu && (o.mtu < 68 || o.mtu > 65535)) ||
	    (ops->aux_fd && !ops->aux_ready))
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->ops = ops;
	n->be = be;
	n->max_pairs = o.max_pairs;
	n->qsize = o.queue_size;
	n->mtu = o.mtu;
	n->link_up = !o.link_down;
	memcpy(n->mac_default, o.mac, 6);
	rx_filter_reset(n);
	ret = net_alloc(n);
	if (ret) {
		net_free(n);
		return ret;
	}
	n->be_hdr = ops->set_vnet_hdr_size &&
		    ops->set_vnet_hdr_size(be, VIRTIO_NET_HDR_LEN) == 0;
	feat = F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF) |
	       F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |
	       F(VIRTIO_NET_F_CTRL_MAC_ADDR);
	if (memcmp(o.mac, zero, 6))
		feat |= F(VIRTIO_NET_F_MAC);
	if (o.mtu)
		feat |= F(VIRTIO_NET_F_MTU);
	if (o.max_pairs > 1)
		feat |= F(VIRTIO_NET_F_MQ);
	if (n->be_hdr && ops->offloads)
		feat |= ops->offloads(be) & VIRTIO_NET_OFFLOAD_FEATURES;
	feat &= ~o.no_features;
	if (ops->ring_features) {
		uint64_t rf = ops->ring_features(be);

		if (!(rf & F(VIRTIO_DEVICE_F_VERSION_1))) { /* modern only */
			net_free(n);
			return -ENOTSUP;
		}
		if (!(rf & F(VIRTIO_NET_F_MRG_RXBUF)))
			feat &= ~F(VIRTIO_NET_F_MRG_RXBUF);
		if (!(rf & F(VIRTIO_DEVICE_F_INDIRECT_DESC)))
			info.flags |= VIRTIO_DEVICE_NO_INDIRECT;
		if (!(rf & F(VIRTIO_DEVICE_F_EVENT_IDX)))
			info.flags |= VIRTIO_DEVICE_NO_EVENT_IDX;
	}
	info.device_id = VIRTIO_NET_DEVICE_ID;
	info.num_queues = 2 * o.max_pairs + 1;
	info.queue_max_size = o.queue_size;
	info.features = feat;
	info.config_size = CONFIG_SIZE;
	ret = virtio_device_create(&info, &net_ops, n, &n->vdev);
	if (ret) {
		net_free(n);
		return ret;
	}
	virtio_device_lock(n->vdev);
	virtio_device_config_set(n->vdev, 0, o.mac, 6, false);
	v = htole16(n->link_up ? VIRTIO_NET_S_LINK_UP : 0);
	virtio_device_config_set(n->vdev, CFG_STATUS_OFF, &v, 2, false);
	v = htole16((uint16_t)o.max_pairs);
	virtio_device_config_set(n->vdev, CFG_PAIRS_OFF, &v, 2, false);
	v = htole16((uint16_t)o.mtu);
	virtio_device_config_set(n->vdev, CFG_MTU_OFF, &v, 2, false);
	virtio_device_unlock(n->vdev);
	if (ops->aux_fd && ops->aux_fd(be) >= 0) {
		struct virtio_poll_fd pfd = {
			.fd = ops->aux_fd(be),
			.events = POLLIN,
			.ready = aux_ready,
			.opaque = n,
		};

		ret = virtio_device_add_poll_fd(n->vdev, &pfd, NULL);
		if (ret) {
			/* the backend stays the caller's */
			n->ops = &(const struct virtio_net_backend_ops){
				.recv = ops->recv};
			virtio_device_destroy(n->vdev);
			return ret;
		}
	}
	*out = n;
	return 0;
}

void virtio_net_destroy(struct virtio_net *net)
{
	if (net)
		virtio_device_destroy(net->vdev); /* frees net */
}

struct virtio_device *virtio_net_device(struct virtio_net *net)
{
	return net ? net->vdev : NULL;
}

int virtio_net_set_link(struct virtio_net *net, bool up)
{
	uint16_t v;

	if (!net)
		return -EINVAL;
	virtio_device_lock(net->vdev);
	if (net->link_up != up) {
		net->link_up = up;
		v = htole16(up ? VIRTIO_NET_S_LINK_UP : 0);
		virtio_device_config_set(net->vdev, CFG_STATUS_OFF, &v, 2,
					 true);
		update_polls(net);
	}
	virtio_device_unlock(net->vdev);
	return 0;
}

int virtio_net_queue_stats(struct virtio_net *net, uint32_t pair,
			   struct virtio_net_queue_stats *out)
{
	if (!net || !out || pair >= net->max_pairs)
		return -EINVAL;
	virtio_device_lock(net->vdev);
	*out = net->pairs[pair].st;
	virtio_device_unlock(net->vdev);
	return 0;
}

uint32_t virtio_net_active_pairs(struct virtio_net *net)
{
	uint32_t v;

	if (!net)
		return 0;
	virtio_device_lock(net->vdev);
	v = net->cur_pairs;
	virtio_device_unlock(net->vdev);
	return v;
}

int virtio_net_rx_mode(struct virtio_net *net, struct virtio_net_rx_mode *out)
{
	if (!net || !out)
		return -EINVAL;
	virtio_device_lock(net->vdev);
	out->promisc = net->promisc;
	out->allmulti = net->allmulti;
	out->uni_entries = net->n_uni;
	out->multi_entries = net->n_multi;
	memcpy(out->mac, net->mac, 6);
	virtio_device_unlock(net->vdev);
	return 0;
}
