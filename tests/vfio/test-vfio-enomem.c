/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * -ENOMEM paths of libvfio, by fault injection (tests/common/fault-inject.h
 * compiled into the library's sources) against the fake kernel: a whole
 * chain (container, group with reserved ranges, device with a sparse-mmap
 * region, MSI-X grown past a NORESIZE count, hot reset) with malloc
 * failing after 0, 1, 2, ... successes.  Each failure is -ENOMEM and
 * leaves no fd open; leaks of memory are the sanitizer and valgrind runs'
 * to find.
 */
#include <cvmm/vfio.h>

#include <check.h>
#include <errno.h>

#include "cvmm-check.h"
#include "fake-vfio.h"
#include "fault-inject.h"

static struct fake F;

static void fake_setup(void)
{
	static const uint64_t areas[] = {0, 0x1000, 0x3000, 0x1000};

	fake_init(&F);
	fake_device(&F, 9);
	F.dinfo.flags = VFIO_DEVICE_FLAGS_PCI; /* reset: the hot-reset path */
	F.hot_reset_count = 1;
	F.hot_reset_group = 5;
	F.reserved = "0x00000000fee00000 0x00000000feefffff msi\n"
		     "0x0000000000100000 0x0000000000100fff direct\n";
	fake_region(&F, 2,
		    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
		    0x4000, 0x10000, 560, 640); /* needs a second try */
	fake_cap_sparse(&F, 2, 560, 0, 2, areas);
}

/* The chain; 0 or the first error, everything released on error. */
static int chain(void)
{
	struct vfio_container_config cfg = {.sys = &F.sys};
	struct vfio_container *c = NULL;
	struct vfio_group *g = NULL;
	struct vfio_device *d = NULL;
	int fds[2] = {100, 101};
	int err;

	err = vfio_container_create(&cfg, &c);
	if (!err)
		err = vfio_group_create(c, 5, NULL, &g);
	if (!err)
		err = vfio_device_create(g, "0000:00:01.0", NULL, &d);
	if (!err)
		err = vfio_device_irq_enable(d, VFIO_PCI_MSIX_IRQ_INDEX, fds,
					     2);
	if (!err)
		err = vfio_device_irq_set_vector(d, VFIO_PCI_MSIX_IRQ_INDEX, 5,
						 105);
	if (!err)
		err = vfio_device_irq_set_vector(d, VFIO_PCI_MSIX_IRQ_INDEX, 0,
						 106);
	if (!err)
		err = vfio_device_reset(d);
	if (!err && vfio_device_irq_enabled(d, VFIO_PCI_MSIX_IRQ_INDEX) != 6)
		err = -EIO;
	vfio_device_destroy(d);
	vfio_group_destroy(g);
	vfio_container_destroy(c);
	return err;
}

START_TEST(chain_enomem)
{
	long n;
	int err;

	for (n = 0;; n++) {
		fake_setup();
		fault_arm(n);
		err = chain();
		fault_disarm();
		ck_assert_int_eq(F.open_fds, 0);
		if (err == 0)
			break;
		ck_assert_msg(err == -ENOMEM, "after %ld allocations: %d", n,
			      err);
		ck_assert_int_gt(fault_injected, 0);
	}
	/* Container, group, its ranges, the device, its tables, region
	 * buffers, IRQ sets, vector arrays, hot-reset buffers. */
	ck_assert_int_gt(n, 15);
	/* And without injection at all. */
	fake_setup();
	ck_assert_int_eq(chain(), 0);
	ck_assert_int_eq(F.calls_hot_reset, 1);
}
END_TEST

static Suite *enomem_suite(void)
{
	Suite *s = suite_create("vfio-enomem");
	TCase *tc = tcase_create("chain");

	tcase_add_test(tc, chain_enomem);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(enomem_suite(), false);
}
