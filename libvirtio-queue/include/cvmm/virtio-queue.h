/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvirtio-queue: the device side of a virtio virtqueue, split (virtio
 * 1.2, sections 2.6 and 2.7) or packed (2.8), hardened against a hostile
 * driver.
 *
 * Layouts.  The layout is chosen when the queue is activated, from the
 * negotiated features given to virtq_set_features(): VIRTIO_F_RING_PACKED
 * (bit 34) selects the packed ring.  Devices do not see the difference:
 * chains, their accessors and the completions are the same calls.  In the
 * packed layout the three areas are the descriptor ring (16-aligned, 16 *
 * size bytes, read AND written by the device), the driver event
 * suppression structure (VIRTQ_AREA_AVAIL, 4-aligned, 4 bytes) and the
 * device event suppression structure (VIRTQ_AREA_USED, 4-aligned, 4
 * bytes); the three must not overlap, and the ring and the device area
 * must be writable.  A packed queue may have any size from 1 to the
 * maximum (virtio 1.2, 2.8); a split one must be a power of two.
 * Packed buffer ids must be below the queue size (what Linux and DPDK
 * use; an id >= size breaks the queue with HEAD_OUT_OF_RANGE).
 *
 * VIRTIO_F_IN_ORDER (bit 35), in either layout: completions must come in
 * the order of the pops (a completion out of order is refused with
 * -EINVAL, a device bug that does not break the queue), and a batch
 * completion is reported to the driver as ONE used element when every
 * chain but the last was written up to its writable total (2.7.9, 2.8.9).
 *
 * Life cycle, as a transport drives it:
 *   virtq_create(max_size)            once per queue
 *   virtq_set_memory(q, mem)          the guest memory snapshot to use
 *   virtq_set_size / virtq_set_addr* / virtq_set_features
 *   virtq_set_ready(q, true)          validates and caches the ring areas
 *   ... virtq_pop / virtq_chain_* / virtq_add_used / notifications ...
 *   virtq_reset(q)                    device reset: back to unconfigured
 *
 * Ring areas.  At activation each of the three areas (descriptor table,
 * driver area "avail", device area "used") is checked for alignment (16, 2,
 * 4) and translated with guest_memory_translate().  An area must therefore
 * lie wholly inside ONE guest memory region (a ring split across two
 * adjacent regions is refused, as is one over a hole or past the end of
 * RAM), because the queue keeps a host pointer to each area and reads the
 * ring fields through it on the hot path.  The pointers stay valid because
 * the queue holds a reference to the guest memory snapshot.  The used area
 * must not be in a read-only region, and the device-written used area must
 * not overlap the device-read areas.
 *
 * Descriptors.  virtq_pop() walks a whole chain at once, loading every
 * descriptor (direct, or out of an indirect table) once into a private
 * snapshot, checking the snapshot and storing it into the caller's chain,
 * so the guest cannot change a descriptor between the check and its use.  The checks at pop are structural (indexes, loops, indirect
 * tables, ordering, zero lengths, 64-bit address wrap, 32-bit total length);
 * whether a buffer lies in guest RAM is checked when the device touches it
 * through the virtq_chain_* accessors: a bounds comparison when it lies in
 * the region that holds the descriptor table (cached at activation), else
 * one libvm-memory access that checks the whole range first.
 * Any failure puts the queue into a sticky "broken" state with a named
 * reason (enum virtq_error), and calls the device's error callback once,
 * which should set DEVICE_NEEDS_RESET and raise a configuration interrupt
 * (virtio 1.2, 2.1.2).  A broken queue pops nothing until virtq_reset().
 *
 * Threads: a queue is not internally locked; the device serialises calls
 * on one queue (its own lock or a single I/O thread).  Different queues are
 * independent.  The driver runs concurrently on vCPUs; every ordering point
 * with it is a documented acquire/release or fence.
 *
 * Errors: negative errno.  -EIO means the queue is broken (see
 * virtq_error_get()); -ENODEV that the queue is not ready (never
 * configured, deactivated or reset): every call on such a queue is safe and
 * returns -ENODEV or the documented neutral value (0, false, nothing done).
 *
 * The chain abstraction (struct virtq_chain, struct virtq_buf) is not tied
 * to the split layout, so a packed ring can produce the same chains.
 */
#ifndef CVMM_VIRTIO_QUEUE_H
#define CVMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
/* <linux/virtio_ring.h> does not compile as C++ (its vring_init() converts
 * void *): C++ code includes what it needs of the ring layout itself; this
 * header only passes struct vring_used_elem by pointer. */
struct vring_used_elem;
#else
#include <linux/virtio_ring.h>
#endif

#include <cvmm/vm-memory.h>

#include <cvmm/virtio-queue-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

/** Largest queue size a virtqueue may have (virtio 1.2, 2.7 and 2.8). */
#define VIRTQ_MAX_SIZE 32768u

struct virtq;

/**
 * enum virtq_error - why a queue refused a configuration or broke.
 *
 * Configuration errors (SIZE_* to RINGS_OVERLAP) are returned by the
 * configuration call and readable with virtq_config_error(); they do not
 * break the queue.  The others are found while serving the driver and make
 * the queue broken (virtq_error_get()).
 */
enum virtq_error {
	VIRTQ_ERR_NONE = 0,
	/* --- configuration: refused, queue not activated --- */
	VIRTQ_ERR_SIZE_INVALID,	     /**< 0, > max, split not a power of 2 */
	VIRTQ_ERR_NO_MEMORY,	     /**< ready without guest memory */
	VIRTQ_ERR_DESC_MISALIGNED,   /**< descriptor table not 16-aligned */
	VIRTQ_ERR_AVAIL_MISALIGNED,  /**< driver area not 2-aligned */
	VIRTQ_ERR_USED_MISALIGNED,   /**< device area not 4-aligned */
	VIRTQ_ERR_DESC_OUTSIDE_RAM,  /**< table not inside one RAM region */
	VIRTQ_ERR_AVAIL_OUTSIDE_RAM, /**< driver area not in one region */
	VIRTQ_ERR_USED_OUTSIDE_RAM,  /**< device area not in one region */
	VIRTQ_ERR_USED_READONLY,     /**< device area in a read-only region */
	VIRTQ_ERR_RINGS_OVERLAP,     /**< used area overlaps desc or avail */
	/* --- runtime: the driver broke the protocol, queue is broken --- */
	VIRTQ_ERR_AVAIL_IDX_AHEAD,	   /**< avail.idx - next_avail > size */
	VIRTQ_ERR_HEAD_OUT_OF_RANGE,	   /**< avail ring entry >= size */
	VIRTQ_ERR_HEAD_IN_FLIGHT,	   /**< head made available twice */
	VIRTQ_ERR_NEXT_OUT_OF_RANGE,	   /**< next >= table size */
	VIRTQ_ERR_CHAIN_TOO_LONG,	   /**< > size descriptors (a loop) */
	VIRTQ_ERR_INDIRECT_NOT_NEGOTIATED, /**< INDIRECT without the feature */
	VIRTQ_ERR_INDIRECT_WITH_NEXT,	   /**< INDIRECT and NEXT together */
	VIRTQ_ERR_INDIRECT_NESTED,	   /**< INDIRECT inside a table */
	VIRTQ_ERR_INDIRECT_LEN_ZERO,	   /**< indirect table length 0 */
	VIRTQ_ERR_INDIRECT_LEN_UNALIGNED,  /**< not a multiple of 16 */
	VIRTQ_ERR_INDIRECT_TOO_BIG,	   /**< more entries than the size */
	VIRTQ_ERR_INDIRECT_OUTSIDE_RAM,	   /**< table not in guest RAM */
	VIRTQ_ERR_READABLE_AFTER_WRITABLE, /**< out-of-order descriptor */
	VIRTQ_ERR_ZERO_LENGTH,		   /**< a buffer of length 0 */
	VIRTQ_ERR_BUFFER_WRAPS,		   /**< addr + len wraps 2^64 */
	VIRTQ_ERR_CHAIN_LEN_OVERFLOW,	   /**< total length > 2^32 - 1 */
	VIRTQ_ERR_BUFFER_OUTSIDE_RAM,	   /**< buffer not in guest RAM */
	VIRTQ_ERR_BUFFER_READONLY,	   /**< writable buffer in ROM */
	/* --- packed layout --- */
	VIRTQ_ERR_DESC_READONLY,     /**< config: packed ring in ROM */
	VIRTQ_ERR_DESC_NOT_AVAIL,    /**< chain runs into a slot not made
					available (wrong AVAIL/USED bits) */
	VIRTQ_ERR_RING_OVERRUN,	     /**< more descriptors in flight than
					the ring holds */
	VIRTQ_ERR_INDIRECT_IN_CHAIN, /**< INDIRECT descriptor in a chain */
	VIRTQ_ERR__COUNT
};

/** virtq_error_name() - a constant string naming @err ("AVAIL_IDX_AHEAD"),
 *  "UNKNOWN" for values out of range. */
CVMM_EXPORT const char *virtq_error_name(enum virtq_error err);

/** The three ring areas (virtio 1.2 names in brackets). */
enum virtq_area {
	VIRTQ_AREA_DESC = 0, /**< descriptor table [Descriptor Area] */
	VIRTQ_AREA_AVAIL,    /**< available ring [Driver Area] */
	VIRTQ_AREA_USED,     /**< used ring [Device Area] */
};

/** Feature bits (bit numbers as in the spec) the queue honours. */
#define VIRTQ_RING_FEATURES                               \
	((1ull << 28 /* VIRTIO_RING_F_INDIRECT_DESC */) | \
	 (1ull << 29 /* VIRTIO_RING_F_EVENT_IDX */) |     \
	 (1ull << 32 /* VERSION_1 */) |                   \
	 (1ull << 34 /* VIRTIO_F_RING_PACKED */) |        \
	 (1ull << 35 /* VIRTIO_F_IN_ORDER */))

/** Called once when the queue breaks; see the file comment. */
typedef void (*virtq_error_fn)(struct virtq *q, enum virtq_error err,
			       void *opaque);

/* ----------------------------------------------------------- configuration */

/**
 * virtq_create() - a new, unconfigured queue.
 * @max_size: the device's maximum queue size (QueueNumMax): a power of two
 *            in 1..32768.  The size starts at @max_size.
 * @out: receives the queue, owned by the caller (virtq_destroy()).
 * Errors: -EINVAL (bad @max_size or NULL @out), -ENOMEM.
 */
CVMM_EXPORT int virtq_create(uint32_t max_size, struct virtq **out);

/** virtq_destroy() - free @q and drop its memory reference; NULL is fine. */
CVMM_EXPORT void virtq_destroy(struct virtq *q);

/**
 * virtq_set_memory() - use the guest memory snapshot @mem (a reference is
 * taken; the previous one is dropped).  May be called while the queue is
 * ready (after a memory hot-plug): the rings are validated again against
 * @mem, and if they no longer fit the queue breaks with the matching
 * *_OUTSIDE_RAM reason and -EFAULT is returned (@mem is still installed).
 * @mem may be NULL only while the queue is not ready.  Host pointers the
 * device obtained through the old snapshot (exported iovecs) stay valid
 * only as long as the device itself holds a reference to that snapshot.
 */
CVMM_EXPORT int virtq_set_memory(struct virtq *q, struct guest_memory *mem);

/** virtq_max_size() - the max_size given to virtq_create(). */
CVMM_EXPORT uint32_t virtq_max_size(const struct virtq *q);

/**
 * virtq_set_size() - set the queue size (QueueNum / queue_size).  Any
 * size from 1 to max_size is taken: the layout is only known at
 * virtq_set_ready(), which refuses a split queue whose size is not a power
 * of two (packed rings may have any size, virtio 1.2, 2.8).
 * Errors: -EINVAL (0, > max_size; config error SIZE_INVALID), -EBUSY when
 * the queue is ready.
 */
CVMM_EXPORT int virtq_set_size(struct virtq *q, uint32_t size);

/** virtq_size() - the current queue size. */
CVMM_EXPORT uint32_t virtq_size(const struct virtq *q);

/**
 * virtq_set_addr() - set the guest address of a ring area.
 * virtq_set_addr_lo()/virtq_set_addr_hi() set the low or high 32 bits
 * only, as virtio-mmio's QueueDescLow/High registers do.
 * Errors: -EBUSY when ready, -EINVAL for a bad @area.
 * Alignment and placement are checked by virtq_set_ready().
 */
CVMM_EXPORT int virtq_set_addr(struct virtq *q, enum virtq_area area,
			       guest_addr_t gpa);
CVMM_EXPORT int virtq_set_addr_lo(struct virtq *q, enum virtq_area area,
				  uint32_t lo);
CVMM_EXPORT int virtq_set_addr_hi(struct virtq *q, enum virtq_area area,
				  uint32_t hi);
/** virtq_addr() - the guest address of @area (0 for a bad @area). */
CVMM_EXPORT guest_addr_t virtq_addr(const struct virtq *q,
				    enum virtq_area area);

/**
 * virtq_set_features() - the negotiated device features.  Only the bits of
 * VIRTQ_RING_FEATURES are used (EVENT_IDX, INDIRECT_DESC, VERSION_1,
 * RING_PACKED: the layout, IN_ORDER); the rest are ignored.  Errors:
 * -EBUSY when ready.
 */
CVMM_EXPORT int virtq_set_features(struct virtq *q, uint64_t features);
/** virtq_features() - the ring feature bits in use. */
CVMM_EXPORT uint64_t virtq_features(const struct virtq *q);

/**
 * virtq_set_ready() - activate (true) or deactivate (false) the queue.
 * Activation checks, in this order: a split queue's size is a power of
 * two (SIZE_INVALID), memory set (NO_MEMORY), alignment
 * (DESC/AVAIL/USED_MISALIGNED), each area wholly inside one RAM region
 * (*_OUTSIDE_RAM), used area writable (USED_READONLY), used area not
 * overlapping the others (RINGS_OVERLAP), and caches the host pointers.
 * Returns 0, or -EINVAL (size, misaligned, no memory), -EFAULT (outside RAM,
 * read-only), -EEXIST (overlap); the reason is in virtq_config_error().
 * Deactivation keeps the indexes (use virtq_reset() to clear them).
 */
CVMM_EXPORT int virtq_set_ready(struct virtq *q, bool ready);
/** virtq_ready() - whether the queue is active. */
CVMM_EXPORT bool virtq_ready(const struct virtq *q);

/** virtq_is_packed() - whether the active queue serves the packed layout
 *  (false while not ready). */
CVMM_EXPORT bool virtq_is_packed(const struct virtq *q);

/** virtq_config_error() - the reason the last configuration call failed,
 *  VIRTQ_ERR_NONE after a successful one. */
CVMM_EXPORT enum virtq_error virtq_config_error(const struct virtq *q);

/**
 * virtq_set_error_cb() - @fn is called (once per breakage, from the thread
 * that found it) when the queue becomes broken.  NULL removes it.
 */
CVMM_EXPORT void virtq_set_error_cb(struct virtq *q, virtq_error_fn fn,
				    void *opaque);

/**
 * virtq_reset() - device reset of this queue: not ready, size = max_size,
 * addresses 0, features 0, indexes 0, no chain in flight, not broken.
 * The memory snapshot, the error callback and virtq_allow_zero_length()
 * stay as they were.
 */
CVMM_EXPORT void virtq_reset(struct virtq *q);

/* ------------------------------------------------------------ error state */

/** virtq_is_broken() - true once the driver broke the protocol. Cheap. */
CVMM_EXPORT bool virtq_is_broken(const struct virtq *q);
/** virtq_error_get() - why the queue broke (VIRTQ_ERR_NONE if not). */
CVMM_EXPORT enum virtq_error virtq_error_get(const struct virtq *q);

/* ------------------------------------------------------------------ chains */

/** One buffer of a chain, as snapshotted at pop. */
struct virtq_buf {
	guest_addr_t addr; /**< guest address */
	uint32_t len;	   /**< length in bytes, > 0 (unless zero lengths are
				allowed), addr + len does not wrap */
	uint32_t flags;	   /**< VRING_DESC_F_WRITE if device-writable */
};

/**
 * struct virtq_chain - one popped descriptor chain, flattened into storage
 * the caller owns.
 *
 * Ownership.  The caller owns the chain and its buffer array: @bufs and
 * @cap are set by the caller (virtq_chain_init(), VIRTQ_CHAIN_INIT() or
 * virtq_chain_alloc()) and never changed by the library; a pop fills the
 * other fields and bufs[0..nbufs).  Nothing in a chain points into the
 * queue's own storage, so a device may hold any number of chains in
 * flight (one storage each) and complete them in any order; a chain stays
 * valid until the device completes it (virtq_complete*()), gives it back
 * (virtq_undo_pop()) or resets the queue.  After that the storage may be
 * reused for another pop.  Chains popped before virtq_reset() are dead:
 * the device drops them (completing one returns -ENODEV or -EINVAL, and
 * its accessors return -ENODEV while the queue is not ready).
 *
 * Capacity.  A chain has at most virtq_size() buffers (a longer one breaks
 * the queue: CHAIN_TOO_LONG), so @cap >= virtq_size() never falls short.
 * With a smaller @cap, a chain needing more buffers is refused with
 * -ENOBUFS and NOT consumed: @nbufs then holds the number it needs and the
 * device may pop again with bigger storage (the guest may change a chain
 * it has not yet had consumed, so the second pop may again fall short; it
 * can never need more than virtq_size()).  @cap == 0 therefore asks how
 * many buffers the next chain needs without consuming it.
 *
 * Threads.  The accessors and completions of a chain are calls on its
 * queue (they read its state, and a bad buffer breaks it): serialise them
 * with the queue's other calls, as for everything on one queue.  Host
 * iovecs exported from a chain may be used from any thread.
 *
 * Layout independence.  Nothing here is split-ring specific: a packed ring
 * produces the same chains, and the accessors and completions below work
 * on either.
 *
 * Fields other than @bufs and @cap are read-only for the device; change
 * them only through the functions below.  bufs[0..nread) are
 * device-readable and bufs[nread..nbufs) device-writable.  Each part has a
 * cursor: reads consume the readable part in order, writes fill the
 * writable part in order.
 */
struct virtq_chain {
	struct virtq_buf *bufs; /**< caller's storage, @cap entries */
	struct virtq *q;	/**< the queue it was popped from, or NULL */
	uint16_t head;		/**< id to give back in the used ring */
	uint16_t nbufs;		/**< buffers, 1..size (on -ENOBUFS: needed) */
	uint16_t nread;		/**< number of readable buffers */
	uint16_t ndesc;		/**< ring descriptors consumed (an indirect
				     table counts as one) */
	uint32_t rd_off;	/**< offset in bufs[rd_buf] */
	uint32_t rd_done;	/**< readable bytes consumed */
	uint32_t read_len;	/**< total readable bytes */
	uint32_t write_len;	/**< total writable bytes */
	uint32_t wr_off;	/**< offset in bufs[nread + wr_buf] */
	uint32_t wr_done;	/**< writable bytes filled, <= write_len */
	uint16_t rd_buf;	/**< next readable buffer */
	uint16_t wr_buf;	/**< next writable buffer, counted from nread */
	uint16_t cap;		/**< entries in @bufs (0..65535) */
	uint16_t reserved;	/**< zero */
};

/**
 * VIRTQ_CHAIN_INIT() - initialiser of a chain whose storage is the array
 * @arr (not a pointer): `struct virtq_buf b[8];
 * struct virtq_chain c = VIRTQ_CHAIN_INIT(b);` (a C designated
 * initialiser; from C++ call virtq_chain_init()).
 */
#define VIRTQ_CHAIN_INIT(arr)                                     \
	{                                                         \
		.bufs = (arr),                                    \
		.cap = (uint16_t)(sizeof(arr) / sizeof((arr)[0])) \
	}

/**
 * virtq_chain_init() - give @c the storage @bufs of @cap entries (@cap may
 * exceed 65535 in the call; it is limited to 65535) and clear the rest of
 * it.  The library never frees @bufs.  Cheap; no allocation.
 */
CVMM_EXPORT void virtq_chain_init(struct virtq_chain *c, struct virtq_buf *bufs,
				  size_t cap);

/**
 * virtq_chain_alloc() - a heap chain with room for @cap buffers in the
 * same allocation (@cap 0..65535; use virtq_size() or the device's own
 * bound).  Free with virtq_chain_free().  Returns NULL on -ENOMEM (errno
 * set) or -EINVAL (@cap too large).
 */
CVMM_EXPORT struct virtq_chain *virtq_chain_alloc(size_t cap);

/** virtq_chain_free() - free a chain from virtq_chain_alloc(); NULL is
 *  fine.  A chain still in flight is NOT completed. */
CVMM_EXPORT void virtq_chain_free(struct virtq_chain *c);

/**
 * virtq_pop() - take the next available chain into the caller's @chain.
 * Returns 1 with @chain filled (it is then "in flight" until completed or
 * undone), 0 when the driver has made nothing new available, -ENOBUFS if
 * the chain needs more than @chain->cap buffers (nothing consumed,
 * @chain->nbufs says how many; see struct virtq_chain), -ENODEV if the
 * queue is not ready (never configured, reset, or deactivated), -EIO if
 * the queue is (or just became) broken; on -EIO nothing was consumed and
 * virtq_error_get() says why.  A malformed chain breaks the queue even
 * when it would not fit @chain (the whole chain is checked).
 */
CVMM_EXPORT int virtq_pop(struct virtq *q, struct virtq_chain *chain);

/**
 * virtq_pop_batch() - pop up to @max chains, chain i into chains[i] and its
 * own storage chains[i].bufs / .cap (set by the caller as for virtq_pop();
 * the chains need not share anything and stay valid independently).
 * Returns n (0 when nothing is available), or -ENODEV / -EIO / -ENOBUFS as
 * virtq_pop() when no chain was popped.  A batch stops early, returning
 * the count so far, before a chain that does not fit its chains[i] (the
 * next call reports -ENOBUFS for it if chains[0] is too small too), and at
 * a malformed chain (the queue breaks; the next call returns -EIO).
 * Amortises the call and the avail.idx read over many chains.
 */
CVMM_EXPORT int virtq_pop_batch(struct virtq *q, struct virtq_chain *chains,
				unsigned int max);

/**
 * virtq_undo_pop() - give the most recently popped chain back: the next
 * pop returns it again.  Errors: -EINVAL if @chain is not the last chain
 * popped from @q or was already completed (or a reset came between).
 */
CVMM_EXPORT int virtq_undo_pop(struct virtq *q,
			       const struct virtq_chain *chain);

/** virtq_avail_count() - how many chains the driver has made available
 *  and the device not popped yet (reads avail.idx with acquire); -EIO if
 *  the index is beyond the queue size (the queue breaks), -ENODEV. */
CVMM_EXPORT int virtq_avail_count(struct virtq *q);

/** virtq_in_flight() - chains popped and not yet completed. */
CVMM_EXPORT uint32_t virtq_in_flight(const struct virtq *q);

/**
 * virtq_allow_zero_length() - accept zero-length buffers (default: reject
 * them, VIRTQ_ERR_ZERO_LENGTH).  Zero-length buffers then count as nothing
 * in read/write accounting.
 */
CVMM_EXPORT void virtq_allow_zero_length(struct virtq *q, bool allow);

/* --------------------------------------------------- reading and writing */

/*
 * The accessors below take a chain popped from a queue that is still ready:
 * on a chain never popped (q NULL) they return -EINVAL (the skips 0), on a
 * queue not ready -ENODEV, on a broken queue -EIO, touching nothing.
 */

/** virtq_chain_readable() - readable bytes left after the read cursor. */
static inline uint32_t virtq_chain_readable(const struct virtq_chain *c)
{
	return c->read_len - c->rd_done;
}

/** virtq_chain_writable() - writable bytes left after the write cursor. */
static inline uint32_t virtq_chain_writable(const struct virtq_chain *c)
{
	return c->write_len - c->wr_done;
}

/** virtq_chain_written() - bytes written so far (the used length). */
static inline uint32_t virtq_chain_written(const struct virtq_chain *c)
{
	return c->wr_done;
}

/**
 * virtq_chain_read() - copy up to @len readable bytes at the read cursor
 * into @dst and advance it.  Returns the number copied (short only at the
 * end of the readable part), or -EIO if a buffer is not in guest RAM (the
 * queue breaks with BUFFER_OUTSIDE_RAM; bytes before it may have been
 * copied).
 */
CVMM_EXPORT ssize_t virtq_chain_read(struct virtq_chain *c, void *dst,
				     size_t len);

/**
 * virtq_chain_read_exact() - read exactly @len bytes (e.g. a request
 * header): -EMSGSIZE, with nothing consumed, if fewer are readable; -EIO as
 * virtq_chain_read().
 */
CVMM_EXPORT int virtq_chain_read_exact(struct virtq_chain *c, void *dst,
				       size_t len);

/** VIRTQ_CHAIN_READ_OBJ() - read_exact of one object, e.g. a header. */
#define VIRTQ_CHAIN_READ_OBJ(c, obj) \
	virtq_chain_read_exact((c), (obj), sizeof(*(obj)))

/**
 * virtq_chain_write() - copy up to @len bytes from @src into the writable
 * part at the write cursor and advance it.  Returns the number copied, or
 * -EIO (BUFFER_OUTSIDE_RAM / BUFFER_READONLY; the queue breaks).
 */
CVMM_EXPORT ssize_t virtq_chain_write(struct virtq_chain *c, const void *src,
				      size_t len);

/** virtq_chain_write_exact() - write exactly @len bytes or -EMSGSIZE with
 *  nothing written; -EIO as virtq_chain_write(). */
CVMM_EXPORT int virtq_chain_write_exact(struct virtq_chain *c, const void *src,
					size_t len);

/** VIRTQ_CHAIN_WRITE_OBJ() - write_exact of one object, e.g. a status. */
#define VIRTQ_CHAIN_WRITE_OBJ(c, obj) \
	virtq_chain_write_exact((c), (obj), sizeof(*(obj)))

/** virtq_chain_skip_read()/virtq_chain_skip_write() - advance a cursor by
 *  up to @len bytes without copying; returns the bytes skipped (a skipped
 *  writable byte counts as written, its content is whatever was there). */
CVMM_EXPORT uint32_t virtq_chain_skip_read(struct virtq_chain *c, uint32_t len);
CVMM_EXPORT uint32_t virtq_chain_skip_write(struct virtq_chain *c,
					    uint32_t len);

/**
 * virtq_chain_readable_iov() - describe the next @len readable bytes as
 * host iovecs (for writev/pwritev, zero-copy) and advance the read cursor.
 * @len is clamped to what is readable.  @iov has room for @max entries.
 * Returns the number of iovecs (0 if nothing is readable), -ENOBUFS when
 * @max is too small (cursor unchanged, nothing consumed), or -EIO (a
 * buffer outside RAM; the queue breaks).  The pointers are valid while the
 * queue's memory snapshot is; guest pages written through them are not
 * dirty-logged (guest_memory_mark_dirty()).
 */
CVMM_EXPORT int virtq_chain_readable_iov(struct virtq_chain *c, size_t len,
					 struct iovec *iov, int max);

/**
 * virtq_chain_writable_iov() - the same for the writable part (for
 * readv/preadv); also -EIO (BUFFER_READONLY) for a read-only region.  The
 * exported bytes count as written (virtq_chain_written()); a device whose
 * read came back short completes with virtq_complete_len().
 */
CVMM_EXPORT int virtq_chain_writable_iov(struct virtq_chain *c, size_t len,
					 struct iovec *iov, int max);

/* ------------------------------------------------------------- completion */

/*
 * Completion: the used length a device reports is never more than the
 * chain's writable total, so a device bug cannot tell the driver it wrote
 * memory the chain does not have.  Devices complete chains with
 * virtq_complete() / virtq_complete_len() / virtq_complete_batch().
 */

/**
 * virtq_complete() - return @c, popped from @q, to the driver with the
 * bytes written through its write cursor (virtq_chain_written()) as the
 * used length, and publish used.idx (release).  The chain is then no longer
 * in flight; its storage may be reused.  Errors: -EINVAL if @c was not
 * popped from @q (never popped: c->q is NULL) or is not in flight
 * (completed twice, undone, or popped before a reset; the queue does not
 * break), -ENODEV (not ready), -EIO (broken: nothing is written to a
 * broken queue).
 */
CVMM_EXPORT int virtq_complete(struct virtq *q, struct virtq_chain *c);

/**
 * virtq_complete_len() - virtq_complete() with the used length @len given
 * by the device (e.g. the bytes a preadv() into the exported writable
 * iovecs really read), clamped to @c->write_len.
 */
CVMM_EXPORT int virtq_complete_len(struct virtq *q, struct virtq_chain *c,
				   uint32_t len);

/**
 * virtq_complete_batch() - complete chains[0..n) (all popped from @q; each
 * with its virtq_chain_written() as the used length) and publish used.idx
 * once.  All are checked first: on -EINVAL (a chain not from @q, not in
 * flight, or twice in the batch) nothing is completed.  -ENODEV, -EIO as
 * virtq_complete().
 */
CVMM_EXPORT int virtq_complete_batch(struct virtq *q,
				     const struct virtq_chain *chains,
				     unsigned int n);

/**
 * virtq_add_used() - the bare-head completion, for a device that kept only
 * the head: return chain @head with @len bytes written and publish used.idx
 * (release).  The queue remembers each in-flight chain's writable total
 * from its pop, and clamps @len to it (after virtq_restore() the total is
 * recomputed from the descriptors).  Errors: -EINVAL if @head is not in
 * flight (a device bug, the queue does not break), -ENODEV, -EIO (broken:
 * nothing is written to a broken queue).
 */
CVMM_EXPORT int virtq_add_used(struct virtq *q, uint16_t head, uint32_t len);

/**
 * virtq_add_used_batch() - add @n used elements (lengths clamped as in
 * virtq_add_used()) and publish used.idx once.  All ids are checked first:
 * on -EINVAL (an id not in flight, or twice in the batch) nothing is added.
 */
CVMM_EXPORT int virtq_add_used_batch(struct virtq *q,
				     const struct vring_used_elem *elems,
				     unsigned int n);

/* ---------------------------------------------------------- notifications */

/**
 * virtq_needs_interrupt() - after adding used elements: must the device
 * interrupt the driver?  With EVENT_IDX: vring_need_event(used_event,
 * used.idx, used.idx at the previous call).  Without: unless the driver set
 * VRING_AVAIL_F_NO_INTERRUPT.  False when nothing was added since the
 * previous call.  Each call starts a new interval.
 */
CVMM_EXPORT bool virtq_needs_interrupt(struct virtq *q);

/**
 * virtq_disable_notification() - ask the driver not to kick: sets
 * VRING_USED_F_NO_NOTIFY (without EVENT_IDX); with EVENT_IDX avail_event is
 * simply not advanced, so the driver stops kicking once it passed it.
 */
CVMM_EXPORT void virtq_disable_notification(struct virtq *q);

/**
 * virtq_enable_notification() - ask for kicks again (clear NO_NOTIFY, or
 * set avail_event = next index to pop), then re-read avail.idx after a full
 * fence.  Returns true when buffers raced in meanwhile: the device must pop
 * again instead of sleeping.
 */
CVMM_EXPORT bool virtq_enable_notification(struct virtq *q);

/* -------------------------------------------------------- snapshot/restore */

#define VIRTQ_STATE_VERSION 2

/** Everything a queue holds, for migration/snapshots. */
struct virtq_state {
	uint32_t version; /**< VIRTQ_STATE_VERSION */
	uint32_t max_size;
	uint32_t size;
	uint32_t ready;
	uint64_t desc_addr, avail_addr, used_addr;
	uint64_t features;
	uint16_t next_avail;	 /**< next avail ring slot to pop */
	uint16_t next_used;	 /**< used.idx the device will publish next */
	uint16_t signalled_used; /**< used.idx at the last interrupt check */
	uint16_t used_flags;	 /**< what the device wrote to used.flags */
	uint32_t signalled_valid;
	uint32_t error; /**< enum virtq_error, sticky */
	uint32_t allow_zero_len;
	uint32_t in_flight; /**< number of bits set below */
	uint64_t in_flight_heads[VIRTQ_MAX_SIZE / 64]; /**< bit per head */
	/* Packed layout (meaningful when features has RING_PACKED). */
	uint16_t avail_pos; /**< next ring slot to read */
	uint16_t used_pos;  /**< next ring slot to write */
	uint8_t avail_wrap; /**< wrap counter of avail_pos (0/1) */
	uint8_t used_wrap;  /**< wrap counter of used_pos (0/1) */
	uint16_t reserved;  /**< zero */
	uint32_t used_adv;  /**< used slots written since the last check */
	uint32_t desc_out;  /**< ring descriptors in flight */
	/** Per head in flight: the pop sequence number (bits 16..31) and
	 *  the ring descriptors it holds minus one (bits 0..14). */
	uint32_t in_flight_meta[VIRTQ_MAX_SIZE];
	/** Per head in flight: the used-length bound (writable total). */
	uint32_t in_flight_bound[VIRTQ_MAX_SIZE];
};

/** virtq_save() - copy @q's state into @st.  Never fails. */
CVMM_EXPORT void virtq_save(const struct virtq *q, struct virtq_state *st);

/**
 * virtq_restore() - load @st into @q (whose memory must be set if @st is
 * ready).  The state is validated like the configuration calls: bad
 * version, max_size different from @q's, bad size, in-flight bits beyond
 * the size, or an in-flight count that disagrees with the bits or with
 * next_avail - next_used give -EINVAL; ring checks as virtq_set_ready().
 * The used-length bound of each head in flight (see virtq_add_used()) is
 * recomputed from its descriptors (unbounded if @st is not ready) in the
 * split layout, taken from @st in the packed one (whose used descriptors
 * may have overwritten the chain); the packed positions, wrap counters
 * and descriptors in flight must agree with each other.  On error @q is
 * reset.
 */
CVMM_EXPORT int virtq_restore(struct virtq *q, const struct virtq_state *st);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VIRTIO_QUEUE_H */
