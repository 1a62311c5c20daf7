/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* vhost-user frontend: the VMM side. */
#include <cvmm/vhost/user-frontend.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct vhost_user_frontend {
	int sock;
	bool broken;
	unsigned int timeout_ms;
	uint64_t protocol_features;
	vhost_user_frontend_disconnect_fn disconnected;
	void *opaque;
	struct guest_memory *mem;
};

int vhost_user_frontend_create(int sock,
			       const struct vhost_user_frontend_config *cfg,
			       struct vhost_user_frontend **out)
{
	struct vhost_user_frontend *fe;

	if (sock < 0 || !out)
		return -EINVAL;
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->sock = sock;
	fe->timeout_ms = 5000;
	if (cfg) {
		if (cfg->reply_timeout_ms)
			fe->timeout_ms = cfg->reply_timeout_ms;
		fe->disconnected = cfg->disconnected;
		fe->opaque = cfg->opaque;
	}
	/* A reply that stops half way fails after the reply timeout too. */
	vhost_user_set_recv_timeout(sock, fe->timeout_ms);
	*out = fe;
	return 0;
}

int vhost_user_frontend_connect(const char *path,
				const struct vhost_user_frontend_config *cfg,
				struct vhost_user_frontend **out)
{
	int sock, err;

	if (!path || !out)
		return -EINVAL;
	sock = vhost_user_connect(path);
	if (sock < 0)
		return sock;
	err = vhost_user_frontend_create(sock, cfg, out);
	if (err)
		close(sock);
	return err;
}

void vhost_user_frontend_destroy(struct vhost_user_frontend *fe)
{
	if (!fe)
		return;
	close(fe->sock);
	guest_memory_unref(fe->mem);
	free(fe);
}

int vhost_user_frontend_socket(const struct vhost_user_frontend *fe)
{
	return fe ? fe->sock : -1;
}

bool vhost_user_frontend_is_broken(const struct vhost_user_frontend *fe)
{
	return !fe || fe->broken;
}

uint64_t
vhost_user_frontend_protocol_features(const struct vhost_user_frontend *fe)
{
	return fe ? fe->protocol_features : 0;
}

static int fe_break(struct vhost_user_frontend *fe, int err)
{
	if (!fe->broken) {
		fe->broken = true;
		shutdown(fe->sock, SHUT_RDWR);
		if (fe->disconnected)
			fe->disconnected(fe, err, fe->opaque);
	}
	return err;
}

int vhost_user_frontend_check(struct vhost_user_frontend *fe)
{
	struct pollfd p;

	if (!fe)
		return -EINVAL;
	if (fe->broken)
		return -ECONNRESET;
	p.fd = fe->sock;
	p.events = POLLIN;
	p.revents = 0;
	if (poll(&p, 1, 0) > 0 && p.revents)
		/* Between requests the backend has nothing to say: data
		 * or hang-up both mean the connection is unusable. */
		return fe_break(fe, -ECONNRESET);
	return 0;
}

static bool has_pf(const struct vhost_user_frontend *fe, unsigned int bit)
{
	return fe->protocol_features & (1ull << bit);
}

/* Wait for and read the reply to @request into @reply. */
static int fe_recv_reply(struct vhost_user_frontend *fe, uint32_t request,
			 struct vhost_user_msg *reply)
{
	struct pollfd p = {.fd = fe->sock, .events = POLLIN};
	int n, err;

	do
		n = poll(&p, 1, (int)fe->timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return fe_break(fe, -ETIMEDOUT);
	if (n < 0)
		return fe_break(fe, -errno);
	err = vhost_user_msg_recv(fe->sock, reply);
	if (err)
		return fe_break(fe, err == -ECONNRESET || err == -ETIMEDOUT
					    ? err
					    : -EPROTO);
	if (reply->nfds) {
		/* Only GET_INFLIGHT_FD's reply carries an fd. */
		if (request != VHOST_USER_GET_INFLIGHT_FD || reply->nfds != 1) {
			vhost_user_msg_close_fds(reply);
			return fe_break(fe, -EPROTO);
		}
	}
	if (reply->hdr.request != request ||
	    !(reply->hdr.flags & VHOST_USER_FLAG_REPLY)) {
		vhost_user_msg_close_fds(reply);
		return fe_break(fe, -EPROTO);
	}
	return 0;
}

/*
 * Send @msg; if @reply is given the request has a reply of @reply_size
 * bytes (0: any size up to the maximum, checked by the caller), else an
 * ack is asked for when REPLY_ACK is in use.
 */
static int fe_request(struct vhost_user_frontend *fe,
		      struct vhost_user_msg *msg, struct vhost_user_msg *reply,
		      uint32_t reply_size)
{
	struct vhost_user_msg ack;
	bool want_ack = !reply && has_pf(fe, VHOST_USER_PROTOCOL_F_REPLY_ACK);
	int err;

	if (fe->broken)
		return -ECONNRESET;
	if (want_ack)
		msg->hdr.flags |= VHOST_USER_FLAG_NEED_REPLY;
	err = vhost_user_msg_send(fe->sock, msg);
	if (err)
		return fe_break(fe, err == -EINVAL ? -EPROTO : -ECONNRESET);
	if (reply) {
		err = fe_recv_reply(fe, msg->hdr.request, reply);
		if (err)
			return err;
		/* An empty reply is the backend refusing the request. */
		if (reply_size && reply->hdr.size == 0)
			return -EIO;
		if (reply_size && reply->hdr.size != reply_size) {
			vhost_user_msg_close_fds(reply);
			return fe_break(fe, -EPROTO);
		}
		return 0;
	}
	if (!want_ack)
		return 0;
	err = fe_recv_reply(fe, msg->hdr.request, &ack);
	if (err)
		return err;
	if (ack.hdr.size != sizeof(uint64_t))
		return fe_break(fe, -EPROTO);
	return ack.payload.u64 ? -EIO : 0;
}

static int fe_get_u64(struct vhost_user_frontend *fe, uint32_t request,
		      uint64_t *val)
{
	struct vhost_user_msg msg, reply;
	int err;

	if (!fe || !val)
		return -EINVAL;
	vhost_user_msg_init(&msg, request, 0, 0);
	err = fe_request(fe, &msg, &reply, sizeof(uint64_t));
	if (!err)
		*val = reply.payload.u64;
	return err;
}

static int fe_set_u64(struct vhost_user_frontend *fe, uint32_t request,
		      uint64_t val)
{
	struct vhost_user_msg msg;

	if (!fe)
		return -EINVAL;
	vhost_user_msg_init(&msg, request, 0, sizeof(uint64_t));
	msg.payload.u64 = val;
	return fe_request(fe, &msg, NULL, 0);
}

int vhost_user_frontend_get_features(struct vhost_user_frontend *fe,
				     uint64_t *features)
{
	return fe_get_u64(fe, VHOST_USER_GET_FEATURES, features);
}

int vhost_user_frontend_set_features(struct vhost_user_frontend *fe,
				     uint64_t features)
{
	return fe_set_u64(fe, VHOST_USER_SET_FEATURES, features);
}

int vhost_user_frontend_get_protocol_features(struct vhost_user_frontend *fe,
					      uint64_t *features)
{
	return fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, features);
}

int vhost_user_frontend_set_protocol_features(struct vhost_user_frontend *fe,
					      uint64_t features)
{
	int err;

	if (!fe)
		return -EINVAL;
	if (features & ~(uint64_t)VHOST_USER_FRONTEND_PROTOCOL_FEATURES)
		return -ENOTSUP;
	err = fe_set_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, features);
	if (!err)
		fe->protocol_features = features;
	return err;
}

int vhost_user_frontend_set_owner(struct vhost_user_frontend *fe)
{
	struct vhost_user_msg msg;

	if (!fe)
		return -EINVAL;
	vhost_user_msg_init(&msg, VHOST_USER_SET_OWNER, 0, 0);
	return fe_request(fe, &msg, NULL, 0);
}

int vhost_user_frontend_reset(struct vhost_user_frontend *fe)
{
	struct vhost_user_msg msg;

	if (!fe)
		return -EINVAL;
	vhost_user_msg_init(&msg,
			    has_pf(fe, VHOST_USER_PROTOCOL_F_RESET_DEVICE)
				    ? VHOST_USER_RESET_DEVICE
				    : VHOST_USER_RESET_OWNER,
			    0, 0);
	return fe_request(fe, &msg, NULL, 0);
}

int vhost_user_frontend_get_queue_num(struct vhost_user_frontend *fe,
				      uint64_t *num)
{
	if (fe && !has_pf(fe, VHOST_USER_PROTOCOL_F_MQ))
		return -ENOTSUP;
	return fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM, num);
}

int vhost_user_frontend_get_max_mem_slots(struct vhost_user_frontend *fe,
					  uint64_t *slots)
{
	if (fe && !has_pf(fe, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return -ENOTSUP;
	return fe_get_u64(fe, VHOST_USER_GET_MAX_MEM_SLOTS, slots);
}

static int fill_region(const struct guest_region *r,
		       struct vhost_user_mem_region *out, int *fd)
{
	uint64_t off = 0;

	*fd = guest_region_fd(r, &off);
	if (*fd < 0)
		return -EINVAL;
	out->guest_phys_addr = guest_region_gpa(r);
	out->memory_size = guest_region_size(r);
	out->userspace_addr = (uint64_t)(uintptr_t)guest_region_host_addr(r);
	out->mmap_offset = off;
	return 0;
}

static void fe_keep_mem(struct vhost_user_frontend *fe,
			struct guest_memory *mem)
{
	struct guest_memory *old = fe->mem;

	fe->mem = mem ? guest_memory_ref(mem) : NULL;
	guest_memory_unref(old);
}

int vhost_user_frontend_set_mem_table(struct vhost_user_frontend *fe,
				      struct guest_memory *mem)
{
	struct vhost_user_msg msg;
	size_t n;
	int err;

	if (!fe || !mem)
		return -EINVAL;
	n = guest_memory_num_regions(mem);
	if (n > VHOST_USER_MAX_FDS)
		return -E2BIG;
	vhost_user_msg_init(&msg, VHOST_USER_SET_MEM_TABLE, 0,
			    VHOST_USER_MEM_TABLE_SIZE((uint32_t)n));
	msg.payload.mem.nregions = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		err = fill_region(guest_memory_region_at(mem, i),
				  &msg.payload.mem.regions[i], &msg.fds[i]);
		if (err)
			return err;
	}
	msg.nfds = (unsigned int)n;
	err = fe_request(fe, &msg, NULL, 0);
	if (!err)
		fe_keep_mem(fe, mem);
	return err;
}

int vhost_user_frontend_add_mem_region(struct vhost_user_frontend *fe,
				       struct guest_memory *mem,
				       guest_addr_t gpa)
{
	struct vhost_user_msg msg;
	struct guest_region *r;
	int err;

	if (!fe || !mem)
		return -EINVAL;
	if (!has_pf(fe, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return -ENOTSUP;
	r = guest_memory_find_region(mem, gpa);
	if (!r)
		return -EINVAL;
	vhost_user_msg_init(&msg, VHOST_USER_ADD_MEM_REG, 0,
			    sizeof(struct vhost_user_mem_single));
	err = fill_region(r, &msg.payload.mem_single.region, &msg.fds[0]);
	if (err)
		return err;
	msg.nfds = 1;
	err = fe_request(fe, &msg, NULL, 0);
	if (!err)
		fe_keep_mem(fe, mem);
	return err;
}

int vhost_user_frontend_remove_mem_region(struct vhost_user_frontend *fe,
					  struct guest_memory *mem,
					  const struct guest_region *r)
{
	struct vhost_user_msg msg;
	int fd, err;

	if (!fe || !mem || !r)
		return -EINVAL;
	if (!has_pf(fe, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return -ENOTSUP;
	vhost_user_msg_init(&msg, VHOST_USER_REM_MEM_REG, 0,
			    sizeof(struct vhost_user_mem_single));
	err = fill_region(r, &msg.payload.mem_single.region, &fd);
	if (err)
		return err;
	err = fe_request(fe, &msg, NULL, 0);
	if (!err)
		fe_keep_mem(fe, mem);
	return err;
}

static int fe_vring_state(struct vhost_user_frontend *fe, uint32_t request,
			  unsigned int index, unsigned int num)
{
	struct vhost_user_msg msg;

	if (!fe || index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	vhost_user_msg_init(&msg, request, 0,
			    sizeof(struct vhost_user_vring_state));
	msg.payload.state.index = index;
	msg.payload.state.num = num;
	return fe_request(fe, &msg, NULL, 0);
}

int vhost_user_frontend_set_vring_num(struct vhost_user_frontend *fe,
				      unsigned int index, unsigned int num)
{
	return fe_vring_state(fe, VHOST_USER_SET_VRING_NUM, index, num);
}

int vhost_user_frontend_set_vring_base(struct vhost_user_frontend *fe,
				       unsigned int index, unsigned int base)
{
	return fe_vring_state(fe, VHOST_USER_SET_VRING_BASE, index, base);
}

int vhost_user_frontend_set_vring_enable(struct vhost_user_frontend *fe,
					 unsigned int index, bool enable)
{
	return fe_vring_state(fe, VHOST_USER_SET_VRING_ENABLE, index,
			      enable ? 1 : 0);
}

int vhost_user_frontend_get_vring_base(struct vhost_user_frontend *fe,
				       unsigned int index, unsigned int *base)
{
	struct vhost_user_msg msg, reply;
	int err;

	if (!fe || !base || index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	vhost_user_msg_init(&msg, VHOST_USER_GET_VRING_BASE, 0,
			    sizeof(struct vhost_user_vring_state));
	msg.payload.state.index = index;
	err = fe_request(fe, &msg, &reply,
			 sizeof(struct vhost_user_vring_state));
	if (err)
		return err;
	if (reply.payload.state.index != index)
		return fe_break(fe, -EPROTO);
	*base = reply.payload.state.num;
	return 0;
}

static int fe_translate(const struct vhost_user_frontend *fe, guest_addr_t gpa,
			uint64_t *va)
{
	void *host;

	if (!fe->mem || guest_memory_translate(fe->mem, gpa, 1, &host) < 0)
		return -EINVAL;
	*va = (uint64_t)(uintptr_t)host;
	return 0;
}

int vhost_user_frontend_set_vring_addr(struct vhost_user_frontend *fe,
				       unsigned int index, guest_addr_t desc,
				       guest_addr_t avail, guest_addr_t used)
{
	struct vhost_user_msg msg;
	struct vhost_user_vring_addr *a = &msg.payload.addr;

	if (!fe || index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	vhost_user_msg_init(&msg, VHOST_USER_SET_VRING_ADDR, 0,
			    sizeof(struct vhost_user_vring_addr));
	a->index = index;
	if (fe_translate(fe, desc, &a->desc) ||
	    fe_translate(fe, avail, &a->avail) ||
	    fe_translate(fe, used, &a->used))
		return -EINVAL;
	return fe_request(fe, &msg, NULL, 0);
}

static int fe_vring_fd(struct vhost_user_frontend *fe, uint32_t request,
		       unsigned int index, int fd)
{
	struct vhost_user_msg msg;

	if (!fe || index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	vhost_user_msg_init(&msg, request, 0, sizeof(uint64_t));
	msg.payload.u64 = index;
	if (fd < 0) {
		msg.payload.u64 |= VHOST_USER_VRING_NOFD;
	} else {
		msg.fds[0] = fd;
		msg.nfds = 1;
	}
	return fe_request(fe, &msg, NULL, 0);
}

int vhost_user_frontend_set_vring_kick(struct vhost_user_frontend *fe,
				       unsigned int index, int fd)
{
	return fe_vring_fd(fe, VHOST_USER_SET_VRING_KICK, index, fd);
}

int vhost_user_frontend_set_vring_call(struct vhost_user_frontend *fe,
				       unsigned int index, int fd)
{
	return fe_vring_fd(fe, VHOST_USER_SET_VRING_CALL, index, fd);
}

int vhost_user_frontend_set_vring_err(struct vhost_user_frontend *fe,
				      unsigned int index, int fd)
{
	return fe_vring_fd(fe, VHOST_USER_SET_VRING_ERR, index, fd);
}

int vhost_user_frontend_get_config(struct vhost_user_frontend *fe,
				   uint32_t offset, void *buf, uint32_t len)
{
	struct vhost_user_msg msg, reply;
	int err;

	if (!fe || !buf || len == 0 || len > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	if (!has_pf(fe, VHOST_USER_PROTOCOL_F_CONFIG))
		return -ENOTSUP;
	vhost_user_msg_init(&msg, VHOST_USER_GET_CONFIG, 0,
			    VHOST_USER_CONFIG_HDR_SIZE + len);
	msg.payload.config.offset = offset;
	msg.payload.config.size = len;
	err = fe_request(fe, &msg, &reply, VHOST_USER_CONFIG_HDR_SIZE + len);
	if (err)
		return err;
	if (reply.payload.config.size != len)
		return fe_break(fe, -EPROTO);
	memcpy(buf, reply.payload.config.data, len);
	return 0;
}

int vhost_user_frontend_set_config(struct vhost_user_frontend *fe,
				   uint32_t offset, const void *buf,
				   uint32_t len)
{
	struct vhost_user_msg msg;

	if (!fe || !buf || len == 0 || len > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	if (!has_pf(fe, VHOST_USER_PROTOCOL_F_CONFIG))
		return -ENOTSUP;
	vhost_user_msg_init(&msg, VHOST_USER_SET_CONFIG, 0,
			    VHOST_USER_CONFIG_HDR_SIZE + len);
	msg.payload.config.offset = offset;
	msg.payload.config.size = len;
	memcpy(msg.payload.config.data, buf, len);
	return fe_request(fe, &msg, NULL, 0);
}

int vhost_user_frontend_get_inflight_fd(struct vhost_user_frontend *fe,
					uint16_t num_queues,
					uint16_t queue_size,
					struct vhost_user_inflight *info,
					int *fd)
{
	struct vhost_user_msg msg, reply;
	int err;

	if (!fe || !info || !fd)
		return -EINVAL;
	if (!has_pf(fe, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return -ENOTSUP;
	vhost_user_msg_init(&msg, VHOST_USER_GET_INFLIGHT_FD, 0,
			    sizeof(struct vhost_user_inflight));
	msg.payload.inflight.num_queues = num_queues;
	msg.payload.inflight.queue_size = queue_size;
	err = fe_request(fe, &msg, &reply, sizeof(struct vhost_user_inflight));
	if (err)
		return err;
	if (reply.nfds != 1)
		return fe_break(fe, -EPROTO);
	*info = reply.payload.inflight;
	*fd = reply.fds[0];
	return 0;
}

int vhost_user_frontend_set_inflight_fd(struct vhost_user_frontend *fe,
					const struct vhost_user_inflight *info,
					int fd)
{
	struct vhost_user_msg msg;

	if (!fe || !info || fd < 0)
		return -EINVAL;
	if (!has_pf(fe, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return -ENOTSUP;
	vhost_user_msg_init(&msg, VHOST_USER_SET_INFLIGHT_FD, 0,
			    sizeof(struct vhost_user_inflight));
	msg.payload.inflight = *info;
	msg.fds[0] = fd;
	msg.nfds = 1;
	return fe_request(fe, &msg, NULL, 0);
}
