/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* AML encoder (ACPI 6.x, section 20: AML specification). */
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "internal.h"

#define AML_ZERO       0x00
#define AML_ONE	       0x01
#define AML_NAME       0x08
#define AML_BYTE       0x0a
#define AML_WORD       0x0b
#define AML_DWORD      0x0c
#define AML_STRING     0x0d
#define AML_QWORD      0x0e
#define AML_SCOPE      0x10
#define AML_BUFFER     0x11
#define AML_PACKAGE    0x12
#define AML_EXT	       0x5b
#define AML_DEVICE     0x82
#define AML_ROOT       0x5c
#define AML_DUAL_NAME  0x2e
#define AML_MULTI_NAME 0x2f

#define AML_PKGLEN_MAX 0x0fffffffu

static bool reserve(struct aml *a, size_t n)
{
	size_t cap;
	uint8_t *nb;

	if (a->oom)
		return false;
	if (n <= a->cap - a->len)
		return true;
	if (a->len > SIZE_MAX / 2 - n) {
		a->oom = true;
		return false;
	}
	cap = (a->len + n) * 2;
	if (cap < 256)
		cap = 256;
	nb = realloc(a->buf, cap);
	if (!nb) {
		a->oom = true;
		return false;
	}
	a->buf = nb;
	a->cap = cap;
	return true;
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void nameseg(struct aml *a, const char *s, size_t n)
{
	char seg[4] = {'_', '_', '_', '_'};

	memcpy(seg, s, n > 4 ? 4 : n);
	aml_bytes(a, seg, 4);
}

void aml_namestring(struct aml *a, const char *name)
{
	const char *segs[8];
	size_t lens[8], n = 0;
	const char *p = name;

	if (*p == '\\') {
		aml_byte(a, AML_ROOT);
		p++;
	}
	while (*p && n < 8) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		segs[n] = p;
		lens[n++] = l;
		p += l;
		if (*p == '.')
			p++;
	}
	if (n == 0) {
		aml_byte(a, AML_ZERO); /* NullName */
		return;
	}
	if (n == 2)
		aml_byte(a, AML_DUAL_NAME);
	else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)n);
	}
	for (size_t i = 0; i < n; i++)
		nameseg(a, segs[i], lens[i]);
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];

	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= 0xff) {
		b[0] = AML_BYTE;
		b[1] = (uint8_t)v;
		aml_bytes(a, b, 2);
	} else if (v <= 0xffff) {
		b[0] = AML_WORD;
		ll_put16(b + 1, (uint16_t)v);
		aml_bytes(a, b, 3);
	} else if (v <= 0xffffffffu) {
		b[0] = AML_DWORD;
		ll_put32(b + 1, (uint32_t)v);
		aml_bytes(a, b, 5);
	} else {
		b[0] = AML_QWORD;
		ll_put64(b + 1, v);
		aml_bytes(a, b, 9);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING);
	aml_bytes(a, s, strlen(s) + 1);
}

static uint32_t hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (uint32_t)(c - '0');
	if (c >= 'A' && c <= 'F')
		return (uint32_t)(c - 'A' + 10);
	return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = ((uint32_t)(id[0] & 0x1f) << 26) |
		     ((uint32_t)(id[1] & 0x1f) << 21) |
		     ((uint32_t)(id[2] & 0x1f) << 16) | hexval(id[3]) << 12 |
		     hexval(id[4]) << 8 | hexval(id[5]) << 4 | hexval(id[6]);
	uint8_t b[5] = {AML_DWORD, (uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};

	/* Stored big-endian: the compressed vendor first. */
	aml_bytes(a, b, 5);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME);
	aml_namestring(a, name);
}

size_t aml_scope_open(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_SCOPE);
	mark = a->len;
	aml_namestring(a, name);
	return mark;
}

size_t aml_device_open(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_EXT);
	aml_byte(a, AML_DEVICE);
	mark = a->len;
	aml_namestring(a, name);
	return mark;
}

size_t aml_package_open(struct aml *a, uint8_t count)
{
	size_t mark;

	aml_byte(a, AML_PACKAGE);
	mark = a->len;
	aml_byte(a, count);
	return mark;
}

void aml_close(struct aml *a, size_t mark)
{
	size_t body, n, total;
	uint8_t enc[4];

	if (a->oom)
		return;
	body = a->len - mark;
	if (body + 1 < 0x40)
		n = 1;
	else if (body + 2 < 0x1000)
		n = 2;
	else if (body + 3 < 0x100000)
		n = 3;
	else
		n = 4;
	total = body + n;
	if (total > AML_PKGLEN_MAX) {
		a->oom = true;
		return;
	}
	if (n == 1) {
		enc[0] = (uint8_t)total;
	} else {
		enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (!reserve(a, n))
		return;
	memmove(a->buf + mark + n, a->buf + mark, body);
	memcpy(a->buf + mark, enc, n);
	a->len += n;
}

void aml_buffer(struct aml *a, const uint8_t *p, size_t n)
{
	size_t mark;

	aml_byte(a, AML_BUFFER);
	mark = a->len;
	aml_integer(a, n);
	aml_bytes(a, p, n);
	aml_close(a, mark);
}

/* ------------------------------------------------------ resource template */

#define RES_TYPE_MEM	   0
#define RES_TYPE_IO	   1
#define RES_TYPE_BUS	   2
#define RES_PRODUCER_FIXED 0x0c /* MinFixed | MaxFixed, producer */
#define RES_CONSUMER_FIXED 0x0d

static void res_word(struct aml *r, uint8_t type, uint8_t tflags, uint16_t min,
		     uint16_t max)
{
	uint8_t d[16] = {0x88, 13, 0, type, RES_PRODUCER_FIXED, tflags};

	ll_put16(d + 8, min);
	ll_put16(d + 10, max);
	ll_put16(d + 14, (uint16_t)(max - min + 1));
	aml_bytes(r, d, sizeof(d));
}

void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max)
{
	res_word(r, RES_TYPE_BUS, 0, min, max);
}

void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max)
{
	res_word(r, RES_TYPE_IO, 0x03 /* EntireRange */, min, max);
}

void aml_res_dword_mem(struct aml *r, uint32_t min, uint32_t max)
{
	uint8_t d[26] = {0x87, 23, 0, RES_TYPE_MEM, RES_PRODUCER_FIXED, 0x01};

	ll_put32(d + 10, min);
	ll_put32(d + 14, max);
	ll_put32(d + 22, max - min + 1);
	aml_bytes(r, d, sizeof(d));
}

void aml_res_qword_mem(struct aml *r, bool consumer, uint64_t min, uint64_t max)
{
	uint8_t d[46] = {0x8a,
			 43,
			 0,
			 RES_TYPE_MEM,
			 consumer ? RES_CONSUMER_FIXED : RES_PRODUCER_FIXED,
			 0x01};

	ll_put64(d + 14, min);
	ll_put64(d + 22, max);
	ll_put64(d + 38, max - min + 1);
	aml_bytes(r, d, sizeof(d));
}

void aml_res_io(struct aml *r, uint16_t base, uint8_t len)
{
	uint8_t d[8] = {0x47, 1};

	ll_put16(d + 2, base);
	ll_put16(d + 4, base);
	d[6] = 1;
	d[7] = len;
	aml_bytes(r, d, sizeof(d));
}

void aml_res_irq(struct aml *r, uint8_t irq)
{
	uint8_t d[3] = {0x22};

	ll_put16(d + 1, (uint16_t)(1u << (irq & 15)));
	aml_bytes(r, d, sizeof(d));
}

void aml_res_end(struct aml *r)
{
	uint8_t d[2] = {0x79, 0};

	aml_bytes(r, d, sizeof(d));
}
