/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-mmio transport, version 2 (virtio 1.2, 4.2).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_mmio.h>

#include "cvmm/devices/virtio-mmio.h"
#include "virtio-internal.h"

#define MMIO_MAGIC 0x74726976u /* "virt" */

struct virtio_mmio {
	struct virtio_device *vdev;
	struct virtio_mmio_config cfg;
	uint32_t num_queues;
	uint64_t size;

	/* Under the device lock. */
	uint32_t dfsel;
	uint32_t gfsel;
	uint32_t qsel;

	/* InterruptStatus and the line level: the interrupt lock. */
	pthread_mutex_t irq_lock;
	uint32_t isr;
};

static uint32_t get32(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

static void put32(void *p, uint32_t v)
{
	uint8_t *b = p;

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static void raise_isr(struct virtio_mmio *m, uint32_t bits)
{
	pthread_mutex_lock(&m->irq_lock);
	m->isr |= bits;
	irq_line_set(&m->cfg.irq, true);
	pthread_mutex_unlock(&m->irq_lock);
}

static void tr_queue_interrupt(void *t, uint16_t queue)
{
	(void)queue;
	raise_isr(t, VIRTIO_MMIO_INT_VRING);
}

static void tr_config_interrupt(void *t)
{
	raise_isr(t, VIRTIO_MMIO_INT_CONFIG);
}

static void tr_reset(void *t)
{
	struct virtio_mmio *m = t;

	m->dfsel = 0;
	m->gfsel = 0;
	m->qsel = 0;
	pthread_mutex_lock(&m->irq_lock);
	if (m->isr)
		irq_line_set(&m->cfg.irq, false);
	m->isr = 0;
	pthread_mutex_unlock(&m->irq_lock);
}

static const struct virtio_transport_ops tr_ops = {
	.queue_interrupt = tr_queue_interrupt,
	.config_interrupt = tr_config_interrupt,
	.reset = tr_reset,
};

static bool area_reg(uint64_t off, enum virtq_area *area, bool *hi)
{
	switch (off) {
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		*area = VIRTQ_AREA_DESC;
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		*area = VIRTQ_AREA_AVAIL;
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		*area = VIRTQ_AREA_USED;
		break;
	default:
		return false;
	}
	*hi = off & 4;
	return true;
}

static uint32_t reg_read(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_device *d = m->vdev;
	bool qok;
	uint32_t v;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return virtio_device_id(d);
	case VIRTIO_MMIO_VENDOR_ID:
		return m->cfg.vendor_id ? m->cfg.vendor_id : 0x1af4;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		pthread_mutex_lock(&m->irq_lock);
		v = m->isr;
		pthread_mutex_unlock(&m->irq_lock);
		return v;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffffu; /* no shared memory region (4.2.2) */
	}
	virtio_device_lock(d);
	qok = m->qsel < m->num_queues;
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES:
		v = virtio_device_feature_page_locked(d, m->dfsel);
		break;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		v = qok ? virtio_device_queue_max_locked(d, m->qsel) : 0;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		v = qok ? virtio_device_queue_enabled_locked(d, m->qsel) : 0;
		break;
	case VIRTIO_MMIO_STATUS:
		v = virtio_device_status(d);
		break;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		v = virtio_device_config_generation(d);
		break;
	default:
		/* Write-only and reserved registers read 0. */
		v = 0;
	}
	virtio_device_unlock(d);
	return v;
}

static void reg_write(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_device *d = m->vdev;
	enum virtq_area area;
	bool hi;

	if (off == VIRTIO_MMIO_QUEUE_NOTIFY) {
		/* The value is the queue index (no NOTIFICATION_DATA). */
		virtio_device_notify(d, v & 0xffff);
		return;
	}
	if (off == VIRTIO_MMIO_INTERRUPT_ACK) {
		pthread_mutex_lock(&m->irq_lock);
		if (m->isr && !(m->isr & ~v))
			irq_line_set(&m->cfg.irq, false);
		m->isr &= ~v;
		pthread_mutex_unlock(&m->irq_lock);
		return;
	}
	virtio_device_lock(d);
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		m->dfsel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		virtio_device_set_driver_page_locked(d, m->gfsel, v);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		m->gfsel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		m->qsel = v;
		break;
	case VIRTIO_MMIO_STATUS:
		virtio_device_set_status_locked(d, (uint8_t)v);
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (m->qsel < m->num_queues)
			virtio_device_queue_set_size_locked(d, m->qsel, v);
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (m->qsel < m->num_queues && v <= 1)
			virtio_device_queue_set_enable_locked(d, m->qsel,
							      v == 1);
		break;
	default:
		if (m->qsel < m->num_queues && area_reg(off, &area, &hi))
			virtio_device_queue_set_addr_locked(d, m->qsel, area,
							    hi, v);
		/* Read-only and reserved registers: ignored. */
	}
	virtio_device_unlock(d);
}

void virtio_mmio_read(struct virtio_mmio *m, uint64_t offset, void *data,
		      unsigned size)
{
	memset(data, 0, size);
	if (!m || offset >= m->size || size > m->size - offset)
		return;
	if (offset >= VIRTIO_MMIO_CONFIG) {
		virtio_device_lock(m->vdev);
		virtio_device_config_read_locked(
			m->vdev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG), data,
			size);
		virtio_device_unlock(m->vdev);
		return;
	}
	if (size != 4 || (offset & 3))
		return; /* control registers: aligned 32-bit only */
	put32(data, reg_read(m, offset));
}

void virtio_mmio_write(struct virtio_mmio *m, uint64_t offset, const void *data,
		       unsigned size)
{
	if (!m || offset >= m->size || size > m->size - offset)
		return;
	if (offset >= VIRTIO_MMIO_CONFIG) {
		virtio_device_lock(m->vdev);
		virtio_device_config_write_locked(
			m->vdev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG), data,
			size);
		virtio_device_unlock(m->vdev);
		return;
	}
	if (size != 4 || (offset & 3))
		return;
	reg_write(m, offset, get32(data));
}

static void bus_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	virtio_mmio_read(opaque, offset, data, size);
}

static void bus_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	virtio_mmio_write(opaque, offset, data, size);
}

static const struct io_bus_ops mmio_bus_ops = {
	.read = bus_read,
	.write = bus_write,
};

const struct io_bus_ops *virtio_mmio_bus_ops(void)
{
	return &mmio_bus_ops;
}

int virtio_mmio_create(struct virtio_device *vdev,
		       const struct virtio_mmio_config *cfg,
		       struct virtio_mmio **out)
{
	struct virtio_mmio *m;
	uint64_t cs;
	int ret;

	if (!vdev || !out)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (cfg)
		m->cfg = *cfg;
	m->vdev = vdev;
	m->num_queues = virtio_device_num_queues(vdev);
	cs = virtio_device_config_size(vdev);
	m->size = cs <= 0x100 ? 0x200 : 0x100 + ((cs + 0xfff) & ~0xfffull);
	pthread_mutex_init(&m->irq_lock, NULL);
	ret = virtio_device_set_transport(vdev, &tr_ops, m);
	if (ret) {
		pthread_mutex_destroy(&m->irq_lock);
		free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	if (!m)
		return;
	virtio_device_set_transport(m->vdev, NULL, NULL);
	pthread_mutex_destroy(&m->irq_lock);
	free(m);
}

uint64_t virtio_mmio_size(const struct virtio_mmio *m)
{
	return m ? m->size : 0;
}

struct virtio_device *virtio_mmio_device(struct virtio_mmio *m)
{
	return m ? m->vdev : NULL;
}

int virtio_mmio_cmdline(char *buf, size_t cap, uint64_t size, uint64_t base,
			unsigned irq)
{
	int n;

	if ((!buf && cap) || !size)
		return -EINVAL;
	n = snprintf(buf, cap, "virtio_mmio.device=0x%llx@0x%llx:%u",
		     (unsigned long long)size, (unsigned long long)base, irq);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= cap) {
		if (cap)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return n;
}
