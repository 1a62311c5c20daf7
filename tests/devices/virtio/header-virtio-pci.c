/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Build check: cvmm/devices/virtio-pci.h compiles as the first and only
 * include of a translation unit (linked into test-devices-virtio-header). */
#include <cvmm/devices/virtio-pci.h>

int header_virtio_pci(void);
int header_virtio_pci(void)
{
	return 0;
}
