/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * An SSDT describing the legacy ISA devices liblinux-loader's DSDT does not
 * (yet) describe: the i8042 (PNP0303: ports 0x60 and 0x64, IRQ 1) and the
 * CMOS RTC (PNP0B00: ports 0x70-0x71, IRQ 8).  A guest with a
 * hardware-reduced FADT has no legacy PIC and maps no ISA IRQ by itself:
 * without these, its i8042 and rtc_cmos drivers find no interrupt.
 *
 * The SSDT goes right after the library's tables; the XSDT is copied after
 * it with one more entry, and the RSDP points to the copy.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cvmm/vm-memory.h>

#include "cvmm.h"

struct aml {
	uint8_t b[2048];
	size_t n;
	bool overflow;
};

static void put(struct aml *a, const void *p, size_t n)
{
	if (a->overflow || n > sizeof(a->b) - a->n) {
		a->overflow = true;
		return;
	}
	memcpy(a->b + a->n, p, n);
	a->n += n;
}

static void put8(struct aml *a, uint8_t v)
{
	put(a, &v, 1);
}

/* Wraps @inner behind @op (1 or 2 bytes) and a PkgLength. */
static void pkg(struct aml *a, const uint8_t *op, size_t oplen,
		const struct aml *inner)
{
	size_t len = inner->n + 1;

	put(a, op, oplen);
	if (len < 64) {
		put8(a, (uint8_t)len);
	} else {
		len++;
		put8(a, (uint8_t)(0x40 | (len & 0xf)));
		put8(a, (uint8_t)(len >> 4));
	}
	put(a, inner->b, inner->n);
	if (inner->overflow)
		a->overflow = true;
}

/* Device(<name>) { Name(_HID, EisaId(<eisa>)) Name(_CRS, <res>) } */
static void device(struct aml *a, const char *name, uint32_t eisa,
		   const uint8_t *res, size_t res_len)
{
	static const uint8_t dev_op[] = {0x5b, 0x82}, buf_op[] = {0x11};
	struct aml d = {0}, buf = {0};

	put(&d, name, 4);
	put8(&d, 0x08); /* NameOp _HID DWordConst */
	put(&d, "_HID", 4);
	put8(&d, 0x0c);
	put(&d, &eisa, 4);
	put8(&d, 0x08); /* NameOp _CRS Buffer */
	put(&d, "_CRS", 4);
	put8(&buf, 0x0a); /* BufferSize: ByteConst */
	put8(&buf, (uint8_t)res_len);
	put(&buf, res, res_len);
	pkg(&d, buf_op, 1, &buf);
	pkg(a, dev_op, 2, &d);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)-s;
}

static void header(uint8_t *h, const char *sig, uint32_t len, uint8_t rev)
{
	memset(h, 0, 36);
	memcpy(h, sig, 4);
	memcpy(h + 4, &len, 4);
	h[8] = rev;
	memcpy(h + 10, "CVMM  ", 6);
	memcpy(h + 16, "CVMMLEGA", 8);
	h[24] = 1;
	memcpy(h + 28, "CVMM", 4);
	h[32] = 1;
}

/* Device(VRnn) { Name(_HID, "LNRO0005") Name(_UID, n) Name(_CRS, {
 * Memory32Fixed(ReadWrite, base, size) Interrupt(ResourceConsumer, Level,
 * ActiveHigh, Exclusive) { gsi } }) }: a virtio-mmio device, which Linux's
 * virtio_mmio driver binds through ACPI. */
static void mmio_device(struct aml *a, unsigned n,
			const struct cvmm_mmio_dev *d)
{
	static const uint8_t dev_op[] = {0x5b, 0x82}, buf_op[] = {0x11};
	struct aml dv = {0}, buf = {0};
	uint8_t res[12 + 9 + 2];
	char name[5];

	snprintf(name, sizeof(name), "VR%02u", n % 100);
	put(&dv, name, 4);
	put8(&dv, 0x08); /* NameOp _HID String */
	put(&dv, "_HID", 4);
	put8(&dv, 0x0d);
	put(&dv, "LNRO0005", 9);
	put8(&dv, 0x08); /* NameOp _UID ByteConst */
	put(&dv, "_UID", 4);
	put8(&dv, 0x0a);
	put8(&dv, (uint8_t)n);
	res[0] = 0x86; /* Memory32Fixed, 9 bytes, read-write */
	res[1] = 9;
	res[2] = 0;
	res[3] = 1;
	memcpy(res + 4, &d->base, 4);
	memcpy(res + 8, &d->size, 4);
	res[12] = 0x89; /* Extended Interrupt, 6 bytes */
	res[13] = 6;
	res[14] = 0;
	res[15] = 0x01; /* consumer, level, active high, exclusive */
	res[16] = 1;
	memcpy(res + 17, &d->gsi, 4);
	res[21] = 0x79; /* end tag */
	res[22] = 0;
	put8(&dv, 0x08); /* NameOp _CRS Buffer */
	put(&dv, "_CRS", 4);
	put8(&buf, 0x0a);
	put8(&buf, (uint8_t)sizeof(res));
	put(&buf, res, sizeof(res));
	pkg(&dv, buf_op, 1, &buf);
	pkg(a, dev_op, 2, &dv);
}

int cvmm_acpi_add_legacy_ssdt(const struct guest_memory *m, uint64_t rsdp,
			      uint64_t tables_end, uint64_t limit,
			      const struct cvmm_mmio_dev *mmio, size_t n_mmio)
{
	static const uint8_t kbd_res[] = {
		0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, /* IO 0x60 */
		0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, /* IO 0x64 */
		0x22, 0x02, 0x00,				/* IRQ 1 */
		0x79, 0x00,					/* end */
	};
	static const uint8_t rtc_res[] = {
		0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, /* IO 0x70 */
		0x22, 0x00, 0x01,				/* IRQ 8 */
		0x79, 0x00,					/* end */
	};
	static const uint8_t scope_op[] = {0x10};
	static struct aml body, scope;
	uint8_t table[36 + sizeof(body.b)];
	uint8_t rs[36], xhdr[36], xsdt[36 + 8 * 32];
	uint64_t xsdt_addr, ssdt_addr, new_xsdt;
	uint32_t xlen, slen, nlen;
	int r;

	size_t i;

	memset(&body, 0, sizeof(body));
	memset(&scope, 0, sizeof(scope));
	put(&scope, "\\_SB_", 5);
	device(&scope, "PS2K", 0x0303d041u, kbd_res, sizeof(kbd_res));
	device(&scope, "RTC_", 0x000bd041u, rtc_res, sizeof(rtc_res));
	for (i = 0; i < n_mmio; i++)
		mmio_device(&scope, (unsigned)i, &mmio[i]);
	pkg(&body, scope_op, 1, &scope);
	if (body.overflow)
		return -ENOSPC;

	r = guest_memory_read(m, rsdp, rs, sizeof(rs));
	if (r < 0)
		return r;
	memcpy(&xsdt_addr, rs + 24, 8);
	r = guest_memory_read(m, xsdt_addr, xhdr, sizeof(xhdr));
	if (r < 0)
		return r;
	memcpy(&xlen, xhdr + 4, 4);
	if (memcmp(xhdr, "XSDT", 4) || xlen < 36 || xlen + 8 > sizeof(xsdt))
		return -EINVAL;
	r = guest_memory_read(m, xsdt_addr, xsdt, xlen);
	if (r < 0)
		return r;

	slen = (uint32_t)(36 + body.n);
	ssdt_addr = (tables_end + 15) & ~15ull;
	new_xsdt = (ssdt_addr + slen + 15) & ~15ull;
	nlen = xlen + 8;
	if (new_xsdt + nlen > limit)
		return -ENOSPC;

	header(table, "SSDT", slen, 2);
	memcpy(table + 36, body.b, body.n);
	table[9] = checksum(table, slen);
	r = guest_memory_write(m, ssdt_addr, table, slen);
	if (r < 0)
		return r;

	memcpy(xsdt + xlen, &ssdt_addr, 8);
	memcpy(xsdt + 4, &nlen, 4);
	xsdt[9] = 0;
	xsdt[9] = checksum(xsdt, nlen);
	r = guest_memory_write(m, new_xsdt, xsdt, nlen);
	if (r < 0)
		return r;

	/* RSDP 2.0: the XSDT address is covered by the extended checksum. */
	memcpy(rs + 24, &new_xsdt, 8);
	rs[32] = 0;
	rs[32] = checksum(rs, 36);
	return guest_memory_write(m, rsdp, rs, sizeof(rs));
}
