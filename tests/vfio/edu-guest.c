/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * edu-guest: runs inside the nested Debian guest of the lab check
 * guest-vfio, where cvmm passes QEMU's edu device (1234:11e8) through.
 * Linux has no edu driver, so this tool drives it from user space through
 * /sys/bus/pci/devices/<BDF>/config and resource0 (the device unbound).
 *
 *   edu-guest <sysfs device dir> msi <vector>
 *     Programs the MSI capability (cvmm's emulated one): address
 *     0xfee00000 (APIC id 0), data = <vector> (fixed, edge), enable; then
 *     edu raises its interrupt (write 0x60) and, separately, a factorial
 *     with the completion interrupt (status 0x80).  Nothing in the guest
 *     handles <vector> (pick one Linux did not allocate), so each message
 *     that reaches the vCPU makes the kernel log
 *     "__common_interrupt: <cpu>.<vector> No irq handler for vector"
 *     (arch/x86/kernel/irq.c, Linux 6.1, ratelimited to 10 per 5 s); the
 *     tool counts those lines in the kernel log before and after.
 *
 *   edu-guest <sysfs device dir> dma
 *     Two locked pages; their guest-physical addresses from
 *     /proc/self/pagemap (root sees the frame numbers); a pattern in the
 *     first; edu copies 1 KiB from it into its buffer (0x40000) and back
 *     into the second page.  This needs cvmm to have DMA-mapped guest RAM
 *     at IOVA = guest physical.  edu's DMA mask is 28 bits: both pages
 *     must lie below 256 MiB (the lab's guest has 256 MiB of RAM).
 *
 * Output: "LAB-VFIO <key> ..." lines that tests/lab/lab-init.sh
 * (check_guest_vfio) reads.  Exit status 0 when the check passed.
 * edu's registers (QEMU docs/specs/edu.txt): 0x08 factorial, 0x20 status
 * (0x01 computing, 0x80 interrupt when done), 0x24 interrupt status, 0x60
 * raise, 0x64 acknowledge, 0x80 DMA source, 0x88 destination, 0x90
 * count, 0x98 command (0x01 run, 0x02 edu -> RAM); buffer at 0x40000.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EDU_FACT       0x08
#define EDU_STATUS     0x20
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE  0x60
#define EDU_IRQ_ACK    0x64
#define EDU_DMA_SRC    0x80
#define EDU_DMA_DST    0x88
#define EDU_DMA_CNT    0x90
#define EDU_DMA_CMD    0x98
#define EDU_DMA_BUF    0x40000u
#define EDU_DMA_LIMIT  (1ull << 28)
#define DMA_BYTES      1024u

static int cfg_fd = -1;
static volatile uint32_t *bar;

static uint32_t cfg_rd(unsigned off, unsigned len)
{
	uint32_t v = 0;

	if (pread(cfg_fd, &v, len, off) != (ssize_t)len)
		fprintf(stderr, "edu-guest: config read 0x%x: %s\n", off,
			strerror(errno));
	return v;
}

static void cfg_wr(unsigned off, unsigned len, uint32_t v)
{
	if (pwrite(cfg_fd, &v, len, off) != (ssize_t)len)
		fprintf(stderr, "edu-guest: config write 0x%x: %s\n", off,
			strerror(errno));
}

static uint32_t rd(unsigned off)
{
	return bar[off / 4];
}

static void wr(unsigned off, uint32_t v)
{
	bar[off / 4] = v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait until (register & mask) == 0, at most @secs. */
static bool wait_clear(unsigned off, uint32_t mask, double secs)
{
	double end = now() + secs;

	while (now() < end) {
		if (!(rd(off) & mask))
			return true;
		usleep(1000);
	}
	return false;
}

/* Memory decoding and bus mastering (DMA and MSI are bus-master
 * writes), INTx off. */
static void enable_device(void)
{
	uint16_t cmd = (uint16_t)cfg_rd(4, 2);

	cfg_wr(4, 2, cmd | 0x2u | 0x4u | 0x400u);
}

/* Lines "<cpu>.<vector> No irq handler for vector" in the kernel log. */
static int count_unhandled(unsigned vector)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *p, tail[16];
	int n = 0, len;

	if (size <= 0)
		return -1;
	buf = malloc((size_t)size + 1);
	if (!buf)
		return -1;
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (len < 0) {
		free(buf);
		return -1;
	}
	buf[len] = 0;
	snprintf(tail, sizeof(tail), ".%u", vector);
	for (p = buf; (p = strstr(p, " No irq handler for vector")); p++) {
		size_t t = strlen(tail);

		if ((size_t)(p - buf) >= t && !memcmp(p - t, tail, t))
			n++;
	}
	free(buf);
	return n;
}

/* Wait up to @secs for the count to exceed @before. */
static int wait_unhandled(unsigned vector, int before, double secs)
{
	double end = now() + secs;
	int n;

	do {
		n = count_unhandled(vector);
		if (n > before)
			return n;
		usleep(20000);
	} while (now() < end);
	return n;
}

static int msi_cap(void)
{
	unsigned pos = cfg_rd(0x34, 1) & 0xfc;

	for (int i = 0; pos >= 0x40 && i < 48; i++) {
		if ((cfg_rd(pos, 1) & 0xff) == 0x05)
			return (int)pos;
		pos = cfg_rd(pos + 1, 1) & 0xfc;
	}
	return -1;
}

static int do_msi(unsigned vector)
{
	int cap = msi_cap(), b1, a1, b2, a2;
	uint32_t flags, fact, irq;
	bool is64, ok;

	if (cap < 0) {
		printf("LAB-VFIO msi-cap none\n");
		return 1;
	}
	flags = cfg_rd((unsigned)cap + 2, 2);
	is64 = flags & 0x80;
	enable_device();
	wr(EDU_STATUS, 0);
	wr(EDU_IRQ_ACK, 0xffffffffu);
	cfg_wr((unsigned)cap + 4, 4, 0xfee00000u);
	if (is64)
		cfg_wr((unsigned)cap + 8, 4, 0);
	cfg_wr((unsigned)cap + (is64 ? 12 : 8), 2, vector);
	cfg_wr((unsigned)cap + 2, 2, (flags & ~0x70u) | 0x1u);
	printf("LAB-VFIO msi-cap 0x%x flags 0x%x -> 0x%x vector %u\n", cap,
	       flags, cfg_rd((unsigned)cap + 2, 2), vector);

	/* 1: edu's interrupt raised by hand. */
	b1 = count_unhandled(vector);
	wr(EDU_IRQ_RAISE, 0x1);
	a1 = wait_unhandled(vector, b1, 5.0);
	irq = rd(EDU_IRQ_STATUS);
	wr(EDU_IRQ_ACK, 0x1);
	printf("LAB-VFIO msi-raise %d %d irq-status 0x%x\n", b1, a1, irq);

	/* 2: the factorial unit's completion interrupt. */
	b2 = count_unhandled(vector);
	wr(EDU_STATUS, 0x80);
	wr(EDU_FACT, 10);
	ok = wait_clear(EDU_STATUS, 0x1, 5.0);
	fact = rd(EDU_FACT);
	a2 = wait_unhandled(vector, b2, 5.0);
	irq = rd(EDU_IRQ_STATUS);
	wr(EDU_IRQ_ACK, 0x1);
	wr(EDU_STATUS, 0);
	printf("LAB-VFIO msi-factorial 0x%x %d %d irq-status 0x%x%s\n", fact,
	       b2, a2, irq, ok ? "" : " (still computing)");

	cfg_wr((unsigned)cap + 2, 2, flags & ~0x71u);
	return a1 > b1 && b1 >= 0 && a2 > b2 && fact == 3628800 ? 0 : 1;
}

/* Guest-physical address of the page at @va (locked), 0 if unknown. */
static uint64_t gpa_of(const void *va)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t off = (off_t)((uintptr_t)va / (uintptr_t)page * 8u);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, off) != 8)
		e = 0;
	close(fd);
	if (!(e & (1ull << 63)))
		return 0; /* not present */
	return (e & ((1ull << 55) - 1)) * (uint64_t)page;
}

static bool dma(uint64_t src, uint64_t dst, uint32_t cmd)
{
	wr(EDU_DMA_SRC, (uint32_t)src);
	wr(EDU_DMA_DST, (uint32_t)dst);
	wr(EDU_DMA_CNT, DMA_BYTES);
	wr(EDU_DMA_CMD, cmd | 1u);
	return wait_clear(EDU_DMA_CMD, 1, 5.0);
}

static int do_dma(void)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *a = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1,
				0);
	unsigned char *b;
	uint64_t ga, gb;
	bool ok1, ok2;
	long diff = -1, extra = -1;

	if (a == MAP_FAILED || mlock(a, 2 * (size_t)page)) {
		printf("LAB-VFIO dma setup-failed %s\n", strerror(errno));
		return 1;
	}
	b = a + page;
	for (long i = 0; i < page; i++) {
		a[i] = (unsigned char)(i * 7 + 3);
		b[i] = 0;
	}
	ga = gpa_of(a);
	gb = gpa_of(b);
	if (!ga || !gb || ga + (uint64_t)page > EDU_DMA_LIMIT ||
	    gb + (uint64_t)page > EDU_DMA_LIMIT) {
		printf("LAB-VFIO dma unusable-pages gpa 0x%llx 0x%llx (need "
		       "present pages below 256 MiB)\n",
		       (unsigned long long)ga, (unsigned long long)gb);
		return 1;
	}
	enable_device();
	ok1 = dma(ga, EDU_DMA_BUF, 0);		 /* RAM -> edu */
	ok2 = dma(EDU_DMA_BUF, gb, 0x2);	 /* edu -> RAM */
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* the device wrote b */
	for (long i = 0; i < page && diff < 0; i++) {
		if (i < (long)DMA_BYTES && b[i] != a[i])
			diff = i;
	}
	for (long i = DMA_BYTES; i < page && extra < 0; i++) {
		if (b[i])
			extra = i;
	}
	printf("LAB-VFIO dma %s src-gpa 0x%llx dst-gpa 0x%llx bytes %u "
	       "transfers %s/%s first-diff %ld beyond-count %ld\n",
	       ok1 && ok2 && diff < 0 && extra < 0 ? "ok" : "bad",
	       (unsigned long long)ga, (unsigned long long)gb, DMA_BYTES,
	       ok1 ? "done" : "stuck", ok2 ? "done" : "stuck", diff, extra);
	return ok1 && ok2 && diff < 0 && extra < 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	char path[512];
	int fd, r;
	void *m;

	if (argc < 3 || (strcmp(argv[2], "msi") && strcmp(argv[2], "dma")) ||
	    (!strcmp(argv[2], "msi") && argc < 4)) {
		fprintf(stderr, "usage: edu-guest SYSFS_DEV msi VECTOR | "
				"dma\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/config", argv[1]);
	cfg_fd = open(path, O_RDWR | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/resource0", argv[1]);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (cfg_fd < 0 || fd < 0) {
		printf("LAB-VFIO %s open-failed %s\n", argv[2],
		       strerror(errno));
		return 1;
	}
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		printf("LAB-VFIO %s mmap-failed %s\n", argv[2],
		       strerror(errno));
		return 1;
	}
	bar = m;
	if (!strcmp(argv[2], "dma")) {
		r = do_dma();
	} else {
		unsigned long v = strtoul(argv[3], NULL, 0);

		if (v < 0x20 || v > 0xeb) {
			fprintf(stderr, "edu-guest: vector 0x20..0xeb\n");
			return 2;
		}
		r = do_msi((unsigned)v);
	}
	fflush(stdout);
	return r;
}
