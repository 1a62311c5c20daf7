/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices' vhost-user device as a virtio-fs device (the configuration
 * space cvmm --fs builds) against QEMU's C virtiofsd, no KVM: the harness
 * plays the guest driver through virtio-pci in memfd guest memory and
 * sends FUSE requests on the request queue (queue 1): INIT, LOOKUP, OPEN
 * and READ of a file the test wrote into the shared directory (its bytes
 * must come back), CREATE and WRITE of a new file (the test then finds it
 * in the directory), RELEASE.  Then virtiofsd is killed and the device
 * must go to NEEDS_RESET.
 *
 * Usage: test-virtio-fs-virtiofsd VIRTIOFSD   (root: virtiofsd needs it;
 * otherwise the test is skipped)
 */
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/virtio_ids.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cvmm/devices/virtio-vhost-user.h>

#include "cvmm-check.h"
#include "test-virtio-blk-harness.h"

#define REQ_GPA	  (BH_DATA_BASE)
#define REPLY_GPA (BH_DATA_BASE + 0x100000)
#define REPLY_MAX 0x20000u
#define HOST_SIZE 10000u /* not a multiple of a page */

static const char *virtiofsd;

struct fsd {
	char dir[64], share[96], sock[96], log[96];
	pid_t pid;
	uint64_t unique;
};

static void fsd_start(struct fsd *f)
{
	char src[128], path[160];
	uint8_t data[HOST_SIZE];
	int fd;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/cvmm-vfsd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->share, sizeof(f->share), "%s/share", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/fs.sock", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/virtiofsd.log", f->dir);
	ck_assert_int_eq(mkdir(f->share, 0755), 0);
	for (unsigned i = 0; i < HOST_SIZE; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	snprintf(path, sizeof(path), "%s/host.bin", f->share);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, HOST_SIZE), HOST_SIZE);
	close(fd);
	snprintf(src, sizeof(src), "source=%s", f->share);
	f->pid = fork();
	ck_assert_int_ge(f->pid, 0);
	if (f->pid == 0) {
		char sp[128];

		fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		snprintf(sp, sizeof(sp), "--socket-path=%s", f->sock);
		/* chroot: no namespaces needed (containers, CI). */
		execl(virtiofsd, virtiofsd, sp, "-o", src, "-o", "cache=none",
		      "-o", "sandbox=chroot", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		struct stat st;

		if (stat(f->sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return;
		ck_assert_msg(waitpid(f->pid, NULL, WNOHANG) == 0,
			      "%s exited early (see %s)", virtiofsd, f->log);
		usleep(50000);
	}
	ck_abort_msg("no socket from %s (see %s)", virtiofsd, f->log);
}

static void fsd_stop(struct fsd *f)
{
	char path[160];

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	snprintf(path, sizeof(path), "%s/host.bin", f->share);
	unlink(path);
	snprintf(path, sizeof(path), "%s/guest.bin", f->share);
	unlink(path);
	rmdir(f->share);
	unlink(f->sock);
	unlink(f->log);
	rmdir(f->dir);
}

/* One FUSE request on the request queue: header + @arg (+ @arg2) in one
 * readable buffer, the reply in one writable buffer.  Returns the reply's
 * error (0 or -errno) and copies its payload to @out (@out_len bytes at
 * most; *@got: how many came). */
static int fuse_call(struct bh *h, struct fsd *f, uint32_t opcode,
		     uint64_t nodeid, const void *arg, uint32_t arg_len,
		     const void *arg2, uint32_t arg2_len, void *out,
		     uint32_t out_len, uint32_t *got)
{
	struct fuse_in_header in = {0};
	struct fuse_out_header oh;
	struct virtq_driver_buf b[2];
	struct vring_used_elem e;
	uint32_t req_len = sizeof(in) + arg_len + arg2_len;

	in.len = req_len;
	in.opcode = opcode;
	in.unique = ++f->unique;
	in.nodeid = nodeid;
	memcpy(h->host + REQ_GPA, &in, sizeof(in));
	if (arg_len)
		memcpy(h->host + REQ_GPA + sizeof(in), arg, arg_len);
	if (arg2_len)
		memcpy(h->host + REQ_GPA + sizeof(in) + arg_len, arg2,
		       arg2_len);
	memset(h->host + REPLY_GPA, 0xee, sizeof(oh));
	b[0] = (struct virtq_driver_buf){REQ_GPA, req_len, 0};
	b[1] = (struct virtq_driver_buf){REPLY_GPA, REPLY_MAX,
					 VRING_DESC_F_WRITE};
	ck_assert_int_eq(virtq_driver_add(h->drv[1], b, 2, NULL), 0);
	bh_notify(h, 1);
	ck_assert_int_eq(bh_wait_used(h, 1, &e, 1, 10000), 1);
	memcpy(&oh, h->host + REPLY_GPA, sizeof(oh));
	ck_assert_uint_eq(oh.unique, f->unique);
	ck_assert_uint_ge(oh.len, sizeof(oh));
	ck_assert_uint_le(oh.len, REPLY_MAX);
	ck_assert_uint_ge(e.len, oh.len);
	if (got)
		*got = oh.len - (uint32_t)sizeof(oh);
	if (out && oh.error == 0)
		memcpy(out, h->host + REPLY_GPA + sizeof(oh),
		       oh.len - sizeof(oh) < out_len ? oh.len - sizeof(oh)
						     : out_len);
	return oh.error;
}

START_TEST(test_virtiofsd_rw)
{
	uint8_t cfg[VIRTIO_VHOST_USER_FS_CONFIG_SIZE];
	struct virtio_vhost_user_options o = {
		.device_id = VIRTIO_ID_FS,
		.num_queues = 2,
		.queue_max_size = 128,
		.config_size = sizeof(cfg),
		.config = cfg,
		.reply_timeout_ms = 10000,
	};
	struct virtio_vhost_user *vu = NULL;
	struct fuse_init_in ii = {.major = FUSE_KERNEL_VERSION,
				  .minor = FUSE_KERNEL_MINOR_VERSION};
	struct fuse_init_out io;
	struct fuse_entry_out eo;
	struct fuse_open_in oi = {.flags = O_RDONLY};
	struct fuse_open_out oo;
	struct fuse_read_in ri = {0};
	struct fuse_release_in rel = {0};
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} co;
	struct fuse_create_in ci = {.flags = O_WRONLY | O_CREAT | O_EXCL,
				    .mode = S_IFREG | 0644};
	struct fuse_write_in wi = {0};
	struct fuse_write_out wo;
	uint8_t buf[HOST_SIZE], wdata[5000];
	char path[160];
	uint32_t got;
	struct fsd f;
	struct bh h;
	int fd;

	if (geteuid() != 0)
		return; /* main() skips the whole suite */
	fsd_start(&f);
	ck_assert_int_eq(virtio_vhost_user_fs_config("labfs", 1, cfg), 0);
	ck_assert_int_eq(virtio_vhost_user_create(f.sock, &o, &vu), 0);
	ck_assert_int_eq(bh_init_dev(&h, BH_PCI, virtio_vhost_user_device(vu),
				     64, 0, GUEST_REGION_MEMFD),
			 0);
	ck_assert_uint_eq(h.nq, 2);
	/* What the guest's virtiofs driver reads: the tag, 1 queue. */
	ck_assert_uint_eq(bh_config_rd(&h, 0, 4), 0x6662616c); /* "labf" */
	ck_assert_uint_eq(bh_config_rd(&h, 4, 1), 's');
	ck_assert_uint_eq(bh_config_rd(&h, 5, 1), 0);
	ck_assert_uint_eq(bh_config_rd(&h, 36, 4), 1);

	ck_assert_int_eq(fuse_call(&h, &f, FUSE_INIT, 0, &ii, sizeof(ii), NULL,
				   0, &io, sizeof(io), &got),
			 0);
	ck_assert_uint_ge(got, 24);
	ck_assert_uint_eq(io.major, FUSE_KERNEL_VERSION);

	ck_assert_int_eq(fuse_call(&h, &f, FUSE_LOOKUP, FUSE_ROOT_ID,
				   "host.bin", 9, NULL, 0, &eo, sizeof(eo),
				   NULL),
			 0);
	ck_assert_uint_eq(eo.attr.size, HOST_SIZE);
	ck_assert_int_eq(fuse_call(&h, &f, FUSE_LOOKUP, FUSE_ROOT_ID, "missing",
				   8, NULL, 0, NULL, 0, NULL),
			 -ENOENT);
	ck_assert_int_eq(fuse_call(&h, &f, FUSE_OPEN, eo.nodeid, &oi,
				   sizeof(oi), NULL, 0, &oo, sizeof(oo), NULL),
			 0);
	ri.fh = oo.fh;
	ri.size = 16384;
	ck_assert_int_eq(fuse_call(&h, &f, FUSE_READ, eo.nodeid, &ri,
				   sizeof(ri), NULL, 0, buf, sizeof(buf), &got),
			 0);
	ck_assert_uint_eq(got, HOST_SIZE);
	for (unsigned i = 0; i < HOST_SIZE; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)(i * 7 + 3));
	rel.fh = oo.fh;
	ck_assert_int_eq(fuse_call(&h, &f, FUSE_RELEASE, eo.nodeid, &rel,
				   sizeof(rel), NULL, 0, NULL, 0, NULL),
			 0);

	ck_assert_int_eq(fuse_call(&h, &f, FUSE_CREATE, FUSE_ROOT_ID, &ci,
				   sizeof(ci), "guest.bin", 10, &co, sizeof(co),
				   NULL),
			 0);
	for (unsigned i = 0; i < sizeof(wdata); i++)
		wdata[i] = (uint8_t)(i * 11 + 5);
	wi.fh = co.o.fh;
	wi.size = sizeof(wdata);
	ck_assert_int_eq(fuse_call(&h, &f, FUSE_WRITE, co.e.nodeid, &wi,
				   sizeof(wi), wdata, sizeof(wdata), &wo,
				   sizeof(wo), NULL),
			 0);
	ck_assert_uint_eq(wo.size, sizeof(wdata));
	rel.fh = co.o.fh;
	ck_assert_int_eq(fuse_call(&h, &f, FUSE_RELEASE, co.e.nodeid, &rel,
				   sizeof(rel), NULL, 0, NULL, 0, NULL),
			 0);
	snprintf(path, sizeof(path), "%s/guest.bin", f.share);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), sizeof(wdata));
	close(fd);
	ck_assert_mem_eq(buf, wdata, sizeof(wdata));

	/* virtiofsd dies: NEEDS_RESET, cvmm would keep running. */
	kill(f.pid, SIGKILL);
	waitpid(f.pid, NULL, 0);
	f.pid = 0;
	for (int i = 0; i < 200 && virtio_vhost_user_connected(vu); i++)
		bh_poll(&h, 20);
	ck_assert(!virtio_vhost_user_connected(vu));
	ck_assert(bh_status(&h) & VIRTIO_CONFIG_S_NEEDS_RESET);
	bh_fini(&h);
	virtio_vhost_user_destroy(vu);
	fsd_stop(&f);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("virtio-fs-virtiofsd");
	TCase *tc = tcase_create("virtiofsd");

	if (argc != 2) {
		fprintf(stderr, "usage: %s VIRTIOFSD\n", argv[0]);
		return 2;
	}
	virtiofsd = argv[1];
	if (geteuid() != 0 || access(virtiofsd, X_OK) != 0) {
		printf("SKIP: virtiofsd needs root and %s\n", virtiofsd);
		return CVMM_EXIT_SKIP;
	}
	tcase_add_test(tc, test_virtiofsd_rw);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return cvmm_check_run(s, false);
}
