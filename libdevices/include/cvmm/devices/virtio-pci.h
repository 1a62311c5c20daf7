/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file virtio-pci.h
 * libdevices: the virtio-pci modern transport (virtio 1.2, 4.1) for a
 * struct virtio_device, built on libdevices' PCI framework (pci.h).
 *
 * The function: vendor 0x1af4, device 0x1040 + virtio device id, revision
 * 1 (a non-transitional device: no legacy I/O BAR), subsystem vendor
 * 0x1af4 and subsystem id 0x1100 unless configured, INTA#, and one 64-bit
 * memory BAR (VIRTIO_PCI_BAR) laid out as
 *
 *   0x0000  common configuration (struct virtio_pci_common_cfg, 0x38 bytes)
 *   0x1000  ISR status (1 byte; a read returns and clears it, deasserting
 *           INTx)
 *   0x2000  device configuration (the device's config_size bytes; no
 *           capability when it is 0)
 *   0x3000  notifications: queue i at 0x3000 + i * VIRTIO_PCI_NOTIFY_MULT
 *           (queue_notify_off = i), so each queue has its own address for
 *           an ioeventfd
 *   0x4000  MSI-X table, then the PBA
 *
 * described by the five vendor capabilities (common, notify, ISR, device,
 * and the VIRTIO_PCI_CAP_PCI_CFG access window, which reaches the same
 * registers through config space).
 *
 * Register rules.  Every common-configuration field must be accessed with
 * its own width (8, 16 or 32 bits; the 64-bit queue addresses as two
 * 32-bit halves or one aligned 64-bit access); any other access reads 0
 * and a write is ignored.  queue_select may hold any value; while it names
 * no queue the queue fields read 0 and writes are ignored.  MSI-X vectors
 * beyond the table read back as VIRTIO_MSI_NO_VECTOR.  Queue fields are
 * read-only while the queue is enabled.  Notifications: a write of 2 or 4
 * bytes at a queue's notify address (its value is ignored).  Device
 * configuration: accesses of 1, 2, 4 or 8 bytes; past its end reads 0.
 *
 * Interrupts.  With MSI-X enabled a queue interrupt sends the queue's
 * vector (none for VIRTIO_MSI_NO_VECTOR) and a configuration interrupt the
 * config vector; with MSI-X off the ISR bit is set and INTx asserted until
 * the driver reads the ISR.  Messages go to the MSI sink and the INTx
 * line given in struct virtio_pci_config.
 *
 * Delivering vectors through irqfds.  A VMM with per-vector interrupt
 * routes (KVM: one GSI per vector, an MSI route, an irqfd) sets
 * @msix_update in the config to learn each vector's message as the guest
 * programs it, and hands the transport one event notifier per vector with
 * virtio_pci_set_vector_notifier().  A vector is then sent by signalling
 * its notifier while the last @msix_update for it returned 0, and through
 * the MSI sink otherwise (the fallback: KVM_SIGNAL_MSI).  Masked vectors
 * keep PCI semantics whichever way they are delivered: the pending bit is
 * set, and the message is sent on unmask, after @msix_update.  Sketch:
 *
 *   pc.msi = signal_msi_sink;  pc.msix_update = route_vector;
 *   virtio_pci_create(dev, &pc, &vp);
 *   for (v = 0; v < virtio_pci_num_vectors(vp); v++) {
 *       event_notifier_create(0, &n[v]);
 *       KVM_IRQFD(event_notifier_fd(n[v]), gsi[v]);
 *       virtio_pci_set_vector_notifier(vp, v, n[v]);
 *   }
 *   int route_vector(opaque, v, addr, data, masked) {
 *       if (masked) return 0;                  // nothing is sent
 *       update gsi[v]'s MSI route, KVM_SET_GSI_ROUTING;
 *       return ok ? 0 : -errno;                // error: sink for v
 *   }
 *
 * Each queue's vector notifier is also offered to the device type as
 * the queue's direct interrupt fd (virtio_device_queue_irq_fd(), the
 * device's irq-fd watcher told of every change before it takes effect)
 * while MSI-X is on, the vector unmasked and @msix_update returned 0 for
 * it: vhost devices hand it to the kernel or the backend process, which
 * then interrupt the guest with no VMM thread.
 *
 * For INTx through an irqfd use struct irq_level_notifier (irq.h) as
 * @intx: level-triggered with a resample eventfd.
 *
 * Threads: any vCPU thread may access the registers; the transport's
 * state is protected by the device lock (virtio.h) and a small interrupt
 * lock.  Interrupts are sent without the device lock held.
 */
#ifndef CVMM_DEVICES_VIRTIO_PCI_H
#define CVMM_DEVICES_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/irq.h>
#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_pci;

/** The BAR holding every virtio structure, and its layout. */
#define VIRTIO_PCI_BAR		   0u
#define VIRTIO_PCI_COMMON_OFFSET   0x0000u
#define VIRTIO_PCI_ISR_OFFSET	   0x1000u
#define VIRTIO_PCI_DEVICE_OFFSET   0x2000u
#define VIRTIO_PCI_NOTIFY_OFFSET   0x3000u
#define VIRTIO_PCI_MSIX_OFFSET	   0x4000u
/** notify_off_multiplier: bytes between two queues' notify addresses. */
#define VIRTIO_PCI_NOTIFY_MULT	   4u
/** Size of the common configuration structure exposed. */
#define VIRTIO_PCI_COMMON_CFG_SIZE 0x38u

/**
 * struct virtio_pci_config - options of virtio_pci_create(); a zeroed
 * struct (or NULL) selects every default.
 * @msix_vectors: MSI-X table size; 0: num_queues + 1 (one config vector
 *                and one per queue); capped at PCI_MSIX_MAX_VECTORS.
 * @subsystem_vendor_id, @subsystem_id: 0: 0x1af4 and 0x1100.
 * @class_code:   0: from the device id (net 0x020000, blk 0x010000,
 *                console 0x078000, others 0xff0000).
 * @msi:          where MSI-X messages go (zeroed: dropped).
 * @intx:         the INTx line (zeroed: not connected).
 * @notify_remap: called when the BAR starts or stops decoding or moves,
 *                with the guest address of the notify area (queue i at
 *                @notify_base + i * VIRTIO_PCI_NOTIFY_MULT), so a VMM can
 *                move its ioeventfds.  Runs under the PCI config lock: it
 *                must not call pci_* config functions.  Also called
 *                (unmapped) when the root removes or destroys the
 *                function.  Optional.
 * @remap_opaque: its argument; must stay valid as long as the function
 *                is in a root.
 * @msix_update:  called when MSI-X vector @vector's message or effective
 *                mask changes (table write, MSI-X enable or function
 *                mask, reset, virtio_pci_set_vector_notifier()), before a
 *                pending message is sent on unmask.  @masked: it cannot
 *                be sent now.  Return 0 when the vector's notifier now
 *                delivers (@address, @data), a negative errno to have the
 *                vector sent through @msi until the next call returns 0.
 *                Runs under the PCI interrupt lock on the thread that
 *                made the change (usually a vCPU): it must not call into
 *                this transport or its PCI function.  Optional; without
 *                it a vector's notifier is used whenever the vector is
 *                unmasked.
 * @msix_opaque:  its argument.
 */
struct virtio_pci_config {
	uint16_t msix_vectors;
	uint16_t subsystem_vendor_id;
	uint16_t subsystem_id;
	uint32_t class_code;
	struct msi_sink msi;
	struct irq_line intx;
	void (*notify_remap)(void *opaque, bool mapped, uint64_t notify_base);
	void *remap_opaque;
	int (*msix_update)(void *opaque, uint16_t vector, uint64_t address,
			   uint32_t data, bool masked);
	void *msix_opaque;
};

/**
 * virtio_pci_create() - a virtio-pci function for @vdev.
 * @vdev: the device; not owned, must outlive the transport.  A device has
 *        at most one transport.
 * @cfg:  options (copied), NULL for defaults.
 * @out:  receives the transport, owned by the caller.
 * The PCI function (virtio_pci_pci_device()) is owned by the transport
 * until virtio_pci_add_to_root() succeeds.
 * Errors: -EINVAL (NULL @vdev / @out), -EBUSY (@vdev has a transport),
 * -ENOMEM, PCI framework errors.
 */
CVMM_EXPORT int virtio_pci_create(struct virtio_device *vdev,
				  const struct virtio_pci_config *cfg,
				  struct virtio_pci **out);

/**
 * virtio_pci_destroy() - detach from the device and free the transport.
 * If the function was added to a root, remove it first
 * (pci_root_remove_device() or pci_root_destroy()): the root frees the PCI
 * function; otherwise the transport frees it here.  NULL is fine.
 */
CVMM_EXPORT void virtio_pci_destroy(struct virtio_pci *vp);

/** virtio_pci_pci_device() - the PCI function (for pci_device_* calls). */
CVMM_EXPORT struct pci_device *virtio_pci_pci_device(struct virtio_pci *vp);

/**
 * virtio_pci_add_to_root() - pci_root_add_device(@root, function, @slot,
 * @fn): the root owns the function from then on.  On error the transport
 * still owns it.  Errors: as pci_root_add_device(), -EINVAL, -EEXIST
 * (already added).
 */
CVMM_EXPORT int virtio_pci_add_to_root(struct virtio_pci *vp,
				       struct pci_root *root, unsigned slot,
				       unsigned fn);

/**
 * virtio_pci_queue_notify_addr() - the guest address where the driver
 * notifies queue @queue (register an ioeventfd there with
 * virtio_device_queue_notifier()'s fd, 2 or 4 bytes, no datamatch).
 * Errors: -EINVAL (bad queue), -ENODEV (the BAR does not decode now).
 */
CVMM_EXPORT int virtio_pci_queue_notify_addr(struct virtio_pci *vp,
					     uint32_t queue, uint64_t *addr);

/**
 * virtio_pci_set_vector_notifier() - send MSI-X vector @vector by
 * signalling @n (an irqfd) instead of calling the MSI sink, while the
 * config's @msix_update last returned 0 for it; NULL reverts to the sink.
 * @n is not owned and must stay valid until replaced or the transport's
 * function is freed.  Calls @msix_update for @vector before returning.
 * Errors: -EINVAL (NULL @vp, @vector >= virtio_pci_num_vectors()).
 * Threads: any, also while the guest runs.
 */
CVMM_EXPORT int virtio_pci_set_vector_notifier(struct virtio_pci *vp,
					       uint16_t vector,
					       struct event_notifier *n);

/** virtio_pci_num_vectors() - the MSI-X table size; -EINVAL for NULL. */
CVMM_EXPORT int virtio_pci_num_vectors(const struct virtio_pci *vp);

/** virtio_pci_device() - the virtio device the transport serves. */
CVMM_EXPORT struct virtio_device *virtio_pci_device(struct virtio_pci *vp);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_PCI_H */
