/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * PIO exit round trip: a ring-3 guest loops on "out %al, $0x10" (ring 3 runs
 * natively even where ring 0 is emulated).  Measures ns per exit through
 * kvm_vcpu_run() (KVM_RUN + validated decode) against a bare
 * ioctl(KVM_RUN) loop on the same vCPU, in alternating rounds, and prints
 * both and the ratio.  Exits 77 without /dev/kvm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#include "cvmm/kvm-ioctls.h"
#include "guests.h"
#include "layout.h"

#define RAM    (1u << 20)
#define ROUNDS 5

static volatile uint64_t sink;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int lib_loop(struct kvm_vcpu_obj *v, long n)
{
	struct kvm_exit_info x;
	long i;

	for (i = 0; i < n; i++) {
		if (kvm_vcpu_run(v, &x) != 0 || x.reason != KVM_EXIT_IO ||
		    x.io.port != GP_DONE)
			return -1;
		sink += x.io.data[0];
	}
	return 0;
}

static int bare_loop(int fd, struct kvm_run *run, long n)
{
	long i;

	for (i = 0; i < n; i++) {
		if (ioctl(fd, KVM_RUN, 0) != 0 ||
		    run->exit_reason != KVM_EXIT_IO || run->io.port != GP_DONE)
			return -1;
		sink += *((uint8_t *)run + run->io.data_offset);
	}
	return 0;
}

int main(void)
{
	struct kvm_vcpu_obj *v;
	struct kvm_vm_obj *vm;
	struct kvm_sys *sys;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	double lib_ns = 0, bare_ns = 0, t0, per;
	long n;
	uint8_t *mem;
	int r, round;

	r = kvm_sys_create(&sys);
	if (r < 0) {
		printf("SKIP: /dev/kvm: %s\n", strerror(-r));
		return 77;
	}
	mem = mmap(NULL, RAM, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || kvm_vm_create(sys, 0, &vm) != 0 ||
	    kvm_vm_set_user_memory_region(vm, 0, 0, 0, RAM, mem) != 0 ||
	    kvm_vcpu_create(vm, 0, &v) != 0) {
		fprintf(stderr, "VM setup failed\n");
		return 1;
	}
	memcpy(mem + GUEST_BASE, guest_user_start,
	       (size_t)(guest_user_end - guest_user_start));
	if (kvm_vcpu_get_sregs(v, &sregs) != 0)
		return 1;
	guest_layout_long(mem, true, false, true, UC_BENCH, &sregs, &regs);
	if (kvm_vcpu_set_sregs(v, &sregs) != 0 ||
	    kvm_vcpu_set_regs(v, &regs) != 0)
		return 1;
	run = kvm_vcpu_run_struct(v);

	/* Warm up, then calibrate to about 8 s in all (exits cost anywhere
	 * from ~1 us on hardware KVM to ~200 us on PVM). */
	if (lib_loop(v, 200) != 0) {
		fprintf(stderr, "guest did not exit on PIO as expected\n");
		return 1;
	}
	t0 = now_ns();
	if (bare_loop(kvm_vcpu_fd(v), run, 1000) != 0)
		return 1;
	per = (now_ns() - t0) / 1000;
	n = (long)(8e9 / (2 * ROUNDS) / (per > 1 ? per : 1));
	if (n < 500)
		n = 500;
	if (n > 2000000)
		n = 2000000;

	for (round = 0; round < ROUNDS; round++) {
		t0 = now_ns();
		if (bare_loop(kvm_vcpu_fd(v), run, n) != 0)
			return 1;
		bare_ns += now_ns() - t0;
		t0 = now_ns();
		if (lib_loop(v, n) != 0)
			return 1;
		lib_ns += now_ns() - t0;
	}
	bare_ns /= (double)n * ROUNDS;
	lib_ns /= (double)n * ROUNDS;
	printf("PIO exit round trip, %ld exits x %d rounds each\n", n, ROUNDS);
	printf("  bare ioctl(KVM_RUN) loop (baseline): %8.1f ns/exit\n",
	       bare_ns);
	printf("  kvm_vcpu_run() + decode            : %8.1f ns/exit\n",
	       lib_ns);
	printf("  ratio library/baseline             : %8.3f\n",
	       lib_ns / bare_ns);
	kvm_vcpu_destroy(v);
	kvm_vm_destroy(vm);
	kvm_sys_destroy(sys);
	munmap(mem, RAM);
	return sink == 0xdeadbeef ? 2 : 0;
}
