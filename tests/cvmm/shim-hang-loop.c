/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * LD_PRELOAD shim for test_watchdog.py: from 1 s after its first call,
 * epoll_wait never returns, so cvmm's I/O loop never sees its --timeout
 * timer (a wedged I/O thread).
 */
#include <dlfcn.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int epoll_wait(int ep, struct epoll_event *ev, int n, int timeout)
{
	static int (*real)(int, struct epoll_event *, int, int);
	static time_t first;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "epoll_wait");
	if (!first)
		first = time(NULL);
	if (!real || time(NULL) - first >= 1)
		for (;;)
			pause();
	return real(ep, ev, n, timeout);
}
