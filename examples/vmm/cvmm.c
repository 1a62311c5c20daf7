/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm: the example VMM.  Builds a PC-like machine on the project's
 * libraries and boots Linux on it:
 *
 *  - libkvm-ioctls: VM with the in-kernel irqchip and PIT, one thread per
 *    vCPU (KVM_RUN loop, port I/O and MMIO exits to the buses), kicks;
 *  - libvm-memory: guest RAM, memfd-backed, with the 32-bit PCI hole
 *    (RAM below 3 GiB, the rest from 4 GiB);
 *  - liblinux-loader: the kernel (bzImage 64-bit entry, or ELF with a PVH
 *    note), initrd, e820, command line, zero page / PVH start info, ACPI
 *    tables (MP table with acpi=off), boot vCPU state, CPUID, MSRs, LINTs;
 *  - libdevices: the port bus (16550A on 0x3f8 IRQ 4, i8042 on 0x60/0x64,
 *    CMOS RTC on 0x70, PCI conf1 on 0xcf8, the ACPI sleep/reset registers)
 *    and the MMIO bus (ECAM of bus 0);
 *  - libvm-allocator: the PCI BAR windows.
 *
 * The main thread is the I/O thread: an epoll loop over the terminal
 * (serial input, Ctrl-A x), the serial output fd when it is full, the RTC
 * timer, the --timeout timer, termination signals (signalfd) and the stop
 * eventfd the vCPU threads signal when the guest powers off, resets or
 * fails.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/i8042.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/pci.h>
#include <cvmm/devices/rtc.h>
#include <cvmm/devices/serial.h>
#include <cvmm/devices/virtio-blk.h>
#include <cvmm/devices/virtio-console.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-rng.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/kvm-ioctls.h>
#include <cvmm/linux-loader.h>
#include <cvmm/linux-loader/acpi.h>
#include <cvmm/vm-allocator.h>
#include <cvmm/vm-memory.h>

#include "cvmm.h"

/* ----------------------------------------------------------- the layout */

#define RAM_LOW_END	   0xc0000000ull  /* RAM below the 32-bit PCI hole */
#define HIGH_RAM_START	   0x100000000ull /* the rest of RAM */
#define VM_PCI_MMIO32_BASE 0xc0000000ull  /* BAR window below 4 GiB */
#define VM_PCI_MMIO32_SIZE 0x20000000ull
#define VM_PCI_ECAM_BASE   0xe0000000ull /* bus 0 only: 1 MiB */
#define VM_PCI_IO_BASE	   0xc000ull
#define VM_PCI_IO_SIZE	   0x4000ull
#define TSS_ADDR	   0xfffbd000ull
#define ACPI_PM_PORT	   0x600u /* sleep control, +1 status, +4 reset */
#define ACPI_PM_LEN	   8u
#define ACPI_RESET_VALUE   0x1u
#define COM1_PORT	   0x3f8u
#define COM1_IRQ	   4u
#define KBD_IRQ		   1u
#define RTC_IRQ		   8u
#define VFIO_SLOT	   31u /* --vfio: 00:1f.0, INTA# on GSI 5 */
#define VFIO_GSI	   5u
#define KICK_SIGNAL	   SIGUSR1
#define ESCAPE_CHAR	   0x01 /* Ctrl-A */

/* ------------------------------------------------------------- the VM */

/* A stack cvmm maps for a thread it starts (thread_start()). */
struct thread_stack {
	void *base;
	size_t size;
};

struct vcpu {
	struct vm *vm;
	struct kvm_vcpu_obj *obj;
	unsigned id;
	pthread_t thread;
	struct thread_stack stack;
	bool started;
	uint64_t exits, pio_exits, mmio_exits; /* --verbose */
	atomic_int where; /* VCPU_*: for the watchdog's report */
};

/* Where a vCPU thread is (the watchdog names it when cvmm hangs). */
enum {
	VCPU_IN_RUN,
	VCPU_IN_PIO,
	VCPU_IN_MMIO,
	VCPU_GONE
};

struct wired_irq {
	struct vm *vm;
	uint32_t gsi;
};

/* A virtio device on virtio-pci.  Its queue notifiers are KVM ioeventfds
 * at the transport's notify addresses (moved with the BAR); its poll fds
 * (those notifiers, the device's own timers) are served by the I/O thread;
 * its MSI-X vectors are irqfds on GSI routes (irq.c). */
#define VDEV_POLL_MAX 80 /* vsock: 3 notifiers, listener, timer, 64 conns */
struct vdev {
	struct vm *vm;
	const char *name;
	struct virtio_device *dev;
	struct virtio_pci *pci;
	struct virtio_mmio *mmio; /* --transport mmio: instead of pci */
	struct cvmm_mmio_dev window;
	struct cvmm_irq_msix *msix;
	struct virtio_blk *blk;	    /* set for a disk: destroyed through it */
	struct virtio_console *con; /* set for the console, likewise */
	bool ring_from_backend;	    /* vhost: the backend's ring features */
	bool in_order_ok;	    /* completes in pop order (sync disk) */
	uint64_t notify_base;
	uint32_t ioeventfds; /* bit i: queue i's ioeventfd is assigned */
	struct virtio_poll_fd polled[VDEV_POLL_MAX];
	unsigned npolled;
};

struct vm {
	const struct cvmm_opts *o;
	struct kvm_sys *sys;
	struct kvm_vm_obj *kvm;
	struct guest_memory *mem;
	struct io_bus *pio, *mmio;
	struct serial *uart;
	struct i8042 *kbd;
	struct cmos_rtc *rtc;
	struct pci_root *pci;
	struct address_allocator *mmio32, *io;
	struct wired_irq irq_com1, irq_kbd, irq_rtc;
	struct cvmm_irq *irq; /* irq.c: irqfds and GSI routes */
	struct vcpu *vcpus;
#define VDEVS_MAX (5 + CVMM_DISKS_MAX) /* rng, console, net, vsock, fs, disks */
	struct vdev vdevs[VDEVS_MAX];
	unsigned nvdevs;
	int poll_fd; /* eventfd: a virtio device's poll list changed */
	struct cvmm_vfio *vfio; /* --vfio (vfio.c) */
	bool pio_pm, pio_com1, pio_kbd, pio_rtc, pio_pci, mmio_ecam;

	/* Stopping: the first request wins. */
	atomic_int stopping;
	int exit_status;
	char exit_reason[160];
	int stop_fd; /* eventfd: wakes the I/O thread */
	int out_fd;  /* eventfd: serial output waits for POLLOUT */
	int in_fd;   /* eventfd: serial input buffer has room again */

	/* The watchdog (watchdog_start()): where the main thread is. */
	atomic_int phase;     /* PHASE_* */
	atomic_int phase_arg; /* the vCPU joined, the device dispatched */
	pthread_t watchdog;
	pthread_t main_thread; /* the I/O thread */
	bool watchdog_started;
	int watchdog_fd; /* eventfd: cvmm_run is done, the watchdog leaves */

	uint64_t start_ns;
	/* --verbose: when each setup stage ended */
	uint64_t t_setup, t_vm, t_mem, t_dev, t_vcpu, t_load;
	_Atomic uint64_t first_run_ns;
};

/* The terminal, restored on every way out (also from a crash handler). */
static struct {
	bool raw;
	struct termios saved;
	int out_flags; /* stdout's file status flags before O_NONBLOCK */
	bool out_flags_set;
	int in_flags; /* stdin's, likewise */
	bool in_flags_set;
} term;

uint64_t cvmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Starts @fn(@arg) on a stack of @size bytes (plus a guard page) mapped
 * here and kept out of transparent huge pages: with THP "always" (Debian's
 * default for anonymous memory) glibc's default 8 MiB stack, which lands
 * 2 MiB-aligned right below guest RAM, took a 2 MiB huge page at its top
 * on first touch, all of it in cvmm's RSS.  Only the pages a thread
 * touches are resident.  Returns 0 or an errno value; thread_stack_free()
 * after the join.
 */
static int thread_start(pthread_t *t, struct thread_stack *st, size_t size,
			void *(*fn)(void *), void *arg)
{
	size_t guard = (size_t)sysconf(_SC_PAGESIZE);
	pthread_attr_t a;
	uint8_t *p;
	int e;

	p = mmap(NULL, size + guard, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1,
		 0);
	if (p == MAP_FAILED)
		return errno;
	/* Advice, not a requirement: a kernel without THP refuses it. */
	madvise(p, size + guard, MADV_NOHUGEPAGE);
	if (mprotect(p, guard, PROT_NONE) < 0) {
		e = errno;
		munmap(p, size + guard);
		return e;
	}
	e = pthread_attr_init(&a);
	if (e == 0) {
		e = pthread_attr_setstack(&a, p + guard, size);
		if (e == 0)
			e = pthread_create(t, &a, fn, arg);
		pthread_attr_destroy(&a);
	}
	if (e) {
		munmap(p, size + guard);
		return e;
	}
	st->base = p;
	st->size = size + guard;
	return 0;
}

static void thread_stack_free(struct thread_stack *st)
{
	if (st->base)
		munmap(st->base, st->size);
	st->base = NULL;
}

#define VCPU_STACK_SIZE (8u << 20) /* glibc's default; touched pages only */

static void term_restore(void)
{
	if (term.raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &term.saved);
		term.raw = false;
	}
	if (term.out_flags_set) {
		fcntl(STDOUT_FILENO, F_SETFL, term.out_flags);
		term.out_flags_set = false;
	}
	if (term.in_flags_set) {
		fcntl(STDIN_FILENO, F_SETFL, term.in_flags);
		term.in_flags_set = false;
	}
}

/* O_NONBLOCK on stdin and, with @out, stdout (restored by
 * term_restore()). */
static void term_nonblock(bool out)
{
	int fl = fcntl(STDIN_FILENO, F_GETFL);

	if (fl >= 0 && !term.in_flags_set && !(fl & O_NONBLOCK) &&
	    fcntl(STDIN_FILENO, F_SETFL, fl | O_NONBLOCK) == 0) {
		term.in_flags = fl;
		term.in_flags_set = true;
	}
	fl = fcntl(STDOUT_FILENO, F_GETFL);
	if (out && fl >= 0 && !term.out_flags_set && !(fl & O_NONBLOCK) &&
	    fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) == 0) {
		term.out_flags = fl;
		term.out_flags_set = true;
	}
}

static void on_crash(int sig)
{
	/* tcsetattr() and fcntl() are async-signal-safe. */
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void term_setup(const struct cvmm_opts *o)
{
	static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE,
					    SIGABRT};
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		sigaction(crash_signals[i], &sa, NULL);
	atexit(term_restore);

	if (o->console != CVMM_CONSOLE_NONE && isatty(STDIN_FILENO) &&
	    tcgetattr(STDIN_FILENO, &term.saved) == 0) {
		struct termios raw = term.saved;

		cfmakeraw(&raw);
		/* Keep output post-processing off too: the guest sends CR LF. */
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			term.raw = true;
	}
}

/* Asks every thread to stop; the first caller's status and reason win. */
static void vm_stop(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void vm_stop(struct vm *vm, int status, const char *fmt, ...)
{
	int expected = 0;
	uint64_t one = 1;
	va_list ap;

	if (!atomic_compare_exchange_strong(&vm->stopping, &expected, 1))
		return;
	vm->exit_status = status;
	va_start(ap, fmt);
	vsnprintf(vm->exit_reason, sizeof(vm->exit_reason), fmt, ap);
	va_end(ap);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* the eventfd cannot overflow with one write per run */
	}
}

/* Where the main thread is, for the watchdog (below). */
enum {
	PHASE_SETUP,
	PHASE_LOOP,	/* the I/O loop, between events */
	PHASE_DISPATCH, /* in a poll callback of virtio device phase_arg */
	PHASE_JOIN,	/* waiting for vCPU phase_arg to leave KVM_RUN */
	PHASE_FLUSH,	/* writing the guest's last console output */
	PHASE_TEARDOWN, /* destroying devices and the VM */
};

static void set_phase(struct vm *vm, int phase, int arg)
{
	atomic_store_explicit(&vm->phase_arg, arg, memory_order_relaxed);
	atomic_store_explicit(&vm->phase, phase, memory_order_relaxed);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "cvmm: %s: %s\n", what, strerror(-err));
	return err;
}

#define TRY(expr, what)                        \
	do {                                   \
		int r_ = (expr);               \
		if (r_ < 0)                    \
			return fail(what, r_); \
	} while (0)

/* ------------------------------------------------------- interrupts */

static int wired_irq_set(void *opaque, bool level)
{
	struct wired_irq *w = opaque;

	return kvm_vm_irq_line(w->vm->kvm, w->gsi, level ? 1 : 0);
}

static struct irq_line wired_irq_line(struct vm *vm, struct wired_irq *w,
				      uint32_t gsi)
{
	w->vm = vm;
	w->gsi = gsi;
	return (struct irq_line){.set = wired_irq_set, .opaque = w};
}

/* ---------------------------------------------------------- devices */

static void on_i8042_reset(void *opaque)
{
	vm_stop(opaque, CVMM_EXIT_OK, "guest reset (i8042)");
}

/* ACPI registers: sleep control (+0), sleep status (+1), reset (+4). */
static void pm_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	memset(data, 0, size);
}

static void pm_write(void *opaque, uint64_t off, const void *data,
		     unsigned size)
{
	uint8_t v = *(const uint8_t *)data;

	if (off == 0 && (v & ACPI_SLP_EN) && ((v >> 2) & 7) == 5)
		vm_stop(opaque, CVMM_EXIT_OK, "guest powered off (ACPI S5)");
	else if (off == 4 && v == ACPI_RESET_VALUE)
		vm_stop(opaque, CVMM_EXIT_OK,
			"guest reset (ACPI reset register)");
}

static const struct io_bus_ops pm_ops = {.read = pm_read, .write = pm_write};

/* pvpanic (PCI 1b36:0011, QEMU's interface): BAR 0 byte 0 reads the events
 * the device reports, the guest's panic notifier writes PANICKED there. */
#define PVPANIC_PANICKED     0x1u
#define PVPANIC_CRASH_LOADED 0x2u
#define PVPANIC_PCI_SLOT     1u

static void pvpanic_read(void *opaque, unsigned bar, uint64_t off, void *data,
			 unsigned len)
{
	memset(data, 0, len);
	if (off == 0)
		*(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *opaque, unsigned bar, uint64_t off,
			  const void *data, unsigned len)
{
	uint8_t v = *(const uint8_t *)data;

	if (off != 0)
		return;
	if (v & PVPANIC_PANICKED)
		vm_stop(opaque, CVMM_EXIT_PANIC, "guest panicked (pvpanic)");
	else if (v & PVPANIC_CRASH_LOADED)
		vm_stop(opaque, CVMM_EXIT_PANIC,
			"guest crashed into its crash kernel (pvpanic)");
}

static const struct pci_device_ops pvpanic_ops = {
	.bar_read = pvpanic_read,
	.bar_write = pvpanic_write,
};

static int add_pvpanic(struct vm *vm)
{
	struct pci_device_info info = {
		.vendor_id = 0x1b36,
		.device_id = 0x0011,
		.subsystem_vendor_id = 0x1af4,
		.subsystem_id = 0x1100,
		.class_code = 0x088000,
	};
	struct pci_device *dev;
	int r = pci_device_create(&info, &pvpanic_ops, vm, &dev);

	if (r < 0)
		return fail("pvpanic", r);
	r = pci_device_add_bar(dev, 0, PCI_BAR_KIND_MEM32, false, 16);
	if (r < 0) {
		pci_device_destroy(dev);
		return fail("pvpanic BAR", r);
	}
	/* The root owns @dev from here, also on failure. */
	TRY(pci_root_add_device(vm->pci, dev, PVPANIC_PCI_SLOT, 0), "pvpanic "
								    "slot");
	return 0;
}

static void serial_output_wait(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t one = 1;

	if (write(vm->out_fd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

static void serial_input_room(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t one = 1;

	if (write(vm->in_fd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

/* notify_remap: move the queues' ioeventfds with the BAR.  Runs on the
 * vCPU thread that wrote the BAR or command register.  A queue without an
 * ioeventfd still works: its notify is an MMIO exit processed inline. */
static void vdev_notify_remap(void *opaque, bool mapped, uint64_t base)
{
	struct vdev *d = opaque;
	uint32_t i, nq = virtio_device_num_queues(d->dev);

	for (i = 0; i < nq && i < 32; i++) {
		int fd;

		if (!(d->ioeventfds & (1u << i)))
			continue;
		fd = event_notifier_fd(virtio_device_queue_notifier(d->dev, i));
		kvm_vm_ioeventfd_deassign(
			d->vm->kvm, fd,
			d->notify_base + i * VIRTIO_PCI_NOTIFY_MULT, 0, 0, 0);
		d->ioeventfds &= ~(1u << i);
	}
	d->notify_base = base;
	if (!mapped)
		return;
	for (i = 0; i < nq && i < 32; i++) {
		struct event_notifier *n =
			virtio_device_queue_notifier(d->dev, i);

		if (!n)
			continue;
		if (kvm_vm_ioeventfd_assign(d->vm->kvm, event_notifier_fd(n),
					    base + i * VIRTIO_PCI_NOTIFY_MULT,
					    0, 0, 0) == 0)
			d->ioeventfds |= 1u << i;
	}
}

/* The poll list changed (any thread): the I/O thread re-reads it. */
static void vdev_poll_changed(void *opaque, struct virtio_device *dev)
{
	struct vm *vm = opaque;
	uint64_t one = 1;

	if (write(vm->poll_fd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

/* virtio-mmio windows (below the IOAPIC) and their level interrupts. */
#define VIRTIO_MMIO_BASE 0xfeb00000u
#define VIRTIO_MMIO_STEP 0x1000u
static const uint8_t virtio_mmio_gsis[] = {16, 17, 18, 19, 20, 21,
					   22, 23, 10, 11, 12};

static int vdev_add_mmio(struct vm *vm, struct vdev *d, unsigned k)
{
	struct virtio_mmio_config mc = {0};
	uint32_t i, nq;
	int r;

	if (k >= sizeof(virtio_mmio_gsis))
		return fail("virtio-mmio", -ENOSPC);
	d->window.base = VIRTIO_MMIO_BASE + k * VIRTIO_MMIO_STEP;
	d->window.gsi = virtio_mmio_gsis[k];
	TRY(cvmm_irq_level_line(vm->irq, d->window.gsi, &mc.irq), d->name);
	r = virtio_mmio_create(d->dev, &mc, &d->mmio);
	if (r < 0)
		return fail(d->name, r);
	d->window.size = (uint32_t)virtio_mmio_size(d->mmio);
	if (d->window.size > VIRTIO_MMIO_STEP)
		return fail(d->name, -E2BIG);
	r = io_bus_register(vm->mmio, d->window.base, d->window.size,
			    virtio_mmio_bus_ops(), d->mmio);
	if (r < 0)
		return fail(d->name, r);
	/* QueueNotify takes the queue index: one ioeventfd per queue with
	 * that datamatch; without one the notify is an MMIO exit. */
	nq = virtio_device_num_queues(d->dev);
	for (i = 0; i < nq && i < 32; i++) {
		struct event_notifier *n =
			virtio_device_queue_notifier(d->dev, i);

		if (n && kvm_vm_ioeventfd_assign(
				 vm->kvm, event_notifier_fd(n),
				 d->window.base + VIRTIO_MMIO_NOTIFY_OFFSET, 4,
				 KVM_IOEVENTFD_FLAG_DATAMATCH, i) == 0)
			d->ioeventfds |= 1u << i;
	}
	return 0;
}

/* Puts @dev behind virtio-pci at 00:@slot.0 (or virtio-mmio with
 * --transport mmio); @d owns @dev from the start (teardown() destroys it),
 * also on error. */
static int vdev_add_pci(struct vm *vm, struct vdev *d, const char *name,
			struct virtio_device *dev, unsigned slot)
{
	struct virtio_pci_config pc = {0};
	uint32_t gsi;
	int r;

	d->vm = vm;
	d->name = name;
	d->dev = dev;
	r = virtio_device_set_memory(dev, vm->mem);
	if (r < 0)
		return fail(name, r);
	if (!d->ring_from_backend) { /* --virtio-ring */
		uint64_t ring = 0;

		if (vm->o->ring_packed)
			ring |= 1ull << VIRTIO_DEVICE_F_RING_PACKED;
		if (vm->o->ring_in_order && d->in_order_ok)
			ring |= 1ull << VIRTIO_DEVICE_F_IN_ORDER;
		r = virtio_device_set_ring_features(dev, ring);
		if (r < 0)
			return fail(name, r);
	}
	virtio_device_set_poll_watcher(dev, vdev_poll_changed, vm);
	if (vm->o->mmio)
		return vdev_add_mmio(vm, d, (unsigned)(d - vm->vdevs));
	TRY(cvmm_irq_msix_config(vm->irq, &pc, &d->msix), name);
	TRY(cvmm_irq_pci_intx(vm->irq, slot, &pc.intx, &gsi), name);
	pc.notify_remap = vdev_notify_remap;
	pc.remap_opaque = d;
	r = virtio_pci_create(dev, &pc, &d->pci);
	if (r < 0)
		return fail(name, r);
	TRY(cvmm_irq_msix_attach(d->msix, d->pci), name);
	TRY(pci_device_config_set(virtio_pci_pci_device(d->pci),
				  PCI_INTERRUPT_LINE, 1, gsi),
	    name);
	r = virtio_pci_add_to_root(d->pci, vm->pci, slot, 0);
	if (r < 0)
		return fail(name, r);
	return 0;
}

/* PCI slots: 1 pvpanic, 2 virtio-rng, 3.. the disks in command-line order,
 * 11 virtio-console.  13 virtio-fs (vhost-user.c), 16 virtio-vsock
 * (vsock.c). */
static int setup_virtio(struct vm *vm)
{
	const struct cvmm_opts *o = vm->o;
	struct virtio_device *dev;
	unsigned i;
	int r;

	if (o->rng) {
		r = virtio_rng_create(NULL, &dev);
		if (r < 0)
			return fail("virtio-rng", r);
		r = vdev_add_pci(vm, &vm->vdevs[vm->nvdevs++], "virtio-rng",
				 dev, 2);
		if (r < 0)
			return r;
	}
	if (o->console == CVMM_CONSOLE_VIRTIO || o->nchannels) {
		struct vdev *v = &vm->vdevs[vm->nvdevs];
		struct virtio_console_port_config ports[CVMM_CHANNELS_MAX];
		struct virtio_console_params cp = {0};
		bool on_term = o->console == CVMM_CONSOLE_VIRTIO;

		for (i = 0; i < o->nchannels; i++) {
			ports[i].name = o->channels[i].name;
			ports[i].path = o->channels[i].socket;
			ports[i].server = o->channels[i].server;
		}
		cp.ports = ports;
		cp.nr_ports = o->nchannels;
		/* Debian 12's Linux 6.1 reads RESIZE as (rows, cols). */
		cp.flags = VIRTIO_CONSOLE_RESIZE_ROWS_FIRST;
		if (on_term)
			term_nonblock(true);
		r = virtio_console_create(on_term ? STDIN_FILENO : -1,
					  on_term ? STDOUT_FILENO : -1, &cp,
					  &v->con);
		if (r < 0)
			return fail("virtio-console", r);
		vm->nvdevs++;
		r = vdev_add_pci(vm, v, "virtio-console",
				 virtio_console_device(v->con),
				 3 + CVMM_DISKS_MAX);
		if (r < 0)
			return r;
	}
	if (o->net.set) { /* --net (net.c), PCI slot 12 */
		struct vdev *v = &vm->vdevs[vm->nvdevs];

		r = cvmm_net_create(&o->net, &dev);
		if (r < 0)
			return r;
		vm->nvdevs++;
		v->ring_from_backend = o->net.vhost; /* vhost-net's rings */
		r = vdev_add_pci(vm, v, "virtio-net", dev, 12);
		if (r < 0)
			return r;
	}
	if (o->vsock.cid) {
		r = cvmm_vsock_create(&o->vsock, &dev);
		if (r < 0)
			return fail("virtio-vsock", r);
		vm->vdevs[vm->nvdevs].ring_from_backend = o->vsock.vhost;
		r = vdev_add_pci(vm, &vm->vdevs[vm->nvdevs++], "virtio-vsock",
				 dev, CVMM_VSOCK_PCI_SLOT);
		if (r < 0)
			return r;
	}
	if (o->fs.tag) { /* --fs (vhost-user.c) */
		struct vdev *v = &vm->vdevs[vm->nvdevs];

		r = cvmm_fs_create(&o->fs, &dev);
		if (r < 0)
			return r;
		vm->nvdevs++;
		v->ring_from_backend = true; /* virtiofsd's ring features */
		r = vdev_add_pci(vm, v, "virtio-fs", dev, CVMM_FS_PCI_SLOT);
		if (r < 0)
			return r;
	}
	for (i = 0; i < o->ndisks; i++) {
		const struct cvmm_disk *d = &o->disks[i];
		struct virtio_blk_options bo = {0};
		struct vdev *v = &vm->vdevs[vm->nvdevs];

		if (d->vhost_user) { /* vhost-user.c */
			r = cvmm_vhost_user_disk(d, &dev);
			if (r < 0)
				return r;
			vm->nvdevs++;
			v->ring_from_backend = true;
			r = vdev_add_pci(vm, v, d->vhost_user, dev, 3 + i);
			if (r < 0)
				return r;
			continue;
		}
		if (d->readonly)
			bo.flags |= VIRTIO_BLK_OPT_READ_ONLY;
		bo.backend = d->io_uring ? VIRTIO_BLK_BACKEND_IO_URING
					 : VIRTIO_BLK_BACKEND_SYNC;
		bo.serial = d->serial[0] ? d->serial : NULL;
		r = virtio_blk_create(d->path, &bo, &v->blk);
		if (r < 0) {
			fprintf(stderr, "cvmm: --disk %s: %s\n", d->path,
				strerror(-r));
			return r;
		}
		vm->nvdevs++;
		/* The synchronous backend completes inside submit, in pop
		 * order; io_uring completes in any order. */
		v->in_order_ok = !d->io_uring;
		r = vdev_add_pci(vm, v, d->path, virtio_blk_device(v->blk),
				 3 + i);
		if (r < 0)
			return r;
	}
	return 0;
}

static int setup_devices(struct vm *vm)
{
	const struct cvmm_opts *o = vm->o;
	struct serial_config scfg = {0};
	struct i8042_config kcfg = {0};
	struct cmos_rtc_config rcfg = {0};
	struct pci_root_config pcfg = {0};

	TRY(io_bus_create(&vm->pio), "port bus");
	TRY(io_bus_create(&vm->mmio), "MMIO bus");

	scfg.irq = wired_irq_line(vm, &vm->irq_com1, COM1_IRQ);
	if (o->console == CVMM_CONSOLE_SERIAL) {
		struct stat st;
		int fl = fcntl(STDOUT_FILENO, F_GETFL);

		if (fl < 0 || fstat(STDOUT_FILENO, &st) < 0)
			return fail("stdout", -errno);
		if (!S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode) &&
		    !(fl & O_NONBLOCK)) {
			term.out_flags = fl;
			if (fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) < 0)
				return fail("stdout O_NONBLOCK", -errno);
			term.out_flags_set = true;
		}
		scfg.use_out_fd = true;
		scfg.out_fd = STDOUT_FILENO;
		scfg.output_capacity = 1u << 20;
		scfg.output_poll = serial_output_wait;
		scfg.output_poll_opaque = vm;
	}
	scfg.input_space = serial_input_room;
	scfg.input_space_opaque = vm;
	TRY(serial_create(&scfg, &vm->uart), "16550A");
	TRY(io_bus_register(vm->pio, COM1_PORT, SERIAL_NR_REGS,
			    serial_bus_ops(), vm->uart),
	    "COM1 ports");
	vm->pio_com1 = true;

	kcfg.kbd_irq = wired_irq_line(vm, &vm->irq_kbd, KBD_IRQ);
	kcfg.reset = on_i8042_reset;
	kcfg.reset_opaque = vm;
	TRY(i8042_create(&kcfg, &vm->kbd), "i8042");
	TRY(i8042_register(vm->kbd, vm->pio, I8042_DATA_PORT, I8042_CMD_PORT),
	    "i8042 ports");
	vm->pio_kbd = true;

	rcfg.irq = wired_irq_line(vm, &vm->irq_rtc, RTC_IRQ);
	TRY(cmos_rtc_create(&rcfg, &vm->rtc), "CMOS RTC");
	TRY(io_bus_register(vm->pio, CMOS_RTC_PORT, 2, cmos_rtc_bus_ops(),
			    vm->rtc),
	    "RTC ports");
	vm->pio_rtc = true;

	TRY(io_bus_register(vm->pio, ACPI_PM_PORT, ACPI_PM_LEN, &pm_ops, vm),
	    "ACPI registers");
	vm->pio_pm = true;

	TRY(address_allocator_create(
		    VM_PCI_MMIO32_BASE,
		    VM_PCI_MMIO32_BASE + VM_PCI_MMIO32_SIZE - 1, &vm->mmio32),
	    "PCI MMIO window");
	TRY(address_allocator_create(VM_PCI_IO_BASE,
				     VM_PCI_IO_BASE + VM_PCI_IO_SIZE - 1,
				     &vm->io),
	    "PCI I/O window");
	pcfg.mem32 = vm->mmio32;
	pcfg.io = vm->io;
	pcfg.pio_bus = vm->pio;
	pcfg.mmio_bus = vm->mmio;
	TRY(pci_root_create(&pcfg, &vm->pci), "PCI root");
	TRY(pci_root_register_pio(vm->pci, vm->pio), "PCI conf1");
	vm->pio_pci = true;
	TRY(pci_root_register_ecam(vm->pci, vm->mmio, VM_PCI_ECAM_BASE), "PCI "
									 "ECA"
									 "M");
	vm->mmio_ecam = true;
	TRY(add_pvpanic(vm), "pvpanic");
#ifdef CVMM_HAVE_VFIO
	if (vm->o->vfio) { /* after pvpanic, rng and the disks */
		TRY(cvmm_vfio_create(vm->o->vfio, vm->kvm, vm->mem, vm->pci,
				     VFIO_SLOT, vm->irq, VFIO_GSI,
				     vm->o->verbose, &vm->vfio),
		    "--vfio");
		TRY(cvmm_irq_pci_route_add(vm->irq, VFIO_SLOT, VFIO_GSI), "--"
									  "vfio"
									  " INT"
									  "A# "
									  "rout"
									  "e");
	}
#endif
	return setup_virtio(vm);
}

/* ------------------------------------------------------------- boot */

static bool cmdline_has(const char *cmdline, const char *word)
{
	size_t n = strlen(word);
	const char *p = cmdline;

	while ((p = strstr(p, word))) {
		if ((p == cmdline || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

static int setup_memory(struct vm *vm)
{
	struct guest_memory_range r[2];
	struct guest_region_params rp = {
		.backing = GUEST_REGION_MEMFD,
		.flags = GUEST_REGION_NORESERVE,
		.name = "cvmm-ram",
	};
	uint64_t size = vm->o->mem_size;
	size_t n = 1, i;

	r[0].gpa = 0;
	r[0].size = size < RAM_LOW_END ? size : RAM_LOW_END;
	if (size > RAM_LOW_END) {
		r[1].gpa = HIGH_RAM_START;
		r[1].size = size - RAM_LOW_END;
		n = 2;
	}
	TRY(guest_memory_create_ranges(r, n, &rp, &vm->mem), "guest RAM");
	for (i = 0; i < guest_memory_num_regions(vm->mem); i++) {
		struct guest_region *g = guest_memory_region_at(vm->mem, i);

		/* Transparent huge pages where the host allows them for shmem
		 * (shmem_enabled advise or within_size; QEMU's anonymous RAM
		 * gets them by default): KVM then maps the guest 2 MiB at a
		 * time, and a booting kernel takes one nested page fault per
		 * 2 MiB instead of one per 4 KiB. */
		madvise(guest_region_host_addr(g), guest_region_size(g),
			MADV_HUGEPAGE);

		TRY(kvm_vm_set_user_memory_region(
			    vm->kvm, (uint32_t)i, 0, guest_region_gpa(g),
			    guest_region_size(g), guest_region_host_addr(g)),
		    "KVM_SET_USER_MEMORY_REGION");
	}
	return 0;
}

/* Does the host give guest RAM (a memfd mapped with MADV_HUGEPAGE)
 * transparent huge pages? */
static bool shmem_thp(void)
{
	char buf[128];
	int fd = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
		      O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, "[always]") || strstr(buf, "[within_size]") ||
	       strstr(buf, "[advise]") || strstr(buf, "[force]");
}

/*
 * Where guest RAM has transparent huge pages, faults the range a bzImage's
 * payload goes to in through the mapping before the loader writes it.
 * Written through the memfd (libvm-memory's path for large writes), that
 * range got 4 KiB pages, one allocation each (most of the copy's time
 * under the lab's TCG), and the booting guest then had it mapped 4 KiB at
 * a time.  Advice only: whatever it does not populate, the write does.
 */
static void prefault_kernel(struct vm *vm)
{
	const struct cvmm_opts *o = vm->o;
	struct linux_loader_kernel k;
	uint64_t avail, len, pg = (uint64_t)sysconf(_SC_PAGESIZE);
	void *host;
	uintptr_t a;

	if (linux_loader_parse_bzimage(o->kernel, o->kernel_size, NULL, &k) <
		    0 ||
	    guest_memory_contiguous(vm->mem, k.start, &host, &avail) < 0 ||
	    !shmem_thp())
		return;
	len = (uint64_t)k.hdr.syssize * 16;
	if (len > avail)
		len = avail;
	a = (uintptr_t)host & ~(uintptr_t)(pg - 1);
	madvise((void *)a, len + ((uintptr_t)host - a), MADV_POPULATE_WRITE);
}

/* Loads the kernel and writes every boot structure; fills vCPU 0's regs. */
static int load_guest(struct vm *vm, struct kvm_regs *regs,
		      struct kvm_sregs *sregs)
{
	const struct cvmm_opts *o = vm->o;
	struct linux_loader_kernel k;
	struct boot_config bc = {0};
	struct boot_e820_entry e820[BOOT_E820_MAX];
	struct boot_range reserved[2] = {
		{BOOT_LOW_RESERVED_START,
		 BOOT_LOW_RESERVED_END - BOOT_LOW_RESERVED_START},
		{VM_PCI_ECAM_BASE, PCI_ECAM_BUS_SIZE},
	};
	size_t ne = 0;
	uint64_t acpi_size = 0;
	guest_addr_t initrd = 0;
	bool acpi = !cmdline_has(o->cmdline, "acpi=off");

	prefault_kernel(vm);
	TRY(linux_loader_load(vm->mem, o->kernel, o->kernel_size, NULL, &k),
	    "loading the kernel");
	if (o->initrd)
		TRY(linux_loader_load_initrd(vm->mem, &k, NULL, 0, o->initrd,
					     o->initrd_size, &initrd),
		    "loading the initrd");
	TRY(boot_e820_build(vm->mem, reserved, 2, e820, BOOT_E820_MAX, &ne),
	    "e820 map");
	if (acpi) {
		struct acpi_tables_config ac = {0};

		ac.num_cpus = o->cpus;
		ac.sleep_control =
			(struct acpi_gas){ACPI_GAS_IO, 8, ACPI_PM_PORT};
		ac.sleep_status =
			(struct acpi_gas){ACPI_GAS_IO, 8, ACPI_PM_PORT + 1};
		ac.reset_reg =
			(struct acpi_gas){ACPI_GAS_IO, 8, ACPI_PM_PORT + 4};
		ac.reset_value = ACPI_RESET_VALUE;
		ac.pci = true;
		ac.pci_bus_count = 1; /* bus 0 only: its 1 MiB of ECAM */
		ac.ecam_base = VM_PCI_ECAM_BASE;
		ac.io_base = VM_PCI_IO_BASE;
		ac.io_size = VM_PCI_IO_SIZE;
		ac.mmio32_base = VM_PCI_MMIO32_BASE;
		ac.mmio32_size = VM_PCI_MMIO32_SIZE;
		ac.com1 = true;
		ac.n_pci_irqs = cvmm_irq_pci_routes(vm->irq, &ac.pci_irqs);
		TRY(acpi_tables_setup(vm->mem, &ac, &bc.acpi_rsdp, &acpi_size),
		    "ACPI tables");
		struct cvmm_mmio_dev mm[VDEVS_MAX];
		size_t nm = 0, j;

		for (j = 0; j < vm->nvdevs; j++)
			if (vm->vdevs[j].mmio)
				mm[nm++] = vm->vdevs[j].window;
		TRY(cvmm_acpi_add_legacy_ssdt(vm->mem, bc.acpi_rsdp,
					      BOOT_ACPI_ADDR + acpi_size,
					      BOOT_LOW_RESERVED_END, mm, nm),
		    "ACPI SSDT");
	} else {
		struct boot_mptable_config mc = {0};

		mc.num_cpus = o->cpus;
		/* KVM's default GSI routing sends the PIT's IRQ 0 to IOAPIC
		 * input 0 (QEMU reroutes it to 2): say so, or the guest waits
		 * for timer interrupts on input 2 that never come. */
		mc.irq0_to_pin0 = true;
		mc.n_pci_irqs = cvmm_irq_pci_routes(vm->irq, &mc.pci_irqs);
		TRY(boot_mptable_setup(vm->mem, &mc, NULL), "MP table");
	}
	bc.cmdline = o->cmdline;
	bc.initrd_addr = initrd;
	bc.initrd_size = o->initrd ? o->initrd_size : 0;
	bc.e820 = e820;
	bc.e820_entries = ne;
	if (k.kind == LINUX_LOADER_BZIMAGE) {
		TRY(boot_params_setup(vm->mem, &k, &bc), "zero page");
		TRY(boot_vcpu_setup_long_mode(vm->mem, &k, BOOT_ZERO_PAGE_ADDR,
					      NULL, regs, sregs),
		    "boot vCPU state");
	} else {
		TRY(boot_pvh_setup(vm->mem, &k, &bc), "PVH start info");
		TRY(boot_vcpu_setup_pvh(vm->mem, &k, BOOT_PVH_START_INFO_ADDR,
					NULL, regs, sregs),
		    "boot vCPU state");
	}
	return 0;
}

static int setup_vcpus(struct vm *vm)
{
	const struct cvmm_opts *o = vm->o;
	struct kvm_cpuid2 *supported = NULL, *c = NULL;
	struct kvm_msrs *msrs = NULL;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	bool tsc_deadline;
	unsigned i;
	int r;

	vm->vcpus = calloc(o->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return fail("vCPUs", -ENOMEM);
	for (i = 0; i < o->cpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].id = i;
		TRY(kvm_vcpu_create(vm->kvm, i, &vm->vcpus[i].obj), "KVM_"
								    "CREATE_"
								    "VCPU");
	}

	/* As QEMU does: the in-kernel LAPIC has the TSC deadline timer. */
	tsc_deadline =
		kvm_vm_check_extension(vm->kvm, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	r = kvm_sys_get_supported_cpuid(vm->sys, &supported);
	if (r < 0)
		return fail("KVM_GET_SUPPORTED_CPUID", r);
	r = kvm_cpuid2_new(supported->nent + 8, &c);
	if (r == 0)
		r = kvm_msrs_new(BOOT_MSRS_COUNT, &msrs);
	for (i = 0; r == 0 && i < o->cpus; i++) {
		struct kvm_vcpu_obj *v = vm->vcpus[i].obj;
		struct boot_cpuid_config cc = {.apic_id = i,
					       .num_cpus = o->cpus,
					       .tsc_deadline = tsc_deadline};
		struct kvm_lapic_state lapic;
		size_t n = 0;

		memcpy(c->entries, supported->entries,
		       supported->nent * sizeof(c->entries[0]));
		r = boot_cpuid_normalize(c->entries, supported->nent,
					 supported->nent + 8, &cc, &n);
		if (r < 0) {
			fail("CPUID", r);
			break;
		}
		c->nent = (uint32_t)n;
		r = kvm_vcpu_set_cpuid2(v, c);
		if (r < 0) {
			fail("KVM_SET_CPUID2", r);
			break;
		}
		r = boot_msrs_fill(msrs->entries, BOOT_MSRS_COUNT);
		if (r >= 0) {
			msrs->nmsrs = (uint32_t)r;
			r = kvm_vcpu_set_msrs(v, msrs);
		}
		if (r >= 0 && (uint32_t)r < msrs->nmsrs && o->verbose)
			fprintf(stderr, "cvmm: KVM refused boot MSR 0x%x\n",
				msrs->entries[r].index);
		if (r < 0) {
			fail("KVM_SET_MSRS", r);
			break;
		}
		r = kvm_vcpu_get_lapic(v, &lapic);
		if (r == 0)
			r = boot_lapic_setup_lint(&lapic);
		if (r == 0)
			r = kvm_vcpu_set_lapic(v, &lapic);
		if (r < 0) {
			fail("LAPIC", r);
			break;
		}
	}
	free(supported);
	free(c);
	free(msrs);
	if (r < 0)
		return r;

	TRY(kvm_vcpu_get_sregs(vm->vcpus[0].obj, &sregs), "KVM_GET_SREGS");
	vm->t_vcpu = cvmm_now_ns();
	r = load_guest(vm, &regs, &sregs);
	vm->t_load = cvmm_now_ns();
	if (r < 0)
		return r;
	TRY(kvm_vcpu_set_sregs(vm->vcpus[0].obj, &sregs), "KVM_SET_SREGS");
	TRY(kvm_vcpu_set_regs(vm->vcpus[0].obj, &regs), "KVM_SET_REGS");
	return 0;
}

static int setup_vm(struct vm *vm)
{
	int r;

	r = kvm_sys_create(&vm->sys);
	if (r < 0)
		return fail("/dev/kvm", r);
	if (kvm_sys_nr_vcpus(vm->sys) > 0 &&
	    (unsigned)kvm_sys_max_vcpus(vm->sys) < vm->o->cpus) {
		fprintf(stderr, "cvmm: KVM allows at most %d vCPUs\n",
			kvm_sys_max_vcpus(vm->sys));
		return -EINVAL;
	}
	TRY(kvm_vm_create(vm->sys, 0, &vm->kvm), "KVM_CREATE_VM");
	vm->t_vm = cvmm_now_ns();
	/* Memory before the irqchip: installing a memory slot waits for an
	 * SRCU grace period, which is short on a fresh VM but a full one
	 * (5-10 ms measured) right after the irqchip and PIT have waited
	 * for theirs. */
	r = setup_memory(vm);
	vm->t_mem = cvmm_now_ns();
	if (r < 0)
		return r;
	TRY(kvm_vm_set_tss_addr(vm->kvm, TSS_ADDR), "KVM_SET_TSS_ADDR");
	TRY(kvm_vm_create_irqchip(vm->kvm), "KVM_CREATE_IRQCHIP");
	TRY(kvm_vm_create_pit2(vm->kvm, KVM_PIT_SPEAKER_DUMMY), "KVM_CREATE_"
								"PIT2");
	TRY(cvmm_irq_create(vm->kvm, &vm->irq), "interrupt routing");
	r = setup_devices(vm);
	vm->t_dev = cvmm_now_ns();
	if (r == 0)
		r = setup_vcpus(vm);
	return r;
}

static void teardown(struct vm *vm)
{
	unsigned i;

	if (vm->mmio_ecam)
		io_bus_unregister(vm->mmio, VM_PCI_ECAM_BASE);
	if (vm->pio_pci)
		io_bus_unregister(vm->pio, PCI_CONFIG_ADDRESS_PORT);
	if (vm->pio_pm)
		io_bus_unregister(vm->pio, ACPI_PM_PORT);
	if (vm->pio_rtc)
		io_bus_unregister(vm->pio, CMOS_RTC_PORT);
	if (vm->pio_kbd) {
		io_bus_unregister(vm->pio, I8042_DATA_PORT);
		io_bus_unregister(vm->pio, I8042_CMD_PORT);
	}
	if (vm->pio_com1)
		io_bus_unregister(vm->pio, COM1_PORT);
#ifdef CVMM_HAVE_VFIO
	cvmm_vfio_destroy(vm->vfio, vm->pci);
#endif
	pci_root_destroy(vm->pci);
	for (i = 0; i < vm->nvdevs; i++) {
		if (vm->vdevs[i].mmio) {
			io_bus_unregister(vm->mmio, vm->vdevs[i].window.base);
			virtio_mmio_destroy(vm->vdevs[i].mmio);
		}
		virtio_pci_destroy(vm->vdevs[i].pci);
		if (vm->vdevs[i].blk)
			virtio_blk_destroy(vm->vdevs[i].blk);
		else if (vm->vdevs[i].con)
			virtio_console_destroy(vm->vdevs[i].con);
		else
			virtio_device_destroy(vm->vdevs[i].dev);
	}
	cvmm_irq_destroy(vm->irq);
	address_allocator_destroy(vm->mmio32);
	address_allocator_destroy(vm->io);
	cmos_rtc_destroy(vm->rtc);
	i8042_destroy(vm->kbd);
	serial_destroy(vm->uart);
	io_bus_destroy(vm->mmio);
	io_bus_destroy(vm->pio);
	if (vm->vcpus)
		for (i = 0; i < vm->o->cpus; i++)
			kvm_vcpu_destroy(vm->vcpus[i].obj);
	/* vm->vcpus itself is freed after watchdog_stop(): the watchdog
	 * reads it while a slow teardown runs. */
	kvm_vm_destroy(vm->kvm);
	kvm_sys_destroy(vm->sys);
	guest_memory_unref(vm->mem);
}

/* ------------------------------------------------------------- vCPUs */

static void handle_pio(struct vm *vm, const struct kvm_exit_info *e)
{
	uint8_t *data = e->io.data;
	uint32_t i;

	for (i = 0; i < e->io.count; i++, data += e->io.size) {
		if (e->io.in)
			io_bus_read(vm->pio, e->io.port, data, e->io.size);
		else
			io_bus_write(vm->pio, e->io.port, data, e->io.size);
	}
}

static void handle_mmio(struct vm *vm, const struct kvm_exit_info *e)
{
	unsigned size = e->mmio.len;

	if (size != 1 && size != 2 && size != 4 && size != 8) {
		if (!e->mmio.write)
			memset(e->mmio.data, 0xff, size);
		return;
	}
	if (e->mmio.write)
		io_bus_write(vm->mmio, e->mmio.gpa, e->mmio.data, size);
	else
		io_bus_read(vm->mmio, e->mmio.gpa, e->mmio.data, size);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	struct kvm_exit_info e;
	int r;

	r = kvm_vcpu_kick_bind(c->obj, KICK_SIGNAL);
	if (r < 0) {
		vm_stop(vm, CVMM_EXIT_ERROR, "vCPU %u: kick setup: %s", c->id,
			strerror(-r));
		atomic_store(&c->where, VCPU_GONE);
		return NULL;
	}
	while (!atomic_load(&vm->stopping)) {
		if (c->id == 0 && !atomic_load(&vm->first_run_ns))
			atomic_store(&vm->first_run_ns, cvmm_now_ns());
		r = kvm_vcpu_run(c->obj, &e);
		/* An AP waiting for INIT/SIPI returns EAGAIN when it wakes
		 * without having been started: run it again. */
		if (r == -EAGAIN)
			continue;
		if (r < 0) {
			vm_stop(vm, CVMM_EXIT_ERROR, "vCPU %u: KVM_RUN: %s",
				c->id, strerror(-r));
			break;
		}
		c->exits++;
		switch (e.reason) {
		case KVM_EXIT_IO:
			c->pio_exits++;
			atomic_store_explicit(&c->where, VCPU_IN_PIO,
					      memory_order_relaxed);
			handle_pio(vm, &e);
			atomic_store_explicit(&c->where, VCPU_IN_RUN,
					      memory_order_relaxed);
			break;
		case KVM_EXIT_MMIO:
			c->mmio_exits++;
			atomic_store_explicit(&c->where, VCPU_IN_MMIO,
					      memory_order_relaxed);
			handle_mmio(vm, &e);
			atomic_store_explicit(&c->where, VCPU_IN_RUN,
					      memory_order_relaxed);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_SHUTDOWN:
			vm_stop(vm, CVMM_EXIT_OK,
				"guest reset (triple fault on vCPU %u)", c->id);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			vm_stop(vm, CVMM_EXIT_OK,
				"guest system event %u on vCPU %u",
				e.system_event.type, c->id);
			break;
		case KVM_EXIT_HLT:
			vm_stop(vm, CVMM_EXIT_OK, "guest halted");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			vm_stop(vm, CVMM_EXIT_ERROR,
				"vCPU %u: entry failed, hardware reason "
				"0x%llx",
				c->id,
				(unsigned long long)e.fail_entry
					.hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			vm_stop(vm, CVMM_EXIT_ERROR,
				"vCPU %u: KVM internal error, suberror %u",
				c->id, e.internal.suberror);
			break;
		default:
			vm_stop(vm, CVMM_EXIT_ERROR,
				"vCPU %u: unhandled exit %s (%u)", c->id,
				kvm_exit_reason_name(e.reason), e.reason);
			break;
		}
	}
	atomic_store(&c->where, VCPU_GONE);
	return NULL;
}

/* ------------------------------------------------------- the I/O thread */

enum {
	EV_STOP,
	EV_SIGNAL,
	EV_STDIN,
	EV_STDOUT,
	EV_OUT,
	EV_IN,
	EV_RTC,
	EV_TIMEOUT,
	EV_POLL,
	EV_IRQ = 0x80, /* + index: irq.c's resample fds */
	EV_VDEV = 0x100
};

static int ep_add(int ep, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void ep_mod(int ep, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};

	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* nothing to drain */
	}
}

static void arm_timer(int fd, uint64_t ns)
{
	struct itimerspec it = {0};

	it.it_value.tv_sec = (time_t)(ns / 1000000000ull);
	it.it_value.tv_nsec = (long)(ns % 1000000000ull);
	if (!ns)
		it.it_value.tv_nsec = 1;
	timerfd_settime(fd, 0, &it, NULL);
}

/* Terminal input: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A (on a
 * terminal only; piped input goes to the guest as it is). */
struct input_state {
	bool escape;
	bool eof;
	bool waiting_room;
};

static void read_input(struct vm *vm, struct input_state *in, int ep)
{
	uint8_t buf[512], out[512];
	size_t room = serial_input_space(vm->uart), n = 0, i;
	ssize_t got;

	if (!room) {
		ep_mod(ep, STDIN_FILENO, 0, EV_STDIN);
		in->waiting_room = true;
		return;
	}
	got = read(STDIN_FILENO, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
		in->eof = true;
		return;
	}
	for (i = 0; i < (size_t)got; i++) {
		uint8_t ch = buf[i];

		if (term.raw && in->escape) {
			in->escape = false;
			if (ch == 'x' || ch == 'X') {
				vm_stop(vm, CVMM_EXIT_OK, "quit (Ctrl-A x)");
				return;
			}
			if (ch != ESCAPE_CHAR)
				out[n++] = ESCAPE_CHAR;
		} else if (term.raw && ch == ESCAPE_CHAR) {
			in->escape = true;
			continue;
		}
		out[n++] = ch;
		if (n == sizeof(out)) {
			serial_input(vm->uart, out, n);
			n = 0;
		}
	}
	if (n)
		serial_input(vm->uart, out, n);
}

/* Re-reads virtio device @k's poll list into the epoll set (tags EV_VDEV
 * + k * VDEV_POLL_MAX + index). */
static void vdev_poll_update(struct vdev *d, unsigned k, int ep)
{
	struct virtio_poll_fd fds[VDEV_POLL_MAX];
	unsigned i;
	int n;

	if (!d->dev)
		return;
	for (i = 0; i < d->npolled; i++)
		epoll_ctl(ep, EPOLL_CTL_DEL, d->polled[i].fd, NULL);
	n = virtio_device_poll_fds(d->dev, fds, VDEV_POLL_MAX);
	d->npolled = n > 0 ? (unsigned)(n < VDEV_POLL_MAX ? n : VDEV_POLL_MAX)
			   : 0;
	for (i = 0; i < d->npolled; i++) {
		d->polled[i] = fds[i];
		ep_add(ep, fds[i].fd, fds[i].events,
		       EV_VDEV + k * VDEV_POLL_MAX + i);
	}
}

/* "Name:   123 kB" -> 123 when @line starts with @name, else -1. */
static long kb_field(const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(line, name, n))
		return -1;
	return strtol(line + n, NULL, 10);
}

/* Is [lo, hi) (host addresses) inside one of the guest RAM mappings? */
static bool in_guest_ram(const struct vm *vm, uintptr_t lo, uintptr_t hi)
{
	size_t i, n = guest_memory_num_regions(vm->mem);

	for (i = 0; i < n; i++) {
		struct guest_region *g = guest_memory_region_at(vm->mem, i);
		uintptr_t a = (uintptr_t)guest_region_host_addr(g);

		if (lo >= a && hi <= a + guest_region_size(g))
			return true;
	}
	return false;
}

/* --verbose: cvmm's resident set beyond guest RAM.  Guest RAM is what the
 * guest RAM mappings hold (their Rss in /proc/self/smaps), not RssShmem:
 * that also counts a binary run from tmpfs (the lab's initramfs) and any
 * other shmem cvmm maps.  Parsed without stdio's scanf so that measuring
 * does not fault in code of its own.  Measured when the I/O loop ends,
 * before the vCPU threads are stopped and their stacks freed; printed
 * into @out (@size bytes), empty when it cannot be measured. */
static void measure_rss(const struct vm *vm, char *out, size_t size)
{
	char line[512];
	long rss = -1, anon = -1, file = -1, shmem = -1, guest = 0, v;
	bool guest_vma = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	out[0] = 0;
	if (!f || !vm->mem) {
		if (f)
			fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char *end;
		uintptr_t lo = (uintptr_t)strtoull(line, &end, 16), hi;

		if (*end == '-' && end != line) {
			hi = (uintptr_t)strtoull(end + 1, &end, 16);
			guest_vma = *end == ' ' && in_guest_ram(vm, lo, hi);
			continue;
		}
		if (guest_vma && (v = kb_field(line, "Rss:")) >= 0)
			guest += v;
	}
	fclose(f);
	f = fopen("/proc/self/status", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if ((v = kb_field(line, "VmRSS:")) >= 0)
			rss = v;
		else if ((v = kb_field(line, "RssAnon:")) >= 0)
			anon = v;
		else if ((v = kb_field(line, "RssFile:")) >= 0)
			file = v;
		else if ((v = kb_field(line, "RssShmem:")) >= 0)
			shmem = v;
	}
	fclose(f);
	if (rss >= 0 && anon >= 0 && file >= 0 && shmem >= 0)
		snprintf(out, size,
			 "cvmm: RSS %ld KiB, guest memory %ld KiB, beyond "
			 "guest "
			 "memory %ld KiB (anonymous %ld, files %ld, shmem "
			 "outside guest RAM %ld)\n",
			 rss, guest, rss - guest, anon, file, shmem - guest);
}

/* --verbose: the exits that reached cvmm (KVM handles the rest itself). */
static void print_exits(const struct vm *vm)
{
	uint64_t all = 0, pio = 0, mmio = 0;
	uint64_t first = atomic_load(&vm->first_run_ns);
	double s = first ? (double)(cvmm_now_ns() - first) / 1e9 : 0;
	unsigned i;

	for (i = 0; i < vm->o->cpus; i++) {
		all += vm->vcpus[i].exits;
		pio += vm->vcpus[i].pio_exits;
		mmio += vm->vcpus[i].mmio_exits;
	}
	fprintf(stderr,
		"cvmm: %llu exits to cvmm in %.1f s (%.0f a second): %llu "
		"port I/O, %llu MMIO, %llu other\n",
		(unsigned long long)all, s, s > 0 ? (double)all / s : 0.0,
		(unsigned long long)pio, (unsigned long long)mmio,
		(unsigned long long)(all - pio - mmio));
}

static int io_loop(struct vm *vm, int sig_fd)
{
	const struct cvmm_opts *o = vm->o;
	struct input_state in = {0};
	struct epoll_event evs[8];
	int ep, rtc_fd, to_fd = -1;
	unsigned k;
	bool out_polling = false;
	bool serial_out = o->console == CVMM_CONSOLE_SERIAL;

	ep = epoll_create1(EPOLL_CLOEXEC);
	rtc_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || rtc_fd < 0) {
		vm_stop(vm, CVMM_EXIT_ERROR, "epoll/timerfd: %s",
			strerror(errno));
		goto out;
	}
	ep_add(ep, vm->stop_fd, EPOLLIN, EV_STOP);
	ep_add(ep, sig_fd, EPOLLIN, EV_SIGNAL);
	ep_add(ep, vm->out_fd, EPOLLIN, EV_OUT);
	ep_add(ep, vm->in_fd, EPOLLIN, EV_IN);
	ep_add(ep, rtc_fd, EPOLLIN, EV_RTC);
	ep_add(ep, vm->poll_fd, EPOLLIN, EV_POLL);
	for (k = 0; k < vm->nvdevs; k++)
		vdev_poll_update(&vm->vdevs[k], k, ep);
	cvmm_irq_epoll_add(vm->irq, ep, EV_IRQ);
	arm_timer(rtc_fd, 1000000ull);
	if (o->console == CVMM_CONSOLE_SERIAL) {
		term_nonblock(false);
		/* /dev/null and regular files cannot be polled: no input. */
		if (ep_add(ep, STDIN_FILENO, EPOLLIN, EV_STDIN) < 0)
			in.eof = true;
	}
	if (o->timeout > 0) {
		to_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		if (to_fd >= 0) {
			arm_timer(to_fd, (uint64_t)(o->timeout * 1e9));
			ep_add(ep, to_fd, EPOLLIN, EV_TIMEOUT);
		}
	}

	while (!atomic_load(&vm->stopping)) {
		int n = epoll_wait(ep, evs, 8, -1), i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vm_stop(vm, CVMM_EXIT_ERROR, "epoll_wait: %s",
				strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag >= EV_VDEV) {
				uint64_t dk = (tag - EV_VDEV) / VDEV_POLL_MAX;
				uint64_t di = (tag - EV_VDEV) % VDEV_POLL_MAX;
				struct virtio_poll_fd *p;

				if (dk >= vm->nvdevs ||
				    di >= vm->vdevs[dk].npolled)
					continue;
				p = &vm->vdevs[dk].polled[di];
				set_phase(vm, PHASE_DISPATCH, (int)dk);
				p->ready(p->opaque, evs[i].events);
				set_phase(vm, PHASE_LOOP, 0);
				continue;
			}
			if (tag >= EV_IRQ) {
				cvmm_irq_ready(vm->irq, tag - EV_IRQ);
				continue;
			}
			switch (tag) {
			case EV_STOP:
				break;
			case EV_POLL:
				drain(vm->poll_fd);
				for (k = 0; k < vm->nvdevs; k++)
					vdev_poll_update(&vm->vdevs[k], k, ep);
				break;
			case EV_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(sig_fd, &si, sizeof(si)) == sizeof(si))
					vm_stop(vm, CVMM_EXIT_ERROR,
						"stopped by signal %s",
						strsignal((int)si.ssi_signo));
				break;
			}
			case EV_STDIN:
				read_input(vm, &in, ep);
				break;
			case EV_IN:
				drain(vm->in_fd);
				if (in.waiting_room && !in.eof) {
					in.waiting_room = false;
					ep_mod(ep, STDIN_FILENO, EPOLLIN,
					       EV_STDIN);
				}
				break;
			case EV_OUT:
				drain(vm->out_fd);
				if (serial_out && !out_polling &&
				    serial_output_flush(vm->uart) > 0) {
					ep_add(ep, STDOUT_FILENO, EPOLLOUT,
					       EV_STDOUT);
					out_polling = true;
				}
				break;
			case EV_STDOUT:
				if (serial_output_flush(vm->uart) <= 0) {
					epoll_ctl(ep, EPOLL_CTL_DEL,
						  STDOUT_FILENO, NULL);
					out_polling = false;
				}
				break;
			case EV_RTC: {
				int64_t next;

				drain(rtc_fd);
				next = cmos_rtc_poll(vm->rtc);
				if (next <= 0 || next > 100000000)
					next = 100000000;
				arm_timer(rtc_fd, (uint64_t)next);
				break;
			}
			case EV_TIMEOUT:
				vm_stop(vm, CVMM_EXIT_TIMEOUT,
					"timeout after %g s", o->timeout);
				break;
			}
		}
	}
out:
	if (rtc_fd >= 0)
		close(rtc_fd);
	if (to_fd >= 0)
		close(to_fd);
	if (ep >= 0)
		close(ep);
	return 0;
}

/* ------------------------------------------------------------ watchdog */

/* cvmm ends no matter what: once a stop is asked for (the guest, a
 * signal, --timeout), the threads have WATCHDOG_GRACE_S to wind down, and
 * with --timeout cvmm is gone at most WATCHDOG_GRACE_S after it even when
 * the I/O thread never sees its timer.  Otherwise the watchdog thread says
 * where the main thread and each vCPU were stuck and exits the process.
 * A stop still under way after WATCHDOG_WARN_S is reported once (a
 * vhost-user backend may take its reply timeout per message). */
#define WATCHDOG_WARN_S	 10
#define WATCHDOG_GRACE_S 30

/* The warning's stack dumps: each thread asked prints its own backtrace
 * (return addresses; `addr2line -f -e cvmm` names them for a static
 * build).  WATCHDOG_SIGNAL is used for nothing else. */
#define WATCHDOG_SIGNAL SIGUSR2

static void watchdog_dump(int sig)
{
	int e = errno;
	void *frames[32];
	int n = backtrace(frames, 32);
	char head[64];
	int k = snprintf(head, sizeof(head), "cvmm: watchdog: thread %ld:\n",
			 (long)gettid());

	(void)sig;
	if (k > 0 && write(STDERR_FILENO, head, (size_t)k) < 0) {
		/* nothing to do */
	}
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	errno = e;
}

/* Asks the main thread and every started vCPU thread for its backtrace,
 * a second apart (their lines do not mix). */
static void watchdog_dump_all(struct vm *vm)
{
	/* SA_RESTART: a thread dumped in the middle of a slow but live
	 * system call (a vhost-user reply, an ioctl) goes on with it. */
	struct sigaction sa = {.sa_handler = watchdog_dump,
			       .sa_flags = SA_RESTART};

	sigemptyset(&sa.sa_mask);
	if (sigaction(WATCHDOG_SIGNAL, &sa, NULL) < 0)
		return;
	pthread_kill(vm->main_thread, WATCHDOG_SIGNAL);
	for (unsigned i = 0; vm->vcpus && i < vm->o->cpus; i++) {
		if (!vm->vcpus[i].started ||
		    atomic_load(&vm->vcpus[i].where) == VCPU_GONE)
			continue;
		usleep(200000);
		pthread_kill(vm->vcpus[i].thread, WATCHDOG_SIGNAL);
	}
	usleep(200000);
}

static void watchdog_report(struct vm *vm, bool timed_out, bool fatal)
{
	static const char *const phases[] = {"setting up",
					     "in the I/O loop",
					     "in a callback of device",
					     "waiting for vCPU",
					     "flushing console output",
					     "tearing down the VM"};
	static const char *const wheres[] = {"in KVM_RUN", "in a port I/O exit",
					     "in an MMIO exit", "gone"};
	int phase = atomic_load(&vm->phase), arg = atomic_load(&vm->phase_arg);
	char buf[768];
	size_t n = 0;
	int k;

	k = snprintf(buf, sizeof(buf),
		     "cvmm: watchdog: %s, cvmm %s within %d s%s; main thread "
		     "%s",
		     timed_out ? "--timeout expired" : "stopping",
		     fatal ? "did not stop" : "has not stopped",
		     fatal ? WATCHDOG_GRACE_S : WATCHDOG_WARN_S,
		     fatal ? " (exiting)" : "",
		     phase >= 0 && phase <= PHASE_TEARDOWN ? phases[phase]
							   : "?");
	n = k > 0 ? (size_t)k : 0;
	if (n < sizeof(buf) && phase == PHASE_DISPATCH && arg >= 0 &&
	    (unsigned)arg < vm->nvdevs) {
		k = snprintf(buf + n, sizeof(buf) - n, " %s",
			     vm->vdevs[arg].name);
		n += k > 0 ? (size_t)k : 0;
	} else if (n < sizeof(buf) && phase == PHASE_JOIN) {
		k = snprintf(buf + n, sizeof(buf) - n, " %d", arg);
		n += k > 0 ? (size_t)k : 0;
	}
	for (unsigned i = 0; vm->vcpus && i < vm->o->cpus; i++) {
		int w = atomic_load(&vm->vcpus[i].where);

		if (n >= sizeof(buf) || !vm->vcpus[i].started)
			continue;
		k = snprintf(buf + n, sizeof(buf) - n, "; vCPU %u %s", i,
			     w >= 0 && w <= VCPU_GONE ? wheres[w] : "?");
		n += k > 0 ? (size_t)k : 0;
	}
	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* nothing left to tell it with */
	}
}

static void *watchdog_thread(void *arg)
{
	struct vm *vm = arg;
	const uint64_t warn = WATCHDOG_WARN_S * 1000000000ull;
	const uint64_t grace = WATCHDOG_GRACE_S * 1000000000ull;
	uint64_t deadline = 0, warn_at = 0;
	bool stopping = false, timed_out;
	struct pollfd p[2] = {{.fd = vm->watchdog_fd, .events = POLLIN},
			      {.fd = vm->stop_fd, .events = POLLIN}};

	if (vm->o->timeout > 0)
		deadline = cvmm_now_ns() + (uint64_t)(vm->o->timeout * 1e9) +
			   grace;
	for (;;) {
		uint64_t now = cvmm_now_ns(), next = deadline;
		int ms = -1, r;

		if (warn_at && (!next || warn_at < next))
			next = warn_at;
		if (next) {
			uint64_t d = next <= now ? 0
						 : (next - now) / 1000000 + 1;

			ms = d > 3600000 ? 3600000 : (int)d; /* poll again */
		}
		r = poll(p, stopping ? 1 : 2, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (p[0].revents & POLLIN))
			return NULL; /* cvmm_run is done (or cannot watch) */
		now = cvmm_now_ns(); /* poll may have waited long */
		if (!stopping && (p[1].revents & POLLIN)) {
			/* the stop eventfd is never drained: poll it once */
			stopping = true;
			warn_at = now + warn;
			if (!deadline || now + grace < deadline)
				deadline = now + grace;
			continue;
		}
		if (deadline && now >= deadline)
			break;
		if (warn_at && now >= warn_at) {
			watchdog_report(vm, false, false);
			watchdog_dump_all(vm);
			warn_at = 0;
		}
	}
	timed_out = vm->o->timeout > 0 &&
		    (!stopping || vm->exit_status == CVMM_EXIT_TIMEOUT);
	watchdog_report(vm, timed_out, true);
	if (!stopping)
		watchdog_dump_all(vm); /* not dumped at the warning */
	term_restore();
	_exit(timed_out ? CVMM_EXIT_TIMEOUT : CVMM_EXIT_ERROR);
}

/* Starts the watchdog (a failure to start it is reported, not fatal). */
static void watchdog_start(struct vm *vm)
{
	int e;
	void *frame;

	/* The first backtrace() may load the unwinder (malloc, dlopen):
	 * here, not later in a signal handler. */
	(void)backtrace(&frame, 1);
	vm->watchdog_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->watchdog_fd < 0) {
		fprintf(stderr, "cvmm: watchdog: eventfd: %s\n",
			strerror(errno));
		return;
	}
	e = pthread_create(&vm->watchdog, NULL, watchdog_thread, vm);
	if (e) {
		fprintf(stderr, "cvmm: watchdog: %s\n", strerror(e));
		close(vm->watchdog_fd);
		vm->watchdog_fd = -1;
		return;
	}
	vm->watchdog_started = true;
}

static void watchdog_stop(struct vm *vm)
{
	uint64_t one = 1;

	if (!vm->watchdog_started)
		return;
	if (write(vm->watchdog_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(vm->watchdog, NULL);
	else
		pthread_detach(vm->watchdog);
	close(vm->watchdog_fd);
	vm->watchdog_started = false;
}

/* Writes what the guest left in the output buffer, waiting for the fd. */
static void flush_output(struct vm *vm)
{
	int tries = 0;

	if (vm->o->console != CVMM_CONSOLE_SERIAL || !vm->uart)
		return;
	while (serial_output_flush(vm->uart) > 0 && tries++ < 200)
		usleep(5000);
}

int cvmm_run(struct cvmm_opts *o, uint64_t start_ns)
{
	struct vm vm;
	sigset_t mask, old;
	char rss_line[256] = "";
	int sig_fd = -1, r;
	unsigned i;

	memset(&vm, 0, sizeof(vm));
	vm.o = o;
	vm.start_ns = start_ns;
	vm.main_thread = pthread_self();
	vm.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm.out_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm.in_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm.poll_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	/* Termination signals come through a signalfd to the I/O thread;
	 * every thread created from here on has them blocked. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	if (vm.stop_fd < 0 || vm.out_fd < 0 || vm.in_fd < 0 || vm.poll_fd < 0 ||
	    sig_fd < 0) {
		fprintf(stderr, "cvmm: eventfd/signalfd: %s\n",
			strerror(errno));
		r = CVMM_EXIT_ERROR;
		goto out;
	}
	term_setup(o);

	vm.t_setup = cvmm_now_ns();
	if (setup_vm(&vm) < 0) {
		r = CVMM_EXIT_ERROR;
		goto out;
	}
	for (i = 0; i < o->cpus; i++) {
		int e = thread_start(&vm.vcpus[i].thread, &vm.vcpus[i].stack,
				     VCPU_STACK_SIZE, vcpu_thread,
				     &vm.vcpus[i]);

		if (e) {
			vm_stop(&vm, CVMM_EXIT_ERROR, "vCPU thread: %s",
				strerror(e));
			break;
		}
		vm.vcpus[i].started = true;
	}
	/* The kernel and initrd are copied into guest RAM: drop the file
	 * mappings, so they do not stay in cvmm's resident set (once the
	 * vCPUs run: unmapping them takes a while). */
	cvmm_opts_release(o);
	watchdog_start(&vm);
	set_phase(&vm, PHASE_LOOP, 0);
	io_loop(&vm, sig_fd);
	if (o->verbose)
		measure_rss(&vm, rss_line, sizeof(rss_line));
	/* Stop every vCPU: the flag is set, kicks make KVM_RUN return. */
	for (i = 0; i < o->cpus; i++) {
		if (!vm.vcpus[i].started)
			continue;
		kvm_vcpu_kick(vm.vcpus[i].obj);
	}
	for (i = 0; i < o->cpus; i++) {
		if (!vm.vcpus[i].started)
			continue;
		/* A vCPU thread may not have bound its kick signal yet when
		 * the first kick came: kick until it is gone. */
		set_phase(&vm, PHASE_JOIN, (int)i);
		while (pthread_tryjoin_np(vm.vcpus[i].thread, NULL) == EBUSY) {
			kvm_vcpu_kick(vm.vcpus[i].obj);
			usleep(1000);
		}
		thread_stack_free(&vm.vcpus[i].stack);
	}
	set_phase(&vm, PHASE_FLUSH, 0);
	flush_output(&vm);
	r = vm.exit_status;
	term_restore();
	if (o->verbose) {
		uint64_t first = atomic_load(&vm.first_run_ns);

		if (first)
			fprintf(stderr,
				"cvmm: start to first KVM_RUN %.3f ms (%u "
				"vCPUs, %llu MiB): arguments and files %.3f, "
				"VM %.3f, memory %.3f, irqchip and devices "
				"%.3f, vCPUs "
				"%.3f, kernel and boot data %.3f, threads "
				"%.3f\n",
				(double)(first - start_ns) / 1e6, o->cpus,
				(unsigned long long)(o->mem_size >> 20),
				(double)(vm.t_setup - start_ns) / 1e6,
				(double)(vm.t_vm - vm.t_setup) / 1e6,
				(double)(vm.t_mem - vm.t_vm) / 1e6,
				(double)(vm.t_dev - vm.t_mem) / 1e6,
				(double)(vm.t_vcpu - vm.t_dev) / 1e6,
				(double)(vm.t_load - vm.t_vcpu) / 1e6,
				(double)(first - vm.t_load) / 1e6);
		fputs(rss_line, stderr);
		print_exits(&vm);
		cvmm_irq_report(vm.irq);
		cvmm_vsock_report();
		cvmm_vhost_user_report();
	}
	if (r != CVMM_EXIT_OK || o->verbose)
		fprintf(stderr, "cvmm: %s\n", vm.exit_reason);
out:
	set_phase(&vm, PHASE_TEARDOWN, 0);
	teardown(&vm);
	watchdog_stop(&vm);
	free(vm.vcpus);
	term_restore();
	if (sig_fd >= 0)
		close(sig_fd);
	if (vm.stop_fd >= 0)
		close(vm.stop_fd);
	if (vm.out_fd >= 0)
		close(vm.out_fd);
	if (vm.in_fd >= 0)
		close(vm.in_fd);
	if (vm.poll_fd >= 0)
		close(vm.poll_fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}
