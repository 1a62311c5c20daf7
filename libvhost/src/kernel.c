/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The kernel's vhost API (/dev/vhost-*) as a C object. */
#include <cvmm/vhost/kernel.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct vhost_kernel {
	int fd;
	vhost_kernel_ioctl_fn ioctl;
	void *opaque;
	struct guest_memory *mem;
};

static int real_ioctl(void *opaque, int fd, unsigned long request, void *arg)
{
	int r;

	(void)opaque;
	do
		r = ioctl(fd, request, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int vhost_kernel_create(int fd, const struct vhost_kernel_config *cfg,
			struct vhost_kernel **out)
{
	struct vhost_kernel *vk;

	if (fd < 0 || !out)
		return -EINVAL;
	vk = calloc(1, sizeof(*vk));
	if (!vk)
		return -ENOMEM;
	vk->fd = fd;
	vk->ioctl = real_ioctl;
	if (cfg && cfg->ioctl) {
		vk->ioctl = cfg->ioctl;
		vk->opaque = cfg->opaque;
	}
	*out = vk;
	return 0;
}

int vhost_kernel_open(const char *path, const struct vhost_kernel_config *cfg,
		      struct vhost_kernel **out)
{
	int fd, err;

	if (!path || !out)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = vhost_kernel_create(fd, cfg, out);
	if (err)
		close(fd);
	return err;
}

void vhost_kernel_destroy(struct vhost_kernel *vk)
{
	if (!vk)
		return;
	close(vk->fd);
	guest_memory_unref(vk->mem);
	free(vk);
}

int vhost_kernel_fd(const struct vhost_kernel *vk)
{
	return vk ? vk->fd : -1;
}

static int vk_ioctl(struct vhost_kernel *vk, unsigned long request, void *arg)
{
	if (!vk)
		return -EINVAL;
	return vk->ioctl(vk->opaque, vk->fd, request, arg);
}

int vhost_kernel_set_owner(struct vhost_kernel *vk)
{
	return vk_ioctl(vk, VHOST_SET_OWNER, NULL);
}

int vhost_kernel_reset_owner(struct vhost_kernel *vk)
{
	return vk_ioctl(vk, VHOST_RESET_OWNER, NULL);
}

int vhost_kernel_get_features(struct vhost_kernel *vk, uint64_t *features)
{
	uint64_t f = 0;
	int err;

	if (!features)
		return -EINVAL;
	err = vk_ioctl(vk, VHOST_GET_FEATURES, &f);
	if (!err)
		*features = f;
	return err;
}

int vhost_kernel_set_features(struct vhost_kernel *vk, uint64_t features)
{
	return vk_ioctl(vk, VHOST_SET_FEATURES, &features);
}

int vhost_kernel_set_mem_table(struct vhost_kernel *vk,
			       struct guest_memory *mem)
{
	struct vhost_memory *t;
	size_t n;
	int err;

	if (!vk || !mem)
		return -EINVAL;
	n = guest_memory_num_regions(mem);
	if (n == 0 || n > UINT32_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t) + n * sizeof(t->regions[0]));
	if (!t)
		return -ENOMEM;
	t->nregions = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		const struct guest_region *r = guest_memory_region_at(mem, i);

		t->regions[i].guest_phys_addr = guest_region_gpa(r);
		t->regions[i].memory_size = guest_region_size(r);
		t->regions[i].userspace_addr =
			(uint64_t)(uintptr_t)guest_region_host_addr(r);
	}
	err = vk_ioctl(vk, VHOST_SET_MEM_TABLE, t);
	free(t);
	if (!err) {
		struct guest_memory *old = vk->mem;

		vk->mem = guest_memory_ref(mem);
		guest_memory_unref(old);
	}
	return err;
}

static int vring_state(struct vhost_kernel *vk, unsigned long request,
		       unsigned int index, unsigned int num)
{
	struct vhost_vring_state s = {.index = index, .num = num};

	if (num > 0xffff)
		return -EINVAL;
	return vk_ioctl(vk, request, &s);
}

int vhost_kernel_set_vring_num(struct vhost_kernel *vk, unsigned int index,
			       unsigned int num)
{
	return vring_state(vk, VHOST_SET_VRING_NUM, index, num);
}

int vhost_kernel_set_vring_base(struct vhost_kernel *vk, unsigned int index,
				unsigned int base)
{
	return vring_state(vk, VHOST_SET_VRING_BASE, index, base);
}

int vhost_kernel_get_vring_base(struct vhost_kernel *vk, unsigned int index,
				unsigned int *base)
{
	struct vhost_vring_state s = {.index = index};
	int err;

	if (!base)
		return -EINVAL;
	err = vk_ioctl(vk, VHOST_GET_VRING_BASE, &s);
	if (!err)
		*base = s.num;
	return err;
}

static int translate(const struct vhost_kernel *vk, guest_addr_t gpa,
		     uint64_t *host)
{
	void *p;

	if (!vk->mem || guest_memory_translate(vk->mem, gpa, 1, &p) < 0)
		return -EINVAL;
	*host = (uint64_t)(uintptr_t)p;
	return 0;
}

int vhost_kernel_set_vring_addr(struct vhost_kernel *vk, unsigned int index,
				guest_addr_t desc, guest_addr_t avail,
				guest_addr_t used)
{
	struct vhost_vring_addr a = {.index = index};
	uint64_t d, av, u;

	if (!vk)
		return -EINVAL;
	if (translate(vk, desc, &d) || translate(vk, avail, &av) ||
	    translate(vk, used, &u))
		return -EINVAL;
	a.desc_user_addr = d;
	a.avail_user_addr = av;
	a.used_user_addr = u;
	return vk_ioctl(vk, VHOST_SET_VRING_ADDR, &a);
}

static int vring_file(struct vhost_kernel *vk, unsigned long request,
		      unsigned int index, int fd)
{
	struct vhost_vring_file f = {.index = index, .fd = fd};

	if (fd < VHOST_FILE_UNBIND)
		return -EINVAL;
	return vk_ioctl(vk, request, &f);
}

int vhost_kernel_set_vring_kick(struct vhost_kernel *vk, unsigned int index,
				int fd)
{
	return vring_file(vk, VHOST_SET_VRING_KICK, index, fd);
}

int vhost_kernel_set_vring_call(struct vhost_kernel *vk, unsigned int index,
				int fd)
{
	return vring_file(vk, VHOST_SET_VRING_CALL, index, fd);
}

int vhost_kernel_set_vring_err(struct vhost_kernel *vk, unsigned int index,
			       int fd)
{
	return vring_file(vk, VHOST_SET_VRING_ERR, index, fd);
}

int vhost_kernel_net_set_backend(struct vhost_kernel *vk, unsigned int index,
				 int fd)
{
	return vring_file(vk, VHOST_NET_SET_BACKEND, index, fd);
}

int vhost_kernel_vsock_set_guest_cid(struct vhost_kernel *vk, uint64_t cid)
{
	/* 0 hypervisor, 1 local, 2 host, U32_MAX "any": never a guest's. */
	if (cid <= 2 || cid >= UINT32_MAX)
		return -EINVAL;
	return vk_ioctl(vk, VHOST_VSOCK_SET_GUEST_CID, &cid);
}

int vhost_kernel_vsock_set_running(struct vhost_kernel *vk, bool running)
{
	int v = running ? 1 : 0;

	return vk_ioctl(vk, VHOST_VSOCK_SET_RUNNING, &v);
}
