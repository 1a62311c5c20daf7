/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libkvm-ioctls: the /dev/kvm system handle. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

CVMM_EXPORT int kvm_sys_create_path(const char *path, struct kvm_sys **out)
{
	struct kvm_sys *sys;
	int fd, r;

	if (!path || !out)
		return -EINVAL;
	*out = NULL;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = kvm_xioctl(fd, KVM_GET_API_VERSION, NULL);
	if (r < 0)
		goto fail;
	if (r != KVM_API_VERSION) {
		r = -EPROTONOSUPPORT;
		goto fail;
	}
	r = kvm_xioctl(fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (r < 0)
		goto fail;
	if ((size_t)r < sizeof(struct kvm_run)) {
		r = -EPROTO;
		goto fail;
	}
	sys = calloc(1, sizeof(*sys));
	if (!sys) {
		r = -ENOMEM;
		goto fail;
	}
	sys->fd = fd;
	sys->mmap_size = r;
	*out = sys;
	return 0;
fail:
	close(fd);
	return r;
}

CVMM_EXPORT int kvm_sys_create(struct kvm_sys **out)
{
	return kvm_sys_create_path("/dev/kvm", out);
}

CVMM_EXPORT void kvm_sys_destroy(struct kvm_sys *sys)
{
	if (!sys)
		return;
	close(sys->fd);
	free(sys);
}

CVMM_EXPORT int kvm_sys_fd(const struct kvm_sys *sys)
{
	return sys ? sys->fd : -EINVAL;
}

CVMM_EXPORT int kvm_sys_api_version(const struct kvm_sys *sys)
{
	if (!sys)
		return -EINVAL;
	return kvm_xioctl(sys->fd, KVM_GET_API_VERSION, NULL);
}

CVMM_EXPORT int kvm_sys_check_extension(const struct kvm_sys *sys, long cap)
{
	if (!sys)
		return -EINVAL;
	return kvm_xioctl_val(sys->fd, KVM_CHECK_EXTENSION, (unsigned long)cap);
}

CVMM_EXPORT int kvm_sys_vcpu_mmap_size(const struct kvm_sys *sys)
{
	if (!sys)
		return -EINVAL;
	return kvm_xioctl(sys->fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
}

CVMM_EXPORT int kvm_sys_nr_vcpus(const struct kvm_sys *sys)
{
	int r = kvm_sys_check_extension(sys, KVM_CAP_NR_VCPUS);

	return r == 0 ? 4 : r;
}

CVMM_EXPORT int kvm_sys_max_vcpus(const struct kvm_sys *sys)
{
	int r = kvm_sys_check_extension(sys, KVM_CAP_MAX_VCPUS);

	return r == 0 ? kvm_sys_nr_vcpus(sys) : r;
}

CVMM_EXPORT int kvm_sys_nr_memslots(const struct kvm_sys *sys)
{
	int r = kvm_sys_check_extension(sys, KVM_CAP_NR_MEMSLOTS);

	return r == 0 ? 32 : r;
}

CVMM_EXPORT int kvm_cpuid2_new(uint32_t n, struct kvm_cpuid2 **out)
{
	struct kvm_cpuid2 *c;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (n > KVM_IOCTLS_MAX_CPUID_ENTRIES)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = n;
	*out = c;
	return 0;
}

CVMM_EXPORT int kvm_msrs_new(uint32_t n, struct kvm_msrs **out)
{
	struct kvm_msrs *m;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (n > KVM_IOCTLS_MAX_MSRS)
		return -EINVAL;
	m = calloc(1, sizeof(*m) + (size_t)n * sizeof(m->entries[0]));
	if (!m)
		return -ENOMEM;
	m->nmsrs = n;
	*out = m;
	return 0;
}

CVMM_EXPORT struct kvm_cpuid_entry2 *
kvm_cpuid2_find(struct kvm_cpuid2 *cpuid, uint32_t function, uint32_t index)
{
	uint32_t i, n;

	if (!cpuid)
		return NULL;
	n = cpuid->nent;
	if (n > KVM_IOCTLS_MAX_CPUID_ENTRIES)
		n = KVM_IOCTLS_MAX_CPUID_ENTRIES;
	for (i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
		    e->index != index)
			continue;
		return e;
	}
	return NULL;
}

/*
 * Shared by the CPUID getters (system and vCPU): ask with a guess, grow on
 * E2BIG until the bound.  KVM writes the real count back into nent.
 */
int kvm_ioctls_get_cpuid(int fd, unsigned long req, struct kvm_cpuid2 **out)
{
	uint32_t n = 64;

	if (!out)
		return -EINVAL;
	*out = NULL;
	for (;;) {
		struct kvm_cpuid2 *c;
		int r = kvm_cpuid2_new(n, &c);

		if (r < 0)
			return r;
		r = kvm_xioctl(fd, req, c);
		if (r >= 0) {
			if (c->nent > n) {
				free(c);
				return -EPROTO;
			}
			*out = c;
			return 0;
		}
		free(c);
		/* Only E2BIG means "buffer too small"; anything else (ENOMEM
		 * included) is the kernel's answer and is not retried. */
		if (r != -E2BIG)
			return r;
		if (n >= KVM_IOCTLS_MAX_CPUID_ENTRIES)
			return -E2BIG;
		n *= 2;
	}
}

CVMM_EXPORT int kvm_sys_get_supported_cpuid(const struct kvm_sys *sys,
					    struct kvm_cpuid2 **out)
{
	if (!sys)
		return -EINVAL;
	return kvm_ioctls_get_cpuid(sys->fd, KVM_GET_SUPPORTED_CPUID, out);
}

CVMM_EXPORT int kvm_sys_get_emulated_cpuid(const struct kvm_sys *sys,
					   struct kvm_cpuid2 **out)
{
	if (!sys)
		return -EINVAL;
	return kvm_ioctls_get_cpuid(sys->fd, KVM_GET_EMULATED_CPUID, out);
}

/* KVM answers E2BIG and writes the needed count into nmsrs. */
static int get_msr_list(int fd, unsigned long req, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	struct kvm_msr_list *l;
	uint32_t n;
	int r, tries;

	if (!out)
		return -EINVAL;
	*out = NULL;
	r = kvm_xioctl(fd, req, &probe);
	if (r == 0) {
		l = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
		*out = l;
		return 0;
	}
	if (r != -E2BIG)
		return r;
	n = probe.nmsrs;
	for (tries = 0; tries < 4; tries++) {
		if (n > KVM_IOCTLS_MAX_MSRS)
			return -E2BIG;
		l = calloc(1, sizeof(*l) + (size_t)n * sizeof(l->indices[0]));
		if (!l)
			return -ENOMEM;
		l->nmsrs = n;
		r = kvm_xioctl(fd, req, l);
		if (r == 0) {
			if (l->nmsrs > n) {
				free(l);
				return -EPROTO;
			}
			*out = l;
			return 0;
		}
		n = l->nmsrs;
		free(l);
		if (r != -E2BIG)
			return r;
	}
	return -E2BIG;
}

CVMM_EXPORT int kvm_sys_get_msr_index_list(const struct kvm_sys *sys,
					   struct kvm_msr_list **out)
{
	if (!sys)
		return -EINVAL;
	return get_msr_list(sys->fd, KVM_GET_MSR_INDEX_LIST, out);
}

CVMM_EXPORT int kvm_sys_get_msr_feature_index_list(const struct kvm_sys *sys,
						   struct kvm_msr_list **out)
{
	if (!sys)
		return -EINVAL;
	return get_msr_list(sys->fd, KVM_GET_MSR_FEATURE_INDEX_LIST, out);
}

CVMM_EXPORT int kvm_sys_get_feature_msrs(const struct kvm_sys *sys,
					 struct kvm_msrs *msrs)
{
	if (!sys || !msrs || msrs->nmsrs > KVM_IOCTLS_MAX_MSRS)
		return -EINVAL;
	return kvm_xioctl(sys->fd, KVM_GET_MSRS, msrs);
}
