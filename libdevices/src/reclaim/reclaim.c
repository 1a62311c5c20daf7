/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * One deferred-reclamation domain for libdevices (see reclaim.h).
 *
 * State.  G (reclaim_gp_) is a 64-bit grace-period counter, starting at 1,
 * incremented (seq_cst read-modify-write) by every reclaim_retire(),
 * reclaim_wait() and reclaim_synchronize().  It never wraps in practice.
 * Each thread that enters a section owns a reader record: ctr = 0 outside
 * sections, else the value of G it read when it entered its outermost
 * section, and obj[], the object of each open section (NULL above the
 * innermost).  The depth is thread-local.
 *
 * Writers first make the object unreachable for new readers (store a new
 * table pointer, clear a BAR's decoding flag), then call one of the
 * functions below.
 *
 * Ordering ("barrier" = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED),
 * which runs a full barrier on every thread of the process, as in
 * liburcu's "memb" flavour; when membarrier is unavailable readers execute
 * a seq_cst fence after their ctr store and the barrier is a seq_cst fence
 * on the writer side - the store-buffering pattern with fences on both
 * sides).  Reader: R1 g = G (acquire); R2 ctr = g; R2' obj[d] = o;
 * R3 loads of the shared state; ...; R4' obj[d] = NULL (release);
 * R4 ctr = 0 (release).  Writer: W1 unpublish; W2 e = ++G; W3 barrier;
 * W4 read every ctr (and obj[]).
 *   (1) If W4 reads ctr == 0 for a thread, then either that thread's
 *       section had ended (R4 was before the barrier) or its R2 had not
 *       happened at the barrier, so its R3 comes after the barrier and
 *       sees W1: it cannot hold the object.
 *   (2) If W4 reads ctr >= e, the thread's R1 read a value written by W2
 *       or later in G's modification order: R1 synchronises with W2, so
 *       R3 sees W1.  Same conclusion.
 *   (3) Otherwise (0 < ctr < e) the thread may hold the object; the
 *       writer must wait until a later read of ctr shows (1) or (2).
 *       New sections read G >= e, so the wait is not starved by readers
 *       that keep entering sections.
 * Hence "every record reads 0 or >= e after the barrier" means every
 * section that could hold an object unpublished before W2 has ended: a
 * grace period.
 *
 * Waiting for one object (reclaim_wait(o): the callbacks of a bus or of a
 * PCI function, not memory).  A record whose obj[] does not contain o
 * when read after W3 cannot be running a section for o that missed W1:
 * by the argument of (1), its R2' for a later section for o comes after
 * the barrier and R3 sees W1 (the flag cleared, the table replaced); and
 * an R4' it did before is a release store, so the callbacks of that
 * section happened before the read.  So the waiter stops waiting for a
 * record once it reads (1), (2), or o absent from obj[].  This keeps a
 * decode-off or a removal from waiting for dispatches of unrelated
 * devices (a vCPU blocked in a serial callback does not hold up a BAR
 * update of another function), while memory is always reclaimed through
 * full grace periods.
 *
 * Concurrent writers.  Every waiter takes its own e from one atomic
 * increment and waits for its own condition; nothing is flipped or
 * drained on behalf of another caller, so two concurrent waits are
 * independent and each waits for a full grace period that started after
 * its own call (the two-parity scheme this replaces could let two
 * concurrent syncs drain the same parity and return early).
 *
 * Retire.  reclaim_retire() tags the node with e = ++G under the queue
 * lock (so tags increase along the FIFO queue) and queues it.
 * reclaim_poll() computes m = min(ctr of every active record), barrier,
 * computes m again, and runs the callbacks of the queue prefix with
 * tag <= m: by (1)-(3) no section can still hold them.  The caller's own
 * section counts like any other, so an object retired from inside a
 * section is never freed before that section ends.  Callbacks run in
 * queue order, so an object retired after the objects that point to it
 * (a bus after its tables) is freed after them.
 *
 * Waiting from inside a section (reclaim_wait() with depth > 0).  The
 * caller cannot wait for its own section, and two threads that each wait
 * for the other's section would wait forever (the deadlock of a function
 * ejecting itself from a BAR callback while another vCPU's config write
 * turns the function's decoding off, or of two functions ejected from an
 * I/O BAR and a memory BAR at once: with per-bus waits, each waited for
 * the bus the other was dispatching on).  Rule: an in-section waiter
 * publishes its e in its record's `waiting` field; it skips its own
 * record, and it does not wait for a record whose `waiting` is LATER
 * (greater) than its own e; it does wait for every other record that
 * holds the object, including in-section waiters that started earlier.
 * Waits outside any section follow the same rule with no skipping (the
 * caller holds no section, so no waiter waits for it).
 *   Deadlock freedom: a waiter waits for (a) threads not waiting, which
 *   leave their sections without waiting on anyone (library code holds no
 *   lock while it waits; callbacks that block on a lock held by a waiter
 *   are the caller's documented lock-order bug), and (b) waiters with a
 *   smaller e.  By induction on e, the waiter with the smallest e only
 *   waits for (a) and returns, then leaves its section, and so on: the
 *   wait-for relation is acyclic.  A thread that starts a new in-section
 *   wait later gets a larger e and is skipped by earlier waiters.
 *   Guarantee: when it returns, every other thread's section for the
 *   object that started before the call has ended, except the sections of
 *   threads that were seen blocked in a later in-section wait while
 *   holding the object; those threads are suspended inside a library call
 *   and will continue their callback when it returns.  reclaim_wait()
 *   returns 1 when it skipped such a thread (so the caller can report
 *   that it did not achieve the full guarantee), 0 otherwise.  Only a
 *   cycle of waits (two callbacks each stopping the other's device at the
 *   same moment) can make it skip; the later waiter of the pair gets the
 *   full guarantee.
 * Memory is never freed on the strength of an in-section wait: freeing
 * always goes through reclaim_retire(), i.e. a grace period in which every
 * section, the waiting ones and the caller's own included, has ended.
 *
 * Records.  RECLAIM_READERS records in a static array, registered on a
 * thread's first section and returned at thread exit (pthread key
 * destructor).  Threads beyond that (more live threads than records) use
 * one atomic overflow counter: a waiter treats them as holding everything
 * (a wait outside any section waits until the counter is 0; an
 * in-section wait cannot tell them apart from in-section waiters, so it
 * does not wait for them and reports the skip).
 *
 * fork().  membarrier registration belongs to the address space, so a
 * forked child registers again, or switches readers to fences while it is
 * still single-threaded (pthread_atfork).  The child also forgets the
 * records of the parent's other threads (they do not exist in the child
 * and may have been inside a section at the fork).  The queue and registry
 * locks are taken around fork so the child never inherits them held.
 */
#include "reclaim.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RECLAIM_READERS 512u

RECLAIM_TLS struct reclaim_tls reclaim_tls_;
atomic_uint_fast64_t reclaim_gp_ = 1;
bool reclaim_fence_readers_;

static struct reclaim_reader readers[RECLAIM_READERS];
static atomic_uint nreaders; /* high-water mark of used records */
static unsigned max_readers = RECLAIM_READERS; /* test knob; reg_lock */
static atomic_ulong overflow; /* sections of threads without a record */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t reg_key;
static bool reg_key_ok;
static bool use_membarrier;

/* Retired objects, FIFO, tags increasing; under q_lock. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reclaim_node *q_head, **q_tail = &q_head;
static atomic_ulong q_len;
/* Held while callbacks run, so a drain can wait for a concurrent poll. */
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;

static bool membarrier_wanted(void)
{
	/* Process-wide diagnosis / test switch, documented in bus.h. */
	const char *off = getenv("CVMM_IO_BUS_NO_MEMBARRIER");

	return !(off && *off && *off != '0');
}

static bool register_membarrier(void)
{
	return syscall(__NR_membarrier,
		       MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static void set_membarrier(bool on)
{
	use_membarrier = on && register_membarrier();
	reclaim_fence_readers_ = !use_membarrier;
}

static void reader_release(void *arg)
{
	struct reclaim_reader *r = arg;

	/* The thread is gone: whatever it held it no longer uses. */
	for (unsigned i = 0; i < RECLAIM_NEST; i++)
		atomic_store(&r->obj[i], NULL);
	atomic_store(&r->waiting, 0);
	atomic_store_explicit(&r->ctr, 0, memory_order_release);
	pthread_mutex_lock(&reg_lock);
	r->used = false;
	pthread_mutex_unlock(&reg_lock);
	if (reclaim_tls_.r == r) {
		reclaim_tls_.r = NULL;
		reclaim_tls_.depth = 0;
	}
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&cb_lock);
	pthread_mutex_lock(&q_lock);
	pthread_mutex_lock(&reg_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_unlock(&q_lock);
	pthread_mutex_unlock(&cb_lock);
}

static void atfork_child(void)
{
	struct reclaim_reader *me = reclaim_tls_.r;
	unsigned n = atomic_load(&nreaders);

	/* Single-threaded now: only this thread's record is real. */
	for (unsigned i = 0; i < n; i++) {
		if (&readers[i] == me)
			continue;
		readers[i].used = false;
		for (unsigned k = 0; k < RECLAIM_NEST; k++)
			atomic_store(&readers[i].obj[k], NULL);
		atomic_store(&readers[i].ctr, 0);
		atomic_store(&readers[i].waiting, 0);
	}
	atomic_store(&overflow, (!me && reclaim_tls_.depth) ? 1ul : 0ul);
	if (use_membarrier)
		set_membarrier(true);
	atfork_parent();
}

static void init(void)
{
	reg_key_ok = pthread_key_create(&reg_key, reader_release) == 0;
	set_membarrier(membarrier_wanted());
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void init_once_(void)
{
	pthread_once(&init_once, init);
}

struct reclaim_reader *reclaim_reader_register_(void)
{
	struct reclaim_reader *r = NULL;
	unsigned n;

	init_once_();
	pthread_mutex_lock(&reg_lock);
	n = atomic_load(&nreaders);
	for (unsigned i = 0; i < n; i++) {
		if (!readers[i].used) {
			r = &readers[i];
			break;
		}
	}
	if (!r && n < max_readers) {
		r = &readers[n];
		atomic_store(&nreaders, n + 1);
	}
	if (r)
		r->used = true;
	pthread_mutex_unlock(&reg_lock);
	/* Without the key the record is never returned at thread exit (one
	 * record lost); the thread still uses it. */
	if (r && reg_key_ok)
		(void)pthread_setspecific(reg_key, r);
	if (!r) {
		/* seq_cst read-modify-write: a full barrier before the
		 * section's loads. */
		atomic_fetch_add(&overflow, 1);
		return NULL;
	}
	reclaim_tls_.r = r;
	return r;
}

void reclaim_overflow_exit_(void)
{
	atomic_fetch_sub_explicit(&overflow, 1, memory_order_release);
}

static void barrier(void)
{
	if (use_membarrier &&
	    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) ==
		    0)
		return;
	/* Readers fence in this mode (registration failing at runtime
	 * cannot happen once registered). */
	atomic_thread_fence(memory_order_seq_cst);
}

static void backoff(unsigned *spins)
{
	if (*spins < 64) {
		(*spins)++;
		sched_yield();
	} else {
		struct timespec ts = {0, 50 * 1000};

		nanosleep(&ts, NULL);
	}
}

/* Smallest active ctr (UINT64_MAX when no thread is in a section). */
static uint64_t min_active(void)
{
	unsigned n = atomic_load(&nreaders);
	uint64_t m = UINT64_MAX;

	if (atomic_load(&overflow))
		return 0; /* overflow readers may hold anything */
	for (unsigned i = 0; i < n; i++) {
		uint64_t c = atomic_load(&readers[i].ctr);

		if (c && c < m)
			m = c;
	}
	return m;
}

void reclaim_retire(struct reclaim_node *node,
		    void (*fn)(struct reclaim_node *node))
{
	init_once_();
	node->fn = fn;
	node->next = NULL;
	pthread_mutex_lock(&q_lock);
	node->gp = atomic_fetch_add(&reclaim_gp_, 1) + 1;
	*q_tail = node;
	q_tail = &node->next;
	atomic_fetch_add(&q_len, 1);
	pthread_mutex_unlock(&q_lock);
}

static void poll_locked(void)
{
	struct reclaim_node *run = NULL, *n;
	uint64_t oldest, m;

	pthread_mutex_lock(&q_lock);
	oldest = q_head ? q_head->gp : 0;
	pthread_mutex_unlock(&q_lock);
	if (!oldest)
		return;
	/* A cheap scan first: each barrier interrupts every running thread
	 * of the process (vCPUs in guest mode included). */
	if (min_active() < oldest)
		return;
	barrier();
	m = min_active();
	pthread_mutex_lock(&q_lock);
	if (q_head && q_head->gp <= m) {
		struct reclaim_node **pp = &q_head;
		unsigned long k = 0;

		while (*pp && (*pp)->gp <= m) {
			pp = &(*pp)->next;
			k++;
		}
		run = q_head;
		q_head = *pp;
		*pp = NULL;
		if (!q_head)
			q_tail = &q_head;
		atomic_fetch_sub(&q_len, k);
	}
	pthread_mutex_unlock(&q_lock);
	for (; run; run = n) {
		n = run->next;
		run->fn(run);
	}
}

void reclaim_poll(void)
{
	if (!atomic_load_explicit(&q_len, memory_order_relaxed))
		return;
	init_once_();
	/* Never blocks: another thread polling does the work. */
	if (pthread_mutex_trylock(&cb_lock) != 0)
		return;
	poll_locked();
	pthread_mutex_unlock(&cb_lock);
}

static bool record_holds(struct reclaim_reader *r, const void *obj)
{
	for (unsigned i = 0; i < RECLAIM_NEST; i++)
		if (atomic_load(&r->obj[i]) == obj)
			return true;
	return false;
}

bool reclaim_holds(const void *obj)
{
	struct reclaim_reader *r = reclaim_tls_.r;

	if (!reclaim_tls_.depth)
		return false;
	/* A thread without a record (overflow) cannot tell: say yes, so a
	 * caller refuses to wait rather than wait for itself. */
	return !r || record_holds(r, obj);
}

/* Wait until @r is outside every section (for @obj; NULL: any) that
 * started before @e.  @mine: the caller's own in-section wait number, 0
 * for a wait from outside any section.  True when skipped. */
static bool wait_record(struct reclaim_reader *r, uint64_t e, uint64_t mine,
			const void *obj)
{
	unsigned spins = 0;

	for (;;) {
		uint64_t c = atomic_load(&r->ctr);

		if (c == 0 || c >= e)
			return false;
		if (obj && !record_holds(r, obj))
			return false;
		if (mine) {
			uint64_t w = atomic_load(&r->waiting);

			if (w > mine)
				return true; /* a later waiter: skip */
		}
		backoff(&spins);
	}
}

/* Overflow threads: wait for them outside a section; inside, report. */
static bool wait_overflow(bool inside)
{
	unsigned spins = 0;

	if (inside)
		return atomic_load(&overflow) > (reclaim_tls_.r ? 0ul : 1ul);
	while (atomic_load(&overflow))
		backoff(&spins);
	return false;
}

static int wait_for(const void *obj)
{
	struct reclaim_reader *me = reclaim_tls_.r;
	bool inside = reclaim_tls_.depth != 0;
	bool skipped = false;
	uint64_t e;
	unsigned n;

	init_once_();
	e = atomic_fetch_add(&reclaim_gp_, 1) + 1;
	if (inside && me)
		atomic_store(&me->waiting, e);
	barrier();
	n = atomic_load(&nreaders);
	for (unsigned i = 0; i < n; i++) {
		if (inside && &readers[i] == me)
			continue;
		if (wait_record(&readers[i], e, inside ? e : 0, obj))
			skipped = true;
	}
	if (wait_overflow(inside))
		skipped = true;
	if (inside && me)
		atomic_store_explicit(&me->waiting, 0, memory_order_release);
	return skipped ? 1 : 0;
}

int reclaim_synchronize(void)
{
	if (reclaim_tls_.depth)
		return -EDEADLK;
	wait_for(NULL);
	reclaim_poll();
	return 0;
}

int reclaim_wait(const void *obj)
{
	return wait_for(obj);
}

int reclaim_drain(void)
{
	int ret = reclaim_synchronize();

	if (ret)
		return ret;
	pthread_mutex_lock(&cb_lock);
	poll_locked();
	pthread_mutex_unlock(&cb_lock);
	return 0;
}

bool reclaim_uses_membarrier(void)
{
	init_once_();
	return use_membarrier;
}

void reclaim_test_force_fence(bool on)
{
	init_once_();
	set_membarrier(!on);
}

void reclaim_test_limit_readers(unsigned n)
{
	pthread_mutex_lock(&reg_lock);
	max_readers = n < RECLAIM_READERS ? n : RECLAIM_READERS;
	pthread_mutex_unlock(&reg_lock);
}

unsigned long reclaim_pending(void)
{
	return atomic_load(&q_len);
}
