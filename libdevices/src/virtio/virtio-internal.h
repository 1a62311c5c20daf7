/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio device core: the interface between the core (core.c) and the
 * transports (virtio-pci.c, virtio-mmio.c) inside libdevices.
 *
 * A transport serialises its register file with the device lock: it calls
 * virtio_device_lock(), the *_locked functions below, then
 * virtio_device_unlock() (which sends the interrupts raised meanwhile
 * through the transport's callbacks, outside the lock).
 */
#ifndef CVMM_DEVICES_VIRTIO_INTERNAL_H
#define CVMM_DEVICES_VIRTIO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/devices/virtio.h"

/** Interrupt delivery and transport reset, provided by a transport. */
struct virtio_transport_ops {
	/** Send queue @queue's interrupt.  Called without the device lock. */
	void (*queue_interrupt)(void *t, uint16_t queue);
	/** Send a configuration-change interrupt.  Without the device lock. */
	void (*config_interrupt)(void *t);
	/** Device reset: clear the transport's own state (selectors, vectors,
	 *  interrupt status).  Called with the device lock held. */
	void (*reset)(void *t);
};

/** Attach (ops != NULL) or detach (NULL) the transport.  -EBUSY when
 *  another one is attached.  Takes the lock. */
int virtio_device_set_transport(struct virtio_device *dev,
				const struct virtio_transport_ops *ops,
				void *t);

/**
 * The transport's direct interrupt fd of queue @q changed to @fd (-1:
 * none): an eventfd whose signal raises the queue's interrupt with no
 * VMM thread (the irqfd of the queue's MSI-X vector while the vector is
 * unmasked and its route current).  Stored, then the device type's
 * watcher is called (virtio_device_set_irq_fd_watcher()) when it
 * changed.  A transport serialises its calls (one lock around the store
 * and the call), so the watcher sees the changes in order.  Any context
 * but the poll lock; detaching the transport sets every queue's to -1.
 */
void virtio_device_set_queue_irq_fd(struct virtio_device *dev, uint32_t q,
				    int fd);

/** The ops table given at creation (lets a device type recognise its own
 *  devices).  Any context. */
const struct virtio_device_ops *
virtio_device_ops_of(const struct virtio_device *dev);

/* Everything below: (locked). */

/** Offered features, 32 bits of page @page (0 past page 1). */
uint32_t virtio_device_feature_page_locked(struct virtio_device *dev,
					   uint32_t page);
/** Driver features page @page as written (0 past page 1). */
uint32_t virtio_device_driver_page_locked(struct virtio_device *dev,
					  uint32_t page);
/** Driver writes page @page of its features; ignored after FEATURES_OK,
 *  before DRIVER and past page 1. */
void virtio_device_set_driver_page_locked(struct virtio_device *dev,
					  uint32_t page, uint32_t value);
/** Driver writes the status byte (0 = reset). */
void virtio_device_set_status_locked(struct virtio_device *dev, uint8_t val);

/** Driver config-space access; out of range: reads 0, writes ignored. */
void virtio_device_config_read_locked(struct virtio_device *dev,
				      uint32_t offset, void *data,
				      unsigned len);
void virtio_device_config_write_locked(struct virtio_device *dev,
				       uint32_t offset, const void *data,
				       unsigned len);
uint32_t virtio_device_config_size(const struct virtio_device *dev);

/** Queue registers; @q must be < num_queues (transports check). */
uint32_t virtio_device_queue_max_locked(struct virtio_device *dev, uint32_t q);
uint32_t virtio_device_queue_size_locked(struct virtio_device *dev, uint32_t q);
/** Sets the size (ignored while enabled); a refused size is remembered and
 *  makes the later enable fail (NEEDS_RESET). */
void virtio_device_queue_set_size_locked(struct virtio_device *dev, uint32_t q,
					 uint32_t size);
/** Low (@hi false) or high 32 bits of @area; ignored while enabled. */
void virtio_device_queue_set_addr_locked(struct virtio_device *dev, uint32_t q,
					 enum virtq_area area, bool hi,
					 uint32_t value);
uint32_t virtio_device_queue_addr_locked(struct virtio_device *dev, uint32_t q,
					 enum virtq_area area, bool hi);
/** Enable (validates the rings; failure sets NEEDS_RESET) or disable. */
void virtio_device_queue_set_enable_locked(struct virtio_device *dev,
					   uint32_t q, bool enable);
bool virtio_device_queue_enabled_locked(struct virtio_device *dev, uint32_t q);

#endif /* CVMM_DEVICES_VIRTIO_INTERNAL_H */
