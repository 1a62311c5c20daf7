/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * lab-launch: a TEST-ONLY, TEMPORARY KVM launcher for the nested lab.
 *
 * It exists so that the lab can prove, against a real Linux guest, what the
 * project's libraries do before cvmm (examples/vmm) can boot Linux itself; a
 * later issue replaces it with cvmm.  It is not part of any library and is
 * never installed.
 *
 * Built on the project's libraries:
 *  - libvm-memory: guest RAM is one guest_region (gpa 0); every boot
 *    structure, the kernel and the initrd are written through guest_memory;
 *    the KVM memory slot uses guest_region_host_addr().
 *  - libkvm-ioctls: system, VM and vCPU objects, CPUID, register state,
 *    kvm_vcpu_run() with decoded exits, kvm_vcpu_kick() for the timer tick.
 *  - libdevices: every port I/O exit goes to a port io_bus holding the
 *    16550A on 0x3f8 (IRQ 4), the i8042 on 0x60/0x64 (its reset callback
 *    ends the run: that is how the guest reboots), the CMOS RTC on
 *    0x70/0x71 (IRQ 8, polled on every tick) and the PCI root's
 *    configuration mechanism #1 on 0xcf8-0xcff (host bridge 00:00.0 only).
 *    Unclaimed ports take the bus default (reads all-ones, writes ignored).
 *    MMIO exits go to an MMIO io_bus (empty: all-ones).  Interrupt lines are
 *    struct irq_line callbacks driving KVM_IRQ_LINE (level: assert and
 *    deassert).
 *
 * Boot: the 64-bit boot protocol (protected-mode kernel at 1 MiB, entry at
 * +0x200, identity-mapped 4 GiB, zero page with e820, command line and an
 * initrd at the top of RAM), in-kernel irqchip and PIT, and KVM's CPUID
 * signature so the guest uses kvmclock.  Every guest line is relayed to
 * stdout behind a prefix, so a guest cannot forge the lab's result markers.
 *
 * Exit status: 0 when the guest reset the machine (the launcher prints
 * "guest reset (i8042)" for the keyboard controller path, "guest shutdown"
 * for a triple fault), 2 on timeout, 1 on any error.
 */
#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/i8042.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/pci.h>
#include <cvmm/devices/rtc.h>
#include <cvmm/devices/serial.h>
#include <cvmm/kvm-ioctls.h>
#include <cvmm/vm-memory.h>

#define LL_GDT_ADDR	  0x500ULL
#define LL_PML4_ADDR	  0x1000ULL
#define LL_PDPT_ADDR	  0x2000ULL
#define LL_PD_ADDR	  0x3000ULL /* four page directories: 0x3000-0x6fff */
#define LL_ZERO_PAGE_ADDR 0x7000ULL
#define LL_STACK_ADDR	  0x8ff0ULL
#define LL_CMDLINE_ADDR	  0x20000ULL
#define LL_CMDLINE_MAX	  4096U
#define LL_KERNEL_ADDR	  0x100000ULL
#define LL_TSS_ADDR	  0xfffbd000ULL
#define LL_E820_RAM	  1U
#define LL_E820_RESERVED  2U
#define LL_COM1		  0x3f8
#define LL_COM1_IRQ	  4
#define LL_KBD_IRQ	  1
#define LL_RTC_IRQ	  8
#define LL_TICK_US	  100000 /* timeout check and RTC poll period */
#define LL_KICK_SIGNAL	  SIGUSR1

/* One wired line: an irq_line's opaque. */
struct ll_irq {
	struct kvm_vm_obj *vm;
	uint32_t gsi;
	uint64_t edges; /* assertions, for the summary */
};

/* The guest's console, relayed line by line behind a prefix. */
struct ll_console {
	char line[512];
	size_t len;
	const char *prefix;
};

/* Ports no device claimed (the bus default's accesses), for the summary. */
#define LL_UNCLAIMED_MAX 32
struct ll_unclaimed {
	struct {
		uint16_t port;
		uint64_t count;
	} port[LL_UNCLAIMED_MAX];
	unsigned n;
	uint64_t other; /* accesses to ports beyond the table */
};

struct ll_vm {
	struct kvm_sys *sys;
	struct kvm_vm_obj *vm;
	struct kvm_vcpu_obj *vcpu;
	struct guest_region *ram;
	struct guest_memory *mem;
	uint64_t mem_size;
	struct io_bus *pio, *mmio;
	struct serial *uart;
	struct i8042 *kbd;
	struct cmos_rtc *rtc;
	struct pci_root *pci;
	struct ll_irq irq_com1, irq_kbd, irq_rtc;
	struct ll_console con;
	struct ll_unclaimed unclaimed;
	bool reset_requested;
	uint64_t pio_exits, mmio_exits;
};

static volatile sig_atomic_t ll_ticked;
static struct kvm_vcpu_obj *ll_vcpu_for_signal;

static void ll_on_alarm(int sig)
{
	(void)sig;
	ll_ticked = 1;
	if (ll_vcpu_for_signal)
		kvm_vcpu_kick(ll_vcpu_for_signal); /* async-signal-safe */
}

static void die(const char *what)
{
	fprintf(stderr, "lab-launch: %s\n", what);
	exit(1);
}

/* Dies with the library's negative errno in the message. */
static void check(int ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "lab-launch: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

static uint8_t *read_file(const char *path, size_t *size)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		check(-errno, path);
	if (st.st_size <= 0)
		die("empty file");
	buf = malloc((size_t)st.st_size);
	if (!buf)
		die("out of memory");
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			check(n < 0 ? -errno : -EIO, path);
		done += (size_t)n;
	}
	close(fd);
	*size = done;
	return buf;
}

/* ------------------------------------------------------------ console */

static void console_flush(struct ll_console *c)
{
	if (!c->len)
		return;
	printf("%s%.*s\n", c->prefix, (int)c->len, c->line);
	fflush(stdout);
	c->len = 0;
}

static void console_putc(struct ll_console *c, uint8_t ch)
{
	if (ch == '\r')
		return;
	if (ch == '\n') {
		if (!c->len) {
			printf("%s\n", c->prefix);
			fflush(stdout);
		}
		console_flush(c);
		return;
	}
	c->line[c->len++] = (char)ch;
	if (c->len == sizeof(c->line))
		console_flush(c);
}

/* serial_config.out: bytes the guest transmitted on COM1. */
static void console_out(void *opaque, const uint8_t *buf, size_t len)
{
	struct ll_console *c = opaque;
	size_t i;

	for (i = 0; i < len; i++)
		console_putc(c, buf[i]);
}

/* ------------------------------------------------------- interrupts */

/* irq_line.set: the device's level goes straight to KVM_IRQ_LINE. */
static int ll_irq_set(void *opaque, bool level)
{
	struct ll_irq *l = opaque;

	if (level)
		l->edges++;
	return kvm_vm_irq_line(l->vm, l->gsi, level ? 1 : 0);
}

static struct irq_line ll_irq_line(struct ll_irq *l, struct kvm_vm_obj *vm,
				   uint32_t gsi)
{
	l->vm = vm;
	l->gsi = gsi;
	return (struct irq_line){.set = ll_irq_set, .opaque = l};
}

/* i8042 reset callback: the guest asked for a CPU reset. */
static void ll_on_reset(void *opaque)
{
	struct ll_vm *v = opaque;

	v->reset_requested = true;
}

/* ------------------------------------------------------------ devices */

static void unclaimed_note(struct ll_unclaimed *u, uint64_t port)
{
	unsigned i;

	for (i = 0; i < u->n; i++) {
		if (u->port[i].port == port) {
			u->port[i].count++;
			return;
		}
	}
	if (u->n == LL_UNCLAIMED_MAX) {
		u->other++;
		return;
	}
	u->port[u->n].port = (uint16_t)port;
	u->port[u->n].count = 1;
	u->n++;
}

/* The port bus's default: as the built-in one (reads all-ones, writes
 * ignored), and remembers which ports the guest probed. */
static void unclaimed_read(void *opaque, uint64_t addr, void *data,
			   unsigned size)
{
	unclaimed_note(opaque, addr);
	memset(data, 0xff, size);
}

static void unclaimed_write(void *opaque, uint64_t addr, const void *data,
			    unsigned size)
{
	(void)data;
	(void)size;
	unclaimed_note(opaque, addr);
}

static const struct io_bus_ops unclaimed_ops = {
	.read = unclaimed_read,
	.write = unclaimed_write,
};

static void unclaimed_print(const struct ll_unclaimed *u)
{
	unsigned i;

	if (!u->n)
		return;
	fprintf(stderr, "lab-launch: unclaimed ports (accesses):");
	for (i = 0; i < u->n; i++)
		fprintf(stderr, " 0x%x (%llu)", u->port[i].port,
			(unsigned long long)u->port[i].count);
	if (u->other)
		fprintf(stderr, " others (%llu)", (unsigned long long)u->other);
	fprintf(stderr, "\n");
}

static void setup_devices(struct ll_vm *v)
{
	struct serial_config scfg = {0};
	struct i8042_config kcfg = {0};
	struct cmos_rtc_config rcfg = {0};
	struct pci_root_config pcfg = {0};

	check(io_bus_create(&v->pio), "io_bus_create (pio)");
	check(io_bus_create(&v->mmio), "io_bus_create (mmio)");
	check(io_bus_set_default(v->pio, &unclaimed_ops, &v->unclaimed), "io_"
									 "bus_"
									 "set_"
									 "defau"
									 "lt");

	scfg.irq = ll_irq_line(&v->irq_com1, v->vm, LL_COM1_IRQ);
	scfg.out = console_out;
	scfg.out_opaque = &v->con;
	check(serial_create(&scfg, &v->uart), "serial_create");
	check(io_bus_register(v->pio, LL_COM1, SERIAL_NR_REGS, serial_bus_ops(),
			      v->uart),
	      "register COM1");

	kcfg.kbd_irq = ll_irq_line(&v->irq_kbd, v->vm, LL_KBD_IRQ);
	kcfg.reset = ll_on_reset;
	kcfg.reset_opaque = v;
	check(i8042_create(&kcfg, &v->kbd), "i8042_create");
	check(i8042_register(v->kbd, v->pio, I8042_DATA_PORT, I8042_CMD_PORT),
	      "register i8042");

	rcfg.irq = ll_irq_line(&v->irq_rtc, v->vm, LL_RTC_IRQ);
	check(cmos_rtc_create(&rcfg, &v->rtc), "cmos_rtc_create");
	check(io_bus_register(v->pio, CMOS_RTC_PORT, 2, cmos_rtc_bus_ops(),
			      v->rtc),
	      "register RTC");

	/* Host bridge only: no allocators are needed (no BARs). */
	pcfg.pio_bus = v->pio;
	pcfg.mmio_bus = v->mmio;
	check(pci_root_create(&pcfg, &v->pci), "pci_root_create");
	check(pci_root_register_pio(v->pci, v->pio), "register PCI conf1");
}

static void teardown_devices(struct ll_vm *v)
{
	/* Single-threaded: no dispatch is running, unregister cannot wait. */
	io_bus_unregister(v->pio, PCI_CONFIG_ADDRESS_PORT);
	io_bus_unregister(v->pio, CMOS_RTC_PORT);
	io_bus_unregister(v->pio, I8042_DATA_PORT);
	io_bus_unregister(v->pio, I8042_CMD_PORT);
	io_bus_unregister(v->pio, LL_COM1);
	pci_root_destroy(v->pci);
	cmos_rtc_destroy(v->rtc);
	i8042_destroy(v->kbd);
	serial_destroy(v->uart);
	io_bus_destroy(v->mmio);
	io_bus_destroy(v->pio);
}

/* KVM_EXIT_IO: each element of a (string) access goes to the port bus. */
static void handle_pio(struct ll_vm *v, const struct kvm_exit_info *e)
{
	uint32_t i;
	uint8_t *data = e->io.data;

	v->pio_exits++;
	for (i = 0; i < e->io.count; i++, data += e->io.size) {
		if (e->io.in)
			io_bus_read(v->pio, e->io.port, data, e->io.size);
		else
			io_bus_write(v->pio, e->io.port, data, e->io.size);
	}
}

static void handle_mmio(struct ll_vm *v, const struct kvm_exit_info *e)
{
	unsigned size = e->mmio.len;

	v->mmio_exits++;
	if (size != 1 && size != 2 && size != 4 && size != 8) {
		if (!e->mmio.write)
			memset(e->mmio.data, 0xff, size);
		return;
	}
	if (e->mmio.write)
		io_bus_write(v->mmio, e->mmio.gpa, e->mmio.data, size);
	else
		io_bus_read(v->mmio, e->mmio.gpa, e->mmio.data, size);
}

/* ------------------------------------------------------------- boot */

static void put64(struct ll_vm *v, uint64_t gpa, uint64_t val)
{
	check(guest_memory_write_u64(v->mem, gpa, val), "guest_memory_write");
}

static void setup_page_tables_and_gdt(struct ll_vm *v)
{
	unsigned int i;

	/* Identity map of the first 4 GiB with 2 MiB pages. */
	put64(v, LL_PML4_ADDR, LL_PDPT_ADDR | 0x3);
	for (i = 0; i < 4; i++)
		put64(v, LL_PDPT_ADDR + i * 8ULL,
		      (LL_PD_ADDR + i * 0x1000ULL) | 0x3);
	for (i = 0; i < 4 * 512; i++)
		put64(v, LL_PD_ADDR + i * 8ULL, ((uint64_t)i << 21) | 0x83);

	put64(v, LL_GDT_ADDR, 0);
	put64(v, LL_GDT_ADDR + 8, 0);
	put64(v, LL_GDT_ADDR + 16, 0x00af9b000000ffffULL); /* 0x10: code64 */
	put64(v, LL_GDT_ADDR + 24, 0x00cf93000000ffffULL); /* 0x18: data */
}

static void setup_vcpu_state(struct ll_vm *v)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_segment code = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = 0x10,
		.type = 11,
		.present = 1,
		.dpl = 0,
		.db = 0,
		.s = 1,
		.l = 1,
		.g = 1,
	};
	struct kvm_segment data = code;

	data.selector = 0x18;
	data.type = 3;
	data.l = 0;
	data.db = 1;

	check(kvm_vcpu_get_sregs(v->vcpu, &sregs), "KVM_GET_SREGS");
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.gdt.base = LL_GDT_ADDR;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr3 = LL_PML4_ADDR;
	sregs.cr4 = 0x20;	/* PAE */
	sregs.cr0 = 0x80000011; /* PG, ET, PE */
	sregs.efer = 0x500;	/* LME, LMA */
	check(kvm_vcpu_set_sregs(v->vcpu, &sregs), "KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = LL_KERNEL_ADDR + 0x200; /* 64-bit entry point */
	regs.rsi = LL_ZERO_PAGE_ADDR;
	regs.rsp = LL_STACK_ADDR;
	regs.rflags = 0x2;
	check(kvm_vcpu_set_regs(v->vcpu, &regs), "KVM_SET_REGS");
}

static void setup_cpuid(struct ll_vm *v)
{
	struct kvm_cpuid2 *c;
	struct kvm_cpuid_entry2 *e;

	check(kvm_sys_get_supported_cpuid(v->sys, &c), "KVM_GET_SUPPORTED_"
						       "CPUID");
	e = kvm_cpuid2_find(c, 1, 0);
	if (e)
		e->ecx |= 1U << 31; /* hypervisor present */
	e = kvm_cpuid2_find(c, 0x40000000, 0);
	if (e) {
		/* KVM's signature, so the guest uses kvmclock instead of
		 * calibrating its TSC against the PIT. */
		e->eax = 0x40000001;
		e->ebx = 0x4b4d564b; /* "KVMK" */
		e->ecx = 0x564b4d56; /* "VMKV" */
		e->edx = 0x0000004d; /* "M" */
	}
	check(kvm_vcpu_set_cpuid2(v->vcpu, c), "KVM_SET_CPUID2");
	free(c);
}

static void load_kernel(struct ll_vm *v, const char *kernel_path,
			const char *initrd_path, const char *cmdline)
{
	struct boot_params bp;
	size_t ksize, isize, hdr_len, setup_size, pm_size;
	uint8_t *k = read_file(kernel_path, &ksize);
	uint8_t *initrd = read_file(initrd_path, &isize);
	uint32_t magic, init_size, initrd_max;
	uint64_t pref, kernel_end;
	uint64_t initrd_addr;
	unsigned int setup_sects;
	size_t clen = strlen(cmdline);

	if (ksize < 0x270)
		die("kernel image too small");
	memcpy(&magic, k + 0x202, sizeof(magic));
	if (magic != 0x53726448) /* "HdrS" */
		die("not a bzImage (no HdrS)");
	if ((k[0x206] | (k[0x207] << 8)) < 0x20c)
		die("boot protocol older than 2.12");
	if (!(k[0x236] & 0x01))
		die("kernel has no 64-bit entry point (XLF_KERNEL_64)");
	setup_sects = k[0x1f1] ? k[0x1f1] : 4;
	setup_size = (setup_sects + 1) * 512ULL;
	if (setup_size >= ksize)
		die("kernel image truncated");
	pm_size = ksize - setup_size;
	memcpy(&init_size, k + 0x260, sizeof(init_size));
	if (init_size < pm_size)
		init_size = (uint32_t)pm_size;
	/* The decompressor may move the kernel to pref_address and needs
	 * init_size bytes from there; keep the initrd out of that range. */
	memcpy(&pref, k + 0x258, sizeof(pref));
	if (pref < LL_KERNEL_ADDR || pref > v->mem_size)
		pref = LL_KERNEL_ADDR;
	kernel_end = pref + init_size;
	if (kernel_end > v->mem_size / 2)
		die("guest memory too small for the kernel");
	check(guest_memory_write(v->mem, LL_KERNEL_ADDR, k + setup_size,
				 pm_size),
	      "load kernel");

	memset(&bp, 0, sizeof(bp));
	hdr_len = 0x202 + k[0x201] - 0x1f1;
	if (hdr_len > sizeof(bp.hdr))
		hdr_len = sizeof(bp.hdr);
	memcpy(&bp.hdr, k + 0x1f1, hdr_len);
	bp.hdr.type_of_loader = 0xff;
	bp.hdr.vid_mode = 0xffff;
	bp.hdr.loadflags |= 0x80; /* CAN_USE_HEAP */
	bp.hdr.heap_end_ptr = 0xfe00;

	if (clen + 1 > LL_CMDLINE_MAX || clen + 1 > bp.hdr.cmdline_size + 1U)
		die("command line too long");
	check(guest_memory_write(v->mem, LL_CMDLINE_ADDR, cmdline, clen + 1),
	      "write command line");
	bp.hdr.cmd_line_ptr = (uint32_t)LL_CMDLINE_ADDR;

	initrd_max = bp.hdr.initrd_addr_max ? bp.hdr.initrd_addr_max
					    : 0x37ffffff;
	initrd_addr = v->mem_size;
	if (initrd_addr > (uint64_t)initrd_max + 1)
		initrd_addr = (uint64_t)initrd_max + 1;
	if (isize > initrd_addr ||
	    ((initrd_addr - isize) & ~0xfffULL) < kernel_end)
		die("guest memory too small for the initrd");
	initrd_addr = (initrd_addr - isize) & ~0xfffULL;
	check(guest_memory_write(v->mem, initrd_addr, initrd, isize), "load "
								      "initrd");
	bp.hdr.ramdisk_image = (uint32_t)initrd_addr;
	bp.hdr.ramdisk_size = (uint32_t)isize;

	bp.e820_table[0] = (struct boot_e820_entry){0, 0x9fc00, LL_E820_RAM};
	bp.e820_table[1] =
		(struct boot_e820_entry){0x9fc00, 0x400, LL_E820_RESERVED};
	bp.e820_table[2] =
		(struct boot_e820_entry){0xf0000, 0x10000, LL_E820_RESERVED};
	bp.e820_table[3] = (struct boot_e820_entry){
		LL_KERNEL_ADDR, v->mem_size - LL_KERNEL_ADDR, LL_E820_RAM};
	bp.e820_entries = 4;
	check(guest_memory_write(v->mem, LL_ZERO_PAGE_ADDR, &bp, sizeof(bp)),
	      "write zero page");

	free(k);
	free(initrd);
}

static void setup_vm(struct ll_vm *v)
{
	struct guest_region_params rp = {
		.gpa = 0,
		.size = v->mem_size,
		.backing = GUEST_REGION_ANON_PRIVATE,
		.flags = GUEST_REGION_NORESERVE,
	};

	check(kvm_sys_create(&v->sys), "/dev/kvm");
	check(kvm_vm_create(v->sys, 0, &v->vm), "KVM_CREATE_VM");
	check(kvm_vm_set_tss_addr(v->vm, LL_TSS_ADDR), "KVM_SET_TSS_ADDR");
	check(kvm_vm_create_irqchip(v->vm), "KVM_CREATE_IRQCHIP");
	check(kvm_vm_create_pit2(v->vm, 0), "KVM_CREATE_PIT2");

	check(guest_region_create(&rp, &v->ram), "guest_region_create");
	check(guest_memory_create(&v->ram, 1, &v->mem), "guest_memory_create");
	check(kvm_vm_set_user_memory_region(v->vm, 0, 0,
					    guest_region_gpa(v->ram),
					    guest_region_size(v->ram),
					    guest_region_host_addr(v->ram)),
	      "KVM_SET_USER_MEMORY_REGION");

	check(kvm_vcpu_create(v->vm, 0, &v->vcpu), "KVM_CREATE_VCPU");
	check(kvm_vcpu_kick_bind(v->vcpu, LL_KICK_SIGNAL), "kvm_vcpu_kick_"
							   "bind");
}

static void teardown_vm(struct ll_vm *v)
{
	kvm_vcpu_destroy(v->vcpu);
	kvm_vm_destroy(v->vm);
	kvm_sys_destroy(v->sys);
	guest_memory_unref(v->mem);
	guest_region_unref(v->ram);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start_ticks(struct ll_vm *v)
{
	struct sigaction sa;
	struct itimerval it;

	ll_vcpu_for_signal = v->vcpu;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ll_on_alarm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		check(-errno, "sigaction");
	it.it_interval.tv_sec = 0;
	it.it_interval.tv_usec = LL_TICK_US;
	it.it_value = it.it_interval;
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		check(-errno, "setitimer");
}

static void stop_ticks(void)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	ll_vcpu_for_signal = NULL;
}

/* Runs the vCPU until reset, shutdown, error or timeout; the exit status. */
static int run_guest(struct ll_vm *v, long timeout)
{
	double start = now_s();
	struct kvm_exit_info e;

	for (;;) {
		int ret;

		if (ll_ticked) {
			ll_ticked = 0;
			cmos_rtc_poll(v->rtc);
			if (now_s() - start > (double)timeout) {
				console_flush(&v->con);
				fprintf(stderr,
					"lab-launch: timeout after %ld s\n",
					timeout);
				return 2;
			}
		}
		ret = kvm_vcpu_run(v->vcpu, &e);
		if (ret < 0) {
			console_flush(&v->con);
			check(ret, "KVM_RUN");
		}
		switch (e.reason) {
		case KVM_EXIT_IO:
			handle_pio(v, &e);
			if (!v->reset_requested)
				continue;
			console_flush(&v->con);
			fprintf(stderr,
				"lab-launch: guest reset (i8042) after %.1f "
				"s\n",
				now_s() - start);
			return 0;
		case KVM_EXIT_MMIO:
			handle_mmio(v, &e);
			continue;
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_SHUTDOWN:
		case KVM_EXIT_SYSTEM_EVENT:
			console_flush(&v->con);
			fprintf(stderr,
				"lab-launch: guest shutdown (exit %s) after "
				"%.1f s\n",
				kvm_exit_reason_name(e.reason),
				now_s() - start);
			return 0;
		case KVM_EXIT_HLT:
			console_flush(&v->con);
			fprintf(stderr, "lab-launch: guest halted\n");
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			console_flush(&v->con);
			fprintf(stderr,
				"lab-launch: entry failed, reason 0x%llx\n",
				(unsigned long long)e.fail_entry
					.hardware_entry_failure_reason);
			return 1;
		case KVM_EXIT_INTERNAL_ERROR:
			console_flush(&v->con);
			fprintf(stderr, "lab-launch: internal error %u\n",
				e.internal.suberror);
			return 1;
		default:
			console_flush(&v->con);
			fprintf(stderr, "lab-launch: unhandled exit %s (%u)\n",
				kvm_exit_reason_name(e.reason), e.reason);
			return 1;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: lab-launch [-m MiB] [-t seconds] [-p prefix] "
			"[-a cmdline] bzImage initrd\n"
			"TEST-ONLY temporary launcher of the nested lab "
			"(replaced by cvmm).\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *cmdline = "console=ttyS0 panic=-1 reboot=k nokaslr quiet";
	struct ll_vm v;
	long timeout = 120;
	int opt, rc;

	memset(&v, 0, sizeof(v));
	v.mem_size = 256ULL << 20;
	v.con.prefix = "guest| ";
	while ((opt = getopt(argc, argv, "m:t:p:a:")) != -1) {
		switch (opt) {
		case 'm':
			v.mem_size = strtoull(optarg, NULL, 0) << 20;
			if (v.mem_size < (64ULL << 20) ||
			    v.mem_size > (2048ULL << 20))
				die("memory must be 64..2048 MiB");
			break;
		case 't':
			timeout = strtol(optarg, NULL, 0);
			break;
		case 'p':
			v.con.prefix = optarg;
			break;
		case 'a':
			cmdline = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();

	setup_vm(&v);
	setup_devices(&v);
	setup_cpuid(&v);
	setup_page_tables_and_gdt(&v);
	load_kernel(&v, argv[optind], argv[optind + 1], cmdline);
	setup_vcpu_state(&v);

	start_ticks(&v);
	rc = run_guest(&v, timeout);
	stop_ticks();

	fprintf(stderr,
		"lab-launch: %llu port I/O exits (%llu unclaimed), %llu MMIO "
		"exits (%llu unclaimed); IRQ assertions: COM1 %llu, i8042 "
		"%llu, RTC %llu; i8042 resets %u; RTC offset %lld s\n",
		(unsigned long long)v.pio_exits,
		(unsigned long long)io_bus_unhandled_count(v.pio),
		(unsigned long long)v.mmio_exits,
		(unsigned long long)io_bus_unhandled_count(v.mmio),
		(unsigned long long)v.irq_com1.edges,
		(unsigned long long)v.irq_kbd.edges,
		(unsigned long long)v.irq_rtc.edges, i8042_reset_count(v.kbd),
		(long long)cmos_rtc_offset_seconds(v.rtc));
	unclaimed_print(&v.unclaimed);
	teardown_devices(&v);
	teardown_vm(&v);
	return rc;
}
