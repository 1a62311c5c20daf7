/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* <cvmm/vfio-memory.h>: every region of a guest_memory DMA-mapped at its
 * guest physical address, all or nothing (fake kernel, no /dev/vfio). */
#include <cvmm/vfio-memory.h>

#include <check.h>

#include "cvmm-check.h"
#include "fake-vfio.h"
#include "test-memory.h"

static struct fake F;

/* Fail the n-th MAP_DMA. */
static int fail_map_at, maps, unmaps;
static uint64_t unmapped_iova[8];
static int (*real_ioctl)(void *, int, unsigned long, void *);

static int counting_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	if (fd == FAKE_FD_CONTAINER && req == VFIO_IOMMU_MAP_DMA &&
	    ++maps == fail_map_at)
		return -ENOSPC;
	if (fd == FAKE_FD_CONTAINER && req == VFIO_IOMMU_UNMAP_DMA &&
	    unmaps < 8)
		unmapped_iova[unmaps++] =
			((struct vfio_iommu_type1_dma_unmap *)arg)->iova;
	return real_ioctl(ctx, fd, req, arg);
}

START_TEST(map_guest_memory)
{
	struct guest_memory *m = CVMM_TEST_MEMORY(
		{.gpa = 0, .size = 64 * 1024},
		{.gpa = 0x100000, .size = 4096, .flags = GUEST_REGION_READONLY},
		{.gpa = 0x200000, .size = 8192});
	struct vfio_container_config cfg = {.sys = &F.sys};
	struct vfio_container *c = NULL;
	struct vfio_group *g = NULL;

	fake_init(&F);
	real_ioctl = F.sys.ioctl;
	F.sys.ioctl = counting_ioctl;
	ck_assert_int_eq(vfio_container_create(&cfg, &c), 0);
	ck_assert_int_eq(vfio_group_create(c, 1, NULL, &g), 0);
	ck_assert_int_eq(vfio_container_dma_map_guest_memory(c, m), 0);
	ck_assert_int_eq(maps, 3);
	/* The last one mapped: 0x200000, writable. */
	ck_assert_uint_eq(F.last_map.iova, 0x200000);
	ck_assert_uint_eq(F.last_map.size, 8192);
	ck_assert_uint_eq(F.last_map.flags,
			  VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
	ck_assert_int_eq(vfio_container_dma_unmap_guest_memory(
				 c, m, guest_memory_num_regions(m)),
			 0);
	ck_assert_int_eq(unmaps, 3);

	/* The third map fails: the first two are unmapped again. */
	maps = unmaps = 0;
	fail_map_at = 3;
	ck_assert_int_eq(vfio_container_dma_map_guest_memory(c, m), -ENOSPC);
	ck_assert_int_eq(unmaps, 2);
	ck_assert_uint_eq(unmapped_iova[0], 0);
	ck_assert_uint_eq(unmapped_iova[1], 0x100000);
	fail_map_at = 0;
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	guest_memory_unref(m);
}
END_TEST

START_TEST(map_readonly_and_reserved)
{
	struct guest_memory *m = CVMM_TEST_MEMORY(
		{.gpa = 0x100000, .size = 4096, .flags = GUEST_REGION_READONLY},
		{.gpa = 0xfee00000, .size = 4096});
	struct vfio_container_config cfg = {.sys = &F.sys};
	struct vfio_container *c = NULL;
	struct vfio_group *g = NULL;

	fake_init(&F);
	real_ioctl = F.sys.ioctl;
	F.sys.ioctl = counting_ioctl;
	maps = unmaps = fail_map_at = 0;
	F.reserved = "0x00000000fee00000 0x00000000feefffff msi\n";
	ck_assert_int_eq(vfio_container_create(&cfg, &c), 0);
	ck_assert_int_eq(vfio_group_create(c, 1, NULL, &g), 0);
	ck_assert_int_eq(vfio_container_dma_map_guest_memory(c, m),
			 -EADDRNOTAVAIL);
	ck_assert_int_eq(maps, 1);
	ck_assert_uint_eq(F.last_map.flags, VFIO_DMA_MAP_FLAG_READ);
	ck_assert_int_eq(unmaps, 1);
	ck_assert_int_eq(vfio_container_dma_map_guest_memory(NULL, m), -EINVAL);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	guest_memory_unref(m);
}
END_TEST

static Suite *vfio_memory_suite(void)
{
	Suite *s = suite_create("vfio-memory");
	TCase *tc = tcase_create("walker");

	tcase_add_test(tc, map_guest_memory);
	tcase_add_test(tc, map_readonly_and_reserved);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(vfio_memory_suite(), false);
}
