/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: I/O bus dispatch (one type for port I/O and for MMIO).
 *
 * A bus maps non-overlapping address ranges [base, base + len) to devices.
 * A device is a pair of callbacks (struct io_bus_ops) and an opaque pointer;
 * the callbacks receive the offset of the access inside the device's range.
 * A VMM typically creates two buses, one for KVM_EXIT_IO and one for
 * KVM_EXIT_MMIO, and calls io_bus_read() / io_bus_write() from its vCPU
 * threads.
 *
 * Data convention: `data` holds `size` bytes in guest (little-endian) byte
 * order, exactly the bytes of kvm_run's io/mmio data.  Sizes are 1, 2, 4
 * or 8.
 *
 * Unknown addresses: an access that hits no device, or that starts inside
 * a device but straddles its end, goes to the bus's default handler.  The
 * built-in default reads all-ones (0xff bytes) and ignores writes; a VMM
 * may install its own with io_bus_set_default().  Either way the access is
 * counted (io_bus_unhandled_count()).
 *
 * Concurrency scheme (read-mostly, lock-free readers):
 *  - The range table is an immutable array sorted by base, published through
 *    an atomic pointer.  Lookup is a binary search: O(log n), no lock.
 *    Each change (register, unregister, move) builds a new array under the
 *    bus's writer mutex and publishes it with one atomic store, so a reader
 *    sees either the whole old table or the whole new one: a move is atomic
 *    (the range is never seen at both addresses, nor at neither).
 *  - A dispatch runs in a read section of libdevices' one reclamation
 *    domain (shared by every bus and every PCI function of the process).
 *    Each thread owns a reader record (its own cache lines; up to 512 live
 *    threads, further threads share one atomic counter), so entering and
 *    leaving a section are plain loads and stores: no locked instruction
 *    and no cache line shared between vCPUs.  The store-before-load
 *    ordering a reader needs is supplied by the writer, which calls
 *    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) before reading the
 *    records (liburcu's "memb" flavour); without membarrier readers use a
 *    fence instead.  A replaced table is retired and freed once every
 *    section that could have loaded it has ended; writers never wait for
 *    that.  A section names the bus it dispatches on, so
 *    io_bus_synchronize() and io_bus_unregister() wait only for the
 *    dispatches of that bus, not for a vCPU blocked in a callback of
 *    another bus.
 *  - Device lifetime: io_bus_unregister() removes the range, then waits for
 *    every dispatch that may have seen it to return.  When it returns 0,
 *    the device's ops will never be called again, and the caller may free
 *    the opaque state.  register, move and io_bus_unregister_nowait()
 *    never wait, so they may be called from inside a device callback (e.g.
 *    a PCI config write that moves a BAR on this or another bus).
 *  - Waiting from inside a callback (io_bus_unregister() or
 *    io_bus_synchronize() of a bus the thread is not dispatching on) waits
 *    for the other threads' dispatches only, and never for a thread that
 *    is itself waiting inside a callback and started waiting later: two
 *    vCPUs waiting for each other from callbacks, on the same or different
 *    buses, cannot deadlock.  Only in that cycle can the earlier of the two
 *    calls not guarantee that the later caller's callback has returned; it
 *    then says so (-EINPROGRESS) instead of reporting success.
 *  - Why not a rwlock: a rwlock's reader count is one cache line written by
 *    every vCPU on every exit, and a writer called from inside a dispatch
 *    (BAR move from a config write) would deadlock on it.  Figures from
 *    bench/devices/bus are in libdevices/README.md.  A membarrier interrupts
 *    every running thread of the process, so vCPUs in guest mode take one
 *    exit per reclamation step (none while the bus is only read).
 *
 * Process-wide state (libdevices, not per bus):
 *  - The reclamation domain and its reader records are global to the
 *    process (the library is loaded once).
 *  - Environment: CVMM_IO_BUS_NO_MEMBARRIER=1 (any value but "" and "0"),
 *    read once by getenv() when a thread first dispatches or the first
 *    object is retired, makes every reader of the process fence instead
 *    of relying on membarrier (tests; diagnosing seccomp filters).
 *  - fork(): libdevices registers a pthread_atfork() handler (once per
 *    process): membarrier registration belongs to the address space, so a
 *    forked child registers again or switches its readers to fences, and
 *    forgets the reader records of the parent's other threads.
 *
 * Re-entrancy: a device callback may dispatch again (to the same or another
 * bus); nesting is bounded at IO_BUS_MAX_NESTING per thread, deeper accesses
 * are refused with -ELOOP (reads all-ones), which stops device DMA / MMIO
 * recursion loops (CVE-2024-3446 class).
 *
 * Callbacks are called without any bus lock held.  Each device protects its
 * own state.
 */
#ifndef CVMM_DEVICES_BUS_H
#define CVMM_DEVICES_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmm/devices/version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct io_bus;

/** Maximum nesting of dispatches on one thread (all buses together). */
#define IO_BUS_MAX_NESTING 8

/** Returned (positive) by io_bus_read/io_bus_write when no device claimed the
 *  address and the default handler completed the access. */
#define IO_BUS_UNHANDLED 1

/**
 * A device's access callbacks.
 *
 * @read:  fill data[0..size) with the value at @offset (bytes from the start
 *         of the device's range).  The bus pre-fills data with 0xff, so a
 *         callback that leaves bytes untouched returns all-ones for them.
 * @write: consume data[0..size) written at @offset.
 *
 * size is 1, 2, 4 or 8 and offset + size <= the registered length (the bus
 * guarantees both).  Either callback may be NULL: reads then return
 * all-ones, writes are ignored (counted as handled).  The callbacks may be
 * called concurrently from several vCPU threads.
 */
struct io_bus_ops {
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned size);
	void (*write)(void *opaque, uint64_t offset, const void *data,
		      unsigned size);
};

/**
 * Create an empty bus.
 * Returns 0 and stores the bus in *out, -EINVAL if out is NULL, -ENOMEM.
 */
CVMM_EXPORT int io_bus_create(struct io_bus **out);

/**
 * Destroy a bus and every table it still holds (the memory is freed once
 * no dispatch of any bus that started earlier can hold it; this call never
 * waits).  Registered devices are not called and their opaque state is
 * not freed (the caller owns it).  No dispatch may start on the bus during
 * or after this call.  Accepts NULL.
 */
CVMM_EXPORT void io_bus_destroy(struct io_bus *bus);

/**
 * Register a device on [base, base + len).  @ops is copied (it need not
 * outlive the call); @opaque is passed to the callbacks and not owned.
 *
 * Errors: -EINVAL (bus or ops NULL, len 0), -EOVERFLOW (base + len - 1 wraps
 * past 2^64 - 1; a range ending exactly at 2^64 is fine), -EEXIST (overlaps
 * a registered range), -ENOMEM, -EAGAIN (4096 replaced tables of this bus
 * are still waiting for a dispatch that has been stuck in a callback;
 * nothing changed: memory stays bounded).
 * Never waits; callable from a callback.
 */
CVMM_EXPORT int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
				const struct io_bus_ops *ops, void *opaque);

/**
 * Remove the range registered at exactly @base, then wait until no dispatch
 * that could have found it is still running.  After it returns 0, the
 * device's callbacks are never called again.
 *
 * Errors: -EINVAL (bus NULL), -ENOENT (nothing registered at base),
 * -EDEADLK (the calling thread is inside a dispatch of this bus: waiting
 * would never end; nothing is removed — use io_bus_unregister_nowait()),
 * -ENOMEM (nothing is removed), -EINPROGRESS (called from inside a
 * callback of another bus: the range IS removed, but a thread that was
 * itself waiting inside a callback may still be in the device; call
 * io_bus_synchronize() from outside any dispatch before freeing the
 * opaque state).  Never -EAGAIN: removal is not limited by the bound on
 * retired tables.
 *
 * Must not be called while holding a lock that a callback of any bus may
 * take (the usual lock-order rule).
 */
CVMM_EXPORT int io_bus_unregister(struct io_bus *bus, uint64_t base);

/**
 * Remove the range registered at exactly @base without waiting.  No dispatch
 * that starts after this returns will reach the device, but dispatches
 * already running (on other threads, or the caller's own) may still be inside
 * its callbacks: keep the opaque state alive until io_bus_synchronize() has
 * returned (or for the device's whole lifetime, as a PCI device disabling its
 * BAR decoding does).  Callable from a callback.
 * Errors: -EINVAL, -ENOENT, -ENOMEM (nothing removed).  Never -EAGAIN.
 */
CVMM_EXPORT int io_bus_unregister_nowait(struct io_bus *bus, uint64_t base);

/**
 * Atomically move the range registered at @old_base to @new_base (same
 * length, ops and opaque).  Every dispatch sees the range either at its old
 * place or at its new one.  The new place may overlap the old one.
 * Moving to the same base is a successful no-op.
 *
 * Errors: -EINVAL (bus NULL), -ENOENT (nothing at old_base), -EOVERFLOW
 * (new range wraps), -EEXIST (new range overlaps another device), -ENOMEM,
 * -EAGAIN (as for io_bus_register()).
 * On error nothing changes.  Never waits; callable from a callback.
 */
CVMM_EXPORT int io_bus_move(struct io_bus *bus, uint64_t old_base,
			    uint64_t new_base);

/**
 * Wait until every dispatch (of any bus) that started before this call on
 * another thread has returned, and free retired tables that no dispatch
 * can hold any more.  Errors: -EINVAL, -EDEADLK (called from inside a
 * dispatch of this bus), -EINPROGRESS (called from inside a callback, and
 * a thread that was itself waiting inside a callback was not waited for).
 */
CVMM_EXPORT int io_bus_synchronize(struct io_bus *bus);

/**
 * Read @size bytes at @addr into @data.
 *
 * Returns 0 when a device handled the access; IO_BUS_UNHANDLED (1) when no
 * device covers addr (the default handler ran, data is all-ones with the
 * built-in default); -ERANGE when addr is inside a device but addr + size
 * runs past its end (the device is not called; the default handler ran and
 * the access is counted); -EINVAL (NULL bus/data, size not 1/2/4/8; data is
 * filled with 0xff when not NULL and size <= 8); -EOVERFLOW (addr + size
 * wraps; data all-ones); -ELOOP (nesting deeper than IO_BUS_MAX_NESTING;
 * data all-ones).  Safe from any number of threads at once.
 */
CVMM_EXPORT int io_bus_read(struct io_bus *bus, uint64_t addr, void *data,
			    unsigned size);

/** Write @size bytes from @data at @addr; results as for io_bus_read(). */
CVMM_EXPORT int io_bus_write(struct io_bus *bus, uint64_t addr,
			     const void *data, unsigned size);

/**
 * Install the handler for unhandled accesses (misses and straddles).  Its
 * callbacks receive the absolute address as offset.  NULL ops restores the
 * built-in default (reads all-ones, writes ignored).  @ops is copied.
 * Errors: -EINVAL (bus NULL).  Must not race with dispatches: call it
 * before the vCPUs run.
 */
CVMM_EXPORT int io_bus_set_default(struct io_bus *bus,
				   const struct io_bus_ops *ops, void *opaque);

/** Number of accesses completed by the default handler so far (misses,
 *  straddles, wrapping and too-deeply-nested accesses).  0 for NULL. */
CVMM_EXPORT uint64_t io_bus_unhandled_count(const struct io_bus *bus);

/**
 * Find the range covering @addr.  On success stores its base and length
 * (either pointer may be NULL) and returns 0; -ENOENT if none; -EINVAL if
 * bus is NULL.
 */
CVMM_EXPORT int io_bus_find(struct io_bus *bus, uint64_t addr, uint64_t *base,
			    uint64_t *len);

/** Number of registered ranges (0 for NULL). */
CVMM_EXPORT size_t io_bus_count(struct io_bus *bus);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_BUS_H */
