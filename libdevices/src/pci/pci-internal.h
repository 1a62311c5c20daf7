/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Internal state of the PCI framework; not installed. */
#ifndef CVMM_DEVICES_PCI_INTERNAL_H
#define CVMM_DEVICES_PCI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvmm/devices/bus.h"
#include "cvmm/devices/irq.h"
#include "cvmm/devices/pci.h"

/* The standard header (0x00..0x3f) is owned by the framework. */
#define PCI_STD_HEADER_END 0x40u
/* First byte after the BAR registers. */
#define PCI_BARS_END	   (PCI_BASE_ADDRESS_0 + 4u * PCI_STD_NUM_BARS)
/* Bound on capability list walks (256 - 64) / 4 entries. */
#define PCI_CAP_WALK_MAX   48u

struct pci_bar_state {
	struct pci_device *dev;
	uint8_t idx;
	/* 0 when unused or the upper half of a 64-bit BAR. */
	uint8_t kind;
	bool upper;
	bool prefetch;
	uint64_t size;
	/* Address assigned when the function was added (reset value). */
	uint64_t assigned;
	bool has_assigned;
	/* The assigned range came from one of the root's allocators. */
	struct address_allocator *alloc_from;

	/* Bus state: changed under the config lock (and the root lock). */
	bool on_bus;
	uint64_t bus_addr;

	/* Dispatch state: written with the config lock held, read by
	 * dispatches inside a dispatch read section (see pci_dispatch_*). */
	atomic_bool decoding;
};

struct pci_msix_state {
	uint16_t nvec;
	uint8_t cap;
	uint8_t table_bar;
	uint8_t pba_bar;
	uint32_t table_off;
	uint32_t pba_off;
	/* 4 dwords per vector: addr lo, addr hi, data, vector control. */
	uint32_t *table;
	uint64_t *pba;
	/* Mirrors of message control, under the interrupt lock. */
	bool enabled;
	bool fmask;
};

struct pci_msi_state {
	uint8_t cap;
	bool addr64;
	bool pvm;
	/* log2 of the vectors the function can send. */
	uint8_t mmc;
	/* Mirrors of the capability, under the interrupt lock. */
	bool enabled;
	uint8_t mme;
	uint64_t addr;
	uint16_t data;
	uint32_t mask;
	uint32_t pending;
};

/*
 * Dispatch read sections (an SRCU-like scheme, so a config write that
 * turns decoding off can wait for the BAR callbacks already running, and
 * is never starved by vCPUs that keep hitting the BAR).  A dispatch adds
 * itself to the counter of the current epoch parity in one of a few
 * per-thread slots, checks the BAR's decoding flag, calls the device and
 * leaves.  pci_dispatch_sync() (config lock held, after clearing the flag)
 * flips the epoch and waits for the old parity to drain, twice, so every
 * dispatch that could have seen the flag set has returned.  Dispatches
 * that start later see it clear.
 */
#define PCI_DISPATCH_SLOTS 16u
/* Nested BAR dispatch sections per thread (device callbacks that access
 * BARs again); deeper accesses are refused with -ELOOP. */
#define PCI_DISPATCH_NEST  16u

struct pci_dispatch_slot {
	_Alignas(64) atomic_ulong cnt[2];
};

struct pci_device {
	struct pci_device_info info;
	const struct pci_device_ops *ops;
	void *opaque;

	/* Config lock: own_lock until added to a root, then the root lock.
	 * It changes only with both held; pci_device_lock_cfg() re-checks it
	 * after locking. */
	pthread_mutex_t own_lock;
	pthread_mutex_t *_Atomic cfg_lock;
	atomic_uint dispatch_epoch;
	/* A BAR stopped decoding under the config lock: the dispatch sections
	 * must be waited for once the lock is dropped (config lock). */
	bool sync_pending;
	/* Threads waiting for dispatch sections outside the config lock; the
	 * function is not freed until it drops to 0. */
	atomic_uint sync_refs;
	/* Removed from inside a bus dispatch: freed later (root lock). */
	struct pci_device *zombie_next;
	/* The function is allocated 64-byte aligned for these. */
	struct pci_dispatch_slot dispatch[PCI_DISPATCH_SLOTS];
	pthread_mutex_t irq_lock;

	struct pci_root *root;
	uint8_t devfn;
	bool added;

	uint32_t cfg_size;
	uint8_t cfg[PCI_CFG_SPACE_EXP_SIZE];
	uint8_t wmask[PCI_CFG_SPACE_EXP_SIZE];
	uint8_t w1cmask[PCI_CFG_SPACE_EXP_SIZE];
	/* Next free offset for a capability. */
	uint32_t cap_next;
	uint8_t cap_last;
	/* Extended capabilities (from 0x100), same idea. */
	uint32_t ext_next;
	uint32_t ext_last;

	struct pci_bar_state bars[PCI_STD_NUM_BARS];
	struct pci_msix_state *msix;
	struct pci_msi_state *msicap;

	/* Interrupt state, under irq_lock. */
	bool intx_level;
	bool intx_disable;
	bool intx_asserted;
	bool bus_master;
	struct msi_sink msi;
	struct irq_line intx_line;
};

/* pci-device.c */
void pci_device_lock_cfg(struct pci_device *dev);
void pci_device_unlock_cfg(struct pci_device *dev);
/* Recompute where every BAR decodes (config lock held). */
void pci_device_update_bars(struct pci_device *dev);
/* Stop every BAR decoding and take it off the bus (config lock held). */
void pci_device_unmap_bars(struct pci_device *dev);
void pci_device_free(struct pci_device *dev);
/* Store @addr in BAR @idx's registers, keeping its flag bits (raw). */
void pci_bar_store(struct pci_device *dev, unsigned idx, uint64_t addr);
int pci_cap_add_locked(struct pci_device *dev, const uint8_t *data, size_t len,
		       const uint8_t *wmask, uint8_t *offset);
uint32_t pci_device_config_read_locked(struct pci_device *dev, uint32_t offset,
				       unsigned len);
void pci_device_config_write_locked(struct pci_device *dev, uint32_t offset,
				    unsigned len, uint32_t value);

/* Wait for every dispatch section that started before the call, except
 * those of the calling thread (which cannot end while it waits). */
void pci_dispatch_sync(struct pci_device *dev);
/* Config lock held, at the end of an operation: NULL, or @dev with a
 * reference when dispatch sections must be waited for.  Pass the result
 * to pci_device_sync_put() after dropping the config lock. */
struct pci_device *pci_device_sync_get(struct pci_device *dev);
void pci_device_sync_put(struct pci_device *dev);
/* Wait until no thread holds a sync reference (before freeing). */
void pci_device_wait_sync_refs(struct pci_device *dev);
/* Is the calling thread inside a BAR dispatch section of @dev? */
bool pci_dispatch_in_section(const struct pci_device *dev);

/* pci-msix.c */
int pci_msix_table_read(struct pci_device *dev, uint64_t rel, void *data,
			unsigned len);
void pci_msix_table_write(struct pci_device *dev, uint64_t rel,
			  const void *data, unsigned len);
int pci_msix_pba_read(struct pci_device *dev, uint64_t rel, void *data,
		      unsigned len);
uint64_t pci_msix_pba_size(const struct pci_msix_state *m);
/* Message control changed (config lock held). */
void pci_msix_control_changed(struct pci_device *dev);
/* Reset all MSI-X state (config lock held). */
void pci_msix_reset(struct pci_device *dev);
/* Send pending unmasked messages if allowed now (irq lock held). */
void pci_msix_deliver_locked(struct pci_device *dev);

/* pci-irq.c (calls no MSI / MSI-X code) */
/* Command register changed: INTx disable and bus master (irq lock). */
void pci_irq_command_locked(struct pci_device *dev, uint16_t cmd);
/* Recompute the INTx line (irq lock held). */
void pci_intx_update_locked(struct pci_device *dev);
/* Send one message through the function's MSI sink (irq lock held). */
int pci_irq_send_msi(struct pci_device *dev, uint64_t addr, uint32_t data);

/* pci-msi.c */
uint32_t pci_msi_cap_len(const struct pci_msi_state *s);
/* The capability was written (config lock held). */
void pci_msi_changed(struct pci_device *dev);
/* Add the pending bits to a config read of @len bytes at @offset. */
uint32_t pci_msi_pending_overlay(struct pci_device *dev, uint32_t offset,
				 unsigned len, uint32_t v);
void pci_msi_reset(struct pci_device *dev);
/* Send pending unmasked messages if allowed now (irq lock held). */
void pci_msi_deliver_locked(struct pci_device *dev);

/* pci-root.c: bus and overlap hooks, called with the config lock held. */
int pci_root_bar_claim(struct pci_bar_state *bar, uint64_t addr);
int pci_root_bar_move(struct pci_bar_state *bar, uint64_t addr);
void pci_root_bar_release(struct pci_bar_state *bar);

#endif
