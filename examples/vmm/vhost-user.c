/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm --disk vhost_user=SOCKET: a virtio-blk disk whose queues a
 * vhost-user backend serves (qemu-storage-daemon --export
 * type=vhost-user-blk, c-vmm's examples/vhost-user-blk), and
 * cvmm --fs tag=NAME,socket=PATH: a virtio-fs device on a vhost-user-fs
 * backend (QEMU's virtiofsd), both through libdevices' generic vhost-user
 * device.  Guest RAM is memfd-backed (cvmm.c), so it can be handed to the
 * backend.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cvmm.h"

/* virtio-fs: tag[36] (virtio 1.2, 5.11.4). */
#define FS_TAG_MAX 36u

static int fs_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fs_bad(const char *fmt, ...)
{
	va_list ap;

	fputs("cvmm: --fs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CVMM_EXIT_USAGE;
}

int cvmm_fs_parse(char *s, struct cvmm_fs *fs)
{
	char *item, *save = NULL, *end;
	struct stat st;
	size_t n;

	memset(fs, 0, sizeof(*fs));
	for (item = strtok_r(s, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *v = strchr(item, '=');

		if (!v)
			return fs_bad("'%s' is not key=value", item);
		*v++ = 0;
		if (!strcmp(item, "tag")) {
			fs->tag = v;
		} else if (!strcmp(item, "socket")) {
			fs->socket = v;
		} else if (!strcmp(item, "queue_size")) {
			unsigned long q;

			errno = 0;
			q = strtoul(v, &end, 10);
			if (*v < '0' || *v > '9' || *end || errno || q < 16 ||
			    q > 1024 || (q & (q - 1)))
				return fs_bad("queue_size=%s: a power of two "
					      "16..1024",
					      v);
			fs->queue_size = (unsigned)q;
		} else {
			return fs_bad("unknown key '%s' (tag, socket, "
				      "queue_size)",
				      item);
		}
	}
	if (!fs->tag || !*fs->tag)
		return fs_bad("tag=NAME is required");
	n = strlen(fs->tag);
	if (n > FS_TAG_MAX)
		return fs_bad("tag=%s: longer than %u bytes", fs->tag,
			      FS_TAG_MAX);
	for (size_t i = 0; i < n; i++)
		if (fs->tag[i] < 0x21 || fs->tag[i] > 0x7e)
			return fs_bad("tag=%s: printable ASCII without spaces "
				      "only",
				      fs->tag);
	if (!fs->socket || !*fs->socket)
		return fs_bad("socket=PATH is required");
	if (stat(fs->socket, &st) < 0)
		return fs_bad("socket=%s: %s", fs->socket, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return fs_bad("socket=%s: not a unix socket", fs->socket);
	return 0;
}

#ifdef CVMM_HAVE_VHOST
#include <linux/virtio_ids.h>

#include <cvmm/devices/virtio-vhost-user.h>

/* The vhost-user devices and their names, for cvmm_vhost_user_report()
 * (owned by their device cores). */
#define REPORT_MAX 16
static struct {
	struct virtio_vhost_user *vu;
	const char *name;
} reported[REPORT_MAX];
static unsigned nreported;

static void remember(struct virtio_vhost_user *vu, const char *name)
{
	if (nreported < REPORT_MAX) {
		reported[nreported].vu = vu;
		reported[nreported++].name = name;
	}
}

void cvmm_vhost_user_report(void)
{
	for (unsigned i = 0; i < nreported; i++) {
		uint64_t kicks, calls;

		virtio_vhost_user_relay_counts(reported[i].vu, &kicks, &calls);
		fprintf(stderr,
			"cvmm: vhost-user %s: %llu guest notifies and %llu "
			"backend calls relayed by cvmm threads (the rest went "
			"through the queues' ioeventfds and vector irqfds)\n",
			reported[i].name, (unsigned long long)kicks,
			(unsigned long long)calls);
	}
}

int cvmm_vhost_user_disk(const struct cvmm_disk *d, struct virtio_device **dev)
{
	/* The virtio 1.2 virtio-blk config space (capacity .. unused1), 60
	 * bytes: newer uapi headers append the zoned fields (72 bytes),
	 * which backends built on older ones (QEMU 7.2's
	 * qemu-storage-daemon) refuse to read. */
	struct virtio_vhost_user_options o = {
		.device_id = VIRTIO_ID_BLOCK,
		.config_size = 60,
	};
	struct virtio_vhost_user *vu = NULL;
	int r = virtio_vhost_user_create(d->vhost_user, &o, &vu);

	if (r < 0) {
		fprintf(stderr, "cvmm: --disk vhost_user=%s: %s\n",
			d->vhost_user, strerror(-r));
		return r;
	}
	/* The device owns @vu: virtio_device_destroy() frees both. */
	*dev = virtio_vhost_user_device(vu);
	remember(vu, d->vhost_user);
	return 0;
}

/* One request queue (QEMU 7.2's virtiofsd serves one); the hiprio queue
 * is queue 0.  The configuration space is ours: virtiofsd has no CONFIG
 * protocol feature. */
int cvmm_fs_create(const struct cvmm_fs *fs, struct virtio_device **dev)
{
	uint8_t cfg[VIRTIO_VHOST_USER_FS_CONFIG_SIZE];
	struct virtio_vhost_user_options o = {
		.device_id = VIRTIO_ID_FS,
		.num_queues = 2,
		.queue_max_size = fs->queue_size ? fs->queue_size : 128,
		.config_size = sizeof(cfg),
		.config = cfg,
	};
	struct virtio_vhost_user *vu = NULL;
	int r = virtio_vhost_user_fs_config(fs->tag, 1, cfg);

	if (r == 0)
		r = virtio_vhost_user_create(fs->socket, &o, &vu);
	if (r < 0) {
		fprintf(stderr, "cvmm: --fs socket=%s: %s\n", fs->socket,
			strerror(-r));
		return r;
	}
	*dev = virtio_vhost_user_device(vu);
	remember(vu, fs->socket);
	return 0;
}
#else
void cvmm_vhost_user_report(void)
{
}

int cvmm_vhost_user_disk(const struct cvmm_disk *d, struct virtio_device **dev)
{
	(void)dev;
	fprintf(stderr,
		"cvmm: --disk vhost_user=%s: cvmm was built without "
		"libvhost\n",
		d->vhost_user);
	return -ENOTSUP;
}

int cvmm_fs_create(const struct cvmm_fs *fs, struct virtio_device **dev)
{
	(void)dev;
	fprintf(stderr,
		"cvmm: --fs socket=%s: cvmm was built without libvhost\n",
		fs->socket);
	return -ENOTSUP;
}
#endif
