/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * kvm suite: the /dev/kvm system handle, VM-level queries, vCPU creation
 * and mapping, boot CPU id and KVM_CREATE_DEVICE (the KVM-VFIO device).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "tvm.h"

START_TEST(system_queries)
{
	struct kvm_sys *sys;
	int n;

	ck_assert_int_eq(kvm_sys_create(&sys), 0);
	ck_assert_int_ge(kvm_sys_fd(sys), 0);
	ck_assert_int_eq(kvm_sys_api_version(sys), KVM_API_VERSION);
	ck_assert_int_ge(kvm_sys_vcpu_mmap_size(sys),
			 (int)sizeof(struct kvm_run));
	/* CHECK_EXTENSION returns the kernel's integer, not a bool. */
	ck_assert_int_eq(kvm_sys_check_extension(sys, KVM_CAP_USER_MEMORY), 1);
	n = kvm_sys_check_extension(sys, KVM_CAP_NR_MEMSLOTS);
	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(kvm_sys_nr_memslots(sys), n ? n : 32);
	ck_assert_int_ge(kvm_sys_nr_memslots(sys), 32);
	ck_assert_int_ge(kvm_sys_nr_vcpus(sys), 1);
	ck_assert_int_ge(kvm_sys_max_vcpus(sys), kvm_sys_nr_vcpus(sys));
	ck_assert_int_eq(kvm_sys_check_extension(sys, 0x7fffffff), 0);
	kvm_sys_destroy(sys);
}
END_TEST

START_TEST(system_cpuid)
{
	struct kvm_cpuid2 *c, *e;
	struct kvm_cpuid_entry2 *f0, *f1;
	struct kvm_sys *sys;

	ck_assert_int_eq(kvm_sys_create(&sys), 0);
	ck_assert_int_eq(kvm_sys_get_supported_cpuid(sys, &c), 0);
	ck_assert_uint_gt(c->nent, 1);
	f0 = kvm_cpuid2_find(c, 0, 0);
	ck_assert_ptr_nonnull(f0);
	ck_assert_uint_ge(f0->eax, 1); /* max basic leaf */
	f1 = kvm_cpuid2_find(c, 1, 0);
	ck_assert_ptr_nonnull(f1);
	ck_assert_uint_ne(f1->edx & (1u << 0), 0); /* FPU */
	ck_assert_ptr_null(kvm_cpuid2_find(c, 0x7fff0000, 0));
	if (kvm_sys_check_extension(sys, KVM_CAP_EXT_EMUL_CPUID) > 0) {
		ck_assert_int_eq(kvm_sys_get_emulated_cpuid(sys, &e), 0);
		ck_assert_uint_ge(e->nent, 1);
		free(e);
	} else {
		tvm_skip("emulated_cpuid", "no KVM_CAP_EXT_EMUL_CPUID");
	}
	free(c);
	kvm_sys_destroy(sys);
}
END_TEST

static bool list_has(const struct kvm_msr_list *l, uint32_t msr)
{
	uint32_t i;

	for (i = 0; i < l->nmsrs; i++)
		if (l->indices[i] == msr)
			return true;
	return false;
}

START_TEST(system_msr_lists)
{
	struct kvm_msr_list *l, *f;
	struct kvm_msrs *m;
	struct kvm_sys *sys;
	uint32_t i;

	ck_assert_int_eq(kvm_sys_create(&sys), 0);
	ck_assert_int_eq(kvm_sys_get_msr_index_list(sys, &l), 0);
	ck_assert_uint_gt(l->nmsrs, 4);
	ck_assert(list_has(l, 0xc0000081)); /* STAR */
	free(l);
	if (kvm_sys_check_extension(sys, KVM_CAP_GET_MSR_FEATURES) <= 0) {
		tvm_skip("feature_msrs", "no KVM_CAP_GET_MSR_FEATURES");
		kvm_sys_destroy(sys);
		return;
	}
	ck_assert_int_eq(kvm_sys_get_msr_feature_index_list(sys, &f), 0);
	ck_assert_uint_ge(f->nmsrs, 1);
	ck_assert_int_eq(kvm_msrs_new(f->nmsrs, &m), 0);
	for (i = 0; i < f->nmsrs; i++)
		m->entries[i].index = f->indices[i];
	/* Every listed feature MSR can be read from /dev/kvm. */
	ck_assert_int_eq(kvm_sys_get_feature_msrs(sys, m), (int)f->nmsrs);
	free(m);
	free(f);
	kvm_sys_destroy(sys);
}
END_TEST

START_TEST(vm_and_vcpus)
{
	struct kvm_vcpu_obj *v0, *v1, *dup;
	struct kvm_vm_obj *vm;
	struct kvm_sys *sys;
	struct kvm_enable_cap bad = {.cap = 0x7fffffff};

	ck_assert_int_eq(kvm_sys_create(&sys), 0);
	ck_assert_int_eq(kvm_vm_create(sys, 0, &vm), 0);
	kvm_sys_destroy(sys); /* the VM does not need it */
	ck_assert_int_ge(kvm_vm_fd(vm), 0);
	ck_assert_int_eq(kvm_vm_check_extension(vm, KVM_CAP_USER_MEMORY), 1);
	ck_assert_int_eq(kvm_vm_enable_cap(vm, &bad), -EINVAL);
	ck_assert_int_eq(kvm_vm_set_boot_cpu_id(vm, 1), 0);
	ck_assert_int_eq(kvm_vcpu_create(vm, 0, &v0), 0);
	ck_assert_int_eq(kvm_vcpu_create(vm, 1, &v1), 0);
	ck_assert_int_eq(kvm_vcpu_create(vm, 1, &dup), -EEXIST);
	ck_assert_ptr_null(dup);
	/* Too late once vCPUs exist. */
	ck_assert_int_eq(kvm_vm_set_boot_cpu_id(vm, 0), -EBUSY);
	ck_assert_uint_eq(kvm_vcpu_id(v1), 1);
	ck_assert_int_ge(kvm_vcpu_fd(v1), 0);
	ck_assert_ptr_nonnull(kvm_vcpu_run_struct(v1));
	ck_assert_uint_ge(kvm_vcpu_mmap_size(v1), sizeof(struct kvm_run));
	kvm_vcpu_destroy(v0);
	kvm_vcpu_destroy(v1);
	kvm_vm_destroy(vm);
}
END_TEST

START_TEST(kvm_vfio_device)
{
	struct kvm_dev_obj *dev;
	struct tvm t;
	int null_fd, r;
	uint64_t val = 0;

	tvm_init(&t, TVM_RAM, NULL);
	r = kvm_vm_device_supported(t.vm, KVM_DEV_TYPE_VFIO);
	ck_assert_int_ge(r, 0);
	ck_assert_int_eq(kvm_vm_device_supported(t.vm, 0x7fff), 0);
	if (r == 0) {
		tvm_skip("kvm_vfio_device", "KVM_DEV_TYPE_VFIO not available");
		tvm_fini(&t);
		return;
	}
	ck_assert_int_eq(kvm_dev_create(t.vm, KVM_DEV_TYPE_VFIO, &dev), 0);
	ck_assert_int_ge(kvm_dev_fd(dev), 0);
	ck_assert_uint_eq(kvm_dev_type(dev), KVM_DEV_TYPE_VFIO);
	ck_assert_int_eq(kvm_dev_has_attr(dev, KVM_DEV_VFIO_GROUP,
					  KVM_DEV_VFIO_GROUP_ADD),
			 1);
	ck_assert_int_eq(kvm_dev_has_attr(dev, 0x7777, 0), 0);
	/* Not a VFIO group: refused by the kernel. */
	ck_assert_int_eq(kvm_dev_vfio_add_group(dev, -1), -EBADF);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(null_fd, 0);
	ck_assert_int_lt(kvm_dev_vfio_add_group(dev, null_fd), 0);
	ck_assert_int_lt(kvm_dev_vfio_del_group(dev, null_fd), 0);
	/* The generic setter: an unknown group is refused by KVM-VFIO. */
	{
		int32_t gfd = null_fd;

		ck_assert_int_eq(kvm_dev_set_attr(dev, 0x7777, 0, &gfd),
				 -ENXIO);
	}
	/* KVM-VFIO has no readable attributes. */
	ck_assert_int_lt(kvm_dev_get_attr(dev, KVM_DEV_VFIO_GROUP,
					  KVM_DEV_VFIO_GROUP_ADD, &val),
			 0);
	close(null_fd);
	kvm_dev_destroy(dev);
	ck_assert_int_eq(kvm_dev_create(t.vm, 0x7fff, &dev), -ENODEV);
	tvm_fini(&t);
}
END_TEST

static int count_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* Every create path leaves nothing open when it fails. */
START_TEST(create_errors_leak_no_fd)
{
	struct kvm_vcpu_obj *v0, *v = NULL;
	struct kvm_dev_obj *d = NULL;
	struct kvm_vm_obj *vm = NULL;
	struct kvm_sys *sys;
	int before, i;

	ck_assert_int_eq(kvm_sys_create(&sys), 0);
	before = count_fds();
	/* KVM_CREATE_VM refuses an unknown machine type. */
	for (i = 0; i < 4; i++) {
		ck_assert_int_lt(kvm_vm_create(sys, 0x7fff0000ul, &vm), 0);
		ck_assert_ptr_null(vm);
	}
	ck_assert_int_eq(count_fds(), before);
	ck_assert_int_eq(kvm_vm_create(sys, 0, &vm), 0);
	ck_assert_int_eq(kvm_vcpu_create(vm, 0, &v0), 0);
	before = count_fds();
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(kvm_vcpu_create(vm, 0, &v), -EEXIST);
		ck_assert_ptr_null(v);
		ck_assert_int_eq(kvm_dev_create(vm, 0x7fff, &d), -ENODEV);
		ck_assert_ptr_null(d);
	}
	ck_assert_int_eq(count_fds(), before);
	kvm_vcpu_destroy(v0);
	kvm_vm_destroy(vm);
	kvm_sys_destroy(sys);
}
END_TEST

static long vm_size_bytes(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/*
 * KVM_CREATE_VCPU succeeds but mapping kvm_run fails (the address space is
 * capped with RLIMIT_AS at its current size): the vCPU fd must be closed.
 * KVM keeps the vCPU, so the same id is then -EEXIST: that proves the
 * mmap path, not an earlier allocation, was the one that failed.
 */
START_TEST(vcpu_create_mmap_failure_closes_fd)
{
	struct kvm_vcpu_obj *v = (struct kvm_vcpu_obj *)1;
	struct kvm_vm_obj *vm;
	struct kvm_sys *sys;
	struct rlimit old, cap;
	void *warm;
	long size;
	int before, r;

	ck_assert_int_eq(kvm_sys_create(&sys), 0);
	ck_assert_int_eq(kvm_vm_create(sys, 0, &vm), 0);
	before = count_fds();
	warm = malloc(256); /* the object's calloc comes from the heap */
	free(warm);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
	size = vm_size_bytes();
	ck_assert_int_gt(size, 0);
	cap = old;
	cap.rlim_cur = (rlim_t)size;
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &cap), 0);
	r = kvm_vcpu_create(vm, 3, &v);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
	ck_assert_int_lt(r, 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(count_fds(), before);
	r = kvm_vcpu_create(vm, 3, &v);
	if (r == 0) {
		kvm_vcpu_destroy(v);
		tvm_skip("vcpu_create_mmap_failure_closes_fd", "the capped "
							       "attempt failed "
							       "before "
							       "KVM_CREATE_"
							       "VCPU");
	} else {
		ck_assert_int_eq(r, -EEXIST);
	}
	kvm_vm_destroy(vm);
	kvm_sys_destroy(sys);
}
END_TEST

static Suite *system_suite(void)
{
	Suite *s = suite_create("kvm-system");
	TCase *tc = tcase_create("system");

	tcase_add_test(tc, system_queries);
	tcase_add_test(tc, system_cpuid);
	tcase_add_test(tc, system_msr_lists);
	tcase_add_test(tc, vm_and_vcpus);
	tcase_add_test(tc, kvm_vfio_device);
	tcase_add_test(tc, create_errors_leak_no_fd);
	tcase_add_test(tc, vcpu_create_mmap_failure_closes_fd);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	tvm_skips_init();
	r = cvmm_check_run(system_suite(), true);
	if (tvm_skips())
		printf("%d capability test(s) skipped by name (see SKIP "
		       "lines)\n",
		       tvm_skips());
	return r;
}
