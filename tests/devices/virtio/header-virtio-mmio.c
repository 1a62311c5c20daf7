/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Build check: cvmm/devices/virtio-mmio.h compiles as the first and only
 * include of a translation unit (linked into test-devices-virtio-header). */
#include <cvmm/devices/virtio-mmio.h>

int header_virtio_mmio(void);
int header_virtio_mmio(void)
{
	return 0;
}
