/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * PCI function framework: config space with writable / write-1-to-clear
 * masks, BARs and their decoding, capability list, BAR dispatch.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../le-bytes.h"
#include "pci-internal.h"

/* Command bits a guest may change. */
#define PCI_CMD_WRITABLE                                            \
	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
	 PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)
/* Status bits that are write-1-to-clear. */
#define PCI_STATUS_W1C                                               \
	(PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |           \
	 PCI_STATUS_REC_TARGET_ABORT | PCI_STATUS_REC_MASTER_ABORT | \
	 PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)

static uint16_t cfg16(const struct pci_device *dev, uint32_t off)
{
	return (uint16_t)get_le(&dev->cfg[off], 2);
}

static uint32_t cfg32(const struct pci_device *dev, uint32_t off)
{
	return (uint32_t)get_le(&dev->cfg[off], 4);
}

void pci_device_lock_cfg(struct pci_device *dev)
{
	/* The lock switches from own_lock to the root's when the function is
	 * added (with both held): whoever took the old one re-checks. */
	for (;;) {
		pthread_mutex_t *m = atomic_load(&dev->cfg_lock);

		pthread_mutex_lock(m);
		if (atomic_load(&dev->cfg_lock) == m)
			return;
		pthread_mutex_unlock(m);
	}
}

void pci_device_unlock_cfg(struct pci_device *dev)
{
	pthread_mutex_unlock(atomic_load(&dev->cfg_lock));
}

static bool valid_access(uint32_t offset, unsigned len)
{
	if (len != 1 && len != 2 && len != 4)
		return false;
	/* Stay inside one dword. */
	return (offset & 3u) + len <= 4u;
}

int pci_device_create(const struct pci_device_info *info,
		      const struct pci_device_ops *ops, void *opaque,
		      struct pci_device **out)
{
	struct pci_device *dev;
	uint32_t known = PCI_DEVICE_EXTENDED_CONFIG | PCI_DEVICE_MULTIFUNCTION;

	if (!info || !out || info->interrupt_pin > 4 || (info->flags & ~known))
		return -EINVAL;
	/* sizeof is a multiple of the 64-byte slot alignment. */
	dev = aligned_alloc(_Alignof(struct pci_device), sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	memset(dev, 0, sizeof(*dev));
	dev->info = *info;
	dev->ops = ops;
	dev->opaque = opaque;
	if (pthread_mutex_init(&dev->own_lock, NULL))
		goto err_free;
	if (pthread_mutex_init(&dev->irq_lock, NULL))
		goto err_own;
	atomic_init(&dev->cfg_lock, &dev->own_lock);
	dev->cfg_size = (info->flags & PCI_DEVICE_EXTENDED_CONFIG)
				? PCI_CFG_SPACE_EXP_SIZE
				: PCI_CFG_SPACE_SIZE;
	for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
		dev->bars[i].dev = dev;
		dev->bars[i].idx = (uint8_t)i;
	}

	put_le(&dev->cfg[PCI_VENDOR_ID], 2, info->vendor_id);
	put_le(&dev->cfg[PCI_DEVICE_ID], 2, info->device_id);
	put_le(&dev->cfg[PCI_CLASS_REVISION], 4,
	       ((uint32_t)(info->class_code & 0xffffffu) << 8) |
		       info->revision);
	dev->cfg[PCI_HEADER_TYPE] =
		(info->flags & PCI_DEVICE_MULTIFUNCTION) ? 0x80 : 0;
	put_le(&dev->cfg[PCI_SUBSYSTEM_VENDOR_ID], 2,
	       info->subsystem_vendor_id);
	put_le(&dev->cfg[PCI_SUBSYSTEM_ID], 2, info->subsystem_id);
	dev->cfg[PCI_INTERRUPT_PIN] = info->interrupt_pin;

	put_le(&dev->wmask[PCI_COMMAND], 2, PCI_CMD_WRITABLE);
	put_le(&dev->w1cmask[PCI_STATUS], 2, PCI_STATUS_W1C);
	dev->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	dev->wmask[PCI_LATENCY_TIMER] = 0xff;
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->cap_next = PCI_STD_HEADER_END;
	dev->ext_next = PCI_CFG_SPACE_SIZE;
	*out = dev;
	return 0;

err_own:
	pthread_mutex_destroy(&dev->own_lock);
err_free:
	free(dev);
	return -ENOMEM;
}

void pci_device_free(struct pci_device *dev)
{
	if (!dev)
		return;
	if (dev->msix) {
		free(dev->msix->table);
		free(dev->msix->pba);
		free(dev->msix->notifier);
		free(dev->msix->notifier_ok);
		free(dev->msix);
	}
	free(dev->msicap);
	pthread_mutex_destroy(&dev->irq_lock);
	pthread_mutex_destroy(&dev->own_lock);
	free(dev);
}

void pci_device_destroy(struct pci_device *dev)
{
	/* A function in a root belongs to the root. */
	if (!dev || dev->added)
		return;
	pci_device_free(dev);
}

/* ------------------------------------------------------------------ */
/* BARs                                                                */
/* ------------------------------------------------------------------ */

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint32_t bar_flags(const struct pci_bar_state *b)
{
	switch (b->kind) {
	case PCI_BAR_KIND_IO:
		return PCI_BASE_ADDRESS_SPACE_IO;
	case PCI_BAR_KIND_MEM32:
		return PCI_BASE_ADDRESS_MEM_TYPE_32 |
		       (b->prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
	case PCI_BAR_KIND_MEM64:
		return PCI_BASE_ADDRESS_MEM_TYPE_64 |
		       (b->prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
	}
	return 0;
}

/* Store @addr in the BAR registers (raw, flags kept). */
void pci_bar_store(struct pci_device *dev, unsigned idx, uint64_t addr)
{
	struct pci_bar_state *b = &dev->bars[idx];
	uint32_t off = PCI_BASE_ADDRESS_0 + 4u * idx;

	put_le(&dev->cfg[off], 4, ((uint32_t)addr & ~0xfu) | bar_flags(b));
	if (b->kind == PCI_BAR_KIND_IO)
		put_le(&dev->cfg[off], 4, ((uint32_t)addr & ~0x3u) | 1u);
	if (b->kind == PCI_BAR_KIND_MEM64)
		put_le(&dev->cfg[off + 4], 4, (uint32_t)(addr >> 32));
}

static uint64_t bar_read_addr(const struct pci_device *dev, unsigned idx)
{
	const struct pci_bar_state *b = &dev->bars[idx];
	uint32_t off = PCI_BASE_ADDRESS_0 + 4u * idx;
	uint32_t lo = cfg32(dev, off);

	switch (b->kind) {
	case PCI_BAR_KIND_IO:
		return lo & ~0x3u;
	case PCI_BAR_KIND_MEM32:
		return lo & ~0xfu;
	case PCI_BAR_KIND_MEM64:
		return ((uint64_t)cfg32(dev, off + 4) << 32) | (lo & ~0xfu);
	}
	return 0;
}

int pci_device_add_bar(struct pci_device *dev, unsigned idx,
		       enum pci_bar_kind kind, bool prefetch, uint64_t size)
{
	struct pci_bar_state *b;
	uint32_t off;
	uint64_t mask;

	if (!dev || idx >= PCI_STD_NUM_BARS || !is_pow2(size))
		return -EINVAL;
	switch (kind) {
	case PCI_BAR_KIND_IO:
		if (prefetch || size < 4 || size > 256)
			return -EINVAL;
		break;
	case PCI_BAR_KIND_MEM32:
		if (size < 16 || size > (1ull << 31))
			return -EINVAL;
		break;
	case PCI_BAR_KIND_MEM64:
		if (idx + 1 >= PCI_STD_NUM_BARS || size < 16 ||
		    size > (1ull << 63))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	pci_device_lock_cfg(dev);
	if (dev->added) {
		pci_device_unlock_cfg(dev);
		return -EPERM;
	}
	b = &dev->bars[idx];
	if (b->kind || b->upper ||
	    (kind == PCI_BAR_KIND_MEM64 &&
	     (dev->bars[idx + 1].kind || dev->bars[idx + 1].upper))) {
		pci_device_unlock_cfg(dev);
		return -EBUSY;
	}
	b->kind = (uint8_t)kind;
	b->prefetch = prefetch;
	b->size = size;
	off = PCI_BASE_ADDRESS_0 + 4u * idx;
	mask = ~(size - 1);
	if (kind == PCI_BAR_KIND_IO) {
		put_le(&dev->wmask[off], 4, (uint32_t)mask & ~0x3u);
	} else {
		put_le(&dev->wmask[off], 4, (uint32_t)mask & ~0xfu);
		if (kind == PCI_BAR_KIND_MEM64) {
			dev->bars[idx + 1].upper = true;
			put_le(&dev->wmask[off + 4], 4, (uint32_t)(mask >> 32));
		}
	}
	pci_bar_store(dev, idx, 0);
	pci_device_unlock_cfg(dev);
	return 0;
}

static bool bar_addr_fits(const struct pci_bar_state *b, uint64_t addr)
{
	uint64_t last;

	if (addr & (b->size - 1))
		return false;
	if (__builtin_add_overflow(addr, b->size - 1, &last))
		return false;
	switch (b->kind) {
	case PCI_BAR_KIND_IO:
		return last <= 0xffffu;
	case PCI_BAR_KIND_MEM32:
		return last < 0xffffffffu;
	case PCI_BAR_KIND_MEM64:
		return last < UINT64_MAX;
	}
	return false;
}

int pci_device_set_bar_address(struct pci_device *dev, unsigned idx,
			       uint64_t addr)
{
	struct pci_bar_state *b;
	int ret = 0;

	if (!dev || idx >= PCI_STD_NUM_BARS)
		return -EINVAL;
	pci_device_lock_cfg(dev);
	b = &dev->bars[idx];
	if (dev->added) {
		ret = -EPERM;
	} else if (!b->kind || !bar_addr_fits(b, addr)) {
		ret = -EINVAL;
	} else {
		b->assigned = addr;
		b->has_assigned = true;
		pci_bar_store(dev, idx, addr);
	}
	pci_device_unlock_cfg(dev);
	return ret;
}

int pci_device_bar_info(struct pci_device *dev, unsigned idx, uint64_t *addr,
			uint64_t *size, bool *mapped)
{
	struct pci_bar_state *b;

	if (!dev || idx >= PCI_STD_NUM_BARS)
		return -EINVAL;
	pci_device_lock_cfg(dev);
	b = &dev->bars[idx];
	if (addr)
		*addr = b->kind ? bar_read_addr(dev, idx) : 0;
	if (size)
		*size = b->kind ? b->size : 0;
	if (mapped)
		*mapped = b->on_bus && atomic_load(&b->decoding);
	pci_device_unlock_cfg(dev);
	return 0;
}

/* Where BAR @idx should decode now, from the command register and the BAR
 * registers; false when it should not decode at all. */
static bool bar_wanted(const struct pci_device *dev, unsigned idx,
		       uint64_t *addr)
{
	const struct pci_bar_state *b = &dev->bars[idx];
	uint16_t cmd = cfg16(dev, PCI_COMMAND);
	uint64_t a;

	if (!b->kind)
		return false;
	if (b->kind == PCI_BAR_KIND_IO ? !(cmd & PCI_COMMAND_IO)
				       : !(cmd & PCI_COMMAND_MEMORY))
		return false;
	a = bar_read_addr(dev, idx);
	if (a == 0 || !bar_addr_fits(b, a))
		return false;
	*addr = a;
	return true;
}

/* Does the BAR decode on its bus now? */
static bool bar_decodes(struct pci_bar_state *b)
{
	return b->on_bus && atomic_load(&b->decoding);
}

static void bar_notify(struct pci_device *dev, struct pci_bar_state *b)
{
	bool on = bar_decodes(b);

	if (dev->ops && dev->ops->bar_remap)
		dev->ops->bar_remap(dev->opaque, b->idx, on,
				    on ? b->bus_addr : 0, b->size);
}

/* ------------------------------------------------------------------ */
/* Dispatch read sections                                              */
/* ------------------------------------------------------------------ */

/* BAR dispatches the calling thread is nested in. */
static RECLAIM_TLS unsigned pci_nest;

bool pci_device_sync_take(struct pci_device *dev)
{
	bool pending = dev->sync_pending;

	dev->sync_pending = false;
	return pending;
}

int pci_dispatch_wait(struct pci_device *dev, bool pending)
{
	int ret = 0;

	/* Outside the config lock: a BAR callback still running may take it
	 * (to write config space) before it returns.  From inside a section
	 * (a config write made by a callback) this waits for the other
	 * threads only, without waiting for a thread that is itself waiting
	 * inside a callback (see reclaim.c): never a deadlock. */
	if (pending && reclaim_wait(dev) > 0)
		ret = -EINPROGRESS;
	reclaim_poll();
	return ret;
}

static void device_reclaim(struct reclaim_node *node)
{
	pci_device_free(reclaim_container(node, struct pci_device, reclaim));
}

void pci_device_retire(struct pci_device *dev)
{
	reclaim_retire(&dev->reclaim, device_reclaim);
}

/* The bus entry of @b is removed; it stops decoding.  An error (-ENOMEM)
 * when the bus could not release it: it then stays on_bus, not decoding,
 * and the release is retried by the next update. */
static int bar_off(struct pci_device *dev, struct pci_bar_state *b)
{
	int ret;

	if (atomic_load(&b->decoding)) {
		atomic_store(&b->decoding, false);
		/* Waiting for the callbacks already running is done by the
		 * caller once the config lock is dropped. */
		dev->sync_pending = true;
	}
	ret = pci_root_bar_release(b);
	if (ret) {
		dev->bars_pending = true;
		return ret;
	}
	b->on_bus = false;
	b->bus_addr = 0;
	return 0;
}

/* A refusal of the bus that a later attempt may not get: the update is
 * left pending (level-triggered retry). */
static bool transient(int err)
{
	return err == -EAGAIN || err == -ENOMEM;
}

/*
 * Bring BAR @idx's bus registration in line with its registers.
 * 0 when it decodes where its registers say (or does not decode, as they
 * say, or cannot for a reason only the guest can change: an overlap, a
 * function out of its root).  -EAGAIN / -ENOMEM when it should decode but
 * the bus refused the range for now (the retired-table bound, memory):
 * it does not decode and dev->bars_pending asks the next config write of
 * the function to try again.
 */
static int bar_update(struct pci_device *dev, unsigned idx)
{
	struct pci_bar_state *b = &dev->bars[idx];
	uint64_t addr = 0;
	bool want = bar_wanted(dev, idx, &addr);
	int ret;

	if (b->on_bus && !atomic_load(&b->decoding)) {
		/* An earlier release failed: retry it first.  Not decoding
		 * is what the guest sees in any case. */
		ret = bar_off(dev, b);
		if (ret)
			return want ? ret : 0;
	}
	if (b->on_bus && want && addr == b->bus_addr)
		return 0;
	if (!b->on_bus && !want)
		return 0;
	if (b->on_bus && want) {
		/* Atomic move: an access racing it sees the old or the new
		 * range, and the device state behind both is the same. */
		if (pci_root_bar_move(b, addr) == 0) {
			b->bus_addr = addr;
			bar_notify(dev, b);
			return 0;
		}
		/* Refused (overlap, retired-table bound): stop decoding at
		 * the old place, then try to claim the new one below. */
	}
	if (b->on_bus) {
		ret = bar_off(dev, b);
		bar_notify(dev, b);
		if (ret)
			return want ? ret : 0;
	}
	if (!want)
		return 0;
	ret = pci_root_bar_claim(b, addr);
	if (ret == 0) {
		b->on_bus = true;
		b->bus_addr = addr;
		atomic_store(&b->decoding, true);
		bar_notify(dev, b);
		return 0;
	}
	if (!transient(ret))
		return 0; /* -EEXIST, -ENODEV: not decoding, as hardware */
	dev->bars_pending = true;
	return ret;
}

int pci_device_update_bars(struct pci_device *dev)
{
	int ret = 0;

	dev->bars_pending = false;
	for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
		int r = bar_update(dev, i);

		if (r && !ret)
			ret = r;
	}
	return ret;
}

int pci_device_retry_bars(struct pci_device *dev)
{
	return dev->bars_pending ? pci_device_update_bars(dev) : 0;
}

bool pci_device_unmap_bars(struct pci_device *dev)
{
	bool all = true;

	for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
		struct pci_bar_state *b = &dev->bars[i];

		if (!b->on_bus)
			continue;
		if (bar_off(dev, b))
			all = false;
		bar_notify(dev, b);
	}
	return all;
}

/* ------------------------------------------------------------------ */
/* Capabilities                                                        */
/* ------------------------------------------------------------------ */

int pci_cap_add_locked(struct pci_device *dev, const uint8_t *data, size_t len,
		       const uint8_t *wmask, uint8_t *offset)
{
	uint32_t off = dev->cap_next;
	uint32_t end;

	if (len < 2 || len > PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_END)
		return -EINVAL;
	end = off + (uint32_t)len;
	if (end > PCI_CFG_SPACE_SIZE)
		return -ENOSPC;
	memcpy(&dev->cfg[off], data, len);
	dev->cfg[off + PCI_CAP_LIST_NEXT] = 0;
	if (wmask) {
		memcpy(&dev->wmask[off], wmask, len);
		/* The id and the next pointer stay read-only. */
		dev->wmask[off] = 0;
		dev->wmask[off + PCI_CAP_LIST_NEXT] = 0;
	}
	if (dev->cap_last)
		dev->cfg[dev->cap_last + PCI_CAP_LIST_NEXT] = (uint8_t)off;
	else
		dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->cap_last = (uint8_t)off;
	dev->cap_next = (end + 3u) & ~3u;
	if (offset)
		*offset = (uint8_t)off;
	return 0;
}

int pci_device_add_capability(struct pci_device *dev, const uint8_t *data,
			      size_t len, const uint8_t *wmask, uint8_t *offset)
{
	int ret;

	if (!dev || !data)
		return -EINVAL;
	pci_device_lock_cfg(dev);
	if (dev->added)
		ret = -EPERM;
	else
		ret = pci_cap_add_locked(dev, data, len, wmask, offset);
	pci_device_unlock_cfg(dev);
	return ret;
}

static int find_capability_locked(const struct pci_device *dev, uint8_t cap_id)
{
	uint8_t off;

	if (!(dev->cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		return -ENOENT;
	off = dev->cfg[PCI_CAPABILITY_LIST];
	for (unsigned n = 0; n < PCI_CAP_WALK_MAX && off >= PCI_STD_HEADER_END;
	     n++) {
		off &= ~3u;
		if (dev->cfg[off] == cap_id)
			return off;
		off = dev->cfg[off + PCI_CAP_LIST_NEXT];
	}
	return -ENOENT;
}

int pci_device_find_capability(struct pci_device *dev, uint8_t cap_id)
{
	int ret;

	if (!dev)
		return -EINVAL;
	pci_device_lock_cfg(dev);
	ret = find_capability_locked(dev, cap_id);
	pci_device_unlock_cfg(dev);
	return ret;
}

/* Extended capability header: id 15:0, version 19:16, next 31:20. */
int pci_device_add_ext_capability(struct pci_device *dev, uint16_t cap_id,
				  uint8_t version, const uint8_t *body,
				  size_t len, const uint8_t *wmask,
				  uint16_t *offset)
{
	uint32_t off, end;
	int ret = 0;

	if (!dev || version > 0xf || (len && !body) ||
	    len > PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE - 4)
		return -EINVAL;
	if (dev->cfg_size != PCI_CFG_SPACE_EXP_SIZE)
		return -EINVAL;
	pci_device_lock_cfg(dev);
	off = dev->ext_next;
	end = off + 4u + (uint32_t)len;
	if (dev->added) {
		ret = -EPERM;
	} else if (end > PCI_CFG_SPACE_EXP_SIZE) {
		ret = -ENOSPC;
	} else {
		put_le(&dev->cfg[off], 4,
		       (uint32_t)cap_id | (uint32_t)version << 16);
		if (len)
			memcpy(&dev->cfg[off + 4], body, len);
		if (wmask && len)
			memcpy(&dev->wmask[off + 4], wmask, len);
		if (dev->ext_last) {
			uint32_t h = cfg32(dev, dev->ext_last);

			put_le(&dev->cfg[dev->ext_last], 4,
			       (h & 0xfffffu) | off << 20);
		}
		dev->ext_last = off;
		dev->ext_next = (end + 3u) & ~3u;
		if (offset)
			*offset = (uint16_t)off;
	}
	pci_device_unlock_cfg(dev);
	return ret;
}

int pci_device_find_ext_capability(struct pci_device *dev, uint16_t cap_id)
{
	uint32_t off = PCI_CFG_SPACE_SIZE;
	int ret = -ENOENT;

	if (!dev)
		return -EINVAL;
	if (dev->cfg_size != PCI_CFG_SPACE_EXP_SIZE)
		return -ENOENT;
	pci_device_lock_cfg(dev);
	/* At most (4096 - 256) / 4 entries; a loop ends there. */
	for (unsigned n = 0;
	     n < (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 4; n++) {
		uint32_t h = cfg32(dev, off);

		if (h == 0)
			break;
		if ((h & 0xffffu) == cap_id) {
			ret = (int)off;
			break;
		}
		off = (h >> 20) & ~3u;
		if (off < PCI_CFG_SPACE_SIZE)
			break;
	}
	pci_device_unlock_cfg(dev);
	return ret;
}

int pci_device_set_config_mask(struct pci_device *dev, uint32_t offset,
			       size_t len, const uint8_t *wmask,
			       const uint8_t *w1cmask)
{
	if (!dev || offset < PCI_STD_HEADER_END || offset >= dev->cfg_size ||
	    len > dev->cfg_size - offset)
		return -EINVAL;
	pci_device_lock_cfg(dev);
	/* MSI and MSI-X capabilities keep the masks the framework gave
	 * them. */
	if ((dev->msix && offset < dev->msix->cap + 12u &&
	     dev->msix->cap < offset + len) ||
	    (dev->msicap &&
	     offset < dev->msicap->cap + pci_msi_cap_len(dev->msicap) &&
	     dev->msicap->cap < offset + len)) {
		pci_device_unlock_cfg(dev);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (wmask)
			dev->wmask[offset + i] = wmask[i];
		if (w1cmask)
			dev->w1cmask[offset + i] = w1cmask[i];
	}
	pci_device_unlock_cfg(dev);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Config access                                                       */
/* ------------------------------------------------------------------ */

static bool overlaps(uint32_t off, unsigned len, uint32_t start, uint32_t n)
{
	return off < start + n && start < off + len;
}

static uint32_t config_read_locked(struct pci_device *dev, uint32_t offset,
				   unsigned len)
{
	uint32_t v = 0;

	if (offset >= dev->cfg_size)
		return 0;
	v = (uint32_t)get_le(&dev->cfg[offset], len);
	if (overlaps(offset, len, PCI_STATUS, 1)) {
		bool level;

		pthread_mutex_lock(&dev->irq_lock);
		level = dev->intx_level;
		pthread_mutex_unlock(&dev->irq_lock);
		if (level)
			v |= (uint32_t)PCI_STATUS_INTERRUPT
			     << (8 * (PCI_STATUS - offset));
	}
	if (dev->msicap)
		v = pci_msi_pending_overlay(dev, offset, len, v);
	if (dev->ops && dev->ops->config_read)
		dev->ops->config_read(dev->opaque, offset, len, &v);
	return v;
}

int pci_device_config_read(struct pci_device *dev, uint32_t offset,
			   unsigned len, uint32_t *value)
{
	if (!dev || !value || !valid_access(offset, len))
		return -EINVAL;
	pci_device_lock_cfg(dev);
	*value = config_read_locked(dev, offset, len);
	pci_device_unlock_cfg(dev);
	return 0;
}

/* The command register changed: interrupt side (config lock held). */
static void command_changed(struct pci_device *dev, uint16_t cmd)
{
	pthread_mutex_lock(&dev->irq_lock);
	pci_irq_command_locked(dev, cmd);
	if (dev->msix)
		pci_msix_deliver_locked(dev);
	if (dev->msicap)
		pci_msi_deliver_locked(dev);
	pthread_mutex_unlock(&dev->irq_lock);
}

/* 0, or -EAGAIN / -ENOMEM: a BAR that should decode is not on its bus
 * yet (see bar_update()); config space holds the written value. */
static int config_write_locked(struct pci_device *dev, uint32_t offset,
			       unsigned len, uint32_t value)
{
	uint16_t old_cmd = cfg16(dev, PCI_COMMAND);
	uint16_t new_cmd;
	int ret = 0;

	if (offset >= dev->cfg_size)
		return pci_device_retry_bars(dev);
	for (unsigned i = 0; i < len; i++) {
		uint32_t o = offset + i;
		uint8_t v = (uint8_t)(value >> (8 * i));
		uint8_t b = dev->cfg[o];

		b = (uint8_t)((b & ~dev->wmask[o]) | (v & dev->wmask[o]));
		b = (uint8_t)(b & ~(v & dev->w1cmask[o]));
		dev->cfg[o] = b;
	}
	new_cmd = cfg16(dev, PCI_COMMAND);
	if (new_cmd != old_cmd)
		command_changed(dev, new_cmd);
	if (dev->msix &&
	    overlaps(offset, len, dev->msix->cap + PCI_MSIX_FLAGS, 2))
		pci_msix_control_changed(dev);
	if (dev->msicap && overlaps(offset, len, dev->msicap->cap,
				    pci_msi_cap_len(dev->msicap)))
		pci_msi_changed(dev);
	/* Level-triggered: an update the bus refused earlier is retried by
	 * every config write of the function until it succeeds. */
	if (((new_cmd ^ old_cmd) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)) ||
	    dev->bars_pending) {
		ret = pci_device_update_bars(dev);
	} else if (overlaps(offset, len, PCI_BASE_ADDRESS_0,
			    PCI_BARS_END - PCI_BASE_ADDRESS_0)) {
		unsigned idx = (offset - PCI_BASE_ADDRESS_0) / 4u;

		if (dev->bars[idx].upper)
			idx--;
		ret = bar_update(dev, idx);
	}
	if (dev->ops && dev->ops->config_write)
		dev->ops->config_write(dev->opaque, offset, len, value);
	return ret;
}

bool pci_bars_retry_wait(int ret)
{
	/* Only outside every read section (a VMM thread, not a callback or a
	 * guest access dispatched on a bus: a grace period would wait for
	 * the caller's own section), and with no PCI lock held (a callback
	 * still running may need the config lock before it returns).  The
	 * drain frees every table retired before it, so the retry finds
	 * room unless other threads refilled the bound meanwhile. */
	if (ret != -EAGAIN || reclaim_in_section())
		return false;
	return reclaim_drain() == 0;
}

int pci_device_config_write(struct pci_device *dev, uint32_t offset,
			    unsigned len, uint32_t value)
{
	bool pending;
	int ret, wret;

	if (!dev || !valid_access(offset, len))
		return -EINVAL;
	pci_device_lock_cfg(dev);
	ret = config_write_locked(dev, offset, len, value);
	pending = pci_device_sync_take(dev);
	pci_device_unlock_cfg(dev);
	wret = pci_dispatch_wait(dev, pending);
	if (pci_bars_retry_wait(ret)) {
		int w;

		pci_device_lock_cfg(dev);
		ret = pci_device_retry_bars(dev);
		pending = pci_device_sync_take(dev);
		pci_device_unlock_cfg(dev);
		w = pci_dispatch_wait(dev, pending);
		if (!wret)
			wret = w;
	}
	return ret ? ret : wret;
}

int pci_device_config_set(struct pci_device *dev, uint32_t offset, unsigned len,
			  uint32_t value)
{
	if (!dev || !valid_access(offset, len) || offset >= dev->cfg_size)
		return -EINVAL;
	/* The command register, the BARs and MSI-X control have side
	 * effects; they change only through config writes. */
	if (overlaps(offset, len, PCI_COMMAND, 2) ||
	    overlaps(offset, len, PCI_BASE_ADDRESS_0,
		     PCI_BARS_END - PCI_BASE_ADDRESS_0))
		return -EINVAL;
	pci_device_lock_cfg(dev);
	if ((dev->msix && overlaps(offset, len, dev->msix->cap, 12)) ||
	    (dev->msicap && overlaps(offset, len, dev->msicap->cap,
				     pci_msi_cap_len(dev->msicap)))) {
		pci_device_unlock_cfg(dev);
		return -EINVAL;
	}
	put_le(&dev->cfg[offset], len, value);
	pci_device_unlock_cfg(dev);
	return 0;
}

/* Internal entry points for the root (config lock held by the caller). */
uint32_t pci_device_config_read_locked(struct pci_device *dev, uint32_t offset,
				       unsigned len)
{
	return config_read_locked(dev, offset, len);
}

int pci_device_config_write_locked(struct pci_device *dev, uint32_t offset,
				   unsigned len, uint32_t value)
{
	return config_write_locked(dev, offset, len, value);
}

int pci_device_reset(struct pci_device *dev)
{
	bool pending;

	if (!dev)
		return -EINVAL;
	pci_device_lock_cfg(dev);
	put_le(&dev->cfg[PCI_COMMAND], 2, 0);
	put_le(&dev->cfg[PCI_STATUS], 2,
	       cfg16(dev, PCI_STATUS) & (uint16_t)~PCI_STATUS_W1C);
	command_changed(dev, 0);
	for (unsigned i = 0; i < PCI_STD_NUM_BARS; i++) {
		if (dev->bars[i].kind)
			pci_bar_store(dev, i, dev->bars[i].assigned);
	}
	/* Command 0: every BAR leaves its bus (a release the bus could not
	 * do stays pending and is retried by the next config write). */
	(void)pci_device_update_bars(dev);
	if (dev->msix)
		pci_msix_reset(dev);
	if (dev->msicap)
		pci_msi_reset(dev);
	pthread_mutex_lock(&dev->irq_lock);
	dev->intx_level = false;
	pci_intx_update_locked(dev);
	pthread_mutex_unlock(&dev->irq_lock);
	pending = pci_device_sync_take(dev);
	pci_device_unlock_cfg(dev);
	return pci_dispatch_wait(dev, pending);
}

/* ------------------------------------------------------------------ */
/* BAR dispatch                                                        */
/* ------------------------------------------------------------------ */

static bool range_hits(uint64_t off, unsigned len, uint64_t start, uint64_t n)
{
	return n && off < start + n && start < off + len;
}

static int bar_access(struct pci_device *dev, unsigned bar, uint64_t offset,
		      void *rdata, const void *wdata, unsigned len)
{
	struct pci_bar_state *b;
	struct pci_msix_state *m;
	int ret = 0;

	if (rdata && (len == 1 || len == 2 || len == 4 || len == 8))
		memset(rdata, 0xff, len);
	if (!dev || bar >= PCI_STD_NUM_BARS ||
	    (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	b = &dev->bars[bar];
	/* kind and size never change once the function is in use. */
	if (!b->kind || offset >= b->size || len > b->size - offset)
		return -EINVAL;
	/* BAR callbacks calling pci_device_bar_*() again: bounded. */
	if (pci_nest >= PCI_DISPATCH_NEST)
		return -ELOOP;
	if (!reclaim_read_enter(dev))
		return -ELOOP;
	pci_nest++;
	/* The config side clears the flag before its wait starts, so either
	 * its wait covers this section or the section sees the flag clear
	 * (reclaim.c). */
	if (!atomic_load(&b->decoding)) {
		ret = -ENODEV;
		goto out;
	}
	m = dev->msix;
	if (m && bar == m->table_bar &&
	    range_hits(offset, len, m->table_off, (uint64_t)m->nvec * 16u)) {
		if (offset < m->table_off) {
			/* Starts before the table: misaligned, ignored. */
			if (rdata)
				memset(rdata, 0, len);
		} else if (rdata) {
			pci_msix_table_read(dev, offset - m->table_off, rdata,
					    len);
		} else {
			pci_msix_table_write(dev, offset - m->table_off, wdata,
					     len);
		}
		goto out;
	}
	if (m && bar == m->pba_bar &&
	    range_hits(offset, len, m->pba_off, pci_msix_pba_size(m))) {
		if (rdata) {
			if (offset < m->pba_off)
				memset(rdata, 0, len);
			else
				pci_msix_pba_read(dev, offset - m->pba_off,
						  rdata, len);
		}
		/* The PBA is read-only. */
		goto out;
	}
	if (rdata) {
		memset(rdata, 0, len);
		if (dev->ops && dev->ops->bar_read)
			dev->ops->bar_read(dev->opaque, bar, offset, rdata,
					   len);
	} else if (dev->ops && dev->ops->bar_write) {
		dev->ops->bar_write(dev->opaque, bar, offset, wdata, len);
	}
out:
	reclaim_read_exit();
	pci_nest--;
	return ret;
}

int pci_device_bar_read(struct pci_device *dev, unsigned bar, uint64_t offset,
			void *data, unsigned len)
{
	if (!data)
		return -EINVAL;
	return bar_access(dev, bar, offset, data, NULL, len);
}

int pci_device_bar_write(struct pci_device *dev, unsigned bar, uint64_t offset,
			 const void *data, unsigned len)
{
	if (!data)
		return -EINVAL;
	return bar_access(dev, bar, offset, NULL, data, len);
}
