/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "tvm.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Shared with Check's forked test processes, so main() can report. */
static int *nskips;

void tvm_skips_init(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	nskips = p == MAP_FAILED ? NULL : p;
}

void tvm_skip(const char *name, const char *why)
{
	printf("SKIP %s: %s\n", name, why);
	fflush(stdout);
	if (nskips)
		__atomic_add_fetch(nskips, 1, __ATOMIC_SEQ_CST);
}

int tvm_skips(void)
{
	return nskips ? *nskips : 0;
}

/* Set by the watchdog's signal handler; cleared when the timer is armed. */
static volatile sig_atomic_t wd_fired;

static void wd_handler(int sig)
{
	(void)sig;
	wd_fired = 1;
}

double tvm_watchdog_seconds(void)
{
	const char *e = getenv("TVM_WATCHDOG_SECONDS");
	double s = e ? strtod(e, NULL) : 0;

	return s > 0 && s < 3600 ? s : 20.0;
}

/* A POSIX timer that signals this thread (the vCPU's), not the process. */
static void wd_create(struct tvm *t)
{
	struct sigaction sa;
	struct sigevent sev;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wd_handler;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(TVM_WD_SIGNAL, &sa, NULL), 0);
	sigemptyset(&set);
	sigaddset(&set, TVM_WD_SIGNAL);
	ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &set, NULL), 0);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = TVM_WD_SIGNAL;
	sev._sigev_un._tid = gettid(); /* sigev_notify_thread_id */
	ck_assert_msg(timer_create(CLOCK_MONOTONIC, &sev, &t->wd_timer) == 0,
		      "watchdog timer_create: %s", strerror(errno));
	t->wd_created = true;
}

static void wd_arm(struct tvm *t, double s)
{
	struct itimerspec it = {
		.it_value = {.tv_sec = (time_t)s,
			     .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)},
		.it_interval = {.tv_nsec = 200 * 1000 * 1000},
	};

	if (it.it_value.tv_sec == 0 && it.it_value.tv_nsec == 0)
		it.it_value.tv_nsec = 1;
	wd_fired = 0;
	ck_assert_int_eq(timer_settime(t->wd_timer, 0, &it, NULL), 0);
}

static void wd_disarm(struct tvm *t)
{
	struct itimerspec it;

	memset(&it, 0, sizeof(it));
	timer_settime(t->wd_timer, 0, &it, NULL);
}

int tvm_run_bounded(struct tvm *t, struct kvm_exit_info *x, double seconds,
		    bool retry_intr)
{
	int i, r;

	wd_arm(t, seconds);
	for (i = 0;; i++) {
		r = kvm_vcpu_run(t->vcpu, x);
		if (r < 0 || x->reason != KVM_EXIT_INTR)
			break;
		if (wd_fired && (retry_intr || !x->kicked)) {
			r = -ETIMEDOUT;
			break;
		}
		if (!retry_intr)
			break;
		if (i == 1000) {
			r = -ELOOP;
			break;
		}
	}
	/* Disarmed before any ck_assert: a failing test must not leave it
	 * running (in Check's no-fork mode the next test runs on). */
	wd_disarm(t);
	return r;
}

static void wd_check(int r)
{
	ck_assert_msg(r != -ETIMEDOUT,
		      "watchdog: no exit from the guest within %g s, KVM_RUN "
		      "was ended by the watchdog's signal (a lost kick, an "
		      "interrupt or an exit that never came)",
		      tvm_watchdog_seconds());
	ck_assert_msg(r != -ELOOP, "too many EINTR exits");
	ck_assert_msg(r == 0, "kvm_vcpu_run: %d", r);
}

void tvm_run_once(struct tvm *t, struct kvm_exit_info *x)
{
	wd_check(tvm_run_bounded(t, x, tvm_watchdog_seconds(), false));
}

void tvm_init(struct tvm *t, size_t mem_size, void (*pre_vcpu)(struct tvm *t))
{
	int r;

	memset(t, 0, sizeof(*t));
	wd_create(t);
	r = kvm_sys_create(&t->sys);
	ck_assert_int_eq(r, 0);
	r = kvm_vm_create(t->sys, 0, &t->vm);
	ck_assert_int_eq(r, 0);
	/* Intel needs these below 4 GiB and outside RAM; harmless on AMD. */
	ck_assert_int_eq(kvm_vm_set_tss_addr(t->vm, 0xfffbd000), 0);
	ck_assert_int_eq(kvm_vm_set_identity_map_addr(t->vm, 0xfffbc000), 0);
	t->mem_size = mem_size;
	t->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(t->mem, MAP_FAILED);
	r = kvm_vm_set_user_memory_region(t->vm, 0, 0, 0, mem_size, t->mem);
	ck_assert_int_eq(r, 0);
	if (pre_vcpu)
		pre_vcpu(t);
	r = kvm_vcpu_create(t->vm, 0, &t->vcpu);
	ck_assert_int_eq(r, 0);
}

void tvm_fini(struct tvm *t)
{
	if (t->wd_created)
		timer_delete(t->wd_timer);
	kvm_vcpu_destroy(t->vcpu);
	kvm_vm_destroy(t->vm);
	kvm_sys_destroy(t->sys);
	if (t->mem)
		munmap(t->mem, t->mem_size);
	memset(t, 0, sizeof(*t));
}

void tvm_load(struct tvm *t, const unsigned char *start,
	      const unsigned char *end)
{
	size_t n = (size_t)(end - start);

	ck_assert_uint_le(GUEST_BASE + n, t->mem_size);
	memcpy(t->mem + GUEST_BASE, start, n);
}

static void seg_real(struct kvm_segment *s, uint16_t sel)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = (uint64_t)sel << 4;
	s->limit = 0xffff;
	s->present = 1;
	s->s = 1;
	s->type = 3; /* data: read/write, accessed */
}

void tvm_setup_real(struct tvm *t)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint16_t sel = GUEST_BASE >> 4;

	ck_assert_int_eq(kvm_vcpu_get_sregs(t->vcpu, &sregs), 0);
	seg_real(&sregs.cs, sel);
	sregs.cs.type = 11; /* code: execute/read, accessed */
	seg_real(&sregs.ds, sel);
	seg_real(&sregs.es, sel);
	seg_real(&sregs.ss, sel);
	sregs.cr0 &= ~1ull;
	ck_assert_int_eq(kvm_vcpu_set_sregs(t->vcpu, &sregs), 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rsp = 0xfff0;
	regs.rflags = 2;
	ck_assert_int_eq(kvm_vcpu_set_regs(t->vcpu, &regs), 0);
}

void tvm_setup_long(struct tvm *t, struct kvm_vcpu_obj *vcpu, bool ring3,
		    bool irq_on, bool with_idt, uint64_t cmd)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	ck_assert_uint_ge(t->mem_size, GL_MIN_RAM);
	ck_assert_int_eq(kvm_vcpu_get_sregs(vcpu, &sregs), 0);
	guest_layout_long(t->mem, ring3, irq_on, with_idt, cmd, &sregs, &regs);
	ck_assert_int_eq(kvm_vcpu_set_sregs(vcpu, &sregs), 0);
	ck_assert_int_eq(kvm_vcpu_set_regs(vcpu, &regs), 0);
}

void tvm_run(struct tvm *t, struct kvm_exit_info *x)
{
	wd_check(tvm_run_bounded(t, x, tvm_watchdog_seconds(), true));
}

uint32_t tvm_expect_out(struct tvm *t, uint16_t port)
{
	struct kvm_exit_info x;
	uint32_t v = 0;

	tvm_run(t, &x);
	ck_assert_msg(x.reason == KVM_EXIT_IO, "exit %s (%u), wanted IO",
		      kvm_exit_reason_name(x.reason), x.reason);
	ck_assert(!x.io.in);
	ck_assert_uint_eq(x.io.port, port);
	ck_assert_uint_eq(x.io.count, 1);
	memcpy(&v, x.io.data, x.io.size);
	return v;
}

uint32_t tvm_io_value(const struct kvm_exit_info *x)
{
	uint32_t v = 0;

	memcpy(&v, x->io.data, x->io.size <= 4 ? x->io.size : 4);
	return v;
}

uint64_t tvm_irq_count(const struct tvm *t)
{
	uint64_t v;

	memcpy(&v, t->mem + GDATA, 8);
	return v;
}
