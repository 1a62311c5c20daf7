/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Links libvhost alone (with libvirtio-queue and libvm-memory, which it
 * uses) and calls its API: a frontend and a backend over a socketpair,
 * one request answered. */
#include <cvmm/vhost.h>

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct vhost_user_backend_config cfg = {.features = 1ull << 32};
	struct vhost_user_frontend *fe = NULL;
	struct vhost_user_backend *b = NULL;
	uint64_t f = 0;
	int sv[2], err;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	err = vhost_user_backend_create(&cfg, &b);
	if (!err)
		err = vhost_user_backend_set_socket(b, sv[0]);
	if (!err)
		err = vhost_user_frontend_create(sv[1], NULL, &fe);
	/* The request is written before the backend reads it: the socket
	 * buffers it, so one thread does both sides. */
	if (!err) {
		struct vhost_user_msg m;

		vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, 0, 0);
		err = vhost_user_msg_send(sv[1], &m);
		if (!err)
			err = vhost_user_backend_handle_message(b);
		if (!err)
			err = vhost_user_msg_recv(sv[1], &m);
		if (!err)
			f = m.payload.u64;
	}
	/* The kernel API: no vhost device here, /dev/null says so. */
	if (!err) {
		struct vhost_kernel *vk = NULL;

		err = vhost_kernel_open("/dev/null", NULL, &vk);
		if (!err && vhost_kernel_set_owner(vk) != -ENOTTY)
			err = -1;
		vhost_kernel_destroy(vk);
	}
	vhost_user_frontend_destroy(fe);
	vhost_user_backend_destroy(b);
	if (err || !(f & (1ull << 32)) ||
	    !(f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))) {
		fprintf(stderr, "link-vhost: failed (%d, %#llx)\n", err,
			(unsigned long long)f);
		return 1;
	}
	return 0;
}
