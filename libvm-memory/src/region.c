/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory regions: host mappings of guest RAM, their backings, guard
 * pages and dirty bitmaps.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

/* ------------------------------------------------------------------ logging */

/* Tell @p's log callback, if it has one (nothing is formatted otherwise). */
__attribute__((format(printf, 3, 4))) static void
gm_log(const struct guest_region_params *p, enum guest_memory_log_level level,
       const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!p->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->log(level, msg, p->log_opaque);
}

/* ------------------------------------------------------------------ regions */

#define GM_KNOWN_FLAGS                                       \
	(GUEST_REGION_GUARD_PAGES | GUEST_REGION_DIRTY_LOG | \
	 GUEST_REGION_READONLY | GUEST_REGION_NORESERVE)

static size_t host_page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

static int check_params(const struct guest_region_params *p)
{
	uint64_t end;

	if (p->size == 0 || (p->size & (GUEST_MEMORY_PAGE_SIZE - 1)) ||
	    (p->gpa & (GUEST_MEMORY_PAGE_SIZE - 1)))
		return -EINVAL;
	/* The region's end must be representable: gpa + size < 2^64. */
	if (__builtin_add_overflow(p->gpa, p->size, &end))
		return -EINVAL;
	if (p->size > SIZE_MAX / 2)
		return -EINVAL;
	if (p->flags & ~(unsigned int)GM_KNOWN_FLAGS)
		return -EINVAL;
	switch (p->backing) {
	case GUEST_REGION_ANON_PRIVATE:
	case GUEST_REGION_ANON_SHARED:
	case GUEST_REGION_MEMFD:
		break;
	case GUEST_REGION_FILE:
		if (p->fd < 0 ||
		    (p->file_offset & (GUEST_MEMORY_PAGE_SIZE - 1)))
			return -EINVAL;
		if (__builtin_add_overflow(p->file_offset, p->size, &end) ||
		    end > (uint64_t)INT64_MAX)
			return -EINVAL;
		break;
	case GUEST_REGION_HUGETLB: {
		uint64_t hps = p->huge_page_size ? p->huge_page_size : 2u << 20;

		if (hps < GUEST_MEMORY_PAGE_SIZE || (hps & (hps - 1)) ||
		    (p->size & (hps - 1)))
			return -EINVAL;
		break;
	}
	case GUEST_REGION_USER:
		if (!p->host_addr ||
		    ((uintptr_t)p->host_addr & (GUEST_MEMORY_PAGE_SIZE - 1)))
			return -EINVAL;
		if (p->flags & GUEST_REGION_GUARD_PAGES)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

/* Is a pool of huge pages of @hps bytes configured in this kernel? */
static bool hugetlb_size_exists(uint64_t hps)
{
	char path[96];

	snprintf(path, sizeof(path),
		 "/sys/kernel/mm/hugepages/hugepages-%llukB",
		 (unsigned long long)(hps >> 10));
	return access(path, F_OK) == 0;
}

static int map_region(struct guest_region *r,
		      const struct guest_region_params *p)
{
	int prot = PROT_READ |
		   (p->flags & GUEST_REGION_READONLY ? 0 : PROT_WRITE);
	int mflags = 0;
	size_t pg = host_page_size();
	size_t align = pg;
	off_t off = 0;
	int fd = -1;
	uint8_t *host;

	switch (p->backing) {
	case GUEST_REGION_ANON_PRIVATE:
		mflags = MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case GUEST_REGION_ANON_SHARED:
		mflags = MAP_SHARED | MAP_ANONYMOUS;
		break;
	case GUEST_REGION_MEMFD:
	case GUEST_REGION_FILE:
		mflags = MAP_SHARED;
		fd = r->fd;
		off = (off_t)r->file_offset;
		break;
	case GUEST_REGION_HUGETLB: {
		uint64_t hps = p->huge_page_size ? p->huge_page_size : 2u << 20;

		if (!hugetlb_size_exists(hps)) {
			gm_log(p, GUEST_MEMORY_LOG_ERROR,
			       "vm-memory: no %llu kB huge pages in this "
			       "kernel",
			       (unsigned long long)(hps >> 10));
			return -ENOTSUP;
		}
		mflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 (int)((unsigned int)__builtin_ctzll(hps)
			       << MAP_HUGE_SHIFT);
		align = (size_t)hps;
		break;
	}
	default:
		return -EINVAL;
	}
	/* A huge page mapping without a reservation dies with SIGBUS on a
	 * fault when the pool is empty: never MAP_NORESERVE those. */
	if ((p->flags & GUEST_REGION_NORESERVE) &&
	    p->backing != GUEST_REGION_HUGETLB)
		mflags |= MAP_NORESERVE;

	if (p->flags & GUEST_REGION_GUARD_PAGES) {
		size_t len = (size_t)p->size + 2 * align;
		uint8_t *base = mmap(
			NULL, len, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		uintptr_t start;

		if (base == MAP_FAILED)
			return -errno;
		/* At least one page below, at least align bytes above. */
		start = ((uintptr_t)base + pg + align - 1) &
			~(uintptr_t)(align - 1);
		host = mmap((void *)start, (size_t)p->size, prot,
			    mflags | MAP_FIXED, fd, off);
		if (host == MAP_FAILED) {
			int err = errno;

			munmap(base, len);
			errno = err;
			goto fail;
		}
		r->map_base = base;
		r->map_len = len;
	} else {
		host = mmap(NULL, (size_t)p->size, prot, mflags, fd, off);
		if (host == MAP_FAILED)
			goto fail;
		r->map_base = host;
		r->map_len = (size_t)p->size;
	}
	r->host = host;
	return 0;

fail:
	if (p->backing == GUEST_REGION_HUGETLB &&
	    (errno == ENOMEM || errno == EINVAL)) {
		gm_log(p, GUEST_MEMORY_LOG_ERROR,
		       "vm-memory: cannot map %llu bytes of %llu kB huge pages "
		       "(%s); is the pool (nr_hugepages) large enough?",
		       (unsigned long long)p->size,
		       (unsigned long long)((p->huge_page_size
						     ? p->huge_page_size
						     : 2u << 20) >>
					    10),
		       strerror(errno));
		return -ENOTSUP;
	}
	return errno == EINVAL ? -EINVAL : -errno;
}

static int open_backing_fd(struct guest_region *r,
			   const struct guest_region_params *p)
{
	struct stat st;

	if (p->backing == GUEST_REGION_MEMFD) {
		r->fd = memfd_create(p->name ? p->name : "guest-ram",
				     MFD_CLOEXEC);
		if (r->fd < 0)
			return -errno;
		if (ftruncate(r->fd, (off_t)p->size) < 0)
			return -errno;
		return 0;
	}
	if (p->backing != GUEST_REGION_FILE)
		return 0;
	r->fd = fcntl(p->fd, F_DUPFD_CLOEXEC, 0);
	if (r->fd < 0)
		return errno == EBADF ? -EINVAL : -errno;
	r->file_offset = p->file_offset;
	if (fstat(r->fd, &st) < 0)
		return -errno;
	/* A mapping past the end of a regular file raises SIGBUS on access:
	 * the file must cover the whole region. */
	if (S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size < p->file_offset + p->size)
		return -EINVAL;
	return 0;
}

int guest_region_create(const struct guest_region_params *params,
			struct guest_region **out)
{
	struct guest_region *r;
	int ret;

	if (!params || !out)
		return -EINVAL;
	ret = check_params(params);
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	atomic_init(&r->refcount, 1);
	r->flags = params->flags;
	r->backing = params->backing;
	r->gpa = params->gpa;
	r->size = params->size;
	r->fd = -1;

	ret = open_backing_fd(r, params);
	if (ret)
		goto err;
	if (params->backing == GUEST_REGION_USER) {
		r->host = params->host_addr;
	} else {
		ret = map_region(r, params);
		if (ret)
			goto err;
	}
	if (params->flags & GUEST_REGION_DIRTY_LOG) {
		uint64_t pages = params->size >> GM_PAGE_SHIFT;

		r->dirty_words = (size_t)((pages + 63) / 64);
		r->dirty = calloc(r->dirty_words, sizeof(*r->dirty));
		if (!r->dirty) {
			ret = -ENOMEM;
			goto err;
		}
	}
	*out = r;
	return 0;

err:
	if (r->map_base)
		munmap(r->map_base, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
	return ret;
}

struct guest_region *guest_region_ref(struct guest_region *r)
{
	if (r)
		atomic_fetch_add_explicit(&r->refcount, 1,
					  memory_order_relaxed);
	return r;
}

void guest_region_unref(struct guest_region *r)
{
	if (!r)
		return;
	/* acq_rel rather than release + fence: the same on x86, and
	 * understood by ThreadSanitizer. */
	if (atomic_fetch_sub_explicit(&r->refcount, 1, memory_order_acq_rel) !=
	    1)
		return;
	if (r->backing != GUEST_REGION_USER && r->map_base)
		munmap(r->map_base, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	free(r->dirty);
	free(r);
}

guest_addr_t guest_region_gpa(const struct guest_region *r)
{
	return r ? r->gpa : 0;
}

uint64_t guest_region_size(const struct guest_region *r)
{
	return r ? r->size : 0;
}

void *guest_region_host_addr(const struct guest_region *r)
{
	return r ? r->host : NULL;
}

int guest_region_fd(const struct guest_region *r, uint64_t *offset)
{
	if (offset)
		*offset = r ? r->file_offset : 0;
	return r ? r->fd : -1;
}

unsigned int guest_region_flags(const struct guest_region *r)
{
	return r ? r->flags : 0;
}

/* ---------------------------------------------------------------- dirty log */

void gm_region_mark_dirty(struct guest_region *r, uint64_t off, uint64_t len)
{
	uint64_t first = off >> GM_PAGE_SHIFT;
	uint64_t last = (off + len - 1) >> GM_PAGE_SHIFT;
	uint64_t w = first / 64, lw = last / 64;

	/*
	 * Order the caller's stores to guest memory before the bitmap loads
	 * below.  Without it (x86 lets a load pass an older store) the
	 * "already set" load can be satisfied while the data store is still
	 * in the store buffer; a harvester may then take that bit and copy
	 * the page before the store lands, and the write is never reported.
	 * A fence needs no exclusive cache line, so skipping the RMW still
	 * saves the bounce; on the RMW path it orders the data before the
	 * bit on weakly ordered CPUs too.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	for (; w <= lw; w++) {
		uint64_t lo = w == first / 64 ? first % 64 : 0;
		uint64_t hi = w == lw ? last % 64 : 63;
		uint64_t mask = (~0ull >> (63 - hi)) & (~0ull << lo);

		/* Skip the locked RMW (and the cache line bounce) when the
		 * bits are set already. */
		if ((atomic_load_explicit(&r->dirty[w], memory_order_relaxed) &
		     mask) != mask)
			atomic_fetch_or_explicit(&r->dirty[w], mask,
						 memory_order_relaxed);
	}
}

size_t guest_region_dirty_bitmap_words(const struct guest_region *r)
{
	if (!r)
		return 0;
	return (size_t)(((r->size >> GM_PAGE_SHIFT) + 63) / 64);
}

int guest_region_dirty_get_and_clear(struct guest_region *r, uint64_t *bitmap,
				     size_t words)
{
	uint64_t count = 0;
	size_t i;

	if (!r || !bitmap)
		return -EINVAL;
	if (!r->dirty)
		return -ENOTSUP;
	if (words < r->dirty_words)
		return -ENOBUFS;
	for (i = 0; i < r->dirty_words; i++) {
		uint64_t v = atomic_load_explicit(&r->dirty[i],
						  memory_order_relaxed);

		/* Only clean words skip the locked exchange.  seq_cst pairs
		 * with the fence in gm_region_mark_dirty(): a writer that
		 * saw the bit set had its data visible before this exchange
		 * took the bit, so the caller's copy of the page sees it. */
		if (v)
			v = atomic_exchange_explicit(&r->dirty[i], 0,
						     memory_order_seq_cst);
		bitmap[i] = v;
		count += (uint64_t)__builtin_popcountll(v);
	}
	return count > INT_MAX ? INT_MAX : (int)count;
}
