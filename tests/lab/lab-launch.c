/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * lab-launch: a TEST-ONLY, TEMPORARY minimal KVM launcher for the nested lab.
 *
 * It exists so that the lab can prove "a stock Linux guest boots under the
 * lab's KVM" before cvmm (examples/vmm) can do it; a later issue replaces
 * it with cvmm.  It is not part of any library, is never installed, and
 * deliberately uses raw KVM ioctls only.
 *
 * What it does: loads a bzImage through the 64-bit boot protocol (the
 * protected-mode kernel at 1 MiB, entry at +0x200, a zero page with e820,
 * the command line and an initrd), creates the in-kernel irqchip and PIT,
 * and emulates a 16550 UART on 0x3f8 (IRQ 4) by handling PIO exits.  Every
 * line the guest prints is relayed to stdout behind a prefix, so a guest
 * cannot forge the lab's own result markers.
 *
 * Exit status: 0 when the guest reset the machine (i8042 0xfe on port 0x64
 * or a triple fault, i.e. `reboot -f`), 2 on timeout, 1 on any error.
 */
#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LL_GDT_ADDR	  0x500ULL
#define LL_PML4_ADDR	  0x1000ULL
#define LL_PDPT_ADDR	  0x2000ULL
#define LL_PD_ADDR	  0x3000ULL /* four page directories: 0x3000-0x6fff */
#define LL_ZERO_PAGE_ADDR 0x7000ULL
#define LL_STACK_ADDR	  0x8ff0ULL
#define LL_CMDLINE_ADDR	  0x20000ULL
#define LL_CMDLINE_MAX	  4096U
#define LL_KERNEL_ADDR	  0x100000ULL
#define LL_E820_RAM	  1U
#define LL_E820_RESERVED  2U
#define LL_COM1		  0x3f8
#define LL_COM1_IRQ	  4

struct ll_uart {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending;
	int level;
	char line[512];
	size_t len;
	const char *prefix;
};

struct ll_vm {
	int kvm, vm, vcpu;
	uint8_t *mem;
	uint64_t mem_size;
	struct kvm_run *run;
	struct ll_uart uart;
};

static volatile sig_atomic_t ll_ticked;
static struct kvm_run *ll_run_for_signal;

static void ll_on_alarm(int sig)
{
	(void)sig;
	ll_ticked = 1;
	if (ll_run_for_signal)
		ll_run_for_signal->immediate_exit = 1;
}

static void die_errno(const char *what)
{
	fprintf(stderr, "lab-launch: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void die(const char *what)
{
	fprintf(stderr, "lab-launch: %s\n", what);
	exit(1);
}

static uint8_t *read_file(const char *path, size_t *size)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		die_errno(path);
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
			die_errno(path);
		done += (size_t)n;
	}
	close(fd);
	*size = done;
	return buf;
}

static void uart_flush(struct ll_uart *u)
{
	if (!u->len)
		return;
	printf("%s%.*s\n", u->prefix, (int)u->len, u->line);
	fflush(stdout);
	u->len = 0;
}

static void uart_putc(struct ll_uart *u, uint8_t c)
{
	if (c == '\r')
		return;
	if (c == '\n') {
		if (!u->len) {
			printf("%s\n", u->prefix);
			fflush(stdout);
		}
		uart_flush(u);
		return;
	}
	u->line[u->len++] = (char)c;
	if (u->len == sizeof(u->line))
		uart_flush(u);
}

static void uart_update_irq(struct ll_vm *v)
{
	struct ll_uart *u = &v->uart;
	int level = (u->ier & 0x02) && u->thre_pending;
	struct kvm_irq_level irq = {.irq = LL_COM1_IRQ,
				    .level = (uint32_t)level};

	if (level == u->level)
		return;
	u->level = level;
	if (ioctl(v->vm, KVM_IRQ_LINE, &irq) < 0)
		die_errno("KVM_IRQ_LINE");
}

static uint8_t uart_read(struct ll_vm *v, unsigned int off)
{
	struct ll_uart *u = &v->uart;
	bool dlab = u->lcr & 0x80;
	uint8_t val = 0;

	switch (off) {
	case 0:
		val = dlab ? u->dll : 0; /* nothing is ever received */
		break;
	case 1:
		val = dlab ? u->dlm : u->ier;
		break;
	case 2:
		val = (u->fcr & 0x01) ? 0xc0 : 0x00;
		if ((u->ier & 0x02) && u->thre_pending) {
			val |= 0x02; /* THR empty; reading IIR clears it */
			u->thre_pending = false;
		} else {
			val |= 0x01; /* no interrupt pending */
		}
		break;
	case 3:
		val = u->lcr;
		break;
	case 4:
		val = u->mcr;
		break;
	case 5:
		val = 0x60; /* THR empty, transmitter empty */
		break;
	case 6:
		/* Loopback: report the modem outputs as inputs. */
		if (u->mcr & 0x10)
			val = (uint8_t)(((u->mcr & 0x0c) << 4) |
					((u->mcr & 0x01) << 5) |
					((u->mcr & 0x02) << 3));
		else
			val = 0xb0; /* DCD, DSR, CTS */
		break;
	default:
		val = u->scr;
		break;
	}
	uart_update_irq(v);
	return val;
}

static void uart_write(struct ll_vm *v, unsigned int off, uint8_t val)
{
	struct ll_uart *u = &v->uart;
	bool dlab = u->lcr & 0x80;

	switch (off) {
	case 0:
		if (dlab) {
			u->dll = val;
		} else {
			uart_putc(u, val);
			u->thre_pending = true;
		}
		break;
	case 1:
		if (dlab) {
			u->dlm = val;
		} else {
			if ((val & 0x02) && !(u->ier & 0x02))
				u->thre_pending = true;
			u->ier = val & 0x0f;
		}
		break;
	case 2:
		u->fcr = val;
		break;
	case 3:
		u->lcr = val;
		break;
	case 4:
		u->mcr = val & 0x1f;
		break;
	case 7:
		u->scr = val;
		break;
	default:
		break;
	}
	uart_update_irq(v);
}

/* Returns true when the guest asked for a reset. */
static bool handle_io(struct ll_vm *v)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	uint32_t i;
	bool reset = false;

	for (i = 0; i < r->io.count; i++, data += r->io.size) {
		uint16_t port = r->io.port;
		bool uart = port >= LL_COM1 && port < LL_COM1 + 8 &&
			    r->io.size == 1;

		if (r->io.direction == KVM_EXIT_IO_OUT) {
			if (uart)
				uart_write(v, port - LL_COM1, data[0]);
			else if (port == 0x64 && r->io.size == 1 &&
				 data[0] == 0xfe)
				reset = true;
		} else {
			if (uart)
				data[0] = uart_read(v, port - LL_COM1);
			else if (port == 0x64)
				memset(data, 0x00, r->io.size);
			else
				memset(data, 0xff, r->io.size);
		}
	}
	return reset;
}

static void put64(struct ll_vm *v, uint64_t addr, uint64_t val)
{
	memcpy(v->mem + addr, &val, sizeof(val));
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

	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
		die_errno("KVM_GET_SREGS");
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.gdt.base = LL_GDT_ADDR;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr3 = LL_PML4_ADDR;
	sregs.cr4 = 0x20;	/* PAE */
	sregs.cr0 = 0x80000011; /* PG, ET, PE */
	sregs.efer = 0x500;	/* LME, LMA */
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0)
		die_errno("KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = LL_KERNEL_ADDR + 0x200; /* 64-bit entry point */
	regs.rsi = LL_ZERO_PAGE_ADDR;
	regs.rsp = LL_STACK_ADDR;
	regs.rflags = 0x2;
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
		die_errno("KVM_SET_REGS");
}

static void setup_cpuid(struct ll_vm *v)
{
	unsigned int nent = 128, i;
	struct kvm_cpuid2 *c;

	for (;;) {
		c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			die("out of memory");
		c->nent = nent;
		if (ioctl(v->kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		if (errno != E2BIG || nent >= 4096)
			die_errno("KVM_GET_SUPPORTED_CPUID");
		free(c);
		nent *= 2;
	}
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1) {
			e->ecx |= 1U << 31; /* hypervisor present */
		} else if (e->function == 0x40000000) {
			/* KVM's signature, so the guest uses kvmclock instead
			 * of calibrating its TSC against the PIT. */
			e->eax = 0x40000001;
			e->ebx = 0x4b4d564b; /* "KVMK" */
			e->ecx = 0x564b4d56; /* "VMKV" */
			e->edx = 0x0000004d; /* "M" */
		}
	}
	if (ioctl(v->vcpu, KVM_SET_CPUID2, c) < 0)
		die_errno("KVM_SET_CPUID2");
	free(c);
}

static void load_kernel(struct ll_vm *v, const char *kernel_path,
			const char *initrd_path, const char *cmdline)
{
	struct boot_params *bp =
		(struct boot_params *)(v->mem + LL_ZERO_PAGE_ADDR);
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
	memcpy(v->mem + LL_KERNEL_ADDR, k + setup_size, pm_size);

	memset(bp, 0, sizeof(*bp));
	hdr_len = 0x202 + k[0x201] - 0x1f1;
	if (hdr_len > sizeof(bp->hdr))
		hdr_len = sizeof(bp->hdr);
	memcpy(&bp->hdr, k + 0x1f1, hdr_len);
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.vid_mode = 0xffff;
	bp->hdr.loadflags |= 0x80; /* CAN_USE_HEAP */
	bp->hdr.heap_end_ptr = 0xfe00;

	if (clen + 1 > LL_CMDLINE_MAX || clen + 1 > bp->hdr.cmdline_size + 1U)
		die("command line too long");
	memcpy(v->mem + LL_CMDLINE_ADDR, cmdline, clen + 1);
	bp->hdr.cmd_line_ptr = (uint32_t)LL_CMDLINE_ADDR;

	initrd_max = bp->hdr.initrd_addr_max ? bp->hdr.initrd_addr_max
					     : 0x37ffffff;
	initrd_addr = v->mem_size;
	if (initrd_addr > (uint64_t)initrd_max + 1)
		initrd_addr = (uint64_t)initrd_max + 1;
	if (isize > initrd_addr ||
	    ((initrd_addr - isize) & ~0xfffULL) < kernel_end)
		die("guest memory too small for the initrd");
	initrd_addr = (initrd_addr - isize) & ~0xfffULL;
	memcpy(v->mem + initrd_addr, initrd, isize);
	bp->hdr.ramdisk_image = (uint32_t)initrd_addr;
	bp->hdr.ramdisk_size = (uint32_t)isize;

	bp->e820_table[0] = (struct boot_e820_entry){0, 0x9fc00, LL_E820_RAM};
	bp->e820_table[1] =
		(struct boot_e820_entry){0x9fc00, 0x400, LL_E820_RESERVED};
	bp->e820_table[2] =
		(struct boot_e820_entry){0xf0000, 0x10000, LL_E820_RESERVED};
	bp->e820_table[3] = (struct boot_e820_entry){
		LL_KERNEL_ADDR, v->mem_size - LL_KERNEL_ADDR, LL_E820_RAM};
	bp->e820_entries = 4;

	free(k);
	free(initrd);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: lab-launch [-m MiB] [-t seconds] [-p prefix] "
			"[-a cmdline] bzImage initrd\n"
			"TEST-ONLY temporary launcher of the nested lab "
			"(replaced by "
			"cvmm).\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *cmdline = "console=ttyS0 panic=-1 reboot=k nokaslr quiet";
	struct kvm_pit_config pit = {.flags = 0};
	struct kvm_userspace_memory_region region;
	struct sigaction sa;
	struct itimerval it;
	struct ll_vm v;
	long timeout = 120;
	double start;
	int opt, mmap_size, rc = 1;

	memset(&v, 0, sizeof(v));
	v.mem_size = 256ULL << 20;
	v.uart.prefix = "guest| ";
	v.uart.level = -1;
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
			v.uart.prefix = optarg;
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

	v.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v.kvm < 0)
		die_errno("/dev/kvm");
	if (ioctl(v.kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die("unexpected KVM API version");
	v.vm = ioctl(v.kvm, KVM_CREATE_VM, 0);
	if (v.vm < 0)
		die_errno("KVM_CREATE_VM");
	if (ioctl(v.vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
		die_errno("KVM_SET_TSS_ADDR");
	if (ioctl(v.vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die_errno("KVM_CREATE_IRQCHIP");
	if (ioctl(v.vm, KVM_CREATE_PIT2, &pit) < 0)
		die_errno("KVM_CREATE_PIT2");

	v.mem = mmap(NULL, v.mem_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v.mem == MAP_FAILED)
		die_errno("mmap guest memory");
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = v.mem_size,
		.userspace_addr = (uint64_t)(uintptr_t)v.mem,
	};
	if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die_errno("KVM_SET_USER_MEMORY_REGION");

	v.vcpu = ioctl(v.vm, KVM_CREATE_VCPU, 0);
	if (v.vcpu < 0)
		die_errno("KVM_CREATE_VCPU");
	mmap_size = ioctl(v.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		die_errno("KVM_GET_VCPU_MMAP_SIZE");
	v.run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE,
		     MAP_SHARED, v.vcpu, 0);
	if (v.run == MAP_FAILED)
		die_errno("mmap kvm_run");

	setup_cpuid(&v);
	setup_page_tables_and_gdt(&v);
	load_kernel(&v, argv[optind], argv[optind + 1], cmdline);
	setup_vcpu_state(&v);

	ll_run_for_signal = v.run;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ll_on_alarm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		die_errno("sigaction");
	it.it_interval.tv_sec = 0;
	it.it_interval.tv_usec = 250000;
	it.it_value = it.it_interval;
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		die_errno("setitimer");

	start = now_s();
	for (;;) {
		int ret;

		if (ll_ticked) {
			ll_ticked = 0;
			v.run->immediate_exit = 0;
			if (now_s() - start > (double)timeout) {
				uart_flush(&v.uart);
				fprintf(stderr,
					"lab-launch: timeout after %ld s\n",
					timeout);
				rc = 2;
				break;
			}
		}
		ret = ioctl(v.vcpu, KVM_RUN, 0);
		if (ret < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die_errno("KVM_RUN");
		}
		switch (v.run->exit_reason) {
		case KVM_EXIT_IO:
			if (!handle_io(&v))
				continue;
			uart_flush(&v.uart);
			fprintf(stderr,
				"lab-launch: guest reset (i8042) "
				"after %.1f s\n",
				now_s() - start);
			rc = 0;
			break;
		case KVM_EXIT_MMIO:
			if (!v.run->mmio.is_write)
				memset(v.run->mmio.data, 0xff,
				       sizeof(v.run->mmio.data));
			continue;
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_SHUTDOWN:
		case KVM_EXIT_SYSTEM_EVENT:
			uart_flush(&v.uart);
			fprintf(stderr,
				"lab-launch: guest shutdown (exit %u) after "
				"%.1f s\n",
				v.run->exit_reason, now_s() - start);
			rc = 0;
			break;
		case KVM_EXIT_HLT:
			uart_flush(&v.uart);
			fprintf(stderr, "lab-launch: guest halted\n");
			rc = 0;
			break;
		case KVM_EXIT_FAIL_ENTRY:
			uart_flush(&v.uart);
			fprintf(stderr,
				"lab-launch: entry failed, reason 0x%llx\n",
				(unsigned long long)v.run->fail_entry
					.hardware_entry_failure_reason);
			rc = 1;
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			uart_flush(&v.uart);
			fprintf(stderr, "lab-launch: internal error %u\n",
				v.run->internal.suberror);
			rc = 1;
			break;
		default:
			uart_flush(&v.uart);
			fprintf(stderr, "lab-launch: unhandled exit %u\n",
				v.run->exit_reason);
			rc = 1;
			break;
		}
		break;
	}
	return rc;
}
