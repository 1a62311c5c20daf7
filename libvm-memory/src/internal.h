/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libvm-memory internals shared between region.c and memory.c. */
#ifndef CVMM_VM_MEMORY_INTERNAL_H
#define CVMM_VM_MEMORY_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

/* The library defines the exported functions the header makes inline. */
#define CVMM_VM_MEMORY_NO_INLINE
#include "cvmm/vm-memory.h"

#define GM_PAGE_SHIFT 12

struct guest_region {
	atomic_uint refcount;
	unsigned int flags;
	enum guest_region_backing backing;
	int fd;
	guest_addr_t gpa;
	uint64_t size;
	uint8_t *host;
	void *map_base; /* what to munmap (includes guard pages) */
	size_t map_len;
	uint64_t file_offset;
	_Atomic uint64_t *dirty; /* NULL unless GUEST_REGION_DIRTY_LOG */
	size_t dirty_words;
};

/* Mark [off, off + len) of @r dirty; @len non-zero, range inside @r. */
void gm_region_mark_dirty(struct guest_region *r, uint64_t off, uint64_t len);

#endif /* CVMM_VM_MEMORY_INTERNAL_H */
