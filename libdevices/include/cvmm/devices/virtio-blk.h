/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file virtio-blk.h
 * libdevices: virtio-blk (virtio 1.2, section 5.2), a device type on the
 * virtio device core (cvmm/devices/virtio.h).
 *
 *   struct virtio_blk *blk;
 *   struct virtio_blk_options o = {.serial = "disk0",
 *                                  .backend = VIRTIO_BLK_BACKEND_IO_URING};
 *   virtio_blk_create("disk.img", &o, &blk);
 *   virtio_pci_create(virtio_blk_device(blk), NULL, &vp);  // or mmio
 *   ... the VMM polls virtio_device_poll_fds(virtio_blk_device(blk)) ...
 *   virtio_blk_destroy(blk);     // after the transport is destroyed
 *
 * Requests.  Every chain is a 16-byte header (struct virtio_blk_outhdr)
 * in its readable part, data, and the status byte as the LAST writable
 * byte of the chain.  The header may be split over any number of
 * descriptors.  Handling of malformed chains: each is a per-request error
 * the device recovers from, so it neither breaks the queue nor sets
 * DEVICE_NEEDS_RESET (virtio_device_error() is for unrecoverable device
 * errors, virtio 1.2 2.1.2); the other requests go on:
 *   - no writable byte: nothing can carry a status, the chain is returned
 *     with used length 0 and nothing is written;
 *   - fewer than 16 readable bytes (header missing): status IOERR;
 *   - IN/OUT whose data length is not a multiple of 512, or whose sector
 *     range overflows 64 bits or ends past the capacity: IOERR;
 *   - OUT on a read-only device: IOERR (DISCARD and WRITE_ZEROES are not
 *     offered then, so they get UNSUPP);
 *   - DISCARD/WRITE_ZEROES payload not a whole number (>= 1) of 16-byte
 *     segments: IOERR; more segments than max_*_seg, the unmap flag on a
 *     discard, unknown flag bits, or the command when its feature was not
 *     negotiated: UNSUPP; a segment with more than max_*_sectors sectors
 *     or past the capacity: IOERR (no segment is executed then);
 *   - GET_ID: min(20, writable - 1) bytes of the serial are written (a
 *     full 20-byte serial has no NUL), status OK;
 *   - unknown types: UNSUPP;
 *   - a chain of more than seg_max + 8 buffers: IOERR (the device keeps
 *     seg_max + 8 buffer slots per request).
 * Used length: data bytes exported for IN (or the ID bytes for GET_ID)
 * plus the status byte.  A backend transfer that comes back short is an
 * IOERR.
 *
 * Write cache.  FLUSH requests call fdatasync(2) (or IORING_OP_FSYNC with
 * DATASYNC): once the driver has seen a FLUSH complete with OK, data it
 * wrote before survives a kill of the VMM.  In writethrough mode (the
 * driver did not negotiate FLUSH, or negotiated CONFIG_WCE and wrote wce 0,
 * or VIRTIO_BLK_OPT_WRITETHROUGH with CONFIG_WCE not negotiated) every
 * OUT, DISCARD and WRITE_ZEROES is followed by a flush before it completes.
 *
 * Discard is fallocate(PUNCH_HOLE | KEEP_SIZE); write-zeroes is
 * fallocate(ZERO_RANGE | KEEP_SIZE), or PUNCH_HOLE | KEEP_SIZE when the
 * driver set the unmap flag and the device offers write_zeroes_may_unmap,
 * or when the file system refuses ZERO_RANGE with EOPNOTSUPP (tmpfs): the
 * range still reads back as zeroes, but may be deallocated.
 *
 * Backends.  The I/O is done by a backend behind struct
 * virtio_blk_backend_ops, chosen at run time: the built-in synchronous
 * backend (preadv/pwritev straight into the chain's guest buffers, no
 * copy), the built-in io_uring backend (liburing: the file registered as a
 * fixed file, one io_uring_submit per queue notification for every chain
 * popped; completions already in the completion ring after that submit
 * (page-cache hits) are reaped at once, the others when the eventfd
 * registered with io_uring_register_eventfd, which the device adds to its
 * poll list with virtio_device_add_poll_fd(), is ready; up to queue-size
 * requests in flight per queue), or one a library user writes
 * (virtio_blk_create_with_backend()).  When libdevices was built without
 * liburing, VIRTIO_BLK_BACKEND_IO_URING fails with -EOPNOTSUPP.
 *
 * Threads and locking: everything runs under the virtio device lock (see
 * virtio.h); the device creates no threads.  A device reset (driver writes
 * status 0, or virtio_device_reset()) waits for every request the backend
 * still has in flight (io_uring: cancelled, then waited for) before it
 * returns, and completes none of them: no used-ring write and no guest
 * memory write happens after the reset.
 */
#ifndef CVMM_DEVICES_VIRTIO_BLK_H
#define CVMM_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_blk;

/** Built-in backends (struct virtio_blk_options.backend). */
enum virtio_blk_backend_kind {
	VIRTIO_BLK_BACKEND_SYNC = 0,	 /**< preadv/pwritev (default) */
	VIRTIO_BLK_BACKEND_IO_URING = 1, /**< liburing */
};

/** Flags of struct virtio_blk_options. */
enum {
	/** Open read-only, offer VIRTIO_BLK_F_RO; writes get IOERR. */
	VIRTIO_BLK_OPT_READ_ONLY = 1u << 0,
	/** Open with O_DIRECT (guest buffers and offsets must then suit the
	 *  file's alignment; set blk_size to the logical block size). */
	VIRTIO_BLK_OPT_DIRECT = 1u << 1,
	/** Start in writethrough mode (wce = 0). */
	VIRTIO_BLK_OPT_WRITETHROUGH = 1u << 2,
	/** Do not offer FLUSH and CONFIG_WCE (the device is then always
	 *  writethrough). */
	VIRTIO_BLK_OPT_NO_FLUSH = 1u << 3,
	/** Do not offer DISCARD. */
	VIRTIO_BLK_OPT_NO_DISCARD = 1u << 4,
	/** Do not offer WRITE_ZEROES. */
	VIRTIO_BLK_OPT_NO_WRITE_ZEROES = 1u << 5,
	/** Set write_zeroes_may_unmap (an unmapping write-zeroes punches a
	 *  hole). */
	VIRTIO_BLK_OPT_WZ_MAY_UNMAP = 1u << 6,
};

/**
 * struct virtio_blk_options - how to build the device.  NULL or a
 * zero-initialised struct gives every default.
 * @flags:       VIRTIO_BLK_OPT_* (default 0: read-write, buffered,
 *               writeback, FLUSH, DISCARD, WRITE_ZEROES offered).
 * @backend:     enum virtio_blk_backend_kind (default SYNC).
 * @serial:      the GET_ID string, up to 20 bytes used (default "": all
 *               zero).  Copied.
 * @num_queues:  request queues, 1..256 (default 1); MQ is offered when > 1.
 * @queue_size:  maximum queue size, a power of two 1..32768 (default 256).
 * @seg_max:     data segments per request offered (SEG_MAX), 1..4096
 *               (default queue_size - 2, at least 1).  The device keeps
 *               num_queues * queue_size request slots of about
 *               32 * (min(seg_max, queue_size) + 8) bytes each, allocated
 *               at creation.
 * @size_max:    maximum segment size offered (SIZE_MAX is offered only
 *               when non-zero; advisory, not enforced).
 * @blk_size:    logical block size offered (BLK_SIZE), a power of two
 *               512..65536 (default 512).
 * @physical_block_exp, @alignment_offset, @min_io_size, @opt_io_size:
 *               the TOPOLOGY fields (always offered; default 0).
 * @max_discard_sectors:      per segment (default 0x3fffff).
 * @max_discard_seg:          segments per discard, 1..256 (default 16).
 * @discard_sector_alignment: in sectors (default blk_size / 512).
 * @max_write_zeroes_sectors: per segment (default 0x3fffff).
 * @max_write_zeroes_seg:     segments per write-zeroes, 1..256 (def. 16).
 */
struct virtio_blk_options {
	uint32_t flags;
	uint32_t backend;
	const char *serial;
	uint32_t num_queues;
	uint32_t queue_size;
	uint32_t seg_max;
	uint32_t size_max;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
};

/* ------------------------------------------------------------ backends */

/** Backend operations (struct virtio_blk_io.op). */
enum virtio_blk_io_op {
	VIRTIO_BLK_IO_READ = 0, /**< read @len bytes at @offset into @iov */
	VIRTIO_BLK_IO_WRITE,	/**< write @iov (@len bytes) at @offset */
	VIRTIO_BLK_IO_FLUSH,	/**< make earlier writes durable (fdatasync) */
	VIRTIO_BLK_IO_DISCARD,	/**< deallocate [@offset, @offset + @len) */
	VIRTIO_BLK_IO_WRITE_ZEROES, /**< zero the range (see @flags) */
};

/** Flags of struct virtio_blk_io. */
enum {
	/** WRITE_ZEROES may deallocate (punch a hole) instead. */
	VIRTIO_BLK_IO_F_UNMAP = 1u << 0,
};

/**
 * struct virtio_blk_io - one backend operation, owned by the device.
 * @op, @flags, @offset, @len: what to do; @offset + @len never exceeds the
 *         capacity the device was given (checked by the device).
 * @iov, @iovcnt: for READ/WRITE, host iovecs into guest memory (the
 *         backend may modify the array, e.g. to resume a short transfer);
 *         their total is @len.
 * @backend_data: scratch space for the backend while it owns @io.
 * @device_data:  the device's; do not touch.
 */
struct virtio_blk_io {
	uint32_t op;
	uint32_t flags;
	uint64_t offset;
	uint64_t len;
	struct iovec *iov;
	int iovcnt;
	uint64_t backend_data[2];
	void *device_data;
};

/**
 * virtio_blk_io_complete() - a backend reports @io finished with @result:
 * the bytes transferred for READ/WRITE (fewer than @io->len is an IOERR),
 * 0 for the others, or a negative errno.  Call it exactly once per
 * submitted @io, with the device lock held: from inside ops.submit
 * (synchronous completion), ops.commit, ops.poll or ops.cancel_all.  The device may
 * submit a follow-up operation from inside this call.
 */
CVMM_EXPORT void virtio_blk_io_complete(struct virtio_blk_io *io,
					int64_t result);

/**
 * struct virtio_blk_io_done - completion of an operation submitted to a
 * backend WITHOUT a virtio-blk device (e.g. a vhost-user daemon that does
 * its own request parsing and uses virtio_blk_backend_sync_create() for
 * the I/O): set @io->device_data to one, initialised with
 * virtio_blk_io_done_init(), before ops.submit; virtio_blk_io_complete()
 * then calls @fn(@io, result, @opaque) instead of handing the result to a
 * device.  The struct must stay valid until @fn ran.
 */
struct virtio_blk_io_done {
	uint32_t magic; /**< set by virtio_blk_io_done_init(); do not touch */
	void (*fn)(struct virtio_blk_io *io, int64_t result, void *opaque);
	void *opaque;
};

/** virtio_blk_io_done_init() - make @d a completion that calls @fn with
 *  @opaque.  NULL @d is ignored. */
CVMM_EXPORT void virtio_blk_io_done_init(struct virtio_blk_io_done *d,
					 void (*fn)(struct virtio_blk_io *io,
						    int64_t result,
						    void *opaque),
					 void *opaque);

/**
 * struct virtio_blk_backend_ops - what a backend supplies.  All ops are
 * called with the device lock held, from the thread that runs the device.
 * @submit:     start @io.  Return 0 once it was accepted (completed at once
 *              through virtio_blk_io_complete() or later), or a negative
 *              errno when it was not (the request then fails with IOERR;
 *              virtio_blk_io_complete() must not be called for it).
 * @commit:     optional: the device has submitted a batch (after each
 *              queue notification and each poll); push queued work to the
 *              kernel now.  May complete operations (as the io_uring
 *              backend does with completions already available).
 * @poll_fd:    optional: an fd the VMM must poll (POLLIN) for completions,
 *              or -1.  Asked once, at virtio_blk_create*().
 * @poll:       optional (required with a @poll_fd): the fd was ready (or
 *              not: may be called spuriously); reap completions.
 * @cancel_all: device reset: every submitted @io must have been completed
 *              (any result) when it returns, and no I/O may still be
 *              touching its buffers.  Required for a backend that
 *              completes asynchronously.
 * @destroy:    optional: free the backend's state (called once, by
 *              virtio_blk_destroy(), after cancel_all).
 */
struct virtio_blk_backend_ops {
	int (*submit)(void *backend, struct virtio_blk_io *io);
	void (*commit)(void *backend);
	int (*poll_fd)(void *backend);
	void (*poll)(void *backend);
	void (*cancel_all)(void *backend);
	void (*destroy)(void *backend);
};

/* ----------------------------------------------------------- life cycle */

/**
 * virtio_blk_create() - open @path (a raw image file or a block device)
 * and build a virtio-blk device on it with a built-in backend.
 * @path: opened O_RDWR (O_RDONLY with VIRTIO_BLK_OPT_READ_ONLY), plus
 *        O_DIRECT with VIRTIO_BLK_OPT_DIRECT, O_CLOEXEC.  The capacity is
 *        the file size (BLKGETSIZE64 for a block device) in whole 512-byte
 *        sectors.
 * @opts: NULL for all defaults.
 * @out:  receives the device, owned by the caller (virtio_blk_destroy()).
 * Errors: -EINVAL (NULL @path/@out, bad option, a file that is neither
 * regular nor a block device), -EOPNOTSUPP (io_uring backend without
 * liburing in this build), -ENOMEM, open/io_uring errors.
 */
CVMM_EXPORT int virtio_blk_create(const char *path,
				  const struct virtio_blk_options *opts,
				  struct virtio_blk **out);

/**
 * virtio_blk_create_with_backend() - a virtio-blk device whose I/O goes to
 * a backend the caller supplies.
 * @ops, @backend: the backend; @ops must outlive the device.  On success
 *        the device owns @backend (ops.destroy is called by
 *        virtio_blk_destroy()).  On error @backend still belongs to the
 *        caller.
 * @capacity: bytes; the device exposes capacity / 512 sectors.
 * @opts: NULL for defaults (@opts->backend is ignored).
 * Errors: -EINVAL (NULL @ops/@ops->submit/@out, bad option), -ENOMEM,
 * virtio_device_create() and virtio_device_add_poll_fd() errors.
 */
CVMM_EXPORT int
virtio_blk_create_with_backend(const struct virtio_blk_backend_ops *ops,
			       void *backend, uint64_t capacity,
			       const struct virtio_blk_options *opts,
			       struct virtio_blk **out);

/**
 * virtio_blk_destroy() - destroy the virtio device (which resets it,
 * draining in-flight I/O), the backend and the file.  Destroy the
 * transport first and stop polling the device's fds.  NULL is fine.
 */
CVMM_EXPORT void virtio_blk_destroy(struct virtio_blk *blk);

/**
 * virtio_blk_device() - the virtio device core of @blk, for the transport
 * and the VMM's poll loop (owned by @blk).
 */
CVMM_EXPORT struct virtio_device *virtio_blk_device(struct virtio_blk *blk);

/** virtio_blk_capacity() - the capacity in 512-byte sectors. */
CVMM_EXPORT uint64_t virtio_blk_capacity(const struct virtio_blk *blk);

/**
 * virtio_blk_in_flight() - requests popped and not yet completed (all
 * queues).  (locked: call with the device lock held, or when no other
 * thread uses the device.)
 */
CVMM_EXPORT uint32_t virtio_blk_in_flight(const struct virtio_blk *blk);

/* ------------------------------------------------- built-in backends */

/**
 * virtio_blk_backend_sync_create() - the synchronous backend on @fd (not
 * owned: the caller keeps it open while the device lives).  For use with
 * virtio_blk_create_with_backend() (e.g. to wrap it).  Sets *@ops and
 * *@backend.  Errors: -EINVAL, -ENOMEM.
 */
CVMM_EXPORT int virtio_blk_backend_sync_create(
	int fd, const struct virtio_blk_backend_ops **ops, void **backend);

/**
 * virtio_blk_backend_uring_create() - the io_uring backend on @fd (not
 * owned) with room for @depth requests in flight.  Errors: -EINVAL,
 * -EOPNOTSUPP (built without liburing), -ENOMEM, io_uring errors.
 */
CVMM_EXPORT int
virtio_blk_backend_uring_create(int fd, uint32_t depth,
				const struct virtio_blk_backend_ops **ops,
				void **backend);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_BLK_H */
