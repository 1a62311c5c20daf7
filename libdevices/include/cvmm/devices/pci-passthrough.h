/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * PCI passthrough: a struct pci_device (cvmm/devices/pci.h) backed by a
 * physical function bound to vfio-pci (libvfio's struct vfio_device).
 * Built when libvfio is enabled.
 *
 * What the guest sees.  The config space is virtualised over the physical
 * one: identity (vendor, device, subsystem, revision, class, interrupt
 * pin) is copied from it once; the BARs have the physical sizes and kinds
 * but guest addresses of their own (placed by the root's allocators,
 * relocated by the guest like any BAR); the capability list holds only the
 * emulated MSI and MSI-X capabilities, mirroring the physical ones (vector
 * count, 64-bit address, per-vector masking; the MSI-X table and PBA at
 * the physical BAR and offset).  Other physical capabilities and
 * device-specific config registers are hidden (read 0).  The command
 * register's I/O, memory, bus-master and INTx-disable bits are forwarded
 * to the physical function.
 *
 * BAR accesses.  Trapped accesses go to the physical BAR through VFIO
 * region reads and writes; the MSI-X table and PBA are emulated by the
 * framework (never forwarded).  The mmappable parts of each BAR, minus the
 * pages holding the MSI-X table or PBA, are mmapped at creation, and the
 * @map callback tells the VMM where they are to appear in the guest (a
 * KVM memory slot in cvmm) whenever the BAR starts or stops decoding or
 * moves, so those accesses never exit.
 *
 * Interrupts.  Each MSI-X vector, each MSI vector and INTx has an eventfd
 * of this object (created once, listed by pci_passthrough_fd()); VFIO
 * signals them (MSI/MSI-X vectors may bypass them: see "Direct MSI /
 * MSI-X" below).  The VMM polls them and calls pci_passthrough_fd_ready(),
 * which sends the vector through the function's MSI sink (with the
 * framework's masking and pending bits) or asserts INTx.  VFIO's MSI-X is
 * enabled with all vectors when the guest sets the MSI-X enable bit, MSI
 * with the guest's number of vectors when it enables MSI; INTx is enabled
 * whenever neither is (the kernel allows one at a time; a guest enabling
 * MSI and MSI-X together gets MSI-X, and MSI again when MSI-X goes off).  INTx is
 * level-triggered and masked by VFIO after each interrupt: in the polled
 * mode the next trapped BAR access deasserts the line and unmasks it (the
 * guest's handler acknowledges the device through its BAR; while INTx is
 * pending the direct mappings still bypass this, so a device whose
 * acknowledge register is in a mapped page needs the resample path).  A
 * VMM with KVM wires pci_passthrough_intx_fds() to an irqfd with a
 * resample fd instead (KVM then unmasks on the guest's EOI) and does not
 * poll the INTx trigger; the status register's Interrupt Status bit then
 * comes from the physical function (read through VFIO), so drivers using
 * PCI 2.3 INTx masking (uio_pci_generic) work, with their Interrupt
 * Disable writes forwarded to the physical command register.
 *
 * Direct MSI / MSI-X (irqfd bypass).  A VMM with KVM gives vectors an
 * irqfd eventfd of its own (pci_passthrough_set_vector_notifier()) and the
 * @vector_update hook, which keeps the GSI route of that irqfd equal to
 * the message the guest programmed (like the MSI-X hook of virtio-pci).
 * While the hook's route is current (it returned 0) and the vector may be
 * sent (MSI or MSI-X enabled, the vector and function unmasked), VFIO
 * signals the VMM's eventfd itself, so an interrupt goes from the device
 * to KVM with no thread of the VMM involved.  When the guest masks the
 * vector, disables MSI/MSI-X, or the hook fails, VFIO is switched back to
 * this object's eventfd for that vector (VFIO_DEVICE_SET_IRQS of the one
 * vector), so the interrupt reaches the framework, which sets the
 * vector's pending bit and sends it on unmask (through the VMM's
 * notifier).  The switch happens in the guest's config or MSI-X table
 * write, under the framework's interrupt lock, before it returns.  An
 * interrupt the device raised just before a mask write may still be
 * delivered, as on real hardware where the message was already posted.
 *
 * DMA.  The VMM maps guest RAM into the VFIO container before the guest
 * runs (<cvmm/vfio-memory.h>); this object does not touch the container.
 *
 * Threading: BAR and config callbacks come from any vCPU thread through
 * the PCI framework; pci_passthrough_fd_ready() from any thread.  VFIO
 * interrupt changes are serialised by a lock of this object.
 */
#ifndef CVMM_DEVICES_PCI_PASSTHROUGH_H
#define CVMM_DEVICES_PCI_PASSTHROUGH_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/pci.h>
#include <cvmm/devices/version.h> /* CVMM_EXPORT */

#ifdef __cplusplus
extern "C" {
#endif

struct vfio_device;
struct pci_passthrough;

/**
 * struct pci_passthrough_config - options (NULL or zeroed: defaults).
 * @map:        show (@map true) or hide the host mapping @host of @size
 *              bytes at guest physical @gpa; called under the PCI config
 *              lock when a BAR with mmapped parts starts or stops decoding
 *              or moves.  NULL: nothing is mapped directly, every BAR
 *              access traps (correct, slower).  A non-zero return is
 *              ignored for @map false; for @map true the part simply stays
 *              trapped.
 * @map_opaque: passed to @map.
 * @vector_update: vector @vector (an index as for
 *              pci_passthrough_set_vector_notifier()) with a VMM notifier
 *              now has the message (@address, @data); @masked: it cannot
 *              be sent now.  Return 0 when the notifier's irqfd delivers
 *              exactly this message (a VMM may keep the old route and
 *              return 0 while @masked), a negative errno otherwise (VFIO
 *              then signals this object's eventfd for the vector, and the
 *              framework sends through the MSI sink).  Called on the vCPU
 *              thread of the guest's write, under the PCI interrupt lock:
 *              it must not call into this object or its pci_device.  NULL:
 *              vectors never bypass this object.
 * @vector_opaque: passed to @vector_update.
 */
struct pci_passthrough_config {
	int (*map)(void *opaque, uint64_t gpa, void *host, uint64_t size,
		   bool map);
	void *map_opaque;
	int (*vector_update)(void *opaque, uint16_t vector, uint64_t address,
			     uint32_t data, bool masked);
	void *vector_opaque;
};

/**
 * pci_passthrough_create() - a PCI function over @vdev.
 *
 * Reads the physical config space (header type 0 only: -EOPNOTSUPP for a
 * bridge), declares the BARs, MSI and MSI-X, creates the eventfds, mmaps
 * the mappable BAR parts and enables INTx on VFIO when the device has it.
 * @vdev stays the caller's and must outlive the object.  Errors: -EPROTO
 * (a BAR size that is not a power of two, a capability list that loops or
 * leaves config space, an MSI-X table outside its BAR), the VFIO and PCI
 * framework errors, -ENOMEM, eventfd's and mmap's errors.
 */
CVMM_EXPORT int pci_passthrough_create(struct vfio_device *vdev,
				       const struct pci_passthrough_config *cfg,
				       struct pci_passthrough **out);

/**
 * pci_passthrough_pci_device() - the PCI function, to set its MSI sink
 * and INTx line (pci_device_set_msi_sink(), pci_device_set_intx_line())
 * and to add it to a root (pci_passthrough_add_to_root()).
 */
CVMM_EXPORT struct pci_device *
pci_passthrough_pci_device(const struct pci_passthrough *p);

/**
 * pci_passthrough_add_to_root() - pci_root_add_device() of the function;
 * on success the root owns the function (not this object).  Errors as
 * pci_root_add_device(); on error nothing changed.
 */
CVMM_EXPORT int pci_passthrough_add_to_root(struct pci_passthrough *p,
					    struct pci_root *root,
					    unsigned slot, unsigned fn);

/** pci_passthrough_num_fds() - how many eventfds the VMM should poll. */
CVMM_EXPORT unsigned pci_passthrough_num_fds(const struct pci_passthrough *p);

/** pci_passthrough_fd() - eventfd @index (< num_fds), POLLIN; -EINVAL out
 *  of range.  Owned by the object. */
CVMM_EXPORT int pci_passthrough_fd(const struct pci_passthrough *p,
				   unsigned index);

/**
 * pci_passthrough_fd_ready() - eventfd @index is readable: drain it and
 * deliver (MSI-X / MSI through the MSI sink, INTx asserted).  Spurious
 * calls are harmless.  Returns 0 or -EINVAL.
 */
CVMM_EXPORT int pci_passthrough_fd_ready(struct pci_passthrough *p,
					 unsigned index);

/**
 * pci_passthrough_num_vectors() - MSI-X vectors + MSI vectors of the
 * function: the vector indices of pci_passthrough_set_vector_notifier()
 * and @vector_update (MSI-X vector i is index i, MSI vector j is index
 * MSI-X vectors + j; the same as the fd indices).
 */
CVMM_EXPORT unsigned
pci_passthrough_num_vectors(const struct pci_passthrough *p);

/**
 * pci_passthrough_set_vector_notifier() - let vector @index bypass this
 * object: @n is an event notifier the VMM registered as a KVM irqfd whose
 * GSI route it keeps from @vector_update (see "Direct MSI / MSI-X").
 * Not owned: it must stay valid until replaced or the object is destroyed.
 * Calls @vector_update for the vector at once.  NULL: the vector goes
 * through this object's eventfd and the MSI sink again.
 * Return: 0, -EINVAL (@index out of range, a notifier without an fd).
 */
CVMM_EXPORT int pci_passthrough_set_vector_notifier(struct pci_passthrough *p,
						    unsigned index,
						    struct event_notifier *n);

/**
 * pci_passthrough_steer_failures() - how many times VFIO refused to switch
 * a vector to the VMM's eventfd (the vector then used this object's).
 */
CVMM_EXPORT unsigned
pci_passthrough_steer_failures(const struct pci_passthrough *p);

/**
 * pci_passthrough_intx_fds() - the INTx trigger and resample eventfds
 * (for KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE).  -ENOENT when the device
 * has no INTx.
 */
CVMM_EXPORT int pci_passthrough_intx_fds(const struct pci_passthrough *p,
					 int *trigger, int *resample);

/**
 * pci_passthrough_destroy() - disable the VFIO interrupts, unmap the BAR
 * mappings, close the eventfds; the function itself too unless a root
 * owns it (remove it from the root first: pci_root_remove_device()).
 * NULL is accepted.
 */
CVMM_EXPORT void pci_passthrough_destroy(struct pci_passthrough *p);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_PCI_PASSTHROUGH_H */
