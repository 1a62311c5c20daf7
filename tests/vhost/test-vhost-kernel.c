/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost kernel vhost API through its ioctl seam: the requests and their
 * arguments as the kernel would receive them, the kernel's errors passed
 * back, and the arguments refused before any ioctl.  The build host has no
 * vhost modules; the lab runs the real thing.
 */
#include <linux/vhost.h>

#include <cvmm/vhost/kernel.h>

#include "cvmm-check.h"

#define MAX_CALLS 16

struct fake {
	unsigned int ncalls;
	unsigned long req[MAX_CALLS];
	/* Copies of the arguments (the largest is a two-region table). */
	union {
		uint64_t u64;
		int i;
		struct vhost_vring_state state;
		struct vhost_vring_addr addr;
		struct vhost_vring_file file;
		struct {
			uint32_t nregions;
			struct vhost_memory_region r[2];
		} mem;
	} arg[MAX_CALLS];
	unsigned long fail_req; /* this request fails with fail_err */
	int fail_err;
	uint64_t features; /* what GET_FEATURES returns */
	unsigned int base; /* what GET_VRING_BASE returns */
};

static int fake_ioctl(void *opaque, int fd, unsigned long request, void *arg)
{
	struct fake *f = opaque;
	unsigned int i = f->ncalls;

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(i, MAX_CALLS);
	f->ncalls++;
	f->req[i] = request;
	switch (request) {
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = f->features;
		break;
	case VHOST_GET_VRING_BASE:
		((struct vhost_vring_state *)arg)->num = f->base;
		break;
	case VHOST_SET_FEATURES:
	case VHOST_VSOCK_SET_GUEST_CID:
		f->arg[i].u64 = *(uint64_t *)arg;
		break;
	case VHOST_VSOCK_SET_RUNNING:
		f->arg[i].i = *(int *)arg;
		break;
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_BASE:
		f->arg[i].state = *(struct vhost_vring_state *)arg;
		break;
	case VHOST_SET_VRING_ADDR:
		f->arg[i].addr = *(struct vhost_vring_addr *)arg;
		break;
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_SET_VRING_ERR:
	case VHOST_NET_SET_BACKEND:
		f->arg[i].file = *(struct vhost_vring_file *)arg;
		break;
	case VHOST_SET_MEM_TABLE: {
		const struct vhost_memory *m = arg;

		ck_assert_uint_le(m->nregions, 2);
		f->arg[i].mem.nregions = m->nregions;
		memcpy(f->arg[i].mem.r, m->regions,
		       m->nregions * sizeof(m->regions[0]));
		break;
	}
	case VHOST_SET_OWNER:
	case VHOST_RESET_OWNER:
		ck_assert_ptr_null(arg);
		break;
	default:
		ck_abort_msg("unexpected request %#lx", request);
	}
	if (request == f->fail_req)
		return -f->fail_err;
	return 0;
}

static struct vhost_kernel *make(struct fake *f)
{
	struct vhost_kernel_config cfg = {.ioctl = fake_ioctl, .opaque = f};
	struct vhost_kernel *vk = NULL;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	memset(f, 0, sizeof(*f));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vhost_kernel_create(fd, &cfg, &vk), 0);
	ck_assert_int_eq(vhost_kernel_fd(vk), fd);
	return vk;
}

static struct guest_memory *two_regions(void)
{
	struct guest_memory_range r[2] = {{0, 0x10000}, {0x100000, 0x10000}};
	struct guest_memory *m = NULL;

	ck_assert_int_eq(guest_memory_create_ranges(r, 2, NULL, &m), 0);
	return m;
}

START_TEST(test_kernel_net_sequence)
{
	struct guest_memory *m = two_regions();
	struct vhost_kernel *vk;
	struct fake f;
	uint64_t feat = 0;
	unsigned int base = 0;
	uintptr_t h0 =
		(uintptr_t)guest_region_host_addr(guest_memory_region_at(m, 0));
	uintptr_t h1 =
		(uintptr_t)guest_region_host_addr(guest_memory_region_at(m, 1));

	vk = make(&f);
	f.features = 0x130008000ull;
	f.base = 77;
	ck_assert_int_eq(vhost_kernel_set_owner(vk), 0);
	ck_assert_int_eq(vhost_kernel_get_features(vk, &feat), 0);
	ck_assert_uint_eq(feat, 0x130008000ull);
	ck_assert_int_eq(vhost_kernel_set_features(vk, 0x100000000ull), 0);
	ck_assert_int_eq(vhost_kernel_set_mem_table(vk, m), 0);
	ck_assert_int_eq(vhost_kernel_set_vring_num(vk, 1, 256), 0);
	ck_assert_int_eq(vhost_kernel_set_vring_base(vk, 1, 5), 0);
	ck_assert_int_eq(vhost_kernel_set_vring_addr(vk, 1, 0x1000, 0x2000,
						     0x100040),
			 0);
	ck_assert_int_eq(vhost_kernel_set_vring_kick(vk, 1, 10), 0);
	ck_assert_int_eq(vhost_kernel_set_vring_call(vk, 1, 11), 0);
	ck_assert_int_eq(vhost_kernel_set_vring_err(vk, 1, -1), 0);
	ck_assert_int_eq(vhost_kernel_net_set_backend(vk, 1, 12), 0);
	ck_assert_int_eq(vhost_kernel_get_vring_base(vk, 1, &base), 0);
	ck_assert_uint_eq(base, 77);
	ck_assert_int_eq(vhost_kernel_reset_owner(vk), 0);

	ck_assert_uint_eq(f.ncalls, 13);
	ck_assert_uint_eq(f.req[0], VHOST_SET_OWNER);
	ck_assert_uint_eq(f.req[1], VHOST_GET_FEATURES);
	ck_assert_uint_eq(f.req[2], VHOST_SET_FEATURES);
	ck_assert_uint_eq(f.arg[2].u64, 0x100000000ull);
	ck_assert_uint_eq(f.req[3], VHOST_SET_MEM_TABLE);
	ck_assert_uint_eq(f.arg[3].mem.nregions, 2);
	ck_assert_uint_eq(f.arg[3].mem.r[0].guest_phys_addr, 0);
	ck_assert_uint_eq(f.arg[3].mem.r[0].memory_size, 0x10000);
	ck_assert_uint_eq(f.arg[3].mem.r[0].userspace_addr, h0);
	ck_assert_uint_eq(f.arg[3].mem.r[1].guest_phys_addr, 0x100000);
	ck_assert_uint_eq(f.arg[3].mem.r[1].userspace_addr, h1);
	ck_assert_uint_eq(f.req[4], VHOST_SET_VRING_NUM);
	ck_assert_uint_eq(f.arg[4].state.index, 1);
	ck_assert_uint_eq(f.arg[4].state.num, 256);
	ck_assert_uint_eq(f.req[5], VHOST_SET_VRING_BASE);
	ck_assert_uint_eq(f.arg[5].state.num, 5);
	ck_assert_uint_eq(f.req[6], VHOST_SET_VRING_ADDR);
	ck_assert_uint_eq(f.arg[6].addr.index, 1);
	ck_assert_uint_eq(f.arg[6].addr.desc_user_addr, h0 + 0x1000);
	ck_assert_uint_eq(f.arg[6].addr.avail_user_addr, h0 + 0x2000);
	ck_assert_uint_eq(f.arg[6].addr.used_user_addr, h1 + 0x40);
	ck_assert_uint_eq(f.req[7], VHOST_SET_VRING_KICK);
	ck_assert_int_eq(f.arg[7].file.fd, 10);
	ck_assert_uint_eq(f.req[8], VHOST_SET_VRING_CALL);
	ck_assert_int_eq(f.arg[8].file.fd, 11);
	ck_assert_uint_eq(f.req[9], VHOST_SET_VRING_ERR);
	ck_assert_int_eq(f.arg[9].file.fd, VHOST_FILE_UNBIND);
	ck_assert_uint_eq(f.req[10], VHOST_NET_SET_BACKEND);
	ck_assert_uint_eq(f.arg[10].file.index, 1);
	ck_assert_int_eq(f.arg[10].file.fd, 12);
	ck_assert_uint_eq(f.req[11], VHOST_GET_VRING_BASE);
	ck_assert_uint_eq(f.req[12], VHOST_RESET_OWNER);
	vhost_kernel_destroy(vk);
	guest_memory_unref(m);
}
END_TEST

START_TEST(test_kernel_vsock)
{
	struct vhost_kernel *vk;
	struct fake f;

	vk = make(&f);
	ck_assert_int_eq(vhost_kernel_vsock_set_guest_cid(vk, 3), 0);
	ck_assert_int_eq(vhost_kernel_vsock_set_running(vk, true), 0);
	ck_assert_int_eq(vhost_kernel_vsock_set_running(vk, false), 0);
	ck_assert_uint_eq(f.ncalls, 3);
	ck_assert_uint_eq(f.req[0], VHOST_VSOCK_SET_GUEST_CID);
	ck_assert_uint_eq(f.arg[0].u64, 3);
	ck_assert_uint_eq(f.req[1], VHOST_VSOCK_SET_RUNNING);
	ck_assert_int_eq(f.arg[1].i, 1);
	ck_assert_int_eq(f.arg[2].i, 0);
	/* Reserved and out-of-range CIDs: refused without an ioctl. */
	ck_assert_int_eq(vhost_kernel_vsock_set_guest_cid(vk, 0), -EINVAL);
	ck_assert_int_eq(vhost_kernel_vsock_set_guest_cid(vk, 2), -EINVAL);
	ck_assert_int_eq(vhost_kernel_vsock_set_guest_cid(vk, UINT32_MAX),
			 -EINVAL);
	ck_assert_int_eq(vhost_kernel_vsock_set_guest_cid(vk, 1ull << 32),
			 -EINVAL);
	ck_assert_uint_eq(f.ncalls, 3);
	/* The kernel's answer (another VM has the CID) is passed back. */
	f.fail_req = VHOST_VSOCK_SET_GUEST_CID;
	f.fail_err = EADDRINUSE;
	ck_assert_int_eq(vhost_kernel_vsock_set_guest_cid(vk, 42), -EADDRINUSE);
	vhost_kernel_destroy(vk);
}
END_TEST

/* Every call passes the kernel's error back unchanged, and a failed
 * SET_MEM_TABLE keeps no table (ring addresses then cannot translate). */
START_TEST(test_kernel_errors_passed_back)
{
	static const struct {
		unsigned long req;
		int err;
	} cases[] = {
		{VHOST_SET_OWNER, EBUSY},
		{VHOST_GET_FEATURES, EFAULT},
		{VHOST_SET_FEATURES, EOPNOTSUPP},
		{VHOST_SET_MEM_TABLE, E2BIG},
		{VHOST_SET_VRING_NUM, EINVAL},
		{VHOST_SET_VRING_BASE, EBUSY},
		{VHOST_GET_VRING_BASE, ENOBUFS},
		{VHOST_SET_VRING_KICK, EBADF},
		{VHOST_SET_VRING_CALL, EBADF},
		{VHOST_SET_VRING_ERR, EBADF},
		{VHOST_NET_SET_BACKEND, ENOTSOCK},
		{VHOST_RESET_OWNER, EPERM},
		{VHOST_VSOCK_SET_RUNNING, EFAULT},
	};
	struct guest_memory *m = two_regions();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vhost_kernel *vk;
		struct fake f;
		uint64_t feat;
		unsigned int base;
		int r = 0, e = -cases[i].err;

		vk = make(&f);
		f.fail_req = cases[i].req;
		f.fail_err = cases[i].err;
		switch (cases[i].req) {
		case VHOST_SET_OWNER:
			r = vhost_kernel_set_owner(vk);
			break;
		case VHOST_GET_FEATURES:
			r = vhost_kernel_get_features(vk, &feat);
			break;
		case VHOST_SET_FEATURES:
			r = vhost_kernel_set_features(vk, 1);
			break;
		case VHOST_SET_MEM_TABLE:
			r = vhost_kernel_set_mem_table(vk, m);
			ck_assert_int_eq(vhost_kernel_set_vring_addr(
						 vk, 0, 0x1000, 0x2000, 0x3000),
					 -EINVAL);
			break;
		case VHOST_SET_VRING_NUM:
			r = vhost_kernel_set_vring_num(vk, 0, 256);
			break;
		case VHOST_SET_VRING_BASE:
			r = vhost_kernel_set_vring_base(vk, 0, 0);
			break;
		case VHOST_GET_VRING_BASE:
			base = 12345;
			r = vhost_kernel_get_vring_base(vk, 0, &base);
			ck_assert_uint_eq(base, 12345); /* untouched */
			break;
		case VHOST_SET_VRING_KICK:
			r = vhost_kernel_set_vring_kick(vk, 0, 99);
			break;
		case VHOST_SET_VRING_CALL:
			r = vhost_kernel_set_vring_call(vk, 0, 99);
			break;
		case VHOST_SET_VRING_ERR:
			r = vhost_kernel_set_vring_err(vk, 0, 99);
			break;
		case VHOST_NET_SET_BACKEND:
			r = vhost_kernel_net_set_backend(vk, 0, 99);
			break;
		case VHOST_RESET_OWNER:
			r = vhost_kernel_reset_owner(vk);
			break;
		default:
			r = vhost_kernel_vsock_set_running(vk, true);
			break;
		}
		ck_assert_msg(r == e, "request %#lx: %d, want %d", cases[i].req,
			      r, e);
		vhost_kernel_destroy(vk);
	}
	guest_memory_unref(m);
}
END_TEST

/* Arguments refused before any ioctl. */
START_TEST(test_kernel_bad_arguments)
{
	struct guest_memory *m = two_regions(), *empty = NULL;
	struct vhost_kernel *vk = NULL;
	struct fake f;
	unsigned int base;

	ck_assert_int_eq(vhost_kernel_create(-1, NULL, &vk), -EINVAL);
	ck_assert_int_eq(vhost_kernel_open("/nonexistent/vhost-net", NULL, &vk),
			 -ENOENT);
	ck_assert_int_eq(vhost_kernel_open(NULL, NULL, &vk), -EINVAL);
	vk = make(&f);
	/* Ring addresses before any table, outside the table, spanning
	 * into the hole after a region. */
	ck_assert_int_eq(vhost_kernel_set_vring_addr(vk, 0, 0, 0x100, 0x200),
			 -EINVAL);
	ck_assert_int_eq(vhost_kernel_set_mem_table(vk, m), 0);
	ck_assert_int_eq(vhost_kernel_set_vring_addr(vk, 0, 0x50000, 0x100,
						     0x200),
			 -EINVAL);
	ck_assert_int_eq(vhost_kernel_set_vring_addr(vk, 0, 0x100, 0x100,
						     0x200000),
			 -EINVAL);
	ck_assert_int_eq(guest_memory_create(NULL, 0, &empty), 0);
	ck_assert_int_eq(vhost_kernel_set_mem_table(vk, empty), -EINVAL);
	ck_assert_int_eq(vhost_kernel_set_mem_table(vk, NULL), -EINVAL);
	ck_assert_int_eq(vhost_kernel_set_vring_num(vk, 0, 0x10000), -EINVAL);
	ck_assert_int_eq(vhost_kernel_set_vring_base(vk, 0, 0x10000), -EINVAL);
	ck_assert_int_eq(vhost_kernel_set_vring_kick(vk, 0, -2), -EINVAL);
	ck_assert_int_eq(vhost_kernel_get_vring_base(vk, 0, NULL), -EINVAL);
	ck_assert_int_eq(vhost_kernel_get_features(vk, NULL), -EINVAL);
	ck_assert_uint_eq(f.ncalls, 1); /* the one SET_MEM_TABLE */
	ck_assert_int_eq(vhost_kernel_set_owner(NULL), -EINVAL);
	ck_assert_int_eq(vhost_kernel_fd(NULL), -1);
	(void)base;
	vhost_kernel_destroy(vk);
	vhost_kernel_destroy(NULL);
	guest_memory_unref(empty);
	guest_memory_unref(m);
}
END_TEST

/* Without a seam the real ioctl(2) runs: on a file that is no vhost
 * device the kernel says so, and the error comes back. */
START_TEST(test_kernel_real_ioctl_on_wrong_file)
{
	struct vhost_kernel *vk = NULL;
	uint64_t feat;

	ck_assert_int_eq(vhost_kernel_open("/dev/null", NULL, &vk), 0);
	ck_assert_int_eq(vhost_kernel_get_features(vk, &feat), -ENOTTY);
	ck_assert_int_eq(vhost_kernel_set_owner(vk), -ENOTTY);
	vhost_kernel_destroy(vk);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vhost-kernel");
	TCase *tc = tcase_create("seam");

	tcase_add_test(tc, test_kernel_net_sequence);
	tcase_add_test(tc, test_kernel_vsock);
	tcase_add_test(tc, test_kernel_errors_passed_back);
	tcase_add_test(tc, test_kernel_bad_arguments);
	tcase_add_test(tc, test_kernel_real_ioctl_on_wrong_file);
	suite_add_tcase(s, tc);
	return cvmm_check_run(s, false);
}
