/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A fake kernel behind libvfio's system-call seam (struct vfio_sys): it
 * answers VFIO ioctls from a table the test fills in, records what the
 * library asked, and counts open fds so a test can check nothing leaked.
 * It can lie: capability chains that leave their buffer or loop, argsz
 * that keeps growing, short reads, failing calls.
 */
#ifndef CVMM_TESTS_FAKE_VFIO_H
#define CVMM_TESTS_FAKE_VFIO_H

#include <cvmm/vfio.h>

#include <stddef.h>
#include <stdint.h>

enum {
	FAKE_FD_CONTAINER = 10,
	FAKE_FD_GROUP = 20,
	FAKE_FD_DEVICE = 30,
	FAKE_FD_SYSFS = 40,
	FAKE_FD_KVM = 50,
	FAKE_MAX_REGIONS = 12,
	FAKE_MAX_IRQS = 5,
	FAKE_LOG = 64,
};

struct fake_set_irqs {
	uint32_t flags, index, start, count;
	int32_t fds[16];
};

struct fake {
	struct vfio_sys sys;
	/* answers */
	int err_open_container, err_open_group, err_open_sysfs;
	int api_version;
	int ext_type1, ext_type1v2;
	int err_set_iommu_v2, err_set_iommu_v1;
	uint32_t group_flags;
	int err_set_container;
	const char *reserved; /* NULL: the file does not exist */
	int err_get_device_fd;
	struct vfio_device_info dinfo;
	unsigned char region[FAKE_MAX_REGIONS][1024];
	size_t region_len[FAKE_MAX_REGIONS];	 /* bytes the fake copies */
	uint32_t region_argsz[FAKE_MAX_REGIONS]; /* what it claims */
	int region_err[FAKE_MAX_REGIONS];
	uint32_t region_greedy; /* claim argsz = asked + this, always */
	struct vfio_irq_info irq[FAKE_MAX_IRQS];
	int irq_err[FAKE_MAX_IRQS];
	int err_set_irqs_at;   /* fail the n-th SET_IRQS (1-based), 0: never */
	int err_set_irqs_from; /* fail every SET_IRQS from the n-th on */
	uint64_t unmap_answer; /* bytes "unmapped"; 0: as asked */
	int err_map;
	/* device fd contents behind pread/pwrite; mmap of the device fd
	 * returns a pointer into it */
	unsigned char bar[65536];
	ssize_t short_by; /* pread/pwrite return this many bytes fewer */
	int err_rw;
	const char *group_link; /* readlink answer */
	int hot_reset_count;	/* dependent devices */
	uint32_t hot_reset_group;
	int err_reset;
	/* records */
	int open_fds;
	int munmaps;
	int calls_map, calls_unmap, calls_set_irqs, calls_reset,
		calls_hot_reset, calls_unset_container, calls_region_info;
	int iommu_type;
	struct vfio_iommu_type1_dma_map last_map;
	struct fake_set_irqs log[FAKE_LOG];
	int nlog;
	int32_t hot_reset_fds[8];
	uint32_t hot_reset_nfds;
	struct kvm_device_attr_rec {
		uint32_t group;
		uint64_t attr;
		int32_t fd;
		int kvm_fd;
	} kvm;
	char last_open[256];
};

void fake_init(struct fake *f);
/* A device with @nregions plain regions (BAR0 4 KiB mmappable) and the
 * five vfio-pci IRQs (MSI 1 vector, MSI-X 8 with NORESIZE). */
void fake_device(struct fake *f, uint32_t nregions);
/* Region @i's answer: info with @flags/@size/@offset, then the caps laid
 * out by the caller starting at byte @cap_offset (0: none). */
struct vfio_region_info *fake_region(struct fake *f, uint32_t i, uint32_t flags,
				     uint64_t size, uint64_t offset,
				     uint32_t cap_offset, size_t len);
/* Put a sparse-mmap cap at @off with @n areas ({offset, size} pairs). */
void fake_cap_sparse(struct fake *f, uint32_t i, uint32_t off, uint32_t next,
		     uint32_t n, const uint64_t *areas);
void fake_cap_type(struct fake *f, uint32_t i, uint32_t off, uint32_t next,
		   uint32_t type, uint32_t subtype);
void fake_cap_header(struct fake *f, uint32_t i, uint32_t off, uint16_t id,
		     uint32_t next);

#endif
