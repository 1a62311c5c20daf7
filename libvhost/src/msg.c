/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* vhost-user message framing and SCM_RIGHTS descriptor passing. */
#include <cvmm/vhost/user.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

void vhost_user_msg_init(struct vhost_user_msg *msg, uint32_t request,
			 uint32_t flags, uint32_t size)
{
	memset(msg, 0, sizeof(*msg));
	msg->hdr.request = request;
	msg->hdr.flags = VHOST_USER_VERSION | flags;
	msg->hdr.size = size;
}

void vhost_user_msg_close_fds(struct vhost_user_msg *msg)
{
	if (!msg)
		return;
	for (unsigned int i = 0; i < msg->nfds && i < VHOST_USER_MAX_FDS; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	msg->nfds = 0;
}

int vhost_user_msg_send(int sock, const struct vhost_user_msg *msg)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2];
	struct msghdr mh;
	size_t total, sent = 0;
	bool fds_sent = false;

	if (!msg || msg->hdr.size > VHOST_USER_MAX_PAYLOAD ||
	    msg->nfds > VHOST_USER_MAX_FDS)
		return -EINVAL;
	total = VHOST_USER_HDR_SIZE + msg->hdr.size;
	while (sent < total) {
		const char *hdr = (const char *)&msg->hdr;
		const char *pl = (const char *)&msg->payload;
		int n_iov = 0;
		ssize_t n;

		if (sent < VHOST_USER_HDR_SIZE) {
			iov[n_iov].iov_base = (void *)(hdr + sent);
			iov[n_iov++].iov_len = VHOST_USER_HDR_SIZE - sent;
			if (msg->hdr.size) {
				iov[n_iov].iov_base = (void *)pl;
				iov[n_iov++].iov_len = msg->hdr.size;
			}
		} else {
			size_t off = sent - VHOST_USER_HDR_SIZE;

			iov[n_iov].iov_base = (void *)(pl + off);
			iov[n_iov++].iov_len = msg->hdr.size - off;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n_iov;
		if (msg->nfds && !fds_sent) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * msg->nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * msg->nfds);
			memcpy(CMSG_DATA(c), msg->fds, sizeof(int) * msg->nfds);
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		fds_sent = true;
		sent += (size_t)n;
	}
	return 0;
}

/* Collect the descriptors of one recvmsg into @msg; -EMSGSIZE/-EBADMSG
 * when they do not fit or are not SCM_RIGHTS (whatever arrived is kept
 * in @msg so that the caller closes it). */
static int take_fds(struct msghdr *mh, struct vhost_user_msg *msg)
{
	int err = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			err = -EBADMSG;
			continue;
		}
		if (c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (msg->nfds < VHOST_USER_MAX_FDS)
				msg->fds[msg->nfds++] = fd;
			else {
				close(fd);
				err = -EMSGSIZE;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		err = -EMSGSIZE;
	return err;
}

/* Read exactly @len bytes into @buf; descriptors arriving now are an
 * error (they belong to the first byte of a message). */
static int recv_all(int sock, void *buf, size_t len, struct vhost_user_msg *msg,
		    bool first)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	size_t got = 0;
	int err = 0;

	while (got < len) {
		struct iovec iov = {(char *)buf + got, len - got};
		struct msghdr mh = {0};
		ssize_t n;
		int e;

		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* SO_RCVTIMEO ran out: the peer stopped mid-message. */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -ETIMEDOUT;
			return -errno;
		}
		e = take_fds(&mh, msg);
		if (!e && mh.msg_controllen && !(first && got == 0))
			e = -EBADMSG;
		if (e && !err)
			err = e;
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return err;
}

int vhost_user_msg_recv(int sock, struct vhost_user_msg *msg)
{
	int err;

	if (!msg)
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	err = recv_all(sock, &msg->hdr, VHOST_USER_HDR_SIZE, msg, true);
	if (err)
		goto fail;
	if ((msg->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
		err = -EPROTO;
		goto fail;
	}
	if (msg->hdr.size > VHOST_USER_MAX_PAYLOAD) {
		err = -EMSGSIZE;
		goto fail;
	}
	if (msg->hdr.size) {
		err = recv_all(sock, &msg->payload, msg->hdr.size, msg, false);
		if (err)
			goto fail;
	}
	return 0;
fail:
	vhost_user_msg_close_fds(msg);
	return err;
}

const char *vhost_user_request_name(uint32_t request)
{
	static const char *const names[] = {
		[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
		[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
		[VHOST_USER_SET_OWNER] = "SET_OWNER",
		[VHOST_USER_RESET_OWNER] = "RESET_OWNER",
		[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
		[VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
		[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
		[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
		[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
		[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
		[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
		[VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
		[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
		[VHOST_USER_SEND_RARP] = "SEND_RARP",
		[VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
		[VHOST_USER_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
		[VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
		[VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
		[VHOST_USER_GET_CONFIG] = "GET_CONFIG",
		[VHOST_USER_SET_CONFIG] = "SET_CONFIG",
		[VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
		[VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
		[VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
		[VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
		[VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
		[VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
	};

	if (request < sizeof(names) / sizeof(names[0]) && names[request])
		return names[request];
	return "UNKNOWN";
}

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t len;

	if (!path)
		return -EINVAL;
	len = strlen(path);
	if (len == 0 || len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	return 0;
}

int vhost_user_set_recv_timeout(int sock, unsigned int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
			     .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

int vhost_user_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, err = fill_addr(&sa, path);

	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int vhost_user_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, err = fill_addr(&sa, path);

	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}
