/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio device core: feature negotiation, the status state machine, the
 * configuration space, queue configuration handed to libvirtio-queue,
 * reset, the NEEDS_RESET error path, interrupt collection and the poll-fd
 * list.  Transport independent (see virtio-internal.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "virtio-internal.h"

#define POLL_MAX_ENTRIES 4096u
#define IRQ_WORDS	 ((VIRTIO_DEVICE_MAX_QUEUES + 63) / 64)

struct virtio_device;

/* One entry of the poll list.  Entries are never freed before the device
 * (a VMM may still call a stale ready function); removed ones are reused. */
struct poll_entry {
	struct virtio_device *dev;
	bool live;
	uint32_t queue; /* VIRTIO_DEVICE_NO_QUEUE for a device-type fd */
	struct virtio_poll_fd pfd;
};

struct queue_state {
	struct virtq *vq;
	struct event_notifier *notifier;
	uint32_t max_size;
	bool size_invalid;  /* last size write was refused */
	_Atomic int irq_fd; /* the transport's direct interrupt fd, or -1 */
};

struct virtio_device {
	pthread_mutex_t lock;
	_Atomic uintptr_t owner; /* address of the holder's tls_id, or 0 */

	struct virtio_device_info info;
	const struct virtio_device_ops *ops;
	void *opaque;

	uint64_t offered;
	uint64_t driver_features; /* as written by the driver */
	uint64_t accepted;	  /* valid once FEATURES_OK stuck */
	uint8_t status;

	uint8_t *config;
	uint32_t config_gen;

	struct guest_memory *mem;
	struct queue_state *queues;

	/* Interrupts raised under the lock, sent at unlock. */
	bool irq_any;
	bool irq_config;
	uint64_t irq_queues[IRQ_WORDS];

	const struct virtio_transport_ops *tops;
	void *t;

	/* Poll list (entries 0..num_queues-1 are the queue notifiers). */
	pthread_mutex_t poll_lock;
	struct poll_entry **ents;
	unsigned nents;
	atomic_bool poll_changed;
	void (*watcher)(void *opaque, struct virtio_device *dev);
	void *watcher_opaque;
	/* The device type's irq-fd watcher (under poll_lock). */
	void (*irq_fd_watcher)(void *opaque, uint32_t queue, int fd);
	void *irq_fd_opaque;
};

static _Thread_local char tls_id;

static bool held_by_me(const struct virtio_device *dev)
{
	return atomic_load_explicit(&dev->owner, memory_order_relaxed) ==
	       (uintptr_t)&tls_id;
}

void virtio_device_lock(struct virtio_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	atomic_store_explicit(&dev->owner, (uintptr_t)&tls_id,
			      memory_order_relaxed);
}

static void call_watcher(struct virtio_device *dev)
{
	void (*fn)(void *, struct virtio_device *);
	void *opaque;

	/* A plain load first: every unlock comes here. */
	if (!atomic_load_explicit(&dev->poll_changed, memory_order_relaxed) ||
	    !atomic_exchange(&dev->poll_changed, false))
		return;
	pthread_mutex_lock(&dev->poll_lock);
	fn = dev->watcher;
	opaque = dev->watcher_opaque;
	pthread_mutex_unlock(&dev->poll_lock);
	if (fn)
		fn(opaque, dev);
}

void virtio_device_unlock(struct virtio_device *dev)
{
	uint64_t q[IRQ_WORDS];
	bool any = dev->irq_any, config = dev->irq_config;
	const struct virtio_transport_ops *tops = dev->tops;
	void *t = dev->t;
	unsigned words = (dev->info.num_queues + 63) / 64;

	if (any) {
		memcpy(q, dev->irq_queues, words * sizeof(q[0]));
		memset(dev->irq_queues, 0, words * sizeof(q[0]));
		dev->irq_any = false;
		dev->irq_config = false;
	}
	atomic_store_explicit(&dev->owner, 0, memory_order_relaxed);
	pthread_mutex_unlock(&dev->lock);

	if (any && tops) {
		for (unsigned w = 0; w < words; w++) {
			uint64_t bits = q[w];

			while (bits) {
				unsigned b = (unsigned)__builtin_ctzll(bits);

				bits &= bits - 1;
				if (tops->queue_interrupt)
					tops->queue_interrupt(
						t, (uint16_t)(w * 64 + b));
			}
		}
		if (config && tops->config_interrupt)
			tops->config_interrupt(t);
	}
	call_watcher(dev);
}

/* ------------------------------------------------------------ helpers */

static bool device_live(const struct virtio_device *dev)
{
	return (dev->status & VIRTIO_DEVICE_STATUS_DRIVER_OK) &&
	       !(dev->status & (VIRTIO_DEVICE_STATUS_NEEDS_RESET |
				VIRTIO_DEVICE_STATUS_FAILED));
}

void virtio_device_error(struct virtio_device *dev)
{
	if (!dev || (dev->status & VIRTIO_DEVICE_STATUS_NEEDS_RESET))
		return;
	dev->status |= VIRTIO_DEVICE_STATUS_NEEDS_RESET;
	/* Tell the driver if it is there to listen (virtio 1.2, 2.1.2). */
	if (dev->status & VIRTIO_DEVICE_STATUS_DRIVER_OK) {
		dev->irq_config = true;
		dev->irq_any = true;
	}
}

bool virtio_device_needs_reset(const struct virtio_device *dev)
{
	return dev && (dev->status & VIRTIO_DEVICE_STATUS_NEEDS_RESET);
}

static void queue_broken(struct virtq *q, enum virtq_error err, void *opaque)
{
	(void)q;
	(void)err;
	/* Called from a virtq call, which the core and the device types make
	 * with the device lock held. */
	virtio_device_error(opaque);
}

/* -------------------------------------------------------- life cycle */

static void queue_notifier_ready(void *opaque, uint32_t revents);
static void poll_changed(struct virtio_device *dev);
static void entry_ready(void *opaque, uint32_t revents);

static int check_size(uint32_t s)
{
	return s && s <= VIRTQ_MAX_SIZE && !(s & (s - 1)) ? 0 : -EINVAL;
}

int virtio_device_create(const struct virtio_device_info *info,
			 const struct virtio_device_ops *ops, void *opaque,
			 struct virtio_device **out)
{
	static const struct virtio_device_ops no_ops;
	struct virtio_device *dev;
	uint32_t defmax;
	int ret = -ENOMEM;

	if (!info || !out || info->device_id == 0 || info->device_id > 0xffff ||
	    info->num_queues == 0 ||
	    info->num_queues > VIRTIO_DEVICE_MAX_QUEUES ||
	    info->config_size > VIRTIO_DEVICE_MAX_CONFIG ||
	    (info->flags & ~(uint32_t)(VIRTIO_DEVICE_NO_INDIRECT |
				       VIRTIO_DEVICE_NO_EVENT_IDX)))
		return -EINVAL;
	defmax = info->queue_max_size ? info->queue_max_size : 256;
	if (check_size(defmax))
		return -EINVAL;
	for (uint32_t i = 0; info->queue_max_sizes && i < info->num_queues; i++)
		if (info->queue_max_sizes[i] &&
		    check_size(info->queue_max_sizes[i]))
			return -EINVAL;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	pthread_mutex_init(&dev->lock, NULL);
	pthread_mutex_init(&dev->poll_lock, NULL);
	dev->info = *info;
	dev->info.queue_max_sizes = NULL;
	dev->info.queue_max_size = defmax;
	dev->ops = ops ? ops : &no_ops;
	dev->opaque = opaque;
	dev->offered = info->features | (1ull << VIRTIO_DEVICE_F_VERSION_1);
	if (!(info->flags & VIRTIO_DEVICE_NO_INDIRECT))
		dev->offered |= 1ull << VIRTIO_DEVICE_F_INDIRECT_DESC;
	if (!(info->flags & VIRTIO_DEVICE_NO_EVENT_IDX))
		dev->offered |= 1ull << VIRTIO_DEVICE_F_EVENT_IDX;

	if (info->config_size) {
		dev->config = calloc(1, info->config_size);
		if (!dev->config)
			goto fail;
	}
	dev->queues = calloc(info->num_queues, sizeof(*dev->queues));
	dev->ents = calloc(info->num_queues, sizeof(*dev->ents));
	if (!dev->queues || !dev->ents)
		goto fail;
	for (uint32_t i = 0; i < info->num_queues; i++) {
		struct queue_state *qs = &dev->queues[i];
		struct poll_entry *e;

		qs->max_size = defmax;
		if (info->queue_max_sizes && info->queue_max_sizes[i])
			qs->max_size = info->queue_max_sizes[i];
		ret = virtq_create(qs->max_size, &qs->vq);
		if (ret)
			goto fail;
		virtq_set_error_cb(qs->vq, queue_broken, dev);
		atomic_store(&qs->irq_fd, -1);
		ret = event_notifier_create(0, &qs->notifier);
		if (ret)
			goto fail;
		ret = -ENOMEM;
		e = calloc(1, sizeof(*e));
		if (!e)
			goto fail;
		e->dev = dev;
		e->live = true;
		e->queue = i;
		e->pfd.fd = event_notifier_fd(qs->notifier);
		e->pfd.events = POLLIN;
		e->pfd.ready = queue_notifier_ready;
		e->pfd.opaque = e;
		dev->ents[i] = e;
		dev->nents = i + 1;
	}
	*out = dev;
	return 0;

fail:
	dev->ops = &no_ops; /* on error the caller keeps @opaque */
	virtio_device_destroy(dev);
	return ret;
}

static void reset_locked(struct virtio_device *dev)
{
	/* The device type first: it cancels or waits for everything in
	 * flight, so nothing reaches guest memory after this point. */
	if (dev->ops->reset)
		dev->ops->reset(dev->opaque);
	for (uint32_t i = 0; i < dev->info.num_queues; i++) {
		if (!dev->queues[i].vq)
			continue; /* a create that failed half-way */
		virtq_reset(dev->queues[i].vq);
		dev->queues[i].size_invalid = false;
		event_notifier_consume(dev->queues[i].notifier);
	}
	dev->driver_features = 0;
	dev->accepted = 0;
	dev->status = 0;
	memset(dev->irq_queues, 0, sizeof(dev->irq_queues));
	dev->irq_any = false;
	dev->irq_config = false;
	if (dev->tops && dev->tops->reset)
		dev->tops->reset(dev->t);
}

void virtio_device_destroy(struct virtio_device *dev)
{
	if (!dev)
		return;
	if (dev->queues) {
		virtio_device_lock(dev);
		reset_locked(dev);
		atomic_store_explicit(&dev->owner, 0, memory_order_relaxed);
		pthread_mutex_unlock(&dev->lock);
	}
	if (dev->ops->destroy)
		dev->ops->destroy(dev->opaque);
	for (uint32_t i = 0; dev->queues && i < dev->info.num_queues; i++) {
		virtq_destroy(dev->queues[i].vq);
		event_notifier_destroy(dev->queues[i].notifier);
	}
	for (unsigned i = 0; i < dev->nents; i++)
		free(dev->ents[i]);
	free(dev->ents);
	free(dev->queues);
	free(dev->config);
	guest_memory_unref(dev->mem);
	pthread_mutex_destroy(&dev->poll_lock);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

int virtio_device_set_memory(struct virtio_device *dev,
			     struct guest_memory *mem)
{
	int ret = 0;

	if (!dev)
		return -EINVAL;
	virtio_device_lock(dev);
	for (uint32_t i = 0; !mem && i < dev->info.num_queues; i++)
		if (virtq_ready(dev->queues[i].vq))
			ret = -EINVAL;
	if (!ret) {
		if (mem)
			guest_memory_ref(mem);
		guest_memory_unref(dev->mem);
		dev->mem = mem;
		/* A ready queue whose rings no longer fit breaks, which sets
		 * NEEDS_RESET through queue_broken(). */
		for (uint32_t i = 0; i < dev->info.num_queues; i++)
			virtq_set_memory(dev->queues[i].vq, mem);
	}
	virtio_device_unlock(dev);
	return ret;
}

struct guest_memory *virtio_device_memory(struct virtio_device *dev)
{
	return dev ? dev->mem : NULL;
}

void virtio_device_reset(struct virtio_device *dev)
{
	if (!dev)
		return;
	virtio_device_lock(dev);
	reset_locked(dev);
	virtio_device_unlock(dev);
}

int virtio_device_set_transport(struct virtio_device *dev,
				const struct virtio_transport_ops *ops, void *t)
{
	int ret = 0;

	if (!dev)
		return -EINVAL;
	virtio_device_lock(dev);
	if (ops && dev->tops)
		ret = -EBUSY;
	else {
		dev->tops = ops;
		dev->t = ops ? t : NULL;
	}
	virtio_device_unlock(dev);
	/* Detached: the transport's interrupt fds are the VMM's to close. */
	if (!ops && !ret)
		for (uint32_t i = 0; i < dev->info.num_queues; i++)
			virtio_device_set_queue_irq_fd(dev, i, -1);
	return ret;
}

void virtio_device_set_queue_irq_fd(struct virtio_device *dev, uint32_t q,
				    int fd)
{
	void (*fn)(void *opaque, uint32_t queue, int fd);
	void *opaque;

	if (!dev || q >= dev->info.num_queues)
		return;
	if (fd < 0)
		fd = -1;
	if (atomic_exchange(&dev->queues[q].irq_fd, fd) == fd)
		return;
	pthread_mutex_lock(&dev->poll_lock);
	fn = dev->irq_fd_watcher;
	opaque = dev->irq_fd_opaque;
	pthread_mutex_unlock(&dev->poll_lock);
	if (fn)
		fn(opaque, q, fd);
}

int virtio_device_queue_irq_fd(struct virtio_device *dev, uint32_t idx)
{
	if (!dev || idx >= dev->info.num_queues)
		return -1;
	return atomic_load(&dev->queues[idx].irq_fd);
}

void virtio_device_set_irq_fd_watcher(struct virtio_device *dev,
				      void (*fn)(void *opaque, uint32_t queue,
						 int fd),
				      void *opaque)
{
	if (!dev)
		return;
	pthread_mutex_lock(&dev->poll_lock);
	dev->irq_fd_watcher = fn;
	dev->irq_fd_opaque = fn ? opaque : NULL;
	pthread_mutex_unlock(&dev->poll_lock);
}

/* ------------------------------------------------------- accessors */

void *virtio_device_opaque(const struct virtio_device *dev)
{
	return dev ? dev->opaque : NULL;
}

const struct virtio_device_ops *
virtio_device_ops_of(const struct virtio_device *dev)
{
	return dev ? dev->ops : NULL;
}

uint32_t virtio_device_id(const struct virtio_device *dev)
{
	return dev ? dev->info.device_id : 0;
}

uint32_t virtio_device_num_queues(const struct virtio_device *dev)
{
	return dev ? dev->info.num_queues : 0;
}

struct virtq *virtio_device_queue(struct virtio_device *dev, uint32_t idx)
{
	return dev && idx < dev->info.num_queues ? dev->queues[idx].vq : NULL;
}

struct event_notifier *virtio_device_queue_notifier(struct virtio_device *dev,
						    uint32_t idx)
{
	return dev && idx < dev->info.num_queues ? dev->queues[idx].notifier
						 : NULL;
}

int virtio_device_queue_notifier_claim(struct virtio_device *dev, uint32_t idx,
				       bool claimed)
{
	bool changed;

	if (!dev || idx >= dev->info.num_queues)
		return -EINVAL;
	pthread_mutex_lock(&dev->poll_lock);
	changed = dev->ents[idx]->live == claimed;
	dev->ents[idx]->live = !claimed;
	pthread_mutex_unlock(&dev->poll_lock);
	if (changed)
		poll_changed(dev);
	return 0;
}

uint64_t virtio_device_features(const struct virtio_device *dev)
{
	return dev ? dev->accepted : 0;
}

bool virtio_device_has_feature(const struct virtio_device *dev, unsigned bit)
{
	return dev && bit < 64 && (dev->accepted >> bit) & 1;
}

uint64_t virtio_device_offered_features(const struct virtio_device *dev)
{
	return dev ? dev->offered : 0;
}

int virtio_device_set_ring_features(struct virtio_device *dev, uint64_t bits)
{
	const uint64_t ring = (1ull << VIRTIO_DEVICE_F_RING_PACKED) |
			      (1ull << VIRTIO_DEVICE_F_IN_ORDER);
	int ret = 0;

	if (!dev || (bits & ~ring))
		return -EINVAL;
	virtio_device_lock(dev);
	if (dev->status)
		ret = -EBUSY; /* the driver may have read the feature pages */
	else
		dev->offered = (dev->offered & ~ring) | bits;
	virtio_device_unlock(dev);
	return ret;
}

uint8_t virtio_device_status(const struct virtio_device *dev)
{
	return dev ? dev->status : 0;
}

void virtio_device_queue_interrupt(struct virtio_device *dev, uint32_t idx)
{
	if (!dev || idx >= dev->info.num_queues)
		return;
	dev->irq_queues[idx / 64] |= 1ull << (idx % 64);
	dev->irq_any = true;
}

void virtio_device_queue_used(struct virtio_device *dev, uint32_t idx)
{
	if (!dev || idx >= dev->info.num_queues)
		return;
	if (virtq_needs_interrupt(dev->queues[idx].vq))
		virtio_device_queue_interrupt(dev, idx);
}

int virtio_device_queue_kick(struct virtio_device *dev, uint32_t idx)
{
	if (!dev || idx >= dev->info.num_queues)
		return -EINVAL;
	return event_notifier_signal(dev->queues[idx].notifier);
}

/* ------------------------------------------------------ config space */

uint32_t virtio_device_config_size(const struct virtio_device *dev)
{
	return dev->info.config_size;
}

int virtio_device_config_set(struct virtio_device *dev, uint32_t offset,
			     const void *data, size_t len, bool notify)
{
	if (!dev || (!data && len) || offset > dev->info.config_size ||
	    len > dev->info.config_size - offset)
		return -EINVAL;
	if (len)
		memcpy(dev->config + offset, data, len);
	dev->config_gen++;
	if (notify && (dev->status & VIRTIO_DEVICE_STATUS_DRIVER_OK)) {
		dev->irq_config = true;
		dev->irq_any = true;
	}
	return 0;
}

void *virtio_device_config_data(struct virtio_device *dev)
{
	return dev ? dev->config : NULL;
}

uint32_t virtio_device_config_generation(const struct virtio_device *dev)
{
	return dev ? dev->config_gen : 0;
}

static bool config_in_range(const struct virtio_device *dev, uint32_t offset,
			    unsigned len)
{
	return len && offset <= dev->info.config_size &&
	       len <= dev->info.config_size - offset;
}

void virtio_device_config_read_locked(struct virtio_device *dev,
				      uint32_t offset, void *data, unsigned len)
{
	if (!config_in_range(dev, offset, len)) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, dev->config + offset, len);
	if (dev->ops->config_read)
		dev->ops->config_read(dev->opaque, offset, data, len);
}

void virtio_device_config_write_locked(struct virtio_device *dev,
				       uint32_t offset, const void *data,
				       unsigned len)
{
	if (!config_in_range(dev, offset, len))
		return;
	if (dev->ops->config_write)
		dev->ops->config_write(dev->opaque, offset, data, len);
}

/* ---------------------------------------------- features and status */

uint32_t virtio_device_feature_page_locked(struct virtio_device *dev,
					   uint32_t page)
{
	return page < 2 ? (uint32_t)(dev->offered >> (32 * page)) : 0;
}

uint32_t virtio_device_driver_page_locked(struct virtio_device *dev,
					  uint32_t page)
{
	return page < 2 ? (uint32_t)(dev->driver_features >> (32 * page)) : 0;
}

void virtio_device_set_driver_page_locked(struct virtio_device *dev,
					  uint32_t page, uint32_t value)
{
	uint64_t mask;

	/* Features are fixed once FEATURES_OK was set (virtio 1.2, 3.1.1);
	 * a write before DRIVER is out of order and ignored too. */
	if (page >= 2 || (dev->status & VIRTIO_DEVICE_STATUS_FEATURES_OK) ||
	    !(dev->status & VIRTIO_DEVICE_STATUS_DRIVER))
		return;
	mask = 0xffffffffull << (32 * page);
	dev->driver_features = (dev->driver_features & ~mask) |
			       ((uint64_t)value << (32 * page));
}

static bool features_acceptable(struct virtio_device *dev)
{
	uint64_t f = dev->driver_features;

	if (f & ~dev->offered)
		return false; /* accepted a feature not offered */
	if (!(f & (1ull << VIRTIO_DEVICE_F_VERSION_1)))
		return false; /* legacy interface not supported */
	if (dev->ops->features_ok && dev->ops->features_ok(dev->opaque, f))
		return false;
	return true;
}

void virtio_device_set_status_locked(struct virtio_device *dev, uint8_t val)
{
	const uint8_t driver_bits = (uint8_t)~VIRTIO_DEVICE_STATUS_NEEDS_RESET;
	uint8_t old = dev->status, neu;

	if (val == 0) {
		reset_locked(dev);
		return;
	}
	val &= driver_bits; /* NEEDS_RESET belongs to the device */
	if ((old & driver_bits) & ~val)
		return; /* only a reset clears status bits */
	neu = (uint8_t)(val | (old & VIRTIO_DEVICE_STATUS_NEEDS_RESET));

	if ((neu & VIRTIO_DEVICE_STATUS_FEATURES_OK) &&
	    !(old & VIRTIO_DEVICE_STATUS_FEATURES_OK)) {
		if (!(neu & VIRTIO_DEVICE_STATUS_DRIVER) ||
		    !features_acceptable(dev))
			neu &= (uint8_t)~VIRTIO_DEVICE_STATUS_FEATURES_OK;
		else
			dev->accepted = dev->driver_features;
	}
	if ((neu & VIRTIO_DEVICE_STATUS_DRIVER_OK) &&
	    !(old & VIRTIO_DEVICE_STATUS_DRIVER_OK) &&
	    !(neu & VIRTIO_DEVICE_STATUS_FEATURES_OK))
		neu &= (uint8_t)~VIRTIO_DEVICE_STATUS_DRIVER_OK;
	dev->status = neu;
	if ((neu & VIRTIO_DEVICE_STATUS_DRIVER_OK) &&
	    !(old & VIRTIO_DEVICE_STATUS_DRIVER_OK) && dev->ops->activate &&
	    dev->ops->activate(dev->opaque) < 0)
		virtio_device_error(dev);
}

/* --------------------------------------------------- queue registers */

uint32_t virtio_device_queue_max_locked(struct virtio_device *dev, uint32_t q)
{
	return dev->queues[q].max_size;
}

uint32_t virtio_device_queue_size_locked(struct virtio_device *dev, uint32_t q)
{
	return virtq_size(dev->queues[q].vq);
}

void virtio_device_queue_set_size_locked(struct virtio_device *dev, uint32_t q,
					 uint32_t size)
{
	struct queue_state *qs = &dev->queues[q];

	if (virtq_ready(qs->vq))
		return;
	qs->size_invalid = virtq_set_size(qs->vq, size) != 0;
}

void virtio_device_queue_set_addr_locked(struct virtio_device *dev, uint32_t q,
					 enum virtq_area area, bool hi,
					 uint32_t value)
{
	struct virtq *vq = dev->queues[q].vq;

	if (virtq_ready(vq))
		return;
	if (hi)
		virtq_set_addr_hi(vq, area, value);
	else
		virtq_set_addr_lo(vq, area, value);
}

uint32_t virtio_device_queue_addr_locked(struct virtio_device *dev, uint32_t q,
					 enum virtq_area area, bool hi)
{
	guest_addr_t a = virtq_addr(dev->queues[q].vq, area);

	return (uint32_t)(hi ? a >> 32 : a);
}

bool virtio_device_queue_enabled_locked(struct virtio_device *dev, uint32_t q)
{
	return virtq_ready(dev->queues[q].vq);
}

void virtio_device_queue_set_enable_locked(struct virtio_device *dev,
					   uint32_t q, bool enable)
{
	struct queue_state *qs = &dev->queues[q];

	if (!enable) {
		if (!virtq_ready(qs->vq))
			return;
		if (dev->ops->queue_ready)
			dev->ops->queue_ready(dev->opaque, (uint16_t)q, false);
		virtq_reset(qs->vq);
		qs->size_invalid = false;
		return;
	}
	/* Queues are set up after FEATURES_OK (virtio 1.2, 3.1.1 step 7):
	 * the ring features must be known.  Earlier enables are ignored. */
	if (virtq_ready(qs->vq) ||
	    !(dev->status & VIRTIO_DEVICE_STATUS_FEATURES_OK) ||
	    (dev->status &
	     (VIRTIO_DEVICE_STATUS_NEEDS_RESET | VIRTIO_DEVICE_STATUS_FAILED)))
		return;
	if (qs->size_invalid || virtq_set_features(qs->vq, dev->accepted) ||
	    virtq_set_ready(qs->vq, true)) {
		/* Rings we cannot serve (bad size, misaligned, outside RAM,
		 * overlapping): the queue stays disabled and the device asks
		 * for a reset rather than run a queue it cannot trust. */
		virtio_device_error(dev);
		return;
	}
	if (dev->ops->queue_ready)
		dev->ops->queue_ready(dev->opaque, (uint16_t)q, true);
}

/* ------------------------------------------------------- notifications */

void virtio_device_notify(struct virtio_device *dev, uint32_t idx)
{
	struct virtq *vq;

	if (!dev || idx >= dev->info.num_queues)
		return;
	vq = dev->queues[idx].vq;
	virtio_device_lock(dev);
	if (device_live(dev) && virtq_ready(vq) && !virtq_is_broken(vq) &&
	    dev->ops->queue_notify)
		dev->ops->queue_notify(dev->opaque, (uint16_t)idx);
	virtio_device_unlock(dev);
}

static void queue_notifier_ready(void *opaque, uint32_t revents)
{
	struct poll_entry *e = opaque;

	bool live;

	(void)revents;
	/* A stale entry of a notifier claimed since: its reader is the
	 * backend now. */
	pthread_mutex_lock(&e->dev->poll_lock);
	live = e->live;
	pthread_mutex_unlock(&e->dev->poll_lock);
	if (!live)
		return;
	if (event_notifier_consume(e->dev->queues[e->queue].notifier) <= 0)
		return;
	virtio_device_notify(e->dev, e->queue);
}

static void entry_ready(void *opaque, uint32_t revents)
{
	struct poll_entry *e = opaque;
	struct virtio_device *dev = e->dev;
	struct virtio_poll_fd pfd;
	bool live;

	virtio_device_lock(dev);
	pthread_mutex_lock(&dev->poll_lock);
	live = e->live;
	pfd = e->pfd;
	pthread_mutex_unlock(&dev->poll_lock);
	if (live)
		pfd.ready(pfd.opaque, revents);
	virtio_device_unlock(dev);
}

/* ------------------------------------------------------------ poll list */

static void poll_changed(struct virtio_device *dev)
{
	atomic_store(&dev->poll_changed, true);
	if (!held_by_me(dev))
		call_watcher(dev);
}

int virtio_device_add_poll_fd(struct virtio_device *dev,
			      const struct virtio_poll_fd *pfd, unsigned *id)
{
	struct poll_entry *e = NULL;
	unsigned i;

	if (!dev || !pfd || pfd->fd < 0 || !pfd->ready)
		return -EINVAL;
	pthread_mutex_lock(&dev->poll_lock);
	for (i = dev->info.num_queues; i < dev->nents; i++) {
		if (!dev->ents[i]->live) {
			e = dev->ents[i];
			break;
		}
	}
	if (!e) {
		struct poll_entry **n;

		if (dev->nents >= POLL_MAX_ENTRIES) {
			pthread_mutex_unlock(&dev->poll_lock);
			return -ENOSPC;
		}
		e = calloc(1, sizeof(*e));
		n = e ? realloc(dev->ents, (dev->nents + 1) * sizeof(*n))
		      : NULL;
		if (!n) {
			free(e);
			pthread_mutex_unlock(&dev->poll_lock);
			return -ENOMEM;
		}
		dev->ents = n;
		i = dev->nents;
		dev->ents[dev->nents++] = e;
		e->dev = dev;
		e->queue = VIRTIO_DEVICE_NO_QUEUE;
	}
	e->pfd = *pfd;
	e->live = true;
	pthread_mutex_unlock(&dev->poll_lock);
	if (id)
		*id = i;
	poll_changed(dev);
	return 0;
}

int virtio_device_remove_poll_fd(struct virtio_device *dev, unsigned id)
{
	if (!dev)
		return -EINVAL;
	pthread_mutex_lock(&dev->poll_lock);
	if (id < dev->info.num_queues || id >= dev->nents ||
	    !dev->ents[id]->live) {
		pthread_mutex_unlock(&dev->poll_lock);
		return id < dev->info.num_queues ? -EINVAL : -ENOENT;
	}
	dev->ents[id]->live = false;
	pthread_mutex_unlock(&dev->poll_lock);
	poll_changed(dev);
	return 0;
}

int virtio_device_poll_fds(struct virtio_device *dev,
			   struct virtio_poll_fd *fds, unsigned max)
{
	unsigned n = 0;

	if (!dev || (!fds && max))
		return -EINVAL;
	pthread_mutex_lock(&dev->poll_lock);
	for (unsigned i = 0; i < dev->nents; i++) {
		struct poll_entry *e = dev->ents[i];

		if (!e->live)
			continue;
		if (n < max) {
			fds[n].fd = e->pfd.fd;
			fds[n].events = e->pfd.events;
			if (e->queue != VIRTIO_DEVICE_NO_QUEUE) {
				fds[n].ready = queue_notifier_ready;
			} else {
				fds[n].ready = entry_ready;
			}
			fds[n].opaque = e;
		}
		n++;
	}
	pthread_mutex_unlock(&dev->poll_lock);
	return (int)n;
}

void virtio_device_set_poll_watcher(struct virtio_device *dev,
				    void (*fn)(void *opaque,
					       struct virtio_device *dev),
				    void *opaque)
{
	if (!dev)
		return;
	pthread_mutex_lock(&dev->poll_lock);
	dev->watcher = fn;
	dev->watcher_opaque = fn ? opaque : NULL;
	pthread_mutex_unlock(&dev->poll_lock);
}
