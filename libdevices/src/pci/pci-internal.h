/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Internal state of the PCI framework; not installed. */
#ifndef CVMM_DEVICES_PCI_INTERNAL_H
#define CVMM_DEVICES_PCI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../reclaim/reclaim.h"
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

	/* Bus state: changed under the config lock (and the root lock).
	 * on_bus && !decoding: the bus failed to release the range; the BAR
	 * does not decode and the release is retried. */
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
	/* Per vector, under the interrupt lock: the notifier (irqfd) the VMM
	 * supplied, and whether its route carries the current message (the
	 * last msix_update returned 0).  NULL until the first notifier. */
	struct event_notifier **notifier;
	bool *notifier_ok;
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
	/* Per vector, under the interrupt lock: the VMM's notifier (irqfd)
	 * and whether its route carries the current message (the last
	 * msi_vector_update returned 0), as for MSI-X. */
	struct event_notifier *notifier[32];
	bool notifier_ok[32];
};

/*
 * BAR accesses run in read sections of libdevices' reclamation domain
 * (src/reclaim/reclaim.h) naming the function.  A dispatch enters the
 * section, checks the BAR's decoding flag, calls the device and leaves.
 * A config write that clears the flag (config lock held) waits with
 * reclaim_wait(dev) once the lock is dropped, so every dispatch that
 * could have seen the flag set has returned; dispatches that start later
 * see it clear.  A function leaves a root through reclaim_retire(): it is
 * freed only after every section that could reach it has ended.
 */
/* Nested BAR dispatches per thread (device callbacks that access BARs
 * again); deeper accesses are refused with -ELOOP. */
#define PCI_DISPATCH_NEST 16u

struct pci_device {
	struct pci_device_info info;
	const struct pci_device_ops *ops;
	void *opaque;

	/* Config lock: own_lock until added to a root, then the root lock.
	 * It changes only with both held; pci_device_lock_cfg() re-checks it
	 * after locking. */
	pthread_mutex_t own_lock;
	pthread_mutex_t *_Atomic cfg_lock;
	/* A BAR stopped decoding under the config lock: the dispatch sections
	 * must be waited for once the lock is dropped (config lock). */
	bool sync_pending;
	/* A BAR that should decode is not on its bus (the bus refused the
	 * range for now: retired-table bound, memory), or a release failed:
	 * every config write of the function retries (config lock). */
	bool bars_pending;
	/* Freed through the reclamation domain once out of the root. */
	struct reclaim_node reclaim;
	/* Out of the root with a BAR the bus failed to release (root lock). */
	struct pci_device *stuck_next;
	pthread_mutex_t irq_lock;

	struct pci_root *root;
	uint8_t devfn;
	bool added;
	/* Taken out of its root: BARs never claim a bus range again (config
	 * lock). */
	bool detached;

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
/* Recompute where every BAR decodes (config lock held).  0, or -EAGAIN /
 * -ENOMEM when a BAR that should decode could not be put on its bus yet
 * (dev->bars_pending is then set: retried at the next config write). */
int pci_device_update_bars(struct pci_device *dev);
/* pci_device_update_bars() when an earlier update is pending, else 0. */
int pci_device_retry_bars(struct pci_device *dev);
/* After a config write returned @ret, with no PCI lock held: true when
 * the caller should retry the pending BAR update once (pci_device_retry_bars()
 * under the config lock) because a grace period has just freed the retired
 * tables; false when @ret is not -EAGAIN or the caller is inside a read
 * section (it must not wait: the next config write retries). */
bool pci_bars_retry_wait(int ret);
/* Stop every BAR decoding and take it off the bus (config lock held).
 * False when a bus failed to release a range (retry later). */
bool pci_device_unmap_bars(struct pci_device *dev);
void pci_device_free(struct pci_device *dev);
/* Store @addr in BAR @idx's registers, keeping its flag bits (raw). */
void pci_bar_store(struct pci_device *dev, unsigned idx, uint64_t addr);
int pci_cap_add_locked(struct pci_device *dev, const uint8_t *data, size_t len,
		       const uint8_t *wmask, uint8_t *offset);
uint32_t pci_device_config_read_locked(struct pci_device *dev, uint32_t offset,
				       unsigned len);
/* 0, or -EAGAIN / -ENOMEM as pci_device_update_bars(). */
int pci_device_config_write_locked(struct pci_device *dev, uint32_t offset,
				   unsigned len, uint32_t value);

/* Config lock held, at the end of an operation: did a BAR stop decoding?
 * (Clears the flag.)  Pass the result to pci_dispatch_wait() after
 * dropping the config lock. */
bool pci_device_sync_take(struct pci_device *dev);
/* @pending: wait for the BAR dispatches of @dev other threads are running
 * (reclaim_wait(dev)); @dev is not dereferenced.  -EINPROGRESS when it could not wait for a thread that
 * is itself waiting inside a callback (a cycle of waits), else 0. */
int pci_dispatch_wait(struct pci_device *dev, bool pending);
/* Free @dev once no read section can reach it (out of the root, no BAR on
 * a bus). */
void pci_device_retire(struct pci_device *dev);

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
int pci_root_bar_release(struct pci_bar_state *bar);

#endif
