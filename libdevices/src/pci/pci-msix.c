/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * MSI-X (table, PBA, masks, pending bits) for PCI functions.  Messages
 * go out through pci-irq.c; the INTx line follows the enable bit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci-internal.h"

#define MSIX_DW_PER_ENTRY (PCI_MSIX_ENTRY_SIZE / 4u)
#define MSIX_CTRL_DW	  (PCI_MSIX_ENTRY_VECTOR_CTRL / 4u)
#define MSIX_CAP_LEN	  12u

uint64_t pci_msix_pba_size(const struct pci_msix_state *m)
{
	return (((uint64_t)m->nvec + 63u) / 64u) * 8u;
}

static uint64_t bar_size(const struct pci_device *dev, unsigned bar)
{
	const struct pci_bar_state *b = &dev->bars[bar];

	if (b->kind != PCI_BAR_KIND_MEM32 && b->kind != PCI_BAR_KIND_MEM64)
		return 0;
	return b->size;
}

int pci_device_add_msix(struct pci_device *dev, uint16_t nvectors,
			unsigned table_bar, uint32_t table_offset,
			unsigned pba_bar, uint32_t pba_offset)
{
	struct pci_msix_state *m;
	uint8_t cap[MSIX_CAP_LEN] = {0};
	uint8_t wmask[MSIX_CAP_LEN] = {0};
	uint64_t tsize, psize;
	uint16_t ctrl;
	uint32_t t, p;
	int ret;

	if (!dev || nvectors == 0 || nvectors > PCI_MSIX_MAX_VECTORS ||
	    table_bar >= PCI_STD_NUM_BARS || pba_bar >= PCI_STD_NUM_BARS ||
	    (table_offset & 7u) || (pba_offset & 7u))
		return -EINVAL;
	tsize = (uint64_t)nvectors * PCI_MSIX_ENTRY_SIZE;
	psize = (((uint64_t)nvectors + 63u) / 64u) * 8u;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->table =
		calloc((size_t)nvectors * MSIX_DW_PER_ENTRY, sizeof(*m->table));
	m->pba = calloc(psize / 8u, sizeof(*m->pba));
	m->notifier = calloc(nvectors, sizeof(*m->notifier));
	m->notifier_ok = calloc(nvectors, sizeof(*m->notifier_ok));
	if (!m->table || !m->pba || !m->notifier || !m->notifier_ok) {
		ret = -ENOMEM;
		goto err;
	}
	m->nvec = nvectors;
	m->table_bar = (uint8_t)table_bar;
	m->pba_bar = (uint8_t)pba_bar;
	m->table_off = table_offset;
	m->pba_off = pba_offset;

	pci_device_lock_cfg(dev);
	if (dev->added) {
		ret = -EPERM;
		goto err_unlock;
	}
	if (dev->msix) {
		ret = -EEXIST;
		goto err_unlock;
	}
	if ((uint64_t)table_offset + tsize > bar_size(dev, table_bar) ||
	    (uint64_t)pba_offset + psize > bar_size(dev, pba_bar) ||
	    (table_bar == pba_bar &&
	     (uint64_t)table_offset < (uint64_t)pba_offset + psize &&
	     (uint64_t)pba_offset < (uint64_t)table_offset + tsize)) {
		ret = -EINVAL;
		goto err_unlock;
	}
	cap[0] = PCI_CAP_ID_MSIX;
	ctrl = (uint16_t)(nvectors - 1u);
	cap[PCI_MSIX_FLAGS] = (uint8_t)ctrl;
	cap[PCI_MSIX_FLAGS + 1] = (uint8_t)(ctrl >> 8);
	t = table_offset | table_bar;
	p = pba_offset | pba_bar;
	for (unsigned i = 0; i < 4; i++) {
		cap[PCI_MSIX_TABLE + i] = (uint8_t)(t >> (8 * i));
		cap[PCI_MSIX_PBA + i] = (uint8_t)(p >> (8 * i));
	}
	wmask[PCI_MSIX_FLAGS + 1] =
		(uint8_t)((PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE) >>
			  8);
	ret = pci_cap_add_locked(dev, cap, sizeof(cap), wmask, &m->cap);
	if (ret)
		goto err_unlock;
	for (unsigned v = 0; v < nvectors; v++)
		m->table[v * MSIX_DW_PER_ENTRY + MSIX_CTRL_DW] =
			PCI_MSIX_ENTRY_CTRL_MASKBIT;
	dev->msix = m;
	pci_device_unlock_cfg(dev);
	return 0;

err_unlock:
	pci_device_unlock_cfg(dev);
err:
	free(m->table);
	free(m->pba);
	free(m->notifier);
	free(m->notifier_ok);
	free(m);
	return ret;
}

static bool vector_masked(const struct pci_msix_state *m, unsigned v)
{
	return m->fmask || (m->table[v * MSIX_DW_PER_ENTRY + MSIX_CTRL_DW] &
			    PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/* Tell the device (VMM) that vector @v's entry or mask changed, and learn
 * whether the vector's notifier now carries its message (irq lock).
 * Without a callback a notifier is trusted as it is. */
static void notify_vector(struct pci_device *dev, unsigned v)
{
	struct pci_msix_state *m = dev->msix;
	const uint32_t *e = &m->table[v * MSIX_DW_PER_ENTRY];
	int ok = 0;

	if (dev->ops && dev->ops->msix_update)
		ok = dev->ops->msix_update(dev->opaque, (uint16_t)v,
					   ((uint64_t)e[1] << 32) | e[0], e[2],
					   !m->enabled || vector_masked(m, v));
	m->notifier_ok[v] = ok == 0;
}

/* Send vector @v's message (irq lock; the vector may be sent): through
 * its notifier while the VMM's route for it is current, else (and when
 * signalling fails) through the MSI sink. */
static int send_msi(struct pci_device *dev, unsigned v)
{
	struct pci_msix_state *m = dev->msix;
	const uint32_t *e = &m->table[v * MSIX_DW_PER_ENTRY];
	uint64_t addr = ((uint64_t)e[1] << 32) | e[0];

	if (m->notifier[v] && m->notifier_ok[v] &&
	    event_notifier_signal(m->notifier[v]) == 0)
		return 0;
	return pci_irq_send_msi(dev, addr, e[2]);
}

static bool pending_test(const struct pci_msix_state *m, unsigned v)
{
	return m->pba[v / 64u] & (1ull << (v % 64u));
}

static void pending_set(struct pci_msix_state *m, unsigned v, bool on)
{
	if (on)
		m->pba[v / 64u] |= 1ull << (v % 64u);
	else
		m->pba[v / 64u] &= ~(1ull << (v % 64u));
}

/* Send vector @v's pending message if it may be sent now (irq lock). */
static void deliver_pending(struct pci_device *dev, unsigned v)
{
	struct pci_msix_state *m = dev->msix;

	if (!m->enabled || !dev->bus_master || vector_masked(m, v) ||
	    !pending_test(m, v))
		return;
	pending_set(m, v, false);
	send_msi(dev, v);
}

void pci_msix_deliver_locked(struct pci_device *dev)
{
	struct pci_msix_state *m = dev->msix;

	/* Bounded by the table size (<= 2048). */
	for (unsigned w = 0; w < (m->nvec + 63u) / 64u; w++) {
		if (!m->pba[w])
			continue;
		for (unsigned bit = 0; bit < 64; bit++) {
			unsigned v = w * 64u + bit;

			if (v < m->nvec)
				deliver_pending(dev, v);
		}
	}
}

int pci_msix_table_read(struct pci_device *dev, uint64_t rel, void *data,
			unsigned len)
{
	struct pci_msix_state *m = dev->msix;
	uint8_t *out = data;
	uint64_t tsize = (uint64_t)m->nvec * PCI_MSIX_ENTRY_SIZE;

	memset(data, 0, len);
	/* 4- or 8-byte, naturally aligned, inside the table. */
	if ((len != 4 && len != 8) || (rel % len) || rel >= tsize ||
	    len > tsize - rel)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	for (unsigned i = 0; i < len / 4u; i++) {
		uint32_t dw = m->table[rel / 4u + i];

		for (unsigned b = 0; b < 4; b++)
			out[i * 4 + b] = (uint8_t)(dw >> (8 * b));
	}
	pthread_mutex_unlock(&dev->irq_lock);
	return 0;
}

void pci_msix_table_write(struct pci_device *dev, uint64_t rel,
			  const void *data, unsigned len)
{
	struct pci_msix_state *m = dev->msix;
	const uint8_t *in = data;
	uint64_t tsize = (uint64_t)m->nvec * PCI_MSIX_ENTRY_SIZE;
	unsigned v;

	if ((len != 4 && len != 8) || (rel % len) || rel >= tsize ||
	    len > tsize - rel)
		return;
	/* An aligned 4- or 8-byte access stays inside one 16-byte entry. */
	v = (unsigned)(rel / PCI_MSIX_ENTRY_SIZE);
	pthread_mutex_lock(&dev->irq_lock);
	for (unsigned i = 0; i < len / 4u; i++) {
		uint64_t dwi = rel / 4u + i;
		uint32_t val = (uint32_t)in[i * 4] |
			       (uint32_t)in[i * 4 + 1] << 8 |
			       (uint32_t)in[i * 4 + 2] << 16 |
			       (uint32_t)in[i * 4 + 3] << 24;

		if (dwi % MSIX_DW_PER_ENTRY == MSIX_CTRL_DW) {
			/* Only the mask bit is defined; the rest reads 0. */
			m->table[dwi] = val & PCI_MSIX_ENTRY_CTRL_MASKBIT;
		} else {
			m->table[dwi] = val;
		}
	}
	/* Let the VMM update its route before a pending message goes. */
	notify_vector(dev, v);
	deliver_pending(dev, v);
	pthread_mutex_unlock(&dev->irq_lock);
}

int pci_msix_pba_read(struct pci_device *dev, uint64_t rel, void *data,
		      unsigned len)
{
	struct pci_msix_state *m = dev->msix;
	uint8_t *out = data;
	uint64_t psize = pci_msix_pba_size(m);

	memset(data, 0, len);
	if ((len != 4 && len != 8) || (rel % len) || rel >= psize ||
	    len > psize - rel)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	for (unsigned i = 0; i < len; i++) {
		uint64_t byte = rel + i;

		out[i] = (uint8_t)(m->pba[byte / 8u] >> (8 * (byte % 8u)));
	}
	pthread_mutex_unlock(&dev->irq_lock);
	return 0;
}

void pci_msix_control_changed(struct pci_device *dev)
{
	struct pci_msix_state *m = dev->msix;
	uint8_t hi = dev->cfg[m->cap + PCI_MSIX_FLAGS + 1];
	uint16_t ctrl = (uint16_t)(hi << 8);

	bool en = ctrl & PCI_MSIX_FLAGS_ENABLE;
	bool fm = ctrl & PCI_MSIX_FLAGS_MASKALL;

	pthread_mutex_lock(&dev->irq_lock);
	if (en != m->enabled || fm != m->fmask) {
		m->enabled = en;
		m->fmask = fm;
		/* Bounded by the table size (<= 2048). */
		for (unsigned v = 0; v < m->nvec; v++)
			notify_vector(dev, v);
	}
	/* While MSI-X is enabled the function must not use INTx. */
	pci_intx_update_locked(dev);
	pci_msix_deliver_locked(dev);
	pthread_mutex_unlock(&dev->irq_lock);
}

void pci_msix_reset(struct pci_device *dev)
{
	struct pci_msix_state *m = dev->msix;

	dev->cfg[m->cap + PCI_MSIX_FLAGS + 1] &= (uint8_t) ~(
		(PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE) >> 8);
	pthread_mutex_lock(&dev->irq_lock);
	m->enabled = false;
	m->fmask = false;
	for (unsigned v = 0; v < m->nvec; v++) {
		uint32_t *e = &m->table[v * MSIX_DW_PER_ENTRY];

		e[0] = e[1] = e[2] = 0;
		e[3] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	}
	memset(m->pba, 0, pci_msix_pba_size(m));
	for (unsigned v = 0; v < m->nvec; v++)
		notify_vector(dev, v);
	pci_intx_update_locked(dev);
	pthread_mutex_unlock(&dev->irq_lock);
}

int pci_device_msix_notify(struct pci_device *dev, uint16_t vector)
{
	struct pci_msix_state *m;
	int ret;

	if (!dev || !dev->msix || vector >= dev->msix->nvec)
		return -EINVAL;
	m = dev->msix;
	pthread_mutex_lock(&dev->irq_lock);
	if (!m->enabled || !dev->bus_master) {
		ret = -EAGAIN;
	} else if (vector_masked(m, vector)) {
		pending_set(m, vector, true);
		ret = 1;
	} else {
		ret = send_msi(dev, vector);
		if (ret > 0)
			ret = 0;
	}
	pthread_mutex_unlock(&dev->irq_lock);
	return ret;
}

int pci_device_msix_enabled(struct pci_device *dev)
{
	int ret;

	if (!dev)
		return -EINVAL;
	if (!dev->msix)
		return 0;
	pthread_mutex_lock(&dev->irq_lock);
	ret = dev->msix->enabled;
	pthread_mutex_unlock(&dev->irq_lock);
	return ret;
}

int pci_device_msix_entry(struct pci_device *dev, uint16_t vector,
			  uint64_t *address, uint32_t *data)
{
	const uint32_t *e;
	int ret;

	if (!dev || !dev->msix || vector >= dev->msix->nvec)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	e = &dev->msix->table[vector * MSIX_DW_PER_ENTRY];
	if (address)
		*address = ((uint64_t)e[1] << 32) | e[0];
	if (data)
		*data = e[2];
	ret = vector_masked(dev->msix, vector);
	pthread_mutex_unlock(&dev->irq_lock);
	return ret;
}

int pci_device_msix_pending(struct pci_device *dev, uint16_t vector)
{
	int ret;

	if (!dev || !dev->msix || vector >= dev->msix->nvec)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	ret = pending_test(dev->msix, vector);
	pthread_mutex_unlock(&dev->irq_lock);
	return ret;
}

int pci_device_msix_set_notifier(struct pci_device *dev, uint16_t vector,
				 struct event_notifier *n)
{
	struct pci_msix_state *m;

	if (!dev || !dev->msix || vector >= dev->msix->nvec)
		return -EINVAL;
	m = dev->msix;
	pthread_mutex_lock(&dev->irq_lock);
	m->notifier[vector] = n;
	/* Ask for the route now, so a notifier set while the guest runs is
	 * used only once the VMM has the vector's current message. */
	if (n)
		notify_vector(dev, vector);
	pthread_mutex_unlock(&dev->irq_lock);
	return 0;
}

int pci_device_msix_vectors(struct pci_device *dev)
{
	if (!dev)
		return -EINVAL;
	return dev->msix ? dev->msix->nvec : 0;
}
