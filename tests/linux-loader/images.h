/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Small generated kernel images and guest memory for the liblinux-loader
 * tests and fuzz targets: a bzImage with a setup header and a payload, and
 * an ELF vmlinux with PT_LOAD segments and a PVH note.  The images carry
 * no code; the loader never runs them.
 */
#ifndef CVMM_TESTS_LINUX_LOADER_IMAGES_H
#define CVMM_TESTS_LINUX_LOADER_IMAGES_H

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/linux-loader.h>

#define TI_SETUP_SECTS	4u
#define TI_SETUP_SIZE	((TI_SETUP_SECTS + 1) * 512u)
#define TI_PAYLOAD	8192u
#define TI_BZ_SIZE	(TI_SETUP_SIZE + TI_PAYLOAD)
#define TI_PREF_ADDR	0x1000000u
#define TI_INIT_SIZE	0x200000u
#define TI_ALIGN	0x200000u
#define TI_INITRD_MAX	0x7fffffffu
#define TI_CMDLINE_SIZE 2047u

static inline void ti_put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static inline void ti_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void ti_put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Offsets in the file of setup header fields (0x1f1 + offset in struct). */
#define TI_HDR(field) (0x1f1u + offsetof(struct setup_header, field))

/* A valid bzImage of TI_BZ_SIZE bytes into @b (caller's buffer). */
static inline void ti_make_bzimage(uint8_t *b)
{
	memset(b, 0, TI_BZ_SIZE);
	b[TI_HDR(setup_sects)] = TI_SETUP_SECTS;
	ti_put32(b + TI_HDR(syssize), TI_PAYLOAD / 16);
	ti_put16(b + TI_HDR(boot_flag), 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = 0x66; /* header ends at 0x268 */
	ti_put32(b + TI_HDR(header), 0x53726448);
	ti_put16(b + TI_HDR(version), 0x020f);
	b[TI_HDR(loadflags)] = LOADED_HIGH;
	ti_put32(b + TI_HDR(initrd_addr_max), TI_INITRD_MAX);
	ti_put32(b + TI_HDR(kernel_alignment), TI_ALIGN);
	b[TI_HDR(relocatable_kernel)] = 1;
	ti_put16(b + TI_HDR(xloadflags), XLF_KERNEL_64);
	ti_put32(b + TI_HDR(cmdline_size), TI_CMDLINE_SIZE);
	ti_put64(b + TI_HDR(pref_address), TI_PREF_ADDR);
	ti_put32(b + TI_HDR(init_size), TI_INIT_SIZE);
	for (unsigned int i = 0; i < TI_PAYLOAD; i++)
		b[TI_SETUP_SIZE + i] = (uint8_t)(i * 7 + 1);
}

/* ELF: header, 3 program headers (LOAD text, LOAD data with bss, NOTE),
 * the note, then the segment contents. */
#define TI_ELF_PHOFF	64u
#define TI_ELF_NOTE_OFF (64u + 3 * 56u)
#define TI_ELF_NOTE_LEN (12u + 4 + 8)
#define TI_ELF_SEG0_OFF 0x200u
#define TI_ELF_SEG0_LEN 0x1000u
#define TI_ELF_SEG1_OFF 0x1200u
#define TI_ELF_SEG1_LEN 0x800u
#define TI_ELF_SEG1_MEM 0x3000u
#define TI_ELF_SIZE	0x1a00u
#define TI_ELF_PADDR0	0x1000000u
#define TI_ELF_PADDR1	0x1200000u
#define TI_ELF_ENTRY	0x1000100u

static inline void ti_elf_phdr(uint8_t *b, unsigned int i, uint32_t type,
			       uint64_t off, uint64_t paddr, uint64_t filesz,
			       uint64_t memsz)
{
	Elf64_Phdr ph;

	memset(&ph, 0, sizeof(ph));
	ph.p_type = type;
	ph.p_offset = off;
	ph.p_vaddr = paddr + 0xffffffff80000000ull;
	ph.p_paddr = paddr;
	ph.p_filesz = filesz;
	ph.p_memsz = memsz;
	ph.p_align = 4;
	memcpy(b + TI_ELF_PHOFF + i * sizeof(ph), &ph, sizeof(ph));
}

static inline void ti_make_elf(uint8_t *b)
{
	Elf64_Ehdr eh;
	uint8_t *n = b + TI_ELF_NOTE_OFF;

	memset(b, 0, TI_ELF_SIZE);
	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = 0xffffffff81000000ull;
	eh.e_phoff = TI_ELF_PHOFF;
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 3;
	memcpy(b, &eh, sizeof(eh));
	ti_elf_phdr(b, 0, PT_LOAD, TI_ELF_SEG0_OFF, TI_ELF_PADDR0,
		    TI_ELF_SEG0_LEN, TI_ELF_SEG0_LEN);
	ti_elf_phdr(b, 1, PT_LOAD, TI_ELF_SEG1_OFF, TI_ELF_PADDR1,
		    TI_ELF_SEG1_LEN, TI_ELF_SEG1_MEM);
	ti_elf_phdr(b, 2, PT_NOTE, TI_ELF_NOTE_OFF, 0, TI_ELF_NOTE_LEN,
		    TI_ELF_NOTE_LEN);
	ti_put32(n, 4);	     /* namesz */
	ti_put32(n + 4, 8);  /* descsz */
	ti_put32(n + 8, 18); /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(n + 12, "Xen", 4);
	ti_put64(n + 16, TI_ELF_ENTRY);
	for (unsigned int i = 0; i < TI_ELF_SEG0_LEN; i++)
		b[TI_ELF_SEG0_OFF + i] = (uint8_t)(i ^ 0x5a);
	for (unsigned int i = 0; i < TI_ELF_SEG1_LEN; i++)
		b[TI_ELF_SEG1_OFF + i] = (uint8_t)(i * 3 + 2);
}

/* Guest memory of @n regions [start, start + size), anonymous, NORESERVE;
 * NULL on failure. */
static inline struct guest_memory *ti_mem(const uint64_t (*ranges)[2], size_t n)
{
	struct guest_region *r[8];
	struct guest_memory *m = NULL;
	size_t made = 0;

	if (n > 8)
		return NULL;
	for (; made < n; made++) {
		struct guest_region_params p;

		memset(&p, 0, sizeof(p));
		p.gpa = ranges[made][0];
		p.size = ranges[made][1];
		p.backing = GUEST_REGION_ANON_PRIVATE;
		p.flags = GUEST_REGION_NORESERVE;
		if (guest_region_create(&p, &r[made]))
			break;
	}
	if (made == n && guest_memory_create(r, n, &m))
		m = NULL;
	for (size_t i = 0; i < made; i++)
		guest_region_unref(r[i]);
	return m;
}

#endif /* CVMM_TESTS_LINUX_LOADER_IMAGES_H */
