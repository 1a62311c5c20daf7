/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory snapshots and checked access.
 *
 * A snapshot is an array of entries sorted by guest address; each entry
 * copies its region's gpa, size and host address so that a lookup touches
 * only the array.  Lookup is a branch-free binary search (conditional
 * moves); an empty snapshot holds one zero-sized sentinel entry so that the
 * search never needs a special case.  A read or write inside one region is
 * one range check and one copy (inline moves up to 64 bytes, else memcpy).
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* What a lookup needs, 32 bytes.  wsize is size for a region that plain
 * writes may go to, 0 for a read-only or dirty-logging one, so the write
 * fast path costs no more than the read one and the others take the
 * general path. */
struct gm_entry {
	guest_addr_t gpa;
	uint64_t size;
	uint64_t wsize;
	uint8_t *host;
};

struct guest_memory {
	/* First: what the header's inline fast paths read. */
	struct guest_memory_first_ first;
	atomic_uint refcount;
	bool any_dirty;		 /* some region logs dirty pages */
	size_t n;		 /* regions */
	size_t ln;		 /* entries searched: max(n, 1) */
	struct guest_region **r; /* n regions, in the order of e[] */
	struct gm_entry e[];	 /* ln entries, sorted by gpa */
};

static inline struct guest_region *gm_reg(const struct guest_memory *m,
					  const struct gm_entry *e)
{
	return m->r[e - m->e];
}

/* The entry whose gpa is the greatest <= @gpa, or the first entry.  The
 * caller checks that @gpa is inside it. */
static inline const struct gm_entry *gm_search(const struct guest_memory *m,
					       guest_addr_t gpa)
{
	const struct gm_entry *base = m->e;
	size_t n = m->ln;

	while (n > 1) {
		size_t half = n / 2;
		const struct gm_entry *mid = base + half;

		/* A conditional move, not a branch: lookups of scattered
		 * addresses would mispredict it half the time.  Compilers
		 * do not reliably emit cmov for this, so spell it out. */
#if defined(__x86_64__)
		__asm__("cmpq %[key], %[mg]\n\t"
			"cmovbe %[mid], %[base]"
			: [base] "+r"(base)
			: [mg] "r"(mid->gpa), [key] "r"(gpa), [mid] "r"(mid)
			: "cc");
#else
		base = mid->gpa <= gpa ? mid : base;
#endif
		n -= half;
	}
	return base;
}

/*
 * Is [off, off + len) inside @e, where off = gpa - e->gpa (wrapping)?
 * One add and one compare: an off that wrapped (gpa below the first region)
 * is at least 2^64 - e->gpa > e->size, since regions end below 2^64.  With
 * len 0 an off equal to size passes, which is harmless: nothing is copied.
 */
static inline bool gm_fits(const struct gm_entry *e, uint64_t off, uint64_t len)
{
	uint64_t end;

	return !__builtin_add_overflow(off, len, &end) && end <= e->size;
}

/*
 * Copy @n bytes.  Small copies are done inline with (possibly overlapping)
 * unaligned moves, which saves the call into memcpy for the typical guest
 * structure (a descriptor, a header); larger ones call memcpy.
 */
typedef uint64_t gm_u64u __attribute__((aligned(1), may_alias));
typedef uint32_t gm_u32u __attribute__((aligned(1), may_alias));
typedef uint8_t gm_v16u __attribute__((vector_size(16), aligned(1), may_alias));

/* Large copies: out of line, so that the callers' fast paths make only
 * tail calls and need no stack frame. */
static __attribute__((noinline)) int gm_memcpy0(void *dst, const void *src,
						size_t n)
{
	memcpy(dst, src, n);
	return 0;
}

/* Copy @n bytes; returns 0 (so that callers can tail-call it). */
static inline int gm_copy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (n <= 16) {
		if (n >= 8) {
			uint64_t a = *(const gm_u64u *)s;
			uint64_t b = *(const gm_u64u *)(s + n - 8);

			*(gm_u64u *)d = a;
			*(gm_u64u *)(d + n - 8) = b;
		} else if (n >= 4) {
			uint32_t a = *(const gm_u32u *)s;
			uint32_t b = *(const gm_u32u *)(s + n - 4);

			*(gm_u32u *)d = a;
			*(gm_u32u *)(d + n - 4) = b;
		} else if (n) {
			return gm_memcpy0(d, s, n); /* 1 to 3 bytes: rare */
		}
	} else if (n <= 32) {
		gm_v16u a = *(const gm_v16u *)s;
		gm_v16u b = *(const gm_v16u *)(s + n - 16);

		*(gm_v16u *)d = a;
		*(gm_v16u *)(d + n - 16) = b;
	} else if (n <= 64) {
		gm_v16u a = *(const gm_v16u *)s;
		gm_v16u b = *(const gm_v16u *)(s + 16);
		gm_v16u c = *(const gm_v16u *)(s + n - 32);
		gm_v16u e = *(const gm_v16u *)(s + n - 16);

		*(gm_v16u *)d = a;
		*(gm_v16u *)(d + 16) = b;
		*(gm_v16u *)(d + n - 32) = c;
		*(gm_v16u *)(d + n - 16) = e;
	} else {
		return gm_memcpy0(d, s, n);
	}
	return 0;
}

/* The same for plain writes (wsize is 0 where they may not go). */
static inline bool gm_wfits(const struct gm_entry *e, uint64_t off,
			    uint64_t len)
{
	uint64_t end;

	return !__builtin_add_overflow(off, len, &end) && end <= e->wsize;
}

/* ---------------------------------------------------------------- snapshots */

static uint8_t gm_sentinel_host[1];

static int gm_region_cmp(const void *a, const void *b)
{
	const struct guest_region *x = *(struct guest_region *const *)a;
	const struct guest_region *y = *(struct guest_region *const *)b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/*
 * A new snapshot of the @n regions @regs (any order; the array is sorted in
 * place).  Refuses overlaps; takes a reference to each region on success.
 */
static int gm_build(struct guest_region **regs, size_t n,
		    struct guest_memory **out)
{
	size_t ln = n ? n : 1, i;
	struct guest_memory *m;

	if (ln >
	    (SIZE_MAX - sizeof(*m)) / (sizeof(struct gm_entry) + sizeof(*regs)))
		return -ENOMEM;
	qsort(regs, n, sizeof(*regs), gm_region_cmp);
	for (i = 1; i < n; i++)
		if (regs[i]->gpa - regs[i - 1]->gpa < regs[i - 1]->size)
			return -EEXIST;
	m = calloc(1,
		   sizeof(*m) + ln * (sizeof(struct gm_entry) + sizeof(*regs)));
	if (!m)
		return -ENOMEM;
	atomic_init(&m->refcount, 1);
	m->n = n;
	m->ln = ln;
	m->r = (struct guest_region **)(void *)(m->e + ln);
	/* The empty snapshot's sentinel (size 0) matches only zero-length
	 * accesses, which copy nothing; give it a real address anyway. */
	m->e[0].host = gm_sentinel_host;
	for (i = 0; i < n; i++) {
		struct guest_region *r = regs[i];

		m->e[i].gpa = r->gpa;
		m->e[i].size = r->size;
		m->e[i].host = r->host;
		if (!(r->flags &
		      (GUEST_REGION_READONLY | GUEST_REGION_DIRTY_LOG)))
			m->e[i].wsize = r->size;
		if (r->flags & GUEST_REGION_DIRTY_LOG)
			m->any_dirty = true;
		m->r[i] = guest_region_ref(r);
	}
	if (n == 1) { /* else all zero: size 0 matches nothing */
		m->first.gpa = m->e[0].gpa;
		m->first.size = m->e[0].size;
		m->first.host = m->e[0].host;
		m->first.region = m->r[0];
	}
	*out = m;
	return 0;
}

int guest_memory_create(struct guest_region *const *regions, size_t n,
			struct guest_memory **out)
{
	struct guest_region **regs;
	size_t i;
	int ret;

	if (!out || (n && !regions))
		return -EINVAL;
	/* A count whose array cannot exist: refuse before reading it (the
	 * copy's size would wrap). */
	if (n > SIZE_MAX / sizeof(*regs) - 1)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (!regions[i])
			return -EINVAL;
	regs = malloc((n ? n : 1) * sizeof(*regs));
	if (!regs)
		return -ENOMEM;
	if (n)
		memcpy(regs, regions, n * sizeof(*regs));
	ret = gm_build(regs, n, out);
	free(regs);
	return ret;
}

int guest_memory_create_ranges(const struct guest_memory_range *ranges,
			       size_t n,
			       const struct guest_region_params *params,
			       struct guest_memory **out)
{
	struct guest_region_params p;
	struct guest_region **regs;
	size_t made = 0, i;
	int ret = 0;

	if (!out || (n && !ranges))
		return -EINVAL;
	memset(&p, 0, sizeof(p));
	if (params) {
		/* One fd or one host mapping cannot back several ranges; the
		 * place of each range comes from @ranges alone. */
		if (params->gpa || params->size ||
		    params->backing == GUEST_REGION_FILE ||
		    params->backing == GUEST_REGION_USER)
			return -EINVAL;
		p = *params;
	}
	if (n > SIZE_MAX / sizeof(*regs) - 1)
		return -ENOMEM;
	regs = malloc((n ? n : 1) * sizeof(*regs));
	if (!regs)
		return -ENOMEM;
	for (; made < n; made++) {
		p.gpa = ranges[made].gpa;
		p.size = ranges[made].size;
		ret = guest_region_create(&p, &regs[made]);
		if (ret)
			break;
	}
	if (!ret)
		ret = gm_build(regs, n, out);
	/* The snapshot holds its own references; on error this unmaps. */
	for (i = 0; i < made; i++)
		guest_region_unref(regs[i]);
	free(regs);
	return ret;
}

int guest_memory_add_region(const struct guest_memory *m,
			    struct guest_region *r, struct guest_memory **out)
{
	struct guest_region **regs;
	int ret;

	if (!m || !r || !out)
		return -EINVAL;
	regs = malloc((m->n + 1) * sizeof(*regs));
	if (!regs)
		return -ENOMEM;
	if (m->n)
		memcpy(regs, m->r, m->n * sizeof(*regs));
	regs[m->n] = r;
	ret = gm_build(regs, m->n + 1, out);
	free(regs);
	return ret;
}

int guest_memory_remove_region(const struct guest_memory *m, guest_addr_t gpa,
			       uint64_t size, struct guest_memory **out,
			       struct guest_region **removed)
{
	struct guest_region **regs;
	size_t i;
	int ret;

	if (!m || !out)
		return -EINVAL;
	for (i = 0; i < m->n; i++)
		if (m->e[i].gpa == gpa && m->e[i].size == size)
			break;
	if (i == m->n)
		return -ENOENT;
	regs = malloc(m->n * sizeof(*regs));
	if (!regs)
		return -ENOMEM;
	memcpy(regs, m->r, i * sizeof(*regs));
	memcpy(regs + i, m->r + i + 1, (m->n - i - 1) * sizeof(*regs));
	ret = gm_build(regs, m->n - 1, out);
	free(regs);
	if (ret)
		return ret;
	if (removed)
		*removed = guest_region_ref(m->r[i]);
	return 0;
}

struct guest_memory *guest_memory_ref(struct guest_memory *m)
{
	if (m)
		atomic_fetch_add_explicit(&m->refcount, 1,
					  memory_order_relaxed);
	return m;
}

void guest_memory_unref(struct guest_memory *m)
{
	size_t i;

	if (!m)
		return;
	/* acq_rel rather than release + fence: the same on x86, and
	 * understood by ThreadSanitizer. */
	if (atomic_fetch_sub_explicit(&m->refcount, 1, memory_order_acq_rel) !=
	    1)
		return;
	for (i = 0; i < m->n; i++)
		guest_region_unref(m->r[i]);
	free(m);
}

size_t guest_memory_num_regions(const struct guest_memory *m)
{
	return m ? m->n : 0;
}

struct guest_region *guest_memory_region_at(const struct guest_memory *m,
					    size_t i)
{
	if (!m || i >= m->n)
		return NULL;
	return m->r[i];
}

struct guest_region *guest_memory_find_region_slow(const struct guest_memory *m,
						   guest_addr_t gpa)
{
	const struct gm_entry *e;

	if (!m)
		return NULL;
	e = gm_search(m, gpa);
	return gpa - e->gpa < e->size ? gm_reg(m, e) : NULL;
}

/* The exported name of what the header inlines: the whole function. */
__typeof__(guest_memory_find_region_slow) guest_memory_find_region
	__attribute__((alias("guest_memory_find_region_slow")));

guest_addr_t guest_memory_end(const struct guest_memory *m)
{
	if (!m || !m->n)
		return 0;
	return m->e[m->n - 1].gpa + m->e[m->n - 1].size;
}

/* ------------------------------------------------------------ range checks */

/*
 * Check [gpa, gpa + len), len > 0, across adjacent regions.  On success
 * *first is the index of the entry holding @gpa.  With @write, a read-only
 * region in the range gives -EPERM.
 */
static int gm_check_span(const struct guest_memory *m, guest_addr_t gpa,
			 uint64_t len, bool write, size_t *first)
{
	const struct gm_entry *e;
	uint64_t cur = gpa, left = len;
	size_t i;

	if (len - 1 > UINT64_MAX - gpa)
		return -EOVERFLOW;
	e = gm_search(m, gpa);
	if (gpa - e->gpa >= e->size)
		return -EFAULT;
	i = (size_t)(e - m->e);
	*first = i;
	for (;;) { /* at most n iterations */
		uint64_t avail = m->e[i].gpa + m->e[i].size - cur;

		if (write && (m->r[i]->flags & GUEST_REGION_READONLY))
			return -EPERM;
		if (left <= avail)
			return 0;
		left -= avail;
		cur += avail;
		if (++i >= m->n || m->e[i].gpa != cur)
			return -ENXIO;
	}
}

int guest_memory_check_range(const struct guest_memory *m, guest_addr_t gpa,
			     uint64_t len)
{
	size_t first;

	if (!m)
		return -EINVAL;
	if (len == 0)
		return 0;
	return gm_check_span(m, gpa, len, false, &first);
}

/* ------------------------------------------------------------ copy engine */

enum gm_op {
	GM_READ,
	GM_WRITE,
	GM_FILL
};

static inline void gm_dirty(const struct guest_memory *m,
			    const struct gm_entry *e, uint64_t off,
			    uint64_t len)
{
	struct guest_region *r = gm_reg(m, e);

	if (r->dirty)
		gm_region_mark_dirty(r, off, len);
}

/*
 * Writes of at least this many bytes into a memfd-backed region go through
 * the fd (pwrite at the same offset: the same page cache pages the mapping
 * shows) instead of the mapping.  For pages the guest has not touched yet,
 * which is what loading a kernel or an initrd writes, the kernel then
 * allocates them without zeroing them first and without one page fault
 * each: 8 MiB took 2.5 ms instead of 4.2 ms on the development host.
 */
#define GM_FD_WRITE_MIN (1u << 20)

/* Writes @len bytes at offset @off of region @r, not read-only; falls
 * back to the mapping for whatever pwrite did not take. */
static void gm_store(const struct guest_region *r, uint64_t off,
		     const uint8_t *src, uint64_t len)
{
	if (len >= GM_FD_WRITE_MIN && r->backing == GUEST_REGION_MEMFD) {
		int saved = errno;

		while (len) { /* bounded: every pass writes or stops */
			size_t chunk = len > (1u << 30) ? 1u << 30 : len;
			ssize_t n = pwrite(r->fd, src, chunk,
					   (off_t)(r->file_offset + off));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			src += n;
			off += (uint64_t)n;
			len -= (uint64_t)n;
		}
		errno = saved;
	}
	if (len)
		memcpy(r->host + off, src, len);
}

/* Checked copy of any range (crossing regions, or erroneous). */
static int gm_copy_slow(const struct guest_memory *m, guest_addr_t gpa,
			void *buf, uint64_t len, enum gm_op op, int byte)
{
	uint8_t *p = buf;
	size_t i;
	int ret;

	if (len == 0)
		return 0;
	ret = gm_check_span(m, gpa, len, op != GM_READ, &i);
	if (ret)
		return ret;
	while (len) { /* bounded: the span check walked these entries */
		const struct gm_entry *e = &m->e[i++];
		uint64_t off = gpa - e->gpa;
		uint64_t chunk = e->size - off;

		if (chunk > len)
			chunk = len;
		switch (op) {
		case GM_READ:
			memcpy(p, e->host + off, chunk);
			break;
		case GM_WRITE:
			gm_store(gm_reg(m, e), off, p, chunk);
			gm_dirty(m, e, off, chunk);
			break;
		case GM_FILL:
			memset(e->host + off, byte, chunk);
			gm_dirty(m, e, off, chunk);
			break;
		}
		if (p)
			p += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

/* A write inside one region of a snapshot that has read-only or logging
 * regions: the region's own flags decide. */
static int gm_write_one(const struct guest_memory *m, const struct gm_entry *e,
			uint64_t off, const void *buf, uint64_t len)
{
	if (!len)
		return 0; /* zero-length writes succeed anywhere */
	if (gm_reg(m, e)->flags & GUEST_REGION_READONLY)
		return -EPERM;
	if (len >= GM_FD_WRITE_MIN)
		gm_store(gm_reg(m, e), off, buf, len);
	else
		gm_copy(e->host + off, buf, len);
	gm_dirty(m, e, off, len);
	return 0;
}

/* Any write the fast path did not take: bad arguments, read-only or
 * logging regions, ranges crossing regions, errors. */
static __attribute__((noinline)) int
gm_write_general(const struct guest_memory *m, guest_addr_t gpa,
		 const void *buf, uint64_t len)
{
	const struct gm_entry *e;
	uint64_t off;

	if (!buf && len)
		return -EINVAL;
	e = gm_search(m, gpa);
	off = gpa - e->gpa;
	if (gm_fits(e, off, len))
		return gm_write_one(m, e, off, buf, len);
	return gm_copy_slow(m, gpa, (void *)(uintptr_t)buf, len, GM_WRITE, 0);
}

/* Any read the fast path did not take. */
static __attribute__((noinline)) int
gm_read_general(const struct guest_memory *m, guest_addr_t gpa, void *buf,
		uint64_t len)
{
	if (!buf && len)
		return -EINVAL;
	return gm_copy_slow(m, gpa, buf, len, GM_READ, 0);
}

int guest_memory_read(const struct guest_memory *m, guest_addr_t gpa, void *buf,
		      size_t len)
{
	const struct gm_entry *e;
	uint64_t off;

	if (unlikely(!m))
		return -EINVAL;
	e = gm_search(m, gpa);
	off = gpa - e->gpa;
	if (likely(gm_fits(e, off, len) && buf))
		return gm_copy(buf, e->host + off, len);
	return gm_read_general(m, gpa, buf, len);
}

int guest_memory_write(const struct guest_memory *m, guest_addr_t gpa,
		       const void *buf, size_t len)
{
	const struct gm_entry *e;
	uint64_t off;

	if (unlikely(!m))
		return -EINVAL;
	e = gm_search(m, gpa);
	off = gpa - e->gpa;
	if (likely(gm_wfits(e, off, len) && buf && len < GM_FD_WRITE_MIN))
		return gm_copy(e->host + off, buf, len);
	return gm_write_general(m, gpa, buf, len);
}

int guest_memory_fill(const struct guest_memory *m, guest_addr_t gpa, int byte,
		      size_t len)
{
	if (!m)
		return -EINVAL;
	return gm_copy_slow(m, gpa, NULL, len, GM_FILL, byte);
}

/* ------------------------------------------------------------ typed access */

#define GM_BIG_ENDIAN (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)

#define GM_TYPED(bits)                                                       \
	int guest_memory_read_u##bits(const struct guest_memory *m,          \
				      guest_addr_t gpa, uint##bits##_t *val) \
	{                                                                    \
		const struct gm_entry *e;                                    \
		uint##bits##_t v;                                            \
		uint64_t off;                                                \
		int ret;                                                     \
                                                                             \
		if (unlikely(!m || !val))                                    \
			return -EINVAL;                                      \
		e = gm_search(m, gpa);                                       \
		off = gpa - e->gpa;                                          \
		if (likely(gm_fits(e, off, sizeof(v)))) {                    \
			memcpy(&v, e->host + off, sizeof(v));                \
			*val = le##bits##toh(v);                             \
			return 0;                                            \
		}                                                            \
		/* Across regions, or an error (then *val is untouched). */  \
		ret = gm_read_general(m, gpa, val, sizeof(v));               \
		if (GM_BIG_ENDIAN && !ret)                                   \
			*val = le##bits##toh(*val);                          \
		return ret;                                                  \
	}                                                                    \
	int guest_memory_write_u##bits(const struct guest_memory *m,         \
				       guest_addr_t gpa, uint##bits##_t val) \
	{                                                                    \
		const struct gm_entry *e;                                    \
		uint##bits##_t v = htole##bits(val);                         \
		uint64_t off;                                                \
                                                                             \
		if (unlikely(!m))                                            \
			return -EINVAL;                                      \
		e = gm_search(m, gpa);                                       \
		off = gpa - e->gpa;                                          \
		if (likely(gm_wfits(e, off, sizeof(v)))) {                   \
			memcpy(e->host + off, &v, sizeof(v));                \
			return 0;                                            \
		}                                                            \
		return gm_write_general(m, gpa, &v, sizeof(v));              \
	}

#define le8toh(x) (x)
#define htole8(x) (x)

GM_TYPED(8)
GM_TYPED(16)
GM_TYPED(32)
GM_TYPED(64)

/* ----------------------------------------------------------- atomic access */

static bool load_order_ok(memory_order o)
{
	return o == memory_order_relaxed || o == memory_order_acquire ||
	       o == memory_order_seq_cst;
}

static bool store_order_ok(memory_order o)
{
	return o == memory_order_relaxed || o == memory_order_release ||
	       o == memory_order_seq_cst;
}

/* Host address of a naturally aligned @size-byte object at @gpa, or NULL. */
static inline uint8_t *gm_aligned_host(const struct guest_memory *m,
				       guest_addr_t gpa, uint64_t size,
				       const struct gm_entry **ep)
{
	const struct gm_entry *e = gm_search(m, gpa);
	uint64_t off = gpa - e->gpa;

	/* Regions are page aligned: an aligned object starting inside one
	 * ends inside it; gm_fits() keeps that true whatever the layout. */
	if (!gm_fits(e, off, size))
		return NULL;
	*ep = e;
	return e->host + off;
}

#define GM_ATOMIC(bits)                                                        \
	int guest_memory_load_u##bits##_slow(const struct guest_memory *m,     \
					     guest_addr_t gpa,                 \
					     uint##bits##_t *val,              \
					     memory_order order)               \
	{                                                                      \
		const struct gm_entry *e;                                      \
		uint##bits##_t *p, v;                                          \
                                                                               \
		if (!m || !val || (gpa & (sizeof(v) - 1)) ||                   \
		    !load_order_ok(order))                                     \
			return -EINVAL;                                        \
		p = (uint##bits##_t *)(void *)gm_aligned_host(m, gpa,          \
							      sizeof(v), &e);  \
		if (!p)                                                        \
			return -EFAULT;                                        \
		if (order == memory_order_relaxed)                             \
			v = __atomic_load_n(p, __ATOMIC_RELAXED);              \
		else if (order == memory_order_acquire)                        \
			v = __atomic_load_n(p, __ATOMIC_ACQUIRE);              \
		else                                                           \
			v = __atomic_load_n(p, __ATOMIC_SEQ_CST);              \
		*val = le##bits##toh(v);                                       \
		return 0;                                                      \
	}                                                                      \
	/* The exported name of what the header inlines. */                    \
	__typeof__(guest_memory_load_u##bits##_slow) guest_memory_load_u##bits \
		__attribute__((alias("guest_memory_load_u" #bits "_slow")));   \
	int guest_memory_store_u##bits(const struct guest_memory *m,           \
				       guest_addr_t gpa, uint##bits##_t val,   \
				       memory_order order)                     \
	{                                                                      \
		const struct gm_entry *e;                                      \
		uint##bits##_t *p, v = htole##bits(val);                       \
                                                                               \
		if (!m || (gpa & (sizeof(v) - 1)) || !store_order_ok(order))   \
			return -EINVAL;                                        \
		p = (uint##bits##_t *)(void *)gm_aligned_host(m, gpa,          \
							      sizeof(v), &e);  \
		if (!p)                                                        \
			return -EFAULT;                                        \
		/* wsize 0: read-only or logging; the region decides. */       \
		if (!e->wsize &&                                               \
		    (gm_reg(m, e)->flags & GUEST_REGION_READONLY))             \
			return -EPERM;                                         \
		if (order == memory_order_relaxed)                             \
			__atomic_store_n(p, v, __ATOMIC_RELAXED);              \
		else if (order == memory_order_release)                        \
			__atomic_store_n(p, v, __ATOMIC_RELEASE);              \
		else                                                           \
			__atomic_store_n(p, v, __ATOMIC_SEQ_CST);              \
		if (!e->wsize)                                                 \
			gm_dirty(m, e, gpa - e->gpa, sizeof(v));               \
		return 0;                                                      \
	}

GM_ATOMIC(16)
GM_ATOMIC(32)
GM_ATOMIC(64)

/* ------------------------------------------------------------- translation */

int guest_memory_translate(const struct guest_memory *m, guest_addr_t gpa,
			   uint64_t len, void **host)
{
	const struct gm_entry *e;
	uint64_t off;

	if (!m || !host || len == 0)
		return -EINVAL;
	if (len - 1 > UINT64_MAX - gpa)
		return -EOVERFLOW;
	e = gm_search(m, gpa);
	off = gpa - e->gpa;
	if (off >= e->size)
		return -EFAULT;
	if (len > e->size - off)
		return -ENXIO;
	*host = e->host + off;
	return 0;
}

int guest_memory_contiguous(const struct guest_memory *m, guest_addr_t gpa,
			    void **host, uint64_t *avail)
{
	const struct gm_entry *e;
	uint64_t off;

	if (!m || !host || !avail)
		return -EINVAL;
	e = gm_search(m, gpa);
	off = gpa - e->gpa;
	if (off >= e->size)
		return -EFAULT;
	*host = e->host + off;
	*avail = e->size - off;
	return 0;
}

/* Fill @iov (capacity @max) for a range already checked from entry @i. */
static int gm_fill_iovecs(const struct guest_memory *m, size_t i,
			  guest_addr_t gpa, uint64_t len, struct iovec *iov,
			  int max)
{
	int n = 0;

	while (len) {
		const struct gm_entry *e = &m->e[i++];
		uint64_t off = gpa - e->gpa;
		uint64_t chunk = e->size - off;

		if (chunk > len)
			chunk = len;
		if (n >= max)
			return -ENOBUFS;
		iov[n].iov_base = e->host + off;
		iov[n].iov_len = (size_t)chunk;
		n++;
		gpa += chunk;
		len -= chunk;
	}
	return n;
}

int guest_memory_iovecs(const struct guest_memory *m, guest_addr_t gpa,
			uint64_t len, struct iovec *iov, int max)
{
	size_t i;
	int ret;

	if (!m || max < 0 || (!iov && max > 0))
		return -EINVAL;
	if (len == 0)
		return 0;
	ret = gm_check_span(m, gpa, len, false, &i);
	if (ret)
		return ret;
	return gm_fill_iovecs(m, i, gpa, len, iov, max);
}

/* ---------------------------------------------------------------- dirty log */

void guest_memory_mark_dirty(const struct guest_memory *m, guest_addr_t gpa,
			     uint64_t len)
{
	const struct gm_entry *e, *end;
	uint64_t last;

	if (!m || !len || !m->any_dirty)
		return;
	if (__builtin_add_overflow(gpa, len - 1, &last))
		last = UINT64_MAX;
	e = gm_search(m, gpa);
	end = m->e + m->n;
	if (gpa - e->gpa >= e->size && e->gpa <= gpa)
		e++; /* gpa is in the hole after e */
	for (; e < end && e->gpa <= last; e++) {
		uint64_t lo = gpa > e->gpa ? gpa : e->gpa;
		uint64_t elast = e->gpa + e->size - 1;
		uint64_t hi = last < elast ? last : elast;

		if (e->size && lo <= hi)
			gm_dirty(m, e, lo - e->gpa, hi - lo + 1);
	}
}

/* --------------------------------------------------------------- fd I/O */

#define GM_IOV_STACK 16

static ssize_t gm_fd_io(const struct guest_memory *m, guest_addr_t gpa,
			size_t len, int fd, off_t offset, bool to_guest)
{
	struct iovec stack[GM_IOV_STACK], *iov = stack;
	uint64_t cur, left;
	size_t i, cnt;
	ssize_t n;
	int ret;

	if (!m || fd < 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		return -EINVAL;
	ret = gm_check_span(m, gpa, len, to_guest, &i);
	if (ret)
		return ret;
	/* How many iovecs (regions crossed), at most IOV_MAX: a range that
	 * crosses more is transferred short, as readv would. */
	cnt = 0;
	cur = gpa;
	left = len;
	for (size_t j = i; left && cnt < IOV_MAX; j++, cnt++) {
		uint64_t avail = m->e[j].gpa + m->e[j].size - cur;
		uint64_t chunk = avail < left ? avail : left;

		cur += chunk;
		left -= chunk;
	}
	len -= (size_t)left;
	if (cnt > GM_IOV_STACK) {
		iov = calloc(cnt, sizeof(*iov));
		if (!iov)
			return -ENOMEM;
	}
	ret = gm_fill_iovecs(m, i, gpa, len, iov, (int)cnt);
	if (ret < 0) {
		n = ret;
		goto out;
	}
	if (to_guest)
		n = offset >= 0 ? preadv(fd, iov, (int)cnt, offset)
				: readv(fd, iov, (int)cnt);
	else
		n = offset >= 0 ? pwritev(fd, iov, (int)cnt, offset)
				: writev(fd, iov, (int)cnt);
	if (n < 0)
		n = -errno;
	else if (to_guest && n > 0)
		guest_memory_mark_dirty(m, gpa, (uint64_t)n);
out:
	if (iov != stack)
		free(iov);
	return n;
}

ssize_t guest_memory_read_from_fd(const struct guest_memory *m,
				  guest_addr_t gpa, size_t len, int fd,
				  off_t offset)
{
	return gm_fd_io(m, gpa, len, fd, offset, true);
}

ssize_t guest_memory_write_to_fd(const struct guest_memory *m, guest_addr_t gpa,
				 size_t len, int fd, off_t offset)
{
	return gm_fd_io(m, gpa, len, fd, offset, false);
}
