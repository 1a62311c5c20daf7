/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The fake kernel behind libvfio's seam (see fake-vfio.h). */
#include "fake-vfio.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>

static int f_open(void *ctx, const char *path, int flags)
{
	struct fake *f = ctx;

	(void)flags;
	snprintf(f->last_open, sizeof(f->last_open), "%s", path);
	if (strstr(path, "reserved_regions")) {
		if (f->err_open_sysfs)
			return f->err_open_sysfs;
		if (!f->reserved)
			return -ENOENT;
		f->open_fds++;
		return FAKE_FD_SYSFS;
	}
	if (strstr(path, "/vfio/vfio")) {
		if (f->err_open_container)
			return f->err_open_container;
		f->open_fds++;
		return FAKE_FD_CONTAINER;
	}
	if (f->err_open_group)
		return f->err_open_group;
	f->open_fds++;
	return FAKE_FD_GROUP;
}

static int f_close(void *ctx, int fd)
{
	struct fake *f = ctx;

	(void)fd;
	f->open_fds--;
	return 0;
}

static int region_info(struct fake *f, struct vfio_region_info *ri)
{
	uint32_t i = ri->index, asked = ri->argsz;
	size_t n;

	f->calls_region_info++;
	if (i >= FAKE_MAX_REGIONS || i >= f->dinfo.num_regions)
		return -EINVAL;
	if (f->region_err[i])
		return f->region_err[i];
	n = f->region_len[i] < asked ? f->region_len[i] : asked;
	memcpy(ri, f->region[i], n);
	ri->argsz = f->region_greedy ? asked + f->region_greedy
				     : f->region_argsz[i];
	return 0;
}

static int set_irqs(struct fake *f, struct vfio_irq_set *s)
{
	struct fake_set_irqs *l;

	f->calls_set_irqs++;
	if (f->nlog < FAKE_LOG) {
		l = &f->log[f->nlog++];
		l->flags = s->flags;
		l->index = s->index;
		l->start = s->start;
		l->count = s->count;
		if (s->flags & VFIO_IRQ_SET_DATA_EVENTFD) {
			for (uint32_t k = 0; k < s->count && k < 16; k++)
				memcpy(&l->fds[k], s->data + 4 * k, 4);
		}
	}
	if (f->err_set_irqs_at == f->calls_set_irqs ||
	    (f->err_set_irqs_from && f->calls_set_irqs >= f->err_set_irqs_from))
		return -EINVAL;
	return 0;
}

static int hot_reset_info(struct fake *f, struct vfio_pci_hot_reset_info *h)
{
	size_t need =
		sizeof(*h) + (size_t)f->hot_reset_count * sizeof(h->devices[0]);

	if (f->hot_reset_count == -2)
		return -ENODEV;
	if (f->hot_reset_count < 0)
		return -ENOTTY;
	h->count = (uint32_t)f->hot_reset_count;
	if (h->argsz < need)
		return -ENOSPC;
	for (int k = 0; k < f->hot_reset_count; k++) {
		memset(&h->devices[k], 0, sizeof(h->devices[k]));
		h->devices[k].group_id = f->hot_reset_group;
	}
	return 0;
}

/* VFIO ioctl numbers repeat across fd kinds (VFIO_BASE + 13 is both
 * MAP_DMA on a container and PCI_HOT_RESET on a device): dispatch on the
 * fd first. */
static int container_ioctl(struct fake *f, unsigned long req, void *arg);

static int f_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct fake *f = ctx;

	if (fd == FAKE_FD_CONTAINER)
		return container_ioctl(f, req, arg);
	if (fd == FAKE_FD_KVM && req == KVM_SET_DEVICE_ATTR) {
		struct kvm_device_attr *a = arg;

		f->kvm.kvm_fd = fd;
		f->kvm.group = a->group;
		f->kvm.attr = a->attr;
		memcpy(&f->kvm.fd, (void *)(uintptr_t)a->addr, 4);
		return 0;
	}
	if (fd != FAKE_FD_GROUP && fd != FAKE_FD_DEVICE)
		return -EBADF;
	switch (req) {
	case VFIO_GROUP_GET_STATUS:
		((struct vfio_group_status *)arg)->flags = f->group_flags;
		return 0;
	case VFIO_GROUP_SET_CONTAINER:
		if (*(int *)arg != FAKE_FD_CONTAINER)
			return -EBADF;
		return f->err_set_container;
	case VFIO_GROUP_UNSET_CONTAINER:
		f->calls_unset_container++;
		return 0;
	case VFIO_GROUP_GET_DEVICE_FD:
		if (fd != FAKE_FD_GROUP)
			return -EBADF;
		if (f->err_get_device_fd)
			return f->err_get_device_fd;
		f->open_fds++;
		return FAKE_FD_DEVICE;
	case VFIO_DEVICE_GET_INFO:
		*(struct vfio_device_info *)arg = f->dinfo;
		return 0;
	case VFIO_DEVICE_GET_REGION_INFO:
		return region_info(f, arg);
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info *ii = arg;

		if (ii->index >= FAKE_MAX_IRQS)
			return -EINVAL;
		if (f->irq_err[ii->index])
			return f->irq_err[ii->index];
		*ii = f->irq[ii->index];
		return 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return set_irqs(f, arg);
	case VFIO_DEVICE_RESET:
		f->calls_reset++;
		return f->err_reset;
	case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
		return hot_reset_info(f, arg);
	case VFIO_DEVICE_PCI_HOT_RESET: {
		struct vfio_pci_hot_reset *h = arg;

		f->calls_hot_reset++;
		f->hot_reset_nfds = h->count;
		for (uint32_t k = 0; k < h->count && k < 8; k++)
			f->hot_reset_fds[k] = h->group_fds[k];
		return 0;
	}
	}
	return -ENOTTY;
}

static int container_ioctl(struct fake *f, unsigned long req, void *arg)
{
	switch (req) {
	case VFIO_GET_API_VERSION:
		return f->api_version;
	case VFIO_CHECK_EXTENSION:
		if ((uintptr_t)arg == VFIO_TYPE1_IOMMU)
			return f->ext_type1;
		if ((uintptr_t)arg == VFIO_TYPE1v2_IOMMU)
			return f->ext_type1v2;
		return 0;
	case VFIO_SET_IOMMU:
		if ((uintptr_t)arg == VFIO_TYPE1v2_IOMMU && f->err_set_iommu_v2)
			return f->err_set_iommu_v2;
		if ((uintptr_t)arg == VFIO_TYPE1_IOMMU && f->err_set_iommu_v1)
			return f->err_set_iommu_v1;
		f->iommu_type = (int)(uintptr_t)arg;
		return 0;
	case VFIO_IOMMU_MAP_DMA:
		f->calls_map++;
		f->last_map = *(struct vfio_iommu_type1_dma_map *)arg;
		return f->err_map;
	case VFIO_IOMMU_UNMAP_DMA: {
		struct vfio_iommu_type1_dma_unmap *u = arg;

		f->calls_unmap++;
		if (f->unmap_answer)
			u->size = f->unmap_answer;
		return 0;
	}
	}
	return -ENOTTY;
}

static ssize_t f_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	struct fake *f = ctx;

	if (fd == FAKE_FD_SYSFS) {
		size_t n = strlen(f->reserved);

		if ((size_t)off >= n)
			return 0;
		n -= (size_t)off;
		n = n < len ? n : len;
		memcpy(buf, f->reserved + off, n);
		return (ssize_t)n;
	}
	if (f->err_rw)
		return f->err_rw;
	if (off < 0 || (size_t)off > sizeof(f->bar) ||
	    len > sizeof(f->bar) - (size_t)off)
		return -EFAULT;
	memcpy(buf, f->bar + off, len);
	return (ssize_t)len - f->short_by;
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t len,
			off_t off)
{
	struct fake *f = ctx;

	(void)fd;
	if (f->err_rw)
		return f->err_rw;
	if (off < 0 || (size_t)off > sizeof(f->bar) ||
	    len > sizeof(f->bar) - (size_t)off)
		return -EFAULT;
	memcpy(f->bar + off, buf, len);
	return (ssize_t)len - f->short_by;
}

static ssize_t f_readlink(void *ctx, const char *path, char *buf, size_t len)
{
	struct fake *f = ctx;
	size_t n;

	(void)path;
	if (!f->group_link)
		return -ENOENT;
	n = strlen(f->group_link);
	n = n < len ? n : len;
	memcpy(buf, f->group_link, n);
	return (ssize_t)n;
}

static int f_mmap(void *ctx, size_t len, int prot, int fd, off_t off,
		  void **out)
{
	struct fake *f = ctx;

	(void)prot;
	if (fd != FAKE_FD_DEVICE || off < 0 || (size_t)off > sizeof(f->bar) ||
	    len > sizeof(f->bar) - (size_t)off)
		return -EINVAL;
	*out = f->bar + off;
	return 0;
}

static int f_munmap(void *ctx, void *addr, size_t len)
{
	struct fake *f = ctx;

	if ((unsigned char *)addr < f->bar ||
	    (unsigned char *)addr + len > f->bar + sizeof(f->bar))
		return -EINVAL;
	f->munmaps++;
	return 0;
}

void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->sys.ctx = f;
	f->sys.open = f_open;
	f->sys.close = f_close;
	f->sys.ioctl = f_ioctl;
	f->sys.pread = f_pread;
	f->sys.pwrite = f_pwrite;
	f->sys.readlink = f_readlink;
	f->sys.mmap = f_mmap;
	f->sys.munmap = f_munmap;
	f->api_version = VFIO_API_VERSION;
	f->ext_type1 = 1;
	f->ext_type1v2 = 1;
	f->group_flags = VFIO_GROUP_FLAGS_VIABLE;
	f->hot_reset_count = -1;
}

struct vfio_region_info *fake_region(struct fake *f, uint32_t i, uint32_t flags,
				     uint64_t size, uint64_t offset,
				     uint32_t cap_offset, size_t len)
{
	struct vfio_region_info ri;

	memset(f->region[i], 0, sizeof(f->region[i]));
	memset(&ri, 0, sizeof(ri));
	ri.argsz = (uint32_t)len;
	ri.flags = flags | (cap_offset ? VFIO_REGION_INFO_FLAG_CAPS : 0);
	ri.index = i;
	ri.cap_offset = cap_offset;
	ri.size = size;
	ri.offset = offset;
	memcpy(f->region[i], &ri, sizeof(ri));
	f->region_len[i] = len;
	f->region_argsz[i] = (uint32_t)len;
	return (struct vfio_region_info *)(void *)f->region[i];
}

void fake_cap_header(struct fake *f, uint32_t i, uint32_t off, uint16_t id,
		     uint32_t next)
{
	struct vfio_info_cap_header h = {.id = id, .version = 1, .next = next};

	memcpy(f->region[i] + off, &h, sizeof(h));
}

void fake_cap_sparse(struct fake *f, uint32_t i, uint32_t off, uint32_t next,
		     uint32_t n, const uint64_t *areas)
{
	struct vfio_region_info_cap_sparse_mmap sp;

	memset(&sp, 0, sizeof(sp));
	sp.header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
	sp.header.version = 1;
	sp.header.next = next;
	sp.nr_areas = n;
	memcpy(f->region[i] + off, &sp, sizeof(sp));
	for (uint32_t k = 0; k < n; k++) {
		struct vfio_region_sparse_mmap_area a = {
			.offset = areas[2 * k], .size = areas[2 * k + 1]};

		memcpy(f->region[i] + off + sizeof(sp) + k * sizeof(a), &a,
		       sizeof(a));
	}
}

void fake_cap_type(struct fake *f, uint32_t i, uint32_t off, uint32_t next,
		   uint32_t type, uint32_t subtype)
{
	struct vfio_region_info_cap_type t;

	memset(&t, 0, sizeof(t));
	t.header.id = VFIO_REGION_INFO_CAP_TYPE;
	t.header.version = 1;
	t.header.next = next;
	t.type = type;
	t.subtype = subtype;
	memcpy(f->region[i] + off, &t, sizeof(t));
}

void fake_device(struct fake *f, uint32_t nregions)
{
	f->dinfo.argsz = sizeof(f->dinfo);
	f->dinfo.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
	f->dinfo.num_regions = nregions;
	f->dinfo.num_irqs = FAKE_MAX_IRQS;
	for (uint32_t i = 0; i < nregions && i < FAKE_MAX_REGIONS; i++)
		fake_region(f, i,
			    i == 0 ? VFIO_REGION_INFO_FLAG_READ |
					     VFIO_REGION_INFO_FLAG_WRITE |
					     VFIO_REGION_INFO_FLAG_MMAP
				   : 0,
			    i == 0 ? 4096 : 0, 0, 0,
			    sizeof(struct vfio_region_info));
	for (uint32_t i = 0; i < FAKE_MAX_IRQS; i++) {
		f->irq[i].argsz = sizeof(f->irq[i]);
		f->irq[i].index = i;
		f->irq[i].flags = VFIO_IRQ_INFO_EVENTFD;
		f->irq[i].count = 1;
	}
	f->irq[VFIO_PCI_INTX_IRQ_INDEX].flags |= VFIO_IRQ_INFO_MASKABLE |
						 VFIO_IRQ_INFO_AUTOMASKED;
	f->irq[VFIO_PCI_MSI_IRQ_INDEX].flags |= VFIO_IRQ_INFO_NORESIZE;
	f->irq[VFIO_PCI_MSIX_IRQ_INDEX].flags |= VFIO_IRQ_INFO_NORESIZE;
	f->irq[VFIO_PCI_MSIX_IRQ_INDEX].count = 8;
}
