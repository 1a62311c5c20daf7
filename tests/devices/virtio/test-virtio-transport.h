/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The transport half of a device test's guest driver: register accesses
 * through virtio-mmio v2 or through a virtio-pci function's BAR (modern
 * common configuration), the status byte, feature negotiation, notifies
 * and queue setup with libvirtio-queue's mock driver.  Header-only, for
 * Check tests (failures are Check assertions); shared by the virtio-console
 * and virtio-vsock tests.
 */
#ifndef CVMM_TESTS_VIRTIO_TRANSPORT_H
#define CVMM_TESTS_VIRTIO_TRANSPORT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>

#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

enum {
	TP_MMIO = 0,
	TP_PCI = 1
};

/* The device as the guest reaches it: @mmio with TP_MMIO, the PCI
 * function @pd (its VIRTIO_PCI_BAR) with TP_PCI. */
struct vt_transport {
	int tp;
	struct virtio_mmio *mmio;
	struct pci_device *pd;
};

/* Offset of a field of the virtio-pci common configuration in the BAR. */
#define CC(f) \
	(VIRTIO_PCI_COMMON_OFFSET + offsetof(struct virtio_pci_common_cfg, f))

static inline void vt_mmio_w32(const struct vt_transport *t, uint32_t off,
			       uint32_t v)
{
	virtio_mmio_write(t->mmio, off, &v, 4);
}

static inline uint32_t vt_mmio_r32(const struct vt_transport *t, uint32_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(t->mmio, off, &v, 4);
	return v;
}

static inline void vt_bar_w(const struct vt_transport *t, uint32_t off,
			    uint64_t v, unsigned len)
{
	ck_assert_int_eq(
		pci_device_bar_write(t->pd, VIRTIO_PCI_BAR, off, &v, len), 0);
}

static inline uint64_t vt_bar_r(const struct vt_transport *t, uint32_t off,
				unsigned len)
{
	uint64_t v = 0;

	ck_assert_int_eq(
		pci_device_bar_read(t->pd, VIRTIO_PCI_BAR, off, &v, len), 0);
	return v;
}

/*
 * Put @vdev behind the transport @tp: a virtio-mmio device (t->mmio; its
 * DeviceID must read @device_id), or a virtio-pci function (*@pci, t->pd)
 * with its BAR at 0xe0000000 and memory decoding and bus mastering on.
 * The caller destroys t->mmio or *@pci.
 */
static inline void vt_attach(struct vt_transport *t, int tp,
			     struct virtio_device *vdev, uint32_t device_id,
			     struct virtio_pci **pci)
{
	t->tp = tp;
	if (tp == TP_MMIO) {
		ck_assert_int_eq(virtio_mmio_create(vdev, NULL, &t->mmio), 0);
		ck_assert_uint_eq(vt_mmio_r32(t, VIRTIO_MMIO_DEVICE_ID),
				  device_id);
	} else {
		uint32_t cmd = 0;

		ck_assert_int_eq(virtio_pci_create(vdev, NULL, pci), 0);
		t->pd = virtio_pci_pci_device(*pci);
		ck_assert_int_eq(pci_device_config_write(t->pd, 0x10, 4,
							 0xe0000000u),
				 0);
		ck_assert_int_eq(pci_device_config_write(t->pd, 0x14, 4, 0), 0);
		ck_assert_int_eq(pci_device_config_read(t->pd, 4, 2, &cmd), 0);
		ck_assert_int_eq(pci_device_config_write(t->pd, 4, 2, cmd | 2),
				 0);
	}
}

static inline void vt_status(const struct vt_transport *t, uint8_t s)
{
	if (t->tp == TP_MMIO)
		vt_mmio_w32(t, VIRTIO_MMIO_STATUS, s);
	else
		vt_bar_w(t, CC(device_status), s, 1);
}

static inline uint8_t vt_get_status(const struct vt_transport *t)
{
	if (t->tp == TP_MMIO)
		return (uint8_t)vt_mmio_r32(t, VIRTIO_MMIO_STATUS);
	return (uint8_t)vt_bar_r(t, CC(device_status), 1);
}

/* The 64 feature bits the device offers. */
static inline uint64_t vt_device_features(const struct vt_transport *t)
{
	uint64_t f = 0;

	for (uint32_t page = 0; page < 2; page++) {
		uint32_t v;

		if (t->tp == TP_MMIO) {
			vt_mmio_w32(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, page);
			v = vt_mmio_r32(t, VIRTIO_MMIO_DEVICE_FEATURES);
		} else {
			vt_bar_w(t, CC(device_feature_select), page, 4);
			v = (uint32_t)vt_bar_r(t, CC(device_feature), 4);
		}
		f |= (uint64_t)v << (32 * page);
	}
	return f;
}

/* Write the 64 feature bits the driver accepts. */
static inline void vt_driver_features(const struct vt_transport *t, uint64_t f)
{
	for (uint32_t page = 0; page < 2; page++) {
		uint32_t v = (uint32_t)(f >> (32 * page));

		if (t->tp == TP_MMIO) {
			vt_mmio_w32(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, page);
			vt_mmio_w32(t, VIRTIO_MMIO_DRIVER_FEATURES, v);
		} else {
			vt_bar_w(t, CC(guest_feature_select), page, 4);
			vt_bar_w(t, CC(guest_feature), v, 4);
		}
	}
}

static inline void vt_notify(const struct vt_transport *t, uint32_t q)
{
	if (t->tp == TP_MMIO)
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	else
		vt_bar_w(t,
			 VIRTIO_PCI_NOTIFY_OFFSET + q * VIRTIO_PCI_NOTIFY_MULT,
			 q, 2);
}

/*
 * Queue @q of @size with a mock driver (*@drv, features @features) whose
 * rings are laid out at *@next_ring in @mem (advanced past them, to the
 * next 4 KiB), programmed through the transport and enabled; asserts the
 * device's maximum allows @size and that the queue reads back ready.
 */
static inline void vt_setup_queue(const struct vt_transport *t,
				  struct guest_memory *mem, uint32_t q,
				  uint32_t size, uint64_t features,
				  guest_addr_t *next_ring,
				  struct virtq_driver **drv)
{
	guest_addr_t d, a, u;
	uint64_t total;

	total = virtq_driver_layout(size, *next_ring, &d, &a, &u);
	*next_ring += (total + 4095) & ~4095ull;
	ck_assert_int_eq(virtq_driver_create(mem, size, features, d, a, u, drv),
			 0);
	if (t->tp == TP_MMIO) {
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_SEL, q);
		ck_assert_uint_ge(vt_mmio_r32(t, VIRTIO_MMIO_QUEUE_NUM_MAX),
				  size);
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_NUM, size);
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d);
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_DESC_HIGH,
			    (uint32_t)(d >> 32));
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a);
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
			    (uint32_t)(a >> 32));
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)u);
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_USED_HIGH,
			    (uint32_t)(u >> 32));
		vt_mmio_w32(t, VIRTIO_MMIO_QUEUE_READY, 1);
		ck_assert_uint_eq(vt_mmio_r32(t, VIRTIO_MMIO_QUEUE_READY), 1);
	} else {
		vt_bar_w(t, CC(queue_select), q, 2);
		ck_assert_uint_ge(vt_bar_r(t, CC(queue_size), 2), size);
		vt_bar_w(t, CC(queue_size), size, 2);
		vt_bar_w(t, CC(queue_desc_lo), (uint32_t)d, 4);
		vt_bar_w(t, CC(queue_desc_hi), (uint32_t)(d >> 32), 4);
		vt_bar_w(t, CC(queue_avail_lo), (uint32_t)a, 4);
		vt_bar_w(t, CC(queue_avail_hi), (uint32_t)(a >> 32), 4);
		vt_bar_w(t, CC(queue_used_lo), (uint32_t)u, 4);
		vt_bar_w(t, CC(queue_used_hi), (uint32_t)(u >> 32), 4);
		vt_bar_w(t, CC(queue_enable), 1, 2);
		ck_assert_uint_eq(vt_bar_r(t, CC(queue_enable), 2), 1);
	}
}

#endif
