/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The user-network backend of virtio-net on libslirp: NAT, DHCP, DNS and
 * host port forwards inside the VMM process.  libslirp's sockets and
 * timers are folded into one epoll fd (the backend's aux fd), so the VMM
 * polls it like any device fd; frames libslirp sends to the guest wait in
 * a bounded queue signalled by an eventfd (the rx fd).
 *
 * Built only with libslirp's headers (CVMM_HAVE_LIBSLIRP); the library is
 * loaded when the first backend is created.  Without either the create
 * function returns -EOPNOTSUPP.  The hostfwd parser is always built.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/devices/virtio-net.h>

/* Parse "[ADDR]:PORT" from @s up to @end into @a / @port. */
static int parse_addr_port(const char *s, const char *end, struct in_addr *a,
			   uint16_t *port)
{
	const char *colon = NULL;
	char buf[32];
	unsigned long v;
	char *e;
	size_t alen;

	for (const char *p = s; p < end; p++)
		if (*p == ':')
			colon = p;
	if (!colon || colon + 1 >= end)
		return -EINVAL;
	alen = (size_t)(colon - s);
	a->s_addr = 0;
	if (alen) {
		if (alen >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, alen);
		buf[alen] = 0;
		if (inet_pton(AF_INET, buf, a) != 1)
			return -EINVAL;
	}
	if ((size_t)(end - colon - 1) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, colon + 1, (size_t)(end - colon - 1));
	buf[end - colon - 1] = 0;
	if (buf[0] < '0' || buf[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(buf, &e, 10);
	if (errno || *e || v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int virtio_net_user_fwd_parse(const char *spec, struct virtio_net_user_fwd *out)
{
	struct virtio_net_user_fwd f = {0};
	const char *p, *dash;

	if (!spec || !out)
		return -EINVAL;
	p = spec;
	if (!strncmp(p, "tcp:", 4)) {
		p += 4;
	} else if (!strncmp(p, "udp:", 4)) {
		f.udp = true;
		p += 4;
	} else if (*p == ':') {
		p += 1;
	} else {
		return -EINVAL;
	}
	dash = strchr(p, '-');
	if (!dash || strchr(dash + 1, '-'))
		return -EINVAL;
	if (parse_addr_port(p, dash, &f.host_addr, &f.host_port) ||
	    parse_addr_port(dash + 1, dash + 1 + strlen(dash + 1),
			    &f.guest_addr, &f.guest_port))
		return -EINVAL;
	*out = f;
	return 0;
}

#ifndef CVMM_HAVE_LIBSLIRP

int virtio_net_backend_user_create(const struct virtio_net_user_config *cfg,
				   const struct virtio_net_backend_ops **ops,
				   void **backend)
{
	(void)cfg;
	(void)ops;
	(void)backend;
	return -EOPNOTSUPP;
}

#else

#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>
#include <pthread.h>

#include <slirp/libslirp.h>

/*
 * libslirp is loaded at run time (dlopen of libslirp.so.0), so that
 * libdevices has no link-time dependency on it: static consumers and
 * static builds need no libslirp.a (Debian ships none), and a VMM without
 * libslirp installed gets -EOPNOTSUPP from this backend only.
 */
static struct {
	bool ok;
	Slirp *(*new_)(const SlirpConfig *, const SlirpCb *, void *);
	void (*cleanup)(Slirp *);
	void (*fill)(Slirp *, uint32_t *, SlirpAddPollCb, void *);
	void (*poll)(Slirp *, int, SlirpGetREventsCb, void *);
	void (*input)(Slirp *, const uint8_t *, int);
	int (*add_hostfwd)(Slirp *, int, struct in_addr, int, struct in_addr,
			   int);
} S;
static pthread_once_t slirp_once = PTHREAD_ONCE_INIT;

static void slirp_load(void)
{
	void *h = dlopen("libslirp.so.0", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return;
	/* POSIX: a function pointer survives the round trip through void * */
	S.new_ = (Slirp * (*)(const SlirpConfig *, const SlirpCb *, void *))
		dlsym(h, "slirp_new");
	S.cleanup = (void (*)(Slirp *))dlsym(h, "slirp_cleanup");
	S.fill = (void (*)(Slirp *, uint32_t *, SlirpAddPollCb,
			   void *))dlsym(h, "slirp_pollfds_fill");
	S.poll = (void (*)(Slirp *, int, SlirpGetREventsCb,
			   void *))dlsym(h, "slirp_pollfds_poll");
	S.input = (void (*)(Slirp *, const uint8_t *, int))dlsym(h, "slirp_"
								    "input");
	S.add_hostfwd = (int (*)(Slirp *, int, struct in_addr, int,
				 struct in_addr, int))dlsym(h, "slirp_add_"
							       "hostfwd");
	S.ok = S.new_ && S.cleanup && S.fill && S.poll && S.input &&
	       S.add_hostfwd;
	/* the library stays loaded for the life of the process */
}

#define RXQ_MAX	   256u	 /* frames waiting for the guest */
#define FDS_MAX	   1024u /* libslirp sockets followed */
#define TIMERS_MAX 16u

struct user_timer {
	bool used;
	SlirpTimerCb cb;
	void *opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct user_frame {
	uint8_t *data;
	uint32_t len;
};

struct user_be {
	Slirp *slirp;
	int epfd;     /* the aux fd */
	int rx_efd;   /* readable while rxq is not empty */
	int kick_efd; /* in epfd: "run libslirp's poll" */
	int timer_fd; /* in epfd */
	struct user_frame rxq[RXQ_MAX];
	uint32_t rx_head, rx_count;
	uint64_t rx_dropped;
	struct user_timer timers[TIMERS_MAX];
	/* libslirp's poll set as last filled, and what epfd holds */
	struct pollfd pfds[FDS_MAX];
	uint32_t npfds;
	int ep_fd[FDS_MAX];
	uint32_t ep_ev[FDS_MAX];
	uint32_t nep;
	uint8_t *txbuf; /* a frame from the guest, contiguous for slirp */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void efd_set(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* saturated: already readable */
	}
}

static void efd_clear(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* already clear */
	}
}

/* ------------------------------------------------- libslirp callbacks */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user_be *u = opaque;
	struct user_frame *f;

	if (u->rx_count == RXQ_MAX || len == 0 || len > 65536) {
		u->rx_dropped++;
		return (ssize_t)len; /* TCP retransmits */
	}
	f = &u->rxq[(u->rx_head + u->rx_count) % RXQ_MAX];
	f->data = malloc(len);
	if (!f->data) {
		u->rx_dropped++;
		return (ssize_t)len;
	}
	memcpy(f->data, buf, len);
	f->len = (uint32_t)len;
	if (u->rx_count++ == 0)
		efd_set(u->rx_efd);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)msg;
	(void)opaque;
}

static int64_t cb_clock(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct user_be *u = opaque;

	for (unsigned i = 0; i < TIMERS_MAX; i++) {
		if (!u->timers[i].used) {
			u->timers[i] = (struct user_timer){.used = true,
							   .cb = cb,
							   .opaque = cb_opaque,
							   .expire_ms = -1};
			return &u->timers[i];
		}
	}
	return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct user_timer *t = timer;

	(void)opaque;
	if (t)
		t->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct user_timer *t = timer;
	struct user_be *u = opaque;

	if (!t)
		return;
	t->expire_ms = expire_ms;
	efd_set(u->kick_efd); /* re-arm the timerfd on the next round */
}

static void cb_register(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_notify(void *opaque)
{
	efd_set(((struct user_be *)opaque)->kick_efd);
}

static const SlirpCb user_cbs = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register,
	.unregister_poll_fd = cb_register,
	.notify = cb_notify,
};

/* ------------------------------------------------------ the poll set */

static int add_poll(int fd, int events, void *opaque)
{
	struct user_be *u = opaque;
	short ev = 0;

	if (u->npfds == FDS_MAX)
		return -1; /* libslirp then ignores the socket this round */
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	u->pfds[u->npfds] = (struct pollfd){.fd = fd, .events = ev};
	return (int)u->npfds++;
}

static int get_revents(int idx, void *opaque)
{
	struct user_be *u = opaque;
	short r;
	int ev = 0;

	if (idx < 0 || (uint32_t)idx >= u->npfds)
		return 0;
	r = u->pfds[idx].revents;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & POLLERR)
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

/* Make epfd hold exactly the sockets of the last fill (plus ours). */
static void sync_epoll(struct user_be *u)
{
	uint32_t keep = 0;

	/* drop or update what is there */
	for (uint32_t i = 0; i < u->nep; i++) {
		uint32_t ev = 0;
		bool found = false;

		for (uint32_t j = 0; j < u->npfds; j++) {
			if (u->pfds[j].fd == u->ep_fd[i]) {
				ev |= (uint32_t)u->pfds[j].events;
				found = true;
			}
		}
		if (!found) {
			epoll_ctl(u->epfd, EPOLL_CTL_DEL, u->ep_fd[i], NULL);
			continue;
		}
		if (ev != u->ep_ev[i]) {
			struct epoll_event e = {.events = ev,
						.data.fd = u->ep_fd[i]};

			epoll_ctl(u->epfd, EPOLL_CTL_MOD, u->ep_fd[i], &e);
		}
		u->ep_fd[keep] = u->ep_fd[i];
		u->ep_ev[keep] = ev;
		keep++;
	}
	u->nep = keep;
	/* add the new ones */
	for (uint32_t j = 0; j < u->npfds; j++) {
		bool have = false;
		uint32_t ev = 0;
		struct epoll_event e;

		for (uint32_t i = 0; i < u->nep; i++)
			if (u->ep_fd[i] == u->pfds[j].fd)
				have = true;
		if (have || u->nep == FDS_MAX)
			continue;
		for (uint32_t k = j; k < u->npfds; k++)
			if (u->pfds[k].fd == u->pfds[j].fd)
				ev |= (uint32_t)u->pfds[k].events;
		e = (struct epoll_event){.events = ev,
					 .data.fd = u->pfds[j].fd};
		if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->pfds[j].fd, &e) == 0) {
			u->ep_fd[u->nep] = u->pfds[j].fd;
			u->ep_ev[u->nep] = ev;
			u->nep++;
		}
	}
}

/* Arm the timerfd for the earliest of libslirp's timers and @timeout_ms
 * (its poll timeout; UINT32_MAX none). */
static void arm_timer(struct user_be *u, uint32_t timeout_ms)
{
	int64_t now = now_ns() / 1000000, next = -1;
	struct itimerspec its = {0};

	for (unsigned i = 0; i < TIMERS_MAX; i++) {
		struct user_timer *t = &u->timers[i];

		if (t->used && t->expire_ms >= 0 &&
		    (next < 0 || t->expire_ms < next))
			next = t->expire_ms;
	}
	if (timeout_ms != UINT32_MAX &&
	    (next < 0 || now + (int64_t)timeout_ms < next))
		next = now + (int64_t)timeout_ms;
	if (next >= 0) {
		int64_t d = next - now;

		if (d < 1)
			d = 1;
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(u->timer_fd, 0, &its, NULL);
}

static void run_timers(struct user_be *u)
{
	int64_t now = now_ns() / 1000000;

	for (unsigned i = 0; i < TIMERS_MAX; i++) {
		struct user_timer *t = &u->timers[i];

		if (t->used && t->expire_ms >= 0 && t->expire_ms <= now) {
			t->expire_ms = -1;
			t->cb(t->opaque);
		}
	}
}

/* One round of libslirp's loop: timers, sockets, then the new set. */
static void user_round(struct user_be *u)
{
	uint32_t timeout = UINT32_MAX;

	efd_clear(u->kick_efd);
	{
		uint64_t ticks;

		if (read(u->timer_fd, &ticks, sizeof(ticks)) < 0) {
			/* not expired */
		}
	}
	run_timers(u);
	u->npfds = 0;
	S.fill(u->slirp, &timeout, add_poll, u);
	if (u->npfds && poll(u->pfds, u->npfds, 0) < 0)
		for (uint32_t i = 0; i < u->npfds; i++)
			u->pfds[i].revents = 0;
	S.poll(u->slirp, 0, get_revents, u);
	/* sockets may have come or gone: follow the new set */
	u->npfds = 0;
	timeout = UINT32_MAX;
	S.fill(u->slirp, &timeout, add_poll, u);
	sync_epoll(u);
	arm_timer(u, timeout);
}

/* ------------------------------------------------------- backend ops */

static int user_rx_fd(void *be, uint32_t pair)
{
	return pair == 0 ? ((struct user_be *)be)->rx_efd : -1;
}

static ssize_t user_recv(void *be, uint32_t pair, const struct iovec *iov,
			 int cnt)
{
	struct user_be *u = be;
	struct user_frame *f;
	uint32_t off = 0;

	if (pair != 0)
		return -EINVAL;
	if (u->rx_count == 0)
		return -EAGAIN;
	f = &u->rxq[u->rx_head];
	for (int i = 0; i < cnt && off < f->len; i++) {
		uint32_t k = f->len - off;

		if (k > iov[i].iov_len)
			k = (uint32_t)iov[i].iov_len;
		memcpy(iov[i].iov_base, f->data + off, k);
		off += k;
	}
	off = f->len;
	free(f->data);
	f->data = NULL;
	u->rx_head = (u->rx_head + 1) % RXQ_MAX;
	if (--u->rx_count == 0)
		efd_clear(u->rx_efd);
	return (ssize_t)off;
}

static ssize_t user_send(void *be, uint32_t pair, const struct iovec *iov,
			 int cnt)
{
	struct user_be *u = be;
	size_t len = 0;

	if (pair != 0)
		return -EINVAL;
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > VIRTIO_NET_MAX_FRAME - len)
			return -EMSGSIZE;
		memcpy(u->txbuf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	S.input(u->slirp, u->txbuf, (int)len);
	/* new sockets (outgoing connections) join the poll set next round */
	efd_set(u->kick_efd);
	return (ssize_t)len;
}

static int user_aux_fd(void *be)
{
	return ((struct user_be *)be)->epfd;
}

static void user_aux_ready(void *be, uint32_t revents)
{
	(void)revents;
	user_round(be);
}

static void user_free(struct user_be *u)
{
	if (u->slirp)
		S.cleanup(u->slirp);
	while (u->rx_count) {
		free(u->rxq[u->rx_head].data);
		u->rx_head = (u->rx_head + 1) % RXQ_MAX;
		u->rx_count--;
	}
	if (u->epfd >= 0)
		close(u->epfd);
	if (u->rx_efd >= 0)
		close(u->rx_efd);
	if (u->kick_efd >= 0)
		close(u->kick_efd);
	if (u->timer_fd >= 0)
		close(u->timer_fd);
	free(u->txbuf);
	free(u);
}

static void user_destroy(void *be)
{
	user_free(be);
}

static const struct virtio_net_backend_ops user_ops = {
	.rx_fd = user_rx_fd,
	.recv = user_recv,
	.send = user_send,
	.aux_fd = user_aux_fd,
	.aux_ready = user_aux_ready,
	.destroy = user_destroy,
};

int virtio_net_backend_user_create(const struct virtio_net_user_config *cfg,
				   const struct virtio_net_backend_ops **ops,
				   void **backend)
{
	struct virtio_net_user_config c = {0};
	SlirpConfig sc = {0};
	struct user_be *u;
	int ret;

	if (!ops || !backend)
		return -EINVAL;
	if (cfg)
		c = *cfg;
	if (c.nfwds && !c.fwds)
		return -EINVAL;
	pthread_once(&slirp_once, slirp_load);
	if (!S.ok)
		return -EOPNOTSUPP; /* libslirp.so.0 not installed */
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->epfd = epoll_create1(EPOLL_CLOEXEC);
	u->rx_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	u->kick_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	u->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	u->txbuf = malloc(VIRTIO_NET_MAX_FRAME);
	if (u->epfd < 0 || u->rx_efd < 0 || u->kick_efd < 0 ||
	    u->timer_fd < 0 || !u->txbuf) {
		ret = u->txbuf ? -errno : -ENOMEM;
		user_free(u);
		return ret;
	}
	{
		struct epoll_event e = {.events = EPOLLIN,
					.data.fd = u->kick_efd};

		if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->kick_efd, &e) < 0) {
			ret = -errno;
			user_free(u);
			return ret;
		}
		e.data.fd = u->timer_fd;
		if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->timer_fd, &e) < 0) {
			ret = -errno;
			user_free(u);
			return ret;
		}
	}
	sc.version = 4; /* disable_dhcp (libslirp >= 4.5) */
	sc.restricted = c.restricted;
	sc.in_enabled = true;
	inet_pton(AF_INET, "10.0.2.0", &sc.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &sc.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &sc.vhost);
	inet_pton(AF_INET, "10.0.2.15", &sc.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &sc.vnameserver);
	sc.vhostname = "cvmm";
	sc.disable_dns = c.no_dns;
	sc.disable_dhcp = c.no_dhcp;
	u->slirp = S.new_(&sc, &user_cbs, u);
	if (!u->slirp) {
		user_free(u);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < c.nfwds; i++) {
		const struct virtio_net_user_fwd *f = &c.fwds[i];

		if (S.add_hostfwd(u->slirp, f->udp, f->host_addr, f->host_port,
				  f->guest_addr, f->guest_port) < 0) {
			user_free(u);
			return -EADDRINUSE;
		}
	}
	user_round(u);
	*ops = &user_ops;
	*backend = u;
	return 0;
}

#endif /* CVMM_HAVE_LIBSLIRP */
