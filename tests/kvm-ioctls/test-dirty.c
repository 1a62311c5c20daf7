/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * kvm suite: memory slots and dirty tracking.  The ring-3 guest (UC_DIRTY)
 * writes one byte to each of a few pages of a second slot; the dirty
 * bitmap (with and without manual protect + KVM_CLEAR_DIRTY_LOG) and the
 * dirty ring must report exactly those pages.  A read-only slot turns
 * guest writes into MMIO exits.
 */
#include <string.h>
#include <sys/mman.h>

#include "cvmm-check.h"
#include "tvm.h"

#define SLOT1	    1
#define SLOT1_GPA   0x200000ull
#define SLOT1_PAGES 128
#define SLOT1_SIZE  (SLOT1_PAGES * 4096ull)

static const unsigned expect_pages[] = {3, 8, 13, 18, 70};
#define NEXPECT (sizeof(expect_pages) / sizeof(expect_pages[0]))

static uint8_t *slot1_mem;

static void add_slot1(struct tvm *t)
{
	slot1_mem = mmap(NULL, SLOT1_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(slot1_mem, MAP_FAILED);
	ck_assert_int_eq(kvm_vm_set_user_memory_region(
				 t->vm, SLOT1, KVM_MEM_LOG_DIRTY_PAGES,
				 SLOT1_GPA, SLOT1_SIZE, slot1_mem),
			 0);
}

static void drop_slot1(void)
{
	munmap(slot1_mem, SLOT1_SIZE);
}

/* Run the guest's write pass over pages 3, 8, 13, 18 (stride 5) + 70. */
static void write_pass(struct tvm *t)
{
	struct kvm_regs regs;

	tvm_setup_long(t, t->vcpu, true, false, true, UC_DIRTY);
	ck_assert_int_eq(kvm_vcpu_get_regs(t->vcpu, &regs), 0);
	regs.rsi = SLOT1_GPA + 3 * 4096;
	regs.rdx = 5 * 4096;
	regs.rcx = 4;
	ck_assert_int_eq(kvm_vcpu_set_regs(t->vcpu, &regs), 0);
	ck_assert_uint_eq(tvm_expect_out(t, GP_DONE), 0);
	regs.rsi = SLOT1_GPA + 70 * 4096 + 123;
	regs.rcx = 1;
	ck_assert_int_eq(kvm_vcpu_set_regs(t->vcpu, &regs), 0);
	ck_assert_uint_eq(tvm_expect_out(t, GP_DONE), 0);
}

static void assert_bitmap(const uint64_t *bm, bool want_set)
{
	uint64_t want[SLOT1_PAGES / 64] = {0};
	size_t i;

	if (want_set)
		for (i = 0; i < NEXPECT; i++)
			want[expect_pages[i] / 64] |= 1ull
						      << (expect_pages[i] % 64);
	for (i = 0; i < SLOT1_PAGES / 64; i++)
		ck_assert_msg(bm[i] == want[i], "word %zu: %#llx want %#llx", i,
			      (unsigned long long)bm[i],
			      (unsigned long long)want[i]);
}

/* KVM_GET_DIRTY_LOG into a bitmap pre-filled with a pattern, so the exact
 * comparison also proves KVM wrote every word (and valgrind, which cannot
 * see KVM write through kvm_dirty_log's embedded pointer, sees defined
 * bytes). */
static int get_log(struct tvm *t, uint64_t *bm)
{
	memset(bm, 0xa5, SLOT1_PAGES / 8);
	return kvm_vm_get_dirty_log(t->vm, SLOT1, bm);
}

START_TEST(dirty_log_reports_written_pages)
{
	uint64_t bm[SLOT1_PAGES / 64];
	struct tvm t;

	ck_assert_uint_eq(kvm_dirty_bitmap_size(SLOT1_SIZE), sizeof(bm));
	tvm_init(&t, TVM_RAM, add_slot1);
	tvm_load(&t, guest_user_start, guest_user_end);
	/* Nothing written yet. */
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, false);
	write_pass(&t);
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, true);
	ck_assert_uint_eq(slot1_mem[70 * 4096 + 123], 1);
	/* Without manual protect, GET also cleared and re-protected. */
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, false);
	write_pass(&t);
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, true);
	/* Slot 0 does not log: GET on it fails. */
	ck_assert_int_eq(kvm_vm_get_dirty_log(t.vm, 0, bm), -ENOENT);
	tvm_fini(&t);
	drop_slot1();
}
END_TEST

static void pre_manual(struct tvm *t)
{
	ck_assert_int_eq(kvm_vm_enable_manual_dirty_protect(t->vm), 0);
	add_slot1(t);
}

START_TEST(clear_dirty_log_manual_protect)
{
	uint64_t bm[SLOT1_PAGES / 64];
	struct tvm t;

	tvm_init(&t, TVM_RAM, NULL);
	if (kvm_vm_check_extension(t.vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) <=
	    0) {
		tvm_skip("clear_dirty_log_manual_protect", "no "
							   "KVM_CAP_MANUAL_"
							   "DIRTY_LOG_"
							   "PROTECT2");
		tvm_fini(&t);
		return;
	}
	tvm_fini(&t);
	tvm_init(&t, TVM_RAM, pre_manual);
	tvm_load(&t, guest_user_start, guest_user_end);
	write_pass(&t);
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, true);
	/* Manual protect: GET does not clear. */
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, true);
	/* first_page must be 64-aligned. */
	ck_assert_int_eq(kvm_vm_clear_dirty_log(t.vm, SLOT1, 1, 64, bm),
			 -EINVAL);
	ck_assert_int_eq(
		kvm_vm_clear_dirty_log(t.vm, SLOT1, 0, SLOT1_PAGES, bm), 0);
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, false);
	/* Cleared pages were re-protected: writing them logs them again. */
	write_pass(&t);
	ck_assert_int_eq(get_log(&t, bm), 0);
	assert_bitmap(bm, true);
	tvm_fini(&t);
	drop_slot1();
}
END_TEST

#define RING_BYTES 65536u

static void pre_ring(struct tvm *t)
{
	ck_assert_int_eq(kvm_vm_enable_dirty_ring(t->vm, 1000), -EINVAL);
	ck_assert_int_eq(kvm_vm_enable_dirty_ring(t->vm, RING_BYTES), 0);
	add_slot1(t);
}

/* Harvest chunk entries at a time (a partial harvest must resume where
 * it stopped) and check the set of (slot, page) equals the expected
 * pages, in the order the guest wrote them. */
static void harvest_expect(struct tvm *t, size_t chunk)
{
	struct kvm_dirty_gfn g[64];
	bool seen[SLOT1_PAGES] = {false};
	unsigned order[64];
	int n, i, total = 0, calls = 0;
	size_t k;

	ck_assert_uint_le(chunk, 64);
	while ((n = kvm_vcpu_dirty_ring_harvest(t->vcpu, g, chunk)) > 0) {
		ck_assert_int_le(n, (int)chunk);
		ck_assert_int_lt(++calls, 64);
		for (i = 0; i < n; i++) {
			ck_assert_uint_eq(g[i].slot, SLOT1);
			ck_assert_uint_lt(g[i].offset, SLOT1_PAGES);
			ck_assert_msg(!seen[g[i].offset], "page %llu twice",
				      (unsigned long long)g[i].offset);
			seen[g[i].offset] = true;
			ck_assert_int_lt(total, 64);
			order[total++] = (unsigned)g[i].offset;
		}
	}
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(total, (int)NEXPECT);
	for (k = 0; k < NEXPECT; k++) {
		ck_assert(seen[expect_pages[k]]);
		ck_assert_uint_eq(order[k], expect_pages[k]);
	}
	ck_assert_int_eq(kvm_vcpu_dirty_ring_harvest(t->vcpu, g, 64), 0);
	ck_assert_int_eq(kvm_vcpu_dirty_ring_harvest(t->vcpu, NULL, 0), 0);
	ck_assert_int_eq(kvm_vcpu_dirty_ring_harvest(t->vcpu, NULL, 1),
			 -EINVAL);
}

START_TEST(dirty_ring_harvest_and_reset)
{
	struct kvm_dirty_gfn g[4];
	struct tvm t;
	int acq, plain;

	tvm_init(&t, TVM_RAM, NULL);
	acq = kvm_vm_check_extension(t.vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	plain = kvm_vm_check_extension(t.vm, KVM_CAP_DIRTY_LOG_RING);
	ck_assert_int_eq(kvm_vcpu_dirty_ring_harvest(t.vcpu, g, 4), -ENOTSUP);
	tvm_fini(&t);
	if ((acq > 0 ? acq : plain) < (int)RING_BYTES) {
		tvm_skip("dirty_ring_harvest_and_reset", "no "
							 "KVM_CAP_DIRTY_LOG_"
							 "RING of 64 KiB");
		return;
	}
	tvm_init(&t, TVM_RAM, pre_ring);
	tvm_load(&t, guest_user_start, guest_user_end);
	write_pass(&t);
	harvest_expect(&t, 64);
	ck_assert_int_eq(kvm_vm_reset_dirty_rings(t.vm), (int)NEXPECT);
	/* Reset re-protected the pages: the same writes show up again, and a
	 * harvest two at a time resumes where it stopped. */
	write_pass(&t);
	harvest_expect(&t, 2);
	ck_assert_int_eq(kvm_vm_reset_dirty_rings(t.vm), (int)NEXPECT);
	ck_assert_int_eq(kvm_vm_reset_dirty_rings(t.vm), 0);
	tvm_fini(&t);
	drop_slot1();
}
END_TEST

#define BIG_GPA	  0x1000000ull
#define BIG_PAGES 2048u

static uint8_t *big_mem;
static uint32_t small_ring;

static void pre_small_ring(struct tvm *t)
{
	ck_assert_int_eq(kvm_vm_enable_dirty_ring(t->vm, small_ring), 0);
	big_mem = mmap(NULL, BIG_PAGES * 4096ull, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(big_mem, MAP_FAILED);
	ck_assert_int_eq(kvm_vm_set_user_memory_region(
				 t->vm, 5, KVM_MEM_LOG_DIRTY_PAGES, BIG_GPA,
				 BIG_PAGES * 4096ull, big_mem),
			 0);
}

/* More dirty pages than the ring holds: KVM_EXIT_DIRTY_RING_FULL, then
 * harvest + reset lets the guest go on; every page is reported. */
START_TEST(dirty_ring_full_exit)
{
	static bool seen[BIG_PAGES];
	struct kvm_dirty_gfn g[512];
	struct kvm_exit_info x;
	struct kvm_regs regs;
	struct tvm t;
	int acq, plain, n, i, fulls = 0, loops;
	uint32_t total = 0, uniq = 0;

	tvm_init(&t, TVM_RAM, NULL);
	acq = kvm_vm_check_extension(t.vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	plain = kvm_vm_check_extension(t.vm, KVM_CAP_DIRTY_LOG_RING);
	tvm_fini(&t);
	if ((acq > 0 ? acq : plain) < 65536) {
		tvm_skip("dirty_ring_full_exit", "no KVM_CAP_DIRTY_LOG_RING");
		return;
	}
	/* The smallest ring KVM accepts (it reserves entries for PML). */
	for (small_ring = 4096; small_ring <= 65536; small_ring *= 2) {
		struct kvm_sys *sys;
		struct kvm_vm_obj *vm;

		ck_assert_int_eq(kvm_sys_create(&sys), 0);
		ck_assert_int_eq(kvm_vm_create(sys, 0, &vm), 0);
		n = kvm_vm_enable_dirty_ring(vm, small_ring);
		kvm_vm_destroy(vm);
		kvm_sys_destroy(sys);
		if (n == 0)
			break;
	}
	ck_assert_uint_le(small_ring, 65536);
	ck_assert_uint_lt(small_ring / sizeof(struct kvm_dirty_gfn), BIG_PAGES);
	memset(seen, 0, sizeof(seen));
	tvm_init(&t, TVM_RAM, pre_small_ring);
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_DIRTY);
	ck_assert_int_eq(kvm_vcpu_get_regs(t.vcpu, &regs), 0);
	regs.rsi = BIG_GPA;
	regs.rdx = 4096;
	regs.rcx = BIG_PAGES;
	ck_assert_int_eq(kvm_vcpu_set_regs(t.vcpu, &regs), 0);
	for (loops = 0; loops < 1000; loops++) {
		tvm_run(&t, &x);
		while ((n = kvm_vcpu_dirty_ring_harvest(t.vcpu, g, 512)) > 0) {
			for (i = 0; i < n; i++) {
				ck_assert_uint_eq(g[i].slot, 5);
				ck_assert_uint_lt(g[i].offset, BIG_PAGES);
				if (!seen[g[i].offset])
					uniq++;
				seen[g[i].offset] = true;
				total++;
			}
		}
		ck_assert_int_ge(kvm_vm_reset_dirty_rings(t.vm), 0);
		if (x.reason != KVM_EXIT_DIRTY_RING_FULL)
			break;
		fulls++;
	}
	ck_assert_msg(x.reason == KVM_EXIT_IO, "exit %s",
		      kvm_exit_reason_name(x.reason));
	ck_assert_uint_eq(x.io.port, GP_DONE);
	ck_assert_int_gt(fulls, 0);
	/* Every page reported; a page may come again only once per full
	 * exit (the write that hit the full ring is retried after reset). */
	ck_assert_uint_eq(uniq, BIG_PAGES);
	ck_assert_uint_le(total, BIG_PAGES + (uint32_t)fulls);
	tvm_fini(&t);
	munmap(big_mem, BIG_PAGES * 4096ull);
}
END_TEST

START_TEST(readonly_slot_write_exits)
{
	struct kvm_exit_info x;
	struct kvm_regs regs;
	struct tvm t;
	uint8_t *ro;

	tvm_init(&t, TVM_RAM, NULL);
	if (kvm_vm_check_extension(t.vm, KVM_CAP_READONLY_MEM) <= 0) {
		tvm_skip("readonly_slot_write_exits", "no "
						      "KVM_CAP_READONLY_MEM");
		tvm_fini(&t);
		return;
	}
	ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(ro, MAP_FAILED);
	ck_assert_int_eq(kvm_vm_set_user_memory_region(
				 t.vm, 2, KVM_MEM_READONLY, 0x300000, 4096, ro),
			 0);
	/* Misaligned arguments are refused by the library. */
	ck_assert_int_eq(kvm_vm_set_user_memory_region(t.vm, 3, 0, 0x400001,
						       4096, ro),
			 -EINVAL);
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_DIRTY);
	ck_assert_int_eq(kvm_vcpu_get_regs(t.vcpu, &regs), 0);
	regs.rsi = 0x300010;
	regs.rdx = 4096;
	regs.rcx = 1;
	ck_assert_int_eq(kvm_vcpu_set_regs(t.vcpu, &regs), 0);
	tvm_run(&t, &x);
	ck_assert_msg(x.reason == KVM_EXIT_MMIO, "exit %s",
		      kvm_exit_reason_name(x.reason));
	ck_assert(x.mmio.write);
	ck_assert_uint_eq(x.mmio.gpa, 0x300010);
	ck_assert_uint_eq(x.mmio.data[0], 1);
	ck_assert_uint_eq(ro[0x10], 0);
	ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 0);
	ck_assert_int_eq(kvm_vm_delete_memory_region(t.vm, 2), 0);
	munmap(ro, 4096);
	tvm_fini(&t);
}
END_TEST

static Suite *dirty_suite(void)
{
	Suite *s = suite_create("kvm-dirty");
	TCase *tc = tcase_create("dirty");

	tcase_add_test(tc, dirty_log_reports_written_pages);
	tcase_add_test(tc, clear_dirty_log_manual_protect);
	tcase_add_test(tc, dirty_ring_harvest_and_reset);
	tcase_add_test(tc, dirty_ring_full_exit);
	tcase_add_test(tc, readonly_slot_write_exits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	tvm_skips_init();
	r = cvmm_check_run(dirty_suite(), true);
	if (tvm_skips())
		printf("%d capability test(s) skipped by name (see SKIP "
		       "lines)\n",
		       tvm_skips());
	return r;
}
