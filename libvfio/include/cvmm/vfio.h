/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvfio: user-space access to VFIO devices (container, group, device,
 * regions, interrupts, DMA mappings).
 *
 * NOT IMPLEMENTED YET.  This header reserves the name and the prefix
 * (vfio_) and declares nothing callable.  Planned objects:
 *   struct vfio_container  - /dev/vfio/vfio, IOMMU type, DMA map/unmap
 *   struct vfio_group      - /dev/vfio/N, viability, attach to a container
 *   struct vfio_dev        - device fd, region info/mmap, irq set (eventfds)
 * The uapi structures of <linux/vfio.h> will be used as they are.
 */
#ifndef CVMM_VFIO_H
#define CVMM_VFIO_H

/** Version of this header's API; 0 means "nothing implemented yet". */
#define CVMM_VFIO_API_VERSION 0

#endif /* CVMM_VFIO_H */
