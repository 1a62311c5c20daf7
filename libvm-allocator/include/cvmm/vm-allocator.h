/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvm-allocator: address-range and id allocators for a VMM.
 *
 * Address allocator (address_allocator_*)
 * ---------------------------------------
 * Hands out non-overlapping ranges of a 64-bit address space, e.g. MMIO
 * windows, PCI BARs or guest RAM slots.  The managed range is INCLUSIVE,
 * [base, last], so the whole 64-bit space [0, UINT64_MAX] is expressible.
 * Allocations are identified by their start address.
 *
 * Placement policies:
 *   ADDRESS_ALLOC_FIRST_FIT  the lowest suitably aligned address that fits
 *   ADDRESS_ALLOC_LAST_FIT   the highest suitably aligned address that fits
 *   ADDRESS_ALLOC_EXACT      exactly the address the caller asks for
 * Alignment is any power of two from 1 to 2^63.
 *
 * Implementation and complexity: the free ranges live in an AVL tree keyed
 * by start address; each node also stores the largest free-range length in
 * its subtree, so searches skip every subtree that cannot hold the request.
 * A second AVL tree holds the allocated ranges so address_allocator_free()
 * can verify its argument.  Freed ranges are coalesced with free neighbours,
 * so free ranges are always maximal.  With n free ranges:
 *   - exact allocation, free, lookup: O(log n);
 *   - first-fit / last-fit with alignment 1 (or whenever the first range in
 *     search order that is long enough is also usable): O(log n);
 *   - first-fit / last-fit in general: O((k + 1) log n), where k is the number
 *     of free ranges that are long enough for the size but cannot hold it
 *     at the requested alignment, and precede the answer in search order.
 *     A range at least size + alignment - 1 long always fits, so k only
 *     counts ranges of length in [size, size + alignment - 1).
 * Nothing is ever a linear scan of all ranges.
 *
 * Id allocator (id_allocator_*)
 * -----------------------------
 * Hands out small integer ids in an inclusive range [first, last], e.g.
 * GSIs, PCI slots or MSI vectors: the lowest free id first (freed ids are
 * reused), or a specific id.  It is a bitmap (one bit per id) with a hint
 * word, so allocating the lowest free id is amortised O(1) and at worst
 * O((last - first + 1) / 64); memory is (last - first + 1) / 8 bytes.
 *
 * Error convention: functions return 0 (or a non-negative count) on success
 * and a negative errno on failure; a failed call leaves the allocator
 * unchanged.  Each error is listed with its function.  Nothing here prints,
 * exits or aborts.
 *
 * Threads: the allocators are NOT thread-safe.  A caller that shares one
 * between threads must serialise every call (including the queries) with
 * its own lock.  Different allocators are independent.
 */
#ifndef CVMM_VM_ALLOCATOR_H
#define CVMM_VM_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmm/vm-allocator-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct address_allocator;
struct id_allocator;

/** Where address_allocator_allocate() places a range. */
enum address_allocator_policy {
	/** Lowest aligned address at which the range fits. */
	ADDRESS_ALLOC_FIRST_FIT = 0,
	/** Highest aligned address at which the range fits. */
	ADDRESS_ALLOC_LAST_FIT = 1,
	/** Exactly the address passed in *addr. */
	ADDRESS_ALLOC_EXACT = 2,
};

/* ------------------------------------------------------------------ */
/* Address allocator                                                   */
/* ------------------------------------------------------------------ */

/**
 * address_allocator_create() - make an allocator for [base, last].
 * @base: first address of the managed range.
 * @last: last address of the managed range (inclusive; base == last is a
 *        one-byte range, [0, UINT64_MAX] is the whole 64-bit space).
 * @out:  receives the new allocator; the caller owns it and releases it
 *        with address_allocator_destroy().  Untouched on failure.
 *
 * Initially the whole range is free.
 *
 * Return: 0, -EINVAL if @out is NULL or @base > @last, -ENOMEM if memory
 * cannot be allocated.
 */
CVMM_EXPORT int address_allocator_create(uint64_t base, uint64_t last,
					 struct address_allocator **out);

/**
 * address_allocator_destroy() - free the allocator and all its bookkeeping.
 * @a: allocator, or NULL (then nothing happens).
 *
 * Outstanding allocations need not be freed first; they are forgotten.
 */
CVMM_EXPORT void address_allocator_destroy(struct address_allocator *a);

/**
 * address_allocator_allocate() - allocate @size bytes.
 * @a:         allocator.
 * @size:      number of bytes, 1 to UINT64_MAX.
 * @alignment: the start address is a multiple of this; a power of two
 *             (1, 2, 4, ..., 2^63).
 * @policy:    placement, see enum address_allocator_policy.
 * @addr:      for ADDRESS_ALLOC_EXACT, on entry the requested start
 *             address.  On success it receives the start of the allocated
 *             range [*addr, *addr + size - 1]; untouched on failure.
 *
 * Errors are checked in this order:
 *   -EINVAL     @a or @addr is NULL, @size is 0, @alignment is not a
 *               power of two (0 included), @policy is unknown, or (EXACT)
 *               *addr is not a multiple of @alignment;
 *   -EOVERFLOW  (EXACT) *addr + size - 1 wraps past UINT64_MAX;
 *   -ERANGE     (EXACT) the range is not entirely inside [base, last];
 *   -EBUSY      (EXACT) the range overlaps an existing allocation;
 *   -ENOMEM     (FIRST_FIT / LAST_FIT) no free, suitably aligned range of
 *               @size bytes exists (exhaustion or fragmentation); or, for
 *               any policy, the bookkeeping memory could not be allocated.
 *
 * Complexity: see the top of this file.
 */
CVMM_EXPORT int address_allocator_allocate(struct address_allocator *a,
					   uint64_t size, uint64_t alignment,
					   enum address_allocator_policy policy,
					   uint64_t *addr);

/**
 * address_allocator_allocate_at() - allocate exactly [addr, addr + size - 1].
 *
 * Same as address_allocator_allocate() with ADDRESS_ALLOC_EXACT and
 * alignment 1.  Errors: -EINVAL (@a NULL or @size 0), -EOVERFLOW, -ERANGE,
 * -EBUSY, -ENOMEM (bookkeeping memory) as described there.
 */
CVMM_EXPORT int address_allocator_allocate_at(struct address_allocator *a,
					      uint64_t addr, uint64_t size);

/**
 * address_allocator_free() - free the allocation that starts at @addr.
 * @a:    allocator.
 * @addr: start address returned by an allocation.
 * @size: 0 to free whatever allocation starts at @addr; otherwise it must
 *        equal that allocation's size (a check against caller mistakes).
 *
 * The freed range is merged with adjacent free ranges.  Never allocates
 * memory, so it cannot fail for lack of memory.
 *
 * Errors are checked in this order:
 *   -EINVAL     @a is NULL;
 *   -EOVERFLOW  @size != 0 and @addr + @size - 1 wraps past UINT64_MAX;
 *   -ERANGE     @addr is outside [base, last];
 *   -ENOENT     no allocation starts at @addr (never allocated, already
 *               freed, or an address inside an allocation but not its
 *               start);
 *   -EINVAL     @size != 0 and differs from the allocation's size (nothing
 *               is freed).
 */
CVMM_EXPORT int address_allocator_free(struct address_allocator *a,
				       uint64_t addr, uint64_t size);

/**
 * address_allocator_find() - look up the allocation containing @addr.
 * @a:     allocator.
 * @addr:  any address.
 * @start: if not NULL, receives the allocation's start address.
 * @size:  if not NULL, receives its size in bytes.
 *
 * Return: 0 when found, -ENOENT when @addr is in no allocation (free, or
 * outside [base, last]), -EINVAL when @a is NULL.  O(log n).
 */
CVMM_EXPORT int address_allocator_find(const struct address_allocator *a,
				       uint64_t addr, uint64_t *start,
				       uint64_t *size);

/**
 * address_allocator_next() - iterate allocations in address order.
 * @a:     allocator.
 * @from:  lower bound.
 * @start: receives the start of the first allocation whose start is
 *         >= @from.
 * @size:  if not NULL, receives its size.
 *
 * To walk all allocations: from = 0; while (next(a, from, &s, &n) == 0) {
 * ...; if (s + n - 1 == UINT64_MAX) break; from = s + n; }.
 *
 * Return: 0 when one was found, -ENOENT when there is none, -EINVAL when
 * @a or @start is NULL.  O(log n) per call.
 */
CVMM_EXPORT int address_allocator_next(const struct address_allocator *a,
				       uint64_t from, uint64_t *start,
				       uint64_t *size);

/**
 * address_allocator_next_free() - iterate free ranges in address order.
 * @a:     allocator.
 * @from:  lower bound.
 * @start: receives the start of the first free range whose start is
 *         >= @from.
 * @last:  if not NULL, receives that range's last address (inclusive; a
 *         free range may be 2^64 bytes long, which a size cannot express).
 *
 * Free ranges are maximal: two free ranges are never adjacent.
 *
 * Return: 0 when one was found, -ENOENT when there is none, -EINVAL when
 * @a or @start is NULL.  O(log n) per call.
 */
CVMM_EXPORT int address_allocator_next_free(const struct address_allocator *a,
					    uint64_t from, uint64_t *start,
					    uint64_t *last);

/**
 * address_allocator_foreach() - call @fn for each allocation, in order.
 * @a:      allocator.
 * @fn:     called with (@opaque, start, size); a non-zero return stops the
 *          walk and is returned.  @fn must not modify the allocator.
 * @opaque: passed through to @fn.
 *
 * Return: 0 after visiting every allocation, @fn's first non-zero return
 * value, or -EINVAL when @a or @fn is NULL.
 */
CVMM_EXPORT int address_allocator_foreach(
	const struct address_allocator *a,
	int (*fn)(void *opaque, uint64_t start, uint64_t size), void *opaque);

/**
 * address_allocator_count() - number of live allocations (0 if @a is NULL).
 */
CVMM_EXPORT size_t address_allocator_count(const struct address_allocator *a);

/**
 * address_allocator_free_bytes() - total free bytes in [base, last].
 * @a:    allocator (NULL counts as 0 free bytes).
 * @is_2_64: if not NULL, set to true when the exact answer is 2^64 (the
 *        whole 64-bit space is free), which does not fit in the return
 *        value; false otherwise.
 *
 * Return: the free byte count, saturated at UINT64_MAX (so UINT64_MAX with
 * *is_2_64 false means exactly 2^64 - 1 bytes).  O(1).
 */
CVMM_EXPORT uint64_t
address_allocator_free_bytes(const struct address_allocator *a, bool *is_2_64);

/**
 * address_allocator_allocated_bytes() - total bytes in live allocations.
 *
 * Same conventions as address_allocator_free_bytes() (several allocations
 * can together cover all 2^64 bytes).  O(1).
 */
CVMM_EXPORT uint64_t address_allocator_allocated_bytes(
	const struct address_allocator *a, bool *is_2_64);

/**
 * address_allocator_range() - the managed range given at creation.
 * @base, @last: if not NULL, receive the inclusive bounds.
 *
 * Return: 0, or -EINVAL when @a is NULL.
 */
CVMM_EXPORT int address_allocator_range(const struct address_allocator *a,
					uint64_t *base, uint64_t *last);

/**
 * address_allocator_check() - verify the allocator's internal invariants.
 *
 * Checks both trees (order, AVL balance, heights, subtree maxima), that
 * free and allocated ranges are disjoint and together cover [base, last]
 * exactly, that free ranges are coalesced, and that the counters agree.
 * Meant for tests and fuzzers: O(n).
 *
 * Return: 0 when consistent, -EINVAL when @a is NULL, -EUCLEAN when an
 * invariant is broken (a bug in this library).
 */
CVMM_EXPORT int address_allocator_check(const struct address_allocator *a);

/* ------------------------------------------------------------------ */
/* Id allocator                                                        */
/* ------------------------------------------------------------------ */

/**
 * id_allocator_create() - make an allocator for ids [first, last].
 * @first, @last: inclusive bounds, @first <= @last.
 * @out:  receives the new allocator, owned by the caller (release with
 *        id_allocator_destroy()).  Untouched on failure.
 *
 * All ids start free.  Uses (last - first + 1) / 8 bytes of memory.
 *
 * Return: 0, -EINVAL if @out is NULL or @first > @last, -ENOMEM.
 */
CVMM_EXPORT int id_allocator_create(uint32_t first, uint32_t last,
				    struct id_allocator **out);

/** id_allocator_destroy() - free the allocator; NULL is accepted. */
CVMM_EXPORT void id_allocator_destroy(struct id_allocator *a);

/**
 * id_allocator_allocate() - allocate the lowest free id.
 * @a:  allocator.
 * @id: receives the id; untouched on failure.
 *
 * Return: 0, -EINVAL when @a or @id is NULL, -ENOSPC when every id is in
 * use.
 */
CVMM_EXPORT int id_allocator_allocate(struct id_allocator *a, uint32_t *id);

/**
 * id_allocator_allocate_id() - allocate the specific id @id.
 *
 * Return: 0, -EINVAL when @a is NULL, -ERANGE when @id is outside
 * [first, last], -EBUSY when @id is already allocated.
 */
CVMM_EXPORT int id_allocator_allocate_id(struct id_allocator *a, uint32_t id);

/**
 * id_allocator_free() - release @id so it can be allocated again.
 *
 * Return: 0, -EINVAL when @a is NULL, -ERANGE when @id is outside
 * [first, last], -ENOENT when @id is not allocated (never allocated, or
 * freed twice).
 */
CVMM_EXPORT int id_allocator_free(struct id_allocator *a, uint32_t id);

/**
 * id_allocator_is_allocated() - whether @id is in use.
 *
 * Return: 1 if allocated, 0 if free, -EINVAL when @a is NULL, -ERANGE when
 * @id is outside [first, last].
 */
CVMM_EXPORT int id_allocator_is_allocated(const struct id_allocator *a,
					  uint32_t id);

/**
 * id_allocator_count() - number of allocated ids (0 if @a is NULL).
 * The result can be 2^32 for a full [0, UINT32_MAX] allocator, hence the
 * 64-bit type.
 */
CVMM_EXPORT uint64_t id_allocator_count(const struct id_allocator *a);

/**
 * id_allocator_range() - the bounds given at creation.
 * @first, @last: if not NULL, receive the inclusive bounds.
 *
 * Return: 0, or -EINVAL when @a is NULL.
 */
CVMM_EXPORT int id_allocator_range(const struct id_allocator *a,
				   uint32_t *first, uint32_t *last);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VM_ALLOCATOR_H */
