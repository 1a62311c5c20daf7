/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vfio-edu: libvfio against a real device, QEMU's `edu` (1234:11e8,
 * docs/specs/edu.rst in QEMU's source), bound to vfio-pci.  The lab
 * (tests/lab, check vfio-edu) runs it; it needs /dev/vfio and the device.
 *
 *   vfio-edu [/sys/bus/pci/devices/0000:BB:DD.F]   (default: find 1234:11e8)
 *
 * Prints one TAP-style line per sub-check ("ok - <name>" or
 * "not ok - <name> # why") and exits 0 when all passed, 1 when one
 * failed, 77 when there is no VFIO or no edu device.
 *
 * edu's BAR0: 0x00 identification 0xRRrr00ed, 0x04 liveness (reads back
 * inverted), 0x08 factorial, 0x20 status (0x01 computing, 0x80 interrupt
 * when done), 0x24 interrupt status, 0x64 interrupt acknowledge, 0x80 DMA
 * source, 0x88 destination, 0x90 count, 0x98 command (0x01 run, 0x02
 * edu->RAM, 0x04 interrupt when done); its DMA buffer is at 0x40000 in
 * its own address space and its DMA addresses are 28 bits wide.
 */
#include <cvmm/vfio.h>

#include <dirent.h>
#include <errno.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BAR0 VFIO_PCI_BAR0_REGION_INDEX

#define EDU_ID	       0x00
#define EDU_LIVENESS   0x04
#define EDU_FACTORIAL  0x08
#define EDU_STATUS     0x20
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE  0x60
#define EDU_IRQ_ACK    0x64
#define EDU_DMA_SRC    0x80
#define EDU_DMA_DST    0x88
#define EDU_DMA_CNT    0x90
#define EDU_DMA_CMD    0x98
#define EDU_DMA_BUF    0x40000

#define IOVA 0x100000ull /* well inside edu's 28-bit DMA mask */

static int failures;
static struct vfio_device *dev;

static void result(bool ok, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void result(bool ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%s - %s", ok ? "ok" : "not ok", name);
	if (fmt) {
		printf(" # ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

static void note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static uint32_t rd32(uint64_t off)
{
	uint32_t v = 0xffffffff;
	int err = vfio_device_region_read(dev, BAR0, off, &v, 4);

	if (err)
		note("read 0x%llx: %s", (unsigned long long)off,
		     strerror(-err));
	return v;
}

static void wr32(uint64_t off, uint32_t v)
{
	int err = vfio_device_region_write(dev, BAR0, off, &v, 4);

	if (err)
		note("write 0x%llx: %s", (unsigned long long)off,
		     strerror(-err));
}

/* edu's 8-byte registers (0x80-0x98) are used through their low 32
 * bits: Debian 6.1's vfio-pci splits an 8-byte pread/pwrite of a BAR into
 * two 4-byte accesses, and edu answers ~0 for the upper halves. */
static void wr64(uint64_t off, uint64_t v)
{
	wr32(off, (uint32_t)v);
}

static uint64_t rd64(uint64_t off)
{
	return rd32(off);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait until (read(off) & mask) == 0; false after @secs. */
static bool wait_clear(uint64_t off, uint32_t mask, bool wide, double secs)
{
	double end = now() + secs;

	while (now() < end) {
		uint64_t v = wide ? rd64(off) : rd32(off);

		if (!(v & mask))
			return true;
		usleep(1000);
	}
	return false;
}

/* An eventfd's count after waiting up to @ms for it (0: nothing came). */
static uint64_t wait_eventfd(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t n = 0;

	if (poll(&p, 1, ms) == 1 && read(fd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

static char *find_edu(void)
{
	static char path[512];
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		char f[600], buf[32] = "";
		FILE *fp;
		bool match = true;
		const char *want[2] = {"vendor", "device"};
		const char *val[2] = {"0x1234", "0x11e8"};

		if (e->d_name[0] == '.')
			continue;
		for (int i = 0; i < 2 && match; i++) {
			snprintf(f, sizeof(f), "/sys/bus/pci/devices/%s/%s",
				 e->d_name, want[i]);
			fp = fopen(f, "r");
			match = fp && fgets(buf, sizeof(buf), fp) &&
				strncmp(buf, val[i], 6) == 0;
			if (fp)
				fclose(fp);
		}
		if (match) {
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s",
				 e->d_name);
			closedir(d);
			return path;
		}
	}
	closedir(d);
	return NULL;
}

/* Lines of the kernel log that report an IOMMU (DMAR) fault. */
static int iommu_faults_logged(char **last)
{
	int n = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0), count = 0;
	char *buf, *line, *save = NULL;

	if (n <= 0)
		return -1;
	buf = malloc((size_t)n + 1);
	if (!buf)
		return -1;
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, n);
	if (n < 0) {
		free(buf);
		return -1;
	}
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "DMAR") && strstr(line, "fault addr")) {
			count++;
			if (last) {
				free(*last);
				*last = strdup(line);
			}
		}
	}
	free(buf);
	return count;
}

static void check_id(void)
{
	struct vfio_region_desc r;
	void *map = NULL;
	uint32_t via_read = rd32(EDU_ID), via_mmap;
	int err;

	err = vfio_device_region(dev, BAR0, &r);
	if (err || r.nr_areas == 0) {
		result(false, "id-read-vs-mmap", "BAR0 not mmappable (%d)",
		       err);
		return;
	}
	err = vfio_device_region_mmap(dev, BAR0, 0, PROT_READ | PROT_WRITE,
				      &map);
	if (err) {
		result(false, "id-read-vs-mmap", "mmap: %s", strerror(-err));
		return;
	}
	via_mmap = *(volatile uint32_t *)map;
	vfio_device_region_munmap(dev, BAR0, 0, map);
	result(via_read == via_mmap && (via_read & 0xff) == 0xed,
	       "id-read-vs-mmap",
	       "identification 0x%08x via region read, 0x%08x via mmap (BAR0 "
	       "%llu KiB, %u area(s))",
	       via_read, via_mmap, (unsigned long long)(r.size >> 10),
	       r.nr_areas);
}

static void check_liveness(void)
{
	const uint32_t v = 0x5a3c0ff1;
	uint32_t back;

	wr32(EDU_LIVENESS, v);
	back = rd32(EDU_LIVENESS);
	result(back == (uint32_t)~v, "liveness-inverted",
	       "wrote 0x%08x, read 0x%08x", v, back);
}

/* The factorial with the done-interrupt on, MSI on @efd. */
static bool factorial(uint32_t n, uint32_t *out, double *secs)
{
	double t0 = now();
	bool done;

	wr32(EDU_STATUS, 0x80);
	wr32(EDU_FACTORIAL, n);
	done = wait_clear(EDU_STATUS, 0x01, false, 10.0);
	*out = rd32(EDU_FACTORIAL);
	*secs = now() - t0;
	return done;
}

static void check_factorial_and_msi(void)
{
	struct vfio_irq_info ii;
	int efd = eventfd(0, EFD_CLOEXEC), efd2 = eventfd(0, EFD_CLOEXEC);
	uint32_t f = 0, st;
	uint64_t n;
	double secs;
	int err;

	err = vfio_device_irq_info(dev, VFIO_PCI_MSI_IRQ_INDEX, &ii);
	note("MSI: %u vector(s), flags 0x%x", ii.count, ii.flags);
	err = err ? err
		  : vfio_device_irq_enable(dev, VFIO_PCI_MSI_IRQ_INDEX, &efd,
					   1);
	if (err)
		note("MSI enable: %s", strerror(-err));
	bool done = factorial(10, &f, &secs);

	result(done && f == 3628800, "factorial-10",
	       "10! = %u (want 3628800), %.3f s", f, secs);
	n = err ? 0 : wait_eventfd(efd, 5000);
	st = rd32(EDU_IRQ_STATUS);
	result(n > 0 && (st & 1), "msi-factorial-irq",
	       "eventfd count %llu, interrupt status 0x%x",
	       (unsigned long long)n, st);
	wr32(EDU_IRQ_ACK, st);

	/* The same vector moved to another eventfd, MSI left enabled. */
	err = err ? err
		  : vfio_device_irq_set_vector(dev, VFIO_PCI_MSI_IRQ_INDEX, 0,
					       efd2);
	if (!err) {
		factorial(5, &f, &secs);
		n = wait_eventfd(efd2, 5000);
		uint64_t old = wait_eventfd(efd, 0);

		st = rd32(EDU_IRQ_STATUS);
		wr32(EDU_IRQ_ACK, st);
		result(n > 0 && old == 0 && f == 120, "msi-vector-switch",
		       "new eventfd %llu, old %llu, 5! = %u",
		       (unsigned long long)n, (unsigned long long)old, f);
	} else {
		result(false, "msi-vector-switch", "%s", strerror(-err));
	}
	vfio_device_irq_disable(dev, VFIO_PCI_MSI_IRQ_INDEX);
	close(efd);
	close(efd2);
}

static void check_intx(void)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t n, again;
	int err = vfio_device_intx_enable(dev, efd, -1);

	if (err) {
		result(false, "intx-raise-unmask", "enable: %s",
		       strerror(-err));
		close(efd);
		return;
	}
	wr32(EDU_IRQ_RAISE, 0x1000);
	n = wait_eventfd(efd, 5000);
	/* Automasked: acknowledging lowers the line, unmask re-arms it;
	 * raising again must signal again. */
	wr32(EDU_IRQ_ACK, 0x1000);
	vfio_device_intx_unmask(dev);
	wr32(EDU_IRQ_RAISE, 0x2000);
	again = wait_eventfd(efd, 5000);
	wr32(EDU_IRQ_ACK, 0x2000);
	vfio_device_intx_unmask(dev);
	result(n > 0 && again > 0, "intx-raise-unmask",
	       "eventfd %llu, after ack + unmask %llu", (unsigned long long)n,
	       (unsigned long long)again);
	vfio_device_irq_disable(dev, VFIO_PCI_INTX_IRQ_INDEX);
	close(efd);
}

static bool dma(uint64_t src, uint64_t dst, uint64_t cnt, uint64_t cmd)
{
	wr64(EDU_DMA_SRC, src);
	wr64(EDU_DMA_DST, dst);
	wr64(EDU_DMA_CNT, cnt);
	wr64(EDU_DMA_CMD, cmd | 1);
	return wait_clear(EDU_DMA_CMD, 1, true, 10.0);
}

static void check_dma(struct vfio_container *c)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = 2 * (size_t)page;
	uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *in, *out, *canary;
	struct vfio_reserved_range rr[16];
	char *last = NULL;
	int nr, err, before, after;
	bool ok1, ok2, same;

	if (buf == MAP_FAILED) {
		result(false, "dma-roundtrip", "mmap failed");
		return;
	}
	in = buf;
	out = buf + page;
	nr = vfio_container_reserved_ranges(c, rr, 16);
	for (int i = 0; i < nr && i < 16; i++)
		note("reserved IOVA 0x%llx-0x%llx",
		     (unsigned long long)rr[i].start,
		     (unsigned long long)rr[i].last);
	/* A mapping over the MSI window is refused by the library. */
	if (nr > 0) {
		err = vfio_container_dma_map(c, rr[0].start & ~0xfffull, buf,
					     (uint64_t)page, 0);
		result(err == -EADDRNOTAVAIL, "dma-reserved-refused",
		       "map at 0x%llx: %d", (unsigned long long)rr[0].start,
		       err);
	}
	for (size_t i = 0; i < (size_t)page; i++) {
		in[i] = (uint8_t)(i * 7 + 3);
		out[i] = 0;
	}
	err = vfio_container_dma_map(c, IOVA, buf, size, 0);
	if (err) {
		result(false, "dma-roundtrip", "map: %s", strerror(-err));
		munmap(buf, size);
		return;
	}
	ok1 = dma(IOVA, EDU_DMA_BUF, 1024, 0);	      /* RAM -> edu */
	ok2 = dma(EDU_DMA_BUF, IOVA + page, 1024, 2); /* edu -> RAM */
	same = memcmp(in, out, 1024) == 0;
	result(ok1 && ok2 && same, "dma-roundtrip",
	       "1 KiB from IOVA 0x%llx into edu and back to IOVA 0x%llx: "
	       "%s (transfers %s)",
	       (unsigned long long)IOVA, (unsigned long long)IOVA + page,
	       same ? "pattern preserved" : "pattern differs",
	       ok1 && ok2 ? "completed" : "did not complete");

	/* Unmapped: a DMA from edu to that IOVA must not reach the buffer. */
	err = vfio_container_dma_unmap(c, IOVA, size);
	if (err) {
		result(false, "dma-after-unmap-no-corruption", "unmap: %s",
		       strerror(-err));
		munmap(buf, size);
		return;
	}
	canary = out;
	memset(canary, 0xc5, (size_t)page);
	before = iommu_faults_logged(NULL);
	ok2 = dma(EDU_DMA_BUF, IOVA + page, 1024, 2);
	usleep(500 * 1000); /* the fault interrupt and printk */
	after = iommu_faults_logged(&last);
	same = true;
	for (size_t i = 0; i < (size_t)page; i++)
		same &= canary[i] == 0xc5;
	result(ok2 && same, "dma-after-unmap-no-corruption",
	       "host buffer %s after a DMA to the unmapped IOVA (transfer %s; "
	       "edu status 0x%x, DMA command 0x%llx: edu reports no error)",
	       same ? "unchanged" : "CHANGED",
	       ok2 ? "completed" : "did not complete", rd32(EDU_STATUS),
	       (unsigned long long)rd64(EDU_DMA_CMD));
	result(after > before && before >= 0, "dma-after-unmap-fault-logged",
	       "IOMMU fault lines in the kernel log: %d before, %d after%s%s",
	       before, after, last ? "; last: " : "", last ? last : "");
	free(last);
	munmap(buf, size);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : find_edu();
	struct vfio_container *c = NULL;
	struct vfio_device_info info;
	uint16_t cmd = 0;
	int err;

	if (!path) {
		printf("# no edu device (1234:11e8) on the PCI bus\n");
		return 77;
	}
	if (access("/dev/vfio/vfio", F_OK) != 0) {
		printf("# /dev/vfio/vfio missing\n");
		return 77;
	}
	err = vfio_container_create(NULL, &c);
	if (!err)
		err = vfio_device_create_sysfs(c, path, NULL, &dev);
	result(err == 0, "open", "%s: %s", path, err ? strerror(-err) : "");
	if (err) {
		vfio_container_destroy(c);
		return 1;
	}
	vfio_device_get_info(dev, &info);
	note("IOMMU type %d, group %u, device flags 0x%x, %u regions, %u "
	     "irqs",
	     vfio_container_iommu_type(c),
	     vfio_group_id(vfio_device_group(dev)), info.flags,
	     info.num_regions, info.num_irqs);
	/* Memory decoding and bus mastering (DMA, MSI). */
	err = vfio_device_region_read(dev, VFIO_PCI_CONFIG_REGION_INDEX,
				      PCI_COMMAND, &cmd, 2);
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	err = err ? err
		  : vfio_device_region_write(dev, VFIO_PCI_CONFIG_REGION_INDEX,
					     PCI_COMMAND, &cmd, 2);
	if (err)
		note("PCI command register: %s", strerror(-err));

	check_id();
	check_liveness();
	check_factorial_and_msi();
	check_intx();
	check_dma(c);
	/* Leave edu as found: no factorial interrupt, none pending (it has
	 * no reset here, and the next user would get a stale INTx). */
	wr32(EDU_STATUS, 0);
	wr32(EDU_IRQ_ACK, 0xffffffff);
	err = vfio_device_reset(dev);
	note("device reset: %s", err == -EOPNOTSUPP ? "not supported (no FLR; "
						      "no slot or bus reset on "
						      "the root bus)"
				 : err		    ? strerror(-err)
						    : "done");

	vfio_device_destroy(dev);
	vfio_container_destroy(c);
	note("%d failed", failures);
	return failures ? 1 : 0;
}
