/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvfio: user-space access to VFIO devices (container, group, device,
 * regions, interrupts, DMA mappings).
 *
 * NOT IMPLEMENTED YET.  This header reserves the name and the prefix
 * (vfio_) and declares nothing callable
 * but the version query of <cvmm/vfio-version.h>.  Planned objects:
 *   struct vfio_container  - /dev/vfio/vfio, IOMMU type, DMA map/unmap
 *   struct vfio_group      - /dev/vfio/N, viability, attach to a container
 *   struct vfio_dev        - device fd, region info/mmap, irq set (eventfds)
 * The uapi structures of <linux/vfio.h> will be used as they are.
 */
#ifndef CVMM_VFIO_H
#define CVMM_VFIO_H

/* Version macros (CVMM_VFIO_VERSION...) and the version query, the
 * only functions the library has so far. */
#include <cvmm/vfio-version.h>

#endif /* CVMM_VFIO_H */
