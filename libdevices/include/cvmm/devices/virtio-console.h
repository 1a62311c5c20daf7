/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: virtio-console (virtio 1.2, section 5.3), device type on the
 * virtio device core (cvmm/devices/virtio.h).
 *
 * Ports.  Port 0 is the console, connected to a pair of file descriptors
 * (the VMM's terminal: an input fd and an output fd, which may be the same
 * fd).  With VIRTIO_CONSOLE_F_MULTIPORT (offered by default) ports 1..n are
 * named ports, each connected to a host unix stream socket that the device
 * either listens on (server: one peer at a time, a second connection is
 * accepted and closed at once) or connects to (client) - the host<->guest
 * channel pattern of libvirt's virtio-serial channels.  The guest sees a
 * port's name (PORT_NAME) in /sys/class/virtio-ports/vportNpM/name.
 *
 * Queues (virtio 1.2, 5.3.2): port 0 receiveq/transmitq are queues 0/1,
 * the control receiveq/transmitq 2/3, port N's 2N+2/2N+3; the device has
 * 2 * max_nr_ports + 2 queues.  Config space: cols, rows (F_SIZE),
 * max_nr_ports (F_MULTIPORT), emerg_wr (F_EMERG_WRITE).
 *
 * Control protocol (multiport).  The driver posts control buffers and sends
 * DEVICE_READY; the device answers PORT_ADD for each configured port; after
 * the driver's PORT_READY 1 for a port it sends CONSOLE_PORT (port 0),
 * PORT_NAME (named ports, the name with its NUL), PORT_OPEN 1 when the host
 * side is connected, and RESIZE (port 0, when the size is known: given in
 * struct virtio_console_params or by virtio_console_set_size(); again on
 * each later virtio_console_set_size(); payload order: see
 * VIRTIO_CONSOLE_RESIZE_ROWS_FIRST).
 * A host peer connecting or disconnecting sends PORT_OPEN 1/0; the driver's
 * PORT_OPEN 1/0 (a guest process opened/closed the port) is remembered.
 * Device messages waiting for control buffers are kept as per-port flags
 * (bounded: at most one of each kind per port; PORT_OPEN carries the state
 * at the time it is sent).  Hostile control messages - an unknown port id,
 * an id >= max_nr_ports, a port never added, a message shorter than its
 * 8-byte header, an unknown or device-only event - are ignored and counted
 * (struct virtio_console_stats); only the header of a message is read, so
 * a huge chain costs nothing.
 *
 * Data.  Guest output (transmitq) goes to the port's host fd through a
 * bounded output buffer (out_buffer_size).  Port 0 never holds a chain (the
 * Linux console busy-waits for its output buffers): what the terminal
 * cannot take beyond the buffer is dropped and counted.  A socket port
 * holds the chain (one per port) when its buffer is full and the socket
 * would block, and resumes when the socket is writable (POLLOUT) -
 * backpressure on the guest, never on the vCPU.  A write of emerg_wr
 * (honoured whenever F_EMERG_WRITE is offered, negotiated or not) goes to
 * port 0's output the same way, one byte.  Output to a port with no host peer (or after
 * the peer disconnected mid-write) is dropped and counted; the device
 * completes the chains so the guest never waits.
 * Host input is read only into buffers the guest posted on the port's
 * receiveq, and only while the guest has the port open (multiport) or the
 * device is live (port 0 without multiport): when the guest has posted no
 * buffer the device removes POLLIN interest and resumes when buffers
 * arrive.  Nothing of the host input is buffered in the VMM.  While the
 * guest is not reading, a connected socket is polled for POLLRDHUP only: a
 * peer that hangs up is disconnected at once (PORT_OPEN 0), unless it left
 * input unread, which the guest still gets before the disconnect.  A
 * receiveq the driver has not enabled stops input polling until
 * queue_ready.  End of file on port 0's input fd stops reading it; an
 * error writing its output fd drops console output from then on (counted,
 * PORT_OPEN 0 to the guest).
 *
 * Polling.  The sockets (listening and connected) and the terminal fds are
 * added to the device's poll list (virtio_device_add_poll_fd()); the VMM
 * polls virtio_device_poll_fds() and calls the ready functions.  Nothing
 * here blocks: every fd is non-blocking.
 *
 * Threads: all functions take the device lock (virtio.h); call them with
 * it not held.  The VMM should ignore SIGPIPE when port 0's output fd is a
 * pipe (sockets are written with MSG_NOSIGNAL).
 */
#ifndef CVMM_DEVICES_VIRTIO_CONSOLE_H
#define CVMM_DEVICES_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_console;

/** Most ports a device may have (2 * 511 + 2 = 1024 queues). */
#define VIRTIO_CONSOLE_MAX_PORTS	  511u
/** Longest port name (bytes, without the NUL). */
#define VIRTIO_CONSOLE_NAME_MAX		  255u
/** Default per-port output buffer, and the largest accepted. */
#define VIRTIO_CONSOLE_OUT_BUFFER_DEFAULT 65536u
#define VIRTIO_CONSOLE_OUT_BUFFER_MAX	  (16u << 20)
/** Default console size reported with F_SIZE. */
#define VIRTIO_CONSOLE_DEFAULT_COLS	  80u
#define VIRTIO_CONSOLE_DEFAULT_ROWS	  24u

/**
 * struct virtio_console_port_config - one named port (ids 1..nr_ports).
 * @name:   the name the guest sees (PORT_NAME), 1..VIRTIO_CONSOLE_NAME_MAX
 *          bytes; NULL or "" sends no name.  Copied.
 * @path:   host unix socket path (< sizeof(sun_path)); NULL: the port has
 *          no host side (guest output dropped and counted).  Copied.
 * @server: listen on @path (an existing socket file there is replaced;
 *          the device unlinks it at destroy) instead of connecting to it.
 *          A client connects at creation (failure is not an error: the port
 *          stays unconnected), again when the guest opens the port, and on
 *          virtio_console_port_connect().
 */
struct virtio_console_port_config {
	const char *name;
	const char *path;
	bool server;
};

/** Flags of struct virtio_console_params. */
enum {
	/** Do not offer VIRTIO_CONSOLE_F_MULTIPORT (port 0 only). */
	VIRTIO_CONSOLE_NO_MULTIPORT = 1u << 0,
	/** Do not offer VIRTIO_CONSOLE_F_EMERG_WRITE. */
	VIRTIO_CONSOLE_NO_EMERG_WRITE = 1u << 1,
	/** Do not offer VIRTIO_CONSOLE_F_SIZE. */
	VIRTIO_CONSOLE_NO_SIZE = 1u << 2,
	/**
	 * Send the RESIZE control message's payload as (rows, cols), the
	 * order Linux read it in until its commit 5326ab737a47 (Linux 6.1,
	 * Debian 12's kernel, reads rows first), instead of the spec's
	 * struct virtio_console_resize (cols, rows).  The config-space
	 * fields are not affected.
	 */
	VIRTIO_CONSOLE_RESIZE_ROWS_FIRST = 1u << 3,
};

/**
 * struct virtio_console_params - device configuration (the name
 * virtio_console_config belongs to the config-space layout of
 * <linux/virtio_console.h>); NULL or all-zero
 * means: port 0 only, multiport, emergency write and size offered,
 * max_nr_ports 1, 80x24, 64 KiB output buffers, queues of 256.
 * @ports:           @nr_ports named ports, port ids 1..@nr_ports.
 * @nr_ports:        0..VIRTIO_CONSOLE_MAX_PORTS - 1 (needs multiport).
 * @max_nr_ports:    reported in config space; 0 means @nr_ports + 1;
 *                   @nr_ports + 1..VIRTIO_CONSOLE_MAX_PORTS.  Ids between
 *                   the configured ports and this are never added.
 * @cols, @rows:     initial console size (F_SIZE); 0 means 80 / 24.
 * @out_buffer_size: per-port output buffer bytes; 0 means 64 KiB;
 *                   at most VIRTIO_CONSOLE_OUT_BUFFER_MAX.
 * @queue_max_size:  every queue's maximum size; 0 means 256.
 * @flags:           VIRTIO_CONSOLE_NO_* bits.
 */
struct virtio_console_params {
	const struct virtio_console_port_config *ports;
	uint32_t nr_ports;
	uint32_t max_nr_ports;
	uint16_t cols;
	uint16_t rows;
	uint32_t out_buffer_size;
	uint32_t queue_max_size;
	uint32_t flags;
};

/**
 * virtio_console_create() - a virtio-console device (device id 3).
 * @in_fd:  port 0's input (the terminal), or -1 for none.  Not owned;
 *          must already be non-blocking (O_NONBLOCK; -EINVAL otherwise).
 * @out_fd: port 0's output, or -1 (console output dropped and counted).
 *          Not owned; must be non-blocking.  May equal @in_fd.
 * @cfg:    NULL for the defaults; copied (strings too).
 * @out:    receives the console, owned by the caller.
 * Server sockets are bound and listening on return; client ports have
 * tried to connect once.  Errors: -EINVAL (bad fd flags, counts, sizes,
 * names, paths, flags; named ports with VIRTIO_CONSOLE_NO_MULTIPORT),
 * -ENOMEM, a socket/bind/listen errno, or virtio_device_create()'s.
 */
CVMM_EXPORT int virtio_console_create(int in_fd, int out_fd,
				      const struct virtio_console_params *cfg,
				      struct virtio_console **out);

/**
 * virtio_console_destroy() - destroy the device core and the console:
 * closes its sockets (not port 0's fds), unlinks server socket paths.  The
 * transport must be destroyed first and the VMM must have stopped polling
 * the device's fds.  NULL is fine.
 */
CVMM_EXPORT void virtio_console_destroy(struct virtio_console *c);

/**
 * virtio_console_device() - the device core, for a transport
 * (virtio_pci_create(), virtio_mmio_create()) and for polling.  Owned by
 * the console.
 */
CVMM_EXPORT struct virtio_device *
virtio_console_device(struct virtio_console *c);

/**
 * virtio_console_set_size() - the console (port 0) was resized: updates
 * cols/rows in config space with a configuration interrupt (F_SIZE; the
 * mechanism of a driver without multiport) and, when the guest made port 0
 * its console under multiport, sends a RESIZE control message.
 * Errors: -EINVAL.
 */
CVMM_EXPORT int virtio_console_set_size(struct virtio_console *c, uint16_t cols,
					uint16_t rows);

/**
 * virtio_console_port_connect() - a client port without a peer tries to
 * connect to its path again (for a VMM retrying on a timer).  Returns 1
 * when connected (now or already), 0 when the connect failed (no peer
 * listening yet).  Errors: -EINVAL (bad id, not a client port).
 */
CVMM_EXPORT int virtio_console_port_connect(struct virtio_console *c,
					    uint32_t port);

/**
 * struct virtio_console_port_stats - one port's counters and state.
 * @rx_bytes:       host bytes delivered into guest buffers.
 * @tx_bytes:       guest bytes written to the host fd.
 * @tx_dropped:     guest bytes dropped: no host peer, output fd gone, the
 *                  peer disconnected mid-write, or (port 0, emergency
 *                  writes) the output buffer was full.
 * @connects:       host peers accepted or connected.
 * @disconnects:    host peers lost.
 * @refused:        connections accepted and closed because a peer was
 *                  already connected (server ports).
 * @host_connected: a host peer is connected (port 0: an output fd).
 * @guest_ready:    the driver sent PORT_READY 1 (or port 0 without
 *                  multiport while the device is live).
 * @guest_open:     the driver has the port open (PORT_OPEN 1).
 * @rx_stalled:     host input is paused: the guest posted no buffer.
 */
struct virtio_console_port_stats {
	uint64_t rx_bytes;
	uint64_t tx_bytes;
	uint64_t tx_dropped;
	uint64_t connects;
	uint64_t disconnects;
	uint64_t refused;
	bool host_connected;
	bool guest_ready;
	bool guest_open;
	bool rx_stalled;
};

/**
 * virtio_console_port_stats() - fill @st for port @port.
 * Errors: -EINVAL (NULL, @port not configured).
 */
CVMM_EXPORT int virtio_console_port_stats(struct virtio_console *c,
					  uint32_t port,
					  struct virtio_console_port_stats *st);

/**
 * struct virtio_console_stats - device-wide counters.
 * @ctrl_rx:          control messages from the driver handled.
 * @ctrl_tx:          control messages sent to the driver.
 * @ctrl_bad_port:    driver messages naming an id >= max_nr_ports, or a
 *                    port never added (or not configured).
 * @ctrl_truncated:   driver messages shorter than their 8-byte header.
 * @ctrl_unknown:     driver messages with an unknown event, or an event
 *                    only the device sends, or DEVICE_READY / PORT_READY 0
 *                    (the driver reports a failure).
 * @ctrl_no_room:     device messages dropped because the driver's control
 *                    buffer was too small for them.
 * @emerg_writes:     bytes written through emerg_wr.
 */
struct virtio_console_stats {
	uint64_t ctrl_rx;
	uint64_t ctrl_tx;
	uint64_t ctrl_bad_port;
	uint64_t ctrl_truncated;
	uint64_t ctrl_unknown;
	uint64_t ctrl_no_room;
	uint64_t emerg_writes;
};

/** virtio_console_stats() - fill @st.  Errors: -EINVAL. */
CVMM_EXPORT int virtio_console_stats(struct virtio_console *c,
				     struct virtio_console_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_CONSOLE_H */
