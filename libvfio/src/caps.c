/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Region-info capability chain parser: bounded, forward-only. */
#include "caps.h"

#include <errno.h>
#include <string.h>

static int parse_sparse(const unsigned char *b, size_t end, size_t off,
			struct vfio_caps *out)
{
	struct vfio_region_info_cap_sparse_mmap sp;
	size_t avail;

	if (out->has_sparse || end - off < sizeof(sp))
		return -EPROTO;
	memcpy(&sp, b + off, sizeof(sp));
	avail = (end - off - sizeof(sp)) /
		sizeof(struct vfio_region_sparse_mmap_area);
	if (sp.nr_areas > avail)
		return -EPROTO;
	for (uint32_t i = 0; i < sp.nr_areas; i++) {
		struct vfio_region_sparse_mmap_area a;

		memcpy(&a, b + off + sizeof(sp) + i * sizeof(a), sizeof(a));
		if (a.size == 0 || a.offset > out->info.size ||
		    a.size > out->info.size - a.offset)
			return -EPROTO;
	}
	out->has_sparse = true;
	out->nr_areas = sp.nr_areas;
	out->areas_off = off + sizeof(sp);
	return 0;
}

int vfio_caps_parse(const void *buf, size_t len, struct vfio_caps *out)
{
	const unsigned char *b = buf;
	size_t end, off;
	int n = 0;

	memset(out, 0, sizeof(*out));
	if (!buf || len < sizeof(out->info))
		return -EPROTO;
	memcpy(&out->info, b, sizeof(out->info));
	if (out->info.offset + out->info.size < out->info.offset)
		return -EPROTO;
	if (!(out->info.flags & VFIO_REGION_INFO_FLAG_CAPS) ||
	    out->info.cap_offset == 0)
		return 0;
	end = out->info.argsz < len ? out->info.argsz : len;
	off = out->info.cap_offset;
	for (;;) {
		struct vfio_info_cap_header h;
		int err = 0;

		if (off < sizeof(out->info) || off % 4 || off > end ||
		    end - off < sizeof(h) || ++n > VFIO_CAPS_MAX)
			return -EPROTO;
		memcpy(&h, b + off, sizeof(h));
		switch (h.id) {
		case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
			err = parse_sparse(b, end, off, out);
			break;
		case VFIO_REGION_INFO_CAP_TYPE: {
			struct vfio_region_info_cap_type t;

			if (out->has_type || end - off < sizeof(t))
				return -EPROTO;
			memcpy(&t, b + off, sizeof(t));
			out->has_type = true;
			out->type = t.type;
			out->subtype = t.subtype;
			break;
		}
		case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
			if (out->msix_mappable)
				return -EPROTO;
			out->msix_mappable = true;
			break;
		default:
			break; /* unknown: skipped */
		}
		if (err)
			return err;
		if (h.next == 0)
			return 0;
		/* Forward only: no cycle, and at most end/4 steps. */
		if (h.next <= off)
			return -EPROTO;
		off = h.next;
	}
}
