/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* ACPI tables: RSDP, XSDT, FADT (hardware-reduced), DSDT, MADT, MCFG. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/linux-loader/acpi.h>

#include "aml.h"
#include "internal.h"

#define HDR_LEN	      36u
#define RSDP_LEN      36u
#define FADT_LEN      276u
#define MADT_MAX_CPUS 254u
#define MAX_PCI_IRQS  128u

#define FADT_F_PWR_BUTTON    (1u << 4)
#define FADT_F_SLP_BUTTON    (1u << 5)
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED    (1u << 20)

#define DEFAULT_ADDR	 0xe0000ull
#define DEFAULT_MAX	 0x20000ull
#define DEFAULT_ECAM	 0xe0000000ull
#define DEFAULT_BOOTARCH 0x0003u
#define DEFAULT_S5	 5u

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	ll_put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "CVMM  ", 6);
	memcpy(t + 16, "CVMMLDR ", 8);
	ll_put32(t + 24, 1);
	memcpy(t + 28, "CVMM", 4);
	ll_put32(t + 32, 1);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = ll_checksum(t, len);
}

static void gas(uint8_t *p, const struct acpi_gas *g)
{
	if (!g->address)
		return;
	p[0] = g->space;
	p[1] = g->bit_width ? g->bit_width : 8;
	p[2] = 0;
	p[3] = 1; /* byte access */
	ll_put64(p + 4, g->address);
}

/* The last PCI bus of the host bridge (check_config() bounded the sum). */
static uint8_t pci_bus_last(const struct acpi_tables_config *c)
{
	if (!c->pci_bus_count)
		return 255;
	return (uint8_t)(c->pci_bus_start + c->pci_bus_count - 1);
}

static int build_dsdt(const struct acpi_tables_config *c, struct aml *a)
{
	uint8_t s5 = c->s5_type ? c->s5_type : DEFAULT_S5;
	size_t sb, dev, pkg;
	uint8_t hdr[HDR_LEN] = {0};

	aml_bytes(a, hdr, sizeof(hdr));

	aml_name(a, "_S5_");
	pkg = aml_package_open(a, 4);
	aml_integer(a, s5);
	aml_integer(a, s5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_close(a, pkg);

	sb = aml_scope_open(a, "\\_SB_");
	if (c->pci) {
		uint8_t bend = pci_bus_last(c);
		struct aml r = {0};

		aml_res_word_bus(&r, c->pci_bus_start, bend);
		aml_res_io(&r, 0xcf8, 8);
		if (c->io_size)
			aml_res_word_io(
				&r, (uint16_t)c->io_base,
				(uint16_t)(c->io_base + c->io_size - 1));
		if (c->mmio32_size)
			aml_res_dword_mem(&r, (uint32_t)c->mmio32_base,
					  (uint32_t)(c->mmio32_base +
						     c->mmio32_size - 1));
		if (c->mmio64_size)
			aml_res_qword_mem(&r, false, c->mmio64_base,
					  c->mmio64_base + c->mmio64_size - 1);
		aml_res_end(&r);

		dev = aml_device_open(a, "PCI0");
		aml_name(a, "_HID");
		aml_eisaid(a, "PNP0A08");
		aml_name(a, "_CID");
		aml_eisaid(a, "PNP0A03");
		aml_name(a, "_UID");
		aml_integer(a, 0);
		aml_name(a, "_SEG");
		aml_integer(a, c->pci_segment);
		aml_name(a, "_BBN");
		aml_integer(a, c->pci_bus_start);
		aml_name(a, "_CRS");
		aml_buffer(a, r.buf, r.len);
		if (c->n_pci_irqs) {
			size_t prt;

			aml_name(a, "_PRT");
			prt = aml_package_open(a, (uint8_t)c->n_pci_irqs);
			for (size_t i = 0; i < c->n_pci_irqs; i++) {
				const struct boot_pci_irq *q = &c->pci_irqs[i];
				size_t e = aml_package_open(a, 4);

				/* Address (device, any function), pin,
				 * source 0: the index is a GSI. */
				aml_integer(a,
					    (uint64_t)q->slot << 16 | 0xffff);
				aml_integer(a, q->pin);
				aml_integer(a, 0);
				aml_integer(a, q->gsi);
				aml_close(a, e);
			}
			aml_close(a, prt);
		}
		aml_close(a, dev);
		a->oom |= r.oom;
		aml_free(&r);

		/* The ECAM area as motherboard resources, so the guest
		 * trusts MCFG. */
		uint64_t ecam = c->ecam_base ? c->ecam_base : DEFAULT_ECAM;
		r = (struct aml){0};
		aml_res_qword_mem(&r, true,
				  ecam + ((uint64_t)c->pci_bus_start << 20),
				  ecam + (((uint64_t)bend + 1) << 20) - 1);
		aml_res_end(&r);
		dev = aml_device_open(a, "MBRD");
		aml_name(a, "_HID");
		aml_eisaid(a, "PNP0C02");
		aml_name(a, "_UID");
		aml_integer(a, 0);
		aml_name(a, "_CRS");
		aml_buffer(a, r.buf, r.len);
		aml_close(a, dev);
		a->oom |= r.oom;
		aml_free(&r);
	}
	if (c->com1) {
		struct aml r = {0};

		aml_res_io(&r, 0x3f8, 8);
		aml_res_irq(&r, 4);
		aml_res_end(&r);
		dev = aml_device_open(a, "COM1");
		aml_name(a, "_HID");
		aml_eisaid(a, "PNP0501");
		aml_name(a, "_UID");
		aml_integer(a, 1);
		aml_name(a, "_CRS");
		aml_buffer(a, r.buf, r.len);
		aml_close(a, dev);
		a->oom |= r.oom;
		aml_free(&r);
	}
	aml_close(a, sb);
	if (a->oom)
		return -ENOMEM;
	if (a->len > UINT32_MAX)
		return -ENOSPC;
	header(a->buf, "DSDT", (uint32_t)a->len, 2);
	finish(a->buf, (uint32_t)a->len);
	return 0;
}

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~7ull;
}

static int check_config(const struct acpi_tables_config *c)
{
	uint64_t e;

	if (c->num_cpus > MADT_MAX_CPUS)
		return -EINVAL;
	if (!c->pci)
		return 0;
	if (c->n_pci_irqs > MAX_PCI_IRQS || (c->n_pci_irqs && !c->pci_irqs))
		return -EINVAL;
	for (size_t i = 0; i < c->n_pci_irqs; i++)
		if (c->pci_irqs[i].slot > 31 || c->pci_irqs[i].pin > 3)
			return -EINVAL;
	if (c->pci_bus_start + (unsigned)c->pci_bus_count > 256)
		return -EINVAL;
	if (c->io_size && (!ll_add(c->io_base, c->io_size, &e) || e > 0x10000))
		return -EINVAL;
	if (c->mmio32_size &&
	    (!ll_add(c->mmio32_base, c->mmio32_size, &e) || e > LL_4G))
		return -EINVAL;
	if (c->mmio64_size && !ll_add(c->mmio64_base, c->mmio64_size - 1, &e))
		return -EINVAL;
	if (c->ecam_base % (1u << 20) || c->ecam_base >= (1ull << 52))
		return -EINVAL;
	return 0;
}

int acpi_tables_setup(const struct guest_memory *m,
		      const struct acpi_tables_config *c, uint64_t *rsdp,
		      uint64_t *size_out)
{
	uint64_t base, max, o_xsdt, o_fadt, o_dsdt, o_madt, o_mcfg, total;
	uint32_t xsdt_len, madt_len, mcfg_len = 0, nx;
	struct aml dsdt = {0};
	uint8_t *buf, *t;
	int err;

	static const struct acpi_tables_config none;
	unsigned int ncpu;

	if (!m)
		return -EINVAL;
	if (!c)
		c = &none;
	err = check_config(c);
	if (err)
		return err;
	ncpu = c->num_cpus ? c->num_cpus : 1;
	base = c->addr ? c->addr : DEFAULT_ADDR;
	max = c->max_size ? c->max_size : DEFAULT_MAX;
	if (base % 16 || base >= LL_4G)
		return -EINVAL;

	err = build_dsdt(c, &dsdt);
	if (err) {
		aml_free(&dsdt);
		return err;
	}
	nx = c->pci ? 3 : 2;
	xsdt_len = HDR_LEN + 8 * nx;
	madt_len = HDR_LEN + 8 + 8 * ncpu + 12 + 6 +
		   (c->no_irq0_override ? 0 : 10) + (c->sci_irq ? 10 : 0);
	if (c->pci)
		mcfg_len = HDR_LEN + 8 + 16;
	o_xsdt = align8(RSDP_LEN);
	o_fadt = align8(o_xsdt + xsdt_len);
	o_dsdt = align8(o_fadt + FADT_LEN);
	o_madt = align8(o_dsdt + dsdt.len);
	o_mcfg = align8(o_madt + madt_len);
	total = o_mcfg + mcfg_len;
	if (total > max) {
		aml_free(&dsdt);
		return -ENOSPC;
	}
	if (ll_in_ram(m, base, total) || base + total > LL_4G) {
		aml_free(&dsdt);
		return -ERANGE;
	}
	buf = calloc(1, total);
	if (!buf) {
		aml_free(&dsdt);
		return -ENOMEM;
	}

	/* DSDT */
	memcpy(buf + o_dsdt, dsdt.buf, dsdt.len);
	aml_free(&dsdt);

	/* FADT */
	t = buf + o_fadt;
	header(t, "FACP", FADT_LEN, 6);
	ll_put32(t + 40, (uint32_t)(base + o_dsdt));
	ll_put16(t + 46, c->sci_irq);
	ll_put32(t + 112,
		 FADT_F_HW_REDUCED | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
			 (c->reset_reg.address ? FADT_F_RESET_REG_SUP : 0));
	ll_put16(t + 109,
		 c->iapc_boot_arch ? c->iapc_boot_arch : DEFAULT_BOOTARCH);
	gas(t + 116, &c->reset_reg);
	t[128] = c->reset_value;
	t[131] = 5; /* FADT minor version: ACPI 6.5 */
	ll_put64(t + 140, base + o_dsdt);
	gas(t + 244, &c->sleep_control);
	gas(t + 256, &c->sleep_status);
	memcpy(t + 268, "CVMMCVMM", 8);
	finish(t, FADT_LEN);

	/* MADT */
	t = buf + o_madt;
	header(t, "APIC", madt_len, 5);
	ll_put32(t + 36, BOOT_LAPIC_ADDR);
	ll_put32(t + 40, 1); /* PCAT_COMPAT */
	{
		uint8_t *q = t + 44;

		for (unsigned int i = 0; i < ncpu; i++) {
			q[0] = 0;
			q[1] = 8;
			q[2] = (uint8_t)i;
			q[3] = (uint8_t)i;
			ll_put32(q + 4, 1);
			q += 8;
		}
		q[0] = 1;
		q[1] = 12;
		q[2] = (uint8_t)ncpu;
		ll_put32(q + 4,
			 c->ioapic_addr ? c->ioapic_addr : BOOT_IOAPIC_ADDR);
		ll_put32(q + 8, 0);
		q += 12;
		if (!c->no_irq0_override) {
			q[0] = 2;
			q[1] = 10;
			q[2] = 0;
			q[3] = 0;
			ll_put32(q + 4, 2);
			ll_put16(q + 8, 0);
			q += 10;
		}
		if (c->sci_irq) {
			q[0] = 2;
			q[1] = 10;
			q[2] = 0;
			q[3] = c->sci_irq;
			ll_put32(q + 4, c->sci_irq);
			ll_put16(q + 8, 0x000d); /* level, active high */
			q += 10;
		}
		q[0] = 4; /* local APIC NMI: all CPUs, LINT1 */
		q[1] = 6;
		q[2] = 0xff;
		ll_put16(q + 3, 0);
		q[5] = 1;
	}
	finish(t, madt_len);

	/* MCFG */
	if (c->pci) {
		uint8_t bend = pci_bus_last(c);

		t = buf + o_mcfg;
		header(t, "MCFG", mcfg_len, 1);
		ll_put64(t + 44, c->ecam_base ? c->ecam_base : DEFAULT_ECAM);
		ll_put16(t + 52, c->pci_segment);
		t[54] = c->pci_bus_start;
		t[55] = bend;
		finish(t, mcfg_len);
	}

	/* XSDT */
	t = buf + o_xsdt;
	header(t, "XSDT", xsdt_len, 1);
	ll_put64(t + 36, base + o_fadt);
	ll_put64(t + 44, base + o_madt);
	if (c->pci)
		ll_put64(t + 52, base + o_mcfg);
	finish(t, xsdt_len);

	/* RSDP */
	t = buf;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, "CVMM  ", 6);
	t[15] = 2;
	ll_put32(t + 20, RSDP_LEN);
	ll_put64(t + 24, base + o_xsdt);
	t[8] = ll_checksum(t, 20);
	t[32] = ll_checksum(t, RSDP_LEN);

	err = guest_memory_write(m, base, buf, total);
	free(buf);
	if (err)
		return err;
	if (rsdp)
		*rsdp = base;
	if (size_out)
		*size_out = total;
	return 0;
}
