/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-blk synchronous backend: preadv/pwritev straight into the guest
 * buffers the device exported, fdatasync, fallocate.  Every operation
 * completes inside submit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cvmm/devices/virtio-blk.h>

struct blk_sync {
	int fd;
};

/* Advance @iov/@cnt past @done bytes (after a short transfer). */
static void iov_advance(struct iovec **iov, int *cnt, size_t done)
{
	while (*cnt > 0 && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0 && done) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
}

static int64_t sync_rw(int fd, struct virtio_blk_io *io)
{
	struct iovec *iov = io->iov;
	int cnt = io->iovcnt;
	uint64_t total = 0;

	while (total < io->len && cnt > 0) {
		int n = cnt > IOV_MAX ? IOV_MAX : cnt;
		off_t off = (off_t)(io->offset + total);
		bool rd = io->op == VIRTIO_BLK_IO_READ;
		ssize_t r;

		/* One buffer (the common case): the plain call skips the
		 * kernel's iovec import. */
		if (n == 1)
			r = rd ? pread(fd, iov->iov_base, iov->iov_len, off)
			       : pwrite(fd, iov->iov_base, iov->iov_len, off);
		else
			r = rd ? preadv(fd, iov, n, off)
			       : pwritev(fd, iov, n, off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break; /* end of file: short */
		total += (uint64_t)r;
		iov_advance(&iov, &cnt, (size_t)r);
	}
	return (int64_t)total;
}

static int64_t sync_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	while (fallocate(fd, mode, (off_t)off, (off_t)len)) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int sync_submit(void *backend, struct virtio_blk_io *io)
{
	struct blk_sync *s = backend;
	int64_t res;

	switch (io->op) {
	case VIRTIO_BLK_IO_READ:
	case VIRTIO_BLK_IO_WRITE:
		res = sync_rw(s->fd, io);
		break;
	case VIRTIO_BLK_IO_FLUSH:
		res = fdatasync(s->fd) ? -errno : 0;
		break;
	case VIRTIO_BLK_IO_DISCARD:
		res = sync_fallocate(s->fd,
				     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     io->offset, io->len);
		break;
	case VIRTIO_BLK_IO_WRITE_ZEROES:
		res = sync_fallocate(s->fd,
				     ((io->flags & VIRTIO_BLK_IO_F_UNMAP)
					      ? FALLOC_FL_PUNCH_HOLE
					      : FALLOC_FL_ZERO_RANGE) |
					     FALLOC_FL_KEEP_SIZE,
				     io->offset, io->len);
		break;
	default:
		return -EINVAL;
	}
	virtio_blk_io_complete(io, res);
	return 0;
}

static void sync_destroy(void *backend)
{
	free(backend);
}

static const struct virtio_blk_backend_ops sync_ops = {
	.submit = sync_submit,
	.destroy = sync_destroy,
};

int virtio_blk_backend_sync_create(int fd,
				   const struct virtio_blk_backend_ops **ops,
				   void **backend)
{
	struct blk_sync *s;

	if (fd < 0 || !ops || !backend)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = fd;
	*ops = &sync_ops;
	*backend = s;
	return 0;
}
