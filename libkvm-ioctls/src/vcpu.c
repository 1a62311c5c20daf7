/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libkvm-ioctls: vCPU objects and vCPU state ioctls. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define PAGE_4K 4096ul
/* Entries in the coalesced MMIO ring page (KVM_COALESCED_MMIO_MAX). */
#define COALESCED_MAX                                         \
	((PAGE_4K - sizeof(struct kvm_coalesced_mmio_ring)) / \
	 sizeof(struct kvm_coalesced_mmio))

CVMM_EXPORT int kvm_vcpu_create(struct kvm_vm_obj *vm, uint32_t id,
				struct kvm_vcpu_obj **out)
{
	struct kvm_vcpu_obj *v;
	void *p;
	int r;

	if (!vm || !out)
		return -EINVAL;
	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->fd = kvm_xioctl_val(vm->fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0) {
		r = v->fd;
		free(v);
		return r;
	}
	v->id = id;
	v->vm = vm;
	v->mmap_size = vm->vcpu_mmap_size;
	p = mmap(NULL, v->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	v->run = p;
	if (vm->coalesced_page > 0 &&
	    ((size_t)vm->coalesced_page + 1) * PAGE_4K <= v->mmap_size)
		v->coalesced = (void *)((char *)p +
					(size_t)vm->coalesced_page * PAGE_4K);
	if (vm->dirty_ring_bytes) {
		p = mmap(NULL, vm->dirty_ring_bytes, PROT_READ | PROT_WRITE,
			 MAP_SHARED, v->fd,
			 (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * (off_t)PAGE_4K);
		if (p == MAP_FAILED) {
			r = -errno;
			goto fail;
		}
		v->dirty_ring = p;
		v->dirty_ring_bytes = vm->dirty_ring_bytes;
		v->dirty_entries =
			vm->dirty_ring_bytes / sizeof(struct kvm_dirty_gfn);
	}
	r = kvm_xioctl_val(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	v->xsave_size = sizeof(struct kvm_xsave);
	v->has_xsave2 = r > 0;
	if (r > 0 && (size_t)r > v->xsave_size)
		v->xsave_size = (size_t)r;
	r = kvm_xioctl_val(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
	v->sync_regs_mask = r > 0 ? (uint64_t)r : 0;
	*out = v;
	return 0;
fail:
	kvm_vcpu_destroy(v);
	return r;
}

CVMM_EXPORT void kvm_vcpu_destroy(struct kvm_vcpu_obj *v)
{
	if (!v)
		return;
	if (v->dirty_ring)
		munmap(v->dirty_ring, v->dirty_ring_bytes);
	if (v->run)
		munmap(v->run, v->mmap_size);
	close(v->fd);
	free(v);
}

CVMM_EXPORT int kvm_vcpu_fd(const struct kvm_vcpu_obj *v)
{
	return v ? v->fd : -EINVAL;
}

CVMM_EXPORT uint32_t kvm_vcpu_id(const struct kvm_vcpu_obj *v)
{
	return v ? v->id : 0;
}

CVMM_EXPORT struct kvm_run *kvm_vcpu_run_struct(struct kvm_vcpu_obj *v)
{
	return v ? v->run : NULL;
}

CVMM_EXPORT size_t kvm_vcpu_mmap_size(const struct kvm_vcpu_obj *v)
{
	return v ? v->mmap_size : 0;
}

/* Get/set pairs that pass a uapi struct straight through. */
#define VCPU_IO(name, req, type)                                \
	CVMM_EXPORT int name(struct kvm_vcpu_obj *v, type *arg) \
	{                                                       \
		if (!v || !arg)                                 \
			return -EINVAL;                         \
		return kvm_xioctl(v->fd, req, (void *)arg);     \
	}

VCPU_IO(kvm_vcpu_get_regs, KVM_GET_REGS, struct kvm_regs)
VCPU_IO(kvm_vcpu_set_regs, KVM_SET_REGS, const struct kvm_regs)
VCPU_IO(kvm_vcpu_get_sregs, KVM_GET_SREGS, struct kvm_sregs)
VCPU_IO(kvm_vcpu_set_sregs, KVM_SET_SREGS, const struct kvm_sregs)
VCPU_IO(kvm_vcpu_get_fpu, KVM_GET_FPU, struct kvm_fpu)
VCPU_IO(kvm_vcpu_set_fpu, KVM_SET_FPU, const struct kvm_fpu)
VCPU_IO(kvm_vcpu_get_lapic, KVM_GET_LAPIC, struct kvm_lapic_state)
VCPU_IO(kvm_vcpu_set_lapic, KVM_SET_LAPIC, const struct kvm_lapic_state)
VCPU_IO(kvm_vcpu_get_mp_state, KVM_GET_MP_STATE, struct kvm_mp_state)
VCPU_IO(kvm_vcpu_set_mp_state, KVM_SET_MP_STATE, const struct kvm_mp_state)
VCPU_IO(kvm_vcpu_get_xcrs, KVM_GET_XCRS, struct kvm_xcrs)
VCPU_IO(kvm_vcpu_set_xcrs, KVM_SET_XCRS, const struct kvm_xcrs)
VCPU_IO(kvm_vcpu_get_debugregs, KVM_GET_DEBUGREGS, struct kvm_debugregs)
VCPU_IO(kvm_vcpu_set_debugregs, KVM_SET_DEBUGREGS, const struct kvm_debugregs)
VCPU_IO(kvm_vcpu_get_vcpu_events, KVM_GET_VCPU_EVENTS, struct kvm_vcpu_events)
VCPU_IO(kvm_vcpu_set_vcpu_events, KVM_SET_VCPU_EVENTS,
	const struct kvm_vcpu_events)
VCPU_IO(kvm_vcpu_get_xsave, KVM_GET_XSAVE, struct kvm_xsave)
VCPU_IO(kvm_vcpu_set_guest_debug, KVM_SET_GUEST_DEBUG,
	const struct kvm_guest_debug)
VCPU_IO(kvm_vcpu_translate, KVM_TRANSLATE, struct kvm_translation)
VCPU_IO(kvm_vcpu_enable_cap, KVM_ENABLE_CAP, const struct kvm_enable_cap)

CVMM_EXPORT size_t kvm_vcpu_xsave_size(const struct kvm_vcpu_obj *v)
{
	return v ? v->xsave_size : 0;
}

CVMM_EXPORT int kvm_vcpu_get_xsave2(struct kvm_vcpu_obj *v, void *buf,
				    size_t len)
{
	if (!v || !buf)
		return -EINVAL;
	if (len < v->xsave_size)
		return -ENOSPC;
	/* The size was fixed when the vCPU was created (the guest xfeature
	 * permission is locked by the first vCPU), so the cached answer
	 * stays right. */
	if (v->has_xsave2)
		return kvm_xioctl(v->fd, KVM_GET_XSAVE2, buf);
	return kvm_xioctl(v->fd, KVM_GET_XSAVE, buf);
}

CVMM_EXPORT int kvm_vcpu_set_xsave(struct kvm_vcpu_obj *v, const void *buf,
				   size_t len)
{
	if (!v || !buf)
		return -EINVAL;
	if (len < v->xsave_size)
		return -ENOSPC;
	return kvm_xioctl(v->fd, KVM_SET_XSAVE, (void *)buf);
}

CVMM_EXPORT int kvm_vcpu_set_cpuid2(struct kvm_vcpu_obj *v,
				    const struct kvm_cpuid2 *cpuid)
{
	if (!v || !cpuid || cpuid->nent > KVM_IOCTLS_MAX_CPUID_ENTRIES)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_SET_CPUID2, (void *)cpuid);
}

CVMM_EXPORT int kvm_vcpu_get_cpuid2(struct kvm_vcpu_obj *v,
				    struct kvm_cpuid2 **out)
{
	if (!v)
		return -EINVAL;
	return kvm_ioctls_get_cpuid(v->fd, KVM_GET_CPUID2, out);
}

CVMM_EXPORT int kvm_vcpu_get_msrs(struct kvm_vcpu_obj *v, struct kvm_msrs *m)
{
	if (!v || !m || m->nmsrs > KVM_IOCTLS_MAX_MSRS)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_GET_MSRS, m);
}

CVMM_EXPORT int kvm_vcpu_set_msrs(struct kvm_vcpu_obj *v,
				  const struct kvm_msrs *m)
{
	if (!v || !m || m->nmsrs > KVM_IOCTLS_MAX_MSRS)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_SET_MSRS, (void *)m);
}

/* KVM_GET_MSRS / KVM_SET_MSRS on a single entry. */
static int one_msr(struct kvm_vcpu_obj *v, unsigned long req, uint32_t index,
		   uint64_t *value)
{
	struct kvm_msrs *m;
	int r;

	r = kvm_msrs_new(1, &m);
	if (r < 0)
		return r;
	m->entries[0].index = index;
	m->entries[0].data = *value;
	r = kvm_xioctl(v->fd, req, m);
	if (r == 1)
		*value = m->entries[0].data;
	free(m);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -EIO;
}

CVMM_EXPORT int kvm_vcpu_get_msr(struct kvm_vcpu_obj *v, uint32_t index,
				 uint64_t *value)
{
	uint64_t tmp = 0;
	int r;

	if (!v || !value)
		return -EINVAL;
	r = one_msr(v, KVM_GET_MSRS, index, &tmp);
	if (r == 0)
		*value = tmp;
	return r;
}

CVMM_EXPORT int kvm_vcpu_set_msr(struct kvm_vcpu_obj *v, uint32_t index,
				 uint64_t value)
{
	if (!v)
		return -EINVAL;
	return one_msr(v, KVM_SET_MSRS, index, &value);
}

CVMM_EXPORT int kvm_vcpu_kvmclock_ctrl(struct kvm_vcpu_obj *v)
{
	if (!v)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_KVMCLOCK_CTRL, NULL);
}

CVMM_EXPORT int kvm_vcpu_get_tsc_khz(struct kvm_vcpu_obj *v)
{
	if (!v)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_GET_TSC_KHZ, NULL);
}

CVMM_EXPORT int kvm_vcpu_set_tsc_khz(struct kvm_vcpu_obj *v, uint32_t khz)
{
	if (!v || khz == 0)
		return -EINVAL;
	return kvm_xioctl_val(v->fd, KVM_SET_TSC_KHZ, khz);
}

CVMM_EXPORT int kvm_vcpu_get_nested_state(struct kvm_vcpu_obj *v,
					  struct kvm_nested_state **out)
{
	struct kvm_nested_state *st;
	int size, r;

	if (!v || !out)
		return -EINVAL;
	*out = NULL;
	size = kvm_xioctl_val(v->vm->fd, KVM_CHECK_EXTENSION,
			      KVM_CAP_NESTED_STATE);
	if (size < 0)
		return size;
	if ((size_t)size < sizeof(*st))
		return -ENOTSUP;
	st = calloc(1, (size_t)size);
	if (!st)
		return -ENOMEM;
	st->size = (uint32_t)size;
	r = kvm_xioctl(v->fd, KVM_GET_NESTED_STATE, st);
	if (r < 0) {
		free(st);
		return r;
	}
	if (st->size > (uint32_t)size) {
		free(st);
		return -EPROTO;
	}
	*out = st;
	return 0;
}

CVMM_EXPORT int kvm_vcpu_set_nested_state(struct kvm_vcpu_obj *v,
					  const struct kvm_nested_state *st)
{
	if (!v || !st || st->size < sizeof(*st))
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_SET_NESTED_STATE, (void *)st);
}

CVMM_EXPORT int kvm_vcpu_nmi(struct kvm_vcpu_obj *v)
{
	if (!v)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_NMI, NULL);
}

CVMM_EXPORT int kvm_vcpu_smi(struct kvm_vcpu_obj *v)
{
	if (!v)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_SMI, NULL);
}

CVMM_EXPORT int kvm_vcpu_interrupt(struct kvm_vcpu_obj *v, uint32_t vector)
{
	struct kvm_interrupt i = {.irq = vector};

	if (!v || vector > 255)
		return -EINVAL;
	return kvm_xioctl(v->fd, KVM_INTERRUPT, &i);
}

CVMM_EXPORT int kvm_vcpu_set_signal_mask(struct kvm_vcpu_obj *v,
					 const sigset_t *mask)
{
	/* The kernel's sigset is 64 bits on x86_64; glibc's sigset_t is
	 * larger and starts with the same bits. */
	struct kvm_signal_mask *m;
	int r;

	if (!v)
		return -EINVAL;
	if (!mask)
		return kvm_xioctl(v->fd, KVM_SET_SIGNAL_MASK, NULL);
	m = calloc(1, sizeof(*m) + 8);
	if (!m)
		return -ENOMEM;
	m->len = 8;
	memcpy(m->sigset, mask, 8);
	r = kvm_xioctl(v->fd, KVM_SET_SIGNAL_MASK, m);
	free(m);
	return r;
}

CVMM_EXPORT int kvm_vcpu_sync_regs_enable(struct kvm_vcpu_obj *v,
					  uint64_t classes)
{
	if (!v || (classes & ~v->sync_regs_mask))
		return -EINVAL;
	v->run->kvm_valid_regs = classes;
	return 0;
}

CVMM_EXPORT struct kvm_sync_regs *kvm_vcpu_sync_regs(struct kvm_vcpu_obj *v)
{
	return v ? &v->run->s.regs : NULL;
}

CVMM_EXPORT int kvm_vcpu_sync_regs_dirty(struct kvm_vcpu_obj *v,
					 uint64_t classes)
{
	if (!v || (classes & ~v->sync_regs_mask))
		return -EINVAL;
	v->run->kvm_dirty_regs |= classes;
	return 0;
}

CVMM_EXPORT void kvm_vcpu_request_interrupt_window(struct kvm_vcpu_obj *v,
						   bool on)
{
	if (v)
		v->run->request_interrupt_window = on ? 1 : 0;
}

CVMM_EXPORT int kvm_vcpu_coalesced_drain(struct kvm_vcpu_obj *v,
					 struct kvm_coalesced_mmio *out,
					 size_t max)
{
	struct kvm_coalesced_mmio_ring *ring;
	uint32_t first, last;
	size_t n = 0;
	int r = 0;

	if (!v || (!out && max))
		return -EINVAL;
	ring = v->coalesced;
	if (!ring)
		return 0;
	pthread_mutex_lock(&v->vm->coalesced_lock);
	first = __atomic_load_n(&ring->first, __ATOMIC_RELAXED);
	last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
	if (first >= COALESCED_MAX || last >= COALESCED_MAX) {
		r = -EPROTO;
		goto out;
	}
	while (first != last && n < max) {
		struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[first];

		out[n] = *e;
		if (out[n].len > sizeof(out[n].data))
			out[n].len = sizeof(out[n].data);
		n++;
		first = (uint32_t)((first + 1) % COALESCED_MAX);
		__atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
	}
	r = (int)n;
out:
	pthread_mutex_unlock(&v->vm->coalesced_lock);
	return r;
}

CVMM_EXPORT int kvm_vcpu_dirty_ring_harvest(struct kvm_vcpu_obj *v,
					    struct kvm_dirty_gfn *out,
					    size_t max)
{
	size_t n = 0;

	if (!v || (!out && max))
		return -EINVAL;
	if (!v->dirty_ring)
		return -ENOTSUP;
	/* At most one full lap of the ring per call. */
	while (n < max && n < v->dirty_entries) {
		struct kvm_dirty_gfn *e =
			&v->dirty_ring[v->dirty_fetch & (v->dirty_entries - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		out[n].flags = flags;
		out[n].slot = e->slot;
		out[n].offset = e->offset;
		n++;
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
		v->dirty_fetch++;
	}
	return (int)n;
}
