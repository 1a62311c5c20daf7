/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost vhost-user: the frontend and the backend against each other over
 * a socketpair (no KVM), and the backend against a hostile peer that writes
 * raw messages: wrong sizes, missing or extra descriptors, regions that
 * overlap or exceed their fd, unknown requests, a peer that closes
 * mid-message.
 */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cvmm/vhost.h>
#include <cvmm/virtio-queue-driver.h>

#include "cvmm-check.h"

#define F_VERSION_1 (1ull << 32)
#define QSIZE	    16u
#define RING_BASE   0x1000u
#define DATA_OUT    0x100000u
#define DATA_IN	    0x100800u

/* ------------------------------------------------------------ helpers */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

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

/* Guest memory of two memfd regions: [0, 256K) and [1M, 1M + 256K). */
static struct guest_memory *make_memory(void)
{
	struct guest_memory_range r[2] = {{0, 0x40000}, {0x100000, 0x40000}};
	struct guest_region_params p = {.backing = GUEST_REGION_MEMFD};
	struct guest_memory *m = NULL;

	ck_assert_int_eq(guest_memory_create_ranges(r, 2, &p, &m), 0);
	return m;
}

/* The device under test: each chain's readable bytes come back in its
 * writable part, each byte plus one. */
static int echo_process(void *opaque, struct vhost_user_backend *b,
			unsigned int index, struct virtq *q)
{
	struct virtq_buf bufs[QSIZE];
	struct virtq_chain c;
	int n;

	(void)opaque;
	(void)b;
	(void)index;
	virtq_chain_init(&c, bufs, QSIZE);
	while ((n = virtq_pop(q, &c)) == 1) {
		uint8_t data[256];
		ssize_t len = virtq_chain_read(&c, data, sizeof(data));

		for (ssize_t i = 0; i < len; i++)
			data[i]++;
		if (len > 0)
			virtq_chain_write(&c, data, (size_t)len);
		virtq_complete(q, &c);
	}
	return n < 0 ? n : 0;
}

static const uint8_t config_space[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static int echo_get_config(void *opaque, uint32_t offset, void *buf,
			   uint32_t len)
{
	(void)opaque;
	if (offset > sizeof(config_space) ||
	    len > sizeof(config_space) - offset)
		return -EINVAL;
	memcpy(buf, config_space + offset, len);
	return 0;
}

static const struct vhost_user_backend_ops echo_ops = {
	.process_queue = echo_process,
	.get_config = echo_get_config,
};

static struct vhost_user_backend *make_backend(unsigned int nq)
{
	struct vhost_user_backend_config cfg = {
		.num_queues = nq,
		.max_queue_size = 256,
		.features = F_VERSION_1,
		.ops = &echo_ops,
	};
	struct vhost_user_backend *b = NULL;

	ck_assert_int_eq(vhost_user_backend_create(&cfg, &b), 0);
	return b;
}

/* ------------------------------------------------- frontend + backend */

struct pair {
	struct vhost_user_backend *b;
	struct vhost_user_frontend *fe;
	pthread_t thread;
	int run_result;
	struct guest_memory *mem;
	struct virtq_driver *drv;
	int kick, call;
	int disconnects, disconnect_err;
};

static void *backend_thread(void *arg)
{
	struct pair *p = arg;

	p->run_result = vhost_user_backend_run(p->b);
	return NULL;
}

static void on_disconnect(struct vhost_user_frontend *fe, int err, void *opaque)
{
	struct pair *p = opaque;

	(void)fe;
	p->disconnects++;
	p->disconnect_err = err;
}

static void pair_open(struct pair *p)
{
	struct vhost_user_frontend_config fcfg = {
		.reply_timeout_ms = 5000,
		.disconnected = on_disconnect,
		.opaque = p,
	};
	int sv[2];

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	p->b = make_backend(2);
	ck_assert_int_eq(vhost_user_backend_set_socket(p->b, sv[0]), 0);
	ck_assert_int_eq(vhost_user_frontend_create(sv[1], &fcfg, &p->fe), 0);
	ck_assert_int_eq(pthread_create(&p->thread, NULL, backend_thread, p),
			 0);
	p->kick = eventfd(0, EFD_CLOEXEC);
	p->call = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(p->kick, 0);
	ck_assert_int_ge(p->call, 0);
}

/* The whole negotiation and queue 0's setup, as a VMM does it. */
static void pair_start(struct pair *p)
{
	guest_addr_t desc, avail, used;
	uint64_t f, pf;

	ck_assert_int_eq(vhost_user_frontend_get_features(p->fe, &f), 0);
	ck_assert(f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	ck_assert(f & F_VERSION_1);
	ck_assert_int_eq(vhost_user_frontend_get_protocol_features(p->fe, &pf),
			 0);
	ck_assert(pf & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	ck_assert(pf & (1ull << VHOST_USER_PROTOCOL_F_CONFIG));
	ck_assert_int_eq(vhost_user_frontend_set_protocol_features(
				 p->fe,
				 pf & VHOST_USER_FRONTEND_PROTOCOL_FEATURES),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_owner(p->fe), 0);
	ck_assert_int_eq(vhost_user_frontend_set_features(p->fe, f), 0);

	p->mem = make_memory();
	ck_assert_int_eq(vhost_user_frontend_set_mem_table(p->fe, p->mem), 0);
	virtq_driver_layout(QSIZE, RING_BASE, &desc, &avail, &used);
	ck_assert_int_eq(virtq_driver_create(p->mem, QSIZE, F_VERSION_1, desc,
					     avail, used, &p->drv),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_num(p->fe, 0, QSIZE), 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_base(p->fe, 0, 0), 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_addr(p->fe, 0, desc,
							    avail, used),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_call(p->fe, 0, p->call),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_kick(p->fe, 0, p->kick),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_enable(p->fe, 0, true),
			 0);
}

static void pair_close(struct pair *p)
{
	vhost_user_frontend_destroy(p->fe);
	ck_assert_int_eq(pthread_join(p->thread, NULL), 0);
	ck_assert_int_eq(p->run_result, 0);
	vhost_user_backend_destroy(p->b);
	virtq_driver_destroy(p->drv);
	guest_memory_unref(p->mem);
	close(p->kick);
	close(p->call);
}

/* One request through the ring: @n bytes out, the same back plus one. */
static void echo_roundtrip(struct pair *p, uint8_t seed, uint32_t n)
{
	struct virtq_driver_buf bufs[2] = {
		{DATA_OUT, n, 0},
		{DATA_IN, n, VRING_DESC_F_WRITE},
	};
	struct vring_used_elem e;
	uint8_t out[256], in[256];
	uint64_t v;

	ck_assert_uint_le(n, sizeof(out));
	for (uint32_t i = 0; i < n; i++)
		out[i] = (uint8_t)(seed + i);
	ck_assert_int_eq(guest_memory_write(p->mem, DATA_OUT, out, n), 0);
	ck_assert_int_eq(guest_memory_fill(p->mem, DATA_IN, 0, n), 0);
	ck_assert_int_eq(virtq_driver_add(p->drv, bufs, 2, NULL), 0);
	ck_assert_int_eq(eventfd_write(p->kick, 1), 0);
	ck_assert_msg(readable(p->call, 5000), "no call from the backend");
	ck_assert_int_eq(eventfd_read(p->call, &v), 0);
	ck_assert_int_eq(virtq_driver_get_used(p->drv, &e), 1);
	ck_assert_uint_eq(e.len, n);
	ck_assert_int_eq(guest_memory_read(p->mem, DATA_IN, in, n), 0);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_uint_eq(in[i], (uint8_t)(out[i] + 1));
}

START_TEST(test_pair_roundtrip)
{
	struct pair p;
	unsigned int base = 0;

	pair_open(&p);
	pair_start(&p);
	for (unsigned int i = 0; i < 40; i++) /* wraps the 16-entry ring */
		echo_roundtrip(&p, (uint8_t)i, 1 + i * 5);
	ck_assert_int_eq(vhost_user_frontend_get_vring_base(p.fe, 0, &base), 0);
	ck_assert_uint_eq(base, 40);
	ck_assert_int_eq(p.disconnects, 0);
	pair_close(&p);
}
END_TEST

/* GET_VRING_BASE stops the ring; SET_VRING_BASE + KICK resume it where it
 * was. */
START_TEST(test_pair_stop_resume)
{
	guest_addr_t desc, avail, used;
	struct pair p;
	unsigned int base = 0;

	pair_open(&p);
	pair_start(&p);
	echo_roundtrip(&p, 1, 10);
	echo_roundtrip(&p, 2, 10);
	ck_assert_int_eq(vhost_user_frontend_get_vring_base(p.fe, 0, &base), 0);
	ck_assert_uint_eq(base, 2);
	virtq_driver_layout(QSIZE, RING_BASE, &desc, &avail, &used);
	ck_assert_int_eq(vhost_user_frontend_set_vring_base(p.fe, 0, base), 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_addr(p.fe, 0, desc,
							    avail, used),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_kick(p.fe, 0, p.kick),
			 0);
	echo_roundtrip(&p, 3, 10);
	pair_close(&p);
}
END_TEST

START_TEST(test_pair_config_and_queues)
{
	struct pair p;
	uint8_t buf[4];
	uint64_t nq = 0, slots = 0;

	pair_open(&p);
	pair_start(&p);
	ck_assert_int_eq(vhost_user_frontend_get_config(p.fe, 2, buf, 4), 0);
	ck_assert_mem_eq(buf, config_space + 2, 4);
	/* The device refuses a read past its config space: an error, not
	 * a disconnection. */
	ck_assert_int_eq(vhost_user_frontend_get_config(p.fe, 6, buf, 4), -EIO);
	ck_assert(!vhost_user_frontend_is_broken(p.fe));
	/* No set_config op: refused, acknowledged as a failure. */
	ck_assert_int_eq(vhost_user_frontend_set_config(p.fe, 0, buf, 4), -EIO);
	ck_assert_int_eq(vhost_user_frontend_get_queue_num(p.fe, &nq), 0);
	ck_assert_uint_eq(nq, 2);
	ck_assert_int_eq(vhost_user_frontend_get_max_mem_slots(p.fe, &slots),
			 0);
	ck_assert_uint_eq(slots, VHOST_USER_BACKEND_MAX_SLOTS);
	/* Refused requests, acknowledged (REPLY_ACK): bad queue index, bad
	 * size, ring outside the table. */
	ck_assert_int_eq(vhost_user_frontend_set_vring_num(p.fe, 5, 16), -EIO);
	ck_assert_int_eq(vhost_user_frontend_set_vring_num(p.fe, 1, 3), -EIO);
	ck_assert_int_eq(vhost_user_frontend_set_vring_addr(p.fe, 1, 0x80000,
							    0x80000, 0x80000),
			 -EINVAL); /* not in the frontend's table: unsent */
	echo_roundtrip(&p, 9, 32);
	ck_assert_int_eq(p.disconnects, 0);
	pair_close(&p);
}
END_TEST

/* Memory hot-plug with CONFIGURE_MEM_SLOTS: a new region, then its
 * removal; the queue keeps working. */
START_TEST(test_pair_add_remove_region)
{
	struct guest_region_params rp = {.gpa = 0x200000,
					 .size = 0x10000,
					 .backing = GUEST_REGION_MEMFD};
	struct guest_memory *m2 = NULL, *m3 = NULL;
	struct guest_region *r = NULL;
	struct pair p;

	pair_open(&p);
	pair_start(&p);
	ck_assert_int_eq(guest_region_create(&rp, &r), 0);
	ck_assert_int_eq(guest_memory_add_region(p.mem, r, &m2), 0);
	ck_assert_int_eq(vhost_user_frontend_add_mem_region(p.fe, m2, 0x200000),
			 0);
	/* Twice is an overlap. */
	ck_assert_int_eq(vhost_user_frontend_add_mem_region(p.fe, m2, 0x200000),
			 -EIO);
	echo_roundtrip(&p, 4, 8);
	ck_assert_int_eq(guest_memory_remove_region(m2, 0x200000, 0x10000, &m3,
						    NULL),
			 0);
	ck_assert_int_eq(vhost_user_frontend_remove_mem_region(p.fe, m3, r), 0);
	ck_assert_int_eq(vhost_user_frontend_remove_mem_region(p.fe, m3, r),
			 -EIO);
	echo_roundtrip(&p, 5, 8);
	guest_region_unref(r);
	guest_memory_unref(m2);
	guest_memory_unref(m3);
	pair_close(&p);
}
END_TEST

/* ------------------------------------------------ hostile frontend */

struct raw {
	struct vhost_user_backend *b;
	int peer;
};

static void raw_open(struct raw *r)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	r->b = make_backend(1);
	ck_assert_int_eq(vhost_user_backend_set_socket(r->b, sv[0]), 0);
	r->peer = sv[1];
}

static void raw_close(struct raw *r)
{
	vhost_user_backend_destroy(r->b);
	close(r->peer);
}

/* Send @m from the peer and let the backend handle it. */
static int raw_send(struct raw *r, struct vhost_user_msg *m)
{
	ck_assert_int_eq(vhost_user_msg_send(r->peer, m), 0);
	return vhost_user_backend_handle_message(r->b);
}

static int raw_u64(struct raw *r, uint32_t req, uint64_t v, uint32_t flags)
{
	struct vhost_user_msg m;

	vhost_user_msg_init(&m, req, flags, 8);
	m.payload.u64 = v;
	return raw_send(r, &m);
}

/* Read the ack of a NEED_REPLY request. */
static uint64_t raw_ack(struct raw *r, uint32_t req)
{
	struct vhost_user_msg m;

	ck_assert(readable(r->peer, 1000));
	ck_assert_int_eq(vhost_user_msg_recv(r->peer, &m), 0);
	ck_assert_uint_eq(m.hdr.request, req);
	ck_assert(m.hdr.flags & VHOST_USER_FLAG_REPLY);
	ck_assert_uint_eq(m.hdr.size, 8);
	return m.payload.u64;
}

static void raw_negotiate(struct raw *r)
{
	ck_assert_int_eq(
		raw_u64(r, VHOST_USER_SET_PROTOCOL_FEATURES,
			(1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
				(1ull
				 << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
			0),
		0);
}

/* A SET_MEM_TABLE claiming @n regions, the first min(n, 2) from @rs
 * (the rest zero), over the fds @fds. */
static int raw_mem_table(struct raw *r, const struct vhost_user_mem_region *rs,
			 unsigned int n, const int *fds, unsigned int nfds,
			 uint32_t size)
{
	struct vhost_user_msg m;

	vhost_user_msg_init(&m, VHOST_USER_SET_MEM_TABLE,
			    VHOST_USER_FLAG_NEED_REPLY, size);
	m.payload.mem.nregions = n;
	for (unsigned int i = 0; i < n && i < 2; i++)
		m.payload.mem.regions[i] = rs[i];
	for (unsigned int i = 0; i < nfds; i++)
		m.fds[i] = fds[i];
	m.nfds = nfds;
	return raw_send(r, &m);
}

START_TEST(test_hostile_sizes_and_requests)
{
	struct vhost_user_msg m;
	struct raw r;

	raw_open(&r);
	raw_negotiate(&r);
	/* SET_FEATURES with a 4-byte payload. */
	vhost_user_msg_init(&m, VHOST_USER_SET_FEATURES,
			    VHOST_USER_FLAG_NEED_REPLY, 4);
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_FEATURES), 1);
	/* Features the backend did not offer. */
	ck_assert_int_eq(raw_u64(&r, VHOST_USER_SET_FEATURES, 1ull << 63,
				 VHOST_USER_FLAG_NEED_REPLY),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_FEATURES), 1);
	/* A good one is acknowledged with 0. */
	ck_assert_int_eq(raw_u64(&r, VHOST_USER_SET_FEATURES, F_VERSION_1,
				 VHOST_USER_FLAG_NEED_REPLY),
			 0);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_FEATURES), 0);
	/* GET_FEATURES with a payload: refused with an empty reply. */
	vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, 0, 8);
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	ck_assert(readable(r.peer, 1000));
	ck_assert_int_eq(vhost_user_msg_recv(r.peer, &m), 0);
	ck_assert_uint_eq(m.hdr.size, 0);
	/* Unknown and unsupported requests: refused, connection kept. */
	vhost_user_msg_init(&m, 99, VHOST_USER_FLAG_NEED_REPLY, 0);
	ck_assert_int_eq(raw_send(&r, &m), -ENOTSUP);
	ck_assert_uint_eq(raw_ack(&r, 99), 1);
	vhost_user_msg_init(&m, VHOST_USER_SET_LOG_BASE,
			    VHOST_USER_FLAG_NEED_REPLY, 0);
	ck_assert_int_eq(raw_send(&r, &m), -ENOTSUP);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_LOG_BASE), 1);
	/* Queue index out of range, vring size not a power of two, too big. */
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_NUM, 0, 8);
	m.payload.state.index = 1;
	m.payload.state.num = 16;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	m.payload.state.index = 0;
	m.payload.state.num = 17;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	m.payload.state.num = 512;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	m.payload.state.num = 0;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	/* SET_VRING_BASE beyond 16 bits; ENABLE with 2. */
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_BASE, 0, 8);
	m.payload.state.num = 0x10000;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_ENABLE, 0, 8);
	m.payload.state.num = 2;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	/* SET_VRING_ADDR one byte short, and with the log flag. */
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_ADDR, 0,
			    sizeof(struct vhost_user_vring_addr) - 1);
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_ADDR, 0,
			    sizeof(struct vhost_user_vring_addr));
	m.payload.addr.flags = 1;
	ck_assert_int_eq(raw_send(&r, &m), -ENOTSUP);
	/* GET_CONFIG: size field disagreeing with the payload, too large. */
	ck_assert_int_eq(raw_u64(&r, VHOST_USER_SET_PROTOCOL_FEATURES,
				 (1ull << VHOST_USER_PROTOCOL_F_CONFIG), 0),
			 0);
	vhost_user_msg_init(&m, VHOST_USER_GET_CONFIG, 0,
			    VHOST_USER_CONFIG_HDR_SIZE + 4);
	m.payload.config.size = 8;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	ck_assert_int_eq(vhost_user_msg_recv(r.peer, &m), 0);
	ck_assert_uint_eq(m.hdr.size, 0);
	vhost_user_msg_init(&m, VHOST_USER_GET_CONFIG, 0,
			    VHOST_USER_CONFIG_HDR_SIZE + 4);
	m.payload.config.size = 4;
	m.payload.config.offset = 0xfffffffe;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	ck_assert_int_eq(vhost_user_msg_recv(r.peer, &m), 0);
	ck_assert_uint_eq(m.hdr.size, 0);
	/* A "reply" sent to the backend is a protocol error: dropped. */
	vhost_user_msg_init(&m, VHOST_USER_SET_OWNER, VHOST_USER_FLAG_REPLY, 0);
	ck_assert_int_eq(raw_send(&r, &m), -EPROTO);
	ck_assert_int_eq(vhost_user_backend_socket(r.b), -1);
	raw_close(&r);
}
END_TEST

START_TEST(test_hostile_fds)
{
	struct vhost_user_mem_region reg[2] = {{0, 0x10000, 0x7f0000000000, 0},
					       {0x100000, 0x1000, 0, 0}};
	int before, mfd, fds[VHOST_USER_MAX_FDS];
	struct vhost_user_msg m;
	struct raw r;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 10)];
		struct cmsghdr align;
	} ctl;

	raw_open(&r);
	raw_negotiate(&r);
	before = count_fds();
	mfd = make_memfd(0x10000);
	/* A descriptor on a request that takes none. */
	vhost_user_msg_init(&m, VHOST_USER_SET_OWNER,
			    VHOST_USER_FLAG_NEED_REPLY, 0);
	m.fds[0] = mfd;
	m.nfds = 1;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_OWNER), 1);
	/* SET_MEM_TABLE: one region, no fd; one region, two fds. */
	ck_assert_int_eq(raw_mem_table(&r, reg, 1, NULL, 0,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	fds[0] = fds[1] = mfd;
	ck_assert_int_eq(raw_mem_table(&r, reg, 1, fds, 2,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* nregions larger than the payload, and more than eight. */
	ck_assert_int_eq(raw_mem_table(&r, reg, 2, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	ck_assert_int_eq(raw_mem_table(&r, reg, 9, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(8)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* KICK with the no-fd bit but an fd; without it and without one. */
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_KICK, 0, 8);
	m.payload.u64 = VHOST_USER_VRING_NOFD;
	m.fds[0] = mfd;
	m.nfds = 1;
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_CALL, 0, 8);
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	/* Index bits beyond the mask. */
	vhost_user_msg_init(&m, VHOST_USER_SET_VRING_CALL, 0, 8);
	m.payload.u64 = VHOST_USER_VRING_NOFD | (1ull << 20);
	ck_assert_int_eq(raw_send(&r, &m), -EINVAL);
	/* Every descriptor the backend received was closed. */
	close(mfd);
	ck_assert_int_eq(count_fds(), before);

	/* Ten descriptors on one message: the framing refuses it and the
	 * connection ends, no descriptor kept. */
	{
		struct vhost_user_hdr h = {VHOST_USER_SET_OWNER,
					   VHOST_USER_VERSION, 0};
		struct iovec iov = {&h, sizeof(h)};
		struct msghdr mh = {0};
		struct cmsghdr *c;
		int ten[10];

		mfd = make_memfd(0x1000);
		for (int i = 0; i < 10; i++)
			ten[i] = mfd;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(ten));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(ten));
		memcpy(CMSG_DATA(c), ten, sizeof(ten));
		ck_assert_int_eq(sendmsg(r.peer, &mh, 0), (ssize_t)sizeof(h));
		ck_assert_int_eq(vhost_user_backend_handle_message(r.b),
				 -EMSGSIZE);
		ck_assert_int_eq(vhost_user_backend_socket(r.b), -1);
		close(mfd);
	}
	ck_assert_int_eq(count_fds(), before - 1); /* the backend's socket */
	raw_close(&r);
}
END_TEST

START_TEST(test_hostile_regions)
{
	struct vhost_user_mem_region rs[2];
	struct raw r;
	int fds[2], before;

	raw_open(&r);
	raw_negotiate(&r);
	before = count_fds();
	fds[0] = make_memfd(0x20000);
	fds[1] = make_memfd(0x20000);

	/* Larger than the fd. */
	rs[0] = (struct vhost_user_mem_region){0, 0x40000, 0x10000000, 0};
	ck_assert_int_eq(raw_mem_table(&r, rs, 1, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* Offset pushing it past the end of the fd. */
	rs[0] = (struct vhost_user_mem_region){0, 0x20000, 0x10000000, 0x1000};
	ck_assert_int_eq(raw_mem_table(&r, rs, 1, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* Wrapping sums. */
	rs[0] = (struct vhost_user_mem_region){0xfffffffffffff000, 0x2000,
					       0x10000000, 0};
	ck_assert_int_eq(raw_mem_table(&r, rs, 1, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	rs[0] = (struct vhost_user_mem_region){0, 0x1000, 0x10000000,
					       0xfffffffffffff000};
	ck_assert_int_eq(raw_mem_table(&r, rs, 1, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* Zero size, unaligned offset. */
	rs[0] = (struct vhost_user_mem_region){0, 0, 0x10000000, 0};
	ck_assert_int_eq(raw_mem_table(&r, rs, 1, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	rs[0] = (struct vhost_user_mem_region){0, 0x1000, 0x10000000, 0x10};
	ck_assert_int_eq(raw_mem_table(&r, rs, 1, fds, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* Not a regular file: a socket. */
	rs[0] = (struct vhost_user_mem_region){0, 0x1000, 0x10000000, 0};
	ck_assert_int_eq(raw_mem_table(&r, rs, 1, &r.peer, 1,
				       VHOST_USER_MEM_TABLE_SIZE(1)),
			 -EINVAL);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* Two regions overlapping in guest physical space... */
	rs[0] = (struct vhost_user_mem_region){0, 0x20000, 0x10000000, 0};
	rs[1] = (struct vhost_user_mem_region){0x10000, 0x10000, 0x20000000, 0};
	ck_assert_int_eq(raw_mem_table(&r, rs, 2, fds, 2,
				       VHOST_USER_MEM_TABLE_SIZE(2)),
			 -EEXIST);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	/* ... and in the frontend's address space. */
	rs[1] = (struct vhost_user_mem_region){0x100000, 0x10000, 0x10010000,
					       0};
	ck_assert_int_eq(raw_mem_table(&r, rs, 2, fds, 2,
				       VHOST_USER_MEM_TABLE_SIZE(2)),
			 -EEXIST);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 1);
	ck_assert_ptr_null(vhost_user_backend_memory(r.b));
	/* A good table is mapped and acknowledged. */
	rs[1] = (struct vhost_user_mem_region){0x100000, 0x10000, 0x20000000,
					       0x10000};
	ck_assert_int_eq(raw_mem_table(&r, rs, 2, fds, 2,
				       VHOST_USER_MEM_TABLE_SIZE(2)),
			 0);
	ck_assert_uint_eq(raw_ack(&r, VHOST_USER_SET_MEM_TABLE), 0);
	ck_assert_uint_eq(
		guest_memory_num_regions(vhost_user_backend_memory(r.b)), 2);
	/* Rings outside the table: the kick is refused (queue not
	 * started). */
	{
		struct vhost_user_msg m;

		vhost_user_msg_init(&m, VHOST_USER_SET_VRING_ADDR, 0,
				    sizeof(struct vhost_user_vring_addr));
		m.payload.addr.desc = 0x10000000;
		m.payload.addr.avail = 0x10001000;
		m.payload.addr.used = 0x30000000; /* nowhere */
		ck_assert_int_eq(raw_send(&r, &m), 0);
		ck_assert_int_eq(raw_u64(&r, VHOST_USER_SET_VRING_KICK,
					 VHOST_USER_VRING_NOFD, 0),
				 -EFAULT);
		ck_assert(!vhost_user_backend_queue_started(r.b, 0));
		/* Misaligned used ring: refused by the queue. */
		m.payload.addr.used = 0x20000001;
		ck_assert_int_eq(raw_send(&r, &m), 0);
		ck_assert_int_lt(raw_u64(&r, VHOST_USER_SET_VRING_KICK,
					 VHOST_USER_VRING_NOFD, 0),
				 0);
		m.payload.addr.used = 0x20000000;
		ck_assert_int_eq(raw_send(&r, &m), 0);
		ck_assert_int_eq(raw_u64(&r, VHOST_USER_SET_VRING_KICK,
					 VHOST_USER_VRING_NOFD, 0),
				 0);
		ck_assert(vhost_user_backend_queue_started(r.b, 0));
		/* No more address or size changes while started. */
		ck_assert_int_eq(raw_send(&r, &m), -EBUSY);
	}
	close(fds[0]);
	close(fds[1]);
	raw_close(&r);
	ck_assert_int_eq(count_fds(), before - 2); /* both socket ends */
}
END_TEST

START_TEST(test_hostile_framing)
{
	struct vhost_user_msg m;
	struct raw r;

	/* The peer closes in the middle of a header. */
	raw_open(&r);
	vhost_user_msg_init(&m, VHOST_USER_SET_FEATURES, 0, 8);
	ck_assert_int_eq(write(r.peer, &m.hdr, 6), 6);
	close(r.peer);
	r.peer = -1;
	ck_assert_int_eq(vhost_user_backend_handle_message(r.b), -ECONNRESET);
	ck_assert_int_eq(vhost_user_backend_socket(r.b), -1);
	ck_assert_int_eq(vhost_user_backend_handle_message(r.b), -ENOTCONN);
	vhost_user_backend_destroy(r.b);

	/* ... in the middle of a payload (a short read). */
	raw_open(&r);
	ck_assert_int_eq(write(r.peer, &m.hdr, VHOST_USER_HDR_SIZE),
			 (ssize_t)VHOST_USER_HDR_SIZE);
	ck_assert_int_eq(write(r.peer, &m.payload, 3), 3);
	close(r.peer);
	r.peer = -1;
	ck_assert_int_eq(vhost_user_backend_handle_message(r.b), -ECONNRESET);
	vhost_user_backend_destroy(r.b);

	/* A header in several pieces is fine. */
	raw_open(&r);
	vhost_user_msg_init(&m, VHOST_USER_SET_OWNER, 0, 0);
	ck_assert_int_eq(write(r.peer, &m.hdr, 5), 5);
	ck_assert_int_eq(write(r.peer, (char *)&m.hdr + 5, 7), 7);
	ck_assert_int_eq(vhost_user_backend_handle_message(r.b), 0);
	/* Bad version. */
	m.hdr.flags = 2;
	ck_assert_int_eq(write(r.peer, &m.hdr, 12), 12);
	ck_assert_int_eq(vhost_user_backend_handle_message(r.b), -EPROTO);
	ck_assert_int_eq(vhost_user_backend_socket(r.b), -1);
	raw_close(&r);

	/* A peer that stops in the middle of a message (and stays): the
	 * message timeout ends the connection instead of blocking. */
	{
		struct vhost_user_backend_config cfg = {.message_timeout_ms =
								100};
		struct timespec t0, t1;
		int sv[2];

		/* (the previous connection's raw_close() freed r) */
		ck_assert_int_eq(vhost_user_backend_create(&cfg, &r.b), 0);
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, sv),
				 0);
		ck_assert_int_eq(vhost_user_backend_set_socket(r.b, sv[0]), 0);
		r.peer = sv[1];
		vhost_user_msg_init(&m, VHOST_USER_SET_FEATURES, 0, 8);
		ck_assert_int_eq(write(r.peer, &m.hdr, VHOST_USER_HDR_SIZE),
				 (ssize_t)VHOST_USER_HDR_SIZE);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ck_assert_int_eq(vhost_user_backend_handle_message(r.b),
				 -ETIMEDOUT);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 3);
		ck_assert_int_eq(vhost_user_backend_socket(r.b), -1);
		raw_close(&r);
	}

	/* A payload larger than any message. */
	raw_open(&r);
	vhost_user_msg_init(&m, VHOST_USER_SET_OWNER, 0, 0);
	m.hdr.size = 0x100000;
	ck_assert_int_eq(write(r.peer, &m.hdr, 12), 12);
	ck_assert_int_eq(vhost_user_backend_handle_message(r.b), -EMSGSIZE);
	ck_assert_int_eq(vhost_user_backend_socket(r.b), -1);
	/* The backend takes a new connection after that. */
	{
		int sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, sv),
				 0);
		ck_assert_int_eq(vhost_user_backend_set_socket(r.b, sv[0]), 0);
		close(r.peer);
		r.peer = sv[1];
		ck_assert_int_eq(raw_u64(&r, VHOST_USER_SET_FEATURES,
					 F_VERSION_1, 0),
				 0);
	}
	raw_close(&r);
}
END_TEST

/* Over a real listening socket. */
START_TEST(test_listen_connect)
{
	char path[] = "/tmp/cvmm-vhost-XXXXXX";
	char sock[64];
	struct vhost_user_frontend *fe = NULL;
	struct pair p;
	int lfd, cfd;
	uint64_t f = 0;

	ck_assert_ptr_nonnull(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/s", path);
	lfd = vhost_user_listen(sock);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(vhost_user_frontend_connect(sock, NULL, &fe), 0);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(cfd, 0);
	memset(&p, 0, sizeof(p));
	p.b = make_backend(1);
	ck_assert_int_eq(vhost_user_backend_set_socket(p.b, cfd), 0);
	ck_assert_int_eq(pthread_create(&p.thread, NULL, backend_thread, &p),
			 0);
	ck_assert_int_eq(vhost_user_frontend_get_features(fe, &f), 0);
	ck_assert(f & F_VERSION_1);
	vhost_user_frontend_destroy(fe);
	ck_assert_int_eq(pthread_join(p.thread, NULL), 0);
	ck_assert_int_eq(p.run_result, 0);
	vhost_user_backend_destroy(p.b);
	close(lfd);
	unlink(sock);
	rmdir(path);
}
END_TEST

START_TEST(test_backend_create_args)
{
	struct vhost_user_backend_config cfg = {0};
	struct vhost_user_backend *b = NULL;

	cfg.num_queues = 257;
	ck_assert_int_eq(vhost_user_backend_create(&cfg, &b), -EINVAL);
	cfg.num_queues = 1;
	cfg.max_queue_size = 100;
	ck_assert_int_eq(vhost_user_backend_create(&cfg, &b), -EINVAL);
	ck_assert_int_eq(vhost_user_backend_create(NULL, &b), 0);
	/* No get_config op: CONFIG not offered. */
	ck_assert_int_eq(vhost_user_backend_handle_message(b), -ENOTCONN);
	ck_assert_int_eq(vhost_user_backend_set_socket(b, -1), -EINVAL);
	ck_assert_ptr_null(vhost_user_backend_queue(b, 1));
	ck_assert_ptr_nonnull(vhost_user_backend_queue(b, 0));
	ck_assert_int_eq(vhost_user_backend_kick_fd(b, 0), -1);
	ck_assert_int_eq(vhost_user_backend_handle_kick(b, 1), -EINVAL);
	vhost_user_backend_destroy(b);
	vhost_user_backend_destroy(NULL);
	vhost_user_frontend_destroy(NULL);
}
END_TEST

static Suite *vhost_suite(void)
{
	Suite *s = suite_create("vhost-user");
	TCase *tc = tcase_create("pair");

	tcase_add_test(tc, test_pair_roundtrip);
	tcase_add_test(tc, test_pair_stop_resume);
	tcase_add_test(tc, test_pair_config_and_queues);
	tcase_add_test(tc, test_pair_add_remove_region);
	tcase_add_test(tc, test_listen_connect);
	suite_add_tcase(s, tc);
	tc = tcase_create("hostile");
	tcase_add_test(tc, test_hostile_sizes_and_requests);
	tcase_add_test(tc, test_hostile_fds);
	tcase_add_test(tc, test_hostile_regions);
	tcase_add_test(tc, test_hostile_framing);
	suite_add_tcase(s, tc);
	tc = tcase_create("api");
	tcase_add_test(tc, test_backend_create_args);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(vhost_suite(), false);
}
