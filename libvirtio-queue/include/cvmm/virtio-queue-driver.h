/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvirtio-queue driver side: a mock virtio driver for tests.
 *
 * Test support, not part of the production library: it lives in its own
 * library, libcvmm-virtio-queue-driver (pkg-config and meson dependency
 * name `cvmm-virtio-queue-driver`), which device authors link into their
 * tests beside libcvmm-virtio-queue.
 *
 * It lays out a split or packed virtqueue in a guest memory object and
 * plays the guest: adds chains (direct or indirect), or writes arbitrary raw
 * descriptors and ring entries (for hostile-driver tests), reads used
 * elements, and follows the device's notification suppression.  Device
 * tests (in libdevices and in users' projects) drive a device through it.
 *
 * All guest accesses go through libvm-memory's checked accessors; ring
 * indexes are published with release stores and read with acquire loads,
 * like a real driver.  One thread per driver object.
 *
 * Descriptors added with virtq_driver_add*() are tracked: their chains are
 * freed when their id comes back in the used ring, and a used id that is
 * not in flight is reported as -EPROTO.  Once the raw functions were used
 * the driver stops checking used ids (the test owns the ring then).
 *
 * Packed mode.  A driver created with VIRTIO_F_RING_PACKED (bit 34) in its
 * features drives a packed ring (virtio 1.2, 2.8) through the SAME calls,
 * so a device test runs against either layout by adding one bit to its
 * features: virtq_driver_add*() write chains into the descriptor ring
 * (buffer ids from a free list, the head's flags written last with
 * release, at virtq_driver_publish() for the _nopublish form);
 * virtq_driver_get_used() follows the used descriptors and the wrap
 * counter; the notification calls use the two event suppression
 * structures (set_used_event / set_avail_flags write the driver area's
 * off_wrap / flags, used_flags / avail_event read the device area's flags
 * / off_wrap).  virtq_driver_layout() places packed rings too (the split
 * sizes are larger).  The split-only raw calls (write_desc,
 * set_avail_ring, set_avail_idx, push_head, set_start) return -EINVAL in
 * packed mode; virtq_driver_write_packed_desc() is the packed raw call,
 * and virtq_driver_used_idx() returns 0.
 *
 * IN_ORDER.  With VIRTIO_F_IN_ORDER (bit 35) in its features the driver
 * accepts one used element for a batch (2.7.9 / 2.8.9): get_used() then
 * reports every buffer of the batch in order, the earlier ones with their
 * writable total as length (wholly used, as the spec says).
 */
#ifndef CVMM_VIRTIO_QUEUE_DRIVER_H
#define CVMM_VIRTIO_QUEUE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
/* See <cvmm/virtio-queue.h>: the uapi ring header is C only. */
struct vring_desc;
struct vring_packed_desc;
struct vring_used_elem;
#else
#include <linux/virtio_ring.h>
#endif

#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#include <cvmm/virtio-queue-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct virtq_driver;

/** One buffer to add: @flags is 0 (device-readable) or VRING_DESC_F_WRITE. */
struct virtq_driver_buf {
	guest_addr_t addr;
	uint32_t len;
	uint16_t flags;
};

/**
 * virtq_driver_layout() - place the three ring areas contiguously from
 * @base (descriptor table, then the driver area, then the device area at
 * the next 4-byte boundary, event fields included).  Any output pointer
 * may be NULL.  Returns the total number of bytes.
 */
CVMM_EXPORT uint64_t virtq_driver_layout(uint32_t size, guest_addr_t base,
					 guest_addr_t *desc,
					 guest_addr_t *avail,
					 guest_addr_t *used);

/**
 * virtq_driver_create() - a driver for a queue of @size (1 to 32768; a
 * power of two unless @features has VIRTIO_F_RING_PACKED) whose areas are at @desc, @avail, @used in @mem (a reference
 * is taken).  The areas are zeroed (event fields included).  @features:
 * the negotiated bits (EVENT_IDX and INDIRECT_DESC matter).
 * Errors: -EINVAL, -ENOMEM, or the libvm-memory error zeroing an area.
 */
CVMM_EXPORT int virtq_driver_create(struct guest_memory *mem, uint32_t size,
				    uint64_t features, guest_addr_t desc,
				    guest_addr_t avail, guest_addr_t used,
				    struct virtq_driver **out);

/** virtq_driver_destroy() - free @d (NULL is fine). */
CVMM_EXPORT void virtq_driver_destroy(struct virtq_driver *d);

/**
 * virtq_driver_configure() - program device queue @q like a transport:
 * size, the three addresses, @d's features, then virtq_set_ready().
 * Returns virtq_set_ready()'s result (or another configuration error).
 */
CVMM_EXPORT int virtq_driver_configure(const struct virtq_driver *d,
				       struct virtq *q);

/** virtq_driver_size() - the queue size. */
CVMM_EXPORT uint32_t virtq_driver_size(const struct virtq_driver *d);
/** virtq_driver_addr() - guest address of @area. */
CVMM_EXPORT guest_addr_t virtq_driver_addr(const struct virtq_driver *d,
					   enum virtq_area area);
/** virtq_driver_num_free() - descriptors free for virtq_driver_add*()
 *  (packed: ring slots free). */
CVMM_EXPORT uint32_t virtq_driver_num_free(const struct virtq_driver *d);
/** virtq_driver_packed() - whether @d drives a packed ring. */
CVMM_EXPORT bool virtq_driver_packed(const struct virtq_driver *d);

/**
 * virtq_driver_add() - add a chain of @n buffers (1..size) and make it
 * available (publishes avail.idx with release).  Readable buffers should
 * come first; the helper writes them in the order given.  @head receives
 * the chain's id (may be NULL).  Errors: -EINVAL, -ENOSPC (not enough
 * free descriptors), libvm-memory errors.
 */
CVMM_EXPORT int virtq_driver_add(struct virtq_driver *d,
				 const struct virtq_driver_buf *bufs,
				 unsigned int n, uint16_t *head);

/**
 * virtq_driver_add_indirect() - add @n buffers as an indirect table written
 * at guest address @table (n * 16 bytes, owned by the caller) referenced
 * by one ring descriptor, and make it available.
 */
CVMM_EXPORT int virtq_driver_add_indirect(struct virtq_driver *d,
					  const struct virtq_driver_buf *bufs,
					  unsigned int n, guest_addr_t table,
					  uint16_t *head);

/**
 * virtq_driver_add_nopublish() / virtq_driver_publish() - add chains
 * without publishing, then publish them all with one avail.idx store.
 */
CVMM_EXPORT int virtq_driver_add_nopublish(struct virtq_driver *d,
					   const struct virtq_driver_buf *bufs,
					   unsigned int n, uint16_t *head);
CVMM_EXPORT int virtq_driver_publish(struct virtq_driver *d);

/* ---- raw access for hostile-driver tests (no checks, no tracking) ---- */

/** virtq_driver_write_desc() - write descriptor @idx (< size) verbatim. */
CVMM_EXPORT int virtq_driver_write_desc(struct virtq_driver *d, uint16_t idx,
					const struct vring_desc *desc);
/** virtq_driver_set_avail_ring() - write avail.ring[@slot % size] = @head. */
CVMM_EXPORT int virtq_driver_set_avail_ring(struct virtq_driver *d,
					    uint16_t slot, uint16_t head);
/** virtq_driver_set_avail_idx() - publish avail.idx = @idx (release). */
CVMM_EXPORT int virtq_driver_set_avail_idx(struct virtq_driver *d,
					   uint16_t idx);
/** virtq_driver_push_head() - avail.ring[idx % size] = @head, then
 *  publish idx + 1. */
CVMM_EXPORT int virtq_driver_push_head(struct virtq_driver *d, uint16_t head);
/**
 * virtq_driver_write_packed_desc() - packed mode: write ring slot @idx
 * (< size) verbatim, addr/len/id first and then the flags with release
 * (so a slot written with the AVAIL/USED bits of the current wrap becomes
 * available).  Wrap counters start at 1: AVAIL set, USED clear on the
 * first lap.  -EINVAL in split mode.
 */
CVMM_EXPORT int
virtq_driver_write_packed_desc(struct virtq_driver *d, uint16_t idx,
			       const struct vring_packed_desc *desc);
/** virtq_driver_avail_idx() - the avail.idx the driver published last
 *  (packed mode: the number of publishes, mod 2^16). */
CVMM_EXPORT uint16_t virtq_driver_avail_idx(const struct virtq_driver *d);

/**
 * virtq_driver_set_start() - start both rings at index @idx (for u16 wrap
 * tests): avail.idx, used.idx and the driver's shadows become @idx.  Pair
 * it with a device restored to the same next_avail / next_used.
 */
CVMM_EXPORT int virtq_driver_set_start(struct virtq_driver *d, uint16_t idx);

/* ----------------------------------------------------------- used ring */

/**
 * virtq_driver_get_used() - take the next used element.  Returns 1 with
 * @elem filled (and the tracked chain freed), 0 if none, -EPROTO if the
 * device published an id that is not in flight or used.idx ran more than
 * the size ahead, or a libvm-memory error.
 */
CVMM_EXPORT int virtq_driver_get_used(struct virtq_driver *d,
				      struct vring_used_elem *elem);

/** virtq_driver_used_idx() - used.idx as the device published it. */
CVMM_EXPORT uint16_t virtq_driver_used_idx(const struct virtq_driver *d);

/* ------------------------------------------------------- notifications */

/**
 * virtq_driver_needs_kick() - after publishing: should the driver notify
 * the device?  With EVENT_IDX: vring_need_event(avail_event, avail.idx,
 * avail.idx at the previous call); otherwise unless the device set
 * VRING_USED_F_NO_NOTIFY.  Full fence first, like virtqueue_kick_prepare.
 */
CVMM_EXPORT bool virtq_driver_needs_kick(struct virtq_driver *d);

/**
 * virtq_driver_enable_interrupts() / _disable_interrupts() - with
 * EVENT_IDX set used_event to the next used index to consume (enable) or
 * leave it (disable); otherwise clear/set VRING_AVAIL_F_NO_INTERRUPT.
 */
CVMM_EXPORT int virtq_driver_enable_interrupts(struct virtq_driver *d);
CVMM_EXPORT int virtq_driver_disable_interrupts(struct virtq_driver *d);

/** virtq_driver_set_used_event() - write used_event verbatim (raw). */
CVMM_EXPORT int virtq_driver_set_used_event(struct virtq_driver *d,
					    uint16_t ev);
/** virtq_driver_set_avail_flags() - write avail.flags verbatim (raw). */
CVMM_EXPORT int virtq_driver_set_avail_flags(struct virtq_driver *d,
					     uint16_t flags);
/** virtq_driver_used_flags() - used.flags as the device wrote it. */
CVMM_EXPORT uint16_t virtq_driver_used_flags(const struct virtq_driver *d);
/** virtq_driver_avail_event() - avail_event as the device wrote it. */
CVMM_EXPORT uint16_t virtq_driver_avail_event(const struct virtq_driver *d);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VIRTIO_QUEUE_DRIVER_H */
