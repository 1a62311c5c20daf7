/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Unit tests for liblinux-loader: bzImage and ELF/PVH loading with
 * generated images (valid, truncated and lying), initrd placement, e820,
 * the command-line builder, the zero page and PVH start info read back,
 * the MP table parsed back, the boot vCPU state, CPUID, MSRs and LAPIC.
 * The test_hostile_* cases are the "Loaders and configuration" lines of
 * the hostile-guest checklist.
 */
#include <errno.h>
#include <stdio.h>

#include "cvmm-check.h"
#include "images.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct guest_memory *mem64(void)
{
	static const uint64_t r[][2] = {{0, 64 * MiB}};
	struct guest_memory *m = ti_mem(r, 1);

	ck_assert_ptr_nonnull(m);
	return m;
}

/* ---------------------------------------------------------------- bzImage */

START_TEST(test_bzimage_load)
{
	static uint8_t img[TI_BZ_SIZE];
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	uint8_t got[TI_PAYLOAD];

	ti_make_bzimage(img);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	ck_assert_int_eq(k.kind, LINUX_LOADER_BZIMAGE);
	ck_assert_uint_eq(k.start, TI_PREF_ADDR);
	ck_assert_uint_eq(k.entry, TI_PREF_ADDR + 0x200);
	ck_assert_uint_eq(k.end, TI_PREF_ADDR + TI_INIT_SIZE);
	ck_assert_uint_eq(k.cmdline_max, TI_CMDLINE_SIZE);
	ck_assert_uint_eq(k.initrd_addr_max, TI_INITRD_MAX);
	ck_assert_uint_eq(k.hdr.header, 0x53726448);
	ck_assert_uint_eq(k.hdr.version, 0x020f);
	ck_assert_uint_eq(k.hdr.init_size, TI_INIT_SIZE);
	ck_assert_int_eq(guest_memory_read(m, k.start, got, sizeof(got)), 0);
	ck_assert_mem_eq(got, img + TI_SETUP_SIZE, sizeof(got));
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_bzimage_setup_sects_zero_means_4)
{
	static uint8_t img[TI_BZ_SIZE];
	struct linux_loader_kernel k;

	ti_make_bzimage(img);
	img[TI_HDR(setup_sects)] = 0;
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 0);
	/* setup_sects 1 would put the payload elsewhere and the size
	 * check catches nothing, but 5 sectors no longer fit syssize. */
	img[TI_HDR(setup_sects)] = 5;
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 -EINVAL);
}
END_TEST

START_TEST(test_bzimage_relocation)
{
	static uint8_t img[TI_BZ_SIZE];
	struct linux_loader_config cfg = {.load_addr = 0x2000000};
	struct linux_loader_kernel k;

	ti_make_bzimage(img);
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), &cfg, &k),
			 0);
	ck_assert_uint_eq(k.start, 0x2000000);
	ck_assert_uint_eq(k.entry, 0x2000200);
	cfg.load_addr = 0x2001000; /* not kernel_alignment aligned */
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), &cfg, &k),
			 -EINVAL);
	ti_put32(img + TI_HDR(kernel_alignment), 0x3000); /* not 2^n */
	cfg.load_addr = 0x3000000;
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), &cfg, &k),
			 -EINVAL);
	ti_make_bzimage(img);
	img[TI_HDR(relocatable_kernel)] = 0;
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), &cfg, &k),
			 -EINVAL);
	cfg.load_addr = TI_PREF_ADDR; /* the preferred one is fine */
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), &cfg, &k),
			 0);
}
END_TEST

START_TEST(test_bzimage_unsupported)
{
	static uint8_t img[TI_BZ_SIZE];
	struct linux_loader_kernel k;

	ti_make_bzimage(img);
	ti_put16(img + TI_HDR(version), 0x0205); /* protocol too old */
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 -ENOTSUP);
	ti_put16(img + TI_HDR(version), 0x020b); /* no xloadflags */
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 -ENOTSUP);
	ti_make_bzimage(img);
	ti_put16(img + TI_HDR(xloadflags), 0); /* no 64-bit entry */
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 -ENOTSUP);
	ti_make_bzimage(img);
	img[TI_HDR(loadflags)] = 0; /* zImage, loaded low */
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 -ENOTSUP);
	ti_make_bzimage(img);
	img[TI_HDR(header)] = 'X';
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 -ENOEXEC);
	ti_make_bzimage(img);
	ti_put16(img + TI_HDR(boot_flag), 0);
	ck_assert_int_eq(linux_loader_parse_bzimage(img, sizeof(img), NULL, &k),
			 -ENOEXEC);
	ck_assert_int_eq(linux_loader_parse_bzimage(NULL, 10, NULL, &k),
			 -EINVAL);
}
END_TEST

START_TEST(test_bzimage_must_fit_ram)
{
	static const uint64_t r[][2] = {{0, 17 * MiB}};
	static uint8_t img[TI_BZ_SIZE];
	struct guest_memory *m = ti_mem(r, 1);
	struct linux_loader_kernel k;
	struct linux_loader_config cfg = {.load_addr = 0xffe00000};

	ck_assert_ptr_nonnull(m);
	ti_make_bzimage(img);
	/* payload fits, init_size (2 MiB from 16 MiB) does not */
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k),
			 -ERANGE);
	/* above what the boot page tables map */
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), &cfg, &k),
			 -ERANGE);
	ti_put64(img + TI_HDR(pref_address), 0xfffffffffff00000ull);
	img[TI_HDR(relocatable_kernel)] = 0;
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k),
			 -EOVERFLOW);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_hostile_bzimage_header_fields_vs_file_size)
{
	static uint8_t img[TI_BZ_SIZE];
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;

	ti_make_bzimage(img);
	/* Every truncation of a valid image is refused. */
	for (size_t n = 0; n < sizeof(img); n++)
		ck_assert_int_lt(linux_loader_load(m, img, n, NULL, &k), 0);
	/* setup_sects huge: the setup would end past the file. */
	img[TI_HDR(setup_sects)] = 255;
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k),
			 -EINVAL);
	/* syssize beyond the file, and syssize 0. */
	ti_make_bzimage(img);
	ti_put32(img + TI_HDR(syssize), TI_PAYLOAD / 16 + 1);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k),
			 -EINVAL);
	ti_put32(img + TI_HDR(syssize), 0xffffffffu);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k),
			 -EINVAL);
	ti_put32(img + TI_HDR(syssize), 0);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k),
			 -EINVAL);
	/* The header's own end (jump at 0x200) past the setup code. */
	ti_make_bzimage(img);
	img[TI_HDR(setup_sects)] = 0;
	img[0x201] = 0xff;
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	ti_put32(img + TI_HDR(syssize), TI_PAYLOAD / 16);
	/* A short header: fields past its end read as zero. */
	ti_make_bzimage(img);
	img[0x201] = 0x5e; /* ends at 0x260, before init_size */
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	ck_assert_uint_eq(k.hdr.init_size, 0);
	ck_assert_uint_eq(k.end, TI_PREF_ADDR + TI_PAYLOAD);
	guest_memory_unref(m);
}
END_TEST

/* -------------------------------------------------------------------- ELF */

START_TEST(test_elf_load_pvh)
{
	static uint8_t img[TI_ELF_SIZE];
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	uint8_t got[TI_ELF_SEG1_MEM];

	ti_make_elf(img);
	ck_assert_int_eq(
		guest_memory_fill(m, TI_ELF_PADDR1, 0xaa, TI_ELF_SEG1_MEM), 0);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	ck_assert_int_eq(k.kind, LINUX_LOADER_ELF_PVH);
	ck_assert_uint_eq(k.entry, TI_ELF_ENTRY);
	ck_assert_uint_eq(k.start, TI_ELF_PADDR0);
	ck_assert_uint_eq(k.end, TI_ELF_PADDR1 + TI_ELF_SEG1_MEM);
	ck_assert_int_eq(
		guest_memory_read(m, TI_ELF_PADDR0, got, TI_ELF_SEG0_LEN), 0);
	ck_assert_mem_eq(got, img + TI_ELF_SEG0_OFF, TI_ELF_SEG0_LEN);
	ck_assert_int_eq(
		guest_memory_read(m, TI_ELF_PADDR1, got, TI_ELF_SEG1_MEM), 0);
	ck_assert_mem_eq(got, img + TI_ELF_SEG1_OFF, TI_ELF_SEG1_LEN);
	for (size_t i = TI_ELF_SEG1_LEN; i < TI_ELF_SEG1_MEM; i++)
		ck_assert_uint_eq(got[i], 0); /* bss zeroed */
	/* A 4-byte note value is accepted too. */
	ti_put32(img + TI_ELF_NOTE_OFF + 4, 4);
	ti_put32(img + TI_ELF_NOTE_OFF + 16, TI_ELF_ENTRY + 4);
	ck_assert_int_eq(linux_loader_parse_elf(img, sizeof(img), &k), 0);
	ck_assert_uint_eq(k.entry, TI_ELF_ENTRY + 4);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_elf_without_pvh_note)
{
	static uint8_t img[TI_ELF_SIZE];
	struct linux_loader_kernel k;

	ti_make_elf(img);
	img[TI_ELF_NOTE_OFF + 8] = 17; /* another Xen note */
	ck_assert_int_eq(linux_loader_parse_elf(img, sizeof(img), &k),
			 -ENOTSUP);
	ti_make_elf(img);
	img[EI_CLASS] = ELFCLASS32;
	ck_assert_int_eq(linux_loader_parse_elf(img, sizeof(img), &k),
			 -ENOEXEC);
	ti_make_elf(img);
	ti_put16(img + offsetof(Elf64_Ehdr, e_machine), EM_386);
	ck_assert_int_eq(linux_loader_parse_elf(img, sizeof(img), &k),
			 -ENOEXEC);
}
END_TEST

static int elf_err(uint8_t *img, size_t size, struct guest_memory *m)
{
	struct linux_loader_kernel k;

	return m ? linux_loader_load(m, img, size, NULL, &k)
		 : linux_loader_parse_elf(img, size, &k);
}

#define PH(i, f) \
	(TI_ELF_PHOFF + (i) * sizeof(Elf64_Phdr) + offsetof(Elf64_Phdr, f))

START_TEST(test_hostile_elf_phdrs_vs_file_size)
{
	static uint8_t img[TI_ELF_SIZE];
	struct guest_memory *m = mem64();

	ti_make_elf(img);
	for (size_t n = 0; n < sizeof(img); n++)
		ck_assert_int_lt(elf_err(img, n, m), 0);
	/* program headers past the file */
	ti_put64(img + offsetof(Elf64_Ehdr, e_phoff), TI_ELF_SIZE - 100);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_put64(img + offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 8);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_make_elf(img);
	ti_put16(img + offsetof(Elf64_Ehdr, e_phnum), 0xffff);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_make_elf(img);
	ti_put16(img + offsetof(Elf64_Ehdr, e_phentsize), 32);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	/* segment file range past the file, or wrapping */
	ti_make_elf(img);
	ti_put64(img + PH(1, p_filesz), TI_ELF_SEG1_LEN + 1);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_make_elf(img);
	ti_put64(img + PH(1, p_offset), UINT64_MAX - 0x10);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	/* p_filesz > p_memsz */
	ti_make_elf(img);
	ti_put64(img + PH(1, p_memsz), TI_ELF_SEG1_LEN - 1);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	/* overlapping segments */
	ti_make_elf(img);
	ti_put64(img + PH(1, p_paddr), TI_ELF_PADDR0 + 0x800);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	/* a segment wrapping 2^64 */
	ti_make_elf(img);
	ti_put64(img + PH(1, p_paddr), UINT64_MAX - 0x100);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EOVERFLOW);
	/* a segment outside guest RAM: nothing written */
	ti_make_elf(img);
	ti_put64(img + PH(1, p_paddr), 64 * MiB - 0x1000);
	ck_assert_int_eq(guest_memory_fill(m, TI_ELF_PADDR0, 0x11, 16), 0);
	ck_assert_int_eq(elf_err(img, sizeof(img), m), -ERANGE);
	{
		uint8_t b;

		ck_assert_int_eq(guest_memory_read_u8(m, TI_ELF_PADDR0, &b), 0);
		ck_assert_uint_eq(b, 0x11);
	}
	/* PVH note with a bad size, a lying namesz, an entry >= 4 GiB or
	 * outside every segment */
	ti_make_elf(img);
	ti_put32(img + TI_ELF_NOTE_OFF + 4, 2);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_make_elf(img);
	ti_put32(img + TI_ELF_NOTE_OFF, 0xfffffff0u);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_make_elf(img);
	ti_put32(img + TI_ELF_NOTE_OFF + 4, 0xffffffffu);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_make_elf(img);
	ti_put64(img + TI_ELF_NOTE_OFF + 16, 0x100000000ull);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	ti_make_elf(img);
	ti_put64(img + TI_ELF_NOTE_OFF + 16, 0x100);
	ck_assert_int_eq(elf_err(img, sizeof(img), NULL), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

/* ----------------------------------------------------------------- initrd */

START_TEST(test_initrd_placement)
{
	static uint8_t img[TI_BZ_SIZE];
	static uint8_t rd[10000];
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	struct boot_range avoid = {64 * MiB - 0x10000, 0x10000};
	uint8_t got[sizeof(rd)];
	guest_addr_t a;

	ti_make_bzimage(img);
	memset(rd, 0x3c, sizeof(rd));
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	ck_assert_int_eq(linux_loader_load_initrd(m, &k, NULL, 0, rd,
						  sizeof(rd), &a),
			 0);
	ck_assert_uint_eq(a, (64 * MiB - sizeof(rd)) & ~0xfffull);
	ck_assert_int_eq(guest_memory_read(m, a, got, sizeof(got)), 0);
	ck_assert_mem_eq(got, rd, sizeof(rd));
	ck_assert_int_eq(linux_loader_load_initrd(m, &k, &avoid, 1, rd,
						  sizeof(rd), &a),
			 0);
	ck_assert_uint_le(a + sizeof(rd), avoid.start);
	/* below initrd_addr_max */
	k.initrd_addr_max = 32 * MiB - 1;
	ck_assert_int_eq(linux_loader_load_initrd(m, &k, NULL, 0, rd,
						  sizeof(rd), &a),
			 0);
	ck_assert_uint_le(a + sizeof(rd) - 1, k.initrd_addr_max);
	ck_assert(a >= k.end || a + sizeof(rd) <= k.start);
	/* only room would be the kernel or low memory: none */
	k.initrd_addr_max = k.end - 1;
	ck_assert_int_eq(linux_loader_load_initrd(m, &k, NULL, 0, rd,
						  sizeof(rd), &a),
			 0);
	ck_assert_uint_le(a + sizeof(rd), k.start);
	ck_assert_uint_ge(a, MiB);
	k.initrd_addr_max = MiB + 100;
	ck_assert_int_eq(linux_loader_load_initrd(m, &k, NULL, 0, rd,
						  sizeof(rd), &a),
			 -ENOSPC);
	ck_assert_int_eq(linux_loader_load_initrd(m, &k, NULL, 0, rd, 0, &a),
			 -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_initrd_below_pci_hole)
{
	static const uint64_t r[][2] = {{0, 3 * GiB}, {4 * GiB, GiB}};
	static uint8_t img[TI_BZ_SIZE];
	static uint8_t rd[5000];
	struct guest_memory *m = ti_mem(r, 2);
	struct linux_loader_kernel k;
	guest_addr_t a;

	ck_assert_ptr_nonnull(m);
	ti_make_bzimage(img);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	k.initrd_addr_max = UINT32_MAX; /* the hole and 4 GiB bound it */
	ck_assert_int_eq(linux_loader_load_initrd(m, &k, NULL, 0, rd,
						  sizeof(rd), &a),
			 0);
	ck_assert_uint_eq(a, (3 * GiB - sizeof(rd)) & ~0xfffull);
	guest_memory_unref(m);
}
END_TEST

/* ------------------------------------------------------------------- e820 */

START_TEST(test_e820_pci_hole_and_reserved)
{
	static const uint64_t r[][2] = {{0, 3 * GiB}, {4 * GiB, GiB}};
	struct guest_memory *m = ti_mem(r, 2);
	struct boot_range res[] = {
		{BOOT_LOW_RESERVED_START,
		 BOOT_LOW_RESERVED_END - BOOT_LOW_RESERVED_START},
		{0xe0000000, 0x10000000}, /* ECAM, in the hole */
		{BOOT_IOAPIC_ADDR, 0x1000},
	};
	struct boot_e820_entry e[BOOT_E820_MAX];
	size_t n;

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(boot_e820_build(m, res, 3, e, BOOT_E820_MAX, &n), 0);
	ck_assert_uint_eq(n, 6);
	ck_assert_uint_eq(e[0].addr, 0);
	ck_assert_uint_eq(e[0].size, BOOT_LOW_RESERVED_START);
	ck_assert_uint_eq(e[0].type, BOOT_E820_RAM);
	ck_assert_uint_eq(e[1].addr, BOOT_LOW_RESERVED_START);
	ck_assert_uint_eq(e[1].type, BOOT_E820_RESERVED);
	ck_assert_uint_eq(e[2].addr, MiB);
	ck_assert_uint_eq(e[2].size, 3 * GiB - MiB);
	ck_assert_uint_eq(e[2].type, BOOT_E820_RAM);
	ck_assert_uint_eq(e[3].addr, 0xe0000000);
	ck_assert_uint_eq(e[3].type, BOOT_E820_RESERVED);
	ck_assert_uint_eq(e[4].addr, BOOT_IOAPIC_ADDR);
	ck_assert_uint_eq(e[5].addr, 4 * GiB);
	ck_assert_uint_eq(e[5].size, GiB);
	ck_assert_uint_eq(e[5].type, BOOT_E820_RAM);
	ck_assert_int_eq(boot_e820_build(m, res, 3, e, 5, &n), -ENOSPC);
	res[0].size = UINT64_MAX;
	ck_assert_int_eq(boot_e820_build(m, res, 3, e, BOOT_E820_MAX, &n),
			 -EINVAL);
	res[0].size = 0;
	ck_assert_int_eq(boot_e820_build(m, res, 3, e, BOOT_E820_MAX, &n),
			 -EINVAL);
	ck_assert_int_eq(boot_e820_build(m, NULL, 65, e, BOOT_E820_MAX, &n),
			 -EINVAL);
	guest_memory_unref(m);
}
END_TEST

/* ----------------------------------------------------------- command line */

START_TEST(test_cmdline_builder)
{
	struct boot_cmdline *c;

	ck_assert_int_eq(boot_cmdline_create(40, &c), 0);
	ck_assert_str_eq(boot_cmdline_str(c), "");
	ck_assert_int_eq(boot_cmdline_add(c, "console", "ttyS0"), 0);
	ck_assert_int_eq(boot_cmdline_add(c, "quiet", NULL), 0);
	ck_assert_int_eq(boot_cmdline_add(c, "root", "PARTUUID=x"), 0);
	ck_assert_str_eq(boot_cmdline_str(c), "console=ttyS0 quiet "
					      "root=PARTUUID=x");
	ck_assert_uint_eq(boot_cmdline_len(c), 35);
	/* injection attempts leave the line unchanged */
	ck_assert_int_eq(boot_cmdline_add(c, "a", "b c"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add(c, "a", "\"x"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add(c, "a=b", "c"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add(c, "a b", NULL), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add(c, "", NULL), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add(c, "a", "x\ny"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add(c, "a", "\xc3\xa9"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add_raw(c, "x=\"a b"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_add_raw(c, "x\ty"), -EINVAL);
	ck_assert_str_eq(boot_cmdline_str(c), "console=ttyS0 quiet "
					      "root=PARTUUID=x");
	/* capacity: 40 bytes; 35 used, " ab=" fits exactly with one char */
	ck_assert_int_eq(boot_cmdline_add(c, "ab", "cd"), -ENOSPC);
	ck_assert_int_eq(boot_cmdline_add(c, "ab", "c"), 0);
	ck_assert_uint_eq(boot_cmdline_len(c), 40);
	ck_assert_int_eq(boot_cmdline_add(c, "x", NULL), -ENOSPC);
	ck_assert_int_eq(boot_cmdline_add_raw(c, ""), 0);
	boot_cmdline_destroy(c);

	ck_assert_int_eq(boot_cmdline_create(100, &c), 0);
	ck_assert_int_eq(boot_cmdline_add_raw(c, "x=\"a b\" -- init"), 0);
	ck_assert_int_eq(boot_cmdline_add(c, "panic", "-1"), 0);
	ck_assert_str_eq(boot_cmdline_str(c), "x=\"a b\" -- init panic=-1");
	boot_cmdline_destroy(c);
	boot_cmdline_destroy(NULL);
	ck_assert_int_eq(boot_cmdline_create(0, &c), -EINVAL);
	ck_assert_str_eq(boot_cmdline_str(NULL), "");
}
END_TEST

/* -------------------------------------------------------------- zero page */

static void load_bz(struct guest_memory *m, struct linux_loader_kernel *k)
{
	static uint8_t img[TI_BZ_SIZE];

	ti_make_bzimage(img);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, k), 0);
}

START_TEST(test_boot_params)
{
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	struct boot_e820_entry e[4];
	struct boot_range res = {BOOT_LOW_RESERVED_START, 0x60400};
	struct boot_config cfg = {
		.cmdline = "console=ttyS0",
		.initrd_addr = 32 * MiB,
		.initrd_size = 12345,
		.acpi_rsdp = BOOT_ACPI_ADDR,
	};
	struct boot_params bp;
	char line[32];
	size_t n;

	load_bz(m, &k);
	ck_assert_int_eq(boot_e820_build(m, &res, 1, e, 4, &n), 0);
	cfg.e820 = e;
	cfg.e820_entries = n;
	ck_assert_int_eq(boot_params_setup(m, &k, &cfg), 0);
	ck_assert_int_eq(
		guest_memory_read(m, BOOT_ZERO_PAGE_ADDR, &bp, sizeof(bp)), 0);
	ck_assert_uint_eq(bp.hdr.header, 0x53726448);
	ck_assert_uint_eq(bp.hdr.type_of_loader, 0xff);
	ck_assert(bp.hdr.loadflags & LOADED_HIGH);
	ck_assert(bp.hdr.loadflags & CAN_USE_HEAP);
	ck_assert_uint_eq(bp.hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	ck_assert_uint_eq(bp.hdr.ramdisk_image, 32 * MiB);
	ck_assert_uint_eq(bp.hdr.ramdisk_size, 12345);
	ck_assert_uint_eq(bp.acpi_rsdp_addr, BOOT_ACPI_ADDR);
	ck_assert_uint_eq(bp.e820_entries, 3);
	ck_assert_uint_eq(bp.e820_table[1].type, BOOT_E820_RESERVED);
	ck_assert_uint_eq(bp.e820_table[2].addr, MiB);
	ck_assert_int_eq(guest_memory_read(m, BOOT_CMDLINE_ADDR, line, 14), 0);
	ck_assert_str_eq(line, "console=ttyS0");
	/* defaults: empty line, e820 = RAM; loader-owned fields the image
	 * carried are not passed on */
	k.hdr.ramdisk_image = 0x1234000;
	k.hdr.ramdisk_size = 0x1000;
	k.hdr.setup_data = 0x5000;
	k.hdr.hardware_subarch = 1;
	ck_assert_int_eq(boot_params_setup(m, &k, NULL), 0);
	ck_assert_int_eq(
		guest_memory_read(m, BOOT_ZERO_PAGE_ADDR, &bp, sizeof(bp)), 0);
	ck_assert_uint_eq(bp.e820_entries, 1);
	ck_assert_uint_eq(bp.e820_table[0].size, 64 * MiB);
	ck_assert_uint_eq(bp.hdr.ramdisk_size, 0);
	ck_assert_uint_eq(bp.hdr.ramdisk_image, 0);
	ck_assert_uint_eq(bp.hdr.setup_data, 0);
	ck_assert_uint_eq(bp.hdr.hardware_subarch, 0);
	ck_assert_uint_eq(bp.acpi_rsdp_addr, 0);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_hostile_placements_vs_ram_and_each_other)
{
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	static char long_line[TI_CMDLINE_SIZE + 2];
	struct boot_config c;

	load_bz(m, &k);
#define TRY(expect) ck_assert_int_eq(boot_params_setup(m, &k, &c), expect)
	/* command line over the zero page */
	c = (struct boot_config){.cmdline_addr = BOOT_ZERO_PAGE_ADDR + 100,
				 .cmdline = "x"};
	TRY(-EINVAL);
	/* command line over the kernel */
	c = (struct boot_config){.cmdline_addr = k.start + 0x10};
	TRY(-EINVAL);
	/* zero page over the kernel */
	c = (struct boot_config){.params_addr = k.end - 0x100};
	TRY(-EINVAL);
	/* initrd over the kernel, the zero page, the command line */
	c = (struct boot_config){.initrd_addr = k.start - 0x1000,
				 .initrd_size = 0x2000};
	TRY(-EINVAL);
	c = (struct boot_config){.initrd_addr = BOOT_ZERO_PAGE_ADDR,
				 .initrd_size = 1};
	TRY(-EINVAL);
	c = (struct boot_config){.initrd_addr = BOOT_CMDLINE_ADDR - 1,
				 .initrd_size = 2};
	TRY(-EINVAL);
	/* initrd above initrd_addr_max */
	k.initrd_addr_max = 40 * MiB - 1;
	c = (struct boot_config){.initrd_addr = 40 * MiB - 0x1000,
				 .initrd_size = 0x1001};
	TRY(-EINVAL);
	k.initrd_addr_max = TI_INITRD_MAX;
	/* outside RAM, past RAM's end, wrapping */
	c = (struct boot_config){.initrd_addr = 64 * MiB - 0x1000,
				 .initrd_size = 0x1001};
	TRY(-ERANGE);
	c = (struct boot_config){.initrd_addr = 0xfffffffffffff000ull,
				 .initrd_size = 0x2000};
	TRY(-ERANGE);
	c = (struct boot_config){.params_addr = 64 * MiB};
	TRY(-ERANGE);
	c = (struct boot_config){.cmdline_addr = 64 * MiB - 1, .cmdline = "x"};
	TRY(-ERANGE);
	/* command line longer than cmdline_size */
	memset(long_line, 'a', TI_CMDLINE_SIZE + 1);
	c = (struct boot_config){.cmdline = long_line};
	TRY(-E2BIG);
	long_line[TI_CMDLINE_SIZE] = 0;
	TRY(0);
	/* an e820 too long for the zero page */
	c = (struct boot_config){.e820 = (struct boot_e820_entry[1]){{0}},
				 .e820_entries = BOOT_E820_MAX + 1};
	TRY(-EINVAL);
#undef TRY
	/* wrong kind of kernel */
	k.kind = LINUX_LOADER_ELF_PVH;
	ck_assert_int_eq(boot_params_setup(m, &k, NULL), -EINVAL);
	ck_assert_int_eq(boot_pvh_setup(m, NULL, NULL), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_pvh_start_info)
{
	static uint8_t img[TI_ELF_SIZE];
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	struct boot_config cfg = {.cmdline = "console=hvc0",
				  .initrd_addr = 40 * MiB,
				  .initrd_size = 4096,
				  .acpi_rsdp = BOOT_ACPI_ADDR};
	struct boot_pvh_start_info si;
	struct boot_pvh_module mod;
	struct boot_pvh_memmap_entry mm;
	char line[16];

	ck_assert_uint_eq(sizeof(si), 56);
	ck_assert_uint_eq(sizeof(mod), 32);
	ck_assert_uint_eq(sizeof(mm), 24);
	ti_make_elf(img);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	ck_assert_int_eq(boot_pvh_setup(m, &k, &cfg), 0);
	ck_assert_int_eq(guest_memory_read(m, BOOT_PVH_START_INFO_ADDR, &si,
					   sizeof(si)),
			 0);
	ck_assert_uint_eq(si.magic, 0x336ec578);
	ck_assert_uint_eq(si.version, 1);
	ck_assert_uint_eq(si.nr_modules, 1);
	ck_assert_uint_eq(si.cmdline_paddr, BOOT_CMDLINE_ADDR);
	ck_assert_uint_eq(si.rsdp_paddr, BOOT_ACPI_ADDR);
	ck_assert_uint_eq(si.memmap_entries, 1);
	ck_assert_int_eq(
		guest_memory_read(m, si.modlist_paddr, &mod, sizeof(mod)), 0);
	ck_assert_uint_eq(mod.paddr, 40 * MiB);
	ck_assert_uint_eq(mod.size, 4096);
	ck_assert_int_eq(guest_memory_read(m, si.memmap_paddr, &mm, sizeof(mm)),
			 0);
	ck_assert_uint_eq(mm.addr, 0);
	ck_assert_uint_eq(mm.size, 64 * MiB);
	ck_assert_uint_eq(mm.type, 1);
	ck_assert_int_eq(guest_memory_read(m, BOOT_CMDLINE_ADDR, line, 13), 0);
	ck_assert_str_eq(line, "console=hvc0");
	/* a bzImage is not PVH; an initrd over the ELF segments is refused */
	cfg.initrd_addr = TI_ELF_PADDR1;
	ck_assert_int_eq(boot_pvh_setup(m, &k, &cfg), -EINVAL);
	k.kind = LINUX_LOADER_BZIMAGE;
	ck_assert_int_eq(boot_pvh_setup(m, &k, NULL), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

/* --------------------------------------------------------------- MP table */

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

START_TEST(test_mptable_parsed_back)
{
	struct guest_memory *m = mem64();
	struct boot_pci_irq pci[] = {{1, 0, 16, 0},
				     {2, 1, 17, 0},
				     {3, 0, 18, BOOT_MP_IRQ_EDGE_HIGH}};
	struct boot_mptable_config cfg = {
		.num_cpus = 4, .pci_irqs = pci, .n_pci_irqs = 3};
	uint8_t buf[1024];
	uint64_t size;
	unsigned int procs = 0, buses = 0, ioapics = 0, isa = 0, pcis = 0,
		     lints = 0, entries;
	uint32_t table;
	uint16_t len;
	const uint8_t *q, *end;

	ck_assert_int_eq(boot_mptable_setup(m, &cfg, &size), 0);
	ck_assert_uint_le(size, sizeof(buf));
	ck_assert_int_eq(guest_memory_read(m, BOOT_MPTABLE_ADDR, buf, size), 0);
	ck_assert_mem_eq(buf, "_MP_", 4);
	ck_assert_uint_eq(sum8(buf, 16), 0);
	ck_assert_uint_eq(buf[8], 1);
	ck_assert_uint_eq(buf[9], 4);
	memcpy(&table, buf + 4, 4);
	ck_assert_uint_eq(table, BOOT_MPTABLE_ADDR + 16);
	q = buf + 16;
	ck_assert_mem_eq(q, "PCMP", 4);
	memcpy(&len, q + 4, 2);
	ck_assert_uint_eq(len + 16u, size);
	ck_assert_uint_eq(sum8(q, len), 0);
	entries = (unsigned int)(q[34] | q[35] << 8);
	end = q + len;
	q += 44;
	for (unsigned int i = 0; i < entries; i++) {
		ck_assert(q < end);
		switch (q[0]) {
		case 0:
			ck_assert_uint_eq(q[1], procs);
			ck_assert_uint_eq(q[3] & 1, 1);
			ck_assert_uint_eq(!!(q[3] & 2), procs == 0);
			procs++;
			q += 20;
			break;
		case 1:
			buses++;
			q += 8;
			break;
		case 2:
			ck_assert_uint_eq(q[1], 4);
			ck_assert_uint_eq(q[4] | q[5] << 8 | q[6] << 16 |
						  (uint32_t)q[7] << 24,
					  BOOT_IOAPIC_ADDR);
			ioapics++;
			q += 8;
			break;
		case 3:
			if (q[4] == 1) { /* ISA: 0 on pin 2, no 2 */
				ck_assert_uint_eq(q[5],
						  isa < 2 ? isa : isa + 1);
				ck_assert_uint_eq(q[7], isa == 0 ? 2 : q[5]);
				isa++;
			} else {
				ck_assert_uint_eq(q[4], 0);
				ck_assert_uint_eq(q[5], pci[pcis].slot << 2 |
								pci[pcis].pin);
				ck_assert_uint_eq(q[7], pci[pcis].gsi);
				ck_assert_uint_eq(q[2], pcis == 2 ? 5 : 0xf);
				pcis++;
			}
			q += 8;
			break;
		case 4:
			ck_assert_uint_eq(q[7], lints);
			ck_assert_uint_eq(q[1], lints == 0 ? 3 : 1);
			lints++;
			q += 8;
			break;
		default:
			ck_abort_msg("entry type %u", q[0]);
		}
	}
	ck_assert_ptr_eq(q, end);
	ck_assert_uint_eq(procs, 4);
	ck_assert_uint_eq(buses, 2);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(isa, 15);
	ck_assert_uint_eq(pcis, 3);
	ck_assert_uint_eq(lints, 2);

	/* irq0_to_pin0: all 16 ISA IRQs, IRQ n on input n */
	cfg.irq0_to_pin0 = true;
	ck_assert_int_eq(boot_mptable_setup(m, &cfg, &size), 0);
	ck_assert_int_eq(guest_memory_read(m, BOOT_MPTABLE_ADDR, buf, size), 0);
	ck_assert_uint_eq(sum8(buf + 16, size - 16), 0);
	q = buf + 16 + 44 + 20 * 4 + 8 * 3;
	for (unsigned int irq = 0; irq < 16; irq++, q += 8) {
		ck_assert_uint_eq(q[0], 3);
		ck_assert_uint_eq(q[5], irq);
		ck_assert_uint_eq(q[7], irq);
	}
	cfg.irq0_to_pin0 = false;

	pci[0].slot = 32;
	ck_assert_int_eq(boot_mptable_setup(m, &cfg, NULL), -EINVAL);
	pci[0].slot = 1;
	pci[0].gsi = 24;
	ck_assert_int_eq(boot_mptable_setup(m, &cfg, NULL), -EINVAL);
	cfg.n_pci_irqs = 0;
	cfg.num_cpus = 255;
	ck_assert_int_eq(boot_mptable_setup(m, &cfg, NULL), -EINVAL);
	cfg.num_cpus = 1;
	cfg.addr = 64 * MiB - 16;
	ck_assert_int_eq(boot_mptable_setup(m, &cfg, NULL), -ERANGE);
	ck_assert_int_eq(boot_mptable_setup(m, NULL, NULL), 0);
	guest_memory_unref(m);
}
END_TEST

/* ------------------------------------------------------------ vCPU state */

START_TEST(test_vcpu_long_mode)
{
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct boot_vcpu_config cfg = {.gib_pages = true};
	uint64_t v, gdt[5];

	load_bz(m, &k);
	memset(&sregs, 0, sizeof(sregs));
	sregs.apic_base = 0xfee00900;
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, BOOT_ZERO_PAGE_ADDR,
						   NULL, &regs, &sregs),
			 0);
	ck_assert_uint_eq(regs.rip, TI_PREF_ADDR + 0x200);
	ck_assert_uint_eq(regs.rsi, BOOT_ZERO_PAGE_ADDR);
	ck_assert_uint_eq(regs.rflags, 2);
	ck_assert_uint_eq(sregs.apic_base, 0xfee00900); /* kept */
	ck_assert_uint_eq(sregs.cr0 & 0x80000001u, 0x80000001u);
	ck_assert_uint_eq(sregs.cr3, BOOT_PML4_ADDR);
	ck_assert_uint_eq(sregs.cr4 & 0x20, 0x20);
	ck_assert_uint_eq(sregs.efer, 0x500);
	ck_assert_uint_eq(sregs.cs.selector, 0x10);
	ck_assert_uint_eq(sregs.cs.l, 1);
	ck_assert_uint_eq(sregs.cs.db, 0);
	ck_assert_uint_eq(sregs.cs.type, 0xb);
	ck_assert_uint_eq(sregs.ds.selector, 0x18);
	ck_assert_uint_eq(sregs.ss.selector, 0x18);
	ck_assert_uint_eq(sregs.ds.limit, 0xffffffffu);
	ck_assert_uint_eq(sregs.tr.selector, 0x20);
	ck_assert_uint_eq(sregs.tr.type, 0xb);
	ck_assert_uint_eq(sregs.gdt.base, BOOT_GDT_ADDR);
	ck_assert_uint_eq(sregs.gdt.limit, 39);
	ck_assert_int_eq(guest_memory_read(m, BOOT_GDT_ADDR, gdt, sizeof(gdt)),
			 0);
	ck_assert_uint_eq(gdt[2], 0x00af9b000000ffffull);
	ck_assert_uint_eq(gdt[3], 0x00cf93000000ffffull);
	/* 2 MiB pages: PML4 -> PDPT -> PD; 3 GiB + 2 MiB maps to itself */
	ck_assert_int_eq(guest_memory_read_u64(m, BOOT_PML4_ADDR, &v), 0);
	ck_assert_uint_eq(v, BOOT_PDPT_ADDR | 3);
	ck_assert_int_eq(guest_memory_read_u64(m, BOOT_PDPT_ADDR + 24, &v), 0);
	ck_assert_uint_eq(v, (BOOT_PD_ADDR + 3 * 4096) | 3);
	ck_assert_int_eq(
		guest_memory_read_u64(m, BOOT_PD_ADDR + 3 * 4096 + 8, &v), 0);
	ck_assert_uint_eq(v, (3 * GiB + 2 * MiB) | 0x83);
	/* 1 GiB pages */
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, BOOT_ZERO_PAGE_ADDR,
						   &cfg, &regs, &sregs),
			 0);
	ck_assert_int_eq(guest_memory_read_u64(m, BOOT_PDPT_ADDR + 16, &v), 0);
	ck_assert_uint_eq(v, 2 * GiB | 0x83);
	/* errors */
	cfg.pml4_addr = 0x9100;
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, 0, &cfg, &regs,
						   &sregs),
			 -EINVAL);
	cfg.pml4_addr = k.start + 0x1000; /* over the kernel */
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, 0, &cfg, &regs,
						   &sregs),
			 -EINVAL);
	cfg.pml4_addr = 0;
	cfg.gdt_addr = k.end - 8;
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, 0, &cfg, &regs,
						   &sregs),
			 -EINVAL);
	cfg.gdt_addr = 0;
	cfg.pml4_addr = 64 * MiB - 4096;
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, 0, &cfg, &regs,
						   &sregs),
			 -ERANGE);
	k.kind = LINUX_LOADER_ELF_PVH;
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, 0, NULL, &regs,
						   &sregs),
			 -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_vcpu_pvh)
{
	static uint8_t img[TI_ELF_SIZE];
	struct guest_memory *m = mem64();
	struct linux_loader_kernel k;
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	ti_make_elf(img);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	memset(&sregs, 0, sizeof(sregs));
	ck_assert_int_eq(boot_vcpu_setup_pvh(m, &k, BOOT_PVH_START_INFO_ADDR,
					     NULL, &regs, &sregs),
			 0);
	ck_assert_uint_eq(regs.rip, TI_ELF_ENTRY);
	ck_assert_uint_eq(regs.rbx, BOOT_PVH_START_INFO_ADDR);
	ck_assert_uint_eq(sregs.cr0 & 0x80000001u, 1);
	ck_assert_uint_eq(sregs.cr4, 0);
	ck_assert_uint_eq(sregs.efer, 0);
	ck_assert_uint_eq(sregs.cs.db, 1);
	ck_assert_uint_eq(sregs.cs.l, 0);
	ck_assert_uint_eq(sregs.cs.limit, 0xffffffffu);
	ck_assert_uint_eq(sregs.tr.limit, 0x67);
	ck_assert_uint_eq(sregs.tr.present, 1);
	ck_assert_int_eq(boot_vcpu_setup_pvh(m, &k, 0,
					     &(struct boot_vcpu_config){
						     .gdt_addr = k.start},
					     &regs, &sregs),
			 -EINVAL);
	k.kind = LINUX_LOADER_BZIMAGE;
	ck_assert_int_eq(boot_vcpu_setup_pvh(m, &k, 0, NULL, &regs, &sregs),
			 -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_cpuid_normalize)
{
	struct kvm_cpuid_entry2 e[13];
	struct boot_cpuid_config cfg = {.apic_id = 3, .num_cpus = 6};
	size_t n = 0, nout;
	char sig[13] = {0};

	memset(e, 0, sizeof(e));
	e[n++] = (struct kvm_cpuid_entry2){
		.function = 1, .ebx = 0xff00ffff, .ecx = 1};
	e[n++] = (struct kvm_cpuid_entry2){
		.function = 4, .index = 0, .eax = 0x121}; /* L1 data */
	e[n++] = (struct kvm_cpuid_entry2){
		.function = 4, .index = 3, .eax = 0x163}; /* L3 unified */
	e[n++] = (struct kvm_cpuid_entry2){.function = 4, .index = 4};
	for (uint32_t i = 0; i < 3; i++)
		e[n++] = (struct kvm_cpuid_entry2){.function = 0xb, .index = i};
	e[n++] = (struct kvm_cpuid_entry2){.function = 0x80000008,
					   .ecx = 0xffff};
	e[n++] = (struct kvm_cpuid_entry2){
		.function = 0x8000001e, .ebx = 0xffffffff, .ecx = 0xffffffff};
	ck_assert_int_eq(boot_cpuid_normalize(e, n, n + 1, &cfg, &nout),
			 -ENOSPC);
	ck_assert_uint_eq(e[0].ebx, 0xff00ffff); /* unchanged */
	ck_assert_int_eq(boot_cpuid_normalize(e, n, 13, &cfg, &nout), 0);
	ck_assert_uint_eq(nout, n + 2);
	ck_assert_uint_eq(e[0].ebx, 0x0306ffffu);
	ck_assert_uint_eq(e[0].ecx, 1u | 1u << 31); /* no TSC deadline */
	ck_assert(e[0].edx & 1u << 28);
	ck_assert_uint_eq(e[1].eax, 0x121u | 5u << 26);
	ck_assert_uint_eq(e[2].eax, 0x163u | 5u << 26 | 5u << 14);
	ck_assert_uint_eq(e[3].eax, 0);
	ck_assert_uint_eq(e[4].edx, 3);
	ck_assert_uint_eq(e[4].ebx, 1);
	ck_assert_uint_eq(e[4].ecx, 0x100);
	ck_assert_uint_eq(e[5].eax, 3); /* 6 cpus need 3 bits */
	ck_assert_uint_eq(e[5].ebx, 6);
	ck_assert_uint_eq(e[5].ecx, 0x201);
	ck_assert_uint_eq(e[6].ecx, 2);
	ck_assert_uint_eq(e[6].ebx, 0);
	ck_assert_uint_eq(e[7].ecx, 0x0f00u | 3u << 12 | 5u);
	ck_assert_uint_eq(e[8].eax, 3);
	ck_assert_uint_eq(e[8].ebx, 0xffff0003u);
	ck_assert_uint_eq(e[8].ecx, 0xfffff800u);
	ck_assert_uint_eq(e[9].function, 0x40000000);
	ck_assert_uint_eq(e[9].eax, 0x40000001);
	memcpy(sig, &e[9].ebx, 4);
	memcpy(sig + 4, &e[9].ecx, 4);
	memcpy(sig + 8, &e[9].edx, 4);
	ck_assert_mem_eq(sig, "KVMKVMKVM\0\0\0", 12);
	ck_assert_uint_eq(e[10].function, 0x40000001);
	ck_assert_uint_eq(e[10].eax, BOOT_KVM_CLOCK_FEATURES);
	/* idempotent: nothing appended a second time, KVM's bits kept */
	e[10].eax |= 1u << 7;
	ck_assert_int_eq(boot_cpuid_normalize(e, nout, 13, &cfg, &nout), 0);
	ck_assert_uint_eq(nout, n + 2);
	ck_assert_uint_eq(e[10].eax, BOOT_KVM_CLOCK_FEATURES | 1u << 7);
	cfg.apic_id = 255;
	ck_assert_int_eq(boot_cpuid_normalize(e, nout, 13, &cfg, &nout),
			 -EINVAL);
	ck_assert_int_eq(boot_cpuid_normalize(e, 14, 13, &cfg, &nout), -EINVAL);
	/* NULL configuration: vCPU 0 of 1 */
	ck_assert_int_eq(boot_cpuid_normalize(e, nout, 13, NULL, &nout), 0);
	ck_assert_uint_eq(e[0].ebx >> 16, 0x0001);
	ck_assert(!(e[0].ecx & 1u << 24));
	/* the TSC deadline timer when asked for */
	cfg.apic_id = 0;
	cfg.tsc_deadline = true;
	ck_assert_int_eq(boot_cpuid_normalize(e, nout, 13, &cfg, &nout), 0);
	ck_assert_uint_eq(e[0].ecx, 1u | 1u << 24 | 1u << 31);
}
END_TEST

START_TEST(test_msrs_and_lapic)
{
	struct kvm_msr_entry e[BOOT_MSRS_COUNT];
	struct kvm_lapic_state s;
	uint32_t v;
	bool misc = false, mtrr = false;

	ck_assert_int_eq(boot_msrs_fill(e, BOOT_MSRS_COUNT - 1), -ENOSPC);
	ck_assert_int_eq(boot_msrs_fill(e, BOOT_MSRS_COUNT), BOOT_MSRS_COUNT);
	for (int i = 0; i < BOOT_MSRS_COUNT; i++) {
		if (e[i].index == 0x1a0) {
			ck_assert_uint_eq(e[i].data & 1, 1);
			misc = true;
		} else if (e[i].index == 0x2ff) {
			ck_assert_uint_eq(e[i].data, 0x806);
			mtrr = true;
		} else {
			ck_assert_uint_eq(e[i].data, 0);
		}
	}
	ck_assert(misc && mtrr);

	memset(&s, 0, sizeof(s));
	v = 0x10000 | 0x300; /* masked, some mode */
	memcpy(s.regs + 0x350, &v, 4);
	ck_assert_int_eq(boot_lapic_setup_lint(&s), 0);
	memcpy(&v, s.regs + 0x350, 4);
	ck_assert_uint_eq(v, 0x10700);
	memcpy(&v, s.regs + 0x360, 4);
	ck_assert_uint_eq(v, 0x400);
	ck_assert_int_eq(boot_lapic_setup_lint(NULL), -EINVAL);
}
END_TEST

static Suite *linux_loader_suite(void)
{
	Suite *s = suite_create("linux-loader");
	TCase *tc = tcase_create("loader");

	tcase_add_test(tc, test_bzimage_load);
	tcase_add_test(tc, test_bzimage_setup_sects_zero_means_4);
	tcase_add_test(tc, test_bzimage_relocation);
	tcase_add_test(tc, test_bzimage_unsupported);
	tcase_add_test(tc, test_bzimage_must_fit_ram);
	tcase_add_test(tc, test_hostile_bzimage_header_fields_vs_file_size);
	tcase_add_test(tc, test_elf_load_pvh);
	tcase_add_test(tc, test_elf_without_pvh_note);
	tcase_add_test(tc, test_hostile_elf_phdrs_vs_file_size);
	tcase_add_test(tc, test_initrd_placement);
	tcase_add_test(tc, test_initrd_below_pci_hole);
	tcase_add_test(tc, test_e820_pci_hole_and_reserved);
	tcase_add_test(tc, test_cmdline_builder);
	tcase_add_test(tc, test_boot_params);
	tcase_add_test(tc, test_hostile_placements_vs_ram_and_each_other);
	tcase_add_test(tc, test_pvh_start_info);
	tcase_add_test(tc, test_mptable_parsed_back);
	tcase_add_test(tc, test_vcpu_long_mode);
	tcase_add_test(tc, test_vcpu_pvh);
	tcase_add_test(tc, test_cpuid_normalize);
	tcase_add_test(tc, test_msrs_and_lapic);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(linux_loader_suite(), false);
}
