/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Shared helpers of the virtio fuzz targets: an input reader and the guest
 * memory / bus fixture.
 */
#ifndef CVMM_FUZZ_VIRTIO_COMMON_H
#define CVMM_FUZZ_VIRTIO_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cvmm/devices/bus.h>
#include <cvmm/vm-memory.h>

struct in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v |= (uint64_t)(in->n ? *in->p : 0) << (8 * i);
		if (in->n) {
			in->p++;
			in->n--;
		}
	}
	return v;
}

/* One of 1, 2, 4, 8. */
static inline unsigned take_size(struct in *in)
{
	return 1u << (take(in, 1) & 3);
}

static inline struct guest_memory *fuzz_memory(uint64_t size,
					       struct guest_region **region)
{
	struct guest_region_params p = {0};
	struct guest_memory *mem = NULL;

	p.gpa = 0;
	p.size = size;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	if (guest_region_create(&p, region))
		abort();
	if (guest_memory_create(region, 1, &mem))
		abort();
	return mem;
}

static inline void fuzz_wr(struct io_bus *bus, uint64_t addr, unsigned size,
			   uint64_t v)
{
	uint8_t b[8];

	for (unsigned i = 0; i < size; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	io_bus_write(bus, addr, b, size);
}

static inline uint64_t fuzz_rd(struct io_bus *bus, uint64_t addr, unsigned size)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;

	io_bus_read(bus, addr, b, size);
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

#endif
