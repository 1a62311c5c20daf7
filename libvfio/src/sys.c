/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The system-call seam: the caller's table, or the real calls.  Member
 * calls are written (s->x)(...) so that a function-like macro of the same
 * name (the tests' fault injector wraps close, mmap, munmap) leaves them
 * alone. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int vfio_sys_open(const struct vfio_sys *s, const char *path, int flags)
{
	int fd;

	if (s && s->open)
		return (s->open)(s->ctx, path, flags);
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void vfio_sys_close(const struct vfio_sys *s, int fd)
{
	if (fd < 0)
		return;
	if (s && s->close)
		(s->close)(s->ctx, fd);
	else
		close(fd);
}

int vfio_sys_ioctl(const struct vfio_sys *s, int fd, unsigned long req,
		   void *arg)
{
	int r;

	if (s && s->ioctl)
		return (s->ioctl)(s->ctx, fd, req, arg);
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

ssize_t vfio_sys_pread(const struct vfio_sys *s, int fd, void *buf, size_t len,
		       off_t off)
{
	ssize_t r;

	if (s && s->pread)
		return (s->pread)(s->ctx, fd, buf, len, off);
	r = pread(fd, buf, len, off);
	return r < 0 ? -errno : r;
}

ssize_t vfio_sys_pwrite(const struct vfio_sys *s, int fd, const void *buf,
			size_t len, off_t off)
{
	ssize_t r;

	if (s && s->pwrite)
		return (s->pwrite)(s->ctx, fd, buf, len, off);
	r = pwrite(fd, buf, len, off);
	return r < 0 ? -errno : r;
}

int vfio_sys_mmap(const struct vfio_sys *s, size_t len, int prot, int fd,
		  off_t off, void **out)
{
	void *p;

	if (s && s->mmap)
		return (s->mmap)(s->ctx, len, prot, fd, off, out);
	p = mmap(NULL, len, prot, MAP_SHARED, fd, off);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int vfio_sys_munmap(const struct vfio_sys *s, void *addr, size_t len)
{
	if (s && s->munmap)
		return (s->munmap)(s->ctx, addr, len);
	return munmap(addr, len) < 0 ? -errno : 0;
}

ssize_t vfio_sys_readlink(const struct vfio_sys *s, const char *path, char *buf,
			  size_t len)
{
	ssize_t r;

	if (s && s->readlink)
		return (s->readlink)(s->ctx, path, buf, len);
	r = readlink(path, buf, len);
	return r < 0 ? -errno : r;
}
