/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Build check: cvmm/devices/virtio-rng.h compiles as the first and only
 * include of a translation unit (linked into test-devices-virtio-header). */
#include <cvmm/devices/virtio-rng.h>

int header_virtio_rng(void);
int header_virtio_rng(void)
{
	return 0;
}
