/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: a guest's config-space and BAR traffic, interrupt
 * eventfds firing, against a PCI passthrough function (pci-passthrough.h)
 * over libvfio with the fake kernel of tests/vfio (an edu-like function:
 * BAR0 4 KiB, a 64-bit BAR2 with a 16-vector MSI-X table and PBA, MSI,
 * INTx).
 *
 * Invariants, after every operation:
 *   - the physical config space changes only in the command register's
 *     forwarded bits (I/O, memory, bus master, Interrupt Disable): the
 *     guest never writes the physical BARs, capabilities or anything else;
 *   - the MSI-X table and PBA bytes of the physical BAR2 never change (both
 *     are emulated, never forwarded; the rest of their pages is device
 *     space the guest may write);
 *   - no VFIO region access leaves its region (the fake aborts);
 *   - at most one of INTx, MSI, MSI-X is enabled on VFIO at a time.
 */
#include <cvmm/devices/pci-passthrough.h>
#include <cvmm/vfio.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake-vfio.h"

#define CFG_OFF	 0xc000u
#define BAR2_OFF 0x4000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake F;

static void put(uint32_t off, uint32_t v, size_t n)
{
	memcpy(F.bar + CFG_OFF + off, &v, n);
}

static void phys(void)
{
	fake_init(&F);
	fake_device(&F, 9);
	F.irq[VFIO_PCI_MSIX_IRQ_INDEX].count = 16;
	fake_region(&F, 2,
		    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
			    VFIO_REGION_INFO_FLAG_MMAP,
		    0x4000, BAR2_OFF, 0, sizeof(struct vfio_region_info));
	fake_region(&F, VFIO_PCI_CONFIG_REGION_INDEX,
		    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
		    256, CFG_OFF, 0, sizeof(struct vfio_region_info));
	put(PCI_VENDOR_ID, 0x11e81234, 4);
	put(PCI_STATUS, PCI_STATUS_CAP_LIST, 2);
	put(PCI_BASE_ADDRESS_0, 0xfea00000, 4);
	put(PCI_BASE_ADDRESS_2, 0xfe00000c, 4);
	put(PCI_INTERRUPT_PIN, 1, 1);
	put(PCI_CAPABILITY_LIST, 0x40, 1);
	put(0x40, PCI_CAP_ID_MSI | 0x50 << 8 | PCI_MSI_FLAGS_64BIT << 16, 4);
	put(0x50, PCI_CAP_ID_MSIX | 15u << 16, 4);
	put(0x54, 0x2000 | 2, 4);
	put(0x58, 0x3000 | 2, 4);
	/* Recognisable bytes under the table and PBA. */
	memset(F.bar + BAR2_OFF + 0x2000, 0x5a, 0x2000);
}

static int msi_ok(void *opaque, uint64_t address, uint32_t d)
{
	(void)opaque;
	(void)address;
	(void)d;
	return 0;
}

static int line_ok(void *opaque, bool level)
{
	(void)opaque;
	(void)level;
	return 0;
}

static void check(const uint8_t *cfg0, struct vfio_device *d)
{
	const uint16_t fwd = PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
			     PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
	uint16_t c0, c1;
	int on = 0;

	memcpy(&c0, cfg0 + PCI_COMMAND, 2);
	memcpy(&c1, F.bar + CFG_OFF + PCI_COMMAND, 2);
	if ((c0 & ~fwd) != (c1 & ~fwd))
		abort();
	if (memcmp(cfg0, F.bar + CFG_OFF, PCI_COMMAND) ||
	    memcmp(cfg0 + PCI_COMMAND + 2, F.bar + CFG_OFF + PCI_COMMAND + 2,
		   256 - PCI_COMMAND - 2))
		abort();
	/* The table (16 x 16 bytes at 0x2000) and PBA (8 bytes at 0x3000);
	 * the rest of their pages is device space the guest may write. */
	for (unsigned i = 0; i < 0x100; i++) {
		if (F.bar[BAR2_OFF + 0x2000 + i] != 0x5a)
			abort();
	}
	for (unsigned i = 0; i < 8; i++) {
		if (F.bar[BAR2_OFF + 0x3000 + i] != 0x5a)
			abort();
	}
	for (uint32_t i = 0; i < 3; i++)
		on += vfio_device_irq_enabled(d, i) > 0;
	if (on > 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfio_container_config cfg = {.sys = &F.sys};
	struct vfio_container *c = NULL;
	struct vfio_group *g = NULL;
	struct vfio_device *d = NULL;
	struct pci_passthrough *p = NULL;
	struct pci_root *root = NULL;
	struct pci_device *dev;
	uint8_t cfg0[256];
	size_t i = 0;

	phys();
	if (vfio_container_create(&cfg, &c) ||
	    vfio_group_create(c, 3, NULL, &g) ||
	    vfio_device_create(g, "x", NULL, &d) ||
	    pci_passthrough_create(d, NULL, &p))
		abort();
	dev = pci_passthrough_pci_device(p);
	pci_device_set_msi_sink(dev, &(struct msi_sink){.send = msi_ok});
	pci_device_set_intx_line(dev, &(struct irq_line){.set = line_ok});
	pci_device_set_bar_address(dev, 0, 0xc0000000);
	pci_device_set_bar_address(dev, 2, 0x800000000ull);
	if (pci_root_create(NULL, &root) ||
	    pci_passthrough_add_to_root(p, root, 1, 0))
		abort();
	memcpy(cfg0, F.bar + CFG_OFF, sizeof(cfg0));
	/* Ops of 8 bytes: kind, width, offset (2), value (4). */
	while (size - i >= 8) {
		const uint8_t *o = data + i;
		unsigned len = 1u << (o[1] & 3);
		uint32_t off = (uint32_t)(o[2] | o[3] << 8);
		uint32_t v;
		uint64_t one = 1, buf = 0;

		memcpy(&v, o + 4, 4);
		i += 8;
		switch (o[0] % 5) {
		case 0:
			if (len == 8)
				len = 4;
			off &= 0xff;
			off &= ~(len - 1);
			pci_device_config_write(dev, off, len, v);
			break;
		case 1:
			pci_device_config_read(dev, off & 0xfc, 4, &v);
			break;
		case 2:
			buf = v | (uint64_t)v << 32;
			pci_device_bar_write(dev, (o[1] >> 2) & 1 ? 2 : 0,
					     off & 0x3ff8, &buf, len);
			break;
		case 3:
			pci_device_bar_read(dev, (o[1] >> 2) & 1 ? 2 : 0,
					    off & 0x3ff8, &buf, len);
			break;
		case 4: {
			unsigned n = pci_passthrough_num_fds(p);
			unsigned k = off % n;

			if (write(pci_passthrough_fd(p, k), &one, 8) == 8)
				pci_passthrough_fd_ready(p, k);
			break;
		}
		}
		check(cfg0, d);
	}
	pci_root_destroy(root);
	pci_passthrough_destroy(p);
	vfio_device_destroy(d);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	return 0;
}
