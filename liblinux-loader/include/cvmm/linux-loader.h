/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file linux-loader.h
 * liblinux-loader: load a Linux kernel (bzImage or ELF vmlinux with a PVH
 * note) into guest memory and build the x86 boot structures: zero page,
 * e820, command line, initrd placement, MP table, PVH start info, the boot
 * vCPU state (GDT, identity page tables, registers), CPUID normalisation,
 * boot MSRs and LAPIC LINT setup.  ACPI tables are in
 * <cvmm/linux-loader/acpi.h>.
 *
 * The library does not call KVM.  It writes into a struct guest_memory
 * (libvm-memory) and returns plain data (the uapi struct kvm_regs,
 * kvm_sregs, kvm_cpuid_entry2, kvm_msr_entry, kvm_lapic_state) that the VMM
 * hands to KVM itself.
 *
 * Order of calls for a bzImage on N vCPUs (addresses default to the
 * BOOT_*_ADDR constants below):
 *
 *     linux_loader_load()            kernel into RAM, struct linux_loader_kernel
 *     linux_loader_load_initrd()     initrd at the highest fitting address
 *     boot_cmdline_create()/add()    the command line
 *     boot_e820_build()              RAM minus holes and reserved ranges
 *     acpi_tables_setup()            (acpi.h) RSDP..MCFG; or boot_mptable_setup()
 *     boot_params_setup()            zero page + command line in RAM
 *     boot_vcpu_setup_long_mode()    GDT + page tables, regs/sregs of vCPU 0
 *     per vCPU: boot_cpuid_normalize(), boot_msrs_fill(), boot_lapic_setup_lint()
 *
 * For an ELF vmlinux (PVH) use boot_pvh_setup() and boot_vcpu_setup_pvh()
 * instead of boot_params_setup() and boot_vcpu_setup_long_mode().
 *
 * Every input (the image, the configuration) is treated as hostile: sizes
 * are checked against the file and guest RAM with overflow-safe sums and no
 * loop runs a number of times taken from the image without a fixed bound.
 *
 * Errors are negative errno values; nothing is printed.  Functions keep no
 * global state and may be called from any thread; calls that write the same
 * guest memory must not race with each other or with a running guest.
 */
#ifndef CVMM_LINUX_LOADER_H
#define CVMM_LINUX_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>
#include <linux/kvm.h>

#include <cvmm/vm-memory.h>

#include <cvmm/linux-loader-version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------- default layout */

/** Default guest addresses of the boot structures (all below 1 MiB). */
#define BOOT_GDT_ADDR		 0x500ull
#define BOOT_PVH_START_INFO_ADDR 0x6000ull
#define BOOT_ZERO_PAGE_ADDR	 0x7000ull
#define BOOT_PML4_ADDR		 0x9000ull
#define BOOT_PDPT_ADDR		 0xa000ull
#define BOOT_PD_ADDR		 0xb000ull /**< 4 pages with 2 MiB pages */
#define BOOT_STACK_ADDR		 0x8ff0ull /**< initial RSP / ESP */
#define BOOT_CMDLINE_ADDR	 0x20000ull
#define BOOT_MPTABLE_ADDR	 0x9fc00ull /**< start of a 1 KiB EBDA */
#define BOOT_ACPI_ADDR		 0xe0000ull /**< RSDP scan area */
/** The low range the VMM should list as reserved in e820: EBDA, VGA
 *  hole and BIOS area (MP table and ACPI tables live here). */
#define BOOT_LOW_RESERVED_START	 0x9fc00ull
#define BOOT_LOW_RESERVED_END	 0x100000ull
/** Default LAPIC and IOAPIC MMIO addresses. */
#define BOOT_LAPIC_ADDR		 0xfee00000u
#define BOOT_IOAPIC_ADDR	 0xfec00000u

/* ------------------------------------------------------------ kernel load */

/** What kind of image linux_loader_load() found. */
enum linux_loader_kind {
	/** bzImage, entered through its 64-bit entry (load address + 0x200)
	 *  with boot_params_setup() and boot_vcpu_setup_long_mode(). */
	LINUX_LOADER_BZIMAGE = 1,
	/** ELF vmlinux, entered through its PVH note in 32-bit protected
	 *  mode with boot_pvh_setup() and boot_vcpu_setup_pvh(). */
	LINUX_LOADER_ELF_PVH = 2,
};

/**
 * struct linux_loader_config - where to load.  NULL or all-zero means the
 * defaults.
 */
struct linux_loader_config {
	/** bzImage: load address of the protected-mode kernel.  0 = the
	 *  image's pref_address (protocol >= 2.10), else 1 MiB.  Another
	 *  address needs a relocatable kernel and kernel_alignment.  Not
	 *  used for ELF (segments go to their p_paddr). */
	guest_addr_t load_addr;
};

/**
 * struct linux_loader_kernel - what was loaded; plain data, no ownership.
 * Filled by linux_loader_load() and read by the boot_* functions.
 */
struct linux_loader_kernel {
	enum linux_loader_kind kind;
	/** First byte the kernel occupies in RAM. */
	guest_addr_t start;
	/** One past the last byte the kernel needs: for a bzImage the load
	 *  address plus max(payload, init_size); for ELF the end of the
	 *  highest PT_LOAD segment (p_memsz). */
	guest_addr_t end;
	/** Entry point: bzImage 64-bit entry (start + 0x200); ELF the PVH
	 *  32-bit entry (XEN_ELFNOTE_PHYS32_ENTRY). */
	guest_addr_t entry;
	/** Highest address (inclusive) the initrd may occupy. */
	guest_addr_t initrd_addr_max;
	/** Longest command line the kernel accepts, without the NUL. */
	uint32_t cmdline_max;
	/** bzImage: the setup header as read from the image (bytes past the
	 *  header's own end, from the jump at 0x200, are zero).  ELF: zero. */
	struct setup_header hdr;
};

/**
 * linux_loader_parse_bzimage() - validate a bzImage without loading it.
 * @image, @size: the whole file.
 * @cfg: load address choice (may be NULL).
 * @out: receives kind, start, end, entry, initrd_addr_max, cmdline_max, hdr.
 *
 * Checks: the file holds a setup header, "HdrS", boot protocol >= 2.06
 * (older: -ENOTSUP), LOADED_HIGH, XLF_KERNEL_64 (so in practice protocol
 * >= 2.12; missing: -ENOTSUP), setup_sects (0 means 4) and syssize against
 * the file size (-EINVAL when they lie), the load address (relocatable and
 * kernel_alignment, else exactly the preferred address: -EINVAL).
 * Errors: -EINVAL (NULL argument or inconsistent header), -ENOEXEC (no
 * boot sector signature or no "HdrS"), -ENOTSUP, -EOVERFLOW (addresses
 * wrap).  On error *@out is unspecified.
 */
CVMM_EXPORT int
linux_loader_parse_bzimage(const void *image, size_t size,
			   const struct linux_loader_config *cfg,
			   struct linux_loader_kernel *out);

/**
 * linux_loader_parse_elf() - validate an ELF vmlinux without loading it.
 * @image, @size: the whole file.  @out as for linux_loader_parse_bzimage().
 *
 * Checks: 64-bit little-endian x86-64 ELF, program headers (at most 64)
 * inside the file, every PT_LOAD's file range inside the file, p_filesz <=
 * p_memsz, no segment wrapping 2^64 or overlapping another, and the PVH
 * note (XEN_ELFNOTE_PHYS32_ENTRY, "Xen", type 18) with a 4- or 8-byte
 * value below 4 GiB in a PT_NOTE segment.
 * Errors: -EINVAL (NULL argument, lying header or segment, bad note size),
 * -ENOEXEC (not an x86-64 ELF executable), -ENOTSUP (no PVH note: the
 * 64-bit ELF entry is not supported), -EOVERFLOW.
 */
CVMM_EXPORT int linux_loader_parse_elf(const void *image, size_t size,
				       struct linux_loader_kernel *out);

/**
 * linux_loader_load() - detect, validate and copy a kernel into guest RAM.
 * @m: guest memory to write into.
 * @image, @size: the whole kernel file (bzImage or ELF vmlinux); only read.
 * @cfg: may be NULL (defaults).
 * @out: receives the description of the loaded kernel.
 *
 * A bzImage's protected-mode part (syssize * 16 bytes) goes to its load
 * address, and the whole [start, end) range including init_size must be
 * RAM (the kernel clears what it needs beyond its payload).  ELF PT_LOAD
 * segments go to p_paddr, their p_memsz - p_filesz tail zeroed.
 * Errors: those of the parse functions, and -ERANGE when the kernel
 * does not fit in guest RAM (checked for every segment before anything is
 * written), or a libvm-memory error (-EPERM read-only region).
 */
CVMM_EXPORT int linux_loader_load(const struct guest_memory *m,
				  const void *image, size_t size,
				  const struct linux_loader_config *cfg,
				  struct linux_loader_kernel *out);

/**
 * struct boot_range - a guest physical range [start, start + size).
 */
struct boot_range {
	guest_addr_t start;
	uint64_t size;
};

/**
 * linux_loader_load_initrd() - place an initrd at the highest page-aligned
 * address that is RAM, ends at or below the kernel's initrd_addr_max (and
 * below 4 GiB), stays clear of the kernel, of the first 1 MiB (where the
 * zero page, command line and tables live) and of the @avoid ranges.
 * @m, @k: guest memory and the loaded kernel.
 * @avoid, @n_avoid: more ranges to keep clear (at most 64; may be NULL/0).
 * @data, @size: the initrd (size > 0).
 * @addr: receives where it was written.
 *
 * Errors: -EINVAL (NULL argument, zero size, too many ranges), -ENOSPC (no
 * place fits), or a libvm-memory write error.
 */
CVMM_EXPORT int linux_loader_load_initrd(const struct guest_memory *m,
					 const struct linux_loader_kernel *k,
					 const struct boot_range *avoid,
					 size_t n_avoid, const void *data,
					 size_t size, guest_addr_t *addr);

/* ------------------------------------------------------------------- e820 */

/** E820 entry types: the values of <asm/e820.h>'s E820_RAM ... (checked
 *  at build time), named here because that header is not in every uapi
 *  set. */
enum {
	BOOT_E820_RAM = 1,
	BOOT_E820_RESERVED = 2,
	BOOT_E820_ACPI = 3,
	BOOT_E820_NVS = 4,
};

/** Most entries an e820 map holds in the zero page. */
#define BOOT_E820_MAX E820_MAX_ENTRIES_ZEROPAGE

/**
 * boot_e820_build() - the e820 map of @m: every RAM region as RAM (adjacent
 * regions merged; gaps such as the 32-bit PCI hole are simply absent), the
 * @reserved ranges as RESERVED, cutting the RAM they overlap.  Sorted by
 * address, no overlaps.
 * @reserved, @n_reserved: at most 64 ranges (may be NULL/0); sizes > 0,
 * no wrap.
 * @out, @cap: the caller's array (struct boot_e820_entry from
 * <asm/bootparam.h>).
 * @n_out: receives the number of entries written.
 *
 * Errors: -EINVAL (NULL argument, bad range, more than 64 ranges), -ENOSPC
 * (more than @cap entries needed).
 */
CVMM_EXPORT int boot_e820_build(const struct guest_memory *m,
				const struct boot_range *reserved,
				size_t n_reserved, struct boot_e820_entry *out,
				size_t cap, size_t *n_out);

/* ----------------------------------------------------------- command line */

/**
 * struct boot_cmdline - a kernel command line being built, owned by its
 * creator.  Not thread-safe: one thread at a time per object.
 */
struct boot_cmdline;

/**
 * boot_cmdline_create() - an empty command line of at most @capacity bytes
 * (without the NUL); pass the kernel's cmdline_max.
 * Errors: -EINVAL (NULL @out, @capacity 0 or above 1 MiB), -ENOMEM.
 */
CVMM_EXPORT int boot_cmdline_create(size_t capacity, struct boot_cmdline **out);

/** boot_cmdline_destroy() - free @c; NULL is accepted. */
CVMM_EXPORT void boot_cmdline_destroy(struct boot_cmdline *c);

/**
 * boot_cmdline_add() - append "key" or "key=value", space-separated.
 * @key: non-empty; letters, digits and "_-.,:/@[]" only (no "=", spaces,
 * quotes or control characters).
 * @value: NULL for a bare flag; else printable ASCII without spaces,
 * quotes or backslashes (may be empty: "key=").
 *
 * Errors: -EINVAL (NULL @c or @key, invalid character), -ENOSPC (it would
 * not fit the capacity).  On error the line is unchanged.
 */
CVMM_EXPORT int boot_cmdline_add(struct boot_cmdline *c, const char *key,
				 const char *value);

/**
 * boot_cmdline_add_raw() - append a user-written fragment (e.g. the VMM's
 * --cmdline).  Printable ASCII and spaces; double quotes must balance so
 * that nothing after it can be swallowed into a quoted value.
 * Errors: -EINVAL (NULL, control character, non-ASCII, unbalanced quote),
 * -ENOSPC.  On error the line is unchanged.
 */
CVMM_EXPORT int boot_cmdline_add_raw(struct boot_cmdline *c, const char *text);

/** boot_cmdline_str() - the line so far, NUL-terminated; owned by @c,
 *  valid until the next change.  "" for NULL. */
CVMM_EXPORT const char *boot_cmdline_str(const struct boot_cmdline *c);

/** boot_cmdline_len() - its length without the NUL (0 for NULL). */
CVMM_EXPORT size_t boot_cmdline_len(const struct boot_cmdline *c);

/* ------------------------------------------------------ zero page and PVH */

/**
 * struct boot_config - what boot_params_setup() and boot_pvh_setup() put
 * in guest memory.  NULL or all-zero: defaults.
 */
struct boot_config {
	/** Zero page (bzImage) or hvm_start_info + memmap + module list
	 *  (PVH).  0 = BOOT_ZERO_PAGE_ADDR / BOOT_PVH_START_INFO_ADDR. */
	guest_addr_t params_addr;
	/** Command line address.  0 = BOOT_CMDLINE_ADDR. */
	guest_addr_t cmdline_addr;
	/** NUL-terminated command line (NULL = empty), at most the
	 *  kernel's cmdline_max bytes. */
	const char *cmdline;
	/** Initrd already in RAM (linux_loader_load_initrd()); size 0 =
	 *  none. */
	guest_addr_t initrd_addr;
	uint64_t initrd_size;
	/** e820 map (boot_e820_build()); NULL/0 = the RAM of @m alone. */
	const struct boot_e820_entry *e820;
	size_t e820_entries;
	/** ACPI RSDP address (acpi_tables_setup()); 0 = none. */
	guest_addr_t acpi_rsdp;
};

/**
 * boot_params_setup() - write the zero page (struct boot_params) and the
 * command line for a bzImage: setup header copied from the image,
 * type_of_loader 0xff, CAN_USE_HEAP, cmd_line_ptr, ramdisk, e820 table,
 * acpi_rsdp_addr (protocol >= 2.14); the image's own values of ramdisk,
 * setup_data and hardware_subarch fields are not passed on (zero).
 * @m: guest memory; @k: a bzImage from linux_loader_load(); @cfg may be NULL.
 *
 * Checked: zero page (4 KiB), command line and initrd lie in RAM below
 * 4 GiB and do not overlap each other or the kernel; the initrd ends at or
 * below initrd_addr_max; the command line fits cmdline_max; e820 has at
 * most BOOT_E820_MAX entries.
 * Errors: -EINVAL (NULL @m/@k, @k not a bzImage, overlap, too many e820
 * entries, initrd too high), -E2BIG (command line too long), -ERANGE (a
 * range outside RAM), or a write error.
 */
CVMM_EXPORT int boot_params_setup(const struct guest_memory *m,
				  const struct linux_loader_kernel *k,
				  const struct boot_config *cfg);

/** PVH start_info magic and version (Xen public ABI, hvm/start_info.h). */
#define BOOT_PVH_START_MAGIC   0x336ec578u
#define BOOT_PVH_START_VERSION 1u

/** struct boot_pvh_start_info - hvm_start_info of the PVH boot ABI. */
struct boot_pvh_start_info {
	uint32_t magic;		 /**< BOOT_PVH_START_MAGIC */
	uint32_t version;	 /**< 1: memmap fields valid */
	uint32_t flags;		 /**< SIF_xxx, 0 */
	uint32_t nr_modules;	 /**< 1 with an initrd, else 0 */
	uint64_t modlist_paddr;	 /**< array of boot_pvh_module */
	uint64_t cmdline_paddr;	 /**< NUL-terminated command line */
	uint64_t rsdp_paddr;	 /**< ACPI RSDP, 0 = none */
	uint64_t memmap_paddr;	 /**< array of boot_pvh_memmap_entry */
	uint32_t memmap_entries; /**< number of memmap entries */
	uint32_t reserved;	 /**< 0 */
};

/** struct boot_pvh_module - hvm_modlist_entry. */
struct boot_pvh_module {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

/** struct boot_pvh_memmap_entry - hvm_memmap_table_entry (e820 types). */
struct boot_pvh_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/**
 * boot_pvh_setup() - write the PVH hvm_start_info at params_addr, followed
 * by the memory map (from cfg->e820) and, with an initrd, one module entry;
 * and the command line.  Same checks and errors as boot_params_setup() (the
 * start info block is 4 KiB); @k must be LINUX_LOADER_ELF_PVH.
 */
CVMM_EXPORT int boot_pvh_setup(const struct guest_memory *m,
			       const struct linux_loader_kernel *k,
			       const struct boot_config *cfg);

/* -------------------------------------------------------------- MP table */

/** A PCI interrupt the MP table routes: device @slot's INTx @pin to IOAPIC
 *  input @gsi. */
struct boot_pci_irq {
	uint8_t slot; /**< PCI device number on bus 0, 0..31 */
	uint8_t pin;  /**< 0 = INTA ... 3 = INTD */
	uint8_t gsi;  /**< IOAPIC input */
	/** MP flags (polarity bits 1:0, trigger bits 3:2); 0 = PCI default
	 *  (active low, level: 0x0f).  BOOT_MP_IRQ_EDGE_HIGH = edge, high. */
	uint16_t flags;
};
#define BOOT_MP_IRQ_EDGE_HIGH 0x0005u

/**
 * struct boot_mptable_config - NULL or zero: 1 CPU, IOAPIC at
 * BOOT_IOAPIC_ADDR with id = num_cpus and 24 inputs, no PCI interrupts.
 */
struct boot_mptable_config {
	guest_addr_t addr;	  /**< 0 = BOOT_MPTABLE_ADDR (16-aligned) */
	unsigned int num_cpus;	  /**< 1..254, 0 = 1; APIC ids 0..n-1 */
	uint32_t ioapic_addr;	  /**< 0 = BOOT_IOAPIC_ADDR */
	unsigned int ioapic_pins; /**< 0 = 24; at most 240 */
	const struct boot_pci_irq *pci_irqs; /**< at most 128 */
	size_t n_pci_irqs;
	/** ISA IRQ 0 goes to IOAPIC input 2 (as the ACPI override says,
	 *  and the cascade IRQ 2 gets no entry) unless this is set, then
	 *  ISA IRQ n goes to input n for all 16. */
	bool irq0_to_pin0;
};

/**
 * boot_mptable_setup() - write an MP floating pointer and configuration
 * table (Intel MP spec 1.4): one processor entry per CPU (CPU 0 is the
 * BSP), buses PCI (id 0) and ISA (id 1), the IOAPIC, ISA IRQs 0-15 (see
 * irq0_to_pin0), one
 * interrupt entry per @pci_irqs element, LINT0 ExtINT and LINT1 NMI.
 * @size_out: receives the bytes written (may be NULL).
 *
 * Errors: -EINVAL (NULL @m, bad counts, slot/pin/gsi out of range,
 * unaligned address), -ERANGE (does not fit RAM), write errors.
 */
CVMM_EXPORT int boot_mptable_setup(const struct guest_memory *m,
				   const struct boot_mptable_config *cfg,
				   uint64_t *size_out);

/* ------------------------------------------------------------ vCPU state */

/**
 * struct boot_vcpu_config - NULL or zero: GDT at BOOT_GDT_ADDR, page
 * tables at BOOT_PML4_ADDR.. with 2 MiB pages, stack at BOOT_STACK_ADDR.
 */
struct boot_vcpu_config {
	guest_addr_t gdt_addr;	/**< 0 = BOOT_GDT_ADDR */
	guest_addr_t pml4_addr; /**< 0 = BOOT_PML4_ADDR; PDPT and PDs follow
				     in the next 1 (1 GiB pages) or 5 pages,
				     page aligned */
	guest_addr_t stack;	/**< 0 = BOOT_STACK_ADDR */
	/** Map with 1 GiB pages (needs CPUID PDPE1GB in the guest). */
	bool gib_pages;
};

/**
 * boot_vcpu_setup_long_mode() - 64-bit boot state of the boot vCPU for a
 * bzImage: writes a GDT (0x10 flat 64-bit code, 0x18 flat data, 0x20 TSS)
 * and identity page tables for the low 4 GiB into @m, sets in @sregs the
 * segments, GDT/IDT, CR0 (PE|ET|NE|PG), CR3, CR4 (PAE), EFER (LME|LMA);
 * other @sregs fields (apic_base, interrupt bitmap ...) are kept, so pass
 * what KVM_GET_SREGS returned.  @regs is cleared, then RFLAGS = 2, RIP =
 * @k->entry, RSI = @zero_page, RSP = RBP = stack.
 * Errors: -EINVAL (NULL argument, @k not a bzImage, unaligned tables,
 * GDT or tables over the kernel), -ERANGE (tables outside RAM), write
 * errors.
 */
CVMM_EXPORT int boot_vcpu_setup_long_mode(const struct guest_memory *m,
					  const struct linux_loader_kernel *k,
					  guest_addr_t zero_page,
					  const struct boot_vcpu_config *cfg,
					  struct kvm_regs *regs,
					  struct kvm_sregs *sregs);

/**
 * boot_vcpu_setup_pvh() - PVH 32-bit boot state: GDT (0x10 flat 32-bit
 * code, 0x18 data, 0x20 TSS) in @m, protected mode flat with paging off
 * (CR0 = PE|ET, CR4 = 0, EFER = 0), RIP = @k->entry, RBX = @start_info,
 * RFLAGS = 2.  @sregs as for boot_vcpu_setup_long_mode(); page-table
 * fields of @cfg are not used.
 * Errors: -EINVAL (NULL argument, @k not PVH, GDT over the kernel),
 * -ERANGE, write errors.
 */
CVMM_EXPORT int boot_vcpu_setup_pvh(const struct guest_memory *m,
				    const struct linux_loader_kernel *k,
				    guest_addr_t start_info,
				    const struct boot_vcpu_config *cfg,
				    struct kvm_regs *regs,
				    struct kvm_sregs *sregs);

/** The KVM_CPUID_FEATURES (0x40000001) EAX bits boot_cpuid_normalize()
 *  sets: KVM_FEATURE_CLOCKSOURCE, _CLOCKSOURCE2 and
 *  _CLOCKSOURCE_STABLE_BIT, so the guest uses kvmclock. */
#define BOOT_KVM_CLOCK_FEATURES ((1u << 0) | (1u << 3) | (1u << 24))

/**
 * struct boot_cpuid_config - topology of one vCPU.  Topology: one
 * package, @num_cpus cores of one thread each.  NULL or zero: APIC id 0
 * of a 1-vCPU VM.
 */
struct boot_cpuid_config {
	uint32_t apic_id;      /**< this vCPU's (x2)APIC id, < 255 */
	unsigned int num_cpus; /**< vCPUs in the VM, 1..254 (0 = 1) */
	/** Set leaf 1 ECX[24], the TSC deadline timer: KVM's in-kernel
	 *  LAPIC emulates it (KVM_CAP_TSC_DEADLINE_TIMER) but
	 *  KVM_GET_SUPPORTED_CPUID leaves the bit clear.  Without it Linux
	 *  calibrates the LAPIC timer at boot and runs it one-shot. */
	bool tsc_deadline;
};

/**
 * boot_cpuid_normalize() - adjust a CPUID table (as KVM_GET_SUPPORTED_CPUID
 * returned it) for one vCPU, in place:
 *  - leaf 1: EBX[31:24] APIC id, EBX[23:16] logical count, EDX HTT when
 *    more than one vCPU, ECX bit 31 (hypervisor) set, ECX bit 24 (TSC
 *    deadline timer) with @cfg->tsc_deadline;
 *  - leaf 4: EAX[31:26] cores per package - 1, EAX[25:14] sharing (0 for
 *    L1/L2, all cores for L3);
 *  - leaves 0xB and 0x1F: x2APIC id in EDX, SMT level (1 thread) and core
 *    level (num_cpus), invalid level beyond;
 *  - leaf 0x80000008: ECX core count and APIC id size; 0x8000001E:
 *    extended APIC id, core id = APIC id, one thread per core, node 0;
 *  - 0x40000000: "KVMKVMKVM\0\0\0", EAX >= 0x40000001; 0x40000001: EAX
 *    gains BOOT_KVM_CLOCK_FEATURES.  Both are appended when missing.
 * @e, @n, @cap: the table, its entries, its capacity (>= @n).
 * @cfg: this vCPU (may be NULL).
 * @n_out: receives the new count.
 * Errors: -EINVAL (NULL @e or @n_out, @n > @cap, bad topology), -ENOSPC (no
 * room for the appended leaves; the table is then unchanged).
 */
CVMM_EXPORT int boot_cpuid_normalize(struct kvm_cpuid_entry2 *e, size_t n,
				     size_t cap,
				     const struct boot_cpuid_config *cfg,
				     size_t *n_out);

/** Number of entries boot_msrs_fill() writes. */
#define BOOT_MSRS_COUNT 11

/**
 * boot_msrs_fill() - the boot MSR values for KVM_SET_MSRS: IA32_SYSENTER_
 * CS/ESP/EIP, STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE and TSC zero,
 * IA32_MISC_ENABLE with fast strings, MTRRdefType enabled with type WB.
 * @e, @cap: room for at least BOOT_MSRS_COUNT entries.
 * Returns the number written, or -EINVAL (NULL) / -ENOSPC (too small).
 */
CVMM_EXPORT int boot_msrs_fill(struct kvm_msr_entry *e, size_t cap);

/**
 * boot_lapic_setup_lint() - in a LAPIC state from KVM_GET_LAPIC, set LVT
 * LINT0 to ExtINT and LINT1 to NMI delivery (other bits kept); pass the
 * result to KVM_SET_LAPIC.  Returns 0 or -EINVAL for NULL.
 */
CVMM_EXPORT int boot_lapic_setup_lint(struct kvm_lapic_state *s);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_LINUX_LOADER_H */
