/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libkvm-ioctls: device fds (KVM_CREATE_DEVICE) and their attributes. */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

CVMM_EXPORT int kvm_vm_device_supported(struct kvm_vm_obj *vm, uint32_t type)
{
	struct kvm_create_device d = {
		.type = type,
		.flags = KVM_CREATE_DEVICE_TEST,
	};
	int r;

	if (!vm)
		return -EINVAL;
	r = kvm_xioctl(vm->fd, KVM_CREATE_DEVICE, &d);
	if (r == -ENODEV)
		return 0;
	return r < 0 ? r : 1;
}

CVMM_EXPORT int kvm_dev_create(struct kvm_vm_obj *vm, uint32_t type,
			       struct kvm_dev_obj **out)
{
	struct kvm_create_device d = {.type = type};
	struct kvm_dev_obj *dev;
	int r;

	if (!vm || !out)
		return -EINVAL;
	*out = NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	r = kvm_xioctl(vm->fd, KVM_CREATE_DEVICE, &d);
	if (r < 0) {
		free(dev);
		return r;
	}
	dev->fd = (int)d.fd;
	dev->type = type;
	*out = dev;
	return 0;
}

CVMM_EXPORT void kvm_dev_destroy(struct kvm_dev_obj *dev)
{
	if (!dev)
		return;
	close(dev->fd);
	free(dev);
}

CVMM_EXPORT int kvm_dev_fd(const struct kvm_dev_obj *dev)
{
	return dev ? dev->fd : -EINVAL;
}

CVMM_EXPORT uint32_t kvm_dev_type(const struct kvm_dev_obj *dev)
{
	return dev ? dev->type : 0;
}

static int dev_attr(struct kvm_dev_obj *dev, unsigned long req, uint32_t group,
		    uint64_t attr, const void *addr)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = (uint64_t)(uintptr_t)addr,
	};

	if (!dev)
		return -EINVAL;
	return kvm_xioctl(dev->fd, req, &a);
}

CVMM_EXPORT int kvm_dev_has_attr(struct kvm_dev_obj *dev, uint32_t group,
				 uint64_t attr)
{
	int r = dev_attr(dev, KVM_HAS_DEVICE_ATTR, group, attr, NULL);

	if (r == -ENXIO)
		return 0;
	return r < 0 ? r : 1;
}

CVMM_EXPORT int kvm_dev_set_attr(struct kvm_dev_obj *dev, uint32_t group,
				 uint64_t attr, const void *addr)
{
	return dev_attr(dev, KVM_SET_DEVICE_ATTR, group, attr, addr);
}

CVMM_EXPORT int kvm_dev_get_attr(struct kvm_dev_obj *dev, uint32_t group,
				 uint64_t attr, void *addr)
{
	if (!addr)
		return -EINVAL;
	return dev_attr(dev, KVM_GET_DEVICE_ATTR, group, attr, addr);
}

CVMM_EXPORT int kvm_dev_vfio_add_group(struct kvm_dev_obj *dev, int group_fd)
{
	int32_t fd = group_fd;

	if (!dev || dev->type != KVM_DEV_TYPE_VFIO)
		return -EINVAL;
	return kvm_dev_set_attr(dev, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD,
				&fd);
}

CVMM_EXPORT int kvm_dev_vfio_del_group(struct kvm_dev_obj *dev, int group_fd)
{
	int32_t fd = group_fd;

	if (!dev || dev->type != KVM_DEV_TYPE_VFIO)
		return -EINVAL;
	return kvm_dev_set_attr(dev, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL,
				&fd);
}
