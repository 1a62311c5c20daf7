/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the virtio-console control queue (and the port queues
 * around it), driven through the virtio-mmio registers by a guest whose
 * every move comes from the input: control messages of any length and
 * content, split over several descriptors, control receive buffers of any
 * size, port output and receive buffers, host input on port 0, resizes,
 * config-space writes (emerg_wr), driver resets, and raw garbage
 * descriptors on the control transmitq.
 * The first input byte picks the ring (fuzz-ring.h): split, packed, or
 * packed offered and refused by the driver; the garbage descriptors are
 * then packed ones (any id, flags and wrap bits).
 *
 * Invariants checked after every operation:
 *   - every control message the device sends is at least its 8-byte
 *     header (or a zero-length completion of a too small buffer), names a
 *     configured port, carries a device-to-driver event, and PORT_NAME /
 *     RESIZE carry exactly their payload;
 *   - a used length never exceeds the buffer the guest posted;
 *   - the device's counters add up: every driver control message handled
 *     is counted once at most in one of bad_port / unknown, and bytes
 *     delivered to the guest never exceed those the host sent;
 *   - no crash, leak or undefined behaviour (ASan/UBSan).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_mmio.h>

#include <cvmm/devices/virtio-console.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include "fuzz-ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE  (1u << 20)
#define QSIZE	  16u
#define NQ	  8u /* max_nr_ports 3 */
#define NPORTS	  2u /* named ports 1..2 */
#define BUF_BASE  0x40000u
#define BUF_SLOTS 128u
#define SLOT	  2048u

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

/* An invariant: a failure names its line and aborts (a crash). */
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
	struct virtio_console *con;
	struct virtio_device *vdev;
	struct virtio_mmio *mmio;
	struct virtq_driver *drv[NQ];
	uint32_t posted[NQ][QSIZE]; /* writable length of each head */
	struct virtq_driver_buf bufs[NQ][QSIZE][4]; /* pieces of each head */
	unsigned npieces[NQ][QSIZE];
	struct fuzz_ring ring; /* from the input's first byte */
	bool raw;	       /* raw descriptors were written: stop tracking */
	unsigned next_slot;
	int host; /* the peer of port 0's socket */
	uint64_t host_sent;
} F;

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

/* Driver bring-up; false when the device refused something. */
static bool bring_up(void)
{
	uint64_t feat = (1ull << VIRTIO_F_VERSION_1) |
			(1ull << VIRTIO_CONSOLE_F_MULTIPORT) |
			(1ull << VIRTIO_CONSOLE_F_SIZE) |
			(1ull << VIRTIO_CONSOLE_F_EMERG_WRITE) |
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
	uint32_t off = 0, total = len;
	uint16_t head;

	if (!F.drv[q] || F.raw || len == 0)
		return;
	if (len > SLOT * 4)
		len = total = SLOT * 4;
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
	}
	total = 0;
	for (unsigned i = 0; i < pieces; i++)
		total += b[i].len;
	if (virtq_driver_add(F.drv[q], b, pieces, &head) < 0)
		return;
	F.posted[q][head] = data ? 0 : total;
	memcpy(F.bufs[q][head], b, sizeof(b[0]) * pieces);
	F.npieces[q][head] = pieces;
	if (virtq_driver_needs_kick(F.drv[q]))
		w32(VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Check the device's control messages. */
static void drain_ctrl(void)
{
	struct vring_used_elem e;

	if (!F.drv[2] || F.raw)
		return;
	while (virtq_driver_get_used(F.drv[2], &e) == 1) {
		struct virtio_console_control m;
		uint8_t buf[SLOT];

		check(e.id < QSIZE);
		check(e.len <= F.posted[2][e.id]);
		if (e.len == 0)
			continue;
		check(e.len >= sizeof(m) && e.len <= SLOT);
		for (unsigned i = 0, off = 0;
		     i < F.npieces[2][e.id] && off < e.len; i++) {
			const struct virtq_driver_buf *b = &F.bufs[2][e.id][i];
			uint32_t n = b->len < e.len - off ? b->len
							  : e.len - off;

			guest_memory_read(F.mem, b->addr, buf + off, n);
			off += n;
		}
		memcpy(&m, buf, sizeof(m));
		check(m.id <= NPORTS);
		switch (m.event) {
		case VIRTIO_CONSOLE_PORT_ADD:
		case VIRTIO_CONSOLE_CONSOLE_PORT:
		case VIRTIO_CONSOLE_PORT_OPEN:
			check(e.len == sizeof(m));
			break;
		case VIRTIO_CONSOLE_PORT_NAME:
			check(m.id > 0);
			check(e.len > sizeof(m) && buf[e.len - 1] == 0);
			break;
		case VIRTIO_CONSOLE_RESIZE:
			check(m.id == 0 && e.len == sizeof(m) + 4);
			break;
		default:
			check(false);
		}
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
			return;
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				fds[i].ready(fds[i].opaque,
					     (uint32_t)pfd[i].revents);
	}
}

static int setup(struct fuzz_ring ring)
{
	static const struct virtio_console_port_config pc[NPORTS] = {
		{.name = "org.fuzz.one"}, {.name = "two"}};
	struct virtio_console_params p = {.ports = pc,
					  .nr_ports = NPORTS,
					  .max_nr_ports = 3,
					  .out_buffer_size = 4096,
					  .queue_max_size = QSIZE};
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct guest_region *r;
	int sv[2];

	memset(&F, 0, sizeof(F));
	F.ring = ring;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	F.host = sv[1];
	if (guest_region_create(&rp, &r) < 0)
		return -1;
	check(guest_memory_create(&r, 1, &F.mem) == 0);
	guest_region_unref(r);
	check(virtio_console_create(sv[0], sv[0], &p, &F.con) == 0);
	F.vdev = virtio_console_device(F.con);
	fuzz_ring_offer(F.vdev, ring);
	check(virtio_device_set_memory(F.vdev, F.mem) == 0);
	check(virtio_mmio_create(F.vdev, NULL, &F.mmio) == 0);
	return sv[0];
}

static void teardown(int fd0)
{
	virtio_mmio_destroy(F.mmio);
	virtio_console_destroy(F.con);
	drivers_free();
	guest_memory_unref(F.mem);
	close(fd0);
	close(F.host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	uint8_t buf[SLOT * 2];
	int fd0 = setup(fuzz_ring_mode((uint8_t)take(&in, 1), false));
	unsigned ops = 0;

	if (fd0 < 0)
		return 0;
	if (!bring_up())
		goto out;
	/* the Linux start: control buffers and DEVICE_READY */
	for (int i = 0; i < 4; i++)
		add(2, NULL, 512, 1);
	{
		struct virtio_console_control m = {
			.id = 0xffffffffu,
			.event = VIRTIO_CONSOLE_DEVICE_READY,
			.value = 1};

		add(3, (const uint8_t *)&m, sizeof(m), 1);
	}
	while (in.n && ops++ < 256) {
		uint32_t op = take(&in, 1), len, port;

		switch (op % 12) {
		case 0: /* a well-formed control message, fuzzed fields */
		case 1: {
			struct virtio_console_control m;

			m.id = take(&in, 1) % 6;
			if (m.id == 5)
				m.id = take(&in, 4);
			m.event = (uint16_t)(take(&in, 1) % 10);
			m.value = (uint16_t)(take(&in, 1) % 3);
			add(3, (const uint8_t *)&m, sizeof(m), 1);
			break;
		}
		case 2: /* raw control bytes of any length, split */
			len = take(&in, 2) % (sizeof(buf) + 1);
			for (uint32_t i = 0; i < len; i++)
				buf[i] = (uint8_t)take(&in, 1);
			add(3, buf, len, take(&in, 1) % 5);
			break;
		case 3: /* control receive buffer of any size */
			add(2, NULL, take(&in, 2) % 1100 + 1, take(&in, 1) % 5);
			break;
		case 4: /* port output */
			port = take(&in, 1) % 3;
			len = take(&in, 1) % 64 + 1;
			memset(buf, 'o', len);
			add(port == 0 ? 1 : 2 * port + 3, buf, len, 1);
			break;
		case 5: /* port receive buffer */
			port = take(&in, 1) % 3;
			add(port == 0 ? 0 : 2 * port + 2, NULL,
			    take(&in, 1) % 128 + 1, 1);
			break;
		case 6: { /* host input on port 0 */
			ssize_t n;

			len = take(&in, 1) % 64 + 1;
			memset(buf, 'i', len);
			n = write(F.host, buf, len);
			if (n > 0)
				F.host_sent += (uint64_t)n;
			break;
		}
		case 7:
			virtio_console_set_size(F.con, (uint16_t)take(&in, 2),
						(uint16_t)take(&in, 2));
			break;
		case 8: { /* config space write */
			uint32_t off = take(&in, 1) % 16, v = take(&in, 4);
			unsigned sz = 1u << (take(&in, 1) % 3);

			virtio_mmio_write(F.mmio, VIRTIO_MMIO_CONFIG + off, &v,
					  sz);
			break;
		}
		case 9: /* driver reset and bring-up */
			if (!bring_up())
				goto out;
			break;
		case 10: { /* garbage descriptor on the control transmitq */
			struct vring_desc d = {
				.addr = take(&in, 4),
				.len = take(&in, 2),
				.flags = (uint16_t)(take(&in, 1) & 0x1f),
				.next = (uint16_t)take(&in, 1)};
			uint16_t idx = (uint16_t)(take(&in, 1) % QSIZE);

			if (!F.drv[3])
				break;
			F.raw = true;
			fuzz_garbage_desc(F.drv[3], idx, &d);
			w32(VIRTIO_MMIO_QUEUE_NOTIFY, 3);
			break;
		}
		default: /* the VMM's loop runs; the host reads */
			pump();
			while (read(F.host, buf, sizeof(buf)) > 0)
				;
			break;
		}
		drain_ctrl();
		for (uint32_t q = 0; q < NQ; q++)
			if (q != 2)
				drain_used(q);
	}
	{
		struct virtio_console_stats st;
		struct virtio_console_port_stats ps;

		check(virtio_console_stats(F.con, &st) == 0);
		check(st.ctrl_bad_port + st.ctrl_unknown <= st.ctrl_rx);
		check(virtio_console_port_stats(F.con, 0, &ps) == 0);
		check(ps.rx_bytes <= F.host_sent);
	}
out:
	teardown(fd0);
	return 0;
}
