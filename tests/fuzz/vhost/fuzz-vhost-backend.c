/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: a hostile vhost-user frontend against the backend's
 * message handling (vhost_user_backend_dispatch()).
 *
 * The input is a sequence of messages, each:
 *   12-byte header (request, flags, size), then one byte choosing the
 *   descriptors that come with it (bits 0-1: how many, 0..3; bits 2..4:
 *   for each, a 1 MiB memfd or an eventfd), then min(size, what is left)
 *   payload bytes.
 * After each message the backend's replies are drained and queue 0 is
 * kicked, so a table and rings the input set up are walked by the queue
 * (the memfds are zero: the rings are empty unless a message broke them).
 */
#include <cvmm/vhost/user-backend.h>

#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int pool[2] = {-1, -1};

static int process(void *opaque, struct vhost_user_backend *b,
		   unsigned int index, struct virtq *q)
{
	struct virtq_buf bufs[8];
	struct virtq_chain c;
	int n, budget = 64;

	(void)opaque;
	(void)b;
	(void)index;
	virtq_chain_init(&c, bufs, 8);
	while (budget-- > 0 && (n = virtq_pop(q, &c)) == 1) {
		uint8_t tmp[64];

		virtq_chain_read(&c, tmp, sizeof(tmp));
		virtq_chain_write(&c, tmp, sizeof(tmp));
		virtq_complete(q, &c);
	}
	return 0;
}

static int get_config(void *opaque, uint32_t offset, void *buf, uint32_t len)
{
	(void)opaque;
	if (offset > 64 || len > 64 - offset)
		return -22;
	memset(buf, 0x5a, len);
	return 0;
}

static const struct vhost_user_backend_ops ops = {
	.process_queue = process,
	.get_config = get_config,
};

static void drain(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhost_user_backend_config cfg = {
		.num_queues = 2,
		.max_queue_size = 64,
		.features = 1ull << 32,
		.ops = &ops,
	};
	struct vhost_user_backend *b = NULL;
	int sv[2];
	size_t off = 0;
	unsigned int count = 0;

	if (pool[0] < 0) {
		pool[0] = memfd_create("fuzz-vhost", MFD_CLOEXEC);
		if (pool[0] < 0 || ftruncate(pool[0], 1 << 20) < 0)
			return 0;
		pool[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (pool[1] < 0)
			return 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (vhost_user_backend_create(&cfg, &b) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	vhost_user_backend_set_socket(b, sv[0]);

	while (size - off >= VHOST_USER_HDR_SIZE + 1 && count++ < 64) {
		struct vhost_user_msg msg;
		uint8_t sel;
		size_t n;

		memset(&msg, 0, sizeof(msg));
		memcpy(&msg.hdr, data + off, VHOST_USER_HDR_SIZE);
		off += VHOST_USER_HDR_SIZE;
		sel = data[off++];
		n = msg.hdr.size;
		if (n > size - off)
			n = size - off;
		if (n > sizeof(msg.payload))
			n = sizeof(msg.payload);
		memcpy(&msg.payload, data + off, n);
		off += n;
		for (unsigned int i = 0; i < (sel & 3u); i++) {
			int fd = dup(pool[(sel >> (2 + i)) & 1]);

			if (fd >= 0)
				msg.fds[msg.nfds++] = fd;
		}
		vhost_user_backend_dispatch(b, &msg);
		drain(sv[1]);
		if (vhost_user_backend_socket(b) < 0)
			break;
		vhost_user_backend_handle_kick(b, 0);
		vhost_user_backend_handle_kick(b, 1);
	}
	vhost_user_backend_destroy(b);
	close(sv[1]);
	return 0;
}
