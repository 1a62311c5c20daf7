/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Multi-threaded stress tests of PCI removal, decoding and the buses,
 * with 2-3 threads acting as vCPUs and device callbacks that block, eject
 * their own function and rewrite config space:
 *  - the three defects found in the per-bus / per-function reclamation
 *    schemes (a deadlock of self-ejection across buses, concurrent
 *    decode-off syncs returning while an older callback runs, a BAR left
 *    registered after the retired-table bound and read after free);
 *  - a randomized threaded model with invariants.
 * Every test is bounded: threads are joined with a deadline (a hang is a
 * failure, reported as such) and Check's timeout backs that up.
 */
#include <cvmm/devices/bus.h>
#include <cvmm/devices/pci.h>
#include <cvmm/vm-allocator.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cvmm-check.h"

#define ECAM_BASE  0xe0000000ull
#define MEM32_BASE 0xc0000000ull
#define MEM32_LAST 0xdfffffffull
#define IO_BASE	   0xc000ull
#define IO_LAST	   0xffffull
#define STUCK_PORT 0x3f8ull

static struct io_bus *pio, *mmio;
static struct address_allocator *a32, *aio;
static struct pci_root *root;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000L};

	nanosleep(&ts, NULL);
}

static bool wait_flag(atomic_int *flag, double seconds)
{
	double end = now_s() + seconds;

	while (!atomic_load(flag)) {
		if (now_s() > end)
			return false;
		sched_yield();
	}
	return true;
}

/* Join @t within @seconds; false on a hang (the thread is left behind:
 * the test fails and Check's forked test process goes away). */
static bool join_within(pthread_t t, double seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)seconds;
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

static void setup(void)
{
	struct pci_root_config rc = {0};

	ck_assert_int_eq(io_bus_create(&pio), 0);
	ck_assert_int_eq(io_bus_create(&mmio), 0);
	ck_assert_int_eq(address_allocator_create(MEM32_BASE, MEM32_LAST, &a32),
			 0);
	ck_assert_int_eq(address_allocator_create(IO_BASE, IO_LAST, &aio), 0);
	rc.mem32 = a32;
	rc.io = aio;
	rc.pio_bus = pio;
	rc.mmio_bus = mmio;
	ck_assert_int_eq(pci_root_create(&rc, &root), 0);
	ck_assert_int_eq(pci_root_register_pio(root, pio), 0);
	ck_assert_int_eq(pci_root_register_ecam(root, mmio, ECAM_BASE), 0);
}

static void teardown(void)
{
	pci_root_destroy(root);
	io_bus_destroy(pio);
	io_bus_destroy(mmio);
	address_allocator_destroy(a32);
	address_allocator_destroy(aio);
}

/* ------------------------------------------------------------ helpers */

struct fn;
typedef void (*bar_hook)(struct fn *f, unsigned bar, uint64_t off);

/* A function's device-model state (the opaque; owned by the test). */
struct fn {
	struct pci_device *dev;
	unsigned slot;
	bar_hook on_write;
	atomic_int in_cb;
	atomic_int calls;
	atomic_int eject_ret;
	/* For the randomized model. */
	atomic_int removed; /* remove returned 0 to a thread */
	atomic_int gone;    /* remove returned 0 or -EINPROGRESS */
	_Atomic(pthread_t) remover;
	atomic_int late_calls;
	atomic_int running;
};

static void fn_bar_write(void *opaque, unsigned bar, uint64_t off,
			 const void *data, unsigned len)
{
	struct fn *f = opaque;

	(void)data;
	(void)len;
	atomic_fetch_add(&f->calls, 1);
	if (f->on_write)
		f->on_write(f, bar, off);
}

static void fn_bar_read(void *opaque, unsigned bar, uint64_t off, void *data,
			unsigned len)
{
	struct fn *f = opaque;

	(void)bar;
	(void)off;
	atomic_fetch_add(&f->calls, 1);
	memset(data, 0x5a, len);
}

static const struct pci_device_ops fn_ops = {
	.bar_read = fn_bar_read,
	.bar_write = fn_bar_write,
};

static uint8_t devfn_of(unsigned slot)
{
	return (uint8_t)PCI_ROOT_DEVFN(slot, 0);
}

/* A function at 00:@slot.0 with BARs of @kinds at @addrs, decode enabled
 * for what it has, @hook called on BAR writes (set before any vCPU can
 * reach the function). */
static struct fn *fn_add(unsigned slot, const enum pci_bar_kind *kinds,
			 const uint64_t *addrs, unsigned nbars, bar_hook hook)
{
	struct pci_device_info info = {.vendor_id = 0x1af4,
				       .device_id = 0x1000};
	struct fn *f = calloc(1, sizeof(*f));
	uint16_t cmd = 0;

	ck_assert_ptr_nonnull(f);
	f->slot = slot;
	f->on_write = hook;
	ck_assert_int_eq(pci_device_create(&info, &fn_ops, f, &f->dev), 0);
	for (unsigned i = 0; i < nbars; i++) {
		uint64_t size = kinds[i] == PCI_BAR_KIND_IO ? 32 : 0x1000;

		ck_assert_int_eq(pci_device_add_bar(f->dev, i, kinds[i], false,
						    size),
				 0);
		ck_assert_int_eq(
			pci_device_set_bar_address(f->dev, i, addrs[i]), 0);
		cmd |= kinds[i] == PCI_BAR_KIND_IO ? PCI_COMMAND_IO
						   : PCI_COMMAND_MEMORY;
	}
	ck_assert_int_eq(pci_root_add_device(root, f->dev, slot, 0), 0);
	ck_assert_int_eq(pci_root_config_write(root, 0, devfn_of(slot),
					       PCI_COMMAND, 2, cmd),
			 0);
	return f;
}

static bool bar_mapped(struct pci_device *d, unsigned bar)
{
	bool m = false;

	ck_assert_int_eq(pci_device_bar_info(d, bar, NULL, NULL, &m), 0);
	return m;
}

static void ecam_write16(unsigned slot, uint32_t reg, uint16_t v)
{
	uint64_t a = ECAM_BASE + ((uint64_t)devfn_of(slot) << 12) + reg;

	io_bus_write(mmio, a, &v, 2);
}

/* Mechanism #1 through the I/O bus, as a guest does. */
static void cf8_write(unsigned slot, uint32_t reg, uint32_t v, unsigned len)
{
	uint32_t addr = 0x80000000u | ((uint32_t)devfn_of(slot) << 8) |
			(reg & 0xfcu);

	io_bus_write(pio, 0xcf8, &addr, 4);
	io_bus_write(pio, 0xcfc + (reg & 3u), &v, len);
}

/* ----------------------------------------- scenario 1: self-eject vs ECAM */

static atomic_int peer_started;

/* BAR write = eject register: wait until the other vCPU's config write
 * is under way (and waiting for this callback), then eject. */
static void eject_after_peer(struct fn *f, unsigned bar, uint64_t off)
{
	(void)bar;
	(void)off;
	atomic_store(&f->in_cb, 1);
	wait_flag(&peer_started, 5);
	sleep_us(30000);
	atomic_store(&f->eject_ret, pci_root_remove_device(root, f->slot, 0));
}

struct vcpu {
	pthread_t t;
	struct fn *f;
	uint64_t addr;
	struct io_bus *bus;
	int ret;
};

static void *vcpu_write_bar(void *arg)
{
	struct vcpu *v = arg;
	uint8_t b = 1;

	v->ret = io_bus_write(v->bus, v->addr, &b, 1);
	return NULL;
}

static void *vcpu_decode_off(void *arg)
{
	struct vcpu *v = arg;

	wait_flag(&v->f->in_cb, 5);
	atomic_store(&peer_started, 1);
	ecam_write16(v->f->slot, PCI_COMMAND, 0);
	return NULL;
}

START_TEST(test_eject_self_io_bar_while_other_disables_decode)
{
	enum pci_bar_kind k = PCI_BAR_KIND_IO;
	uint64_t a = 0xc100;
	struct fn *f;
	struct vcpu va, vb;
	uint8_t b = 0;

	atomic_store(&peer_started, 0);
	f = fn_add(1, &k, &a, 1, eject_after_peer);
	atomic_store(&f->eject_ret, 1);
	va = (struct vcpu){.f = f, .addr = a, .bus = pio};
	vb = (struct vcpu){.f = f};
	ck_assert_int_eq(pthread_create(&va.t, NULL, vcpu_write_bar, &va), 0);
	ck_assert_int_eq(pthread_create(&vb.t, NULL, vcpu_decode_off, &vb), 0);
	/* vCPU A waits (from a PIO dispatch) for the ECAM writer, which
	 * waits for A's BAR callback: must not deadlock. */
	ck_assert_msg(join_within(va.t, 10), "ejecting vCPU hung");
	ck_assert_msg(join_within(vb.t, 10), "config-writing vCPU hung");
	ck_assert_int_eq(va.ret, 0);
	ck_assert(atomic_load(&f->eject_ret) == 0 ||
		  atomic_load(&f->eject_ret) == -EINPROGRESS);
	ck_assert_ptr_null(pci_root_get_device(root, 1, 0));
	ck_assert_int_eq(io_bus_read(pio, a, &b, 1), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(b, 0xff);
	ck_assert_int_eq(atomic_load(&f->calls), 1);
	free(f);
}
END_TEST

/* ------------------------ scenario 2: two ejections, I/O and memory BAR */

static atomic_int both_in;

static void eject_when_both_in(struct fn *f, unsigned bar, uint64_t off)
{
	(void)bar;
	(void)off;
	atomic_fetch_add(&both_in, 1);
	while (atomic_load(&both_in) < 2)
		sched_yield();
	sleep_us(10000);
	atomic_store(&f->eject_ret, pci_root_remove_device(root, f->slot, 0));
}

START_TEST(test_eject_two_functions_io_and_mem_bar_concurrently)
{
	enum pci_bar_kind kio = PCI_BAR_KIND_IO, kmem = PCI_BAR_KIND_MEM32;
	uint64_t aio_ = 0xc200, amem = 0xc0010000;
	struct fn *f1, *f2;
	struct vcpu va, vb;

	for (int round = 0; round < 5; round++) {
		atomic_store(&both_in, 0);
		f1 = fn_add(1, &kio, &aio_, 1, eject_when_both_in);
		f2 = fn_add(2, &kmem, &amem, 1, eject_when_both_in);
		atomic_store(&f1->eject_ret, 1);
		atomic_store(&f2->eject_ret, 1);
		va = (struct vcpu){.f = f1, .addr = aio_, .bus = pio};
		vb = (struct vcpu){.f = f2, .addr = amem, .bus = mmio};
		ck_assert_int_eq(
			pthread_create(&va.t, NULL, vcpu_write_bar, &va), 0);
		ck_assert_int_eq(
			pthread_create(&vb.t, NULL, vcpu_write_bar, &vb), 0);
		ck_assert_msg(join_within(va.t, 10), "I/O BAR ejection hung");
		ck_assert_msg(join_within(vb.t, 10), "MMIO BAR ejection hung");
		/* Neither was inside the other's function: full success. */
		ck_assert_int_eq(atomic_load(&f1->eject_ret), 0);
		ck_assert_int_eq(atomic_load(&f2->eject_ret), 0);
		ck_assert_ptr_null(pci_root_get_device(root, 1, 0));
		ck_assert_ptr_null(pci_root_get_device(root, 2, 0));
		free(f1);
		free(f2);
	}
}
END_TEST

/* ---------------- scenario 3: concurrent decode-off syncs, old callbacks */

#define NWRITERS 3
#define NREADERS 2

static atomic_ulong seq = 1;
/* Per reader: the running callback as (token << 8 | bar), 0 when none. */
static atomic_ulong running[NREADERS];
static _Thread_local int reader_idx = -1;
static atomic_int stop;
static atomic_ulong violations;

static void slow_cb(struct fn *f, unsigned bar, uint64_t off)
{
	unsigned long tok = atomic_fetch_add(&seq, 1);

	(void)f;
	(void)off;
	if (reader_idx < 0)
		return;
	atomic_store(&running[reader_idx], tok << 8 | bar);
	sleep_us((unsigned)(tok * 37 % 300));
	atomic_store(&running[reader_idx], 0);
}

struct sync_reader {
	pthread_t t;
	int idx;
	struct pci_device *dev;
};

static void *sync_reader_main(void *arg)
{
	struct sync_reader *r = arg;
	uint32_t x = 0x9e3779b9u * (uint32_t)(r->idx + 1), v = 0;

	reader_idx = r->idx;
	while (!atomic_load(&stop)) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		pci_device_bar_write(r->dev, x % NWRITERS, 0, &v, 4);
	}
	return NULL;
}

struct sync_writer {
	pthread_t t;
	unsigned bar;
	struct pci_device *dev;
	uint64_t addr;
	unsigned long rounds;
};

static void *sync_writer_main(void *arg)
{
	struct sync_writer *w = arg;
	uint32_t reg = PCI_BASE_ADDRESS_0 + 4u * w->bar;

	while (!atomic_load(&stop)) {
		unsigned long t0 = atomic_fetch_add(&seq, 1);

		/* BAR at 0: this writer's BAR stops decoding. */
		pci_device_config_write(w->dev, reg, 4, 0);
		for (int i = 0; i < NREADERS; i++) {
			unsigned long r = atomic_load(&running[i]);

			if (r && (r & 0xff) == w->bar && (r >> 8) < t0)
				atomic_fetch_add(&violations, 1);
		}
		pci_device_config_write(w->dev, reg, 4, (uint32_t)w->addr);
		w->rounds++;
	}
	return NULL;
}

START_TEST(test_concurrent_sync_waits_for_old_callbacks)
{
	enum pci_bar_kind k[NWRITERS] = {PCI_BAR_KIND_MEM32, PCI_BAR_KIND_MEM32,
					 PCI_BAR_KIND_MEM32};
	uint64_t a[NWRITERS] = {0xc0100000, 0xc0200000, 0xc0300000};
	struct sync_reader rd[NREADERS];
	struct sync_writer wr[NWRITERS];
	struct fn *f = fn_add(3, k, a, NWRITERS, slow_cb);

	atomic_store(&stop, 0);
	atomic_store(&violations, 0);
	for (int i = 0; i < NREADERS; i++) {
		rd[i] = (struct sync_reader){.idx = i, .dev = f->dev};
		ck_assert_int_eq(pthread_create(&rd[i].t, NULL,
						sync_reader_main, &rd[i]),
				 0);
	}
	for (unsigned i = 0; i < NWRITERS; i++) {
		wr[i] = (struct sync_writer){
			.bar = i, .dev = f->dev, .addr = a[i]};
		ck_assert_int_eq(pthread_create(&wr[i].t, NULL,
						sync_writer_main, &wr[i]),
				 0);
	}
	sleep_us(2000000);
	atomic_store(&stop, 1);
	for (int i = 0; i < NREADERS; i++)
		ck_assert_msg(join_within(rd[i].t, 10), "reader hung");
	for (unsigned i = 0; i < NWRITERS; i++) {
		ck_assert_msg(join_within(wr[i].t, 10), "writer hung");
		ck_assert_uint_gt(wr[i].rounds, 0);
	}
	ck_assert_msg(atomic_load(&violations) == 0,
		      "%lu config writes returned while an older callback of "
		      "their BAR still ran",
		      atomic_load(&violations));
	ck_assert_int_eq(pci_root_remove_device(root, 3, 0), 0);
	free(f);
}
END_TEST

/* ------ scenario 4: a stuck callback, the retired-table bound, no UAF */

static atomic_int stuck_in, stuck_release;

static void stuck_write(void *opaque, uint64_t off, const void *data,
			unsigned size)
{
	(void)opaque;
	(void)off;
	(void)data;
	(void)size;
	/* A serial port blocked on a full pipe. */
	atomic_store(&stuck_in, 1);
	while (!atomic_load(&stuck_release))
		sleep_us(1000);
}

static const struct io_bus_ops stuck_ops = {.write = stuck_write};

static void *stuck_vcpu(void *arg)
{
	uint8_t b = 'x';

	(void)arg;
	io_bus_write(pio, STUCK_PORT, &b, 1);
	return NULL;
}

START_TEST(test_stuck_reader_retired_limit_no_uaf)
{
	enum pci_bar_kind k = PCI_BAR_KIND_IO;
	uint64_t a = 0xc300;
	unsigned inconsistent = 0, refused = 0;
	bool reenabled;
	pthread_t s;
	struct fn *f;
	uint8_t b = 0;

	atomic_store(&stuck_in, 0);
	atomic_store(&stuck_release, 0);
	ck_assert_int_eq(io_bus_register(pio, STUCK_PORT, 8, &stuck_ops, NULL),
			 0);
	f = fn_add(1, &k, &a, 1, NULL);
	ck_assert_int_eq(pthread_create(&s, NULL, stuck_vcpu, NULL), 0);
	ck_assert(wait_flag(&stuck_in, 5));
	/* Another vCPU toggles the I/O decode through 0xcf8/0xcfc more
	 * times than the bus keeps retired tables for. */
	for (int i = 0; i < 4200; i++) {
		bool mapped;

		cf8_write(1, PCI_COMMAND, PCI_COMMAND_IO, 2);
		mapped = bar_mapped(f->dev, 0);
		refused += !mapped;
		if (mapped != (io_bus_find(pio, a, NULL, NULL) == 0))
			inconsistent++;
		cf8_write(1, PCI_COMMAND, 0, 2);
		/* Decode off: the BAR must be off the bus, really. */
		if (bar_mapped(f->dev, 0) ||
		    io_bus_find(pio, a, NULL, NULL) == 0)
			inconsistent++;
	}
	atomic_store(&stuck_release, 1);
	ck_assert_msg(join_within(s, 10), "stuck vCPU did not return");
	/* Once the stuck callback returned, decoding works again (checked
	 * below, after the read that used to touch freed memory). */
	cf8_write(1, PCI_COMMAND, PCI_COMMAND_IO, 2);
	reenabled = bar_mapped(f->dev, 0) &&
		    io_bus_find(pio, a, NULL, NULL) == 0;
	cf8_write(1, PCI_COMMAND, 0, 2);
	ck_assert_int_eq(pci_root_remove_device(root, 1, 0), 0);
	/* A guest inb at the old address: no device, nothing freed read
	 * (ASan reports a use after free here if the BAR was left on the
	 * bus). */
	ck_assert_int_eq(io_bus_read(pio, a, &b, 1), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(b, 0xff);
	ck_assert_uint_eq(inconsistent, 0);
	ck_assert(reenabled);
	/* The bound was reached (memory stayed bounded) and reported as
	 * "does not decode", not lost. */
	ck_assert_uint_gt(refused, 0);
	ck_assert_int_eq(io_bus_unregister(pio, STUCK_PORT), 0);
	free(f);
}
END_TEST

/* ------------------------------------------- randomized threaded model */

#define MODEL_SLOTS 3
#define MODEL_VCPUS 3

static _Atomic(struct fn *) model_fn[MODEL_SLOTS];
static atomic_ulong model_ops;

static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static _Thread_local uint32_t cb_rng;

/* A callback that sometimes rewrites its config, ejects itself, touches
 * another BAR, or blocks for a while. */
static void model_cb(struct fn *f, unsigned bar, uint64_t off)
{
	pthread_t me = pthread_self();
	uint32_t r;

	(void)off;
	if (!cb_rng)
		cb_rng = (uint32_t)(uintptr_t)&r | 1u;
	r = rnd(&cb_rng);
	if (atomic_load(&f->removed) &&
	    !pthread_equal(atomic_load(&f->remover), me))
		atomic_fetch_add(&f->late_calls, 1);
	atomic_fetch_add(&f->running, 1);
	switch (r % 8) {
	case 0:
		pci_device_config_write(f->dev, PCI_COMMAND, 2,
					(r & 0x100) ? PCI_COMMAND_IO : 0);
		break;
	case 1:
		if ((r & 0xf00) == 0) {
			int ret;

			atomic_store(&f->remover, me);
			ret = pci_root_remove_device(root, f->slot, 0);
			if (ret == 0)
				atomic_store(&f->removed, 1);
			if (ret == 0 || ret == -EINPROGRESS)
				atomic_store(&f->gone, 1);
		}
		break;
	case 2: {
		uint32_t v = 0;

		pci_device_bar_read(f->dev, bar ^ 1u, 0, &v, 4);
		break;
	}
	case 3:
		sleep_us(r % 500);
		break;
	default:
		break;
	}
	atomic_fetch_sub(&f->running, 1);
}

static uint64_t model_addr(unsigned slot, unsigned bar)
{
	return bar == 0 ? 0xc400 + slot * 0x40
			: 0xc1000000 + (uint64_t)slot * 0x10000;
}

static void *model_vcpu(void *arg)
{
	uint32_t x = (uint32_t)(uintptr_t)arg * 2654435761u | 1u;

	while (!atomic_load(&stop)) {
		uint32_t r = rnd(&x);
		unsigned slot = 1 + r % MODEL_SLOTS;
		uint32_t v = r;

		switch ((r >> 8) % 6) {
		case 0:
			io_bus_write(pio, model_addr(slot, 0), &v, 1);
			break;
		case 1:
			io_bus_write(mmio, model_addr(slot, 1), &v, 4);
			break;
		case 2:
			io_bus_read(mmio, model_addr(slot, 1), &v, 4);
			break;
		case 3:
			ecam_write16(slot, PCI_COMMAND,
				     (uint16_t)((r >> 16) & 3u));
			break;
		case 4:
			cf8_write(slot, PCI_COMMAND, (r >> 16) & 3u, 2);
			break;
		case 5:
			/* Move the memory BAR (or park it at 0). */
			ecam_write16(slot, PCI_BASE_ADDRESS_1 + 2,
				     (r & 0x10000)
					     ? 0
					     : (uint16_t)(model_addr(slot, 1) >>
							  16));
			break;
		}
		atomic_fetch_add(&model_ops, 1);
	}
	return NULL;
}

START_TEST(test_threaded_model_random)
{
	enum pci_bar_kind k[2] = {PCI_BAR_KIND_IO, PCI_BAR_KIND_MEM32};
	struct fn *gone[4096];
	unsigned ngone = 0;
	pthread_t t[MODEL_VCPUS];
	double end;

	atomic_store(&stop, 0);
	atomic_store(&model_ops, 0);
	for (unsigned s = 0; s < MODEL_SLOTS; s++) {
		uint64_t a[2] = {model_addr(s + 1, 0), model_addr(s + 1, 1)};
		struct fn *f = fn_add(s + 1, k, a, 2, model_cb);

		atomic_store(&model_fn[s], f);
	}
	for (uintptr_t i = 0; i < MODEL_VCPUS; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, model_vcpu, (void *)i), 0);
	/* The host side hot-plugs a new function where one was ejected. */
	end = now_s() + 2.5;
	while (now_s() < end && ngone < 4096 - MODEL_SLOTS) {
		for (unsigned s = 0; s < MODEL_SLOTS; s++) {
			struct fn *f = atomic_load(&model_fn[s]);
			uint64_t a[2] = {model_addr(s + 1, 0),
					 model_addr(s + 1, 1)};

			if (!atomic_load(&f->gone))
				continue;
			gone[ngone++] = f;
			f = fn_add(s + 1, k, a, 2, model_cb);
			atomic_store(&model_fn[s], f);
		}
		sleep_us(2000);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < MODEL_VCPUS; i++)
		ck_assert_msg(join_within(t[i], 10), "vCPU %d hung", i);
	ck_assert_uint_gt(atomic_load(&model_ops), 1000);
	for (unsigned s = 0; s < MODEL_SLOTS; s++) {
		struct fn *f = atomic_load(&model_fn[s]);

		if (!atomic_load(&f->gone))
			ck_assert_int_eq(pci_root_remove_device(root, s + 1, 0),
					 0);
		gone[ngone++] = f;
	}
	for (unsigned i = 0; i < ngone; i++) {
		/* No callback started or ran on another thread after its
		 * function's removal returned 0. */
		ck_assert_int_eq(atomic_load(&gone[i]->late_calls), 0);
		ck_assert_int_eq(atomic_load(&gone[i]->running), 0);
		free(gone[i]);
	}
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("pci-stress");
	TCase *tc = tcase_create("stress");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_eject_self_io_bar_while_other_disables_decode);
	tcase_add_test(tc,
		       test_eject_two_functions_io_and_mem_bar_concurrently);
	tcase_add_test(tc, test_concurrent_sync_waits_for_old_callbacks);
	tcase_add_test(tc, test_stuck_reader_retired_limit_no_uaf);
	tcase_add_test(tc, test_threaded_model_random);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(stress_suite(), false);
}
