/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Reading and writing the buffers of a popped chain.  Buffers were checked
 * structurally at pop; here each access goes through libvm-memory, which
 * checks the guest range as a whole before touching host memory.  A buffer
 * outside RAM breaks the queue.  Every loop below is bounded by the number
 * of buffers in the chain (<= queue size) plus the bytes requested.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static int access_error(struct virtq *q, int err)
{
	return virtq_break(q, err == -EPERM ? VIRTQ_ERR_BUFFER_READONLY
					    : VIRTQ_ERR_BUFFER_OUTSIDE_RAM);
}

/* 0 if @c's queue may be touched: the chain was popped (q set) and the
 * queue is active; else -EINVAL, -ENODEV or -EIO. */
static inline int chain_check(const struct virtq_chain *c)
{
	if (unlikely(!c->q))
		return -EINVAL;
	if (unlikely(!c->q->active))
		return virtq_inactive_error(c->q);
	return 0;
}

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

ssize_t virtq_chain_read(struct virtq_chain *c, void *dst, size_t len)
{
	struct virtq *q = c->q;
	size_t done = 0;
	int ret = chain_check(c);

	if (unlikely(ret))
		return ret;
	while (done < len && c->rd_buf < c->nread) {
		const struct virtq_buf *b = &c->bufs[c->rd_buf];
		size_t n = min_sz(b->len - c->rd_off, len - done);

		if (n) {
			guest_addr_t gpa = b->addr + c->rd_off;
			void *h = virtq_hot_ptr(q, gpa, n);

			if (h) {
				memcpy((char *)dst + done, h, n);
			} else {
				ret = guest_memory_read(q->mem, gpa,
							(char *)dst + done, n);
				if (ret)
					return access_error(q, ret);
			}
		}
		done += n;
		c->rd_off += (uint32_t)n;
		c->rd_done += (uint32_t)n;
		if (c->rd_off == b->len) {
			c->rd_buf++;
			c->rd_off = 0;
		}
	}
	return (ssize_t)done;
}

int virtq_chain_read_exact(struct virtq_chain *c, void *dst, size_t len)
{
	ssize_t n;
	int ret = chain_check(c);

	if (unlikely(ret))
		return ret;
	if (len > virtq_chain_readable(c))
		return -EMSGSIZE;
	n = virtq_chain_read(c, dst, len);
	return n < 0 ? (int)n : 0;
}

ssize_t virtq_chain_write(struct virtq_chain *c, const void *src, size_t len)
{
	struct virtq *q = c->q;
	size_t done = 0;
	int ret = chain_check(c);

	if (unlikely(ret))
		return ret;
	while (done < len && c->nread + c->wr_buf < c->nbufs) {
		const struct virtq_buf *b = &c->bufs[c->nread + c->wr_buf];
		size_t n = min_sz(b->len - c->wr_off, len - done);

		if (n) {
			ret = guest_memory_write(q->mem, b->addr + c->wr_off,
						 (const char *)src + done, n);
			if (ret)
				return access_error(q, ret);
		}
		done += n;
		c->wr_off += (uint32_t)n;
		c->wr_done += (uint32_t)n;
		if (c->wr_off == b->len) {
			c->wr_buf++;
			c->wr_off = 0;
		}
	}
	return (ssize_t)done;
}

int virtq_chain_write_exact(struct virtq_chain *c, const void *src, size_t len)
{
	ssize_t n;
	int ret = chain_check(c);

	if (unlikely(ret))
		return ret;
	if (len > virtq_chain_writable(c))
		return -EMSGSIZE;
	n = virtq_chain_write(c, src, len);
	return n < 0 ? (int)n : 0;
}

uint32_t virtq_chain_skip_read(struct virtq_chain *c, uint32_t len)
{
	uint32_t done = 0;

	while (done < len && c->rd_buf < c->nread) {
		const struct virtq_buf *b = &c->bufs[c->rd_buf];
		uint32_t n = b->len - c->rd_off;

		if (n > len - done)
			n = len - done;
		done += n;
		c->rd_off += n;
		c->rd_done += n;
		if (c->rd_off == b->len) {
			c->rd_buf++;
			c->rd_off = 0;
		}
	}
	return done;
}

uint32_t virtq_chain_skip_write(struct virtq_chain *c, uint32_t len)
{
	uint32_t done = 0;

	while (done < len && c->nread + c->wr_buf < c->nbufs) {
		const struct virtq_buf *b = &c->bufs[c->nread + c->wr_buf];
		uint32_t n = b->len - c->wr_off;

		if (n > len - done)
			n = len - done;
		done += n;
		c->wr_off += n;
		c->wr_done += n;
		if (c->wr_off == b->len) {
			c->wr_buf++;
			c->wr_off = 0;
		}
	}
	return done;
}

/* Every region under [gpa, gpa+len) is writable (the range is in RAM). */
static bool range_writable(const struct guest_memory *m, guest_addr_t gpa,
			   uint64_t len)
{
	/* Bounded: each step moves past one region (len > 0, in RAM). */
	while (len) {
		struct guest_region *r = guest_memory_find_region(m, gpa);
		uint64_t end, n;

		if (!r || (guest_region_flags(r) & GUEST_REGION_READONLY))
			return false;
		end = guest_region_gpa(r) + guest_region_size(r);
		n = end - gpa < len ? end - gpa : len;
		gpa += n;
		len -= n;
	}
	return true;
}

/*
 * Export @len bytes from a cursor as iovecs.  @write selects the writable
 * part.  The cursor is only advanced on success.
 */
static int chain_iov(struct virtq_chain *c, size_t len, struct iovec *iov,
		     int max, bool write)
{
	struct virtq *q = c->q;
	uint16_t bi = write ? (uint16_t)(c->nread + c->wr_buf) : c->rd_buf;
	uint16_t end = write ? c->nbufs : c->nread;
	uint32_t off = write ? c->wr_off : c->rd_off;
	size_t left = min_sz(len, write ? virtq_chain_writable(c)
					: virtq_chain_readable(c));
	uint32_t taken = (uint32_t)left;
	int cnt = 0, ret = chain_check(c);

	if (unlikely(ret))
		return ret;
	if (max < 0 || (!iov && max))
		return -EINVAL;
	while (left && bi < end) {
		const struct virtq_buf *b = &c->bufs[bi];
		size_t n = min_sz(b->len - off, left);

		if (n) {
			void *h = virtq_hot_ptr(q, b->addr + off, n);
			int r;

			if (cnt >= max)
				return -ENOBUFS;
			if (h && (!write || q->hot_write_ok)) {
				iov[cnt].iov_base = h;
				iov[cnt].iov_len = n;
				cnt++;
				goto next;
			}
			r = guest_memory_iovecs(q->mem, b->addr + off, n,
						iov + cnt, max - cnt);
			if (r == -ENOBUFS)
				return -ENOBUFS;
			if (r < 0)
				return access_error(q, r);
			if (write && !range_writable(q->mem, b->addr + off, n))
				return access_error(q, -EPERM);
			cnt += r;
		}
next:
		left -= n;
		off += (uint32_t)n;
		if (off == b->len) {
			bi++;
			off = 0;
		}
	}
	if (write) {
		c->wr_buf = (uint16_t)(bi - c->nread);
		c->wr_off = off;
		c->wr_done += taken;
	} else {
		c->rd_buf = bi;
		c->rd_off = off;
		c->rd_done += taken;
	}
	return cnt;
}

int virtq_chain_readable_iov(struct virtq_chain *c, size_t len,
			     struct iovec *iov, int max)
{
	return chain_iov(c, len, iov, max, false);
}

int virtq_chain_writable_iov(struct virtq_chain *c, size_t len,
			     struct iovec *iov, int max)
{
	return chain_iov(c, len, iov, max, true);
}
