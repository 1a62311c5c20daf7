/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* e820 map, command line, zero page (boot_params) and PVH start info. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <asm/e820.h>

#include "internal.h"

_Static_assert(BOOT_E820_RAM == E820_RAM &&
		       BOOT_E820_RESERVED == E820_RESERVED &&
		       BOOT_E820_ACPI == E820_ACPI && BOOT_E820_NVS == E820_NVS,
	       "e820 types differ from <asm/e820.h>");
_Static_assert(sizeof(struct boot_pvh_start_info) == 56 &&
		       sizeof(struct boot_pvh_module) == 32 &&
		       sizeof(struct boot_pvh_memmap_entry) == 24,
	       "PVH structures differ from the Xen ABI");

#define MAX_RESERVED	  64u
#define PARAMS_BLOCK_SIZE 4096u
#define CMDLINE_CAP_MAX	  (1u << 20)
#define PVH_MODLIST_OFF	  64u
#define PVH_MEMMAP_OFF	  128u

_Static_assert(PVH_MEMMAP_OFF + BOOT_E820_MAX *
					sizeof(struct boot_pvh_memmap_entry) <=
		       PARAMS_BLOCK_SIZE,
	       "PVH memmap does not fit the start info block");

/* ------------------------------------------------------------------ e820 */

static void sort_u64(uint64_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;

		while (j > 0 && v[j - 1] > x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

int boot_e820_build(const struct guest_memory *m,
		    const struct boot_range *reserved, size_t n_reserved,
		    struct boot_e820_entry *out, size_t cap, size_t *n_out)
{
	uint64_t pts[2 * (BOOT_E820_MAX + MAX_RESERVED)];
	size_t npts = 0, nreg, n = 0;

	if (!m || !out || !n_out || n_reserved > MAX_RESERVED ||
	    (n_reserved && !reserved))
		return -EINVAL;
	nreg = guest_memory_num_regions(m);
	if (nreg > BOOT_E820_MAX)
		return -ENOSPC;
	for (size_t i = 0; i < nreg; i++) {
		const struct guest_region *r = guest_memory_region_at(m, i);

		pts[npts++] = guest_region_gpa(r);
		pts[npts++] = guest_region_gpa(r) + guest_region_size(r);
	}
	for (size_t i = 0; i < n_reserved; i++) {
		uint64_t e;

		if (!reserved[i].size ||
		    !ll_add(reserved[i].start, reserved[i].size, &e))
			return -EINVAL;
		pts[npts++] = reserved[i].start;
		pts[npts++] = e;
	}
	sort_u64(pts, npts);

	for (size_t i = 0; i + 1 < npts; i++) {
		uint64_t a = pts[i], b = pts[i + 1];
		uint32_t type = 0;

		if (a == b)
			continue;
		for (size_t j = 0; j < n_reserved; j++)
			if (ll_overlap(a, b - a, reserved[j].start,
				       reserved[j].size))
				type = BOOT_E820_RESERVED;
		if (!type && guest_memory_find_region(m, a))
			type = BOOT_E820_RAM;
		if (!type)
			continue;
		if (n && out[n - 1].type == type &&
		    out[n - 1].addr + out[n - 1].size == a) {
			out[n - 1].size += b - a;
			continue;
		}
		if (n == cap)
			return -ENOSPC;
		out[n].addr = a;
		out[n].size = b - a;
		out[n].type = type;
		n++;
	}
	*n_out = n;
	return 0;
}

/* ---------------------------------------------------------- command line */

struct boot_cmdline {
	size_t cap, len;
	char buf[];
};

int boot_cmdline_create(size_t capacity, struct boot_cmdline **out)
{
	struct boot_cmdline *c;

	if (!out || capacity == 0 || capacity > CMDLINE_CAP_MAX)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + capacity + 1);
	if (!c)
		return -ENOMEM;
	c->cap = capacity;
	*out = c;
	return 0;
}

void boot_cmdline_destroy(struct boot_cmdline *c)
{
	free(c);
}

static bool key_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || strchr("_-.,:/@[]", ch);
}

static bool value_char(char ch)
{
	return ch > ' ' && ch < 0x7f && ch != '"' && ch != '\'' && ch != '\\';
}

static int cmdline_append(struct boot_cmdline *c, const char *a, size_t alen,
			  const char *b, size_t blen, bool eq)
{
	size_t need = alen + blen + (eq ? 1 : 0) + (c->len ? 1 : 0);

	if (need > c->cap - c->len)
		return -ENOSPC;
	if (c->len)
		c->buf[c->len++] = ' ';
	memcpy(c->buf + c->len, a, alen);
	c->len += alen;
	if (eq)
		c->buf[c->len++] = '=';
	memcpy(c->buf + c->len, b, blen);
	c->len += blen;
	c->buf[c->len] = '\0';
	return 0;
}

int boot_cmdline_add(struct boot_cmdline *c, const char *key, const char *value)
{
	size_t klen, vlen = 0;

	if (!c || !key || !key[0])
		return -EINVAL;
	klen = strnlen(key, c->cap + 1);
	if (klen > c->cap)
		return -ENOSPC;
	for (size_t i = 0; i < klen; i++)
		if (!key_char(key[i]))
			return -EINVAL;
	if (value) {
		vlen = strnlen(value, c->cap + 1);
		if (vlen > c->cap)
			return -ENOSPC;
		for (size_t i = 0; i < vlen; i++)
			if (!value_char(value[i]))
				return -EINVAL;
	}
	return cmdline_append(c, key, klen, value ? value : "", vlen, !!value);
}

int boot_cmdline_add_raw(struct boot_cmdline *c, const char *text)
{
	size_t len;
	unsigned int quotes = 0;

	if (!c || !text)
		return -EINVAL;
	len = strnlen(text, c->cap + 1);
	if (len > c->cap)
		return -ENOSPC;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch < ' ' || ch >= 0x7f)
			return -EINVAL;
		if (ch == '"')
			quotes++;
	}
	if (quotes % 2)
		return -EINVAL;
	if (len == 0)
		return 0;
	return cmdline_append(c, text, len, "", 0, false);
}

const char *boot_cmdline_str(const struct boot_cmdline *c)
{
	return c ? c->buf : "";
}

size_t boot_cmdline_len(const struct boot_cmdline *c)
{
	return c ? c->len : 0;
}

/* ------------------------------------------------- zero page and PVH */

struct layout {
	uint64_t params, cmdline, cmdline_len, initrd, initrd_size;
	const char *line;
	struct boot_e820_entry e820[BOOT_E820_MAX];
	size_t ne820;
};

static int layout_check(const struct guest_memory *m,
			const struct linux_loader_kernel *k,
			const struct boot_config *cfg, guest_addr_t def_params,
			struct layout *l)
{
	static const struct boot_config none;
	struct boot_range r[4];
	int err;

	if (!cfg)
		cfg = &none;
	l->params = cfg->params_addr ? cfg->params_addr : def_params;
	l->cmdline = cfg->cmdline_addr ? cfg->cmdline_addr : BOOT_CMDLINE_ADDR;
	l->line = cfg->cmdline ? cfg->cmdline : "";
	l->cmdline_len = strnlen(l->line, (size_t)k->cmdline_max + 1);
	if (l->cmdline_len > k->cmdline_max)
		return -E2BIG;
	l->initrd = cfg->initrd_addr;
	l->initrd_size = cfg->initrd_size;

	r[0] = (struct boot_range){l->params, PARAMS_BLOCK_SIZE};
	r[1] = (struct boot_range){l->cmdline, l->cmdline_len + 1};
	r[2] = (struct boot_range){l->initrd, l->initrd_size};
	r[3] = (struct boot_range){k->start, k->end - k->start};
	for (int i = 0; i < 3; i++) {
		uint64_t e;

		if (!r[i].size)
			continue;
		if (!ll_add(r[i].start, r[i].size, &e) || e > LL_4G ||
		    ll_in_ram(m, r[i].start, r[i].size))
			return -ERANGE;
		for (int j = i + 1; j < 4; j++)
			if (ll_overlap(r[i].start, r[i].size, r[j].start,
				       r[j].size))
				return -EINVAL;
	}
	if (l->initrd_size &&
	    l->initrd + l->initrd_size - 1 > k->initrd_addr_max)
		return -EINVAL;

	if (cfg->e820) {
		if (cfg->e820_entries > BOOT_E820_MAX)
			return -EINVAL;
		memcpy(l->e820, cfg->e820,
		       cfg->e820_entries * sizeof(l->e820[0]));
		l->ne820 = cfg->e820_entries;
	} else {
		err = boot_e820_build(m, NULL, 0, l->e820, BOOT_E820_MAX,
				      &l->ne820);
		if (err)
			return err;
	}
	return 0;
}

int boot_params_setup(const struct guest_memory *m,
		      const struct linux_loader_kernel *k,
		      const struct boot_config *cfg)
{
	struct boot_params *bp;
	struct layout l;
	int err;

	if (!m || !k || k->kind != LINUX_LOADER_BZIMAGE)
		return -EINVAL;
	err = layout_check(m, k, cfg, BOOT_ZERO_PAGE_ADDR, &l);
	if (err)
		return err;
	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return -ENOMEM;
	bp->hdr = k->hdr;
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.loadflags |= CAN_USE_HEAP;
	bp->hdr.loadflags &= (uint8_t)~KEEP_SEGMENTS;
	bp->hdr.heap_end_ptr = 0xfe00;
	/* Fields the loader owns: whatever the image carried is dropped. */
	bp->hdr.ramdisk_image = 0;
	bp->hdr.ramdisk_size = 0;
	bp->hdr.setup_data = 0;
	bp->hdr.hardware_subarch = 0; /* X86_SUBARCH_PC */
	bp->hdr.hardware_subarch_data = 0;
	bp->hdr.cmd_line_ptr = (uint32_t)l.cmdline;
	bp->ext_cmd_line_ptr = (uint32_t)(l.cmdline >> 32);
	bp->hdr.code32_start = (uint32_t)k->start;
	if (l.initrd_size) {
		bp->hdr.ramdisk_image = (uint32_t)l.initrd;
		bp->hdr.ramdisk_size = (uint32_t)l.initrd_size;
		bp->ext_ramdisk_image = (uint32_t)(l.initrd >> 32);
		bp->ext_ramdisk_size = (uint32_t)(l.initrd_size >> 32);
	}
	if (k->hdr.version >= 0x020e && cfg)
		bp->acpi_rsdp_addr = cfg->acpi_rsdp;
	bp->e820_entries = (uint8_t)l.ne820;
	memcpy(bp->e820_table, l.e820, l.ne820 * sizeof(l.e820[0]));

	err = guest_memory_write(m, l.cmdline, l.line, l.cmdline_len + 1);
	if (!err)
		err = guest_memory_write(m, l.params, bp, sizeof(*bp));
	free(bp);
	return err;
}

int boot_pvh_setup(const struct guest_memory *m,
		   const struct linux_loader_kernel *k,
		   const struct boot_config *cfg)
{
	uint8_t *blk;
	struct boot_pvh_start_info si;
	struct boot_pvh_module mod;
	struct layout l;
	int err;

	if (!m || !k || k->kind != LINUX_LOADER_ELF_PVH)
		return -EINVAL;
	err = layout_check(m, k, cfg, BOOT_PVH_START_INFO_ADDR, &l);
	if (err)
		return err;
	blk = calloc(1, PARAMS_BLOCK_SIZE);
	if (!blk)
		return -ENOMEM;
	memset(&si, 0, sizeof(si));
	si.magic = BOOT_PVH_START_MAGIC;
	si.version = BOOT_PVH_START_VERSION;
	si.cmdline_paddr = l.cmdline;
	si.rsdp_paddr = cfg ? cfg->acpi_rsdp : 0;
	si.memmap_paddr = l.params + PVH_MEMMAP_OFF;
	si.memmap_entries = (uint32_t)l.ne820;
	if (l.initrd_size) {
		memset(&mod, 0, sizeof(mod));
		mod.paddr = l.initrd;
		mod.size = l.initrd_size;
		memcpy(blk + PVH_MODLIST_OFF, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = l.params + PVH_MODLIST_OFF;
	}
	memcpy(blk, &si, sizeof(si));
	for (size_t i = 0; i < l.ne820; i++) {
		struct boot_pvh_memmap_entry e = {
			.addr = l.e820[i].addr,
			.size = l.e820[i].size,
			.type = l.e820[i].type,
		};
		memcpy(blk + PVH_MEMMAP_OFF + i * sizeof(e), &e, sizeof(e));
	}
	err = guest_memory_write(m, l.cmdline, l.line, l.cmdline_len + 1);
	if (!err)
		err = guest_memory_write(m, l.params, blk, PARAMS_BLOCK_SIZE);
	free(blk);
	return err;
}
