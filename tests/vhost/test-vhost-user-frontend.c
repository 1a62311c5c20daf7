/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost: the vhost-user message layer and the frontend against peers
 * written by hand (a backend that closes, never answers, answers garbage
 * or stops mid-message).  No KVM, no backend library.
 */
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cvmm/vhost/user-frontend.h>

#include "cvmm-check.h"

struct pair {
	int disconnects, disconnect_err;
};

static int make_memfd(uint64_t size)
{
	int fd = memfd_create("vhost-test", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) > 0 && (p.revents & POLLIN);
}

static void on_disconnect(struct vhost_user_frontend *fe, int err, void *opaque)
{
	struct pair *p = opaque;

	(void)fe;
	p->disconnects++;
	p->disconnect_err = err;
}

/* The backend goes away: the frontend reports it once, through the error
 * and the callback, and every later request fails at once. */
START_TEST(test_frontend_backend_disconnect)
{
	struct vhost_user_frontend_config cfg = {.disconnected = on_disconnect};
	struct vhost_user_frontend *fe = NULL;
	struct pair p;
	uint64_t f;
	int sv[2];

	memset(&p, 0, sizeof(p));
	cfg.opaque = &p;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_int_eq(vhost_user_frontend_create(sv[1], &cfg, &fe), 0);
	ck_assert_int_eq(vhost_user_frontend_check(fe), 0);
	close(sv[0]);
	ck_assert_int_eq(vhost_user_frontend_check(fe), -ECONNRESET);
	ck_assert_int_eq(vhost_user_frontend_get_features(fe, &f), -ECONNRESET);
	ck_assert_int_eq(vhost_user_frontend_set_owner(fe), -ECONNRESET);
	ck_assert(vhost_user_frontend_is_broken(fe));
	ck_assert_int_eq(p.disconnects, 1);
	ck_assert_int_eq(p.disconnect_err, -ECONNRESET);
	vhost_user_frontend_destroy(fe);
}
END_TEST

/* A peer that accepts a request and closes while the frontend waits for
 * the reply, one that never answers, and one that answers garbage. */
START_TEST(test_frontend_bad_backends)
{
	struct vhost_user_frontend_config cfg = {.reply_timeout_ms = 100,
						 .disconnected = on_disconnect};
	struct vhost_user_frontend *fe = NULL;
	struct vhost_user_msg m;
	struct pair p;
	uint64_t f;
	int sv[2];

	memset(&p, 0, sizeof(p));
	cfg.opaque = &p;
	/* Never answers. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_int_eq(vhost_user_frontend_create(sv[1], &cfg, &fe), 0);
	ck_assert_int_eq(vhost_user_frontend_get_features(fe, &f), -ETIMEDOUT);
	ck_assert_int_eq(p.disconnects, 1);
	vhost_user_frontend_destroy(fe);
	close(sv[0]);

	/* Answers with the wrong request. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_int_eq(vhost_user_frontend_create(sv[1], &cfg, &fe), 0);
	vhost_user_msg_init(&m, VHOST_USER_GET_QUEUE_NUM, VHOST_USER_FLAG_REPLY,
			    8);
	ck_assert_int_eq(vhost_user_msg_send(sv[0], &m), 0);
	ck_assert_int_eq(vhost_user_frontend_get_features(fe, &f), -EPROTO);
	ck_assert_int_eq(p.disconnects, 2);
	vhost_user_frontend_destroy(fe);
	close(sv[0]);

	/* Answers with half a reply and stays: the reply timeout applies
	 * to the rest of the message too. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_int_eq(vhost_user_frontend_create(sv[1], &cfg, &fe), 0);
	vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, VHOST_USER_FLAG_REPLY,
			    8);
	ck_assert_int_eq(write(sv[0], &m.hdr, VHOST_USER_HDR_SIZE),
			 (ssize_t)VHOST_USER_HDR_SIZE);
	ck_assert_int_eq(vhost_user_frontend_get_features(fe, &f), -ETIMEDOUT);
	ck_assert(vhost_user_frontend_is_broken(fe));
	ck_assert_int_eq(p.disconnects, 3);
	vhost_user_frontend_destroy(fe);
	close(sv[0]);

	/* Answers with a short payload, then closes mid-message. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_int_eq(vhost_user_frontend_create(sv[1], &cfg, &fe), 0);
	vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, VHOST_USER_FLAG_REPLY,
			    8);
	ck_assert_int_eq(write(sv[0], &m.hdr, VHOST_USER_HDR_SIZE),
			 (ssize_t)VHOST_USER_HDR_SIZE);
	ck_assert_int_eq(write(sv[0], &m.payload, 4), 4);
	close(sv[0]);
	ck_assert_int_eq(vhost_user_frontend_get_features(fe, &f), -ECONNRESET);
	ck_assert_int_eq(p.disconnects, 4);
	vhost_user_frontend_destroy(fe);
}
END_TEST

START_TEST(test_frontend_needs_fd_memory)
{
	struct guest_memory_range r = {0, 0x10000};
	struct guest_memory *m = NULL;
	struct vhost_user_frontend *fe = NULL;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_int_eq(vhost_user_frontend_create(sv[1], NULL, &fe), 0);
	ck_assert_int_eq(guest_memory_create_ranges(&r, 1, NULL, &m), 0);
	ck_assert_int_eq(vhost_user_frontend_set_mem_table(fe, m), -EINVAL);
	ck_assert(!readable(sv[0], 0)); /* nothing was sent */
	ck_assert_int_eq(vhost_user_frontend_set_protocol_features(
				 fe, 1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD),
			 -ENOTSUP);
	guest_memory_unref(m);
	vhost_user_frontend_destroy(fe);
	close(sv[0]);
}
END_TEST

/* The message layer on its own: descriptors travel, limits hold. */
START_TEST(test_msg_layer)
{
	struct vhost_user_msg m, got;
	int sv[2], fd;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	fd = make_memfd(0x1000);
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_CALL, 0, 8);
	m.payload.u64 = 3;
	m.fds[0] = fd;
	m.nfds = 1;
	ck_assert_int_eq(vhost_user_msg_send(sv[0], &m), 0);
	ck_assert_int_eq(vhost_user_msg_recv(sv[1], &got), 0);
	ck_assert_uint_eq(got.hdr.request, VHOST_USER_SET_VRING_CALL);
	ck_assert_uint_eq(got.payload.u64, 3);
	ck_assert_uint_eq(got.nfds, 1);
	ck_assert_int_ne(got.fds[0], fd);
	vhost_user_msg_close_fds(&got);
	m.hdr.size = VHOST_USER_MAX_PAYLOAD + 1;
	ck_assert_int_eq(vhost_user_msg_send(sv[0], &m), -EINVAL);
	m.hdr.size = 8;
	m.nfds = VHOST_USER_MAX_FDS + 1;
	ck_assert_int_eq(vhost_user_msg_send(sv[0], &m), -EINVAL);
	ck_assert_str_eq(vhost_user_request_name(VHOST_USER_SET_MEM_TABLE),
			 "SET_MEM_TABLE");
	ck_assert_str_eq(vhost_user_request_name(1000), "UNKNOWN");
	close(sv[1]);
	m.nfds = 0;
	ck_assert_int_lt(vhost_user_msg_send(sv[0], &m), 0); /* EPIPE */
	close(sv[0]);
	close(fd);
	ck_assert_int_eq(vhost_user_listen(""), -ENAMETOOLONG);
	ck_assert_int_lt(vhost_user_connect("/nonexistent/vhost.sock"), 0);
}
END_TEST

static Suite *frontend_suite(void)
{
	Suite *s = suite_create("vhost-user-frontend");
	TCase *tc = tcase_create("frontend");

	tcase_add_test(tc, test_frontend_backend_disconnect);
	tcase_add_test(tc, test_frontend_bad_backends);
	tcase_add_test(tc, test_frontend_needs_fd_memory);
	tcase_add_test(tc, test_msg_layer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(frontend_suite(), false);
}
