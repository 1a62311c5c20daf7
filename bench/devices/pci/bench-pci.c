/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * PCI framework costs, each beside a baseline measured in the same run:
 *   1. a 4-byte MMIO read of a BAR through io_bus + the PCI dispatch
 *      (decode check under the function's dispatch read lock) vs the same
 *      callback registered directly on the bus;
 *   2. the same with up to 4 threads (one per CPU, at least 2) hammering
 *      one function (the dispatch lock
 *      is shared) vs 4 threads on a plain bus device;
 *   3. a config dword read through mechanism #1 (two port accesses) vs
 *      ECAM (one MMIO access);
 *   4. a guest BAR move (ECAM write of the BAR register, decode on: masks,
 *      overlap check, io_bus_move, remap) vs a bare io_bus_move.
 */
#include <cvmm/devices/bus.h>
#include <cvmm/devices/pci.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ECAM_BASE   0xe0000000ull
#define BAR_ADDR    0xc0000000ull
#define RAW_ADDR    0xc8000000ull
#define MAX_THREADS 4

static uint32_t regs[1024];

static void dev_read(void *opaque, unsigned bar, uint64_t off, void *data,
		     unsigned len)
{
	(void)opaque;
	(void)bar;
	memcpy(data, (uint8_t *)regs + off, len);
}

static void raw_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)opaque;
	memcpy(data, (uint8_t *)regs + off, len);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct io_bus *pio, *mmio;
static volatile uint32_t sink;

static double ns_per_read(uint64_t addr, unsigned iters)
{
	uint32_t acc = 0, v;
	double t0 = now();

	for (unsigned i = 0; i < iters; i++) {
		io_bus_read(mmio, addr + ((i & 255u) * 4u), &v, 4);
		acc += v;
	}
	sink = acc;
	return (now() - t0) * 1e9 / iters;
}

struct job {
	uint64_t addr;
	unsigned iters;
	atomic_int *go;
	double ns;
};

static void *worker(void *arg)
{
	struct job *j = arg;

	while (!atomic_load(j->go))
		;
	j->ns = ns_per_read(j->addr, j->iters);
	return NULL;
}

static int nthreads;

static double parallel(uint64_t addr, unsigned iters)
{
	pthread_t t[MAX_THREADS];
	struct job j[MAX_THREADS];
	atomic_int go = 0;
	double sum = 0;

	for (int i = 0; i < nthreads; i++) {
		j[i] = (struct job){.addr = addr, .iters = iters, .go = &go};
		if (pthread_create(&t[i], NULL, worker, &j[i]))
			exit(1);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		sum += j[i].ns;
	}
	return sum / nthreads;
}

static double cfg_m1(unsigned iters)
{
	uint32_t a = 0x80000000u | (uint32_t)PCI_ROOT_DEVFN(1, 0) << 8;
	uint32_t acc = 0, v;
	double t0 = now();

	for (unsigned i = 0; i < iters; i++) {
		io_bus_write(pio, PCI_CONFIG_ADDRESS_PORT, &a, 4);
		io_bus_read(pio, PCI_CONFIG_DATA_PORT, &v, 4);
		acc += v;
	}
	sink = acc;
	return (now() - t0) * 1e9 / iters;
}

static double cfg_ecam(unsigned iters)
{
	uint64_t a = ECAM_BASE + ((uint64_t)PCI_ROOT_DEVFN(1, 0) << 12);
	uint32_t acc = 0, v;
	double t0 = now();

	for (unsigned i = 0; i < iters; i++) {
		io_bus_read(mmio, a, &v, 4);
		acc += v;
	}
	sink = acc;
	return (now() - t0) * 1e9 / iters;
}

static double bar_moves(unsigned iters)
{
	uint64_t a = ECAM_BASE + ((uint64_t)PCI_ROOT_DEVFN(1, 0) << 12) +
		     PCI_BASE_ADDRESS_0;
	double t0 = now();

	for (unsigned i = 0; i < iters; i++) {
		uint32_t v = (uint32_t)(BAR_ADDR + ((i & 1) ? 0x100000 : 0));

		io_bus_write(mmio, a, &v, 4);
	}
	return (now() - t0) * 1e9 / iters;
}

static double raw_moves(unsigned iters)
{
	double t0 = now();

	for (unsigned i = 0; i < iters; i++) {
		uint64_t from = RAW_ADDR + ((i & 1) ? 0x100000 : 0);
		uint64_t to = RAW_ADDR + ((i & 1) ? 0 : 0x100000);

		if (io_bus_move(mmio, from, to))
			exit(1);
	}
	return (now() - t0) * 1e9 / iters;
}

int main(void)
{
	static const struct pci_device_ops ops = {.bar_read = dev_read};
	static const struct io_bus_ops rops = {.read = raw_read};
	struct pci_device_info info = {.vendor_id = 0x1af4, .device_id = 1};
	struct pci_root_config rc = {0};
	struct pci_root *root;
	struct pci_device *d;
	const unsigned n = 4000000, pn = 1000000;
	double pci, raw;

	nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	if (nthreads < 2)
		nthreads = 2;
	for (unsigned i = 0; i < 1024; i++)
		regs[i] = i * 2654435761u;
	if (io_bus_create(&pio) || io_bus_create(&mmio))
		return 1;
	rc.pio_bus = pio;
	rc.mmio_bus = mmio;
	if (pci_root_create(&rc, &root) || pci_root_register_pio(root, pio) ||
	    pci_root_register_ecam(root, mmio, ECAM_BASE))
		return 1;
	if (pci_device_create(&info, &ops, NULL, &d) ||
	    pci_device_add_bar(d, 0, PCI_BAR_KIND_MEM32, false, 4096) ||
	    pci_device_set_bar_address(d, 0, BAR_ADDR) ||
	    pci_root_add_device(root, d, 1, 0) ||
	    pci_root_config_write(root, 0, PCI_ROOT_DEVFN(1, 0), PCI_COMMAND, 2,
				  PCI_COMMAND_MEMORY))
		return 1;
	if (io_bus_register(mmio, RAW_ADDR, 4096, &rops, NULL))
		return 1;

	ns_per_read(BAR_ADDR, n / 10); /* warm up */
	ns_per_read(RAW_ADDR, n / 10);
	pci = ns_per_read(BAR_ADDR, n);
	raw = ns_per_read(RAW_ADDR, n);
	printf("BAR read, 1 thread:   pci %.1f ns  plain bus device %.1f ns  "
	       "ratio %.2f\n",
	       pci, raw, pci / raw);
	pci = parallel(BAR_ADDR, pn);
	raw = parallel(RAW_ADDR, pn);
	printf("BAR read, %d threads:  pci %.1f ns  plain bus device %.1f ns  "
	       "ratio %.2f\n",
	       nthreads, pci, raw, pci / raw);
	pci = cfg_m1(n / 4);
	raw = cfg_ecam(n / 4);
	printf("config dword read:    mechanism #1 %.1f ns  ECAM %.1f ns  "
	       "ratio %.2f\n",
	       pci, raw, pci / raw);

	pci = bar_moves(n / 20);
	raw = raw_moves(n / 20);
	printf("BAR move:             pci config write %.1f ns  io_bus_move "
	       "%.1f ns  ratio %.2f\n",
	       pci, raw, pci / raw);

	io_bus_unregister(mmio, RAW_ADDR);
	io_bus_unregister(pio, PCI_CONFIG_ADDRESS_PORT);
	io_bus_unregister(mmio, ECAM_BASE);
	pci_root_destroy(root);
	io_bus_destroy(pio);
	io_bus_destroy(mmio);
	return 0;
}
