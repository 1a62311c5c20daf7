/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libkvm-ioctls internals: object layouts shared by the source files. */
#ifndef CVMM_KVM_IOCTLS_INTERNAL_H
#define CVMM_KVM_IOCTLS_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>

#include "cvmm/kvm-ioctls.h"

struct kvm_sys {
	int fd;
	int mmap_size;
};

struct kvm_vm_obj {
	int fd;
	size_t vcpu_mmap_size;
	int coalesced_page; /* KVM_CAP_COALESCED_MMIO: page offset, 0 = none */
	uint32_t dirty_ring_bytes; /* 0 = no dirty ring */
	pthread_mutex_t coalesced_lock;
};

struct kvm_vcpu_obj {
	int fd;
	uint32_t id;
	struct kvm_vm_obj *vm;
	struct kvm_run *run;
	size_t mmap_size;
	size_t xsave_size;	 /* KVM_CAP_XSAVE2 size, >= sizeof(kvm_xsave) */
	bool has_xsave2;	 /* KVM_GET_XSAVE2 available */
	uint64_t sync_regs_mask; /* KVM_CAP_SYNC_REGS */
	struct kvm_coalesced_mmio_ring *coalesced;
	struct kvm_dirty_gfn *dirty_ring;
	size_t dirty_ring_bytes; /* size of the dirty_ring mapping */
	uint32_t dirty_entries;	 /* a power of two */
	uint32_t dirty_fetch;
	/* kick */
	atomic_bool kick_bound;
	atomic_bool kick_pending;
	pthread_t thread;
	int signo;
};

struct kvm_dev_obj {
	int fd;
	uint32_t type;
};

/* ioctl() returning the result or -errno. */
static inline int kvm_xioctl(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

static inline int kvm_xioctl_val(int fd, unsigned long req, unsigned long v)
{
	int r = ioctl(fd, req, v);

	return r < 0 ? -errno : r;
}

/* CPUID getter with grow-and-retry on E2BIG (system.c). */
int kvm_ioctls_get_cpuid(int fd, unsigned long req, struct kvm_cpuid2 **out);

#endif
