/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: random sequences of config mechanism #1 and ECAM reads
 * and writes of random widths (plus BAR, MSI-X table/PBA and interrupt
 * traffic) against a PCI root with a host bridge and three functions (I/O,
 * 32-bit and 64-bit BARs, two MSI-X tables, extended config space),
 * registered on real I/O-port and MMIO buses.
 *
 * Invariants checked after every operation:
 *   - read-only identity registers (ids, class, header type, pin, MSI-X
 *     table size and BIR/offset) never change;
 *   - BAR registers keep their type bits and are aligned to their size;
 *   - a BAR is on its bus exactly when the framework says it decodes, at
 *     the address in its registers, for its size; decoding BARs never
 *     overlap each other or the config windows; decode implies the
 *     command register's enable bit;
 *   - the buses hold nothing else;
 *   - INTx is asserted exactly when level && !Interrupt Disable && !MSI-X;
 *   - reserved command bits read 0;
 *   - a hot-unplugged function (removed by the host, or ejecting itself
 *     from its own BAR callback) no longer holds its INTx line.
 * Function 00:02.1's BAR callback also writes its own command register
 * (re-entrancy: a config write that stops decoding from inside a BAR
 * callback must neither deadlock nor leave state inconsistent).
 */
#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/pci.h>
#include <cvmm/vm-allocator.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ECAM_BASE 0xe0000000ull
#define NDEV	  4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

static uint8_t dev_mem[NDEV][PCI_STD_NUM_BARS][64];

static void fz_bar_read(void *opaque, unsigned bar, uint64_t off, void *data,
			unsigned len)
{
	uint8_t *m = dev_mem[(uintptr_t)opaque][bar];

	for (unsigned i = 0; i < len; i++)
		((uint8_t *)data)[i] = m[(off + i) % 64];
}

static struct pci_root *fz_root;
static bool dev3_ejected;

static void fz_bar_write(void *opaque, unsigned bar, uint64_t off,
			 const void *data, unsigned len)
{
	uint8_t *m = dev_mem[(uintptr_t)opaque][bar];
	const uint8_t *d = data;

	for (unsigned i = 0; i < len; i++)
		m[(off + i) % 64] = d[i];
	/* Function 00:02.1 has two registers at offset 48 of each BAR that
	 * re-enter the PCI framework from its BAR callback: 0xee ejects the
	 * function, anything else is written to its command register. */
	if ((uintptr_t)opaque != 3 || off % 64 != 48 || len < 2 || dev3_ejected)
		return;
	if (d[0] == 0xee) {
		if (pci_root_remove_device(fz_root, 2, 1))
			abort();
		dev3_ejected = true;
	} else {
		pci_root_config_write(fz_root, 0, PCI_ROOT_DEVFN(2, 1),
				      PCI_COMMAND, 2,
				      (uint32_t)d[0] | (uint32_t)d[1] << 8);
	}
}

static const struct pci_device_ops fz_ops = {
	.bar_read = fz_bar_read,
	.bar_write = fz_bar_write,
};

struct fdev {
	struct pci_device *d;
	uint8_t devfn;
	uint32_t id[4]; /* dwords 0x00, 0x08, 0x2c, 0x3c & 0xff00 */
	int msix_cap;
	uint32_t msix_ro[3];
	bool level;
};

static struct {
	struct io_bus *pio, *mmio;
	struct address_allocator *a32, *a64, *aio;
	struct pci_root *root;
	struct fdev dev[NDEV];
	unsigned msi_count;
	bool line[NDEV];
} S;

static int fz_msi(void *opaque, uint64_t address, uint32_t data)
{
	(void)opaque;
	(void)address;
	(void)data;
	S.msi_count++;
	return 0;
}

static int fz_line(void *opaque, bool level)
{
	S.line[(uintptr_t)opaque] = level;
	return 0;
}

static uint32_t cfg_rd(uint8_t devfn, uint32_t off, unsigned len)
{
	uint32_t v = 0;

	if (pci_root_config_read(S.root, 0, devfn, off, len, &v))
		abort();
	return v;
}

static void snapshot(struct fdev *f)
{
	f->id[0] = cfg_rd(f->devfn, 0x00, 4);
	f->id[1] = cfg_rd(f->devfn, 0x08, 4);
	f->id[2] = cfg_rd(f->devfn, 0x2c, 4);
	f->id[3] = cfg_rd(f->devfn, 0x3c, 4) & 0xff00u;
	f->msix_cap = pci_device_find_capability(f->d, PCI_CAP_ID_MSIX);
	if (f->msix_cap < 0) {
		/* MSI: id, next and the read-only control bits. */
		f->msix_cap = pci_device_find_capability(f->d, PCI_CAP_ID_MSI);
		if (f->msix_cap > 0) {
			f->msix_ro[0] =
				cfg_rd(f->devfn, (uint32_t)f->msix_cap, 4) &
				0xff8effffu;
			f->msix_ro[1] = 0;
			f->msix_ro[2] = 0;
			return;
		}
	}
	if (f->msix_cap > 0) {
		f->msix_ro[0] = cfg_rd(f->devfn, (uint32_t)f->msix_cap, 4) &
				0x07ffffffu;
		f->msix_ro[1] = cfg_rd(f->devfn, (uint32_t)f->msix_cap + 4, 4);
		f->msix_ro[2] = cfg_rd(f->devfn, (uint32_t)f->msix_cap + 8, 4);
	}
}

/* Function 00:02.1: 64-bit 1 MiB, I/O 256 and tiny prefetchable BARs.
 * Used at setup and when the fuzzer hot-unplugs and re-plugs it. */
static int add_dev3(void)
{
	struct pci_device_info info = {.vendor_id = 0x8086,
				       .device_id = 0x5678,
				       .class_code = 0x030000,
				       .interrupt_pin = 3};
	struct msi_sink sink = {.send = fz_msi};
	struct irq_line line = {.set = fz_line, .opaque = (void *)(uintptr_t)3};
	struct pci_device *d;

	if (pci_device_create(&info, &fz_ops, (void *)(uintptr_t)3, &d))
		return -1;
	pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM64, false, 1u << 20);
	pci_device_add_bar(d, 4, PCI_BAR_KIND_IO, false, 256);
	pci_device_add_bar(d, 5, PCI_BAR_KIND_MEM32, true, 16);
	pci_device_add_msi(d, 8, true, true);
	pci_device_set_msi_sink(d, &sink);
	pci_device_set_intx_line(d, &line);
	S.line[3] = false;
	if (pci_root_add_device(S.root, d, 2, 1)) {
		pci_device_destroy(d); /* still ours on error */
		return -1;
	}
	S.dev[3].d = d;
	S.dev[3].level = false;
	return 0;
}

static int setup(void)
{
	struct pci_root_config rc = {0};
	struct pci_device_info info[NDEV] = {
		{.vendor_id = 0x1af4,
		 .device_id = 0x1041,
		 .class_code = 0x020000,
		 .interrupt_pin = 1},
		{.vendor_id = 0x8086,
		 .device_id = 0x1234,
		 .class_code = 0x010000,
		 .flags = PCI_DEVICE_EXTENDED_CONFIG | PCI_DEVICE_MULTIFUNCTION,
		 .interrupt_pin = 2},
		{.vendor_id = 0x8086,
		 .device_id = 0x5678,
		 .class_code = 0x030000,
		 .interrupt_pin = 3},
	};
	struct msi_sink sink = {.send = fz_msi};
	uint8_t slots[NDEV][2] = {{0, 0}, {1, 0}, {2, 0}, {2, 1}};

	if (io_bus_create(&S.pio) || io_bus_create(&S.mmio) ||
	    address_allocator_create(0xc0000000u, 0xdfffffffu, &S.a32) ||
	    address_allocator_create(1ull << 36, (1ull << 37) - 1, &S.a64) ||
	    address_allocator_create(0xc000, 0xffff, &S.aio))
		return -1;
	rc.mem32 = S.a32;
	rc.mem64 = S.a64;
	rc.io = S.aio;
	rc.pio_bus = S.pio;
	rc.mmio_bus = S.mmio;
	dev3_ejected = false;
	if (pci_root_create(&rc, &S.root) ||
	    pci_root_register_pio(S.root, S.pio) ||
	    pci_root_register_ecam(S.root, S.mmio, ECAM_BASE))
		return -1;
	fz_root = S.root;
	S.dev[0].d = pci_root_get_device(S.root, 0, 0);
	for (unsigned i = 1; i < NDEV - 1; i++) {
		struct pci_device *d;
		struct irq_line line = {.set = fz_line,
					.opaque = (void *)(uintptr_t)i};

		if (pci_device_create(&info[i - 1], &fz_ops,
				      (void *)(uintptr_t)i, &d))
			return -1;
		switch (i) {
		case 1:
			pci_device_add_bar(d, 0, PCI_BAR_KIND_IO, false, 32);
			pci_device_add_bar(d, 1, PCI_BAR_KIND_MEM32, false,
					   0x1000);
			pci_device_add_bar(d, 2, PCI_BAR_KIND_MEM64, true,
					   0x4000);
			pci_device_add_msix(d, 8, 2, 0, 2, 0x1000);
			break;
		case 2: {
			static const uint8_t body[8] = {1, 2, 3, 4};
			static const uint8_t wm[8] = {0xff, 0x0f, 0,	0,
						      0xff, 0xff, 0xff, 0xff};
			uint8_t cap[12] = {0x09, 0, 12};
			uint8_t cwm[12] = {0, 0, 0, 0xff, 0xff, 0xff};

			pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false,
					   0x1000);
			pci_device_add_capability(d, cap, sizeof(cap), cwm,
						  NULL);
			pci_device_add_msix(d, 100, 0, 0, 0, 0x800);
			pci_device_add_ext_capability(d, 0x000b, 1, body,
						      sizeof(body), wm, NULL);
			pci_device_add_ext_capability(d, 0x0023, 1, body,
						      sizeof(body), wm, NULL);
			break;
		}
		default:
			break;
		}
		pci_device_set_msi_sink(d, &sink);
		pci_device_set_intx_line(d, &line);
		if (pci_root_add_device(S.root, d, slots[i][0], slots[i][1])) {
			pci_device_destroy(d); /* still ours on error */
			return -1;
		}
		S.dev[i].d = d;
	}
	if (add_dev3())
		return -1;
	for (unsigned i = 0; i < NDEV; i++) {
		S.dev[i].devfn = PCI_ROOT_DEVFN(slots[i][0], slots[i][1]);
		snapshot(&S.dev[i]);
	}
	return 0;
}

static void teardown(void)
{
	io_bus_unregister(S.pio, PCI_CONFIG_ADDRESS_PORT);
	io_bus_unregister(S.mmio, ECAM_BASE);
	pci_root_destroy(S.root);
	if (io_bus_count(S.pio) || io_bus_count(S.mmio) ||
	    address_allocator_count(S.a32) || address_allocator_count(S.a64) ||
	    address_allocator_count(S.aio))
		abort();
	io_bus_destroy(S.pio);
	io_bus_destroy(S.mmio);
	address_allocator_destroy(S.a32);
	address_allocator_destroy(S.a64);
	address_allocator_destroy(S.aio);
	memset(&S, 0, sizeof(S));
}

struct range {
	uint64_t a, last;
	bool io;
};

static void check(void)
{
	struct range r[NDEV * PCI_STD_NUM_BARS];
	unsigned nr = 0, nio = 0, nmem = 0;

	for (unsigned i = 0; i < NDEV; i++) {
		struct fdev *f = &S.dev[i];
		struct fdev now = *f;
		uint16_t cmd = (uint16_t)cfg_rd(f->devfn, PCI_COMMAND, 2);

		snapshot(&now);
		if (i == 2 &&
		    (pci_device_find_ext_capability(f->d, 0x23) != 0x10c ||
		     pci_device_find_capability(f->d, 0x09) != 0x40))
			abort();
		if (memcmp(now.id, f->id, sizeof(f->id)) ||
		    now.msix_cap != f->msix_cap ||
		    memcmp(now.msix_ro, f->msix_ro, sizeof(f->msix_ro)))
			abort();
		if (cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
			    PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
			    PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE))
			abort();
		for (unsigned b = 0; b < PCI_STD_NUM_BARS; b++) {
			uint64_t addr, sz, base, len;
			bool mapped;
			uint32_t raw = cfg_rd(f->devfn, 0x10 + 4 * b, 4);
			bool io = raw & 1;
			struct io_bus *bus = io ? S.pio : S.mmio;

			if (pci_device_bar_info(f->d, b, &addr, &sz, &mapped))
				abort();
			if (!sz) {
				if (mapped)
					abort();
				continue;
			}
			if (addr & (sz - 1))
				abort();
			if (mapped) {
				if (!(cmd & (io ? PCI_COMMAND_IO
						: PCI_COMMAND_MEMORY)))
					abort();
				if (io_bus_find(bus, addr, &base, &len) ||
				    base != addr || len != sz)
					abort();
				r[nr].a = addr;
				r[nr].last = addr + sz - 1;
				r[nr].io = io;
				if (r[nr].last < addr)
					abort();
				nr++;
				if (io)
					nio++;
				else
					nmem++;
			}
		}
		if (i > 0) {
			int msix = pci_device_msix_enabled(f->d);
			int msi = pci_device_msi_enabled(f->d);
			bool dis = cmd & PCI_COMMAND_INTX_DISABLE;
			bool want = f->level && !dis && msix != 1 && msi == 0;

			if (msi < 0 || msi > 8 || (msi & (msi - 1)))
				abort();

			if (pci_device_intx_asserted(f->d) != (int)want ||
			    S.line[i] != want)
				abort();
		}
	}
	for (unsigned i = 0; i < nr; i++) {
		for (unsigned j = i + 1; j < nr; j++)
			if (r[i].io == r[j].io && r[i].a <= r[j].last &&
			    r[j].a <= r[i].last)
				abort();
		if (r[i].io && r[i].a <= PCI_CONFIG_ADDRESS_PORT + 7 &&
		    PCI_CONFIG_ADDRESS_PORT <= r[i].last)
			abort();
		if (!r[i].io && r[i].a <= ECAM_BASE + PCI_ECAM_BUS_SIZE - 1 &&
		    ECAM_BASE <= r[i].last)
			abort();
	}
	if (io_bus_count(S.pio) != 1 + nio || io_bus_count(S.mmio) != 1 + nmem)
		abort();
}

static const unsigned widths[4] = {1, 2, 4, 8};

/* An interesting address for a BAR register write. */
static uint32_t bar_value(struct in *in)
{
	static const uint32_t pick[] = {
		0xffffffffu, 0,		  0xc0000000u, 0xc0001000u,
		0xe0000000u, 0xe00ff000u, 0xfffff000u, 0xc000,
		0xcf8,	     0xfff0,	  0x10,	       0x80000000u,
	};
	uint8_t k = (uint8_t)take(in, 1);

	if (k < 2 * (sizeof(pick) / sizeof(pick[0])))
		return pick[k / 2] | (k & 1 ? 0 : (uint32_t)take(in, 1));
	return (uint32_t)take(in, 4);
}

static void one_op(struct in *in)
{
	uint8_t op = (uint8_t)take(in, 1);
	struct fdev *f = &S.dev[(op >> 4) % NDEV];
	uint8_t buf[8];
	unsigned w = widths[take(in, 1) & 3];
	uint64_t v;

	switch (op & 15) {
	case 0: /* mechanism #1 address */
		v = take(in, 4);
		if (v & 1)
			v = 0x80000000u | (uint32_t)f->devfn << 8 | (v & 0xfcu);
		memcpy(buf, &v, 4);
		io_bus_write(S.pio, PCI_CONFIG_ADDRESS_PORT, buf, 4);
		break;
	case 1: /* any port in 0xcf8..0xcff, any width */
		v = take(in, 1);
		if (v & 0x80) {
			memset(buf, (int)take(in, 1), sizeof(buf));
			io_bus_write(S.pio, 0xcf8 + (v & 7), buf, w);
		} else {
			io_bus_read(S.pio, 0xcf8 + (v & 7), buf, w);
		}
		break;
	case 2: /* mechanism #1 data write to a register of @f */
	case 3: {
		uint32_t reg = (uint32_t)take(in, 1);
		uint32_t a = 0x80000000u | (uint32_t)f->devfn << 8 |
			     (reg & 0xfcu);

		memcpy(buf, &a, 4);
		io_bus_write(S.pio, PCI_CONFIG_ADDRESS_PORT, buf, 4);
		v = (reg >= 0x10 && reg < 0x28 && (op & 1)) ? bar_value(in)
							    : take(in, 4);
		memcpy(buf, &v, 4);
		w = widths[reg & 1 ? 0 : (take(in, 1) % 3)];
		io_bus_write(S.pio, 0xcfc + (reg & 3), buf, w);
		break;
	}
	case 4: /* ECAM read */
		v = take(in, 3) & 0xfffffu;
		io_bus_read(S.mmio, ECAM_BASE + v, buf, w);
		break;
	case 5: /* ECAM write to @f */
	case 6: {
		uint32_t reg = (uint32_t)take(in, 2) & 0xfffu;

		v = ((op & 15) == 6 && reg >= 0x10 && reg < 0x28)
			    ? bar_value(in)
			    : take(in, 8);
		memcpy(buf, &v, 8);
		io_bus_write(S.mmio,
			     ECAM_BASE + ((uint64_t)f->devfn << 12) + reg, buf,
			     w);
		break;
	}
	case 7: /* command register */
		v = take(in, 2);
		pci_root_config_write(S.root, 0, f->devfn, PCI_COMMAND, 2,
				      (uint32_t)v);
		break;
	case 8: /* BAR access through the bus */
	case 9: {
		unsigned b = take(in, 1) % PCI_STD_NUM_BARS;
		uint64_t addr, sz;
		bool mapped, io;

		pci_device_bar_info(f->d, b, &addr, &sz, &mapped);
		io = cfg_rd(f->devfn, 0x10 + 4 * b, 4) & 1;
		v = take(in, 2);
		if (sz)
			v %= sz + 8;
		memset(buf, (int)take(in, 1), sizeof(buf));
		if ((op & 15) == 8)
			io_bus_read(io ? S.pio : S.mmio, addr + v, buf, w);
		else
			io_bus_write(io ? S.pio : S.mmio, addr + v, buf, w);
		break;
	}
	case 10: /* direct BAR access, any offset */
		v = take(in, 8);
		pci_device_bar_read(f->d, take(in, 1) % 8, v, buf, w);
		break;
	case 11:
		v = take(in, 1);
		if (f == &S.dev[3]) {
			int r = pci_device_msi_notify(f->d, (unsigned)v % 40);

			if (r > 0 &&
			    !(cfg_rd(f->devfn, 0x40 + PCI_MSI_PENDING_64, 4) &
			      (1u << (v % 40))))
				abort();
		} else {
			pci_device_msix_notify(f->d, (uint16_t)v);
		}
		break;
	case 12:
		f->level = take(in, 1) & 1;
		if (pci_device_set_intx(f->d, f->level) && f - S.dev > 0)
			abort();
		if (f == S.dev)
			f->level = false;
		break;
	case 13:
		if (f == &S.dev[3] && (take(in, 1) & 1)) {
			/* Hot-unplug and re-plug: BARs leave the buses, the
			 * allocations come back, the new function is clean. */
			if (pci_root_remove_device(S.root, 2, 1) || S.line[3] ||
			    cfg_rd(f->devfn, 0, 4) != 0xffffffffu || add_dev3())
				abort();
			break;
		}
		pci_device_reset(f->d);
		f->level = false;
		break;
	case 14: { /* MSI-X table write of @f (BAR 2 of dev 1, BAR 0 of 2) */
		uint64_t addr, sz;
		bool mapped;

		pci_device_bar_info(f->d, f - S.dev == 1 ? 2 : 0, &addr, &sz,
				    &mapped);
		v = take(in, 2) & 0x1fffu;
		memset(buf, (int)take(in, 1) & 0x81, sizeof(buf));
		io_bus_write(S.mmio, addr + v, buf, w);
		break;
	}
	default: /* config read of any width and offset */
		v = take(in, 2);
		pci_root_ecam_read(S.root, v, buf, w);
		break;
	}
	if (dev3_ejected) {
		/* Ejected from its own BAR callback: gone from the root, its
		 * INTx line dropped; plug a fresh one in. */
		if (pci_root_get_device(S.root, 2, 1) || S.line[3] ||
		    cfg_rd(S.dev[3].devfn, 0, 4) != 0xffffffffu || add_dev3())
			abort();
		dev3_ejected = false;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	unsigned ops = 0;

	if (setup())
		abort();
	while (in.n && ops++ < 4096) {
		one_op(&in);
		check();
	}
	teardown();
	return 0;
}
