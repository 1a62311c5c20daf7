/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * LD_PRELOAD shim for test_watchdog.py: from 300 ms after its first call,
 * epoll_wait never returns, so cvmm's I/O loop never sees its --timeout
 * timer (a wedged I/O thread).  (A whole-second clock here raced the 1 s
 * --timeout: the loop sometimes saw its timer first.)
 */
#include <dlfcn.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int epoll_wait(int ep, struct epoll_event *ev, int n, int timeout)
{
	static int (*real)(int, struct epoll_event *, int, int);
	static long long first;
	struct timespec ts;
	long long now;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "epoll_wait");
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (!first)
		first = now;
	if (!real || now - first >= 300)
		for (;;)
			pause();
	return real(ep, ev, n, timeout);
}
