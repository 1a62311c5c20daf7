/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* vhost-user backend: message handling, memory table, queues. */
#include <cvmm/vhost/user-backend.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct bqueue {
	struct virtq *q;
	int kick, call, err;
	bool started, enabled, addr_set, err_signalled;
	uint32_t num; /* 0: not set (max size) */
	uint16_t base;
	struct vhost_user_vring_addr addr;
};

struct bregion {
	struct vhost_user_mem_region info;
	struct guest_region *r;
};

struct vhost_user_backend {
	unsigned int nq;
	uint32_t max_queue_size;
	unsigned int msg_timeout_ms;
	uint64_t offered_features, offered_pf;
	const struct vhost_user_backend_ops *ops;
	void *opaque;

	int sock;
	uint64_t features, pf;
	struct guest_memory *mem;
	struct bregion regions[VHOST_USER_BACKEND_MAX_SLOTS];
	unsigned int nregions;
	struct bqueue *queues;
};

#define F_PROTOCOL (1ull << VHOST_USER_F_PROTOCOL_FEATURES)

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static struct vhost_user_backend_ops no_ops;

int vhost_user_backend_create(const struct vhost_user_backend_config *cfg,
			      struct vhost_user_backend **out)
{
	struct vhost_user_backend_config c = {0};
	struct vhost_user_backend *b;

	if (!out)
		return -EINVAL;
	if (cfg)
		c = *cfg;
	if (!c.num_queues)
		c.num_queues = 1;
	if (!c.max_queue_size)
		c.max_queue_size = 1024;
	if (c.num_queues > VHOST_USER_BACKEND_MAX_QUEUES ||
	    c.max_queue_size > VIRTQ_MAX_SIZE ||
	    (c.max_queue_size & (c.max_queue_size - 1)))
		return -EINVAL;
	if (!c.ops)
		c.ops = &no_ops;
	if (!c.protocol_features) {
		c.protocol_features =
			(1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			(1ull << VHOST_USER_PROTOCOL_F_MQ) |
			(1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
			(1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
		if (c.ops->get_config)
			c.protocol_features |= 1ull
					       << VHOST_USER_PROTOCOL_F_CONFIG;
	}
	c.protocol_features &= VHOST_USER_BACKEND_PROTOCOL_FEATURES;
	if (!c.ops->get_config)
		c.protocol_features &= ~(1ull << VHOST_USER_PROTOCOL_F_CONFIG);

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->queues = calloc(c.num_queues, sizeof(*b->queues));
	if (!b->queues) {
		free(b);
		return -ENOMEM;
	}
	b->nq = c.num_queues;
	b->msg_timeout_ms = c.message_timeout_ms ? c.message_timeout_ms : 5000;
	b->max_queue_size = c.max_queue_size;
	b->offered_features = c.features | F_PROTOCOL;
	b->offered_pf = c.protocol_features;
	b->ops = c.ops;
	b->opaque = c.opaque;
	b->sock = -1;
	for (unsigned int i = 0; i < b->nq; i++) {
		struct bqueue *bq = &b->queues[i];
		int err;

		bq->kick = bq->call = bq->err = -1;
		err = virtq_create(b->max_queue_size, &bq->q);
		if (err) {
			vhost_user_backend_destroy(b);
			return err;
		}
	}
	*out = b;
	return 0;
}

static void queue_stop(struct vhost_user_backend *b, unsigned int i)
{
	struct bqueue *bq = &b->queues[i];
	bool was = bq->started;

	if (bq->started) {
		struct virtq_state st;

		virtq_save(bq->q, &st);
		bq->base = st.next_avail;
	}
	virtq_set_ready(bq->q, false);
	bq->started = false;
	close_fd(&bq->kick);
	if (was && b->ops->queue_state)
		b->ops->queue_state(b->opaque, i, false);
}

/* Back to the state of a new connection (keeps the socket). */
static void reset_state(struct vhost_user_backend *b)
{
	for (unsigned int i = 0; i < b->nq; i++) {
		struct bqueue *bq = &b->queues[i];

		queue_stop(b, i);
		virtq_reset(bq->q);
		virtq_set_memory(bq->q, NULL);
		close_fd(&bq->call);
		close_fd(&bq->err);
		bq->enabled = bq->addr_set = bq->err_signalled = false;
		bq->num = 0;
		bq->base = 0;
	}
	for (unsigned int i = 0; i < b->nregions; i++)
		guest_region_unref(b->regions[i].r);
	b->nregions = 0;
	guest_memory_unref(b->mem);
	b->mem = NULL;
	b->features = 0;
	b->pf = 0;
}

void vhost_user_backend_disconnect(struct vhost_user_backend *b)
{
	if (!b)
		return;
	reset_state(b);
	close_fd(&b->sock);
}

void vhost_user_backend_destroy(struct vhost_user_backend *b)
{
	if (!b)
		return;
	vhost_user_backend_disconnect(b);
	for (unsigned int i = 0; i < b->nq; i++)
		virtq_destroy(b->queues[i].q);
	free(b->queues);
	free(b);
}

int vhost_user_backend_set_socket(struct vhost_user_backend *b, int sock)
{
	if (!b || sock < 0)
		return -EINVAL;
	vhost_user_backend_disconnect(b);
	b->sock = sock;
	vhost_user_set_recv_timeout(sock, b->msg_timeout_ms);
	return 0;
}

int vhost_user_backend_socket(const struct vhost_user_backend *b)
{
	return b ? b->sock : -1;
}

struct virtq *vhost_user_backend_queue(const struct vhost_user_backend *b,
				       unsigned int index)
{
	return b && index < b->nq ? b->queues[index].q : NULL;
}

struct guest_memory *
vhost_user_backend_memory(const struct vhost_user_backend *b)
{
	return b ? b->mem : NULL;
}

uint64_t vhost_user_backend_features(const struct vhost_user_backend *b)
{
	return b ? b->features : 0;
}

uint64_t
vhost_user_backend_protocol_features(const struct vhost_user_backend *b)
{
	return b ? b->pf : 0;
}

bool vhost_user_backend_queue_started(const struct vhost_user_backend *b,
				      unsigned int index)
{
	return b && index < b->nq && b->queues[index].started;
}

bool vhost_user_backend_queue_enabled(const struct vhost_user_backend *b,
				      unsigned int index)
{
	return b && index < b->nq && b->queues[index].enabled;
}

int vhost_user_backend_kick_fd(const struct vhost_user_backend *b,
			       unsigned int index)
{
	if (!b || index >= b->nq || !b->queues[index].started)
		return -1;
	return b->queues[index].kick;
}

/* ------------------------------------------------------------ memory */

/* The guest physical address of the frontend address @va, if a region
 * holds it. */
static int va_to_gpa(const struct vhost_user_backend *b, uint64_t va,
		     guest_addr_t *gpa)
{
	for (unsigned int i = 0; i < b->nregions; i++) {
		const struct vhost_user_mem_region *m = &b->regions[i].info;

		if (va >= m->userspace_addr &&
		    va - m->userspace_addr < m->memory_size) {
			*gpa = m->guest_phys_addr + (va - m->userspace_addr);
			return 0;
		}
	}
	return -EFAULT;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Check one region description against its fd and map it. */
static int map_region(const struct vhost_user_mem_region *m, int fd,
		      struct guest_region **out)
{
	struct guest_region_params p = {0};
	struct stat st;
	uint64_t end;

	if (m->memory_size == 0 ||
	    __builtin_add_overflow(m->guest_phys_addr, m->memory_size, &end) ||
	    __builtin_add_overflow(m->userspace_addr, m->memory_size, &end) ||
	    __builtin_add_overflow(m->mmap_offset, m->memory_size, &end))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Only regular files (memfd, tmpfs, hugetlbfs) have a size that
	 * bounds the mapping: anything else could SIGBUS us later. */
	if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size < end)
		return -EINVAL;
	p.gpa = m->guest_phys_addr;
	p.size = m->memory_size;
	p.backing = GUEST_REGION_FILE;
	p.fd = fd;
	p.file_offset = m->mmap_offset;
	return guest_region_create(&p, out);
}

static int queue_start(struct vhost_user_backend *b, unsigned int i);

/* After the memory table changed: move every started queue to the new
 * table, translating its addresses again; a queue whose rings are no
 * longer in memory stops. */
static void queues_remap(struct vhost_user_backend *b)
{
	for (unsigned int i = 0; i < b->nq; i++) {
		struct bqueue *bq = &b->queues[i];

		if (!bq->started)
			continue;
		/* queue_stop() saves the next avail index in bq->base and
		 * closes the kick fd: keep it across the move. */
		int kick = bq->kick;

		bq->kick = -1;
		queue_stop(b, i);
		bq->kick = kick;
		/* On failure the queue stays stopped: its rings left the
		 * table, the frontend sees no more progress on it. */
		queue_start(b, i);
	}
}

/* Install @n new regions (references taken over) as the whole table. */
static int install_table(struct vhost_user_backend *b, struct bregion *nr,
			 unsigned int n)
{
	struct guest_region *rs[VHOST_USER_BACKEND_MAX_SLOTS];
	struct guest_memory *mem;
	int err;

	for (unsigned int i = 0; i < n; i++) {
		rs[i] = nr[i].r;
		for (unsigned int j = 0; j < i; j++)
			if (ranges_overlap(nr[i].info.userspace_addr,
					   nr[i].info.memory_size,
					   nr[j].info.userspace_addr,
					   nr[j].info.memory_size))
				return -EEXIST;
	}
	err = guest_memory_create(rs, n, &mem);
	if (err)
		return err;
	for (unsigned int i = 0; i < b->nregions; i++)
		guest_region_unref(b->regions[i].r);
	memcpy(b->regions, nr, n * sizeof(*nr));
	b->nregions = n;
	guest_memory_unref(b->mem);
	b->mem = mem;
	/* The memory object holds its own references; ours are kept in
	 * b->regions for the address translation. */
	queues_remap(b);
	return 0;
}

static int set_mem_table(struct vhost_user_backend *b,
			 struct vhost_user_msg *msg)
{
	const struct vhost_user_mem_table *t = &msg->payload.mem;
	struct bregion nr[VHOST_USER_MAX_FDS];
	unsigned int n, made = 0;
	int err = 0;

	if (msg->hdr.size < VHOST_USER_MEM_TABLE_SIZE(0))
		return -EINVAL;
	n = t->nregions;
	if (n > VHOST_USER_MAX_FDS ||
	    msg->hdr.size != VHOST_USER_MEM_TABLE_SIZE(n) || msg->nfds != n)
		return -EINVAL;
	for (; made < n; made++) {
		nr[made].info = t->regions[made];
		err = map_region(&t->regions[made], msg->fds[made],
				 &nr[made].r);
		if (err)
			break;
	}
	if (!err)
		err = install_table(b, nr, n);
	if (err)
		for (unsigned int i = 0; i < made; i++)
			guest_region_unref(nr[i].r);
	return err;
}

static int add_mem_reg(struct vhost_user_backend *b, struct vhost_user_msg *msg)
{
	struct bregion nr[VHOST_USER_BACKEND_MAX_SLOTS];
	const struct vhost_user_mem_region *m = &msg->payload.mem_single.region;
	unsigned int n = b->nregions;
	int err;

	if (msg->hdr.size != sizeof(struct vhost_user_mem_single) ||
	    msg->nfds != 1)
		return -EINVAL;
	if (n >= VHOST_USER_BACKEND_MAX_SLOTS)
		return -ENOSPC;
	memcpy(nr, b->regions, n * sizeof(*nr));
	nr[n].info = *m;
	err = map_region(m, msg->fds[0], &nr[n].r);
	if (err)
		return err;
	/* install_table() drops the old references of b->regions: take
	 * one more for each region carried over. */
	for (unsigned int i = 0; i < n; i++)
		guest_region_ref(nr[i].r);
	err = install_table(b, nr, n + 1);
	if (err)
		for (unsigned int i = 0; i <= n; i++)
			guest_region_unref(nr[i].r);
	return err;
}

static int rem_mem_reg(struct vhost_user_backend *b, struct vhost_user_msg *msg)
{
	struct bregion nr[VHOST_USER_BACKEND_MAX_SLOTS];
	const struct vhost_user_mem_region *m = &msg->payload.mem_single.region;
	unsigned int n = 0;
	bool found = false;
	int err;

	if (msg->hdr.size != sizeof(struct vhost_user_mem_single) ||
	    msg->nfds > 1)
		return -EINVAL;
	for (unsigned int i = 0; i < b->nregions; i++) {
		const struct vhost_user_mem_region *o = &b->regions[i].info;

		if (!found && o->guest_phys_addr == m->guest_phys_addr &&
		    o->memory_size == m->memory_size &&
		    o->userspace_addr == m->userspace_addr) {
			found = true;
			continue;
		}
		nr[n] = b->regions[i];
		guest_region_ref(nr[n].r);
		n++;
	}
	if (!found)
		err = -ENOENT;
	else
		err = install_table(b, nr, n);
	if (err)
		for (unsigned int i = 0; i < n; i++)
			guest_region_unref(nr[i].r);
	return err;
}

/* ------------------------------------------------------------ queues */

static int queue_start(struct vhost_user_backend *b, unsigned int i)
{
	struct bqueue *bq = &b->queues[i];
	struct virtq_state st;
	guest_addr_t desc, avail, used;
	int err;

	if (!b->mem || !bq->addr_set)
		return -EINVAL;
	if (va_to_gpa(b, bq->addr.desc, &desc) ||
	    va_to_gpa(b, bq->addr.avail, &avail) ||
	    va_to_gpa(b, bq->addr.used, &used))
		return -EFAULT;
	err = virtq_set_memory(bq->q, b->mem);
	if (err)
		return err;
	memset(&st, 0, sizeof(st));
	st.version = VIRTQ_STATE_VERSION;
	st.max_size = b->max_queue_size;
	st.size = bq->num ? bq->num : b->max_queue_size;
	st.ready = 1;
	st.desc_addr = desc;
	st.avail_addr = avail;
	st.used_addr = used;
	st.features = b->features & VIRTQ_RING_FEATURES;
	st.next_avail = bq->base;
	st.next_used = bq->base;
	st.signalled_used = bq->base;
	err = virtq_restore(bq->q, &st);
	if (err)
		return err;
	bq->started = true;
	bq->err_signalled = false;
	if (b->ops->queue_state)
		b->ops->queue_state(b->opaque, i, true);
	return 0;
}

static int vring_index(const struct vhost_user_backend *b, uint32_t index)
{
	return index < b->nq ? (int)index : -EINVAL;
}

/* SET_VRING_KICK / CALL / ERR: the u64 payload names the queue and says
 * whether an fd comes with it. */
static int vring_fd(struct vhost_user_backend *b, struct vhost_user_msg *msg)
{
	uint64_t v = msg->payload.u64;
	unsigned int want;
	struct bqueue *bq;
	int idx, *slot, fd;

	if (msg->hdr.size != sizeof(uint64_t))
		return -EINVAL;
	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD))
		return -EINVAL;
	idx = vring_index(b, (uint32_t)(v & VHOST_USER_VRING_IDX_MASK));
	if (idx < 0)
		return idx;
	want = (v & VHOST_USER_VRING_NOFD) ? 0 : 1;
	if (msg->nfds != want)
		return -EINVAL;
	bq = &b->queues[idx];
	fd = want ? msg->fds[0] : -1;
	msg->nfds = 0; /* taken */
	switch (msg->hdr.request) {
	case VHOST_USER_SET_VRING_KICK:
		if (bq->started)
			queue_stop(b, (unsigned int)idx);
		slot = &bq->kick;
		break;
	case VHOST_USER_SET_VRING_CALL:
		slot = &bq->call;
		break;
	default:
		slot = &bq->err;
		break;
	}
	close_fd(slot);
	*slot = fd;
	if (msg->hdr.request != VHOST_USER_SET_VRING_KICK)
		return 0;
	if (!(b->features & F_PROTOCOL))
		bq->enabled = true;
	return queue_start(b, (unsigned int)idx);
}

static int vring_state(struct vhost_user_backend *b, struct vhost_user_msg *msg)
{
	const struct vhost_user_vring_state *s = &msg->payload.state;
	struct bqueue *bq;
	int idx;

	if (msg->hdr.size != sizeof(*s))
		return -EINVAL;
	idx = vring_index(b, s->index);
	if (idx < 0)
		return idx;
	bq = &b->queues[idx];
	switch (msg->hdr.request) {
	case VHOST_USER_SET_VRING_NUM:
		if (bq->started)
			return -EBUSY;
		if (s->num == 0 || s->num > b->max_queue_size ||
		    (s->num & (s->num - 1)))
			return -EINVAL;
		bq->num = s->num;
		return 0;
	case VHOST_USER_SET_VRING_BASE:
		if (bq->started)
			return -EBUSY;
		if (s->num > 0xffff)
			return -EINVAL;
		bq->base = (uint16_t)s->num;
		return 0;
	default: /* SET_VRING_ENABLE */
		if (s->num > 1)
			return -EINVAL;
		bq->enabled = s->num == 1;
		return 0;
	}
}

static int vring_addr(struct vhost_user_backend *b, struct vhost_user_msg *msg)
{
	const struct vhost_user_vring_addr *a = &msg->payload.addr;
	struct bqueue *bq;
	int idx;

	if (msg->hdr.size != sizeof(*a))
		return -EINVAL;
	idx = vring_index(b, a->index);
	if (idx < 0)
		return idx;
	if (a->flags) /* used-ring logging is not offered */
		return -ENOTSUP;
	bq = &b->queues[idx];
	if (bq->started)
		return -EBUSY;
	bq->addr = *a;
	bq->addr_set = true;
	return 0;
}

/* ------------------------------------------------------------ dispatch */

static int send_reply(struct vhost_user_backend *b,
		      const struct vhost_user_msg *req,
		      struct vhost_user_msg *reply)
{
	int err;

	if (b->sock < 0)
		return 0;
	reply->hdr.request = req->hdr.request;
	reply->hdr.flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY;
	err = vhost_user_msg_send(b->sock, reply);
	return err;
}

static int reply_u64(struct vhost_user_backend *b,
		     const struct vhost_user_msg *req, uint64_t v)
{
	struct vhost_user_msg r;

	vhost_user_msg_init(&r, 0, 0, sizeof(uint64_t));
	r.payload.u64 = v;
	return send_reply(b, req, &r);
}

/* Requests whose reply is part of the request itself. */
static bool has_reply(uint32_t request)
{
	switch (request) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_GET_MAX_MEM_SLOTS:
	case VHOST_USER_GET_INFLIGHT_FD:
		return true;
	default:
		return false;
	}
}

static int get_config(struct vhost_user_backend *b,
		      const struct vhost_user_msg *msg,
		      struct vhost_user_msg *reply)
{
	const struct vhost_user_config *c = &msg->payload.config;
	uint32_t end;
	int err;

	if (!(b->pf & (1ull << VHOST_USER_PROTOCOL_F_CONFIG)))
		return -ENOTSUP;
	if (msg->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size == 0 ||
	    c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    msg->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size ||
	    __builtin_add_overflow(c->offset, c->size, &end))
		return -EINVAL;
	reply->payload.config.offset = c->offset;
	reply->payload.config.size = c->size;
	reply->payload.config.flags = c->flags;
	err = b->ops->get_config(b->opaque, c->offset,
				 reply->payload.config.data, c->size);
	if (err < 0)
		return err;
	reply->hdr.size = msg->hdr.size;
	return 0;
}

static int set_config(struct vhost_user_backend *b,
		      const struct vhost_user_msg *msg)
{
	const struct vhost_user_config *c = &msg->payload.config;
	uint32_t end;

	if (!(b->pf & (1ull << VHOST_USER_PROTOCOL_F_CONFIG)))
		return -ENOTSUP;
	if (msg->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size == 0 ||
	    c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    msg->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size ||
	    __builtin_add_overflow(c->offset, c->size, &end))
		return -EINVAL;
	if (!b->ops->set_config)
		return -ENOTSUP;
	return b->ops->set_config(b->opaque, c->offset, c->data, c->size);
}

static int handle(struct vhost_user_backend *b, struct vhost_user_msg *msg,
		  struct vhost_user_msg *reply)
{
	uint32_t req = msg->hdr.request;
	int idx;

	/* Descriptors are accepted only where the request has them. */
	switch (req) {
	case VHOST_USER_SET_MEM_TABLE:
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		break;
	default:
		if (msg->nfds)
			return -EINVAL;
	}
	/* Requests without a payload. */
	switch (req) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_RESET_DEVICE:
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		if (msg->hdr.size != 0)
			return -EINVAL;
		break;
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (msg->hdr.size != sizeof(uint64_t))
			return -EINVAL;
		break;
	default:
		break;
	}

	switch (req) {
	case VHOST_USER_GET_FEATURES:
		reply->payload.u64 = b->offered_features;
		reply->hdr.size = sizeof(uint64_t);
		return 0;
	case VHOST_USER_SET_FEATURES:
		if (msg->payload.u64 & ~b->offered_features)
			return -EINVAL;
		b->features = msg->payload.u64;
		if (b->ops->features_set)
			b->ops->features_set(b->opaque, b->features);
		return 0;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		reply->payload.u64 = b->offered_pf;
		reply->hdr.size = sizeof(uint64_t);
		return 0;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (msg->payload.u64 & ~b->offered_pf)
			return -EINVAL;
		b->pf = msg->payload.u64;
		return 0;
	case VHOST_USER_SET_OWNER:
		return 0;
	case VHOST_USER_RESET_DEVICE:
	case VHOST_USER_RESET_OWNER: {
		uint64_t pf = b->pf;

		if (req == VHOST_USER_RESET_DEVICE &&
		    !(pf & (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE)))
			return -ENOTSUP;
		reset_state(b);
		b->pf = pf;
		return 0;
	}
	case VHOST_USER_GET_QUEUE_NUM:
		reply->payload.u64 = b->nq;
		reply->hdr.size = sizeof(uint64_t);
		return 0;
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		if (!(b->pf &
		      (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
			return -ENOTSUP;
		reply->payload.u64 = VHOST_USER_BACKEND_MAX_SLOTS;
		reply->hdr.size = sizeof(uint64_t);
		return 0;
	case VHOST_USER_SET_MEM_TABLE:
		return set_mem_table(b, msg);
	case VHOST_USER_ADD_MEM_REG:
		if (!(b->pf &
		      (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
			return -ENOTSUP;
		return add_mem_reg(b, msg);
	case VHOST_USER_REM_MEM_REG:
		if (!(b->pf &
		      (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
			return -ENOTSUP;
		return rem_mem_reg(b, msg);
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		return vring_state(b, msg);
	case VHOST_USER_SET_VRING_ADDR:
		return vring_addr(b, msg);
	case VHOST_USER_GET_VRING_BASE:
		if (msg->hdr.size != sizeof(struct vhost_user_vring_state))
			return -EINVAL;
		idx = vring_index(b, msg->payload.state.index);
		if (idx < 0)
			return idx;
		queue_stop(b, (unsigned int)idx);
		reply->payload.state.index = (uint32_t)idx;
		reply->payload.state.num = b->queues[idx].base;
		reply->hdr.size = sizeof(struct vhost_user_vring_state);
		return 0;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return vring_fd(b, msg);
	case VHOST_USER_GET_CONFIG:
		return get_config(b, msg, reply);
	case VHOST_USER_SET_CONFIG:
		return set_config(b, msg);
	default:
		return -ENOTSUP;
	}
}

int vhost_user_backend_dispatch(struct vhost_user_backend *b,
				struct vhost_user_msg *msg)
{
	struct vhost_user_msg reply;
	uint32_t req;
	int err, serr = 0;

	if (!b || !msg) {
		vhost_user_msg_close_fds(msg);
		return -EINVAL;
	}
	if (msg->nfds > VHOST_USER_MAX_FDS)
		msg->nfds = VHOST_USER_MAX_FDS;
	req = msg->hdr.request;
	vhost_user_msg_init(&reply, 0, 0, 0);
	if ((msg->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (msg->hdr.flags & VHOST_USER_FLAG_REPLY) ||
	    msg->hdr.size > VHOST_USER_MAX_PAYLOAD)
		err = -EPROTO;
	else
		err = handle(b, msg, &reply);
	/* Whatever was not taken is closed: mapped regions hold their own
	 * duplicates. */
	vhost_user_msg_close_fds(msg);

	if (err == -EPROTO)
		return err;
	if (has_reply(req)) {
		/* A failed request with a reply still gets one, empty, so
		 * that the frontend is not left waiting. */
		if (err)
			reply.hdr.size = 0;
		serr = send_reply(b, msg, &reply);
	} else if ((msg->hdr.flags & VHOST_USER_FLAG_NEED_REPLY) &&
		   (b->pf & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK))) {
		serr = reply_u64(b, msg, err ? 1 : 0);
	}
	if (serr && b->sock >= 0) {
		vhost_user_backend_disconnect(b);
		return -ECONNRESET;
	}
	return err;
}

int vhost_user_backend_handle_message(struct vhost_user_backend *b)
{
	struct vhost_user_msg msg;
	int err;

	if (!b)
		return -EINVAL;
	if (b->sock < 0)
		return -ENOTCONN;
	err = vhost_user_msg_recv(b->sock, &msg);
	if (err) {
		vhost_user_backend_disconnect(b);
		return err;
	}
	err = vhost_user_backend_dispatch(b, &msg);
	if (err == -EPROTO && b->sock >= 0)
		vhost_user_backend_disconnect(b);
	return err;
}

/* ------------------------------------------------------------ kicks */

static void signal_fd(int fd)
{
	if (fd >= 0) {
		ssize_t n;

		do
			n = eventfd_write(fd, 1);
		while (n < 0 && errno == EINTR);
	}
}

int vhost_user_backend_notify(struct vhost_user_backend *b, unsigned int index)
{
	struct bqueue *bq;

	if (!b || index >= b->nq)
		return -EINVAL;
	bq = &b->queues[index];
	if (virtq_is_broken(bq->q) && !bq->err_signalled) {
		bq->err_signalled = true;
		signal_fd(bq->err);
	}
	if (!bq->started || !virtq_needs_interrupt(bq->q))
		return 0;
	signal_fd(bq->call);
	return 1;
}

int vhost_user_backend_handle_kick(struct vhost_user_backend *b,
				   unsigned int index)
{
	struct bqueue *bq;
	int err = 0;

	if (!b || index >= b->nq)
		return -EINVAL;
	bq = &b->queues[index];
	if (bq->kick >= 0) {
		struct pollfd p = {.fd = bq->kick, .events = POLLIN};
		uint64_t v;

		if (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
			if (read(bq->kick, &v, sizeof(v)) < 0)
				err = 0; /* nothing to consume after all */
	}
	if (bq->started && bq->enabled && b->ops->process_queue)
		err = b->ops->process_queue(b->opaque, b, index, bq->q);
	vhost_user_backend_notify(b, index);
	return err < 0 ? err : 0;
}

int vhost_user_backend_run(struct vhost_user_backend *b)
{
	struct pollfd *p;
	unsigned int *qi;
	int ret = 0;

	if (!b)
		return -EINVAL;
	if (b->sock < 0)
		return -ENOTCONN;
	p = calloc(b->nq + 1, sizeof(*p));
	qi = calloc(b->nq + 1, sizeof(*qi));
	if (!p || !qi) {
		free(p);
		free(qi);
		return -ENOMEM;
	}
	while (b->sock >= 0) {
		unsigned int n = 1;
		int r;

		p[0].fd = b->sock;
		p[0].events = POLLIN;
		p[0].revents = 0;
		for (unsigned int i = 0; i < b->nq; i++) {
			if (!b->queues[i].started || b->queues[i].kick < 0)
				continue;
			p[n].fd = b->queues[i].kick;
			p[n].events = POLLIN;
			p[n].revents = 0;
			qi[n++] = i;
		}
		r = poll(p, n, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (unsigned int k = 1; k < n; k++)
			if (p[k].revents)
				vhost_user_backend_handle_kick(b, qi[k]);
		if (p[0].revents) {
			r = vhost_user_backend_handle_message(b);
			if (b->sock < 0 && r != -ECONNRESET)
				ret = r;
		}
	}
	free(p);
	free(qi);
	return ret;
}
