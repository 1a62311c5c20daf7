/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Little-endian byte-array access for register files (PCI config space,
 * virtio-pci capabilities): @len bytes at @p, 1..8.  Internal to
 * libdevices.
 */
#ifndef CVMM_DEVICES_LE_BYTES_H
#define CVMM_DEVICES_LE_BYTES_H

#include <stdint.h>

static inline void put_le(uint8_t *p, unsigned len, uint64_t v)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#endif /* CVMM_DEVICES_LE_BYTES_H */
