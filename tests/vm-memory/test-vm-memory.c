/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libvm-memory unit tests. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "cvmm/vm-memory.h"
#include "test-memory.h"

#define KiB 1024ull
#define MiB (1024ull * 1024ull)
#define PG  4096ull

static struct guest_region *mkreg(guest_addr_t gpa, uint64_t size,
				  enum guest_region_backing backing,
				  unsigned int flags)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;

	memset(&p, 0, sizeof(p));
	p.gpa = gpa;
	p.size = size;
	p.backing = backing;
	p.flags = flags;
	ck_assert_int_eq(guest_region_create(&p, &r), 0);
	ck_assert_ptr_nonnull(r);
	return r;
}

/* A snapshot of @n regions; the snapshot holds the only references. */
static struct guest_memory *mkmem(struct guest_region **r, size_t n)
{
	struct guest_memory *m = NULL;
	size_t i;

	ck_assert_int_eq(guest_memory_create(r, n, &m), 0);
	for (i = 0; i < n; i++)
		guest_region_unref(r[i]);
	return m;
}

/* RAM: [0, 64K) and [64K, 128K) adjacent, hole, [1M, 1M+64K). */
static struct guest_memory *std_mem(void)
{
	return CVMM_TEST_MEMORY({.gpa = 1 * MiB, .size = 64 * KiB},
				{.gpa = 0, .size = 64 * KiB},
				{.gpa = 64 * KiB,
				 .size = 64 * KiB,
				 .backing = GUEST_REGION_ANON_SHARED});
}

static void *host_of(struct guest_memory *m, guest_addr_t gpa)
{
	void *h = NULL;

	ck_assert_int_eq(guest_memory_translate(m, gpa, 1, &h), 0);
	return h;
}

/* ------------------------------------------------------------------ regions */

START_TEST(test_region_anon_private)
{
	struct guest_region *r =
		mkreg(0x100000, 2 * MiB, GUEST_REGION_ANON_PRIVATE, 0);
	uint8_t *h = guest_region_host_addr(r);
	uint64_t off = 123;

	ck_assert_uint_eq(guest_region_gpa(r), 0x100000);
	ck_assert_uint_eq(guest_region_size(r), 2 * MiB);
	ck_assert_uint_eq(guest_region_flags(r), 0);
	ck_assert_int_eq(guest_region_fd(r, &off), -1);
	ck_assert_uint_eq(off, 0);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq((uintptr_t)h % PG, 0);
	ck_assert_uint_eq(h[0], 0);
	ck_assert_uint_eq(h[2 * MiB - 1], 0);
	h[0] = 1;
	h[2 * MiB - 1] = 2;
	guest_region_unref(r);
}
END_TEST

START_TEST(test_region_bad_params)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;

	memset(&p, 0, sizeof(p));
	p.size = PG;
	ck_assert_int_eq(guest_region_create(NULL, &r), -EINVAL);
	ck_assert_int_eq(guest_region_create(&p, NULL), -EINVAL);
	p.size = 0;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.size = PG + 1;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.size = PG;
	p.gpa = 0x800;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.gpa = UINT64_MAX - PG + 1; /* end would be 2^64 */
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.gpa = 0;
	p.flags = 1u << 20;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.flags = 0;
	p.backing = (enum guest_region_backing)42;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_region_ref_unref)
{
	struct guest_region *r = mkreg(0, PG, GUEST_REGION_ANON_PRIVATE, 0);
	uint8_t *h = guest_region_host_addr(r);

	ck_assert_ptr_eq(guest_region_ref(r), r);
	guest_region_unref(r);
	h[0] = 0x5a; /* still mapped: one reference left */
	ck_assert_uint_eq(h[0], 0x5a);
	guest_region_unref(r);
	guest_region_unref(NULL);
	ck_assert_ptr_null(guest_region_ref(NULL));
}
END_TEST

START_TEST(test_region_anon_shared)
{
	struct guest_region *r = mkreg(0, PG, GUEST_REGION_ANON_SHARED, 0);
	volatile uint8_t *h = guest_region_host_addr(r);
	pid_t pid;
	int st;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		h[10] = 0x77;
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_uint_eq(h[10], 0x77); /* shared with the child */
	guest_region_unref(r);
}
END_TEST

START_TEST(test_region_memfd)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	struct guest_memory *m;
	uint64_t off = 99;
	char buf[8] = {0};
	int fd;

	memset(&p, 0, sizeof(p));
	p.gpa = 0x10000;
	p.size = 64 * KiB;
	p.backing = GUEST_REGION_MEMFD;
	p.name = "test-ram";
	ck_assert_int_eq(guest_region_create(&p, &r), 0);
	fd = guest_region_fd(r, &off);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(off, 0);
	m = mkmem(&r, 1);
	ck_assert_int_eq(guest_memory_write(m, 0x10000 + 4 * KiB, "memfd!", 6),
			 0);
	/* The fd sees what the guest wrote (shared mapping). */
	ck_assert_int_eq(pread(fd, buf, 6, 4 * KiB), 6);
	ck_assert_str_eq(buf, "memfd!");
	ck_assert_int_eq(pwrite(fd, "back", 4, 8 * KiB), 4);
	ck_assert_int_eq(guest_memory_read(m, 0x10000 + 8 * KiB, buf, 4), 0);
	ck_assert_mem_eq(buf, "back", 4);
	guest_memory_unref(m);
}
END_TEST

/* Another process (e.g. a vhost-user backend) maps the memfd it was
 * handed and writes guest RAM; the VMM's snapshot sees the bytes, and the
 * other way round. */
START_TEST(test_region_memfd_other_process)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	struct guest_memory *m;
	char buf[16] = {0};
	int fd, status = 0;
	pid_t pid;

	memset(&p, 0, sizeof(p));
	p.gpa = 0x200000;
	p.size = 16 * KiB;
	p.backing = GUEST_REGION_MEMFD;
	ck_assert_int_eq(guest_region_create(&p, &r), 0);
	fd = guest_region_fd(r, NULL);
	m = mkmem(&r, 1);
	ck_assert_int_eq(
		guest_memory_write(m, 0x200000 + 100, "to-backend", 10), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The backend: its own shared mapping of the fd. */
		char *q = mmap(NULL, 16 * KiB, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);

		if (q == MAP_FAILED || memcmp(q + 100, "to-backend", 10))
			_exit(1);
		memcpy(q + 3 * KiB, "from-backend", 12);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(guest_memory_read(m, 0x200000 + 3 * KiB, buf, 12), 0);
	ck_assert_mem_eq(buf, "from-backend", 12);
	guest_memory_unref(m);
}
END_TEST

static int make_tmpfile(size_t size)
{
	char path[] = "/tmp/cvmm-vmmem-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	return fd;
}

START_TEST(test_region_file_offset)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	struct guest_memory *m;
	uint64_t off = 0;
	uint32_t v = 0;
	int fd = make_tmpfile(64 * KiB), rfd;

	ck_assert_int_eq(pwrite(fd, "\x11\x22\x33\x44", 4, 8 * KiB), 4);
	memset(&p, 0, sizeof(p));
	p.gpa = 0x200000;
	p.size = 16 * KiB;
	p.backing = GUEST_REGION_FILE;
	p.fd = fd;
	p.file_offset = 8 * KiB;
	ck_assert_int_eq(guest_region_create(&p, &r), 0);
	rfd = guest_region_fd(r, &off);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_ne(rfd, fd); /* dup'ed, not taken over */
	ck_assert_uint_eq(off, 8 * KiB);
	close(fd); /* the region keeps its own fd */
	m = mkmem(&r, 1);
	ck_assert_int_eq(guest_memory_read_u32(m, 0x200000, &v), 0);
	ck_assert_uint_eq(v, 0x44332211);
	ck_assert_int_eq(guest_memory_write_u32(m, 0x200004, 0xdeadbeef), 0);
	ck_assert_int_eq(pread(rfd, &v, 4, 8 * KiB + 4), 4);
	ck_assert_uint_eq(v, 0xdeadbeef);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_region_file_errors)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	int fd = make_tmpfile(16 * KiB);

	memset(&p, 0, sizeof(p));
	p.size = 16 * KiB;
	p.backing = GUEST_REGION_FILE;
	p.fd = -1;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.fd = 1000000; /* not open */
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.fd = fd;
	p.file_offset = 100; /* unaligned */
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.file_offset = PG; /* file too small for offset + size */
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.file_offset = UINT64_MAX - PG + 1;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	ck_assert_ptr_null(r);
	close(fd);
}
END_TEST

static char log_buf[512];

static void test_log(enum guest_memory_log_level lvl, const char *msg,
		     void *opaque)
{
	(void)lvl;
	*(int *)opaque += 1;
	snprintf(log_buf, sizeof(log_buf), "%s", msg);
}

START_TEST(test_region_hugetlb)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	int calls = 0, ret;

	memset(&p, 0, sizeof(p));
	p.log = test_log;
	p.log_opaque = &calls;
	p.size = 4 * MiB;
	p.backing = GUEST_REGION_HUGETLB;
	ret = guest_region_create(&p, &r);
	if (ret == 0) {
		uint8_t *h = guest_region_host_addr(r);

		ck_assert_uint_eq((uintptr_t)h % (2 * MiB), 0);
		h[0] = 1;
		guest_region_unref(r);
	} else {
		ck_assert_int_eq(ret, -ENOTSUP);
		ck_assert_int_eq(calls, 1); /* it says why */
		ck_assert_ptr_nonnull(strstr(log_buf, "huge"));
	}
	/* A size that is no huge-page multiple, a bad huge page size. */
	p.size = 2 * MiB + PG;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.size = 2 * MiB;
	p.huge_page_size = 3 * MiB;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	/* A huge page size the kernel does not have. */
	p.huge_page_size = 512 * MiB;
	p.size = 512 * MiB;
	calls = 0;
	ret = guest_region_create(&p, &r);
	if (ret == 0) {
		guest_region_unref(r);
	} else {
		ck_assert_int_eq(ret, -ENOTSUP);
		ck_assert_int_eq(calls, 1); /* it says why */
		ck_assert_ptr_nonnull(strstr(log_buf, "huge"));
		ck_assert_ptr_nonnull(strstr(log_buf, "524288 kB"));
	}
}
END_TEST

START_TEST(test_region_user_never_unmapped)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	struct guest_memory *m;
	uint8_t *mem = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(mem, MAP_FAILED);
	memset(&p, 0, sizeof(p));
	p.gpa = 0x1000;
	p.size = 8 * PG;
	p.backing = GUEST_REGION_USER;
	p.host_addr = mem;
	ck_assert_int_eq(guest_region_create(&p, &r), 0);
	ck_assert_ptr_eq(guest_region_host_addr(r), mem);
	m = mkmem(&r, 1);
	ck_assert_int_eq(guest_memory_write_u8(m, 0x1000 + 5, 0xab), 0);
	ck_assert_uint_eq(mem[5], 0xab);
	guest_memory_unref(m); /* last reference: must not unmap */
	mem[8 * PG - 1] = 1;
	ck_assert_uint_eq(mem[5], 0xab);
	ck_assert_int_eq(munmap(mem, 8 * PG), 0);

	p.host_addr = NULL;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.host_addr = (void *)0x1234;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
	p.host_addr = (void *)0x10000;
	p.flags = GUEST_REGION_GUARD_PAGES;
	ck_assert_int_eq(guest_region_create(&p, &r), -EINVAL);
}
END_TEST

/* Is [addr, addr+len) a PROT_NONE mapping in /proc/self/maps? */
static bool maps_prot_none(uintptr_t addr, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (lo <= addr && addr + len <= hi) {
			found = strncmp(perms, "---", 3) == 0;
			break;
		}
	}
	fclose(f);
	return found;
}

static int child_touch(volatile uint8_t *p)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*p = 1;
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

START_TEST(test_region_guard_pages)
{
	static const enum guest_region_backing b[] = {GUEST_REGION_ANON_PRIVATE,
						      GUEST_REGION_ANON_SHARED,
						      GUEST_REGION_MEMFD};
	size_t i;

	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		struct guest_region *r =
			mkreg(0, 16 * PG, b[i], GUEST_REGION_GUARD_PAGES);
		uint8_t *h = guest_region_host_addr(r);

		ck_assert_uint_eq(guest_region_flags(r),
				  GUEST_REGION_GUARD_PAGES);
		h[0] = 1;
		h[16 * PG - 1] = 2;
		ck_assert(maps_prot_none((uintptr_t)h - PG, PG));
		ck_assert(maps_prot_none((uintptr_t)h + 16 * PG, PG));
		ck_assert_int_eq(child_touch(h - 1), SIGSEGV);
		ck_assert_int_eq(child_touch(h + 16 * PG), SIGSEGV);
		ck_assert_int_eq(child_touch(h + 16 * PG - 1), 0);
		guest_region_unref(r);
	}
}
END_TEST

START_TEST(test_region_noreserve)
{
	struct guest_region *r = mkreg(0, 64 * MiB, GUEST_REGION_ANON_PRIVATE,
				       GUEST_REGION_NORESERVE);
	uint8_t *h = guest_region_host_addr(r);

	h[32 * MiB] = 3;
	ck_assert_uint_eq(h[32 * MiB], 3);
	ck_assert_uint_eq(guest_region_flags(r), GUEST_REGION_NORESERVE);
	guest_region_unref(r);
}
END_TEST

/* ---------------------------------------------------------------- snapshots */

START_TEST(test_memory_empty)
{
	struct guest_memory *m = NULL;
	uint8_t b = 0;
	void *h;
	uint64_t avail;

	ck_assert_int_eq(guest_memory_create(NULL, 0, &m), 0);
	ck_assert_uint_eq(guest_memory_num_regions(m), 0);
	ck_assert_uint_eq(guest_memory_end(m), 0);
	ck_assert_ptr_null(guest_memory_find_region(m, 0));
	ck_assert_ptr_null(guest_memory_region_at(m, 0));
	ck_assert_int_eq(guest_memory_read(m, 0, &b, 1), -EFAULT);
	ck_assert_int_eq(guest_memory_write(m, 0, &b, 1), -EFAULT);
	ck_assert_int_eq(guest_memory_read(m, 0, &b, 0), 0);
	ck_assert_int_eq(guest_memory_translate(m, 0, 1, &h), -EFAULT);
	ck_assert_int_eq(guest_memory_contiguous(m, 0, &h, &avail), -EFAULT);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_memory_sorted_and_find)
{
	struct guest_memory *m = std_mem();
	struct guest_region *r;

	ck_assert_uint_eq(guest_memory_num_regions(m), 3);
	ck_assert_uint_eq(guest_region_gpa(guest_memory_region_at(m, 0)), 0);
	ck_assert_uint_eq(guest_region_gpa(guest_memory_region_at(m, 1)),
			  64 * KiB);
	ck_assert_uint_eq(guest_region_gpa(guest_memory_region_at(m, 2)),
			  1 * MiB);
	ck_assert_ptr_null(guest_memory_region_at(m, 3));
	ck_assert_uint_eq(guest_memory_end(m), 1 * MiB + 64 * KiB);

	r = guest_memory_find_region(m, 0);
	ck_assert_ptr_eq(r, guest_memory_region_at(m, 0));
	ck_assert_ptr_eq(guest_memory_find_region(m, 64 * KiB - 1), r);
	ck_assert_ptr_eq(guest_memory_find_region(m, 64 * KiB),
			 guest_memory_region_at(m, 1));
	ck_assert_ptr_null(guest_memory_find_region(m, 128 * KiB));
	ck_assert_ptr_null(guest_memory_find_region(m, 1 * MiB - 1));
	ck_assert_ptr_eq(guest_memory_find_region(m, 1 * MiB + 64 * KiB - 1),
			 guest_memory_region_at(m, 2));
	ck_assert_ptr_null(guest_memory_find_region(m, 1 * MiB + 64 * KiB));
	ck_assert_ptr_null(guest_memory_find_region(m, UINT64_MAX));
	ck_assert_ptr_null(guest_memory_find_region(NULL, 0));
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_memory_create_overlap)
{
	struct guest_region *r[3];
	struct guest_memory *m = NULL;

	r[0] = mkreg(0, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
	r[1] = mkreg(60 * KiB, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
	r[2] = mkreg(1 * MiB, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
	ck_assert_int_eq(guest_memory_create(r, 3, &m), -EEXIST);
	ck_assert_ptr_null(m);
	guest_region_unref(r[1]);
	r[1] = r[0]; /* the same region twice */
	ck_assert_int_eq(guest_memory_create(r, 2, &m), -EEXIST);
	/* Failures took no references: these are the last ones. */
	guest_region_unref(r[0]);
	guest_region_unref(r[2]);
	{
		struct guest_region *x[2];

		x[0] = mkreg(0, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
		x[1] = mkreg(1 * MiB, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
		ck_assert_int_eq(guest_memory_create(x, 2, &m), 0);
		guest_memory_unref(m);
		guest_region_unref(x[0]);
		guest_region_unref(x[1]);
	}
}
END_TEST

START_TEST(test_memory_create_bad_params)
{
	struct guest_region *r[2] = {NULL, NULL};
	struct guest_memory *m = NULL;

	ck_assert_int_eq(guest_memory_create(NULL, 1, &m), -EINVAL);
	ck_assert_int_eq(guest_memory_create(r, 2, &m), -EINVAL);
	r[0] = mkreg(0, PG, GUEST_REGION_ANON_PRIVATE, 0);
	ck_assert_int_eq(guest_memory_create(r, 1, NULL), -EINVAL);
	ck_assert_int_eq(guest_memory_create(r, 2, &m), -EINVAL);
	/* A count no array can have (n * sizeof(pointer) wraps): refused
	 * before the array is read, not copied with a wrapped size. */
	ck_assert_int_eq(guest_memory_create(r, SIZE_MAX / sizeof(r[0]) + 2,
					     &m),
			 -ENOMEM);
	ck_assert_int_eq(guest_memory_create(r, SIZE_MAX, &m), -ENOMEM);
	ck_assert_ptr_null(m);
	guest_region_unref(r[0]);
	ck_assert_ptr_null(guest_memory_ref(NULL));
	guest_memory_unref(NULL);
	ck_assert_uint_eq(guest_memory_num_regions(NULL), 0);
	ck_assert_uint_eq(guest_memory_end(NULL), 0);
}
END_TEST

/* guest_memory_create_ranges(): one call instead of create-region,
 * snapshot and unref for each range. */
START_TEST(test_memory_create_ranges)
{
	const struct guest_memory_range ranges[] = {
		{.gpa = 0x100000, .size = 2 * PG},
		{.gpa = 0, .size = 4 * PG},
		{.gpa = 4 * PG, .size = 4 * PG}, /* adjacent to the one below */
	};
	struct guest_region_params p;
	struct guest_memory *m = NULL;
	uint32_t v = 0;
	size_t i;

	ck_assert_int_eq(guest_memory_create_ranges(ranges, 3, NULL, &m), 0);
	ck_assert_uint_eq(guest_memory_num_regions(m), 3);
	ck_assert_uint_eq(guest_region_gpa(guest_memory_region_at(m, 0)), 0);
	ck_assert_uint_eq(guest_region_gpa(guest_memory_region_at(m, 1)),
			  4 * PG);
	ck_assert_uint_eq(guest_region_size(guest_memory_region_at(m, 2)),
			  2 * PG);
	ck_assert_uint_eq(guest_memory_end(m), 0x100000 + 2 * PG);
	/* Defaults: private anonymous memory, no flags; an access may cross
	 * from one range into the adjacent one. */
	for (i = 0; i < 3; i++) {
		struct guest_region *r = guest_memory_region_at(m, i);

		ck_assert_uint_eq(guest_region_flags(r), 0);
		ck_assert_int_eq(guest_region_fd(r, NULL), -1);
	}
	ck_assert_int_eq(guest_memory_write_u32(m, 4 * PG - 2, 0xa1b2c3d4), 0);
	ck_assert_int_eq(guest_memory_read_u32(m, 4 * PG - 2, &v), 0);
	ck_assert_uint_eq(v, 0xa1b2c3d4);
	ck_assert_int_eq(guest_memory_read_u32(m, 8 * PG, &v), -EFAULT);
	guest_memory_unref(m);

	/* Every region gets the params' backing and flags. */
	memset(&p, 0, sizeof(p));
	p.backing = GUEST_REGION_MEMFD;
	p.flags = GUEST_REGION_DIRTY_LOG | GUEST_REGION_GUARD_PAGES;
	m = NULL;
	ck_assert_int_eq(guest_memory_create_ranges(ranges, 3, &p, &m), 0);
	for (i = 0; i < 3; i++) {
		struct guest_region *r = guest_memory_region_at(m, i);

		ck_assert_uint_eq(guest_region_flags(r), p.flags);
		ck_assert_int_ge(guest_region_fd(r, NULL), 0);
	}
	guest_memory_unref(m);

	/* No ranges: the empty snapshot. */
	m = NULL;
	ck_assert_int_eq(guest_memory_create_ranges(NULL, 0, NULL, &m), 0);
	ck_assert_uint_eq(guest_memory_num_regions(m), 0);
	guest_memory_unref(m);
}
END_TEST

static void assert_ranges_refused(const struct guest_memory_range *r, size_t n,
				  const struct guest_region_params *p, int err)
{
	struct guest_memory *m = (struct guest_memory *)&m;

	ck_assert_int_eq(guest_memory_create_ranges(r, n, p, &m), err);
	ck_assert_ptr_eq(m, (struct guest_memory *)&m); /* not written */
}

START_TEST(test_memory_create_ranges_errors)
{
	struct guest_memory_range r[2] = {
		{.gpa = 0, .size = 2 * PG},
		{.gpa = PG, .size = 2 * PG},
	};
	struct guest_region_params p;
	int calls = 0;

	/* Overlap, and the same range twice. */
	assert_ranges_refused(r, 2, NULL, -EEXIST);
	r[1] = r[0];
	assert_ranges_refused(r, 2, NULL, -EEXIST);
	/* Zero length, unaligned. */
	r[1].gpa = 4 * PG;
	r[1].size = 0;
	assert_ranges_refused(r, 2, NULL, -EINVAL);
	r[1].size = PG + 1;
	assert_ranges_refused(r, 2, NULL, -EINVAL);
	r[1].gpa = 4 * PG + 8;
	r[1].size = PG;
	assert_ranges_refused(r, 2, NULL, -EINVAL);
	/* gpa + size wraps past 2^64, or ends exactly at it. */
	r[1].gpa = UINT64_MAX & ~(PG - 1);
	r[1].size = 2 * PG;
	assert_ranges_refused(r, 2, NULL, -EINVAL);
	r[1].size = PG;
	assert_ranges_refused(r, 2, NULL, -EINVAL);
	/* Bad arguments. */
	assert_ranges_refused(NULL, 1, NULL, -EINVAL);
	ck_assert_int_eq(guest_memory_create_ranges(r, 1, NULL, NULL), -EINVAL);
	assert_ranges_refused(r, SIZE_MAX, NULL, -ENOMEM);
	memset(&p, 0, sizeof(p));
	p.gpa = PG; /* the ranges say where */
	assert_ranges_refused(r, 1, &p, -EINVAL);
	p.gpa = 0;
	p.size = PG;
	assert_ranges_refused(r, 1, &p, -EINVAL);
	p.size = 0;
	p.backing = GUEST_REGION_FILE;
	assert_ranges_refused(r, 1, &p, -EINVAL);
	p.backing = GUEST_REGION_USER;
	assert_ranges_refused(r, 1, &p, -EINVAL);
	p.flags = 1u << 30;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	assert_ranges_refused(r, 1, &p, -EINVAL);
	/* The params' log callback hears why a region cannot be made. */
	memset(&p, 0, sizeof(p));
	p.backing = GUEST_REGION_HUGETLB;
	p.huge_page_size = 1ull << 40; /* no such pool anywhere */
	p.log = test_log;
	p.log_opaque = &calls;
	r[0].size = 1ull << 40;
	assert_ranges_refused(r, 1, &p, -ENOTSUP);
	ck_assert_int_eq(calls, 1);
	ck_assert_ptr_nonnull(strstr(log_buf, "huge pages"));
}
END_TEST

START_TEST(test_memory_ref_keeps_regions)
{
	struct guest_memory *m = std_mem(), *m2;
	uint8_t *h = host_of(m, 0);

	m2 = guest_memory_ref(m);
	ck_assert_ptr_eq(m2, m);
	guest_memory_unref(m);
	h[0] = 9; /* still mapped through m2 */
	ck_assert_int_eq(guest_memory_write_u8(m2, 1, 7), 0);
	ck_assert_uint_eq(h[1], 7);
	guest_memory_unref(m2);
}
END_TEST

START_TEST(test_memory_add_region)
{
	struct guest_memory *m = std_mem(), *m2 = NULL, *m3 = NULL;
	struct guest_region *r =
		mkreg(2 * MiB, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
	struct guest_region *bad = mkreg(1 * MiB + 32 * KiB, 64 * KiB,
					 GUEST_REGION_ANON_PRIVATE, 0);
	uint32_t v = 0;

	ck_assert_int_eq(guest_memory_add_region(m, r, &m2), 0);
	guest_region_unref(r);
	ck_assert_uint_eq(guest_memory_num_regions(m2), 4);
	ck_assert_uint_eq(guest_memory_num_regions(m), 3); /* unchanged */
	ck_assert_int_eq(guest_memory_write_u32(m2, 2 * MiB, 0x1234), 0);
	ck_assert_int_eq(guest_memory_read_u32(m, 2 * MiB, &v), -EFAULT);
	ck_assert_int_eq(guest_memory_read_u32(m2, 2 * MiB, &v), 0);
	ck_assert_uint_eq(v, 0x1234);
	/* Shared regions: a write through m2 is seen through m. */
	ck_assert_int_eq(guest_memory_write_u32(m2, 0x100, 0x55), 0);
	ck_assert_int_eq(guest_memory_read_u32(m, 0x100, &v), 0);
	ck_assert_uint_eq(v, 0x55);
	ck_assert_uint_eq(guest_memory_end(m2), 2 * MiB + 64 * KiB);

	ck_assert_int_eq(guest_memory_add_region(m2, bad, &m3), -EEXIST);
	ck_assert_ptr_null(m3);
	ck_assert_int_eq(guest_memory_add_region(m2, NULL, &m3), -EINVAL);
	ck_assert_int_eq(guest_memory_add_region(NULL, bad, &m3), -EINVAL);
	ck_assert_int_eq(guest_memory_add_region(m2, bad, NULL), -EINVAL);
	guest_region_unref(bad);
	guest_memory_unref(m);
	guest_memory_unref(m2);
}
END_TEST

START_TEST(test_memory_remove_region)
{
	struct guest_memory *m = std_mem(), *m2 = NULL;
	struct guest_region *removed = NULL;
	uint8_t *h;
	uint64_t v = 0;

	ck_assert_int_eq(guest_memory_write_u64(m, 1 * MiB, 0xfeedull), 0);
	ck_assert_int_eq(guest_memory_remove_region(m, 1 * MiB, 32 * KiB, &m2,
						    &removed),
			 -ENOENT);
	ck_assert_int_eq(guest_memory_remove_region(m, 1 * MiB + PG, 64 * KiB,
						    &m2, &removed),
			 -ENOENT);
	ck_assert_int_eq(guest_memory_remove_region(m, 3 * MiB, 64 * KiB, &m2,
						    NULL),
			 -ENOENT);
	ck_assert_int_eq(guest_memory_remove_region(NULL, 0, 64 * KiB, &m2,
						    NULL),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_remove_region(m, 1 * MiB, 64 * KiB, &m2,
						    &removed),
			 0);
	ck_assert_ptr_nonnull(removed);
	ck_assert_uint_eq(guest_region_gpa(removed), 1 * MiB);
	ck_assert_uint_eq(guest_memory_num_regions(m2), 2);
	ck_assert_int_eq(guest_memory_read_u64(m2, 1 * MiB, &v), -EFAULT);
	ck_assert_uint_eq(guest_memory_end(m2), 128 * KiB);
	h = guest_region_host_addr(removed);
	/* Drop the new snapshot and the removed region's reference: the old
	 * snapshot still maps and reads the region consistently. */
	guest_region_unref(removed);
	guest_memory_unref(m2);
	ck_assert_int_eq(guest_memory_read_u64(m, 1 * MiB, &v), 0);
	ck_assert_uint_eq(v, 0xfeed);
	ck_assert_uint_eq(h[0], 0xed);
	ck_assert_uint_eq(guest_memory_num_regions(m), 3);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_memory_many_regions)
{
	struct guest_region *r[64];
	struct guest_memory *m;
	size_t i;

	/* 64 regions of 2 pages at 3-page strides, created out of order. */
	for (i = 0; i < 64; i++) {
		size_t k = (i * 37) % 64;

		r[i] = mkreg(k * 3 * PG, 2 * PG, GUEST_REGION_ANON_PRIVATE, 0);
	}
	m = mkmem(r, 64);
	for (i = 0; i < 64; i++) {
		guest_addr_t g = i * 3 * PG;
		struct guest_region *f = guest_memory_find_region(m, g + 5);
		uint64_t v = 0;

		ck_assert_ptr_eq(f, guest_memory_region_at(m, i));
		ck_assert_uint_eq(guest_region_gpa(f), g);
		ck_assert_ptr_eq(guest_memory_find_region(m, g + 2 * PG - 1),
				 f);
		ck_assert_ptr_null(guest_memory_find_region(m, g + 2 * PG));
		ck_assert_int_eq(guest_memory_write_u64(m, g + 8, i), 0);
		memcpy(&v, (uint8_t *)guest_region_host_addr(f) + 8, 8);
		ck_assert_uint_eq(v, i);
		ck_assert_int_eq(guest_memory_read_u64(m, g + 2 * PG, &v),
				 -EFAULT);
	}
	guest_memory_unref(m);
}
END_TEST

/* ------------------------------------------------------------------- access */

START_TEST(test_read_write_one_region)
{
	struct guest_memory *m = std_mem();
	uint8_t in[300], out[300];
	uint8_t *h = host_of(m, 1 * MiB);
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	ck_assert_int_eq(guest_memory_write(m, 1 * MiB + 100, in, sizeof(in)),
			 0);
	ck_assert_mem_eq(h + 100, in, sizeof(in));
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(guest_memory_read(m, 1 * MiB + 100, out, sizeof(out)),
			 0);
	ck_assert_mem_eq(out, in, sizeof(in));
	/* The very last bytes of RAM. */
	ck_assert_int_eq(guest_memory_write(m, 1 * MiB + 64 * KiB - 3, in, 3),
			 0);
	ck_assert_int_eq(guest_memory_read(m, 1 * MiB + 64 * KiB - 3, out, 3),
			 0);
	ck_assert_mem_eq(out, in, 3);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_read_write_across_regions)
{
	struct guest_memory *m = std_mem();
	uint8_t in[8192], out[8192];
	uint8_t *h0 = host_of(m, 0), *h1 = host_of(m, 64 * KiB);
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i ^ (i >> 8));
	ck_assert_int_eq(guest_memory_write(m, 60 * KiB, in, sizeof(in)), 0);
	ck_assert_mem_eq(h0 + 60 * KiB, in, 4096);
	ck_assert_mem_eq(h1, in + 4096, 4096);
	ck_assert_int_eq(guest_memory_read(m, 60 * KiB, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, in, sizeof(in));
	/* The whole of both regions at once. */
	{
		uint8_t *big = malloc(128 * KiB);

		ck_assert_int_eq(guest_memory_read(m, 0, big, 128 * KiB), 0);
		ck_assert_mem_eq(big + 60 * KiB, in, sizeof(in));
		free(big);
	}
	guest_memory_unref(m);
}
END_TEST

/* Writes of 1 MiB and more into memfd regions go through the fd (pwrite);
 * what they write must be what the mapping and the fd show, dirty-logged,
 * refused in read-only regions, and still written when pwrite fails. */
static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *b = malloc(n);
	size_t i;

	ck_assert_ptr_nonnull(b);
	for (i = 0; i < n; i++)
		b[i] = (uint8_t)((i * 7 + seed) ^ (i >> 12));
	return b;
}

START_TEST(test_large_write_memfd)
{
	struct guest_region *r[4];
	struct guest_memory *m;
	uint8_t *a = pattern(3 * MiB, 1), *b = pattern(6 * MiB, 2);
	uint8_t *back = malloc(6 * MiB);
	uint64_t bm[16];
	int fd, ro;
	char path[64];
	size_t i;

	ck_assert_ptr_nonnull(back);
	r[0] = mkreg(0, 4 * MiB, GUEST_REGION_MEMFD, 0);
	r[1] = mkreg(4 * MiB, 4 * MiB, GUEST_REGION_MEMFD,
		     GUEST_REGION_DIRTY_LOG);
	r[2] = mkreg(8 * MiB, 4 * MiB, GUEST_REGION_ANON_PRIVATE, 0);
	r[3] = mkreg(16 * MiB, 2 * MiB, GUEST_REGION_MEMFD,
		     GUEST_REGION_READONLY);
	m = mkmem(r, 4);

	/* Inside one region: visible through the mapping and the fd. */
	ck_assert_int_eq(guest_memory_write(m, 512 * KiB, a, 3 * MiB), 0);
	ck_assert_mem_eq((uint8_t *)host_of(m, 512 * KiB), a, 3 * MiB);
	fd = guest_region_fd(guest_memory_region_at(m, 0), NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, back, 3 * MiB, 512 * KiB), 3 * MiB);
	ck_assert_mem_eq(back, a, 3 * MiB);

	/* Across three regions (1 MiB, 4 MiB logged, 1 MiB anonymous). */
	ck_assert_int_eq(guest_region_dirty_get_and_clear(
				 guest_memory_region_at(m, 1), bm, 16),
			 0);
	ck_assert_int_eq(guest_memory_write(m, 3 * MiB, b, 6 * MiB), 0);
	ck_assert_int_eq(guest_memory_read(m, 3 * MiB, back, 6 * MiB), 0);
	ck_assert_mem_eq(back, b, 6 * MiB);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(
				 guest_memory_region_at(m, 1), bm, 16),
			 1024);
	for (i = 0; i < 16; i++)
		ck_assert_uint_eq(bm[i], UINT64_MAX);

	/* Read-only: refused, nothing written. */
	ck_assert_int_eq(guest_memory_write(m, 16 * MiB, a, 2 * MiB), -EPERM);
	ck_assert_uint_eq(*(uint8_t *)host_of(m, 16 * MiB), 0);

	/* pwrite failing (the region's fd swapped for a read-only one on the
	 * same memfd): the write still lands, through the mapping. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(ro, 0);
	ck_assert_int_eq(dup2(ro, fd), fd);
	close(ro);
	ck_assert_int_eq(pwrite(fd, a, 1, 0), -1);
	ck_assert_int_eq(guest_memory_write(m, 0, b, 2 * MiB), 0);
	ck_assert_mem_eq((uint8_t *)host_of(m, 0), b, 2 * MiB);
	ck_assert_int_eq(pread(fd, back, 2 * MiB, 0), 2 * MiB);
	ck_assert_mem_eq(back, b, 2 * MiB);

	guest_memory_unref(m);
	free(a);
	free(b);
	free(back);
}
END_TEST

START_TEST(test_typed_roundtrip)
{
	struct guest_memory *m = std_mem();
	uint8_t *h = host_of(m, 0);
	uint8_t v8 = 0;
	uint16_t v16 = 0;
	uint32_t v32 = 0;
	uint64_t v64 = 0;

	ck_assert_int_eq(guest_memory_write_u8(m, 1, 0xa1), 0);
	ck_assert_int_eq(guest_memory_write_u16(m, 3, 0xb2c3), 0); /* odd */
	ck_assert_int_eq(guest_memory_write_u32(m, 9, 0x01020304), 0);
	ck_assert_int_eq(guest_memory_write_u64(m, 17, 0x1122334455667788ull),
			 0);
	ck_assert_uint_eq(h[1], 0xa1);
	ck_assert_uint_eq(h[3], 0xc3); /* little endian */
	ck_assert_uint_eq(h[4], 0xb2);
	ck_assert_uint_eq(h[9], 0x04);
	ck_assert_uint_eq(h[12], 0x01);
	ck_assert_uint_eq(h[17], 0x88);
	ck_assert_uint_eq(h[24], 0x11);
	ck_assert_int_eq(guest_memory_read_u8(m, 1, &v8), 0);
	ck_assert_int_eq(guest_memory_read_u16(m, 3, &v16), 0);
	ck_assert_int_eq(guest_memory_read_u32(m, 9, &v32), 0);
	ck_assert_int_eq(guest_memory_read_u64(m, 17, &v64), 0);
	ck_assert_uint_eq(v8, 0xa1);
	ck_assert_uint_eq(v16, 0xb2c3);
	ck_assert_uint_eq(v32, 0x01020304);
	ck_assert_uint_eq(v64, 0x1122334455667788ull);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_typed_straddle_adjacent)
{
	struct guest_memory *m = std_mem();
	uint8_t *h0 = host_of(m, 0), *h1 = host_of(m, 64 * KiB);
	uint64_t v64 = 0;
	uint32_t v32 = 0;
	uint16_t v16 = 0;

	ck_assert_int_eq(guest_memory_write_u64(m, 64 * KiB - 3,
						0x8877665544332211ull),
			 0);
	ck_assert_uint_eq(h0[64 * KiB - 3], 0x11);
	ck_assert_uint_eq(h0[64 * KiB - 1], 0x33);
	ck_assert_uint_eq(h1[0], 0x44);
	ck_assert_uint_eq(h1[4], 0x88);
	ck_assert_int_eq(guest_memory_read_u64(m, 64 * KiB - 3, &v64), 0);
	ck_assert_uint_eq(v64, 0x8877665544332211ull);
	ck_assert_int_eq(guest_memory_read_u32(m, 64 * KiB - 2, &v32), 0);
	ck_assert_uint_eq(v32, 0x55443322);
	ck_assert_int_eq(guest_memory_write_u16(m, 64 * KiB - 1, 0xbeef), 0);
	ck_assert_int_eq(guest_memory_read_u16(m, 64 * KiB - 1, &v16), 0);
	ck_assert_uint_eq(v16, 0xbeef);
	ck_assert_uint_eq(h1[0], 0xbe);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_typed_errors)
{
	struct guest_memory *m = std_mem();
	uint64_t v64 = 42;
	uint32_t v32 = 42;
	uint16_t v16 = 42;
	uint8_t v8 = 42;

	/* In a hole. */
	ck_assert_int_eq(guest_memory_read_u8(m, 128 * KiB, &v8), -EFAULT);
	ck_assert_int_eq(guest_memory_read_u16(m, 512 * KiB, &v16), -EFAULT);
	ck_assert_int_eq(guest_memory_write_u32(m, 512 * KiB, 1), -EFAULT);
	/* Running from RAM into the hole, and past the end of RAM. */
	ck_assert_int_eq(guest_memory_read_u64(m, 128 * KiB - 4, &v64), -ENXIO);
	ck_assert_int_eq(guest_memory_write_u64(m, 128 * KiB - 4, 1), -ENXIO);
	ck_assert_int_eq(guest_memory_read_u32(m, 1 * MiB + 64 * KiB - 2, &v32),
			 -ENXIO);
	/* Wrapping the address space. */
	ck_assert_int_eq(guest_memory_read_u64(m, UINT64_MAX - 2, &v64),
			 -EOVERFLOW);
	ck_assert_int_eq(guest_memory_write_u16(m, UINT64_MAX, 1), -EOVERFLOW);
	ck_assert_int_eq(guest_memory_read_u8(m, UINT64_MAX, &v8), -EFAULT);
	/* Nothing was stored on failure. */
	ck_assert_uint_eq(v64, 42);
	ck_assert_uint_eq(v32, 42);
	ck_assert_uint_eq(v16, 42);
	ck_assert_uint_eq(v8, 42);
	/* A failed write left the RAM part untouched. */
	ck_assert_int_eq(guest_memory_read_u32(m, 128 * KiB - 4, &v32), 0);
	ck_assert_uint_eq(v32, 0);
	ck_assert_int_eq(guest_memory_read_u32(NULL, 0, &v32), -EINVAL);
	ck_assert_int_eq(guest_memory_read_u32(m, 0, NULL), -EINVAL);
	ck_assert_int_eq(guest_memory_write_u64(NULL, 0, 0), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_atomic_roundtrip)
{
	static const memory_order lo[] = {memory_order_relaxed,
					  memory_order_acquire,
					  memory_order_seq_cst};
	static const memory_order so[] = {memory_order_relaxed,
					  memory_order_release,
					  memory_order_seq_cst};
	struct guest_memory *m = std_mem();
	uint8_t *h = host_of(m, 1 * MiB);
	size_t i;

	for (i = 0; i < 3; i++) {
		uint16_t v16 = 0;
		uint32_t v32 = 0;
		uint64_t v64 = 0;

		ck_assert_int_eq(guest_memory_store_u16(m, 1 * MiB + 2,
							(uint16_t)(0x1200 + i),
							so[i]),
				 0);
		ck_assert_int_eq(guest_memory_store_u32(
					 m, 1 * MiB + 4,
					 0xabcd0000u + (unsigned)i, so[i]),
				 0);
		ck_assert_int_eq(guest_memory_store_u64(
					 m, 1 * MiB + 8,
					 0x0102030405060708ull + i, so[i]),
				 0);
		ck_assert_int_eq(
			guest_memory_load_u16(m, 1 * MiB + 2, &v16, lo[i]), 0);
		ck_assert_int_eq(
			guest_memory_load_u32(m, 1 * MiB + 4, &v32, lo[i]), 0);
		ck_assert_int_eq(
			guest_memory_load_u64(m, 1 * MiB + 8, &v64, lo[i]), 0);
		ck_assert_uint_eq(v16, 0x1200 + i);
		ck_assert_uint_eq(v32, 0xabcd0000u + i);
		ck_assert_uint_eq(v64, 0x0102030405060708ull + i);
	}
	ck_assert_uint_eq(h[2], 0x02); /* little endian */
	ck_assert_uint_eq(h[8], 0x0a);
	/* The last aligned u64 of a region. */
	ck_assert_int_eq(guest_memory_store_u64(m, 64 * KiB - 8, 5,
						memory_order_seq_cst),
			 0);
	guest_memory_unref(m);
}
END_TEST

/*
 * The header's inline fast paths (guest_memory_find_region(),
 * guest_memory_load_u16/32/64()) give what the exported functions give,
 * for every argument a hostile caller or guest can produce: snapshots of
 * none, one (at 0, in the middle, at the top of the address space) and two
 * regions; addresses below, at and around both edges, misaligned, wrapping;
 * every memory order and a bogus one; NULL snapshot and NULL result.
 */
static void assert_inline_matches(const struct guest_memory *m)
{
	static const int orders[] = {
		memory_order_relaxed,
		memory_order_consume,
		memory_order_acquire,
		memory_order_release,
		memory_order_acq_rel,
		memory_order_seq_cst,
		99,
	};
	guest_addr_t base = 0, end = 0, gpas[40];
	size_t ng = 0, i, k;

	if (m && guest_memory_num_regions(m)) {
		const struct guest_region *r = guest_memory_region_at(m, 0);

		base = guest_region_gpa(r);
		end = base + guest_region_size(r);
	}
	for (k = 0; k < 2; k++) {
		guest_addr_t e = k ? end : base;

		gpas[ng++] = e - 16;
		gpas[ng++] = e - 8;
		gpas[ng++] = e - 4;
		gpas[ng++] = e - 2;
		gpas[ng++] = e - 1;
		gpas[ng++] = e;
		gpas[ng++] = e + 1;
		gpas[ng++] = e + 2;
		gpas[ng++] = e + 4;
		gpas[ng++] = e + 8;
		gpas[ng++] = e + 64;
	}
	gpas[ng++] = 0;
	gpas[ng++] = UINT64_MAX;
	gpas[ng++] = UINT64_MAX - 7;
	gpas[ng++] = 1ull << 63;
	gpas[ng++] = 2 * MiB;
	gpas[ng++] = 2 * MiB + 8;

	for (i = 0; i < ng; i++) {
		ck_assert_ptr_eq(guest_memory_find_region(m, gpas[i]),
				 guest_memory_find_region_slow(m, gpas[i]));
		for (k = 0; k < sizeof(orders) / sizeof(orders[0]); k++) {
			memory_order o = (memory_order)orders[k];
			uint16_t a16 = 1, b16 = 1;
			uint32_t a32 = 2, b32 = 2;
			uint64_t a64 = 3, b64 = 3;

			ck_assert_int_eq(guest_memory_load_u16(m, gpas[i], &a16,
							       o),
					 guest_memory_load_u16_slow(m, gpas[i],
								    &b16, o));
			ck_assert_uint_eq(a16, b16);
			ck_assert_int_eq(guest_memory_load_u32(m, gpas[i], &a32,
							       o),
					 guest_memory_load_u32_slow(m, gpas[i],
								    &b32, o));
			ck_assert_uint_eq(a32, b32);
			ck_assert_int_eq(guest_memory_load_u64(m, gpas[i], &a64,
							       o),
					 guest_memory_load_u64_slow(m, gpas[i],
								    &b64, o));
			ck_assert_uint_eq(a64, b64);
			ck_assert_int_eq(guest_memory_load_u64(m, gpas[i], NULL,
							       o),
					 guest_memory_load_u64_slow(m, gpas[i],
								    NULL, o));
		}
	}
}

START_TEST(test_atomic_inline_matches_exported)
{
	static const guest_addr_t bases[] = {0, 1 * MiB,
					     UINT64_MAX - 128 * KiB + 1};
	struct guest_memory *m = NULL;
	struct guest_region *r[2];
	size_t i, j;

	assert_inline_matches(NULL);
	ck_assert_int_eq(guest_memory_create(NULL, 0, &m), 0);
	assert_inline_matches(m);
	guest_memory_unref(m);
	for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		uint8_t *h;

		r[0] = mkreg(bases[i] & ~(PG - 1), 64 * KiB,
			     GUEST_REGION_ANON_PRIVATE, 0);
		h = guest_region_host_addr(r[0]);
		for (j = 0; j < 64 * KiB; j++)
			h[j] = (uint8_t)(j * 7 + 3);
		m = mkmem(r, 1);
		assert_inline_matches(m);
		/* The values themselves, at both ends of the region. */
		{
			guest_addr_t g = guest_region_gpa(
				guest_memory_find_region(m,
							 bases[i] & ~(PG - 1)));
			uint64_t v = 0;

			ck_assert_int_eq(
				guest_memory_load_u64(m, g, &v,
						      memory_order_acquire),
				0);
			ck_assert_uint_eq(v, 0x342d261f18110a03ull);
			ck_assert_int_eq(
				guest_memory_load_u64(m, g + 64 * KiB - 8, &v,
						      memory_order_relaxed),
				0);
			/* Little endian: byte 0 is the lowest address. */
			for (j = 0; j < 8; j++)
				ck_assert_uint_eq((v >> (8 * j)) & 0xff,
						  h[64 * KiB - 8 + j]);
		}
		guest_memory_unref(m);
	}
	/* Two regions: the fast path is off, the exported functions decide. */
	r[0] = mkreg(0, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
	r[1] = mkreg(1 * MiB, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
	m = mkmem(r, 2);
	assert_inline_matches(m);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_atomic_misaligned)
{
	struct guest_memory *m = std_mem();
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	ck_assert_int_eq(guest_memory_load_u16(m, 1, &v16,
					       memory_order_relaxed),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_load_u32(m, 2, &v32,
					       memory_order_relaxed),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_load_u64(m, 4, &v64,
					       memory_order_relaxed),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_store_u16(m, 3, 0, memory_order_relaxed),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_store_u32(m, 6, 0, memory_order_relaxed),
			 -EINVAL);
	/* Misaligned across the region boundary, too. */
	ck_assert_int_eq(guest_memory_store_u64(m, 64 * KiB - 4, 0,
						memory_order_relaxed),
			 -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_atomic_bad_order_and_range)
{
	struct guest_memory *m = std_mem();
	uint32_t v32 = 0;
	uint64_t v64 = 0;

	ck_assert_int_eq(guest_memory_load_u32(m, 0, &v32,
					       memory_order_release),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_load_u32(m, 0, &v32,
					       memory_order_acq_rel),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_store_u32(m, 0, 1, memory_order_acquire),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_store_u64(m, 0, 1, memory_order_consume),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_load_u64(m, 128 * KiB, &v64,
					       memory_order_acquire),
			 -EFAULT);
	ck_assert_int_eq(guest_memory_store_u16(m, UINT64_MAX - 1, 1,
						memory_order_release),
			 -EFAULT);
	ck_assert_int_eq(guest_memory_load_u32(NULL, 0, &v32,
					       memory_order_relaxed),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_load_u32(m, 0, NULL,
					       memory_order_relaxed),
			 -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_translate)
{
	struct guest_memory *m = std_mem();
	void *h = NULL;

	ck_assert_int_eq(guest_memory_translate(m, 1 * MiB + 16, 64, &h), 0);
	ck_assert_ptr_eq(h, (uint8_t *)host_of(m, 1 * MiB) + 16);
	ck_assert_int_eq(guest_memory_translate(m, 0, 64 * KiB, &h), 0);
	/* len 0 is an argument error for translate. */
	ck_assert_int_eq(guest_memory_translate(m, 0, 0, &h), -EINVAL);
	ck_assert_int_eq(guest_memory_translate(m, 0, 1, NULL), -EINVAL);
	ck_assert_int_eq(guest_memory_translate(NULL, 0, 1, &h), -EINVAL);
	ck_assert_int_eq(guest_memory_translate(m, 200 * KiB, 1, &h), -EFAULT);
	/* Into an adjacent region: refused, use contiguous/iovecs. */
	ck_assert_int_eq(guest_memory_translate(m, 64 * KiB - 1, 2, &h),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_translate(m, 1 * MiB, 64 * KiB + 1, &h),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_translate(m, 16, UINT64_MAX, &h),
			 -EOVERFLOW);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_contiguous)
{
	struct guest_memory *m = std_mem();
	void *h = NULL;
	uint64_t avail = 0;

	ck_assert_int_eq(guest_memory_contiguous(m, 60 * KiB, &h, &avail), 0);
	ck_assert_uint_eq(avail, 4 * KiB); /* only to its region's end */
	ck_assert_ptr_eq(h, (uint8_t *)host_of(m, 0) + 60 * KiB);
	ck_assert_int_eq(guest_memory_contiguous(m, 64 * KiB, &h, &avail), 0);
	ck_assert_uint_eq(avail, 64 * KiB);
	ck_assert_int_eq(guest_memory_contiguous(m, 1 * MiB + 64 * KiB - 1, &h,
						 &avail),
			 0);
	ck_assert_uint_eq(avail, 1);
	ck_assert_int_eq(guest_memory_contiguous(m, 128 * KiB, &h, &avail),
			 -EFAULT);
	ck_assert_int_eq(guest_memory_contiguous(m, UINT64_MAX, &h, &avail),
			 -EFAULT);
	ck_assert_int_eq(guest_memory_contiguous(m, 0, NULL, &avail), -EINVAL);
	ck_assert_int_eq(guest_memory_contiguous(m, 0, &h, NULL), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_check_range)
{
	struct guest_memory *m = std_mem();

	ck_assert_int_eq(guest_memory_check_range(m, 0, 128 * KiB), 0);
	ck_assert_int_eq(guest_memory_check_range(m, 1 * MiB, 64 * KiB), 0);
	ck_assert_int_eq(guest_memory_check_range(m, 0, 128 * KiB + 1), -ENXIO);
	ck_assert_int_eq(guest_memory_check_range(m, 1 * MiB, 64 * KiB + 1),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_check_range(m, 128 * KiB, 1), -EFAULT);
	ck_assert_int_eq(guest_memory_check_range(m, 8, UINT64_MAX - 6),
			 -EOVERFLOW);
	ck_assert_int_eq(guest_memory_check_range(m, 0, UINT64_MAX), -ENXIO);
	/* Zero length: fine anywhere. */
	ck_assert_int_eq(guest_memory_check_range(m, 128 * KiB, 0), 0);
	ck_assert_int_eq(guest_memory_check_range(m, UINT64_MAX, 0), 0);
	ck_assert_int_eq(guest_memory_check_range(NULL, 0, 1), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_err_overflow)
{
	struct guest_memory *m = std_mem();
	uint8_t buf[16] = {0};

	ck_assert_int_eq(guest_memory_read(m, UINT64_MAX - 7, buf, 16),
			 -EOVERFLOW);
	ck_assert_int_eq(guest_memory_write(m, UINT64_MAX, buf, 2), -EOVERFLOW);
	ck_assert_int_eq(guest_memory_fill(m, UINT64_MAX - 1, 0, 3),
			 -EOVERFLOW);
	/* Exactly reaching 2^64 does not wrap: it just is not RAM. */
	ck_assert_int_eq(guest_memory_read(m, UINT64_MAX - 15, buf, 16),
			 -EFAULT);
	/* A region near the top of the address space. */
	{
		struct guest_region *r =
			mkreg(0ull - 2 * PG, PG, GUEST_REGION_ANON_PRIVATE, 0);
		struct guest_memory *m2;

		/* gpa = 2^64 - 2 pages */
		ck_assert_uint_eq(guest_region_gpa(r), 0ull - 2 * PG);
		m2 = mkmem(&r, 1);
		ck_assert_int_eq(guest_memory_read(m2, 0ull - 2 * PG, buf, 16),
				 0);
		ck_assert_int_eq(guest_memory_read(m2, 0ull - PG - 8, buf, 16),
				 -ENXIO);
		ck_assert_int_eq(guest_memory_read(m2, 0ull - 8, buf, 16),
				 -EOVERFLOW);
		guest_memory_unref(m2);
	}
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_err_hole)
{
	struct guest_memory *m = std_mem();
	uint8_t buf[16];

	memset(buf, 0xcc, sizeof(buf));
	ck_assert_int_eq(guest_memory_read(m, 128 * KiB, buf, 16), -EFAULT);
	ck_assert_int_eq(guest_memory_read(m, 1 * MiB - 1, buf, 16), -EFAULT);
	ck_assert_int_eq(guest_memory_write(m, 512 * KiB, buf, 16), -EFAULT);
	ck_assert_int_eq(guest_memory_read(m, 4 * MiB, buf, 1), -EFAULT);
	ck_assert_uint_eq(buf[0], 0xcc); /* untouched */
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_err_runs_into_hole)
{
	struct guest_memory *m = std_mem();
	uint8_t buf[64];
	uint8_t *h1 = host_of(m, 64 * KiB);

	memset(buf, 0xcc, sizeof(buf));
	/* RAM then hole: -ENXIO and nothing copied either way. */
	ck_assert_int_eq(guest_memory_write(m, 128 * KiB - 32, buf, 64),
			 -ENXIO);
	ck_assert_uint_eq(h1[64 * KiB - 32], 0);
	ck_assert_uint_eq(h1[64 * KiB - 1], 0);
	h1[64 * KiB - 1] = 0x11;
	ck_assert_int_eq(guest_memory_read(m, 128 * KiB - 32, buf, 64), -ENXIO);
	ck_assert_uint_eq(buf[31], 0xcc);
	/* Past the end of RAM. */
	ck_assert_int_eq(guest_memory_read(m, 1 * MiB + 64 * KiB - 1, buf, 2),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_fill(m, 1 * MiB + 60 * KiB, 1, 8 * KiB),
			 -ENXIO);
	ck_assert_uint_eq(((uint8_t *)host_of(m, 1 * MiB))[60 * KiB], 0);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_zero_length_anywhere)
{
	struct guest_memory *m = std_mem();
	struct iovec iov[1];

	ck_assert_int_eq(guest_memory_read(m, 0, NULL, 0), 0);
	ck_assert_int_eq(guest_memory_read(m, 128 * KiB, NULL, 0), 0);
	ck_assert_int_eq(guest_memory_write(m, UINT64_MAX, NULL, 0), 0);
	ck_assert_int_eq(guest_memory_write(m, 4 * MiB, "", 0), 0);
	ck_assert_int_eq(guest_memory_fill(m, UINT64_MAX, 0, 0), 0);
	ck_assert_int_eq(guest_memory_iovecs(m, 999 * MiB, 0, iov, 1), 0);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 999 * MiB, 0, 0, -1), 0);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 999 * MiB, 0, 1, -1), 0);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_read_write_bad_args)
{
	struct guest_memory *m = std_mem();
	uint8_t b = 0;

	ck_assert_int_eq(guest_memory_read(NULL, 0, &b, 1), -EINVAL);
	ck_assert_int_eq(guest_memory_write(NULL, 0, &b, 1), -EINVAL);
	ck_assert_int_eq(guest_memory_read(m, 0, NULL, 1), -EINVAL);
	ck_assert_int_eq(guest_memory_write(m, 0, NULL, 1), -EINVAL);
	ck_assert_int_eq(guest_memory_fill(NULL, 0, 0, 1), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

/* Hostile guest: a ring placed over an MMIO hole, or wrapping the address
 * space, is refused and nothing outside RAM is touched. */
START_TEST(test_hostile_ring_over_mmio_hole)
{
	struct guest_memory *m = std_mem();
	void *h;
	struct iovec iov[4];

	/* desc table of 16 * 256 bytes straddling the end of low RAM. */
	ck_assert_int_eq(guest_memory_check_range(m, 128 * KiB - 2048, 4096),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_translate(m, 128 * KiB - 2048, 4096, &h),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_iovecs(m, 128 * KiB - 2048, 4096, iov, 4),
			 -ENXIO);
	/* A huge guest length from a descriptor. */
	ck_assert_int_eq(guest_memory_check_range(m, 0x1000, 0xffffffffull),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_check_range(m, 0xfffffffffffff000ull,
						  0x2000),
			 -EOVERFLOW);
	guest_memory_unref(m);
}
END_TEST

/* ------------------------------------------------------------------- fill */

START_TEST(test_fill)
{
	struct guest_memory *m = std_mem();
	uint8_t *h0 = host_of(m, 0), *h1 = host_of(m, 64 * KiB);

	ck_assert_int_eq(guest_memory_fill(m, 60 * KiB, 0xee, 8 * KiB), 0);
	ck_assert_uint_eq(h0[60 * KiB - 1], 0);
	ck_assert_uint_eq(h0[60 * KiB], 0xee);
	ck_assert_uint_eq(h0[64 * KiB - 1], 0xee);
	ck_assert_uint_eq(h1[0], 0xee);
	ck_assert_uint_eq(h1[4 * KiB - 1], 0xee);
	ck_assert_uint_eq(h1[4 * KiB], 0);
	ck_assert_int_eq(guest_memory_fill(m, 200 * KiB, 0, 1), -EFAULT);
	guest_memory_unref(m);
}
END_TEST

/* ----------------------------------------------------------------- readonly */

START_TEST(test_readonly)
{
	struct guest_region *r[2];
	struct guest_memory *m;
	uint8_t buf[32] = {1, 2, 3};
	uint32_t v = 0;
	int p[2];

	r[0] = mkreg(0, 64 * KiB, GUEST_REGION_ANON_PRIVATE, 0);
	r[1] = mkreg(64 * KiB, 64 * KiB, GUEST_REGION_MEMFD,
		     GUEST_REGION_READONLY);
	ck_assert_uint_eq(guest_region_flags(r[1]), GUEST_REGION_READONLY);
	m = mkmem(r, 2);
	ck_assert_int_eq(guest_memory_write(m, 64 * KiB, buf, 4), -EPERM);
	ck_assert_int_eq(guest_memory_write_u32(m, 64 * KiB, 1), -EPERM);
	ck_assert_int_eq(guest_memory_write_u8(m, 64 * KiB + 1, 1), -EPERM);
	ck_assert_int_eq(guest_memory_store_u32(m, 64 * KiB, 1,
						memory_order_relaxed),
			 -EPERM);
	ck_assert_int_eq(guest_memory_fill(m, 64 * KiB, 1, 1), -EPERM);
	/* Zero-length writes succeed, even into read-only RAM. */
	ck_assert_int_eq(guest_memory_write(m, 64 * KiB, buf, 0), 0);
	ck_assert_int_eq(guest_memory_write(m, 64 * KiB, NULL, 0), 0);
	ck_assert_int_eq(guest_memory_fill(m, 64 * KiB, 1, 0), 0);
	/* Spanning a writable and the read-only region: nothing written. */
	ck_assert_int_eq(guest_memory_write(m, 64 * KiB - 16, buf, 32), -EPERM);
	ck_assert_int_eq(guest_memory_read_u32(m, 64 * KiB - 16, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "abcd", 4), 4);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 64 * KiB, 4, p[0], -1),
			 -EPERM);
	/* Reading is fine, and the writable region still writes. */
	ck_assert_int_eq(guest_memory_read(m, 64 * KiB, buf, 32), 0);
	ck_assert_int_eq(guest_memory_load_u32(m, 64 * KiB, &v,
					       memory_order_acquire),
			 0);
	ck_assert_int_eq(guest_memory_write_u32(m, 0, 7), 0);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 64 * KiB, 4, p[1], -1), 4);
	close(p[0]);
	close(p[1]);
	/* The host mapping itself is read-only. */
	ck_assert_int_eq(child_touch(guest_region_host_addr(
				 guest_memory_region_at(m, 1))),
			 SIGSEGV);
	guest_memory_unref(m);
}
END_TEST

/* ------------------------------------------------------------------ iovecs */

START_TEST(test_iovecs)
{
	struct guest_memory *m = std_mem();
	struct iovec iov[4];

	ck_assert_int_eq(guest_memory_iovecs(m, 60 * KiB, 8 * KiB, iov, 4), 2);
	ck_assert_ptr_eq(iov[0].iov_base, (uint8_t *)host_of(m, 0) + 60 * KiB);
	ck_assert_uint_eq(iov[0].iov_len, 4 * KiB);
	ck_assert_ptr_eq(iov[1].iov_base, host_of(m, 64 * KiB));
	ck_assert_uint_eq(iov[1].iov_len, 4 * KiB);
	ck_assert_int_eq(guest_memory_iovecs(m, 1 * MiB + 5, 100, iov, 1), 1);
	ck_assert_uint_eq(iov[0].iov_len, 100);
	/* Capacity too small. */
	ck_assert_int_eq(guest_memory_iovecs(m, 60 * KiB, 8 * KiB, iov, 1),
			 -ENOBUFS);
	ck_assert_int_eq(guest_memory_iovecs(m, 0, 1, iov, 0), -ENOBUFS);
	/* Access errors. */
	ck_assert_int_eq(guest_memory_iovecs(m, 200 * KiB, 1, iov, 4), -EFAULT);
	ck_assert_int_eq(guest_memory_iovecs(m, 0, 129 * KiB, iov, 4), -ENXIO);
	ck_assert_int_eq(guest_memory_iovecs(m, 2, UINT64_MAX, iov, 4),
			 -EOVERFLOW);
	ck_assert_int_eq(guest_memory_iovecs(m, 0, 1, NULL, 4), -EINVAL);
	ck_assert_int_eq(guest_memory_iovecs(m, 0, 1, iov, -1), -EINVAL);
	guest_memory_unref(m);
}
END_TEST

/* --------------------------------------------------------------- fd I/O */

START_TEST(test_fd_io_file)
{
	struct guest_memory *m = std_mem();
	int fd = make_tmpfile(0);
	uint8_t in[8192], out[8192];
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 13);
	ck_assert_int_eq(guest_memory_write(m, 60 * KiB, in, sizeof(in)), 0);
	/* pwritev at an offset, across two regions. */
	ck_assert_int_eq(guest_memory_write_to_fd(m, 60 * KiB, sizeof(in), fd,
						  100),
			 (ssize_t)sizeof(in));
	ck_assert_int_eq(pread(fd, out, sizeof(out), 100),
			 (ssize_t)sizeof(out));
	ck_assert_mem_eq(out, in, sizeof(in));
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0); /* offset untouched */
	/* preadv into the other region. */
	ck_assert_int_eq(guest_memory_read_from_fd(m, 1 * MiB, 4096, fd, 100),
			 4096);
	ck_assert_mem_eq(host_of(m, 1 * MiB), in, 4096);
	/* A short read at the end of the file. */
	ck_assert_int_eq(guest_memory_read_from_fd(m, 1 * MiB, 4096, fd,
						   100 + 8192 - 10),
			 10);
	/* writev/readv at the file position. */
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, 16, fd, -1), 16);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 16);
	ck_assert_int_eq(lseek(fd, 100, SEEK_SET), 100);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 64 * KiB, 64, fd, -1),
			 64);
	ck_assert_mem_eq(host_of(m, 64 * KiB), in, 64);
	close(fd);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_fd_io_errors)
{
	struct guest_memory *m = std_mem();
	int fd = make_tmpfile(64 * KiB);

	/* The guest range is checked before any I/O. */
	ck_assert_int_eq(guest_memory_read_from_fd(m, 200 * KiB, 16, fd, -1),
			 -EFAULT);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 128 * KiB - 8, 16, fd,
						   -1),
			 -ENXIO);
	ck_assert_int_eq(guest_memory_write_to_fd(m, UINT64_MAX - 4, 16, fd, 0),
			 -EOVERFLOW);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0); /* nothing consumed */
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, 16, -1, 0), -EINVAL);
	ck_assert_int_eq(guest_memory_write_to_fd(NULL, 0, 16, fd, 0), -EINVAL);
	close(fd);
	/* A closed fd: the errno from the syscall. */
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, 16, fd, 0), -EBADF);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_fd_io_many_regions)
{
	struct guest_region *r[40];
	struct guest_memory *m;
	int fd = make_tmpfile(0);
	uint8_t *in = malloc(40 * PG), *out = malloc(40 * PG);
	size_t i;

	for (i = 0; i < 40; i++)
		r[i] = mkreg(i * PG, PG, GUEST_REGION_ANON_PRIVATE, 0);
	m = mkmem(r, 40); /* more regions than the on-stack iovec array */
	for (i = 0; i < 40 * PG; i++)
		in[i] = (uint8_t)(i % 251);
	ck_assert_int_eq(guest_memory_write(m, 0, in, 40 * PG), 0);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, 40 * PG, fd, 0),
			 (ssize_t)(40 * PG));
	ck_assert_int_eq(guest_memory_fill(m, 0, 0, 40 * PG), 0);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 0, 40 * PG, fd, 0),
			 (ssize_t)(40 * PG));
	ck_assert_int_eq(guest_memory_read(m, 0, out, 40 * PG), 0);
	ck_assert_mem_eq(in, out, 40 * PG);
	free(in);
	free(out);
	close(fd);
	guest_memory_unref(m);
}
END_TEST

/* ---------------------------------------------------------------- dirty log */

static struct guest_memory *dirty_mem(void)
{
	return CVMM_TEST_MEMORY(
		{.gpa = 0, .size = 64 * KiB, .flags = GUEST_REGION_DIRTY_LOG},
		{.gpa = 64 * KiB, .size = 64 * KiB},
		{.gpa = 1 * MiB,
		 .size = 512 * KiB,
		 .flags = GUEST_REGION_DIRTY_LOG,
		 .backing = GUEST_REGION_MEMFD});
}

START_TEST(test_dirty_write)
{
	struct guest_memory *m = dirty_mem();
	struct guest_region *r0 = guest_memory_region_at(m, 0);
	uint64_t bm[4];

	ck_assert_uint_eq(guest_region_dirty_bitmap_words(r0), 1);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 4), 0);
	ck_assert_uint_eq(bm[0], 0);
	ck_assert_int_eq(guest_memory_write(m, 4096 - 2, "abcd", 4), 0);
	ck_assert_int_eq(guest_memory_write_u8(m, 15 * PG, 1), 0);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1), 3);
	ck_assert_uint_eq(bm[0], (1ull << 0) | (1ull << 1) | (1ull << 15));
	/* Taken: cleared. */
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1), 0);
	ck_assert_uint_eq(bm[0], 0);
	/* Reads do not dirty. */
	{
		uint8_t b[64];

		ck_assert_int_eq(guest_memory_read(m, 0, b, 64), 0);
		ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1),
				 0);
	}
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_dirty_all_writers)
{
	struct guest_memory *m = dirty_mem();
	struct guest_region *r2 = guest_memory_region_at(m, 2);
	size_t words = guest_region_dirty_bitmap_words(r2);
	uint64_t bm[2];
	int fd = make_tmpfile(PG);

	ck_assert_uint_eq(words, 2); /* 128 pages */
	ck_assert_int_eq(guest_memory_write_u16(m, 1 * MiB + 1 * PG, 1), 0);
	ck_assert_int_eq(guest_memory_store_u32(m, 1 * MiB + 2 * PG, 1,
						memory_order_release),
			 0);
	ck_assert_int_eq(guest_memory_fill(m, 1 * MiB + 63 * PG, 1, 2 * PG), 0);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 1 * MiB + 100 * PG, PG,
						   fd, 0),
			 (ssize_t)PG);
	/* Through a translated pointer: the caller marks. */
	guest_memory_mark_dirty(m, 1 * MiB + 127 * PG + 5, 1);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r2, bm, 2), 6);
	ck_assert_uint_eq(bm[0], (1ull << 1) | (1ull << 2) | (1ull << 63));
	ck_assert_uint_eq(bm[1], (1ull << 0) | (1ull << 36) | (1ull << 63));
	/* Too small a bitmap. */
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r2, bm, 1), -ENOBUFS);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r2, NULL, 2),
			 -EINVAL);
	close(fd);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_dirty_mark_outside_ram_ignored)
{
	struct guest_memory *m = dirty_mem();
	struct guest_region *r0 = guest_memory_region_at(m, 0);
	struct guest_region *r2 = guest_memory_region_at(m, 2);
	uint64_t bm[2];

	/* From the hole below r2 into its first two pages. */
	guest_memory_mark_dirty(m, 512 * KiB, 512 * KiB + PG + 1);
	/* Across everything, wrapping: marks every page of both. */
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r2, bm, 2), 2);
	ck_assert_uint_eq(bm[0], 3);
	guest_memory_mark_dirty(m, 0, UINT64_MAX);
	guest_memory_mark_dirty(m, UINT64_MAX - 5, 100);
	guest_memory_mark_dirty(m, 60 * KiB, 0);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1), 16);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r2, bm, 2), 128);
	ck_assert_uint_eq(bm[0], ~0ull);
	ck_assert_uint_eq(bm[1], ~0ull);
	guest_memory_mark_dirty(NULL, 0, 1);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_dirty_across_regions)
{
	struct guest_memory *m = dirty_mem();
	struct guest_region *r0 = guest_memory_region_at(m, 0);
	struct guest_region *r1 = guest_memory_region_at(m, 1);
	uint64_t bm[1];
	uint8_t buf[64] = {0};

	ck_assert_int_eq(guest_memory_write(m, 64 * KiB - 32, buf, 64), 0);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1), 1);
	ck_assert_uint_eq(bm[0], 1ull << 15);
	/* Not enabled on r1. */
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r1, bm, 1), -ENOTSUP);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(NULL, bm, 1),
			 -EINVAL);
	guest_memory_unref(m);
}
END_TEST

struct dirty_thread {
	struct guest_memory *m;
	unsigned int id;
};

static void *dirty_writer(void *arg)
{
	struct dirty_thread *t = arg;
	unsigned int i;

	for (i = 0; i < 64; i++) {
		guest_addr_t g = 1 * MiB + (uint64_t)(t->id * 64 + i) * PG;

		if (guest_memory_write_u32(t->m, g, i) != 0)
			return (void *)1;
	}
	return NULL;
}

/* Concurrent writers and a harvester: no dirty page is ever lost. */
START_TEST(test_dirty_concurrent)
{
	struct guest_memory *m = dirty_mem();
	struct guest_region *r2 = guest_memory_region_at(m, 2);
	struct dirty_thread t[2] = {{m, 0}, {m, 1}};
	pthread_t th[2];
	uint64_t acc[2] = {0, 0}, bm[2];
	int i;

	for (i = 0; i < 2; i++)
		ck_assert_int_eq(
			pthread_create(&th[i], NULL, dirty_writer, &t[i]), 0);
	for (i = 0; i < 1000; i++) {
		ck_assert_int_ge(guest_region_dirty_get_and_clear(r2, bm, 2),
				 0);
		acc[0] |= bm[0];
		acc[1] |= bm[1];
	}
	for (i = 0; i < 2; i++) {
		void *ret;

		ck_assert_int_eq(pthread_join(th[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_int_ge(guest_region_dirty_get_and_clear(r2, bm, 2), 0);
	acc[0] |= bm[0];
	acc[1] |= bm[1];
	ck_assert_uint_eq(acc[0], ~0ull);
	ck_assert_uint_eq(acc[1], ~0ull);
	guest_memory_unref(m);
}
END_TEST

/*
 * A harvester that copies a page after taking its dirty bit must see every
 * write whose dirty marking finished before the harvest.  The writer stores
 * increasing values into one page of a logging region and then publishes
 * how far it got; the harvester reads that mark, harvests, copies the page
 * when its bit was set, and its copy must never be older than the mark.
 * Fails when marking skips its locked RMW on a "bit already set" load that
 * the data store can be reordered after (x86 store->load reordering): the
 * harvester takes the old bit, copies the old data, and the new write is
 * never reported.
 */
struct dirty_race {
	struct guest_memory *m;
	_Atomic uint64_t written;
	atomic_bool done;
	int cpu[2]; /* writer, harvester; -1: not pinned */
};

/* Run the calling thread on @cpu (if >= 0).  The writer and harvester on
 * two different CPUs keep the race window open even on a loaded machine
 * (a scheduler putting both on one CPU hides it). */
static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *dirty_race_writer(void *arg)
{
	struct dirty_race *d = arg;
	uint64_t i;

	pin_self(d->cpu[0]);

	for (i = 1; !atomic_load_explicit(&d->done, memory_order_relaxed);
	     i++) {
		/* Relaxed atomics: the same marking as plain writes, and
		 * no data race for ThreadSanitizer to report. */
		if (guest_memory_store_u64(d->m, 0, i, memory_order_relaxed))
			return (void *)1;
		atomic_store_explicit(&d->written, i, memory_order_release);
	}
	return NULL;
}

START_TEST(test_dirty_harvest_sees_marked_writes)
{
	struct guest_region *r =
		mkreg(0, PG, GUEST_REGION_ANON_PRIVATE, GUEST_REGION_DIRTY_LOG);
	struct dirty_race d;
	uint64_t copy = 0, w, bm[1], stale = 0, rounds = 0, errors = 0;
	cpu_set_t saved;
	int c, k;
	struct timespec t0, t;
	pthread_t th;
	void *ret;

	d.m = mkmem(&r, 1);
	r = guest_memory_region_at(d.m, 0);
	atomic_init(&d.written, 0);
	atomic_init(&d.done, false);
	d.cpu[0] = d.cpu[1] = -1;
	ck_assert_int_eq(sched_getaffinity(0, sizeof(saved), &saved), 0);
	for (c = 0, k = 0; c < CPU_SETSIZE && k < 2; c++)
		if (CPU_ISSET(c, &saved))
			d.cpu[k++] = c;
	if (k < 2)
		d.cpu[0] = d.cpu[1] = -1; /* one CPU: run unpinned */
	pin_self(d.cpu[1]);
	ck_assert_int_eq(pthread_create(&th, NULL, dirty_race_writer, &d), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	t = t0;
	/* No ck_assert in the loop: each one costs a system call, which
	 * would slow the harvester enough to hide the race. */
	do {
		w = atomic_load_explicit(&d.written, memory_order_acquire);
		if (guest_region_dirty_get_and_clear(r, bm, 1) < 0)
			errors++;
		if ((bm[0] & 1) &&
		    guest_memory_load_u64(d.m, 0, &copy, memory_order_relaxed))
			errors++;
		if (copy < w)
			stale++;
		if ((++rounds & 4095) == 0)
			clock_gettime(CLOCK_MONOTONIC, &t);
		/* Two seconds, or until the first stale copy. */
	} while (stale == 0 && errors == 0 && t.tv_sec - t0.tv_sec < 2);
	atomic_store(&d.done, true);
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	ck_assert_ptr_null(ret);
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	ck_assert_uint_eq(errors, 0);
	ck_assert_uint_eq(stale, 0);
	guest_memory_unref(d.m);
}
END_TEST

START_TEST(test_region_file_readonly_fd)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	struct guest_memory *m;
	char path[] = "/tmp/cvmm-vmmem-ro-XXXXXX";
	int wfd = mkstemp(path), fd;
	uint8_t b = 0;

	ck_assert_int_ge(wfd, 0);
	ck_assert_int_eq(ftruncate(wfd, 2 * PG), 0);
	ck_assert_int_eq(pwrite(wfd, "R", 1, PG), 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	close(wfd);
	ck_assert_int_ge(fd, 0);
	memset(&p, 0, sizeof(p));
	p.size = PG;
	p.backing = GUEST_REGION_FILE;
	p.fd = fd;
	p.file_offset = PG;
	/* Writable shared mapping of a read-only fd: mmap's -EACCES. */
	ck_assert_int_eq(guest_region_create(&p, &r), -EACCES);
	p.flags = GUEST_REGION_READONLY;
	ck_assert_int_eq(guest_region_create(&p, &r), 0);
	close(fd);
	m = mkmem(&r, 1);
	ck_assert_int_eq(guest_memory_read_u8(m, 0, &b), 0);
	ck_assert_uint_eq(b, 'R');
	ck_assert_int_eq(guest_memory_write_u8(m, 0, 1), -EPERM);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_region_guard_pages_access_edges)
{
	struct guest_region *r[2];
	struct guest_memory *m;
	uint8_t buf[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t out[16];

	/* Two adjacent guarded regions: their host mappings are apart, and
	 * an access across the guest boundary is split correctly. */
	r[0] = mkreg(0, 4 * PG, GUEST_REGION_ANON_PRIVATE,
		     GUEST_REGION_GUARD_PAGES);
	r[1] = mkreg(4 * PG, 4 * PG, GUEST_REGION_MEMFD,
		     GUEST_REGION_GUARD_PAGES | GUEST_REGION_NORESERVE);
	m = mkmem(r, 2);
	ck_assert_int_eq(guest_memory_write(m, 4 * PG - 8, buf, 16), 0);
	ck_assert_int_eq(guest_memory_read(m, 4 * PG - 8, out, 16), 0);
	ck_assert_mem_eq(out, buf, 16);
	ck_assert_int_eq(guest_memory_write(m, 8 * PG - 8, buf, 16), -ENXIO);
	ck_assert_int_eq(guest_memory_write(m, 8 * PG - 8, buf, 8), 0);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_memory_replace_region)
{
	struct guest_memory *m = std_mem(), *m2 = NULL, *m3 = NULL;
	struct guest_region *old = NULL;
	struct guest_region *r =
		mkreg(1 * MiB, 64 * KiB, GUEST_REGION_MEMFD, 0);
	uint32_t v = 0;

	ck_assert_int_eq(guest_memory_write_u32(m, 1 * MiB, 0x0111), 0);
	/* Adding the replacement before removing the old one overlaps. */
	ck_assert_int_eq(guest_memory_add_region(m, r, &m2), -EEXIST);
	ck_assert_int_eq(
		guest_memory_remove_region(m, 1 * MiB, 64 * KiB, &m2, &old), 0);
	ck_assert_int_eq(guest_memory_add_region(m2, r, &m3), 0);
	guest_region_unref(r);
	ck_assert_int_eq(guest_memory_read_u32(m3, 1 * MiB, &v), 0);
	ck_assert_uint_eq(v, 0); /* the new, zeroed region */
	ck_assert_int_eq(guest_memory_read_u32(m, 1 * MiB, &v), 0);
	ck_assert_uint_eq(v, 0x0111); /* the old snapshot, old region */
	ck_assert_ptr_eq(guest_memory_find_region(m, 1 * MiB), old);
	ck_assert_ptr_ne(guest_memory_find_region(m3, 1 * MiB), old);
	guest_region_unref(old);
	guest_memory_unref(m);
	guest_memory_unref(m2);
	guest_memory_unref(m3);
}
END_TEST

START_TEST(test_iovecs_three_regions)
{
	struct guest_region *r[3];
	struct guest_memory *m;
	struct iovec iov[3];
	int i;

	for (i = 0; i < 3; i++)
		r[i] = mkreg((uint64_t)i * 2 * PG, 2 * PG,
			     GUEST_REGION_ANON_PRIVATE, 0);
	m = mkmem(r, 3);
	ck_assert_int_eq(guest_memory_iovecs(m, PG, 4 * PG, iov, 3), 3);
	ck_assert_uint_eq(iov[0].iov_len, PG);
	ck_assert_uint_eq(iov[1].iov_len, 2 * PG);
	ck_assert_uint_eq(iov[2].iov_len, PG);
	ck_assert_ptr_eq(iov[2].iov_base, host_of(m, 4 * PG));
	ck_assert_int_eq(guest_memory_iovecs(m, PG, 4 * PG, iov, 2), -ENOBUFS);
	ck_assert_int_eq(guest_memory_iovecs(m, 0, 6 * PG, iov, 3), 3);
	ck_assert_int_eq(guest_memory_iovecs(m, 0, 6 * PG + 1, iov, 3), -ENXIO);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_fd_io_pipe_dirty)
{
	struct guest_memory *m = dirty_mem();
	struct guest_region *r0 = guest_memory_region_at(m, 0);
	uint64_t bm[1];
	char out[8] = {0};
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "pipedata", 8), 8);
	/* Only 8 bytes are there: a short read, across two pages. */
	ck_assert_int_eq(guest_memory_read_from_fd(m, 2 * PG - 4, 64, p[0], -1),
			 8);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1), 2);
	ck_assert_uint_eq(bm[0], 0x6);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 2 * PG - 4, 8, p[1], -1),
			 8);
	ck_assert_int_eq(read(p[0], out, 8), 8);
	ck_assert_mem_eq(out, "pipedata", 8);
	/* Writing out does not dirty guest memory. */
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1), 0);
	/* preadv on a pipe: the syscall's errno. */
	ck_assert_int_eq(guest_memory_read_from_fd(m, 0, 8, p[0], 0), -ESPIPE);
	close(p[0]);
	close(p[1]);
	guest_memory_unref(m);
}
END_TEST

static void on_sigusr1(int sig)
{
	(void)sig;
}

struct eintr_kick {
	pthread_t target;
	atomic_bool stop;
};

/* Keep signalling the target until told to stop: the first signal may
 * arrive before the target blocks in the syscall. */
static void *eintr_kicker(void *arg)
{
	struct eintr_kick *k = arg;

	while (!atomic_load(&k->stop)) {
		usleep(20000);
		pthread_kill(k->target, SIGUSR1);
	}
	return NULL;
}

/* A blocked readv/writev interrupted by a signal (no SA_RESTART) gives
 * -EINTR, transfers nothing and dirties nothing. */
START_TEST(test_fd_io_eintr)
{
	struct guest_memory *m = dirty_mem();
	struct guest_region *r0 = guest_memory_region_at(m, 0);
	struct sigaction sa, old;
	struct eintr_kick k;
	pthread_t th;
	uint64_t bm[1];
	char junk[4096];
	int p[2], fl;
	ssize_t n;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1; /* no SA_RESTART */
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	ck_assert_int_eq(pipe(p), 0);
	k.target = pthread_self();
	atomic_init(&k.stop, false);
	ck_assert_int_eq(pthread_create(&th, NULL, eintr_kicker, &k), 0);
	/* Empty pipe: readv blocks until the signal. */
	ck_assert_int_eq(guest_memory_read_from_fd(m, 0, 64, p[0], -1), -EINTR);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r0, bm, 1), 0);
	/* Full pipe: writev blocks until the signal. */
	fl = fcntl(p[1], F_GETFL);
	ck_assert_int_eq(fcntl(p[1], F_SETFL, fl | O_NONBLOCK), 0);
	memset(junk, 0, sizeof(junk));
	while (write(p[1], junk, sizeof(junk)) > 0)
		;
	while (write(p[1], junk, 1) > 0)
		;
	ck_assert_int_eq(fcntl(p[1], F_SETFL, fl), 0);
	n = guest_memory_write_to_fd(m, 0, 64, p[1], -1);
	ck_assert_int_eq(n, -EINTR);
	atomic_store(&k.stop, true);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
	close(p[0]);
	close(p[1]);
	guest_memory_unref(m);
}
END_TEST

/* A range crossing more than IOV_MAX regions is transferred short, at
 * exactly IOV_MAX regions, like readv/writev would; the rest follows on
 * the next call. */
START_TEST(test_fd_io_more_than_iov_max)
{
	enum {
		N = IOV_MAX + 9
	};
	struct guest_region **r = calloc(N, sizeof(*r));
	struct guest_memory *m;
	int fd = make_tmpfile(0);
	uint64_t v = 0;
	size_t i;

	ck_assert_ptr_nonnull(r);
	for (i = 0; i < N; i++)
		r[i] = mkreg(i * PG, PG, GUEST_REGION_ANON_PRIVATE, 0);
	m = mkmem(r, N);
	free(r);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(guest_memory_write_u64(m, i * PG, i + 1), 0);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, N * PG, fd, 0),
			 (ssize_t)(IOV_MAX * PG));
	ck_assert_int_eq(guest_memory_write_to_fd(m, IOV_MAX * PG,
						  (N - IOV_MAX) * PG, fd,
						  IOV_MAX * PG),
			 (ssize_t)((N - IOV_MAX) * PG));
	ck_assert_int_eq(guest_memory_fill(m, 0, 0, N * PG), 0);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 0, N * PG, fd, 0),
			 (ssize_t)(IOV_MAX * PG));
	ck_assert_int_eq(guest_memory_read_u64(m, (IOV_MAX - 1) * PG, &v), 0);
	ck_assert_uint_eq(v, IOV_MAX);
	ck_assert_int_eq(guest_memory_read_u64(m, IOV_MAX * PG, &v), 0);
	ck_assert_uint_eq(v, 0); /* not reached by the short read */
	close(fd);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_dirty_bitmap_words)
{
	struct guest_region *r = mkreg(0, 65 * PG, GUEST_REGION_ANON_PRIVATE,
				       GUEST_REGION_DIRTY_LOG);
	struct guest_region *plain =
		mkreg(0, 65 * PG, GUEST_REGION_ANON_PRIVATE, 0);
	struct guest_memory *m;
	uint64_t bm[3] = {0, 0, 0xdead};

	ck_assert_uint_eq(guest_region_dirty_bitmap_words(r), 2);
	ck_assert_uint_eq(guest_region_dirty_bitmap_words(NULL), 0);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(plain, bm, 3),
			 -ENOTSUP);
	guest_region_unref(plain);
	ck_assert_uint_eq(guest_region_flags(r), GUEST_REGION_DIRTY_LOG);
	m = mkmem(&r, 1);
	ck_assert_int_eq(guest_memory_write_u8(m, 64 * PG, 1), 0);
	ck_assert_int_eq(guest_memory_write_u8(m, 63 * PG + 4095, 1), 0);
	ck_assert_int_eq(guest_region_dirty_get_and_clear(r, bm, 3), 2);
	ck_assert_uint_eq(bm[0], 1ull << 63);
	ck_assert_uint_eq(bm[1], 1);
	ck_assert_uint_eq(bm[2], 0xdead); /* beyond the bitmap: untouched */
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_log_default_silent)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;

	/* No callback in the params: errors are returned, nothing printed. */
	memset(&p, 0, sizeof(p));
	p.backing = GUEST_REGION_HUGETLB;
	p.huge_page_size = 1ull << 41;
	p.size = 1ull << 41;
	ck_assert_int_eq(guest_region_create(&p, &r), -ENOTSUP);
	ck_assert_ptr_null(r);
}
END_TEST

/* Hostile guest: a length of SIZE_MAX or a descriptor at the top of the
 * address space never reaches host memory. */
START_TEST(test_hostile_huge_lengths)
{
	struct guest_memory *m = std_mem();
	uint8_t b = 0x5a;
	struct iovec iov[8];

	ck_assert_int_eq(guest_memory_read(m, 0, &b, SIZE_MAX), -ENXIO);
	ck_assert_int_eq(guest_memory_write(m, 2, &b, SIZE_MAX), -EOVERFLOW);
	ck_assert_int_eq(guest_memory_fill(m, 0, 0, SIZE_MAX), -ENXIO);
	ck_assert_int_eq(guest_memory_iovecs(m, 0, UINT64_MAX, iov, 8), -ENXIO);
	ck_assert_int_eq(guest_memory_read_from_fd(m, 0, SIZE_MAX, 0, -1),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_write_to_fd(m, 0, (size_t)SSIZE_MAX, 1,
						  -1),
			 -ENXIO);
	ck_assert_uint_eq(b, 0x5a);
	ck_assert_uint_eq(((uint8_t *)host_of(m, 0))[0], 0);
	guest_memory_unref(m);
}
END_TEST

/* Zero-length accesses at region edges (one past the end, in front of a
 * hole) succeed and touch nothing; one byte more is an error. */
START_TEST(test_zero_length_at_region_edges)
{
	struct guest_memory *m = std_mem();
	uint8_t b = 0x3c;

	ck_assert_int_eq(guest_memory_read(m, 128 * KiB, &b, 0), 0);
	ck_assert_int_eq(guest_memory_write(m, 128 * KiB, &b, 0), 0);
	ck_assert_int_eq(guest_memory_read(m, 1 * MiB + 64 * KiB, &b, 0), 0);
	ck_assert_int_eq(guest_memory_write(m, 1 * MiB + 64 * KiB, &b, 0), 0);
	ck_assert_int_eq(guest_memory_read(m, 1 * MiB - 1, &b, 0), 0);
	ck_assert_int_eq(guest_memory_read(m, 128 * KiB, &b, 1), -EFAULT);
	ck_assert_int_eq(guest_memory_read(m, 1 * MiB + 64 * KiB, &b, 1),
			 -EFAULT);
	ck_assert_int_eq(guest_memory_write(m, 1 * MiB + 64 * KiB - 1, &b, 1),
			 0);
	ck_assert_uint_eq(b, 0x3c);
	guest_memory_unref(m);
}
END_TEST

/* RAM followed by adjacent ROM: reads and typed reads cross the boundary,
 * writes that reach the ROM are refused whole. */
START_TEST(test_rom_adjacent_to_ram)
{
	struct guest_region *r[2];
	struct guest_memory *m;
	uint8_t *ram, *rom;
	uint64_t v = 0;
	uint32_t w = 0;
	int fd = make_tmpfile(PG);

	ck_assert_int_eq(pwrite(fd, "\xaa\xbb\xcc\xdd", 4, 0), 4);
	r[0] = mkreg(0, PG, GUEST_REGION_ANON_PRIVATE, 0);
	{
		struct guest_region_params p;

		memset(&p, 0, sizeof(p));
		p.gpa = PG;
		p.size = PG;
		p.backing = GUEST_REGION_FILE;
		p.fd = fd;
		p.flags = GUEST_REGION_READONLY;
		ck_assert_int_eq(guest_region_create(&p, &r[1]), 0);
	}
	close(fd);
	m = mkmem(r, 2);
	ram = host_of(m, 0);
	rom = host_of(m, PG);
	ram[PG - 2] = 0x11;
	ram[PG - 1] = 0x22;
	ck_assert_int_eq(guest_memory_read_u32(m, PG - 2, &w), 0);
	ck_assert_uint_eq(w, 0xbbaa2211);
	ck_assert_int_eq(guest_memory_write_u64(m, PG - 4, 0), -EPERM);
	ck_assert_uint_eq(ram[PG - 1], 0x22); /* nothing written */
	ck_assert_int_eq(guest_memory_write_u16(m, PG - 2, 0x3344), 0);
	ck_assert_uint_eq(ram[PG - 1], 0x33);
	ck_assert_int_eq(guest_memory_read_u64(m, PG - 2, &v), 0);
	ck_assert_uint_eq(v, 0x0000ddccbbaa3344ull);
	ck_assert_uint_eq(rom[0], 0xaa);
	guest_memory_unref(m);
}
END_TEST

/* ------------------------------------------------------------------ logging */

START_TEST(test_log_callback)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	int calls = 0;

	memset(&p, 0, sizeof(p));
	p.backing = GUEST_REGION_HUGETLB;
	p.huge_page_size = 1ull << 40; /* no such pool anywhere */
	p.size = 1ull << 40;
	p.log = test_log;
	p.log_opaque = &calls;
	ck_assert_int_eq(guest_region_create(&p, &r), -ENOTSUP);
	ck_assert_int_eq(calls, 1);
	ck_assert_ptr_nonnull(strstr(log_buf, "huge pages"));
	p.log = NULL; /* silenced */
	ck_assert_int_eq(guest_region_create(&p, &r), -ENOTSUP);
	ck_assert_int_eq(calls, 1);
	ck_assert_ptr_null(r);
}
END_TEST

/* The callback belongs to the region being created: two callers with their
 * own callbacks each hear about their own region only. */
START_TEST(test_log_per_object)
{
	struct guest_region_params a, b;
	struct guest_region *r = NULL;
	int calls_a = 0, calls_b = 0;

	memset(&a, 0, sizeof(a));
	a.backing = GUEST_REGION_HUGETLB;
	a.huge_page_size = 1ull << 40;
	a.size = 1ull << 40;
	b = a;
	a.log = test_log;
	a.log_opaque = &calls_a;
	b.log = test_log;
	b.log_opaque = &calls_b;
	ck_assert_int_eq(guest_region_create(&a, &r), -ENOTSUP);
	ck_assert_int_eq(calls_a, 1);
	ck_assert_int_eq(calls_b, 0);
	ck_assert_int_eq(guest_region_create(&b, &r), -ENOTSUP);
	ck_assert_int_eq(calls_a, 1);
	ck_assert_int_eq(calls_b, 1);
	/* A region that maps fine says nothing. */
	a.backing = GUEST_REGION_ANON_PRIVATE;
	a.huge_page_size = 0;
	a.size = PG;
	ck_assert_int_eq(guest_region_create(&a, &r), 0);
	ck_assert_int_eq(calls_a, 1);
	guest_region_unref(r);
}
END_TEST

/*
 * Readers keep using the snapshot they took while another thread publishes
 * new ones (adding and removing a region).  The VMM guards the published
 * pointer (here a mutex) only long enough to take a reference; accesses run
 * unlocked on the snapshot, which stays consistent until released.
 */
struct swap_ctx {
	pthread_mutex_t lock;
	struct guest_memory *cur;
	atomic_int stop;
};

static struct guest_memory *swap_get(struct swap_ctx *c)
{
	struct guest_memory *m;

	pthread_mutex_lock(&c->lock);
	m = guest_memory_ref(c->cur);
	pthread_mutex_unlock(&c->lock);
	return m;
}

static void swap_put(struct swap_ctx *c, struct guest_memory *m)
{
	struct guest_memory *old;

	pthread_mutex_lock(&c->lock);
	old = c->cur;
	c->cur = m;
	pthread_mutex_unlock(&c->lock);
	guest_memory_unref(old);
}

static void *swap_reader(void *arg)
{
	struct swap_ctx *c = arg;
	long bad = 0, iters = 0;

	while (!atomic_load(&c->stop) || iters < 1000) {
		struct guest_memory *m = swap_get(c);
		size_t n = guest_memory_num_regions(m);
		uint64_t v = 0;
		int ret;

		/* Low RAM is in every snapshot. */
		if (guest_memory_read_u64(m, 8, &v) != 0 || v != 0x77)
			bad++;
		/* High RAM is there exactly when the snapshot says so, and
		 * reads consistently for as long as it is held. */
		ret = guest_memory_read_u64(m, 1 * MiB, &v);
		if (n == 2 ? (ret != 0 || v != 0x99) : ret != -EFAULT)
			bad++;
		guest_memory_unref(m);
		iters++;
	}
	return (void *)bad;
}

START_TEST(test_snapshot_readers_threads)
{
	struct guest_region *r0 =
		mkreg(0, 64 * KiB, GUEST_REGION_ANON_SHARED, 0);
	struct swap_ctx c;
	pthread_t th[2];
	int i;

	pthread_mutex_init(&c.lock, NULL);
	c.cur = mkmem(&r0, 1);
	atomic_init(&c.stop, 0);
	ck_assert_int_eq(guest_memory_write_u64(c.cur, 8, 0x77), 0);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, swap_reader, &c),
				 0);
	for (i = 0; i < 200; i++) {
		struct guest_memory *m = swap_get(&c), *m2 = NULL;
		struct guest_region *r;

		if (guest_memory_num_regions(m) == 1) {
			r = mkreg(1 * MiB, 64 * KiB, GUEST_REGION_ANON_PRIVATE,
				  0);
			/* Filled before it is published. */
			*(uint64_t *)guest_region_host_addr(r) = 0x99;
			ck_assert_int_eq(guest_memory_add_region(m, r, &m2), 0);
			guest_region_unref(r);
		} else {
			ck_assert_int_eq(guest_memory_remove_region(m, 1 * MiB,
								    64 * KiB,
								    &m2, NULL),
					 0);
		}
		guest_memory_unref(m);
		swap_put(&c, m2);
	}
	atomic_store(&c.stop, 1);
	for (i = 0; i < 2; i++) {
		void *ret;

		ck_assert_int_eq(pthread_join(th[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	guest_memory_unref(c.cur);
	pthread_mutex_destroy(&c.lock);
}
END_TEST

static Suite *vm_memory_suite(void)
{
	Suite *s = suite_create("vm-memory");
	TCase *tc;

	tc = tcase_create("regions");
	tcase_add_test(tc, test_region_anon_private);
	tcase_add_test(tc, test_region_bad_params);
	tcase_add_test(tc, test_region_ref_unref);
	tcase_add_test(tc, test_region_anon_shared);
	tcase_add_test(tc, test_region_memfd);
	tcase_add_test(tc, test_region_memfd_other_process);
	tcase_add_test(tc, test_region_file_offset);
	tcase_add_test(tc, test_region_file_errors);
	tcase_add_test(tc, test_region_hugetlb);
	tcase_add_test(tc, test_region_user_never_unmapped);
	tcase_add_test(tc, test_region_guard_pages);
	tcase_add_test(tc, test_region_noreserve);
	tcase_add_test(tc, test_region_file_readonly_fd);
	tcase_add_test(tc, test_region_guard_pages_access_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("snapshots");
	tcase_add_test(tc, test_memory_empty);
	tcase_add_test(tc, test_memory_sorted_and_find);
	tcase_add_test(tc, test_memory_create_overlap);
	tcase_add_test(tc, test_memory_create_bad_params);
	tcase_add_test(tc, test_memory_create_ranges);
	tcase_add_test(tc, test_memory_create_ranges_errors);
	tcase_add_test(tc, test_memory_ref_keeps_regions);
	tcase_add_test(tc, test_memory_add_region);
	tcase_add_test(tc, test_memory_remove_region);
	tcase_add_test(tc, test_memory_many_regions);
	tcase_add_test(tc, test_snapshot_readers_threads);
	tcase_add_test(tc, test_memory_replace_region);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_add_test(tc, test_read_write_one_region);
	tcase_add_test(tc, test_read_write_across_regions);
	tcase_add_test(tc, test_large_write_memfd);
	tcase_add_test(tc, test_typed_roundtrip);
	tcase_add_test(tc, test_typed_straddle_adjacent);
	tcase_add_test(tc, test_typed_errors);
	tcase_add_test(tc, test_atomic_roundtrip);
	tcase_add_test(tc, test_atomic_misaligned);
	tcase_add_test(tc, test_atomic_inline_matches_exported);
	tcase_add_test(tc, test_atomic_bad_order_and_range);
	tcase_add_test(tc, test_translate);
	tcase_add_test(tc, test_contiguous);
	tcase_add_test(tc, test_check_range);
	tcase_add_test(tc, test_fill);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_iovecs);
	tcase_add_test(tc, test_fd_io_file);
	tcase_add_test(tc, test_fd_io_errors);
	tcase_add_test(tc, test_fd_io_many_regions);
	tcase_add_test(tc, test_iovecs_three_regions);
	tcase_add_test(tc, test_fd_io_pipe_dirty);
	tcase_add_test(tc, test_fd_io_eintr);
	tcase_add_test(tc, test_fd_io_more_than_iov_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_err_overflow);
	tcase_add_test(tc, test_err_hole);
	tcase_add_test(tc, test_err_runs_into_hole);
	tcase_add_test(tc, test_zero_length_anywhere);
	tcase_add_test(tc, test_read_write_bad_args);
	tcase_add_test(tc, test_hostile_ring_over_mmio_hole);
	tcase_add_test(tc, test_hostile_huge_lengths);
	tcase_add_test(tc, test_zero_length_at_region_edges);
	tcase_add_test(tc, test_rom_adjacent_to_ram);
	suite_add_tcase(s, tc);

	tc = tcase_create("dirty");
	tcase_add_test(tc, test_dirty_write);
	tcase_add_test(tc, test_dirty_all_writers);
	tcase_add_test(tc, test_dirty_mark_outside_ram_ignored);
	tcase_add_test(tc, test_dirty_across_regions);
	tcase_add_test(tc, test_dirty_concurrent);
	tcase_add_test(tc, test_dirty_harvest_sees_marked_writes);
	tcase_add_test(tc, test_log_callback);
	tcase_add_test(tc, test_dirty_bitmap_words);
	tcase_add_test(tc, test_log_default_silent);
	tcase_add_test(tc, test_log_per_object);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(vm_memory_suite(), false);
}
