/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Container (IOMMU, DMA map/unmap) and group (viability, attach, reserved
 * IOVA ranges, KVM-VFIO registration). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vfio_container_create(const struct vfio_container_config *cfg,
			  struct vfio_container **out)
{
	static const struct vfio_container_config defaults;
	struct vfio_container *c;
	const char *path, *slash;
	int err;

	if (!out)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	path = cfg->path ? cfg->path : "/dev/vfio/vfio";
	slash = strrchr(path, '/');
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->sys = cfg->sys;
	c->type1_only = cfg->type1_only;
	c->sysfs_root = strdup(cfg->sysfs_root ? cfg->sysfs_root
					       : "/sys/kernel/iommu_groups");
	c->group_dir = slash ? strndup(path, (size_t)(slash - path))
			     : strdup(".");
	if (!c->sysfs_root || !c->group_dir) {
		err = -ENOMEM;
		goto fail;
	}
	c->fd = vfio_sys_open(c->sys, path, O_RDWR);
	if (c->fd < 0) {
		err = c->fd;
		goto fail;
	}
	err = vfio_sys_ioctl(c->sys, c->fd, VFIO_GET_API_VERSION, NULL);
	if (err != VFIO_API_VERSION) {
		err = err < 0 ? err : -ENODEV;
		goto fail;
	}
	if (vfio_sys_ioctl(c->sys, c->fd, VFIO_CHECK_EXTENSION,
			   (void *)(uintptr_t)VFIO_TYPE1_IOMMU) <= 0 &&
	    vfio_sys_ioctl(c->sys, c->fd, VFIO_CHECK_EXTENSION,
			   (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU) <= 0) {
		err = -ENODEV;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	vfio_sys_close(c->sys, c->fd);
	free(c->sysfs_root);
	free(c->group_dir);
	free(c);
	return err;
}

void vfio_container_destroy(struct vfio_container *c)
{
	if (!c)
		return;
	/* Groups left behind keep their own fds; unlink them from us. */
	for (struct vfio_group *g = c->groups; g; g = g->next)
		g->c = NULL;
	vfio_sys_close(c->sys, c->fd);
	free(c->sysfs_root);
	free(c->group_dir);
	free(c);
}

int vfio_container_fd(const struct vfio_container *c)
{
	return c->fd;
}

int vfio_container_iommu_type(const struct vfio_container *c)
{
	return c->iommu_type;
}

int vfio_container_reserved_ranges(const struct vfio_container *c,
				   struct vfio_reserved_range *out, size_t max)
{
	size_t n = 0;

	for (const struct vfio_group *g = c->groups; g; g = g->next) {
		for (size_t i = 0; i < g->nresv; i++, n++) {
			if (n < max)
				out[n] = g->resv[i];
		}
	}
	return (int)n;
}

static int dma_args_ok(uint64_t iova, uint64_t size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	if (size == 0 || iova % page || size % page)
		return -EINVAL;
	if (iova + size < iova)
		return -EOVERFLOW;
	return 0;
}

int vfio_container_dma_map(struct vfio_container *c, uint64_t iova, void *host,
			   uint64_t size, unsigned int flags)
{
	struct vfio_iommu_type1_dma_map map;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t last;
	int err;

	if (flags & ~(VFIO_DMA_READ | VFIO_DMA_WRITE))
		return -EINVAL;
	if (flags == 0)
		flags = VFIO_DMA_READ | VFIO_DMA_WRITE;
	err = dma_args_ok(iova, size);
	if (err)
		return err;
	if (!host || (uintptr_t)host % page ||
	    (uint64_t)(uintptr_t)host + size < (uint64_t)(uintptr_t)host)
		return -EINVAL;
	if (c->iommu_type == 0)
		return -ENODEV;
	last = iova + size - 1;
	for (const struct vfio_group *g = c->groups; g; g = g->next) {
		for (size_t i = 0; i < g->nresv; i++) {
			if (iova <= g->resv[i].last && g->resv[i].start <= last)
				return -EADDRNOTAVAIL;
		}
	}
	memset(&map, 0, sizeof(map));
	map.argsz = sizeof(map);
	map.flags = ((flags & VFIO_DMA_READ) ? VFIO_DMA_MAP_FLAG_READ : 0) |
		    ((flags & VFIO_DMA_WRITE) ? VFIO_DMA_MAP_FLAG_WRITE : 0);
	map.vaddr = (uint64_t)(uintptr_t)host;
	map.iova = iova;
	map.size = size;
	err = vfio_sys_ioctl(c->sys, c->fd, VFIO_IOMMU_MAP_DMA, &map);
	return err < 0 ? err : 0;
}

int vfio_container_dma_unmap(struct vfio_container *c, uint64_t iova,
			     uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap;
	int err = dma_args_ok(iova, size);

	if (err)
		return err;
	if (c->iommu_type == 0)
		return -ENODEV;
	memset(&unmap, 0, sizeof(unmap));
	unmap.argsz = sizeof(unmap);
	unmap.iova = iova;
	unmap.size = size;
	err = vfio_sys_ioctl(c->sys, c->fd, VFIO_IOMMU_UNMAP_DMA, &unmap);
	if (err < 0)
		return err;
	return unmap.size == size ? 0 : -ENOENT;
}

/* ------------------------------------------------------------------ group */

/* One line of reserved_regions: "0x<start> 0x<end> <type>\n". */
static int parse_hex(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	int digits = 0;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return -EPROTO;
	s += 2;
	for (;; s++, digits++) {
		unsigned int d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned int)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned int)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned int)(*s - 'A' + 10);
		else
			break;
		if (digits >= 16)
			return -EPROTO;
		x = x << 4 | d;
	}
	if (digits == 0)
		return -EPROTO;
	*v = x;
	*p = s;
	return 0;
}

/* Parse the text of iommu_groups/N/reserved_regions (@len bytes, NUL at
 * [len]) into @g->resv. */
static int parse_reserved(struct vfio_group *g, const char *text)
{
	const char *p = text;

	while (*p) {
		struct vfio_reserved_range r, *n;

		if (*p == '\n') {
			p++;
			continue;
		}
		if (parse_hex(&p, &r.start) || *p++ != ' ' ||
		    parse_hex(&p, &r.last) || *p != ' ' || r.last < r.start)
			return -EPROTO;
		while (*p && *p != '\n')
			p++;
		if (g->nresv >= VFIO_MAX_RESERVED)
			return -EPROTO;
		n = realloc(g->resv, (g->nresv + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		g->resv = n;
		g->resv[g->nresv++] = r;
	}
	return 0;
}

static int read_reserved(struct vfio_group *g)
{
	struct vfio_container *c = g->c;
	char path[4096];
	char *buf;
	size_t len = 0;
	int fd, err = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%u/reserved_regions",
			     c->sysfs_root, g->id) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = vfio_sys_open(c->sys, path, O_RDONLY);
	if (fd == -ENOENT)
		return 0; /* a kernel without the file: nothing reserved */
	if (fd < 0)
		return fd;
	buf = malloc(VFIO_SYSFS_MAX_BYTES + 1);
	if (!buf) {
		vfio_sys_close(c->sys, fd);
		return -ENOMEM;
	}
	while (len < VFIO_SYSFS_MAX_BYTES) {
		ssize_t r = vfio_sys_pread(c->sys, fd, buf + len,
					   VFIO_SYSFS_MAX_BYTES - len,
					   (off_t)len);
		if (r < 0) {
			err = (int)r;
			break;
		}
		if (r == 0)
			break;
		if ((size_t)r > VFIO_SYSFS_MAX_BYTES - len) {
			err = -EPROTO;
			break;
		}
		len += (size_t)r;
	}
	if (!err && len >= VFIO_SYSFS_MAX_BYTES)
		err = -EPROTO;
	vfio_sys_close(c->sys, fd);
	if (!err) {
		buf[len] = 0;
		if (strlen(buf) != len)
			err = -EPROTO;
		else
			err = parse_reserved(g, buf);
	}
	free(buf);
	return err;
}

static int set_iommu(struct vfio_container *c)
{
	int type = VFIO_TYPE1_IOMMU, err;

	if (!c->type1_only &&
	    vfio_sys_ioctl(c->sys, c->fd, VFIO_CHECK_EXTENSION,
			   (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU) > 0)
		type = VFIO_TYPE1v2_IOMMU;
	err = vfio_sys_ioctl(c->sys, c->fd, VFIO_SET_IOMMU,
			     (void *)(uintptr_t)type);
	if (err < 0 && type == VFIO_TYPE1v2_IOMMU) {
		type = VFIO_TYPE1_IOMMU;
		err = vfio_sys_ioctl(c->sys, c->fd, VFIO_SET_IOMMU,
				     (void *)(uintptr_t)type);
	}
	if (err < 0)
		return err;
	c->iommu_type = type;
	return 0;
}

int vfio_group_create(struct vfio_container *c, unsigned int group_id,
		      const struct vfio_group_config *cfg,
		      struct vfio_group **out)
{
	struct vfio_group_status st;
	struct vfio_group *g;
	char path[4096];
	bool attached = false;
	int err;

	(void)cfg;
	if (!c || !out)
		return -EINVAL;
	for (g = c->groups; g; g = g->next) {
		if (g->id == group_id)
			return -EEXIST;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%u", c->group_dir,
			     group_id) >= sizeof(path))
		return -ENAMETOOLONG;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->c = c;
	g->sys = c->sys;
	g->id = group_id;
	g->fd = vfio_sys_open(c->sys, path, O_RDWR);
	if (g->fd < 0) {
		err = g->fd;
		goto fail;
	}
	memset(&st, 0, sizeof(st));
	st.argsz = sizeof(st);
	err = vfio_sys_ioctl(c->sys, g->fd, VFIO_GROUP_GET_STATUS, &st);
	if (err < 0)
		goto fail;
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		err = -EBUSY;
		goto fail;
	}
	err = vfio_sys_ioctl(c->sys, g->fd, VFIO_GROUP_SET_CONTAINER, &c->fd);
	if (err < 0)
		goto fail;
	attached = true;
	if (c->iommu_type == 0) {
		err = set_iommu(c);
		if (err)
			goto fail;
	}
	err = read_reserved(g);
	if (err)
		goto fail;
	g->next = c->groups;
	c->groups = g;
	*out = g;
	return 0;
fail:
	if (attached)
		vfio_sys_ioctl(c->sys, g->fd, VFIO_GROUP_UNSET_CONTAINER, NULL);
	vfio_sys_close(c->sys, g->fd);
	free(g->resv);
	free(g);
	return err;
}

void vfio_group_destroy(struct vfio_group *g)
{
	struct vfio_container *c;

	if (!g)
		return;
	c = g->c;
	if (c) {
		for (struct vfio_group **pp = &c->groups; *pp;
		     pp = &(*pp)->next) {
			if (*pp == g) {
				*pp = g->next;
				break;
			}
		}
		vfio_sys_ioctl(c->sys, g->fd, VFIO_GROUP_UNSET_CONTAINER, NULL);
		/* The kernel drops the IOMMU with the last group. */
		if (!c->groups)
			c->iommu_type = 0;
	}
	vfio_sys_close(g->sys, g->fd);
	free(g->resv);
	free(g);
}

unsigned int vfio_group_id(const struct vfio_group *g)
{
	return g->id;
}

int vfio_group_fd(const struct vfio_group *g)
{
	return g->fd;
}

static int group_kvm(struct vfio_group *g, int kvm_vfio_fd, uint64_t op)
{
	int32_t fd = g->fd;
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = op,
		.addr = (uint64_t)(uintptr_t)&fd,
	};
	int err;

	if (kvm_vfio_fd < 0)
		return -EBADF;
	err = vfio_sys_ioctl(g->sys, kvm_vfio_fd, KVM_SET_DEVICE_ATTR, &attr);
	return err < 0 ? err : 0;
}

int vfio_group_kvm_add(struct vfio_group *g, int kvm_vfio_fd)
{
	return group_kvm(g, kvm_vfio_fd, KVM_DEV_VFIO_GROUP_ADD);
}

int vfio_group_kvm_del(struct vfio_group *g, int kvm_vfio_fd)
{
	return group_kvm(g, kvm_vfio_fd, KVM_DEV_VFIO_GROUP_DEL);
}
