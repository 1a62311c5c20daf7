/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The fault injector of the c-vmm tests: see fault-inject.h. */
#include "fault-inject.h"

#include <errno.h>
#include <stdarg.h>

#define FAULT_MAX_TRACKED 256

long fault_injected;
long fault_bad_releases;

static long countdown = -1; /* < 0: never fail */
static struct {
	void *addr;
	size_t len;
} maps[FAULT_MAX_TRACKED];
static int nmaps;
static int fds[FAULT_MAX_TRACKED];
static int nfds;

void fault_arm(long n)
{
	countdown = n;
	fault_injected = 0;
}

void fault_disarm(void)
{
	countdown = -1;
}

int fault_live_maps(void)
{
	return nmaps;
}

int fault_live_fds(void)
{
	return nfds;
}

bool fault_all_released(void)
{
	return fault_bad_releases == 0 && nmaps == 0 && nfds == 0;
}

/* Does this call fail? */
static bool hit(void)
{
	if (countdown < 0)
		return false;
	if (countdown == 0) {
		fault_injected++;
		return true;
	}
	countdown--;
	return false;
}

void *fault_malloc(size_t n)
{
	return hit() ? NULL : malloc(n);
}

void *fault_calloc(size_t n, size_t m)
{
	return hit() ? NULL : calloc(n, m);
}

void *fault_realloc(void *p, size_t n)
{
	return hit() ? NULL : realloc(p, n);
}

void *fault_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	if (hit()) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = mmap(addr, len, prot, flags, fd, off);
	/* A MAP_FIXED mapping lies inside a tracked reservation. */
	if (p != MAP_FAILED && !(flags & MAP_FIXED) &&
	    nmaps < FAULT_MAX_TRACKED) {
		maps[nmaps].addr = p;
		maps[nmaps].len = len;
		nmaps++;
	}
	return p;
}

int fault_munmap(void *addr, size_t len)
{
	int i;

	for (i = 0; i < nmaps; i++)
		if (maps[i].addr == addr && maps[i].len == len)
			break;
	if (i == nmaps) {
		fault_bad_releases++;
		return 0; /* never unmap what is not the library's */
	}
	maps[i] = maps[--nmaps];
	return munmap(addr, len);
}

static void track_fd(int fd)
{
	if (fd >= 0 && nfds < FAULT_MAX_TRACKED)
		fds[nfds++] = fd;
}

int fault_close(int fd)
{
	int i;

	for (i = 0; i < nfds; i++)
		if (fds[i] == fd)
			break;
	if (i == nfds) {
		fault_bad_releases++;
		return 0; /* never close what is not the library's */
	}
	fds[i] = fds[--nfds];
	return close(fd);
}

int fault_memfd_create(const char *name, unsigned int flags)
{
	int fd;

	if (hit()) {
		errno = EMFILE;
		return -1;
	}
	fd = memfd_create(name, flags);
	track_fd(fd);
	return fd;
}

int fault_ftruncate(int fd, off_t len)
{
	if (hit()) {
		errno = EIO;
		return -1;
	}
	return ftruncate(fd, len);
}

int fault_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	int arg, ret;

	if (hit()) {
		errno = EMFILE;
		return -1;
	}
	/* Commands other than the dups are passed on without an argument:
	 * the libraries use only argument-less ones (F_GETFD, F_GETFL). */
	if (cmd != F_DUPFD_CLOEXEC && cmd != F_DUPFD)
		return fcntl(fd, cmd);
	va_start(ap, cmd);
	arg = va_arg(ap, int);
	va_end(ap);
	ret = fcntl(fd, cmd, arg);
	track_fd(ret);
	return ret;
}

int fault_fstat(int fd, struct stat *st)
{
	if (hit()) {
		errno = EIO;
		return -1;
	}
	return fstat(fd, st);
}
