/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file virtio-vsock.h
 * libdevices: virtio-vsock (virtio 1.2, section 5.10), a userspace device
 * type on the virtio device core (cvmm/devices/virtio.h) whose host side is
 * made of unix stream sockets (the scheme Firecracker uses).
 *
 * Queues: 0 rx (device to driver packets), 1 tx (driver to device), 2
 * event.  Config space: guest_cid (le64).  Only stream sockets (no feature
 * bit offered: VIRTIO_VSOCK_F_STREAM is implied, SEQPACKET not offered).
 * The host is CID 2.
 *
 * Host side.  With @uds_path = PATH:
 *   - a guest connect to host port P opens a connection to the unix socket
 *     "PATH_P" (a listener the user runs); no listener there (or its
 *     backlog full): the guest gets RST (connection refused);
 *   - the device listens on PATH; a host program connects, writes
 *     "CONNECT P\n" (P decimal, 0..4294967295), the device sends the guest a
 *     REQUEST from a local port it allocates to guest port P, and on the
 *     guest's RESPONSE writes "OK <local port>\n" to the program, which then
 *     talks to the guest's listener.  A refusal (the guest's RST) or a bad
 *     line closes the program's socket without an OK; a program that
 *     closes its socket before the guest answered cancels the request
 *     (RST to the guest once it has seen it), and so does a handshake
 *     longer than @connect_timeout_ms (a timerfd in the poll list).  The line is read with
 *     MSG_PEEK up to its newline, so bytes after it are the connection's
 *     first data.
 * Without @uds_path there is no host side: every guest connect is refused.
 *
 * Connection state machine (per connection, keyed by the guest port and
 * the host port): REQUEST/RESPONSE open it; RW carries data; SHUTDOWN with
 * RCV and/or SEND closes directions (the guest's SEND: the device shuts
 * the socket's write side once its buffer is flushed; end of file from the
 * host: the device sends SHUTDOWN SEND); once both directions are closed,
 * or on SHUTDOWN with both flags, the device closes the socket and sends
 * RST; the guest's RST closes the socket at once.  A write error on the
 * socket (the host peer is gone) resets the connection.
 *
 * Credit (flow control).  The device advertises @conn_buf_size as its
 * buf_alloc and the bytes it has written to the host socket as fwd_cnt;
 * guest data the socket does not take at once is kept in a per-connection
 * buffer of at most @conn_buf_size bytes (allocated on first need).  A
 * guest that sends beyond its credit gets the connection reset (counted):
 * the VMM never holds more than @conn_buf_size bytes per connection.  The
 * device sends CREDIT_UPDATE when the guest's view of its free space fell
 * below half of it, and on CREDIT_REQUEST.  In the other direction the
 * device reads from a socket only into rx buffers the guest posted and
 * only as much as the guest's credit (its buf_alloc - (bytes sent -
 * its fwd_cnt)) allows; with no credit it stops polling that socket (and
 * sends one CREDIT_REQUEST) until a packet from the guest grants more.
 * Nothing read from a host socket is buffered in the VMM.  So a guest
 * that never reads or a host peer that stalls stops only its own
 * connection; rx buffers are shared among connections round robin.
 *
 * Hostile packets (each counted in struct virtio_vsock_stats): a tx chain
 * shorter than the 44-byte header is dropped; a packet whose src_cid is
 * not the guest's CID or whose dst_cid is not the host's is dropped; a len
 * beyond the chain's readable bytes, an unknown type or op, a packet for a
 * connection that does not exist (other than RST), a REQUEST when
 * @max_connections are open, credit violations: answered with RST.  RSTs
 * that answer packets with no connection are queued up to a fixed bound
 * (256) and further ones dropped and counted.  Tx chains are always
 * completed at once, so one connection never holds the tx queue.  rx
 * buffers shorter than the header are completed empty and counted; one
 * with room for a header only, when data waits, carries a CREDIT_UPDATE.
 *
 * Events.  virtio_vsock_transport_reset() closes every connection and
 * sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue (held until
 * the driver posts an event buffer), as a VMM does after a snapshot
 * restore or a CID change.
 *
 * Polling.  The listening socket and every connection's socket are in the
 * device's poll list (virtio_device_add_poll_fd()); every fd is
 * non-blocking, sockets are written with MSG_NOSIGNAL.
 *
 * Threads: all functions take the device lock (virtio.h); call them with
 * it not held.
 */
#ifndef CVMM_DEVICES_VIRTIO_VSOCK_H
#define CVMM_DEVICES_VIRTIO_VSOCK_H

#include <stdint.h>

#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_vsock;

/** The host's CID (VMADDR_CID_HOST). */
#define VIRTIO_VSOCK_HOST_CID			2u
/** Default guest CID. */
#define VIRTIO_VSOCK_GUEST_CID_DEFAULT		3u
/** Default and largest connection counts. */
#define VIRTIO_VSOCK_MAX_CONNS_DEFAULT		256u
#define VIRTIO_VSOCK_MAX_CONNS_LIMIT		4000u
/** Default, smallest and largest per-connection buffer (buf_alloc). */
#define VIRTIO_VSOCK_CONN_BUF_DEFAULT		(256u << 10)
#define VIRTIO_VSOCK_CONN_BUF_MIN		4096u
#define VIRTIO_VSOCK_CONN_BUF_MAX		(16u << 20)
/** Default time a host program has for its handshake (its CONNECT line
 *  and the guest's answer), in ms. */
#define VIRTIO_VSOCK_CONNECT_TIMEOUT_DEFAULT_MS 10000u
/** Most RSTs queued for packets that have no connection. */
#define VIRTIO_VSOCK_ORPHAN_RST_MAX		256u

/**
 * struct virtio_vsock_params - device configuration; NULL or all-zero
 * means: CID 3, no host side, 256 connections, 256 KiB per connection,
 * queues of 256, 10 s handshakes.
 * @guest_cid:       the guest's CID, 3..0xfffffffe (0 means 3).
 * @uds_path:        the host unix socket path PATH (see the top of the
 *                   file); strlen + 11 < sizeof(sun_path) so that PATH_P
 *                   fits.  NULL: no host side.  An existing socket file at
 *                   PATH is replaced; the device unlinks it at destroy.
 *                   Copied.
 * @max_connections: open connections (both directions, handshakes
 *                   included) at most; 0 means the default; at most
 *                   VIRTIO_VSOCK_MAX_CONNS_LIMIT.
 * @conn_buf_size:   buf_alloc and the most guest bytes held per
 *                   connection; 0 means the default;
 *                   VIRTIO_VSOCK_CONN_BUF_MIN..VIRTIO_VSOCK_CONN_BUF_MAX.
 * @queue_max_size:  every queue's maximum size; 0 means 256.
 * @connect_timeout_ms: a host program's handshake - its CONNECT line and
 *                   the guest's answer - must end within this, or its
 *                   socket is closed (RST to the guest if it saw the
 *                   REQUEST); 0 means
 *                   VIRTIO_VSOCK_CONNECT_TIMEOUT_DEFAULT_MS.
 */
struct virtio_vsock_params {
	uint64_t guest_cid;
	const char *uds_path;
	uint32_t max_connections;
	uint32_t conn_buf_size;
	uint32_t queue_max_size;
	uint32_t connect_timeout_ms;
};

/**
 * virtio_vsock_create() - a virtio-vsock device (device id 19).
 * @cfg: NULL for the defaults; copied.
 * @out: receives the device, owned by the caller.
 * The listening socket is bound and listening on return.
 * Errors: -EINVAL (bad CID, path, counts, sizes), -ENOMEM, a
 * socket/bind/listen errno, or virtio_device_create()'s.
 */
CVMM_EXPORT int virtio_vsock_create(const struct virtio_vsock_params *cfg,
				    struct virtio_vsock **out);

/**
 * virtio_vsock_destroy() - destroy the device core and the device: closes
 * every socket, unlinks the listening socket's path.  The transport must be
 * destroyed first and the VMM must have stopped polling the device's fds.
 * NULL is fine.
 */
CVMM_EXPORT void virtio_vsock_destroy(struct virtio_vsock *v);

/** virtio_vsock_device() - the device core, for a transport and for
 *  polling.  Owned by @v. */
CVMM_EXPORT struct virtio_device *virtio_vsock_device(struct virtio_vsock *v);

/**
 * virtio_vsock_transport_reset() - close every connection (their host
 * sockets are closed; the guest is not sent RSTs) and send the driver
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (now, or when it posts an event
 * buffer; several requests before delivery send one event).  Errors:
 * -EINVAL.
 */
CVMM_EXPORT int virtio_vsock_transport_reset(struct virtio_vsock *v);

/**
 * struct virtio_vsock_stats - counters and state.
 * @conns_open:        connections now open (handshakes included).
 * @conns_total:       connections opened since creation.
 * @guest_connects:    guest REQUESTs that reached a host listener.
 * @guest_refused:     guest REQUESTs answered with RST (no listener, no
 *                     host side, or the connection cap).
 * @host_connects:     host programs whose CONNECT the guest accepted.
 * @host_refused:      host programs closed without OK (bad line, guest
 *                     RST, connection cap, handshake timeout).
 * @host_timeouts:     host programs whose handshake took longer than
 *                     @connect_timeout_ms.
 * @conn_cap_hits:     connections refused because @max_connections were
 *                     open.
 * @rx_bytes:          payload bytes delivered to the guest.
 * @tx_bytes:          payload bytes written to host sockets.
 * @buffered_bytes:    guest bytes held now, all connections together.
 * @rst_sent:          RST packets sent to the guest.
 * @rst_received:      RST packets from the guest.
 * @short_header:      tx chains shorter than the header (dropped).
 * @bad_cid:           packets with a wrong src_cid or dst_cid (dropped).
 * @bad_len:           packets whose len exceeds the chain (RST).
 * @bad_type:          packets with a type other than STREAM (RST).
 * @bad_op:            packets with an unknown op, or an op invalid in the
 *                     connection's state (RST).
 * @unknown_conn:      packets for no connection (RST unless RST).
 * @credit_violations: guest data beyond its credit (connection reset).
 * @orphan_rst_dropped: RSTs not queued because VIRTIO_VSOCK_ORPHAN_RST_MAX
 *                     were already waiting.
 * @rx_short_buffer:   rx buffers shorter than the header (completed
 *                     empty).
 * @events_sent:       TRANSPORT_RESET events delivered.
 */
struct virtio_vsock_stats {
	uint64_t conns_open;
	uint64_t conns_total;
	uint64_t guest_connects;
	uint64_t guest_refused;
	uint64_t host_connects;
	uint64_t host_refused;
	uint64_t host_timeouts;
	uint64_t conn_cap_hits;
	uint64_t rx_bytes;
	uint64_t tx_bytes;
	uint64_t buffered_bytes;
	uint64_t rst_sent;
	uint64_t rst_received;
	uint64_t short_header;
	uint64_t bad_cid;
	uint64_t bad_len;
	uint64_t bad_type;
	uint64_t bad_op;
	uint64_t unknown_conn;
	uint64_t credit_violations;
	uint64_t orphan_rst_dropped;
	uint64_t rx_short_buffer;
	uint64_t events_sent;
};

/** virtio_vsock_stats() - fill @st.  Errors: -EINVAL. */
CVMM_EXPORT int virtio_vsock_stats(struct virtio_vsock *v,
				   struct virtio_vsock_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_VSOCK_H */
