/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * <cvmm/vfio-memory.h>: DMA-map every region of a libvm-memory object,
 * IOVA = guest physical address.
 *
 * Header-only on purpose: libvfio itself takes plain (iova, host address,
 * size) triples (vfio_container_dma_map()) and does not link libvm-memory,
 * so a VMM with its own memory model uses libvfio without it.  A program
 * that includes this header links both cvmm-vfio and cvmm-vm-memory; the
 * walker below is the only code that knows both.
 */
#ifndef CVMM_VFIO_MEMORY_H
#define CVMM_VFIO_MEMORY_H

#include <cvmm/vfio.h>
#include <cvmm/vm-memory.h>

#include <errno.h>

/**
 * vfio_container_dma_unmap_guest_memory() - unmap what
 * vfio_container_dma_map_guest_memory() mapped for the first @n regions of
 * @m (all of them: guest_memory_num_regions(@m)).  Returns the first
 * error, continuing past it.
 */
static inline int
vfio_container_dma_unmap_guest_memory(struct vfio_container *c,
				      const struct guest_memory *m, size_t n)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		const struct guest_region *r = guest_memory_region_at(m, i);
		int err;

		if (!r)
			break;
		err = vfio_container_dma_unmap(c, guest_region_gpa(r),
					       guest_region_size(r));
		if (err && !first)
			first = err;
	}
	return first;
}

/**
 * vfio_container_dma_map_guest_memory() - map every region of @m at IOVA
 * = its guest physical address, writable by devices unless the region is
 * GUEST_REGION_READONLY.  All or nothing: on error the regions mapped so
 * far are unmapped again and the error of vfio_container_dma_map() is
 * returned (-EADDRNOTAVAIL when guest RAM overlaps a reserved IOVA range,
 * e.g. the x86 MSI window 0xfee00000: such a guest layout cannot be
 * passed through).  @m stays the caller's; the regions must stay mapped
 * until vfio_container_dma_unmap_guest_memory().
 */
static inline int
vfio_container_dma_map_guest_memory(struct vfio_container *c,
				    const struct guest_memory *m)
{
	size_t n = guest_memory_num_regions(m);

	if (!c || !m)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct guest_region *r = guest_memory_region_at(m, i);
		unsigned int fl = VFIO_DMA_READ;
		int err;

		if (!(guest_region_flags(r) & GUEST_REGION_READONLY))
			fl |= VFIO_DMA_WRITE;
		err = vfio_container_dma_map(c, guest_region_gpa(r),
					     guest_region_host_addr(r),
					     guest_region_size(r), fl);
		if (err) {
			vfio_container_dma_unmap_guest_memory(c, m, i);
			return err;
		}
	}
	return 0;
}

#endif /* CVMM_VFIO_MEMORY_H */
