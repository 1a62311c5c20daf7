/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * unix-echo PATH: the host end of the lab's virtio-console channel check.
 * Listens on the unix stream socket PATH and echoes back what each peer
 * sends, one peer after the other, until killed.  Statically linked by the
 * lab's static build and run inside the lab (busybox has no unix-socket
 * tool).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char buf[4096];
	int s;

	if (argc != 2 || strlen(argv[1]) >= sizeof(a.sun_path)) {
		fprintf(stderr, "usage: unix-echo PATH\n");
		return 2;
	}
	strcpy(a.sun_path, argv[1]);
	unlink(a.sun_path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s, 1) < 0) {
		fprintf(stderr, "unix-echo: %s: %s\n", a.sun_path,
			strerror(errno));
		return 1;
	}
	for (;;) {
		int c = accept(s, NULL, NULL);
		ssize_t n;

		if (c < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (write(c, buf, (size_t)n) != n)
				break;
		close(c);
	}
}
