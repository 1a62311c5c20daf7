/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vsock-tool: both ends of the lab's virtio-vsock checks (busybox has no
 * vsock tool).  Statically linked by the lab's static build; the nested
 * guest's initramfs has it as /bin/vsock-tool, the lab as
 * /lab/bin/vsock-tool.  Data is a fixed pseudo-random stream; each end
 * prints the byte count and an FNV-1a 64 checksum of what it sent or
 * received, so the lab compares the two lines.
 *
 * In the guest (AF_VSOCK):
 *   vsock-tool send CID PORT BYTES [SECONDS]
 *                                    connect, send BYTES, shut down the
 *                                    write side, wait for the peer's close
 *                                    -> "SENT <bytes> <fnv> <ms>"; with
 *                                    SECONDS a failed connect is retried
 *                                    every 200 ms that long (the lab host
 *                                    on vhost-vsock, before the guest
 *                                    listens)
 *   vsock-tool recv PORT             listen (prints "LISTENING"), accept
 *                                    one, read to end of file
 *                                    -> "RECV <bytes> <fnv> <ms>"
 *   vsock-tool refused CID PORT      a connect that must fail (within
 *                                    20 s) -> "REFUSED <errno> <ms>"
 * On the host (cvmm's unix sockets):
 *   vsock-tool unix-recv PATH        listen on PATH (cvmm's PATH_<port>),
 *                                    accept one, read to end of file
 *                                    -> "RECV ..."
 *   vsock-tool unix-send PATH PORT BYTES SECONDS
 *                                    connect to PATH, "CONNECT PORT", on
 *                                    "OK <n>" send BYTES, shut down the write
 *                                    side, wait for the close -> "SENT ...";
 *                                    a refusal is retried every 200 ms for
 *                                    SECONDS (the guest's listener starts
 *                                    later)
 * Exit status 0 on success, 1 on failure (a message on stderr).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

struct stream {
	uint32_t x;   /* xorshift32 state of the pattern */
	uint64_t fnv; /* FNV-1a 64 of the bytes seen */
	uint64_t n;
};

static void stream_init(struct stream *s)
{
	s->x = 0x12345678u;
	s->fnv = 0xcbf29ce484222325ull;
	s->n = 0;
}

static void pattern(struct stream *s, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		s->x ^= s->x << 13;
		s->x ^= s->x >> 17;
		s->x ^= s->x << 5;
		buf[i] = (uint8_t)s->x;
	}
}

static void account(struct stream *s, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		s->fnv ^= buf[i];
		s->fnv *= 0x100000001b3ull;
	}
	s->n += len;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int fail(const char *what)
{
	fprintf(stderr, "vsock-tool: %s: %s\n", what, strerror(errno));
	return 1;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send @bytes of the pattern, shut down writing, wait for the close. */
static int send_stream(int fd, uint64_t bytes, uint64_t t0)
{
	static uint8_t buf[65536];
	struct stream s;
	char c;

	stream_init(&s);
	while (s.n < bytes) {
		size_t len = bytes - s.n < sizeof(buf) ? (size_t)(bytes - s.n)
						       : sizeof(buf);

		pattern(&s, buf, len);
		account(&s, buf, len);
		if (write_all(fd, buf, len) < 0)
			return fail("write");
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, &c, 1) > 0)
		;
	printf("SENT %llu %016llx %llu\n", (unsigned long long)s.n,
	       (unsigned long long)s.fnv, (unsigned long long)(now_ms() - t0));
	return 0;
}

static int recv_stream(int fd, uint64_t t0)
{
	static uint8_t buf[65536];
	struct stream s;

	stream_init(&s);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("read");
		if (n == 0)
			break;
		account(&s, buf, (size_t)n);
	}
	printf("RECV %llu %016llx %llu\n", (unsigned long long)s.n,
	       (unsigned long long)s.fnv, (unsigned long long)(now_ms() - t0));
	return 0;
}

static unsigned long long num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno) {
		fprintf(stderr, "vsock-tool: '%s' is not a number\n", s);
		exit(2);
	}
	return v;
}

static int vsock_connect(unsigned cid, unsigned port)
{
	struct sockaddr_vm a = {
		.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int unix_socket(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path)) {
		fprintf(stderr, "vsock-tool: path too long\n");
		exit(2);
	}
	strcpy(a->sun_path, path);
	return socket(AF_UNIX, SOCK_STREAM, 0);
}

static void on_alarm(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	uint64_t t0 = now_ms();
	int fd, c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "send")) {
		uint64_t until = t0 + (argc == 6 ? num(argv[5]) * 1000 : 0);
		unsigned tries = 1;

		while ((fd = vsock_connect((unsigned)num(argv[2]),
					   (unsigned)num(argv[3]))) < 0 &&
		       now_ms() < until) {
			usleep(200000);
			tries++;
		}
		if (fd < 0)
			return fail("connect");
		if (argc == 6)
			fprintf(stderr,
				"vsock-tool: connected after %u tries\n",
				tries);
		return send_stream(fd, num(argv[4]), argc == 6 ? now_ms() : t0);
	}
	if (argc == 3 && !strcmp(argv[1], "recv")) {
		struct sockaddr_vm a = {.svm_family = AF_VSOCK,
					.svm_cid = VMADDR_CID_ANY,
					.svm_port = (unsigned)num(argv[2])};

		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    listen(fd, 1) < 0)
			return fail("listen");
		printf("LISTENING %s\n", argv[2]);
		c = accept(fd, NULL, NULL);
		if (c < 0)
			return fail("accept");
		return recv_stream(c, now_ms());
	}
	if (argc == 4 && !strcmp(argv[1], "refused")) {
		struct sigaction sa = {.sa_handler = on_alarm};

		sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART */
		alarm(20);
		fd = vsock_connect((unsigned)num(argv[2]),
				   (unsigned)num(argv[3]));
		if (fd >= 0) {
			fprintf(stderr, "vsock-tool: connect succeeded\n");
			return 1;
		}
		if (errno == EINTR) {
			fprintf(stderr, "vsock-tool: connect hung for 20 s\n");
			return 1;
		}
		printf("REFUSED %s %llu\n", strerror(errno),
		       (unsigned long long)(now_ms() - t0));
		return errno == ECONNRESET || errno == ECONNREFUSED ? 0 : 1;
	}
	if (argc == 3 && !strcmp(argv[1], "unix-recv")) {
		struct sockaddr_un a;

		fd = unix_socket(argv[2], &a);
		unlink(argv[2]);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    listen(fd, 1) < 0)
			return fail("listen");
		c = accept(fd, NULL, NULL);
		if (c < 0)
			return fail("accept");
		return recv_stream(c, now_ms());
	}
	if (argc == 6 && !strcmp(argv[1], "unix-send")) {
		uint64_t until = t0 + num(argv[5]) * 1000;
		struct sockaddr_un a;
		unsigned tries = 0;

		for (;;) {
			char line[64];
			size_t got = 0;
			int n;

			tries++;
			fd = unix_socket(argv[2], &a);
			if (fd < 0)
				return fail("socket");
			if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ==
			    0) {
				n = snprintf(line, sizeof(line), "CONNECT %s\n",
					     argv[3]);
				if (write_all(fd, (uint8_t *)line, (size_t)n) ==
				    0) {
					while (got < sizeof(line) - 1 &&
					       read(fd, line + got, 1) == 1 &&
					       line[got] != '\n')
						got++;
					line[got] = 0;
					if (!strncmp(line, "OK ", 3)) {
						fprintf(stderr,
							"vsock-tool: %s after "
							"%u tries\n",
							line, tries);
						return send_stream(fd,
								   num(argv[4]),
								   now_ms());
					}
				}
			}
			close(fd);
			if (now_ms() > until) {
				fprintf(stderr,
					"vsock-tool: no OK from %s port %s "
					"after %u tries\n",
					argv[2], argv[3], tries);
				return 1;
			}
			usleep(200000);
		}
	}
	fprintf(stderr, "usage: vsock-tool send CID PORT BYTES [SECONDS] | "
			"recv PORT | "
			"refused CID PORT | unix-recv PATH | "
			"unix-send PATH PORT BYTES SECONDS\n");
	return 2;
}
