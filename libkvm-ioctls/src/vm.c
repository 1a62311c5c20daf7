/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libkvm-ioctls: VM objects and VM-level ioctls. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define PAGE_4K 4096ull

CVMM_EXPORT int kvm_vm_create(const struct kvm_sys *sys, unsigned long type,
			      struct kvm_vm_obj **out)
{
	struct kvm_vm_obj *vm;
	int fd, r;

	if (!sys || !out)
		return -EINVAL;
	*out = NULL;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	fd = kvm_xioctl_val(sys->fd, KVM_CREATE_VM, type);
	if (fd < 0) {
		free(vm);
		return fd;
	}
	vm->fd = fd;
	vm->vcpu_mmap_size = (size_t)sys->mmap_size;
	r = kvm_xioctl_val(fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
	vm->coalesced_page = r > 0 ? r : 0;
	pthread_mutex_init(&vm->coalesced_lock, NULL);
	*out = vm;
	return 0;
}

CVMM_EXPORT void kvm_vm_destroy(struct kvm_vm_obj *vm)
{
	if (!vm)
		return;
	close(vm->fd);
	pthread_mutex_destroy(&vm->coalesced_lock);
	free(vm);
}

CVMM_EXPORT int kvm_vm_fd(const struct kvm_vm_obj *vm)
{
	return vm ? vm->fd : -EINVAL;
}

CVMM_EXPORT int kvm_vm_check_extension(const struct kvm_vm_obj *vm, long cap)
{
	if (!vm)
		return -EINVAL;
	return kvm_xioctl_val(vm->fd, KVM_CHECK_EXTENSION, (unsigned long)cap);
}

CVMM_EXPORT int kvm_vm_enable_cap(struct kvm_vm_obj *vm,
				  const struct kvm_enable_cap *cap)
{
	if (!vm || !cap)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_ENABLE_CAP, (void *)cap);
}

static int enable_cap1(struct kvm_vm_obj *vm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap c = {.cap = cap, .args = {arg0}};

	return kvm_vm_enable_cap(vm, &c);
}

CVMM_EXPORT int kvm_vm_set_user_memory_region(struct kvm_vm_obj *vm,
					      uint32_t slot, uint32_t flags,
					      uint64_t gpa, uint64_t size,
					      void *hva)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	uint64_t end;

	if (!vm)
		return -EINVAL;
	if ((gpa | size | m.userspace_addr) & (PAGE_4K - 1))
		return -EINVAL;
	if (__builtin_add_overflow(gpa, size, &end))
		return -EINVAL;
	if (size && !hva)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &m);
}

CVMM_EXPORT int kvm_vm_delete_memory_region(struct kvm_vm_obj *vm,
					    uint32_t slot)
{
	struct kvm_userspace_memory_region m = {.slot = slot};

	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &m);
}

CVMM_EXPORT int kvm_vm_set_tss_addr(struct kvm_vm_obj *vm, uint64_t gpa)
{
	if (!vm)
		return -EINVAL;
	return kvm_xioctl_val(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)gpa);
}

CVMM_EXPORT int kvm_vm_set_identity_map_addr(struct kvm_vm_obj *vm,
					     uint64_t gpa)
{
	uint64_t a = gpa;

	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &a);
}

CVMM_EXPORT int kvm_vm_set_boot_cpu_id(struct kvm_vm_obj *vm, uint32_t id)
{
	if (!vm)
		return -EINVAL;
	return kvm_xioctl_val(vm->fd, KVM_SET_BOOT_CPU_ID, id);
}

CVMM_EXPORT int kvm_vm_create_irqchip(struct kvm_vm_obj *vm)
{
	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_CREATE_IRQCHIP, NULL);
}

CVMM_EXPORT int kvm_vm_enable_split_irqchip(struct kvm_vm_obj *vm,
					    uint32_t nr_ioapic_pins)
{
	return enable_cap1(vm, KVM_CAP_SPLIT_IRQCHIP, nr_ioapic_pins);
}

CVMM_EXPORT int kvm_vm_get_irqchip(struct kvm_vm_obj *vm,
				   struct kvm_irqchip *chip)
{
	if (!vm || !chip)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_GET_IRQCHIP, chip);
}

CVMM_EXPORT int kvm_vm_set_irqchip(struct kvm_vm_obj *vm,
				   const struct kvm_irqchip *chip)
{
	if (!vm || !chip)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SET_IRQCHIP, (void *)chip);
}

CVMM_EXPORT int kvm_vm_create_pit2(struct kvm_vm_obj *vm, uint32_t flags)
{
	struct kvm_pit_config c = {.flags = flags};

	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_CREATE_PIT2, &c);
}

CVMM_EXPORT int kvm_vm_get_pit2(struct kvm_vm_obj *vm,
				struct kvm_pit_state2 *state)
{
	if (!vm || !state)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_GET_PIT2, state);
}

CVMM_EXPORT int kvm_vm_set_pit2(struct kvm_vm_obj *vm,
				const struct kvm_pit_state2 *state)
{
	if (!vm || !state)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SET_PIT2, (void *)state);
}

CVMM_EXPORT int kvm_vm_set_pit_reinject(struct kvm_vm_obj *vm, bool reinject)
{
	struct kvm_reinject_control c = {.pit_reinject = reinject ? 1 : 0};

	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_REINJECT_CONTROL, &c);
}

CVMM_EXPORT int kvm_vm_get_clock(struct kvm_vm_obj *vm,
				 struct kvm_clock_data *clock)
{
	if (!vm || !clock)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_GET_CLOCK, clock);
}

CVMM_EXPORT int kvm_vm_set_clock(struct kvm_vm_obj *vm,
				 const struct kvm_clock_data *clock)
{
	if (!vm || !clock)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SET_CLOCK, (void *)clock);
}

CVMM_EXPORT int kvm_vm_irq_line(struct kvm_vm_obj *vm, uint32_t irq,
				uint32_t level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level};

	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_IRQ_LINE, &l);
}

CVMM_EXPORT int kvm_vm_signal_msi(struct kvm_vm_obj *vm, uint64_t address,
				  uint32_t data, uint32_t flags, uint32_t devid)
{
	struct kvm_msi m = {
		.address_lo = (uint32_t)address,
		.address_hi = (uint32_t)(address >> 32),
		.data = data,
		.flags = flags,
		.devid = devid,
	};

	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SIGNAL_MSI, &m);
}

CVMM_EXPORT int kvm_vm_irqfd_assign(struct kvm_vm_obj *vm, int eventfd,
				    uint32_t gsi, int resamplefd)
{
	struct kvm_irqfd f = {.fd = (uint32_t)eventfd, .gsi = gsi};

	if (!vm || eventfd < 0)
		return -EINVAL;
	if (resamplefd >= 0) {
		f.flags = KVM_IRQFD_FLAG_RESAMPLE;
		f.resamplefd = (uint32_t)resamplefd;
	}
	return kvm_xioctl(vm->fd, KVM_IRQFD, &f);
}

CVMM_EXPORT int kvm_vm_irqfd_deassign(struct kvm_vm_obj *vm, int eventfd,
				      uint32_t gsi)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)eventfd,
		.gsi = gsi,
		.flags = KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (!vm || eventfd < 0)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_IRQFD, &f);
}

static int ioeventfd(struct kvm_vm_obj *vm, int eventfd, uint64_t addr,
		     uint32_t len, uint32_t flags, uint64_t datamatch)
{
	struct kvm_ioeventfd e = {
		.datamatch = datamatch,
		.addr = addr,
		.len = len,
		.fd = eventfd,
		.flags = flags,
	};

	if (!vm || eventfd < 0)
		return -EINVAL;
	if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	if (flags &
	    ~(uint32_t)(KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH |
			KVM_IOEVENTFD_FLAG_DEASSIGN))
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_IOEVENTFD, &e);
}

CVMM_EXPORT int kvm_vm_ioeventfd_assign(struct kvm_vm_obj *vm, int eventfd,
					uint64_t addr, uint32_t len,
					uint32_t flags, uint64_t datamatch)
{
	if (flags & KVM_IOEVENTFD_FLAG_DEASSIGN)
		return -EINVAL;
	return ioeventfd(vm, eventfd, addr, len, flags, datamatch);
}

CVMM_EXPORT int kvm_vm_ioeventfd_deassign(struct kvm_vm_obj *vm, int eventfd,
					  uint64_t addr, uint32_t len,
					  uint32_t flags, uint64_t datamatch)
{
	return ioeventfd(vm, eventfd, addr, len,
			 flags | KVM_IOEVENTFD_FLAG_DEASSIGN, datamatch);
}

CVMM_EXPORT size_t kvm_dirty_bitmap_size(uint64_t size)
{
	uint64_t pages = size / PAGE_4K + (size % PAGE_4K ? 1 : 0);

	return (size_t)((pages + 63) / 64 * 8);
}

CVMM_EXPORT int kvm_vm_get_dirty_log(struct kvm_vm_obj *vm, uint32_t slot,
				     void *bitmap)
{
	struct kvm_dirty_log d = {.slot = slot, .dirty_bitmap = bitmap};

	if (!vm || !bitmap)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_GET_DIRTY_LOG, &d);
}

CVMM_EXPORT int kvm_vm_enable_manual_dirty_protect(struct kvm_vm_obj *vm)
{
	return enable_cap1(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			   KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
}

CVMM_EXPORT int kvm_vm_clear_dirty_log(struct kvm_vm_obj *vm, uint32_t slot,
				       uint64_t first_page, uint32_t num_pages,
				       void *bitmap)
{
	struct kvm_clear_dirty_log c = {
		.slot = slot,
		.num_pages = num_pages,
		.first_page = first_page,
		.dirty_bitmap = bitmap,
	};

	if (!vm || !bitmap)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_CLEAR_DIRTY_LOG, &c);
}

CVMM_EXPORT int kvm_vm_enable_dirty_ring(struct kvm_vm_obj *vm, uint32_t bytes)
{
	int acq, plain, max, r;
	uint32_t cap;

	if (!vm)
		return -EINVAL;
	if (bytes < PAGE_4K || (bytes & (bytes - 1)))
		return -EINVAL;
	acq = kvm_vm_check_extension(vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	plain = kvm_vm_check_extension(vm, KVM_CAP_DIRTY_LOG_RING);
	if (acq > 0) {
		cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
		max = acq;
	} else if (plain > 0) {
		cap = KVM_CAP_DIRTY_LOG_RING;
		max = plain;
	} else {
		return -ENOTSUP;
	}
	if (bytes > (uint32_t)max)
		return -EINVAL;
	r = enable_cap1(vm, cap, bytes);
	if (r < 0)
		return r;
	vm->dirty_ring_bytes = bytes;
	return 0;
}

CVMM_EXPORT int kvm_vm_reset_dirty_rings(struct kvm_vm_obj *vm)
{
	if (!vm)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_RESET_DIRTY_RINGS, NULL);
}

static int coalesced(struct kvm_vm_obj *vm, unsigned long req, uint64_t addr,
		     uint32_t size, bool pio)
{
	struct kvm_coalesced_mmio_zone z = {
		.addr = addr,
		.size = size,
		.pio = pio ? 1 : 0,
	};

	if (!vm || size == 0)
		return -EINVAL;
	return kvm_xioctl(vm->fd, req, &z);
}

CVMM_EXPORT int kvm_vm_register_coalesced(struct kvm_vm_obj *vm, uint64_t addr,
					  uint32_t size, bool pio)
{
	return coalesced(vm, KVM_REGISTER_COALESCED_MMIO, addr, size, pio);
}

CVMM_EXPORT int kvm_vm_unregister_coalesced(struct kvm_vm_obj *vm,
					    uint64_t addr, uint32_t size,
					    bool pio)
{
	return coalesced(vm, KVM_UNREGISTER_COALESCED_MMIO, addr, size, pio);
}

CVMM_EXPORT int kvm_vm_enable_user_msr_exits(struct kvm_vm_obj *vm,
					     uint32_t reasons)
{
	return enable_cap1(vm, KVM_CAP_X86_USER_SPACE_MSR, reasons);
}

CVMM_EXPORT int kvm_vm_set_msr_filter(struct kvm_vm_obj *vm,
				      const struct kvm_msr_filter *filter)
{
	if (!vm || !filter)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_X86_SET_MSR_FILTER, (void *)filter);
}

/* ------------------------------------------------------------------ */
/* GSI routing builder                                                 */

struct kvm_gsi_routing {
	uint32_t max;
	struct kvm_irq_routing *table; /* nr = used entries */
};

CVMM_EXPORT int kvm_gsi_routing_create(uint32_t max_entries,
				       struct kvm_gsi_routing **out)
{
	struct kvm_gsi_routing *r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (max_entries == 0 || max_entries > KVM_IOCTLS_MAX_GSI_ROUTES)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->table = calloc(1, sizeof(*r->table) +
				     (size_t)max_entries *
					     sizeof(r->table->entries[0]));
	if (!r->table) {
		free(r);
		return -ENOMEM;
	}
	r->max = max_entries;
	*out = r;
	return 0;
}

CVMM_EXPORT void kvm_gsi_routing_destroy(struct kvm_gsi_routing *r)
{
	if (!r)
		return;
	free(r->table);
	free(r);
}

CVMM_EXPORT uint32_t kvm_gsi_routing_count(const struct kvm_gsi_routing *r)
{
	return r ? r->table->nr : 0;
}

CVMM_EXPORT void kvm_gsi_routing_clear(struct kvm_gsi_routing *r)
{
	if (!r)
		return;
	memset(r->table->entries, 0,
	       (size_t)r->table->nr * sizeof(r->table->entries[0]));
	r->table->nr = 0;
}

static struct kvm_irq_routing_entry *route_slot(struct kvm_gsi_routing *r,
						uint32_t gsi)
{
	struct kvm_irq_routing_entry *e;

	if (r->table->nr >= r->max)
		return NULL;
	e = &r->table->entries[r->table->nr++];
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	return e;
}

CVMM_EXPORT int kvm_gsi_routing_add_irqchip(struct kvm_gsi_routing *r,
					    uint32_t gsi, uint32_t irqchip,
					    uint32_t pin)
{
	struct kvm_irq_routing_entry *e;

	if (!r || gsi >= KVM_IOCTLS_MAX_GSI_ROUTES ||
	    irqchip > KVM_IRQCHIP_IOAPIC)
		return -EINVAL;
	e = route_slot(r, gsi);
	if (!e)
		return -ENOSPC;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = irqchip;
	e->u.irqchip.pin = pin;
	return 0;
}

CVMM_EXPORT int kvm_gsi_routing_add_msi(struct kvm_gsi_routing *r, uint32_t gsi,
					uint64_t address, uint32_t data,
					uint32_t flags, uint32_t devid)
{
	struct kvm_irq_routing_entry *e;

	if (!r || gsi >= KVM_IOCTLS_MAX_GSI_ROUTES ||
	    (flags & ~(uint32_t)KVM_MSI_VALID_DEVID))
		return -EINVAL;
	e = route_slot(r, gsi);
	if (!e)
		return -ENOSPC;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->flags = flags;
	e->u.msi.address_lo = (uint32_t)address;
	e->u.msi.address_hi = (uint32_t)(address >> 32);
	e->u.msi.data = data;
	if (flags & KVM_MSI_VALID_DEVID)
		e->u.msi.devid = devid;
	return 0;
}

CVMM_EXPORT int kvm_vm_set_gsi_routing(struct kvm_vm_obj *vm,
				       const struct kvm_gsi_routing *r)
{
	if (!vm || !r)
		return -EINVAL;
	return kvm_xioctl(vm->fd, KVM_SET_GSI_ROUTING, r->table);
}
