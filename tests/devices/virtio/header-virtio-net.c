/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Build check: cvmm/devices/virtio-net.h compiles as the first and only
 * include of a translation unit. */
#include <cvmm/devices/virtio-net.h>

int main(void)
{
	return virtio_net_device(NULL) != NULL;
}
