/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the virtio-pci modern register file.  A virtio-rng
 * device behind virtio-pci (MSI-X on a recording sink, INTx on a recording
 * line) on a real MMIO bus with guest RAM; the input is a sequence of
 * reads and writes of random widths at random offsets of the BAR, biased to
 * the common configuration, plus config-space accesses (the
 * VIRTIO_PCI_CAP_PCI_CFG window and MSI-X enable) and kicks.  The first
 * input byte picks the ring features the device offers (fuzz-ring.h:
 * none, RING_PACKED, RING_PACKED + IN_ORDER); the probe step's feature
 * write accepts them or not (any other write may accept anything).
 *
 * Invariants after every operation:
 *   - FEATURES_OK set => the accepted features are a subset of the offered
 *     ones and include VERSION_1;
 *   - DRIVER_OK set => FEATURES_OK set;
 *   - an enabled queue => FEATURES_OK set; its size <= max, a power of
 *     two unless RING_PACKED was accepted;
 *   - num_queues reads 1, the config vector reads < table size or
 *     NO_VECTOR.
 */
#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-rng.h>
#include <cvmm/devices/virtio.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include <stdlib.h>

#include "fuzz-common.h"
#include "fuzz-ring.h"

#define BAR  0xc0000000ull
#define NVEC 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned msi_count;
static bool intx_level;

static int msi_send(void *o, uint64_t a, uint32_t d)
{
	(void)o;
	(void)a;
	(void)d;
	msi_count++;
	return 0;
}

static int intx_set(void *o, bool level)
{
	(void)o;
	intx_level = level;
	return 0;
}

static void check(struct virtio_device *vdev, struct io_bus *bus)
{
	uint8_t st;
	uint64_t acc, off;
	uint16_t v;

	virtio_device_lock(vdev);
	st = virtio_device_status(vdev);
	acc = virtio_device_features(vdev);
	off = virtio_device_offered_features(vdev);
	if (st & VIRTIO_CONFIG_S_FEATURES_OK) {
		if (acc & ~off)
			abort();
		if (!(acc & (1ull << VIRTIO_F_VERSION_1)))
			abort();
	}
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
	if (fuzz_rd(bus, BAR + VIRTIO_PCI_COMMON_NUMQ, 2) != 1)
		abort();
	v = (uint16_t)fuzz_rd(bus, BAR + VIRTIO_PCI_COMMON_MSIX, 2);
	if (v >= NVEC && v != VIRTIO_MSI_NO_VECTOR)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct guest_region *region = NULL;
	struct guest_memory *mem = fuzz_memory(1 << 20, &region);
	struct io_bus *bus = NULL;
	struct pci_root *root = NULL;
	struct pci_root_config rc = {0};
	struct virtio_pci_config pc = {0};
	struct virtio_device *vdev = NULL;
	struct virtio_pci *vp = NULL;
	struct pci_device *pd;
	unsigned ops = 0;
	struct fuzz_ring ring = fuzz_ring_mode((uint8_t)take(&in, 1), true);
	/* page 1 of the features: VERSION_1 (bit 32), RING_PACKED (34) and
	 * IN_ORDER (35) */
	uint32_t ring_hi = (uint32_t)(ring.offer >> 32);

	msi_count = 0;
	intx_level = false;
	if (io_bus_create(&bus) || virtio_rng_create(NULL, &vdev) ||
	    virtio_device_set_memory(vdev, mem))
		abort();
	pc.msi.send = msi_send;
	pc.intx.set = intx_set;
	fuzz_ring_offer(vdev, ring);
	if (virtio_pci_create(vdev, &pc, &vp))
		abort();
	pd = virtio_pci_pci_device(vp);
	if (pci_device_set_bar_address(pd, VIRTIO_PCI_BAR, BAR))
		abort();
	rc.mmio_bus = bus;
	if (pci_root_create(&rc, &root) ||
	    virtio_pci_add_to_root(vp, root, 1, 0))
		abort();
	pci_device_config_write(pd, PCI_COMMAND, 2,
				PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

	while (in.n && ops++ < 4096) {
		unsigned op = (unsigned)take(&in, 1), sz = take_size(&in);
		uint64_t off, val;

		switch (op % 8) {
		case 0:
		case 1:
		case 2: /* common cfg, mostly right-sized */
			off = take(&in, 1) % 0x40;
			val = take(&in, 4);
			if (op & 0x80)
				fuzz_wr(bus, BAR + off, sz, val);
			else
				(void)fuzz_rd(bus, BAR + off, sz);
			break;
		case 3: /* anywhere in the BAR */
			off = take(&in, 2) % 0x8000;
			val = take(&in, 8);
			if (off + sz > 0x8000)
				break;
			if (op & 0x80)
				fuzz_wr(bus, BAR + off, sz, val);
			else
				(void)fuzz_rd(bus, BAR + off, sz);
			break;
		case 4: /* kick */
			fuzz_wr(bus,
				BAR + VIRTIO_PCI_NOTIFY_OFFSET +
					(take(&in, 1) % 4) * 4,
				2, take(&in, 2));
			break;
		case 5: /* ISR */
			(void)fuzz_rd(bus, BAR + VIRTIO_PCI_ISR_OFFSET, 1);
			break;
		case 6: { /* config space, incl. the PCI_CFG window */
			uint32_t co = 0x40 + (uint32_t)(take(&in, 1) % 0xc0);
			unsigned len = 1u << (take(&in, 1) % 3);
			uint32_t cv;

			co &= ~(uint32_t)(len - 1);
			if (op & 0x80)
				pci_device_config_write(pd, co, len,
							(uint32_t)take(&in, 4));
			else
				pci_device_config_read(pd, co, len, &cv);
			break;
		}
		case 7: /* a well-formed step of the driver's probe */
			switch (take(&in, 1) % 6) {
			case 0:
				fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1,
					take(&in, 1));
				break;
			case 1:
				fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_GFSELECT,
					4, 1);
				fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_GF, 4,
					1 | (((op >> 3) << 2) & ring_hi));
				break;
			case 2:
				fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_DESCLO,
					4, take(&in, 2) << 4);
				fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_AVAILLO,
					4, 0x8000 + (take(&in, 2) << 1));
				fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_USEDLO,
					4, 0x20000 + (take(&in, 2) << 2));
				break;
			case 3:
				fuzz_wr(bus, BAR + VIRTIO_PCI_COMMON_Q_ENABLE,
					2, 1);
				break;
			case 4: {
				int cap = pci_device_find_capability(
					pd, PCI_CAP_ID_MSIX);

				if (cap > 0)
					pci_device_config_write(
						pd,
						(uint32_t)cap + PCI_MSIX_FLAGS,
						2, take(&in, 2) & 0xc000);
				break;
			}
			default:
				virtio_device_reset(vdev);
			}
			break;
		}
		check(vdev, bus);
	}

	pci_root_destroy(root);
	virtio_pci_destroy(vp);
	virtio_device_destroy(vdev);
	io_bus_destroy(bus);
	guest_memory_unref(mem);
	guest_region_unref(region);
	return 0;
}
