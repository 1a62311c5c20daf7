/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the virtio-vsock packet parser and connection state
 * machine, driven through the virtio-mmio registers by a guest whose every
 * move comes from the input: packets with fuzzed header fields (ops,
 * types, CIDs, ports, lengths, flags, credit) and payloads, raw tx bytes
 * of any length split over descriptors, rx and event buffers of any size,
 * garbage descriptors, driver resets; and by host peers: programs that
 * connect to the device's socket and write CONNECT lines (or garbage),
 * listeners that accept guest connections, writes, closes, transport
 * resets.  Everything runs on real unix sockets in a temporary directory.
 * The first input byte picks the ring (fuzz-ring.h): split, packed, or
 * packed offered and refused by the driver; the garbage descriptors are
 * then packed ones (any id, flags and wrap bits).
 *
 * Invariants checked after every operation:
 *   - every rx packet is a whole header (or an empty completion of a too
 *     small buffer) from the host CID to the guest CID, of type STREAM,
 *     with a known op, whose len is the payload that follows, and only
 *     RW packets carry payload; a used length never exceeds the buffer;
 *   - the device never holds more than max_connections connections nor
 *     more than conn_buf_size guest bytes per connection;
 *   - no crash, leak or undefined behaviour (ASan/UBSan).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_vsock.h>

#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-vsock.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include "fuzz-ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE  (1u << 20)
#define QSIZE	  16u
#define NQ	  3u
#define BUF_BASE  0x40000u
#define BUF_SLOTS 256u
#define SLOT	  2048u
#define CID	  5u
#define MAXC	  4u
#define CBUF	  4096u
#define NHOST	  8u
#define HDR	  ((uint32_t)sizeof(struct virtio_vsock_hdr))

struct in {
	const uint8_t *p;
	size_t n;
};

static uint32_t take(struct in *in, unsigned bytes)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

#define check(x)                                                         \
	do {                                                             \
		if (!(x)) {                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", \
				__FILE__, __LINE__, #x);                 \
			abort();                                         \
		}                                                        \
	} while (0)

static struct {
	struct guest_memory *mem;
	struct virtio_vsock *vs;
	struct virtio_device *vdev;
	struct virtio_mmio *mmio;
	struct virtq_driver *drv[NQ];
	uint32_t posted[NQ][QSIZE];
	struct virtq_driver_buf bufs[NQ][QSIZE][4];
	unsigned npieces[NQ][QSIZE];
	struct fuzz_ring ring; /* from the input's first byte */
	bool raw;
	unsigned next_slot;
	int host[NHOST]; /* host peers: connected to PATH or accepted */
	uint32_t local_ports[4];
} F;

static char dir[64], path[96];
static int listeners[2] = {-1, -1};

static void w32(uint32_t off, uint32_t v)
{
	virtio_mmio_write(F.mmio, off, &v, 4);
}

static uint32_t r32(uint32_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(F.mmio, off, &v, 4);
	return v;
}

static void drivers_free(void)
{
	for (unsigned q = 0; q < NQ; q++) {
		virtq_driver_destroy(F.drv[q]);
		F.drv[q] = NULL;
	}
	memset(F.posted, 0, sizeof(F.posted));
	F.raw = false;
}

static bool bring_up(void)
{
	uint64_t feat = (1ull << VIRTIO_F_VERSION_1) |
			(1ull << VIRTIO_RING_F_EVENT_IDX);

	feat |= F.ring.offer & ~F.ring.refuse;
	drivers_free();
	w32(VIRTIO_MMIO_STATUS, 0);
	w32(VIRTIO_MMIO_STATUS, 1);
	w32(VIRTIO_MMIO_STATUS, 3);
	w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	w32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)feat);
	w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	w32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(feat >> 32));
	w32(VIRTIO_MMIO_STATUS, 11);
	if (!(r32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return false;
	for (uint32_t q = 0; q < NQ; q++) {
		guest_addr_t d, a, u, base = 0x1000u + q * 0x1000u;

		virtq_driver_layout(QSIZE, base, &d, &a, &u);
		if (virtq_driver_create(F.mem, QSIZE, feat, d, a, u,
					&F.drv[q]) < 0)
			return false;
		w32(VIRTIO_MMIO_QUEUE_SEL, q);
		w32(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		w32(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d);
		w32(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		w32(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a);
		w32(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
		w32(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)u);
		w32(VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
		w32(VIRTIO_MMIO_QUEUE_READY, 1);
	}
	w32(VIRTIO_MMIO_STATUS, 15);
	return true;
}

static guest_addr_t slot(void)
{
	return BUF_BASE + (F.next_slot++ % BUF_SLOTS) * SLOT;
}

/* Add a chain of up to 4 pieces; @data NULL: writable of @len. */
static void add(uint32_t q, const uint8_t *data, uint32_t len, unsigned pieces)
{
	struct virtq_driver_buf b[4];
	uint32_t off = 0, total = 0;
	uint16_t head;

	if (!F.drv[q] || F.raw || len == 0)
		return;
	if (len > SLOT * 4)
		len = SLOT * 4;
	if (pieces < 1 || pieces > 4)
		pieces = 1;
	for (unsigned i = 0; i < pieces; i++) {
		uint32_t n = i + 1 == pieces ? len - off : len / pieces;

		if (n > SLOT)
			n = SLOT;
		b[i] = (struct virtq_driver_buf){
			.addr = slot(),
			.len = n ? n : 1,
			.flags = data ? 0 : VRING_DESC_F_WRITE};
		if (data && n)
			guest_memory_write(F.mem, b[i].addr, data + off, n);
		off += n;
		total += b[i].len;
	}
	if (virtq_driver_add(F.drv[q], b, pieces, &head) < 0)
		return;
	F.posted[q][head] = data ? 0 : total;
	memcpy(F.bufs[q][head], b, sizeof(b[0]) * pieces);
	F.npieces[q][head] = pieces;
	if (virtq_driver_needs_kick(F.drv[q]))
		w32(VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Check every packet the device sent. */
static void drain_rx(void)
{
	struct vring_used_elem e;

	if (!F.drv[0] || F.raw)
		return;
	while (virtq_driver_get_used(F.drv[0], &e) == 1) {
		struct virtio_vsock_hdr h;
		uint8_t buf[HDR];

		check(e.id < QSIZE);
		check(e.len <= F.posted[0][e.id]);
		if (e.len == 0)
			continue;
		check(e.len >= HDR);
		for (unsigned i = 0, off = 0;
		     i < F.npieces[0][e.id] && off < HDR; i++) {
			const struct virtq_driver_buf *b = &F.bufs[0][e.id][i];
			uint32_t n = b->len < HDR - off ? b->len : HDR - off;

			guest_memory_read(F.mem, b->addr, buf + off, n);
			off += n;
		}
		memcpy(&h, buf, HDR);
		check(h.src_cid == VIRTIO_VSOCK_HOST_CID);
		check(h.dst_cid == CID);
		check(h.type == VIRTIO_VSOCK_TYPE_STREAM);
		check(h.op >= VIRTIO_VSOCK_OP_REQUEST &&
		      h.op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST);
		check(h.len == e.len - HDR);
		check(h.op == VIRTIO_VSOCK_OP_RW || h.len == 0);
		if (h.op == VIRTIO_VSOCK_OP_REQUEST)
			F.local_ports[h.src_port & 3] = h.src_port;
	}
}

static void drain_used(uint32_t q)
{
	struct vring_used_elem e;

	if (!F.drv[q] || F.raw)
		return;
	while (virtq_driver_get_used(F.drv[q], &e) == 1) {
		check(e.id < QSIZE);
		check(e.len <= F.posted[q][e.id]);
	}
}

static void host_add(int fd)
{
	for (unsigned i = 0; i < NHOST; i++) {
		if (F.host[i] < 0) {
			fcntl(fd, F_SETFL, O_NONBLOCK);
			F.host[i] = fd;
			return;
		}
	}
	close(fd);
}

static void pump(void)
{
	for (int round = 0; round < 8; round++) {
		struct virtio_poll_fd fds[32];
		struct pollfd pfd[32];
		int n = virtio_device_poll_fds(F.vdev, fds, 32);

		check(n >= 0 && n <= 32);
		for (int i = 0; i < n; i++)
			pfd[i] =
				(struct pollfd){.fd = fds[i].fd,
						.events = (short)fds[i].events};
		if (poll(pfd, (nfds_t)n, 0) <= 0)
			break;
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				fds[i].ready(fds[i].opaque,
					     (uint32_t)pfd[i].revents);
	}
	/* the host listeners accept */
	for (unsigned l = 0; l < 2; l++) {
		int fd;

		while ((fd = accept4(listeners[l], NULL, NULL,
				     SOCK_NONBLOCK)) >= 0)
			host_add(fd);
	}
}

static void check_stats(void)
{
	struct virtio_vsock_stats st;

	check(virtio_vsock_stats(F.vs, &st) == 0);
	check(st.conns_open <= MAXC);
	check(st.buffered_bytes <= (uint64_t)MAXC * CBUF);
}

static void once(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (dir[0])
		return;
	signal(SIGPIPE, SIG_IGN); /* host peers write to closed sockets */
	snprintf(dir, sizeof(dir), "/tmp/fuzz-vsock-XXXXXX");
	check(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/v", dir);
	for (unsigned l = 0; l < 2; l++) {
		listeners[l] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		check(listeners[l] >= 0);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", path,
			 l + 1);
		unlink(sa.sun_path);
		check(bind(listeners[l], (struct sockaddr *)&sa, sizeof(sa)) ==
		      0);
		check(listen(listeners[l], 16) == 0);
	}
}

static bool setup(struct fuzz_ring ring)
{
	struct virtio_vsock_params p = {.guest_cid = CID,
					.uds_path = path,
					.max_connections = MAXC,
					.conn_buf_size = CBUF,
					.queue_max_size = QSIZE};
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct guest_region *r;

	once();
	memset(&F, 0, sizeof(F));
	F.ring = ring;
	for (unsigned i = 0; i < NHOST; i++)
		F.host[i] = -1;
	if (guest_region_create(&rp, &r) < 0)
		return false;
	check(guest_memory_create(&r, 1, &F.mem) == 0);
	guest_region_unref(r);
	check(virtio_vsock_create(&p, &F.vs) == 0);
	F.vdev = virtio_vsock_device(F.vs);
	fuzz_ring_offer(F.vdev, ring);
	check(virtio_device_set_memory(F.vdev, F.mem) == 0);
	check(virtio_mmio_create(F.vdev, NULL, &F.mmio) == 0);
	return true;
}

static void teardown(void)
{
	virtio_mmio_destroy(F.mmio);
	virtio_vsock_destroy(F.vs);
	drivers_free();
	guest_memory_unref(F.mem);
	for (unsigned i = 0; i < NHOST; i++)
		if (F.host[i] >= 0)
			close(F.host[i]);
	for (unsigned l = 0; l < 2; l++) {
		int fd;

		while ((fd = accept4(listeners[l], NULL, NULL, 0)) >= 0)
			close(fd);
	}
}

static uint32_t fuzz_port(struct in *in, bool host)
{
	uint32_t v = take(in, 1);

	switch (v % 4) {
	case 0:
		return host ? 1 + (v >> 2) % 3 : 100 + (v >> 2) % 4;
	case 1:
		return F.local_ports[(v >> 2) & 3];
	case 2:
		return take(in, 4);
	default:
		return host ? 1 : 100;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	uint8_t buf[SLOT * 2];
	unsigned ops = 0;

	if (!setup(fuzz_ring_mode((uint8_t)take(&in, 1), false)))
		return 0;
	if (!bring_up())
		goto out;
	for (int i = 0; i < 8; i++)
		add(0, NULL, 4096 + HDR, 3);
	add(2, NULL, 4, 1);
	while (in.n && ops++ < 256) {
		uint32_t op = take(&in, 1), len;

		switch (op % 13) {
		case 0: /* a packet with fuzzed fields */
		case 1:
		case 2: {
			struct virtio_vsock_hdr h = {0};
			uint32_t sel = take(&in, 1);

			h.src_cid = sel & 1 ? CID : take(&in, 4);
			h.dst_cid = sel & 2 ? VIRTIO_VSOCK_HOST_CID
					    : take(&in, 4);
			h.src_port = fuzz_port(&in, false);
			h.dst_port = fuzz_port(&in, true);
			h.type = sel & 4 ? VIRTIO_VSOCK_TYPE_STREAM
					 : (uint16_t)take(&in, 2);
			h.op = (uint16_t)(take(&in, 1) % 9);
			h.flags = take(&in, 1) % 4;
			h.buf_alloc = sel & 8 ? 65536 : take(&in, 4);
			h.fwd_cnt = sel & 16 ? 0 : take(&in, 4);
			len = take(&in, 2) % 1500;
			h.len = sel & 32 ? len : take(&in, 4);
			memcpy(buf, &h, HDR);
			memset(buf + HDR, 'g', len);
			add(1, buf, HDR + len, 1 + (sel >> 6) % 3);
			break;
		}
		case 3: /* raw tx bytes of any length, split */
			len = take(&in, 2) % (sizeof(buf) + 1);
			for (uint32_t i = 0; i < len; i++)
				buf[i] = (uint8_t)take(&in, 1);
			add(1, buf, len, take(&in, 1) % 5);
			break;
		case 4: /* rx buffer of any size */
			add(0, NULL, take(&in, 2) % 5000 + 1, take(&in, 1) % 5);
			break;
		case 5: /* event buffer */
			add(2, NULL, take(&in, 1) % 8 + 1, 1);
			break;
		case 6: { /* a host program connects */
			struct sockaddr_un sa = {.sun_family = AF_UNIX};
			int fd =
				socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
			char line[48];
			int n;

			if (fd < 0)
				break;
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
				close(fd);
				break;
			}
			if (take(&in, 1) & 1) {
				n = snprintf(line, sizeof(line), "CONNECT %u\n",
					     fuzz_port(&in, false));
			} else {
				n = (int)(take(&in, 1) % sizeof(line));
				for (int i = 0; i < n; i++)
					line[i] = (char)take(&in, 1);
			}
			if (n > 0 && write(fd, line, (size_t)n) < 0) {
				close(fd);
				break;
			}
			host_add(fd);
			break;
		}
		case 7: { /* a host peer writes */
			int fd = F.host[take(&in, 1) % NHOST];

			len = take(&in, 2) % sizeof(buf) + 1;
			memset(buf, 'h', len);
			if (fd >= 0 && write(fd, buf, len) < 0)
				break;
			break;
		}
		case 8: { /* a host peer reads, or closes */
			uint32_t i = take(&in, 1);
			int fd = F.host[i % NHOST];

			if (fd < 0)
				break;
			if (i & 0x80) {
				close(fd);
				F.host[i % NHOST] = -1;
			} else {
				while (read(fd, buf, sizeof(buf)) > 0)
					;
			}
			break;
		}
		case 9:
			virtio_vsock_transport_reset(F.vs);
			break;
		case 10:
			if (!bring_up())
				goto out;
			break;
		case 11: { /* garbage descriptor on the tx queue */
			struct vring_desc d = {
				.addr = take(&in, 4),
				.len = take(&in, 2),
				.flags = (uint16_t)(take(&in, 1) & 0x1f),
				.next = (uint16_t)take(&in, 1)};
			uint16_t idx = (uint16_t)(take(&in, 1) % QSIZE);

			if (!F.drv[1])
				break;
			F.raw = true;
			fuzz_garbage_desc(F.drv[1], idx, &d);
			w32(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
			break;
		}
		default:
			pump();
			break;
		}
		drain_rx();
		drain_used(1);
		drain_used(2);
		check_stats();
	}
out:
	teardown();
	return 0;
}
