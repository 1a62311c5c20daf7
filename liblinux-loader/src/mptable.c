/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* MP table (Intel MultiProcessor Specification 1.4). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MP_MAX_CPUS	254u
#define MP_MAX_PCI_IRQS 128u
#define MP_MAX_PINS	240u
#define MP_SPEC_REV	4u
#define MP_FPS_LEN	16u
#define MP_HDR_LEN	44u

enum {
	MP_PROC = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_INTSRC = 3,
	MP_LINTSRC = 4
};
enum {
	MP_INT = 0,
	MP_NMI = 1,
	MP_EXTINT = 3
};

#define MP_BUS_PCI	     0u
#define MP_BUS_ISA	     1u
#define MP_PCI_DEFAULT_FLAGS 0x000fu /* active low, level */

static uint8_t *put_intsrc(uint8_t *q, uint8_t type, uint8_t irqtype,
			   uint16_t flags, uint8_t bus, uint8_t busirq,
			   uint8_t dst, uint8_t pin)
{
	q[0] = type;
	q[1] = irqtype;
	ll_put16(q + 2, flags);
	q[4] = bus;
	q[5] = busirq;
	q[6] = dst;
	q[7] = pin;
	return q + 8;
}

int boot_mptable_setup(const struct guest_memory *m,
		       const struct boot_mptable_config *cfg,
		       uint64_t *size_out)
{
	static const struct boot_mptable_config none;
	unsigned int ncpu, pins;
	uint64_t addr, size;
	uint32_t ioapic;
	uint8_t ioapic_id, *buf, *q, *hdr;
	uint16_t count = 0;
	int err;

	if (!m)
		return -EINVAL;
	if (!cfg)
		cfg = &none;
	ncpu = cfg->num_cpus ? cfg->num_cpus : 1;
	pins = cfg->ioapic_pins ? cfg->ioapic_pins : 24;
	addr = cfg->addr ? cfg->addr : BOOT_MPTABLE_ADDR;
	ioapic = cfg->ioapic_addr ? cfg->ioapic_addr : BOOT_IOAPIC_ADDR;
	if (ncpu > MP_MAX_CPUS || pins < 16 || pins > MP_MAX_PINS ||
	    cfg->n_pci_irqs > MP_MAX_PCI_IRQS ||
	    (cfg->n_pci_irqs && !cfg->pci_irqs) || addr % 16 || addr >= LL_4G)
		return -EINVAL;
	for (size_t i = 0; i < cfg->n_pci_irqs; i++) {
		const struct boot_pci_irq *p = &cfg->pci_irqs[i];

		if (p->slot > 31 || p->pin > 3 || p->gsi >= pins)
			return -EINVAL;
	}
	ioapic_id = (uint8_t)ncpu;

	size = MP_FPS_LEN + MP_HDR_LEN + 20ull * ncpu + 8 * 2 + 8 +
	       8ull * (cfg->irq0_to_pin0 ? 16 : 15) + 8ull * cfg->n_pci_irqs +
	       8 * 2;
	if (ll_in_ram(m, addr, size))
		return -ERANGE;
	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;

	/* Floating pointer structure. */
	memcpy(buf, "_MP_", 4);
	ll_put32(buf + 4, (uint32_t)(addr + MP_FPS_LEN));
	buf[8] = 1; /* length in 16-byte units */
	buf[9] = MP_SPEC_REV;

	/* Configuration table header; entries follow. */
	hdr = buf + MP_FPS_LEN;
	memcpy(hdr, "PCMP", 4);
	hdr[6] = MP_SPEC_REV;
	memcpy(hdr + 8, "CVMM    ", 8);
	memcpy(hdr + 16, "LINUXLOADER ", 12);
	ll_put32(hdr + 36, BOOT_LAPIC_ADDR);
	q = hdr + MP_HDR_LEN;

	for (unsigned int i = 0; i < ncpu; i++) {
		q[0] = MP_PROC;
		q[1] = (uint8_t)i;	     /* local APIC id */
		q[2] = 0x14;		     /* local APIC version */
		q[3] = 1 | (i == 0 ? 2 : 0); /* enabled, BSP */
		ll_put32(q + 4, 0x600);	     /* family 6 */
		ll_put32(q + 8, 0x201);	     /* FPU, APIC */
		q += 20;
		count++;
	}
	q[0] = MP_BUS;
	q[1] = MP_BUS_PCI;
	memcpy(q + 2, "PCI   ", 6);
	q += 8;
	q[0] = MP_BUS;
	q[1] = MP_BUS_ISA;
	memcpy(q + 2, "ISA   ", 6);
	q += 8;
	q[0] = MP_IOAPIC;
	q[1] = ioapic_id;
	q[2] = 0x11; /* version */
	q[3] = 1;    /* enabled */
	ll_put32(q + 4, ioapic);
	q += 8;
	count += 3;
	for (unsigned int irq = 0; irq < 16; irq++) {
		uint8_t pin = (uint8_t)irq;

		/* With IRQ 0 on input 2, the cascade IRQ 2 has no input. */
		if (irq == 2 && !cfg->irq0_to_pin0)
			continue;
		if (irq == 0 && !cfg->irq0_to_pin0)
			pin = 2;
		q = put_intsrc(q, MP_INTSRC, MP_INT, 0, MP_BUS_ISA,
			       (uint8_t)irq, ioapic_id, pin);
		count++;
	}
	for (size_t i = 0; i < cfg->n_pci_irqs; i++) {
		const struct boot_pci_irq *p = &cfg->pci_irqs[i];

		q = put_intsrc(q, MP_INTSRC, MP_INT,
			       p->flags ? p->flags : MP_PCI_DEFAULT_FLAGS,
			       MP_BUS_PCI, (uint8_t)(p->slot << 2 | p->pin),
			       ioapic_id, p->gsi);
		count++;
	}
	q = put_intsrc(q, MP_LINTSRC, MP_EXTINT, 0, MP_BUS_ISA, 0, 0xff, 0);
	q = put_intsrc(q, MP_LINTSRC, MP_NMI, 0, MP_BUS_ISA, 0, 0xff, 1);
	count += 2;

	ll_put16(hdr + 4, (uint16_t)(q - hdr));
	ll_put16(hdr + 34, count);
	hdr[7] = ll_checksum(hdr, (size_t)(q - hdr));
	buf[10] = ll_checksum(buf, MP_FPS_LEN);

	err = guest_memory_write(m, addr, buf, size);
	free(buf);
	if (!err && size_out)
		*size_out = size;
	return err;
}
