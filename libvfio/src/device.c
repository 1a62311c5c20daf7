/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Device: info, regions (capability chains), read/write/mmap, IRQs, reset. */
#include "caps.h"
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_region(const struct vfio_sys *sys, int fd, uint32_t index,
		      struct vfio_region *r)
{
	size_t len = sizeof(struct vfio_region_info) + 256;
	struct vfio_caps caps;
	unsigned char *buf = NULL;
	int err;

	for (int tries = 0;; tries++) {
		struct vfio_region_info *info;
		unsigned char *nb = realloc(buf, len);

		if (!nb) {
			err = -ENOMEM;
			goto out;
		}
		buf = nb;
		memset(buf, 0, len);
		info = (struct vfio_region_info *)(void *)buf;
		info->argsz = (uint32_t)len;
		info->index = index;
		err = vfio_sys_ioctl(sys, fd, VFIO_DEVICE_GET_REGION_INFO, buf);
		if (err < 0)
			goto out;
		/* The kernel says how much room the chain needs. */
		if (info->argsz <= len)
			break;
		if (info->argsz > VFIO_MAX_INFO_BYTES || tries >= 2) {
			err = -EPROTO;
			goto out;
		}
		len = info->argsz;
	}
	err = vfio_caps_parse(buf, len, &caps);
	if (err)
		goto out;
	memset(r, 0, sizeof(*r));
	r->desc.flags = caps.info.flags;
	r->desc.size = caps.info.size;
	r->desc.offset = caps.info.offset;
	r->desc.has_type = caps.has_type;
	r->desc.type = caps.type;
	r->desc.subtype = caps.subtype;
	r->desc.msix_mappable = caps.msix_mappable;
	if (!(caps.info.flags & VFIO_REGION_INFO_FLAG_MMAP) ||
	    caps.info.size == 0)
		goto out; /* not mappable: no areas */
	if (caps.info.offset > (uint64_t)INT64_MAX - caps.info.size) {
		err = -EPROTO; /* not an off_t */
		goto out;
	}
	if (caps.has_sparse) {
		r->desc.nr_areas = caps.nr_areas;
		if (caps.nr_areas) {
			r->areas = calloc(caps.nr_areas, sizeof(*r->areas));
			if (!r->areas) {
				err = -ENOMEM;
				goto out;
			}
			memcpy(r->areas, buf + caps.areas_off,
			       caps.nr_areas * sizeof(*r->areas));
		}
	} else {
		r->areas = calloc(1, sizeof(*r->areas));
		if (!r->areas) {
			err = -ENOMEM;
			goto out;
		}
		r->areas[0].offset = 0;
		r->areas[0].size = caps.info.size;
		r->desc.nr_areas = 1;
	}
out:
	free(buf);
	return err;
}

static void free_device(struct vfio_device *d)
{
	if (d->regions) {
		for (uint32_t i = 0; i < d->info.num_regions; i++)
			free(d->regions[i].areas);
	}
	if (d->irqs) {
		for (uint32_t i = 0; i < d->info.num_irqs; i++)
			free(d->irqs[i].fds);
	}
	free(d->regions);
	free(d->irqs);
	free(d);
}

int vfio_device_create(struct vfio_group *g, const char *name,
		       const struct vfio_device_config *cfg,
		       struct vfio_device **out)
{
	struct vfio_device *d;
	int err;

	(void)cfg;
	if (!g || !name || !out)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->g = g;
	d->fd = vfio_sys_ioctl(g->sys, g->fd, VFIO_GROUP_GET_DEVICE_FD,
			       (void *)(uintptr_t)name);
	if (d->fd < 0) {
		err = d->fd;
		d->fd = -1;
		goto fail;
	}
	d->info.argsz = sizeof(d->info);
	err = vfio_sys_ioctl(g->sys, d->fd, VFIO_DEVICE_GET_INFO, &d->info);
	if (err < 0)
		goto fail;
	if (d->info.num_regions > VFIO_MAX_REGIONS ||
	    d->info.num_irqs > VFIO_MAX_IRQS) {
		err = -EPROTO;
		goto fail;
	}
	d->regions = calloc(d->info.num_regions ? d->info.num_regions : 1,
			    sizeof(*d->regions));
	d->irqs = calloc(d->info.num_irqs ? d->info.num_irqs : 1,
			 sizeof(*d->irqs));
	if (!d->regions || !d->irqs) {
		err = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < d->info.num_regions; i++) {
		err = get_region(g->sys, d->fd, i, &d->regions[i]);
		/* vfio-pci answers -EINVAL for the VGA region of a device
		 * that has none: that region just does not exist. */
		if (err == -EINVAL) {
			memset(&d->regions[i], 0, sizeof(d->regions[i]));
			err = 0;
		}
		if (err)
			goto fail;
	}
	for (uint32_t i = 0; i < d->info.num_irqs; i++) {
		struct vfio_irq_info *ii = &d->irqs[i].info;

		ii->argsz = sizeof(*ii);
		ii->index = i;
		err = vfio_sys_ioctl(g->sys, d->fd, VFIO_DEVICE_GET_IRQ_INFO,
				     ii);
		/* vfio-pci answers -EINVAL for an IRQ the device cannot
		 * have (the error IRQ of a conventional PCI device): it has
		 * no vectors. */
		if (err == -EINVAL) {
			memset(ii, 0, sizeof(*ii));
			ii->argsz = sizeof(*ii);
			err = 0;
		}
		if (err < 0)
			goto fail;
		ii->index = i;
		if (ii->count > VFIO_MAX_VECTORS) {
			err = -EPROTO;
			goto fail;
		}
	}
	g->devices++;
	*out = d;
	return 0;
fail:
	vfio_sys_close(g->sys, d->fd);
	free_device(d);
	return err < 0 ? err : -EIO;
}

int vfio_device_create_sysfs(struct vfio_container *c, const char *sysfs_path,
			     const struct vfio_device_config *cfg,
			     struct vfio_device **out)
{
	char path[4096], link[4096], name[256];
	const char *base, *end;
	struct vfio_group *g;
	unsigned long id;
	char *num_end;
	bool own = false;
	ssize_t n;
	int err;

	if (!c || !sysfs_path || !out)
		return -EINVAL;
	end = sysfs_path + strlen(sysfs_path);
	while (end > sysfs_path && end[-1] == '/')
		end--;
	base = end;
	while (base > sysfs_path && base[-1] != '/')
		base--;
	if (base == end)
		return -EINVAL;
	if ((size_t)(end - base) >= sizeof(name))
		return -ENAMETOOLONG;
	memcpy(name, base, (size_t)(end - base));
	name[end - base] = 0;
	if ((size_t)snprintf(path, sizeof(path), "%.*s/iommu_group",
			     (int)(end - sysfs_path),
			     sysfs_path) >= sizeof(path))
		return -ENAMETOOLONG;
	n = vfio_sys_readlink(c->sys, path, link, sizeof(link) - 1);
	if (n < 0)
		return (int)n;
	if ((size_t)n >= sizeof(link))
		return -ENAMETOOLONG;
	link[n] = 0;
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	errno = 0;
	id = strtoul(base, &num_end, 10);
	if (!*base || *num_end || errno || id > UINT_MAX || *base == '-' ||
	    *base == '+')
		return -EINVAL;
	for (g = c->groups; g; g = g->next) {
		if (g->id == id)
			break;
	}
	if (!g) {
		err = vfio_group_create(c, (unsigned int)id, NULL, &g);
		if (err)
			return err;
		own = true;
	}
	err = vfio_device_create(g, name, cfg, out);
	if (err) {
		if (own)
			vfio_group_destroy(g);
		return err;
	}
	(*out)->owns_group = own;
	return 0;
}

void vfio_device_destroy(struct vfio_device *d)
{
	struct vfio_group *g;

	if (!d)
		return;
	g = d->g;
	for (uint32_t i = 0; i < d->info.num_irqs; i++)
		vfio_device_irq_disable(d, i);
	vfio_sys_close(g->sys, d->fd);
	g->devices--;
	if (d->owns_group && g->devices == 0)
		vfio_group_destroy(g);
	free_device(d);
}

int vfio_device_fd(const struct vfio_device *d)
{
	return d->fd;
}

struct vfio_group *vfio_device_group(const struct vfio_device *d)
{
	return d->g;
}

void vfio_device_get_info(const struct vfio_device *d,
			  struct vfio_device_info *out)
{
	*out = d->info;
}

int vfio_device_region(const struct vfio_device *d, uint32_t index,
		       struct vfio_region_desc *out)
{
	if (index >= d->info.num_regions)
		return -EINVAL;
	*out = d->regions[index].desc;
	return 0;
}

int vfio_device_region_area(const struct vfio_device *d, uint32_t index,
			    uint32_t area,
			    struct vfio_region_sparse_mmap_area *out)
{
	if (index >= d->info.num_regions ||
	    area >= d->regions[index].desc.nr_areas)
		return -EINVAL;
	*out = d->regions[index].areas[area];
	return 0;
}

static int region_range(const struct vfio_device *d, uint32_t index,
			uint32_t need, uint64_t off, size_t len, off_t *pos)
{
	const struct vfio_region_desc *r;

	if (index >= d->info.num_regions)
		return -EINVAL;
	r = &d->regions[index].desc;
	if (!(r->flags & need))
		return -EINVAL;
	if (off > r->size || len > r->size - off)
		return -ERANGE;
	if (r->offset > (uint64_t)INT64_MAX - off)
		return -ERANGE;
	*pos = (off_t)(r->offset + off);
	return 0;
}

int vfio_device_region_read(const struct vfio_device *d, uint32_t index,
			    uint64_t off, void *buf, size_t len)
{
	off_t pos;
	ssize_t n;
	int err = region_range(d, index, VFIO_REGION_INFO_FLAG_READ, off, len,
			       &pos);

	if (err)
		return err;
	n = vfio_sys_pread(d->g->sys, d->fd, buf, len, pos);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int vfio_device_region_write(const struct vfio_device *d, uint32_t index,
			     uint64_t off, const void *buf, size_t len)
{
	off_t pos;
	ssize_t n;
	int err = region_range(d, index, VFIO_REGION_INFO_FLAG_WRITE, off, len,
			       &pos);

	if (err)
		return err;
	n = vfio_sys_pwrite(d->g->sys, d->fd, buf, len, pos);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int vfio_device_region_mmap(const struct vfio_device *d, uint32_t index,
			    uint32_t area, int prot, void **addr)
{
	const struct vfio_region_sparse_mmap_area *a;
	const struct vfio_region *r;

	if (!addr || index >= d->info.num_regions)
		return -EINVAL;
	r = &d->regions[index];
	if (area >= r->desc.nr_areas)
		return -EINVAL;
	a = &r->areas[area];
	if (a->size > SIZE_MAX)
		return -ENOMEM;
	/* get_region() checked offset + size fits an off_t. */
	return vfio_sys_mmap(d->g->sys, (size_t)a->size, prot, d->fd,
			     (off_t)(r->desc.offset + a->offset), addr);
}

int vfio_device_region_munmap(const struct vfio_device *d, uint32_t index,
			      uint32_t area, void *addr)
{
	if (!addr || index >= d->info.num_regions ||
	    area >= d->regions[index].desc.nr_areas)
		return -EINVAL;
	return vfio_sys_munmap(d->g->sys, addr,
			       (size_t)d->regions[index].areas[area].size);
}

/* ------------------------------------------------------------ interrupts */

int vfio_device_irq_info(const struct vfio_device *d, uint32_t index,
			 struct vfio_irq_info *out)
{
	if (index >= d->info.num_irqs)
		return -EINVAL;
	*out = d->irqs[index].info;
	return 0;
}

uint32_t vfio_device_irq_enabled(const struct vfio_device *d, uint32_t index)
{
	return index < d->info.num_irqs ? d->irqs[index].enabled : 0;
}

/* VFIO_DEVICE_SET_IRQS with @count eventfds (or none when @fds is NULL). */
static int set_irqs(const struct vfio_device *d, uint32_t flags, uint32_t index,
		    uint32_t start, uint32_t count, const int *fds)
{
	size_t data = fds ? (size_t)count * sizeof(int32_t) : 0;
	struct vfio_irq_set *s = calloc(1, sizeof(*s) + data);
	int err;

	if (!s)
		return -ENOMEM;
	s->argsz = (uint32_t)(sizeof(*s) + data);
	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	for (uint32_t i = 0; fds && i < count; i++) {
		int32_t fd = fds[i];

		memcpy(s->data + i * sizeof(fd), &fd, sizeof(fd));
	}
	err = vfio_sys_ioctl(d->g->sys, d->fd, VFIO_DEVICE_SET_IRQS, s);
	free(s);
	return err < 0 ? err : 0;
}

int vfio_device_irq_enable(struct vfio_device *d, uint32_t index,
			   const int *fds, uint32_t count)
{
	struct vfio_irq *q;
	int *copy;
	int err;

	if (index >= d->info.num_irqs || !fds)
		return -EINVAL;
	q = &d->irqs[index];
	if (count == 0 || count > q->info.count)
		return -EINVAL;
	if (q->enabled)
		return -EBUSY;
	copy = malloc(count * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, fds, count * sizeof(*copy));
	err = set_irqs(d,
		       VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		       index, 0, count, fds);
	if (err) {
		free(copy);
		return err;
	}
	q->fds = copy;
	q->enabled = count;
	return 0;
}

int vfio_device_irq_disable(struct vfio_device *d, uint32_t index)
{
	struct vfio_irq *q;
	int err;

	if (index >= d->info.num_irqs)
		return -EINVAL;
	q = &d->irqs[index];
	if (!q->enabled)
		return 0;
	err = set_irqs(d, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		       index, 0, 0, NULL);
	/* Whatever the kernel said, our bookkeeping forgets the vectors:
	 * a device fd's close disables them in any case. */
	free(q->fds);
	q->fds = NULL;
	q->enabled = 0;
	return err;
}

int vfio_device_irq_set_vector(struct vfio_device *d, uint32_t index,
			       uint32_t vector, int fd)
{
	struct vfio_irq *q;
	uint32_t old_count, n;
	int *fds, *old;
	int err;

	if (index >= d->info.num_irqs)
		return -EINVAL;
	q = &d->irqs[index];
	if (vector >= q->info.count)
		return -EINVAL;
	if (!q->enabled)
		return -ENOENT;
	if (vector < q->enabled) {
		err = set_irqs(d,
			       VFIO_IRQ_SET_DATA_EVENTFD |
				       VFIO_IRQ_SET_ACTION_TRIGGER,
			       index, vector, 1, &fd);
		if (!err)
			q->fds[vector] = fd;
		return err;
	}
	n = vector + 1;
	fds = malloc(n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	memcpy(fds, q->fds, q->enabled * sizeof(*fds));
	for (uint32_t i = q->enabled; i < vector; i++)
		fds[i] = -1;
	fds[vector] = fd;
	if (!(q->info.flags & VFIO_IRQ_INFO_NORESIZE)) {
		/* The kernel allocates the new vectors in place. */
		err = set_irqs(
			d,
			VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			index, q->enabled, n - q->enabled, fds + q->enabled);
		if (err) {
			free(fds);
			return err;
		}
		free(q->fds);
		q->fds = fds;
		q->enabled = n;
		return 0;
	}
	/* NORESIZE: tear down and enable again with more vectors. */
	old = q->fds;
	old_count = q->enabled;
	q->fds = NULL;
	q->enabled = 0;
	err = set_irqs(d, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		       index, 0, 0, NULL);
	if (!err)
		err = set_irqs(d,
			       VFIO_IRQ_SET_DATA_EVENTFD |
				       VFIO_IRQ_SET_ACTION_TRIGGER,
			       index, 0, n, fds);
	if (!err) {
		free(old);
		q->fds = fds;
		q->enabled = n;
		return 0;
	}
	free(fds);
	/* Put the old vectors back; if even that fails the IRQ is off. */
	if (set_irqs(d, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		     index, 0, old_count, old) == 0) {
		q->fds = old;
		q->enabled = old_count;
	} else {
		free(old);
	}
	return err;
}

int vfio_device_intx_enable(struct vfio_device *d, int trigger, int resample)
{
	int err =
		vfio_device_irq_enable(d, VFIO_PCI_INTX_IRQ_INDEX, &trigger, 1);

	if (err || resample < 0)
		return err;
	err = set_irqs(d,
		       VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK,
		       VFIO_PCI_INTX_IRQ_INDEX, 0, 1, &resample);
	if (err)
		vfio_device_irq_disable(d, VFIO_PCI_INTX_IRQ_INDEX);
	return err;
}

int vfio_device_intx_unmask(struct vfio_device *d)
{
	if (VFIO_PCI_INTX_IRQ_INDEX >= d->info.num_irqs)
		return -EINVAL;
	return set_irqs(d, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
			VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL);
}

int vfio_device_intx_mask(struct vfio_device *d)
{
	if (VFIO_PCI_INTX_IRQ_INDEX >= d->info.num_irqs)
		return -EINVAL;
	return set_irqs(d, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK,
			VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL);
}

/* ----------------------------------------------------------------- reset */

static int hot_reset(struct vfio_device *d)
{
	const struct vfio_sys *sys = d->g->sys;
	struct vfio_pci_hot_reset_info *info;
	struct vfio_pci_hot_reset *rst = NULL;
	uint32_t count = 0, nfds = 0;
	size_t len = sizeof(*info);
	int err;

	if (!d->g->c)
		return -EPERM;
	for (int tries = 0;; tries++) {
		info = calloc(1, len);
		if (!info)
			return -ENOMEM;
		info->argsz = (uint32_t)len;
		err = vfio_sys_ioctl(sys, d->fd,
				     VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info);
		if (err == 0 || err != -ENOSPC || tries >= 2)
			break;
		/* Too small: the kernel wrote the count it needs. */
		count = info->count;
		free(info);
		info = NULL;
		if (count == 0 || count > VFIO_MAX_HOT_RESET)
			return -EPROTO;
		len = sizeof(*info) + count * sizeof(info->devices[0]);
	}
	if (err < 0) {
		free(info);
		/* -ENODEV: neither a slot nor a bus reset is possible
		 * (e.g. a device on the root bus). */
		return err == -ENOTTY || err == -EINVAL || err == -ENODEV
			       ? -EOPNOTSUPP
			       : err;
	}
	count = info->count;
	if ((size_t)count > (len - sizeof(*info)) / sizeof(info->devices[0])) {
		err = -EPROTO;
		goto out;
	}
	rst = calloc(1, sizeof(*rst) + (count + 1) * sizeof(int32_t));
	if (!rst) {
		err = -ENOMEM;
		goto out;
	}
	/* Every affected group must be ours (same container); pass each
	 * group's fd once. */
	for (uint32_t i = 0; i < count; i++) {
		const struct vfio_group *g;
		bool dup = false;

		for (g = d->g->c->groups; g; g = g->next) {
			if (g->id == info->devices[i].group_id)
				break;
		}
		if (!g) {
			err = -EPERM;
			goto out;
		}
		for (uint32_t j = 0; j < nfds; j++)
			dup |= rst->group_fds[j] == g->fd;
		if (!dup)
			rst->group_fds[nfds++] = g->fd;
	}
	if (nfds == 0) {
		rst->group_fds[nfds++] = d->g->fd;
	}
	rst->argsz = (uint32_t)(sizeof(*rst) + nfds * sizeof(int32_t));
	rst->count = nfds;
	err = vfio_sys_ioctl(sys, d->fd, VFIO_DEVICE_PCI_HOT_RESET, rst);
	if (err > 0)
		err = 0;
out:
	free(rst);
	free(info);
	return err;
}

int vfio_device_reset(struct vfio_device *d)
{
	int err;

	if (d->info.flags & VFIO_DEVICE_FLAGS_RESET) {
		err = vfio_sys_ioctl(d->g->sys, d->fd, VFIO_DEVICE_RESET, NULL);
		return err < 0 ? err : 0;
	}
	if (d->info.flags & VFIO_DEVICE_FLAGS_PCI)
		return hot_reset(d);
	return -EOPNOTSUPP;
}
