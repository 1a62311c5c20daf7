/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The region-info capability chain parser (internal; the fuzz target
 * tests/fuzz/vfio drives it directly).
 */
#ifndef CVMM_VFIO_CAPS_H
#define CVMM_VFIO_CAPS_H

#include <linux/vfio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most capabilities one chain may hold; a longer chain is malformed. */
#define VFIO_CAPS_MAX 64

/**
 * struct vfio_caps - what vfio_caps_parse() found.
 * @info:          the fixed part of the answer (copied out)
 * @has_sparse:    a sparse-mmap capability was present
 * @nr_areas:      its area count; the areas are at byte @areas_off of the
 *                 buffer (not necessarily 8-byte aligned: memcpy them)
 * @has_type, @type, @subtype: the region-type capability
 * @msix_mappable: the MSI-X-mappable capability
 */
struct vfio_caps {
	struct vfio_region_info info;
	bool has_sparse;
	uint32_t nr_areas;
	size_t areas_off;
	bool has_type;
	uint32_t type;
	uint32_t subtype;
	bool msix_mappable;
};

/**
 * vfio_caps_parse() - parse the VFIO_DEVICE_GET_REGION_INFO answer in
 * @buf (@len bytes the caller owns; the kernel's argsz may claim more or
 * less).  Only bytes below min(@len, argsz) are read.  The chain must
 * move forward (each next offset above the current one), be 4-byte
 * aligned, each capability must fit whole, sparse areas must lie inside
 * the region and a capability id may appear once.  Unknown capabilities
 * are skipped.  Returns 0, or -EPROTO for a malformed answer.
 */
int vfio_caps_parse(const void *buf, size_t len, struct vfio_caps *out);

#endif /* CVMM_VFIO_CAPS_H */
