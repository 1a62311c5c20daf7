/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-rng on the virtio device core: getrandom(2) into the guest's
 * writable buffers, capped per request, with an optional token bucket.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/devices/virtio-rng.h"
#include "virtio-internal.h"

struct rng {
	struct virtio_device *dev;
	uint32_t max_request;
	uint64_t rate;	/* bytes per second, 0 = unlimited */
	uint64_t burst; /* bucket size */
	uint64_t tokens;
	uint64_t last_ns;
	int timer_fd;
	bool timer_armed;
	uint64_t served;
	struct virtq_chain *chain;
	struct iovec *iov;
	int iov_max;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void refill(struct rng *r)
{
	uint64_t now = now_ns(), dt = now - r->last_ns, add;

	/* dt * rate / 1e9 without overflow: cap dt at what fills the bucket. */
	if (dt > 1000000000ull * 64)
		dt = 1000000000ull * 64;
	add = (uint64_t)((unsigned __int128)dt * r->rate / 1000000000ull);
	if (add == 0)
		return; /* keep last_ns so sub-byte intervals accumulate */
	r->last_ns = now;
	r->tokens = r->tokens + add > r->burst ? r->burst : r->tokens + add;
}

static void arm_timer(struct rng *r, uint64_t missing)
{
	/* Wake up when the missing tokens are back; at least 1 ms. */
	uint64_t ns = (uint64_t)((unsigned __int128)missing * 1000000000ull /
				 r->rate) +
		      1;
	struct itimerspec its = {0};

	if (ns < 1000000)
		ns = 1000000;
	its.it_value.tv_sec = (time_t)(ns / 1000000000ull);
	its.it_value.tv_nsec = (long)(ns % 1000000000ull);
	if (timerfd_settime(r->timer_fd, 0, &its, NULL) == 0)
		r->timer_armed = true;
}

/* Fill up to @want bytes of @c's writable part; returns bytes written. */
static uint32_t fill(struct rng *r, struct virtq_chain *c, uint32_t want)
{
	int n = virtq_chain_writable_iov(c, want, r->iov, r->iov_max);
	uint32_t done = 0;

	for (int i = 0; i < n; i++) {
		uint8_t *p = r->iov[i].iov_base;
		size_t left = r->iov[i].iov_len;
		int tries = 0;

		while (left) {
			ssize_t got = getrandom(p, left, GRND_NONBLOCK);

			if (got <= 0) {
				if (got < 0 && errno == EINTR && ++tries < 8)
					continue;
				return done; /* no entropy: serve what we have */
			}
			p += got;
			left -= (size_t)got;
			done += (uint32_t)got;
		}
	}
	return done;
}

static bool queue_live(struct rng *r, struct virtq *vq)
{
	uint8_t st = virtio_device_status(r->dev);

	return (st & VIRTIO_DEVICE_STATUS_DRIVER_OK) &&
	       !(st & (VIRTIO_DEVICE_STATUS_NEEDS_RESET |
		       VIRTIO_DEVICE_STATUS_FAILED)) &&
	       virtq_ready(vq) && !virtq_is_broken(vq);
}

static void rng_process(struct rng *r)
{
	struct virtq *vq = virtio_device_queue(r->dev, 0);
	uint32_t budget = virtq_size(vq), n = 0;
	bool used = false;

	if (!queue_live(r, vq) || r->timer_armed)
		return;
	while (n < budget) {
		uint32_t want;
		int ret;

		ret = virtq_pop(vq, r->chain);
		if (ret == 0) {
			/* Drained: ask for kicks again (avail_event with
			 * EVENT_IDX) and go on if a chain raced in. */
			if (!virtq_enable_notification(vq))
				break;
			continue;
		}
		if (ret < 0)
			break; /* broken: the core has set NEEDS_RESET */
		n++;
		want = virtq_chain_writable(r->chain);
		if (want > r->max_request)
			want = r->max_request;
		if (r->rate) {
			/* Served whole (up to the bucket size) once the bucket
			 * holds enough; until then the chain goes back and a
			 * timer resumes the queue. */
			if (want > r->burst)
				want = (uint32_t)r->burst;
			refill(r);
			if (r->tokens < want) {
				virtq_undo_pop(vq, r->chain);
				arm_timer(r, want - r->tokens);
				break;
			}
		}
		want = fill(r, r->chain, want);
		if (virtq_complete_len(vq, r->chain, want))
			break;
		r->served += want;
		if (r->rate)
			r->tokens -= want;
		used = true;
	}
	if (used)
		virtio_device_queue_used(r->dev, 0);
	if (n == budget)
		virtio_device_queue_kick(r->dev, 0); /* more next round */
}

static void rng_notify(void *opaque, uint16_t queue)
{
	(void)queue;
	rng_process(opaque);
}

static void rng_timer_ready(void *opaque, uint32_t revents)
{
	struct rng *r = opaque;
	uint64_t ticks;

	(void)revents;
	if (read(r->timer_fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return; /* spurious */
	r->timer_armed = false;
	rng_process(r);
}

static void rng_reset(void *opaque)
{
	struct rng *r = opaque;
	struct itimerspec off = {0};

	/* Synchronous device: nothing is in flight between calls. */
	if (r->timer_fd >= 0)
		timerfd_settime(r->timer_fd, 0, &off, NULL);
	r->timer_armed = false;
}

static void rng_free(struct rng *r)
{
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	virtq_chain_free(r->chain);
	free(r->iov);
	free(r);
}

static void rng_destroy(void *opaque)
{
	rng_free(opaque);
}

static const struct virtio_device_ops rng_ops = {
	.queue_notify = rng_notify,
	.reset = rng_reset,
	.destroy = rng_destroy,
};

int virtio_rng_create(const struct virtio_rng_config *cfg,
		      struct virtio_device **out)
{
	struct virtio_rng_config c = {0};
	struct virtio_device_info info = {0};
	struct rng *r;
	int ret;

	if (!out)
		return -EINVAL;
	if (cfg)
		c = *cfg;
	if (!c.max_request_bytes)
		c.max_request_bytes = VIRTIO_RNG_MAX_REQUEST_DEFAULT;
	if (c.max_request_bytes > VIRTIO_RNG_MAX_REQUEST_LIMIT)
		return -EINVAL;
	if (!c.queue_max_size)
		c.queue_max_size = 256;
	if (c.queue_max_size > VIRTQ_MAX_SIZE ||
	    (c.queue_max_size & (c.queue_max_size - 1)))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->timer_fd = -1;
	r->max_request = c.max_request_bytes;
	r->rate = c.rate_bytes_per_sec;
	r->burst = c.burst_bytes ? c.burst_bytes : c.rate_bytes_per_sec;
	r->tokens = r->burst;
	r->last_ns = now_ns();
	r->iov_max = (int)c.queue_max_size;
	r->chain = virtq_chain_alloc(c.queue_max_size);
	r->iov = calloc(c.queue_max_size, sizeof(*r->iov));
	if (!r->chain || !r->iov) {
		rng_free(r);
		return -ENOMEM;
	}
	if (r->rate) {
		r->timer_fd = timerfd_create(CLOCK_MONOTONIC,
					     TFD_NONBLOCK | TFD_CLOEXEC);
		if (r->timer_fd < 0) {
			ret = -errno;
			rng_free(r);
			return ret;
		}
	}
	info.device_id = VIRTIO_RNG_DEVICE_ID;
	info.num_queues = 1;
	info.queue_max_size = c.queue_max_size;
	ret = virtio_device_create(&info, &rng_ops, r, &r->dev);
	if (ret) {
		rng_free(r);
		return ret;
	}
	if (r->rate) {
		struct virtio_poll_fd pfd = {
			.fd = r->timer_fd,
			.events = POLLIN,
			.ready = rng_timer_ready,
			.opaque = r,
		};

		ret = virtio_device_add_poll_fd(r->dev, &pfd, NULL);
		if (ret) {
			virtio_device_destroy(r->dev); /* frees r */
			return ret;
		}
	}
	*out = r->dev;
	return 0;
}

uint64_t virtio_rng_bytes_served(struct virtio_device *dev)
{
	struct rng *r;
	uint64_t v;

	if (!dev || virtio_device_ops_of(dev) != &rng_ops)
		return 0;
	r = virtio_device_opaque(dev);
	virtio_device_lock(dev);
	v = r->served;
	virtio_device_unlock(dev);
	return v;
}
