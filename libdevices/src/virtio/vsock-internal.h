/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-vsock inside libdevices: the state shared by vsock.c (queues,
 * ops, public API) and vsock-conn.c (the connection table and its state
 * machine).  Everything here runs with the device lock held.
 */
#ifndef CVMM_DEVICES_VSOCK_INTERNAL_H
#define CVMM_DEVICES_VSOCK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

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
	uint64_t deadline_ns; /* handshake (HOST_LINE, HOST_REQ) ends */
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
	int timer_fd;	       /* handshake deadlines (with a host side) */
	uint64_t timer_at;     /* when it is armed for; 0: not armed */
	uint64_t handshake_ns; /* connect_timeout_ms */
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

/* vsock.c */
/** The device is live: DRIVER_OK, not NEEDS_RESET. */
bool vsock_live(struct virtio_vsock *v);
/** Send what waits for the rx queue, while the guest has buffers. */
void vsock_rx_pump(struct virtio_vsock *v);

/* vsock-conn.c */
/** Bring a connection's poll entry in line with its state. */
void vsock_conn_update_poll(struct vs_conn *c);
/** Close every connection (no RST) and forget the queued RSTs. */
void vsock_close_all(struct virtio_vsock *v);
/** Whether @c has a packet for the rx queue. */
bool vsock_conn_has_rx(const struct vs_conn *c);
/** Write @c's next packet into @ch (writable >= HDR_LEN): the used
 *  length, 0 when nothing was sent (give the chain back), -1 when the
 *  queue broke. */
int vsock_conn_fill_rx(struct vs_conn *c, struct virtq_chain *ch);
/** A header from the host side (@host_port) to the guest. */
void vsock_hdr_fill(struct virtio_vsock *v, struct virtio_vsock_hdr *h,
		    uint32_t host_port, uint32_t guest_port, uint16_t op);
/** One packet from the guest, header @h, payload at @ch's cursor. */
void vsock_packet(struct virtio_vsock *v, const struct virtio_vsock_hdr *h,
		  struct virtq_chain *ch);
/** Bind and listen on the host socket path, add it to the poll list. */
int vsock_listen(struct virtio_vsock *v);

#endif /* CVMM_DEVICES_VSOCK_INTERNAL_H */
