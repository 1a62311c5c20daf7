/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost's frontend driving a vhost-user-blk backend process: QEMU's
 * qemu-storage-daemon (`--export type=vhost-user-blk`), or c-vmm's own
 * examples/vhost-user-blk.  The mock driver (cvmm-virtio-queue-driver)
 * plays the guest: it writes virtio-blk requests into memfd guest memory
 * that the backend maps from the descriptors SET_MEM_TABLE passed.  A
 * pattern is written, read back through the device, and checked in the
 * host image file; then the backend is killed and the frontend must
 * report the disconnection.
 *
 * Usage: test-vhost-blk-interop qsd|example PROGRAM
 */
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cvmm/vhost/user-frontend.h>
#include <cvmm/virtio-queue-driver.h>

#include "cvmm-check.h"

#define QSIZE	   64u
#define RING_BASE  0x1000u
#define HDR_GPA	   0x10000u
#define DATA_GPA   0x20000u
#define STATUS_GPA 0x40000u
#define IMG_SIZE   (4u << 20)

static const char *kind, *program;

struct blk_client {
	char dir[64], sock[96], img[96], log[96];
	pid_t pid;
	struct vhost_user_frontend *fe;
	struct guest_memory *mem;
	struct virtq_driver *drv;
	int kick, call;
	uint64_t features;
	int disconnects;
};

static void on_disconnect(struct vhost_user_frontend *fe, int err, void *opaque)
{
	struct blk_client *c = opaque;

	(void)fe;
	(void)err;
	c->disconnects++;
}

static void spawn_backend(struct blk_client *c)
{
	char blockdev[256], export[256];
	int fd;

	snprintf(blockdev, sizeof(blockdev),
		 "driver=file,node-name=disk0,filename=%s", c->img);
	snprintf(export, sizeof(export),
		 "type=vhost-user-blk,id=exp0,node-name=disk0,"
		 "addr.type=unix,addr.path=%s,writable=on",
		 c->sock);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (strcmp(kind, "qsd") == 0)
			execl(program, program, "--blockdev", blockdev,
			      "--export", export, (char *)NULL);
		else
			execl(program, program, "--socket", c->sock, "--image",
			      c->img, (char *)NULL);
		_exit(127);
	}
}

static void connect_backend(struct blk_client *c)
{
	struct vhost_user_frontend_config cfg = {
		.reply_timeout_ms = 10000,
		.disconnected = on_disconnect,
		.opaque = c,
	};
	int err = -ENOENT;

	/* The backend creates its socket when it is ready: up to 20 s. */
	for (int i = 0; i < 400; i++) {
		err = vhost_user_frontend_connect(c->sock, &cfg, &c->fe);
		if (!err)
			break;
		ck_assert_msg(waitpid(c->pid, NULL, WNOHANG) == 0,
			      "%s exited early (see %s)", program, c->log);
		usleep(50000);
	}
	ck_assert_msg(!err, "cannot connect to %s: %s", c->sock,
		      strerror(-err));
}

static void blk_start(struct blk_client *c)
{
	struct guest_memory_range r = {0, 1u << 20};
	struct guest_region_params p = {.backing = GUEST_REGION_MEMFD};
	guest_addr_t desc, avail, used;
	uint64_t f, pf, want;
	int fd;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/cvmm-vhost-blk-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(c->dir));
	snprintf(c->sock, sizeof(c->sock), "%s/blk.sock", c->dir);
	snprintf(c->img, sizeof(c->img), "%s/disk.img", c->dir);
	snprintf(c->log, sizeof(c->log), "%s/backend.log", c->dir);
	fd = open(c->img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, IMG_SIZE), 0);
	close(fd);
	spawn_backend(c);
	connect_backend(c);

	ck_assert_int_eq(vhost_user_frontend_get_features(c->fe, &f), 0);
	ck_assert_msg(f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES),
		      "features %#llx", (unsigned long long)f);
	ck_assert(f & (1ull << VIRTIO_F_VERSION_1));
	ck_assert_int_eq(vhost_user_frontend_get_protocol_features(c->fe, &pf),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_protocol_features(
				 c->fe,
				 pf & VHOST_USER_FRONTEND_PROTOCOL_FEATURES),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_owner(c->fe), 0);
	printf("%s: features %#llx, protocol features %#llx (using %#llx)\n",
	       kind, (unsigned long long)f, (unsigned long long)pf,
	       (unsigned long long)vhost_user_frontend_protocol_features(
		       c->fe));
	want = (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |
	       (1ull << VIRTIO_BLK_F_FLUSH);
	c->features = f & want;
	ck_assert_int_eq(vhost_user_frontend_set_features(c->fe, c->features),
			 0);

	ck_assert_int_eq(guest_memory_create_ranges(&r, 1, &p, &c->mem), 0);
	ck_assert_int_eq(vhost_user_frontend_set_mem_table(c->fe, c->mem), 0);
	virtq_driver_layout(QSIZE, RING_BASE, &desc, &avail, &used);
	ck_assert_int_eq(virtq_driver_create(c->mem, QSIZE,
					     1ull << VIRTIO_F_VERSION_1, desc,
					     avail, used, &c->drv),
			 0);
	c->kick = eventfd(0, EFD_CLOEXEC);
	c->call = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(c->kick, 0);
	ck_assert_int_ge(c->call, 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_num(c->fe, 0, QSIZE), 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_base(c->fe, 0, 0), 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_addr(c->fe, 0, desc,
							    avail, used),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_call(c->fe, 0, c->call),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_kick(c->fe, 0, c->kick),
			 0);
	ck_assert_int_eq(vhost_user_frontend_set_vring_enable(c->fe, 0, true),
			 0);
}

static void blk_stop(struct blk_client *c)
{
	int status = 0;

	vhost_user_frontend_destroy(c->fe);
	if (c->pid > 0) {
		kill(c->pid, SIGTERM);
		waitpid(c->pid, &status, 0);
	}
	virtq_driver_destroy(c->drv);
	guest_memory_unref(c->mem);
	close(c->kick);
	close(c->call);
	unlink(c->sock);
	unlink(c->img);
	unlink(c->log);
	rmdir(c->dir);
}

/* One virtio-blk request through the ring; returns the status byte. */
static int blk_request(struct blk_client *c, uint32_t type, uint64_t sector,
		       uint32_t len)
{
	struct virtio_blk_outhdr h = {.type = type, .sector = sector};
	struct virtq_driver_buf bufs[3];
	struct vring_used_elem e;
	unsigned int n = 0;
	uint8_t status = 0xff;
	uint64_t v;

	ck_assert_int_eq(guest_memory_write(c->mem, HDR_GPA, &h, sizeof(h)), 0);
	ck_assert_int_eq(guest_memory_write_u8(c->mem, STATUS_GPA, 0xff), 0);
	bufs[n++] = (struct virtq_driver_buf){HDR_GPA, sizeof(h), 0};
	if (len)
		bufs[n++] = (struct virtq_driver_buf){
			DATA_GPA, len,
			type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0};
	bufs[n++] =
		(struct virtq_driver_buf){STATUS_GPA, 1, VRING_DESC_F_WRITE};
	ck_assert_int_eq(virtq_driver_add(c->drv, bufs, n, NULL), 0);
	ck_assert_int_eq(eventfd_write(c->kick, 1), 0);
	for (;;) {
		struct pollfd p = {.fd = c->call, .events = POLLIN};
		int r = virtq_driver_get_used(c->drv, &e);

		ck_assert_int_ge(r, 0);
		if (r == 1)
			break;
		ck_assert_msg(poll(&p, 1, 10000) == 1, "no completion from %s",
			      program);
		ck_assert_int_eq(eventfd_read(c->call, &v), 0);
	}
	ck_assert_int_eq(guest_memory_read_u8(c->mem, STATUS_GPA, &status), 0);
	return status;
}

START_TEST(test_blk_write_read_verify)
{
	static uint8_t pattern[65536], back[65536];
	const uint64_t sector = 100;
	struct blk_client c;
	uint8_t cfg[60]; /* virtio 1.2's virtio-blk config, as cvmm reads it */
	uint64_t capacity;
	int fd;

	blk_start(&c);
	/* Capacity from the device's config space, in 512-byte sectors. */
	if (vhost_user_frontend_protocol_features(c.fe) &
	    (1ull << VHOST_USER_PROTOCOL_F_CONFIG)) {
		ck_assert_int_eq(vhost_user_frontend_get_config(c.fe, 0, cfg,
								sizeof(cfg)),
				 0);
		memcpy(&capacity, cfg, sizeof(capacity));
		ck_assert_uint_eq(capacity, IMG_SIZE / 512);
	}
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + (i >> 9));
	ck_assert_int_eq(guest_memory_write(c.mem, DATA_GPA, pattern,
					    sizeof(pattern)),
			 0);
	ck_assert_int_eq(blk_request(&c, VIRTIO_BLK_T_OUT, sector,
				     sizeof(pattern)),
			 VIRTIO_BLK_S_OK);
	if (c.features & (1ull << VIRTIO_BLK_F_FLUSH))
		ck_assert_int_eq(blk_request(&c, VIRTIO_BLK_T_FLUSH, 0, 0),
				 VIRTIO_BLK_S_OK);
	ck_assert_int_eq(guest_memory_fill(c.mem, DATA_GPA, 0, sizeof(back)),
			 0);
	ck_assert_int_eq(blk_request(&c, VIRTIO_BLK_T_IN, sector, sizeof(back)),
			 VIRTIO_BLK_S_OK);
	ck_assert_int_eq(guest_memory_read(c.mem, DATA_GPA, back, sizeof(back)),
			 0);
	ck_assert_mem_eq(back, pattern, sizeof(pattern));
	/* The bytes are in the host file where the sector says. */
	memset(back, 0, sizeof(back));
	fd = open(c.img, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, back, sizeof(back), (off_t)sector * 512),
			 (ssize_t)sizeof(back));
	close(fd);
	ck_assert_mem_eq(back, pattern, sizeof(pattern));
	/* Past the end of the disk: an error status, not a hang. */
	ck_assert_int_ne(blk_request(&c, VIRTIO_BLK_T_IN, IMG_SIZE / 512, 512),
			 VIRTIO_BLK_S_OK);

	/* The backend dies: the next request reports it, once. */
	kill(c.pid, SIGKILL);
	waitpid(c.pid, NULL, 0);
	c.pid = -1;
	{
		unsigned int base;

		ck_assert_int_eq(vhost_user_frontend_get_vring_base(c.fe, 0,
								    &base),
				 -ECONNRESET);
	}
	ck_assert(vhost_user_frontend_is_broken(c.fe));
	ck_assert_int_eq(c.disconnects, 1);
	blk_stop(&c);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s qsd|example PROGRAM\n", argv[0]);
		return 2;
	}
	kind = argv[1];
	program = argv[2];
	signal(SIGPIPE, SIG_IGN);
	s = suite_create("vhost-user-blk interop");
	tc = tcase_create(kind);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_blk_write_read_verify);
	suite_add_tcase(s, tc);
	return cvmm_check_run(s, false);
}
