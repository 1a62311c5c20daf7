/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Interrupt side of a PCI function shared by INTx, MSI and MSI-X: the
 * INTx level and line, the command register's INTx-disable and
 * bus-master bits, and the MSI sink messages leave through.  Layering:
 * pci-device.c -> pci-msi.c / pci-msix.c -> pci-irq.c (this file calls
 * neither MSI file).
 */
#include <errno.h>
#include <string.h>

#include "pci-internal.h"

/* ------------------------------------------------------------------ */
/* INTx                                                                */
/* ------------------------------------------------------------------ */

void pci_intx_update_locked(struct pci_device *dev)
{
	bool msix_on = (dev->msix && dev->msix->enabled) ||
		       (dev->msicap && dev->msicap->enabled);
	bool want = dev->info.interrupt_pin && dev->intx_level &&
		    !dev->intx_disable && !msix_on;

	if (want == dev->intx_asserted)
		return;
	dev->intx_asserted = want;
	irq_line_set(&dev->intx_line, want);
}

void pci_irq_command_locked(struct pci_device *dev, uint16_t cmd)
{
	dev->intx_disable = cmd & PCI_COMMAND_INTX_DISABLE;
	dev->bus_master = cmd & PCI_COMMAND_MASTER;
	pci_intx_update_locked(dev);
}

int pci_irq_send_msi(struct pci_device *dev, uint64_t addr, uint32_t data)
{
	return msi_sink_send(&dev->msi, addr, data);
}

int pci_device_set_intx(struct pci_device *dev, bool level)
{
	if (!dev || !dev->info.interrupt_pin)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	dev->intx_level = level;
	pci_intx_update_locked(dev);
	pthread_mutex_unlock(&dev->irq_lock);
	return 0;
}

int pci_device_intx_asserted(struct pci_device *dev)
{
	int ret;

	if (!dev)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	ret = dev->intx_asserted;
	pthread_mutex_unlock(&dev->irq_lock);
	return ret;
}

int pci_device_set_msi_sink(struct pci_device *dev, const struct msi_sink *sink)
{
	if (!dev)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	if (sink)
		dev->msi = *sink;
	else
		memset(&dev->msi, 0, sizeof(dev->msi));
	pthread_mutex_unlock(&dev->irq_lock);
	return 0;
}

int pci_device_set_intx_line(struct pci_device *dev,
			     const struct irq_line *line)
{
	if (!dev)
		return -EINVAL;
	pthread_mutex_lock(&dev->irq_lock);
	if (dev->intx_asserted)
		irq_line_set(&dev->intx_line, false);
	if (line)
		dev->intx_line = *line;
	else
		memset(&dev->intx_line, 0, sizeof(dev->intx_line));
	if (dev->intx_asserted)
		irq_line_set(&dev->intx_line, true);
	pthread_mutex_unlock(&dev->irq_lock);
	return 0;
}
