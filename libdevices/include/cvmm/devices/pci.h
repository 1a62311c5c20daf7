/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices PCI: a PCI segment (bus 0) with a host bridge, configuration
 * mechanism #1 (ports 0xCF8/0xCFC) and ECAM (MMCONFIG), and a framework for
 * PCI functions: config space with per-bit writable and write-1-to-clear
 * masks, BARs (I/O, 32- and 64-bit memory, prefetchable) with the sizing
 * protocol, a capability list (and the PCI Express extended list), MSI,
 * MSI-X (table and PBA in a BAR, per-vector and function masks, pending
 * bits) and INTx.
 *
 * Objects
 *   struct pci_root    one PCI segment: bus 0, 32 devices x 8 functions.
 *                      Function 00:00.0 is the host bridge, created with
 *                      the root.  The root owns the functions added to it.
 *   struct pci_device  one PCI function.  Created with pci_device_create(),
 *                      set up (BARs, capabilities, MSI-X, writable
 *                      registers), then handed to pci_root_add_device().
 *
 * Config space.  Each function has 256 bytes (4 KiB when created with
 * PCI_DEVICE_EXTENDED_CONFIG) of config space.  Every byte has a writable
 * mask and a write-1-to-clear mask: a guest write of value v to a byte
 * stores (old & ~wmask) | (v & wmask) and then clears the bits of
 * (v & w1cmask).  The framework sets the masks of the standard header
 * (command, status error bits, cache line size, latency timer, interrupt
 * line, BARs); a device adds its own with pci_device_set_config_mask().
 * Reads past the end of a function's config space return 0 and writes
 * there are ignored; functions that do not exist read as all-ones.
 *
 * BARs.  The BAR registers are ordinary config bytes whose writable mask is
 * ~(size - 1) over the address bits, so the sizing protocol (write all-ones,
 * read back) yields the size mask with no special case.  Whenever a write
 * changes the command register's I/O or memory decode bit or a BAR's
 * address, the framework recomputes where the BAR decodes and moves its
 * registration on the I/O-port or MMIO bus (see pci_root_config).  A BAR
 * decodes only when:
 *   - its decode bit (PCI_COMMAND_IO / PCI_COMMAND_MEMORY) is set,
 *   - its address is not 0,
 *   - [addr, addr + size - 1] does not wrap and its last byte is below the
 *     top of its address space: 0xFFFF for I/O, 0xFFFFFFFF (exclusive) for
 *     32-bit memory, 2^64 - 1 (exclusive) for 64-bit memory.  The all-ones
 *     address left by sizing therefore never decodes,
 *   - and the bus accepts the range (it overlaps nothing already there).
 * Otherwise the BAR simply does not decode; guest writes never fail.
 * A range that was refused is tried again on the next write to the BAR or
 * to the command register.
 *
 * Decode off.  A BAR whose decode is off is both removed from the bus and
 * checked in the dispatch path.  Every BAR access runs in a read section
 * of libdevices' reclamation domain (the one the io_bus uses: a couple of
 * plain per-thread stores, no lock) and calls the device only if the
 * BAR's decoding flag is set.  A config write that stops decoding (command
 * bit cleared, BAR moved to an invalid or refused place, reset, removal)
 * clears the flag under the config lock, drops the lock, and then waits
 * until every section that started before has left - except the calling
 * thread's own (a BAR callback that writes its function's config space
 * does not wait for itself).  Hence once that config write has returned,
 * no BAR callback of the function is running on another thread or will
 * run until decode is on again, whatever the bus still had in flight, and
 * vCPUs that keep hitting the BAR cannot starve the writer.  Concurrent
 * writers each wait for a full grace period of their own.  Because the
 * wait happens without the config lock, a BAR callback may itself make
 * config accesses while another thread turns decoding off.  A wait made
 * from inside a callback never waits for a thread that is itself waiting
 * inside a callback and started waiting later, so callbacks stopping or
 * ejecting functions on several vCPUs at once never deadlock, whichever
 * buses they run on; only in such a cycle (two callbacks stopping each
 * other's function at the same moment) can the earlier call return while
 * the later caller's callback is still running, and it then reports
 * -EINPROGRESS where it returns an error code.  BAR callbacks that access
 * a BAR again (pci_device_bar_read/write from a callback) nest at most 16
 * deep on a thread; deeper accesses fail with -ELOOP.
 * The bus registration itself is changed with the non-waiting io_bus
 * calls (io_bus_move() for a move: an access racing it sees the BAR at the
 * old or the new place, both backed by the same live function), so a
 * config write issued from inside a bus dispatch cannot deadlock on the
 * bus.
 *
 * MSI-X.  pci_device_add_msix() adds the capability and claims the table
 * and PBA ranges of their BARs; the framework serves those ranges and
 * passes the rest of the BAR to the device.  Table accesses must be 4 or 8
 * bytes, naturally aligned (PCI 3.0, 6.8.2); other accesses read 0 and
 * writes are ignored.  The PBA is read-only.  pci_device_msix_notify()
 * sends a vector's message through the function's MSI sink, or sets its
 * pending bit while the vector or the function is masked; unmasking sends
 * the pending message and clears the bit.  A VMM may give each vector an
 * event notifier (an irqfd, pci_device_msix_set_notifier()) and keep a GSI
 * route per vector from the @msix_update callback: the vector is then
 * signalled through the notifier, with the MSI sink as the fallback.
 *
 * MSI.  pci_device_add_msi() adds an MSI capability whose registers live in
 * config space; pci_device_msi_notify() sends, or sets a pending bit while
 * the vector is masked (per-vector masking), delivered on unmask.  Like
 * MSI-X, a vector may have an event notifier (pci_device_msi_set_notifier())
 * whose route the VMM keeps from the @msi_vector_update callback.
 *
 * INTx.  pci_device_set_intx() sets the function's interrupt level.  Status
 * bit 3 (Interrupt Status) reflects it; the interrupt line is asserted only
 * while the level is high, the command register's Interrupt Disable bit is
 * clear and neither MSI nor MSI-X is enabled.
 *
 * Locking.  Each function has a config lock (config space, BAR state; it
 * is the root's lock once the function is in a root, so config accesses
 * of a segment are serialised), dispatch read sections (see "Decode off")
 * and an interrupt lock (MSI and MSI-X state, PBA, INTx).  Order: config
 * lock -> interrupt lock; config lock -> io_bus writer lock (BAR
 * registration).  The interrupt lock is a leaf.  Waiting for dispatch
 * sections happens with no PCI lock held.
 * Device callbacks:
 *   - bar_read/bar_write run in a dispatch read section and hold no PCI
 *     lock: they may call the interrupt-side functions, the config-space
 *     functions (pci_device_config_*, pci_device_reset, ...), pci_root_*
 *     functions (including pci_root_remove_device() of their own
 *     function: an eject register) and dispatch config accesses on a bus.
 *     They must not call pci_root_destroy().  A callback that stops
 *     another function's BAR decoding waits for that function's running
 *     callbacks on other threads (see "Decode off" for what happens when
 *     two callbacks do that to each other at the same time).
 *   - config_read/config_write/bar_remap run under the config lock: they
 *     may call the interrupt-side functions but no config-space or
 *     pci_root_* function.
 *   - msix_update, msi_update, msi_vector_update, the MSI sink and the
 *     INTx line are called under the
 *     interrupt lock and must not call back into this function's PCI
 *     state.
 * pci_root_remove_device() stops the function's BARs decoding, waits for
 * the BAR callbacks other threads are running (as a config write does),
 * and frees the function once no dispatch can reach it - never earlier,
 * also when called from inside a callback of the function itself.
 * pci_root_destroy() must not be called from a bus callback.
 * Calls that may stop a BAR decoding (config writes, pci_device_reset(),
 * removal) wait for that function's running BAR callbacks: do not make
 * them while holding a lock those callbacks take.
 * BAR not on the bus yet (-EAGAIN).  A BAR that starts decoding, or
 * moves, replaces a table of its io_bus; the bus refuses that while 4096
 * replaced tables of it wait for a dispatch stuck in a callback (bounded
 * memory, see bus.h).  The config write is then recorded in config space
 * (the guest reads back what it wrote) but the BAR could not be put on
 * the bus yet: it does not decode, the write returns -EAGAIN, and the
 * update is level-triggered: it is retried at the next config write of
 * the function (any register), until it succeeds.  A config write made
 * outside every bus dispatch (a VMM thread, not a callback or a guest
 * access arriving through the 0xCF8/ECAM bus glue) first waits, with no
 * PCI lock held, for the dispatches running on other threads (a grace
 * period, so the replaced tables are freed) and retries once: it returns
 * -EAGAIN only if other threads refilled the bound meanwhile.  Such a
 * config write therefore waits for every running callback of every bus,
 * like io_bus_unregister(): do not make it while holding a lock a
 * callback of any bus may take.  Inside a dispatch nothing waits (the
 * caller's own dispatch would never end): -EAGAIN, and the guest's next
 * config write of the function retries.
 * All functions are safe to call from several threads.
 *
 * Wiring it up (errors unchecked for brevity):
 *
 *   struct pci_root_config rc = { .mem32 = a32, .mem64 = a64, .io = aio,
 *                                 .pio_bus = pio, .mmio_bus = mmio };
 *   pci_root_create(&rc, &root);
 *   pci_root_register_pio(root, pio);            // 0xCF8..0xCFF
 *   pci_root_register_ecam(root, mmio, 0xe0000000);
 *   pci_device_create(&info, &my_ops, my_dev, &dev);
 *   pci_device_add_bar(dev, 0, PCI_BAR_KIND_MEM64, true, 0x4000);
 *   pci_device_add_msix(dev, nvec, 0, 0x0, 0, 0x2000);
 *   pci_device_set_msi_sink(dev, &sink);         // KVM_SIGNAL_MSI, irqfd
 *   pci_device_set_intx_line(dev, &line);
 *   pci_device_config_set(dev, PCI_INTERRUPT_LINE, 1, gsi);
 *   pci_root_add_device(root, dev, 1, 0);        // 00:01.0
 *   ... vCPU exits: io_bus_read/io_bus_write(pio or mmio, ...) ...
 */
#ifndef CVMM_DEVICES_PCI_H
#define CVMM_DEVICES_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/pci_regs.h>

#include "cvmm/devices/bus.h"
#include "cvmm/devices/irq.h"

#include <cvmm/devices/version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct pci_root;
struct pci_device;
struct address_allocator;

/** Configuration mechanism #1 ports: address at 0xCF8, data at 0xCFC. */
#define PCI_CONFIG_ADDRESS_PORT 0xcf8u
#define PCI_CONFIG_DATA_PORT	0xcfcu
/** The mechanism #1 device covers 8 ports, 0xCF8..0xCFF. */
#define PCI_CONFIG_PORT_COUNT	8u
/** Size of the ECAM window of one bus (32 devices x 8 functions x 4 KiB). */
#define PCI_ECAM_BUS_SIZE	(1ull << 20)
/** Devices (slots) and functions on the root bus. */
#define PCI_ROOT_SLOTS		32u
#define PCI_ROOT_FUNCTIONS	8u
/** Largest MSI-X table (PCI_MSIX_FLAGS_QSIZE + 1 entries). */
#define PCI_MSIX_MAX_VECTORS	2048u

/** A devfn number: slot (device) in bits 7:3, function in bits 2:0. */
#define PCI_ROOT_DEVFN(slot, fn) ((uint8_t)((((slot)&0x1f) << 3) | ((fn)&7)))

/** Kind of a BAR. */
enum pci_bar_kind {
	/** I/O ports; size 4..256 bytes. */
	PCI_BAR_KIND_IO = 1,
	/** 32-bit memory; size 16 bytes .. 2 GiB. */
	PCI_BAR_KIND_MEM32 = 2,
	/** 64-bit memory, occupying this BAR and the next; size >= 16. */
	PCI_BAR_KIND_MEM64 = 3,
};

/** Flags of struct pci_device_info. */
enum {
	/** 4 KiB (PCI Express extended) config space, reachable via ECAM. */
	PCI_DEVICE_EXTENDED_CONFIG = 1u << 0,
	/** Set the multi-function bit of the header type register (the VMM
	 *  sets it on function 0 of a slot with several functions). */
	PCI_DEVICE_MULTIFUNCTION = 1u << 1,
};

/** Identity of a function (header type 0). */
struct pci_device_info {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsystem_vendor_id;
	uint16_t subsystem_id;
	uint8_t revision;
	/** Class code: base class << 16 | subclass << 8 | programming if. */
	uint32_t class_code;
	/** 0 for none, 1..4 for INTA#..INTD#. */
	uint8_t interrupt_pin;
	/** PCI_DEVICE_* flags. */
	uint32_t flags;
};

/**
 * struct pci_device_ops - what a device supplies; every member optional.
 *
 * @bar_read:   guest read of @len (1, 2, 4 or 8) bytes at @offset of BAR
 *              @bar (@offset + @len <= the BAR size; MSI-X table and PBA
 *              ranges never reach the device).  Fill @data (little
 *              endian).  Without it reads return 0.
 * @bar_write:  guest write, same conventions.  Without it writes are
 *              ignored.
 * @config_read:  called after the framework read @len bytes at @offset of
 *              config space into *@value; may replace *@value (for
 *              registers the device computes on the fly).
 * @config_write: called after the framework applied a guest write of @len
 *              bytes of @value at @offset (the masks already applied).
 * @bar_remap:  the decoded address of BAR @bar changed: @mapped tells
 *              whether it decodes now, at @addr (for @size bytes).  Lets a
 *              device move ioeventfds or direct mappings with its BAR.
 * @msix_update: MSI-X vector @vector's table entry or effective mask
 *              changed (a table write, an enable / function-mask change,
 *              a reset, or pci_device_msix_set_notifier()): its message
 *              is now (@address, @data), and @masked is true when it
 *              cannot be sent (MSI-X off, function or vector masked).  It
 *              is called before a pending message is sent on unmask, so
 *              a VMM that routes vectors through irqfds updates the route
 *              first.  Return 0 when the vector's notifier (see
 *              pci_device_msix_set_notifier()) now delivers this message,
 *              or a negative errno (the route could not be updated): the
 *              vector's messages then go to the MSI sink until the next
 *              call returns 0.  The value matters only for a vector with
 *              a notifier; when @masked, nothing is sent until the next
 *              call, so a VMM may keep the old route and return 0.  Runs
 *              under the interrupt lock: it must not call any pci_device_*
 *              function of this function.
 * @msi_update: the MSI capability's enable, address, data or number of
 *              enabled vectors changed (vector i sends data with its low
 *              log2(@nvectors) bits replaced by i).  Same rules as
 *              @msix_update.
 * @msi_vector_update: MSI vector @vector's message or effective mask
 *              changed (called for each vector the function can send,
 *              0..31, whose state changed: an enable, address, data or
 *              multiple-message-enable change, its per-vector mask bit, a
 *              reset, or pci_device_msi_set_notifier()): its message is
 *              now (@address, @data), and @masked is true when it cannot
 *              be sent (MSI off, @vector not among the enabled vectors,
 *              or masked).  Called after @msi_update and before a pending
 *              message is sent on unmask.  The return value has the
 *              meaning @msix_update's has, for the notifier of
 *              pci_device_msi_set_notifier().  Same rules as
 *              @msix_update.
 *
 * See the top of this file for what the callbacks may call.
 */
struct pci_device_ops {
	void (*bar_read)(void *opaque, unsigned bar, uint64_t offset,
			 void *data, unsigned len);
	void (*bar_write)(void *opaque, unsigned bar, uint64_t offset,
			  const void *data, unsigned len);
	void (*config_read)(void *opaque, uint32_t offset, unsigned len,
			    uint32_t *value);
	void (*config_write)(void *opaque, uint32_t offset, unsigned len,
			     uint32_t value);
	void (*bar_remap)(void *opaque, unsigned bar, bool mapped,
			  uint64_t addr, uint64_t size);
	int (*msix_update)(void *opaque, uint16_t vector, uint64_t address,
			   uint32_t data, bool masked);
	void (*msi_update)(void *opaque, bool enabled, uint64_t address,
			   uint32_t data, unsigned nvectors);
	int (*msi_vector_update)(void *opaque, unsigned vector,
				 uint64_t address, uint32_t data, bool masked);
};

/* ------------------------------------------------------------------ */
/* Functions                                                           */
/* ------------------------------------------------------------------ */

/**
 * pci_device_create() - make a PCI function (header type 0).
 * @info:   identity; copied.
 * @ops:    device callbacks, or NULL; the pointer is kept (must outlive the
 *          function).
 * @opaque: passed to every callback.
 * @out:    receives the function, owned by the caller until it is added to
 *          a root (then the root owns it).  Untouched on failure.
 *
 * Command register: I/O, memory, bus master, parity, SERR and Interrupt
 * Disable are writable; status error bits are write-1-to-clear.
 *
 * Return: 0, -EINVAL (@info or @out NULL, interrupt_pin > 4, unknown
 * flags), -ENOMEM.
 */
CVMM_EXPORT int pci_device_create(const struct pci_device_info *info,
				  const struct pci_device_ops *ops,
				  void *opaque, struct pci_device **out);

/**
 * pci_device_destroy() - free a function that was never added to a root
 * (a root frees its own functions).  NULL is accepted.
 */
CVMM_EXPORT void pci_device_destroy(struct pci_device *dev);

/**
 * pci_device_add_bar() - declare BAR @idx (0..5).
 * @kind:     I/O, 32-bit or 64-bit memory (a 64-bit BAR takes @idx and
 *            @idx + 1, so @idx <= 4).
 * @prefetch: prefetchable (memory BARs only).
 * @size:     a power of two: 4..256 for I/O, 16..2^31 for 32-bit memory,
 *            16..2^63 for 64-bit memory.
 *
 * Only before the function is added to a root.
 * Return: 0, -EINVAL (bad index, kind, size or prefetch on I/O), -EBUSY
 * (the BAR slot or its upper half is taken), -EPERM (already added).
 */
CVMM_EXPORT int pci_device_add_bar(struct pci_device *dev, unsigned idx,
				   enum pci_bar_kind kind, bool prefetch,
				   uint64_t size);

/**
 * pci_device_set_bar_address() - set BAR @idx's address register (before
 * the function is added; the root then keeps this address instead of
 * allocating one).  @addr must be aligned to the BAR size and fit its kind.
 * Return: 0, -EINVAL (no such BAR, misaligned, too high), -EPERM (already
 * added).
 */
CVMM_EXPORT int pci_device_set_bar_address(struct pci_device *dev, unsigned idx,
					   uint64_t addr);

/**
 * pci_device_bar_info() - current state of BAR @idx.
 * @addr:   receives the address programmed in the BAR registers.
 * @size:   receives its size (0 for an unused BAR or the upper half of a
 *          64-bit BAR).
 * @mapped: receives whether it decodes on the bus now.
 * Any output may be NULL.  Return: 0, -EINVAL (bad index or NULL @dev).
 */
CVMM_EXPORT int pci_device_bar_info(struct pci_device *dev, unsigned idx,
				    uint64_t *addr, uint64_t *size,
				    bool *mapped);

/**
 * pci_device_add_capability() - append a capability to the list.
 * @data:  the capability, @len bytes (2..192); data[0] is the capability
 *         id, data[1] (next pointer) is filled in by the framework.
 * @wmask: writable bits of each byte (NULL: all read-only); @len bytes.
 * @offset: receives the config offset where it was placed (may be NULL).
 *
 * Capabilities are placed dword-aligned from 0x40 upwards, in the order
 * they are added, and linked from the Capabilities Pointer (0x34); the
 * status register's Capabilities List bit is set.
 * Return: 0, -EINVAL (bad length or NULL), -ENOSPC (does not fit below
 * 0x100), -EPERM (already added to a root).
 */
CVMM_EXPORT int pci_device_add_capability(struct pci_device *dev,
					  const uint8_t *data, size_t len,
					  const uint8_t *wmask,
					  uint8_t *offset);

/**
 * pci_device_find_capability() - offset of the first capability with id
 * @cap_id, walking the list (bounded to 48 entries), or a negative errno:
 * -ENOENT none, -EINVAL NULL @dev.
 */
CVMM_EXPORT int pci_device_find_capability(struct pci_device *dev,
					   uint8_t cap_id);

/**
 * pci_device_add_ext_capability() - append a PCI Express extended
 * capability (function created with PCI_DEVICE_EXTENDED_CONFIG).
 * @cap_id, @version: header fields (version 0..15).
 * @body:  @len bytes following the 4-byte header (may be NULL if @len 0).
 * @wmask: writable bits of the body bytes (NULL: read-only).
 * @offset: receives the header offset (may be NULL).
 *
 * Placed dword-aligned from 0x100 in the order added; the header's next
 * field (bits 31:20) links them.  Until one is added, 0x100 reads 0 (an
 * empty list).  Return: 0, -EINVAL (not extended, bad version/length),
 * -ENOSPC, -EPERM (already added to a root).
 */
CVMM_EXPORT int pci_device_add_ext_capability(struct pci_device *dev,
					      uint16_t cap_id, uint8_t version,
					      const uint8_t *body, size_t len,
					      const uint8_t *wmask,
					      uint16_t *offset);

/**
 * pci_device_find_ext_capability() - offset of the first extended
 * capability with id @cap_id (walk bounded to 960 entries), -ENOENT, or
 * -EINVAL for NULL @dev.
 */
CVMM_EXPORT int pci_device_find_ext_capability(struct pci_device *dev,
					       uint16_t cap_id);

/**
 * pci_device_set_config_mask() - set the writable and write-1-to-clear
 * masks of @len bytes at @offset (device-specific registers).  @wmask or
 * @w1cmask may be NULL (leave as is).  Bytes 0x00..0x3F (the standard
 * header) are refused: the framework owns them.
 * Return: 0, -EINVAL (range outside config space or in the header).
 */
CVMM_EXPORT int pci_device_set_config_mask(struct pci_device *dev,
					   uint32_t offset, size_t len,
					   const uint8_t *wmask,
					   const uint8_t *w1cmask);

/**
 * pci_device_config_read() - read config space as the guest would.
 * @len: 1, 2 or 4, and [@offset, @offset + @len) within one dword.
 * Past the end of the config space *@value is 0 (not an error).
 * Return: 0, -EINVAL (bad length, dword crossing, NULL).
 */
CVMM_EXPORT int pci_device_config_read(struct pci_device *dev, uint32_t offset,
				       unsigned len, uint32_t *value);

/**
 * pci_device_config_write() - write config space as the guest would (masks
 * applied, BARs remapped, MSI-X and INTx updated, device notified).
 * Past the end of the config space the write is ignored (not an error).
 * When it stops a BAR decoding it waits for that BAR's running callbacks
 * (see "Decode off").
 * Return: 0, -EINVAL (bad length, dword crossing, NULL), -EINPROGRESS (the
 * write is done, but a callback on a thread itself waiting inside a
 * callback may still be running: see "Decode off"), -EAGAIN (the change
 * was recorded in config space but a BAR that should now decode could not
 * be put on its bus yet: it does not decode; retried at the next config
 * write of the function - see "BAR not on the bus yet" for when this
 * call waits and retries first), -ENOMEM (the same, for lack of memory
 * for the bus table; retried likewise).
 */
CVMM_EXPORT int pci_device_config_write(struct pci_device *dev, uint32_t offset,
					unsigned len, uint32_t value);

/**
 * pci_device_config_set() - host-side raw store of @len bytes (1..4, not
 * crossing a dword), bypassing the masks and side effects; for device
 * models that update read-only registers.  Return: 0, -EINVAL.
 */
CVMM_EXPORT int pci_device_config_set(struct pci_device *dev, uint32_t offset,
				      unsigned len, uint32_t value);

/**
 * pci_device_bar_read() / pci_device_bar_write() - a guest access of @len
 * (1, 2, 4 or 8) bytes at @offset in BAR @bar, as the bus delivers it.
 * Serves the MSI-X table and PBA, passes the rest to the device.
 * Return: 0; -ENODEV when the BAR does not decode (a read then fills
 * all-ones); -EINVAL for a bad BAR, length or an access past the BAR
 * (reads fill all-ones); -ELOOP when BAR accesses nest more than 16 deep
 * on this thread (a callback re-entering BARs; reads fill all-ones).
 */
CVMM_EXPORT int pci_device_bar_read(struct pci_device *dev, unsigned bar,
				    uint64_t offset, void *data, unsigned len);
CVMM_EXPORT int pci_device_bar_write(struct pci_device *dev, unsigned bar,
				     uint64_t offset, const void *data,
				     unsigned len);

/* ------------------------------------------------------------------ */
/* Interrupts                                                          */
/* ------------------------------------------------------------------ */

/**
 * pci_device_add_msix() - add an MSI-X capability of @nvectors entries.
 * @table_bar, @table_offset: BAR and 8-byte aligned offset of the table
 *              (16 bytes per vector).
 * @pba_bar, @pba_offset: BAR and 8-byte aligned offset of the PBA (one bit
 *              per vector, in 8-byte words).
 *
 * The BARs must be memory BARs already added and large enough; the table
 * and PBA must not overlap.  All vectors start masked, MSI-X disabled.
 * Return: 0, -EINVAL (bad arguments), -EEXIST (already has MSI-X),
 * -ENOSPC (no room in config space), -ENOMEM, -EPERM (already added).
 */
CVMM_EXPORT int pci_device_add_msix(struct pci_device *dev, uint16_t nvectors,
				    unsigned table_bar, uint32_t table_offset,
				    unsigned pba_bar, uint32_t pba_offset);

/**
 * pci_device_msix_notify() - signal MSI-X vector @vector.
 *
 * Return: 0 when the message was sent, 1 when it was left pending (vector
 * or function masked), -EINVAL (no MSI-X or @vector out of range),
 * -EAGAIN (MSI-X disabled or bus mastering off: nothing is sent or made
 * pending), or the MSI sink's error.
 */
CVMM_EXPORT int pci_device_msix_notify(struct pci_device *dev, uint16_t vector);

/**
 * pci_device_msix_set_notifier() - deliver vector @vector through @n.
 * @n: an event notifier the VMM registered as an irqfd whose GSI route it
 *     keeps equal to the vector's message (from @msix_update), or NULL to
 *     send the vector through the MSI sink again.  Not owned; it must stay
 *     valid until it is replaced or the function is destroyed.
 *
 * While @n is set and the last @msix_update for the vector returned 0 (or
 * the function has no @msix_update callback), sending the vector signals
 * @n instead of calling the MSI sink; if signalling fails the message goes
 * to the sink.  Masking is unchanged: a masked vector sets its pending bit
 * and nothing is signalled; unmasking calls @msix_update, then sends the
 * pending message (through @n when the update returned 0).  Setting a
 * notifier calls @msix_update for the vector at once (on this thread,
 * with the interrupt lock held: do not call this while holding a lock
 * that callback takes).
 *
 * Return: 0, -EINVAL (NULL @dev, no MSI-X, @vector out of range).
 * Threads: any; serialised with delivery by the interrupt lock.
 */
CVMM_EXPORT int pci_device_msix_set_notifier(struct pci_device *dev,
					     uint16_t vector,
					     struct event_notifier *n);

/**
 * pci_device_msix_vectors() - the MSI-X table size (0 without MSI-X),
 * -EINVAL for NULL.
 */
CVMM_EXPORT int pci_device_msix_vectors(struct pci_device *dev);

/**
 * pci_device_add_msi() - add an MSI capability (PCI 3.0, 6.8.1).
 * @nvectors: vectors the function can send: 1, 2, 4, 8, 16 or 32.
 * @addr64:   64-bit message address.
 * @per_vector_mask: mask and pending registers.
 *
 * Enable, multiple message enable, address, data and mask bits are
 * guest-writable; pending bits are read-only.  Messages go to the same
 * MSI sink as MSI-X.  While MSI is enabled INTx is not asserted.
 * Return: 0, -EINVAL, -EEXIST, -ENOSPC, -ENOMEM, -EPERM (already added).
 */
CVMM_EXPORT int pci_device_add_msi(struct pci_device *dev, unsigned nvectors,
				   bool addr64, bool per_vector_mask);

/**
 * pci_device_msi_notify() - signal MSI vector @vector.
 * Return: 0 sent, 1 left pending (vector masked), -EAGAIN (MSI disabled
 * or bus mastering off), -EINVAL (no MSI, or @vector not enabled).
 */
CVMM_EXPORT int pci_device_msi_notify(struct pci_device *dev, unsigned vector);

/**
 * pci_device_msi_set_notifier() - deliver MSI vector @vector through @n,
 * as pci_device_msix_set_notifier() does for MSI-X: while @n is set and
 * the last @msi_vector_update for the vector returned 0 (or the function
 * has no @msi_vector_update callback), sending the vector signals @n
 * instead of calling the MSI sink (the sink when signalling fails).
 * Masking and pending bits are unchanged.  Setting a notifier calls
 * @msi_vector_update for the vector at once (this thread, interrupt lock
 * held).  @n is not owned; NULL reverts to the sink.
 * Return: 0, -EINVAL (NULL @dev, no MSI, @vector not below the number of
 * vectors the function can send).
 */
CVMM_EXPORT int pci_device_msi_set_notifier(struct pci_device *dev,
					    unsigned vector,
					    struct event_notifier *n);

/**
 * pci_device_msi_enabled() - the number of enabled MSI vectors (0 when
 * MSI is off or absent), -EINVAL for NULL.
 */
CVMM_EXPORT int pci_device_msi_enabled(struct pci_device *dev);

/**
 * pci_device_set_msi_sink() - where MSI-X messages go (copied; NULL or a
 * zeroed sink disconnects: messages are then dropped silently).
 * Return: 0, -EINVAL (NULL @dev).
 */
CVMM_EXPORT int pci_device_set_msi_sink(struct pci_device *dev,
					const struct msi_sink *sink);

/**
 * pci_device_set_intx_line() - the line INTx drives (copied; NULL
 * disconnects).  If INTx is asserted, the old line is deasserted and the
 * new one asserted.  Return: 0, -EINVAL (NULL @dev).
 */
CVMM_EXPORT int pci_device_set_intx_line(struct pci_device *dev,
					 const struct irq_line *line);

/**
 * pci_device_msix_enabled() - 1 if MSI-X is enabled, 0 if not, -EINVAL.
 */
CVMM_EXPORT int pci_device_msix_enabled(struct pci_device *dev);

/**
 * pci_device_msix_entry() - read vector @vector's table entry.
 * Any output may be NULL.  Return: 1 masked (by vector or function mask),
 * 0 unmasked, -EINVAL.
 */
CVMM_EXPORT int pci_device_msix_entry(struct pci_device *dev, uint16_t vector,
				      uint64_t *address, uint32_t *data);

/**
 * pci_device_msix_pending() - 1 if @vector's pending bit is set, 0 if not,
 * -EINVAL.
 */
CVMM_EXPORT int pci_device_msix_pending(struct pci_device *dev,
					uint16_t vector);

/**
 * pci_device_set_intx() - set the function's INTx level (true = asserted).
 * Updates status bit 3 and, when the effective level changes, the INTx
 * line.  Return: 0, -EINVAL (NULL, or the function has no interrupt pin).
 */
CVMM_EXPORT int pci_device_set_intx(struct pci_device *dev, bool level);

/**
 * pci_device_intx_asserted() - 1 if the INTx line is currently asserted
 * (level high, Interrupt Disable clear, MSI-X off), 0 if not, -EINVAL.
 */
CVMM_EXPORT int pci_device_intx_asserted(struct pci_device *dev);

/**
 * pci_device_reset() - function-level reset: command 0, status error bits
 * cleared, BARs back to the addresses assigned when the function was
 * added (not decoding), MSI-X disabled with all vectors masked and pending
 * bits cleared, INTx deasserted.  Waits like pci_device_config_write().
 * Return: 0, -EINVAL, -EINPROGRESS (as for pci_device_config_write()).
 */
CVMM_EXPORT int pci_device_reset(struct pci_device *dev);

/* ------------------------------------------------------------------ */
/* Root                                                                */
/* ------------------------------------------------------------------ */

/**
 * struct pci_root_config - parameters of pci_root_create().
 * @mem32, @mem64, @io: allocators for BAR placement (any may be NULL).
 *        BARs without an address set by pci_device_set_bar_address() get
 *        one from here when added: I/O BARs from @io, 32-bit BARs from
 *        @mem32, 64-bit BARs from @mem64 (or @mem32 when @mem64 is NULL).
 *        The root uses them only inside pci_root_add_device() and
 *        pci_root_remove_device(), under its lock; the caller must not use
 *        them concurrently with those calls.  Not owned.
 * @pio_bus, @mmio_bus: where BARs are registered when they decode (I/O
 *        BARs on @pio_bus, memory BARs on @mmio_bus); not owned, must
 *        outlive the root.  NULL: BARs decode only through
 *        pci_device_bar_read()/pci_device_bar_write().  Either way, BARs
 *        of the root's functions that would overlap each other are
 *        refused (the later one does not decode).
 * @host_vendor_id, @host_device_id: identity of the host bridge at
 *        00:00.0; 0/0 selects 0x1b36:0x0008 (a generic PCIe host bridge).
 */
struct pci_root_config {
	struct address_allocator *mem32;
	struct address_allocator *mem64;
	struct address_allocator *io;
	struct io_bus *pio_bus;
	struct io_bus *mmio_bus;
	uint16_t host_vendor_id;
	uint16_t host_device_id;
};

/**
 * pci_root_create() - make a PCI segment with its host bridge at 00:00.0.
 * @cfg: parameters (copied), or NULL for defaults.
 * Return: 0, -EINVAL (@out NULL), -ENOMEM.
 */
CVMM_EXPORT int pci_root_create(const struct pci_root_config *cfg,
				struct pci_root **out);

/**
 * pci_root_destroy() - remove and free every function (BARs leave the
 * buses, allocations are returned) and the root.  Like
 * pci_root_remove_device(), it waits until no BAR callback of the
 * functions runs on another thread; their memory and the root's are freed
 * once no dispatch can reach them.  Not from a bus callback.  The
 * mechanism #1 / ECAM registrations (pci_root_register_*) must be gone
 * first.  NULL is accepted.
 */
CVMM_EXPORT void pci_root_destroy(struct pci_root *root);

/**
 * pci_root_add_device() - put @dev at 00:@slot.@fn.  On success the root
 * owns @dev (pci_root_remove_device() / pci_root_destroy() free it).  On
 * error @dev still belongs to the caller, unchanged (destroy it with
 * pci_device_destroy(), or add it elsewhere).  BARs get their addresses
 * (see struct pci_root_config) but do not decode until the guest enables
 * decoding in the command register.
 * Return: 0, -EINVAL (bad slot/function, NULL, 00:00.0), -EBUSY (occupied),
 * -ENOSPC (an allocator has no room), -ENXIO (a BAR has no address and no
 * allocator for its kind), -EEXIST (@dev is already in a root).
 */
CVMM_EXPORT int pci_root_add_device(struct pci_root *root,
				    struct pci_device *dev, unsigned slot,
				    unsigned fn);

/**
 * pci_root_remove_device() - take 00:@slot.@fn out of the root and free
 * it.  Its BARs stop decoding first; the call then waits until no BAR
 * callback of the function runs on another thread, and the function is
 * freed once no dispatch on any thread (the caller's own included, when
 * it is a BAR callback ejecting its own function) can reach it.  On
 * return the function is gone from the root, its device callbacks are not
 * called again by other threads, and the caller may release the device's
 * opaque state once its own callback (if any) has returned.  The caller
 * must first stop its own users of the function (I/O threads calling
 * pci_device_msix_notify(), pci_device_set_intx() ...): the pointer is
 * invalid after this call.  An asserted INTx line is deasserted.
 * Return: 0, -EINVAL, -ENOENT, -EINPROGRESS (removed, but a callback on a
 * thread that was itself waiting inside a callback may still be running:
 * see "Decode off"; release the opaque state only after that thread's
 * call has returned).
 */
CVMM_EXPORT int pci_root_remove_device(struct pci_root *root, unsigned slot,
				       unsigned fn);

/**
 * pci_root_get_device() - the function at 00:@slot.@fn (slot 0 fn 0 is the
 * host bridge), or NULL.  The pointer stays valid until that function is
 * removed.
 */
CVMM_EXPORT struct pci_device *pci_root_get_device(struct pci_root *root,
						   unsigned slot, unsigned fn);

/**
 * pci_root_config_read() / pci_root_config_write() - config access to
 * @bus:@devfn at @offset (0..4095), @len 1, 2 or 4 within a dword.
 * Functions that do not exist, and buses other than 0, read all-ones and
 * ignore writes.  Return: 0, -EINVAL (bad length, alignment, NULL);
 * pci_root_config_write() also -EINPROGRESS, -EAGAIN and -ENOMEM as
 * pci_device_config_write() (same waits and retry).
 */
CVMM_EXPORT int pci_root_config_read(struct pci_root *root, uint8_t bus,
				     uint8_t devfn, uint32_t offset,
				     unsigned len, uint32_t *value);
CVMM_EXPORT int pci_root_config_write(struct pci_root *root, uint8_t bus,
				      uint8_t devfn, uint32_t offset,
				      unsigned len, uint32_t value);

/**
 * pci_root_pio_read() / pci_root_pio_write() - configuration mechanism #1,
 * for an access of @len (1, 2 or 4) bytes at port @port (0xCF8..0xCFF).
 *   0xCF8: the address register, only as a 4-byte access at 0xCF8
 *          (bit 31 enable, bits 23:16 bus, 15:11 device, 10:8 function,
 *          7:2 register; reserved bits 30:24 and 1:0 read as 0).  Other
 *          accesses to 0xCF8..0xCFB read all-ones and are ignored.
 *   0xCFC..0xCFF: data; the config offset is the register plus
 *          (port - 0xCFC); an access must stay inside the dword (else it
 *          reads all-ones and is ignored).  With the enable bit clear,
 *          reads are all-ones and writes ignored.
 * Return: 0 (every access is handled), -EINVAL for NULL / bad @len / a
 * port outside 0xCF8..0xCFF; a data write also -EAGAIN / -ENOMEM as
 * pci_root_config_write() (the write was applied to config space; a BAR
 * is not on its bus yet).  The bus glue (pci_root_pio_ops()) has no way
 * to report it: the guest sees the BAR not decoding until its next config
 * write of the function succeeds in mapping it.
 */
CVMM_EXPORT int pci_root_pio_read(struct pci_root *root, uint16_t port,
				  void *data, unsigned len);
CVMM_EXPORT int pci_root_pio_write(struct pci_root *root, uint16_t port,
				   const void *data, unsigned len);

/**
 * pci_root_ecam_read() / pci_root_ecam_write() - an access at @offset
 * inside the ECAM window: bus = offset bits 27:20, device 19:15, function
 * 14:12, register 11:0.  @len 1, 2 or 4 within a dword, or 8 when 8-byte
 * aligned (two dword accesses).  Other accesses read all-ones and are
 * ignored.  Return: 0, -EINVAL for NULL or bad @len; a write also -EAGAIN
 * / -ENOMEM as pci_root_pio_write().
 */
CVMM_EXPORT int pci_root_ecam_read(struct pci_root *root, uint64_t offset,
				   void *data, unsigned len);
CVMM_EXPORT int pci_root_ecam_write(struct pci_root *root, uint64_t offset,
				    const void *data, unsigned len);

/**
 * pci_root_pio_ops() / pci_root_ecam_ops() - bus callbacks serving
 * mechanism #1 (register 8 ports at 0xCF8, opaque = the root) and ECAM
 * (register at the window base, opaque = the root, offsets as in
 * pci_root_ecam_read()).  For a VMM that registers them itself.
 */
CVMM_EXPORT const struct io_bus_ops *pci_root_pio_ops(void);
CVMM_EXPORT const struct io_bus_ops *pci_root_ecam_ops(void);

/**
 * pci_root_register_pio() - register mechanism #1 on @pio at 0xCF8..0xCFF.
 * pci_root_register_ecam() - register ECAM for bus 0 (1 MiB) on @mmio at
 * @base (1 MiB aligned).
 * The registration stays until the caller unregisters it (io_bus_*) -
 * before destroying the root.
 * Return: 0, -EINVAL (NULL, misaligned @base), or io_bus_register()'s
 * error (-EEXIST ...).
 */
CVMM_EXPORT int pci_root_register_pio(struct pci_root *root,
				      struct io_bus *pio);
CVMM_EXPORT int pci_root_register_ecam(struct pci_root *root,
				       struct io_bus *mmio, uint64_t base);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_PCI_H */
