/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvfio: user-space access to VFIO devices as C objects.
 *
 *   struct vfio_container  /dev/vfio/vfio: the IOMMU (type1v2, falling
 *                          back to type1), DMA map/unmap, the reserved
 *                          IOVA ranges of its groups
 *   struct vfio_group      /dev/vfio/N: viability, attach to a container,
 *                          KVM-VFIO registration
 *   struct vfio_device     the device fd: info, regions (capability chain
 *                          parsed: sparse mmap areas, MSI-X mappable,
 *                          type/subtype), region read/write/mmap, IRQ info,
 *                          INTx / MSI / MSI-X eventfds, reset
 *
 * The uapi structures of <linux/vfio.h> are used as they are.
 *
 * iommufd and the VFIO device cdev (/dev/vfio/devices/vfioN, Linux 6.2+)
 * are not implemented: the Debian 6.1 kernel this project is tested on
 * has neither.  The API is shaped for them nonetheless: everything a
 * device does (regions, IRQs, reset) takes only a struct vfio_device, and
 * DMA mapping is a property of the container, not of the device, so a
 * later vfio_device_create_cdev() bound to an iommufd IOAS fits beside
 * vfio_device_create() without changing the device functions.
 *
 * Errors are negative errno values.  Objects: a container outlives its
 * groups, a group outlives its devices (destroy in reverse order; a
 * device made by vfio_device_create_sysfs() owns the group it opened).
 * Threading: the functions on one container, group or device (and its
 * container) must not run concurrently, except vfio_device_region_read(),
 * vfio_device_region_write() and the query functions, which only read
 * state fixed at creation and may run from many threads at once.
 */
#ifndef CVMM_VFIO_H
#define CVMM_VFIO_H

#include <linux/vfio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Version macros (CVMM_VFIO_VERSION...), CVMM_EXPORT, version query. */
#include <cvmm/vfio-version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ system seam */

/**
 * struct vfio_sys - the system calls libvfio makes, replaceable.
 *
 * Every open, close, ioctl, pread, pwrite, mmap, munmap and readlink of
 * the library goes through this table, so tests can answer for the kernel
 * (no /dev/vfio needed) and a sandboxed VMM can hand out fds it received
 * over a socket.  Each member returns 0 or a non-negative count/fd on
 * success and a negative errno on failure (not -1 + errno).  A NULL member
 * (or a NULL table) means the real system call.  @ctx is passed to every
 * call.  The table must outlive every object created with it.
 */
struct vfio_sys {
	void *ctx;
	int (*open)(void *ctx, const char *path, int flags);
	int (*close)(void *ctx, int fd);
	int (*ioctl)(void *ctx, int fd, unsigned long request, void *arg);
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len,
			  off_t off);
	int (*mmap)(void *ctx, size_t len, int prot, int fd, off_t off,
		    void **out);
	int (*munmap)(void *ctx, void *addr, size_t len);
	ssize_t (*readlink)(void *ctx, const char *path, char *buf, size_t len);
};

/* ------------------------------------------------------------- container */

struct vfio_container;

/**
 * struct vfio_container_config - options of vfio_container_create().
 * A zeroed struct, or NULL, means all defaults.
 * @sys:          system-call table (NULL: the real calls)
 * @path:         the container node (NULL: "/dev/vfio/vfio")
 * @sysfs_root:   where iommu_groups live (NULL: "/sys/kernel/iommu_groups")
 * @type1_only:   do not try VFIO_TYPE1v2_IOMMU first
 */
struct vfio_container_config {
	const struct vfio_sys *sys;
	const char *path;
	const char *sysfs_root;
	bool type1_only;
};

/**
 * vfio_container_create() - open a VFIO container.
 *
 * Checks VFIO_GET_API_VERSION and that the kernel has a type1 IOMMU.  The
 * IOMMU type is set when the first group is attached (the kernel needs a
 * group for VFIO_SET_IOMMU).  Errors: -ENODEV (no VFIO, wrong API version
 * or no type1 IOMMU), -ENOMEM, or the open's error.
 */
CVMM_EXPORT int vfio_container_create(const struct vfio_container_config *cfg,
				      struct vfio_container **out);

/** vfio_container_destroy() - close the container; its groups must be
 *  destroyed first (a container with groups left is still closed, the
 *  groups keep their fds).  NULL is accepted. */
CVMM_EXPORT void vfio_container_destroy(struct vfio_container *c);

/** vfio_container_fd() - the container's fd (still owned by @c). */
CVMM_EXPORT int vfio_container_fd(const struct vfio_container *c);

/** vfio_container_iommu_type() - VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_IOMMU
 *  once a group is attached, 0 before. */
CVMM_EXPORT int vfio_container_iommu_type(const struct vfio_container *c);

/**
 * struct vfio_reserved_range - an inclusive IOVA range (not the uapi
 * struct vfio_iova_range, whose end is named differently): [@start, @last].
 */
struct vfio_reserved_range {
	uint64_t start;
	uint64_t last;
};

/**
 * vfio_container_reserved_ranges() - the reserved IOVA ranges of the
 * attached groups (read from sysfs, iommu_groups/N/reserved_regions, when
 * each group was attached).  Copies up to @max into @out (may be NULL when
 * @max is 0) and returns how many there are.
 */
CVMM_EXPORT int vfio_container_reserved_ranges(const struct vfio_container *c,
					       struct vfio_reserved_range *out,
					       size_t max);

/** Flags of vfio_container_dma_map(). */
#define VFIO_DMA_READ  (1u << 0) /* the device may read the memory */
#define VFIO_DMA_WRITE (1u << 1) /* the device may write the memory */

/**
 * vfio_container_dma_map() - let the devices DMA to @size bytes of host
 * memory at @host through IOVA @iova.
 *
 * @iova, @host and @size must be page aligned and @size non-zero
 * (-EINVAL); @flags is VFIO_DMA_READ | VFIO_DMA_WRITE (0 means both).
 * A range that overlaps a reserved IOVA range (vfio_container_reserved_
 * ranges()) is refused with -EADDRNOTAVAIL before the kernel is asked;
 * -EOVERFLOW when @iova + @size wraps; -ENODEV before a group is attached;
 * otherwise VFIO_IOMMU_MAP_DMA's error (-EEXIST for an overlap with a
 * mapping, -ENOSPC past the IOMMU's limit on mappings).  The memory must
 * stay mapped in the process until vfio_container_dma_unmap().
 */
CVMM_EXPORT int vfio_container_dma_map(struct vfio_container *c, uint64_t iova,
				       void *host, uint64_t size,
				       unsigned int flags);

/**
 * vfio_container_dma_unmap() - remove the mappings in [@iova, @iova +
 * @size).  Same alignment rules; -ENOENT when the kernel unmapped fewer
 * bytes than asked (nothing, or only part, was mapped there).
 */
CVMM_EXPORT int vfio_container_dma_unmap(struct vfio_container *c,
					 uint64_t iova, uint64_t size);

/* ----------------------------------------------------------------- group */

struct vfio_group;

/** struct vfio_group_config - options of vfio_group_create() (none yet;
 *  NULL or zeroed). */
struct vfio_group_config {
	int reserved;
};

/**
 * vfio_group_create() - open /dev/vfio/@group_id and attach it to @c.
 *
 * Checks VFIO_GROUP_FLAGS_VIABLE (-EBUSY when a device of the group is
 * bound to another host driver), attaches the group (VFIO_GROUP_SET_
 * CONTAINER), sets the container's IOMMU on the first group (type1v2 when
 * the kernel has it, else type1), and reads the group's reserved IOVA
 * ranges from sysfs (a missing file means none; a malformed one -EPROTO).
 * -EEXIST when @c already has this group.  On error nothing is left open.
 */
CVMM_EXPORT int vfio_group_create(struct vfio_container *c,
				  unsigned int group_id,
				  const struct vfio_group_config *cfg,
				  struct vfio_group **out);

/** vfio_group_destroy() - detach from the container and close.  Its
 *  devices must be destroyed first.  NULL is accepted. */
CVMM_EXPORT void vfio_group_destroy(struct vfio_group *g);

/** vfio_group_id() - the IOMMU group number. */
CVMM_EXPORT unsigned int vfio_group_id(const struct vfio_group *g);

/** vfio_group_fd() - the group's fd (still owned by @g). */
CVMM_EXPORT int vfio_group_fd(const struct vfio_group *g);

/**
 * vfio_group_kvm_add() - register the group with a KVM-VFIO device
 * (KVM_DEV_VFIO_GROUP_ADD through KVM_SET_DEVICE_ATTR on @kvm_vfio_fd, the
 * fd of a KVM_DEV_TYPE_VFIO device the caller created with
 * KVM_CREATE_DEVICE).  The fd stays the caller's.  Returns the ioctl's
 * error.
 */
CVMM_EXPORT int vfio_group_kvm_add(struct vfio_group *g, int kvm_vfio_fd);

/** vfio_group_kvm_del() - the reverse (KVM_DEV_VFIO_GROUP_DEL). */
CVMM_EXPORT int vfio_group_kvm_del(struct vfio_group *g, int kvm_vfio_fd);

/* ---------------------------------------------------------------- device */

struct vfio_device;

/** struct vfio_device_config - options of vfio_device_create() (none yet;
 *  NULL or zeroed). */
struct vfio_device_config {
	int reserved;
};

/**
 * vfio_device_create() - the device @name (e.g. "0000:00:03.0") of group
 * @g: VFIO_GROUP_GET_DEVICE_FD, then its info, every region's info with
 * the capability chain parsed, and every IRQ's info.
 *
 * Errors: the ioctls' (-ENODEV when the group has no such device), -EPROTO
 * when the kernel's answer is malformed (a region's capability chain that
 * leaves its buffer, a cycle, a sparse-mmap area outside the region), or
 * -ENOMEM.  @g must outlive the device.
 */
CVMM_EXPORT int vfio_device_create(struct vfio_group *g, const char *name,
				   const struct vfio_device_config *cfg,
				   struct vfio_device **out);

/**
 * vfio_device_create_sysfs() - the device at @sysfs_path
 * (/sys/bus/pci/devices/0000:00:03.0): its iommu_group link names the
 * group, which is taken from @c when already attached there, else opened
 * and attached (vfio_group_create()) and then owned by the device
 * (destroyed with it).  The device name is the path's last component.
 * Errors as vfio_group_create() and vfio_device_create(); -ENAMETOOLONG,
 * -EINVAL for a path without a name or a group link that is not a number.
 */
CVMM_EXPORT int vfio_device_create_sysfs(struct vfio_container *c,
					 const char *sysfs_path,
					 const struct vfio_device_config *cfg,
					 struct vfio_device **out);

/** vfio_device_destroy() - disable its interrupts, close the device (and
 *  its own group, see above).  Mappings made with vfio_device_region_mmap()
 *  stay the caller's to unmap.  NULL is accepted. */
CVMM_EXPORT void vfio_device_destroy(struct vfio_device *d);

/** vfio_device_fd() - the device fd (still owned by @d). */
CVMM_EXPORT int vfio_device_fd(const struct vfio_device *d);

/** vfio_device_group() - the group the device belongs to. */
CVMM_EXPORT struct vfio_group *vfio_device_group(const struct vfio_device *d);

/** vfio_device_get_info() - the kernel's VFIO_DEVICE_GET_INFO answer
 *  (flags: VFIO_DEVICE_FLAGS_PCI, _RESET...; num_regions, num_irqs). */
CVMM_EXPORT void vfio_device_get_info(const struct vfio_device *d,
				      struct vfio_device_info *out);

/* Regions.  For vfio-pci the indexes are VFIO_PCI_BAR0_REGION_INDEX ...
 * VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_VGA_REGION_INDEX, then device
 * specific ones (with a type/subtype). */

/**
 * struct vfio_region_desc - one region with its capabilities parsed.
 * @flags:         VFIO_REGION_INFO_FLAG_READ / _WRITE / _MMAP
 * @size:          bytes (0: the region does not exist)
 * @offset:        its offset in the device fd
 * @has_type:      a VFIO_REGION_INFO_CAP_TYPE capability was present
 * @type, @subtype: its values
 * @msix_mappable: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE was present: the
 *                 MSI-X table of this BAR may be mmapped
 * @nr_areas:      the areas vfio_device_region_mmap() can map: those of
 *                 the sparse-mmap capability, or one for the whole region
 *                 when it is mmappable without one, 0 when not mmappable
 */
struct vfio_region_desc {
	uint32_t flags;
	uint64_t size;
	uint64_t offset;
	bool has_type;
	uint32_t type;
	uint32_t subtype;
	bool msix_mappable;
	uint32_t nr_areas;
};

/** vfio_device_region() - the description of region @index; -EINVAL when
 *  @index >= num_regions. */
CVMM_EXPORT int vfio_device_region(const struct vfio_device *d, uint32_t index,
				   struct vfio_region_desc *out);

/** vfio_device_region_area() - mmappable area @area (< nr_areas) of region
 *  @index: offset within the region and size.  -EINVAL out of range. */
CVMM_EXPORT int
vfio_device_region_area(const struct vfio_device *d, uint32_t index,
			uint32_t area,
			struct vfio_region_sparse_mmap_area *out);

/**
 * vfio_device_region_read() - read @len bytes at @off of region @index
 * (one pread of the device fd; BAR registers want their natural access
 * size, 1, 2, 4 or 8 bytes, aligned).  Returns 0 when all bytes were
 * read; -EINVAL for a bad index or a region without READ, -ERANGE when
 * [@off, @off + @len) is not inside the region (overflow-checked), -EIO
 * for a short read, else pread's error.
 */
CVMM_EXPORT int vfio_device_region_read(const struct vfio_device *d,
					uint32_t index, uint64_t off, void *buf,
					size_t len);

/** vfio_device_region_write() - the same for writing. */
CVMM_EXPORT int vfio_device_region_write(const struct vfio_device *d,
					 uint32_t index, uint64_t off,
					 const void *buf, size_t len);

/**
 * vfio_device_region_mmap() - mmap area @area of region @index with @prot
 * (PROT_READ | PROT_WRITE), shared.  On success *@addr is the start of
 * the mapping, which maps the area's bytes (vfio_device_region_area());
 * it belongs to the caller (munmap it, or vfio_device_region_munmap()).
 * -EINVAL for a bad index/area, else mmap's error.
 */
CVMM_EXPORT int vfio_device_region_mmap(const struct vfio_device *d,
					uint32_t index, uint32_t area, int prot,
					void **addr);

/** vfio_device_region_munmap() - undo vfio_device_region_mmap() of the
 *  same region and area. */
CVMM_EXPORT int vfio_device_region_munmap(const struct vfio_device *d,
					  uint32_t index, uint32_t area,
					  void *addr);

/* Interrupts.  For vfio-pci the indexes are VFIO_PCI_INTX_IRQ_INDEX,
 * VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX,
 * VFIO_PCI_REQ_IRQ_INDEX.  Eventfds stay the caller's: the kernel takes
 * its own reference, and the caller keeps each one open while assigned. */

/** vfio_device_irq_info() - the kernel's answer for IRQ @index (count,
 *  flags: EVENTFD, MASKABLE, AUTOMASKED, NORESIZE).  -EINVAL when @index
 *  >= num_irqs. */
CVMM_EXPORT int vfio_device_irq_info(const struct vfio_device *d,
				     uint32_t index, struct vfio_irq_info *out);

/**
 * vfio_device_irq_enable() - enable IRQ @index with @count vectors, vector
 * i signalling @fds[i] (-1: the vector is enabled but signals nothing).
 * -EINVAL when @count is 0 or above the IRQ's count, -EBUSY when the
 * IRQ is enabled already (vfio_device_irq_set_vector() changes vectors),
 * else VFIO_DEVICE_SET_IRQS's error.  On error the IRQ is left disabled.
 */
CVMM_EXPORT int vfio_device_irq_enable(struct vfio_device *d, uint32_t index,
				       const int *fds, uint32_t count);

/**
 * vfio_device_irq_set_vector() - make vector @vector of the enabled IRQ
 * @index signal @fd (-1: nothing).  Inside the enabled count only that
 * vector changes.  Beyond it, the kernel grows MSI-X in place when the
 * IRQ's info lacks VFIO_IRQ_INFO_NORESIZE (Linux 6.5+); with NORESIZE
 * (Linux 6.1 and MSI always) the IRQ is disabled and enabled again with
 * @vector + 1 vectors, the old ones keeping their eventfds (a vector
 * raised during that window may be lost: the device's pending bit is
 * then the guest's to find).  -EINVAL when @vector is beyond the IRQ's
 * count, -ENOENT when the IRQ is not enabled.
 */
CVMM_EXPORT int vfio_device_irq_set_vector(struct vfio_device *d,
					   uint32_t index, uint32_t vector,
					   int fd);

/** vfio_device_irq_disable() - disable IRQ @index (every vector).  0 also
 *  when it was not enabled. */
CVMM_EXPORT int vfio_device_irq_disable(struct vfio_device *d, uint32_t index);

/** vfio_device_irq_enabled() - the number of vectors enabled on @index. */
CVMM_EXPORT uint32_t vfio_device_irq_enabled(const struct vfio_device *d,
					     uint32_t index);

/**
 * vfio_device_intx_enable() - INTx (index VFIO_PCI_INTX_IRQ_INDEX) on
 * eventfd @trigger; with @resample >= 0 the kernel also unmasks the line
 * when @resample is signalled (KVM's resampling irqfd does that on the
 * guest's EOI).  INTx is level-triggered and automasked: after each
 * interrupt the line stays masked until vfio_device_intx_unmask() or a
 * resample.  Errors as vfio_device_irq_enable(); on error INTx is off.
 */
CVMM_EXPORT int vfio_device_intx_enable(struct vfio_device *d, int trigger,
					int resample);

/** vfio_device_intx_unmask() - unmask INTx (ACTION_UNMASK). */
CVMM_EXPORT int vfio_device_intx_unmask(struct vfio_device *d);

/** vfio_device_intx_mask() - mask INTx (ACTION_MASK). */
CVMM_EXPORT int vfio_device_intx_mask(struct vfio_device *d);

/**
 * vfio_device_reset() - reset the device: VFIO_DEVICE_RESET when the
 * device reports VFIO_DEVICE_FLAGS_RESET (function-level reset or another
 * per-device method), else for PCI a bus reset through
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO and VFIO_DEVICE_PCI_HOT_RESET, which
 * needs every affected group attached to the same container (-EPERM
 * otherwise).  -EOPNOTSUPP when neither is possible (the kernel has no
 * reset method, or the device sits on a root bus: QEMU's edu in the lab).
 */
CVMM_EXPORT int vfio_device_reset(struct vfio_device *d);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VFIO_H */
