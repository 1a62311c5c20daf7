/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm --vfio PATH: a host PCI function bound to vfio-pci, passed through
 * to the guest (libvfio + libdevices' pci-passthrough).  All guest RAM is
 * DMA-mapped (IOVA = guest physical) before the guest runs; the mappable
 * BAR parts become KVM memory slots wherever the guest puts the BARs.
 * MSI and MSI-X vectors each get a GSI and an irqfd from irq.c (the
 * machinery of virtio-pci's MSI-X vectors); the passthrough object calls
 * irq.c's route hook whenever the guest programs, masks or unmasks a
 * vector and, while the route is current and the vector unmasked, has
 * VFIO signal that irqfd itself: device -> host kernel -> KVM -> vCPU,
 * no thread of cvmm in the path.  Masked vectors (whose interrupts must
 * become pending bits), vectors without a route and everything under
 * CVMM_IRQFD=0 arrive on eventfds a thread of this file polls and hands
 * to the PCI framework, which sends them through its notifier or with
 * KVM_SIGNAL_MSI (the msi sink).  --verbose prints, at exit, how many
 * interrupts took that thread.  INTx goes straight from VFIO's eventfd
 * to a KVM irqfd on @intx_gsi with VFIO's resample eventfd (KVM unmasks
 * on the guest's EOI); cvmm's _PRT routes slot 31 INTA to that GSI.
 * The group is registered with a KVM-VFIO device (KVM needs it for
 * devices doing non-coherent DMA); a KVM without one is only reported.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cvmm/devices/pci-passthrough.h>
#include <cvmm/kvm-ioctls.h>
#include <cvmm/vfio-memory.h>
#include <cvmm/vfio.h>

#include "cvmm.h"

/* KVM memory slots for the BAR parts: after the RAM slots. */
#define VFIO_SLOT_BASE 16u
#define VFIO_SLOTS     16u

struct cvmm_vfio {
	struct kvm_vm_obj *kvm;
	struct guest_memory *mem;
	struct vfio_container *c;
	struct vfio_device *d;
	struct kvm_dev_obj *kdev; /* KVM-VFIO, the group registered */
	struct pci_passthrough *pt;
	struct cvmm_irq_msix *vecs; /* GSIs + irqfds (irq.c), NULL: none */
	unsigned nvec, vec_irqfd;
	atomic_uint routed, route_refused, thread_irqs;
	unsigned slot;
	bool in_root, dma_mapped, verbose;
	int intx_fd; /* assigned as a KVM irqfd, -1: none */
	uint32_t intx_gsi;
	struct {
		void *host;
		bool used;
	} slots[VFIO_SLOTS];
	int stop_fd;
	pthread_t thread;
	bool thread_started;
};

static int map_bar_part(void *opaque, uint64_t gpa, void *host, uint64_t size,
			bool map)
{
	struct cvmm_vfio *v = opaque;
	unsigned i, free_slot = VFIO_SLOTS;

	for (i = 0; i < VFIO_SLOTS; i++) {
		if (v->slots[i].used && v->slots[i].host == host)
			break;
		if (!v->slots[i].used && free_slot == VFIO_SLOTS)
			free_slot = i;
	}
	if (!map) {
		if (i == VFIO_SLOTS)
			return 0;
		v->slots[i].used = false;
		return kvm_vm_delete_memory_region(v->kvm, VFIO_SLOT_BASE + i);
	}
	if (i == VFIO_SLOTS)
		i = free_slot;
	if (i == VFIO_SLOTS)
		return -ENOSPC; /* stays trapped */
	v->slots[i].used = true;
	v->slots[i].host = host;
	if (v->verbose)
		fprintf(stderr,
			"cvmm: vfio: BAR part of %llu KiB at guest 0x%llx "
			"mapped directly\n",
			(unsigned long long)(size >> 10),
			(unsigned long long)gpa);
	return kvm_vm_set_user_memory_region(v->kvm, VFIO_SLOT_BASE + i, 0, gpa,
					     size, host);
}

/* pci-passthrough's vector_update: irq.c's route hook, counted. */
static int vector_update(void *opaque, uint16_t vector, uint64_t address,
			 uint32_t data, bool masked)
{
	struct cvmm_vfio *v = opaque;
	int r = cvmm_irq_vector_update(v->vecs, vector, address, data, masked);

	if (r < 0)
		atomic_fetch_add(&v->route_refused, 1);
	else if (!masked)
		atomic_fetch_add(&v->routed, 1);
	return r;
}

/* Each MSI/MSI-X vector on an irqfd of irq.c where it can have one;
 * CVMM_IRQFD=0 or no GSI left: the vectors stay on the thread. */
static void vectors_bypass(struct cvmm_vfio *v, struct cvmm_irq *irq)
{
	v->nvec = pci_passthrough_num_vectors(v->pt);
	if (!irq || v->nvec == 0 || v->nvec > UINT16_MAX ||
	    cvmm_irq_vectors_create(irq, (uint16_t)v->nvec, &v->vecs) < 0)
		return;
	for (unsigned i = 0; i < v->nvec; i++) {
		struct event_notifier *n =
			cvmm_irq_vector_notifier(v->vecs, (uint16_t)i);

		if (n && pci_passthrough_set_vector_notifier(v->pt, i, n) == 0)
			v->vec_irqfd++;
	}
}

/* Polls the device's eventfds until stop_fd is signalled. */
static void *poll_thread(void *arg)
{
	struct cvmm_vfio *v = arg;
	unsigned n = pci_passthrough_num_fds(v->pt);
	struct pollfd *p = calloc(n + 1, sizeof(*p));

	if (!p)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		p[i].fd = pci_passthrough_fd(v->pt, i);
		p[i].events = POLLIN;
		if (p[i].fd == v->intx_fd)
			p[i].fd = -1; /* KVM's irqfd consumes it */
	}
	p[n].fd = v->stop_fd;
	p[n].events = POLLIN;
	for (;;) {
		if (poll(p, n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[n].revents)
			break;
		for (unsigned i = 0; i < n; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			if (i < v->nvec)
				atomic_fetch_add_explicit(&v->thread_irqs, 1,
							  memory_order_relaxed);
			pci_passthrough_fd_ready(v->pt, i);
		}
	}
	free(p);
	return NULL;
}

static int vfio_fail(struct cvmm_vfio *v, const char *what, int err)
{
	fprintf(stderr, "cvmm: --vfio: %s: %s\n", what, strerror(-err));
	(void)v;
	return err;
}

int cvmm_vfio_create(const char *sysfs_path, struct kvm_vm_obj *kvm,
		     struct guest_memory *mem, struct pci_root *root,
		     unsigned slot, struct cvmm_irq *irq, uint32_t intx_gsi,
		     bool verbose, struct cvmm_vfio **out)
{
	struct pci_passthrough_config pc = {.map = map_bar_part,
					    .vector_update = vector_update};
	struct msi_sink msi = cvmm_irq_msi_sink(irq);
	struct cvmm_vfio *v = calloc(1, sizeof(*v));
	int err;

	if (!v)
		return -ENOMEM;
	v->kvm = kvm;
	v->mem = mem;
	v->slot = slot;
	v->verbose = verbose;
	v->stop_fd = -1;
	v->intx_fd = -1;
	v->intx_gsi = intx_gsi;
	pc.map_opaque = v;
	pc.vector_opaque = v;
	err = vfio_container_create(NULL, &v->c);
	if (err) {
		vfio_fail(v, "/dev/vfio/vfio", err);
		goto fail;
	}
	err = vfio_device_create_sysfs(v->c, sysfs_path, NULL, &v->d);
	if (err) {
		vfio_fail(v, sysfs_path, err);
		goto fail;
	}
	err = kvm_dev_create(kvm, KVM_DEV_TYPE_VFIO, &v->kdev);
	if (!err) {
		err = vfio_group_kvm_add(vfio_device_group(v->d),
					 kvm_dev_fd(v->kdev));
		if (err) {
			kvm_dev_destroy(v->kdev);
			v->kdev = NULL;
		}
	}
	if (verbose)
		fprintf(stderr, "cvmm: vfio: KVM-VFIO device: %s\n",
			err ? strerror(-err) : "group registered");
	/* Every guest RAM region, IOVA = guest physical, before it runs. */
	err = vfio_container_dma_map_guest_memory(v->c, mem);
	if (err) {
		vfio_fail(v, "DMA-mapping guest RAM", err);
		goto fail;
	}
	v->dma_mapped = true;
	err = pci_passthrough_create(v->d, &pc, &v->pt);
	if (err) {
		vfio_fail(v, "PCI passthrough", err);
		goto fail;
	}
	pci_device_set_msi_sink(pci_passthrough_pci_device(v->pt), &msi);
	vectors_bypass(v, irq);
	{
		int trig, res;

		if (pci_passthrough_intx_fds(v->pt, &trig, &res) == 0) {
			err = kvm_vm_irqfd_assign(kvm, trig, intx_gsi, res);
			if (err) {
				vfio_fail(v, "INTx irqfd", err);
				goto fail;
			}
			v->intx_fd = trig;
		}
	}
	err = pci_passthrough_add_to_root(v->pt, root, slot, 0);
	if (err) {
		vfio_fail(v, "PCI slot", err);
		goto fail;
	}
	v->in_root = true;
	v->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (v->stop_fd < 0) {
		err = vfio_fail(v, "eventfd", -errno);
		goto fail;
	}
	err = -pthread_create(&v->thread, NULL, poll_thread, v);
	if (err) {
		vfio_fail(v, "thread", err);
		goto fail;
	}
	v->thread_started = true;
	if (verbose)
		fprintf(stderr,
			"cvmm: vfio: %s at 00:%02x.0, IOMMU type %d, INTx %s, "
			"MSI/MSI-X: %u of %u vectors on irqfds\n",
			sysfs_path, slot, vfio_container_iommu_type(v->c),
			v->intx_fd >= 0 ? "on a resampling irqfd" : "none",
			v->vec_irqfd, v->nvec);
	*out = v;
	return 0;
fail:
	cvmm_vfio_destroy(v, root);
	return err;
}

void cvmm_vfio_destroy(struct cvmm_vfio *v, struct pci_root *root)
{
	uint64_t one = 1;

	if (!v)
		return;
	if (v->verbose && v->pt)
		fprintf(stderr,
			"cvmm: vfio: MSI/MSI-X: %u of %u vectors on irqfds; "
			"%u routes installed unmasked, %u refused; %u VFIO "
			"vector switches refused; %u interrupts through the "
			"polling thread\n",
			v->vec_irqfd, v->nvec, atomic_load(&v->routed),
			atomic_load(&v->route_refused),
			pci_passthrough_steer_failures(v->pt),
			atomic_load(&v->thread_irqs));
	if (v->thread_started) {
		if (write(v->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(v->thread, NULL);
	}
	if (v->stop_fd >= 0)
		close(v->stop_fd);
	if (v->intx_fd >= 0)
		kvm_vm_irqfd_deassign(v->kvm, v->intx_fd, v->intx_gsi);
	if (v->in_root)
		pci_root_remove_device(root, v->slot, 0);
	pci_passthrough_destroy(v->pt);
	if (v->dma_mapped)
		vfio_container_dma_unmap_guest_memory(
			v->c, v->mem, guest_memory_num_regions(v->mem));
	if (v->kdev) {
		vfio_group_kvm_del(vfio_device_group(v->d),
				   kvm_dev_fd(v->kdev));
		kvm_dev_destroy(v->kdev);
	}
	vfio_device_destroy(v->d);
	vfio_container_destroy(v->c);
	free(v);
}
