/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Interrupt delivery through eventfds (irqfd-style) for the virtio
 * transports:
 *  - virtio-pci MSI-X: the msix_update hook (a VMM's per-vector GSI
 *    route), per-vector notifiers, the MSI sink as the fallback, the
 *    pending-bit semantics kept, hostile programming, and a threaded
 *    stress where a "vCPU" reprograms and masks while an "I/O thread"
 *    delivers;
 *  - struct irq_level_notifier: a level line through an irqfd with a
 *    resample fd, driven by virtio-mmio and by virtio-pci INTx.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-rng.h>
#include <cvmm/devices/virtio.h>

#include "irq-recorder.h"

#define BAR_ADDR  0xc0000000ull
#define MMIO_BASE 0xd0000000ull
#define SLOT	  3
#define DEVFN	  PCI_ROOT_DEVFN(SLOT, 0)
#define NVEC	  4u
#define MSI_ADDR  0xfee00000ull

/* ------------------------------------------------------- the "VMM" */

/* What a VMM keeps per vector: the route it installed. */
struct route {
	unsigned calls;
	uint64_t addr;
	uint32_t data;
	bool masked;
	bool installed; /* the route carries (addr, data) */
};

static struct {
	pthread_mutex_t lock;
	struct route r[NVEC];
	unsigned total_calls;
	int fail_vector; /* the route update of this vector fails; -1 none */
	bool fail_odd;	 /* stress: updates to data with bit 8 set fail */
	unsigned bad;	 /* stress: a rule was broken */
	bool has_notifier[NVEC];
} vmm;

static struct event_notifier *vecn[NVEC];

static int count_signals(struct event_notifier *n)
{
	int c = event_notifier_consume(n);

	ck_assert_int_ge(c, 0);
	return c;
}

static int hook(void *opaque, uint16_t vector, uint64_t addr, uint32_t data,
		bool masked)
{
	struct route *r;
	int ret = 0;

	ck_assert_ptr_eq(opaque, &vmm);
	pthread_mutex_lock(&vmm.lock);
	vmm.total_calls++;
	if (vector >= NVEC) {
		vmm.bad++;
		pthread_mutex_unlock(&vmm.lock);
		return -EINVAL;
	}
	r = &vmm.r[vector];
	r->calls++;
	r->masked = masked;
	if (!masked) {
		r->addr = addr;
		r->data = data;
		if (vmm.fail_vector == (int)vector ||
		    (vmm.fail_odd && (data & 0x100))) {
			r->installed = false;
			ret = -EIO;
		} else {
			r->installed = true;
		}
	}
	pthread_mutex_unlock(&vmm.lock);
	return ret;
}

/* The fallback sink: checks that it is used only when it must be. */
static struct msi_recorder msi;

static int sink(void *opaque, uint64_t addr, uint32_t data)
{
	unsigned v = data & 0xf;

	(void)opaque;
	pthread_mutex_lock(&vmm.lock);
	/* Data carries the vector in its low nibble in every test. */
	if (v >= NVEC || vmm.r[v].masked ||
	    (vmm.has_notifier[v] && vmm.r[v].installed &&
	     vmm.r[v].data == data && vmm.r[v].addr == addr))
		vmm.bad++;
	pthread_mutex_unlock(&vmm.lock);
	return msi_recorder_send_cb(&msi, addr, data);
}

/* ------------------------------------------------------------- rig */

static struct io_bus *bus;
static struct pci_root *root;
static struct virtio_device *vdev;
static struct virtio_pci *vp;
static struct virtio_mmio *vmo;
static struct irq_level_notifier *lvl;

static void vmm_reset(void)
{
	memset(&vmm, 0, sizeof(vmm));
	pthread_mutex_init(&vmm.lock, NULL);
	vmm.fail_vector = -1;
}

static void pci_setup(void)
{
	struct pci_root_config rc = {0};
	struct virtio_pci_config pc = {0};

	vmm_reset();
	msi_recorder_sink(&msi);
	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(virtio_rng_create(NULL, &vdev), 0);
	pc.msix_vectors = NVEC;
	pc.msi = (struct msi_sink){.send = sink, .opaque = NULL};
	pc.msix_update = hook;
	pc.msix_opaque = &vmm;
	ck_assert_int_eq(irq_level_notifier_create(&lvl), 0);
	ck_assert_int_eq(irq_level_notifier_line(lvl, &pc.intx), 0);
	ck_assert_int_eq(virtio_pci_create(vdev, &pc, &vp), 0);
	ck_assert_int_eq(virtio_pci_num_vectors(vp), NVEC);
	ck_assert_int_eq(pci_device_set_bar_address(virtio_pci_pci_device(vp),
						    VIRTIO_PCI_BAR, BAR_ADDR),
			 0);
	rc.mmio_bus = bus;
	ck_assert_int_eq(pci_root_create(&rc, &root), 0);
	ck_assert_int_eq(virtio_pci_add_to_root(vp, root, SLOT, 0), 0);
	ck_assert_int_eq(pci_root_config_write(root, 0, DEVFN, PCI_COMMAND, 2,
					       PCI_COMMAND_MEMORY |
						       PCI_COMMAND_MASTER),
			 0);
	for (unsigned v = 0; v < NVEC; v++)
		ck_assert_int_eq(event_notifier_create(0, &vecn[v]), 0);
}

static void teardown(void)
{
	pci_root_destroy(root);
	root = NULL;
	virtio_pci_destroy(vp);
	vp = NULL;
	if (vmo) {
		io_bus_unregister(bus, MMIO_BASE);
		virtio_mmio_destroy(vmo);
		vmo = NULL;
	}
	virtio_device_destroy(vdev);
	vdev = NULL;
	io_bus_destroy(bus);
	bus = NULL;
	irq_level_notifier_destroy(lvl);
	lvl = NULL;
	for (unsigned v = 0; v < NVEC; v++) {
		event_notifier_destroy(vecn[v]);
		vecn[v] = NULL;
	}
}

static void wr(uint64_t addr, unsigned size, uint64_t v)
{
	uint8_t b[8];

	for (unsigned i = 0; i < size; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	ck_assert_int_eq(io_bus_write(bus, addr, b, size), 0);
}

static uint64_t rd(uint64_t addr, unsigned size)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;

	ck_assert_int_eq(io_bus_read(bus, addr, b, size), 0);
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

#define COMMON(off) (BAR_ADDR + VIRTIO_PCI_COMMON_OFFSET + (off))
#define ENTRY(v)    (BAR_ADDR + VIRTIO_PCI_MSIX_OFFSET + 16ull * (v))

static struct pci_device *pdev(void)
{
	return virtio_pci_pci_device(vp);
}

static void msix_ctrl(uint16_t flags)
{
	int cap = pci_device_find_capability(pdev(), PCI_CAP_ID_MSIX);

	ck_assert_int_gt(cap, 0);
	ck_assert_int_eq(pci_root_config_write(root, 0, DEVFN,
					       (uint32_t)cap + PCI_MSIX_FLAGS,
					       2, flags),
			 0);
}

static void entry_write(unsigned v, uint64_t addr, uint32_t data, bool mask)
{
	wr(ENTRY(v) + PCI_MSIX_ENTRY_LOWER_ADDR, 4, (uint32_t)addr);
	wr(ENTRY(v) + PCI_MSIX_ENTRY_UPPER_ADDR, 4, addr >> 32);
	wr(ENTRY(v) + PCI_MSIX_ENTRY_DATA, 4, data);
	wr(ENTRY(v) + PCI_MSIX_ENTRY_VECTOR_CTRL, 4,
	   mask ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

static void vector_mask(unsigned v, bool mask)
{
	wr(ENTRY(v) + PCI_MSIX_ENTRY_VECTOR_CTRL, 4,
	   mask ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

static void set_notifier(unsigned v, bool on)
{
	ck_assert_int_eq(virtio_pci_set_vector_notifier(vp, (uint16_t)v,
							on ? vecn[v] : NULL),
			 0);
	vmm.has_notifier[v] = on;
}

static void set_notifiers(void)
{
	for (unsigned v = 0; v < NVEC; v++)
		set_notifier(v, true);
}

/* Queue 0 uses vector @v (written through the common configuration). */
static void queue_vector(uint16_t v)
{
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, v);
}

static void raise_queue(void)
{
	virtio_device_lock(vdev);
	virtio_device_queue_interrupt(vdev, 0);
	virtio_device_unlock(vdev);
}

/* ----------------------------------------------------- MSI-X tests */

START_TEST(test_irqfd_hook_calls)
{
	pci_setup();
	/* Every table dword written calls the hook, masked while off. */
	entry_write(2, MSI_ADDR | 0x1000, 0x42, true);
	ck_assert_uint_eq(vmm.r[2].calls, 4);
	ck_assert(vmm.r[2].masked);
	/* Enabling (with the function mask) updates every vector. */
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	ck_assert_uint_eq(vmm.total_calls, 4 + NVEC);
	ck_assert(vmm.r[2].masked);
	/* Unmasking the vector while the function mask holds: still
	 * masked. */
	vector_mask(2, false);
	ck_assert_uint_eq(vmm.r[2].calls, 6);
	ck_assert(vmm.r[2].masked);
	/* Lifting the function mask: vector 2 is live with its message. */
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	ck_assert(!vmm.r[2].masked);
	ck_assert_uint_eq(vmm.r[2].addr, MSI_ADDR | 0x1000);
	ck_assert_uint_eq(vmm.r[2].data, 0x42);
	ck_assert(vmm.r[0].masked); /* never unmasked */
	/* Setting a notifier asks for the route at once. */
	set_notifier(2, true);
	ck_assert_uint_eq(vmm.r[2].calls, 8);
	/* Clearing one does not. */
	set_notifier(2, false);
	ck_assert_uint_eq(vmm.r[2].calls, 8);
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

START_TEST(test_irqfd_unmasked_goes_to_notifier)
{
	pci_setup();
	set_notifiers();
	for (unsigned v = 0; v < NVEC; v++)
		entry_write(v, MSI_ADDR, 0x40 + v, false);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	queue_vector(1);
	raise_queue();
	ck_assert_int_eq(count_signals(vecn[1]), 1);
	ck_assert_int_eq(count_signals(vecn[0]), 0);
	ck_assert_uint_eq(msi.count, 0);
	/* pci_device_msix_notify() takes the same path and reports "sent". */
	ck_assert_int_eq(pci_device_msix_notify(pdev(), 3), 0);
	ck_assert_int_eq(count_signals(vecn[3]), 1);
	/* Without a notifier the vector goes to the sink. */
	set_notifier(1, false);
	raise_queue();
	ck_assert_int_eq(count_signals(vecn[1]), 0);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_data, 0x41);
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

START_TEST(test_irqfd_route_failure_falls_back_to_sink)
{
	pci_setup();
	set_notifiers();
	vmm.fail_vector = 1;
	entry_write(1, MSI_ADDR | 0x2000, 0x41, false);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	queue_vector(1);
	raise_queue();
	ck_assert_int_eq(count_signals(vecn[1]), 0);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_address, MSI_ADDR | 0x2000);
	ck_assert_uint_eq(msi.last_data, 0x41);
	/* The next update succeeds: back to the notifier. */
	vmm.fail_vector = -1;
	wr(ENTRY(1) + PCI_MSIX_ENTRY_DATA, 4, 0x41);
	raise_queue();
	ck_assert_int_eq(count_signals(vecn[1]), 1);
	ck_assert_uint_eq(msi.count, 1);
	/* And an update that fails again sends the new message through the
	 * sink, never the stale route. */
	vmm.fail_vector = 1;
	wr(ENTRY(1) + PCI_MSIX_ENTRY_LOWER_ADDR, 4, MSI_ADDR | 0x3000);
	raise_queue();
	ck_assert_int_eq(count_signals(vecn[1]), 0);
	ck_assert_uint_eq(msi.count, 2);
	ck_assert_uint_eq(msi.last_address, MSI_ADDR | 0x3000);
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

/* A masked vector sets its pending bit, signals nothing, and is sent
 * through the notifier on unmask, after the route update. */
START_TEST(test_irqfd_masked_pending_then_unmask)
{
	uint8_t pba[8];

	pci_setup();
	set_notifiers();
	entry_write(2, MSI_ADDR, 0x42, true);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	queue_vector(2);
	raise_queue();
	raise_queue(); /* coalesced into one pending message */
	ck_assert_int_eq(count_signals(vecn[2]), 0);
	ck_assert_uint_eq(msi.count, 0);
	ck_assert_int_eq(pci_device_msix_pending(pdev(), 2), 1);
	/* The guest sees it in the PBA. */
	ck_assert_int_eq(pci_device_bar_read(pdev(), VIRTIO_PCI_BAR,
					     VIRTIO_PCI_MSIX_OFFSET + 0x1000,
					     pba, 8),
			 0);
	ck_assert_uint_eq(pba[0], 1u << 2);
	/* The guest reprograms while masked, then unmasks. */
	wr(ENTRY(2) + PCI_MSIX_ENTRY_DATA, 4, 0x52);
	vector_mask(2, false);
	ck_assert(!vmm.r[2].masked);
	ck_assert_uint_eq(vmm.r[2].data, 0x52);
	ck_assert_int_eq(count_signals(vecn[2]), 1);
	ck_assert_int_eq(pci_device_msix_pending(pdev(), 2), 0);
	/* Function mask: pending again, delivered when lifted. */
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	ck_assert_int_eq(pci_device_msix_notify(pdev(), 2), 1);
	ck_assert_int_eq(count_signals(vecn[2]), 0);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_int_eq(count_signals(vecn[2]), 1);
	ck_assert_int_eq(pci_device_msix_pending(pdev(), 2), 0);
	/* Pending, and the route update on unmask fails: the sink gets it. */
	vector_mask(2, true);
	ck_assert_int_eq(pci_device_msix_notify(pdev(), 2), 1);
	vmm.fail_vector = 2;
	vector_mask(2, false);
	ck_assert_int_eq(count_signals(vecn[2]), 0);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_data, 0x52);
	/* MSI-X off: nothing is sent or made pending (INTx instead). */
	msix_ctrl(0);
	ck_assert_int_eq(pci_device_msix_notify(pdev(), 2), -EAGAIN);
	ck_assert_int_eq(pci_device_msix_pending(pdev(), 2), 0);
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

/* The queue's direct interrupt fd (virtio_device_queue_irq_fd()) as a
 * vhost device sees it through its watcher. */
static struct {
	unsigned calls;
	int fd;
	bool sent_before; /* vector 1's irqfd already signalled then */
} W;

static void irq_fd_watch(void *opaque, uint32_t queue, int fd)
{
	struct pollfd p = {.fd = event_notifier_fd(vecn[1]), .events = POLLIN};

	(void)opaque;
	ck_assert_uint_eq(queue, 0);
	W.calls++;
	W.fd = fd;
	W.sent_before = poll(&p, 1, 0) == 1;
}

START_TEST(test_irqfd_queue_direct_fd)
{
	int fd1;

	pci_setup();
	memset(&W, 0, sizeof(W));
	virtio_device_set_irq_fd_watcher(vdev, irq_fd_watch, NULL);
	set_notifiers();
	fd1 = event_notifier_fd(vecn[1]);
	for (unsigned v = 0; v < NVEC; v++)
		entry_write(v, MSI_ADDR, 0x40 + v, false);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	/* NO_VECTOR: none. */
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), -1);
	ck_assert_uint_eq(W.calls, 0);
	queue_vector(1);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), fd1);
	ck_assert_uint_eq(W.calls, 1);
	ck_assert_int_eq(W.fd, fd1);
	/* Masked: none, told before the write returns; a queue interrupt
	 * then stays pending. */
	vector_mask(1, true);
	ck_assert_uint_eq(W.calls, 2);
	ck_assert_int_eq(W.fd, -1);
	raise_queue();
	ck_assert_int_eq(pci_device_msix_pending(pdev(), 1), 1);
	/* Unmasked: told before the pending message goes out (through the
	 * irqfd). */
	vector_mask(1, false);
	ck_assert_uint_eq(W.calls, 3);
	ck_assert_int_eq(W.fd, fd1);
	ck_assert(!W.sent_before);
	ck_assert_int_eq(count_signals(vecn[1]), 1);
	/* The VMM's route update fails: the sink, so none. */
	vmm.fail_vector = 1;
	entry_write(1, MSI_ADDR, 0x51, false);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), -1);
	vmm.fail_vector = -1;
	entry_write(1, MSI_ADDR, 0x41, false);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), fd1);
	/* The notifier taken away, MSI-X off, the vector out of range, a
	 * reset: none each time. */
	set_notifier(1, false);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), -1);
	set_notifier(1, true);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), fd1);
	msix_ctrl(0);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), -1);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), fd1);
	queue_vector(NVEC + 5);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), -1);
	queue_vector(1);
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
	ck_assert_int_eq(virtio_device_queue_irq_fd(vdev, 0), -1);
	ck_assert_int_eq(W.fd, -1);
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

START_TEST(test_hostile_irqfd_vector_programming)
{
	unsigned calls;

	pci_setup();
	/* Notifier for a vector past the table. */
	ck_assert_int_eq(virtio_pci_set_vector_notifier(vp, NVEC, vecn[0]),
			 -EINVAL);
	ck_assert_int_eq(virtio_pci_set_vector_notifier(vp, 0xffff, vecn[0]),
			 -EINVAL);
	ck_assert_int_eq(virtio_pci_set_vector_notifier(NULL, 0, vecn[0]),
			 -EINVAL);
	ck_assert_int_eq(pci_device_msix_set_notifier(NULL, 0, vecn[0]),
			 -EINVAL);
	ck_assert_int_eq(virtio_pci_num_vectors(NULL), -EINVAL);
	set_notifiers();
	calls = vmm.total_calls;
	/* Table writes past the table, misaligned or of a bad size: ignored,
	 * no hook call. */
	wr(ENTRY(NVEC), 4, 0x12345678);
	wr(ENTRY(0) + 2, 4, 0x12345678);
	wr(ENTRY(0) + 1, 1, 0x12);
	wr(ENTRY(0), 2, 0x1234);
	ck_assert_uint_eq(vmm.total_calls, calls);
	/* A queue vector past the table reads back NO_VECTOR and sends
	 * nothing, through either path. */
	for (unsigned v = 0; v < NVEC; v++)
		entry_write(v, MSI_ADDR, 0x40 + v, false);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	queue_vector(NVEC);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2),
			  VIRTIO_MSI_NO_VECTOR);
	queue_vector(0xfffe);
	raise_queue();
	for (unsigned v = 0; v < NVEC; v++)
		ck_assert_int_eq(count_signals(vecn[v]), 0);
	ck_assert_uint_eq(msi.count, 0);
	ck_assert_int_eq(pci_device_msix_notify(pdev(), NVEC), -EINVAL);
	/* 8-byte write of data + control at once: one hook call with the
	 * final state. */
	calls = vmm.r[1].calls;
	wr(ENTRY(1) + PCI_MSIX_ENTRY_DATA, 8,
	   (uint64_t)PCI_MSIX_ENTRY_CTRL_MASKBIT << 32 | 0x61);
	ck_assert_uint_eq(vmm.r[1].calls, calls + 1);
	ck_assert(vmm.r[1].masked);
	/* Undefined control bits read back 0 and do not mask. */
	wr(ENTRY(1) + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0xfffffffe);
	ck_assert_uint_eq(rd(ENTRY(1) + PCI_MSIX_ENTRY_VECTOR_CTRL, 4), 0);
	ck_assert(!vmm.r[1].masked);
	ck_assert_uint_eq(vmm.r[1].data, 0x61);
	/* A device reset masks every vector and tells the VMM. */
	calls = vmm.total_calls;
	ck_assert_int_eq(pci_device_reset(pdev()), 0);
	ck_assert_uint_ge(vmm.total_calls, calls + NVEC);
	for (unsigned v = 0; v < NVEC; v++)
		ck_assert(vmm.r[v].masked);
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

/* Toggling the mask while notifying, on one thread: no message is lost or
 * duplicated (each notify is sent, or pending and sent exactly once on
 * unmask). */
START_TEST(test_irqfd_toggle_mask_while_notifying)
{
	unsigned expected = 0;
	bool pend = false;

	pci_setup();
	set_notifiers();
	entry_write(0, MSI_ADDR, 0x40, false);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	for (unsigned i = 0; i < 1000; i++) {
		int r;

		if (i % 3 == 0) {
			bool mask = (i / 3) % 2;

			vector_mask(0, mask);
			if (!mask && pend) {
				expected++;
				pend = false;
			}
		}
		r = pci_device_msix_notify(pdev(), 0);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			expected++;
		else
			pend = true;
	}
	vector_mask(0, false);
	if (pend)
		expected++;
	ck_assert_int_eq(count_signals(vecn[0]), (int)expected);
	ck_assert_uint_eq(msi.count, 0);
	ck_assert_int_eq(pci_device_msix_pending(pdev(), 0), 0);
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

/* ------------------------------------------------------ threaded stress */

#define STRESS_NS 700000000ull

static atomic_bool stress_stop;
static atomic_ulong io_sent, io_pending;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The I/O thread: delivers vectors as fast as it can. */
static void *io_thread(void *arg)
{
	unsigned i = 0;

	(void)arg;
	while (!atomic_load(&stress_stop)) {
		int r = pci_device_msix_notify(pdev(), (uint16_t)(i++ % NVEC));

		if (r == 0)
			atomic_fetch_add(&io_sent, 1);
		else if (r == 1)
			atomic_fetch_add(&io_pending, 1);
		else if (r != -EAGAIN)
			atomic_store(&stress_stop, true); /* checked below */
	}
	return NULL;
}

/* The vCPU: reprograms entries (data bit 8: the route update fails), masks
 * and unmasks vectors and the function, disables and re-enables MSI-X. */
static void *vcpu_thread(void *arg)
{
	unsigned i = 0;
	uint64_t end = *(uint64_t *)arg;

	while (now_ns() < end) {
		unsigned v = i % NVEC;

		switch ((i / NVEC) % 5) {
		case 0:
			wr(ENTRY(v) + PCI_MSIX_ENTRY_DATA, 4,
			   v | (((i / NVEC / 5) & 1) << 8));
			break;
		case 1:
			vector_mask(v, true);
			break;
		case 2:
			vector_mask(v, false);
			break;
		case 3:
			if (v == 0)
				msix_ctrl(PCI_MSIX_FLAGS_ENABLE |
					  PCI_MSIX_FLAGS_MASKALL);
			else if (v == 1)
				msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
			break;
		default:
			if (v == 0 && (i % 97) == 0) {
				msix_ctrl(0);
				msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
			}
			break;
		}
		i++;
	}
	atomic_store(&stress_stop, true);
	return NULL;
}

START_TEST(test_irqfd_threaded_reprogram_vs_deliver)
{
	pthread_t io, vcpu;
	uint64_t end;
	unsigned long signals = 0, sent, pending;

	pci_setup();
	set_notifiers();
	vmm.fail_odd = true;
	for (unsigned v = 0; v < NVEC; v++)
		entry_write(v, MSI_ADDR, v, false);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	atomic_store(&stress_stop, false);
	atomic_store(&io_sent, 0);
	atomic_store(&io_pending, 0);
	end = now_ns() + STRESS_NS;
	ck_assert_int_eq(pthread_create(&io, NULL, io_thread, NULL), 0);
	ck_assert_int_eq(pthread_create(&vcpu, NULL, vcpu_thread, &end), 0);
	pthread_join(vcpu, NULL);
	pthread_join(io, NULL);
	/* Lift every mask: what is still pending goes out now. */
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	for (unsigned v = 0; v < NVEC; v++) {
		vector_mask(v, false);
		ck_assert_int_eq(pci_device_msix_pending(pdev(), (uint16_t)v),
				 0);
		signals += (unsigned long)count_signals(vecn[v]);
	}
	sent = atomic_load(&io_sent);
	pending = atomic_load(&io_pending);
	/* Every send went out once; pending ones at most once each (they
	 * coalesce). */
	ck_assert_uint_gt(sent, 0);
	ck_assert_uint_ge(signals + msi.count, sent);
	ck_assert_uint_le(signals + msi.count, sent + pending);
	/* Some messages took each path. */
	ck_assert_uint_gt(signals, 0);
	ck_assert_uint_gt(msi.count, 0);
	/* The sink saw no message the notifier should have carried, and
	 * nothing while masked. */
	ck_assert_uint_eq(vmm.bad, 0);
	teardown();
}
END_TEST

/* -------------------------------------------------- level notifier */

static int fd_count(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));

	if (r < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return 0;
	}
	ck_assert_int_eq(r, sizeof(v));
	return (int)v;
}

START_TEST(test_level_notifier_basics)
{
	struct irq_level_notifier *n;
	struct irq_line line;
	int fd, rfd;
	uint64_t one = 1;

	ck_assert_int_eq(irq_level_notifier_create(NULL), -EINVAL);
	ck_assert_int_eq(irq_level_notifier_fd(NULL), -EINVAL);
	ck_assert_int_eq(irq_level_notifier_resample_fd(NULL), -EINVAL);
	ck_assert_int_eq(irq_level_notifier_resample(NULL), -EINVAL);
	ck_assert_int_eq(irq_level_notifier_line(NULL, &line), -EINVAL);
	ck_assert(!irq_level_notifier_level(NULL));
	irq_level_notifier_destroy(NULL);

	ck_assert_int_eq(irq_level_notifier_create(&n), 0);
	ck_assert_int_eq(irq_level_notifier_line(n, NULL), -EINVAL);
	ck_assert_int_eq(irq_level_notifier_line(n, &line), 0);
	fd = irq_level_notifier_fd(n);
	rfd = irq_level_notifier_resample_fd(n);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_ne(fd, rfd);

	/* Assert signals; deassert only records the level. */
	ck_assert_int_eq(irq_line_assert(&line), 0);
	ck_assert(irq_level_notifier_level(n));
	ck_assert_int_eq(fd_count(fd), 1);
	/* End of interrupt while still high: signalled again. */
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(n), 1);
	ck_assert_int_eq(fd_count(fd), 1);
	ck_assert_int_eq(fd_count(rfd), 0);
	/* Nothing to resample: nothing happens. */
	ck_assert_int_eq(irq_level_notifier_resample(n), 0);
	ck_assert_int_eq(fd_count(fd), 0);
	/* Deasserted before the end of interrupt: not signalled again. */
	ck_assert_int_eq(irq_line_deassert(&line), 0);
	ck_assert(!irq_level_notifier_level(n));
	ck_assert_int_eq(fd_count(fd), 0);
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(n), 0);
	ck_assert_int_eq(fd_count(fd), 0);
	/* A pulse signals without holding the line. */
	ck_assert_int_eq(irq_line_pulse(&line), 0);
	ck_assert_int_eq(fd_count(fd), 1);
	ck_assert(!irq_level_notifier_level(n));
	irq_level_notifier_destroy(n);
}
END_TEST

/* virtio-mmio's level interrupt through the notifier: re-asserted on
 * resample until the driver acknowledges it. */
START_TEST(test_level_notifier_virtio_mmio)
{
	struct virtio_mmio_config mc = {0};
	uint64_t one = 1;
	int fd, rfd;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(virtio_rng_create(NULL, &vdev), 0);
	ck_assert_int_eq(irq_level_notifier_create(&lvl), 0);
	ck_assert_int_eq(irq_level_notifier_line(lvl, &mc.irq), 0);
	ck_assert_int_eq(virtio_mmio_create(vdev, &mc, &vmo), 0);
	ck_assert_int_eq(io_bus_register(bus, MMIO_BASE, virtio_mmio_size(vmo),
					 virtio_mmio_bus_ops(), vmo),
			 0);
	fd = irq_level_notifier_fd(lvl);
	rfd = irq_level_notifier_resample_fd(lvl);
	raise_queue();
	ck_assert_int_eq(fd_count(fd), 1);
	ck_assert_uint_eq(rd(MMIO_BASE + VIRTIO_MMIO_INTERRUPT_STATUS, 4), 1);
	/* The guest EOIs without acknowledging: the line is still high. */
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(lvl), 1);
	ck_assert_int_eq(fd_count(fd), 1);
	/* Acknowledged, then EOI: quiet. */
	wr(MMIO_BASE + VIRTIO_MMIO_INTERRUPT_ACK, 4, 1);
	ck_assert(!irq_level_notifier_level(lvl));
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(lvl), 0);
	ck_assert_int_eq(fd_count(fd), 0);
	teardown();
}
END_TEST

/* virtio-pci INTx (MSI-X off) through the notifier: the ISR read lowers
 * the level. */
START_TEST(test_level_notifier_virtio_pci_intx)
{
	uint64_t one = 1;
	int fd, rfd;

	pci_setup();
	fd = irq_level_notifier_fd(lvl);
	rfd = irq_level_notifier_resample_fd(lvl);
	raise_queue();
	ck_assert_int_eq(fd_count(fd), 1);
	ck_assert(irq_level_notifier_level(lvl));
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(lvl), 1);
	ck_assert_int_eq(fd_count(fd), 1);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_ISR_OFFSET, 1), 1);
	ck_assert(!irq_level_notifier_level(lvl));
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(lvl), 0);
	ck_assert_int_eq(fd_count(fd), 0);
	/* With MSI-X on, INTx stays low and the vector's notifier is used. */
	set_notifiers();
	entry_write(0, MSI_ADDR, 0x40, false);
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	queue_vector(0);
	raise_queue();
	ck_assert_int_eq(fd_count(fd), 0);
	ck_assert_int_eq(count_signals(vecn[0]), 1);
	teardown();
}
END_TEST

/* A device raising its line while the VMM resamples on another thread:
 * after the last deassert no re-assert happens, and while held high every
 * resample re-asserts.  Bounded by iterations. */
struct lvl_race {
	struct irq_level_notifier *n;
	struct irq_line line;
	atomic_bool stop;
};

static void *lvl_toggler(void *arg)
{
	struct lvl_race *r = arg;

	for (unsigned i = 0; i < 20000; i++)
		irq_line_set(&r->line, i & 1);
	irq_line_deassert(&r->line);
	atomic_store(&r->stop, true);
	return NULL;
}

START_TEST(test_level_notifier_threaded_resample)
{
	struct lvl_race r = {0};
	pthread_t t;
	uint64_t one = 1;
	int fd, rfd;

	ck_assert_int_eq(irq_level_notifier_create(&r.n), 0);
	ck_assert_int_eq(irq_level_notifier_line(r.n, &r.line), 0);
	fd = irq_level_notifier_fd(r.n);
	rfd = irq_level_notifier_resample_fd(r.n);
	ck_assert_int_eq(pthread_create(&t, NULL, lvl_toggler, &r), 0);
	while (!atomic_load(&r.stop)) {
		ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
		ck_assert_int_ge(irq_level_notifier_resample(r.n), 0);
	}
	pthread_join(t, NULL);
	fd_count(fd);
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(r.n), 0);
	ck_assert_int_eq(fd_count(fd), 0);
	ck_assert_int_eq(irq_line_assert(&r.line), 0);
	fd_count(fd);
	ck_assert_int_eq(write(rfd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(irq_level_notifier_resample(r.n), 1);
	ck_assert_int_eq(fd_count(fd), 1);
	irq_level_notifier_destroy(r.n);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio-irqfd");
	TCase *tc = tcase_create("msix");
	TCase *tl = tcase_create("level");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_irqfd_hook_calls);
	tcase_add_test(tc, test_irqfd_unmasked_goes_to_notifier);
	tcase_add_test(tc, test_irqfd_route_failure_falls_back_to_sink);
	tcase_add_test(tc, test_irqfd_masked_pending_then_unmask);
	tcase_add_test(tc, test_irqfd_queue_direct_fd);
	tcase_add_test(tc, test_hostile_irqfd_vector_programming);
	tcase_add_test(tc, test_irqfd_toggle_mask_while_notifying);
	tcase_add_test(tc, test_irqfd_threaded_reprogram_vs_deliver);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tl, 60);
	tcase_add_test(tl, test_level_notifier_basics);
	tcase_add_test(tl, test_level_notifier_virtio_mmio);
	tcase_add_test(tl, test_level_notifier_virtio_pci_intx);
	tcase_add_test(tl, test_level_notifier_threaded_resample);
	suite_add_tcase(s, tl);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
