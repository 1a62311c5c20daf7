/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvm-memory: guest physical memory for a VMM.
 *
 * A guest memory object (struct guest_memory) is an immutable, reference-
 * counted snapshot of a sorted set of non-overlapping regions.  Adding or
 * removing a region produces a new snapshot; readers that hold the old one
 * keep a consistent view until they drop their reference.  Regions are
 * reference counted too and are shared between snapshots, so a region's host
 * mapping lives as long as any snapshot that contains it.
 *
 * Every access checks the whole guest range before touching host memory:
 * an access never reaches host memory outside a region's mapping, and never
 * calls into a device (accessors only see RAM).
 *
 * Error convention: functions return 0 (or a non-negative count) on success
 * and a negative errno on failure.  Access errors are distinguished:
 *   -EOVERFLOW  gpa + len wraps past 2^64
 *   -EFAULT     gpa is not inside any region (a hole or past the end of RAM)
 *   -ENXIO      the range starts in RAM but runs into a hole or past the end
 *               of RAM (nothing was accessed: checks precede the copy)
 *   -EINVAL     bad argument (NULL, misaligned atomic, bad flags, len 0 where
 *               a length is required)
 * A zero-length read or write succeeds without touching anything, wherever
 * it points.
 *
 * Threads: a snapshot is immutable and may be used from any number of threads
 * at once.  Data accesses to guest RAM are not synchronised beyond what the
 * atomic accessors promise; guest memory is shared with vCPUs anyway.
 */
#ifndef CVMM_VM_MEMORY_H
#define CVMM_VM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * The memory order of the atomic accessors.  In C it is C11's memory_order
 * itself (the typedef adds nothing).  C++ before C++23 has no memory_order
 * in the global namespace (<stdatomic.h> is a C++23 header), so there it is
 * std::memory_order: callers pass std::memory_order_acquire and so on.
 * Both are int-sized enumerations holding the compiler's __ATOMIC_* values,
 * which the static_assert below checks, so the C ABI is the same.  (A C++
 * file that included clang's C <stdatomic.h> first cannot include <atomic>
 * at all; there the global memory_order that header made is used.)
 */
#if defined(__cplusplus) && __cplusplus <= 202002L && \
	!defined(__CLANG_STDATOMIC_H)
#include <atomic>
typedef std::memory_order guest_memory_order_t;
#if defined(__ATOMIC_RELAXED) && defined(__ATOMIC_SEQ_CST)
static_assert(sizeof(std::memory_order) == sizeof(int) &&
		      static_cast<int>(std::memory_order_relaxed) ==
			      __ATOMIC_RELAXED &&
		      static_cast<int>(std::memory_order_acquire) ==
			      __ATOMIC_ACQUIRE &&
		      static_cast<int>(std::memory_order_release) ==
			      __ATOMIC_RELEASE &&
		      static_cast<int>(std::memory_order_seq_cst) ==
			      __ATOMIC_SEQ_CST,
	      "std::memory_order does not match C11 memory_order");
#endif
#else
#include <stdatomic.h>
typedef memory_order guest_memory_order_t;
#endif

#include <cvmm/vm-memory-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

/** A guest physical address. */
typedef uint64_t guest_addr_t;

/** Pages tracked by dirty logging are 4 KiB. */
#define GUEST_MEMORY_PAGE_SIZE 4096u

struct guest_region;
struct guest_memory;

/*
 * Inline fast paths.  guest_memory_find_region() and the atomic loads
 * (guest_memory_load_u16/32/64()) are static inline functions: the common
 * case, a snapshot of exactly one region (a VM whose RAM fits below the
 * 32-bit PCI hole) and valid arguments, is handled in the caller without a
 * call into the library; everything else (several regions, every error)
 * goes to the exported guest_memory_*_slow() function with the same
 * contract, so the results are the same either way.  The library also
 * exports the functions themselves under their own names (for
 * programs built before they became inline, and for callers that define
 * CVMM_VM_MEMORY_NO_INLINE before including this header to call them).
 */
#ifdef CVMM_VM_MEMORY_NO_INLINE
#define CVMM_INLINE_API(type) CVMM_EXPORT type
#else
#define CVMM_INLINE_API(type) static inline type
#endif

/*
 * Not API: the first member of every struct guest_memory, the only part of
 * a snapshot the inline fast paths read.  In a snapshot of exactly one
 * region, a copy of its guest address, size, host address and the region;
 * all zero otherwise (size 0: nothing matches, the slow path decides).
 * Immutable like the snapshot.  Its layout is part of the ABI.
 */
struct guest_memory_first_ {
	guest_addr_t gpa;
	uint64_t size;
	uint8_t *host;
	struct guest_region *region;
};

/** How a region's host memory is obtained. */
enum guest_region_backing {
	/** Anonymous private memory (MAP_PRIVATE | MAP_ANONYMOUS). */
	GUEST_REGION_ANON_PRIVATE = 0,
	/** Anonymous shared memory (MAP_SHARED | MAP_ANONYMOUS). */
	GUEST_REGION_ANON_SHARED,
	/** A new memfd, mapped shared; its fd can be passed to another
	 *  process (e.g. a vhost-user backend) with guest_region_fd(). */
	GUEST_REGION_MEMFD,
	/** An existing file, mapped shared at params.file_offset. */
	GUEST_REGION_FILE,
	/** Anonymous huge pages (MAP_HUGETLB); size must be a multiple of the
	 *  huge page size (params.huge_page_size, default 2 MiB).  Always
	 *  reserved: GUEST_REGION_NORESERVE is ignored here, since a huge page
	 *  fault without a reservation kills the process with SIGBUS. */
	GUEST_REGION_HUGETLB,
	/** The caller's existing mapping at params.host_addr (page aligned);
	 *  the library never unmaps it.  GUARD_PAGES is refused (-EINVAL);
	 *  READONLY is enforced by the accessors only (the mapping is not
	 *  changed). */
	GUEST_REGION_USER,
};

/** Region flags (guest_region_params.flags). */
enum {
	/** Surround the mapping with one PROT_NONE page on each side, so a
	 *  host overrun faults instead of corrupting a neighbour. */
	GUEST_REGION_GUARD_PAGES = 1u << 0,
	/** Track pages written through this library (see dirty log below). */
	GUEST_REGION_DIRTY_LOG = 1u << 1,
	/** Map read-only on the host; writes through the library get -EPERM. */
	GUEST_REGION_READONLY = 1u << 2,
	/** MAP_NORESERVE: do not reserve swap for the mapping. */
	GUEST_REGION_NORESERVE = 1u << 3,
};

/** Log levels for the optional log callbacks. */
enum guest_memory_log_level {
	GUEST_MEMORY_LOG_ERROR,
	GUEST_MEMORY_LOG_WARN,
	GUEST_MEMORY_LOG_DEBUG
};

/**
 * typedef guest_memory_log_fn - a log callback, set per object (there is no
 * process-wide one): guest_region_params.log for the region being created
 * (and, through the same params, for guest_memory_create_ranges()).  Only
 * region creation has anything to say; snapshots and accessors report
 * through their return values alone.
 * @msg is at most 255 bytes and valid during the call only; @opaque is the
 * pointer given with the callback.  It is called on the thread that made
 * the call that has something to say, never after that call returns.  The
 * library never prints on its own: without a callback it is silent.
 */
typedef void (*guest_memory_log_fn)(enum guest_memory_log_level level,
				    const char *msg, void *opaque);

/** Parameters for guest_region_create(). Zero-initialise, then fill. */
struct guest_region_params {
	guest_addr_t gpa; /**< guest physical start, page aligned */
	uint64_t size;	  /**< bytes, non-zero, page aligned; gpa + size
				     must stay below 2^64 */
	enum guest_region_backing backing;
	unsigned int flags;   /**< GUEST_REGION_* flags */
	int fd;		      /**< GUEST_REGION_FILE: the file (not taken over;
				     the library dups it).  A regular file must
				     cover file_offset + size (a mapping past
				     EOF would SIGBUS on access). */
	uint64_t file_offset; /**< GUEST_REGION_FILE: page-aligned offset */
	void *host_addr;      /**< GUEST_REGION_USER: the caller's mapping */
	uint64_t huge_page_size; /**< GUEST_REGION_HUGETLB: 0 = 2 MiB */
	const char *name; /**< GUEST_REGION_MEMFD: memfd name (may be NULL) */
	/** Told why creating this region failed when the error code alone
	 *  does not say (e.g. which huge page pool is missing); NULL: silent.
	 *  Called only during guest_region_create(); not kept. */
	guest_memory_log_fn log;
	void *log_opaque; /**< passed to @log */
};

/* ------------------------------------------------------------------ regions */

/**
 * guest_region_create() - map a region of guest RAM.
 * @params: what to map; copied, need not outlive the call.
 * @out: receives the region with one reference owned by the caller.
 *
 * Errors: -EINVAL (NULL argument, zero, unaligned or wrapping size/gpa,
 * unknown backing or flags, NULL or unaligned host_addr for USER, GUARD_PAGES
 * with USER, fd not open, unaligned file_offset, a regular file too short,
 * huge page size not a power of two or not dividing size), -ENOMEM (mapping
 * failed), -ENOTSUP (HUGETLB requested but no huge pages of that size are
 * available; @params->log, if set, is told why), or the errno of
 * mmap/memfd (e.g. -EACCES: FILE opened read-only without READONLY).
 */
CVMM_EXPORT int guest_region_create(const struct guest_region_params *params,
				    struct guest_region **out);

/** guest_region_ref() - take another reference; returns @r. */
CVMM_EXPORT struct guest_region *guest_region_ref(struct guest_region *r);

/** guest_region_unref() - drop a reference; unmaps on the last. NULL is
 *  accepted. */
CVMM_EXPORT void guest_region_unref(struct guest_region *r);

/* The accessors below return 0 / NULL / -1 for a NULL @r. */

/** guest_region_gpa() - guest physical start of @r. */
CVMM_EXPORT guest_addr_t guest_region_gpa(const struct guest_region *r);

/** guest_region_size() - size of @r in bytes. */
CVMM_EXPORT uint64_t guest_region_size(const struct guest_region *r);

/** guest_region_host_addr() - host virtual address of @r's first byte
 *  (for KVM_SET_USER_MEMORY_REGION). Valid while @r is referenced. */
CVMM_EXPORT void *guest_region_host_addr(const struct guest_region *r);

/** guest_region_fd() - the backing fd (MEMFD or FILE), owned by the region,
 *  with its offset in @offset (may be NULL); -1 for other backings. */
CVMM_EXPORT int guest_region_fd(const struct guest_region *r, uint64_t *offset);

/** guest_region_flags() - the GUEST_REGION_* flags @r was created with. */
CVMM_EXPORT unsigned int guest_region_flags(const struct guest_region *r);

/* ---------------------------------------------------------------- snapshots */

/**
 * guest_memory_create() - a snapshot holding @n regions.
 * @regions: the regions, in any order; each gains a reference.
 * @n: number of regions, may be 0.
 * @out: receives the snapshot with one reference owned by the caller.
 *
 * Errors: -EEXIST if two regions overlap (or one is given twice), -EINVAL
 * for NULL arguments (@regions may be NULL when @n is 0, no entry may be
 * NULL), -ENOMEM (also for an @n too large for any array, refused before
 * @regions is read).  On error no reference is taken and *@out is not
 * written.
 */
CVMM_EXPORT int guest_memory_create(struct guest_region *const *regions,
				    size_t n, struct guest_memory **out);

/** One range of guest RAM for guest_memory_create_ranges(). */
struct guest_memory_range {
	guest_addr_t gpa; /**< guest physical start, page aligned */
	uint64_t size;	  /**< bytes, non-zero, page aligned */
};

/**
 * guest_memory_create_ranges() - map one region per range and make the
 * snapshot of them, in one call: what guest_region_create() for each
 * range, guest_memory_create() and guest_region_unref() for each region
 * would do.
 * @ranges: @n ranges, in any order (may be NULL when @n is 0).
 * @params: backing, flags, huge_page_size, name and log callback for every
 *   region; NULL means all defaults (GUEST_REGION_ANON_PRIVATE, no flags,
 *   silent).  Its gpa and size must be 0 (each range gives its own), and
 *   FILE and USER backings are refused: one fd or host mapping cannot back
 *   several ranges (create those regions with guest_region_create()).
 * @out: receives the snapshot with one reference owned by the caller; the
 *   snapshot holds the only references to the regions, so they are
 *   unmapped when the last snapshot holding them goes
 *   (guest_memory_region_at() reaches them).
 *
 * Errors: -EINVAL (NULL @out, NULL @ranges with @n > 0, gpa or size set in
 * @params, FILE or USER backing, a range guest_region_create() refuses:
 * zero, unaligned or wrapping), -EEXIST (two ranges overlap), -ENOMEM (also
 * for an @n too large for any array), or any error of guest_region_create()
 * (e.g. -ENOTSUP for missing huge pages, told to @params->log).  On error
 * every region made so far is unmapped again and *@out is not written.
 * Threads: like guest_region_create(); @params->log is called on the
 * calling thread only.
 */
CVMM_EXPORT int
guest_memory_create_ranges(const struct guest_memory_range *ranges, size_t n,
			   const struct guest_region_params *params,
			   struct guest_memory **out);

/**
 * guest_memory_add_region() - a new snapshot: @m plus @r.
 * @m is unchanged.  @out receives a new snapshot (one reference, caller's);
 * it takes its own reference to @r.
 * Errors: -EEXIST if @r overlaps a region of @m, -EINVAL for NULL
 * arguments, -ENOMEM.
 */
CVMM_EXPORT int guest_memory_add_region(const struct guest_memory *m,
					struct guest_region *r,
					struct guest_memory **out);

/**
 * guest_memory_remove_region() - a new snapshot: @m without the region
 * that starts at @gpa and has @size bytes.
 * @removed: if non-NULL, receives that region with a reference the caller
 * now owns.
 * Errors: -ENOENT if no region matches exactly, -EINVAL for NULL @m or
 * @out, -ENOMEM.
 */
CVMM_EXPORT int guest_memory_remove_region(const struct guest_memory *m,
					   guest_addr_t gpa, uint64_t size,
					   struct guest_memory **out,
					   struct guest_region **removed);

/** guest_memory_ref() - take another reference; returns @m. */
CVMM_EXPORT struct guest_memory *guest_memory_ref(struct guest_memory *m);

/** guest_memory_unref() - drop a reference; NULL is accepted. */
CVMM_EXPORT void guest_memory_unref(struct guest_memory *m);

/** guest_memory_num_regions() - how many regions @m holds (0 for NULL). */
CVMM_EXPORT size_t guest_memory_num_regions(const struct guest_memory *m);

/** guest_memory_region_at() - the @i-th region in address order (no new
 *  reference), or NULL if @i is out of range. */
CVMM_EXPORT struct guest_region *
guest_memory_region_at(const struct guest_memory *m, size_t i);

/** guest_memory_find_region() - the region containing @gpa (no new
 *  reference), or NULL.  O(log n); inline when @m has one region (see
 *  "Inline fast paths" above). */
CVMM_INLINE_API(struct guest_region *)
guest_memory_find_region(const struct guest_memory *m, guest_addr_t gpa);

/** guest_memory_end() - one past the highest guest address in RAM, 0 if
 *  @m is empty. */
CVMM_EXPORT guest_addr_t guest_memory_end(const struct guest_memory *m);

/* ------------------------------------------------------------------- access */

/**
 * guest_memory_check_range() - 0 if [@gpa, @gpa+@len) lies wholly in RAM
 * (possibly across adjacent regions), else the error an access would give.
 * A zero @len gives 0 wherever it points; NULL @m gives -EINVAL.
 */
CVMM_EXPORT int guest_memory_check_range(const struct guest_memory *m,
					 guest_addr_t gpa, uint64_t len);

/**
 * guest_memory_read() - copy @len bytes of guest RAM at @gpa into @buf.
 * The range may cross region boundaries.  Checked as a whole first: on error
 * nothing is copied.  Returns 0 or -EOVERFLOW/-EFAULT/-ENXIO/-EINVAL.
 */
CVMM_EXPORT int guest_memory_read(const struct guest_memory *m,
				  guest_addr_t gpa, void *buf, size_t len);

/**
 * guest_memory_write() - copy @len bytes from @buf into guest RAM at @gpa.
 * As guest_memory_read(); also -EPERM when any part of the range is in a
 * read-only region (checked before anything is written).  Marks the
 * pages dirty in regions that log.
 */
CVMM_EXPORT int guest_memory_write(const struct guest_memory *m,
				   guest_addr_t gpa, const void *buf,
				   size_t len);

/**
 * guest_memory_fill() - set @len bytes at @gpa to @byte (checked like
 * guest_memory_write()).
 */
CVMM_EXPORT int guest_memory_fill(const struct guest_memory *m,
				  guest_addr_t gpa, int byte, size_t len);

/* Little-endian typed accesses.  Any alignment is accepted; the value may
 * even straddle two adjacent regions.  Same errors as read/write. */
CVMM_EXPORT int guest_memory_read_u8(const struct guest_memory *m,
				     guest_addr_t gpa, uint8_t *val);
CVMM_EXPORT int guest_memory_read_u16(const struct guest_memory *m,
				      guest_addr_t gpa, uint16_t *val);
CVMM_EXPORT int guest_memory_read_u32(const struct guest_memory *m,
				      guest_addr_t gpa, uint32_t *val);
CVMM_EXPORT int guest_memory_read_u64(const struct guest_memory *m,
				      guest_addr_t gpa, uint64_t *val);
CVMM_EXPORT int guest_memory_write_u8(const struct guest_memory *m,
				      guest_addr_t gpa, uint8_t val);
CVMM_EXPORT int guest_memory_write_u16(const struct guest_memory *m,
				       guest_addr_t gpa, uint16_t val);
CVMM_EXPORT int guest_memory_write_u32(const struct guest_memory *m,
				       guest_addr_t gpa, uint32_t val);
CVMM_EXPORT int guest_memory_write_u64(const struct guest_memory *m,
				       guest_addr_t gpa, uint64_t val);

/*
 * Atomic little-endian accesses with an explicit memory order (C11's
 * memory_order; std::memory_order from C++, see guest_memory_order_t).  The
 * address must be naturally aligned (-EINVAL otherwise), which also keeps it
 * inside one region.  Stores accept memory_order_relaxed, _release and
 * _seq_cst; loads accept _relaxed, _acquire and _seq_cst (others: -EINVAL).
 * -EFAULT when the address is not in RAM; stores give -EPERM in a read-only
 * region and mark the page dirty in a region that logs.
 */
CVMM_INLINE_API(int)
guest_memory_load_u16(const struct guest_memory *m, guest_addr_t gpa,
		      uint16_t *val, guest_memory_order_t order);
CVMM_INLINE_API(int)
guest_memory_load_u32(const struct guest_memory *m, guest_addr_t gpa,
		      uint32_t *val, guest_memory_order_t order);
CVMM_INLINE_API(int)
guest_memory_load_u64(const struct guest_memory *m, guest_addr_t gpa,
		      uint64_t *val, guest_memory_order_t order);
CVMM_EXPORT int guest_memory_store_u16(const struct guest_memory *m,
				       guest_addr_t gpa, uint16_t val,
				       guest_memory_order_t order);
CVMM_EXPORT int guest_memory_store_u32(const struct guest_memory *m,
				       guest_addr_t gpa, uint32_t val,
				       guest_memory_order_t order);
CVMM_EXPORT int guest_memory_store_u64(const struct guest_memory *m,
				       guest_addr_t gpa, uint64_t val,
				       guest_memory_order_t order);

/**
 * guest_memory_translate() - host pointer for [@gpa, @gpa+@len) when the
 * whole range is inside one region.
 * @len: must be non-zero (-EINVAL otherwise).
 * @host: receives the host address of @gpa.
 * Returns 0, or -EOVERFLOW/-EFAULT, or -ENXIO when the range leaves the
 * region (even into an adjacent one: use guest_memory_contiguous() or
 * guest_memory_iovecs() to split).  The pointer stays valid while the caller
 * holds a reference to @m.  Writes through it are not dirty-logged: call
 * guest_memory_mark_dirty().  In a READONLY region the host mapping is
 * read-only (except for USER regions): do not write through the pointer.
 */
CVMM_EXPORT int guest_memory_translate(const struct guest_memory *m,
				       guest_addr_t gpa, uint64_t len,
				       void **host);

/**
 * guest_memory_contiguous() - host pointer for @gpa and the number of bytes
 * from @gpa to the end of its region (stored in @avail).
 * Errors: -EFAULT when @gpa is not in RAM, -EINVAL for NULL arguments.
 */
CVMM_EXPORT int guest_memory_contiguous(const struct guest_memory *m,
					guest_addr_t gpa, void **host,
					uint64_t *avail);

/**
 * guest_memory_iovecs() - describe [@gpa, @gpa+@len) as host iovecs, one per
 * region crossed, into @iov (capacity @max).
 * Returns the number of iovecs used, or -ENOBUFS when @max is too small,
 * or the access errors, or -EINVAL (NULL @m, @max < 0, NULL @iov with
 * @max > 0).  len 0 gives 0 iovecs.
 */
CVMM_EXPORT int guest_memory_iovecs(const struct guest_memory *m,
				    guest_addr_t gpa, uint64_t len,
				    struct iovec *iov, int max);

/**
 * guest_memory_read_from_fd() - read up to @len bytes from @fd straight into
 * guest RAM at @gpa (readv, or preadv at @offset when @offset >= 0).
 * The guest range is checked first (access errors, or -EPERM if any of it is
 * read-only) and nothing is read on error.  Returns the byte count
 * transferred (may be short, like readv; a range crossing more than IOV_MAX
 * regions is transferred short) or a negative errno (-EINVAL for NULL @m,
 * @fd < 0 or @len > SSIZE_MAX; else the errno of the call, e.g. -EINTR,
 * -EAGAIN, -EBADF).  Dirty-logs what was written.  @len 0 returns 0.
 */
CVMM_EXPORT ssize_t guest_memory_read_from_fd(const struct guest_memory *m,
					      guest_addr_t gpa, size_t len,
					      int fd, off_t offset);

/**
 * guest_memory_write_to_fd() - write up to @len bytes of guest RAM at @gpa
 * to @fd (writev, or pwritev at @offset when @offset >= 0).  Returns the byte
 * count (may be short) or a negative errno, as guest_memory_read_from_fd()
 * (read-only regions may be written out).
 */
CVMM_EXPORT ssize_t guest_memory_write_to_fd(const struct guest_memory *m,
					     guest_addr_t gpa, size_t len,
					     int fd, off_t offset);

/* --------------------------------------------------------------- dirty log */

/**
 * guest_memory_mark_dirty() - mark the pages of [@gpa, @gpa+@len) dirty in
 * the regions that log (for writes made through translated pointers).
 * Parts of the range outside RAM are ignored.
 */
CVMM_EXPORT void guest_memory_mark_dirty(const struct guest_memory *m,
					 guest_addr_t gpa, uint64_t len);

/**
 * guest_region_dirty_bitmap_words() - how many uint64_t words a dirty
 * bitmap for @r needs (one bit per 4 KiB page, bit 0 of word 0 = first page).
 */
CVMM_EXPORT size_t guest_region_dirty_bitmap_words(const struct guest_region *r);

/**
 * guest_region_dirty_get_and_clear() - atomically take the dirty bits of @r.
 * @bitmap: receives guest_region_dirty_bitmap_words() words.
 * @words: capacity of @bitmap in words (-ENOBUFS if too small).
 * Errors: -ENOTSUP if @r was not created with GUEST_REGION_DIRTY_LOG,
 * -EINVAL for NULL arguments.
 * Returns the number of dirty pages taken (saturated at INT_MAX).  Each word
 * is taken with an atomic exchange: a page dirtied concurrently is reported
 * either by this call or by the next one, never lost.  A caller that copies
 * a page after this call reported it sees every write through the library
 * (or guest_memory_mark_dirty()) that returned before the call; the marking
 * orders the data before its bit (a full fence), so a write racing the
 * harvest is either in the copy or reported again by the next call.
 */
CVMM_EXPORT int guest_region_dirty_get_and_clear(struct guest_region *r,
						 uint64_t *bitmap,
						 size_t words);

/* ------------------------------------------------------ inline fast paths */

/** guest_memory_find_region_slow() - guest_memory_find_region() without
 *  its inline fast path (what it falls back to). */
CVMM_EXPORT struct guest_region *
guest_memory_find_region_slow(const struct guest_memory *m, guest_addr_t gpa);
/** guest_memory_load_u16_slow() - guest_memory_load_u16() without its
 *  inline fast path (what it falls back to); also _u32 and _u64. */
CVMM_EXPORT int guest_memory_load_u16_slow(const struct guest_memory *m,
					   guest_addr_t gpa, uint16_t *val,
					   guest_memory_order_t order);
CVMM_EXPORT int guest_memory_load_u32_slow(const struct guest_memory *m,
					   guest_addr_t gpa, uint32_t *val,
					   guest_memory_order_t order);
CVMM_EXPORT int guest_memory_load_u64_slow(const struct guest_memory *m,
					   guest_addr_t gpa, uint64_t *val,
					   guest_memory_order_t order);

#ifndef CVMM_VM_MEMORY_NO_INLINE

/* Casts that C++ -Wold-style-cast accepts too. */
#ifdef __cplusplus
#define CVMM_GM_PCAST_(type, p) reinterpret_cast<type>(p)
#define CVMM_GM_ICAST_(v)	static_cast<int>(v)
#else
#define CVMM_GM_PCAST_(type, p) ((type)(const void *)(p))
#define CVMM_GM_ICAST_(v)	((int)(v))
#endif

/* The fast-path view of @m (not NULL). */
#define CVMM_GM_FIRST_(m) CVMM_GM_PCAST_(const struct guest_memory_first_ *, m)

static inline struct guest_region *
guest_memory_find_region(const struct guest_memory *m, guest_addr_t gpa)
{
	if (__builtin_expect(!!m, 1) &&
	    __builtin_expect(
		    gpa - CVMM_GM_FIRST_(m)->gpa < CVMM_GM_FIRST_(m)->size, 1))
		return CVMM_GM_FIRST_(m)->region;
	return guest_memory_find_region_slow(m, gpa);
}

/*
 * A naturally aligned object that starts in a region ends in it (regions
 * are page aligned), so the fast path checks only that @gpa is in the
 * only region.  Memory orders other than relaxed, acquire and seq_cst
 * go to the slow path (which refuses them).  Guest memory is little
 * endian.
 */
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
	__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define CVMM_GM_LE_(bits, v) __builtin_bswap##bits(v)
#else
#define CVMM_GM_LE_(bits, v) (v)
#endif

#define CVMM_GM_LOAD_(bits)                                                      \
	static inline int guest_memory_load_u##bits(                             \
		const struct guest_memory *m, guest_addr_t gpa,                  \
		uint##bits##_t *val, guest_memory_order_t order)                 \
	{                                                                        \
		if (__builtin_expect(!!m, 1)) {                                  \
			const struct guest_memory_first_ *f_ =                   \
				CVMM_GM_FIRST_(m);                               \
			guest_addr_t off_ = gpa - f_->gpa;                       \
                                                                                 \
			/* The region test first: with several regions it   \
			 * fails and the slow path checks the rest. */    \
			if (__builtin_expect(off_ < f_->size && val &&           \
						     !(gpa & (bits / 8 - 1)),    \
					     1)) {                               \
				const uint##bits##_t *p_ =                       \
					CVMM_GM_PCAST_(const uint##bits##_t *,   \
						       f_->host + off_);         \
				uint##bits##_t v_;                               \
                                                                                 \
				switch (CVMM_GM_ICAST_(order)) {                 \
				case __ATOMIC_RELAXED:                           \
					v_ = __atomic_load_n(                    \
						p_, __ATOMIC_RELAXED);           \
					break;                                   \
				case __ATOMIC_ACQUIRE:                           \
					v_ = __atomic_load_n(                    \
						p_, __ATOMIC_ACQUIRE);           \
					break;                                   \
				case __ATOMIC_SEQ_CST:                           \
					v_ = __atomic_load_n(                    \
						p_, __ATOMIC_SEQ_CST);           \
					break;                                   \
				default:                                         \
					return guest_memory_load_u##bits##_slow( \
						m, gpa, val, order);             \
				}                                                \
				*val = CVMM_GM_LE_(bits, v_);                    \
				return 0;                                        \
			}                                                        \
		}                                                                \
		return guest_memory_load_u##bits##_slow(m, gpa, val, order);     \
	}

CVMM_GM_LOAD_(16)
CVMM_GM_LOAD_(32)
CVMM_GM_LOAD_(64)

#endif /* !CVMM_VM_MEMORY_NO_INLINE */

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VM_MEMORY_H */
