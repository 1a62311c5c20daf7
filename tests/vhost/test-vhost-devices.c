/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices' kernel-vhost devices (virtio-vhost-kernel.h) through
 * libvhost's ioctl seam, with the guest played by the virtio-net test
 * harness behind virtio-mmio: the feature intersection, the hand-over at
 * DRIVER_OK, the rings taken back at a reset, and a kernel that refuses
 * (NEEDS_RESET, the device usable again after a reset).  The build host
 * has no vhost modules; the lab (guest-vhost-net, guest-vhost-vsock)
 * runs the real thing.
 */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vhost.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-vhost-kernel.h>

#include "cvmm-check.h"
#include "test-virtio-net-harness.h"

#define MAX_CALLS 256
#define F_V1	  F(VIRTIO_F_VERSION_1)
#define F_IND	  F(VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVT	  F(VIRTIO_RING_F_EVENT_IDX)
#define F_MRG	  F(VIRTIO_NET_F_MRG_RXBUF)
/* What Linux's vhost-net offers (VHOST_NET_FEATURES, less LOG_ALL and
 * ACCESS_PLATFORM). */
#define KERNEL_NET                                                    \
	(F(VIRTIO_F_NOTIFY_ON_EMPTY) | F_IND | F_EVT | F_V1 | F_MRG | \
	 F(VHOST_NET_F_VIRTIO_NET_HDR))

/* ------------------------------------------------------- the fake kernel */

struct call {
	unsigned long req;
	union {
		uint64_t u64;
		int i;
		struct vhost_vring_state state;
		struct vhost_vring_addr addr;
		struct vhost_vring_file file;
		struct vhost_memory_region region; /* the first */
	} a;
	uint32_t nregions;
};

static struct fake {
	unsigned n;
	struct call c[MAX_CALLS];
	uint64_t features;
	unsigned base;		/* what GET_VRING_BASE answers */
	unsigned long fail_req; /* this request fails with -fail_err */
	int fail_err;
	int kick[2], call[2], err[2]; /* the last fds bound per ring */
} K;

static int fake_ioctl(void *opaque, int fd, unsigned long req, void *arg)
{
	struct call *c;

	(void)opaque;
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(K.n, MAX_CALLS);
	c = &K.c[K.n++];
	c->req = req;
	if (req == K.fail_req)
		return -K.fail_err;
	switch (req) {
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = K.features;
		break;
	case VHOST_GET_VRING_BASE:
		((struct vhost_vring_state *)arg)->num = K.base;
		c->a.state = *(struct vhost_vring_state *)arg;
		break;
	case VHOST_SET_FEATURES:
	case VHOST_VSOCK_SET_GUEST_CID:
		c->a.u64 = *(uint64_t *)arg;
		break;
	case VHOST_VSOCK_SET_RUNNING:
		c->a.i = *(int *)arg;
		break;
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_BASE:
		c->a.state = *(struct vhost_vring_state *)arg;
		break;
	case VHOST_SET_VRING_ADDR:
		c->a.addr = *(struct vhost_vring_addr *)arg;
		break;
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_SET_VRING_ERR:
	case VHOST_NET_SET_BACKEND:
		c->a.file = *(struct vhost_vring_file *)arg;
		ck_assert_uint_lt(c->a.file.index, 2);
		if (req == VHOST_SET_VRING_KICK)
			K.kick[c->a.file.index] = c->a.file.fd;
		if (req == VHOST_SET_VRING_CALL)
			K.call[c->a.file.index] = c->a.file.fd;
		if (req == VHOST_SET_VRING_ERR)
			K.err[c->a.file.index] = c->a.file.fd;
		break;
	case VHOST_SET_MEM_TABLE: {
		const struct vhost_memory *m = arg;

		c->nregions = m->nregions;
		if (m->nregions)
			c->a.region = m->regions[0];
		break;
	}
	case VHOST_SET_OWNER:
		break;
	default:
		ck_abort_msg("unexpected request %#lx", req);
	}
	return 0;
}

static const struct vhost_kernel_config seam = {.ioctl = fake_ioctl};
static const struct virtio_vhost_kernel_params seam_params = {.path = "/dev/"
								      "null",
							      .kernel = &seam};

static void fake_reset(uint64_t features)
{
	memset(&K, 0, sizeof(K));
	K.features = features;
}

/* Index of the first call of @req at or after @from; -1: none. */
static int find(unsigned long req, int from)
{
	for (int i = from; i < (int)K.n; i++)
		if (K.c[i].req == req)
			return i;
	return -1;
}

static unsigned count(unsigned long req)
{
	unsigned k = 0;

	for (unsigned i = 0; i < K.n; i++)
		k += K.c[i].req == req;
	return k;
}

/* The hand-over of ring @ring (device queue @q) starting at call @i:
 * NUM, BASE, ADDR, CALL, ERR, KICK in that order.  Returns the next. */
static int check_ring(int i, unsigned ring, uint32_t q, unsigned base,
		      const struct vhost_memory_region *table)
{
	struct virtq *vq = virtio_device_queue(G.vdev, q);
	const unsigned long order[] = {
		VHOST_SET_VRING_NUM,  VHOST_SET_VRING_BASE,
		VHOST_SET_VRING_ADDR, VHOST_SET_VRING_CALL,
		VHOST_SET_VRING_ERR,  VHOST_SET_VRING_KICK};
	uint64_t host = table->userspace_addr - table->guest_phys_addr;

	for (unsigned k = 0; k < 6; k++) {
		ck_assert_int_lt(i + (int)k, (int)K.n);
		ck_assert_uint_eq(K.c[i + k].req, order[k]);
	}
	ck_assert_uint_eq(K.c[i].a.state.index, ring);
	ck_assert_uint_eq(K.c[i].a.state.num, QSIZE);
	ck_assert_uint_eq(K.c[i + 1].a.state.index, ring);
	ck_assert_uint_eq(K.c[i + 1].a.state.num, base);
	ck_assert_uint_eq(K.c[i + 2].a.addr.index, ring);
	ck_assert_uint_eq(K.c[i + 2].a.addr.desc_user_addr,
			  host + virtq_addr(vq, VIRTQ_AREA_DESC));
	ck_assert_uint_eq(K.c[i + 2].a.addr.avail_user_addr,
			  host + virtq_addr(vq, VIRTQ_AREA_AVAIL));
	ck_assert_uint_eq(K.c[i + 2].a.addr.used_user_addr,
			  host + virtq_addr(vq, VIRTQ_AREA_USED));
	for (unsigned k = 3; k < 6; k++) {
		ck_assert_uint_eq(K.c[i + k].a.file.index, ring);
		ck_assert_int_ge(K.c[i + k].a.file.fd, 0);
	}
	return i + 6;
}

/* ------------------------------------------------------- the fake tap */

static struct tap {
	int sv[2]; /* sv[0]: "the tap fd" */
	uint32_t hdr;
	uint64_t offloads_set;
	int opened, closed, destroyed;
} T;

static int tap_open_pair(void *be, uint32_t pair)
{
	(void)be;
	ck_assert_uint_eq(pair, 0);
	T.opened++;
	return 0;
}
static void tap_close_pair(void *be, uint32_t pair)
{
	(void)be;
	(void)pair;
	T.closed++;
}
static int tap_rx_fd(void *be, uint32_t pair)
{
	(void)be;
	return pair == 0 ? T.sv[0] : -1;
}
static ssize_t tap_io(void *be, uint32_t pair, const struct iovec *iov,
		      int iovcnt)
{
	(void)be;
	(void)pair;
	(void)iov;
	(void)iovcnt;
	ck_abort_msg("the device moved a frame itself");
	return -EIO;
}
static uint64_t tap_offloads(void *be)
{
	(void)be;
	return F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM);
}
static int tap_set_hdr(void *be, uint32_t size)
{
	(void)be;
	T.hdr = size;
	return 0;
}
static int tap_set_offloads(void *be, uint64_t f)
{
	(void)be;
	T.offloads_set = f;
	return 0;
}
static void tap_destroy(void *be)
{
	(void)be;
	T.destroyed++;
	close(T.sv[0]);
	close(T.sv[1]);
}

static const struct virtio_net_backend_ops tap_ops = {
	.open_queue_pair = tap_open_pair,
	.close_queue_pair = tap_close_pair,
	.rx_fd = tap_rx_fd,
	.recv = tap_io,
	.send = tap_io,
	.offloads = tap_offloads,
	.set_vnet_hdr_size = tap_set_hdr,
	.set_offloads = tap_set_offloads,
	.destroy = tap_destroy,
};

static void tap_new(void)
{
	memset(&T, 0, sizeof(T));
	ck_assert_int_eq(
		socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, T.sv), 0);
}

static uint64_t offered(void)
{
	uint64_t f = 0;

	for (uint32_t page = 0; page < 2; page++) {
		mmio_w32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, page);
		f |= (uint64_t)mmio_r32(VIRTIO_MMIO_DEVICE_FEATURES)
		     << (32 * page);
	}
	return f;
}

#define WANT_NET                                        \
	(BASE_FEATURES | F_MRG | F(VIRTIO_NET_F_CSUM) | \
	 F(VIRTIO_NET_F_GUEST_CSUM))

/* A vhost-net device on the fake tap and kernel, brought up (or only
 * created when @up is false: then G.vdev / G.mmio exist, no DRIVER_OK). */
static void net_start(uint64_t kernel, uint64_t want)
{
	const struct virtio_net_backend_ops *ops;
	void *be;

	fake_reset(kernel);
	tap_new();
	ck_assert_int_eq(virtio_net_backend_vhost_create(&seam_params, &tap_ops,
							 &T, &ops, &be),
			 0);
	ck_assert_uint_eq(T.hdr, 12);
	g_start_be(ops, be, 1, want, NULL);
}

static bool fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/* --------------------------------------------------------------- net */

START_TEST(test_net_features)
{
	/* A kernel without INDIRECT_DESC and MRG_RXBUF: neither is offered;
	 * the tap's offloads and the VMM's control features still are. */
	net_start(F_V1 | F_EVT, WANT_NET);
	{
		uint64_t f = offered();

		ck_assert(!(f & F_IND));
		ck_assert(!(f & F_MRG));
		ck_assert(f & F_EVT);
		ck_assert(f & F_V1);
		ck_assert(f & F(VIRTIO_NET_F_CTRL_VQ));
		ck_assert(f & F(VIRTIO_NET_F_CSUM));
	}
	/* SET_FEATURES got the negotiated bits the kernel knows, nothing
	 * else (CSUM, CTRL_VQ, MAC are the tap's and the VMM's). */
	ck_assert_int_ge(find(VHOST_SET_FEATURES, 0), 0);
	ck_assert_uint_eq(K.c[find(VHOST_SET_FEATURES, 0)].a.u64, F_V1 | F_EVT);
	/* ... and the tap was told every negotiated feature. */
	ck_assert(T.offloads_set & F(VIRTIO_NET_F_CSUM));
	g_stop_dev();
	ck_assert_int_eq(T.destroyed, 1);

	/* Linux's set: all offered, and MRG_RXBUF acked through. */
	net_start(KERNEL_NET, WANT_NET);
	ck_assert((offered() & (F_IND | F_MRG | F_EVT)) ==
		  (F_IND | F_MRG | F_EVT));
	ck_assert_uint_eq(K.c[find(VHOST_SET_FEATURES, 0)].a.u64,
			  F_V1 | F_EVT | F_IND | F_MRG);
	g_stop_dev();
}
END_TEST

START_TEST(test_net_create_errors)
{
	const struct virtio_net_backend_ops *ops = NULL;
	const struct virtio_vhost_kernel_params nodev = {.path = "/nonexistent/"
								 "vhost-net",
							 .kernel = &seam};
	struct virtio_net *net = NULL;
	void *be = NULL;

	tap_new();
	fake_reset(KERNEL_NET);
	ck_assert_int_eq(virtio_net_backend_vhost_create(&nodev, &tap_ops, &T,
							 &ops, &be),
			 -ENOENT);
	/* The kernel refuses SET_OWNER (another process owns it). */
	K.fail_req = VHOST_SET_OWNER;
	K.fail_err = EBUSY;
	ck_assert_int_eq(virtio_net_backend_vhost_create(&seam_params, &tap_ops,
							 &T, &ops, &be),
			 -EBUSY);
	/* No VERSION_1: refused (modern devices only). */
	fake_reset(KERNEL_NET & ~F_V1);
	ck_assert_int_eq(virtio_net_backend_vhost_create(&seam_params, &tap_ops,
							 &T, &ops, &be),
			 -ENOTSUP);
	/* The tap stayed the caller's each time. */
	ck_assert_int_eq(T.destroyed, 0);
	ck_assert_int_eq(virtio_net_backend_vhost_create(NULL, NULL, &T, &ops,
							 &be),
			 -EINVAL);
	/* A backend serving rings needs start, stop and notify. */
	{
		struct virtio_net_backend_ops half = tap_ops;

		half.rings_start =
			(int (*)(void *, uint32_t, struct virtio_device *))1;
		ck_assert_int_eq(virtio_net_create(&half, &T, NULL, &net),
				 -EINVAL);
	}
	tap_destroy(&T);
}
END_TEST

START_TEST(test_net_handover)
{
	struct vhost_memory_region table;
	int i, kick0, call1;

	net_start(KERNEL_NET, WANT_NET);
	ck_assert_int_eq(T.opened, 1);
	/* At create: SET_OWNER, GET_FEATURES; at DRIVER_OK: SET_FEATURES,
	 * SET_MEM_TABLE, ring 0 (receiveq1), ring 1 (transmitq1), then the
	 * tap attached to both. */
	ck_assert_uint_eq(K.c[0].req, VHOST_SET_OWNER);
	ck_assert_uint_eq(K.c[1].req, VHOST_GET_FEATURES);
	ck_assert_uint_eq(K.c[2].req, VHOST_SET_FEATURES);
	ck_assert_uint_eq(K.c[3].req, VHOST_SET_MEM_TABLE);
	ck_assert_uint_eq(K.c[3].nregions, 1);
	table = K.c[3].a.region;
	ck_assert_uint_eq(table.guest_phys_addr, 0);
	ck_assert_uint_eq(table.memory_size, MEM_SIZE);
	i = check_ring(4, 0, 0, 0, &table);
	i = check_ring(i, 1, 1, 0, &table);
	for (unsigned r = 0; r < 2; r++, i++) {
		ck_assert_uint_eq(K.c[i].req, VHOST_NET_SET_BACKEND);
		ck_assert_uint_eq(K.c[i].a.file.index, r);
		ck_assert_int_eq(K.c[i].a.file.fd, T.sv[0]);
	}
	ck_assert_uint_eq(K.n, (unsigned)i);
	kick0 = K.kick[0];
	call1 = K.call[1];
	/* The kicks written at DRIVER_OK (buffers posted before it). */
	{
		eventfd_t v;

		ck_assert_int_eq(eventfd_read(K.kick[0], &v), 0);
		ck_assert_int_eq(eventfd_read(K.kick[1], &v), 0);
	}
	/* The device does not poll the tap: the kernel reads it. */
	ck_assert(!g_polled(T.sv[0], POLLIN | POLLOUT));
	ck_assert(g_polled(call1, POLLIN));
	/* A notify of receiveq1 kicks ring 0, nothing else. */
	ck_assert(!fd_readable(kick0));
	g_post_rx(0, 2048, false);
	mmio_w32(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert(fd_readable(kick0));
	ck_assert(!fd_readable(K.kick[1]));
	/* The kernel's call on ring 1 is transmitq1's interrupt. */
	ck_assert_uint_eq(mmio_r32(VIRTIO_MMIO_INTERRUPT_STATUS) & 1, 0);
	ck_assert_int_eq(eventfd_write(call1, 1), 0);
	g_pump();
	ck_assert_uint_eq(mmio_r32(VIRTIO_MMIO_INTERRUPT_STATUS) & 1, 1);
	ck_assert(!fd_readable(call1));
	/* The control queue stays with the VMM. */
	{
		uint8_t on = 1;

		ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_RX,
					 VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
				  VIRTIO_NET_OK);
		ck_assert_int_eq(find(VHOST_SET_FEATURES, 3), -1);
	}
	ck_assert(!g_needs_reset());
	g_stop_dev();
}
END_TEST

START_TEST(test_net_reset_takes_rings_back)
{
	unsigned n0;
	int i;

	net_start(KERNEL_NET, WANT_NET);
	K.base = 7;
	n0 = K.n;
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(g_status_get(), 0);
	/* The tap detached from both rings first, then each ring stopped
	 * (GET_VRING_BASE) and its eventfds unbound. */
	i = (int)n0;
	ck_assert_uint_eq(K.c[i].req, VHOST_NET_SET_BACKEND);
	ck_assert_int_eq(K.c[i].a.file.fd, -1);
	ck_assert_uint_eq(K.c[i + 1].req, VHOST_NET_SET_BACKEND);
	ck_assert_int_eq(K.c[i + 1].a.file.fd, -1);
	i = find(VHOST_GET_VRING_BASE, i);
	ck_assert_int_gt(i, 0);
	ck_assert_uint_eq(K.c[i].a.state.index, 0);
	i = find(VHOST_GET_VRING_BASE, i + 1);
	ck_assert_int_gt(i, 0);
	ck_assert_uint_eq(K.c[i].a.state.index, 1);
	ck_assert_uint_eq(count(VHOST_GET_VRING_BASE), 2);
	ck_assert_int_eq(K.kick[0], -1);
	ck_assert_int_eq(K.call[1], -1);
	ck_assert_int_eq(T.closed, 1);
	ck_assert_uint_eq(T.offloads_set, 0);
	/* A second reset finds nothing to take back. */
	n0 = K.n;
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(K.n, n0);
	/* The driver comes back: handed over again, from index 0 (the
	 * queues were reset). */
	n0 = K.n;
	g_bringup(1, WANT_NET);
	i = find(VHOST_SET_VRING_BASE, (int)n0);
	ck_assert_int_gt(i, 0);
	ck_assert_uint_eq(K.c[i].a.state.num, 0);
	ck_assert_int_gt(find(VHOST_NET_SET_BACKEND, i), 0);
	ck_assert(!g_needs_reset());
	g_stop_dev();
}
END_TEST

/* _i: the request the kernel refuses at DRIVER_OK. */
static const unsigned long net_refused[] = {
	VHOST_SET_FEATURES,   VHOST_SET_MEM_TABLE,  VHOST_SET_VRING_NUM,
	VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK, VHOST_NET_SET_BACKEND,
};

START_TEST(test_net_kernel_refuses)
{
	const struct virtio_net_backend_ops *ops;
	unsigned n0, attached = 0;
	void *be;
	int i;

	fake_reset(KERNEL_NET);
	tap_new();
	ck_assert_int_eq(virtio_net_backend_vhost_create(&seam_params, &tap_ops,
							 &T, &ops, &be),
			 0);
	K.fail_req = net_refused[_i];
	K.fail_err = EFAULT;
	g_start_be(ops, be, 1, WANT_NET, NULL);
	/* DRIVER_OK did not stick: NEEDS_RESET, and nothing is left with
	 * the kernel: every ring it had was taken back, no tap attached. */
	ck_assert(g_needs_reset());
	i = find(K.fail_req, 0);
	ck_assert_int_ge(i, 0);
	/* Only a refused SET_BACKEND finds rings started (both). */
	ck_assert_uint_eq(count(VHOST_GET_VRING_BASE),
			  K.fail_req == VHOST_NET_SET_BACKEND ? 2 : 0);
	/* ... (a refused ring 0 attach is not followed by ring 1's) */
	ck_assert_int_eq(find(VHOST_NET_SET_BACKEND, i + 1), -1);
	ck_assert_int_eq(T.closed, 1); /* the pair was closed again */
	/* The VMM goes on: after a reset, a kernel that agrees works. */
	K.fail_req = 0;
	n0 = K.n;
	g_bringup(1, WANT_NET);
	ck_assert(!g_needs_reset());
	for (i = find(VHOST_NET_SET_BACKEND, (int)n0); i >= 0;
	     i = find(VHOST_NET_SET_BACKEND, i + 1))
		attached += K.c[i].a.file.fd == T.sv[0];
	ck_assert_uint_eq(attached, 2);
	g_stop_dev();
}
END_TEST

START_TEST(test_net_ring_error)
{
	net_start(KERNEL_NET, WANT_NET);
	ck_assert(!g_needs_reset());
	/* The kernel signals a bad ring on its error eventfd. */
	ck_assert_int_eq(eventfd_write(K.err[1], 1), 0);
	g_pump();
	ck_assert(g_needs_reset());
	/* The driver resets: the rings come back, the device is usable. */
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(count(VHOST_GET_VRING_BASE), 2);
	g_bringup(1, WANT_NET);
	ck_assert(!g_needs_reset());
	g_stop_dev();
}
END_TEST

/* ------------------------------------------------------------- vsock */

#define VSOCK_SEQ F(VIRTIO_VSOCK_F_SEQPACKET)
#define CID	  42u

/* The device on the fake kernel @kernel, guest memory set, no
 * transport yet. */
static struct virtio_vhost_vsock *vsock_new(uint64_t kernel)
{
	struct virtio_vhost_kernel_params kp = seam_params;
	struct virtio_vhost_vsock_params p = {
		.guest_cid = CID, .queue_max_size = QSIZE, .kernel = &kp};
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct virtio_vhost_vsock *v = NULL;
	struct guest_region *r;

	fake_reset(kernel);
	ck_assert_int_eq(virtio_vhost_vsock_create(&p, &v), 0);
	memset(&G, 0, sizeof(G));
	G.next_buf = BUF_BASE;
	G.next_ring = RING_BASE;
	ck_assert_int_eq(guest_region_create(&rp, &r), 0);
	ck_assert_int_eq(guest_memory_create(&r, 1, &G.mem), 0);
	guest_region_unref(r);
	G.vdev = virtio_vhost_vsock_device(v);
	ck_assert_int_eq(virtio_device_set_memory(G.vdev, G.mem), 0);
	return v;
}

static struct virtio_vhost_vsock *vsock_make(uint64_t kernel)
{
	struct virtio_vhost_vsock *v = vsock_new(kernel);

	ck_assert_int_eq(virtio_mmio_create(G.vdev, NULL, &G.mmio), 0);
	ck_assert_uint_eq(mmio_r32(VIRTIO_MMIO_DEVICE_ID), 19);
	return v;
}

static void vsock_stop(struct virtio_vhost_vsock *v)
{
	virtio_mmio_destroy(G.mmio);
	virtio_vhost_vsock_destroy(v);
	for (unsigned q = 0; q < MAX_Q; q++)
		virtq_driver_destroy(G.drv[q]);
	guest_memory_unref(G.mem);
	memset(&G, 0, sizeof(G));
}

START_TEST(test_vsock_create_and_features)
{
	struct virtio_vhost_vsock *v;
	struct virtio_vhost_vsock_params p = {.guest_cid = CID};
	uint64_t cid = 0;

	/* At create: owner, features, the CID. */
	v = vsock_make(F_V1 | F_EVT | F_IND | VSOCK_SEQ);
	ck_assert_uint_eq(K.n, 3);
	ck_assert_uint_eq(K.c[0].req, VHOST_SET_OWNER);
	ck_assert_uint_eq(K.c[1].req, VHOST_GET_FEATURES);
	ck_assert_uint_eq(K.c[2].req, VHOST_VSOCK_SET_GUEST_CID);
	ck_assert_uint_eq(K.c[2].a.u64, CID);
	g_config_read(0, &cid, 8);
	ck_assert_uint_eq(le64toh(cid), CID);
	ck_assert((offered() & (VSOCK_SEQ | F_EVT | F_IND | F_V1)) ==
		  (VSOCK_SEQ | F_EVT | F_IND | F_V1));
	vsock_stop(v);
	/* A kernel without SEQPACKET nor EVENT_IDX: not offered. */
	v = vsock_make(F_V1 | F_IND);
	ck_assert_uint_eq(offered() & (VSOCK_SEQ | F_EVT), 0);
	vsock_stop(v);
	/* The CID is another VM's. */
	fake_reset(F_V1);
	K.fail_req = VHOST_VSOCK_SET_GUEST_CID;
	K.fail_err = EADDRINUSE;
	{
		struct virtio_vhost_kernel_params kp = seam_params;

		p.kernel = &kp;
		ck_assert_int_eq(virtio_vhost_vsock_create(&p, &v),
				 -EADDRINUSE);
		kp.path = "/nonexistent/vhost-vsock";
		ck_assert_int_eq(virtio_vhost_vsock_create(&p, &v), -ENOENT);
		p.guest_cid = 2; /* the host's */
		ck_assert_int_eq(virtio_vhost_vsock_create(&p, &v), -EINVAL);
	}
}
END_TEST

START_TEST(test_vsock_handover_and_reset)
{
	struct virtio_vhost_vsock *v = vsock_make(F_V1 | F_EVT | VSOCK_SEQ);
	struct vhost_memory_region table;
	unsigned n0;
	int i;

	g_bringup(1, F_EVT | VSOCK_SEQ);
	ck_assert(!g_needs_reset());
	ck_assert_uint_eq(K.c[3].req, VHOST_SET_FEATURES);
	ck_assert_uint_eq(K.c[3].a.u64, F_V1 | F_EVT | VSOCK_SEQ);
	ck_assert_uint_eq(K.c[4].req, VHOST_SET_MEM_TABLE);
	table = K.c[4].a.region;
	i = check_ring(5, 0, 0, 0, &table); /* rx */
	i = check_ring(i, 1, 1, 0, &table); /* tx */
	ck_assert_uint_eq(K.c[i].req, VHOST_VSOCK_SET_RUNNING);
	ck_assert_int_eq(K.c[i].a.i, 1);
	ck_assert_uint_eq(K.n, (unsigned)i + 1);
	/* The event queue stays with the device: a notify kicks nothing. */
	{
		eventfd_t x;

		eventfd_read(K.kick[0], &x);
		eventfd_read(K.kick[1], &x);
	}
	g_post_rx(2, 8, false);
	mmio_w32(VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	ck_assert(!fd_readable(K.kick[0]) && !fd_readable(K.kick[1]));
	mmio_w32(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	ck_assert(fd_readable(K.kick[1]));
	/* Reset: stopped, then both rings taken back. */
	K.base = 3;
	n0 = K.n;
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(K.c[n0].req, VHOST_VSOCK_SET_RUNNING);
	ck_assert_int_eq(K.c[n0].a.i, 0);
	ck_assert_uint_eq(count(VHOST_GET_VRING_BASE), 2);
	ck_assert_int_eq(find(VHOST_GET_VRING_BASE, (int)n0), (int)n0 + 1);
	/* The kernel refuses SET_RUNNING at the next DRIVER_OK:
	 * NEEDS_RESET, the rings taken back again. */
	K.fail_req = VHOST_VSOCK_SET_RUNNING;
	K.fail_err = EIO;
	g_bringup(1, F_EVT);
	ck_assert(g_needs_reset());
	ck_assert_uint_eq(count(VHOST_GET_VRING_BASE), 4);
	/* and the reset that follows sends no second stop. */
	n0 = K.n;
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
	ck_assert_int_eq(find(VHOST_VSOCK_SET_RUNNING, (int)n0), -1);
	K.fail_req = 0;
	g_bringup(1, F_EVT);
	ck_assert(!g_needs_reset());
	vsock_stop(v);
}
END_TEST

/* Queue @q's notifier (the VMM's ioeventfd) fd, and whether the device
 * lists it for the VMM to poll. */
static int notifier_fd(uint32_t q)
{
	return event_notifier_fd(virtio_device_queue_notifier(G.vdev, q));
}

static bool notifier_polled(uint32_t q)
{
	struct virtio_poll_fd fds[64];
	int n = virtio_device_poll_fds(G.vdev, fds, 64);

	for (int i = 0; i < n && i < 64; i++)
		if (fds[i].fd == notifier_fd(q))
			return true;
	return false;
}

START_TEST(test_vsock_kick_is_queue_notifier)
{
	struct virtio_vhost_vsock *v = vsock_make(F_V1 | F_EVT);
	uint64_t kicks = 9, calls = 9;
	eventfd_t x;

	ck_assert(notifier_polled(0) && notifier_polled(1));
	g_bringup(1, F_EVT);
	ck_assert(!g_needs_reset());
	/* The kernel reads the queues' own notifiers: the device lists
	 * them no more (the event queue's stays). */
	ck_assert_int_eq(K.kick[0], notifier_fd(0));
	ck_assert_int_eq(K.kick[1], notifier_fd(1));
	ck_assert(!notifier_polled(0) && !notifier_polled(1));
	ck_assert(notifier_polled(2));
	eventfd_read(K.kick[0], &x);
	eventfd_read(K.kick[1], &x);
	/* A notify through the ioeventfd: the VMM's poll loop leaves it
	 * for the kernel, nothing relayed. */
	ck_assert_int_eq(
		event_notifier_signal(virtio_device_queue_notifier(G.vdev, 1)),
		0);
	g_pump();
	ck_assert(fd_readable(K.kick[1]));
	ck_assert_int_eq(eventfd_read(K.kick[1], &x), 0);
	virtio_vhost_vsock_relay_counts(v, &kicks, &calls);
	ck_assert_uint_eq(kicks, 0);
	ck_assert_uint_eq(calls, 0);
	/* A notify the VMM handled itself (MMIO exit): passed on through
	 * the same fd, and counted. */
	mmio_w32(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert(fd_readable(K.kick[0]));
	/* The kernel's call: relayed into the interrupt, counted. */
	ck_assert_int_eq(eventfd_write(K.call[1], 1), 0);
	g_pump();
	ck_assert_uint_eq(mmio_r32(VIRTIO_MMIO_INTERRUPT_STATUS) & 1, 1);
	virtio_vhost_vsock_relay_counts(v, &kicks, &calls);
	ck_assert_uint_eq(kicks, 1);
	ck_assert_uint_eq(calls, 1);
	/* Reset: the rings taken back, the notifiers polled by the device
	 * again and unbound from the kernel. */
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
	ck_assert(notifier_polled(0) && notifier_polled(1));
	ck_assert_int_eq(K.kick[0], -1);
	ck_assert_int_eq(K.kick[1], -1);
	/* and handed over again at the next DRIVER_OK. */
	g_bringup(1, F_EVT);
	ck_assert_int_eq(K.kick[1], notifier_fd(1));
	ck_assert(!notifier_polled(1));
	virtio_vhost_vsock_relay_counts(NULL, &kicks, NULL);
	ck_assert_uint_eq(kicks, 0);
	vsock_stop(v);
}
END_TEST

/* ------------------------------------- vsock on virtio-pci with irqfds */

/* The VMM of a virtio-pci rig: one irqfd (notifier) per MSI-X vector,
 * routes that always succeed; the driver programs through the BAR. */
#define P_BAR	   0xc0000000ull
#define P_SLOT	   3
#define P_DEVFN	   PCI_ROOT_DEVFN(P_SLOT, 0)
#define P_NVEC	   4u
#define P_MSI_ADDR 0xfee00000ull

static struct {
	struct io_bus *bus;
	struct pci_root *root;
	struct virtio_pci *vp;
	struct event_notifier *vecn[P_NVEC];
	unsigned sink_sent; /* messages that went to the MSI sink */
} P;

static int p_sink(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque;
	(void)addr;
	(void)data;
	P.sink_sent++;
	return 0;
}

static void p_wr(uint64_t off, unsigned size, uint64_t v)
{
	uint8_t b[8];

	for (unsigned i = 0; i < size; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	ck_assert_int_eq(io_bus_write(P.bus, P_BAR + off, b, size), 0);
}

static uint64_t p_rd(uint64_t off, unsigned size)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;

	ck_assert_int_eq(io_bus_read(P.bus, P_BAR + off, b, size), 0);
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

#define P_COMMON(f) (VIRTIO_PCI_COMMON_OFFSET + (f))
#define P_ENTRY(v)  (VIRTIO_PCI_MSIX_OFFSET + 16ull * (v))

static void p_msix_ctrl(uint16_t flags)
{
	struct pci_device *pd = virtio_pci_pci_device(P.vp);
	int cap = pci_device_find_capability(pd, PCI_CAP_ID_MSIX);

	ck_assert_int_gt(cap, 0);
	ck_assert_int_eq(pci_root_config_write(P.root, 0, P_DEVFN,
					       (uint32_t)cap + PCI_MSIX_FLAGS,
					       2, flags),
			 0);
}

static void p_vector(unsigned v, uint32_t data, bool mask)
{
	p_wr(P_ENTRY(v) + PCI_MSIX_ENTRY_LOWER_ADDR, 4, P_MSI_ADDR);
	p_wr(P_ENTRY(v) + PCI_MSIX_ENTRY_UPPER_ADDR, 4, 0);
	p_wr(P_ENTRY(v) + PCI_MSIX_ENTRY_DATA, 4, data);
	p_wr(P_ENTRY(v) + PCI_MSIX_ENTRY_VECTOR_CTRL, 4,
	     mask ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

static int vec_fd(unsigned v)
{
	return event_notifier_fd(P.vecn[v]);
}

/* The vhost-vsock device on virtio-pci; the driver brings it up with
 * queue q on vector q, MSI-X enabled, every vector unmasked.  The VMM
 * gives each vector an irqfd when @notifiers. */
static struct virtio_vhost_vsock *pci_vsock_make(bool notifiers)
{
	struct virtio_pci_config pc = {.msix_vectors = P_NVEC,
				       .msi = {.send = p_sink}};
	struct pci_root_config rc = {0};
	struct virtio_vhost_vsock *v;

	memset(&P, 0, sizeof(P));
	v = vsock_new(F_V1);
	ck_assert_int_eq(io_bus_create(&P.bus), 0);
	ck_assert_int_eq(virtio_pci_create(G.vdev, &pc, &P.vp), 0);
	ck_assert_int_eq(pci_device_set_bar_address(virtio_pci_pci_device(P.vp),
						    VIRTIO_PCI_BAR, P_BAR),
			 0);
	rc.mmio_bus = P.bus;
	ck_assert_int_eq(pci_root_create(&rc, &P.root), 0);
	ck_assert_int_eq(virtio_pci_add_to_root(P.vp, P.root, P_SLOT, 0), 0);
	ck_assert_int_eq(
		pci_root_config_write(P.root, 0, P_DEVFN, PCI_COMMAND, 2,
				      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
		0);
	for (unsigned i = 0; i < P_NVEC; i++) {
		ck_assert_int_eq(event_notifier_create(0, &P.vecn[i]), 0);
		if (notifiers)
			ck_assert_int_eq(virtio_pci_set_vector_notifier(
						 P.vp, (uint16_t)i, P.vecn[i]),
					 0);
		p_vector(i, 0x40 + i, false);
	}
	/* The driver: reset, ACK, DRIVER, VERSION_1, FEATURES_OK, queues
	 * (queue q on vector q), DRIVER_OK. */
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 3);
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_GFSELECT), 4, 1);
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_GF), 4, 1); /* VERSION_1 */
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 3 | 8);
	ck_assert_uint_eq(p_rd(P_COMMON(VIRTIO_PCI_COMMON_STATUS), 1), 11);
	G.features = F_V1;
	for (uint16_t q = 0; q < 3; q++) {
		guest_addr_t d, a, u;
		uint64_t total =
			virtq_driver_layout(QSIZE, G.next_ring, &d, &a, &u);

		G.next_ring += (total + 4095) & ~4095ull;
		ck_assert_int_eq(virtq_driver_create(G.mem, QSIZE, G.features,
						     d, a, u, &G.drv[q]),
				 0);
		p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, q);
		p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2, QSIZE);
		p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 8, d);
		p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_AVAILLO), 8, a);
		p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_USEDLO), 8, u);
		p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, q);
		p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	}
	p_msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 3 | 8 | 4);
	ck_assert_uint_eq(p_rd(P_COMMON(VIRTIO_PCI_COMMON_STATUS), 1),
			  3 | 8 | 4);
	return v;
}

static void pci_vsock_stop(void)
{
	pci_root_destroy(P.root);
	virtio_pci_destroy(P.vp);
	virtio_device_destroy(G.vdev);
	io_bus_destroy(P.bus);
	for (unsigned i = 0; i < P_NVEC; i++)
		event_notifier_destroy(P.vecn[i]);
	for (unsigned q = 0; q < MAX_Q; q++)
		virtq_driver_destroy(G.drv[q]);
	guest_memory_unref(G.mem);
	memset(&G, 0, sizeof(G));
	memset(&P, 0, sizeof(P));
}

/* The last SET_VRING_CALL of ring @ring. */
static int last_call(unsigned ring)
{
	return K.call[ring];
}

START_TEST(test_vsock_pci_call_is_vector_irqfd)
{
	struct virtio_vhost_vsock *v = pci_vsock_make(true);
	uint64_t kicks, calls;
	int relay1;

	/* The kernel signals the vectors' irqfds directly; the event
	 * queue stays with the device. */
	ck_assert_int_eq(last_call(0), vec_fd(0));
	ck_assert_int_eq(last_call(1), vec_fd(1));
	ck_assert_int_eq(virtio_device_queue_irq_fd(G.vdev, 2), vec_fd(2));
	/* The guest masks vector 1: the kernel is re-pointed at the relay
	 * before the mask write completes; a call then is relayed and
	 * stays pending. */
	p_wr(P_ENTRY(1) + PCI_MSIX_ENTRY_VECTOR_CTRL, 4,
	     PCI_MSIX_ENTRY_CTRL_MASKBIT);
	relay1 = last_call(1);
	ck_assert_int_ne(relay1, vec_fd(1));
	ck_assert_int_ge(relay1, 0);
	ck_assert(g_polled(relay1, POLLIN));
	ck_assert_int_eq(last_call(0), vec_fd(0)); /* the others kept */
	ck_assert_int_eq(eventfd_write(relay1, 1), 0);
	g_pump();
	ck_assert_int_eq(
		pci_device_msix_pending(virtio_pci_pci_device(P.vp), 1), 1);
	ck_assert(!fd_readable(vec_fd(1)));
	ck_assert_uint_eq(P.sink_sent, 0);
	/* Unmask: the irqfd again, the pending message sent through it. */
	p_wr(P_ENTRY(1) + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
	ck_assert_int_eq(last_call(1), vec_fd(1));
	ck_assert(fd_readable(vec_fd(1)));
	ck_assert_int_eq(
		pci_device_msix_pending(virtio_pci_pci_device(P.vp), 1), 0);
	/* The driver moves transmitq to vector 3: re-pointed. */
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 1);
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, 3);
	ck_assert_int_eq(last_call(1), vec_fd(3));
	/* NO_VECTOR: the relay (nothing is sent for it anyway). */
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, VIRTIO_MSI_NO_VECTOR);
	ck_assert_int_eq(last_call(1), relay1);
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, 1);
	ck_assert_int_eq(last_call(1), vec_fd(1));
	/* The VMM takes vector 0's notifier away (its route is gone):
	 * the relay, before the call returns. */
	ck_assert_int_eq(virtio_pci_set_vector_notifier(P.vp, 0, NULL), 0);
	ck_assert_int_ne(last_call(0), vec_fd(0));
	ck_assert_int_ge(last_call(0), 0);
	ck_assert_int_eq(virtio_pci_set_vector_notifier(P.vp, 0, P.vecn[0]), 0);
	ck_assert_int_eq(last_call(0), vec_fd(0));
	/* The function mask: every vector masked, every ring relayed. */
	p_msix_ctrl(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	ck_assert_int_ne(last_call(0), vec_fd(0));
	ck_assert_int_eq(last_call(1), relay1);
	p_msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_int_eq(last_call(1), vec_fd(1));
	virtio_vhost_vsock_relay_counts(v, &kicks, &calls);
	ck_assert_uint_eq(calls, 1); /* the masked one only */
	/* Reset: the rings taken back and unbound. */
	p_wr(P_COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
	ck_assert_int_eq(last_call(0), -1);
	ck_assert_int_eq(last_call(1), -1);
	ck_assert_int_eq(virtio_device_queue_irq_fd(G.vdev, 0), -1);
	ck_assert(!g_needs_reset());
	pci_vsock_stop();
}
END_TEST

START_TEST(test_vsock_pci_no_irqfd_relays)
{
	struct virtio_vhost_vsock *v = pci_vsock_make(false);
	uint64_t calls;
	int relay0 = last_call(0);

	/* No notifier for the vectors (cvmm with CVMM_IRQFD=0): the kernel
	 * signals the device's relay, which sends the vector's message. */
	ck_assert_int_ge(relay0, 0);
	ck_assert(g_polled(relay0, POLLIN));
	ck_assert_int_eq(eventfd_write(relay0, 1), 0);
	g_pump();
	ck_assert_uint_eq(P.sink_sent, 1);
	virtio_vhost_vsock_relay_counts(v, NULL, &calls);
	ck_assert_uint_eq(calls, 1);
	/* A notifier set while the rings run: direct from then on. */
	ck_assert_int_eq(virtio_pci_set_vector_notifier(P.vp, 0, P.vecn[0]), 0);
	ck_assert_int_eq(last_call(0), vec_fd(0));
	pci_vsock_stop();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("vhost-devices");
	TCase *tc = tcase_create("net");

	tcase_add_test(tc, test_net_features);
	tcase_add_test(tc, test_net_create_errors);
	tcase_add_test(tc, test_net_handover);
	tcase_add_test(tc, test_net_reset_takes_rings_back);
	tcase_add_loop_test(tc, test_net_kernel_refuses, 0,
			    sizeof(net_refused) / sizeof(net_refused[0]));
	tcase_add_test(tc, test_net_ring_error);
	suite_add_tcase(s, tc);
	tc = tcase_create("vsock");
	tcase_add_test(tc, test_vsock_create_and_features);
	tcase_add_test(tc, test_vsock_handover_and_reset);
	tcase_add_test(tc, test_vsock_kick_is_queue_notifier);
	tcase_add_test(tc, test_vsock_pci_call_is_vector_irqfd);
	tcase_add_test(tc, test_vsock_pci_no_irqfd_relays);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(suite(), false);
}
