/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: the virtio-mmio transport, version 2 (virtio 1.2, 4.2), for
 * a struct virtio_device, on an io_bus.
 *
 * The register window is virtio_mmio_size() bytes: the control registers
 * at 0x000..0x0ff (magic "virt", version 2, device and vendor id, feature
 * pages, queue registers, interrupt status/ack, status, shared memory
 * registers reporting no region, config generation) and the device
 * configuration from 0x100.  Control registers accept only aligned 32-bit
 * accesses (4.2.2.2); anything else reads 0 and is ignored.  QueueSel may
 * hold any value; while it names no queue QueueNumMax and the other queue
 * registers read 0 and writes are ignored.  Queue registers are read-only
 * while QueueReady is 1; writing QueueReady 0 disables the queue.
 * Notifications: QueueNotify (offset VIRTIO_MMIO_NOTIFY_OFFSET) with the
 * queue index as the value; a VMM may register one ioeventfd per queue
 * there with datamatch = index (virtio_device_queue_notifier()).
 *
 * Interrupts: InterruptStatus bit 0 (used buffer) and bit 1 (config
 * change); the line is level-triggered, asserted while InterruptStatus is
 * non-zero, and InterruptACK clears the written bits.
 *
 * Threads: as virtio-pci.h.
 */
#ifndef CVMM_DEVICES_VIRTIO_MMIO_H
#define CVMM_DEVICES_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_mmio;

/** Offset of QueueNotify in the window. */
#define VIRTIO_MMIO_NOTIFY_OFFSET 0x050u

/**
 * struct virtio_mmio_config - options; zeroed (or NULL) for defaults.
 * @irq:       the interrupt line (level).  Zeroed: not connected.
 * @vendor_id: the VendorID register; 0: 0x1af4.
 */
struct virtio_mmio_config {
	struct irq_line irq;
	uint32_t vendor_id;
};

/**
 * virtio_mmio_create() - a virtio-mmio v2 transport for @vdev (not owned,
 * must outlive it; a device has at most one transport).  @cfg copied.
 * Register the window with io_bus_register(bus, base, virtio_mmio_size(m),
 * virtio_mmio_bus_ops(), m).
 * Errors: -EINVAL, -EBUSY (@vdev has a transport), -ENOMEM.
 */
CVMM_EXPORT int virtio_mmio_create(struct virtio_device *vdev,
				   const struct virtio_mmio_config *cfg,
				   struct virtio_mmio **out);

/** virtio_mmio_destroy() - detach and free; unregister the window from
 *  the bus first.  NULL is fine. */
CVMM_EXPORT void virtio_mmio_destroy(struct virtio_mmio *m);

/** virtio_mmio_size() - bytes of the register window: 0x200, or 0x100
 *  plus the config size rounded up to 4 KiB when that is larger. */
CVMM_EXPORT uint64_t virtio_mmio_size(const struct virtio_mmio *m);

/** virtio_mmio_bus_ops() - the io_bus callbacks (opaque = the transport). */
CVMM_EXPORT const struct io_bus_ops *virtio_mmio_bus_ops(void);

/** virtio_mmio_read() / virtio_mmio_write() - one access at @offset, as
 *  the bus delivers it (size 1, 2, 4 or 8). */
CVMM_EXPORT void virtio_mmio_read(struct virtio_mmio *m, uint64_t offset,
				  void *data, unsigned size);
CVMM_EXPORT void virtio_mmio_write(struct virtio_mmio *m, uint64_t offset,
				   const void *data, unsigned size);

/** virtio_mmio_device() - the virtio device the transport serves. */
CVMM_EXPORT struct virtio_device *virtio_mmio_device(struct virtio_mmio *m);

/**
 * virtio_mmio_cmdline() - format the kernel argument that declares a
 * virtio-mmio device, "virtio_mmio.device=<size>@<base>:<irq>" (size and
 * base in hex), into @buf of @cap bytes, NUL-terminated.
 * Returns the length written (without the NUL), -ENOSPC when @cap is too
 * small (nothing useful written; @buf holds "" if @cap > 0), -EINVAL
 * (NULL @buf with @cap > 0, size 0).
 */
CVMM_EXPORT int virtio_mmio_cmdline(char *buf, size_t cap, uint64_t size,
				    uint64_t base, unsigned irq);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_MMIO_H */
