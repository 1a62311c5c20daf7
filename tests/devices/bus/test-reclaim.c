/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Unit tests for libdevices' deferred-reclamation domain
 * (libdevices/src/reclaim): nesting, retire after a grace period,
 * per-object waits, concurrent waiters, in-section waits that would form
 * a cycle, the readers' fence path and fork().  Every threaded test is
 * bounded: Check's per-test timeout kills a hang, and waits inside the
 * tests give up after a few seconds.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "reclaim.h"

static int X, Y; /* objects named by sections */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Spin until *flag is set, at most 5 s. */
static bool wait_flag(atomic_int *flag)
{
	double end = now_s() + 5;

	while (!atomic_load(flag)) {
		if (now_s() > end)
			return false;
		sched_yield();
	}
	return true;
}

struct freed {
	struct reclaim_node node;
	atomic_int done;
};

static void mark_freed(struct reclaim_node *n)
{
	atomic_store(&((struct freed *)n)->done, 1);
}

/* A thread that sits in a section for @obj until released. */
struct holder {
	pthread_t t;
	const void *obj;
	atomic_int inside;
	atomic_int release;
	atomic_int left;
};

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	ck_assert(reclaim_read_enter(h->obj));
	atomic_store(&h->inside, 1);
	while (!atomic_load(&h->release))
		sleep_ms(1);
	atomic_store(&h->left, 1);
	reclaim_read_exit();
	return NULL;
}

static void holder_start(struct holder *h, const void *obj)
{
	atomic_init(&h->inside, 0);
	atomic_init(&h->release, 0);
	atomic_init(&h->left, 0);
	h->obj = obj;
	ck_assert_int_eq(pthread_create(&h->t, NULL, holder_main, h), 0);
	ck_assert(wait_flag(&h->inside));
}

static void holder_stop(struct holder *h)
{
	atomic_store(&h->release, 1);
	pthread_join(h->t, NULL);
}

START_TEST(test_nesting_and_holds)
{
	ck_assert(!reclaim_in_section());
	ck_assert(reclaim_read_enter(&X));
	ck_assert(reclaim_read_enter(&Y));
	ck_assert(reclaim_in_section());
	ck_assert(reclaim_holds(&X));
	ck_assert(reclaim_holds(&Y));
	reclaim_read_exit();
	ck_assert(reclaim_holds(&X));
	ck_assert(!reclaim_holds(&Y));
	ck_assert_int_eq(reclaim_synchronize(), -EDEADLK);
	ck_assert_int_eq(reclaim_drain(), -EDEADLK);
	reclaim_read_exit();
	ck_assert(!reclaim_in_section());
	ck_assert(!reclaim_holds(&X));
	/* Bounded nesting: the 25th section is refused, nothing entered. */
	for (unsigned i = 0; i < RECLAIM_NEST; i++)
		ck_assert(reclaim_read_enter(&X));
	ck_assert(!reclaim_read_enter(&Y));
	ck_assert(!reclaim_holds(&Y));
	for (unsigned i = 0; i < RECLAIM_NEST; i++)
		reclaim_read_exit();
	ck_assert(!reclaim_in_section());
	ck_assert_int_eq(reclaim_synchronize(), 0);
}
END_TEST

START_TEST(test_retire_waits_for_other_reader)
{
	struct holder h;
	struct freed f = {.done = 0};

	holder_start(&h, &X);
	reclaim_retire(&f.node, mark_freed);
	ck_assert_uint_eq(reclaim_pending(), 1);
	for (int i = 0; i < 20; i++) {
		reclaim_poll();
		sleep_ms(1);
	}
	ck_assert_int_eq(atomic_load(&f.done), 0);
	holder_stop(&h);
	ck_assert_int_eq(reclaim_drain(), 0);
	ck_assert_int_eq(atomic_load(&f.done), 1);
	ck_assert_uint_eq(reclaim_pending(), 0);
}
END_TEST

START_TEST(test_retire_inside_section_waits_for_own)
{
	struct freed f = {.done = 0};

	ck_assert(reclaim_read_enter(&X));
	reclaim_retire(&f.node, mark_freed);
	reclaim_poll();
	ck_assert_int_eq(reclaim_wait(&X), 0); /* no other thread */
	reclaim_poll();
	ck_assert_int_eq(atomic_load(&f.done), 0);
	reclaim_read_exit();
	reclaim_poll();
	ck_assert_int_eq(atomic_load(&f.done), 1);
}
END_TEST

/* A waiter for @obj, on its own thread, outside any section. */
struct waiter {
	pthread_t t;
	const void *obj;
	struct holder *h;
	atomic_int started;
	int ret;
	bool holder_had_left;
	double took;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	double t0 = now_s();

	atomic_store(&w->started, 1);
	w->ret = reclaim_wait(w->obj);
	w->holder_had_left = atomic_load(&w->h->left);
	w->took = now_s() - t0;
	return NULL;
}

START_TEST(test_concurrent_waiters_wait_for_old_reader)
{
	/* Three concurrent waiters (the pattern that broke the two-parity
	 * scheme: each flip let another's drain return early).  None may
	 * return before the reader that was in the section when it was
	 * called has left. */
	struct holder h;
	struct waiter w[3];

	holder_start(&h, &X);
	for (int i = 0; i < 3; i++) {
		w[i] = (struct waiter){.obj = &X, .h = &h};
		ck_assert_int_eq(
			pthread_create(&w[i].t, NULL, waiter_main, &w[i]), 0);
	}
	for (int i = 0; i < 3; i++)
		ck_assert(wait_flag(&w[i].started));
	sleep_ms(100);
	holder_stop(&h);
	for (int i = 0; i < 3; i++) {
		pthread_join(w[i].t, NULL);
		ck_assert_int_eq(w[i].ret, 0);
		ck_assert(w[i].holder_had_left);
	}
}
END_TEST

START_TEST(test_wait_ignores_other_objects)
{
	/* A thread stuck in a section for Y does not hold up a wait for X
	 * (a vCPU blocked in a serial callback vs. a BAR decode change). */
	struct holder h;
	struct waiter w = {.obj = &X};

	holder_start(&h, &Y);
	w.h = &h;
	ck_assert_int_eq(pthread_create(&w.t, NULL, waiter_main, &w), 0);
	pthread_join(w.t, NULL);
	ck_assert_int_eq(w.ret, 0);
	ck_assert(!w.holder_had_left);
	ck_assert(w.took < 2.0);
	holder_stop(&h);
}
END_TEST

/* Two threads, each in a section for its own object, each waiting for
 * the other's object from inside: a cycle that must not deadlock. */
struct cross {
	pthread_t t;
	const void *mine, *other;
	atomic_int *ready;
	atomic_int *go;
	int ret;
};

static void *cross_main(void *arg)
{
	struct cross *c = arg;

	ck_assert(reclaim_read_enter(c->mine));
	atomic_fetch_add(c->ready, 1);
	while (!atomic_load(c->go))
		sched_yield();
	c->ret = reclaim_wait(c->other);
	reclaim_read_exit();
	return NULL;
}

START_TEST(test_in_section_cross_waits_no_deadlock)
{
	for (int round = 0; round < 50; round++) {
		atomic_int ready = 0, go = 0;
		struct cross a = {
			.mine = &X, .other = &Y, .ready = &ready, .go = &go};
		struct cross b = {
			.mine = &Y, .other = &X, .ready = &ready, .go = &go};

		ck_assert_int_eq(pthread_create(&a.t, NULL, cross_main, &a), 0);
		ck_assert_int_eq(pthread_create(&b.t, NULL, cross_main, &b), 0);
		while (atomic_load(&ready) < 2)
			sched_yield();
		atomic_store(&go, 1);
		pthread_join(a.t, NULL);
		pthread_join(b.t, NULL);
		/* Each must skip or wait; the earlier waiter skips the later
		 * one (and says so), the later one waits for the earlier to
		 * leave: exactly one skip. */
		ck_assert_int_eq(a.ret + b.ret, 1);
	}
}
END_TEST

static void *release_later(void *arg)
{
	struct holder *h = arg;

	sleep_ms(100);
	atomic_store(&h->release, 1);
	return NULL;
}

START_TEST(test_in_section_wait_waits_for_plain_reader)
{
	/* From inside a section (for X), a wait for Y still waits for a
	 * thread in Y that is not itself waiting. */
	struct holder h;
	pthread_t t;

	holder_start(&h, &Y);
	ck_assert(reclaim_read_enter(&X));
	ck_assert_int_eq(pthread_create(&t, NULL, release_later, &h), 0);
	ck_assert_int_eq(reclaim_wait(&Y), 0);
	ck_assert_int_eq(atomic_load(&h.left), 1);
	reclaim_read_exit();
	pthread_join(t, NULL);
	pthread_join(h.t, NULL);
}
END_TEST

/* Readers that keep entering and leaving a section for X. */
struct churn {
	pthread_t t;
	atomic_int *stop;
	unsigned long bad;
	unsigned long n;
};

#define MAGIC 0x5eed
#define DEAD  0xdead

struct obj {
	struct reclaim_node node;
	atomic_int magic;
};

static void obj_free(struct reclaim_node *n)
{
	struct obj *o = (struct obj *)n;

	atomic_store(&o->magic, DEAD);
	free(o);
}

static _Atomic(struct obj *) cur;

static void *reader_main(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(c->stop)) {
		struct obj *o;

		ck_assert(reclaim_read_enter(&X));
		o = atomic_load_explicit(&cur, memory_order_acquire);
		for (int i = 0; i < 8; i++)
			if (atomic_load_explicit(&o->magic,
						 memory_order_relaxed) != MAGIC)
				c->bad++;
		reclaim_read_exit();
		c->n++;
	}
	return NULL;
}

/* Two readers against a writer that replaces and retires the object as
 * fast as it can, and waits for X now and then. */
static void retire_stress(double seconds)
{
	atomic_int stop = 0;
	struct churn r[2];
	unsigned long swaps = 0;
	struct obj *o = malloc(sizeof(*o));
	double end = now_s() + seconds;

	ck_assert_ptr_nonnull(o);
	atomic_init(&o->magic, MAGIC);
	atomic_store(&cur, o);
	for (int i = 0; i < 2; i++) {
		r[i] = (struct churn){.stop = &stop};
		ck_assert_int_eq(
			pthread_create(&r[i].t, NULL, reader_main, &r[i]), 0);
	}
	while (now_s() < end) {
		struct obj *n = malloc(sizeof(*n));
		struct obj *old;

		ck_assert_ptr_nonnull(n);
		atomic_init(&n->magic, MAGIC);
		old = atomic_exchange(&cur, n);
		reclaim_retire(&old->node, obj_free);
		if (++swaps % 64 == 0)
			ck_assert_int_eq(reclaim_wait(&X), 0);
		reclaim_poll();
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(r[i].t, NULL);
		ck_assert_uint_eq(r[i].bad, 0);
		ck_assert_uint_gt(r[i].n, 0);
	}
	ck_assert_int_eq(reclaim_drain(), 0);
	ck_assert_uint_eq(reclaim_pending(), 0);
	free(atomic_load(&cur));
	ck_assert_uint_gt(swaps, 100);
}

START_TEST(test_retire_stress_membarrier_or_fence)
{
	retire_stress(1.0);
}
END_TEST

START_TEST(test_retire_stress_fence_path)
{
	/* The readers' fence path, as without membarrier (old kernels,
	 * seccomp) or with CVMM_IO_BUS_NO_MEMBARRIER=1. */
	reclaim_test_force_fence(true);
	ck_assert(!reclaim_uses_membarrier());
	retire_stress(1.0);
}
END_TEST

START_TEST(test_waiters_not_starved)
{
	/* Readers entering sections for X back to back never leave the
	 * record quiet; each wait must still end (new sections read a newer
	 * grace period). */
	atomic_int stop = 0;
	struct churn r[2];
	struct obj *o = malloc(sizeof(*o));
	double t0 = now_s();

	ck_assert_ptr_nonnull(o);
	atomic_init(&o->magic, MAGIC);
	atomic_store(&cur, o);
	for (int i = 0; i < 2; i++) {
		r[i] = (struct churn){.stop = &stop};
		ck_assert_int_eq(
			pthread_create(&r[i].t, NULL, reader_main, &r[i]), 0);
	}
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(reclaim_wait(&X), 0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(reclaim_synchronize(), 0);
	ck_assert(now_s() - t0 < 20);
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(r[i].t, NULL);
	free(o);
}
END_TEST

/* fork(): a parent thread sits in a section while the process forks.
 * The child must not wait for that record (the thread does not exist
 * there), must have membarrier registered again (or readers on fences),
 * and must reclaim normally. */
START_TEST(test_fork_child_reclaims)
{
	struct holder h;
	bool parent_mb = reclaim_uses_membarrier();
	pid_t pid;
	int status = 0;

	holder_start(&h, &X);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct freed f = {.done = 0};

		alarm(10); /* a hang kills the child: the parent sees it */
		if (reclaim_uses_membarrier() != parent_mb)
			_exit(2);
		if (reclaim_synchronize() != 0 || reclaim_wait(&X) != 0)
			_exit(3);
		reclaim_retire(&f.node, mark_freed);
		if (reclaim_drain() != 0 || !atomic_load(&f.done))
			_exit(4);
		retire_stress(0.3);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	holder_stop(&h);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* Threads beyond the records: the shared overflow counter.  Retire and
 * full waits treat them as holding everything; an in-section wait by or
 * for them does not wait and says so; reclaim_holds() says yes. */
struct ovf_inside {
	pthread_t t;
	int wait_ret;
	bool holds_y;
};

static void *ovf_inside_main(void *arg)
{
	struct ovf_inside *o = arg;

	ck_assert(reclaim_read_enter(&X));
	o->holds_y = reclaim_holds(&Y);
	o->wait_ret = reclaim_wait(&Y);
	reclaim_read_exit();
	return NULL;
}

START_TEST(test_overflow_threads)
{
	struct holder h;
	struct waiter w = {.obj = &Y};
	struct freed f = {.done = 0};
	struct ovf_inside o = {0};

	/* The main thread takes the only record. */
	reclaim_test_limit_readers(1);
	ck_assert(reclaim_read_enter(&X));
	reclaim_read_exit();
	holder_start(&h, &X); /* an overflow thread in a section */
	reclaim_retire(&f.node, mark_freed);
	for (int i = 0; i < 20; i++) {
		reclaim_poll();
		sleep_ms(1);
	}
	ck_assert_int_eq(atomic_load(&f.done), 0);
	/* A wait for any object, from outside, waits for it. */
	w.h = &h;
	ck_assert_int_eq(pthread_create(&w.t, NULL, waiter_main, &w), 0);
	ck_assert(wait_flag(&w.started));
	sleep_ms(50);
	ck_assert_int_eq(atomic_load(&h.left), 0);
	holder_stop(&h);
	pthread_join(w.t, NULL);
	ck_assert_int_eq(w.ret, 0);
	ck_assert(w.holder_had_left);
	ck_assert_int_eq(reclaim_drain(), 0);
	ck_assert_int_eq(atomic_load(&f.done), 1);
	/* An overflow thread inside a section: cannot tell what it holds,
	 * and its wait does not claim a guarantee it cannot give. */
	holder_start(&h, &Y);
	ck_assert_int_eq(pthread_create(&o.t, NULL, ovf_inside_main, &o), 0);
	pthread_join(o.t, NULL);
	ck_assert(o.holds_y);
	ck_assert_int_eq(o.wait_ret, 1);
	holder_stop(&h);
}
END_TEST

static Suite *reclaim_suite(void)
{
	Suite *s = suite_create("reclaim");
	TCase *tc = tcase_create("reclaim");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_nesting_and_holds);
	tcase_add_test(tc, test_retire_waits_for_other_reader);
	tcase_add_test(tc, test_retire_inside_section_waits_for_own);
	tcase_add_test(tc, test_concurrent_waiters_wait_for_old_reader);
	tcase_add_test(tc, test_wait_ignores_other_objects);
	tcase_add_test(tc, test_in_section_cross_waits_no_deadlock);
	tcase_add_test(tc, test_in_section_wait_waits_for_plain_reader);
	tcase_add_test(tc, test_waiters_not_starved);
	tcase_add_test(tc, test_retire_stress_membarrier_or_fence);
	tcase_add_test(tc, test_retire_stress_fence_path);
	tcase_add_test(tc, test_fork_child_reclaims);
	tcase_add_test(tc, test_overflow_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(reclaim_suite(), false);
}
