/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * -ENOMEM paths of libvm-allocator, by fault injection
 * (tests/common/fault-inject.h, compiled into the library's sources):
 * every call that needs memory fails cleanly when malloc fails, at every
 * point, and leaves the allocator exactly as it was.
 */
#include <check.h>

#include "alloc-model.h"
#include "cvmm-check.h"
#include "fault-inject.h"

START_TEST(create_enomem)
{
	struct address_allocator *a;
	struct id_allocator *ids;
	long n;

	for (n = 0;; n++) {
		a = (struct address_allocator *)&a;
		fault_arm(n);
		if (address_allocator_create(0x1000, 0x1fff, &a) == 0)
			break;
		fault_disarm();
		ck_assert_ptr_eq(a, (struct address_allocator *)&a);
		ck_assert_int_gt(fault_injected, 0);
	}
	fault_disarm();
	/* The allocator struct and its first free range: two allocations. */
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(address_allocator_check(a), 0);
	address_allocator_destroy(a);

	for (n = 0;; n++) {
		ids = (struct id_allocator *)&ids;
		fault_arm(n);
		if (id_allocator_create(0, 1000, &ids) == 0)
			break;
		fault_disarm();
		ck_assert_ptr_eq(ids, (struct id_allocator *)&ids);
	}
	fault_disarm();
	ck_assert_int_eq(n, 2);
	id_allocator_destroy(ids);
}
END_TEST

/*
 * Try one allocation with malloc failing after 0, 1, 2, ... successes;
 * every failure must be -ENOMEM with nothing changed (compared with the
 * model), until it finally succeeds where the model says it should.
 * Returns how many attempts failed.
 */
static long alloc_until_ok(struct address_allocator *a, struct model *m,
			   uint64_t size, uint64_t align,
			   enum address_allocator_policy p, uint64_t at)
{
	char why[256];
	const char *diff;
	uint64_t got, want = at;
	long n;
	int err, merr;

	for (n = 0;; n++) {
		got = at;
		fault_arm(n);
		err = address_allocator_allocate(a, size, align, p, &got);
		fault_disarm();
		diff = model_compare(m, a, why, sizeof(why));
		if (err == 0)
			break;
		ck_assert_int_eq(err, -ENOMEM);
		ck_assert_uint_eq(got, at);
		/* Unchanged: the model has not applied anything yet. */
		ck_assert_msg(diff == NULL, "after failure %ld: %s", n, diff);
	}
	merr = model_allocate(m, size, align, (int)p, &want);
	ck_assert_int_eq(merr, 0);
	ck_assert_uint_eq(got, want);
	diff = model_compare(m, a, why, sizeof(why));
	ck_assert_msg(diff == NULL, "after success: %s", diff);
	return n;
}

START_TEST(allocate_enomem_rollback)
{
	static struct model_iv buf[16];
	struct address_allocator *a;
	struct model m;

	ck_assert_int_eq(address_allocator_create(0, 0xffff, &a), 0);
	model_init(&m, 0, 0xffff, buf, 16);
	/* Exact in the middle of a free range: needs the allocation node and
	 * a second free node (the range splits in two), so both the first
	 * and the second malloc failing must roll back. */
	ck_assert_int_eq(alloc_until_ok(a, &m, 0x100, 1, ADDRESS_ALLOC_EXACT,
					0x8000),
			 2);
	/* Aligned first fit that leaves space on both sides. */
	ck_assert_int_eq(alloc_until_ok(a, &m, 0x10, 0x1000,
					ADDRESS_ALLOC_FIRST_FIT, 0),
			 1);
	ck_assert_int_eq(alloc_until_ok(a, &m, 0x10, 0x1000,
					ADDRESS_ALLOC_FIRST_FIT, 0),
			 2);
	/* Last fit at the top: only the allocation node is new. */
	ck_assert_int_eq(
		alloc_until_ok(a, &m, 0x10, 1, ADDRESS_ALLOC_LAST_FIT, 0), 1);
	ck_assert_int_eq(alloc_until_ok(a, &m, 0x10, 0x100,
					ADDRESS_ALLOC_LAST_FIT, 0),
			 2);
	ck_assert_int_eq(
		alloc_until_ok(a, &m, 0x10, 1, ADDRESS_ALLOC_EXACT, 0x4000), 2);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(free_never_allocates)
{
	struct address_allocator *a;
	uint64_t x[4], y = 0;
	int i;

	ck_assert_int_eq(address_allocator_create(0, 0xffff, &a), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(address_allocator_allocate(
					 a, 0x100, 1, ADDRESS_ALLOC_FIRST_FIT,
					 &x[i]),
				 0);
	/* With malloc failing, free (with coalescing) still works ... */
	fault_arm(0);
	ck_assert_int_eq(address_allocator_free(a, x[1], 0x100), 0);
	ck_assert_int_eq(address_allocator_free(a, x[0], 0), 0);
	ck_assert_int_eq(address_allocator_free(a, x[2], 0), 0);
	ck_assert_int_eq(fault_injected, 0);
	/* ... and the nodes it released are reused without malloc. */
	ck_assert_int_eq(address_allocator_allocate(
				 a, 0x100, 1, ADDRESS_ALLOC_FIRST_FIT, &y),
			 0);
	ck_assert_uint_eq(y, 0);
	ck_assert_int_eq(fault_injected, 0);
	fault_disarm();
	ck_assert_int_eq(address_allocator_check(a), 0);
	ck_assert_uint_eq(address_allocator_count(a), 2);
	address_allocator_destroy(a);
}
END_TEST

/* The id allocator never allocates after creation. */
START_TEST(id_ops_never_allocate)
{
	struct id_allocator *ids;
	uint32_t id;
	int i;

	ck_assert_int_eq(id_allocator_create(0, 99, &ids), 0);
	fault_arm(0);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(id_allocator_allocate(ids, &id), 0);
	ck_assert_int_eq(id_allocator_allocate(ids, &id), -ENOSPC);
	ck_assert_int_eq(id_allocator_free(ids, 42), 0);
	ck_assert_int_eq(id_allocator_allocate_id(ids, 42), 0);
	ck_assert_int_eq(fault_injected, 0);
	fault_disarm();
	id_allocator_destroy(ids);
}
END_TEST

static Suite *enomem_suite(void)
{
	Suite *s = suite_create("vm-allocator-enomem");
	TCase *t = tcase_create("enomem");

	tcase_add_test(t, create_enomem);
	tcase_add_test(t, allocate_enomem_rollback);
	tcase_add_test(t, free_never_allocates);
	tcase_add_test(t, id_ops_never_allocate);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return cvmm_check_run(enomem_suite(), false);
}
