/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The ring layout a virtio fuzz input runs with, chosen by its first byte
 * (the seeds that predate packed rings start with 0: split, as before):
 *   bit 0: the device offers VIRTIO_F_RING_PACKED;
 *   bit 1: it offers VIRTIO_F_IN_ORDER too (only where the device type
 *          completes chains in pop order, see virtio_device_set_ring_features());
 *   bit 2: the driver refuses both (a split ring on a device that offered
 *          packed).
 */
#ifndef CVMM_FUZZ_VIRTIO_RING_H
#define CVMM_FUZZ_VIRTIO_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>

#include <endian.h>
#include <linux/virtio_ring.h>

struct fuzz_ring {
	uint64_t offer; /* the bits given to virtio_device_set_ring_features() */
	uint64_t refuse; /* the bits the driver drops from what it accepts */
};

static inline struct fuzz_ring fuzz_ring_mode(uint8_t b, bool in_order_ok)
{
	struct fuzz_ring r = {0, 0};

	if (b & 1)
		r.offer |= 1ull << VIRTIO_DEVICE_F_RING_PACKED;
	if ((b & 3) == 3 && in_order_ok)
		r.offer |= 1ull << VIRTIO_DEVICE_F_IN_ORDER;
	if (b & 4)
		r.refuse = (1ull << VIRTIO_DEVICE_F_RING_PACKED) |
			   (1ull << VIRTIO_DEVICE_F_IN_ORDER);
	return r;
}

/* Offer @r's bits on @dev (status 0: before the first probe). */
static inline void fuzz_ring_offer(struct virtio_device *dev,
				   struct fuzz_ring r)
{
	if (virtio_device_set_ring_features(dev, r.offer))
		abort();
}

/*
 * A packed descriptor from the bytes a split garbage-descriptor operation
 * takes (so one input means the same in both layouts): @fl bits 0-2 are
 * NEXT, WRITE, INDIRECT, bit 3 the AVAIL bit and bit 4 the USED bit (bit 3
 * alone makes the slot available on the driver's first lap); @id is what
 * was the split descriptor's next.
 */
static inline struct vring_packed_desc
fuzz_packed_desc(uint64_t addr, uint32_t len, uint16_t id, uint8_t fl)
{
	struct vring_packed_desc d;
	uint16_t f = fl & 7;

	if (fl & 8)
		f |= 1u << VRING_PACKED_DESC_F_AVAIL;
	if (fl & 16)
		f |= 1u << VRING_PACKED_DESC_F_USED;
	d.addr = htole64(addr);
	d.len = htole32(len);
	d.id = htole16(id);
	d.flags = htole16(f);
	return d;
}

/*
 * Make a garbage descriptor available on @drv's ring at slot @idx: split,
 * the descriptor (flags bits 0-2) and an avail entry for it; packed, the
 * fuzz_packed_desc() of the same bytes.  The caller notifies.
 */
static inline void fuzz_garbage_desc(struct virtq_driver *drv, uint16_t idx,
				     const struct vring_desc *d)
{
	if (virtq_driver_packed(drv)) {
		struct vring_packed_desc p = fuzz_packed_desc(
			d->addr, d->len, d->next, (uint8_t)d->flags);

		virtq_driver_write_packed_desc(drv, idx, &p);
	} else {
		struct vring_desc s = *d;

		s.flags &= 7;
		virtq_driver_write_desc(drv, idx, &s);
		virtq_driver_push_head(drv, idx);
	}
}

#endif
