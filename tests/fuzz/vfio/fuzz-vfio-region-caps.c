/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for libvfio's region-info capability-chain parser: the
 * input is the kernel's VFIO_DEVICE_GET_REGION_INFO answer.  The parser
 * must stay inside min(input length, argsz) (ASan catches a read past the
 * input, which is copied to a buffer of exactly its size), terminate on
 * any chain (cycles, backward pointers), and report only areas that lie
 * inside the buffer and the region.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfio_caps caps;
	uint8_t *buf = malloc(size ? size : 1);
	size_t end;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	if (vfio_caps_parse(buf, size, &caps) == 0) {
		end = caps.info.argsz < size ? caps.info.argsz : size;
		if (caps.has_sparse) {
			if (caps.areas_off > end ||
			    caps.nr_areas >
				    (end - caps.areas_off) /
					    sizeof(struct vfio_region_sparse_mmap_area))
				abort();
			for (uint32_t i = 0; i < caps.nr_areas; i++) {
				struct vfio_region_sparse_mmap_area a;

				memcpy(&a, buf + caps.areas_off + i * sizeof(a),
				       sizeof(a));
				if (a.offset > caps.info.size ||
				    a.size > caps.info.size - a.offset)
					abort();
			}
		}
		if (caps.info.offset + caps.info.size < caps.info.offset)
			abort();
	}
	free(buf);
	return 0;
}
