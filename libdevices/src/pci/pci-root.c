/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * PCI segment: host bridge, function table, configuration mechanism #1 and
 * ECAM, BAR placement and bus registration.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/vm-allocator.h"
#include "pci-internal.h"

#define PCI_ROOT_NFUNCS (PCI_ROOT_SLOTS * PCI_ROOT_FUNCTIONS)
/* Mechanism #1 address register fields. */
#define CF8_ENABLE	0x80000000u
#define CF8_READABLE	0x80fffffcu

struct pci_root {
	pthread_mutex_t lock;
	struct pci_root_config cfg;
	uint32_t cf8;
	struct pci_device *fn[PCI_ROOT_NFUNCS];
	/* Functions out of the root whose BAR a bus failed to release
	 * (-ENOMEM): never freed while a bus may still reach them. */
	struct pci_device *stuck;
	struct reclaim_node reclaim;
};

/* ------------------------------------------------------------------ */
/* BAR bus registration (config lock == root lock held)                */
/* ------------------------------------------------------------------ */

static void bar_bus_read(void *opaque, uint64_t offset, void *data,
			 unsigned size)
{
	struct pci_bar_state *b = opaque;

	pci_device_bar_read(b->dev, b->idx, offset, data, size);
}

static void bar_bus_write(void *opaque, uint64_t offset, const void *data,
			  unsigned size)
{
	struct pci_bar_state *b = opaque;

	pci_device_bar_write(b->dev, b->idx, offset, data, size);
}

static const struct io_bus_ops bar_bus_ops = {
	.read = bar_bus_read,
	.write = bar_bus_write,
};

static struct io_bus *bar_bus(const struct pci_bar_state *b)
{
	struct pci_root *root = b->dev->root;

	if (!root)
		return NULL;
	return b->kind == PCI_BAR_KIND_IO ? root->cfg.pio_bus
					  : root->cfg.mmio_bus;
}

static bool same_space(const struct pci_bar_state *a,
		       const struct pci_bar_state *b)
{
	return (a->kind == PCI_BAR_KIND_IO) == (b->kind == PCI_BAR_KIND_IO);
}

/* Does [addr, addr + size) overlap a decoding BAR of the root other than
 * @self?  Bounded: 256 functions x 6 BARs. */
static bool bar_conflicts(const struct pci_bar_state *self, uint64_t addr)
{
	struct pci_root *root = self->dev->root;
	uint64_t last = addr + self->size - 1; /* checked by the caller */

	if (!root)
		return false;
	for (unsigned f = 0; f < PCI_ROOT_NFUNCS; f++) {
		struct pci_device *d = root->fn[f];

		if (!d)
			continue;
		for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
			const struct pci_bar_state *o = &d->bars[i];

			if (o == self || !o->on_bus || !same_space(o, self))
				continue;
			if (addr <= o->bus_addr + o->size - 1 &&
			    o->bus_addr <= last)
				return true;
		}
	}
	return false;
}

/* Register the BAR at @addr, or move it there when @move. */
static int bar_place(struct pci_bar_state *bar, uint64_t addr, bool move)
{
	struct io_bus *bus = bar_bus(bar);

	/* Out of the root: a callback still running in the function (or the
	 * caller holding a stale pointer) may write its config space, but it
	 * never decodes on a bus again (it is about to be freed). */
	if (bar->dev->detached)
		return -ENODEV;
	if (bar_conflicts(bar, addr))
		return -EEXIST;
	if (!bus)
		return 0;
	if (move)
		return io_bus_move(bus, bar->bus_addr, addr);
	return io_bus_register(bus, addr, bar->size, &bar_bus_ops, bar);
}

int pci_root_bar_claim(struct pci_bar_state *bar, uint64_t addr)
{
	return bar_place(bar, addr, false);
}

int pci_root_bar_move(struct pci_bar_state *bar, uint64_t addr)
{
	return bar_place(bar, addr, true);
}

int pci_root_bar_release(struct pci_bar_state *bar)
{
	struct io_bus *bus = bar_bus(bar);

	/* No wait: we may be inside a dispatch (a config write on the PIO or
	 * ECAM bus).  The BAR's decoding flag already stops callbacks; the
	 * caller waits for the running ones once the config lock is
	 * dropped.  An error (-ENOMEM: no memory for the smaller table) is
	 * reported: the range is still registered. */
	if (!bus)
		return 0;
	return io_bus_unregister_nowait(bus, bar->bus_addr);
}

/* ------------------------------------------------------------------ */
/* Root                                                                */
/* ------------------------------------------------------------------ */

static int add_locked(struct pci_root *root, struct pci_device *dev,
		      unsigned devfn);

int pci_root_create(const struct pci_root_config *cfg, struct pci_root **out)
{
	struct pci_root *root;
	struct pci_device_info hb = {
		.vendor_id = 0x1b36,
		.device_id = 0x0008,
		.class_code = 0x060000,
	};
	struct pci_device *dev;
	int ret;

	if (!out)
		return -EINVAL;
	root = calloc(1, sizeof(*root));
	if (!root)
		return -ENOMEM;
	if (cfg)
		root->cfg = *cfg;
	if (pthread_mutex_init(&root->lock, NULL)) {
		free(root);
		return -ENOMEM;
	}
	if (root->cfg.host_vendor_id || root->cfg.host_device_id) {
		hb.vendor_id = root->cfg.host_vendor_id;
		hb.device_id = root->cfg.host_device_id;
	}
	ret = pci_device_create(&hb, NULL, NULL, &dev);
	if (ret) {
		pthread_mutex_destroy(&root->lock);
		free(root);
		return ret;
	}
	pthread_mutex_lock(&root->lock);
	ret = add_locked(root, dev, 0);
	pthread_mutex_unlock(&root->lock);
	if (ret) {
		pci_device_free(dev);
		pthread_mutex_destroy(&root->lock);
		free(root);
		return ret;
	}
	*out = root;
	return 0;
}

static void release_allocations(struct pci_device *dev)
{
	for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
		struct pci_bar_state *b = &dev->bars[i];

		if (b->alloc_from) {
			address_allocator_free(b->alloc_from, b->assigned,
					       b->size);
			b->alloc_from = NULL;
		}
	}
}

/* Take @dev out of the root; root lock held.  @drop_intx: deassert its
 * INTx line (not when the whole root goes away with the VM).  Returns
 * true when every BAR left its bus; otherwise @dev is put on the stuck
 * list (it must not be freed while a bus may reach it). */
static bool detach_locked(struct pci_root *root, unsigned devfn, bool drop_intx)
{
	struct pci_device *dev = root->fn[devfn];
	bool released;

	dev->detached = true;
	released = pci_device_unmap_bars(dev);

	release_allocations(dev);
	/* A removed function no longer drives its (maybe shared) INTx
	 * line: a level left high would stay asserted for good. */
	if (drop_intx) {
		pthread_mutex_lock(&dev->irq_lock);
		dev->intx_level = false;
		pci_intx_update_locked(dev);
		pthread_mutex_unlock(&dev->irq_lock);
	}
	root->fn[devfn] = NULL;
	dev->sync_pending = false; /* the caller waits in any case */
	if (!released) {
		dev->stuck_next = root->stuck;
		root->stuck = dev;
	}
	return released;
}

/* Root lock held: retry releasing the BARs of stuck functions; those that
 * are off every bus now are retired. */
static void retry_stuck_locked(struct pci_root *root)
{
	struct pci_device **pp = &root->stuck;

	while (*pp) {
		struct pci_device *dev = *pp;

		if (pci_device_unmap_bars(dev)) {
			*pp = dev->stuck_next;
			dev->sync_pending = false;
			pci_device_retire(dev);
		} else {
			pp = &dev->stuck_next;
		}
	}
}

static void root_reclaim(struct reclaim_node *node)
{
	struct pci_root *root =
		reclaim_container(node, struct pci_root, reclaim);

	pthread_mutex_destroy(&root->lock);
	free(root);
}

void pci_root_destroy(struct pci_root *root)
{
	struct pci_device *gone[PCI_ROOT_NFUNCS];
	unsigned n = 0;

	if (!root)
		return;
	pthread_mutex_lock(&root->lock);
	for (unsigned f = 0; f < PCI_ROOT_NFUNCS; f++) {
		struct pci_device *dev = root->fn[f];

		if (dev && detach_locked(root, f, false))
			gone[n++] = dev;
	}
	retry_stuck_locked(root);
	/* Still stuck: a bus holds their BARs (not decoding).  They are
	 * left allocated (a leak, not a use after free); their config lock
	 * is the root's, which is retired below but never taken by a
	 * dispatch of a BAR that does not decode. */
	root->stuck = NULL;
	pthread_mutex_unlock(&root->lock);
	/* As for a removal: once this returns, no BAR callback of these
	 * functions runs on another thread (the VMM frees their state
	 * next).  Memory goes through the grace period of retire. */
	for (unsigned i = 0; i < n; i++) {
		reclaim_wait(gone[i]);
		pci_device_retire(gone[i]);
	}
	/* BAR callbacks still running may take the root lock (config
	 * accesses): the root is freed after them, and after the functions
	 * (the queue is FIFO). */
	reclaim_retire(&root->reclaim, root_reclaim);
	reclaim_poll();
}

static struct address_allocator *bar_allocator(struct pci_root *root,
					       const struct pci_bar_state *b)
{
	switch (b->kind) {
	case PCI_BAR_KIND_IO:
		return root->cfg.io;
	case PCI_BAR_KIND_MEM32:
		return root->cfg.mem32;
	case PCI_BAR_KIND_MEM64:
		return root->cfg.mem64 ? root->cfg.mem64 : root->cfg.mem32;
	}
	return NULL;
}

static int assign_bars(struct pci_root *root, struct pci_device *dev)
{
	for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
		struct pci_bar_state *b = &dev->bars[i];
		struct address_allocator *a;
		uint64_t addr = 0;
		int ret;

		if (!b->kind || b->has_assigned)
			continue;
		a = bar_allocator(root, b);
		if (!a)
			return -ENXIO;
		ret = address_allocator_allocate(
			a, b->size, b->size, ADDRESS_ALLOC_FIRST_FIT, &addr);
		if (ret)
			return ret == -ENOMEM ? -ENOSPC : ret;
		/* A 32-bit BAR must land below 4 GiB, and never at 0. */
		if (addr == 0 ||
		    (b->kind != PCI_BAR_KIND_MEM64 &&
		     addr + b->size - 1 >= 0xffffffffu) ||
		    (b->kind == PCI_BAR_KIND_IO &&
		     addr + b->size - 1 > 0xffff)) {
			address_allocator_free(a, addr, b->size);
			return -ENOSPC;
		}
		b->alloc_from = a;
		b->assigned = addr;
		b->has_assigned = true;
	}
	return 0;
}

static int add_locked(struct pci_root *root, struct pci_device *dev,
		      unsigned devfn)
{
	int ret;

	pthread_mutex_lock(&dev->own_lock);
	if (dev->added) {
		pthread_mutex_unlock(&dev->own_lock);
		return -EEXIST;
	}
	if (root->fn[devfn]) {
		pthread_mutex_unlock(&dev->own_lock);
		return -EBUSY;
	}
	ret = assign_bars(root, dev);
	if (ret) {
		release_allocations(dev);
		pthread_mutex_unlock(&dev->own_lock);
		return ret;
	}
	for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
		struct pci_bar_state *b = &dev->bars[i];

		if (b->kind)
			pci_bar_store(dev, i, b->assigned);
		/* A config write before the function was added "mapped" BARs
		 * on no bus; forget that so the update below registers them
		 * on the root's buses. */
		atomic_store(&b->decoding, false);
		b->on_bus = false;
		b->bus_addr = 0;
	}
	dev->root = root;
	dev->devfn = (uint8_t)devfn;
	dev->added = true;
	atomic_store(&dev->cfg_lock, &root->lock);
	root->fn[devfn] = dev;
	pthread_mutex_unlock(&dev->own_lock);
	/* Decode could already be on if the caller wrote the command
	 * register before adding. */
	pci_device_update_bars(dev);
	return 0;
}

int pci_root_add_device(struct pci_root *root, struct pci_device *dev,
			unsigned slot, unsigned fn)
{
	int ret;

	/* Ownership moves to the root only on success: on any error @dev
	 * is left as it was and still belongs to the caller. */
	if (!dev || !root || slot >= PCI_ROOT_SLOTS ||
	    fn >= PCI_ROOT_FUNCTIONS || (slot == 0 && fn == 0))
		return -EINVAL;
	pthread_mutex_lock(&root->lock);
	ret = add_locked(root, dev, PCI_ROOT_DEVFN(slot, fn));
	pthread_mutex_unlock(&root->lock);
	return ret;
}

int pci_root_remove_device(struct pci_root *root, unsigned slot, unsigned fn)
{
	struct pci_device *dev;
	unsigned devfn;
	int ret;

	if (!root || slot >= PCI_ROOT_SLOTS || fn >= PCI_ROOT_FUNCTIONS ||
	    (slot == 0 && fn == 0))
		return -EINVAL;
	devfn = PCI_ROOT_DEVFN(slot, fn);
	pthread_mutex_lock(&root->lock);
	dev = root->fn[devfn];
	if (!dev) {
		pthread_mutex_unlock(&root->lock);
		return -ENOENT;
	}
	/* No BAR decodes from here on: a dispatch that starts now sees the
	 * decoding flags clear (and, soon, no bus entry). */
	if (detach_locked(root, devfn, true))
		pci_device_retire(dev);
	retry_stuck_locked(root);
	pthread_mutex_unlock(&root->lock);
	/* Wait for the callbacks other threads are running.  Not for the
	 * caller's own (a function ejecting itself), and never for a thread
	 * that is itself waiting inside a callback: no deadlock, whichever
	 * buses the two threads are dispatching on (reclaim.c).  Freeing
	 * goes through the grace period of reclaim_retire(), which also
	 * covers the caller's own section. */
	ret = reclaim_wait(dev);
	reclaim_poll();
	return ret > 0 ? -EINPROGRESS : 0;
}

struct pci_device *pci_root_get_device(struct pci_root *root, unsigned slot,
				       unsigned fn)
{
	struct pci_device *dev;

	if (!root || slot >= PCI_ROOT_SLOTS || fn >= PCI_ROOT_FUNCTIONS)
		return NULL;
	pthread_mutex_lock(&root->lock);
	dev = root->fn[PCI_ROOT_DEVFN(slot, fn)];
	pthread_mutex_unlock(&root->lock);
	return dev;
}

/* ------------------------------------------------------------------ */
/* Config access                                                       */
/* ------------------------------------------------------------------ */

static bool cfg_access_ok(uint32_t offset, unsigned len)
{
	if (len != 1 && len != 2 && len != 4)
		return false;
	return offset < PCI_CFG_SPACE_EXP_SIZE && (offset & 3u) + len <= 4u;
}

static uint32_t ones(unsigned len)
{
	return len >= 4 ? 0xffffffffu : (1u << (8 * len)) - 1u;
}

/* Root lock held. */
static uint32_t cfg_read_locked(struct pci_root *root, uint8_t bus,
				uint8_t devfn, uint32_t offset, unsigned len)
{
	struct pci_device *dev = bus == 0 ? root->fn[devfn] : NULL;

	if (!dev)
		return ones(len);
	return pci_device_config_read_locked(dev, offset, len);
}

/* Returns the function a BAR of which stopped decoding, or NULL: pass it
 * to pci_dispatch_wait() once the lock is dropped (it is only compared,
 * never dereferenced: the function may be removed meanwhile). */
static struct pci_device *cfg_write_locked(struct pci_root *root, uint8_t bus,
					   uint8_t devfn, uint32_t offset,
					   unsigned len, uint32_t value)
{
	struct pci_device *dev = bus == 0 ? root->fn[devfn] : NULL;

	if (!dev)
		return NULL;
	pci_device_config_write_locked(dev, offset, len, value);
	return pci_device_sync_take(dev) ? dev : NULL;
}

int pci_root_config_read(struct pci_root *root, uint8_t bus, uint8_t devfn,
			 uint32_t offset, unsigned len, uint32_t *value)
{
	if (!root || !value || !cfg_access_ok(offset, len))
		return -EINVAL;
	pthread_mutex_lock(&root->lock);
	*value = cfg_read_locked(root, bus, devfn, offset, len);
	pthread_mutex_unlock(&root->lock);
	return 0;
}

int pci_root_config_write(struct pci_root *root, uint8_t bus, uint8_t devfn,
			  uint32_t offset, unsigned len, uint32_t value)
{
	struct pci_device *sd;

	if (!root || !cfg_access_ok(offset, len))
		return -EINVAL;
	pthread_mutex_lock(&root->lock);
	sd = cfg_write_locked(root, bus, devfn, offset, len, value);
	pthread_mutex_unlock(&root->lock);
	return pci_dispatch_wait(sd, sd != NULL);
}

static void put_bytes(void *data, unsigned len, uint32_t v)
{
	uint8_t *p = data;

	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_bytes(const void *data, unsigned len)
{
	const uint8_t *p = data;
	uint32_t v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

int pci_root_pio_read(struct pci_root *root, uint16_t port, void *data,
		      unsigned len)
{
	uint32_t v;
	unsigned boff;

	if (!data || (len != 1 && len != 2 && len != 4))
		return -EINVAL;
	put_bytes(data, len, ones(len));
	if (!root || port < PCI_CONFIG_ADDRESS_PORT ||
	    port >= PCI_CONFIG_ADDRESS_PORT + PCI_CONFIG_PORT_COUNT)
		return -EINVAL;
	if (port < PCI_CONFIG_DATA_PORT) {
		if (port != PCI_CONFIG_ADDRESS_PORT || len != 4)
			return 0;
		pthread_mutex_lock(&root->lock);
		v = root->cf8;
		pthread_mutex_unlock(&root->lock);
		put_bytes(data, 4, v);
		return 0;
	}
	boff = port - PCI_CONFIG_DATA_PORT;
	if (boff + len > 4)
		return 0;
	pthread_mutex_lock(&root->lock);
	v = root->cf8;
	if (v & CF8_ENABLE)
		put_bytes(data, len,
			  cfg_read_locked(root, (uint8_t)(v >> 16),
					  (uint8_t)(v >> 8), (v & 0xfcu) + boff,
					  len));
	pthread_mutex_unlock(&root->lock);
	return 0;
}

int pci_root_pio_write(struct pci_root *root, uint16_t port, const void *data,
		       unsigned len)
{
	struct pci_device *sd = NULL;
	uint32_t v;
	unsigned boff;

	if (!root || !data || (len != 1 && len != 2 && len != 4) ||
	    port < PCI_CONFIG_ADDRESS_PORT ||
	    port >= PCI_CONFIG_ADDRESS_PORT + PCI_CONFIG_PORT_COUNT)
		return -EINVAL;
	if (port < PCI_CONFIG_DATA_PORT) {
		if (port != PCI_CONFIG_ADDRESS_PORT || len != 4)
			return 0;
		pthread_mutex_lock(&root->lock);
		root->cf8 = get_bytes(data, 4) & CF8_READABLE;
		pthread_mutex_unlock(&root->lock);
		return 0;
	}
	boff = port - PCI_CONFIG_DATA_PORT;
	if (boff + len > 4)
		return 0;
	pthread_mutex_lock(&root->lock);
	v = root->cf8;
	if (v & CF8_ENABLE)
		sd = cfg_write_locked(root, (uint8_t)(v >> 16),
				      (uint8_t)(v >> 8), (v & 0xfcu) + boff,
				      len, get_bytes(data, len));
	pthread_mutex_unlock(&root->lock);
	pci_dispatch_wait(sd, sd != NULL);
	return 0;
}

/* ECAM: offset bits 27:20 bus, 19:12 devfn, 11:0 register. */
static bool ecam_decode(uint64_t offset, unsigned len, uint8_t *bus,
			uint8_t *devfn, uint32_t *reg)
{
	if (offset >= (256ull << 20))
		return false;
	*bus = (uint8_t)(offset >> 20);
	*devfn = (uint8_t)(offset >> 12);
	*reg = (uint32_t)(offset & 0xfffu);
	return (*reg & 3u) + len <= 4u;
}

int pci_root_ecam_read(struct pci_root *root, uint64_t offset, void *data,
		       unsigned len)
{
	uint8_t bus, devfn;
	uint32_t reg;

	if (!data || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	memset(data, 0xff, len);
	if (!root)
		return -EINVAL;
	if (len == 8) {
		if (offset & 7u)
			return 0;
		pci_root_ecam_read(root, offset, data, 4);
		return pci_root_ecam_read(root, offset + 4, (uint8_t *)data + 4,
					  4);
	}
	if (!ecam_decode(offset, len, &bus, &devfn, &reg))
		return 0;
	pthread_mutex_lock(&root->lock);
	put_bytes(data, len, cfg_read_locked(root, bus, devfn, reg, len));
	pthread_mutex_unlock(&root->lock);
	return 0;
}

int pci_root_ecam_write(struct pci_root *root, uint64_t offset,
			const void *data, unsigned len)
{
	struct pci_device *sd;
	uint8_t bus, devfn;
	uint32_t reg;

	if (!root || !data || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	if (len == 8) {
		if (offset & 7u)
			return 0;
		pci_root_ecam_write(root, offset, data, 4);
		return pci_root_ecam_write(root, offset + 4,
					   (const uint8_t *)data + 4, 4);
	}
	if (!ecam_decode(offset, len, &bus, &devfn, &reg))
		return 0;
	pthread_mutex_lock(&root->lock);
	sd = cfg_write_locked(root, bus, devfn, reg, len, get_bytes(data, len));
	pthread_mutex_unlock(&root->lock);
	pci_dispatch_wait(sd, sd != NULL);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Bus glue                                                            */
/* ------------------------------------------------------------------ */

static void pio_bus_read(void *opaque, uint64_t offset, void *data,
			 unsigned size)
{
	if (offset < PCI_CONFIG_PORT_COUNT)
		pci_root_pio_read(opaque,
				  (uint16_t)(PCI_CONFIG_ADDRESS_PORT + offset),
				  data, size);
}

static void pio_bus_write(void *opaque, uint64_t offset, const void *data,
			  unsigned size)
{
	if (offset < PCI_CONFIG_PORT_COUNT)
		pci_root_pio_write(opaque,
				   (uint16_t)(PCI_CONFIG_ADDRESS_PORT + offset),
				   data, size);
}

static void ecam_bus_read(void *opaque, uint64_t offset, void *data,
			  unsigned size)
{
	pci_root_ecam_read(opaque, offset, data, size);
}

static void ecam_bus_write(void *opaque, uint64_t offset, const void *data,
			   unsigned size)
{
	pci_root_ecam_write(opaque, offset, data, size);
}

static const struct io_bus_ops pio_ops = {
	.read = pio_bus_read,
	.write = pio_bus_write,
};

static const struct io_bus_ops ecam_ops = {
	.read = ecam_bus_read,
	.write = ecam_bus_write,
};

const struct io_bus_ops *pci_root_pio_ops(void)
{
	return &pio_ops;
}

const struct io_bus_ops *pci_root_ecam_ops(void)
{
	return &ecam_ops;
}

int pci_root_register_pio(struct pci_root *root, struct io_bus *pio)
{
	if (!root || !pio)
		return -EINVAL;
	return io_bus_register(pio, PCI_CONFIG_ADDRESS_PORT,
			       PCI_CONFIG_PORT_COUNT, &pio_ops, root);
}

int pci_root_register_ecam(struct pci_root *root, struct io_bus *mmio,
			   uint64_t base)
{
	if (!root || !mmio || (base & (PCI_ECAM_BUS_SIZE - 1)))
		return -EINVAL;
	return io_bus_register(mmio, base, PCI_ECAM_BUS_SIZE, &ecam_ops, root);
}
