/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * I/O bus dispatch: immutable sorted tables published with an atomic
 * pointer; readers run in read sections of libdevices' reclamation domain
 * (src/reclaim/reclaim.h), replaced tables are retired to it and freed
 * once no section can hold them.  See bus.h for the design.
 *
 * Why this is safe (the ordering argument itself is in reclaim.c):
 *  - a dispatch loads the table inside a read section and uses only that
 *    table (and the devices it lists) until the section ends;
 *  - a writer publishes the new table first, then retires the old one:
 *    reclaim_retire() frees it only after every section that could have
 *    loaded it has ended;
 *  - a dispatch's section names the bus; io_bus_unregister() publishes the
 *    table without the range, then reclaim_wait(bus): every dispatch of
 *    another thread on this bus that could have found the range has
 *    returned (or the caller is told it could not be
 *    guaranteed: -EINPROGRESS, only in a cycle of waits from callbacks);
 *    the caller's own thread is not inside this bus (-EDEADLK otherwise),
 *    so no callback of the device runs any more.
 *  - Bounded memory: register and move (the operations that can repeat
 *    without end) refuse with -EAGAIN while BUS_RETIRED_MAX tables of
 *    this bus wait for a stuck section; unregister never does (it can
 *    only run once per registration), so removing a device never fails
 *    for that reason and no caller is left with a range it believes gone.
 */
#include <cvmm/devices/bus.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../reclaim/reclaim.h"

#define BUS_RETIRED_MAX 4096u
#define CACHELINE	64u
#define TLS		__attribute__((tls_model("initial-exec"))) _Thread_local
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

struct bus_entry {
	uint64_t base;
	uint64_t last; /* inclusive: base + len - 1 never wraps */
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned size);
	void (*write)(void *opaque, uint64_t offset, const void *data,
		      unsigned size);
	void *opaque;
};

struct bus_table {
	struct reclaim_node node;
	struct io_bus *bus;
	size_t n;
	struct bus_entry e[];
};

struct io_bus {
	_Alignas(CACHELINE) _Atomic(struct bus_table *) table;
	atomic_uint_fast64_t unhandled;
	struct io_bus_ops def;
	void *def_opaque;
	pthread_mutex_t lock;
	/* Tables of this bus retired and not freed yet. */
	atomic_ulong nretired;
	struct reclaim_node node;
};

/* Bus dispatches the calling thread is nested in. */
static TLS unsigned tls_depth;

static bool inside_dispatch_of(const struct io_bus *bus)
{
	return reclaim_holds(bus);
}

static struct bus_table *table_alloc(struct io_bus *bus, size_t n)
{
	struct bus_table *t;

	t = malloc(sizeof(*t) + n * sizeof(t->e[0]));
	if (!t)
		return NULL;
	t->bus = bus;
	t->n = n;
	return t;
}

static void table_free(struct reclaim_node *node)
{
	struct bus_table *t = reclaim_container(node, struct bus_table, node);

	atomic_fetch_sub(&t->bus->nretired, 1);
	free(t);
}

static void bus_free(struct reclaim_node *node)
{
	free(reclaim_container(node, struct io_bus, node));
}

int io_bus_create(struct io_bus **out)
{
	struct io_bus *bus;
	struct bus_table *t;
	size_t sz = (sizeof(*bus) + CACHELINE - 1) / CACHELINE * CACHELINE;

	if (!out)
		return -EINVAL;
	*out = NULL;
	bus = aligned_alloc(CACHELINE, sz);
	if (!bus)
		return -ENOMEM;
	memset(bus, 0, sz);
	t = table_alloc(bus, 0);
	if (!t) {
		free(bus);
		return -ENOMEM;
	}
	atomic_init(&bus->table, t);
	atomic_init(&bus->unhandled, 0);
	atomic_init(&bus->nretired, 0);
	if (pthread_mutex_init(&bus->lock, NULL) != 0) {
		free(t);
		free(bus);
		return -ENOMEM;
	}
	*out = bus;
	return 0;
}

void io_bus_destroy(struct io_bus *bus)
{
	if (!bus)
		return;
	/* Tables retired earlier may still wait for a section (of another
	 * bus's dispatch, say); they point to the bus, so the bus itself is
	 * retired after them and freed after them (the queue is FIFO). */
	atomic_fetch_add(&bus->nretired, 1);
	reclaim_retire(&atomic_load(&bus->table)->node, table_free);
	pthread_mutex_destroy(&bus->lock);
	reclaim_retire(&bus->node, bus_free);
	reclaim_poll();
}

/* Under lock: publish @t and retire the old table. */
static void publish(struct io_bus *bus, struct bus_table *t)
{
	struct bus_table *old = atomic_load(&bus->table);

	atomic_store(&bus->table, t);
	atomic_fetch_add(&bus->nretired, 1);
	reclaim_retire(&old->node, table_free);
}

/* Under lock.  False when too many tables of this bus await reclamation
 * even after trying to free some (a section is stuck in a callback). */
static bool room_to_retire(struct io_bus *bus)
{
	if (atomic_load(&bus->nretired) < BUS_RETIRED_MAX)
		return true;
	reclaim_poll();
	return atomic_load(&bus->nretired) < BUS_RETIRED_MAX;
}

/* Wait for the dispatches of other threads on @bus (reclaim_wait()), as
 * an io_bus result. */
static int wait_dispatches(struct io_bus *bus)
{
	int ret = reclaim_wait(bus);

	reclaim_poll();
	return ret > 0 ? -EINPROGRESS : 0;
}

int io_bus_synchronize(struct io_bus *bus)
{
	if (!bus)
		return -EINVAL;
	if (inside_dispatch_of(bus))
		return -EDEADLK;
	return wait_dispatches(bus);
}

/* ------------------------------------------------------------- tables */

/* Number of entries with base <= addr. */
static size_t upper(const struct bus_table *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->e[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry covering @addr, or NULL.  Branch-free binary search (the
 * comparison becomes a conditional move), so random addresses cost no
 * mispredictions. */
static inline const struct bus_entry *lookup(const struct bus_table *t,
					     uint64_t addr)
{
	const struct bus_entry *b = t->e;
	size_t n = t->n;

	if (unlikely(n == 0))
		return NULL;
	while (n > 1) {
		size_t half = n / 2;

		b = b[half].base <= addr ? b + half : b;
		n -= half;
	}
	if (addr < b->base || addr > b->last)
		return NULL;
	return b;
}

/* Index of the entry based exactly at @base, or -1. */
static long find_exact(const struct bus_table *t, uint64_t base)
{
	size_t i = upper(t, base);

	if (i == 0 || t->e[i - 1].base != base)
		return -1;
	return (long)(i - 1);
}

/* Does [base, last] overlap any entry of @t other than index @skip? */
static bool overlaps(const struct bus_table *t, uint64_t base, uint64_t last,
		     long skip)
{
	size_t i = upper(t, last); /* entries with base <= last */

	/* Only the entry just below last, or the one before it when that is
	 * the skipped one, can overlap: entries are disjoint and sorted. */
	while (i > 0) {
		const struct bus_entry *e = &t->e[i - 1];

		if ((long)(i - 1) == skip) {
			i--;
			continue;
		}
		return e->last >= base;
	}
	return false;
}

/* Copy of @t without index @skip (-1: none) and with @ins inserted (NULL:
 * none), kept sorted. */
static struct bus_table *rebuild(const struct bus_table *t, long skip,
				 const struct bus_entry *ins)
{
	size_t n = t->n - (skip >= 0 ? 1 : 0) + (ins ? 1 : 0);
	struct bus_table *nt = table_alloc(t->bus, n);
	size_t j = 0;
	bool placed = ins == NULL;

	if (!nt)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		if ((long)i == skip)
			continue;
		if (!placed && ins->base < t->e[i].base) {
			nt->e[j++] = *ins;
			placed = true;
		}
		nt->e[j++] = t->e[i];
	}
	if (!placed)
		nt->e[j++] = *ins;
	return nt;
}

/* Under lock: publish the rebuilt @t (see rebuild()); -ENOMEM. */
static int replace(struct io_bus *bus, const struct bus_table *t, long skip,
		   const struct bus_entry *ins)
{
	struct bus_table *nt = rebuild(t, skip, ins);

	if (!nt)
		return -ENOMEM;
	publish(bus, nt);
	return 0;
}

static int check_range(uint64_t base, uint64_t len, uint64_t *last)
{
	if (len == 0)
		return -EINVAL;
	if (__builtin_add_overflow(base, len - 1, last))
		return -EOVERFLOW;
	return 0;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    const struct io_bus_ops *ops, void *opaque)
{
	struct bus_entry ent;
	struct bus_table *t;
	uint64_t last;
	int ret;

	if (!bus || !ops)
		return -EINVAL;
	ret = check_range(base, len, &last);
	if (ret)
		return ret;
	ent = (struct bus_entry){base, last, ops->read, ops->write, opaque};
	pthread_mutex_lock(&bus->lock);
	t = atomic_load(&bus->table);
	if (overlaps(t, base, last, -1))
		ret = -EEXIST;
	else if (!room_to_retire(bus))
		ret = -EAGAIN;
	else
		ret = replace(bus, t, -1, &ent);
	pthread_mutex_unlock(&bus->lock);
	reclaim_poll();
	return ret;
}

/* Remove without waiting.  No retirement bound: see the top of the file. */
static int remove_range(struct io_bus *bus, uint64_t base)
{
	struct bus_table *t;
	long idx;
	int ret = 0;

	pthread_mutex_lock(&bus->lock);
	t = atomic_load(&bus->table);
	idx = find_exact(t, base);
	ret = idx < 0 ? -ENOENT : replace(bus, t, idx, NULL);
	pthread_mutex_unlock(&bus->lock);
	reclaim_poll();
	return ret;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base)
{
	int ret;

	if (!bus)
		return -EINVAL;
	if (inside_dispatch_of(bus))
		return -EDEADLK;
	ret = remove_range(bus, base);
	if (ret)
		return ret;
	return wait_dispatches(bus);
}

int io_bus_unregister_nowait(struct io_bus *bus, uint64_t base)
{
	if (!bus)
		return -EINVAL;
	return remove_range(bus, base);
}

int io_bus_move(struct io_bus *bus, uint64_t old_base, uint64_t new_base)
{
	struct bus_table *t;
	struct bus_entry ent;
	uint64_t last;
	long idx;
	int ret = 0;

	if (!bus)
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	t = atomic_load(&bus->table);
	idx = find_exact(t, old_base);
	if (idx < 0) {
		ret = -ENOENT;
		goto out;
	}
	if (old_base == new_base)
		goto out;
	ent = t->e[idx];
	ret = check_range(new_base, ent.last - ent.base + 1, &last);
	if (ret)
		goto out;
	if (overlaps(t, new_base, last, idx)) {
		ret = -EEXIST;
		goto out;
	}
	if (!room_to_retire(bus)) {
		ret = -EAGAIN;
		goto out;
	}
	ent.base = new_base;
	ent.last = last;
	ret = replace(bus, t, idx, &ent);
out:
	pthread_mutex_unlock(&bus->lock);
	reclaim_poll();
	return ret;
}

int io_bus_set_default(struct io_bus *bus, const struct io_bus_ops *ops,
		       void *opaque)
{
	if (!bus)
		return -EINVAL;
	if (ops) {
		bus->def = *ops;
	} else {
		bus->def.read = NULL;
		bus->def.write = NULL;
	}
	bus->def_opaque = opaque;
	return 0;
}

uint64_t io_bus_unhandled_count(const struct io_bus *bus)
{
	if (!bus)
		return 0;
	return atomic_load_explicit(&bus->unhandled, memory_order_relaxed);
}

int io_bus_find(struct io_bus *bus, uint64_t addr, uint64_t *base,
		uint64_t *len)
{
	const struct bus_entry *e;
	int ret = -ENOENT;

	if (!bus)
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	e = lookup(atomic_load(&bus->table), addr);
	if (e) {
		if (base)
			*base = e->base;
		if (len)
			*len = e->last - e->base + 1;
		ret = 0;
	}
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

size_t io_bus_count(struct io_bus *bus)
{
	size_t n;

	if (!bus)
		return 0;
	pthread_mutex_lock(&bus->lock);
	n = atomic_load(&bus->table)->n;
	pthread_mutex_unlock(&bus->lock);
	return n;
}

/* ----------------------------------------------------------- dispatch */

static void unhandled(struct io_bus *bus, uint64_t addr, void *rdata,
		      const void *wdata, unsigned size)
{
	atomic_fetch_add_explicit(&bus->unhandled, 1, memory_order_relaxed);
	if (rdata) {
		if (bus->def.read)
			bus->def.read(bus->def_opaque, addr, rdata, size);
	} else if (bus->def.write) {
		bus->def.write(bus->def_opaque, addr, wdata, size);
	}
}

static inline bool valid_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

/* rdata != NULL: read; else write from wdata. */
static inline int dispatch(struct io_bus *bus, uint64_t addr, void *rdata,
			   const void *wdata, unsigned size)
{
	const struct bus_table *t;
	const struct bus_entry *e;
	int ret;

	if (unlikely(addr > UINT64_MAX - (size - 1))) {
		unhandled(bus, addr, rdata, wdata, size);
		return -EOVERFLOW;
	}
	if (unlikely(tls_depth >= IO_BUS_MAX_NESTING)) {
		atomic_fetch_add_explicit(&bus->unhandled, 1,
					  memory_order_relaxed);
		return -ELOOP;
	}
	if (unlikely(!reclaim_read_enter(bus))) {
		atomic_fetch_add_explicit(&bus->unhandled, 1,
					  memory_order_relaxed);
		return -ELOOP;
	}
	tls_depth++;
	t = atomic_load_explicit(&bus->table, memory_order_acquire);
	e = lookup(t, addr);
	if (likely(e && addr + (size - 1) <= e->last)) {
		if (rdata) {
			if (e->read)
				e->read(e->opaque, addr - e->base, rdata, size);
		} else if (e->write) {
			e->write(e->opaque, addr - e->base, wdata, size);
		}
		ret = 0;
	} else {
		ret = e ? -ERANGE : IO_BUS_UNHANDLED;
	}
	tls_depth--;
	reclaim_read_exit();
	if (ret)
		unhandled(bus, addr, rdata, wdata, size);
	return ret;
}

int io_bus_read(struct io_bus *bus, uint64_t addr, void *data, unsigned size)
{
	if (!data)
		return -EINVAL;
	if (size <= 8)
		memset(data, 0xff, size);
	if (!bus || !valid_size(size))
		return -EINVAL;
	return dispatch(bus, addr, data, NULL, size);
}

int io_bus_write(struct io_bus *bus, uint64_t addr, const void *data,
		 unsigned size)
{
	if (!bus || !data || !valid_size(size))
		return -EINVAL;
	return dispatch(bus, addr, NULL, data, size);
}
