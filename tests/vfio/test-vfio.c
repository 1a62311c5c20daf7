/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Unit tests for libvfio through its system-call seam: a fake kernel
 * (fake-vfio.c) answers, sometimes wrongly, and no /dev/vfio is needed.
 */
#include <cvmm/vfio.h>

#include <check.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "fake-vfio.h"

static struct fake F;

static struct vfio_container *mk_container(void)
{
	struct vfio_container_config cfg = {.sys = &F.sys};
	struct vfio_container *c = NULL;

	ck_assert_int_eq(vfio_container_create(&cfg, &c), 0);
	ck_assert_ptr_nonnull(c);
	return c;
}

static struct vfio_group *mk_group(struct vfio_container *c)
{
	struct vfio_group *g = NULL;

	ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g), 0);
	return g;
}

static struct vfio_device *mk_device(struct vfio_group *g)
{
	struct vfio_device *d = NULL;

	ck_assert_int_eq(vfio_device_create(g, "0000:00:03.0", NULL, &d), 0);
	return d;
}

static void setup(void)
{
	fake_init(&F);
	fake_device(&F, 9);
}

/* ------------------------------------------------------------- container */

START_TEST(container_errors)
{
	struct vfio_container_config cfg = {.sys = &F.sys};
	struct vfio_container *c = (void *)1;

	F.err_open_container = -ENOENT;
	ck_assert_int_eq(vfio_container_create(&cfg, &c), -ENOENT);
	ck_assert_ptr_eq(c, (void *)1);
	F.err_open_container = 0;
	F.api_version = VFIO_API_VERSION + 1;
	ck_assert_int_eq(vfio_container_create(&cfg, &c), -ENODEV);
	F.api_version = -EIO;
	ck_assert_int_eq(vfio_container_create(&cfg, &c), -EIO);
	F.api_version = VFIO_API_VERSION;
	F.ext_type1 = F.ext_type1v2 = 0;
	ck_assert_int_eq(vfio_container_create(&cfg, &c), -ENODEV);
	ck_assert_int_eq(F.open_fds, 0);
	ck_assert_int_eq(vfio_container_create(&cfg, NULL), -EINVAL);
	vfio_container_destroy(NULL);
}
END_TEST

START_TEST(container_defaults)
{
	struct vfio_container *c = mk_container();

	ck_assert_str_eq(F.last_open, "/dev/vfio/vfio");
	ck_assert_int_eq(vfio_container_fd(c), FAKE_FD_CONTAINER);
	ck_assert_int_eq(vfio_container_iommu_type(c), 0);
	ck_assert_int_eq(vfio_container_reserved_ranges(c, NULL, 0), 0);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

/* ----------------------------------------------------------------- group */

START_TEST(group_not_viable)
{
	struct vfio_container *c = mk_container();
	struct vfio_group *g = NULL;

	F.group_flags = 0;
	ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g), -EBUSY);
	ck_assert_ptr_null(g);
	ck_assert_int_eq(F.open_fds, 1);
	F.group_flags = VFIO_GROUP_FLAGS_VIABLE;
	F.err_set_container = -EPERM;
	ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g), -EPERM);
	ck_assert_int_eq(F.open_fds, 1);
	F.err_set_container = 0;
	F.err_open_group = -ENOENT;
	ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g), -ENOENT);
	ck_assert_int_eq(vfio_container_iommu_type(c), 0);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

START_TEST(group_iommu_choice)
{
	struct vfio_container_config cfg = {.sys = &F.sys};
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c), *g2 = NULL;

	ck_assert_str_eq(F.last_open, "/sys/kernel/iommu_groups/5/"
				      "reserved_regions");
	ck_assert_int_eq(vfio_container_iommu_type(c), VFIO_TYPE1v2_IOMMU);
	ck_assert_int_eq(vfio_group_id(g), 5);
	ck_assert_int_eq(vfio_group_fd(g), FAKE_FD_GROUP);
	ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g2), -EEXIST);
	vfio_group_destroy(g);
	ck_assert_int_eq(vfio_container_iommu_type(c), 0);
	vfio_container_destroy(c);

	/* v2 refused by SET_IOMMU: type1. */
	F.err_set_iommu_v2 = -EINVAL;
	c = mk_container();
	g = mk_group(c);
	ck_assert_int_eq(vfio_container_iommu_type(c), VFIO_TYPE1_IOMMU);
	vfio_group_destroy(g);
	vfio_container_destroy(c);

	/* type1_only, and no IOMMU at all. */
	F.err_set_iommu_v2 = 0;
	cfg.type1_only = true;
	ck_assert_int_eq(vfio_container_create(&cfg, &c), 0);
	g = mk_group(c);
	ck_assert_int_eq(F.iommu_type, VFIO_TYPE1_IOMMU);
	vfio_group_destroy(g);
	F.err_set_iommu_v1 = -ENODEV;
	ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g), -ENODEV);
	ck_assert_int_eq(vfio_container_iommu_type(c), 0);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

START_TEST(group_reserved_regions)
{
	struct vfio_reserved_range r[4];
	struct vfio_container *c;
	struct vfio_group *g = NULL;

	F.reserved = "0x00000000fee00000 0x00000000feefffff msi\n"
		     "0x0000000000100000 0x0000000000100fff direct\n";
	c = mk_container();
	g = mk_group(c);
	ck_assert_int_eq(vfio_container_reserved_ranges(c, r, 4), 2);
	ck_assert_uint_eq(r[0].start, 0xfee00000);
	ck_assert_uint_eq(r[0].last, 0xfeefffff);
	ck_assert_uint_eq(r[1].start, 0x100000);
	ck_assert_int_eq(vfio_container_reserved_ranges(c, r, 1), 2);
	vfio_group_destroy(g);

	/* Malformed: start above end, missing 0x, too many digits, NUL. */
	const char *bad[] = {
		"0x2000 0x1000 msi\n",
		"fee00000 0xfeefffff msi\n",
		"0x10000000000000000 0x1 msi\n",
		"0x1000\n",
		"0x1000 0x2000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		F.reserved = bad[i];
		g = NULL;
		ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g), -EPROTO);
		ck_assert_ptr_null(g);
	}
	/* A failing open other than "missing" is an error too. */
	F.err_open_sysfs = -EACCES;
	ck_assert_int_eq(vfio_group_create(c, 5, NULL, &g), -EACCES);
	ck_assert_int_eq(F.calls_unset_container, 1 + 5 + 1);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

START_TEST(group_kvm)
{
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);

	ck_assert_int_eq(vfio_group_kvm_add(g, -1), -EBADF);
	ck_assert_int_eq(vfio_group_kvm_add(g, FAKE_FD_KVM), 0);
	ck_assert_int_eq(F.kvm.kvm_fd, FAKE_FD_KVM);
	ck_assert_uint_eq(F.kvm.group, KVM_DEV_VFIO_GROUP);
	ck_assert_uint_eq(F.kvm.attr, KVM_DEV_VFIO_GROUP_ADD);
	ck_assert_int_eq(F.kvm.fd, FAKE_FD_GROUP);
	ck_assert_int_eq(vfio_group_kvm_del(g, FAKE_FD_KVM), 0);
	ck_assert_uint_eq(F.kvm.attr, KVM_DEV_VFIO_GROUP_DEL);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
}
END_TEST

/* ------------------------------------------------------------------- DMA */

START_TEST(dma_map_checks)
{
	struct vfio_container *c = mk_container();
	struct vfio_group *g;
	long page = sysconf(_SC_PAGESIZE);
	void *buf = aligned_alloc((size_t)page, (size_t)page * 2);

	ck_assert_int_eq(vfio_container_dma_map(c, 0, buf, (uint64_t)page, 0),
			 -ENODEV);
	F.reserved = "0x00000000fee00000 0x00000000feefffff msi\n";
	g = mk_group(c);
	ck_assert_int_eq(vfio_container_dma_map(c, 1, buf, (uint64_t)page, 0),
			 -EINVAL);
	ck_assert_int_eq(vfio_container_dma_map(c, 0, buf, 0, 0), -EINVAL);
	ck_assert_int_eq(vfio_container_dma_map(c, 0, (char *)buf + 1,
						(uint64_t)page, 0),
			 -EINVAL);
	ck_assert_int_eq(vfio_container_dma_map(c, 0, buf, (uint64_t)page, 4),
			 -EINVAL);
	ck_assert_int_eq(vfio_container_dma_map(c, -(uint64_t)page, buf,
						2 * (uint64_t)page, 0),
			 -EOVERFLOW);
	/* Overlapping the reserved range at either end, or inside it. */
	ck_assert_int_eq(vfio_container_dma_map(c, 0xfedff000, buf, 0x2000, 0),
			 -EADDRNOTAVAIL);
	ck_assert_int_eq(vfio_container_dma_map(c, 0xfeeff000, buf, 0x1000, 0),
			 -EADDRNOTAVAIL);
	ck_assert_int_eq(F.calls_map, 0);
	ck_assert_int_eq(vfio_container_dma_map(c, 0xfef00000, buf, 0x1000,
						VFIO_DMA_READ),
			 0);
	ck_assert_uint_eq(F.last_map.flags, VFIO_DMA_MAP_FLAG_READ);
	ck_assert_uint_eq(F.last_map.iova, 0xfef00000);
	ck_assert_uint_eq(F.last_map.vaddr, (uintptr_t)buf);
	ck_assert_int_eq(vfio_container_dma_map(c, 0, buf, 0x2000, 0), 0);
	ck_assert_uint_eq(F.last_map.flags,
			  VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
	F.err_map = -EEXIST;
	ck_assert_int_eq(vfio_container_dma_map(c, 0, buf, 0x2000, 0), -EEXIST);

	ck_assert_int_eq(vfio_container_dma_unmap(c, 0, 0x2000), 0);
	F.unmap_answer = 0x1000; /* the kernel unmapped less */
	ck_assert_int_eq(vfio_container_dma_unmap(c, 0, 0x2000), -ENOENT);
	ck_assert_int_eq(vfio_container_dma_unmap(c, 1, 0x2000), -EINVAL);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	free(buf);
}
END_TEST

/* ---------------------------------------------------------------- device */

START_TEST(device_regions)
{
	static const uint64_t areas[] = {0, 0x1000, 0x3000, 0x1000};
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);
	struct vfio_region_sparse_mmap_area a;
	struct vfio_region_desc r;
	struct vfio_device_info info;
	struct vfio_device *d;

	/* BAR2: 16 KiB with a hole (MSI-X table) and MSIX_MAPPABLE. */
	fake_region(&F, 2,
		    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
		    0x4000, 0x20000000000ull, 104, 200);
	fake_cap_sparse(&F, 2, 104, 160, 2, areas);
	fake_cap_header(&F, 2, 160, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 0);
	/* Region 8: typed, with an unknown cap first. */
	fake_region(&F, 8, VFIO_REGION_INFO_FLAG_READ, 0x100, 0x80000, 32, 100);
	fake_cap_header(&F, 8, 32, 77, 48);
	fake_cap_type(&F, 8, 48, 0, 3, 1);
	/* Region 7 (VGA) does not exist. */
	F.region_err[7] = -EINVAL;

	d = mk_device(g);
	vfio_device_get_info(d, &info);
	ck_assert_uint_eq(info.num_regions, 9);
	ck_assert_int_eq(vfio_device_fd(d), FAKE_FD_DEVICE);
	ck_assert_ptr_eq(vfio_device_group(d), g);

	ck_assert_int_eq(vfio_device_region(d, 0, &r), 0);
	ck_assert_uint_eq(r.nr_areas, 1);
	ck_assert_int_eq(vfio_device_region_area(d, 0, 0, &a), 0);
	ck_assert_uint_eq(a.size, 4096);
	ck_assert_int_eq(vfio_device_region_area(d, 0, 1, &a), -EINVAL);

	ck_assert_int_eq(vfio_device_region(d, 2, &r), 0);
	ck_assert_uint_eq(r.size, 0x4000);
	ck_assert_uint_eq(r.offset, 0x20000000000ull);
	ck_assert(r.msix_mappable);
	ck_assert(!r.has_type);
	ck_assert_uint_eq(r.nr_areas, 2);
	ck_assert_int_eq(vfio_device_region_area(d, 2, 1, &a), 0);
	ck_assert_uint_eq(a.offset, 0x3000);
	ck_assert_uint_eq(a.size, 0x1000);

	ck_assert_int_eq(vfio_device_region(d, 7, &r), 0);
	ck_assert_uint_eq(r.size, 0);
	ck_assert_int_eq(vfio_device_region(d, 8, &r), 0);
	ck_assert(r.has_type);
	ck_assert_uint_eq(r.type, 3);
	ck_assert_uint_eq(r.subtype, 1);
	ck_assert_uint_eq(r.nr_areas, 0); /* not mmappable */
	ck_assert_int_eq(vfio_device_region(d, 9, &r), -EINVAL);
	vfio_device_destroy(d);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

START_TEST(device_region_argsz_retry)
{
	static const uint64_t areas[] = {0, 0x1000};
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);
	struct vfio_region_desc r;
	struct vfio_device *d;

	/* The chain needs 600 bytes: more than the library's first try. */
	fake_region(&F, 1, VFIO_REGION_INFO_FLAG_MMAP, 0x1000, 0, 560, 600);
	fake_cap_sparse(&F, 1, 560, 0, 1, areas);
	d = mk_device(g);
	ck_assert_int_eq(vfio_device_region(d, 1, &r), 0);
	ck_assert_uint_eq(r.nr_areas, 1);
	vfio_device_destroy(d);

	/* A kernel that always wants more: bounded retries, -EPROTO. */
	F.region_greedy = 64;
	d = NULL;
	ck_assert_int_eq(vfio_device_create(g, "x", NULL, &d), -EPROTO);
	ck_assert_ptr_null(d);
	F.region_greedy = 0;
	F.region_argsz[1] = 1u << 30;
	ck_assert_int_eq(vfio_device_create(g, "x", NULL, &d), -EPROTO);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

/* Lying capability chains: each is refused, nothing leaks. */
START_TEST(device_region_lies)
{
	static const uint64_t out_of_region[] = {0x800, 0x1000};
	static const uint64_t ok_area[] = {0, 0x1000};
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);
	struct vfio_device *d = NULL;
	int cases = 0;

	for (int k = 0; k < 9; k++) {
		fake_device(&F, 2);
		switch (k) {
		case 0: /* cap offset past argsz */
			fake_region(&F, 1, 0, 0x1000, 0, 200, 100);
			break;
		case 1: /* cap offset inside the fixed part */
			fake_region(&F, 1, 0, 0x1000, 0, 8, 100);
			break;
		case 2: /* cycle: a cap pointing at itself */
			fake_region(&F, 1, 0, 0x1000, 0, 32, 100);
			fake_cap_header(&F, 1, 32, 77, 32);
			break;
		case 3: /* backwards pointer (a longer cycle) */
			fake_region(&F, 1, 0, 0x1000, 0, 32, 100);
			fake_cap_header(&F, 1, 32, 77, 48);
			fake_cap_header(&F, 1, 48, 77, 32);
			break;
		case 4: /* sparse area count beyond the buffer */
			fake_region(&F, 1, VFIO_REGION_INFO_FLAG_MMAP, 0x1000,
				    0, 32, 56);
			fake_cap_sparse(&F, 1, 32, 0, 1, ok_area);
			break;
		case 5: /* area outside the region */
			fake_region(&F, 1, VFIO_REGION_INFO_FLAG_MMAP, 0x1000,
				    0, 32, 100);
			fake_cap_sparse(&F, 1, 32, 0, 1, out_of_region);
			break;
		case 6: /* misaligned cap */
			fake_region(&F, 1, 0, 0x1000, 0, 34, 100);
			break;
		case 7: /* two sparse caps */
			fake_region(&F, 1, VFIO_REGION_INFO_FLAG_MMAP, 0x1000,
				    0, 32, 200);
			fake_cap_sparse(&F, 1, 32, 64, 1, ok_area);
			fake_cap_sparse(&F, 1, 64, 0, 1, ok_area);
			break;
		case 8: /* offset + size wraps */
			fake_region(&F, 1, VFIO_REGION_INFO_FLAG_MMAP, 0x2000,
				    UINT64_MAX - 0xfff, 0, 32);
			break;
		}
		ck_assert_msg(vfio_device_create(g, "x", NULL, &d) == -EPROTO,
			      "case %d", k);
		ck_assert_ptr_null(d);
		ck_assert_int_eq(F.open_fds, 2);
		cases++;
	}
	ck_assert_int_eq(cases, 9);
	/* Too many regions or IRQs. */
	fake_device(&F, 2);
	F.dinfo.num_regions = 100000;
	ck_assert_int_eq(vfio_device_create(g, "x", NULL, &d), -EPROTO);
	fake_device(&F, 2);
	F.irq[4].count = 1u << 20;
	ck_assert_int_eq(vfio_device_create(g, "x", NULL, &d), -EPROTO);
	fake_device(&F, 2);
	F.irq_err[1] = -EIO;
	ck_assert_int_eq(vfio_device_create(g, "x", NULL, &d), -EIO);
	fake_device(&F, 2);
	F.irq_err[1] = 0;
	F.err_get_device_fd = -ENODEV;
	ck_assert_int_eq(vfio_device_create(g, "x", NULL, &d), -ENODEV);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

START_TEST(device_region_rw)
{
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);
	struct vfio_device *d;
	uint32_t v = 0x12345678, w = 0;
	uint8_t big[16];

	fake_region(&F, 1, VFIO_REGION_INFO_FLAG_WRITE, 0x100, 0x800, 0,
		    sizeof(struct vfio_region_info));
	d = mk_device(g);
	ck_assert_int_eq(vfio_device_region_write(d, 0, 4, &v, 4), 0);
	ck_assert_int_eq(vfio_device_region_read(d, 0, 4, &w, 4), 0);
	ck_assert_uint_eq(w, v);
	ck_assert_int_eq(vfio_device_region_read(d, 0, 4093, &w, 4), -ERANGE);
	ck_assert_int_eq(vfio_device_region_read(d, 0, UINT64_MAX - 1, &w, 4),
			 -ERANGE);
	ck_assert_int_eq(vfio_device_region_read(d, 0, 4096, big, 0), 0);
	ck_assert_int_eq(vfio_device_region_read(d, 9, 0, &w, 4), -EINVAL);
	/* Region 1 is write-only; region 3 does not exist (size 0). */
	ck_assert_int_eq(vfio_device_region_read(d, 1, 0, &w, 4), -EINVAL);
	ck_assert_int_eq(vfio_device_region_write(d, 1, 0, &v, 4), 0);
	ck_assert_uint_eq(F.bar[0x800], 0x78);
	ck_assert_int_eq(vfio_device_region_write(d, 3, 0, &v, 4), -EINVAL);
	F.short_by = 1;
	ck_assert_int_eq(vfio_device_region_read(d, 0, 0, &w, 4), -EIO);
	ck_assert_int_eq(vfio_device_region_write(d, 0, 0, &w, 4), -EIO);
	F.short_by = 0;
	F.err_rw = -EFAULT;
	ck_assert_int_eq(vfio_device_region_read(d, 0, 0, &w, 4), -EFAULT);
	vfio_device_destroy(d);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
}
END_TEST

static int f_mmap(void *ctx, size_t len, int prot, int fd, off_t off,
		  void **out)
{
	(void)ctx;
	(void)prot;
	(void)fd;
	if (off != 0x20000003000ll || len != 0x1000)
		return -EINVAL;
	*out = (void *)0x1000;
	return 0;
}

static int f_munmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return addr == (void *)0x1000 && len == 0x1000 ? 0 : -EINVAL;
}

START_TEST(device_region_mmap)
{
	static const uint64_t areas[] = {0, 0x1000, 0x3000, 0x1000};
	struct vfio_container *c;
	struct vfio_group *g;
	struct vfio_device *d;
	void *p = NULL;

	F.sys.mmap = f_mmap;
	F.sys.munmap = f_munmap;
	c = mk_container();
	g = mk_group(c);
	fake_region(&F, 2,
		    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
		    0x4000, 0x20000000000ull, 104, 200);
	fake_cap_sparse(&F, 2, 104, 0, 2, areas);
	d = mk_device(g);
	ck_assert_int_eq(vfio_device_region_mmap(d, 2, 1, PROT_READ, &p), 0);
	ck_assert_ptr_eq(p, (void *)0x1000);
	ck_assert_int_eq(vfio_device_region_munmap(d, 2, 1, p), 0);
	ck_assert_int_eq(vfio_device_region_mmap(d, 2, 2, PROT_READ, &p),
			 -EINVAL);
	ck_assert_int_eq(vfio_device_region_mmap(d, 1, 0, PROT_READ, &p),
			 -EINVAL);
	vfio_device_destroy(d);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
}
END_TEST

START_TEST(device_irqs)
{
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);
	struct vfio_device *d = mk_device(g);
	struct vfio_irq_info ii;
	int fds[8] = {100, 101, 102, 103, 104, 105, 106, 107};
	int n;

	ck_assert_int_eq(vfio_device_irq_info(d, VFIO_PCI_MSIX_IRQ_INDEX, &ii),
			 0);
	ck_assert_uint_eq(ii.count, 8);
	ck_assert_int_eq(vfio_device_irq_info(d, 5, &ii), -EINVAL);
	/* The error IRQ of a conventional PCI device: -EINVAL from the
	 * kernel, no vectors here. */
	vfio_device_destroy(d);
	F.irq_err[VFIO_PCI_ERR_IRQ_INDEX] = -EINVAL;
	d = mk_device(g);
	ck_assert_int_eq(vfio_device_irq_info(d, VFIO_PCI_ERR_IRQ_INDEX, &ii),
			 0);
	ck_assert_uint_eq(ii.count, 0);
	ck_assert_int_eq(vfio_device_irq_enable(d, VFIO_PCI_ERR_IRQ_INDEX, fds,
						1),
			 -EINVAL);
	ck_assert_int_eq(vfio_device_irq_enable(d, 1, fds, 0), -EINVAL);
	ck_assert_int_eq(vfio_device_irq_enable(d, 1, fds, 2), -EINVAL);
	ck_assert_int_eq(vfio_device_irq_enable(d, 9, fds, 1), -EINVAL);
	ck_assert_int_eq(vfio_device_irq_set_vector(d, 2, 0, 1), -ENOENT);
	ck_assert_int_eq(F.calls_set_irqs, 0);

	/* MSI-X with 2 vectors. */
	ck_assert_int_eq(vfio_device_irq_enable(d, 2, fds, 2), 0);
	ck_assert_int_eq(vfio_device_irq_enabled(d, 2), 2);
	ck_assert_uint_eq(F.log[0].flags, VFIO_IRQ_SET_DATA_EVENTFD |
						  VFIO_IRQ_SET_ACTION_TRIGGER);
	ck_assert_uint_eq(F.log[0].count, 2);
	ck_assert_int_eq(F.log[0].fds[1], 101);
	ck_assert_int_eq(vfio_device_irq_enable(d, 2, fds, 2), -EBUSY);

	/* Inside the enabled count: one vector changes, nothing torn down. */
	ck_assert_int_eq(vfio_device_irq_set_vector(d, 2, 1, 200), 0);
	ck_assert_int_eq(F.nlog, 2);
	ck_assert_uint_eq(F.log[1].start, 1);
	ck_assert_uint_eq(F.log[1].count, 1);
	ck_assert_int_eq(F.log[1].fds[0], 200);

	/* Beyond it with NORESIZE: disable, enable 4 with the old fds. */
	ck_assert_int_eq(vfio_device_irq_set_vector(d, 2, 3, 300), 0);
	ck_assert_int_eq(F.nlog, 4);
	ck_assert_uint_eq(F.log[2].flags,
			  VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER);
	ck_assert_uint_eq(F.log[2].count, 0);
	ck_assert_uint_eq(F.log[3].count, 4);
	ck_assert_int_eq(F.log[3].fds[0], 100);
	ck_assert_int_eq(F.log[3].fds[1], 200);
	ck_assert_int_eq(F.log[3].fds[2], -1);
	ck_assert_int_eq(F.log[3].fds[3], 300);
	ck_assert_int_eq(vfio_device_irq_enabled(d, 2), 4);
	ck_assert_int_eq(vfio_device_irq_set_vector(d, 2, 8, 1), -EINVAL);

	/* The kernel refuses the larger set: the old 4 come back. */
	F.err_set_irqs_at = F.calls_set_irqs + 2;
	ck_assert_int_eq(vfio_device_irq_set_vector(d, 2, 5, 500), -EINVAL);
	n = F.nlog;
	ck_assert_uint_eq(F.log[n - 1].count, 4);
	ck_assert_int_eq(F.log[n - 1].fds[3], 300);
	ck_assert_int_eq(vfio_device_irq_enabled(d, 2), 4);
	/* ...and when even that fails the IRQ is off. */
	F.err_set_irqs_at = 0;
	F.err_set_irqs_from = F.calls_set_irqs + 2;
	ck_assert_int_eq(vfio_device_irq_set_vector(d, 2, 5, 500), -EINVAL);
	ck_assert_int_eq(vfio_device_irq_enabled(d, 2), 0);
	F.err_set_irqs_from = 0;

	/* Without NORESIZE (Linux 6.5+ MSI-X): grown in place. */
	F.nlog = 0;
	ck_assert_int_eq(vfio_device_irq_enable(d, 2, fds, 1), 0);
	vfio_device_destroy(d);
	F.irq[2].flags &= ~VFIO_IRQ_INFO_NORESIZE;
	d = mk_device(g);
	F.nlog = 0;
	ck_assert_int_eq(vfio_device_irq_enable(d, 2, fds, 1), 0);
	ck_assert_int_eq(vfio_device_irq_set_vector(d, 2, 2, 400), 0);
	ck_assert_int_eq(F.nlog, 2);
	ck_assert_uint_eq(F.log[1].start, 1);
	ck_assert_uint_eq(F.log[1].count, 2);
	ck_assert_int_eq(F.log[1].fds[0], -1);
	ck_assert_int_eq(F.log[1].fds[1], 400);
	ck_assert_int_eq(vfio_device_irq_disable(d, 2), 0);
	ck_assert_int_eq(vfio_device_irq_enabled(d, 2), 0);
	ck_assert_int_eq(vfio_device_irq_disable(d, 2), 0);
	ck_assert_int_eq(F.nlog, 3);

	/* A refused enable leaves it disabled. */
	F.err_set_irqs_at = F.calls_set_irqs + 1;
	ck_assert_int_eq(vfio_device_irq_enable(d, 1, fds, 1), -EINVAL);
	ck_assert_int_eq(vfio_device_irq_enabled(d, 1), 0);
	F.err_set_irqs_at = 0;

	/* Destroy disables what is still enabled. */
	ck_assert_int_eq(vfio_device_irq_enable(d, 1, fds, 1), 0);
	n = F.nlog;
	vfio_device_destroy(d);
	ck_assert_int_eq(F.nlog, n + 1);
	ck_assert_uint_eq(F.log[n].index, 1);
	ck_assert_uint_eq(F.log[n].count, 0);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

START_TEST(device_intx)
{
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);
	struct vfio_device *d = mk_device(g);

	ck_assert_int_eq(vfio_device_intx_enable(d, 10, 11), 0);
	ck_assert_int_eq(F.nlog, 2);
	ck_assert_uint_eq(F.log[0].index, VFIO_PCI_INTX_IRQ_INDEX);
	ck_assert_int_eq(F.log[0].fds[0], 10);
	ck_assert_uint_eq(F.log[1].flags, VFIO_IRQ_SET_DATA_EVENTFD |
						  VFIO_IRQ_SET_ACTION_UNMASK);
	ck_assert_int_eq(F.log[1].fds[0], 11);
	ck_assert_int_eq(vfio_device_intx_unmask(d), 0);
	ck_assert_uint_eq(F.log[2].flags,
			  VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK);
	ck_assert_uint_eq(F.log[2].count, 1);
	ck_assert_int_eq(vfio_device_intx_mask(d), 0);
	ck_assert_uint_eq(F.log[3].flags,
			  VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK);
	ck_assert_int_eq(vfio_device_irq_disable(d, 0), 0);
	/* The resample fd refused: INTx is switched off again. */
	F.err_set_irqs_at = F.calls_set_irqs + 2;
	ck_assert_int_eq(vfio_device_intx_enable(d, 10, 11), -EINVAL);
	ck_assert_int_eq(vfio_device_irq_enabled(d, 0), 0);
	F.err_set_irqs_at = 0;
	/* Without resample: one call. */
	F.nlog = 0;
	ck_assert_int_eq(vfio_device_intx_enable(d, 10, -1), 0);
	ck_assert_int_eq(F.nlog, 1);
	vfio_device_destroy(d);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
}
END_TEST

START_TEST(device_reset)
{
	struct vfio_container *c = mk_container();
	struct vfio_group *g = mk_group(c);
	struct vfio_device *d = mk_device(g);

	ck_assert_int_eq(vfio_device_reset(d), 0);
	ck_assert_int_eq(F.calls_reset, 1);
	F.err_reset = -EIO;
	ck_assert_int_eq(vfio_device_reset(d), -EIO);
	vfio_device_destroy(d);

	/* No FLR: the hot-reset path. */
	F.dinfo.flags = VFIO_DEVICE_FLAGS_PCI;
	d = mk_device(g);
	ck_assert_int_eq(vfio_device_reset(d), -EOPNOTSUPP); /* -ENOTTY */
	F.hot_reset_count = -2; /* root bus: -ENODEV */
	ck_assert_int_eq(vfio_device_reset(d), -EOPNOTSUPP);
	F.hot_reset_count = 2;
	F.hot_reset_group = 5;
	ck_assert_int_eq(vfio_device_reset(d), 0);
	ck_assert_int_eq(F.calls_hot_reset, 1);
	ck_assert_uint_eq(F.hot_reset_nfds, 1); /* one group, once */
	ck_assert_int_eq(F.hot_reset_fds[0], FAKE_FD_GROUP);
	/* A dependent device in a group that is not ours. */
	F.hot_reset_group = 6;
	ck_assert_int_eq(vfio_device_reset(d), -EPERM);
	ck_assert_int_eq(F.calls_hot_reset, 1);
	/* A lying count. */
	F.hot_reset_count = 100000;
	ck_assert_int_eq(vfio_device_reset(d), -EPROTO);
	vfio_device_destroy(d);

	F.dinfo.flags = 0;
	d = mk_device(g);
	ck_assert_int_eq(vfio_device_reset(d), -EOPNOTSUPP);
	vfio_device_destroy(d);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
}
END_TEST

START_TEST(device_sysfs)
{
	struct vfio_container *c = mk_container();
	struct vfio_device *d = NULL, *d2 = NULL;
	struct vfio_group *g;

	F.group_link = "../../../kernel/iommu_groups/7";
	ck_assert_int_eq(vfio_device_create_sysfs(c,
						  "/sys/bus/pci/devices/"
						  "0000:00:03.0/",
						  NULL, &d),
			 0);
	ck_assert_str_eq(F.last_open, "/sys/kernel/iommu_groups/7/"
				      "reserved_regions");
	ck_assert_uint_eq(vfio_group_id(vfio_device_group(d)), 7);
	ck_assert_int_eq(F.open_fds, 3);
	/* A second device of the same group shares it. */
	ck_assert_int_eq(vfio_device_create_sysfs(c,
						  "/sys/bus/pci/devices/"
						  "0000:00:03.1",
						  NULL, &d2),
			 0);
	ck_assert_ptr_eq(vfio_device_group(d2), vfio_device_group(d));
	vfio_device_destroy(d2);
	vfio_device_destroy(d);
	ck_assert_int_eq(F.open_fds, 1);

	/* An existing group is used, not opened again, and not owned. */
	ck_assert_int_eq(vfio_group_create(c, 7, NULL, &g), 0);
	ck_assert_int_eq(
		vfio_device_create_sysfs(c, "/x/0000:00:03.0", NULL, &d), 0);
	vfio_device_destroy(d);
	ck_assert_int_eq(F.open_fds, 2);
	vfio_group_destroy(g);

	F.group_link = "../../../kernel/iommu_groups/x7";
	ck_assert_int_eq(vfio_device_create_sysfs(c, "/x/y", NULL, &d),
			 -EINVAL);
	F.group_link = "../../../kernel/iommu_groups/";
	ck_assert_int_eq(vfio_device_create_sysfs(c, "/x/y", NULL, &d),
			 -EINVAL);
	F.group_link = NULL;
	ck_assert_int_eq(vfio_device_create_sysfs(c, "/x/y", NULL, &d),
			 -ENOENT);
	ck_assert_int_eq(vfio_device_create_sysfs(c, "///", NULL, &d), -EINVAL);
	/* The device fd refused: the group opened for it is closed again. */
	F.group_link = "7";
	F.err_get_device_fd = -ENODEV;
	ck_assert_int_eq(vfio_device_create_sysfs(c, "/x/y", NULL, &d),
			 -ENODEV);
	ck_assert_int_eq(F.open_fds, 1);
	vfio_container_destroy(c);
	ck_assert_int_eq(F.open_fds, 0);
}
END_TEST

static Suite *vfio_suite(void)
{
	Suite *s = suite_create("vfio");
	TCase *tc = tcase_create("seam");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, container_errors);
	tcase_add_test(tc, container_defaults);
	tcase_add_test(tc, group_not_viable);
	tcase_add_test(tc, group_iommu_choice);
	tcase_add_test(tc, group_reserved_regions);
	tcase_add_test(tc, group_kvm);
	tcase_add_test(tc, dma_map_checks);
	tcase_add_test(tc, device_regions);
	tcase_add_test(tc, device_region_argsz_retry);
	tcase_add_test(tc, device_region_lies);
	tcase_add_test(tc, device_region_rw);
	tcase_add_test(tc, device_region_mmap);
	tcase_add_test(tc, device_irqs);
	tcase_add_test(tc, device_intx);
	tcase_add_test(tc, device_reset);
	tcase_add_test(tc, device_sysfs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(vfio_suite(), false);
}
