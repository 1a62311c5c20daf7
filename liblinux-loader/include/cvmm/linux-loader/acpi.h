/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file acpi.h
 * liblinux-loader ACPI room: the tables a hardware-reduced x86 guest needs,
 * written into guest memory in one call: RSDP (revision 2) -> XSDT ->
 * FADT (revision 6, HW_REDUCED_ACPI, sleep control/status registers) ->
 * DSDT (AML generated here: \_S5, the PCI host bridge with its _CRS
 * windows and _PRT, the ECAM as motherboard resources, an optional COM1),
 * MADT (local APIC per CPU, IOAPIC, interrupt
 * source overrides, LINT1 NMI) and MCFG (ECAM).
 *
 * Poweroff: the guest writes (s5_type << 2) | (1 << 5) (SLP_TYPx for S5 and
 * SLP_EN) to the sleep control register, one byte; the VMM watches that
 * address (I/O port or MMIO, as configured) and ends the VM.
 *
 * No state, no threads; errors are negative errno values.
 */
#ifndef CVMM_LINUX_LOADER_ACPI_H
#define CVMM_LINUX_LOADER_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/linux-loader.h>
#include <cvmm/vm-memory.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Generic address structure address spaces. */
enum {
	ACPI_GAS_MEMORY = 0,
	ACPI_GAS_IO = 1,
};

/** struct acpi_gas - a register: address 0 means "absent". */
struct acpi_gas {
	uint8_t space;	   /**< ACPI_GAS_MEMORY or ACPI_GAS_IO */
	uint8_t bit_width; /**< 0 = 8 */
	uint64_t address;
};

/** Value the guest writes to the sleep control register for S5 with the
 *  default s5_type: (5 << 2) | SLP_EN. */
#define ACPI_SLEEP_CONTROL_S5 0x34u
/** The SLP_EN bit of the sleep control register. */
#define ACPI_SLP_EN	      (1u << 5)

/**
 * struct acpi_tables_config - NULL or zero fields mean the documented
 * defaults (NULL: one CPU, no PCI, no COM1, no sleep registers).
 */
struct acpi_tables_config {
	/** Where the tables go, RSDP first: 0 = 0xe0000 (the legacy RSDP
	 *  scan area); 16-byte aligned, below 4 GiB. */
	uint64_t addr;
	/** Bytes available from @addr: 0 = 0x20000. */
	uint64_t max_size;
	/** CPUs: 1..254 (0 = 1), APIC ids 0..n-1. */
	unsigned int num_cpus;
	/** IOAPIC: address (0 = 0xfec00000); its id is num_cpus. */
	uint32_t ioapic_addr;
	/** SCI interrupt: 0 = none (hardware-reduced guests need none). */
	uint8_t sci_irq;
	/** Keep ISA IRQ 0 on GSI 0: no IRQ0 -> GSI2 override. */
	bool no_irq0_override;
	/** FADT IAPC_BOOT_ARCH: 0 = LEGACY_DEVICES | 8042 (0x0003), so the
	 *  guest probes the i8042 used for reboot. */
	uint16_t iapc_boot_arch;
	/** Sleep control/status registers (absent when address is 0). */
	struct acpi_gas sleep_control;
	struct acpi_gas sleep_status;
	/** Reset register and value (absent when address is 0). */
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	/** SLP_TYP of \_S5 (0 = 5). */
	uint8_t s5_type;

	/** PCI host bridge (PNP0A08/PNP0A03) and MCFG when true. */
	bool pci;
	uint16_t pci_segment;
	uint8_t pci_bus_start;
	/** Buses from pci_bus_start, in _CRS and MCFG: 0 = up to bus 255;
	 *  pci_bus_start + pci_bus_count must not exceed 256.  Give the
	 *  number the VMM decodes: Linux probes every bus MCFG covers at
	 *  boot (32 config reads each). */
	uint16_t pci_bus_count;
	uint64_t ecam_base; /**< 0 = 0xe0000000; 1 MiB per bus */
	/** Bridge windows; size 0 = no window.  I/O must end <= 0x10000,
	 *  mmio32 <= 4 GiB. */
	uint64_t io_base, io_size;
	uint64_t mmio32_base, mmio32_size;
	uint64_t mmio64_base, mmio64_size;

	/** PCI INTx routing for the host bridge's _PRT (with @pci): one
	 *  entry per slot and pin in use, at most 128, slot <= 31, pin <=
	 *  3; the GSI is taken as level, active low (flags are not used). */
	const struct boot_pci_irq *pci_irqs;
	size_t n_pci_irqs;

	/** A COM1 device (PNP0501, I/O 0x3f8-0x3ff, IRQ 4). */
	bool com1;
};

/**
 * acpi_tables_setup() - build and write RSDP, XSDT, FADT, DSDT, MADT and,
 * with @cfg->pci, MCFG.  Checksums set.  The VMM should list
 * [@addr, @addr + size) as reserved in e820 (the default range lies in
 * BOOT_LOW_RESERVED_START..END) and pass @rsdp to boot_params_setup() or
 * boot_pvh_setup().
 * @m: guest memory.
 * @cfg: see struct acpi_tables_config (may be NULL).
 * @rsdp: receives the RSDP address (may be NULL).
 * @size_out: receives the bytes used (may be NULL).
 *
 * Errors: -EINVAL (NULL @m, bad CPU count, unaligned address,
 * inconsistent bus range or window, bad PCI interrupt entry), -ENOSPC (tables larger than
 * max_size), -ERANGE (not in RAM), -ENOMEM, write errors.
 */
CVMM_EXPORT int acpi_tables_setup(const struct guest_memory *m,
				  const struct acpi_tables_config *cfg,
				  uint64_t *rsdp, uint64_t *size_out);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_LINUX_LOADER_ACPI_H */
