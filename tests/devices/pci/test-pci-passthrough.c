/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * PCI passthrough (cvmm/devices/pci-passthrough.h) over libvfio with a
 * fake kernel behind libvfio's seam (tests/vfio/fake-vfio.c): an edu-like
 * function with BAR0 (4 KiB), a 64-bit BAR2 (16 KiB) holding a 16-vector
 * MSI-X table and PBA, MSI and INTx.
 */
#include <cvmm/devices/pci-passthrough.h>
#include <cvmm/vfio.h>

#include <check.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "fake-vfio.h"

#define CFG_OFF	 0xc000u
#define BAR2_OFF 0x4000u

static struct fake F;
static struct vfio_container *C;
static struct vfio_group *G;
static struct vfio_device *D;

struct map_rec {
	uint64_t gpa, size;
	void *host;
	bool map;
};
static struct map_rec maps[16];
static int nmaps;

static int rec_map(void *opaque, uint64_t gpa, void *host, uint64_t size,
		   bool map)
{
	(void)opaque;
	if (nmaps < 16)
		maps[nmaps++] = (struct map_rec){gpa, size, host, map};
	return 0;
}

static struct {
	uint64_t addr;
	uint32_t data;
	int n;
} msi;

static int rec_msi(void *opaque, uint64_t address, uint32_t data)
{
	(void)opaque;
	msi.addr = address;
	msi.data = data;
	msi.n++;
	return 0;
}

static int intx_level = -1;

static int rec_intx(void *opaque, bool level)
{
	(void)opaque;
	intx_level = level;
	return 0;
}

static void put(uint32_t off, const void *v, size_t n)
{
	memcpy(F.bar + CFG_OFF + off, v, n);
}

static void put16(uint32_t off, uint16_t v)
{
	put(off, &v, 2);
}

static void put32(uint32_t off, uint32_t v)
{
	put(off, &v, 4);
}

static void phys_device(void)
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
	put16(PCI_VENDOR_ID, 0x1234);
	put16(PCI_DEVICE_ID, 0x11e8);
	F.bar[CFG_OFF + PCI_REVISION_ID] = 0x10;
	F.bar[CFG_OFF + PCI_CLASS_DEVICE + 1] = 0x00;
	F.bar[CFG_OFF + PCI_CLASS_DEVICE] = 0xff;
	put16(PCI_STATUS, PCI_STATUS_CAP_LIST);
	put16(PCI_COMMAND, 0x0400); /* host left INTx disabled */
	put32(PCI_BASE_ADDRESS_0, 0xfea00000);
	put32(PCI_BASE_ADDRESS_2, 0xc | 0xfe000000); /* 64-bit, prefetch */
	F.bar[CFG_OFF + PCI_INTERRUPT_PIN] = 1;
	F.bar[CFG_OFF + PCI_CAPABILITY_LIST] = 0x40;
	/* MSI: 1 vector, 64-bit; MSI-X: 16 vectors, table 0x2000, PBA
	 * 0x3000, both in BAR2. */
	F.bar[CFG_OFF + 0x40] = PCI_CAP_ID_MSI;
	F.bar[CFG_OFF + 0x41] = 0x50;
	put16(0x42, PCI_MSI_FLAGS_64BIT);
	F.bar[CFG_OFF + 0x50] = PCI_CAP_ID_MSIX;
	F.bar[CFG_OFF + 0x51] = 0;
	put16(0x52, 15);
	put32(0x54, 0x2000 | 2);
	put32(0x58, 0x3000 | 2);
}

static void setup(void)
{
	struct vfio_container_config cfg = {.sys = &F.sys};

	phys_device();
	nmaps = 0;
	memset(&msi, 0, sizeof(msi));
	intx_level = -1;
	ck_assert_int_eq(vfio_container_create(&cfg, &C), 0);
	ck_assert_int_eq(vfio_group_create(C, 3, NULL, &G), 0);
	ck_assert_int_eq(vfio_device_create(G, "0000:00:01.0", NULL, &D), 0);
}

static void teardown(void)
{
	vfio_device_destroy(D);
	vfio_group_destroy(G);
	vfio_container_destroy(C);
	ck_assert_int_eq(F.open_fds, 0);
}

static struct pci_passthrough *mk(void)
{
	struct pci_passthrough_config cfg = {.map = rec_map};
	struct pci_passthrough *p = NULL;
	struct msi_sink sink = {.send = rec_msi};
	struct irq_line line = {.set = rec_intx};

	ck_assert_int_eq(pci_passthrough_create(D, &cfg, &p), 0);
	pci_device_set_msi_sink(pci_passthrough_pci_device(p), &sink);
	pci_device_set_intx_line(pci_passthrough_pci_device(p), &line);
	return p;
}

static struct pci_root *the_root;

/* In a root with BAR addresses, memory decoding and bus mastering on. */
static struct pci_passthrough *mk_in_root(void)
{
	struct pci_passthrough *p = mk();
	struct pci_device *d = pci_passthrough_pci_device(p);

	ck_assert_int_eq(pci_device_set_bar_address(d, 0, 0xc0000000), 0);
	ck_assert_int_eq(pci_device_set_bar_address(d, 2, 0x800000000ull), 0);
	ck_assert_int_eq(pci_root_create(NULL, &the_root), 0);
	ck_assert_int_eq(pci_passthrough_add_to_root(p, the_root, 1, 0), 0);
	ck_assert_int_eq(pci_device_config_write(d, PCI_COMMAND, 2,
						 PCI_COMMAND_MEMORY |
							 PCI_COMMAND_MASTER),
			 0);
	return p;
}

static void rm_from_root(struct pci_passthrough *p)
{
	pci_root_destroy(the_root);
	the_root = NULL;
	pci_passthrough_destroy(p);
}

static uint32_t cfg32(struct pci_device *d, uint32_t off, unsigned len)
{
	uint32_t v = 0;

	ck_assert_int_eq(pci_device_config_read(d, off, len, &v), 0);
	return v;
}

static void kick(struct pci_passthrough *p, unsigned idx)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(pci_passthrough_fd(p, idx), &one, 8), 8);
	ck_assert_int_eq(pci_passthrough_fd_ready(p, idx), 0);
}

START_TEST(identity_bars_caps)
{
	struct pci_passthrough *p = mk();
	struct pci_device *d = pci_passthrough_pci_device(p);
	uint64_t size = 0;

	ck_assert_uint_eq(cfg32(d, PCI_VENDOR_ID, 2), 0x1234);
	ck_assert_uint_eq(cfg32(d, PCI_DEVICE_ID, 2), 0x11e8);
	ck_assert_uint_eq(cfg32(d, PCI_REVISION_ID, 1), 0x10);
	ck_assert_uint_eq(cfg32(d, PCI_CLASS_DEVICE, 2), 0x00ff);
	ck_assert_uint_eq(cfg32(d, PCI_INTERRUPT_PIN, 1), 1);
	ck_assert_int_eq(pci_device_bar_info(d, 0, NULL, &size, NULL), 0);
	ck_assert_uint_eq(size, 0x1000);
	ck_assert_int_eq(pci_device_bar_info(d, 2, NULL, &size, NULL), 0);
	ck_assert_uint_eq(size, 0x4000);
	/* 64-bit prefetchable, as the physical BAR. */
	ck_assert_uint_eq(cfg32(d, PCI_BASE_ADDRESS_2, 4) & 0xf, 0xc);
	ck_assert_int_gt(pci_device_find_capability(d, PCI_CAP_ID_MSI), 0);
	ck_assert_int_gt(pci_device_find_capability(d, PCI_CAP_ID_MSIX), 0);
	ck_assert_uint_eq(pci_passthrough_num_fds(p), 16 + 1 + 1);
	ck_assert_int_eq(pci_passthrough_fd(p, 18), -EINVAL);
	/* INTx enabled on VFIO with its resample fd. */
	ck_assert_int_eq(F.nlog, 2);
	ck_assert_uint_eq(F.log[0].index, VFIO_PCI_INTX_IRQ_INDEX);
	ck_assert_int_eq(F.log[0].fds[0], pci_passthrough_fd(p, 17));
	ck_assert_uint_eq(F.log[1].flags, VFIO_IRQ_SET_DATA_EVENTFD |
						  VFIO_IRQ_SET_ACTION_UNMASK);
	pci_passthrough_destroy(p);
	/* INTx disabled again, the mapped areas released. */
	ck_assert_uint_eq(F.log[2].count, 0);
	ck_assert_int_eq(F.munmaps, 2);
}
END_TEST

START_TEST(bars_mapped_around_msix)
{
	struct pci_passthrough *p = mk();
	struct pci_device *d = pci_passthrough_pci_device(p);
	struct pci_root *root = NULL;
	uint32_t v = 0xabcd1234, back = 0;
	uint16_t cmd;

	ck_assert_int_eq(pci_device_set_bar_address(d, 0, 0xc0000000), 0);
	ck_assert_int_eq(pci_device_set_bar_address(d, 2, 0x800000000ull), 0);
	ck_assert_int_eq(pci_root_create(NULL, &root), 0);
	ck_assert_int_eq(pci_passthrough_add_to_root(p, root, 1, 0), 0);
	ck_assert_int_eq(nmaps, 0);
	ck_assert_int_eq(pci_device_config_write(d, PCI_COMMAND, 2,
						 PCI_COMMAND_MEMORY |
							 PCI_COMMAND_MASTER),
			 0);
	/* Forwarded: the physical command has memory + master, INTx
	 * disable cleared as the guest wrote it. */
	memcpy(&cmd, F.bar + CFG_OFF + PCI_COMMAND, 2);
	ck_assert_uint_eq(cmd, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	/* BAR0 whole; BAR2 without the table and PBA pages. */
	ck_assert_int_eq(nmaps, 2);
	ck_assert(maps[0].map && maps[1].map);
	ck_assert_uint_eq(maps[0].gpa, 0xc0000000);
	ck_assert_uint_eq(maps[0].size, 0x1000);
	ck_assert_ptr_eq(maps[0].host, F.bar);
	ck_assert_uint_eq(maps[1].gpa, 0x800000000ull);
	ck_assert_uint_eq(maps[1].size, 0x2000);
	ck_assert_ptr_eq(maps[1].host, F.bar + BAR2_OFF);

	/* Trapped accesses reach the physical BAR... */
	ck_assert_int_eq(pci_device_bar_write(d, 0, 8, &v, 4), 0);
	ck_assert_int_eq(memcmp(F.bar + 8, &v, 4), 0);
	ck_assert_int_eq(pci_device_bar_read(d, 0, 8, &back, 4), 0);
	ck_assert_uint_eq(back, v);
	/* ...but the MSI-X table is emulated, never forwarded. */
	ck_assert_int_eq(pci_device_bar_write(d, 2, 0x2000, &v, 4), 0);
	ck_assert_uint_eq(F.bar[BAR2_OFF + 0x2000], 0);

	/* Moving BAR0 moves the mapping. */
	ck_assert_int_eq(pci_device_config_write(d, PCI_BASE_ADDRESS_0, 4,
						 0xd0000000),
			 0);
	ck_assert_int_eq(nmaps, 4);
	ck_assert(!maps[2].map);
	ck_assert_uint_eq(maps[2].gpa, 0xc0000000);
	ck_assert(maps[3].map);
	ck_assert_uint_eq(maps[3].gpa, 0xd0000000);
	/* Decode off: unmapped. */
	ck_assert_int_eq(pci_device_config_write(d, PCI_COMMAND, 2, 0), 0);
	ck_assert_int_eq(nmaps, 6);
	ck_assert(!maps[4].map && !maps[5].map);
	pci_root_destroy(root);
	pci_passthrough_destroy(p);
}
END_TEST

START_TEST(msi_routed_to_sink)
{
	struct pci_passthrough *p = mk();
	struct pci_device *d = pci_passthrough_pci_device(p);
	int cap = pci_device_find_capability(d, PCI_CAP_ID_MSI);
	int n;

	ck_assert_int_gt(cap, 0);
	pci_device_config_write(d, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_ADDRESS_LO, 4,
				0xfee01000);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_DATA_64, 2, 0x41);
	F.nlog = 0;
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_FLAGS, 2,
				PCI_MSI_FLAGS_ENABLE);
	/* INTx off, then MSI on with the MSI eventfd. */
	ck_assert_int_eq(F.nlog, 2);
	ck_assert_uint_eq(F.log[0].index, VFIO_PCI_INTX_IRQ_INDEX);
	ck_assert_uint_eq(F.log[0].count, 0);
	ck_assert_uint_eq(F.log[1].index, VFIO_PCI_MSI_IRQ_INDEX);
	ck_assert_uint_eq(F.log[1].count, 1);
	ck_assert_int_eq(F.log[1].fds[0], pci_passthrough_fd(p, 16));
	kick(p, 16);
	ck_assert_int_eq(msi.n, 1);
	ck_assert_uint_eq(msi.addr, 0xfee01000);
	ck_assert_uint_eq(msi.data, 0x41);
	/* A spurious ready delivers nothing. */
	ck_assert_int_eq(pci_passthrough_fd_ready(p, 16), 0);
	ck_assert_int_eq(msi.n, 1);
	/* MSI off: INTx comes back. */
	n = F.nlog;
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_FLAGS, 2, 0);
	ck_assert_int_eq(F.nlog, n + 3);
	ck_assert_uint_eq(F.log[n].index, VFIO_PCI_MSI_IRQ_INDEX);
	ck_assert_uint_eq(F.log[n + 1].index, VFIO_PCI_INTX_IRQ_INDEX);
	/* MSI and MSI-X enabled together (a hostile guest): MSI-X only on
	 * VFIO; MSI back when MSI-X goes off. */
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_FLAGS, 2,
				PCI_MSI_FLAGS_ENABLE);
	cap = pci_device_find_capability(d, PCI_CAP_ID_MSIX);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2,
				PCI_MSIX_FLAGS_ENABLE);
	ck_assert_uint_eq(vfio_device_irq_enabled(D, VFIO_PCI_MSIX_IRQ_INDEX),
			  16);
	ck_assert_uint_eq(vfio_device_irq_enabled(D, VFIO_PCI_MSI_IRQ_INDEX),
			  0);
	ck_assert_uint_eq(vfio_device_irq_enabled(D, VFIO_PCI_INTX_IRQ_INDEX),
			  0);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2, 0);
	ck_assert_uint_eq(vfio_device_irq_enabled(D, VFIO_PCI_MSIX_IRQ_INDEX),
			  0);
	ck_assert_uint_eq(vfio_device_irq_enabled(D, VFIO_PCI_MSI_IRQ_INDEX),
			  1);
	pci_passthrough_destroy(p);
}
END_TEST

START_TEST(msix_routed_masked_pending)
{
	struct pci_passthrough *p = mk_in_root();
	struct pci_device *d = pci_passthrough_pci_device(p);
	int cap = pci_device_find_capability(d, PCI_CAP_ID_MSIX);
	uint32_t lo = 0xfee02000, hi = 0, data = 0x55, ctrl = 0;

	ck_assert_int_gt(cap, 0);
	F.nlog = 0;
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2,
				PCI_MSIX_FLAGS_ENABLE);
	ck_assert_int_eq(F.nlog, 2);
	ck_assert_uint_eq(F.log[1].index, VFIO_PCI_MSIX_IRQ_INDEX);
	ck_assert_uint_eq(F.log[1].count, 16);
	ck_assert_int_eq(F.log[1].fds[3], pci_passthrough_fd(p, 3));
	/* Vector 3 still masked: pending, nothing sent. */
	kick(p, 3);
	ck_assert_int_eq(msi.n, 0);
	ck_assert_int_eq(pci_device_msix_pending(d, 3), 1);
	/* Program and unmask it: the pending message goes out. */
	pci_device_bar_write(d, 2, 0x2000 + 3 * 16, &lo, 4);
	pci_device_bar_write(d, 2, 0x2000 + 3 * 16 + 4, &hi, 4);
	pci_device_bar_write(d, 2, 0x2000 + 3 * 16 + 8, &data, 4);
	pci_device_bar_write(d, 2, 0x2000 + 3 * 16 + 12, &ctrl, 4);
	ck_assert_int_eq(msi.n, 1);
	ck_assert_uint_eq(msi.addr, 0xfee02000);
	ck_assert_uint_eq(msi.data, 0x55);
	kick(p, 3);
	ck_assert_int_eq(msi.n, 2);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2, 0);
	ck_assert_uint_eq(F.log[F.nlog - 3].index, VFIO_PCI_MSIX_IRQ_INDEX);
	ck_assert_uint_eq(F.log[F.nlog - 3].count, 0);
	rm_from_root(p);
}
END_TEST

START_TEST(intx_eoi_on_bar_access)
{
	struct pci_passthrough *p = mk_in_root();
	struct pci_device *d = pci_passthrough_pci_device(p);
	int trig = -1, res = -1;
	uint32_t v;

	ck_assert_int_eq(pci_passthrough_intx_fds(p, &trig, &res), 0);
	ck_assert_int_eq(trig, pci_passthrough_fd(p, 17));
	ck_assert_int_ge(res, 0);
	kick(p, 17);
	ck_assert_int_eq(intx_level, 1);
	ck_assert_int_eq(pci_device_intx_asserted(d), 1);
	F.nlog = 0;
	pci_device_bar_read(d, 0, 0, &v, 4);
	ck_assert_int_eq(intx_level, 0);
	ck_assert_int_eq(F.nlog, 1);
	ck_assert_uint_eq(F.log[0].flags,
			  VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK);
	/* Only once. */
	pci_device_bar_read(d, 0, 0, &v, 4);
	ck_assert_int_eq(F.nlog, 1);
	/* The physical Interrupt Status bit shows through (irqfd mode). */
	ck_assert_uint_eq(cfg32(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	F.bar[CFG_OFF + PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	ck_assert_uint_eq(cfg32(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT,
			  PCI_STATUS_INTERRUPT);
	ck_assert_uint_eq(cfg32(d, PCI_COMMAND, 4) >> 16 & PCI_STATUS_INTERRUPT,
			  PCI_STATUS_INTERRUPT);
	/* Interrupt Disable forwarded to the physical command register. */
	pci_device_config_write(d, PCI_COMMAND + 1, 1,
				PCI_COMMAND_INTX_DISABLE >> 8);
	ck_assert_uint_eq(F.bar[CFG_OFF + PCI_COMMAND + 1] &
				  (PCI_COMMAND_INTX_DISABLE >> 8),
			  PCI_COMMAND_INTX_DISABLE >> 8);
	rm_from_root(p);
}
END_TEST

/* The VMM's route hook for the bypass test: records, answers route_ret. */
static struct {
	unsigned calls;
	uint16_t vector;
	uint64_t addr;
	uint32_t data;
	bool masked;
	int ret;
} route;

static int rec_route(void *opaque, uint16_t vector, uint64_t address,
		     uint32_t data, bool masked)
{
	(void)opaque;
	route.calls++;
	route.vector = vector;
	route.addr = address;
	route.data = data;
	route.masked = masked;
	return route.ret;
}

/* The last SET_IRQS switched one vector of @index to @fd (@line: the
 * caller's, for the failure message). */
static void last_switch_at(int line, uint32_t index, uint32_t vector, int fd)
{
	const struct fake_set_irqs *l;

	ck_assert_int_gt(F.nlog, 0);
	l = &F.log[F.nlog - 1];
	ck_assert_msg(l->index == index && l->start == vector &&
			      l->count == 1 && l->fds[0] == fd,
		      "line %d: last SET_IRQS index %u start %u count %u fd "
		      "%d, want index %u start %u count 1 fd %d",
		      line, l->index, l->start, l->count, l->fds[0], index,
		      vector, fd);
}
#define last_switch(index, vector, fd) \
	last_switch_at(__LINE__, index, vector, fd)

static void msix_entry(struct pci_device *d, unsigned v, uint32_t lo,
		       uint32_t data, uint32_t ctrl)
{
	uint32_t hi = 0;

	pci_device_bar_write(d, 2, 0x2000 + v * 16, &lo, 4);
	pci_device_bar_write(d, 2, 0x2000 + v * 16 + 4, &hi, 4);
	pci_device_bar_write(d, 2, 0x2000 + v * 16 + 8, &data, 4);
	pci_device_bar_write(d, 2, 0x2000 + v * 16 + 12, &ctrl, 4);
}

/* Vectors with a VMM notifier: VFIO signals the VMM's eventfd (its irqfd)
 * while the route is current and the vector unmasked, this object's
 * eventfd otherwise, so masking keeps pending bits and a failed route
 * falls back to the sink. */
START_TEST(vectors_bypass_while_routed_and_unmasked)
{
	struct pci_passthrough_config cfg = {.map = rec_map,
					     .vector_update = rec_route};
	struct pci_passthrough *p = NULL;
	struct pci_device *d;
	struct msi_sink sink = {.send = rec_msi};
	struct event_notifier *nx, *nm;
	uint32_t data;
	int cap, n;

	memset(&route, 0, sizeof(route));
	ck_assert_int_eq(pci_passthrough_create(D, &cfg, &p), 0);
	d = pci_passthrough_pci_device(p);
	pci_device_set_msi_sink(d, &sink);
	ck_assert_int_eq(pci_device_set_bar_address(d, 0, 0xc0000000), 0);
	ck_assert_int_eq(pci_device_set_bar_address(d, 2, 0x800000000ull), 0);
	ck_assert_int_eq(pci_root_create(NULL, &the_root), 0);
	ck_assert_int_eq(pci_passthrough_add_to_root(p, the_root, 1, 0), 0);
	pci_device_config_write(d, PCI_COMMAND, 2,
				PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	ck_assert_uint_eq(pci_passthrough_num_vectors(p), 17);
	ck_assert_int_eq(event_notifier_create(0, &nx), 0);
	ck_assert_int_eq(event_notifier_create(0, &nm), 0);
	ck_assert_int_eq(pci_passthrough_set_vector_notifier(p, 17, nx),
			 -EINVAL);
	/* MSI-X vector 3: the route is asked for at once (masked: MSI-X
	 * off); VFIO is not touched while MSI-X is off. */
	n = F.nlog;
	ck_assert_int_eq(pci_passthrough_set_vector_notifier(p, 3, nx), 0);
	ck_assert_uint_eq(route.calls, 1);
	ck_assert_uint_eq(route.vector, 3);
	ck_assert(route.masked);
	ck_assert_int_eq(F.nlog, n);
	/* Enabled: vector 3 is still masked, so VFIO gets our eventfd. */
	cap = pci_device_find_capability(d, PCI_CAP_ID_MSIX);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2,
				PCI_MSIX_FLAGS_ENABLE);
	ck_assert_uint_eq(F.log[F.nlog - 1].index, VFIO_PCI_MSIX_IRQ_INDEX);
	ck_assert_uint_eq(F.log[F.nlog - 1].count, 16);
	ck_assert_int_eq(F.log[F.nlog - 1].fds[3], pci_passthrough_fd(p, 3));
	/* Programmed and unmasked: VFIO signals the VMM's irqfd. */
	msix_entry(d, 3, 0xfee03000, 0x63, 0);
	ck_assert(!route.masked);
	ck_assert_uint_eq(route.addr, 0xfee03000);
	ck_assert_uint_eq(route.data, 0x63);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, event_notifier_fd(nx));
	/* Masked: back to our eventfd; an interrupt becomes pending. */
	msix_entry(d, 3, 0xfee03000, 0x63, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, pci_passthrough_fd(p, 3));
	kick(p, 3);
	ck_assert_int_eq(pci_device_msix_pending(d, 3), 1);
	ck_assert_int_eq(msi.n, 0);
	ck_assert_int_eq(event_notifier_consume(nx), 0);
	/* Unmasked: the irqfd again, and the pending message goes through
	 * it (not the sink). */
	msix_entry(d, 3, 0xfee03000, 0x63, 0);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, event_notifier_fd(nx));
	ck_assert_int_eq(pci_device_msix_pending(d, 3), 0);
	ck_assert_int_eq(event_notifier_consume(nx), 1);
	ck_assert_int_eq(msi.n, 0);
	/* Function mask: our eventfd; unmask: the irqfd. */
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2,
				PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, pci_passthrough_fd(p, 3));
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2,
				PCI_MSIX_FLAGS_ENABLE);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, event_notifier_fd(nx));
	/* The VMM cannot route a new message: our eventfd, the sink. */
	route.ret = -ENOSPC;
	msix_entry(d, 3, 0xfee04000, 0x64, 0);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, pci_passthrough_fd(p, 3));
	kick(p, 3);
	ck_assert_int_eq(msi.n, 1);
	ck_assert_uint_eq(msi.addr, 0xfee04000);
	ck_assert_uint_eq(msi.data, 0x64);
	/* VFIO refusing the switch (one data write, one update): the
	 * vector stays on our eventfd; the next update tries again. */
	route.ret = 0;
	F.err_set_irqs_at = F.calls_set_irqs + 1;
	data = 0x65;
	pci_device_bar_write(d, 2, 0x2000 + 3 * 16 + 8, &data, 4);
	ck_assert_uint_eq(pci_passthrough_steer_failures(p), 1);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, pci_passthrough_fd(p, 3));
	data = 0x66;
	pci_device_bar_write(d, 2, 0x2000 + 3 * 16 + 8, &data, 4);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, event_notifier_fd(nx));
	/* Without the notifier: our eventfd for good. */
	ck_assert_int_eq(pci_passthrough_set_vector_notifier(p, 3, NULL), 0);
	last_switch(VFIO_PCI_MSIX_IRQ_INDEX, 3, pci_passthrough_fd(p, 3));
	n = (int)route.calls;
	msix_entry(d, 3, 0xfee05000, 0x67, 0);
	ck_assert_uint_eq(route.calls, (unsigned)n);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSIX_FLAGS, 2, 0);

	/* MSI (index 16): enabled with our eventfd, then the vector is
	 * switched to the irqfd once its route is in. */
	ck_assert_int_eq(pci_passthrough_set_vector_notifier(p, 16, nm), 0);
	ck_assert_uint_eq(route.vector, 16);
	ck_assert(route.masked);
	cap = pci_device_find_capability(d, PCI_CAP_ID_MSI);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_ADDRESS_LO, 4,
				0xfee00000);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_DATA_64, 2, 0xdf);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_FLAGS, 2,
				PCI_MSI_FLAGS_ENABLE);
	ck_assert(!route.masked);
	ck_assert_uint_eq(route.addr, 0xfee00000);
	ck_assert_uint_eq(route.data, 0xdf);
	ck_assert_uint_eq(vfio_device_irq_enabled(D, VFIO_PCI_MSI_IRQ_INDEX),
			  1);
	last_switch(VFIO_PCI_MSI_IRQ_INDEX, 0, event_notifier_fd(nm));
	/* Disabled: VFIO's MSI goes off; enabled again, VFIO starts with
	 * our eventfd (recorded while off) and is switched to the irqfd. */
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_FLAGS, 2, 0);
	ck_assert(route.masked);
	ck_assert_uint_eq(vfio_device_irq_enabled(D, VFIO_PCI_MSI_IRQ_INDEX),
			  0);
	pci_device_config_write(d, (uint32_t)cap + PCI_MSI_FLAGS, 2,
				PCI_MSI_FLAGS_ENABLE);
	last_switch(VFIO_PCI_MSI_IRQ_INDEX, 0, event_notifier_fd(nm));
	ck_assert_uint_eq(F.log[F.nlog - 2].index, VFIO_PCI_MSI_IRQ_INDEX);
	ck_assert_uint_eq(F.log[F.nlog - 2].count, 1);
	ck_assert_int_eq(F.log[F.nlog - 2].fds[0], pci_passthrough_fd(p, 16));
	/* An interrupt that still arrived on our eventfd goes through the
	 * framework's notifier (the irqfd), not the sink. */
	n = msi.n;
	kick(p, 16);
	ck_assert_int_eq(msi.n, n);
	ck_assert_int_eq(event_notifier_consume(nm), 1);
	rm_from_root(p);
	event_notifier_destroy(nx);
	event_notifier_destroy(nm);
}
END_TEST

START_TEST(refused_devices)
{
	struct pci_passthrough *p = NULL;

	F.bar[CFG_OFF + PCI_HEADER_TYPE] = PCI_HEADER_TYPE_BRIDGE;
	ck_assert_int_eq(pci_passthrough_create(D, NULL, &p), -EOPNOTSUPP);
	F.bar[CFG_OFF + PCI_HEADER_TYPE] = 0;
	/* A capability list that loops (MSI points at itself). */
	F.bar[CFG_OFF + 0x41] = 0x40;
	ck_assert_int_eq(pci_passthrough_create(D, NULL, &p), -EPROTO);
	F.bar[CFG_OFF + 0x41] = 0x50;
	/* ...or leaves the header's range. */
	F.bar[CFG_OFF + 0x41] = 0x20;
	ck_assert_int_eq(pci_passthrough_create(D, NULL, &p), -EPROTO);
	F.bar[CFG_OFF + 0x41] = 0x50;
	/* An MSI-X table beyond its BAR. */
	put32(0x54, 0x3ff8 | 2);
	ck_assert_int_eq(pci_passthrough_create(D, NULL, &p), -EPROTO);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(pci_passthrough_create(NULL, NULL, &p), -EINVAL);
	pci_passthrough_destroy(NULL);
}
END_TEST

START_TEST(refused_bar_size)
{
	struct pci_passthrough *p = NULL;

	vfio_device_destroy(D);
	fake_region(&F, 0, VFIO_REGION_INFO_FLAG_READ, 0x3000, 0, 0,
		    sizeof(struct vfio_region_info));
	ck_assert_int_eq(vfio_device_create(G, "x", NULL, &D), 0);
	ck_assert_int_eq(pci_passthrough_create(D, NULL, &p), -EPROTO);
	ck_assert_ptr_null(p);
}
END_TEST

static Suite *passthrough_suite(void)
{
	Suite *s = suite_create("pci-passthrough");
	TCase *tc = tcase_create("fake-vfio");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, identity_bars_caps);
	tcase_add_test(tc, bars_mapped_around_msix);
	tcase_add_test(tc, msi_routed_to_sink);
	tcase_add_test(tc, msix_routed_masked_pending);
	tcase_add_test(tc, intx_eoi_on_bar_access);
	tcase_add_test(tc, vectors_bypass_while_routed_and_unmasked);
	tcase_add_test(tc, refused_devices);
	tcase_add_test(tc, refused_bar_size);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(passthrough_suite(), false);
}
