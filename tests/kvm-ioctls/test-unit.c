/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * unit suite (no /dev/kvm): exit decoding of synthetic kvm_run pages,
 * including hostile offsets and lengths; the GSI routing builder's bounds;
 * flexible-array allocators; argument checks and error paths.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "cvmm/kvm-ioctls.h"

#define MAP 12288u

static struct kvm_run *run_page(void)
{
	struct kvm_run *r = aligned_alloc(4096, MAP);

	ck_assert_ptr_nonnull(r);
	memset(r, 0, MAP);
	return r;
}

START_TEST(decode_pio_string)
{
	struct kvm_run *r = run_page();
	struct kvm_exit_info x;

	r->exit_reason = KVM_EXIT_IO;
	r->io.direction = KVM_EXIT_IO_OUT;
	r->io.size = 2;
	r->io.port = 0x3f8;
	r->io.count = 3;
	r->io.data_offset = 4096;
	memcpy((char *)r + 4096, "abcdef", 6);
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert(x.known);
	ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
	ck_assert_uint_eq(x.io.port, 0x3f8);
	ck_assert(!x.io.in);
	ck_assert_uint_eq(x.io.len, 6);
	ck_assert_ptr_eq(x.io.data, (uint8_t *)r + 4096);
	ck_assert_int_eq(memcmp(x.io.data, "abcdef", 6), 0);
	/* exactly at the end of the mapping is fine */
	r->io.data_offset = MAP - 6;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	free(r);
}
END_TEST

START_TEST(decode_pio_hostile)
{
	struct kvm_run *r = run_page();
	struct kvm_exit_info x;

	r->exit_reason = KVM_EXIT_IO;
	r->io.direction = KVM_EXIT_IO_IN;
	r->io.size = 4;
	r->io.count = 1;
	/* buffer one byte past the mapping */
	r->io.data_offset = MAP - 3;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	ck_assert_ptr_null(x.io.data);
	/* A refused exit is not "known": only reason and run are set. */
	ck_assert(!x.known);
	ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
	ck_assert_ptr_eq(x.run, r);
	/* size * count past the mapping */
	r->io.data_offset = 4096;
	r->io.count = 0xffffffffu;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	/* offset overlapping the kvm_run header */
	r->io.count = 1;
	r->io.data_offset = 8;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	/* huge offset that would wrap */
	r->io.data_offset = ~0ull - 1;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	/* bad size, bad direction, zero count */
	r->io.data_offset = 4096;
	r->io.size = 3;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	r->io.size = 1;
	r->io.direction = 7;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	r->io.direction = KVM_EXIT_IO_IN;
	r->io.count = 0;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	/* a mapping smaller than kvm_run itself */
	ck_assert_int_eq(kvm_exit_decode(r, 64, &x), -EPROTO);
	free(r);
}
END_TEST

START_TEST(decode_mmio)
{
	struct kvm_run *r = run_page();
	struct kvm_exit_info x;

	r->exit_reason = KVM_EXIT_MMIO;
	r->mmio.phys_addr = 0xfee00000;
	r->mmio.len = 4;
	r->mmio.is_write = 1;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.mmio.gpa, 0xfee00000);
	ck_assert_uint_eq(x.mmio.len, 4);
	ck_assert(x.mmio.write);
	ck_assert_ptr_eq(x.mmio.data, r->mmio.data);
	r->mmio.len = 9;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	ck_assert(!x.known);
	ck_assert_ptr_null(x.mmio.data);
	r->mmio.len = 0;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	free(r);
}
END_TEST

START_TEST(decode_errors_and_events)
{
	struct kvm_run *r = run_page();
	struct kvm_exit_info x;

	r->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	r->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	r->internal.ndata = 2;
	r->internal.data[0] = 0xaa;
	r->internal.data[1] = 0xbb;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.internal.suberror, KVM_INTERNAL_ERROR_EMULATION);
	ck_assert_uint_eq(x.internal.ndata, 2);
	ck_assert_uint_eq(x.internal.data[1], 0xbb);
	r->internal.ndata = 17;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);
	ck_assert(!x.known);
	ck_assert_ptr_null(x.internal.data);

	memset(r, 0, MAP);
	r->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	r->system_event.type = KVM_SYSTEM_EVENT_RESET;
	r->system_event.ndata = 1;
	r->system_event.data[0] = 42;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.system_event.type, KVM_SYSTEM_EVENT_RESET);
	ck_assert_uint_eq(x.system_event.ndata, 1);
	ck_assert_uint_eq(x.system_event.data[0], 42);
	r->system_event.ndata = 100;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), -EPROTO);

	memset(r, 0, MAP);
	r->exit_reason = KVM_EXIT_FAIL_ENTRY;
	r->fail_entry.hardware_entry_failure_reason = 0x80000021;
	r->fail_entry.cpu = 3;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.fail_entry.hardware_entry_failure_reason,
			  0x80000021);
	ck_assert_uint_eq(x.fail_entry.cpu, 3);

	memset(r, 0, MAP);
	r->exit_reason = KVM_EXIT_IOAPIC_EOI;
	r->eoi.vector = 0x43;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.eoi_vector, 0x43);

	memset(r, 0, MAP);
	r->exit_reason = KVM_EXIT_UNKNOWN;
	r->hw.hardware_exit_reason = 77;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert(x.known);
	ck_assert_uint_eq(x.hardware_exit_reason, 77);

	r->exit_reason = KVM_EXIT_HLT;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert(x.known);
	r->exit_reason = KVM_EXIT_SHUTDOWN;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	r->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	r->exit_reason = KVM_EXIT_DIRTY_RING_FULL;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert(x.known);
	/* a reason the library does not decode: passed through */
	r->exit_reason = KVM_EXIT_X86_BUS_LOCK;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert(!x.known);
	ck_assert_uint_eq(x.reason, KVM_EXIT_X86_BUS_LOCK);
	free(r);
}
END_TEST

START_TEST(decode_replies_point_into_run)
{
	struct kvm_run *r = run_page();
	struct kvm_exit_info x;

	r->exit_reason = KVM_EXIT_X86_RDMSR;
	r->msr.index = 0x10;
	r->msr.reason = KVM_MSR_EXIT_REASON_FILTER;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.msr.index, 0x10);
	*x.msr.data = 1234;
	*x.msr.error = 1;
	ck_assert_uint_eq(r->msr.data, 1234);
	ck_assert_uint_eq(r->msr.error, 1);

	memset(r, 0, MAP);
	r->exit_reason = KVM_EXIT_HYPERCALL;
	r->hypercall.nr = 12;
	r->hypercall.args[2] = 5;
	r->hypercall.longmode = 1;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.hypercall.nr, 12);
	ck_assert_uint_eq(x.hypercall.args[2], 5);
	*x.hypercall.ret = 9;
	ck_assert_uint_eq(r->hypercall.ret, 9);

	memset(r, 0, MAP);
	r->exit_reason = KVM_EXIT_DEBUG;
	r->debug.arch.exception = 1;
	r->debug.arch.pc = 0x1234;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert_uint_eq(x.debug.exception, 1);
	ck_assert_uint_eq(x.debug.pc, 0x1234);
	free(r);
}
END_TEST

START_TEST(decode_unknown_passes_through)
{
	struct kvm_run *r = run_page();
	struct kvm_exit_info x;

	r->exit_reason = 4242;
	ck_assert_int_eq(kvm_exit_decode(r, MAP, &x), 0);
	ck_assert(!x.known);
	ck_assert_uint_eq(x.reason, 4242);
	ck_assert_ptr_eq(x.run, r);
	ck_assert_str_eq(kvm_exit_reason_name(4242), "UNKNOWN_REASON");
	ck_assert_str_eq(kvm_exit_reason_name(KVM_EXIT_IO), "IO");
	ck_assert_str_eq(kvm_exit_reason_name(KVM_EXIT_IOAPIC_EOI), "IOAPIC_"
								    "EOI");
	ck_assert_str_eq(kvm_exit_reason_name(KVM_EXIT_S390_SIEIC), "UNKNOWN_"
								    "REASON");
	ck_assert_int_eq(kvm_exit_decode(NULL, MAP, &x), -EINVAL);
	ck_assert_int_eq(kvm_exit_decode(r, MAP, NULL), -EINVAL);
	free(r);
}
END_TEST

START_TEST(gsi_routing_bounds)
{
	struct kvm_gsi_routing *r;
	uint32_t i;

	ck_assert_int_eq(kvm_gsi_routing_create(0, &r), -EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(kvm_gsi_routing_create(KVM_IOCTLS_MAX_GSI_ROUTES + 1,
						&r),
			 -EINVAL);
	ck_assert_int_eq(kvm_gsi_routing_create(3, &r), 0);
	ck_assert_uint_eq(kvm_gsi_routing_count(r), 0);
	ck_assert_int_eq(
		kvm_gsi_routing_add_irqchip(r, 1, KVM_IRQCHIP_IOAPIC, 1), 0);
	ck_assert_int_eq(kvm_gsi_routing_add_irqchip(r, 1, 3, 1), -EINVAL);
	ck_assert_int_eq(kvm_gsi_routing_add_msi(r, 2, 0xfee00000, 0x30,
						 KVM_MSI_VALID_DEVID, 7),
			 0);
	ck_assert_int_eq(kvm_gsi_routing_add_msi(r, 2, 0, 0, 0x80, 0), -EINVAL);
	ck_assert_int_eq(kvm_gsi_routing_add_msi(r, KVM_IOCTLS_MAX_GSI_ROUTES,
						 0, 0, 0, 0),
			 -EINVAL);
	ck_assert_int_eq(kvm_gsi_routing_add_msi(r, 3, 0, 0, 0, 0), 0);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(kvm_gsi_routing_add_msi(r, 4, 0, 0, 0, 0),
				 -ENOSPC);
	ck_assert_uint_eq(kvm_gsi_routing_count(r), 3);
	kvm_gsi_routing_clear(r);
	ck_assert_uint_eq(kvm_gsi_routing_count(r), 0);
	ck_assert_int_eq(kvm_gsi_routing_add_msi(r, 3, 0, 0, 0, 0), 0);
	ck_assert_int_eq(kvm_vm_set_gsi_routing(NULL, r), -EINVAL);
	kvm_gsi_routing_destroy(r);
	kvm_gsi_routing_destroy(NULL);
	ck_assert_uint_eq(kvm_gsi_routing_count(NULL), 0);
}
END_TEST

START_TEST(flex_array_allocators)
{
	struct kvm_cpuid2 *c;
	struct kvm_msrs *m;

	ck_assert_int_eq(kvm_cpuid2_new(KVM_IOCTLS_MAX_CPUID_ENTRIES + 1, &c),
			 -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(kvm_cpuid2_new(2, &c), 0);
	ck_assert_uint_eq(c->nent, 2);
	c->entries[0].function = 7;
	c->entries[0].index = 1;
	c->entries[0].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	c->entries[1].function = 7;
	c->entries[1].index = 0;
	c->entries[1].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	ck_assert_ptr_eq(kvm_cpuid2_find(c, 7, 0), &c->entries[1]);
	ck_assert_ptr_eq(kvm_cpuid2_find(c, 7, 1), &c->entries[0]);
	ck_assert_ptr_null(kvm_cpuid2_find(c, 7, 2));
	ck_assert_ptr_null(kvm_cpuid2_find(NULL, 0, 0));
	free(c);
	ck_assert_int_eq(kvm_msrs_new(KVM_IOCTLS_MAX_MSRS + 1, &m), -EINVAL);
	ck_assert_int_eq(kvm_msrs_new(0, &m), 0);
	ck_assert_uint_eq(m->nmsrs, 0);
	free(m);
	ck_assert_int_eq(kvm_msrs_new(5, NULL), -EINVAL);
}
END_TEST

/* Open file descriptors of this process (error paths must not leak). */
static int count_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* kvm_sys_create_path opens the file before it learns it is not KVM: the
 * error path must close it. */
START_TEST(sys_create_error_closes_fd)
{
	char path[] = "/tmp/kvm-ioctls-unit-XXXXXX";
	struct kvm_sys *sys = (struct kvm_sys *)1;
	int fd, before, i;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	before = count_fds();
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(kvm_sys_create_path(path, &sys), -ENOTTY);
		ck_assert_ptr_null(sys);
	}
	ck_assert_int_eq(count_fds(), before);
	unlink(path);
}
END_TEST

START_TEST(null_and_bad_arguments)
{
	struct kvm_sys *sys;
	struct kvm_vm_obj *vm;
	struct kvm_vcpu_obj *v;
	struct kvm_dev_obj *d;
	struct kvm_exit_info x;
	struct kvm_regs regs;

	/* nonexistent path, then a file that is not /dev/kvm */
	ck_assert_int_eq(kvm_sys_create_path("/nonexistent/kvm", &sys),
			 -ENOENT);
	ck_assert_ptr_null(sys);
	{
		char path[] = "/tmp/kvm-ioctls-unit-XXXXXX";
		int fd = mkstemp(path);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(kvm_sys_create_path(path, &sys), -ENOTTY);
		ck_assert_ptr_null(sys);
		close(fd);
		unlink(path);
	}
	ck_assert_int_eq(kvm_sys_create_path(NULL, &sys), -EINVAL);
	ck_assert_int_eq(kvm_vm_create(NULL, 0, &vm), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_create(NULL, 0, &v), -EINVAL);
	ck_assert_int_eq(kvm_dev_create(NULL, KVM_DEV_TYPE_VFIO, &d), -EINVAL);
	ck_assert_int_eq(kvm_sys_check_extension(NULL, 1), -EINVAL);
	ck_assert_int_eq(kvm_sys_fd(NULL), -EINVAL);
	ck_assert_int_eq(kvm_vm_fd(NULL), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_fd(NULL), -EINVAL);
	ck_assert_int_eq(kvm_dev_fd(NULL), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_get_regs(NULL, &regs), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_run(NULL, &x), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_kick(NULL), -EINVAL);
	ck_assert_int_eq(kvm_vm_irqfd_assign(NULL, 3, 0, -1), -EINVAL);
	ck_assert_int_eq(kvm_vm_set_user_memory_region(NULL, 0, 0, 0, 4096,
						       &regs),
			 -EINVAL);
	ck_assert_ptr_null(kvm_vcpu_run_struct(NULL));
	ck_assert_ptr_null(kvm_vcpu_sync_regs(NULL));
	ck_assert_int_eq(kvm_vcpu_coalesced_drain(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_dirty_ring_harvest(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(kvm_dev_set_attr(NULL, 0, 0, &regs), -EINVAL);
	ck_assert_int_eq(kvm_dev_get_attr(NULL, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_kick_bind(NULL, SIGUSR1), -EINVAL);
	/* destructors accept NULL */
	kvm_sys_destroy(NULL);
	kvm_vm_destroy(NULL);
	kvm_vcpu_destroy(NULL);
	kvm_dev_destroy(NULL);
}
END_TEST

START_TEST(dirty_bitmap_sizes)
{
	ck_assert_uint_eq(kvm_dirty_bitmap_size(0), 0);
	ck_assert_uint_eq(kvm_dirty_bitmap_size(4096), 8);
	ck_assert_uint_eq(kvm_dirty_bitmap_size(64 * 4096), 8);
	ck_assert_uint_eq(kvm_dirty_bitmap_size(65 * 4096), 16);
	ck_assert_uint_eq(kvm_dirty_bitmap_size(1), 8);
	ck_assert_uint_eq(kvm_dirty_bitmap_size(1ull << 32), (1u << 20) / 8);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("kvm-ioctls-unit");
	TCase *tc = tcase_create("unit");

	tcase_add_test(tc, decode_pio_string);
	tcase_add_test(tc, decode_pio_hostile);
	tcase_add_test(tc, decode_mmio);
	tcase_add_test(tc, decode_errors_and_events);
	tcase_add_test(tc, decode_replies_point_into_run);
	tcase_add_test(tc, decode_unknown_passes_through);
	tcase_add_test(tc, gsi_routing_bounds);
	tcase_add_test(tc, flex_array_allocators);
	tcase_add_test(tc, sys_create_error_closes_fd);
	tcase_add_test(tc, null_and_bad_arguments);
	tcase_add_test(tc, dirty_bitmap_sizes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(unit_suite(), false);
}
