/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file virtio-net.h
 * libdevices: virtio-net (virtio 1.2, section 5.1), a device type on the
 * virtio device core (cvmm/devices/virtio.h), with frames moved by a
 * backend: the built-in tap backend, the built-in libslirp user-network
 * backend, or one a library user writes.
 *
 *   struct virtio_net *net;
 *   const struct virtio_net_backend_ops *ops;
 *   void *be;
 *   virtio_net_backend_tap_open("tap0", 1, &ops, &be);
 *   struct virtio_net_options o = {.mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56}};
 *   virtio_net_create(ops, be, &o, &net);     // net owns be from now on
 *   virtio_pci_create(virtio_net_device(net), NULL, &vp);
 *   ... the VMM polls virtio_device_poll_fds(virtio_net_device(net)) ...
 *   virtio_net_set_link(net, false);          // cable pulled
 *   virtio_net_destroy(net);                  // after the transport
 *
 * Queues.  2 * max_pairs + 1: receiveq N is 2N, transmitq N is 2N + 1,
 * and the control queue is 2 * max_pairs when the driver negotiated MQ,
 * else queue 2 (virtio 1.2, 5.1.2).  Queue pair N is served by backend
 * queue pair N; pairs at or beyond the number the driver set with
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (1 until it does) are closed on the
 * backend and not polled.
 *
 * Features offered: MAC (when options.mac is set), STATUS, MTU (when options.mtu is set),
 * MRG_RXBUF, CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR, MQ (max_pairs > 1),
 * EVENT_IDX and INDIRECT_DESC (core), and the offloads the backend takes
 * (ops.offloads(): CSUM, GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN, GUEST_UFO,
 * HOST_TSO4/6, HOST_ECN, HOST_UFO), minus those masked in options.  A
 * driver accepting a feature without the one it depends on (GUEST_TSO*
 * without GUEST_CSUM, HOST_TSO* without CSUM, CTRL_* or MQ without
 * CTRL_VQ ...) does not get FEATURES_OK.  Once FEATURES_OK sticks the
 * backend is told the header size (12 bytes, struct virtio_net_hdr_v1:
 * VERSION_1 is always negotiated) and exactly the receive offloads the
 * driver accepted (ops.set_offloads()).
 *
 * Transmit.  Each chain is a 12-byte header and the frame.  The header is
 * copied out of guest memory once and checked; the frame is handed to the
 * backend as iovecs into guest memory (no copy), after the header copy
 * when the backend takes headers.  Per-frame errors are completed with
 * used length 0, counted in tx_errors and the device goes on (no
 * NEEDS_RESET): fewer readable bytes than the header, a frame longer than
 * VIRTIO_NET_MAX_FRAME, a frame needing more than 1024 iovecs, a header
 * flag or GSO type the driver did not negotiate, GSO with a zero segment
 * size or a frame no longer than its header, a checksum start plus offset
 * past the frame.  A backend that refuses a frame counts tx_dropped; one
 * that would block (-EAGAIN) makes the device hold the chain and wait for
 * its tx fd to be writable.
 *
 * Receive.  Chains the driver posted are popped ahead (with MRG_RXBUF up
 * to 64 of them, enough for the largest frame the negotiated offloads
 * allow) and their writable buffers exported as iovecs; the backend reads
 * one frame straight into them.  A frame that does not fit is dropped and
 * counted (rx_oversize); its buffers stay with the device for the next
 * frame.  When the driver has posted no (or too few) buffers the device
 * stops polling the backend's rx fd - nothing is read, nothing dropped,
 * no busy loop - counts rx_no_buffers, and resumes on the next notify of
 * the receive queue.  num_buffers is written before the chains are
 * published together.  Frames the receive filter rejects (CTRL_RX modes,
 * the MAC tables, the device MAC) are counted in rx_filtered.
 *
 * Threads and locking: everything runs under the virtio device lock (see
 * virtio.h); the device creates no threads.  Backend ops are called with
 * the lock held.  A reset forgets held chains without completing them.
 */
#ifndef CVMM_DEVICES_VIRTIO_NET_H
#define CVMM_DEVICES_VIRTIO_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_net;

/** virtio device id of a network card. */
#define VIRTIO_NET_DEVICE_ID 1u
/** Most queue pairs a device may have. */
#define VIRTIO_NET_MAX_PAIRS 16u
/** Header size between the device and its driver (virtio_net_hdr_v1). */
#define VIRTIO_NET_HDR_LEN   12u
/** Longest frame (after the header) accepted on transmit or received:
 *  64 KiB of GSO payload plus an Ethernet header with a VLAN tag. */
#define VIRTIO_NET_MAX_FRAME (65536u + 18u)

/** Offload feature bits a backend may report in ops.offloads(). */
#define VIRTIO_NET_OFFLOAD_FEATURES                                            \
	((1ull << 0) | (1ull << 1) | (1ull << 7) | (1ull << 8) | (1ull << 9) | \
	 (1ull << 10) | (1ull << 11) | (1ull << 12) | (1ull << 13) |           \
	 (1ull << 14))

/* ------------------------------------------------------------ backends */

/**
 * struct virtio_net_backend_ops - what a backend supplies.  All ops are
 * called with the device lock held, from the thread running the device.
 * @pair is a queue pair index below the device's max_pairs.
 *
 * @open_queue_pair:  optional: the driver started using pair @pair (at
 *                    DRIVER_OK for pair 0, by VQ_PAIRS_SET for others).
 *                    A negative errno puts the device into NEEDS_RESET.
 * @close_queue_pair: optional: the driver stopped using it (or reset).
 * @rx_fd:            the fd that is readable (POLLIN) when a frame waits
 *                    for pair @pair, or -1 (never polled).  Asked whenever
 *                    the device updates its poll list; must be stable
 *                    while the pair is open.
 * @tx_fd:            optional: the fd that becomes writable (POLLOUT)
 *                    after @send returned -EAGAIN; may equal @rx_fd.
 * @recv:             read ONE frame into @iov (@iovcnt <= 1024 entries).
 *                    The last entry is a small device-owned scratch
 *                    buffer after the guest's: a frame reaching into it
 *                    did not fit and is dropped.  Returns the bytes
 *                    stored or the frame's full length (either way more
 *                    than the guest's buffers hold for a frame too
 *                    large), -EAGAIN when no frame waits, 0 at end of
 *                    file (a hung-up peer: the device stops polling the
 *                    pair's rx fd until the pair is opened again), another
 *                    negative errno on failure (counted, frame gone).
 * @send:             send ONE frame made of @iov.  Returns >= 0 when it
 *                    was taken (or dropped by the backend), -EAGAIN to
 *                    be called again with the same frame once @tx_fd is
 *                    writable, another negative errno when it was refused.
 * @offloads:         optional: the VIRTIO_NET_OFFLOAD_FEATURES bits the
 *                    backend handles (0 without it).  Only meaningful with
 *                    @set_vnet_hdr_size.
 * @set_vnet_hdr_size: optional: frames carry a virtio-net header of @size
 *                    bytes at their start, both ways, when this returns 0
 *                    (the device passes the guest's header through and
 *                    lets the backend write the receive header).  Absent
 *                    or failing: frames are bare Ethernet; the device
 *                    strips transmit headers and writes zero receive
 *                    headers, and offers no offloads.
 * @set_offloads:     optional: the driver accepted @features (all its
 *                    negotiated bits); the backend may from now on hand
 *                    over frames using exactly the GUEST_* offloads in it
 *                    (0 after a reset).  A negative errno puts the device
 *                    into NEEDS_RESET.
 * @aux_fd, @aux_ready: optional: one more fd for the backend's own work
 *                    (timers, sockets: libslirp), polled for POLLIN; its
 *                    ready function is called with the lock held, after
 *                    which the device tries every open pair's receive.
 * @destroy:          optional: free the backend (virtio_net_destroy()).
 *
 * A backend may instead serve the receive and transmit rings itself (the
 * kernel's vhost-net: virtio_net_backend_vhost_create()); it then sets
 * the three ops below, @recv and @send are not called (may be NULL) and
 * the device keeps the configuration space, the control queue and the
 * feature negotiation:
 * @ring_features:    optional: the transport and ring feature bits (24
 *                    and up, and MRG_RXBUF) the backend can serve; the
 *                    device offers none it lacks (VERSION_1 is required).
 * @rings_start:      pair @pair is opened (after @open_queue_pair): take
 *                    its rings (queues 2 * @pair and 2 * @pair + 1 of
 *                    @dev) and serve them; the negotiated features were
 *                    given to @set_offloads.  A negative errno puts the
 *                    device into NEEDS_RESET.
 * @rings_stop:       pair @pair is being closed (before
 *                    @close_queue_pair): stop serving its rings and hand
 *                    their state back to the device's queues.
 * @rings_notify:     the driver notified @queue of a started pair.
 */
struct virtio_net_backend_ops {
	int (*open_queue_pair)(void *be, uint32_t pair);
	void (*close_queue_pair)(void *be, uint32_t pair);
	int (*rx_fd)(void *be, uint32_t pair);
	int (*tx_fd)(void *be, uint32_t pair);
	ssize_t (*recv)(void *be, uint32_t pair, const struct iovec *iov,
			int iovcnt);
	ssize_t (*send)(void *be, uint32_t pair, const struct iovec *iov,
			int iovcnt);
	uint64_t (*offloads)(void *be);
	int (*set_vnet_hdr_size)(void *be, uint32_t size);
	int (*set_offloads)(void *be, uint64_t features);
	int (*aux_fd)(void *be);
	void (*aux_ready)(void *be, uint32_t revents);
	void (*destroy)(void *be);
	uint64_t (*ring_features)(void *be);
	int (*rings_start)(void *be, uint32_t pair, struct virtio_device *dev);
	void (*rings_stop)(void *be, uint32_t pair);
	void (*rings_notify)(void *be, uint32_t pair, uint32_t queue);
};

/**
 * struct virtio_net_options - how to build the device.  NULL or a
 * zero-initialised struct gives every default.
 * @mac:        the MAC address offered with VIRTIO_NET_F_MAC (default
 *              all zero: MAC is not offered and the driver picks one).
 * @max_pairs:  queue pairs, 1..VIRTIO_NET_MAX_PAIRS (default 1).
 * @queue_size: maximum queue size, power of two 2..32768 (default 256).
 * @mtu:        offered with VIRTIO_NET_F_MTU when non-zero, 68..65535.
 * @no_features: feature bits NOT to offer (e.g. 1 << MRG_RXBUF).
 * @link_down:  start with the link down.
 */
struct virtio_net_options {
	uint8_t mac[6];
	uint32_t max_pairs;
	uint32_t queue_size;
	uint32_t mtu;
	uint64_t no_features;
	bool link_down;
};

/** Per-queue-pair counters (virtio_net_queue_stats()). */
struct virtio_net_queue_stats {
	uint64_t rx_packets;	/**< frames delivered to the driver */
	uint64_t rx_bytes;	/**< their bytes, headers excluded */
	uint64_t rx_oversize;	/**< frames larger than the posted buffers */
	uint64_t rx_filtered;	/**< frames the receive filter rejected */
	uint64_t rx_errors;	/**< backend read errors */
	uint64_t rx_no_buffers; /**< times receive stopped for buffers */
	uint64_t tx_packets;	/**< frames the backend took */
	uint64_t tx_bytes;	/**< their bytes, headers excluded */
	uint64_t tx_errors;	/**< malformed chains/headers (see top) */
	uint64_t tx_dropped;	/**< frames the backend refused */
};

/* ----------------------------------------------------------- life cycle */

/**
 * virtio_net_create() - a virtio-net device whose frames go through the
 * backend @ops / @be.  @ops must outlive the device.  On success the
 * device owns @be (ops.destroy is called by virtio_net_destroy()); on
 * error @be still belongs to the caller.
 * Errors: -EINVAL (NULL @ops, @ops->recv, @ops->send, @ops->rx_fd or @out,
 * bad option), -ENOMEM, virtio_device_create() and poll-fd errors.
 */
CVMM_EXPORT int virtio_net_create(const struct virtio_net_backend_ops *ops,
				  void *be,
				  const struct virtio_net_options *opts,
				  struct virtio_net **out);

/** virtio_net_destroy() - destroy the device core (reset included) and
 *  the backend.  Destroy the transport first and stop polling.  NULL is
 *  fine. */
CVMM_EXPORT void virtio_net_destroy(struct virtio_net *net);

/** virtio_net_device() - the virtio device core, for the transport and
 *  the VMM's poll loop (owned by @net). */
CVMM_EXPORT struct virtio_device *virtio_net_device(struct virtio_net *net);

/**
 * virtio_net_set_link() - the VMM plugs (@up) or pulls the cable: the
 * STATUS field's LINK_UP bit changes and, when the driver is live, a
 * configuration-change interrupt is raised.  While the link is down no
 * frame is received or sent (transmitted chains are completed and counted
 * as tx_dropped).  Takes the device lock.  Errors: -EINVAL.
 */
CVMM_EXPORT int virtio_net_set_link(struct virtio_net *net, bool up);

/**
 * virtio_net_queue_stats() - copy pair @pair's counters.  Takes the
 * device lock.  Errors: -EINVAL (NULL, @pair >= max_pairs).
 */
CVMM_EXPORT int virtio_net_queue_stats(struct virtio_net *net, uint32_t pair,
				       struct virtio_net_queue_stats *out);

/**
 * virtio_net_active_pairs() - queue pairs in use (0 before DRIVER_OK).
 * Takes the device lock.
 */
CVMM_EXPORT uint32_t virtio_net_active_pairs(struct virtio_net *net);

/** Receive modes (virtio_net_rx_mode()). */
struct virtio_net_rx_mode {
	bool promisc, allmulti;
	uint32_t uni_entries, multi_entries; /**< MAC table sizes */
	uint8_t mac[6];			     /**< current device MAC */
};

/** virtio_net_rx_mode() - the receive filter's state as the driver set
 *  it.  Takes the device lock.  Errors: -EINVAL. */
CVMM_EXPORT int virtio_net_rx_mode(struct virtio_net *net,
				   struct virtio_net_rx_mode *out);

/* ------------------------------------------------- built-in backends */

/**
 * virtio_net_backend_tap_open() - the tap backend on the tap interface
 * @name (created if it does not exist and the caller may; an existing one
 * is attached to), opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and,
 * when @pairs > 1, IFF_MULTI_QUEUE with one fd per pair.  Frames move with
 * readv/writev between guest buffers and the tap.  Header size is set with
 * TUNSETVNETHDRSZ, offloads with TUNSETOFFLOAD mirroring what the driver
 * accepted; a pair the driver does not use is detached (TUNSETQUEUE).
 * Errors: -EINVAL (NULL, @pairs 0 or > VIRTIO_NET_MAX_PAIRS, a name too
 * long), open/ioctl errors (-ENOENT without /dev/net/tun, -EPERM without
 * CAP_NET_ADMIN for a tap not owned by the caller).
 */
CVMM_EXPORT int
virtio_net_backend_tap_open(const char *name, uint32_t pairs,
			    const struct virtio_net_backend_ops **ops,
			    void **backend);

/**
 * virtio_net_backend_tap_from_fds() - the tap backend on @nfds tap fds
 * the caller opened (one per pair, with IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR; so an unprivileged VMM can be handed them).  On success
 * the backend owns the fds (and makes them non-blocking); on error they
 * still belong to the caller.  Errors: -EINVAL (bad count, an fd that is
 * not a tap with IFF_VNET_HDR and IFF_NO_PI), -ENOMEM.
 */
CVMM_EXPORT int
virtio_net_backend_tap_from_fds(const int *fds, uint32_t nfds,
				const struct virtio_net_backend_ops **ops,
				void **backend);

/** virtio_net_backend_tap_name() - the interface name of the backend
 *  @ops / @backend when it is a tap backend (NULL for another backend).
 *  Valid while the backend lives. */
CVMM_EXPORT const char *
virtio_net_backend_tap_name(const struct virtio_net_backend_ops *ops,
			    void *backend);

/* ------------------------------------------------ user networking */

/**
 * struct virtio_net_user_fwd - one host port forward of the user-network
 * backend: connections (or datagrams) to @host_addr:@host_port on the
 * host go to @guest_addr:@guest_port in the guest.  Addresses in network
 * byte order; a zero @host_addr listens on every host address, a zero
 * @guest_addr means the first DHCP address (10.0.2.15).
 */
struct virtio_net_user_fwd {
	bool udp;
	struct in_addr host_addr;
	uint16_t host_port;
	struct in_addr guest_addr;
	uint16_t guest_port;
};

/**
 * virtio_net_user_fwd_parse() - parse QEMU's hostfwd syntax,
 * "tcp:127.0.0.1:2222-:22" or "udp::5353-10.0.2.15:53":
 * [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (protocol tcp when
 * empty; ports 1..65535).  Errors: -EINVAL (NULL, anything malformed).
 */
CVMM_EXPORT int virtio_net_user_fwd_parse(const char *spec,
					  struct virtio_net_user_fwd *out);

/**
 * struct virtio_net_user_config - the user-network backend (libslirp).
 * NULL or zero gives the defaults: network 10.0.2.0/24, the host (and the
 * gateway) at 10.0.2.2 reaching the host's 127.0.0.1 too, DNS at 10.0.2.3
 * (forwarding to the host's resolvers), DHCP handing out 10.0.2.15 and up,
 * no port forwards.
 * @restricted: the guest may not reach the outside (only forwards).
 * @no_dhcp, @no_dns: switch the built-in servers off.
 * @fwds, @nfwds: host port forwards (copied).
 */
struct virtio_net_user_config {
	bool restricted;
	bool no_dhcp;
	bool no_dns;
	const struct virtio_net_user_fwd *fwds;
	uint32_t nfwds;
};

/**
 * virtio_net_backend_user_create() - the user-network backend: a NAT
 * TCP/IP stack in the VMM process (libslirp), with the built-in DHCP and
 * DNS servers and host port forwards; needs no privileges and no tap.
 * One queue pair.  Frames are copied into and out of libslirp (it owns
 * its buffers); frames to the guest wait in a bounded queue (256 frames;
 * more are dropped, TCP retransmits) and its rx fd is an eventfd that is
 * readable while the queue is not empty.  libslirp's sockets and timers
 * are behind the aux fd (an epoll fd holding them and a timerfd): the VMM
 * polls it like any other device fd.
 * libslirp is loaded (dlopen of libslirp.so.0, once, thread safe) by the
 * first call and stays loaded.
 * Errors: -EINVAL (bad config), -EOPNOTSUPP (libdevices built without
 * libslirp's header, or libslirp.so.0 cannot be loaded), -EADDRINUSE (a forward's host port is taken), -ENOMEM,
 * epoll/eventfd/timerfd errors.
 */
CVMM_EXPORT int
virtio_net_backend_user_create(const struct virtio_net_user_config *cfg,
			       const struct virtio_net_backend_ops **ops,
			       void **backend);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_NET_H */
