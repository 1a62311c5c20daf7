/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: a whole device fed random rings through a transport.
 * virtio-rng (requests capped at 4 KiB here) behind virtio-pci, probed the
 * way Linux does (EVENT_IDX and INDIRECT_DESC negotiated or not, from the
 * input), then the input writes raw descriptors, avail ring entries,
 * avail.idx, used_event and arbitrary guest bytes, kicks through the
 * notify address, calls the poll list's ready functions (the queue
 * notifier, and the rate limiter's timer when the input chose a rate
 * limit), reads the ISR, resets and probes again.
 *
 * The harness keeps buffers and its own random writes off the used ring
 * (which it checks).
 *
 * The first input byte picks the ring (fuzz-ring.h): split, packed,
 * packed + IN_ORDER, or packed offered and refused by the driver.  In a
 * packed ring the descriptor operation writes packed descriptors (any id,
 * flags and AVAIL/USED bits) into the ring; the split ring operations
 * then write hostile bytes into the driver event suppression area.
 *
 * Invariants after every kick:
 *   - split: used.idx advanced by at most the queue size since the last
 *     check and every new used element has id < queue size and
 *     len <= 4096;
 *   - packed: every descriptor slot the device rewrote is a used
 *     descriptor (AVAIL and USED bits equal) with id < queue size and
 *     len <= 4096;
 *   - nothing outside guest RAM is touched (ASan), the device either
 *     serves or sits in NEEDS_RESET, never both broken and live.
 */
#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-rng.h>
#include <cvmm/devices/virtio.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "fuzz-ring.h"

#define BAR   0xc0000000ull
#define QSZ   8u
#define DESC  0x1000ull
#define AVAIL 0x2000ull
#define USED  0x3000ull
#define MEMSZ (256u << 10)
#define CAP   4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int msi_send(void *o, uint64_t a, uint32_t d)
{
	(void)o;
	(void)a;
	(void)d;
	return 0;
}

/* Whether the last probe negotiated a packed ring, and the descriptor
 * ring as it was before the device last ran. */
static bool packed;
static uint8_t snap[16 * QSZ];

static void probe(struct io_bus *bus, uint64_t features)
{
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 1);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 3);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_GF, 4,
		1 | (uint32_t)(features >> 32));
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 0xb);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_SIZE, 2, QSZ);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_DESCLO, 4, DESC);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_AVAILLO, 4, AVAIL);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_USEDLO, 4, USED);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 0xf);
}

/* New used elements since *@seen: at most a ring's worth, ids and lengths
 * in range. */
static void check_used(struct guest_memory *mem, uint16_t *seen)
{
	uint16_t idx = 0;

	guest_memory_read_u16(mem, USED + 2, &idx);
	if ((uint16_t)(idx - *seen) > QSZ)
		abort();
	while (*seen != idx) {
		struct vring_used_elem e;

		guest_memory_read(mem, USED + 4 + 8ull * (*seen % QSZ), &e,
				  sizeof(e));
		if (e.id >= QSZ || e.len > CAP)
			abort();
		(*seen)++;
	}
}

static void probe_ring(struct io_bus *bus, struct virtio_device *vdev,
		       uint64_t features)
{
	probe(bus, features);
	virtio_device_lock(vdev);
	packed = virtio_device_has_feature(vdev, VIRTIO_DEVICE_F_RING_PACKED);
	virtio_device_unlock(vdev);
}

/* Before the device runs: remember the packed descriptor ring. */
static void before_device(struct guest_memory *mem)
{
	if (packed)
		guest_memory_read(mem, DESC, snap, sizeof(snap));
}

/* After it ran: the split used ring, or the slots it rewrote. */
static void after_device(struct guest_memory *mem, uint16_t *seen)
{
	uint8_t now[sizeof(snap)];

	if (!packed) {
		check_used(mem, seen);
		return;
	}
	guest_memory_read(mem, DESC, now, sizeof(now));
	for (unsigned i = 0; i < QSZ; i++) {
		struct vring_packed_desc d;
		uint16_t fl;

		if (!memcmp(now + 16 * i, snap + 16 * i, 16))
			continue;
		memcpy(&d, now + 16 * i, sizeof(d));
		fl = le16toh(d.flags);
		if (le16toh(d.id) >= QSZ || le32toh(d.len) > CAP ||
		    !((fl >> VRING_PACKED_DESC_F_AVAIL) & 1) !=
			    !((fl >> VRING_PACKED_DESC_F_USED) & 1))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct guest_region *region = NULL;
	struct guest_memory *mem = fuzz_memory(MEMSZ, &region);
	struct io_bus *bus = NULL;
	struct pci_root *root = NULL;
	struct pci_root_config rc = {0};
	struct virtio_pci_config pc = {0};
	struct virtio_rng_config rcfg = {.max_request_bytes = CAP,
					 .queue_max_size = 16};
	struct virtio_device *vdev = NULL;
	struct virtio_pci *vp = NULL;
	struct pci_device *pd;
	uint16_t seen = 0;
	unsigned ops = 0;
	int cap;
	struct fuzz_ring ring = fuzz_ring_mode((uint8_t)take(&in, 1), true);
	uint64_t accept = ring.offer & ~ring.refuse;

	/* Half the inputs run the rng rate-limited (its timerfd is then in
	 * the poll list, called by op 7). */
	if (take(&in, 1) & 1) {
		rcfg.rate_bytes_per_sec = 1u << 20;
		rcfg.burst_bytes = 2048;
	}
	if (io_bus_create(&bus) || virtio_rng_create(&rcfg, &vdev) ||
	    virtio_device_set_memory(vdev, mem))
		abort();
	fuzz_ring_offer(vdev, ring);
	pc.msi.send = msi_send;
	if (virtio_pci_create(vdev, &pc, &vp))
		abort();
	pd = virtio_pci_pci_device(vp);
	rc.mmio_bus = bus;
	if (pci_device_set_bar_address(pd, VIRTIO_PCI_BAR, BAR) ||
	    pci_root_create(&rc, &root) ||
	    virtio_pci_add_to_root(vp, root, 1, 0))
		abort();
	pci_device_config_write(pd, PCI_COMMAND, 2,
				PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	cap = pci_device_find_capability(pd, PCI_CAP_ID_MSIX);
	if (cap <= 0)
		abort();
	pci_device_config_write(pd, (uint32_t)cap + PCI_MSIX_FLAGS, 2,
				PCI_MSIX_FLAGS_ENABLE);
	probe_ring(bus, vdev, accept | (take(&in, 1) & 3) << 28);

	while (in.n && ops++ < 2048) {
		unsigned op = (unsigned)take(&in, 1);

		switch (op % 8) {
		case 0: { /* a descriptor, address mostly inside RAM */
			struct vring_desc d;
			unsigned i = (unsigned)take(&in, 1) % QSZ;

			d.addr = (op & 0x80) ? take(&in, 8)
					     : take(&in, 3) % (MEMSZ + 0x1000);
			/* Buffers never cover the rings below 0x4000: the
			 * device would legitimately write random bytes over
			 * the used ring this harness checks (a guest may do
			 * that to itself). */
			if (d.addr < 0x4000)
				d.addr += 0x4000;
			d.len = (op & 0x40) ? (uint32_t)take(&in, 4)
					    : (uint32_t)take(&in, 2);
			d.flags = (uint16_t)take(&in, 1);
			d.next = (uint16_t)(take(&in, 1) % (QSZ + 2));
			if (packed) {
				struct vring_packed_desc pk =
					fuzz_packed_desc(d.addr, d.len, d.next,
							 (uint8_t)d.flags);

				guest_memory_write(mem, DESC + 16ull * i, &pk,
						   sizeof(pk));
				break;
			}
			guest_memory_write(mem, DESC + 16ull * i, &d,
					   sizeof(d));
			break;
		}
		case 1: { /* avail ring entry */
			uint16_t h = (uint16_t)(take(&in, 1) % (QSZ + 1));
			unsigned slot = (unsigned)take(&in, 1) % QSZ;

			guest_memory_write_u16(mem, AVAIL + 4 + 2ull * slot, h);
			break;
		}
		case 2: { /* publish avail.idx: small steps mostly */
			uint16_t idx = 0;

			guest_memory_read_u16(mem, AVAIL + 2, &idx);
			idx = (op & 0x80) ? (uint16_t)take(&in, 2)
					  : (uint16_t)(idx + take(&in, 1) % 4);
			guest_memory_write_u16(mem, AVAIL + 2, idx);
			break;
		}
		case 3: /* used_event / avail flags */
			guest_memory_write_u16(mem, AVAIL + 4 + 2 * QSZ,
					       (uint16_t)take(&in, 2));
			guest_memory_write_u16(mem, AVAIL,
					       (uint16_t)take(&in, 1));
			break;
		case 4: { /* arbitrary bytes in the rings (not the used
			   * ring, which the checks below read) and buffers */
			uint64_t a = take(&in, 2) % 0x8000;

			if (a >= USED - 8 && a < USED + 0x1000)
				a += 0x1000;
			uint64_t v = take(&in, 8);

			guest_memory_write(mem, a, &v, 1 + (op >> 5));
			break;
		}
		case 5:
		case 6: /* kick, then check the used ring */
			before_device(mem);
			fuzz_wr(bus, BAR + VIRTIO_PCI_NOTIFY_OFFSET, 2, 0);
			after_device(mem, &seen);
			break;
		case 7: /* ISR read, poll-list calls, or reset and probe */
			if ((op & 0xc0) == 0x40) {
				struct virtio_poll_fd fds[4];
				int n = virtio_device_poll_fds(vdev, fds, 4);

				for (int i = 0; i < n && i < 4; i++) {
					before_device(mem);
					fds[i].ready(fds[i].opaque, 1);
					after_device(mem, &seen);
				}
			} else if (op & 0x80) {
				probe_ring(bus, vdev,
					   accept | (take(&in, 1) & 3) << 28);
				guest_memory_fill(mem, DESC, 0, 0x3000);
				seen = 0;
			} else {
				(void)fuzz_rd(bus, BAR + VIRTIO_PCI_ISR_OFFSET,
					      1);
			}
			break;
		}
	}

	pci_root_destroy(root);
	virtio_pci_destroy(vp);
	virtio_device_destroy(vdev);
	io_bus_destroy(bus);
	guest_memory_unref(mem);
	guest_region_unref(region);
	return 0;
}
