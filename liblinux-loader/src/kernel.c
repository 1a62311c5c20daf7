/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Kernel images: bzImage (Linux x86 boot protocol, 64-bit entry) and ELF
 * vmlinux with a PVH entry note; initrd placement.
 */
#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define BZ_HDR_OFF	   0x1f1u
#define BZ_BOOT_FLAG	   0xaa55u
#define BZ_MAGIC	   0x53726448u /* "HdrS" */
#define BZ_ENTRY64_OFF	   0x200u
#define BZ_DEFAULT_LOAD	   0x100000ull
#define BZ_DEFAULT_INITRD  0x37ffffffu
#define BZ_DEFAULT_CMDLINE 255u

#define ELF_MAX_PHDRS	      64u
#define XEN_NOTE_PHYS32_ENTRY 18u
#define PVH_CMDLINE_MAX	      2047u /* x86 COMMAND_LINE_SIZE - 1 */

#define LOW_MEM_END  0x100000ull
#define MAX_AVOID    64u
#define INITRD_ALIGN 4096ull

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int linux_loader_parse_bzimage(const void *image, size_t size,
			       const struct linux_loader_config *cfg,
			       struct linux_loader_kernel *out)
{
	const uint8_t *p = image;
	struct setup_header h;
	uint64_t setup_size, payload, need, addr, pref, end, hdr_end;
	unsigned int sects;

	if (!image || !out)
		return -EINVAL;
	if (size < BZ_HDR_OFF + sizeof(h))
		return -ENOEXEC;
	memcpy(&h, p + BZ_HDR_OFF, sizeof(h));
	/* The header ends where the jump at 0x200 lands; fields past its
	 * end do not exist in this kernel and read as zero. */
	hdr_end = 0x202u + p[0x201];
	if (hdr_end - BZ_HDR_OFF < sizeof(h))
		memset((uint8_t *)&h + (hdr_end - BZ_HDR_OFF), 0,
		       sizeof(h) - (hdr_end - BZ_HDR_OFF));
	if (h.boot_flag != BZ_BOOT_FLAG || h.header != BZ_MAGIC)
		return -ENOEXEC;
	if (h.version < 0x0206)
		return -ENOTSUP;
	if (!(h.loadflags & LOADED_HIGH))
		return -ENOTSUP;
	/* xloadflags exists from 2.12 on; older kernels have no 64-bit
	 * entry point. */
	if (h.version < 0x020c || !(h.xloadflags & XLF_KERNEL_64))
		return -ENOTSUP;

	sects = h.setup_sects ? h.setup_sects : 4;
	setup_size = ((uint64_t)sects + 1) * 512;
	if (setup_size >= size)
		return -EINVAL;
	if (hdr_end > setup_size)
		return -EINVAL;
	if (h.syssize == 0)
		return -EINVAL;
	payload = (uint64_t)h.syssize * 16;
	if (payload > size - setup_size)
		return -EINVAL;

	pref = h.version >= 0x020a ? h.pref_address : BZ_DEFAULT_LOAD;
	addr = cfg && cfg->load_addr ? cfg->load_addr : pref;
	if (addr != pref) {
		if (!h.relocatable_kernel)
			return -EINVAL;
		if (!is_pow2(h.kernel_alignment) || addr % h.kernel_alignment)
			return -EINVAL;
	}
	if (addr == 0)
		return -EINVAL;
	need = payload;
	if (h.version >= 0x020a && h.init_size > need)
		need = h.init_size;
	if (!ll_add(addr, need, &end))
		return -EOVERFLOW;
	/* The boot page tables map the low 4 GiB only. */
	if (end > LL_4G)
		return -ERANGE;

	memset(out, 0, sizeof(*out));
	out->kind = LINUX_LOADER_BZIMAGE;
	out->start = addr;
	out->end = end;
	out->entry = addr + BZ_ENTRY64_OFF;
	out->initrd_addr_max = h.initrd_addr_max ? h.initrd_addr_max
						 : BZ_DEFAULT_INITRD;
	out->cmdline_max = h.cmdline_size ? h.cmdline_size : BZ_DEFAULT_CMDLINE;
	out->hdr = h;
	return 0;
}

/* Bytes of the bzImage before the protected-mode kernel. */
static uint64_t bz_setup_size(const struct setup_header *h)
{
	unsigned int sects = h->setup_sects ? h->setup_sects : 4;

	return ((uint64_t)sects + 1) * 512;
}

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~3ull;
}

/* Walks the notes in [off, off + len) of the file; sets found and entry on the
 * PVH note. */
static int elf_find_pvh(const uint8_t *p, uint64_t off, uint64_t len,
			bool *found, uint64_t *entry)
{
	uint64_t pos = 0;

	/* Every iteration advances by at least 12 bytes. */
	while (len - pos >= 12) {
		const uint8_t *n = p + off + pos;
		uint32_t namesz = ll_get32(n), descsz = ll_get32(n + 4);
		uint32_t type = ll_get32(n + 8);
		uint64_t name_off = pos + 12;
		uint64_t desc_off = name_off + align4(namesz);
		uint64_t next = desc_off + align4(descsz);

		if (desc_off > len || next > len)
			return -EINVAL;
		if (namesz == 4 && !memcmp(p + off + name_off, "Xen", 4) &&
		    type == XEN_NOTE_PHYS32_ENTRY) {
			const uint8_t *d = p + off + desc_off;
			uint64_t v;

			if (descsz == 4)
				v = ll_get32(d);
			else if (descsz == 8)
				v = ll_get64(d);
			else
				return -EINVAL;
			if (v >= LL_4G)
				return -EINVAL;
			*found = true;
			*entry = v;
		}
		pos = next;
	}
	return 0;
}

struct elf_seg {
	uint64_t off, filesz, paddr, memsz;
};

static int elf_parse(const uint8_t *p, size_t size,
		     struct linux_loader_kernel *out, struct elf_seg *segs,
		     unsigned int *nsegs)
{
	Elf64_Ehdr eh;
	uint64_t phend, start = UINT64_MAX, end = 0, entry = 0;
	bool found = false;
	unsigned int n = 0;

	if (size < sizeof(eh))
		return -ENOEXEC;
	memcpy(&eh, p, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_machine != EM_X86_64 ||
	    eh.e_type != ET_EXEC)
		return -ENOEXEC;
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phnum > ELF_MAX_PHDRS)
		return -EINVAL;
	if (!ll_add(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr),
		    &phend) ||
	    phend > size)
		return -EINVAL;

	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		uint64_t fend, mend;

		memcpy(&ph, p + eh.e_phoff + (uint64_t)i * sizeof(ph),
		       sizeof(ph));
		if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE)
			continue;
		if (!ll_add(ph.p_offset, ph.p_filesz, &fend) || fend > size)
			return -EINVAL;
		if (ph.p_type == PT_NOTE) {
			int err = elf_find_pvh(p, ph.p_offset, ph.p_filesz,
					       &found, &entry);
			if (err)
				return err;
			continue;
		}
		if (ph.p_filesz > ph.p_memsz)
			return -EINVAL;
		if (ph.p_memsz == 0)
			continue;
		if (!ll_add(ph.p_paddr, ph.p_memsz, &mend))
			return -EOVERFLOW;
		for (unsigned int j = 0; j < n; j++)
			if (ll_overlap(ph.p_paddr, ph.p_memsz, segs[j].paddr,
				       segs[j].memsz))
				return -EINVAL;
		segs[n].off = ph.p_offset;
		segs[n].filesz = ph.p_filesz;
		segs[n].paddr = ph.p_paddr;
		segs[n].memsz = ph.p_memsz;
		n++;
		if (ph.p_paddr < start)
			start = ph.p_paddr;
		if (mend > end)
			end = mend;
	}
	if (n == 0)
		return -EINVAL;
	if (!found)
		return -ENOTSUP;
	if (entry < start || entry >= end)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->kind = LINUX_LOADER_ELF_PVH;
	out->start = start;
	out->end = end;
	out->entry = entry;
	out->initrd_addr_max = UINT32_MAX;
	out->cmdline_max = PVH_CMDLINE_MAX;
	*nsegs = n;
	return 0;
}

int linux_loader_parse_elf(const void *image, size_t size,
			   struct linux_loader_kernel *out)
{
	struct elf_seg segs[ELF_MAX_PHDRS];
	unsigned int n;

	if (!image || !out)
		return -EINVAL;
	return elf_parse(image, size, out, segs, &n);
}

static int load_elf(const struct guest_memory *m, const uint8_t *p, size_t size,
		    struct linux_loader_kernel *out)
{
	struct elf_seg segs[ELF_MAX_PHDRS];
	struct linux_loader_kernel k;
	unsigned int n;
	int err;

	err = elf_parse(p, size, &k, segs, &n);
	if (err)
		return err;
	for (unsigned int i = 0; i < n; i++)
		if (ll_in_ram(m, segs[i].paddr, segs[i].memsz))
			return -ERANGE;
	for (unsigned int i = 0; i < n; i++) {
		err = guest_memory_write(m, segs[i].paddr, p + segs[i].off,
					 segs[i].filesz);
		if (!err && segs[i].memsz > segs[i].filesz)
			err = guest_memory_fill(m,
						segs[i].paddr + segs[i].filesz,
						0,
						segs[i].memsz - segs[i].filesz);
		if (err)
			return err;
	}
	*out = k;
	return 0;
}

int linux_loader_load(const struct guest_memory *m, const void *image,
		      size_t size, const struct linux_loader_config *cfg,
		      struct linux_loader_kernel *out)
{
	const uint8_t *p = image;
	struct linux_loader_kernel k;
	int err;

	if (!m || !image || !out)
		return -EINVAL;
	if (size >= SELFMAG && !memcmp(p, ELFMAG, SELFMAG))
		return load_elf(m, p, size, out);
	err = linux_loader_parse_bzimage(image, size, cfg, &k);
	if (err)
		return err;
	if (ll_in_ram(m, k.start, k.end - k.start))
		return -ERANGE;
	err = guest_memory_write(m, k.start, p + bz_setup_size(&k.hdr),
				 (size_t)k.hdr.syssize * 16);
	if (err)
		return err;
	*out = k;
	return 0;
}

int linux_loader_load_initrd(const struct guest_memory *m,
			     const struct linux_loader_kernel *k,
			     const struct boot_range *avoid, size_t n_avoid,
			     const void *data, size_t size, guest_addr_t *addr)
{
	struct boot_range keep[MAX_AVOID + 2];
	size_t nkeep = 0, nreg;
	uint64_t hi;

	if (!m || !k || !data || !size || !addr || n_avoid > MAX_AVOID ||
	    (n_avoid && !avoid))
		return -EINVAL;
	keep[nkeep++] = (struct boot_range){0, LOW_MEM_END};
	keep[nkeep++] = (struct boot_range){k->start, k->end - k->start};
	for (size_t i = 0; i < n_avoid; i++) {
		uint64_t e;

		if (!ll_add(avoid[i].start, avoid[i].size, &e))
			return -EINVAL;
		keep[nkeep++] = avoid[i];
	}
	hi = k->initrd_addr_max < LL_4G - 1 ? k->initrd_addr_max : LL_4G - 1;
	hi += 1; /* exclusive */

	nreg = guest_memory_num_regions(m);
	for (size_t r = nreg; r-- > 0;) {
		const struct guest_region *reg = guest_memory_region_at(m, r);
		uint64_t rs = guest_region_gpa(reg);
		uint64_t re = rs + guest_region_size(reg);
		uint64_t top = re < hi ? re : hi;
		uint64_t a;

		if (top <= rs || top - rs < size)
			continue;
		a = (top - size) & ~(INITRD_ALIGN - 1);
		/* Each kept range pushes the candidate below its start at
		 * most once. */
		for (size_t tries = 0; tries <= nkeep && a >= rs; tries++) {
			size_t i;

			for (i = 0; i < nkeep; i++)
				if (ll_overlap(a, size, keep[i].start,
					       keep[i].size))
					break;
			if (i == nkeep) {
				int err = guest_memory_write(m, a, data, size);

				if (err)
					return err;
				*addr = a;
				return 0;
			}
			if (keep[i].start < size)
				break;
			a = (keep[i].start - size) & ~(INITRD_ALIGN - 1);
		}
	}
	return -ENOSPC;
}
