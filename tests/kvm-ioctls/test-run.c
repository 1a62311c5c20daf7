/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * kvm suite: KVM_RUN and decoded exits with the tiny guests (real mode,
 * 64-bit ring 0 and ring 3): PIO in/out incl. string I/O, MMIO, HLT,
 * SHUTDOWN, user-space MSR exits, hypercall, debug, interrupt window +
 * KVM_INTERRUPT, sync regs, signal mask, and the cross-thread kick.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kcheck.h"
#include "tvm.h"

START_TEST(real_mode_pio_mmio_hlt)
{
	struct tvm t;
	struct kvm_exit_info x;

	tvm_init(&t, 512 * 1024, NULL);
	tvm_load(&t, guest_rm16_start, guest_rm16_end);
	tvm_setup_real(&t);

	ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 0x42);
	/* PIO in: answer 0x99, the guest echoes it */
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
	ck_assert(x.io.in);
	ck_assert_uint_eq(x.io.port, GP_IN);
	ck_assert_uint_eq(x.io.size, 1);
	x.io.data[0] = 0x99;
	ck_assert_uint_eq(tvm_expect_out(&t, GP_ECHO), 0x99);
	/* rep outsb: the whole string in one exit (or several, in order) */
	{
		char got[8] = {0};
		size_t n = 0;

		while (n < 5) {
			tvm_run(&t, &x);
			ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
			ck_assert(!x.io.in);
			ck_assert_uint_eq(x.io.port, GP_OUTS);
			ck_assert_uint_eq(x.io.len, x.io.count);
			ck_assert_uint_le(n + x.io.len, 5);
			memcpy(got + n, x.io.data, x.io.len);
			n += x.io.len;
		}
		ck_assert_str_eq(got, "hello");
	}
	/* rep insb: give "WXYZ", the guest sends it back on GP_INS_ECHO */
	{
		const char *src = "WXYZ";
		char got[8] = {0};
		size_t n = 0;

		while (n < 4) {
			tvm_run(&t, &x);
			ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
			ck_assert(x.io.in);
			ck_assert_uint_eq(x.io.port, GP_INS);
			ck_assert_uint_le(n + x.io.len, 4);
			memcpy(x.io.data, src + n, x.io.len);
			n += x.io.len;
		}
		n = 0;
		while (n < 4) {
			tvm_run(&t, &x);
			ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
			ck_assert_uint_eq(x.io.port, GP_INS_ECHO);
			ck_assert_uint_le(n + x.io.len, 4);
			memcpy(got + n, x.io.data, x.io.len);
			n += x.io.len;
		}
		ck_assert_str_eq(got, "WXYZ");
	}
	/* MMIO write of 0x5a to 0xA0000, then a 2-byte read at 0xA0002 */
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_MMIO);
	ck_assert(x.mmio.write);
	ck_assert_uint_eq(x.mmio.gpa, 0xa0000);
	ck_assert_uint_eq(x.mmio.len, 1);
	ck_assert_uint_eq(x.mmio.data[0], 0x5a);
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_MMIO);
	ck_assert(!x.mmio.write);
	ck_assert_uint_eq(x.mmio.gpa, 0xa0002);
	ck_assert_uint_eq(x.mmio.len, 2);
	x.mmio.data[0] = 0x34;
	x.mmio.data[1] = 0x12;
	ck_assert_uint_eq(tvm_expect_out(&t, GP_MMIO_ECHO), 0x1234);
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_HLT);
	tvm_fini(&t);
}
END_TEST

START_TEST(long_mode_ring0_pio_mmio_hlt)
{
	struct tvm t;
	struct kvm_exit_info x;
	uint64_t v;

	tvm_init(&t, TVM_RAM, NULL);
	tvm_load(&t, guest_lm64_start, guest_lm64_end);
	tvm_setup_long(&t, t.vcpu, false, false, true, LC_BASIC);
	ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 0x64);
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_MMIO);
	ck_assert(x.mmio.write);
	ck_assert_uint_eq(x.mmio.gpa, GMMIO_BASE);
	ck_assert_uint_eq(x.mmio.len, 8);
	memcpy(&v, x.mmio.data, 8);
	ck_assert_uint_eq(v, 0x1122334455667788ull);
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_MMIO);
	ck_assert(!x.mmio.write);
	ck_assert_uint_eq(x.mmio.gpa, GMMIO_BASE + 8);
	ck_assert_uint_eq(x.mmio.len, 4);
	memcpy(x.mmio.data, "\x78\x56\x34\x12", 4);
	ck_assert_uint_eq(tvm_expect_out(&t, GP_IN), 0x12345678);
	{
		char got[8] = {0};
		size_t n = 0;

		while (n < 4) {
			tvm_run(&t, &x);
			ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
			ck_assert_uint_eq(x.io.port, GP_ECHO);
			ck_assert_uint_le(n + x.io.len, 4);
			memcpy(got + n, x.io.data, x.io.len);
			n += x.io.len;
		}
		ck_assert_str_eq(got, "long");
	}
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_HLT);
	tvm_fini(&t);
}
END_TEST

START_TEST(triple_fault_shutdown)
{
	struct tvm t;
	struct kvm_exit_info x;

	tvm_init(&t, TVM_RAM, NULL);
	tvm_load(&t, guest_lm64_start, guest_lm64_end);
	tvm_setup_long(&t, t.vcpu, false, false, false, LC_UD2);
	tvm_run(&t, &x);
	ck_assert_msg(x.reason == KVM_EXIT_SHUTDOWN, "exit %s",
		      kvm_exit_reason_name(x.reason));
	tvm_fini(&t);
}
END_TEST

START_TEST(ring3_count_loop)
{
	struct tvm t;
	uint32_t i;

	tvm_init(&t, TVM_RAM, NULL);
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_COUNT);
	for (i = 1; i <= 100; i++)
		ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), i);
	tvm_fini(&t);
}
END_TEST

static Suite *run_suite(void)
{
	Suite *s = suite_create("kvm-run");
	TCase *tc = tcase_create("run");

	tcase_add_test(tc, real_mode_pio_mmio_hlt);
	tcase_add_test(tc, long_mode_ring0_pio_mmio_hlt);
	tcase_add_test(tc, triple_fault_shutdown);
	tcase_add_test(tc, ring3_count_loop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(run_suite(), true);
}
