/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Boot vCPU state: GDT, page tables, registers, CPUID, MSRs, LAPIC. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GDT_ENTRIES 5
#define SEL_CODE    2
#define SEL_DATA    3
#define SEL_TSS	    4

/* Descriptor flags: high nibble = G/DB/L/AVL, low byte = access byte. */
#define GDT_CODE64 0xa09bu
#define GDT_CODE32 0xc09bu
#define GDT_DATA   0xc093u
#define GDT_TSS	   0x008bu

#define CR0_PE	 (1ull << 0)
#define CR0_ET	 (1ull << 4)
#define CR0_NE	 (1ull << 5)
#define CR0_PG	 (1ull << 31)
#define CR4_PAE	 (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define PTE_P  1ull
#define PTE_RW 2ull
#define PTE_PS 0x80ull
#define PAGE   4096ull

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) |
	       ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0xffffu) |
	       ((uint64_t)(limit & 0xf0000u) << 32) |
	       ((uint64_t)(flags & 0xf0ffu) << 40);
}

static struct kvm_segment seg_from(uint16_t flags, uint32_t base,
				   uint32_t limit, unsigned int index)
{
	uint8_t access = (uint8_t)flags;
	struct kvm_segment s;

	memset(&s, 0, sizeof(s));
	s.base = base;
	s.g = (flags >> 15) & 1;
	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	s.selector = (uint16_t)(index * 8);
	s.type = access & 0xf;
	s.present = (access >> 7) & 1;
	s.dpl = (access >> 5) & 3;
	s.db = (flags >> 14) & 1;
	s.s = (access >> 4) & 1;
	s.l = (flags >> 13) & 1;
	s.avl = (flags >> 12) & 1;
	return s;
}

static int write_gdt(const struct guest_memory *m, guest_addr_t at,
		     uint16_t code, struct kvm_sregs *sregs)
{
	uint8_t gdt[GDT_ENTRIES * 8];
	uint64_t e[GDT_ENTRIES] = {
		0,
		0,
		gdt_entry(code, 0, 0xfffff),
		gdt_entry(GDT_DATA, 0, 0xfffff),
		gdt_entry(GDT_TSS, 0, 0x67),
	};
	struct kvm_segment data;
	int err;

	if (ll_in_ram(m, at, sizeof(gdt)))
		return -ERANGE;
	for (int i = 0; i < GDT_ENTRIES; i++)
		ll_put64(gdt + 8 * i, e[i]);
	err = guest_memory_write(m, at, gdt, sizeof(gdt));
	if (err)
		return err;
	sregs->gdt.base = at;
	sregs->gdt.limit = sizeof(gdt) - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cs = seg_from(code, 0, 0xfffff, SEL_CODE);
	data = seg_from(GDT_DATA, 0, 0xfffff, SEL_DATA);
	sregs->ds = data;
	sregs->es = data;
	sregs->fs = data;
	sregs->gs = data;
	sregs->ss = data;
	sregs->tr = seg_from(GDT_TSS, 0, 0x67, SEL_TSS);
	return 0;
}

static int write_page_tables(const struct guest_memory *m, guest_addr_t pml4,
			     bool gib)
{
	uint64_t pdpt = pml4 + PAGE, pd = pml4 + 2 * PAGE;
	uint64_t npages = gib ? 2 : 6;
	uint8_t *buf;
	int err;

	if (pml4 % PAGE || pml4 >= LL_4G)
		return -EINVAL;
	if (ll_in_ram(m, pml4, npages * PAGE))
		return -ERANGE;
	buf = calloc(npages, PAGE);
	if (!buf)
		return -ENOMEM;
	ll_put64(buf, pdpt | PTE_P | PTE_RW);
	for (uint64_t i = 0; i < 4; i++) {
		uint64_t v = gib ? (i << 30) | PTE_P | PTE_RW | PTE_PS
				 : (pd + i * PAGE) | PTE_P | PTE_RW;

		ll_put64(buf + PAGE + 8 * i, v);
	}
	if (!gib)
		for (uint64_t j = 0; j < 4 * 512; j++)
			ll_put64(buf + 2 * PAGE + 8 * j,
				 (j << 21) | PTE_P | PTE_RW | PTE_PS);
	err = guest_memory_write(m, pml4, buf, npages * PAGE);
	free(buf);
	return err;
}

/* [at, at + len) overlaps the loaded kernel (or wraps). */
static bool clobbers_kernel(const struct linux_loader_kernel *k, uint64_t at,
			    uint64_t len)
{
	uint64_t end;

	return !ll_add(at, len, &end) ||
	       ll_overlap(at, len, k->start, k->end - k->start);
}

int boot_vcpu_setup_long_mode(const struct guest_memory *m,
			      const struct linux_loader_kernel *k,
			      guest_addr_t zero_page,
			      const struct boot_vcpu_config *cfg,
			      struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	static const struct boot_vcpu_config none;
	uint64_t gdt, pml4, stack;
	int err;

	if (!m || !k || !regs || !sregs || k->kind != LINUX_LOADER_BZIMAGE)
		return -EINVAL;
	if (!cfg)
		cfg = &none;
	gdt = cfg->gdt_addr ? cfg->gdt_addr : BOOT_GDT_ADDR;
	pml4 = cfg->pml4_addr ? cfg->pml4_addr : BOOT_PML4_ADDR;
	stack = cfg->stack ? cfg->stack : BOOT_STACK_ADDR;
	if (clobbers_kernel(k, gdt, GDT_ENTRIES * 8) ||
	    clobbers_kernel(k, pml4, (cfg->gib_pages ? 2 : 6) * PAGE))
		return -EINVAL;
	err = write_page_tables(m, pml4, cfg->gib_pages);
	if (!err)
		err = write_gdt(m, gdt, GDT_CODE64, sregs);
	if (err)
		return err;
	sregs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	sregs->cr3 = pml4;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
	memset(regs, 0, sizeof(*regs));
	regs->rflags = 2;
	regs->rip = k->entry;
	regs->rsi = zero_page;
	regs->rsp = stack;
	regs->rbp = stack;
	return 0;
}

int boot_vcpu_setup_pvh(const struct guest_memory *m,
			const struct linux_loader_kernel *k,
			guest_addr_t start_info,
			const struct boot_vcpu_config *cfg,
			struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	static const struct boot_vcpu_config none;
	uint64_t gdt;
	int err;

	if (!m || !k || !regs || !sregs || k->kind != LINUX_LOADER_ELF_PVH)
		return -EINVAL;
	if (!cfg)
		cfg = &none;
	gdt = cfg->gdt_addr ? cfg->gdt_addr : BOOT_GDT_ADDR;
	if (clobbers_kernel(k, gdt, GDT_ENTRIES * 8))
		return -EINVAL;
	err = write_gdt(m, gdt, GDT_CODE32, sregs);
	if (err)
		return err;
	sregs->cr0 = CR0_PE | CR0_ET;
	sregs->cr3 = 0;
	sregs->cr4 = 0;
	sregs->efer = 0;
	memset(regs, 0, sizeof(*regs));
	regs->rflags = 2;
	regs->rip = k->entry;
	regs->rbx = start_info;
	return 0;
}

/* ------------------------------------------------------------------ CPUID */

#define CPUID_KVM_SIG  0x40000000u
#define CPUID_KVM_FEAT 0x40000001u

static unsigned int bits_for(unsigned int n)
{
	unsigned int s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

static bool has_leaf(const struct kvm_cpuid_entry2 *e, size_t n, uint32_t fn)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].function == fn)
			return true;
	return false;
}

int boot_cpuid_normalize(struct kvm_cpuid_entry2 *e, size_t n, size_t cap,
			 const struct boot_cpuid_config *cfg, size_t *n_out)
{
	static const struct boot_cpuid_config none;
	unsigned int ncpu, shift;
	uint32_t id;
	size_t add = 0;

	if (!e || !n_out || n > cap)
		return -EINVAL;
	if (!cfg)
		cfg = &none;
	ncpu = cfg->num_cpus ? cfg->num_cpus : 1;
	id = cfg->apic_id;
	if (ncpu > 254 || id >= 255)
		return -EINVAL;
	shift = bits_for(ncpu);
	if (!has_leaf(e, n, CPUID_KVM_SIG))
		add++;
	if (!has_leaf(e, n, CPUID_KVM_FEAT))
		add++;
	if (add > cap - n)
		return -ENOSPC;
	if (!has_leaf(e, n, CPUID_KVM_SIG)) {
		memset(&e[n], 0, sizeof(e[n]));
		e[n++].function = CPUID_KVM_SIG;
	}
	if (!has_leaf(e, n, CPUID_KVM_FEAT)) {
		memset(&e[n], 0, sizeof(e[n]));
		e[n++].function = CPUID_KVM_FEAT;
	}

	for (size_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *c = &e[i];

		switch (c->function) {
		case 1:
			c->ebx = (c->ebx & 0xffffu) | id << 24 | ncpu << 16;
			if (ncpu > 1)
				c->edx |= 1u << 28;
			c->ecx |= 1u << 31;
			if (cfg->tsc_deadline)
				c->ecx |= 1u << 24;
			break;
		case 4:
			if (c->eax & 0x1f) {
				unsigned int level = (c->eax >> 5) & 7;
				uint32_t cores = ncpu - 1 > 63 ? 63 : ncpu - 1;
				uint32_t share = level >= 3 ? ncpu - 1 : 0;

				c->eax = (c->eax & 0x3fffu) | cores << 26 |
					 share << 14;
			}
			break;
		case 0xb:
		case 0x1f:
			c->edx = id;
			if (c->index == 0) {
				c->eax = 0;
				c->ebx = 1;
				c->ecx = 1u << 8;
			} else if (c->index == 1) {
				c->eax = shift;
				c->ebx = ncpu;
				c->ecx = 2u << 8 | 1;
			} else {
				c->eax = 0;
				c->ebx = 0;
				c->ecx = c->index & 0xff;
			}
			break;
		case 0x80000008:
			c->ecx = (c->ecx & ~0xf0ffu) | shift << 12 | (ncpu - 1);
			break;
		case 0x8000001e: /* AMD topology extensions */
			c->eax = id;
			c->ebx = (c->ebx & ~0xffffu) | (id & 0xff);
			c->ecx &= ~0x7ffu; /* one node, id 0 */
			break;
		case CPUID_KVM_SIG:
			if (c->eax < CPUID_KVM_FEAT)
				c->eax = CPUID_KVM_FEAT;
			memcpy(&c->ebx, "KVMK", 4);
			memcpy(&c->ecx, "VMKV", 4);
			memcpy(&c->edx, "M\0\0\0", 4);
			break;
		case CPUID_KVM_FEAT:
			c->eax |= BOOT_KVM_CLOCK_FEATURES;
			break;
		default:
			break;
		}
	}
	*n_out = n;
	return 0;
}

/* ------------------------------------------------------------------- MSRs */

int boot_msrs_fill(struct kvm_msr_entry *e, size_t cap)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} msrs[BOOT_MSRS_COUNT] = {
		{0x174, 0},		 /* IA32_SYSENTER_CS */
		{0x175, 0},		 /* IA32_SYSENTER_ESP */
		{0x176, 0},		 /* IA32_SYSENTER_EIP */
		{0xc0000081, 0},	 /* STAR */
		{0xc0000082, 0},	 /* LSTAR */
		{0xc0000083, 0},	 /* CSTAR */
		{0xc0000084, 0},	 /* SFMASK */
		{0xc0000102, 0},	 /* KERNEL_GS_BASE */
		{0x10, 0},		 /* TSC */
		{0x1a0, 1},		 /* MISC_ENABLE: fast strings */
		{0x2ff, (1u << 11) | 6}, /* MTRRdefType: enabled, WB */
	};

	if (!e)
		return -EINVAL;
	if (cap < BOOT_MSRS_COUNT)
		return -ENOSPC;
	for (size_t i = 0; i < BOOT_MSRS_COUNT; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].index = msrs[i].index;
		e[i].data = msrs[i].value;
	}
	return BOOT_MSRS_COUNT;
}

/* ------------------------------------------------------------------ LAPIC */

#define APIC_LVT_LINT0	 0x350
#define APIC_LVT_LINT1	 0x360
#define APIC_MODE_NMI	 4u
#define APIC_MODE_EXTINT 7u

static void set_delivery(struct kvm_lapic_state *s, size_t off, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, s->regs + off, 4);
	v = (v & ~0x700u) | mode << 8;
	memcpy(s->regs + off, &v, 4);
}

int boot_lapic_setup_lint(struct kvm_lapic_state *s)
{
	if (!s)
		return -EINVAL;
	set_delivery(s, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	set_delivery(s, APIC_LVT_LINT1, APIC_MODE_NMI);
	return 0;
}
