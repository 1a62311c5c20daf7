/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-user-blk: a vhost-user block device daemon on c-vmm's libraries.
 *
 *   vhost-user-blk --socket PATH --image FILE [--read-only]
 *
 * It listens on PATH and serves one frontend (a VMM such as QEMU or cvmm)
 * at a time, until SIGTERM or SIGINT (which remove PATH): libvhost's backend does the vhost-user side
 * (memory table, rings, kicks and calls), this file parses the virtio-blk
 * requests (virtio 1.2, 5.2.6) off the queue, and libdevices' synchronous
 * blk backend (virtio_blk_backend_sync_create()) does the I/O on FILE with
 * preadv/pwritev straight into the guest buffers.
 *
 * Every request is checked: a header of 16 readable bytes, the status as
 * the last writable byte, data a multiple of 512 bytes, the sector range
 * inside the image without overflow.  A bad request gets an error status;
 * a malformed ring breaks the queue (libvirtio-queue) and the frontend is
 * told through the error eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmm/devices/virtio-blk.h>
#include <cvmm/vhost/user-backend.h>

#define QUEUE_MAX 256u
#define SEG_MAX	  126u /* data buffers per request */
#define ID_BYTES  20u

struct daemon {
	const struct virtio_blk_backend_ops *io_ops;
	void *io;
	uint64_t capacity; /* sectors */
	bool read_only;
	struct virtio_blk_config config;
	struct virtq_buf bufs[QUEUE_MAX];
};

static const char *sock_path;

/* SIGTERM/SIGINT: remove the socket file and go (async-signal-safe). */
static void on_signal(int sig)
{
	(void)sig;
	unlink(sock_path);
	_exit(0);
}

static void io_done(struct virtio_blk_io *io, int64_t result, void *opaque)
{
	int64_t *res = opaque;

	(void)io;
	*res = result;
}

/* One I/O through libdevices' backend; the sync backend completes it
 * inside submit. */
static int64_t do_io(struct daemon *d, uint32_t op, uint64_t offset,
		     uint64_t len, struct iovec *iov, int iovcnt)
{
	struct virtio_blk_io io = {0};
	struct virtio_blk_io_done done;
	int64_t res = -EINPROGRESS;

	virtio_blk_io_done_init(&done, io_done, &res);
	io.op = op;
	io.offset = offset;
	io.len = len;
	io.iov = iov;
	io.iovcnt = iovcnt;
	io.device_data = &done;
	if (d->io_ops->submit(d->io, &io) < 0)
		return -EIO;
	return res;
}

/* Handle one popped chain; returns the used length. */
static uint32_t blk_request(struct daemon *d, struct virtq_chain *c)
{
	struct virtio_blk_outhdr h;
	struct iovec iov[SEG_MAX];
	uint8_t status = VIRTIO_BLK_S_OK;
	uint32_t data_len = 0, used = 0, wr = virtq_chain_writable(c);
	uint64_t off, end;
	int n;

	if (wr == 0)
		return 0; /* nowhere to put a status */
	if (virtq_chain_read_exact(c, &h, sizeof(h)) < 0) {
		status = VIRTIO_BLK_S_IOERR;
		goto out;
	}
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		data_len = h.type == VIRTIO_BLK_T_IN ? wr - 1
						     : virtq_chain_readable(c);
		if (data_len % 512 || h.sector > UINT64_MAX / 512 ||
		    __builtin_add_overflow(h.sector * 512, data_len, &end) ||
		    end > d->capacity * 512 ||
		    (h.type == VIRTIO_BLK_T_OUT && d->read_only)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		off = h.sector * 512;
		if (h.type == VIRTIO_BLK_T_IN)
			n = virtq_chain_writable_iov(c, data_len, iov, SEG_MAX);
		else
			n = virtq_chain_readable_iov(c, data_len, iov, SEG_MAX);
		if (n < 0) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (data_len &&
		    do_io(d,
			  h.type == VIRTIO_BLK_T_IN ? VIRTIO_BLK_IO_READ
						    : VIRTIO_BLK_IO_WRITE,
			  off, data_len, iov, n) != (int64_t)data_len)
			status = VIRTIO_BLK_S_IOERR;
		else if (h.type == VIRTIO_BLK_T_IN)
			used = data_len;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (do_io(d, VIRTIO_BLK_IO_FLUSH, 0, 0, NULL, 0) < 0)
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		static const char id[ID_BYTES] = "cvmm-vhost-user-blk";
		uint32_t len = wr - 1 < ID_BYTES ? wr - 1 : ID_BYTES;

		if (virtq_chain_write(c, id, len) != (ssize_t)len)
			status = VIRTIO_BLK_S_IOERR;
		else
			used = len;
		break;
	}
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
out:
	/* The status is the last writable byte, after whatever data. */
	virtq_chain_skip_write(c, virtq_chain_writable(c) - 1);
	if (virtq_chain_write(c, &status, 1) != 1)
		return used;
	return used + 1;
}

static int process_queue(void *opaque, struct vhost_user_backend *b,
			 unsigned int index, struct virtq *q)
{
	struct daemon *d = opaque;
	struct virtq_chain c;
	unsigned int budget = QUEUE_MAX;
	int n = 0;

	(void)b;
	(void)index;
	virtq_chain_init(&c, d->bufs, QUEUE_MAX);
	while (budget--) {
		n = virtq_pop(q, &c);
		if (n == 0 && virtq_enable_notification(q))
			continue;
		if (n != 1)
			break;
		if (virtq_complete_len(q, &c, blk_request(d, &c)) < 0)
			break;
	}
	return n < 0 ? n : 0;
}

static int get_config(void *opaque, uint32_t offset, void *buf, uint32_t len)
{
	struct daemon *d = opaque;

	if (offset > sizeof(d->config) || len > sizeof(d->config) - offset)
		return -EINVAL;
	memcpy(buf, (const uint8_t *)&d->config + offset, len);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vhost-user-blk --socket PATH --image FILE "
		   "[--read-only]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"image", required_argument, NULL, 'i'},
		{"read-only", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const struct vhost_user_backend_ops ops = {
		.process_queue = process_queue,
		.get_config = get_config,
	};
	struct vhost_user_backend_config cfg = {0};
	struct vhost_user_backend *b = NULL;
	struct sigaction sa = {0};
	const char *sock = NULL, *image = NULL;
	struct daemon d = {0};
	struct stat st;
	int c, fd, lfd, err;

	while ((c = getopt_long(argc, argv, "s:i:rh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'i':
			image = optarg;
			break;
		case 'r':
			d.read_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!sock || !image || optind != argc) {
		usage(stderr);
		return 2;
	}
	fd = open(image, (d.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vhost-user-blk: %s: %s\n", image,
			strerror(errno));
		return 1;
	}
	d.capacity = (uint64_t)st.st_size / 512;
	d.config.capacity = d.capacity;
	d.config.seg_max = SEG_MAX;
	d.config.blk_size = 512;
	err = virtio_blk_backend_sync_create(fd, &d.io_ops, &d.io);
	if (err) {
		fprintf(stderr, "vhost-user-blk: backend: %s\n",
			strerror(-err));
		return 1;
	}
	cfg.num_queues = 1;
	cfg.max_queue_size = QUEUE_MAX;
	cfg.features =
		(1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		(1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
		(d.read_only ? 1ull << VIRTIO_BLK_F_RO : 0);
	cfg.ops = &ops;
	cfg.opaque = &d;
	err = vhost_user_backend_create(&cfg, &b);
	if (err) {
		fprintf(stderr, "vhost-user-blk: %s\n", strerror(-err));
		return 1;
	}
	lfd = vhost_user_listen(sock);
	if (lfd < 0) {
		fprintf(stderr, "vhost-user-blk: %s: %s\n", sock,
			strerror(-lfd));
		return 1;
	}
	sock_path = sock;
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "vhost-user-blk: serving %s (%llu sectors) on %s\n",
		image, (unsigned long long)d.capacity, sock);
	for (;;) {
		int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (conn < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "vhost-user-blk: accept: %s\n",
				strerror(errno));
			break;
		}
		vhost_user_backend_set_socket(b, conn);
		err = vhost_user_backend_run(b);
		if (err)
			fprintf(stderr,
				"vhost-user-blk: connection ended: %s\n",
				strerror(-err));
		vhost_user_backend_disconnect(b);
	}
	vhost_user_backend_destroy(b);
	d.io_ops->destroy(d.io);
	close(fd);
	close(lfd);
	unlink(sock);
	return 0;
}
