/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Deferred reclamation for libdevices (internal, not installed).
 *
 * One process-wide domain shared by every io_bus and every PCI function
 * (and whatever else in libdevices publishes state to lock-free readers):
 *
 *   reclaim_read_enter(obj) / reclaim_read_exit()
 *       bracket a read section for an object (a bus dispatch, a BAR
 *       access).  Sections nest.  Plain stores to the thread's own record:
 *       the object pointer, and for the outermost section the
 *       grace-period counter it read.
 *   reclaim_retire(node, fn)
 *       run fn(node) once every read section that may have seen the object
 *       has ended.  Never blocks, never fails (the node is embedded in the
 *       object).  Callable from inside a section.
 *   reclaim_wait(obj)
 *       wait for the read sections for @obj of other threads that started
 *       before the call (see reclaim.c for the exact guarantee).  Callable
 *       from inside a section.
 *   reclaim_synchronize()
 *       a full grace period: every section that started before the call,
 *       on any thread, has ended.  -EDEADLK from inside a section.
 *   reclaim_poll()
 *       free what can be freed now without waiting.
 *
 * The correctness argument is at the top of reclaim.c.
 */
#ifndef CVMM_DEVICES_RECLAIM_H
#define CVMM_DEVICES_RECLAIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECLAIM_TLS __attribute__((tls_model("initial-exec"))) _Thread_local

/* Sections a thread can nest (8 bus dispatches + 16 BAR dispatches). */
#define RECLAIM_NEST 24u

/* Per-thread reader record, owned by one live thread. */
struct reclaim_reader {
	/* 0 outside a section; else the grace-period counter read when the
	 * thread entered its outermost section. */
	_Alignas(64) atomic_uint_fast64_t ctr;
	/* 0, or the grace period of the in-section wait the thread is
	 * blocked in (reclaim_wait() called from inside a section). */
	atomic_uint_fast64_t waiting;
	/* The object of each open section, innermost last, NULL above. */
	_Atomic(const void *) obj[RECLAIM_NEST];
	/* Owned by a live thread (registry lock). */
	bool used;
};

/* The object a reclaim_node is embedded in. */
#define reclaim_container(node, type, member) \
	((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Embedded in an object that is retired. */
struct reclaim_node {
	struct reclaim_node *next;
	uint64_t gp;
	void (*fn)(struct reclaim_node *node);
};

struct reclaim_tls {
	struct reclaim_reader *r; /* NULL: not registered, or overflow */
	unsigned depth;		  /* nesting of read sections */
};

extern RECLAIM_TLS struct reclaim_tls reclaim_tls_;
extern atomic_uint_fast64_t reclaim_gp_;
/* Readers fence (no membarrier); set once at start and in a forked child. */
extern bool reclaim_fence_readers_;

/* Slow paths (reclaim.c). */
struct reclaim_reader *reclaim_reader_register_(void);
void reclaim_overflow_exit_(void);

/*
 * Enter a read section for @obj (the bus, the PCI function: what a waiter
 * names in reclaim_wait()).  False, with nothing entered, when the thread
 * is already RECLAIM_NEST sections deep.
 */
static inline bool reclaim_read_enter(const void *obj)
{
	struct reclaim_tls *t = &reclaim_tls_;
	unsigned d = t->depth;
	struct reclaim_reader *r = t->r;

	if (__builtin_expect(d >= RECLAIM_NEST, 0))
		return false;
	t->depth = d + 1;
	if (d == 0) {
		if (__builtin_expect(r == NULL, 0)) {
			r = reclaim_reader_register_();
			if (!r)
				return true; /* counted in the overflow */
		}
		atomic_store_explicit(
			&r->ctr,
			atomic_load_explicit(&reclaim_gp_,
					     memory_order_acquire),
			memory_order_relaxed);
	} else if (__builtin_expect(r == NULL, 0)) {
		return true; /* overflow thread */
	}
	atomic_store_explicit(&r->obj[d], obj, memory_order_relaxed);
	/* The stores above must be visible before the section's loads:
	 * membarrier on the writer side, else a fence. */
	if (__builtin_expect(reclaim_fence_readers_, 0))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
	return true;
}

static inline void reclaim_read_exit(void)
{
	struct reclaim_tls *t = &reclaim_tls_;
	unsigned d = --t->depth;
	struct reclaim_reader *r = t->r;

	if (__builtin_expect(r == NULL, 0)) {
		if (d == 0)
			reclaim_overflow_exit_();
		return;
	}
	atomic_store_explicit(&r->obj[d], NULL, memory_order_release);
	if (d == 0)
		atomic_store_explicit(&r->ctr, 0, memory_order_release);
}

static inline bool reclaim_in_section(void)
{
	return reclaim_tls_.depth != 0;
}

/* Is the calling thread inside a section for @obj?  Also true for a thread
 * in a section without a record of its own (beyond RECLAIM_READERS live
 * threads), which cannot tell. */
bool reclaim_holds(const void *obj);

/* Run fn(node) once no section that started before this call is open on
 * any thread (the caller's own included).  Never blocks or fails. */
void reclaim_retire(struct reclaim_node *node,
		    void (*fn)(struct reclaim_node *node));
/* Wait until no other thread is in a section for @obj (NULL: any section)
 * that started before the call.  From inside a section: see reclaim.c.
 * 1 when a thread was skipped (it was itself waiting inside a section
 * for @obj, and started waiting later), else 0. */
int reclaim_wait(const void *obj);
/* Full grace period (every section of every thread); -EDEADLK from
 * inside a section. */
int reclaim_synchronize(void);
/* Run the callbacks whose grace period is over; never blocks. */
void reclaim_poll(void);
/* Full grace period, then run every callback whose wait is over, waiting
 * for a concurrent poll to finish.  -EDEADLK from inside a section. */
int reclaim_drain(void);

/* Test knobs and queries. */
bool reclaim_uses_membarrier(void);
/* Force the readers' fence path (true) or try membarrier again (false).
 * Only while no other thread is inside a section. */
void reclaim_test_force_fence(bool on);
/* Hand out at most @n records (threads beyond use the overflow counter). */
void reclaim_test_limit_readers(unsigned n);
/* Number of retired objects not yet freed. */
unsigned long reclaim_pending(void);

#endif
