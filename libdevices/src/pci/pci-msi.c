/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * MSI capability: message address/data in config space, multiple message
 * enable, optional per-vector masking with pending bits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci-internal.h"

/* Offsets inside the capability. */
static uint32_t msi_data_off(const struct pci_msi_state *s)
{
	return s->addr64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32;
}

static uint32_t msi_mask_off(const struct pci_msi_state *s)
{
	return s->addr64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32;
}

uint32_t pci_msi_cap_len(const struct pci_msi_state *s)
{
	if (s->pvm)
		return msi_mask_off(s) + 8u;
	return msi_data_off(s) + 2u;
}

int pci_device_add_msi(struct pci_device *dev, unsigned nvectors, bool addr64,
		       bool per_vector_mask)
{
	struct pci_msi_state *s;
	uint8_t cap[24] = {0}, wm[24] = {0};
	unsigned log2 = 0;
	uint32_t len, d, m;
	uint16_t ctrl;
	int ret;

	if (!dev || nvectors == 0 || nvectors > 32 ||
	    (nvectors & (nvectors - 1)))
		return -EINVAL;
	while ((1u << log2) < nvectors)
		log2++;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->addr64 = addr64;
	s->pvm = per_vector_mask;
	s->mmc = (uint8_t)log2;
	len = pci_msi_cap_len(s);
	d = msi_data_off(s);
	m = msi_mask_off(s);

	cap[0] = PCI_CAP_ID_MSI;
	ctrl = (uint16_t)(log2 << 1);
	if (addr64)
		ctrl |= PCI_MSI_FLAGS_64BIT;
	if (per_vector_mask)
		ctrl |= PCI_MSI_FLAGS_MASKBIT;
	cap[PCI_MSI_FLAGS] = (uint8_t)ctrl;
	cap[PCI_MSI_FLAGS + 1] = (uint8_t)(ctrl >> 8);
	wm[PCI_MSI_FLAGS] = PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE;
	wm[PCI_MSI_ADDRESS_LO] = 0xfc;
	memset(&wm[PCI_MSI_ADDRESS_LO + 1], 0xff, 3);
	if (addr64)
		memset(&wm[PCI_MSI_ADDRESS_HI], 0xff, 4);
	wm[d] = 0xff;
	wm[d + 1] = 0xff;
	if (per_vector_mask) {
		uint32_t bits = nvectors == 32 ? 0xffffffffu
					       : (1u << nvectors) - 1u;

		for (unsigned i = 0; i < 4; i++)
			wm[m + i] = (uint8_t)(bits >> (8 * i));
	}

	pci_device_lock_cfg(dev);
	if (dev->added)
		ret = -EPERM;
	else if (dev->msicap)
		ret = -EEXIST;
	else
		ret = pci_cap_add_locked(dev, cap, len, wm, &s->cap);
	if (!ret)
		dev->msicap = s;
	pci_device_unlock_cfg(dev);
	if (ret)
		free(s);
	return ret;
}

static void msi_notify_update(struct pci_device *dev)
{
	struct pci_msi_state *s = dev->msicap;

	if (dev->ops && dev->ops->msi_update)
		dev->ops->msi_update(dev->opaque, s->enabled, s->addr, s->data,
				     1u << s->mme);
}

/* Vector @vector's data: the low log2(enabled vectors) bits replaced. */
static uint32_t msi_vector_data(const struct pci_msi_state *s, unsigned vector)
{
	uint32_t n = 1u << s->mme;

	return ((uint32_t)s->data & ~(n - 1u)) | (vector & (n - 1u));
}

/* Tell the VMM that vector @v's message or mask changed and learn whether
 * its notifier carries the message now (irq lock held).  Without a
 * callback a notifier is trusted as it is. */
static void msi_notify_vector(struct pci_device *dev, unsigned v)
{
	struct pci_msi_state *s = dev->msicap;
	bool masked = !s->enabled || v >= (1u << s->mme) || (s->mask >> v) & 1u;
	int ok = 0;

	if (dev->ops && dev->ops->msi_vector_update)
		ok = dev->ops->msi_vector_update(dev->opaque, v, s->addr,
						 msi_vector_data(s, v), masked);
	s->notifier_ok[v] = ok == 0;
}

/* Through the vector's notifier while its route is current, else (and
 * when signalling fails) through the MSI sink (irq lock held). */
static void msi_send(struct pci_device *dev, unsigned vector)
{
	struct pci_msi_state *s = dev->msicap;

	if (s->notifier[vector] && s->notifier_ok[vector] &&
	    event_notifier_signal(s->notifier[vector]) == 0)
		return;
	pci_irq_send_msi(dev, s->addr, msi_vector_data(s, vector));
}

/* Send pending, unmasked, allocated vectors (irq lock held). */
static void msi_deliver_pending(struct pci_device *dev)
{
	struct pci_msi_state *s = dev->msicap;

	if (!s->enabled || !dev->bus_master)
		return;
	for (unsigned v = 0; v < (1u << s->mme); v++) {
		uint32_t bit = 1u << v;

		if ((s->pending & bit) && !(s->mask & bit)) {
			s->pending &= ~bit;
			msi_send(dev, v);
		}
	}
}

void pci_msi_deliver_locked(struct pci_device *dev)
{
	msi_deliver_pending(dev);
}

void pci_msi_changed(struct pci_device *dev)
{
	struct pci_msi_state *s = dev->msicap;
	const uint8_t *c = &dev->cfg[s->cap];
	uint16_t ctrl =
		(uint16_t)(c[PCI_MSI_FLAGS] | c[PCI_MSI_FLAGS + 1] << 8);
	uint32_t d = msi_data_off(s), m = msi_mask_off(s);
	uint8_t mme = (uint8_t)((ctrl & PCI_MSI_FLAGS_QSIZE) >> 4);
	uint64_t addr = (uint64_t)c[4] | (uint64_t)c[5] << 8 |
			(uint64_t)c[6] << 16 | (uint64_t)c[7] << 24;
	uint16_t data = (uint16_t)(c[d] | c[d + 1] << 8);
	uint32_t mask = 0, old_mask;
	bool en = ctrl & PCI_MSI_FLAGS_ENABLE, changed;

	if (s->addr64)
		for (unsigned i = 0; i < 4; i++)
			addr |= (uint64_t)c[PCI_MSI_ADDRESS_HI + i]
				<< (32 + 8 * i);
	if (s->pvm)
		for (unsigned i = 0; i < 4; i++)
			mask |= (uint32_t)c[m + i] << (8 * i);
	/* More messages than the function can send: use what it has. */
	if (mme > s->mmc)
		mme = s->mmc;
	pthread_mutex_lock(&dev->irq_lock);
	changed = en != s->enabled || mme != s->mme || addr != s->addr ||
		  data != s->data;
	if (changed) {
		s->enabled = en;
		s->mme = mme;
		s->addr = addr;
		s->data = data;
		msi_notify_update(dev);
	}
	old_mask = s->mask;
	s->mask = mask;
	/* Per vector, before pending messages go (bounded: <= 32). */
	for (unsigned v = 0; v < (1u << s->mmc); v++) {
		if (changed || ((old_mask ^ mask) >> v) & 1u)
			msi_notify_vector(dev, v);
	}
	pci_intx_update_locked(dev);
	msi_deliver_pending(dev);
	pthread_mutex_unlock(&dev->irq_lock);
}

uint32_t pci_msi_pending_overlay(struct pci_device *dev, uint32_t offset,
				 unsigned len, uint32_t v)
{
	struct pci_msi_state *s = dev->msicap;
	uint32_t p = s->cap + msi_mask_off(s) + 4u;
	uint32_t pending;

	if (!s->pvm || offset >= p + 4u || offset + len <= p)
		return v;
	pthread_mutex_lock(&dev->irq_lock);
	pending = s->pending;
	pthread_mutex_unlock(&dev->irq_lock);
	/* The access stays inside the dword at p (p is dword-aligned). */
	pending = (uint32_t)((uint64_t)pending >> (8 * (offset - p)));
	if (len < 4)
		pending &= (1u << (8 * len)) - 1u;
	return v | pending;
}

void pci_msi_reset(struct pci_device *dev)
{
	struct pci_msi_state *s = dev->msicap;
	uint32_t len = pci_msi_cap_len(s);

	dev->cfg[s->cap + PCI_MSI_FLAGS] &=
		(uint8_t) ~(PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
	memset(&dev->cfg[s->cap + PCI_MSI_ADDRESS_LO], 0,
	       len - PCI_MSI_ADDRESS_LO);
	pthread_mutex_lock(&dev->irq_lock);
	s->pending = 0;
	pthread_mutex_unlock(&dev->irq_lock);
	pci_msi_changed(dev);
}

int pci_device_msi_notify(struct pci_device *dev, unsigned vector)
{
	struct pci_msi_state *s;
	int ret = 0;

	if (!dev || !dev->msicap || vector >= 32)
		return -EINVAL;
	s = dev->msicap;
	pthread_mutex_lock(&dev->irq_lock);
	if (!s->enabled || !dev->bus_master) {
		ret = -EAGAIN;
	} else if (vector >= (1u << s->mme)) {
		ret = -EINVAL;
	} else if (s->mask & (1u << vector)) {
		s->pending |= 1u << vector;
		ret = 1;
	} else {
		msi_send(dev, vector);
	}
	pthread_mutex_unlock(&dev->irq_lock);
	return ret;
}

int pci_device_msi_set_notifier(struct pci_device *dev, unsigned vector,
				struct event_notifier *n)
{
	struct pci_msi_state *s;

	if (!dev || !dev->msicap || vector >= (1u << dev->msicap->mmc))
		return -EINVAL;
	s = dev->msicap;
	pthread_mutex_lock(&dev->irq_lock);
	s->notifier[vector] = n;
	/* The route first, so the notifier carries the current message. */
	if (n)
		msi_notify_vector(dev, vector);
	pthread_mutex_unlock(&dev->irq_lock);
	return 0;
}

int pci_device_msi_enabled(struct pci_device *dev)
{
	int ret;

	if (!dev)
		return -EINVAL;
	if (!dev->msicap)
		return 0;
	pthread_mutex_lock(&dev->irq_lock);
	ret = dev->msicap->enabled ? (int)(1u << dev->msicap->mme) : 0;
	pthread_mutex_unlock(&dev->irq_lock);
	return ret;
}
