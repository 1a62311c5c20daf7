/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fuzz target: a device serving raw, guest-controlled rings.
 *
 * The input chooses the queue size, features, ring addresses and the whole
 * content of guest RAM (descriptor tables, rings, indirect tables).  The
 * device loop pops every chain, reads all readable bytes, writes all
 * writable bytes (through the copy API and the iovec export) and completes
 * it, until pop stops.  It must always terminate: the device's writes are
 * one constant byte, so avail.idx can take at most 4 distinct values and
 * each refresh yields at most size chains; more than 4 * size + 4 pops
 * means the queue spins, and abort() says so.  Bit 6 of the flags byte
 * pops with virtq_pop_batch() (up to 8 chains a call) instead.  Bit 7
 * gives each chain small storage (1..8 buffers): a chain that does not fit
 * must come back -ENOBUFS with nothing consumed, and pop with enough room
 * right after.  Byte 15 chooses the layout: bit 0 the packed ring (the
 * device then also writes used descriptors into the ring: a slot can only
 * become available again through a one-byte write of the pattern over its
 * flags, which flips one bit, so a few laps at most; the same bound
 * holds), bit 1 IN_ORDER (the loop completes in pop order anyway).
 *
 * Guest RAM: A [0, 64K) and B [64K, 128K) adjacent, a hole, C [1M, 1M+4K)
 * read-only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#include "test-memory.h"

#define A_SIZE 0x10000ull
#define C_GPA  0x100000ull
#define C_SIZE 0x1000ull

static uint32_t get32(const uint8_t *d)
{
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 |
	       (uint32_t)d[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t split_align[3] = {16, 2, 4};
	static const uint64_t packed_align[3] = {16, 4, 4};
	const uint64_t *align;
	struct guest_memory *m;
	struct virtq *q;
	static struct virtq_buf store[9][1024];
	struct virtq_chain cs[8], *cp, c;
	uint32_t cap;
	uint8_t buf[512], pattern;
	bool batch;
	int got, k;
	struct iovec iov[8];
	uint32_t qsize, pops = 0, bound;
	unsigned int i;
	int r;

	if (size < 17)
		return 0;
	align = data[15] & 1 ? packed_align : split_align;
	m = CVMM_TEST_MEMORY(
		{.gpa = 0, .size = A_SIZE}, {.gpa = A_SIZE, .size = A_SIZE},
		{.gpa = C_GPA, .size = C_SIZE, .flags = GUEST_REGION_READONLY});
	if (virtq_create(1024, &q) || virtq_set_memory(q, m))
		abort();

	qsize = 1u << (data[0] % 11); /* 1..1024 */
	pattern = data[2];
	virtq_set_size(q, qsize);
	virtq_set_features(
		q, (data[1] & 1 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
			   (data[1] & 2 ? 1ull << VIRTIO_RING_F_INDIRECT_DESC
					: 0) |
			   (data[15] & 1 ? 1ull << 34 /* RING_PACKED */ : 0) |
			   (data[15] & 2 ? 1ull << 35 /* IN_ORDER */ : 0));
	virtq_allow_zero_length(q, data[1] & 4);
	for (i = 0; i < 3; i++) {
		uint64_t a = get32(data + 3 + 4 * i) & 0x1fffff;

		/* Mostly aligned, sometimes not. */
		if (!(data[1] & (8u << i)))
			a &= ~(align[i] - 1);
		virtq_set_addr(q, (enum virtq_area)i, a);
	}
	batch = data[1] & 0x40;
	cap = data[1] & 0x80 ? 1 + (data[0] >> 4) % 8 : 1024;
	for (k = 0; k < 8; k++)
		virtq_chain_init(&cs[k], store[k], cap);
	virtq_chain_init(&c, store[8], 1024);
	/* The rest of the input is guest RAM (A then B). */
	data += 16;
	size -= 16;
	if (size > 2 * A_SIZE)
		size = 2 * A_SIZE;
	if (guest_memory_write(m, 0, data, size))
		abort();
	if (virtq_set_ready(q, true))
		goto out;

	bound = 4 * qsize + 4;
	for (;;) {
		uint32_t in_flight = virtq_in_flight(q);

		got = batch ? virtq_pop_batch(q, cs, 8) : virtq_pop(q, cs);
		if (got == -ENOBUFS) {
			/* Nothing consumed; with room it pops. */
			if (virtq_in_flight(q) != in_flight ||
			    cs[0].nbufs <= cap || cs[0].nbufs > qsize)
				abort();
			got = virtq_pop(q, &c);
			if (got != 1 || c.nbufs != cs[0].nbufs)
				abort();
			if (virtq_complete(q, &c) || ++pops > bound)
				abort();
			continue;
		}
		if (got <= 0)
			break;
		if (got > 8 || (!batch && got != 1))
			abort();
		for (k = 0; k < got; k++) {
			if (cs[k].q != q)
				abort();
			/* one in flight per head */
			for (i = 0; i < (unsigned int)k; i++)
				if (cs[i].head == cs[k].head)
					abort();
		}
		for (k = 0; k < got; k++) {
			uint32_t n;

			cp = &cs[k];
			if (++pops > bound)
				abort(); /* the device is spinning */
			if (cp->nbufs == 0 || cp->nbufs > qsize ||
			    cp->nread > cp->nbufs)
				abort();
			/* Read: 1 KiB by copy, some by iovec, skip the rest. */
			for (i = 0; i < 2 && virtq_chain_readable(cp); i++)
				if (virtq_chain_read(cp, buf, sizeof(buf)) < 0)
					break;
			if (virtq_chain_readable_iov(cp, 4096, iov, 8) >= 0)
				virtq_chain_skip_read(cp, UINT32_MAX);
			/* Write the constant pattern the same way. */
			memset(buf, pattern, sizeof(buf));
			for (i = 0; i < 2 && virtq_chain_writable(cp); i++)
				if (virtq_chain_write(cp, buf, sizeof(buf)) < 0)
					break;
			n = virtq_chain_writable(cp);
			r = virtq_chain_writable_iov(cp, n > 65536 ? 65536 : n,
						     iov, 8);
			for (i = 0; r > 0 && i < (unsigned int)r; i++)
				memset(iov[i].iov_base, pattern,
				       iov[i].iov_len);
			if (r == -ENOBUFS)
				virtq_chain_skip_write(cp, 65536);
			if (virtq_is_broken(q))
				goto done;
			if (cp->wr_done > cp->write_len ||
			    cp->rd_done > cp->read_len)
				abort();
			if (virtq_complete(q, cp))
				abort();
			if (pops % 3 == 0)
				virtq_needs_interrupt(q);
			if (pops % 5 == 0)
				virtq_enable_notification(q);
			if (pops % 7 == 0)
				virtq_disable_notification(q);
		}
	}
done:
	/* A broken queue stays broken and quiet. */
	if (virtq_is_broken(q) && virtq_pop(q, &c) != -EIO)
		abort();
out:
	virtq_destroy(q);
	guest_memory_unref(m);
	return 0;
}
