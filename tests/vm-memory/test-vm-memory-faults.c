/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Error paths of libvm-memory by fault injection (tests/common/fault-inject.h,
 * compiled into the library's sources by tests/vm-memory/meson.build): every
 * call that can fail is made to fail, one at a time, at every point of
 * region creation and snapshot building.  Each failure must return a
 * negative errno, leave the out-parameter alone, and release exactly what
 * was taken: every mapping unmapped once, every descriptor closed once, no
 * region reference leaked or dropped twice (the CVE-2021-3748 class).
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cvmm-check.h"
#include "cvmm/vm-memory.h"
#include "fault-inject.h"

#define PG 4096ull

/* Nothing the library made is still live, nothing was released twice. */
static void assert_all_released(void)
{
	ck_assert_int_eq(fault_bad_releases, 0);
	ck_assert_int_eq(fault_live_maps(), 0);
	ck_assert_int_eq(fault_live_fds(), 0);
}

static int user_file(size_t size)
{
	char path[] = "/tmp/cvmm-vmmem-fault-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* Fail each fallible call of guest_region_create() in turn. */
static void region_faults(struct guest_region_params *p)
{
	struct guest_region *r;
	long n;
	int ret;

	for (n = 0; n < 100; n++) {
		r = (struct guest_region *)&r;
		fault_arm(n);
		ret = guest_region_create(p, &r);
		fault_disarm();
		if (ret == 0)
			break;
		ck_assert_int_eq(fault_injected, 1);
		ck_assert_int_lt(ret, 0);
		ck_assert_ptr_eq(r, (struct guest_region *)&r); /* untouched */
		assert_all_released();
	}
	ck_assert_int_eq(ret, 0);
	ck_assert_int_ge(n, 2); /* some call did fail on the way */
	guest_region_unref(r);
	assert_all_released();
}

START_TEST(region_create_anon_faults)
{
	struct guest_region_params p;

	memset(&p, 0, sizeof(p));
	p.gpa = 0x10000;
	p.size = 16 * PG;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	p.flags = GUEST_REGION_GUARD_PAGES | GUEST_REGION_DIRTY_LOG;
	region_faults(&p);
	p.backing = GUEST_REGION_ANON_SHARED;
	p.flags = GUEST_REGION_NORESERVE | GUEST_REGION_DIRTY_LOG;
	region_faults(&p);
}
END_TEST

START_TEST(region_create_memfd_faults)
{
	struct guest_region_params p;

	memset(&p, 0, sizeof(p));
	p.size = 8 * PG;
	p.backing = GUEST_REGION_MEMFD;
	p.flags = GUEST_REGION_GUARD_PAGES | GUEST_REGION_DIRTY_LOG;
	region_faults(&p);
	p.flags = 0;
	region_faults(&p);
}
END_TEST

START_TEST(region_create_file_faults)
{
	struct guest_region_params p;
	int fd = user_file(16 * PG);

	memset(&p, 0, sizeof(p));
	p.size = 8 * PG;
	p.backing = GUEST_REGION_FILE;
	p.fd = fd;
	p.file_offset = 4 * PG;
	p.flags = GUEST_REGION_GUARD_PAGES | GUEST_REGION_DIRTY_LOG;
	region_faults(&p);
	/* The caller's descriptor is never closed by the library. */
	ck_assert_int_ge(fcntl(fd, F_GETFD), 0);
	close(fd);
}
END_TEST

START_TEST(region_create_user_faults)
{
	struct guest_region_params p;
	void *mem = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(mem, MAP_FAILED);
	memset(&p, 0, sizeof(p));
	p.size = 4 * PG;
	p.backing = GUEST_REGION_USER;
	p.host_addr = mem;
	p.flags = GUEST_REGION_DIRTY_LOG;
	region_faults(&p);
	/* Still the caller's: writable after every failure and the unref. */
	((volatile uint8_t *)mem)[4 * PG - 1] = 1;
	ck_assert_int_eq(munmap(mem, 4 * PG), 0);
}
END_TEST

static struct guest_region *mkreg(guest_addr_t gpa, uint64_t size)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;

	memset(&p, 0, sizeof(p));
	p.gpa = gpa;
	p.size = size;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	ck_assert_int_eq(guest_region_create(&p, &r), 0);
	return r;
}

/*
 * Snapshot building under allocation failure: no reference is taken on
 * failure, none is lost on success.  Dropping the test's own references
 * at the end must unmap every region exactly once (a leaked reference
 * leaves a mapping live; a reference dropped twice unmaps twice or earlier).
 */
START_TEST(snapshot_faults)
{
	struct guest_region *r[3], *removed;
	struct guest_memory *m, *m2, *m3;
	long n;
	int ret;

	r[0] = mkreg(0, 4 * PG);
	r[1] = mkreg(8 * PG, 4 * PG);
	r[2] = mkreg(4 * PG, 4 * PG);
	for (n = 0;; n++) {
		m = (struct guest_memory *)&m;
		fault_arm(n);
		ret = guest_memory_create(r, 2, &m);
		fault_disarm();
		if (ret == 0)
			break;
		ck_assert_int_eq(ret, -ENOMEM);
		ck_assert_ptr_eq(m, (struct guest_memory *)&m);
	}
	ck_assert_int_ge(n, 1);
	for (n = 0;; n++) {
		m2 = (struct guest_memory *)&m2;
		fault_arm(n);
		ret = guest_memory_add_region(m, r[2], &m2);
		fault_disarm();
		if (ret == 0)
			break;
		ck_assert_int_eq(ret, -ENOMEM);
		ck_assert_ptr_eq(m2, (struct guest_memory *)&m2);
	}
	ck_assert_int_ge(n, 1);
	ck_assert_uint_eq(guest_memory_num_regions(m2), 3);
	for (n = 0;; n++) {
		m3 = (struct guest_memory *)&m3;
		removed = (struct guest_region *)&removed;
		fault_arm(n);
		ret = guest_memory_remove_region(m2, 0, 4 * PG, &m3, &removed);
		fault_disarm();
		if (ret == 0)
			break;
		ck_assert_int_eq(ret, -ENOMEM);
		ck_assert_ptr_eq(m3, (struct guest_memory *)&m3);
		ck_assert_ptr_eq(removed, (struct guest_region *)&removed);
	}
	ck_assert_int_ge(n, 1);
	ck_assert_ptr_eq(removed, r[0]);
	ck_assert_uint_eq(guest_memory_num_regions(m3), 2);
	guest_region_unref(removed);
	ck_assert_int_eq(fault_live_maps(), 3); /* all regions still mapped */
	guest_memory_unref(m);
	guest_memory_unref(m2);
	ck_assert_int_eq(fault_live_maps(), 3);
	guest_region_unref(r[0]); /* only our reference was left */
	ck_assert_int_eq(fault_live_maps(), 2);
	guest_region_unref(r[1]);
	guest_region_unref(r[2]);
	ck_assert_int_eq(fault_live_maps(), 2); /* m3 holds them */
	guest_memory_unref(m3);
	assert_all_released();
}
END_TEST

/*
 * guest_memory_create_ranges() under every failure in turn (the region
 * array, each region's mapping, memfd, bitmap, the snapshot): each failure
 * unmaps and closes what the call had made so far, and the snapshot made
 * in the end is the only holder of its regions.
 */
START_TEST(create_ranges_faults)
{
	const struct guest_memory_range ranges[] = {
		{.gpa = 16 * PG, .size = 4 * PG},
		{.gpa = 0, .size = 8 * PG},
		{.gpa = 8 * PG, .size = 2 * PG},
	};
	struct guest_region_params p;
	struct guest_memory *m;
	long n;
	int ret;

	memset(&p, 0, sizeof(p));
	p.backing = GUEST_REGION_MEMFD;
	p.flags = GUEST_REGION_GUARD_PAGES | GUEST_REGION_DIRTY_LOG;
	for (n = 0; n < 200; n++) {
		m = (struct guest_memory *)&m;
		fault_arm(n);
		ret = guest_memory_create_ranges(ranges, 3, &p, &m);
		fault_disarm();
		if (ret == 0)
			break;
		ck_assert_int_eq(fault_injected, 1);
		ck_assert_int_lt(ret, 0);
		ck_assert_ptr_eq(m, (struct guest_memory *)&m); /* untouched */
		assert_all_released();
	}
	ck_assert_int_eq(ret, 0);
	/* array + 3 * (memfd, ftruncate, reservation, mapping, ...) + the
	 * snapshot: many calls failed on the way. */
	ck_assert_int_ge(n, 10);
	ck_assert_uint_eq(guest_memory_num_regions(m), 3);
	ck_assert_int_eq(fault_live_maps(), 3);
	ck_assert_int_eq(fault_live_fds(), 3);
	ck_assert_int_eq(guest_memory_write_u32(m, 8 * PG - 2, 0x01020304), 0);
	guest_memory_unref(m);
	assert_all_released();
}
END_TEST

/* More regions than the on-stack iovec array: the heap array failing
 * gives -ENOMEM before any I/O. */
START_TEST(fd_io_iovec_alloc_fault)
{
	struct guest_region *r[20];
	struct guest_memory *m;
	int fd = user_file(0);
	size_t i;

	for (i = 0; i < 20; i++)
		r[i] = mkreg(i * PG, PG);
	ck_assert_int_eq(guest_memory_create(r, 20, &m), 0);
	for (i = 0; i < 20; i++)
		guest_region_unref(r[i]);
	fault_arm(0);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, 20 * PG, fd, 0),
			 -ENOMEM);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 0, 20 * PG, fd, 0),
			 -ENOMEM);
	fault_disarm();
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0); /* nothing written */
	/* Within the on-stack array no allocation is needed at all. */
	fault_arm(0);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, 16 * PG, fd, 0),
			 (ssize_t)(16 * PG));
	fault_disarm();
	ck_assert_int_eq(fault_injected, 0);
	close(fd);
	guest_memory_unref(m);
	assert_all_released();
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("vm-memory-faults");
	TCase *tc = tcase_create("faults");

	tcase_add_test(tc, region_create_anon_faults);
	tcase_add_test(tc, region_create_memfd_faults);
	tcase_add_test(tc, region_create_file_faults);
	tcase_add_test(tc, region_create_user_faults);
	tcase_add_test(tc, snapshot_faults);
	tcase_add_test(tc, create_ranges_faults);
	tcase_add_test(tc, fd_io_iovec_alloc_fault);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(faults_suite(), false);
}
