/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Deferred reclamation for libdevices (internal, not installed).
 *
 * One process-wide domain shared by every io_bus and every PCI function
 * (and whatever else in libdevices publishes state to lock-free readers):
 *
 *   reclaim_read_enter() / reclaim_read_exit()
 *       bracket a read section (a bus dispatch, a BAR access).  Sections
 *       nest; only the outermost one touches shared memory: one load of
 *       the grace-period counter and one store to the thread's own
 *       cache line on entry, one store on exit.
 *   reclaim_retire(node, fn)
 *       run fn(node) once every read section that may have seen the object
 *       has ended.  Never blocks, never fails (the node is embedded in the
 *       object).  Callable from inside a section.
 *   reclaim_wait()
 *       wait for the read sections of other threads that started before
 *       the call (see reclaim.c for the exact guarantee).  Callable from
 *       inside a section.
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

/* Per-thread reader record, one cache line, owned by one live thread. */
struct reclaim_reader {
	/* 0 outside a section; else the grace-period counter read when the
	 * thread entered its outermost section. */
	_Alignas(64) atomic_uint_fast64_t ctr;
	/* 0, or the grace period of the in-section wait the thread is
	 * blocked in (reclaim_wait() called from inside a section). */
	atomic_uint_fast64_t waiting;
	/* Owned by a live thread (registry lock). */
	bool used;
};

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

static inline void reclaim_read_enter(void)
{
	struct reclaim_tls *t = &reclaim_tls_;

	if (t->depth++ == 0) {
		struct reclaim_reader *r = t->r;

		if (__builtin_expect(r == NULL, 0)) {
			r = reclaim_reader_register_();
			if (!r)
				return; /* counted in the overflow counter */
		}
		atomic_store_explicit(
			&r->ctr,
			atomic_load_explicit(&reclaim_gp_,
					     memory_order_acquire),
			memory_order_relaxed);
		/* The store above must be visible before the section's
		 * loads: membarrier on the writer side, else a fence. */
		if (__builtin_expect(reclaim_fence_readers_, 0))
			atomic_thread_fence(memory_order_seq_cst);
		else
			atomic_signal_fence(memory_order_seq_cst);
	}
}

static inline void reclaim_read_exit(void)
{
	struct reclaim_tls *t = &reclaim_tls_;

	if (--t->depth == 0) {
		struct reclaim_reader *r = t->r;

		if (__builtin_expect(r == NULL, 0))
			reclaim_overflow_exit_();
		else
			atomic_store_explicit(&r->ctr, 0, memory_order_release);
	}
}

static inline bool reclaim_in_section(void)
{
	return reclaim_tls_.depth != 0;
}

void reclaim_retire(struct reclaim_node *node,
		    void (*fn)(struct reclaim_node *node));
int reclaim_wait(void);
int reclaim_synchronize(void);
void reclaim_poll(void);
/* Full grace period, then run every callback whose wait is over, waiting
 * for a concurrent poll to finish.  -EDEADLK from inside a section. */
int reclaim_drain(void);

/* Test knobs and queries. */
bool reclaim_uses_membarrier(void);
/* Force the readers' fence path (true) or try membarrier again (false).
 * Only while no other thread is inside a section. */
void reclaim_test_force_fence(bool on);
/* Number of retired objects not yet freed. */
unsigned long reclaim_pending(void);

#endif
