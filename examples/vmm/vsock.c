/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm --vsock cid=N,socket=PATH: a virtio-vsock device whose host side
 * is the unix socket PATH (host programs connect there and write
 * "CONNECT <port>\n") and the sockets PATH_<port> (listeners the user runs
 * for guest connects).  See cvmm.1 and <cvmm/devices/virtio-vsock.h>.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cvmm/devices/virtio-vsock.h>

#include "cvmm.h"

/* Connections the device accepts at once: its poll list (3 queue
 * notifiers, the listener, its timer, one socket per connection) must fit
 * cvmm's per-device poll table. */
#define CVMM_VSOCK_CONNS 64u

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
		} else {
			return vsock_bad("unknown key '%s' (cid, socket)",
					 item);
		}
	}
	if (!vs->cid)
		return vsock_bad("cid=N is required");
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
