/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm --vsock cid=N,socket=PATH: a virtio-vsock device whose host side
 * is the unix socket PATH (host programs connect there and write
 * "CONNECT <port>\n") and the sockets PATH_<port> (listeners the user runs
 * for guest connects).  See cvmm.1 and <cvmm/devices/virtio-vsock.h>.
 * cvmm --vsock cid=N,vhost=on: the kernel's vhost-vsock moves the data;
 * host programs use AF_VSOCK sockets with the guest's CID.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cvmm/devices/virtio-vsock.h>
#ifdef CVMM_HAVE_VHOST
#include <cvmm/devices/virtio-vhost-kernel.h>
#endif

#include "cvmm.h"

/* Connections the device accepts at once: its poll list (3 queue
 * notifiers, the listener, its timer, one socket per connection) must fit
 * cvmm's per-device poll table. */
#define CVMM_VSOCK_CONNS 64u

#ifdef CVMM_HAVE_VHOST
/* vhost=on: the device, for cvmm_vsock_report() (owned by its core). */
static struct virtio_vhost_vsock *vhost_vsock;
#endif

static int vsock_bad(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int vsock_bad(const char *fmt, ...)
{
	va_list ap;

	fputs("cvmm: --vsock: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CVMM_EXIT_USAGE;
}

/* vhost=on: no socket, and /dev/vhost-vsock usable now (a missing
 * module is a usage error, before anything starts). */
static int vsock_vhost_check(const struct cvmm_vsock *vs)
{
	if (vs->socket)
		return vsock_bad("%s", "socket= is not used with vhost=on "
				       "(host programs use AF_VSOCK)");
#ifdef CVMM_HAVE_VHOST
	int fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vsock_bad("vhost=on: cannot open /dev/vhost-vsock: %s "
				 "(modprobe vhost_vsock?)",
				 strerror(errno));
	close(fd);
	return 0;
#else
	return vsock_bad("%s", "vhost=on: cvmm was built without libvhost");
#endif
}

int cvmm_vsock_parse(char *s, struct cvmm_vsock *vs)
{
	struct sockaddr_un sun;
	char dir[sizeof(sun.sun_path)], *item, *save = NULL, *slash, *end;
	struct stat st;

	memset(vs, 0, sizeof(*vs));
	for (item = strtok_r(s, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *v = strchr(item, '=');

		if (!v)
			return vsock_bad("'%s' is not key=value", item);
		*v++ = 0;
		if (!strcmp(item, "cid")) {
			unsigned long long cid;

			errno = 0;
			cid = strtoull(v, &end, 10);
			if (!*v || *end || errno || v[0] == '-' || cid < 3 ||
			    cid > 0xfffffffeull)
				return vsock_bad("cid=%s: a number "
						 "3..4294967294",
						 v);
			vs->cid = cid;
		} else if (!strcmp(item, "socket")) {
			vs->socket = v;
		} else if (!strcmp(item, "vhost")) {
			if (strcmp(v, "on") && strcmp(v, "off"))
				return vsock_bad("vhost=%s: on or off", v);
			vs->vhost = !strcmp(v, "on");
		} else {
			return vsock_bad("unknown key '%s' (cid, socket, "
					 "vhost)",
					 item);
		}
	}
	if (!vs->cid)
		return vsock_bad("cid=N is required");
	if (vs->vhost)
		return vsock_vhost_check(vs);
	if (!vs->socket || !*vs->socket)
		return vsock_bad("socket=PATH is required");
	/* PATH_<port> must fit too (up to 10 digits). */
	if (strlen(vs->socket) + 11 >= sizeof(sun.sun_path))
		return vsock_bad("socket path longer than %zu bytes",
				 sizeof(sun.sun_path) - 12);
	/* Its folder must exist: the device binds there at start. */
	strcpy(dir, vs->socket);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	else
		strcpy(dir, ".");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return vsock_bad("socket=%s: no folder %s", vs->socket, dir);
	if (lstat(vs->socket, &st) == 0 && !S_ISSOCK(st.st_mode))
		return vsock_bad("socket=%s exists and is not a socket",
				 vs->socket);
	return 0;
}

int cvmm_vsock_create(const struct cvmm_vsock *vs, struct virtio_device **dev)
{
#ifdef CVMM_HAVE_VHOST
	if (vs->vhost) {
		struct virtio_vhost_vsock_params vp = {.guest_cid = vs->cid};
		struct virtio_vhost_vsock *vv;
		int err = virtio_vhost_vsock_create(&vp, &vv);

		if (err < 0) /* reported by the caller (-EADDRINUSE: the
			      * CID is another VM's) */
			return err;
		/* The device core owns it (virtio_device_destroy()). */
		*dev = virtio_vhost_vsock_device(vv);
		vhost_vsock = vv;
		return 0;
	}
#endif
	struct virtio_vsock_params p = {
		.guest_cid = vs->cid,
		.uds_path = vs->socket,
		.max_connections = CVMM_VSOCK_CONNS,
	};
	struct virtio_vsock *v;
	int r = virtio_vsock_create(&p, &v);

	if (r < 0)
		return r;
	/* The device core owns the vsock state: virtio_device_destroy()
	 * frees both (what virtio_vsock_destroy() does). */
	*dev = virtio_vsock_device(v);
	return 0;
}

void cvmm_vsock_report(void)
{
#ifdef CVMM_HAVE_VHOST
	uint64_t kicks, calls;

	if (!vhost_vsock)
		return;
	virtio_vhost_vsock_relay_counts(vhost_vsock, &kicks, &calls);
	fprintf(stderr,
		"cvmm: vhost-vsock: %llu guest notifies and %llu kernel calls "
		"relayed by cvmm threads (the rest went through the queues' "
		"ioeventfds and vector irqfds)\n",
		(unsigned long long)kicks, (unsigned long long)calls);
#endif
}
