/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The generic vhost-user device (virtio-vhost-user.h) through both
 * transports, with the guest played by the virtio-blk harness and the
 * backend a small in-memory block device on libvhost's backend, in a
 * thread over a unix socket.  No KVM.
 */
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cvmm/devices/virtio-vhost-user.h>
#include <cvmm/vhost/user-backend.h>

#include "cvmm-check.h"
#include "test-virtio-blk-harness.h"

#define DISK_SECTORS 2048u

struct mini {
	char dir[64], sock[96];
	int lfd;
	struct vhost_user_backend *b;
	pthread_t thread;
	uint8_t disk[DISK_SECTORS * 512];
	struct virtio_blk_config config;
	uint64_t features;
};

static int mini_process(void *opaque, struct vhost_user_backend *b,
			unsigned int index, struct virtq *q)
{
	struct mini *m = opaque;
	struct virtq_buf bufs[64];
	struct virtq_chain c;
	int n;

	(void)b;
	(void)index;
	virtq_chain_init(&c, bufs, 64);
	while ((n = virtq_pop(q, &c)) == 1) {
		struct virtio_blk_outhdr h;
		uint8_t status = VIRTIO_BLK_S_OK;
		uint32_t len = 0, wr = virtq_chain_writable(&c);

		if (wr == 0 || VIRTQ_CHAIN_READ_OBJ(&c, &h) < 0) {
			status = VIRTIO_BLK_S_IOERR;
		} else if (h.type == VIRTIO_BLK_T_IN ||
			   h.type == VIRTIO_BLK_T_OUT) {
			len = h.type == VIRTIO_BLK_T_IN
				      ? wr - 1
				      : virtq_chain_readable(&c);
			if (h.sector > DISK_SECTORS ||
			    len > (DISK_SECTORS - h.sector) * 512)
				status = VIRTIO_BLK_S_IOERR;
			else if (h.type == VIRTIO_BLK_T_IN)
				virtq_chain_write(&c, m->disk + h.sector * 512,
						  len);
			else
				virtq_chain_read(&c, m->disk + h.sector * 512,
						 len);
			if (h.type == VIRTIO_BLK_T_OUT || status)
				len = 0;
		} else {
			status = VIRTIO_BLK_S_UNSUPP;
		}
		virtq_chain_skip_write(&c, virtq_chain_writable(&c) - 1);
		virtq_chain_write(&c, &status, 1);
		virtq_complete_len(q, &c, len + 1);
	}
	return n < 0 ? n : 0;
}

static int mini_get_config(void *opaque, uint32_t offset, void *buf,
			   uint32_t len)
{
	struct mini *m = opaque;

	if (offset > sizeof(m->config) || len > sizeof(m->config) - offset)
		return -EINVAL;
	memcpy(buf, (uint8_t *)&m->config + offset, len);
	return 0;
}

static const struct vhost_user_backend_ops mini_ops = {
	.process_queue = mini_process,
	.get_config = mini_get_config,
};

static void *mini_thread(void *arg)
{
	struct mini *m = arg;
	int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0 || vhost_user_backend_set_socket(m->b, fd) < 0)
		return NULL;
	vhost_user_backend_run(m->b);
	return NULL;
}

static struct mini *mini_start(uint64_t features)
{
	struct mini *m = calloc(1, sizeof(*m));
	struct vhost_user_backend_config cfg = {
		.num_queues = 1,
		.max_queue_size = 256,
		.features = features,
		.ops = &mini_ops,
	};

	ck_assert_ptr_nonnull(m);
	cfg.opaque = m;
	snprintf(m->dir, sizeof(m->dir), "/tmp/cvmm-vu-dev-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(m->dir));
	snprintf(m->sock, sizeof(m->sock), "%s/s", m->dir);
	m->config.capacity = DISK_SECTORS;
	m->config.blk_size = 512;
	ck_assert_int_eq(vhost_user_backend_create(&cfg, &m->b), 0);
	m->lfd = vhost_user_listen(m->sock);
	ck_assert_int_ge(m->lfd, 0);
	ck_assert_int_eq(pthread_create(&m->thread, NULL, mini_thread, m), 0);
	return m;
}

/* Ends the backend's connection from outside (as a crash would). */
static void mini_kill_connection(struct mini *m)
{
	/* The accept may not have happened yet: connect-side state is
	 * what matters, the device is connected once create returned. */
	int fd = -1;

	for (int i = 0; i < 200 && fd < 0; i++) {
		fd = vhost_user_backend_socket(m->b);
		if (fd < 0)
			usleep(5000);
	}
	ck_assert_int_ge(fd, 0);
	shutdown(fd, SHUT_RDWR);
}

static void mini_stop(struct mini *m)
{
	ck_assert_int_eq(pthread_join(m->thread, NULL), 0);
	vhost_user_backend_destroy(m->b);
	close(m->lfd);
	unlink(m->sock);
	rmdir(m->dir);
	free(m);
}

static struct virtio_vhost_user *make_device(struct mini *m)
{
	struct virtio_vhost_user_options o = {
		.device_id = VIRTIO_ID_BLOCK,
		.config_size = sizeof(struct virtio_blk_config),
		.reply_timeout_ms = 5000,
	};
	struct virtio_vhost_user *vu = NULL;

	ck_assert_int_eq(virtio_vhost_user_create(m->sock, &o, &vu), 0);
	ck_assert(virtio_vhost_user_connected(vu));
	return vu;
}

/* _i: 0 virtio-pci, 1 virtio-mmio. */
START_TEST(test_vhost_user_blk_rw)
{
	struct mini *m = mini_start(1ull << VIRTIO_F_VERSION_1);
	struct virtio_vhost_user *vu = make_device(m);
	struct vring_used_elem e;
	struct bh h;

	ck_assert_int_eq(bh_init_dev(&h, (enum bh_transport)_i,
				     virtio_vhost_user_device(vu), 64, 0,
				     GUEST_REGION_MEMFD),
			 0);
	/* The configuration space came from the backend. */
	ck_assert_uint_eq(bh_config_rd(&h, 0, 8), DISK_SECTORS);
	ck_assert_uint_eq(bh_config_rd(&h, 20, 4), 512);
	for (unsigned int i = 0; i < 4096; i++)
		h.host[BH_DATA_BASE + i] = (uint8_t)(i * 13 + 1);
	ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_OUT, 8, 0x800000,
				BH_DATA_BASE, 4096, NULL),
			 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(h.host[0x800000 + 16], VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(m->disk + 8 * 512, h.host + BH_DATA_BASE, 4096);
	memset(h.host + BH_DATA_BASE + 0x10000, 0, 4096);
	ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, 8, 0x800000,
				BH_DATA_BASE + 0x10000, 4096, NULL),
			 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(e.len, 4097);
	ck_assert_mem_eq(h.host + BH_DATA_BASE + 0x10000, h.host + BH_DATA_BASE,
			 4096);
	/* A driver reset stops the backend's ring; the device comes back. */
	bh_set_status(&h, 0);
	ck_assert_uint_eq(bh_status(&h), 0);
	ck_assert(virtio_vhost_user_connected(vu));
	bh_fini(&h);
	virtio_vhost_user_destroy(vu);
	mini_stop(m);
}
END_TEST

/* Is @fd readable within @ms? */
static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1;
}

/* The backend's kick is the queue's notifier and its call the MSI-X
 * vector's irqfd once the guest routes the queue there: no VMM thread in
 * between; a masked vector takes the relay (pending kept); virtio-pci. */
START_TEST(test_vhost_user_direct_notifiers)
{
	struct mini *m = mini_start(1ull << VIRTIO_F_VERSION_1);
	struct virtio_vhost_user *vu = make_device(m);
	struct event_notifier *irqfd, *kick;
	uint64_t kicks = 9, calls = 9, kicks0, calls0;
	int cap;
	struct bh h;

	ck_assert_int_eq(bh_init_dev(&h, BH_PCI, virtio_vhost_user_device(vu),
				     64, 0, GUEST_REGION_MEMFD),
			 0);
	kick = virtio_device_queue_notifier(h.dev, 0);
	/* The VMM: an irqfd for vector 0.  The guest: bus mastering,
	 * vector 0 unmasked, MSI-X on, queue 0 on vector 0. */
	ck_assert_int_eq(event_notifier_create(0, &irqfd), 0);
	ck_assert_int_eq(virtio_pci_set_vector_notifier(h.vp, 0, irqfd), 0);
	ck_assert_int_eq(pci_device_config_write(h.pd, 4, 2, 0x6), 0);
	bh_pci_wr(&h, VIRTIO_PCI_MSIX_OFFSET + PCI_MSIX_ENTRY_LOWER_ADDR,
		  0xfee00000u, 4);
	bh_pci_wr(&h, VIRTIO_PCI_MSIX_OFFSET + PCI_MSIX_ENTRY_DATA, 0x41, 4);
	bh_pci_wr(&h, VIRTIO_PCI_MSIX_OFFSET + PCI_MSIX_ENTRY_VECTOR_CTRL, 0,
		  4);
	cap = pci_device_find_capability(h.pd, PCI_CAP_ID_MSIX);
	ck_assert_int_gt(cap, 0);
	ck_assert_int_eq(pci_device_config_write(h.pd,
						 (uint32_t)cap + PCI_MSIX_FLAGS,
						 2, PCI_MSIX_FLAGS_ENABLE),
			 0);
	bh_pci_wr(&h, BH_CC(queue_select), 0, 2);
	bh_pci_wr(&h, BH_CC(queue_msix_vector), 0, 2);
	ck_assert_int_eq(virtio_device_queue_irq_fd(h.dev, 0),
			 event_notifier_fd(irqfd));
	/* The device re-points the backend's call from its poll list, then
	 * raises the queue's interrupt once (through the irqfd now). */
	bh_poll(&h, 100);
	ck_assert(readable(event_notifier_fd(irqfd), 0));
	/* (What the backend did at DRIVER_OK, on the relay, settles.) */
	for (int i = 0; i < 100 && bh_poll(&h, 50) > 0; i++)
		;
	event_notifier_consume(irqfd);
	virtio_vhost_user_relay_counts(vu, &kicks0, &calls0);
	/* The guest's notify through the "ioeventfd": the backend reads the
	 * notifier, completes, and signals the irqfd itself. */
	ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, 0, 0x800000,
				BH_DATA_BASE, 512, NULL),
			 0);
	ck_assert_int_eq(event_notifier_signal(kick), 0);
	ck_assert(readable(event_notifier_fd(irqfd), 5000));
	ck_assert_int_eq(bh_wait_used(&h, 0, NULL, 1, 5000), 1);
	virtio_vhost_user_relay_counts(vu, &kicks, &calls);
	ck_assert_uint_eq(kicks, kicks0);
	ck_assert_uint_eq(calls, calls0);
	event_notifier_consume(irqfd);
	/* A notify register write the VMM handles itself: relayed. */
	ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, 0, 0x800000,
				BH_DATA_BASE, 512, NULL),
			 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, NULL, 1, 5000), 1);
	virtio_vhost_user_relay_counts(vu, &kicks, NULL);
	ck_assert_uint_eq(kicks, kicks0 + 1);
	ck_assert(readable(event_notifier_fd(irqfd), 5000));
	event_notifier_consume(irqfd);
	/* The guest masks vector 0: the relay; a completion then stays
	 * pending, and is sent through the irqfd at unmask. */
	bh_pci_wr(&h, VIRTIO_PCI_MSIX_OFFSET + PCI_MSIX_ENTRY_VECTOR_CTRL,
		  PCI_MSIX_ENTRY_CTRL_MASKBIT, 4);
	ck_assert_int_eq(virtio_device_queue_irq_fd(h.dev, 0), -1);
	bh_poll(&h, 100); /* the re-pointing */
	ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, 0, 0x800000,
				BH_DATA_BASE, 512, NULL),
			 0);
	ck_assert_int_eq(event_notifier_signal(kick), 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, NULL, 1, 5000), 1);
	for (int i = 0; i < 50 && calls == calls0; i++) {
		bh_poll(&h, 20);
		virtio_vhost_user_relay_counts(vu, NULL, &calls);
	}
	ck_assert_uint_gt(calls, calls0);
	ck_assert_int_eq(pci_device_msix_pending(h.pd, 0), 1);
	ck_assert(!readable(event_notifier_fd(irqfd), 0));
	bh_pci_wr(&h, VIRTIO_PCI_MSIX_OFFSET + PCI_MSIX_ENTRY_VECTOR_CTRL, 0,
		  4);
	ck_assert_int_eq(pci_device_msix_pending(h.pd, 0), 0);
	ck_assert(readable(event_notifier_fd(irqfd), 0));
	/* Reset: the notifier is the device's again. */
	bh_set_status(&h, 0);
	ck_assert_int_eq(virtio_device_queue_irq_fd(h.dev, 0), -1);
	ck_assert(virtio_vhost_user_connected(vu));
	bh_fini(&h);
	virtio_vhost_user_destroy(vu);
	event_notifier_destroy(irqfd);
	mini_stop(m);
}
END_TEST

/* The backend goes away while the guest runs: NEEDS_RESET, a config
 * interrupt, no hang; the driver can still reset the device. */
START_TEST(test_vhost_user_backend_gone)
{
	struct mini *m = mini_start(1ull << VIRTIO_F_VERSION_1);
	struct virtio_vhost_user *vu = make_device(m);
	struct bh h;

	ck_assert_int_eq(bh_init_dev(&h, (enum bh_transport)_i,
				     virtio_vhost_user_device(vu), 64, 0,
				     GUEST_REGION_MEMFD),
			 0);
	mini_kill_connection(m);
	for (int i = 0; i < 100 && virtio_vhost_user_connected(vu); i++)
		bh_poll(&h, 20);
	ck_assert(!virtio_vhost_user_connected(vu));
	ck_assert(bh_status(&h) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* A kick now is not forwarded and harms nothing (a backend thread
	 * that had not yet seen the hang-up may still serve the ring: no
	 * assertion on that). */
	ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, 0, 0x800000,
				BH_DATA_BASE, 512, NULL),
			 0);
	bh_notify(&h, 0);
	ck_assert_int_ge(bh_wait_used(&h, 0, NULL, 1, 50), 0);
	bh_set_status(&h, 0);
	ck_assert_uint_eq(bh_status(&h), 0);
	bh_fini(&h);
	virtio_vhost_user_destroy(vu);
	mini_stop(m);
}
END_TEST

/* Guest memory that cannot be shared (anonymous): DRIVER_OK cannot hand
 * it over, the device goes to NEEDS_RESET instead of running. */
START_TEST(test_vhost_user_needs_fd_memory)
{
	struct mini *m = mini_start(1ull << VIRTIO_F_VERSION_1);
	struct virtio_vhost_user *vu = make_device(m);
	struct bh h;

	bh_init_dev(&h, BH_PCI, virtio_vhost_user_device(vu), 64, 0,
		    GUEST_REGION_ANON_PRIVATE);
	ck_assert(bh_status(&h) & VIRTIO_CONFIG_S_NEEDS_RESET);
	bh_fini(&h);
	virtio_vhost_user_destroy(vu);
	mini_stop(m);
}
END_TEST

START_TEST(test_vhost_user_create_errors)
{
	struct virtio_vhost_user_options o = {.device_id = VIRTIO_ID_BLOCK};
	struct virtio_vhost_user *vu = NULL;
	struct mini *m;

	ck_assert_int_eq(virtio_vhost_user_create("/nonexistent/s", &o, &vu),
			 -ENOENT);
	o.device_id = 0;
	ck_assert_int_eq(virtio_vhost_user_create("/nonexistent/s", &o, &vu),
			 -EINVAL);
	o.device_id = VIRTIO_ID_BLOCK;
	o.config_size = 257;
	ck_assert_int_eq(virtio_vhost_user_create("/nonexistent/s", &o, &vu),
			 -EINVAL);
	ck_assert_int_eq(virtio_vhost_user_create(NULL, &o, &vu), -EINVAL);
	/* A backend without VERSION_1 is refused. */
	m = mini_start(0);
	o.config_size = 0;
	ck_assert_int_eq(virtio_vhost_user_create(m->sock, &o, &vu), -ENOTSUP);
	mini_stop(m);
	ck_assert_ptr_null(virtio_vhost_user_device(NULL));
	ck_assert(!virtio_vhost_user_connected(NULL));
	virtio_vhost_user_destroy(NULL);
}
END_TEST

/* virtio-fs: the configuration space is the VMM's (options.config), not
 * the backend's (this one offers CONFIG with a blk space), and the guest
 * cannot change it. */
START_TEST(test_vhost_user_local_config)
{
	struct mini *m = mini_start(1ull << VIRTIO_F_VERSION_1);
	uint8_t cfg[VIRTIO_VHOST_USER_FS_CONFIG_SIZE];
	struct virtio_vhost_user_options o = {
		.device_id = VIRTIO_ID_FS,
		.config_size = sizeof(cfg),
		.config = cfg,
	};
	struct virtio_vhost_user *vu = NULL;
	struct bh h;

	ck_assert_int_eq(virtio_vhost_user_fs_config("share", 1, cfg), 0);
	ck_assert_int_eq(virtio_vhost_user_create(m->sock, &o, &vu), 0);
	memset(cfg, 0xaa, sizeof(cfg)); /* copied at create */
	ck_assert_int_eq(bh_init_dev(&h, BH_PCI, virtio_vhost_user_device(vu),
				     64, 0, GUEST_REGION_MEMFD),
			 0);
	ck_assert_uint_eq(bh_config_rd(&h, 0, 4), 0x72616873); /* "shar" */
	ck_assert_uint_eq(bh_config_rd(&h, 4, 4), 'e');
	ck_assert_uint_eq(bh_config_rd(&h, 32, 4), 0);
	ck_assert_uint_eq(bh_config_rd(&h, 36, 4), 1);
	bh_config_wr(&h, 0, 0x41414141, 4);
	bh_config_wr(&h, 36, 7, 4);
	ck_assert_uint_eq(bh_config_rd(&h, 0, 4), 0x72616873);
	ck_assert_uint_eq(bh_config_rd(&h, 36, 4), 1);
	ck_assert(virtio_vhost_user_connected(vu));
	bh_fini(&h);
	virtio_vhost_user_destroy(vu);
	mini_stop(m);
	/* A config without a size is refused. */
	o.config_size = 0;
	ck_assert_int_eq(virtio_vhost_user_create("/nonexistent/s", &o, &vu),
			 -EINVAL);
}
END_TEST

START_TEST(test_vhost_user_fs_config)
{
	uint8_t cfg[VIRTIO_VHOST_USER_FS_CONFIG_SIZE];
	const char *full = "abcdefghijklmnopqrstuvwxyz0123456789"; /* 36 */

	ck_assert_int_eq(virtio_vhost_user_fs_config(full, 1, cfg), 0);
	ck_assert_mem_eq(cfg, full, 36); /* no NUL when full */
	ck_assert_uint_eq(cfg[36], 1);
	ck_assert_int_eq(virtio_vhost_user_fs_config("a", 3, cfg), 0);
	ck_assert_uint_eq(cfg[0], 'a');
	ck_assert_uint_eq(cfg[1], 0);
	ck_assert_uint_eq(cfg[36], 3);
	ck_assert_int_eq(virtio_vhost_user_fs_config(NULL, 1, cfg), -EINVAL);
	ck_assert_int_eq(virtio_vhost_user_fs_config("", 1, cfg), -EINVAL);
	ck_assert_int_eq(virtio_vhost_user_fs_config("a b", 1, cfg), -EINVAL);
	ck_assert_int_eq(virtio_vhost_user_fs_config("a\n", 1, cfg), -EINVAL);
	ck_assert_int_eq(virtio_vhost_user_fs_config("\xc3\xa9", 1, cfg),
			 -EINVAL);
	ck_assert_int_eq(virtio_vhost_user_fs_config("abcdefghijklmnopqrstuvwxy"
						     "z0123456789x",
						     1, cfg),
			 -EINVAL);
	ck_assert_int_eq(virtio_vhost_user_fs_config("a", 0, cfg), -EINVAL);
	ck_assert_int_eq(
		virtio_vhost_user_fs_config("a", VIRTIO_DEVICE_MAX_QUEUES, cfg),
		-EINVAL);
	ck_assert_int_eq(virtio_vhost_user_fs_config("a", 1, NULL), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio-vhost-user");
	TCase *tc = tcase_create("device");

	tcase_add_loop_test(tc, test_vhost_user_blk_rw, 0, 2);
	tcase_add_loop_test(tc, test_vhost_user_backend_gone, 0, 2);
	tcase_add_test(tc, test_vhost_user_needs_fd_memory);
	tcase_add_test(tc, test_vhost_user_create_errors);
	tcase_add_test(tc, test_vhost_user_local_config);
	tcase_add_test(tc, test_vhost_user_fs_config);
	tcase_add_test(tc, test_vhost_user_direct_notifiers);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return cvmm_check_run(s, false);
}
