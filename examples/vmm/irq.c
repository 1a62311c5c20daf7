/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm: interrupt delivery to KVM.
 *
 *  - MSI-X: every vector of a virtio-pci function gets a GSI of its own
 *    (from an id allocator over MSI_GSI_FIRST..MSI_GSI_LAST), an eventfd
 *    registered as its irqfd, and an MSI route kept equal to what the
 *    guest programmed: the transport's msix_update hook (called on the
 *    vCPU thread that wrote the table, mask or enable bit) rewrites the
 *    VM's whole routing table (the irqchip pins plus every MSI route) with
 *    KVM_SET_GSI_ROUTING, under one lock, so the table stays consistent
 *    whatever the vCPUs do.  A vector whose route or irqfd could not be set
 *    up is sent with KVM_SIGNAL_MSI (the transport's MSI sink).
 *  - Wired level lines (virtio-mmio, PCI INTx): an irqfd with a resample
 *    fd on the line's GSI (PCI slot s: INTA# on GSI 16 + s % 8, described
 *    by the ACPI _PRT and the MP table); the I/O thread polls the resample fds and asserts again
 *    while the device still holds its line high.  If KVM refuses the
 *    irqfd the line uses KVM_IRQ_LINE.
 *
 * CVMM_IRQFD=0 in the environment turns irqfds off (KVM_SIGNAL_MSI and
 * KVM_IRQ_LINE only), to compare the two paths.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <cvmm/devices/irq.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/kvm-ioctls.h>
#include <cvmm/linux-loader.h>
#include <cvmm/vm-allocator.h>

#include "cvmm.h"

#define IRQCHIP_PINS  24u /* IOAPIC pins; GSIs 0..15 also reach the PICs */
#define MSI_GSI_FIRST IRQCHIP_PINS
#define MSI_GSI_LAST  1023u
#define MSI_GSIS      (MSI_GSI_LAST - MSI_GSI_FIRST + 1u)
#define LEVEL_MAX     32u
#define INTX_GSI_BASE 16u /* PCI slot s: INTA# on 16 + s % 8 */
#define INTX_MAX      32u

struct msix_vec {
	uint32_t gsi; /* 0: none (the vector uses KVM_SIGNAL_MSI) */
	struct event_notifier *n;
	/* The route installed for @gsi; under the transport's interrupt
	 * lock (only the hook touches them). */
	bool routed;
	uint64_t addr;
	uint32_t data;
};

struct cvmm_irq_msix {
	struct cvmm_irq *irq;
	struct cvmm_irq_msix *next;
	uint16_t nvec; /* 0 until attached */
	struct msix_vec *v;
};

struct msi_route {
	bool valid;
	uint64_t addr;
	uint32_t data;
};

struct level {
	struct cvmm_irq *irq;
	uint32_t gsi;
	struct irq_level_notifier *n; /* NULL: KVM_IRQ_LINE */
};

struct cvmm_irq {
	struct kvm_vm_obj *kvm;
	bool use_irqfd;
	struct id_allocator *gsis;
	struct cvmm_irq_msix *devs;

	/* The routing table: one lock around every rebuild. */
	pthread_mutex_t lock;
	struct kvm_gsi_routing *table;
	struct msi_route routes[MSI_GSIS];

	struct level levels[LEVEL_MAX];
	unsigned nlevels;
	struct boot_pci_irq intx[INTX_MAX]; /* for the _PRT and MP table */
	unsigned nintx;

	/* Figures for --verbose. */
	unsigned vec_irqfd, vec_fallback;
	atomic_uint route_updates, route_failures, msi_sent;
};

/* ------------------------------------------------------------ routing */

/* KVM's default table (the irqchip pins) plus every valid MSI route;
 * irq->lock held. */
static int rebuild_locked(struct cvmm_irq *irq)
{
	struct kvm_gsi_routing *t = irq->table;
	uint32_t gsi;
	int r = 0;

	kvm_gsi_routing_clear(t);
	for (gsi = 0; gsi < IRQCHIP_PINS && r == 0; gsi++) {
		r = kvm_gsi_routing_add_irqchip(t, gsi, KVM_IRQCHIP_IOAPIC,
						gsi);
		if (r == 0 && gsi < 16)
			r = kvm_gsi_routing_add_irqchip(
				t, gsi,
				gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
					: KVM_IRQCHIP_PIC_SLAVE,
				gsi % 8);
	}
	for (gsi = 0; gsi < MSI_GSIS && r == 0; gsi++) {
		const struct msi_route *m = &irq->routes[gsi];

		if (m->valid)
			r = kvm_gsi_routing_add_msi(t, MSI_GSI_FIRST + gsi,
						    m->addr, m->data, 0, 0);
	}
	if (r == 0)
		r = kvm_vm_set_gsi_routing(irq->kvm, t);
	return r;
}

/* The transport's msix_update hook (and pci-passthrough's vector_update):
 * runs on the vCPU thread that changed the vector, under the function's
 * interrupt lock. */
static int msix_update(void *opaque, uint16_t vector, uint64_t addr,
		       uint32_t data, bool masked)
{
	struct cvmm_irq_msix *d = opaque;
	struct cvmm_irq *irq = d->irq;
	struct msix_vec *v;
	struct msi_route *m, old;
	int r;

	if (vector >= d->nvec || !d->v[vector].n)
		return -ENOENT; /* not attached: KVM_SIGNAL_MSI */
	v = &d->v[vector];
	/* Masked: nothing is sent until the next update; keep the route. */
	if (masked || (v->routed && v->addr == addr && v->data == data))
		return 0;
	m = &irq->routes[v->gsi - MSI_GSI_FIRST];
	pthread_mutex_lock(&irq->lock);
	old = *m;
	*m = (struct msi_route){.valid = true, .addr = addr, .data = data};
	r = rebuild_locked(irq);
	if (r < 0)
		*m = old; /* KVM kept its old table: so do we */
	pthread_mutex_unlock(&irq->lock);
	if (r < 0) {
		atomic_fetch_add(&irq->route_failures, 1);
		v->routed = false;
		return r;
	}
	atomic_fetch_add(&irq->route_updates, 1);
	v->routed = true;
	v->addr = addr;
	v->data = data;
	return 0;
}

static int signal_msi(void *opaque, uint64_t address, uint32_t data)
{
	struct cvmm_irq *irq = opaque;
	int r = kvm_vm_signal_msi(irq->kvm, address, data, 0, 0);

	atomic_fetch_add_explicit(&irq->msi_sent, 1, memory_order_relaxed);
	return r < 0 ? r : 0;
}

int cvmm_irq_create(struct kvm_vm_obj *kvm, struct cvmm_irq **out)
{
	struct cvmm_irq *irq = calloc(1, sizeof(*irq));
	const char *env = getenv("CVMM_IRQFD");
	int r;

	*out = NULL;
	if (!irq)
		return -ENOMEM;
	irq->kvm = kvm;
	irq->use_irqfd = !(env && strcmp(env, "0") == 0);
	pthread_mutex_init(&irq->lock, NULL);
	r = id_allocator_create(MSI_GSI_FIRST, MSI_GSI_LAST, &irq->gsis);
	if (r == 0)
		r = kvm_gsi_routing_create(IRQCHIP_PINS + 16 + MSI_GSIS,
					   &irq->table);
	if (r < 0) {
		cvmm_irq_destroy(irq);
		return r;
	}
	*out = irq;
	return 0;
}

void cvmm_irq_destroy(struct cvmm_irq *irq)
{
	struct cvmm_irq_msix *d, *next;
	unsigned i;

	if (!irq)
		return;
	for (d = irq->devs; d; d = next) {
		next = d->next;
		for (i = 0; i < d->nvec; i++) {
			struct msix_vec *v = &d->v[i];

			if (v->n)
				kvm_vm_irqfd_deassign(irq->kvm,
						      event_notifier_fd(v->n),
						      v->gsi);
			event_notifier_destroy(v->n);
		}
		free(d->v);
		free(d);
	}
	for (i = 0; i < irq->nlevels; i++) {
		struct level *l = &irq->levels[i];

		if (l->n)
			kvm_vm_irqfd_deassign(
				irq->kvm, irq_level_notifier_fd(l->n), l->gsi);
		irq_level_notifier_destroy(l->n);
	}
	kvm_gsi_routing_destroy(irq->table);
	id_allocator_destroy(irq->gsis);
	pthread_mutex_destroy(&irq->lock);
	free(irq);
}

/* ---------------------------------------------------------------- MSI-X */

/* A vector group of @irq (freed with it). */
static struct cvmm_irq_msix *group_new(struct cvmm_irq *irq)
{
	struct cvmm_irq_msix *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->irq = irq;
	d->next = irq->devs;
	irq->devs = d;
	return d;
}

int cvmm_irq_msix_config(struct cvmm_irq *irq, struct virtio_pci_config *pc,
			 struct cvmm_irq_msix **out)
{
	struct cvmm_irq_msix *d = group_new(irq);

	if (!d)
		return -ENOMEM;
	pc->msi = (struct msi_sink){.send = signal_msi, .opaque = irq};
	if (irq->use_irqfd) {
		pc->msix_update = msix_update;
		pc->msix_opaque = d;
	}
	*out = d;
	return 0;
}

/* One vector: a GSI, an eventfd, the irqfd.  On failure the vector
 * keeps KVM_SIGNAL_MSI. */
static int vec_setup(struct cvmm_irq *irq, struct msix_vec *v)
{
	uint32_t gsi;
	int r = id_allocator_allocate(irq->gsis, &gsi);

	if (r < 0)
		return r;
	r = event_notifier_create(0, &v->n);
	if (r == 0) {
		r = kvm_vm_irqfd_assign(irq->kvm, event_notifier_fd(v->n), gsi,
					-1);
		if (r < 0) {
			event_notifier_destroy(v->n);
			v->n = NULL;
		}
	}
	if (r < 0) {
		id_allocator_free(irq->gsis, gsi);
		return r;
	}
	v->gsi = gsi;
	return 0;
}

/* @n vectors for group @d, each with a GSI, a notifier and an irqfd
 * where possible (the others have no notifier). */
static int vectors_alloc(struct cvmm_irq_msix *d, uint16_t n)
{
	d->v = calloc(n, sizeof(*d->v));
	if (!d->v)
		return -ENOMEM;
	d->nvec = n;
	for (uint16_t i = 0; i < n; i++)
		vec_setup(d->irq, &d->v[i]);
	return 0;
}

int cvmm_irq_msix_attach(struct cvmm_irq_msix *d, struct virtio_pci *vp)
{
	struct cvmm_irq *irq = d->irq;
	int n = virtio_pci_num_vectors(vp), r;
	uint16_t i;

	if (!irq->use_irqfd || n <= 0)
		return 0;
	r = vectors_alloc(d, (uint16_t)n);
	if (r < 0)
		return r;
	for (i = 0; i < d->nvec; i++) {
		if (!d->v[i].n ||
		    virtio_pci_set_vector_notifier(vp, i, d->v[i].n) < 0) {
			irq->vec_fallback++;
			continue;
		}
		irq->vec_irqfd++;
	}
	return 0;
}

int cvmm_irq_vectors_create(struct cvmm_irq *irq, uint16_t n,
			    struct cvmm_irq_msix **out)
{
	struct cvmm_irq_msix *d;
	int r;

	*out = NULL;
	if (!irq->use_irqfd)
		return -ENOTSUP;
	d = group_new(irq);
	if (!d)
		return -ENOMEM;
	if (n) {
		r = vectors_alloc(d, n);
		if (r < 0)
			return r; /* d stays on the list, freed with @irq */
	}
	*out = d;
	return 0;
}

struct event_notifier *cvmm_irq_vector_notifier(const struct cvmm_irq_msix *d,
						uint16_t i)
{
	return d && i < d->nvec ? d->v[i].n : NULL;
}

int cvmm_irq_vector_update(void *opaque, uint16_t vector, uint64_t addr,
			   uint32_t data, bool masked)
{
	return msix_update(opaque, vector, addr, data, masked);
}

/* ------------------------------------------------------ wired lines */

static int line_set(void *opaque, bool level)
{
	struct level *l = opaque;

	return kvm_vm_irq_line(l->irq->kvm, l->gsi, level ? 1 : 0);
}

int cvmm_irq_level_line(struct cvmm_irq *irq, uint32_t gsi,
			struct irq_line *line)
{
	struct level *l;
	int r;

	if (irq->nlevels >= LEVEL_MAX)
		return -ENOSPC;
	l = &irq->levels[irq->nlevels];
	l->irq = irq;
	l->gsi = gsi;
	if (irq->use_irqfd && irq_level_notifier_create(&l->n) == 0) {
		r = kvm_vm_irqfd_assign(irq->kvm, irq_level_notifier_fd(l->n),
					gsi,
					irq_level_notifier_resample_fd(l->n));
		if (r == 0) {
			irq->nlevels++;
			return irq_level_notifier_line(l->n, line);
		}
		irq_level_notifier_destroy(l->n);
		l->n = NULL;
	}
	irq->nlevels++;
	*line = (struct irq_line){.set = line_set, .opaque = l};
	return 0;
}

int cvmm_irq_pci_intx(struct cvmm_irq *irq, unsigned slot,
		      struct irq_line *line, uint32_t *gsi)
{
	struct boot_pci_irq *p;
	int r;

	if (irq->nintx >= INTX_MAX || slot > 31)
		return -ENOSPC;
	*gsi = INTX_GSI_BASE + slot % 8u;
	r = cvmm_irq_level_line(irq, *gsi, line);
	if (r < 0)
		return r;
	p = &irq->intx[irq->nintx++];
	*p = (struct boot_pci_irq){
		.slot = (uint8_t)slot, .pin = 0, .gsi = (uint8_t)*gsi};
	return 0;
}

struct msi_sink cvmm_irq_msi_sink(struct cvmm_irq *irq)
{
	return (struct msi_sink){.send = signal_msi, .opaque = irq};
}

int cvmm_irq_pci_route_add(struct cvmm_irq *irq, unsigned slot, uint32_t gsi)
{
	if (irq->nintx >= INTX_MAX || slot > 31 || gsi > 0xff)
		return -ENOSPC;
	irq->intx[irq->nintx++] = (struct boot_pci_irq){
		.slot = (uint8_t)slot, .pin = 0, .gsi = (uint8_t)gsi};
	return 0;
}

size_t cvmm_irq_pci_routes(const struct cvmm_irq *irq,
			   const struct boot_pci_irq **out)
{
	*out = irq->intx;
	return irq->nintx;
}

int cvmm_irq_epoll_add(struct cvmm_irq *irq, int ep, uint64_t tag)
{
	unsigned i;

	for (i = 0; i < irq->nlevels; i++) {
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.u64 = tag + i};

		if (!irq->levels[i].n)
			continue;
		if (epoll_ctl(ep, EPOLL_CTL_ADD,
			      irq_level_notifier_resample_fd(irq->levels[i].n),
			      &ev) < 0)
			return -errno;
	}
	return 0;
}

void cvmm_irq_ready(struct cvmm_irq *irq, uint64_t index)
{
	if (index < irq->nlevels && irq->levels[index].n)
		irq_level_notifier_resample(irq->levels[index].n);
}

void cvmm_irq_report(struct cvmm_irq *irq)
{
	unsigned i, lv = 0;

	for (i = 0; i < irq->nlevels; i++)
		lv += irq->levels[i].n != NULL;
	fprintf(stderr,
		"cvmm: interrupts: MSI-X vectors: %u on irqfds, %u on "
		"KVM_SIGNAL_MSI; %u route updates, %u failed; %u messages "
		"sent with KVM_SIGNAL_MSI; wired lines: %u of %u on "
		"irqfds%s\n",
		irq->vec_irqfd, irq->vec_fallback,
		atomic_load(&irq->route_updates),
		atomic_load(&irq->route_failures), atomic_load(&irq->msi_sent),
		lv, irq->nlevels, irq->use_irqfd ? "" : " (CVMM_IRQFD=0)");
}
