/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * I/O bus dispatch: immutable sorted tables published with an atomic
 * pointer, readers counted in per-slot counters selected by epoch parity,
 * replaced tables freed after two epoch advances.  See bus.h for the design.
 *
 * Correctness argument (writers serialised by bus->lock; "before" below is
 * the order established by the writer's membarrier, or by the readers'
 * fences when membarrier is unavailable, as in liburcu-memb):
 *   reader: R1 e = epoch; R2 cnt[slot][e & 1]++; R3 t = table; ...;
 *           R4 cnt[slot][e & 1]-- (release).
 *   writer check: membarrier(); then read every slot's counter.
 *   A table T is unpublished (store of the new table) while epoch == r and
 *   retired with tag r.  A reader holding T performed R3 before the
 *   membarrier of any later check took effect on its thread (afterwards R3
 *   would see the new table), so its R2, earlier in program order, is
 *   visible to that check, and it counts in one of the two parities.  Advancing the epoch from E to E + 1 requires
 *   every slot's cnt[(E - 1) & 1] to be read as 0.  The advances r -> r + 1
 *   and r + 1 -> r + 2 both happen after the unpublish and check parity
 *   (r - 1) & 1 and r & 1 respectively, so each holder of T had decremented
 *   before the check that covers its parity.  A reader whose R2 comes after
 *   such a check loads the table at R3 after the unpublish and cannot see T.
 *   Hence T (and, for unregister, the device it no longer lists) is unused
 *   once epoch >= r + 2.  New readers always use the current parity, so
 *   the older parity only drains: advancing never starves.
 */
#include <cvmm/devices/bus.h>

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BUS_SLOTS	64u
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
	struct bus_table *next_retired;
	uint64_t retired_epoch;
	size_t n;
	struct bus_entry e[];
};

struct bus_slot {
	_Alignas(CACHELINE) atomic_ulong cnt[2];
};

struct io_bus {
	struct bus_slot slots[BUS_SLOTS];
	_Alignas(CACHELINE) _Atomic(struct bus_table *) table;
	atomic_uint_fast64_t epoch;
	atomic_uint_fast64_t unhandled;
	struct io_bus_ops def;
	void *def_opaque;
	pthread_mutex_t lock;
	struct bus_table *retired; /* newest first; under lock */
	size_t nretired;
};

/*
 * Reader slots.  Each thread owns one slot index, unique among live threads
 * (returned to a pool when the thread exits), the same on every bus; slots
 * 0..BUS_SLOTS-2 are exclusive, so their counters are updated with plain
 * loads and stores by their owner.  Threads beyond that share the last slot
 * and use atomic read-modify-write.
 *
 * Ordering: a reader's counter store must be visible before its table load
 * can be satisfied.  Rather than a fence in every dispatch, writers call
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) before reading the counters,
 * which acts as a full barrier on every thread of the process (liburcu's
 * "memb" flavour).  When membarrier is unavailable (old kernel, seccomp),
 * readers fall back to a seq_cst fence.
 */
#define SHARED_SLOT (BUS_SLOTS - 1)

static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t slots_key;
static bool slots_key_ok;
static uint64_t slots_used[(BUS_SLOTS + 63) / 64];
static bool use_membarrier;
static TLS unsigned tls_slot; /* slot + 1; 0 = not chosen yet */
static TLS unsigned tls_depth;
static TLS struct io_bus *tls_stack[IO_BUS_MAX_NESTING];

static void slot_release(void *arg)
{
	unsigned s = (unsigned)(uintptr_t)arg - 1;

	/* runs on the exiting thread: a dispatch from a later destructor
	 * must not use the slot another thread may now own */
	tls_slot = SHARED_SLOT + 1;

	if (s < SHARED_SLOT) {
		pthread_mutex_lock(&slots_lock);
		slots_used[s / 64] &= ~(1ull << (s % 64));
		pthread_mutex_unlock(&slots_lock);
	}
}

static bool register_membarrier(void)
{
	const char *off = getenv("CVMM_IO_BUS_NO_MEMBARRIER");

	if (off && *off && *off != '0')
		return false; /* forced fallback (tests, seccomp diagnosis) */
	return syscall(__NR_membarrier,
		       MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* membarrier registration belongs to the address space: a forked child
 * registers again (single-threaded at this point) or falls back. */
static void slots_atfork_child(void)
{
	use_membarrier = register_membarrier();
}

static void slots_init(void)
{
	slots_key_ok = pthread_key_create(&slots_key, slot_release) == 0;
	use_membarrier = register_membarrier();
	pthread_atfork(NULL, NULL, slots_atfork_child);
}

static void writer_barrier(void)
{
	if (use_membarrier &&
	    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) ==
		    0)
		return;
	/* cannot happen once registered; keep a fence for safety */
	atomic_thread_fence(memory_order_seq_cst);
}

static __attribute__((noinline)) unsigned choose_slot(void)
{
	unsigned s = SHARED_SLOT;

	pthread_once(&slots_once, slots_init);
	if (slots_key_ok) {
		pthread_mutex_lock(&slots_lock);
		for (unsigned i = 0; i < SHARED_SLOT; i++) {
			if (!(slots_used[i / 64] & (1ull << (i % 64)))) {
				slots_used[i / 64] |= 1ull << (i % 64);
				s = i;
				break;
			}
		}
		pthread_mutex_unlock(&slots_lock);
		if (s != SHARED_SLOT &&
		    pthread_setspecific(slots_key,
					(void *)(uintptr_t)(s + 1)) != 0) {
			slot_release((void *)(uintptr_t)(s + 1));
			s = SHARED_SLOT;
		}
	}
	tls_slot = s + 1;
	return s;
}

static inline unsigned my_slot(void)
{
	unsigned s = tls_slot;

	if (unlikely(s == 0))
		return choose_slot();
	return s - 1;
}

static bool inside_dispatch_of(const struct io_bus *bus)
{
	for (unsigned i = 0; i < tls_depth && i < IO_BUS_MAX_NESTING; i++)
		if (tls_stack[i] == bus)
			return true;
	return false;
}

static struct bus_table *table_alloc(size_t n)
{
	struct bus_table *t;

	t = malloc(sizeof(*t) + n * sizeof(t->e[0]));
	if (!t)
		return NULL;
	t->next_retired = NULL;
	t->retired_epoch = 0;
	t->n = n;
	return t;
}

int io_bus_create(struct io_bus **out)
{
	struct io_bus *bus;
	struct bus_table *t;
	size_t sz = (sizeof(*bus) + CACHELINE - 1) / CACHELINE * CACHELINE;

	if (!out)
		return -EINVAL;
	*out = NULL;
	pthread_once(&slots_once, slots_init);
	bus = aligned_alloc(CACHELINE, sz);
	if (!bus)
		return -ENOMEM;
	memset(bus, 0, sz);
	t = table_alloc(0);
	if (!t) {
		free(bus);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < BUS_SLOTS; i++) {
		atomic_init(&bus->slots[i].cnt[0], 0);
		atomic_init(&bus->slots[i].cnt[1], 0);
	}
	atomic_init(&bus->table, t);
	atomic_init(&bus->epoch, 0);
	atomic_init(&bus->unhandled, 0);
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
	struct bus_table *t, *next;

	if (!bus)
		return;
	for (t = bus->retired; t; t = next) {
		next = t->next_retired;
		free(t);
	}
	free(atomic_load(&bus->table));
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

/* ---------------------------------------------------------- reclamation */

static bool parity_busy(struct io_bus *bus, unsigned p)
{
	for (unsigned i = 0; i < BUS_SLOTS; i++)
		if (atomic_load(&bus->slots[i].cnt[p]) != 0)
			return true;
	return false;
}

/* Under lock.  Advance the epoch once if the older parity has drained.  A
 * first scan without the barrier gives up cheaply while readers are still
 * inside (each membarrier interrupts every running thread of the process,
 * vCPUs in guest mode included); only an apparently drained parity pays
 * for the barrier and the scan that decides. */
static bool try_advance(struct io_bus *bus)
{
	uint64_t e = atomic_load(&bus->epoch);
	unsigned p = (unsigned)((e + 1) & 1); /* == (e - 1) & 1 */

	if (parity_busy(bus, p))
		return false;
	writer_barrier();
	if (parity_busy(bus, p))
		return false;
	atomic_store(&bus->epoch, e + 1);
	return true;
}

/* Under lock.  Free retired tables whose grace period has elapsed. */
static void reclaim(struct io_bus *bus)
{
	uint64_t e = atomic_load(&bus->epoch);
	struct bus_table **pp = &bus->retired;

	while (*pp) {
		struct bus_table *t = *pp;

		if (t->retired_epoch + 2 <= e) {
			*pp = t->next_retired;
			bus->nretired--;
			free(t);
		} else {
			pp = &t->next_retired;
		}
	}
}

/* Under lock.  Publish @t, retire the old table, then make progress on
 * reclamation without waiting.  Returns the epoch the old table was retired
 * with. */
static uint64_t publish(struct io_bus *bus, struct bus_table *t)
{
	struct bus_table *old = atomic_load(&bus->table);
	uint64_t epoch = atomic_load(&bus->epoch);

	atomic_store(&bus->table, t);
	old->retired_epoch = epoch;
	old->next_retired = bus->retired;
	bus->retired = old;
	bus->nretired++;
	if (try_advance(bus))
		try_advance(bus);
	reclaim(bus); /* may free old */
	return epoch;
}

/* Under lock.  False when too many tables await reclamation even after
 * trying to advance (a reader is stuck inside a callback). */
static bool room_to_retire(struct io_bus *bus)
{
	if (bus->nretired < BUS_RETIRED_MAX)
		return true;
	if (try_advance(bus))
		try_advance(bus);
	reclaim(bus);
	return bus->nretired < BUS_RETIRED_MAX;
}

/* Without lock held: wait until the epoch reaches @target. */
static void wait_epoch(struct io_bus *bus, uint64_t target)
{
	unsigned spins = 0;

	for (;;) {
		pthread_mutex_lock(&bus->lock);
		while (atomic_load(&bus->epoch) < target && try_advance(bus))
			;
		reclaim(bus);
		pthread_mutex_unlock(&bus->lock);
		if (atomic_load(&bus->epoch) >= target)
			return;
		if (spins < 64) {
			spins++;
			sched_yield();
		} else {
			struct timespec ts = {0, 50 * 1000};

			nanosleep(&ts, NULL);
		}
	}
}

int io_bus_synchronize(struct io_bus *bus)
{
	uint64_t target;

	if (!bus)
		return -EINVAL;
	if (inside_dispatch_of(bus))
		return -EDEADLK;
	pthread_mutex_lock(&bus->lock);
	target = atomic_load(&bus->epoch) + 2;
	pthread_mutex_unlock(&bus->lock);
	wait_epoch(bus, target);
	return 0;
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
	struct bus_table *nt = table_alloc(n);
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
	struct bus_table *t, *nt;
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
	if (overlaps(t, base, last, -1)) {
		ret = -EEXIST;
	} else if (!room_to_retire(bus)) {
		ret = -EAGAIN;
	} else {
		nt = rebuild(t, -1, &ent);
		if (!nt)
			ret = -ENOMEM;
		else
			publish(bus, nt);
	}
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

/* Remove without waiting; on success *epoch is the retirement epoch. */
static int remove_range(struct io_bus *bus, uint64_t base, uint64_t *epoch)
{
	struct bus_table *t, *nt;
	long idx;
	int ret = 0;

	pthread_mutex_lock(&bus->lock);
	t = atomic_load(&bus->table);
	idx = find_exact(t, base);
	if (idx < 0) {
		ret = -ENOENT;
	} else if (!room_to_retire(bus)) {
		ret = -EAGAIN;
	} else {
		nt = rebuild(t, idx, NULL);
		if (!nt)
			ret = -ENOMEM;
		else
			*epoch = publish(bus, nt);
	}
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base)
{
	uint64_t epoch = 0;
	int ret;

	if (!bus)
		return -EINVAL;
	if (inside_dispatch_of(bus))
		return -EDEADLK;
	ret = remove_range(bus, base, &epoch);
	if (ret)
		return ret;
	wait_epoch(bus, epoch + 2);
	return 0;
}

int io_bus_unregister_nowait(struct io_bus *bus, uint64_t base)
{
	uint64_t epoch;

	if (!bus)
		return -EINVAL;
	return remove_range(bus, base, &epoch);
}

int io_bus_move(struct io_bus *bus, uint64_t old_base, uint64_t new_base)
{
	struct bus_table *t, *nt;
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
	nt = rebuild(t, idx, &ent);
	if (!nt) {
		ret = -ENOMEM;
		goto out;
	}
	publish(bus, nt);
out:
	pthread_mutex_unlock(&bus->lock);
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
	struct bus_slot *slot;
	const struct bus_table *t;
	const struct bus_entry *e;
	unsigned p, si;
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
	si = my_slot();
	slot = &bus->slots[si];
	p = (unsigned)(atomic_load_explicit(&bus->epoch, memory_order_relaxed) &
		       1);
	if (likely(si != SHARED_SLOT)) {
		/* owner-only counter: no locked instruction */
		atomic_store_explicit(
			&slot->cnt[p],
			atomic_load_explicit(&slot->cnt[p],
					     memory_order_relaxed) +
				1,
			memory_order_relaxed);
		if (likely(use_membarrier))
			atomic_signal_fence(memory_order_seq_cst);
		else
			atomic_thread_fence(memory_order_seq_cst);
	} else {
		atomic_fetch_add(&slot->cnt[p], 1);
	}
	tls_stack[tls_depth++] = bus;
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
	if (likely(si != SHARED_SLOT))
		atomic_store_explicit(
			&slot->cnt[p],
			atomic_load_explicit(&slot->cnt[p],
					     memory_order_relaxed) -
				1,
			memory_order_release);
	else
		atomic_fetch_sub_explicit(&slot->cnt[p], 1,
					  memory_order_release);
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
