/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libkvm-ioctls: the x86_64 KVM API as C objects.
 *
 * Four opaque objects wrap the four kinds of KVM file descriptor:
 *
 *   struct kvm_sys       the system handle (/dev/kvm)       kvm_sys_*
 *   struct kvm_vm_obj    a VM fd                             kvm_vm_*
 *   struct kvm_vcpu_obj  a vCPU fd, its mmapped kvm_run,     kvm_vcpu_*
 *                        the coalesced MMIO ring and the
 *                        dirty ring when enabled
 *   struct kvm_dev_obj   a device fd (KVM_CREATE_DEVICE)     kvm_dev_*
 *
 * plus two helpers: struct kvm_gsi_routing (a bounded builder for the
 * KVM_SET_GSI_ROUTING table, kvm_gsi_routing_*) and struct kvm_exit_info (a
 * decoded KVM_RUN exit, kvm_exit_*).
 *
 * Naming: every name here starts with kvm_ and none of them is a name that
 * <linux/kvm.h> or <asm/kvm.h> defines; the uapi structures (struct kvm_regs,
 * struct kvm_sregs, struct kvm_run, ...) are used as they are.  Exit reasons
 * are the uapi KVM_EXIT_* values.
 *
 * Errors: every function returning int returns 0 (or a non-negative count or
 * value where documented) on success and a negative errno on failure; for a
 * wrapped ioctl that is the ioctl's errno.  -EINVAL is returned for a NULL
 * object or an argument the library can reject before the kernel sees it.
 * -EPROTO means the kernel handed back data the library refuses to trust
 * (e.g. a kvm_run I/O buffer outside the vCPU mapping).  Nothing prints,
 * exits or aborts.
 *
 * Ownership: x_create() returns a new object that the caller releases with
 * x_destroy() (which accepts NULL and closes the fd).  The raw fds returned
 * by *_fd() stay owned by the object.  A VM object must outlive the vCPU and
 * device objects created from it.  Structures returned through a
 * "struct T **out" pointer whose type is a uapi flexible-array structure
 * (struct kvm_cpuid2, struct kvm_msr_list, struct kvm_nested_state) are
 * allocated with malloc() and released by the caller with free().
 *
 * Threads: one thread runs a vCPU (kvm_vcpu_run); any thread may kick it
 * (kvm_vcpu_kick).  Other calls on one object need external serialisation
 * only where the kernel demands it (e.g. vCPU state ioctls while it runs).
 */
#ifndef CVMM_KVM_IOCTLS_H
#define CVMM_KVM_IOCTLS_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmm/kvm-ioctls-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct kvm_sys;
struct kvm_vm_obj;
struct kvm_vcpu_obj;
struct kvm_dev_obj;
struct kvm_gsi_routing;

/* Upper bounds the library applies to kernel-sized arrays it allocates. */
#define KVM_IOCTLS_MAX_CPUID_ENTRIES 4096u
#define KVM_IOCTLS_MAX_MSRS	     16384u
#define KVM_IOCTLS_MAX_GSI_ROUTES    4096u

/* ===================================================================== */
/* System: /dev/kvm                                                      */
/* ===================================================================== */

/*
 * Open /dev/kvm (O_RDWR | O_CLOEXEC), check KVM_GET_API_VERSION is 12 and
 * read KVM_GET_VCPU_MMAP_SIZE.  Errors: open()'s errno (-ENOENT, -EACCES),
 * -EPROTONOSUPPORT for another API version, -ENOMEM.
 */
CVMM_EXPORT int kvm_sys_create(struct kvm_sys **out);
/* Same with another device path (tests, containers).  -ENOTTY if it is not
 * a KVM device. */
CVMM_EXPORT int kvm_sys_create_path(const char *path, struct kvm_sys **out);
/* Close the fd and free the object.  NULL is accepted. */
CVMM_EXPORT void kvm_sys_destroy(struct kvm_sys *sys);
/* The raw /dev/kvm fd, owned by the object (do not close it); -EINVAL for
 * NULL.  The same holds for kvm_vm_fd, kvm_vcpu_fd and kvm_dev_fd. */
CVMM_EXPORT int kvm_sys_fd(const struct kvm_sys *sys);
/* KVM_GET_API_VERSION (12), or the ioctl's -errno. */
CVMM_EXPORT int kvm_sys_api_version(const struct kvm_sys *sys);
/* KVM_CHECK_EXTENSION on /dev/kvm: the kernel's integer (0 = absent). */
CVMM_EXPORT int kvm_sys_check_extension(const struct kvm_sys *sys, long cap);
/* KVM_GET_VCPU_MMAP_SIZE, in bytes. */
CVMM_EXPORT int kvm_sys_vcpu_mmap_size(const struct kvm_sys *sys);
/* Recommended vCPU count (KVM_CAP_NR_VCPUS, 4 when the kernel says 0).
 * This and the next two return the ioctl's -errno on failure. */
CVMM_EXPORT int kvm_sys_nr_vcpus(const struct kvm_sys *sys);
/* Maximum vCPU count (KVM_CAP_MAX_VCPUS, else kvm_sys_nr_vcpus). */
CVMM_EXPORT int kvm_sys_max_vcpus(const struct kvm_sys *sys);
/* Number of user memory slots (KVM_CAP_NR_MEMSLOTS, 32 when 0). */
CVMM_EXPORT int kvm_sys_nr_memslots(const struct kvm_sys *sys);

/*
 * KVM_GET_SUPPORTED_CPUID / KVM_GET_EMULATED_CPUID.  The library sizes the
 * buffer, growing it on E2BIG up to KVM_IOCTLS_MAX_CPUID_ENTRIES; on success
 * *out is a malloc()ed struct kvm_cpuid2 (nent set) the caller free()s.
 * Errors: the ioctl's errno, -E2BIG past the bound, -ENOMEM.
 */
CVMM_EXPORT int kvm_sys_get_supported_cpuid(const struct kvm_sys *sys,
					    struct kvm_cpuid2 **out);
CVMM_EXPORT int kvm_sys_get_emulated_cpuid(const struct kvm_sys *sys,
					   struct kvm_cpuid2 **out);
/*
 * KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST, sized by the
 * library; *out is malloc()ed (nmsrs set), caller free()s.
 */
CVMM_EXPORT int kvm_sys_get_msr_index_list(const struct kvm_sys *sys,
					   struct kvm_msr_list **out);
CVMM_EXPORT int kvm_sys_get_msr_feature_index_list(const struct kvm_sys *sys,
						   struct kvm_msr_list **out);
/*
 * KVM_GET_MSRS on /dev/kvm (feature MSRs, KVM_CAP_GET_MSR_FEATURES).
 * Returns how many entries (from the first) were read.  msrs stays the
 * caller's and must hold msrs->nmsrs entries (kvm_msrs_new() sizes it);
 * -EINVAL past KVM_IOCTLS_MAX_MSRS.
 */
CVMM_EXPORT int kvm_sys_get_feature_msrs(const struct kvm_sys *sys,
					 struct kvm_msrs *msrs);

/* Allocate a zeroed struct kvm_cpuid2 / kvm_msrs with room for n entries
 * (nent / nmsrs set to n); the caller free()s *out.  -EINVAL if n exceeds
 * the bounds above or out is NULL, -ENOMEM. */
CVMM_EXPORT int kvm_cpuid2_new(uint32_t n, struct kvm_cpuid2 **out);
CVMM_EXPORT int kvm_msrs_new(uint32_t n, struct kvm_msrs **out);
/* Find the entry for (function, index) in a CPUID table, or NULL (also for
 * a NULL table).  The pointer is into cpuid; at most
 * KVM_IOCTLS_MAX_CPUID_ENTRIES entries are searched. */
CVMM_EXPORT struct kvm_cpuid_entry2 *
kvm_cpuid2_find(struct kvm_cpuid2 *cpuid, uint32_t function, uint32_t index);

/* ===================================================================== */
/* VM                                                                    */
/* ===================================================================== */

/* KVM_CREATE_VM with machine type (0 on x86).  The VM does not keep a
 * reference to sys; sys may be destroyed first.  Errors: -EINVAL (NULL),
 * -ENOMEM, the ioctl's errno; nothing is left open on failure (*out NULL). */
CVMM_EXPORT int kvm_vm_create(const struct kvm_sys *sys, unsigned long type,
			      struct kvm_vm_obj **out);
/* Close the VM fd and free the object (NULL accepted).  Destroy its vCPU
 * and device objects first: they use the VM object. */
CVMM_EXPORT void kvm_vm_destroy(struct kvm_vm_obj *vm);
CVMM_EXPORT int kvm_vm_fd(const struct kvm_vm_obj *vm);
/* KVM_CHECK_EXTENSION on the VM fd (may differ from the system answer). */
CVMM_EXPORT int kvm_vm_check_extension(const struct kvm_vm_obj *vm, long cap);
/* KVM_ENABLE_CAP on the VM fd, with the uapi structure as is. */
CVMM_EXPORT int kvm_vm_enable_cap(struct kvm_vm_obj *vm,
				  const struct kvm_enable_cap *cap);

/*
 * KVM_SET_USER_MEMORY_REGION.  flags: KVM_MEM_LOG_DIRTY_PAGES,
 * KVM_MEM_READONLY.  gpa, size and hva must be page aligned (-EINVAL).
 * size 0 deletes the slot (kvm_vm_delete_memory_region).
 */
CVMM_EXPORT int kvm_vm_set_user_memory_region(struct kvm_vm_obj *vm,
					      uint32_t slot, uint32_t flags,
					      uint64_t gpa, uint64_t size,
					      void *hva);
CVMM_EXPORT int kvm_vm_delete_memory_region(struct kvm_vm_obj *vm,
					    uint32_t slot);
/* KVM_SET_TSS_ADDR (3 pages) / KVM_SET_IDENTITY_MAP_ADDR (1 page). */
CVMM_EXPORT int kvm_vm_set_tss_addr(struct kvm_vm_obj *vm, uint64_t gpa);
CVMM_EXPORT int kvm_vm_set_identity_map_addr(struct kvm_vm_obj *vm,
					     uint64_t gpa);
/* KVM_SET_BOOT_CPU_ID (before any vCPU is created). */
CVMM_EXPORT int kvm_vm_set_boot_cpu_id(struct kvm_vm_obj *vm, uint32_t id);

/* Interrupt controllers. */
/* KVM_CREATE_IRQCHIP: PIC + IOAPIC + LAPICs in the kernel. */
CVMM_EXPORT int kvm_vm_create_irqchip(struct kvm_vm_obj *vm);
/* KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP): LAPICs in the kernel, IOAPIC in
 * user space, nr_ioapic_pins GSIs reserved for it (e.g. 24). */
CVMM_EXPORT int kvm_vm_enable_split_irqchip(struct kvm_vm_obj *vm,
					    uint32_t nr_ioapic_pins);
/* KVM_GET_IRQCHIP / KVM_SET_IRQCHIP; chip->chip_id selects PIC master (0),
 * slave (1) or IOAPIC (2). */
CVMM_EXPORT int kvm_vm_get_irqchip(struct kvm_vm_obj *vm,
				   struct kvm_irqchip *chip);
CVMM_EXPORT int kvm_vm_set_irqchip(struct kvm_vm_obj *vm,
				   const struct kvm_irqchip *chip);
/* KVM_CREATE_PIT2 (flags e.g. KVM_PIT_SPEAKER_DUMMY), KVM_GET/SET_PIT2. */
CVMM_EXPORT int kvm_vm_create_pit2(struct kvm_vm_obj *vm, uint32_t flags);
CVMM_EXPORT int kvm_vm_get_pit2(struct kvm_vm_obj *vm,
				struct kvm_pit_state2 *state);
CVMM_EXPORT int kvm_vm_set_pit2(struct kvm_vm_obj *vm,
				const struct kvm_pit_state2 *state);
/* KVM_REINJECT_CONTROL: whether the in-kernel PIT re-injects lost ticks. */
CVMM_EXPORT int kvm_vm_set_pit_reinject(struct kvm_vm_obj *vm, bool reinject);
/* KVM_GET_CLOCK / KVM_SET_CLOCK (kvmclock base). */
CVMM_EXPORT int kvm_vm_get_clock(struct kvm_vm_obj *vm,
				 struct kvm_clock_data *clock);
CVMM_EXPORT int kvm_vm_set_clock(struct kvm_vm_obj *vm,
				 const struct kvm_clock_data *clock);

/* Interrupt injection. */
/* KVM_IRQ_LINE: set GSI irq to level (0/1). */
CVMM_EXPORT int kvm_vm_irq_line(struct kvm_vm_obj *vm, uint32_t irq,
				uint32_t level);
/*
 * KVM_SIGNAL_MSI.  Returns the kernel's answer: > 0 delivered, 0 blocked
 * by the guest, negative errno on failure.  flags: KVM_MSI_VALID_DEVID
 * with devid, else 0.
 */
CVMM_EXPORT int kvm_vm_signal_msi(struct kvm_vm_obj *vm, uint64_t address,
				  uint32_t data, uint32_t flags,
				  uint32_t devid);

/*
 * GSI routing builder.  A bounded table of at most max_entries routes (at
 * most KVM_IOCTLS_MAX_GSI_ROUTES = 4096).  Adding past the bound returns -ENOSPC;
 * the table is never reallocated behind the caller's back.
 */
CVMM_EXPORT int kvm_gsi_routing_create(uint32_t max_entries,
				       struct kvm_gsi_routing **out);
CVMM_EXPORT void kvm_gsi_routing_destroy(struct kvm_gsi_routing *r);
/* Number of routes currently in the table. */
CVMM_EXPORT uint32_t kvm_gsi_routing_count(const struct kvm_gsi_routing *r);
/* Remove every route. */
CVMM_EXPORT void kvm_gsi_routing_clear(struct kvm_gsi_routing *r);
/* gsi -> pin of irqchip (KVM_IRQCHIP_PIC_MASTER/SLAVE/IOAPIC). */
CVMM_EXPORT int kvm_gsi_routing_add_irqchip(struct kvm_gsi_routing *r,
					    uint32_t gsi, uint32_t irqchip,
					    uint32_t pin);
/* gsi -> MSI (address, data); flags KVM_MSI_VALID_DEVID with devid. */
CVMM_EXPORT int kvm_gsi_routing_add_msi(struct kvm_gsi_routing *r, uint32_t gsi,
					uint64_t address, uint32_t data,
					uint32_t flags, uint32_t devid);
/* KVM_SET_GSI_ROUTING with the whole table (replaces the VM's table).  The
 * builder stays the caller's (KVM copies the table). */
CVMM_EXPORT int kvm_vm_set_gsi_routing(struct kvm_vm_obj *vm,
				       const struct kvm_gsi_routing *r);

/*
 * KVM_IRQFD.  assign: writing to eventfd injects gsi (edge).  With a
 * resamplefd (>= 0) the GSI is level-triggered: it is de-asserted and
 * resamplefd signalled when the guest EOIs it (irqchip routes only).
 */
CVMM_EXPORT int kvm_vm_irqfd_assign(struct kvm_vm_obj *vm, int eventfd,
				    uint32_t gsi, int resamplefd);
CVMM_EXPORT int kvm_vm_irqfd_deassign(struct kvm_vm_obj *vm, int eventfd,
				      uint32_t gsi);

/*
 * KVM_IOEVENTFD.  A guest write of len bytes (1, 2, 4 or 8; 0 = any length,
 * MMIO only) to addr signals eventfd without an exit.  flags:
 * KVM_IOEVENTFD_FLAG_PIO for a port (else MMIO), KVM_IOEVENTFD_FLAG_DATAMATCH
 * to fire only when the written value equals datamatch.  Deassign takes the
 * same arguments as the assign it undoes.
 */
CVMM_EXPORT int kvm_vm_ioeventfd_assign(struct kvm_vm_obj *vm, int eventfd,
					uint64_t addr, uint32_t len,
					uint32_t flags, uint64_t datamatch);
CVMM_EXPORT int kvm_vm_ioeventfd_deassign(struct kvm_vm_obj *vm, int eventfd,
					  uint64_t addr, uint32_t len,
					  uint32_t flags, uint64_t datamatch);

/* Dirty page tracking, bitmap flavour. */
/* Bytes of a dirty bitmap for a slot of size bytes (one bit per 4 KiB
 * page, rounded up to 64-bit words as KVM requires). */
CVMM_EXPORT size_t kvm_dirty_bitmap_size(uint64_t size);
/* KVM_GET_DIRTY_LOG into bitmap (kvm_dirty_bitmap_size(slot size) bytes). */
CVMM_EXPORT int kvm_vm_get_dirty_log(struct kvm_vm_obj *vm, uint32_t slot,
				     void *bitmap);
/* KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, PROTECT_ENABLE): pages
 * stay write-protected until KVM_CLEAR_DIRTY_LOG, not at GET time. */
CVMM_EXPORT int kvm_vm_enable_manual_dirty_protect(struct kvm_vm_obj *vm);
/* KVM_CLEAR_DIRTY_LOG: re-protect the pages set in bitmap, whose bit 0 is
 * page first_page of the slot.  first_page and num_pages must be multiples
 * of 64 unless the range reaches the end of the slot. */
CVMM_EXPORT int kvm_vm_clear_dirty_log(struct kvm_vm_obj *vm, uint32_t slot,
				       uint64_t first_page, uint32_t num_pages,
				       void *bitmap);

/*
 * Dirty ring.  Enable on the VM before creating any vCPU, with the ring
 * size in bytes (a power of two, a multiple of the page size, at most
 * what KVM_CAP_DIRTY_LOG_RING reports).  Uses KVM_CAP_DIRTY_LOG_RING_ACQ_REL
 * when the kernel has it, else KVM_CAP_DIRTY_LOG_RING.  Each vCPU created
 * afterwards maps its ring; see kvm_vcpu_dirty_ring_harvest().
 * Errors: -EINVAL (bad size), -ENOTSUP (no dirty ring), the ioctl's errno.
 */
CVMM_EXPORT int kvm_vm_enable_dirty_ring(struct kvm_vm_obj *vm, uint32_t bytes);
/* KVM_RESET_DIRTY_RINGS: re-protect harvested pages; returns how many
 * entries were reset. */
CVMM_EXPORT int kvm_vm_reset_dirty_rings(struct kvm_vm_obj *vm);

/* KVM_(UN)REGISTER_COALESCED_MMIO for an MMIO range (pio false) or a port
 * range (pio true, KVM_CAP_COALESCED_PIO). */
CVMM_EXPORT int kvm_vm_register_coalesced(struct kvm_vm_obj *vm, uint64_t addr,
					  uint32_t size, bool pio);
CVMM_EXPORT int kvm_vm_unregister_coalesced(struct kvm_vm_obj *vm,
					    uint64_t addr, uint32_t size,
					    bool pio);

/* KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR) with reasons
 * (KVM_MSR_EXIT_REASON_INVAL | _UNKNOWN | _FILTER). */
CVMM_EXPORT int kvm_vm_enable_user_msr_exits(struct kvm_vm_obj *vm,
					     uint32_t reasons);
/* KVM_X86_SET_MSR_FILTER with the uapi structure (bitmaps stay owned by the
 * caller; KVM copies them). */
CVMM_EXPORT int kvm_vm_set_msr_filter(struct kvm_vm_obj *vm,
				      const struct kvm_msr_filter *filter);

/* ===================================================================== */
/* Devices (KVM_CREATE_DEVICE)                                           */
/* ===================================================================== */

/* KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST: 1 if type can be created,
 * 0 if not (ENODEV), negative errno otherwise. */
CVMM_EXPORT int kvm_vm_device_supported(struct kvm_vm_obj *vm, uint32_t type);
/* KVM_CREATE_DEVICE (type e.g. KVM_DEV_TYPE_VFIO).  Errors: -EINVAL,
 * -ENOMEM, the ioctl's errno (-ENODEV: no such device type). */
CVMM_EXPORT int kvm_dev_create(struct kvm_vm_obj *vm, uint32_t type,
			       struct kvm_dev_obj **out);
/* Close the device fd, free the object (NULL accepted). */
CVMM_EXPORT void kvm_dev_destroy(struct kvm_dev_obj *dev);
CVMM_EXPORT int kvm_dev_fd(const struct kvm_dev_obj *dev);
/* The type it was created with (0 for NULL). */
CVMM_EXPORT uint32_t kvm_dev_type(const struct kvm_dev_obj *dev);
/* KVM_HAS_DEVICE_ATTR: 1 present, 0 absent (ENXIO), negative errno. */
CVMM_EXPORT int kvm_dev_has_attr(struct kvm_dev_obj *dev, uint32_t group,
				 uint64_t attr);
/* KVM_SET_DEVICE_ATTR / KVM_GET_DEVICE_ATTR; addr points to the value,
 * whose size the (group, attr) pair defines; it stays the caller's. */
CVMM_EXPORT int kvm_dev_set_attr(struct kvm_dev_obj *dev, uint32_t group,
				 uint64_t attr, const void *addr);
CVMM_EXPORT int kvm_dev_get_attr(struct kvm_dev_obj *dev, uint32_t group,
				 uint64_t attr, void *addr);
/* KVM-VFIO device: add / remove a VFIO group fd (the caller keeps
 * owning group_fd).  -EINVAL on a device of another type. */
CVMM_EXPORT int kvm_dev_vfio_add_group(struct kvm_dev_obj *dev, int group_fd);
CVMM_EXPORT int kvm_dev_vfio_del_group(struct kvm_dev_obj *dev, int group_fd);

/* ===================================================================== */
/* vCPU                                                                  */
/* ===================================================================== */

/*
 * KVM_CREATE_VCPU with the given APIC id, then mmap its kvm_run (and the
 * coalesced MMIO page and dirty ring when the VM has them).  Errors:
 * -EINVAL, -ENOMEM, the ioctl's errno (-EEXIST for an id in use), mmap()'s
 * errno.  On failure nothing stays open or mapped and *out is NULL; note
 * that KVM keeps a vCPU it created until the VM goes away, so after a
 * failed mmap the id stays taken (-EEXIST on retry).
 */
CVMM_EXPORT int kvm_vcpu_create(struct kvm_vm_obj *vm, uint32_t id,
				struct kvm_vcpu_obj **out);
/* Unmap, close the vCPU fd, free the object (NULL accepted).  Not while
 * another thread is in kvm_vcpu_run() or kvm_vcpu_kick() on it. */
CVMM_EXPORT void kvm_vcpu_destroy(struct kvm_vcpu_obj *vcpu);
CVMM_EXPORT int kvm_vcpu_fd(const struct kvm_vcpu_obj *vcpu);
/* The id it was created with (0 for NULL). */
CVMM_EXPORT uint32_t kvm_vcpu_id(const struct kvm_vcpu_obj *vcpu);
/* The mmapped kvm_run (owned by the object, valid until
 * kvm_vcpu_destroy; NULL for NULL) and the mapping's size (0 for NULL). */
CVMM_EXPORT struct kvm_run *kvm_vcpu_run_struct(struct kvm_vcpu_obj *vcpu);
CVMM_EXPORT size_t kvm_vcpu_mmap_size(const struct kvm_vcpu_obj *vcpu);

/* Register state, uapi structures as is: the caller's struct is read or
 * filled, never kept.  0 or -EINVAL (NULL) or the ioctl's -errno.
 *
 * Saving state after an I/O exit: after KVM_EXIT_IO or KVM_EXIT_MMIO (and
 * the other exits userspace completes), the vCPU state is consistent only
 * once KVM_RUN has been re-entered (KVM API doc, "completion of I/O"): RIP
 * may still point at the I/O instruction (kvm-amd and kvm-intel advance it
 * on re-entry) and an IN's data is not yet in RAX.  State read with the
 * getters below at that point and restored elsewhere re-executes the
 * instruction.  Call kvm_vcpu_complete_io() first (declared with
 * kvm_vcpu_run()); it completes the operation without running the guest. */
CVMM_EXPORT int kvm_vcpu_get_regs(struct kvm_vcpu_obj *vcpu,
				  struct kvm_regs *regs);
CVMM_EXPORT int kvm_vcpu_set_regs(struct kvm_vcpu_obj *vcpu,
				  const struct kvm_regs *regs);
CVMM_EXPORT int kvm_vcpu_get_sregs(struct kvm_vcpu_obj *vcpu,
				   struct kvm_sregs *sregs);
CVMM_EXPORT int kvm_vcpu_set_sregs(struct kvm_vcpu_obj *vcpu,
				   const struct kvm_sregs *sregs);
CVMM_EXPORT int kvm_vcpu_get_fpu(struct kvm_vcpu_obj *vcpu,
				 struct kvm_fpu *fpu);
CVMM_EXPORT int kvm_vcpu_set_fpu(struct kvm_vcpu_obj *vcpu,
				 const struct kvm_fpu *fpu);
CVMM_EXPORT int kvm_vcpu_get_lapic(struct kvm_vcpu_obj *vcpu,
				   struct kvm_lapic_state *lapic);
CVMM_EXPORT int kvm_vcpu_set_lapic(struct kvm_vcpu_obj *vcpu,
				   const struct kvm_lapic_state *lapic);
CVMM_EXPORT int kvm_vcpu_get_mp_state(struct kvm_vcpu_obj *vcpu,
				      struct kvm_mp_state *mp);
CVMM_EXPORT int kvm_vcpu_set_mp_state(struct kvm_vcpu_obj *vcpu,
				      const struct kvm_mp_state *mp);
CVMM_EXPORT int kvm_vcpu_get_xcrs(struct kvm_vcpu_obj *vcpu,
				  struct kvm_xcrs *xcrs);
CVMM_EXPORT int kvm_vcpu_set_xcrs(struct kvm_vcpu_obj *vcpu,
				  const struct kvm_xcrs *xcrs);
CVMM_EXPORT int kvm_vcpu_get_debugregs(struct kvm_vcpu_obj *vcpu,
				       struct kvm_debugregs *dregs);
CVMM_EXPORT int kvm_vcpu_set_debugregs(struct kvm_vcpu_obj *vcpu,
				       const struct kvm_debugregs *dregs);
CVMM_EXPORT int kvm_vcpu_get_vcpu_events(struct kvm_vcpu_obj *vcpu,
					 struct kvm_vcpu_events *ev);
CVMM_EXPORT int kvm_vcpu_set_vcpu_events(struct kvm_vcpu_obj *vcpu,
					 const struct kvm_vcpu_events *ev);

/*
 * XSAVE.  kvm_vcpu_xsave_size() is the size KVM uses for this VM's xsave
 * buffers (KVM_CAP_XSAVE2 on the VM, at least sizeof(struct kvm_xsave)).
 * get_xsave2 uses KVM_GET_XSAVE2 (or KVM_GET_XSAVE without XSAVE2) and
 * set_xsave KVM_SET_XSAVE; both need len >= kvm_vcpu_xsave_size()
 * (-ENOSPC otherwise), because KVM reads/writes that many bytes.
 * kvm_vcpu_get_xsave() is the legacy 4 KiB KVM_GET_XSAVE (fails with
 * -EINVAL in the kernel when the state is larger).
 */
CVMM_EXPORT size_t kvm_vcpu_xsave_size(const struct kvm_vcpu_obj *vcpu);
CVMM_EXPORT int kvm_vcpu_get_xsave(struct kvm_vcpu_obj *vcpu,
				   struct kvm_xsave *xsave);
CVMM_EXPORT int kvm_vcpu_get_xsave2(struct kvm_vcpu_obj *vcpu, void *buf,
				    size_t len);
CVMM_EXPORT int kvm_vcpu_set_xsave(struct kvm_vcpu_obj *vcpu, const void *buf,
				   size_t len);

/* KVM_SET_CPUID2 (cpuid must hold cpuid->nent entries, at most
 * KVM_IOCTLS_MAX_CPUID_ENTRIES: -EINVAL); KVM_GET_CPUID2 sized by the
 * library, growing on E2BIG (*out malloc()ed, the caller free()s it). */
CVMM_EXPORT int kvm_vcpu_set_cpuid2(struct kvm_vcpu_obj *vcpu,
				    const struct kvm_cpuid2 *cpuid);
CVMM_EXPORT int kvm_vcpu_get_cpuid2(struct kvm_vcpu_obj *vcpu,
				    struct kvm_cpuid2 **out);
/* KVM_GET_MSRS / KVM_SET_MSRS: returns how many entries, from the first,
 * were processed (fewer than nmsrs means entry [ret] failed).  msrs must
 * hold nmsrs entries (kvm_msrs_new); -EINVAL past KVM_IOCTLS_MAX_MSRS. */
CVMM_EXPORT int kvm_vcpu_get_msrs(struct kvm_vcpu_obj *vcpu,
				  struct kvm_msrs *msrs);
CVMM_EXPORT int kvm_vcpu_set_msrs(struct kvm_vcpu_obj *vcpu,
				  const struct kvm_msrs *msrs);
/* One-MSR conveniences: 0 on success, -EIO if KVM refused the MSR. */
CVMM_EXPORT int kvm_vcpu_get_msr(struct kvm_vcpu_obj *vcpu, uint32_t index,
				 uint64_t *value);
CVMM_EXPORT int kvm_vcpu_set_msr(struct kvm_vcpu_obj *vcpu, uint32_t index,
				 uint64_t value);

/* KVM_SET_GUEST_DEBUG. */
CVMM_EXPORT int kvm_vcpu_set_guest_debug(struct kvm_vcpu_obj *vcpu,
					 const struct kvm_guest_debug *dbg);
/* KVM_KVMCLOCK_CTRL: tell the guest it was paused (needs kvmclock active:
 * -EINVAL otherwise). */
CVMM_EXPORT int kvm_vcpu_kvmclock_ctrl(struct kvm_vcpu_obj *vcpu);
/* KVM_GET_TSC_KHZ (returns kHz) / KVM_SET_TSC_KHZ. */
CVMM_EXPORT int kvm_vcpu_get_tsc_khz(struct kvm_vcpu_obj *vcpu);
CVMM_EXPORT int kvm_vcpu_set_tsc_khz(struct kvm_vcpu_obj *vcpu, uint32_t khz);
/* KVM_TRANSLATE: guest linear address -> physical, per the current paging
 * state (tr->linear_address in, the rest out). */
CVMM_EXPORT int kvm_vcpu_translate(struct kvm_vcpu_obj *vcpu,
				   struct kvm_translation *tr);
/*
 * Nested virtualization state.  get allocates *out with the size
 * KVM_CAP_NESTED_STATE reports (-ENOTSUP when 0); the caller free()s it.
 */
CVMM_EXPORT int kvm_vcpu_get_nested_state(struct kvm_vcpu_obj *vcpu,
					  struct kvm_nested_state **out);
/* set: st must span st->size bytes (KVM reads that many); -EINVAL when
 * st->size is below the header size. */
CVMM_EXPORT int kvm_vcpu_set_nested_state(struct kvm_vcpu_obj *vcpu,
					  const struct kvm_nested_state *st);
/* KVM_NMI, KVM_SMI, KVM_INTERRUPT (user-space irqchip only). */
CVMM_EXPORT int kvm_vcpu_nmi(struct kvm_vcpu_obj *vcpu);
CVMM_EXPORT int kvm_vcpu_smi(struct kvm_vcpu_obj *vcpu);
CVMM_EXPORT int kvm_vcpu_interrupt(struct kvm_vcpu_obj *vcpu, uint32_t vector);
/* KVM_SET_SIGNAL_MASK: signals blocked while in KVM_RUN (NULL: no
 * special mask, the thread's own mask applies). */
CVMM_EXPORT int kvm_vcpu_set_signal_mask(struct kvm_vcpu_obj *vcpu,
					 const sigset_t *mask);
/* KVM_ENABLE_CAP on the vCPU fd. */
CVMM_EXPORT int kvm_vcpu_enable_cap(struct kvm_vcpu_obj *vcpu,
				    const struct kvm_enable_cap *cap);

/*
 * Sync regs (KVM_CAP_SYNC_REGS): register classes exchanged through kvm_run
 * instead of separate ioctls.  kvm_vcpu_sync_regs_enable() sets
 * kvm_valid_regs (KVM_SYNC_X86_REGS | _SREGS | _EVENTS; -EINVAL for a bit the
 * kernel does not report); after each exit the enabled classes are in
 * kvm_vcpu_sync_regs().  To change them, edit that struct and call
 * kvm_vcpu_sync_regs_dirty() with the classes edited before the next run.
 */
CVMM_EXPORT int kvm_vcpu_sync_regs_enable(struct kvm_vcpu_obj *vcpu,
					  uint64_t classes);
/* (points into kvm_run: owned by the vCPU; NULL for NULL) */
CVMM_EXPORT struct kvm_sync_regs *kvm_vcpu_sync_regs(struct kvm_vcpu_obj *vcpu);
CVMM_EXPORT int kvm_vcpu_sync_regs_dirty(struct kvm_vcpu_obj *vcpu,
					 uint64_t classes);
/* kvm_run->request_interrupt_window (user-space irqchip). */
CVMM_EXPORT void kvm_vcpu_request_interrupt_window(struct kvm_vcpu_obj *vcpu,
						   bool on);

/*
 * Coalesced MMIO/PIO ring (shared by every vCPU of the VM).  Copies up to
 * max pending entries into out, oldest first, and consumes them.  Returns
 * the count, 0 when empty or not available, -EPROTO if the kernel's ring
 * indexes are out of range (first or last >= the ring's entry count;
 * nothing is consumed then), -EINVAL for NULL vcpu or NULL out with
 * max > 0.  An entry's len is clamped to its 8 data bytes.  Serialised by
 * the VM object, so any vCPU thread may call it.
 */
CVMM_EXPORT int kvm_vcpu_coalesced_drain(struct kvm_vcpu_obj *vcpu,
					 struct kvm_coalesced_mmio *out,
					 size_t max);

/*
 * Dirty ring harvest for this vCPU: copies up to max dirty entries (slot,
 * offset in pages) into out, marks them for reset, and returns the count.
 * Call kvm_vm_reset_dirty_rings() afterwards to re-arm the pages.
 * -ENOTSUP if the VM had no dirty ring when the vCPU was created, -EINVAL
 * for NULL vcpu or NULL out with max > 0.  Never returns more than one lap
 * of the ring (its entry count) per call; what is left stays for the next
 * call, in ring order.  Any thread may harvest while the vCPU runs (flags
 * are read with acquire and reset with release, as KVM requires), but
 * harvests of one vCPU must not run concurrently with each other.
 */
CVMM_EXPORT int kvm_vcpu_dirty_ring_harvest(struct kvm_vcpu_obj *vcpu,
					    struct kvm_dirty_gfn *out,
					    size_t max);

/* ===================================================================== */
/* KVM_RUN and exit decoding                                             */
/* ===================================================================== */

/*
 * A decoded exit.  reason is the uapi KVM_EXIT_* value; the union member
 * named after it is valid.  Pointers point into the vCPU's kvm_run mapping
 * (valid until the next run) and were bounds-checked against it.
 *
 *   KVM_EXIT_IO         io: port, size (1/2/4), count, in; data/len is the
 *                       whole string-I/O buffer (size * count bytes).  For
 *                       an IN, fill data before the next run.
 *   KVM_EXIT_MMIO       mmio: gpa, len (<= 8), write, data (fill on read).
 *   KVM_EXIT_HLT, KVM_EXIT_SHUTDOWN, KVM_EXIT_IRQ_WINDOW_OPEN,
 *   KVM_EXIT_DIRTY_RING_FULL (harvest, reset, run again): no payload.
 *   KVM_EXIT_FAIL_ENTRY fail_entry.
 *   KVM_EXIT_INTERNAL_ERROR internal: suberror, ndata (<= 16), data.
 *   KVM_EXIT_SYSTEM_EVENT system_event: type, ndata (<= 16), data.
 *   KVM_EXIT_IOAPIC_EOI eoi_vector.
 *   KVM_EXIT_X86_RDMSR/WRMSR msr: index, reason; *data (write the value
 *                       for RDMSR), *error (set 1 to inject #GP).
 *   KVM_EXIT_HYPERCALL  hypercall: nr, args, *ret (write the result).
 *   KVM_EXIT_DEBUG      debug: the arch data (exception, pc, dr6, dr7).
 *   KVM_EXIT_INTR       KVM_RUN returned EINTR (a signal, or immediate_exit)
 *                       or the kernel reported KVM_EXIT_INTR; kicked says
 *                       whether a kvm_vcpu_kick() was consumed by it.
 *   anything else       known is false; raw reason and run are passed
 *                       through for the caller to interpret.
 */
struct kvm_exit_info {
	uint32_t reason;
	bool known;
	bool kicked;
	struct kvm_run *run;
	union {
		struct {
			uint16_t port;
			uint8_t size;
			bool in;
			uint32_t count;
			uint8_t *data;
			size_t len;
		} io;
		struct {
			uint64_t gpa;
			uint8_t *data;
			uint32_t len;
			bool write;
		} mmio;
		struct {
			uint64_t hardware_entry_failure_reason;
			uint32_t cpu;
		} fail_entry;
		struct {
			uint32_t suberror;
			uint32_t ndata;
			const __u64 *data;
		} internal;
		struct {
			uint32_t type;
			uint32_t ndata;
			const __u64 *data;
		} system_event;
		uint8_t eoi_vector;
		struct {
			uint32_t index;
			uint32_t reason;
			__u64 *data;
			__u8 *error;
		} msr;
		struct {
			uint64_t nr;
			const __u64 *args;
			uint32_t longmode;
			__u64 *ret;
		} hypercall;
		struct kvm_debug_exit_arch debug;
		uint64_t hardware_exit_reason;
	};
};

/*
 * Decode run (a kvm_run mapping of map_size bytes) into *out, checking
 * every offset and length the kernel supplied against map_size.  Pure: no
 * syscall.  Returns 0, or -EPROTO for an inconsistent kvm_run (then *out
 * holds only reason and run).
 */
CVMM_EXPORT int kvm_exit_decode(struct kvm_run *run, size_t map_size,
				struct kvm_exit_info *out);
/* A static name for a KVM_EXIT_* value ("IO", "HLT", ... "UNKNOWN_REASON"). */
CVMM_EXPORT const char *kvm_exit_reason_name(uint32_t reason);

/*
 * KVM_RUN then kvm_exit_decode().  Returns 0 with *exit filled (EINTR is
 * reported as reason KVM_EXIT_INTR, not as an error), or a negative errno
 * from KVM_RUN (e.g. -EFAULT) or -EPROTO.
 */
CVMM_EXPORT int kvm_vcpu_run(struct kvm_vcpu_obj *vcpu,
			     struct kvm_exit_info *exit);

/*
 * Complete the operation of the last exit without running the guest, so
 * that the vCPU state is consistent (e.g. before saving it for migration or
 * a snapshot; see the note at kvm_vcpu_get_regs()).  Issues KVM_RUN once
 * with kvm_run->immediate_exit = 1: KVM first finishes the pending I/O,
 * MMIO or MSR operation (using the data the caller wrote into kvm_run for
 * an IN, MMIO read or RDMSR), then sees immediate_exit and returns EINTR
 * before entering the guest.  Harmless when nothing is pending.
 *
 * Returns 0 when the operation is complete (*exit untouched); 1 when
 * completing it produced a new exit instead (e.g. the next chunk of a string
 * I/O instruction), decoded into *exit like kvm_vcpu_run() does: handle it,
 * then call again; a negative errno from KVM_RUN, -EPROTO from decoding, or
 * -EINVAL for NULL arguments.  immediate_exit is cleared again unless a
 * kvm_vcpu_kick() is pending, which stays pending (the next kvm_vcpu_run()
 * reports it).  Same thread rules as kvm_vcpu_run().
 */
CVMM_EXPORT int kvm_vcpu_complete_io(struct kvm_vcpu_obj *vcpu,
				     struct kvm_exit_info *exit);

/*
 * Kicking a vCPU out of KVM_RUN from another thread.
 *
 * kvm_vcpu_kick_bind(), called on the thread that will run the vCPU,
 * records that thread and the signal to use (e.g. SIGRTMIN + n), installs a
 * no-op handler for it (unless one is installed) and unblocks it in the
 * calling thread.  Needs KVM_CAP_IMMEDIATE_EXIT (-ENOTSUP).
 *
 * kvm_vcpu_kick(), from any thread, (1) marks a kick pending, (2) sets
 * kvm_run->immediate_exit, (3) sends the signal to the vCPU thread.
 *
 * The race this avoids: a signal alone is lost when it arrives after the
 * vCPU thread decided to call KVM_RUN but before it entered the kernel - the
 * handler runs in user space, then KVM_RUN starts and runs the guest
 * indefinitely.  immediate_exit closes that window: KVM checks it on entry
 * to KVM_RUN and returns EINTR at once, so a kick that lands anywhere
 * before entry is seen on entry, and one that lands inside KVM_RUN is seen
 * through the signal (which forces the exit).  kvm_vcpu_run() clears
 * immediate_exit only after KVM_RUN returned EINTR, and clears it before it
 * consumes the pending flag, so a kick is never cleared without being
 * reported (exit->kicked); at worst one extra KVM_EXIT_INTR is reported.
 * A kick that arrives while the vCPU thread is outside KVM_RUN (handling
 * an exit) is delivered by the next kvm_vcpu_run(), which returns at once.
 *
 * kvm_vcpu_kick() returns 0, -EINVAL if the vCPU was never bound, or the
 * pthread_kill() error.  The bound thread must still exist (rebind after
 * moving the vCPU to another thread; not concurrently with a kick).
 * kvm_vcpu_kick() is async-signal-safe (lock-free atomics and
 * pthread_kill() only), so a signal handler or a timer may call it.
 * kvm_vcpu_kick_bind() errors: -EINVAL (NULL vcpu, bad signo), -ENOTSUP,
 * sigaction()'s errno.
 */
CVMM_EXPORT int kvm_vcpu_kick_bind(struct kvm_vcpu_obj *vcpu, int signo);
CVMM_EXPORT int kvm_vcpu_kick(struct kvm_vcpu_obj *vcpu);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_KVM_IOCTLS_H */
