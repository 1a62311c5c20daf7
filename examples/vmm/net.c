/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm --net: a virtio-net device on a tap (tap=NAME[,mac=..][,queues=N])
 * or on user networking (user[,hostfwd=...][,mac=..]).  The value is
 * checked when the command line is parsed (a bad one is a usage error);
 * the backend is opened when the VM is set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cvmm/devices/virtio-net.h>
#ifdef CVMM_HAVE_VHOST
#include <cvmm/devices/virtio-vhost-kernel.h>
#endif

#include "cvmm.h"

/* The default MAC: QEMU's locally administered prefix. */
static const uint8_t default_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* One line naming the flag, exit status 2 (as args.c's bad()). */
static int net_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int net_bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cvmm: --net: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CVMM_EXIT_USAGE;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &end) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	if (mac[0] & 1) /* multicast: not a station address */
		return -EINVAL;
	return 0;
}

/* vhost=on: tap with one queue pair, and /dev/vhost-net usable now (a
 * missing module is a usage error, before anything starts).  Returns -1
 * or an exit status. */
static int cvmm_net_vhost_check(const struct cvmm_net *n)
{
	if (n->user)
		return net_bad("%s", "vhost=on is for tap= only");
	if (n->queues > 1)
		return net_bad("%s", "vhost=on takes one queue pair "
				     "(queues=1)");
#ifdef CVMM_HAVE_VHOST
	int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return net_bad("vhost=on: cannot open /dev/vhost-net: %s "
			       "(modprobe vhost_net?)",
			       strerror(errno));
	close(fd);
	return -1;
#else
	return net_bad("%s", "vhost=on: cvmm was built without libvhost");
#endif
}

int cvmm_net_parse(char *s, struct cvmm_net *n)
{
	char *save = NULL, *item;
	bool first = true;

	memset(n, 0, sizeof(*n));
	memcpy(n->mac, default_mac, 6);
	n->queues = 1;
	for (item = strtok_r(s, ",", &save); item;
	     item = strtok_r(NULL, ",", &save), first = false) {
		char *eq = strchr(item, '=');

		if (first && !strcmp(item, "user")) {
			n->user = true;
			continue;
		}
		if (!eq)
			return net_bad("'%s' is not key=value", item);
		*eq = 0;
		if (first && !strcmp(item, "tap")) {
			if (!eq[1] || strlen(eq + 1) >= IFNAMSIZ)
				return net_bad("tap=%s: 1..15 characters",
					       eq + 1);
			snprintf(n->tap, sizeof(n->tap), "%s", eq + 1);
		} else if (!strcmp(item, "mac")) {
			if (parse_mac(eq + 1, n->mac))
				return net_bad("mac=%s: not a unicast "
					       "xx:xx:xx:xx:xx:xx",
					       eq + 1);
		} else if (!strcmp(item, "queues")) {
			char *e;
			unsigned long q = strtoul(eq + 1, &e, 10);

			if (!eq[1] || *e || q < 1 || q > CVMM_NET_QUEUES_MAX)
				return net_bad("queues=%s: 1..%u", eq + 1,
					       CVMM_NET_QUEUES_MAX);
			n->queues = (unsigned)q;
		} else if (!strcmp(item, "hostfwd")) {
			struct virtio_net_user_fwd f;

			if (n->nfwds == CVMM_NET_FWDS_MAX)
				return net_bad("%s: at most 8 hostfwd", "hostfw"
									"d");
			if (virtio_net_user_fwd_parse(eq + 1, &f))
				return net_bad("hostfwd=%s: not "
					       "[tcp|udp]:[ADDR]:PORT-[ADDR]:"
					       "PORT",
					       eq + 1);
			n->fwds[n->nfwds++] = eq + 1;
		} else if (!strcmp(item, "vhost")) {
			if (strcmp(eq + 1, "on") && strcmp(eq + 1, "off"))
				return net_bad("vhost=%s: on or off", eq + 1);
			n->vhost = !strcmp(eq + 1, "on");
		} else {
			return net_bad("unknown key '%s' (tap=, user, mac=, "
				       "queues=, hostfwd=, vhost=)",
				       item);
		}
	}
	if (!n->user && !n->tap[0])
		return net_bad("%s", "tap=NAME or user first");
	if (n->user && n->queues > 1)
		return net_bad("%s", "queues= is for tap= only");
	if (!n->user && n->nfwds)
		return net_bad("%s", "hostfwd= is for user only");
	if (n->vhost) {
		int r = cvmm_net_vhost_check(n);

		if (r >= 0)
			return r;
	}
	n->set = true;
	return -1;
}

int cvmm_net_create(const struct cvmm_net *n, struct virtio_device **out)
{
	struct virtio_net_options o = {0};
	const struct virtio_net_backend_ops *ops;
	struct virtio_net *net;
	void *be;
	int r;

	if (n->user) {
		struct virtio_net_user_fwd f[CVMM_NET_FWDS_MAX];
		struct virtio_net_user_config c = {.fwds = f,
						   .nfwds = n->nfwds};

		for (unsigned i = 0; i < n->nfwds; i++)
			virtio_net_user_fwd_parse(n->fwds[i], &f[i]);
		r = virtio_net_backend_user_create(&c, &ops, &be);
		if (r < 0) {
			fprintf(stderr, "cvmm: --net user: %s\n",
				r == -EOPNOTSUPP ? "cvmm was built without "
						   "libslirp"
						 : strerror(-r));
			return r;
		}
	} else {
		r = virtio_net_backend_tap_open(n->tap, n->queues, &ops, &be);
		if (r < 0) {
			fprintf(stderr, "cvmm: --net tap=%s: %s\n", n->tap,
				strerror(-r));
			return r;
		}
#ifdef CVMM_HAVE_VHOST
		if (n->vhost) { /* the rings on /dev/vhost-net */
			const struct virtio_net_backend_ops *vops;
			void *vbe;

			r = virtio_net_backend_vhost_create(NULL, ops, be,
							    &vops, &vbe);
			if (r < 0) {
				if (ops->destroy)
					ops->destroy(be);
				fprintf(stderr,
					"cvmm: --net tap=%s,vhost=on: "
					"/dev/vhost-net: %s\n",
					n->tap, strerror(-r));
				return r;
			}
			ops = vops;
			be = vbe;
		}
#endif
	}
	memcpy(o.mac, n->mac, 6);
	o.max_pairs = n->queues;
	r = virtio_net_create(ops, be, &o, &net);
	if (r < 0) {
		if (ops->destroy)
			ops->destroy(be);
		fprintf(stderr, "cvmm: --net: %s\n", strerror(-r));
		return r;
	}
	*out = virtio_net_device(net);
	return 0;
}
