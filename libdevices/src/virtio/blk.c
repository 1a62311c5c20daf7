/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-blk device type: request parsing and validation, the request
 * state machine over a backend, config space, write cache mode.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmm/devices/virtio-blk.h>

#define SECTOR_SHIFT 9
#define SECTOR_SIZE  512u
#define HDR_SIZE     16u
#define SEG_SIZE     16u
/* Buffers a request may use beyond seg_max (header and status split). */
#define EXTRA_BUFS   8u
#define MAX_QUEUES   256u
#define MAX_SEGS     256u

/* First word of what io->device_data points at: a request of this device,
 * or a struct virtio_blk_io_done of a program without a device. */
#define BLK_REQ_MAGIC 0x626c6b72u /* "blkr" */
#define IO_DONE_MAGIC 0x626c6b64u /* "blkd" */

struct blk_req {
	uint32_t magic; /* BLK_REQ_MAGIC; first, see virtio_blk_io_complete() */
	struct virtq_chain chain;
	struct virtio_blk_io io;
	struct virtio_blk *blk;
	struct virtio_blk_discard_write_zeroes *segs; /* max segs entries */
	struct iovec *iov;			      /* seg_max + extra */
	uint8_t *status_ptr; /* host address of the status byte, or NULL */
	struct blk_req *next_free;
	uint16_t queue;
	uint8_t status;
	bool in_flight;
	bool submitting; /* inside req_run(): completions only record */
	bool io_done;
	bool wz_punch; /* ZERO_RANGE refused: punch holes instead */
	uint32_t type;
	uint32_t step, nsteps; /* segments (+1 for a writethrough flush) */
	uint32_t nseg;
	uint32_t used_len; /* bytes before the status byte */
};

struct blk_queue {
	struct virtq *vq; /* the core's queue (valid for the device's life) */
	struct blk_req *reqs;
	struct blk_req *free;
	struct virtq_buf *bufs;
	uint32_t in_flight;
	bool used_pending;
	bool starved; /* stopped popping: every slot was in flight */
};

struct virtio_blk {
	struct virtio_device *vdev;
	const struct virtio_blk_backend_ops *be_ops;
	void *be;
	int fd;		   /* -1 for a caller's backend */
	uint64_t capacity; /* sectors */
	struct virtio_blk_options o;
	char serial[VIRTIO_BLK_ID_BYTES];
	uint32_t chain_cap;
	uint32_t nq;
	struct blk_queue *queues;
	struct virtio_blk_discard_write_zeroes *segbuf;
	struct iovec *iovbuf;
	bool writeback; /* current cache mode */
	bool draining;	/* reset in progress: completions are dropped */
	bool read_only;
	unsigned poll_id;
	bool have_poll;
};

static struct blk_req *io_req(struct virtio_blk_io *io)
{
	return io->device_data;
}

/* ------------------------------------------------------------ completion */

static void req_free(struct blk_req *r)
{
	struct blk_queue *bq = &r->blk->queues[r->queue];

	r->in_flight = false;
	r->next_free = bq->free;
	bq->free = r;
	bq->in_flight--;
}

static void req_finish(struct blk_req *r)
{
	struct virtq_chain *c = &r->chain;
	uint32_t len = 0;

	if (r->status_ptr) {
		/* Exported with the data (IN). */
		*r->status_ptr = r->status;
		len = r->used_len + 1;
	} else if (c->write_len > 0) {
		uint32_t before = c->write_len - 1;
		uint8_t st = r->status;

		/* Move the cursor onto the last writable byte. */
		if (virtq_chain_written(c) < before)
			virtq_chain_skip_write(c,
					       before - virtq_chain_written(c));
		if (virtq_chain_written(c) == before &&
		    virtq_chain_write(c, &st, 1) == 1)
			len = r->used_len + 1;
	}
	/* Errors here mean a broken or reset queue: nothing to do. */
	(void)virtq_complete_len(r->blk->queues[r->queue].vq, c, len);
	r->blk->queues[r->queue].used_pending = true;
	req_free(r);
}

static void req_run(struct blk_req *r);

void virtio_blk_io_done_init(struct virtio_blk_io_done *d,
			     void (*fn)(struct virtio_blk_io *io,
					int64_t result, void *opaque),
			     void *opaque)
{
	if (!d)
		return;
	d->magic = IO_DONE_MAGIC;
	d->fn = fn;
	d->opaque = opaque;
}

void virtio_blk_io_complete(struct virtio_blk_io *io, int64_t result)
{
	struct blk_req *r = io ? io_req(io) : NULL;

	if (r && r->magic == IO_DONE_MAGIC) {
		/* A backend used without a device (virtio_blk_io_done). */
		struct virtio_blk_io_done *d = io->device_data;

		if (d->fn)
			d->fn(io, result, d->opaque);
		return;
	}
	if (!r || !r->in_flight)
		return;
	r->io_done = true;
	if (result < 0 ||
	    ((io->op == VIRTIO_BLK_IO_READ || io->op == VIRTIO_BLK_IO_WRITE) &&
	     (uint64_t)result != io->len)) {
		/* Write-zeroes refused by the file system: punch instead. */
		if (result == -EOPNOTSUPP &&
		    io->op == VIRTIO_BLK_IO_WRITE_ZEROES &&
		    !(io->flags & VIRTIO_BLK_IO_F_UNMAP) && !r->blk->draining) {
			r->wz_punch = true; /* retry this step */
			if (!r->submitting)
				req_run(r);
			return;
		}
		r->status = VIRTIO_BLK_S_IOERR;
		r->step = r->nsteps;
	} else {
		r->step++;
	}
	if (r->blk->draining) {
		/* Reset: no guest memory write, no used element. */
		req_free(r);
		return;
	}
	if (!r->submitting)
		req_run(r);
}

/* Set up r->io for step r->step. */
static void req_prepare_step(struct blk_req *r)
{
	struct virtio_blk_io *io = &r->io;

	if (r->type == VIRTIO_BLK_T_DISCARD ||
	    r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		if (r->step < r->nseg) {
			const struct virtio_blk_discard_write_zeroes *s =
				&r->segs[r->step];
			io->op = r->type == VIRTIO_BLK_T_DISCARD
					 ? VIRTIO_BLK_IO_DISCARD
					 : VIRTIO_BLK_IO_WRITE_ZEROES;
			io->flags = 0;
			if (r->type == VIRTIO_BLK_T_WRITE_ZEROES &&
			    (s->flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) &&
			    (r->blk->o.flags & VIRTIO_BLK_OPT_WZ_MAY_UNMAP))
				io->flags = VIRTIO_BLK_IO_F_UNMAP;
			if (r->wz_punch)
				io->flags = VIRTIO_BLK_IO_F_UNMAP;
			io->offset = s->sector << SECTOR_SHIFT;
			io->len = (uint64_t)s->num_sectors << SECTOR_SHIFT;
			return;
		}
	} else if (r->step == 0 && r->type != VIRTIO_BLK_T_FLUSH) {
		return; /* READ/WRITE: io set up at parse time */
	}
	io->op = VIRTIO_BLK_IO_FLUSH;
	io->flags = 0;
	io->offset = 0;
	io->len = 0;
	io->iov = NULL;
	io->iovcnt = 0;
}

/* Run the request's remaining steps; finish it when none is left. */
static void req_run(struct blk_req *r)
{
	struct virtio_blk *blk = r->blk;

	r->submitting = true;
	while (r->step < r->nsteps) {
		/* A zero-length segment needs no backend call. */
		if ((r->type == VIRTIO_BLK_T_DISCARD ||
		     r->type == VIRTIO_BLK_T_WRITE_ZEROES) &&
		    r->step < r->nseg && r->segs[r->step].num_sectors == 0) {
			r->step++;
			continue;
		}
		req_prepare_step(r);
		r->io_done = false;
		if (blk->be_ops->submit(blk->be, &r->io) < 0) {
			r->status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (!r->io_done) {
			/* Asynchronous: the completion goes on. */
			r->submitting = false;
			return;
		}
		if (!r->in_flight)
			return; /* dropped by a reset */
	}
	r->submitting = false;
	req_finish(r);
}

/* ------------------------------------------------------------- parsing */

static bool range_ok(const struct virtio_blk *blk, uint64_t sector,
		     uint64_t nsectors)
{
	return sector <= blk->capacity && nsectors <= blk->capacity - sector;
}

/* Validate the DISCARD / WRITE_ZEROES payload into r->segs. */
static uint8_t parse_segments(struct blk_req *r, uint32_t payload)
{
	struct virtio_blk *blk = r->blk;
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	uint32_t max_seg = discard ? blk->o.max_discard_seg
				   : blk->o.max_write_zeroes_seg;
	uint32_t max_sectors = discard ? blk->o.max_discard_sectors
				       : blk->o.max_write_zeroes_sectors;
	uint32_t n;

	if (payload == 0 || payload % SEG_SIZE)
		return VIRTIO_BLK_S_IOERR;
	n = payload / SEG_SIZE;
	if (n > max_seg)
		return VIRTIO_BLK_S_UNSUPP;
	if (virtq_chain_read_exact(&r->chain, r->segs, (size_t)n * SEG_SIZE))
		return VIRTIO_BLK_S_IOERR;
	for (uint32_t i = 0; i < n; i++) {
		struct virtio_blk_discard_write_zeroes *s = &r->segs[i];

		s->sector = le64toh(s->sector);
		s->num_sectors = le32toh(s->num_sectors);
		s->flags = le32toh(s->flags);
		if (s->flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return VIRTIO_BLK_S_UNSUPP;
		if (discard && s->flags)
			return VIRTIO_BLK_S_UNSUPP;
		if (s->num_sectors > max_sectors ||
		    !range_ok(blk, s->sector, s->num_sectors))
			return VIRTIO_BLK_S_IOERR;
	}
	r->nseg = n;
	return VIRTIO_BLK_S_OK;
}

/* Parse a popped chain and start it: it is finished here (an error or an
 * immediate answer) or by the completions of its backend steps. */
static void req_start(struct blk_req *r)
{
	struct virtio_blk *blk = r->blk;
	struct virtq_chain *c = &r->chain;
	struct virtio_blk_outhdr hdr;
	uint32_t status_room = c->write_len > 0 ? 1 : 0;
	uint32_t data_in = c->write_len - status_room;
	int n;

	r->status = VIRTIO_BLK_S_OK;
	r->used_len = 0;
	r->step = 0;
	r->nsteps = 0;
	r->nseg = 0;
	r->io_done = false;
	r->submitting = false;
	r->wz_punch = false;
	r->status_ptr = NULL;
	memset(&r->io, 0, sizeof(r->io));
	r->magic = BLK_REQ_MAGIC;
	r->io.device_data = r;

	if (!status_room) {
		req_finish(r); /* used length 0, nothing written */
		return;
	}
	if (VIRTQ_CHAIN_READ_OBJ(c, &hdr)) {
		r->status = VIRTIO_BLK_S_IOERR; /* header missing */
		req_finish(r);
		return;
	}
	r->type = le32toh(hdr.type);
	uint64_t sector = le64toh(hdr.sector);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = r->type == VIRTIO_BLK_T_IN;
		uint32_t len = in ? data_in : virtq_chain_readable(c);

		if (!in && blk->read_only) {
			r->status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (len % SECTOR_SIZE ||
		    !range_ok(blk, sector, len >> SECTOR_SHIFT)) {
			r->status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (in) {
			/* Export data and status byte at once: the status
			 * is then one store through a host pointer. */
			struct iovec *last;

			n = virtq_chain_writable_iov(c, c->write_len, r->iov,
						     (int)blk->chain_cap);
			if (n <= 0) {
				r->status = VIRTIO_BLK_S_IOERR;
				break;
			}
			last = &r->iov[n - 1];
			r->status_ptr =
				(uint8_t *)last->iov_base + last->iov_len - 1;
			if (--last->iov_len == 0)
				n--;
		} else {
			if (len == 0)
				break;
			n = virtq_chain_readable_iov(c, len, r->iov,
						     (int)blk->chain_cap);
			if (n <= 0) {
				r->status = VIRTIO_BLK_S_IOERR;
				break;
			}
		}
		if (len == 0)
			break;
		if (in)
			r->used_len = len;
		r->io.op = in ? VIRTIO_BLK_IO_READ : VIRTIO_BLK_IO_WRITE;
		r->io.offset = sector << SECTOR_SHIFT;
		r->io.len = len;
		r->io.iov = r->iov;
		r->io.iovcnt = n;
		r->nsteps = 1 + (!in && !blk->writeback);
		req_run(r);
		return;
	}
	case VIRTIO_BLK_T_FLUSH:
		r->nsteps = 1;
		req_run(r);
		return;
	case VIRTIO_BLK_T_GET_ID: {
		uint32_t idlen = data_in < VIRTIO_BLK_ID_BYTES
					 ? data_in
					 : VIRTIO_BLK_ID_BYTES;

		if (virtq_chain_write_exact(c, blk->serial, idlen))
			r->status = VIRTIO_BLK_S_IOERR;
		else
			r->used_len = idlen;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		unsigned bit = r->type == VIRTIO_BLK_T_DISCARD
				       ? VIRTIO_BLK_F_DISCARD
				       : VIRTIO_BLK_F_WRITE_ZEROES;

		if (!virtio_device_has_feature(blk->vdev, bit)) {
			r->status = VIRTIO_BLK_S_UNSUPP;
			break;
		}
		if (blk->read_only) {
			r->status = VIRTIO_BLK_S_IOERR;
			break;
		}
		r->status = parse_segments(r, virtq_chain_readable(c));
		if (r->status != VIRTIO_BLK_S_OK)
			break;
		r->nsteps = r->nseg + !blk->writeback;
		req_run(r);
		return;
	}
	default:
		r->status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	req_finish(r);
}

/* ------------------------------------------------------- device ops */

static void blk_flush_used(struct virtio_blk *blk)
{
	for (uint32_t i = 0; i < blk->nq; i++) {
		struct blk_queue *bq = &blk->queues[i];

		if (bq->used_pending) {
			bq->used_pending = false;
			virtio_device_queue_used(blk->vdev, i);
		}
		if (bq->starved && bq->free) {
			bq->starved = false;
			(void)virtio_device_queue_kick(blk->vdev, i);
		}
	}
}

static void blk_queue_notify(void *opaque, uint16_t qi)
{
	struct virtio_blk *blk = opaque;
	struct virtq *q = virtio_device_queue(blk->vdev, qi);
	struct blk_queue *bq;
	uint32_t budget;

	if (!q || qi >= blk->nq)
		return;
	bq = &blk->queues[qi];
	budget = virtq_size(q);
	virtq_disable_notification(q);
	for (;;) {
		while (budget > 0) {
			struct blk_req *r = bq->free;
			int rc;

			if (!r)
				break;
			rc = virtq_pop(q, &r->chain);
			if (rc == -ENOBUFS) {
				/* Too many buffers for our slots: take it with
				 * room for the whole queue, answer IOERR. */
				struct virtq_chain *big =
					virtq_chain_alloc(virtq_size(q));

				if (!big)
					break;
				if (virtq_pop(q, big) == 1) {
					uint8_t st = VIRTIO_BLK_S_IOERR;
					uint32_t wl = big->write_len, len = 0;

					if (wl > 0) {
						virtq_chain_skip_write(big,
								       wl - 1);
						if (virtq_chain_write(big, &st,
								      1) == 1)
							len = 1;
					}
					(void)virtq_complete_len(q, big, len);
					bq->used_pending = true;
				}
				virtq_chain_free(big);
				budget--;
				continue;
			}
			if (rc != 1)
				break;
			budget--;
			bq->free = r->next_free;
			r->next_free = NULL;
			r->in_flight = true;
			bq->in_flight++;
			req_start(r);
		}
		if (budget == 0 || !bq->free) {
			/* Yield; come back on the next round if more.  With
			 * every slot in flight, the completion that frees one
			 * kicks the queue (blk_flush_used). */
			if (!bq->free)
				bq->starved = true;
			else if (virtq_avail_count(q) > 0)
				(void)virtio_device_queue_kick(blk->vdev, qi);
			virtq_enable_notification(q);
			break;
		}
		if (!virtq_enable_notification(q))
			break;
		virtq_disable_notification(q);
	}
	if (blk->be_ops->commit)
		blk->be_ops->commit(blk->be);
	blk_flush_used(blk);
}

static void blk_poll_ready(void *opaque, uint32_t revents)
{
	struct virtio_blk *blk = opaque;

	(void)revents;
	if (blk->be_ops->poll)
		blk->be_ops->poll(blk->be);
	if (blk->be_ops->commit)
		blk->be_ops->commit(blk->be);
	blk_flush_used(blk);
}

static void blk_drain(struct virtio_blk *blk)
{
	blk->draining = true;
	if (blk->be_ops->cancel_all)
		blk->be_ops->cancel_all(blk->be);
	/* Anything a backend failed to give back is dropped here. */
	for (uint32_t i = 0; i < blk->nq; i++) {
		struct blk_queue *bq = &blk->queues[i];
		uint32_t qs = blk->o.queue_size;

		bq->free = NULL;
		for (uint32_t j = qs; j-- > 0;) {
			bq->reqs[j].in_flight = false;
			bq->reqs[j].next_free = bq->free;
			bq->free = &bq->reqs[j];
		}
		bq->in_flight = 0;
		bq->used_pending = false;
		bq->starved = false;
	}
	blk->draining = false;
}

static void blk_reset(void *opaque)
{
	struct virtio_blk *blk = opaque;

	blk_drain(blk);
	blk->writeback = !(blk->o.flags & VIRTIO_BLK_OPT_WRITETHROUGH);
	uint8_t wce = blk->writeback ? 1 : 0;
	uint8_t *cfg = virtio_device_config_data(blk->vdev);

	if (cfg)
		cfg[offsetof(struct virtio_blk_config, wce)] = wce;
}

static void blk_update_mode(struct virtio_blk *blk)
{
	const uint8_t *cfg = virtio_device_config_data(blk->vdev);

	if (!virtio_device_has_feature(blk->vdev, VIRTIO_BLK_F_FLUSH))
		blk->writeback = false;
	else if (virtio_device_has_feature(blk->vdev, VIRTIO_BLK_F_CONFIG_WCE))
		blk->writeback = cfg &&
				 cfg[offsetof(struct virtio_blk_config, wce)] !=
					 0;
	else
		blk->writeback = !(blk->o.flags & VIRTIO_BLK_OPT_WRITETHROUGH);
}

static int blk_activate(void *opaque)
{
	blk_update_mode(opaque);
	return 0;
}

static void blk_config_write(void *opaque, uint32_t offset, const void *data,
			     unsigned len)
{
	struct virtio_blk *blk = opaque;
	const uint32_t wce = offsetof(struct virtio_blk_config, wce);
	uint8_t *cfg;

	/* Only wce is writable, and only with CONFIG_WCE offered. */
	if (!(virtio_device_offered_features(blk->vdev) &
	      (1ull << VIRTIO_BLK_F_CONFIG_WCE)))
		return;
	if (offset > wce || len == 0 || wce - offset >= len)
		return;
	cfg = virtio_device_config_data(blk->vdev);
	if (!cfg)
		return;
	cfg[wce] = ((const uint8_t *)data)[wce - offset] ? 1 : 0;
	if (virtio_device_status(blk->vdev) & VIRTIO_DEVICE_STATUS_DRIVER_OK)
		blk_update_mode(blk);
}

static void blk_free(struct virtio_blk *blk)
{
	if (!blk)
		return;
	if (blk->queues) {
		for (uint32_t i = 0; i < blk->nq; i++)
			free(blk->queues[i].reqs);
		free(blk->queues[0].bufs);
	}
	free(blk->queues);
	free(blk->segbuf);
	free(blk->iovbuf);
	free(blk);
}

static void blk_destroy_op(void *opaque)
{
	struct virtio_blk *blk = opaque;

	if (blk->be_ops->destroy)
		blk->be_ops->destroy(blk->be);
	if (blk->fd >= 0)
		close(blk->fd);
	blk_free(blk);
}

static const struct virtio_blk_backend_ops no_backend = {0};

static const struct virtio_device_ops blk_ops = {
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.destroy = blk_destroy_op,
};

/* --------------------------------------------------------- creation */

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static int blk_options(const struct virtio_blk_options *in,
		       struct virtio_blk_options *o)
{
	const uint32_t known =
		VIRTIO_BLK_OPT_READ_ONLY | VIRTIO_BLK_OPT_DIRECT |
		VIRTIO_BLK_OPT_WRITETHROUGH | VIRTIO_BLK_OPT_NO_FLUSH |
		VIRTIO_BLK_OPT_NO_DISCARD | VIRTIO_BLK_OPT_NO_WRITE_ZEROES |
		VIRTIO_BLK_OPT_WZ_MAY_UNMAP;

	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (o->flags & ~known)
		return -EINVAL;
	if (o->backend > VIRTIO_BLK_BACKEND_IO_URING)
		return -EINVAL;
	if (!o->num_queues)
		o->num_queues = 1;
	if (o->num_queues > MAX_QUEUES)
		return -EINVAL;
	if (!o->queue_size)
		o->queue_size = 256;
	if (!pow2(o->queue_size) || o->queue_size > VIRTQ_MAX_SIZE)
		return -EINVAL;
	if (!o->seg_max)
		o->seg_max = o->queue_size > 2 ? o->queue_size - 2 : 1;
	if (o->seg_max > 4096)
		return -EINVAL;
	if (!o->blk_size)
		o->blk_size = SECTOR_SIZE;
	if (!pow2(o->blk_size) || o->blk_size < SECTOR_SIZE ||
	    o->blk_size > 65536)
		return -EINVAL;
	if (!o->max_discard_sectors)
		o->max_discard_sectors = 0x3fffff;
	if (!o->max_discard_seg)
		o->max_discard_seg = 16;
	if (!o->discard_sector_alignment)
		o->discard_sector_alignment = o->blk_size / SECTOR_SIZE;
	if (!o->max_write_zeroes_sectors)
		o->max_write_zeroes_sectors = 0x3fffff;
	if (!o->max_write_zeroes_seg)
		o->max_write_zeroes_seg = 16;
	if (o->max_discard_seg > MAX_SEGS || o->max_write_zeroes_seg > MAX_SEGS)
		return -EINVAL;
	return 0;
}

static uint64_t blk_features(const struct virtio_blk_options *o)
{
	uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_TOPOLOGY);

	if (o->size_max)
		f |= 1ull << VIRTIO_BLK_F_SIZE_MAX;
	if (o->num_queues > 1)
		f |= 1ull << VIRTIO_BLK_F_MQ;
	if (!(o->flags & VIRTIO_BLK_OPT_NO_FLUSH))
		f |= (1ull << VIRTIO_BLK_F_FLUSH) |
		     (1ull << VIRTIO_BLK_F_CONFIG_WCE);
	if (o->flags & VIRTIO_BLK_OPT_READ_ONLY) {
		f |= 1ull << VIRTIO_BLK_F_RO;
	} else {
		if (!(o->flags & VIRTIO_BLK_OPT_NO_DISCARD))
			f |= 1ull << VIRTIO_BLK_F_DISCARD;
		if (!(o->flags & VIRTIO_BLK_OPT_NO_WRITE_ZEROES))
			f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	}
	return f;
}

static void blk_fill_config(struct virtio_blk *blk,
			    struct virtio_blk_config *cfg)
{
	const struct virtio_blk_options *o = &blk->o;

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(blk->capacity);
	cfg->size_max = htole32(o->size_max);
	cfg->seg_max = htole32(o->seg_max);
	cfg->blk_size = htole32(o->blk_size);
	cfg->physical_block_exp = o->physical_block_exp;
	cfg->alignment_offset = o->alignment_offset;
	cfg->min_io_size = htole16(o->min_io_size);
	cfg->opt_io_size = htole32(o->opt_io_size);
	cfg->wce = blk->writeback ? 1 : 0;
	cfg->num_queues = htole16((uint16_t)o->num_queues);
	cfg->max_discard_sectors = htole32(o->max_discard_sectors);
	cfg->max_discard_seg = htole32(o->max_discard_seg);
	cfg->discard_sector_alignment = htole32(o->discard_sector_alignment);
	cfg->max_write_zeroes_sectors = htole32(o->max_write_zeroes_sectors);
	cfg->max_write_zeroes_seg = htole32(o->max_write_zeroes_seg);
	cfg->write_zeroes_may_unmap =
		(o->flags & VIRTIO_BLK_OPT_WZ_MAY_UNMAP) ? 1 : 0;
}

static int blk_alloc(struct virtio_blk *blk)
{
	const struct virtio_blk_options *o = &blk->o;
	uint32_t qs = o->queue_size, nq = o->num_queues;
	uint32_t maxseg = o->max_discard_seg > o->max_write_zeroes_seg
				  ? o->max_discard_seg
				  : o->max_write_zeroes_seg;
	size_t nreq = (size_t)qs * nq;

	blk->chain_cap = o->seg_max + EXTRA_BUFS;
	if (blk->chain_cap > qs + EXTRA_BUFS)
		blk->chain_cap = qs + EXTRA_BUFS;
	if (blk->chain_cap > 65535)
		blk->chain_cap = 65535;
	blk->nq = nq;
	blk->queues = calloc(nq, sizeof(*blk->queues));
	blk->segbuf = calloc(nreq * maxseg, sizeof(*blk->segbuf));
	blk->iovbuf = calloc(nreq * blk->chain_cap, sizeof(*blk->iovbuf));
	if (!blk->queues || !blk->segbuf || !blk->iovbuf)
		return -ENOMEM;
	blk->queues[0].bufs =
		calloc(nreq * blk->chain_cap, sizeof(struct virtq_buf));
	if (!blk->queues[0].bufs)
		return -ENOMEM;
	for (uint32_t i = 0; i < nq; i++) {
		struct blk_queue *bq = &blk->queues[i];

		bq->reqs = calloc(qs, sizeof(*bq->reqs));
		if (!bq->reqs)
			return -ENOMEM;
		for (uint32_t j = qs; j-- > 0;) {
			struct blk_req *r = &bq->reqs[j];
			size_t k = (size_t)i * qs + j;

			virtq_chain_init(&r->chain,
					 blk->queues[0].bufs +
						 k * blk->chain_cap,
					 blk->chain_cap);
			r->iov = blk->iovbuf + k * blk->chain_cap;
			r->segs = blk->segbuf + k * maxseg;
			r->blk = blk;
			r->queue = (uint16_t)i;
			r->next_free = bq->free;
			bq->free = r;
		}
	}
	return 0;
}

int virtio_blk_create_with_backend(const struct virtio_blk_backend_ops *ops,
				   void *backend, uint64_t capacity,
				   const struct virtio_blk_options *opts,
				   struct virtio_blk **out)
{
	struct virtio_blk_config cfg;
	struct virtio_device_info info = {0};
	struct virtio_blk *blk;
	int rc;

	if (!ops || !ops->submit || !out)
		return -EINVAL;
	blk = calloc(1, sizeof(*blk));
	if (!blk)
		return -ENOMEM;
	blk->fd = -1;
	rc = blk_options(opts, &blk->o);
	if (rc)
		goto err;
	blk->o.serial = NULL;
	if (opts && opts->serial)
		memcpy(blk->serial, opts->serial,
		       strnlen(opts->serial, sizeof(blk->serial)));
	blk->capacity = capacity >> SECTOR_SHIFT;
	blk->read_only = blk->o.flags & VIRTIO_BLK_OPT_READ_ONLY;
	blk->writeback = !(blk->o.flags & VIRTIO_BLK_OPT_WRITETHROUGH);
	rc = blk_alloc(blk);
	if (rc)
		goto err;
	blk->be_ops = ops;
	blk->be = backend;

	info.device_id = VIRTIO_ID_BLOCK;
	info.num_queues = blk->o.num_queues;
	info.queue_max_size = blk->o.queue_size;
	info.features = blk_features(&blk->o);
	info.config_size = sizeof(struct virtio_blk_config);
	rc = virtio_device_create(&info, &blk_ops, blk, &blk->vdev);
	if (rc)
		goto err;
	for (uint32_t i = 0; i < blk->nq; i++)
		blk->queues[i].vq = virtio_device_queue(blk->vdev, i);
	blk_fill_config(blk, &cfg);
	virtio_device_lock(blk->vdev);
	rc = virtio_device_config_set(blk->vdev, 0, &cfg, sizeof(cfg), false);
	virtio_device_unlock(blk->vdev);
	if (rc)
		goto err_dev;
	if (ops->poll_fd && ops->poll) {
		int fd = ops->poll_fd(backend);

		if (fd >= 0) {
			struct virtio_poll_fd pfd = {
				.fd = fd,
				.events = POLLIN,
				.ready = blk_poll_ready,
				.opaque = blk,
			};

			rc = virtio_device_add_poll_fd(blk->vdev, &pfd,
						       &blk->poll_id);
			if (rc)
				goto err_dev;
			blk->have_poll = true;
		}
	}
	*out = blk;
	return 0;
err_dev:
	/* The device owns blk now: detach the backend (still the caller's)
	 * and let the destroy op free blk. */
	blk->be_ops = &no_backend;
	virtio_device_destroy(blk->vdev);
	return rc;
err:
	blk_free(blk);
	return rc;
}

static int blk_file_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size))
			return -errno;
		return 0;
	}
	return -EINVAL;
}

int virtio_blk_create(const char *path, const struct virtio_blk_options *opts,
		      struct virtio_blk **out)
{
	struct virtio_blk_options o;
	const struct virtio_blk_backend_ops *ops;
	void *be;
	uint64_t size;
	int fd, rc, flags;

	if (!path || !out)
		return -EINVAL;
	rc = blk_options(opts, &o);
	if (rc)
		return rc;
#ifndef CVMM_HAVE_LIBURING
	if (o.backend == VIRTIO_BLK_BACKEND_IO_URING)
		return -EOPNOTSUPP;
#endif
	flags = O_CLOEXEC |
		((o.flags & VIRTIO_BLK_OPT_READ_ONLY) ? O_RDONLY : O_RDWR);
	if (o.flags & VIRTIO_BLK_OPT_DIRECT)
		flags |= O_DIRECT;
	fd = open(path, flags);
	if (fd < 0)
		return -errno;
	rc = blk_file_size(fd, &size);
	if (rc)
		goto err_fd;
	if (o.backend == VIRTIO_BLK_BACKEND_IO_URING)
		rc = virtio_blk_backend_uring_create(
			fd, o.queue_size * o.num_queues, &ops, &be);
	else
		rc = virtio_blk_backend_sync_create(fd, &ops, &be);
	if (rc)
		goto err_fd;
	rc = virtio_blk_create_with_backend(ops, be, size, opts, out);
	if (rc) {
		ops->destroy(be);
		goto err_fd;
	}
	(*out)->fd = fd;
	return 0;
err_fd:
	close(fd);
	return rc;
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
	if (!blk)
		return;
	/* Resets (drains the backend), then calls blk_destroy_op. */
	virtio_device_destroy(blk->vdev);
}

struct virtio_device *virtio_blk_device(struct virtio_blk *blk)
{
	return blk ? blk->vdev : NULL;
}

uint64_t virtio_blk_capacity(const struct virtio_blk *blk)
{
	return blk ? blk->capacity : 0;
}

uint32_t virtio_blk_in_flight(const struct virtio_blk *blk)
{
	uint32_t n = 0;

	if (!blk)
		return 0;
	for (uint32_t i = 0; i < blk->nq; i++)
		n += blk->queues[i].in_flight;
	return n;
}
