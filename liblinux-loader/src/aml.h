/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A small AML (ACPI Machine Language) encoder for static DSDT content:
 * Scope, Device, Name, Package, Buffer, integers, strings, EISA ids and
 * resource templates.  Internal to liblinux-loader.
 *
 * Usage: a struct aml starts zeroed; a Scope/Device/Package/Buffer is
 * opened with aml_*_open(), which returns a mark, and closed with
 * aml_close(mark), which inserts the PkgLength.  Allocation failures are
 * sticky (a->oom); check once at the end.
 */
#ifndef CVMM_LINUX_LOADER_AML_H
#define CVMM_LINUX_LOADER_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

void aml_free(struct aml *a);
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);
/* A NameString: optional leading '\\', then 4-character segments joined
 * with '.', e.g. "\\_SB_.PCI0" or "COM1". */
void aml_namestring(struct aml *a, const char *name);
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISA id such as "PNP0A08" as a DWord constant. */
void aml_eisaid(struct aml *a, const char *id);
/* Name(name, <the object appended next>) */
void aml_name(struct aml *a, const char *name);
size_t aml_scope_open(struct aml *a, const char *name);
size_t aml_device_open(struct aml *a, const char *name);
size_t aml_package_open(struct aml *a, uint8_t count);
/* Buffer(){bytes}: size and bytes in one go (resource templates). */
void aml_buffer(struct aml *a, const uint8_t *p, size_t n);
void aml_close(struct aml *a, size_t mark);

/* Resource template descriptors, appended to a plain byte vector. */
void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max);
void aml_res_dword_mem(struct aml *r, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *r, bool consumer, uint64_t min,
		       uint64_t max);
void aml_res_io(struct aml *r, uint16_t base, uint8_t len);
void aml_res_irq(struct aml *r, uint8_t irq);
void aml_res_end(struct aml *r);

#endif /* CVMM_LINUX_LOADER_AML_H */
