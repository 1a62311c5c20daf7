/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-blk io_uring backend (liburing): the image is registered as fixed
 * file 0; submit only queues SQEs, commit issues one io_uring_submit for
 * the whole batch and reaps the completions already there (with the
 * eventfd muted meanwhile, so they do not wake the VMM); the others are
 * announced on an eventfd registered with io_uring_register_eventfd()
 * (the device's poll fd) and reaped by poll.
 * cancel_all cancels everything in flight and waits for every CQE.
 *
 * Built only when meson found liburing; otherwise the create function
 * returns -EOPNOTSUPP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <cvmm/devices/virtio-blk.h>

#ifdef CVMM_HAVE_LIBURING
#include <liburing.h>
#include <sys/eventfd.h>

/* user_data of the cancel request: never a struct virtio_blk_io. */
#define CANCEL_TAG 1ull

struct blk_uring {
	struct io_uring ring;
	int efd;
	uint32_t in_flight; /* SQEs queued or submitted, CQE not reaped */
	uint32_t queued;    /* SQEs prepared, not yet submitted */
	uint32_t cq_entries;
};

static void uring_submit_queued(struct blk_uring *u)
{
	int rc;

	if (!u->queued)
		return;
	do {
		rc = io_uring_submit(&u->ring);
	} while (rc == -EINTR);
	if (rc >= 0)
		u->queued = (uint32_t)rc >= u->queued
				    ? 0
				    : u->queued - (uint32_t)rc;
	/* -EAGAIN / -EBUSY: they stay queued; the next commit retries. */
}

static void uring_handle(struct blk_uring *u, struct io_uring_cqe *cqe);

/* Reap what is in the CQ without a system call; true if the budget ran
 * out with CQEs left. */
static bool uring_reap(struct blk_uring *u)
{
	struct io_uring_cqe *cqe;
	uint32_t budget = u->cq_entries;

	while (budget > 0 && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		uring_handle(u, cqe);
		budget--;
	}
	return budget == 0 && io_uring_cq_ready(&u->ring);
}

static void uring_kick_self(struct blk_uring *u)
{
	uint64_t v = 1;

	(void)!write(u->efd, &v, sizeof(v));
}

/*
 * One io_uring_submit for everything queued, then reap the completions
 * that are already there (page-cache hits complete inside the submit), so
 * a request served from the cache completes within the notification.
 * Follow-up steps queued by those completions are submitted the same way,
 * a bounded number of rounds; anything left over is announced on the
 * eventfd so the VMM calls poll.
 */
static void uring_commit(void *backend)
{
	struct blk_uring *u = backend;
	bool quiet;

	if (!u->queued && !io_uring_cq_ready(&u->ring))
		return;
	/* Completions posted while we reap them ourselves need not wake the
	 * VMM: mute the eventfd meanwhile (IORING_CQ_EVENTFD_DISABLED). */
	quiet = io_uring_cq_eventfd_toggle(&u->ring, false) == 0;
	for (int round = 0; round < 4; round++) {
		if (!u->queued && !io_uring_cq_ready(&u->ring))
			break;
		uring_submit_queued(u);
		if (uring_reap(u))
			break;
	}
	if (quiet) {
		(void)io_uring_cq_eventfd_toggle(&u->ring, true);
		/* Order the flag store before the tail load below: a CQE
		 * posted while muted is seen here, a later one signals. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	if (u->queued || io_uring_cq_ready(&u->ring))
		uring_kick_self(u);
}

static int uring_submit(void *backend, struct virtio_blk_io *io)
{
	struct blk_uring *u = backend;
	struct io_uring_sqe *sqe;

	if (io->op > VIRTIO_BLK_IO_WRITE_ZEROES)
		return -EINVAL;
	sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		uring_submit_queued(u);
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EBUSY;
	}
	switch (io->op) {
	case VIRTIO_BLK_IO_READ:
		/* One buffer: the non-vectored op skips the iovec import. */
		if (io->iovcnt == 1)
			io_uring_prep_read(sqe, 0, io->iov[0].iov_base,
					   (unsigned)io->iov[0].iov_len,
					   io->offset);
		else
			io_uring_prep_readv(sqe, 0, io->iov,
					    (unsigned)io->iovcnt, io->offset);
		break;
	case VIRTIO_BLK_IO_WRITE:
		if (io->iovcnt == 1)
			io_uring_prep_write(sqe, 0, io->iov[0].iov_base,
					    (unsigned)io->iov[0].iov_len,
					    io->offset);
		else
			io_uring_prep_writev(sqe, 0, io->iov,
					     (unsigned)io->iovcnt, io->offset);
		break;
	case VIRTIO_BLK_IO_FLUSH:
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		break;
	case VIRTIO_BLK_IO_DISCARD:
		io_uring_prep_fallocate(
			sqe, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			io->offset, io->len);
		break;
	case VIRTIO_BLK_IO_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, 0,
					((io->flags & VIRTIO_BLK_IO_F_UNMAP)
						 ? FALLOC_FL_PUNCH_HOLE
						 : FALLOC_FL_ZERO_RANGE) |
						FALLOC_FL_KEEP_SIZE,
					io->offset, io->len);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, io);
	u->queued++;
	u->in_flight++;
	return 0;
}

static void uring_handle(struct blk_uring *u, struct io_uring_cqe *cqe)
{
	uint64_t tag = io_uring_cqe_get_data64(cqe);
	int64_t res = cqe->res;

	io_uring_cqe_seen(&u->ring, cqe);
	if (tag == CANCEL_TAG)
		return; /* cancel request or no-op: not counted */
	u->in_flight--;
	virtio_blk_io_complete((struct virtio_blk_io *)(uintptr_t)tag, res);
}

static void uring_poll(void *backend)
{
	struct blk_uring *u = backend;
	uint64_t v;

	while (read(u->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	/* Bounded: completions may submit follow-up steps (commit, which
	 * the device calls next, submits them). */
	if (uring_reap(u))
		uring_kick_self(u); /* more left: have the VMM call again */
}

static void uring_cancel_all(void *backend)
{
	struct blk_uring *u = backend;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;

	uring_submit_queued(u);
	if (!u->in_flight)
		return;
	sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		uring_submit_queued(u);
		sqe = io_uring_get_sqe(&u->ring);
	}
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, CANCEL_TAG);
		u->queued++;
	}
	/* Wait until the kernel has given back every request: only then may
	 * the device forget the guest buffers they point into. */
	while (u->in_flight) {
		int rc;

		uring_submit_queued(u);
		rc = io_uring_wait_cqe(&u->ring, &cqe);
		if (rc == -EINTR || rc == -EAGAIN)
			continue;
		if (rc < 0)
			break; /* the ring itself failed */
		uring_handle(u, cqe);
	}
	/* Reap the cancel's own CQE if it is already there. */
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0)
		uring_handle(u, cqe);
}

static int uring_poll_fd(void *backend)
{
	return ((struct blk_uring *)backend)->efd;
}

static void uring_destroy(void *backend)
{
	struct blk_uring *u = backend;

	uring_cancel_all(u);
	io_uring_queue_exit(&u->ring);
	close(u->efd);
	free(u);
}

static const struct virtio_blk_backend_ops uring_ops = {
	.submit = uring_submit,
	.commit = uring_commit,
	.poll_fd = uring_poll_fd,
	.poll = uring_poll,
	.cancel_all = uring_cancel_all,
	.destroy = uring_destroy,
};

int virtio_blk_backend_uring_create(int fd, uint32_t depth,
				    const struct virtio_blk_backend_ops **ops,
				    void **backend)
{
	struct io_uring_params p = {0};
	struct blk_uring *u;
	uint32_t entries = 1;
	int rc;

	if (fd < 0 || !ops || !backend || depth == 0)
		return -EINVAL;
	/* One SQE per request step, plus the cancel. */
	while (entries < depth + 1 && entries < 4096)
		entries <<= 1;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		rc = -errno;
		free(u);
		return rc;
	}
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 2;
	rc = io_uring_queue_init_params(entries, &u->ring, &p);
	if (rc < 0)
		goto err_efd;
	u->cq_entries = p.cq_entries;
	rc = io_uring_register_files(&u->ring, &fd, 1);
	if (rc < 0)
		goto err_ring;
	rc = io_uring_register_eventfd(&u->ring, u->efd);
	if (rc < 0)
		goto err_ring;
	*ops = &uring_ops;
	*backend = u;
	return 0;
err_ring:
	io_uring_queue_exit(&u->ring);
err_efd:
	close(u->efd);
	free(u);
	return rc;
}

#else /* !CVMM_HAVE_LIBURING */

int virtio_blk_backend_uring_create(int fd, uint32_t depth,
				    const struct virtio_blk_backend_ops **ops,
				    void **backend)
{
	(void)fd;
	(void)depth;
	(void)ops;
	(void)backend;
	return -EOPNOTSUPP;
}

#endif
