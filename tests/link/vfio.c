/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Links libvfio alone and calls its API (through its system-call seam:
 * no /dev/vfio here). */
#include <cvmm/vfio.h>

#include <errno.h>
#include <stdio.h>

static int no_open(void *ctx, const char *path, int flags)
{
	(void)ctx;
	(void)path;
	(void)flags;
	return -ENOENT;
}

int main(void)
{
	static const struct vfio_sys sys = {.open = no_open};
	struct vfio_container_config cfg = {.sys = &sys};
	struct vfio_container *c = NULL;
	int err = vfio_container_create(&cfg, &c);

	vfio_device_destroy(NULL);
	vfio_group_destroy(NULL);
	vfio_container_destroy(c);
	if (err != -ENOENT || c) {
		fprintf(stderr, "vfio_container_create: %d\n", err);
		return 1;
	}
	return 0;
}
