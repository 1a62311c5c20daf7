/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * ACPI tables of liblinux-loader parsed back from guest memory: RSDP
 * (both checksums), XSDT, FADT (hardware-reduced, sleep registers), DSDT
 * (the AML walked structurally: every PkgLength consistent with its
 * parent, every object known, resource templates well formed), MADT and
 * MCFG.  The parser here is written for the test and knows only the AML
 * the library emits; anything else fails the test.
 */
#include <errno.h>
#include <stdio.h>

#include <cvmm/linux-loader/acpi.h>

#include "cvmm-check.h"
#include "images.h"

#define MiB (1ull << 20)

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)g16(p) | (uint32_t)g16(p + 2) << 16;
}

static uint64_t g64(const uint8_t *p)
{
	return (uint64_t)g32(p) | (uint64_t)g32(p + 4) << 32;
}

/* A table at @gpa: checks signature, length, checksum, revision; returns
 * a malloc'd copy. */
static uint8_t *table(struct guest_memory *m, uint64_t gpa, const char *sig,
		      uint8_t rev, uint32_t *len)
{
	uint8_t hdr[36], *t;

	ck_assert_int_eq(guest_memory_read(m, gpa, hdr, 36), 0);
	ck_assert_mem_eq(hdr, sig, 4);
	*len = g32(hdr + 4);
	ck_assert_uint_ge(*len, 36);
	ck_assert_uint_le(*len, 0x20000);
	ck_assert_uint_eq(hdr[8], rev);
	t = malloc(*len);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(guest_memory_read(m, gpa, t, *len), 0);
	ck_assert_uint_eq(sum8(t, *len), 0);
	ck_assert_mem_eq(t + 10, "CVMM  ", 6);
	return t;
}

/* ------------------------------------------------------------ AML walker */

struct aml_obj {
	char path[40];
	char kind; /* 'i' integer, 's' string, 'b' buffer, 'p' package */
	uint64_t ival;
	const uint8_t *buf;
	size_t blen;
	unsigned int count;
	uint64_t elems[8];
	/* a package of packages of integers (_PRT): up to 16 x 4 */
	unsigned int nsub;
	uint64_t sub[16][4];
};

struct aml_walk {
	struct aml_obj objs[64];
	unsigned int n;
	unsigned int devices, scopes;
};

static size_t pkglen(const uint8_t *p, const uint8_t *end, size_t *len)
{
	unsigned int n;

	ck_assert(p < end);
	n = p[0] >> 6;
	ck_assert((size_t)(end - p) > n);
	if (n == 0) {
		*len = p[0] & 0x3f;
		return 1;
	}
	ck_assert_uint_eq(p[0] & 0x30, 0);
	*len = p[0] & 0xf;
	for (unsigned int i = 1; i <= n; i++)
		*len |= (size_t)p[i] << (4 + 8 * (i - 1));
	/* the shortest encoding is used */
	ck_assert_uint_ge(*len, n == 1 ? 0x40 : n == 2 ? 0x1000 : 0x100000);
	return n + 1;
}

static const uint8_t *namestring(const uint8_t *p, const uint8_t *end,
				 char *out, size_t cap)
{
	unsigned int segs = 1;
	size_t o = 0;

	ck_assert(p < end);
	if (*p == '\\') {
		out[o++] = '\\';
		p++;
	}
	ck_assert(p < end);
	if (*p == 0x2e) {
		segs = 2;
		p++;
	} else if (*p == 0x2f) {
		segs = p[1];
		p += 2;
	}
	ck_assert((size_t)(end - p) >= 4 * segs);
	for (unsigned int s = 0; s < segs; s++) {
		for (int i = 0; i < 4; i++) {
			char c = (char)p[i];

			ck_assert((c >= 'A' && c <= 'Z') || c == '_' ||
				  (c >= '0' && c <= '9' && i > 0));
		}
		ck_assert_uint_lt(o + 5, cap);
		if (s)
			out[o++] = '.';
		memcpy(out + o, p, 4);
		o += 4;
		p += 4;
	}
	out[o] = 0;
	return p;
}

static const uint8_t *integer(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	ck_assert(p < end);
	switch (*p) {
	case 0x00:
		*v = 0;
		return p + 1;
	case 0x01:
		*v = 1;
		return p + 1;
	case 0x0a:
		ck_assert(end - p >= 2);
		*v = p[1];
		return p + 2;
	case 0x0b:
		ck_assert(end - p >= 3);
		*v = g16(p + 1);
		return p + 3;
	case 0x0c:
		ck_assert(end - p >= 5);
		*v = g32(p + 1);
		return p + 5;
	case 0x0e:
		ck_assert(end - p >= 9);
		*v = g64(p + 1);
		return p + 9;
	default:
		ck_abort_msg("not an integer: 0x%02x", *p);
	}
	return NULL;
}

static const uint8_t *dataobj(const uint8_t *p, const uint8_t *end,
			      struct aml_obj *o)
{
	size_t len, n;
	const uint8_t *body_end;

	ck_assert(p < end);
	if (*p == 0x0d) {
		const uint8_t *z = memchr(p + 1, 0, (size_t)(end - p - 1));

		ck_assert_ptr_nonnull(z);
		o->kind = 's';
		o->buf = p + 1;
		o->blen = (size_t)(z - p - 1);
		return z + 1;
	}
	if (*p == 0x12 || *p == 0x11) {
		uint8_t op = *p++;

		n = pkglen(p, end, &len);
		ck_assert_uint_le(len, (size_t)(end - p));
		body_end = p + len;
		p += n;
		if (op == 0x12) {
			o->kind = 'p';
			ck_assert(p < body_end);
			o->count = *p++;
			for (unsigned int i = 0; i < o->count; i++) {
				struct aml_obj e;

				memset(&e, 0, sizeof(e));
				p = dataobj(p, body_end, &e);
				if (e.kind == 'i' && i < 8)
					o->elems[i] = e.ival;
				if (e.kind == 'p') {
					ck_assert_uint_lt(o->nsub, 16);
					ck_assert_uint_eq(e.count, 4);
					memcpy(o->sub[o->nsub++], e.elems,
					       sizeof(o->sub[0]));
				}
			}
		} else {
			uint64_t size;

			o->kind = 'b';
			p = integer(p, body_end, &size);
			ck_assert_uint_eq(size, (size_t)(body_end - p));
			o->buf = p;
			o->blen = (size_t)size;
			p = body_end;
		}
		ck_assert_ptr_eq(p, body_end);
		return p;
	}
	o->kind = 'i';
	return integer(p, end, &o->ival);
}

/* @out (40 bytes) = @name if absolute, else @scope "." @name. */
static void join(char *out, const char *scope, const char *name)
{
	size_t sl = strlen(scope), nl = strlen(name);

	if (name[0] == '\\') {
		ck_assert_uint_lt(nl, 40);
		memcpy(out, name, nl + 1);
		return;
	}
	ck_assert_uint_lt(sl + nl + 1, 40);
	memcpy(out, scope, sl);
	if (sl && scope[sl - 1] != '\\')
		out[sl++] = '.';
	memcpy(out + sl, name, nl + 1);
}

static void termlist(struct aml_walk *w, const uint8_t *p, const uint8_t *end,
		     const char *scope, int depth)
{
	ck_assert_int_lt(depth, 8);
	while (p < end) {
		char name[40], path[40];
		size_t len, n;
		const uint8_t *body_end;
		uint8_t op = *p++;

		if (op == 0x08) {
			struct aml_obj *o;

			ck_assert_uint_lt(w->n, 64);
			o = &w->objs[w->n++];
			p = namestring(p, end, name, sizeof(name));
			join(o->path, scope, name);
			p = dataobj(p, end, o);
			continue;
		}
		if (op == 0x10 || (op == 0x5b && p < end && *p == 0x82)) {
			if (op == 0x5b) {
				p++;
				w->devices++;
			} else {
				w->scopes++;
			}
			n = pkglen(p, end, &len);
			ck_assert_uint_le(len, (size_t)(end - p));
			body_end = p + len;
			p = namestring(p + n, body_end, name, sizeof(name));
			join(path, scope, name);
			termlist(w, p, body_end, path, depth + 1);
			p = body_end;
			continue;
		}
		ck_abort_msg("unexpected AML opcode 0x%02x", op);
	}
	ck_assert_ptr_eq(p, end);
}

static const struct aml_obj *find(const struct aml_walk *w, const char *path)
{
	for (unsigned int i = 0; i < w->n; i++)
		if (!strcmp(w->objs[i].path, path))
			return &w->objs[i];
	return NULL;
}

static uint32_t eisaid(const char *id)
{
	uint32_t v = ((uint32_t)(id[0] - 0x40) << 26) |
		     ((uint32_t)(id[1] - 0x40) << 21) |
		     ((uint32_t)(id[2] - 0x40) << 16) |
		     (uint32_t)strtoul(id + 3, NULL, 16);

	return __builtin_bswap32(v);
}

/* Resource template: descriptors walked to the end tag; each found one is
 * counted by tag. */
struct res {
	unsigned int word_bus, word_io, dword_mem, qword_mem, io, irq;
	uint64_t bus_min, bus_max, io_min, io_max, m32_min, m32_max, m64_min,
		m64_max, q_flags, fixed_io, irq_mask;
};

static void resources(const struct aml_obj *o, struct res *r)
{
	const uint8_t *p = o->buf, *end = o->buf + o->blen;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(o->kind, 'b');
	while (p < end) {
		size_t len;

		if (p[0] & 0x80) {
			ck_assert(end - p >= 3);
			len = 3 + g16(p + 1);
			ck_assert_uint_le(len, (size_t)(end - p));
			switch (p[0]) {
			case 0x88:
				ck_assert_uint_eq(len, 16);
				ck_assert_uint_eq(g16(p + 14),
						  g16(p + 10) - g16(p + 8) + 1);
				if (p[3] == 2) {
					r->word_bus++;
					r->bus_min = g16(p + 8);
					r->bus_max = g16(p + 10);
				} else {
					ck_assert_uint_eq(p[3], 1);
					r->word_io++;
					r->io_min = g16(p + 8);
					r->io_max = g16(p + 10);
				}
				break;
			case 0x87:
				ck_assert_uint_eq(len, 26);
				r->dword_mem++;
				r->m32_min = g32(p + 10);
				r->m32_max = g32(p + 14);
				ck_assert_uint_eq(g32(p + 22),
						  r->m32_max - r->m32_min + 1);
				break;
			case 0x8a:
				ck_assert_uint_eq(len, 46);
				r->qword_mem++;
				r->m64_min = g64(p + 14);
				r->m64_max = g64(p + 22);
				r->q_flags = p[4];
				ck_assert_uint_eq(g64(p + 38),
						  r->m64_max - r->m64_min + 1);
				break;
			default:
				ck_abort_msg("large tag 0x%02x", p[0]);
			}
		} else {
			uint8_t tag = (p[0] >> 3) & 0xf;

			len = 1 + (p[0] & 7);
			ck_assert_uint_le(len, (size_t)(end - p));
			if (tag == 0xf) { /* end tag */
				ck_assert_uint_eq(len, 2);
				ck_assert_ptr_eq(p + len, end);
				return;
			}
			if (tag == 0x8) {
				ck_assert_uint_eq(len, 8);
				r->io++;
				r->fixed_io = g16(p + 2);
				ck_assert_uint_eq(g16(p + 4), r->fixed_io);
			} else if (tag == 0x4) {
				ck_assert_uint_eq(len, 3);
				r->irq++;
				r->irq_mask = g16(p + 1);
			} else {
				ck_abort_msg("small tag 0x%x", tag);
			}
		}
		p += len;
	}
	ck_abort_msg("no end tag");
}

/* ----------------------------------------------------------------- tests */

static struct guest_memory *mem(void)
{
	static const uint64_t r[][2] = {{0, 16 * MiB}};
	struct guest_memory *m = ti_mem(r, 1);

	ck_assert_ptr_nonnull(m);
	return m;
}

START_TEST(test_acpi_tables_parsed_back)
{
	struct guest_memory *m = mem();
	struct acpi_tables_config c = {
		.num_cpus = 4,
		.sleep_control = {ACPI_GAS_IO, 8, 0x3c0},
		.sleep_status = {ACPI_GAS_IO, 8, 0x3c1},
		.reset_reg = {ACPI_GAS_IO, 8, 0xcf9},
		.reset_value = 6,
		.pci = true,
		.pci_bus_count = 0,
		.ecam_base = 0xe0000000,
		.io_base = 0xd000,
		.io_size = 0x3000,
		.mmio32_base = 0xc0000000,
		.mmio32_size = 0x20000000,
		.mmio64_base = 0x8000000000ull,
		.mmio64_size = 0x4000000000ull,
		.com1 = true,
		.pci_irqs = (const struct boot_pci_irq[]){{1, 0, 16, 0},
							  {2, 1, 17, 0},
							  {31, 3, 23, 0}},
		.n_pci_irqs = 3,
	};
	uint8_t rsdp[36], *xsdt, *fadt, *dsdt, *madt, *mcfg;
	uint32_t xl, fl, dl, ml, cl;
	uint64_t addr, size, dsdt_addr;
	struct aml_walk w;
	const struct aml_obj *o;
	struct res r;

	ck_assert_int_eq(acpi_tables_setup(m, &c, &addr, &size), 0);
	ck_assert_uint_eq(addr, 0xe0000);
	ck_assert_uint_le(size, 0x20000);

	/* RSDP */
	ck_assert_int_eq(guest_memory_read(m, addr, rsdp, 36), 0);
	ck_assert_mem_eq(rsdp, "RSD PTR ", 8);
	ck_assert_uint_eq(sum8(rsdp, 20), 0);
	ck_assert_uint_eq(sum8(rsdp, 36), 0);
	ck_assert_uint_eq(rsdp[15], 2);
	ck_assert_uint_eq(g32(rsdp + 20), 36);

	/* XSDT: FADT, MADT, MCFG */
	xsdt = table(m, g64(rsdp + 24), "XSDT", 1, &xl);
	ck_assert_uint_eq(xl, 36 + 3 * 8);
	fadt = table(m, g64(xsdt + 36), "FACP", 6, &fl);
	madt = table(m, g64(xsdt + 44), "APIC", 5, &ml);
	mcfg = table(m, g64(xsdt + 52), "MCFG", 1, &cl);

	/* FADT */
	ck_assert_uint_eq(fl, 276);
	ck_assert(g32(fadt + 112) & (1u << 20)); /* HW_REDUCED_ACPI */
	ck_assert(g32(fadt + 112) & (1u << 10)); /* RESET_REG_SUP */
	ck_assert_uint_eq(g16(fadt + 109), 3);
	ck_assert_uint_eq(fadt[131], 5);
	dsdt_addr = g64(fadt + 140);
	ck_assert_uint_eq(g32(fadt + 40), dsdt_addr);
	ck_assert_uint_eq(fadt[244], ACPI_GAS_IO);
	ck_assert_uint_eq(fadt[245], 8);
	ck_assert_uint_eq(g64(fadt + 248), 0x3c0);
	ck_assert_uint_eq(g64(fadt + 260), 0x3c1);
	ck_assert_uint_eq(g64(fadt + 120), 0xcf9);
	ck_assert_uint_eq(fadt[128], 6);
	ck_assert_uint_eq(g32(fadt + 56), 0); /* no PM1 blocks */

	/* DSDT */
	dsdt = table(m, dsdt_addr, "DSDT", 2, &dl);
	memset(&w, 0, sizeof(w));
	termlist(&w, dsdt + 36, dsdt + dl, "\\", 0);
	ck_assert_uint_eq(w.devices, 3);
	ck_assert_uint_eq(w.scopes, 1);
	o = find(&w, "\\_S5_");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(o->kind, 'p');
	ck_assert_uint_eq(o->count, 4);
	ck_assert_uint_eq(o->elems[0], 5);
	ck_assert_uint_eq((o->elems[0] << 2) | ACPI_SLP_EN,
			  ACPI_SLEEP_CONTROL_S5);
	o = find(&w, "\\_SB_.PCI0._HID");
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->ival, eisaid("PNP0A08"));
	ck_assert_uint_eq(o->ival, 0x080ad041u);
	o = find(&w, "\\_SB_.PCI0._CID");
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->ival, 0x030ad041u);
	ck_assert_ptr_nonnull(find(&w, "\\_SB_.PCI0._SEG"));
	ck_assert_ptr_nonnull(find(&w, "\\_SB_.PCI0._BBN"));
	ck_assert_ptr_nonnull(find(&w, "\\_SB_.PCI0._UID"));
	o = find(&w, "\\_SB_.PCI0._CRS");
	ck_assert_ptr_nonnull(o);
	resources(o, &r);
	ck_assert_uint_eq(r.word_bus, 1);
	ck_assert_uint_eq(r.bus_min, 0);
	ck_assert_uint_eq(r.bus_max, 255);
	ck_assert_uint_eq(r.word_io, 1);
	ck_assert_uint_eq(r.io_min, 0xd000);
	ck_assert_uint_eq(r.io_max, 0xffff);
	ck_assert_uint_eq(r.io, 1);
	ck_assert_uint_eq(r.fixed_io, 0xcf8);
	ck_assert_uint_eq(r.dword_mem, 1);
	ck_assert_uint_eq(r.m32_min, 0xc0000000);
	ck_assert_uint_eq(r.m32_max, 0xdfffffff);
	ck_assert_uint_eq(r.qword_mem, 1);
	ck_assert_uint_eq(r.m64_min, 0x8000000000ull);
	ck_assert_uint_eq(r.m64_max, 0xbfffffffffull);
	ck_assert_uint_eq(r.q_flags & 1, 0); /* producer */
	o = find(&w, "\\_SB_.PCI0._PRT");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(o->kind, 'p');
	ck_assert_uint_eq(o->count, 3);
	ck_assert_uint_eq(o->nsub, 3);
	ck_assert_uint_eq(o->sub[0][0], 0x1ffff);
	ck_assert_uint_eq(o->sub[0][1], 0);
	ck_assert_uint_eq(o->sub[0][2], 0);
	ck_assert_uint_eq(o->sub[0][3], 16);
	ck_assert_uint_eq(o->sub[1][0], 0x2ffff);
	ck_assert_uint_eq(o->sub[1][1], 1);
	ck_assert_uint_eq(o->sub[1][3], 17);
	ck_assert_uint_eq(o->sub[2][0], 0x1fffff);
	ck_assert_uint_eq(o->sub[2][1], 3);
	ck_assert_uint_eq(o->sub[2][3], 23);
	o = find(&w, "\\_SB_.MBRD._CRS");
	ck_assert_ptr_nonnull(o);
	resources(o, &r);
	ck_assert_uint_eq(r.m64_min, 0xe0000000);
	ck_assert_uint_eq(r.m64_max, 0xefffffff);
	ck_assert_uint_eq(r.q_flags & 1, 1); /* consumer */
	o = find(&w, "\\_SB_.COM1._HID");
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->ival, eisaid("PNP0501"));
	o = find(&w, "\\_SB_.COM1._CRS");
	ck_assert_ptr_nonnull(o);
	resources(o, &r);
	ck_assert_uint_eq(r.fixed_io, 0x3f8);
	ck_assert_uint_eq(r.irq_mask, 1u << 4);

	/* MADT */
	{
		const uint8_t *q = madt + 44, *end = madt + ml;
		unsigned int lapics = 0, ioapics = 0, isos = 0, nmis = 0;

		ck_assert_uint_eq(g32(madt + 36), 0xfee00000u);
		while (q < end) {
			ck_assert_uint_ge(q[1], 2);
			ck_assert_uint_le(q[1], (size_t)(end - q));
			switch (q[0]) {
			case 0:
				ck_assert_uint_eq(q[1], 8);
				ck_assert_uint_eq(q[3], lapics);
				ck_assert_uint_eq(g32(q + 4), 1);
				lapics++;
				break;
			case 1:
				ck_assert_uint_eq(q[1], 12);
				ck_assert_uint_eq(q[2], 4);
				ck_assert_uint_eq(g32(q + 4), 0xfec00000u);
				ck_assert_uint_eq(g32(q + 8), 0);
				ioapics++;
				break;
			case 2:
				ck_assert_uint_eq(q[1], 10);
				ck_assert_uint_eq(q[3], 0);
				ck_assert_uint_eq(g32(q + 4), 2);
				isos++;
				break;
			case 4:
				ck_assert_uint_eq(q[1], 6);
				ck_assert_uint_eq(q[5], 1);
				nmis++;
				break;
			default:
				ck_abort_msg("MADT type %u", q[0]);
			}
			q += q[1];
		}
		ck_assert_ptr_eq(q, end);
		ck_assert_uint_eq(lapics, 4);
		ck_assert_uint_eq(ioapics, 1);
		ck_assert_uint_eq(isos, 1);
		ck_assert_uint_eq(nmis, 1);
	}

	/* MCFG */
	ck_assert_uint_eq(cl, 36 + 8 + 16);
	ck_assert_uint_eq(g64(mcfg + 44), 0xe0000000);
	ck_assert_uint_eq(g16(mcfg + 52), 0);
	ck_assert_uint_eq(mcfg[54], 0);
	ck_assert_uint_eq(mcfg[55], 255);

	free(xsdt);
	free(fadt);
	free(dsdt);
	free(madt);
	free(mcfg);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_acpi_minimal_and_sci)
{
	struct guest_memory *m = mem();
	struct acpi_tables_config c = {.num_cpus = 1,
				       .sci_irq = 9,
				       .no_irq0_override = true,
				       .addr = 0x80000};
	uint8_t rsdp[36], *xsdt, *fadt, *dsdt, *madt;
	uint32_t xl, fl, dl, ml;
	uint64_t addr;
	struct aml_walk w;

	ck_assert_int_eq(acpi_tables_setup(m, &c, &addr, NULL), 0);
	ck_assert_uint_eq(addr, 0x80000);
	ck_assert_int_eq(guest_memory_read(m, addr, rsdp, 36), 0);
	xsdt = table(m, g64(rsdp + 24), "XSDT", 1, &xl);
	ck_assert_uint_eq(xl, 36 + 2 * 8); /* no MCFG without PCI */
	fadt = table(m, g64(xsdt + 36), "FACP", 6, &fl);
	ck_assert_uint_eq(g16(fadt + 46), 9);
	ck_assert_uint_eq(g64(fadt + 248), 0); /* no sleep register */
	ck_assert_uint_eq(g32(fadt + 112) & (1u << 10), 0);
	dsdt = table(m, g64(fadt + 140), "DSDT", 2, &dl);
	memset(&w, 0, sizeof(w));
	termlist(&w, dsdt + 36, dsdt + dl, "\\", 0);
	ck_assert_uint_eq(w.devices, 0);
	ck_assert_ptr_nonnull(find(&w, "\\_S5_"));
	madt = table(m, g64(xsdt + 44), "APIC", 5, &ml);
	/* 1 LAPIC, IOAPIC, the SCI override (level, high), LAPIC NMI */
	ck_assert_uint_eq(ml, 44 + 8 + 12 + 10 + 6);
	ck_assert_uint_eq(madt[44 + 8 + 12], 2);
	ck_assert_uint_eq(madt[44 + 8 + 12 + 3], 9);
	ck_assert_uint_eq(g16(madt + 44 + 8 + 12 + 8), 0x000d);
	free(xsdt);
	free(fadt);
	free(dsdt);
	free(madt);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_acpi_large_dsdt_pkglength)
{
	/* 254 CPUs make a large MADT; the DSDT's scope grows past 63 bytes,
	 * so multi-byte PkgLengths are exercised and checked. */
	struct guest_memory *m = mem();
	struct acpi_tables_config c = {.num_cpus = 254,
				       .pci = true,
				       .com1 = true,
				       .pci_bus_start = 2,
				       .pci_bus_count = 8,
				       .pci_segment = 1};
	uint8_t rsdp[36], *xsdt, *fadt, *dsdt, *madt, *mcfg;
	uint32_t xl, fl, dl, ml, cl;
	uint64_t addr;
	struct aml_walk w;
	const struct aml_obj *o;
	struct res r;

	ck_assert_int_eq(acpi_tables_setup(m, &c, &addr, NULL), 0);
	ck_assert_int_eq(guest_memory_read(m, addr, rsdp, 36), 0);
	xsdt = table(m, g64(rsdp + 24), "XSDT", 1, &xl);
	fadt = table(m, g64(xsdt + 36), "FACP", 6, &fl);
	madt = table(m, g64(xsdt + 44), "APIC", 5, &ml);
	ck_assert_uint_eq(ml, 44 + 8 * 254 + 12 + 10 + 6);
	mcfg = table(m, g64(xsdt + 52), "MCFG", 1, &cl);
	ck_assert_uint_eq(g16(mcfg + 52), 1);
	ck_assert_uint_eq(mcfg[54], 2);
	ck_assert_uint_eq(mcfg[55], 9);
	dsdt = table(m, g64(fadt + 140), "DSDT", 2, &dl);
	memset(&w, 0, sizeof(w));
	termlist(&w, dsdt + 36, dsdt + dl, "\\", 0);
	o = find(&w, "\\_SB_.PCI0._BBN");
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->ival, 2);
	o = find(&w, "\\_SB_.PCI0._SEG");
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->ival, 1);
	o = find(&w, "\\_SB_.PCI0._CRS");
	resources(o, &r);
	ck_assert_uint_eq(r.bus_min, 2);
	ck_assert_uint_eq(r.bus_max, 9);
	ck_assert_uint_eq(r.word_io + r.dword_mem + r.qword_mem, 0);
	o = find(&w, "\\_SB_.MBRD._CRS");
	resources(o, &r);
	ck_assert_uint_eq(r.m64_min, 0xe0000000 + (2u << 20));
	ck_assert_uint_eq(r.m64_max, 0xe0000000 + (10u << 20) - 1);
	free(xsdt);
	free(fadt);
	free(dsdt);
	free(madt);
	free(mcfg);
	guest_memory_unref(m);
}
END_TEST

/* One bus (what cvmm decodes): MCFG, _CRS and the reserved ECAM cover bus
 * 0 alone, so the guest does not probe 255 absent buses. */
START_TEST(test_acpi_single_bus)
{
	struct guest_memory *m = mem();
	struct acpi_tables_config c = {.pci = true, .pci_bus_count = 1};
	uint8_t rsdp[36], *xsdt, *fadt, *dsdt, *mcfg;
	uint32_t xl, fl, dl, cl;
	uint64_t addr;
	struct aml_walk w;
	const struct aml_obj *o;
	struct res r;

	ck_assert_int_eq(acpi_tables_setup(m, &c, &addr, NULL), 0);
	ck_assert_int_eq(guest_memory_read(m, addr, rsdp, 36), 0);
	xsdt = table(m, g64(rsdp + 24), "XSDT", 1, &xl);
	fadt = table(m, g64(xsdt + 36), "FACP", 6, &fl);
	mcfg = table(m, g64(xsdt + 52), "MCFG", 1, &cl);
	ck_assert_uint_eq(mcfg[54], 0);
	ck_assert_uint_eq(mcfg[55], 0);
	dsdt = table(m, g64(fadt + 140), "DSDT", 2, &dl);
	memset(&w, 0, sizeof(w));
	termlist(&w, dsdt + 36, dsdt + dl, "\\", 0);
	o = find(&w, "\\_SB_.PCI0._CRS");
	resources(o, &r);
	ck_assert_uint_eq(r.bus_min, 0);
	ck_assert_uint_eq(r.bus_max, 0);
	o = find(&w, "\\_SB_.MBRD._CRS");
	resources(o, &r);
	ck_assert_uint_eq(r.m64_min, 0xe0000000);
	ck_assert_uint_eq(r.m64_max, 0xe0000000 + (1u << 20) - 1);
	free(xsdt);
	free(fadt);
	free(dsdt);
	free(mcfg);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_acpi_errors)
{
	struct guest_memory *m = mem();
	struct acpi_tables_config c = {.num_cpus = 1};

	ck_assert_int_eq(acpi_tables_setup(NULL, &c, NULL, NULL), -EINVAL);
	c.num_cpus = 255;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.num_cpus = 2;
	c.max_size = 100;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -ENOSPC);
	c.max_size = 0;
	c.addr = 16 * MiB - 64;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -ERANGE);
	c.addr = 0xe0008;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.addr = 0;
	c.pci = true;
	c.pci_bus_start = 5;
	c.pci_bus_count = 252;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.pci_bus_count = 251; /* buses 5..255 */
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), 0);
	c.pci_bus_count = 0;
	c.io_base = 0xf000;
	c.io_size = 0x2000;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.io_size = 0;
	c.mmio32_base = 0xf0000000;
	c.mmio32_size = 0x20000000;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.mmio32_size = 0;
	c.mmio64_base = UINT64_MAX - 10;
	c.mmio64_size = 100;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.mmio64_size = 0;
	c.ecam_base = 0xe0001000;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.ecam_base = 0;
	c.n_pci_irqs = 1;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.pci_irqs = (const struct boot_pci_irq[]){{32, 0, 16, 0}};
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.pci_irqs = (const struct boot_pci_irq[]){{1, 4, 16, 0}};
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	c.n_pci_irqs = 129;
	ck_assert_int_eq(acpi_tables_setup(m, &c, NULL, NULL), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_acpi_defaults)
{
	struct guest_memory *m = mem();
	uint8_t rsdp[36], *xsdt, *madt;
	uint32_t xl, ml;
	uint64_t addr;

	/* NULL and zero configurations: one CPU, no PCI */
	ck_assert_int_eq(acpi_tables_setup(m, NULL, &addr, NULL), 0);
	ck_assert_uint_eq(addr, 0xe0000);
	ck_assert_int_eq(acpi_tables_setup(m, &(struct acpi_tables_config){0},
					   &addr, NULL),
			 0);
	ck_assert_int_eq(guest_memory_read(m, addr, rsdp, 36), 0);
	xsdt = table(m, g64(rsdp + 24), "XSDT", 1, &xl);
	ck_assert_uint_eq(xl, 36 + 2 * 8);
	madt = table(m, g64(xsdt + 44), "APIC", 5, &ml);
	ck_assert_uint_eq(ml, 44 + 8 + 12 + 10 + 6);
	free(xsdt);
	free(madt);
	guest_memory_unref(m);
}
END_TEST

static Suite *acpi_suite(void)
{
	Suite *s = suite_create("linux-loader-acpi");
	TCase *tc = tcase_create("acpi");

	tcase_add_test(tc, test_acpi_tables_parsed_back);
	tcase_add_test(tc, test_acpi_minimal_and_sci);
	tcase_add_test(tc, test_acpi_large_dsdt_pkglength);
	tcase_add_test(tc, test_acpi_single_bus);
	tcase_add_test(tc, test_acpi_errors);
	tcase_add_test(tc, test_acpi_defaults);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(acpi_suite(), false);
}
