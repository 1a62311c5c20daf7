/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Build check: cvmm/devices/virtio-console.h compiles on its own (first and
 * only include) with the project's strict warnings, and its defaults are
 * the documented ones.
 */
#include <cvmm/devices/virtio-console.h>

int main(void)
{
	struct virtio_console_params p = {0};
	struct virtio_console_port_config pc = {0};
	struct virtio_console_port_stats ps = {0};
	struct virtio_console_stats st = {0};

	(void)pc;
	(void)ps;
	(void)st;
	return p.nr_ports == 0 && VIRTIO_CONSOLE_MAX_PORTS * 2 + 2 <= 1024 &&
			       VIRTIO_CONSOLE_OUT_BUFFER_DEFAULT == 65536u
		       ? 0
		       : 1;
}
