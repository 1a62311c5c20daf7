/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Test VM helper for the kvm suite: one VM, guest RAM at GPA 0, one vCPU,
 * and the CPU state for the tiny guests of tests/guest/ (real mode, or
 * 64-bit long mode at ring 0 or ring 3 with IOPL 3).
 */
#ifndef CVMM_TESTS_TVM_H
#define CVMM_TESTS_TVM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cvmm/kvm-ioctls.h"
#include "guests.h"
#include "layout.h"

/* Guest physical layout used by tvm_setup_long(): see layout.h. */
#define TVM_PML4 GL_PML4
#define TVM_GDT	 GL_GDT
#define TVM_TSS	 GL_TSS
#define TVM_RAM	 (1u << 20) /* default RAM: 1 MiB */

struct tvm {
	struct kvm_sys *sys;
	struct kvm_vm_obj *vm;
	struct kvm_vcpu_obj *vcpu;
	uint8_t *mem;
	size_t mem_size;
	timer_t wd_timer; /* the watchdog of every wait for a guest exit */
	bool wd_created;
};

/*
 * Watchdog: no test waits for a guest exit without a bound.  Every run goes
 * through tvm_run_bounded(), which arms a per-thread POSIX timer (signal
 * TVM_WD_SIGNAL, a no-op handler without SA_RESTART, created by
 * tvm_init() for the calling thread, the vCPU's) for the given time and,
 * past it, every 200 ms (a signal that lands just before KVM_RUN is entered
 * is repeated once the guest runs).  A guest that never exits (lost kick,
 * interrupt never injected, an exit the CPU does not deliver) thus makes
 * KVM_RUN return EINTR, and the test FAILS naming itself instead of hanging
 * until an outer timeout kills the whole program without saying which test
 * hung.  The time is tvm_watchdog_seconds(): 20 s, or
 * $TVM_WATCHDOG_SECONDS.
 */
#define TVM_WD_SIGNAL (SIGRTMIN + 4)
double tvm_watchdog_seconds(void);

/* Open /dev/kvm, create the VM, map mem_size bytes of RAM at GPA 0 as slot
 * 0.  pre_vcpu (may be NULL) runs before the vCPU is created (e.g. to
 * create an irqchip or enable the dirty ring).  Fails the test on error. */
void tvm_init(struct tvm *t, size_t mem_size, void (*pre_vcpu)(struct tvm *t));
void tvm_fini(struct tvm *t);
/* Copy a guest image to GUEST_BASE. */
void tvm_load(struct tvm *t, const unsigned char *start,
	      const unsigned char *end);
/* Real mode at cs = ds = es = ss = GUEST_BASE >> 4, ip 0. */
void tvm_setup_real(struct tvm *t);
/* Build page tables, GDT, IDT (from the image header) and TSS in guest RAM
 * and enter the image's entry point in 64-bit mode at ring 0 or ring 3
 * (IOPL 3, IF per irq_on), rdi = cmd.  with_idt false leaves the IDT
 * empty (limit 0). */
void tvm_setup_long(struct tvm *t, struct kvm_vcpu_obj *vcpu, bool ring3,
		    bool irq_on, bool with_idt, uint64_t cmd);
/* Run until an exit other than KVM_EXIT_INTR; fails the test on error and
 * when the watchdog expires. */
void tvm_run(struct tvm *t, struct kvm_exit_info *x);
/* kvm_vcpu_run() under a watchdog of `seconds`; retry_intr: run again
 * after KVM_EXIT_INTR (kicked or not), as tvm_run() does.  Returns 0 (x
 * holds the exit), -ETIMEDOUT when the watchdog ended KVM_RUN (any EINTR
 * after it fired with retry_intr, else an unkicked one), -ELOOP after 1000
 * EINTR exits, or kvm_vcpu_run()'s error.  Does not fail the test. */
int tvm_run_bounded(struct tvm *t, struct kvm_exit_info *x, double seconds,
		    bool retry_intr);
/* One kvm_vcpu_run() under the watchdog: returns every exit, including
 * KVM_EXIT_INTR (kicked or not), but fails the test if it was the
 * watchdog that ended KVM_RUN. */
void tvm_run_once(struct tvm *t, struct kvm_exit_info *x);
/* Run and expect a PIO out to port with a 1/2/4-byte value, returned. */
uint32_t tvm_expect_out(struct tvm *t, uint16_t port);
/* The 1/2/4-byte value of a PIO exit, zero-extended. */
uint32_t tvm_io_value(const struct kvm_exit_info *x);
/* Read the 64-bit counter the guest's interrupt handler keeps. */
uint64_t tvm_irq_count(const struct tvm *t);
/* Print "SKIP <name>: <why>" and count it (see tvm_skips()). */
void tvm_skip(const char *name, const char *why);
/* Call once in main() before running the suite. */
void tvm_skips_init(void);
int tvm_skips(void);

#endif
