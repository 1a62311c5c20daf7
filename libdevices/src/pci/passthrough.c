/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* PCI passthrough over libvfio (cvmm/devices/pci-passthrough.h). */
#include <cvmm/devices/pci-passthrough.h>
#include <cvmm/vfio.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define CFG	   VFIO_PCI_CONFIG_REGION_INDEX
#define NBARS	   6
#define MAX_DIRECT 3 /* parts of one mmapped area around table/PBA */

enum fd_kind {
	FD_MSIX,
	FD_MSI,
	FD_INTX
};

struct direct_map {
	uint64_t bar_off;
	uint64_t size;
	void *host; /* the part's host address (inside @base) */
	void *base; /* the whole area's mapping, for munmap */
	uint32_t area;
	bool owner; /* this entry unmaps @base */
};

struct pci_passthrough {
	struct vfio_device *vdev;
	struct pci_device *dev;
	bool added;
	struct pci_passthrough_config cfg;
	pthread_mutex_t lock; /* VFIO interrupt state */

	uint16_t msix_vectors;
	uint8_t msix_cap;     /* emulated offset, 0: none */
	bool msix_on;	      /* enabled on VFIO */
	bool msix_want;	      /* enabled by the guest */
	unsigned msi_vectors; /* capable */
	unsigned msi_on;      /* enabled on VFIO */
	unsigned msi_want;    /* enabled by the guest */
	bool has_intx;
	bool intx_on;
	bool intx_pending;
	int intx_resample;

	int *fds; /* MSI-X vectors, MSI vectors, INTx trigger */
	unsigned nfds;
	/* Per MSI-X / MSI vector (the fd indices below msix + msi vectors),
	 * under p->lock: the eventfd VFIO is to signal (fds[i], or the
	 * VMM's irqfd while the vector bypasses this object), and the VMM's
	 * irqfd eventfd (-1: none; written atomically, read by any thread). */
	int *trig;
	int *bypass;
	atomic_uint steer_failures;

	struct direct_map *maps;
	unsigned nmaps;
	bool bar_mapped[NBARS];
	uint64_t bar_gpa[NBARS];
	uint16_t cmd; /* guest command bits forwarded */
};

static int cfg_read(struct vfio_device *v, uint32_t off, void *buf, size_t len)
{
	return vfio_device_region_read(v, CFG, off, buf, len);
}

static unsigned fd_index(const struct pci_passthrough *p, enum fd_kind k,
			 unsigned i)
{
	if (k == FD_MSIX)
		return i;
	if (k == FD_MSI)
		return p->msix_vectors + i;
	return p->msix_vectors + p->msi_vectors;
}

/* ------------------------------------------------- VFIO interrupt modes */

static void intx_set(struct pci_passthrough *p, bool on)
{
	if (!p->has_intx || p->intx_on == on)
		return;
	if (on) {
		__atomic_store_n(
			&p->intx_on,
			vfio_device_intx_enable(p->vdev,
						p->fds[fd_index(p, FD_INTX, 0)],
						p->intx_resample) == 0,
			__ATOMIC_RELEASE);
	} else {
		vfio_device_irq_disable(p->vdev, VFIO_PCI_INTX_IRQ_INDEX);
		__atomic_store_n(&p->intx_on, false, __ATOMIC_RELEASE);
		/* Callers may hold the PCI interrupt lock (msi_update): the
		 * emulated level is lowered later, by intx_eoi(), with no
		 * lock held.  The framework does not assert INTx while MSI
		 * or MSI-X is on meanwhile. */
		__atomic_store_n(&p->intx_pending, true, __ATOMIC_RELEASE);
	}
}

/* VFIO enables one of INTx, MSI, MSI-X at a time.  A guest may enable MSI
 * and MSI-X together (undefined by PCI; a hostile guest does it): MSI-X
 * wins, MSI comes back when MSI-X goes off, INTx when neither is on.
 * Called with p->lock held, after msix_want / msi_want changed. */
static void irq_apply(struct pci_passthrough *p)
{
	unsigned msi = p->msix_want ? 0 : p->msi_want;

	if (p->msix_on && !p->msix_want) {
		vfio_device_irq_disable(p->vdev, VFIO_PCI_MSIX_IRQ_INDEX);
		p->msix_on = false;
	}
	if (p->msi_on && p->msi_on != msi) {
		vfio_device_irq_disable(p->vdev, VFIO_PCI_MSI_IRQ_INDEX);
		p->msi_on = 0;
	}
	if (p->msix_want && !p->msix_on) {
		intx_set(p, false);
		p->msix_on =
			vfio_device_irq_enable(p->vdev, VFIO_PCI_MSIX_IRQ_INDEX,
					       p->trig, p->msix_vectors) == 0;
	}
	if (msi && !p->msi_on) {
		intx_set(p, false);
		if (vfio_device_irq_enable(p->vdev, VFIO_PCI_MSI_IRQ_INDEX,
					   p->trig + fd_index(p, FD_MSI, 0),
					   msi) == 0)
			p->msi_on = msi;
	}
	if (!p->msix_on && !p->msi_on)
		intx_set(p, true);
}

static void msix_set(struct pci_passthrough *p, bool on)
{
	pthread_mutex_lock(&p->lock);
	p->msix_want = on;
	irq_apply(p);
	pthread_mutex_unlock(&p->lock);
}

static void msi_set(struct pci_passthrough *p, unsigned n)
{
	pthread_mutex_lock(&p->lock);
	p->msi_want = n > p->msi_vectors ? p->msi_vectors : n;
	irq_apply(p);
	pthread_mutex_unlock(&p->lock);
}

/* Point VFIO's vector @i (an MSI-X or MSI fd index) at the VMM's irqfd
 * (@direct) or at this object's eventfd.  While the IRQ is off on VFIO
 * only the choice is recorded (irq_apply() enables with it).  If VFIO
 * refuses, the vector falls back to this object's eventfd. */
static void vec_steer(struct pci_passthrough *p, unsigned i, bool direct)
{
	int by = __atomic_load_n(&p->bypass[i], __ATOMIC_ACQUIRE);
	int fd = direct && by >= 0 ? by : p->fds[i];
	uint32_t index = VFIO_PCI_MSIX_IRQ_INDEX, vec = i;
	bool on;

	pthread_mutex_lock(&p->lock);
	if (i >= p->msix_vectors) {
		index = VFIO_PCI_MSI_IRQ_INDEX;
		vec = i - p->msix_vectors;
		on = vec < p->msi_on;
	} else {
		on = p->msix_on;
	}
	if (p->trig[i] != fd) {
		if (on && vfio_device_irq_set_vector(p->vdev, index, vec, fd)) {
			atomic_fetch_add(&p->steer_failures, 1);
			fd = p->fds[i];
			if (vfio_device_irq_set_vector(p->vdev, index, vec, fd))
				fd = -1; /* VFIO has nothing for it now */
		}
		p->trig[i] = fd;
	}
	pthread_mutex_unlock(&p->lock);
}

/* The framework's msix_update / msi_vector_update for fd index @i: the
 * VMM's route first, then VFIO's eventfd: the VMM's irqfd only while the
 * route carries this message and the vector may be sent; otherwise this
 * object's eventfd, so a masked vector's interrupt reaches the framework
 * (which sets its pending bit). */
static int vec_update(struct pci_passthrough *p, unsigned i, uint64_t address,
		      uint32_t data, bool masked)
{
	int r = -ENOENT;

	if (p->cfg.vector_update &&
	    __atomic_load_n(&p->bypass[i], __ATOMIC_ACQUIRE) >= 0)
		r = p->cfg.vector_update(p->cfg.vector_opaque, (uint16_t)i,
					 address, data, masked);
	vec_steer(p, i, r == 0 && !masked);
	return r;
}

/* ---------------------------------------------------------- callbacks */

/* Lock order: p->lock is taken only around libvfio calls, never while a
 * PCI framework function is called (msi_update calls in here with the
 * framework's interrupt lock held). */
static void intx_eoi(struct pci_passthrough *p)
{
	/* The common case (no INTx pending) is one atomic load. */
	if (!__atomic_exchange_n(&p->intx_pending, false, __ATOMIC_ACQ_REL))
		return;
	pci_device_set_intx(p->dev, false);
	pthread_mutex_lock(&p->lock);
	if (p->intx_on)
		vfio_device_intx_unmask(p->vdev);
	pthread_mutex_unlock(&p->lock);
}

static void pt_bar_read(void *opaque, unsigned bar, uint64_t offset, void *data,
			unsigned len)
{
	struct pci_passthrough *p = opaque;

	if (vfio_device_region_read(p->vdev, bar, offset, data, len))
		memset(data, 0xff, len);
	intx_eoi(p);
}

static void pt_bar_write(void *opaque, unsigned bar, uint64_t offset,
			 const void *data, unsigned len)
{
	struct pci_passthrough *p = opaque;

	vfio_device_region_write(p->vdev, bar, offset, data, len);
	intx_eoi(p);
}

/* Does a write of @len bytes at @off touch byte @at? */
static bool covers(uint32_t off, unsigned len, uint32_t at)
{
	return at >= off && at < off + len;
}

static uint8_t byte_of(uint32_t value, uint32_t off, uint32_t at)
{
	return (uint8_t)(value >> (8 * (at - off)));
}

/* Status bit 3 (Interrupt Status) also from the physical function: when
 * the VMM delivers INTx through a KVM irqfd the framework never sees the
 * level, and a guest driver relying on PCI 2.3 masking (uio_pci_generic)
 * reads it to know the interrupt is its own. */
static void pt_config_read(void *opaque, uint32_t offset, unsigned len,
			   uint32_t *value)
{
	struct pci_passthrough *p = opaque;
	uint8_t st = 0;

	if (!p->has_intx || !covers(offset, len, PCI_STATUS))
		return;
	if (cfg_read(p->vdev, PCI_STATUS, &st, 1) == 0 &&
	    (st & PCI_STATUS_INTERRUPT))
		*value |= (uint32_t)PCI_STATUS_INTERRUPT
			  << (8 * (PCI_STATUS - offset));
}

static void pt_config_write(void *opaque, uint32_t offset, unsigned len,
			    uint32_t value)
{
	struct pci_passthrough *p = opaque;
	const uint16_t fwd = PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
			     PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;

	if (covers(offset, len, PCI_COMMAND) ||
	    covers(offset, len, PCI_COMMAND + 1)) {
		uint16_t phys = 0, cmd = p->cmd;

		if (covers(offset, len, PCI_COMMAND))
			cmd = (uint16_t)((cmd & 0xff00) |
					 byte_of(value, offset, PCI_COMMAND));
		if (covers(offset, len, PCI_COMMAND + 1))
			cmd = (uint16_t)((cmd & 0x00ff) |
					 byte_of(value, offset, PCI_COMMAND + 1)
						 << 8);
		p->cmd = cmd & fwd;
		if (cfg_read(p->vdev, PCI_COMMAND, &phys, 2) == 0) {
			phys = (uint16_t)((phys & ~fwd) | p->cmd);
			vfio_device_region_write(p->vdev, CFG, PCI_COMMAND,
						 &phys, 2);
		}
	}
	if (p->msix_cap &&
	    covers(offset, len, p->msix_cap + PCI_MSIX_FLAGS + 1))
		msix_set(p, byte_of(value, offset,
				    p->msix_cap + PCI_MSIX_FLAGS + 1) &
				    (PCI_MSIX_FLAGS_ENABLE >> 8));
}

static void pt_msi_update(void *opaque, bool enabled, uint64_t address,
			  uint32_t data, unsigned nvectors)
{
	(void)address;
	(void)data;
	msi_set(opaque, enabled ? nvectors : 0);
}

static int pt_msix_update(void *opaque, uint16_t vector, uint64_t address,
			  uint32_t data, bool masked)
{
	struct pci_passthrough *p = opaque;

	if (vector >= p->msix_vectors)
		return -ENOENT;
	return vec_update(p, vector, address, data, masked);
}

static int pt_msi_vector_update(void *opaque, unsigned vector, uint64_t address,
				uint32_t data, bool masked)
{
	struct pci_passthrough *p = opaque;

	if (vector >= p->msi_vectors)
		return -ENOENT;
	return vec_update(p, fd_index(p, FD_MSI, vector), address, data,
			  masked);
}

static void pt_bar_remap(void *opaque, unsigned bar, bool mapped, uint64_t addr,
			 uint64_t size)
{
	struct pci_passthrough *p = opaque;

	(void)size;
	if (!p->cfg.map || bar >= NBARS)
		return;
	for (unsigned i = 0; i < p->nmaps; i++) {
		const struct direct_map *m = &p->maps[i];

		if ((m->area >> 8) != bar)
			continue;
		if (p->bar_mapped[bar])
			p->cfg.map(p->cfg.map_opaque,
				   p->bar_gpa[bar] + m->bar_off, m->host,
				   m->size, false);
		if (mapped)
			p->cfg.map(p->cfg.map_opaque, addr + m->bar_off,
				   m->host, m->size, true);
	}
	p->bar_mapped[bar] = mapped;
	p->bar_gpa[bar] = addr;
}

static const struct pci_device_ops pt_ops = {
	.bar_read = pt_bar_read,
	.bar_write = pt_bar_write,
	.config_read = pt_config_read,
	.config_write = pt_config_write,
	.bar_remap = pt_bar_remap,
	.msi_update = pt_msi_update,
	.msix_update = pt_msix_update,
	.msi_vector_update = pt_msi_vector_update,
};

/* ------------------------------------------------------------- setup */

/* Offset of the physical capability @id, 0 if none; -EPROTO for a list
 * that leaves config space or loops. */
static int phys_cap(struct vfio_device *v, uint8_t id)
{
	uint8_t pos = 0, hdr[2];
	uint16_t status = 0;
	int err = cfg_read(v, PCI_STATUS, &status, 2);

	if (err)
		return err;
	if (!(status & PCI_STATUS_CAP_LIST))
		return 0;
	err = cfg_read(v, PCI_CAPABILITY_LIST, &pos, 1);
	for (int n = 0; !err && pos; n++) {
		if (pos < 0x40 || n >= 48)
			return -EPROTO;
		pos &= 0xfc;
		err = cfg_read(v, pos, hdr, 2);
		if (err)
			return err;
		if (hdr[0] == id)
			return pos;
		pos = hdr[1];
	}
	return err;
}

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int add_bars(struct pci_passthrough *p)
{
	for (unsigned i = 0; i < NBARS; i++) {
		struct vfio_region_desc r;
		uint32_t reg = 0;
		enum pci_bar_kind kind;
		bool prefetch = false;
		int err;

		if (vfio_device_region(p->vdev, i, &r) || r.size == 0)
			continue;
		err = cfg_read(p->vdev, PCI_BASE_ADDRESS_0 + 4 * i, &reg, 4);
		if (err)
			return err;
		if (!pow2(r.size))
			return -EPROTO;
		if (reg & PCI_BASE_ADDRESS_SPACE_IO) {
			kind = PCI_BAR_KIND_IO;
		} else {
			prefetch = reg & PCI_BASE_ADDRESS_MEM_PREFETCH;
			kind = (reg & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
					       PCI_BASE_ADDRESS_MEM_TYPE_64
				       ? PCI_BAR_KIND_MEM64
				       : PCI_BAR_KIND_MEM32;
		}
		err = pci_device_add_bar(
			p->dev, i, kind, prefetch,
			r.size < 16 && kind != PCI_BAR_KIND_IO ? 16 : r.size);
		if (err)
			return err;
		if (kind == PCI_BAR_KIND_MEM64)
			i++;
	}
	return 0;
}

/* Hole [lo, hi) of a BAR that must stay trapped (MSI-X table or PBA). */
struct hole {
	unsigned bar;
	uint64_t lo, hi;
};

static int add_part(struct pci_passthrough *p, unsigned bar, uint32_t area,
		    uint64_t off, uint64_t size, void *host, void *base,
		    bool owner, uint64_t area_size)
{
	struct direct_map *n;

	if (size == 0)
		return 0;
	n = realloc(p->maps, (p->nmaps + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	p->maps = n;
	p->maps[p->nmaps++] = (struct direct_map){
		.bar_off = off,
		.size = size,
		.host = host,
		.base = base,
		.area = bar << 8 | area,
		.owner = owner,
	};
	(void)area_size;
	return 0;
}

static int map_bars(struct pci_passthrough *p, const struct hole *holes,
		    unsigned nholes)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	for (unsigned bar = 0; bar < NBARS; bar++) {
		struct vfio_region_desc r;

		if (vfio_device_region(p->vdev, bar, &r) || r.size == 0 ||
		    !(r.flags & VFIO_REGION_INFO_FLAG_MMAP) || r.size % page)
			continue;
		for (uint32_t a = 0; a < r.nr_areas; a++) {
			struct vfio_region_sparse_mmap_area ar;
			uint64_t cur, end;
			void *base = NULL;
			bool owner = true;
			int err;

			if (vfio_device_region_area(p->vdev, bar, a, &ar) ||
			    ar.offset % page || ar.size % page)
				continue;
			err = vfio_device_region_mmap(
				p->vdev, bar, a, PROT_READ | PROT_WRITE, &base);
			if (err)
				continue; /* stays trapped */
			/* Split around the holes (at most two per BAR). */
			cur = ar.offset;
			end = ar.offset + ar.size;
			for (unsigned h = 0; h < nholes && cur < end; h++) {
				uint64_t lo = holes[h].lo & ~(page - 1);
				uint64_t hi = (holes[h].hi + page - 1) &
					      ~(page - 1);

				if (holes[h].bar != bar || hi <= cur ||
				    lo >= end)
					continue;
				if (lo > cur) {
					err = add_part(
						p, bar, a, cur, lo - cur,
						(char *)base +
							(cur - ar.offset),
						base, owner, ar.size);
					owner = false;
					if (err)
						return err;
				}
				cur = hi;
			}
			if (cur < end) {
				err = add_part(p, bar, a, cur, end - cur,
					       (char *)base + (cur - ar.offset),
					       base, owner, ar.size);
				owner = false;
				if (err)
					return err;
			}
			if (owner) /* nothing kept: all of it is a hole */
				vfio_device_region_munmap(p->vdev, bar, a,
							  base);
		}
	}
	return 0;
}

static int add_msix(struct pci_passthrough *p, struct hole *holes,
		    unsigned *nholes)
{
	uint32_t table = 0, pba = 0;
	uint16_t flags = 0;
	struct vfio_region_desc tr, pr;
	int pos = phys_cap(p->vdev, PCI_CAP_ID_MSIX), err;

	if (pos <= 0)
		return pos;
	err = cfg_read(p->vdev, (uint32_t)pos + PCI_MSIX_FLAGS, &flags, 2);
	err = err ? err
		  : cfg_read(p->vdev, (uint32_t)pos + PCI_MSIX_TABLE, &table,
			     4);
	err = err ? err
		  : cfg_read(p->vdev, (uint32_t)pos + PCI_MSIX_PBA, &pba, 4);
	if (err)
		return err;
	p->msix_vectors = (uint16_t)((flags & PCI_MSIX_FLAGS_QSIZE) + 1);
	if ((table & PCI_MSIX_TABLE_BIR) >= NBARS ||
	    (pba & PCI_MSIX_PBA_BIR) >= NBARS ||
	    vfio_device_region(p->vdev, table & PCI_MSIX_TABLE_BIR, &tr) ||
	    vfio_device_region(p->vdev, pba & PCI_MSIX_PBA_BIR, &pr))
		return -EPROTO;
	holes[(*nholes)++] = (struct hole){
		.bar = table & PCI_MSIX_TABLE_BIR,
		.lo = table & PCI_MSIX_TABLE_OFFSET,
		.hi = (uint64_t)(table & PCI_MSIX_TABLE_OFFSET) +
		      16u * p->msix_vectors,
	};
	holes[(*nholes)++] = (struct hole){
		.bar = pba & PCI_MSIX_PBA_BIR,
		.lo = pba & PCI_MSIX_PBA_OFFSET,
		.hi = (uint64_t)(pba & PCI_MSIX_PBA_OFFSET) +
		      8u * ((p->msix_vectors + 63u) / 64u),
	};
	if (holes[0].hi > tr.size || holes[1].hi > pr.size)
		return -EPROTO;
	err = pci_device_add_msix(p->dev, p->msix_vectors, holes[0].bar,
				  (uint32_t)holes[0].lo, holes[1].bar,
				  (uint32_t)holes[1].lo);
	if (err)
		return err;
	err = pci_device_find_capability(p->dev, PCI_CAP_ID_MSIX);
	if (err < 0)
		return err;
	p->msix_cap = (uint8_t)err;
	return 0;
}

static int add_msi(struct pci_passthrough *p)
{
	uint16_t flags = 0;
	int pos = phys_cap(p->vdev, PCI_CAP_ID_MSI), err;

	if (pos <= 0)
		return pos;
	err = cfg_read(p->vdev, (uint32_t)pos + PCI_MSI_FLAGS, &flags, 2);
	if (err)
		return err;
	p->msi_vectors = 1u << ((flags & PCI_MSI_FLAGS_QMASK) >> 1);
	if (p->msi_vectors > 32)
		p->msi_vectors = 32;
	return pci_device_add_msi(p->dev, p->msi_vectors,
				  flags & PCI_MSI_FLAGS_64BIT,
				  flags & PCI_MSI_FLAGS_MASKBIT);
}

int pci_passthrough_create(struct vfio_device *vdev,
			   const struct pci_passthrough_config *cfg,
			   struct pci_passthrough **out)
{
	struct pci_device_info info = {0};
	struct vfio_irq_info intx = {0};
	struct pci_passthrough *p;
	struct hole holes[2];
	unsigned nholes = 0;
	uint8_t hdr[64];
	int err;

	if (!vdev || !out)
		return -EINVAL;
	err = cfg_read(vdev, 0, hdr, sizeof(hdr));
	if (err)
		return err;
	if ((hdr[PCI_HEADER_TYPE] & 0x7f) != PCI_HEADER_TYPE_NORMAL)
		return -EOPNOTSUPP;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->vdev = vdev;
	p->intx_resample = -1;
	if (cfg)
		p->cfg = *cfg;
	pthread_mutex_init(&p->lock, NULL);
	info.vendor_id = (uint16_t)(hdr[0] | hdr[1] << 8);
	info.device_id = (uint16_t)(hdr[2] | hdr[3] << 8);
	info.revision = hdr[PCI_REVISION_ID];
	info.class_code = (uint32_t)hdr[PCI_CLASS_PROG] |
			  (uint32_t)hdr[PCI_CLASS_DEVICE] << 8 |
			  (uint32_t)hdr[PCI_CLASS_DEVICE + 1] << 16;
	info.subsystem_vendor_id =
		(uint16_t)(hdr[PCI_SUBSYSTEM_VENDOR_ID] |
			   hdr[PCI_SUBSYSTEM_VENDOR_ID + 1] << 8);
	info.subsystem_id = (uint16_t)(hdr[PCI_SUBSYSTEM_ID] |
				       hdr[PCI_SUBSYSTEM_ID + 1] << 8);
	vfio_device_irq_info(vdev, VFIO_PCI_INTX_IRQ_INDEX, &intx);
	p->has_intx = hdr[PCI_INTERRUPT_PIN] >= 1 &&
		      hdr[PCI_INTERRUPT_PIN] <= 4 && intx.count > 0;
	info.interrupt_pin = p->has_intx ? hdr[PCI_INTERRUPT_PIN] : 0;
	err = pci_device_create(&info, &pt_ops, p, &p->dev);
	if (err)
		goto fail;
	err = add_bars(p);
	err = err ? err : add_msix(p, holes, &nholes);
	err = err ? err : add_msi(p);
	if (err)
		goto fail;
	p->nfds = p->msix_vectors + p->msi_vectors + (p->has_intx ? 1 : 0);
	p->fds = malloc((p->nfds ? p->nfds : 1) * sizeof(int));
	p->trig = malloc((p->nfds ? p->nfds : 1) * sizeof(int));
	p->bypass = malloc((p->nfds ? p->nfds : 1) * sizeof(int));
	if (!p->fds || !p->trig || !p->bypass) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < p->nfds; i++)
		p->fds[i] = p->trig[i] = p->bypass[i] = -1;
	for (unsigned i = 0; i < p->nfds; i++) {
		p->fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->fds[i] < 0) {
			err = -errno;
			goto fail;
		}
		p->trig[i] = p->fds[i];
	}
	if (p->has_intx) {
		p->intx_resample = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->intx_resample < 0) {
			err = -errno;
			goto fail;
		}
	}
	err = map_bars(p, holes, nholes);
	if (err)
		goto fail;
	intx_set(p, true);
	*out = p;
	return 0;
fail:
	pci_passthrough_destroy(p);
	return err;
}

struct pci_device *pci_passthrough_pci_device(const struct pci_passthrough *p)
{
	return p->dev;
}

int pci_passthrough_add_to_root(struct pci_passthrough *p,
				struct pci_root *root, unsigned slot,
				unsigned fn)
{
	int err = pci_root_add_device(root, p->dev, slot, fn);

	if (!err)
		p->added = true;
	return err;
}

unsigned pci_passthrough_num_fds(const struct pci_passthrough *p)
{
	return p->nfds;
}

int pci_passthrough_fd(const struct pci_passthrough *p, unsigned index)
{
	return index < p->nfds ? p->fds[index] : -EINVAL;
}

int pci_passthrough_fd_ready(struct pci_passthrough *p, unsigned index)
{
	uint64_t n;

	if (index >= p->nfds)
		return -EINVAL;
	if (read(p->fds[index], &n, sizeof(n)) != sizeof(n))
		return 0; /* spurious */
	if (index < p->msix_vectors) {
		pci_device_msix_notify(p->dev, (uint16_t)index);
	} else if (index < p->msix_vectors + p->msi_vectors) {
		pci_device_msi_notify(p->dev, index - p->msix_vectors);
	} else {
		if (__atomic_load_n(&p->intx_on, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&p->intx_pending, true,
					 __ATOMIC_RELEASE);
			pci_device_set_intx(p->dev, true);
		}
	}
	return 0;
}

unsigned pci_passthrough_num_vectors(const struct pci_passthrough *p)
{
	return (unsigned)p->msix_vectors + p->msi_vectors;
}

int pci_passthrough_set_vector_notifier(struct pci_passthrough *p,
					unsigned index,
					struct event_notifier *n)
{
	int fd = n ? event_notifier_fd(n) : -1;
	int err;

	if (!p || index >= pci_passthrough_num_vectors(p) || (n && fd < 0))
		return -EINVAL;
	__atomic_store_n(&p->bypass[index], fd, __ATOMIC_RELEASE);
	if (index < p->msix_vectors)
		err = pci_device_msix_set_notifier(p->dev, (uint16_t)index, n);
	else
		err = pci_device_msi_set_notifier(p->dev,
						  index - p->msix_vectors, n);
	/* Setting one made the framework call vec_update() (which steered
	 * the vector); clearing one does not: back to this object's fd. */
	if (!n)
		vec_steer(p, index, false);
	return err;
}

unsigned pci_passthrough_steer_failures(const struct pci_passthrough *p)
{
	return atomic_load(&p->steer_failures);
}

int pci_passthrough_intx_fds(const struct pci_passthrough *p, int *trigger,
			     int *resample)
{
	if (!p->has_intx)
		return -ENOENT;
	if (trigger)
		*trigger = p->fds[fd_index(p, FD_INTX, 0)];
	if (resample)
		*resample = p->intx_resample;
	return 0;
}

void pci_passthrough_destroy(struct pci_passthrough *p)
{
	if (!p)
		return;
	if (p->msix_on)
		vfio_device_irq_disable(p->vdev, VFIO_PCI_MSIX_IRQ_INDEX);
	if (p->msi_on)
		vfio_device_irq_disable(p->vdev, VFIO_PCI_MSI_IRQ_INDEX);
	if (p->intx_on)
		vfio_device_irq_disable(p->vdev, VFIO_PCI_INTX_IRQ_INDEX);
	for (unsigned i = 0; i < p->nmaps; i++) {
		const struct direct_map *m = &p->maps[i];

		if (m->owner)
			vfio_device_region_munmap(p->vdev, m->area >> 8,
						  m->area & 0xff, m->base);
	}
	free(p->maps);
	if (!p->added)
		pci_device_destroy(p->dev);
	for (unsigned i = 0; p->fds && i < p->nfds; i++) {
		if (p->fds[i] >= 0)
			close(p->fds[i]);
	}
	if (p->intx_resample >= 0)
		close(p->intx_resample);
	free(p->fds);
	free(p->trig);
	free(p->bypass);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
