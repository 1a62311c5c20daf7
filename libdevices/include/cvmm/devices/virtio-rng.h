/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: virtio-rng (virtio 1.2, 5.4), an entropy source backed by
 * getrandom(2) (no file descriptor needed).
 *
 * One queue (requestq).  Each chain's device-writable buffers are filled
 * with random bytes, at most max_request_bytes per chain (64 KiB by
 * default, like Firecracker), and completed with the number written;
 * readable buffers are ignored.  With a rate limit (a token bucket of
 * rate_bytes_per_sec, holding up to burst_bytes) a request is served once
 * the bucket holds what it asks for (a request larger than the bucket is
 * served burst_bytes); until then the chain stays in the ring and the
 * device arms a timerfd (in its poll list, see virtio.h) that resumes the
 * queue when the missing tokens are back.  Work per notify is bounded by the queue size; the rest is resumed
 * through the queue's notifier.
 *
 * Use it like any device built on the core:
 *   virtio_rng_create(NULL, &vdev);
 *   virtio_device_set_memory(vdev, mem);
 *   virtio_pci_create(vdev, &pcfg, &vp);  // or virtio_mmio_create()
 *   ...
 *   virtio_pci_destroy(vp); virtio_device_destroy(vdev);
 */
#ifndef CVMM_DEVICES_VIRTIO_RNG_H
#define CVMM_DEVICES_VIRTIO_RNG_H

#include <stdint.h>

#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Virtio device id of an entropy device. */
#define VIRTIO_RNG_DEVICE_ID	       4u
/** Default (and largest accepted) bytes served per request. */
#define VIRTIO_RNG_MAX_REQUEST_DEFAULT (64u * 1024u)
#define VIRTIO_RNG_MAX_REQUEST_LIMIT   (1u << 20)

/**
 * struct virtio_rng_config - options; zeroed (or NULL) for defaults.
 * @max_request_bytes:  bytes served per chain at most; 0:
 *                      VIRTIO_RNG_MAX_REQUEST_DEFAULT; at most
 *                      VIRTIO_RNG_MAX_REQUEST_LIMIT.
 * @rate_bytes_per_sec: token-bucket rate; 0: unlimited.
 * @burst_bytes:        bucket size; 0: @rate_bytes_per_sec (one second).
 * @queue_max_size:     QueueNumMax; 0: 256 (a power of two <= 32768).
 */
struct virtio_rng_config {
	uint32_t max_request_bytes;
	uint64_t rate_bytes_per_sec;
	uint64_t burst_bytes;
	uint32_t queue_max_size;
};

/**
 * virtio_rng_create() - an entropy device; @out receives its virtio device
 * (free it with virtio_device_destroy(), after its transport).
 * Errors: -EINVAL (NULL @out, bad sizes), -ENOMEM, the timerfd errno.
 */
CVMM_EXPORT int virtio_rng_create(const struct virtio_rng_config *cfg,
				  struct virtio_device **out);

/**
 * virtio_rng_bytes_served() - total random bytes written to the guest so
 * far (0 for NULL or a device not made by virtio_rng_create()).  Takes the
 * device lock.
 */
CVMM_EXPORT uint64_t virtio_rng_bytes_served(struct virtio_device *dev);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_RNG_H */
