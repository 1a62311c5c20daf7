/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-pci modern transport (virtio 1.2, 4.1): capabilities, the common
 * configuration register file, ISR, device configuration, notifications,
 * the PCI configuration access window, MSI-X vectors and INTx.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_pci.h>

#include "../le-bytes.h"
#include "cvmm/devices/virtio-pci.h"
#include "virtio-internal.h"

#define CAP_LEN	    16u /* struct virtio_pci_cap */
#define PCICFG_LEN  20u /* struct virtio_pci_cfg_cap */
#define VENDOR_ID   0x1af4u
#define DEVICE_BASE 0x1040u

struct virtio_pci {
	struct virtio_device *vdev;
	struct pci_device *pci;
	bool added;
	struct virtio_pci_config cfg;
	uint32_t num_queues;
	uint16_t nvec;
	uint32_t config_size;

	/* Under the device lock. */
	uint32_t dfselect;
	uint32_t gfselect;
	uint16_t queue_select;

	/* Read by the interrupt path without the device lock. */
	_Atomic uint16_t config_vector;
	_Atomic uint16_t *queue_vector;

	/* Direct interrupt fds (virtio_device_queue_irq_fd()): per vector
	 * the VMM's notifier and the fd usable now (-1: masked, no route, no
	 * notifier).  The route lock serialises them with the queue vectors'
	 * writes; taken under the device lock or the PCI interrupt lock,
	 * then only the device type's watcher runs. */
	pthread_mutex_t route_lock;
	struct event_notifier **vec_notifier;
	int *vec_fd;

	/* ISR and INTx level: the interrupt lock (a leaf below the device
	 * lock). */
	pthread_mutex_t irq_lock;
	uint8_t isr;

	/* Decoded BAR address (notify addresses). */
	_Atomic bool bar_mapped;
	_Atomic uint64_t bar_addr;

	/* VIRTIO_PCI_CAP_PCI_CFG window: config offset and shadow. */
	uint8_t pcicfg_off;
	uint8_t pcicfg[PCICFG_LEN];
};

/* -------------------------------------------------------- interrupts */

static void set_isr(struct virtio_pci *vp, uint8_t bit)
{
	pthread_mutex_lock(&vp->irq_lock);
	vp->isr |= bit;
	pci_device_set_intx(vp->pci, true);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void send_vector(struct virtio_pci *vp, uint16_t vector, uint8_t isr)
{
	/* Try the vector first: the common case costs one call.  -EAGAIN
	 * means MSI-X is off (or bus mastering is): only then may INTx be
	 * used. */
	if (vector != VIRTIO_MSI_NO_VECTOR && vector < vp->nvec &&
	    pci_device_msix_notify(vp->pci, vector) != -EAGAIN)
		return;
	if (pci_device_msix_enabled(vp->pci) == 1)
		return; /* NO_VECTOR, or bus mastering off: nothing is sent */
	set_isr(vp, isr);
}

static void tr_queue_interrupt(void *t, uint16_t queue)
{
	struct virtio_pci *vp = t;

	if (queue >= vp->num_queues)
		return;
	send_vector(vp, atomic_load(&vp->queue_vector[queue]), 1);
}

static void tr_config_interrupt(void *t)
{
	struct virtio_pci *vp = t;

	send_vector(vp, atomic_load(&vp->config_vector), 2);
}

/* Queues @first..@end-1 use vector @v (route lock taken here). */
static void set_queue_vectors(struct virtio_pci *vp, uint32_t first,
			      uint32_t end, uint16_t v)
{
	pthread_mutex_lock(&vp->route_lock);
	for (uint32_t q = first; q < end; q++) {
		atomic_store(&vp->queue_vector[q], v);
		virtio_device_set_queue_irq_fd(
			vp->vdev, q, v < vp->nvec ? vp->vec_fd[v] : -1);
	}
	pthread_mutex_unlock(&vp->route_lock);
}

/* Vector @v is delivered by signalling @fd now (-1: not). */
static void set_vector_fd(struct virtio_pci *vp, uint16_t v, int fd)
{
	pthread_mutex_lock(&vp->route_lock);
	if (vp->vec_fd[v] != fd) {
		vp->vec_fd[v] = fd;
		for (uint32_t q = 0; q < vp->num_queues; q++)
			if (atomic_load(&vp->queue_vector[q]) == v)
				virtio_device_set_queue_irq_fd(vp->vdev, q, fd);
	}
	pthread_mutex_unlock(&vp->route_lock);
}

static void tr_reset(void *t)
{
	struct virtio_pci *vp = t;

	vp->dfselect = 0;
	vp->gfselect = 0;
	vp->queue_select = 0;
	atomic_store(&vp->config_vector, VIRTIO_MSI_NO_VECTOR);
	set_queue_vectors(vp, 0, vp->num_queues, VIRTIO_MSI_NO_VECTOR);
	pthread_mutex_lock(&vp->irq_lock);
	vp->isr = 0;
	pci_device_set_intx(vp->pci, false);
	pthread_mutex_unlock(&vp->irq_lock);
}

static const struct virtio_transport_ops tr_ops = {
	.queue_interrupt = tr_queue_interrupt,
	.config_interrupt = tr_config_interrupt,
	.reset = tr_reset,
};

/* ------------------------------------------------ common configuration */

/* Width of the field at @off (0 for a hole); 64-bit addresses count as
 * 32-bit halves here and accept an aligned 8-byte access separately. */
static unsigned common_width(uint32_t off)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_GFSELECT:
	case VIRTIO_PCI_COMMON_GF:
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return 4;
	case VIRTIO_PCI_COMMON_MSIX:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_Q_SELECT:
	case VIRTIO_PCI_COMMON_Q_SIZE:
	case VIRTIO_PCI_COMMON_Q_MSIX:
	case VIRTIO_PCI_COMMON_Q_ENABLE:
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return 2;
	case VIRTIO_PCI_COMMON_STATUS:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return 1;
	default:
		return 0;
	}
}

static bool is_addr_lo(uint32_t off)
{
	return off == VIRTIO_PCI_COMMON_Q_DESCLO ||
	       off == VIRTIO_PCI_COMMON_Q_AVAILLO ||
	       off == VIRTIO_PCI_COMMON_Q_USEDLO;
}

static enum virtq_area addr_area(uint32_t off)
{
	if (off < VIRTIO_PCI_COMMON_Q_AVAILLO)
		return VIRTQ_AREA_DESC;
	if (off < VIRTIO_PCI_COMMON_Q_USEDLO)
		return VIRTQ_AREA_AVAIL;
	return VIRTQ_AREA_USED;
}

static uint16_t check_vector(const struct virtio_pci *vp, uint16_t v)
{
	return v < vp->nvec ? v : VIRTIO_MSI_NO_VECTOR;
}

/* Read one field (width already checked); device lock held. */
static uint32_t common_read_field(struct virtio_pci *vp, uint32_t off)
{
	struct virtio_device *d = vp->vdev;
	uint32_t q = vp->queue_select;
	bool qok = q < vp->num_queues;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		return vp->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return virtio_device_feature_page_locked(d, vp->dfselect);
	case VIRTIO_PCI_COMMON_GFSELECT:
		return vp->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return virtio_device_driver_page_locked(d, vp->gfselect);
	case VIRTIO_PCI_COMMON_MSIX:
		return atomic_load(&vp->config_vector);
	case VIRTIO_PCI_COMMON_NUMQ:
		return vp->num_queues;
	case VIRTIO_PCI_COMMON_STATUS:
		return virtio_device_status(d);
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return virtio_device_config_generation(d) & 0xff;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		return vp->queue_select;
	}
	if (!qok)
		return 0; /* no such queue: every queue field reads 0 */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		return virtio_device_queue_size_locked(d, q);
	case VIRTIO_PCI_COMMON_Q_MSIX:
		return atomic_load(&vp->queue_vector[q]);
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		return virtio_device_queue_enabled_locked(d, q);
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return q;
	default:
		return virtio_device_queue_addr_locked(d, q, addr_area(off),
						       !is_addr_lo(off));
	}
}

static void common_write_field(struct virtio_pci *vp, uint32_t off, uint32_t v)
{
	struct virtio_device *d = vp->vdev;
	uint32_t q = vp->queue_select;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vp->dfselect = v;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vp->gfselect = v;
		return;
	case VIRTIO_PCI_COMMON_GF:
		virtio_device_set_driver_page_locked(d, vp->gfselect, v);
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		atomic_store(&vp->config_vector, check_vector(vp, (uint16_t)v));
		return;
	case VIRTIO_PCI_COMMON_STATUS:
		virtio_device_set_status_locked(d, (uint8_t)v);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vp->queue_select = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return; /* read-only */
	}
	if (q >= vp->num_queues)
		return; /* no such queue: writes ignored */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		virtio_device_queue_set_size_locked(d, q, v);
		return;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		set_queue_vectors(vp, q, q + 1, check_vector(vp, (uint16_t)v));
		return;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		/* The driver never writes 0 (virtio 1.2, 4.1.4.3.2). */
		if (v == 1)
			virtio_device_queue_set_enable_locked(d, q, true);
		return;
	default:
		virtio_device_queue_set_addr_locked(d, q, addr_area(off),
						    !is_addr_lo(off), v);
	}
}

static void common_read(struct virtio_pci *vp, uint32_t off, uint8_t *data,
			unsigned len)
{
	unsigned w = common_width(off);

	memset(data, 0, len);
	if (len == 8 && is_addr_lo(off)) {
		virtio_device_lock(vp->vdev);
		put_le(data, 4, common_read_field(vp, off));
		put_le(data + 4, 4, common_read_field(vp, off + 4));
		virtio_device_unlock(vp->vdev);
		return;
	}
	if (!w || w != len)
		return; /* wrong size or a hole: reads 0 */
	virtio_device_lock(vp->vdev);
	put_le(data, len, common_read_field(vp, off));
	virtio_device_unlock(vp->vdev);
}

static void common_write(struct virtio_pci *vp, uint32_t off,
			 const uint8_t *data, unsigned len)
{
	unsigned w = common_width(off);

	if (len == 8 && is_addr_lo(off)) {
		virtio_device_lock(vp->vdev);
		common_write_field(vp, off, (uint32_t)get_le(data, 4));
		common_write_field(vp, off + 4, (uint32_t)get_le(data + 4, 4));
		virtio_device_unlock(vp->vdev);
		return;
	}
	if (!w || w != len)
		return; /* wrong size or a hole: ignored */
	virtio_device_lock(vp->vdev);
	common_write_field(vp, off, (uint32_t)get_le(data, len));
	virtio_device_unlock(vp->vdev);
}

/* ------------------------------------------------------------ the BAR */

static void bar_read(void *opaque, unsigned bar, uint64_t offset, void *data,
		     unsigned len)
{
	struct virtio_pci *vp = opaque;
	uint8_t *d = data;

	memset(d, 0, len);
	if (bar != VIRTIO_PCI_BAR)
		return;
	if (offset < VIRTIO_PCI_COMMON_OFFSET + VIRTIO_PCI_COMMON_CFG_SIZE) {
		if (offset + len <= VIRTIO_PCI_COMMON_CFG_SIZE)
			common_read(vp, (uint32_t)offset, d, len);
	} else if (offset == VIRTIO_PCI_ISR_OFFSET) {
		/* Reading the ISR clears it and deasserts INTx (4.1.4.5). */
		pthread_mutex_lock(&vp->irq_lock);
		d[0] = vp->isr;
		vp->isr = 0;
		pci_device_set_intx(vp->pci, false);
		pthread_mutex_unlock(&vp->irq_lock);
	} else if (offset >= VIRTIO_PCI_DEVICE_OFFSET &&
		   offset < VIRTIO_PCI_DEVICE_OFFSET +
				    VIRTIO_DEVICE_MAX_CONFIG) {
		virtio_device_lock(vp->vdev);
		virtio_device_config_read_locked(
			vp->vdev, (uint32_t)(offset - VIRTIO_PCI_DEVICE_OFFSET),
			d, len);
		virtio_device_unlock(vp->vdev);
	}
}

static void bar_write(void *opaque, unsigned bar, uint64_t offset,
		      const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	if (bar != VIRTIO_PCI_BAR)
		return;
	if (offset < VIRTIO_PCI_COMMON_OFFSET + VIRTIO_PCI_COMMON_CFG_SIZE) {
		if (offset + len <= VIRTIO_PCI_COMMON_CFG_SIZE)
			common_write(vp, (uint32_t)offset, data, len);
	} else if (offset >= VIRTIO_PCI_DEVICE_OFFSET &&
		   offset < VIRTIO_PCI_DEVICE_OFFSET +
				    VIRTIO_DEVICE_MAX_CONFIG) {
		virtio_device_lock(vp->vdev);
		virtio_device_config_write_locked(
			vp->vdev, (uint32_t)(offset - VIRTIO_PCI_DEVICE_OFFSET),
			data, len);
		virtio_device_unlock(vp->vdev);
	} else if (offset >= VIRTIO_PCI_NOTIFY_OFFSET &&
		   offset < VIRTIO_PCI_NOTIFY_OFFSET +
				    (uint64_t)vp->num_queues *
					    VIRTIO_PCI_NOTIFY_MULT &&
		   (offset - VIRTIO_PCI_NOTIFY_OFFSET) %
				   VIRTIO_PCI_NOTIFY_MULT ==
			   0 &&
		   (len == 2 || len == 4)) {
		virtio_device_notify(
			vp->vdev,
			(uint32_t)((offset - VIRTIO_PCI_NOTIFY_OFFSET) /
				   VIRTIO_PCI_NOTIFY_MULT));
	}
}

/* ------------------------------------------ PCI configuration window */

static bool pcicfg_access(struct virtio_pci *vp, uint32_t *bar, uint32_t *off,
			  unsigned *len)
{
	*bar = vp->pcicfg[VIRTIO_PCI_CAP_BAR];
	*off = (uint32_t)get_le(&vp->pcicfg[VIRTIO_PCI_CAP_OFFSET], 4);
	*len = (unsigned)get_le(&vp->pcicfg[VIRTIO_PCI_CAP_LENGTH], 4);
	/* One naturally aligned access of 1, 2 or 4 bytes in our BAR. */
	return *bar == VIRTIO_PCI_BAR &&
	       (*len == 1 || *len == 2 || *len == 4) && !(*off % *len) &&
	       *off < VIRTIO_PCI_MSIX_OFFSET;
}

static void cfg_read(void *opaque, uint32_t offset, unsigned len,
		     uint32_t *value)
{
	struct virtio_pci *vp = opaque;
	uint32_t data_off = vp->pcicfg_off + CAP_LEN, bar, off;
	unsigned n;
	uint8_t buf[4] = {0};

	if (offset != data_off)
		return;
	if (pcicfg_access(vp, &bar, &off, &n))
		bar_read(vp, bar, off, buf, n);
	*value = (uint32_t)get_le(buf, len < 4 ? len : 4);
}

static void cfg_write(void *opaque, uint32_t offset, unsigned len,
		      uint32_t value)
{
	struct virtio_pci *vp = opaque;
	uint32_t start = vp->pcicfg_off, bar, off;
	unsigned n;
	uint8_t buf[4];

	if (offset + len <= start || offset >= start + PCICFG_LEN)
		return;
	/* Shadow the writable fields: bar, offset, length. */
	for (unsigned i = 0; i < len; i++) {
		uint32_t idx = offset + i - start;

		if (offset + i < start || idx >= PCICFG_LEN)
			continue;
		if (idx == VIRTIO_PCI_CAP_BAR ||
		    (idx >= VIRTIO_PCI_CAP_OFFSET && idx < CAP_LEN))
			vp->pcicfg[idx] = (uint8_t)(value >> (8 * i));
	}
	if (offset != start + CAP_LEN || !pcicfg_access(vp, &bar, &off, &n))
		return;
	put_le(buf, 4, value);
	bar_write(vp, bar, off, buf, n);
}

static void bar_remap(void *opaque, unsigned bar, bool mapped, uint64_t addr,
		      uint64_t size)
{
	struct virtio_pci *vp = opaque;

	(void)size;
	if (bar != VIRTIO_PCI_BAR)
		return;
	atomic_store(&vp->bar_addr, addr);
	atomic_store(&vp->bar_mapped, mapped);
	if (vp->cfg.notify_remap)
		vp->cfg.notify_remap(vp->cfg.remap_opaque, mapped,
				     addr + VIRTIO_PCI_NOTIFY_OFFSET);
}

static int vp_msix_update(void *opaque, uint16_t vector, uint64_t address,
			  uint32_t data, bool masked)
{
	struct virtio_pci *vp = opaque;
	struct event_notifier *n;
	int ok = 0;

	if (vp->cfg.msix_update)
		ok = vp->cfg.msix_update(vp->cfg.msix_opaque, vector, address,
					 data, masked);
	/* What the PCI function will do (pci-msix.c): signal the notifier
	 * while unmasked and routed.  Told to the device type before the
	 * guest's write completes (a pending message is sent after this). */
	if (vector < vp->nvec) {
		pthread_mutex_lock(&vp->route_lock);
		n = vp->vec_notifier[vector];
		pthread_mutex_unlock(&vp->route_lock);
		set_vector_fd(vp, vector,
			      !masked && ok == 0 && n ? event_notifier_fd(n)
						      : -1);
	}
	return ok;
}

static const struct pci_device_ops vp_pci_ops = {
	.msix_update = vp_msix_update,
	.bar_read = bar_read,
	.bar_write = bar_write,
	.config_read = cfg_read,
	.config_write = cfg_write,
	.bar_remap = bar_remap,
};

/* ------------------------------------------------------------ creation */

static int add_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset,
		   uint32_t length, const uint8_t *extra, size_t extra_len,
		   const uint8_t *wmask, uint8_t *where)
{
	uint8_t cap[CAP_LEN + 4] = {0};

	cap[0] = PCI_CAP_ID_VNDR;
	cap[VIRTIO_PCI_CAP_LEN] = (uint8_t)(CAP_LEN + extra_len);
	cap[VIRTIO_PCI_CAP_CFG_TYPE] = type;
	cap[VIRTIO_PCI_CAP_BAR] = VIRTIO_PCI_BAR;
	put_le(&cap[VIRTIO_PCI_CAP_OFFSET], 4, offset);
	put_le(&cap[VIRTIO_PCI_CAP_LENGTH], 4, length);
	if (extra_len)
		memcpy(&cap[CAP_LEN], extra, extra_len);
	return pci_device_add_capability(vp->pci, cap, CAP_LEN + extra_len,
					 wmask, where);
}

static uint32_t default_class(uint32_t id)
{
	switch (id) {
	case 1:
		return 0x020000; /* network */
	case 2:
		return 0x010000; /* mass storage */
	case 3:
		return 0x078000; /* communication, other */
	default:
		return 0xff0000;
	}
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

int virtio_pci_create(struct virtio_device *vdev,
		      const struct virtio_pci_config *cfg,
		      struct virtio_pci **out)
{
	struct pci_device_info info = {0};
	struct virtio_pci *vp;
	uint32_t table_len, pba_off, pba_len;
	uint8_t wmask[PCICFG_LEN] = {0};
	uint8_t mult[4];
	int ret;

	if (!vdev || !out)
		return -EINVAL;
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	if (cfg)
		vp->cfg = *cfg;
	vp->vdev = vdev;
	vp->num_queues = virtio_device_num_queues(vdev);
	virtio_device_lock(vdev);
	vp->config_size = virtio_device_config_size(vdev);
	virtio_device_unlock(vdev);
	pthread_mutex_init(&vp->irq_lock, NULL);
	pthread_mutex_init(&vp->route_lock, NULL);
	vp->nvec = vp->cfg.msix_vectors;
	if (!vp->nvec)
		vp->nvec = (uint16_t)(vp->num_queues + 1);
	if (vp->nvec > PCI_MSIX_MAX_VECTORS)
		vp->nvec = PCI_MSIX_MAX_VECTORS;
	vp->queue_vector = calloc(vp->num_queues, sizeof(*vp->queue_vector));
	vp->vec_notifier = calloc(vp->nvec, sizeof(*vp->vec_notifier));
	vp->vec_fd = calloc(vp->nvec, sizeof(*vp->vec_fd));
	if (!vp->queue_vector || !vp->vec_notifier || !vp->vec_fd) {
		ret = -ENOMEM;
		goto fail;
	}
	for (uint16_t v = 0; v < vp->nvec; v++)
		vp->vec_fd[v] = -1;
	atomic_store(&vp->config_vector, VIRTIO_MSI_NO_VECTOR);
	for (uint32_t i = 0; i < vp->num_queues; i++)
		atomic_store(&vp->queue_vector[i], VIRTIO_MSI_NO_VECTOR);

	info.vendor_id = VENDOR_ID;
	info.device_id = (uint16_t)(DEVICE_BASE + virtio_device_id(vdev));
	info.subsystem_vendor_id = vp->cfg.subsystem_vendor_id
					   ? vp->cfg.subsystem_vendor_id
					   : VENDOR_ID;
	info.subsystem_id = vp->cfg.subsystem_id ? vp->cfg.subsystem_id
						 : 0x1100;
	info.revision = 1;
	info.class_code = vp->cfg.class_code
				  ? vp->cfg.class_code
				  : default_class(virtio_device_id(vdev));
	info.interrupt_pin = 1;
	ret = pci_device_create(&info, &vp_pci_ops, vp, &vp->pci);
	if (ret)
		goto fail;

	table_len = (uint32_t)vp->nvec * 16;
	pba_off = VIRTIO_PCI_MSIX_OFFSET + ((table_len + 0xfff) & ~0xfffu);
	pba_len = ((vp->nvec + 63u) / 64u) * 8u;
	ret = pci_device_add_bar(vp->pci, VIRTIO_PCI_BAR, PCI_BAR_KIND_MEM64,
				 false, pow2_at_least(pba_off + pba_len));
	if (ret)
		goto fail;
	ret = add_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFFSET,
		      VIRTIO_PCI_COMMON_CFG_SIZE, NULL, 0, NULL, NULL);
	if (!ret) {
		put_le(mult, 4, VIRTIO_PCI_NOTIFY_MULT);
		ret = add_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG,
			      VIRTIO_PCI_NOTIFY_OFFSET,
			      vp->num_queues * VIRTIO_PCI_NOTIFY_MULT, mult, 4,
			      NULL, NULL);
	}
	if (!ret)
		ret = add_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFFSET,
			      1, NULL, 0, NULL, NULL);
	if (!ret && vp->config_size)
		ret = add_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG,
			      VIRTIO_PCI_DEVICE_OFFSET, vp->config_size, NULL,
			      0, NULL, NULL);
	if (!ret) {
		/* bar, offset, length and data are driver-writable. */
		wmask[VIRTIO_PCI_CAP_BAR] = 0xff;
		memset(&wmask[VIRTIO_PCI_CAP_OFFSET], 0xff, 12);
		ret = add_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, (uint8_t[4]){0},
			      4, wmask, &vp->pcicfg_off);
	}
	if (!ret)
		ret = pci_device_add_msix(vp->pci, vp->nvec, VIRTIO_PCI_BAR,
					  VIRTIO_PCI_MSIX_OFFSET,
					  VIRTIO_PCI_BAR, pba_off);
	if (!ret)
		ret = pci_device_set_msi_sink(vp->pci, &vp->cfg.msi);
	if (!ret)
		ret = pci_device_set_intx_line(vp->pci, &vp->cfg.intx);
	if (!ret)
		ret = virtio_device_set_transport(vdev, &tr_ops, vp);
	if (ret)
		goto fail;
	*out = vp;
	return 0;

fail:
	pci_device_destroy(vp->pci);
	free(vp->queue_vector);
	free(vp->vec_notifier);
	free(vp->vec_fd);
	pthread_mutex_destroy(&vp->irq_lock);
	pthread_mutex_destroy(&vp->route_lock);
	free(vp);
	return ret;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	virtio_device_set_transport(vp->vdev, NULL, NULL);
	if (!vp->added)
		pci_device_destroy(vp->pci);
	free(vp->queue_vector);
	free(vp->vec_notifier);
	free(vp->vec_fd);
	pthread_mutex_destroy(&vp->irq_lock);
	pthread_mutex_destroy(&vp->route_lock);
	free(vp);
}

struct pci_device *virtio_pci_pci_device(struct virtio_pci *vp)
{
	return vp ? vp->pci : NULL;
}

struct virtio_device *virtio_pci_device(struct virtio_pci *vp)
{
	return vp ? vp->vdev : NULL;
}

int virtio_pci_add_to_root(struct virtio_pci *vp, struct pci_root *root,
			   unsigned slot, unsigned fn)
{
	int ret;

	if (!vp || !root)
		return -EINVAL;
	if (vp->added)
		return -EEXIST;
	/* Refuse an occupied slot here, so the common failure never depends
	 * on what pci_root_add_device() does with a function it refuses. */
	if (slot < PCI_ROOT_SLOTS && fn < PCI_ROOT_FUNCTIONS &&
	    pci_root_get_device(root, slot, fn))
		return -EBUSY;
	ret = pci_root_add_device(root, vp->pci, slot, fn);
	if (!ret)
		vp->added = true;
	return ret;
}

int virtio_pci_queue_notify_addr(struct virtio_pci *vp, uint32_t queue,
				 uint64_t *addr)
{
	if (!vp || !addr || queue >= vp->num_queues)
		return -EINVAL;
	if (!atomic_load(&vp->bar_mapped))
		return -ENODEV;
	*addr = atomic_load(&vp->bar_addr) + VIRTIO_PCI_NOTIFY_OFFSET +
		(uint64_t)queue * VIRTIO_PCI_NOTIFY_MULT;
	return 0;
}

int virtio_pci_set_vector_notifier(struct virtio_pci *vp, uint16_t vector,
				   struct event_notifier *n)
{
	int ret;

	if (!vp || vector >= vp->nvec)
		return -EINVAL;
	/* Known before the PCI function asks msix_update (with @n). */
	pthread_mutex_lock(&vp->route_lock);
	vp->vec_notifier[vector] = n;
	pthread_mutex_unlock(&vp->route_lock);
	ret = pci_device_msix_set_notifier(vp->pci, vector, n);
	if (!n)
		set_vector_fd(vp, vector, -1); /* the MSI sink from now */
	return ret;
}

int virtio_pci_num_vectors(const struct virtio_pci *vp)
{
	return vp ? vp->nvec : -EINVAL;
}
