/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Unit tests for the PCI framework: host bridge, config mechanism #1, ECAM,
 * config-space masks, BARs (sizing, decoding, moves on real io_bus
 * instances), capabilities, MSI-X and INTx.
 */
#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/pci.h>
#include <cvmm/vm-allocator.h>

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "cvmm-check.h"
#include "irq-recorder.h"

#define ECAM_BASE  0xe0000000ull
#define MEM32_BASE 0xc0000000ull
#define MEM32_LAST 0xdfffffffull
#define MEM64_BASE 0x8000000000ull
#define MEM64_LAST 0x8fffffffffull
#define IO_BASE	   0xc000ull
#define IO_LAST	   0xffffull

#define DEVA PCI_ROOT_DEVFN(1, 0)
#define DEVB PCI_ROOT_DEVFN(2, 0)

/* A fake device: BAR contents are plain memory. */
struct fake {
	uint8_t mem[PCI_STD_NUM_BARS][0x4000];
	atomic_uint reads;
	atomic_uint writes;
	unsigned last_bar;
	uint64_t last_off;
	unsigned last_len;
	unsigned remaps;
	unsigned remap_bar;
	bool remap_mapped;
	uint64_t remap_addr;
	unsigned cfg_writes;
	uint32_t cfg_last_off;
	unsigned msi_updates;
	bool mu_enabled;
	unsigned mu_nvec;
	unsigned msix_updates;
	uint16_t mu_vector;
	uint64_t mu_addr;
	uint32_t mu_data;
	bool mu_masked;
	unsigned mu_msi_count; /* messages sent before the last update */
	/* msi_vector_update: calls per vector, the last call, the answer */
	unsigned mvu_calls[32];
	unsigned mvu_vector;
	uint64_t mvu_addr;
	uint32_t mvu_data;
	bool mvu_masked;
	unsigned mvu_msi_count;
	int mvu_ret;
};

static struct msi_recorder msi;

static void fake_bar_read(void *opaque, unsigned bar, uint64_t off, void *data,
			  unsigned len)
{
	struct fake *f = opaque;

	atomic_fetch_add(&f->reads, 1);
	memcpy(data, &f->mem[bar][off], len);
}

static void fake_bar_write(void *opaque, unsigned bar, uint64_t off,
			   const void *data, unsigned len)
{
	struct fake *f = opaque;

	atomic_fetch_add(&f->writes, 1);
	f->last_bar = bar;
	f->last_off = off;
	f->last_len = len;
	memcpy(&f->mem[bar][off], data, len);
}

static void fake_remap(void *opaque, unsigned bar, bool mapped, uint64_t addr,
		       uint64_t size)
{
	struct fake *f = opaque;

	(void)size;
	f->remaps++;
	f->remap_bar = bar;
	f->remap_mapped = mapped;
	f->remap_addr = addr;
}

static void fake_cfg_write(void *opaque, uint32_t off, unsigned len,
			   uint32_t value)
{
	struct fake *f = opaque;

	(void)len;
	(void)value;
	f->cfg_writes++;
	f->cfg_last_off = off;
}

static int fake_msix_update(void *opaque, uint16_t vector, uint64_t address,
			    uint32_t data, bool masked)
{
	struct fake *f = opaque;

	f->msix_updates++;
	f->mu_vector = vector;
	f->mu_addr = address;
	f->mu_data = data;
	f->mu_masked = masked;
	f->mu_msi_count = msi.count;
	return 0;
}

static void fake_msi_update(void *opaque, bool enabled, uint64_t address,
			    uint32_t data, unsigned nvec)
{
	struct fake *f = opaque;

	f->msi_updates++;
	f->mu_enabled = enabled;
	f->mu_addr = address;
	f->mu_data = data;
	f->mu_nvec = nvec;
}

static int fake_msi_vector_update(void *opaque, unsigned vector,
				  uint64_t address, uint32_t data, bool masked)
{
	struct fake *f = opaque;

	ck_assert_uint_lt(vector, 32);
	f->mvu_calls[vector]++;
	f->mvu_vector = vector;
	f->mvu_addr = address;
	f->mvu_data = data;
	f->mvu_masked = masked;
	f->mvu_msi_count = msi.count;
	return f->mvu_ret;
}

static const struct pci_device_ops fake_ops = {
	.bar_read = fake_bar_read,
	.bar_write = fake_bar_write,
	.bar_remap = fake_remap,
	.config_write = fake_cfg_write,
	.msix_update = fake_msix_update,
	.msi_update = fake_msi_update,
	.msi_vector_update = fake_msi_vector_update,
};

static struct io_bus *pio, *mmio;
static struct address_allocator *a32, *a64, *aio;
static struct pci_root *root;
static struct pci_device *deva, *devb;
static struct fake *fa, *fb;
static struct irq_recorder intx;

/* Device A: BAR0 I/O 32, BAR1 mem32 4 KiB, BAR2/3 mem64 prefetchable
 * 16 KiB with an 8-vector MSI-X table at 0 and the PBA at 0x1000, INTA.
 * Device B: BAR0 mem32 4 KiB, extended config space. */
static void setup(void)
{
	struct pci_root_config rc = {0};
	struct pci_device_info ia = {
		.vendor_id = 0x1af4,
		.device_id = 0x1041,
		.subsystem_vendor_id = 0x1af4,
		.subsystem_id = 0x0001,
		.revision = 1,
		.class_code = 0x020000,
		.interrupt_pin = 1,
	};
	struct pci_device_info ib = {
		.vendor_id = 0x8086,
		.device_id = 0x1234,
		.class_code = 0x010000,
		.flags = PCI_DEVICE_EXTENDED_CONFIG,
	};
	struct msi_sink sink;
	struct irq_line line;

	ck_assert_int_eq(io_bus_create(&pio), 0);
	ck_assert_int_eq(io_bus_create(&mmio), 0);
	ck_assert_int_eq(address_allocator_create(MEM32_BASE, MEM32_LAST, &a32),
			 0);
	ck_assert_int_eq(address_allocator_create(MEM64_BASE, MEM64_LAST, &a64),
			 0);
	ck_assert_int_eq(address_allocator_create(IO_BASE, IO_LAST, &aio), 0);
	rc.mem32 = a32;
	rc.mem64 = a64;
	rc.io = aio;
	rc.pio_bus = pio;
	rc.mmio_bus = mmio;
	ck_assert_int_eq(pci_root_create(&rc, &root), 0);
	ck_assert_int_eq(pci_root_register_pio(root, pio), 0);
	ck_assert_int_eq(pci_root_register_ecam(root, mmio, ECAM_BASE), 0);

	fa = calloc(1, sizeof(*fa));
	fb = calloc(1, sizeof(*fb));
	ck_assert_ptr_nonnull(fa);
	ck_assert_ptr_nonnull(fb);
	ck_assert_int_eq(pci_device_create(&ia, &fake_ops, fa, &deva), 0);
	ck_assert_int_eq(
		pci_device_add_bar(deva, 0, PCI_BAR_KIND_IO, false, 32), 0);
	ck_assert_int_eq(pci_device_add_bar(deva, 1, PCI_BAR_KIND_MEM32, false,
					    0x1000),
			 0);
	ck_assert_int_eq(pci_device_add_bar(deva, 2, PCI_BAR_KIND_MEM64, true,
					    0x4000),
			 0);
	ck_assert_int_eq(pci_device_add_msix(deva, 8, 2, 0, 2, 0x1000), 0);
	sink = msi_recorder_sink(&msi);
	line = irq_recorder_line(&intx);
	ck_assert_int_eq(pci_device_set_msi_sink(deva, &sink), 0);
	ck_assert_int_eq(pci_device_set_intx_line(deva, &line), 0);
	ck_assert_int_eq(pci_root_add_device(root, deva, 1, 0), 0);

	ck_assert_int_eq(pci_device_create(&ib, &fake_ops, fb, &devb), 0);
	ck_assert_int_eq(pci_device_add_bar(devb, 0, PCI_BAR_KIND_MEM32, false,
					    0x1000),
			 0);
	ck_assert_int_eq(pci_device_add_msi(devb, 4, true, true), 0);
	ck_assert_int_eq(pci_device_set_msi_sink(devb, &sink), 0);
	ck_assert_int_eq(pci_root_add_device(root, devb, 2, 0), 0);
}

static void teardown(void)
{
	io_bus_unregister(pio, PCI_CONFIG_ADDRESS_PORT);
	io_bus_unregister(mmio, ECAM_BASE);
	pci_root_destroy(root);
	/* Every BAR left the buses. */
	ck_assert_uint_eq(io_bus_count(pio), 0);
	ck_assert_uint_eq(io_bus_count(mmio), 0);
	ck_assert_uint_eq(address_allocator_count(a32), 0);
	ck_assert_uint_eq(address_allocator_count(a64), 0);
	ck_assert_uint_eq(address_allocator_count(aio), 0);
	io_bus_destroy(pio);
	io_bus_destroy(mmio);
	address_allocator_destroy(a32);
	address_allocator_destroy(a64);
	address_allocator_destroy(aio);
	free(fa);
	free(fb);
	pthread_mutex_destroy(&msi.lock);
	pthread_mutex_destroy(&intx.lock);
}

/* ------------------------------------------------------------ helpers */

static void cf8(uint8_t bus, uint8_t devfn, uint32_t off)
{
	uint32_t v = 0x80000000u | (uint32_t)bus << 16 | (uint32_t)devfn << 8 |
		     (off & 0xfcu);

	ck_assert_int_eq(io_bus_write(pio, 0xcf8, &v, 4), 0);
}

static uint32_t get(const uint8_t *p, unsigned len)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static void put(uint8_t *p, unsigned len, uint32_t v)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Mechanism #1 access. */
static uint32_t m1_rd(uint8_t devfn, uint32_t off, unsigned len)
{
	uint8_t b[4];

	cf8(0, devfn, off);
	ck_assert_int_eq(io_bus_read(pio, 0xcfc + (off & 3), b, len), 0);
	return get(b, len);
}

static void m1_wr(uint8_t devfn, uint32_t off, unsigned len, uint32_t v)
{
	uint8_t b[4];

	put(b, len, v);
	cf8(0, devfn, off);
	ck_assert_int_eq(io_bus_write(pio, 0xcfc + (off & 3), b, len), 0);
}

static uint64_t ecam_addr(uint8_t bus, uint8_t devfn, uint32_t off)
{
	return ECAM_BASE + ((uint64_t)bus << 20) + ((uint64_t)devfn << 12) +
	       off;
}

static uint32_t ec_rd(uint8_t devfn, uint32_t off, unsigned len)
{
	uint8_t b[4];

	ck_assert_int_eq(io_bus_read(mmio, ecam_addr(0, devfn, off), b, len),
			 0);
	return get(b, len);
}

static void ec_wr(uint8_t devfn, uint32_t off, unsigned len, uint32_t v)
{
	uint8_t b[4];

	put(b, len, v);
	ck_assert_int_eq(io_bus_write(mmio, ecam_addr(0, devfn, off), b, len),
			 0);
}

static uint64_t bar_addr(struct pci_device *d, unsigned idx)
{
	uint64_t a = 0;

	ck_assert_int_eq(pci_device_bar_info(d, idx, &a, NULL, NULL), 0);
	return a;
}

static bool bar_mapped(struct pci_device *d, unsigned idx)
{
	bool m = false;

	ck_assert_int_eq(pci_device_bar_info(d, idx, NULL, NULL, &m), 0);
	return m;
}

static bool on_bus(struct io_bus *bus, uint64_t addr)
{
	return io_bus_find(bus, addr, NULL, NULL) == 0;
}

static uint32_t mmio_rd32(uint64_t addr)
{
	uint32_t v;

	io_bus_read(mmio, addr, &v, 4);
	return v;
}

static void mmio_wr32(uint64_t addr, uint32_t v)
{
	io_bus_write(mmio, addr, &v, 4);
}

static void enable(uint8_t devfn, uint16_t bits)
{
	m1_wr(devfn, PCI_COMMAND, 2, m1_rd(devfn, PCI_COMMAND, 2) | bits);
}

/* ------------------------------------------------- mechanism #1, ECAM */

START_TEST(test_host_bridge_identity)
{
	ck_assert_uint_eq(m1_rd(0, PCI_VENDOR_ID, 2), 0x1b36);
	ck_assert_uint_eq(m1_rd(0, PCI_DEVICE_ID, 2), 0x0008);
	ck_assert_uint_eq(m1_rd(0, PCI_CLASS_REVISION, 4) >> 8, 0x060000);
	ck_assert_uint_eq(m1_rd(0, PCI_HEADER_TYPE, 1), 0);
	ck_assert_ptr_nonnull(pci_root_get_device(root, 0, 0));
}
END_TEST

START_TEST(test_device_identity)
{
	ck_assert_uint_eq(m1_rd(DEVA, 0, 4), 0x10411af4);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_CLASS_REVISION, 4), 0x02000001);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00011af4);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_INTERRUPT_PIN, 1), 1);
}
END_TEST

START_TEST(test_absent_function_all_ones)
{
	ck_assert_uint_eq(m1_rd(PCI_ROOT_DEVFN(5, 0), 0, 4), 0xffffffffu);
	ck_assert_uint_eq(m1_rd(PCI_ROOT_DEVFN(1, 3), 0, 2), 0xffff);
	ck_assert_uint_eq(ec_rd(PCI_ROOT_DEVFN(31, 7), 0, 4), 0xffffffffu);
	/* Writes to an absent function go nowhere and do not crash. */
	m1_wr(PCI_ROOT_DEVFN(5, 0), PCI_COMMAND, 2, 0xffff);
	ck_assert_uint_eq(m1_rd(PCI_ROOT_DEVFN(5, 0), 0, 4), 0xffffffffu);
}
END_TEST

START_TEST(test_cf8_readback_masks_reserved)
{
	uint32_t v = 0xffffffffu;

	ck_assert_int_eq(io_bus_write(pio, 0xcf8, &v, 4), 0);
	v = 0;
	ck_assert_int_eq(io_bus_read(pio, 0xcf8, &v, 4), 0);
	ck_assert_uint_eq(v, 0x80fffffcu);
}
END_TEST

START_TEST(test_cf8_only_dword_access)
{
	uint32_t v = 0x80000000u | (uint32_t)DEVA << 8;
	uint8_t b = 0;
	uint16_t w = 0;

	ck_assert_int_eq(io_bus_write(pio, 0xcf8, &v, 4), 0);
	/* Byte and word writes to 0xCF8..0xCFB do not touch the latch. */
	ck_assert_int_eq(io_bus_write(pio, 0xcf8, &b, 1), 0);
	ck_assert_int_eq(io_bus_write(pio, 0xcf9, &b, 1), 0);
	ck_assert_int_eq(io_bus_write(pio, 0xcfa, &w, 2), 0);
	v = 0;
	ck_assert_int_eq(io_bus_read(pio, 0xcf8, &v, 4), 0);
	ck_assert_uint_eq(v, 0x80000000u | (uint32_t)DEVA << 8);
	/* And read as all-ones. */
	ck_assert_int_eq(io_bus_read(pio, 0xcf8, &b, 1), 0);
	ck_assert_uint_eq(b, 0xff);
	ck_assert_int_eq(io_bus_read(pio, 0xcfa, &w, 2), 0);
	ck_assert_uint_eq(w, 0xffff);
	ck_assert_uint_eq(m1_rd(DEVA, 0, 2), 0x1af4);
}
END_TEST

START_TEST(test_cf8_enable_bit_clear)
{
	uint32_t v = (uint32_t)DEVA << 8 | PCI_INTERRUPT_LINE;
	uint32_t d = 0x5a;

	ck_assert_int_eq(io_bus_write(pio, 0xcf8, &v, 4), 0);
	ck_assert_int_eq(io_bus_read(pio, 0xcfc, &v, 4), 0);
	ck_assert_uint_eq(v, 0xffffffffu);
	ck_assert_int_eq(io_bus_write(pio, 0xcfc, &d, 1), 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_INTERRUPT_LINE, 1), 0);
}
END_TEST

START_TEST(test_cfc_byte_and_word_offsets)
{
	uint8_t b;
	uint16_t w;

	cf8(0, DEVA, 0);
	for (unsigned i = 0; i < 4; i++) {
		ck_assert_int_eq(io_bus_read(pio, 0xcfc + i, &b, 1), 0);
		ck_assert_uint_eq(b, (0x10411af4u >> (8 * i)) & 0xff);
	}
	ck_assert_int_eq(io_bus_read(pio, 0xcfe, &w, 2), 0);
	ck_assert_uint_eq(w, 0x1041);
	ck_assert_int_eq(io_bus_read(pio, 0xcfd, &w, 2), 0);
	ck_assert_uint_eq(w, 0x411a);
	/* Byte write at 0xCFF lands at register + 3: the interrupt pin
	 * register is read-only, so write the line via 0xCFC + 0. */
	m1_wr(DEVA, PCI_INTERRUPT_LINE, 1, 0x0b);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_INTERRUPT_LINE, 4) & 0xffff, 0x010b);
}
END_TEST

START_TEST(test_cfc_access_crossing_dword)
{
	uint32_t v = 0;
	uint16_t w = 0;

	cf8(0, DEVA, PCI_INTERRUPT_LINE);
	/* 4 bytes at 0xCFD would run to 0xD00: not a config access. */
	v = 0x12345678;
	ck_assert_int_eq(io_bus_write(pio, 0xcfd, &v, 4), -ERANGE);
	ck_assert_int_eq(io_bus_read(pio, 0xcfe, &v, 4), -ERANGE);
	/* Straight to the root: reads all-ones, writes ignored. */
	ck_assert_int_eq(pci_root_pio_read(root, 0xcfe, &v, 4), 0);
	ck_assert_uint_eq(v, 0xffffffffu);
	ck_assert_int_eq(pci_root_pio_read(root, 0xcff, &w, 2), 0);
	ck_assert_uint_eq(w, 0xffff);
	w = 0x77;
	ck_assert_int_eq(pci_root_pio_write(root, 0xcff, &w, 2), 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_INTERRUPT_LINE, 1), 0);
	ck_assert_int_eq(pci_root_pio_read(root, 0xd00, &v, 1), -EINVAL);
	ck_assert_int_eq(pci_root_pio_read(root, 0xcfc, &v, 3), -EINVAL);
}
END_TEST

START_TEST(test_other_bus_all_ones)
{
	uint32_t v = 0x80000000u | 1u << 16 | (uint32_t)DEVA << 8;

	ck_assert_int_eq(io_bus_write(pio, 0xcf8, &v, 4), 0);
	ck_assert_int_eq(io_bus_read(pio, 0xcfc, &v, 4), 0);
	ck_assert_uint_eq(v, 0xffffffffu);
	ck_assert_int_eq(pci_root_config_read(root, 7, DEVA, 0, 4, &v), 0);
	ck_assert_uint_eq(v, 0xffffffffu);
}
END_TEST

START_TEST(test_ecam_decode)
{
	ck_assert_uint_eq(ec_rd(DEVA, 0, 4), 0x10411af4);
	ck_assert_uint_eq(ec_rd(DEVB, 0, 4), 0x12348086);
	ck_assert_uint_eq(ec_rd(0, PCI_VENDOR_ID, 2), 0x1b36);
	ck_assert_uint_eq(ec_rd(DEVA, PCI_DEVICE_ID + 1, 1), 0x10);
	ec_wr(DEVA, PCI_INTERRUPT_LINE, 1, 0x42);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_INTERRUPT_LINE, 1), 0x42);
	ck_assert_uint_eq(ec_rd(DEVA, PCI_INTERRUPT_LINE, 1), 0x42);
}
END_TEST

START_TEST(test_ecam_extended_config)
{
	uint8_t mask[4] = {0xff, 0xff, 0xff, 0xff};

	/* Device A has 256 bytes: extended space reads 0, writes ignored. */
	ck_assert_uint_eq(ec_rd(DEVA, 0x100, 4), 0);
	ec_wr(DEVA, 0x100, 4, 0xdeadbeef);
	ck_assert_uint_eq(ec_rd(DEVA, 0x100, 4), 0);
	ck_assert_uint_eq(ec_rd(DEVA, 0xffc, 4), 0);
	/* Device B has 4 KiB; its extended bytes obey the masks. */
	ck_assert_int_eq(pci_device_set_config_mask(devb, 0x800, 4, mask, NULL),
			 0);
	ec_wr(DEVB, 0x800, 4, 0xdeadbeef);
	ck_assert_uint_eq(ec_rd(DEVB, 0x800, 4), 0xdeadbeef);
	ec_wr(DEVB, 0x804, 4, 0xdeadbeef);
	ck_assert_uint_eq(ec_rd(DEVB, 0x804, 4), 0);
	ck_assert_int_eq(pci_device_set_config_mask(devb, 0xffe, 4, mask, NULL),
			 -EINVAL);
}
END_TEST

START_TEST(test_ecam_misaligned_and_wide)
{
	uint64_t q = 0;
	uint16_t w = 0;

	/* A word at register offset 3 crosses a dword: all-ones. */
	ck_assert_int_eq(
		io_bus_read(mmio, ecam_addr(0, DEVA, PCI_VENDOR_ID + 3), &w, 2),
		0);
	ck_assert_uint_eq(w, 0xffff);
	w = 0xffff;
	ck_assert_int_eq(
		io_bus_write(mmio, ecam_addr(0, DEVA, PCI_INTERRUPT_LINE - 1),
			     &w, 2),
		0);
	ck_assert_uint_eq(ec_rd(DEVA, PCI_INTERRUPT_LINE, 1), 0);
	/* An aligned quadword is two dwords. */
	ck_assert_int_eq(io_bus_read(mmio, ecam_addr(0, DEVA, 0), &q, 8), 0);
	ck_assert_uint_eq(q, 0x0010000010411af4ull |
				     (uint64_t)(m1_rd(DEVA, PCI_COMMAND, 4))
					     << 32);
	ck_assert_int_eq(io_bus_read(mmio, ecam_addr(0, DEVA, 4), &q, 8), 0);
	ck_assert_uint_eq(q, ~0ull);
}
END_TEST

START_TEST(test_config_read_past_end)
{
	uint32_t v = 1;

	ck_assert_int_eq(pci_device_config_read(deva, 0x100, 4, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(pci_device_config_write(deva, 0x200, 4, 0xffffffff),
			 0);
	ck_assert_int_eq(pci_device_config_read(deva, 0x200, 4, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(pci_device_config_read(deva, 0xfff, 1, &v), 0);
	ck_assert_uint_eq(v, 0);
	/* Far past the end of any config space: refused, not a crash. */
	ck_assert_int_eq(pci_root_config_read(root, 0, DEVA, 0x1000, 4, &v),
			 -EINVAL);
	ck_assert_int_eq(pci_root_config_write(root, 0, DEVA, 0xfffffffc, 4, 0),
			 -EINVAL);
}
END_TEST

START_TEST(test_config_bad_lengths)
{
	uint32_t v;

	ck_assert_int_eq(pci_device_config_read(deva, 0, 3, &v), -EINVAL);
	ck_assert_int_eq(pci_device_config_read(deva, 2, 4, &v), -EINVAL);
	ck_assert_int_eq(pci_device_config_read(deva, 1, 2, &v), 0);
	ck_assert_int_eq(pci_device_config_write(deva, 3, 2, 0), -EINVAL);
	ck_assert_int_eq(pci_device_config_read(NULL, 0, 4, &v), -EINVAL);
	ck_assert_int_eq(pci_device_config_read(deva, 0, 4, NULL), -EINVAL);
	ck_assert_int_eq(pci_root_ecam_read(root, 0, &v, 3), -EINVAL);
}
END_TEST

/* ----------------------------------------------------- header registers */

START_TEST(test_readonly_identity_registers)
{
	uint32_t before[4];

	before[0] = m1_rd(DEVA, 0, 4);
	before[1] = m1_rd(DEVA, PCI_CLASS_REVISION, 4);
	before[2] = m1_rd(DEVA, PCI_SUBSYSTEM_VENDOR_ID, 4);
	before[3] = m1_rd(DEVA, PCI_CAPABILITY_LIST, 4);
	m1_wr(DEVA, 0, 4, 0);
	m1_wr(DEVA, PCI_CLASS_REVISION, 4, 0xffffffff);
	m1_wr(DEVA, PCI_SUBSYSTEM_VENDOR_ID, 4, 0);
	m1_wr(DEVA, PCI_CAPABILITY_LIST, 4, 0xffffffff);
	m1_wr(DEVA, PCI_HEADER_TYPE, 1, 0xff);
	m1_wr(DEVA, PCI_INTERRUPT_PIN, 1, 4);
	ck_assert_uint_eq(m1_rd(DEVA, 0, 4), before[0]);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_CLASS_REVISION, 4), before[1]);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_SUBSYSTEM_VENDOR_ID, 4), before[2]);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_CAPABILITY_LIST, 4), before[3]);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_HEADER_TYPE, 1), 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_INTERRUPT_PIN, 1), 1);
}
END_TEST

START_TEST(test_command_writable_bits)
{
	m1_wr(DEVB, PCI_COMMAND, 2, 0xffff);
	ck_assert_uint_eq(m1_rd(DEVB, PCI_COMMAND, 2),
			  PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
				  PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
				  PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	m1_wr(DEVB, PCI_COMMAND, 2, 0);
	ck_assert_uint_eq(m1_rd(DEVB, PCI_COMMAND, 2), 0);
}
END_TEST

START_TEST(test_status_write_one_to_clear)
{
	uint16_t errs = PCI_STATUS_DETECTED_PARITY |
			PCI_STATUS_SIG_SYSTEM_ERROR |
			PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_PARITY;
	uint16_t st;

	ck_assert_int_eq(pci_device_config_set(deva, PCI_STATUS, 2,
					       errs | PCI_STATUS_CAP_LIST),
			 0);
	/* Writing 0 clears nothing. */
	m1_wr(DEVA, PCI_STATUS, 2, 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_STATUS, 2),
			  errs | PCI_STATUS_CAP_LIST);
	/* Writing 1 clears exactly those bits; Capabilities List stays. */
	m1_wr(DEVA, PCI_STATUS, 2,
	      PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_CAP_LIST);
	st = (uint16_t)m1_rd(DEVA, PCI_STATUS, 2);
	ck_assert_uint_eq(st, (errs & ~PCI_STATUS_REC_MASTER_ABORT) |
				      PCI_STATUS_CAP_LIST);
	/* A dword write to the command register with status bits set clears
	 * them too (the usual pci_write_config_dword(0x04) hazard). */
	m1_wr(DEVA, PCI_COMMAND, 4, 0xffff0000u);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
}
END_TEST

START_TEST(test_misc_rw_registers)
{
	m1_wr(DEVA, PCI_CACHE_LINE_SIZE, 1, 0x10);
	m1_wr(DEVA, PCI_LATENCY_TIMER, 1, 0x40);
	m1_wr(DEVA, PCI_INTERRUPT_LINE, 1, 0x0a);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_CACHE_LINE_SIZE, 2), 0x4010);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_INTERRUPT_LINE, 1), 0x0a);
	/* BIST, min_gnt, max_lat, CardBus CIS: read-only 0. */
	m1_wr(DEVA, PCI_BIST, 1, 0xff);
	m1_wr(DEVA, PCI_MIN_GNT, 2, 0xffff);
	m1_wr(DEVA, PCI_CARDBUS_CIS, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BIST, 1), 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_MIN_GNT, 2), 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_CARDBUS_CIS, 4), 0);
}
END_TEST

START_TEST(test_rom_bar_absent)
{
	m1_wr(DEVA, PCI_ROM_ADDRESS, 4, 0xfffff800u);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_ROM_ADDRESS, 4), 0);
}
END_TEST

START_TEST(test_config_write_callback)
{
	fb->cfg_writes = 0;
	ec_wr(DEVB, 0x40, 4, 1);
	ck_assert_uint_eq(fb->cfg_writes, 1);
	ck_assert_uint_eq(fb->cfg_last_off, 0x40);
}
END_TEST

/* ----------------------------------------------------------------- BARs */

START_TEST(test_bar_type_flags)
{
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_0, 4) & 3u, 1u);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_1, 4) & 0xfu, 0u);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_2, 4) & 0xfu,
			  PCI_BASE_ADDRESS_MEM_TYPE_64 |
				  PCI_BASE_ADDRESS_MEM_PREFETCH);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_4, 4), 0);
}
END_TEST

START_TEST(test_bar_initial_placement)
{
	uint64_t io = bar_addr(deva, 0), m32 = bar_addr(deva, 1);
	uint64_t m64 = bar_addr(deva, 2);

	ck_assert_uint_ge(io, IO_BASE);
	ck_assert_uint_le(io + 31, IO_LAST);
	ck_assert_uint_eq(io % 32, 0);
	ck_assert_uint_ge(m32, MEM32_BASE);
	ck_assert_uint_eq(m32 % 0x1000, 0);
	ck_assert_uint_ge(m64, MEM64_BASE);
	ck_assert_uint_eq(m64 % 0x4000, 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_3, 4), m64 >> 32);
	ck_assert_uint_eq(address_allocator_count(a32), 2);
	ck_assert_uint_eq(address_allocator_count(a64), 1);
	ck_assert_uint_eq(address_allocator_count(aio), 1);
	/* Assigned but not decoding until the command register says so. */
	ck_assert(!bar_mapped(deva, 1));
	ck_assert(!on_bus(mmio, m32));
}
END_TEST

START_TEST(test_bar_sizing_io)
{
	uint32_t old = m1_rd(DEVA, PCI_BASE_ADDRESS_0, 4);

	m1_wr(DEVA, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_0, 4), 0xffffffe1u);
	m1_wr(DEVA, PCI_BASE_ADDRESS_0, 4, old);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_0, 4), old);
}
END_TEST

START_TEST(test_bar_sizing_mem32)
{
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_1, 4), 0xfffff000u);
	m1_wr(DEVB, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVB, PCI_BASE_ADDRESS_1, 4), 0);
	m1_wr(DEVB, PCI_BASE_ADDRESS_5, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVB, PCI_BASE_ADDRESS_5, 4), 0);
}
END_TEST

START_TEST(test_bar_sizing_mem64)
{
	m1_wr(DEVA, PCI_BASE_ADDRESS_2, 4, 0xffffffff);
	m1_wr(DEVA, PCI_BASE_ADDRESS_3, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_2, 4), 0xffffc00cu);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_3, 4), 0xffffffffu);
}
END_TEST

START_TEST(test_bar_address_alignment_enforced)
{
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xc0000123u);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_1, 4), 0xc0000000u);
	m1_wr(DEVA, PCI_BASE_ADDRESS_0, 4, 0xd007);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_0, 4), 0xd001);
	/* Byte writes only change their byte, alignment still holds. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_1 + 1, 1, 0xff);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_BASE_ADDRESS_1, 4), 0xc000f000u);
}
END_TEST

START_TEST(test_bar_decode_follows_command)
{
	uint64_t m32 = bar_addr(deva, 1), io = bar_addr(deva, 0);

	enable(DEVA, PCI_COMMAND_MEMORY);
	ck_assert(bar_mapped(deva, 1));
	ck_assert(bar_mapped(deva, 2));
	ck_assert(!bar_mapped(deva, 0));
	ck_assert(on_bus(mmio, m32));
	ck_assert(!on_bus(pio, io));
	enable(DEVA, PCI_COMMAND_IO);
	ck_assert(bar_mapped(deva, 0));
	ck_assert(on_bus(pio, io));
	m1_wr(DEVA, PCI_COMMAND, 2, PCI_COMMAND_IO);
	ck_assert(!bar_mapped(deva, 1));
	ck_assert(!on_bus(mmio, m32));
	ck_assert(on_bus(pio, io));
}
END_TEST

START_TEST(test_bar_dispatch_through_bus)
{
	uint64_t m32 = bar_addr(deva, 1), io = bar_addr(deva, 0);
	uint32_t v = 0xcafef00d;
	uint16_t w;

	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	ck_assert_int_eq(io_bus_write(mmio, m32 + 0x10, &v, 4), 0);
	ck_assert_uint_eq(fa->last_bar, 1);
	ck_assert_uint_eq(fa->last_off, 0x10);
	ck_assert_uint_eq(fa->last_len, 4);
	ck_assert_uint_eq(mmio_rd32(m32 + 0x10), 0xcafef00d);
	w = 0x1234;
	ck_assert_int_eq(io_bus_write(pio, io + 6, &w, 2), 0);
	ck_assert_uint_eq(fa->last_bar, 0);
	ck_assert_uint_eq(fa->last_off, 6);
	w = 0;
	ck_assert_int_eq(io_bus_read(pio, io + 6, &w, 2), 0);
	ck_assert_uint_eq(w, 0x1234);
}
END_TEST

START_TEST(test_bar_move_reregisters)
{
	uint64_t old = bar_addr(deva, 1), new = 0xd0000000;

	fa->mem[1][0] = 0x77;
	enable(DEVA, PCI_COMMAND_MEMORY);
	ck_assert(on_bus(mmio, old));
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, (uint32_t) new);
	ck_assert(!on_bus(mmio, old));
	ck_assert(on_bus(mmio, new));
	ck_assert_uint_eq(mmio_rd32(new) & 0xff, 0x77);
	ck_assert_uint_eq(mmio_rd32(old), 0xffffffffu);
	ck_assert_uint_eq(fa->remap_bar, 1);
	ck_assert(fa->remap_mapped);
	ck_assert_uint_eq(fa->remap_addr, new);
	/* A 64-bit BAR moves when either half changes. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_3, 4, 0x90);
	ck_assert_uint_eq(bar_addr(deva, 2),
			  0x9000000000ull | (bar_addr(deva, 2) & 0xffffffffu));
	ck_assert(on_bus(mmio, bar_addr(deva, 2)));
	ck_assert_uint_eq(fa->remap_addr, bar_addr(deva, 2));
}
END_TEST

START_TEST(test_bar_sizing_while_decoding)
{
	uint32_t old = m1_rd(DEVA, PCI_BASE_ADDRESS_1, 4);
	size_t n;

	enable(DEVA, PCI_COMMAND_MEMORY);
	n = io_bus_count(mmio);
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	/* 0xfffff000 + 4 KiB ends at 4 GiB - 1: never decodes. */
	ck_assert(!bar_mapped(deva, 1));
	ck_assert(!on_bus(mmio, 0xfffff000u));
	ck_assert_uint_eq(io_bus_count(mmio), n - 1);
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, old);
	ck_assert(bar_mapped(deva, 1));
	ck_assert(on_bus(mmio, old));
	ck_assert_uint_eq(io_bus_count(mmio), n);
	/* 64-bit: all-ones in both halves ends at 2^64 - 1. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_2, 4, 0xffffffff);
	m1_wr(DEVA, PCI_BASE_ADDRESS_3, 4, 0xffffffff);
	ck_assert(!bar_mapped(deva, 2));
	ck_assert_uint_eq(io_bus_count(mmio), n - 1);
}
END_TEST

START_TEST(test_bar_overlap_refused)
{
	uint64_t a = bar_addr(deva, 1), b = bar_addr(devb, 0);

	enable(DEVA, PCI_COMMAND_MEMORY);
	enable(DEVB, PCI_COMMAND_MEMORY);
	ck_assert(bar_mapped(devb, 0));
	/* Move B's BAR onto A's: refused, B stops decoding, A unaffected. */
	m1_wr(DEVB, PCI_BASE_ADDRESS_0, 4, (uint32_t)a);
	ck_assert(!bar_mapped(devb, 0));
	ck_assert(bar_mapped(deva, 1));
	ck_assert_uint_eq(bar_addr(devb, 0), a);
	fa->mem[1][0] = 0xaa;
	ck_assert_uint_eq(mmio_rd32(a) & 0xff, 0xaa);
	ck_assert(!on_bus(mmio, b));
	/* Moving it somewhere free makes it decode again. */
	m1_wr(DEVB, PCI_BASE_ADDRESS_0, 4, 0xd8000000u);
	ck_assert(bar_mapped(devb, 0));
	ck_assert(on_bus(mmio, 0xd8000000u));
	/* Onto the ECAM window: refused by the bus. */
	m1_wr(DEVB, PCI_BASE_ADDRESS_0, 4, (uint32_t)ECAM_BASE);
	ck_assert(!bar_mapped(devb, 0));
	ck_assert_uint_eq(ec_rd(DEVB, 0, 4), 0x12348086);
	/* Two BARs of one function overlapping: the later is refused. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_2, 4, (uint32_t)a | 0xc);
	m1_wr(DEVA, PCI_BASE_ADDRESS_3, 4, 0);
	ck_assert(!bar_mapped(deva, 2));
	ck_assert(bar_mapped(deva, 1));
}
END_TEST

START_TEST(test_bar_overlap_enable_order)
{
	uint64_t a = bar_addr(deva, 1);

	/* B's BAR is programmed onto A's while decode is off; enabling B's
	 * decode then fails quietly. */
	enable(DEVA, PCI_COMMAND_MEMORY);
	m1_wr(DEVB, PCI_BASE_ADDRESS_0, 4, (uint32_t)a);
	enable(DEVB, PCI_COMMAND_MEMORY);
	ck_assert(!bar_mapped(devb, 0));
	ck_assert(bar_mapped(deva, 1));
	/* Once A moves away, the next command write retries B. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xd4000000u);
	m1_wr(DEVB, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	ck_assert(!bar_mapped(devb, 0)); /* no change in decode bits */
	m1_wr(DEVB, PCI_COMMAND, 2, 0);
	m1_wr(DEVB, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	ck_assert(bar_mapped(devb, 0));
}
END_TEST

START_TEST(test_bar_wrap_refused)
{
	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	/* I/O BAR above 64 KiB. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_0, 4, 0x0fffffe0u);
	ck_assert(!bar_mapped(deva, 0));
	m1_wr(DEVA, PCI_BASE_ADDRESS_0, 4, 0xffe0u);
	ck_assert(bar_mapped(deva, 0));
	ck_assert(on_bus(pio, 0xfffe));
	/* 64-bit BAR ending at the last byte of the address space. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_2, 4, 0xffffc000u);
	m1_wr(DEVA, PCI_BASE_ADDRESS_3, 4, 0xffffffffu);
	ck_assert(!bar_mapped(deva, 2));
	m1_wr(DEVA, PCI_BASE_ADDRESS_3, 4, 0x7fffffffu);
	ck_assert(bar_mapped(deva, 2));
	ck_assert(on_bus(mmio, 0x7fffffffffffc000ull));
	/* Address 0 never decodes. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0);
	ck_assert(!bar_mapped(deva, 1));
}
END_TEST

START_TEST(test_bar_decode_off_blocks_dispatch)
{
	uint32_t v = 0;

	enable(DEVA, PCI_COMMAND_MEMORY);
	ck_assert_int_eq(pci_device_bar_read(deva, 1, 0, &v, 4), 0);
	m1_wr(DEVA, PCI_COMMAND, 2, 0);
	atomic_store(&fa->reads, 0);
	ck_assert_int_eq(pci_device_bar_read(deva, 1, 0, &v, 4), -ENODEV);
	ck_assert_uint_eq(v, 0xffffffffu);
	v = 5;
	ck_assert_int_eq(pci_device_bar_write(deva, 1, 0, &v, 4), -ENODEV);
	ck_assert_uint_eq(atomic_load(&fa->reads), 0);
	ck_assert_uint_eq(atomic_load(&fa->writes), 0);
	ck_assert(!fa->remap_mapped);
}
END_TEST

START_TEST(test_bar_access_bounds)
{
	uint64_t q = 0;

	enable(DEVA, PCI_COMMAND_MEMORY);
	ck_assert_int_eq(pci_device_bar_read(deva, 1, 0x1000, &q, 4), -EINVAL);
	ck_assert_uint_eq(q & 0xffffffffu, 0xffffffffu);
	ck_assert_int_eq(pci_device_bar_read(deva, 1, 0xffc, &q, 8), -EINVAL);
	ck_assert_int_eq(pci_device_bar_read(deva, 1, UINT64_MAX, &q, 1),
			 -EINVAL);
	ck_assert_int_eq(pci_device_bar_read(deva, 3, 0, &q, 4), -EINVAL);
	ck_assert_int_eq(pci_device_bar_read(deva, 6, 0, &q, 4), -EINVAL);
	ck_assert_int_eq(pci_device_bar_read(deva, 1, 0, &q, 3), -EINVAL);
	ck_assert_int_eq(pci_device_bar_read(deva, 1, 0xff8, &q, 8), 0);
	/* Straddling the end on the bus never reaches the device. */
	atomic_store(&fa->reads, 0);
	ck_assert_int_eq(io_bus_read(mmio, bar_addr(deva, 1) + 0xffc, &q, 8),
			 -ERANGE);
	ck_assert_uint_eq(atomic_load(&fa->reads), 0);
}
END_TEST

START_TEST(test_add_bar_errors)
{
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_IO, false, 2),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_IO, false, 512),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_IO, true, 16),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false,
					    0x3000),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false, 8),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false,
					    1ull << 32),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 5, PCI_BAR_KIND_MEM64, false,
					    0x1000),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 6, PCI_BAR_KIND_MEM32, false,
					    0x1000),
			 -EINVAL);
	ck_assert_int_eq(pci_device_add_bar(d, 0, (enum pci_bar_kind)9, false,
					    0x1000),
			 -EINVAL);
	ck_assert_int_eq(
		pci_device_add_bar(d, 1, PCI_BAR_KIND_MEM64, false, 0x1000), 0);
	ck_assert_int_eq(pci_device_add_bar(d, 2, PCI_BAR_KIND_MEM32, false,
					    0x1000),
			 -EBUSY);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM64, false,
					    0x1000),
			 -EBUSY);
	ck_assert_int_eq(pci_device_set_bar_address(d, 1, 0x1234), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar_address(d, 2, 0x2000), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar_address(d, 1, 0x100000000ull), 0);
	ck_assert_int_eq(pci_root_add_device(root, d, 3, 0), 0);
	ck_assert_int_eq(pci_device_add_bar(d, 3, PCI_BAR_KIND_IO, false, 16),
			 -EPERM);
	ck_assert_int_eq(pci_device_set_bar_address(d, 1, 0x200000000ull),
			 -EPERM);
	/* The caller's address was kept, not allocated. */
	ck_assert_uint_eq(bar_addr(d, 1), 0x100000000ull);
	ck_assert_uint_eq(address_allocator_count(a64), 1);
}
END_TEST

START_TEST(test_config_write_inside_bus_dispatch)
{
	uint64_t m32 = bar_addr(deva, 1), io = bar_addr(deva, 0);
	uint32_t v;

	/* ECAM writes are MMIO dispatches that change the MMIO bus they run
	 * on (register, move, unregister): none of it may wait or deadlock. */
	ec_wr(DEVA, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	ck_assert(on_bus(mmio, m32));
	ec_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xd3000000u);
	ck_assert(on_bus(mmio, 0xd3000000u));
	ck_assert(!on_bus(mmio, m32));
	ec_wr(DEVA, PCI_COMMAND, 2, PCI_COMMAND_IO);
	ck_assert(!on_bus(mmio, 0xd3000000u));
	/* Same for mechanism #1 and the I/O-port bus. */
	ck_assert(on_bus(pio, io));
	m1_wr(DEVA, PCI_BASE_ADDRESS_0, 4, 0xe000);
	ck_assert(on_bus(pio, 0xe000));
	ck_assert(!on_bus(pio, io));
	v = 0xab;
	ck_assert_int_eq(io_bus_write(pio, 0xe004, &v, 1), 0);
	ck_assert_uint_eq(fa->mem[0][4], 0xab);
	m1_wr(DEVA, PCI_COMMAND, 2, 0);
	ck_assert(!on_bus(pio, 0xe000));
}
END_TEST

START_TEST(test_bar_remap_callback)
{
	fa->remaps = 0;
	enable(DEVA, PCI_COMMAND_MEMORY);
	/* BAR1 and BAR2 came up. */
	ck_assert_uint_eq(fa->remaps, 2);
	m1_wr(DEVA, PCI_COMMAND, 2, 0);
	ck_assert_uint_eq(fa->remaps, 4);
	ck_assert(!fa->remap_mapped);
	/* A BAR write with decode off changes nothing on the bus. */
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xd1000000u);
	ck_assert_uint_eq(fa->remaps, 4);
}
END_TEST

struct race {
	uint64_t addrs[2];
	atomic_bool stop;
	atomic_bool removed;
	atomic_uint bad;
	atomic_uint hits;
	atomic_uint late_hits;
};

static void nap_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	unsigned i = 0;

	while (!atomic_load(&r->stop)) {
		uint32_t v = 0;
		bool after = atomic_load(&r->removed);

		io_bus_read(mmio, r->addrs[i++ & 1] + 8, &v, 4);
		if (v == 0x5a5a5a5au) {
			atomic_fetch_add(&r->hits, 1);
			if (after)
				atomic_fetch_add(&r->late_hits, 1);
		} else if (v != 0xffffffffu) {
			atomic_fetch_add(&r->bad, 1);
		}
	}
	return NULL;
}

START_TEST(test_bar_move_races_dispatch)
{
	struct race r = {.addrs = {0xd0000000u, 0xd0100000u}};
	pthread_t t[2];

	memset(&fa->mem[1][8], 0x5a, 4);
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, (uint32_t)r.addrs[0]);
	enable(DEVA, PCI_COMMAND_MEMORY);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_reader, &r),
				 0);
	for (unsigned i = 0; i < 3000; i++) {
		m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, (uint32_t)r.addrs[i & 1]);
		if (i % 7 == 0)
			m1_wr(DEVA, PCI_COMMAND, 2, 0);
		if (i % 7 == 3)
			m1_wr(DEVA, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
		if (i % 13 == 0)
			m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* Every read saw the device or nothing; never garbage. */
	ck_assert_uint_eq(atomic_load(&r.bad), 0);
	/* The final state is consistent. */
	m1_wr(DEVA, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, (uint32_t)r.addrs[1]);
	ck_assert(on_bus(mmio, r.addrs[1]));
	ck_assert(!on_bus(mmio, r.addrs[0]));
	ck_assert_uint_eq(mmio_rd32(r.addrs[1] + 8), 0x5a5a5a5au);
}
END_TEST

START_TEST(test_remove_device_races_dispatch)
{
	struct race r;
	pthread_t t[2];
	uint64_t a;

	memset(&r, 0, sizeof(r));
	memset(&fa->mem[1][8], 0x5a, 4);
	enable(DEVA, PCI_COMMAND_MEMORY);
	a = bar_addr(deva, 1);
	r.addrs[0] = r.addrs[1] = a;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_reader, &r),
				 0);
	/* Let the readers hit the device, then pull it out from under
	 * them: its state is freed only after in-flight dispatches end. */
	for (unsigned n = 0; atomic_load(&r.hits) < 100 && n < 50000; n++)
		nap_us(100);
	ck_assert_uint_ge(atomic_load(&r.hits), 100);
	ck_assert_int_eq(pci_root_remove_device(root, 1, 0), 0);
	deva = NULL;
	atomic_store(&r.removed, true);
	nap_us(20000);
	atomic_store(&r.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(atomic_load(&r.bad), 0);
	/* A read that starts after the removal never reaches the function. */
	ck_assert_uint_eq(atomic_load(&r.late_hits), 0);
	ck_assert(!on_bus(mmio, a));
}
END_TEST

/* --------------------------------------------------------- capabilities */

START_TEST(test_capability_list)
{
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;
	uint8_t c1[8] = {0x09, 0xee, 8, 1, 2, 3, 4, 5};
	uint8_t c2[5] = {0x0a, 0, 1, 2, 3};
	uint8_t o1, o2;
	uint32_t v;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_find_capability(d, 0x09), -ENOENT);
	ck_assert_int_eq(pci_device_config_read(d, PCI_STATUS, 2, &v), 0);
	ck_assert_uint_eq(v & PCI_STATUS_CAP_LIST, 0);
	ck_assert_int_eq(
		pci_device_add_capability(d, c1, sizeof(c1), NULL, &o1), 0);
	ck_assert_int_eq(
		pci_device_add_capability(d, c2, sizeof(c2), NULL, &o2), 0);
	ck_assert_uint_eq(o1, 0x40);
	ck_assert_uint_eq(o2, 0x48);
	ck_assert_int_eq(pci_device_config_read(d, PCI_CAPABILITY_LIST, 1, &v),
			 0);
	ck_assert_uint_eq(v, 0x40);
	ck_assert_int_eq(pci_device_config_read(d, 0x40, 4, &v), 0);
	ck_assert_uint_eq(v, 0x01084809u);
	ck_assert_int_eq(pci_device_config_read(d, 0x48, 2, &v), 0);
	ck_assert_uint_eq(v, 0x000a);
	ck_assert_int_eq(pci_device_config_read(d, PCI_STATUS, 2, &v), 0);
	ck_assert_uint_ne(v & PCI_STATUS_CAP_LIST, 0);
	ck_assert_int_eq(pci_device_find_capability(d, 0x0a), 0x48);
	/* The next capability goes on a dword boundary. */
	ck_assert_int_eq(
		pci_device_add_capability(d, c2, sizeof(c2), NULL, &o2), 0);
	ck_assert_uint_eq(o2, 0x50);
	ck_assert_int_eq(pci_device_add_capability(d, c2, 1, NULL, NULL),
			 -EINVAL);
	pci_device_destroy(d);
}
END_TEST

START_TEST(test_capability_writable_mask)
{
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;
	uint8_t c[8] = {0x09, 0, 8, 0, 0, 0, 0, 0};
	uint8_t m[8] = {0xff, 0xff, 0, 0x0f, 0xff, 0, 0, 0};
	uint32_t v;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_capability(d, c, 8, m, NULL), 0);
	ck_assert_int_eq(pci_device_config_write(d, 0x40, 4, 0xffffffff), 0);
	ck_assert_int_eq(pci_device_config_read(d, 0x40, 4, &v), 0);
	/* id and next stay read-only whatever the mask said. */
	ck_assert_uint_eq(v, 0x0f080009u);
	ck_assert_int_eq(pci_device_config_write(d, 0x44, 4, 0xffffffff), 0);
	ck_assert_int_eq(pci_device_config_read(d, 0x44, 4, &v), 0);
	ck_assert_uint_eq(v, 0xff);
	/* The header cannot be given device masks. */
	ck_assert_int_eq(pci_device_set_config_mask(d, 0x3c, 4, m, NULL),
			 -EINVAL);
	pci_device_destroy(d);
}
END_TEST

START_TEST(test_capability_space_exhausted)
{
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;
	uint8_t c[64] = {0x09};
	int n = 0, ret;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	while ((ret = pci_device_add_capability(d, c, sizeof(c), NULL, NULL)) ==
	       0)
		n++;
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(pci_device_add_capability(d, c, 193, NULL, NULL),
			 -EINVAL);
	pci_device_destroy(d);
}
END_TEST

START_TEST(test_capability_loop_bounded)
{
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;
	uint8_t c[4] = {0x09, 0, 0, 0};

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_capability(d, c, 4, NULL, NULL), 0);
	/* A device model corrupts the next pointer into a loop. */
	ck_assert_int_eq(pci_device_config_set(d, 0x41, 1, 0x40), 0);
	ck_assert_int_eq(pci_device_find_capability(d, 0x10), -ENOENT);
	ck_assert_int_eq(pci_device_find_capability(d, 0x09), 0x40);
	/* The raw store refuses the side-effect registers. */
	ck_assert_int_eq(pci_device_config_set(d, PCI_COMMAND, 2, 7), -EINVAL);
	ck_assert_int_eq(pci_device_config_set(d, PCI_BASE_ADDRESS_2, 4, 1),
			 -EINVAL);
	pci_device_destroy(d);
}
END_TEST

START_TEST(test_ext_capability_list)
{
	struct pci_device_info info = {.vendor_id = 1,
				       .device_id = 2,
				       .flags = PCI_DEVICE_EXTENDED_CONFIG};
	struct pci_device *d;
	uint8_t body[6] = {1, 2, 3, 4, 5, 6};
	uint8_t wm[6] = {0, 0xff, 0, 0, 0, 0};
	uint16_t o1, o2;
	uint32_t v;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_config_read(d, 0x100, 4, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(pci_device_find_ext_capability(d, 1), -ENOENT);
	ck_assert_int_eq(pci_device_add_ext_capability(d, 0x0001, 2, body, 6,
						       wm, &o1),
			 0);
	ck_assert_int_eq(pci_device_add_ext_capability(d, 0x000b, 1, NULL, 0,
						       NULL, &o2),
			 0);
	ck_assert_uint_eq(o1, 0x100);
	ck_assert_uint_eq(o2, 0x10c);
	ck_assert_int_eq(pci_device_config_read(d, 0x100, 4, &v), 0);
	ck_assert_uint_eq(v, 0x10cu << 20 | 2u << 16 | 1u);
	ck_assert_int_eq(pci_device_config_read(d, 0x10c, 4, &v), 0);
	ck_assert_uint_eq(v, 1u << 16 | 0xbu);
	ck_assert_int_eq(pci_device_find_ext_capability(d, 0xb), 0x10c);
	/* Headers are read-only; body bytes follow their mask. */
	ck_assert_int_eq(pci_device_config_write(d, 0x100, 4, 0), 0);
	ck_assert_int_eq(pci_device_config_write(d, 0x104, 4, 0xffffffff), 0);
	ck_assert_int_eq(pci_device_config_read(d, 0x104, 4, &v), 0);
	ck_assert_uint_eq(v, 0x0403ff01u);
	ck_assert_int_eq(pci_device_find_ext_capability(d, 0xb), 0x10c);
	ck_assert_int_eq(pci_device_add_ext_capability(d, 1, 16, NULL, 0, NULL,
						       NULL),
			 -EINVAL);
	pci_device_destroy(d);
	/* Conventional functions have no extended space. */
	info.flags = 0;
	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_ext_capability(d, 1, 1, NULL, 0, NULL,
						       NULL),
			 -EINVAL);
	pci_device_destroy(d);
}
END_TEST

START_TEST(test_ext_capability_space_and_loop)
{
	struct pci_device_info info = {.vendor_id = 1,
				       .device_id = 2,
				       .flags = PCI_DEVICE_EXTENDED_CONFIG};
	struct pci_device *d;
	static uint8_t big[1024];
	int n = 0, ret;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	while ((ret = pci_device_add_ext_capability(d, 1, 1, big, sizeof(big),
						    NULL, NULL)) == 0)
		n++;
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_int_eq(n, 3);
	/* A device model loops the list on itself: the walk still ends. */
	ck_assert_int_eq(pci_device_config_set(d, 0x100, 4, 0x10010002u), 0);
	ck_assert_int_eq(pci_device_find_ext_capability(d, 0x55), -ENOENT);
	pci_device_destroy(d);
}
END_TEST

/* ---------------------------------------------------------------- MSI-X */

static int msix_cap(void)
{
	int c = pci_device_find_capability(deva, PCI_CAP_ID_MSIX);

	ck_assert_int_gt(c, 0);
	return c;
}

static uint64_t msix_table(void)
{
	return bar_addr(deva, 2);
}

static void msix_setup_vector(unsigned v, uint64_t addr, uint32_t data,
			      bool masked)
{
	uint64_t e = msix_table() + 16ull * v;

	mmio_wr32(e + 0, (uint32_t)addr);
	mmio_wr32(e + 4, (uint32_t)(addr >> 32));
	mmio_wr32(e + 8, data);
	mmio_wr32(e + 12, masked ? 1 : 0);
}

static void msix_control(uint16_t bits)
{
	m1_wr(DEVA, (uint32_t)msix_cap() + PCI_MSIX_FLAGS, 2, bits);
}

START_TEST(test_msix_capability_layout)
{
	int c = msix_cap();

	ck_assert_uint_eq(m1_rd(DEVA, (uint32_t)c + PCI_MSIX_FLAGS, 2), 7);
	ck_assert_uint_eq(m1_rd(DEVA, (uint32_t)c + PCI_MSIX_TABLE, 4), 2);
	ck_assert_uint_eq(m1_rd(DEVA, (uint32_t)c + PCI_MSIX_PBA, 4),
			  0x1000 | 2);
	/* Table size and BIR/offset are read-only; only the enable and mask
	 * bits of message control are writable. */
	m1_wr(DEVA, (uint32_t)c + PCI_MSIX_FLAGS, 2, 0xffff);
	ck_assert_uint_eq(m1_rd(DEVA, (uint32_t)c + PCI_MSIX_FLAGS, 2), 0xc007);
	m1_wr(DEVA, (uint32_t)c + PCI_MSIX_TABLE, 4, 0);
	ck_assert_uint_eq(m1_rd(DEVA, (uint32_t)c + PCI_MSIX_TABLE, 4), 2);
	ck_assert_int_eq(pci_device_msix_enabled(deva), 1);
}
END_TEST

START_TEST(test_msix_table_read_write)
{
	uint64_t t;

	enable(DEVA, PCI_COMMAND_MEMORY);
	t = msix_table();
	/* Every vector starts masked. */
	for (unsigned v = 0; v < 8; v++)
		ck_assert_uint_eq(mmio_rd32(t + 16 * v + 12), 1);
	msix_setup_vector(3, 0xfee01000u, 0x4041, false);
	ck_assert_uint_eq(mmio_rd32(t + 48), 0xfee01000u);
	ck_assert_uint_eq(mmio_rd32(t + 52), 0);
	ck_assert_uint_eq(mmio_rd32(t + 56), 0x4041);
	ck_assert_uint_eq(mmio_rd32(t + 60), 0);
	/* Reserved vector control bits read 0. */
	mmio_wr32(t + 60, 0xfffffffe);
	ck_assert_uint_eq(mmio_rd32(t + 60), 0);
	/* The table never reaches the device callbacks. */
	ck_assert_uint_eq(atomic_load(&fa->writes), 0);
}
END_TEST

START_TEST(test_msix_table_qword_access)
{
	uint64_t q = 0xabcdef00fee02000ull, r = 0;

	enable(DEVA, PCI_COMMAND_MEMORY);
	ck_assert_int_eq(io_bus_write(mmio, msix_table() + 16, &q, 8), 0);
	ck_assert_int_eq(io_bus_read(mmio, msix_table() + 16, &r, 8), 0);
	ck_assert_uint_eq(r, q);
	/* data + vector control in one quadword: mask bit from bit 32. */
	q = 0x0000000000000055ull;
	ck_assert_int_eq(io_bus_write(mmio, msix_table() + 24, &q, 8), 0);
	ck_assert_int_eq(pci_device_msix_entry(deva, 1, &r, NULL), 0);
	ck_assert_uint_eq(r, 0xabcdef00fee02000ull);
}
END_TEST

START_TEST(test_msix_table_bad_width)
{
	uint64_t t;
	uint16_t w;
	uint8_t b;
	uint32_t d;
	uint64_t q;

	enable(DEVA, PCI_COMMAND_MEMORY);
	t = msix_table();
	msix_setup_vector(0, 0xfee00000u, 0x1234, true);
	/* Byte and word accesses read 0 and write nothing. */
	ck_assert_int_eq(io_bus_read(mmio, t + 8, &w, 2), 0);
	ck_assert_uint_eq(w, 0);
	ck_assert_int_eq(io_bus_read(mmio, t + 8, &b, 1), 0);
	ck_assert_uint_eq(b, 0);
	w = 0xffff;
	ck_assert_int_eq(io_bus_write(mmio, t + 8, &w, 2), 0);
	b = 0;
	ck_assert_int_eq(io_bus_write(mmio, t + 12, &b, 1), 0);
	ck_assert_uint_eq(mmio_rd32(t + 8), 0x1234);
	ck_assert_uint_eq(mmio_rd32(t + 12), 1);
	/* Misaligned dword and quadword. */
	ck_assert_int_eq(io_bus_read(mmio, t + 2, &d, 4), 0);
	ck_assert_uint_eq(d, 0);
	ck_assert_int_eq(io_bus_read(mmio, t + 4, &q, 8), 0);
	ck_assert_uint_eq(q, 0);
	d = 0;
	ck_assert_int_eq(io_bus_write(mmio, t + 10, &d, 4), 0);
	ck_assert_uint_eq(mmio_rd32(t + 8), 0x1234);
}
END_TEST

START_TEST(test_msix_table_bounded)
{
	uint64_t t;
	uint32_t v = 0xffffffff;

	enable(DEVA, PCI_COMMAND_MEMORY);
	t = msix_table();
	/* Past the 8-entry table the BAR belongs to the device again. */
	memset(&fa->mem[2][0x80], 0x11, 4);
	ck_assert_uint_eq(mmio_rd32(t + 0x80), 0x11111111u);
	ck_assert_int_eq(io_bus_write(mmio, t + 0x80, &v, 4), 0);
	ck_assert_uint_eq(fa->last_off, 0x80);
	for (unsigned i = 0; i < 8; i++)
		ck_assert_uint_eq(mmio_rd32(t + 16 * i + 12), 1);
	/* Host-side selectors are bounded too. */
	ck_assert_int_eq(pci_device_msix_notify(deva, 8), -EINVAL);
	ck_assert_int_eq(pci_device_msix_notify(deva, 0xffff), -EINVAL);
	ck_assert_int_eq(pci_device_msix_entry(deva, 8, NULL, NULL), -EINVAL);
	ck_assert_int_eq(pci_device_msix_pending(deva, 8), -EINVAL);
	ck_assert_int_eq(pci_device_msix_notify(devb, 0), -EINVAL);
}
END_TEST

START_TEST(test_msix_delivery)
{
	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	msix_setup_vector(2, 0xfee00000u, 0x31, false);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_int_eq(pci_device_msix_notify(deva, 2), 0);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_address, 0xfee00000u);
	ck_assert_uint_eq(msi.last_data, 0x31);
	ck_assert_int_eq(pci_device_msix_pending(deva, 2), 0);
}
END_TEST

START_TEST(test_msix_masked_vector_pending)
{
	uint64_t pba;
	uint64_t q = 0;

	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	msix_setup_vector(5, 0xfee00000u, 0x55, true);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_int_eq(pci_device_msix_notify(deva, 5), 1);
	ck_assert_uint_eq(msi.count, 0);
	ck_assert_int_eq(pci_device_msix_pending(deva, 5), 1);
	pba = msix_table() + 0x1000;
	ck_assert_int_eq(io_bus_read(mmio, pba, &q, 8), 0);
	ck_assert_uint_eq(q, 1u << 5);
	ck_assert_uint_eq(mmio_rd32(pba), 1u << 5);
	/* Unmasking delivers and clears the pending bit. */
	mmio_wr32(msix_table() + 16 * 5 + 12, 0);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_data, 0x55);
	ck_assert_uint_eq(mmio_rd32(pba), 0);
}
END_TEST

START_TEST(test_msix_function_mask)
{
	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	msix_setup_vector(0, 0xfee00000u, 0x20, false);
	msix_setup_vector(7, 0xfee00000u, 0x27, false);
	msix_control(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	ck_assert_int_eq(pci_device_msix_entry(deva, 0, NULL, NULL), 1);
	ck_assert_int_eq(pci_device_msix_notify(deva, 0), 1);
	ck_assert_int_eq(pci_device_msix_notify(deva, 7), 1);
	ck_assert_int_eq(pci_device_msix_notify(deva, 7), 1);
	ck_assert_uint_eq(msi.count, 0);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	/* Each pending vector once. */
	ck_assert_uint_eq(msi.count, 2);
	ck_assert_uint_eq(msi.data[0], 0x20);
	ck_assert_uint_eq(msi.data[1], 0x27);
	ck_assert_int_eq(pci_device_msix_pending(deva, 7), 0);
}
END_TEST

START_TEST(test_msix_disabled_or_no_master)
{
	enable(DEVA, PCI_COMMAND_MEMORY);
	msix_setup_vector(1, 0xfee00000u, 0x11, false);
	ck_assert_int_eq(pci_device_msix_notify(deva, 1), -EAGAIN);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	/* Bus mastering off: a message is a memory write, so none. */
	ck_assert_int_eq(pci_device_msix_notify(deva, 1), -EAGAIN);
	ck_assert_int_eq(pci_device_msix_pending(deva, 1), 0);
	ck_assert_uint_eq(msi.count, 0);
	enable(DEVA, PCI_COMMAND_MASTER);
	ck_assert_int_eq(pci_device_msix_notify(deva, 1), 0);
	ck_assert_uint_eq(msi.count, 1);
}
END_TEST

START_TEST(test_msix_update_callback)
{
	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	fa->msix_updates = 0;
	msix_setup_vector(4, 0xfee03000u, 0x44, true);
	/* One update per table write, masked while MSI-X is off. */
	ck_assert_uint_eq(fa->msix_updates, 4);
	ck_assert_uint_eq(fa->mu_vector, 4);
	ck_assert_uint_eq(fa->mu_addr, 0xfee03000u);
	ck_assert_uint_eq(fa->mu_data, 0x44);
	ck_assert(fa->mu_masked);
	/* Enabling MSI-X updates every vector. */
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_uint_eq(fa->msix_updates, 4 + 8);
	ck_assert_int_eq(pci_device_msix_notify(deva, 4), 1);
	/* Unmask: the update comes before the pending message is sent. */
	mmio_wr32(msix_table() + 16 * 4 + 12, 0);
	ck_assert_uint_eq(fa->mu_vector, 4);
	ck_assert(!fa->mu_masked);
	ck_assert_uint_eq(fa->mu_msi_count, 0);
	ck_assert_uint_eq(msi.count, 1);
	/* Rewriting the same control value is not a change. */
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_uint_eq(fa->msix_updates, 4 + 8 + 1);
}
END_TEST

struct notifier_job {
	unsigned n;
	unsigned sent;
	unsigned pended;
	unsigned other;
};

static void *notifier(void *arg)
{
	struct notifier_job *j = arg;

	for (unsigned i = 0; i < j->n; i++) {
		int r = pci_device_msix_notify(deva, 6);

		if (r == 0)
			j->sent++;
		else if (r == 1)
			j->pended++;
		else
			j->other++;
	}
	return NULL;
}

START_TEST(test_msix_notify_races_mask)
{
	struct notifier_job j = {.n = 20000};
	pthread_t t;
	uint64_t ctrl;

	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	msix_setup_vector(6, 0xfee00000u, 0x66, true);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	ctrl = msix_table() + 16 * 6 + 12;
	ck_assert_int_eq(pthread_create(&t, NULL, notifier, &j), 0);
	for (unsigned i = 0; i < 4000; i++)
		mmio_wr32(ctrl, i & 1);
	pthread_join(t, NULL);
	mmio_wr32(ctrl, 0);
	ck_assert_uint_eq(j.other, 0);
	ck_assert_uint_eq(j.sent + j.pended, j.n);
	/* Nothing is lost: once unmasked, no bit stays pending, and every
	 * message left pending was sent later (coalesced, at most once per
	 * pending period). */
	ck_assert_int_eq(pci_device_msix_pending(deva, 6), 0);
	ck_assert_uint_ge(msi.count, j.sent + (j.pended ? 1 : 0));
	ck_assert_uint_le(msi.count, j.n);
	ck_assert_uint_eq(msi.last_data, 0x66);
}
END_TEST

START_TEST(test_msix_pba_read_only)
{
	uint64_t pba;
	uint32_t v = 0xffffffff;
	uint16_t w;

	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	pba = msix_table() + 0x1000;
	ck_assert_int_eq(io_bus_write(mmio, pba, &v, 4), 0);
	ck_assert_uint_eq(mmio_rd32(pba), 0);
	ck_assert_int_eq(pci_device_msix_pending(deva, 0), 0);
	ck_assert_int_eq(pci_device_msix_notify(deva, 3), 1);
	/* Narrow reads of the PBA read 0; the upper dword is empty. */
	ck_assert_int_eq(io_bus_read(mmio, pba, &w, 2), 0);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(mmio_rd32(pba + 4), 0);
	ck_assert_uint_eq(mmio_rd32(pba), 1u << 3);
	/* Past the PBA the BAR is the device's. */
	memset(&fa->mem[2][0x1008], 0x22, 4);
	ck_assert_uint_eq(mmio_rd32(pba + 8), 0x22222222u);
	ck_assert_uint_eq(atomic_load(&fa->writes), 0);
}
END_TEST

START_TEST(test_msix_disables_intx)
{
	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	ck_assert(intx.level);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	ck_assert(!intx.level);
	ck_assert_int_eq(pci_device_intx_asserted(deva), 0);
	msix_control(0);
	ck_assert(intx.level);
}
END_TEST

START_TEST(test_msix_add_errors)
{
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_IO, false, 256),
			 0);
	ck_assert_int_eq(
		pci_device_add_bar(d, 1, PCI_BAR_KIND_MEM32, false, 0x1000), 0);
	/* I/O BAR, too big, misaligned, overlapping, zero/too many. */
	ck_assert_int_eq(pci_device_add_msix(d, 4, 0, 0, 1, 0x800), -EINVAL);
	ck_assert_int_eq(pci_device_add_msix(d, 512, 1, 0, 1, 0xf00), -EINVAL);
	ck_assert_int_eq(pci_device_add_msix(d, 4, 1, 4, 1, 0x800), -EINVAL);
	ck_assert_int_eq(pci_device_add_msix(d, 4, 1, 0, 1, 0x20), -EINVAL);
	ck_assert_int_eq(pci_device_add_msix(d, 0, 1, 0, 1, 0x800), -EINVAL);
	ck_assert_int_eq(pci_device_add_msix(d, 2049, 1, 0, 1, 0x800), -EINVAL);
	ck_assert_int_eq(pci_device_add_msix(d, 4, 2, 0, 1, 0x800), -EINVAL);
	ck_assert_int_eq(pci_device_add_msix(d, 4, 1, 0, 1, 0x800), 0);
	ck_assert_int_eq(pci_device_add_msix(d, 4, 1, 0, 1, 0x800), -EEXIST);
	pci_device_destroy(d);
}
END_TEST

START_TEST(test_reset)
{
	uint64_t m32 = bar_addr(deva, 1);

	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	msix_setup_vector(0, 0xfee00000u, 1, true);
	msix_control(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_int_eq(pci_device_msix_notify(deva, 0), 1);
	m1_wr(DEVA, PCI_BASE_ADDRESS_1, 4, 0xd2000000u);
	ck_assert_int_eq(pci_device_reset(deva), 0);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_COMMAND, 2), 0);
	ck_assert_uint_eq(bar_addr(deva, 1), m32);
	ck_assert(!bar_mapped(deva, 1));
	ck_assert(!on_bus(mmio, 0xd2000000u));
	ck_assert_int_eq(pci_device_msix_enabled(deva), 0);
	ck_assert_int_eq(pci_device_msix_pending(deva, 0), 0);
	ck_assert_int_eq(pci_device_msix_entry(deva, 0, NULL, NULL), 1);
}
END_TEST

/* ------------------------------------------------------------------ MSI */

static uint32_t msi_cap(void)
{
	int c = pci_device_find_capability(devb, PCI_CAP_ID_MSI);

	ck_assert_int_gt(c, 0);
	return (uint32_t)c;
}

START_TEST(test_msi_capability_layout)
{
	uint32_t c = msi_cap();

	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_FLAGS, 2),
			  PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT |
				  2u << 1);
	/* Only enable and multiple-message-enable are writable. */
	m1_wr(DEVB, c + PCI_MSI_FLAGS, 2, 0xffff);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_FLAGS, 2),
			  PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT |
				  2u << 1 | PCI_MSI_FLAGS_QSIZE |
				  PCI_MSI_FLAGS_ENABLE);
	/* MME beyond MMC: the function uses the 4 vectors it has. */
	ck_assert_int_eq(pci_device_msi_enabled(devb), 4);
	/* Address bits 1:0 are read-only 0; mask has 4 writable bits;
	 * pending is read-only. */
	m1_wr(DEVB, c + PCI_MSI_ADDRESS_LO, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_ADDRESS_LO, 4), 0xfffffffcu);
	m1_wr(DEVB, c + PCI_MSI_MASK_64, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_MASK_64, 4), 0xf);
	m1_wr(DEVB, c + PCI_MSI_PENDING_64, 4, 0xffffffff);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_PENDING_64, 4), 0);
	ck_assert_int_eq(pci_device_config_set(devb, c + PCI_MSI_DATA_64, 2, 1),
			 -EINVAL);
}
END_TEST

START_TEST(test_msi_delivery)
{
	uint32_t c = msi_cap();

	enable(DEVB, PCI_COMMAND_MASTER);
	ck_assert_int_eq(pci_device_msi_notify(devb, 0), -EAGAIN);
	m1_wr(DEVB, c + PCI_MSI_ADDRESS_LO, 4, 0xfee01000u);
	m1_wr(DEVB, c + PCI_MSI_ADDRESS_HI, 4, 0);
	m1_wr(DEVB, c + PCI_MSI_DATA_64, 2, 0x4040);
	fb->msi_updates = 0;
	m1_wr(DEVB, c + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | 2u << 4);
	ck_assert_uint_eq(fb->msi_updates, 1);
	ck_assert(fb->mu_enabled);
	ck_assert_uint_eq(fb->mu_nvec, 4);
	ck_assert_uint_eq(fb->mu_addr, 0xfee01000u);
	ck_assert_int_eq(pci_device_msi_notify(devb, 3), 0);
	ck_assert_uint_eq(msi.last_address, 0xfee01000u);
	ck_assert_uint_eq(msi.last_data, 0x4043);
	ck_assert_int_eq(pci_device_msi_notify(devb, 4), -EINVAL);
	ck_assert_int_eq(pci_device_msi_notify(devb, 32), -EINVAL);
	ck_assert_int_eq(pci_device_msi_notify(deva, 0), -EINVAL);
	/* Bus mastering off: nothing is sent. */
	m1_wr(DEVB, PCI_COMMAND, 2, 0);
	ck_assert_int_eq(pci_device_msi_notify(devb, 0), -EAGAIN);
	ck_assert_uint_eq(msi.count, 1);
}
END_TEST

START_TEST(test_msi_mask_and_pending)
{
	uint32_t c = msi_cap();

	enable(DEVB, PCI_COMMAND_MASTER);
	m1_wr(DEVB, c + PCI_MSI_ADDRESS_LO, 4, 0xfee00000u);
	m1_wr(DEVB, c + PCI_MSI_DATA_64, 2, 0x50);
	m1_wr(DEVB, c + PCI_MSI_MASK_64, 4, 0x2);
	m1_wr(DEVB, c + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | 1u << 4);
	ck_assert_int_eq(pci_device_msi_notify(devb, 1), 1);
	ck_assert_int_eq(pci_device_msi_notify(devb, 0), 0);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_PENDING_64, 4), 0x2);
	ck_assert_uint_eq(ec_rd(DEVB, c + PCI_MSI_PENDING_64, 1), 0x2);
	ck_assert_uint_eq(ec_rd(DEVB, c + PCI_MSI_PENDING_64 + 1, 1), 0);
	/* Unmask: the pending message goes out once. */
	m1_wr(DEVB, c + PCI_MSI_MASK_64, 4, 0);
	ck_assert_uint_eq(msi.count, 2);
	ck_assert_uint_eq(msi.last_data, 0x51);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_PENDING_64, 4), 0);
	/* Reset clears MSI. */
	ck_assert_int_eq(pci_device_reset(devb), 0);
	ck_assert_int_eq(pci_device_msi_enabled(devb), 0);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_ADDRESS_LO, 4), 0);
}
END_TEST

static unsigned mvu_total(const struct fake *f)
{
	unsigned n = 0;

	for (unsigned v = 0; v < 32; v++)
		n += f->mvu_calls[v];
	return n;
}

/* The per-vector hook and MSI notifiers (what a VMM's irqfd bypass
 * uses): called for the vectors whose message or mask changed, before a
 * pending message goes; a vector whose route is current goes through its
 * notifier, else through the sink. */
START_TEST(test_msi_vector_update_and_notifier)
{
	uint32_t c = msi_cap();
	struct event_notifier *n;

	ck_assert_int_eq(event_notifier_create(0, &n), 0);
	enable(DEVB, PCI_COMMAND_MASTER);
	m1_wr(DEVB, c + PCI_MSI_ADDRESS_LO, 4, 0xfee00000u);
	m1_wr(DEVB, c + PCI_MSI_DATA_64, 2, 0x60);
	m1_wr(DEVB, c + PCI_MSI_MASK_64, 4, 0x2);
	memset(fb->mvu_calls, 0, sizeof(fb->mvu_calls));
	/* Enabling 4 vectors: one call per vector the function has. */
	m1_wr(DEVB, c + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | 2u << 4);
	for (unsigned v = 0; v < 4; v++)
		ck_assert_uint_eq(fb->mvu_calls[v], 1);
	ck_assert_uint_eq(mvu_total(fb), 4);
	/* A notifier: its vector's route is asked for at once. */
	ck_assert_int_eq(pci_device_msi_set_notifier(devb, 1, n), 0);
	ck_assert_uint_eq(fb->mvu_calls[1], 2);
	ck_assert_uint_eq(fb->mvu_vector, 1);
	ck_assert_uint_eq(fb->mvu_addr, 0xfee00000u);
	ck_assert_uint_eq(fb->mvu_data, 0x61);
	ck_assert(fb->mvu_masked);
	ck_assert_int_eq(pci_device_msi_set_notifier(devb, 4, n), -EINVAL);
	ck_assert_int_eq(pci_device_msi_set_notifier(deva, 0, n), -EINVAL);
	ck_assert_int_eq(pci_device_msi_set_notifier(NULL, 0, n), -EINVAL);
	/* Masked: pending, the notifier stays quiet. */
	ck_assert_int_eq(pci_device_msi_notify(devb, 1), 1);
	ck_assert_int_eq(event_notifier_consume(n), 0);
	/* Unmasking vector 1 only: one call, unmasked, before the pending
	 * message, which goes through the notifier, not the sink. */
	m1_wr(DEVB, c + PCI_MSI_MASK_64, 4, 0);
	ck_assert_uint_eq(mvu_total(fb), 4 + 2);
	ck_assert_uint_eq(fb->mvu_vector, 1);
	ck_assert(!fb->mvu_masked);
	ck_assert_uint_eq(fb->mvu_msi_count, 0);
	ck_assert_uint_eq(msi.count, 0);
	ck_assert_int_eq(event_notifier_consume(n), 1);
	ck_assert_uint_eq(m1_rd(DEVB, c + PCI_MSI_PENDING_64, 4), 0);
	ck_assert_int_eq(pci_device_msi_notify(devb, 1), 0);
	ck_assert_int_eq(event_notifier_consume(n), 1);
	/* The VMM cannot route the new data: the sink takes the message,
	 * with the vector's data. */
	fb->mvu_ret = -EIO;
	m1_wr(DEVB, c + PCI_MSI_DATA_64, 2, 0x70);
	ck_assert_uint_eq(mvu_total(fb), 4 + 2 + 4);
	ck_assert_int_eq(pci_device_msi_notify(devb, 1), 0);
	ck_assert_int_eq(event_notifier_consume(n), 0);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_data, 0x71);
	/* Routed again: the notifier again.  Fewer vectors enabled: vector
	 * 1 is no longer sendable (masked in the call). */
	fb->mvu_ret = 0;
	m1_wr(DEVB, c + PCI_MSI_DATA_64, 2, 0x80);
	ck_assert_int_eq(pci_device_msi_notify(devb, 1), 0);
	ck_assert_int_eq(event_notifier_consume(n), 1);
	m1_wr(DEVB, c + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
	ck_assert_uint_eq(fb->mvu_calls[1], 6);
	ck_assert_uint_eq(fb->mvu_vector, 3);
	ck_assert(fb->mvu_masked);
	ck_assert_int_eq(pci_device_msi_notify(devb, 1), -EINVAL);
	/* Off: every vector is told it is masked. */
	m1_wr(DEVB, c + PCI_MSI_FLAGS, 2, 0);
	ck_assert_uint_eq(fb->mvu_calls[0], 5);
	ck_assert(fb->mvu_masked);
	/* Cleared, the sink is used again (no call is needed). */
	m1_wr(DEVB, c + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | 2u << 4);
	ck_assert_int_eq(pci_device_msi_set_notifier(devb, 1, NULL), 0);
	ck_assert_int_eq(pci_device_msi_notify(devb, 1), 0);
	ck_assert_int_eq(event_notifier_consume(n), 0);
	ck_assert_uint_eq(msi.count, 2);
	ck_assert_uint_eq(msi.last_data, 0x81);
	ck_assert_int_eq(pci_device_reset(devb), 0);
	event_notifier_destroy(n);
}
END_TEST

START_TEST(test_msi_add_errors_and_intx)
{
	struct pci_device_info info = {
		.vendor_id = 1, .device_id = 2, .interrupt_pin = 1};
	struct pci_device *d;
	struct irq_recorder r;
	struct irq_line l = irq_recorder_line(&r);
	uint32_t v;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_msi(d, 3, false, false), -EINVAL);
	ck_assert_int_eq(pci_device_add_msi(d, 64, false, false), -EINVAL);
	ck_assert_int_eq(pci_device_add_msi(d, 0, false, false), -EINVAL);
	ck_assert_int_eq(pci_device_add_msi(d, 1, false, false), 0);
	ck_assert_int_eq(pci_device_add_msi(d, 1, false, false), -EEXIST);
	/* 32-bit, no masking, one vector: the control word is 0. */
	ck_assert_int_eq(pci_device_config_read(d, 0x40, 4, &v), 0);
	ck_assert_uint_eq(v, 0x00000005u);
	ck_assert_int_eq(pci_device_set_intx_line(d, &l), 0);
	ck_assert_int_eq(pci_device_set_intx(d, true), 0);
	ck_assert(r.level);
	ck_assert_int_eq(pci_device_config_write(d, 0x42, 2, 1), 0);
	ck_assert(!r.level);
	ck_assert_int_eq(pci_device_msi_enabled(d), 1);
	ck_assert_int_eq(pci_device_config_write(d, 0x42, 2, 0), 0);
	ck_assert(r.level);
	pci_device_destroy(d);
	pthread_mutex_destroy(&r.lock);
}
END_TEST

/* ----------------------------------------------------------------- INTx */

START_TEST(test_intx_level_and_status)
{
	ck_assert_uint_eq(m1_rd(DEVA, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	ck_assert(intx.level);
	ck_assert_uint_eq(intx.asserts, 1);
	ck_assert_uint_ne(m1_rd(DEVA, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	ck_assert_uint_ne(m1_rd(DEVA, PCI_STATUS, 1) & PCI_STATUS_INTERRUPT, 0);
	/* Setting the same level again does not re-drive the line. */
	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	ck_assert_uint_eq(intx.sets, 1);
	ck_assert_int_eq(pci_device_set_intx(deva, false), 0);
	ck_assert(!intx.level);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	/* Status bit 3 is read-only. */
	m1_wr(DEVA, PCI_STATUS, 2, PCI_STATUS_INTERRUPT);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
}
END_TEST

START_TEST(test_intx_disable_bit)
{
	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	enable(DEVA, PCI_COMMAND_INTX_DISABLE);
	ck_assert(!intx.level);
	ck_assert_int_eq(pci_device_intx_asserted(deva), 0);
	/* The status bit still shows the function's request. */
	ck_assert_uint_ne(m1_rd(DEVA, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	m1_wr(DEVA, PCI_COMMAND, 2, 0);
	ck_assert(intx.level);
	ck_assert_uint_eq(intx.asserts, 2);
	/* Raised while disabled: the line waits for the enable. */
	ck_assert_int_eq(pci_device_set_intx(deva, false), 0);
	enable(DEVA, PCI_COMMAND_INTX_DISABLE);
	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	ck_assert(!intx.level);
	m1_wr(DEVA, PCI_COMMAND, 2, 0);
	ck_assert(intx.level);
}
END_TEST

START_TEST(test_intx_without_pin)
{
	ck_assert_int_eq(pci_device_set_intx(devb, true), -EINVAL);
	ck_assert_int_eq(pci_device_intx_asserted(devb), 0);
	ck_assert_uint_eq(m1_rd(DEVB, PCI_INTERRUPT_PIN, 1), 0);
}
END_TEST

START_TEST(test_intx_line_swap)
{
	struct irq_recorder r2;
	struct irq_line l2 = irq_recorder_line(&r2);

	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	ck_assert_int_eq(pci_device_set_intx_line(deva, &l2), 0);
	ck_assert(!intx.level);
	ck_assert(r2.level);
	ck_assert_int_eq(pci_device_set_intx_line(deva, NULL), 0);
	ck_assert(!r2.level);
	pthread_mutex_destroy(&r2.lock);
}
END_TEST

/* ----------------------------------------------------------------- root */

START_TEST(test_root_add_errors)
{
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;

	/* On every error the caller still owns @d: one function serves all
	 * the failing calls (ASan reports a use after free otherwise), and
	 * is finally added. */
	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_root_add_device(root, d, 32, 0), -EINVAL);
	ck_assert_int_eq(pci_root_add_device(root, d, 0, 8), -EINVAL);
	ck_assert_int_eq(pci_root_add_device(root, d, 0, 0), -EINVAL);
	ck_assert_int_eq(pci_root_add_device(NULL, d, 4, 0), -EINVAL);
	ck_assert_int_eq(pci_root_add_device(root, d, 1, 0), -EBUSY);
	ck_assert_int_eq(pci_device_config_write(d, PCI_COMMAND, 2, 0), 0);
	ck_assert_int_eq(pci_root_add_device(root, NULL, 4, 0), -EINVAL);
	ck_assert_int_eq(pci_root_add_device(root, deva, 4, 0), -EEXIST);
	ck_assert_ptr_eq(pci_root_get_device(root, 1, 0), deva);
	ck_assert_ptr_null(pci_root_get_device(root, 32, 0));
	ck_assert_int_eq(pci_root_add_device(root, d, 31, 7), 0);
	ck_assert_uint_eq(m1_rd(PCI_ROOT_DEVFN(31, 7), 0, 4), 0x00020001);
}
END_TEST

START_TEST(test_root_remove_device)
{
	uint64_t m32 = bar_addr(deva, 1);

	enable(DEVA, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	ck_assert(on_bus(mmio, m32));
	ck_assert_int_eq(pci_root_remove_device(root, 1, 0), 0);
	deva = NULL;
	ck_assert(!on_bus(mmio, m32));
	ck_assert_uint_eq(mmio_rd32(m32), 0xffffffffu);
	ck_assert_uint_eq(m1_rd(DEVA, 0, 4), 0xffffffffu);
	ck_assert_uint_eq(address_allocator_count(a64), 0);
	ck_assert_uint_eq(address_allocator_count(aio), 0);
	ck_assert_uint_eq(address_allocator_count(a32), 1);
	ck_assert_int_eq(pci_root_remove_device(root, 1, 0), -ENOENT);
	ck_assert_int_eq(pci_root_remove_device(root, 0, 0), -EINVAL);
}
END_TEST

START_TEST(test_root_without_room_or_allocator)
{
	struct address_allocator *tiny;
	struct pci_root_config rc = {0};
	struct pci_root *r2;
	struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
	struct pci_device *d;

	ck_assert_int_eq(
		address_allocator_create(0xf0000000u, 0xf0000fffu, &tiny), 0);
	rc.mem32 = tiny;
	ck_assert_int_eq(pci_root_create(&rc, &r2), 0);
	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(
		pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false, 0x1000), 0);
	ck_assert_int_eq(
		pci_device_add_bar(d, 1, PCI_BAR_KIND_MEM32, false, 0x1000), 0);
	ck_assert_int_eq(pci_root_add_device(r2, d, 1, 0), -ENOSPC);
	/* The failed add gave its first allocation back, and @d is still
	 * the caller's. */
	ck_assert_uint_eq(address_allocator_count(tiny), 0);
	pci_device_destroy(d);
	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_IO, false, 16),
			 0);
	ck_assert_int_eq(pci_root_add_device(r2, d, 1, 0), -ENXIO);
	pci_device_destroy(d);
	/* Without buses, BARs decode only through the direct API. */
	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(
		pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false, 0x1000), 0);
	ck_assert_int_eq(pci_root_add_device(r2, d, 1, 0), 0);
	ck_assert_int_eq(pci_root_config_write(r2, 0, PCI_ROOT_DEVFN(1, 0),
					       PCI_COMMAND, 2,
					       PCI_COMMAND_MEMORY),
			 0);
	ck_assert(bar_mapped(d, 0));
	pci_root_destroy(r2);
	ck_assert_uint_eq(address_allocator_count(tiny), 0);
	address_allocator_destroy(tiny);
}
END_TEST

START_TEST(test_create_errors)
{
	struct pci_device_info info = {.vendor_id = 1, .interrupt_pin = 5};
	struct pci_device *d = NULL;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), -EINVAL);
	info.interrupt_pin = 0;
	info.flags = 0x100;
	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), -EINVAL);
	ck_assert_int_eq(pci_device_create(NULL, NULL, NULL, &d), -EINVAL);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(pci_root_create(NULL, NULL), -EINVAL);
	pci_device_destroy(NULL);
	pci_root_destroy(NULL);
	ck_assert_int_eq(pci_root_register_ecam(root, mmio, 0x1000), -EINVAL);
	ck_assert_int_eq(pci_root_register_pio(root, pio), -EEXIST);
}
END_TEST

START_TEST(test_multifunction_header)
{
	struct pci_device_info info = {.vendor_id = 1,
				       .device_id = 2,
				       .flags = PCI_DEVICE_MULTIFUNCTION};
	struct pci_device *d;

	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_root_add_device(root, d, 6, 0), 0);
	ck_assert_uint_eq(m1_rd(PCI_ROOT_DEVFN(6, 0), PCI_HEADER_TYPE, 1),
			  0x80);
}
END_TEST

/* --------------------------------------------------- a Linux-like probe */

START_TEST(test_linux_like_probe)
{
	uint32_t v = 0x80000000u, found = 0;
	uint8_t b = 1;

	/* pci_check_type1(): byte write to 0xCFB, then the enable bit must
	 * read back exactly. */
	ck_assert_int_eq(io_bus_write(pio, 0xcfb, &b, 1), 0);
	ck_assert_int_eq(io_bus_write(pio, 0xcf8, &v, 4), 0);
	v = 0;
	ck_assert_int_eq(io_bus_read(pio, 0xcf8, &v, 4), 0);
	ck_assert_uint_eq(v, 0x80000000u);
	/* Scan bus 0: function 0 of each slot, more only if multifunction. */
	for (unsigned slot = 0; slot < 32; slot++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			uint8_t devfn = PCI_ROOT_DEVFN(slot, fn);
			uint32_t id = m1_rd(devfn, 0, 4);

			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			found++;
			if (fn == 0 &&
			    !(m1_rd(devfn, PCI_HEADER_TYPE, 1) & 0x80))
				break;
		}
	}
	ck_assert_uint_eq(found, 3);
	/* __pci_read_base(): decode off, size each BAR, restore. */
	m1_wr(DEVA, PCI_COMMAND, 2, 0);
	for (unsigned i = 0; i < 6; i++) {
		uint32_t off = PCI_BASE_ADDRESS_0 + 4 * i;
		uint32_t l = m1_rd(DEVA, off, 4), sz;

		m1_wr(DEVA, off, 4, 0xffffffff);
		sz = m1_rd(DEVA, off, 4);
		m1_wr(DEVA, off, 4, l);
		if (i == 0)
			ck_assert_uint_eq((~(sz & ~3u) & 0xffff) + 1, 32);
		if (i == 1)
			ck_assert_uint_eq(~(sz & ~0xfu) + 1, 0x1000);
		if (i == 2)
			ck_assert_uint_eq(~(sz & ~0xfu) + 1, 0x4000);
		if (i == 3)
			ck_assert_uint_eq(sz, 0xffffffffu);
		ck_assert_uint_eq(m1_rd(DEVA, off, 4), l);
	}
	/* pci_enable_device() + pci_set_master(). */
	m1_wr(DEVA, PCI_COMMAND, 2,
	      PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	ck_assert(bar_mapped(deva, 0) && bar_mapped(deva, 1) &&
		  bar_mapped(deva, 2));
	/* msix_capability_init(): enable with the function masked, program
	 * the table, unmask the function. */
	{
		uint32_t c = (uint32_t)msix_cap();
		uint32_t tbl = m1_rd(DEVA, c + PCI_MSIX_TABLE, 4);
		uint16_t ctl = (uint16_t)m1_rd(DEVA, c + PCI_MSIX_FLAGS, 2);
		uint64_t base = bar_addr(deva, tbl & 7) + (tbl & ~7u);

		m1_wr(DEVA, c + PCI_MSIX_FLAGS, 2,
		      ctl | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
		for (unsigned vec = 0; vec <= (ctl & PCI_MSIX_FLAGS_QSIZE);
		     vec++) {
			mmio_wr32(base + 16 * vec, 0xfee00000u);
			mmio_wr32(base + 16 * vec + 4, 0);
			mmio_wr32(base + 16 * vec + 8, 0x30 + vec);
			mmio_wr32(base + 16 * vec + 12, 0);
		}
		m1_wr(DEVA, c + PCI_MSIX_FLAGS, 2, ctl | PCI_MSIX_FLAGS_ENABLE);
	}
	ck_assert_int_eq(pci_device_msix_notify(deva, 7), 0);
	ck_assert_uint_eq(msi.last_data, 0x37);
	/* INTx is off while MSI-X is on. */
	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	ck_assert(!intx.level);
}
END_TEST

/* ------------------------------------- re-entrancy and hot-unplug races */

enum reent_mode {
	REENT_DISABLE_SELF, /* write 0 to its own command register */
	REENT_CFG_WRITE,    /* a config write that keeps decoding */
	REENT_EJECT,	    /* remove its own function from the root */
	REENT_RECURSE,	    /* read its own BAR again, without end */
};

struct reent {
	struct pci_device *dev;
	enum reent_mode mode;
	unsigned slot;
	atomic_uint calls;
	atomic_int ret;
	atomic_uint depth;
	atomic_uint max_depth;
	/* REENT_CFG_WRITE: results other than 0 (-EAGAIN: a BAR update of
	 * the function the bus refused for now, see below). */
	atomic_uint eagain;
	atomic_uint other_err;
};

static void reent_read(void *opaque, unsigned bar, uint64_t off, void *data,
		       unsigned len)
{
	struct reent *r = opaque;
	unsigned d = atomic_fetch_add(&r->depth, 1) + 1;

	if (d > atomic_load(&r->max_depth))
		atomic_store(&r->max_depth, d);
	if (r->mode == REENT_RECURSE)
		pci_device_bar_read(r->dev, bar, off, data, len);
	atomic_fetch_sub(&r->depth, 1);
}

static void reent_write(void *opaque, unsigned bar, uint64_t off,
			const void *data, unsigned len)
{
	struct reent *r = opaque;

	(void)bar;
	(void)off;
	(void)len;
	atomic_fetch_add(&r->calls, 1);
	switch (r->mode) {
	case REENT_DISABLE_SELF:
		atomic_store(&r->ret, pci_device_config_write(
					      r->dev, PCI_COMMAND, 2, 0));
		break;
	case REENT_CFG_WRITE: {
		int ret = pci_device_config_write(r->dev, PCI_INTERRUPT_LINE, 1,
						  *(const uint8_t *)data);

		atomic_store(&r->ret, ret);
		if (ret == -EAGAIN)
			atomic_fetch_add(&r->eagain, 1);
		else if (ret)
			atomic_fetch_add(&r->other_err, 1);
		break;
	}
	case REENT_EJECT:
		atomic_store(&r->ret, pci_root_remove_device(root, r->slot, 0));
		break;
	case REENT_RECURSE:
		break;
	}
}

static const struct pci_device_ops reent_ops = {
	.bar_read = reent_read,
	.bar_write = reent_write,
};

#define REENT_SLOT 5
#define REENT_BAR  0xd8000000u

/* A function at 00:05.0 with a 4 KiB memory BAR at REENT_BAR, decoding. */
static void reent_add(struct reent *r, enum reent_mode mode)
{
	struct pci_device_info info = {.vendor_id = 0x1234, .device_id = 5};

	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->slot = REENT_SLOT;
	ck_assert_int_eq(pci_device_create(&info, &reent_ops, r, &r->dev), 0);
	ck_assert_int_eq(pci_device_add_bar(r->dev, 0, PCI_BAR_KIND_MEM32,
					    false, 0x1000),
			 0);
	ck_assert_int_eq(pci_device_set_bar_address(r->dev, 0, REENT_BAR), 0);
	ck_assert_int_eq(pci_root_add_device(root, r->dev, REENT_SLOT, 0), 0);
	enable(PCI_ROOT_DEVFN(REENT_SLOT, 0), PCI_COMMAND_MEMORY);
	ck_assert(on_bus(mmio, REENT_BAR));
}

static void *reent_poke(void *arg)
{
	(void)arg;
	mmio_wr32(REENT_BAR, 7);
	return NULL;
}

/* Join @t within @sec seconds; false if it is stuck (a deadlock). */
static bool join_within(pthread_t t, int sec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += sec;
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

START_TEST(test_bar_handler_disables_own_decode)
{
	struct reent r;
	pthread_t t;

	/* A register whose write makes the device turn its own decode off
	 * (or a BAR callback that dispatches a config write): the config
	 * write waits for running BAR callbacks, but not for its own. */
	reent_add(&r, REENT_DISABLE_SELF);
	ck_assert_int_eq(pthread_create(&t, NULL, reent_poke, NULL), 0);
	ck_assert_msg(join_within(t, 10), "config write from a BAR callback "
					  "deadlocked");
	ck_assert_uint_eq(atomic_load(&r.calls), 1);
	ck_assert_int_eq(atomic_load(&r.ret), 0);
	ck_assert(!bar_mapped(r.dev, 0));
	ck_assert(!on_bus(mmio, REENT_BAR));
	ck_assert_uint_eq(mmio_rd32(REENT_BAR), 0xffffffffu);
}
END_TEST

struct toggler {
	atomic_bool stop;
	unsigned rounds;
	unsigned done;
	unsigned failed; /* config writes that did not return 0 */
	int first_err;
};

static void *reent_hammer(void *arg)
{
	struct toggler *tg = arg;
	uint8_t v = 0;

	while (!atomic_load(&tg->stop)) {
		v++;
		io_bus_write(mmio, REENT_BAR, &v, 1);
	}
	return NULL;
}

static void *cmd_toggler(void *arg)
{
	struct toggler *tg = arg;
	uint8_t devfn = PCI_ROOT_DEVFN(REENT_SLOT, 0);

	struct timespec t0, t;

	/* For about two seconds (the race needs many rounds to show). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < tg->rounds; i++) {
		int ret =
			pci_root_config_write(root, 0, devfn, PCI_COMMAND, 2,
					      (i & 1) ? PCI_COMMAND_MEMORY : 0);

		/* A host thread (outside any dispatch): a decode-on the bus
		 * refuses (retired-table bound: the hammer was descheduled
		 * inside a dispatch) waits for a grace period and retries,
		 * so it succeeds; the hammer is never stuck for good. */
		if (ret && tg->failed++ == 0)
			tg->first_err = ret;
		tg->done = i + 1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((i & 1) && t.tv_sec - t0.tv_sec >= 2)
			break;
	}
	return NULL;
}

START_TEST(test_bar_handler_config_write_vs_decode_toggle)
{
	struct toggler tg = {.rounds = 1000000};
	struct reent r;
	pthread_t a, b;
	bool ok_b, ok_a;
	unsigned calls;

	/* Thread A's BAR callback writes config space (root lock) while
	 * thread B turns decode off (root lock, then a wait for A's
	 * callback).  B must not wait while holding the lock A needs. */
	reent_add(&r, REENT_CFG_WRITE);
	ck_assert_int_eq(pthread_create(&a, NULL, reent_hammer, &tg), 0);
	while (atomic_load(&r.calls) < 10)
		nap_us(100);
	ck_assert_int_eq(pthread_create(&b, NULL, cmd_toggler, &tg), 0);
	ok_b = join_within(b, 60);
	atomic_store(&tg.stop, true);
	ok_a = join_within(a, 10);
	ck_assert_msg(ok_b && ok_a, "decode toggle vs BAR callback config "
				    "write deadlocked");
	/* Every toggle took effect and said so. */
	ck_assert_msg(tg.failed == 0, "%u of %u config writes failed, first %d",
		      tg.failed, tg.done, tg.first_err);
	ck_assert_uint_eq(tg.done % 2, 0);
	/* The callback's config writes: 0, or -EAGAIN when it came while a
	 * decode-on of the toggler waited for its retry (the callback's
	 * write retried it and was refused too: honest, not lost). */
	ck_assert_uint_eq(atomic_load(&r.other_err), 0);
	ck_assert_uint_gt(atomic_load(&r.calls), 10);
	/* The last write turned decoding back on, and it decodes. */
	ck_assert(bar_mapped(r.dev, 0));
	ck_assert(on_bus(mmio, REENT_BAR));
	calls = atomic_load(&r.calls);
	mmio_wr32(REENT_BAR, 1);
	ck_assert_uint_eq(atomic_load(&r.calls), calls + 1);
}
END_TEST

/*
 * The retired-table bound, deterministically: a vCPU blocked in a callback
 * (a gate the test opens) keeps every replaced table of every bus from
 * being freed.  Decode toggles through a config-write port on the PIO bus
 * (a guest access: inside a dispatch) fill the MMIO bus's bound until a
 * decode-on is refused.
 */
#define GATE_PORT 0x510
#define POKE_PORT 0x520

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool in;
	bool open;
};

static struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   false, false};

static void gate_write(void *opaque, uint64_t off, const void *data,
		       unsigned size)
{
	(void)opaque;
	(void)off;
	(void)data;
	(void)size;
	pthread_mutex_lock(&gate.lock);
	gate.in = true;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

static const struct io_bus_ops gate_ops = {.write = gate_write};

static void *gate_vcpu(void *arg)
{
	uint8_t b = 1;

	(void)arg;
	io_bus_write(pio, GATE_PORT, &b, 1);
	return NULL;
}

static void gate_open(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* A guest config write: the PIO bus dispatches it, the callback writes
 * the config space of 00:05.0 and keeps the result. */
static struct {
	uint32_t reg;
	unsigned len;
	int ret;
} poke_req;

static void poke_write(void *opaque, uint64_t off, const void *data,
		       unsigned size)
{
	(void)opaque;
	(void)off;
	(void)size;
	poke_req.ret = pci_root_config_write(root, 0,
					     PCI_ROOT_DEVFN(REENT_SLOT, 0),
					     poke_req.reg, poke_req.len,
					     *(const uint32_t *)data);
}

static const struct io_bus_ops poke_ops = {.write = poke_write};

static int guest_cfg_write(uint32_t reg, unsigned len, uint32_t v)
{
	poke_req.reg = reg;
	poke_req.len = len;
	poke_req.ret = 1;
	ck_assert_int_eq(io_bus_write(pio, POKE_PORT, &v, 4), 0);
	return poke_req.ret;
}

/* 00:05.0 decoding; a vCPU blocked in the gate; guest decode toggles
 * until the bus refuses a decode-on (-EAGAIN).  Returns the gate thread. */
static pthread_t fill_bound(struct reent *r)
{
	struct timespec ts;
	pthread_t g;
	int ret = 0;
	unsigned i;

	pthread_mutex_lock(&gate.lock);
	gate.in = false;
	gate.open = false;
	pthread_mutex_unlock(&gate.lock);
	reent_add(r, REENT_CFG_WRITE);
	ck_assert_int_eq(io_bus_register(pio, GATE_PORT, 1, &gate_ops, NULL),
			 0);
	ck_assert_int_eq(io_bus_register(pio, POKE_PORT, 4, &poke_ops, NULL),
			 0);
	ck_assert_int_eq(pthread_create(&g, NULL, gate_vcpu, NULL), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&gate.lock);
	while (!gate.in)
		ck_assert_int_eq(
			pthread_cond_timedwait(&gate.cond, &gate.lock, &ts), 0);
	pthread_mutex_unlock(&gate.lock);
	/* 2 tables retired per round: the bound (4096) within 2048. */
	for (i = 0; i < 3000; i++) {
		ck_assert_int_eq(guest_cfg_write(PCI_COMMAND, 2, 0), 0);
		ck_assert(!bar_mapped(r->dev, 0));
		ret = guest_cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
		if (ret)
			break;
		ck_assert(bar_mapped(r->dev, 0));
	}
	ck_assert_int_eq(ret, -EAGAIN);
	ck_assert_uint_ge(i, 1000);
	/* Recorded in config space, not decoding: what the guest reads
	 * back says decode on, the BAR is simply not there yet. */
	ck_assert_uint_eq(m1_rd(PCI_ROOT_DEVFN(REENT_SLOT, 0), PCI_COMMAND, 2),
			  PCI_COMMAND_MEMORY);
	ck_assert(!bar_mapped(r->dev, 0));
	ck_assert(!on_bus(mmio, REENT_BAR));
	ck_assert_uint_eq(mmio_rd32(REENT_BAR), 0xffffffffu);
	/* Level-triggered: any config write of the function retries, and
	 * says again that it could not. */
	ck_assert_int_eq(guest_cfg_write(PCI_INTERRUPT_LINE, 1, 9), -EAGAIN);
	ck_assert(!bar_mapped(r->dev, 0));
	return g;
}

static void gate_cleanup(void)
{
	ck_assert_int_eq(io_bus_unregister(pio, GATE_PORT), 0);
	ck_assert_int_eq(io_bus_unregister(pio, POKE_PORT), 0);
}

START_TEST(test_bar_claim_refused_retried_by_next_write)
{
	struct reent r;
	pthread_t g = fill_bound(&r);

	gate_open();
	ck_assert_msg(join_within(g, 10), "gate vCPU did not return");
	/* The reader is gone: the next guest config write of the function
	 * (any register) retries the claim, from inside its dispatch,
	 * without waiting. */
	ck_assert_int_eq(guest_cfg_write(PCI_INTERRUPT_LINE, 1, 10), 0);
	ck_assert(bar_mapped(r.dev, 0));
	ck_assert(on_bus(mmio, REENT_BAR));
	mmio_wr32(REENT_BAR, 4);
	ck_assert_uint_eq(atomic_load(&r.calls), 1);
	gate_cleanup();
}
END_TEST

struct host_write {
	atomic_bool done;
	int ret;
};

static void *host_cfg_writer(void *arg)
{
	struct host_write *h = arg;

	/* A VMM thread, outside any dispatch. */
	h->ret = pci_root_config_write(root, 0, PCI_ROOT_DEVFN(REENT_SLOT, 0),
				       PCI_INTERRUPT_LINE, 1, 11);
	atomic_store(&h->done, true);
	return NULL;
}

START_TEST(test_bar_claim_refused_host_write_waits_and_maps)
{
	struct host_write h = {.ret = 1};
	struct reent r;
	pthread_t g = fill_bound(&r), w;

	/* A host-side config write retries the refused claim after a grace
	 * period: it cannot finish while the vCPU is stuck in the gate. */
	ck_assert_int_eq(pthread_create(&w, NULL, host_cfg_writer, &h), 0);
	nap_us(200 * 1000);
	ck_assert(!atomic_load(&h.done));
	ck_assert(!bar_mapped(r.dev, 0));
	gate_open();
	ck_assert_msg(join_within(g, 10), "gate vCPU did not return");
	ck_assert_msg(join_within(w, 10), "host config write did not return");
	ck_assert_int_eq(h.ret, 0);
	ck_assert(bar_mapped(r.dev, 0));
	ck_assert(on_bus(mmio, REENT_BAR));
	ck_assert_uint_eq(m1_rd(PCI_ROOT_DEVFN(REENT_SLOT, 0),
				PCI_INTERRUPT_LINE, 1),
			  11);
	mmio_wr32(REENT_BAR, 4);
	ck_assert_uint_eq(atomic_load(&r.calls), 1);
	gate_cleanup();
}
END_TEST

START_TEST(test_bar_handler_ejects_own_function)
{
	struct reent r;
	pthread_t t;

	/* An eject register in the function's own BAR: the function leaves
	 * the root while its callback is still on the stack.  Its memory
	 * outlives the callback (freed at the next removal; ASan/valgrind
	 * check that nothing is touched after the free). */
	reent_add(&r, REENT_EJECT);
	ck_assert_int_eq(pthread_create(&t, NULL, reent_poke, NULL), 0);
	ck_assert_msg(join_within(t, 10), "self-eject deadlocked");
	ck_assert_int_eq(atomic_load(&r.ret), 0);
	ck_assert_ptr_null(pci_root_get_device(root, REENT_SLOT, 0));
	ck_assert(!on_bus(mmio, REENT_BAR));
	ck_assert_uint_eq(mmio_rd32(REENT_BAR), 0xffffffffu);
	/* A later removal outside any dispatch frees the function. */
	ck_assert_int_eq(pci_root_remove_device(root, 2, 0), 0);
	devb = NULL;
	/* The slot is free again. */
	reent_add(&r, REENT_CFG_WRITE);
	mmio_wr32(REENT_BAR, 3);
	ck_assert_uint_eq(atomic_load(&r.calls), 1);
}
END_TEST

struct ejector {
	uint8_t slot;
	atomic_int ret;
};

static void eject_write(void *opaque, uint64_t off, const void *data,
			unsigned size)
{
	struct ejector *e = opaque;

	(void)off;
	(void)data;
	(void)size;
	atomic_store(&e->ret, pci_root_remove_device(root, e->slot, 0));
}

static const struct io_bus_ops eject_ops = {.write = eject_write};

struct io_reader {
	uint16_t port;
	atomic_bool stop;
	atomic_uint bad;
	atomic_uint hits;
};

static void io_fake_read(void *opaque, unsigned bar, uint64_t off, void *data,
			 unsigned len)
{
	(void)opaque;
	(void)bar;
	(void)off;
	memset(data, 0x5a, len);
}

static const struct pci_device_ops io_fake_ops = {.bar_read = io_fake_read};

static void *io_reader_thread(void *arg)
{
	struct io_reader *r = arg;

	while (!atomic_load(&r->stop)) {
		uint32_t v = 0;

		io_bus_read(pio, r->port, &v, 4);
		if (v == 0x5a5a5a5au)
			atomic_fetch_add(&r->hits, 1);
		else if (v != 0xffffffffu)
			atomic_fetch_add(&r->bad, 1);
	}
	return NULL;
}

START_TEST(test_eject_from_pio_dispatch_races_bar)
{
	struct ejector ej = {.slot = 1};
	struct io_reader rd = {.port = 0x7000};
	pthread_t t[2];
	uint8_t one = 1;

	/* A VMM's hot-unplug register on the I/O-port bus removes a function
	 * whose I/O BAR other vCPUs keep reading.  The removal cannot wait
	 * for the I/O bus it runs on; the function must not be freed while
	 * a lookup on that bus may still hold it. */
	ck_assert_int_eq(pci_root_remove_device(root, 1, 0), 0);
	deva = NULL;
	ck_assert_int_eq(io_bus_register(pio, 0x600, 1, &eject_ops, &ej), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, io_reader_thread, &rd), 0);
	for (unsigned round = 0; round < 40; round++) {
		struct pci_device_info info = {.vendor_id = 1, .device_id = 2};
		struct pci_device *d;
		unsigned h = atomic_load(&rd.hits);

		ck_assert_int_eq(
			pci_device_create(&info, &io_fake_ops, NULL, &d), 0);
		ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_IO,
						    false, 16),
				 0);
		ck_assert_int_eq(pci_device_set_bar_address(d, 0, rd.port), 0);
		ck_assert_int_eq(pci_root_add_device(root, d, 1, 0), 0);
		enable(DEVA, PCI_COMMAND_IO);
		for (unsigned n = 0;
		     atomic_load(&rd.hits) < h + 20 && n < 20000; n++)
			nap_us(50);
		atomic_store(&ej.ret, 1);
		ck_assert_int_eq(io_bus_write(pio, 0x600, &one, 1), 0);
		ck_assert_int_eq(atomic_load(&ej.ret), 0);
		ck_assert_ptr_null(pci_root_get_device(root, 1, 0));
	}
	atomic_store(&rd.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(atomic_load(&rd.bad), 0);
	ck_assert_uint_gt(atomic_load(&rd.hits), 0);
	ck_assert_int_eq(io_bus_unregister(pio, 0x600), 0);
}
END_TEST

START_TEST(test_bar_handler_recursion_bounded)
{
	struct reent r;
	uint32_t v = 0;

	/* A device that re-enters its own BAR from its callback: bounded
	 * nesting, no stack overflow. */
	reent_add(&r, REENT_RECURSE);
	ck_assert_int_eq(pci_device_bar_read(r.dev, 0, 0, &v, 4), 0);
	ck_assert_uint_ge(atomic_load(&r.max_depth), 2);
	ck_assert_uint_le(atomic_load(&r.max_depth), 64);
	ck_assert_uint_eq(atomic_load(&r.depth), 0);
	/* Still usable afterwards. */
	r.mode = REENT_CFG_WRITE;
	mmio_wr32(REENT_BAR, 9);
	ck_assert_uint_eq(atomic_load(&r.calls), 1);
}
END_TEST

START_TEST(test_root_add_added_device_to_busy_slot)
{
	/* Adding a function that is already in the root to an occupied slot
	 * must not free it (it is in use at its own slot). */
	ck_assert_int_eq(pci_root_add_device(root, deva, 2, 0), -EEXIST);
	ck_assert_int_eq(pci_root_add_device(root, deva, 3, 0), -EEXIST);
	ck_assert_ptr_eq(pci_root_get_device(root, 1, 0), deva);
	ck_assert_uint_eq(m1_rd(DEVA, PCI_VENDOR_ID, 2), 0x1af4);
	ck_assert_uint_eq(m1_rd(DEVB, PCI_VENDOR_ID, 2), 0x8086);
}
END_TEST

START_TEST(test_remove_deasserts_intx)
{
	/* Hot-unplug of a function holding its level-triggered INTx high:
	 * the line must drop, or the guest sees a stuck interrupt. */
	ck_assert_int_eq(pci_device_set_intx(deva, true), 0);
	ck_assert(intx.level);
	ck_assert_int_eq(pci_root_remove_device(root, 1, 0), 0);
	deva = NULL;
	ck_assert(!intx.level);
	ck_assert_uint_eq(intx.deasserts, 1);
}
END_TEST

START_TEST(test_bar_mem64_over_4g_halves)
{
	struct pci_device_info info = {.vendor_id = 0x1234, .device_id = 7};
	uint8_t devfn = PCI_ROOT_DEVFN(7, 0);
	struct pci_device *d;
	uint64_t base, len;

	/* An 8 GiB BAR: the low dword has no writable address bits, a move
	 * is a write of the high dword alone, and Linux's sizing (each half
	 * separately, here with decode left on) must neither wrap nor leave
	 * the BAR on the bus at a bogus place. */
	ck_assert_int_eq(pci_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_int_eq(pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM64, true,
					    8ull << 30),
			 0);
	ck_assert_int_eq(pci_device_set_bar_address(d, 0, 0x400000000ull), 0);
	ck_assert_int_eq(pci_root_add_device(root, d, 7, 0), 0);
	enable(devfn, PCI_COMMAND_MEMORY);
	ck_assert_int_eq(io_bus_find(mmio, 0x500000000ull, &base, &len), 0);
	ck_assert_uint_eq(base, 0x400000000ull);
	ck_assert_uint_eq(len, 8ull << 30);
	/* Low half: nothing writable but the flags read back. */
	m1_wr(devfn, PCI_BASE_ADDRESS_0, 4, 0xffffffffu);
	ck_assert_uint_eq(m1_rd(devfn, PCI_BASE_ADDRESS_0, 4), 0xcu);
	ck_assert(on_bus(mmio, 0x400000000ull));
	/* High half: size mask, then the BAR is at 0xfffffffe00000000 whose
	 * last byte is 2^64 - 1: off the bus. */
	m1_wr(devfn, PCI_BASE_ADDRESS_1, 4, 0xffffffffu);
	ck_assert_uint_eq(m1_rd(devfn, PCI_BASE_ADDRESS_1, 4), 0xfffffffeu);
	ck_assert(!bar_mapped(d, 0));
	ck_assert_int_eq(io_bus_find(mmio, 0xfffffffe00000000ull, NULL, NULL),
			 -ENOENT);
	/* Restoring or moving the high half alone maps it again. */
	m1_wr(devfn, PCI_BASE_ADDRESS_1, 4, 0x6);
	ck_assert(bar_mapped(d, 0));
	ck_assert_uint_eq(bar_addr(d, 0), 0x600000000ull);
	ck_assert(on_bus(mmio, 0x600000000ull + (8ull << 30) - 1));
	ck_assert(!on_bus(mmio, 0x400000000ull));
}
END_TEST

START_TEST(test_decode_enabled_before_add)
{
	struct pci_device_info info = {.vendor_id = 0x1234, .device_id = 8};
	struct pci_device *d;
	uint32_t v = 0;

	/* A VMM that enables decoding before adding the function (firmware
	 * style): once added, the BAR really is on the root's bus. */
	ck_assert_int_eq(pci_device_create(&info, &fake_ops, fa, &d), 0);
	ck_assert_int_eq(
		pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false, 0x1000), 0);
	ck_assert_int_eq(pci_device_set_bar_address(d, 0, 0xd9000000u), 0);
	ck_assert_int_eq(pci_device_config_write(d, PCI_COMMAND, 2,
						 PCI_COMMAND_MEMORY),
			 0);
	ck_assert_int_eq(pci_root_add_device(root, d, 8, 0), 0);
	ck_assert(bar_mapped(d, 0));
	ck_assert(on_bus(mmio, 0xd9000000u));
	memset(fa->mem[0], 0x42, 4);
	ck_assert_int_eq(io_bus_read(mmio, 0xd9000000u, &v, 4), 0);
	ck_assert_uint_eq(v, 0x42424242u);
	/* And it leaves the bus normally. */
	ck_assert_int_eq(pci_root_remove_device(root, 8, 0), 0);
	ck_assert(!on_bus(mmio, 0xd9000000u));
}
END_TEST

static Suite *pci_suite(void)
{
	Suite *s = suite_create("pci");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_host_bridge_identity);
	tcase_add_test(tc, test_device_identity);
	tcase_add_test(tc, test_absent_function_all_ones);
	tcase_add_test(tc, test_cf8_readback_masks_reserved);
	tcase_add_test(tc, test_cf8_only_dword_access);
	tcase_add_test(tc, test_cf8_enable_bit_clear);
	tcase_add_test(tc, test_cfc_byte_and_word_offsets);
	tcase_add_test(tc, test_cfc_access_crossing_dword);
	tcase_add_test(tc, test_other_bus_all_ones);
	tcase_add_test(tc, test_ecam_decode);
	tcase_add_test(tc, test_ecam_extended_config);
	tcase_add_test(tc, test_ecam_misaligned_and_wide);
	tcase_add_test(tc, test_config_read_past_end);
	tcase_add_test(tc, test_config_bad_lengths);
	tcase_add_test(tc, test_readonly_identity_registers);
	tcase_add_test(tc, test_command_writable_bits);
	tcase_add_test(tc, test_status_write_one_to_clear);
	tcase_add_test(tc, test_misc_rw_registers);
	tcase_add_test(tc, test_rom_bar_absent);
	tcase_add_test(tc, test_config_write_callback);
	tcase_add_test(tc, test_bar_type_flags);
	tcase_add_test(tc, test_bar_initial_placement);
	tcase_add_test(tc, test_bar_sizing_io);
	tcase_add_test(tc, test_bar_sizing_mem32);
	tcase_add_test(tc, test_bar_sizing_mem64);
	tcase_add_test(tc, test_bar_address_alignment_enforced);
	tcase_add_test(tc, test_bar_decode_follows_command);
	tcase_add_test(tc, test_bar_dispatch_through_bus);
	tcase_add_test(tc, test_bar_move_reregisters);
	tcase_add_test(tc, test_bar_sizing_while_decoding);
	tcase_add_test(tc, test_bar_overlap_refused);
	tcase_add_test(tc, test_bar_overlap_enable_order);
	tcase_add_test(tc, test_bar_wrap_refused);
	tcase_add_test(tc, test_bar_decode_off_blocks_dispatch);
	tcase_add_test(tc, test_bar_access_bounds);
	tcase_add_test(tc, test_add_bar_errors);
	tcase_add_test(tc, test_config_write_inside_bus_dispatch);
	tcase_add_test(tc, test_bar_remap_callback);
	tcase_add_test(tc, test_bar_move_races_dispatch);
	tcase_add_test(tc, test_remove_device_races_dispatch);
	tcase_add_test(tc, test_capability_list);
	tcase_add_test(tc, test_capability_writable_mask);
	tcase_add_test(tc, test_capability_space_exhausted);
	tcase_add_test(tc, test_capability_loop_bounded);
	tcase_add_test(tc, test_ext_capability_list);
	tcase_add_test(tc, test_ext_capability_space_and_loop);
	tcase_add_test(tc, test_msix_capability_layout);
	tcase_add_test(tc, test_msix_table_read_write);
	tcase_add_test(tc, test_msix_table_qword_access);
	tcase_add_test(tc, test_msix_table_bad_width);
	tcase_add_test(tc, test_msix_table_bounded);
	tcase_add_test(tc, test_msix_delivery);
	tcase_add_test(tc, test_msix_masked_vector_pending);
	tcase_add_test(tc, test_msix_function_mask);
	tcase_add_test(tc, test_msix_disabled_or_no_master);
	tcase_add_test(tc, test_msix_update_callback);
	tcase_add_test(tc, test_msix_notify_races_mask);
	tcase_add_test(tc, test_msix_pba_read_only);
	tcase_add_test(tc, test_msix_disables_intx);
	tcase_add_test(tc, test_msix_add_errors);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_msi_capability_layout);
	tcase_add_test(tc, test_msi_delivery);
	tcase_add_test(tc, test_msi_mask_and_pending);
	tcase_add_test(tc, test_msi_add_errors_and_intx);
	tcase_add_test(tc, test_intx_level_and_status);
	tcase_add_test(tc, test_intx_disable_bit);
	tcase_add_test(tc, test_intx_without_pin);
	tcase_add_test(tc, test_intx_line_swap);
	tcase_add_test(tc, test_root_add_errors);
	tcase_add_test(tc, test_root_remove_device);
	tcase_add_test(tc, test_root_without_room_or_allocator);
	tcase_add_test(tc, test_create_errors);
	tcase_add_test(tc, test_multifunction_header);
	tcase_add_test(tc, test_linux_like_probe);
	tcase_add_test(tc, test_bar_handler_disables_own_decode);
	tcase_add_test(tc, test_bar_handler_config_write_vs_decode_toggle);
	tcase_add_test(tc, test_bar_claim_refused_retried_by_next_write);
	tcase_add_test(tc, test_bar_claim_refused_host_write_waits_and_maps);
	tcase_add_test(tc, test_bar_handler_ejects_own_function);
	tcase_add_test(tc, test_eject_from_pio_dispatch_races_bar);
	tcase_add_test(tc, test_bar_handler_recursion_bounded);
	tcase_add_test(tc, test_root_add_added_device_to_busy_slot);
	tcase_add_test(tc, test_remove_deasserts_intx);
	tcase_add_test(tc, test_bar_mem64_over_4g_halves);
	tcase_add_test(tc, test_decode_enabled_before_add);
	tcase_add_test(tc, test_msi_vector_update_and_notifier);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(pci_suite(), false);
}
