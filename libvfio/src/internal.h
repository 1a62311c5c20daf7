/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libvfio's objects and its system-call seam (internal). */
#ifndef CVMM_VFIO_INTERNAL_H
#define CVMM_VFIO_INTERNAL_H

#include <cvmm/vfio.h>

/* Bounds on what the kernel may report (it is trusted, but a lying or
 * fake answer must not make the library allocate without limit). */
#define VFIO_MAX_REGIONS     1024
#define VFIO_MAX_IRQS	     64
#define VFIO_MAX_VECTORS     4096
#define VFIO_MAX_INFO_BYTES  65536
#define VFIO_MAX_RESERVED    256
#define VFIO_MAX_HOT_RESET   256
#define VFIO_SYSFS_MAX_BYTES 16384

struct vfio_container {
	const struct vfio_sys *sys;
	int fd;
	int iommu_type;
	bool type1_only;
	char *group_dir; /* "/dev/vfio" */
	char *sysfs_root;
	struct vfio_group *groups;
};

struct vfio_group {
	struct vfio_container *c;
	const struct vfio_sys *sys;
	struct vfio_group *next;
	unsigned int id;
	int fd;
	unsigned int devices;
	struct vfio_reserved_range *resv;
	size_t nresv;
};

struct vfio_region {
	struct vfio_region_desc desc;
	struct vfio_region_sparse_mmap_area *areas;
};

struct vfio_irq {
	struct vfio_irq_info info;
	uint32_t enabled;
	int *fds; /* enabled entries */
};

struct vfio_device {
	struct vfio_group *g;
	bool owns_group;
	int fd;
	struct vfio_device_info info;
	struct vfio_region *regions;
	struct vfio_irq *irqs;
};

int vfio_sys_open(const struct vfio_sys *s, const char *path, int flags);
void vfio_sys_close(const struct vfio_sys *s, int fd);
int vfio_sys_ioctl(const struct vfio_sys *s, int fd, unsigned long req,
		   void *arg);
ssize_t vfio_sys_pread(const struct vfio_sys *s, int fd, void *buf, size_t len,
		       off_t off);
ssize_t vfio_sys_pwrite(const struct vfio_sys *s, int fd, const void *buf,
			size_t len, off_t off);
int vfio_sys_mmap(const struct vfio_sys *s, size_t len, int prot, int fd,
		  off_t off, void **out);
int vfio_sys_munmap(const struct vfio_sys *s, void *addr, size_t len);
ssize_t vfio_sys_readlink(const struct vfio_sys *s, const char *path, char *buf,
			  size_t len);

#endif /* CVMM_VFIO_INTERNAL_H */
