/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the virtio-mmio v2 register file.  A virtio-rng device
 * behind virtio-mmio on a real MMIO bus with guest RAM; the input is a
 * sequence of register reads and writes of random widths and offsets
 * (biased to aligned 32-bit control registers), well-formed probe steps,
 * kicks and interrupt acks.  The first input byte picks the ring features
 * the device offers (fuzz-ring.h: none, RING_PACKED, RING_PACKED +
 * IN_ORDER); the probe step's feature write accepts them or not (any
 * other write may accept anything).
 *
 * Invariants after every operation:
 *   - magic, version and device id never change;
 *   - FEATURES_OK set => accepted features offered and VERSION_1;
 *     DRIVER_OK => FEATURES_OK; an enabled queue => FEATURES_OK and a
 *     size <= QueueNumMax, a power of two unless RING_PACKED was accepted;
 *   - the interrupt line is asserted exactly while InterruptStatus != 0.
 */
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-rng.h>
#include <cvmm/devices/virtio.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <stdlib.h>

#include "fuzz-common.h"
#include "fuzz-ring.h"

#define BASE 0xd0000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool line;

static int line_set(void *o, bool level)
{
	(void)o;
	line = level;
	return 0;
}

static void check(struct virtio_device *vdev, struct io_bus *bus)
{
	uint8_t st;
	uint64_t acc;

	if (fuzz_rd(bus, BASE + VIRTIO_MMIO_MAGIC_VALUE, 4) != 0x74726976 ||
	    fuzz_rd(bus, BASE + VIRTIO_MMIO_VERSION, 4) != 2 ||
	    fuzz_rd(bus, BASE + VIRTIO_MMIO_DEVICE_ID, 4) != 4)
		abort();
	if (line != (fuzz_rd(bus, BASE + VIRTIO_MMIO_INTERRUPT_STATUS, 4) != 0))
		abort();
	virtio_device_lock(vdev);
	st = virtio_device_status(vdev);
	acc = virtio_device_features(vdev);
	if ((st & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    ((acc & ~virtio_device_offered_features(vdev)) ||
	     !(acc & (1ull << VIRTIO_F_VERSION_1))))
		abort();
	if ((st & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(st & VIRTIO_CONFIG_S_FEATURES_OK))
		abort();
	if (virtq_ready(virtio_device_queue(vdev, 0))) {
		uint32_t s = virtq_size(virtio_device_queue(vdev, 0));

		/* Any size in a packed ring, a power of two in a split one. */
		if (!(st & VIRTIO_CONFIG_S_FEATURES_OK) || !s || s > 256 ||
		    (!(acc & (1ull << VIRTIO_DEVICE_F_RING_PACKED)) &&
		     (s & (s - 1))))
			abort();
	}
	virtio_device_unlock(vdev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct guest_region *region = NULL;
	struct guest_memory *mem = fuzz_memory(1 << 20, &region);
	struct io_bus *bus = NULL;
	struct virtio_mmio_config mc = {0};
	struct virtio_device *vdev = NULL;
	struct virtio_mmio *m = NULL;
	unsigned ops = 0;
	struct fuzz_ring ring = fuzz_ring_mode((uint8_t)take(&in, 1), true);
	/* page 1 of the features: VERSION_1 (bit 32), RING_PACKED (34) and
	 * IN_ORDER (35) */
	uint32_t ring_hi = (uint32_t)(ring.offer >> 32);

	line = false;
	mc.irq.set = line_set;
	if (io_bus_create(&bus) || virtio_rng_create(NULL, &vdev) ||
	    virtio_device_set_memory(vdev, mem) ||
	    virtio_device_set_ring_features(vdev, ring.offer) ||
	    virtio_mmio_create(vdev, &mc, &m) ||
	    io_bus_register(bus, BASE, virtio_mmio_size(m),
			    virtio_mmio_bus_ops(), m))
		abort();

	while (in.n && ops++ < 4096) {
		unsigned op = (unsigned)take(&in, 1);
		uint64_t off, val;
		unsigned sz;

		switch (op % 6) {
		case 0:
		case 1:
		case 2: /* aligned 32-bit control register */
			off = (take(&in, 1) & 0x3f) * 4;
			val = take(&in, 4);
			if (op & 0x80)
				fuzz_wr(bus, BASE + off, 4, val);
			else
				(void)fuzz_rd(bus, BASE + off, 4);
			break;
		case 3: /* anything in the window */
			sz = take_size(&in);
			off = take(&in, 2) % 0x200;
			val = take(&in, 8);
			if (off + sz > 0x200)
				break;
			if (op & 0x80)
				fuzz_wr(bus, BASE + off, sz, val);
			else
				(void)fuzz_rd(bus, BASE + off, sz);
			break;
		case 4: /* kick, ack */
			if (op & 0x80)
				fuzz_wr(bus, BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 4,
					take(&in, 1) % 3);
			else
				fuzz_wr(bus, BASE + VIRTIO_MMIO_INTERRUPT_ACK,
					4, take(&in, 1));
			break;
		case 5: /* well-formed probe steps */
			switch (take(&in, 1) % 5) {
			case 0:
				fuzz_wr(bus, BASE + VIRTIO_MMIO_STATUS, 4,
					take(&in, 1));
				break;
			case 1:
				fuzz_wr(bus,
					BASE + VIRTIO_MMIO_DRIVER_FEATURES_SEL,
					4, 1);
				fuzz_wr(bus, BASE + VIRTIO_MMIO_DRIVER_FEATURES,
					4, 1 | (((op >> 3) << 2) & ring_hi));
				break;
			case 2:
				fuzz_wr(bus, BASE + VIRTIO_MMIO_QUEUE_NUM, 4,
					1u << (take(&in, 1) % 10));
				fuzz_wr(bus, BASE + VIRTIO_MMIO_QUEUE_DESC_LOW,
					4, take(&in, 2) << 4);
				fuzz_wr(bus, BASE + VIRTIO_MMIO_QUEUE_AVAIL_LOW,
					4, 0x8000 + (take(&in, 2) << 1));
				fuzz_wr(bus, BASE + VIRTIO_MMIO_QUEUE_USED_LOW,
					4, 0x20000 + (take(&in, 2) << 2));
				break;
			case 3:
				fuzz_wr(bus, BASE + VIRTIO_MMIO_QUEUE_READY, 4,
					take(&in, 1) & 1);
				break;
			default:
				virtio_device_reset(vdev);
			}
			break;
		}
		check(vdev, bus);
	}

	io_bus_unregister(bus, BASE);
	virtio_mmio_destroy(m);
	virtio_device_destroy(vdev);
	io_bus_destroy(bus);
	guest_memory_unref(mem);
	guest_region_unref(region);
	return 0;
}
