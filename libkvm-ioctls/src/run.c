/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libkvm-ioctls: KVM_RUN, exit decoding and the cross-thread kick. */
#include <signal.h>
#include <string.h>

#include "internal.h"

/* Element counts of kvm_run's fixed arrays, as the uapi declares them. */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

CVMM_EXPORT const char *kvm_exit_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN",
		[KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG",
		[KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR",
		[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI",
		[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
		[KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
		[KVM_EXIT_HYPERV] = "HYPERV",
		[KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
		[KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
		[KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
		[KVM_EXIT_AP_RESET_HOLD] = "AP_RESET_HOLD",
		[KVM_EXIT_X86_BUS_LOCK] = "X86_BUS_LOCK",
		[KVM_EXIT_XEN] = "XEN",
		[KVM_EXIT_NOTIFY] = "NOTIFY",
	};

	if (reason < ARRAY_LEN(names) && names[reason])
		return names[reason];
	return "UNKNOWN_REASON";
}

/* Is [off, off + len) inside a mapping of map_size bytes? */
static bool in_map(size_t map_size, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(off, len, &end))
		return false;
	return end <= map_size;
}

CVMM_EXPORT int kvm_exit_decode(struct kvm_run *run, size_t map_size,
				struct kvm_exit_info *x)
{
	if (!run || !x)
		return -EINVAL;
	memset(x, 0, sizeof(*x));
	x->run = run;
	if (map_size < sizeof(struct kvm_run))
		return -EPROTO;
	x->reason = run->exit_reason;
	/* known is set only once the payload passed its checks: on -EPROTO
	 * *x holds the reason and run and nothing else. */
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		uint8_t sz = run->io.size;
		uint64_t len = (uint64_t)sz * run->io.count;

		if ((sz != 1 && sz != 2 && sz != 4) || run->io.count == 0)
			return -EPROTO;
		if (run->io.direction != KVM_EXIT_IO_IN &&
		    run->io.direction != KVM_EXIT_IO_OUT)
			return -EPROTO;
		/* The buffer must not overlap the kvm_run header. */
		if (run->io.data_offset < sizeof(struct kvm_run) ||
		    !in_map(map_size, run->io.data_offset, len))
			return -EPROTO;
		x->io.port = run->io.port;
		x->io.size = sz;
		x->io.in = run->io.direction == KVM_EXIT_IO_IN;
		x->io.count = run->io.count;
		x->io.data = (uint8_t *)run + run->io.data_offset;
		x->io.len = (size_t)len;
		break;
	}
	case KVM_EXIT_MMIO:
		if (run->mmio.len == 0 ||
		    run->mmio.len > sizeof(run->mmio.data))
			return -EPROTO;
		x->mmio.gpa = run->mmio.phys_addr;
		x->mmio.data = run->mmio.data;
		x->mmio.len = run->mmio.len;
		x->mmio.write = run->mmio.is_write != 0;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		x->fail_entry.hardware_entry_failure_reason =
			run->fail_entry.hardware_entry_failure_reason;
		x->fail_entry.cpu = run->fail_entry.cpu;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		if (run->internal.ndata > ARRAY_LEN(run->internal.data))
			return -EPROTO;
		x->internal.suberror = run->internal.suberror;
		x->internal.ndata = run->internal.ndata;
		x->internal.data = run->internal.data;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.ndata > ARRAY_LEN(run->system_event.data))
			return -EPROTO;
		x->system_event.type = run->system_event.type;
		x->system_event.ndata = run->system_event.ndata;
		x->system_event.data = run->system_event.data;
		break;
	case KVM_EXIT_IOAPIC_EOI:
		x->eoi_vector = run->eoi.vector;
		break;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		x->msr.index = run->msr.index;
		x->msr.reason = run->msr.reason;
		x->msr.data = &run->msr.data;
		x->msr.error = &run->msr.error;
		break;
	case KVM_EXIT_HYPERCALL:
		x->hypercall.nr = run->hypercall.nr;
		x->hypercall.args = run->hypercall.args;
		x->hypercall.longmode = run->hypercall.longmode;
		x->hypercall.ret = &run->hypercall.ret;
		break;
	case KVM_EXIT_DEBUG:
		x->debug = run->debug.arch;
		break;
	case KVM_EXIT_UNKNOWN:
		x->hardware_exit_reason = run->hw.hardware_exit_reason;
		break;
	case KVM_EXIT_HLT:
	case KVM_EXIT_SHUTDOWN:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
	case KVM_EXIT_DIRTY_RING_FULL:
		break;
	default:
		return 0; /* passed through: known stays false */
	}
	x->known = true;
	return 0;
}

CVMM_EXPORT int kvm_vcpu_run(struct kvm_vcpu_obj *v, struct kvm_exit_info *x)
{
	int r;

	if (!v || !x)
		return -EINVAL;
	/* (KVM clears kvm_dirty_regs bits itself as it consumes them.) */
	r = kvm_xioctl(v->fd, KVM_RUN, NULL);
	if (r == -EINTR) {
		memset(x, 0, sizeof(*x));
		x->run = v->run;
		x->reason = KVM_EXIT_INTR;
		x->known = true;
		/*
		 * Clear immediate_exit before consuming the pending flag: a
		 * kick landing between the two is then reported now and at
		 * worst causes one more (unkicked) EINTR exit; it is never
		 * cleared unreported.
		 */
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		x->kicked = atomic_exchange(&v->kick_pending, false);
		return 0;
	}
	if (r < 0)
		return r;
	r = kvm_exit_decode(v->run, v->mmap_size, x);
	if (r == 0 && x->reason == KVM_EXIT_INTR) {
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		x->kicked = atomic_exchange(&v->kick_pending, false);
	}
	return r;
}

CVMM_EXPORT int kvm_vcpu_complete_io(struct kvm_vcpu_obj *v,
				     struct kvm_exit_info *x)
{
	int r;

	if (!v || !x)
		return -EINVAL;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	r = kvm_xioctl(v->fd, KVM_RUN, NULL);
	/*
	 * Clear immediate_exit, then set it again if a kick is pending: a
	 * kick sets its flag before immediate_exit, so in either order one of
	 * the two stores leaves immediate_exit set for the next KVM_RUN.
	 */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (atomic_load(&v->kick_pending))
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (r == -EINTR)
		return 0;
	if (r < 0)
		return r;
	r = kvm_exit_decode(v->run, v->mmap_size, x);
	return r < 0 ? r : 1;
}

static void kick_handler(int sig)
{
	(void)sig;
}

CVMM_EXPORT int kvm_vcpu_kick_bind(struct kvm_vcpu_obj *v, int signo)
{
	struct sigaction old, sa;
	sigset_t set;

	if (!v || signo <= 0 || signo >= NSIG)
		return -EINVAL;
	if (kvm_xioctl_val(v->vm->fd, KVM_CHECK_EXTENSION,
			   KVM_CAP_IMMEDIATE_EXIT) <= 0)
		return -ENOTSUP;
	if (sigaction(signo, NULL, &old) < 0)
		return -errno;
	if (!(old.sa_flags & SA_SIGINFO) &&
	    (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = kick_handler;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(signo, &sa, NULL) < 0)
			return -errno;
	}
	sigemptyset(&set);
	sigaddset(&set, signo);
	if (pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
		return -EINVAL;
	v->thread = pthread_self();
	v->signo = signo;
	atomic_store(&v->kick_bound, true);
	return 0;
}

CVMM_EXPORT int kvm_vcpu_kick(struct kvm_vcpu_obj *v)
{
	int r;

	if (!v || !atomic_load(&v->kick_bound))
		return -EINVAL;
	atomic_store(&v->kick_pending, true);
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	r = pthread_kill(v->thread, v->signo);
	return -r;
}
