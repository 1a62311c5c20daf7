/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The tap backend of virtio-net: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, one
 * fd per queue pair (IFF_MULTI_QUEUE when more than one), frames moved
 * with readv/writev straight between guest buffers and the tap.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include <cvmm/devices/virtio-net.h>

#define F(bit) (1ull << (bit))

struct tap_be {
	char name[IFNAMSIZ];
	uint32_t npairs;
	bool mq;
	uint64_t offloads;
	int fds[VIRTIO_NET_MAX_PAIRS];
	bool attached[VIRTIO_NET_MAX_PAIRS];
};

static int tap_rx_fd(void *be, uint32_t pair)
{
	struct tap_be *t = be;

	return pair < t->npairs ? t->fds[pair] : -1;
}

static ssize_t tap_recv(void *be, uint32_t pair, const struct iovec *iov,
			int iovcnt)
{
	struct tap_be *t = be;
	ssize_t n;

	if (pair >= t->npairs)
		return -EINVAL;
	n = readv(t->fds[pair], iov, iovcnt);
	return n < 0 ? -errno : n;
}

static ssize_t tap_send(void *be, uint32_t pair, const struct iovec *iov,
			int iovcnt)
{
	struct tap_be *t = be;
	ssize_t n;

	if (pair >= t->npairs)
		return -EINVAL;
	n = writev(t->fds[pair], iov, iovcnt);
	return n < 0 ? -errno : n;
}

static uint64_t tap_offloads(void *be)
{
	return ((struct tap_be *)be)->offloads;
}

static int tap_set_hdr(void *be, uint32_t size)
{
	struct tap_be *t = be;
	int sz = (int)size;

	for (uint32_t i = 0; i < t->npairs; i++)
		if (ioctl(t->fds[i], TUNSETVNETHDRSZ, &sz) < 0)
			return -errno;
	return 0;
}

static unsigned tun_flags_of(uint64_t f)
{
	unsigned o = 0;

	if (f & F(VIRTIO_NET_F_GUEST_CSUM))
		o |= TUN_F_CSUM;
	if (f & F(VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (f & F(VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if (f & F(VIRTIO_NET_F_GUEST_ECN))
		o |= TUN_F_TSO_ECN;
	if (f & F(VIRTIO_NET_F_GUEST_UFO))
		o |= TUN_F_UFO;
	return o;
}

static int tap_set_offloads(void *be, uint64_t features)
{
	struct tap_be *t = be;
	unsigned long o = tun_flags_of(features);

	/* offloads belong to the interface: any queue's fd sets them */
	if (ioctl(t->fds[0], TUNSETOFFLOAD, o) < 0)
		return -errno;
	return 0;
}

static int tap_queue(struct tap_be *t, uint32_t pair, bool attach)
{
	struct ifreq ifr = {0};

	/* pair 0 stays attached so the interface keeps a queue */
	if (!t->mq || pair == 0 || pair >= t->npairs ||
	    t->attached[pair] == attach)
		return 0;
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	if (ioctl(t->fds[pair], TUNSETQUEUE, &ifr) < 0)
		return -errno;
	t->attached[pair] = attach;
	return 0;
}

static int tap_open_pair(void *be, uint32_t pair)
{
	return tap_queue(be, pair, true);
}

static void tap_close_pair(void *be, uint32_t pair)
{
	tap_queue(be, pair, false);
}

static void tap_destroy(void *be)
{
	struct tap_be *t = be;

	for (uint32_t i = 0; i < t->npairs; i++)
		if (t->fds[i] >= 0)
			close(t->fds[i]);
	free(t);
}

static const struct virtio_net_backend_ops tap_ops = {
	.open_queue_pair = tap_open_pair,
	.close_queue_pair = tap_close_pair,
	.rx_fd = tap_rx_fd,
	.tx_fd = tap_rx_fd,
	.recv = tap_recv,
	.send = tap_send,
	.offloads = tap_offloads,
	.set_vnet_hdr_size = tap_set_hdr,
	.set_offloads = tap_set_offloads,
	.destroy = tap_destroy,
};

/* What the tap can hand the guest (TUNSETOFFLOAD probes) and take from
 * it (any GSO frame with a virtio-net header). */
static void tap_probe(struct tap_be *t)
{
	int fd = t->fds[0];

	t->offloads = 0;
	if (ioctl(fd, TUNSETOFFLOAD,
		  (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 |
				  TUN_F_TSO_ECN)) == 0)
		t->offloads |=
			F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) |
			F(VIRTIO_NET_F_GUEST_TSO4) |
			F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_ECN) |
			F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |
			F(VIRTIO_NET_F_HOST_ECN);
	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_UFO)) ==
	    0)
		t->offloads |= F(VIRTIO_NET_F_GUEST_UFO) |
			       F(VIRTIO_NET_F_HOST_UFO);
	ioctl(fd, TUNSETOFFLOAD, 0ul);
}

/* Pairs other than 0 start detached: the device attaches those the
 * driver uses (VQ_PAIRS_SET). */
static int tap_detach_extra(struct tap_be *t)
{
	for (uint32_t i = 1; i < t->npairs; i++) {
		int r = tap_queue(t, i, false);

		if (r < 0)
			return r;
	}
	return 0;
}

static int tap_check_fd(int fd, char *name)
{
	struct ifreq ifr = {0};
	int fl;

	if (fd < 0 || ioctl(fd, TUNGETIFF, &ifr) < 0)
		return -EINVAL;
	if ((ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) !=
	    (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -EINVAL;
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = 0;
	return (ifr.ifr_flags & IFF_MULTI_QUEUE) ? 1 : 0;
}

int virtio_net_backend_tap_from_fds(const int *fds, uint32_t nfds,
				    const struct virtio_net_backend_ops **ops,
				    void **backend)
{
	struct tap_be *t;
	int mq = 0;

	if (!fds || !ops || !backend || nfds == 0 ||
	    nfds > VIRTIO_NET_MAX_PAIRS)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < nfds; i++) {
		char nm[IFNAMSIZ];
		int r = tap_check_fd(fds[i], nm);

		if (r < 0 || (i > 0 && strcmp(nm, t->name))) {
			free(t);
			return -EINVAL;
		}
		memcpy(t->name, nm, IFNAMSIZ);
		mq |= r;
		t->fds[i] = fds[i];
		t->attached[i] = true;
	}
	if (nfds > 1 && !mq) {
		free(t);
		return -EINVAL;
	}
	t->npairs = nfds;
	t->mq = mq;
	if (tap_detach_extra(t) < 0) {
		free(t);
		return -EINVAL;
	}
	tap_probe(t);
	*ops = &tap_ops;
	*backend = t;
	return 0;
}

int virtio_net_backend_tap_open(const char *name, uint32_t pairs,
				const struct virtio_net_backend_ops **ops,
				void **backend)
{
	struct tap_be *t;
	int ret;

	if (!name || !ops || !backend || pairs == 0 ||
	    pairs > VIRTIO_NET_MAX_PAIRS || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->mq = pairs > 1;
	for (uint32_t i = 0; i < VIRTIO_NET_MAX_PAIRS; i++)
		t->fds[i] = -1;
	for (uint32_t i = 0; i < pairs; i++) {
		struct ifreq ifr = {0};
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

		if (fd < 0) {
			ret = -errno;
			goto fail;
		}
		t->fds[i] = fd;
		t->npairs = i + 1;
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		if (t->mq)
			ifr.ifr_flags |= IFF_MULTI_QUEUE;
		memcpy(ifr.ifr_name, i ? t->name : name,
		       strlen(i ? t->name : name));
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			ret = -errno;
			goto fail;
		}
		memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
		t->name[IFNAMSIZ - 1] = 0;
		t->attached[i] = true;
	}
	ret = tap_detach_extra(t);
	if (ret < 0)
		goto fail;
	tap_probe(t);
	*ops = &tap_ops;
	*backend = t;
	return 0;
fail:
	tap_destroy(t);
	return ret;
}

const char *
virtio_net_backend_tap_name(const struct virtio_net_backend_ops *ops,
			    void *backend)
{
	struct tap_be *t = backend;

	return ops == &tap_ops && t ? t->name : NULL;
}
